// ood_core.h: the computation of hyperanalyze ood (analysis/ood.c is the command: options, the
// outlier images, running the networks, the result file and stdout). Members are added in order;
// when the ensemble of the first s members reaches a size of the curve (1, 2, 4, ..., M), three
// scores of every image, larger = "more likely an outlier", are computed from the members' mean
// probability pbar:
//   entropy             H(pbar) (predictive entropy, natural log; src/classifier.h prob_entropy)
//   mutual_information  H(pbar) - mean_m H(p_m) (disagreement between members; 0 for one network)
//   max_prob            1 - max_c pbar_c
// with the AUROC of each as a detector of outliers (metric_auroc: ties count one half) and the
// in-distribution accuracy of pbar. No files, no global state; tests in tests/test_analysis.c.
#ifndef HT_OOD_CORE_H
#define HT_OOD_CORE_H

#include <stdint.h>

#define OOD_N_SCORES 3
extern const char *const OOD_SCORE_NAMES[OOD_N_SCORES];
#define OOD_MAX_SIZES 64

typedef struct {
    int n, n_in, C, S, next;       // images: the first n_in in-distribution, the rest outliers
    long M;
    int64_t sizes[OOD_MAX_SIZES];  // 1, 2, 4, ... < M, then M (S entries)
    const uint8_t *labels;         // (n_in) labels of the in-distribution images
    int *is_out;                   // (n) 1 for the outliers
    double *scores;  // (OOD_N_SCORES, n) of the largest size scored so far (after all: the full ensemble)
    double *auroc;   // (OOD_N_SCORES, S)
    double *in_acc;  // (S) accuracy of argmax pbar on the in-distribution images
    double *psum;    // (n, C) probability sums
    double *hsum;    // (n) sums of the members' entropies
    double *mean;    // (C) scratch
} OodCompute;

// M >= 1 members, n_in >= 1 in-distribution images (labels, must outlive o), n - n_in outliers.
void ood_init(OodCompute *o, long M, int n, int n_in, int C, const uint8_t *labels);
// Adds the next member (members 0, 1, ..., M-1 in order) with probabilities p (n, C).
void ood_add(OodCompute *o, const float *p);
void ood_free(OodCompute *o);

#endif
