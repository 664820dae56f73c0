// resultfile.c: see resultfile.h.
#include "resultfile.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "common.h"
#include "h5util.h"
#include "tmpfiles.h"

static void attr_i64(hid_t loc, const H5Ctx *c, const char *name, int64_t v) {
    h5u_write_attr(loc, c, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &v);
}
static void attr_f64(hid_t loc, const H5Ctx *c, const char *name, double v) {
    h5u_write_attr(loc, c, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &v);
}

void result_create(ResultFile *r, const char *path) {
    memset(r, 0, sizeof(*r));
    HT_CHECK(path && strlen(path) < sizeof(r->path), "result file path is missing or too long");
    XSNPRINTF(r->path, sizeof(r->path), "%s", path);
    tmpf_name(r->tmp, sizeof(r->tmp), path);
    int fd = open(r->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) HT_FATAL("cannot write result file '%s': %s (creating '%s')", path, strerror(errno), r->tmp);
    close(fd);
    tmpf_register(r->tmp);
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = r->path, .kind = "result file", .writing = 1, .on_error = tmpf_remove_now };
    r->file = HT_H5CHECK(H5Fcreate(r->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), &c, r->tmp);
    h5u_restore(&q);
}

static void result_ds(ResultFile *r, const char *name, int ndim, const size_t *dims, hid_t ftype,
                      hid_t mtype, const void *data) {
    H5Quiet q;
    h5u_quiet(&q);
    H5Ctx c = { .path = r->path, .kind = "result file", .writing = 1, .on_error = tmpf_remove_now };
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
    H5Ctx c = { .path = r->path, .kind = "result file", .writing = 1, .on_error = tmpf_remove_now };
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
    H5Ctx c = { .path = r->path, .kind = "result file", .writing = 1, .on_error = tmpf_remove_now };
    HT_H5CHECK(H5Fclose(r->file), &c, r->tmp);
    h5u_restore(&q);
    tmpf_commit(r->tmp, r->path, "result file");
    r->file = 0;
}
