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

// How the weight generators run (HT_CUDA_GENS): split = one after the other, as src/ did before
// (per generator: 2-D copies, its GEMMs, its batch-norm kernels and all-reduces); grouped (the
// default) = level by level, as src/hyper.c does now: per MLP level one cublasSgemmGroupedBatched
// for the forward GEMMs (and one each for the backward dW and dX GEMMs), one launch per batch-norm
// kernel for all generators (kernels.cuh BnGroup) with their sums side by side in one buffer, so
// ONE devcomm_bn_allreduce per level; the code gather and the output scatter one kernel each.
// Both give the same bits in the emulation (the same per-element device code and the same GEMM
// arguments); on a GPU the grouped GEMM may pick other kernels than cublasSgemm (summation order).
typedef enum { CUDA_GENS_SPLIT = 0, CUDA_GENS_GROUPED = 1 } CudaGensImpl;
// From HT_CUDA_GENS (unset or empty: grouped); anything but split|grouped is a one-line error.
CudaGensImpl cuda_gens_impl_from_env(void);
const char *cuda_gens_impl_name(CudaGensImpl g);

typedef struct {
    const HyperArch *h;
    const TargetArch *t;
    int max_n, n;
    CudaGensImpl gens_impl;                // set from HT_CUDA_GENS by cuda_hyper_init; may be changed
                                           // between calls (both paths' buffers exist)
    CudaMlpCache ext;
    CudaMlpCache gen[HT_MAX_OPS];
    float *gen_in[HT_MAX_OPS];
    float *dgen_out[HT_MAX_OPS];
    float *dgen_in;                        // split: (max_n * max codes, code_size), shared
    float *dcodes;
    // grouped path
    float *gdgen_in[HT_MAX_OPS];           // (max_n * codes_l, code_size) per generator
    double *gen_red;                       // (mlp_group_red_doubles) the level's batch-norm sums
    int levels;                            // most dense layers of a generator
    // Device pointer arrays of the grouped GEMMs (cuBLAS reads them from device memory), built by
    // cuda_hyper_bind for one (params, grads) pair: [level][fwd, dW, dX][A, B, C][generator].
    float **d_ptr, **h_ptr;
    const float *bound_params;
    const float *bound_grads;
} CudaHyper;

void cuda_hyper_init(CudaHyper *hn, const HyperArch *h, const TargetArch *t, int max_n);
void cuda_hyper_free(CudaHyper *hn);
// Builds the grouped GEMMs' device pointer arrays for these parameter and gradient buffers (grads
// may be NULL for forward-only use). Copies on the stream and synchronizes it, so it must run
// outside a CUDA graph capture: the trainer binds once at creation; a forward/backward called
// with other buffers rebinds itself (which a capture rejects loudly).
void cuda_hyper_bind(CudaCtx *ctx, CudaHyper *hn, const float *params, const float *grads);
// As hyper_forward / hyper_backward (src/hyper.h).
void cuda_hyper_forward(CudaCtx *ctx, CudaHyper *hn, const float *params, float *stats, const float *z, int n,
                        int global_n, int train, const BnConfig *bn, float *raw);
void cuda_hyper_backward(CudaCtx *ctx, CudaHyper *hn, const float *params, float *grads, const float *draw,
                         const BnConfig *bn);

#endif
