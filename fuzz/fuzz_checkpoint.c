// fuzz_checkpoint: the checkpoint loader (src/checkpoint.c read side), as `hypertrain --resume`
// uses it: checkpoint_read_job, then the job parsed and validated, then checkpoint_read into the
// parameter table of fuzz/seed_job.json (the job of the seed checkpoints). Input: a recipe
// (h5recipe.h) for the HDF5 file.
#include <hdf5.h>

#include "fuzz.h"

#include "checkpoint.h"
#include "config.h"
#include "h5recipe.h"
#include "h5util.h"
#include "model.h"

typedef struct {
    const char *path;
    char *json;      // freed by the harness, also after a fatal error
    Model *model;
} CkptInput;

static Model g_model;   // the seed job's model: its table and buffers, built once
static char g_path[512];

static hid_t g_fapl;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    g_fapl = fuzz_h5_init(g_path, sizeof(g_path), "ckpt");
    Job job;
    job_defaults(&job);
    job_load_file(&job, FUZZ_DIR "/seed_job.json");
    job_validate(&job);
    model_init(&g_model, &job);
    return 0;
}

static void read_job(void *arg) {
    CkptInput *in = arg;
    in->json = checkpoint_read_job(in->path);
    Job job;
    job_defaults(&job);
    job_from_json_string(&job, in->json, in->path);
    job_validate(&job);
}

static void read_state(void *arg) {
    CkptInput *in = arg;
    Model *m = in->model;
    CkptMeta meta;
    checkpoint_read(in->path, &m->harch.table, m->params, m->adam_m, m->adam_v, m->stats, &meta);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (h5recipe_build(data, size, g_path) != 0) return 0;
    ht_fuzz_fapl = g_fapl;   // the readers read the file into memory at once (core driver)
    const FuzzH5Mark mark = fuzz_h5_mark();
    CkptInput in = { g_path, NULL, &g_model };
    int failed = fuzz_try(read_job, &in);
    free(in.json);
    failed |= fuzz_try(read_state, &in);
    if (failed) fuzz_h5_cleanup(mark);   // closes whatever a fatal error left open
    ht_fuzz_fapl = -1;
    unlink(g_path);
    return 0;
}
