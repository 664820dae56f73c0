// test_target.c: the target network (src/target.c).
//  - finite-difference gradient checks, op by op (conv weights/bias/input, maxpool, fc, relu,
//    softmax cross-entropy), and conv backward against naive double loops at the paper's sizes;
//  - the whole network w.r.t. theta (3 networks x 4 images, shared and per-network images):
//    float32 finite differences of target_loss_grad, and double finite differences of a naive
//    reference;
//  - forward against a naive double-precision reference (plain loops, no im2col) on the paper's
//    architecture and on a small one with a padded 3x3 pool;
//  - batched == one network alone, and 1 thread == 2 threads, bitwise;
//  - the whole-network checks above run once per implementation of the batched calls (reference,
//    and the AVX2 path where the CPU has it), and the AVX2 path is compared with the reference
//    on the paper network (training and validation shapes) and on small architectures that take
//    every branch of the fast path (see "AVX2 path against the reference" below);
//  - a timing line (not pass/fail): target_loss_grad on the paper network, 32 nets x 32 images.
//
// Tolerance of the float32 finite-difference checks. Everything under test runs in float32; the
// loss (a fixed random projection sum_j R_j out_j for single ops, the cross-entropy for the
// network) is accumulated in double, so the finite difference only sees the float32 rounding of
// the outputs. Central differences (L(x+h) - L(x-h)) / (x+h - x-h), with the step taken between
// the float values actually stored; h = 1e-2 for single ops (inputs and weights of scale ~1),
// 2^-11 ~ 5e-4 for the network (fewer kinks within reach, see check_network_grad):
//  - truncation: zero for conv, fc, relu and maxpool (piecewise linear; test points keep ReLU
//    inputs >= 0.1 from 0 and pool inputs >= 0.05 apart, so no kink lies within h); O(h^2) ~ 1e-4
//    relative for the softmax;
//  - roundoff: an output that sums K float32 products carries a rounding error of about
//    sqrt(K)*u*|out| (u = 2^-24 = 6e-8; worst case K*u). Summed over the m outputs that one
//    input touches (random signs) and divided by h, this is ~ sqrt(K)*u/h ~ 5e-5 (K = 75,
//    h = 1e-2) of the gradient's scale; the worst case K*u/h stays ~ 1e-3.
// Hence the rule |fd - an| <= atol + rtol*max(|fd|, |an|) with atol = 2e-3 * max|an| over the
// tensor (or layer) and rtol = 1e-2: above the worst-case roundoff, and still far below the error
// of any real bug (a wrong index or a missing term is an O(1) relative error). Each check prints
// its worst error as a percentage of this budget.
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "arch.h"
#include "adam.h"
#include "comm.h"
#include "common.h"
#include "forkcheck.h"
#include "entropy.h"
#include "gauge.h"
#include "target.h"
#include "testarch.h"
#include "testutil.h"

// ---- helpers ----

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { // splitmix64 -> [0, 1)
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}
static float srand_f(double scale) { return (float)((2.0 * urand() - 1.0) * scale); }
static void fill(float *x, size_t n, double scale) { for (size_t i = 0; i < n; i++) x[i] = srand_f(scale); }

static TargetOp make_op(OpType type, int h, int w, int c, int kernel, int out_c) {
    TargetOp op;
    memset(&op, 0, sizeof(op));
    op.type = type; op.in_h = h; op.in_w = w; op.in_c = c; op.kernel = kernel; op.layer = -1;
    switch (type) {
    case OP_CONV: op.out_h = h; op.out_w = w; op.out_c = out_c; break;
    case OP_FC: op.out_h = 1; op.out_w = 1; op.out_c = out_c; break;
    case OP_RELU: op.out_h = h; op.out_w = w; op.out_c = c; break;
    case OP_MAXPOOL: op.out_h = (h + kernel - 1) / kernel; op.out_w = (w + kernel - 1) / kernel;
        op.out_c = c; break;
    }
    return op;
}
static size_t in_size(const TargetOp *op) { return (size_t)op->in_h * op->in_w * op->in_c; }
static size_t out_size(const TargetOp *op) { return (size_t)op->out_h * op->out_w * op->out_c; }


static const char *const PAPER[] = {"c5:32", "r", "p2", "c5:16", "r", "p2", "f8", "r", "f10"};
static const char *const SMALL[] = {"c3:2", "r", "p2", "c3:3", "r", "p2", "f4", "r", "f3"};
static const char *const POOL3[] = {"c3:2", "r", "p3", "f3"};
// Architectures the AVX2 path runs (conv filters a multiple of 8), chosen to take its branches:
// two blocks; 24 filters (a 16- and an 8-column block), 3 input channels and a 3x3 pool with
// clipped windows; conv -> conv without relu or pool; kernel 1 and a pool without relu; no conv.
static const char *const FAST_A[] = {"c3:8", "r", "p2", "c3:16", "r", "p2", "f4", "r", "f3"};
static const char *const FAST_B[] = {"c5:24", "r", "p3", "f5"};
static const char *const FAST_C[] = {"c3:8", "c3:16", "r", "f6", "r", "f3"};
static const char *const FAST_D[] = {"c1:8", "p2", "f3"};
static const char *const FC_ONLY[] = {"f6", "r", "f3"};
// Both blocks routed (C a multiple of 8): the first without relu and with a clipped 3x3 pool, the
// second with a 5x5 kernel larger than its 3x2 input (window rows of 40 floats: 5 vectors).
static const char *const FAST_E[] = {"c3:8", "p3", "c5:16", "r", "p2", "f3"};
// For the AVX-512 kernels: 40 filters (a 32- and a masked 8-column block) fused with a pool of
// odd output width (a single-window tile); 48 filters (32 + 16) and a routed block whose window
// rows (5 x 48 = 240 floats) take two gather calls (160 + 80).
static const char *const FAST_F[] = {"c3:40", "r", "p2", "f3"};
static const char *const FAST_G[] = {"c3:48", "r", "p2", "c5:16", "r", "p2", "f3"};

// Implementation of the batched calls under test in the whole-network checks.
static TargetImpl g_impl = TARGET_IMPL_REFERENCE;

// target_init, then the implementation under test when it can run this architecture here (the
// AVX2 path falls back to the reference for architectures it does not take).
static void net_init(TargetNet *t, const TargetArch *a, int max_images, int n_threads) {
    target_init(t, a, max_images, n_threads);
    target_set_impl(t, g_impl);
}

// Random weights: U(-s, s) with s = gain * sqrt(3 / fan_in) for weights, 0.1 for biases.
static void init_theta(const TargetArch *a, float *theta, double gain) {
    for (int l = 0; l < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        double s = gain * sqrt(3.0 / L->fan_in);
        for (int f = 0; f < L->filters; f++) {
            float *w = theta + L->offset + (size_t)f * (L->fan_in + 1);
            fill(w, (size_t)L->fan_in, s);
            w[L->fan_in] = srand_f(0.1);
        }
    }
}

// Compares analytic and finite-difference gradients with the rule in the header comment.
static void check_grad(TestState *ts, const char *name, const float *an, const double *fd, size_t n) {
    double amax = 0.0, worst = 0.0, worst_err = 0.0;
    for (size_t i = 0; i < n; i++) if (fabs(an[i]) > amax) amax = fabs(an[i]);
    const double atol = 2e-3 * amax, rtol = 1e-2;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double m = fabs(an[i]) > fabs(fd[i]) ? fabs(an[i]) : fabs(fd[i]);
        double err = fabs(an[i] - fd[i]), budget = atol + rtol * m;
        if (err / budget > worst || isnan(err)) { worst = isnan(err) ? INFINITY : err / budget; worst_err = err; }
        if (!(err <= budget)) bad++;
    }
    T_CHECK(ts, bad == 0 && amax > 0.0, "%-34s n=%4zu  max|grad| %.3e  max err %.2e = %5.1f%% of budget",
            name, n, amax, worst_err, 100.0 * worst);
}

static double dot_d(const double *r, const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += r[i] * (double)x[i];
    return s;
}

// Central difference of f at x[i]; f reads x. Returns the derivative estimate.
typedef double (*LossFn)(void *ctx);
static double central(float *x, double h, LossFn f, void *ctx) {
    const float v = *x, xp = (float)(v + h), xm = (float)(v - h);
    *x = xp; double lp = f(ctx);
    *x = xm; double lm = f(ctx);
    *x = v;
    return (lp - lm) / ((double)xp - (double)xm);
}

// ---- per-op checks ----

typedef struct {
    const TargetOp *op;
    int n;
    float *in, *w, *col, *out;
    double *r;
} OpCtx;

static double conv_loss(void *p) {
    OpCtx *c = p;
    target_conv_forward(c->op, c->n, c->in, c->w, c->col, c->out);
    return dot_d(c->r, c->out, (size_t)c->n * out_size(c->op));
}
static double fc_loss(void *p) {
    OpCtx *c = p;
    target_fc_forward(c->op, c->n, c->in, c->w, c->out);
    return dot_d(c->r, c->out, (size_t)c->n * out_size(c->op));
}
static int32_t pool_idx[4096];
static double pool_loss(void *p) {
    OpCtx *c = p;
    target_maxpool_forward(c->op, c->n, c->in, c->out, pool_idx);
    return dot_d(c->r, c->out, (size_t)c->n * out_size(c->op));
}
static double relu_loss(void *p) {
    OpCtx *c = p;
    target_relu_forward((size_t)c->n * in_size(c->op), c->in, c->out);
    return dot_d(c->r, c->out, (size_t)c->n * in_size(c->op));
}

// Gradient check of a conv or fc op: weights, biases and input.
static void check_dense_op(TestState *ts, const char *name, const TargetOp *op, int n) {
    const int conv = op->type == OP_CONV;
    const int K = conv ? op->kernel * op->kernel * op->in_c : (int)in_size(op), F = op->out_c;
    const size_t nin = (size_t)n * in_size(op), nout = (size_t)n * out_size(op);
    const size_t nw = (size_t)F * (K + 1), ncol = conv ? target_conv_scratch_floats(op, n) : 1;
    float *in = XALLOC_FLOATS(nin), *w = XALLOC_FLOATS(nw), *col = XALLOC_FLOATS(ncol);
    float *out = XALLOC_FLOATS(nout), *g = XALLOC_FLOATS(nout), *dw = XALLOC_FLOATS(nw);
    float *din = XALLOC_FLOATS(nin);
    double *r = XMALLOC(nout * sizeof(double)), *fd = XMALLOC((nw + nin) * sizeof(double));
    fill(in, nin, 1.0);
    fill(w, nw, 0.5);
    for (size_t i = 0; i < nout; i++) { r[i] = 2.0 * urand() - 1.0; g[i] = (float)r[i]; }
    OpCtx c = {op, n, in, w, col, out, r};
    LossFn f = conv ? conv_loss : fc_loss;
    if (conv) target_conv_backward(op, n, in, w, g, col, dw, din);
    else target_fc_backward(op, n, in, w, g, dw, din);
    for (size_t i = 0; i < nw; i++) fd[i] = central(&w[i], 1e-2, f, &c);
    for (size_t i = 0; i < nin; i++) fd[nw + i] = central(&in[i], 1e-2, f, &c);
    // weights and biases separately
    float *an_w = XALLOC_FLOATS(nw), *an_b = XALLOC_FLOATS(F);
    double *fd_w = XMALLOC(nw * sizeof(double)), *fd_b = XMALLOC(F * sizeof(double));
    size_t iw = 0;
    for (int ff = 0; ff < F; ff++) {
        for (int j = 0; j < K; j++, iw++) {
            an_w[iw] = dw[(size_t)ff * (K + 1) + j];
            fd_w[iw] = fd[(size_t)ff * (K + 1) + j];
        }
        an_b[ff] = dw[(size_t)ff * (K + 1) + K];
        fd_b[ff] = fd[(size_t)ff * (K + 1) + K];
    }
    char buf[96];
    snprintf(buf, sizeof(buf), "%s d/dweights", name);
    check_grad(ts, buf, an_w, fd_w, iw);
    snprintf(buf, sizeof(buf), "%s d/dbias", name);
    check_grad(ts, buf, an_b, fd_b, (size_t)F);
    snprintf(buf, sizeof(buf), "%s d/dinput", name);
    check_grad(ts, buf, din, fd + nw, nin);
    // din == NULL must leave dw identical
    float *dw2 = XALLOC_FLOATS(nw);
    if (conv) target_conv_backward(op, n, in, w, g, col, dw2, NULL);
    else target_fc_backward(op, n, in, w, g, dw2, NULL);
    snprintf(buf, sizeof(buf), "%s dw without input gradient", name);
    T_CHECK(ts, memcmp(dw, dw2, nw * sizeof(float)) == 0, "%s: bitwise equal", buf);
    free(in); free(w); free(col); free(out); free(g); free(dw); free(din); free(r); free(fd);
    free(an_w); free(an_b); free(fd_w); free(fd_b); free(dw2);
}

// Conv backward against naive double loops on shapes that span several im2col blocks (so that the
// dW accumulation over blocks and the flipped-kernel input gradient are both exercised at size).
// Float32 sums of R terms carry ~sqrt(R)*u relative error of the terms' scale: R <= 600 here,
// so 1e-5 * max|ref| is ~7x above it.
static void check_conv_backward_ref(TestState *ts, const char *name, const TargetOp *op, int n) {
    const int H = op->in_h, W = op->in_w, C = op->in_c, k = op->kernel, F = op->out_c, p = (k - 1) / 2;
    const int K = k * k * C;
    const size_t nin = (size_t)n * in_size(op), nout = (size_t)n * out_size(op), nw = (size_t)F * (K + 1);
    float *in = XALLOC_FLOATS(nin), *w = XALLOC_FLOATS(nw), *g = XALLOC_FLOATS(nout);
    float *dw = XALLOC_FLOATS(nw), *din = XALLOC_FLOATS(nin), *scratch = XALLOC_FLOATS(target_conv_scratch_floats(op, n));
    double *rdw = XCALLOC(nw, sizeof(double)), *rdin = XCALLOC(nin, sizeof(double));
    fill(in, nin, 1.0); fill(w, nw, 0.2); fill(g, nout, 1.0);
    target_conv_backward(op, n, in, w, g, scratch, dw, din);
    for (int b = 0; b < n; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *gg = g + (((size_t)b * H + y) * W + x) * F;
                for (int f = 0; f < F; f++) {
                    rdw[(size_t)f * (K + 1) + K] += gg[f];
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = y + ky - p, ix = x + kx - p;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            for (int c = 0; c < C; c++) {
                                const size_t ii = (((size_t)b * H + iy) * W + ix) * C + c;
                                const size_t wi = (size_t)f * (K + 1) + (size_t)(ky * k + kx) * C + c;
                                rdw[wi] += (double)gg[f] * in[ii];
                                rdin[ii] += (double)gg[f] * w[wi];
                            }
                        }
                }
            }
    double mw = 0, mi = 0, ew = 0, ei = 0;
    for (size_t i = 0; i < nw; i++) { mw = fmax(mw, fabs(rdw[i])); ew = fmax(ew, fabs(rdw[i] - dw[i])); }
    for (size_t i = 0; i < nin; i++) { mi = fmax(mi, fabs(rdin[i])); ei = fmax(ei, fabs(rdin[i] - din[i])); }
    T_CHECK(ts, ew <= 1e-5 * mw && ei <= 1e-5 * mi && !isnan(ew + ei),
            "%s x%d vs naive double: dW+bias max err %.1e (max %.1e), dIn max err %.1e (max %.1e), "
            "tol 1e-5 * max", name, n, ew, mw, ei, mi);
    free(in); free(w); free(g); free(dw); free(din); free(scratch); free(rdw); free(rdin);
}

// Values spaced by >= 0.05 in random order (no ties within a pool window, none within h).
static void fill_distinct(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.05 * (double)i - 0.025 * (double)n);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(urand() * (double)i);
        float t = x[i - 1]; x[i - 1] = x[j]; x[j] = t;
    }
}

static void check_pool(TestState *ts, const char *name, const TargetOp *op, int n) {
    const size_t nin = (size_t)n * in_size(op), nout = (size_t)n * out_size(op);
    float *in = XALLOC_FLOATS(nin), *out = XALLOC_FLOATS(nout), *g = XALLOC_FLOATS(nout);
    float *din = XALLOC_FLOATS(nin);
    double *r = XMALLOC(nout * sizeof(double)), *fd = XMALLOC(nin * sizeof(double));
    fill_distinct(in, nin);
    for (size_t i = 0; i < nout; i++) { r[i] = 2.0 * urand() - 1.0; g[i] = (float)r[i]; }
    OpCtx c = {op, n, in, NULL, NULL, out, r};
    HT_CHECK(nout <= 4096, "pool test too large");
    target_maxpool_forward(op, n, in, out, pool_idx);
    target_maxpool_backward(op, n, pool_idx, g, din);
    for (size_t i = 0; i < nin; i++) fd[i] = central(&in[i], 1e-2, pool_loss, &c);
    check_grad(ts, name, din, fd, nin);
    free(in); free(out); free(g); free(din); free(r); free(fd);
}

// Ties (e.g. windows of ReLU zeros): all of an output's gradient goes to the first maximum of its
// window in (h, w) order, in both the 4-channel vector path and the scalar remainder.
static void check_pool_ties(TestState *ts) {
    TargetOp op = make_op(OP_MAXPOOL, 5, 4, 6, 2, 0); // 6 channels: one vector of 4, 2 scalar
    const size_t nin = in_size(&op), nout = out_size(&op);
    float *in = XALLOC_FLOATS(nin), *out = XALLOC_FLOATS(nout), *g = XALLOC_FLOATS(nout);
    float *din = XALLOC_FLOATS(nin);
    int32_t idx[64];
    for (size_t i = 0; i < nout; i++) g[i] = 1.0f + (float)i;
    for (size_t i = 0; i < nin; i++) in[i] = (i / 6) % 3 == 0 ? 1.0f : 0.0f; // ties of 1s and 0s
    target_maxpool_forward(&op, 1, in, out, idx);
    target_maxpool_backward(&op, 1, idx, g, din);
    int ok = 1;
    for (int oy = 0; oy < op.out_h; oy++)
        for (int ox = 0; ox < op.out_w; ox++)
            for (int c = 0; c < op.in_c; c++) {
                int first = -1; // first position of the window's maximum, scanned in (h, w) order
                for (int y = 2 * oy; y < 2 * oy + 2 && y < op.in_h; y++)
                    for (int x = 2 * ox; x < 2 * ox + 2 && x < op.in_w; x++) {
                        int i = (y * op.in_w + x) * op.in_c + c;
                        if (first < 0 || in[i] > in[first]) first = i;
                    }
                size_t o = ((size_t)oy * op.out_w + ox) * op.in_c + c;
                ok &= idx[o] == first && din[first] == g[o];
            }
    double s_in = 0, s_out = 0;
    for (size_t i = 0; i < nin; i++) s_in += din[i];
    for (size_t i = 0; i < nout; i++) s_out += g[i];
    T_CHECK(ts, ok && s_in == s_out, "maxpool ties: gradient to the first maximum of each window");
    free(in); free(out); free(g); free(din);
}

static void check_relu(TestState *ts) {
    TargetOp op = make_op(OP_RELU, 3, 4, 5, 0, 0);
    const int n = 2;
    const size_t m = (size_t)n * in_size(&op);
    float *in = XALLOC_FLOATS(m), *out = XALLOC_FLOATS(m), *g = XALLOC_FLOATS(m), *din = XALLOC_FLOATS(m);
    double *r = XMALLOC(m * sizeof(double)), *fd = XMALLOC(m * sizeof(double));
    for (size_t i = 0; i < m; i++) { // |x| in [0.1, 1]: no kink within h = 1e-2
        double v = 0.1 + 0.9 * urand();
        in[i] = (float)(urand() < 0.5 ? -v : v);
        r[i] = 2.0 * urand() - 1.0; g[i] = (float)r[i];
    }
    OpCtx c = {&op, n, in, NULL, NULL, out, r};
    target_relu_forward(m, in, out);
    target_relu_backward(m, out, g, din);
    for (size_t i = 0; i < m; i++) fd[i] = central(&in[i], 1e-2, relu_loss, &c);
    check_grad(ts, "relu d/dinput", din, fd, m);
    // in place (as the network uses it)
    memcpy(out, in, m * sizeof(float));
    target_relu_forward(m, out, out);
    memcpy(din, g, m * sizeof(float));
    target_relu_backward(m, out, din, din);
    float *ref = XALLOC_FLOATS(m);
    target_relu_backward(m, out, g, ref);
    T_CHECK(ts, memcmp(ref, din, m * sizeof(float)) == 0, "relu in place: bitwise equal");
    free(in); free(out); free(g); free(din); free(r); free(fd); free(ref);
}

typedef struct { int n, classes; float *logits; const uint8_t *labels; } CeCtx;
static double ce_loss(void *p) {
    CeCtx *c = p;
    double l;
    target_softmax_ce(c->n, c->classes, c->logits, c->labels, 1.0f, NULL, NULL, &l, NULL);
    return l;
}

static void check_softmax_ce(TestState *ts) {
    const int n = 4, classes = 5;
    const size_t m = (size_t)n * classes;
    float *logits = XALLOC_FLOATS(m), *dl = XALLOC_FLOATS(m), *probs = XALLOC_FLOATS(m);
    double *fd = XMALLOC(m * sizeof(double));
    uint8_t labels[4] = {0, 3, 4, 2};
    fill(logits, m, 3.0);
    logits[5] += 50.0f; // a large logit: the max-subtraction must keep this finite
    CeCtx c = {n, classes, logits, labels};
    const float scale = 0.75f;
    double loss;
    int correct;
    target_softmax_ce(n, classes, logits, labels, scale, probs, dl, &loss, &correct);
    for (size_t i = 0; i < m; i++) fd[i] = scale * central(&logits[i], 1e-2, ce_loss, &c);
    check_grad(ts, "softmax-CE d/dlogits (scale 0.75)", dl, fd, m);
    double ref = 0.0;
    int ref_correct = 0;
    for (int i = 0; i < n; i++) {
        double mx = -INFINITY, s = 0.0;
        int arg = 0;
        for (int k = 0; k < classes; k++) if (logits[i * classes + k] > mx) { mx = logits[i * classes + k]; arg = k; }
        for (int k = 0; k < classes; k++) s += exp(logits[i * classes + k] - mx);
        ref += mx + log(s) - logits[i * classes + labels[i]];
        ref_correct += arg == labels[i];
    }
    T_CHECK(ts, t_close(loss, ref, 1e-12, 1e-12) && correct == ref_correct && isfinite(loss),
            "softmax-CE loss %.12f (ref %.12f), correct %d (ref %d)", loss, ref, correct, ref_correct);
    double psum = 0.0;
    for (int k = 0; k < classes; k++) psum += probs[classes + k];
    T_CHECK(ts, fabs(psum - 1.0) < 1e-6 && probs[classes] > 0.999f,
            "softmax probabilities with a +50 logit: sum %.8f", psum);
    free(logits); free(dl); free(probs); free(fd);
}

// ---- naive double reference of the whole forward pass ----

static void ref_forward(const TargetArch *a, const double *theta, const float *img, double *probs) {
    double *x = malloc(a->max_act * sizeof(double)), *y = malloc(a->max_act * sizeof(double));
    for (int i = 0; i < a->in_size; i++) x[i] = img[i];
    for (int o = 0; o < a->n_ops; o++) {
        const TargetOp *op = &a->ops[o];
        const int H = op->in_h, W = op->in_w, C = op->in_c, k = op->kernel;
        if (op->type == OP_CONV) {
            const TargetLayer *L = &a->layers[op->layer];
            const int p = (k - 1) / 2;
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++)
                    for (int f = 0; f < op->out_c; f++) {
                        const double *w = theta + L->offset + (size_t)f * (L->fan_in + 1);
                        double s = w[L->fan_in];
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++)
                                for (int c = 0; c < C; c++) {
                                    int iy = yy + ky - p, ix = xx + kx - p;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    s += w[(ky * k + kx) * C + c] * x[(iy * W + ix) * C + c];
                                }
                        y[(yy * W + xx) * op->out_c + f] = s;
                    }
        } else if (op->type == OP_FC) {
            const TargetLayer *L = &a->layers[op->layer];
            for (int f = 0; f < op->out_c; f++) {
                const double *w = theta + L->offset + (size_t)f * (L->fan_in + 1);
                double s = w[L->fan_in];
                for (int j = 0; j < L->fan_in; j++) s += w[j] * x[j];
                y[f] = s;
            }
        } else if (op->type == OP_RELU) {
            for (size_t i = 0; i < out_size(op); i++) y[i] = x[i] > 0 ? x[i] : 0;
        } else { // TF SAME max pool: pad with -inf, pad_top = total_pad / 2
            const int py = (op->out_h * k - H) / 2, px = (op->out_w * k - W) / 2;
            for (int oy = 0; oy < op->out_h; oy++)
                for (int ox = 0; ox < op->out_w; ox++)
                    for (int c = 0; c < C; c++) {
                        double m = -INFINITY;
                        for (int dy = 0; dy < k; dy++)
                            for (int dx = 0; dx < k; dx++) {
                                int iy = oy * k - py + dy, ix = ox * k - px + dx;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                if (x[(iy * W + ix) * C + c] > m) m = x[(iy * W + ix) * C + c];
                            }
                        y[(oy * op->out_w + ox) * C + c] = m;
                    }
        }
        double *t = x; x = y; y = t;
    }
    double mx = -INFINITY, s = 0.0;
    for (int c = 0; c < a->classes; c++) if (x[c] > mx) mx = x[c];
    for (int c = 0; c < a->classes; c++) s += exp(x[c] - mx);
    for (int c = 0; c < a->classes; c++) probs[c] = exp(x[c] - mx) / s;
    free(x); free(y);
}

static void check_reference(TestState *ts, const char *name, const TargetArch *a, int nets, int n_img,
                            double gain, double tol) { // gain < 0: all weights U(-|gain|, |gain|)
    float *theta = XALLOC_FLOATS((size_t)nets * a->n_weights);
    float *img = XALLOC_FLOATS((size_t)nets * n_img * a->in_size);
    float *probs = XALLOC_FLOATS((size_t)nets * n_img * a->classes);
    double ref[64], *th = XMALLOC((size_t)nets * a->n_weights * sizeof(double));
    for (int k = 0; k < nets; k++) {
        if (gain > 0) init_theta(a, theta + (size_t)k * a->n_weights, gain);
        else fill(theta + (size_t)k * a->n_weights, a->n_weights, -gain); // U(-|gain|, |gain|)
    }
    for (size_t i = 0; i < (size_t)nets * n_img * a->in_size; i++) img[i] = (float)urand();
    for (size_t i = 0; i < (size_t)nets * a->n_weights; i++) th[i] = theta[i];
    TargetNet t;
    net_init(&t, a, n_img, 0);
    target_forward(&t, nets, theta, n_img, img, (size_t)n_img * a->in_size, probs);
    double maxdiff = 0.0, pmin = 1.0, pmax = 0.0;
    for (int k = 0; k < nets; k++)
        for (int i = 0; i < n_img; i++) {
            ref_forward(a, th + (size_t)k * a->n_weights, img + ((size_t)k * n_img + i) * a->in_size, ref);
            for (int c = 0; c < a->classes; c++) {
                double d = fabs(ref[c] - probs[((size_t)k * n_img + i) * a->classes + c]);
                if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? INFINITY : d;
                if (ref[c] < pmin) pmin = ref[c];
                if (ref[c] > pmax) pmax = ref[c];
            }
        }
    T_CHECK(ts, maxdiff <= tol, "%s: %d nets x %d images, probs in [%.3f, %.3f], max |diff| vs "
            "naive double reference %.2e (tol %.0e)", name, nets, n_img, pmin, pmax, maxdiff, tol);
    target_free(&t);
    free(theta); free(img); free(probs); free(th);
}

// ---- whole network gradient ----

typedef struct {
    TargetNet *t;
    int nets, n_img;
    float *theta, *img;
    size_t stride;
    uint8_t *labels;
    double *loss;
} NetCtx;

static double net_loss_k(NetCtx *c, int k) {
    target_loss_grad(c->t, c->nets, c->theta, c->n_img, c->img, c->stride, c->labels,
                     (size_t)c->n_img, 1.0f, c->loss, NULL, NULL);
    return c->loss[k];
}

// Cross-entropy of one network on its images by the naive double reference.
static double ref_loss(const TargetArch *a, const double *theta, int n_img, const float *img,
                       const uint8_t *labels) {
    double probs[64], l = 0.0;
    for (int i = 0; i < n_img; i++) {
        ref_forward(a, theta, img + (size_t)i * a->in_size, probs);
        l -= log(probs[labels[i]]);
    }
    return l;
}

// |an - fd| as a fraction of the budget 2e-3*amax + 1e-2*max(|an|, |fd|) (header comment).
static double rel_err(double an, double fd, double amax) {
    double e = fabs(an - fd) / (2e-3 * amax + 1e-2 * fmax(fabs(an), fabs(fd)));
    return isnan(e) ? INFINITY : e;
}

// Whole network w.r.t. theta, 3 networks x 4 images, img_stride 0 (shared images) or not.
// (1) float32 central differences of target_loss_grad itself, h = 2^-11 (the weights are multiples
//     of 2^-20, so theta +- h and +- 2h are exact). A parameter whose one-sided slopes disagree sits
//     next to a ReLU/max-pool kink (one unit near 0 can touch every parameter upstream of it);
//     there the analytic gradient is the slope on the side where no unit switches, so it must
//     match one of the second-order one-sided differences (-3L0 + 4L(+-h) - L(+-2h)) / (+-2h).
// (2) double-precision central differences (h = 1e-6) of the naive reference (no kink is that
//     close): this checks the float32 gradient to float32 accuracy, atol 1e-4*max, rtol 1e-3.
// every: parameters j with j % every == 0 are checked (1: all).
static void check_network_grad(TestState *ts, size_t img_stride_images, const char *const *spec, int n_spec,
                               int every) {
    TargetArch a;
    make_arch(&a, 8, 8, 1, 3, spec, n_spec);
    const int nets = 3, n_img = 4;
    const size_t nw = a.n_weights, n_sets = img_stride_images ? (size_t)nets : 1, n = nets * nw;
    float *theta = XALLOC_FLOATS(n), *dtheta = XALLOC_FLOATS(n), *img = XALLOC_FLOATS(n_sets * n_img * a.in_size);
    uint8_t *labels = XMALLOC((size_t)nets * n_img);
    double loss[3];
    double *fd = XMALLOC(n * sizeof(double)), *fd_r = XMALLOC(n * sizeof(double)), *fd_l = XMALLOC(n * sizeof(double));
    double *fd_ref = XMALLOC(n * sizeof(double)), *th = XMALLOC(nw * sizeof(double));
    for (int k = 0; k < nets; k++) init_theta(&a, theta + k * nw, 1.5);
    for (size_t i = 0; i < n; i++) theta[i] = (float)(nearbyint(theta[i] * 1048576.0) / 1048576.0);
    for (size_t i = 0; i < n_sets * n_img * a.in_size; i++) img[i] = (float)urand();
    for (int i = 0; i < nets * n_img; i++) labels[i] = (uint8_t)(urand() * a.classes);
    TargetNet t;
    net_init(&t, &a, n_img, 2);
    const float scale = 0.5f;
    const size_t stride = img_stride_images ? (size_t)n_img * a.in_size : 0;
    target_loss_grad(&t, nets, theta, n_img, img, stride, labels, (size_t)n_img, scale, loss, NULL, dtheta);
    NetCtx c = {&t, nets, n_img, theta, img, stride, labels, loss};
    const double h = 1.0 / 2048.0, hr = 1e-6;
    // The thousands of small loss evaluations run on one thread (results do not depend on the
    // thread count, see check_batching; on a busy machine a 2-thread team per call mostly waits).
    const int saved_threads = omp_get_max_threads();
    omp_set_num_threads(1);
    for (int k = 0; k < nets; k++) {
        const double l0 = net_loss_k(&c, k);
        const float *imk = img + k * (stride ? (size_t)n_img * a.in_size : 0);
        for (size_t j = 0; j < nw; j++) th[j] = theta[k * nw + j];
        for (size_t j = 0; j < nw; j++) {
            if (j % (size_t)every) { fd[k * nw + j] = fd_r[k * nw + j] = fd_l[k * nw + j] = fd_ref[k * nw + j] = dtheta[k * nw + j]; continue; }
            float *x = &theta[k * nw + j];
            const float v = *x;
            double l[4]; // L(v-2h), L(v-h), L(v+h), L(v+2h)
            static const double off[4] = {-2, -1, 1, 2};
            for (int s = 0; s < 4; s++) { *x = (float)(v + off[s] * h); l[s] = net_loss_k(&c, k); }
            *x = v;
            fd[k * nw + j] = scale * (l[2] - l[1]) / (2 * h);
            fd_r[k * nw + j] = scale * (-3 * l0 + 4 * l[2] - l[3]) / (2 * h);
            fd_l[k * nw + j] = scale * (3 * l0 - 4 * l[1] + l[0]) / (2 * h);
            th[j] = (double)v + hr;
            double lp = ref_loss(&a, th, n_img, imk, labels + k * n_img);
            th[j] = (double)v - hr;
            double lm = ref_loss(&a, th, n_img, imk, labels + k * n_img);
            th[j] = v;
            fd_ref[k * nw + j] = scale * (lp - lm) / (2 * hr);
        }
    }
    omp_set_num_threads(saved_threads);
    // (1): per layer, so that every layer's gradient is tested at its own scale
    char buf[112];
    for (int li = 0; li < a.n_layers; li++) {
        const TargetLayer *L = &a.layers[li];
        double amax = 0.0, worst = 0.0;
        size_t m = 0, one_sided = 0, bad = 0;
        for (int k = 0; k < nets; k++)
            for (size_t j = L->offset; j < L->offset + L->size; j++) amax = fmax(amax, fabs(dtheta[k * nw + j]));
        for (int k = 0; k < nets; k++)
            for (size_t j = L->offset; j < L->offset + L->size; j++, m++) {
                const size_t i = k * nw + j;
                const double an = dtheta[i];
                const double e0 = rel_err(an, fd[i], amax);
                const double e1 = fmin(rel_err(an, fd_r[i], amax), rel_err(an, fd_l[i], amax));
                if (e0 <= 1.0) worst = fmax(worst, e0);
                else if (e1 <= 1.0) one_sided++;
                else bad++;
            }
        snprintf(buf, sizeof(buf), "layer %d (%s %d x %d+1), stride %s: float32 FD", li,
                 a.ops[L->op].type == OP_CONV ? "conv" : "fc", L->filters, L->fan_in, stride ? "n*in" : "0");
        T_CHECK(ts, bad == 0 && amax > 0.0 && one_sided * 2 <= m, "%-44s n=%3zu max|grad| %.2e  "
                "worst %5.1f%% of budget, %zu at a kink (one-sided match), %zu bad", buf, m, amax,
                100.0 * worst, one_sided, bad);
    }
    // (2): whole vector against the double reference
    double amax = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++) amax = fmax(amax, fabs(dtheta[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs(dtheta[i] - fd_ref[i]) / (1e-4 * amax + 1e-3 * fmax(fabs(dtheta[i]), fabs(fd_ref[i])));
        worst = isnan(e) ? INFINITY : fmax(worst, e);
    }
    snprintf(buf, sizeof(buf), "all layers, stride %s: double reference FD", stride ? "n*in" : "0");
    T_CHECK(ts, worst <= 1.0, "%-44s n=%3zu max|grad| %.2e  worst %5.1f%% of budget", buf, n, amax, 100.0 * worst);
    target_free(&t);
    free(theta); free(dtheta); free(img); free(labels); free(fd); free(fd_r); free(fd_l); free(fd_ref); free(th);
}

// Paper network, 2 networks x 2 images: per network and layer, 2 biases and 10 random parameters
// against double finite differences (h = 1e-6) of the naive reference; exercises the real sizes
// (several im2col blocks, 4-channel vector pool paths). Budget 1e-4 * max|grad of the layer| +
// 1e-3 relative, as for the small network.
static void check_paper_grad(TestState *ts) {
    TargetArch a;
    make_arch(&a, 28, 28, 1, 10, PAPER, 9);
    const int nets = 2, n_img = 2;
    const size_t nw = a.n_weights;
    float *theta = XALLOC_FLOATS(nets * nw), *dtheta = XALLOC_FLOATS(nets * nw);
    float *img = XALLOC_FLOATS((size_t)nets * n_img * a.in_size);
    double *th = XMALLOC(nw * sizeof(double)), loss[2];
    uint8_t labels[4] = {3, 7, 1, 9};
    for (int k = 0; k < nets; k++) init_theta(&a, theta + k * nw, 1.0);
    for (size_t i = 0; i < (size_t)nets * n_img * a.in_size; i++) img[i] = (float)urand();
    TargetNet t;
    net_init(&t, &a, n_img, 0);
    target_loss_grad(&t, nets, theta, n_img, img, (size_t)n_img * a.in_size, labels, n_img, 1.0f,
                     loss, NULL, dtheta);
    double worst = 0.0;
    int checked = 0;
    for (int k = 0; k < nets; k++) {
        const float *imk = img + (size_t)k * n_img * a.in_size;
        for (size_t j = 0; j < nw; j++) th[j] = theta[k * nw + j];
        for (int l = 0; l < a.n_layers; l++) {
            const TargetLayer *L = &a.layers[l];
            double amax = 0.0;
            for (size_t j = 0; j < L->size; j++) amax = fmax(amax, fabs(dtheta[k * nw + L->offset + j]));
            for (int q = 0; q < 12; q++, checked++) {
                size_t j = L->offset + (q < 2 ? (size_t)(q + 1) * (L->fan_in + 1) - 1  // two biases
                                              : (size_t)(urand() * (double)L->size));
                const double v = th[j];
                th[j] = v + 1e-6;
                double lp = ref_loss(&a, th, n_img, imk, labels + k * n_img);
                th[j] = v - 1e-6;
                double lm = ref_loss(&a, th, n_img, imk, labels + k * n_img);
                th[j] = v;
                const double fd = (lp - lm) / 2e-6, an = dtheta[k * nw + j];
                double e = fabs(an - fd) / (1e-4 * amax + 1e-3 * fmax(fabs(an), fabs(fd)));
                worst = isnan(e) ? INFINITY : fmax(worst, e);
            }
        }
    }
    T_CHECK(ts, worst <= 1.0, "paper network d/dtheta, %d sampled parameters vs double reference FD: "
            "worst %.1f%% of budget", checked, 100.0 * worst);
    target_free(&t);
    free(theta); free(dtheta); free(img); free(th);
}

// ---- batched vs alone, threads, forward/loss consistency ----

static void check_batching(TestState *ts) {
    TargetArch a;
    make_arch(&a, 28, 28, 1, 10, PAPER, 9);
    const int nets = 4, n_img = 6;
    const size_t nw = a.n_weights, per = (size_t)n_img * a.in_size;
    float *theta = XALLOC_FLOATS(nets * nw), *img = XALLOC_FLOATS(nets * per);
    float *d_all = XALLOC_FLOATS(nets * nw), *d_one = XALLOC_FLOATS(nets * nw), *d_t1 = XALLOC_FLOATS(nets * nw);
    float *probs = XALLOC_FLOATS((size_t)nets * n_img * a.classes);
    uint8_t *labels = XMALLOC((size_t)nets * n_img);
    double l_all[4], l_one[4], l_t1[4];
    int c_all[4], c_one[4], c_t1[4];
    for (int k = 0; k < nets; k++) init_theta(&a, theta + k * nw, 1.0);
    for (size_t i = 0; i < nets * per; i++) img[i] = (float)urand();
    for (int i = 0; i < nets * n_img; i++) labels[i] = (uint8_t)(urand() * 10);
    TargetNet t;
    net_init(&t, &a, n_img, 2);
    const int saved = omp_get_max_threads();
    omp_set_num_threads(2);
    target_loss_grad(&t, nets, theta, n_img, img, per, labels, n_img, 0.25f, l_all, c_all, d_all);
    for (int k = 0; k < nets; k++)
        target_loss_grad(&t, 1, theta + k * nw, n_img, img + k * per, 0, labels + k * n_img, 0, 0.25f,
                         &l_one[k], &c_one[k], d_one + k * nw);
    int same = memcmp(d_all, d_one, nets * nw * sizeof(float)) == 0 &&
               memcmp(l_all, l_one, sizeof(l_all)) == 0 && memcmp(c_all, c_one, sizeof(c_all)) == 0;
    double md = 0.0;
    for (size_t i = 0; i < nets * nw; i++) md = fmax(md, fabs(d_all[i] - d_one[i]));
    T_CHECK(ts, same || md <= 1e-6, "batched (4 nets) == each network alone: %s (max diff %.1e)",
            same ? "bitwise" : "not bitwise", md);
    omp_set_num_threads(1);
    target_loss_grad(&t, nets, theta, n_img, img, per, labels, n_img, 0.25f, l_t1, c_t1, d_t1);
    omp_set_num_threads(saved);
    T_CHECK(ts, memcmp(d_all, d_t1, nets * nw * sizeof(float)) == 0 &&
                memcmp(l_all, l_t1, sizeof(l_all)) == 0 && memcmp(c_all, c_t1, sizeof(c_all)) == 0,
            "1 thread == 2 threads: bitwise (dtheta, loss, correct)");
    omp_set_num_threads(2); // a team of one sets its BLAS to one thread: that must not leak out
    target_loss_grad(&t, 1, theta, n_img, img, 0, labels, 0, 0.25f, l_one, c_one, d_one);
    T_CHECK(ts, omp_get_max_threads() == 2, "OpenMP thread setting unchanged by a call (%d)",
            omp_get_max_threads());
    omp_set_num_threads(saved);
    // forward probabilities agree with the loss
    target_forward(&t, nets, theta, n_img, img, per, probs);
    double maxrel = 0.0;
    int ok_correct = 1;
    for (int k = 0; k < nets; k++) {
        double l = 0.0;
        int c = 0;
        for (int i = 0; i < n_img; i++) {
            const float *p = probs + ((size_t)k * n_img + i) * a.classes;
            int arg = 0;
            for (int j = 1; j < a.classes; j++) if (p[j] > p[arg]) arg = j;
            l -= log((double)p[labels[k * n_img + i]]);
            c += arg == labels[k * n_img + i];
        }
        maxrel = fmax(maxrel, fabs(l - l_all[k]) / fabs(l_all[k]));
        ok_correct &= c == c_all[k];
    }
    T_CHECK(ts, maxrel < 1e-5 && ok_correct, "target_forward probs consistent with loss (rel %.1e)", maxrel);
    // dtheta = scale * gradient: scale 0.5 is exactly twice scale 0.25
    target_loss_grad(&t, nets, theta, n_img, img, per, labels, n_img, 0.5f, l_t1, c_t1, d_t1);
    int twice = 1;
    for (size_t i = 0; i < nets * nw; i++) twice &= d_t1[i] == 2.0f * d_all[i];
    T_CHECK(ts, twice, "dtheta(scale 0.5) == 2 * dtheta(scale 0.25) exactly");
    // all weights get a gradient (none left unwritten: poison then recompute)
    for (size_t i = 0; i < nets * nw; i++) d_t1[i] = NAN;
    target_loss_grad(&t, nets, theta, n_img, img, per, labels, n_img, 0.25f, l_t1, c_t1, d_t1);
    T_CHECK(ts, memcmp(d_all, d_t1, nets * nw * sizeof(float)) == 0,
            "dtheta fully overwritten (NaN-poisoned buffer gives the same result)");
    target_free(&t);
    free(theta); free(img); free(d_all); free(d_one); free(d_t1); free(probs); free(labels);
}

// ---- AVX2 path against the reference ----
//
// Tolerance. Both implementations run in float32 on the same inputs and differ only in summation
// order and FMA rounding: each output is a sum of R float32 products, whose rounding error is
// about sqrt(R)*u times the sum of |terms| (u = 2^-24 = 6e-8; worst case R*u), and the error of
// one layer reaches the next through the weights. The longest sum in the paper network is the
// conv2 weight gradient over 32 images x 196 pixels, R = 6,272: sqrt(R)*u = 4.7e-6. Rule: per
// layer of dtheta, max |avx2 - ref| <= 2e-5 * max |ref| over the layer (4x above that; measured
// ~1e-6); loss: relative 1e-6 (measured ~1e-8); correct: equal; probabilities: absolute
// 1e-6 * max(1, S), S the largest logit spread log(p_max/p_min) of an image (the logits' rounding
// error grows with their size, and a softmax moves p by at most half the spread of the logits'
// errors; measured ~1e-7 at S ~ 5). A real bug (a wrong tap, channel or pool index, a missing term) is an O(1e-2..1)
// error of the layer's scale. Caveat: a pool window whose two largest inputs differ by ~1 ulp
// could pick different argmaxes in the two paths (a localized O(1) gradient difference); the fixed
// seeds here have none, and such ties have probability ~1e-7 per window for random inputs.
static void check_impls_match(TestState *ts, const char *name, const TargetArch *a, int nets, int n_img,
                              double gain, int shared) {
    if (!target_impl_available(a, TARGET_IMPL_AVX2)) {
        printf("  SKIPPED avx2 vs reference, %s: the avx2 path is not available here\n", name);
        return;
    }
    const int have512 = target_impl_available(a, TARGET_IMPL_AVX512);
    if (!have512) printf("  SKIPPED avx512 vs reference and avx2, %s: no AVX-512 on this CPU\n", name);
    const int n_impl = have512 ? 5 : 3;
    const size_t nw = a->n_weights, per = (size_t)n_img * a->in_size, n_sets = shared ? 1 : (size_t)nets;
    const size_t np = (size_t)nets * n_img * a->classes;
    float *theta = XALLOC_FLOATS(nets * nw), *img = XALLOC_FLOATS(n_sets * per);
    const TargetImpl impl[5] = {TARGET_IMPL_REFERENCE, TARGET_IMPL_AVX2, TARGET_IMPL_AVX2_DENSE,
                                TARGET_IMPL_AVX512, TARGET_IMPL_AVX512_DENSE};
    float *d[5], *p[5];
    double *loss[5];
    int *cor[5];
    for (int m = 0; m < n_impl; m++) {
        d[m] = XALLOC_FLOATS(nets * nw); p[m] = XALLOC_FLOATS(np);
        loss[m] = XMALLOC(nets * sizeof(double)); cor[m] = XMALLOC(nets * sizeof(int));
    }
    uint8_t *labels = XMALLOC((size_t)nets * n_img);
    for (int k = 0; k < nets; k++) init_theta(a, theta + k * nw, gain);
    for (size_t i = 0; i < n_sets * per; i++) img[i] = (float)urand();
    for (int i = 0; i < nets * n_img; i++) labels[i] = (uint8_t)(urand() * a->classes);
    TargetNet t;
    target_init(&t, a, n_img, 0);
    for (int m = 0; m < n_impl; m++) {
        T_CHECK(ts, target_set_impl(&t, impl[m]), "%s: target_set_impl(%s)", name, target_impl_name(impl[m]));
        target_loss_grad(&t, nets, theta, n_img, img, shared ? 0 : per, labels, n_img, 0.5f, loss[m], cor[m], d[m]);
        target_forward(&t, nets, theta, n_img, img, shared ? 0 : per, p[m]);
    }
    for (int m = 1; m < n_impl; m++) {
    double worst = 0.0, worst_rel = 0.0, pdiff = 0.0, ldiff = 0.0;
    int worst_layer = 0, same_correct = 1;
    for (int l = 0; l < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        double amax = 0.0, e = 0.0;
        for (int k = 0; k < nets; k++)
            for (size_t j = L->offset; j < L->offset + L->size; j++) {
                amax = fmax(amax, fabs(d[0][k * nw + j]));
                const double diff = fabs(d[0][k * nw + j] - d[m][k * nw + j]);
                e = isnan(diff) ? INFINITY : fmax(e, diff);
            }
        const double r = amax > 0.0 ? e / (2e-5 * amax) : (e > 0.0 ? INFINITY : 0.0);
        if (r >= worst) { worst = r; worst_rel = amax > 0.0 ? e / amax : e; worst_layer = l; }
    }
    double spread = 1.0;
    for (size_t i = 0; i < np; i++) {
        const double diff = fabs(p[0][i] - p[m][i]);
        pdiff = isnan(diff) ? INFINITY : fmax(pdiff, diff);
    }
    for (size_t i0 = 0; i0 < np; i0 += (size_t)a->classes) {
        double lo = INFINITY, hi = -INFINITY;
        for (int c = 0; c < a->classes; c++) {
            const double l = log(fmax((double)p[0][i0 + c], 1e-37));
            lo = fmin(lo, l); hi = fmax(hi, l);
        }
        spread = fmax(spread, hi - lo);
    }
    for (int k = 0; k < nets; k++) {
        const double diff = fabs(loss[0][k] - loss[m][k]) / fmax(fabs(loss[0][k]), 1e-30);
        ldiff = isnan(diff) ? INFINITY : fmax(ldiff, diff);
        same_correct &= cor[0][k] == cor[m][k];
    }
    T_CHECK(ts, worst <= 1.0 && pdiff <= 1e-6 * spread && ldiff <= 1e-6 && same_correct,
            "%s vs reference, %s, %d nets x %d images%s: dtheta worst layer %d at %.1e of its max "
            "(%5.1f%% of budget), probs %.1e (logit spread %.0f), loss rel %.1e, correct %s", target_impl_name(impl[m]),
            name, nets, n_img, shared ? " (shared)" : "", worst_layer, worst_rel, 100.0 * worst, pdiff, spread,
            ldiff, same_correct ? "equal" : "DIFFER");
    }
    // The AVX-512 kernels sum every element in the AVX2 kernels' order (src/target_avx512.c):
    // the same bits, which bit-exact resume across the two relies on.
    for (int m = 3; m < n_impl; m++) {
        const int m2 = m - 2; // avx512 -> avx2, avx512-dense -> avx2-dense
        const int same = !memcmp(d[m], d[m2], nets * nw * sizeof(float)) && !memcmp(p[m], p[m2], np * sizeof(float)) &&
                         !memcmp(loss[m], loss[m2], nets * sizeof(double)) && !memcmp(cor[m], cor[m2], nets * sizeof(int));
        T_CHECK(ts, same, "%s vs %s, %s: dtheta, probabilities, loss and correct bitwise equal", target_impl_name(impl[m]),
                target_impl_name(impl[m2]), name);
    }
    target_free(&t);
    free(theta); free(img); free(labels);
    for (int m = 0; m < n_impl; m++) { free(d[m]); free(p[m]); free(loss[m]); free(cor[m]); }
}

typedef struct { const TargetArch *a; const char *value; } ImplChild;

// Child of check_bad_impl_env: target_init with HT_TARGET_IMPL=value must exit with one line.
static void bad_impl_child(void *ctx) {
    const ImplChild *c = (const ImplChild *)ctx;
    setenv("HT_TARGET_IMPL", c->value, 1);
    TargetNet t;
    target_init(&t, c->a, 4, 1);
}

// HT_TARGET_IMPL=value is refused: non-zero exit, one line on stderr naming the variable and the value.
static void check_bad_impl_env(TestState *ts, const TargetArch *a, const char *value, const char *why) {
    ImplChild c = {a, value};
    const ChildResult r = t_run_child(bad_impl_child, &c);
    T_CHECK(ts, r.exit_code > 0 && r.lines == 1 && strstr(r.err, "HT_TARGET_IMPL") && strstr(r.err, value),
            "HT_TARGET_IMPL=%s (%s) is an error: exit %d, %d line(s) on stderr: %s", value, why, r.exit_code,
            r.lines, r.err[0] ? r.err : "(empty)");
}

// Bad HT_TARGET_IMPL values. Run first in main, before any OpenMP thread exists: a forked child
// of a multithreaded process cannot run LeakSanitizer's exit check cleanly (make SANITIZE=1).
static void check_bad_impl_envs(TestState *ts) {
    TargetArch paper, small;
    make_arch(&paper, 28, 28, 1, 10, PAPER, 9);
    make_arch(&small, 8, 8, 1, 3, SMALL, 9);
    check_bad_impl_env(ts, &paper, "avx1024", "an unknown name");
    check_bad_impl_env(ts, &paper, "AVX512", "names are lower case");
    check_bad_impl_env(ts, &small, "avx2", "2-filter convs do not fit the fast path");
}

// Which implementation target_init picks, target_set_impl, and the HT_TARGET_IMPL override.
static void check_impl_selection(TestState *ts) {
    TargetArch paper, small;
    make_arch(&paper, 28, 28, 1, 10, PAPER, 9);
    make_arch(&small, 8, 8, 1, 3, SMALL, 9);
    const char *env = getenv("HT_TARGET_IMPL");
    char *saved = env ? XSTRDUP(env) : NULL;
    unsetenv("HT_TARGET_IMPL");
    const int have = target_impl_available(&paper, TARGET_IMPL_AVX2);
    const int have512 = target_impl_available(&paper, TARGET_IMPL_AVX512);
    TargetNet t;
    target_init(&t, &paper, 4, 1);
    T_CHECK(ts, t.impl == (have512 ? TARGET_IMPL_AVX512 : have ? TARGET_IMPL_AVX2 : TARGET_IMPL_REFERENCE),
            "paper network: target_init picks %s (avx2 available here: %s, avx512: %s)", target_impl_name(t.impl),
            have ? "yes" : "no", have512 ? "yes" : "no");
    target_free(&t);
    target_init(&t, &paper, 4, 1);
    target_set_impl(&t, have ? TARGET_IMPL_AVX2 : TARGET_IMPL_REFERENCE);
    const size_t ws0 = t.ws_floats;
    T_CHECK(ts, target_set_impl(&t, TARGET_IMPL_REFERENCE) && t.impl == TARGET_IMPL_REFERENCE &&
                t.ws_floats >= ws0 && target_set_impl(&t, TARGET_IMPL_AVX2) == have,
            "target_set_impl switches between implementations (workspace per thread %.1f MiB as chosen, "
            "%.1f MiB for the reference)", ws0 * 4.0 / 1048576.0, t.ws_floats * 4.0 / 1048576.0);
    target_free(&t);
    target_init(&t, &small, 4, 1);
    T_CHECK(ts, t.impl == TARGET_IMPL_REFERENCE && !target_set_impl(&t, TARGET_IMPL_AVX2) &&
                !target_set_impl(&t, TARGET_IMPL_AVX512) && t.impl == TARGET_IMPL_REFERENCE,
            "2-filter convs: the reference runs, target_set_impl(avx2) and (avx512) are refused");
    target_free(&t);
    setenv("HT_TARGET_IMPL", "reference", 1);
    target_init(&t, &paper, 4, 1);
    T_CHECK(ts, t.impl == TARGET_IMPL_REFERENCE, "HT_TARGET_IMPL=reference selects the reference");
    target_free(&t);
    if (have) {
        setenv("HT_TARGET_IMPL", "avx2-dense", 1);
        target_init(&t, &paper, 4, 1);
        T_CHECK(ts, t.impl == TARGET_IMPL_AVX2_DENSE && !strcmp(target_impl_name(t.impl), "avx2-dense"),
                "HT_TARGET_IMPL=avx2-dense selects the dense AVX2 variant");
        target_free(&t);
    }
    if (have512) {
        setenv("HT_TARGET_IMPL", "avx2", 1);
        target_init(&t, &paper, 4, 1);
        T_CHECK(ts, t.impl == TARGET_IMPL_AVX2, "HT_TARGET_IMPL=avx2 selects avx2 on an AVX-512 CPU");
        target_free(&t);
        const char *const names[2] = {"avx512", "avx512-dense"};
        for (int i = 0; i < 2; i++) {
            setenv("HT_TARGET_IMPL", names[i], 1);
            target_init(&t, &paper, 4, 1);
            TargetImpl parsed;
            T_CHECK(ts, !strcmp(target_impl_name(t.impl), names[i]) && target_impl_parse(names[i], &parsed) &&
                        parsed == t.impl, "HT_TARGET_IMPL=%s selects %s", names[i], target_impl_name(t.impl));
            target_free(&t);
        }
    } else
        printf("  SKIPPED HT_TARGET_IMPL=avx512 selection: no AVX-512 on this CPU\n");
    if (saved) { setenv("HT_TARGET_IMPL", saved, 1); free(saved); }
    else unsetenv("HT_TARGET_IMPL");
}

// ---- timing (printed, not pass/fail) ----

static double gemm_flops(const TargetArch *a, int n_img) {
    double fl = 0.0;
    for (int l = 0; l < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        const TargetOp *op = &a->ops[L->op];
        double rows = (double)n_img * op->out_h * op->out_w;
        double one = 2.0 * rows * L->filters * L->fan_in;
        fl += one * (l == 0 ? 2 : 3); // forward, dW, dInput (not for the first layer)
    }
    return fl;
}

static void timing(void) {
    TargetArch a;
    make_arch(&a, 28, 28, 1, 10, PAPER, 9);
    const int nets = 32, n_img = 32;
    const size_t nw = a.n_weights, per = (size_t)n_img * a.in_size;
    float *theta = XALLOC_FLOATS(nets * nw), *img = XALLOC_FLOATS(nets * per), *d = XALLOC_FLOATS(nets * nw);
    uint8_t *labels = XMALLOC((size_t)nets * n_img);
    double loss[32];
    int correct[32];
    for (int k = 0; k < nets; k++) init_theta(&a, theta + k * nw, 1.0);
    for (size_t i = 0; i < nets * per; i++) img[i] = (float)urand();
    for (int i = 0; i < nets * n_img; i++) labels[i] = (uint8_t)(urand() * 10);
    TargetNet t;
    target_init(&t, &a, n_img, 0);
    target_loss_grad(&t, nets, theta, n_img, img, per, labels, n_img, 1.0f, loss, correct, d);
    double best = 1e30, tot = 0.0;
    const int reps = 5;
    for (int r = 0; r < reps; r++) {
        double t0 = ht_now();
        target_loss_grad(&t, nets, theta, n_img, img, per, labels, n_img, 1.0f, loss, correct, d);
        double dt = ht_now() - t0;
        tot += dt;
        if (dt < best) best = dt;
    }
    double fl = gemm_flops(&a, n_img) * nets;
    printf("  timing: target_loss_grad (%s), paper network (%zu weights), %d nets x %d images, %d threads: "
           "best %.1f ms, mean %.1f ms, %.1f GFLOP/s (GEMM flops %.2f G per call)\n", target_impl_name(t.impl),
           nw, nets, n_img, t.n_threads, 1e3 * best, 1e3 * tot / reps, fl / best * 1e-9, fl * 1e-9);
    float *probs = XALLOC_FLOATS((size_t)nets * n_img * 10);
    double t0 = ht_now();
    target_forward(&t, nets, theta, n_img, img, per, probs);
    double dt = ht_now() - t0;
    double ffl = 0.0;
    for (int l = 0; l < a.n_layers; l++) {
        const TargetOp *op = &a.ops[a.layers[l].op];
        ffl += 2.0 * n_img * op->out_h * op->out_w * a.layers[l].filters * a.layers[l].fan_in;
    }
    printf("  timing: target_forward, same batch: %.1f ms, %.1f GFLOP/s\n", 1e3 * dt, ffl * nets / dt * 1e-9);
    // reference point: a large square OpenBLAS sgemm on all threads
    const int N = 1024;
    float *A = XALLOC_FLOATS((size_t)N * N), *B = XALLOC_FLOATS((size_t)N * N), *C = XALLOC_FLOATS((size_t)N * N);
    fill(A, (size_t)N * N, 1.0); fill(B, (size_t)N * N, 1.0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, A, N, B, N, 0.0f, C, N);
    t0 = ht_now();
    for (int r = 0; r < 3; r++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, N, N, 1.0f, A, N, B, N, 0.0f, C, N);
    dt = (ht_now() - t0) / 3;
    printf("  timing: reference OpenBLAS sgemm %dx%dx%d, %d threads: %.1f GFLOP/s\n", N, N, N,
           omp_get_max_threads(), 2.0 * N * N * N / dt * 1e-9);
    target_free(&t);
    free(theta); free(img); free(d); free(labels); free(probs); free(A); free(B); free(C);
}

// ---- entropy (src/entropy.c): the AVX-512 distances (up to 4 pairs at once) and gradient ----
// against the AVX2 and portable ones, bitwise: estimate, neighbours, distances and gradient of
// entropy_estimate with w.simd = 2, 1, 0. N = 32 of the paper's 20,018 weights (the training step),
// and N = 7 (runs of 1..4 pairs) with D = 1003 (a tail of 3 elements), L1 and L2.
static void check_entropy_kernels(TestState *ts) {
    printf("entropy: avx512 distances and gradient against avx2 and portable, bitwise\n");
    EntropyWork w0;
    entropy_work_init(&w0, 2);
    const int have = w0.simd;
    entropy_work_free(&w0);
    if (have < 2) {
        printf("  SKIPPED entropy avx512 vs avx2 and portable: no AVX-512 on this CPU\n");
        return;
    }
    Comm comm;
    comm_init(&comm, NULL, NULL);
    const int Ns[2] = {32, 7};
    const size_t Ds[2] = {20018, 1003};
    for (int ci = 0; ci < 2; ci++)
        for (int dist = 0; dist < 2; dist++) {
            const int N = Ns[ci];
            const size_t D = Ds[ci];
            float *x = XALLOC_FLOATS((size_t)N * D), *g[3];
            fill(x, (size_t)N * D, 0.1);
            double H[3];
            int *nn[3];
            float *eps[3];
            double *dm[3];
            for (int m = 0; m < 3; m++) {
                EntropyWork w;
                entropy_work_init(&w, N);
                w.simd = 2 - m;
                g[m] = XALLOC_FLOATS((size_t)N * D);
                memset(g[m], 0, (size_t)N * D * sizeof(float));
                H[m] = entropy_estimate(&comm, &w, x, N, D, 0, N, (Distance)dist, 300, -1.0f, g[m]);
                nn[m] = XMALLOC((size_t)N * sizeof(int));
                eps[m] = XALLOC_FLOATS(N);
                memcpy(nn[m], w.nn, (size_t)N * sizeof(int));
                memcpy(eps[m], w.eps, (size_t)N * sizeof(float));
                dm[m] = XMALLOC((size_t)N * N * sizeof(double));
                memcpy(dm[m], w.dist, (size_t)N * N * sizeof(double));
                entropy_work_free(&w);
            }
            int same = 1, nonzero = 0;
            for (int m = 1; m < 3; m++)
                same &= H[m] == H[0] && !memcmp(nn[m], nn[0], (size_t)N * sizeof(int)) &&
                        !memcmp(eps[m], eps[0], (size_t)N * sizeof(float)) && !memcmp(g[m], g[0], (size_t)N * D * sizeof(float)) &&
                        !memcmp(dm[m], dm[0], (size_t)N * N * sizeof(double));
            for (size_t i = 0; i < (size_t)N * D; i++) nonzero += g[0][i] != 0.0f;
            T_CHECK(ts, same && nonzero > 0, "%s, N = %d, D = %zu: estimate (%.17g), neighbours, all N x N distances (double) and gradient "
                    "(%d nonzero) bitwise equal for avx512, avx2 and portable", dist == DIST_L1 ? "L1" : "L2", N, D, H[0],
                    nonzero);
            free(x);
            for (int m = 0; m < 3; m++) { free(g[m]); free(nn[m]); free(eps[m]); free(dm[m]); }
        }
    comm_finalize(&comm);
}

// ---- Adam (src/adam.c): the AVX-512 loop against the portable one, bitwise ----
// Elementwise float operations in the same order (src/adam.c), so the same bits. Sizes with every
// tail length of the 16-lane blocks; gradients of mixed scales with zeros, tiny (subnormal
// squares) and large values; the first step (t = 1) and a late one; three updates in a row.
static void check_adam_kernels(TestState *ts) {
    printf("Adam: avx512 update against the portable one, bitwise\n");
    if (!adam_have_avx512()) {
        printf("  SKIPPED adam avx512 vs portable: no AVX-512 on this CPU\n");
        return;
    }
    const size_t sizes[3] = {633640, 1000, 17};
    for (int si = 0; si < 3; si++)
        for (int tail = 0; tail < (si == 2 ? 16 : 1); tail++) {
            const size_t n = sizes[si] + (size_t)tail;
            float *p[2], *m[2], *v[2], *g = XALLOC_FLOATS(n);
            for (int k = 0; k < 2; k++) { p[k] = XALLOC_FLOATS(n); m[k] = XALLOC_FLOATS(n); v[k] = XALLOC_FLOATS(n); }
            fill(p[0], n, 1.0);
            fill(m[0], n, 1e-2);
            for (size_t i = 0; i < n; i++) v[0][i] = (float)(urand() * 1e-3);
            memcpy(p[1], p[0], n * sizeof(float)); memcpy(m[1], m[0], n * sizeof(float)); memcpy(v[1], v[0], n * sizeof(float));
            int changed = 0;
            for (int step = 0; step < 3; step++) {
                for (size_t i = 0; i < n; i++) {
                    const double u = urand();
                    g[i] = u < 0.05 ? 0.0f : u < 0.1 ? srand_f(1e-22) : u < 0.15 ? srand_f(1e4) : srand_f(1.0);
                }
                const int64_t t = step == 0 ? 1 : 1000 + step;
                const float before = p[0][n - 1];
                for (int k = 0; k < 2; k++) adam_update_impl(k, p[k], g, m[k], v[k], n, 3e-4, 0.9, 0.999, 1e-8, t);
                changed += p[0][n - 1] != before;
            }
            const int same = !memcmp(p[0], p[1], n * sizeof(float)) && !memcmp(m[0], m[1], n * sizeof(float)) &&
                             !memcmp(v[0], v[1], n * sizeof(float));
            if (si < 2 || tail == 15 || !same)
                T_CHECK(ts, same && changed > 0, "n = %zu%s: parameters, m and v after 3 updates bitwise equal "
                        "(last parameter changed in %d of 3 updates)", n, si == 2 ? " (and n = 17..31: every tail)" : "",
                        changed);
            free(g);
            for (int k = 0; k < 2; k++) { free(p[k]); free(m[k]); free(v[k]); }
        }
}

// ---- gauge fixing's row kernels (src/gauge.c): avx512 against portable, bitwise ----
// The AVX-512 kernels compute every element with the portable code's operations in its order, so
// gauge_forward and gauge_backward must give the same bits with either (a run's results do not
// depend on which one the CPU selects). Architectures: the paper network (channels 1, 32, 16, 8:
// full and half vectors), and ones whose channel counts and filter lengths leave every tail
// (2, 3, 24, 40, 48 channels; fan_in + 1 odd). Weights of scales 1e-3..10 per filter, so that the
// normalization does something; the backward both out of place and in place (as train.c calls it).
static void check_gauge_kernels(TestState *ts) {
    printf("gauge fixing: avx512 row kernels against the portable ones, bitwise\n");
    if (!gauge_have_avx512()) {
        printf("  SKIPPED gauge avx512 vs portable: no AVX-512 on this CPU\n");
        return;
    }
    struct { const char *name; const char *const *spec; int n, h, w, c, classes; } cases[] = {
        {"paper", PAPER, 9, 28, 28, 1, 10}, {"small", SMALL, 9, 8, 8, 1, 3}, {"fast_b", FAST_B, 4, 7, 5, 3, 5},
        {"fast_c", FAST_C, 6, 6, 6, 2, 3}, {"fast_f", FAST_F, 4, 9, 7, 3, 3}, {"fast_g", FAST_G, 7, 12, 12, 1, 3}};
    for (size_t ci = 0; ci < sizeof(cases) / sizeof(cases[0]); ci++) {
        TargetArch a;
        make_arch(&a, cases[ci].h, cases[ci].w, cases[ci].c, cases[ci].classes, cases[ci].spec, cases[ci].n);
        const int nets = 5, ns = gauge_n_scales(&a);
        const size_t nw = a.n_weights, tot = (size_t)nets * nw;
        float *raw = XALLOC_FLOATS(tot), *dout = XALLOC_FLOATS(tot);
        float *out[2], *sc[2], *dr[2], *dip[2];
        for (int m = 0; m < 2; m++) {
            out[m] = XALLOC_FLOATS(tot); sc[m] = XALLOC_FLOATS((size_t)nets * ns);
            dr[m] = XALLOC_FLOATS(tot); dip[m] = XALLOC_FLOATS(tot);
        }
        for (int k = 0; k < nets; k++)
            for (int l = 0; l < a.n_layers; l++) {
                const TargetLayer *L = &a.layers[l];
                for (int f = 0; f < L->filters; f++) // a scale per filter in 1e-3..10
                    fill(raw + k * nw + L->offset + (size_t)f * (L->fan_in + 1), L->fan_in + 1,
                         pow(10.0, 4.0 * urand() - 3.0));
            }
        fill(dout, tot, 1.0);
        const GaugeImpl impl[2] = {GAUGE_PORTABLE, GAUGE_AVX512};
        for (int m = 0; m < 2; m++) {
            gauge_forward_impl(impl[m], &a, nets, raw, out[m], sc[m]);
            gauge_backward_impl(impl[m], &a, nets, raw, sc[m], dout, dr[m]);
            memcpy(dip[m], dout, tot * sizeof(float));
            gauge_backward_impl(impl[m], &a, nets, raw, sc[m], dip[m], dip[m]);
        }
        int changed = 0;
        for (size_t i = 0; i < tot; i++) changed += out[0][i] != raw[i] && dr[0][i] != dout[i];
        const int same = !memcmp(out[0], out[1], tot * sizeof(float)) && !memcmp(sc[0], sc[1], (size_t)nets * ns * sizeof(float)) &&
                         !memcmp(dr[0], dr[1], tot * sizeof(float)) && !memcmp(dip[0], dip[1], tot * sizeof(float)) &&
                         !memcmp(dr[0], dip[0], tot * sizeof(float));
        T_CHECK(ts, same && changed > (int)(tot / 2), "%s (%zu weights, %d scales per network, %d nets): %s vs %s: "
                "weights, scales, d raw (out of place and in place) bitwise equal; %d of %zu weights and gradients changed "
                "by gauge fixing", cases[ci].name, nw, ns, nets, gauge_impl_name(GAUGE_AVX512),
                gauge_impl_name(GAUGE_PORTABLE), changed, tot);
        free(raw); free(dout);
        for (int m = 0; m < 2; m++) { free(out[m]); free(sc[m]); free(dr[m]); free(dip[m]); }
    }
    T_CHECK(ts, !strcmp(gauge_impl_name(GAUGE_AUTO), "avx512"), "gauge fixing on this CPU uses the %s row kernels "
            "(avx512 expected: the CPU has AVX-512)", gauge_impl_name(GAUGE_AUTO));
}

int main(void) {
    TestState ts = {0, 0};
    double t0 = ht_now();

    printf("HT_TARGET_IMPL: bad values are one-line errors\n");
    check_bad_impl_envs(&ts);
    check_gauge_kernels(&ts);
    check_adam_kernels(&ts);
    check_entropy_kernels(&ts);
    printf("per-op gradient checks (float32 central differences, h = 1e-2)\n");
    TargetOp conv3 = make_op(OP_CONV, 6, 5, 3, 3, 4);
    check_dense_op(&ts, "conv 3x3 6x5x3->4", &conv3, 2);
    TargetOp conv5 = make_op(OP_CONV, 4, 3, 2, 5, 3); // kernel wider than the image
    check_dense_op(&ts, "conv 5x5 4x3x2->3", &conv5, 2);
    TargetOp fc = make_op(OP_FC, 2, 3, 4, 0, 5);
    check_dense_op(&ts, "fc 2x3x4->5", &fc, 3);
    TargetOp pool2 = make_op(OP_MAXPOOL, 5, 7, 3, 2, 0);
    check_pool(&ts, "maxpool 2 5x7x3 d/dinput", &pool2, 2);
    TargetOp pool3 = make_op(OP_MAXPOOL, 7, 5, 2, 3, 0); // TF SAME: pad_top 1 in y, 0 in x
    check_pool(&ts, "maxpool 3 7x5x2 d/dinput", &pool3, 2);
    TargetOp pool2v = make_op(OP_MAXPOOL, 6, 5, 5, 2, 0); // 5 channels: vector path + remainder
    check_pool(&ts, "maxpool 2 6x5x5 d/dinput", &pool2v, 2);
    check_pool_ties(&ts);
    check_relu(&ts);
    check_softmax_ce(&ts);
    TargetOp conv_p2 = make_op(OP_CONV, 14, 14, 32, 5, 16), conv_p1 = make_op(OP_CONV, 28, 28, 1, 5, 32);
    check_conv_backward_ref(&ts, "conv backward 14x14x32->16 k5", &conv_p2, 3);
    check_conv_backward_ref(&ts, "conv backward 28x28x1->32 k5", &conv_p1, 2);

    TargetArch paper, pool;
    make_arch(&paper, 28, 28, 1, 10, PAPER, 9);
    T_CHECK(&ts, paper.n_weights == 20018, "paper network has %zu weights (20,018)", paper.n_weights);
    // The whole-network checks, once per implementation of the batched calls.
    for (int ii = 0; ii < 5; ii++) {
        const TargetImpl impls[5] = {TARGET_IMPL_REFERENCE, TARGET_IMPL_AVX2, TARGET_IMPL_AVX2_DENSE,
                                     TARGET_IMPL_AVX512, TARGET_IMPL_AVX512_DENSE};
        g_impl = impls[ii];
        if (!target_impl_available(&paper, g_impl)) {
            printf("SKIPPED whole-network checks of the %s path: not available on this CPU%s\n", target_impl_name(g_impl),
                   ii >= 3 ? " (no AVX-512)" : "");
            continue;
        }
        printf("=== whole network, implementation: %s ===\n", target_impl_name(g_impl));
        if (g_impl == TARGET_IMPL_REFERENCE) {
            printf("whole-network gradient (8x8x1, conv3->2 relu pool2 conv3->3 relu pool2 fc4 relu fc3)\n");
            check_network_grad(&ts, 0, SMALL, 9, 1);
            check_network_grad(&ts, 1, SMALL, 9, 1);
        } else {
            printf("whole-network gradient (8x8x1, conv3->8 relu pool2 conv3->16 relu pool2 fc4 relu fc3; "
                   "every 3rd parameter)\n");
            check_network_grad(&ts, 0, FAST_A, 9, 3);
            check_network_grad(&ts, 1, FAST_A, 9, 3);
        }
        check_paper_grad(&ts);

        printf("forward vs naive double reference\n");
        check_reference(&ts, "paper network, weights ~U(+-0.1)", &paper, 2, 3, -0.1, 1e-5);
        check_reference(&ts, "paper network, He-scaled weights", &paper, 2, 3, 1.0, 1e-5);
        make_arch(&pool, 7, 5, 1, 3, POOL3, 4);
        check_reference(&ts, "7x5 conv3 relu pool3 (padded) fc3", &pool, 3, 2, 1.0, 1e-5);
        make_arch(&pool, 7, 5, 3, 5, FAST_B, 4);
        check_reference(&ts, "7x5x3 conv5->24 relu pool3 (padded) fc5", &pool, 3, 2, 1.0, 1e-5);
        make_arch(&pool, 6, 6, 2, 3, FAST_C, 6);
        check_reference(&ts, "6x6x2 conv3->8 conv3->16 relu fc6 relu fc3", &pool, 3, 2, 1.0, 1e-5);

        printf("batching and threads (paper network)\n");
        check_batching(&ts);
    }

    printf("AVX2 and AVX-512 paths against the reference (tolerance in the comment above check_impls_match)\n");
    check_impl_selection(&ts);
    check_impls_match(&ts, "paper network (training shape)", &paper, 4, 32, 1.0, 0);
    check_impls_match(&ts, "paper network (validation shape)", &paper, 3, 50, 1.0, 1);
    check_impls_match(&ts, "paper network, weights x3", &paper, 2, 8, 3.0, 0);
    TargetArch fa;
    make_arch(&fa, 8, 8, 1, 3, FAST_A, 9);
    check_impls_match(&ts, "8x8 conv3->8 relu pool2 conv3->16 relu pool2 fc4 relu fc3", &fa, 3, 5, 1.0, 0);
    make_arch(&fa, 7, 5, 3, 5, FAST_B, 4);
    check_impls_match(&ts, "7x5x3 conv5->24 relu pool3 (clipped windows) fc5", &fa, 3, 4, 1.0, 0);
    make_arch(&fa, 6, 6, 2, 3, FAST_C, 6);
    check_impls_match(&ts, "6x6x2 conv3->8 conv3->16 relu fc6 relu fc3", &fa, 2, 3, 1.0, 1);
    make_arch(&fa, 5, 5, 1, 3, FAST_D, 3);
    check_impls_match(&ts, "5x5 conv1->8 pool2 (no relu) fc3", &fa, 2, 3, 1.0, 0);
    make_arch(&fa, 7, 5, 8, 3, FAST_E, 6);
    check_impls_match(&ts, "7x5x8 conv3->8 pool3 (clipped) conv5->16 relu pool2 fc3", &fa, 3, 4, 1.0, 0);
    make_arch(&fa, 6, 6, 1, 3, FAST_F, 4);
    check_impls_match(&ts, "6x6 conv3->40 relu pool2 (fused, 3 windows a row) fc3", &fa, 2, 3, 1.0, 0);
    make_arch(&fa, 8, 8, 1, 3, FAST_G, 7);
    check_impls_match(&ts, "8x8 conv3->48 relu pool2 conv5->16 relu pool2 fc3", &fa, 2, 3, 1.0, 0);
    make_arch(&fa, 4, 4, 1, 3, FC_ONLY, 3);
    check_impls_match(&ts, "4x4 fc6 relu fc3 (no conv)", &fa, 2, 3, 1.0, 0);

    timing();
    printf("  total test time %.1f s\n", ht_now() - t0);
    return test_summary(&ts, "test_target");
}
