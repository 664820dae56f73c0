// hyperanalyze filterdiv: the diversity of every filter across the networks of a sample set, and
// the next layer's weight norm on that filter's channel (the paper's Fig. 3 and §4.2 "a possible
// mode of failure ... concentrates much of its diversity in specific filters, while making sure
// that these filters get very small weights in the next layer"). The computation is in
// analysis/filters_core.c (tested by tests/test_figs.c); this file reads the set and writes the result.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "filters_core.h"
#include "resultio.h"
#include "sample.h"

#define CMD "filterdiv"
#define BLOCK 64

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze filterdiv SAMPLES.h5 [options]\n"
        "\n"
        "Per-filter diversity over the first N networks of a sample set, for every layer that feeds\n"
        "another (layers 1 .. m-1): diversity = sum_s ||x_s - mean||^2 / sum_s ||x_s||^2 of the filter's\n"
        "gauge-fixed weights and bias (0: the same filter in every network), and next_norm = the RMS\n"
        "over networks of the norm of the next layer's weights on that filter's channel. Writes FILE.h5\n"
        "(/layer<L>/diversity, /layer<L>/next_norm (filters), their Pearson and Spearman correlation,\n"
        "and the first S networks' copies of the least and the most diverse filter: /layer<L>/least,\n"
        "/layer<L>/most) and prints one CSV row per filter.\n"
        "Plot: python3 analysis/plot_filters.py --diversity FILE.h5 -o fig3.png\n"
        "\n"
        "options:\n"
        "  --n N              the first N networks (default: 3000, or the whole set if smaller)\n"
        "  --samples S        networks shown in the filter grids, S <= N (default 25)\n"
        "  --out FILE.h5      result file (default SAMPLES_filterdiv.h5 beside the set)\n"
        "  --job JOB.json     fail unless the set holds networks of this job's target architecture\n");
}

// The S copies of filter f of layer l in networks theta (S, n_weights): filt (S, fan_in) in the
// input's (h, w, c) order and slices (S, h * w) at channel ch, as doubles for the result file.
static void copy_filter(const TargetArch *a, int l, int f, int ch, const float *theta, int S, double *filt,
                        double *slices) {
    const TargetLayer *L = &a->layers[l];
    int h, w, c;
    filter_input_shape(a, l, &h, &w, &c);
    const size_t K = (size_t)L->fan_in + 1, hw = (size_t)h * w;
    for (int s = 0; s < S; s++) {
        const float *x = theta + (size_t)s * a->n_weights + L->offset + (size_t)f * K;
        for (int j = 0; j < L->fan_in; j++) filt[(size_t)s * L->fan_in + j] = x[j];
        for (size_t p = 0; p < hw; p++) slices[(size_t)s * hw + p] = x[p * c + ch];
    }
}

// /layer<L>/<which> (which = "least" or "most"): filter f's copies and what it is.
static void write_extreme(ResultFile *r, const TargetArch *a, int l, const char *which, int f,
                          const double *div, const double *nn, const double *chsq, const float *theta, int S) {
    const TargetLayer *L = &a->layers[l];
    int h, w, c;
    filter_input_shape(a, l, &h, &w, &c);
    int ch = 0;   // the channel with the largest mean squared slice (a 1-channel input: 0)
    for (int k = 1; k < c; k++)
        if (chsq[(size_t)f * L->in_channels + k] > chsq[(size_t)f * L->in_channels + ch]) ch = k;
    double *filt = XMALLOC_N((size_t)S * L->fan_in, sizeof(double));
    double *slices = XMALLOC_N((size_t)S * h * w, sizeof(double));
    copy_filter(a, l, f, ch, theta, S, filt, slices);
    char name[96], grp[64];
    XSNPRINTF(grp, sizeof(grp), "/layer%d/%s", l + 1, which);
    size_t ds[3] = { (size_t)S, (size_t)h, (size_t)w }, df[4] = { (size_t)S, (size_t)h, (size_t)w, (size_t)c };
    XSNPRINTF(name, sizeof(name), "%s/slices", grp);
    resultio_f64(r, name, 3, ds, slices, "(network, row, column)",
                 "input channel `channel` of filter `filter` of this layer in networks 0 .. S-1 (gauge-fixed weights)");
    XSNPRINTF(name, sizeof(name), "%s/filter", grp);
    resultio_f64(r, name, 4, df, filt, "(network, row, column, input channel)",
                 "the whole filter (its fan_in weights, bias excluded) in its input's shape");
    result_attr_i64(r, grp, "filter", f);
    result_attr_i64(r, grp, "channel", ch);
    result_attr_f64(r, grp, "diversity", div[f]);
    result_attr_f64(r, grp, "next_norm", nn[f]);
    free(filt);
    free(slices);
}

int cmd_filterdiv(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *job = NULL;
    long n_req = 0, S = 25;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--out")) { out = v; i++; }
        else if (!strcmp(a, "--job")) { job = v; i++; }
        else if (!strcmp(a, "--n")) { if ((rc = an_long(CMD, a, v, 2, 1L << 24, &n_req))) return rc; i++; }
        else if (!strcmp(a, "--samples")) { if ((rc = an_long(CMD, a, v, 1, 4096, &S))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", in, a);
        else in = a;
    }
    if (!in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze filterdiv SAMPLES.h5");
    if (n_req && S > n_req) return ha_usage_error(CMD, "--samples %ld: at most --n (%ld)", S, n_req);
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, NULL, 0, in, out_buf, sizeof(out_buf), &out))) return rc;

    char sha[65];
    resultio_file_sha256(in, sha);
    TargetArch expect;
    SampleSet s;
    sampleset_open(&s, in, an_expected_arch(job, &expect));
    const TargetArch *a = &s.arch;
    if (a->n_layers < 2) HT_FATAL("'%s' holds networks of one layer: no filter feeds a next layer", in);
    const long long n = n_req ? n_req : (s.n < 3000 ? s.n : 3000);
    if (n < 2) HT_FATAL("sample set '%s' holds %lld network(s); filter diversity needs at least 2", in, s.n);
    sampleset_require(&s, n, "--n");
    if (S > n) HT_FATAL("'%s': --samples %ld needs %ld networks, but %lld are used (--n)", in, S, S, n);
    const size_t W = a->n_weights;
    HT_CHECK_MEMORY(XADD(XMUL(XADD(BLOCK, S, "filterdiv"), XMUL(W, sizeof(float), "filterdiv"), "filterdiv"),
                         XMUL(3 * sizeof(double), W, "filterdiv"), "filterdiv"),
                    "filterdiv: %zu weights per network", W);

    // Moments of every coordinate over the N networks, read in blocks; the first S kept for the grids.
    WeightMoments m;
    wmoments_init(&m, W);
    float *buf = XALLOC_FLOATS((size_t)BLOCK * W), *first = XALLOC_FLOATS((size_t)S * W);
    const double t0 = ht_now();
    double last = t0;
    for (long long b0 = 0; b0 < n; b0 += BLOCK) {
        const int nb = n - b0 < BLOCK ? (int)(n - b0) : BLOCK;
        sampleset_read(&s, b0, nb, buf);
        wmoments_add(&m, buf, nb);
        for (int b = 0; b < nb; b++)
            if (b0 + b < S) memcpy(first + (size_t)(b0 + b) * W, buf + (size_t)b * W, W * sizeof(float));
        if (ht_now() - last > 10.0) {
            last = ht_now();
            fprintf(stderr, "filterdiv: %lld/%lld networks read, %.0fs\n", b0 + nb, n, last - t0);
        }
    }
    free(buf);

    ResultFile r;
    result_create(&r, out);
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "samples", in, sha);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_i64(&r, "/", "networks", n);
    result_attr_i64(&r, "/", "samples_shown", S);
    result_attr_i64(&r, "/", "layers", a->n_layers - 1);
    result_attr_str(&r, "/", "target_architecture", s.arch_desc);
    printf("# hyperanalyze filterdiv: %s (step %lld), %lld networks\n", in, (long long)s.step, n);
    printf("# diversity = sum_s ||x_s - mean||^2 / sum_s ||x_s||^2 per filter; next_norm = RMS over networks of "
           "the next layer's weights on its channel\n");
    char lines[HT_MAX_OPS][200];
    for (int l = 0; l + 1 < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        const int F = L->filters;
        double *div = XMALLOC_N((size_t)F, sizeof(double)), *nn = XMALLOC_N((size_t)F, sizeof(double));
        double *chsq = XMALLOC_N((size_t)F * L->in_channels, sizeof(double));
        if (filter_diversity(a, l, &m, div, nn, chsq))
            HT_FATAL("'%s': layer %d does not read layer %d's %d filters as its channels", in, l + 2, l + 1, F);
        const double pr = stat_pearson(div, nn, F), sp = stat_spearman(div, nn, F);
        const int lo = stat_argmin(div, F), hi = stat_argmax(div, F);
        char grp[32], name[64];
        XSNPRINTF(grp, sizeof(grp), "/layer%d", l + 1);
        size_t d1[1] = { (size_t)F }, d2[2] = { (size_t)F, (size_t)L->in_channels };
        XSNPRINTF(name, sizeof(name), "%s/diversity", grp);
        resultio_f64(&r, name, 1, d1, div, "(filter)",
                     "sum_s ||x_s - mean||^2 / sum_s ||x_s||^2 over the networks s of the filter's weights and bias "
                     "x (gauge-fixed): 0 = the same filter in every network, 1 = mean zero");
        XSNPRINTF(name, sizeof(name), "%s/next_norm", grp);
        resultio_f64(&r, name, 1, d1, nn, "(filter)",
                     "sqrt(mean over networks of sum of squares of the next layer's weights reading this filter's "
                     "channel): how much the next layer uses the filter");
        XSNPRINTF(name, sizeof(name), "%s/channel_msq", grp);
        resultio_f64(&r, name, 2, d2, chsq, "(filter, input channel)",
                     "mean over networks of the squared norm of the filter's weights on each input channel");
        result_attr_f64(&r, grp, "pearson", pr);
        result_attr_f64(&r, grp, "spearman", sp);
        result_attr_i64(&r, grp, "least_diverse", lo);
        result_attr_i64(&r, grp, "most_diverse", hi);
        result_attr_str(&r, grp, "layer_type", a->ops[L->op].type == OP_CONV ? "conv" : "fc");
        write_extreme(&r, a, l, "least", lo, div, nn, chsq, first, (int)S);
        write_extreme(&r, a, l, "most", hi, div, nn, chsq, first, (int)S);
        if (l == 0) printf("layer,filter,diversity,next_norm\n");
        for (int f = 0; f < F; f++) printf("%d,%d,%.8f,%.8g\n", l + 1, f, div[f], nn[f]);
        XSNPRINTF(lines[l], sizeof(lines[l]), "# layer %d: least diverse filter %d (%.4g, next_norm %.4g), most "
                  "diverse %d (%.4g, next_norm %.4g); correlation with next_norm: Pearson %.3f, Spearman %.3f",
                  l + 1, lo, div[lo], nn[lo], hi, div[hi], nn[hi], pr, sp);
        free(div); free(nn); free(chsq);
    }
    result_close(&r);
    for (int l = 0; l + 1 < a->n_layers; l++) printf("%s\n", lines[l]);
    printf("# results: %s\n", out);
    wmoments_free(&m);
    free(first);
    sampleset_close(&s);
    return 0;
}
