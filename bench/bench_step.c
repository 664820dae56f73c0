// bench_step: speed and memory of the paper job's training step on this machine, next to what
// OpenBLAS sgemm reaches on the same cores in the same run (the ratio is what we track).
//   build/bench/bench_step [--threads N] [--steps N] [--job JOB.json] [--eval-images N]
// HT_TARGET_IMPL=reference runs the target network's reference path (see src/target.h).
// Prints ms/step split into hypernetwork, gauge fixing, target network, entropy, communication,
// Adam and data; target-network GFLOP/s; sample evaluation (forward only) GFLOP/s; peak memory
// and its growth over the measured steps. Uses synthetic MNIST-shaped data (speed does not
// depend on pixel values), so it runs without the dataset.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "comm.h"
#include "config.h"
#include "model.h"
#include "rng.h"
#include "train.h"

// FLOPs of the target network for one image: forward, and forward + backward (weight and input
// gradients; no input gradient for the first layer).
static void target_flops(const TargetArch *a, double *fwd, double *fwd_bwd) {
    double f = 0.0, b = 0.0;
    for (int l = 0; l < a->n_layers; l++) {
        const TargetOp *op = &a->ops[a->layers[l].op];
        const double macs = (double)op->out_h * op->out_w * a->layers[l].filters * a->layers[l].fan_in;
        f += 2.0 * macs;
        b += 2.0 * macs * (l == 0 ? 1 : 2);
    }
    *fwd = f;
    *fwd_bwd = f + b;
}

// sgemm n^3 on buffers allocated once (so that the measurement does not move the peak RSS)
typedef struct { int n; float *A, *B, *C; } Gemm;

static void gemm_init(Gemm *g, int n) {
    g->n = n;
    g->A = XALLOC_FLOATS((size_t)n * n); g->B = XALLOC_FLOATS((size_t)n * n); g->C = XALLOC_FLOATS((size_t)n * n);
    for (size_t i = 0; i < (size_t)n * n; i++) { g->A[i] = (float)(i % 7) * 0.1f; g->B[i] = (float)(i % 5) * 0.1f; g->C[i] = 0.0f; }
}

static double sgemm_gflops(const Gemm *g, int reps) {
    const int n = g->n;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = ht_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, g->A, n, g->B, n, 0.0f, g->C, n);
        double t = ht_now() - t0;
        if (t < best) best = t;
    }
    return 2.0 * n * n * (double)n / best / 1e9;
}

#define GEMM_N 2048

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double *c = XMALLOC((size_t)n * sizeof(double));
    memcpy(c, v, (size_t)n * sizeof(double));
    qsort(c, (size_t)n, sizeof(double), cmp_double);
    const double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

static double minv(const double *v, int n) { double m = v[0]; for (int i = 1; i < n; i++) if (v[i] < m) m = v[i]; return m; }
static double maxv(const double *v, int n) { double m = v[0]; for (int i = 1; i < n; i++) if (v[i] > m) m = v[i]; return m; }

int main(int argc, char **argv) {
    int threads = 0, steps = 10, eval_images = 500;
    const char *job_file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--job") && i + 1 < argc) job_file = argv[++i];
        else if (!strcmp(argv[i], "--eval-images") && i + 1 < argc) eval_images = atoi(argv[++i]);
        else { fprintf(stderr, "usage: bench_step [--threads N] [--steps N] [--job FILE] [--eval-images N]\n"); return 2; }
    }
    if (threads > 0) omp_set_num_threads(threads);
    Comm comm;
    comm_init(&comm, &argc, &argv);
    Job job;
    job_defaults(&job);
    if (job_file) job_load_file(&job, job_file);
    job.val_images = eval_images;
    job_validate(&job);
    Mnist data;
    mnist_synthetic(&data, 5000, eval_images);
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, &comm, &data);
    double f1, fb;
    target_flops(&m.tarch, &f1, &fb);
    const double step_flops = fb * job.batch * job.images_per_sample;

    // the job's eval_precision, as run.c applies it (HT_EVAL_PRECISION=fp32|bf16 overrides it)
    target_apply_eval_precision(&tr.tn, job.eval_precision == EVAL_BF16 ? TARGET_EVAL_BF16 : TARGET_EVAL_FP32,
                                "eval_precision");
    printf("bench_step: job %s, %d thread(s), batch %d x %d images, %zu target weights, %zu parameters, "
           "target network implementation %s, evaluation in %s\n", job.name, omp_get_max_threads(), job.batch,
           job.images_per_sample, m.tarch.n_weights, m.harch.table.n_params, target_impl_name(tr.tn.impl),
           target_precision_name(tr.tn.eval));
    // This machine's speed drifts by 10-20% over seconds (a VM sharing its host), so sgemm is
    // measured right before every step and every evaluation chunk: each step's ratio compares
    // two measurements a few hundred ms apart, and the medians of those ratios are reported.
    Gemm gm;
    gemm_init(&gm, GEMM_N);
    StepStats st;
    for (int i = 0; i < 2; i++) trainer_step(&tr, &st); // warm-up
    sgemm_gflops(&gm, 1);
    memset(&tr.times, 0, sizeof(tr.times));
    const size_t rss0 = ht_peak_rss_bytes();
    double *ts = XCALLOC((size_t)steps, sizeof(double)), *gs = XCALLOC((size_t)steps, sizeof(double));
    double *rs = XCALLOC((size_t)steps, sizeof(double)), total = 0.0;
    for (int i = 0; i < steps; i++) {
        gs[i] = sgemm_gflops(&gm, 2);
        const double s0 = ht_now();
        trainer_step(&tr, &st);
        ts[i] = ht_now() - s0;
        total += ts[i];
        rs[i] = step_flops / ts[i] / 1e9 / gs[i];
    }
    const size_t rss1 = ht_peak_rss_bytes();
    const double per = total / steps, gemm = median(gs, steps), ratio = median(rs, steps);
    const double t_med = median(ts, steps);
    printf("OpenBLAS sgemm %d^3, measured before each step: median %.1f GFLOP/s (%.1f to %.1f)\n", GEMM_N, gemm,
           minv(gs, steps), maxv(gs, steps));
    printf("training step: %.1f ms/step mean, %.1f median (%d steps)\n", 1e3 * per, 1e3 * t_med, steps);
    const StepTimes *t = &tr.times;
    printf("  hypernetwork %.1f | gauge %.1f | target network %.1f | entropy %.1f | comm %.1f | adam %.1f | data %.1f ms\n",
           1e3 * t->hyper / steps, 1e3 * t->gauge / steps, 1e3 * t->target / steps, 1e3 * t->entropy / steps,
           1e3 * t->comm / steps, 1e3 * t->adam / steps, 1e3 * t->data / steps);
    const double tgt = step_flops / (t->target / steps) / 1e9;
    printf("target network: %.2f GFLOP/step, %.1f GFLOP/s in its kernels (%.0f%% of the median sgemm)\n",
           step_flops / 1e9, tgt, 100.0 * tgt / gemm);
    printf("whole step: %.1f GFLOP/s counting target FLOPs (mean step); ratio to the sgemm measured just before: "
           "median %.0f%% (%.0f%% to %.0f%%)\n", step_flops / per / 1e9, 100.0 * ratio, 100.0 * minv(rs, steps),
           100.0 * maxv(rs, steps));

    // evaluation: trainer_validate on eval_images images, repeated, each after an sgemm
    ValStats vs;
    const double vflops = f1 * (double)job.val_samples * eval_images;
    double vt_sum = 0.0, vr[5], vtv[5];
    for (int r = 0; r < 5; r++) {
        const double g = sgemm_gflops(&gm, 2);
        const double v0 = ht_now();
        trainer_validate(&tr, &vs);
        vtv[r] = ht_now() - v0;
        vt_sum += vtv[r];
        vr[r] = vflops / vtv[r] / 1e9 / g;
    }
    const double vt = vt_sum / 5;
    printf("sample evaluation (forward): %d networks x %d images in %.2f s (mean of 5), %.1f GFLOP/s; ratio to the "
           "sgemm just before: median %.0f%% (%.0f%% to %.0f%%); full validation set (5,000 images) ~ %.0f s\n",
           job.val_samples, eval_images, vt, vflops / vt / 1e9, 100.0 * median(vr, 5), 100.0 * minv(vr, 5),
           100.0 * maxv(vr, 5), vt * 5000.0 / eval_images);
    printf("peak memory: %.1f MiB after warm-up, %.1f MiB after %d more steps (growth %.1f MiB), %.1f MiB after validation\n",
           rss0 / 1048576.0, rss1 / 1048576.0, steps, (rss1 - rss0) / 1048576.0, ht_peak_rss_bytes() / 1048576.0);
    printf("projected: 13,000 steps %.1f h on this machine (without validation)\n", per * 13000 / 3600);
    free(ts); free(gs); free(rs);
    free(gm.A); free(gm.B); free(gm.C);
    trainer_free(&tr);
    model_free(&m);
    comm_finalize(&comm);
    return 0;
}
