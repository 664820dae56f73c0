// hyperanalyze calibrate: temperature scaling fitted on the validation split, evaluated once on the
// test split, for ensembles of the first s networks, s = 1, 2, 4, ..., M, of a sample set and (with
// --baseline) of a deep ensemble of the same sizes. One temperature T per ensemble size, applied to
// each member's logits before the probabilities are averaged, fitted by minimizing the ensemble's
// validation NLL (golden-section search on log T, uq_fit_temperature); and one T shared by all M
// networks used alone. The computation is calib_compute (analysis/uncert.c, tested in
// tests/test_metrics.c); this file reads the sets, evaluates the networks and writes the result.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "resultio.h"
#include "sample.h"
#include "uncert.h"
#include "uncert_eval.h"

#define CMD "calibrate"

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze calibrate SAMPLES.h5 [--baseline DEEP.h5] [options]\n"
        "\n"
        "Temperature scaling of ensembles of the first s networks, s = 1, 2, 4, ..., M: T is fitted on\n"
        "the validation split (minimum NLL of the ensemble whose members' logits are divided by T before\n"
        "their probabilities are averaged; golden-section search on log T in [0.05, 20]) and the test\n"
        "split is used once, for accuracy, NLL and ECE before (T = 1) and after. Also every network alone\n"
        "with one T shared by the M networks. With --baseline, the same for the deep ensemble's first M\n"
        "networks (equal sizes). Writes FILE.h5 (/<set>/sizes, temperature, val_nll (2, S),\n"
        "test/<score> (2, S), reliability/{count,confidence,accuracy} (2, S, bins); axis 0 = before, after)\n"
        "and prints one CSV row per set and size.\n"
        "Plot: python3 analysis/plot_calibration.py FILE.h5 -o calibration.png\n"
        "\n"
        "options:\n"
        "  --baseline DEEP.h5 a deep ensemble (hyperanalyze baseline), same target architecture\n"
        "  --members M        largest ensemble (default 16)\n"
        "  --val-images N     the first N validation images for the fit (default all)\n"
        "  --test-images N    the first N test images for the evaluation (default all)\n"
        "  --bins B           ECE / reliability bins (default 15)\n"
        "  --out FILE.h5      result file (default SAMPLES_calibrate.h5 beside the set)\n"
        "  --data DIR         MNIST directory\n"
        "  --job JOB.json     fail unless the sets hold networks of this job's target architecture\n"
        "  --threads N        OpenMP threads\n");
}

typedef struct {
    const char *in, *baseline, *out, *data, *job;
    long M, val_images, test_images, bins, threads;
} CalOpts;

static int parse(int argc, char **argv, CalOpts *o) {
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return -1; }
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--baseline")) { o->baseline = v; i++; }
        else if (!strcmp(a, "--out")) { o->out = v; i++; }
        else if (!strcmp(a, "--data")) { o->data = v; i++; }
        else if (!strcmp(a, "--job")) { o->job = v; i++; }
        else if (!strcmp(a, "--members")) { if ((rc = an_long(CMD, a, v, 1, 1L << 16, &o->M))) return rc; i++; }
        else if (!strcmp(a, "--val-images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 24, &o->val_images))) return rc; i++; }
        else if (!strcmp(a, "--test-images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 24, &o->test_images))) return rc; i++; }
        else if (!strcmp(a, "--bins")) { if ((rc = an_long(CMD, a, v, 1, 10000, &o->bins))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &o->threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (o->in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", o->in, a);
        else o->in = a;
    }
    if (!o->in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze calibrate SAMPLES.h5");
    return 0;
}

static void set_calib(const SampleSet *s, int M, const Dataset *val, const Dataset *test, const int64_t *sizes,
                      int S, int bins, const char *label, CalibOut *out) {
    const int C = s->arch.classes;
    HT_CHECK_MEMORY(XMUL(XMUL(M, (size_t)val->n + test->n, "networks x images"), C * sizeof(float), "logits"),
                    "the logits of %d networks on %d + %d images", M, val->n, test->n);
    float *lv = XALLOC_FLOATS(XMUL(XMUL(M, val->n, "networks x images"), C, "logits"));
    float *lt = XALLOC_FLOATS(XMUL(XMUL(M, test->n, "networks x images"), C, "logits"));
    char what[96];
    XSNPRINTF(what, sizeof(what), "calibrate (%s, val)", label);
    uq_logits(s, 0, M, val->images, val->n, lv, what);
    XSNPRINTF(what, sizeof(what), "calibrate (%s, test)", label);
    uq_logits(s, 0, M, test->images, test->n, lt, what);
    const CalibIn in = { lv, val->labels, val->n, lt, test->labels, test->n, M, C, bins, sizes, S };
    calib_compute(&in, out);
    free(lv);
    free(lt);
}

static void write_group(ResultFile *r, const char *g, const CalibOut *o, const int64_t *sizes) {
    const int S = o->S, B = o->bins;
    char name[128], meaning[256];
    size_t dS[1] = { (size_t)S }, d2[2] = { 2, (size_t)S }, d3[3] = { 2, (size_t)S, (size_t)B };
    XSNPRINTF(name, sizeof(name), "%s/sizes", g);
    resultio_i64(r, name, 1, dS, sizes, "(size)", "ensemble size s: the first s networks of the set");
    XSNPRINTF(name, sizeof(name), "%s/temperature", g);
    resultio_f64(r, name, 1, dS, o->T, "(size)", "T minimizing the validation NLL of the ensemble "
                 "mean_m softmax(z_m / T)");
    XSNPRINTF(name, sizeof(name), "%s/val_nll", g);
    resultio_f64(r, name, 2, d2, o->val_nll, "(before|after, size)", "validation NLL at T = 1 and at the fitted T");
    double *v = XMALLOC_N((size_t)2 * S * B, sizeof(double));
    for (int q = 0; q < UQ_N_SCORES; q++) {
        for (int k = 0; k < 2 * S; k++) v[k] = o->test[(size_t)k * UQ_N_SCORES + q];
        XSNPRINTF(name, sizeof(name), "%s/test/%s", g, UQ_SCORE_NAMES[q]);
        XSNPRINTF(meaning, sizeof(meaning), "test %s of the ensemble's mean probability at T = 1 (row 0) and at "
                  "the fitted T (row 1)", UQ_SCORE_NAMES[q]);
        resultio_f64(r, name, 2, d2, v, "(before|after, size)", meaning);
    }
    static const char *const rel_names[3] = {"count", "confidence", "accuracy"};
    static const char *const rel_meaning[3] = {
        "test images whose confidence max_c p_c falls in the bin (b/B, (b+1)/B]",
        "mean confidence of the bin's images (NaN when empty)",
        "fraction of the bin's images classified right (NaN when empty)"};
    for (int w = 0; w < 3; w++) {
        for (int k = 0; k < 2 * S; k++)
            for (int bb = 0; bb < B; bb++) {
                const double *rel = o->rel + (size_t)k * 3 * B;
                v[(size_t)k * B + bb] = w == 0 ? rel[bb] : rel[bb] > 0 ? rel[(size_t)w * B + bb] / rel[bb] : NAN;
            }
        XSNPRINTF(name, sizeof(name), "%s/reliability/%s", g, rel_names[w]);
        resultio_f64(r, name, 3, d3, v, "(before|after, size, bin)", rel_meaning[w]);
    }
    for (int q = 0; q < UQ_N_SCORES; q++)
        for (int w = 0; w < 2; w++) {
            const double two[2] = { w ? o->single_std[0][q] : o->single_mean[0][q],
                                    w ? o->single_std[1][q] : o->single_mean[1][q] };
            size_t d1[1] = { 2 };
            XSNPRINTF(name, sizeof(name), "%s/single/%s_%s", g, UQ_SCORE_NAMES[q], w ? "std" : "mean");
            XSNPRINTF(meaning, sizeof(meaning), "test %s of each network alone, %s over the networks, at T = 1 and "
                      "at the shared fitted T (attribute temperature)", UQ_SCORE_NAMES[q], w ? "std" : "mean");
            resultio_f64(r, name, 1, d1, two, "(before|after)", meaning);
        }
    XSNPRINTF(name, sizeof(name), "%s/single", g);
    result_attr_f64(r, name, "temperature", o->single_T);
    free(v);
}

static void print_rows(const char *set, const CalibOut *o, const int64_t *sizes) {
    const int S = o->S;
    for (int si = 0; si < S; si++) {
        const double *b = o->test + (size_t)si * UQ_N_SCORES, *a = o->test + ((size_t)S + si) * UQ_N_SCORES;
        printf("%s,%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", set, (long long)sizes[si], o->T[si], b[UQ_ACC],
               b[UQ_NLL], b[UQ_ECE], a[UQ_ACC], a[UQ_NLL], a[UQ_ECE]);
    }
    for (int si = 0; si < S; si++)
        if (o->T[si] <= UQ_T_MIN * 1.0001 || o->T[si] >= UQ_T_MAX * 0.9999)
            printf("# note: %s, size %lld: T = %g is at the end of the search range [%g, %g]: the validation NLL "
                   "keeps falling beyond it\n", set, (long long)sizes[si], o->T[si], UQ_T_MIN, UQ_T_MAX);
    printf("%s,single,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", set, o->single_T, o->single_mean[0][UQ_ACC],
           o->single_mean[0][UQ_NLL], o->single_mean[0][UQ_ECE], o->single_mean[1][UQ_ACC], o->single_mean[1][UQ_NLL],
           o->single_mean[1][UQ_ECE]);
}

int cmd_calibrate(int argc, char **argv) {
    CalOpts o = { .M = 16, .bins = 15 };
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, NULL, o.threads, o.in, out_buf, sizeof(out_buf), &o.out))) return rc;

    SampleSet s, b;
    char sha_s[65], sha_b[65];
    uq_open_sets(o.in, o.baseline, o.job, o.M, &s, &b, sha_s, sha_b);
    int64_t sizes[64];
    const int S = uq_sizes(o.M, sizes);
    Mnist mv, mt;
    Dataset dv, dt;
    sample_load_split(&s.job, o.data, "val", (int)o.val_images, &mv, &dv);
    sample_load_split(&s.job, o.data, "test", (int)o.test_images, &mt, &dt);
    const double t0 = ht_now();
    CalibOut gen, base;
    set_calib(&s, (int)o.M, &dv, &dt, sizes, S, (int)o.bins, "generated", &gen);
    if (o.baseline) set_calib(&b, (int)o.M, &dv, &dt, sizes, S, (int)o.bins, "baseline", &base);
    const double secs = ht_now() - t0;

    ResultFile r;
    result_create(&r, o.out);
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "samples", o.in, sha_s);
    if (o.baseline) resultio_input(&r, "baseline", o.baseline, sha_b);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_i64(&r, "/", "val_images", dv.n);
    result_attr_i64(&r, "/", "test_images", dt.n);
    result_attr_i64(&r, "/", "members", o.M);
    result_attr_i64(&r, "/", "bins", o.bins);
    result_attr_f64(&r, "/", "temperature_min", UQ_T_MIN);
    result_attr_f64(&r, "/", "temperature_max", UQ_T_MAX);
    result_attr_str(&r, "/", "temperature", "fitted on the validation split only; applied to each member's logits "
                    "before averaging probabilities: p = mean_m softmax(z_m / T)");
    double *edges = XMALLOC_N((size_t)o.bins + 1, sizeof(double));
    for (long k = 0; k <= o.bins; k++) edges[k] = (double)k / o.bins;
    size_t de[1] = { (size_t)o.bins + 1 };
    resultio_f64(&r, "/reliability_edges", 1, de, edges, "(bin edge)", "confidence bin edges: bin b is (e_b, e_b+1], "
                 "bin 0 also holds 0");
    write_group(&r, "/generated", &gen, sizes);
    result_attr_str(&r, "/generated", "label", "generated");
    if (o.baseline) {
        write_group(&r, "/baseline", &base, sizes);
        result_attr_str(&r, "/baseline", "label", "deep ensemble");
    }
    result_close(&r);

    printf("# hyperanalyze calibrate: %s (step %lld)%s%s, ensembles of 1 .. %ld networks; T fitted on %d val "
           "images, scored on %d test images, %.1fs\n", o.in, (long long)s.step, o.baseline ? " and baseline " : "",
           o.baseline ? o.baseline : "", o.M, dv.n, dt.n, secs);
    printf("# T divides each member's logits before averaging; 'single' = every network alone, one T shared, "
           "mean over the networks\n");
    printf("# results: %s\n", o.out);
    printf("set,size,temperature,accuracy_before,nll_before,ece_before,accuracy_after,nll_after,ece_after\n");
    print_rows("generated", &gen, sizes);
    if (o.baseline) { print_rows("baseline", &base, sizes); calib_free(&base); sampleset_close(&b); }
    calib_free(&gen);
    sampleset_close(&s);
    mnist_free(&mv);
    mnist_free(&mt);
    free(edges);
    return 0;
}
