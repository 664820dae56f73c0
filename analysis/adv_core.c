// adv_core.c: the adversarial protocol of the paper's original code (analysis/adv_core.h).
#include "adv_core.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "rng.h"

const char *const adv_mode_names[ADV_MODES] = { "untargeted", "targeted" };
const char *const adv_line_names[ADV_LINES] = { "source", "other", "ensemble_transfer", "ensemble_whitebox" };

void adv_work_init(AdvWork *w, const TargetArch *a, const AdvConfig *cfg) {
    memset(w, 0, sizeof(*w));
    HT_CHECK(cfg->members >= 1 && cfg->n_eps >= 1, "adversarial: %d members and %d eps values (need >= 1 each)",
             cfg->members, cfg->n_eps);
    w->arch = a;
    w->M = cfg->members;
    w->E = cfg->n_eps;
    w->n_threads = omp_get_max_threads();
    const size_t W = a->n_weights, D = (size_t)a->in_size, C = (size_t)a->classes, M = (size_t)w->M;
    const size_t nets = XMUL(M + 2, W, "adversarial: %zu networks of %zu weights", M + 2, W);
    HT_CHECK_MEMORY(XMUL(nets, sizeof(float), "adversarial: networks"), "adversarial: %zu networks", M + 2);
    target_init(&w->tn, a, 2 * w->E, 0);
    w->ig = XMALLOC_N(w->n_threads, sizeof(InputGrad));
    for (int t = 0; t < w->n_threads; t++) input_grad_init(&w->ig[t], a, 2);
    w->nets = XALLOC_FLOATS(nets);
    w->probs = XALLOC_FLOATS(XMUL(XMUL(M + 2, 2 * (size_t)w->E, "adversarial: probabilities"), C, "adversarial: probabilities"));
    w->adv = XALLOC_FLOATS(XMUL(2 * (size_t)w->E, D, "adversarial: %d adversarial images", 2 * w->E));
    w->x2 = XALLOC_FLOATS(2 * D);
    w->grad = XALLOC_FLOATS(2 * D);
    w->member_grads = XALLOC_FLOATS(XMUL(M, 2 * D, "adversarial: member gradients"));
    w->dlogits = XALLOC_FLOATS((size_t)w->n_threads * 2 * C);
    w->votes = XMALLOC_N(C, sizeof(int));
}

void adv_work_free(AdvWork *w) {
    target_free(&w->tn);
    for (int t = 0; t < w->n_threads; t++) input_grad_free(&w->ig[t]);
    free(w->ig); free(w->nets); free(w->probs); free(w->adv); free(w->x2); free(w->grad);
    free(w->member_grads); free(w->dlogits); free(w->votes);
    memset(w, 0, sizeof(*w));
}

int adv_target_class(uint64_t seed, long long i, int y, int C) {
    int t = (int)rng_below(seed, ADV_RNG_STREAM_TARGET, (uint32_t)i, 0, 0, (uint32_t)(C - 1));
    return t >= y ? t + 1 : t;
}

void adv_pick_networks(uint64_t seed, long long i, long long n, int k, const char *what, int64_t *out) {
    HT_CHECK(n >= k, "'%s' holds %lld networks, but --members %d needs %d (a source network, one other network "
             "and an ensemble of %d, all different)", what, n, k - 2, k, k - 2);
    HT_CHECK(n <= (long long)UINT32_MAX, "'%s' holds %lld networks (at most %u can be drawn from)", what, n, UINT32_MAX);
    for (int s = 0; s < k; s++) {
        for (uint32_t attempt = 0;; attempt++) {
            const int64_t c = rng_below(seed, ADV_RNG_STREAM_PICK, (uint32_t)i, (uint32_t)s, attempt, (uint32_t)n);
            int dup = 0;
            for (int q = 0; q < s && !dup; q++) dup = out[q] == c;
            if (!dup) { out[s] = c; break; }
        }
    }
}

void adv_fgsm(size_t n, const float *x, const float *grad, float eps, int dir, int clip, float *out) {
    const float step = dir > 0 ? eps : -eps;
    for (size_t j = 0; j < n; j++) {
        const float s = grad[j] > 0.0f ? 1.0f : grad[j] < 0.0f ? -1.0f : 0.0f;
        float v = x[j] + step * s;
        if (clip) v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        out[j] = v;
    }
}

static int argmax_f(const float *p, int C) {
    int b = 0;
    for (int c = 1; c < C; c++) if (p[c] > p[b]) b = c;
    return b;
}

int adv_majority(const float *probs, int M, int n, int C, int i, int *votes) {
    memset(votes, 0, (size_t)C * sizeof(int));
    for (int m = 0; m < M; m++) votes[argmax_f(probs + ((size_t)m * n + i) * C, C)]++;
    int b = 0;
    for (int c = 1; c < C; c++) if (votes[c] > votes[b]) b = c;
    return b;
}

double adv_smallest_eps(const int *fooled, const double *eps, int E) {
    for (int k = 0; k < E; k++) if (fooled[k]) return eps[k];
    return INFINITY;
}

void adv_source_grad(AdvWork *w, const float *theta, const float *x, const int cls[2], float *probs, float *grad) {
    const size_t D = (size_t)w->arch->in_size;
    memcpy(w->x2, x, D * sizeof(float));
    memcpy(w->x2 + D, x, D * sizeof(float));
    const uint8_t lab[2] = { (uint8_t)cls[0], (uint8_t)cls[1] };
    input_grad_ce(&w->ig[0], theta, 2, w->x2, lab, probs, grad);
}

void adv_ensemble_grad(AdvWork *w, const float *members, const float *x, const int cls[2], float *grad) {
    const int M = w->M, C = w->arch->classes;
    const size_t D = (size_t)w->arch->in_size, W = w->arch->n_weights;
    memcpy(w->x2, x, D * sizeof(float));
    memcpy(w->x2 + D, x, D * sizeof(float));
    target_forward(&w->tn, M, members, 2, w->x2, 0, w->probs);   // (M, 2, C)
    double pbar[2] = { 0.0, 0.0 };
    for (int m = 0; m < M; m++)
        for (int j = 0; j < 2; j++) pbar[j] += w->probs[((size_t)m * 2 + j) * C + cls[j]];
    pbar[0] /= M;
    pbar[1] /= M;
#pragma omp parallel num_threads(w->n_threads)
    {
        omp_set_num_threads(1);   // BLAS inside stays single-threaded
        const int t = omp_get_thread_num();
        InputGrad *g = &w->ig[t];
        float *dl = w->dlogits + (size_t)t * 2 * C;   // (2, C)
#pragma omp for schedule(dynamic, 1)
        for (int m = 0; m < M; m++) {
            const float *p = w->probs + (size_t)m * 2 * C;
            for (int j = 0; j < 2; j++) {
                const double wt = ensemble_target_weight(p[(size_t)j * C + cls[j]], pbar[j], M);
                for (int c = 0; c < C; c++) dl[j * C + c] = (float)(wt * (p[(size_t)j * C + c] - (c == cls[j])));
            }
            input_grad_forward(g, members + (size_t)m * W, 2, w->x2, NULL);
            input_grad_backward(g, members + (size_t)m * W, 2, w->x2, dl, w->member_grads + (size_t)m * 2 * D);
        }
    }
    memset(grad, 0, 2 * D * sizeof(float));
    for (int m = 0; m < M; m++)   // member order: the same bits for any number of threads
        for (size_t j = 0; j < 2 * D; j++) grad[j] += w->member_grads[(size_t)m * 2 * D + j];
}

// Networks nets[first .. first + k) of the pool into slots first .. first + k of w->nets.
static void load_nets(AdvWork *w, const AdvPool *pool, const int64_t *nets, int first, int k) {
    const size_t W = w->arch->n_weights;
    for (int s = first; s < first + k; s++) {
        if (pool->theta) memcpy(w->nets + (size_t)s * W, pool->theta + (size_t)nets[s] * W, W * sizeof(float));
        else sampleset_read(pool->set, nets[s], 1, w->nets + (size_t)s * W);
    }
}

// adv (2E, D) from grad (2, D): untargeted steps (ascending loss(y)), then targeted (descending loss(y')).
static void make_adv(AdvWork *w, const AdvConfig *cfg, const float *x) {
    const size_t D = (size_t)w->arch->in_size;
    for (int k = 0; k < w->E; k++) {
        adv_fgsm(D, x, w->grad, (float)cfg->eps[k], +1, cfg->clip, w->adv + (size_t)k * D);
        adv_fgsm(D, x, w->grad + D, (float)cfg->eps[k], -1, cfg->clip, w->adv + (size_t)(w->E + k) * D);
    }
}

// Smallest fooling eps of both modes for network(s) [first, first + count) of probs (count > 1: the
// majority vote); probs (n_nets, 2E, C) of the images of make_adv.
static void smallest(AdvWork *w, const AdvConfig *cfg, int first, int count, int y, int target, double out[ADV_MODES]) {
    const int E = w->E, C = w->arch->classes;
    int *fooled = XMALLOC_N(E, sizeof(int));
    const float *p = w->probs + (size_t)first * 2 * E * C;
    for (int mode = 0; mode < ADV_MODES; mode++) {
        for (int k = 0; k < E; k++) {
            const int img = mode * E + k;
            const int pred = count == 1 ? argmax_f(p + (size_t)img * C, C) : adv_majority(p, count, 2 * E, C, img, w->votes);
            fooled[k] = mode == ADV_UNTARGETED ? pred != y : pred == target;
        }
        out[mode] = adv_smallest_eps(fooled, cfg->eps, E);
    }
    free(fooled);
}

// Smallest fooling eps of both modes for the ensemble (members (M, n_weights), majority vote) on the
// adversarial images of w->grad (2, D), evaluated in ascending blocks of cfg->block eps values; a mode
// stops at the first block that fools (the result is the same as over the whole grid at once).
static void ens_smallest(AdvWork *w, const AdvConfig *cfg, const float *members, const float *x, int y,
                         int target, double out[ADV_MODES]) {
    const int E = w->E, C = w->arch->classes, B = cfg->block > 0 && cfg->block < E ? cfg->block : E;
    const size_t D = (size_t)w->arch->in_size;
    int done[ADV_MODES] = { 0, 0 };
    out[ADV_UNTARGETED] = out[ADV_TARGETED] = INFINITY;
    for (int k0 = 0; k0 < E && !(done[0] && done[1]); k0 += B) {
        const int kn = E - k0 < B ? E - k0 : B;
        int nimg = 0;
        for (int mode = 0; mode < ADV_MODES; mode++)
            for (int k = 0; k < kn && !done[mode]; k++, nimg++)
                adv_fgsm(D, x, w->grad + (size_t)mode * D, (float)cfg->eps[k0 + k], mode == ADV_UNTARGETED ? +1 : -1,
                         cfg->clip, w->adv + (size_t)nimg * D);
        target_forward(&w->tn, w->M, members, nimg, w->adv, 0, w->probs);   // probs (M, nimg, C)
        int img = 0;
        for (int mode = 0; mode < ADV_MODES; mode++) {
            if (done[mode]) continue;
            for (int k = 0; k < kn; k++, img++) {
                const int pred = adv_majority(w->probs, w->M, nimg, C, img, w->votes);
                if (!done[mode] && (mode == ADV_UNTARGETED ? pred != y : pred == target)) {
                    out[mode] = cfg->eps[k0 + k];
                    done[mode] = 1;   // the rest of this block's images are still counted in img
                }
            }
        }
    }
}

void adv_image(AdvWork *w, const AdvConfig *cfg, const AdvPool *pool, long long i, const float *x, int y,
               int target, int64_t *nets, AdvImage *out) {
    const int M = w->M, E = w->E, C = w->arch->classes;
    const size_t W = w->arch->n_weights;
    adv_pick_networks(cfg->seed, i, pool->n, M + 2, pool->set ? pool->set->path : "the pool", nets);
    load_nets(w, pool, nets, 0, 1);   // the others only if the image is attacked
    const int cls[2] = { y, target };
    float probs2[2 * 256];
    HT_CHECK(C <= 256, "adversarial: %d classes (at most 256)", C);
    adv_source_grad(w, w->nets, x, cls, probs2, w->grad);
    out->attacked = argmax_f(probs2, C) == y;
    double r[ADV_MODES];
    if (!out->attacked) {
        for (int mode = 0; mode < ADV_MODES; mode++)
            for (int l = 0; l < ADV_LINES; l++) out->eps_min[mode][l] = NAN;
        return;
    }
    load_nets(w, pool, nets, 1, M + 1);
    // crafted on the source: tested on the source and the other network (the whole grid, slots 0
    // and 1), then on the ensemble (in blocks)
    make_adv(w, cfg, x);
    target_forward(&w->tn, 2, w->nets, 2 * E, w->adv, 0, w->probs);   // probs (2, 2E, C)
    for (int q = 0; q < 2; q++) {
        smallest(w, cfg, q, 1, y, target, r);
        for (int mode = 0; mode < ADV_MODES; mode++) out->eps_min[mode][q == 0 ? ADV_SOURCE : ADV_OTHER] = r[mode];
    }
    ens_smallest(w, cfg, w->nets + 2 * W, x, y, target, r);
    for (int mode = 0; mode < ADV_MODES; mode++) out->eps_min[mode][ADV_ENS_TRANSFER] = r[mode];
    // white-box: crafted on the ensemble's mean-probability loss, tested on the ensemble
    adv_ensemble_grad(w, w->nets + 2 * W, x, cls, w->grad);
    ens_smallest(w, cfg, w->nets + 2 * W, x, y, target, r);
    for (int mode = 0; mode < ADV_MODES; mode++) out->eps_min[mode][ADV_ENS_WHITEBOX] = r[mode];
}

void adv_run(AdvWork *w, const AdvConfig *cfg, const AdvPool *pool, int n, const float *images,
             const uint8_t *labels, const int *targets, const char *label, int64_t *nets, AdvImage *res) {
    const size_t D = (size_t)w->arch->in_size;
    const double t0 = ht_now();
    double t_last = t0;
    int skipped = 0;
    for (int i = 0; i < n; i++) {
        adv_image(w, cfg, pool, i, images + (size_t)i * D, labels[i], targets[i], nets + (size_t)i * (w->M + 2), &res[i]);
        skipped += !res[i].attacked;
        const double now = ht_now();
        if (label && (now - t_last > 10.0 || i + 1 == n)) {
            fprintf(stderr, "adversarial: %s: %d/%d images (%d skipped), %.0f s, about %.0f s left\n", label, i + 1, n,
                    skipped, now - t0, (now - t0) / (i + 1) * (n - i - 1));
            t_last = now;
        }
    }
}
