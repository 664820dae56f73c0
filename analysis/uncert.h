// uncert.h: the computations behind hyperanalyze diversity, shift and calibrate (docs/analysis.md,
// "Function-space diversity, dataset shift, calibration"). Pure functions of tables of logits
// (M networks, n images, C classes; row-major (M, n, C) float32), so that the tests
// (tests/test_metrics.c) call them on hand-built tables and the commands (analysis/diversity.c,
// shift.c, calibration.c) only read sample sets, evaluate networks (analysis/uncert_eval.c) and
// write results. No files, no global state; allocation failures are fatal (XMALLOC_N).
//
// Scores of a probability table (n, C) with labels, in this order everywhere (UQ_ACC ...):
//   accuracy  fraction of argmax == label (ties: lowest class)
//   nll       mean -log(p_label + 1e-30)
//   ece       15 (bins) equal-width confidence bins (b/B, (b+1)/B], sum_b n_b/n |acc_b - conf_b|
//             (metric_ece of metrics.h)
#ifndef HT_UNCERT_H
#define HT_UNCERT_H

#include <stdint.h>

enum { UQ_ACC = 0, UQ_NLL = 1, UQ_ECE = 2, UQ_N_SCORES = 3 };
extern const char *const UQ_SCORE_NAMES[UQ_N_SCORES];   // "accuracy", "nll", "ece"

// Scores of the ensemble of members [0, M) of logits (M, n, C): p = (1/M) sum_m softmax(z_m / T)
// (the temperature applied to each member's logits before averaging). scores (UQ_N_SCORES).
// rel, if not NULL, (3, bins): the count, confidence sum and correct count of each bin are ADDED.
void uq_ensemble_scores(const float *logits, int M, int n, int C, const uint8_t *labels, double T, int bins,
                        double *scores, double *rel);

// ---- diversity ----
typedef struct {
    const float *logits;     // (M, n, C)
    const uint8_t *labels;   // (n)
    int M, n, C;             // M >= 2
} DiversityIn;

typedef struct {
    int M;
    long long P;                 // pairs i < j: M (M - 1) / 2, in the order (0,1), (0,2), ..., (M-2, M-1)
    int64_t *pair_i, *pair_j;    // (P)
    double *disagreement;        // (P) fraction of images where argmax_i != argmax_j
    double *kl_ij, *kl_ji;       // (P) mean KL(p_i || p_j) and KL(p_j || p_i) (nats)
    double *kl_sym;              // (P) (kl_ij + kl_ji) / 2
    double *pair_error;          // (P) (e_i + e_j) / 2
    double *norm_disagreement;   // (P) disagreement / pair_error (NaN when pair_error is 0)
    double *error;               // (M) 1 - accuracy of each network
    // mean and (population) std over pairs / networks; norm_disagreement over the pairs where
    // it is defined (norm_pairs of them)
    double dis_mean, dis_std, kl_mean, kl_std, ndis_mean, ndis_std, err_mean, err_std;
    long long norm_pairs;
    double ens_error;            // error of the mean probability of all M members
} DiversityOut;

void diversity_compute(const DiversityIn *in, DiversityOut *out);
void diversity_free(DiversityOut *out);

// ---- dataset shift (one angle) ----
typedef struct {
    double single_mean[UQ_N_SCORES], single_std[UQ_N_SCORES]; // each network alone: mean, std over M
    double ensemble[UQ_N_SCORES];                             // mean probability of the M members
} ShiftPoint;

// logits (M, n, C) of the M networks on the (rotated) images.
void shift_point(const float *logits, int M, int n, int C, const uint8_t *labels, int bins, ShiftPoint *out);

// ---- temperature scaling ----
typedef enum {
    UQ_T_SINGLE = 0,    // mean over members of each member's own NLL (one T shared by all)
    UQ_T_ENSEMBLE = 1,  // NLL of the mean of the members' tempered probabilities
} TempMode;

// NLL as a function of T, for the mode (see TempMode).
double uq_nll_at(const float *logits, int M, int n, int C, const uint8_t *labels, double T, TempMode mode);

// The temperature minimizing uq_nll_at over T in [UQ_T_MIN, UQ_T_MAX]: a grid of UQ_T_GRID points
// evenly spaced in log T, then golden-section search on log T in the bracket of the best grid
// point's neighbours until it is narrower than 1e-7. Deterministic (no random start). *nll (may
// be NULL) gets the NLL at the returned T.
#define UQ_T_MIN 0.05
#define UQ_T_MAX 20.0
#define UQ_T_GRID 41
double uq_fit_temperature(const float *logits, int M, int n, int C, const uint8_t *labels, TempMode mode,
                          double *nll);

typedef struct {
    const float *val_logits;     // (M, n_val, C): fit
    const uint8_t *val_labels;
    int n_val;
    const float *test_logits;    // (M, n_test, C): evaluation
    const uint8_t *test_labels;
    int n_test;
    int M, C, bins;
    const int64_t *sizes;        // (S) ensemble sizes: the first s members, each <= M
    int S;
} CalibIn;

typedef struct {
    int S, bins;
    double *T;                   // (S) temperature fitted on validation for each ensemble size
    double *val_nll;             // (2, S) validation NLL before (T = 1) and after
    double *test;                // (2, S, UQ_N_SCORES) test scores before and after
    double *rel;                 // (2, S, 3, bins) test reliability data: count, confidence sum, correct
    // every network alone, one T shared by the M networks (UQ_T_SINGLE)
    double single_T;
    double single_mean[2][UQ_N_SCORES], single_std[2][UQ_N_SCORES];   // [before/after][score] over M
} CalibOut;

void calib_compute(const CalibIn *in, CalibOut *out);
void calib_free(CalibOut *out);

#endif
