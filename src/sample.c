// sample.c: sample-set export (`hypertrain sample`), the reading API, evaluation helpers and the
// analysis tools' result files. Layout and guarantees in docs/samples.md.
//
// Every HDF5 call goes through HT_H5CHECK (src/h5util.h, shared with checkpoints), which ends the
// run with one line naming the file, the HDF5 function, the object and HDF5's innermost message.
// HDF5's own error printing is off while our functions run.
//
// Export on P ranks: networks are generated in groups of HT_SAMPLE_GROUP on a fixed grid of global
// indices, the groups of a block are shared out over the ranks (evaluation-mode batch norm needs
// no communication), each rank evaluates its own networks when metrics are asked for, the block
// is all-gathered and rank 0 writes it. Nothing depends on P: the same group always holds the
// same networks, and every network's arithmetic is the same.
#include "sample.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "checkpoint.h"
#include "common.h"
#include "h5util.h"
#include "gauge.h"
#include "hyper.h"
#include "model.h"
#include "rng.h"
#include "sha256.h"

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t must be 64-bit (HDF5 >= 1.10)");

// ---------------------------------------------------------------------------------------------
// Error handling

static void remove_tmp_now(void);

// Temporary files being written ("<path>.tmp.<pid>"): removed at exit if a fatal error ends the
// process before they were renamed (under MPI_Abort they may stay; readers never open them).
// Only a fatal error can exit while one is registered (every normal path renames and unregisters
// first), and then the process ends here with status 1 (ht_fatal's) without running HDF5's own exit
// handler: after a failed write (disk full, file-size limit) HDF5 1.10 crashes with a segmentation
// fault while closing the broken file, which would turn our one-line error into a crash.
#define MAX_TMP 4
static char g_tmp[MAX_TMP][HT_PATH_MAX + 32];
static int g_h5_failed = 0;   // an HDF5 call failed: skip HDF5's exit handler

static void remove_tmp_now(void) {
    g_h5_failed = 1;
    for (int i = 0; i < MAX_TMP; i++)
        if (g_tmp[i][0]) { unlink(g_tmp[i]); g_tmp[i][0] = '\0'; }
}

static void remove_tmp_files(void) {
    int any = g_h5_failed;
    for (int i = 0; i < MAX_TMP; i++)
        if (g_tmp[i][0]) { unlink(g_tmp[i]); g_tmp[i][0] = '\0'; any = 1; }
    if (any) {
        fflush(NULL);
        _exit(1);
    }
}

static void tmp_register(const char *tmp) {
    static int registered = 0;
    if (!registered) { atexit(remove_tmp_files); registered = 1; }
    for (int i = 0; i < MAX_TMP; i++)
        if (!g_tmp[i][0]) { snprintf(g_tmp[i], sizeof(g_tmp[i]), "%s", tmp); return; }
}

static void tmp_unregister(const char *tmp) {
    for (int i = 0; i < MAX_TMP; i++)
        if (!strcmp(g_tmp[i], tmp)) g_tmp[i][0] = '\0';
}

static void make_tmp_name(char *tmp, size_t n, const char *path) {
    int r = snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    HT_CHECK(r > 0 && (size_t)r < n, "output path '%s' is too long", path);
}

// Renames tmp over path (atomic); fatal naming both on failure.
static void commit_tmp(const char *tmp, const char *path, const char *kind) {
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        tmp_unregister(tmp);
        HT_FATAL("cannot write %s '%s': renaming '%s' to it failed: %s", kind, path, tmp, strerror(e));
    }
    tmp_unregister(tmp);
}

// ---------------------------------------------------------------------------------------------
// Small HDF5 helpers





static void attr_i32(hid_t loc, const H5Ctx *c, const char *name, int v) {
    h5u_write_attr(loc, c, name, H5T_STD_I32LE, H5T_NATIVE_INT, &v);
}
static void attr_i64(hid_t loc, const H5Ctx *c, const char *name, int64_t v) {
    h5u_write_attr(loc, c, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}
static void attr_u64(hid_t loc, const H5Ctx *c, const char *name, uint64_t v) {
    h5u_write_attr(loc, c, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}
static void attr_f64(hid_t loc, const H5Ctx *c, const char *name, double v) {
    h5u_write_attr(loc, c, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}






// Selects rows [start, start + n) of a dataset (all other dimensions whole) and reads or writes
// them from/to a contiguous buffer of mem_type.
static void rows_io(hid_t ds, const H5Ctx *c, const char *name, hid_t mem_type, long long start, int n,
                    void *buf, int write) {
    if (n <= 0) return;
    hid_t fs = HT_H5CHECK(H5Dget_space(ds), c, name);
    int nd = (int)HT_H5CHECK(H5Sget_simple_extent_ndims(fs), c, name);
    hsize_t dims[H5S_MAX_RANK], off[H5S_MAX_RANK], cnt[H5S_MAX_RANK];
    HT_H5CHECK(H5Sget_simple_extent_dims(fs, dims, NULL), c, name);
    for (int d = 0; d < nd; d++) { off[d] = 0; cnt[d] = dims[d]; }
    off[0] = (hsize_t)start;
    cnt[0] = (hsize_t)n;
    HT_H5CHECK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL), c, name);
    hid_t ms = HT_H5CHECK(H5Screate_simple(nd, cnt, NULL), c, name);
    if (write) HT_H5CHECK(H5Dwrite(ds, mem_type, ms, fs, H5P_DEFAULT, buf), c, name);
    else HT_H5CHECK(H5Dread(ds, mem_type, ms, fs, H5P_DEFAULT, buf), c, name);
    HT_H5CHECK(H5Sclose(ms), c, name);
    HT_H5CHECK(H5Sclose(fs), c, name);
}

// ---------------------------------------------------------------------------------------------
// Layout helpers

void sample_draw_z(uint64_t seed, long long i, int z_dim, float *z) {
    rng_uniform(seed, RNG_STREAM_SAMPLE, (uint32_t)((unsigned long long)i & 0xffffffffu),
                (uint32_t)((unsigned long long)i >> 32), -1.0f, 1.0f, z, z_dim);
}

void sample_arch_desc(const TargetArch *a, char *out, size_t n) {
    size_t k = (size_t)XSNPRINTF(out, n, "input %dx%dx%d", a->in_h, a->in_w, a->in_c);
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        switch (op->type) {
        case OP_CONV:
            k += (size_t)XSNPRINTF(out + k, n - k, " | conv %dx%dx%d->%d", op->kernel, op->kernel, op->in_c, op->out_c);
            break;
        case OP_FC:
            k += (size_t)XSNPRINTF(out + k, n - k, " | fc %d->%d", op->in_h * op->in_w * op->in_c, op->out_c);
            break;
        case OP_RELU: k += (size_t)XSNPRINTF(out + k, n - k, " | relu"); break;
        case OP_MAXPOOL: k += (size_t)XSNPRINTF(out + k, n - k, " | maxpool %d", op->kernel); break;
        }
    }
}

// Natural shape of layer l's kernel for n networks: conv (n, kh, kw, cin, filters), fc (n, fan_in, units).
static int kernel_dims(const TargetArch *a, int l, hsize_t n, hsize_t *dims) {
    const TargetLayer *L = &a->layers[l];
    const TargetOp *op = &a->ops[L->op];
    dims[0] = n;
    if (op->type == OP_CONV) {
        dims[1] = (hsize_t)op->kernel; dims[2] = (hsize_t)op->kernel; dims[3] = (hsize_t)op->in_c;
        dims[4] = (hsize_t)L->filters;
        return 5;
    }
    dims[1] = (hsize_t)L->fan_in; dims[2] = (hsize_t)L->filters;
    return 3;
}

void sample_layer_to_natural(const TargetLayer *L, int n, const float *flat, size_t stride,
                             float *kernel, float *bias) {
    const int F = L->filters, f = L->fan_in;
    #pragma omp parallel for schedule(static) if (n > 8)
    for (int b = 0; b < n; b++) {
        const float *src = flat + (size_t)b * stride;
        float *kb = kernel + (size_t)b * f * F;
        for (int i = 0; i < F; i++) {
            const float *w = src + (size_t)i * (f + 1);
            for (int j = 0; j < f; j++) kb[(size_t)j * F + i] = w[j];
            bias[(size_t)b * F + i] = w[f];
        }
    }
}

void sample_layer_from_natural(const TargetLayer *L, int n, const float *kernel, const float *bias,
                               float *flat, size_t stride) {
    const int F = L->filters, f = L->fan_in;
    #pragma omp parallel for schedule(static) if (n > 8)
    for (int b = 0; b < n; b++) {
        float *dst = flat + (size_t)b * stride;
        const float *kb = kernel + (size_t)b * f * F;
        for (int i = 0; i < F; i++) {
            float *w = dst + (size_t)i * (f + 1);
            for (int j = 0; j < f; j++) w[j] = kb[(size_t)j * F + i];
            w[f] = bias[(size_t)b * F + i];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation helpers

void sample_load_split(const Job *job, const char *data_dir, const char *split, int max_images,
                       Mnist *m, Dataset *d) {
    HT_CHECK(!strcmp(split, "val") || !strcmp(split, "test"),
             "unknown split '%s' (expected val or test)", split);
    const char *dir = data_resolve_dir_for(job->dataset, data_dir && data_dir[0] ? data_dir : job->data_dir);
    data_load(m, job->dataset, dir, job->n_train, job->n_val, job->verify_checksums);
    *d = !strcmp(split, "val") ? m->val : m->test;
    if (max_images > 0 && max_images < d->n) d->n = max_images;
    HT_CHECK(d->n > 0, "the %s split of '%s' has no images", split, dir);
}

void sample_eval(TargetNet *tn, int n_nets, const float *theta, const Dataset *d, float *probs,
                 double *acc, double *nll) {
    if (n_nets <= 0) return;
    const int C = tn->arch->classes, in = tn->arch->in_size, chunk = tn->max_images;
    HT_CHECK(d->h * d->w == in, "images of %dx%d pixels but the target network takes %d inputs", d->h,
             d->w, in);
    float *p = XALLOC_FLOATS((size_t)n_nets * chunk * C);
    double *corr = XCALLOC((size_t)n_nets, sizeof(double)), *ls = XCALLOC((size_t)n_nets, sizeof(double));
    for (int i0 = 0; i0 < d->n; i0 += chunk) {
        const int n = d->n - i0 < chunk ? d->n - i0 : chunk;
        target_forward(tn, n_nets, theta, n, d->images + (size_t)i0 * in, 0, p);
        for (int k = 0; k < n_nets; k++)
            for (int i = 0; i < n; i++) {
                const float *pk = p + ((size_t)k * n + i) * C;
                int arg = 0;
                for (int c = 1; c < C; c++) if (pk[c] > pk[arg]) arg = c;
                const int y = d->labels[i0 + i];
                corr[k] += arg == y;
                ls[k] -= log((double)pk[y] + 1e-30);
                if (probs) memcpy(probs + ((size_t)k * d->n + i0 + i) * C, pk, (size_t)C * sizeof(float));
            }
    }
    for (int k = 0; k < n_nets; k++) {
        if (acc) acc[k] = corr[k] / d->n;
        if (nll) nll[k] = ls[k] / d->n;
    }
    free(p); free(corr); free(ls);
}

// ---------------------------------------------------------------------------------------------
// Writing a sample set

typedef struct {
    H5Ctx ctx;
    char path[HT_PATH_MAX];
    char tmp[HT_PATH_MAX + 32];
    hid_t file;
    hid_t z, kern[HT_MAX_OPS], bias[HT_MAX_OPS], acc, loss;
    const TargetArch *a;
    float *kbuf, *bbuf;     // one layer of one block, natural layout
    H5Quiet quiet;          // HDF5's error printing is off from open to close
} Writer;

typedef struct {
    const char *checkpoint;
    const char *out;
    long long count;
    uint64_t seed;
    int have_seed;
    const char *metrics;    // "val", "test", "none"
    int images;             // 0 = the whole split
    int batch;              // networks per written block
    const char *data;
    int threads;
    int gzip;               // 0 = no compression, else deflate level 1..9 (with shuffle)
    int force, quiet;
} SampleCli;

// Rows per chunk: about 1 MiB, dividing the block size so that every write fills whole chunks.
static hsize_t chunk_rows(size_t row_bytes, int block, long long count) {
    long long r = (long long)((1u << 20) / (row_bytes ? row_bytes : 1));
    if (r < 1) r = 1;
    if (r > block) r = block;
    while (block % r) r--;
    if (r > count) r = count;
    return (hsize_t)r;
}

static hid_t create_ds(Writer *w, const char *name, int ndim, const hsize_t *dims, hid_t ftype, int block,
                       int gzip) {
    const H5Ctx *c = &w->ctx;
    size_t row = H5Tget_size(ftype);
    for (int d = 1; d < ndim; d++) row *= dims[d];
    hsize_t chunk[H5S_MAX_RANK];
    for (int d = 0; d < ndim; d++) chunk[d] = dims[d];
    chunk[0] = chunk_rows(row, block, (long long)dims[0]);
    hid_t sp = HT_H5CHECK(H5Screate_simple(ndim, dims, NULL), c, name);
    hid_t dcpl = h5u_untimed_plist(H5P_DATASET_CREATE, c, name);
    HT_H5CHECK(H5Pset_chunk(dcpl, ndim, chunk), c, name);
    if (gzip) {
        HT_H5CHECK(H5Pset_shuffle(dcpl), c, name);
        HT_H5CHECK(H5Pset_deflate(dcpl, (unsigned)gzip), c, name);
    }
    // A chunk cache that holds a few chunks, so a block boundary inside a chunk costs no re-read.
    hid_t dapl = HT_H5CHECK(H5Pcreate(H5P_DATASET_ACCESS), c, name);
    HT_H5CHECK(H5Pset_chunk_cache(dapl, 521, 4 * chunk[0] * row + (1u << 20), 1.0), c, name);
    hid_t ds = HT_H5CHECK(H5Dcreate2(w->file, name, ftype, sp, H5P_DEFAULT, dcpl, dapl), c, name);
    HT_H5CHECK(H5Pclose(dapl), c, name);
    HT_H5CHECK(H5Pclose(dcpl), c, name);
    HT_H5CHECK(H5Sclose(sp), c, name);
    return ds;
}

static char *file_sha256(const char *path) {
    size_t len;
    char *buf = ht_read_file(path, &len);
    char *hex = XMALLOC(65);
    sha256_hex(buf, len, hex);
    free(buf);
    return hex;
}

static void writer_open(Writer *w, const SampleCli *cli, const Model *m, const char *job_json,
                        const CkptMeta *meta) {
    memset(w, 0, sizeof(*w));
    const TargetArch *a = &m->tarch;
    w->a = a;
    XSNPRINTF(w->path, sizeof(w->path), "%s", cli->out);
    make_tmp_name(w->tmp, sizeof(w->tmp), cli->out);
    w->ctx = (H5Ctx){ .path = w->path, .kind = "sample set", .writing = 1, .on_error = remove_tmp_now };
    const H5Ctx *c = &w->ctx;
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) HT_FATAL("cannot write sample set '%s': %s (creating '%s')", w->path, strerror(errno), w->tmp);
    close(fd);
    tmp_register(w->tmp);
    h5u_quiet(&w->quiet);
    w->file = HT_H5CHECK(H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), c, w->tmp);

    char desc[SAMPLE_ARCH_DESC_MAX];
    sample_arch_desc(a, desc, sizeof(desc));
    char *sha = file_sha256(cli->checkpoint);
    h5u_write_attr_str(w->file, c, "format", HT_SAMPLES_FORMAT);
    attr_i32(w->file, c, "format_version", HT_SAMPLES_VERSION);
    h5u_write_attr_str(w->file, c, "created_by", "hypertrain " HT_VERSION);
    attr_i64(w->file, c, "count", cli->count);
    attr_u64(w->file, c, "seed", cli->seed);
    attr_i32(w->file, c, "z_dim", m->job.z_dim);
    attr_i64(w->file, c, "n_weights", (int64_t)a->n_weights);
    h5u_write_attr_str(w->file, c, "checkpoint", cli->checkpoint);
    h5u_write_attr_str(w->file, c, "checkpoint_sha256", sha);
    attr_i64(w->file, c, "step", meta->step);
    attr_u64(w->file, c, "train_seed", meta->seed);
    h5u_write_attr_str(w->file, c, "job", job_json);
    h5u_write_attr_str(w->file, c, "target_architecture", desc);
    attr_i32(w->file, c, "gauge_fixed", m->job.gauge_fixing ? 1 : 0);
    h5u_write_attr_str(w->file, c, "batch_norm", "evaluation");
    h5u_write_attr_str(w->file, c, "metrics_split", cli->metrics);
    attr_i32(w->file, c, "metrics_images", 0);   // rewritten below when metrics are computed
    free(sha);

    const long long N = cli->count;
    hsize_t dims[H5S_MAX_RANK] = { (hsize_t)N, (hsize_t)m->job.z_dim };
    w->z = create_ds(w, "/z", 2, dims, H5T_IEEE_F32LE, cli->batch, cli->gzip);
    h5u_create_group(w->file, c, "/weights");
    size_t max_layer = 1;
    for (int l = 0; l < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        const TargetOp *op = &a->ops[L->op];
        char g[64], name[96];
        XSNPRINTF(g, sizeof(g), "/weights/layer%d", l + 1);
        h5u_create_group(w->file, c, g);
        hid_t gid = HT_H5CHECK(H5Gopen2(w->file, g, H5P_DEFAULT), c, g);
        h5u_write_attr_str(gid, c, "type", op->type == OP_CONV ? "conv" : "fc");
        attr_i32(gid, c, "filters", L->filters);
        attr_i32(gid, c, "fan_in", L->fan_in);
        attr_i32(gid, c, "in_channels", L->in_channels);
        if (op->type == OP_CONV) attr_i32(gid, c, "kernel_size", op->kernel);
        attr_i64(gid, c, "flat_offset", (int64_t)L->offset);
        HT_H5CHECK(H5Gclose(gid), c, g);
        int nd = kernel_dims(a, l, (hsize_t)N, dims);
        XSNPRINTF(name, sizeof(name), "%s/kernel", g);
        w->kern[l] = create_ds(w, name, nd, dims, H5T_IEEE_F32LE, cli->batch, cli->gzip);
        dims[1] = (hsize_t)L->filters;
        XSNPRINTF(name, sizeof(name), "%s/bias", g);
        w->bias[l] = create_ds(w, name, 2, dims, H5T_IEEE_F32LE, cli->batch, cli->gzip);
        if (L->size > max_layer) max_layer = L->size;
    }
    w->acc = w->loss = -1;
    if (strcmp(cli->metrics, "none") != 0) {
        h5u_create_group(w->file, c, "/metrics");
        hid_t gid = HT_H5CHECK(H5Gopen2(w->file, "/metrics", H5P_DEFAULT), c, "/metrics");
        h5u_write_attr_str(gid, c, "split", cli->metrics);
        HT_H5CHECK(H5Gclose(gid), c, "/metrics");
        dims[0] = (hsize_t)N;
        w->acc = create_ds(w, "/metrics/accuracy", 1, dims, H5T_IEEE_F64LE, cli->batch, cli->gzip);
        w->loss = create_ds(w, "/metrics/loss", 1, dims, H5T_IEEE_F64LE, cli->batch, cli->gzip);
    }
    w->kbuf = XALLOC_FLOATS((size_t)cli->batch * max_layer);
    w->bbuf = XALLOC_FLOATS((size_t)cli->batch * max_layer);
}

// Writes networks [start, start + n): all (n, n_weights) gauge-fixed, z (n, z_dim), metrics or NULL.
static void writer_block(Writer *w, long long start, int n, const float *all, const float *z,
                         const double *acc, const double *loss) {
    const H5Ctx *c = &w->ctx;
    rows_io(w->z, c, "/z", H5T_NATIVE_FLOAT, start, n, (void *)z, 1);
    for (int l = 0; l < w->a->n_layers; l++) {
        const TargetLayer *L = &w->a->layers[l];
        sample_layer_to_natural(L, n, all + L->offset, w->a->n_weights, w->kbuf, w->bbuf);
        char name[64];
        XSNPRINTF(name, sizeof(name), "/weights/layer%d/kernel", l + 1);
        rows_io(w->kern[l], c, name, H5T_NATIVE_FLOAT, start, n, w->kbuf, 1);
        XSNPRINTF(name, sizeof(name), "/weights/layer%d/bias", l + 1);
        rows_io(w->bias[l], c, name, H5T_NATIVE_FLOAT, start, n, w->bbuf, 1);
    }
    if (acc) {
        rows_io(w->acc, c, "/metrics/accuracy", H5T_NATIVE_DOUBLE, start, n, (void *)acc, 1);
        rows_io(w->loss, c, "/metrics/loss", H5T_NATIVE_DOUBLE, start, n, (void *)loss, 1);
    }
}

static void writer_close(Writer *w, int metrics_images) {
    const H5Ctx *c = &w->ctx;
    if (metrics_images > 0) {
        hid_t a = HT_H5CHECK(H5Aopen(w->file, "metrics_images", H5P_DEFAULT), c, "metrics_images");
        HT_H5CHECK(H5Awrite(a, H5T_NATIVE_INT, &metrics_images), c, "metrics_images");
        HT_H5CHECK(H5Aclose(a), c, "metrics_images");
        hid_t g = HT_H5CHECK(H5Gopen2(w->file, "/metrics", H5P_DEFAULT), c, "/metrics");
        attr_i32(g, c, "images", metrics_images);
        HT_H5CHECK(H5Gclose(g), c, "/metrics");
    }
    HT_H5CHECK(H5Dclose(w->z), c, "/z");
    for (int l = 0; l < w->a->n_layers; l++) {
        HT_H5CHECK(H5Dclose(w->kern[l]), c, "a kernel dataset");
        HT_H5CHECK(H5Dclose(w->bias[l]), c, "a bias dataset");
    }
    if (w->acc >= 0) { HT_H5CHECK(H5Dclose(w->acc), c, "/metrics/accuracy"); HT_H5CHECK(H5Dclose(w->loss), c, "/metrics/loss"); }
    HT_H5CHECK(H5Fclose(w->file), c, w->tmp);
    h5u_restore(&w->quiet);
    // Durable before it gets its final name (a half-flushed file must never look complete).
    int fd = open(w->tmp, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0)
        HT_FATAL("cannot write sample set '%s': syncing '%s' failed: %s", w->path, w->tmp, strerror(errno));
    close(fd);
    commit_tmp(w->tmp, w->path, "sample set");
    free(w->kbuf);
    free(w->bbuf);
}

// ---------------------------------------------------------------------------------------------
// hypertrain sample

static void sample_usage(FILE *f) {
    fprintf(f,
        "usage: hypertrain sample --checkpoint CKPT --count N --out FILE.h5 [options]\n"
        "\n"
        "Generates N networks with the hypernetwork of CKPT (batch norm in evaluation mode,\n"
        "gauge-fixed) and writes them, their z and optionally their accuracy and loss to one HDF5\n"
        "sample set (layout: docs/samples.md). Runs on any number of MPI ranks; the file does not\n"
        "depend on it. Memory does not grow with N.\n"
        "\n"
        "options:\n"
        "  --seed S            seed of the z draws (default: the checkpoint's training seed; the\n"
        "                      sample stream never overlaps the training or validation noise)\n"
        "  --metrics SPLIT     val | test | none (default none): per-network accuracy and mean\n"
        "                      cross-entropy on that split, stored in /metrics\n"
        "  --images N          evaluate on the first N images of the split (default: all)\n"
        "  --batch K           networks per written block, a multiple of %d (default 256)\n"
        "  --data DIR          MNIST directory (default: the job's data.dir, $HYPERTRAIN_DATA, ...)\n"
        "  --threads N         OpenMP threads per rank\n"
        "  --gzip L            compress datasets with shuffle + deflate level L (1-9; default off)\n"
        "  --force             replace FILE.h5 if it exists\n"
        "  --quiet             no progress lines\n", HT_SAMPLE_GROUP);
}

static long long parse_ll(const char *s, const char *opt, long long lo, long long hi) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    HT_CHECK(errno == 0 && end != s && *end == '\0' && v >= lo && v <= hi,
             "%s: expected an integer in [%lld, %lld], got '%s'", opt, lo, hi, s);
    return v;
}

static int parse_sample_args(SampleCli *cli, int argc, char **argv, Comm *comm) {
    memset(cli, 0, sizeof(*cli));
    cli->metrics = "none";
    cli->batch = 256;
    cli->count = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_next = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (comm->rank == 0) sample_usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--force")) { cli->force = 1; continue; }
        if (!strcmp(a, "--quiet")) { cli->quiet = 1; continue; }
        if (a[0] == '-' && !has_next) { sample_usage(stderr); HT_FATAL("sample: %s needs a value", a); }
        const char *v = argv[i + 1];
        if (!strcmp(a, "--checkpoint")) cli->checkpoint = v;
        else if (!strcmp(a, "--count")) cli->count = parse_ll(v, a, 1, (1LL << 40));
        else if (!strcmp(a, "--out")) cli->out = v;
        else if (!strcmp(a, "--seed")) { cli->seed = (uint64_t)parse_ll(v, a, 0, (long long)(~0ULL >> 1)); cli->have_seed = 1; }
        else if (!strcmp(a, "--metrics")) cli->metrics = v;
        else if (!strcmp(a, "--images")) cli->images = (int)parse_ll(v, a, 1, 1 << 30);
        else if (!strcmp(a, "--batch")) cli->batch = (int)parse_ll(v, a, 1, 1 << 20);
        else if (!strcmp(a, "--data")) cli->data = v;
        else if (!strcmp(a, "--threads")) cli->threads = (int)parse_ll(v, a, 1, 4096);
        else if (!strcmp(a, "--gzip")) cli->gzip = (int)parse_ll(v, a, 1, 9);
        else { sample_usage(stderr); HT_FATAL("sample: unknown option '%s' (see hypertrain sample --help)", a); }
        i++;
    }
    HT_CHECK(cli->checkpoint, "sample: --checkpoint CKPT is required (see hypertrain sample --help)");
    HT_CHECK(cli->out, "sample: --out FILE.h5 is required");
    HT_CHECK(cli->count >= 1, "sample: --count N is required (N >= 1)");
    HT_CHECK(!strcmp(cli->metrics, "val") || !strcmp(cli->metrics, "test") || !strcmp(cli->metrics, "none"),
             "sample: --metrics: expected val, test or none, got '%s'", cli->metrics);
    HT_CHECK(cli->batch % HT_SAMPLE_GROUP == 0, "sample: --batch must be a multiple of %d (networks are "
             "generated in groups of %d on a fixed grid, so that the file does not depend on the number "
             "of ranks), got %d", HT_SAMPLE_GROUP, HT_SAMPLE_GROUP, cli->batch);
    return 0;
}

// Shares the groups of a block of nb networks over the ranks: rank r generates networks
// [first[r], first[r + 1]) of the block.
static void block_shards(int nb, int size, int *first) {
    const int groups = (nb + HT_SAMPLE_GROUP - 1) / HT_SAMPLE_GROUP;
    for (int r = 0; r <= size; r++) {
        int g = comm_shard_start(groups, r, size) * HT_SAMPLE_GROUP;
        first[r] = g < nb ? g : nb;
    }
}

int sample_main(Comm *comm, int argc, char **argv) {
    SampleCli cli;
    if (parse_sample_args(&cli, argc, argv, comm)) return 0;
    const int root = comm->rank == 0;
    if (root && !cli.force && access(cli.out, F_OK) == 0)
        HT_FATAL("sample: '%s' already exists (use --force to replace it; nothing was changed)", cli.out);

    // The job and the model of the checkpoint.
    char *job_json = checkpoint_read_job(cli.checkpoint);
    Job job;
    job_from_json_string(&job, job_json, cli.checkpoint);
    job_validate(&job);
    HT_CHECK(job.task == TASK_MNIST, "sample: '%s' is a checkpoint of the toy task, which generates 2-D "
             "points, not networks (its curve is in the run directory's toy_curve.csv)", cli.checkpoint);
    if (cli.threads > 0) omp_set_num_threads(cli.threads);
    else if (job.threads > 0) omp_set_num_threads(job.threads);
    Model m;
    model_init(&m, &job);
    CkptMeta meta;
    checkpoint_read(cli.checkpoint, &m.harch.table, m.params, NULL, NULL, m.stats, &meta);
    if (!cli.have_seed) cli.seed = meta.seed;
    const TargetArch *a = &m.tarch;
    const size_t W = a->n_weights;
    const int zd = job.z_dim, K = cli.batch, metrics = strcmp(cli.metrics, "none") != 0;

    Mnist data;
    Dataset split;
    TargetNet tn;
    memset(&data, 0, sizeof(data));
    if (metrics) {
        sample_load_split(&job, cli.data, cli.metrics, cli.images, &data, &split);
        target_init(&tn, a, 50, 0);
    }

    Writer w;
    if (root) writer_open(&w, &cli, &m, job_json, &meta);
    if (root && !cli.quiet) {
        char desc[SAMPLE_ARCH_DESC_MAX];
        sample_arch_desc(a, desc, sizeof(desc));
        printf("sample: %lld networks of %zu weights from %s (step %lld) -> %s\n  target: %s\n"
               "  seed %llu, blocks of %d, %d rank(s) x %d thread(s), metrics: %s",
               cli.count, W, cli.checkpoint, (long long)meta.step, cli.out, desc,
               (unsigned long long)cli.seed, K, comm->size, omp_get_max_threads(), cli.metrics);
        if (metrics) printf(" (%d images)", split.n);
        printf("\n");
        fflush(stdout);
    }

    BnConfig bn = { (float)job.leaky_alpha, job.bn_eps, job.bn_decay };
    HyperNet hn;
    hyper_init(&hn, &m.harch, a, HT_SAMPLE_GROUP);
    HT_CHECK((size_t)K * W < (size_t)1 << 31, "sample: --batch %d x %zu weights exceeds one all-gather "
             "(2^31 floats); use a smaller --batch", K, W);
    float *zg = XALLOC_FLOATS((size_t)HT_SAMPLE_GROUP * zd);
    float *raw = XALLOC_FLOATS((size_t)HT_SAMPLE_GROUP * W);
    float *scales = XALLOC_FLOATS((size_t)HT_SAMPLE_GROUP * (gauge_n_scales(a) + 1));
    float *all = XALLOC_FLOATS((size_t)K * W);
    float *zb = XALLOC_FLOATS((size_t)K * zd);
    double *acc = XCALLOC((size_t)K, sizeof(double)), *loss = XCALLOC((size_t)K, sizeof(double));
    int *first = XMALLOC(sizeof(int) * (comm->size + 1));
    int *counts = XMALLOC(sizeof(int) * comm->size), *displs = XMALLOC(sizeof(int) * comm->size);

    double t_gen = 0, t_eval = 0, t_comm = 0, t_write = 0, t_last = ht_now();
    const double t_start = t_last;
    for (long long b0 = 0; b0 < cli.count; b0 += K) {
        const int nb = cli.count - b0 < K ? (int)(cli.count - b0) : K;
        block_shards(nb, comm->size, first);
        const int lo = first[comm->rank], hi = first[comm->rank + 1];
        double t0 = ht_now();
        for (int g = lo; g < hi; g += HT_SAMPLE_GROUP) {
            const int gn = hi - g < HT_SAMPLE_GROUP ? hi - g : HT_SAMPLE_GROUP;
            for (int i = 0; i < gn; i++) sample_draw_z(cli.seed, b0 + g + i, zd, zg + (size_t)i * zd);
            hyper_forward(&hn, m.params, m.stats, zg, gn, gn, 0, &bn, comm, raw);
            if (job.gauge_fixing) gauge_forward(a, gn, raw, all + (size_t)g * W, scales);
            else memcpy(all + (size_t)g * W, raw, (size_t)gn * W * sizeof(float));
        }
        double t1 = ht_now();
        t_gen += t1 - t0;
        if (metrics) {
            memset(acc, 0, (size_t)nb * sizeof(double));
            memset(loss, 0, (size_t)nb * sizeof(double));
            sample_eval(&tn, hi - lo, all + (size_t)lo * W, &split, NULL, acc + lo, loss + lo);
            // Every entry has one contributor; adding the zeros of the others is exact.
            comm_allreduce_sum_f64(comm, acc, (size_t)nb);
            comm_allreduce_sum_f64(comm, loss, (size_t)nb);
        }
        double t2 = ht_now();
        t_eval += t2 - t1;
        for (int r = 0; r < comm->size; r++) {
            counts[r] = (int)((size_t)(first[r + 1] - first[r]) * W);
            displs[r] = (int)((size_t)first[r] * W);
        }
        comm_allgatherv_f32(comm, all + displs[comm->rank], all, counts, displs);
        const double t3 = ht_now();
        t_comm += t3 - t2;
        if (root) {
            for (int i = 0; i < nb; i++) sample_draw_z(cli.seed, b0 + i, zd, zb + (size_t)i * zd);
            writer_block(&w, b0, nb, all, zb, metrics ? acc : NULL, metrics ? loss : NULL);
        }
        const double t4 = ht_now();
        t_write += t4 - t3;
        if (root && !cli.quiet && (t4 - t_last > 5.0 || b0 + nb == cli.count)) {
            const double el = t4 - t_start, rate = (double)(b0 + nb) / el;
            printf("sample: %lld/%lld networks (%.1f%%) | %.1f networks/s | %.0fs elapsed, ETA %.0fs\n",
                   b0 + nb, cli.count, 100.0 * (b0 + nb) / cli.count, rate, el,
                   (cli.count - b0 - nb) / rate);
            fflush(stdout);
            t_last = t4;
        }
    }
    if (root) {
        double t0 = ht_now();
        writer_close(&w, metrics ? split.n : 0);
        t_write += ht_now() - t0;
        const double el = ht_now() - t_start;
        struct stat st;
        const double mb = stat(cli.out, &st) == 0 ? st.st_size / 1e6 : 0.0;
        printf("sample: wrote %s: %lld networks, %.1f MB in %.2fs (%.1f networks/s, %.1f MB/s; generation "
               "%.2fs, evaluation %.2fs, gather %.2fs, writing %.2fs); peak memory %.1f MB (rank 0)\n",
               cli.out, cli.count, mb, el, cli.count / el, mb / el, t_gen, t_eval, t_comm, t_write,
               ht_peak_rss_bytes() / 1e6);
        fflush(stdout);
    }
    comm_barrier(comm);
    hyper_free(&hn);
    if (metrics) { target_free(&tn); mnist_free(&data); }
    model_free(&m);
    free(zg); free(raw); free(scales); free(all); free(zb); free(acc); free(loss);
    free(first); free(counts); free(displs); free(job_json);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Reading

// Opens dataset `name`, checks float type (float32 unless any_float), rank and shape (want[d] == 0:
// any; want[0] is the network count). Returns the id; *got0 = its first dimension.
static hid_t open_ds(const SampleSet *s, const H5Ctx *c, const char *name, int ndim, const hsize_t *want,
                     int any_float, hsize_t *got0) {
    if (!h5u_path_exists(s->file, c, name)) HT_FATAL("sample set '%s': missing dataset %s", s->path, name);
    hid_t o = HT_H5CHECK(H5Oopen(s->file, name, H5P_DEFAULT), c, name);
    if (H5Iget_type(o) != H5I_DATASET) HT_FATAL("sample set '%s': %s is not a dataset", s->path, name);
    HT_H5CHECK(H5Oclose(o), c, name);
    hid_t ds = HT_H5CHECK(H5Dopen2(s->file, name, H5P_DEFAULT), c, name);
    hid_t t = HT_H5CHECK(H5Dget_type(ds), c, name);
    const int is_float = H5Tget_class(t) == H5T_FLOAT;
    if (!is_float || (!any_float && H5Tget_size(t) != 4)) {
        char got[64];
        h5u_describe_type(t, got, sizeof(got));
        HT_FATAL("sample set '%s': %s has type %s, but sample sets store float%s", s->path, name, got,
                 any_float ? "" : "32");
    }
    HT_H5CHECK(H5Tclose(t), c, name);
    hid_t sp = HT_H5CHECK(H5Dget_space(ds), c, name);
    int nd = (int)HT_H5CHECK(H5Sget_simple_extent_ndims(sp), c, name);
    hsize_t dims[H5S_MAX_RANK];
    HT_H5CHECK(H5Sget_simple_extent_dims(sp, dims, NULL), c, name);
    HT_H5CHECK(H5Sclose(sp), c, name);
    char exp_shape[96];
    int same = nd == ndim;
    for (int d = 0; same && d < nd; d++) same = want[d] == 0 || dims[d] == want[d];
    if (!same) {
        char got[96], exp[96];
        hsize_t w2[H5S_MAX_RANK];
        for (int d = 0; d < ndim; d++) w2[d] = want[d] ? want[d] : (d < nd ? dims[d] : 0);
        h5u_fmt_shape(got, sizeof(got), nd, dims);
        h5u_fmt_shape(exp, sizeof(exp), ndim, w2);
        HT_FATAL("sample set '%s': %s has shape %s but its target architecture needs %s", s->path, name,
                 got, exp);
    }
    // Every network the shape declares must be stored: a declared (2^30, ...) with no data is a
    // small file that would have the analyses read fill values for hours.
    if (!h5u_all_data_stored(ds, c, name)) {
        h5u_fmt_shape(exp_shape, sizeof(exp_shape), nd, dims);
        HT_FATAL("sample set '%s': %s declares shape %s but not all of its data is stored in the file",
                 s->path, name, exp_shape);
    }
    if (got0) *got0 = nd > 0 ? dims[0] : 0;
    return ds;
}

static herr_t count_links_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g; (void)name; (void)info;
    (*(int *)data)++;
    return 0;
}

// The informational root attributes (all optional): checkpoint, step, seed, metrics_split and
// metrics_images, each checked for what the analyses do with it.
static void read_info_attrs(SampleSet *s, const H5Ctx *c) {
    const hid_t f = s->file;
    char *ck = h5u_read_attr_str(f, c, "checkpoint");
    HT_CHECK(!ck || strlen(ck) < sizeof(s->checkpoint), "sample set '%s': attribute \"checkpoint\" must be "
             "a path of at most %zu bytes, got %zu bytes", s->path, sizeof(s->checkpoint) - 1, strlen(ck));
    XSNPRINTF(s->checkpoint, sizeof(s->checkpoint), "%s", ck ? ck : "");
    free(ck);
    h5u_read_attr_num(f, c, "step", H5T_INTEGER, H5T_NATIVE_INT64, &s->step);
    HT_CHECK(s->step >= 0, "sample set '%s': attribute \"step\" must be >= 0, got %lld", s->path,
             (long long)s->step);
    h5u_read_attr_num(f, c, "seed", H5T_INTEGER, H5T_NATIVE_UINT64, &s->seed);
    char *split = h5u_read_attr_str(f, c, "metrics_split");
    const char *sp = split ? split : "none";
    HT_CHECK(!strcmp(sp, "val") || !strcmp(sp, "test") || !strcmp(sp, "none"), "sample set '%s': "
             "attribute \"metrics_split\" must be \"val\", \"test\" or \"none\", got \"%.40s\"", s->path, sp);
    XSNPRINTF(s->metrics_split, sizeof(s->metrics_split), "%s", sp);
    free(split);
    long long images = 0;
    h5u_read_attr_num(f, c, "metrics_images", H5T_INTEGER, H5T_NATIVE_LLONG, &images);
    HT_CHECK(images >= 0 && images <= INT32_MAX, "sample set '%s': attribute \"metrics_images\" must be "
             "0 to %d, got %lld", s->path, INT32_MAX, images);
    s->metrics_images = (int)images;
}

void sampleset_open(SampleSet *s, const char *path, const TargetArch *expect) {
    HT_CHECK(path, "sampleset_open: path is NULL");
    memset(s, 0, sizeof(*s));
    HT_CHECK(strlen(path) < sizeof(s->path), "sample set path '%s' is too long", path);
    XSNPRINTF(s->path, sizeof(s->path), "%s", path);
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx cx = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = remove_tmp_now };
    const H5Ctx *c = &cx;
    int fd = open(path, O_RDONLY);
    if (fd < 0) HT_FATAL("cannot open sample set '%s': %s", path, strerror(errno));
    close(fd);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5U_READ_FAPL);   // H5P_DEFAULT (h5util.h)
    if (f < 0) {
        char detail[200];
        h5u_detail(detail, sizeof(detail));
        HT_FATAL("'%s' is not a readable HDF5 file (truncated, corrupt or not HDF5; HDF5: %s)", path, detail);
    }
    s->file = f;
    char *format = h5u_read_attr_str(f, c, "format");
    if (!format) HT_FATAL("'%s' is not a hypertrain sample set: it has no root attribute \"format\"", path);
    if (!strcmp(format, HT_CKPT_FORMAT))
        HT_FATAL("'%s' is a hypertrain checkpoint, not a sample set (make one with: hypertrain sample "
                 "--checkpoint %s --count N --out SAMPLES.h5)", path, path);
    if (strcmp(format, HT_SAMPLES_FORMAT) != 0)
        HT_FATAL("'%s' is not a hypertrain sample set: its \"format\" attribute is \"%s\", expected \"%s\"",
                 path, format, HT_SAMPLES_FORMAT);
    free(format);
    long long version = 0;
    if (!h5u_read_attr_num(f, c, "format_version", H5T_INTEGER, H5T_NATIVE_LLONG, &version))
        HT_FATAL("sample set '%s': missing root attribute \"format_version\"", path);
    if (version != HT_SAMPLES_VERSION)
        HT_FATAL("'%s' has sample-set format_version %lld, but this hypertrain (%s) reads only version %d",
                 path, version, HT_VERSION, HT_SAMPLES_VERSION);

    char *job_json = h5u_read_attr_str(f, c, "job");
    if (!job_json) HT_FATAL("sample set '%s': missing root attribute \"job\" (the job JSON)", path);
    char what[HT_PATH_MAX + 32];
    XSNPRINTF(what, sizeof(what), "%s (attribute \"job\")", path);
    job_from_json_string(&s->job, job_json, what);
    free(job_json);
    job_validate(&s->job);
    HT_CHECK(s->job.task == TASK_MNIST, "sample set '%s': its job is a toy-task job, which has no "
             "target network", path);
    arch_build_target(&s->arch, &s->job);
    char mine[SAMPLE_ARCH_DESC_MAX];
    sample_arch_desc(&s->arch, mine, sizeof(mine));
    char *desc = h5u_read_attr_str(f, c, "target_architecture");
    if (!desc) HT_FATAL("sample set '%s': missing root attribute \"target_architecture\"", path);
    if (strcmp(desc, mine) != 0)
        HT_FATAL("sample set '%s': its attribute \"target_architecture\" [%s] does not match the "
                 "architecture of its stored job [%s]; the file was altered", path, desc, mine);
    XSNPRINTF(s->arch_desc, sizeof(s->arch_desc), "%s", desc);
    free(desc);
    if (expect) {
        char want[SAMPLE_ARCH_DESC_MAX];
        sample_arch_desc(expect, want, sizeof(want));
        if (strcmp(want, s->arch_desc) != 0)
            HT_FATAL("'%s' is a sample set from another target architecture: it holds networks of [%s], "
                     "but this analysis expects [%s]", path, s->arch_desc, want);
    }

    // /z fixes N; every layer dataset must agree.
    hsize_t want[H5S_MAX_RANK] = { 0, (hsize_t)s->job.z_dim }, n0;
    hid_t ds = open_ds(s, c, "/z", 2, want, 0, &n0);
    HT_H5CHECK(H5Dclose(ds), c, "/z");
    // The analyses count networks in int (blocks, --n); a declared size beyond that is no sample set.
    HT_CHECK(n0 >= 1 && n0 <= (hsize_t)INT32_MAX, "sample set '%s': /z must hold 1 to %d networks, "
             "got %llu", path, INT32_MAX, (unsigned long long)n0);
    s->n = (long long)n0;
    s->z_dim = s->job.z_dim;
    for (int l = 0; l < s->arch.n_layers; l++) {
        char name[64];
        int nd = kernel_dims(&s->arch, l, (hsize_t)s->n, want);
        XSNPRINTF(name, sizeof(name), "/weights/layer%d/kernel", l + 1);
        HT_H5CHECK(H5Dclose(open_ds(s, c, name, nd, want, 0, NULL)), c, name);
        want[1] = (hsize_t)s->arch.layers[l].filters;
        XSNPRINTF(name, sizeof(name), "/weights/layer%d/bias", l + 1);
        HT_H5CHECK(H5Dclose(open_ds(s, c, name, 2, want, 0, NULL)), c, name);
    }
    int n_links = 0;
    hid_t g = HT_H5CHECK(H5Gopen2(f, "/weights", H5P_DEFAULT), c, "/weights");
    HT_H5CHECK(H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, count_links_cb, &n_links), c, "/weights");
    HT_H5CHECK(H5Gclose(g), c, "/weights");
    if (n_links != s->arch.n_layers)
        HT_FATAL("sample set '%s': /weights holds %d entries but its target architecture has %d layers",
                 path, n_links, s->arch.n_layers);

    read_info_attrs(s, c);
    h5u_restore(&q);
}

void sampleset_close(SampleSet *s) {
    if (s->file <= 0) return;
    H5Ctx c = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = remove_tmp_now };
    HT_H5CHECK(H5Fclose(s->file), &c, s->path);
    s->file = 0;
}

void sampleset_require(const SampleSet *s, long long n, const char *what) {
    if (n > s->n)
        HT_FATAL("sample set '%s' holds %lld networks, but %s needs %lld", s->path, s->n, what, n);
}

static void check_range(const SampleSet *s, long long start, int n) {
    if (start < 0 || n < 0 || start + n > s->n)
        HT_FATAL("sample set '%s' holds %lld networks; networks [%lld, %lld) were asked for", s->path, s->n,
                 start, start + n);
}

void sampleset_read_layer(const SampleSet *s, int l, long long start, int n, float *out) {
    HT_CHECK(l >= 0 && l < s->arch.n_layers, "sampleset_read_layer: layer index %d out of range", l);
    check_range(s, start, n);
    if (n == 0) return;
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = remove_tmp_now };
    const TargetLayer *L = &s->arch.layers[l];
    float *k = XALLOC_FLOATS((size_t)n * L->fan_in * L->filters), *b = XALLOC_FLOATS((size_t)n * L->filters);
    char name[64];
    XSNPRINTF(name, sizeof(name), "/weights/layer%d/kernel", l + 1);
    hid_t ds = HT_H5CHECK(H5Dopen2(s->file, name, H5P_DEFAULT), &c, name);
    rows_io(ds, &c, name, H5T_NATIVE_FLOAT, start, n, k, 0);
    HT_H5CHECK(H5Dclose(ds), &c, name);
    XSNPRINTF(name, sizeof(name), "/weights/layer%d/bias", l + 1);
    ds = HT_H5CHECK(H5Dopen2(s->file, name, H5P_DEFAULT), &c, name);
    rows_io(ds, &c, name, H5T_NATIVE_FLOAT, start, n, b, 0);
    HT_H5CHECK(H5Dclose(ds), &c, name);
    h5u_restore(&q);
    sample_layer_from_natural(L, n, k, b, out, L->size);
    free(k);
    free(b);
}

void sampleset_read(const SampleSet *s, long long start, int n, float *theta) {
    check_range(s, start, n);
    for (int l = 0; l < s->arch.n_layers; l++) {
        const TargetLayer *L = &s->arch.layers[l];
        float *tmp = XALLOC_FLOATS((size_t)(n ? n : 1) * L->size);
        sampleset_read_layer(s, l, start, n, tmp);
        for (int b = 0; b < n; b++)
            memcpy(theta + (size_t)b * s->arch.n_weights + L->offset, tmp + (size_t)b * L->size,
                   L->size * sizeof(float));
        free(tmp);
    }
}

void sampleset_read_z(const SampleSet *s, long long start, int n, float *z) {
    check_range(s, start, n);
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = remove_tmp_now };
    hid_t ds = HT_H5CHECK(H5Dopen2(s->file, "/z", H5P_DEFAULT), &c, "/z");
    rows_io(ds, &c, "/z", H5T_NATIVE_FLOAT, start, n, z, 0);
    HT_H5CHECK(H5Dclose(ds), &c, "/z");
    h5u_restore(&q);
}

int sampleset_read_metric(const SampleSet *s, const char *name, long long start, int n, double *out) {
    check_range(s, start, n);
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = remove_tmp_now };
    char full[96];
    XSNPRINTF(full, sizeof(full), "/metrics/%s", name);
    if (!h5u_path_exists(s->file, &c, full)) { h5u_restore(&q); return 0; }
    hsize_t want[1] = { (hsize_t)s->n };
    hid_t ds = open_ds(s, &c, full, 1, want, 1, NULL);
    rows_io(ds, &c, full, H5T_NATIVE_DOUBLE, start, n, out, 0);
    HT_H5CHECK(H5Dclose(ds), &c, full);
    h5u_restore(&q);
    return 1;
}

// ---------------------------------------------------------------------------------------------
// Result files

void result_create(ResultFile *r, const char *path) {
    memset(r, 0, sizeof(*r));
    HT_CHECK(path && strlen(path) < sizeof(r->path), "result file path is missing or too long");
    XSNPRINTF(r->path, sizeof(r->path), "%s", path);
    make_tmp_name(r->tmp, sizeof(r->tmp), path);
    int fd = open(r->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) HT_FATAL("cannot write result file '%s': %s (creating '%s')", path, strerror(errno), r->tmp);
    close(fd);
    tmp_register(r->tmp);
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = r->path, .kind = "result file", .writing = 1, .on_error = remove_tmp_now };
    r->file = HT_H5CHECK(H5Fcreate(r->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), &c, r->tmp);
    h5u_restore(&q);
}

static void result_ds(ResultFile *r, const char *name, int ndim, const size_t *dims, hid_t ftype,
                      hid_t mtype, const void *data) {
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = r->path, .kind = "result file", .writing = 1, .on_error = remove_tmp_now };
    hsize_t d[H5S_MAX_RANK];
    HT_CHECK(ndim >= 1 && ndim <= 8, "result dataset %s: bad rank %d", name, ndim);
    for (int i = 0; i < ndim; i++) d[i] = dims[i];
    hid_t lcpl = HT_H5CHECK(H5Pcreate(H5P_LINK_CREATE), &c, name);
    HT_H5CHECK(H5Pset_create_intermediate_group(lcpl, 1), &c, name);
    hid_t sp = HT_H5CHECK(H5Screate_simple(ndim, d, NULL), &c, name);
    hid_t ds = HT_H5CHECK(H5Dcreate2(r->file, name, ftype, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT), &c, name);
    size_t total = 1;
    for (int i = 0; i < ndim; i++) total *= dims[i];
    if (total > 0) HT_H5CHECK(H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), &c, name);
    HT_H5CHECK(H5Dclose(ds), &c, name);
    HT_H5CHECK(H5Sclose(sp), &c, name);
    HT_H5CHECK(H5Pclose(lcpl), &c, name);
    h5u_restore(&q);
}

void result_f64(ResultFile *r, const char *name, int ndim, const size_t *dims, const double *data) {
    result_ds(r, name, ndim, dims, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, data);
}
void result_f32(ResultFile *r, const char *name, int ndim, const size_t *dims, const float *data) {
    result_ds(r, name, ndim, dims, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data);
}
void result_i64(ResultFile *r, const char *name, int ndim, const size_t *dims, const int64_t *data) {
    result_ds(r, name, ndim, dims, H5T_STD_I64LE, H5T_NATIVE_INT64, data);
}

// Opens obj ("" or "/" = root; a missing group is created).
static hid_t result_obj(ResultFile *r, const H5Ctx *c, const char *obj) {
    if (!obj || !obj[0] || !strcmp(obj, "/")) return HT_H5CHECK(H5Oopen(r->file, "/", H5P_DEFAULT), c, "/");
    if (HT_H5CHECK(H5Lexists(r->file, obj, H5P_DEFAULT), c, obj) <= 0) {
        hid_t lcpl = HT_H5CHECK(H5Pcreate(H5P_LINK_CREATE), c, obj);
        HT_H5CHECK(H5Pset_create_intermediate_group(lcpl, 1), c, obj);
        hid_t g = HT_H5CHECK(H5Gcreate2(r->file, obj, lcpl, H5P_DEFAULT, H5P_DEFAULT), c, obj);
        HT_H5CHECK(H5Gclose(g), c, obj);
        HT_H5CHECK(H5Pclose(lcpl), c, obj);
    }
    return HT_H5CHECK(H5Oopen(r->file, obj, H5P_DEFAULT), c, obj);
}

// One attribute on obj of the result file: a string (s != NULL), else a double (is_f64) or an
// int64, with the file's error handling (a failure removes the temporary file).
static void result_attr(ResultFile *r, const char *obj, const char *name, const char *s, int is_f64, double d,
                        int64_t i) {
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = r->path, .kind = "result file", .writing = 1, .on_error = remove_tmp_now };
    hid_t o = result_obj(r, &c, obj);
    if (s) h5u_write_attr_str(o, &c, name, s);
    else if (is_f64) attr_f64(o, &c, name, d);
    else attr_i64(o, &c, name, i);
    HT_H5CHECK(H5Oclose(o), &c, name);
    h5u_restore(&q);
}

void result_attr_str(ResultFile *r, const char *obj, const char *name, const char *value) {
    result_attr(r, obj, name, value ? value : "", 0, 0.0, 0);
}

void result_attr_f64(ResultFile *r, const char *obj, const char *name, double value) {
    result_attr(r, obj, name, NULL, 1, value, 0);
}

void result_attr_i64(ResultFile *r, const char *obj, const char *name, int64_t value) {
    result_attr(r, obj, name, NULL, 0, 0.0, value);
}

void result_close(ResultFile *r) {
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = r->path, .kind = "result file", .writing = 1, .on_error = remove_tmp_now };
    HT_H5CHECK(H5Fclose(r->file), &c, r->tmp);
    h5u_restore(&q);
    commit_tmp(r->tmp, r->path, "result file");
    r->file = 0;
}
