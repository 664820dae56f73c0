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
// This file is the command (options, data, gauge fixing, metrics, the sample set, stdout); the
// training is analysis/baseline_core.c (tested in tests/test_analysis.c).
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

#include "baseline_core.h"
#include "classifier.h"
#include "cmds_samples.h"
#include "common.h"
#include "data.h"
#include "gauge.h"
#include "resultio.h"
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

// The "axes" and "meaning" attributes of dataset name.
static void describe(ResultFile *r, const char *name, const char *axes, const char *meaning) {
    result_attr_str(r, name, "axes", axes);
    result_attr_str(r, name, "meaning", meaning);
}

static void write_set(const BaselineCli *cli, const Job *job, const char *job_file, int argc, char **argv,
                      const TargetArch *a, const float *theta, const double *acc, const double *nll,
                      int metrics_images) {
    const size_t K = (size_t)cli->K;
    char job_sha[65] = "";
    if (job_file) resultio_file_sha256(job_file, job_sha);
    ResultFile r;
    result_create(&r, cli->out);
    // provenance: command, tool_version, command_line; the job file (if any) and its SHA-256
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "job_file", job_file ? job_file : "", job_sha);
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
    describe(&r, "/z", "(network, z)", "all zeros: trained networks have no hypernetwork input (the layout of hypertrain sample)");
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
        describe(&r, name, nd == 5 ? "(network, kh, kw, in_channels, filter)" : "(network, fan_in, unit)",
                 cli->gauge ? "weights of member k (TensorFlow HWIO order for conv), gauge-fixed as generated ones"
                            : "weights of member k (TensorFlow HWIO order for conv), as trained");
        dims[1] = (size_t)L->filters;
        XSNPRINTF(name, sizeof(name), "%s/bias", g);
        write_rows(f, cli->out, name, 2, dims, bias);
        describe(&r, name, "(network, filter)", cli->gauge ? "biases of member k, gauge-fixed" : "biases of member k, as trained");
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
        resultio_f64(&r, "/metrics/accuracy", 1, dn, acc, "(network)",
                     "fraction of the split's first metrics_images images member k classifies right (argmax, ties to the lowest class)");
        resultio_f64(&r, "/metrics/loss", 1, dn, nll, "(network)",
                     "mean cross-entropy -log(p_label + 1e-30) of member k over the same images (nats)");
        result_attr_str(&r, "/metrics", "split", cli->split);
        hid_t gid = H5Gopen2(f, "/metrics", H5P_DEFAULT);
        BL_H5_CHECK(gid, cli->out, "/metrics");
        attr_i32(gid, cli->out, "images", metrics_images);
        BL_H5_CHECK(H5Gclose(gid), cli->out, "/metrics");
    }
    result_close(&r);
}

// The K networks theta (K, n_weights) gauge-fixed like generated ones (a new array).
static float *gauge_fixed(const TargetArch *a, int K, const float *theta) {
    float *out = XALLOC_FLOATS((size_t)K * a->n_weights);
    float *scales = XALLOC_FLOATS((size_t)K * (size_t)(gauge_n_scales(a) + 1));
    gauge_forward(a, K, theta, out, scales);
    free(scales);
    return out;
}

// Accuracy and mean cross-entropy (*acc, *nll: new arrays of K) of every member on the first
// `images` images of split d (all when 0). Returns the number of images.
static int member_metrics(const TargetArch *a, int K, const float *theta, const Dataset *split, const char *name,
                          long images, double **acc, double **nll) {
    Dataset d = *split;
    if (images > 0 && images < d.n) d.n = (int)images;
    HT_CHECK(d.n >= 1, "baseline: the %s split is empty", name);
    *acc = XMALLOC((size_t)K * sizeof(double));
    *nll = XMALLOC((size_t)K * sizeof(double));
    TargetNet te;
    target_init(&te, a, 100, 0);
    sample_eval(&te, K, theta, &d, NULL, *acc, *nll);
    target_free(&te);
    return d.n;
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
    const size_t W = a->n_weights, K = (size_t)cli.K;

    Mnist mn;
    data_load(&mn, job.dataset, data ? data : data_resolve_dir_for(job.dataset, job.data_dir), job.n_train, job.n_val, job.verify_checksums);
    const BaselineTrainCfg cfg = { cli.K, cli.steps, cli.batch, cli.log_every, cli.lr, cli.seed, init };
    baseline_check_memory(&cfg, a);
    float *theta = XALLOC_FLOATS(K * W);
    BaselineLog lg;
    const double t0 = ht_now();
    baseline_train(&cfg, a, &mn.train, theta, &lg);
    const double secs = ht_now() - t0;

    float *out = cli.gauge ? gauge_fixed(a, (int)K, theta) : theta;
    double *acc = NULL, *nll = NULL;
    int metrics_images = 0;
    if (strcmp(cli.split, "none"))
        metrics_images = member_metrics(a, (int)K, out, !strcmp(cli.split, "val") ? &mn.val : &mn.test, cli.split,
                                        cli.images, &acc, &nll);
    write_set(&cli, &job, job_file, argc, argv, a, out, acc, nll, metrics_images);

    printf("# hyperanalyze baseline: %zu members x %ld steps (batch %zu, lr %g, init %s, seed %llu) of [%s], "
           "%.1fs\n", K, cli.steps, (size_t)cli.batch, cli.lr, cli.init, (unsigned long long)cli.seed,
           job_file ? job_file : "the paper's job", secs);
    printf("# loss_first: mean training cross-entropy over the first %ld steps; loss_last, train_acc_last: over "
           "the last %ld steps\n", lg.first_n, lg.last_n);
    printf("# sample set: %s%s\n", cli.out, cli.gauge ? " (gauge-fixed)" : "");
    printf("member,loss_first,loss_last,train_acc_last%s\n", acc ? ",accuracy,nll" : "");
    for (size_t k = 0; k < K; k++) {
        printf("%zu,%.6f,%.6f,%.6f", k, lg.first[k], lg.last[k], lg.last_acc[k]);
        if (acc) printf(",%.6f,%.6f", acc[k], nll[k]);
        printf("\n");
    }
    if (out != theta) free(out);
    mnist_free(&mn);
    baseline_log_free(&lg);
    free(theta); free(acc); free(nll);
    return 0;
}
