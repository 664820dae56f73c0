// hyperanalyze adversarial: targeted fast gradient sign attacks against generated networks and
// ensembles of them (the paper's Fig. 8, §4.2.3).
//
// For image i (the first N of the split) a target class t_i != y_i is drawn (Philox keyed by
// (--seed, stream 202, i), uniform over the other classes). For each perturbation size
// eps_k = k * step, k = 0 .. floor(eps_max / step) (default 0 .. 0.24 in steps of 2/255):
//   transfer (the paper): x' = clip(x - eps * sign(d CE_source(t) / dx), 0, 1) crafted on a source
//     network (networks [0, S) of the set), tested on that network (the dashed lines of Fig. 8) and
//     on the mean probability of an ensemble of M other networks (networks [S, S + M); the solid
//     lines), and the mean over those members of each member's own success;
//   white-box: the same step on the gradient of the ensemble's loss -log(mean_m p_m(t | x)), tested
//     on that ensemble.
// Success = the prediction (argmax, ties to the lowest class) is the target class.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "cmds_samples.h"
#include "common.h"
#include "metrics.h"
#include "rng.h"
#include "sample.h"
#include "target.h"

#define CMD "adversarial"
#define CHUNK 50
#define ADV_RNG_STREAM 202u

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze adversarial SAMPLES.h5 [options]\n"
        "\n"
        "Targeted fast gradient sign attacks (the paper's Fig. 8). Each image gets a random target\n"
        "class t != label; x' = clip(x - eps * sign(d CE(t) / dx), 0, 1) for eps = 0, step, ..., eps-max.\n"
        "Transfer: crafted on a source network (networks 0..S-1 of the set), tested on it and on the\n"
        "mean probability of an ensemble of M other networks (networks S..S+M-1). White-box: crafted on\n"
        "the gradient of the ensemble's -log mean_m p_m(t | x). Success: prediction == t.\n"
        "Writes FILE.h5 (/eps, /labels, /targets, /transfer/{single,ensemble,member}_success (S, E),\n"
        "/transfer/{single,ensemble}_accuracy (S, E), /whitebox/{ensemble,member}_success (E),\n"
        "/whitebox/ensemble_accuracy (E)) and prints success vs eps as CSV.\n"
        "Plot: python3 analysis/plot_adversarial.py FILE.h5 [BASELINE.h5 ...] -o fig8.png\n"
        "\n"
        "options:\n"
        "  --n-images N       the first N images of the split (default 100)\n"
        "  --split val|test   images (default val, as the paper)\n"
        "  --sources S        source networks of the transfer attack (default 1)\n"
        "  --members M        ensemble size (default 100); the set needs S + M networks\n"
        "  --eps-max E        largest perturbation (default 0.24)\n"
        "  --eps-step E       step of the perturbation sizes (default 2/255)\n"
        "  --no-whitebox      skip the attack crafted on the ensemble\n"
        "  --seed S           seed of the target classes (default 1)\n"
        "  --out FILE.h5      result file (default SAMPLES_adversarial.h5 beside the set)\n"
        "  --data DIR         MNIST directory\n"
        "  --job JOB.json     fail unless the set holds networks of this job's target architecture\n"
        "  --threads N        OpenMP threads\n");
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !(v >= lo && v <= hi))
        return ha_usage_error(CMD, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s ? s : "");
    *out = v;
    return 0;
}

// Argmax of the mean of probs over networks [0, M) (probs (M, n, C)) for image i.
static int mean_argmax(const float *probs, int M, int n, int C, int i, double *mean) {
    for (int c = 0; c < C; c++) mean[c] = 0.0;
    for (int m = 0; m < M; m++)
        for (int c = 0; c < C; c++) mean[c] += probs[((size_t)m * n + i) * C + c];
    return metric_argmax(mean, C);
}

typedef struct {
    const TargetArch *a;
    TargetNet *tn;
    int M, C, in_size;
    const float *members;   // (M, n_weights)
    float *probs;           // (M, CHUNK, C)
    double *mean;           // (C)
} Ens;

// Ensemble on images adv (n, in_size): adds mean-probability successes/corrects and the members'
// mean success (fractions of one member) for each image to the three counters.
static void ens_eval(Ens *e, int n, const float *adv, const uint8_t *labels, const int *targets,
                     double *succ, double *acc, double *member_succ) {
    target_forward(e->tn, e->M, e->members, n, adv, 0, e->probs);
    for (int i = 0; i < n; i++) {
        const int p = mean_argmax(e->probs, e->M, n, e->C, i, e->mean);
        *succ += p == targets[i];
        *acc += p == labels[i];
        int hits = 0;
        for (int m = 0; m < e->M; m++) hits += metric_argmax_f(e->probs + ((size_t)m * n + i) * e->C, e->C) == targets[i];
        *member_succ += (double)hits / e->M;
    }
}

// Gradient of -log(mean_m p_m(t_i | x_i)) w.r.t. the images x (n, in_size) into grad.
static void ens_grad(Ens *e, InputGrad *ig, int n_threads, int n, const float *x, const int *targets,
                     float *member_grads, float *grad) {
    const int M = e->M, C = e->C;
    const size_t W = e->a->n_weights, isz = (size_t)n * e->in_size;
    target_forward(e->tn, M, e->members, n, x, 0, e->probs);
    double *pbar_t = XMALLOC((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int m = 0; m < M; m++) s += e->probs[((size_t)m * n + i) * C + targets[i]];
        pbar_t[i] = s / M;
    }
#pragma omp parallel num_threads(n_threads)
    {
        omp_set_num_threads(1);
        InputGrad *g = &ig[omp_get_thread_num()];
        float *dl = XALLOC_FLOATS((size_t)n * C);
#pragma omp for schedule(static)
        for (int m = 0; m < M; m++) {
            const float *p = e->probs + (size_t)m * n * C;
            for (int i = 0; i < n; i++) {
                const double w = ensemble_target_weight(p[(size_t)i * C + targets[i]], pbar_t[i], M);
                for (int c = 0; c < C; c++)
                    dl[(size_t)i * C + c] = (float)(w * (p[(size_t)i * C + c] - (c == targets[i])));
            }
            input_grad_forward(g, e->members + (size_t)m * W, n, x, NULL);
            input_grad_backward(g, e->members + (size_t)m * W, n, x, dl, member_grads + (size_t)m * isz);
        }
        free(dl);
    }
    // summed in member order: the result does not depend on the number of threads
    memset(grad, 0, isz * sizeof(float));
    for (int m = 0; m < M; m++)
        for (size_t j = 0; j < isz; j++) grad[j] += member_grads[(size_t)m * isz + j];
    free(pbar_t);
}

int cmd_adversarial(int argc, char **argv) {
    const char *in = NULL, *split = "val", *out = NULL, *data = NULL, *job = NULL;
    long n_images = 100, S = 1, M = 100, threads = 0, seed = 1;
    double eps_max = 0.24, eps_step = 2.0 / 255.0;
    int whitebox = 1, rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--no-whitebox")) whitebox = 0;
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--split")) { split = v; i++; }
        else if (!strcmp(a, "--out")) { out = v; i++; }
        else if (!strcmp(a, "--data")) { data = v; i++; }
        else if (!strcmp(a, "--job")) { job = v; i++; }
        else if (!strcmp(a, "--n-images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 30, &n_images))) return rc; i++; }
        else if (!strcmp(a, "--sources")) { if ((rc = an_long(CMD, a, v, 1, 1L << 20, &S))) return rc; i++; }
        else if (!strcmp(a, "--members")) { if ((rc = an_long(CMD, a, v, 1, 1L << 20, &M))) return rc; i++; }
        else if (!strcmp(a, "--seed")) { if ((rc = an_long(CMD, a, v, 0, 1L << 62, &seed))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &threads))) return rc; i++; }
        else if (!strcmp(a, "--eps-max")) { if ((rc = parse_double(a, v, 0.0, 1.0, &eps_max))) return rc; i++; }
        else if (!strcmp(a, "--eps-step")) { if ((rc = parse_double(a, v, 1e-6, 1.0, &eps_step))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", in, a);
        else in = a;
    }
    if (!in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze adversarial SAMPLES.h5");
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, split, threads, in, out_buf, sizeof(out_buf), &out))) return rc;
    const int E = (int)floor(eps_max / eps_step + 1e-9) + 1;

    TargetArch expect;
    SampleSet s;
    sampleset_open(&s, in, an_expected_arch(job, &expect));
    char what[96];
    XSNPRINTF(what, sizeof(what), "--sources %ld + --members %ld", S, M);
    sampleset_require(&s, S + M, what);
    Mnist mn;
    Dataset d;
    sample_load_split(&s.job, data, split, (int)n_images, &mn, &d);
    const TargetArch *a = &s.arch;
    const int C = a->classes, n = d.n, isz = a->in_size;
    const size_t W = a->n_weights;
    HT_CHECK(C >= 2, "adversarial: the target network has %d classes; targeted attacks need 2 or more", C);

    int *targets = XMALLOC((size_t)n * sizeof(int));
    int64_t *t64 = XMALLOC((size_t)n * sizeof(int64_t)), *l64 = XMALLOC((size_t)n * sizeof(int64_t));
    for (int i = 0; i < n; i++) {
        int t = (int)rng_below((uint64_t)seed, ADV_RNG_STREAM, (uint32_t)i, 0, 0, (uint32_t)(C - 1));
        if (t >= d.labels[i]) t++;
        targets[i] = t;
        t64[i] = t;
        l64[i] = d.labels[i];
    }
    double *eps = XMALLOC((size_t)E * sizeof(double));
    for (int k = 0; k < E; k++) eps[k] = k * eps_step;

    const size_t MW = XMUL(M, W, "adversarial: --members %ld x %zu weights", M, (size_t)W);
    HT_CHECK_MEMORY(XMUL(MW, sizeof(float), "adversarial: members"),
                    "adversarial: --members %ld networks of %zu weights", M, (size_t)W);
    float *src = XALLOC_FLOATS(W), *members = XALLOC_FLOATS(MW);
    sampleset_read(&s, S, (int)M, members);
    const int nt = omp_get_max_threads();
    TargetNet tn;
    target_init(&tn, a, CHUNK, 0);
    InputGrad *ig = XMALLOC((size_t)nt * sizeof(InputGrad));
    for (int t = 0; t < nt; t++) input_grad_init(&ig[t], a, CHUNK);
    Ens e = { a, &tn, (int)M, C, isz, members, XALLOC_FLOATS((size_t)M * CHUNK * C), XMALLOC((size_t)C * sizeof(double)) };
    float *grad = XALLOC_FLOATS((size_t)CHUNK * isz), *adv = XALLOC_FLOATS((size_t)CHUNK * isz);
    float *sprobs = XALLOC_FLOATS((size_t)CHUNK * C);
    double *single_s = XCALLOC((size_t)S * E, sizeof(double)), *single_a = XCALLOC((size_t)S * E, sizeof(double));
    double *ens_s = XCALLOC((size_t)S * E, sizeof(double)), *ens_a = XCALLOC((size_t)S * E, sizeof(double));
    double *mem_s = XCALLOC((size_t)S * E, sizeof(double));
    const double t0 = ht_now();
    double t_last = t0;
    uint8_t *tgt8 = XMALLOC((size_t)n);
    for (int i = 0; i < n; i++) tgt8[i] = (uint8_t)targets[i];

    // transfer: crafted on each source network
    for (long sidx = 0; sidx < S; sidx++) {
        sampleset_read(&s, sidx, 1, src);
        for (int i0 = 0; i0 < n; i0 += CHUNK) {
            const int nc = n - i0 < CHUNK ? n - i0 : CHUNK;
            const float *x = d.images + (size_t)i0 * isz;
            input_grad_ce(&ig[0], src, nc, x, tgt8 + i0, NULL, grad);
            for (int k = 0; k < E; k++) {
                fgsm_targeted((size_t)nc * isz, x, grad, (float)eps[k], adv);
                target_forward(&tn, 1, src, nc, adv, 0, sprobs);
                for (int i = 0; i < nc; i++) {
                    const int p = metric_argmax_f(sprobs + (size_t)i * C, C);
                    single_s[sidx * E + k] += p == targets[i0 + i];
                    single_a[sidx * E + k] += p == d.labels[i0 + i];
                }
                ens_eval(&e, nc, adv, d.labels + i0, targets + i0, &ens_s[sidx * E + k], &ens_a[sidx * E + k],
                         &mem_s[sidx * E + k]);
            }
            if (ht_now() - t_last > 10.0) {
                fprintf(stderr, "adversarial: transfer, source %ld/%ld, %d/%d images\n", sidx + 1, S, i0 + nc, n);
                t_last = ht_now();
            }
        }
    }
    for (size_t j = 0; j < (size_t)S * E; j++) {
        single_s[j] /= n; single_a[j] /= n; ens_s[j] /= n; ens_a[j] /= n; mem_s[j] /= n;
    }

    // white-box: crafted on the ensemble itself
    double *wb_s = XCALLOC((size_t)E, sizeof(double)), *wb_a = XCALLOC((size_t)E, sizeof(double));
    double *wb_m = XCALLOC((size_t)E, sizeof(double));
    if (whitebox) {
        float *mg = XALLOC_FLOATS((size_t)M * CHUNK * isz);
        for (int i0 = 0; i0 < n; i0 += CHUNK) {
            const int nc = n - i0 < CHUNK ? n - i0 : CHUNK;
            const float *x = d.images + (size_t)i0 * isz;
            ens_grad(&e, ig, nt, nc, x, targets + i0, mg, grad);
            for (int k = 0; k < E; k++) {
                fgsm_targeted((size_t)nc * isz, x, grad, (float)eps[k], adv);
                ens_eval(&e, nc, adv, d.labels + i0, targets + i0, &wb_s[k], &wb_a[k], &wb_m[k]);
            }
            if (ht_now() - t_last > 10.0) {
                fprintf(stderr, "adversarial: white-box, %d/%d images\n", i0 + nc, n);
                t_last = ht_now();
            }
        }
        free(mg);
        for (int k = 0; k < E; k++) { wb_s[k] /= n; wb_a[k] /= n; wb_m[k] /= n; }
    }
    const double secs = ht_now() - t0;

    ResultFile r;
    result_create(&r, out);
    size_t de[1] = { (size_t)E }, dn[1] = { (size_t)n }, dse[2] = { (size_t)S, (size_t)E };
    result_f64(&r, "/eps", 1, de, eps);
    result_i64(&r, "/labels", 1, dn, l64);
    result_i64(&r, "/targets", 1, dn, t64);
    result_f64(&r, "/transfer/single_success", 2, dse, single_s);
    result_f64(&r, "/transfer/single_accuracy", 2, dse, single_a);
    result_f64(&r, "/transfer/ensemble_success", 2, dse, ens_s);
    result_f64(&r, "/transfer/ensemble_accuracy", 2, dse, ens_a);
    result_f64(&r, "/transfer/member_success", 2, dse, mem_s);
    if (whitebox) {
        result_f64(&r, "/whitebox/ensemble_success", 1, de, wb_s);
        result_f64(&r, "/whitebox/ensemble_accuracy", 1, de, wb_a);
        result_f64(&r, "/whitebox/member_success", 1, de, wb_m);
    }
    result_attr_str(&r, "/", "command", "hyperanalyze adversarial");
    result_attr_str(&r, "/", "samples", in);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_str(&r, "/", "split", split);
    result_attr_i64(&r, "/", "images", n);
    result_attr_i64(&r, "/", "sources", S);
    result_attr_i64(&r, "/", "members", M);
    result_attr_i64(&r, "/", "seed", seed);
    result_attr_f64(&r, "/", "eps_step", eps_step);
    result_attr_i64(&r, "/", "whitebox", whitebox);
    result_attr_str(&r, "/", "attack", "targeted fast gradient sign: x' = clip(x - eps sign(dCE(target)/dx), 0, 1)");
    result_close(&r);

    printf("# hyperanalyze adversarial: %s (step %lld), %d %s images, %ld source network(s), ensemble of %ld, "
           "%d eps values, %.1fs\n", in, (long long)s.step, n, split, S, M, E, secs);
    printf("# transfer: crafted on the source network, tested on it (single) and on the ensemble "
           "(mean probability; member = mean of the members' own success)%s\n",
           whitebox ? "; whitebox: crafted on the ensemble's mean-probability loss" : "");
    printf("# results: %s\n", out);
    printf("eps,eps_x255,single_success,ensemble_success,member_success,%ssingle_accuracy,ensemble_accuracy\n",
           whitebox ? "whitebox_ensemble_success," : "");
    for (int k = 0; k < E; k++) {
        double ss = 0, es = 0, ms = 0, sa = 0, ea = 0;
        for (long q = 0; q < S; q++) {
            ss += single_s[q * E + k]; es += ens_s[q * E + k]; ms += mem_s[q * E + k];
            sa += single_a[q * E + k]; ea += ens_a[q * E + k];
        }
        printf("%.6f,%.2f,%.6f,%.6f,%.6f,", eps[k], eps[k] * 255.0, ss / S, es / S, ms / S);
        if (whitebox) printf("%.6f,", wb_s[k]);
        printf("%.6f,%.6f\n", sa / S, ea / S);
    }

    sampleset_close(&s);
    target_free(&tn);
    for (int t = 0; t < nt; t++) input_grad_free(&ig[t]);
    mnist_free(&mn);
    free(ig); free(targets); free(t64); free(l64); free(eps); free(src); free(members); free(e.probs); free(e.mean);
    free(grad); free(adv); free(sprobs); free(single_s); free(single_a); free(ens_s); free(ens_a); free(mem_s);
    free(wb_s); free(wb_a); free(wb_m); free(tgt8);
    return 0;
}
