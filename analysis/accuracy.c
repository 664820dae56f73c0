// hyperanalyze accuracy: the accuracy of every network of a sample set on the validation or test
// split, and its histogram (the paper's Fig. 2). Reuses the set's stored /metrics when they are for
// the same split and number of images, else runs every network (blocks of 32, OpenMP inside).
// This file is the command (options, reading, the result file, stdout); the statistics and the
// histogram are acc_summarize (analysis/accuracy_core.c, tested in tests/test_analysis.c).
#include <stdlib.h>
#include <string.h>

#include "accuracy_core.h"
#include "cmds_samples.h"
#include "common.h"
#include "resultio.h"
#include "sample.h"
#include "target.h"

#define CMD "accuracy"
#define BLOCK 32

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze accuracy SAMPLES.h5 [options]\n"
        "\n"
        "Accuracy and mean cross-entropy of every network of a sample set (made by hypertrain\n"
        "sample) on a split of MNIST, summary statistics and a histogram (the paper's Fig. 2).\n"
        "Writes FILE.h5 (/accuracy, /loss, /histogram/counts, /histogram/edges; attributes mean,\n"
        "std, min, max, median, ...), prints a summary and the histogram as CSV (bin_lo,bin_hi,count)\n"
        "on stdout. Plot: python3 analysis/plot_accuracy.py FILE.h5 -o hist.png\n"
        "\n"
        "options:\n"
        "  --split val|test   images to evaluate on (default val: the job's validation split)\n"
        "  --images N         the first N images of the split (default all)\n"
        "  --n N              the first N networks of the set (default all)\n"
        "  --bins B           histogram bins (default 40) over [min, max] rounded out to 0.005\n"
        "  --full             histogram over [0, 1] instead\n"
        "  --recompute        evaluate even if the set stores /metrics for this split\n"
        "  --out FILE.h5      result file (default SAMPLES_accuracy.h5 beside the set)\n"
        "  --data DIR         MNIST directory (default: the job's data.dir, $HYPERTRAIN_DATA, ...)\n"
        "  --job JOB.json     fail unless the set holds networks of this job's target architecture\n"
        "  --threads N        OpenMP threads\n");
}

// acc, loss (n) of networks [0, n) of the set on d: BLOCK networks at a time, progress on stderr.
static void eval_networks(const SampleSet *s, const Dataset *d, long long n, double *acc, double *loss) {
    TargetNet tn;
    target_init(&tn, &s->arch, 50, 0);
    float *theta = XALLOC_FLOATS((size_t)BLOCK * s->arch.n_weights);
    double t_last = ht_now();
    for (long long b0 = 0; b0 < n; b0 += BLOCK) {
        const int nb = n - b0 < BLOCK ? (int)(n - b0) : BLOCK;
        sampleset_read(s, b0, nb, theta);
        sample_eval(&tn, nb, theta, d, NULL, acc + b0, loss + b0);
        if (ht_now() - t_last > 10.0) {
            fprintf(stderr, "accuracy: %lld/%lld networks\n", b0 + nb, n);
            t_last = ht_now();
        }
    }
    free(theta);
    target_free(&tn);
}

static void write_result(const char *out, int argc, char **argv, const char *in, const char *sha,
                         const SampleSet *s, const char *split, int n_img, long long n, int stored,
                         const double *acc, const double *loss, long bins, const int64_t *counts,
                         const double *edges, const AccSummary *st) {
    ResultFile r;
    result_create(&r, out);
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "samples", in, sha);
    size_t dims[1] = { (size_t)n };
    resultio_f64(&r, "/accuracy", 1, dims, acc, "(network)",
                 "fraction of the split's images classified right by network i of the set (argmax, ties to the lowest class)");
    resultio_f64(&r, "/loss", 1, dims, loss, "(network)",
                 "mean cross-entropy -log(p_label + 1e-30) of network i over the same images (nats)");
    dims[0] = (size_t)bins;
    resultio_i64(&r, "/histogram/counts", 1, dims, counts, "(bin)",
                 "networks whose accuracy falls in [edges[b], edges[b+1]) (the last bin includes its upper edge)");
    dims[0] = (size_t)bins + 1;
    resultio_f64(&r, "/histogram/edges", 1, dims, edges, "(bin edge)",
                 "accuracy at the bin edges (fraction): equal bins over [min, max] rounded out to 0.005, or [0, 1] with --full");
    result_attr_str(&r, "/", "checkpoint", s->checkpoint);
    result_attr_i64(&r, "/", "step", s->step);
    result_attr_str(&r, "/", "split", split);
    result_attr_i64(&r, "/", "images", n_img);
    result_attr_i64(&r, "/", "networks", n);
    result_attr_i64(&r, "/", "from_stored_metrics", stored);
    result_attr_f64(&r, "/", "mean", st->mean);
    result_attr_f64(&r, "/", "std", st->std);
    result_attr_f64(&r, "/", "min", st->min);
    result_attr_f64(&r, "/", "max", st->max);
    result_attr_f64(&r, "/", "median", st->median);
    result_attr_f64(&r, "/", "loss_mean", st->loss_mean);
    result_close(&r);
}

int cmd_accuracy(int argc, char **argv) {
    const char *in = NULL, *split = "val", *out = NULL, *data = NULL, *job = NULL;
    long images = 0, bins = 40, n_req = 0, threads = 0;
    int recompute = 0, full = 0, rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--recompute")) recompute = 1;
        else if (!strcmp(a, "--full")) full = 1;
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--split")) { split = v; i++; }
        else if (!strcmp(a, "--out")) { out = v; i++; }
        else if (!strcmp(a, "--data")) { data = v; i++; }
        else if (!strcmp(a, "--job")) { job = v; i++; }
        else if (!strcmp(a, "--images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 30, &images))) return rc; i++; }
        else if (!strcmp(a, "--n")) { if ((rc = an_long(CMD, a, v, 1, 1L << 40, &n_req))) return rc; i++; }
        else if (!strcmp(a, "--bins")) { if ((rc = an_long(CMD, a, v, 1, 100000, &bins))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", in, a);
        else in = a;
    }
    if (!in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze accuracy SAMPLES.h5");
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, split, threads, in, out_buf, sizeof(out_buf), &out))) return rc;

    TargetArch expect;
    SampleSet s;
    sampleset_open(&s, in, an_expected_arch(job, &expect));
    const long long n = n_req ? n_req : s.n;
    sampleset_require(&s, n, "--n");
    double *acc = XMALLOC((size_t)n * sizeof(double)), *loss = XMALLOC((size_t)n * sizeof(double));
    int stored = 0, n_img = 0;
    if (!recompute && !strcmp(s.metrics_split, split) && (images == 0 || images == s.metrics_images))
        stored = sampleset_read_metric(&s, "accuracy", 0, (int)n, acc) &&
                 sampleset_read_metric(&s, "loss", 0, (int)n, loss);
    const double t0 = ht_now();
    if (stored) {
        n_img = s.metrics_images;
        fprintf(stderr, "accuracy: using the stored /metrics of '%s' (%s split, %d images; --recompute "
                "evaluates again)\n", in, split, n_img);
    } else {
        Mnist m;
        Dataset d;
        sample_load_split(&s.job, data, split, (int)images, &m, &d);
        n_img = d.n;
        eval_networks(&s, &d, n, acc, loss);
        mnist_free(&m);
    }
    const double secs = ht_now() - t0;

    AccSummary st;
    int64_t *counts = XMALLOC((size_t)bins * sizeof(int64_t));
    double *edges = XMALLOC((size_t)(bins + 1) * sizeof(double));
    acc_summarize(acc, loss, n, (int)bins, full, &st, counts, edges);
    char sha[65];
    resultio_file_sha256(in, sha);
    write_result(out, argc, argv, in, sha, &s, split, n_img, n, stored, acc, loss, bins, counts, edges, &st);

    printf("# hyperanalyze accuracy: %s (step %lld), %lld networks on %d %s images%s, %.1fs\n", in,
           (long long)s.step, n, n_img, split, stored ? " (stored metrics)" : "", secs);
    printf("# accuracy mean %.6f std %.6f min %.6f p05 %.6f median %.6f p95 %.6f max %.6f\n", st.mean, st.std,
           st.min, st.p05, st.median, st.p95, st.max);
    printf("# cross-entropy mean %.6f std %.6f\n", st.loss_mean, st.loss_std);
    printf("# results: %s\n", out);
    printf("bin_lo,bin_hi,count\n");
    for (long b = 0; b < bins; b++) printf("%.6f,%.6f,%lld\n", edges[b], edges[b + 1], (long long)counts[b]);
    sampleset_close(&s);
    free(acc); free(loss); free(counts); free(edges);
    return 0;
}
