#include "mlp.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static int have_avx2(void);

static int max_dim(const MlpArch *m) {
    int d = 0;
    for (int i = 0; i <= m->n_dense; i++) if (m->dims[i] > d) d = m->dims[i];
    return d;
}

size_t mlp_cache_floats(const MlpArch *m, int max_rows) {
    size_t per_row = 0;
    for (int i = 0; i < m->n_dense; i++)
        per_row = XADD(per_row, XMUL(i == m->n_dense - 1 ? 1 : 3, m->dims[i + 1], "%s", m->name),
                       "%s activations", m->name);
    per_row = XADD(per_row, XMUL(2, max_dim(m), "%s", m->name), "%s activations", m->name);
    return XMUL(max_rows, per_row, "%s: %d rows x %zu floats of activations", m->name, max_rows, per_row);
}

void mlp_cache_init(MlpCache *c, const MlpArch *m, int max_rows) {
    memset(c, 0, sizeof(*c));
    c->max_rows = max_rows;
    for (int i = 0; i < m->n_dense; i++) {
        size_t n = XMUL(max_rows, m->dims[i + 1], "%s: %d rows x %d units", m->name, max_rows, m->dims[i + 1]);
        c->pre[i] = XALLOC_FLOATS(n);
        if (i == m->n_dense - 1) continue;
        c->y[i] = XALLOC_FLOATS(n);
        c->xhat[i] = XALLOC_FLOATS(n);
        c->rstd[i] = XALLOC_FLOATS(m->dims[i + 1]);
    }
    size_t d = (size_t)max_dim(m);
    const size_t nd = XMUL(max_rows, d, "%s: %d rows x %zu units", m->name, max_rows, d);
    c->dbuf[0] = XALLOC_FLOATS(nd);
    c->dbuf[1] = XALLOC_FLOATS(nd);
    c->red = XCALLOC(XMUL(4, d, "%s: units", m->name), sizeof(double));
    c->simd = have_avx2();
}

void mlp_cache_free(MlpCache *c) {
    for (int i = 0; i <= HT_MAX_HIDDEN; i++) {
        free(c->pre[i]); free(c->y[i]); free(c->xhat[i]); free(c->rstd[i]);
    }
    free(c->dbuf[0]); free(c->dbuf[1]); free(c->red);
    memset(c, 0, sizeof(*c));
}

// a = x W: x (rows, in), W (in, out), a (rows, out)
static void dense_forward(const float *x, const float *w, float *a, int rows, int in, int out) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, out, in, 1.0f, x, in, w, out,
                0.0f, a, out);
}

// ---- the elementwise row kernels of batch norm: portable and AVX2, the same bits ----
// Per element the operations and their order are the same in both versions (float leaky ReLU,
// double statistics, no FMA), and the reductions run over rows, one column per lane, so the AVX2
// version vectorizes across columns without reordering any sum.

// leaky ReLU without a branch (a branch on the sign is mispredicted half the time): a * 1 or
// a * alpha, exactly the values of "a > 0 ? a : alpha * a", NaN kept.
static inline float leaky(float a, float alpha) {
    const float m[2] = {alpha, 1.0f};
    return a * m[a > 0.0f];
}

// s1[j] += l, s2[j] += l^2 with l = leaky(a[j]) in double
static void bn_stats_row(const float *a, int f, float alpha, double *s1, double *s2) {
    for (int j = 0; j < f; j++) {
        const double l = leaky(a[j], alpha);
        s1[j] += l;
        s2[j] += l * l;
    }
}

// xhat = (leaky(a) - mean) * rstd, y = gamma * xhat + beta
static void bn_norm_row(const float *a, int f, float alpha, const double *mean, const float *rstd,
                        const float *gamma, const float *beta, float *xhat, float *y) {
    for (int j = 0; j < f; j++) {
        xhat[j] = (float)((leaky(a[j], alpha) - mean[j]) * rstd[j]);
        y[j] = gamma[j] * xhat[j] + beta[j];
    }
}

// g1[j] += dy[j], g2[j] += dy[j] * xhat[j] (float product)
static void bn_grad_sums_row(const float *dy, const float *xhat, int f, double *g1, double *g2) {
    for (int j = 0; j < f; j++) {
        g1[j] += dy[j];
        g2[j] += dy[j] * xhat[j];
    }
}

// da = leaky'(a) * rstd * (gamma dy - s1 / n - xhat / n * s2)
static void bn_back_row(const float *dy, const float *xhat, const float *a, int f, float alpha,
                        double inv_n, const float *gamma, const float *rstd, const double *s1,
                        const double *s2, float *da) {
    for (int j = 0; j < f; j++) {
        const double dxh = (double)gamma[j] * dy[j];
        const double dl = rstd[j] * (dxh - inv_n * s1[j] - xhat[j] * inv_n * s2[j]);
        const double m[2] = {(double)alpha, 1.0};
        da[j] = (float)(dl * m[a[j] > 0.0f]);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))

static int have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

// 4 columns at a time (float lanes widened to double); the tail runs the portable kernel.
static AVX2 inline __m128 leaky4(__m128 a, __m128 alpha) {
    return _mm_mul_ps(a, _mm_blendv_ps(alpha, _mm_set1_ps(1.0f), _mm_cmpgt_ps(a, _mm_setzero_ps())));
}

static AVX2 void bn_stats_row_avx2(const float *a, int f, float alpha, double *s1, double *s2) {
    const __m128 al = _mm_set1_ps(alpha);
    int j = 0;
    for (; j + 4 <= f; j += 4) {
        const __m256d l = _mm256_cvtps_pd(leaky4(_mm_loadu_ps(a + j), al));
        _mm256_storeu_pd(s1 + j, _mm256_add_pd(_mm256_loadu_pd(s1 + j), l));
        _mm256_storeu_pd(s2 + j, _mm256_add_pd(_mm256_loadu_pd(s2 + j), _mm256_mul_pd(l, l)));
    }
    bn_stats_row(a + j, f - j, alpha, s1 + j, s2 + j);
}

static AVX2 void bn_norm_row_avx2(const float *a, int f, float alpha, const double *mean, const float *rstd,
                                  const float *gamma, const float *beta, float *xhat, float *y) {
    const __m128 al = _mm_set1_ps(alpha);
    int j = 0;
    for (; j + 4 <= f; j += 4) {
        const __m256d l = _mm256_cvtps_pd(leaky4(_mm_loadu_ps(a + j), al));
        const __m128 xh = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(l, _mm256_loadu_pd(mean + j)),
                                                        _mm256_cvtps_pd(_mm_loadu_ps(rstd + j))));
        _mm_storeu_ps(xhat + j, xh);
        _mm_storeu_ps(y + j, _mm_add_ps(_mm_mul_ps(_mm_loadu_ps(gamma + j), xh), _mm_loadu_ps(beta + j)));
    }
    bn_norm_row(a + j, f - j, alpha, mean + j, rstd + j, gamma + j, beta + j, xhat + j, y + j);
}

static AVX2 void bn_grad_sums_row_avx2(const float *dy, const float *xhat, int f, double *g1, double *g2) {
    int j = 0;
    for (; j + 4 <= f; j += 4) {
        const __m128 d = _mm_loadu_ps(dy + j);
        _mm256_storeu_pd(g1 + j, _mm256_add_pd(_mm256_loadu_pd(g1 + j), _mm256_cvtps_pd(d)));
        _mm256_storeu_pd(g2 + j, _mm256_add_pd(_mm256_loadu_pd(g2 + j),
                                               _mm256_cvtps_pd(_mm_mul_ps(d, _mm_loadu_ps(xhat + j)))));
    }
    bn_grad_sums_row(dy + j, xhat + j, f - j, g1 + j, g2 + j);
}

static AVX2 void bn_back_row_avx2(const float *dy, const float *xhat, const float *a, int f, float alpha,
                                  double inv_n, const float *gamma, const float *rstd, const double *s1,
                                  const double *s2, float *da) {
    const __m256d n = _mm256_set1_pd(inv_n), one = _mm256_set1_pd(1.0), al = _mm256_set1_pd((double)alpha);
    int j = 0;
    for (; j + 4 <= f; j += 4) {
        const __m256d dxh = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(gamma + j)),
                                          _mm256_cvtps_pd(_mm_loadu_ps(dy + j)));
        const __m256d t = _mm256_sub_pd(_mm256_sub_pd(dxh, _mm256_mul_pd(n, _mm256_loadu_pd(s1 + j))),
                                        _mm256_mul_pd(_mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(xhat + j)), n),
                                                      _mm256_loadu_pd(s2 + j)));
        const __m256d dl = _mm256_mul_pd(_mm256_cvtps_pd(_mm_loadu_ps(rstd + j)), t);
        const __m256d pos = _mm256_cmp_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + j)), _mm256_setzero_pd(), _CMP_GT_OQ);
        const __m256d m = _mm256_blendv_pd(al, one, pos);
        _mm_storeu_ps(da + j, _mm256_cvtpd_ps(_mm256_mul_pd(dl, m)));
    }
    bn_back_row(dy + j, xhat + j, a + j, f - j, alpha, inv_n, gamma + j, rstd + j, s1 + j, s2 + j, da + j);
}
#else
static int have_avx2(void) { return 0; }
#define bn_stats_row_avx2 bn_stats_row
#define bn_norm_row_avx2 bn_norm_row
#define bn_grad_sums_row_avx2 bn_grad_sums_row
#define bn_back_row_avx2 bn_back_row
#endif

// ---- batch norm after leaky ReLU, in two halves around the all-reduce ----
// The local sums (before) and the normalization (after) are separate so that several MLPs can
// put their sums side by side in one buffer and share one comm_bn_allreduce (MlpGroup).

// Forward, train: s[0..f) = sum leaky(a), s[f..2f) = sum leaky(a)^2 over the local rows of a (rows, f).
static void act_bn_sums(const float *a, int rows, int f, float alpha, double *s, int simd) {
    double *s1 = s, *s2 = s + f;
    memset(s, 0, 2 * (size_t)f * sizeof(double));
    for (int r = 0; r < rows; r++) {
        if (simd) bn_stats_row_avx2(a + (size_t)r * f, f, alpha, s1, s2);
        else bn_stats_row(a + (size_t)r * f, f, alpha, s1, s2);
    }
}

// Forward: leaky ReLU then batch norm of a (rows, f) into y, from the all-reduced sums s (train;
// running averages updated) or the running averages (eval). s[0..f) is left holding the mean.
static void act_bn_apply(const float *a, float *xhat, float *y, float *rstd_out, int rows, int f,
                         int global_rows, const float *gamma, const float *beta, float *run_mean,
                         float *run_var, int train, const BnConfig *bn, double *s, int simd) {
    double *s1 = s, *s2 = s + f;
    for (int j = 0; j < f; j++) {
        double mean, var;
        if (train) {
            mean = s1[j] / global_rows;
            var = s2[j] / global_rows - mean * mean;
            if (var < 0.0) var = 0.0;
            run_mean[j] = (float)(bn->decay * run_mean[j] + (1.0 - bn->decay) * mean);
            run_var[j] = (float)(bn->decay * run_var[j] + (1.0 - bn->decay) * var);
        } else {
            mean = run_mean[j];
            var = run_var[j];
        }
        s1[j] = mean;
        rstd_out[j] = (float)(1.0 / sqrt(var + bn->eps));
    }
    for (int r = 0; r < rows; r++) {
        const size_t o = (size_t)r * f;
        if (simd) bn_norm_row_avx2(a + o, f, bn->alpha, s1, rstd_out, gamma, beta, xhat + o, y + o);
        else bn_norm_row(a + o, f, bn->alpha, s1, rstd_out, gamma, beta, xhat + o, y + o);
    }
}

// Backward of hidden layer i, first half: dbeta += sum dy, dgamma += sum dy * xhat (local), and
// s[0..f) = gamma * sum dy, s[f..2f) = gamma * sum dy * xhat (to be all-reduced). dy (rows, f).
// The local sums accumulate in the cache's own scratch c->red[2f..4f).
static void act_bn_grad_sums(const MlpCache *c, int i, const float *dy, int f, const float *gamma,
                             float *dgamma, float *dbeta, double *s) {
    const int rows = c->rows;
    const float *xhat = c->xhat[i];
    double *g1 = c->red + 2 * f, *g2 = c->red + 3 * f;
    memset(g1, 0, 2 * (size_t)f * sizeof(double));
    for (int r = 0; r < rows; r++) { // local d beta (g1) and d gamma (g2)
        const size_t o = (size_t)r * f;
        if (c->simd) bn_grad_sums_row_avx2(dy + o, xhat + o, f, g1, g2);
        else bn_grad_sums_row(dy + o, xhat + o, f, g1, g2);
    }
    for (int j = 0; j < f; j++) {
        dbeta[j] += (float)g1[j];
        dgamma[j] += (float)g2[j];
        s[j] = gamma[j] * g1[j];        // sum of d xhat
        s[f + j] = gamma[j] * g2[j];    // sum of d xhat * xhat
    }
}

// Backward, second half: dy (rows, f) -> da (rows, f) from the all-reduced sums s.
static void act_bn_grad_apply(const MlpCache *c, int i, const float *dy, float *da, int f,
                              const float *gamma, const BnConfig *bn, const double *s) {
    const int rows = c->rows;
    const float *xhat = c->xhat[i], *a = c->pre[i], *rstd = c->rstd[i];
    const double *s1 = s, *s2 = s + f;
    const double inv_n = 1.0 / c->global_rows;
    for (int r = 0; r < rows; r++) {
        const size_t o = (size_t)r * f;
        if (c->simd) bn_back_row_avx2(dy + o, xhat + o, a + o, f, bn->alpha, inv_n, gamma, rstd, s1, s2, da + o);
        else bn_back_row(dy + o, xhat + o, a + o, f, bn->alpha, inv_n, gamma, rstd, s1, s2, da + o);
    }
}

// ---- MLPs side by side, level by level ----

static int group_levels(const MlpGroup *g) {
    int L = 0;
    for (int k = 0; k < g->n; k++) if (g->m[k]->n_dense > L) L = g->m[k]->n_dense;
    return L;
}

// MLP k has a batch norm after dense i.
static int has_bn(const MlpGroup *g, int k, int i) { return i < g->m[k]->n_dense - 1; }

size_t mlp_group_red_doubles(const MlpGroup *g) {
    size_t most = 0;
    for (int i = 0; i < group_levels(g); i++) {
        size_t n = 0;
        for (int k = 0; k < g->n; k++)
            if (has_bn(g, k, i)) n = XADD(n, XMUL(2, g->m[k]->dims[i + 1], "%s", g->m[k]->name), "batch-norm sums");
        if (n > most) most = n;
    }
    return most;
}

void mlp_group_forward(const MlpGroup *g, const ParamTable *t, const float *params, float *stats,
                       const float *const *x, const int *rows, const int *global_rows, int train,
                       const BnConfig *bn, double *red, Comm *comm) {
    HT_CHECK(g->n >= 0 && g->n <= HT_MAX_OPS, "MLP group of %d (0 to %d)", g->n, HT_MAX_OPS);
    for (int k = 0; k < g->n; k++) {
        MlpCache *c = g->c[k];
        HT_CHECK(rows[k] <= c->max_rows, "%s: %d rows exceed the cache's %d", g->m[k]->name, rows[k], c->max_rows);
        c->rows = rows[k];
        c->global_rows = global_rows[k];
        c->in0 = x[k];
    }
    for (int i = 0; i < group_levels(g); i++) {
        size_t off = 0;  // MLP k's sums: red[off, off + 2 f) (forward: sums, then the mean)
        for (int k = 0; k < g->n; k++) {
            const MlpArch *m = g->m[k];
            MlpCache *c = g->c[k];
            if (i >= m->n_dense) continue;
            const float *in = i == 0 ? c->in0 : c->y[i - 1];
            dense_forward(in, params + t->views[m->kernel[i]].offset, c->pre[i], c->rows, m->dims[i], m->dims[i + 1]);
            if (!has_bn(g, k, i)) continue;
            if (train) act_bn_sums(c->pre[i], c->rows, m->dims[i + 1], bn->alpha, red + off, c->simd);
            off += 2 * (size_t)m->dims[i + 1];
        }
        if (train && off) comm_bn_allreduce(comm, red, off);  // one per level for the whole group
        off = 0;
        for (int k = 0; k < g->n; k++) {
            const MlpArch *m = g->m[k];
            MlpCache *c = g->c[k];
            if (!has_bn(g, k, i)) continue;
            const int f = m->dims[i + 1];
            act_bn_apply(c->pre[i], c->xhat[i], c->y[i], c->rstd[i], c->rows, f, c->global_rows,
                         params + t->views[m->gamma[i]].offset, params + t->views[m->beta[i]].offset,
                         stats + t->stats[m->mean[i]].offset, stats + t->stats[m->var[i]].offset,
                         train, bn, red + off, c->simd);
            off += 2 * (size_t)f;
        }
    }
}

void mlp_group_backward(const MlpGroup *g, const ParamTable *t, const float *params, float *grads,
                        const float *const *dout, float *const *dx, const BnConfig *bn, double *red,
                        Comm *comm) {
    HT_CHECK(g->n >= 0 && g->n <= HT_MAX_OPS, "MLP group of %d (0 to %d)", g->n, HT_MAX_OPS);
    const float *dy[HT_MAX_OPS]; // MLP k: gradient w.r.t. the output of its current layer
    for (int k = 0; k < g->n; k++) dy[k] = dout[k];
    for (int i = group_levels(g) - 1; i >= 0; i--) {
        size_t off = 0;
        for (int k = 0; k < g->n; k++) {
            const MlpArch *m = g->m[k];
            if (!has_bn(g, k, i)) continue;
            act_bn_grad_sums(g->c[k], i, dy[k], m->dims[i + 1], params + t->views[m->gamma[i]].offset,
                             grads + t->views[m->gamma[i]].offset, grads + t->views[m->beta[i]].offset, red + off);
            off += 2 * (size_t)m->dims[i + 1];
        }
        if (off) comm_bn_allreduce(comm, red, off);  // one per level for the whole group
        off = 0;
        for (int k = 0; k < g->n; k++) {
            const MlpArch *m = g->m[k];
            const MlpCache *c = g->c[k];
            if (i >= m->n_dense) continue;
            const int in = m->dims[i], out = m->dims[i + 1], rows = c->rows;
            const float *da = dy[k];   // gradient w.r.t. dense i's output
            if (has_bn(g, k, i)) {
                act_bn_grad_apply(c, i, dy[k], c->dbuf[0], out, params + t->views[m->gamma[i]].offset, bn, red + off);
                off += 2 * (size_t)out;
                da = c->dbuf[0];
            }
            const float *xi = i == 0 ? c->in0 : c->y[i - 1];
            const float *w = params + t->views[m->kernel[i]].offset;
            // dW (in, out) += x^T da
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, rows, 1.0f, xi, in, da, out,
                        1.0f, grads + t->views[m->kernel[i]].offset, out);
            float *dst = i == 0 ? dx[k] : c->dbuf[1];
            if (!dst) continue;
            // d input (rows, in) = da W^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, in, out, 1.0f, da, out, w, out,
                        0.0f, dst, in);
            dy[k] = dst;
        }
    }
}

// One MLP is a group of one, with the cache's own reduction scratch (2 max dim doubles of sums,
// then 2 max dim of local backward sums).
static MlpGroup group_of_one(const MlpArch *m, MlpCache *c) {
    MlpGroup g;
    memset(&g, 0, sizeof(g));
    g.n = 1;
    g.m[0] = m;
    g.c[0] = c;
    return g;
}

void mlp_forward(const MlpArch *m, const ParamTable *t, const float *params, float *stats,
                 MlpCache *c, const float *x, int rows, int global_rows, int train,
                 const BnConfig *bn, Comm *comm) {
    const MlpGroup g = group_of_one(m, c);
    mlp_group_forward(&g, t, params, stats, &x, &rows, &global_rows, train, bn, c->red, comm);
}

void mlp_backward(const MlpArch *m, const ParamTable *t, const float *params, float *grads,
                  MlpCache *c, const float *dout, float *dx, const BnConfig *bn, Comm *comm) {
    const MlpGroup g = group_of_one(m, c);
    mlp_group_backward(&g, t, params, grads, &dout, &dx, bn, c->red, comm);
}
