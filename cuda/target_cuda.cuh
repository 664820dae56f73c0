// target_cuda.cuh: the target network on the GPU for many generated networks at once (src/target.h
// on device buffers). Every op runs for all networks of the call in one batched step: conv = im2col
// + cublasSgemmStridedBatched (one GEMM per network, each with its own weights read in place from
// the flat weight vectors: filter-major rows of fan_in + 1 floats, the bias skipped through the
// leading dimension), fc = the same GEMM on the flattened NHWC input, ReLU / max pool / softmax
// cross-entropy as element-wise kernels.
//
// Backward: dW = dOut^T . im2col(in) (batched GEMM, the forward's im2col block kept), dbias =
// column sums (double), dIn = col2im(dOut . W) (gather form, no atomics). src/target.c computes
// dIn as a convolution with the flipped kernel instead; the two are the same sum.
//
// That is HT_CUDA_CONV=im2col. With igemm (the default where every conv is followed by ReLU and a
// 2x2 max pool) each conv + ReLU + pool block runs as the implicit-GEMM kernels of conv_igemm.cuh
// instead: no im2col block, no conv/ReLU activations stored, weights packed per call.
//
// Math (the job key "cuda_math", config.h CudaMath): fp32 everywhere by default. With tf32 the conv
// layers' GEMMs (forward, dW, dX) run on TF32 tensor cores (cublasGemmStridedBatchedEx,
// CUBLAS_COMPUTE_32F_FAST_TF32: operands rounded to 10 mantissa bits, float accumulation) on the
// im2col path; fc layers, bias sums, col2im and everything else stay fp32. The implicit-GEMM
// kernels are fp32 only, so tf32 selects im2col (HT_CUDA_CONV=igemm with tf32 is a fatal error).
#ifndef HT_TARGET_CUDA_CUH
#define HT_TARGET_CUDA_CUH

#include "common.cuh"
#include "conv_igemm.cuh"

extern "C" {
#include "target.h"
}

// How the conv layers run (HT_CUDA_CONV=im2col|igemm; default igemm where igemm_arch_fits).
typedef enum { CUDA_CONV_IM2COL = 0, CUDA_CONV_IGEMM = 1 } CudaConvImpl;

typedef struct {
    const TargetArch *arch;
    CudaConvImpl conv;               // chosen by cuda_target_init
    CudaMath math;                   // the conv GEMMs' math (tf32: im2col path only)
    IgemmPack pack;                  // igemm: packed conv weights per network
    float *wpack, *dwpack;           // igemm: (cap networks, pack.stride) weights and their gradients
    float *dwscratch;                // igemm: dW partial sums of split reductions (largest need of any call)
    int cap;                         // networks x images per call, at most
    int with_backward;
    float *act[HT_MAX_OPS];          // output of op i (ReLU after op 0 shares its input's buffer)
    int32_t *argmax[HT_MAX_OPS];     // max-pool ops
    float *col[HT_MAX_OPS];          // im2col: conv ops: im2col of the input (forward), then dCol (backward)
    float *grad[2];                  // ping-pong gradients of op outputs (backward)
    double *terms;                   // (cap) per-image losses
    int *flags;                      // (cap) per-image correctness
} CudaTarget;

// cap: the largest n_nets * n_img of any call. The conv implementation comes from the environment:
// HT_CUDA_CONV=im2col (im2col + cuBLAS) or igemm (cuda/conv_igemm.cu: implicit GEMM, conv + bias +
// ReLU + max pool fused); unset or empty: igemm when the architecture fits it, else im2col. An
// unknown value, or igemm for an architecture it cannot run, is a one-line fatal error. math =
// CUDA_MATH_TF32 (the job's cuda_math): im2col with TF32 conv GEMMs; HT_CUDA_CONV=igemm is then fatal.
void cuda_target_init(CudaTarget *t, const TargetArch *arch, int cap, int with_backward,
                      CudaMath math = CUDA_MATH_FP32);
// The choice above for arch and math without allocating anything (fatal on a bad HT_CUDA_CONV, or
// on igemm with tf32).
CudaConvImpl cuda_conv_impl_choose(const TargetArch *arch, CudaMath math);
CudaConvImpl cuda_conv_impl_from_env(const TargetArch *arch); // = cuda_conv_impl_choose(arch, fp32)
const char *cuda_conv_impl_name(CudaConvImpl c);
const char *cuda_math_name(CudaMath m);
void cuda_target_free(CudaTarget *t);

// Probabilities (n_nets, n_img, classes) of n_nets networks theta (n_nets, n_weights), network b on
// the n_img images at images + b*img_stride (img_stride = 0: one shared set; its first layer's
// im2col is then computed once for all networks).
void cuda_target_forward(CudaCtx *ctx, CudaTarget *t, int n_nets, const float *theta, int n_img,
                         const float *images, size_t img_stride, float *probs);

// As target_loss_grad (src/target.h): loss[b] (double) and correct[b] (int) on the device;
// dtheta (n_nets, n_weights) = scale * dLoss_b/dtheta_b, overwritten (NULL: forward only).
void cuda_target_loss_grad(CudaCtx *ctx, CudaTarget *t, int n_nets, const float *theta, int n_img,
                           const float *images, size_t img_stride, const uint8_t *labels, size_t label_stride,
                           float scale, double *loss, int *correct, float *dtheta);

// ---- per-op functions for n_nets networks (used by the calls above and by tests/gpu) ----
// in: network b's input at in + b*in_stride (in_stride 0: shared); w: the layer's weights of
// network b at w + b*w_stride; out, dout, din: (n_nets, n_img, ...) contiguous.
// col: (n_nets or 1 if in_stride == 0, n_img*H*W, k*k*C) im2col block written by the forward.
// math: the conv GEMMs' (CUDA_MATH_TF32: TF32 tensor cores, see above).
void cuda_conv_forward(CudaCtx *ctx, const TargetOp *op, int n_nets, int n_img, const float *in,
                       size_t in_stride, const float *w, size_t w_stride, float *col, float *out,
                       CudaMath math = CUDA_MATH_FP32);
// dw: weights and biases of the layer (layout of w); din may be NULL. col: the forward's block
// (per-network, in_stride != 0); it is overwritten by dCol when din is requested.
void cuda_conv_backward(CudaCtx *ctx, const TargetOp *op, int n_nets, int n_img, float *col, const float *w,
                        size_t w_stride, const float *dout, float *dw, size_t dw_stride, float *din,
                        CudaMath math = CUDA_MATH_FP32);
void cuda_fc_forward(CudaCtx *ctx, const TargetOp *op, int n_nets, int n_img, const float *in, size_t in_stride,
                     const float *w, size_t w_stride, float *out);
void cuda_fc_backward(CudaCtx *ctx, const TargetOp *op, int n_nets, int n_img, const float *in, size_t in_stride,
                      const float *w, size_t w_stride, const float *dout, float *dw, size_t dw_stride, float *din);

#endif
