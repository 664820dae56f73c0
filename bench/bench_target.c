// bench_target: speed of the target network on the paper job's shapes, next to OpenBLAS sgemm on
// the same cores, measured in the same run and interleaved (sgemm, training call, evaluation,
// sgemm, ...), best of N, for each thread count and implementation.
//   build/bench/bench_target [--threads 1,2] [--reps N] [--eval-images N] [--impl auto|all|both|reference|avx2|avx2-dense]
//                            [--sgemm N]
// Prints per thread count and implementation:
//   train: ms per target_loss_grad (32 networks x 32 images, forward + backward: the paper step)
//   eval:  ms per target_forward of 200 networks on --eval-images shared images, in calls of 50
//          images (as trainer_validate does), extrapolated to the 5,000 validation images
//   GFLOP/s of each, OpenBLAS sgemm N^3 GFLOP/s and the ratios; wall-clock and per CPU-second
//   (process CPU time: robust when other jobs share the cores, since time spent descheduled is
//   not counted; on an idle machine the two agree).
// FLOPs counted: 2 per multiply-add of the conv and fc layers (forward; backward: weight
// gradients of every layer and input gradients of all but the first), as bench_step does.
// Peak RSS is printed at the end. Never pass/fail.
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "arch.h"
#include "common.h"
#include "config.h"
#include "target.h"

static double cpu_now(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + 1e-6 * u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
           1e-6 * u.ru_stime.tv_usec;
}

typedef struct { double wall, cpu; } Best; // best wall time and best CPU time over the reps

static void best_update(Best *b, double wall, double cpu) {
    if (wall < b->wall) b->wall = wall;
    if (cpu < b->cpu) b->cpu = cpu;
}

static void flops(const TargetArch *a, double *fwd, double *fwd_bwd) {
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

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float urand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)(rng >> 40) / 16777216.0f;
}

int main(int argc, char **argv) {
    const char *threads_arg = "1,2", *impl_arg = "auto";
    int reps = 5, eval_images = 200, gemm_n = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads_arg = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--eval-images") && i + 1 < argc) eval_images = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--impl") && i + 1 < argc) impl_arg = argv[++i];
        else if (!strcmp(argv[i], "--sgemm") && i + 1 < argc) gemm_n = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_target [--threads 1,2] [--reps N] [--eval-images N] "
                            "[--impl auto|all|both|reference|avx2|avx2-dense] [--sgemm N]\n");
            return 2;
        }
    }
    HT_CHECK(reps >= 1 && eval_images >= 1 && gemm_n >= 64, "bad arguments");
    Job job;
    job_defaults(&job);
    job_validate(&job);
    TargetArch a;
    arch_build_target(&a, &job);
    const int nets = job.batch, ipn = job.images_per_sample, vnets = job.val_samples, chunk = 50;
    double f1, fb;
    flops(&a, &f1, &fb);
    const double train_fl = fb * nets * ipn, eval_fl = f1 * vnets * eval_images;
    const size_t nw = a.n_weights;

    // inputs: weights U(+-sqrt(3/fan_in)) (He-like scale, so that activations stay O(1)), pixels U[0,1]
    float *theta = XALLOC_FLOATS((size_t)vnets * nw), *dtheta = XALLOC_FLOATS((size_t)nets * nw);
    for (int k = 0; k < vnets; k++)
        for (int l = 0; l < a.n_layers; l++) {
            const TargetLayer *L = &a.layers[l];
            const float s = 1.7320508f / sqrtf((float)L->fan_in);
            for (size_t j = 0; j < L->size; j++) theta[(size_t)k * nw + L->offset + j] = (2.0f * urand() - 1.0f) * s;
        }
    const int n_val = eval_images;
    float *img = XALLOC_FLOATS((size_t)nets * ipn * a.in_size), *val = XALLOC_FLOATS((size_t)n_val * a.in_size);
    for (size_t i = 0; i < (size_t)nets * ipn * a.in_size; i++) img[i] = urand();
    for (size_t i = 0; i < (size_t)n_val * a.in_size; i++) val[i] = urand();
    uint8_t *labels = XMALLOC((size_t)nets * ipn);
    for (int i = 0; i < nets * ipn; i++) labels[i] = (uint8_t)(urand() * 10);
    float *probs = XALLOC_FLOATS((size_t)vnets * chunk * a.classes);
    double *loss = XMALLOC((size_t)nets * sizeof(double));
    int *correct = XMALLOC((size_t)nets * sizeof(int));
    const int N = gemm_n;
    float *A = XALLOC_FLOATS((size_t)N * N), *B = XALLOC_FLOATS((size_t)N * N), *C = XALLOC_FLOATS((size_t)N * N);
    for (size_t i = 0; i < (size_t)N * N; i++) { A[i] = urand() - 0.5f; B[i] = urand() - 0.5f; }

    printf("bench_target: paper network (%zu weights), train %d nets x %d images (%.2f GFLOP), eval %d nets x %d "
           "images in calls of %d (%.1f GFLOP; x%.0f for 5,000 images), sgemm %d^3, best of %d interleaved reps\n",
           nw, nets, ipn, train_fl * 1e-9, vnets, eval_images, chunk, eval_fl * 1e-9, 5000.0 / eval_images, N,
           reps);
    printf("%-3s %-9s | %8s %7s %7s | %9s %7s %7s | %7s %7s | %6s %6s %6s %6s\n", "thr", "impl", "train ms",
           "GF/s", "GF/cpu", "eval ms", "GF/s", "GF/cpu", "sgemm", "GF/cpu", "tr%", "tr%cpu", "ev%", "ev%cpu");

    char buf[64];
    XSNPRINTF(buf, sizeof(buf), "%s", threads_arg);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        const int T = atoi(tok);
        HT_CHECK(T >= 1, "bad thread count '%s'", tok);
        omp_set_num_threads(T);
        TargetNet t;
        target_init(&t, &a, ipn > chunk ? ipn : chunk, T);
        TargetImpl impls[3];
        int n_impl = 0;
        if (!strcmp(impl_arg, "auto")) impls[n_impl++] = t.impl;
        else if (!strcmp(impl_arg, "all")) {
            impls[n_impl++] = TARGET_IMPL_REFERENCE; impls[n_impl++] = TARGET_IMPL_AVX2_DENSE;
            impls[n_impl++] = TARGET_IMPL_AVX2;
        } else if (!strcmp(impl_arg, "both")) { impls[n_impl++] = TARGET_IMPL_REFERENCE; impls[n_impl++] = TARGET_IMPL_AVX2; }
        else if (!strcmp(impl_arg, "reference")) impls[n_impl++] = TARGET_IMPL_REFERENCE;
        else if (!strcmp(impl_arg, "avx2-dense")) impls[n_impl++] = TARGET_IMPL_AVX2_DENSE;
        else if (!strcmp(impl_arg, "avx2")) impls[n_impl++] = TARGET_IMPL_AVX2;
        else HT_FATAL("bench_target: --impl must be auto, all, both, reference, avx2 or avx2-dense (got '%s')", impl_arg);
        for (int ii = 0; ii < n_impl; ii++) {
            if (!target_set_impl(&t, impls[ii])) {
                printf("%-3d %-9s | not available on this CPU\n", T, target_impl_name(impls[ii]));
                continue;
            }
            Best g = {1e30, 1e30}, tr = {1e30, 1e30}, ev = {1e30, 1e30};
            // warm-up
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, A, N, B, N, 0.0f, C, N);
            target_loss_grad(&t, nets, theta, ipn, img, (size_t)ipn * a.in_size, labels, ipn, 1.0f, loss, correct, dtheta);
            for (int r = 0; r < reps; r++) {
                double w0 = ht_now(), c0 = cpu_now();
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, A, N, B, N, 0.0f, C, N);
                best_update(&g, ht_now() - w0, cpu_now() - c0);
                w0 = ht_now(); c0 = cpu_now();
                target_loss_grad(&t, nets, theta, ipn, img, (size_t)ipn * a.in_size, labels, ipn, 1.0f, loss,
                                 correct, dtheta);
                best_update(&tr, ht_now() - w0, cpu_now() - c0);
                w0 = ht_now(); c0 = cpu_now();
                for (int i0 = 0; i0 < n_val; i0 += chunk) {
                    const int n = n_val - i0 < chunk ? n_val - i0 : chunk;
                    target_forward(&t, vnets, theta, n, val + (size_t)i0 * a.in_size, 0, probs);
                }
                best_update(&ev, ht_now() - w0, cpu_now() - c0);
            }
            // CPU-second rates are per core: multiply by T for the rate of T busy cores
            const double gf = 2.0 * N * N * (double)N * 1e-9;
            const double g_w = gf / g.wall, g_c = gf / g.cpu * T;
            const double tr_w = train_fl * 1e-9 / tr.wall, tr_c = train_fl * 1e-9 / tr.cpu * T;
            const double ev_w = eval_fl * 1e-9 / ev.wall, ev_c = eval_fl * 1e-9 / ev.cpu * T;
            printf("%-3d %-9s | %8.1f %7.1f %7.1f | %9.1f %7.1f %7.1f | %7.1f %7.1f | %5.0f%% %5.0f%% %5.0f%% %5.0f%%\n",
                   T, target_impl_name(impls[ii]), 1e3 * tr.wall, tr_w, tr_c, 1e3 * ev.wall, ev_w, ev_c, g_w, g_c,
                   100 * tr_w / g_w, 100 * tr_c / g_c, 100 * ev_w / g_w, 100 * ev_c / g_c);
            printf("    eval of 200 networks on 5,000 images: ~%.1f s; train loss[0] %.4f\n",
                   ev.wall * 5000.0 / eval_images, loss[0]);
            fflush(stdout);
        }
        target_free(&t);
    }
    printf("GF/cpu: GFLOP per CPU-second of the process x threads (what T cores deliver when they are not "
           "shared); %% columns: ratio to sgemm in the same units\n");
    printf("peak memory (RSS): %.1f MiB\n", ht_peak_rss_bytes() / 1048576.0);
    free(theta); free(dtheta); free(img); free(val); free(labels); free(probs); free(loss); free(correct);
    free(A); free(B); free(C);
    return 0;
}
