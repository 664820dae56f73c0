// mlp_cuda.cuh: device twins of src/mlp.h (MLPs with leaky ReLU + synchronized batch norm) and
// src/hyper.h (extractor, per-layer weight generators, assembly of the flat weight vectors).
// Same arguments and semantics as the CPU functions, with device pointers and a CudaCtx; the
// batch-norm sums are all-reduced through ctx->dc (NCCL) when there are several ranks.
#ifndef HT_MLP_CUDA_CUH
#define HT_MLP_CUDA_CUH

#include "common.cuh"

extern "C" {
#include "hyper.h"
#include "mlp.h"
}

typedef struct {
    int max_rows, rows, global_rows;
    const float *in0;                      // the caller's input (device)
    float *y[HT_MAX_HIDDEN + 1];
    float *pre[HT_MAX_HIDDEN + 1];
    float *xhat[HT_MAX_HIDDEN + 1];
    float *rstd[HT_MAX_HIDDEN + 1];
    float *dbuf[2];
    double *red;                           // 4 * max dim doubles
} CudaMlpCache;

void cuda_mlp_cache_init(CudaMlpCache *c, const MlpArch *m, int max_rows);
void cuda_mlp_cache_free(CudaMlpCache *c);
static inline float *cuda_mlp_out(const MlpArch *m, const CudaMlpCache *c) { return c->pre[m->n_dense - 1]; }

// As mlp_forward / mlp_backward (src/mlp.h); params, stats, grads, x, dout, dx are device pointers.
void cuda_mlp_forward(CudaCtx *ctx, const MlpArch *m, const ParamTable *t, const float *params, float *stats,
                      CudaMlpCache *c, const float *x, int rows, int global_rows, int train, const BnConfig *bn);
void cuda_mlp_backward(CudaCtx *ctx, const MlpArch *m, const ParamTable *t, const float *params, float *grads,
                       CudaMlpCache *c, const float *dout, float *dx, const BnConfig *bn);

typedef struct {
    const HyperArch *h;
    const TargetArch *t;
    int max_n, n;
    CudaMlpCache ext;
    CudaMlpCache gen[HT_MAX_OPS];
    float *gen_in[HT_MAX_OPS];
    float *dgen_out[HT_MAX_OPS];
    float *dgen_in;
    float *dcodes;
} CudaHyper;

void cuda_hyper_init(CudaHyper *hn, const HyperArch *h, const TargetArch *t, int max_n);
void cuda_hyper_free(CudaHyper *hn);
// As hyper_forward / hyper_backward (src/hyper.h).
void cuda_hyper_forward(CudaCtx *ctx, CudaHyper *hn, const float *params, float *stats, const float *z, int n,
                        int global_n, int train, const BnConfig *bn, float *raw);
void cuda_hyper_backward(CudaCtx *ctx, CudaHyper *hn, const float *params, float *grads, const float *draw,
                         const BnConfig *bn);

#endif
