// filters_core.c: per-filter diversity, next-layer norms, correlations and the gauge check
// (definitions in filters_core.h).
#include "filters_core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void filter_input_shape(const TargetArch *a, int l, int *h, int *w, int *c) {
    const TargetLayer *ly = &a->layers[l];
    const TargetOp *op = &a->ops[ly->op];
    if (op->type == OP_CONV) { *h = *w = op->kernel; *c = op->in_c; }
    else if (op->in_h * op->in_w > 1) { *h = op->in_h; *w = op->in_w; *c = op->in_c; }
    else { *h = 1; *w = ly->fan_in; *c = 1; }
}

void wmoments_init(WeightMoments *m, size_t d) {
    m->d = d;
    m->n = 0;
    m->mean = XCALLOC(d, sizeof(double));
    m->m2 = XCALLOC(d, sizeof(double));
    m->sq = XCALLOC(d, sizeof(double));
}

void wmoments_add(WeightMoments *m, const float *x, int nb) {
    for (int b = 0; b < nb; b++) {
        const float *xb = x + (size_t)b * m->d;
        const double inv = 1.0 / (double)(++m->n);
        for (size_t j = 0; j < m->d; j++) {
            const double v = xb[j], delta = v - m->mean[j];
            m->mean[j] += delta * inv;
            m->m2[j] += delta * (v - m->mean[j]);
            m->sq[j] += v * v;
        }
    }
}

void wmoments_free(WeightMoments *m) {
    free(m->mean);
    free(m->m2);
    free(m->sq);
    memset(m, 0, sizeof(*m));
}

int filter_diversity(const TargetArch *a, int l, const WeightMoments *m, double *diversity,
                     double *next_norm, double *channel_sq) {
    if (l < 0 || l + 1 >= a->n_layers || m->n < 1 || m->d != a->n_weights) return -1;
    const TargetLayer *L = &a->layers[l], *N = &a->layers[l + 1];
    if (N->in_channels != L->filters) return -1;
    const size_t K = (size_t)L->fan_in + 1;
    const int C = L->in_channels, P = L->fan_in / C;
    for (int f = 0; f < L->filters; f++) {
        const size_t o = L->offset + (size_t)f * K;
        double var = 0.0, sq = 0.0;
        for (size_t j = 0; j < K; j++) { var += m->m2[o + j]; sq += m->sq[o + j]; }
        diversity[f] = sq > 0.0 ? var / sq : 0.0;
        if (channel_sq)   // element p * C + c of the filter reads input channel c
            for (int c = 0; c < C; c++) {
                double s = 0.0;
                for (int p = 0; p < P; p++) s += m->sq[o + (size_t)p * C + c];
                channel_sq[(size_t)f * C + c] = s / (double)m->n;
            }
    }
    const size_t KN = (size_t)N->fan_in + 1;
    const int PN = N->fan_in / N->in_channels;
    for (int f = 0; f < L->filters; f++) {
        double s = 0.0;
        for (int g = 0; g < N->filters; g++)
            for (int p = 0; p < PN; p++) s += m->sq[N->offset + (size_t)g * KN + (size_t)p * N->in_channels + f];
        next_norm[f] = sqrt(s / (double)m->n);
    }
    return 0;
}

double stat_pearson(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double mx = 0.0, my = 0.0;
    for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    mx /= n;
    my /= n;
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (int i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    if (sxx <= 0.0 || syy <= 0.0) return NAN;
    return sxy / sqrt(sxx * syy);
}

// Mean ranks (1-based; ties share the mean of their ranks): O(n^2), n is a layer's filter count.
static void mean_ranks(const double *x, int n, double *r) {
    for (int i = 0; i < n; i++) {
        int less = 0, equal = 0;
        for (int j = 0; j < n; j++) { less += x[j] < x[i]; equal += x[j] == x[i]; }
        r[i] = less + (equal + 1) / 2.0;
    }
}

double stat_spearman(const double *x, const double *y, int n) {
    if (n < 2) return NAN;
    double *rx = XMALLOC_N(2 * (size_t)n, sizeof(double)), *ry = rx + n;
    mean_ranks(x, n, rx);
    mean_ranks(y, n, ry);
    const double r = stat_pearson(rx, ry, n);
    free(rx);
    return r;
}

int stat_argmin(const double *x, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && (best < 0 || x[i] < x[best])) best = i;
    return best;
}

int stat_argmax(const double *x, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (isfinite(x[i]) && (best < 0 || x[i] > x[best])) best = i;
    return best;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void gauge_deviation(const TargetArch *a, const float *theta, int n, double *median_rms_dev,
                     double *max_bias_mean) {
    size_t nf = 0;
    for (int l = 0; l + 1 < a->n_layers; l++) nf += (size_t)a->layers[l].filters;
    double *dev = XMALLOC_N(nf * (size_t)n + 1, sizeof(double));
    size_t k = 0;
    double worst = 0.0;
    const TargetLayer *last = &a->layers[a->n_layers - 1];
    for (int b = 0; b < n; b++) {
        const float *w = theta + (size_t)b * a->n_weights;
        for (int l = 0; l + 1 < a->n_layers; l++) {
            const TargetLayer *L = &a->layers[l];
            const size_t K = (size_t)L->fan_in + 1;
            for (int f = 0; f < L->filters; f++) {
                double s = 0.0;
                for (size_t j = 0; j < K; j++) { const double v = w[L->offset + f * K + j]; s += v * v; }
                dev[k++] = fabs(sqrt(s / (double)K) - 1.0);
            }
        }
        double mb = 0.0;
        for (int i = 0; i < last->filters; i++)
            mb += w[last->offset + (size_t)i * (last->fan_in + 1) + last->fan_in];
        mb = fabs(mb / last->filters);
        if (mb > worst) worst = mb;
    }
    if (k == 0) *median_rms_dev = 0.0;
    else {
        qsort(dev, k, sizeof(double), cmp_double);
        *median_rms_dev = k % 2 ? dev[k / 2] : 0.5 * (dev[k / 2 - 1] + dev[k / 2]);
    }
    *max_bias_mean = worst;
    free(dev);
}
