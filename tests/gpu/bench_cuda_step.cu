// bench_cuda_step: speed of the GPU training step on the paper job (jobs/mnist.json: batch 32, 32
// images per network, 20,018 target weights, 633,640 parameters) and of one validation (200
// networks x 5,000 images), on synthetic MNIST-shaped data (speed does not depend on pixel values).
// Prints ms/step and the projected time of the paper's 13,000 steps (with a validation every
// val_every steps), once for each conv implementation (HT_CUDA_CONV=im2col, then igemm; only the
// one named when HT_CUDA_CONV is set). A benchmark: it prints figures and never fails on time.
//   build-cuda/tests/gpu/bench_cuda_step [--steps N] [--warmup N] [--no-val] [--job FILE]
#include "common.cuh"

extern "C" {
#include "data.h"
#include "model.h"
#include "train.h"
}
#include "cuda_backend.h"
#include "gpu_check.cuh"

static void synthetic(Mnist *d, int n_train, int n_val) {
    memset(d, 0, sizeof(*d));
    Dataset *sets[3] = {&d->train, &d->val, &d->test};
    int sizes[3] = {n_train, n_val, 1};
    for (int s = 0; s < 3; s++) {
        Dataset *ds = sets[s];
        ds->n = sizes[s]; ds->h = 28; ds->w = 28;
        ds->images = XALLOC_FLOATS((size_t)ds->n * 784);
        ds->labels = (uint8_t *)XMALLOC((size_t)ds->n);
        for (size_t i = 0; i < (size_t)ds->n * 784; i++) ds->images[i] = (float)((i * 2654435761u) % 256) / 255.0f;
        for (int i = 0; i < ds->n; i++) ds->labels[i] = (uint8_t)(i % 10);
    }
}

int main(int argc, char **argv) {
    int steps = 200, warmup = 5, do_val = 1;
    const char *job_file = "jobs/mnist.json";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-val")) do_val = 0;
        else if (!strcmp(argv[i], "--job") && i + 1 < argc) job_file = argv[++i];
        else { fprintf(stderr, "usage: bench_cuda_step [--steps N] [--warmup N] [--no-val] [--job FILE]\n"); return 2; }
    }
    if (gc_skip_without_gpu("bench_cuda_step")) return 0;
    Comm comm;
    memset(&comm, 0, sizeof(comm));
    comm.size = 1;
    comm.impl = "single";
    Job job;
    job_defaults(&job);
    job_load_file(&job, job_file);
    job_validate(&job);
    Mnist data;
    synthetic(&data, job.n_train, job.n_val);
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, &comm, &data);
    // Each conv implementation in turn (HT_CUDA_CONV, target_cuda.cuh): both unless the environment names one.
    const char *conv_env = getenv("HT_CUDA_CONV");
    const char *conv_impls[2] = {"im2col", "igemm"};
    const int n_conv = conv_env && *conv_env ? 1 : 2;
    for (int ci = 0; ci < n_conv; ci++) { // (body not re-indented: a small, mergeable change)
    if (n_conv == 2) setenv("HT_CUDA_CONV", conv_impls[ci], 1);
    printf("== conv implementation: HT_CUDA_CONV=%s\n", getenv("HT_CUDA_CONV"));
    const double tc0 = ht_now();
    CudaTrainer *ct = cuda_trainer_create(&tr);
    const double t_create = ht_now() - tc0;
    char desc[256];
    cuda_backend_describe(desc, sizeof(desc));
    printf("bench_cuda_step: %s\n", desc);
    printf("job %s: batch %d x %d images, %zu target weights, %zu parameters; setup (allocation, data upload) %.2f s\n",
           job.name, job.batch, job.images_per_sample, m.tarch.n_weights, m.harch.table.n_params, t_create);
    StepStats st;
    for (int i = 0; i < warmup; i++) cuda_trainer_step(ct, &st);
    CUDA_CHECK(cudaDeviceSynchronize());
    const double t0 = ht_now();
    for (int i = 0; i < steps; i++) cuda_trainer_step(ct, &st);
    CUDA_CHECK(cudaDeviceSynchronize());
    const double ms = 1e3 * (ht_now() - t0) / steps;
    printf("step: %.3f ms/step over %d steps (after %d warm-up steps); loss %.4g, ce %.4f, entropy %.2f\n", ms, steps,
           warmup, st.loss, st.ce, st.entropy);
    double val_s = 0.0;
    if (do_val) {
        ValStats vs;
        const double v0 = ht_now();
        cuda_trainer_validate(ct, &vs);
        val_s = ht_now() - v0;
        printf("validation: %.2f s for %d networks x %d images (mean accuracy %.4f on synthetic labels)\n", val_s,
               vs.n_nets, vs.n_images, vs.mean_acc);
    }
    const int paper_steps = 13000;
    const int n_val = job.val_every > 0 ? paper_steps / job.val_every : 1;
    const double total = paper_steps * ms / 1e3 + n_val * val_s;
    printf("projected: %d steps x %.3f ms = %.1f s, + %d validations x %.2f s = %.1f s; total %.1f s (%.1f min) for "
           "the paper's run (checkpoints not included)\n", paper_steps, ms, paper_steps * ms / 1e3, n_val, val_s, n_val * val_s, total,
           total / 60.0);
    cuda_trainer_destroy(ct);
    }
    trainer_free(&tr);
    model_free(&m);
    Dataset *sets[3] = {&data.train, &data.val, &data.test};
    for (int s = 0; s < 3; s++) { free(sets[s]->images); free(sets[s]->labels); }
    return 0;
}
