// bench_data: how long loading MNIST takes (mnist_load of the paper's split: 55,000 training and
// 5,000 validation images, plus the 10,000 test images), with and without SHA-256 verification,
// best of N.
//   build/bench/bench_data [--data DIR] [--reps N]
// DIR: as ./hypertrain resolves it (--data, $HYPERTRAIN_DATA, data/mnist, ../shared/data/mnist).
// Prints per mode: seconds, MB/s of the files as stored (.gz or raw) and MB/s of the decoded
// IDX contents (55 MB for the four files). Never pass/fail (tests/test_data.c checks the
// contents; it used to assert < 3 s here, which a busy machine can miss).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "data.h"

static const char *const FILES[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                     "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

// Bytes of the four files as stored: NAME.gz if present (what mnist_load reads), else NAME.
static double stored_bytes(const char *dir) {
    double total = 0.0;
    for (int i = 0; i < 4; i++) {
        char path[4096];
        struct stat st;
        XSNPRINTF(path, sizeof path, "%s/%s.gz", dir, FILES[i]);
        if (stat(path, &st) != 0) {
            XSNPRINTF(path, sizeof path, "%s/%s", dir, FILES[i]);
            HT_CHECK(stat(path, &st) == 0, "no %s(.gz) in '%s'", FILES[i], dir);
        }
        total += (double)st.st_size;
    }
    return total;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_data [--data DIR] [--reps N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *dir_arg = NULL;
    int reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) dir_arg = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else usage();
    }
    if (reps < 1) usage();
    const char *dir = data_resolve_dir(dir_arg);
    const double stored = stored_bytes(dir);
    // decoded IDX contents: headers (16 / 8 bytes) + pixels / labels
    const double decoded = 16.0 + 60000.0 * 784 + 8.0 + 60000.0 + 16.0 + 10000.0 * 784 + 8.0 + 10000.0;
    printf("MNIST from %s: %.1f MB stored, %.1f MB decoded; best of %d\n", dir, stored / 1e6,
           decoded / 1e6, reps);
    for (int verify = 1; verify >= 0; verify--) {
        double best = 1e30;
        for (int r = 0; r < reps; r++) {
            Mnist m;
            const double t0 = ht_now();
            mnist_load(&m, dir, 55000, 5000, verify);
            const double dt = ht_now() - t0;
            mnist_free(&m);
            if (dt < best) best = dt;
        }
        printf("  load%s: %.3f s  (%.1f MB/s stored, %.1f MB/s decoded)\n",
               verify ? " + verify (SHA-256)" : "            ", best, stored / 1e6 / best,
               decoded / 1e6 / best);
    }
    return 0;
}
