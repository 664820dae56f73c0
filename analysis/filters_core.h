// filters_core.h: the computations behind hyperanalyze filterdiv (the paper's Fig. 3 "low-diversity
// filter" argument, docs/analysis.md) and the gauge check of hyperanalyze pca, callable from the
// tests (tests/test_figs.c) without files.
//
// Per-filter diversity. Filter f of layer l (its fan_in weights then its bias, x (fan_in + 1)),
// over the S networks of a set:
//     diversity_f = sum_s ||x_s - mean||^2 / sum_s ||x_s||^2          in [0, 1]
// the filter's total variance across networks over its mean squared norm (the "normalized
// variance"): 0 for a filter that is the same in every network, 1 for one whose mean over the
// networks is 0. It equals 1 - ||mean||^2 / mean ||x||^2 and (S-1)/(2S) times the mean pairwise
// squared distance over the mean squared norm; after gauge fixing ||x||^2 = fan_in + 1 for every
// network, so it is also 1 - ||mean of the unit-norm filters||^2, i.e. the mean pairwise cosine
// distance up to the i = j terms (docs/analysis.md says why this one).
// A filter whose squares sum to 0 (zero in every network) has diversity 0.
//
// Next-layer norm on the filter's channel: filter f of layer l is input channel f of layer l+1
// (pooling and ReLU keep channels); element j = p * C + c of a filter of layer l+1 reads channel c
// (C = its in_channels, as gauge_forward's scale_inputs). With gauge fixing that channel's weights
// carry filter f's scale, so their norm says how much the next layer uses filter f:
//     next_norm_f = sqrt( (1/S) sum_s sum_{g, p} W_{l+1, s}[g, p * C + f]^2 )
// (the RMS over networks of the Frobenius norm of the slice).
#ifndef HT_FILTERS_CORE_H
#define HT_FILTERS_CORE_H

#include <stddef.h>

#include "arch.h"

// The shape (h, w, c) of the input a filter of layer l reads: the kernel window (k, k, in_channels)
// for a conv layer, the previous activation (in_h, in_w, in_c) for a fully connected layer, and
// (1, fan_in, 1) for an fc layer whose input has no spatial extent (in_h = in_w = 1: one row).
// Element p * c + ch of the filter's fan_in weights is pixel p of channel ch.
void filter_input_shape(const TargetArch *a, int l, int *h, int *w, int *c);

// Running per-coordinate moments of flat weight vectors (D coordinates), in double:
// Welford's update, so a coordinate equal in every network has m2 exactly 0.
typedef struct {
    size_t d;
    long long n;       // vectors added
    double *mean;      // (d) running mean
    double *m2;        // (d) sum of squared deviations from the mean
    double *sq;        // (d) sum of squares
} WeightMoments;

void wmoments_init(WeightMoments *m, size_t d);
// Adds nb vectors x (nb, d), row-major.
void wmoments_add(WeightMoments *m, const float *x, int nb);
void wmoments_free(WeightMoments *m);

// Layer l (0-based index into a->layers, l + 1 < a->n_layers) from moments of whole flat networks
// (d = a->n_weights, n >= 1): diversity (filters) and next_norm (filters) as defined above;
// channel_sq (filters, in_channels of layer l) gets sum_s ||slice at channel c of filter f||^2 / S
// (the weights only), to pick the channel a figure shows. Returns 0, or -1 when layer l+1 does not
// read layer l's filters as its channels (in_channels != filters).
int filter_diversity(const TargetArch *a, int l, const WeightMoments *m, double *diversity,
                     double *next_norm, double *channel_sq);

// Pearson correlation of x and y (n); NaN when either is constant or n < 2.
double stat_pearson(const double *x, const double *y, int n);
// Spearman rank correlation (Pearson of the ranks, ties get their mean rank); NaN as above.
double stat_spearman(const double *x, const double *y, int n);
// Index of the smallest / largest finite x (n >= 1; the first on ties); -1 when none is finite.
int stat_argmin(const double *x, int n);
int stat_argmax(const double *x, int n);

// Gauge check of flat networks theta (n, a->n_weights): the median over networks and filters of
// layers 1..m-1 of |rms - 1| (rms over a filter's weights and bias; gauge fixing makes it
// 1 - O(1e-8)) and the largest |mean of the last layer's biases| (gauge fixing makes it 0).
void gauge_deviation(const TargetArch *a, const float *theta, int n, double *median_rms_dev,
                     double *max_bias_mean);

#endif
