// hyperanalyze ood: out-of-distribution detection by an ensemble of networks of a sample set.
// In-distribution: the first N test images of the set's data set (its job's data.dataset); outliers:
// the first N test images of the other one (t10k-images-idx3-ubyte[.gz] in --outliers DIR; default
// Fashion-MNIST from Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist, and for a set
// trained on Fashion-MNIST, MNIST's directory). For the ensembles of the first s networks, s = 1, 2, 4, ...,
// M (and M), three scores of each image, larger = "more likely an outlier":
//   entropy             H(p̄), p̄ = the members' mean probability (predictive entropy)
//   mutual_information  H(p̄) - mean_m H(p_m) (disagreement between members; 0 for one network)
//   max_prob            1 - max_c p̄_c
// and the AUROC of each as a detector of outliers (metric_auroc: ties count one half), plus the
// in-distribution accuracy of the mean probability.
// This file is the command (options, the images, running the networks, the result file, stdout);
// the scores and AUROCs are analysis/ood_core.c (tested in tests/test_analysis.c).
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds_samples.h"
#include "common.h"
#include "data.h"
#include "ood_core.h"
#include "resultio.h"
#include "sample.h"
#include "target.h"

#define CMD "ood"
#define BLOCK 16
#define CHUNK 50
#define DEFAULT_OUTLIERS "/usr/share/datasets/fashion-mnist"

static const char *const SCORE_MEANING[OOD_N_SCORES] = {
    "predictive entropy H(pbar) = -sum_c pbar_c log pbar_c of the full ensemble's mean probability (nats); larger = more likely an outlier",
    "mutual information H(pbar) - (1/M) sum_m H(p_m) of the full ensemble (nats; members' disagreement); larger = more likely an outlier",
    "1 - max_c pbar_c of the full ensemble's mean probability; larger = more likely an outlier"};

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze ood SAMPLES.h5 [--outliers DIR] [options]\n"
        "\n"
        "Out-of-distribution detection: test images of the set's data set (in-distribution; MNIST or\n"
        "Fashion-MNIST, from its job) against the other one's test images (outliers), scored by\n"
        "ensembles of the first s networks of the set, s = 1, 2, 4, ..., M: predictive entropy\n"
        "H(mean p), mutual information H(mean p) - mean H(p_m), and 1 - max mean p;\n"
        "AUROC of each as an outlier detector. Writes FILE.h5 (/sizes, /auroc/<score> (S),\n"
        "/in_accuracy (S), /scores/<score> (2N) of the full ensemble, /is_outlier (2N)) and prints the\n"
        "AUROC vs ensemble size as CSV.\n"
        "Plot: python3 analysis/plot_ood.py FILE.h5 [BASELINE.h5 ...] -o ood.png\n"
        "\n"
        "options:\n"
        "  --outliers DIR     directory holding t10k-images-idx3-ubyte(.gz) of the outliers (default:\n"
        "                     Fashion-MNIST in " DEFAULT_OUTLIERS " (Debian package\n"
        "                     dataset-fashion-mnist); for a set trained on Fashion-MNIST, MNIST's directory)\n"
        "  --members M        ensemble size (default 100)\n"
        "  --images N         the first N images of each test set (default 1000)\n"
        "  --out FILE.h5      result file (default SAMPLES_ood.h5 beside the set)\n"
        "  --data DIR         MNIST directory\n"
        "  --job JOB.json     fail unless the set holds networks of this job's target architecture\n"
        "  --threads N        OpenMP threads\n");
}

// Finds DIR/NAME.gz or DIR/NAME; returns 0 and the path, or 1 after an error naming DIR.
static int find_outliers(const char *dir, char *path, size_t n) {
    struct stat st;
    const char *hint = "Fashion-MNIST: apt-get install dataset-fashion-mnist puts it in " DEFAULT_OUTLIERS
                       "; MNIST: scripts/fetch-mnist.sh";
    if (stat(dir, &st) != 0)
        return ha_error(CMD, "outlier directory '%s': %s (%s)", dir, strerror(errno), hint);
    if (!S_ISDIR(st.st_mode)) return ha_error(CMD, "outlier directory '%s' is not a directory (%s)", dir, hint);
    XSNPRINTF(path, n, "%s/t10k-images-idx3-ubyte.gz", dir);
    if (stat(path, &st) == 0) return 0;
    XSNPRINTF(path, n, "%s/t10k-images-idx3-ubyte", dir);
    if (stat(path, &st) == 0) return 0;
    return ha_error(CMD, "outlier directory '%s' holds neither t10k-images-idx3-ubyte.gz nor "
                    "t10k-images-idx3-ubyte (%s)", dir, hint);
}

// The images scored: the n_in = d->n in-distribution images, then as many of the outlier file's
// images (fewer if it holds fewer), scaled to [0, 1]: (n_in + *n_out, isz). NULL after an error.
static float *load_images(const Dataset *d, const char *opath, int isz, int *n_out) {
    int dims[3], nd;
    uint8_t *raw = idx_read(opath, 2051, dims, &nd, NULL);
    if (nd != 3 || dims[1] * dims[2] != isz) {
        ha_error(CMD, "'%s' holds images of %dx%d pixels, but the target network reads %d inputs", opath,
                 nd == 3 ? dims[1] : 0, nd == 3 ? dims[2] : 0, isz);
        free(raw);
        return NULL;
    }
    const int n_in = d->n;
    *n_out = dims[0] < n_in ? dims[0] : n_in;
    float *x = XALLOC_FLOATS((size_t)(n_in + *n_out) * isz);
    memcpy(x, d->images, (size_t)n_in * isz * sizeof(float));
    for (size_t j = 0; j < (size_t)*n_out * isz; j++) x[(size_t)n_in * isz + j] = raw[j] / 255.0f;
    free(raw);
    return x;
}

// The data set whose test images are the outliers by default: the other one of the two.
static int outlier_set(const SampleSet *s) {
    return s->job.dataset == DATA_FASHION_MNIST ? DATA_MNIST : DATA_FASHION_MNIST;
}

static void write_result(const char *out, int argc, char **argv, const char *in, const char *sha,
                         const SampleSet *s, const char *opath, const OodCompute *o) {
    const int S = o->S, n = o->n;
    const char *in_title = data_set_title(s->job.dataset), *out_title = data_set_title(outlier_set(s));
    ResultFile r;
    result_create(&r, out);
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "samples", in, sha);
    size_t dS[1] = { (size_t)S }, dn[1] = { (size_t)n };
    resultio_i64(&r, "/sizes", 1, dS, o->sizes, "(size)",
                 "ensemble sizes s: the ensemble of size s is the first s networks of the set");
    char name[64], meaning[400];
    for (int q = 0; q < OOD_N_SCORES; q++) {
        XSNPRINTF(name, sizeof(name), "/auroc/%s", OOD_SCORE_NAMES[q]);
        XSNPRINTF(meaning, sizeof(meaning), "AUROC of the score %s of the ensemble of size s as a detector of "
                  "outliers (0.5 = chance; ties count one half)", OOD_SCORE_NAMES[q]);
        resultio_f64(&r, name, 1, dS, o->auroc + (size_t)q * S, "(size)", meaning);
        XSNPRINTF(name, sizeof(name), "/scores/%s", OOD_SCORE_NAMES[q]);
        resultio_f64(&r, name, 1, dn, o->scores + (size_t)q * n, "(image)", SCORE_MEANING[q]);
    }
    XSNPRINTF(meaning, sizeof(meaning), "accuracy of argmax pbar of the ensemble of size s on the in-distribution "
              "(%s test) images", in_title);
    resultio_f64(&r, "/in_accuracy", 1, dS, o->in_acc, "(size)", meaning);
    int64_t *is_out64 = XMALLOC((size_t)n * sizeof(int64_t));
    for (int i = 0; i < n; i++) is_out64[i] = o->is_out[i];
    XSNPRINTF(meaning, sizeof(meaning), "1: an outlier image (%s test image i - in_images), 0: %s test image i",
              out_title, in_title);
    resultio_i64(&r, "/is_outlier", 1, dn, is_out64, "(image)", meaning);
    free(is_out64);
    result_attr_str(&r, "/", "checkpoint", s->checkpoint);
    result_attr_i64(&r, "/", "step", s->step);
    XSNPRINTF(meaning, sizeof(meaning), "%s test", in_title);
    result_attr_str(&r, "/", "in_distribution", meaning);
    result_attr_str(&r, "/", "outliers", opath);
    result_attr_i64(&r, "/", "in_images", o->n_in);
    result_attr_i64(&r, "/", "outlier_images", n - o->n_in);
    result_attr_i64(&r, "/", "members", o->M);
    result_close(&r);
}

int cmd_ood(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *data = NULL, *job = NULL, *odir = NULL;
    long M = 100, images = 1000, threads = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--outliers")) { odir = v; i++; }
        else if (!strcmp(a, "--out")) { out = v; i++; }
        else if (!strcmp(a, "--data")) { data = v; i++; }
        else if (!strcmp(a, "--job")) { job = v; i++; }
        else if (!strcmp(a, "--members")) { if ((rc = an_long(CMD, a, v, 1, 1L << 24, &M))) return rc; i++; }
        else if (!strcmp(a, "--images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 24, &images))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", in, a);
        else in = a;
    }
    if (!in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze ood SAMPLES.h5");
    char out_buf[HT_PATH_MAX + 32], opath[HT_PATH_MAX + 64];
    if ((rc = an_finish_options(CMD, NULL, threads, in, out_buf, sizeof(out_buf), &out))) return rc;
    if (odir && find_outliers(odir, opath, sizeof(opath))) return 1;

    TargetArch expect;
    SampleSet s;
    sampleset_open(&s, in, an_expected_arch(job, &expect));
    // default outliers: the other data set (a set trained on Fashion-MNIST is tested against MNIST)
    if (!odir && find_outliers(outlier_set(&s) == DATA_MNIST ? data_resolve_dir_for(DATA_MNIST, "") : DEFAULT_OUTLIERS,
                               opath, sizeof(opath))) {
        sampleset_close(&s);
        return 1;
    }
    char what[64];
    XSNPRINTF(what, sizeof(what), "--members %ld", M);
    sampleset_require(&s, M, what);
    const TargetArch *a = &s.arch;
    const int C = a->classes, isz = a->in_size;

    // in-distribution: the set's data set's test images; outliers: the other's, same count
    Mnist mn;
    Dataset d;
    sample_load_split(&s.job, data, "test", (int)images, &mn, &d);
    int n_out;
    float *x = load_images(&d, opath, isz, &n_out);
    if (!x) return 1;
    const int n_in = d.n, n = n_in + n_out;
    OodCompute o;
    ood_init(&o, M, n, n_in, C, d.labels);
    const int S = o.S;
    const size_t W = a->n_weights, nc = (size_t)n * C;
    float *theta = XALLOC_FLOATS((size_t)BLOCK * W), *probs = XALLOC_FLOATS((size_t)BLOCK * CHUNK * C);
    float *bprobs = XALLOC_FLOATS((size_t)BLOCK * nc);
    TargetNet tn;
    target_init(&tn, a, CHUNK, 0);
    const double t0 = ht_now();
    double t_last = t0;
    for (long b0 = 0; b0 < M; b0 += BLOCK) {
        const int nb = M - b0 < BLOCK ? (int)(M - b0) : BLOCK;
        sampleset_read(&s, b0, nb, theta);
        for (int i0 = 0; i0 < n; i0 += CHUNK) {   // every member of the block on every image
            const int c = n - i0 < CHUNK ? n - i0 : CHUNK;
            target_forward(&tn, nb, theta, c, x + (size_t)i0 * isz, 0, probs);
            for (int k = 0; k < nb; k++)
                memcpy(bprobs + ((size_t)k * n + i0) * C, probs + (size_t)k * c * C, (size_t)c * C * sizeof(float));
        }
        for (int k = 0; k < nb; k++) ood_add(&o, bprobs + (size_t)k * nc);   // members in order
        if (ht_now() - t_last > 10.0) {
            fprintf(stderr, "ood: %ld/%ld networks\n", b0 + nb, M);
            t_last = ht_now();
        }
    }
    const double secs = ht_now() - t0;

    char sha[65];
    resultio_file_sha256(in, sha);
    write_result(out, argc, argv, in, sha, &s, opath, &o);

    printf("# hyperanalyze ood: %s (step %lld), ensembles of up to %ld networks; %d %s test images vs %d "
           "outliers (%s), %.1fs\n", in, (long long)s.step, M, n_in, data_set_title(s.job.dataset), n_out, opath, secs);
    printf("# AUROC of each score as an outlier detector (0.5 = chance); in_accuracy: mean-probability "
           "accuracy on the %s images\n", data_set_title(s.job.dataset));
    printf("# results: %s\n", out);
    printf("size,auroc_entropy,auroc_mutual_information,auroc_max_prob,in_accuracy\n");
    for (int k = 0; k < S; k++)
        printf("%lld,%.6f,%.6f,%.6f,%.6f\n", (long long)o.sizes[k], o.auroc[k], o.auroc[(size_t)S + k],
               o.auroc[(size_t)2 * S + k], o.in_acc[k]);
    sampleset_close(&s);
    target_free(&tn);
    mnist_free(&mn);
    ood_free(&o);
    free(x); free(theta); free(probs); free(bprobs);
    return 0;
}
