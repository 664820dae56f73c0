// bench_rows: the row kernels of the training step outside the target network, each SIMD version
// against its portable one, interleaved in the same run (so that a loaded machine's drift hits
// both alike), best of --reps, at each thread count:
//   gauge    gauge_forward + gauge_backward of 32 paper networks (20,018 weights each)
//   adam     one Adam update of the paper hypernetwork's 633,640 parameters
//   entropy  entropy_estimate with its gradient, 32 samples x 20,018 weights, L1
// Every pair gives the same bits (test_target checks it); this prints their times.
//   build/bench/bench_rows [--threads 1,2] [--reps N]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "arch.h"
#include "comm.h"
#include "common.h"
#include "config.h"
#include "entropy.h"
#include "gauge.h"
#include "model.h"

typedef struct {
    const TargetArch *a;
    int nets;
    float *raw, *out, *scales, *dout, *draw;       // gauge: (nets, W) x 4, scales (nets, n_scales)
    size_t np;
    float *p, *g, *m, *v;                          // adam: (np) x 4
    Comm *comm;
    int N;
    size_t D;
    float *x, *eg;                                 // entropy: samples (N, D), gradient (N, D)
} Rows;

static void run_gauge(Rows *r, int simd) {
    const GaugeImpl impl = simd ? GAUGE_AVX512 : GAUGE_PORTABLE;
    gauge_forward_impl(impl, r->a, r->nets, r->raw, r->out, r->scales);
    gauge_backward_impl(impl, r->a, r->nets, r->raw, r->scales, r->dout, r->draw);
}

static void run_adam(Rows *r, int simd) {
    adam_update_impl(simd, r->p, r->g, r->m, r->v, r->np, 3e-4, 0.9, 0.999, 1e-8, 1000);
}

static void run_entropy(Rows *r, int simd) { // simd: 2 AVX-512, 1 AVX2, 0 portable
    EntropyWork w;
    entropy_work_init(&w, r->N);
    if (simd < w.simd) w.simd = simd;
    memset(r->eg, 0, (size_t)r->N * r->D * sizeof(float));
    entropy_estimate(r->comm, &w, r->x, r->N, r->D, 0, r->N, DIST_L1, 300, -1.0f, r->eg);
    entropy_work_free(&w);
}

static float frand(uint64_t *s) { // xorshift64* -> [-1, 1)
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return (float)((*s * 2685821657736338717ull >> 40) * (2.0 / 16777216.0) - 1.0);
}

static float *filled(size_t n, float scale, uint64_t seed) {
    float *x = XALLOC_FLOATS(n);
    for (size_t i = 0; i < n; i++) x[i] = scale * frand(&seed);
    return x;
}

int main(int argc, char **argv) {
    const char *threads_arg = "1,2";
    int reps = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads_arg = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else { fprintf(stderr, "usage: bench_rows [--threads 1,2] [--reps N]\n"); return 2; }
    }
    HT_CHECK(reps >= 1, "bench_rows: --reps must be >= 1, got %d", reps);
    Comm comm;
    comm_init(&comm, NULL, NULL);
    Job job;
    job_defaults(&job);
    job_validate(&job);
    Model model;
    model_init(&model, &job);
    Rows r = {.a = &model.tarch, .nets = job.batch, .comm = &comm, .N = job.batch};
    const size_t W = model.tarch.n_weights, tot = (size_t)r.nets * W;
    r.raw = filled(tot, 0.1f, 1); r.dout = filled(tot, 1.0f, 2);
    r.out = XALLOC_FLOATS(tot); r.draw = XALLOC_FLOATS(tot);
    r.scales = XALLOC_FLOATS((size_t)r.nets * gauge_n_scales(r.a));
    r.np = model.harch.table.n_params;
    r.p = filled(r.np, 0.1f, 3); r.g = filled(r.np, 1.0f, 4); r.m = filled(r.np, 0.01f, 5); r.v = filled(r.np, 1e-3f, 6);
    for (size_t i = 0; i < r.np; i++) r.v[i] = r.v[i] < 0 ? -r.v[i] : r.v[i];
    r.D = W;
    r.x = filled((size_t)r.N * W, 0.1f, 7); r.eg = XALLOC_FLOATS((size_t)r.N * W);
    EntropyWork probe;
    entropy_work_init(&probe, 2);
    const int ent_simd = probe.simd;
    entropy_work_free(&probe);
    const int g512 = gauge_have_avx512(), a512 = adam_have_avx512();
    printf("bench_rows: %d networks x %zu weights, %zu hypernetwork parameters; SIMD here: gauge %s, adam %s, "
           "entropy %s; best of %d, versions interleaved\n", r.nets, W, r.np, g512 ? "avx512" : "none",
           a512 ? "avx512" : "none", ent_simd == 2 ? "avx512" : ent_simd == 1 ? "avx2" : "none", reps);
    struct { const char *name; void (*fn)(Rows *, int); int n; int level[3]; const char *label[3]; } parts[3] = {
        {"gauge fwd+bwd", run_gauge, g512 ? 2 : 1, {0, 1}, {"portable", "avx512"}},
        {"adam update", run_adam, a512 ? 2 : 1, {0, 1}, {"portable", "avx512"}},
        {"entropy + grad", run_entropy, 1 + ent_simd, {0, 1, 2}, {"portable", "avx2", "avx512"}}};
    char *targ = XMALLOC(strlen(threads_arg) + 1);
    strcpy(targ, threads_arg);
    for (char *tok = strtok(targ, ","); tok; tok = strtok(NULL, ",")) {
        const int t = atoi(tok);
        HT_CHECK(t >= 1, "bench_rows: bad thread count \"%s\" in --threads", tok);
        omp_set_num_threads(t);
        for (int pi = 0; pi < 3; pi++) {
            double best[3] = {1e30, 1e30, 1e30};
            for (int k = 0; k < parts[pi].n; k++) parts[pi].fn(&r, parts[pi].level[k]); // warm-up
            for (int rep = 0; rep < reps; rep++)
                for (int k = 0; k < parts[pi].n; k++) {
                    const double t0 = ht_now();
                    parts[pi].fn(&r, parts[pi].level[k]);
                    const double dt = ht_now() - t0;
                    if (dt < best[k]) best[k] = dt;
                }
            printf("%d thread(s) %-15s", t, parts[pi].name);
            for (int k = 0; k < parts[pi].n; k++)
                printf(" | %-8s %7.3f ms (x%.2f)", parts[pi].label[k], 1e3 * best[k], best[0] / best[k]);
            printf("\n");
        }
    }
    free(targ);
    free(r.raw); free(r.dout); free(r.out); free(r.draw); free(r.scales);
    free(r.p); free(r.g); free(r.m); free(r.v); free(r.x); free(r.eg);
    model_free(&model);
    comm_finalize(&comm);
    return 0;
}
