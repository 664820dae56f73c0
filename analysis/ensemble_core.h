// ensemble_core.h: the computation of hyperanalyze ensemble (analysis/ensemble.c is the command:
// options, reading the set, running the networks, the result file and stdout). K ensembles of M
// networks; members are added in network order (network g is member g % M + 1 of ensemble g / M),
// and when an ensemble reaches a size of the curve (1, 2, 4, ..., M) its metrics are computed:
// majority vote accuracy (ties: lowest class) and, of the mean probability, accuracy, NLL, Brier
// score, ECE and the AUROC of the confidence as a detector of the ensemble's own errors
// (analysis/metrics.h), with reliability data pooled over the K ensembles. One ensemble's votes and
// probability sums are the only state. No files, no global state; tests in tests/test_analysis.c.
#ifndef HT_ENSEMBLE_CORE_H
#define HT_ENSEMBLE_CORE_H

#include <stdint.h>

#define ENS_N_METRICS 6
// Names in the order of the metric axis of EnsCompute.curve.
extern const char *const ENS_METRIC_NAMES[ENS_N_METRICS];
#define ENS_MAX_SIZES 64

typedef struct {
    int K, M, n_img, C, bins, S;
    int64_t sizes[ENS_MAX_SIZES];  // 1, 2, 4, ... < M, then M (S entries)
    const uint8_t *labels;         // (n_img)
    double *curve;   // (ENS_N_METRICS, S, K): metric q of ensemble j at size sizes[si]
    double *rel;     // (3, S, bins): count, confidence sum, correct sum per (size, bin), pooled over K
    // state of the current ensemble and scratch
    int *votes;      // (n_img, C)
    double *psum;    // (n_img, C) probability sums
    int *pred;       // (n_img)
    double *mean;    // (n_img, C)
    double *conf;    // (n_img)
    int *ok;         // (n_img)
} EnsCompute;

// Ensemble sizes 1, 2, 4, ... < M, then M; returns their number (<= ENS_MAX_SIZES).
int ens_sizes(long M, int64_t *sizes);
// K, M >= 1; labels (n_img) must outlive e. curve and rel start at 0.
void ens_init(EnsCompute *e, int K, int M, int n_img, int C, int bins, const uint8_t *labels);
// Adds network g (0 <= g < K*M, called for g = 0, 1, 2, ... in order) with probabilities p (n_img, C).
void ens_add(EnsCompute *e, long long g, const float *p);
// Reliability diagram from rel: mean confidence and accuracy per (size, bin), NaN in empty bins.
// conf, acc: (S, bins).
void ens_reliability(const EnsCompute *e, double *conf, double *acc);
void ens_free(EnsCompute *e);

#endif
