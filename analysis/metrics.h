// metrics.h: pure functions behind the sample-set analyses (hyperanalyze accuracy, ensemble,
// pca, paths): classification metrics of probability vectors, ensembles, calibration, AUROC,
// histograms, and PCA through symmetric eigenproblems. No files, no global state; tests in
// tests/test_metrics.c check them against hand-computed values and synthetic data.
//
// Conventions: probabilities are row-major (n, C); labels are class indices; argmax ties go to the
// lowest class (as in training's validation).
#ifndef HT_METRICS_H
#define HT_METRICS_H

#include <stddef.h>
#include <stdint.h>

int metric_argmax(const double *p, int C);
int metric_argmax_f(const float *p, int C);

// Fraction of i with pred[i] == labels[i].
double metric_accuracy(const int *pred, const uint8_t *labels, int n);

// Majority vote: votes (n, C) counts of each class; pred[i] = the class with most votes (ties:
// lowest class).
void metric_majority_vote(const int *votes, int n, int C, int *pred);

// Mean probability of M members: probs (M, n, C) -> mean (n, C).
void metric_mean_prob(const float *probs, int M, int n, int C, double *mean);

// Mean negative log-likelihood: mean over i of -log(p[i, y_i] + 1e-30).
double metric_nll(const double *p, const uint8_t *labels, int n, int C);

// Brier score (multi-class): mean over i of sum_c (p[i, c] - [c == y_i])^2, in [0, 2].
double metric_brier(const double *p, const uint8_t *labels, int n, int C);

// Expected calibration error with `bins` equal-width confidence bins (Guo et al. 2017):
// confidence = max_c p[i, c], prediction = argmax; bin b holds confidences in (b/bins, (b+1)/bins]
// (bin 0 also holds 0). ECE = sum_b (n_b / n) |accuracy_b - mean confidence_b|.
// count, conf_sum, correct_sum (each `bins` long) may be NULL; if given, the bin's count, sum of
// confidences and number correct are ADDED to them (so several calls can be pooled).
double metric_ece(const double *p, const uint8_t *labels, int n, int C, int bins, double *count,
                  double *conf_sum, double *correct_sum);

// Area under the ROC curve of `score` as a detector of positive[i] != 0: the probability that a
// random positive scores higher than a random negative, ties counting one half (Mann-Whitney with
// mid-ranks). NaN when there are no positives or no negatives.
double metric_auroc(const double *score, const int *positive, int n);

// counts[b] = number of x in bin b of `bins` equal bins over [lo, hi]; values outside are clamped
// into the first/last bin; the last bin includes hi. edges (bins + 1) is written if not NULL.
void metric_histogram(const double *x, int n, double lo, double hi, int bins, int64_t *counts,
                      double *edges);

// Mean and (population) standard deviation of x[0..n).
void metric_mean_std(const double *x, int n, double *mean, double *std);

// ---- Symmetric eigenproblems and PCA ----

// All eigenpairs of the symmetric matrix A (m, m) by cyclic Jacobi rotations. A is destroyed.
// evals (m) in descending order; evecs (m, m): row i is the unit eigenvector of evals[i].
// Returns the sweeps used.
int sym_eig_jacobi(double *A, int m, double *evals, double *evecs);

// The k largest eigenpairs of the symmetric positive semi-definite S (m, m): subspace iteration
// with Rayleigh-Ritz (block of min(m, 2k + 10) vectors), until every residual
// ||S v - lambda v|| <= tol * lambda_1 or max_iter. evals (k) descending, evecs (k, m) rows.
// *residual (may be NULL) gets the largest relative residual. Returns the iterations used, or
// -iterations if it stopped at max_iter without converging. For m <= 64 it uses Jacobi.
int sym_eig_top(const double *S, int m, int k, double *evals, double *evecs, int max_iter, double tol,
                double *residual);

typedef struct {
    int n, d, k;
    double *mean;          // (d)
    double *components;    // (k, d) unit principal axes; sign: the largest |entry| is positive
    double *variance;      // (k) explained variance (eigenvalues of the covariance, 1/(n-1))
    double *ratio;         // (k) variance / total_variance
    double *proj;          // (n, k) projections of the centered samples on the components
    double total_variance; // trace of the covariance
    int gram;              // 1: solved through the (n, n) Gram matrix (d > n), 0: (d, d) covariance
    int iterations;        // as sym_eig_top returned (negative: not converged)
    double residual;       // largest relative eigen-residual
} Pca;

// PCA of the rows of X (n, d), row-major float, n >= 2, 1 <= k <= min(n, d). Accumulates in double.
// Returns 0, or -1 for bad sizes. Free with pca_free.
int pca_fit(const float *X, int n, int d, int k, Pca *out);
void pca_free(Pca *p);

// ---- Function-space diversity, temperature scaling, dataset shift (hyperanalyze diversity,
// shift, calibrate; analysis/uncert.h builds on these) ----

// Log-softmax of one row of logits divided by the temperature T > 0, in double:
// out[c] = z_c/T - log sum_k exp(z_k/T) (the maximum subtracted first, so no overflow).
void metric_log_softmax_t(const float *z, int C, double T, double *out);

// probs (n, C) = softmax(logits / T) of every row of logits (n, C).
void metric_softmax_t(const float *logits, int n, int C, double T, double *probs);

// Mean over the n rows of KL(p || q) = sum_c p_c (log p_c - log q_c) (natural log), with
// p = softmax(za_i), q = softmax(zb_i) computed from the logits (T = 1) as log-softmax, so that a
// probability that rounds to 0 in float32 never makes it infinite. za, zb (n, C).
double metric_mean_kl_logits(const float *za, const float *zb, int n, int C);

// Fraction of the n rows whose argmax (ties: lowest class) differs between za and zb (n, C).
double metric_disagreement_logits(const float *za, const float *zb, int n, int C);

// Rotation of one image (h, w, c), channels last, by `degrees` counterclockwise as displayed
// (row 0 at the top), about the image centre ((w-1)/2, (h-1)/2), bilinear interpolation, zero
// outside the image (inverse mapping: out(x, y) = in(R(-degrees) (x - cx, y - cy) + (cx, cy))
// with y pointing down). Multiples of 90 degrees use exact cos/sin, so 0 degrees is the identity
// and four rotations by 90 degrees are too, bit for bit. out must not alias in.
void image_rotate(const float *in, int h, int w, int c, double degrees, float *out);

#endif
