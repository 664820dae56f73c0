// test_hyper.c: gradient checks of the hypernetwork's pieces (every MLP with batch norm, gauge
// fixing, the entropy estimator with L1 and L2), gauge constraints and invariance of the network
// function on synthetic (and, when present, real MNIST) images, the estimator against known
// entropies, the paper's parameter counts, and the generators grouped per level (src/mlp.h
// MlpGroup) against the generators one after the other, bit for bit, with the batch-norm
// all-reduce count.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arch.h"
#include "common.h"
#include "comm.h"
#include "config.h"
#include "data.h"
#include "entropy.h"
#include "fdcheck.h"
#include "gauge.h"
#include "hyper.h"
#include "mlp.h"
#include "model.h"
#include "rng.h"
#include "target.h"
#include "testutil.h"

static void fill_randn(float *x, size_t n, double scale, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    for (size_t i = 0; i < n; i++) x[i] = (float)(scale * fd_randn(&s));
}

// ---------------- MLP with batch norm ----------------
typedef struct {
    const MlpArch *m; const ParamTable *t; float *params, *stats; MlpCache *c;
    float *x; int rows; const double *w; BnConfig bn; Comm *comm;
} MlpCtx;

static double mlp_loss(void *p) {
    MlpCtx *c = p;
    mlp_forward(c->m, c->t, c->params, c->stats, c->c, c->x, c->rows, c->rows, 1, &c->bn, c->comm);
    const float *out = mlp_out(c->m, c->c);
    double L = 0.0;
    const size_t n = (size_t)c->rows * c->m->dims[c->m->n_dense];
    for (size_t i = 0; i < n; i++) L += c->w[i] * out[i];
    return L;
}

// mode 0: the job's leaky slope, directional checks with a step too small to cross kinks.
// mode 1: slope 1 (leaky ReLU is piecewise linear and a finite difference across a kink is not
// the derivative; with slope 1 the MLP is smooth and every dense and batch-norm term is still
// exercised), per-element checks on the largest entries, which tolerate larger steps.
static void check_mlp(TestState *ts, Model *model, const MlpArch *m, int rows, Comm *comm, uint64_t seed,
                      int mode) {
    const ParamTable *t = &model->harch.table;
    MlpCache cache;
    mlp_cache_init(&cache, m, rows);
    const int in = m->dims[0], out = m->dims[m->n_dense];
    float *x = XALLOC_FLOATS((size_t)rows * in), *dx = XALLOC_FLOATS((size_t)rows * in);
    double *w = malloc(sizeof(double) * rows * out);
    float *dout = XALLOC_FLOATS((size_t)rows * out);
    fill_randn(x, (size_t)rows * in, 1.0, seed);
    uint64_t s = seed + 99;
    for (int i = 0; i < rows * out; i++) { w[i] = fd_randn(&s); dout[i] = (float)w[i]; }
    // make batch-norm scales/offsets non-trivial so their gradients are exercised
    for (int i = 0; i < m->n_dense - 1; i++) {
        fill_randn(model->params + t->views[m->gamma[i]].offset, t->views[m->gamma[i]].size, 0.3, seed + i);
        for (size_t k = 0; k < t->views[m->gamma[i]].size; k++) model->params[t->views[m->gamma[i]].offset + k] += 1.0f;
        fill_randn(model->params + t->views[m->beta[i]].offset, t->views[m->beta[i]].size, 0.3, seed + 50 + i);
    }
    const float alpha = mode == 0 ? (float)model->job.leaky_alpha : 1.0f;
    MlpCtx c = {m, t, model->params, model->stats, &cache, x, rows, w,
                {alpha, model->job.bn_eps, model->job.bn_decay}, comm};
    memset(model->grads, 0, t->n_params * sizeof(float));
    mlp_loss(&c);
    mlp_backward(m, t, model->params, model->grads, &cache, dout, dx, &c.bn, comm);
    char name[200];
    const char *tag = mode == 0 ? "" : " (slope 1)";
    for (int i = 0; i < m->n_dense; i++) {
        const ParamView *k = &t->views[m->kernel[i]];
        snprintf(name, sizeof(name), "%s%s", k->name, tag);
        if (mode == 0)
            fd_directional(ts, name, mlp_loss, &c, model->params + k->offset, model->grads + k->offset,
                           k->size, 1e-3 * sqrt(model->job.init_scale / k->shape[0]), 1e-2, 1e-6, seed + i);
        else
            fd_elements(ts, name, mlp_loss, &c, model->params + k->offset, model->grads + k->offset,
                        k->size, 1e-3, 3e-2, 1e-3, 8);
        if (i == m->n_dense - 1) continue;
        const ParamView *g = &t->views[m->gamma[i]], *b = &t->views[m->beta[i]];
        snprintf(name, sizeof(name), "%s%s", g->name, tag);
        if (mode == 0)
            fd_directional(ts, name, mlp_loss, &c, model->params + g->offset, model->grads + g->offset,
                           g->size, 1e-3, 1e-2, 1e-6, seed + 10 + i);
        else
            fd_elements(ts, name, mlp_loss, &c, model->params + g->offset, model->grads + g->offset,
                        g->size, 1e-3, 3e-2, 1e-3, 5);
        // With slope 1 a batch-norm offset followed by a linear layer and another batch norm has
        // exactly zero gradient (the next batch norm removes the shift): only mode 0 tests it.
        snprintf(name, sizeof(name), "%s%s", b->name, tag);
        if (mode == 0)
            fd_directional(ts, name, mlp_loss, &c, model->params + b->offset, model->grads + b->offset,
                           b->size, 1e-3, 1e-2, 1e-6, seed + 20 + i);
        else if (i == m->n_dense - 2)
            fd_elements(ts, name, mlp_loss, &c, model->params + b->offset, model->grads + b->offset,
                        b->size, 1e-3, 3e-2, 1e-3, 5);
    }
    snprintf(name, sizeof(name), "%s/input%s", m->name, tag);
    if (mode == 0) fd_directional(ts, name, mlp_loss, &c, x, dx, (size_t)rows * in, 1e-3, 1e-2, 1e-6, seed + 30);
    else fd_elements(ts, name, mlp_loss, &c, x, dx, (size_t)rows * in, 1e-3, 3e-2, 1e-3, 5);
    mlp_cache_free(&cache);
    free(x); free(dx); free(w); free(dout);
}

static void test_mlps(TestState *ts, Comm *comm) {
    printf("MLP + batch norm gradients (tiny job: every MLP)\n");
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    Model model;
    model_init(&model, &job);
    for (int mode = 0; mode < 2; mode++) {
        check_mlp(ts, &model, &model.harch.extractor, 7, comm, 1, mode);
        for (int l = 0; l < model.harch.n_gens; l++)
            check_mlp(ts, &model, &model.harch.gens[l], 7 * model.harch.gen_codes[l], comm, 10 + l, mode);
    }
    model_free(&model);
    printf("MLP + batch norm gradients (paper job: extractor and W1)\n");
    job_defaults(&job);
    model_init(&model, &job);
    check_mlp(ts, &model, &model.harch.extractor, 8, comm, 3, 1);
    check_mlp(ts, &model, &model.harch.gens[0], 8 * 32, comm, 4, 1);
    model_free(&model);
}

// The AVX2 batch-norm row kernels against the portable ones: forward (training and evaluation),
// backward, parameter gradients, running averages and input gradients are bitwise identical for
// every MLP of the tiny job (widths 10 and 6: vector tails) and of the paper job; a NaN input
// reaches the output in both (the branch-free leaky ReLU keeps NaN).
static int mlp_run(const MlpArch *m, Model *model, int rows, int simd, const float *x, const float *dout,
                   float *out, float *dx, float *grads, float *stats, Comm *comm) {
    const ParamTable *t = &model->harch.table;
    MlpCache c;
    mlp_cache_init(&c, m, rows);
    const int have = c.simd;
    c.simd = simd && have;
    const BnConfig bn = {(float)model->job.leaky_alpha, model->job.bn_eps, model->job.bn_decay};
    const size_t no = (size_t)rows * m->dims[m->n_dense];
    memcpy(stats, model->stats, t->n_stat * sizeof(float));
    memset(grads, 0, t->n_params * sizeof(float));
    mlp_forward(m, t, model->params, stats, &c, x, rows, rows, 1, &bn, comm);
    mlp_backward(m, t, model->params, grads, &c, dout, dx, &bn, comm);
    mlp_forward(m, t, model->params, stats, &c, x, rows, rows, 0, &bn, comm);
    memcpy(out, mlp_out(m, &c), no * sizeof(float));
    mlp_cache_free(&c);
    return have;
}

static void test_mlp_simd(TestState *ts, Comm *comm) {
    printf("batch-norm row kernels: AVX2 == portable, bitwise\n");
    const char *jobs[2] = {"jobs/tiny.json", NULL};
    for (int ji = 0; ji < 2; ji++) {
        Job job;
        job_defaults(&job);
        if (jobs[ji]) job_load_file(&job, jobs[ji]);
        Model model;
        model_init(&model, &job);
        const ParamTable *t = &model.harch.table;
        fill_randn(model.params, t->n_params, 0.3, 77);
        for (int l = -1; l < model.harch.n_gens; l++) {
            const MlpArch *m = l < 0 ? &model.harch.extractor : &model.harch.gens[l];
            const int rows = l < 0 ? 9 : 9 * model.harch.gen_codes[l];
            const size_t ni = (size_t)rows * m->dims[0], no = (size_t)rows * m->dims[m->n_dense];
            float *x = XALLOC_FLOATS(ni), *dout = XALLOC_FLOATS(no), *out[2], *dx[2], *g[2], *st[2];
            fill_randn(x, ni, 1.0, 80 + l);
            fill_randn(dout, no, 1.0, 90 + l);
            int have = 0;
            for (int v = 0; v < 2; v++) {
                out[v] = XALLOC_FLOATS(no); dx[v] = XALLOC_FLOATS(ni);
                g[v] = XALLOC_FLOATS(t->n_params); st[v] = XALLOC_FLOATS(t->n_stat);
                have = mlp_run(m, &model, rows, v, x, dout, out[v], dx[v], g[v], st[v], comm);
            }
            T_CHECK(ts, !memcmp(out[0], out[1], no * sizeof(float)) && !memcmp(dx[0], dx[1], ni * sizeof(float)) &&
                        !memcmp(g[0], g[1], t->n_params * sizeof(float)) &&
                        !memcmp(st[0], st[1], t->n_stat * sizeof(float)),
                    "%s %s (%d rows): outputs, input and parameter gradients, running averages identical%s",
                    job.name, m->name, rows, have ? "" : " (no AVX2 on this CPU: portable twice)");
            if (l == 0) {
                x[3] = NAN;
                int nan_out[2];
                for (int v = 0; v < 2; v++) {
                    mlp_run(m, &model, rows, v, x, dout, out[v], dx[v], g[v], st[v], comm);
                    nan_out[v] = 0;
                    for (size_t i = 0; i < no; i++) nan_out[v] |= isnan(out[v][i]);
                }
                T_CHECK(ts, nan_out[0] && nan_out[1], "%s %s: a NaN input gives NaN outputs (portable %d, AVX2 %d)",
                        job.name, m->name, nan_out[0], nan_out[1]);
            }
            for (int v = 0; v < 2; v++) { free(out[v]); free(dx[v]); free(g[v]); free(st[v]); }
            free(x); free(dout);
        }
        model_free(&model);
    }
}

// ---------------- gauge fixing ----------------
typedef struct { const TargetArch *a; int n; float *raw, *out, *scales; const double *w; } GaugeCtx;

static double gauge_loss(void *p) {
    GaugeCtx *c = p;
    gauge_forward(c->a, c->n, c->raw, c->out, c->scales);
    double L = 0.0;
    for (size_t i = 0; i < (size_t)c->n * c->a->n_weights; i++) L += c->w[i] * c->out[i];
    return L;
}

static void test_gauge_grad(TestState *ts) {
    printf("gauge fixing gradient\n");
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    TargetArch a;
    arch_build_target(&a, &job);
    const int n = 3;
    const size_t W = a.n_weights * n;
    float *raw = XALLOC_FLOATS(W), *out = XALLOC_FLOATS(W), *g = XALLOC_FLOATS(W);
    float *scales = XALLOC_FLOATS((size_t)n * gauge_n_scales(&a));
    double *w = malloc(W * sizeof(double));
    fill_randn(raw, W, 0.5, 5);
    uint64_t s = 77;
    for (size_t i = 0; i < W; i++) { w[i] = fd_randn(&s); g[i] = (float)w[i]; }
    GaugeCtx c = {&a, n, raw, out, scales, w};
    gauge_loss(&c);
    gauge_backward(&a, n, raw, scales, g, g);
    for (uint64_t k = 0; k < 3; k++)
        fd_directional(ts, "gauge/raw", gauge_loss, &c, raw, g, W, 1e-3, 1e-2, 1e-6, 40 + k);
    fd_elements(ts, "gauge/raw", gauge_loss, &c, raw, g, W, 1e-3, 2e-2, 1e-3, 40);
    // every layer separately: a direction restricted to one layer
    for (int l = 0; l < a.n_layers; l++) {
        char name[64];
        snprintf(name, sizeof(name), "gauge/raw layer %d", l + 1);
        fd_directional(ts, name, gauge_loss, &c, raw + a.layers[l].offset, g + a.layers[l].offset,
                       a.layers[l].size, 1e-3, 1e-2, 1e-6, 60 + l);
    }
    free(raw); free(out); free(g); free(scales); free(w);
}

// Gauge fixing leaves the network function unchanged: max |p(raw) - p(gauge-fixed)| over n_img
// images, for networks 0..3 (network 4 has unit-scale weights and saturated outputs).
static void gauge_outputs(TestState *ts, const TargetArch *a, const float *raw, const float *fixed,
                          int n, int n_img, const float *images, const char *what) {
    TargetNet tn;
    target_init(&tn, a, n_img, 0);
    float *p_raw = XALLOC_FLOATS((size_t)n * n_img * a->classes), *p_fix = XALLOC_FLOATS((size_t)n * n_img * a->classes);
    target_forward(&tn, n, raw, n_img, images, 0, p_raw);
    target_forward(&tn, n, fixed, n_img, images, 0, p_fix);
    for (int k = 0; k < 4; k++) {
        double md = 0.0, spread = 0.0;
        for (int i = 0; i < n_img * a->classes; i++) {
            size_t o = (size_t)k * n_img * a->classes + i;
            md = fmax(md, fabs(p_raw[o] - p_fix[o]));
            spread = fmax(spread, fabs(p_raw[o] - 0.1));
        }
        T_CHECK(ts, md <= 1e-5, "network %d: max |p(raw) - p(gauge-fixed)| = %.2e over %d %s "
                "(outputs vary by up to %.3f from uniform)", k, md, n_img, what, spread);
        if (k >= 2) T_CHECK(ts, spread > 0.05, "network %d has non-trivial outputs on %s (%.3f)", k, what, spread);
    }
    target_free(&tn);
    free(p_raw); free(p_fix);
}

// Gauge fixing leaves outputs unchanged (on synthetic images, and on real MNIST images when
// present) and the constraints hold (no images needed: these checks always run).
static void test_gauge_invariance(TestState *ts, Comm *comm) {
    printf("gauge fixing: constraints and invariance (paper architecture)\n");
    Job job;
    job_defaults(&job);
    Model model;
    model_init(&model, &job);
    const TargetArch *a = &model.tarch;
    const int n = 5, n_img = 100;
    const size_t W = a->n_weights;
    float *raw = XALLOC_FLOATS(n * W), *fixed = XALLOC_FLOATS(n * W);
    float *scales = XALLOC_FLOATS((size_t)n * gauge_n_scales(a));
    // networks 0, 1: generated by the hypernetwork at initialization; 2, 3: random weights with
    // each filter scaled by a random factor in [0.05, 20] (what gauge fixing must undo)
    HyperNet hn;
    hyper_init(&hn, &model.harch, a, 2);
    float z[2 * 300];
    rng_uniform(1, RNG_STREAM_TEST, 0, 0, -1.0f, 1.0f, z, 600);
    BnConfig bn = {0.05f, 1e-7, 0.98};
    hyper_forward(&hn, model.params, model.stats, z, 2, 2, 1, &bn, comm, raw);
    uint64_t s = 123;
    for (int k = 2; k < n; k++)
        for (int l = 0; l < a->n_layers; l++) {
            const TargetLayer *L = &a->layers[l];
            for (int f = 0; f < L->filters; f++) {
                double fs = exp(fd_randn(&s) * 1.0);
                fs = fmin(fmax(fs, 0.05), 20.0);
                // network 2: He-scaled, filter scales in [0.05, 20]; 3: He-scaled, scales in
                // [0.5, 2]; 4: unit-scale weights (constraint check only: its logits are huge)
                if (k >= 3) fs = fmin(fmax(fs, 0.5), 2.0);
                const double sd = k == 4 ? 1.0 : sqrt(2.0 / L->fan_in);
                for (int j = 0; j <= L->fan_in; j++)
                    raw[k * W + L->offset + (size_t)f * (L->fan_in + 1) + j] = (float)(fs * fd_randn(&s) * sd);
            }
        }
    gauge_forward(a, n, raw, fixed, scales);
    // constraints
    for (int k = 0; k < n; k++) {
        double worst = 0.0;
        for (int l = 0; l + 1 < a->n_layers; l++) {
            const TargetLayer *L = &a->layers[l];
            for (int f = 0; f < L->filters; f++) {
                const float *w = fixed + k * W + L->offset + (size_t)f * (L->fan_in + 1);
                double ms = 0.0;
                for (int j = 0; j <= L->fan_in; j++) ms += (double)w[j] * w[j];
                worst = fmax(worst, fabs(ms / (L->fan_in + 1) - 1.0));
            }
        }
        // The two 1e-8 terms of the original code (DESIGN.md) make the mean square
        // q / (sqrt(q + 1e-8) + 1e-8)^2 for a filter of raw mean square q: exactly 1 only for
        // filters well above 1e-8 (network 4, tolerance 1e-5). Small filters (the hypernetwork at
        // initialization, He-scaled weights after the previous layer's scale) deviate by up to
        // ~3e-2, as in the original.
        const double tol = k == 4 ? 1e-5 : 5e-2;
        T_CHECK(ts, worst < tol, "network %d: per-filter mean square of layers 1..m-1 is 1 (max dev %.2e, tol %.0e)",
                k, worst, tol);
        const TargetLayer *L = &a->layers[a->n_layers - 1];
        double mean = 0.0;
        for (int f = 0; f < L->filters; f++) mean += fixed[k * W + L->offset + (size_t)f * (L->fan_in + 1) + L->fan_in];
        mean /= L->filters;
        T_CHECK(ts, fabs(mean) < 1e-6, "network %d: output bias mean %.2e", k, mean);
    }
    // invariance on synthetic images: a few bright strokes on a dark background, like digits
    const int img = a->in_size;
    float *synth = XALLOC_FLOATS((size_t)n_img * img);
    rng_uniform(2, RNG_STREAM_TEST, 0, 0, 0.0f, 1.0f, synth, n_img * img);
    for (size_t i = 0; i < (size_t)n_img * img; i++) synth[i] = synth[i] > 0.8f ? synth[i] : 0.0f;
    gauge_outputs(ts, a, raw, fixed, n, n_img, synth, "synthetic images");
    free(synth);
    // and on real images
    const char *dir = t_mnist_dir();
    if (access(dir, R_OK) != 0) {
        printf("  SKIPPED (no MNIST in %s): invariance on real MNIST images\n", dir);
    } else {
        Mnist data;
        mnist_load(&data, dir, 1000, 200, 1);
        gauge_outputs(ts, a, raw, fixed, n, n_img, data.val.images, "MNIST images");
        mnist_free(&data);
    }
    hyper_free(&hn);
    free(raw); free(fixed); free(scales);
    model_free(&model);
}

// ---------------- entropy ----------------
typedef struct { Comm *comm; EntropyWork *w; float *x; int N; size_t D; Distance dist; int d; } EntCtx;

static double ent_loss(void *p) {
    EntCtx *c = p;
    return entropy_estimate(c->comm, c->w, c->x, c->N, c->D, 0, c->N, c->dist, c->d, 0.0f, NULL);
}

static void test_entropy_grad(TestState *ts, Comm *comm, Distance dist) {
    const char *dn = dist == DIST_L1 ? "L1" : "L2";
    printf("entropy gradient (%s)\n", dn);
    const int N = 9;
    const size_t D = 6;
    float *x = XALLOC_FLOATS(N * D), *g = XALLOC_FLOATS(N * D), *gself = XALLOC_FLOATS(N * D);
    fill_randn(x, N * D, 1.0, dist == DIST_L1 ? 11 : 12);
    EntropyWork w;
    entropy_work_init(&w, N);
    EntCtx c = {comm, &w, x, N, D, dist, 5};
    entropy_estimate(comm, &w, x, N, D, 0, N, dist, 5, 1.0f, g);
    // Some sample must be the neighbour of another (so the neighbour term is exercised).
    int chosen = 0;
    for (int i = 0; i < N; i++) for (int j = 0; j < N; j++) chosen |= w.nn[j] == i;
    T_CHECK(ts, chosen, "%s: some samples are nearest neighbours of others", dn);
    // The gradient without the neighbour terms must differ (the test can tell them apart).
    for (int k = 0; k < N; k++)
        for (size_t q = 0; q < D; q++) {
            const int j = w.nn[k];
            double diff = (double)x[k * D + q] - x[j * D + q];
            double e = w.eps[k];
            double dd = dist == DIST_L1 ? (diff > 0 ? 1 : -1) : diff / e;
            gself[k * D + q] = (float)(5.0 / N / (e + ENTROPY_EPS) * dd);
        }
    double dmax = 0.0;
    for (size_t i = 0; i < N * D; i++) dmax = fmax(dmax, fabs(g[i] - gself[i]));
    T_CHECK(ts, dmax > 1e-3, "%s: neighbour contributions change the gradient (max %.3e)", dn, dmax);
    char name[64];
    snprintf(name, sizeof(name), "entropy %s", dn);
    fd_elements(ts, name, ent_loss, &c, x, g, N * D, 1e-3, 1e-2, 1e-4, (int)(N * D));
    fd_directional(ts, name, ent_loss, &c, x, g, N * D, 1e-4, 1e-2, 1e-6, 5);
    entropy_work_free(&w);
    free(x); free(g); free(gself);
}

// The fast distance kernels against the definition: the AVX2 and the portable version give the
// same bits (same 8-lane order, no FMA), distances are symmetric, and both are within 1e-12
// (relative) of a plain sequential double sum; the estimate and its gradient with and without
// the AVX2 kernels are identical; the neighbours are those of the sequential distances.
static double seq_distance(const float *a, const float *b, size_t D, Distance dist) {
    double s = 0.0;
    for (size_t k = 0; k < D; k++) {
        const double d = (double)a[k] - (double)b[k];
        s += dist == DIST_L1 ? fabs(d) : d * d;
    }
    return dist == DIST_L1 ? s : sqrt(s);
}

static void test_entropy_kernels(TestState *ts, Comm *comm) {
    printf("entropy distance kernels (AVX2 vs portable vs sequential sums)\n");
    const size_t lens[6] = {1, 7, 8, 9, 1003, 20018};
    float *a = XALLOC_FLOATS(20018), *b = XALLOC_FLOATS(20018);
    for (int dist = 0; dist < 2; dist++)
        for (int li = 0; li < 6; li++) {
            const size_t D = lens[li];
            fill_randn(a, D, 0.1, 100 + li);
            fill_randn(b, D, 0.1, 200 + li);
            const double f = entropy_distance(a, b, D, (Distance)dist), r = entropy_distance(b, a, D, (Distance)dist);
            const double p = entropy_distance_portable(a, b, D, (Distance)dist), q = seq_distance(a, b, D, (Distance)dist);
            T_CHECK(ts, f == p && f == r && fabs(f - q) <= 1e-12 * q,
                    "%s, D = %zu: dispatched %.17g, reversed %.17g, portable %.17g, sequential %.17g",
                    dist == DIST_L1 ? "L1" : "L2", D, f, r, p, q);
        }
    free(a); free(b);
    const int N = 32;
    const size_t D = 1003;
    float *x = XALLOC_FLOATS(N * D), *g1 = XALLOC_FLOATS(N * D), *g0 = XALLOC_FLOATS(N * D);
    fill_randn(x, N * D, 0.1, 300);
    for (int dist = 0; dist < 2; dist++) {
        EntropyWork w;
        entropy_work_init(&w, N);
        memset(g1, 0, N * D * sizeof(float));
        memset(g0, 0, N * D * sizeof(float));
        const double H1 = entropy_estimate(comm, &w, x, N, D, 0, N, (Distance)dist, 300, -1.0f, g1);
        int nn_ok = 1;
        for (int i = 0; i < N; i++) {
            int arg = -1;
            double best = INFINITY;
            for (int j = 0; j < N; j++) {
                const double d = seq_distance(x + i * D, x + j * D, D, (Distance)dist);
                if (j != i && d < best) { best = d; arg = j; }
            }
            nn_ok &= arg == w.nn[i] && fabs(w.eps[i] - best) <= 1e-6 * best;
        }
        w.simd = 0;
        const double H0 = entropy_estimate(comm, &w, x, N, D, 0, N, (Distance)dist, 300, -1.0f, g0);
        T_CHECK(ts, nn_ok, "%s: neighbours and distances of the sequential sums", dist == DIST_L1 ? "L1" : "L2");
        T_CHECK(ts, H1 == H0 && memcmp(g1, g0, N * D * sizeof(float)) == 0,
                "%s: estimate and gradient identical with and without AVX2 (H %.17g vs %.17g)",
                dist == DIST_L1 ? "L1" : "L2", H1, H0);
        entropy_work_free(&w);
    }
    free(x); free(g1); free(g0);
}

static double log_unit_ball(int d, Distance dist) {
    if (dist == DIST_L1) return d * log(2.0) - lgamma(d + 1.0);
    return 0.5 * d * log(3.14159265358979323846) - lgamma(0.5 * d + 1.0);
}

// Full Kozachenko–Leonenko estimate (k = 1): ours + (-psi(1) + log V_d).
static void test_entropy_known(TestState *ts, Comm *comm) {
    printf("entropy estimator vs known entropies (error shrinks as N grows)\n");
    const int sizes[3] = {50, 400, 3200};
    const int d = 2;
    for (int dist = 0; dist < 2; dist++)
        for (int which = 0; which < 2; which++) {
            // which 0: U[0,1]^2 (H = 0); 1: N(0, I_2) (H = log(2 pi e))
            const double H_true = which ? log(2.0 * 3.14159265358979323846 * exp(1.0)) : 0.0;
            double err[3];
            for (int si = 0; si < 3; si++) {
                const int N = sizes[si], trials = 4;
                double mean_err = 0.0;
                for (int t = 0; t < trials; t++) {
                    float *x = XALLOC_FLOATS((size_t)N * d);
                    for (int i = 0; i < N; i++) {
                        Philox4 r = philox4x32(7 + t, RNG_STREAM_TEST, (uint32_t)si, (uint32_t)i, 0);
                        if (which == 0) { x[i * d] = rng_u01(r.v[0]); x[i * d + 1] = rng_u01(r.v[1]); }
                        else {
                            double u1 = rng_u01_open(r.v[0]), u2 = rng_u01_open(r.v[1]);
                            x[i * d] = (float)(sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2));
                            x[i * d + 1] = (float)(sqrt(-2 * log(u1)) * sin(6.283185307179586 * u2));
                        }
                    }
                    EntropyWork w;
                    entropy_work_init(&w, N);
                    double H = entropy_estimate(comm, &w, x, N, d, 0, N, (Distance)dist, d, 0.0f, NULL);
                    H += -digamma(1.0) + log_unit_ball(d, (Distance)dist);
                    mean_err += fabs(H - H_true) / trials;
                    entropy_work_free(&w);
                    free(x);
                }
                err[si] = mean_err;
            }
            T_CHECK(ts, err[2] < err[0] && err[2] < 0.05,
                    "%s %s: |H_est - H| = %.4f (N=50), %.4f (N=400), %.4f (N=3200)", dist ? "L2" : "L1",
                    which ? "Gaussian" : "uniform", err[0], err[1], err[2]);
        }
    // psi(n) = -gamma + sum_{k<n} 1/k
    double worst = 0.0, h = 0.0;
    for (int n = 1; n <= 300; n++) {
        worst = fmax(worst, fabs(digamma((double)n) - (h - 0.57721566490153286)));
        h += 1.0 / n;
    }
    T_CHECK(ts, worst < 1e-12, "digamma(n) = -gamma + H_(n-1) for n = 1..300 (max err %.1e)", worst);
}

static void test_counts(TestState *ts) {
    printf("parameter counts of the paper job\n");
    Job job;
    job_defaults(&job);
    TargetArch t;
    HyperArch h;
    arch_build_target(&t, &job);
    arch_build_hyper(&h, &job, &t);
    T_CHECK(ts, h.table.n_params == 633640, "trainable hypernetwork parameters: %zu (paper: 633,640)", h.table.n_params);
    T_CHECK(ts, h.table.n_weights == 631240, "dense weights: %zu (paper: 631,240)", h.table.n_weights);
    T_CHECK(ts, h.table.n_params - h.table.n_weights == 2400, "batch-norm scales/offsets: %zu (2,400)",
            h.table.n_params - h.table.n_weights);
    T_CHECK(ts, t.n_weights == 20018, "target weights: %zu (paper: 20,018)", t.n_weights);
    T_CHECK(ts, h.n_codes == 57, "codes per sample: %d (32 + 16 + 8 + 1)", h.n_codes);
    Job j2;
    job_defaults(&j2);
    job_load_file(&j2, "jobs/mnist.json");
    char *a = job_to_json(&j2), *b = job_to_json(&job);
    T_CHECK(ts, strcmp(a, b) == 0, "jobs/mnist.json resolves to the built-in defaults (the paper's run)");
    free(a); free(b);
}

// ---------------- the generators as one group ----------------
// The hypernetwork as it ran before the generators were grouped: each generator through
// mlp_forward / mlp_backward on its own, one after the other. train forward + backward + eval forward.
static void hyper_per_generator(const Model *m, const float *z, int n, const float *draw, const BnConfig *bn,
                                Comm *comm, float *raw, float *raw_eval, float *grads, float *stats) {
    const HyperArch *h = &m->harch;
    const TargetArch *t = &m->tarch;
    const size_t cs = (size_t)h->code_size, W = t->n_weights;
    MlpCache ext, gen[HT_MAX_OPS];
    mlp_cache_init(&ext, &h->extractor, n);
    float *gin[HT_MAX_OPS], *dgo[HT_MAX_OPS], *dgi[HT_MAX_OPS];
    for (int l = 0; l < h->n_gens; l++) {
        const int rows = n * h->gen_codes[l];
        mlp_cache_init(&gen[l], &h->gens[l], rows);
        gin[l] = XALLOC_FLOATS((size_t)rows * cs);
        dgi[l] = XALLOC_FLOATS((size_t)rows * cs);
        dgo[l] = XALLOC_FLOATS((size_t)rows * h->gen_out[l]);
    }
    float *dcodes = XALLOC_FLOATS((size_t)n * h->n_codes * cs);
    for (int pass = 0; pass < 2; pass++) {
        const int train = pass == 0;
        float *out_raw = train ? raw : raw_eval;
        mlp_forward(&h->extractor, &h->table, m->params, stats, &ext, z, n, n, train, bn, comm);
        const float *codes = mlp_out(&h->extractor, &ext);
        for (int l = 0; l < h->n_gens; l++) {
            const int nc = h->gen_codes[l];
            for (int b = 0; b < n; b++)
                memcpy(gin[l] + (size_t)b * nc * cs, codes + ((size_t)b * h->n_codes + h->gen_code_offset[l]) * cs,
                       nc * cs * sizeof(float));
            mlp_forward(&h->gens[l], &h->table, m->params, stats, &gen[l], gin[l], n * nc, n * nc, train, bn, comm);
            const size_t size = t->layers[l].size;
            for (int b = 0; b < n; b++)
                memcpy(out_raw + (size_t)b * W + t->layers[l].offset, mlp_out(&h->gens[l], &gen[l]) + (size_t)b * size,
                       size * sizeof(float));
        }
        if (!train) break;
        for (int l = 0; l < h->n_gens; l++) {
            const int nc = h->gen_codes[l];
            const size_t size = t->layers[l].size;
            for (int b = 0; b < n; b++)
                memcpy(dgo[l] + (size_t)b * size, draw + (size_t)b * W + t->layers[l].offset, size * sizeof(float));
            mlp_backward(&h->gens[l], &h->table, m->params, grads, &gen[l], dgo[l], dgi[l], bn, comm);
            for (int b = 0; b < n; b++)
                memcpy(dcodes + ((size_t)b * h->n_codes + h->gen_code_offset[l]) * cs, dgi[l] + (size_t)b * nc * cs,
                       nc * cs * sizeof(float));
        }
        mlp_backward(&h->extractor, &h->table, m->params, grads, &ext, dcodes, NULL, bn, comm);
    }
    mlp_cache_free(&ext);
    for (int l = 0; l < h->n_gens; l++) { mlp_cache_free(&gen[l]); free(gin[l]); free(dgi[l]); free(dgo[l]); }
    free(dcodes);
}

static int same_floats(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

// hyper_forward/backward (the generators as one MlpGroup, level by level) give exactly the bits of
// the generators run one after the other, for the paper job and for generators of depths 1, 2, 1,
// 3; and one training forward + backward makes 2 x (extractor + deepest generator hidden levels)
// comm_bn_allreduce calls (counted on one process too).
static void test_hyper_group(TestState *ts, Comm *comm, const char *label, const char *layers) {
    Job job;
    job_defaults(&job); // the paper job, or the tiny one with these layers
    if (layers) {
        job_load_file(&job, "jobs/tiny.json");
        job_set(&job, layers);
    }
    job_validate(&job);
    Model m;
    model_init(&m, &job);
    const HyperArch *h = &m.harch;
    const ParamTable *t = &h->table;
    const BnConfig bn = {(float)job.leaky_alpha, job.bn_eps, job.bn_decay};
    fill_randn(m.params, t->n_params, 0.3, 71);
    const int n = 5;
    const size_t W = m.tarch.n_weights;
    float *z = XALLOC_FLOATS((size_t)n * job.z_dim), *draw = XALLOC_FLOATS((size_t)n * W);
    fill_randn(z, (size_t)n * job.z_dim, 1.0, 72);
    fill_randn(draw, (size_t)n * W, 0.01, 73);
    float *raw[2], *eval[2], *grads[2], *stats[2];
    for (int v = 0; v < 2; v++) {
        raw[v] = XALLOC_FLOATS((size_t)n * W);
        eval[v] = XALLOC_FLOATS((size_t)n * W);
        grads[v] = XCALLOC(t->n_params, sizeof(float));
        stats[v] = XCALLOC(t->n_stat + 1, sizeof(float));
    }
    HyperNet hn;
    hyper_init(&hn, h, &m.tarch, n);
    const long c0 = comm->calls_bn;
    hyper_forward(&hn, m.params, stats[0], z, n, n, 1, &bn, comm, raw[0]);
    hyper_backward(&hn, m.params, grads[0], draw, &bn, comm);
    const long calls = comm->calls_bn - c0;
    hyper_forward(&hn, m.params, stats[0], z, n, n, 0, &bn, comm, eval[0]);
    hyper_free(&hn);
    hyper_per_generator(&m, z, n, draw, &bn, comm, raw[1], eval[1], grads[1], stats[1]);
    T_CHECK(ts, same_floats(raw[0], raw[1], (size_t)n * W) && same_floats(eval[0], eval[1], (size_t)n * W) &&
            same_floats(grads[0], grads[1], t->n_params) && same_floats(stats[0], stats[1], t->n_stat),
            "%s: generators grouped per level == one after the other, bit for bit (weights, eval weights, "
            "gradients, running statistics)", label);
    int deepest = 0;
    for (int l = 0; l < h->n_gens; l++)
        if (h->gens[l].n_dense - 1 > deepest) deepest = h->gens[l].n_dense - 1;
    const long want = 2L * (h->extractor.n_dense - 1 + deepest);
    T_CHECK(ts, calls == want, "%s: a training forward + backward makes %ld batch-norm all-reduces (expected "
            "2 x (%d + %d) = %ld)", label, calls, h->extractor.n_dense - 1, deepest, want);
    for (int v = 0; v < 2; v++) { free(raw[v]); free(eval[v]); free(grads[v]); free(stats[v]); }
    free(z); free(draw);
    model_free(&m);
}

int main(void) {
    TestState ts = {0, 0};
    Comm comm;
    comm_init(&comm, NULL, NULL);
    test_counts(&ts);
    test_mlps(&ts, &comm);
    test_mlp_simd(&ts, &comm);
    test_hyper_group(&ts, &comm, "paper job", NULL);
    test_hyper_group(&ts, &comm, "tiny job with generators of depths 1, 2, 1, 3",
                     "target.layers=[{\"type\":\"conv\",\"kernel\":5,\"filters\":4,\"gen_hidden\":[6]},"
                     "{\"type\":\"relu\"},{\"type\":\"maxpool\",\"kernel\":2},"
                     "{\"type\":\"conv\",\"kernel\":3,\"filters\":3,\"gen_hidden\":[5,4]},"
                     "{\"type\":\"relu\"},{\"type\":\"maxpool\",\"kernel\":2},"
                     "{\"type\":\"fc\",\"units\":5,\"gen_hidden\":[3]},{\"type\":\"relu\"},"
                     "{\"type\":\"fc\",\"units\":10,\"gen_hidden\":[4,3,2],\"per_filter\":false}]");
    test_gauge_grad(&ts);
    test_gauge_invariance(&ts, &comm);
    test_entropy_grad(&ts, &comm, DIST_L1);
    test_entropy_grad(&ts, &comm, DIST_L2);
    test_entropy_known(&ts, &comm);
    test_entropy_kernels(&ts, &comm);
    return test_summary(&ts, "test_hyper");
}
