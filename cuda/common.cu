// common.cu: the error-check helpers of cuda_check.h and the compute context of common.cuh.
#include "common.cuh"

#include <stdlib.h>
#include <string.h>

static const char *cublas_status_name(int s) {
    switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED (out of GPU memory)";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
    }
}

extern "C" void ht_cuda_check_fail(int err, const char *call, const char *file, int line) {
    const cudaError_t e = (cudaError_t)err;
    int dev = -1;
    cudaGetDevice(&dev);
    devcomm_abort_active();
    ht_fatal(file, line, "CUDA error on GPU %d: %s failed: %s (%s)", dev, call, cudaGetErrorString(e),
             cudaGetErrorName(e));
}

extern "C" void ht_cublas_check_fail(int status, const char *call, const char *file, int line) {
    int dev = -1;
    cudaGetDevice(&dev);
    devcomm_abort_active();
    ht_fatal(file, line, "cuBLAS error on GPU %d: %s failed: %s (status %d)", dev, call,
             cublas_status_name(status), status);
}

static long g_launches = 0; // see ht_cuda_launch_count

long ht_cuda_launch_count(void) { return g_launches; }

extern "C" void ht_cuda_launch_check(const char *what, const char *file, int line) {
    static int sync = -1; // HT_CUDA_SYNC=1: synchronize after every launch (debugging)
    g_launches++;
    if (sync < 0) {
        const char *s = getenv("HT_CUDA_SYNC");
        sync = s && s[0] && strcmp(s, "0") != 0;
    }
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess && sync) e = cudaDeviceSynchronize();
    if (e != cudaSuccess) {
        char call[160];
        snprintf(call, sizeof(call), "launch of %s", what);
        ht_cuda_check_fail((int)e, call, file, line);
    }
}

extern "C" void *ht_cuda_malloc(size_t bytes, const char *what, const char *file, int line) {
    if (bytes == 0) bytes = 16; // a valid, distinct pointer for empty buffers
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaSuccess) return p;
    (void)cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    int dev = -1;
    cudaGetDevice(&dev);
    devcomm_abort_active();
    ht_fatal(file, line,
             "out of GPU memory: cudaMalloc of %zu bytes (%.1f MiB) for %s failed on GPU %d: %s; the GPU "
             "has %.1f MiB free of %.1f MiB. Use a smaller batch per rank (more ranks), fewer "
             "images_per_sample, or --device cpu",
             bytes, bytes / 1048576.0, what, dev, cudaGetErrorString(e), free_b / 1048576.0,
             total_b / 1048576.0);
}

extern "C" void ht_cuda_free(void *p) {
    if (p) CUDA_CHECK(cudaFree(p));
}

void cuda_ctx_init(CudaCtx *ctx, DevComm *dc) {
    memset(ctx, 0, sizeof(*ctx));
    CUDA_CHECK(cudaGetDevice(&ctx->device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&ctx->blas));
    CUBLAS_CHECK(cublasSetStream(ctx->blas, ctx->stream));
    // Plain FP32 arithmetic (no TF32 tensor cores): the parity path with src/ needs it.
    CUBLAS_CHECK(cublasSetMathMode(ctx->blas, CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasSetPointerMode(ctx->blas, CUBLAS_POINTER_MODE_HOST));
    // A user workspace (32 MiB, the size cuBLAS documents for Hopper): cuBLAS then never allocates
    // inside a stream capture (train_cuda.cu captures the step into a CUDA graph).
    const size_t ws = (size_t)32 << 20;
    ctx->blas_ws = ht_cuda_malloc(ws, "cuBLAS workspace", __FILE__, __LINE__);
    CUBLAS_CHECK(cublasSetWorkspace(ctx->blas, ctx->blas_ws, ws));
    ctx->dc = dc;
}

void cuda_ctx_free(CudaCtx *ctx) {
    if (ctx->stream) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    if (ctx->blas) CUBLAS_CHECK(cublasDestroy(ctx->blas));
    ht_cuda_free(ctx->blas_ws);
    if (ctx->stream) CUDA_CHECK(cudaStreamDestroy(ctx->stream));
    memset(ctx, 0, sizeof(*ctx));
}

void cuda_ctx_sync(CudaCtx *ctx) { CUDA_CHECK(cudaStreamSynchronize(ctx->stream)); }
