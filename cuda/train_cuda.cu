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
//   host:   ONE synchronization: the loss sums, distances and gradient norm come back, the entropy
//           estimate is formed exactly as src/entropy.c does, the finiteness check runs
//   device: Adam on the flat buffer (queued; the next step's host work overlaps it).
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
    int32_t *h_idx;
    uint8_t *h_labels;
    int *h_nn;
    double *h_red;
    int *counts, *displs;        // (P) all-gather shards
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
    cuda_trainer_from_host(ct);
    ct->max_local = imax(tr->n_local, tr->v_local);
    cuda_hyper_init(&ct->hn, &m->harch, &m->tarch, ct->max_local);
    ct->cap = imax(tr->n_local * ips, VAL_CAP);
    cuda_target_init(&ct->tn, &m->tarch, ct->cap, 1);
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
    ct->h_idx = (int32_t *)pinned(n_img * sizeof(int32_t), "image indices");
    ct->h_labels = (uint8_t *)pinned(n_img, "labels");
    ct->h_red = (double *)pinned(4 * sizeof(double), "loss sums");
    ct->counts = (int *)XMALLOC(sizeof(int) * (size_t)tr->comm->size);
    ct->displs = (int *)XMALLOC(sizeof(int) * (size_t)tr->comm->size);
    cuda_ctx_sync(&ct->ctx);
    return ct;
}

extern "C" void cuda_trainer_destroy(CudaTrainer *ct) {
    if (!ct) return;
    cuda_ctx_sync(&ct->ctx);
    cuda_hyper_free(&ct->hn);
    cuda_target_free(&ct->tn);
    void *dev[] = {ct->d_flat, ct->d_stats, ct->d_z, ct->d_raw, ct->d_all, ct->d_scales, ct->d_gs, ct->d_dtheta,
                   ct->d_train, ct->d_val, ct->d_images, ct->d_labels, ct->d_idx, ct->d_dist, ct->d_nn, ct->d_eps,
                   ct->d_loss_k, ct->d_correct_k, ct->d_red, ct->d_partial, ct->d_probs};
    for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++) ht_cuda_free(dev[i]);
    void *host[] = {ct->h_z, ct->h_eps, ct->h_nn, ct->h_probs, ct->h_idx, ct->h_labels, ct->h_red};
    for (size_t i = 0; i < sizeof(host) / sizeof(host[0]); i++) CUDA_CHECK(cudaFreeHost(host[i]));
    free(ct->counts);
    free(ct->displs);
    cuda_ctx_free(&ct->ctx);
    devcomm_free(&ct->dc);
    free(ct);
}

extern "C" void cuda_trainer_to_host(CudaTrainer *ct) {
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

// z for samples [g0, g0 + n): exactly src/train.c draw_z.
static void upload_z(CudaTrainer *ct, uint32_t stream, int g0, int n) {
    const Job *job = &ct->m->job;
    const int zd = job->z_dim;
    for (int i = 0; i < n; i++)
        rng_uniform(job->seed, stream, (uint32_t)ct->m->step, (uint32_t)(g0 + i), -1.0f, 1.0f, ct->h_z + (size_t)i * zd,
                    zd);
    CUDA_CHECK(cudaMemcpyAsync(ct->d_z, ct->h_z, (size_t)n * zd * sizeof(float), cudaMemcpyHostToDevice,
                               ct->ctx.stream));
}

// Each local sample's own images: positions (step*B + g) * ips + j of the epoch stream
// (src/train.c load_images), gathered on the device.
static void upload_images(CudaTrainer *ct) {
    Trainer *tr = ct->tr;
    const Job *job = &ct->m->job;
    const int ips = job->images_per_sample, C = ct->m->tarch.classes;
    const Dataset *d = &tr->data->train;
    for (int i = 0; i < tr->n_local; i++)
        for (int j = 0; j < ips; j++) {
            const int64_t pos = (ct->m->step * tr->B + tr->start + i) * (int64_t)ips + j;
            const int idx = sampler_index(&tr->sampler, pos);
            const size_t q = (size_t)i * ips + j;
            ct->h_idx[q] = idx;
            ct->h_labels[q] = d->labels[idx];
            HT_CHECK(d->labels[idx] < C, "label %d out of range [0, %d)", d->labels[idx], C);
        }
    const size_t n = (size_t)tr->n_local * ips;
    CUDA_CHECK(cudaMemcpyAsync(ct->d_idx, ct->h_idx, n * sizeof(int32_t), cudaMemcpyHostToDevice, ct->ctx.stream));
    CUDA_CHECK(cudaMemcpyAsync(ct->d_labels, ct->h_labels, n, cudaMemcpyHostToDevice, ct->ctx.stream));
    k_gather_rows(ct->ctx.stream, (int)n, ct->m->tarch.in_size, ct->d_train, ct->d_idx, ct->d_images);
}

// z, hypernetwork, gauge fixing of samples [g0, g0 + n) of global_n into d_all, and the all-gather.
static void generate(CudaTrainer *ct, uint32_t stream, int n, int global_n, int g0, int train) {
    Model *m = ct->m;
    const size_t W = m->tarch.n_weights;
    upload_z(ct, stream, g0, n);
    cuda_hyper_forward(&ct->ctx, &ct->hn, ct->d_params, ct->d_stats, ct->d_z, n, global_n, train, &ct->tr->bn,
                       ct->d_raw);
    float *out = ct->d_all + (size_t)g0 * W;
    if (m->job.gauge_fixing) k_gauge_forward(ct->ctx.stream, &m->tarch, n, ct->d_raw, out, ct->d_scales);
    else CUDA_CHECK(cudaMemcpyAsync(out, ct->d_raw, (size_t)n * W * sizeof(float), cudaMemcpyDeviceToDevice,
                                    ct->ctx.stream));
    shards(ct, global_n, W);
    devcomm_allgatherv_f32(&ct->dc, out, ct->d_all, ct->counts, ct->displs, ct->ctx.stream);
}

// Nearest neighbours of the local samples among all N, all-gathered; the gradient of scale * H
// added into grad_local (device, may be NULL); distances and neighbours copied to the host (read
// after the next synchronization).
static void entropy_queue(CudaTrainer *ct, int N, int start, int n_local, float scale, float *grad_local) {
    const Job *job = &ct->m->job;
    const size_t W = ct->m->tarch.n_weights;
    cudaStream_t st = ct->ctx.stream;
    HT_CHECK(N >= 2, "entropy: need at least 2 samples, got %d", N);
    k_entropy_distances(st, ct->d_all, N, W, start, n_local, job->distance, ct->d_dist);
    k_entropy_nn(st, ct->d_dist, N, start, n_local, ct->d_nn, ct->d_eps);
    shards(ct, N, 1);
    devcomm_allgatherv_i32(&ct->dc, ct->d_nn + start, ct->d_nn, ct->counts, ct->displs, st);
    devcomm_allgatherv_f32(&ct->dc, ct->d_eps + start, ct->d_eps, ct->counts, ct->displs, st);
    if (grad_local)
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

extern "C" void cuda_trainer_loss_grad(CudaTrainer *ct, StepStats *st) {
    Trainer *tr = ct->tr;
    Model *m = ct->m;
    const Job *job = &m->job;
    const size_t W = m->tarch.n_weights;
    const int ips = job->images_per_sample;
    cudaStream_t s = ct->ctx.stream;
    st->lr = model_lr(job, m->step);
    st->lambda = model_lambda(job, m->step);
    upload_images(ct);
    generate(ct, RNG_STREAM_Z, tr->n_local, tr->B, tr->start, 1);
    const float *local = ct->d_all + (size_t)tr->start * W;
    cuda_target_loss_grad(&ct->ctx, &ct->tn, tr->n_local, local, ips, ct->d_images, (size_t)ips * m->tarch.in_size,
                          ct->d_labels, (size_t)ips, (float)(st->lambda / ((double)tr->B * ips)), ct->d_loss_k,
                          ct->d_correct_k, ct->d_dtheta);
    entropy_queue(ct, tr->B, tr->start, tr->n_local, -1.0f, ct->d_dtheta);
    if (job->gauge_fixing)
        k_gauge_backward(s, &m->tarch, tr->n_local, ct->d_raw, ct->d_scales, ct->d_dtheta, ct->d_dtheta, ct->d_gs);
    CUDA_CHECK(cudaMemsetAsync(ct->d_grads, 0, ct->np * sizeof(float), s));
    cuda_hyper_backward(&ct->ctx, &ct->hn, ct->d_params, ct->d_grads, ct->d_dtheta, &tr->bn);
    k_sum_loss(s, tr->n_local, ct->d_loss_k, ct->d_correct_k, ct->d_red);
    devcomm_allreduce_sum_f64(&ct->dc, ct->d_red, 2, s);
    devcomm_allreduce_sum_f32(&ct->dc, ct->d_grads, ct->np, s);
    k_sumsq(s, ct->d_grads, ct->np, ct->d_partial, ct->d_red + 2);
    CUDA_CHECK(cudaMemcpyAsync(ct->h_red, ct->d_red, 3 * sizeof(double), cudaMemcpyDeviceToHost, s));
    cuda_ctx_sync(&ct->ctx);
    st->entropy = entropy_value(ct->h_eps, tr->B, job->z_dim);
    st->ce = ct->h_red[0] / ((double)tr->B * ips);
    st->acc = ct->h_red[1] / ((double)tr->B * ips);
    st->loss = st->lambda * st->ce - st->entropy;
    st->grad_norm = sqrt(ct->h_red[2]);
}

extern "C" void cuda_trainer_step(CudaTrainer *ct, StepStats *st) {
    Model *m = ct->m;
    cuda_trainer_loss_grad(ct, st);
    if (!isfinite(st->loss) || !isfinite(st->ce) || !isfinite(st->entropy) || !isfinite(st->grad_norm))
        HT_FATAL("training diverged at step %lld: loss %g (cross-entropy %g, entropy %g), gradient "
                 "norm %g; no update was applied and the last checkpoint is kept. Lower lr or lambda "
                 "and resume.", (long long)m->step + 1, st->loss, st->ce, st->entropy, st->grad_norm);
    k_adam(ct->ctx.stream, ct->d_params, ct->d_grads, ct->d_m, ct->d_v, ct->np, st->lr, m->job.beta1, m->job.beta2,
           m->job.adam_eps, m->step + 1);
    m->step++;
}

// ---------------------------------------------------------------- validation

extern "C" void cuda_trainer_validate(CudaTrainer *ct, ValStats *vs) {
    Trainer *tr = ct->tr;
    Model *m = ct->m;
    const Job *job = &m->job;
    const Dataset *val = &tr->data->val;
    const int C = m->tarch.classes, in = m->tarch.in_size, n_val = ct->n_val;
    const size_t W = m->tarch.n_weights;
    memset(vs, 0, sizeof(*vs));
    vs->n_nets = tr->V;
    generate(ct, RNG_STREAM_VAL_Z, tr->v_local, tr->V, tr->vstart, 0);
    entropy_queue(ct, tr->V, tr->vstart, tr->v_local, 0.0f, NULL);
    cuda_ctx_sync(&ct->ctx);
    vs->entropy = entropy_value(ct->h_eps, tr->V, job->z_dim);
    // Per-network correct counts and NLL, ensemble votes and probability sums, accumulated in the
    // order of src/train.c val_chunk_stats: chunks of VAL_CHUNK images, networks in order.
    float *votes = tr->ens, *psum = tr->ens + (size_t)n_val * C;
    memset(tr->ens, 0, 2 * (size_t)n_val * C * sizeof(float));
    double *correct = (double *)XCALLOC((size_t)tr->v_local, sizeof(double));
    double nll = 0.0;
    const float *theta = ct->d_all + (size_t)tr->vstart * W;
    const int G = imax(1, imin(tr->v_local, ct->cap / VAL_CHUNK)); // networks per forward call
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
    memset(tr->net_acc, 0, (size_t)tr->V * sizeof(double));
    for (int k = 0; k < tr->v_local; k++) tr->net_acc[tr->vstart + k] = correct[k] / n_val;
    free(correct);
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
