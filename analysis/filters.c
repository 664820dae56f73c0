// hyperanalyze filters: samples of one generated filter slice (the paper's Fig. 3: "25 samples for
// one specific filter slice" of layers 1, 2 and 3).
//
// Filter I of layer L (1-based as /weights/layer<L>; I 0-based, the kernel's last axis) of networks
// 0 .. S-1. Its input is an activation of shape (h, w, c): for a conv layer the kernel window
// (k, k, in_channels); for a fully connected layer the NHWC shape of the previous op's output
// (e.g. (7, 7, 16) for layer 3 of the paper's network). The slice at input channel c is the (h, w)
// image [.., .., c]. When the input has no spatial extent (h = w = 1: an fc layer after an fc layer)
// the slice is the whole filter as one row (1, fan_in) and --channel must be 0.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "filters_core.h"
#include "resultio.h"
#include "sample.h"

#define CMD "filters"

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze filters SAMPLES.h5 [options]\n"
        "\n"
        "Samples of one generated filter slice (the paper's Fig. 3): filter I of layer L, input\n"
        "channel C, of the first S networks of the set. Writes FILE.h5 (/slices (S, h, w), /filter\n"
        "(S, h, w, c) the whole filter in its input's shape, /bias (S), /networks (S)) and prints each\n"
        "sample's norm, minimum and maximum.\n"
        "Plot: python3 analysis/plot_filters.py FILE.h5 [MORE.h5 ...] -o fig3.png  (5 x 5 grids)\n"
        "\n"
        "options:\n"
        "  --layer L          1-based layer, as /weights/layer<L> (default 1)\n"
        "  --filter I         0-based filter of that layer (default 0)\n"
        "  --channel C        0-based input channel of the slice (default 0)\n"
        "  --samples S        networks 0..S-1 (default 25)\n"
        "  --out FILE.h5      result file (default SAMPLES_filters.h5 beside the set)\n"
        "  --job JOB.json     fail unless the set holds networks of this job's target architecture\n");
}

int cmd_filters(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *job = NULL;
    long L = 1, I = 0, ch = 0, S = 25;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--out")) { out = v; i++; }
        else if (!strcmp(a, "--job")) { job = v; i++; }
        else if (!strcmp(a, "--layer")) { if ((rc = an_long(CMD, a, v, 1, HT_MAX_OPS, &L))) return rc; i++; }
        else if (!strcmp(a, "--filter")) { if ((rc = an_long(CMD, a, v, 0, 1L << 30, &I))) return rc; i++; }
        else if (!strcmp(a, "--channel")) { if ((rc = an_long(CMD, a, v, 0, 1L << 30, &ch))) return rc; i++; }
        else if (!strcmp(a, "--samples")) { if ((rc = an_long(CMD, a, v, 1, 1L << 24, &S))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", in, a);
        else in = a;
    }
    if (!in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze filters SAMPLES.h5");
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, NULL, 0, in, out_buf, sizeof(out_buf), &out))) return rc;

    char sha[65];
    resultio_file_sha256(in, sha);
    TargetArch expect;
    SampleSet s;
    sampleset_open(&s, in, an_expected_arch(job, &expect));
    const TargetArch *a = &s.arch;
    if (L > a->n_layers)
        return ha_usage_error(CMD, "--layer %ld is out of range: '%s' holds networks with %d conv/fc layers "
                              "(--layer 1 .. %d)", L, in, a->n_layers, a->n_layers);
    const TargetLayer *ly = &a->layers[L - 1];
    const TargetOp *op = &a->ops[ly->op];
    if (I >= ly->filters)
        return ha_usage_error(CMD, "--filter %ld is out of range: layer %ld has %d filters (--filter 0 .. %d)",
                              I, L, ly->filters, ly->filters - 1);
    int h, w, c;   // the filter's input shape
    filter_input_shape(a, (int)L - 1, &h, &w, &c);
    if (ch >= c)
        return ha_usage_error(CMD, "--channel %ld is out of range: filters of layer %ld read %d input channel%s "
                              "(--channel 0 .. %d)", ch, L, c, c == 1 ? "" : "s", c - 1);
    char what[64];
    XSNPRINTF(what, sizeof(what), "--samples %ld", S);
    sampleset_require(&s, S, what);

    const size_t K = (size_t)ly->fan_in + 1, hw = (size_t)h * w;
    const size_t SL = XMUL(S, ly->size, "filters: --samples %ld x %zu weights of layer %ld", S, ly->size, L);
    HT_CHECK_MEMORY(XMUL(SL, sizeof(float), "filters"), "filters: --samples %ld x %zu weights of layer %ld",
                    S, ly->size, L);
    float *layer = XALLOC_FLOATS(SL);
    sampleset_read_layer(&s, (int)L - 1, 0, (int)S, layer);
    float *filt = XALLOC_FLOATS((size_t)S * ly->fan_in), *slices = XALLOC_FLOATS((size_t)S * hw);
    float *bias = XALLOC_FLOATS((size_t)S);
    int64_t *nets = XMALLOC((size_t)S * sizeof(int64_t));
    for (long k = 0; k < S; k++) {
        const float *f = layer + (size_t)k * ly->size + (size_t)I * K;   // (h, w, c) order, then bias
        memcpy(filt + (size_t)k * ly->fan_in, f, (size_t)ly->fan_in * sizeof(float));
        for (size_t p = 0; p < hw; p++) slices[(size_t)k * hw + p] = f[p * c + ch];
        bias[k] = f[ly->fan_in];
        nets[k] = k;
    }

    ResultFile r;
    result_create(&r, out);
    size_t ds[3] = { (size_t)S, (size_t)h, (size_t)w }, df[4] = { (size_t)S, (size_t)h, (size_t)w, (size_t)c };
    size_t d1[1] = { (size_t)S };
    result_f32(&r, "/slices", 3, ds, slices);
    result_f32(&r, "/filter", 4, df, filt);
    result_f32(&r, "/bias", 1, d1, bias);
    result_i64(&r, "/networks", 1, d1, nets);
    static const char *const meta[4][3] = {
        { "/slices", "(network, row, column)", "input channel `channel` of filter `filter` of layer `layer`" },
        { "/filter", "(network, row, column, input channel)", "the whole filter (fan_in weights) in its input's shape" },
        { "/bias", "(network)", "the filter's bias" },
        { "/networks", "(network)", "index of the network in the sample set" } };
    for (int i = 0; i < 4; i++) {
        result_attr_str(&r, meta[i][0], "axes", meta[i][1]);
        result_attr_str(&r, meta[i][0], "meaning", meta[i][2]);
    }
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "samples", in, sha);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_i64(&r, "/", "layer", L);
    result_attr_i64(&r, "/", "filter", I);
    result_attr_i64(&r, "/", "channel", ch);
    result_attr_str(&r, "/", "layer_type", op->type == OP_CONV ? "conv" : "fc");
    result_attr_str(&r, "/", "target_architecture", s.arch_desc);
    result_close(&r);

    printf("# hyperanalyze filters: %s (step %lld), layer %ld (%s) filter %ld channel %ld: %ld samples of a %dx%d "
           "slice (filter input %dx%dx%d)\n", in, (long long)s.step, L, op->type == OP_CONV ? "conv" : "fc", I, ch,
           S, h, w, h, w, c);
    printf("# results: %s\n", out);
    printf("network,slice_norm,slice_min,slice_max,bias\n");
    for (long k = 0; k < S; k++) {
        double nrm = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t p = 0; p < hw; p++) {
            const double v = slices[(size_t)k * hw + p];
            nrm += v * v;
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        printf("%ld,%.6f,%.6f,%.6f,%.6f\n", k, sqrt(nrm), lo, hi, bias[k]);
    }
    sampleset_close(&s);
    free(layer); free(filt); free(slices); free(bias); free(nets);
    return 0;
}
