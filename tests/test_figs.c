// test_figs.c: the computations behind hyperanalyze filterdiv and pca's null comparisons
// (analysis/filters_core.c, analysis/pca_core.c), without files or data:
//   1. filter diversity on networks of jobs/tiny.json built to have a constant filter (diversity
//      exactly 0, found as the least diverse), a filter of mean zero (exactly 1), and random filters
//      equal to a two-pass and a pairwise-distance formula computed here;
//   2. next-layer norms against the natural kernel layout (sample_layer_to_natural: (k, k, cin,
//      cout) for conv, (h*w*c, units) for fc), for a conv -> conv and a conv -> fc pair of layers,
//      with one channel of the next layer scaled so that its norm is known;
//   3. Pearson and Spearman (ties, monotone non-linear, constant -> NaN), argmin/argmax;
//   4. the gauge check: gauge_forward's output passes, raw networks do not;
//   5. the Gaussian null: mean, variances, correlations, skewness and kurtosis of 20,000 draws
//      within 5 standard errors, deterministic in the seed;
//   6. pca_project of the fitted data equals pca_fit's projections (with and without
//      standardization), column moments by hand, pca_total_variance = the trace.
#include "../analysis/metrics.c"
#include "../analysis/filters_core.c"
#include "../analysis/pca_core.c"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "common.h"
#include "config.h"
#include "gauge.h"
#include "rng.h"
#include "sample.h"
#include "testutil.h"

static float unif(uint32_t a, uint32_t b) {
    Philox4 r = philox4x32(7, RNG_STREAM_TEST, a, b, 0);
    return 2.0f * rng_u01(r.v[0]) - 1.0f;
}

static void tiny_arch(TargetArch *a) {
    Job job;
    job_defaults(&job);
    job_load_file(&job, "jobs/tiny.json");
    job_validate(&job);
    arch_build_target(a, &job);
}

// Two-pass diversity of filter f of layer l over S networks theta (S, W).
static double diversity_ref(const TargetArch *a, int l, int f, const float *theta, int S, double *pairwise) {
    const TargetLayer *L = &a->layers[l];
    const size_t K = (size_t)L->fan_in + 1, o = L->offset + (size_t)f * K;
    double *mu = calloc(K, sizeof(double)), var = 0, sq = 0, pd = 0;
    for (int s = 0; s < S; s++)
        for (size_t j = 0; j < K; j++) mu[j] += theta[(size_t)s * a->n_weights + o + j] / (double)S;
    for (int s = 0; s < S; s++)
        for (size_t j = 0; j < K; j++) {
            const double x = theta[(size_t)s * a->n_weights + o + j];
            var += (x - mu[j]) * (x - mu[j]);
            sq += x * x;
        }
    for (int s = 0; s < S; s++)
        for (int t = 0; t < S; t++) {
            if (s == t) continue;
            for (size_t j = 0; j < K; j++) {
                const double d = (double)theta[(size_t)s * a->n_weights + o + j] - theta[(size_t)t * a->n_weights + o + j];
                pd += d * d;
            }
        }
    // mean pairwise squared distance over i != j, times (S-1)/(2S), over the mean squared norm
    *pairwise = ((double)(S - 1) / (2.0 * S)) * (pd / ((double)S * (S - 1))) / (sq / S);
    free(mu);
    return var / sq;
}

// next_norm of filter f of layer l from the natural layout of layer l+1.
static double next_norm_ref(const TargetArch *a, int l, int f, const float *theta, int S) {
    const TargetLayer *N = &a->layers[l + 1];
    const int units = N->filters, C = N->in_channels, P = N->fan_in / C;
    float *kernel = malloc((size_t)N->fan_in * units * sizeof(float)), *bias = malloc((size_t)units * sizeof(float));
    double s2 = 0;
    for (int s = 0; s < S; s++) {
        sample_layer_to_natural(N, 1, theta + (size_t)s * a->n_weights + N->offset, N->size, kernel, bias);
        // natural: (P * C, units) row-major, row p * C + c (conv: (kh, kw, cin) flattened)
        for (int p = 0; p < P; p++)
            for (int u = 0; u < units; u++) {
                const double v = kernel[((size_t)p * C + f) * units + u];
                s2 += v * v;
            }
    }
    free(kernel);
    free(bias);
    return sqrt(s2 / S);
}

static void test_diversity(TestState *ts) {
    printf("filter diversity and next-layer norms (jobs/tiny.json networks)\n");
    TargetArch a;
    tiny_arch(&a);
    const int S = 40;
    const size_t W = a.n_weights;
    float *theta = malloc((size_t)S * W * sizeof(float));
    for (int s = 0; s < S; s++)
        for (size_t j = 0; j < W; j++) theta[(size_t)s * W + j] = unif((uint32_t)s, (uint32_t)j);
    const TargetLayer *L1 = &a.layers[0], *L2 = &a.layers[1], *L3 = &a.layers[2];
    // layer 1 filter 2: the same in every network; layer 2 filter 1: networks in +x / -x pairs
    const size_t K1 = (size_t)L1->fan_in + 1, K2 = (size_t)L2->fan_in + 1;
    for (int s = 1; s < S; s++) memcpy(theta + (size_t)s * W + L1->offset + 2 * K1, theta + L1->offset + 2 * K1,
                                       K1 * sizeof(float));
    for (int s = 1; s < S; s += 2)
        for (size_t j = 0; j < K2; j++)
            theta[(size_t)s * W + L2->offset + K2 + j] = -theta[(size_t)(s - 1) * W + L2->offset + K2 + j];
    // the next layer's weights on channel 3 of layer 1 (read by layer 2) scaled by 5
    for (int s = 0; s < S; s++)
        for (int g = 0; g < L2->filters; g++)
            for (int p = 0; p < L2->fan_in / L2->in_channels; p++)
                theta[(size_t)s * W + L2->offset + g * K2 + (size_t)p * L2->in_channels + 3] *= 5.0f;

    WeightMoments m;
    wmoments_init(&m, W);
    wmoments_add(&m, theta, 13);             // in two blocks, as the command reads
    wmoments_add(&m, theta + 13 * W, S - 13);
    double div1[64], nn1[64], ch1[64 * 64], div2[64], nn2[64], ch2[64 * 64];
    T_CHECK(ts, filter_diversity(&a, 0, &m, div1, nn1, ch1) == 0 && filter_diversity(&a, 1, &m, div2, nn2, ch2) == 0,
            "filter_diversity accepts layers 1 and 2 (%d and %d filters)", L1->filters, L2->filters);
    T_CHECK(ts, div1[2] == 0.0 && stat_argmin(div1, L1->filters) == 2,
            "layer 1: the constant filter 2 has diversity exactly %g and is the least diverse", div1[2]);
    T_CHECK(ts, fabs(div2[1] - 1.0) < 1e-12, "layer 2: the filter of mean zero has diversity %.15f (1)", div2[1]);
    double worst = 0, worst_pair = 0;
    for (int l = 0; l < 2; l++) {
        const double *d = l ? div2 : div1;
        for (int f = 0; f < a.layers[l].filters; f++) {
            double pw;
            const double ref = diversity_ref(&a, l, f, theta, S, &pw);
            worst = fmax(worst, fabs(d[f] - ref));
            worst_pair = fmax(worst_pair, fabs(d[f] - pw));
        }
    }
    T_CHECK(ts, worst < 1e-12 && worst_pair < 1e-12,
            "every filter of layers 1, 2 equals the two-pass formula (max error %.1e) and (S-1)/(2S) x mean pairwise "
            "squared distance / mean squared norm (%.1e)", worst, worst_pair);
    double e1 = 0, e2 = 0;
    for (int f = 0; f < L1->filters; f++) e1 = fmax(e1, fabs(nn1[f] - next_norm_ref(&a, 0, f, theta, S)) / nn1[f]);
    for (int f = 0; f < L2->filters; f++) e2 = fmax(e2, fabs(nn2[f] - next_norm_ref(&a, 1, f, theta, S)) / nn2[f]);
    T_CHECK(ts, e1 < 1e-12 && e2 < 1e-12,
            "next_norm equals the natural layout's W[.., c, :] norms: conv -> conv (rel. error %.1e), conv -> fc "
            "(%d x %d x %d input, %.1e)", e1, a.ops[L3->op].in_h, a.ops[L3->op].in_w, a.ops[L3->op].in_c, e2);
    T_CHECK(ts, stat_argmax(nn1, L1->filters) == 3 && nn1[3] > 4.0 * nn1[0],
            "layer 1: channel 3, scaled by 5 in layer 2, has the largest next_norm (%.3f vs %.3f)", nn1[3], nn1[0]);
    // channel_msq of layer 2 filter 0 on channel c = mean over networks of its slice's squares
    double ref = 0;
    const int P2 = L2->fan_in / L2->in_channels;
    for (int s = 0; s < S; s++)
        for (int p = 0; p < P2; p++) {
            const double v = theta[(size_t)s * W + L2->offset + (size_t)p * L2->in_channels + 1];
            ref += v * v;
        }
    T_CHECK(ts, fabs(ch2[1] - ref / S) < 1e-12 * ref, "channel_msq[0][1] = %.6f (%.6f by hand)", ch2[1], ref / S);
    TargetArch bad = a;
    bad.layers[1].in_channels = L1->filters + 1;
    T_CHECK(ts, filter_diversity(&bad, 0, &m, div1, nn1, ch1) == -1 && filter_diversity(&a, a.n_layers - 1, &m, div1,
            nn1, ch1) == -1, "a next layer reading other channels, or the last layer: -1");
    int h, w, c;
    filter_input_shape(&a, 2, &h, &w, &c);
    T_CHECK(ts, h * w * c == L3->fan_in && c == L2->filters, "filter_input_shape of the fc layer 3: (%d, %d, %d)", h, w, c);

    // gauge: gauge_forward's output passes, the raw networks do not
    float *g = malloc((size_t)S * W * sizeof(float)), *sc = malloc((size_t)S * (gauge_n_scales(&a) + 1) * sizeof(float));
    gauge_forward(&a, S, theta, g, sc);
    double dev, bm, dev_raw, bm_raw;
    gauge_deviation(&a, g, S, &dev, &bm);
    gauge_deviation(&a, theta, S, &dev_raw, &bm_raw);
    T_CHECK(ts, dev < 1e-5 && bm < 1e-6 && dev_raw > 0.1 && bm_raw > 1e-3,
            "gauge check: gauge-fixed median |rms - 1| %.1e, |mean last bias| %.1e; raw %.3f, %.3f", dev, bm, dev_raw,
            bm_raw);
    free(g);
    free(sc);
    wmoments_free(&m);
    free(theta);
}

static void test_stats(TestState *ts) {
    printf("correlations\n");
    const double x[5] = { 1, 2, 3, 4, 5 }, y[5] = { 2, 4, 6, 8, 10 }, z[5] = { 5, 4, 3, 2, 1 };
    const double cube[5] = { 1, 8, 27, 64, 125 }, cst[5] = { 3, 3, 3, 3, 3 };
    T_CHECK(ts, fabs(stat_pearson(x, y, 5) - 1) < 1e-15 && fabs(stat_pearson(x, z, 5) + 1) < 1e-15,
            "Pearson of a line: %.15f, of a falling line %.15f", stat_pearson(x, y, 5), stat_pearson(x, z, 5));
    T_CHECK(ts, stat_pearson(x, cube, 5) < 0.99 && fabs(stat_spearman(x, cube, 5) - 1) < 1e-15,
            "x^3: Pearson %.4f, Spearman %.4f (monotone: 1)", stat_pearson(x, cube, 5), stat_spearman(x, cube, 5));
    const double tx[3] = { 1, 1, 2 }, ty[3] = { 1, 2, 3 };
    T_CHECK(ts, fabs(stat_spearman(tx, ty, 3) - 1.5 / sqrt(3.0)) < 1e-15,
            "ties share their mean rank: Spearman %.6f (1.5/sqrt(3) = 0.866025 by hand)", stat_spearman(tx, ty, 3));
    T_CHECK(ts, isnan(stat_pearson(x, cst, 5)) && isnan(stat_spearman(cst, x, 5)) && isnan(stat_pearson(x, y, 1)),
            "a constant array or one element: NaN");
    const double mm[4] = { 2, NAN, -1, -1 };
    T_CHECK(ts, stat_argmin(mm, 4) == 2 && stat_argmax(mm, 4) == 0, "argmin (first on ties) 2, argmax 0, NaN skipped");
}

static void test_pca_null(TestState *ts) {
    printf("Gaussian null and projections\n");
    const long long n = 20000;
    const int k = 3;
    const double var[3] = { 4.0, 1.0, 0.25 };
    double *G = malloc((size_t)n * k * sizeof(double)), *G2 = malloc((size_t)n * k * sizeof(double));
    pca_gaussian_null(var, k, n, 11, G);
    double mean[3], v[3], sk[3], ku[3];
    pca_column_moments(G, n, k, mean, v, sk, ku);
    // standard errors of a Gaussian sample: mean sqrt(var/n), variance var sqrt(2/(n-1)),
    // correlation 1/sqrt(n), skewness sqrt(6/n), excess kurtosis sqrt(24/n); 5 of them
    int ok = 1;
    double worst = 0;
    for (int c = 0; c < k; c++) {
        const double zs[4] = { mean[c] / sqrt(var[c] / n), (v[c] - var[c]) / (var[c] * sqrt(2.0 / (n - 1))),
                               sk[c] / sqrt(6.0 / n), ku[c] / sqrt(24.0 / n) };
        for (int i = 0; i < 4; i++) { worst = fmax(worst, fabs(zs[i])); ok &= fabs(zs[i]) < 5.0; }
    }
    for (int c = 0; c < k; c++)
        for (int d = c + 1; d < k; d++) {
            double s = 0;
            for (long long i = 0; i < n; i++) s += (G[i * k + c] - mean[c]) * (G[i * k + d] - mean[d]);
            const double r = s / (n - 1) / sqrt(v[c] * v[d]);
            worst = fmax(worst, fabs(r) * sqrt((double)n));
            ok &= fabs(r) * sqrt((double)n) < 5.0;
        }
    T_CHECK(ts, ok, "20,000 draws with variances 4, 1, 0.25: means, variances, correlations, skewness and kurtosis "
            "within 5 standard errors (largest %.2f); variances %.4f %.4f %.4f", worst, v[0], v[1], v[2]);
    pca_gaussian_null(var, k, n, 11, G2);
    int same = !memcmp(G, G2, (size_t)n * k * sizeof(double));
    pca_gaussian_null(var, k, n, 12, G2);
    T_CHECK(ts, same && memcmp(G, G2, (size_t)n * k * sizeof(double)), "the same seed draws the same, another not");
    free(G);
    free(G2);

    const double col[4] = { 0, 0, 0, 1 };
    pca_column_moments(col, 4, 1, mean, v, sk, ku);
    T_CHECK(ts, fabs(mean[0] - 0.25) < 1e-15 && fabs(v[0] - 0.25) < 1e-15 && fabs(sk[0] - 2 / sqrt(3.0)) < 1e-12 &&
            fabs(ku[0] + 2.0 / 3) < 1e-12, "moments of (0, 0, 0, 1): mean %.4f, var %.4f, skew %.6f (2/sqrt 3), "
            "excess kurtosis %.6f (-2/3)", mean[0], v[0], sk[0], ku[0]);

    // projections: the fitted data through pca_project equal pca_fit's, with and without scaling
    const int N = 60, D = 7, K = 3;
    float *X = malloc((size_t)N * D * sizeof(float)), *Xs = malloc((size_t)N * D * sizeof(float));
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++) X[i * D + j] = (float)((j + 1) * unif(100 + i, j) + 0.3 * j);
    memcpy(Xs, X, sizeof(float) * N * D);
    Pca p, ps;
    pca_fit(X, N, D, K, &p);
    double *pr = malloc((size_t)N * K * sizeof(double)), scale[7];
    pca_project(&p, NULL, X, N, pr);
    double e = 0;
    for (int i = 0; i < N * K; i++) e = fmax(e, fabs(pr[i] - p.proj[i]));
    pca_standardize(Xs, N, D, scale);
    pca_fit(Xs, N, D, K, &ps);
    pca_project(&ps, scale, X, N, pr);
    double es = 0;
    for (int i = 0; i < N * K; i++) es = fmax(es, fabs(pr[i] - ps.proj[i]));
    T_CHECK(ts, e < 1e-9 && es < 1e-5, "pca_project of the fitted vectors = pca_fit's projections (max error %.1e; "
            "standardized, from the unscaled floats: %.1e)", e, es);
    Pca full;
    pca_fit(X, N, D, D, &full);
    const double tv = pca_total_variance(X, N, D, NULL);
    double sum = 0;
    for (int c = 0; c < D; c++) sum += full.variance[c];
    T_CHECK(ts, fabs(tv - full.total_variance) < 1e-9 * tv && fabs(tv - sum) < 1e-9 * tv,
            "pca_total_variance %.6f = trace of the covariance %.6f = sum of all eigenvalues %.6f", tv,
            full.total_variance, sum);
    pca_free(&p);
    pca_free(&ps);
    pca_free(&full);
    free(X);
    free(Xs);
    free(pr);
}

int main(void) {
    TestState ts = {0, 0};
    test_diversity(&ts);
    test_stats(&ts);
    test_pca_null(&ts);
    return test_summary(&ts, "test_figs");
}
