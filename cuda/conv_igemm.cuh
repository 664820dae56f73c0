// conv_igemm.cuh: the target network's conv blocks (conv SAME, odd kernel, stride 1 + bias + ReLU +
// 2x2 max pool, window = stride = 2, TensorFlow SAME padding) as implicit GEMMs on the device, for
// many networks per call (grid z = network), each with its own weights. No im2col block is
// materialized: every kernel gathers its input window from the NHWC activation into shared memory
// tile by tile. docs/cuda.md ("Implicit-GEMM convolutions") has the design and tile sizes.
//
//   forward   conv + bias + ReLU + max pool fused: a block computes (4 x TPX conv pixels = the TPX
//             pooled windows) x (4 x TFY filters); each thread owns one pooled window x 4 filters
//             (16 accumulators), so the pool is taken in registers. Writes the pooled output and
//             the argmax (int32, the convention of target_maxpool_forward: index into the
//             network's ReLU output block (n_img, H, W, F), first maximum in (y, x) order).
//   dW        implicit GEMM over the pooled positions: only the routed gradient (the argmax pixel
//             of each pooled output and filter, masked by ReLU through the pooled value) enters,
//             one multiply-add per (pooled position, filter, weight). Layers with few weights
//             split the positions over several blocks; the partial sums are added in a fixed
//             order by a second kernel (deterministic, no atomics).
//   dbias     column sums of the routed gradient in double (fixed tree: deterministic).
//   dIn       gather form (each input pixel sums its k x k taps x filters; no atomics, so the
//             result does not depend on scheduling): the routed conv-output gradient is formed on
//             the fly from (pooled output, its gradient, argmax).
//
// Weights are read from a packed copy (igemm_pack_weights): per network, per conv layer, F rows of
// kp = round_up(fan_in, 4) floats then the F biases, each layer block at a multiple of 32 floats
// (128 bytes). The flat 20,018-float layout (arch.h) stays the interface everywhere else; the
// weight gradients are written packed and scattered back by igemm_unpack_grads.
//
// Index arithmetic: 32-bit inside the kernels (per network: n_img * H * W * max(C, F) < 2^31,
// checked on the host by igemm_check_sizes); 64-bit only for the per-network base pointers.
#ifndef HT_CONV_IGEMM_CUH
#define HT_CONV_IGEMM_CUH

#include "common.cuh"

// Where each conv layer's block lives in one network's packed weights.
typedef struct {
    size_t off[HT_MAX_OPS]; // by layer index (conv layers only; fc layers: 0, unused)
    int kp[HT_MAX_OPS];     // padded row length (fan_in rounded up to 4)
    size_t stride;          // floats per network (a multiple of 32)
} IgemmPack;

// 1 if every conv op of a is followed by a ReLU and a 2x2 max pool (the fused block these kernels
// run); else 0 with the reason in why (one line).
int igemm_arch_fits(const TargetArch *a, char *why, size_t why_len);
void igemm_pack_init(IgemmPack *p, const TargetArch *a);

// wpack (n_nets, p->stride) <- the conv layers of theta (n_nets, theta_stride) (padding zeroed).
void igemm_pack_weights(cudaStream_t st, const IgemmPack *p, const TargetArch *a, int n_nets, const float *theta,
                        size_t theta_stride, float *wpack);
// dtheta (n_nets, dtheta_stride) <- the conv layers of dwpack (weights and biases; other layers untouched).
void igemm_unpack_grads(cudaStream_t st, const IgemmPack *p, const TargetArch *a, int n_nets, const float *dwpack,
                        float *dtheta, size_t dtheta_stride);

// Fatal (one line naming the sizes) if n_nets networks of n_img images do not fit the kernels'
// 32-bit indices and grid limits.
void igemm_check_sizes(const TargetOp *conv, int n_nets, int n_img);

// conv = ops[i], pool = ops[i + 2] (ReLU between). in: network b's input at in + b*in_stride
// (in_stride 0: one shared input); w: its packed layer block at w + b*w_stride (kp from IgemmPack).
// out, argmax: (n_nets, n_img, OH, OW, F) contiguous.
void igemm_conv_pool_forward(cudaStream_t st, const TargetOp *conv, const TargetOp *pool, int n_nets, int n_img,
                             const float *in, size_t in_stride, const float *w, int kp, size_t w_stride, float *out,
                             int32_t *argmax);
// From the forward's out and argmax and dout = dLoss/d(pooled output) (n_nets, n_img, OH, OW, F):
// dw (packed layout, weights and biases of the layer at dw + b*dw_stride) overwritten; din (n_nets,
// n_img, H, W, C) overwritten unless NULL. scratch: igemm_dw_scratch_floats(...) floats (may be NULL
// when that is 0): dW's partial sums when the pooled positions are split over several blocks.
void igemm_conv_pool_backward(cudaStream_t st, const TargetOp *conv, const TargetOp *pool, int n_nets, int n_img,
                              const float *in, size_t in_stride, const float *w, int kp, size_t w_stride,
                              const float *out, const int32_t *argmax, const float *dout, float *dw,
                              size_t dw_stride, float *din, float *scratch);
size_t igemm_dw_scratch_floats(const TargetOp *conv, const TargetOp *pool, int n_nets, int n_img);

#endif
