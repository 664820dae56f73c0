// bench_cuda_step: speed of the GPU training step on the paper job (jobs/mnist.json: batch 32, 32
// images per network, 20,018 target weights, 633,640 parameters) and of one validation (200
// networks x 5,000 images), on synthetic MNIST-shaped data (speed does not depend on pixel values).
// A benchmark: it prints figures and never fails on time.
//
// One run measures, on the same trainer:
//   - ms/step for every step configuration of step_configs() (today: the step captured in a CUDA
//     graph, and plain launches), steps queued as the training loop queues them (statistics read
//     every log_every steps), wall-clock over --steps steps after --warmup steps;
//   - kernel launches per step issued by the host (LAUNCH_CHECK count: a graph replay issues none)
//     and the nodes of the captured step (every kernel, cuBLAS's included, copy, memset, event and
//     collective);
//   - per-phase times from CUDA events (data, hypernetwork, gauge, all-gather/all-reduce, target
//     forward/backward, entropy, statistics, Adam), averaged over --profile steps (plain launches
//     with an event between phases and a synchronization per step: their sum exceeds ms/step);
//   - one validation; the projected time of the paper's 13,000 steps with a validation every
//     val_every steps.
// --json FILE writes the figures as one JSON object (tests/gpu/run-all.sh: $LOGS/bench_cuda_step.json).
// All of it once for each conv implementation (HT_CUDA_CONV=im2col with cuda_math = tf32, im2col,
// then igemm, the default; only the one named when HT_CUDA_CONV is set, in the job's cuda_math),
// each on its own trainer with the grouped generators, under a line
// "== conv implementation: HT_CUDA_CONV=NAME[ cuda_math=tf32], generators HT_CUDA_GENS=grouped",
// and first (unless HT_CUDA_GENS is set) once with the split generators (HT_CUDA_GENS=split, igemm):
// kernel launches per step and graph nodes of both generator paths. The JSON holds the last one's
// figures (the default path). Launches count kernels (LAUNCH_CHECK), not cuBLAS calls or copies. To compare
// more step variants in one run, add entries to step_configs(): each becomes one line and one
// element of "configs".
//   build-cuda/tests/gpu/bench_cuda_step [--steps N] [--warmup N] [--profile N] [--no-val] [--job FILE]
//                                        [--json FILE]
#include "common.cuh"

extern "C" {
#include "data.h"
#include "model.h"
#include "train.h"
}
#include "cuda_backend.h"
#include "gpu_check.cuh"

#define MAX_CONFIGS 8
#define MAX_PHASES 16

typedef struct {
    const char *label;   // printed and stored
    int graph;           // cuda_trainer_set_graph
} StepConfig;

typedef struct {
    StepConfig cfg;
    double ms_per_step;
    double launches_per_step; // kernel launches issued by the host per step
    long graph_nodes;         // nodes of the captured step (0 without the graph)
    StepStats last;
} StepResult;

typedef struct {
    int steps, warmup, profile, do_val;
    const char *job_file, *json;
} Options;

// The configurations compared in one run; the first is the default path of hypertrain.
static int step_configs(StepConfig *c) {
    int n = 0;
    c[n++] = (StepConfig){"graph", 1};
    c[n++] = (StepConfig){"plain launches", 0};
    return n;
}

// Queues `steps` steps as run.c does (statistics read every log_every steps and at the end).
static void run_steps(CudaTrainer *ct, int steps, int log_every, StepStats *st) {
    for (int i = 1; i <= steps; i++) {
        cuda_trainer_step_queue(ct);
        if (i % log_every == 0 || i == steps) cuda_trainer_step_stats(ct, st);
    }
}

// Returns 0 (nothing measured) when the configuration cannot run here (the graph under
// HT_CUDA_SYNC=1).
static int time_config(CudaTrainer *ct, const Job *job, const Options *o, const StepConfig *cfg, StepResult *r) {
    memset(r, 0, sizeof(*r));
    r->cfg = *cfg;
    if (cuda_trainer_set_graph(ct, cfg->graph) != cfg->graph) {
        printf("step [%s]: not measured (HT_CUDA_SYNC=1 disables the graph)\n", cfg->label);
        return 0;
    }
    const int log_every = job->log_every > 0 ? job->log_every : 1;
    if (o->warmup > 0) run_steps(ct, o->warmup, log_every, &r->last); // the graph is built in the first step
    const long l0 = ht_cuda_launch_count();
    const double t0 = ht_now();
    run_steps(ct, o->steps, log_every, &r->last);
    r->ms_per_step = 1e3 * (ht_now() - t0) / o->steps;
    r->launches_per_step = (double)(ht_cuda_launch_count() - l0) / o->steps;
    CudaTrainerInfo info;
    cuda_trainer_info(ct, &info);
    r->graph_nodes = cfg->graph ? info.graph_nodes : 0;
    printf("step [%s]: %.3f ms/step over %d steps (after %d warm-up); %.1f kernel launches per step from the host",
           cfg->label, r->ms_per_step, o->steps, o->warmup, r->launches_per_step);
    if (cfg->graph) printf(", %ld graph nodes", r->graph_nodes);
    printf("; loss %.4g\n", r->last.loss);
    return 1;
}

static void parse(int argc, char **argv, Options *o) {
    *o = (Options){200, 5, 20, 1, "jobs/mnist.json", NULL};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc) o->steps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) o->warmup = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--profile") && i + 1 < argc) o->profile = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-val")) o->do_val = 0;
        else if (!strcmp(argv[i], "--job") && i + 1 < argc) o->job_file = argv[++i];
        else if (!strcmp(argv[i], "--json") && i + 1 < argc) o->json = argv[++i];
        else {
            fprintf(stderr, "usage: bench_cuda_step [--steps N] [--warmup N] [--profile N] [--no-val] [--job FILE] "
                            "[--json FILE]\n");
            exit(2);
        }
    }
    HT_CHECK(o->steps >= 1 && o->warmup >= 0 && o->profile >= 0,
             "--steps must be >= 1, --warmup and --profile >= 0 (got %d, %d, %d)", o->steps, o->warmup, o->profile);
}

static void write_json(const Options *o, const Job *job, CudaMath math, const char *desc, const StepResult *res,
                       int n_res, const char **ph_names, const double *ph_ms, int n_ph, double val_s, int n_val,
                       double total) {
    FILE *f = XFOPEN(o->json, "w");
    const char *conv = getenv("HT_CUDA_CONV"), *gens = getenv("HT_CUDA_GENS");
    fprintf(f, "{\"gpu\":\"%s\",\"job\":\"%s\",\"batch\":%d,\"images_per_sample\":%d,\"steps\":%d,\"warmup\":%d,"
               "\"conv\":\"%s\",\"cuda_math\":\"%s\",\"gens\":\"%s\",\"configs\":[", desc, job->name, job->batch,
            job->images_per_sample, o->steps, o->warmup, conv && conv[0] ? conv : "default",
            math == CUDA_MATH_TF32 ? "tf32" : "fp32", gens && gens[0] ? gens : "default");
    for (int i = 0; i < n_res; i++)
        fprintf(f, "%s{\"label\":\"%s\",\"graph\":%d,\"ms_per_step\":%.6g,\"kernel_launches_per_step\":%.6g,"
                   "\"graph_nodes\":%ld}", i ? "," : "", res[i].cfg.label, res[i].cfg.graph, res[i].ms_per_step,
                res[i].launches_per_step, res[i].graph_nodes);
    fprintf(f, "],\"phases_ms\":{");
    for (int i = 0; i < n_ph; i++) fprintf(f, "%s\"%s\":%.6g", i ? "," : "", ph_names[i], ph_ms[i]);
    fprintf(f, "},\"profiled_steps\":%d,\"validation_s\":%.6g,\"projected\":{\"steps\":13000,\"validations\":%d,"
               "\"seconds\":%.6g}}\n", o->profile, val_s, n_val, total);
    XFCLOSE(f, o->json);
    printf("json: %s\n", o->json);
}

// Everything measured on one trainer (created here, with the conv implementation HT_CUDA_CONV names).
static void bench_trainer(Trainer *trp, Model *mp, Job *jobp, const Options *op) {
    Trainer &tr = *trp;
    Model &m = *mp;
    Job &job = *jobp;
    const Options &o = *op;
    const double tc0 = ht_now();
    CudaTrainer *ct = cuda_trainer_create(&tr);
    const double t_create = ht_now() - tc0;
    char desc[256];
    cuda_backend_describe(desc, sizeof(desc));
    printf("bench_cuda_step: %s\n", desc);
    printf("job %s: batch %d x %d images, %zu target weights, %zu parameters; setup (allocation, data upload) %.2f s\n",
           job.name, job.batch, job.images_per_sample, m.tarch.n_weights, m.harch.table.n_params, t_create);
    StepConfig cfgs[MAX_CONFIGS];
    const int n_all = step_configs(cfgs);
    StepResult res[MAX_CONFIGS];
    int n_cfg = 0;
    for (int i = 0; i < n_all; i++) n_cfg += time_config(ct, &job, &o, &cfgs[i], &res[n_cfg]);
    HT_CHECK(n_cfg > 0, "no step configuration could be measured");
    // the default path (first configuration), in the line run-all.sh reads
    printf("step: %.3f ms/step over %d steps (%s; after %d warm-up steps); loss %.4g, ce %.4f, entropy %.2f\n",
           res[0].ms_per_step, o.steps, res[0].cfg.label, o.warmup, res[0].last.loss, res[0].last.ce,
           res[0].last.entropy);
    const char *ph_names[MAX_PHASES];
    double ph_ms[MAX_PHASES];
    int n_ph = 0;
    if (o.profile > 0) {
        StepStats st;
        cuda_trainer_profile(ct, 1);
        run_steps(ct, o.profile, 1, &st);
        n_ph = cuda_trainer_phases(ct, ph_names, ph_ms, MAX_PHASES);
        cuda_trainer_profile(ct, 0);
        double sum = 0.0;
        printf("phases (CUDA events, mean of %d steps, plain launches):", o.profile);
        for (int i = 0; i < n_ph; i++) { printf(" %s %.3f ms;", ph_names[i], ph_ms[i]); sum += ph_ms[i]; }
        printf(" sum %.3f ms\n", sum);
    }
    double val_s = 0.0;
    if (o.do_val) {
        ValStats vs;
        const double v0 = ht_now();
        cuda_trainer_validate(ct, &vs);
        val_s = ht_now() - v0;
        printf("validation: %.2f s for %d networks x %d images (mean accuracy %.4f on synthetic labels)\n", val_s,
               vs.n_nets, vs.n_images, vs.mean_acc);
    }
    const int paper_steps = 13000;
    const int n_val = job.val_every > 0 ? paper_steps / job.val_every : 1;
    const double ms = res[0].ms_per_step, total = paper_steps * ms / 1e3 + n_val * val_s;
    printf("projected: %d steps x %.3f ms = %.1f s, + %d validations x %.2f s = %.1f s; total %.1f s (%.1f min) for "
           "the paper's run (checkpoints not included)\n", paper_steps, ms, paper_steps * ms / 1e3, n_val, val_s,
           n_val * val_s, total, total / 60.0);
    if (o.json) write_json(&o, &job, m.job.cuda_math, desc, res, n_cfg, ph_names, ph_ms, n_ph, val_s, n_val, total);
    cuda_trainer_destroy(ct);
}

int main(int argc, char **argv) {
    Options o;
    parse(argc, argv, &o);
    if (gc_skip_without_gpu("bench_cuda_step")) return 0;
    Comm comm;
    memset(&comm, 0, sizeof(comm));
    comm.size = 1;
    comm.impl = "single";
    Job job;
    job_defaults(&job);
    job_load_file(&job, o.job_file);
    job_validate(&job);
    Mnist data;
    mnist_synthetic(&data, job.n_train, job.n_val);
    Model m;
    model_init(&m, &job);
    Trainer tr;
    trainer_init(&tr, &m, &comm, &data);
    // Each conv implementation in turn (HT_CUDA_CONV, target_cuda.cuh): all unless the environment names
    // one. First im2col with cuda_math = tf32 (the conv GEMMs on TF32 tensor cores), then the FP32
    // paths; the last (igemm, the default) gives the figures run-all.sh reads. Before them, unless
    // HT_CUDA_GENS is set, the default conv with the split generators (HT_CUDA_GENS=split,
    // mlp_cuda.cuh); the conv runs use the grouped ones (the default), so the last run is the default path.
    const char *conv_env = getenv("HT_CUDA_CONV"), *gens_env = getenv("HT_CUDA_GENS");
    const char *conv_impls[3] = {"im2col", "im2col", "igemm"};
    const CudaMath conv_math[3] = {CUDA_MATH_TF32, CUDA_MATH_FP32, CUDA_MATH_FP32};
    const int n_conv = conv_env && *conv_env ? 1 : 3;
    if (!(gens_env && *gens_env)) {
        HT_CHECK(setenv("HT_CUDA_GENS", "split", 1) == 0, "setenv HT_CUDA_GENS failed");
        if (n_conv > 1) HT_CHECK(setenv("HT_CUDA_CONV", "igemm", 1) == 0, "setenv HT_CUDA_CONV failed");
        m.job.cuda_math = n_conv > 1 ? CUDA_MATH_FP32 : job.cuda_math;
        printf("== conv implementation: HT_CUDA_CONV=%s%s, generators HT_CUDA_GENS=split\n", getenv("HT_CUDA_CONV"),
               m.job.cuda_math == CUDA_MATH_TF32 ? " cuda_math=tf32" : "");
        bench_trainer(&tr, &m, &job, &o);
        HT_CHECK(setenv("HT_CUDA_GENS", "grouped", 1) == 0, "setenv HT_CUDA_GENS failed");
    }
    for (int ci = 0; ci < n_conv; ci++) {
        if (n_conv > 1) HT_CHECK(setenv("HT_CUDA_CONV", conv_impls[ci], 1) == 0, "setenv HT_CUDA_CONV failed");
        m.job.cuda_math = n_conv > 1 ? conv_math[ci] : job.cuda_math;
        printf("== conv implementation: HT_CUDA_CONV=%s%s, generators HT_CUDA_GENS=%s\n", getenv("HT_CUDA_CONV"),
               m.job.cuda_math == CUDA_MATH_TF32 ? " cuda_math=tf32" : "", getenv("HT_CUDA_GENS"));
        bench_trainer(&tr, &m, &job, &o);
    }
    m.job.cuda_math = job.cuda_math;
    trainer_free(&tr);
    model_free(&m);
    mnist_free(&data);
    return 0;
}
