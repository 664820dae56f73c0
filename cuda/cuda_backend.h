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

// One step (trainer_step): forward, loss, backward, all-reduce, Adam; m->step advances. Fatal if
// the loss or gradient norm is not finite, before any update.
void cuda_trainer_step(CudaTrainer *ct, StepStats *st);
// Loss and gradient of the current step (trainer_loss_grad); the gradient stays on the device
// (cuda_trainer_to_host copies it to m->grads).
void cuda_trainer_loss_grad(CudaTrainer *ct, StepStats *st);
// Validation (trainer_validate): V fresh z, batch norm in evaluation mode.
void cuda_trainer_validate(CudaTrainer *ct, ValStats *vs);

// Device -> Model (params, grads, Adam moments, batch-norm statistics) and back.
void cuda_trainer_to_host(CudaTrainer *ct);
void cuda_trainer_from_host(CudaTrainer *ct);

// Collectives this trainer has issued through NCCL (0 on one rank unless HYPERTRAIN_COMM=nccl).
long cuda_trainer_nccl_calls(const CudaTrainer *ct);

// Nearest neighbours and distances of the last entropy estimate (n samples) (tests).
void cuda_trainer_last_neighbours(const CudaTrainer *ct, int *nn, float *eps, int n);

// One line describing this rank's GPU (name, compute capability, memory) into buf.
void cuda_backend_describe(char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
