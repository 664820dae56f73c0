// cuda_runtime.h (EMULATION): a CPU stand-in for the parts of the CUDA runtime that cuda/ uses, so
// that tests/gpu can check the kernels' indexing and logic on a machine without a GPU
// (tests/gpu/emu/run-emulated.sh). Device memory is host memory, streams and events are ordered
// trivially (everything runs synchronously in program order), and a kernel launch runs every
// thread of every block on the calling OS thread as cooperative fibers that switch at
// __syncthreads (emu.cpp). It says nothing about speed, memory-model races or real-GPU numerics.
//
// Stream capture (CUDA graphs): between cudaStreamBeginCapture and cudaStreamEndCapture the
// launches, async copies, memsets, cuBLAS calls and NCCL collectives issued on the capturing stream
// (and on every stream that joined it through an event) are recorded as closures instead of run;
// cudaGraphLaunch replays them in order. What a real GPU rejects during a (global-mode) capture
// fails loudly here too (a message on stderr, an error code, the capture invalidated): synchronous
// cudaMemcpy/cudaMemset, cudaStreamSynchronize, cudaDeviceSynchronize, cudaEventSynchronize,
// cudaMalloc/cudaFree/cudaMallocHost/cudaFreeHost, the legacy stream 0, async copies to or from
// pageable host memory, and a capture ended with a forked stream that never rejoined.
#ifndef HT_EMU_CUDA_RUNTIME_H
#define HT_EMU_CUDA_RUNTIME_H

#include <stddef.h>

typedef struct emu_stream *cudaStream_t;

#ifdef __cplusplus
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static // one block runs at a time: one copy shared by the block's fibers

using std::max;
using std::min;

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct emu_uint3 { unsigned x, y, z; };
extern emu_uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;
void __syncthreads(void);
// Runs body once per thread of every block (fibers when `barrier`, else plain calls) on stream s
// (recorded instead when s is capturing; body must then own copies of its arguments: prep.py).
void emu_launch(dim3 grid, dim3 block, cudaStream_t s, const std::function<void()> &body, int barrier);
// Graph launches and recorded operations replayed since the start (the emulation's counters, tests).
extern "C" long emu_graph_launches(void);
extern "C" long emu_graph_ops_replayed(void);
#endif // __cplusplus

typedef enum {
    cudaSuccess = 0,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidValue = 1,
    cudaErrorInvalidDevice = 101,
    cudaErrorNoDevice = 100,
    cudaErrorIllegalState = 401,
    cudaErrorStreamCaptureUnsupported = 900,
    cudaErrorStreamCaptureInvalidated = 901,
    cudaErrorStreamCaptureUnjoined = 904,
    cudaErrorStreamCaptureImplicit = 906,
} cudaError_t;
typedef enum { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice,
               cudaMemcpyDefault } cudaMemcpyKind;
typedef struct emu_event *cudaEvent_t;
typedef struct emu_graph *cudaGraph_t;
typedef struct emu_graph_exec *cudaGraphExec_t;
typedef struct emu_graph_node *cudaGraphNode_t;
#define cudaStreamNonBlocking 1
#define cudaEventDefault 0
#define cudaEventDisableTiming 2
typedef enum { cudaStreamCaptureModeGlobal = 0, cudaStreamCaptureModeThreadLocal = 1,
               cudaStreamCaptureModeRelaxed = 2 } cudaStreamCaptureMode;
typedef enum { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1,
               cudaStreamCaptureStatusInvalidated = 2 } cudaStreamCaptureStatus;

typedef struct cudaDeviceProp {
    char name[256];
    int major, minor;
    size_t totalGlobalMem;
    int multiProcessorCount;
} cudaDeviceProp;

#ifdef __cplusplus
extern "C" {
#endif
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaGetDevice(int *d);
cudaError_t cudaSetDevice(int d);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int d);
cudaError_t cudaDeviceGetPCIBusId(char *bus, int len, int d);
cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total_b);
cudaError_t cudaMalloc(void **p, size_t bytes);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t bytes);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemset(void *p, int v, size_t bytes);
cudaError_t cudaMemsetAsync(void *p, int v, size_t bytes, cudaStream_t s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b);
cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g);
cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t g, unsigned long long flags);
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s);
cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *n);
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec);
cudaError_t cudaGraphDestroy(cudaGraph_t g);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaGetLastError(void);
const char *cudaGetErrorString(cudaError_t e);
const char *cudaGetErrorName(cudaError_t e);
#ifdef __cplusplus
}
#endif

#endif
