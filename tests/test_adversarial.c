// test_adversarial.c: the library pieces behind hyperanalyze adversarial, ood and baseline
// (src/classifier.c):
//   1. input gradient of a linear softmax classifier (fc 784 -> 10) against its closed form
//      W^T (p - e_target) computed here in double: every element, and the sign pattern exactly;
//      the targeted FGSM step against x' = clip(x - eps sign(g), 0, 1) worked out by hand on pixels
//      at 0, 1 and in between (clipping both ways, sign(0) = 0), and the step lowers CE(target);
//   2. input gradient of the tiny conv net (jobs/tiny.json: conv, relu, maxpool, conv, relu,
//      maxpool, fc, relu, fc) against central finite differences of the cross-entropy, directional
//      and on the largest elements; its forward probabilities equal target_forward's;
//   3. the white-box ensemble gradient (dlogits_m = w_m (p_m - e_t), w_m from
//      ensemble_target_weight) against finite differences of -log mean_m p_m(t | x);
//   4. OOD scores on a constructed ensemble (entropy, mutual information, 1 - max p by hand) and
//      their AUROCs (1 and 0.75);
//   5. He / Glorot initialization: zero biases, He sigma sqrt(2 / fan_in) on a wide layer, Glorot
//      bound, deterministic per (seed, network), different networks differ;
//   6-11. the per-image protocol of hyperanalyze adversarial (analysis/adv_core.c): the FGSM steps
//      of the source and of the ensemble against finite-difference gradient signs (both modes,
//      clip and no clip); a network constant in x is never fooled (inf) and a source that
//      misclassifies skips the image (NaN, counted); the smallest eps on a hand-made linear case
//      (every line, both modes, clipped and not); majority vote ties; the network draw (distinct,
//      uniform, deterministic, too few networks is one fatal line naming the counts); targets;
//      the same results for 1 and 2 threads, and for the ensemble evaluated in eps blocks or at once.
// The program includes analysis/metrics.c (metric_auroc) and analysis/adv_core.c directly.
#include "../analysis/metrics.c"
#include "../analysis/adv_core.c"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "classifier.h"
#include "common.h"
#include "config.h"
#include "fdcheck.h"
#include "target.h"
#include "testutil.h"

static uint64_t g_rng = 987654321;
static double urand(void) {
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return ((double)((g_rng * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;
}

static void fc_only_arch(TargetArch *a) {
    Job job;
    job_defaults(&job);
    job.n_layers = 1;
    memset(&job.layers[0], 0, sizeof(LayerSpec));
    job.layers[0].type = OP_FC;
    job.layers[0].filters = 10;
    job.layers[0].gen_hidden[0] = 6;
    job.layers[0].n_gen_hidden = 1;
    job.layers[0].per_filter = 0;
    job_validate(&job);
    arch_build_target(a, &job);
}

// ---- 1. linear classifier: closed form ----
static void test_linear(TestState *ts) {
    printf("linear softmax classifier (fc 784 -> 10): input gradient and FGSM by hand\n");
    TargetArch a;
    fc_only_arch(&a);
    const int D = a.in_size, C = a.classes, n = 3;
    float *theta = XALLOC_FLOATS(a.n_weights), *x = XALLOC_FLOATS((size_t)n * D), *g = XALLOC_FLOATS((size_t)n * D);
    for (size_t j = 0; j < a.n_weights; j++) theta[j] = (float)(0.2 * (urand() - 0.5));
    for (int j = 0; j < n * D; j++) {
        const double u = urand();   // a third of the pixels at 0, a third at 1
        x[j] = u < 0.33 ? 0.0f : u < 0.66 ? 1.0f : (float)urand();
    }
    // one weight row made zero at pixel 5 for every class: its gradient is exactly 0
    for (int c = 0; c < C; c++) theta[(size_t)c * (D + 1) + 5] = 0.0f;
    const uint8_t target[3] = {3, 7, 0};
    InputGrad ig;
    input_grad_init(&ig, &a, 8);
    float probs[30];
    input_grad_ce(&ig, theta, n, x, target, probs, g);
    double max_err = 0, max_g = 0;
    int sign_bad = 0;
    for (int i = 0; i < n; i++) {
        double logit[10], p[10], mx = -1e300, s = 0;
        for (int c = 0; c < C; c++) {
            const float *w = theta + (size_t)c * (D + 1);
            double v = w[D];
            for (int j = 0; j < D; j++) v += (double)w[j] * x[(size_t)i * D + j];
            logit[c] = v;
            if (v > mx) mx = v;
        }
        for (int c = 0; c < C; c++) s += exp(logit[c] - mx);
        for (int c = 0; c < C; c++) p[c] = exp(logit[c] - mx) / s;
        for (int j = 0; j < D; j++) {
            double gj = 0;
            for (int c = 0; c < C; c++) gj += theta[(size_t)c * (D + 1) + j] * (p[c] - (c == target[i]));
            const double got = g[(size_t)i * D + j];
            if (fabs(got - gj) > max_err) max_err = fabs(got - gj);
            if (fabs(gj) > max_g) max_g = fabs(gj);
            if (fabs(gj) > 1e-5 && (gj > 0) != (got > 0)) sign_bad++;
        }
    }
    T_CHECK(ts, max_err <= 1e-5 * max_g + 1e-7, "input gradient = W^T (p - e_t): max error %.2e (max |g| %.3f)", max_err, max_g);
    T_CHECK(ts, sign_bad == 0, "sign pattern of the gradient equals the closed form's (%d differ)", sign_bad);
    T_CHECK(ts, g[5] == 0.0f && g[D + 5] == 0.0f, "a pixel no logit reads has gradient exactly 0");

    // FGSM by hand
    const float eps = 0.1f;
    float *adv = XALLOC_FLOATS((size_t)n * D);
    fgsm_targeted((size_t)n * D, x, g, eps, adv);
    int bad = 0, clipped_lo = 0, clipped_hi = 0, moved = 0;
    for (int j = 0; j < n * D; j++) {
        float want = x[j];
        if (g[j] > 0) want = x[j] - eps;
        else if (g[j] < 0) want = x[j] + eps;
        if (want < 0) { want = 0; clipped_lo++; }
        if (want > 1) { want = 1; clipped_hi++; }
        bad += adv[j] != want;
        moved += adv[j] != x[j];
    }
    T_CHECK(ts, bad == 0, "fgsm_targeted = clip(x - eps sign(g), 0, 1) on every pixel (%d differ; %d clipped at 0, "
            "%d at 1, %d moved)", bad, clipped_lo, clipped_hi, moved);
    T_CHECK(ts, clipped_lo > 100 && clipped_hi > 100, "the case exercises both clips (%d, %d)", clipped_lo, clipped_hi);
    T_CHECK(ts, adv[5] == x[5] && adv[D + 5] == x[D + 5], "sign(0) = 0 leaves the pixel unchanged");
    float g2[3 * 784];
    const double ce0 = input_grad_ce(&ig, theta, n, x, target, NULL, g2);
    fgsm_targeted((size_t)n * D, x, g, 0.01f, adv);
    const double ce1 = input_grad_ce(&ig, theta, n, adv, target, NULL, g2);
    T_CHECK(ts, ce1 < ce0, "a small targeted step lowers CE(target): %.6f -> %.6f", ce0, ce1);
    input_grad_free(&ig);
    free(theta); free(x); free(g); free(adv);
}

// ---- 2. tiny conv net: finite differences ----
typedef struct {
    InputGrad *ig;
    const float *theta;
    int n;
    float *x;
    const uint8_t *labels;
} CeCtx;

static double ce_fn(void *p) {
    CeCtx *c = p;
    float *dl = malloc(sizeof(float) * c->n * c->ig->arch->classes);
    float *probs = malloc(sizeof(float) * c->n * c->ig->arch->classes);
    input_grad_forward(c->ig, c->theta, c->n, c->x, probs);
    double loss = 0;
    for (int i = 0; i < c->n; i++) loss -= log((double)probs[(size_t)i * c->ig->arch->classes + c->labels[i]]);
    free(dl); free(probs);
    return loss;
}

static void test_conv_fd(TestState *ts) {
    printf("tiny conv net (jobs/tiny.json): input gradient against finite differences\n");
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    job_validate(&job);
    TargetArch a;
    arch_build_target(&a, &job);
    const int n = 3, D = a.in_size;
    float *theta = XALLOC_FLOATS(a.n_weights);
    classifier_init(&a, INIT_HE, 7, 0, 1, theta);
    for (int l = 0; l < a.n_layers; l++) {   // non-zero biases so no ReLU sits at a kink by accident
        const TargetLayer *L = &a.layers[l];
        for (int f = 0; f < L->filters; f++) theta[L->offset + (size_t)f * (L->fan_in + 1) + L->fan_in] = (float)(0.1 * (urand() - 0.3));
    }
    float *x = XALLOC_FLOATS((size_t)n * D), *g = XALLOC_FLOATS((size_t)n * D);
    for (int j = 0; j < n * D; j++) x[j] = (float)(0.1 + 0.8 * urand());
    const uint8_t labels[3] = {1, 4, 9};
    InputGrad ig;
    input_grad_init(&ig, &a, 4);
    float probs[30], probs2[30];
    const double loss = input_grad_ce(&ig, theta, n, x, labels, probs, g);
    TargetNet tn;
    target_init(&tn, &a, 4, 1);
    target_forward(&tn, 1, theta, n, x, 0, probs2);
    double dp = 0;
    for (int j = 0; j < n * a.classes; j++) dp = fmax(dp, fabs(probs[j] - probs2[j]));
    T_CHECK(ts, dp <= 1e-6, "forward probabilities equal target_forward's (max diff %.1e)", dp);
    CeCtx ctx = { &ig, theta, n, x, labels };
    T_CHECK(ts, fabs(ce_fn(&ctx) - loss) < 1e-4 * fabs(loss) + 1e-6, "input_grad_ce returns the CE sum (%.6f)", loss);
    double gn = 0;
    for (int j = 0; j < n * D; j++) gn += (double)g[j] * g[j];
    T_CHECK(ts, gn > 1e-8, "gradient is not zero (|g|^2 = %.3e)", gn);
    fd_directional_ladder(ts, "d CE / d images (direction 1)", ce_fn, &ctx, x, g, (size_t)n * D, 1e-2, 2e-2, 11);
    fd_directional_ladder(ts, "d CE / d images (direction 2)", ce_fn, &ctx, x, g, (size_t)n * D, 1e-2, 2e-2, 12);
    fd_elements(ts, "d CE / d images (largest)", ce_fn, &ctx, x, g, (size_t)n * D, 2e-3, 5e-2, 1e-4, 6);
    target_free(&tn);
    input_grad_free(&ig);
    free(theta); free(x); free(g);
}

// ---- 3. white-box ensemble gradient ----
typedef struct {
    InputGrad *ig;
    const float *thetas;
    int M, n;
    float *x;
    const int *targets;
} EnsCtx;

static double ens_loss(void *p) {
    EnsCtx *c = p;
    const TargetArch *a = c->ig->arch;
    const int C = a->classes;
    double *pt = calloc((size_t)c->n, sizeof(double));
    for (int m = 0; m < c->M; m++) {   // probabilities in double from the float logits
        input_grad_forward(c->ig, c->thetas + (size_t)m * a->n_weights, c->n, c->x, NULL);
        const float *lg = c->ig->ws + c->ig->logits;
        for (int i = 0; i < c->n; i++) {
            double mx = -1e300, s = 0;
            for (int q = 0; q < C; q++) mx = fmax(mx, lg[i * C + q]);
            for (int q = 0; q < C; q++) s += exp(lg[i * C + q] - mx);
            pt[i] += exp(lg[i * C + c->targets[i]] - mx) / s / c->M;
        }
    }
    double loss = 0;
    for (int i = 0; i < c->n; i++) loss -= log(pt[i]);
    free(pt);
    return loss;
}

static void test_ensemble_grad(TestState *ts) {
    printf("white-box ensemble gradient of -log mean_m p_m(t | x) against finite differences\n");
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    job_validate(&job);
    TargetArch a;
    arch_build_target(&a, &job);
    const int M = 3, n = 2, D = a.in_size, C = a.classes;
    float *thetas = XALLOC_FLOATS((size_t)M * a.n_weights);
    classifier_init(&a, INIT_GLOROT, 3, 0, M, thetas);
    const TargetLayer *Lo = &a.layers[a.n_layers - 1];   // members of different confidence
    for (int m = 0; m < M; m++)
        for (size_t j = 0; j < Lo->size; j++) thetas[(size_t)m * a.n_weights + Lo->offset + j] *= (float)(1 + 2 * m);
    float *x = XALLOC_FLOATS((size_t)n * D), *g = XALLOC_FLOATS((size_t)n * D), *gm = XALLOC_FLOATS((size_t)n * D);
    for (int j = 0; j < n * D; j++) x[j] = (float)(0.1 + 0.8 * urand());
    const int targets[2] = {2, 6};
    InputGrad ig;
    input_grad_init(&ig, &a, 4);
    float probs[3][20], dl[20];
    for (int m = 0; m < M; m++) input_grad_forward(&ig, thetas + (size_t)m * a.n_weights, n, x, probs[m]);
    memset(g, 0, sizeof(float) * n * D);
    for (int m = 0; m < M; m++) {
        for (int i = 0; i < n; i++) {
            double pbar = 0;
            for (int q = 0; q < M; q++) pbar += probs[q][i * C + targets[i]] / M;
            const double w = ensemble_target_weight(probs[m][i * C + targets[i]], pbar, M);
            for (int c = 0; c < C; c++) dl[i * C + c] = (float)(w * (probs[m][i * C + c] - (c == targets[i])));
        }
        input_grad_forward(&ig, thetas + (size_t)m * a.n_weights, n, x, NULL);
        input_grad_backward(&ig, thetas + (size_t)m * a.n_weights, n, x, dl, gm);
        for (int j = 0; j < n * D; j++) g[j] += gm[j];
    }
    // the test can tell the right weights from the mean of the members' own CE gradients
    float *gw = XALLOC_FLOATS((size_t)n * D);
    memset(gw, 0, sizeof(float) * n * D);
    for (int m = 0; m < M; m++) {
        for (int i = 0; i < n; i++)
            for (int c = 0; c < C; c++) dl[i * C + c] = (float)((probs[m][i * C + c] - (c == targets[i])) / M);
        input_grad_forward(&ig, thetas + (size_t)m * a.n_weights, n, x, NULL);
        input_grad_backward(&ig, thetas + (size_t)m * a.n_weights, n, x, dl, gm);
        for (int j = 0; j < n * D; j++) gw[j] += gm[j];
    }
    double dd = 0, nn = 0;
    for (int j = 0; j < n * D; j++) { dd += (double)(g[j] - gw[j]) * (g[j] - gw[j]); nn += (double)g[j] * g[j]; }
    T_CHECK(ts, sqrt(dd / nn) > 0.1, "the case separates it from the mean of member CE gradients (rel diff %.2f)", sqrt(dd / nn));
    free(gw);
    EnsCtx ctx = { &ig, thetas, M, n, x, targets };
    fd_directional_ladder(ts, "d ensemble loss / d images", ens_loss, &ctx, x, g, (size_t)n * D, 1e-2, 2e-2, 21);
    fd_elements(ts, "d ensemble loss / d images (largest)", ens_loss, &ctx, x, g, (size_t)n * D, 2e-3, 5e-2, 1e-4, 4);
    T_CHECK(ts, ensemble_target_weight(0.3, 0.0, 3) == 0.0 && t_close(ensemble_target_weight(0.3, 0.2, 3), 0.5, 0, 1e-12),
            "ensemble_target_weight: p / (M pbar), 0 when pbar = 0");
    input_grad_free(&ig);
    free(thetas); free(x); free(g); free(gm);
}

// ---- 4. OOD scores ----
static void test_ood(TestState *ts) {
    printf("OOD scores of a constructed 2-member ensemble on 4 inputs (2 in-distribution, 2 outliers)\n");
    // probs (M=2, n=4, C=2): in0 both certain; in1 both 0.9; out0 members disagree; out1 both 0.5
    const float probs[2][4][2] = {
        {{1.0f, 0.0f}, {0.9f, 0.1f}, {1.0f, 0.0f}, {0.5f, 0.5f}},
        {{1.0f, 0.0f}, {0.9f, 0.1f}, {0.0f, 1.0f}, {0.5f, 0.5f}},
    };
    double H[4], MI[4], MP[4];
    ood_scores(&probs[0][0][0], 2, 4, 2, H, MI, MP);
    const double h9 = -(0.9 * log(0.9) + 0.1 * log(0.1)), l2 = log(2.0);
    const double eH[4] = {0, h9, l2, l2}, eMI[4] = {0, 0, l2, 0}, eMP[4] = {0, 0.1, 0.5, 0.5};
    int ok = 1;
    for (int i = 0; i < 4; i++)
        ok &= t_close(H[i], eH[i], 1e-6, 1e-6) && t_close(MI[i], eMI[i], 1e-6, 1e-6) && t_close(MP[i], eMP[i], 1e-6, 1e-6);
    T_CHECK(ts, ok, "entropy (0, %.4f, ln 2, ln 2), MI (0, 0, ln 2, 0), 1 - max p (0, 0.1, 0.5, 0.5): got H %.4f %.4f "
            "%.4f %.4f, MI %.4f %.4f %.4f %.4f", h9, H[0], H[1], H[2], H[3], MI[0], MI[1], MI[2], MI[3]);
    const int out[4] = {0, 0, 1, 1};
    const double auc_h = metric_auroc(H, out, 4), auc_mi = metric_auroc(MI, out, 4);
    T_CHECK(ts, t_close(auc_h, 1.0, 1e-12, 0), "AUROC of entropy = 1 (got %.4f)", auc_h);
    T_CHECK(ts, t_close(auc_mi, 0.75, 1e-12, 0), "AUROC of mutual information = (2 + 2 x 1/2) / 4 = 0.75 (got %.4f)", auc_mi);
    double p3[3] = {0.2, 0.3, 0.5};
    T_CHECK(ts, t_close(prob_entropy(p3, 3), -(0.2 * log(0.2) + 0.3 * log(0.3) + 0.5 * log(0.5)), 1e-12, 0),
            "prob_entropy of (0.2, 0.3, 0.5)");
}

// ---- 5. initialization ----
static void test_init(TestState *ts) {
    printf("He / Glorot initialization of the paper's network\n");
    Job job;
    job_defaults(&job);
    TargetArch a;
    arch_build_target(&a, &job);
    float *t = XALLOC_FLOATS(3 * a.n_weights), *u = XALLOC_FLOATS(a.n_weights);
    classifier_init(&a, INIT_HE, 5, 0, 2, t);
    classifier_init(&a, INIT_GLOROT, 5, 0, 1, t + 2 * a.n_weights);
    classifier_init(&a, INIT_HE, 5, 1, 1, u);
    int zero_bias = 1;
    for (int k = 0; k < 3; k++)
        for (int l = 0; l < a.n_layers; l++) {
            const TargetLayer *L = &a.layers[l];
            for (int f = 0; f < L->filters; f++) zero_bias &= t[k * a.n_weights + L->offset + (size_t)f * (L->fan_in + 1) + L->fan_in] == 0.0f;
        }
    T_CHECK(ts, zero_bias, "every bias is 0");
    const TargetLayer *L2 = &a.layers[1];   // conv 5x5x32 -> 16: fan_in 800, 12,800 weights
    double s2 = 0, mx = 0;
    int cnt = 0;
    for (int f = 0; f < L2->filters; f++)
        for (int j = 0; j < L2->fan_in; j++) {
            const double v = t[L2->offset + (size_t)f * (L2->fan_in + 1) + j];
            s2 += v * v; cnt++;
        }
    const double sd = sqrt(s2 / cnt), want = sqrt(2.0 / L2->fan_in);
    T_CHECK(ts, fabs(sd / want - 1) < 0.03, "He: layer 2 std %.5f vs sqrt(2/800) = %.5f", sd, want);
    const TargetLayer *L4 = &a.layers[3];   // fc 8 -> 10, Glorot bound sqrt(6/18)
    const double lim4 = sqrt(6.0 / (8 + 10));
    for (int k = 0; k < 3; k++)
        for (int f = 0; f < L4->filters; f++)
            for (int j = 0; j < L4->fan_in; j++) mx = fmax(mx, fabs(t[k * a.n_weights + L4->offset + (size_t)f * (L4->fan_in + 1) + j]));
    T_CHECK(ts, mx <= lim4 && mx > 0.5 * lim4, "output layer Glorot uniform: max |w| %.4f <= %.4f", mx, lim4);
    const TargetLayer *L1 = &a.layers[0];   // Glorot on conv: fan_out = 25 * 32
    const double lim1 = sqrt(6.0 / (25 + 25 * 32));
    double mx1 = 0;
    for (int f = 0; f < L1->filters; f++)
        for (int j = 0; j < L1->fan_in; j++) mx1 = fmax(mx1, fabs(t[2 * a.n_weights + L1->offset + (size_t)f * (L1->fan_in + 1) + j]));
    T_CHECK(ts, mx1 <= lim1 && mx1 > 0.9 * lim1, "Glorot conv layer 1: max |w| %.4f <= sqrt(6/825) = %.4f", mx1, lim1);
    T_CHECK(ts, !memcmp(u, t + a.n_weights, a.n_weights * sizeof(float)), "network k of a call = network first + k of the seed");
    T_CHECK(ts, memcmp(t, t + a.n_weights, a.n_weights * sizeof(float)) != 0, "different networks differ");
    free(t); free(u);
}


// ---- 6. the FGSM steps of the protocol against finite-difference gradient signs ----
typedef struct {
    InputGrad *ig;
    const float *thetas;
    int M;
    float *x;
    int cls;
} PbarCtx;

// -log mean_m p_m(cls | x) of one image (M = 1: the cross-entropy of one network), in double
static double pbar_loss(void *p) {
    PbarCtx *c = p;
    const TargetArch *a = c->ig->arch;
    const int C = a->classes;
    double pt = 0;
    for (int m = 0; m < c->M; m++) {
        input_grad_forward(c->ig, c->thetas + (size_t)m * a->n_weights, 1, c->x, NULL);
        const float *lg = c->ig->ws + c->ig->logits;
        double mx = -1e300, s = 0;
        for (int q = 0; q < C; q++) mx = fmax(mx, lg[q]);
        for (int q = 0; q < C; q++) s += exp(lg[q] - mx);
        pt += exp(lg[c->cls] - mx) / s / c->M;
    }
    return -log(pt);
}

// Checks that adv_fgsm(dir) moves each of the K largest-gradient pixels by dir * sign(fd) * eps:
// returns the number of pixels whose step disagrees with the finite-difference sign.
static int fgsm_vs_fd(PbarCtx *ctx, const float *grad, int dir, int clip, int *checked) {
    const int D = ctx->ig->arch->in_size, K = 24;
    float *adv = XALLOC_FLOATS(D);
    const float eps = 0.05f;
    adv_fgsm(D, ctx->x, grad, eps, dir, clip, adv);
    int bad = 0, *used = calloc(D, sizeof(int));
    *checked = 0;
    for (int k = 0; k < K; k++) {
        int j = -1;
        for (int q = 0; q < D; q++) if (!used[q] && (j < 0 || fabsf(grad[q]) > fabsf(grad[j]))) j = q;
        used[j] = 1;
        const float x0 = ctx->x[j];
        const double h = 1e-3;
        ctx->x[j] = (float)(x0 + h); const double lp = pbar_loss(ctx);
        ctx->x[j] = (float)(x0 - h); const double lm = pbar_loss(ctx);
        ctx->x[j] = x0;
        const double fd = (lp - lm) / (2 * h);
        if (fabs(fd) < 1e-4) continue;   // too flat for the difference to tell the sign
        (*checked)++;
        float want = x0 + dir * eps * (fd > 0 ? 1.0f : -1.0f);
        if (clip) want = fminf(1.0f, fmaxf(0.0f, want));
        bad += adv[j] != want;
    }
    free(adv); free(used);
    return bad;
}

static void tiny_arch(TargetArch *a) {
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    job_validate(&job);
    arch_build_target(a, &job);
}

static void test_fgsm_fd(TestState *ts) {
    printf("FGSM steps of the protocol (source and ensemble) against finite-difference gradient signs\n");
    TargetArch a;
    tiny_arch(&a);
    const int M = 3, D = a.in_size;
    float *thetas = XALLOC_FLOATS((size_t)M * a.n_weights);
    classifier_init(&a, INIT_HE, 11, 0, M, thetas);
    float *x = XALLOC_FLOATS(D);
    for (int j = 0; j < D; j++) x[j] = j % 7 == 0 ? 1.0f : j % 5 == 0 ? 0.0f : (float)(0.1 + 0.8 * urand());
    const double epsv[2] = { 0.0, 0.05 };
    AdvConfig cfg = { M, 2, epsv, 1, 1, 0 };
    AdvWork w;
    adv_work_init(&w, &a, &cfg);
    const int cls[2] = { 3, 8 };
    float probs[20];
    InputGrad ig;
    input_grad_init(&ig, &a, 1);
    adv_source_grad(&w, thetas, x, cls, probs, w.grad);
    int n1, n2, n3, n4, n5, n6;
    PbarCtx c = { &ig, thetas, 1, x, cls[0] };
    int b1 = fgsm_vs_fd(&c, w.grad, +1, 1, &n1), b2 = fgsm_vs_fd(&c, w.grad, +1, 0, &n2);
    c.cls = cls[1];
    int b3 = fgsm_vs_fd(&c, w.grad + D, -1, 1, &n3);
    T_CHECK(ts, b1 == 0 && b2 == 0 && n1 >= 12, "source, untargeted: x + eps sign(fd of CE(y)) on the %d largest-"
            "gradient pixels, clipped (%d differ) and not (%d differ)", n1, b1, b2);
    T_CHECK(ts, b3 == 0 && n3 >= 12, "source, targeted: x - eps sign(fd of CE(y')) on %d pixels (%d differ)", n3, b3);
    adv_ensemble_grad(&w, thetas, x, cls, w.grad);
    PbarCtx e = { &ig, thetas, M, x, cls[0] };
    int b4 = fgsm_vs_fd(&e, w.grad, +1, 1, &n4);
    e.cls = cls[1];
    int b5 = fgsm_vs_fd(&e, w.grad + D, -1, 0, &n5);
    T_CHECK(ts, b4 == 0 && b5 == 0 && n4 >= 12 && n5 >= 12, "ensemble of %d, white-box: steps follow the fd sign of "
            "-log mean p_m (untargeted %d pixels, %d differ; targeted %d pixels, %d differ)", M, n4, b4, n5, b5);
    // no clip really leaves [0, 1]; clip keeps it
    float *adv = XALLOC_FLOATS(D);
    adv_fgsm(D, x, w.grad, 0.2f, +1, 0, adv);
    float lo = 1, hi = 0;
    for (int j = 0; j < D; j++) { lo = fminf(lo, adv[j]); hi = fmaxf(hi, adv[j]); }
    adv_fgsm(D, x, w.grad, 0.2f, +1, 1, adv);
    float lo2 = 1, hi2 = 0;
    for (int j = 0; j < D; j++) { lo2 = fminf(lo2, adv[j]); hi2 = fmaxf(hi2, adv[j]); }
    n6 = 0;
    for (int j = 0; j < D; j++) n6 += w.grad[j] == 0.0f && adv[j] != x[j];
    T_CHECK(ts, lo < 0 && hi > 1 && lo2 == 0 && hi2 == 1 && n6 == 0, "--no-clip leaves [0, 1] (%.2f .. %.2f), the "
            "default clips (%.2f .. %.2f); sign(0) = 0 (%d zero-gradient pixels moved)", lo, hi, lo2, hi2, n6);
    input_grad_free(&ig);
    adv_work_free(&w);
    free(thetas); free(x); free(adv);
}

// ---- 7, 8. constant networks; the hand-made linear case ----
// fc 784 -> 10: class 0 logit 0, class 1 logit slope * sum(x) - t, classes 2..9 logit -30.
// slope 0.05 keeps p(class 1) far from float underflow (a zero gradient has sign 0: no step).
static void linear_net(const TargetArch *a, float slope, float t, float *theta) {
    const int D = a->in_size;
    memset(theta, 0, a->n_weights * sizeof(float));
    for (int j = 0; j < D; j++) theta[(size_t)1 * (D + 1) + j] = slope;
    theta[(size_t)1 * (D + 1) + D] = -t;
    for (int c = 2; c < 10; c++) theta[(size_t)c * (D + 1) + D] = -30.0f;
}

static int same_eps(double a, double b) { return (isinf(a) && isinf(b) && (a > 0) == (b > 0)) || a == b; }

static void test_constant_and_skip(TestState *ts) {
    printf("a network constant in x is never fooled; a source that misclassifies skips the image\n");
    TargetArch a;
    fc_only_arch(&a);
    const int D = a.in_size, P = 5, M = 3, n = 4;
    float *pool = XALLOC_FLOATS((size_t)P * a.n_weights);
    memset(pool, 0, (size_t)P * a.n_weights * sizeof(float));
    for (int k = 0; k < P; k++) pool[(size_t)k * a.n_weights + (size_t)3 * (D + 1) + D] = 1.0f;   // always class 3
    double epsv[25];
    for (int k = 0; k < 25; k++) epsv[k] = k * 0.01;
    AdvConfig cfg = { M, 25, epsv, 1, 7, 0 };
    AdvWork w;
    adv_work_init(&w, &a, &cfg);
    AdvPool ap = { &a, P, pool, NULL };
    float *x = XALLOC_FLOATS((size_t)n * D);
    for (int j = 0; j < n * D; j++) x[j] = (float)urand();
    const uint8_t y[4] = { 3, 3, 5, 3 };
    int tg[4];
    for (int i = 0; i < n; i++) tg[i] = adv_target_class(7, i, y[i], 10);
    AdvImage res[4];
    int64_t nets[4 * 5];
    adv_run(&w, &cfg, &ap, n, x, y, tg, NULL, nets, res);
    int inf_ok = 1, skipped = 0, nan_ok = 1;
    for (int i = 0; i < n; i++) {
        skipped += !res[i].attacked;
        for (int mode = 0; mode < 2; mode++)
            for (int l = 0; l < 4; l++) {
                if (res[i].attacked) inf_ok &= isinf(res[i].eps_min[mode][l]) && res[i].eps_min[mode][l] > 0;
                else nan_ok &= isnan(res[i].eps_min[mode][l]);
            }
    }
    T_CHECK(ts, inf_ok, "constant networks: every line of both modes has eps = inf on the attacked images");
    T_CHECK(ts, skipped == 1 && !res[2].attacked && nan_ok, "the image labelled 5 (the source says 3) is skipped and "
            "counted (%d skipped), its eps are NaN", skipped);
    adv_work_free(&w);
    free(pool); free(x);
}

static void test_linear_smallest(TestState *ts) {
    printf("smallest fooling eps on a hand-made linear case (grid 0, 0.01, ..., 0.24)\n");
    TargetArch a;
    fc_only_arch(&a);
    const int D = a.in_size, P = 6, M = 4;
    double epsv[25];
    for (int k = 0; k < 25; k++) epsv[k] = k * 0.01;
    // case 1: x = 0.5, class 1 wins once 784 (0.5 + eps) > 784 * 0.555: first at eps = 0.06
    // case 2: x = 0.9, class 1 needs 784 (0.9 + eps) > 784 * 1.055: eps = 0.16 unclipped, never clipped
    const float xv[2] = { 0.5f, 0.9f }, tv[2] = { 0.05f * 784 * 0.555f, 0.05f * 784 * 1.055f };
    const double want_clip[2] = { 0.06, INFINITY }, want_noclip[2] = { 0.06, 0.16 };
    float *pool = XALLOC_FLOATS((size_t)P * a.n_weights), *x = XALLOC_FLOATS(D);
    int all_ok = 1;
    for (int cs = 0; cs < 2; cs++) {
        for (int k = 0; k < P; k++) linear_net(&a, 0.05f, tv[cs], pool + (size_t)k * a.n_weights);
        for (int j = 0; j < D; j++) x[j] = xv[cs];
        AdvPool ap = { &a, P, pool, NULL };
        // one image whose target is 1 (fooled like the untargeted attack) and one whose target is not
        long long i_t1 = -1, i_t2 = -1;
        for (long long i = 0; i < 100 && (i_t1 < 0 || i_t2 < 0); i++) {
            if (adv_target_class(5, i, 0, 10) == 1) { if (i_t1 < 0) i_t1 = i; }
            else if (i_t2 < 0) i_t2 = i;
        }
        for (int clip = 1; clip >= 0; clip--) {
            AdvConfig cfg = { M, 25, epsv, clip, 5, 4 };   // blocks of 4: 0.06 and 0.16 in blocks 2 and 5
            AdvWork w;
            adv_work_init(&w, &a, &cfg);
            const double want = clip ? want_clip[cs] : want_noclip[cs];
            for (int q = 0; q < 2; q++) {
                const long long i = q ? i_t2 : i_t1;
                const int tgt = adv_target_class(5, i, 0, 10);
                AdvImage r;
                int64_t nets[6];
                adv_image(&w, &cfg, &ap, i, x, 0, tgt, nets, &r);
                int ok = r.attacked;
                for (int l = 0; l < 4; l++) {
                    ok &= same_eps(r.eps_min[ADV_UNTARGETED][l], want);
                    ok &= same_eps(r.eps_min[ADV_TARGETED][l], tgt == 1 ? want : INFINITY);
                }
                all_ok &= ok;
                T_CHECK(ts, ok, "x = %.1f, %s, target %d: untargeted eps %g %g %g %g (want %g), targeted %g %g %g %g "
                        "(want %g)", xv[cs], clip ? "clipped" : "not clipped", tgt, r.eps_min[0][0], r.eps_min[0][1],
                        r.eps_min[0][2], r.eps_min[0][3], want, r.eps_min[1][0], r.eps_min[1][1], r.eps_min[1][2],
                        r.eps_min[1][3], tgt == 1 ? want : INFINITY);
            }
            adv_work_free(&w);
        }
    }
    free(pool); free(x);
}

// ---- 9. majority vote, smallest eps, targets ----
static void test_vote_and_helpers(TestState *ts) {
    printf("majority vote ties, adv_smallest_eps, target classes\n");
    // probs (M = 4, n = 1, C = 3)
    const float tie[4][3] = { {0.1f, 0.2f, 0.7f}, {0.2f, 0.5f, 0.3f}, {0.1f, 0.1f, 0.8f}, {0.0f, 0.9f, 0.1f} };
    const float maj[4][3] = { {0.1f, 0.2f, 0.7f}, {0.2f, 0.5f, 0.3f}, {0.1f, 0.1f, 0.8f}, {0.0f, 0.1f, 0.9f} };
    const float ptie[1][3] = { {0.4f, 0.4f, 0.2f} };
    const float three[3][3] = { {0.6f, 0.3f, 0.1f}, {0.1f, 0.6f, 0.3f}, {0.3f, 0.1f, 0.6f} };
    int votes[3];
    const int v1 = adv_majority(&tie[0][0], 4, 1, 3, 0, votes), v2 = adv_majority(&maj[0][0], 4, 1, 3, 0, votes);
    const int v3 = adv_majority(&ptie[0][0], 1, 1, 3, 0, votes), v4 = adv_majority(&three[0][0], 3, 1, 3, 0, votes);
    T_CHECK(ts, v1 == 1 && v2 == 2 && v3 == 0 && v4 == 0, "2 votes for 2 vs 2 for 1 -> 1 (got %d); 3 for 2 -> 2 (got %d); "
            "a member's tie 0.4/0.4 -> class 0 (got %d); one vote each -> 0 (got %d)", v1, v2, v3, v4);
    const double e[5] = { 0, 0.1, 0.2, 0.3, 0.4 };
    const int f1[5] = { 0, 0, 1, 0, 1 }, f2[5] = { 0 }, f3[5] = { 1, 0, 0, 0, 0 };
    const double s1 = adv_smallest_eps(f1, e, 5), s2 = adv_smallest_eps(f2, e, 5), s3 = adv_smallest_eps(f3, e, 5);
    T_CHECK(ts, s1 == 0.2 && isinf(s2) && s2 > 0 && s3 == 0.0, "smallest eps: first fooling value 0.2 (not monotone: "
            "got %g), none -> inf (got %g), fooled at eps 0 -> 0 (got %g)", s1, s2, s3);
    int seen[10] = { 0 }, bad = 0;
    for (int i = 0; i < 900; i++) {
        const int y = i % 10, t = adv_target_class(3, i, y, 10);
        bad += t == y || t < 0 || t > 9;
        seen[t]++;
    }
    int minseen = 900;
    for (int c = 0; c < 10; c++) minseen = seen[c] < minseen ? seen[c] : minseen;
    T_CHECK(ts, bad == 0 && minseen > 60, "targets: never the label, every class drawn (least %d of 900)", minseen);
}

// ---- 10. the network draw ----
static void pick_child(long long n) {
    int64_t out[102];
    adv_pick_networks(1, 0, n, 102, "few.h5", out);
}

static void test_pick(TestState *ts) {
    printf("networks of an image: distinct, uniform, deterministic; too few networks is fatal\n");
    int64_t a[12], b[12], c[12];
    int ok = 1, differ = 0;
    for (long long i = 0; i < 50; i++) {
        adv_pick_networks(9, i, 12, 12, "x", a);
        adv_pick_networks(9, i, 12, 12, "x", b);
        adv_pick_networks(9, i + 1, 12, 12, "x", c);
        int seen[12] = { 0 };
        for (int s = 0; s < 12; s++) { ok &= a[s] >= 0 && a[s] < 12 && !seen[a[s]]; seen[a[s]] = 1; ok &= a[s] == b[s]; }
        differ += memcmp(a, c, sizeof(a)) != 0;
    }
    T_CHECK(ts, ok && differ >= 45, "n = k = 12: a permutation, the same for the same (seed, i); other images draw other "
            "orders (%d of 50)", differ);
    int cnt[3][10] = { { 0 } };
    for (long long i = 0; i < 3000; i++) {
        int64_t o[3];
        adv_pick_networks(4, i, 10, 3, "x", o);
        for (int s = 0; s < 3; s++) cnt[s][o[s]]++;
    }
    int lo = 3000, hi = 0;
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < 10; k++) { lo = cnt[s][k] < lo ? cnt[s][k] : lo; hi = cnt[s][k] > hi ? cnt[s][k] : hi; }
    T_CHECK(ts, lo > 240 && hi < 360, "3 of 10 over 3,000 images: every slot picks every network 300 +- 60 times (%d .. %d)",
            lo, hi);
    int fd[2];
    if (pipe(fd) != 0) { perror("pipe"); exit(2); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        t_child_no_leak_check();
        close(fd[0]);
        dup2(fd[1], 2);
        pick_child(101);
        _exit(0);
    }
    close(fd[1]);
    char msg[1024];
    ssize_t got, len = 0;
    while (len < (ssize_t)sizeof(msg) - 1 && (got = read(fd[0], msg + len, sizeof(msg) - 1 - len)) > 0) len += got;
    msg[len > 0 ? len : 0] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    int lines = 0;
    for (ssize_t q = 0; q < len; q++) lines += msg[q] == '\n';
    T_CHECK(ts, WIFEXITED(st) && WEXITSTATUS(st) == 1 && lines == 1 &&
            strstr(msg, "'few.h5' holds 101 networks, but --members 100 needs 102"),
            "101 networks for an ensemble of 100: exit 1, one line naming the counts: %.*s", (int)strcspn(msg, "\n"), msg);
}

// ---- 11. determinism across threads ----
static void test_threads(TestState *ts) {
    printf("the same results for 1 thread (whole grid) and 2 threads (eps blocks of 3), tiny conv nets, ensembles of 4 of 9\n");
    TargetArch a;
    tiny_arch(&a);
    const int P = 9, M = 4, n = 12, D = a.in_size;
    float *pool = XALLOC_FLOATS((size_t)P * a.n_weights), *x = XALLOC_FLOATS((size_t)n * D);
    classifier_init(&a, INIT_HE, 21, 0, P, pool);
    for (int j = 0; j < n * D; j++) x[j] = (float)urand();
    double epsv[13];
    for (int k = 0; k < 13; k++) epsv[k] = k * 0.02;
    AdvConfig cfg = { M, 13, epsv, 1, 3, 0 };
    AdvPool ap = { &a, P, pool, NULL };
    uint8_t y[12];
    int tg[12];
    // labels: the prediction of the image's source network (so that most images are attacked),
    // except image 0, whose label is another class (skipped)
    TargetNet tn;
    target_init(&tn, &a, n, 1);
    float probs[120];
    for (int i = 0; i < n; i++) {
        int64_t pick[6];
        adv_pick_networks(3, i, P, M + 2, "pool", pick);
        target_forward(&tn, 1, pool + (size_t)pick[0] * a.n_weights, n, x, 0, probs);
        y[i] = (uint8_t)((argmax_f(probs + i * 10, 10) + (i == 0)) % 10);
        tg[i] = adv_target_class(3, i, y[i], 10);
    }
    target_free(&tn);
    AdvImage r1[12], r2[12];
    int64_t n1[12 * 6], n2[12 * 6];
    const int nt = omp_get_max_threads();
    omp_set_num_threads(1);
    AdvWork w;
    adv_work_init(&w, &a, &cfg);
    adv_run(&w, &cfg, &ap, n, x, y, tg, NULL, n1, r1);
    adv_work_free(&w);
    omp_set_num_threads(2);
    cfg.block = 3;   // and the ensemble evaluated in blocks of 3 eps values (stopping early)
    adv_work_init(&w, &a, &cfg);
    adv_run(&w, &cfg, &ap, n, x, y, tg, NULL, n2, r2);
    adv_work_free(&w);
    omp_set_num_threads(nt);
    int att = 0, finite = 0, same = 1;
    for (int i = 0; i < n; i++) {
        same &= r1[i].attacked == r2[i].attacked;   // field by field: the struct has padding
        for (int mode = 0; mode < 2; mode++)
            for (int l = 0; l < 4; l++) same &= same_eps(r1[i].eps_min[mode][l], r2[i].eps_min[mode][l]) ||
                                                (isnan(r1[i].eps_min[mode][l]) && isnan(r2[i].eps_min[mode][l]));
        att += r1[i].attacked;
        for (int l = 0; l < 4; l++) finite += r1[i].attacked && isfinite(r1[i].eps_min[0][l]);
    }
    T_CHECK(ts, same && !memcmp(n1, n2, sizeof(n1)), "1 thread, whole grid / 2 threads, blocks of 3: identical results and "
            "networks (%d attacked, %d finite untargeted eps)", att, finite);
    free(pool); free(x);
}

int main(void) {
    TestState ts = {0, 0};
    test_pick(&ts);   // first: it forks, and a child forked after OpenMP started its threads trips LeakSanitizer
    test_linear(&ts);
    test_conv_fd(&ts);
    test_ensemble_grad(&ts);
    test_ood(&ts);
    test_init(&ts);
    test_fgsm_fd(&ts);
    test_constant_and_skip(&ts);
    test_linear_smallest(&ts);
    test_vote_and_helpers(&ts);
    test_threads(&ts);
    return test_summary(&ts, "test_adversarial");
}
