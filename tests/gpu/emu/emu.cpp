// emu.cpp (EMULATION): CPU implementation of the CUDA runtime subset in cuda_runtime.h, cuBLAS SGEMMs
// through CBLAS (column-major, the same arguments as cuBLAS), and NCCL stubs. Kernels run on the
// calling thread: every thread of a block is a fiber (ucontext) when the kernel synchronizes
// (__syncthreads switches to the next fiber; a barrier opens when every fiber of the block has
// reached it or returned), else a plain call per thread. Blocks run one after another.
#include <cblas.h>
#include <setjmp.h>
#include <ucontext.h>

#include <map>
#include <string>
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
// Device allocations (base -> bytes), so that the emulated NCCL can check its buffers.
static std::map<uintptr_t, size_t> g_allocs;
static int in_device_alloc(const void *p, size_t bytes) {
    const uintptr_t a = (uintptr_t)p;
    auto it = g_allocs.upper_bound(a);
    if (it == g_allocs.begin()) return 0;
    --it;
    return a >= it->first && a + bytes <= it->first + it->second;
}

cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaDeviceGetPCIBusId(char *bus, int len, int d) {
    if (d != 0) return cudaErrorInvalidDevice;
    snprintf(bus, (size_t)len, "0000:00:00.0");
    return cudaSuccess;
}
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
    if (!*p) return cudaErrorMemoryAllocation;
    g_allocs[(uintptr_t)*p] = bytes;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (p && !g_allocs.erase((uintptr_t)p)) return cudaErrorInvalidValue;
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t bytes) {
    *p = malloc(bytes ? bytes : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
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

// ---------------------------------------------------------------- NCCL: one rank, real copies

struct emu_nccl { int alive; };
static std::string g_nccl_err;
static long g_nccl_collectives = 0;
static int g_group = 0;

static ncclResult_t nccl_fail(ncclResult_t r, const char *fmt, const char *what) {
    char b[256];
    snprintf(b, sizeof(b), fmt, what);
    g_nccl_err = b;
    fprintf(stderr, "emu NCCL: %s\n", b);
    return r;
}
static size_t nccl_size(ncclDataType_t t) {
    return t == ncclInt32 || t == ncclFloat32 ? 4 : t == ncclFloat64 ? 8 : 0;
}
// The checks a collective makes before it copies `bytes` from s to r.
static ncclResult_t nccl_args(const char *what, ncclComm_t c, ncclDataType_t t, const void *s, size_t s_elts,
                              const void *r, size_t r_elts) {
    if (!c || !c->alive) return nccl_fail(ncclInvalidArgument, "%s: invalid communicator", what);
    const size_t e = nccl_size(t);
    if (!e) return nccl_fail(ncclInvalidArgument, "%s: invalid datatype", what);
    if (!in_device_alloc(s, s_elts * e))
        return nccl_fail(ncclInvalidArgument, "%s: send buffer is not a device allocation of count elements", what);
    if (!in_device_alloc(r, r_elts * e))
        return nccl_fail(ncclInvalidArgument, "%s: receive buffer is not a device allocation of count elements", what);
    g_nccl_collectives++;
    return ncclSuccess;
}

extern "C" {
long emu_nccl_collectives(void) { return g_nccl_collectives; }
ncclResult_t ncclGetVersion(int *v) { *v = 0; return ncclSuccess; }
const char *ncclGetErrorString(ncclResult_t r) {
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclInvalidArgument: return "invalid argument (emulated one-rank NCCL)";
    case ncclInvalidUsage: return "invalid usage (emulated one-rank NCCL)";
    default: return "emulated NCCL error";
    }
}
const char *ncclGetLastError(ncclComm_t) { return g_nccl_err.c_str(); }
ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof(*id));
    snprintf(id->internal, sizeof(id->internal), "emu-nccl");
    return ncclSuccess;
}
ncclResult_t ncclCommInitRank(ncclComm_t *c, int n, ncclUniqueId id, int rank) {
    if (n != 1 || rank != 0) return nccl_fail(ncclInvalidUsage, "%s: the emulation runs one rank", "ncclCommInitRank");
    if (strcmp(id.internal, "emu-nccl") != 0)
        return nccl_fail(ncclInvalidArgument, "%s: unique id not from ncclGetUniqueId", "ncclCommInitRank");
    *c = new emu_nccl{1};
    return ncclSuccess;
}
ncclResult_t ncclCommDestroy(ncclComm_t c) {
    if (!c || !c->alive) return nccl_fail(ncclInvalidArgument, "%s: invalid communicator", "ncclCommDestroy");
    delete c;
    return ncclSuccess;
}
ncclResult_t ncclCommAbort(ncclComm_t c) {
    delete c;
    return ncclSuccess;
}
ncclResult_t ncclAllReduce(const void *s, void *r, size_t n, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                           cudaStream_t) {
    ncclResult_t e = nccl_args("ncclAllReduce", c, t, s, n, r, n);
    if (e != ncclSuccess) return e;
    if (op != ncclSum) return nccl_fail(ncclInvalidArgument, "%s: invalid operation", "ncclAllReduce");
    if (s != r) memmove(r, s, n * nccl_size(t)); // the sum over one rank
    return ncclSuccess;
}
ncclResult_t ncclAllGather(const void *s, void *r, size_t n, ncclDataType_t t, ncclComm_t c, cudaStream_t) {
    ncclResult_t e = nccl_args("ncclAllGather", c, t, s, n, r, n); // recv holds nranks * n = n
    if (e != ncclSuccess) return e;
    if (s != r) memmove(r, s, n * nccl_size(t));
    return ncclSuccess;
}
ncclResult_t ncclBroadcast(const void *s, void *r, size_t n, ncclDataType_t t, int root, ncclComm_t c, cudaStream_t) {
    if (root != 0) return nccl_fail(ncclInvalidArgument, "%s: root out of range", "ncclBroadcast");
    ncclResult_t e = nccl_args("ncclBroadcast", c, t, s, n, r, n);
    if (e != ncclSuccess) return e;
    if (s != r) memmove(r, s, n * nccl_size(t));
    return ncclSuccess;
}
ncclResult_t ncclGroupStart(void) { g_group++; return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) {
    if (g_group <= 0) return nccl_fail(ncclInvalidUsage, "%s without ncclGroupStart", "ncclGroupEnd");
    g_group--;
    return ncclSuccess;
}
} // extern "C"
