// test_cuda_step: the whole training step on the GPU (cuda/train_cuda.cu) against the CPU trainer
// (src/train.c): the same job, the same initial parameters, the same data, 5 steps on each side.
//
// Jobs: jobs/tiny.json with L1 and with L2 entropy (batch 8), and the paper job (jobs/mnist.json:
// batch 32, 32 images per network, 20,018 weights, 633,640 parameters; validation reduced to 32
// networks x 500 images to keep the CPU side short). Data: deterministic synthetic MNIST-shaped
// images (or the real files when $HYPERTRAIN_TEST_DATA names a directory that holds them).
//
// Compared, with these budgets (float32 GEMMs in a different summation order are the only source
// of difference; see docs/cuda.md):
//   validation at step 0 (identical parameters): mean accuracy |d| <= 1e-3 + 1/images, entropy
//     rtol 1e-6, mean NLL rtol 1e-5, majority / mean-probability accuracy |d| <= 2/images
//   every step: the nearest neighbours chosen by the entropy (must agree unless the two candidate
//     distances are within 1e-5 relative: a legitimate tie; the run is then repeated with the next
//     seed, up to 3 seeds, and reported as inconclusive if every seed ties)
//   lockstep (the GPU's state is set to the CPU's before each of the 5 steps, so every step is
//     compared on its own): loss and cross-entropy rtol 1e-5, entropy rtol 1e-6, accuracy
//     |d| <= 2/(batch x images), gradient norm rtol 1e-4; after each step, per parameter tensor
//     ||p_gpu - p_cpu|| <= 1e-2 ||update||, Adam moments rel-L2 <= 1e-2, batch-norm statistics 1e-3
//   free-running (5 steps from the same start, as a user would run them): step 1 as lockstep; then
//     loss rtol 2e-3, cross-entropy 1e-3, entropy 1e-4, accuracy |d| <= 8/(batch x images),
//     gradient norm 5e-2; after 5 steps parameters within 0.3 of the distance travelled, Adam
//     moments 0.5, statistics 1e-2. Trajectories of this ReLU/max-pool/L1 model drift apart from
//     rounding alone (see FREE below), so these budgets catch a wrong step, not rounding.
// The tiny jobs run twice, with the step captured in a CUDA graph and with plain launches (the
// fallback, HT_CUDA_GRAPH=0); the paper job runs with the graph (the default). Each run checks that
// the graph was built once and replayed once per step (and, in the emulation, that the emulator
// replayed it), or not used at all.
// Validation accumulated on the device equals the host accumulation of the same probabilities
// (cuda_trainer_validate_host): every count exactly, the NLL within the summation-order bound.
// Queued steps: a step that diverges while later steps are already queued is reported as the first
// bad step, and neither its update nor a later one is applied (the parameters and Adam moments are
// bit for bit those after the last good step); the process then ends in "training diverged at
// step 2" (a child process; --diverge-queued gpu|cpu runs it alone).
// A stream capture rejects a host synchronization (on a GPU and in the emulation).
// HT_GPU_TEST_QUICK=1 runs the tiny jobs only (for the slow CPU emulation, tests/gpu/emu/).
// cuda_math = tf32: 3 lockstep steps against the CPU with TF32 budgets, each also run on an FP32 GPU
// trainer that it must differ from (tf32_lockstep); --tf32 tiny|paper runs only that, for one job.
//
// Prints "SKIPPED (no GPU)" and exits 0 without a GPU; exits non-zero on any failure.
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.cuh"

extern "C" {
#include "data.h"
#include "entropy.h"
#include "model.h"
#include "rng.h"
#include "train.h"
}
#include "cuda_backend.h"
#include "gpu_check.cuh"
#include "kernels.cuh"
#include "mlp_cuda.cuh"
#ifdef HT_CUDA_EMU
#include <nccl.h> // the emulation's one-rank NCCL: emu_nccl_collectives
#endif

#define STEPS 5

static Comm g_comm;

// MNIST-shaped synthetic data (as tests/test_train.c): smooth blobs, random labels.
static void synthetic_mnist(Mnist *d, int n_train, int n_val) {
    memset(d, 0, sizeof(*d));
    Dataset *sets[3] = {&d->train, &d->val, &d->test};
    int sizes[3] = {n_train, n_val, 10};
    for (int s = 0; s < 3; s++) {
        Dataset *ds = sets[s];
        ds->n = sizes[s]; ds->h = 28; ds->w = 28;
        ds->images = XALLOC_FLOATS((size_t)ds->n * 784);
        ds->labels = (uint8_t *)XMALLOC((size_t)ds->n);
        for (int i = 0; i < ds->n; i++) {
            Philox4 r = philox4x32(5, RNG_STREAM_TEST, (uint32_t)s, (uint32_t)i, 0);
            ds->labels[i] = (uint8_t)(r.v[0] % 10);
            const double cx = 6 + 16 * rng_u01(r.v[1]), cy = 6 + 16 * rng_u01(r.v[2]);
            const double rad = 2 + 4 * rng_u01(r.v[3]);
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++) {
                    double q = ((x - cx) * (x - cx) + (y - cy) * (y - cy)) / (rad * rad);
                    ds->images[(size_t)i * 784 + y * 28 + x] = (float)exp(-q) * (0.5f + 0.05f * ds->labels[i]);
                }
        }
    }
}

static void free_mnist(Mnist *d) {
    Dataset *sets[3] = {&d->train, &d->val, &d->test};
    for (int s = 0; s < 3; s++) { free(sets[s]->images); free(sets[s]->labels); }
}

static void compare_val(const char *what, const ValStats *g, const ValStats *c) {
    char name[320];
    const double img = 1.0 / c->n_images;
    snprintf(name, sizeof(name), "%s: validation mean accuracy", what);
    gc_scalar(name, g->mean_acc, c->mean_acc, 0.0, 1e-3 + img);
    snprintf(name, sizeof(name), "%s: validation entropy", what);
    gc_scalar(name, g->entropy, c->entropy, 1e-6, 0.0);
    snprintf(name, sizeof(name), "%s: validation mean NLL", what);
    gc_scalar(name, g->mean_nll, c->mean_nll, 1e-5, 0.0);
    snprintf(name, sizeof(name), "%s: validation majority-vote accuracy", what);
    gc_scalar(name, g->majority_acc, c->majority_acc, 0.0, 2 * img);
    snprintf(name, sizeof(name), "%s: validation mean-probability accuracy", what);
    gc_scalar(name, g->mean_prob_acc, c->mean_prob_acc, 0.0, 2 * img);
}

// Device-accumulated validation (g) against the host accumulation of the same probabilities (h):
// both see bit-identical probabilities (the same generated networks and forward calls), so every
// count and every float sum is accumulated in the same order: equal. The NLL sums the same
// n = networks x images double terms -log(p + 1e-30) in a different order (per network on the
// device, then over networks; one running sum on the host), and the device's double log may differ
// from glibc's by 1 ulp per term: |error| <= 2 n u sum|t| with u = 2^-53 (recursive summation
// bound for both sums, the terms being >= -1e-7), so rtol 2 n 2^-53 (1.8e-12 for 32 x 500).
static void compare_val_device_host(const char *what, const ValStats *g, const double *g_acc, const ValStats *h,
                                    const double *h_acc) {
    char name[512];
    snprintf(name, sizeof(name), "%s: device validation == host validation (counts, accuracies, ensembles, "
             "entropy)", what);
    int same = g->n_nets == h->n_nets && g->n_images == h->n_images && g->mean_acc == h->mean_acc &&
               g->std_acc == h->std_acc && g->min_acc == h->min_acc && g->max_acc == h->max_acc &&
               g->majority_acc == h->majority_acc && g->mean_prob_acc == h->mean_prob_acc && g->entropy == h->entropy;
    for (int b = 0; b < VAL_HIST_BINS; b++) same &= g->hist[b] == h->hist[b];
    int differ = 0;
    for (int k = 0; k < g->n_nets; k++) differ += g_acc[k] != h_acc[k];
    T_CHECK(&g_ts, same && differ == 0, "%s (%d networks x %d images; %d per-network accuracies differ; majority "
            "%.6f vs %.6f, mean-prob %.6f vs %.6f)", name, g->n_nets, g->n_images, differ, g->majority_acc,
            h->majority_acc, g->mean_prob_acc, h->mean_prob_acc);
    const double n = (double)g->n_nets * g->n_images;
    snprintf(name, sizeof(name), "%s: device validation NLL vs host", what);
    gc_scalar(name, g->mean_nll, h->mean_nll, 2.0 * n * ldexp(1.0, -53), 0.0);
}

enum { RUN_PASS = 0, RUN_TIE = 1 };

typedef struct {
    double loss, ce, entropy, acc_images, grad_norm; // step statistics (acc: images of difference)
    double params, adam, stats;                      // state after the step(s)
    double flips;                                    // Adam sign flips allowed (fraction per tensor; 0: not separated)
    double flip_tol;                                 // a flip: both |m| <= flip_tol max|m| (0: 1e-3)
} Budget;

// Lockstep: identical state before every step, so each step is compared on its own. Why these:
//   loss, cross-entropy 1e-5: sums of B x images per-image losses formed in double from float
//     logits whose GEMMs differ by ~16 sqrt(K) u ~ 1e-5 relative at most (K = 800); entropy 1e-6:
//     double distances of the same gauge-fixed weights (one GEMM chain less); accuracy 2 images:
//     two near-tied logits may rank differently; gradient norm 1e-4: 10x the loss budget, the
//     backward pass doubles the GEMM chain and a ReLU/max-pool flip moves one layer gradient of
//     one network by ~1/25,088.
//   parameters 1e-2 of the update, per tensor, with Adam sign flips counted apart (flips): Adam's
//     first step moves every parameter by lr x g / (|g| + eps) = +-lr whatever |g|, so a gradient
//     element within rounding of zero whose sign differs between cuBLAS and OpenBLAS moves by 2 lr
//     (a relative 2/sqrt(n) of a tensor's update: 0.2 for n = 100). Such a flip is legitimate only
//     where |m| <= 1e-3 max|m| of the tensor on both sides (m carries g); at most 0.1% of a
//     tensor's elements (and 2) may flip; every other element stays within the 1e-2 budget.
//   Adam moments rel-L2 1e-2 (m ~ g, v ~ g^2: the gradient budget x 100 headroom for the flips'
//     small elements), batch-norm statistics 1e-3 (means and variances of float GEMM outputs).
static const Budget LOCKSTEP = {1e-5, 1e-5, 1e-6, 2, 1e-4, 1e-2, 1e-2, 1e-3, 1e-3};
// Free-running: 5 steps from the same start. Rounding differences (~1e-7) flip a few ReLU, max-pool
// and L1-sign decisions from step 2 on, and each flip moves one network's layer gradient by about
// 1/25,088; the trajectories drift apart (measured in the CPU emulation of the paper job: parameters
// 1-8% of the distance travelled, gradient norm 0.7%, loss 3.5e-4 after 5 steps). These budgets
// catch a wrong step, not rounding.
static const Budget FREE = {2e-3, 1e-3, 1e-4, 8, 5e-2, 0.3, 0.5, 1e-2, 0};

// ||a - b|| / ||ref_a - ref_b|| over n floats (ref_b NULL: ||ref_a||)
static double rel_diff(const float *a, const float *b, const float *ref_a, const float *ref_b, size_t n) {
    double d = 0.0, s = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = (double)a[i] - b[i], r = (double)ref_a[i] - (ref_b ? ref_b[i] : 0.0f);
        d += e * e;
        s += r * r;
    }
    return s > 0.0 ? sqrt(d / s) : sqrt(d);
}

// Parameters (per tensor, relative to the distance travelled from `from`), Adam moments and
// batch-norm statistics of the two models.
static void compare_state(const char *what, const Model *mg, const Model *mc, const float *from, const Budget *bud) {
    const ParamTable *t = &mc->harch.table;
    const size_t np = t->n_params;
    for (int i = 0; i < t->n_views; i++) {
        const ParamView *v = &t->views[i];
        const size_t o = v->offset, n = v->size;
        // Adam sign flips (see LOCKSTEP): m of opposite signs, both within 1e-3 of the tensor's max|m|.
        double mmax = 0.0;
        for (size_t k = 0; k < n; k++) mmax = fmax(mmax, fabs((double)mc->adam_m[o + k]));
        size_t flips = 0;
        double d = 0.0, s = 0.0;
        for (size_t k = 0; k < n; k++) {
            const double a = mg->adam_m[o + k], b = mc->adam_m[o + k];
            if (bud->flips > 0 && (a > 0) - (a < 0) != (b > 0) - (b < 0) &&
                fmax(fabs(a), fabs(b)) <= (bud->flip_tol > 0 ? bud->flip_tol : 1e-3) * mmax) {
                flips++;
                continue;
            }
            const double e = (double)mg->params[o + k] - mc->params[o + k], r = (double)mc->params[o + k] - from[o + k];
            d += e * e;
            s += r * r;
        }
        const double e = s > 0.0 ? sqrt(d / s) : sqrt(d);
        const double allowed = fmax(2.0, floor(bud->flips * (double)n));
        if (bud->flips > 0)
            T_CHECK(&g_ts, e <= bud->params && flips <= allowed,
                    "%s: %s: |gpu - cpu| / |cpu - start| = %.3g without the %zu Adam sign flip(s) (allowed %.0f) at "
                    "%.1f%% of budget [%.0e, flips %.1f%%]", what, v->name, e, flips, allowed,
                    100 * fmax(e / bud->params, flips / allowed), bud->params, 100 * bud->flips);
        else
            T_CHECK(&g_ts, e <= bud->params, "%s: %s: |gpu - cpu| / |cpu - start| = %.3g at %.1f%% of budget [%.0e]",
                    what, v->name, e, 100 * e / bud->params, bud->params);
    }
    const double em = rel_diff(mg->adam_m, mc->adam_m, mc->adam_m, NULL, np);
    const double ev = rel_diff(mg->adam_v, mc->adam_v, mc->adam_v, NULL, np);
    const double es = rel_diff(mg->stats, mc->stats, mc->stats, NULL, t->n_stat);
    T_CHECK(&g_ts, em <= bud->adam, "%s: Adam m rel-L2 %.3g at %.1f%% of budget [%.0e]", what, em, 100 * em / bud->adam,
            bud->adam);
    T_CHECK(&g_ts, ev <= bud->adam, "%s: Adam v rel-L2 %.3g at %.1f%% of budget [%.0e]", what, ev, 100 * ev / bud->adam,
            bud->adam);
    T_CHECK(&g_ts, es <= bud->stats, "%s: batch-norm running statistics rel-L2 %.3g at %.1f%% of budget [%.0e]", what,
            es, 100 * es / bud->stats, bud->stats);
}

// 0: the neighbours agree; 1: they differ only where two candidates are within 1e-5 (a tie);
// 2: they differ.
static int compare_neighbours(const char *what, int s, const Trainer *tc, CudaTrainer *ct, const Job *job) {
    const int B = job->batch;
    const size_t W = tc->m->tarch.n_weights;
    int *nn = (int *)XMALLOC(sizeof(int) * (size_t)B);
    float *eps = XALLOC_FLOATS((size_t)B);
    cuda_trainer_last_neighbours(ct, nn, eps, B);
    int differ = 0;
    for (int i = 0; i < B; i++) {
        if (nn[i] == tc->ew.nn[i]) continue;
        const float *x = tc->all + (size_t)i * W; // the CPU's gauge-fixed samples
        const double dc = entropy_distance(x, tc->all + (size_t)tc->ew.nn[i] * W, W, job->distance);
        const double dg = entropy_distance(x, tc->all + (size_t)nn[i] * W, W, job->distance);
        const double gap = fabs(dg - dc) / fmax(dc, 1e-30);
        // How far the two sides' samples are apart at this pair: the GPU's own distance to its
        // neighbour against the CPU's distance between the same two samples (~1e-7 in lockstep;
        // in free-running the trajectories drift apart, 1e-4 and more after a few steps). Two
        // candidates closer than twice that (or 1e-5) cannot be ordered: a legitimate tie.
        const double drift = fabs((double)eps[i] - dg) / fmax(dg, 1e-30);
        const double tie = fmax(1e-5, 2.0 * drift);
        printf("  %s step %d: sample %d: CPU neighbour %d (distance %.9g), GPU neighbour %d (CPU distance %.9g), "
               "relative gap %.3g (tie below %.3g: the samples' drift at this pair %.3g)\n", what, s, i, tc->ew.nn[i],
               dc, nn[i], dg, gap, tie, drift);
        differ = gap <= tie ? (differ ? differ : 1) : 2;
    }
    free(nn);
    free(eps);
    return differ;
}

// One job on both sides, free-running or in lockstep; RUN_TIE when a legitimate nearest-neighbour
// tie made the two sides take different (both correct) branches (failures are counted in g_ts).
static int run_pair(const char *what, const Job *job, const Mnist *data, int lockstep, int graph) {
    const Budget *bud = lockstep ? &LOCKSTEP : &FREE;
    Model mc, mg;
    model_init(&mc, job);
    model_init(&mg, job);
    const ParamTable *t = &mc.harch.table;
    const size_t np = t->n_params;
    float *start = XALLOC_FLOATS(np);
    memcpy(start, mc.params, np * sizeof(float));
    Trainer tc, tg;
    trainer_init(&tc, &mc, &g_comm, data);
    trainer_init(&tg, &mg, &g_comm, data);
    CudaTrainer *ct = cuda_trainer_create(&tg);
    graph = cuda_trainer_set_graph(ct, graph); // off under HT_CUDA_SYNC=1
#ifdef HT_CUDA_EMU
    const long emu_launches0 = emu_graph_launches(), emu_nccl0 = emu_nccl_collectives();
#endif
    char name[256];
    const char *mode = lockstep ? (graph ? "lockstep, graph" : "lockstep, plain launches")
                                : (graph ? "free-running, graph" : "free-running, plain launches");
    if (!lockstep) {
        ValStats vc, vg, vh;
        trainer_validate(&tc, &vc);
        cuda_trainer_validate(ct, &vg);
        double *g_acc = (double *)XMALLOC(sizeof(double) * (size_t)vg.n_nets);
        memcpy(g_acc, vg.net_acc, sizeof(double) * (size_t)vg.n_nets); // net_acc is the trainer's buffer
        cuda_trainer_validate_host(ct, &vh);
        snprintf(name, sizeof(name), "%s, step 0", what);
        compare_val(name, &vg, &vc);
        compare_val_device_host(name, &vg, g_acc, &vh, vh.net_acc);
        free(g_acc);
    }
    const int B = job->batch, ips = job->images_per_sample;
    int result = RUN_PASS;
    for (int s = 1; s <= STEPS && result == RUN_PASS; s++) {
        if (lockstep) { // the GPU starts this step from the CPU's state
            memcpy(mg.flat, mc.flat, 4 * np * sizeof(float));
            memcpy(mg.stats, mc.stats, t->n_stat * sizeof(float));
            mg.step = mc.step;
            cuda_trainer_from_host(ct);
            memcpy(start, mc.params, np * sizeof(float));
        }
        StepStats sc, sg;
        const double t0 = ht_now();
        trainer_step(&tc, &sc);
        const double t1 = ht_now();
        cuda_trainer_step(ct, &sg);
        const double t2 = ht_now();
        const int differ = compare_neighbours(what, s, &tc, ct, job);
        snprintf(name, sizeof(name), "%s, %s step %d: nearest neighbours agree", what, mode, s);
        if (differ == 1) { printf("  TIE %s: no (a legitimate tie); repeating with the next seed\n", name); result = RUN_TIE; break; }
        T_CHECK(&g_ts, differ == 0, "%s", name);
        printf("  %s, %s step %d: CPU %.1f ms, GPU %.1f ms (the first steps include warm-up)\n", what, mode, s,
               1e3 * (t1 - t0), 1e3 * (t2 - t1));
        const double bl = s == 1 ? LOCKSTEP.loss : bud->loss, bc = s == 1 ? LOCKSTEP.ce : bud->ce;
        const double be = s == 1 ? LOCKSTEP.entropy : bud->entropy, bg = s == 1 ? LOCKSTEP.grad_norm : bud->grad_norm;
        const double ba = s == 1 ? LOCKSTEP.acc_images : bud->acc_images;
        snprintf(name, sizeof(name), "%s, %s step %d: loss", what, mode, s);
        gc_scalar(name, sg.loss, sc.loss, bl, 0.0);
        snprintf(name, sizeof(name), "%s, %s step %d: cross-entropy", what, mode, s);
        gc_scalar(name, sg.ce, sc.ce, bc, 0.0);
        snprintf(name, sizeof(name), "%s, %s step %d: entropy", what, mode, s);
        gc_scalar(name, sg.entropy, sc.entropy, be, 0.0);
        snprintf(name, sizeof(name), "%s, %s step %d: accuracy", what, mode, s);
        gc_scalar(name, sg.acc, sc.acc, 0.0, ba / ((double)B * ips));
        snprintf(name, sizeof(name), "%s, %s step %d: gradient norm", what, mode, s);
        gc_scalar(name, sg.grad_norm, sc.grad_norm, bg, 0.0);
        if (lockstep) {
            cuda_trainer_to_host(ct);
            snprintf(name, sizeof(name), "%s, lockstep step %d", what, s);
            compare_state(name, &mg, &mc, start, bud);
        }
    }
    if (result == RUN_PASS) { // the graph was built once and replayed once per step, or never used
        CudaTrainerInfo info;
        cuda_trainer_info(ct, &info);
        const long want = graph ? STEPS : 0;
        T_CHECK(&g_ts, info.graph_builds == (graph ? 1 : 0) && info.graph_launches == want &&
                info.steps_queued == STEPS && (!graph || info.graph_nodes > 0),
                "%s, %s: graph built %ld time(s), replayed %ld time(s) (expected %d and %ld), %ld nodes", what, mode,
                info.graph_builds, info.graph_launches, graph ? 1 : 0, want, info.graph_nodes);
#ifdef HT_CUDA_EMU
        T_CHECK(&g_ts, emu_graph_launches() - emu_launches0 == want,
                "%s, %s: the emulator replayed %ld recorded graph(s) (expected %ld)", what, mode,
                emu_graph_launches() - emu_launches0, want);
#endif
    }
    if (result == RUN_PASS && !lockstep) {
        cuda_trainer_to_host(ct);
        snprintf(name, sizeof(name), "%s, free-running, after %d steps", what, STEPS);
        compare_state(name, &mg, &mc, start, bud);
        T_CHECK(&g_ts, mg.step == mc.step && mc.step == STEPS, "%s: both sides at step %lld", what, (long long)mc.step);
    }
    // The captured step's collectives (issued once by the host, replayed every step): batch-norm
    // all-reduces 2 x (extractor hidden levels + deepest generator's) with HT_CUDA_GENS=grouped,
    // 2 x (extractor + every generator's) split; with HYPERTRAIN_COMM=nccl in lockstep (no
    // validation) the whole step: those, 1 gradient all-reduce, 1 loss-sum all-reduce, the
    // all-gather of the generated weights and the 2 small ones of the entropy's neighbours and
    // distances, as the CPU step.
    const char *cm0 = getenv("HYPERTRAIN_COMM");
    if (result == RUN_PASS && graph) {
        CudaTrainerInfo info;
        cuda_trainer_info(ct, &info);
        const CudaGensImpl gi = cuda_gens_impl_from_env();
        const MlpArch *ex = &mg.harch.extractor;
        long deepest = 0, every = 0;
        for (int l = 0; l < mg.harch.n_gens; l++) {
            const long hl = mg.harch.gens[l].n_dense - 1;
            deepest = hl > deepest ? hl : deepest;
            every += hl;
        }
        const long want_bn = 2 * (ex->n_dense - 1 + (gi == CUDA_GENS_GROUPED ? deepest : every));
        T_CHECK(&g_ts, info.bn_allreduces == want_bn, "%s, %s: the captured step issues %ld batch-norm all-reduces "
                "(HT_CUDA_GENS=%s: expected %ld)", what, mode, info.bn_allreduces, cuda_gens_impl_name(gi), want_bn);
        if (cm0 && !strcmp(cm0, "nccl") && lockstep) {
            const long want = want_bn + 5;
            T_CHECK(&g_ts, cuda_trainer_nccl_calls(ct) == want, "%s, %s: the captured step issues %ld collectives "
                    "through NCCL (expected %ld = %ld batch-norm + gradient + loss sums + 3 all-gathers)", what, mode,
                    cuda_trainer_nccl_calls(ct), want, want_bn);
#ifdef HT_CUDA_EMU
            T_CHECK(&g_ts, emu_nccl_collectives() - emu_nccl0 == STEPS * want, "%s, %s: the emulated NCCL ran %ld "
                    "collectives in %d replays (expected %ld)", what, mode, emu_nccl_collectives() - emu_nccl0, STEPS,
                    STEPS * want);
#endif
        }
    }
    // HYPERTRAIN_COMM=nccl: every collective of every step must have gone through NCCL (one rank:
    // the in-place all-gathers, the batch-norm and gradient all-reduces, the stream/event hand-offs).
    const char *cm = getenv("HYPERTRAIN_COMM");
    const int forced = cm && !strcmp(cm, "nccl");
    snprintf(name, sizeof(name), "%s, %s: collectives through NCCL: %ld (%s)", what, mode,
             cuda_trainer_nccl_calls(ct), forced ? "HYPERTRAIN_COMM=nccl: expected > 0" : "one rank: expected 0");
    T_CHECK(&g_ts, forced ? cuda_trainer_nccl_calls(ct) > 0 : cuda_trainer_nccl_calls(ct) == 0, "%s", name);
    free(start);
    cuda_trainer_destroy(ct);
    trainer_free(&tc);
    trainer_free(&tg);
    model_free(&mc);
    model_free(&mg);
    return result;
}

// graphs: 1 = with the CUDA graph only, 2 = with the graph and with plain launches.
static void run_config(const char *what, Job job, const Mnist *data, int graphs) {
    printf("%s: batch %d, %d images per network, %s entropy\n", what, job.batch, job.images_per_sample,
           job.distance == DIST_L1 ? "L1" : "L2");
    for (int graph = 1; graph >= 2 - graphs; graph--)
        for (int lockstep = 1; lockstep >= 0; lockstep--) {
            Job j = job;
            int attempt = 0;
            for (; attempt < 3; attempt++, j.seed++) {
                char name[160];
                snprintf(name, sizeof(name), "%s (seed %llu)", what, (unsigned long long)j.seed);
                if (run_pair(name, &j, data, lockstep, graph) == RUN_PASS) break;
            }
            T_CHECK(&g_ts, attempt < 3, "%s, %s, %s: %s", what, lockstep ? "lockstep" : "free-running",
                    graph ? "graph" : "plain launches",
                    attempt < 3 ? "completed" : "inconclusive: every seed hit a nearest-neighbour tie");
        }
}

// cuda_math = tf32 (the conv GEMMs on TF32 tensor cores, im2col path), lockstep against the CPU
// step. Budgets (docs/cuda.md, "TF32"): each conv GEMM output carries a TF32 error of up to
// (2 u_t + u_t^2) sum|a||b|, u_t = 2^-10, against 16 sqrt(K) u for FP32 (2^11/sqrt(K) times more:
// 72x at K = 800); measured rel-L2 2.3e-4..2.9e-4 per conv GEMM (test_cuda_conv). Hence 100x the
// FP32 lockstep budgets for loss, cross-entropy and gradient norm, accuracy 8 images (more
// near-tied logits flip), Adam moments rel-L2 5e-2 (measured in the emulation, paper job: m 4e-3 ..
// 1e-2, v 3e-3 .. 5e-3). Parameters: Adam's first steps move each parameter by about +-lr whatever
// |g|, so every gradient element that the TF32 noise (Adam m rel-L2 up to 1e-2 of the tensor)
// can turn over flips: flips are elements whose m differs in sign with both |m| <= 2e-2 max|m|,
// at most 2% of a tensor (measured: up to 0.4% with the FP32 threshold 1e-3); the other elements
// within 5e-2 of the update (measured up to 2.6e-2). The entropy and the batch-norm statistics
// depend only on the hypernetwork, which stays FP32: the FP32 budgets, unchanged.
static const Budget TF32_LOCKSTEP = {1e-3, 1e-3, 1e-6, 8, 1e-2, 5e-2, 5e-2, 1e-3, 2e-2, 2e-2};

// Three steps of `job` with cuda_math = tf32 in lockstep with the CPU (each from the CPU's state),
// and the same steps on an FP32 GPU trainer from the same state: the TF32 step must differ from
// the FP32 one (else TF32 was not applied) and stay within TF32_LOCKSTEP of the CPU.
static void tf32_lockstep(const char *what, Job job, const Mnist *data) {
    job.cuda_math = CUDA_MATH_TF32;
    Job jf = job;
    jf.cuda_math = CUDA_MATH_FP32;
    printf("%s: cuda_math tf32, lockstep against the CPU and an FP32 GPU trainer (both im2col)\n", what);
    const char *env = getenv("HT_CUDA_CONV");
    char *saved = env ? XSTRDUP(env) : NULL;
    setenv("HT_CUDA_CONV", "im2col", 1); // both GPU trainers on the same conv path (tf32 needs im2col)
    Model mc, mg, mf;
    model_init(&mc, &job);
    model_init(&mg, &job);
    model_init(&mf, &jf);
    const ParamTable *t = &mc.harch.table;
    const size_t np = t->n_params;
    float *start = XALLOC_FLOATS(np);
    Trainer tc, tg, tf;
    trainer_init(&tc, &mc, &g_comm, data);
    trainer_init(&tg, &mg, &g_comm, data);
    trainer_init(&tf, &mf, &g_comm, data);
    CudaTrainer *ct = cuda_trainer_create(&tg), *cf = cuda_trainer_create(&tf);
    if (saved) { setenv("HT_CUDA_CONV", saved, 1); free(saved); } else unsetenv("HT_CUDA_CONV");
    char name[256];
    for (int s = 1; s <= 3; s++) {
        memcpy(mg.flat, mc.flat, 4 * np * sizeof(float));
        memcpy(mg.stats, mc.stats, t->n_stat * sizeof(float));
        memcpy(mf.flat, mc.flat, 4 * np * sizeof(float));
        memcpy(mf.stats, mc.stats, t->n_stat * sizeof(float));
        mg.step = mf.step = mc.step;
        cuda_trainer_from_host(ct);
        cuda_trainer_from_host(cf);
        memcpy(start, mc.params, np * sizeof(float));
        StepStats sc, sg, sf;
        trainer_step(&tc, &sc);
#ifdef HT_CUDA_EMU
        const long n0 = emu_tf32_gemms();
#endif
        cuda_trainer_step(ct, &sg);
#ifdef HT_CUDA_EMU
        const long n1 = emu_tf32_gemms();
#endif
        cuda_trainer_step(cf, &sf);
#ifdef HT_CUDA_EMU
        T_CHECK(&g_ts, n1 > n0 && emu_tf32_gemms() == n1, "%s, step %d: TF32 GEMMs issued by the tf32 trainer %ld, "
                "by the FP32 trainer %ld (emulation)", what, s, n1 - n0, emu_tf32_gemms() - n1);
#endif
        const int differ = compare_neighbours(what, s, &tc, ct, &job);
        T_CHECK(&g_ts, differ != 2, "%s, tf32 lockstep step %d: nearest neighbours agree (or tie): the entropy "
                "does not see the conv math", what, s);
        T_CHECK(&g_ts, sg.ce != sf.ce && sg.grad_norm != sf.grad_norm, "%s, step %d: TF32 applied: cross-entropy "
                "%.12g (tf32) vs %.12g (fp32, the same state), gradient norm %.9g vs %.9g", what, s, sg.ce, sf.ce,
                sg.grad_norm, sf.grad_norm);
        const Budget *b = &TF32_LOCKSTEP;
        const int B = job.batch, ips = job.images_per_sample;
        snprintf(name, sizeof(name), "%s, tf32 lockstep step %d: loss", what, s);
        gc_scalar(name, sg.loss, sc.loss, b->loss, 0.0);
        snprintf(name, sizeof(name), "%s, tf32 lockstep step %d: cross-entropy", what, s);
        gc_scalar(name, sg.ce, sc.ce, b->ce, 0.0);
        snprintf(name, sizeof(name), "%s, tf32 lockstep step %d: entropy", what, s);
        gc_scalar(name, sg.entropy, sc.entropy, b->entropy, 0.0);
        snprintf(name, sizeof(name), "%s, tf32 lockstep step %d: accuracy", what, s);
        gc_scalar(name, sg.acc, sc.acc, 0.0, b->acc_images / ((double)B * ips));
        snprintf(name, sizeof(name), "%s, tf32 lockstep step %d: gradient norm", what, s);
        gc_scalar(name, sg.grad_norm, sc.grad_norm, b->grad_norm, 0.0);
        cuda_trainer_to_host(ct);
        snprintf(name, sizeof(name), "%s, tf32 lockstep step %d", what, s);
        compare_state(name, &mg, &mc, start, b);
    }
    free(start);
    cuda_trainer_destroy(ct);
    cuda_trainer_destroy(cf);
    trainer_free(&tc);
    trainer_free(&tg);
    trainer_free(&tf);
    model_free(&mc);
    model_free(&mg);
    model_free(&mf);
}

static void load_job(Job *job, const char *path) {
    job_defaults(job);
    if (path) job_load_file(job, path);
    job_validate(job);
}

// --inject-nan gpu|cpu: one step of the tiny job with a NaN in one weight of the hypernetwork's
// output layer, so that one generated weight of EVERY network is NaN: every pairwise distance is
// NaN and no nearest neighbour exists. The step must end the process in the CPU's "training
// diverged at step 1" error (tests/t_gpu_emu.sh and run-all.sh check the message and the exit
// status); returning from the step is a failure. `inf` instead of `nan` injects +Inf.
static int inject_nan(const char *side, const char *what, const Mnist *data) {
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    job_validate(&job);
    Model m;
    model_init(&m, &job);
    const ParamTable *t = &m.harch.table;
    const ParamView *last = &t->views[t->n_views - 1];
    // the first weight of the last tensor (the output layer's bias or weights)
    m.params[last->offset] = !strcmp(what, "inf") ? INFINITY : NAN;
    Trainer tr;
    trainer_init(&tr, &m, &g_comm, data);
    StepStats st;
    printf("injecting %s into %s (parameter 0 of tensor %s), one %s step; expected: \"training diverged\"\n",
           what, "the hypernetwork", last->name, side);
    fflush(stdout);
    if (!strcmp(side, "gpu")) {
        CudaTrainer *ct = cuda_trainer_create(&tr);
        cuda_trainer_step(ct, &st);
    } else {
        trainer_step(&tr, &st);
    }
    printf("FAIL: the step with a %s weight returned (loss %g, gradient norm %g) instead of ending the run\n", what,
           st.loss, st.grad_norm);
    return 1;
}

// The tiny job with lambda = 1 growing by 1e308 per step: step 1 (lambda 1) is finite, step 2
// (lambda 1e308) has an infinite loss, on both sides (the CPU's trainer_step and the GPU's device
// check), deterministically and without touching the data.
static Job diverging_job(void) {
    Job job;
    load_job(&job, "jobs/tiny.json");
    job.lambda = 1.0;
    job.lambda_growth = 1e308;
    return job;
}

// --diverge-queued gpu|cpu: three steps of diverging_job; the GPU queues all three before reading
// anything. Must end in "training diverged at step 2" (exit 1); returning is a failure.
static int diverge_queued(const char *side, const Mnist *data) {
    Job job = diverging_job();
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, &g_comm, data);
    StepStats st;
    memset(&st, 0, sizeof(st));
    if (!strcmp(side, "gpu")) {
        CudaTrainer *ct = cuda_trainer_create(&tr);
        for (int s = 0; s < 3; s++) cuda_trainer_step_queue(ct);
        cuda_trainer_step_stats(ct, &st);
    } else {
        for (int s = 0; s < 3; s++) trainer_step(&tr, &st);
    }
    printf("FAIL: three steps with lambda 1e308 from step 2 returned (loss %g) instead of ending the run\n", st.loss);
    return 1;
}

// In-process: the first bad step is reported, and the device state is bit for bit the state after
// step 1 (neither step 2's update nor the queued step 3's was applied); then the child process
// must end with the CPU's message for step 2.
static void queued_divergence(const Mnist *data, const char *self) {
    Job job = diverging_job();
    const int graphs[2] = {1, 0};
    for (int gi = 0; gi < 2; gi++) {
        const int graph = graphs[gi];
        Model ma, mb;
        model_init(&ma, &job);
        model_init(&mb, &job);
        const size_t np = ma.harch.table.n_params;
        Trainer ta, tb;
        trainer_init(&ta, &ma, &g_comm, data);
        trainer_init(&tb, &mb, &g_comm, data);
        CudaTrainer *ca = cuda_trainer_create(&ta), *cb = cuda_trainer_create(&tb);
        cuda_trainer_set_graph(ca, graph);
        const int graph_b = cuda_trainer_set_graph(cb, graph);
        StepStats last, bad;
        cuda_trainer_step_queue(ca); // the reference: step 1 alone
        const long long ka = cuda_trainer_poll(ca, &last, &bad);
        cuda_trainer_copy_to_host(ca);
        for (int s = 0; s < 3; s++) cuda_trainer_step_queue(cb); // steps 1, 2 (bad), 3 queued, nothing read
        const long long kb = cuda_trainer_poll(cb, &last, &bad);
        cuda_trainer_copy_to_host(cb);
        const char *mode = graph_b ? "graph" : "plain launches";
        T_CHECK(&g_ts, ka == 0, "queued divergence (%s): step 1 alone is finite (flag %lld)", mode, ka);
        T_CHECK(&g_ts, kb == 2 && !isfinite(bad.loss) && isfinite(bad.ce) && bad.lambda == 1e308,
                "queued divergence (%s): 3 steps queued, the first bad step reported is %lld (expected 2; its loss "
                "%g, cross-entropy %g, lambda %g)", mode, kb, bad.loss, bad.ce, bad.lambda);
        const int same_p = !memcmp(ma.params, mb.params, np * sizeof(float));
        const int same_m = !memcmp(ma.adam_m, mb.adam_m, np * sizeof(float));
        const int same_v = !memcmp(ma.adam_v, mb.adam_v, np * sizeof(float));
        Model m0; // step 1 itself did update (so the equality above is not vacuous)
        model_init(&m0, &job);
        const int moved = memcmp(m0.params, ma.params, np * sizeof(float)) != 0;
        model_free(&m0);
        T_CHECK(&g_ts, same_p && same_m && same_v && moved,
                "queued divergence (%s): parameters %s, Adam m %s, Adam v %s the state after step 1 (which moved "
                "the parameters: %s)", mode, same_p ? "==" : "!=", same_m ? "==" : "!=", same_v ? "==" : "!=",
                moved ? "yes" : "NO");
        cuda_trainer_destroy(ca);
        cuda_trainer_destroy(cb);
        trainer_free(&ta);
        trainer_free(&tb);
        model_free(&ma);
        model_free(&mb);
    }
    for (int side = 0; side < 2; side++) {
        const char *sd = side ? "cpu" : "gpu";
        char cmd[HT_PATH_MAX + 64], out[4096] = "";
        XSNPRINTF(cmd, sizeof(cmd), "'%s' --diverge-queued %s 2>&1", self, sd);
        FILE *f = popen(cmd, "r");
        HT_CHECK(f, "popen of '%s' failed: %s", cmd, strerror(errno));
        size_t n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = 0;
        const int st = pclose(f);
        const int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        T_CHECK(&g_ts, code == 1 && strstr(out, "training diverged at step 2") && strstr(out, "no update was applied"),
                "queued divergence, %s child: exit %d, \"training diverged at step 2\" %s", sd, code,
                strstr(out, "training diverged at step 2") ? "printed" : "MISSING");
    }
}

// A host synchronization inside a stream capture is an error on a GPU; the emulation must reject it
// the same way (else such a call could slip into the captured step unnoticed). The emulation also
// rejects a synchronous cudaMemcpy and an async copy to pageable memory.
static void capture_rejects_sync(void) {
    cudaStream_t s;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const cudaError_t e_sync = cudaStreamSynchronize(s);
    cudaGraph_t g = NULL;
    const cudaError_t e_end = cudaStreamEndCapture(s, &g);
    if (g) CUDA_CHECK(cudaGraphDestroy(g));
    (void)cudaGetLastError();
    T_CHECK(&g_ts, e_sync != cudaSuccess && e_end != cudaSuccess,
            "capture: cudaStreamSynchronize during a capture fails (%s) and invalidates it (%s)",
            cudaGetErrorName(e_sync), cudaGetErrorName(e_end));
#ifdef HT_CUDA_EMU
    float *d = NULL, host[4] = {0};
    CUDA_CHECK(cudaMalloc((void **)&d, sizeof(host)));
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const cudaError_t e_copy = cudaMemcpy(host, d, sizeof(host), cudaMemcpyDeviceToHost);
    cudaStreamEndCapture(s, &g);
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    const cudaError_t e_page = cudaMemcpyAsync(host, d, sizeof(host), cudaMemcpyDeviceToHost, s);
    cudaStreamEndCapture(s, &g);
    // a stream forked into the capture by an event, never joined back
    cudaStream_t s2;
    cudaEvent_t ev;
    CUDA_CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    CUDA_CHECK(cudaEventRecord(ev, s));
    CUDA_CHECK(cudaStreamWaitEvent(s2, ev, 0));
    CUDA_CHECK(cudaMemsetAsync(d, 0, sizeof(host), s2));
    const cudaError_t e_unjoined = cudaStreamEndCapture(s, &g);
    (void)cudaGetLastError();
    CUDA_CHECK(cudaEventDestroy(ev));
    CUDA_CHECK(cudaStreamDestroy(s2));
    CUDA_CHECK(cudaFree(d));
    T_CHECK(&g_ts, e_copy != cudaSuccess && e_page != cudaSuccess && e_unjoined != cudaSuccess,
            "capture (emulation): synchronous cudaMemcpy (%s), an async copy to pageable memory (%s) and a forked "
            "stream never joined (%s) are rejected", cudaGetErrorName(e_copy), cudaGetErrorName(e_page),
            cudaGetErrorName(e_unjoined));
#endif
    CUDA_CHECK(cudaStreamDestroy(s));
}

// k_adam_dev (step size from device memory, skipped once the flag is set) against k_adam (the
// kernel test_cuda_kernels checks bit for bit against src/adam.c): the same bits, and nothing
// written at all when bad_step != 0.
static void adam_dev_matches(void) {
    const size_t n = 1000;
    const double lr = 3e-4, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    const int64_t t = 7;
    float *h = XALLOC_FLOATS(4 * n), *r1 = XALLOC_FLOATS(3 * n), *r2 = XALLOC_FLOATS(3 * n);
    for (size_t i = 0; i < 4 * n; i++) {
        Philox4 q = philox4x32(9, RNG_STREAM_TEST, 7, (uint32_t)i, 0);
        h[i] = (float)(rng_u01(q.v[0]) - 0.5) * (i >= 3 * n ? 0.01f : 1.0f); // params, grads, m | v >= 0
        if (i >= 3 * n) h[i] = fabsf(h[i]);
    }
    float *d = DALLOC(float, 4 * n, "adam test");
    DevStepParams par = {lr, 1.0, k_adam_step_size(lr, b1, b2, t), (double)t}, *d_par = DALLOC(DevStepParams, 1, "par");
    DevStepRecord rec, *d_rec = DALLOC(DevStepRecord, 1, "rec");
    memset(&rec, 0, sizeof(rec));
    CUDA_CHECK(cudaMemcpy(d_par, &par, sizeof(par), cudaMemcpyHostToDevice));
    const char *what[3] = {"k_adam", "k_adam_dev", "k_adam_dev after a bad step"};
    float *out[3] = {r1, r2, NULL};
    for (int run = 0; run < 3; run++) {
        rec.bad_step = run == 2 ? 3.0 : 0.0;
        CUDA_CHECK(cudaMemcpy(d_rec, &rec, sizeof(rec), cudaMemcpyHostToDevice));
        CUDA_CHECK(cudaMemcpy(d, h, 4 * n * sizeof(float), cudaMemcpyHostToDevice));
        if (run == 0) k_adam(0, d, d + n, d + 2 * n, d + 3 * n, n, lr, b1, b2, eps, t);
        else k_adam_dev(0, d, d + n, d + 2 * n, d + 3 * n, n, b1, b2, eps, d_par, d_rec);
        CUDA_CHECK(cudaDeviceSynchronize());
        float *o = out[run] ? out[run] : XALLOC_FLOATS(3 * n);
        CUDA_CHECK(cudaMemcpy(o, d, n * sizeof(float), cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(o + n, d + 2 * n, 2 * n * sizeof(float), cudaMemcpyDeviceToHost));
        if (run == 2) {
            const int untouched = !memcmp(o, h, n * sizeof(float)) && !memcmp(o + n, h + 2 * n, 2 * n * sizeof(float));
            T_CHECK(&g_ts, untouched, "%s: parameters and moments untouched", what[run]);
            free(o);
        }
    }
    int moved = memcmp(r1, h, n * sizeof(float)) != 0;
    T_CHECK(&g_ts, moved && !memcmp(r1, r2, 3 * n * sizeof(float)),
            "%s == %s bit for bit (parameters, m, v of %zu elements; the update moved them: %s)", what[1], what[0], n,
            moved ? "yes" : "NO");
    ht_cuda_free(d);
    ht_cuda_free(d_par);
    ht_cuda_free(d_rec);
    free(h);
    free(r1);
    free(r2);
}

int main(int argc, char **argv) {
    if (gc_skip_without_gpu("test_cuda_step")) return 0;
    memset(&g_comm, 0, sizeof(g_comm));
    g_comm.size = 1;
    g_comm.impl = "single";
    char desc[256];
    cuda_backend_describe(desc, sizeof(desc));
    printf("test_cuda_step on %s\n", desc);
    Mnist data;
    const char *dir = getenv("HYPERTRAIN_TEST_DATA");
    const int real = dir && dir[0];
    if (real) {
        mnist_load(&data, dir, 2000, 500, 0);
        printf("data: %s (2000 train, 500 validation)\n", dir);
    } else {
        synthetic_mnist(&data, 2000, 500);
        printf("data: synthetic MNIST-shaped (2000 train, 500 validation)\n");
    }
    if (argc == 4 && !strcmp(argv[1], "--inject-nan") && (!strcmp(argv[2], "gpu") || !strcmp(argv[2], "cpu")))
        return inject_nan(argv[2], argv[3], &data);
    if (argc == 3 && !strcmp(argv[1], "--diverge-queued") && (!strcmp(argv[2], "gpu") || !strcmp(argv[2], "cpu")))
        return diverge_queued(argv[2], &data);
    if (argc == 3 && !strcmp(argv[1], "--tf32") && (!strcmp(argv[2], "tiny") || !strcmp(argv[2], "paper"))) {
        Job tj; // only the cuda_math = tf32 lockstep check of one job (the paper job's takes minutes emulated)
        const int paper = !strcmp(argv[2], "paper");
        load_job(&tj, paper ? "jobs/mnist.json" : "jobs/tiny.json");
        if (paper) { tj.val_samples = 32; tj.val_images = 500; } else tj.distance = DIST_L2;
        tf32_lockstep(paper ? "paper job" : "tiny job, L2", tj, &data);
        return test_summary(&g_ts, "test_cuda_step --tf32");
    }
    HT_CHECK(argc == 1, "usage: test_cuda_step [--inject-nan gpu|cpu nan|inf | --diverge-queued gpu|cpu | "
             "--tf32 tiny|paper]");
    capture_rejects_sync();
    adam_dev_matches();
    char self[HT_PATH_MAX]; // this binary (in the child's shell, /proc/self/exe would be the shell)
    const ssize_t ls = readlink("/proc/self/exe", self, sizeof(self) - 1);
    HT_CHECK(ls > 0, "readlink /proc/self/exe failed: %s", strerror(errno));
    self[ls] = 0;
    queued_divergence(&data, self);
    Job job;
    load_job(&job, "jobs/tiny.json");
    job.distance = DIST_L1;
    run_config("tiny job, L1", job, &data, 2);
    job.distance = DIST_L2;
    run_config("tiny job, L2", job, &data, 2);
    tf32_lockstep("tiny job, L2", job, &data);
    // The other generator path (HT_CUDA_GENS: grouped is the default; a set value is swapped, then
    // restored): the tiny job, L1, with the graph.
    const char *gens0 = getenv("HT_CUDA_GENS");
    const char *other = gens0 && !strcmp(gens0, "split") ? "grouped" : "split";
    char keep[16] = "";
    if (gens0) snprintf(keep, sizeof(keep), "%s", gens0);
    HT_CHECK(setenv("HT_CUDA_GENS", other, 1) == 0, "setenv HT_CUDA_GENS failed");
    job.distance = DIST_L1;
    char label[64];
    snprintf(label, sizeof(label), "tiny job, L1, HT_CUDA_GENS=%s", other);
    run_config(label, job, &data, 1);
    if (gens0) HT_CHECK(setenv("HT_CUDA_GENS", keep, 1) == 0, "setenv HT_CUDA_GENS failed");
    else HT_CHECK(unsetenv("HT_CUDA_GENS") == 0, "unsetenv HT_CUDA_GENS failed");
    // generators of unequal depth (1, 2, 1, 3 hidden layers) on the default path
    Job uneven;
    load_job(&uneven, "jobs/tiny.json");
    job_set(&uneven, "target.layers=[{\"type\":\"conv\",\"kernel\":5,\"filters\":4,\"gen_hidden\":[6]},"
                     "{\"type\":\"relu\"},{\"type\":\"maxpool\",\"kernel\":2},"
                     "{\"type\":\"conv\",\"kernel\":3,\"filters\":3,\"gen_hidden\":[5,4]},"
                     "{\"type\":\"relu\"},{\"type\":\"maxpool\",\"kernel\":2},"
                     "{\"type\":\"fc\",\"units\":5,\"gen_hidden\":[3]},{\"type\":\"relu\"},"
                     "{\"type\":\"fc\",\"units\":10,\"gen_hidden\":[4,3,2],\"per_filter\":false}]");
    job_validate(&uneven);
    run_config("tiny job, generators of depths 1, 2, 1, 3", uneven, &data, 1);
    const char *quick = getenv("HT_GPU_TEST_QUICK"); // the CPU emulation's short mode: tiny jobs only
    if (quick && quick[0] == '1') {
        printf("HT_GPU_TEST_QUICK=1: the paper job is not run\n");
    } else {
        load_job(&job, "jobs/mnist.json");
        job.val_samples = 32;
        job.val_images = 500;
        run_config("paper job", job, &data, 1);
        tf32_lockstep("paper job", job, &data);
    }
    if (real) mnist_free(&data);
    else free_mnist(&data);
    return test_summary(&g_ts, "test_cuda_step");
}
