#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "common.h"
#include "gauge.h"
#include "rng.h"
#include "toy.h"

#define VAL_CHUNK 50 // validation images per target forward call (bounds workspace memory)

static int imax(int a, int b) { return a > b ? a : b; }

static void shard_counts(int n, int size, size_t per, int *counts, int *displs) {
    for (int r = 0; r < size; r++) {
        const int s = comm_shard_start(n, r, size), e = comm_shard_start(n, r + 1, size);
        counts[r] = (int)((size_t)(e - s) * per);
        displs[r] = (int)((size_t)s * per);
    }
}

// All-gather rows [start, start + n_local) of `all` (n rows of `per` floats) from every rank.
static void gather_rows(Trainer *tr, float *all, int n, size_t per) {
    int *counts = XMALLOC(sizeof(int) * tr->comm->size), *displs = XMALLOC(sizeof(int) * tr->comm->size);
    shard_counts(n, tr->comm->size, per, counts, displs);
    HT_CHECK((size_t)n * per < (size_t)1 << 31, "all-gather of %zu floats exceeds the int count range",
             (size_t)n * per);
    const double t0 = ht_now();
    comm_allgatherv_f32(tr->comm, all + displs[tr->comm->rank], all, counts, displs);
    tr->times.comm += ht_now() - t0;
    free(counts);
    free(displs);
}

// Bytes trainer_init and the entropy estimate will allocate on this rank (checked arithmetic),
// compared with the machine's memory before anything is allocated: an oversized "batch" or
// "val_samples" is a clear error, not an out-of-memory kill minutes later.
static void check_training_memory(const Trainer *tr, const Job *job, int max_local) {
    const Model *m = tr->m;
    const int all_n = imax(tr->B, tr->V);
    size_t floats = hyper_floats(&m->harch, max_local);
    floats = XADD(floats, XMUL(max_local, job->z_dim, "noise of %d samples", max_local), "training buffers");
    floats = XADD(floats, XMUL(XMUL(2, max_local, "samples"), tr->out_dim,
                               "\"batch\" %d: %d samples per rank x %zu weights", tr->B, max_local, tr->out_dim),
                  "training buffers");
    floats = XADD(floats, XMUL(all_n, tr->out_dim, "job: max(\"batch\", \"val_samples\") = %d networks x %zu "
                               "weights", all_n, tr->out_dim), "training buffers");
    if (job->task == TASK_MNIST)
        floats = XADD(floats, XMUL(XMUL(tr->n_local, job->images_per_sample, "job: \"images_per_sample\" %d",
                                        job->images_per_sample), m->tarch.in_size, "training images"),
                      "training buffers");
    // Entropy: (n x n) distances (double) and pair indices (int) over max(batch, val_samples).
    const size_t pairs = XMUL(all_n, all_n, "job: max(\"batch\", \"val_samples\") = %d squared", all_n);
    const size_t bytes = XADD(XMUL(floats, sizeof(float), "training buffers"),
                              XMUL(pairs, sizeof(double) + sizeof(int), "entropy estimate of %d samples", all_n),
                              "training memory");
    HT_CHECK_MEMORY(bytes, "job: training with \"batch\" %d, \"val_samples\" %d and %zu weights per "
                    "network on %d rank(s)", tr->B, tr->V, tr->out_dim, tr->comm->size);
}

void trainer_init(Trainer *tr, Model *m, Comm *comm, const Mnist *data) {
    memset(tr, 0, sizeof(*tr));
    const Job *job = &m->job;
    tr->m = m;
    tr->comm = comm;
    tr->data = data;
    tr->bn.alpha = (float)job->leaky_alpha;
    tr->bn.eps = job->bn_eps;
    tr->bn.decay = job->bn_decay;
    tr->B = job->batch;
    HT_CHECK(comm->size <= tr->B, "job: key \"batch\" is %d but the run has %d ranks: every rank needs at "
             "least one sample of the noise batch (use batch >= ranks, or fewer ranks)", tr->B, comm->size);
    tr->start = comm_shard_start(tr->B, comm->rank, comm->size);
    tr->n_local = comm_shard_start(tr->B, comm->rank + 1, comm->size) - tr->start;
    tr->V = job->val_samples;
    HT_CHECK(comm->size <= tr->V, "job: key \"val_samples\" is %d but the run has %d ranks: every rank "
             "needs at least one validation network (use val_samples >= ranks, or fewer ranks)",
             tr->V, comm->size);
    tr->vstart = comm_shard_start(tr->V, comm->rank, comm->size);
    tr->v_local = comm_shard_start(tr->V, comm->rank + 1, comm->size) - tr->vstart;
    const int max_local = imax(tr->n_local, tr->v_local);
    const int toy = job->task == TASK_TOY;
    tr->out_dim = toy ? 2 : m->tarch.n_weights;
    tr->n_scales = toy ? 0 : gauge_n_scales(&m->tarch);
    check_training_memory(tr, job, max_local);
    hyper_init(&tr->hn, &m->harch, &m->tarch, max_local);
    entropy_work_init(&tr->ew, imax(tr->B, tr->V));
    tr->z = XALLOC_FLOATS((size_t)max_local * job->z_dim);
    tr->raw = XALLOC_FLOATS((size_t)max_local * tr->out_dim);
    tr->all = XALLOC_FLOATS((size_t)imax(tr->B, tr->V) * tr->out_dim);
    tr->dtheta = XALLOC_FLOATS((size_t)max_local * tr->out_dim);
    tr->loss_k = XCALLOC((size_t)max_local, sizeof(double));
    tr->correct_k = XCALLOC((size_t)max_local, sizeof(int));
    tr->net_acc = XCALLOC((size_t)tr->V, sizeof(double));
    if (toy) return;
    HT_CHECK(data != NULL, "MNIST task without data");
    const TargetArch *a = &m->tarch;
    tr->val_chunk = VAL_CHUNK;
    target_init(&tr->tn, a, imax(job->images_per_sample, tr->val_chunk), 0);
    tr->scales = XALLOC_FLOATS((size_t)max_local * tr->n_scales);
    const size_t n_img = XMUL(tr->n_local, job->images_per_sample, "training images");
    tr->images = XALLOC_FLOATS(XMUL(n_img, a->in_size, "training images"));
    tr->labels = XCALLOC(n_img, 1);
    tr->probs = XALLOC_FLOATS((size_t)tr->v_local * tr->val_chunk * a->classes);
    const int n_val = job->val_images > 0 && job->val_images < data->val.n ? job->val_images : data->val.n;
    tr->ens = XALLOC_FLOATS(2 * (size_t)n_val * a->classes);
    sampler_init(&tr->sampler, job->seed, data->train.n);
}

void trainer_free(Trainer *tr) {
    hyper_free(&tr->hn);
    entropy_work_free(&tr->ew);
    if (tr->data) { target_free(&tr->tn); sampler_free(&tr->sampler); }
    free(tr->z); free(tr->raw); free(tr->all); free(tr->dtheta); free(tr->loss_k);
    free(tr->correct_k); free(tr->net_acc); free(tr->scales); free(tr->images); free(tr->labels);
    free(tr->probs); free(tr->ens);
    memset(tr, 0, sizeof(*tr));
}

// z for n samples starting at global index g0: U[-1, 1]^z_dim keyed by (step, sample).
static void draw_z(const Job *job, uint32_t stream, int64_t step, int g0, int n, float *z) {
    for (int i = 0; i < n; i++)
        rng_uniform(job->seed, stream, (uint32_t)step, (uint32_t)(g0 + i), -1.0f, 1.0f,
                    z + (size_t)i * job->z_dim, job->z_dim);
}

// Each local sample's own images: positions (step*B + g) * ips + j of the epoch stream.
static void load_images(Trainer *tr) {
    const Job *job = &tr->m->job;
    const int ips = job->images_per_sample, in = tr->m->tarch.in_size;
    const Dataset *d = &tr->data->train;
    for (int i = 0; i < tr->n_local; i++)
        for (int j = 0; j < ips; j++) {
            const int64_t pos = (tr->m->step * tr->B + tr->start + i) * (int64_t)ips + j;
            const int idx = sampler_index(&tr->sampler, pos);
            memcpy(tr->images + ((size_t)i * ips + j) * in, d->images + (size_t)idx * in, in * sizeof(float));
            tr->labels[(size_t)i * ips + j] = d->labels[idx];
        }
}

// Draws z for samples [g0, g0 + n) of `global_n` (keyed by the step), generates them (the
// hypernetwork and gauge fixing; for the toy task the generator's 2-D output) into all[g0 ...] in
// training or evaluation mode, and all-gathers every rank's samples.
static void generate(Trainer *tr, uint32_t stream, int n, int global_n, int g0, int train) {
    Model *m = tr->m;
    const Job *job = &m->job;
    draw_z(job, stream, m->step, g0, n, tr->z);
    float *out = tr->all + (size_t)g0 * tr->out_dim;
    double t0 = ht_now();
    if (job->task == TASK_TOY) {
        const MlpArch *g = &m->harch.extractor;
        mlp_forward(g, &m->harch.table, m->params, m->stats, &tr->hn.ext, tr->z, n, global_n, train,
                    &tr->bn, tr->comm);
        memcpy(out, mlp_out(g, &tr->hn.ext), (size_t)n * tr->out_dim * sizeof(float));
        tr->times.hyper += ht_now() - t0;
    } else {
        hyper_forward(&tr->hn, m->params, m->stats, tr->z, n, global_n, train, &tr->bn, tr->comm, tr->raw);
        double t1 = ht_now();
        if (job->gauge_fixing) gauge_forward(&m->tarch, n, tr->raw, out, tr->scales);
        else memcpy(out, tr->raw, (size_t)n * tr->out_dim * sizeof(float));
        tr->times.hyper += t1 - t0;
        tr->times.gauge += ht_now() - t1;
    }
    gather_rows(tr, tr->all, global_n, tr->out_dim);
}

static void toy_loss_grad(Trainer *tr, StepStats *st) {
    Model *m = tr->m;
    const Job *job = &m->job;
    const MlpArch *g = &m->harch.extractor;
    generate(tr, RNG_STREAM_Z, tr->n_local, tr->B, tr->start, 1);
    memset(tr->dtheta, 0, (size_t)tr->n_local * 2 * sizeof(float));
    double red[2];
    red[0] = toy_nll_grad(job, tr->all + (size_t)tr->start * 2, tr->n_local, st->lambda / tr->B,
                          job->toy_l2 / tr->B, tr->dtheta, &red[1]);
    st->entropy = entropy_estimate(tr->comm, &tr->ew, tr->all, tr->B, 2, tr->start, tr->n_local,
                                   job->distance, job->z_dim, -1.0f, tr->dtheta);
    memset(m->grads, 0, m->harch.table.n_params * sizeof(float));
    mlp_backward(g, &m->harch.table, m->params, m->grads, &tr->hn.ext, tr->dtheta, NULL, &tr->bn, tr->comm);
    comm_allreduce_sum_f64(tr->comm, red, 2);
    st->ce = red[0] / tr->B;
    st->acc = 0.0;
    st->loss = st->lambda * st->ce + job->toy_l2 * red[1] / tr->B - st->entropy;
}

static void mnist_loss_grad(Trainer *tr, StepStats *st) {
    Model *m = tr->m;
    const Job *job = &m->job;
    const size_t W = m->tarch.n_weights;
    const int ips = job->images_per_sample;
    double t0 = ht_now();
    load_images(tr);
    tr->times.data += ht_now() - t0;
    generate(tr, RNG_STREAM_Z, tr->n_local, tr->B, tr->start, 1);
    float *local = tr->all + (size_t)tr->start * W;
    t0 = ht_now();
    target_loss_grad(&tr->tn, tr->n_local, local, ips, tr->images, (size_t)ips * m->tarch.in_size,
                     tr->labels, (size_t)ips, (float)(st->lambda / ((double)tr->B * ips)), tr->loss_k,
                     tr->correct_k, tr->dtheta);
    double t1 = ht_now();
    tr->times.target += t1 - t0;
    st->entropy = entropy_estimate(tr->comm, &tr->ew, tr->all, tr->B, W, tr->start, tr->n_local,
                                   job->distance, job->z_dim, -1.0f, tr->dtheta);
    double t2 = ht_now();
    tr->times.entropy += t2 - t1;
    if (job->gauge_fixing) gauge_backward(&m->tarch, tr->n_local, tr->raw, tr->scales, tr->dtheta, tr->dtheta);
    double t3 = ht_now();
    tr->times.gauge += t3 - t2;
    memset(m->grads, 0, m->harch.table.n_params * sizeof(float));
    hyper_backward(&tr->hn, m->params, m->grads, tr->dtheta, &tr->bn, tr->comm);
    tr->times.hyper += ht_now() - t3;
    double red[2] = {0.0, 0.0};
    for (int i = 0; i < tr->n_local; i++) { red[0] += tr->loss_k[i]; red[1] += tr->correct_k[i]; }
    comm_allreduce_sum_f64(tr->comm, red, 2);
    st->ce = red[0] / ((double)tr->B * ips);
    st->acc = red[1] / ((double)tr->B * ips);
    st->loss = st->lambda * st->ce - st->entropy;
}

void trainer_loss_grad(Trainer *tr, StepStats *st) {
    const Job *job = &tr->m->job;
    st->lr = model_lr(job, tr->m->step);
    st->lambda = model_lambda(job, tr->m->step);
    if (job->task == TASK_TOY) toy_loss_grad(tr, st);
    else mnist_loss_grad(tr, st);
    double t0 = ht_now();
    comm_allreduce_sum_f32(tr->comm, tr->m->grads, tr->m->harch.table.n_params);
    tr->times.comm += ht_now() - t0;
}

static double grad_norm(const float *g, size_t n) {
    double s = 0.0;
    #pragma omp parallel for reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) s += (double)g[i] * g[i];
    return sqrt(s);
}

void trainer_step(Trainer *tr, StepStats *st) {
    Model *m = tr->m;
    trainer_loss_grad(tr, st);
    st->grad_norm = grad_norm(m->grads, m->harch.table.n_params);
    if (!isfinite(st->loss) || !isfinite(st->ce) || !isfinite(st->entropy) || !isfinite(st->grad_norm))
        HT_FATAL("training diverged at step %lld: loss %g (cross-entropy %g, entropy %g), gradient "
                 "norm %g; no update was applied and the last checkpoint is kept. Lower lr or lambda "
                 "and resume.", (long long)m->step + 1, st->loss, st->ce, st->entropy, st->grad_norm);
    double t0 = ht_now();
    adam_update(m->params, m->grads, m->adam_m, m->adam_v, m->harch.table.n_params, st->lr,
                m->job.beta1, m->job.beta2, m->job.adam_eps, m->step + 1);
    tr->times.adam += ht_now() - t0;
    m->step++;
}

// Accumulates this chunk's predictions: per-network correct counts and NLL, ensemble votes and
// probability sums for images [i0, i0 + n).
static void val_chunk_stats(Trainer *tr, const uint8_t *labels, int i0, int n, int n_val,
                            double *correct, double *nll) {
    const int C = tr->m->tarch.classes;
    float *votes = tr->ens, *psum = tr->ens + (size_t)n_val * C;
    for (int k = 0; k < tr->v_local; k++)
        for (int i = 0; i < n; i++) {
            const float *p = tr->probs + ((size_t)k * n + i) * C;
            int arg = 0;
            for (int c = 1; c < C; c++) if (p[c] > p[arg]) arg = c;
            const int y = labels[i0 + i];
            correct[k] += arg == y;
            *nll -= log((double)p[y] + 1e-30);
            votes[(size_t)(i0 + i) * C + arg] += 1.0f;
            for (int c = 0; c < C; c++) psum[(size_t)(i0 + i) * C + c] += p[c];
        }
}

static int argmax_f(const float *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++) if (v[i] > v[a]) a = i;
    return a;
}

static void mnist_validate(Trainer *tr, ValStats *vs) {
    Model *m = tr->m;
    const Job *job = &m->job;
    const Dataset *val = &tr->data->val;
    const int C = m->tarch.classes, in = m->tarch.in_size;
    const size_t W = m->tarch.n_weights;
    const int n_val = job->val_images > 0 && job->val_images < val->n ? job->val_images : val->n;
    generate(tr, RNG_STREAM_VAL_Z, tr->v_local, tr->V, tr->vstart, 0);
    vs->entropy = entropy_estimate(tr->comm, &tr->ew, tr->all, tr->V, W, tr->vstart, tr->v_local,
                                   job->distance, job->z_dim, 0.0f, NULL);
    memset(tr->ens, 0, 2 * (size_t)n_val * C * sizeof(float));
    double *correct = XCALLOC((size_t)tr->v_local, sizeof(double));
    double nll = 0.0;
    const float *theta = tr->all + (size_t)tr->vstart * W;
    for (int i0 = 0; i0 < n_val; i0 += tr->val_chunk) {
        const int n = n_val - i0 < tr->val_chunk ? n_val - i0 : tr->val_chunk;
        target_forward(&tr->tn, tr->v_local, theta, n, val->images + (size_t)i0 * in, 0, tr->probs);
        val_chunk_stats(tr, val->labels, i0, n, n_val, correct, &nll);
    }
    memset(tr->net_acc, 0, (size_t)tr->V * sizeof(double));
    for (int k = 0; k < tr->v_local; k++) tr->net_acc[tr->vstart + k] = correct[k] / n_val;
    free(correct);
    comm_allreduce_sum_f64(tr->comm, tr->net_acc, (size_t)tr->V);
    comm_allreduce_sum_f64(tr->comm, &nll, 1);
    comm_allreduce_sum_f32(tr->comm, tr->ens, 2 * (size_t)n_val * C);
    int maj = 0, mp = 0;
    for (int i = 0; i < n_val; i++) {
        maj += argmax_f(tr->ens + (size_t)i * C, C) == val->labels[i];
        mp += argmax_f(tr->ens + ((size_t)n_val + i) * C, C) == val->labels[i];
    }
    vs->n_images = n_val;
    vs->majority_acc = (double)maj / n_val;
    vs->mean_prob_acc = (double)mp / n_val;
    vs->mean_nll = nll / ((double)tr->V * n_val);
}

static void toy_validate(Trainer *tr, ValStats *vs) {
    Model *m = tr->m;
    const Job *job = &m->job;
    generate(tr, RNG_STREAM_VAL_Z, tr->v_local, tr->V, tr->vstart, 0);
    vs->entropy = entropy_estimate(tr->comm, &tr->ew, tr->all, tr->V, 2, tr->vstart, tr->v_local,
                                   job->distance, job->z_dim, 0.0f, NULL);
    vs->mean_nll = toy_nll_grad(job, tr->all, tr->V, 0.0, 0.0, NULL, NULL) / tr->V;
    for (int k = 0; k < tr->V; k++) tr->net_acc[k] = exp(toy_log_density(job, tr->all + 2 * k));
    vs->n_images = 0;
    vs->majority_acc = vs->mean_prob_acc = 0.0;
}

void trainer_validate(Trainer *tr, ValStats *vs) {
    memset(vs, 0, sizeof(*vs));
    vs->n_nets = tr->V;
    if (tr->m->job.task == TASK_TOY) toy_validate(tr, vs);
    else mnist_validate(tr, vs);
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

void trainer_write_toy_curve(Trainer *tr, const char *path, int n) {
    Model *m = tr->m;
    const MlpArch *g = &m->harch.extractor;
    const int zd = m->job.z_dim, chunk = tr->hn.max_n;
    float *pts = XMALLOC((size_t)n * 2 * sizeof(float));
    float *z = XCALLOC((size_t)chunk * zd, sizeof(float));
    for (int i0 = 0; i0 < n; i0 += chunk) {
        const int c = n - i0 < chunk ? n - i0 : chunk;
        for (int i = 0; i < c; i++)  // z = (t, 0, ..., 0), t uniformly spaced in [-1, 1]
            z[(size_t)i * zd] = n > 1 ? -1.0f + 2.0f * (float)(i0 + i) / (float)(n - 1) : 0.0f;
        mlp_forward(g, &m->harch.table, m->params, m->stats, &tr->hn.ext, z, c, c, 0, &tr->bn, tr->comm);
        memcpy(pts + (size_t)i0 * 2, mlp_out(g, &tr->hn.ext), (size_t)c * 2 * sizeof(float));
    }
    if (tr->comm->rank == 0) {
        FILE *f = XFOPEN(path, "w");
        fprintf(f, "z,x,y,log_density,nn_distance\n");
        for (int i = 0; i < n; i++) {
            double best = INFINITY;
            for (int j = 0; j < n; j++)
                if (j != i) {
                    double d = entropy_distance(pts + 2 * i, pts + 2 * j, 2, DIST_L2);
                    if (d < best) best = d;
                }
            fprintf(f, "%.6f,%.6f,%.6f,%.6f,%.6f\n", n > 1 ? -1.0 + 2.0 * i / (n - 1) : 0.0, pts[2 * i],
                    pts[2 * i + 1], toy_log_density(&m->job, pts + 2 * i), best);
        }
        XFCLOSE(f, path);
    }
    free(pts);
    free(z);
}
