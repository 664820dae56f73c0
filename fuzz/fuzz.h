// fuzz.h: what every libFuzzer harness of fuzz/ shares (docs/fuzzing.md). Built only by
// `make fuzz` (clang, -DHT_FUZZ): ht_fatal longjmps to the harness instead of exiting, so a clean
// one-line error is an ordinary outcome and only a real crash, hang or sanitizer report counts.
#ifndef HT_FUZZ_H
#define HT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#ifndef HT_FUZZ
#error "fuzz/ harnesses are built with -DHT_FUZZ (make fuzz)"
#endif

// Runs fn(arg); returns 0 when it returned, 1 when it ended in a fatal error (ht_fatal).
static inline int fuzz_try(void (*fn)(void *), void *arg) {
    jmp_buf env;
    int failed = 0;
    if (setjmp(env) == 0) {
        ht_fuzz_escape = &env;
        fn(arg);
    } else {
        failed = 1;
    }
    ht_fuzz_escape = NULL;
    return failed;
}

// A per-process scratch file name, in $TMPDIR, else /dev/shm (memory), else /tmp.
static inline void fuzz_tmp_path(char *out, size_t n, const char *tag) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    XSNPRINTF(out, n, "%s/ht_fuzz_%s_%ld", dir, tag, (long)getpid());
}

// Writes size bytes to path (abort on failure: the harness itself is broken then).
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#ifdef H5_VERS_MAJOR
// HDF5 ids a fatal error left open. H5close() would free them too, but it also empties HDF5's free
// lists, so that every file opened afterwards maps and faults in its metadata cache afresh (about
// half of an HDF5 harness's time). Instead: close the open objects, and the transient dataspaces
// and datatypes created since fuzz_h5_mark (ids of one type are consecutive numbers in HDF5 1.10+).
typedef struct { hid_t space, type; } FuzzH5Mark;

static inline hid_t fuzz_probe_space(void) { hid_t s = H5Screate(H5S_SCALAR); H5Sclose(s); return s; }
static inline hid_t fuzz_probe_type(void) { hid_t t = H5Tcopy(H5T_NATIVE_INT); H5Tclose(t); return t; }

static inline FuzzH5Mark fuzz_h5_mark(void) {
    FuzzH5Mark m = { fuzz_probe_space(), fuzz_probe_type() };
    return m;
}

// Once per process, before the first input (docs/fuzzing.md, "Speed"):
// - HDF5's free lists keep what they are given back (H5set_free_list_limits, no limits). With the
//   default limits (64 KiB a list) the ~512 KiB metadata cache of every file opened went back to
//   malloc at each close and came back as fresh pages (mmap, page faults, memset, TLB flushes
//   under ASan's allocator): more than half of the time of an HDF5 harness.
// - path: the per-process scratch file (fuzz_tmp_path) for tag.
// Returns the file-access property list for the readers (ht_fuzz_fapl, src/h5util.h): the core
// driver without backing store, which reads the whole file in one read() into memory instead of
// HDF5's many small reads of its default driver.
static inline hid_t fuzz_h5_init(char *path, size_t n, const char *tag) {
    hid_t fapl = -1;
    if (H5open() < 0 || H5set_free_list_limits(-1, -1, -1, -1, -1, -1) < 0 ||
        (fapl = H5Pcreate(H5P_FILE_ACCESS)) < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0) {
        fputs("fuzz_h5_init: HDF5 did not start\n", stderr);
        abort();
    }
    fuzz_tmp_path(path, n, tag);
    return fapl;
}

static inline void fuzz_h5_cleanup(FuzzH5Mark m) {
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n > 0) {
        hid_t *ids = malloc((size_t)n * sizeof(hid_t));
        n = H5Fget_obj_ids(H5F_OBJ_ALL, H5F_OBJ_ALL, (size_t)n, ids);
        for (ssize_t pass = 0; pass < 2; pass++)   // objects first, then the files
            for (ssize_t i = 0; i < n; i++) {
                if (H5Iis_valid(ids[i]) <= 0) continue;
                H5I_type_t t = H5Iget_type(ids[i]);
                if (pass == 0 && t == H5I_ATTR) H5Aclose(ids[i]);
                else if (pass == 0 && (t == H5I_DATASET || t == H5I_GROUP || t == H5I_DATATYPE)) H5Oclose(ids[i]);
                else if (pass == 1 && t == H5I_FILE) H5Fclose(ids[i]);
            }
        free(ids);
    }
    const hid_t s1 = fuzz_probe_space(), t1 = fuzz_probe_type();
    for (hid_t id = m.space + 1; id < s1; id++)
        if (H5Iis_valid(id) > 0) H5Sclose(id);
    for (hid_t id = m.type + 1; id < t1; id++)
        if (H5Iis_valid(id) > 0) H5Tclose(id);
}
#endif

#endif
