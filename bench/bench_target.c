// bench_target: speed of the target network on the paper job's shapes, next to OpenBLAS sgemm on
// the same cores, measured in the same run and interleaved (sgemm, training call, evaluation,
// sgemm, ...), best of N, for each thread count and implementation.
//   build/bench/bench_target [--threads 1,2] [--reps N] [--eval-images N] [--sgemm N] [--kernel-reps N]
//                            [--impl auto|all|both|fast|reference|avx2|avx2-dense|avx512|avx512-dense]
// (both: reference and the default; fast: avx2 and avx512; all: every implementation)
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
//
// First, the FMA peak and the conv kernels (--kernel-reps N, 0: skipped): a register-only FMA loop
// in AVX2 (12 ymm accumulators) and in AVX-512 (12 zmm), on 1 and on all --threads threads, and
// each conv kernel of the fast implementations (target_simd_kernel_times: one image of the paper
// network's shapes, in cache, one thread), interleaved round by round, best of N; every kernel's
// GFLOP/s is printed with its ratio to the 1-thread AVX-512 and AVX2 peaks of the same run.
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
#include "target_avx2.h"
#include "target_avx512.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
// Register-only FMA loops: 12 independent accumulators (more than FMA pipes x latency; with x
// and y 14 registers, so that AVX2's 16 ymm need no spill), n iterations; returns a value that
// depends on every accumulator (so nothing is optimized away). FLOPs: n * 12 * lanes * 2.
#define FMA_LOOP(T, SET1, FMA, ADD, SUM)                                                           \
    T a0 = SET1(1.0f), a1 = SET1(1.1f), a2 = SET1(1.2f), a3 = SET1(1.3f), a4 = SET1(1.4f), a5 = SET1(1.5f); \
    T a6 = SET1(1.6f), a7 = SET1(1.7f), a8 = SET1(1.8f), a9 = SET1(1.9f), a10 = SET1(2.0f), a11 = SET1(2.1f); \
    const T x = SET1(0.9999999f), y = SET1(1e-7f);                                              \
    for (long i = 0; i < n; i++) {                                                              \
        a0 = FMA(a0, x, y); a1 = FMA(a1, x, y); a2 = FMA(a2, x, y); a3 = FMA(a3, x, y);         \
        a4 = FMA(a4, x, y); a5 = FMA(a5, x, y); a6 = FMA(a6, x, y); a7 = FMA(a7, x, y);         \
        a8 = FMA(a8, x, y); a9 = FMA(a9, x, y); a10 = FMA(a10, x, y); a11 = FMA(a11, x, y);     \
    }                                                                                           \
    T s = ADD(ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7))),                \
              ADD(ADD(a8, a9), ADD(a10, a11)));                                                 \
    return SUM(s)
static __attribute__((target("avx2,fma"))) float fma_sum256(__m256 v) {
    float f[8];
    _mm256_storeu_ps(f, v);
    return f[0] + f[7];
}
static __attribute__((target("avx512f"))) float fma_sum512(__m512 v) { return _mm512_reduce_add_ps(v); }
static __attribute__((noinline, target("avx2,fma"))) float fma_loop_avx2(long n) {
    FMA_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, fma_sum256);
}
static __attribute__((noinline, target("avx512f"))) float fma_loop_avx512(long n) {
    FMA_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, fma_sum512);
}
static int have_fma_avx2(void) { return target_avx2_cpu_ok(); }
static int have_fma_avx512(void) { return target_avx512_cpu_ok(); }
#else
static float fma_loop_avx2(long n) { return 0.0f; }
static float fma_loop_avx512(long n) { return 0.0f; }
static int have_fma_avx2(void) { return 0; }
static int have_fma_avx512(void) { return 0; }
#endif

// GFLOP/s of the FMA loop (wide = 1: AVX-512) on T threads at once: each thread times 64 short
// runs (~0.1-0.3 ms each) and keeps its best, so that a shared, loaded machine still shows the
// cores' rate; the threads' rates are added.
static double fma_peak(int wide, int T) {
    const long n = 100 * 1000;
    const double flop = (double)n * 12 * (wide ? 16 : 8) * 2;
    double total = 0.0;
    float sink = 0.0f;
#pragma omp parallel num_threads(T) reduction(+ : total, sink)
    {
        double best = 1e30;
        for (int r = 0; r < 64; r++) {
            const double t0 = ht_now();
            sink += wide ? fma_loop_avx512(n) : fma_loop_avx2(n);
            const double dt = ht_now() - t0;
            if (dt < best) best = dt;
        }
        total += flop / best * 1e-9;
    }
    if (sink == 12345.0f) printf(" "); // keeps the result alive
    return total;
}

// The FMA peaks and the conv kernels of the fast implementations, interleaved, best of reps.
static void kernel_section(const TargetArch *a, int reps, int max_threads) {
    const int have2 = have_fma_avx2(), have512 = have_fma_avx512();
    if (!have2) { printf("FMA peak and kernels: no AVX2 on this CPU (or build)\n"); return; }
    const TargetSimdKernels *ks[2] = {target_avx2_kernels(), have512 ? target_avx512_kernels() : NULL};
    const int nk = have512 ? 2 : 1;
    enum { MAXK = 16 };
    TargetKernelTime best[2][MAXK], cur[MAXK];
    int n[2] = {0, 0};
    double peak[2][2] = {{0, 0}, {0, 0}}; // [avx2, avx512][1 thread, max_threads]
    float *ws = XALLOC_FLOATS(target_avx2_ws_floats(a, 1));
    for (int r = 0; r < reps; r++) {
        for (int w = 0; w < 1 + have512; w++) {
            const double p1 = fma_peak(w, 1), pT = fma_peak(w, max_threads);
            if (p1 > peak[w][0]) peak[w][0] = p1;
            if (pT > peak[w][1]) peak[w][1] = pT;
        }
        for (int k = 0; k < nk; k++) {
            const int m = target_simd_kernel_times(ks[k], a, ws, 3, cur, MAXK);
            for (int i = 0; i < m; i++)
                if (r == 0 || cur[i].sec < best[k][i].sec) best[k][i] = cur[i];
            n[k] = m;
        }
    }
    free(ws);
    printf("FMA peak (register-only loop, best of %d): AVX2 %.1f GFLOP/s on 1 thread, %.1f on %d; "
           "AVX-512 ", reps, peak[0][0], peak[0][1], max_threads);
    if (have512) printf("%.1f on 1 thread, %.1f on %d (AVX-512 / AVX2: %.2fx)\n", peak[1][0], peak[1][1], max_threads,
                        peak[1][0] / peak[0][0]);
    else printf("not available on this CPU\n");
    printf("conv kernels, one image of the paper network in cache, 1 thread, best of %d (ratios to the "
           "1-thread peaks above)\n", reps);
    printf("  %-7s %-40s %9s %8s %8s %9s\n", "kernels", "kernel", "us/call", "GFLOP/s", "%avx512", "%avx2");
    for (int k = 0; k < nk; k++)
        for (int i = 0; i < n[k]; i++) {
            const double gf = best[k][i].flop / best[k][i].sec * 1e-9;
            printf("  %-7s %-40s %9.2f %8.1f ", ks[k]->name, best[k][i].name, best[k][i].sec * 1e6, gf);
            if (have512) printf("%7.0f%% ", 100.0 * gf / peak[1][0]);
            else printf("%8s ", "-");
            printf("%8.0f%%\n", 100.0 * gf / peak[0][0]);
        }
    fflush(stdout);
}

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
    int reps = 5, eval_images = 200, gemm_n = 1024, kernel_reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads_arg = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--eval-images") && i + 1 < argc) eval_images = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--impl") && i + 1 < argc) impl_arg = argv[++i];
        else if (!strcmp(argv[i], "--sgemm") && i + 1 < argc) gemm_n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernel-reps") && i + 1 < argc) kernel_reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_target [--threads 1,2] [--reps N] [--eval-images N] [--sgemm N] "
                            "[--kernel-reps N] [--impl auto|all|both|fast|reference|avx2|avx2-dense|avx512|avx512-dense]\n");
            return 2;
        }
    }
    HT_CHECK(reps >= 1 && eval_images >= 1 && gemm_n >= 64 && kernel_reps >= 0, "bad arguments");
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
    if (kernel_reps > 0) {
        int max_threads = 1;
        char tb[64];
        XSNPRINTF(tb, sizeof(tb), "%s", threads_arg);
        for (char *tok = strtok(tb, ","); tok; tok = strtok(NULL, ","))
            if (atoi(tok) > max_threads) max_threads = atoi(tok);
        kernel_section(&a, kernel_reps, max_threads);
    }
    printf("%-3s %-12s | %8s %7s %7s | %9s %7s %7s | %7s %7s | %6s %6s %6s %6s\n", "thr", "impl", "train ms",
           "GF/s", "GF/cpu", "eval ms", "GF/s", "GF/cpu", "sgemm", "GF/cpu", "tr%", "tr%cpu", "ev%", "ev%cpu");

    char buf[64];
    XSNPRINTF(buf, sizeof(buf), "%s", threads_arg);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        const int T = atoi(tok);
        HT_CHECK(T >= 1, "bad thread count '%s'", tok);
        omp_set_num_threads(T);
        TargetNet t;
        target_init(&t, &a, ipn > chunk ? ipn : chunk, T);
        TargetImpl impls[TARGET_IMPL_COUNT];
        int n_impl = 0;
        if (!strcmp(impl_arg, "auto")) impls[n_impl++] = t.impl;
        else if (!strcmp(impl_arg, "all")) {
            impls[n_impl++] = TARGET_IMPL_REFERENCE; impls[n_impl++] = TARGET_IMPL_AVX2_DENSE;
            impls[n_impl++] = TARGET_IMPL_AVX2; impls[n_impl++] = TARGET_IMPL_AVX512_DENSE;
            impls[n_impl++] = TARGET_IMPL_AVX512;
        } else if (!strcmp(impl_arg, "both")) { impls[n_impl++] = TARGET_IMPL_REFERENCE; impls[n_impl++] = t.impl; }
        else if (!strcmp(impl_arg, "fast")) { impls[n_impl++] = TARGET_IMPL_AVX2; impls[n_impl++] = TARGET_IMPL_AVX512; }
        else if (!target_impl_parse(impl_arg, &impls[n_impl++]))
            HT_FATAL("bench_target: --impl must be auto, all, both, fast, reference, avx2, avx2-dense, avx512 or "
                     "avx512-dense (got '%s')", impl_arg);
        for (int ii = 0; ii < n_impl; ii++) {
            if (!target_set_impl(&t, impls[ii])) {
                printf("%-3d %-12s | not available on this CPU\n", T, target_impl_name(impls[ii]));
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
            printf("%-3d %-12s | %8.1f %7.1f %7.1f | %9.1f %7.1f %7.1f | %7.1f %7.1f | %5.0f%% %5.0f%% %5.0f%% %5.0f%%\n",
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
