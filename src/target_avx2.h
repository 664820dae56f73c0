// target_avx2.h: the fast path of the target network (AVX2 + FMA kernels, chosen at run time),
// internal to target.c. It computes exactly what the reference path in target.c computes (same
// inputs, outputs and workspace contract), in a different float32 summation order.
#ifndef HT_TARGET_AVX2_H
#define HT_TARGET_AVX2_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"

// 1 if this build has the kernels (x86-64, GCC or Clang) and the running CPU has AVX2 and FMA.
int target_avx2_cpu_ok(void);
// 1 if the architecture fits the fast path: zero or more blocks conv [relu] [maxpool] with
// filters a multiple of 8, then fc [relu] ... fc. Otherwise 0 and *why says what does not fit.
int target_avx2_arch_ok(const TargetArch *a, const char **why);
// Floats of one thread's workspace for up to max_images images per network.
size_t target_avx2_ws_floats(const TargetArch *a, int max_images);
// One network on n <= max_images images: forward, softmax cross-entropy, and the backward pass
// if dtheta is not NULL. Arguments as for target.c's run_net (probs, loss, correct, dtheta
// optional; labels required for loss, correct and dtheta). routed = 1: the backward of conv
// blocks with a max pool (and C a multiple of 8) takes only the routed (nonzero) gradients;
// 0: dense GEMMs over the whole dOut.
void target_avx2_net(const TargetArch *a, int max_images, int routed, float *ws, const float *theta, int n,
                     const float *images, const uint8_t *labels, float scale, float *probs,
                     double *loss, int *correct, float *dtheta);

#endif
