#include "h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#ifdef HT_FUZZ
hid_t ht_fuzz_fapl = -1;   // fuzz builds only: see h5util.h
#endif

typedef struct { char desc[200]; } H5Detail;

static herr_t detail_cb(unsigned n, const H5E_error2_t *e, void *data) {
    H5Detail *d = data;
    if (n == 0 && e->desc) snprintf(d->desc, sizeof(d->desc), "%s", e->desc);
    return 0;
}

void h5u_detail(char *out, size_t n) {
    H5Detail d = { "" };
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, detail_cb, &d);
    snprintf(out, n, "%s", d.desc[0] ? d.desc : "no detail");
    for (char *c = out; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';   // keep the error on one line
}

hid_t h5u_check(hid_t r, const char *call, const H5Ctx *ctx, const char *what, const char *file, int line) {
    if (r >= 0) return r;
    if (ctx->on_error) ctx->on_error();   // before the message: under MPI the abort runs no exit handlers
    char fn[64], detail[200];
    size_t k = 0;
    while (call[k] && call[k] != '(' && k + 1 < sizeof(fn)) { fn[k] = call[k]; k++; }
    fn[k] = '\0';
    h5u_detail(detail, sizeof(detail));
    if (ctx->writing)
        ht_fatal(file, line, "cannot write %s '%s': %s failed on %s (HDF5: %s)%s%s", ctx->kind, ctx->path, fn,
                 what, detail, ctx->write_note ? "; " : "", ctx->write_note ? ctx->write_note : "");
    ht_fatal(file, line, "%s '%s': %s failed on %s (HDF5: %s)", ctx->kind, ctx->path, fn, what, detail);
}

void h5u_quiet(H5Quiet *q) {
    q->func = NULL; q->data = NULL;
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5u_restore(const H5Quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

hid_t h5u_untimed_plist(hid_t cls, const H5Ctx *ctx, const char *what) {
    hid_t p = HT_H5CHECK(H5Pcreate(cls), ctx, what);
    HT_H5CHECK(H5Pset_obj_track_times(p, 0), ctx, what);
    return p;
}

void h5u_create_group(hid_t f, const H5Ctx *ctx, const char *name) {
    hid_t gcpl = h5u_untimed_plist(H5P_GROUP_CREATE, ctx, name);
    hid_t g = HT_H5CHECK(H5Gcreate2(f, name, H5P_DEFAULT, gcpl, H5P_DEFAULT), ctx, name);
    HT_H5CHECK(H5Gclose(g), ctx, name);
    HT_H5CHECK(H5Pclose(gcpl), ctx, name);
}

void h5u_write_attr(hid_t loc, const H5Ctx *ctx, const char *name, hid_t file_type, hid_t mem_type,
                    const void *value) {
    hid_t sp = HT_H5CHECK(H5Screate(H5S_SCALAR), ctx, name);
    hid_t a = HT_H5CHECK(H5Acreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT), ctx, name);
    HT_H5CHECK(H5Awrite(a, mem_type, value), ctx, name);
    HT_H5CHECK(H5Aclose(a), ctx, name);
    HT_H5CHECK(H5Sclose(sp), ctx, name);
}

void h5u_write_attr_str(hid_t loc, const H5Ctx *ctx, const char *name, const char *value) {
    hid_t t = HT_H5CHECK(H5Tcopy(H5T_C_S1), ctx, name);
    HT_H5CHECK(H5Tset_size(t, H5T_VARIABLE), ctx, name);
    HT_H5CHECK(H5Tset_cset(t, H5T_CSET_UTF8), ctx, name);
    h5u_write_attr(loc, ctx, name, t, t, &value);
    HT_H5CHECK(H5Tclose(t), ctx, name);
}

int h5u_has_attr(hid_t loc, const H5Ctx *ctx, const char *name) {
    return HT_H5CHECK(H5Aexists(loc, name), ctx, name) > 0;
}

const char *h5u_class_name(H5T_class_t c) {
    switch (c) {
    case H5T_INTEGER: return "integer";
    case H5T_FLOAT: return "float";
    case H5T_STRING: return "string";
    case H5T_BITFIELD: return "bitfield";
    case H5T_OPAQUE: return "opaque";
    case H5T_COMPOUND: return "compound";
    case H5T_REFERENCE: return "reference";
    case H5T_ENUM: return "enum";
    case H5T_VLEN: return "variable-length sequence";
    case H5T_ARRAY: return "array-typed";
    default: return "unknown-typed";
    }
}

void h5u_describe_type(hid_t t, char *out, size_t n) {
    const H5T_class_t c = H5Tget_class(t);
    const size_t bits = 8 * H5Tget_size(t);
    if (c == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) XSNPRINTF(out, n, "variable-length string");
        else XSNPRINTF(out, n, "fixed-length string of %zu bytes", bits / 8);
    } else if (c == H5T_FLOAT) {
        XSNPRINTF(out, n, "float%zu", bits);
    } else if (c == H5T_INTEGER) {
        XSNPRINTF(out, n, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
    } else {
        XSNPRINTF(out, n, "%s", h5u_class_name(c));
    }
}

void h5u_describe_space(hid_t sp, char *out, size_t n) {
    H5S_class_t k = H5Sget_simple_extent_type(sp);
    if (k == H5S_SCALAR) { XSNPRINTF(out, n, "a scalar"); return; }
    if (k == H5S_NULL) { XSNPRINTF(out, n, "an empty (null) dataspace"); return; }
    if (k != H5S_SIMPLE) { XSNPRINTF(out, n, "an unreadable dataspace"); return; }
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[H5S_MAX_RANK];
    if (nd < 0 || nd > H5S_MAX_RANK || H5Sget_simple_extent_dims(sp, dims, NULL) < 0) {
        XSNPRINTF(out, n, "an unreadable dataspace");
        return;
    }
    if (nd == 1) { XSNPRINTF(out, n, "a %llu-element array", (unsigned long long)dims[0]); return; }
    char shape[160];
    h5u_fmt_shape(shape, sizeof(shape), nd, dims);
    XSNPRINTF(out, n, "an array of shape %s", shape);
}

// Opens root attribute `name` and checks that it holds exactly one element (a scalar, or a
// one-element array) of class cls; fatal otherwise, naming what it holds. Returns the attribute;
// *ft (its file type) is for the caller to close.
static hid_t open_single_attr(hid_t f, const H5Ctx *ctx, const char *name, const char *what,
                              H5T_class_t cls, const char *expect, hid_t *ft) {
    hid_t a = HT_H5CHECK(H5Aopen(f, name, H5P_DEFAULT), ctx, what);
    *ft = HT_H5CHECK(H5Aget_type(a), ctx, what);
    hid_t sp = HT_H5CHECK(H5Aget_space(a), ctx, what);
    H5T_class_t c = H5Tget_class(*ft);
    H5S_class_t k = H5Sget_simple_extent_type(sp);
    hssize_t np = H5Sget_simple_extent_npoints(sp);
    char got[200];
    if (c != cls) {
        char space[160];
        h5u_describe_space(sp, space, sizeof(space));
        XSNPRINTF(got, sizeof(got), "%s of type %s", space, h5u_class_name(c));
        HT_FATAL("%s '%s': attribute \"%s\" must be %s, got %s", ctx->kind, ctx->path, name, expect, got);
    }
    if (!(k == H5S_SCALAR || (k == H5S_SIMPLE && np == 1))) {
        h5u_describe_space(sp, got, sizeof(got));
        HT_FATAL("%s '%s': attribute \"%s\" must be %s, got %s", ctx->kind, ctx->path, name, expect, got);
    }
    HT_H5CHECK(H5Sclose(sp), ctx, what);
    return a;
}

char *h5u_read_attr_str(hid_t f, const H5Ctx *ctx, const char *name) {
    if (!h5u_has_attr(f, ctx, name)) return NULL;
    char what[160];
    XSNPRINTF(what, sizeof(what), "root attribute \"%.100s\"", name);
    hid_t ft;
    hid_t a = open_single_attr(f, ctx, name, what, H5T_STRING, "a single string", &ft);
    char *out;
    hid_t mt = HT_H5CHECK(H5Tcopy(H5T_C_S1), ctx, what);
    H5T_cset_t cset = H5Tget_cset(ft);
    HT_CHECK(cset == H5T_CSET_ASCII || cset == H5T_CSET_UTF8, "%s '%s': attribute \"%s\" must be an "
             "ASCII or UTF-8 string, got character set %d", ctx->kind, ctx->path, name, (int)cset);
    HT_H5CHECK(H5Tset_cset(mt, cset), ctx, what);   // HDF5 converts no character sets
    if (HT_H5CHECK(H5Tis_variable_str(ft), ctx, what) > 0) {
        char *s = NULL;
        HT_H5CHECK(H5Tset_size(mt, H5T_VARIABLE), ctx, what);
        HT_H5CHECK(H5Aread(a, mt, &s), ctx, what);
        out = XSTRDUP(s ? s : "");
        if (s) H5free_memory(s);
    } else {
        size_t n = H5Tget_size(ft);
        HT_CHECK(n > 0 && n <= H5U_MAX_STR, "%s '%s': attribute \"%s\" is a fixed-length string of %zu "
                 "bytes (1 to %d expected)", ctx->kind, ctx->path, name, n, H5U_MAX_STR);
        out = XCALLOC(n + 1, 1);
        HT_H5CHECK(H5Tset_size(mt, n + 1), ctx, what);   // room for the terminator HDF5 adds
        HT_H5CHECK(H5Tset_strpad(mt, H5T_STR_NULLTERM), ctx, what);
        HT_H5CHECK(H5Aread(a, mt, out), ctx, what);
        out[n] = '\0';
    }
    HT_H5CHECK(H5Tclose(mt), ctx, what);
    HT_H5CHECK(H5Tclose(ft), ctx, what);
    HT_H5CHECK(H5Aclose(a), ctx, what);
    return out;
}

int h5u_read_attr_num(hid_t f, const H5Ctx *ctx, const char *name, H5T_class_t cls, hid_t mem_type,
                      void *out) {
    if (!h5u_has_attr(f, ctx, name)) return 0;
    char what[160];
    XSNPRINTF(what, sizeof(what), "root attribute \"%.100s\"", name);
    hid_t ft;
    hid_t a = open_single_attr(f, ctx, name, what, cls,
                               cls == H5T_INTEGER ? "a single integer" : "a single float", &ft);
    HT_H5CHECK(H5Aread(a, mem_type, out), ctx, what);
    HT_H5CHECK(H5Tclose(ft), ctx, what);
    HT_H5CHECK(H5Aclose(a), ctx, what);
    return 1;
}

int h5u_all_data_stored(hid_t ds, const H5Ctx *ctx, const char *name) {
    hid_t dcpl = HT_H5CHECK(H5Dget_create_plist(ds), ctx, name);
    const H5D_layout_t layout = H5Pget_layout(dcpl);
    int stored;
    if (layout == H5D_CHUNKED) {
        // H5Dget_space_status compares stored bytes with the logical size, which compression and
        // partial edge chunks make differ: count the chunks instead.
        hsize_t chunk[H5S_MAX_RANK], dims[H5S_MAX_RANK], n_stored = 0;
        hid_t sp = HT_H5CHECK(H5Dget_space(ds), ctx, name);
        const int nd = (int)HT_H5CHECK(H5Sget_simple_extent_ndims(sp), ctx, name);
        HT_H5CHECK(H5Sget_simple_extent_dims(sp, dims, NULL), ctx, name);
        HT_CHECK(HT_H5CHECK(H5Pget_chunk(dcpl, H5S_MAX_RANK, chunk), ctx, name) == nd,
                 "%s '%s': %s has chunks of another rank than its shape", ctx->kind, ctx->path, name);
        double want = 1;
        for (int d = 0; d < nd; d++) want *= (double)((dims[d] + chunk[d] - 1) / (chunk[d] ? chunk[d] : 1));
        HT_H5CHECK(H5Dget_num_chunks(ds, sp, &n_stored), ctx, name);
        HT_H5CHECK(H5Sclose(sp), ctx, name);
        stored = (double)n_stored == want;
    } else {
        H5D_space_status_t status;
        HT_H5CHECK(H5Dget_space_status(ds, &status), ctx, name);
        stored = status == H5D_SPACE_STATUS_ALLOCATED;
    }
    HT_H5CHECK(H5Pclose(dcpl), ctx, name);
    return stored;
}

int h5u_path_exists(hid_t f, const H5Ctx *ctx, const char *name) {
    char prefix[512];
    const char *s = name + 1;
    for (;;) {
        const char *slash = strchr(s, '/');
        size_t len = slash ? (size_t)(slash - name) : strlen(name);
        XSNPRINTF(prefix, sizeof(prefix), "%.*s", (int)len, name);
        if (HT_H5CHECK(H5Lexists(f, prefix, H5P_DEFAULT), ctx, prefix) <= 0) return 0;
        if (!slash) return 1;
        s = slash + 1;
    }
}

void h5u_fmt_shape(char *out, size_t n, int ndim, const hsize_t *dims) {
    if (ndim == 1) { snprintf(out, n, "(%llu,)", (unsigned long long)dims[0]); return; }
    size_t k = (size_t)snprintf(out, n, "(");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (k < n) snprintf(out + k, n - k, ")");
}
