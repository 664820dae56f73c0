// pca_core.h: the computations of hyperanalyze pca beyond the eigenproblem (pca_fit, metrics.h):
// the data vectors of a sample set, standardization, projecting another set on the generated set's
// axes, the Gaussian null and the per-axis moments that say what survives the comparison
// (docs/analysis.md, "pca: null comparisons"). Tested by tests/test_figs.c and tests/t_figs.sh.
#ifndef HT_PCA_CORE_H
#define HT_PCA_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "sample.h"

// Philox stream of the Gaussian null's draws (counter: network index, component pair).
#define PCA_NULL_STREAM 210

// Dimension of the data vector: layer -1 = the whole network; filter -1 = a whole layer.
size_t pca_dim(const TargetArch *a, int layer, int filter);
// Data vectors of networks [0, n) of the set: X (n, pca_dim) floats, in the flat layout of arch.h
// (a filter: its fan_in weights in (kh, kw, cin) order, then its bias; a layer: its filters in
// order; the whole network: the layers in order).
void pca_read_vectors(const SampleSet *s, int layer, int filter, long long n, float *X);
// scale (d) = the standard deviation (1/(n-1)) of each column of X (n, d), 1 where it is 0; then
// X /= scale in place.
void pca_standardize(float *X, long long n, size_t d, double *scale);
// proj (n, k) = (X / scale - p->mean) . p->components^T for other vectors X (n, p->d) (scale NULL:
// none), in double: another set on the axes of p.
void pca_project(const Pca *p, const double *scale, const float *X, long long n, double *proj);
// The Gaussian null on the axes of p: proj (n, k) with column c ~ N(0, variance[c]) independent,
// row i and component c from Philox (seed, PCA_NULL_STREAM, i, c / 2) by Box-Muller. This is exactly
// the projection of N(mean, Sigma) with Sigma the set's covariance: the components are orthonormal
// eigenvectors of Sigma, so c_i^T Sigma c_j = variance_i delta_ij, and a Gaussian is fixed by its
// mean and covariance.
void pca_gaussian_null(const double *variance, int k, long long n, uint64_t seed, double *proj);
// Per column of proj (n, k): mean, variance (1/(n-1)), skewness g1 = m3 / m2^1.5 and excess kurtosis
// g2 = m4 / m2^2 - 3 (m_r the central moments with 1/n); NaN moments for a constant column.
void pca_column_moments(const double *proj, long long n, int k, double *mean, double *var, double *skew,
                        double *exkurt);
// Trace of the covariance (1/(n-1)) of X (n, d) divided by scale (NULL: none), in double.
double pca_total_variance(const float *X, long long n, size_t d, const double *scale);

#endif
