// metrics.c: see metrics.h. Everything here is a pure function of its arguments (an allocation
// failure is fatal, through XMALLOC_N/XCALLOC).
#include "metrics.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

int metric_argmax(const double *p, int C) {
    int a = 0;
    for (int c = 1; c < C; c++) if (p[c] > p[a]) a = c;
    return a;
}

int metric_argmax_f(const float *p, int C) {
    int a = 0;
    for (int c = 1; c < C; c++) if (p[c] > p[a]) a = c;
    return a;
}

double metric_accuracy(const int *pred, const uint8_t *labels, int n) {
    if (n <= 0) return NAN;
    long long k = 0;
    for (int i = 0; i < n; i++) k += pred[i] == labels[i];
    return (double)k / n;
}

void metric_majority_vote(const int *votes, int n, int C, int *pred) {
    for (int i = 0; i < n; i++) {
        const int *v = votes + (size_t)i * C;
        int a = 0;
        for (int c = 1; c < C; c++) if (v[c] > v[a]) a = c;
        pred[i] = a;
    }
}

void metric_mean_prob(const float *probs, int M, int n, int C, double *mean) {
    const size_t nc = (size_t)n * C;
    memset(mean, 0, nc * sizeof(double));
    for (int m = 0; m < M; m++)
        for (size_t j = 0; j < nc; j++) mean[j] += probs[(size_t)m * nc + j];
    for (size_t j = 0; j < nc; j++) mean[j] /= M;
}

double metric_nll(const double *p, const uint8_t *labels, int n, int C) {
    if (n <= 0) return NAN;
    double s = 0.0;
    for (int i = 0; i < n; i++) s -= log(p[(size_t)i * C + labels[i]] + 1e-30);
    return s / n;
}

double metric_brier(const double *p, const uint8_t *labels, int n, int C) {
    if (n <= 0) return NAN;
    double s = 0.0;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < C; c++) {
            const double d = p[(size_t)i * C + c] - (c == labels[i] ? 1.0 : 0.0);
            s += d * d;
        }
    return s / n;
}

// Bin of a confidence in [0, 1]: (b/bins, (b+1)/bins], with 0 in bin 0.
static int conf_bin(double conf, int bins) {
    int b = (int)ceil(conf * bins) - 1;
    if (b < 0) b = 0;
    if (b >= bins) b = bins - 1;
    return b;
}

double metric_ece(const double *p, const uint8_t *labels, int n, int C, int bins, double *count,
                  double *conf_sum, double *correct_sum) {
    if (n <= 0 || bins <= 0) return NAN;
    double *cnt = XCALLOC((size_t)bins * 3, sizeof(double));
    double *cs = cnt + bins, *ok = cnt + 2 * bins;
    for (int i = 0; i < n; i++) {
        const double *pi = p + (size_t)i * C;
        const int a = metric_argmax(pi, C);
        const int b = conf_bin(pi[a], bins);
        cnt[b] += 1.0;
        cs[b] += pi[a];
        ok[b] += a == labels[i];
    }
    double ece = 0.0;
    for (int b = 0; b < bins; b++) {
        if (cnt[b] > 0) ece += cnt[b] / n * fabs(ok[b] / cnt[b] - cs[b] / cnt[b]);
        if (count) count[b] += cnt[b];
        if (conf_sum) conf_sum[b] += cs[b];
        if (correct_sum) correct_sum[b] += ok[b];
    }
    free(cnt);
    return ece;
}

typedef struct { double s; int pos; } Scored;

static int cmp_scored(const void *a, const void *b) {
    const double x = ((const Scored *)a)->s, y = ((const Scored *)b)->s;
    return x < y ? -1 : x > y ? 1 : 0;
}

double metric_auroc(const double *score, const int *positive, int n) {
    if (n <= 0) return NAN;
    Scored *v = XMALLOC_N((size_t)n, sizeof(Scored));
    long long n1 = 0;
    for (int i = 0; i < n; i++) { v[i].s = score[i]; v[i].pos = positive[i] != 0; n1 += v[i].pos; }
    const long long n0 = n - n1;
    if (n1 == 0 || n0 == 0) { free(v); return NAN; }
    qsort(v, (size_t)n, sizeof(Scored), cmp_scored);
    double rank_sum = 0.0;   // sum of the (1-based, mid-) ranks of the positives
    for (int i = 0; i < n;) {
        int j = i;
        long long pos = 0;
        while (j < n && v[j].s == v[i].s) pos += v[j++].pos;
        const double mid = 0.5 * ((double)(i + 1) + (double)j);   // ranks i+1 .. j
        rank_sum += mid * pos;
        i = j;
    }
    free(v);
    return (rank_sum - 0.5 * (double)n1 * (double)(n1 + 1)) / ((double)n1 * (double)n0);
}

void metric_histogram(const double *x, int n, double lo, double hi, int bins, int64_t *counts,
                      double *edges) {
    memset(counts, 0, (size_t)bins * sizeof(int64_t));
    const double w = (hi - lo) / bins;
    for (int i = 0; i < n; i++) {
        int b = w > 0 ? (int)floor((x[i] - lo) / w) : 0;
        if (b < 0) b = 0;
        if (b >= bins) b = bins - 1;
        counts[b]++;
    }
    if (edges)
        for (int b = 0; b <= bins; b++) edges[b] = b == bins ? hi : lo + b * w;
}

void metric_mean_std(const double *x, int n, double *mean, double *std) {
    double s = 0.0, s2 = 0.0;
    for (int i = 0; i < n; i++) s += x[i];
    const double m = n > 0 ? s / n : NAN;
    for (int i = 0; i < n; i++) s2 += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = n > 0 ? sqrt(s2 / n) : NAN;
}

// ---------------------------------------------------------------------------------------------
// Eigenproblems

// Sorts eigenpairs by descending eigenvalue: evals (m), vecs rows (m, len).
static void sort_desc(double *evals, double *vecs, int m, int len) {
    double *tmp = XMALLOC_N((size_t)len, sizeof(double));
    for (int i = 0; i < m; i++) {   // selection sort: m is small where this is used
        int best = i;
        for (int j = i + 1; j < m; j++) if (evals[j] > evals[best]) best = j;
        if (best == i) continue;
        double t = evals[i]; evals[i] = evals[best]; evals[best] = t;
        memcpy(tmp, vecs + (size_t)i * len, (size_t)len * sizeof(double));
        memcpy(vecs + (size_t)i * len, vecs + (size_t)best * len, (size_t)len * sizeof(double));
        memcpy(vecs + (size_t)best * len, tmp, (size_t)len * sizeof(double));
    }
    free(tmp);
}

int sym_eig_jacobi(double *A, int m, double *evals, double *evecs) {
    // V accumulates the rotations: A_final = V^T A V, eigenvectors are V's columns.
    double *V = XCALLOC((size_t)m * m, sizeof(double));
    for (int i = 0; i < m; i++) V[(size_t)i * m + i] = 1.0;
    double norm = 0.0;
    for (size_t i = 0; i < (size_t)m * m; i++) norm += A[i] * A[i];
    int sweep = 0;
    for (; sweep < 100; sweep++) {
        double off = 0.0;
        for (int p = 0; p < m; p++)
            for (int q = p + 1; q < m; q++) off += A[(size_t)p * m + q] * A[(size_t)p * m + q];
        if (off <= 1e-30 * norm || off == 0.0) break;
        for (int p = 0; p < m; p++)
            for (int q = p + 1; q < m; q++) {
                const double apq = A[(size_t)p * m + q];
                if (apq == 0.0) continue;
                const double app = A[(size_t)p * m + p], aqq = A[(size_t)q * m + q];
                const double theta = (aqq - app) / (2.0 * apq);
                const double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                const double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < m; k++) {   // A <- A J (columns p, q)
                    const double akp = A[(size_t)k * m + p], akq = A[(size_t)k * m + q];
                    A[(size_t)k * m + p] = c * akp - s * akq;
                    A[(size_t)k * m + q] = s * akp + c * akq;
                }
                for (int k = 0; k < m; k++) {   // A <- J^T A (rows p, q)
                    const double apk = A[(size_t)p * m + k], aqk = A[(size_t)q * m + k];
                    A[(size_t)p * m + k] = c * apk - s * aqk;
                    A[(size_t)q * m + k] = s * apk + c * aqk;
                }
                A[(size_t)p * m + q] = A[(size_t)q * m + p] = 0.0;
                for (int k = 0; k < m; k++) {   // V <- V J
                    const double vkp = V[(size_t)k * m + p], vkq = V[(size_t)k * m + q];
                    V[(size_t)k * m + p] = c * vkp - s * vkq;
                    V[(size_t)k * m + q] = s * vkp + c * vkq;
                }
            }
    }
    for (int i = 0; i < m; i++) {
        evals[i] = A[(size_t)i * m + i];
        for (int k = 0; k < m; k++) evecs[(size_t)i * m + k] = V[(size_t)k * m + i];
    }
    free(V);
    sort_desc(evals, evecs, m, m);
    return sweep;
}

// Orthonormalizes the p rows of Q (p, m) in place (modified Gram-Schmidt, twice for stability).
// A row that becomes (numerically) zero is replaced by a unit vector orthogonal to the others.
static void orthonormalize_rows(double *Q, int p, int m) {
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < p; i++) {
            double *qi = Q + (size_t)i * m;
            for (int j = 0; j < i; j++) {
                const double *qj = Q + (size_t)j * m;
                const double d = cblas_ddot(m, qi, 1, qj, 1);
                cblas_daxpy(m, -d, qj, 1, qi, 1);
            }
            double nrm = cblas_dnrm2(m, qi, 1);
            if (nrm < 1e-300) {   // rank-deficient: take a coordinate vector, re-orthogonalize
                memset(qi, 0, (size_t)m * sizeof(double));
                qi[i % m] = 1.0;
                for (int j = 0; j < i; j++) {
                    const double *qj = Q + (size_t)j * m;
                    cblas_daxpy(m, -cblas_ddot(m, qi, 1, qj, 1), qj, 1, qi, 1);
                }
                nrm = cblas_dnrm2(m, qi, 1);
                if (nrm < 1e-300) nrm = 1.0;
            }
            cblas_dscal(m, 1.0 / nrm, qi, 1);
        }
}

int sym_eig_top(const double *S, int m, int k, double *evals, double *evecs, int max_iter, double tol,
                double *residual) {
    if (k < 1 || k > m) return 0;
    if (m <= 64) {
        double *A = XMALLOC_N((size_t)m * m, sizeof(double)), *ev = XMALLOC_N((size_t)m, sizeof(double));
        double *vec = XMALLOC_N((size_t)m * m, sizeof(double));
        memcpy(A, S, (size_t)m * m * sizeof(double));
        int sweeps = sym_eig_jacobi(A, m, ev, vec);
        memcpy(evals, ev, (size_t)k * sizeof(double));
        memcpy(evecs, vec, (size_t)k * m * sizeof(double));
        if (residual) *residual = 0.0;
        free(A); free(ev); free(vec);
        return sweeps > 0 ? sweeps : 1;
    }
    const int p = 2 * k + 10 < m ? 2 * k + 10 : m;
    double *Q = XMALLOC_N((size_t)p * m, sizeof(double)), *Z = XMALLOC_N((size_t)p * m, sizeof(double));
    double *T = XMALLOC_N((size_t)p * p, sizeof(double)), *U = XMALLOC_N((size_t)p * p, sizeof(double));
    double *th = XMALLOC_N((size_t)p, sizeof(double));
    double *RQ = XMALLOC_N((size_t)p * m, sizeof(double)), *RZ = XMALLOC_N((size_t)p * m, sizeof(double));
    uint64_t x = 0x9E3779B97F4A7C15ull;   // deterministic start (xorshift64*)
    for (size_t i = 0; i < (size_t)p * m; i++) {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
        Q[i] = (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0 - 0.5;
    }
    orthonormalize_rows(Q, p, m);
    int it = 0, converged = 0;
    double worst = INFINITY;
    for (it = 1; it <= max_iter; it++) {
        // Z = Q S (rows of Z are S applied to the rows of Q; S is symmetric)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p, m, m, 1.0, Q, m, S, m, 0.0, Z, m);
        // Rayleigh-Ritz: T = Q S Q^T, T = U^T diag(th) U
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p, p, m, 1.0, Z, m, Q, m, 0.0, T, p);
        for (int i = 0; i < p; i++)
            for (int j = i + 1; j < p; j++) T[(size_t)i * p + j] = T[(size_t)j * p + i] =
                0.5 * (T[(size_t)i * p + j] + T[(size_t)j * p + i]);
        sym_eig_jacobi(T, p, th, U);
        // Ritz vectors RQ = U Q and their images RZ = U Z = (S applied to RQ)
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p, m, p, 1.0, U, p, Q, m, 0.0, RQ, m);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, p, m, p, 1.0, U, p, Z, m, 0.0, RZ, m);
        worst = 0.0;
        const double scale = fabs(th[0]) > 0 ? fabs(th[0]) : 1.0;
        for (int i = 0; i < k; i++) {
            double r2 = 0.0;
            for (int j = 0; j < m; j++) {
                const double d = RZ[(size_t)i * m + j] - th[i] * RQ[(size_t)i * m + j];
                r2 += d * d;
            }
            const double r = sqrt(r2) / scale;
            if (r > worst) worst = r;
        }
        if (worst <= tol) { converged = 1; break; }
        memcpy(Q, RZ, (size_t)p * m * sizeof(double));
        orthonormalize_rows(Q, p, m);
    }
    if (!converged) it = max_iter;
    memcpy(evals, th, (size_t)k * sizeof(double));
    memcpy(evecs, RQ, (size_t)k * m * sizeof(double));
    for (int i = 0; i < k; i++) {   // re-normalize (RQ rows are unit up to rounding)
        double nrm = cblas_dnrm2(m, evecs + (size_t)i * m, 1);
        if (nrm > 0) cblas_dscal(m, 1.0 / nrm, evecs + (size_t)i * m, 1);
    }
    if (residual) *residual = worst;
    free(Q); free(Z); free(T); free(U); free(th); free(RQ); free(RZ);
    return converged ? it : -it;
}

// ---------------------------------------------------------------------------------------------
// PCA

// Rows [r0, r0 + nr) and columns [c0, c0 + nc) of X, centered, as doubles: B (nr, nc).
static void centered_block(const float *X, int d, const double *mean, int r0, int nr, int c0, int nc,
                           double *B) {
    for (int i = 0; i < nr; i++)
        for (int j = 0; j < nc; j++)
            B[(size_t)i * nc + j] = (double)X[(size_t)(r0 + i) * d + c0 + j] - mean[c0 + j];
}

int pca_fit(const float *X, int n, int d, int k, Pca *out) {
    memset(out, 0, sizeof(*out));
    if (n < 2 || d < 1 || k < 1 || k > (n < d ? n : d)) return -1;
    out->n = n; out->d = d; out->k = k;
    out->mean = XCALLOC((size_t)d, sizeof(double));
    out->components = XCALLOC((size_t)k * d, sizeof(double));
    out->variance = XCALLOC((size_t)k, sizeof(double));
    out->ratio = XCALLOC((size_t)k, sizeof(double));
    out->proj = XCALLOC((size_t)n * k, sizeof(double));
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++) out->mean[j] += X[(size_t)i * d + j];
    for (int j = 0; j < d; j++) out->mean[j] /= n;
    const double inv = 1.0 / (n - 1);
    out->gram = d > n;
    const int m = out->gram ? n : d;
    double *S = XCALLOC((size_t)m * m, sizeof(double));
    const int blk = 256;
    double total = 0.0;
    if (!out->gram) {   // covariance (d, d) = sum over row blocks of B^T B
        double *B = XMALLOC_N((size_t)blk * d, sizeof(double));
        for (int r0 = 0; r0 < n; r0 += blk) {
            const int nr = n - r0 < blk ? n - r0 : blk;
            centered_block(X, d, out->mean, r0, nr, 0, d, B);
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, nr, inv, B, d, 1.0, S, d);
        }
        free(B);
    } else {            // Gram (n, n) = sum over column blocks of B B^T
        double *B = XMALLOC_N((size_t)n * blk, sizeof(double));
        for (int c0 = 0; c0 < d; c0 += blk) {
            const int nc = d - c0 < blk ? d - c0 : blk;
            centered_block(X, d, out->mean, 0, n, c0, nc, B);
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, nc, inv, B, nc, 1.0, S, n);
        }
        free(B);
    }
    for (int i = 0; i < m; i++) {
        total += S[(size_t)i * m + i];
        for (int j = i + 1; j < m; j++) S[(size_t)j * m + i] = S[(size_t)i * m + j];
    }
    out->total_variance = total;
    double *vec = XMALLOC_N((size_t)k * m, sizeof(double));
    out->iterations = sym_eig_top(S, m, k, out->variance, vec, 3000, 1e-9, &out->residual);
    free(S);
    if (!out->gram) {
        memcpy(out->components, vec, (size_t)k * d * sizeof(double));
    } else {            // v_i = Xc^T u_i, normalized (|Xc^T u_i| = sqrt((n-1) lambda_i))
        double *B = XMALLOC_N((size_t)n * blk, sizeof(double));
        for (int c0 = 0; c0 < d; c0 += blk) {
            const int nc = d - c0 < blk ? d - c0 : blk;
            centered_block(X, d, out->mean, 0, n, c0, nc, B);
            for (int i = 0; i < k; i++)
                cblas_dgemv(CblasRowMajor, CblasTrans, n, nc, 1.0, B, nc, vec + (size_t)i * n, 1, 0.0,
                            out->components + (size_t)i * d + c0, 1);
        }
        free(B);
        for (int i = 0; i < k; i++) {
            double *v = out->components + (size_t)i * d;
            const double nrm = cblas_dnrm2(d, v, 1);
            if (nrm > 0 && out->variance[i] > 1e-300 * total) cblas_dscal(d, 1.0 / nrm, v, 1);
            else memset(v, 0, (size_t)d * sizeof(double));
        }
    }
    free(vec);
    for (int i = 0; i < k; i++) {   // sign convention: the entry of largest magnitude is positive
        double *v = out->components + (size_t)i * d;
        int a = 0;
        for (int j = 1; j < d; j++) if (fabs(v[j]) > fabs(v[a])) a = j;
        if (v[a] < 0) cblas_dscal(d, -1.0, v, 1);
        if (out->variance[i] < 0) out->variance[i] = 0.0;   // rounding of a zero eigenvalue
        out->ratio[i] = total > 0 ? out->variance[i] / total : 0.0;
    }
    double *B = XMALLOC_N((size_t)blk * d, sizeof(double));   // projections: Xc V^T, by row blocks
    for (int r0 = 0; r0 < n; r0 += blk) {
        const int nr = n - r0 < blk ? n - r0 : blk;
        centered_block(X, d, out->mean, r0, nr, 0, d, B);
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, k, d, 1.0, B, d, out->components, d, 0.0,
                    out->proj + (size_t)r0 * k, k);
    }
    free(B);
    return 0;
}

void pca_free(Pca *p) {
    free(p->mean); free(p->components); free(p->variance); free(p->ratio); free(p->proj);
    memset(p, 0, sizeof(*p));
}

// ---- Function-space diversity, temperature scaling, dataset shift ----

void metric_log_softmax_t(const float *z, int C, double T, double *out) {
    double mx = -INFINITY;
    for (int c = 0; c < C; c++) if (z[c] / T > mx) mx = z[c] / T;
    double sum = 0.0;
    for (int c = 0; c < C; c++) sum += exp(z[c] / T - mx);
    const double lse = mx + log(sum);
    for (int c = 0; c < C; c++) out[c] = z[c] / T - lse;
}

void metric_softmax_t(const float *logits, int n, int C, double T, double *probs) {
    for (int i = 0; i < n; i++) {
        double *p = probs + (size_t)i * C;
        metric_log_softmax_t(logits + (size_t)i * C, C, T, p);
        for (int c = 0; c < C; c++) p[c] = exp(p[c]);
    }
}

double metric_mean_kl_logits(const float *za, const float *zb, int n, int C) {
    if (n <= 0) return NAN;
    double *la = XMALLOC_N((size_t)2 * C, sizeof(double)), *lb = la + C;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        metric_log_softmax_t(za + (size_t)i * C, C, 1.0, la);
        metric_log_softmax_t(zb + (size_t)i * C, C, 1.0, lb);
        double kl = 0.0;
        for (int c = 0; c < C; c++) kl += exp(la[c]) * (la[c] - lb[c]);
        sum += kl;
    }
    free(la);
    return sum / n;
}

double metric_disagreement_logits(const float *za, const float *zb, int n, int C) {
    if (n <= 0) return NAN;
    long long k = 0;
    for (int i = 0; i < n; i++)
        k += metric_argmax_f(za + (size_t)i * C, C) != metric_argmax_f(zb + (size_t)i * C, C);
    return (double)k / n;
}

// cos and sin of an angle in degrees; exact for multiples of 90.
static void cos_sin_deg(double degrees, double *c, double *s) {
    const double r = fmod(degrees, 360.0);
    const double q = r < 0 ? r + 360.0 : r;
    if (q == 0.0) { *c = 1; *s = 0; }
    else if (q == 90.0) { *c = 0; *s = 1; }
    else if (q == 180.0) { *c = -1; *s = 0; }
    else if (q == 270.0) { *c = 0; *s = -1; }
    else { const double rad = q * 3.14159265358979323846 / 180.0; *c = cos(rad); *s = sin(rad); }
}

// in(y, x, ch) or 0 outside the image
static inline float pixel_or_zero(const float *in, int h, int w, int c, long y, long x, int ch) {
    return (y < 0 || y >= h || x < 0 || x >= w) ? 0.0f : in[((size_t)y * w + x) * c + ch];
}

void image_rotate(const float *in, int h, int w, int c, double degrees, float *out) {
    double cs, sn;
    cos_sin_deg(degrees, &cs, &sn);
    const double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const double dx = x - cx, dy = y - cy;
            const double sx = cx + cs * dx - sn * dy, sy = cy + sn * dx + cs * dy;   // source point
            const double fx0 = floor(sx), fy0 = floor(sy);
            const double fx = sx - fx0, fy = sy - fy0;
            const long x0 = (long)fx0, y0 = (long)fy0;
            for (int ch = 0; ch < c; ch++) {
                const double v = (1 - fy) * ((1 - fx) * pixel_or_zero(in, h, w, c, y0, x0, ch) +
                                             fx * pixel_or_zero(in, h, w, c, y0, x0 + 1, ch)) +
                                 fy * ((1 - fx) * pixel_or_zero(in, h, w, c, y0 + 1, x0, ch) +
                                       fx * pixel_or_zero(in, h, w, c, y0 + 1, x0 + 1, ch));
                out[((size_t)y * w + x) * c + ch] = (float)v;
            }
        }
}
