// comm_nccl.h: collectives on DEVICE buffers for the CUDA trainer (make CUDA=1), next to the host
// interface of comm.h. MPI (through comm.h) is used only to start up: each rank finds its local
// rank from an all-gather of host names, picks GPU local_rank, and rank 0's ncclGetUniqueId is
// broadcast with comm_bcast before ncclCommInitRank. The hot path (all-gather of generated
// weights, batch-norm statistics, gradient all-reduce) then runs in NCCL on a dedicated
// communication stream, ordered against the caller's compute stream by events:
//   record `ready` on the compute stream -> the comm stream waits for it -> NCCL call on the comm
//   stream -> record `done` there -> the compute stream waits for `done`.
// Counts are ELEMENTS (NCCL's convention), never bytes.
//
// With one rank and force_nccl = 0 no NCCL communicator is created and every collective is an
// identity (an all-gather copies the local rows when they are not already in place), exactly as
// comm_single.c does on the host.
#ifndef HT_COMM_NCCL_H
#define HT_COMM_NCCL_H

#include <stddef.h>

#include "comm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct DevComm {
    Comm *host;              // the communicator used to start up (MPI or single)
    int rank, size;
    int local_rank, local_size;   // among the ranks on this host
    int device;              // this rank's CUDA device
    void *nccl;              // ncclComm_t, NULL when there is nothing to communicate
    void *stream;            // cudaStream_t of the collectives
    void *ready, *done;      // cudaEvent_t for the hand-offs
    double bytes_allgather, bytes_allreduce, bytes_bn;   // bytes this rank sent/received
    long nccl_calls;         // collectives issued through NCCL (0 when nccl is NULL)
    int pending;             // an all-gather from devcomm_allgatherv_f32_start awaits devcomm_join
    long bn_calls;           // devcomm_bn_allreduce calls, also when there is nothing to communicate
                             // (what a multi-GPU step would issue; as Comm.calls_bn on the CPU)
} DevComm;

// Number of CUDA devices visible to this process; 0 when there are none or the driver cannot be
// used. If why != NULL it receives the reason for 0 (the CUDA error text).
int devcomm_device_count(char *why, size_t why_len);

// The NCCL library's version at run time ("2.28.3"), whatever header it was built with.
void devcomm_nccl_version(char *buf, size_t n);

// Picks this rank's GPU (cudaSetDevice) with devsel_choose (mpi/devsel.h) from every rank's node
// (comm_node_local: MPI_Comm_split_type) and the PCI bus ids of the GPUs it sees: local rank r takes
// GPU r when the ranks of a node see the same GPUs, each rank its own GPU when the launcher gave
// every rank its own CUDA_VISIBLE_DEVICES. Fatal, with a clear message naming the host, when a rank
// sees no GPU or two ranks would share one physical GPU (NCCL cannot). Returns the device index.
int devcomm_select_device(Comm *host);

// Creates the communication stream and events and, when size > 1 or force_nccl, the NCCL
// communicator (on the current device). devcomm_select_device must have run on every rank.
void devcomm_init(DevComm *d, Comm *host, int force_nccl);
void devcomm_free(DevComm *d);

// In-place sums over ranks of device buffers, ordered after the work already queued on `stream`
// (a cudaStream_t); later work on `stream` waits for the result.
void devcomm_allreduce_sum_f32(DevComm *d, float *buf, size_t n, void *stream);
void devcomm_allreduce_sum_f64(DevComm *d, double *buf, size_t n, void *stream);
// The same for batch-norm statistics (counted separately).
void devcomm_bn_allreduce(DevComm *d, double *buf, size_t n, void *stream);

// Uneven all-gather of device rows: rank r contributes counts[r] elements landing at
// recv + displs[r]; `send` may be recv + displs[rank] (in place). Equal counts use
// ncclAllGather, uneven ones a group of ncclBroadcast calls (one per root).
void devcomm_allgatherv_f32(DevComm *d, const float *send, float *recv, const int *counts,
                            const int *displs, void *stream);
void devcomm_allgatherv_i32(DevComm *d, const int *send, int *recv, const int *counts,
                            const int *displs, void *stream);

// The same all-gather, left running on the communication stream: later work on `stream` does NOT
// wait for it until devcomm_join(d, stream). For overlapping the gather with work that reads only
// the local rows (in place: they are the send buffer, which NCCL only reads) and writes neither
// recv nor send. No other collective may be issued before the join (fatal: it would reuse the
// hand-off events). Without a communicator it is devcomm_allgatherv_f32 (a copy on `stream`) and
// the join does nothing.
void devcomm_allgatherv_f32_start(DevComm *d, const float *send, float *recv, const int *counts,
                                  const int *displs, void *stream);
void devcomm_join(DevComm *d, void *stream);

// The NCCL_CHECK failure path for NCCL calls made outside comm_nccl.c (tests): reports the call
// and NCCL's last error, aborts the communicator and ends every rank. result is an ncclResult_t.
void devcomm_nccl_fail(int result, const char *call, const char *file, int line) __attribute__((noreturn));

// Aborts the live NCCL communicator, if any (called on fatal errors before the MPI job is ended,
// so that no rank is left waiting inside an NCCL kernel). Safe to call at any time.
void devcomm_abort_active(void);

#ifdef __cplusplus
}
#endif

#endif
