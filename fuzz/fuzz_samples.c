// fuzz_samples: the sample-set reader (src/sample.c): sampleset_open as every analysis calls it,
// then what the analyses read: networks (flat layout), one layer, z and the stored metrics of
// the first networks. Input: a recipe (h5recipe.h) for the HDF5 file.
#include <hdf5.h>

#include "fuzz.h"

#include "h5recipe.h"
#include "h5util.h"
#include "sample.h"

#define MAX_READ_WEIGHTS (1 << 20)   // networks larger than this are opened, not read

typedef struct {
    const char *path;
    SampleSet set;
    float *theta, *layer, *z;
    double *metric;
} SamplesInput;

static char g_path[512];

static hid_t g_fapl;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    g_fapl = fuzz_h5_init(g_path, sizeof(g_path), "samples");
    return 0;
}

static void open_and_read(void *arg) {
    SamplesInput *in = arg;
    SampleSet *s = &in->set;
    sampleset_open(s, in->path, NULL);
    const int n = s->n < 2 ? (int)s->n : 2;
    if (s->arch.n_weights <= MAX_READ_WEIGHTS) {
        in->theta = XALLOC_FLOATS((size_t)n * s->arch.n_weights);
        sampleset_read(s, 0, n, in->theta);
        in->layer = XALLOC_FLOATS((size_t)n * s->arch.layers[0].size);
        sampleset_read_layer(s, 0, s->n - n, n, in->layer);
    }
    in->z = XALLOC_FLOATS((size_t)n * s->z_dim);
    sampleset_read_z(s, 0, n, in->z);
    in->metric = XCALLOC((size_t)n, sizeof(double));
    sampleset_read_metric(s, "accuracy", 0, n, in->metric);
    sampleset_read_metric(s, "loss", 0, n, in->metric);
    sampleset_require(s, 1, "fuzz_samples");
    sampleset_close(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (h5recipe_build(data, size, g_path) != 0) return 0;
    ht_fuzz_fapl = g_fapl;   // the readers read the file into memory at once (core driver)
    SamplesInput in;
    memset(&in, 0, sizeof(in));
    in.path = g_path;
    const FuzzH5Mark mark = fuzz_h5_mark();
    if (fuzz_try(open_and_read, &in)) fuzz_h5_cleanup(mark);   // closes what a fatal error left open
    free(in.theta);
    free(in.layer);
    free(in.z);
    free(in.metric);
    ht_fuzz_fapl = -1;
    unlink(g_path);
    return 0;
}
