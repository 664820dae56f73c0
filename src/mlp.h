// mlp.h: the hypernetwork's MLPs (extractor E and weight generators W_l). Dense layers without
// biases; every hidden layer is dense -> leaky ReLU -> batch norm (statistics over all rows of
// the global batch: the noise batch, times filters for W_l; synchronized across ranks through
// comm_bn_allreduce); the last dense layer is linear.
#ifndef HT_MLP_H
#define HT_MLP_H

#include "arch.h"
#include "comm.h"

typedef struct {
    float alpha;      // leaky ReLU slope
    double eps;       // batch-norm epsilon
    double decay;     // running-average decay
} BnConfig;

// Activations of one forward pass, kept for the backward pass. Buffers hold max_rows rows.
typedef struct {
    int max_rows;
    int rows;                              // rows of the last forward pass
    int global_rows;                       // rows over all ranks (batch-norm count)
    const float *in0;                      // the caller's input (rows, dims[0])
    float *y[HT_MAX_HIDDEN + 1];           // hidden i: batch-norm output (rows, dims[i+1])
    float *pre[HT_MAX_HIDDEN + 1];         // dense i output before activation (rows, dims[i+1])
    float *xhat[HT_MAX_HIDDEN + 1];        // hidden i: normalized activation (rows, dims[i+1])
    float *rstd[HT_MAX_HIDDEN + 1];        // hidden i: 1/sqrt(var + eps) (dims[i+1])
    float *dbuf[2];                        // backward scratch (rows, max dim)
    double *red;                           // reduction scratch (4 * max dim)
    int simd;                              // 1: AVX2 batch-norm row kernels (set at init when the
                                           // CPU has AVX2; same bits as the portable ones)
} MlpCache;

void mlp_cache_init(MlpCache *c, const MlpArch *m, int max_rows);
// Floats mlp_cache_init allocates for max_rows rows (checked arithmetic; for memory estimates).
size_t mlp_cache_floats(const MlpArch *m, int max_rows);
void mlp_cache_free(MlpCache *c);

// Output of the last forward pass: (rows, dims[n_dense]).
static inline float *mlp_out(const MlpArch *m, const MlpCache *c) { return c->pre[m->n_dense - 1]; }

// Forward on rows local rows of x (rows, dims[0]); global_rows = rows over all ranks (batch-norm
// count). train = 1: batch statistics (synchronized), running averages updated in `stats`;
// train = 0: running averages (evaluation mode), no communication.
void mlp_forward(const MlpArch *m, const ParamTable *t, const float *params, float *stats,
                 MlpCache *c, const float *x, int rows, int global_rows, int train,
                 const BnConfig *bn, Comm *comm);

// Backward of the last training forward pass. dout (rows, dims[n_dense]) is read; parameter
// gradients are accumulated (+=) into grads; dx (rows, dims[0]) is written when non-NULL.
void mlp_backward(const MlpArch *m, const ParamTable *t, const float *params, float *grads,
                  MlpCache *c, const float *dout, float *dx, const BnConfig *bn, Comm *comm);

#endif
