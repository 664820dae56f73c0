// data.h: MNIST, or Fashion-MNIST (the same IDX layout), from the original IDX files (.gz or
// uncompressed), verified by SHA-256 of the uncompressed contents against the data set's own
// table; the training file splits into validation (first n_val images, as the
// original code did) and training (the next n_train); and an epoch-permutation sampler keyed by
// the counter-based RNG so that the image stream depends only on (seed, position).
#ifndef HT_DATA_H
#define HT_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n;            // images
    int h, w;         // 28, 28
    float *images;    // (n, h*w), pixels / 255
    uint8_t *labels;  // (n)
} Dataset;

typedef struct {
    Dataset train, val, test;
} Mnist;

// The data sets in MNIST's IDX layout (four files, 60,000 + 10,000 images of 28 x 28, labels
// 0-9); the job's "data.dataset" names one. Each has its own checksums and default directory.
typedef enum { DATA_MNIST = 0, DATA_FASHION_MNIST = 1 } DataSetId;
#define DATA_N_SETS 2
#define DATA_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"  // Debian's dataset-fashion-mnist

// The job's name of a data set ("mnist", "fashion-mnist") and its title ("MNIST",
// "Fashion-MNIST"); NULL for an id that is none.
const char *data_set_name(int id);
const char *data_set_title(int id);

// The data directory of data set `id`: job_dir if non-empty; else for MNIST $HYPERTRAIN_DATA,
// else "data/mnist" (where scripts/fetch-mnist.sh puts it) if it exists, else
// "../shared/data/mnist"; for Fashion-MNIST DATA_FASHION_MNIST_DIR ($HYPERTRAIN_DATA is MNIST's).
const char *data_resolve_dir_for(int id, const char *job_dir);
// = data_resolve_dir_for(DATA_MNIST, job_dir).
const char *data_resolve_dir(const char *job_dir);

// Loads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte,
// t10k-labels-idx1-ubyte of data set `id` from dir (each as NAME.gz or NAME). verify: check
// SHA-256 of the uncompressed contents against that data set's originals. Fatal, naming the
// file, on a missing directory or file, truncated/corrupt gzip, wrong magic, inconsistent sizes,
// or checksum mismatch (saying so when the file is another known data set's).
void data_load(Mnist *m, int id, const char *dir, int n_train, int n_val, int verify);
// = data_load(m, DATA_MNIST, ...).
void mnist_load(Mnist *m, const char *dir, int n_train, int n_val, int verify);
void mnist_free(Mnist *m);
// MNIST-shaped synthetic data for benchmarks and tests whose speed or logic does not depend on
// pixel values: n_train / n_val / 1 images of 28 x 28, pixels from a multiplicative hash, labels
// i mod 10. Free with mnist_free.
void mnist_synthetic(Mnist *m, int n_train, int n_val);

// Reads one IDX file (gz or raw). Checks magic (2051 images, 2049 labels) and that the data
// length matches the header. Returns the payload (caller frees), dims in dims[0..ndim).
uint8_t *idx_read(const char *path, int expect_magic, int dims[3], int *ndim, char sha256_hex[65]);

// Epoch sampler: position p of the training stream is image perm_e[p mod n] with e = p / n, and
// perm_e a Fisher-Yates shuffle drawn from (seed, RNG_STREAM_PERM, e).
typedef struct {
    uint64_t seed;
    int n;
    int64_t epoch[2];  // epochs whose permutations are cached (-1 = empty)
    int *perm[2];
} Sampler;

void sampler_init(Sampler *s, uint64_t seed, int n);
int sampler_index(Sampler *s, int64_t position);
void sampler_free(Sampler *s);

#endif
