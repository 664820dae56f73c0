// checkpoint.c: HDF5 checkpoints (layout and guarantees in docs/checkpoint.md).
//
// Every HDF5 call goes through HT_H5CHECK, which ends the run with one line naming the checkpoint,
// the HDF5 function, the object it was working on, the innermost HDF5 error message and the
// source line. HDF5's own error-stack printing is switched off while we work, so users see that
// one line instead of a 30-line stack.
//
// Writing: HDF5 builds the file in memory (core driver); we write the bytes to "<path>.tmp.<pid>"
// with write(2), fsync it, rename() it over <path> and fsync the directory. Any failure removes the
// temporary file, so the file under the final name is only ever replaced by a complete one.
#include "checkpoint.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "common.h"
#include "h5util.h"


// ---- table validation (programming errors, checked before anything touches a file) ----

static void validate_views(const ParamView *views, int n, size_t total, const char *kind) {
    for (int i = 0; i < n; i++) {
        const ParamView *v = &views[i];
        size_t len = strnlen(v->name, HT_NAME_MAX);
        HT_CHECK(len > 0 && len < HT_NAME_MAX && v->name[0] != '/' && v->name[len - 1] != '/' &&
                 !strstr(v->name, "//"), "checkpoint: %s view %d has an invalid name '%.*s'", kind, i,
                 HT_NAME_MAX, v->name);
        HT_CHECK(v->ndim == 1 || v->ndim == 2, "checkpoint: %s view '%s' has ndim %d (1 or 2 expected)",
                 kind, v->name, v->ndim);
        size_t size = (size_t)v->shape[0] * (v->ndim == 2 ? (size_t)v->shape[1] : 1);
        HT_CHECK(v->shape[0] > 0 && (v->ndim == 1 || v->shape[1] > 0) && size == v->size &&
                 v->offset + v->size <= total,
                 "checkpoint: %s view '%s' (offset %zu, size %zu) is inconsistent with its shape or "
                 "with the buffer of %zu floats", kind, v->name, v->offset, v->size, total);
    }
}

static void validate_table(const ParamTable *t) {
    validate_views(t->views, t->n_views, t->n_params, "parameter");
    validate_views(t->stats, t->n_stats, t->n_stat, "statistics");
}

// ---- small helpers ----


static void dir_of(const char *path, char *out, size_t n) {
    const char *slash = strrchr(path, '/');
    if (!slash) { XSNPRINTF(out, n, "."); return; }
    if (slash == path) { XSNPRINTF(out, n, "/"); return; }
    XSNPRINTF(out, n, "%.*s", (int)(slash - path), path);
}

// ---- writing ----



static void write_root_attrs(hid_t f, const H5Ctx *ctx, const CkptMeta *m, const char *job_json) {
    int version = HT_CKPT_VERSION;
    h5u_write_attr_str(f, ctx, "format", HT_CKPT_FORMAT);
    h5u_write_attr(f, ctx, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version);
    h5u_write_attr(f, ctx, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &m->step);
    h5u_write_attr(f, ctx, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &m->seed);
    h5u_write_attr(f, ctx, "data_cursor", H5T_STD_I64LE, H5T_NATIVE_INT64, &m->data_cursor);
    h5u_write_attr(f, ctx, "lr", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m->lr);
    h5u_write_attr(f, ctx, "lambda", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &m->lambda);
    h5u_write_attr(f, ctx, "world_size", H5T_STD_I32LE, H5T_NATIVE_INT, &m->world_size);
    h5u_write_attr_str(f, ctx, "job", job_json);
    h5u_write_attr_str(f, ctx, "created_by", "hypertrain " HT_VERSION);
}



static void write_views(hid_t f, const H5Ctx *ctx, const char *group, const ParamView *views, int n,
                        const float *buf) {
    char name[HT_NAME_MAX + 32];
    hid_t lcpl = HT_H5CHECK(H5Pcreate(H5P_LINK_CREATE), ctx, group);
    HT_H5CHECK(H5Pset_create_intermediate_group(lcpl, 1), ctx, group);
    hid_t dcpl = h5u_untimed_plist(H5P_DATASET_CREATE, ctx, group);
    for (int i = 0; i < n; i++) {
        const ParamView *v = &views[i];
        hsize_t dims[2] = { (hsize_t)v->shape[0], (hsize_t)v->shape[1] };
        XSNPRINTF(name, sizeof(name), "%s/%s", group, v->name);
        hid_t sp = HT_H5CHECK(H5Screate_simple(v->ndim, dims, NULL), ctx, name);
        hid_t ds = HT_H5CHECK(H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, lcpl, dcpl, H5P_DEFAULT), ctx, name);
        HT_H5CHECK(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + v->offset), ctx, name);
        HT_H5CHECK(H5Dclose(ds), ctx, name);
        HT_H5CHECK(H5Sclose(sp), ctx, name);
    }
    HT_H5CHECK(H5Pclose(dcpl), ctx, group);
    HT_H5CHECK(H5Pclose(lcpl), ctx, group);
}

// Builds the whole checkpoint as an HDF5 file image in memory (core driver, no backing store;
// caller frees). HDF5 never touches the disk here (`label` only names the file inside HDF5): see
// "Why the file is built in memory" in docs/checkpoint.md.
static void *build_image(const H5Ctx *ctx, const char *label, const ParamTable *table,
                         const float *params, const float *adam_m, const float *adam_v, const float *stats,
                         const CkptMeta *meta, const char *job_json, size_t *len) {
    const char *fa = "file access properties";
    hid_t fapl = HT_H5CHECK(H5Pcreate(H5P_FILE_ACCESS), ctx, fa);
    HT_H5CHECK(H5Pset_fapl_core(fapl, 1 << 20, 0), ctx, fa);
    // CLOSE_SEMI: H5Fclose fails (instead of silently deferring the close) if we leaked an object.
    HT_H5CHECK(H5Pset_fclose_degree(fapl, H5F_CLOSE_SEMI), ctx, fa);
    hid_t f = HT_H5CHECK(H5Fcreate(label, H5F_ACC_TRUNC, H5P_DEFAULT, fapl), ctx, "the in-memory file");
    write_root_attrs(f, ctx, meta, job_json);
    h5u_create_group(f, ctx, "/params");
    h5u_create_group(f, ctx, "/adam");
    h5u_create_group(f, ctx, "/adam/m");
    h5u_create_group(f, ctx, "/adam/v");
    h5u_create_group(f, ctx, "/bn_running");
    write_views(f, ctx, "/params", table->views, table->n_views, params);
    write_views(f, ctx, "/adam/m", table->views, table->n_views, adam_m);
    write_views(f, ctx, "/adam/v", table->views, table->n_views, adam_v);
    write_views(f, ctx, "/bn_running", table->stats, table->n_stats, stats);
    HT_H5CHECK(H5Fflush(f, H5F_SCOPE_GLOBAL), ctx, "the in-memory file");
    ssize_t n = HT_H5CHECK(H5Fget_file_image(f, NULL, 0), ctx, "the in-memory file");
    void *image = XMALLOC((size_t)n);
    HT_H5CHECK(H5Fget_file_image(f, image, (size_t)n), ctx, "the in-memory file");
    HT_H5CHECK(H5Fclose(f), ctx, "the in-memory file");
    HT_H5CHECK(H5Pclose(fapl), ctx, fa);
    *len = (size_t)n;
    return image;
}

// Writes `len` bytes to `tmp` and fsyncs it. On any failure: removes `tmp`, fatal. `what` names
// the file in messages ("checkpoint", "job file", ...).
static void write_tmp(const char *what, const char *path, const char *dir, const char *tmp,
                      const void *image, size_t len) {
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) HT_FATAL("cannot write %s in '%s': %s (creating '%s')", what, dir, strerror(errno), tmp);
    const char *p = image, *step = "writing";
    size_t left = len;
    int ok = 1;
    while (ok && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) { ok = 0; if (w == 0) errno = EIO; break; }
        p += w;
        left -= (size_t)w;
    }
    if (ok && fsync(fd) != 0) { ok = 0; step = "syncing"; }
    int e = errno;
    if (close(fd) != 0 && ok) { ok = 0; e = errno; step = "closing"; }
    if (!ok) {
        unlink(tmp);
        HT_FATAL("cannot write %s '%s': %s '%s' failed: %s; the file under that name, if any, "
                 "is unchanged", what, path, step, tmp, strerror(e));
    }
}

// Makes the rename durable. Filesystems that cannot fsync a directory (EINVAL) are accepted.
static void fsync_dir(const char *what, const char *dir, const char *path) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) HT_FATAL("%s '%s' was written but its directory '%s' cannot be opened to sync "
                         "it: %s", what, path, dir, strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
        int e = errno;
        close(fd);
        HT_FATAL("%s '%s' was written but syncing its directory '%s' failed: %s", what, path, dir,
                 strerror(e));
    }
    close(fd);
}

void atomic_write_file(const char *path, const void *data, size_t len, const char *what) {
    HT_CHECK(path && (data || len == 0) && what, "atomic_write_file: path, data and what are required");
    size_t plen = strlen(path);
    char *dir = XMALLOC(plen + 2), *tmp = XMALLOC(plen + 32);
    dir_of(path, dir, plen + 2);
    XSNPRINTF(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    write_tmp(what, path, dir, tmp, data, len);
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        HT_FATAL("cannot write %s '%s': renaming '%s' to it failed: %s", what, path, tmp, strerror(e));
    }
    fsync_dir(what, dir, path);
    free(dir);
    free(tmp);
}

void checkpoint_write(const char *path, const ParamTable *table, const float *params,
                      const float *adam_m, const float *adam_v, const float *stats,
                      const CkptMeta *meta, const char *job_json) {
    HT_CHECK(path && table && params && adam_m && adam_v && meta && job_json,
             "checkpoint_write: path, table, params, adam_m, adam_v, meta and job_json are required");
    HT_CHECK(stats || table->n_stat == 0, "checkpoint_write: stats is NULL but the table has %zu "
             "statistics", table->n_stat);
    validate_table(table);
    // The in-memory file's name inside HDF5 (never created on disk): the temporary file's name,
    // so that it can never clash with an open checkpoint of the same path.
    size_t plen = strlen(path);
    char *label = XMALLOC(plen + 32);
    XSNPRINTF(label, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx ctx = { .path = path, .kind = "checkpoint", .writing = 1,
                  .write_note = "the file under that name, if any, is unchanged" };
    size_t len;
    void *image = build_image(&ctx, label, table, params, adam_m, adam_v, stats, meta, job_json, &len);
    h5u_restore(&q);
    atomic_write_file(path, image, len, "checkpoint");
    free(image);
    free(label);
}

// ---- reading ----




// A numeric root attribute that every checkpoint has.
static void read_attr_required(hid_t f, const H5Ctx *ctx, const char *name, H5T_class_t cls,
                               hid_t mem_type, void *out) {
    if (!h5u_read_attr_num(f, ctx, name, cls, mem_type, out))
        HT_FATAL("checkpoint '%s': missing root attribute \"%s\"", ctx->path, name);
}

// Opens `path` read-only and checks that it is a hypertrain checkpoint of our format version.
static hid_t open_checkpoint(const char *path, const H5Ctx *ctx) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) HT_FATAL("cannot open checkpoint '%s': %s", path, strerror(errno));
    close(fd);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5U_READ_FAPL);   // H5P_DEFAULT (h5util.h)
    if (f < 0) {
        char detail[200];
        h5u_detail(detail, sizeof(detail));
        HT_FATAL("'%s' is not a readable HDF5 file (truncated, corrupt or not HDF5; HDF5: %s)", path, detail);
    }
    if (!h5u_has_attr(f, ctx, "format"))
        HT_FATAL("'%s' is not a hypertrain checkpoint: it has no root attribute \"format\"", path);
    char *format = h5u_read_attr_str(f, ctx, "format");
    if (strcmp(format, HT_CKPT_FORMAT) != 0)
        HT_FATAL("'%s' is not a hypertrain checkpoint: its \"format\" attribute is \"%s\", expected \"%s\"",
                 path, format, HT_CKPT_FORMAT);
    free(format);
    long long version = 0;
    read_attr_required(f, ctx, "format_version", H5T_INTEGER, H5T_NATIVE_LLONG, &version);
    if (version != HT_CKPT_VERSION)
        HT_FATAL("'%s' has checkpoint format_version %lld, but this hypertrain (%s) reads only version %d",
                 path, version, HT_VERSION, HT_CKPT_VERSION);
    return f;
}


typedef struct { int n; } CountData;

static herr_t count_cb(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    if (info->type != H5L_TYPE_HARD) return 0;
    hid_t o = H5Oopen(g, name, H5P_DEFAULT);
    if (o < 0) return -1;
    if (H5Iget_type(o) == H5I_DATASET) ((CountData *)data)->n++;
    H5Oclose(o);
    return 0;
}

static void read_views(hid_t f, const H5Ctx *ctx, const char *group, const ParamView *views, int n,
                       float *buf) {
    char name[HT_NAME_MAX + 32], want[64], got[64];
    for (int i = 0; i < n; i++) {
        const ParamView *v = &views[i];
        XSNPRINTF(name, sizeof(name), "%s/%s", group, v->name);
        if (!h5u_path_exists(f, ctx, name)) HT_FATAL("checkpoint '%s': missing dataset %s", ctx->path, name);
        hid_t o = HT_H5CHECK(H5Oopen(f, name, H5P_DEFAULT), ctx, name);
        if (H5Iget_type(o) != H5I_DATASET) HT_FATAL("checkpoint '%s': %s is not a dataset", ctx->path, name);
        HT_H5CHECK(H5Oclose(o), ctx, name);
        hid_t ds = HT_H5CHECK(H5Dopen2(f, name, H5P_DEFAULT), ctx, name);
        hid_t t = HT_H5CHECK(H5Dget_type(ds), ctx, name);
        if (H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 4) {
            h5u_describe_type(t, got, sizeof(got));
            HT_FATAL("checkpoint '%s': %s has type %s, but checkpoints store float32", ctx->path, name, got);
        }
        hid_t sp = HT_H5CHECK(H5Dget_space(ds), ctx, name);
        hsize_t fdims[H5S_MAX_RANK], vdims[2] = { (hsize_t)v->shape[0], (hsize_t)v->shape[1] };
        int nd = (int)HT_H5CHECK(H5Sget_simple_extent_ndims(sp), ctx, name);
        HT_CHECK(nd <= H5S_MAX_RANK, "checkpoint '%s': %s has rank %d", ctx->path, name, nd);
        HT_H5CHECK(H5Sget_simple_extent_dims(sp, fdims, NULL), ctx, name);
        int same = nd == v->ndim;
        for (int d = 0; same && d < nd; d++) same = fdims[d] == vdims[d];
        if (!same) {
            h5u_fmt_shape(got, sizeof(got), nd, fdims);
            h5u_fmt_shape(want, sizeof(want), v->ndim, vdims);
            HT_FATAL("checkpoint '%s': %s has shape %s but this job's architecture expects %s — the checkpoint was "
                     "written for a different architecture", ctx->path, name, got, want);
        }
        HT_H5CHECK(H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf + v->offset), ctx, name);
        HT_H5CHECK(H5Sclose(sp), ctx, name);
        HT_H5CHECK(H5Tclose(t), ctx, name);
        HT_H5CHECK(H5Dclose(ds), ctx, name);
    }
    // Every view was found with its shape; a larger architecture would leave extra datasets.
    if (!h5u_path_exists(f, ctx, group)) return;   // only reached with n == 0
    CountData cd = { 0 };
    hid_t g = HT_H5CHECK(H5Gopen2(f, group, H5P_DEFAULT), ctx, group);
    HT_H5CHECK(H5Lvisit(g, H5_INDEX_NAME, H5_ITER_NATIVE, count_cb, &cd), ctx, group);
    HT_H5CHECK(H5Gclose(g), ctx, group);
    if (cd.n != n)
        HT_FATAL("checkpoint '%s': %s holds %d datasets but this job's architecture has %d — the checkpoint was "
                 "written for a different architecture", ctx->path, group, cd.n, n);
}

static void check_min(const H5Ctx *ctx, const char *name, long long v, long long lo) {
    if (v < lo) HT_FATAL("checkpoint '%s': attribute \"%s\" must be >= %lld, got %lld", ctx->path, name, lo, v);
}

static void check_finite(const H5Ctx *ctx, const char *name, double v) {
    if (!isfinite(v)) HT_FATAL("checkpoint '%s': attribute \"%s\" must be a finite number, got %g", ctx->path,
                               name, v);
}

// What resuming relies on: a position in the run and in the image stream, and finite rates.
static void check_meta(const H5Ctx *ctx, const CkptMeta *m) {
    check_min(ctx, "step", m->step, 0);
    check_min(ctx, "data_cursor", m->data_cursor, 0);
    check_min(ctx, "world_size", m->world_size, 1);
    check_finite(ctx, "lr", m->lr);
    check_finite(ctx, "lambda", m->lambda);
}

void checkpoint_read(const char *path, const ParamTable *table, float *params, float *adam_m,
                     float *adam_v, float *stats, CkptMeta *meta) {
    HT_CHECK(path && table && params, "checkpoint_read: path, table and params are required");
    validate_table(table);
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx ctx = { .path = path, .kind = "checkpoint" };
    hid_t f = open_checkpoint(path, &ctx);
    read_views(f, &ctx, "/params", table->views, table->n_views, params);
    if (adam_m) read_views(f, &ctx, "/adam/m", table->views, table->n_views, adam_m);
    if (adam_v) read_views(f, &ctx, "/adam/v", table->views, table->n_views, adam_v);
    if (stats) read_views(f, &ctx, "/bn_running", table->stats, table->n_stats, stats);
    if (meta) {
        memset(meta, 0, sizeof(*meta));
        read_attr_required(f, &ctx, "step", H5T_INTEGER, H5T_NATIVE_INT64, &meta->step);
        read_attr_required(f, &ctx, "seed", H5T_INTEGER, H5T_NATIVE_UINT64, &meta->seed);
        read_attr_required(f, &ctx, "data_cursor", H5T_INTEGER, H5T_NATIVE_INT64, &meta->data_cursor);
        read_attr_required(f, &ctx, "lr", H5T_FLOAT, H5T_NATIVE_DOUBLE, &meta->lr);
        read_attr_required(f, &ctx, "lambda", H5T_FLOAT, H5T_NATIVE_DOUBLE, &meta->lambda);
        read_attr_required(f, &ctx, "world_size", H5T_INTEGER, H5T_NATIVE_INT, &meta->world_size);
        check_meta(&ctx, meta);
    }
    HT_H5CHECK(H5Fclose(f), &ctx, path);
    h5u_restore(&q);
}

char *checkpoint_read_job(const char *path) {
    HT_CHECK(path, "checkpoint_read_job: path is NULL");
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx ctx = { .path = path, .kind = "checkpoint" };
    hid_t f = open_checkpoint(path, &ctx);
    if (!h5u_has_attr(f, &ctx, "job")) HT_FATAL("checkpoint '%s': missing root attribute \"job\" (the job JSON)", path);
    char *job = h5u_read_attr_str(f, &ctx, "job");
    HT_H5CHECK(H5Fclose(f), &ctx, path);
    h5u_restore(&q);
    return job;
}

// ---- run directory ----

void checkpoint_path(char *out, size_t n, const char *run_dir, int64_t step) {
    HT_CHECK(step >= 0, "checkpoint_path: negative step %lld", (long long)step);
    int r = snprintf(out, n, "%s/ckpt_%08lld.h5", run_dir, (long long)step);
    HT_CHECK(r > 0 && (size_t)r < n, "checkpoint path '%s/ckpt_%08lld.h5' is too long (max %zu bytes)",
             run_dir, (long long)step, n ? n - 1 : 0);
}

// Exactly the names checkpoint_path makes: "ckpt_" + %08lld + ".h5" (temporary files, which end
// in ".tmp.<pid>", and look-alikes such as "ckpt_000000001.h5" are ignored).
static int parse_ckpt_name(const char *name, long long *step) {
    if (strncmp(name, "ckpt_", 5) != 0) return 0;
    const char *p = name + 5, *q = p;
    while (isdigit((unsigned char)*q)) q++;
    if (q - p < 8 || q - p > 18 || strcmp(q, ".h5") != 0) return 0;
    char canon[40];
    *step = strtoll(p, NULL, 10);
    XSNPRINTF(canon, sizeof(canon), "ckpt_%08lld.h5", *step);
    return strcmp(canon, name) == 0;
}

// Steps of the checkpoints in run_dir, unsorted (caller frees). A missing run_dir has none.
static long long *list_steps(const char *run_dir, int *count) {
    *count = 0;
    DIR *d = opendir(run_dir);
    if (!d) {
        if (errno == ENOENT) return NULL;
        HT_FATAL("cannot list checkpoints in '%s': %s", run_dir, strerror(errno));
    }
    int cap = 16;
    long long *steps = XMALLOC((size_t)cap * sizeof(*steps));
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) HT_FATAL("cannot list checkpoints in '%s': %s", run_dir, strerror(errno));
            break;
        }
        long long s;
        if (!parse_ckpt_name(e->d_name, &s)) continue;
        if (*count == cap) { cap *= 2; steps = XREALLOC(steps, (size_t)cap * sizeof(*steps)); }
        steps[(*count)++] = s;
    }
    closedir(d);
    return steps;
}

static int cmp_desc(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

long long *checkpoint_steps(const char *run_dir, int *count) {
    long long *steps = list_steps(run_dir, count);
    if (*count > 1) qsort(steps, (size_t)*count, sizeof(*steps), cmp_desc);
    return steps;
}

char *checkpoint_latest(const char *run_dir) {
    int n;
    long long *steps = checkpoint_steps(run_dir, &n);
    if (n == 0) { free(steps); return NULL; }
    size_t len = strlen(run_dir) + 32;
    char *out = XMALLOC(len);
    checkpoint_path(out, len, run_dir, steps[0]);
    free(steps);
    return out;
}

void checkpoint_prune(const char *run_dir, int keep) {
    if (keep <= 0) return;   // documented: 0 or less keeps everything
    int n;
    long long *steps = checkpoint_steps(run_dir, &n);
    size_t len = strlen(run_dir) + 32;
    char *buf = XMALLOC(len);
    for (int i = keep; i < n; i++) {
        checkpoint_path(buf, len, run_dir, steps[i]);
        if (unlink(buf) != 0 && errno != ENOENT)
            HT_FATAL("cannot delete old checkpoint '%s': %s", buf, strerror(errno));
    }
    free(buf);
    free(steps);
}

// A temporary file of a writer: "<final name>.tmp.<pid>" where the final name is a checkpoint
// name or one of the run directory's own files (atomic_write_file makes these names).
static int is_stale_tmp_name(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || !t[5]) return 0;
    for (const char *p = t + 5; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    const size_t base = (size_t)(t - name);
    char final[64];
    if (base >= sizeof(final)) return 0;
    memcpy(final, name, base);
    final[base] = '\0';
    long long step;
    return parse_ckpt_name(final, &step) || !strcmp(final, "job.json") || !strcmp(final, "metrics.jsonl");
}

int checkpoint_remove_stale_tmp(const char *run_dir) {
    DIR *d = opendir(run_dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        HT_FATAL("cannot list '%s' (looking for temporary files): %s", run_dir, strerror(errno));
    }
    size_t len = strlen(run_dir) + 300;
    char *path = XMALLOC(len);
    int removed = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) HT_FATAL("cannot list '%s' (looking for temporary files): %s", run_dir, strerror(errno));
            break;
        }
        if (!is_stale_tmp_name(e->d_name)) continue;
        XSNPRINTF(path, len, "%s/%s", run_dir, e->d_name);
        if (unlink(path) != 0 && errno != ENOENT)
            HT_FATAL("cannot delete the stale temporary file '%s': %s", path, strerror(errno));
        removed++;
    }
    closedir(d);
    free(path);
    return removed;
}
