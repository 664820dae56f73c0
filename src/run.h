// run.h: a whole training run: run directory, resolved job, data, resume, the step loop with
// progress lines and JSON Lines metrics, periodic validation and atomic checkpoints.
#ifndef HT_RUN_H
#define HT_RUN_H

#include "comm.h"
#include "config.h"

typedef struct {
    const char *out_dir;     // run directory (created)
    const char *resume;      // NULL: fresh run; "" latest checkpoint of out_dir; else a path
    int quiet;               // no progress lines
} RunOptions;

// Trains `job` (already resolved and validated). job_json: its resolved JSON.
void run_train(Comm *comm, const Job *job, const RunOptions *opt);

#endif
