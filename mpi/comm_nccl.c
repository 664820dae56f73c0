// comm_nccl.c: NCCL implementation of comm_nccl.h (collectives on device buffers). Built only with
// make CUDA=1. Start-up goes through comm.h (MPI when built with it): host-name all-gather for the
// local rank, comm_bcast of the NCCL unique id; everything after that is NCCL on the
// communication stream, handed to and from the caller's stream with events.
//
// Errors: every NCCL call goes through NCCL_CHECK and every CUDA call through CUDA_CHECK. A failure
// aborts the communicator (ncclCommAbort: no rank stays blocked in an NCCL kernel on our account)
// and ends every rank through ht_fatal -> comm_abort (MPI_Abort under MPI).
#include "comm_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "cuda_check.h"
#include "devsel.h"


// The live communicator, so that any fatal error (CUDA_CHECK in cuda/ included) can abort it.
static ncclComm_t g_active = NULL;
static int g_rank = 0;

void devcomm_abort_active(void) {
    ncclComm_t c = g_active;
    g_active = NULL; // first, so that an error inside the abort cannot recurse
    if (c) ncclCommAbort(c);
}

void devcomm_nccl_fail(int result, const char *call, const char *file, int line) {
    const ncclResult_t r = (ncclResult_t)result;
    char last[512];
    const char *l = ncclGetLastError(g_active);
    // The library's last message, cut on purpose (with a mark) if it is longer than the buffer.
    XSNPRINTF(last, sizeof(last), "%.500s%s", l ? l : "", l && strlen(l) > 500 ? "..." : "");
    devcomm_abort_active();
    char ver[32];
    devcomm_nccl_version(ver, sizeof(ver));
    ht_fatal(file, line, "rank %d: %s failed: %s%s%s (NCCL %s; NCCL_DEBUG=WARN prints more)", g_rank, call,
             ncclGetErrorString(r), last[0] ? ": " : "", last, ver);
}
#define NCCL_CHECK(call) do { ncclResult_t r_ = (call); \
    if (r_ != ncclSuccess) devcomm_nccl_fail((int)r_, #call, __FILE__, __LINE__); } while (0)

void devcomm_nccl_version(char *buf, size_t n) {
    int v = 0;
    if (ncclGetVersion(&v) != ncclSuccess) { XSNPRINTF(buf, n, "(version unknown)"); return; }
    // NCCL >= 2.9 encodes major*10000 + minor*100 + patch, older ones major*1000 + minor*100 + patch.
    if (v >= 10000) XSNPRINTF(buf, n, "%d.%d.%d", v / 10000, v / 100 % 100, v % 100);
    else XSNPRINTF(buf, n, "%d.%d.%d", v / 1000, v / 100 % 10, v % 100);
}

int devcomm_device_count(char *why, size_t why_len) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) XSNPRINTF(why, why_len, "cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        (void)cudaGetLastError(); // clear the sticky-free error state of the runtime
        return 0;
    }
    if (n == 0 && why) XSNPRINTF(why, why_len, "cudaGetDeviceCount reports 0 devices");
    return n;
}

int devcomm_select_device(Comm *host) {
    char why[256] = "";
    DevselRank me;
    memset(&me, 0, sizeof(me));
    int lr, ls;
    comm_node_local(host, &me.node, &lr, &ls);
    if (gethostname(me.host, sizeof(me.host) - 1) != 0) XSNPRINTF(me.host, sizeof(me.host), "unknown-host");
    me.n_visible = devcomm_device_count(why, sizeof(why));
    for (int g = 0; g < me.n_visible && g < DEVSEL_MAX_GPUS; g++)
        CUDA_CHECK(cudaDeviceGetPCIBusId(me.bus[g], DEVSEL_BUS, g));
    // Every rank's report, as ints (DevselRank is made of ints and chars: a multiple of 4 bytes).
    enum { INTS = sizeof(DevselRank) / sizeof(int) };
    _Static_assert(sizeof(DevselRank) % sizeof(int) == 0, "DevselRank must be a whole number of ints");
    const int P = host->size;
    DevselRank *all = XMALLOC(sizeof(DevselRank) * (size_t)P);
    int *counts = XMALLOC(sizeof(int) * (size_t)P), *displs = XMALLOC(sizeof(int) * (size_t)P);
    for (int r = 0; r < P; r++) { counts[r] = INTS; displs[r] = r * INTS; }
    comm_allgatherv_i32(host, (const int *)&me, (int *)all, counts, displs);
    g_rank = host->rank;
    if (me.n_visible == 0) {
        free(all); free(counts); free(displs);
        HT_FATAL("rank %d on host %s: no usable GPU (%s)", host->rank, me.host, why);
    }
    char msg[768];
    const int dev = devsel_choose(all, P, host->rank, NULL, NULL, msg, sizeof(msg));
    free(all); free(counts); free(displs);
    if (dev < 0) HT_FATAL("%s", msg);
    CUDA_CHECK(cudaSetDevice(dev));
    return dev;
}

void devcomm_init(DevComm *d, Comm *host, int force_nccl) {
    memset(d, 0, sizeof(*d));
    d->host = host;
    d->rank = host->rank;
    d->size = host->size;
    g_rank = host->rank;
    int node;
    comm_node_local(host, &node, &d->local_rank, &d->local_size);
    CUDA_CHECK(cudaGetDevice(&d->device));
    cudaStream_t s;
    cudaEvent_t a, b;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&a, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&b, cudaEventDisableTiming));
    d->stream = s; d->ready = a; d->done = b;
    if (d->size > 1 || force_nccl) {
        ncclUniqueId id;
        memset(&id, 0, sizeof(id));
        if (d->rank == 0) NCCL_CHECK(ncclGetUniqueId(&id));
        comm_bcast(host, &id, sizeof(id), 0);
        ncclComm_t c;
        NCCL_CHECK(ncclCommInitRank(&c, d->size, id, d->rank));
        d->nccl = c;
        g_active = c;
    }
}

void devcomm_free(DevComm *d) {
    if (d->nccl) {
        ncclComm_t c = (ncclComm_t)d->nccl;
        if (g_active == c) g_active = NULL;
        CUDA_CHECK(cudaStreamSynchronize((cudaStream_t)d->stream));
        NCCL_CHECK(ncclCommDestroy(c));
    }
    if (d->stream) CUDA_CHECK(cudaStreamDestroy((cudaStream_t)d->stream));
    if (d->ready) CUDA_CHECK(cudaEventDestroy((cudaEvent_t)d->ready));
    if (d->done) CUDA_CHECK(cudaEventDestroy((cudaEvent_t)d->done));
    memset(d, 0, sizeof(*d));
}

// Hand-off from the caller's stream to the communication stream and back.
static cudaStream_t begin(DevComm *d, void *stream) {
    HT_CHECK(!d->pending, "rank %d: a collective was issued while an all-gather started by "
             "devcomm_allgatherv_f32_start was not joined (devcomm_join first)", d->rank);
    CUDA_CHECK(cudaEventRecord((cudaEvent_t)d->ready, (cudaStream_t)stream));
    CUDA_CHECK(cudaStreamWaitEvent((cudaStream_t)d->stream, (cudaEvent_t)d->ready, 0));
    return (cudaStream_t)d->stream;
}

static void end(DevComm *d, void *stream) {
    CUDA_CHECK(cudaEventRecord((cudaEvent_t)d->done, (cudaStream_t)d->stream));
    CUDA_CHECK(cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)d->done, 0));
}

static void allreduce(DevComm *d, void *buf, size_t n, ncclDataType_t type, size_t elt, void *stream,
                      double *bytes) {
    if (!d->nccl || n == 0) return;
    cudaStream_t cs = begin(d, stream);
    NCCL_CHECK(ncclAllReduce(buf, buf, n, type, ncclSum, (ncclComm_t)d->nccl, cs));
    end(d, stream);
    d->nccl_calls++;
    *bytes += (double)n * (double)elt;
}

void devcomm_allreduce_sum_f32(DevComm *d, float *buf, size_t n, void *stream) {
    allreduce(d, buf, n, ncclFloat32, sizeof(float), stream, &d->bytes_allreduce);
}

void devcomm_allreduce_sum_f64(DevComm *d, double *buf, size_t n, void *stream) {
    allreduce(d, buf, n, ncclFloat64, sizeof(double), stream, &d->bytes_allreduce);
}

void devcomm_bn_allreduce(DevComm *d, double *buf, size_t n, void *stream) {
    d->bn_calls++;
    allreduce(d, buf, n, ncclFloat64, sizeof(double), stream, &d->bytes_bn);
}

// join = 0: leave the gather running on the communication stream (d->pending; devcomm_join ends it).
static void allgatherv(DevComm *d, const void *send, void *recv, const int *counts, const int *displs,
                       ncclDataType_t type, size_t elt, void *stream, int join) {
    char *mine = (char *)recv + (size_t)displs[d->rank] * elt;
    if (!d->nccl) {
        if ((const char *)send != mine && counts[d->rank] > 0)
            CUDA_CHECK(cudaMemcpyAsync(mine, send, (size_t)counts[d->rank] * elt, cudaMemcpyDeviceToDevice,
                                       (cudaStream_t)stream));
        return;
    }
    int even = 1;
    for (int r = 0; r < d->size; r++) even &= counts[r] == counts[0] && displs[r] == r * counts[0];
    cudaStream_t cs = begin(d, stream);
    if (even) {
        NCCL_CHECK(ncclAllGather(send, recv, (size_t)counts[0], type, (ncclComm_t)d->nccl, cs));
    } else {
        NCCL_CHECK(ncclGroupStart());
        for (int r = 0; r < d->size; r++) {
            if (counts[r] == 0) continue;
            void *rb = (char *)recv + (size_t)displs[r] * elt;
            const void *sb = r == d->rank ? send : rb;
            NCCL_CHECK(ncclBroadcast(sb, rb, (size_t)counts[r], type, r, (ncclComm_t)d->nccl, cs));
        }
        NCCL_CHECK(ncclGroupEnd());
    }
    if (join) end(d, stream);
    else d->pending = 1;
    d->nccl_calls++;
    size_t others = 0;
    for (int r = 0; r < d->size; r++)
        if (r != d->rank) others += (size_t)counts[r];
    d->bytes_allgather += (double)others * (double)elt;
}

void devcomm_allgatherv_f32(DevComm *d, const float *send, float *recv, const int *counts,
                            const int *displs, void *stream) {
    allgatherv(d, send, recv, counts, displs, ncclFloat32, sizeof(float), stream, 1);
}

void devcomm_allgatherv_f32_start(DevComm *d, const float *send, float *recv, const int *counts,
                                  const int *displs, void *stream) {
    allgatherv(d, send, recv, counts, displs, ncclFloat32, sizeof(float), stream, 0);
}

void devcomm_join(DevComm *d, void *stream) {
    if (!d->pending) return;
    d->pending = 0;
    end(d, stream);
}

void devcomm_allgatherv_i32(DevComm *d, const int *send, int *recv, const int *counts,
                            const int *displs, void *stream) {
    allgatherv(d, send, recv, counts, displs, ncclInt32, sizeof(int), stream, 1);
}
