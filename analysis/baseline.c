// hyperanalyze baseline: trains K target networks directly (no hypernetwork) and writes them as a
// sample set, so that accuracy, ensemble, pca, filters, adversarial and ood run on the baseline
// unchanged. K independently seeded networks form a "deep ensemble" (Lakshminarayanan et al. 2017):
// each member has its own initialization (He normal, Glorot uniform output layer; or Glorot
// everywhere) and its own order of training images (an epoch sampler keyed by a per-member seed).
//
// One step: every member draws its own B training images, target_loss_grad computes the mean
// cross-entropy and its gradient for all K members at once (one network per OpenMP thread), and
// one Adam update (TensorFlow form, elementwise) updates all of them. The members never interact,
// so the result of member k depends only on (job, seed, k, steps, batch, lr, init).
//
// The written set follows docs/samples.md (format_version 1); where a sample set from a
// hypernetwork has provenance from a checkpoint, a baseline set has: checkpoint "" (none),
// checkpoint_sha256 "", step = training steps, z all zeros (the networks have no z),
// batch_norm "none", source "hyperanalyze baseline" and the training settings as baseline_*
// attributes. Weights are gauge-fixed like generated ones (unless --no-gauge), which leaves every
// network's function unchanged and makes filters comparable with generated filters.
#include <hdf5.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "adam.h"
#include "classifier.h"
#include "cmds_samples.h"
#include "common.h"
#include "data.h"
#include "gauge.h"
#include "sample.h"
#include "target.h"

#define CMD "baseline"

// Checks an HDF5 call (negative = failure) and ends the process naming the file and the object.
#define BL_H5_CHECK(call, path, what) \
    do { if ((call) < 0) HT_FATAL("cannot write sample set '%s': HDF5 call failed on %s", (path), (what)); } while (0)

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze baseline [--job JOB.json] --out ENS.h5 [options]\n"
        "\n"
        "Plain training of the job's target network: K independently seeded networks (a deep\n"
        "ensemble), each trained with Adam on its own minibatches of the job's training split, written\n"
        "as a sample set in the layout of hypertrain sample (docs/samples.md), so that accuracy,\n"
        "ensemble, filters, adversarial, ood and pca run on it unchanged. Prints each member's mean\n"
        "training loss over the first and the last logging interval.\n"
        "\n"
        "options:\n"
        "  --job JOB.json     the target network and data split (default: the paper's job)\n"
        "  --out ENS.h5       the sample set to write (required; refused if it exists unless --force)\n"
        "  --members K        networks (default 10)\n"
        "  --steps N          Adam steps per network (default 2000)\n"
        "  --batch B          training images per network and step (default 32)\n"
        "  --lr LR            Adam learning rate (default 1e-3; beta1 0.9, beta2 0.999, eps 1e-8)\n"
        "  --init he|glorot   he (default): He normal for ReLU layers, Glorot uniform output layer;\n"
        "                     glorot: Glorot uniform everywhere; biases 0\n"
        "  --seed S           seed (default: the job's seed); member k uses (S, k)\n"
        "  --metrics val|test|none  store /metrics/{accuracy,loss} of each member (default none)\n"
        "  --images N         the first N images of that split (default all)\n"
        "  --no-gauge         store the weights as trained (default: gauge-fixed like generated ones)\n"
        "  --log-every N      progress line every N steps (default 100)\n"
        "  --data DIR         MNIST directory\n"
        "  --force            overwrite --out\n"
        "  --threads N        OpenMP threads\n");
}

static void attr_num(hid_t obj, const char *path, const char *name, hid_t ftype, hid_t mtype, const void *v) {
    hid_t sp = H5Screate(H5S_SCALAR);
    BL_H5_CHECK(sp, path, name);
    hid_t at = H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
    BL_H5_CHECK(at, path, name);
    BL_H5_CHECK(H5Awrite(at, mtype, v), path, name);
    BL_H5_CHECK(H5Aclose(at), path, name);
    BL_H5_CHECK(H5Sclose(sp), path, name);
}
static void attr_i32(hid_t o, const char *p, const char *name, int v) { attr_num(o, p, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v); }
static void attr_i64(hid_t o, const char *p, const char *name, int64_t v) { attr_num(o, p, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v); }
static void attr_u64(hid_t o, const char *p, const char *name, uint64_t v) { attr_num(o, p, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v); }
static void attr_f64(hid_t o, const char *p, const char *name, double v) { attr_num(o, p, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v); }

// A float32 dataset of n rows, chunked along the first axis (about 1 MiB per chunk) as
// hypertrain sample writes them, with the whole data written at once.
static void write_rows(hid_t f, const char *path, const char *name, int ndim, const size_t *dims,
                       const float *data) {
    hsize_t d[8], chunk[8];
    size_t row = sizeof(float);
    for (int i = 0; i < ndim; i++) { d[i] = dims[i]; chunk[i] = dims[i]; if (i) row *= dims[i]; }
    hsize_t r = (hsize_t)((1u << 20) / row);
    chunk[0] = r < 1 ? 1 : r > d[0] ? d[0] : r;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    BL_H5_CHECK(lcpl, path, name);
    BL_H5_CHECK(H5Pset_create_intermediate_group(lcpl, 1), path, name);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    BL_H5_CHECK(dcpl, path, name);
    BL_H5_CHECK(H5Pset_chunk(dcpl, ndim, chunk), path, name);
    hid_t sp = H5Screate_simple(ndim, d, NULL);
    BL_H5_CHECK(sp, path, name);
    hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT);
    BL_H5_CHECK(ds, path, name);
    BL_H5_CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path, name);
    BL_H5_CHECK(H5Dclose(ds), path, name);
    BL_H5_CHECK(H5Sclose(sp), path, name);
    BL_H5_CHECK(H5Pclose(dcpl), path, name);
    BL_H5_CHECK(H5Pclose(lcpl), path, name);
}

// The natural-layout kernel shape of layer l for n networks (docs/samples.md).
static int kernel_dims(const TargetArch *a, int l, size_t n, size_t *dims) {
    const TargetLayer *L = &a->layers[l];
    const TargetOp *op = &a->ops[L->op];
    dims[0] = n;
    if (op->type == OP_CONV) {
        dims[1] = dims[2] = (size_t)op->kernel; dims[3] = (size_t)op->in_c; dims[4] = (size_t)L->filters;
        return 5;
    }
    dims[1] = (size_t)L->fan_in; dims[2] = (size_t)L->filters;
    return 3;
}

typedef struct {
    const char *out, *split, *init;
    long K, steps, batch, images, log_every;
    double lr;
    uint64_t seed;
    int gauge;
} BaselineCli;

static void write_set(const BaselineCli *cli, const Job *job, const TargetArch *a, const float *theta,
                      const double *acc, const double *nll, int metrics_images) {
    const size_t K = (size_t)cli->K;
    ResultFile r;
    result_create(&r, cli->out);
    const hid_t f = (hid_t)r.file;
    char desc[SAMPLE_ARCH_DESC_MAX];
    sample_arch_desc(a, desc, sizeof(desc));
    char *json = job_to_json(job);
    result_attr_str(&r, "/", "format", HT_SAMPLES_FORMAT);
    attr_i32(f, cli->out, "format_version", HT_SAMPLES_VERSION);
    result_attr_str(&r, "/", "created_by", "hypertrain " HT_VERSION " (hyperanalyze baseline)");
    attr_i64(f, cli->out, "count", (int64_t)K);
    attr_u64(f, cli->out, "seed", cli->seed);
    attr_i32(f, cli->out, "z_dim", job->z_dim);
    attr_i64(f, cli->out, "n_weights", (int64_t)a->n_weights);
    result_attr_str(&r, "/", "checkpoint", "");
    result_attr_str(&r, "/", "checkpoint_sha256", "");
    attr_i64(f, cli->out, "step", cli->steps);
    attr_u64(f, cli->out, "train_seed", cli->seed);
    result_attr_str(&r, "/", "job", json);
    result_attr_str(&r, "/", "target_architecture", desc);
    attr_i32(f, cli->out, "gauge_fixed", cli->gauge);
    result_attr_str(&r, "/", "batch_norm", "none");
    result_attr_str(&r, "/", "metrics_split", acc ? cli->split : "none");
    attr_i32(f, cli->out, "metrics_images", acc ? metrics_images : 0);
    result_attr_str(&r, "/", "source", "hyperanalyze baseline");
    result_attr_str(&r, "/", "baseline_init", cli->init);
    attr_f64(f, cli->out, "baseline_lr", cli->lr);
    attr_i64(f, cli->out, "baseline_batch", cli->batch);
    free(json);

    size_t dims[5] = { K, (size_t)job->z_dim };
    float *z = XCALLOC(K * (size_t)job->z_dim, sizeof(float));
    write_rows(f, cli->out, "/z", 2, dims, z);
    free(z);
    for (int l = 0; l < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        float *kern = XALLOC_FLOATS(K * L->fan_in * L->filters), *bias = XALLOC_FLOATS(K * L->filters);
        sample_layer_to_natural(L, (int)K, theta + L->offset, a->n_weights, kern, bias);
        char g[64], name[96];
        XSNPRINTF(g, sizeof(g), "/weights/layer%d", l + 1);
        const int nd = kernel_dims(a, l, K, dims);
        XSNPRINTF(name, sizeof(name), "%s/kernel", g);
        write_rows(f, cli->out, name, nd, dims, kern);
        dims[1] = (size_t)L->filters;
        XSNPRINTF(name, sizeof(name), "%s/bias", g);
        write_rows(f, cli->out, name, 2, dims, bias);
        const TargetOp *op = &a->ops[L->op];
        result_attr_str(&r, g, "type", op->type == OP_CONV ? "conv" : "fc");
        hid_t gid = H5Gopen2(f, g, H5P_DEFAULT);
        BL_H5_CHECK(gid, cli->out, g);
        attr_i32(gid, cli->out, "filters", L->filters);
        attr_i32(gid, cli->out, "fan_in", L->fan_in);
        attr_i32(gid, cli->out, "in_channels", L->in_channels);
        if (op->type == OP_CONV) attr_i32(gid, cli->out, "kernel_size", op->kernel);
        attr_i64(gid, cli->out, "flat_offset", (int64_t)L->offset);
        BL_H5_CHECK(H5Gclose(gid), cli->out, g);
        free(kern);
        free(bias);
    }
    if (acc) {
        size_t dn[1] = { K };
        result_f64(&r, "/metrics/accuracy", 1, dn, acc);
        result_f64(&r, "/metrics/loss", 1, dn, nll);
        result_attr_str(&r, "/metrics", "split", cli->split);
        hid_t gid = H5Gopen2(f, "/metrics", H5P_DEFAULT);
        BL_H5_CHECK(gid, cli->out, "/metrics");
        attr_i32(gid, cli->out, "images", metrics_images);
        BL_H5_CHECK(H5Gclose(gid), cli->out, "/metrics");
    }
    result_close(&r);
}

int cmd_baseline(int argc, char **argv) {
    const char *job_file = NULL, *data = NULL;
    BaselineCli cli = { NULL, "none", "he", 10, 2000, 32, 0, 100, 1e-3, 0, 1 };
    long threads = 0, seed = -1;
    int force = 0, rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--no-gauge")) cli.gauge = 0;
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--job")) { job_file = v; i++; }
        else if (!strcmp(a, "--out")) { cli.out = v; i++; }
        else if (!strcmp(a, "--data")) { data = v; i++; }
        else if (!strcmp(a, "--metrics")) { cli.split = v; i++; }
        else if (!strcmp(a, "--init")) { cli.init = v; i++; }
        else if (!strcmp(a, "--lr")) {
            char *end;
            cli.lr = strtod(v, &end);
            if (end == v || *end || !(cli.lr > 0 && cli.lr < 10))
                return ha_usage_error(CMD, "--lr: expected a number in (0, 10), got '%s'", v);
            i++;
        }
        else if (!strcmp(a, "--members")) { if ((rc = an_long(CMD, a, v, 1, 1L << 16, &cli.K))) return rc; i++; }
        else if (!strcmp(a, "--steps")) { if ((rc = an_long(CMD, a, v, 0, 1L << 30, &cli.steps))) return rc; i++; }
        else if (!strcmp(a, "--batch")) { if ((rc = an_long(CMD, a, v, 1, 1L << 16, &cli.batch))) return rc; i++; }
        else if (!strcmp(a, "--images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 30, &cli.images))) return rc; i++; }
        else if (!strcmp(a, "--log-every")) { if ((rc = an_long(CMD, a, v, 1, 1L << 30, &cli.log_every))) return rc; i++; }
        else if (!strcmp(a, "--seed")) { if ((rc = an_long(CMD, a, v, 0, 1L << 62, &seed))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else return ha_usage_error(CMD, "unexpected argument '%s'", a);
    }
    if (!cli.out) return ha_usage_error(CMD, "--out ENS.h5 is required");
    if (strcmp(cli.split, "val") && strcmp(cli.split, "test") && strcmp(cli.split, "none"))
        return ha_usage_error(CMD, "--metrics: expected val, test or none, got '%s'", cli.split);
    ClassifierInit init;
    if (!strcmp(cli.init, "he")) init = INIT_HE;
    else if (!strcmp(cli.init, "glorot")) init = INIT_GLOROT;
    else return ha_usage_error(CMD, "--init: expected he or glorot, got '%s'", cli.init);
    struct stat st;
    if (!force && stat(cli.out, &st) == 0)
        return ha_error(CMD, "'%s' exists (use --force to overwrite it)", cli.out);
    if (threads > 0) omp_set_num_threads((int)threads);

    Job job;
    job_defaults(&job);
    if (job_file) job_load_file(&job, job_file);
    job_validate(&job);
    if (job.task != TASK_MNIST) return ha_error(CMD, "job '%s' is a toy-task job: it has no target network", job_file);
    cli.seed = seed >= 0 ? (uint64_t)seed : job.seed;
    TargetArch arch;
    arch_build_target(&arch, &job);
    const TargetArch *a = &arch;
    const size_t W = a->n_weights, K = (size_t)cli.K, B = (size_t)cli.batch, isz = (size_t)a->in_size;

    Mnist mn;
    data_load(&mn, job.dataset, data ? data : data_resolve_dir_for(job.dataset, job.data_dir), job.n_train, job.n_val, job.verify_checksums);
    HT_CHECK(mn.train.n >= 1, "baseline: the job's training split is empty");
    // Weights, gradients and Adam moments of K networks, and a batch of images per member.
    const size_t KW = XMUL(K, W, "baseline: --members %zu x %zu weights", K, W);
    const size_t KBI = XMUL(XMUL(K, B, "baseline: --members x --batch"), isz, "baseline: images");
    HT_CHECK_MEMORY(XADD(XMUL(KW, 4 * sizeof(float), "baseline: training state"),
                         XMUL(KBI, sizeof(float), "baseline: images"), "baseline: memory"),
                    "baseline: --members %zu networks of %zu weights with --batch %zu", K, W, B);
    float *theta = XALLOC_FLOATS(KW), *grad = XALLOC_FLOATS(KW);
    float *m1 = XCALLOC(KW, sizeof(float)), *m2 = XCALLOC(KW, sizeof(float));
    classifier_init(a, init, cli.seed, 0, (int)K, theta);
    Sampler *smp = XMALLOC(K * sizeof(Sampler));
    for (size_t k = 0; k < K; k++)   // a distinct image order per member (splitmix64 of (seed, k))
        sampler_init(&smp[k], cli.seed * 0x9E3779B97F4A7C15ull + (k + 1) * 0xBF58476D1CE4E5B9ull, mn.train.n);
    float *imgs = XALLOC_FLOATS(KBI);
    uint8_t *labels = XMALLOC(K * B);
    double *loss = XMALLOC(K * sizeof(double)), *first = XCALLOC(K, sizeof(double)), *last = XCALLOC(K, sizeof(double));
    double *run = XCALLOC(K, sizeof(double)), *run_acc = XCALLOC(K, sizeof(double)), *last_acc = XCALLOC(K, sizeof(double));
    int *correct = XMALLOC(K * sizeof(int));
    long first_n = 0, last_n = 0, run_n = 0;
    TargetNet tn;
    target_init(&tn, a, (int)B, 0);
    const double t0 = ht_now();
    for (long t = 1; t <= cli.steps; t++) {
        for (size_t k = 0; k < K; k++)
            for (size_t j = 0; j < B; j++) {
                const int idx = sampler_index(&smp[k], (int64_t)(t - 1) * (int64_t)B + (int64_t)j);
                memcpy(imgs + (k * B + j) * isz, mn.train.images + (size_t)idx * isz, isz * sizeof(float));
                labels[k * B + j] = mn.train.labels[idx];
            }
        target_loss_grad(&tn, (int)K, theta, (int)B, imgs, B * isz, labels, B, 1.0f / (float)B, loss, correct, grad);
        for (size_t k = 0; k < K; k++) {
            HT_CHECK(isfinite(loss[k]), "baseline: member %zu: non-finite loss at step %ld (lower --lr)", k, t);
            run[k] += loss[k] / B;
            run_acc[k] += (double)correct[k] / B;
        }
        run_n++;
        adam_update(theta, grad, m1, m2, K * W, cli.lr, 0.9, 0.999, 1e-8, t);
        if (t % cli.log_every == 0 || t == cli.steps) {
            double mean = 0;
            for (size_t k = 0; k < K; k++) {
                if (!first_n) first[k] = run[k] / run_n;
                last[k] = run[k] / run_n;
                last_acc[k] = run_acc[k] / run_n;
                mean += last[k] / K;
                run[k] = run_acc[k] = 0;
            }
            if (!first_n) first_n = run_n;
            last_n = run_n;
            run_n = 0;
            fprintf(stderr, "baseline: step %ld/%ld | mean loss %.4f over the last %ld steps | %.1fs\n", t,
                    cli.steps, mean, last_n, ht_now() - t0);
        }
    }
    const double secs = ht_now() - t0;

    float *out = theta;
    if (cli.gauge) {
        out = XALLOC_FLOATS(K * W);
        float *scales = XALLOC_FLOATS(K * (size_t)(gauge_n_scales(a) + 1));
        gauge_forward(a, (int)K, theta, out, scales);
        free(scales);
    }
    double *acc = NULL, *nll = NULL;
    int metrics_images = 0;
    if (strcmp(cli.split, "none")) {
        Dataset d = !strcmp(cli.split, "val") ? mn.val : mn.test;
        if (cli.images > 0 && cli.images < d.n) d.n = (int)cli.images;
        HT_CHECK(d.n >= 1, "baseline: the %s split is empty", cli.split);
        metrics_images = d.n;
        acc = XMALLOC(K * sizeof(double));
        nll = XMALLOC(K * sizeof(double));
        TargetNet te;
        target_init(&te, a, 100, 0);
        sample_eval(&te, (int)K, out, &d, NULL, acc, nll);
        target_free(&te);
    }
    write_set(&cli, &job, a, out, acc, nll, metrics_images);

    printf("# hyperanalyze baseline: %zu members x %ld steps (batch %zu, lr %g, init %s, seed %llu) of [%s], "
           "%.1fs\n", K, cli.steps, B, cli.lr, cli.init, (unsigned long long)cli.seed,
           job_file ? job_file : "the paper's job", secs);
    printf("# loss_first: mean training cross-entropy over the first %ld steps; loss_last, train_acc_last: over "
           "the last %ld steps\n", first_n, last_n);
    printf("# sample set: %s%s\n", cli.out, cli.gauge ? " (gauge-fixed)" : "");
    printf("member,loss_first,loss_last,train_acc_last%s\n", acc ? ",accuracy,nll" : "");
    for (size_t k = 0; k < K; k++) {
        printf("%zu,%.6f,%.6f,%.6f", k, first[k], last[k], last_acc[k]);
        if (acc) printf(",%.6f,%.6f", acc[k], nll[k]);
        printf("\n");
    }
    if (out != theta) free(out);
    for (size_t k = 0; k < K; k++) sampler_free(&smp[k]);
    target_free(&tn);
    mnist_free(&mn);
    free(theta); free(grad); free(m1); free(m2); free(smp); free(imgs); free(labels); free(loss); free(first);
    free(last); free(run); free(run_acc); free(last_acc); free(correct); free(acc); free(nll);
    return 0;
}
