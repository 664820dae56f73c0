// run.h: a whole training run: run directory, resolved job, data, resume, the step loop with
// progress lines and JSON Lines metrics, periodic validation and atomic checkpoints.
#ifndef HT_RUN_H
#define HT_RUN_H

#include "comm.h"
#include "config.h"

// Longest run directory path accepted (--out): every file inside it, down to
// "abandoned-<step>-<time>/ckpt_<step>.h5.tmp.<pid>", must fit in HT_PATH_MAX.
#define HT_RUN_DIR_MAX (HT_PATH_MAX - 160)

typedef struct {
    const char *out_dir;     // run directory (created)
    const char *resume;      // NULL: fresh run; "" latest checkpoint of out_dir; else a path
    int branch;              // --branch: resuming from an older checkpoint moves the newer ones aside
    int quiet;               // no progress lines
    const char *device;      // "cpu", "cuda" or "auto"; NULL: $HYPERTRAIN_DEVICE, else auto
} RunOptions;

// Exit status of a run stopped by SIGTERM/SIGUSR1/SIGINT after writing a checkpoint
// (EX_TEMPFAIL: "try again", i.e. --resume).
#define HT_EXIT_INTERRUPTED 75

// Trains `job` (already resolved and validated). Returns 0 when all steps ran (or had already
// run), or HT_EXIT_INTERRUPTED when a signal stopped it after a checkpoint. The run directory
// rules (lock, resume checks, --branch, what is written when) are in docs/running.md.
int run_train(Comm *comm, const Job *job, const RunOptions *opt);

#endif
