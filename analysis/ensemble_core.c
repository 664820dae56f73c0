// ensemble_core.c: see ensemble_core.h.
#include "ensemble_core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "metrics.h"

const char *const ENS_METRIC_NAMES[ENS_N_METRICS] = {"majority_acc", "mean_prob_acc", "nll", "brier", "ece",
                                                     "auroc"};

int ens_sizes(long M, int64_t *sizes) {
    int S = 0;
    for (long sz = 1; sz < M; sz *= 2) sizes[S++] = sz;
    sizes[S++] = M;
    return S;
}

void ens_init(EnsCompute *e, int K, int M, int n_img, int C, int bins, const uint8_t *labels) {
    memset(e, 0, sizeof(*e));
    e->K = K; e->M = M; e->n_img = n_img; e->C = C; e->bins = bins; e->labels = labels;
    e->S = ens_sizes(M, e->sizes);
    const size_t nc = (size_t)n_img * C;
    e->curve = XCALLOC((size_t)ENS_N_METRICS * e->S * K, sizeof(double));
    e->rel = XCALLOC((size_t)3 * e->S * bins, sizeof(double));
    e->votes = XCALLOC(nc, sizeof(int));
    e->psum = XCALLOC(nc, sizeof(double));
    e->pred = XCALLOC((size_t)n_img, sizeof(int));
    e->mean = XCALLOC(nc, sizeof(double));
    e->conf = XCALLOC((size_t)n_img, sizeof(double));
    e->ok = XCALLOC((size_t)n_img, sizeof(int));
}

// The metrics of the current ensemble with `size` members; pools its reliability data into
// count/conf_sum/correct_sum (bins each).
static void ensemble_metrics(EnsCompute *e, int size, double *out, double *count, double *conf_sum,
                             double *correct_sum) {
    const int n = e->n_img, C = e->C;
    metric_majority_vote(e->votes, n, C, e->pred);
    out[0] = metric_accuracy(e->pred, e->labels, n);
    for (size_t j = 0; j < (size_t)n * C; j++) e->mean[j] = e->psum[j] / size;
    for (int i = 0; i < n; i++) {
        const double *p = e->mean + (size_t)i * C;
        const int a = metric_argmax(p, C);
        e->pred[i] = a;
        e->conf[i] = p[a];
        e->ok[i] = a == e->labels[i];
    }
    out[1] = metric_accuracy(e->pred, e->labels, n);
    out[2] = metric_nll(e->mean, e->labels, n, C);
    out[3] = metric_brier(e->mean, e->labels, n, C);
    out[4] = metric_ece(e->mean, e->labels, n, C, e->bins, count, conf_sum, correct_sum);
    out[5] = metric_auroc(e->conf, e->ok, n);
}

void ens_add(EnsCompute *e, long long g, const float *p) {
    const int n_img = e->n_img, C = e->C, S = e->S, K = e->K, bins = e->bins;
    const size_t nc = (size_t)n_img * C;
    const int j = (int)(g / e->M), pos = (int)(g % e->M) + 1;   // ensemble j, member number pos
    if (pos == 1) { memset(e->votes, 0, nc * sizeof(int)); memset(e->psum, 0, nc * sizeof(double)); }
    for (int i = 0; i < n_img; i++) {
        e->votes[(size_t)i * C + metric_argmax_f(p + (size_t)i * C, C)]++;
        for (int c = 0; c < C; c++) e->psum[(size_t)i * C + c] += p[(size_t)i * C + c];
    }
    for (int si = 0; si < S; si++)
        if (e->sizes[si] == pos) {
            double m[ENS_N_METRICS];
            ensemble_metrics(e, pos, m, e->rel + (size_t)si * bins, e->rel + ((size_t)S + si) * bins,
                             e->rel + ((size_t)2 * S + si) * bins);
            for (int q = 0; q < ENS_N_METRICS; q++) e->curve[((size_t)q * S + si) * K + j] = m[q];
        }
}

void ens_reliability(const EnsCompute *e, double *conf, double *acc) {
    const size_t Sb = (size_t)e->S * e->bins;
    for (size_t x = 0; x < Sb; x++) {
        const double cnt = e->rel[x];
        conf[x] = cnt > 0 ? e->rel[Sb + x] / cnt : NAN;
        acc[x] = cnt > 0 ? e->rel[2 * Sb + x] / cnt : NAN;
    }
}

void ens_free(EnsCompute *e) {
    free(e->curve); free(e->rel); free(e->votes); free(e->psum); free(e->pred); free(e->mean); free(e->conf);
    free(e->ok);
    memset(e, 0, sizeof(*e));
}
