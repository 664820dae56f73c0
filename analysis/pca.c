// hyperanalyze pca: principal components of the gauge-fixed weights of a sample set: one filter,
// one layer or the whole network (the paper's Figs. 6, 9-15). The data vectors are in the flat
// layout of arch.h: a filter is its fan_in weights ((kh, kw, cin) order for conv) then its bias; a
// layer is its filters one after the other; the whole network is the layers in order.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "metrics.h"
#include "sample.h"

#define CMD "pca"
#define BLOCK 256

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze pca SAMPLES.h5 --what filter:L:I | layer:L | all [options]\n"
        "\n"
        "PCA of the generated weights over the first N networks of a sample set:\n"
        "  filter:L:I   filter I (0-based, the last axis of /weights/layerL/kernel) of layer L\n"
        "               (1-based, as in the dataset names): its fan_in weights in (kh, kw, cin)\n"
        "               order, then its bias\n"
        "  layer:L      every filter of layer L, filter after filter (filters x (fan_in + 1))\n"
        "  all          the whole network (the flat vector of every layer in order)\n"
        "Writes FILE.h5: /components (k, D), /explained_variance (k), /explained_variance_ratio (k),\n"
        "/projections (N, k), /mean (D), /accuracy (N, when the set stores metrics); prints the\n"
        "spectrum as CSV (component, variance, ratio, cumulative).\n"
        "Plot: python3 analysis/plot_pca.py FILE.h5 -o pca.png   (scatter of component i against j)\n"
        "\n"
        "options:\n"
        "  --n N              the first N networks (default: 3000, or the whole set if smaller);\n"
        "                     an N larger than the set is an error\n"
        "  --components K     principal components (default 6)\n"
        "  --standardize      divide every coordinate by its standard deviation first (PCA of the\n"
        "                     correlation matrix; /scale holds the divisors). After gauge fixing the\n"
        "                     last layer carries the overall scale, so without it `all` is dominated\n"
        "                     by the last layer\n"
        "  --out FILE.h5      result file (default SAMPLES_pca.h5 beside the set)\n"
        "  --job JOB.json     fail unless the set holds networks of this job's target architecture\n"
        "  --threads N        OpenMP threads\n");
}

// Parses --what: *layer = -1 for all; *filter = -1 for a whole layer.
static int parse_what(const char *w, const SampleSet *s, int *layer, int *filter) {
    *layer = -1;
    *filter = -1;
    if (!strcmp(w, "all")) return 0;
    long L, I;
    char *end;
    if (!strncmp(w, "layer:", 6)) {
        L = strtol(w + 6, &end, 10);
        if (end == w + 6 || *end) return ha_usage_error(CMD, "--what %s: expected layer:L", w);
    } else if (!strncmp(w, "filter:", 7)) {
        L = strtol(w + 7, &end, 10);
        if (end == w + 7 || *end != ':') return ha_usage_error(CMD, "--what %s: expected filter:L:I", w);
        const char *p = end + 1;
        I = strtol(p, &end, 10);
        if (end == p || *end) return ha_usage_error(CMD, "--what %s: expected filter:L:I", w);
        if (L >= 1 && L <= s->arch.n_layers && (I < 0 || I >= s->arch.layers[L - 1].filters))
            return ha_usage_error(CMD, "--what %s: layer %ld has filters 0..%d", w, L,
                                  s->arch.layers[L - 1].filters - 1);
        *filter = (int)I;
    } else return ha_usage_error(CMD, "--what: expected filter:L:I, layer:L or all, got '%s'", w);
    if (L < 1 || L > s->arch.n_layers)
        return ha_usage_error(CMD, "--what %s: the target network has layers 1..%d", w, s->arch.n_layers);
    *layer = (int)L - 1;
    return 0;
}

int cmd_pca(int argc, char **argv) {
    const char *in = NULL, *what = NULL, *out = NULL, *job = NULL;
    long n_req = 0, k = 6, threads = 0;
    int rc, standardize = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--standardize")) standardize = 1;
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--what")) { what = v; i++; }
        else if (!strcmp(a, "--out")) { out = v; i++; }
        else if (!strcmp(a, "--job")) { job = v; i++; }
        else if (!strcmp(a, "--n")) { if ((rc = an_long(CMD, a, v, 2, 1L << 20, &n_req))) return rc; i++; }
        else if (!strcmp(a, "--components")) { if ((rc = an_long(CMD, a, v, 1, 1000, &k))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", in, a);
        else in = a;
    }
    if (!in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze pca SAMPLES.h5 --what ...");
    if (!what) return ha_usage_error(CMD, "--what filter:L:I | layer:L | all is required");
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, NULL, threads, in, out_buf, sizeof(out_buf), &out))) return rc;

    TargetArch expect;
    SampleSet s;
    sampleset_open(&s, in, an_expected_arch(job, &expect));
    int layer, filter;
    if ((rc = parse_what(what, &s, &layer, &filter))) { sampleset_close(&s); return rc; }
    long long n = n_req ? n_req : (s.n < 3000 ? s.n : 3000);
    sampleset_require(&s, n, "--n");
    if (n < 2) HT_FATAL("sample set '%s' holds %lld network(s); PCA needs at least 2", in, s.n);
    const TargetLayer *L = layer >= 0 ? &s.arch.layers[layer] : NULL;
    const size_t D = !L ? s.arch.n_weights : filter >= 0 ? (size_t)L->fan_in + 1 : L->size;
    const long long kmax = n < (long long)D ? n : (long long)D;
    if (k > kmax) return ha_usage_error(CMD, "--components %ld: at most min(N, D) = %lld here", k, kmax);
    // The data (n, D) floats and the (m, m) covariance or Gram matrix, m = min(n, D), in doubles.
    const size_t nD = XMUL(n, D, "pca: --n %lld networks x %zu weights", n, D);
    const size_t m = (size_t)n < D ? (size_t)n : D;
    HT_CHECK_MEMORY(XADD(XMUL(nD, sizeof(float), "pca: data"), XMUL(XMUL(m, m, "pca: matrix"), sizeof(double),
                    "pca: matrix"), "pca: memory"), "pca of %lld networks x %zu weights (--n, --what)", n, D);

    float *X = XALLOC_FLOATS(nD);
    float *buf = XALLOC_FLOATS((size_t)BLOCK * (L ? L->size : 1));
    const double t0 = ht_now();
    for (long long b0 = 0; b0 < n; b0 += BLOCK) {
        const int nb = n - b0 < BLOCK ? (int)(n - b0) : BLOCK;
        if (!L) { sampleset_read(&s, b0, nb, X + (size_t)b0 * D); continue; }
        sampleset_read_layer(&s, layer, b0, nb, buf);
        for (int b = 0; b < nb; b++) {
            const float *src = buf + (size_t)b * L->size + (filter >= 0 ? (size_t)filter * (L->fan_in + 1) : 0);
            memcpy(X + (size_t)(b0 + b) * D, src, D * sizeof(float));
        }
    }
    free(buf);
    double *scale = NULL;
    if (standardize) {   // divide each coordinate by its standard deviation (1 where it is constant)
        scale = XCALLOC(D, sizeof(double));
        double *mu = XCALLOC(D, sizeof(double));
        for (long long i = 0; i < n; i++)
            for (size_t j = 0; j < D; j++) mu[j] += X[(size_t)i * D + j];
        for (size_t j = 0; j < D; j++) mu[j] /= n;
        for (long long i = 0; i < n; i++)
            for (size_t j = 0; j < D; j++) {
                const double x = X[(size_t)i * D + j] - mu[j];
                scale[j] += x * x;
            }
        for (size_t j = 0; j < D; j++) {
            const double sd = sqrt(scale[j] / (n - 1));
            scale[j] = sd > 0 ? sd : 1.0;
        }
        for (long long i = 0; i < n; i++)
            for (size_t j = 0; j < D; j++) X[(size_t)i * D + j] = (float)(X[(size_t)i * D + j] / scale[j]);
        free(mu);
    }
    const double t1 = ht_now();
    Pca p;
    if (pca_fit(X, (int)n, (int)D, (int)k, &p) != 0) HT_FATAL("pca: bad sizes (n %lld, D %zu, k %ld)", n, D, k);
    const double t2 = ht_now();
    if (p.iterations < 0)
        ha_warn(CMD, "the eigen-solver stopped after %d iterations with relative residual %.2e (the "
                "leading components are nearly degenerate; their directions are uncertain)", -p.iterations,
                p.residual);

    ResultFile r;
    result_create(&r, out);
    size_t dims[2] = { (size_t)k, D };
    result_f64(&r, "/components", 2, dims, p.components);
    size_t dk[1] = { (size_t)k }, dd[1] = { D };
    result_f64(&r, "/explained_variance", 1, dk, p.variance);
    result_f64(&r, "/explained_variance_ratio", 1, dk, p.ratio);
    result_f64(&r, "/mean", 1, dd, p.mean);
    if (scale) result_f64(&r, "/scale", 1, dd, scale);
    size_t dp[2] = { (size_t)n, (size_t)k };
    result_f64(&r, "/projections", 2, dp, p.proj);
    double *acc = XMALLOC((size_t)n * sizeof(double));
    if (sampleset_read_metric(&s, "accuracy", 0, (int)n, acc)) {
        size_t dn[1] = { (size_t)n };
        result_f64(&r, "/accuracy", 1, dn, acc);
    }
    free(acc);
    result_attr_str(&r, "/", "command", "hyperanalyze pca");
    result_attr_str(&r, "/", "samples", in);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_str(&r, "/", "what", what);
    result_attr_i64(&r, "/", "layer", layer >= 0 ? layer + 1 : 0);
    result_attr_i64(&r, "/", "filter", filter);
    result_attr_i64(&r, "/", "networks", n);
    result_attr_i64(&r, "/", "dim", (int64_t)D);
    result_attr_f64(&r, "/", "total_variance", p.total_variance);
    result_attr_str(&r, "/", "method", p.gram ? "gram" : "covariance");
    result_attr_i64(&r, "/", "standardized", standardize);
    result_attr_i64(&r, "/", "iterations", p.iterations);
    result_attr_f64(&r, "/", "residual", p.residual);
    result_close(&r);

    printf("# hyperanalyze pca: %s (step %lld), %s: %lld networks x %zu dimensions, total variance %.6g\n",
           in, (long long)s.step, what, n, D, p.total_variance);
    printf("# read %.2fs, PCA %.2fs through the %s matrix (%d iterations, residual %.1e)\n", t1 - t0, t2 - t1,
           p.gram ? "(N, N) Gram" : "(D, D) covariance", p.iterations < 0 ? -p.iterations : p.iterations,
           p.residual);
    printf("# results: %s\n", out);
    printf("component,variance,ratio,cumulative\n");
    double cum = 0.0;
    for (int i = 0; i < k; i++) {
        cum += p.ratio[i];
        printf("%d,%.8g,%.6f,%.6f\n", i + 1, p.variance[i], p.ratio[i], cum);
    }
    pca_free(&p);
    free(X);
    free(scale);
    sampleset_close(&s);
    return 0;
}
