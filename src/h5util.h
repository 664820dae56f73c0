// h5util.h: the HDF5 helpers shared by checkpoints (checkpoint.c) and sample sets (sample.c):
// one checked-call macro whose failure names the file, the HDF5 function, the object and HDF5's
// most specific message on one line; scalar attributes; untimed object creation (so the same
// content always gives the same bytes); and path/shape utilities.
#ifndef HT_H5UTIL_H
#define HT_H5UTIL_H

#include <hdf5.h>
#include <stddef.h>

// The file-access property list with which the readers (checkpoint.c, sample.c) open a file:
// H5P_DEFAULT. Fuzz builds only (make fuzz, -DHT_FUZZ): a harness may point ht_fuzz_fapl at a
// list that holds the input's HDF5 file as an in-memory image (core driver, fuzz/fuzz.h), so that
// no file is written and read back per input; the readers' checks are the same. Never set
// otherwise; the normal build has no such variable and always opens with H5P_DEFAULT.
#ifdef HT_FUZZ
extern hid_t ht_fuzz_fapl;   // <= 0: H5P_DEFAULT
#define H5U_READ_FAPL (ht_fuzz_fapl > 0 ? ht_fuzz_fapl : H5P_DEFAULT)
#else
#define H5U_READ_FAPL H5P_DEFAULT
#endif

// What a failing HDF5 call was doing.
typedef struct {
    const char *path;        // the file
    const char *kind;        // "checkpoint", "sample set", "result file": names it in messages
    int writing;             // 1: "cannot write <kind> '<path>': ..."; 0: "<kind> '<path>': ..."
    const char *write_note;  // appended to write errors (e.g. that the old file is unchanged), or NULL
    void (*on_error)(void);  // runs before the fatal message (e.g. removes temporary files), or NULL
} H5Ctx;

// The innermost (most specific) message on HDF5's default error stack, on one line.
void h5u_detail(char *out, size_t n);

// A negative result is fatal (see H5Ctx); otherwise returns r.
hid_t h5u_check(hid_t r, const char *call, const H5Ctx *ctx, const char *what, const char *file, int line);
// (hdf5.h already defines a macro named H5CHECK, hence the HT_ prefix.) `what` names the HDF5
// object (e.g. "/params/gen1/dense0/kernel"). Returns the call's result (ids, htri_t, herr_t).
#define HT_H5CHECK(x, ctx, what) h5u_check((hid_t)(x), #x, (ctx), (what), __FILE__, __LINE__)

// Turns HDF5's automatic error printing off between h5u_quiet and h5u_restore.
typedef struct { H5E_auto2_t func; void *data; } H5Quiet;
void h5u_quiet(H5Quiet *q);
void h5u_restore(const H5Quiet *q);

// A property list of class cls (group or dataset creation) without timestamps.
hid_t h5u_untimed_plist(hid_t cls, const H5Ctx *ctx, const char *what);
void h5u_create_group(hid_t f, const H5Ctx *ctx, const char *name);

// Scalar attributes; strings are variable-length UTF-8 (str in h5py, char in MATLAB).
void h5u_write_attr(hid_t loc, const H5Ctx *ctx, const char *name, hid_t file_type, hid_t mem_type,
                    const void *value);
void h5u_write_attr_str(hid_t loc, const H5Ctx *ctx, const char *name, const char *value);
int h5u_has_attr(hid_t loc, const H5Ctx *ctx, const char *name);
// Root attribute as a string, fixed or variable length (caller frees); NULL if absent. Fatal
// unless it holds exactly one string (a scalar or a one-element array) of ASCII or UTF-8, of at
// most H5U_MAX_STR bytes when fixed-length: "<kind> '<path>': attribute "format" must be a single
// string, got a 64-element array".
#define H5U_MAX_STR (16 << 20)
char *h5u_read_attr_str(hid_t f, const H5Ctx *ctx, const char *name);
// Numeric scalar root attribute of class cls into mem_type (HDF5 converts widths); 0 if absent.
// Fatal unless it holds exactly one element of class cls (H5T_INTEGER or H5T_FLOAT).
int h5u_read_attr_num(hid_t f, const H5Ctx *ctx, const char *name, H5T_class_t cls, hid_t mem_type,
                      void *out);

// 1 if all of dataset ds's data is stored in the file (every chunk of a chunked dataset, the whole
// extent of a contiguous one): a file can declare a huge shape and store nothing.
int h5u_all_data_stored(hid_t ds, const H5Ctx *ctx, const char *name);
// 1 if every link along the absolute path `name` exists (H5Lexists wants existing parents).
int h5u_path_exists(hid_t f, const H5Ctx *ctx, const char *name);
// "integer", "float", "string", ...: a type class in messages.
const char *h5u_class_name(H5T_class_t c);
// A dataset's or attribute's type for messages: "float32", "int64", "uint8", "variable-length
// string", "fixed-length string of 21 bytes", "compound", ...
void h5u_describe_type(hid_t t, char *out, size_t n);
// What a dataspace holds, for messages: "a scalar", "a 64-element array", "an array of shape
// (2, 3)", "an empty (null) dataspace".
void h5u_describe_space(hid_t sp, char *out, size_t n);
// "(40, 26)" or "(40,)", as h5py prints shapes.
void h5u_fmt_shape(char *out, size_t n, int ndim, const hsize_t *dims);

#endif
