// test_config.c: the job: defaults (the paper's run), every jobs/*.json, --set overrides, the
// JSON round trip (bit-exact), and bad input. Errors are fatal (exit), so each bad input runs in
// a forked child whose stderr is captured; the parent checks the exit status and the message.
// Run from the repository root.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "arch.h"
#include "common.h"
#include "config.h"
#include "data.h"
#include "testutil.h"

static TestState ts;
static char tmpdir[64];

// ---- helpers ---------------------------------------------------------------------------------

static char *write_tmp(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(2); }
    fputs(text, f);
    fclose(f);
    return path;
}

typedef enum { BAD_FILE, BAD_SET, BAD_VALIDATE, BAD_STRING, BAD_ARCH, BAD_MUL } BadKind;

// Runs one fallible call in a child; passes if the child exited non-zero with a message containing
// every needle (needles separated by '|'). The captured message is printed with the result.
static void expect_fatal(const char *label, BadKind kind, const char *arg, const char *set2,
                         const char *needles) {
    int fd[2];
    if (pipe(fd) != 0) { perror("pipe"); exit(2); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        t_child_no_leak_check();
        close(fd[0]);
        dup2(fd[1], 2);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0) dup2(devnull, 1);
        Job job;
        job_defaults(&job);
        switch (kind) {
        case BAD_FILE: job_load_file(&job, arg); job_validate(&job); break;
        case BAD_SET:
            job_set(&job, arg);
            if (set2) job_set(&job, set2);
            job_validate(&job);
            break;
        case BAD_VALIDATE: job_set(&job, arg); job_validate(&job); break;
        case BAD_STRING: job_from_json_string(&job, arg, "run/ckpt_000010.h5"); break;
        case BAD_ARCH: { // a valid job whose shapes are too large: arch_build_* must reject it
            job_set(&job, arg);
            if (set2) job_set(&job, set2);
            job_validate(&job);
            TargetArch t;
            HyperArch *h = malloc(sizeof(HyperArch));
            arch_build_target(&t, &job);
            arch_build_hyper(h, &job, &t);
            free(h);
            break;
        }
        case BAD_MUL: (void)XMUL(SIZE_MAX / 2 + 1, 2, "test product %s", arg); break;
        }
        _exit(0); // no error: the parent reports a failure
    }
    close(fd[1]);
    char msg[4096];
    size_t n = 0;
    ssize_t got;
    while ((got = read(fd[0], msg + n, sizeof(msg) - 1 - n)) > 0) n += (size_t)got;
    msg[n] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    int failed = WIFEXITED(status) && WEXITSTATUS(status) != 0;
    int found = 1;
    char buf[512];
    snprintf(buf, sizeof(buf), "%s", needles);
    for (char *tok = strtok(buf, "|"); tok; tok = strtok(NULL, "|"))
        if (!strstr(msg, tok)) found = 0;
    char *nl = strchr(msg, '\n');
    if (nl) *nl = '\0';
    T_CHECK(&ts, failed && found, "%-34s exit %d, message names [%s]: %s", label,
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, needles, msg);
}

static void bad_file(const char *label, const char *json, const char *needles) {
    char *path = write_tmp("bad.json", json);
    char full[512];
    snprintf(full, sizeof(full), "%s|%s", path, needles);
    expect_fatal(label, BAD_FILE, path, NULL, full);
}

// A file that parses but fails job_validate: the message names the keys (not the file, since a
// job is validated after defaults, the file and --set are merged).
static void bad_job(const char *label, const char *json, const char *needles) {
    char *path = write_tmp("bad.json", json);
    char full[512];
    snprintf(full, sizeof(full), "job: |%s", needles);
    expect_fatal(label, BAD_FILE, path, NULL, full);
}

static void bad_set(const char *label, const char *assignment, const char *needles) {
    char full[512];
    snprintf(full, sizeof(full), "--set|%s", needles);
    expect_fatal(label, BAD_SET, assignment, NULL, full);
}

// Field-by-field comparison (memcmp also compares padding; both are checked).
static int jobs_equal(const Job *a, const Job *b) {
    int eq = strcmp(a->name, b->name) == 0 && a->task == b->task && a->seed == b->seed &&
             a->steps == b->steps && a->batch == b->batch && a->images_per_sample == b->images_per_sample &&
             a->lambda == b->lambda && a->lambda_growth == b->lambda_growth && a->lr == b->lr &&
             a->lr_decay == b->lr_decay && a->beta1 == b->beta1 && a->beta2 == b->beta2 &&
             a->adam_eps == b->adam_eps && a->distance == b->distance && a->z_dim == b->z_dim &&
             a->eval_precision == b->eval_precision && a->cuda_math == b->cuda_math &&
             a->code_size == b->code_size && a->n_ext_hidden == b->n_ext_hidden &&
             memcmp(a->ext_hidden, b->ext_hidden, sizeof(a->ext_hidden)) == 0 &&
             a->leaky_alpha == b->leaky_alpha && a->bn_eps == b->bn_eps && a->bn_decay == b->bn_decay &&
             a->init_scale == b->init_scale && a->gauge_fixing == b->gauge_fixing &&
             a->input_h == b->input_h && a->input_w == b->input_w && a->input_c == b->input_c &&
             a->classes == b->classes && a->n_layers == b->n_layers &&
             memcmp(a->layers, b->layers, sizeof(a->layers)) == 0 &&
             a->dataset == b->dataset && strcmp(a->data_dir, b->data_dir) == 0 && a->n_train == b->n_train && a->n_val == b->n_val &&
             a->verify_checksums == b->verify_checksums && a->val_every == b->val_every &&
             a->val_samples == b->val_samples && a->val_images == b->val_images &&
             a->ckpt_every == b->ckpt_every && a->keep_ckpt == b->keep_ckpt &&
             a->log_every == b->log_every && a->threads == b->threads &&
             a->n_toy_hidden == b->n_toy_hidden &&
             memcmp(a->toy_hidden, b->toy_hidden, sizeof(a->toy_hidden)) == 0 &&
             a->toy_l2 == b->toy_l2 && a->toy_n_mix == b->toy_n_mix &&
             memcmp(a->toy_means, b->toy_means, sizeof(a->toy_means)) == 0 &&
             a->toy_sigma == b->toy_sigma && a->toy_curve_points == b->toy_curve_points;
    return eq;
}

static void check_round_trip(const char *label, const Job *job) {
    char *s1 = job_to_json(job);
    Job back;
    memset(&back, 0xAB, sizeof(back));
    job_from_json_string(&back, s1, label);
    char *s2 = job_to_json(&back);
    T_CHECK(&ts, jobs_equal(job, &back), "%s: to_json -> from_json_string gives the same fields", label);
    T_CHECK(&ts, memcmp(job, &back, sizeof(Job)) == 0, "%s: ... and the same bytes (memcmp)", label);
    T_CHECK(&ts, strcmp(s1, s2) == 0, "%s: printing the reloaded job gives the same text (%zu bytes)",
            label, strlen(s1));
    free(s1);
    free(s2);
}

static void count_arch(const Job *job, size_t *n_weights, size_t *n_params) {
    TargetArch t;
    HyperArch *h = malloc(sizeof(HyperArch));
    arch_build_target(&t, job);
    arch_build_hyper(h, job, &t);
    *n_weights = t.n_weights;
    *n_params = h->table.n_params;
    free(h);
}

// ---- tests -----------------------------------------------------------------------------------

static void test_defaults(void) {
    printf("defaults\n");
    Job j;
    job_defaults(&j);
    job_validate(&j);
    T_CHECK(&ts, strcmp(j.name, "mnist") == 0 && j.task == TASK_MNIST && j.seed == 1, "name %s, task mnist, seed 1", j.name);
    T_CHECK(&ts, j.steps == 13000 && j.batch == 32 && j.images_per_sample == 32,
            "steps %d, batch %d, images_per_sample %d", j.steps, j.batch, j.images_per_sample);
    T_CHECK(&ts, j.lambda == 1000 && j.lambda_growth == 1 && j.lr == 3e-4 && j.lr_decay == 0.99998,
            "lambda %g, growth %g, lr %g, lr_decay %.17g", j.lambda, j.lambda_growth, j.lr, j.lr_decay);
    T_CHECK(&ts, j.beta1 == 0.9 && j.beta2 == 0.999 && j.adam_eps == 1e-8 && j.distance == DIST_L1,
            "adam %g %g %g, distance l1", j.beta1, j.beta2, j.adam_eps);
    T_CHECK(&ts, j.z_dim == 300 && j.code_size == 15 && j.n_ext_hidden == 2 && j.ext_hidden[0] == 300 &&
            j.ext_hidden[1] == 300, "z_dim %d, code_size %d, extractor [300, 300]", j.z_dim, j.code_size);
    T_CHECK(&ts, j.leaky_alpha == 0.05 && j.bn_eps == 1e-7 && j.bn_decay == 0.98 && j.init_scale == 0.01 &&
            j.gauge_fixing == 1, "alpha %g, bn_eps %g, bn_decay %g, init %g, gauge fixing on",
            j.leaky_alpha, j.bn_eps, j.bn_decay, j.init_scale);
    T_CHECK(&ts, j.input_h == 28 && j.input_w == 28 && j.input_c == 1 && j.classes == 10 && j.n_layers == 9,
            "input 28x28x1, 10 classes, %d layer entries", j.n_layers);
    const LayerSpec *L = j.layers;
    T_CHECK(&ts, L[0].type == OP_CONV && L[0].kernel == 5 && L[0].filters == 32 && L[0].n_gen_hidden == 2 &&
            L[0].gen_hidden[0] == 40 && L[0].per_filter && L[1].type == OP_RELU && L[2].type == OP_MAXPOOL &&
            L[2].kernel == 2 && L[3].filters == 16 && L[3].gen_hidden[1] == 100 && L[6].type == OP_FC &&
            L[6].filters == 8 && L[6].per_filter && L[8].type == OP_FC && L[8].filters == 10 &&
            L[8].gen_hidden[0] == 60 && !L[8].per_filter, "layers: conv 32, relu, pool, conv 16, relu, pool, fc 8, relu, fc 10");
    T_CHECK(&ts, j.dataset == DATA_MNIST && j.data_dir[0] == '\0' && j.n_train == 55000 && j.n_val == 5000 &&
            j.verify_checksums, "data: dataset mnist, dir unset, 55000/5000, verify");
    T_CHECK(&ts, j.val_every == 500 && j.val_samples == 200 && j.val_images == 0 && j.ckpt_every == 1000 &&
            j.keep_ckpt == 3 && j.log_every == 10 && j.threads == 0, "schedule 500/200/0/1000/3/10/0");
    T_CHECK(&ts, j.n_toy_hidden == 3 && j.toy_hidden[0] == 30 && j.toy_n_mix == 8 && j.toy_sigma == 0.2 &&
            j.toy_curve_points == 400 && fabs(hypot(j.toy_means[1][0], j.toy_means[1][1]) - 2) < 1e-15,
            "toy: hidden [30,10,10], 8 means on radius 2, sigma 0.2, 400 curve points");
    size_t nw, np;
    count_arch(&j, &nw, &np);
    T_CHECK(&ts, nw == 20018, "paper target network: %zu weights (20,018)", nw);
    T_CHECK(&ts, np == 633640, "paper hypernetwork: %zu parameters (633,640)", np);
}

static void load(Job *j, const char *path) {
    job_defaults(j);
    job_load_file(j, path);
    job_validate(j);
}

static void test_job_files(void) {
    printf("jobs/*.json\n");
    Job def, j, k;
    job_defaults(&def);

    // mnist.json writes out every MNIST hyperparameter: loaded onto a zeroed job it gives the
    // defaults (the toy section, not written, is copied over).
    memset(&j, 0, sizeof(j));
    job_load_file(&j, "jobs/mnist.json");
    memcpy(j.toy_hidden, def.toy_hidden, sizeof(j.toy_hidden));
    j.n_toy_hidden = def.n_toy_hidden;
    j.toy_l2 = def.toy_l2;
    j.toy_n_mix = def.toy_n_mix;
    memcpy(j.toy_means, def.toy_means, sizeof(j.toy_means));
    j.toy_sigma = def.toy_sigma;
    j.toy_curve_points = def.toy_curve_points;
    job_validate(&j);
    T_CHECK(&ts, jobs_equal(&j, &def), "jobs/mnist.json is complete and equals the defaults");

    load(&k, "jobs/mnist-lambda1e5.json");
    T_CHECK(&ts, k.lambda == 1e5 && strcmp(k.name, "mnist-lambda1e5") == 0, "mnist-lambda1e5: lambda %g, name %s",
            k.lambda, k.name);
    k.lambda = def.lambda;
    snprintf(k.name, sizeof(k.name), "%s", def.name);
    T_CHECK(&ts, jobs_equal(&k, &def), "mnist-lambda1e5: everything else equals mnist");

    // fashion-mnist.json: the paper's run on Fashion-MNIST; only the data set (and the name) differ.
    load(&k, "jobs/fashion-mnist.json");
    T_CHECK(&ts, k.dataset == DATA_FASHION_MNIST && strcmp(k.name, "fashion-mnist") == 0 && k.data_dir[0] == '\0',
            "fashion-mnist: data.dataset %s, name %s, data.dir unset", data_set_name(k.dataset), k.name);
    k.dataset = def.dataset;
    snprintf(k.name, sizeof(k.name), "%s", def.name);
    T_CHECK(&ts, jobs_equal(&k, &def), "fashion-mnist: everything else equals mnist (the paper's run)");

    load(&j, "jobs/toy.json");
    T_CHECK(&ts, j.task == TASK_TOY && j.z_dim == 1 && j.distance == DIST_L2 && !j.gauge_fixing &&
            j.n_toy_hidden == 3 && j.toy_hidden[0] == 30 && j.toy_hidden[1] == 10 && j.toy_hidden[2] == 10 &&
            j.lambda == 0.2 && j.batch >= 2 && j.toy_n_mix >= 1, "toy: task toy, z_dim %d, l2, no gauge fixing, "
            "hidden [30,10,10], batch %d, %d means", j.z_dim, j.batch, j.toy_n_mix);

    load(&j, "jobs/smoke.json");
    size_t nw, np;
    count_arch(&j, &nw, &np);
    T_CHECK(&ts, j.steps == 4 && j.batch == 4 && j.images_per_sample == 8 && j.val_every == 2 &&
            j.val_samples == 4 && j.val_images == 200 && j.ckpt_every == 2 && j.n_train == 1000 &&
            j.n_val == 500 && nw == 20018 && np == 633640,
            "smoke: 4 steps, batch 4, 1000/500 images, paper counts %zu / %zu", nw, np);

    load(&j, "jobs/tiny.json");
    count_arch(&j, &nw, &np);
    T_CHECK(&ts, j.steps == 6 && j.batch == 8 && j.images_per_sample == 4 && j.z_dim == 8 &&
            j.code_size == 3 && j.n_ext_hidden == 1 && j.ext_hidden[0] == 10 && j.n_layers == 9 &&
            j.layers[3].kernel == 3 && j.layers[3].filters == 3 && !j.layers[8].per_filter &&
            j.n_train == 2000 && j.n_val == 500 && nw == 1015,
            "tiny: 6 steps, z_dim 8, code 3, %zu target weights (1,015), %zu hypernetwork parameters", nw, np);

    // Every job file in jobs/ loads, validates and round-trips.
    DIR *dir = opendir("jobs");
    T_CHECK(&ts, dir != NULL, "jobs/ directory opens (tests run from the repository root)");
    int n = 0;
    struct dirent *e;
    while (dir && (e = readdir(dir))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".json") != 0) continue;
        char path[512];
        snprintf(path, sizeof(path), "jobs/%s", e->d_name);
        load(&j, path);
        check_round_trip(path, &j);
        n++;
    }
    if (dir) closedir(dir);
    T_CHECK(&ts, n >= 5, "%d job files loaded, validated and round-tripped", n);
}

static void test_set(void) {
    printf("--set\n");
    Job j;
    job_defaults(&j);
    job_set(&j, "lambda=1e5");
    job_set(&j, "data.dir=/data/mnist files/x");
    job_set(&j, " target.classes = 10 ");
    job_set(&j, "extractor_hidden=[200, 100, 50]");
    job_set(&j, "name=123");
    job_set(&j, "seed=9007199254740992");
    job_set(&j, "gauge_fixing=false");
    job_set(&j, "entropy_distance=l2");
    T_CHECK(&ts, j.eval_precision == EVAL_FP32, "eval_precision defaults to fp32");
    job_set(&j, "eval_precision=bf16");
    T_CHECK(&ts, j.cuda_math == CUDA_MATH_FP32, "cuda_math defaults to fp32");
    job_set(&j, "cuda_math=tf32");
    job_set(&j, "data={\"train\": 100, \"verify\": false}");
    job_set(&j, "lr=3e-4");
    job_set(&j, "toy.means=[[0, 0], [1, 1]]");
    T_CHECK(&ts, j.lambda == 1e5, "lambda=1e5 -> %g", j.lambda);
    T_CHECK(&ts, strcmp(j.data_dir, "/data/mnist files/x") == 0, "data.dir as a bare string -> '%s'", j.data_dir);
    T_CHECK(&ts, j.classes == 10, "nested key with spaces around: classes %d", j.classes);
    T_CHECK(&ts, j.n_ext_hidden == 3 && j.ext_hidden[2] == 50 && j.ext_hidden[3] == 0, "list value: %d entries",
            j.n_ext_hidden);
    T_CHECK(&ts, strcmp(j.name, "123") == 0, "name=123 is the string '%s'", j.name);
    T_CHECK(&ts, j.seed == 9007199254740992ULL, "seed 2^53 = %llu", (unsigned long long)j.seed);
    T_CHECK(&ts, !j.gauge_fixing && j.distance == DIST_L2 && j.eval_precision == EVAL_BF16, "booleans and enums "
            "(eval_precision=bf16 as a bare string)");
    T_CHECK(&ts, j.cuda_math == CUDA_MATH_TF32, "cuda_math=tf32 as a bare string");
    T_CHECK(&ts, j.n_train == 100 && !j.verify_checksums && j.n_val == 5000,
            "an object value merges into the section (train %d, validation kept %d)", j.n_train, j.n_val);
    T_CHECK(&ts, j.lr == 3e-4, "lr=3e-4 exactly");
    T_CHECK(&ts, j.toy_n_mix == 2 && j.toy_means[1][1] == 1 && j.toy_means[2][0] == 0, "toy.means list of points");
    job_validate(&j);

    // The whole layer list, one entry, and one field of one entry.
    job_set(&j, "target.layers=[{\"type\":\"conv\",\"kernel\":3,\"filters\":8,\"gen_hidden\":[20]},"
                "{\"type\":\"relu\"},{\"type\":\"maxpool\",\"kernel\":4},"
                "{\"type\":\"fc\",\"units\":10,\"gen_hidden\":[30,30],\"per_filter\":false}]");
    T_CHECK(&ts, j.n_layers == 4 && j.layers[0].kernel == 3 && j.layers[0].per_filter == 1 &&
            j.layers[2].kernel == 4 && j.layers[3].n_gen_hidden == 2 && j.layers[4].type == 0 &&
            j.layers[4].filters == 0, "target.layers=[...] replaces the list (%d entries, tail zeroed)", j.n_layers);
    job_set(&j, "target.layers[0].filters=64");
    job_set(&j, "target.layers[3].gen_hidden=[7]");
    job_set(&j, "target.layers[1]={\"type\": \"maxpool\", \"kernel\": 2}");
    T_CHECK(&ts, j.layers[0].filters == 64 && j.layers[0].kernel == 3 && j.layers[3].n_gen_hidden == 1 &&
            j.layers[3].gen_hidden[0] == 7 && j.layers[3].gen_hidden[1] == 0 && j.layers[3].filters == 10 &&
            j.layers[1].type == OP_MAXPOOL, "target.layers[i].field=... and target.layers[i]={...}");
    job_validate(&j);
    job_set(&j, "data.dir=");
    T_CHECK(&ts, j.data_dir[0] == '\0', "data.dir= clears the directory");
    job_set(&j, "task=toy");
    job_set(&j, "z_dim=1");
    job_validate(&j);
    T_CHECK(&ts, j.task == TASK_TOY && j.z_dim == 1, "task=toy, z_dim=1");
    check_round_trip("after --set", &j);
    // cuda_math is written back into the resolved job (job.json, checkpoints); a job stored before
    // the key existed (no "cuda_math") reads as fp32
    char *js = job_to_json(&j);
    T_CHECK(&ts, strstr(js, "\"cuda_math\": \"tf32\"") != NULL, "the resolved job holds \"cuda_math\": \"tf32\"");
    free(js);
    Job old;
    job_from_json_string(&old, "{\"steps\": 5}", "old checkpoint");
    T_CHECK(&ts, old.cuda_math == CUDA_MATH_FP32, "a stored job without cuda_math is fp32");
}

static void test_round_trip(void) {
    printf("round trip\n");
    Job j;
    job_defaults(&j);
    check_round_trip("defaults", &j);
    // Awkward doubles: each must come back bit-exactly.
    job_set(&j, "lr=0.00030000000000000003");
    T_CHECK(&ts, j.lr == nextafter(3e-4, 1), "lr one ulp above 3e-4 parsed exactly");
    j.lambda = 0.1 + 0.2;
    j.lambda_growth = 1.0000000000000002;
    j.lr_decay = 0.99998;
    j.init_scale = 1e-300;
    j.bn_eps = 5e-324;
    j.leaky_alpha = 1.0 / 3.0;
    j.toy_means[0][0] = -0.0;
    j.toy_means[3][1] = 123456789.123456789;
    j.seed = (1ULL << 53) - 1;
    snprintf(j.name, sizeof(j.name), "run-a.b_c+1");
    snprintf(j.data_dir, sizeof(j.data_dir), "/tmp/dir with \"quotes\" and \\ and tab\there");
    check_round_trip("awkward values", &j);
    char *s = job_to_json(&j);
    Job b;
    job_from_json_string(&b, s, "string");
    T_CHECK(&ts, b.lr_decay == 0.99998 && b.lambda == 0.1 + 0.2 && b.bn_eps == 5e-324 &&
            b.leaky_alpha == 1.0 / 3.0 && b.seed == (1ULL << 53) - 1 && signbit(b.toy_means[0][0]),
            "0.99998, 0.1+0.2, denormal, 1/3, 2^53-1 and -0 exact after the round trip");
    free(s);
    Job t;
    load(&t, "jobs/toy.json");
    check_round_trip("toy", &t);
    load(&t, "jobs/tiny.json");
    check_round_trip("tiny", &t);

    // A file with comments in every object loads; comments are dropped.
    char *path = write_tmp("comments.json",
        "{\"comment\": \"top\", \"target\": {\"comment\": [\"a\", \"b\"], \"layers\": ["
        "{\"type\": \"relu\", \"comment\": \"x\"},"
        "{\"type\": \"fc\", \"units\": 10, \"gen_hidden\": [], \"comment\": \"last\"}]},"
        "\"data\": {\"comment\": \"d\", \"dir\": \"/x\"}, \"toy\": {\"comment\": \"t\"}}");
    load(&t, path);
    T_CHECK(&ts, t.n_layers == 2 && t.layers[1].n_gen_hidden == 0 && t.layers[1].per_filter == 1 &&
            strcmp(t.data_dir, "/x") == 0, "comments anywhere are ignored; empty gen_hidden allowed");
}

// data.dataset: its values, --set, and a job written before the key existed (an old checkpoint's
// or run directory's job.json) meaning MNIST, so that such a run resumes unchanged.
static void test_dataset(void) {
    printf("data.dataset\n");
    T_CHECK(&ts, !strcmp(data_set_name(DATA_MNIST), "mnist") && !strcmp(data_set_name(DATA_FASHION_MNIST), "fashion-mnist") &&
            data_set_name(DATA_N_SETS) == NULL && data_set_name(-1) == NULL, "names: mnist, fashion-mnist; none beyond");
    Job j, def;
    job_defaults(&def);
    job_defaults(&j);
    job_set(&j, "data.dataset=fashion-mnist");
    T_CHECK(&ts, j.dataset == DATA_FASHION_MNIST, "--set data.dataset=fashion-mnist (bare string)");
    job_set(&j, "data.dataset=\"mnist\"");
    T_CHECK(&ts, j.dataset == DATA_MNIST, "--set data.dataset=\"mnist\" (JSON string)");
    job_set(&j, "data={\"dataset\": \"fashion-mnist\", \"train\": 100}");
    T_CHECK(&ts, j.dataset == DATA_FASHION_MNIST && j.n_train == 100, "--set data={...} sets dataset and train");
    job_validate(&j);
    check_round_trip("fashion-mnist", &j);
    char *s = job_to_json(&j);
    T_CHECK(&ts, strstr(s, "\"dataset\": \"fashion-mnist\"") != NULL, "job JSON shows \"dataset\": \"fashion-mnist\"");
    free(s);

    // The defaults' JSON without the dataset line: what every job.json and checkpoint before the
    // key held. It must load as MNIST and print as today's defaults.
    char *now = job_to_json(&def), *old = XSTRDUP(now);
    char *line = strstr(old, "    \"dataset\": \"mnist\",\n");
    T_CHECK(&ts, line != NULL, "the defaults' JSON holds the line \"dataset\": \"mnist\"");
    if (line) memmove(line, strchr(line, '\n') + 1, strlen(strchr(line, '\n') + 1) + 1);
    Job back;
    job_from_json_string(&back, old, "old checkpoint");
    job_validate(&back);
    char *again = job_to_json(&back);
    T_CHECK(&ts, !strstr(old, "dataset") && back.dataset == DATA_MNIST && jobs_equal(&back, &def) &&
            !strcmp(again, now), "a job without data.dataset (older checkpoints) is MNIST and prints as the defaults");
    free(now);
    free(old);
    free(again);
}

static void test_bad_input(void) {
    printf("bad input (each in a child process)\n");
    bad_file("malformed JSON", "{\n  \"lr\": 1e-3,,\n  \"steps\": 3\n}\n", "invalid JSON|line 2");
    bad_file("trailing garbage", "{\"lr\": 1e-3} x", "invalid JSON");
    bad_file("empty file", "  \n", "empty");
    bad_file("top level is a list", "[1, 2]", "top level");
    bad_file("unknown key (suggestion)", "{\"lamda\": 5}", "\"lamda\"|did you mean \"lambda\"");
    bad_file("unknown nested key", "{\"data\": {\"dri\": \"/x\"}}", "\"data.dri\"|\"data.dir\"");
    bad_file("unknown key, no suggestion", "{\"data\": {\"zzzzzz\": 1}}", "data.zzzzzz|\"verify\"");
    bad_file("dotted key in a file", "{\"data.dir\": \"/x\"}", "unknown key \"data.dir\"");
    bad_file("duplicate key", "{\"steps\": 3, \"steps\": 4}", "\"steps\"|more than once");
    bad_file("wrong type: string for int", "{\"steps\": \"100\"}", "key \"steps\"|expected an integer >= 1|\"100\"");
    bad_file("wrong type: fraction for int", "{\"batch\": 2.5}", "key \"batch\"|integer|2.5");
    bad_file("wrong type: 1 for bool", "{\"gauge_fixing\": 1}", "key \"gauge_fixing\"|true or false");
    bad_file("wrong type: number for string", "{\"name\": 5}", "key \"name\"");
    bad_file("wrong type: section", "{\"data\": 5}", "key \"data\"|object");
    bad_file("bad name characters", "{\"name\": \"a/b\"}", "key \"name\"|\"a/b\"");
    bad_file("bad enum", "{\"entropy_distance\": \"l3\"}", "entropy_distance|\"l1\" or \"l2\"|\"l3\"");
    bad_file("bad eval_precision", "{\"eval_precision\": \"fp16\"}", "key \"eval_precision\"|\"fp32\" or \"bf16\"|\"fp16\"");
    bad_file("eval_precision not a string", "{\"eval_precision\": 16}", "key \"eval_precision\"|\"bf16\"|got 16");
    bad_file("bad cuda_math", "{\"cuda_math\": \"tf16\"}", "key \"cuda_math\"|\"fp32\" or \"tf32\"|\"tf16\"");
    bad_file("cuda_math not a string", "{\"cuda_math\": 32}", "key \"cuda_math\"|\"tf32\"|got 32");
    bad_file("cuda_math in upper case", "{\"cuda_math\": \"TF32\"}", "key \"cuda_math\"|\"TF32\"");
    bad_file("bad task", "{\"task\": \"cifar\"}", "key \"task\"|\"mnist\" or \"toy\"");
    bad_file("bad data set", "{\"data\": {\"dataset\": \"cifar10\"}}",
             "key \"data.dataset\"|one of \"mnist\" or \"fashion-mnist\"|\"cifar10\"");
    bad_file("data set not a string", "{\"data\": {\"dataset\": 1}}", "key \"data.dataset\"|\"fashion-mnist\"|got 1");
    bad_file("data set at top level", "{\"dataset\": \"fashion-mnist\"}", "unknown key \"dataset\"");
    bad_file("lr <= 0", "{\"lr\": -1}", "key \"lr\"|expected a number > 0, got -1");
    bad_file("lr_decay > 1", "{\"lr_decay\": 1.5}", "key \"lr_decay\"|(0, 1]|1.5");
    bad_file("adam_beta1 = 1", "{\"adam_beta1\": 1}", "key \"adam_beta1\"|[0, 1)");
    bad_file("lambda = 0", "{\"lambda\": 0}", "key \"lambda\"|> 0");
    bad_file("steps = 0", "{\"steps\": 0}", "key \"steps\"|>= 1");
    bad_file("batch = 1", "{\"batch\": 1}", "key \"batch\"|>= 2");
    bad_file("int overflow", "{\"steps\": 1e10}", "key \"steps\"");
    bad_file("huge number", "{\"lr\": 1e999}", "key \"lr\"");
    bad_file("negative seed", "{\"seed\": -1}", "key \"seed\"|2^53");
    bad_file("seed above 2^53", "{\"seed\": 1e17}", "key \"seed\"");
    bad_file("val_samples = 1", "{\"val_samples\": 1}", "key \"val_samples\"|>= 2");
    bad_file("too many hidden sizes", "{\"extractor_hidden\": [1,2,3,4,5,6,7,8,9]}",
             "key \"extractor_hidden\"|at most 8");
    bad_file("hidden size 0", "{\"toy\": {\"hidden\": [30, 0]}}", "key \"toy.hidden[1]\"|[1, 1048576]");
    bad_file("input with 2 dims", "{\"target\": {\"input\": [28, 28]}}", "key \"target.input\"|[h, w, c]");
    bad_file("classes = 1", "{\"target\": {\"classes\": 1}}", "key \"target.classes\"");
    bad_file("bad layer type", "{\"target\": {\"layers\": [{\"type\": \"dense\", \"units\": 10}]}}",
             "key \"target.layers[0].type\"|\"dense\"|\"conv\"");
    bad_file("layer without type", "{\"target\": {\"layers\": [{\"units\": 10}]}}",
             "key \"target.layers[0]\"|\"type\"");
    bad_file("even conv kernel", "{\"target\": {\"layers\": [{\"type\": \"conv\", \"kernel\": 4, "
             "\"filters\": 3, \"gen_hidden\": [4]}]}}", "key \"target.layers[0].kernel\"|odd");
    bad_file("fc with filters", "{\"target\": {\"layers\": [{\"type\": \"fc\", \"filters\": 10, "
             "\"gen_hidden\": [4]}]}}", "target.layers[0].filters|did you mean \"units\"");
    bad_file("conv missing filters", "{\"target\": {\"layers\": [{\"type\": \"conv\", \"kernel\": 3, "
             "\"gen_hidden\": [4]}]}}", "target.layers[0]|needs \"filters\"");
    bad_file("relu with a kernel", "{\"target\": {\"layers\": [{\"type\": \"relu\", \"kernel\": 3}]}}",
             "target.layers[0].kernel|relu");
    bad_file("empty layer list", "{\"target\": {\"layers\": []}}", "key \"target.layers\"|1 to 32");
    bad_job("last layer units != classes", "{\"target\": {\"layers\": [{\"type\": \"fc\", \"units\": 8, "
             "\"gen_hidden\": [4]}]}}", "target.layers|target.classes|8 units");
    bad_job("last layer not fc", "{\"target\": {\"layers\": [{\"type\": \"fc\", \"units\": 10, "
             "\"gen_hidden\": [4]}, {\"type\": \"relu\"}]}}", "target.layers|a relu layer");
    bad_job("conv after fc", "{\"target\": {\"layers\": [{\"type\": \"fc\", \"units\": 8, \"gen_hidden\": [4]}, "
             "{\"type\": \"conv\", \"kernel\": 3, \"filters\": 2, \"gen_hidden\": [4]}, "
             "{\"type\": \"fc\", \"units\": 10, \"gen_hidden\": [4]}]}}", "target.layers[1]|conv|fc");
    bad_job("train + validation > 60000", "{\"data\": {\"train\": 58000}}", "data.train|data.validation|60000");
    bad_job("val_images > validation", "{\"val_images\": 6000}", "val_images|data.validation");
    bad_file("toy means not points", "{\"toy\": {\"means\": [[0, 0], [1]]}}", "key \"toy.means[1]\"|[x, y]");
    bad_file("toy without means", "{\"task\": \"toy\", \"toy\": {\"means\": []}}", "key \"toy.means\"|1 to 32");
    bad_file("bad comment", "{\"comment\": 5}", "key \"comment\"");
    expect_fatal("missing file", BAD_FILE, "/nonexistent/job.json", NULL, "/nonexistent/job.json");

    bad_set("bad eval_precision via --set", "eval_precision=bf17", "key \"eval_precision\"|\"bf17\"");
    bad_set("bad cuda_math via --set", "cuda_math=bf16", "key \"cuda_math\"|\"fp32\" or \"tf32\"|\"bf16\"");
    bad_set("--set without '='", "lambda", "\"lambda\"|key=value");
    bad_set("--set empty key", "=5", "empty");
    bad_set("--set unknown key", "lamda=1", "\"lamda\"|did you mean \"lambda\"");
    bad_set("--set unknown nested key", "data.dri=/x", "\"data.dri\"|\"data.dir\"");
    bad_set("--set out of range", "lr=-1", "key \"lr\"|> 0|-1");
    bad_set("--set wrong type", "steps=abc", "key \"steps\"|integer|\"abc\"");
    bad_set("--set nested out of range", "target.classes=1", "key \"target.classes\"|[2, ");
    bad_set("--set bad list", "extractor_hidden=[300, -1]", "key \"extractor_hidden[1]\"");
    bad_set("--set bad layer list", "target.layers=[{\"type\": \"pool\"}]", "key \"target.layers[0].type\"|\"pool\"");
    bad_set("--set layer index out of range", "target.layers[20].kernel=3", "target.layers[20]|9 entries");
    bad_set("--set bad layer field", "target.layers[0].kernel=4", "key \"target.layers[0].kernel\"|odd");
    bad_set("--set bad enum", "task=cifar", "key \"task\"|\"cifar\"");
    bad_set("--set bad data set", "data.dataset=Fashion-MNIST", "key \"data.dataset\"|\"mnist\" or \"fashion-mnist\"|\"Fashion-MNIST\"");
    expect_fatal("--set then validate", BAD_VALIDATE, "target.classes=3", NULL,
                 "job: |task \"mnist\" needs|\"target.classes\" 10");
    expect_fatal("--set last layer units", BAD_VALIDATE, "target.layers[8].units=9", NULL,
                 "job: |target.layers|target.classes|9 units");
    expect_fatal("--set input shape", BAD_VALIDATE, "target.input=[32, 32, 3]", NULL,
                 "job: |target.input|[28, 28, 1]");
    bad_set("--set transposed key", "lmabda=1", "\"lmabda\"|did you mean \"lambda\"");
    expect_fatal("--set train+validation", BAD_SET, "data.train=55001", NULL, "data.train|60000");

    // numbers out of range and sizes whose products overflow or exceed the limits
    bad_set("--set 1e400", "lr=1e400", "key \"lr\"|the number 1e400 is out of range");
    bad_set("--set -1e400 in a list", "extractor_hidden=[300, -1e400]", "key \"extractor_hidden[1]\"|-1e400");
    bad_file("1e400 in a nested list", "{\"name\": \"a1e400\", \"toy\": {\"means\": [[1, 2], [3, 5e500]]}}",
             "key \"toy.means[1][1]\"|the number 5e500 is out of range");
    bad_set("--set integer above INT_MAX", "steps=3000000000", "key \"steps\"|<= 2147483647|3000000000");
    expect_fatal("conv filter fan-in overflow", BAD_ARCH, "target.layers[0].filters=1048576",
                 "target.layers[3].kernel=1023", "target.layers[3] (conv)|kernel 1023 x 1023 x 1048576|exceed the limit");
    expect_fatal("conv layer weights too many", BAD_ARCH, "target.layers[0].filters=1048576",
                 "target.layers[0].kernel=1023", "target.layers[0] (conv)|1048576 filters x 1046530 weights each|exceed");
    expect_fatal("fc layer weights too many", BAD_ARCH, "target.layers[3].filters=1048576",
                 "target.layers[6].units=1048576", "target.layers[6] (fc)|1048576 units x 51380225 weights each|exceed");
    expect_fatal("extractor output too wide", BAD_ARCH, "code_size=1048576", "target.layers[0].filters=4096",
                 "the extractor would output 4121 codes x \"code_size\" 1048576");
    expect_fatal("XMUL overflow names the product", BAD_MUL, "A", NULL,
                 "test product A: 9223372036854775808 x 2 is too large");

    expect_fatal("from_json_string malformed", BAD_STRING, "{\"lr\": }", NULL,
                 "run/ckpt_000010.h5|invalid JSON");
    expect_fatal("from_json_string unknown key", BAD_STRING, "{\"foo\": 1}", NULL,
                 "run/ckpt_000010.h5|unknown key \"foo\"|docs/jobs.md");
}

int main(void) {
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ht_test_config.XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 2; }
    test_defaults();
    test_job_files();
    test_set();
    test_round_trip();
    test_dataset();
    test_bad_input();
    char path[256];
    const char *names[] = {"bad.json", "comments.json"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
    return test_summary(&ts, "test_config");
}
