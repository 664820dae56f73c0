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
//   - hyperanalyze diversity / shift / calibrate (analysis/uncert.c): disagreement and KL against
//     hand values (identical networks: exactly 0), pair order and normalized disagreement; ECE of a
//     perfectly calibrated synthetic table is 0 (and 0.4 for an overconfident one); the
//     temperature fit recovers T = 2 and T = 0.5 from labels drawn from softmax(z / T); calib_compute
//     on a tempered synthetic problem; shift_point by hand; image rotation: 0 and 4 x 90 degrees are
//     the identity bit for bit, a single pixel lands where expected (90, 180, -90), bilinear weights
//     at 45 degrees, zero fill
// The test program includes analysis/metrics.c directly: test binaries link the library in src/
// only, and metrics.c is part of hyperanalyze.
#include "../analysis/metrics.c"
#include "../analysis/uncert.c"

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

// logits = log p of a probability table (n, C)
static void log_table(const double *p, size_t n, float *z) {
    for (size_t j = 0; j < n; j++) z[j] = (float)log(p[j]);
}

static void test_diversity(TestState *ts) {
    printf("diversity: disagreement and KL of 3 networks on 4 images, 3 classes\n");
    // network 0 and 1 identical; network 2 differs on images 1 and 3
    const double p[3 * 4 * 3] = {
        0.7, 0.2, 0.1,  0.1, 0.8, 0.1,  0.2, 0.2, 0.6,  0.5, 0.3, 0.2,
        0.7, 0.2, 0.1,  0.1, 0.8, 0.1,  0.2, 0.2, 0.6,  0.5, 0.3, 0.2,
        0.6, 0.3, 0.1,  0.1, 0.3, 0.6,  0.1, 0.1, 0.8,  0.2, 0.7, 0.1,
    };
    const uint8_t y[4] = {0, 1, 2, 1};
    float z[36];
    log_table(p, 36, z);
    T_CHECK(ts, metric_disagreement_logits(z, z + 12, 4, 3) == 0.0 && metric_mean_kl_logits(z, z + 12, 4, 3) == 0.0,
            "identical networks: disagreement 0 and KL 0 exactly");
    double kl02 = 0.0, kl20 = 0.0;
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++) {
            const double a = p[i * 3 + c], b = p[24 + i * 3 + c];
            kl02 += a * log(a / b) / 4;
            kl20 += b * log(b / a) / 4;
        }
    const double k = metric_mean_kl_logits(z, z + 24, 4, 3), kr = metric_mean_kl_logits(z + 24, z, 4, 3);
    T_CHECK(ts, t_close(k, kl02, 1e-6, 0) && t_close(kr, kl20, 1e-6, 0) && fabs(k - kr) > 1e-3,
            "KL(p0||p2) %.7f (hand %.7f), KL(p2||p0) %.7f (hand %.7f): not symmetric", k, kl02, kr, kl20);
    const double dis = metric_disagreement_logits(z, z + 24, 4, 3);
    T_CHECK(ts, dis == 0.5, "disagreement of networks 0 and 2: %.3f (hand: images 1 and 3 of 4 = 0.5)", dis);
    DiversityIn in = { z, y, 3, 4, 3 };
    DiversityOut o;
    diversity_compute(&in, &o);
    // errors: networks 0, 1 predict 0 1 2 0 (image 3 wrong: 1/4); network 2 predicts 0 2 2 1 (image 1 wrong)
    T_CHECK(ts, o.P == 3 && o.pair_i[0] == 0 && o.pair_j[0] == 1 && o.pair_i[1] == 0 && o.pair_j[1] == 2 &&
            o.pair_i[2] == 1 && o.pair_j[2] == 2, "pairs in order (0,1) (0,2) (1,2)");
    T_CHECK(ts, o.error[0] == 0.25 && o.error[1] == 0.25 && o.error[2] == 0.25, "errors %.3f %.3f %.3f (hand 0.25 each)",
            o.error[0], o.error[1], o.error[2]);
    T_CHECK(ts, o.disagreement[0] == 0 && o.kl_sym[0] == 0 && o.disagreement[1] == 0.5 && o.disagreement[2] == 0.5,
            "pair disagreements %.3f %.3f %.3f (hand 0, 0.5, 0.5)", o.disagreement[0], o.disagreement[1],
            o.disagreement[2]);
    T_CHECK(ts, t_close(o.kl_sym[1], 0.5 * (kl02 + kl20), 1e-6, 0) && t_close(o.kl_ij[2], kl02, 1e-6, 0) &&
            t_close(o.kl_ji[2], kl20, 1e-6, 0), "kl_sym = (kl_ij + kl_ji)/2 = %.7f", o.kl_sym[1]);
    T_CHECK(ts, o.norm_disagreement[1] == 2.0 && o.norm_disagreement[0] == 0.0 && t_close(o.ndis_mean, 4.0 / 3, 1e-12, 0),
            "normalized disagreement 0.5 / 0.25 = %.3f; mean over pairs %.4f (hand 4/3)", o.norm_disagreement[1],
            o.ndis_mean);
    T_CHECK(ts, t_close(o.dis_mean, 1.0 / 3, 1e-12, 0) && t_close(o.err_mean, 0.25, 1e-12, 0),
            "mean disagreement %.4f (1/3), mean error %.4f", o.dis_mean, o.err_mean);
    diversity_free(&o);
    // a pair of perfect networks: normalized disagreement undefined (NaN), left out of the mean
    const uint8_t y0[4] = {0, 1, 2, 0};
    DiversityIn in0 = { z, y0, 2, 4, 3 };
    diversity_compute(&in0, &o);
    T_CHECK(ts, o.error[0] == 0 && isnan(o.norm_disagreement[0]) && o.norm_pairs == 0,
            "two perfect networks: normalized disagreement NaN, %lld pairs in its mean", o.norm_pairs);
    diversity_free(&o);
}

static void test_ece_calibrated(TestState *ts) {
    printf("ECE of synthetic tables\n");
    // confidences 0.6, 0.7, 0.8, 0.9, 1.0, 10 images each, exactly 10 q of them right: calibrated
    enum { L = 5, PER = 10, N = L * PER };
    double p[N * 2];
    uint8_t y[N];
    for (int l = 0; l < L; l++)
        for (int k = 0; k < PER; k++) {
            const int i = l * PER + k;
            const double q = 0.6 + 0.1 * l;
            p[2 * i] = q;
            p[2 * i + 1] = 1 - q;
            y[i] = k < (int)lround(q * PER) ? 0 : 1;
        }
    const double ece = metric_ece(p, y, N, 2, 15, NULL, NULL, NULL);
    T_CHECK(ts, fabs(ece) < 1e-12, "perfectly calibrated table: ECE %.2e (expected 0)", ece);
    float z[N * 2];
    double pz[N * 2];
    for (int j = 0; j < 2 * N; j++) z[j] = (float)log(p[j] > 0 ? p[j] : 1e-30);
    double sc[UQ_N_SCORES], rel[3 * 15] = {0};
    uq_ensemble_scores(z, 1, N, 2, y, 1.0, 15, sc, rel);
    double cnt = 0.0;
    for (int b = 0; b < 15; b++) cnt += rel[b];
    T_CHECK(ts, fabs(sc[UQ_ECE]) < 1e-6 && sc[UQ_ACC] == 0.8 && cnt == N,
            "the same through logits (uq_ensemble_scores): ECE %.2e, accuracy %.3f, bin counts sum to %.0f",
            sc[UQ_ECE], sc[UQ_ACC], cnt);
    metric_softmax_t(z, N, 2, 1.0, pz);
    T_CHECK(ts, t_close(pz[0], 0.6, 1e-7, 0) && t_close(pz[2 * N - 2], 1.0, 1e-7, 0), "softmax(log p) = p");
    // overconfident: every confidence 0.9, half right -> ECE 0.4
    for (int i = 0; i < N; i++) { p[2 * i] = 0.9; p[2 * i + 1] = 0.1; y[i] = i % 2; }
    const double e2 = metric_ece(p, y, N, 2, 15, NULL, NULL, NULL);
    T_CHECK(ts, t_close(e2, 0.4, 1e-12, 0), "confidence 0.9, half right: ECE %.6f (expected 0.4)", e2);
}

// n images, C classes: base logits z ~ N(0, 3^2), labels drawn from softmax(z / T0).
static void tempered_problem(int n, int C, double T0, float *z, uint8_t *y) {
    double *lp = XMALLOC_N((size_t)C, sizeof(double));
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < C; c++) z[(size_t)i * C + c] = (float)(3.0 * nrand());
        metric_log_softmax_t(z + (size_t)i * C, C, T0, lp);
        double u = urand(), acc = 0.0;
        int lab = C - 1;
        for (int c = 0; c < C; c++) { acc += exp(lp[c]); if (u < acc) { lab = c; break; } }
        y[i] = (uint8_t)lab;
    }
    free(lp);
}

static void test_temperature(TestState *ts) {
    printf("temperature fit on labels drawn from softmax(z / T0)\n");
    enum { N = 20000, C = 10 };
    float *z = XMALLOC_N((size_t)2 * N * C, sizeof(float));
    uint8_t *y = XMALLOC_N(N, 1);
    const double T0s[2] = {2.0, 0.5};
    for (int k = 0; k < 2; k++) {
        tempered_problem(N, C, T0s[k], z, y);
        double nll;
        const double T = uq_fit_temperature(z, 1, N, C, y, UQ_T_SINGLE, &nll);
        T_CHECK(ts, fabs(T / T0s[k] - 1) < 0.05, "T0 = %.2f: fitted T = %.4f (within 5%%; %d images)", T0s[k], T, N);
        const double lo = uq_nll_at(z, 1, N, C, y, T / 1.01, UQ_T_SINGLE), hi = uq_nll_at(z, 1, N, C, y, T * 1.01,
                                                                                         UQ_T_SINGLE);
        const double one = uq_nll_at(z, 1, N, C, y, 1.0, UQ_T_SINGLE);
        T_CHECK(ts, nll <= lo && nll <= hi && nll < one, "NLL at T %.6f <= at T/1.01 %.6f and T*1.01 %.6f, < at 1 %.6f",
                nll, lo, hi, one);
        const double Te = uq_fit_temperature(z, 1, N, C, y, UQ_T_ENSEMBLE, NULL);
        memcpy(z + (size_t)N * C, z, (size_t)N * C * sizeof(float));   // two identical members
        const double T2 = uq_fit_temperature(z, 2, N, C, y, UQ_T_ENSEMBLE, NULL);
        T_CHECK(ts, t_close(Te, T, 1e-6, 0) && t_close(T2, T, 1e-6, 0),
                "ensemble mode: one member %.6f, two identical members %.6f, = single mode", Te, T2);
    }
    free(z);
    free(y);
}

static void test_calib_compute(TestState *ts) {
    printf("calib_compute: 4 noisy copies of an overconfident network (labels from softmax(z / 2))\n");
    enum { NV = 4000, NT = 4000, C = 10, M = 4 };
    float *base_v = XMALLOC_N((size_t)NV * C, sizeof(float)), *base_t = XMALLOC_N((size_t)NT * C, sizeof(float));
    uint8_t yv[NV], yt[NT];
    tempered_problem(NV, C, 2.0, base_v, yv);
    tempered_problem(NT, C, 2.0, base_t, yt);
    float *lv = XMALLOC_N((size_t)M * NV * C, sizeof(float)), *lt = XMALLOC_N((size_t)M * NT * C, sizeof(float));
    for (int m = 0; m < M; m++) {   // members: the base logits plus small independent noise
        for (size_t j = 0; j < (size_t)NV * C; j++) lv[(size_t)m * NV * C + j] = base_v[j] + (float)(0.3 * nrand());
        for (size_t j = 0; j < (size_t)NT * C; j++) lt[(size_t)m * NT * C + j] = base_t[j] + (float)(0.3 * nrand());
    }
    const int64_t sizes[3] = {1, 2, 4};
    CalibIn in = { lv, yv, NV, lt, yt, NT, M, C, 15, sizes, 3 };
    CalibOut o;
    calib_compute(&in, &o);
    for (int si = 0; si < 3; si++) {
        const double *b = o.test + si * UQ_N_SCORES, *a = o.test + (3 + si) * UQ_N_SCORES;
        double cnt = 0.0;
        for (int bb = 0; bb < 15; bb++) cnt += o.rel[((size_t)3 + si) * 3 * 15 + bb];
        T_CHECK(ts, o.T[si] > 1.7 && o.T[si] < 2.4 && a[UQ_NLL] < b[UQ_NLL] && a[UQ_ECE] < b[UQ_ECE] &&
                o.val_nll[3 + si] <= o.val_nll[si] && cnt == NT,
                "size %lld: T %.3f (near 2), test NLL %.4f -> %.4f, ECE %.4f -> %.4f, val NLL %.4f -> %.4f, %.0f in bins",
                (long long)sizes[si], o.T[si], b[UQ_NLL], a[UQ_NLL], b[UQ_ECE], a[UQ_ECE], o.val_nll[si],
                o.val_nll[3 + si], cnt);
    }
    T_CHECK(ts, o.single_T > 1.7 && o.single_T < 2.4 && o.single_mean[1][UQ_NLL] < o.single_mean[0][UQ_NLL],
            "single networks: shared T %.3f, mean test NLL %.4f -> %.4f", o.single_T, o.single_mean[0][UQ_NLL],
            o.single_mean[1][UQ_NLL]);
    calib_free(&o);
    free(base_v); free(base_t); free(lv); free(lt);
}

static void test_shift_point(TestState *ts) {
    printf("shift_point: 2 networks on 2 images\n");
    // network 0 right on both images, network 1 wrong on image 1
    const double p[2 * 2 * 2] = {0.8, 0.2, 0.3, 0.7,   0.6, 0.4, 0.9, 0.1};
    const uint8_t y[2] = {0, 1};
    float z[8];
    log_table(p, 8, z);
    ShiftPoint sp;
    shift_point(z, 2, 2, 2, y, 15, &sp);
    const double nll0 = -(log(0.8) + log(0.7)) / 2, nll1 = -(log(0.6) + log(0.1)) / 2;
    const double ens_nll = -(log(0.7) + log(0.4)) / 2;   // mean probabilities (0.7, 0.3), (0.6, 0.4)
    T_CHECK(ts, sp.single_mean[UQ_ACC] == 0.75 && sp.single_std[UQ_ACC] == 0.25,
            "single accuracy mean %.3f std %.3f (hand 0.75, 0.25)", sp.single_mean[UQ_ACC], sp.single_std[UQ_ACC]);
    T_CHECK(ts, t_close(sp.single_mean[UQ_NLL], (nll0 + nll1) / 2, 1e-6, 0) &&
            t_close(sp.single_std[UQ_NLL], fabs(nll0 - nll1) / 2, 1e-6, 0),
            "single NLL mean %.6f std %.6f (hand %.6f, %.6f)", sp.single_mean[UQ_NLL], sp.single_std[UQ_NLL],
            (nll0 + nll1) / 2, fabs(nll0 - nll1) / 2);
    // ensemble: image 0 conf 0.7 right, image 1 conf 0.6 wrong (predicts 0): bins 10 and 9
    T_CHECK(ts, sp.ensemble[UQ_ACC] == 0.5 && t_close(sp.ensemble[UQ_NLL], ens_nll, 1e-6, 0) &&
            t_close(sp.ensemble[UQ_ECE], (0.3 + 0.6) / 2, 1e-6, 0),
            "ensemble accuracy %.3f, NLL %.6f (hand %.6f), ECE %.6f (hand 0.45)", sp.ensemble[UQ_ACC],
            sp.ensemble[UQ_NLL], ens_nll, sp.ensemble[UQ_ECE]);
}

static void test_rotation(TestState *ts) {
    printf("image rotation (bilinear, about the centre, zero fill)\n");
    enum { H = 28, W = 28, P = H * W };
    float img[P], a[P], b[P];
    for (int j = 0; j < P; j++) img[j] = (float)urand();
    image_rotate(img, H, W, 1, 0.0, a);
    T_CHECK(ts, !memcmp(a, img, sizeof(img)), "0 degrees is the identity, bit for bit");
    image_rotate(img, H, W, 1, 360.0, a);
    T_CHECK(ts, !memcmp(a, img, sizeof(img)), "360 degrees is the identity, bit for bit");
    memcpy(a, img, sizeof(img));
    for (int k = 0; k < 4; k++) { image_rotate(a, H, W, 1, 90.0, b); memcpy(a, b, sizeof(b)); }
    T_CHECK(ts, !memcmp(a, img, sizeof(img)), "four rotations by 90 degrees are the identity, bit for bit");
    image_rotate(img, H, W, 1, 90.0, a);
    for (int k = 0; k < 3; k++) { image_rotate(a, H, W, 1, -90.0, b); memcpy(a, b, sizeof(b)); }
    image_rotate(img, H, W, 1, 180.0, b);
    T_CHECK(ts, !memcmp(a, b, sizeof(b)), "90 then 3 x -90 degrees equals 180 degrees, bit for bit");
    // one pixel at (x 20, y 13): counterclockwise 90 degrees moves right of centre to above it:
    // (dx, dy) = (6.5, -0.5) -> (dy, -dx) = (-0.5, -6.5) -> (x 13, y 7)
    const int xs[3] = {13, 7, 14}, ys[3] = {7, 14, 20};
    const double degs[3] = {90.0, 180.0, -90.0};
    memset(img, 0, sizeof(img));
    img[13 * W + 20] = 1.0f;
    for (int k = 0; k < 3; k++) {
        image_rotate(img, H, W, 1, degs[k], a);
        double sum = 0.0;
        for (int j = 0; j < P; j++) sum += a[j];
        T_CHECK(ts, a[ys[k] * W + xs[k]] == 1.0f && sum == 1.0,
                "pixel (x 20, y 13) rotated by %g degrees lands on (x %d, y %d) and nowhere else", degs[k], xs[k],
                ys[k]);
    }
    // 5 x 5, one pixel at the centre (2, 2), 45 degrees: output (x 3, y 2) reads the source point
    // (2 + cos 45, 2 + sin 45), whose bilinear weight on (2, 2) is (1 - cos 45)^2
    float c5[25] = {0}, o5[25];
    c5[2 * 5 + 2] = 1.0f;
    image_rotate(c5, 5, 5, 1, 45.0, o5);
    const double w45 = (1 - sqrt(0.5)) * (1 - sqrt(0.5));
    T_CHECK(ts, o5[12] == 1.0f && t_close(o5[2 * 5 + 3], w45, 1e-7, 0) && o5[0] == 0.0f,
            "45 degrees on 5x5: centre stays 1, (x 3, y 2) = %.7f (hand (1 - cos 45)^2 = %.7f), corner 0", o5[13], w45);
    // a constant image at 30 degrees: the interior stays 1, corners are filled with 0
    for (int j = 0; j < P; j++) img[j] = 1.0f;
    image_rotate(img, H, W, 1, 30.0, a);
    T_CHECK(ts, t_close(a[14 * W + 14], 1.0, 1e-6, 0) && t_close(a[5 * W + 10], 1.0, 1e-6, 0) && a[0] == 0.0f &&
            a[P - 1] == 0.0f, "constant image at 30 degrees: interior %.7f, corners %.1f %.1f", a[14 * W + 14], a[0],
            a[P - 1]);
    // channels are rotated alike: 2 channels, channel 1 = 2 x channel 0
    float m2[2 * P], r2[2 * P];
    for (int j = 0; j < P; j++) { m2[2 * j] = (float)urand(); m2[2 * j + 1] = 2 * m2[2 * j]; }
    image_rotate(m2, H, W, 2, 37.0, r2);
    int same = 1;
    for (int j = 0; j < P; j++) same &= t_close(r2[2 * j + 1], 2 * r2[2 * j], 1e-6, 1e-6);
    T_CHECK(ts, same, "2 channels at 37 degrees: channel 1 stays twice channel 0");
}

int main(void) {
    TestState ts = {0, 0};
    test_ensembles(&ts);
    test_calibration(&ts);
    test_auroc(&ts);
    test_histogram(&ts);
    test_eigen(&ts);
    test_pca(&ts);
    test_diversity(&ts);
    test_ece_calibrated(&ts);
    test_temperature(&ts);
    test_calib_compute(&ts);
    test_shift_point(&ts);
    test_rotation(&ts);
    return test_summary(&ts, "test_metrics");
}
