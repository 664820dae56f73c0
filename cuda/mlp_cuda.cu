// mlp_cuda.cu: the hypernetwork on the GPU: dense layers as cuBLAS SGEMMs (row-major operands
// passed to column-major cuBLAS as their transposes), batch norm kernels (kernels.cu). Mirrors
// src/mlp.c and src/hyper.c step by step: the weight generators either one after the other
// (HT_CUDA_GENS=split: 2-D copies, per-generator GEMMs and kernels) or level by level as
// src/mlp.c's MlpGroup (grouped, the default: grouped GEMMs, grouped batch-norm kernels, one
// all-reduce per level).
#include "mlp_cuda.cuh"

#include <stdlib.h>
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
    // grouped path
    MlpGroup g;
    memset(&g, 0, sizeof(g));
    g.n = h->n_gens;
    for (int l = 0; l < h->n_gens; l++) {
        g.m[l] = &h->gens[l];
        hn->gdgen_in[l] = DALLOC(float, (size_t)max_n * h->gen_codes[l] * h->code_size, "generator input gradients");
        if (h->gens[l].n_dense > hn->levels) hn->levels = h->gens[l].n_dense;
    }
    hn->gen_red = DALLOC(double, mlp_group_red_doubles(&g) + 1, "generators' batch-norm sums");
    const size_t n_ptr = (size_t)(hn->levels > 0 ? hn->levels : 1) * 9 * (h->n_gens > 0 ? h->n_gens : 1);
    hn->d_ptr = DALLOC(float *, n_ptr, "grouped GEMM pointer arrays");
    hn->h_ptr = (float **)XCALLOC(n_ptr, sizeof(float *));
    hn->gens_impl = cuda_gens_impl_from_env();
}

void cuda_hyper_free(CudaHyper *hn) {
    cuda_mlp_cache_free(&hn->ext);
    for (int l = 0; l < hn->h->n_gens; l++) {
        cuda_mlp_cache_free(&hn->gen[l]);
        ht_cuda_free(hn->gen_in[l]);
        ht_cuda_free(hn->dgen_out[l]);
        ht_cuda_free(hn->gdgen_in[l]);
    }
    ht_cuda_free(hn->dgen_in);
    ht_cuda_free(hn->dcodes);
    ht_cuda_free(hn->gen_red);
    ht_cuda_free(hn->d_ptr);
    free(hn->h_ptr);
    memset(hn, 0, sizeof(*hn));
}

// n rows of `width` floats from src (row pitch spitch floats) to dst (row pitch dpitch floats).
static void copy_rows(CudaCtx *ctx, float *dst, size_t dpitch, const float *src, size_t spitch, size_t width,
                      int n) {
    CUDA_CHECK(cudaMemcpy2DAsync(dst, dpitch * sizeof(float), src, spitch * sizeof(float), width * sizeof(float),
                                 (size_t)n, cudaMemcpyDeviceToDevice, ctx->stream));
}

// HT_CUDA_GENS=split: the generators one after the other.
static void gens_forward_split(CudaCtx *ctx, CudaHyper *hn, const float *params, float *stats, const float *codes,
                               int n, int global_n, int train, const BnConfig *bn, float *raw) {
    const HyperArch *h = hn->h;
    const TargetArch *t = hn->t;
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

static void gens_backward_split(CudaCtx *ctx, CudaHyper *hn, const float *params, float *grads, const float *draw,
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
}


// ---------------------------------------------------------------- grouped generators

CudaGensImpl cuda_gens_impl_from_env(void) {
    const char *e = getenv("HT_CUDA_GENS");
    if (!e || !e[0] || !strcmp(e, "grouped")) return CUDA_GENS_GROUPED;
    HT_CHECK(!strcmp(e, "split"), "HT_CUDA_GENS must be split or grouped (got '%s')", e);
    return CUDA_GENS_SPLIT;
}

const char *cuda_gens_impl_name(CudaGensImpl g) { return g == CUDA_GENS_SPLIT ? "split" : "grouped"; }

enum { GEMM_FWD = 0, GEMM_DW = 1, GEMM_DX = 2 };

// Slot of pointer array `which` (0 A, 1 B, 2 C) of GEMM kind `kind` at level i: G entries, one per
// generator that has dense layer i, in generator order.
static size_t ptr_slot(const CudaHyper *hn, int i, int kind, int which) {
    return (((size_t)i * 3 + (size_t)kind) * 3 + (size_t)which) * (size_t)hn->h->n_gens;
}

// The input of generator l's dense layer i (forward), and the gradient w.r.t. its output that the
// backward dW and dX GEMMs read at level i.
static const float *gen_x(const CudaHyper *hn, int l, int i) { return i == 0 ? hn->gen_in[l] : hn->gen[l].y[i - 1]; }
static const float *gen_da(const CudaHyper *hn, int l, int i) {
    return i == hn->h->gens[l].n_dense - 1 ? hn->dgen_out[l] : hn->gen[l].dbuf[0];
}

void cuda_hyper_bind(CudaCtx *ctx, CudaHyper *hn, const float *params, const float *grads) {
    const HyperArch *h = hn->h;
    const ParamTable *t = &h->table;
    for (int i = 0; i < hn->levels; i++) {
        int j = 0;
        for (int l = 0; l < h->n_gens; l++) {
            const MlpArch *m = &h->gens[l];
            if (i >= m->n_dense) continue;
            float *w = (float *)params + t->views[m->kernel[i]].offset;
            float *x = (float *)gen_x(hn, l, i), *da = (float *)gen_da(hn, l, i);
            float *dw = grads ? (float *)grads + t->views[m->kernel[i]].offset : NULL;
            float *dst = i == 0 ? hn->gdgen_in[l] : hn->gen[l].dbuf[1];
            float *v[3][3] = {{w, x, hn->gen[l].pre[i]}, {da, x, dw}, {w, da, dst}};
            for (int kind = 0; kind < 3; kind++)
                for (int which = 0; which < 3; which++) hn->h_ptr[ptr_slot(hn, i, kind, which) + j] = v[kind][which];
            j++;
        }
    }
    const size_t n_ptr = (size_t)(hn->levels > 0 ? hn->levels : 1) * 9 * (h->n_gens > 0 ? h->n_gens : 1);
    // On the compute stream (ordered after any queued GEMM that reads the old arrays, and before
    // the next), from pageable memory: hence the synchronize before h_ptr may change again.
    CUDA_CHECK(cudaMemcpyAsync(hn->d_ptr, hn->h_ptr, n_ptr * sizeof(float *), cudaMemcpyHostToDevice, ctx->stream));
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    hn->bound_params = params;
    hn->bound_grads = grads;
}

// One cublasSgemmGroupedBatched for GEMM `kind` of level i over every generator with dense layer i
// (one group of one GEMM each: their shapes differ). Row-major operands as in dense_forward and
// cuda_mlp_backward: fwd C (out x rows) = W (out x in) . x^T; dW^T (out x in) += da^T . x;
// dx^T (in x rows) = W^T . da^T.
static void gemm_level(CudaCtx *ctx, const CudaHyper *hn, int i, int kind) {
    const HyperArch *h = hn->h;
    cublasOperation_t ta[HT_MAX_OPS], tb[HT_MAX_OPS];
    int m[HT_MAX_OPS], nn[HT_MAX_OPS], k[HT_MAX_OPS], lda[HT_MAX_OPS], ldb[HT_MAX_OPS], ldc[HT_MAX_OPS];
    int size[HT_MAX_OPS];
    float alpha[HT_MAX_OPS], beta[HT_MAX_OPS];
    int j = 0;
    for (int l = 0; l < h->n_gens; l++) {
        const MlpArch *a = &h->gens[l];
        if (i >= a->n_dense) continue;
        const int in = a->dims[i], out = a->dims[i + 1], rows = hn->gen[l].rows;
        alpha[j] = 1.0f;
        size[j] = 1;
        if (kind == GEMM_FWD) {
            ta[j] = CUBLAS_OP_N; tb[j] = CUBLAS_OP_N; m[j] = out; nn[j] = rows; k[j] = in;
            lda[j] = out; ldb[j] = in; ldc[j] = out; beta[j] = 0.0f;
        } else if (kind == GEMM_DW) {
            ta[j] = CUBLAS_OP_N; tb[j] = CUBLAS_OP_T; m[j] = out; nn[j] = in; k[j] = rows;
            lda[j] = out; ldb[j] = in; ldc[j] = out; beta[j] = 1.0f;
        } else {
            ta[j] = CUBLAS_OP_T; tb[j] = CUBLAS_OP_N; m[j] = in; nn[j] = rows; k[j] = out;
            lda[j] = out; ldb[j] = out; ldc[j] = in; beta[j] = 0.0f;
        }
        j++;
    }
    if (j == 0) return;
    float *const *p = hn->d_ptr;
    CUBLAS_CHECK(cublasSgemmGroupedBatched(ctx->blas, ta, tb, m, nn, k, alpha,
                                           (const float *const *)(p + ptr_slot(hn, i, kind, 0)), lda,
                                           (const float *const *)(p + ptr_slot(hn, i, kind, 1)), ldb, beta,
                                           p + ptr_slot(hn, i, kind, 2), ldc, j, size));
}

// The batch-norm ops of level i (generators with a batch norm after dense i), each with its 2 f
// doubles of hn->gen_red side by side (as src/mlp.c's mlp_group_*). Returns the doubles used.
static size_t bn_level(const CudaHyper *hn, int i, const float *params, float *stats, float *grads,
                       const BnConfig *bn, int train, BnGroup *g) {
    const HyperArch *h = hn->h;
    const ParamTable *t = &h->table;
    memset(g, 0, sizeof(*g));
    g->train = train;
    g->alpha = bn->alpha;
    g->decay = bn->decay;
    g->eps = bn->eps;
    size_t off = 0;
    for (int l = 0; l < h->n_gens; l++) {
        const MlpArch *m = &h->gens[l];
        if (i >= m->n_dense - 1) continue;
        const CudaMlpCache *c = &hn->gen[l];
        BnOp *o = &g->op[g->n++];
        o->a = c->pre[i];
        o->xhat = c->xhat[i];
        o->y = c->y[i];
        o->dy = c->dbuf[1];  // backward: written by level i+1's dX GEMM
        o->da = c->dbuf[0];
        o->gamma = params + t->views[m->gamma[i]].offset;
        o->beta = params + t->views[m->beta[i]].offset;
        o->dgamma = grads ? grads + t->views[m->gamma[i]].offset : NULL;
        o->dbeta = grads ? grads + t->views[m->beta[i]].offset : NULL;
        o->run_mean = stats ? stats + t->stats[m->mean[i]].offset : NULL;
        o->run_var = stats ? stats + t->stats[m->var[i]].offset : NULL;
        o->rstd = c->rstd[i];
        o->red = hn->gen_red + off;
        o->rows = c->rows;
        o->f = m->dims[i + 1];
        o->global_rows = c->global_rows;
        off += 2 * (size_t)o->f;
    }
    return off;
}

static void gens_forward_grouped(CudaCtx *ctx, CudaHyper *hn, const float *params, float *stats,
                                 const float *codes, int n, int global_n, int train, const BnConfig *bn, float *raw) {
    const HyperArch *h = hn->h;
    const TargetArch *t = hn->t;
    const size_t cs = (size_t)h->code_size;
    if (params != hn->bound_params) cuda_hyper_bind(ctx, hn, params, hn->bound_grads);
    RowCopyGroup cp;
    memset(&cp, 0, sizeof(cp));
    for (int l = 0; l < h->n_gens; l++) {
        CudaMlpCache *c = &hn->gen[l];
        const int nc = h->gen_codes[l];
        c->rows = n * nc;
        c->global_rows = global_n * nc;
        c->in0 = hn->gen_in[l];
        cp.op[cp.n++] = (RowCopy){hn->gen_in[l], codes + (size_t)h->gen_code_offset[l] * cs, (size_t)nc * cs,
                                  (size_t)nc * cs, (size_t)h->n_codes * cs};
    }
    if (n > 0 && cp.n > 0) k_copy_rows_group(ctx->stream, &cp, n);  // (n, nc, cs) <- codes[b, off:off+nc, :]
    for (int i = 0; i < hn->levels; i++) {
        gemm_level(ctx, hn, i, GEMM_FWD);
        BnGroup g;
        const size_t used = bn_level(hn, i, params, stats, NULL, bn, train, &g);
        if (g.n == 0) continue;
        if (train) {
            k_bn_stats_group(ctx->stream, &g);
            if (ctx->dc) devcomm_bn_allreduce(ctx->dc, hn->gen_red, used, ctx->stream); // one per level
        }
        k_bn_finalize_group(ctx->stream, &g);
        k_bn_apply_group(ctx->stream, &g);
    }
    memset(&cp, 0, sizeof(cp));
    for (int l = 0; l < h->n_gens; l++) {  // generator output (n, size) is layer l's block of each sample
        const size_t size = t->layers[l].size;
        cp.op[cp.n++] = (RowCopy){raw + t->layers[l].offset, cuda_mlp_out(&h->gens[l], &hn->gen[l]), size,
                                  t->n_weights, size};
    }
    if (n > 0 && cp.n > 0) k_copy_rows_group(ctx->stream, &cp, n);
}

static void gens_backward_grouped(CudaCtx *ctx, CudaHyper *hn, const float *params, float *grads,
                                  const float *draw, const BnConfig *bn) {
    const HyperArch *h = hn->h;
    const TargetArch *t = hn->t;
    const int n = hn->n;
    const size_t cs = (size_t)h->code_size;
    if (params != hn->bound_params || grads != hn->bound_grads) cuda_hyper_bind(ctx, hn, params, grads);
    RowCopyGroup cp;
    memset(&cp, 0, sizeof(cp));
    for (int l = 0; l < h->n_gens; l++) {
        const size_t size = t->layers[l].size;
        cp.op[cp.n++] = (RowCopy){hn->dgen_out[l], draw + t->layers[l].offset, size, size, t->n_weights};
    }
    if (n > 0 && cp.n > 0) k_copy_rows_group(ctx->stream, &cp, n);
    for (int i = hn->levels - 1; i >= 0; i--) {
        BnGroup g;
        const size_t used = bn_level(hn, i, params, NULL, grads, bn, 1, &g);
        if (g.n > 0) {
            k_bn_bwd_sums_group(ctx->stream, &g);
            if (ctx->dc) devcomm_bn_allreduce(ctx->dc, hn->gen_red, used, ctx->stream); // one per level
            k_bn_bwd_apply_group(ctx->stream, &g);
        }
        gemm_level(ctx, hn, i, GEMM_DW);
        gemm_level(ctx, hn, i, GEMM_DX);
    }
    memset(&cp, 0, sizeof(cp));
    for (int l = 0; l < h->n_gens; l++) {
        const size_t nc = (size_t)h->gen_codes[l];
        cp.op[cp.n++] = (RowCopy){hn->dcodes + (size_t)h->gen_code_offset[l] * cs, hn->gdgen_in[l], nc * cs,
                                  (size_t)h->n_codes * cs, nc * cs};
    }
    if (n > 0 && cp.n > 0) k_copy_rows_group(ctx->stream, &cp, n);
}

void cuda_hyper_forward(CudaCtx *ctx, CudaHyper *hn, const float *params, float *stats, const float *z, int n,
                        int global_n, int train, const BnConfig *bn, float *raw) {
    const HyperArch *h = hn->h;
    HT_CHECK(n <= hn->max_n, "hypernetwork: %d samples exceed the %d it was set up for", n, hn->max_n);
    hn->n = n;
    cuda_mlp_forward(ctx, &h->extractor, &h->table, params, stats, &hn->ext, z, n, global_n, train, bn);
    const float *codes = cuda_mlp_out(&h->extractor, &hn->ext); // (n, n_codes, code_size)
    if (hn->gens_impl == CUDA_GENS_GROUPED) gens_forward_grouped(ctx, hn, params, stats, codes, n, global_n, train, bn, raw);
    else gens_forward_split(ctx, hn, params, stats, codes, n, global_n, train, bn, raw);
}

void cuda_hyper_backward(CudaCtx *ctx, CudaHyper *hn, const float *params, float *grads, const float *draw,
                         const BnConfig *bn) {
    const HyperArch *h = hn->h;
    if (hn->gens_impl == CUDA_GENS_GROUPED) gens_backward_grouped(ctx, hn, params, grads, draw, bn);
    else gens_backward_split(ctx, hn, params, grads, draw, bn);
    cuda_mlp_backward(ctx, &h->extractor, &h->table, params, grads, &hn->ext, hn->dcodes, NULL, bn);
}
