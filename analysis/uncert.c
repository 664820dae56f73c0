// uncert.c: see uncert.h. Per-image loops run under OpenMP with one output slot per image and a
// serial sum afterwards, so results do not depend on the number of threads.
#include "uncert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "metrics.h"

const char *const UQ_SCORE_NAMES[UQ_N_SCORES] = {"accuracy", "nll", "ece"};

// mean (n, C) = (1/M) sum_m softmax(z_m / T); logits (M, n, C).
static void tempered_mean(const float *logits, int M, int n, int C, double T, double *mean) {
    const size_t nc = (size_t)n * C;
    #pragma omp parallel
    {
        double *lp = XMALLOC_N((size_t)C, sizeof(double));
        #pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            double *p = mean + (size_t)i * C;
            for (int c = 0; c < C; c++) p[c] = 0.0;
            for (int m = 0; m < M; m++) {   // members in order: the same sum on any thread count
                metric_log_softmax_t(logits + (size_t)m * nc + (size_t)i * C, C, T, lp);
                for (int c = 0; c < C; c++) p[c] += exp(lp[c]);
            }
            for (int c = 0; c < C; c++) p[c] /= M;
        }
        free(lp);
    }
}

static void prob_scores(const double *p, int n, int C, const uint8_t *labels, int bins, double *scores,
                        double *rel) {
    int *pred = XMALLOC_N((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) pred[i] = metric_argmax(p + (size_t)i * C, C);
    scores[UQ_ACC] = metric_accuracy(pred, labels, n);
    scores[UQ_NLL] = metric_nll(p, labels, n, C);
    scores[UQ_ECE] = metric_ece(p, labels, n, C, bins, rel, rel ? rel + bins : NULL, rel ? rel + 2 * bins : NULL);
    free(pred);
}

void uq_ensemble_scores(const float *logits, int M, int n, int C, const uint8_t *labels, double T, int bins,
                        double *scores, double *rel) {
    double *mean = XMALLOC_N(XMUL(n, C, "images x classes"), sizeof(double));
    tempered_mean(logits, M, n, C, T, mean);
    prob_scores(mean, n, C, labels, bins, scores, rel);
    free(mean);
}

// ---- diversity ----

static void pair_of(long long p, int M, int *i, int *j) {
    int a = 0;
    long long left = p;
    while (left >= M - 1 - a) { left -= M - 1 - a; a++; }
    *i = a;
    *j = a + 1 + (int)left;
}

void diversity_compute(const DiversityIn *in, DiversityOut *o) {
    const int M = in->M, n = in->n, C = in->C;
    HT_CHECK(M >= 2 && n >= 1 && C >= 2, "diversity_compute: %d networks, %d images, %d classes", M, n, C);
    const size_t nc = (size_t)n * C;
    const long long P = (long long)M * (M - 1) / 2;
    memset(o, 0, sizeof(*o));
    o->M = M;
    o->P = P;
    o->pair_i = XMALLOC_N((size_t)P, sizeof(int64_t));
    o->pair_j = XMALLOC_N((size_t)P, sizeof(int64_t));
    double **arrs[6] = {&o->disagreement, &o->kl_ij, &o->kl_ji, &o->kl_sym, &o->pair_error, &o->norm_disagreement};
    for (int q = 0; q < 6; q++) *arrs[q] = XMALLOC_N((size_t)P, sizeof(double));
    o->error = XMALLOC_N((size_t)M, sizeof(double));
    for (int m = 0; m < M; m++) {
        double s[UQ_N_SCORES];
        uq_ensemble_scores(in->logits + (size_t)m * nc, 1, n, C, in->labels, 1.0, 1, s, NULL);
        o->error[m] = 1.0 - s[UQ_ACC];
    }
    #pragma omp parallel for schedule(dynamic, 4)
    for (long long p = 0; p < P; p++) {
        int i, j;
        pair_of(p, M, &i, &j);
        const float *zi = in->logits + (size_t)i * nc, *zj = in->logits + (size_t)j * nc;
        o->pair_i[p] = i;
        o->pair_j[p] = j;
        o->disagreement[p] = metric_disagreement_logits(zi, zj, n, C);
        o->kl_ij[p] = metric_mean_kl_logits(zi, zj, n, C);
        o->kl_ji[p] = metric_mean_kl_logits(zj, zi, n, C);
        o->kl_sym[p] = 0.5 * (o->kl_ij[p] + o->kl_ji[p]);
        o->pair_error[p] = 0.5 * (o->error[i] + o->error[j]);
        o->norm_disagreement[p] = o->pair_error[p] > 0 ? o->disagreement[p] / o->pair_error[p] : NAN;
    }
    metric_mean_std(o->disagreement, (int)P, &o->dis_mean, &o->dis_std);
    metric_mean_std(o->kl_sym, (int)P, &o->kl_mean, &o->kl_std);
    metric_mean_std(o->error, M, &o->err_mean, &o->err_std);
    double *nd = XMALLOC_N((size_t)P, sizeof(double));
    long long k = 0;
    for (long long p = 0; p < P; p++) if (!isnan(o->norm_disagreement[p])) nd[k++] = o->norm_disagreement[p];
    o->norm_pairs = k;
    metric_mean_std(nd, (int)k, &o->ndis_mean, &o->ndis_std);
    free(nd);
    double s[UQ_N_SCORES];
    uq_ensemble_scores(in->logits, M, n, C, in->labels, 1.0, 1, s, NULL);
    o->ens_error = 1.0 - s[UQ_ACC];
}

void diversity_free(DiversityOut *o) {
    free(o->pair_i); free(o->pair_j); free(o->disagreement); free(o->kl_ij); free(o->kl_ji);
    free(o->kl_sym); free(o->pair_error); free(o->norm_disagreement); free(o->error);
    memset(o, 0, sizeof(*o));
}

// ---- dataset shift ----

void shift_point(const float *logits, int M, int n, int C, const uint8_t *labels, int bins, ShiftPoint *out) {
    const size_t nc = (size_t)n * C;
    double *per = XMALLOC_N((size_t)UQ_N_SCORES * M, sizeof(double));   // (score, member)
    for (int m = 0; m < M; m++) {
        double s[UQ_N_SCORES];
        uq_ensemble_scores(logits + (size_t)m * nc, 1, n, C, labels, 1.0, bins, s, NULL);
        for (int q = 0; q < UQ_N_SCORES; q++) per[(size_t)q * M + m] = s[q];
    }
    for (int q = 0; q < UQ_N_SCORES; q++)
        metric_mean_std(per + (size_t)q * M, M, &out->single_mean[q], &out->single_std[q]);
    uq_ensemble_scores(logits, M, n, C, labels, 1.0, bins, out->ensemble, NULL);
    free(per);
}

// ---- temperature scaling ----

double uq_nll_at(const float *logits, int M, int n, int C, const uint8_t *labels, double T, TempMode mode) {
    if (mode == UQ_T_ENSEMBLE) {
        double s[UQ_N_SCORES];
        uq_ensemble_scores(logits, M, n, C, labels, T, 1, s, NULL);
        return s[UQ_NLL];
    }
    const size_t nc = (size_t)n * C;
    double sum = 0.0;
    for (int m = 0; m < M; m++) {
        double s[UQ_N_SCORES];
        uq_ensemble_scores(logits + (size_t)m * nc, 1, n, C, labels, T, 1, s, NULL);
        sum += s[UQ_NLL];
    }
    return sum / M;
}

double uq_fit_temperature(const float *logits, int M, int n, int C, const uint8_t *labels, TempMode mode,
                          double *nll) {
    const double lo = log(UQ_T_MIN), hi = log(UQ_T_MAX), step = (hi - lo) / (UQ_T_GRID - 1);
    int best = 0;
    double best_f = INFINITY;
    for (int g = 0; g < UQ_T_GRID; g++) {
        const double f = uq_nll_at(logits, M, n, C, labels, exp(lo + g * step), mode);
        if (f < best_f) { best_f = f; best = g; }
    }
    // golden-section search on log T in [best - 1, best + 1] grid points (clipped to the range)
    double a = lo + (best > 0 ? best - 1 : 0) * step, b = lo + (best < UQ_T_GRID - 1 ? best + 1 : best) * step;
    const double r = (sqrt(5.0) - 1) / 2;
    double x1 = b - r * (b - a), x2 = a + r * (b - a);
    double f1 = uq_nll_at(logits, M, n, C, labels, exp(x1), mode), f2 = uq_nll_at(logits, M, n, C, labels, exp(x2), mode);
    while (b - a > 1e-7) {
        if (f1 <= f2) { b = x2; x2 = x1; f2 = f1; x1 = b - r * (b - a); f1 = uq_nll_at(logits, M, n, C, labels, exp(x1), mode); }
        else { a = x1; x1 = x2; f1 = f2; x2 = a + r * (b - a); f2 = uq_nll_at(logits, M, n, C, labels, exp(x2), mode); }
    }
    double x = 0.5 * (a + b), f = uq_nll_at(logits, M, n, C, labels, exp(x), mode);
    if (best_f < f) { x = lo + best * step; f = best_f; }   // a grid point at the end of the range
    if (nll) *nll = f;
    return exp(x);
}

void calib_compute(const CalibIn *in, CalibOut *o) {
    const int S = in->S, M = in->M, C = in->C, bins = in->bins;
    HT_CHECK(S >= 1 && M >= 1 && bins >= 1, "calib_compute: %d sizes, %d networks, %d bins", S, M, bins);
    memset(o, 0, sizeof(*o));
    o->S = S;
    o->bins = bins;
    o->T = XMALLOC_N((size_t)S, sizeof(double));
    o->val_nll = XMALLOC_N((size_t)2 * S, sizeof(double));
    o->test = XMALLOC_N((size_t)2 * S * UQ_N_SCORES, sizeof(double));
    o->rel = XCALLOC(XMUL((size_t)2 * S * 3, bins, "reliability bins"), sizeof(double));
    for (int si = 0; si < S; si++) {
        const int s = (int)in->sizes[si];
        HT_CHECK(s >= 1 && s <= M, "calib_compute: ensemble size %d of %d networks", s, M);
        o->val_nll[si] = uq_nll_at(in->val_logits, s, in->n_val, C, in->val_labels, 1.0, UQ_T_ENSEMBLE);
        o->T[si] = uq_fit_temperature(in->val_logits, s, in->n_val, C, in->val_labels, UQ_T_ENSEMBLE,
                                      &o->val_nll[S + si]);
        for (int k = 0; k < 2; k++)
            uq_ensemble_scores(in->test_logits, s, in->n_test, C, in->test_labels, k ? o->T[si] : 1.0, bins,
                               o->test + ((size_t)k * S + si) * UQ_N_SCORES,
                               o->rel + ((size_t)k * S + si) * 3 * bins);
    }
    o->single_T = uq_fit_temperature(in->val_logits, M, in->n_val, C, in->val_labels, UQ_T_SINGLE, NULL);
    const size_t nc = (size_t)in->n_test * C;
    double *per = XMALLOC_N((size_t)UQ_N_SCORES * M, sizeof(double));
    for (int k = 0; k < 2; k++) {
        for (int m = 0; m < M; m++) {
            double sc[UQ_N_SCORES];
            uq_ensemble_scores(in->test_logits + (size_t)m * nc, 1, in->n_test, C, in->test_labels,
                               k ? o->single_T : 1.0, bins, sc, NULL);
            for (int q = 0; q < UQ_N_SCORES; q++) per[(size_t)q * M + m] = sc[q];
        }
        for (int q = 0; q < UQ_N_SCORES; q++)
            metric_mean_std(per + (size_t)q * M, M, &o->single_mean[k][q], &o->single_std[k][q]);
    }
    free(per);
}

void calib_free(CalibOut *o) {
    free(o->T); free(o->val_nll); free(o->test); free(o->rel);
    memset(o, 0, sizeof(*o));
}
