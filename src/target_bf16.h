// target_bf16.h: bf16 evaluation of the target network (src/target_bf16.c), internal to target.c:
// the forward pass only (never a gradient), conv layers with bf16 inputs and weights and float32
// accumulation (AVX512_BF16's vdpbf16ps), fc layers and softmax in float32. Selected by the job key
// "eval_precision": "bf16" or HT_EVAL_PRECISION=bf16 (target.h: target_set_eval_precision).
#ifndef HT_TARGET_BF16_H
#define HT_TARGET_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"

// 1 if this build has the kernels (x86-64, GCC or Clang) and the running CPU has AVX512_BF16
// (cpuid leaf 7, subleaf 1, EAX bit 5) besides AVX-512 F, BW and VL.
int target_bf16_cpu_ok(void);
// 1 if the architecture fits: the fast path's shape (target_avx2_arch_ok: blocks conv [relu]
// [maxpool] with filters a multiple of 8, then fc layers) and every max pool 2x2 over an even
// height and width. Otherwise 0 and *why (if not NULL) says what does not fit.
int target_bf16_arch_ok(const TargetArch *a, const char **why);
// Floats of one thread's workspace for up to max_images images per network.
size_t target_bf16_ws_floats(const TargetArch *a, int max_images);

// Deliberate faults for tests/test_bf16.c, which must see its checks fail with them (0 in use).
typedef enum {
    TARGET_BF16_OK = 0,
    TARGET_BF16_FAULT_TRUNCATE = 1,  // bf16 conversion by truncation instead of round-to-nearest-even
    TARGET_BF16_FAULT_DROP_PAIR = 2, // each kernel row's last reduction pair left out
} TargetBf16Fault;

// probs (n, classes) = softmax of one network (theta) on n <= max_images images (NHWC floats, each
// a->in_size), computed in the workspace ws (target_bf16_ws_floats(a, max_images) floats).
void target_bf16_forward_net(const TargetArch *a, int max_images, float *ws, const float *theta, int n,
                             const float *images, float *probs, TargetBf16Fault fault);

// The bf16 value (round to nearest even, as vcvtneps2bf16 for normal numbers) of x, back in float:
// what the kernels multiply (tests' references use it). NaN stays NaN.
float target_bf16_round(float x);

#endif
