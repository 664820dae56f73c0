// pca_core.c: data vectors, standardization, projections, the Gaussian null and moments for
// hyperanalyze pca (definitions in pca_core.h).
#include "pca_core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "rng.h"

#define READ_BLOCK 256
#define TWO_PI 6.283185307179586476925286766559

size_t pca_dim(const TargetArch *a, int layer, int filter) {
    if (layer < 0) return a->n_weights;
    const TargetLayer *L = &a->layers[layer];
    return filter >= 0 ? (size_t)L->fan_in + 1 : L->size;
}

void pca_read_vectors(const SampleSet *s, int layer, int filter, long long n, float *X) {
    const size_t D = pca_dim(&s->arch, layer, filter);
    if (layer < 0) {
        for (long long b0 = 0; b0 < n; b0 += READ_BLOCK) {
            const int nb = n - b0 < READ_BLOCK ? (int)(n - b0) : READ_BLOCK;
            sampleset_read(s, b0, nb, X + (size_t)b0 * D);
        }
        return;
    }
    const TargetLayer *L = &s->arch.layers[layer];
    float *buf = XALLOC_FLOATS((size_t)READ_BLOCK * L->size);
    for (long long b0 = 0; b0 < n; b0 += READ_BLOCK) {
        const int nb = n - b0 < READ_BLOCK ? (int)(n - b0) : READ_BLOCK;
        sampleset_read_layer(s, layer, b0, nb, buf);
        for (int b = 0; b < nb; b++) {
            const float *src = buf + (size_t)b * L->size + (filter >= 0 ? (size_t)filter * (L->fan_in + 1) : 0);
            memcpy(X + (size_t)(b0 + b) * D, src, D * sizeof(float));
        }
    }
    free(buf);
}

void pca_standardize(float *X, long long n, size_t d, double *scale) {
    double *mu = XCALLOC(d, sizeof(double));
    memset(scale, 0, d * sizeof(double));
    for (long long i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) mu[j] += X[(size_t)i * d + j];
    for (size_t j = 0; j < d; j++) mu[j] /= (double)n;
    for (long long i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const double x = X[(size_t)i * d + j] - mu[j];
            scale[j] += x * x;
        }
    for (size_t j = 0; j < d; j++) {
        const double sd = sqrt(scale[j] / (double)(n - 1));
        scale[j] = sd > 0 ? sd : 1.0;
    }
    for (long long i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) X[(size_t)i * d + j] = (float)(X[(size_t)i * d + j] / scale[j]);
    free(mu);
}

void pca_project(const Pca *p, const double *scale, const float *X, long long n, double *proj) {
    const size_t d = (size_t)p->d;
    double *xc = XMALLOC_N(d, sizeof(double));
    for (long long i = 0; i < n; i++) {
        const float *x = X + (size_t)i * d;
        for (size_t j = 0; j < d; j++) xc[j] = (scale ? x[j] / scale[j] : (double)x[j]) - p->mean[j];
        for (int c = 0; c < p->k; c++) {
            const double *v = p->components + (size_t)c * d;
            double s = 0.0;
            for (size_t j = 0; j < d; j++) s += xc[j] * v[j];
            proj[(size_t)i * p->k + c] = s;
        }
    }
    free(xc);
}

void pca_gaussian_null(const double *variance, int k, long long n, uint64_t seed, double *proj) {
    for (long long i = 0; i < n; i++)
        for (int c = 0; c < k; c += 2) {
            const Philox4 r = philox4x32(seed, PCA_NULL_STREAM, (uint32_t)i, (uint32_t)((uint64_t)i >> 32),
                                         (uint32_t)(c / 2));
            const double u1 = rng_u01_open(r.v[0]), u2 = rng_u01_open(r.v[1]);
            const double rad = sqrt(-2.0 * log(u1));
            proj[(size_t)i * k + c] = sqrt(variance[c]) * rad * cos(TWO_PI * u2);
            if (c + 1 < k) proj[(size_t)i * k + c + 1] = sqrt(variance[c + 1]) * rad * sin(TWO_PI * u2);
        }
}

void pca_column_moments(const double *proj, long long n, int k, double *mean, double *var, double *skew,
                        double *exkurt) {
    for (int c = 0; c < k; c++) {
        double mu = 0.0;
        for (long long i = 0; i < n; i++) mu += proj[(size_t)i * k + c];
        mu /= (double)n;
        double m2 = 0.0, m3 = 0.0, m4 = 0.0;
        for (long long i = 0; i < n; i++) {
            const double x = proj[(size_t)i * k + c] - mu, x2 = x * x;
            m2 += x2;
            m3 += x2 * x;
            m4 += x2 * x2;
        }
        mean[c] = mu;
        var[c] = n > 1 ? m2 / (double)(n - 1) : NAN;
        m2 /= (double)n;
        m3 /= (double)n;
        m4 /= (double)n;
        skew[c] = m2 > 0 ? m3 / pow(m2, 1.5) : NAN;
        exkurt[c] = m2 > 0 ? m4 / (m2 * m2) - 3.0 : NAN;
    }
}

double pca_total_variance(const float *X, long long n, size_t d, const double *scale) {
    if (n < 2) return NAN;
    double *mu = XCALLOC(d, sizeof(double)), *ss = XCALLOC(d, sizeof(double));
    for (long long i = 0; i < n; i++)   // row by row (X is row-major): two passes, in double
        for (size_t j = 0; j < d; j++) mu[j] += X[(size_t)i * d + j] / (scale ? scale[j] : 1.0);
    for (size_t j = 0; j < d; j++) mu[j] /= (double)n;
    for (long long i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            const double x = X[(size_t)i * d + j] / (scale ? scale[j] : 1.0) - mu[j];
            ss[j] += x * x;
        }
    double total = 0.0;
    for (size_t j = 0; j < d; j++) total += ss[j] / (double)(n - 1);
    free(mu);
    free(ss);
    return total;
}
