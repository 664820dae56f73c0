// train_cuda.cu: the training step and validation of src/train.c on the GPU (see cuda_backend.h).
//
// Per step, on each rank (P ranks, one GPU each; the shard bounds are the CPU trainer's):
//   host:   z for the local samples (Philox, keyed by seed/step/global index, as src/), the image
//           indices of the epoch sampler, their labels -> pinned buffers -> one async copy each
//   device: image gather from the device copy of the training set; hypernetwork forward (batch-norm
//           sums all-reduced in NCCL); gauge fixing into this rank's rows of the flat buffer of all
//           generated networks; ncclAllGather of those rows; target network loss and gradient of
//           the local networks; entropy (distances, nearest neighbours, all-gather of indices and
//           distances, gradient); gauge backward; hypernetwork backward; ncclAllReduce of the flat
//           gradient; squared gradient norm; loss sums (all-reduced)
//   device: the entropy estimate, the step's statistics and the finiteness check (k_step_finalize:
//           a flag in device memory, set by the first non-finite step); Adam on the flat buffer,
//           skipped while the flag is set (k_adam_dev); lr, lambda and Adam's step size are read
//           from a small per-step buffer uploaded with z and the image indices.
// There is NO host synchronization inside a step: the host stages the next step's inputs while the
// GPU runs, and reads the statistics and the flag only when it needs them (cuda_trainer_step_stats:
// a logged step; cuda_trainer_check: checkpoint, validation, the end of the run).
//
// "Before any bad update", with several steps queued: step k is the first whose loss, cross-
// entropy, entropy or gradient norm is not finite. Its k_step_finalize sets bad_step = k before
// its Adam runs (same stream), so Adam k skips; every later queued step k+1, k+2, ... still runs
// its forward/backward on the unchanged parameters, but its Adam sees bad_step != 0 and skips too.
// The device parameters and Adam moments therefore stay exactly those after step k - 1. The next
// read (a log line, a checkpoint, a validation, the end) finds bad_step = k and ends the run with
// "training diverged at step k ..." and step k's own statistics; nothing is written after it, so
// the last checkpoint is kept. (The batch-norm running statistics of steps >= k are updated by
// their forward passes, as the CPU's trainer_step does before its check; they die with the
// process and are never written.)
//
// The device part of a step (step_device) has no per-step value in its launch arguments, so it is
// captured once into a CUDA graph and replayed with cudaGraphLaunch (HT_CUDA_GRAPH=0: plain
// launches; HT_CUDA_SYNC=1 also disables it, its synchronizations being illegal in a capture).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "kernels.cuh"
#include "mlp_cuda.cuh"
#include "target_cuda.cuh"

extern "C" {
#include "data.h"
#include "entropy.h"
#include "gauge.h"
#include "model.h"
#include "rng.h"
#include "train.h"
}
#include "cuda_backend.h"

#define VAL_CHUNK 50   // validation images per forward call (as src/train.c)
#define VAL_CAP 2048   // network-images of the target workspace, at least (validation speed)
#define STAGE_SLOTS 3  // pinned staging buffers of the per-step inputs (steps the host may run ahead)

// The inputs of one queued step, in pinned host memory, copied to the device with the step.
typedef struct {
    float *z;            // (n_local, z_dim)
    int32_t *idx;        // (n_local * ips) image indices
    uint8_t *labels;     // (n_local * ips)
    DevStepParams *par;  // lr, lambda, Adam's step size, step number
    cudaEvent_t copied;  // recorded after the slot's copies: the host refills the slot only after it
    int used;
} StageSlot;

// Phases of a step timed with CUDA events when profiling (bench_cuda_step); segment i lies
// between marks i and i + 1 of step_device.
enum { PH_DATA, PH_HYPER, PH_GAUGE, PH_COMM, PH_TARGET, PH_ENTROPY, PH_STATS, PH_ADAM, N_PHASES };
static const char *const PHASE_NAMES[N_PHASES] = {"data", "hypernetwork", "gauge", "all-gather/all-reduce",
                                                  "target forward/backward", "entropy", "statistics", "adam"};
#define N_MARKS 12
static const int SEGMENT_PHASE[N_MARKS - 1] = {PH_DATA, PH_HYPER, PH_GAUGE, PH_COMM, PH_TARGET, PH_ENTROPY,
                                               PH_GAUGE, PH_HYPER, PH_COMM, PH_STATS, PH_ADAM};

struct CudaTrainer {
    Trainer *tr;
    Model *m;
    DevComm dc;
    CudaCtx ctx;
    size_t np;                   // trainable parameters
    int max_local, cap, n_val;
    float *d_flat, *d_params, *d_grads, *d_m, *d_v; // (4, np), the layout of Model.flat
    float *d_stats;              // batch-norm running statistics
    CudaHyper hn;
    CudaTarget tn;
    float *d_z, *d_raw, *d_all, *d_scales, *d_dtheta;
    double *d_gs;                // gauge backward scratch (max_local, n_scales)
    float *d_train, *d_val;      // the data sets' images
    float *d_images;             // (n_local, ips, in_size)
    uint8_t *d_labels;           // (n_local, ips)
    int32_t *d_idx;              // (n_local * ips) image indices
    double *d_dist;              // (max_local, max(B, V))
    int *d_nn;                   // (max(B, V))
    float *d_eps;                // (max(B, V))
    double *d_loss_k;            // (n_local)
    int *d_correct_k;            // (n_local)
    double *d_red;               // [loss sum, correct sum, gradient sum of squares]
    double *d_partial;           // (HT_SUMSQ_BLOCKS)
    float *d_probs;              // (cap, classes)
    // pinned host buffers
    float *h_z, *h_eps, *h_probs;
    int *h_nn;
    double *h_red;
    int *counts, *displs;        // (P) all-gather shards
    // the step without host synchronization
    DevStepParams *d_par;        // this step's lr, lambda, Adam step size, step number
    DevStepRecord *d_rec, *h_rec;// statistics of the last step and the first non-finite one
    double digamma_B;            // digamma(B) of the entropy estimate (constant)
    StageSlot slot[STAGE_SLOTS];
    int next_slot;
    int use_graph;               // the next steps replay the graph
    int graph_allowed;           // not HT_CUDA_SYNC=1 (its synchronizations are illegal in a capture)
    cudaGraphExec_t graph;       // the captured step_device (NULL until the first step)
    size_t graph_nodes;
    long graph_launches, graph_builds, steps_queued;
    // validation accumulated on the device
    uint8_t *d_val_labels;       // (n_val)
    float *d_ens;                // (2, n_val, classes): votes, probability sums
    int *d_vcorrect, *h_vcorrect;// (v_local)
    double *d_vnll, *h_vnll;     // (v_local)
    // per-phase timing (cuda_trainer_profile)
    int profile;
    cudaEvent_t ev[N_MARKS];
    double phase_ms[N_PHASES];
    long profiled;
};

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

static void *pinned(size_t bytes, const char *what) {
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 16);
    if (e != cudaSuccess)
        HT_FATAL("cudaMallocHost of %zu bytes (%.1f MiB) for %s failed: %s", bytes, bytes / 1048576.0, what,
                 cudaGetErrorString(e));
    return p;
}

// ---------------------------------------------------------------- device selection

extern "C" int cuda_backend_device_count(char *why, size_t why_len) { return devcomm_device_count(why, why_len); }

extern "C" void cuda_backend_describe(char *buf, size_t n) {
    int dev = 0;
    cudaDeviceProp p;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(buf, n, "no GPU");
        return;
    }
    snprintf(buf, n, "GPU %d: %s (compute capability %d.%d, %.1f GiB, %d SMs)", dev, p.name, p.major, p.minor,
             p.totalGlobalMem / 1073741824.0, p.multiProcessorCount);
}

extern "C" int cuda_backend_select(Comm *comm, const char *device, int toy_task) {
    const char *dev = device && device[0] ? device : "auto";
    int want;
    if (!strcmp(dev, "cpu")) want = 0;
    else if (!strcmp(dev, "cuda")) want = 1;
    else if (!strcmp(dev, "auto")) want = 2;
    else HT_FATAL("--device must be cpu, cuda or auto (got '%s')", dev);
    if (want == 0) {
        if (comm->rank == 0) printf("device: CPU (--device cpu)\n");
        return 0;
    }
    if (toy_task) {
        HT_CHECK(want != 1, "--device cuda: the toy task has no GPU path (a 2-D problem: it runs on the CPU "
                 "in seconds); use --device cpu or auto");
        if (comm->rank == 0) printf("device: CPU (the toy task has no GPU path)\n");
        return 0;
    }
    char why[256] = "";
    const int n_dev = devcomm_device_count(why, sizeof(why));
    const int any_without = comm_allreduce_max_int(comm, n_dev == 0);
    if (any_without) {
        if (want == 1) {
            if (n_dev == 0)
                HT_FATAL("--device cuda: rank %d sees no usable GPU (%s). Check CUDA_VISIBLE_DEVICES and the "
                         "driver (nvidia-smi), or train on the CPU with --device cpu", comm->rank, why);
            HT_FATAL("--device cuda: another rank sees no usable GPU (see its message); every rank needs one");
        }
        if (comm->rank == 0)
            printf("note: this hypertrain was built with CUDA, but %s (%s); training on the CPU. "
                   "--device cpu silences this note, --device cuda makes a missing GPU an error.\n",
                   n_dev == 0 ? "no usable GPU was found" : "some rank sees no usable GPU",
                   n_dev == 0 ? why : "see --device cuda for details");
        return 0;
    }
    devcomm_select_device(comm); // fatal when two ranks would share a GPU (mpi/devsel.h)
    char desc[256];
    cuda_backend_describe(desc, sizeof(desc));
    if (comm->rank == 0)
        printf("device: CUDA, %d rank(s) with one GPU each; rank 0 on %s\n", comm->size, desc);
    return 1;
}

// ---------------------------------------------------------------- create / destroy / sync

static float *upload_floats(CudaTrainer *ct, const float *src, size_t n, const char *what) {
    float *d = DALLOC(float, n, what);
    CUDA_CHECK(cudaMemcpyAsync(d, src, n * sizeof(float), cudaMemcpyHostToDevice, ct->ctx.stream));
    return d;
}

extern "C" CudaTrainer *cuda_trainer_create(Trainer *tr) {
    Model *m = tr->m;
    const Job *job = &m->job;
    HT_CHECK(job->task == TASK_MNIST && tr->data, "the CUDA trainer runs the MNIST task only");
    CudaTrainer *ct = (CudaTrainer *)XCALLOC(1, sizeof(CudaTrainer));
    ct->tr = tr;
    ct->m = m;
    // HYPERTRAIN_COMM=nccl: every collective of the step goes through NCCL even on one rank (the
    // in-place all-gather, the batch-norm all-reduces and the stream/event hand-offs then run on a
    // one-GPU machine too); "auto" or unset: NCCL only with several ranks.
    const char *cm = getenv("HYPERTRAIN_COMM");
    HT_CHECK(!cm || !cm[0] || !strcmp(cm, "nccl") || !strcmp(cm, "auto"),
             "HYPERTRAIN_COMM must be nccl or auto (got '%s')", cm);
    devcomm_init(&ct->dc, tr->comm, cm && !strcmp(cm, "nccl"));
    if (ct->dc.nccl && tr->comm->rank == 0) {
        char ver[32];
        devcomm_nccl_version(ver, sizeof(ver));
        printf("comm: NCCL %s on %d rank(s)%s\n", ver, tr->comm->size,
               tr->comm->size == 1 ? " (HYPERTRAIN_COMM=nccl: every collective through NCCL)" : "");
    }
    cuda_ctx_init(&ct->ctx, &ct->dc);
    const size_t np = m->harch.table.n_params, W = m->tarch.n_weights;
    const int ips = job->images_per_sample, in = m->tarch.in_size, C = m->tarch.classes;
    const int NB = imax(tr->B, tr->V), ns = gauge_n_scales(&m->tarch);
    ct->np = np;
    ct->d_flat = DALLOC(float, 4 * np, "parameters, gradients and Adam moments");
    ct->d_params = ct->d_flat;
    ct->d_grads = ct->d_flat + np;
    ct->d_m = ct->d_flat + 2 * np;
    ct->d_v = ct->d_flat + 3 * np;
    ct->d_stats = DALLOC(float, m->harch.table.n_stat, "batch-norm running statistics");
    ct->d_par = DALLOC(DevStepParams, 1, "step parameters");
    ct->d_rec = DALLOC(DevStepRecord, 1, "step statistics");
    ct->h_rec = (DevStepRecord *)pinned(sizeof(DevStepRecord), "step statistics");
    cuda_trainer_from_host(ct);
    ct->max_local = imax(tr->n_local, tr->v_local);
    cuda_hyper_init(&ct->hn, &m->harch, &m->tarch, ct->max_local);
    cuda_hyper_bind(&ct->ctx, &ct->hn, ct->d_params, ct->d_grads); // before any capture
    ct->cap = imax(tr->n_local * ips, VAL_CAP);
    cuda_target_init(&ct->tn, &m->tarch, ct->cap, 1, job->cuda_math); // tf32: the im2col path
    ct->d_z = DALLOC(float, (size_t)ct->max_local * job->z_dim, "noise z");
    ct->d_raw = DALLOC(float, (size_t)ct->max_local * W, "generated weights");
    ct->d_all = DALLOC(float, (size_t)NB * W, "gauge-fixed weights of all samples");
    ct->d_scales = DALLOC(float, (size_t)ct->max_local * (ns > 0 ? ns : 1), "gauge scales");
    ct->d_gs = DALLOC(double, (size_t)ct->max_local * (ns > 0 ? ns : 1), "gauge backward scratch");
    ct->d_dtheta = DALLOC(float, (size_t)tr->n_local * W, "gradients w.r.t. generated weights");
    const Dataset *train = &tr->data->train, *val = &tr->data->val;
    ct->d_train = upload_floats(ct, train->images, (size_t)train->n * in, "training images");
    ct->n_val = job->val_images > 0 && job->val_images < val->n ? job->val_images : val->n;
    ct->d_val = upload_floats(ct, val->images, (size_t)ct->n_val * in, "validation images");
    const size_t n_img = (size_t)tr->n_local * ips;
    ct->d_images = DALLOC(float, n_img * in, "this step's images");
    ct->d_labels = DALLOC(uint8_t, n_img, "this step's labels");
    ct->d_idx = DALLOC(int32_t, n_img, "this step's image indices");
    ct->d_dist = DALLOC(double, (size_t)ct->max_local * NB, "entropy distances");
    ct->d_nn = DALLOC(int, NB, "nearest neighbours");
    ct->d_eps = DALLOC(float, NB, "nearest-neighbour distances");
    ct->d_loss_k = DALLOC(double, ct->max_local, "per-network losses");
    ct->d_correct_k = DALLOC(int, ct->max_local, "per-network correct counts");
    ct->d_red = DALLOC(double, 4, "loss sums");
    ct->d_partial = DALLOC(double, HT_SUMSQ_BLOCKS, "gradient-norm partial sums");
    ct->d_probs = DALLOC(float, (size_t)ct->cap * C, "validation probabilities");
    ct->h_z = (float *)pinned((size_t)ct->max_local * job->z_dim * sizeof(float), "noise z");
    ct->h_eps = (float *)pinned((size_t)NB * sizeof(float), "distances");
    ct->h_nn = (int *)pinned((size_t)NB * sizeof(int), "neighbours");
    ct->h_probs = (float *)pinned((size_t)ct->cap * C * sizeof(float), "validation probabilities");
    ct->h_red = (double *)pinned(4 * sizeof(double), "loss sums");
    ct->counts = (int *)XMALLOC(sizeof(int) * (size_t)tr->comm->size);
    ct->displs = (int *)XMALLOC(sizeof(int) * (size_t)tr->comm->size);
    for (int k = 0; k < STAGE_SLOTS; k++) {
        StageSlot *sl = &ct->slot[k];
        sl->z = (float *)pinned((size_t)tr->n_local * job->z_dim * sizeof(float), "staged z");
        sl->idx = (int32_t *)pinned(n_img * sizeof(int32_t), "staged image indices");
        sl->labels = (uint8_t *)pinned(n_img, "staged labels");
        sl->par = (DevStepParams *)pinned(sizeof(DevStepParams), "staged step parameters");
        CUDA_CHECK(cudaEventCreateWithFlags(&sl->copied, cudaEventDisableTiming));
    }
    ct->digamma_B = digamma((double)tr->B);
    ct->d_val_labels = DALLOC(uint8_t, ct->n_val, "validation labels");
    CUDA_CHECK(cudaMemcpyAsync(ct->d_val_labels, val->labels, (size_t)ct->n_val, cudaMemcpyHostToDevice, ct->ctx.stream));
    ct->d_ens = DALLOC(float, 2 * (size_t)ct->n_val * C, "validation votes and probability sums");
    ct->d_vcorrect = DALLOC(int, imax(tr->v_local, 1), "validation correct counts");
    ct->d_vnll = DALLOC(double, imax(tr->v_local, 1), "validation NLL sums");
    ct->h_vcorrect = (int *)pinned((size_t)imax(tr->v_local, 1) * sizeof(int), "validation correct counts");
    ct->h_vnll = (double *)pinned((size_t)imax(tr->v_local, 1) * sizeof(double), "validation NLL sums");
    for (int k = 0; k < N_MARKS; k++) CUDA_CHECK(cudaEventCreate(&ct->ev[k]));
    const char *g = getenv("HT_CUDA_GRAPH"), *sy = getenv("HT_CUDA_SYNC");
    HT_CHECK(!g || !g[0] || !strcmp(g, "0") || !strcmp(g, "1"), "HT_CUDA_GRAPH must be 0 or 1 (got '%s')", g);
    ct->graph_allowed = !(sy && sy[0] && strcmp(sy, "0") != 0);
    ct->use_graph = ct->graph_allowed && !(g && !strcmp(g, "0"));
    cuda_ctx_sync(&ct->ctx);
    if (!tr->comm || tr->comm->rank == 0)
        printf("cuda: convolutions %s (HT_CUDA_CONV) in %s (cuda_math%s), generators %s (HT_CUDA_GENS), step %s "
               "(HT_CUDA_GRAPH)\n",
               cuda_conv_impl_name(ct->tn.conv), cuda_math_name(ct->tn.math),
               ct->tn.math == CUDA_MATH_TF32 ? ": TF32 tensor cores for the conv GEMMs" : "",
               cuda_gens_impl_name(ct->hn.gens_impl),
               ct->use_graph ? "captured in a CUDA graph" : "as plain launches");
    return ct;
}

extern "C" void cuda_trainer_destroy(CudaTrainer *ct) {
    if (!ct) return;
    cuda_ctx_sync(&ct->ctx);
    if (ct->graph) CUDA_CHECK(cudaGraphExecDestroy(ct->graph));
    for (int k = 0; k < STAGE_SLOTS; k++) {
        StageSlot *sl = &ct->slot[k];
        void *h[] = {sl->z, sl->idx, sl->labels, sl->par};
        for (size_t i = 0; i < sizeof(h) / sizeof(h[0]); i++) CUDA_CHECK(cudaFreeHost(h[i]));
        CUDA_CHECK(cudaEventDestroy(sl->copied));
    }
    for (int k = 0; k < N_MARKS; k++) CUDA_CHECK(cudaEventDestroy(ct->ev[k]));
    void *extra[] = {ct->d_par, ct->d_rec, ct->d_val_labels, ct->d_ens, ct->d_vcorrect, ct->d_vnll};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) ht_cuda_free(extra[i]);
    void *hextra[] = {ct->h_rec, ct->h_vcorrect, ct->h_vnll};
    for (size_t i = 0; i < sizeof(hextra) / sizeof(hextra[0]); i++) CUDA_CHECK(cudaFreeHost(hextra[i]));
    cuda_hyper_free(&ct->hn);
    cuda_target_free(&ct->tn);
    void *dev[] = {ct->d_flat, ct->d_stats, ct->d_z, ct->d_raw, ct->d_all, ct->d_scales, ct->d_gs, ct->d_dtheta,
                   ct->d_train, ct->d_val, ct->d_images, ct->d_labels, ct->d_idx, ct->d_dist, ct->d_nn, ct->d_eps,
                   ct->d_loss_k, ct->d_correct_k, ct->d_red, ct->d_partial, ct->d_probs};
    for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) ht_cuda_free(dev[i]);
    void *host[] = {ct->h_z, ct->h_eps, ct->h_nn, ct->h_probs, ct->h_red};
    for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++) CUDA_CHECK(cudaFreeHost(host[i]));
    free(ct->counts);
    free(ct->displs);
    cuda_ctx_free(&ct->ctx);
    devcomm_free(&ct->dc);
    free(ct);
}

extern "C" void cuda_trainer_to_host(CudaTrainer *ct) {
    cuda_trainer_check(ct); // a diverged run ends here, before its state can reach a checkpoint
    cuda_trainer_copy_to_host(ct);
}

extern "C" void cuda_trainer_copy_to_host(CudaTrainer *ct) {
    Model *m = ct->m;
    CUDA_CHECK(cudaMemcpyAsync(m->flat, ct->d_flat, 4 * ct->np * sizeof(float), cudaMemcpyDeviceToHost, ct->ctx.stream));
    CUDA_CHECK(cudaMemcpyAsync(m->stats, ct->d_stats, m->harch.table.n_stat * sizeof(float), cudaMemcpyDeviceToHost,
                               ct->ctx.stream));
    cuda_ctx_sync(&ct->ctx);
}

extern "C" void cuda_trainer_from_host(CudaTrainer *ct) {
    Model *m = ct->m;
    CUDA_CHECK(cudaMemcpyAsync(ct->d_flat, m->flat, 4 * ct->np * sizeof(float), cudaMemcpyHostToDevice, ct->ctx.stream));
    CUDA_CHECK(cudaMemcpyAsync(ct->d_stats, m->stats, m->harch.table.n_stat * sizeof(float), cudaMemcpyHostToDevice,
                               ct->ctx.stream));
    // a new state: no step of it has run (nor diverged) yet
    CUDA_CHECK(cudaMemsetAsync(ct->d_rec, 0, sizeof(DevStepRecord), ct->ctx.stream));
    cuda_ctx_sync(&ct->ctx);
}

extern "C" long cuda_trainer_nccl_calls(const CudaTrainer *ct) { return ct->dc.nccl_calls; }

extern "C" void cuda_trainer_last_neighbours(const CudaTrainer *ct, int *nn, float *eps, int n) {
    memcpy(nn, ct->h_nn, (size_t)n * sizeof(int));
    memcpy(eps, ct->h_eps, (size_t)n * sizeof(float));
}

// ---------------------------------------------------------------- pieces of a step

// Row shards of n samples of `per` elements each (as src/train.c shard_counts).
static void shards(CudaTrainer *ct, int n, size_t per) {
    const int P = ct->tr->comm->size;
    HT_CHECK((size_t)n * per < ((size_t)1 << 31), "all-gather of %zu elements exceeds the int count range",
             (size_t)n * per);
    for (int r = 0; r < P; r++) {
        const int s = comm_shard_start(n, r, P), e = comm_shard_start(n, r + 1, P);
        ct->counts[r] = (int)((size_t)(e - s) * per);
        ct->displs[r] = (int)((size_t)s * per);
    }
}

// z for samples [g0, g0 + n) into h (n, z_dim): exactly src/train.c draw_z.
static void draw_z(CudaTrainer *ct, uint32_t stream, int g0, int n, float *h) {
    const Job *job = &ct->m->job;
    const int zd = job->z_dim;
    for (int i = 0; i < n; i++)
        rng_uniform(job->seed, stream, (uint32_t)ct->m->step, (uint32_t)(g0 + i), -1.0f, 1.0f, h + (size_t)i * zd, zd);
}

// Each local sample's own images: positions (step*B + g) * ips + j of the epoch stream
// (src/train.c load_images): indices and labels into the slot.
static void draw_images(CudaTrainer *ct, StageSlot *sl) {
    Trainer *tr = ct->tr;
    const int ips = ct->m->job.images_per_sample, C = ct->m->tarch.classes;
    const Dataset *d = &tr->data->train;
    for (int i = 0; i < tr->n_local; i++)
        for (int j = 0; j < ips; j++) {
            const int64_t pos = (ct->m->step * tr->B + tr->start + i) * (int64_t)ips + j;
            const int idx = sampler_index(&tr->sampler, pos);
            const size_t q = (size_t)i * ips + j;
            sl->idx[q] = idx;
            sl->labels[q] = d->labels[idx];
            HT_CHECK(d->labels[idx] < C, "label %d out of range [0, %d)", d->labels[idx], C);
        }
}

// Host part of the step m->step (0-based): its z, image indices, labels and scalars into the next
// pinned slot, then four async copies (outside the graph: their sources change per slot). The
// slot's previous copies (STAGE_SLOTS steps ago) must be done before it is refilled: the one host
// wait of the pipeline, which only blocks when the host is STAGE_SLOTS steps ahead of the GPU.
static void stage_step(CudaTrainer *ct) {
    Trainer *tr = ct->tr;
    const Job *job = &ct->m->job;
    cudaStream_t s = ct->ctx.stream;
    StageSlot *sl = &ct->slot[ct->next_slot];
    ct->next_slot = (ct->next_slot + 1) % STAGE_SLOTS;
    if (sl->used) CUDA_CHECK(cudaEventSynchronize(sl->copied));
    draw_z(ct, RNG_STREAM_Z, tr->start, tr->n_local, sl->z);
    draw_images(ct, sl);
    const int64_t t = ct->m->step + 1;
    sl->par->lr = model_lr(job, ct->m->step);
    sl->par->lambda = model_lambda(job, ct->m->step);
    sl->par->adam_a = k_adam_step_size(sl->par->lr, job->beta1, job->beta2, t);
    sl->par->step = (double)t;
    const size_t n_img = (size_t)tr->n_local * job->images_per_sample;
    CUDA_CHECK(cudaMemcpyAsync(ct->d_z, sl->z, (size_t)tr->n_local * job->z_dim * sizeof(float),
                               cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(ct->d_idx, sl->idx, n_img * sizeof(int32_t), cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(ct->d_labels, sl->labels, n_img, cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaMemcpyAsync(ct->d_par, sl->par, sizeof(DevStepParams), cudaMemcpyHostToDevice, s));
    CUDA_CHECK(cudaEventRecord(sl->copied, s));
    sl->used = 1;
}

// Phase boundary i of step_device (profiling only: no event is ever recorded into the graph).
static void mark(CudaTrainer *ct, int i) {
    if (ct->profile) CUDA_CHECK(cudaEventRecord(ct->ev[i], ct->ctx.stream));
}

// Hypernetwork and gauge fixing of samples [g0, g0 + n) of global_n (z already in d_z) into d_all,
// and the all-gather. marks: record phase boundaries 2 and 3 (the training step). overlap: leave
// the all-gather running on the communication stream (the caller runs work on the local rows and
// then devcomm_join: see step_device).
static void generate_device(CudaTrainer *ct, int n, int global_n, int g0, int train, int marks, int overlap) {
    Model *m = ct->m;
    const size_t W = m->tarch.n_weights;
    cuda_hyper_forward(&ct->ctx, &ct->hn, ct->d_params, ct->d_stats, ct->d_z, n, global_n, train, &ct->tr->bn,
                       ct->d_raw);
    if (marks) mark(ct, 2);
    float *out = ct->d_all + (size_t)g0 * W;
    if (m->job.gauge_fixing) k_gauge_forward(ct->ctx.stream, &m->tarch, n, ct->d_raw, out, ct->d_scales);
    else CUDA_CHECK(cudaMemcpyAsync(out, ct->d_raw, (size_t)n * W * sizeof(float), cudaMemcpyDeviceToDevice,
                                    ct->ctx.stream));
    if (marks) mark(ct, 3);
    shards(ct, global_n, W);
    if (overlap) devcomm_allgatherv_f32_start(&ct->dc, out, ct->d_all, ct->counts, ct->displs, ct->ctx.stream);
    else devcomm_allgatherv_f32(&ct->dc, out, ct->d_all, ct->counts, ct->displs, ct->ctx.stream);
}

// Nearest neighbours of the local samples among all N, all-gathered; the gradient of scale * H
// added into grad_local (device, may be NULL; with par, grad_local is first multiplied by
// par->lambda); distances and neighbours copied to the pinned host buffers (read after the next
// synchronization).
static void entropy_queue(CudaTrainer *ct, int N, int start, int n_local, float scale, float *grad_local,
                          const DevStepParams *par) {
    const Job *job = &ct->m->job;
    const size_t W = ct->m->tarch.n_weights;
    cudaStream_t st = ct->ctx.stream;
    HT_CHECK(N >= 2, "entropy: need at least 2 samples, got %d", N);
    k_entropy_distances(st, ct->d_all, N, W, start, n_local, job->distance, ct->d_dist);
    k_entropy_nn(st, ct->d_dist, N, start, n_local, ct->d_nn, ct->d_eps);
    shards(ct, N, 1);
    devcomm_allgatherv_i32(&ct->dc, ct->d_nn + start, ct->d_nn, ct->counts, ct->displs, st);
    devcomm_allgatherv_f32(&ct->dc, ct->d_eps + start, ct->d_eps, ct->counts, ct->displs, st);
    if (grad_local && par)
        k_entropy_grad_lambda(st, ct->d_all, N, W, start, n_local, job->distance, job->z_dim, scale, ct->d_nn,
                              ct->d_eps, par, grad_local);
    else if (grad_local)
        k_entropy_grad(st, ct->d_all, N, W, start, n_local, job->distance, job->z_dim, scale, ct->d_nn, ct->d_eps,
                       grad_local);
    CUDA_CHECK(cudaMemcpyAsync(ct->h_eps, ct->d_eps, (size_t)N * sizeof(float), cudaMemcpyDeviceToHost, st));
    CUDA_CHECK(cudaMemcpyAsync(ct->h_nn, ct->d_nn, (size_t)N * sizeof(int), cudaMemcpyDeviceToHost, st));
}

// H from the all-gathered distances, exactly as src/entropy.c entropy_estimate.
static double entropy_value(const float *eps, int N, int d) {
    double sum_log = 0.0;
    for (int i = 0; i < N; i++) sum_log += log((double)eps[i] + ENTROPY_EPS);
    return digamma((double)N) + (double)d / N * sum_log;
}

// ---------------------------------------------------------------- step

// The device part of a training step, from the staged inputs (d_z, d_idx, d_labels, d_par) to Adam.
// No launch argument depends on the step (lr, lambda, t are read from d_par; the cross-entropy's
// lambda is applied by k_entropy_grad_lambda), and nothing here synchronizes with the host, so it
// is captured once into a CUDA graph.
static void step_device(CudaTrainer *ct) {
    Trainer *tr = ct->tr;
    Model *m = ct->m;
    const Job *job = &m->job;
    const size_t W = m->tarch.n_weights;
    const int ips = job->images_per_sample;
    const size_t n_img = (size_t)tr->n_local * ips;
    const double count = (double)tr->B * ips; // images of the global batch
    cudaStream_t s = ct->ctx.stream;
    mark(ct, 0);
    k_gather_rows(s, (int)n_img, m->tarch.in_size, ct->d_train, ct->d_idx, ct->d_images);
    mark(ct, 1);
    // The all-gather of the weights runs beside the target network, which reads only this rank's
    // rows (the gather's send buffer, which NCCL only reads) and writes neither; the entropy is the
    // first reader of the other ranks' rows (docs/performance-gpu.md: the overlap of the model).
    generate_device(ct, tr->n_local, tr->B, tr->start, 1, 1, 1);
    mark(ct, 4);
    const float *local = ct->d_all + (size_t)tr->start * W;
    cuda_target_loss_grad(&ct->ctx, &ct->tn, tr->n_local, local, ips, ct->d_images, (size_t)ips * m->tarch.in_size,
                          ct->d_labels, (size_t)ips, (float)(1.0 / count), ct->d_loss_k, ct->d_correct_k,
                          ct->d_dtheta);
    devcomm_join(&ct->dc, s);
    mark(ct, 5);
    entropy_queue(ct, tr->B, tr->start, tr->n_local, -1.0f, ct->d_dtheta, ct->d_par);
    mark(ct, 6);
    if (job->gauge_fixing)
        k_gauge_backward(s, &m->tarch, tr->n_local, ct->d_raw, ct->d_scales, ct->d_dtheta, ct->d_dtheta, ct->d_gs);
    mark(ct, 7);
    CUDA_CHECK(cudaMemsetAsync(ct->d_grads, 0, ct->np * sizeof(float), s));
    cuda_hyper_backward(&ct->ctx, &ct->hn, ct->d_params, ct->d_grads, ct->d_dtheta, &tr->bn);
    mark(ct, 8);
    k_sum_loss(s, tr->n_local, ct->d_loss_k, ct->d_correct_k, ct->d_red);
    devcomm_allreduce_sum_f64(&ct->dc, ct->d_red, 2, s);
    devcomm_allreduce_sum_f32(&ct->dc, ct->d_grads, ct->np, s);
    mark(ct, 9);
    k_sumsq(s, ct->d_grads, ct->np, ct->d_partial, ct->d_red + 2);
    k_step_finalize(s, ct->d_red, ct->d_eps, tr->B, job->z_dim, ct->digamma_B, count, ct->d_par, ct->d_rec);
    mark(ct, 10);
    k_adam_dev(s, ct->d_params, ct->d_grads, ct->d_m, ct->d_v, ct->np, job->beta1, job->beta2, job->adam_eps,
               ct->d_par, ct->d_rec);
    mark(ct, 11);
}

// Captures step_device into ct->graph (once: nothing captured changes from step to step; the
// pointers, shapes and shard bounds are fixed at creation).
static void build_graph(CudaTrainer *ct) {
    cudaGraph_t g;
    CUDA_CHECK(cudaStreamBeginCapture(ct->ctx.stream, cudaStreamCaptureModeGlobal));
    step_device(ct);
    CUDA_CHECK(cudaStreamEndCapture(ct->ctx.stream, &g));
    CUDA_CHECK(cudaGraphInstantiate(&ct->graph, g, 0));
    CUDA_CHECK(cudaGraphGetNodes(g, NULL, &ct->graph_nodes));
    CUDA_CHECK(cudaGraphDestroy(g));
    ct->graph_builds++;
}

static void profile_step(CudaTrainer *ct) {
    CUDA_CHECK(cudaEventSynchronize(ct->ev[N_MARKS - 1]));
    for (int i = 0; i + 1 < N_MARKS; i++) {
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, ct->ev[i], ct->ev[i + 1]));
        ct->phase_ms[SEGMENT_PHASE[i]] += ms;
    }
    ct->profiled++;
}

extern "C" void cuda_trainer_step_queue(CudaTrainer *ct) {
    stage_step(ct);
    if (ct->use_graph && !ct->profile) {
        if (!ct->graph) build_graph(ct);
        CUDA_CHECK(cudaGraphLaunch(ct->graph, ct->ctx.stream));
        ct->graph_launches++;
    } else {
        step_device(ct);
        if (ct->profile) profile_step(ct);
    }
    ct->steps_queued++;
    ct->m->step++;
}

static void to_stats(const DevStepStats *d, StepStats *st) {
    st->loss = d->loss;
    st->ce = d->ce;
    st->entropy = d->entropy;
    st->acc = d->acc;
    st->lr = d->lr;
    st->lambda = d->lambda;
    st->grad_norm = d->grad_norm;
}

extern "C" long long cuda_trainer_poll(CudaTrainer *ct, StepStats *last, StepStats *bad) {
    CUDA_CHECK(cudaMemcpyAsync(ct->h_rec, ct->d_rec, sizeof(DevStepRecord), cudaMemcpyDeviceToHost, ct->ctx.stream));
    cuda_ctx_sync(&ct->ctx);
    if (last) to_stats(&ct->h_rec->last, last);
    if (bad) to_stats(&ct->h_rec->bad, bad);
    return (long long)ct->h_rec->bad_step;
}

extern "C" void cuda_trainer_step_stats(CudaTrainer *ct, StepStats *st) {
    StepStats last, bad;
    const long long k = cuda_trainer_poll(ct, &last, &bad);
    if (k > 0)
        HT_FATAL("training diverged at step %lld: loss %g (cross-entropy %g, entropy %g), gradient "
                 "norm %g; no update was applied and the last checkpoint is kept. Lower lr or lambda "
                 "and resume.", k, bad.loss, bad.ce, bad.entropy, bad.grad_norm);
    if (st) *st = last;
}

extern "C" void cuda_trainer_check(CudaTrainer *ct) { cuda_trainer_step_stats(ct, NULL); }

extern "C" void cuda_trainer_step(CudaTrainer *ct, StepStats *st) {
    cuda_trainer_step_queue(ct);
    cuda_trainer_step_stats(ct, st);
}

extern "C" int cuda_trainer_set_graph(CudaTrainer *ct, int on) {
    ct->use_graph = on && ct->graph_allowed;
    return ct->use_graph;
}

extern "C" void cuda_trainer_profile(CudaTrainer *ct, int on) {
    ct->profile = on != 0;
    memset(ct->phase_ms, 0, sizeof(ct->phase_ms));
    ct->profiled = 0;
}

extern "C" int cuda_trainer_phases(const CudaTrainer *ct, const char **names, double *ms_per_step, int max) {
    const int n = imin(max, N_PHASES);
    for (int i = 0; i < n; i++) {
        names[i] = PHASE_NAMES[i];
        ms_per_step[i] = ct->profiled ? ct->phase_ms[i] / ct->profiled : 0.0;
    }
    return n;
}

extern "C" void cuda_trainer_info(const CudaTrainer *ct, CudaTrainerInfo *info) {
    info->graph = ct->use_graph;
    info->graph_nodes = (long)ct->graph_nodes;
    info->graph_builds = ct->graph_builds;
    info->graph_launches = ct->graph_launches;
    info->steps_queued = ct->steps_queued;
    info->bn_allreduces = ct->dc.bn_calls;
}

// ---------------------------------------------------------------- validation

// The V validation networks (fresh z, batch norm in evaluation mode), gauge-fixed and all-gathered,
// and their nearest neighbours (distances copied to h_eps, read after the next synchronization).
static void val_generate(CudaTrainer *ct) {
    Trainer *tr = ct->tr;
    const Job *job = &ct->m->job;
    draw_z(ct, RNG_STREAM_VAL_Z, tr->vstart, tr->v_local, ct->h_z);
    CUDA_CHECK(cudaMemcpyAsync(ct->d_z, ct->h_z, (size_t)tr->v_local * job->z_dim * sizeof(float),
                               cudaMemcpyHostToDevice, ct->ctx.stream));
    generate_device(ct, tr->v_local, tr->V, tr->vstart, 0, 0, 0);
    entropy_queue(ct, tr->V, tr->vstart, tr->v_local, 0.0f, NULL, NULL);
}

// Networks per forward call: as many as the target workspace holds for VAL_CHUNK images.
static int val_group(const CudaTrainer *ct) { return imax(1, imin(ct->tr->v_local, ct->cap / VAL_CHUNK)); }

// From the local per-network correct counts, NLL and the (local) votes / probability sums in
// tr->ens: the all-reduces and the summary over networks, as src/train.c trainer_validate.
static void val_finish(CudaTrainer *ct, const double *correct, double nll, ValStats *vs) {
    Trainer *tr = ct->tr;
    const Dataset *val = &tr->data->val;
    const int C = ct->m->tarch.classes, n_val = ct->n_val;
    const float *votes = tr->ens, *psum = tr->ens + (size_t)n_val * C;
    memset(tr->net_acc, 0, (size_t)tr->V * sizeof(double));
    for (int k = 0; k < tr->v_local; k++) tr->net_acc[tr->vstart + k] = correct[k] / n_val;
    comm_allreduce_sum_f64(tr->comm, tr->net_acc, (size_t)tr->V);
    comm_allreduce_sum_f64(tr->comm, &nll, 1);
    comm_allreduce_sum_f32(tr->comm, tr->ens, 2 * (size_t)n_val * C);
    int maj = 0, mp = 0;
    for (int i = 0; i < n_val; i++) {
        int a = 0, b = 0;
        for (int c = 1; c < C; c++) {
            if (votes[(size_t)i * C + c] > votes[(size_t)i * C + a]) a = c;
            if (psum[(size_t)i * C + c] > psum[(size_t)i * C + b]) b = c;
        }
        maj += a == val->labels[i];
        mp += b == val->labels[i];
    }
    vs->n_images = n_val;
    vs->majority_acc = (double)maj / n_val;
    vs->mean_prob_acc = (double)mp / n_val;
    vs->mean_nll = nll / ((double)tr->V * n_val);
    // Summary over networks, as src/train.c trainer_validate.
    double s = 0.0, s2 = 0.0;
    vs->min_acc = INFINITY;
    vs->max_acc = -INFINITY;
    for (int k = 0; k < tr->V; k++) {
        const double a = tr->net_acc[k];
        s += a; s2 += a * a;
        if (a < vs->min_acc) vs->min_acc = a;
        if (a > vs->max_acc) vs->max_acc = a;
        int bin = (int)(a * VAL_HIST_BINS);
        if (bin < 0) bin = 0;
        if (bin >= VAL_HIST_BINS) bin = VAL_HIST_BINS - 1;
        vs->hist[bin]++;
    }
    vs->mean_acc = s / tr->V;
    const double var = s2 / tr->V - vs->mean_acc * vs->mean_acc;
    vs->std_acc = var > 0.0 ? sqrt(var) : 0.0;
    vs->net_acc = tr->net_acc;
}

// Validation with the votes, probability sums, correct counts and NLL accumulated on the device
// (k_val_accumulate after each forward call): no host synchronization until the one copy back.
extern "C" void cuda_trainer_validate(CudaTrainer *ct, ValStats *vs) {
    cuda_trainer_check(ct);
    Trainer *tr = ct->tr;
    Model *m = ct->m;
    const int C = m->tarch.classes, in = m->tarch.in_size, n_val = ct->n_val, vl = imax(tr->v_local, 1);
    const size_t W = m->tarch.n_weights;
    cudaStream_t s = ct->ctx.stream;
    memset(vs, 0, sizeof(*vs));
    vs->n_nets = tr->V;
    val_generate(ct);
    float *votes = ct->d_ens, *psum = ct->d_ens + (size_t)n_val * C;
    CUDA_CHECK(cudaMemsetAsync(ct->d_ens, 0, 2 * (size_t)n_val * C * sizeof(float), s));
    CUDA_CHECK(cudaMemsetAsync(ct->d_vcorrect, 0, (size_t)vl * sizeof(int), s));
    CUDA_CHECK(cudaMemsetAsync(ct->d_vnll, 0, (size_t)vl * sizeof(double), s));
    const float *theta = ct->d_all + (size_t)tr->vstart * W;
    const int G = val_group(ct);
    for (int i0 = 0; i0 < n_val; i0 += VAL_CHUNK) {
        const int n = imin(VAL_CHUNK, n_val - i0);
        for (int k0 = 0; k0 < tr->v_local; k0 += G) {
            const int g = imin(G, tr->v_local - k0);
            cuda_target_forward(&ct->ctx, &ct->tn, g, theta + (size_t)k0 * W, n, ct->d_val + (size_t)i0 * in, 0,
                                ct->d_probs);
            k_val_accumulate(s, g, n, C, ct->d_probs, ct->d_val_labels + i0, votes + (size_t)i0 * C,
                             psum + (size_t)i0 * C, ct->d_vcorrect + k0, ct->d_vnll + k0);
        }
    }
    CUDA_CHECK(cudaMemcpyAsync(tr->ens, ct->d_ens, 2 * (size_t)n_val * C * sizeof(float), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaMemcpyAsync(ct->h_vcorrect, ct->d_vcorrect, (size_t)vl * sizeof(int), cudaMemcpyDeviceToHost, s));
    CUDA_CHECK(cudaMemcpyAsync(ct->h_vnll, ct->d_vnll, (size_t)vl * sizeof(double), cudaMemcpyDeviceToHost, s));
    cuda_ctx_sync(&ct->ctx);
    vs->entropy = entropy_value(ct->h_eps, tr->V, m->job.z_dim);
    double *correct = (double *)XCALLOC((size_t)vl, sizeof(double));
    double nll = 0.0;
    for (int k = 0; k < tr->v_local; k++) {
        correct[k] = ct->h_vcorrect[k];
        nll += ct->h_vnll[k];
    }
    val_finish(ct, correct, nll, vs);
    free(correct);
}

// The previous validation: probabilities copied back after every forward call and accumulated on
// the host in the order of src/train.c val_chunk_stats (chunks of VAL_CHUNK images, networks in
// order). Kept as the reference of the device accumulation (tests/gpu/test_cuda_step).
extern "C" void cuda_trainer_validate_host(CudaTrainer *ct, ValStats *vs) {
    cuda_trainer_check(ct);
    Trainer *tr = ct->tr;
    Model *m = ct->m;
    const Dataset *val = &tr->data->val;
    const int C = m->tarch.classes, in = m->tarch.in_size, n_val = ct->n_val;
    const size_t W = m->tarch.n_weights;
    memset(vs, 0, sizeof(*vs));
    vs->n_nets = tr->V;
    val_generate(ct);
    cuda_ctx_sync(&ct->ctx);
    vs->entropy = entropy_value(ct->h_eps, tr->V, m->job.z_dim);
    float *votes = tr->ens, *psum = tr->ens + (size_t)n_val * C;
    memset(tr->ens, 0, 2 * (size_t)n_val * C * sizeof(float));
    double *correct = (double *)XCALLOC((size_t)imax(tr->v_local, 1), sizeof(double));
    double nll = 0.0;
    const float *theta = ct->d_all + (size_t)tr->vstart * W;
    const int G = val_group(ct);
    for (int i0 = 0; i0 < n_val; i0 += VAL_CHUNK) {
        const int n = imin(VAL_CHUNK, n_val - i0);
        for (int k0 = 0; k0 < tr->v_local; k0 += G) {
            const int g = imin(G, tr->v_local - k0);
            cuda_target_forward(&ct->ctx, &ct->tn, g, theta + (size_t)k0 * W, n, ct->d_val + (size_t)i0 * in, 0,
                                ct->d_probs);
            CUDA_CHECK(cudaMemcpyAsync(ct->h_probs, ct->d_probs, (size_t)g * n * C * sizeof(float),
                                       cudaMemcpyDeviceToHost, ct->ctx.stream));
            cuda_ctx_sync(&ct->ctx);
            for (int k = 0; k < g; k++)
                for (int i = 0; i < n; i++) {
                    const float *p = ct->h_probs + ((size_t)k * n + i) * C;
                    int arg = 0;
                    for (int c = 1; c < C; c++) if (p[c] > p[arg]) arg = c;
                    const int y = val->labels[i0 + i];
                    correct[k0 + k] += arg == y;
                    nll -= log((double)p[y] + 1e-30);
                    votes[(size_t)(i0 + i) * C + arg] += 1.0f;
                    for (int c = 0; c < C; c++) psum[(size_t)(i0 + i) * C + c] += p[c];
                }
        }
    }
    val_finish(ct, correct, nll, vs);
    free(correct);
}
