// mpi_units.c: unit tests of the MPI implementation of comm.h, run under mpirun by tests/t_mpi.sh
// (any number of ranks, including uneven shards). Every rank computes the full-batch reference
// with a hand-built one-rank Comm (which must act as an identity even in the MPI build) and the
// distributed result with the world Comm, and compares:
//   - the collectives themselves (uneven all-gathers in place and not, sums, max, broadcast,
//     byte counters, the size-1 Comm short-circuit, comm_check_same on equal buffers);
//   - synchronized batch norm: every MLP of the tiny job, rows split across ranks with
//     global_rows = total, equals the full batch (outputs, input gradient, all-reduced parameter
//     gradients, running statistics);
//   - generators of unequal depth run as one MlpGroup (one batch-norm all-reduce per level), rows
//     split across ranks, equal the full batch, and each equals its MLP run alone bit for bit;
//   - one training step of the paper job (jobs/mnist.json, synthetic images) makes exactly
//     (extractor hidden levels + deepest generator's hidden levels) x 2 = 8 comm_bn_allreduce calls;
//   - the entropy estimate (value and gradient, L1 and L2) with start/n_local per rank.
// Modes for the failure tests (each must end every rank with a non-zero status):
//   mpi_units --check-same-fail   the last rank perturbs one float before comm_check_same
//   mpi_units --bad-root          comm_bcast with an invalid root (MPI_CHECK must report it)
//   mpi_units --abort-before-init comm_abort(7) before comm_init (must exit(7) without MPI)
//   mpi_units --all-fail          every rank fails the same way (HT_FATAL): the message must be
//                                 printed once, by rank 0, and every rank exit 1 without MPI_Abort
//   mpi_units --one-rank-fails    rank 1 fails alone while the others wait in a barrier: its
//                                 message with "[rank 1 of P]", then MPI_Abort ends every rank
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "comm.h"
#include "common.h"
#include "config.h"
#include "entropy.h"
#include "mlp.h"
#include "model.h"
#include "train.h"

static int g_rank = 0, g_failed = 0, g_passed = 0;

// Rank 0 prints every check; other ranks print only their failures (tagged with the rank).
#define CHECK(cond, ...) do { \
    const int ok_ = (cond); \
    if (ok_) g_passed++; else g_failed++; \
    if (!ok_ || g_rank == 0) { \
        printf("  %s", ok_ ? "PASS " : "FAIL "); \
        if (g_rank) printf("[rank %d] ", g_rank); \
        printf(__VA_ARGS__); printf("\n"); fflush(stdout); } } while (0)

static void fill(float *x, size_t n, double scale, uint64_t seed) {
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 12345;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        x[i] = (float)(scale * (2.0 * ((s >> 11) * (1.0 / 9007199254740992.0)) - 1.0));
    }
}

// Norm-wise relative difference: max |a - b| / max |b| (0 when both are zero).
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0.0, m = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)a[i] - (double)b[i]);
        if (e > d || isnan(e)) d = isnan(e) ? INFINITY : e;
        if (fabs((double)b[i]) > m) m = fabs((double)b[i]);
    }
    return m > 0.0 ? d / m : d;
}

static Comm single_comm(void) {
    Comm c;
    memset(&c, 0, sizeof(c));
    c.rank = 0;
    c.size = 1;
    c.impl = "single";
    return c;
}

// ---------------------------------------------------------------- collectives

static void test_collectives(Comm *w) {
    const int P = w->size, me = w->rank;
    if (me == 0) printf("collectives on %d rank(s)\n", P);
    enum { N = 7, PER = 3 };
    int counts[64], displs[64];
    for (int r = 0; r < P; r++) {
        const int s = comm_shard_start(N, r, P), e = comm_shard_start(N, r + 1, P);
        counts[r] = (e - s) * PER;
        displs[r] = s * PER;
    }
    const int s = comm_shard_start(N, me, P), e = comm_shard_start(N, me + 1, P);
    float all[N * PER], send[N * PER];
    int iall[N * PER];
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N * PER; i++) { all[i] = -1.0f; iall[i] = -1; }
        for (int i = s * PER; i < e * PER; i++) { all[i] = (float)i + 0.5f; iall[i] = 1000 + i; send[i - s * PER] = (float)i + 0.5f; }
        const double b0 = w->bytes_allgather;
        if (pass == 0) comm_allgatherv_f32(w, all + displs[me], all, counts, displs); // in place
        else comm_allgatherv_f32(w, send, all, counts, displs);
        comm_allgatherv_i32(w, iall + displs[me], iall, counts, displs);
        int ok = 1;
        for (int i = 0; i < N * PER; i++) ok &= all[i] == (float)i + 0.5f && iall[i] == 1000 + i;
        CHECK(ok, "allgatherv f32 + i32 of %d uneven rows (%s)", N, pass == 0 ? "in place" : "separate send buffer");
        const double expect = P > 1 ? 2.0 * 4.0 * (N - (e - s)) * PER : 0.0;
        CHECK(w->bytes_allgather - b0 == expect, "bytes_allgather grew by %.0f (expected %.0f: rows received from other ranks)",
              w->bytes_allgather - b0, expect);
    }
    float f[5];
    double d[3];
    for (int i = 0; i < 5; i++) f[i] = (float)(me + 1) + i;
    for (int i = 0; i < 3; i++) d[i] = 0.25 * (me + 1) + i;
    const double ar0 = w->bytes_allreduce;
    comm_allreduce_sum_f32(w, f, 5);
    comm_allreduce_sum_f64(w, d, 3);
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= f[i] == (float)(P * (P + 1) / 2 + P * i);
    for (int i = 0; i < 3; i++) ok &= d[i] == 0.25 * P * (P + 1) / 2 + (double)P * i;
    CHECK(ok, "allreduce sum f32 and f64");
    CHECK(comm_allreduce_max_int(w, 10 * me) == 10 * (P - 1), "allreduce max int");
    const double ar_expect = P > 1 ? 5 * 4 + 3 * 8 + 4 : 0;
    CHECK(w->bytes_allreduce - ar0 == ar_expect, "bytes_allreduce grew by %.0f (expected %.0f)",
          w->bytes_allreduce - ar0, ar_expect);
    double bn[4] = {me, me, me, me};
    const double bn0 = w->bytes_bn;
    comm_bn_allreduce(w, bn, 4);
    CHECK(bn[3] == P * (P - 1) / 2.0 && w->bytes_bn - bn0 == (P > 1 ? 32.0 : 0.0), "batch-norm allreduce and bytes_bn");
    char msg[16];
    snprintf(msg, sizeof(msg), me == P - 1 ? "from the last" : "not yet");
    comm_bcast(w, msg, sizeof(msg), P - 1);
    CHECK(!strcmp(msg, "from the last"), "broadcast from rank %d", P - 1);
    comm_barrier(w);
    float same[100];
    fill(same, 100, 1.0, 5);
    comm_check_same(w, same, 100, "identical buffer"); // must return
    CHECK(1, "comm_check_same returns on identical buffers");

    // A hand-built one-rank Comm is an identity even in the MPI build, and counts nothing.
    Comm one = single_comm();
    float g[5] = {1, 2, 3, 4, 5};
    comm_allreduce_sum_f32(&one, g, 5);
    double dd[2] = {1.5, 2.5};
    comm_allreduce_sum_f64(&one, dd, 2);
    comm_bn_allreduce(&one, dd, 2);
    const int c1[1] = {5}, d1[1] = {2};
    float dst[7] = {0};
    comm_allgatherv_f32(&one, g, dst, c1, d1);
    comm_barrier(&one);
    comm_bcast(&one, g, sizeof(g), 0);
    comm_check_same(&one, g, 5, "one-rank buffer");
    CHECK(g[4] == 5.0f && dd[1] == 2.5 && dst[2] == 1.0f && dst[6] == 5.0f && dst[1] == 0.0f &&
          comm_allreduce_max_int(&one, 7) == 7 && one.bytes_allreduce == 0.0 && one.bytes_allgather == 0.0 &&
          one.bytes_bn == 0.0, "a hand-built size-1 Comm acts as an identity (allgatherv copies, nothing counted)");
}

// ---------------------------------------------------------------- synchronized batch norm

// Full batch of `rows` on the one-rank Comm versus the same rows split across ranks.
static void test_bn_mlp(Comm *w, Comm *one, Model *m, const MlpArch *a, int rows, uint64_t seed) {
    const ParamTable *t = &m->harch.table;
    const int in = a->dims[0], out = a->dims[a->n_dense];
    const BnConfig bn = {(float)m->job.leaky_alpha, m->job.bn_eps, m->job.bn_decay};
    // non-trivial batch-norm scales and offsets (the same on every rank)
    for (int i = 0; i < a->n_dense - 1; i++) {
        const ParamView *g = &t->views[a->gamma[i]], *b = &t->views[a->beta[i]];
        fill(m->params + g->offset, g->size, 0.3, seed + i);
        for (size_t k = 0; k < g->size; k++) m->params[g->offset + k] += 1.0f;
        fill(m->params + b->offset, b->size, 0.3, seed + 50 + i);
    }
    float *x = XALLOC_FLOATS((size_t)rows * in), *dout = XALLOC_FLOATS((size_t)rows * out);
    fill(x, (size_t)rows * in, 1.0, seed + 100);
    fill(dout, (size_t)rows * out, 1.0, seed + 200);
    float *stats0 = XMALLOC(t->n_stat * sizeof(float) + 4);
    fill(stats0, t->n_stat, 0.5, seed + 300);
    for (size_t i = 0; i < t->n_stat; i++) stats0[i] = fabsf(stats0[i]); // plausible running variances

    // reference: the full batch on one rank
    MlpCache cf;
    mlp_cache_init(&cf, a, rows);
    float *out_full = XALLOC_FLOATS((size_t)rows * out), *dx_full = XALLOC_FLOATS((size_t)rows * in);
    float *grads_full = XALLOC_FLOATS(t->n_params), *stats_full = XMALLOC(t->n_stat * sizeof(float) + 4);
    memcpy(m->stats, stats0, t->n_stat * sizeof(float));
    memset(m->grads, 0, t->n_params * sizeof(float));
    mlp_forward(a, t, m->params, m->stats, &cf, x, rows, rows, 1, &bn, one);
    memcpy(out_full, mlp_out(a, &cf), (size_t)rows * out * sizeof(float));
    mlp_backward(a, t, m->params, m->grads, &cf, dout, dx_full, &bn, one);
    memcpy(grads_full, m->grads, t->n_params * sizeof(float));
    memcpy(stats_full, m->stats, t->n_stat * sizeof(float));

    // distributed: rows [s, e) on this rank, global_rows = rows
    const int s = comm_shard_start(rows, w->rank, w->size), n = comm_shard_start(rows, w->rank + 1, w->size) - s;
    MlpCache cl;
    mlp_cache_init(&cl, a, n);
    float *dx = XALLOC_FLOATS((size_t)n * in);
    memcpy(m->stats, stats0, t->n_stat * sizeof(float));
    memset(m->grads, 0, t->n_params * sizeof(float));
    const double bn_bytes0 = w->bytes_bn;
    mlp_forward(a, t, m->params, m->stats, &cl, x + (size_t)s * in, n, rows, 1, &bn, w);
    const double e_out = rel_diff(mlp_out(a, &cl), out_full + (size_t)s * out, (size_t)n * out);
    mlp_backward(a, t, m->params, m->grads, &cl, dout + (size_t)s * out, dx, &bn, w);
    comm_allreduce_sum_f32(w, m->grads, t->n_params);
    const double e_dx = rel_diff(dx, dx_full + (size_t)s * in, (size_t)n * in);
    const double e_g = rel_diff(m->grads, grads_full, t->n_params);
    const double e_st = rel_diff(m->stats, stats_full, t->n_stat);
    const double tol = 1e-5;
    CHECK(e_out <= tol && e_dx <= tol && e_g <= tol && e_st <= tol,
          "%-10s %3d rows as %d on this rank: forward %.1e, input grad %.1e, parameter grads %.1e, "
          "running stats %.1e (max rel. diff, limit %.0e)", a->name, rows, n, e_out, e_dx, e_g, e_st, tol);
    if (w->size > 1)
        CHECK(w->bytes_bn > bn_bytes0, "%-10s batch-norm sums went through comm_bn_allreduce (%.0f bytes)",
              a->name, w->bytes_bn - bn_bytes0);
    mlp_cache_free(&cf);
    mlp_cache_free(&cl);
    free(x); free(dout); free(stats0); free(out_full); free(dx_full); free(grads_full); free(stats_full); free(dx);
}

static void test_bn(Comm *w, Comm *one) {
    if (w->rank == 0) printf("synchronized batch norm: rows split over %d rank(s) == full batch on one\n", w->size);
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    Model m;
    model_init(&m, &job);
    const int samples = 11; // not a multiple of 2, 3 or 4: uneven shards
    test_bn_mlp(w, one, &m, &m.harch.extractor, samples, 1);
    for (int l = 0; l < m.harch.n_gens; l++)
        test_bn_mlp(w, one, &m, &m.harch.gens[l], samples * m.harch.gen_codes[l], 10 + l);
    model_free(&m);
}

// ---------------------------------------------------------------- generators as one group

// Bitwise equality of n floats.
static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

// Generators with gen_hidden [6], [5, 4], [3], [4, 3, 2] (unequal depths) run as one MlpGroup:
// rows split across ranks give the full batch's results (one rank), and on this rank's rows the
// group gives exactly, bit for bit, what each MLP gives alone through mlp_forward/mlp_backward.
// Collectives: one per level that holds a batch norm (3 forward, 3 backward).
static void test_group(Comm *w, Comm *one) {
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    const int depth[4] = {1, 2, 1, 3}, hid[4][3] = {{6}, {5, 4}, {3}, {4, 3, 2}};
    for (int l = 0, g = 0; l < job.n_layers; l++) {
        if (job.layers[l].type != OP_CONV && job.layers[l].type != OP_FC) continue;
        job.layers[l].n_gen_hidden = depth[g];
        for (int i = 0; i < depth[g]; i++) job.layers[l].gen_hidden[i] = hid[g][i];
        g++;
    }
    job_validate(&job);
    Model m;
    model_init(&m, &job);
    const HyperArch *h = &m.harch;
    const ParamTable *t = &h->table;
    const BnConfig bn = {(float)m.job.leaky_alpha, m.job.bn_eps, m.job.bn_decay};
    fill(m.params, t->n_params, 0.5, 41);
    const int samples = 11, G = h->n_gens;
    const int s = comm_shard_start(samples, w->rank, w->size), n = comm_shard_start(samples, w->rank + 1, w->size) - s;
    float *x[HT_MAX_OPS], *dout[HT_MAX_OPS], *dxf[HT_MAX_OPS], *dxl[HT_MAX_OPS], *dxa[HT_MAX_OPS];
    float *outf[HT_MAX_OPS], *outl[HT_MAX_OPS];
    MlpCache cf[HT_MAX_OPS], cl[HT_MAX_OPS], ca[HT_MAX_OPS];
    MlpGroup gf = {.n = G}, gl = {.n = G};
    int rf[HT_MAX_OPS], grf[HT_MAX_OPS], rl[HT_MAX_OPS];
    const float *xf[HT_MAX_OPS], *xl[HT_MAX_OPS], *df[HT_MAX_OPS], *dl[HT_MAX_OPS];
    for (int k = 0; k < G; k++) {
        const MlpArch *a = &h->gens[k];
        const int rows = samples * h->gen_codes[k], in = a->dims[0], out = a->dims[a->n_dense];
        const int r0 = s * h->gen_codes[k];
        rl[k] = n * h->gen_codes[k];
        rf[k] = grf[k] = rows;
        x[k] = XALLOC_FLOATS((size_t)rows * in);
        dout[k] = XALLOC_FLOATS((size_t)rows * out);
        dxf[k] = XALLOC_FLOATS((size_t)rows * in);
        dxl[k] = XALLOC_FLOATS((size_t)rl[k] * in + 1);
        dxa[k] = XALLOC_FLOATS((size_t)rl[k] * in + 1);
        outf[k] = XALLOC_FLOATS((size_t)rows * out);
        outl[k] = XALLOC_FLOATS((size_t)rl[k] * out + 1);
        fill(x[k], (size_t)rows * in, 1.0, 500 + k);
        fill(dout[k], (size_t)rows * out, 1.0, 600 + k);
        mlp_cache_init(&cf[k], a, rows);
        mlp_cache_init(&cl[k], a, rl[k]);
        mlp_cache_init(&ca[k], a, rl[k]);
        gf.m[k] = gl.m[k] = a;
        gf.c[k] = &cf[k];
        gl.c[k] = &cl[k];
        xf[k] = x[k]; df[k] = dout[k];
        xl[k] = x[k] + (size_t)r0 * in; dl[k] = dout[k] + (size_t)r0 * out;
    }
    double *red = XCALLOC(mlp_group_red_doubles(&gf), sizeof(double));
    float *stats0 = XMALLOC(t->n_stat * sizeof(float) + 4), *gfull = XALLOC_FLOATS(t->n_params);
    float *stats_full = XMALLOC(t->n_stat * sizeof(float) + 4);
    fill(stats0, t->n_stat, 0.5, 7);
    for (size_t i = 0; i < t->n_stat; i++) stats0[i] = fabsf(stats0[i]);
    // the full batch on one rank
    memcpy(m.stats, stats0, t->n_stat * sizeof(float));
    memset(gfull, 0, t->n_params * sizeof(float));
    mlp_group_forward(&gf, t, m.params, m.stats, xf, rf, grf, 1, &bn, red, one);
    for (int k = 0; k < G; k++) memcpy(outf[k], mlp_out(gf.m[k], &cf[k]), (size_t)rf[k] * gf.m[k]->dims[gf.m[k]->n_dense] * sizeof(float));
    mlp_group_backward(&gf, t, m.params, gfull, df, dxf, &bn, red, one);
    memcpy(stats_full, m.stats, t->n_stat * sizeof(float));
    // this rank's rows, the group across ranks
    memcpy(m.stats, stats0, t->n_stat * sizeof(float));
    memset(m.grads, 0, t->n_params * sizeof(float));
    const long calls0 = w->calls_bn;
    mlp_group_forward(&gl, t, m.params, m.stats, xl, rl, grf, 1, &bn, red, w);
    const long calls_fwd = w->calls_bn - calls0;
    for (int k = 0; k < G; k++) memcpy(outl[k], mlp_out(gl.m[k], &cl[k]), (size_t)rl[k] * gl.m[k]->dims[gl.m[k]->n_dense] * sizeof(float));
    mlp_group_backward(&gl, t, m.params, m.grads, dl, dxl, &bn, red, w);
    const long calls_all = w->calls_bn - calls0;
    float *glocal = XALLOC_FLOATS(t->n_params), *stats_grp = XMALLOC(t->n_stat * sizeof(float) + 4);
    memcpy(glocal, m.grads, t->n_params * sizeof(float));
    memcpy(stats_grp, m.stats, t->n_stat * sizeof(float));
    comm_allreduce_sum_f32(w, m.grads, t->n_params);
    double e = 0.0;
    for (int k = 0; k < G; k++) {
        const int in = gl.m[k]->dims[0], out = gl.m[k]->dims[gl.m[k]->n_dense], r0 = s * h->gen_codes[k];
        const double e1 = rel_diff(outl[k], outf[k] + (size_t)r0 * out, (size_t)rl[k] * out);
        const double e2 = rel_diff(dxl[k], dxf[k] + (size_t)r0 * in, (size_t)rl[k] * in);
        e = fmax(e, fmax(e1, e2));
    }
    e = fmax(e, fmax(rel_diff(m.grads, gfull, t->n_params), rel_diff(m.stats, stats_full, t->n_stat)));
    CHECK(e <= 1e-5, "generators of depths 1, 2, 1, 3 as one group, %d rows as %d on this rank: outputs, input "
          "grads, parameter grads, running stats max rel. diff %.1e (limit 1e-5)", samples, n, e);
    CHECK(calls_fwd == 3 && calls_all == 6, "the group made %ld + %ld batch-norm all-reduces (expected 3 + 3: one "
          "per level with a batch norm)", calls_fwd, calls_all - calls_fwd);
    // each MLP alone on the same rows and ranks: the same bits
    memcpy(m.stats, stats0, t->n_stat * sizeof(float));
    memset(m.grads, 0, t->n_params * sizeof(float));
    int same = 1;
    for (int k = 0; k < G; k++) {
        const MlpArch *a = gl.m[k];
        mlp_forward(a, t, m.params, m.stats, &ca[k], xl[k], rl[k], grf[k], 1, &bn, w);
        same &= same_bits(mlp_out(a, &ca[k]), outl[k], (size_t)rl[k] * a->dims[a->n_dense]);
        mlp_backward(a, t, m.params, m.grads, &ca[k], dl[k], dxa[k], &bn, w);
        same &= same_bits(dxa[k], dxl[k], (size_t)rl[k] * a->dims[0]);
    }
    same &= same_bits(m.grads, glocal, t->n_params) && same_bits(m.stats, stats_grp, t->n_stat);
    CHECK(same, "the group equals each generator run alone (mlp_forward/mlp_backward), bit for bit: outputs, "
          "input grads, local parameter grads, running stats");
    for (int k = 0; k < G; k++) {
        mlp_cache_free(&cf[k]); mlp_cache_free(&cl[k]); mlp_cache_free(&ca[k]);
        free(x[k]); free(dout[k]); free(dxf[k]); free(dxl[k]); free(dxa[k]); free(outf[k]); free(outl[k]);
    }
    free(red); free(stats0); free(gfull); free(stats_full); free(glocal); free(stats_grp);
    model_free(&m);
}

// ---------------------------------------------------------------- batch-norm collectives of a step

static int hidden_levels(const MlpArch *a) { return a->n_dense - 1; }

// One training step of the paper job: 2 x (extractor hidden levels + deepest generator's) batch-norm
// all-reduces (8; 20 when each generator made its own).
static void test_step_bn_calls(Comm *w) {
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/mnist.json");
    job_validate(&job);
    Mnist data;
    mnist_synthetic(&data, 2000, 100);
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, w, &data);
    int deepest = 0, per_gen = 0;
    for (int l = 0; l < m.harch.n_gens; l++) {
        const int hl = hidden_levels(&m.harch.gens[l]);
        if (hl > deepest) deepest = hl;
        per_gen += hl;
    }
    const long expect = 2L * (hidden_levels(&m.harch.extractor) + deepest);
    StepStats st;
    const long c0 = w->calls_bn;
    trainer_step(&tr, &st);
    const long got = w->calls_bn - c0;
    CHECK(got == expect && expect == 8, "one training step of the paper job on %d rank(s): %ld batch-norm "
          "all-reduces (expected 2 x (%d extractor + %d generator levels) = %ld; per generator it was %d)",
          w->size, got, hidden_levels(&m.harch.extractor), deepest, expect,
          2 * (hidden_levels(&m.harch.extractor) + per_gen));
    trainer_free(&tr);
    model_free(&m);
    mnist_free(&data);
}

// ---------------------------------------------------------------- entropy

static void test_entropy(Comm *w, Comm *one, Distance dist) {
    enum { N = 13, D = 40 };
    float *all = XALLOC_FLOATS((size_t)N * D), *grad_full = XALLOC_FLOATS((size_t)N * D);
    fill(all, (size_t)N * D, 1.0, 77 + dist);
    memcpy(all + 5 * D, all + 2 * D, D * sizeof(float)); // a tie: samples 2 and 5 coincide ...
    all[5 * D] += 0.01f;                                // ... almost
    memset(grad_full, 0, (size_t)N * D * sizeof(float));
    EntropyWork ef, el;
    entropy_work_init(&ef, N);
    entropy_work_init(&el, N);
    const double H_full = entropy_estimate(one, &ef, all, N, D, 0, N, dist, 8, -1.0f, grad_full);
    const int s = comm_shard_start(N, w->rank, w->size), n = comm_shard_start(N, w->rank + 1, w->size) - s;
    float *grad = XALLOC_FLOATS((size_t)n * D + 1);
    memset(grad, 0, ((size_t)n * D + 1) * sizeof(float));
    const double H = entropy_estimate(w, &el, all, N, D, s, n, dist, 8, -1.0f, grad);
    const double e_g = rel_diff(grad, grad_full + (size_t)s * D, (size_t)n * D);
    int nn_same = 1;
    for (int i = 0; i < N; i++) nn_same &= el.nn[i] == ef.nn[i] && el.eps[i] == ef.eps[i];
    CHECK(fabs(H - H_full) <= 1e-12 * fabs(H_full) && e_g <= 1e-6 && nn_same,
          "entropy (%s) of %d samples, %d on this rank: H %.9f vs %.9f, gradient max rel. diff %.1e, "
          "neighbours and distances gathered on every rank", dist == DIST_L1 ? "L1" : "L2", N, n, H, H_full, e_g);
    // validation form: no gradient
    const double H2 = entropy_estimate(w, &el, all, N, D, s, n, dist, 8, 0.0f, NULL);
    CHECK(H2 == H, "entropy without gradient (validation) gives the same value");
    entropy_work_free(&ef);
    entropy_work_free(&el);
    free(all); free(grad_full); free(grad);
}

// ---------------------------------------------------------------- failure modes

static int check_same_fail(Comm *w) {
    float buf[1000];
    fill(buf, 1000, 1.0, 3);
    if (w->rank == w->size - 1) buf[500] = nextafterf(buf[500], 2.0f); // one ulp on the last rank
    comm_check_same(w, buf, 1000, "test buffer");
    printf("FAIL: comm_check_same returned on rank %d although the last rank differs\n", w->rank);
    return 3;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--abort-before-init")) comm_abort(7);
    Comm world;
    comm_init(&world, &argc, &argv);
    g_rank = world.rank;
    if (argc > 1 && !strcmp(argv[1], "--check-same-fail")) return check_same_fail(&world);
    if (argc > 1 && !strcmp(argv[1], "--bad-root")) {
        int v = 1;
        comm_bcast(&world, &v, sizeof(v), world.size + 5);
        printf("FAIL: comm_bcast with root %d returned on rank %d\n", world.size + 5, world.rank);
        return 3;
    }
    if (argc > 1 && !strcmp(argv[1], "--all-fail"))
        HT_FATAL("the same failure on every rank (%d ranks)", world.size);
    if (argc > 1 && !strcmp(argv[1], "--one-rank-fails")) {
        HT_CHECK(world.rank != 1, "a failure on rank 1 only");
        comm_barrier(&world); // the other ranks wait here until the abort ends them
        printf("FAIL: rank %d passed the barrier although rank 1 failed\n", world.rank);
        return 3;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: mpi_units [--check-same-fail | --bad-root | --abort-before-init | "
                "--all-fail | --one-rank-fails]\n");
        return 2;
    }
    HT_CHECK(world.size <= 64, "mpi_units: at most 64 ranks");
    if (world.rank == 0) printf("mpi_units: %d rank(s), comm implementation '%s'\n", world.size, world.impl);
    Comm one = single_comm();
    test_collectives(&world);
    test_bn(&world, &one);
    if (world.rank == 0) printf("generators as one group; batch-norm collectives of a training step\n");
    test_group(&world, &one);
    test_step_bn_calls(&world);
    if (world.rank == 0) printf("entropy across %d rank(s) == one rank\n", world.size);
    test_entropy(&world, &one, DIST_L1);
    test_entropy(&world, &one, DIST_L2);
    // Every rank learns whether any rank failed, so all exit with the same status.
    const int any_failed = comm_allreduce_max_int(&world, g_failed > 0);
    if (world.rank == 0)
        printf("mpi_units: %d checks passed on rank 0, %s\n", g_passed,
               any_failed ? "FAILURES (see above)" : "no failures on any rank");
    comm_finalize(&world);
    return any_failed || g_passed == 0 ? 1 : 0;
}
