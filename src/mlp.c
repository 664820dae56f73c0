#include "mlp.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static int max_dim(const MlpArch *m) {
    int d = 0;
    for (int i = 0; i <= m->n_dense; i++) if (m->dims[i] > d) d = m->dims[i];
    return d;
}

void mlp_cache_init(MlpCache *c, const MlpArch *m, int max_rows) {
    memset(c, 0, sizeof(*c));
    c->max_rows = max_rows;
    for (int i = 0; i < m->n_dense; i++) {
        size_t n = (size_t)max_rows * m->dims[i + 1];
        c->pre[i] = XALLOC_FLOATS(n);
        if (i == m->n_dense - 1) continue;
        c->y[i] = XALLOC_FLOATS(n);
        c->xhat[i] = XALLOC_FLOATS(n);
        c->rstd[i] = XALLOC_FLOATS(m->dims[i + 1]);
    }
    size_t d = (size_t)max_dim(m);
    c->dbuf[0] = XALLOC_FLOATS((size_t)max_rows * d);
    c->dbuf[1] = XALLOC_FLOATS((size_t)max_rows * d);
    c->red = XCALLOC(4 * d, sizeof(double));
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

// leaky ReLU then batch norm of a (rows, f) into y; batch statistics (train) or running ones.
static void act_bn_forward(const float *a, float *xhat, float *y, float *rstd_out, int rows, int f,
                           int global_rows, const float *gamma, const float *beta, float *run_mean,
                           float *run_var, int train, const BnConfig *bn, double *red, Comm *comm) {
    const float alpha = bn->alpha;
    double *s1 = red, *s2 = red + f;
    if (train) {
        memset(red, 0, 2 * (size_t)f * sizeof(double));
        for (int r = 0; r < rows; r++) {
            const float *ar = a + (size_t)r * f;
            for (int j = 0; j < f; j++) {
                double l = ar[j] > 0.0f ? ar[j] : alpha * ar[j];
                s1[j] += l;
                s2[j] += l * l;
            }
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
        const float *ar = a + (size_t)r * f;
        float *xr = xhat + (size_t)r * f, *yr = y + (size_t)r * f;
        for (int j = 0; j < f; j++) {
            float l = ar[j] > 0.0f ? ar[j] : alpha * ar[j];
            xr[j] = (float)((l - s1[j]) * rstd_out[j]);
            yr[j] = gamma[j] * xr[j] + beta[j];
        }
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
                       train, bn, c->red, comm);
        in = c->y[i];
    }
}

// Backward of batch norm + leaky ReLU for hidden layer i: dy (rows, f) -> da (rows, f).
static void act_bn_backward(const MlpCache *c, int i, const float *dy, float *da, int f,
                            const float *gamma, float *dgamma, float *dbeta, const BnConfig *bn,
                            Comm *comm) {
    const int rows = c->rows, global_rows = c->global_rows;
    const float *xhat = c->xhat[i], *a = c->pre[i], *rstd = c->rstd[i];
    double *s1 = c->red, *s2 = c->red + f, *g1 = c->red + 2 * f, *g2 = c->red + 3 * f;
    memset(c->red, 0, 4 * (size_t)f * sizeof(double));
    for (int r = 0; r < rows; r++) {
        const float *dyr = dy + (size_t)r * f, *xr = xhat + (size_t)r * f;
        for (int j = 0; j < f; j++) {
            g1[j] += dyr[j];            // local d beta
            g2[j] += dyr[j] * xr[j];    // local d gamma
        }
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
        const float *dyr = dy + (size_t)r * f, *xr = xhat + (size_t)r * f, *ar = a + (size_t)r * f;
        float *dar = da + (size_t)r * f;
        for (int j = 0; j < f; j++) {
            double dxh = (double)gamma[j] * dyr[j];
            double dl = rstd[j] * (dxh - inv_n * s1[j] - xr[j] * inv_n * s2[j]);
            dar[j] = (float)(ar[j] > 0.0f ? dl : bn->alpha * dl);
        }
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
