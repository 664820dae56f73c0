// test_metrics.c: the pure metric functions of the sample-set analyses (analysis/metrics.c)
// against hand-computed values, and PCA against synthetic data with known components.
//   - argmax ties, majority vote and mean-probability ensembles of 3 networks on 4 images
//   - NLL, Brier score, ECE (15 bins; one case with two samples sharing a bin) by hand
//   - AUROC: a case without ties (8/9), with ties (7/8, 1/2), and degenerate (NaN)
//   - histogram edges and clamping
//   - Jacobi on a 3x3 matrix with known eigenpairs; A v = lambda v on a random 40x40
//   - subspace iteration (sym_eig_top) against Jacobi on a 300x300 PSD matrix
//   - PCA recovers planted components (covariance path d <= n, and Gram path d > n), their
//     variances and consistent projections
// The test program includes analysis/metrics.c directly: test binaries link the library in src/
// only, and metrics.c is part of hyperanalyze.
#include "../analysis/metrics.c"

#include <stdint.h>

#include "testutil.h"

static uint64_t g_rng = 12345;
static double urand(void) {   // uniform (0, 1)
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return ((double)((g_rng * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;
}
static double nrand(void) { return sqrt(-2.0 * log(urand())) * cos(6.283185307179586 * urand()); }

static void test_ensembles(TestState *ts) {
    printf("ensembles of 3 networks, 4 images, 3 classes\n");
    const double tie[3] = {0.4, 0.4, 0.2};
    T_CHECK(ts, metric_argmax(tie, 3) == 0, "argmax tie goes to the lowest class");
    // probs (M=3, n=4, C=3)
    const float probs[3 * 4 * 3] = {
        // network 0 predicts 0, 1, 2, 0
        0.7f, 0.2f, 0.1f,  0.1f, 0.8f, 0.1f,  0.2f, 0.2f, 0.6f,  0.5f, 0.3f, 0.2f,
        // network 1 predicts 0, 2, 2, 1
        0.6f, 0.3f, 0.1f,  0.1f, 0.3f, 0.6f,  0.1f, 0.1f, 0.8f,  0.2f, 0.7f, 0.1f,
        // network 2 predicts 1, 1, 0, 2
        0.3f, 0.6f, 0.1f,  0.2f, 0.7f, 0.1f,  0.5f, 0.4f, 0.1f,  0.1f, 0.3f, 0.6f,
    };
    const uint8_t y[4] = {0, 1, 2, 2};
    int votes[4 * 3] = {0}, pred[4];
    for (int m = 0; m < 3; m++)
        for (int i = 0; i < 4; i++) votes[i * 3 + metric_argmax_f(probs + (m * 4 + i) * 3, 3)]++;
    metric_majority_vote(votes, 4, 3, pred);
    // votes: img0 {2,1,0} -> 0; img1 {0,2,1} -> 1; img2 {1,0,2} -> 2; img3 {1,1,1} tie -> 0
    T_CHECK(ts, pred[0] == 0 && pred[1] == 1 && pred[2] == 2 && pred[3] == 0,
            "majority vote predictions %d %d %d %d (expected 0 1 2 0, the 3-way tie -> 0)", pred[0],
            pred[1], pred[2], pred[3]);
    double acc = metric_accuracy(pred, y, 4);
    T_CHECK(ts, acc == 0.75, "majority-vote accuracy %.4f (expected 3/4)", acc);
    double mean[12];
    metric_mean_prob(probs, 3, 4, 3, mean);
    // img3 mean = (0.8/3, 1.3/3, 0.9/3) -> class 1 (wrong; label 2)
    T_CHECK(ts, t_close(mean[9], 0.8 / 3, 1e-7, 0) && t_close(mean[10], 1.3 / 3, 1e-7, 0) &&
            t_close(mean[11], 0.9 / 3, 1e-7, 0), "mean probability of image 3: %.6f %.6f %.6f", mean[9],
            mean[10], mean[11]);
    for (int i = 0; i < 4; i++) pred[i] = metric_argmax(mean + i * 3, 3);
    acc = metric_accuracy(pred, y, 4);
    T_CHECK(ts, acc == 0.75, "mean-probability accuracy %.4f (expected 3/4)", acc);
    // NLL of the mean: p_y = 1.6/3, 1.8/3, 1.5/3, 0.9/3
    const double nll_want = -(log(1.6 / 3) + log(1.8 / 3) + log(1.5 / 3) + log(0.9 / 3)) / 4;
    double nll = metric_nll(mean, y, 4, 3);
    T_CHECK(ts, t_close(nll, nll_want, 1e-7, 0), "NLL of the mean probability %.8f (hand: %.8f)", nll, nll_want);
}

static void test_calibration(TestState *ts) {
    printf("NLL, Brier, ECE on 4 two-class predictions\n");
    // confidences 0.9 (correct), 0.75 (wrong), 0.7 (correct), 0.62 (correct): bins 13, 11, 10, 9
    const double p[8] = {0.9, 0.1, 0.75, 0.25, 0.3, 0.7, 0.62, 0.38};
    const uint8_t y[4] = {0, 1, 1, 0};
    double nll = metric_nll(p, y, 4, 2);
    const double nll_want = -(log(0.9) + log(0.25) + log(0.7) + log(0.62)) / 4;
    T_CHECK(ts, t_close(nll, nll_want, 1e-12, 0), "NLL %.10f (hand %.10f)", nll, nll_want);
    // Brier: 2*0.1^2, 2*0.75^2, 2*0.3^2, 2*0.38^2
    const double brier_want = (0.02 + 1.125 + 0.18 + 0.2888) / 4;
    double brier = metric_brier(p, y, 4, 2);
    T_CHECK(ts, t_close(brier, brier_want, 1e-12, 0), "Brier %.10f (hand %.10f)", brier, brier_want);
    double cnt[15] = {0}, conf[15] = {0}, ok[15] = {0};
    double ece = metric_ece(p, y, 4, 2, 15, cnt, conf, ok);
    const double ece_want = (0.1 + 0.75 + 0.3 + 0.38) / 4;
    T_CHECK(ts, t_close(ece, ece_want, 1e-12, 0), "ECE %.10f (hand %.10f)", ece, ece_want);
    T_CHECK(ts, cnt[13] == 1 && cnt[11] == 1 && cnt[10] == 1 && cnt[9] == 1 && ok[11] == 0 && ok[13] == 1,
            "reliability bins 9, 10, 11, 13 hold one sample each; bin 11's is wrong");
    // two samples in one bin (0.9 and 0.92 -> bin 13), one right one wrong, plus a perfect 1.0
    const double q[6] = {0.9, 0.1, 0.08, 0.92, 1.0, 0.0};
    const uint8_t z[3] = {0, 0, 0};
    ece = metric_ece(q, z, 3, 2, 15, NULL, NULL, NULL);
    const double want2 = 2.0 / 3 * fabs(0.5 - 0.91) + 1.0 / 3 * 0.0;
    T_CHECK(ts, t_close(ece, want2, 1e-12, 0), "ECE with a shared bin %.10f (hand %.10f)", ece, want2);
    const double perfect[4] = {1.0, 0.0, 0.0, 1.0};
    const uint8_t yp[2] = {0, 1};
    T_CHECK(ts, metric_brier(perfect, yp, 2, 2) == 0.0 && metric_ece(perfect, yp, 2, 2, 15, NULL, NULL, NULL) == 0.0,
            "a perfect, certain classifier has Brier 0 and ECE 0");
}

static void test_auroc(TestState *ts) {
    printf("AUROC\n");
    const double s1[6] = {0.9, 0.8, 0.7, 0.6, 0.55, 0.5};
    const int l1[6] = {1, 1, 0, 1, 0, 0};
    double a = metric_auroc(s1, l1, 6);
    T_CHECK(ts, t_close(a, 8.0 / 9.0, 1e-12, 0), "no ties: %.6f (hand: 8/9 = %.6f)", a, 8.0 / 9.0);
    const double s2[4] = {0.5, 0.8, 0.2, 0.5};
    const int l2[4] = {1, 1, 0, 0};
    a = metric_auroc(s2, l2, 4);
    T_CHECK(ts, t_close(a, 0.875, 1e-12, 0), "a positive tied with a negative counts 1/2: %.6f (hand 3.5/4)", a);
    const double s3[2] = {0.3, 0.3};
    const int l3[2] = {0, 1};
    a = metric_auroc(s3, l3, 2);
    T_CHECK(ts, a == 0.5, "all tied: %.3f (0.5)", a);
    const int l4[2] = {1, 1};
    T_CHECK(ts, isnan(metric_auroc(s3, l4, 2)), "no negatives: NaN");
    const double s5[4] = {0.1, 0.2, 0.3, 0.4};
    const int l5[4] = {1, 1, 0, 0};
    T_CHECK(ts, metric_auroc(s5, l5, 4) == 0.0, "perfectly inverted score: 0");
}

static void test_histogram(TestState *ts) {
    printf("histogram\n");
    const double x[6] = {0.0, 0.1, 0.25, 0.5, 1.0, 1.5};
    int64_t c[4];
    double e[5];
    metric_histogram(x, 6, 0.0, 1.0, 4, c, e);
    T_CHECK(ts, c[0] == 2 && c[1] == 1 && c[2] == 1 && c[3] == 2 && e[0] == 0.0 && e[2] == 0.5 && e[4] == 1.0,
            "counts %lld %lld %lld %lld (expected 2 1 1 2: 1.0 and the clamped 1.5 in the last bin)",
            (long long)c[0], (long long)c[1], (long long)c[2], (long long)c[3]);
}

static double max_residual(const double *A, int m, const double *evals, const double *vecs, int k) {
    double worst = 0.0;
    for (int i = 0; i < k; i++) {
        double r2 = 0.0;
        for (int r = 0; r < m; r++) {
            double s = 0.0;
            for (int c = 0; c < m; c++) s += A[r * m + c] * vecs[i * m + c];
            s -= evals[i] * vecs[i * m + r];
            r2 += s * s;
        }
        if (sqrt(r2) > worst) worst = sqrt(r2);
    }
    return worst;
}

static void test_eigen(TestState *ts) {
    printf("symmetric eigenproblems\n");
    double A[9] = {2, 1, 0, 1, 2, 0, 0, 0, 5}, ev[3], V[9];
    sym_eig_jacobi(A, 3, ev, V);
    T_CHECK(ts, t_close(ev[0], 5, 1e-12, 0) && t_close(ev[1], 3, 1e-12, 0) && t_close(ev[2], 1, 1e-12, 0),
            "3x3 eigenvalues %.12f %.12f %.12f (5, 3, 1)", ev[0], ev[1], ev[2]);
    T_CHECK(ts, t_close(fabs(V[2]), 1, 1e-12, 0) && t_close(fabs(V[3]), sqrt(0.5), 1e-12, 0) &&
            t_close(V[3], V[4], 1e-12, 0) && t_close(V[6], -V[7], 1e-12, 0),
            "eigenvectors (0,0,1), (1,1,0)/sqrt2, (1,-1,0)/sqrt2");
    enum { M = 40 };
    static double R[M * M], R0[M * M], e2[M], V2[M * M];
    for (int i = 0; i < M; i++)
        for (int j = 0; j <= i; j++) R[i * M + j] = R[j * M + i] = nrand();
    memcpy(R0, R, sizeof(R));
    sym_eig_jacobi(R, M, e2, V2);
    double res = max_residual(R0, M, e2, V2, M), orth = 0.0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < M; j++) {
            double d = 0.0;
            for (int c = 0; c < M; c++) d += V2[i * M + c] * V2[j * M + c];
            orth = fmax(orth, fabs(d - (i == j)));
        }
    int sorted = 1;
    for (int i = 1; i < M; i++) sorted &= e2[i] <= e2[i - 1];
    T_CHECK(ts, res < 1e-10 && orth < 1e-12 && sorted, "random 40x40: max |Av - lv| %.2e, orthonormality %.2e, sorted", res, orth);

    // 300x300 PSD with a decaying spectrum: subspace iteration vs Jacobi
    enum { N = 300, K = 6 };
    double *B = malloc(sizeof(double) * N * N), *S = calloc(N * N, sizeof(double));
    for (int i = 0; i < N * N; i++) B[i] = nrand();
    for (int i = 0; i < N; i++) {   // S = B^T diag(w) B with w_r = 0.9^r
        for (int j = 0; j < N; j++) {
            double s = 0.0;
            for (int r = 0; r < N; r++) s += B[r * N + i] * B[r * N + j] * pow(0.9, r);
            S[i * N + j] = s;
        }
    }
    double *S2 = malloc(sizeof(double) * N * N), *ej = malloc(sizeof(double) * N), *Vj = malloc(sizeof(double) * N * N);
    memcpy(S2, S, sizeof(double) * N * N);
    sym_eig_jacobi(S2, N, ej, Vj);
    double et[K], Vt[K * N], rr;
    int it = sym_eig_top(S, N, K, et, Vt, 2000, 1e-10, &rr);
    double worst_val = 0.0, worst_vec = 0.0;
    for (int i = 0; i < K; i++) {
        worst_val = fmax(worst_val, fabs(et[i] - ej[i]) / ej[0]);
        double d = 0.0;
        for (int c = 0; c < N; c++) d += Vt[i * N + c] * Vj[i * N + c];
        worst_vec = fmax(worst_vec, 1.0 - fabs(d));
    }
    T_CHECK(ts, it > 0 && worst_val < 1e-10 && worst_vec < 1e-8,
            "sym_eig_top 300x300, top %d: %d iterations, eigenvalues within %.1e, vectors 1-|cos| %.1e of Jacobi",
            K, it, worst_val, worst_vec);
    free(B); free(S); free(S2); free(ej); free(Vj);
}

// n samples in d dimensions: offset + sum_i a_i s_i u_i + noise, u_i orthonormal (random) and the
// scores s_i exactly centered, uncorrelated and of unit sample variance over the n samples, so the
// planted axes and variances a_i^2 are the exact answer up to the small noise.
static void pca_case(TestState *ts, int n, int d, const char *label) {
    const int k = 3;
    const double a[3] = {3.0, 2.0, 1.0}, noise = 0.01;
    double *U = malloc(sizeof(double) * k * d), *Sc = malloc(sizeof(double) * k * n);
    for (int i = 0; i < k * d; i++) U[i] = nrand();
    orthonormalize_rows(U, k, d);
    for (int i = 0; i < k; i++) {   // rows of Sc: centered, then orthonormal, scaled to variance 1
        double m = 0.0;
        for (int r = 0; r < n; r++) m += (Sc[i * n + r] = nrand());
        for (int r = 0; r < n; r++) Sc[i * n + r] -= m / n;
    }
    orthonormalize_rows(Sc, k, n);
    for (int i = 0; i < k * n; i++) Sc[i] *= sqrt((double)(n - 1));
    float *X = malloc(sizeof(float) * n * d);
    for (int r = 0; r < n; r++) {
        for (int j = 0; j < d; j++) {
            double v = 0.5 + 0.01 * j + noise * nrand();
            for (int i = 0; i < k; i++) v += a[i] * Sc[i * n + r] * U[i * d + j];
            X[(size_t)r * d + j] = (float)v;
        }
    }
    free(Sc);
    Pca p;
    int rc = pca_fit(X, n, d, 4, &p);
    T_CHECK(ts, rc == 0 && p.gram == (d > n), "%s: n=%d, d=%d solved through the %s", label, n, d,
            p.gram ? "Gram matrix" : "covariance");
    double worst_dot = 1.0, worst_var = 0.0;
    for (int i = 0; i < k; i++) {
        double dot = 0.0;
        for (int j = 0; j < d; j++) dot += p.components[i * d + j] * U[i * d + j];
        worst_dot = fmin(worst_dot, fabs(dot));
        worst_var = fmax(worst_var, fabs(p.variance[i] / (a[i] * a[i]) - 1.0));
    }
    // the noise tilts an axis by a squared angle of about noise^2 d / (n a^2): allow twice that
    const double tilt = fmax(1e-5, 2.0 * noise * noise * d / n);
    T_CHECK(ts, 1.0 - worst_dot < tilt, "%s: |cos(component, planted axis)| >= %.6f for the 3 planted axes "
            "(bound 1 - %.1e)", label, worst_dot, tilt);
    T_CHECK(ts, worst_var < 0.005, "%s: explained variances %.3f %.3f %.3f (planted 9 4 1), worst rel. err %.3f",
            label, p.variance[0], p.variance[1], p.variance[2], worst_var);
    T_CHECK(ts, p.variance[3] < 0.01 && t_close(p.ratio[0], 9.0 / 14, 0.01, 0) && p.ratio[0] + p.ratio[1] + p.ratio[2] > 0.9,
            "%s: 4th variance %.5f (noise), ratios %.3f %.3f %.3f", label, p.variance[3], p.ratio[0], p.ratio[1], p.ratio[2]);
    double perr = 0.0, merr = 0.0;
    for (int r = 0; r < n; r += 7) {
        double pr = 0.0;
        for (int j = 0; j < d; j++) pr += (X[(size_t)r * d + j] - p.mean[j]) * p.components[j];
        perr = fmax(perr, fabs(pr - p.proj[r * 4]));
    }
    for (int j = 0; j < d; j++) {
        double m = 0.0;
        for (int r = 0; r < n; r++) m += X[(size_t)r * d + j];
        merr = fmax(merr, fabs(m / n - p.mean[j]));
    }
    T_CHECK(ts, perr < 1e-9 && merr < 1e-9 && p.iterations != 0, "%s: projections and mean consistent (%.1e, %.1e), %d iterations, residual %.1e",
            label, perr, merr, p.iterations, p.residual);
    int sign_ok = 1;
    for (int i = 0; i < 4; i++) {
        int amax = 0;
        for (int j = 1; j < d; j++) if (fabs(p.components[i * d + j]) > fabs(p.components[i * d + amax])) amax = j;
        sign_ok &= p.components[i * d + amax] > 0;
    }
    T_CHECK(ts, sign_ok, "%s: sign convention (largest entry positive)", label);
    pca_free(&p);
    free(U);
    free(X);
}

static void test_pca(TestState *ts) {
    printf("PCA of synthetic data with planted components\n");
    pca_case(ts, 2000, 30, "covariance, Jacobi (d <= 64)");
    pca_case(ts, 1500, 120, "covariance, subspace iteration");
    pca_case(ts, 150, 600, "Gram (d > n)");
    Pca p;
    float X[4] = {1, 2, 3, 4};
    T_CHECK(ts, pca_fit(X, 1, 4, 1, &p) == -1 && pca_fit(X, 2, 2, 3, &p) == -1,
            "bad sizes are refused (n < 2, k > min(n, d))");
}

int main(void) {
    TestState ts = {0, 0};
    test_ensembles(&ts);
    test_calibration(&ts);
    test_auroc(&ts);
    test_histogram(&ts);
    test_eigen(&ts);
    test_pca(&ts);
    return test_summary(&ts, "test_metrics");
}
