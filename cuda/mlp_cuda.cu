// mlp_cuda.cu: the hypernetwork on the GPU: dense layers as cuBLAS SGEMMs (row-major operands
// passed to column-major cuBLAS as their transposes), batch norm kernels (kernels.cu), generator
// inputs and outputs moved with 2-D copies. Mirrors src/mlp.c and src/hyper.c step by step.
#include "mlp_cuda.cuh"

#include <string.h>

#include "kernels.cuh"

static int max_dim(const MlpArch *m) {
    int d = 0;
    for (int i = 0; i <= m->n_dense; i++) if (m->dims[i] > d) d = m->dims[i];
    return d;
}

void cuda_mlp_cache_init(CudaMlpCache *c, const MlpArch *m, int max_rows) {
    memset(c, 0, sizeof(*c));
    c->max_rows = max_rows;
    char what[HT_NAME_MAX + 64];
    snprintf(what, sizeof(what), "%s activations", m->name);
    for (int i = 0; i < m->n_dense; i++) {
        const size_t n = (size_t)max_rows * m->dims[i + 1];
        c->pre[i] = DALLOC(float, n, what);
        if (i == m->n_dense - 1) continue;
        c->y[i] = DALLOC(float, n, what);
        c->xhat[i] = DALLOC(float, n, what);
        c->rstd[i] = DALLOC(float, m->dims[i + 1], what);
    }
    const size_t d = (size_t)max_dim(m);
    c->dbuf[0] = DALLOC(float, (size_t)max_rows * d, what);
    c->dbuf[1] = DALLOC(float, (size_t)max_rows * d, what);
    c->red = DALLOC(double, 4 * d, what);
}

void cuda_mlp_cache_free(CudaMlpCache *c) {
    for (int i = 0; i <= HT_MAX_HIDDEN; i++) {
        ht_cuda_free(c->pre[i]); ht_cuda_free(c->y[i]); ht_cuda_free(c->xhat[i]); ht_cuda_free(c->rstd[i]);
    }
    ht_cuda_free(c->dbuf[0]); ht_cuda_free(c->dbuf[1]); ht_cuda_free(c->red);
    memset(c, 0, sizeof(*c));
}

static const float k_one = 1.0f, k_zero = 0.0f;

// a (rows, out) = x (rows, in) . W (in, out), all row-major. Column-major view: a^T = W^T x^T,
// i.e. C (out x rows, ld out) = A (out x in, ld out) . B (in x rows, ld in).
static void dense_forward(CudaCtx *ctx, const float *x, const float *w, float *a, int rows, int in, int out) {
    CUBLAS_CHECK(cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_N, out, rows, in, &k_one, w, out, x, in, &k_zero,
                             a, out));
}

void cuda_mlp_forward(CudaCtx *ctx, const MlpArch *m, const ParamTable *t, const float *params, float *stats,
                      CudaMlpCache *c, const float *x, int rows, int global_rows, int train, const BnConfig *bn) {
    HT_CHECK(rows <= c->max_rows, "%s: %d rows exceed the cache's %d", m->name, rows, c->max_rows);
    c->rows = rows;
    c->global_rows = global_rows;
    c->in0 = x;
    const float *in = x;
    for (int i = 0; i < m->n_dense; i++) {
        const int f = m->dims[i + 1];
        dense_forward(ctx, in, params + t->views[m->kernel[i]].offset, c->pre[i], rows, m->dims[i], f);
        if (i == m->n_dense - 1) break;
        if (train) {
            k_bn_stats(ctx->stream, c->pre[i], rows, f, bn->alpha, c->red);
            if (ctx->dc) devcomm_bn_allreduce(ctx->dc, c->red, 2 * (size_t)f, ctx->stream);
        }
        k_bn_finalize(ctx->stream, f, global_rows, train, bn->decay, bn->eps, c->red,
                      stats + t->stats[m->mean[i]].offset, stats + t->stats[m->var[i]].offset, c->rstd[i]);
        k_bn_apply(ctx->stream, c->pre[i], c->xhat[i], c->y[i], rows, f, bn->alpha, c->red, c->rstd[i],
                   params + t->views[m->gamma[i]].offset, params + t->views[m->beta[i]].offset);
        in = c->y[i];
    }
}

void cuda_mlp_backward(CudaCtx *ctx, const MlpArch *m, const ParamTable *t, const float *params, float *grads,
                       CudaMlpCache *c, const float *dout, float *dx, const BnConfig *bn) {
    const int rows = c->rows, last = m->n_dense - 1;
    float *da_buf = c->dbuf[0], *dy_buf = c->dbuf[1];
    const float *dy = dout;
    for (int i = last; i >= 0; i--) {
        const int in = m->dims[i], out = m->dims[i + 1];
        const float *da = dy;
        if (i < last) {
            k_bn_bwd_sums(ctx->stream, dy, c->xhat[i], rows, out, params + t->views[m->gamma[i]].offset,
                          grads + t->views[m->gamma[i]].offset, grads + t->views[m->beta[i]].offset, c->red);
            if (ctx->dc) devcomm_bn_allreduce(ctx->dc, c->red, 2 * (size_t)out, ctx->stream);
            k_bn_bwd_apply(ctx->stream, dy, c->xhat[i], c->pre[i], da_buf, rows, out, bn->alpha,
                           params + t->views[m->gamma[i]].offset, c->rstd[i], c->red, c->global_rows);
            da = da_buf;
        }
        const float *x = i == 0 ? c->in0 : c->y[i - 1];
        const float *w = params + t->views[m->kernel[i]].offset;
        // dW (in, out) += x^T da.  Column-major: dW^T (out x in) += da^T (out x rows) . x (rows x in)
        CUBLAS_CHECK(cublasSgemm(ctx->blas, CUBLAS_OP_N, CUBLAS_OP_T, out, in, rows, &k_one, da, out, x, in, &k_one,
                                 grads + t->views[m->kernel[i]].offset, out));
        float *dst = i == 0 ? dx : dy_buf;
        if (!dst) break;
        // d input (rows, in) = da W^T.  Column-major: dx^T (in x rows) = W^T... = (W as out x in)^T . da^T
        CUBLAS_CHECK(cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, in, rows, out, &k_one, w, out, da, out, &k_zero,
                                 dst, in));
        dy = dst;
    }
}

// ---------------------------------------------------------------- hypernetwork

void cuda_hyper_init(CudaHyper *hn, const HyperArch *h, const TargetArch *t, int max_n) {
    memset(hn, 0, sizeof(*hn));
    hn->h = h;
    hn->t = t;
    hn->max_n = max_n;
    cuda_mlp_cache_init(&hn->ext, &h->extractor, max_n);
    int max_codes = 1;
    for (int l = 0; l < h->n_gens; l++) {
        const int rows = max_n * h->gen_codes[l];
        cuda_mlp_cache_init(&hn->gen[l], &h->gens[l], rows);
        hn->gen_in[l] = DALLOC(float, (size_t)rows * h->code_size, "generator inputs");
        hn->dgen_out[l] = DALLOC(float, (size_t)rows * h->gen_out[l], "generator output gradients");
        if (h->gen_codes[l] > max_codes) max_codes = h->gen_codes[l];
    }
    hn->dgen_in = DALLOC(float, (size_t)max_n * max_codes * h->code_size, "generator input gradients");
    hn->dcodes = DALLOC(float, (size_t)max_n * h->n_codes * h->code_size, "code gradients");
}

void cuda_hyper_free(CudaHyper *hn) {
    cuda_mlp_cache_free(&hn->ext);
    for (int l = 0; l < hn->h->n_gens; l++) {
        cuda_mlp_cache_free(&hn->gen[l]);
        ht_cuda_free(hn->gen_in[l]);
        ht_cuda_free(hn->dgen_out[l]);
    }
    ht_cuda_free(hn->dgen_in);
    ht_cuda_free(hn->dcodes);
    memset(hn, 0, sizeof(*hn));
}

// n rows of `width` floats from src (row pitch spitch floats) to dst (row pitch dpitch floats).
static void copy_rows(CudaCtx *ctx, float *dst, size_t dpitch, const float *src, size_t spitch, size_t width,
                      int n) {
    CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch * sizeof(float), src, spitch * sizeof(float), width * sizeof(float),
                                 (size_t)n, cudaMemcpyDeviceToDevice, ctx->stream));
}

void cuda_hyper_forward(CudaCtx *ctx, CudaHyper *hn, const float *params, float *stats, const float *z, int n,
                        int global_n, int train, const BnConfig *bn, float *raw) {
    const HyperArch *h = hn->h;
    const TargetArch *t = hn->t;
    HT_CHECK(n <= hn->max_n, "hypernetwork: %d samples exceed the %d it was set up for", n, hn->max_n);
    hn->n = n;
    cuda_mlp_forward(ctx, &h->extractor, &h->table, params, stats, &hn->ext, z, n, global_n, train, bn);
    const float *codes = cuda_mlp_out(&h->extractor, &hn->ext); // (n, n_codes, code_size)
    const size_t cs = (size_t)h->code_size;
    for (int l = 0; l < h->n_gens; l++) {
        const int nc = h->gen_codes[l];
        copy_rows(ctx, hn->gen_in[l], (size_t)nc * cs, codes + (size_t)h->gen_code_offset[l] * cs,
                  (size_t)h->n_codes * cs, (size_t)nc * cs, n);
        cuda_mlp_forward(ctx, &h->gens[l], &h->table, params, stats, &hn->gen[l], hn->gen_in[l], n * nc,
                         global_n * nc, train, bn);
        const float *out = cuda_mlp_out(&h->gens[l], &hn->gen[l]);
        const size_t size = t->layers[l].size;
        copy_rows(ctx, raw + t->layers[l].offset, t->n_weights, out, size, size, n);
    }
}

void cuda_hyper_backward(CudaCtx *ctx, CudaHyper *hn, const float *params, float *grads, const float *draw,
                         const BnConfig *bn) {
    const HyperArch *h = hn->h;
    const TargetArch *t = hn->t;
    const int n = hn->n;
    const size_t cs = (size_t)h->code_size;
    for (int l = 0; l < h->n_gens; l++) {
        const int nc = h->gen_codes[l];
        const size_t size = t->layers[l].size;
        copy_rows(ctx, hn->dgen_out[l], size, draw + t->layers[l].offset, t->n_weights, size, n);
        cuda_mlp_backward(ctx, &h->gens[l], &h->table, params, grads, &hn->gen[l], hn->dgen_out[l], hn->dgen_in, bn);
        copy_rows(ctx, hn->dcodes + (size_t)h->gen_code_offset[l] * cs, (size_t)h->n_codes * cs, hn->dgen_in,
                  (size_t)nc * cs, (size_t)nc * cs, n);
    }
    cuda_mlp_backward(ctx, &h->extractor, &h->table, params, grads, &hn->ext, hn->dcodes, NULL, bn);
}
