// test_train.c: the whole training step. Finite-difference check of the total loss
// lambda*CE - H w.r.t. every hypernetwork parameter tensor on the tiny job; bit-exact resume
// (K steps == K/2 + checkpoint + fresh process state + K/2); validation statistics; the toy job
// learns (loss decreases, generated points near the mixture's peaks).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "comm.h"
#include "common.h"
#include "config.h"
#include "fdcheck.h"
#include "model.h"
#include "rng.h"
#include "testutil.h"
#include "toy.h"
#include "train.h"

// MNIST-shaped synthetic data: smooth random blobs so that the target network's gradients are
// not dominated by pixel noise; labels random. Deterministic.
static void synthetic_mnist(Mnist *d, int n_train, int n_val) {
    memset(d, 0, sizeof(*d));
    Dataset *sets[3] = {&d->train, &d->val, &d->test};
    int sizes[3] = {n_train, n_val, 10};
    for (int s = 0; s < 3; s++) {
        Dataset *ds = sets[s];
        ds->n = sizes[s]; ds->h = 28; ds->w = 28;
        ds->images = XALLOC_FLOATS((size_t)ds->n * 784);
        ds->labels = XMALLOC((size_t)ds->n);
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

static void load_job(Job *job, const char *path) {
    job_defaults(job);
    job_load_file(job, path);
    job_validate(job);
}

// ---------------- total loss gradient ----------------
typedef struct { Trainer *tr; } LossCtx;

static double total_loss(void *p) {
    LossCtx *c = p;
    StepStats st;
    trainer_loss_grad(c->tr, &st); // same step: same z and images; batch statistics recomputed
    return st.loss;
}

// The full loss is piecewise smooth: ReLU and max-pool kinks in 32 target networks, leaky-ReLU
// kinks in the hypernetwork, L1 sign changes and nearest-neighbour switches. A float32 loss
// (|loss| ~ 2e3, noise ~ 1e-7 relative) leaves no step size that is both above the noise and
// below the kink spacing. So the end-to-end check runs on a SMOOTH variant of the tiny job that
// keeps every piece of the pipeline (extractor, generators, batch norm, gauge fixing of three
// layers, conv and fc target layers, softmax cross-entropy, entropy through all-gathered samples,
// gradient all-reduce): target layers conv -> conv -> fc -> fc without ReLU/max pool, leaky slope
// 1 in the hypernetwork. The kinked pieces are checked on their own (test_target, test_hyper).
// Nearest-neighbour switches remain (early in training the N samples are at nearly equal
// distances), so each direction is tried over a ladder of steps (fdcheck.h): rtol 1e-2 at the
// best step separates a wrong term (O(1) off at every step) from kinks and roundoff.
static void test_total_grad(TestState *ts, Comm *comm, Distance dist) {
    printf("total loss gradient w.r.t. hypernetwork parameters (smooth tiny job, %s entropy)\n",
           dist == DIST_L1 ? "L1" : "L2");
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    job_set(&job, "target.layers=[{\"type\":\"conv\",\"kernel\":5,\"filters\":3,\"gen_hidden\":[6]},"
                  "{\"type\":\"conv\",\"kernel\":3,\"filters\":2,\"gen_hidden\":[6]},"
                  "{\"type\":\"fc\",\"units\":4,\"gen_hidden\":[6]},"
                  "{\"type\":\"fc\",\"units\":10,\"gen_hidden\":[6],\"per_filter\":false}]");
    job_validate(&job);
    job.distance = dist;
    job.leaky_alpha = 1.0; // outside the user range [0, 1): linear activations, test only
    Mnist data;
    synthetic_mnist(&data, 500, 50);
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, comm, &data);
    // take a few real steps so that the parameters are not at their symmetric initialization
    for (int i = 0; i < 3; i++) { StepStats st; trainer_step(&tr, &st); }
    StepStats st;
    trainer_loss_grad(&tr, &st);
    const ParamTable *t = &m.harch.table;
    float *g = XALLOC_FLOATS(t->n_params);
    memcpy(g, m.grads, t->n_params * sizeof(float));
    printf("  loss %.6f (lambda*ce %.6f, entropy %.6f)\n", st.loss, st.lambda * st.ce, st.entropy);
    LossCtx c = {&tr};
    for (int i = 0; i < t->n_views; i++) {
        const ParamView *v = &t->views[i];
        double rms = 0.0;
        for (size_t k = 0; k < v->size; k++) rms += (double)m.params[v->offset + k] * m.params[v->offset + k];
        rms = sqrt(rms / v->size);
        fd_directional_ladder(ts, v->name, total_loss, &c, m.params + v->offset, g + v->offset, v->size,
                              1e-2 * fmax(rms, 0.1), 1e-2, 1000 + i);
    }
    // all parameters at once
    fd_directional_ladder(ts, "all parameters", total_loss, &c, m.params, g, t->n_params, 1e-3, 1e-2, 7);
    free(g);
    trainer_free(&tr);
    model_free(&m);
    free_mnist(&data);
}

// ---------------- resume ----------------
static void run_steps(Trainer *tr, int k, double *losses) {
    for (int i = 0; i < k; i++) { StepStats st; trainer_step(tr, &st); if (losses) losses[i] = st.loss; }
}

static void test_resume(TestState *ts, Comm *comm) {
    printf("resume: K steps == K/2 + checkpoint + resume + K/2, bit for bit\n");
    Job job;
    load_job(&job, "jobs/tiny.json");
    Mnist data;
    synthetic_mnist(&data, 500, 50);
    const int K = 6;
    double la[6], lb[6];
    Model a;
    model_init(&a, &job);
    Trainer ta;
    trainer_init(&ta, &a, comm, &data);
    run_steps(&ta, K, la);
    ValStats va;
    trainer_validate(&ta, &va);

    char dir[] = "/tmp/ht_test_resume_XXXXXX";
    HT_CHECK(mkdtemp(dir), "mkdtemp failed");
    char path[512];
    checkpoint_path(path, sizeof(path), dir, K / 2);
    {
        Model b;
        model_init(&b, &job);
        Trainer tb;
        trainer_init(&tb, &b, comm, &data);
        run_steps(&tb, K / 2, lb);
        CkptMeta meta = {.step = b.step, .seed = job.seed, .data_cursor = 0, .lr = 0, .lambda = 0, .world_size = 1};
        char *json = job_to_json(&job);
        checkpoint_write(path, &b.harch.table, b.params, b.adam_m, b.adam_v, b.stats, &meta, json);
        free(json);
        trainer_free(&tb);
        model_free(&b);
    }
    Model c;
    model_init(&c, &job);
    CkptMeta meta;
    checkpoint_read(path, &c.harch.table, c.params, c.adam_m, c.adam_v, c.stats, &meta);
    c.step = meta.step;
    Trainer tc;
    trainer_init(&tc, &c, comm, &data);
    run_steps(&tc, K - K / 2, lb + K / 2);
    ValStats vc;
    trainer_validate(&tc, &vc);
    const size_t n = a.harch.table.n_params;
    T_CHECK(ts, c.step == a.step, "steps: %lld == %lld", (long long)c.step, (long long)a.step);
    T_CHECK(ts, memcmp(a.params, c.params, n * sizeof(float)) == 0, "parameters bit-identical");
    T_CHECK(ts, memcmp(a.adam_m, c.adam_m, n * sizeof(float)) == 0 && memcmp(a.adam_v, c.adam_v, n * sizeof(float)) == 0,
            "Adam moments bit-identical");
    T_CHECK(ts, memcmp(a.stats, c.stats, a.harch.table.n_stat * sizeof(float)) == 0, "batch-norm running stats bit-identical");
    T_CHECK(ts, memcmp(la, lb, sizeof(la)) == 0, "losses of all %d steps identical (last %.17g vs %.17g)", K, la[K - 1], lb[K - 1]);
    T_CHECK(ts, va.mean_acc == vc.mean_acc && va.entropy == vc.entropy, "validation identical (acc %.6f, H %.6f)",
            va.mean_acc, va.entropy);
    // A run that differs (one more step) must not compare equal: the comparison can fail.
    run_steps(&tc, 1, NULL);
    T_CHECK(ts, memcmp(a.params, c.params, n * sizeof(float)) != 0, "one extra step changes the parameters");
    unlink(path);
    rmdir(dir);
    trainer_free(&ta); trainer_free(&tc);
    model_free(&a); model_free(&c);
    free_mnist(&data);
}

// ---------------- validation statistics ----------------
static void test_validation(TestState *ts, Comm *comm) {
    printf("validation statistics\n");
    Job job;
    load_job(&job, "jobs/tiny.json");
    Mnist data;
    synthetic_mnist(&data, 500, 60);
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, comm, &data);
    run_steps(&tr, 2, NULL);
    ValStats vs;
    trainer_validate(&tr, &vs);
    int hist = 0;
    double mean = 0.0;
    for (int b = 0; b < VAL_HIST_BINS; b++) hist += vs.hist[b];
    for (int k = 0; k < vs.n_nets; k++) mean += vs.net_acc[k] / vs.n_nets;
    T_CHECK(ts, hist == job.val_samples && vs.n_nets == job.val_samples, "histogram counts every network (%d)", hist);
    T_CHECK(ts, fabs(mean - vs.mean_acc) < 1e-12 && vs.min_acc <= vs.mean_acc && vs.mean_acc <= vs.max_acc,
            "mean %.4f within [min %.4f, max %.4f]", vs.mean_acc, vs.min_acc, vs.max_acc);
    T_CHECK(ts, vs.n_images == 60 && isfinite(vs.entropy) && vs.mean_nll > 0,
            "images %d, entropy %.3f, nll %.4f", vs.n_images, vs.entropy, vs.mean_nll);
    // The ensemble of a network with itself is the network: one sample -> majority == mean-prob == it.
    ValStats v2;
    trainer_validate(&tr, &v2);
    T_CHECK(ts, v2.mean_acc == vs.mean_acc && v2.majority_acc == vs.majority_acc,
            "validation is deterministic and leaves the model unchanged");
    trainer_free(&tr);
    model_free(&m);
    free_mnist(&data);
}

// ---------------- toy problem ----------------
// Points of pts (n, 2) within 2 sigma of a mixture component; hit[c] set for each one visited.
static int count_near_peaks(const Job *job, const float *pts, int n, int *hit) {
    int near = 0;
    for (int k = 0; k < n; k++) {
        double best = INFINITY;
        int arg = 0;
        for (int c = 0; c < job->toy_n_mix; c++) {
            const double d = hypot(pts[2 * k] - job->toy_means[c][0], pts[2 * k + 1] - job->toy_means[c][1]);
            if (d < best) { best = d; arg = c; }
        }
        if (best < 2.0 * job->toy_sigma) { near++; if (hit) hit[arg] = 1; }
    }
    return near;
}

static void test_toy(TestState *ts, Comm *comm) {
    printf("toy problem: loss decreases, points near the mixture's peaks\n");
    Job job;
    load_job(&job, "jobs/toy.json");
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, comm, NULL);
    ValStats v0, v1;
    trainer_validate(&tr, &v0);
    double first = 0.0, last = 0.0;
    const int steps = job.steps, window = 200;
    for (int i = 0; i < steps; i++) {
        StepStats st;
        trainer_step(&tr, &st);
        if (i < window) first += st.lambda * st.ce / window;
        if (i >= steps - window) last += st.lambda * st.ce / window;
    }
    trainer_validate(&tr, &v1);
    T_CHECK(ts, last < first - 1.0, "mean -log p over the first/last %d steps: %.3f -> %.3f", window, first, last);
    // Validation points within 2 sigma of a peak, and which peaks they visit. The 2-sigma disks
    // cover ~16% of the [-2.5, 2.5]^2 square: a generator that ignored the density would put few
    // points there; the paper's Fig. 1 has a path through every peak.
    int hit[HT_MAX_MIX] = {0}, visited = 0;
    const int near1 = count_near_peaks(&job, tr.all, tr.V, hit);
    for (int c = 0; c < job.toy_n_mix; c++) visited += hit[c];
    Model m0;
    model_init(&m0, &job);
    Trainer t0;
    trainer_init(&t0, &m0, comm, NULL);
    ValStats tmp;
    trainer_validate(&t0, &tmp);
    const int near0 = count_near_peaks(&job, t0.all, t0.V, NULL);
    T_CHECK(ts, near1 >= tr.V * 4 / 10 && near1 > near0,
            "points within 2 sigma of a peak: %d/%d after training (%d at initialization)", near1, tr.V, near0);
    T_CHECK(ts, visited == job.toy_n_mix, "validation points visit %d of the %d peaks", visited, job.toy_n_mix);
    T_CHECK(ts, v1.mean_nll < v0.mean_nll, "validation mean -log p %.3f -> %.3f, entropy %.3f -> %.3f",
            v0.mean_nll, v1.mean_nll, v0.entropy, v1.entropy);
    trainer_free(&t0); model_free(&m0);
    trainer_free(&tr); model_free(&m);
}

int main(void) {
    TestState ts = {0, 0};
    Comm comm;
    comm_init(&comm, NULL, NULL);
    test_total_grad(&ts, &comm, DIST_L2);
    test_total_grad(&ts, &comm, DIST_L1);
    test_resume(&ts, &comm);
    test_validation(&ts, &comm);
    test_toy(&ts, &comm);
    return test_summary(&ts, "test_train");
}
