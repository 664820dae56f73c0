// checkpoint.h: HDF5 checkpoints (layout in docs/checkpoint.md). Written atomically: a
// temporary file in the same directory, fsync, rename; a crash never leaves a half-written
// checkpoint under the final name, and a good checkpoint is never overwritten by a bad one.
#ifndef HT_CHECKPOINT_H
#define HT_CHECKPOINT_H

#include <stdint.h>

#include "arch.h"

#define HT_CKPT_FORMAT "hypertrain-checkpoint"
#define HT_CKPT_VERSION 1

typedef struct {
    int64_t step;          // steps completed
    uint64_t seed;
    int64_t data_cursor;   // next position in the training image stream
    double lr, lambda;     // values for the next step (informational; derived from step)
    int world_size;        // ranks of the run that wrote it (informational: state is P-independent)
} CkptMeta;

// Writes params, adam_m, adam_v (each table->n_params floats), stats (table->n_stat floats),
// meta and the resolved job JSON to `path`, atomically.
void checkpoint_write(const char *path, const ParamTable *table, const float *params,
                      const float *adam_m, const float *adam_v, const float *stats,
                      const CkptMeta *meta, const char *job_json);

// Reads a checkpoint written for the same table. Fatal, naming the file and dataset, when the
// file is not a hypertrain checkpoint, has another format version, lacks a dataset, or a shape
// differs from the table (another architecture).
void checkpoint_read(const char *path, const ParamTable *table, float *params, float *adam_m,
                     float *adam_v, float *stats, CkptMeta *meta);

// The job JSON stored in a checkpoint (caller frees). Fatal if absent.
char *checkpoint_read_job(const char *path);

// Run-directory helpers. Checkpoints are named ckpt_%08lld.h5 (by step).
void checkpoint_path(char *out, size_t n, const char *run_dir, int64_t step);
// Steps of the checkpoints in run_dir, highest first (caller frees; NULL or empty when there are
// none, also when run_dir does not exist).
long long *checkpoint_steps(const char *run_dir, int *count);
// Path of the highest-step checkpoint in run_dir (caller frees), or NULL if there is none.
char *checkpoint_latest(const char *run_dir);
// Deletes all but the `keep` highest-step checkpoints.
void checkpoint_prune(const char *run_dir, int keep);
// Deletes the temporary files that killed writers left in run_dir: "<name>.tmp.<pid>" where
// <name> is a checkpoint name, job.json or metrics.jsonl. Only for a run that holds the run
// directory's lock (no other writer can be working there). Returns how many it deleted.
int checkpoint_remove_stale_tmp(const char *run_dir);

// Writes `len` bytes to "<path>.tmp.<pid>", fsyncs it, renames it over `path` and fsyncs the
// directory: `path` holds either its old contents or the new ones, never a part. Fatal with one
// line naming `what` ("checkpoint", "job file", ...) and `path`; the temporary file is removed.
void atomic_write_file(const char *path, const void *data, size_t len, const char *what);

#endif
