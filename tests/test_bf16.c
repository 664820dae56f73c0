// test_bf16.c: bf16 evaluation of the target network (src/target_bf16.c, eval_precision = bf16).
//
// Every comparison is on centred log-probabilities: for an image, l[c] = log p[c] - mean_c log p[c]
// (= the logits minus their mean, whatever the softmax's shift), error = max_c |l[c] - l_ref[c]|,
// relative to S = max(1, max_c |l_ref[c]|) (the logits' scale). The reference is a naive double
// forward pass (plain loops).
//
//  1. Exact values (paper network): images k/4, conv weights and biases multiples of 2^-5 (conv1
//     |w| <= 1/4, conv2 |w| <= 1/8). bf16 holds them exactly; conv1's products and sums are
//     multiples of 2^-7 below 2^24 * 2^-7, conv2's (after the bf16 rounding of conv1's pooled
//     output, which the reference applies with the same round-to-nearest-even) multiples of 2^-12
//     with |sum| <= 800 * 7 * 1/8 < 2^24 * 2^-12: every conv sum is exact in float32, in any
//     order. What remains is the float32 fc layers and softmax: ~1e-7 relative. Budget 1e-5 * S:
//     any wrong index, missing term or wrong pair is an O(1e-2..1) error.
//  2. The same bf16-rounded inputs, weights and activations as the reference, random values
//     (weights U(+-sqrt(3/fan_in)), images U[0,1)): errors are float32 summation (sqrt(K) u of the
//     sum of |terms|, K <= 800: ~1e-6 relative) plus the rare activation whose float32 and double
//     values round to different bf16 neighbours (probability ~ 1e-6 / 2^-8 per activation, ~1 per
//     image of 6,272; each moves a logit by ~2^-8 of one term's share, well under 1e-4 of S).
//     Budget 1e-4 * S (measured 5e-7 on the paper network: flips are rarer than this bound). A
//     truncating conversion (fault 1) biases every rounding by half a bf16 ulp (2^-9 relative,
//     all terms the same direction; measured 1.3e-2 of S) and must fail it.
//  3. Against float32 inputs and weights (no rounding in the reference): the bf16 rounding itself,
//     2^-9 relative per input and per weight, random signs, through two conv layers: expected
//     a few 1e-3 * S (measured 1e-3..4e-3). Budget 2e-2 * S; argmax agreement printed (random networks have small margins,
//     so this is a lower bound of what trained networks get; docs/performance.md has a real
//     checkpoint's). Dropping the last pair of each kernel row (fault 2) loses 1/3 of conv1 and
//     1/80 of conv2 and must fail checks 1 and 2.
//  4. target_forward with eval bf16 = target_bf16_forward_net network by network, bitwise, for 1
//     and 2 threads and shared or per-network images; target_loss_grad ignores the setting
//     (bitwise the float32 training results); HT_EVAL_PRECISION and the job key's path.
//  5. Architectures that take every branch: odd channel counts (1, 3; the last pair's second
//     element is the next pixel or the zero padding), 8 filters (half a column block), 48 filters
//     (2 + 1 column blocks), no pool, 1x1 kernels, pooled sizes not a multiple of 3 windows.
// Without AVX512_BF16 the kernel checks print "SKIPPED ... on this CPU"; the checks that need no
// such CPU (rounding, names, refusals and their one-line errors) always run.
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>


#include "arch.h"
#include "common.h"
#include "forkcheck.h"
#include "target.h"
#include "target_bf16.h"
#include "testarch.h"
#include "testutil.h"

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double urand(void) { // splitmix64 -> [0, 1)
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}


static const char *const PAPER[] = {"c5:32", "r", "p2", "c5:16", "r", "p2", "f8", "r", "f10"};
static const char *const A_ODD[] = {"c3:8", "r", "p2", "c3:16", "r", "p2", "f4", "r", "f3"};  // C = 1, F = 8
static const char *const A_NOPOOL[] = {"c3:8", "c3:16", "r", "f6", "r", "f3"};                // no pool, C = 2 input
static const char *const A_WIDE[] = {"c3:48", "r", "p2", "c5:16", "r", "p2", "f3"};           // 48 filters
static const char *const A_1X1[] = {"c1:8", "p2", "f3"};                                      // k = 1, C = 1
static const char *const A_C3[] = {"c5:24", "r", "p2", "f5"};                                 // C = 3, k = 5
static const char *const A_POOL3[] = {"c3:8", "r", "p3", "f3"};                               // not for bf16

// ---- the double reference; round = 1: bf16-rounded conv inputs and weights, as the kernels ----

static double rnd(double x, int round) { return round ? (double)target_bf16_round((float)x) : x; }

static void ref_forward(const TargetArch *a, const float *theta, const float *img, int round, double *logits) {
    double *x = XMALLOC(a->max_act * sizeof(double)), *y = XMALLOC(a->max_act * sizeof(double));
    for (int i = 0; i < a->in_size; i++) x[i] = img[i];
    for (int o = 0; o < a->n_ops; o++) {
        const TargetOp *op = &a->ops[o];
        const int H = op->in_h, W = op->in_w, C = op->in_c, k = op->kernel;
        if (op->type == OP_CONV) {
            const TargetLayer *L = &a->layers[op->layer];
            const int p = (k - 1) / 2;
            for (size_t i = 0; i < (size_t)H * W * C; i++) x[i] = rnd(x[i], round);
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++)
                    for (int f = 0; f < op->out_c; f++) {
                        const float *w = theta + L->offset + (size_t)f * (L->fan_in + 1);
                        double s = w[L->fan_in];
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++)
                                for (int c = 0; c < C; c++) {
                                    const int iy = yy + ky - p, ix = xx + kx - p;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                    s += rnd(w[(ky * k + kx) * C + c], round) * x[(iy * W + ix) * C + c];
                                }
                        y[(yy * W + xx) * op->out_c + f] = round ? (double)(float)s : s; // float32 sums
                    }
        } else if (op->type == OP_FC) {
            const TargetLayer *L = &a->layers[op->layer];
            for (int f = 0; f < op->out_c; f++) {
                const float *w = theta + L->offset + (size_t)f * (L->fan_in + 1);
                double s = w[L->fan_in];
                for (int j = 0; j < L->fan_in; j++) s += w[j] * x[j];
                y[f] = s;
            }
        } else if (op->type == OP_RELU) {
            for (int i = 0; i < op->out_h * op->out_w * op->out_c; i++) y[i] = x[i] > 0 ? x[i] : 0;
        } else { // 2x2 max pool over even sizes (what the bf16 path takes)
            for (int oy = 0; oy < op->out_h; oy++)
                for (int ox = 0; ox < op->out_w; ox++)
                    for (int c = 0; c < C; c++) {
                        double m = -INFINITY;
                        for (int d = 0; d < 4; d++) {
                            const double v = x[((2 * oy + d / 2) * W + 2 * ox + d % 2) * C + c];
                            if (v > m) m = v;
                        }
                        y[(oy * op->out_w + ox) * C + c] = m;
                    }
        }
        double *t = x; x = y; y = t;
    }
    memcpy(logits, x, (size_t)a->classes * sizeof(double));
    free(x); free(y);
}

// Worst error of probs (n images, classes) against logits_ref, relative to S (header comment).
static double centred_err(int classes, int n, const float *probs, const double *logits_ref) {
    double worst = 0.0;
    for (int i = 0; i < n; i++) {
        const float *p = probs + (size_t)i * classes;
        const double *l = logits_ref + (size_t)i * classes;
        double mp = 0.0, ml = 0.0, S = 1.0, e = 0.0;
        for (int c = 0; c < classes; c++) { mp += log(fmax((double)p[c], 1e-300)); ml += l[c]; }
        mp /= classes; ml /= classes;
        for (int c = 0; c < classes; c++) S = fmax(S, fabs(l[c] - ml));
        for (int c = 0; c < classes; c++) {
            const double d = fabs((log(fmax((double)p[c], 1e-300)) - mp) - (l[c] - ml));
            e = isnan(d) ? INFINITY : fmax(e, d);
        }
        worst = fmax(worst, e / S);
    }
    return worst;
}

// Weights U(+-sqrt(3/fan_in)), biases U(+-0.1); or (exact) multiples of 2^-5 as in check 1.
static void init_theta(const TargetArch *a, float *theta, int exact) {
    for (int l = 0; l < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        const int conv = a->ops[L->op].type == OP_CONV;
        const double s = sqrt(3.0 / L->fan_in);
        for (int f = 0; f < L->filters; f++) {
            float *w = theta + L->offset + (size_t)f * (L->fan_in + 1);
            for (int j = 0; j <= L->fan_in; j++) {
                if (exact && conv) {
                    const int m = l == 0 ? 8 : 4; // |w| <= 8/32 (conv1), 4/32 (later convs)
                    w[j] = (float)((int)floor(urand() * (2 * m + 1)) - m) / 32.0f;
                } else
                    w[j] = (float)((2.0 * urand() - 1.0) * (j < L->fan_in ? s : 0.1));
            }
        }
    }
}

// ---- one comparison: bf16 forward (fault) of nets networks on n images against the reference ----

typedef struct {
    double err_same, err_fp32; // worst centred error vs the rounded reference, vs the float32 one
    double agree;              // fraction of (network, image) argmax decisions equal to the float32 reference's
} Cmp;

static Cmp compare(const TargetArch *a, int nets, int n, int exact, TargetBf16Fault fault) {
    const size_t nw = a->n_weights, C = (size_t)a->classes;
    float *theta = XALLOC_FLOATS(nets * nw), *img = XALLOC_FLOATS((size_t)n * a->in_size);
    float *probs = XALLOC_FLOATS((size_t)n * C);
    double *lr = XMALLOC((size_t)n * C * sizeof(double)), *lf = XMALLOC((size_t)n * C * sizeof(double));
    float *ws = XALLOC_FLOATS(target_bf16_ws_floats(a, n));
    for (int k = 0; k < nets; k++) init_theta(a, theta + k * nw, exact);
    for (size_t i = 0; i < (size_t)n * a->in_size; i++)
        img[i] = exact ? (float)floor(urand() * 5) / 4.0f : (float)urand();
    Cmp r = {0, 0, 0};
    long agree = 0;
    for (int k = 0; k < nets; k++) {
        const float *th = theta + k * nw;
        target_bf16_forward_net(a, n, ws, th, n, img, probs, fault);
        for (int i = 0; i < n; i++) {
            ref_forward(a, th, img + (size_t)i * a->in_size, 1, lr + i * C);
            ref_forward(a, th, img + (size_t)i * a->in_size, 0, lf + i * C);
            int ab = 0, af = 0;
            for (size_t c = 1; c < C; c++) {
                if (probs[i * C + c] > probs[i * C + ab]) ab = (int)c;
                if (lf[i * C + c] > lf[i * C + af]) af = (int)c;
            }
            agree += ab == af;
        }
        r.err_same = fmax(r.err_same, centred_err((int)C, n, probs, lr));
        r.err_fp32 = fmax(r.err_fp32, centred_err((int)C, n, probs, lf));
    }
    r.agree = (double)agree / ((double)nets * n);
    free(theta); free(img); free(probs); free(lr); free(lf); free(ws);
    return r;
}

#define TIGHT_EXACT 1e-5
#define TIGHT 1e-4
#define LOOSE 2e-2

static void check_arch(TestState *ts, const char *name, const TargetArch *a, int nets, int n) {
    const Cmp e = compare(a, nets, n, 1, TARGET_BF16_OK);
    T_CHECK(ts, e.err_same <= TIGHT_EXACT, "%s, exact values: %.1e of S against the double reference of the same "
            "bf16 values (budget %.0e: %.1f%%)", name, e.err_same, TIGHT_EXACT, 100.0 * e.err_same / TIGHT_EXACT);
    const Cmp r = compare(a, nets, n, 0, TARGET_BF16_OK);
    T_CHECK(ts, r.err_same <= TIGHT, "%s, random values: %.1e of S against the same bf16-rounded values "
            "(budget %.0e: %.1f%%)", name, r.err_same, TIGHT, 100.0 * r.err_same / TIGHT);
    T_CHECK(ts, r.err_fp32 <= LOOSE, "%s, random values: %.1e of S against float32 inputs and weights "
            "(budget %.0e: %.1f%%); argmax equal to float32's for %.2f%% of %d x %d", name, r.err_fp32, LOOSE,
            100.0 * r.err_fp32 / LOOSE, 100.0 * r.agree, nets, n);
}

// Checks 1-3 on the paper network, and the deliberate faults: each must fail the tight checks.
static void check_paper(TestState *ts) {
    TargetArch a;
    make_arch(&a, 28, 28, 1, 10, PAPER, 9);
    printf("paper network (tolerances in the header comment)\n");
    check_arch(ts, "paper network, 3 nets x 20 images", &a, 3, 20);
    const Cmp r = compare(&a, 8, 50, 0, TARGET_BF16_OK);
    T_CHECK(ts, r.agree >= 0.95 && r.err_fp32 <= LOOSE, "paper network, 8 random nets x 50 images: argmax equal to "
            "float32's for %.2f%% (>= 95%%), worst %.1e of S", 100.0 * r.agree, r.err_fp32);
    printf("deliberately broken kernels must fail the checks above\n");
    const Cmp t1 = compare(&a, 3, 20, 0, TARGET_BF16_FAULT_TRUNCATE);
    T_CHECK(ts, t1.err_same > TIGHT, "truncating conversion: %.1e of S against the round-to-nearest-even "
            "reference (> budget %.0e: detected)", t1.err_same, TIGHT);
    const Cmp t2 = compare(&a, 3, 20, 1, TARGET_BF16_FAULT_DROP_PAIR);
    const Cmp t3 = compare(&a, 3, 20, 0, TARGET_BF16_FAULT_DROP_PAIR);
    T_CHECK(ts, t2.err_same > TIGHT_EXACT && t3.err_same > TIGHT, "last pair of each kernel row dropped: "
            "%.1e of S on exact values (> %.0e), %.1e on random ones (> %.0e): detected", t2.err_same, TIGHT_EXACT,
            t3.err_same, TIGHT);
}

// Check 4: the batched calls.
static void check_batched(TestState *ts) {
    TargetArch a;
    make_arch(&a, 28, 28, 1, 10, PAPER, 9);
    const int nets = 5, n = 7;
    const size_t nw = a.n_weights, per = (size_t)n * a.in_size, np = (size_t)n * a.classes;
    float *theta = XALLOC_FLOATS(nets * nw), *img = XALLOC_FLOATS(nets * per);
    float *p1 = XALLOC_FLOATS(nets * np), *p2 = XALLOC_FLOATS(nets * np), *pn = XALLOC_FLOATS(nets * np);
    float *pf = XALLOC_FLOATS(nets * np), *ws = XALLOC_FLOATS(target_bf16_ws_floats(&a, 16));
    for (int k = 0; k < nets; k++) init_theta(&a, theta + k * nw, 0);
    for (size_t i = 0; i < nets * per; i++) img[i] = (float)urand();
    int same = 1;
    for (int shared = 0; shared < 2; shared++) {
        const size_t stride = shared ? 0 : per;
        for (int k = 0; k < nets; k++)
            target_bf16_forward_net(&a, 16, ws, theta + k * nw, n, img + k * stride, pn + k * np, TARGET_BF16_OK);
        for (int th = 1; th <= 2; th++) {
            TargetNet t;
            target_init(&t, &a, 16, th);
            T_CHECK(ts, target_set_eval_precision(&t, TARGET_EVAL_BF16) && t.eval == TARGET_EVAL_BF16,
                    "target_set_eval_precision(bf16) (%d thread(s))", th);
            omp_set_num_threads(th);
            target_forward(&t, nets, theta, n, img, stride, th == 1 ? p1 : p2);
            target_set_eval_precision(&t, TARGET_EVAL_FP32);
            target_forward(&t, nets, theta, n, img, stride, pf);
            target_free(&t);
        }
        same &= !memcmp(p1, pn, nets * np * sizeof(float)) && !memcmp(p2, pn, nets * np * sizeof(float));
        T_CHECK(ts, memcmp(pf, pn, nets * np * sizeof(float)) != 0,
                "%s images: eval fp32 after bf16 gives float32 results (they differ from bf16's)", shared ? "shared" : "own");
    }
    omp_set_num_threads(2);
    T_CHECK(ts, same, "target_forward with eval bf16 = target_bf16_forward_net per network, bitwise, 1 and 2 threads, "
            "shared and per-network images");
    // training ignores the evaluation precision
    uint8_t *labels = XMALLOC((size_t)nets * n);
    for (int i = 0; i < nets * n; i++) labels[i] = (uint8_t)(urand() * 10);
    double l0[5], l1[5];
    int c0[5], c1[5];
    float *d0 = XALLOC_FLOATS(nets * nw), *d1 = XALLOC_FLOATS(nets * nw);
    TargetNet t;
    target_init(&t, &a, 16, 2);
    target_loss_grad(&t, nets, theta, n, img, per, labels, n, 1.0f, l0, c0, d0);
    target_set_eval_precision(&t, TARGET_EVAL_BF16);
    target_loss_grad(&t, nets, theta, n, img, per, labels, n, 1.0f, l1, c1, d1);
    target_free(&t);
    T_CHECK(ts, !memcmp(d0, d1, nets * nw * sizeof(float)) && !memcmp(l0, l1, sizeof(l0)) && !memcmp(c0, c1, sizeof(c0)),
            "target_loss_grad: loss, correct and gradients bitwise the same with eval bf16 (training stays float32)");
    free(theta); free(img); free(p1); free(p2); free(pn); free(pf); free(ws); free(labels); free(d0); free(d1);
}

// ---- checks that need no AVX512_BF16 ----

static void check_round(TestState *ts) {
    // (input, expected): ties go to the even bf16 (1 + 2^-8 -> 1; 1 + 3*2^-8 -> 1 + 2^-6 ... as bits)
    const float in[] = {1.0f, 1.0f + 0x1p-8f, 1.0f + 0x1p-7f + 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f, -3.0f - 0x1p-7f,
                        65504.0f, INFINITY};
    const float want[] = {1.0f, 1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -3.0f, 65536.0f, INFINITY};
    int ok = 1;
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) ok &= target_bf16_round(in[i]) == want[i];
    ok &= isnan(target_bf16_round(NAN));
    T_CHECK(ts, ok, "target_bf16_round: round to nearest, ties to even, Inf kept, NaN stays NaN");
    TargetPrecision p;
    T_CHECK(ts, target_precision_parse("bf16", &p) && p == TARGET_EVAL_BF16 && target_precision_parse("fp32", &p) &&
                p == TARGET_EVAL_FP32 && !target_precision_parse("BF16", &p) && !target_precision_parse("fp16", &p) &&
                !strcmp(target_precision_name(TARGET_EVAL_BF16), "bf16"),
            "precision names: fp32, bf16 (BF16, fp16 refused)");
}

typedef struct { const TargetArch *a; const char *value; int apply; } EnvChild;

// Child: target_init with HT_EVAL_PRECISION=value (and arch a) must exit with one line.
static void env_child(void *ctx) {
    const EnvChild *c = (const EnvChild *)ctx;
    TargetNet t;
    if (c->apply) { // the job key's path: target_apply_eval_precision
        unsetenv("HT_EVAL_PRECISION");
        target_init(&t, c->a, 4, 1);
        target_apply_eval_precision(&t, TARGET_EVAL_BF16, "eval_precision");
    } else {
        setenv("HT_EVAL_PRECISION", c->value, 1);
        target_init(&t, c->a, 4, 1);
    }
}

static void check_refused(TestState *ts, const TargetArch *a, const char *value, int apply, const char *want,
                          const char *why) {
    EnvChild c = {a, value, apply};
    const ChildResult r = t_run_child(env_child, &c);
    T_CHECK(ts, r.exit_code > 0 && r.lines == 1 && strstr(r.err, want),
            "%s: an error: exit %d, %d line(s) naming '%s': %s", why, r.exit_code, r.lines, want,
            r.err[0] ? r.err : "(empty)");
}

// Refusals: run first, before any OpenMP thread exists (forked children; see test_target.c).
static void check_refusals(TestState *ts) {
    TargetArch paper, pool3;
    make_arch(&paper, 28, 28, 1, 10, PAPER, 9);
    make_arch(&pool3, 7, 5, 1, 3, A_POOL3, 4);
    check_refused(ts, &paper, "bf17", 0, "HT_EVAL_PRECISION", "HT_EVAL_PRECISION=bf17 (unknown)");
    check_refused(ts, &paper, "BF16", 0, "bf16", "HT_EVAL_PRECISION=BF16 (names are lower case)");
    check_refused(ts, &pool3, "bf16", 0, target_bf16_cpu_ok() ? "max pool" : "AVX512_BF16",
                  "HT_EVAL_PRECISION=bf16 with a 3x3 pool (or no AVX512_BF16)");
    check_refused(ts, &pool3, "", 1, "eval_precision", "the job key asking for bf16 where it cannot run");
    const char *why = NULL;
    T_CHECK(ts, !target_precision_available(&pool3, TARGET_EVAL_BF16, &why) && why &&
                target_precision_available(&pool3, TARGET_EVAL_FP32, NULL),
            "a 3x3 pool: bf16 not available (%s), fp32 is", why ? why : "?");
    TargetNet t;
    target_init(&t, &pool3, 4, 1);
    T_CHECK(ts, !target_set_eval_precision(&t, TARGET_EVAL_BF16) && t.eval == TARGET_EVAL_FP32,
            "target_set_eval_precision(bf16) refused there, fp32 kept");
    target_free(&t);
    if (!target_bf16_cpu_ok()) {
        T_CHECK(ts, !target_precision_available(&paper, TARGET_EVAL_BF16, &why), "no AVX512_BF16: bf16 refused (%s)",
                why ? why : "?");
        check_refused(ts, &paper, "", 1, "AVX512_BF16", "the job key asking for bf16 on a CPU without it");
    }
}

// HT_EVAL_PRECISION at target_init, and the job key's path (target_apply_eval_precision) under it.
static void check_selection(TestState *ts) {
    TargetArch a;
    make_arch(&a, 28, 28, 1, 10, PAPER, 9);
    TargetNet t;
    target_init(&t, &a, 8, 1);
    T_CHECK(ts, t.eval == TARGET_EVAL_FP32, "target_init: fp32 evaluation by default");
    target_apply_eval_precision(&t, TARGET_EVAL_BF16, "eval_precision");
    T_CHECK(ts, t.eval == TARGET_EVAL_BF16, "target_apply_eval_precision(bf16) without HT_EVAL_PRECISION: bf16");
    target_free(&t);
    setenv("HT_EVAL_PRECISION", "bf16", 1);
    target_init(&t, &a, 8, 1);
    const int env_bf16 = t.eval == TARGET_EVAL_BF16;
    target_apply_eval_precision(&t, TARGET_EVAL_FP32, "eval_precision");
    T_CHECK(ts, env_bf16 && t.eval == TARGET_EVAL_BF16, "HT_EVAL_PRECISION=bf16: target_init sets bf16, and a job's "
            "fp32 does not override it");
    target_free(&t);
    setenv("HT_EVAL_PRECISION", "fp32", 1);
    target_init(&t, &a, 8, 1);
    target_apply_eval_precision(&t, TARGET_EVAL_BF16, "eval_precision");
    T_CHECK(ts, t.eval == TARGET_EVAL_FP32, "HT_EVAL_PRECISION=fp32 wins over a job's bf16");
    target_free(&t);
    unsetenv("HT_EVAL_PRECISION");
}

int main(void) {
    TestState ts = {0, 0};
    const double t0 = ht_now();
    unsetenv("HT_EVAL_PRECISION");
    printf("bf16 rounding, names and refusals (no AVX512_BF16 needed)\n");
    check_refusals(&ts);
    check_round(&ts);
    if (!target_bf16_cpu_ok()) {
        printf("  SKIPPED bf16 kernel checks: no AVX512_BF16 on this CPU\n");
        return test_summary(&ts, "test_bf16");
    }
    check_paper(&ts);
    printf("other architectures (odd channels, half and 3 column blocks, no pool, 1x1, pool tails)\n");
    TargetArch a;
    make_arch(&a, 8, 8, 1, 3, A_ODD, 9);
    check_arch(&ts, "8x8 conv3->8 relu pool2 conv3->16 relu pool2 fc4 relu fc3", &a, 3, 5);
    make_arch(&a, 6, 6, 2, 3, A_NOPOOL, 6);
    check_arch(&ts, "6x6x2 conv3->8 conv3->16 relu fc6 relu fc3", &a, 3, 4);
    make_arch(&a, 8, 8, 1, 3, A_WIDE, 7);
    check_arch(&ts, "8x8 conv3->48 relu pool2 conv5->16 relu pool2 fc3", &a, 2, 3);
    make_arch(&a, 6, 4, 1, 3, A_1X1, 3);
    check_arch(&ts, "6x4 conv1->8 pool2 (no relu) fc3", &a, 3, 3);
    make_arch(&a, 10, 6, 3, 5, A_C3, 4);
    check_arch(&ts, "10x6x3 conv5->24 relu pool2 fc5", &a, 3, 3);
    printf("batched calls, selection\n");
    check_batched(&ts);
    check_selection(&ts);
    printf("  total test time %.1f s\n", ht_now() - t0);
    return test_summary(&ts, "test_bf16");
}
