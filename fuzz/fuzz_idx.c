// fuzz_idx: the IDX reader (src/data.c idx_read), raw and gzip. The first input byte chooses:
// bit 0: write the rest as it is (the reader sees raw IDX bytes, or a gzip stream if they start
// like one) or gzip-compress it first (so the fuzzer controls the decompressed IDX bytes);
// bit 1: read as images (magic 2051, 3 dims) or labels (2049, 1 dim); bit 2: also hash (SHA-256).
#include "fuzz.h"

#include <zlib.h>

#include "data.h"

typedef struct {
    const char *path;
    int magic, hash;
} IdxInput;

static void read_idx(void *arg) {
    const IdxInput *in = arg;
    int dims[3], nd;
    char sha[65];
    uint8_t *d = idx_read(in->path, in->magic, dims, &nd, in->hash ? sha : NULL);
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)dims[i];
    volatile uint8_t sum = 0;
    for (size_t i = 0; i < n; i++) sum += d[i];   // every announced byte must be readable
    free(d);
}

static void write_gz(const char *path, const uint8_t *data, size_t size) {
    gzFile g = gzopen(path, "wb1");
    if (!g || (size && gzwrite(g, data, (unsigned)size) != (int)size) || gzclose(g) != Z_OK) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static char path[512];
    if (!path[0]) fuzz_tmp_path(path, sizeof(path), "idx");
    const uint8_t mode = data[0];
    if (mode & 1) write_gz(path, data + 1, size - 1);
    else fuzz_write_file(path, data + 1, size - 1);
    IdxInput in = { path, (mode & 2) ? 2049 : 2051, (mode & 4) != 0 };
    fuzz_try(read_idx, &in);
    unlink(path);
    return 0;
}
