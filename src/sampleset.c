// sampleset.c: the sample-set file format (docs/samples.md): layout helpers, the writer that
// `hypertrain sample` uses and the reader every analysis uses. See sampleset.h.
//
// Every HDF5 call goes through HT_H5CHECK (src/h5util.h, shared with checkpoints), which ends the
// run with one line naming the file, the HDF5 function, the object and HDF5's innermost message.
// HDF5's own error printing is off while our functions run. Sets are written under a temporary
// name and renamed when complete (src/tmpfiles.h).
#include "sampleset.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "checkpoint.h"   // HT_CKPT_FORMAT: a checkpoint given as a set is named as one
#include "common.h"
#include "h5util.h"
#include "sha256.h"
#include "tmpfiles.h"

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t must be 64-bit (HDF5 >= 1.10)");

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
// Writing a sample set

struct SampleWriter {
    H5Ctx ctx;
    char path[HT_PATH_MAX];
    char tmp[HT_PATH_MAX + 32];
    hid_t file;
    hid_t z, kern[HT_MAX_OPS], bias[HT_MAX_OPS], acc, loss;
    const TargetArch *a;
    float *kbuf, *bbuf;     // one layer of one block, natural layout
    H5Quiet quiet;          // HDF5's error printing is off from open to close
};

// Rows per chunk: about 1 MiB, dividing the block size so that every write fills whole chunks.
static hsize_t chunk_rows(size_t row_bytes, int block, long long count) {
    long long r = (long long)((1u << 20) / (row_bytes ? row_bytes : 1));
    if (r < 1) r = 1;
    if (r > block) r = block;
    while (block % r) r--;
    if (r > count) r = count;
    return (hsize_t)r;
}

static hid_t create_ds(SampleWriter *w, const char *name, int ndim, const hsize_t *dims, hid_t ftype, int block,
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

SampleWriter *sample_writer_open(const SampleWriterOpts *cli, const TargetArch *a, const Job *job,
                                 const char *job_json, int64_t step, uint64_t train_seed) {
    SampleWriter *w = XCALLOC(1, sizeof(*w));
    w->a = a;
    XSNPRINTF(w->path, sizeof(w->path), "%s", cli->out);
    tmpf_name(w->tmp, sizeof(w->tmp), cli->out);
    w->ctx = (H5Ctx){ .path = w->path, .kind = "sample set", .writing = 1, .on_error = tmpf_remove_now };
    const H5Ctx *c = &w->ctx;
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) HT_FATAL("cannot write sample set '%s': %s (creating '%s')", w->path, strerror(errno), w->tmp);
    close(fd);
    tmpf_register(w->tmp);
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
    attr_i32(w->file, c, "z_dim", job->z_dim);
    attr_i64(w->file, c, "n_weights", (int64_t)a->n_weights);
    h5u_write_attr_str(w->file, c, "checkpoint", cli->checkpoint);
    h5u_write_attr_str(w->file, c, "checkpoint_sha256", sha);
    attr_i64(w->file, c, "step", step);
    attr_u64(w->file, c, "train_seed", train_seed);
    h5u_write_attr_str(w->file, c, "job", job_json);
    h5u_write_attr_str(w->file, c, "target_architecture", desc);
    attr_i32(w->file, c, "gauge_fixed", job->gauge_fixing ? 1 : 0);
    h5u_write_attr_str(w->file, c, "batch_norm", "evaluation");
    h5u_write_attr_str(w->file, c, "metrics_split", cli->metrics);
    attr_i32(w->file, c, "metrics_images", 0);   // rewritten below when metrics are computed
    free(sha);

    const long long N = cli->count;
    hsize_t dims[H5S_MAX_RANK] = { (hsize_t)N, (hsize_t)job->z_dim };
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
    return w;
}

// Writes networks [start, start + n): all (n, n_weights) gauge-fixed, z (n, z_dim), metrics or NULL.
void sample_writer_block(SampleWriter *w, long long start, int n, const float *all, const float *z,
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

void sample_writer_close(SampleWriter *w, int metrics_images) {
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
    tmpf_commit(w->tmp, w->path, "sample set");
    free(w->kbuf);
    free(w->bbuf);
    free(w);
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
    H5Ctx cx = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = tmpf_remove_now };
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
    H5Ctx c = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = tmpf_remove_now };
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
    H5Ctx c = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = tmpf_remove_now };
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
    H5Ctx c = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = tmpf_remove_now };
    hid_t ds = HT_H5CHECK(H5Dopen2(s->file, "/z", H5P_DEFAULT), &c, "/z");
    rows_io(ds, &c, "/z", H5T_NATIVE_FLOAT, start, n, z, 0);
    HT_H5CHECK(H5Dclose(ds), &c, "/z");
    h5u_restore(&q);
}

int sampleset_read_metric(const SampleSet *s, const char *name, long long start, int n, double *out) {
    check_range(s, start, n);
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = s->path, .kind = "sample set", .writing = 0, .on_error = tmpf_remove_now };
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
