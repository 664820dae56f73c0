// target.h: the target network (the network whose weights the hypernetwork generates), run for
// many generated networks at once, each on its own images, OpenMP over networks (one network per
// thread). Implementations of the batched calls: the reference (per-network im2col + OpenBLAS
// sgemm, the per-op functions below) and a fast path (src/target_avx2.c) with AVX2/FMA or AVX-512
// kernels (src/target_avx512.c), chosen at run time. Layouts are described in arch.h.
#ifndef HT_TARGET_H
#define HT_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"

// Implementations of the batched calls. All compute the same function in float32 and differ
// only in summation order and FMA rounding (tests/test_target.c states the tolerance); avx512
// and avx2 (and their dense variants) give the same bits.
typedef enum {
    TARGET_IMPL_REFERENCE = 0, // per-network im2col + OpenBLAS sgemm (the oracle)
    TARGET_IMPL_AVX2 = 1,      // implicit-GEMM AVX2/FMA micro-kernels (src/target_avx2.c), backward
                               // through max pools from the routed gradients only
    TARGET_IMPL_AVX2_DENSE = 2,// the same kernels, dense backward through max pools
    TARGET_IMPL_AVX512 = 3,    // the avx2 implementation with AVX-512 kernels (src/target_avx512.c):
                               // bitwise the same results as avx2
    TARGET_IMPL_AVX512_DENSE = 4, // the same kernels, dense backward through max pools
} TargetImpl;
#define TARGET_IMPL_COUNT 5

// Precision of the forward-only evaluation (target_forward). Training (target_loss_grad) is always
// float32. bf16: conv inputs, activations and weights rounded to bf16, float32 sums (AVX512_BF16,
// src/target_bf16.c); fc layers and softmax stay float32. Numerics: docs/performance.md.
typedef enum {
    TARGET_EVAL_FP32 = 0, // the implementation's float32 forward (default)
    TARGET_EVAL_BF16 = 1, // bf16 dot products, float32 accumulation
} TargetPrecision;

typedef struct {
    const TargetArch *arch;
    int max_images;   // images per network per call
    int n_threads;    // OpenMP threads (workspaces)
    size_t ws_floats; // floats of one thread's workspace (sized for impl; target_set_impl grows it)
    float *ws;        // (n_threads, ws_floats)
    TargetImpl impl;  // set by target_init; change with target_set_impl
    TargetPrecision eval; // target_forward's precision: fp32, or HT_EVAL_PRECISION at target_init;
                          // change with target_set_eval_precision
} TargetNet;

// target_init picks TARGET_IMPL_AVX512 when the CPU has AVX-512 (F, BW, VL) and the architecture
// fits the fast path (conv filters a multiple of 8, conv [relu] [maxpool] blocks then fc layers),
// else TARGET_IMPL_AVX2 when it has AVX2 and FMA, else the reference. The environment variable
// HT_TARGET_IMPL=reference|avx2|avx2-dense|avx512|avx512-dense overrides the choice (an unknown
// name, or one this CPU or architecture cannot run, is a fatal error). HT_EVAL_PRECISION=fp32|bf16
// sets the evaluation precision (default fp32; an unknown value, or bf16 where it cannot run, is a
// fatal error); it also wins over target_apply_eval_precision (a job's "eval_precision").
void target_init(TargetNet *t, const TargetArch *arch, int max_images, int n_threads);
void target_free(TargetNet *t);
// Selects the implementation for the following calls (reallocating the workspace if impl needs a
// larger one: not during a call). Returns 1, or 0 (and leaves it unchanged) if impl is not
// available for this CPU or architecture.
int target_set_impl(TargetNet *t, TargetImpl impl);
// 1 if impl can run this architecture on this CPU.
int target_impl_available(const TargetArch *arch, TargetImpl impl);
const char *target_impl_name(TargetImpl impl);
// The implementation named name (as target_impl_name writes it): 1, or 0 for an unknown name.
int target_impl_parse(const char *name, TargetImpl *impl);

// Evaluation precision. target_set_eval_precision returns 1, or 0 (unchanged) if p cannot run here;
// target_precision_available says why not (*why, when not NULL: the CPU or the architecture).
int target_precision_available(const TargetArch *arch, TargetPrecision p, const char **why);
int target_set_eval_precision(TargetNet *t, TargetPrecision p);
// Sets p as a job asks for it (source names the request, e.g. the job key "eval_precision"), unless
// HT_EVAL_PRECISION is set (that choice stays). Fatal, one line naming source and the reason, if p
// cannot run on this CPU or architecture: never a silent fallback to float32.
void target_apply_eval_precision(TargetNet *t, TargetPrecision p, const char *source);
const char *target_precision_name(TargetPrecision p);
// The precision named name ("fp32", "bf16"): 1, or 0 for an unknown name.
int target_precision_parse(const char *name, TargetPrecision *p);

// Forward pass of n_nets networks. Network k uses theta + k*n_weights and the n_img images at
// images + k*img_stride (each in_size floats, NHWC, in [0, 1]); img_stride = 0 shares one set.
// probs: (n_nets, n_img, classes) softmax probabilities. Runs in t->eval precision.
void target_forward(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                    size_t img_stride, float *probs);

// Cross-entropy of each network on its images. labels + k*label_stride holds network k's labels.
// loss[k] = sum over its images of -log p(label), correct[k] = images whose argmax is the label.
// If dtheta != NULL: dtheta (n_nets, n_weights) = scale * d(loss[k]) / d(theta_k), overwritten.
void target_loss_grad(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                      size_t img_stride, const uint8_t *labels, size_t label_stride, float scale,
                      double *loss, int *correct, float *dtheta);


// ---- Per-op functions (one network, n_img images; used by the batched calls and by tests) ----
// Shapes are per image, NHWC, from the op; w points at the layer's weights in the flat vector:
// (filters, fan_in + 1), filter-major, bias last; dw has the same layout and is overwritten.
// din, when not NULL, is overwritten with dLoss/dIn (n_img, in_h, in_w, in_c).

// Floats of scratch that conv needs for n_img images (an im2col block and the flipped kernel).
size_t target_conv_scratch_floats(const TargetOp *op, int n_img);
// out (n_img, H, W, filters) = conv SAME (stride 1, odd kernel) of in (n_img, H, W, in_c).
void target_conv_forward(const TargetOp *op, int n_img, const float *in, const float *w,
                         float *scratch, float *out);
// dw and (unless din is NULL) din from dout (n_img, H, W, filters).
void target_conv_backward(const TargetOp *op, int n_img, const float *in, const float *w,
                          const float *dout, float *scratch, float *dw, float *din);
// out (n_img, units) = in (n_img, fan_in) . W^T + b.
void target_fc_forward(const TargetOp *op, int n_img, const float *in, const float *w, float *out);
void target_fc_backward(const TargetOp *op, int n_img, const float *in, const float *w,
                        const float *dout, float *dw, float *din);
// n floats; in == out allowed. Backward uses the output's mask (out > 0); din == dout allowed.
void target_relu_forward(size_t n, const float *in, float *out);
void target_relu_backward(size_t n, const float *out, const float *dout, float *din);
// Max pool SAME, window = stride = kernel (TensorFlow padding: pad_top = (out*k - in)/2),
// out (n_img, out_h, out_w, C); argmax (same shape) gets the index into in of each output's
// first maximum, and the backward pass sends each output's gradient there.
void target_maxpool_forward(const TargetOp *op, int n_img, const float *in, float *out,
                            int32_t *argmax);
void target_maxpool_backward(const TargetOp *op, int n_img, const int32_t *argmax, const float *dout,
                             float *din);
// Softmax cross-entropy of logits (n_img, classes). probs, dlogits (= scale * dLoss/dLogits),
// loss (sum over images, double) and correct (argmax == label) are each optional (NULL);
// labels may be NULL for probabilities only.
void target_softmax_ce(int n_img, int classes, const float *logits, const uint8_t *labels,
                       float scale, float *probs, float *dlogits, double *loss, int *correct);

#endif
