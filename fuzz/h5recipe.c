// h5recipe.c: see h5recipe.h.
#include "h5recipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

#define MAX_DATA_BYTES (64 << 10)
#define MAX_STRINGS 4096

typedef struct {
    const uint8_t *p, *end;
} Cursor;

static unsigned get_u8(Cursor *c) { return c->p < c->end ? *c->p++ : 0; }

static uint32_t get_u32(Cursor *c) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)get_u8(c) << (8 * i);
    return v;
}

static void get_str(Cursor *c, char *out) {   // out: 256 bytes
    unsigned n = get_u8(c);
    for (unsigned i = 0; i < n; i++) out[i] = (char)get_u8(c);
    out[n] = '\0';
}

// Copies n bytes (zero-filled past the end of the input).
static void get_bytes(Cursor *c, uint8_t *out, size_t n) {
    size_t have = (size_t)(c->end - c->p) < n ? (size_t)(c->end - c->p) : n;
    memcpy(out, c->p, have);
    memset(out + have, 0, n - have);
    c->p += have;
}

static hid_t get_type(Cursor *c, int *is_vlen) {
    unsigned code = get_u8(c) % 10;
    *is_vlen = code == 6;
    static const hid_t *const numeric[10] = { &H5T_IEEE_F32LE_g, &H5T_IEEE_F64LE_g, &H5T_STD_I32LE_g,
        &H5T_STD_I64LE_g, &H5T_STD_U64LE_g, &H5T_STD_U8LE_g, NULL, NULL, &H5T_IEEE_F32BE_g, &H5T_STD_I16LE_g };
    if (code == 6 || code == 7) {
        hid_t t = H5Tcopy(H5T_C_S1);
        if (code == 6) { H5Tset_size(t, H5T_VARIABLE); H5Tset_cset(t, H5T_CSET_UTF8); }
        else H5Tset_size(t, (size_t)get_u8(c) + 1);
        return t;
    }
    H5open();   // the *_g globals are set when the library starts
    return H5Tcopy(*numeric[code]);
}

// Returns the dataspace; *npoints its element count (0 for null), or -1 if it overflows.
static hid_t get_space(Cursor *c, hssize_t *npoints) {
    unsigned rank = get_u8(c) % 8;
    if (rank == 0) { *npoints = 1; return H5Screate(H5S_SCALAR); }
    if (rank == 7) { *npoints = 0; return H5Screate(H5S_NULL); }
    hsize_t dims[6];
    double total = 1;
    for (unsigned d = 0; d < rank; d++) { dims[d] = get_u32(c); total *= (double)dims[d]; }
    *npoints = total > 1e15 ? -1 : (hssize_t)total;
    return H5Screate_simple((int)rank, dims, NULL);
}

// Reads the element data for npoints elements of type t into a new buffer (NULL: too large, the
// object gets no data). Variable-length strings: an array of char * into *strings (freed by caller).
static void *get_data(Cursor *c, hid_t t, int is_vlen, hssize_t npoints, char **strings) {
    *strings = NULL;
    if (npoints < 0) return NULL;
    if (is_vlen) {
        if (npoints > MAX_STRINGS) return NULL;
        char **ptrs = calloc((size_t)npoints + 1, sizeof(char *));
        char *pool = malloc((size_t)(c->end - c->p) + (size_t)npoints + 1), *q = pool;
        for (hssize_t i = 0; i < npoints; i++) {
            size_t n = get_u8(c);
            n |= (size_t)get_u8(c) << 8;
            if (n > (size_t)(c->end - c->p)) n = (size_t)(c->end - c->p);   // the pool holds the input
            get_bytes(c, (uint8_t *)q, n);
            q[n] = '\0';
            ptrs[i] = q;
            q += n + 1;
        }
        *strings = pool;
        return ptrs;
    }
    size_t size = H5Tget_size(t);
    if ((double)npoints * (double)size > MAX_DATA_BYTES) return NULL;
    size_t n = (size_t)npoints * size;
    uint8_t *buf = malloc(n ? n : 1);
    get_bytes(c, buf, n);
    return buf;
}

static void make_group(hid_t f, hid_t lcpl, Cursor *c) {
    char path[256];
    get_str(c, path);
    hid_t g = H5Gcreate2(f, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    if (g >= 0) H5Gclose(g);
}

static hid_t chunked_dcpl(hid_t sp, unsigned flags) {
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int nd = H5Sget_simple_extent_ndims(sp);
    hsize_t dims[6], chunk[6];
    if (!(flags & 1) || H5Sget_simple_extent_type(sp) != H5S_SIMPLE || nd < 1) return dcpl;
    H5Sget_simple_extent_dims(sp, dims, NULL);
    for (int d = 0; d < nd; d++) {
        if (dims[d] == 0) return dcpl;
        chunk[d] = dims[d] < 16 ? dims[d] : 16;
    }
    H5Pset_chunk(dcpl, nd, chunk);
    if (flags & 2) { H5Pset_shuffle(dcpl); H5Pset_deflate(dcpl, 1); }
    return dcpl;
}

static void make_dataset(hid_t f, hid_t lcpl, Cursor *c) {
    char path[256], *strings;
    int is_vlen;
    get_str(c, path);
    hid_t t = get_type(c, &is_vlen);
    hssize_t np;
    hid_t sp = get_space(c, &np);
    hid_t dcpl = chunked_dcpl(sp, get_u8(c));
    void *buf = get_data(c, t, is_vlen, np, &strings);
    hid_t ds = H5Dcreate2(f, path, t, sp, lcpl, dcpl, H5P_DEFAULT);
    if (ds >= 0 && buf && np > 0) H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (ds >= 0) H5Dclose(ds);
    free(buf);
    free(strings);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
}

static void make_attribute(hid_t f, Cursor *c) {
    char obj[256], name[256], *strings;
    int is_vlen;
    get_str(c, obj);
    get_str(c, name);
    hid_t t = get_type(c, &is_vlen);
    hssize_t np;
    hid_t sp = get_space(c, &np);
    void *buf = get_data(c, t, is_vlen, np, &strings);
    hid_t o = buf || np == 0 ? H5Oopen(f, obj[0] ? obj : "/", H5P_DEFAULT) : -1;
    hid_t a = o >= 0 ? H5Acreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    if (a >= 0 && np > 0) H5Awrite(a, t, buf);
    if (a >= 0) H5Aclose(a);
    if (o >= 0) H5Oclose(o);
    free(buf);
    free(strings);
    H5Sclose(sp);
    H5Tclose(t);
}

// Builds the file in memory (core driver, no backing store) and copies out its image: one
// write of the whole file afterwards instead of HDF5 writing it piecewise.
static void *build_image(const uint8_t *data, size_t size, size_t *image_size) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t f = H5Fcreate("h5recipe", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) return NULL;
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    Cursor c = { data, data + size };
    while (c.p < c.end) {
        unsigned op = get_u8(&c) % 3;
        if (op == 0) make_group(f, lcpl, &c);
        else if (op == 1) make_dataset(f, lcpl, &c);
        else make_attribute(f, &c);
    }
    H5Pclose(lcpl);
    void *image = NULL;
    ssize_t n = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f, NULL, 0);
    if (n > 0 && (image = malloc((size_t)n)) != NULL && H5Fget_file_image(f, image, (size_t)n) != n) {
        free(image);
        image = NULL;
    }
    if (H5Fclose(f) < 0) {
        free(image);
        return NULL;
    }
    *image_size = (size_t)n;
    return image;
}

int h5recipe_build(const uint8_t *data, size_t size, const char *path) {
    size_t n = 0;
    void *image = build_image(data, size, &n);
    if (!image) return -1;
    FILE *out = fopen(path, "wb");
    int ok = out && fwrite(image, 1, n, out) == n;
    if (out && fclose(out) != 0) ok = 0;
    free(image);
    return ok ? 0 : -1;
}
