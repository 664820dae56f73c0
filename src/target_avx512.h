// target_avx512.h: the AVX-512 kernels of the target network's fast path (src/target_avx512.c),
// internal to target.c; the driver they plug into is target_avx2.c's (TargetSimdKernels).
#ifndef HT_TARGET_AVX512_H
#define HT_TARGET_AVX512_H

#include "target_avx2.h"

// 1 if this build has the kernels (x86-64, GCC or Clang) and the running CPU has AVX-512 F, BW
// and VL, AVX2 and FMA (the shared driver's pool and routing code is AVX2).
int target_avx512_cpu_ok(void);
// The AVX-512 kernels (NULL where the build has none).
const TargetSimdKernels *target_avx512_kernels(void);

#endif
