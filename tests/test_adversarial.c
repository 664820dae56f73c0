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
//      bound, deterministic per (seed, network), different networks differ.
// The program includes analysis/metrics.c (metric_auroc) directly, as test_metrics does.
#include "../analysis/metrics.c"

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

int main(void) {
    TestState ts = {0, 0};
    test_linear(&ts);
    test_conv_fd(&ts);
    test_ensemble_grad(&ts);
    test_ood(&ts);
    test_init(&ts);
    return test_summary(&ts, "test_adversarial");
}
