// cuda_check.h: error checking for every CUDA runtime and cuBLAS call, usable from C (mpi/comm_nccl.c)
// and CUDA C++ (cuda/*.cu). A failure reports the call, the error name and text, file and line,
// aborts the live NCCL communicator (if any) and ends every rank through ht_fatal -> comm_abort.
//
//   CUDA_CHECK(cudaMemcpy(...));        any cudaError_t-returning call
//   CUBLAS_CHECK(cublasSgemm(...));     any cublasStatus_t-returning call
//   kernel<<<g, b, 0, s>>>(...); LAUNCH_CHECK("kernel");   after every launch: cudaGetLastError
//                                       (and, with HT_CUDA_SYNC=1 in the environment, a device
//                                       synchronize so that an asynchronous fault is reported at
//                                       the launch that caused it)
//   float *p = DALLOC(float, n, "what it is for");   cudaMalloc; on failure the message gives the
//                                       requested bytes and the device's free/total memory
#ifndef HT_CUDA_CHECK_H
#define HT_CUDA_CHECK_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void ht_cuda_check_fail(int err, const char *call, const char *file, int line) __attribute__((noreturn));
void ht_cublas_check_fail(int status, const char *call, const char *file, int line)
    __attribute__((noreturn));
void ht_cuda_launch_check(const char *what, const char *file, int line);
void *ht_cuda_malloc(size_t bytes, const char *what, const char *file, int line);
void ht_cuda_free(void *p);

#ifdef __cplusplus
}
#endif

// cudaSuccess and CUBLAS_STATUS_SUCCESS are both 0.
#define CUDA_CHECK(call) do { int e_ = (int)(call); \
    if (e_ != 0) ht_cuda_check_fail(e_, #call, __FILE__, __LINE__); } while (0)
#define CUBLAS_CHECK(call) do { int s_ = (int)(call); \
    if (s_ != 0) ht_cublas_check_fail(s_, #call, __FILE__, __LINE__); } while (0)
#define LAUNCH_CHECK(what) ht_cuda_launch_check((what), __FILE__, __LINE__)
#define DALLOC(T, n, what) ((T *)ht_cuda_malloc((size_t)(n) * sizeof(T), (what), __FILE__, __LINE__))

#endif
