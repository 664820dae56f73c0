// bench_mpi: where the time of a training step goes on P ranks, and how many bytes each kind of
// collective moves (the Comm counters filled by mpi/comm_mpi.c).
//   mpirun -np P build/bench/bench_mpi [--steps N] [--job JOB.json] [--threads T] [--set KEY=VALUE]...
// Prints, from rank 0, ms per step split into compute, all-gather (gauge-fixed weights, entropy
// neighbours), all-reduce (gradients, losses, stop flag) and batch-norm reductions, each as
// rank 0's time and the maximum over ranks, and the bytes per step of each collective on rank 0.
// Communication times include waiting for the slowest rank at the collective (load imbalance).
// Then times the same collectives in isolation (barrier first, median of 21 repetitions): the
// all-gather of the batch's weights, the gradient all-reduce, and the step's batch-norm calls
// replayed with their sizes: the cost of moving the bytes, without waiting for other ranks.
// Uses synthetic MNIST-shaped data (speed does not depend on pixel values). Without MPI (or with
// one rank) it prints the same lines with zero communication.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "comm.h"
#include "config.h"
#include "model.h"
#include "train.h"

static void reset_counters(Comm *c) {
    c->bytes_allgather = c->bytes_allreduce = c->bytes_bn = 0.0;
    c->sec_allgather = c->sec_allreduce = c->sec_bn = 0.0;
    c->calls_bn = 0;
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// The step's batch-norm reductions (src/mlp.c, src/hyper.c): per hidden level of the extractor one
// call of 2 x features doubles, and per hidden level of the generators one call for all generators
// that have that level (2 x features each, side by side); the same again backward. Returns the
// number of calls; sizes[] gets their lengths.
static int bn_calls(const HyperArch *h, size_t *sizes, int max) {
    int n = 0, levels = 0;
    for (int i = 0; i + 1 < h->extractor.n_dense && n + 2 <= max; i++) {
        sizes[n++] = 2 * (size_t)h->extractor.dims[i + 1];
        sizes[n++] = 2 * (size_t)h->extractor.dims[i + 1];
    }
    for (int g = 0; g < h->n_gens; g++) if (h->gens[g].n_dense - 1 > levels) levels = h->gens[g].n_dense - 1;
    for (int i = 0; i < levels && n + 2 <= max; i++) {
        size_t len = 0;
        for (int g = 0; g < h->n_gens; g++)
            if (i + 1 < h->gens[g].n_dense) len += 2 * (size_t)h->gens[g].dims[i + 1];
        sizes[n++] = len;
        sizes[n++] = len;
    }
    return n;
}

// Median time (ms) over `reps` of: barrier, then the collective `kind` (0 all-gather of B rows of
// W floats, 1 all-reduce of n floats, 2 the batch-norm calls).
static double isolated_ms(Comm *c, int kind, int reps, int B, size_t W, size_t n, const size_t *bn, int n_bn) {
    float *buf = XCALLOC(kind == 0 ? (size_t)B * W : kind == 1 ? n : 1, sizeof(float));
    double *dbuf = XCALLOC(4096, sizeof(double));
    int *counts = XMALLOC(sizeof(int) * c->size), *displs = XMALLOC(sizeof(int) * c->size);
    for (int r = 0; r < c->size; r++) {
        displs[r] = (int)(comm_shard_start(B, r, c->size) * W);
        counts[r] = (int)(comm_shard_start(B, r + 1, c->size) * W) - displs[r];
    }
    double *t = XMALLOC(sizeof(double) * reps);
    for (int k = 0; k < reps; k++) {
        comm_barrier(c);
        const double t0 = ht_now();
        if (kind == 0) comm_allgatherv_f32(c, buf + displs[c->rank], buf, counts, displs);
        else if (kind == 1) comm_allreduce_sum_f32(c, buf, n);
        else for (int i = 0; i < n_bn; i++) comm_bn_allreduce(c, dbuf, bn[i] < 4096 ? bn[i] : 4096);
        t[k] = 1e3 * (ht_now() - t0);
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    const double med = t[reps / 2];
    free(buf); free(dbuf); free(counts); free(displs); free(t);
    return med;
}

static const char *human_bytes(double b, char *buf, size_t n) {
    if (b >= 1048576.0) XSNPRINTF(buf, n, "%.2f MiB", b / 1048576.0);
    else if (b >= 1024.0) XSNPRINTF(buf, n, "%.1f KiB", b / 1024.0);
    else XSNPRINTF(buf, n, "%.0f B", b);
    return buf;
}

int main(int argc, char **argv) {
    Comm comm;
    comm_init(&comm, &argc, &argv);
    int threads = 0, steps = 10;
    const char *job_file = NULL, *sets[64];
    int n_sets = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--job") && i + 1 < argc) job_file = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && n_sets < 64) sets[n_sets++] = argv[++i];
        else HT_FATAL("usage: bench_mpi [--steps N] [--job FILE] [--threads T] [--set KEY=VALUE]...");
    }
    HT_CHECK(steps > 0, "--steps must be positive");
    if (threads > 0) omp_set_num_threads(threads);
    Job job;
    job_defaults(&job);
    if (job_file) job_load_file(&job, job_file);
    for (int i = 0; i < n_sets; i++) job_set(&job, sets[i]);
    job_validate(&job);
    HT_CHECK(job.task == TASK_MNIST, "bench_mpi measures the MNIST task");
    Mnist data;
    mnist_synthetic(&data, 5000, 100);
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, &comm, &data);
    if (comm.rank == 0)
        printf("bench_mpi: job %s, %d rank(s) (%s) x %d thread(s), batch %d (%d on rank 0), %zu target weights, "
               "%zu parameters\n", job.name, comm.size, comm.impl, omp_get_max_threads(), job.batch, tr.n_local,
               m.tarch.n_weights, m.harch.table.n_params);

    StepStats st;
    for (int i = 0; i < 2; i++) trainer_step(&tr, &st); // warm-up
    comm_barrier(&comm);
    reset_counters(&comm);
    memset(&tr.times, 0, sizeof(tr.times));
    const double t0 = ht_now();
    for (int i = 0; i < steps; i++) trainer_step(&tr, &st);
    const double per = (ht_now() - t0) / steps;
    const Comm c = comm; // the counters of the measured steps (the reductions below add to comm's)

    // per step, in ms: total, all-gather, all-reduce, batch norm, compute (= the rest)
    double mine[5] = {per, c.sec_allgather / steps, c.sec_allreduce / steps, c.sec_bn / steps, 0.0};
    mine[4] = mine[0] - mine[1] - mine[2] - mine[3];
    for (int k = 0; k < 5; k++) mine[k] *= 1e3;
    double mx[5];
    for (int k = 0; k < 5; k++) {
        // max over ranks through a sum of one-hot slots (comm.h has a max only for int)
        double *slot = XCALLOC((size_t)comm.size, sizeof(double));
        slot[comm.rank] = mine[k];
        comm_allreduce_sum_f64(&comm, slot, (size_t)comm.size);
        mx[k] = 0.0;
        for (int r = 0; r < comm.size; r++) if (slot[r] > mx[k]) mx[k] = slot[r];
        free(slot);
    }
    if (comm.rank == 0) {
        char b1[32], b2[32], b3[32];
        printf("step: %.1f ms (%d steps) = compute %.1f + all-gather %.2f + all-reduce %.2f + batch-norm %.2f "
               "ms on rank 0\n", mine[0], steps, mine[4], mine[1], mine[2], mine[3]);
        printf("      max over ranks: step %.1f, compute %.1f, all-gather %.2f, all-reduce %.2f, batch-norm %.2f ms\n",
               mx[0], mx[4], mx[1], mx[2], mx[3]);
        printf("bytes per step on rank 0: all-gather %s (received from other ranks), all-reduce %s, "
               "batch-norm %s (buffer sizes) in %.0f calls\n", human_bytes(c.bytes_allgather / steps, b1, sizeof(b1)),
               human_bytes(c.bytes_allreduce / steps, b2, sizeof(b2)), human_bytes(c.bytes_bn / steps, b3, sizeof(b3)),
               (double)c.calls_bn / steps);
        printf("trainer split on rank 0 (ms/step): hypernetwork %.1f | gauge %.1f | target %.1f | entropy %.1f | "
               "comm %.1f | adam %.1f | data %.1f (hypernetwork includes batch-norm reductions, entropy its small "
               "all-gathers)\n", 1e3 * tr.times.hyper / steps, 1e3 * tr.times.gauge / steps,
               1e3 * tr.times.target / steps, 1e3 * tr.times.entropy / steps,
               1e3 * tr.times.comm / steps, 1e3 * tr.times.adam / steps, 1e3 * tr.times.data / steps);
    }
    size_t bn[256];
    const int n_bn = bn_calls(&m.harch, bn, 256);
    const double iso_ag = isolated_ms(&comm, 0, 21, job.batch, m.tarch.n_weights, 0, NULL, 0);
    const double iso_ar = isolated_ms(&comm, 1, 21, 0, 0, m.harch.table.n_params, NULL, 0);
    const double iso_bn = isolated_ms(&comm, 2, 21, 0, 0, 0, bn, n_bn);
    if (comm.rank == 0)
        printf("isolated collectives (after a barrier, median of 21): all-gather of %d x %zu floats %.2f ms | "
               "gradient all-reduce of %zu floats %.2f ms | %d batch-norm reductions %.2f ms\n", job.batch,
               m.tarch.n_weights, iso_ag, m.harch.table.n_params, iso_ar, n_bn, iso_bn);
    trainer_free(&tr);
    model_free(&m);
    comm_finalize(&comm);
    return 0;
}
