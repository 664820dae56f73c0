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

// leaky ReLU then batch norm of a (rows, f) into y; batch statistics (train) or running ones.
static void act_bn_forward(const float *a, float *xhat, float *y, float *rstd_out, int rows, int f,
                           int global_rows, const float *gamma, const float *beta, float *run_mean,
                           float *run_var, int train, const BnConfig *bn, double *red, Comm *comm,
                           int simd) {
    const float alpha = bn->alpha;
    double *s1 = red, *s2 = red + f;
    if (train) {
        memset(red, 0, 2 * (size_t)f * sizeof(double));
        for (int r = 0; r < rows; r++) {
            if (simd) bn_stats_row_avx2(a + (size_t)r * f, f, alpha, s1, s2);
            else bn_stats_row(a + (size_t)r * f, f, alpha, s1, s2);
        }
        comm_bn_allreduce(comm, red, 2 * (size_t)f);
    }
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
        if (simd) bn_norm_row_avx2(a + o, f, alpha, s1, rstd_out, gamma, beta, xhat + o, y + o);
        else bn_norm_row(a + o, f, alpha, s1, rstd_out, gamma, beta, xhat + o, y + o);
    }
}

void mlp_forward(const MlpArch *m, const ParamTable *t, const float *params, float *stats,
                 MlpCache *c, const float *x, int rows, int global_rows, int train,
                 const BnConfig *bn, Comm *comm) {
    HT_CHECK(rows <= c->max_rows, "%s: %d rows exceed the cache's %d", m->name, rows, c->max_rows);
    c->rows = rows;
    c->global_rows = global_rows;
    c->in0 = x;
    const float *in = x;
    for (int i = 0; i < m->n_dense; i++) {
        int f = m->dims[i + 1];
        dense_forward(in, params + t->views[m->kernel[i]].offset, c->pre[i], rows, m->dims[i], f);
        if (i == m->n_dense - 1) break;
        act_bn_forward(c->pre[i], c->xhat[i], c->y[i], c->rstd[i], rows, f, global_rows,
                       params + t->views[m->gamma[i]].offset, params + t->views[m->beta[i]].offset,
                       stats + t->stats[m->mean[i]].offset, stats + t->stats[m->var[i]].offset,
                       train, bn, c->red, comm, c->simd);
        in = c->y[i];
    }
}

// Backward of batch norm + leaky ReLU for hidden layer i: dy (rows, f) -> da (rows, f).
static void act_bn_backward(const MlpCache *c, int i, const float *dy, float *da, int f,
                            const float *gamma, float *dgamma, float *dbeta, const BnConfig *bn,
                            Comm *comm) {
    const int rows = c->rows, global_rows = c->global_rows, simd = c->simd;
    const float *xhat = c->xhat[i], *a = c->pre[i], *rstd = c->rstd[i];
    double *s1 = c->red, *s2 = c->red + f, *g1 = c->red + 2 * f, *g2 = c->red + 3 * f;
    memset(c->red, 0, 4 * (size_t)f * sizeof(double));
    for (int r = 0; r < rows; r++) { // local d beta (g1) and d gamma (g2)
        const size_t o = (size_t)r * f;
        if (simd) bn_grad_sums_row_avx2(dy + o, xhat + o, f, g1, g2);
        else bn_grad_sums_row(dy + o, xhat + o, f, g1, g2);
    }
    for (int j = 0; j < f; j++) {
        dbeta[j] += (float)g1[j];
        dgamma[j] += (float)g2[j];
        s1[j] = gamma[j] * g1[j];       // sum of d xhat
        s2[j] = gamma[j] * g2[j];       // sum of d xhat * xhat
    }
    comm_bn_allreduce(comm, c->red, 2 * (size_t)f);
    const double inv_n = 1.0 / global_rows;
    for (int r = 0; r < rows; r++) {
        const size_t o = (size_t)r * f;
        if (simd) bn_back_row_avx2(dy + o, xhat + o, a + o, f, bn->alpha, inv_n, gamma, rstd, s1, s2, da + o);
        else bn_back_row(dy + o, xhat + o, a + o, f, bn->alpha, inv_n, gamma, rstd, s1, s2, da + o);
    }
}

void mlp_backward(const MlpArch *m, const ParamTable *t, const float *params, float *grads,
                  MlpCache *c, const float *dout, float *dx, const BnConfig *bn, Comm *comm) {
    const int rows = c->rows, last = m->n_dense - 1;
    float *da_buf = c->dbuf[0], *dy_buf = c->dbuf[1];
    const float *dy = dout; // gradient w.r.t. the output of layer i (the batch-norm output if hidden)
    for (int i = last; i >= 0; i--) {
        const int in = m->dims[i], out = m->dims[i + 1];
        const float *da = dy;   // gradient w.r.t. dense i's output
        if (i < last) {
            act_bn_backward(c, i, dy, da_buf, out, params + t->views[m->gamma[i]].offset,
                            grads + t->views[m->gamma[i]].offset,
                            grads + t->views[m->beta[i]].offset, bn, comm);
            da = da_buf;
        }
        const float *x = i == 0 ? c->in0 : c->y[i - 1];
        const float *w = params + t->views[m->kernel[i]].offset;
        // dW (in, out) += x^T da
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, rows, 1.0f, x, in, da, out,
                    1.0f, grads + t->views[m->kernel[i]].offset, out);
        float *dst = i == 0 ? dx : dy_buf;
        if (!dst) break;
        // d input (rows, in) = da W^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, in, out, 1.0f, da, out, w, out,
                    0.0f, dst, in);
        dy = dst;
    }
}
