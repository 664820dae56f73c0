// emu.cpp (EMULATION): CPU implementation of the CUDA runtime subset in cuda_runtime.h, cuBLAS SGEMMs
// through CBLAS (column-major, the same arguments as cuBLAS), and NCCL stubs. Kernels run on the
// calling thread: every thread of a block is a fiber (ucontext) when the kernel synchronizes
// (__syncthreads switches to the next fiber; a barrier opens when every fiber of the block has
// reached it or returned), else a plain call per thread. Blocks run one after another.
#include <cblas.h>
#include <setjmp.h>
#include <ucontext.h>

#include <atomic>
#include <chrono>
#include <map>
#include <set>
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

static void emu_run(dim3 grid, dim3 block, const std::function<void()> &body, int barrier) {
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

// ---------------------------------------------------------------- streams, events, capture

// A stream records instead of running while it belongs to a capture (the capturing stream itself,
// or a stream that joined it by waiting on an event recorded inside the capture).
struct emu_graph {
    std::vector<std::function<void()>> ops;
    cudaStream_t origin;
    std::set<cudaStream_t> forked;  // streams that joined the capture
    int invalid;                    // an illegal call happened: EndCapture fails
    std::string why;
};
struct emu_stream {
    emu_graph *cap;   // the capture this stream records into (NULL: runs at once)
    long ops;         // operations recorded into cap by this stream
    long joined;      // ops of this stream that the capture has waited for (rejoin check)
};
struct emu_event {
    emu_graph *cap;   // recorded inside this capture (NULL: outside)
    cudaStream_t src;
    long seq;         // src->ops at the record
    int timing;
    double t;         // host seconds at the (replayed) record
};
struct emu_graph_exec { std::vector<std::function<void()>> ops; };

namespace {
std::set<emu_graph *> g_captures;  // live captures (global mode: any of them forbids unsafe calls)
cudaError_t g_last_error = cudaSuccess;
long g_graph_launches = 0, g_ops_replayed = 0;
std::map<uintptr_t, size_t> g_pinned_sz; // cudaMallocHost allocations (base -> bytes)

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Any live capture makes `what` illegal (cudaStreamCaptureModeGlobal): report it loudly, invalidate
// the captures and return the error a GPU returns.
cudaError_t capture_forbids(const char *what) {
    if (g_captures.empty()) return cudaSuccess;
    fprintf(stderr, "emu: ILLEGAL DURING STREAM CAPTURE: %s (a real GPU returns "
                    "cudaErrorStreamCaptureUnsupported and invalidates the capture)\n", what);
    for (emu_graph *g : g_captures) { g->invalid = 1; g->why = what; }
    g_last_error = cudaErrorStreamCaptureUnsupported;
    return cudaErrorStreamCaptureUnsupported;
}

int is_pinned(const void *p, size_t bytes) {
    const uintptr_t a = (uintptr_t)p;
    auto it = g_pinned_sz.upper_bound(a);
    if (it == g_pinned_sz.begin()) return 0;
    --it;
    return a >= it->first && a + bytes <= it->first + it->second;
}

// Runs f now, or records it when s is capturing. The legacy stream 0 is illegal during a capture.
cudaError_t enqueue(cudaStream_t s, const char *what, std::function<void()> f) {
    if (!s) {
        if (!g_captures.empty()) {
            char b[160];
            snprintf(b, sizeof(b), "%s on the legacy stream 0", what);
            capture_forbids(b);
            return cudaErrorStreamCaptureImplicit;
        }
        f();
        return cudaSuccess;
    }
    if (!s->cap) { f(); return cudaSuccess; }
    s->cap->ops.push_back(std::move(f));
    s->ops++;
    return cudaSuccess;
}
} // namespace

void emu_launch(dim3 grid, dim3 block, cudaStream_t s, const std::function<void()> &body, int barrier) {
    std::function<void()> b = body; // owns copies of the launch-time arguments (prep.py)
    cudaError_t e = enqueue(s, "a kernel launch", [grid, block, b, barrier]() { emu_run(grid, block, b, barrier); });
    if (e != cudaSuccess) g_last_error = e;
}

// ---------------------------------------------------------------- runtime

extern "C" {
long emu_graph_launches(void) { return g_graph_launches; }
long emu_graph_ops_replayed(void) { return g_ops_replayed; }

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
    if (capture_forbids("cudaMalloc")) return cudaErrorStreamCaptureUnsupported;
    *p = malloc(bytes ? bytes : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    g_allocs[(uintptr_t)*p] = bytes;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    if (capture_forbids("cudaFree")) return cudaErrorStreamCaptureUnsupported;
    if (p && !g_allocs.erase((uintptr_t)p)) return cudaErrorInvalidValue;
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t bytes) {
    if (capture_forbids("cudaMallocHost")) return cudaErrorStreamCaptureUnsupported;
    *p = malloc(bytes ? bytes : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    g_pinned_sz[(uintptr_t)*p] = bytes ? bytes : 1;
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    if (capture_forbids("cudaFreeHost")) return cudaErrorStreamCaptureUnsupported;
    if (p && !g_pinned_sz.erase((uintptr_t)p)) return cudaErrorInvalidValue;
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind) {
    if (capture_forbids("synchronous cudaMemcpy")) return cudaErrorStreamCaptureImplicit;
    if (bytes) memmove(dst, src, bytes);
    return cudaSuccess;
}
// A captured copy reads and writes host memory when the graph runs: it must be pinned.
static cudaError_t check_host_side(cudaStream_t s, const void *dst, const void *src, size_t bytes, cudaMemcpyKind k,
                                   const char *what) {
    if (!s || !s->cap) return cudaSuccess;
    const void *host = k == cudaMemcpyHostToDevice ? src : k == cudaMemcpyDeviceToHost ? dst : NULL;
    if (host && !is_pinned(host, bytes)) {
        char b[160];
        snprintf(b, sizeof(b), "%s from/to pageable host memory (not cudaMallocHost)", what);
        return capture_forbids(b);
    }
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind k, cudaStream_t s) {
    cudaError_t e = check_host_side(s, dst, src, bytes, k, "cudaMemcpyAsync");
    if (e != cudaSuccess) return e;
    return enqueue(s, "cudaMemcpyAsync", [=]() { if (bytes) memmove(dst, src, bytes); });
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind k, cudaStream_t s) {
    if (width > dpitch || width > spitch) return cudaErrorInvalidValue;
    cudaError_t e = check_host_side(s, dst, src, height ? (height - 1) * std::max(dpitch, spitch) + width : 0, k,
                                    "cudaMemcpy2DAsync");
    if (e != cudaSuccess) return e;
    return enqueue(s, "cudaMemcpy2DAsync", [=]() {
        for (size_t r = 0; r < height; r++) memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    });
}
cudaError_t cudaMemset(void *p, int v, size_t bytes) {
    if (capture_forbids("synchronous cudaMemset")) return cudaErrorStreamCaptureImplicit;
    memset(p, v, bytes);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s) {
    return enqueue(s, "cudaMemsetAsync", [=]() { memset(p, v, bytes); });
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
    *s = new emu_stream{nullptr, 0, 0};
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    if (s && s->cap) return capture_forbids("cudaStreamDestroy of a capturing stream");
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) {
    return capture_forbids("cudaStreamSynchronize");
}
cudaError_t cudaDeviceSynchronize(void) { return capture_forbids("cudaDeviceSynchronize"); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
    *e = new emu_event{nullptr, nullptr, 0, !(flags & cudaEventDisableTiming), -1.0};
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t e) { delete e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    if (s && s->cap) {
        e->cap = s->cap;
        e->src = s;
        e->seq = s->ops;
        s->cap->ops.push_back([e]() { e->t = now_s(); });
        return cudaSuccess;
    }
    e->cap = nullptr;
    e->src = s;
    return enqueue(s, "cudaEventRecord", [e]() { e->t = now_s(); });
}
// Waiting on an event recorded inside a capture makes s join that capture (a fork), and tells the
// capture that the event's stream has been waited for up to the record (a join).
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned) {
    if (!e->cap) return cudaSuccess;
    if (!g_captures.count(e->cap)) return cudaSuccess; // the capture ended: an ordinary dependency
    if (s->cap && s->cap != e->cap) return capture_forbids("cudaStreamWaitEvent across two captures");
    if (!s->cap) {
        s->cap = e->cap;
        s->ops = s->joined = 0;
        if (s != e->cap->origin) e->cap->forked.insert(s);
    }
    if (e->src && e->src != s) e->src->joined = std::max(e->src->joined, e->seq);
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return capture_forbids("cudaEventSynchronize"); }
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (!a->timing || !b->timing || a->t < 0 || b->t < 0) return cudaErrorInvalidValue;
    *ms = (float)(1e3 * (b->t - a->t));
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
    if (!s) return capture_forbids("cudaStreamBeginCapture on the legacy stream 0"), cudaErrorStreamCaptureImplicit;
    if (s->cap) return cudaErrorIllegalState;
    if (mode != cudaStreamCaptureModeGlobal) {
        fprintf(stderr, "emu: only cudaStreamCaptureModeGlobal is emulated (the strictest mode)\n");
        return cudaErrorInvalidValue;
    }
    emu_graph *g = new emu_graph();
    g->origin = s;
    g->invalid = 0;
    g_captures.insert(g);
    s->cap = g;
    s->ops = s->joined = 0;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *out) {
    *out = nullptr;
    if (!s || !s->cap || s->cap->origin != s) return cudaErrorIllegalState;
    emu_graph *g = s->cap;
    for (cudaStream_t f : g->forked)
        if (f->ops > f->joined && !g->invalid) {
            fprintf(stderr, "emu: cudaStreamEndCapture: a forked stream has %ld operation(s) the capturing stream "
                            "never waited for (cudaErrorStreamCaptureUnjoined)\n", f->ops - f->joined);
            g->invalid = 2;
        }
    for (cudaStream_t f : g->forked) f->cap = nullptr;
    s->cap = nullptr;
    g_captures.erase(g);
    if (g->invalid) {
        const cudaError_t e = g->invalid == 2 ? cudaErrorStreamCaptureUnjoined : cudaErrorStreamCaptureInvalidated;
        if (g->invalid == 1)
            fprintf(stderr, "emu: cudaStreamEndCapture: the capture was invalidated by %s\n", g->why.c_str());
        delete g;
        return e;
    }
    *out = g;
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *st) {
    *st = s && s->cap ? (s->cap->invalid ? cudaStreamCaptureStatusInvalidated : cudaStreamCaptureStatusActive)
                      : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long) {
    if (!g) return cudaErrorInvalidValue;
    *exec = new emu_graph_exec{g->ops};
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
    if (!exec) return cudaErrorInvalidValue;
    return enqueue(s, "cudaGraphLaunch", [exec]() {
        g_graph_launches++;
        for (auto &op : exec->ops) { op(); g_ops_replayed++; }
    });
}
cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *n) {
    if (!g || nodes) return cudaErrorInvalidValue; // only the count is emulated
    *n = g->ops.size();
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) { delete exec; return cudaSuccess; }
cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
cudaError_t cudaGetLastError(void) {
    const cudaError_t e = g_last_error;
    g_last_error = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureUnjoined: return "capture was not joined";
    case cudaErrorStreamCaptureImplicit: return "operation would make the legacy stream depend on a capturing blocking stream";
    default: return "emulated CUDA error";
    }
}
const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    case cudaErrorStreamCaptureInvalidated: return "cudaErrorStreamCaptureInvalidated";
    case cudaErrorStreamCaptureUnjoined: return "cudaErrorStreamCaptureUnjoined";
    case cudaErrorStreamCaptureImplicit: return "cudaErrorStreamCaptureImplicit";
    default: return "cudaErrorEmulated";
    }
}
} // extern "C"

// ---------------------------------------------------------------- cuBLAS through CBLAS (column-major)

struct emu_blas { cudaStream_t s; };
cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = new emu_blas{nullptr}; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy(cublasHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s) { h->s = s; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t) { return CUBLAS_STATUS_SUCCESS; }
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

// Host pointer mode: alpha and beta are read at the call (a captured GEMM keeps their values).
cublasStatus_t cublasSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    cublasStatus_t s = check_dims(ta, tb, m, n, k, lda, ldb, ldc);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    const float al = *alpha, be = *beta;
    const cudaError_t e = enqueue(h->s, "cublasSgemm", [=]() {
        cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                    tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, al, A, lda, B, ldb, be, C, ldc);
    });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
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

// TF32 (cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F_FAST_TF32): each operand element rounded
// to 10 explicit mantissa bits, to nearest with ties away from zero (cvt.rna.tf32.f32: add half of
// the dropped 13 bits' range, then clear them); NaN and Inf unchanged. The rounded copy of the
// operand (rows x cols, column-major, leading dimension ld) is packed with leading dimension rows.
static float emu_tf32_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;
    memcpy(&x, &u, 4);
    return x;
}

static std::vector<float> emu_tf32_copy(const float *X, int rows, int cols, int ld) {
    std::vector<float> r((size_t)std::max(rows, 1) * std::max(cols, 1));
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++) r[(size_t)j * rows + i] = emu_tf32_round(X[(size_t)j * ld + i]);
    return r;
}

static std::atomic<long> g_tf32_gemms{0};
long emu_tf32_gemms(void) { return g_tf32_gemms.load(); }

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *A, cudaDataType Atype, int lda,
                                          long long sA, const void *B, cudaDataType Btype, int ldb, long long sB,
                                          const void *beta, void *C, cudaDataType Ctype, int ldc, long long sC,
                                          int batch, cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    if (Atype != CUDA_R_32F || Btype != CUDA_R_32F || Ctype != CUDA_R_32F || algo != CUBLAS_GEMM_DEFAULT ||
        (compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32)) {
        fprintf(stderr, "emu cuBLAS: cublasGemmStridedBatchedEx supports float operands with CUBLAS_COMPUTE_32F or "
                "CUBLAS_COMPUTE_32F_FAST_TF32 and CUBLAS_GEMM_DEFAULT only\n");
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    const float *fa = (const float *)A, *fb = (const float *)B;
    float *fc = (float *)C;
    if (compute == CUBLAS_COMPUTE_32F)
        return cublasSgemmStridedBatched(h, ta, tb, m, n, k, (const float *)alpha, fa, lda, sA, fb, ldb, sB,
                                         (const float *)beta, fc, ldc, sC, batch);
    for (int b = 0; b < batch; b++) {
        cublasStatus_t s = check_dims(ta, tb, m, n, k, lda, ldb, ldc);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
        const float al = *(const float *)alpha, be = *(const float *)beta;
        const float *Ab = fa + b * sA, *Bb = fb + b * sB;
        float *Cb = fc + b * sC;
        const int ra = ta == CUBLAS_OP_N ? m : k, ca = ta == CUBLAS_OP_N ? k : m;
        const int rb = tb == CUBLAS_OP_N ? k : n, cb = tb == CUBLAS_OP_N ? n : k;
        // the operands are read, and the GEMM counted, when it runs (in stream order, or at a graph's replay)
        const cudaError_t e = enqueue(h->s, "cublasGemmStridedBatchedEx (TF32)", [=]() {
            g_tf32_gemms++;
            const std::vector<float> a = emu_tf32_copy(Ab, ra, ca, lda), bb = emu_tf32_copy(Bb, rb, cb, ldb);
            cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                        tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, al, a.data(), std::max(ra, 1),
                        bb.data(), std::max(rb, 1), be, Cb, ldc);
        });
        if (e != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

// Grouped batched SGEMM: cuBLAS's checks (group_count >= 0, group sizes >= 0, every group's dims
// and leading dimensions, the three pointer arrays inside device allocations), the host arrays
// copied at the call, the device pointer arrays read when the GEMMs run (at replay in a graph, as
// the GPU reads them), then each problem through CBLAS in order.
cublasStatus_t cublasSgemmGroupedBatched(cublasHandle_t h, const cublasOperation_t transa_array[],
                                         const cublasOperation_t transb_array[], const int m_array[],
                                         const int n_array[], const int k_array[], const float alpha_array[],
                                         const float *const Aarray[], const int lda_array[],
                                         const float *const Barray[], const int ldb_array[],
                                         const float beta_array[], float *const Carray[], const int ldc_array[],
                                         int group_count, const int group_size[]) {
    if (group_count < 0) {
        fprintf(stderr, "emu cuBLAS: cublasSgemmGroupedBatched: group_count %d < 0\n", group_count);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    struct Group { cublasOperation_t ta, tb; int m, n, k, lda, ldb, ldc, size; float al, be; };
    std::vector<Group> g((size_t)group_count);
    size_t total = 0;
    for (int i = 0; i < group_count; i++) {
        if (group_size[i] < 0) {
            fprintf(stderr, "emu cuBLAS: cublasSgemmGroupedBatched: group_size[%d] = %d < 0\n", i, group_size[i]);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
        const cublasStatus_t st = check_dims(transa_array[i], transb_array[i], m_array[i], n_array[i], k_array[i],
                                             lda_array[i], ldb_array[i], ldc_array[i]);
        if (st != CUBLAS_STATUS_SUCCESS) {
            fprintf(stderr, "emu cuBLAS: cublasSgemmGroupedBatched: group %d\n", i);
            return st;
        }
        g[i] = Group{transa_array[i], transb_array[i], m_array[i], n_array[i], k_array[i], lda_array[i],
                     ldb_array[i], ldc_array[i], group_size[i], alpha_array[i], beta_array[i]};
        total += (size_t)group_size[i];
    }
    if (total == 0) return CUBLAS_STATUS_SUCCESS;
    const void *arrays[3] = {Aarray, Barray, Carray};
    for (int a = 0; a < 3; a++)
        if (!in_device_alloc(arrays[a], total * sizeof(void *))) {
            fprintf(stderr, "emu cuBLAS: cublasSgemmGroupedBatched: the %c pointer array (%zu entries) is not in "
                            "device memory\n", "ABC"[a], total);
            return CUBLAS_STATUS_INVALID_VALUE;
        }
    const cudaError_t e = enqueue(h->s, "cublasSgemmGroupedBatched", [=]() {
        size_t p = 0;
        for (const Group &q : g)
            for (int b = 0; b < q.size; b++, p++)
                cblas_sgemm(CblasColMajor, q.ta == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                            q.tb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, q.m, q.n, q.k, q.al, Aarray[p], q.lda,
                            Barray[p], q.ldb, q.be, Carray[p], q.ldc);
    });
    return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
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
    return ncclSuccess;
}
// The data movement of a checked collective: now, or recorded when st is capturing (NCCL >= 2.9
// collectives can be captured into a CUDA graph).
static ncclResult_t nccl_move(cudaStream_t st, void *r, const void *s, size_t bytes) {
    const cudaError_t e = enqueue(st, "an NCCL collective", [=]() {
        if (s != r) memmove(r, s, bytes);
        g_nccl_collectives++;
    });
    return e == cudaSuccess ? ncclSuccess : ncclUnhandledCudaError;
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
                           cudaStream_t st) {
    ncclResult_t e = nccl_args("ncclAllReduce", c, t, s, n, r, n);
    if (e != ncclSuccess) return e;
    if (op != ncclSum) return nccl_fail(ncclInvalidArgument, "%s: invalid operation", "ncclAllReduce");
    return nccl_move(st, r, s, n * nccl_size(t)); // the sum over one rank
}
ncclResult_t ncclAllGather(const void *s, void *r, size_t n, ncclDataType_t t, ncclComm_t c, cudaStream_t st) {
    ncclResult_t e = nccl_args("ncclAllGather", c, t, s, n, r, n); // recv holds nranks * n = n
    if (e != ncclSuccess) return e;
    return nccl_move(st, r, s, n * nccl_size(t));
}
ncclResult_t ncclBroadcast(const void *s, void *r, size_t n, ncclDataType_t t, int root, ncclComm_t c,
                           cudaStream_t st) {
    if (root != 0) return nccl_fail(ncclInvalidArgument, "%s: root out of range", "ncclBroadcast");
    ncclResult_t e = nccl_args("ncclBroadcast", c, t, s, n, r, n);
    if (e != ncclSuccess) return e;
    return nccl_move(st, r, s, n * nccl_size(t));
}
ncclResult_t ncclGroupStart(void) { g_group++; return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) {
    if (g_group <= 0) return nccl_fail(ncclInvalidUsage, "%s without ncclGroupStart", "ncclGroupEnd");
    g_group--;
    return ncclSuccess;
}
} // extern "C"
