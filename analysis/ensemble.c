// hyperanalyze ensemble: K ensembles of M networks of a sample set (the paper: 20 x 200) combined
// by majority vote and by mean probability, with NLL, Brier score, ECE (15 bins), AUROC of the
// confidence as a detector of the ensemble's own errors, and the curve of all of these against the
// ensemble size 1, 2, 4, ..., M (with reliability-diagram data for every size).
//
// Ensemble j is networks [j*M, (j+1)*M) of the set (the networks are i.i.d. draws, so contiguous
// ranges are as good as random ones); the ensemble of size s is its first s members. Networks are
// read in index order, so one ensemble's votes and probability sums are the only state.
// This file is the command (options, reading and running the networks, the result file, stdout);
// the ensembles and their metrics are analysis/ensemble_core.c (tested in tests/test_analysis.c).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "ensemble_core.h"
#include "metrics.h"
#include "resultio.h"
#include "sample.h"
#include "target.h"

#define CMD "ensemble"
#define BLOCK 16

// What each metric of the curve is, for the "meaning" attribute of its datasets.
static const char *const METRIC_MEANING[ENS_N_METRICS] = {
    "accuracy of the majority vote of the members' argmax predictions (ties: lowest class)",
    "accuracy of the argmax of the members' mean probability",
    "mean negative log-likelihood -log(pbar_label + 1e-30) of the mean probability (nats)",
    "Brier score sum_c (pbar_c - [c = y])^2 of the mean probability, mean over images, in [0, 2]",
    "expected calibration error of the mean probability: equal-width confidence bins, sum_b n_b/n |acc_b - conf_b|",
    "AUROC of the confidence max_c pbar_c as a detector of the ensemble's own correct predictions (NaN if all right or all wrong)"};

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze ensemble SAMPLES.h5 [options]\n"
        "\n"
        "K ensembles of M networks (ensemble j = networks [jM, (j+1)M) of the set), each combined by\n"
        "majority vote (ties: lowest class) and by mean probability. For every ensemble size\n"
        "s = 1, 2, 4, ..., M (and M): majority-vote accuracy, mean-probability accuracy, NLL, Brier\n"
        "score, expected calibration error and AUROC (confidence as a detector of the ensemble's own\n"
        "errors) of the mean probability, per ensemble; reliability-diagram data pooled over the K\n"
        "ensembles. Writes FILE.h5 (/sizes, /curve/<metric> (S, K), /ensembles/<metric> (K),\n"
        "/reliability/{count,confidence,accuracy} (S, bins), /networks/{accuracy,nll} (K*M)) and prints\n"
        "the curve as CSV (size, then mean and std over the K ensembles of each metric).\n"
        "Plot: python3 analysis/plot_ensemble.py FILE.h5 -o ensemble.png\n"
        "\n"
        "options:\n"
        "  --k K              number of ensembles (default 20)\n"
        "  --m M              networks per ensemble (default 200); the set needs K*M networks\n"
        "  --split val|test   images (default val)\n"
        "  --images N         the first N images of the split (default all)\n"
        "  --bins B           ECE / reliability bins (default 15)\n"
        "  --out FILE.h5      result file (default SAMPLES_ensemble.h5 beside the set)\n"
        "  --data DIR         MNIST directory\n"
        "  --job JOB.json     fail unless the set holds networks of this job's target architecture\n"
        "  --threads N        OpenMP threads\n");
}

// Runs networks [0, K*M) of the set on d, BLOCK at a time, in order, into e; per-network accuracy
// and NLL into net_acc, net_nll (K*M). Progress on stderr every 10 s.
static void eval_networks(const SampleSet *s, const Dataset *d, EnsCompute *e, double *net_acc, double *net_nll) {
    const long long total = (long long)e->K * e->M;
    const size_t W = s->arch.n_weights, nc = (size_t)d->n * e->C;
    TargetNet tn;
    target_init(&tn, &s->arch, 50, 0);
    float *theta = XALLOC_FLOATS((size_t)BLOCK * W), *probs = XALLOC_FLOATS((size_t)BLOCK * nc);
    double t_last = ht_now();
    for (long long b0 = 0; b0 < total; b0 += BLOCK) {
        const int nb = total - b0 < BLOCK ? (int)(total - b0) : BLOCK;
        sampleset_read(s, b0, nb, theta);
        sample_eval(&tn, nb, theta, d, probs, net_acc + b0, net_nll + b0);
        for (int k = 0; k < nb; k++) ens_add(e, b0 + k, probs + (size_t)k * nc);
        if (ht_now() - t_last > 10.0) {
            fprintf(stderr, "ensemble: %lld/%lld networks\n", b0 + nb, total);
            t_last = ht_now();
        }
    }
    target_free(&tn);
    free(theta); free(probs);
}

static void write_result(const char *out, int argc, char **argv, const char *in, const char *sha,
                         const SampleSet *s, const char *split, int n_img, const EnsCompute *e,
                         const double *net_acc, const double *net_nll, double single_mean, double single_std,
                         double mv_mean, double mp_mean) {
    const int S = e->S, K = e->K, bins = e->bins;
    const long long total = (long long)K * e->M;
    ResultFile r;
    result_create(&r, out);
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "samples", in, sha);
    size_t dims[2] = { (size_t)S, 0 };
    resultio_i64(&r, "/sizes", 1, dims, e->sizes, "(size)",
                 "ensemble sizes s of the curve: 1, 2, 4, ... < M, then M (an ensemble of size s is the first s members)");
    char name[64], meaning[320];
    dims[1] = (size_t)K;
    for (int q = 0; q < ENS_N_METRICS; q++) {
        XSNPRINTF(name, sizeof(name), "/curve/%s", ENS_METRIC_NAMES[q]);
        resultio_f64(&r, name, 2, dims, e->curve + (size_t)q * S * K, "(size, ensemble)", METRIC_MEANING[q]);
        XSNPRINTF(name, sizeof(name), "/ensembles/%s", ENS_METRIC_NAMES[q]);
        XSNPRINTF(meaning, sizeof(meaning), "%s, of the full ensemble of M members", METRIC_MEANING[q]);
        size_t dk[1] = { (size_t)K };
        resultio_f64(&r, name, 1, dk, e->curve + ((size_t)q * S + S - 1) * K, "(ensemble)", meaning);
    }
    double *rc_conf = XMALLOC((size_t)S * bins * sizeof(double)), *rc_acc = XMALLOC((size_t)S * bins * sizeof(double));
    ens_reliability(e, rc_conf, rc_acc);
    dims[1] = (size_t)bins;
    resultio_f64(&r, "/reliability/count", 2, dims, e->rel, "(size, bin)",
                 "images whose mean-probability confidence falls in the bin, summed over the K ensembles");
    resultio_f64(&r, "/reliability/confidence", 2, dims, rc_conf, "(size, bin)",
                 "mean confidence max_c pbar_c of the bin's images (NaN: empty bin)");
    resultio_f64(&r, "/reliability/accuracy", 2, dims, rc_acc, "(size, bin)",
                 "fraction of the bin's images the mean probability classifies right (NaN: empty bin)");
    double *edges = XMALLOC((size_t)(bins + 1) * sizeof(double));
    for (int b = 0; b <= bins; b++) edges[b] = (double)b / bins;
    size_t de[1] = { (size_t)bins + 1 };
    resultio_f64(&r, "/reliability/edges", 1, de, edges, "(bin edge)",
                 "confidence at the bin edges b/bins; bin b holds (b/bins, (b+1)/bins] (bin 0 also 0)");
    size_t dn[1] = { (size_t)total };
    resultio_f64(&r, "/networks/accuracy", 1, dn, net_acc, "(network)",
                 "accuracy of network g of the set on the images (argmax, ties to the lowest class); ensemble j = networks [jM, (j+1)M)");
    resultio_f64(&r, "/networks/nll", 1, dn, net_nll, "(network)",
                 "mean cross-entropy -log(p_label + 1e-30) of network g (nats)");
    result_attr_str(&r, "/", "checkpoint", s->checkpoint);
    result_attr_i64(&r, "/", "step", s->step);
    result_attr_str(&r, "/", "split", split);
    result_attr_i64(&r, "/", "images", n_img);
    result_attr_i64(&r, "/", "k", K);
    result_attr_i64(&r, "/", "m", e->M);
    result_attr_i64(&r, "/", "bins", bins);
    result_attr_f64(&r, "/", "single_accuracy_mean", single_mean);
    result_attr_f64(&r, "/", "single_accuracy_std", single_std);
    result_attr_f64(&r, "/", "majority_acc_mean", mv_mean);
    result_attr_f64(&r, "/", "mean_prob_acc_mean", mp_mean);
    result_close(&r);
    free(rc_conf); free(rc_acc); free(edges);
}

int cmd_ensemble(int argc, char **argv) {
    const char *in = NULL, *split = "val", *out = NULL, *data = NULL, *job = NULL;
    long K = 20, M = 200, images = 0, bins = 15, threads = 0;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--split")) { split = v; i++; }
        else if (!strcmp(a, "--out")) { out = v; i++; }
        else if (!strcmp(a, "--data")) { data = v; i++; }
        else if (!strcmp(a, "--job")) { job = v; i++; }
        else if (!strcmp(a, "--k")) { if ((rc = an_long(CMD, a, v, 1, 1L << 20, &K))) return rc; i++; }
        else if (!strcmp(a, "--m")) { if ((rc = an_long(CMD, a, v, 1, 1L << 30, &M))) return rc; i++; }
        else if (!strcmp(a, "--images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 30, &images))) return rc; i++; }
        else if (!strcmp(a, "--bins")) { if ((rc = an_long(CMD, a, v, 1, 10000, &bins))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", in, a);
        else in = a;
    }
    if (!in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze ensemble SAMPLES.h5");
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, split, threads, in, out_buf, sizeof(out_buf), &out))) return rc;

    TargetArch expect;
    SampleSet s;
    sampleset_open(&s, in, an_expected_arch(job, &expect));
    char what[96];
    XSNPRINTF(what, sizeof(what), "--k %ld x --m %ld", K, M);
    sampleset_require(&s, (long long)K * M, what);
    Mnist mn;
    Dataset d;
    sample_load_split(&s.job, data, split, (int)images, &mn, &d);
    const int C = s.arch.classes, n_img = d.n;
    EnsCompute e;
    ens_init(&e, (int)K, (int)M, n_img, C, (int)bins, d.labels);
    const int S = e.S;
    const long long total = (long long)K * M;
    double *net_acc = XMALLOC((size_t)total * sizeof(double)), *net_nll = XMALLOC((size_t)total * sizeof(double));
    const double t0 = ht_now();
    eval_networks(&s, &d, &e, net_acc, net_nll);
    const double secs = ht_now() - t0;

    double single_mean, single_std, mv_mean, mv_std, mp_mean, mp_std;
    metric_mean_std(net_acc, (int)total, &single_mean, &single_std);
    metric_mean_std(e.curve + (size_t)(S - 1) * K, (int)K, &mv_mean, &mv_std);
    metric_mean_std(e.curve + ((size_t)S + S - 1) * K, (int)K, &mp_mean, &mp_std);
    char sha[65];
    resultio_file_sha256(in, sha);
    write_result(out, argc, argv, in, sha, &s, split, n_img, &e, net_acc, net_nll, single_mean, single_std,
                 mv_mean, mp_mean);

    printf("# hyperanalyze ensemble: %s (step %lld), %ld ensembles x %ld networks on %d %s images, %.1fs\n",
           in, (long long)s.step, K, M, n_img, split, secs);
    printf("# single networks: accuracy %.6f +- %.6f (%lld networks)\n", single_mean, single_std, total);
    printf("# ensembles of %ld: majority vote %.6f +- %.6f, mean probability %.6f +- %.6f\n", M, mv_mean,
           mv_std, mp_mean, mp_std);
    printf("# results: %s\n", out);
    printf("size");
    for (int q = 0; q < ENS_N_METRICS; q++) printf(",%s_mean,%s_std", ENS_METRIC_NAMES[q], ENS_METRIC_NAMES[q]);
    printf("\n");
    for (int si = 0; si < S; si++) {
        printf("%lld", (long long)e.sizes[si]);
        for (int q = 0; q < ENS_N_METRICS; q++) {
            double mu, sd;
            metric_mean_std(e.curve + ((size_t)q * S + si) * K, (int)K, &mu, &sd);
            printf(",%.6f,%.6f", mu, sd);
        }
        printf("\n");
    }
    sampleset_close(&s);
    mnist_free(&mn);
    ens_free(&e);
    free(net_acc); free(net_nll);
    return 0;
}
