// hyperanalyze accuracy: the accuracy of every network of a sample set on the validation or test
// split, and its histogram (the paper's Fig. 2). Reuses the set's stored /metrics when they are for
// the same split and number of images, else runs every network (blocks of 32, OpenMP inside).
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "metrics.h"
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

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
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
        TargetNet tn;
        target_init(&tn, &s.arch, 50, 0);
        float *theta = XALLOC_FLOATS((size_t)BLOCK * s.arch.n_weights);
        double t_last = ht_now();
        for (long long b0 = 0; b0 < n; b0 += BLOCK) {
            const int nb = n - b0 < BLOCK ? (int)(n - b0) : BLOCK;
            sampleset_read(&s, b0, nb, theta);
            sample_eval(&tn, nb, theta, &d, NULL, acc + b0, loss + b0);
            if (ht_now() - t_last > 10.0) {
                fprintf(stderr, "accuracy: %lld/%lld networks\n", b0 + nb, n);
                t_last = ht_now();
            }
        }
        free(theta);
        target_free(&tn);
        mnist_free(&m);
    }
    const double secs = ht_now() - t0;

    double mean, std;
    metric_mean_std(acc, (int)n, &mean, &std);
    double *sorted = XMALLOC((size_t)n * sizeof(double));
    memcpy(sorted, acc, (size_t)n * sizeof(double));
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    const double mn = sorted[0], mx = sorted[n - 1];
    const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    const double p05 = sorted[(long long)floor(0.05 * (n - 1))], p95 = sorted[(long long)ceil(0.95 * (n - 1))];
    double loss_mean, loss_std;
    metric_mean_std(loss, (int)n, &loss_mean, &loss_std);
    double lo = 0.0, hi = 1.0;
    if (!full) {
        lo = floor(mn * 200.0) / 200.0;
        hi = ceil(mx * 200.0) / 200.0;
        if (hi <= lo) hi = lo + 0.005;
    }
    int64_t *counts = XMALLOC((size_t)bins * sizeof(int64_t));
    double *edges = XMALLOC((size_t)(bins + 1) * sizeof(double));
    metric_histogram(acc, (int)n, lo, hi, (int)bins, counts, edges);

    ResultFile r;
    result_create(&r, out);
    size_t dims[1] = { (size_t)n };
    result_f64(&r, "/accuracy", 1, dims, acc);
    result_f64(&r, "/loss", 1, dims, loss);
    dims[0] = (size_t)bins;
    result_i64(&r, "/histogram/counts", 1, dims, counts);
    dims[0] = (size_t)bins + 1;
    result_f64(&r, "/histogram/edges", 1, dims, edges);
    result_attr_str(&r, "/", "command", "hyperanalyze accuracy");
    result_attr_str(&r, "/", "samples", in);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_str(&r, "/", "split", split);
    result_attr_i64(&r, "/", "images", n_img);
    result_attr_i64(&r, "/", "networks", n);
    result_attr_i64(&r, "/", "from_stored_metrics", stored);
    result_attr_f64(&r, "/", "mean", mean);
    result_attr_f64(&r, "/", "std", std);
    result_attr_f64(&r, "/", "min", mn);
    result_attr_f64(&r, "/", "max", mx);
    result_attr_f64(&r, "/", "median", median);
    result_attr_f64(&r, "/", "loss_mean", loss_mean);
    result_close(&r);

    printf("# hyperanalyze accuracy: %s (step %lld), %lld networks on %d %s images%s, %.1fs\n", in,
           (long long)s.step, n, n_img, split, stored ? " (stored metrics)" : "", secs);
    printf("# accuracy mean %.6f std %.6f min %.6f p05 %.6f median %.6f p95 %.6f max %.6f\n", mean, std, mn,
           p05, median, p95, mx);
    printf("# cross-entropy mean %.6f std %.6f\n", loss_mean, loss_std);
    printf("# results: %s\n", out);
    printf("bin_lo,bin_hi,count\n");
    for (long b = 0; b < bins; b++) printf("%.6f,%.6f,%lld\n", edges[b], edges[b + 1], (long long)counts[b]);
    sampleset_close(&s);
    free(acc); free(loss); free(sorted); free(counts); free(edges);
    return 0;
}
