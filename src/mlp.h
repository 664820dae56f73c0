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
    double *red;                           // reduction scratch (4 * max dim): a lone MLP's sums in
                                           // [0, 2 max dim), local backward sums in [2 f, 4 f)
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

// Several MLPs side by side (the hypernetwork's weight generators), run level by level: at each
// hidden level every MLP that has one there puts its batch-norm sums into `red` (MLP k after the
// ones before it, 2 * dims[i+1] doubles each) and the group makes ONE comm_bn_allreduce for all of
// them, forward and backward (the all-reduce of a concatenation is the concatenation of the
// all-reduces, so every MLP's numbers are those of mlp_forward / mlp_backward alone). MLPs of
// unequal depth are fine: a level holds the MLPs that have it. mlp_forward / mlp_backward are the
// group of one. Collectives per pass: the number of levels that hold a batch norm (train only).
typedef struct {
    int n;                               // MLPs, 0 to HT_MAX_OPS
    const MlpArch *m[HT_MAX_OPS];
    MlpCache *c[HT_MAX_OPS];             // MLP k's activations (k-th forward's rows)
} MlpGroup;

// Doubles `red` must hold: the largest level's sum of 2 * dims[i+1] over the MLPs with a batch
// norm there.
size_t mlp_group_red_doubles(const MlpGroup *g);
// As mlp_forward for each MLP k on x[k] (rows[k], dims[0]) with global_rows[k].
void mlp_group_forward(const MlpGroup *g, const ParamTable *t, const float *params, float *stats,
                       const float *const *x, const int *rows, const int *global_rows, int train,
                       const BnConfig *bn, double *red, Comm *comm);
// As mlp_backward for each MLP k with dout[k] and dx[k] (NULL: not needed). dx[k] must not alias
// any other MLP's buffers.
void mlp_group_backward(const MlpGroup *g, const ParamTable *t, const float *params, float *grads,
                        const float *const *dout, float *const *dx, const BnConfig *bn, double *red,
                        Comm *comm);

#endif
