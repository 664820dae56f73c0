// test_analysis.c: the computations of hyperanalyze accuracy, ensemble, ood, sweep and baseline
// (analysis/*_core.c) on small synthetic inputs, each against values this file computes itself
// with plain loops (or by hand), not with the code under test:
//   - acc_summarize: mean, population std, min, max, median (odd and even n), p05/p95, loss mean
//     and std, histogram range rounded out to 0.005 (and [0, 1] with full, and equal accuracies)
//     and counts of a hand-made case
//   - ens_add over K = 2 ensembles of M = 5 random networks: sizes 1, 2, 4, 5; majority vote (ties
//     to the lowest class), mean-probability accuracy, NLL, Brier, ECE and AUROC (brute force over
//     all pairs) of every ensemble at every size; pooled reliability counts; a hand case where the
//     majority vote and the mean probability disagree
//   - ood_add: entropy, mutual information, 1 - max prob of every image and their AUROCs as outlier
//     detectors (brute force) at sizes 1, 2, 3; in-distribution accuracy; identical members give
//     mutual information 0
//   - sweep_read_run on run directories written here: lambda, steps, the last train and val lines,
//     an incomplete last line; errors for a missing lambda and a run without validation; the sort
//     by lambda and the CSV text
//   - baseline_train: 0 steps = the initialization; one Adam step on a training set of exactly one
//     batch equals theta - lr g / (|g| + eps sqrt-corrected) with g from target_loss_grad of the
//     whole set; member 0 of K = 2 is bit for bit member 0 of K = 1 (members never interact)
// The test program includes the analysis sources directly: test binaries link only src/.
#include "../analysis/metrics.c"
#include "../analysis/accuracy_core.c"
#include "../analysis/ensemble_core.c"
#include "../analysis/ood_core.c"
#include "../analysis/sweep_core.c"
#include "../analysis/baseline_core.c"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static uint64_t g_rng = 987654321;
static double urand(void) {   // uniform (0, 1)
    g_rng ^= g_rng >> 12; g_rng ^= g_rng << 25; g_rng ^= g_rng >> 27;
    return ((double)((g_rng * 0x2545F4914F6CDD1Dull) >> 11) + 0.5) / 9007199254740992.0;
}

// A random probability row of C classes (float), sometimes peaked.
static void rand_probs(float *p, int C) {
    double s = 0, v[16];
    const double peak = urand() < 0.5 ? 6.0 : 1.0;
    for (int c = 0; c < C; c++) { v[c] = pow(urand(), peak); s += v[c]; }
    for (int c = 0; c < C; c++) p[c] = (float)(v[c] / s);
}

// ---- independent reference implementations (plain loops) ----

static int ref_argmax(const double *p, int C) {   // ties: lowest class
    int a = 0;
    for (int c = 1; c < C; c++) if (p[c] > p[a]) a = c;
    return a;
}

// P(score of a positive > score of a negative) + 0.5 P(equal), over all pairs; NaN if a class is empty.
static double ref_auroc(const double *score, const int *pos, int n) {
    double num = 0, pairs = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if (pos[i] && !pos[j]) {
                pairs++;
                num += score[i] > score[j] ? 1.0 : score[i] == score[j] ? 0.5 : 0.0;
            }
    return pairs ? num / pairs : NAN;
}

static double ref_entropy(const double *p, int C) {
    double h = 0;
    for (int c = 0; c < C; c++) if (p[c] > 0) h -= p[c] * log(p[c]);
    return h;
}

// ---- accuracy ----

static void test_accuracy(TestState *ts) {
    printf("acc_summarize: statistics and histogram of 5 (and 4) accuracies\n");
    const double acc[5] = {0.9375, 0.5, 0.75, 0.8125, 0.625};   // exact binary fractions
    const double loss[5] = {0.25, 1.5, 0.75, 0.5, 1.0};
    AccSummary s;
    int64_t counts[4];
    double edges[5];
    acc_summarize(acc, loss, 5, 4, 0, &s, counts, edges);
    double mean = 0, var = 0, lmean = 0, lvar = 0;
    for (int i = 0; i < 5; i++) { mean += acc[i] / 5; lmean += loss[i] / 5; }
    for (int i = 0; i < 5; i++) { var += (acc[i] - mean) * (acc[i] - mean) / 5; lvar += (loss[i] - lmean) * (loss[i] - lmean) / 5; }
    T_CHECK(ts, t_close(s.mean, 0.725, 1e-15, 0) && t_close(s.mean, mean, 1e-15, 0), "mean %.6f (0.725)", s.mean);
    T_CHECK(ts, t_close(s.std, sqrt(var), 1e-15, 1e-12) && t_close(s.std, sqrt(0.0228125), 1e-12, 0),
            "population std %.6f (sqrt(0.0228125) = %.6f)", s.std, sqrt(0.0228125));
    T_CHECK(ts, s.min == 0.5 && s.max == 0.9375 && s.median == 0.75, "min %.4f max %.4f median %.4f (0.5, 0.9375, 0.75)",
            s.min, s.max, s.median);
    T_CHECK(ts, s.p05 == 0.5 && s.p95 == 0.9375, "p05 = sorted[floor(0.2)] = %.4f, p95 = sorted[ceil(3.8)] = %.4f", s.p05, s.p95);
    T_CHECK(ts, t_close(s.loss_mean, lmean, 1e-15, 0) && t_close(s.loss_std, sqrt(lvar), 1e-15, 1e-12),
            "loss mean %.4f std %.4f", s.loss_mean, s.loss_std);
    T_CHECK(ts, s.lo == 0.5 && t_close(s.hi, 0.94, 1e-15, 0), "range [%.3f, %.3f]: [0.5, 0.9375] rounded out to 0.005 is [0.5, 0.94]",
            s.lo, s.hi);
    // edges 0.5, 0.61, 0.72, 0.83, 0.94: 0.5 | 0.625 | 0.75, 0.8125 | 0.9375
    T_CHECK(ts, counts[0] == 1 && counts[1] == 1 && counts[2] == 2 && counts[3] == 1 && t_close(edges[1], 0.61, 1e-12, 0)
            && t_close(edges[4], 0.94, 1e-12, 0),
            "histogram counts %lld %lld %lld %lld (1 1 2 1), edges %.2f .. %.2f", (long long)counts[0],
            (long long)counts[1], (long long)counts[2], (long long)counts[3], edges[0], edges[4]);
    acc_summarize(acc, loss, 4, 4, 1, &s, counts, edges);   // n = 4: {0.5, 0.75, 0.8125, 0.9375}
    T_CHECK(ts, s.median == 0.5 * (0.75 + 0.8125) && s.lo == 0.0 && s.hi == 1.0 && counts[0] == 0 && counts[1] == 0
            && counts[2] == 1 + 0 && counts[3] == 3,
            "even n: median %.5f (0.78125); --full: range [%.0f, %.0f], counts %lld %lld %lld %lld (0 0 1 3)",
            s.median, s.lo, s.hi, (long long)counts[0], (long long)counts[1], (long long)counts[2], (long long)counts[3]);
    const double same[3] = {0.5, 0.5, 0.5};
    acc_summarize(same, same, 3, 2, 0, &s, counts, edges);
    T_CHECK(ts, s.lo == 0.5 && t_close(s.hi, 0.505, 1e-15, 0) && s.std == 0.0 && counts[0] == 3,
            "equal accuracies: range [%.3f, %.3f] (one 0.005 step), std %g, all in the first bin", s.lo, s.hi, s.std);
}

// ---- ensemble ----

// Metrics of the ensemble of networks [first, first + s) of probs (net, n, C), as ens_add defines them.
static void ref_ensemble(const float *probs, int first, int s, int n, int C, int bins, const uint8_t *y, double *m,
                         double *count) {
    double *pbar = calloc((size_t)n * C, sizeof(double)), *conf = calloc((size_t)n, sizeof(double));
    int *ok = calloc((size_t)n, sizeof(int));
    int mv_right = 0, mp_right = 0;
    double nll = 0, brier = 0;
    double *bc = calloc((size_t)bins, sizeof(double)), *bconf = calloc((size_t)bins, sizeof(double));
    double *bok = calloc((size_t)bins, sizeof(double));
    for (int i = 0; i < n; i++) {
        int votes[16] = {0};
        for (int k = first; k < first + s; k++) {
            double row[16];
            for (int c = 0; c < C; c++) row[c] = probs[((size_t)k * n + i) * C + c];
            votes[ref_argmax(row, C)]++;
            for (int c = 0; c < C; c++) pbar[(size_t)i * C + c] += row[c];
        }
        int best = 0;
        for (int c = 1; c < C; c++) if (votes[c] > votes[best]) best = c;
        mv_right += best == y[i];
        double *p = pbar + (size_t)i * C;
        for (int c = 0; c < C; c++) p[c] /= s;
        const int a = ref_argmax(p, C);
        mp_right += a == y[i];
        ok[i] = a == y[i];
        conf[i] = p[a];
        nll -= log(p[y[i]] + 1e-30) / n;
        for (int c = 0; c < C; c++) brier += (p[c] - (c == y[i])) * (p[c] - (c == y[i])) / n;
        int b = (int)ceil(conf[i] * bins) - 1;   // (b/bins, (b+1)/bins]
        if (b < 0) b = 0;
        if (b >= bins) b = bins - 1;
        bc[b]++; bconf[b] += conf[i]; bok[b] += ok[i];
    }
    double ece = 0;
    for (int b = 0; b < bins; b++) {
        if (bc[b] > 0) ece += bc[b] / n * fabs(bok[b] / bc[b] - bconf[b] / bc[b]);
        count[b] += bc[b];
    }
    m[0] = (double)mv_right / n; m[1] = (double)mp_right / n; m[2] = nll; m[3] = brier; m[4] = ece;
    m[5] = ref_auroc(conf, ok, n);
    free(pbar); free(conf); free(ok); free(bc); free(bconf); free(bok);
}

static void test_ensemble(TestState *ts) {
    printf("ens_add: K = 2 ensembles of M = 5 random networks, 12 images, 4 classes, 5 bins\n");
    enum { K = 2, M = 5, N = 12, C = 4, BINS = 5 };
    float *probs = malloc(sizeof(float) * K * M * N * C);
    uint8_t y[N];
    for (int i = 0; i < N; i++) y[i] = (uint8_t)(urand() * C);
    for (int k = 0; k < K * M * N; k++) rand_probs(probs + (size_t)k * C, C);
    EnsCompute e;
    ens_init(&e, K, M, N, C, BINS, y);
    for (int g = 0; g < K * M; g++) ens_add(&e, g, probs + (size_t)g * N * C);
    T_CHECK(ts, e.S == 4 && e.sizes[0] == 1 && e.sizes[1] == 2 && e.sizes[2] == 4 && e.sizes[3] == 5,
            "sizes 1, 2, 4, 5 (S = %d)", e.S);
    double max_err = 0, count[4][BINS] = {{0}};
    int nan_ok = 1;
    for (int si = 0; si < e.S; si++)
        for (int j = 0; j < K; j++) {
            double m[ENS_N_METRICS];
            ref_ensemble(probs, j * M, (int)e.sizes[si], N, C, BINS, y, m, count[si]);
            for (int q = 0; q < ENS_N_METRICS; q++) {
                const double got = e.curve[((size_t)q * e.S + si) * K + j];
                if (isnan(m[q]) || isnan(got)) nan_ok &= isnan(m[q]) && isnan(got);
                else if (fabs(got - m[q]) > max_err) max_err = fabs(got - m[q]);
            }
        }
    T_CHECK(ts, max_err < 1e-12 && nan_ok, "all 6 metrics of both ensembles at every size equal the reference loops "
            "(max |error| %.2e)", max_err);
    double cerr = 0, total = 0;
    for (int si = 0; si < e.S; si++)
        for (int b = 0; b < BINS; b++) {
            cerr += fabs(e.rel[(size_t)si * BINS + b] - count[si][b]);
            total += e.rel[(size_t)si * BINS + b];
        }
    T_CHECK(ts, cerr == 0 && total == (double)e.S * K * N, "reliability counts pooled over the 2 ensembles "
            "(total %.0f = S x K x images)", total);
    double *rc = malloc(sizeof(double) * e.S * BINS), *ra = malloc(sizeof(double) * e.S * BINS);
    ens_reliability(&e, rc, ra);
    int empty_nan = 1;
    for (int x = 0; x < e.S * BINS; x++)
        if (e.rel[x] == 0) empty_nan &= isnan(rc[x]) && isnan(ra[x]);
        else empty_nan &= !isnan(rc[x]) && ra[x] >= 0 && ra[x] <= 1;
    T_CHECK(ts, empty_nan, "reliability: NaN exactly in the empty bins");
    ens_free(&e);
    free(rc); free(ra); free(probs);

    printf("ens_add: a hand case where the majority vote and the mean probability disagree\n");
    // 3 networks, 1 image of label 0: two vote 1 narrowly, one is sure of 0.
    const float p3[3 * 2] = {0.45f, 0.55f, 0.45f, 0.55f, 1.0f, 0.0f};
    const uint8_t y0[1] = {0};
    ens_init(&e, 1, 3, 1, 2, 10, y0);
    for (int g = 0; g < 3; g++) ens_add(&e, g, p3 + 2 * g);
    const int last = e.S - 1;   // size 3; mean probability (0.6333, 0.3667)
    const double mv = e.curve[(size_t)0 * e.S + last], mp = e.curve[(size_t)1 * e.S + last];
    const double nll = e.curve[(size_t)2 * e.S + last], br = e.curve[(size_t)3 * e.S + last];
    const double p0 = (0.45 + 0.45 + 1.0) / 3;   // float inputs: 0.45f
    T_CHECK(ts, mv == 0.0 && mp == 1.0 && t_close(nll, -log(p0), 1e-7, 0) && t_close(br, 2 * (1 - p0) * (1 - p0), 1e-7, 0),
            "size 3: majority vote wrong (%.0f), mean probability right (%.0f), NLL %.6f (-log 0.6333), Brier %.6f",
            mv, mp, nll, br);
    ens_free(&e);
}

// ---- ood ----

static void test_ood(TestState *ts) {
    printf("ood_add: M = 3 members, 5 in-distribution images and 4 outliers, 3 classes\n");
    enum { M = 3, NI = 5, NO = 4, N = NI + NO, C = 3 };
    float *probs = malloc(sizeof(float) * M * N * C);
    uint8_t y[NI];
    for (int i = 0; i < NI; i++) y[i] = (uint8_t)(urand() * C);
    for (int k = 0; k < M * N; k++) rand_probs(probs + (size_t)k * C, C);
    OodCompute o;
    ood_init(&o, M, N, NI, C, y);
    for (int m = 0; m < M; m++) ood_add(&o, probs + (size_t)m * N * C);
    T_CHECK(ts, o.S == 3 && o.sizes[0] == 1 && o.sizes[1] == 2 && o.sizes[2] == 3, "sizes 1, 2, 3");
    int pos[N];
    for (int i = 0; i < N; i++) pos[i] = i >= NI;
    double err = 0, serr = 0;
    for (int si = 0; si < o.S; si++) {
        const int s = (int)o.sizes[si];
        double sc[3][N];
        int right = 0;
        for (int i = 0; i < N; i++) {
            double pbar[C] = {0}, hmean = 0;
            for (int m = 0; m < s; m++) {
                double row[C];
                for (int c = 0; c < C; c++) { row[c] = probs[((size_t)m * N + i) * C + c]; pbar[c] += row[c] / s; }
                hmean += ref_entropy(row, C) / s;
            }
            double mx = 0;
            for (int c = 0; c < C; c++) if (pbar[c] > mx) mx = pbar[c];
            sc[0][i] = ref_entropy(pbar, C);
            sc[1][i] = sc[0][i] - hmean;
            sc[2][i] = 1 - mx;
            if (i < NI) right += ref_argmax(pbar, C) == y[i];
        }
        for (int q = 0; q < 3; q++) {
            const double a = ref_auroc(sc[q], pos, N);
            err = fmax(err, fabs(a - o.auroc[(size_t)q * o.S + si]));
            if (si == o.S - 1)
                for (int i = 0; i < N; i++) serr = fmax(serr, fabs(sc[q][i] - o.scores[(size_t)q * N + i]));
        }
        err = fmax(err, fabs((double)right / NI - o.in_acc[si]));
    }
    T_CHECK(ts, err < 1e-12, "AUROC of entropy, mutual information and 1 - max p, and in-distribution accuracy, at "
            "sizes 1, 2, 3 equal the reference (max |error| %.2e)", err);
    T_CHECK(ts, serr < 1e-12, "scores of every image of the full ensemble equal the reference (max |error| %.2e)", serr);
    int mi0 = 1;
    ood_free(&o);
    // one member: mutual information exactly 0 (size 1 scores are checked through their AUROC above)
    ood_init(&o, 1, N, NI, C, y);
    ood_add(&o, probs);
    for (int i = 0; i < N; i++) mi0 &= fabs(o.scores[(size_t)N + i]) < 1e-15;
    T_CHECK(ts, mi0, "one member: mutual information 0 on every image");
    ood_free(&o);
    // three identical members: mutual information 0 up to rounding
    float *same = malloc(sizeof(float) * N * C);
    memcpy(same, probs, sizeof(float) * N * C);
    ood_init(&o, 3, N, NI, C, y);
    for (int m = 0; m < 3; m++) ood_add(&o, same);
    double mimax = 0;
    for (int i = 0; i < N; i++) mimax = fmax(mimax, fabs(o.scores[(size_t)N + i]));
    T_CHECK(ts, mimax < 1e-12, "identical members: mutual information %.1e (0)", mimax);
    ood_free(&o);
    free(same); free(probs);
}

// ---- sweep ----

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
}

static void test_sweep(TestState *ts) {
    printf("sweep_read_run: run directories written here\n");
    char root[] = "/tmp/ht_test_sweep_XXXXXX";
    if (!mkdtemp(root)) { perror("mkdtemp"); exit(1); }
    char a[256], b[256], c[256], d[256], p[300];
    snprintf(a, sizeof(a), "%s/lam1e5", root); snprintf(b, sizeof(b), "%s/lam1e3", root);
    snprintf(c, sizeof(c), "%s/nolambda", root); snprintf(d, sizeof(d), "%s/noval", root);
    mkdir(a, 0755); mkdir(b, 0755); mkdir(c, 0755); mkdir(d, 0755);
    snprintf(p, sizeof(p), "%s/job.json", a); write_file(p, "{\"lambda\": 100000, \"steps\": 50, \"other\": [1]}");
    snprintf(p, sizeof(p), "%s/metrics.jsonl", a);
    write_file(p, "{\"type\":\"train\",\"step\":10}\n"
                  "{\"type\":\"val\",\"step\":10,\"mean_acc\":0.5,\"std_acc\":0.1,\"majority_acc\":0.6,\"mean_prob_acc\":0.62,\"mean_nll\":1.5,\"entropy\":-3}\n"
                  "{\"type\":\"train\",\"step\":20}\n"
                  "{\"type\":\"val\",\"step\":20,\"mean_acc\":0.75,\"std_acc\":0.125,\"majority_acc\":0.8,\"mean_prob_acc\":0.85,\"mean_nll\":0.5,\"entropy\":-2.5}\n"
                  "{\"type\":\"train\",\"step\":23}\n"
                  "{\"type\":\"train\",\"st");   // a run killed while writing
    snprintf(p, sizeof(p), "%s/job.json", b); write_file(p, "{\"lambda\": 1000}");
    snprintf(p, sizeof(p), "%s/metrics.jsonl", b);
    write_file(p, "{\"type\":\"val\",\"step\":5,\"mean_acc\":0.25,\"std_acc\":0,\"majority_acc\":0.5,\"mean_prob_acc\":0.5,\"mean_nll\":2,\"entropy\":1}\n");
    snprintf(p, sizeof(p), "%s/job.json", c); write_file(p, "{\"steps\": 5}");
    snprintf(p, sizeof(p), "%s/metrics.jsonl", c); write_file(p, "");
    snprintf(p, sizeof(p), "%s/job.json", d); write_file(p, "{\"lambda\": 1}");
    snprintf(p, sizeof(p), "%s/metrics.jsonl", d); write_file(p, "{\"type\":\"train\",\"step\":1}\n");

    SweepRow rows[2];
    char err[8192], withslash[300];
    snprintf(withslash, sizeof(withslash), "%s/", a);
    const int ra = sweep_read_run(withslash, &rows[0], err, sizeof(err));
    T_CHECK(ts, ra == 0 && !strcmp(rows[0].run, a) && rows[0].lambda == 1e5 && rows[0].job_steps == 50 && rows[0].step == 23
            && rows[0].val_step == 20 && rows[0].val[0] == 0.75 && rows[0].val[1] == 0.125 && rows[0].val[3] == 0.85
            && rows[0].val[5] == -2.5 && rows[0].partial_line == 6,
            "lambda 1e5, job_steps 50, last train step 23, last val step 20 (mean_acc 0.75 ... entropy -2.5), "
            "incomplete line 6 noted (got rc %d, partial_line %d)", ra, rows[0].partial_line);
    const int rb = sweep_read_run(b, &rows[1], err, sizeof(err));
    T_CHECK(ts, rb == 0 && rows[1].job_steps == -1 && rows[1].step == -1 && rows[1].partial_line == 0,
            "no \"steps\" and no train line: -1, -1");
    SweepRow bad;
    int rc = sweep_read_run(c, &bad, err, sizeof(err));
    T_CHECK(ts, rc == -1 && strstr(err, "nolambda/job.json has no numeric \"lambda\""), "missing lambda: %s", err);
    free(bad.run);
    rc = sweep_read_run(d, &bad, err, sizeof(err));
    T_CHECK(ts, rc == -1 && strstr(err, "noval/metrics.jsonl has no validation line"), "no validation: %.80s...", err);
    free(bad.run);
    qsort(rows, 2, sizeof(SweepRow), sweep_by_lambda);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sweep_write_csv(f, rows, 2);
    fclose(f);
    char want[2048];
    snprintf(want, sizeof(want),
             "run,lambda,job_steps,step,val_step,mean_acc,std_acc,majority_acc,mean_prob_acc,mean_nll,entropy\n"
             "%s,1000,,,5,0.25,0,0.5,0.5,2,1\n"
             "%s,100000,50,23,20,0.75,0.125,0.8,0.85,0.5,-2.5\n", b, a);
    T_CHECK(ts, text && !strcmp(text, want), "sorted by lambda; CSV text as written by hand%s%s", text && strcmp(text, want) ? ":\n" : "",
            text && strcmp(text, want) ? text : "");
    free(text);
    free(rows[0].run); free(rows[1].run);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    if (system(cmd) != 0) printf("  (could not remove %s)\n", root);
}

// ---- baseline ----

static void test_baseline(TestState *ts) {
    printf("baseline_train: tiny network (jobs/tiny.json), synthetic images\n");
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    job_validate(&job);
    TargetArch a;
    arch_build_target(&a, &job);
    const int B = 6, D = a.in_size;
    const size_t W = a.n_weights;
    Dataset train = { B, 28, 28, malloc(sizeof(float) * B * D), malloc(B) };
    for (int j = 0; j < B * D; j++) train.images[j] = (float)urand();
    for (int i = 0; i < B; i++) train.labels[i] = (uint8_t)(i % 10);
    BaselineTrainCfg cfg = { 1, 0, B, 1, 1e-3, 11, INIT_HE };
    float *t0 = malloc(sizeof(float) * W), *t1 = malloc(sizeof(float) * W), *init = malloc(sizeof(float) * W);
    BaselineLog lg;
    baseline_train(&cfg, &a, &train, t0, &lg);
    classifier_init(&a, INIT_HE, 11, 0, 1, init);
    T_CHECK(ts, !memcmp(t0, init, sizeof(float) * W) && lg.first_n == 0, "0 steps: the networks are classifier_init(seed, member)");
    baseline_log_free(&lg);

    // One step on a training set of exactly one batch: every image once, so g = the gradient of the
    // mean cross-entropy over the whole set (in another order: float rounding only).
    cfg.steps = 1;
    baseline_train(&cfg, &a, &train, t1, &lg);
    TargetNet tn;
    target_init(&tn, &a, B, 0);
    float *g = malloc(sizeof(float) * W), *pr = malloc(sizeof(float) * B * 10);
    double loss;
    int correct;
    target_loss_grad(&tn, 1, init, B, train.images, (size_t)B * D, train.labels, B, 1.0f / B, &loss, &correct, g);
    target_forward(&tn, 1, init, B, train.images, 0, pr);
    double ce = 0;
    for (int i = 0; i < B; i++) ce -= log((double)pr[i * 10 + train.labels[i]]) / B;
    // TensorFlow Adam, t = 1: m = 0.1 g, v = 0.001 g^2, lr_t = lr sqrt(0.001) / 0.1,
    // update = lr_t m / (sqrt(v) + 1e-8)
    const double lr_t = 1e-3 * sqrt(1 - 0.999) / (1 - 0.9);
    double max_err = 0, max_step = 0;
    for (size_t j = 0; j < W; j++) {
        const double m = 0.1 * g[j], v = 0.001 * (double)g[j] * g[j];
        const double want = init[j] - lr_t * m / (sqrt(v) + 1e-8);
        max_err = fmax(max_err, fabs(t1[j] - want));
        max_step = fmax(max_step, fabs(t1[j] - init[j]));
    }
    T_CHECK(ts, max_err < 2e-6 && max_step > 9e-4, "one Adam step = theta - lr_t m / (sqrt(v) + eps) with g of the whole "
            "set: max |error| %.2e (steps up to %.2e = lr)", max_err, max_step);
    T_CHECK(ts, lg.first_n == 1 && lg.last_n == 1 && t_close(lg.first[0], ce, 1e-5, 1e-5) && lg.last[0] == lg.first[0],
            "logged training loss %.6f = mean cross-entropy of the initial network %.6f", lg.first[0], ce);
    baseline_log_free(&lg);

    // Members never interact: member 0 of K = 2 is member 0 of K = 1, bit for bit, after 3 steps
    // (here with a training set larger than a batch, so the samplers matter).
    Dataset big = { 20, 28, 28, malloc(sizeof(float) * 20 * D), malloc(20) };
    for (int j = 0; j < 20 * D; j++) big.images[j] = (float)urand();
    for (int i = 0; i < 20; i++) big.labels[i] = (uint8_t)((i * 7) % 10);
    BaselineTrainCfg c1 = { 1, 3, 4, 2, 1e-3, 5, INIT_GLOROT }, c2 = c1;
    c2.K = 2;
    float *one = malloc(sizeof(float) * W), *two = malloc(sizeof(float) * 2 * W);
    baseline_train(&c1, &a, &big, one, &lg);
    const double loss1 = lg.last[0];
    baseline_log_free(&lg);
    baseline_train(&c2, &a, &big, two, &lg);
    T_CHECK(ts, !memcmp(one, two, sizeof(float) * W) && lg.last[0] == loss1 && memcmp(two, two + W, sizeof(float) * W),
            "member 0 of 2 equals the single member bit for bit (weights and logged loss); member 1 differs");
    baseline_log_free(&lg);
    target_free(&tn);
    free(t0); free(t1); free(init); free(g); free(pr); free(one); free(two);
    free(train.images); free(train.labels); free(big.images); free(big.labels);
}

int main(void) {
    TestState ts = {0, 0};
    test_accuracy(&ts);
    test_ensemble(&ts);
    test_ood(&ts);
    test_sweep(&ts);
    test_baseline(&ts);
    return test_summary(&ts, "test_analysis");
}
