// common.cuh: what every CUDA source of the backend includes: the C headers of the CPU reference
// (same structs, same names), the check macros, and the compute context (one stream, one cuBLAS
// handle, the device communicator).
//
// Numerics (the parity path with src/): no fast math, FMA contraction off (--fmad=false, set in the
// Makefile), cuBLAS in plain FP32 (TF32 only for the conv GEMMs of a cuda_math = tf32 job), every
// reduction that src/ does in double done in double here, with a fixed reduction tree
// (deterministic run to run). Results differ from the CPU only by the summation order of float
// GEMMs and double sums (and TF32 rounding where asked for); tests/gpu/ measure that.
#ifndef HT_CUDA_COMMON_CUH
#define HT_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" {
#include "arch.h"
#include "comm.h"
#include "comm_nccl.h"
#include "common.h"
#include "config.h"
}
#include "cuda_check.h"

typedef struct CudaCtx {
    int device;
    cudaStream_t stream;     // every kernel, copy and cuBLAS call of the trainer runs here
    cublasHandle_t blas;
    DevComm *dc;             // collectives (NULL: one process, nothing to communicate)
    void *blas_ws;           // cuBLAS workspace, set once so that no cuBLAS call allocates during a
                             // CUDA graph capture (the cuBLAS documentation's advice for capture)
} CudaCtx;

void cuda_ctx_init(CudaCtx *ctx, DevComm *dc);
void cuda_ctx_free(CudaCtx *ctx);
void cuda_ctx_sync(CudaCtx *ctx);

// Kernel launches checked by LAUNCH_CHECK since the start of the process (host-side launches:
// a replayed CUDA graph adds none). A diagnostic counter for bench_cuda_step, the process's one
// piece of mutable state in cuda/ besides the HT_CUDA_SYNC setting (both are per process by nature).
long ht_cuda_launch_count(void);

#define HT_BLOCK 256

static inline unsigned grid_for(size_t n, int block = HT_BLOCK) {
    size_t g = (n + (size_t)block - 1) / (size_t)block;
    if (g < 1) g = 1;
    HT_CHECK(g <= 0x7fffffffu, "CUDA grid of %zu blocks is too large", g);
    return (unsigned)g;
}

// Sum over the threads of a 1-D block of HT_BLOCK threads, in a fixed tree order (deterministic).
// Every thread must call it; every thread gets the total. sh: HT_BLOCK doubles of shared memory.
__device__ __forceinline__ double block_sum_d(double v, double *sh) {
    sh[threadIdx.x] = v;
    __syncthreads();
    for (int s = HT_BLOCK / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    const double r = sh[0];
    __syncthreads();
    return r;
}

#endif
