// hyperanalyze paths: accuracy along paths in weight space between two generated networks (the
// paper's Fig. 7). For a pair (z1, z2) and t in [0, 1]:
//   interpolated path  G(t z1 + (1 - t) z2)         (through the hypernetwork's manifold)
//   direct path        t G(z1) + (1 - t) G(z2)       (the straight line between the two networks)
// Both are gauge-fixed networks (batch norm in evaluation mode, as `hypertrain sample`), and both
// pass through G(z2) at t = 0 and G(z1) at t = 1. Pair p uses the z of networks 2p and 2p + 1 of
// `hypertrain sample` with the same --seed, so the endpoints can be found in a sample set.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "cmds_samples.h"
#include "common.h"
#include "gauge.h"
#include "hyper.h"
#include "metrics.h"
#include "model.h"
#include "resultio.h"
#include "sample.h"
#include "target.h"

#define CMD "paths"

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze paths CKPT [options]\n"
        "\n"
        "Accuracy along paths between pairs of generated networks (the paper's Fig. 7): for each pair\n"
        "(z1, z2) and t = 0, 1/(P-1), ..., 1 the interpolated path G(t z1 + (1-t) z2) and the direct\n"
        "path t G(z1) + (1-t) G(z2) of the gauge-fixed weights. Pair p uses the z of networks 2p and\n"
        "2p+1 of `hypertrain sample` with the same seed. Writes FILE.h5 (/t (P), /interpolated/\n"
        "{accuracy,loss} and /direct/{accuracy,loss} (pairs, P), /distance (pairs, P): |interpolated -\n"
        "direct|, /endpoint_distance (pairs), /z1, /z2 (pairs, z_dim)) and prints one CSV row per pair.\n"
        "Plot: python3 analysis/plot_paths.py FILE.h5 -o paths.png\n"
        "\n"
        "options:\n"
        "  --pairs N          pairs of endpoints (default 10)\n"
        "  --points P         points per path, P >= 2 (default 40)\n"
        "  --seed S           seed of the z draws (default: the checkpoint's training seed, as sample)\n"
        "  --split val|test   images (default val)\n"
        "  --images N         the first N images of the split (default all)\n"
        "  --out FILE.h5      result file (default CKPT_paths.h5 beside the checkpoint)\n"
        "  --data DIR         MNIST directory\n"
        "  --threads N        OpenMP threads\n");
}

typedef struct {
    Model m;
    HyperNet hn;
    BnConfig bn;
    Comm comm;            // not used: evaluation-mode batch norm needs no communication
    float *raw, *scales;
} Gen;

// Gauge-fixed G(z) of n rows of z into theta (n, n_weights).
static void generate(Gen *g, const float *z, int n, float *theta) {
    const TargetArch *a = &g->m.tarch;
    hyper_forward(&g->hn, g->m.params, g->m.stats, z, n, n, 0, &g->bn, &g->comm, g->raw);
    if (g->m.job.gauge_fixing) gauge_forward(a, n, g->raw, theta, g->scales);
    else memcpy(theta, g->raw, (size_t)n * a->n_weights * sizeof(float));
}

int cmd_paths(int argc, char **argv) {
    const char *ckpt = NULL, *split = "val", *out = NULL, *data = NULL;
    long pairs = 10, points = 40, images = 0, threads = 0, seed_arg = -1;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--split")) { split = v; i++; }
        else if (!strcmp(a, "--out")) { out = v; i++; }
        else if (!strcmp(a, "--data")) { data = v; i++; }
        else if (!strcmp(a, "--pairs")) { if ((rc = an_long(CMD, a, v, 1, 1L << 20, &pairs))) return rc; i++; }
        else if (!strcmp(a, "--points")) { if ((rc = an_long(CMD, a, v, 2, 1L << 16, &points))) return rc; i++; }
        else if (!strcmp(a, "--seed")) { if ((rc = an_long(CMD, a, v, 0, 0x7fffffffffffffffL, &seed_arg))) return rc; i++; }
        else if (!strcmp(a, "--images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 30, &images))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (ckpt) return ha_usage_error(CMD, "one checkpoint expected, got '%s' and '%s'", ckpt, a);
        else ckpt = a;
    }
    if (!ckpt) return ha_usage_error(CMD, "a checkpoint is required: hyperanalyze paths CKPT");
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, split, threads, ckpt, out_buf, sizeof(out_buf), &out))) return rc;

    char sha[65];
    resultio_file_sha256(ckpt, sha);
    char *job_json = checkpoint_read_job(ckpt);
    Job job;
    job_from_json_string(&job, job_json, ckpt);
    free(job_json);
    job_validate(&job);
    HT_CHECK(job.task == TASK_MNIST, "paths: '%s' is a checkpoint of the toy task, which generates no networks", ckpt);
    Gen g;
    memset(&g, 0, sizeof(g));
    g.comm.size = 1;
    g.comm.impl = "none";
    model_init(&g.m, &job);
    CkptMeta meta;
    checkpoint_read(ckpt, &g.m.harch.table, g.m.params, NULL, NULL, g.m.stats, &meta);
    const uint64_t seed = seed_arg >= 0 ? (uint64_t)seed_arg : meta.seed;
    g.bn = (BnConfig){ (float)job.leaky_alpha, job.bn_eps, job.bn_decay };
    const TargetArch *a = &g.m.tarch;
    const size_t W = a->n_weights;
    const int P = (int)points, zd = job.z_dim;
    // Three (P, W) weight buffers (raw, interpolated, direct) and the hypernetwork's activations.
    const size_t PW = XMUL(P, W, "paths: --points %d x %zu weights", P, W);
    HT_CHECK_MEMORY(XADD(XMUL(PW, 3 * sizeof(float), "paths: weights"),
                         XMUL(hyper_floats(&g.m.harch, P), sizeof(float), "paths: hypernetwork"), "paths: memory"),
                    "paths: --points %d networks of %zu weights", P, W);
    hyper_init(&g.hn, &g.m.harch, a, P);
    g.raw = XALLOC_FLOATS(PW);
    g.scales = XALLOC_FLOATS((size_t)P * (gauge_n_scales(a) + 1));

    Mnist mn;
    Dataset d;
    sample_load_split(&job, data, split, (int)images, &mn, &d);
    TargetNet tn;
    target_init(&tn, a, 50, 0);

    float *z = XALLOC_FLOATS((size_t)P * zd), *z1 = XALLOC_FLOATS((size_t)pairs * zd);
    float *z2 = XALLOC_FLOATS((size_t)pairs * zd);
    float *th_i = XALLOC_FLOATS(PW), *th_d = XALLOC_FLOATS(PW);
    float *ends = XALLOC_FLOATS(2 * W);
    double *t = XMALLOC((size_t)P * sizeof(double));
    const size_t np = (size_t)pairs * P;
    double *acc_i = XMALLOC(np * sizeof(double)), *loss_i = XMALLOC(np * sizeof(double));
    double *acc_d = XMALLOC(np * sizeof(double)), *loss_d = XMALLOC(np * sizeof(double));
    double *dist = XMALLOC(np * sizeof(double)), *end_dist = XMALLOC((size_t)pairs * sizeof(double));
    for (int j = 0; j < P; j++) t[j] = (double)j / (P - 1);
    const double t0 = ht_now();
    for (int p = 0; p < pairs; p++) {
        float *a1 = z1 + (size_t)p * zd, *a2 = z2 + (size_t)p * zd;
        sample_draw_z(seed, 2LL * p, zd, a1);
        sample_draw_z(seed, 2LL * p + 1, zd, a2);
        memcpy(z, a1, (size_t)zd * sizeof(float));
        memcpy(z + zd, a2, (size_t)zd * sizeof(float));
        generate(&g, z, 2, ends);   // G(z1), G(z2)
        for (int j = 0; j < P; j++)
            for (int c = 0; c < zd; c++)
                z[(size_t)j * zd + c] = (float)(t[j] * a1[c] + (1.0 - t[j]) * a2[c]);
        generate(&g, z, P, th_i);
        double e2 = 0.0;
        for (size_t w = 0; w < W; w++) { const double x = (double)ends[w] - ends[W + w]; e2 += x * x; }
        end_dist[p] = sqrt(e2);
        for (int j = 0; j < P; j++) {
            float *dj = th_d + (size_t)j * W;
            const float *ij = th_i + (size_t)j * W;
            double s2 = 0.0;
            for (size_t w = 0; w < W; w++) {
                dj[w] = (float)(t[j] * ends[w] + (1.0 - t[j]) * ends[W + w]);
                const double x = (double)ij[w] - dj[w];
                s2 += x * x;
            }
            dist[(size_t)p * P + j] = sqrt(s2);
        }
        sample_eval(&tn, P, th_i, &d, NULL, acc_i + (size_t)p * P, loss_i + (size_t)p * P);
        sample_eval(&tn, P, th_d, &d, NULL, acc_d + (size_t)p * P, loss_d + (size_t)p * P);
        fprintf(stderr, "paths: pair %d/%ld done\n", p + 1, pairs);
    }
    const double secs = ht_now() - t0;

    ResultFile r;
    result_create(&r, out);
    size_t d1[1] = { (size_t)P }, d2[2] = { (size_t)pairs, (size_t)P }, dz[2] = { (size_t)pairs, (size_t)zd };
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "checkpoint", ckpt, sha);
    resultio_f64(&r, "/t", 1, d1, t, "(point)", "t = j / (points - 1): t = 0 is G(z2), t = 1 is G(z1)");
    resultio_f64(&r, "/interpolated/accuracy", 2, d2, acc_i, "(pair, point)",
                 "accuracy of G(t z1 + (1 - t) z2) (gauge-fixed, batch norm in evaluation mode) on the images");
    resultio_f64(&r, "/interpolated/loss", 2, d2, loss_i, "(pair, point)", "mean cross-entropy of the same networks");
    resultio_f64(&r, "/direct/accuracy", 2, d2, acc_d, "(pair, point)",
                 "accuracy of t G(z1) + (1 - t) G(z2), the straight line between the two gauge-fixed networks");
    resultio_f64(&r, "/direct/loss", 2, d2, loss_d, "(pair, point)", "mean cross-entropy of the same networks");
    resultio_f64(&r, "/distance", 2, d2, dist, "(pair, point)",
                 "Euclidean distance between the interpolated and the direct network at t (flat weight vectors)");
    size_t dp[1] = { (size_t)pairs };
    resultio_f64(&r, "/endpoint_distance", 1, dp, end_dist, "(pair)", "||G(z1) - G(z2)|| (flat weight vectors)");
    result_f32(&r, "/z1", 2, dz, z1);
    result_f32(&r, "/z2", 2, dz, z2);
    for (int i = 0; i < 2; i++) {
        result_attr_str(&r, i ? "/z2" : "/z1", "axes", "(pair, z dimension)");
        result_attr_str(&r, i ? "/z2" : "/z1", "meaning", i ? "z of network 2p + 1 of hypertrain sample with the same "
                        "seed (the t = 0 end)" : "z of network 2p of hypertrain sample with the same seed (the t = 1 end)");
    }
    result_attr_i64(&r, "/", "step", meta.step);
    result_attr_i64(&r, "/", "seed", (int64_t)seed);
    result_attr_str(&r, "/", "split", split);
    result_attr_i64(&r, "/", "images", d.n);
    result_attr_i64(&r, "/", "pairs", pairs);
    result_attr_i64(&r, "/", "points", P);
    result_close(&r);

    printf("# hyperanalyze paths: %s (step %lld), %ld pairs x %d points on %d %s images, %.1fs\n", ckpt,
           (long long)meta.step, pairs, P, d.n, split, secs);
    printf("# results: %s\n", out);
    printf("pair,acc_z2,acc_z1,min_interpolated,min_direct,mid_interpolated,mid_direct,endpoint_distance\n");
    for (int p = 0; p < pairs; p++) {
        const double *ai = acc_i + (size_t)p * P, *ad = acc_d + (size_t)p * P;
        double mi = ai[0], md = ad[0];
        for (int j = 1; j < P; j++) { mi = fmin(mi, ai[j]); md = fmin(md, ad[j]); }
        const int mid = (P - 1) / 2;
        printf("%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6g\n", p, ad[0], ad[P - 1], mi, md, ai[mid], ad[mid], end_dist[p]);
    }
    hyper_free(&g.hn);
    target_free(&tn);
    mnist_free(&mn);
    model_free(&g.m);
    free(g.raw); free(g.scales); free(z); free(z1); free(z2); free(th_i); free(th_d); free(ends); free(t);
    free(acc_i); free(loss_i); free(acc_d); free(loss_d); free(dist); free(end_dist);
    return 0;
}
