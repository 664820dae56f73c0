// hyperanalyze pca: principal components of the gauge-fixed weights of a sample set: one filter,
// one layer or the whole network (the paper's Figs. 6, 9-15). The data vectors are in the flat
// layout of arch.h: a filter is its fan_in weights ((kh, kw, cin) order for conv) then its bias; a
// layer is its filters one after the other; the whole network is the layers in order.
// With the null comparisons (docs/analysis.md): a Gaussian with the set's mean and covariance and,
// with --baseline, a deep ensemble, both on the set's axes; the computations are in pca_core.c.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "filters_core.h"
#include "metrics.h"
#include "pca_core.h"
#include "resultio.h"
#include "sample.h"

#define CMD "pca"
#define GAUGE_CHECK_NETS 64   // networks of each set whose gauge is checked before a comparison

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
        "/projections (N, k), /mean (D), /accuracy (N, when the set stores metrics), and the null\n"
        "comparisons on the SAME axes: /gaussian/projections (N, k), a Gaussian with the set's mean and\n"
        "covariance, and with --baseline /baseline/projections (Nb, k) = (x - mean) . components of a\n"
        "deep ensemble; per set the skewness and excess kurtosis along each axis. Prints the spectrum\n"
        "as CSV (component, variance, ratio, cumulative, and the moments of each set).\n"
        "Plot: python3 analysis/plot_pca.py FILE.h5 -o pca.png   (the sets side by side, same axes)\n"
        "\n"
        "options:\n"
        "  --n N              the first N networks (default: 3000, or the whole set if smaller);\n"
        "                     an N larger than the set is an error\n"
        "  --components K     principal components (default 6)\n"
        "  --standardize      divide every coordinate by its standard deviation first (PCA of the\n"
        "                     correlation matrix; /scale holds the divisors). After gauge fixing the\n"
        "                     last layer carries the overall scale, so without it `all` is dominated\n"
        "                     by the last layer\n"
        "  --baseline DEEP.h5 a deep ensemble (hyperanalyze baseline; gauge-fixed like the set, same\n"
        "                     target architecture): its first min(N, its size) networks projected on\n"
        "                     the set's components (with the set's mean and --standardize scale)\n"
        "  --seed S           seed of the Gaussian null's draws (default 1)\n"
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

// Moments of the projections of one set along the k axes (k <= 1000, the range of --components).
typedef struct {
    double mean[1000], var[1000], skew[1000], kurt[1000];
} AxisMoments;

// 1 when the set's first networks are gauge-fixed: gauge fixing makes every filter of layers
// 1..m-1 RMS 1 (up to its 1e-8 terms and float rounding) and the last layer's biases mean 0.
static int gauge_fixed(const SampleSet *s, double *rms_dev, double *bias_mean) {
    const int n = s->n < GAUGE_CHECK_NETS ? (int)s->n : GAUGE_CHECK_NETS;
    float *theta = XALLOC_FLOATS(XMUL(n, s->arch.n_weights, "pca: gauge check"));
    sampleset_read(s, 0, n, theta);
    gauge_deviation(&s->arch, theta, n, rms_dev, bias_mean);
    free(theta);
    return *rms_dev < 1e-3 && *bias_mean < 1e-4;
}

// Fatal unless the two sets agree on gauge fixing: PCA of weights in different gauges compares scales.
static void check_same_gauge(const SampleSet *s, const SampleSet *b) {
    double sd, sb, bd, bb;
    const int gs = gauge_fixed(s, &sd, &sb), gb = gauge_fixed(b, &bd, &bb);
    if (gs != gb)
        HT_FATAL("'%s' is %sgauge-fixed (median |filter RMS - 1| %.2g, largest |mean of the last biases| %.2g) but "
                 "'%s' is %s (%.2g, %.2g): their weights are in different gauges and PCA would compare scales, "
                 "not networks; write the deep ensemble with hyperanalyze baseline without --no-gauge", b->path,
                 gb ? "" : "not ", bd, bb, s->path, gs ? "gauge-fixed" : "not", sd, sb);
}

// Writes /<grp>/{mean,variance,skewness,excess_kurtosis} (k) of the moments m.
static void write_moments(ResultFile *r, const char *grp, const AxisMoments *m, int k, const char *what) {
    char name[64], meaning[256];
    size_t dk[1] = { (size_t)k };
    const char *nm[4] = { "mean", "variance", "skewness", "excess_kurtosis" };
    const double *v[4] = { m->mean, m->var, m->skew, m->kurt };
    const char *def[4] = { "mean of the projections", "variance (1/(n-1)) of the projections",
                           "skewness m3/m2^1.5 of the projections (0 for a Gaussian)",
                           "excess kurtosis m4/m2^2 - 3 of the projections (0 for a Gaussian)" };
    for (int i = 0; i < 4; i++) {
        XSNPRINTF(name, sizeof(name), "%s/%s", grp, nm[i]);
        XSNPRINTF(meaning, sizeof(meaning), "%s along each principal axis of the generated set, for %s", def[i], what);
        resultio_f64(r, name, 1, dk, v[i], "(component)", meaning);
    }
}

typedef struct {
    const char *in, *what, *out, *job, *base;
    long n_req, k, threads, seed;
    int standardize;
    int argc;
    char **argv;
} PcaCli;

// What a run computed: the generated set's PCA and the comparisons on its axes.
typedef struct {
    long long n, nb;           // generated networks, baseline networks (0 without --baseline)
    size_t D;
    int k, layer, filter;
    Pca p;
    double *scale;             // (D) --standardize divisors, NULL without
    double *gproj;             // (n, k) the Gaussian null
    double *bproj;             // (nb, k) the baseline on the axes, NULL without
    AxisMoments *mom;          // [0] generated, [1] baseline, [2] Gaussian
    double b_total, b_captured;
    double t_read, t_fit;
} PcaRun;

// Parses the options into c. Returns 0, or the usage-error status 2 (also for --help: -1 -> 0).
static int parse_cli(int argc, char **argv, PcaCli *c) {
    int rc;
    memset(c, 0, sizeof(*c));
    c->k = 6;
    c->seed = 1;
    c->argc = argc;
    c->argv = argv;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return -1; }
        else if (!strcmp(a, "--standardize")) c->standardize = 1;
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--what")) { c->what = v; i++; }
        else if (!strcmp(a, "--out")) { c->out = v; i++; }
        else if (!strcmp(a, "--job")) { c->job = v; i++; }
        else if (!strcmp(a, "--baseline")) { c->base = v; i++; }
        else if (!strcmp(a, "--n")) { if ((rc = an_long(CMD, a, v, 2, 1L << 20, &c->n_req))) return rc; i++; }
        else if (!strcmp(a, "--components")) { if ((rc = an_long(CMD, a, v, 1, 1000, &c->k))) return rc; i++; }
        else if (!strcmp(a, "--seed")) { if ((rc = an_long(CMD, a, v, 0, 0x7fffffffffffffffL, &c->seed))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &c->threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (c->in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", c->in, a);
        else c->in = a;
    }
    if (!c->in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze pca SAMPLES.h5 --what ...");
    if (!c->what) return ha_usage_error(CMD, "--what filter:L:I | layer:L | all is required");
    return 0;
}

// Reads the vectors, fits the PCA and projects the comparisons (X (n + nb, D): generated, then baseline).
static void compute(const PcaCli *c, const SampleSet *s, const SampleSet *b, PcaRun *o) {
    const double t0 = ht_now();
    float *X = XALLOC_FLOATS(XMUL(o->n + o->nb, o->D, "pca: data")), *XB = X + (size_t)o->n * o->D;
    pca_read_vectors(s, o->layer, o->filter, o->n, X);
    if (b) pca_read_vectors(b, o->layer, o->filter, o->nb, XB);
    if (c->standardize) {   // divide each coordinate by the generated set's standard deviation
        o->scale = XMALLOC_N(o->D, sizeof(double));
        pca_standardize(X, o->n, o->D, o->scale);
    }
    const double t1 = ht_now();
    if (pca_fit(X, (int)o->n, (int)o->D, o->k, &o->p) != 0)
        HT_FATAL("pca: bad sizes (n %lld, D %zu, k %d)", o->n, o->D, o->k);
    o->t_read = t1 - t0;
    o->t_fit = ht_now() - t1;
    if (o->p.iterations < 0)
        ha_warn(CMD, "the eigen-solver stopped after %d iterations with relative residual %.2e (the "
                "leading components are nearly degenerate; their directions are uncertain)", -o->p.iterations,
                o->p.residual);
    AxisMoments *m = o->mom = XCALLOC(3, sizeof(AxisMoments));
    pca_column_moments(o->p.proj, o->n, o->k, m[0].mean, m[0].var, m[0].skew, m[0].kurt);
    o->gproj = XMALLOC_N((size_t)o->n * o->k, sizeof(double));
    pca_gaussian_null(o->p.variance, o->k, o->n, (uint64_t)c->seed, o->gproj);
    pca_column_moments(o->gproj, o->n, o->k, m[2].mean, m[2].var, m[2].skew, m[2].kurt);
    if (b) {
        o->bproj = XMALLOC_N((size_t)o->nb * o->k, sizeof(double));
        pca_project(&o->p, o->scale, XB, o->nb, o->bproj);   // XB is not standardized: pca_project divides
        pca_column_moments(o->bproj, o->nb, o->k, m[1].mean, m[1].var, m[1].skew, m[1].kurt);
        o->b_total = pca_total_variance(XB, o->nb, o->D, o->scale);
        o->b_captured = 0.0;
        for (int i = 0; i < o->k; i++) o->b_captured += m[1].var[i];
        o->b_captured /= o->b_total;
    }
    free(X);
}

static void write_result(const PcaCli *c, const SampleSet *s, const SampleSet *b, const char *sha,
                         const char *base_sha, const PcaRun *o) {
    const size_t D = o->D, n = (size_t)o->n, k = (size_t)o->k;
    ResultFile r;
    result_create(&r, c->out);
    resultio_provenance(&r, CMD, c->argc, c->argv);
    resultio_input(&r, "samples", c->in, sha);
    size_t dims[2] = { k, D }, dk[1] = { k }, dd[1] = { D }, dp[2] = { n, k };
    resultio_f64(&r, "/components", 2, dims, o->p.components, "(component, dimension)",
                 "unit principal axes of the generated vectors (sign: largest-magnitude entry positive)");
    resultio_f64(&r, "/explained_variance", 1, dk, o->p.variance, "(component)",
                 "eigenvalues of the covariance (1/(N-1)) of the generated vectors");
    resultio_f64(&r, "/explained_variance_ratio", 1, dk, o->p.ratio, "(component)",
                 "explained_variance / total variance (trace of the covariance)");
    resultio_f64(&r, "/mean", 1, dd, o->p.mean, "(dimension)", "mean of the generated vectors (after --standardize)");
    if (o->scale)
        resultio_f64(&r, "/scale", 1, dd, o->scale, "(dimension)",
                     "--standardize: each coordinate was divided by this standard deviation of the generated set");
    resultio_f64(&r, "/projections", 2, dp, o->p.proj, "(network, component)",
                 "(x / scale - mean) . components^T of the generated networks");
    write_moments(&r, "/generated", &o->mom[0], o->k, "the generated networks");
    result_attr_str(&r, "/generated", "label", "generated");
    double *acc = XMALLOC_N(n, sizeof(double));
    size_t dn[1] = { n };
    if (sampleset_read_metric(s, "accuracy", 0, (int)n, acc))
        resultio_f64(&r, "/accuracy", 1, dn, acc, "(network)", "the accuracy stored in the sample set's /metrics");
    free(acc);
    resultio_f64(&r, "/gaussian/projections", 2, dp, o->gproj, "(sample, component)",
                 "draws of N(mean, covariance of the generated set) projected on its components: column c is "
                 "N(0, explained_variance[c]), independent (exact: the components are eigenvectors of the covariance)");
    write_moments(&r, "/gaussian", &o->mom[2], o->k, "the Gaussian null");
    result_attr_str(&r, "/gaussian", "label", "Gaussian (same mean and covariance)");
    result_attr_i64(&r, "/gaussian", "seed", c->seed);
    result_attr_i64(&r, "/gaussian", "networks", o->n);
    if (b) {
        size_t dbp[2] = { (size_t)o->nb, k };
        resultio_input(&r, "baseline", c->base, base_sha);
        resultio_f64(&r, "/baseline/projections", 2, dbp, o->bproj, "(network, component)",
                     "(x / scale - mean) . components^T of the baseline's networks: the deep ensemble on the "
                     "generated set's axes, centred on the generated mean");
        write_moments(&r, "/baseline", &o->mom[1], o->k, "the deep ensemble");
        result_attr_str(&r, "/baseline", "label", "deep ensemble");
        result_attr_i64(&r, "/baseline", "networks", o->nb);
        result_attr_i64(&r, "/baseline", "step", b->step);
        result_attr_f64(&r, "/baseline", "total_variance", o->b_total);
        result_attr_f64(&r, "/baseline", "captured_ratio", o->b_captured);
    }
    result_attr_str(&r, "/", "checkpoint", s->checkpoint);
    result_attr_i64(&r, "/", "step", s->step);
    result_attr_str(&r, "/", "what", c->what);
    result_attr_i64(&r, "/", "layer", o->layer >= 0 ? o->layer + 1 : 0);
    result_attr_i64(&r, "/", "filter", o->filter);
    result_attr_i64(&r, "/", "networks", o->n);
    result_attr_i64(&r, "/", "dim", (int64_t)D);
    result_attr_f64(&r, "/", "total_variance", o->p.total_variance);
    result_attr_str(&r, "/", "method", o->p.gram ? "gram" : "covariance");
    result_attr_i64(&r, "/", "standardized", c->standardize);
    result_attr_i64(&r, "/", "iterations", o->p.iterations);
    result_attr_f64(&r, "/", "residual", o->p.residual);
    result_close(&r);
}

static void print_summary(const PcaCli *c, const SampleSet *s, const PcaRun *o) {
    const Pca *p = &o->p;
    const AxisMoments *mg = &o->mom[0], *mb = &o->mom[1], *mn = &o->mom[2];
    printf("# hyperanalyze pca: %s (step %lld), %s: %lld networks x %zu dimensions, total variance %.6g\n",
           c->in, (long long)s->step, c->what, o->n, o->D, p->total_variance);
    printf("# read %.2fs, PCA %.2fs through the %s matrix (%d iterations, residual %.1e)\n", o->t_read, o->t_fit,
           p->gram ? "(N, N) Gram" : "(D, D) covariance", p->iterations < 0 ? -p->iterations : p->iterations,
           p->residual);
    if (c->base)
        printf("# baseline %s: %lld networks, total variance %.6g, %.4f of it on these %d axes\n", c->base, o->nb,
               o->b_total, o->b_captured, o->k);
    printf("# a Gaussian's sample skewness / excess kurtosis have standard deviation ~ sqrt(6/N) = %.3f / "
           "sqrt(24/N) = %.3f (N = %lld)\n", sqrt(6.0 / o->n), sqrt(24.0 / o->n), o->n);
    printf("# results: %s\n", c->out);
    printf("component,variance,ratio,cumulative,skewness,excess_kurtosis,gaussian_variance,gaussian_skewness,"
           "gaussian_excess_kurtosis%s\n", c->base ? ",baseline_mean,baseline_variance,baseline_skewness,"
           "baseline_excess_kurtosis" : "");
    double cum = 0.0;
    for (int i = 0; i < o->k; i++) {
        cum += p->ratio[i];
        printf("%d,%.8g,%.6f,%.6f,%.4f,%.4f,%.8g,%.4f,%.4f", i + 1, p->variance[i], p->ratio[i], cum, mg->skew[i],
               mg->kurt[i], mn->var[i], mn->skew[i], mn->kurt[i]);
        if (c->base) printf(",%.6g,%.8g,%.4f,%.4f", mb->mean[i], mb->var[i], mb->skew[i], mb->kurt[i]);
        printf("\n");
    }
}

int cmd_pca(int argc, char **argv) {
    PcaCli c;
    int rc = parse_cli(argc, argv, &c);
    if (rc) return rc < 0 ? 0 : rc;
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, NULL, c.threads, c.in, out_buf, sizeof(out_buf), &c.out))) return rc;

    TargetArch expect;
    SampleSet s, b;
    PcaRun o;
    memset(&o, 0, sizeof(o));
    sampleset_open(&s, c.in, an_expected_arch(c.job, &expect));
    if ((rc = parse_what(c.what, &s, &o.layer, &o.filter))) { sampleset_close(&s); return rc; }
    o.n = c.n_req ? c.n_req : (s.n < 3000 ? s.n : 3000);
    sampleset_require(&s, o.n, "--n");
    if (o.n < 2) HT_FATAL("sample set '%s' holds %lld network(s); PCA needs at least 2", c.in, s.n);
    char sha[65], base_sha[65] = "";
    resultio_file_sha256(c.in, sha);
    if (c.base) {
        resultio_file_sha256(c.base, base_sha);
        sampleset_open(&b, c.base, &s.arch);
        o.nb = b.n < o.n ? b.n : o.n;
        if (o.nb < 2) HT_FATAL("baseline set '%s' holds %lld network(s); its spread needs at least 2", c.base, b.n);
        check_same_gauge(&s, &b);
    }
    o.D = pca_dim(&s.arch, o.layer, o.filter);
    const long long kmax = o.n < (long long)o.D ? o.n : (long long)o.D;
    if (c.k > kmax) return ha_usage_error(CMD, "--components %ld: at most min(N, D) = %lld here", c.k, kmax);
    o.k = (int)c.k;
    // The data (n + nb, D) floats and the (m, m) covariance or Gram matrix, m = min(n, D), in doubles.
    const size_t nD = XMUL(o.n + o.nb, o.D, "pca: --n %lld networks x %zu weights", o.n + o.nb, o.D);
    const size_t m = (size_t)o.n < o.D ? (size_t)o.n : o.D;
    HT_CHECK_MEMORY(XADD(XMUL(nD, sizeof(float), "pca: data"), XMUL(XMUL(m, m, "pca: matrix"), sizeof(double),
                    "pca: matrix"), "pca: memory"), "pca of %lld networks x %zu weights (--n, --what)", o.n + o.nb,
                    o.D);
    compute(&c, &s, c.base ? &b : NULL, &o);
    write_result(&c, &s, c.base ? &b : NULL, sha, base_sha, &o);
    print_summary(&c, &s, &o);
    pca_free(&o.p);
    free(o.scale); free(o.gproj); free(o.bproj); free(o.mom);
    if (c.base) sampleset_close(&b);
    sampleset_close(&s);
    return 0;
}
