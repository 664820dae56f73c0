// hyperanalyze diversity: function-space diversity of M networks of a sample set (and of a deep
// ensemble, --baseline): for every pair, the fraction of images on which the two disagree, the mean
// KL divergence both ways, and the disagreement normalized by the pair's error against that error
// (the diversity plot of Fort et al. 2019, "Deep Ensembles: a loss landscape perspective").
// The computation is diversity_compute (analysis/uncert.c, tested in tests/test_metrics.c); this
// file reads the sets, evaluates the networks and writes the result.
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "resultio.h"
#include "sample.h"
#include "uncert.h"
#include "uncert_eval.h"

#define CMD "diversity"

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze diversity SAMPLES.h5 [--baseline DEEP.h5] [options]\n"
        "\n"
        "Function-space diversity of the first M networks of the set (and of a deep ensemble made by\n"
        "hyperanalyze baseline): for every pair i < j, the fraction of images where their predictions\n"
        "(argmax) differ, the mean KL(p_i || p_j) and KL(p_j || p_i) (nats) and their mean (kl_sym), and\n"
        "the disagreement divided by the pair's mean error (e_i + e_j)/2 (Fort et al. 2019's diversity\n"
        "plot: normalized disagreement against error). Writes FILE.h5 (/generated and /baseline groups:\n"
        "pair_i, pair_j, disagreement, kl_ij, kl_ji, kl_sym, pair_error, normalized_disagreement (P),\n"
        "error (M)) and prints one CSV summary row per set.\n"
        "Plot: python3 analysis/plot_diversity.py FILE.h5 -o diversity.png\n"
        "\n"
        "options:\n"
        "  --baseline DEEP.h5 a second sample set (the deep ensemble), same target architecture\n"
        "  --members M        networks of each set, 2 .. 4096 (default 10; M (M-1)/2 pairs)\n"
        "  --split val|test   images (default val)\n"
        "  --images N         the first N images of the split (default 1000)\n"
        "  --out FILE.h5      result file (default SAMPLES_diversity.h5 beside the set)\n"
        "  --data DIR         MNIST directory\n"
        "  --job JOB.json     fail unless the sets hold networks of this job's target architecture\n"
        "  --threads N        OpenMP threads\n");
}

typedef struct {
    const char *in, *baseline, *split, *out, *data, *job;
    long M, images, threads;
} DivOpts;

static int parse(int argc, char **argv, DivOpts *o) {
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return -1; }
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--baseline")) { o->baseline = v; i++; }
        else if (!strcmp(a, "--split")) { o->split = v; i++; }
        else if (!strcmp(a, "--out")) { o->out = v; i++; }
        else if (!strcmp(a, "--data")) { o->data = v; i++; }
        else if (!strcmp(a, "--job")) { o->job = v; i++; }
        else if (!strcmp(a, "--members")) { if ((rc = an_long(CMD, a, v, 2, 4096, &o->M))) return rc; i++; }
        else if (!strcmp(a, "--images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 24, &o->images))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &o->threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (o->in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", o->in, a);
        else o->in = a;
    }
    if (!o->in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze diversity SAMPLES.h5");
    return 0;
}

// Diversity of networks [0, M) of s on the images of d.
static void set_diversity(const SampleSet *s, int M, const Dataset *d, const char *label, DiversityOut *out) {
    const int C = s->arch.classes;
    const size_t nl = XMUL(XMUL(M, d->n, "networks x images"), C, "logits");
    HT_CHECK_MEMORY(nl * sizeof(float), "the logits of %d networks on %d images", M, d->n);
    float *logits = XALLOC_FLOATS(nl);
    uq_logits(s, 0, M, d->images, d->n, logits, label);
    const DiversityIn in = { logits, d->labels, M, d->n, C };
    diversity_compute(&in, out);
    free(logits);
}

static void write_group(ResultFile *r, const char *g, const DiversityOut *o) {
    char name[96];
    size_t dp[1] = { (size_t)o->P }, dm[1] = { (size_t)o->M };
#define DS(field, axes, meaning) \
    XSNPRINTF(name, sizeof(name), "%s/%s", g, #field); \
    resultio_f64(r, name, 1, dp, o->field, axes, meaning);
    XSNPRINTF(name, sizeof(name), "%s/pair_i", g);
    resultio_i64(r, name, 1, dp, o->pair_i, "(pair)", "index i of the pair's first network (pairs i < j in order)");
    XSNPRINTF(name, sizeof(name), "%s/pair_j", g);
    resultio_i64(r, name, 1, dp, o->pair_j, "(pair)", "index j of the pair's second network");
    DS(disagreement, "(pair)", "fraction of images where argmax p_i != argmax p_j")
    DS(kl_ij, "(pair)", "mean over images of KL(p_i || p_j) = sum_c p_i,c log(p_i,c / p_j,c), nats")
    DS(kl_ji, "(pair)", "mean over images of KL(p_j || p_i), nats")
    DS(kl_sym, "(pair)", "(kl_ij + kl_ji) / 2, nats")
    DS(pair_error, "(pair)", "(e_i + e_j) / 2, e = 1 - accuracy")
    DS(norm_disagreement, "(pair)", "disagreement / pair_error (Fort et al. 2019); NaN where pair_error = 0")
#undef DS
    XSNPRINTF(name, sizeof(name), "%s/error", g);
    resultio_f64(r, name, 1, dm, o->error, "(network)", "1 - accuracy of each network");
    result_attr_i64(r, g, "members", o->M);
    result_attr_f64(r, g, "error_mean", o->err_mean);
    result_attr_f64(r, g, "disagreement_mean", o->dis_mean);
    result_attr_f64(r, g, "kl_sym_mean", o->kl_mean);
    result_attr_f64(r, g, "norm_disagreement_mean", o->ndis_mean);
    result_attr_f64(r, g, "ensemble_error", o->ens_error);
}

static void print_row(const char *set, const DiversityOut *o) {
    printf("%s,%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f\n", set, o->M, o->err_mean, o->err_std, o->dis_mean,
           o->dis_std, o->kl_mean, o->kl_std, o->ndis_mean, o->ndis_std, o->ens_error);
}

int cmd_diversity(int argc, char **argv) {
    DivOpts o = { .split = "val", .M = 10, .images = 1000 };
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, o.split, o.threads, o.in, out_buf, sizeof(out_buf), &o.out))) return rc;

    SampleSet s, b;
    char sha_s[65], sha_b[65];
    uq_open_sets(o.in, o.baseline, o.job, o.M, &s, &b, sha_s, sha_b);
    Mnist mn;
    Dataset d;
    sample_load_split(&s.job, o.data, o.split, (int)o.images, &mn, &d);
    const double t0 = ht_now();
    DiversityOut gen, base;
    set_diversity(&s, (int)o.M, &d, "diversity (generated)", &gen);
    if (o.baseline) set_diversity(&b, (int)o.M, &d, "diversity (baseline)", &base);
    const double secs = ht_now() - t0;

    ResultFile r;
    result_create(&r, o.out);
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "samples", o.in, sha_s);
    if (o.baseline) resultio_input(&r, "baseline", o.baseline, sha_b);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_str(&r, "/", "split", o.split);
    result_attr_i64(&r, "/", "images", d.n);
    result_attr_i64(&r, "/", "members", o.M);
    result_attr_str(&r, "/", "kl", "both directions (kl_ij, kl_ji) and their mean (kl_sym), natural log, from "
                    "log-softmax of the logits");
    write_group(&r, "/generated", &gen);
    result_attr_str(&r, "/generated", "label", "generated");
    if (o.baseline) {
        write_group(&r, "/baseline", &base);
        result_attr_str(&r, "/baseline", "label", "deep ensemble");
    }
    result_close(&r);

    printf("# hyperanalyze diversity: %s (step %lld)%s%s, %ld networks each on %d %s images, %.1fs\n", o.in,
           (long long)s.step, o.baseline ? " and baseline " : "", o.baseline ? o.baseline : "", o.M, d.n, o.split,
           secs);
    printf("# per pair i<j: disagreement = fraction of images with different argmax; kl_sym = (KL(p_i||p_j) + "
           "KL(p_j||p_i))/2; norm_disagreement = disagreement / ((e_i + e_j)/2)\n");
    printf("# results: %s\n", o.out);
    printf("set,members,error_mean,error_std,disagreement_mean,disagreement_std,kl_sym_mean,kl_sym_std,"
           "norm_disagreement_mean,norm_disagreement_std,ensemble_error\n");
    print_row("generated", &gen);
    if (o.baseline) { print_row("baseline", &base); diversity_free(&base); sampleset_close(&b); }
    diversity_free(&gen);
    sampleset_close(&s);
    mnist_free(&mn);
    return 0;
}
