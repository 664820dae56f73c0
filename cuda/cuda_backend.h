// cuda_backend.h: the C interface of the CUDA backend (make CUDA=1, which defines HT_CUDA=1).
//
// The GPU trainer is built on top of an initialized CPU Trainer (src/train.h) and uses its Model
// (architecture, parameter table, host copies of the state for checkpoints), Comm, data, sampler,
// shard bounds and host validation buffers. It keeps its own device copies of everything that the
// step touches: ONE flat device allocation of 4 x n_params floats (parameters | gradients | Adam m
// | Adam v, the same layout as Model.flat), the batch-norm running statistics, the generated weights
// (n_samples x n_weights, one flat buffer, all-gathered with one NCCL call), and the training and
// validation images (uploaded once). A step makes the same random draws, visits the same images
// and performs the same operations as trainer_step (src/train.c); tests/gpu/test_cuda_step checks
// that the two agree.
//
// Host state is NOT kept current during training: call cuda_trainer_to_host before reading
// Model.params / adam_m / adam_v / stats (checkpoints, consistency checks), and
// cuda_trainer_from_host after changing them (resume).
#ifndef HT_CUDA_BACKEND_H
#define HT_CUDA_BACKEND_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "comm.h"
#include "train.h"

typedef struct CudaTrainer CudaTrainer;

// Decides where this run trains, the same on every rank. device: "cpu", "cuda" or "auto".
//   cpu  -> 0.
//   cuda -> 1 (each rank's GPU selected by devcomm_select_device: local rank r takes GPU r when
//           the ranks of a node see the same GPUs, each rank its own GPU under per-rank
//           CUDA_VISIBLE_DEVICES), or a fatal error when a rank sees no GPU, when two ranks would
//           share one physical GPU (PCI bus id), or for the toy task (CPU only).
//   auto -> 1 as for cuda when every rank sees a GPU; 0 with a printed note when some rank sees
//           none (a CUDA build on a machine without GPU) or for the toy task. Shared GPUs are
//           still a fatal error (not a silent fallback).
// Invalid strings are fatal. Prints one "device: ..." line on rank 0.
int cuda_backend_select(Comm *comm, const char *device, int toy_task);

// GPUs visible to this process (0 if none; why receives the reason, may be NULL).
int cuda_backend_device_count(char *why, size_t why_len);

// Creates the GPU trainer for tr (MNIST task), on the device chosen by cuda_backend_select (or the
// current device), uploads the model state and the data. HYPERTRAIN_COMM=nccl in the environment
// makes every collective go through NCCL even with one rank (auto, the default: NCCL with P > 1). Fatal with the requested bytes when the
// GPU runs out of memory.
CudaTrainer *cuda_trainer_create(Trainer *tr);
void cuda_trainer_destroy(CudaTrainer *ct);

// ---- training steps without host synchronization (cuda/train_cuda.cu: design and the meaning of
// "no update was applied" when several steps are queued) ----
// Queues one step (trainer_step) on the GPU and returns at once: the host stages z, image indices,
// labels, lr, lambda and Adam's step size into pinned memory (it waits only when it is 3 steps
// ahead of the GPU), then the step runs as one CUDA graph replay (HT_CUDA_GRAPH=0 or HT_CUDA_SYNC=1:
// plain launches). m->step advances. The finiteness check runs on the device: the first non-finite
// step sets a flag that makes its Adam, and the Adam of every step queued after it, skip the
// update. Nothing is read back.
void cuda_trainer_step_queue(CudaTrainer *ct);
// Synchronizes and reads the statistics of the last queued step into *st (NULL: not wanted), with
// trainer_step's StepStats semantics. Fatal ("training diverged at step N: ...", N the first
// non-finite step, with that step's statistics) when a queued step was not finite: no update of
// that step or of any later one was applied.
void cuda_trainer_step_stats(CudaTrainer *ct, StepStats *st);
// cuda_trainer_step_stats without the statistics: the divergence check before a checkpoint,
// a validation or the end of a run (cuda_trainer_to_host and cuda_trainer_validate call it).
void cuda_trainer_check(CudaTrainer *ct);
// The same read without the fatal error (tests): returns the first non-finite step (0: none) and
// fills the last step's and that step's statistics (either may be NULL).
long long cuda_trainer_poll(CudaTrainer *ct, StepStats *last, StepStats *bad);
// One step with its statistics: cuda_trainer_step_queue + cuda_trainer_step_stats (a host
// synchronization per step: tests and the old behaviour).
void cuda_trainer_step(CudaTrainer *ct, StepStats *st);

// Validation (trainer_validate): V fresh z, batch norm in evaluation mode; votes, probability
// sums, per-network correct counts and NLL accumulated on the device, one copy back at the end.
// Runs cuda_trainer_check first.
void cuda_trainer_validate(CudaTrainer *ct, ValStats *vs);
// The same with the probabilities copied back after every forward call and accumulated on the host
// (the previous implementation; the reference of the device accumulation in tests).
void cuda_trainer_validate_host(CudaTrainer *ct, ValStats *vs);

// CUDA graph on (the default unless HT_CUDA_GRAPH=0) or off for the next steps; returns whether
// it is on (never under HT_CUDA_SYNC=1, whose synchronizations are illegal inside a capture).
int cuda_trainer_set_graph(CudaTrainer *ct, int on);
// Per-phase timing with CUDA events (bench_cuda_step): on = every later step runs with plain
// launches and an event between phases, and synchronizes at its end; the accumulators restart.
void cuda_trainer_profile(CudaTrainer *ct, int on);
// Mean milliseconds per profiled step of each phase (names[i], ms[i]); returns the phase count.
int cuda_trainer_phases(const CudaTrainer *ct, const char **names, double *ms, int max);
typedef struct {
    int graph;            // the graph is used for the next steps
    long graph_nodes;     // nodes of the captured step (kernels incl. cuBLAS's, copies, memsets, events, NCCL)
    long graph_builds, graph_launches, steps_queued;
    long bn_allreduces;   // devcomm_bn_allreduce calls issued by the host (a captured step's once)
} CudaTrainerInfo;
void cuda_trainer_info(const CudaTrainer *ct, CudaTrainerInfo *info);

// Device -> Model (params, grads, Adam moments, batch-norm statistics) and back. to_host runs
// cuda_trainer_check first (a diverged run ends there); copy_to_host does not (tests).
// from_host also clears the divergence flag (a new state).
void cuda_trainer_to_host(CudaTrainer *ct);
void cuda_trainer_copy_to_host(CudaTrainer *ct);
void cuda_trainer_from_host(CudaTrainer *ct);

// Collectives this trainer has issued through NCCL (0 on one rank unless HYPERTRAIN_COMM=nccl);
// with the graph, the collectives of the captured step count once, not once per replay.
long cuda_trainer_nccl_calls(const CudaTrainer *ct);

// Nearest neighbours and distances of the last entropy estimate (n samples) (tests).
void cuda_trainer_last_neighbours(const CudaTrainer *ct, int *nn, float *eps, int n);

// One line describing this rank's GPU (name, compute capability, memory) into buf.
void cuda_backend_describe(char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
