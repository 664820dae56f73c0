// emu.cpp (EMULATION): CPU implementation of the CUDA runtime subset in cuda_runtime.h, cuBLAS SGEMMs
// through CBLAS (column-major, the same arguments as cuBLAS), and NCCL stubs. Kernels run on the
// calling thread: every thread of a block is a fiber (ucontext) when the kernel synchronizes
// (__syncthreads switches to the next fiber; a barrier opens when every fiber of the block has
// reached it or returned), else a plain call per thread. Blocks run one after another.
#include <cblas.h>
#include <setjmp.h>
#include <ucontext.h>

#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "nccl.h"

emu_uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {
// A fiber starts with setcontext on its own stack (one signal-mask syscall per fiber and block);
// later switches are _setjmp/_longjmp between the live stacks (no syscall).
struct Fiber {
    ucontext_t uc;
    jmp_buf jb;
    int started, done;
    std::vector<char> stack;
};
std::vector<Fiber> g_fibers;
jmp_buf g_main;
int g_cur = -1;
const std::function<void()> *g_body = nullptr;
const size_t kStack = 256 * 1024;

void set_tid(int t) {
    threadIdx.x = (unsigned)t % blockDim.x;
    threadIdx.y = ((unsigned)t / blockDim.x) % blockDim.y;
    threadIdx.z = (unsigned)t / (blockDim.x * blockDim.y);
}

void fiber_entry() {
    (*g_body)();
    g_fibers[g_cur].done = 1;
    _longjmp(g_main, 1);
}

// Runs fiber t until its next barrier or its end.
void resume(int t) {
    Fiber &f = g_fibers[t];
    g_cur = t;
    set_tid(t);
    if (_setjmp(g_main)) return;
    if (!f.started) {
        f.started = 1;
        getcontext(&f.uc);
        f.uc.uc_stack.ss_sp = f.stack.data();
        f.uc.uc_stack.ss_size = f.stack.size();
        f.uc.uc_link = nullptr;
        makecontext(&f.uc, fiber_entry, 0);
        setcontext(&f.uc);
    }
    _longjmp(f.jb, 1);
}
} // namespace

void __syncthreads(void) {
    if (g_cur < 0) {
        fprintf(stderr, "emu: __syncthreads in a kernel launched without barrier support (prep.py missed it)\n");
        abort();
    }
    if (!_setjmp(g_fibers[g_cur].jb)) _longjmp(g_main, 1);
}

void emu_launch(dim3 grid, dim3 block, const std::function<void()> &body, int barrier) {
    gridDim = grid;
    blockDim = block;
    const int nt = (int)(block.x * block.y * block.z);
    if (nt < 1 || nt > 1024) { fprintf(stderr, "emu: invalid block of %d threads\n", nt); abort(); }
    if (barrier && (int)g_fibers.size() < nt) {
        g_fibers.resize(nt);
        for (auto &f : g_fibers) f.stack.resize(kStack);
    }
    g_body = &body;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                blockIdx.x = bx; blockIdx.y = by; blockIdx.z = bz;
                if (!barrier) {
                    for (int t = 0; t < nt; t++) { set_tid(t); body(); }
                    continue;
                }
                for (int t = 0; t < nt; t++) g_fibers[t].started = g_fibers[t].done = 0;
                for (;;) { // one pass = every live fiber runs to its next barrier or returns
                    int live = 0;
                    for (int t = 0; t < nt; t++) {
                        if (g_fibers[t].done) continue;
                        resume(t);
                        live += !g_fibers[t].done;
                    }
                    if (!live) break;
                }
                g_cur = -1;
            }
    g_body = nullptr;
}

// ---------------------------------------------------------------- runtime

extern "C" {
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaGetDevice(int *d) { *d = 0; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d) {
    (void)d;
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "CPU EMULATION (not a GPU)");
    p->major = 0;
    p->minor = 0;
    p->totalGlobalMem = (size_t)8 << 30;
    p->multiProcessorCount = 1;
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = *t = (size_t)8 << 30; return cudaSuccess; }
cudaError_t cudaMalloc(void **p, size_t bytes) {
    *p = malloc(bytes ? bytes : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMallocHost(void **p, size_t bytes) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind) {
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, cudaStream_t) {
    return cudaMemcpy(dst, src, bytes, k);
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind, cudaStream_t) {
    if (width > dpitch || width > spitch) return cudaErrorInvalidValue;
    for (size_t r = 0; r < height; r++) memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    return cudaSuccess;
}
cudaError_t cudaMemset(void *p, int v, size_t bytes) { memset(p, v, bytes); return cudaSuccess; }
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t) { return cudaMemset(p, v, bytes); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (cudaStream_t)malloc(1); return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { free(s); return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) { *e = (cudaEvent_t)malloc(1); return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { free(e); return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t) { return cudaSuccess; }
cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "emulated CUDA error"; }
const char *cudaGetErrorName(cudaError_t e) { return e == cudaSuccess ? "cudaSuccess" : "cudaErrorEmulated"; }
} // extern "C"

// ---------------------------------------------------------------- cuBLAS through CBLAS (column-major)

cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (cublasHandle_t)malloc(1); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { free(h); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetPointerMode(cublasHandle_t, cublasPointerMode_t) { return CUBLAS_STATUS_SUCCESS; }

static cublasStatus_t check_dims(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb,
                                 int ldc) {
    // the argument checks cuBLAS makes (lda >= rows of A as stored, ...)
    const int ra = ta == CUBLAS_OP_N ? m : k, rb = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ra) || ldb < std::max(1, rb) || ldc < std::max(1, m)) {
        fprintf(stderr, "emu cuBLAS: invalid arguments m %d n %d k %d lda %d ldb %d ldc %d (ta %d tb %d)\n", m, n, k, lda,
                ldb, ldc, ta, tb);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    cublasStatus_t s = check_dims(ta, tb, m, n, k, lda, ldb, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                         int k, const float *alpha, const float *A, int lda, long long sA,
                                         const float *B, int ldb, long long sB, const float *beta, float *C, int ldc,
                                         long long sC, int batch) {
    for (int b = 0; b < batch; b++) {
        cublasStatus_t s = cublasSgemm(h, ta, tb, m, n, k, alpha, A + b * sA, lda, B + b * sB, ldb, beta, C + b * sC, ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
    }
    return CUBLAS_STATUS_SUCCESS;
}

// ---------------------------------------------------------------- NCCL stubs

extern "C" {
const char *ncclGetErrorString(ncclResult_t) { return "NCCL is not available in the CPU emulation"; }
const char *ncclGetLastError(ncclComm_t) { return ""; }
ncclResult_t ncclGetUniqueId(ncclUniqueId *) { return ncclInvalidUsage; }
ncclResult_t ncclCommInitRank(ncclComm_t *, int, ncclUniqueId, int) { return ncclInvalidUsage; }
ncclResult_t ncclCommDestroy(ncclComm_t) { return ncclInvalidUsage; }
ncclResult_t ncclCommAbort(ncclComm_t) { return ncclSuccess; }
ncclResult_t ncclAllReduce(const void *, void *, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) {
    return ncclInvalidUsage;
}
ncclResult_t ncclAllGather(const void *, void *, size_t, ncclDataType_t, ncclComm_t, cudaStream_t) {
    return ncclInvalidUsage;
}
ncclResult_t ncclBroadcast(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) {
    return ncclInvalidUsage;
}
ncclResult_t ncclGroupStart(void) { return ncclInvalidUsage; }
ncclResult_t ncclGroupEnd(void) { return ncclInvalidUsage; }
} // extern "C"
