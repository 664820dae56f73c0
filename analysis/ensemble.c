// hyperanalyze ensemble: K ensembles of M networks of a sample set (the paper: 20 x 200) combined
// by majority vote and by mean probability, with NLL, Brier score, ECE (15 bins), AUROC of the
// confidence as a detector of the ensemble's own errors, and the curve of all of these against the
// ensemble size 1, 2, 4, ..., M (with reliability-diagram data for every size).
//
// Ensemble j is networks [j*M, (j+1)*M) of the set (the networks are i.i.d. draws, so contiguous
// ranges are as good as random ones); the ensemble of size s is its first s members. Networks are
// read in index order, so one ensemble's votes and probability sums are the only state.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "metrics.h"
#include "sample.h"
#include "target.h"

#define CMD "ensemble"
#define BLOCK 16
#define N_METRICS 6

static const char *const METRIC_NAMES[N_METRICS] = {"majority_acc", "mean_prob_acc", "nll", "brier", "ece",
                                                    "auroc"};

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

typedef struct {
    int n_img, C, bins;
    const uint8_t *labels;
    int *votes;           // (n_img, C) of the current ensemble
    double *psum;         // (n_img, C) probability sums
    int *pred;            // (n_img) scratch
    double *mean;         // (n_img, C) scratch
    double *conf;         // (n_img) scratch
    int *ok;              // (n_img) scratch
} EnsState;

// The metrics of the current ensemble with `size` members; pools its reliability data into
// count/conf_sum/correct_sum (bins each).
static void ensemble_metrics(EnsState *e, int size, double *out, double *count, double *conf_sum,
                             double *correct_sum) {
    const int n = e->n_img, C = e->C;
    metric_majority_vote(e->votes, n, C, e->pred);
    out[0] = metric_accuracy(e->pred, e->labels, n);
    for (size_t j = 0; j < (size_t)n * C; j++) e->mean[j] = e->psum[j] / size;
    for (int i = 0; i < n; i++) {
        const double *p = e->mean + (size_t)i * C;
        const int a = metric_argmax(p, C);
        e->pred[i] = a;
        e->conf[i] = p[a];
        e->ok[i] = a == e->labels[i];
    }
    out[1] = metric_accuracy(e->pred, e->labels, n);
    out[2] = metric_nll(e->mean, e->labels, n, C);
    out[3] = metric_brier(e->mean, e->labels, n, C);
    out[4] = metric_ece(e->mean, e->labels, n, C, e->bins, count, conf_sum, correct_sum);
    out[5] = metric_auroc(e->conf, e->ok, n);
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
    // sizes 1, 2, 4, ... < M, then M
    int S = 0;
    int64_t sizes[64];
    for (long sz = 1; sz < M; sz *= 2) sizes[S++] = sz;
    sizes[S++] = M;

    Mnist mn;
    Dataset d;
    sample_load_split(&s.job, data, split, (int)images, &mn, &d);
    const int C = s.arch.classes, n_img = d.n;
    const size_t W = s.arch.n_weights, nc = (size_t)n_img * C;
    EnsState e = { n_img, C, (int)bins, d.labels, XCALLOC(nc, sizeof(int)), XCALLOC(nc, sizeof(double)),
                   XCALLOC((size_t)n_img, sizeof(int)), XCALLOC(nc, sizeof(double)),
                   XCALLOC((size_t)n_img, sizeof(double)), XCALLOC((size_t)n_img, sizeof(int)) };
    double *curve = XCALLOC((size_t)N_METRICS * S * K, sizeof(double));   // (metric, size, ensemble)
    double *rel = XCALLOC((size_t)3 * S * bins, sizeof(double));          // (count|conf|correct, size, bin)
    const long long total = (long long)K * M;
    double *net_acc = XMALLOC((size_t)total * sizeof(double)), *net_nll = XMALLOC((size_t)total * sizeof(double));
    TargetNet tn;
    target_init(&tn, &s.arch, 50, 0);
    float *theta = XALLOC_FLOATS((size_t)BLOCK * W), *probs = XALLOC_FLOATS((size_t)BLOCK * nc);
    const double t0 = ht_now();
    double t_last = t0;
    for (long long b0 = 0; b0 < total; b0 += BLOCK) {
        const int nb = total - b0 < BLOCK ? (int)(total - b0) : BLOCK;
        sampleset_read(&s, b0, nb, theta);
        sample_eval(&tn, nb, theta, &d, probs, net_acc + b0, net_nll + b0);
        for (int k = 0; k < nb; k++) {
            const long long g = b0 + k;
            const int j = (int)(g / M), pos = (int)(g % M) + 1;   // ensemble j, member number pos
            if (pos == 1) { memset(e.votes, 0, nc * sizeof(int)); memset(e.psum, 0, nc * sizeof(double)); }
            const float *p = probs + (size_t)k * nc;
            for (int i = 0; i < n_img; i++) {
                e.votes[(size_t)i * C + metric_argmax_f(p + (size_t)i * C, C)]++;
                for (int c = 0; c < C; c++) e.psum[(size_t)i * C + c] += p[(size_t)i * C + c];
            }
            for (int si = 0; si < S; si++)
                if (sizes[si] == pos) {
                    double m[N_METRICS];
                    ensemble_metrics(&e, pos, m, rel + (size_t)si * bins, rel + ((size_t)S + si) * bins,
                                     rel + ((size_t)2 * S + si) * bins);
                    for (int q = 0; q < N_METRICS; q++) curve[((size_t)q * S + si) * K + j] = m[q];
                }
        }
        if (ht_now() - t_last > 10.0) {
            fprintf(stderr, "ensemble: %lld/%lld networks\n", b0 + nb, total);
            t_last = ht_now();
        }
    }
    const double secs = ht_now() - t0;

    ResultFile r;
    result_create(&r, out);
    size_t dims[2] = { (size_t)S, 0 };
    result_i64(&r, "/sizes", 1, dims, sizes);
    char name[64];
    dims[1] = (size_t)K;
    for (int q = 0; q < N_METRICS; q++) {
        XSNPRINTF(name, sizeof(name), "/curve/%s", METRIC_NAMES[q]);
        result_f64(&r, name, 2, dims, curve + (size_t)q * S * K);
        XSNPRINTF(name, sizeof(name), "/ensembles/%s", METRIC_NAMES[q]);
        size_t dk[1] = { (size_t)K };
        result_f64(&r, name, 1, dk, curve + ((size_t)q * S + S - 1) * K);
    }
    // reliability: count, mean confidence and accuracy per (size, bin); NaN in empty bins
    double *rc_conf = XMALLOC((size_t)S * bins * sizeof(double)), *rc_acc = XMALLOC((size_t)S * bins * sizeof(double));
    for (size_t x = 0; x < (size_t)S * bins; x++) {
        const double cnt = rel[x];
        rc_conf[x] = cnt > 0 ? rel[(size_t)S * bins + x] / cnt : NAN;
        rc_acc[x] = cnt > 0 ? rel[(size_t)2 * S * bins + x] / cnt : NAN;
    }
    dims[1] = (size_t)bins;
    result_f64(&r, "/reliability/count", 2, dims, rel);
    result_f64(&r, "/reliability/confidence", 2, dims, rc_conf);
    result_f64(&r, "/reliability/accuracy", 2, dims, rc_acc);
    double *edges = XMALLOC((size_t)(bins + 1) * sizeof(double));
    for (long b = 0; b <= bins; b++) edges[b] = (double)b / bins;
    size_t de[1] = { (size_t)bins + 1 };
    result_f64(&r, "/reliability/edges", 1, de, edges);
    size_t dn[1] = { (size_t)total };
    result_f64(&r, "/networks/accuracy", 1, dn, net_acc);
    result_f64(&r, "/networks/nll", 1, dn, net_nll);
    double single_mean, single_std;
    metric_mean_std(net_acc, (int)total, &single_mean, &single_std);
    result_attr_str(&r, "/", "command", "hyperanalyze ensemble");
    result_attr_str(&r, "/", "samples", in);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_str(&r, "/", "split", split);
    result_attr_i64(&r, "/", "images", n_img);
    result_attr_i64(&r, "/", "k", K);
    result_attr_i64(&r, "/", "m", M);
    result_attr_i64(&r, "/", "bins", bins);
    result_attr_f64(&r, "/", "single_accuracy_mean", single_mean);
    result_attr_f64(&r, "/", "single_accuracy_std", single_std);
    double mv_mean, mv_std, mp_mean, mp_std;
    metric_mean_std(curve + (size_t)(S - 1) * K, (int)K, &mv_mean, &mv_std);
    metric_mean_std(curve + ((size_t)S + S - 1) * K, (int)K, &mp_mean, &mp_std);
    result_attr_f64(&r, "/", "majority_acc_mean", mv_mean);
    result_attr_f64(&r, "/", "mean_prob_acc_mean", mp_mean);
    result_close(&r);

    printf("# hyperanalyze ensemble: %s (step %lld), %ld ensembles x %ld networks on %d %s images, %.1fs\n",
           in, (long long)s.step, K, M, n_img, split, secs);
    printf("# single networks: accuracy %.6f +- %.6f (%lld networks)\n", single_mean, single_std, total);
    printf("# ensembles of %ld: majority vote %.6f +- %.6f, mean probability %.6f +- %.6f\n", M, mv_mean,
           mv_std, mp_mean, mp_std);
    printf("# results: %s\n", out);
    printf("size");
    for (int q = 0; q < N_METRICS; q++) printf(",%s_mean,%s_std", METRIC_NAMES[q], METRIC_NAMES[q]);
    printf("\n");
    for (int si = 0; si < S; si++) {
        printf("%lld", (long long)sizes[si]);
        for (int q = 0; q < N_METRICS; q++) {
            double mu, sd;
            metric_mean_std(curve + ((size_t)q * S + si) * K, (int)K, &mu, &sd);
            printf(",%.6f,%.6f", mu, sd);
        }
        printf("\n");
    }
    sampleset_close(&s);
    target_free(&tn);
    mnist_free(&mn);
    free(e.votes); free(e.psum); free(e.pred); free(e.mean); free(e.conf); free(e.ok);
    free(curve); free(rel); free(rc_conf); free(rc_acc); free(edges); free(net_acc); free(net_nll);
    free(theta); free(probs);
    return 0;
}
