// test_nccl: smoke test of the NCCL layer (mpi/comm_nccl.c) on known values. Run with mpirun on as
// many ranks as the node has GPUs (one GPU per rank; NCCL refuses two ranks on one GPU), or alone
// (a one-rank NCCL communicator is created anyway, so every NCCL call is still exercised).
//
//   all-reduce f32 of 1,000,003 elements: (r + 1) + (i mod 7) summed over ranks, exact
//   all-reduce f64 of ONE element (counts are elements, not bytes): a guard region after every
//     buffer must be left untouched
//   batch-norm all-reduce f64 (600 elements), exact
//   all-gather f32, equal shards, in place (ncclAllGather), exact
//   all-gather i32, uneven shards (r + 1 elements on rank r: grouped ncclBroadcast), exact
//   ordering: 20 rounds of (fill on the compute stream -> all-reduce -> copy back on the compute
//     stream) with no synchronization in between: wrong event hand-offs show as stale values
//   byte counters of the communicator
// --fail: rank 0 makes an NCCL call with an invalid datatype; the NCCL_CHECK path must abort the
// communicator and end every rank (tests/gpu/run-all.sh checks that the job ends promptly).
//
// Prints "SKIPPED (no GPU)" and exits 0 without GPUs; exits non-zero on any failure (every rank
// agrees on the verdict).
#include <nccl.h>

#include "common.cuh"
#include "gpu_check.cuh"

#define GUARD 64
#define SENTINEL (-7.25f)

static int g_rank = 0;

static void check_guard(const char *what, const float *h, size_t n) {
    size_t bad = 0;
    for (size_t i = n; i < n + GUARD; i++) bad += h[i] != SENTINEL;
    T_CHECK(&g_ts, bad == 0, "rank %d: %s: guard after %zu elements untouched (%zu overwritten)", g_rank, what, n, bad);
}

// An f32 all-gather of `per` values per rank, in place: counts/displs (P), the host buffer h
// (P * per + GUARD) holding -1 everywhere, this rank's rows q * a + b * j at its place and the
// sentinel in the guard region.
typedef struct {
    int per, a, b;
    size_t n;
    int *counts, *displs;
    float *h;
} Gather;

static Gather gather_setup(int P, int r, int per, int a, int b) {
    Gather g = {per, a, b, (size_t)per * P, NULL, NULL, NULL};
    g.counts = (int *)malloc(sizeof(int) * P);
    g.displs = (int *)malloc(sizeof(int) * P);
    g.h = (float *)malloc((g.n + GUARD) * sizeof(float));
    if (!g.counts || !g.displs || !g.h) { fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__); exit(1); }
    for (int q = 0; q < P; q++) { g.counts[q] = per; g.displs[q] = q * per; }
    for (size_t i = 0; i < g.n + GUARD; i++) g.h[i] = i < g.n ? -1.0f : SENTINEL;
    for (int j = 0; j < per; j++) g.h[r * per + j] = (float)(r * a + b * j);
    return g;
}

// The gathered values in h that differ from every rank's rows.
static size_t gather_wrong(const Gather *g, int P) {
    size_t bad = 0;
    for (int q = 0; q < P; q++)
        for (int j = 0; j < g->per; j++) bad += g->h[q * g->per + j] != (float)(q * g->a + g->b * j);
    return bad;
}

static void gather_free(Gather *g) {
    free(g->h); free(g->counts); free(g->displs);
}

int main(int argc, char **argv) {
    Comm comm;
    comm_init(&comm, &argc, &argv);
    g_rank = comm.rank;
    int fail_mode = argc > 1 && !strcmp(argv[1], "--fail");
    char why[256] = "";
    const int n_dev = devcomm_device_count(why, sizeof(why));
    if (comm_allreduce_max_int(&comm, n_dev == 0)) {
        if (comm.rank == 0) printf("test_nccl: SKIPPED (no GPU): %s\n", n_dev == 0 ? why : "a rank sees no GPU");
        comm_finalize(&comm);
        return 0;
    }
    devcomm_select_device(&comm); // one GPU per rank, else a clear fatal error
    DevComm dc;
    devcomm_init(&dc, &comm, 1);
    const int P = comm.size, r = comm.rank;
    char ver[32];
    devcomm_nccl_version(ver, sizeof(ver));
    if (r == 0) printf("test_nccl: %d rank(s), NCCL %s\n", P, ver);
    cudaStream_t st;
    CUDA_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));

    if (fail_mode) {
        float *d = DALLOC(float, 16, "fail test");
        if (r == 0) {
            fprintf(stderr, "rank 0: calling ncclAllReduce with an invalid datatype (expected to end the job)\n");
            const ncclResult_t e = ncclAllReduce(d, d, 1, (ncclDataType_t)99, ncclSum, (ncclComm_t)dc.nccl, st);
            if (e != ncclSuccess) devcomm_nccl_fail((int)e, "ncclAllReduce(invalid datatype)", __FILE__, __LINE__);
            fprintf(stderr, "rank 0: NCCL accepted an invalid datatype?\n");
            comm_abort(3);
        }
        devcomm_allreduce_sum_f32(&dc, d, 16, st); // the other ranks wait in a real collective
        CUDA_CHECK(cudaStreamSynchronize(st));
        fprintf(stderr, "rank %d: still running after rank 0's fatal error\n", r);
        comm_abort(4);
    }

    // 1. all-reduce f32, large, odd length
    {
        const size_t n = 1000003;
        float *h = (float *)malloc((n + GUARD) * sizeof(float));
        for (size_t i = 0; i < n; i++) h[i] = (float)(r + 1) + (float)(i % 7);
        for (size_t i = n; i < n + GUARD; i++) h[i] = SENTINEL;
        float *d = DALLOC(float, n + GUARD, "allreduce f32");
        CUDA_CHECK(cudaMemcpyAsync(d, h, (n + GUARD) * sizeof(float), cudaMemcpyHostToDevice, st));
        devcomm_allreduce_sum_f32(&dc, d, n, st);
        CUDA_CHECK(cudaMemcpyAsync(h, d, (n + GUARD) * sizeof(float), cudaMemcpyDeviceToHost, st));
        CUDA_CHECK(cudaStreamSynchronize(st));
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += h[i] != (float)(P * (P + 1) / 2) + (float)(P * (int)(i % 7));
        T_CHECK(&g_ts, bad == 0, "rank %d: all-reduce f32 of %zu elements: %zu wrong", r, n, bad);
        check_guard("all-reduce f32", h, n);
        ht_cuda_free(d);
        free(h);
    }
    // 2. all-reduce f64 of one element, and the batch-norm all-reduce
    {
        double h[1 + GUARD];
        for (int i = 0; i < 1 + GUARD; i++) h[i] = i == 0 ? 0.5 * (r + 1) : (double)SENTINEL;
        double *d = DALLOC(double, 1 + GUARD, "allreduce f64");
        CUDA_CHECK(cudaMemcpyAsync(d, h, sizeof(h), cudaMemcpyHostToDevice, st));
        devcomm_allreduce_sum_f64(&dc, d, 1, st);
        CUDA_CHECK(cudaMemcpyAsync(h, d, sizeof(h), cudaMemcpyDeviceToHost, st));
        CUDA_CHECK(cudaStreamSynchronize(st));
        size_t guard_bad = 0;
        for (int i = 1; i < 1 + GUARD; i++) guard_bad += h[i] != (double)SENTINEL;
        T_CHECK(&g_ts, h[0] == 0.25 * P * (P + 1) && guard_bad == 0,
                "rank %d: all-reduce f64 of 1 element: %g (expected %g), guard %zu overwritten", r, h[0],
                0.25 * P * (P + 1), guard_bad);
        ht_cuda_free(d);
        const size_t n = 600;
        double *hb = (double *)malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++) hb[i] = (double)i * (r + 1);
        double *db = DALLOC(double, n, "bn allreduce");
        CUDA_CHECK(cudaMemcpyAsync(db, hb, n * sizeof(double), cudaMemcpyHostToDevice, st));
        devcomm_bn_allreduce(&dc, db, n, st);
        CUDA_CHECK(cudaMemcpyAsync(hb, db, n * sizeof(double), cudaMemcpyDeviceToHost, st));
        CUDA_CHECK(cudaStreamSynchronize(st));
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) bad += hb[i] != (double)i * P * (P + 1) / 2;
        T_CHECK(&g_ts, bad == 0, "rank %d: batch-norm all-reduce f64 of %zu elements: %zu wrong", r, n, bad);
        ht_cuda_free(db);
        free(hb);
    }
    // 3. all-gather f32, equal shards, in place
    {
        Gather g = gather_setup(P, r, 5, 100, 1);
        const size_t n = g.n;
        const int *counts = g.counts, *displs = g.displs;
        float *h = g.h;
        float *d = DALLOC(float, n + GUARD, "allgather f32");
        CUDA_CHECK(cudaMemcpyAsync(d, h, (n + GUARD) * sizeof(float), cudaMemcpyHostToDevice, st));
        devcomm_allgatherv_f32(&dc, d + displs[r], d, counts, displs, st);
        CUDA_CHECK(cudaMemcpyAsync(h, d, (n + GUARD) * sizeof(float), cudaMemcpyDeviceToHost, st));
        CUDA_CHECK(cudaStreamSynchronize(st));
        const size_t bad = gather_wrong(&g, P);
        T_CHECK(&g_ts, bad == 0, "rank %d: all-gather f32 (equal shards, in place): %zu wrong", r, bad);
        check_guard("all-gather f32", h, n);
        ht_cuda_free(d);
        gather_free(&g);
    }
    // 3b. the same gather left running (devcomm_allgatherv_f32_start), other work queued on the
    // caller's stream meanwhile, then devcomm_join: the pending flag and the gathered rows
    {
        Gather g = gather_setup(P, r, 7, 1000, 3);
        const size_t n = g.n;
        const int *counts = g.counts, *displs = g.displs;
        float *h = g.h;
        float *d = DALLOC(float, n + GUARD, "allgather start/join"), *other = DALLOC(float, 64, "other work");
        CUDA_CHECK(cudaMemcpyAsync(d, h, (n + GUARD) * sizeof(float), cudaMemcpyHostToDevice, st));
        devcomm_allgatherv_f32_start(&dc, d + displs[r], d, counts, displs, st);
        const int pending_after_start = dc.pending;
        CUDA_CHECK(cudaMemsetAsync(other, 0, 64 * sizeof(float), st)); // work beside the gather
        devcomm_join(&dc, st);
        const int pending_after_join = dc.pending;
        CUDA_CHECK(cudaMemcpyAsync(h, d, (n + GUARD) * sizeof(float), cudaMemcpyDeviceToHost, st));
        CUDA_CHECK(cudaStreamSynchronize(st));
        const size_t bad = gather_wrong(&g, P);
        T_CHECK(&g_ts, bad == 0 && pending_after_start == 1 && pending_after_join == 0,
                "rank %d: all-gather f32 started, joined after other work: %zu wrong; pending %d after the start "
                "(expected 1), %d after the join (expected 0)", r, bad, pending_after_start, pending_after_join);
        check_guard("all-gather f32 start/join", h, n);
        ht_cuda_free(d); ht_cuda_free(other);
        gather_free(&g);
    }
    // 4. all-gather i32, uneven shards
    {
        int *counts = (int *)malloc(sizeof(int) * P), *displs = (int *)malloc(sizeof(int) * P);
        size_t n = 0;
        for (int q = 0; q < P; q++) { counts[q] = q + 1; displs[q] = (int)n; n += (size_t)(q + 1); }
        int *h = (int *)malloc((n + GUARD) * sizeof(int));
        for (size_t i = 0; i < n + GUARD; i++) h[i] = i < n ? -1 : 777;
        int *send = (int *)malloc(sizeof(int) * (size_t)(r + 1));
        for (int j = 0; j <= r; j++) send[j] = 1000 * r + j;
        int *d = DALLOC(int, n + GUARD, "allgather i32"), *ds = DALLOC(int, r + 1, "allgather i32 send");
        CUDA_CHECK(cudaMemcpyAsync(d, h, (n + GUARD) * sizeof(int), cudaMemcpyHostToDevice, st));
        CUDA_CHECK(cudaMemcpyAsync(ds, send, (size_t)(r + 1) * sizeof(int), cudaMemcpyHostToDevice, st));
        devcomm_allgatherv_i32(&dc, ds, d, counts, displs, st); // out of place
        CUDA_CHECK(cudaMemcpyAsync(h, d, (n + GUARD) * sizeof(int), cudaMemcpyDeviceToHost, st));
        CUDA_CHECK(cudaStreamSynchronize(st));
        size_t bad = 0, guard_bad = 0;
        for (int q = 0; q < P; q++)
            for (int j = 0; j <= q; j++) bad += h[displs[q] + j] != 1000 * q + j;
        for (size_t i = n; i < n + GUARD; i++) guard_bad += h[i] != 777;
        T_CHECK(&g_ts, bad == 0 && guard_bad == 0, "rank %d: all-gather i32 (uneven shards %s): %zu wrong, guard %zu "
                "overwritten", r, P > 1 ? "1..P, grouped broadcasts" : "of one rank", bad, guard_bad);
        ht_cuda_free(d); ht_cuda_free(ds);
        free(h); free(send); free(counts); free(displs);
    }
    // 5. ordering across streams: no host synchronization between rounds
    {
        const size_t n = 1 << 20;
        const int rounds = 20;
        float *h = NULL, *out = NULL;
        CUDA_CHECK(cudaMallocHost((void **)&h, (size_t)rounds * n * sizeof(float)));
        CUDA_CHECK(cudaMallocHost((void **)&out, (size_t)rounds * sizeof(float) * 2));
        for (int k = 0; k < rounds; k++)
            for (size_t i = 0; i < n; i++) h[(size_t)k * n + i] = (float)(k + 1);
        float *d = DALLOC(float, n, "ordering");
        for (int k = 0; k < rounds; k++) {
            CUDA_CHECK(cudaMemcpyAsync(d, h + (size_t)k * n, n * sizeof(float), cudaMemcpyHostToDevice, st));
            devcomm_allreduce_sum_f32(&dc, d, n, st);
            CUDA_CHECK(cudaMemcpyAsync(out + 2 * k, d, sizeof(float), cudaMemcpyDeviceToHost, st));
            CUDA_CHECK(cudaMemcpyAsync(out + 2 * k + 1, d + n - 1, sizeof(float), cudaMemcpyDeviceToHost, st));
        }
        CUDA_CHECK(cudaStreamSynchronize(st));
        int bad = 0;
        for (int k = 0; k < rounds; k++) bad += out[2 * k] != (float)(P * (k + 1)) || out[2 * k + 1] != (float)(P * (k + 1));
        T_CHECK(&g_ts, bad == 0, "rank %d: %d rounds of fill -> all-reduce -> read on the compute stream, no host sync: "
                "%d rounds wrong", r, rounds, bad);
        ht_cuda_free(d);
        CUDA_CHECK(cudaFreeHost(h));
        CUDA_CHECK(cudaFreeHost(out));
    }
    // 6. byte counters
    {
        const double ar = (1000003.0 + 20.0 * (1 << 20)) * 4 + 8;
        T_CHECK(&g_ts, dc.bytes_allreduce == ar && dc.bytes_bn == 600 * 8.0, "rank %d: byte counters: all-reduce %.0f "
                "(expected %.0f), batch norm %.0f (4800)", r, dc.bytes_allreduce, ar, dc.bytes_bn);
    }
    CUDA_CHECK(cudaStreamDestroy(st));
    devcomm_free(&dc);
    const int failed = comm_allreduce_max_int(&comm, g_ts.failed > 0);
    char name[32];
    snprintf(name, sizeof(name), "test_nccl (rank %d)", r);
    int rc = test_summary(&g_ts, name);
    if (failed && !rc) { printf("test_nccl: another rank failed\n"); rc = 1; }
    comm_finalize(&comm);
    return rc;
}
