// hyperanalyze shift: dataset shift by rotation. The first N MNIST test images are rotated by each
// angle (image_rotate of analysis/metrics.c: bilinear, about the image centre, zero fill,
// deterministic), and for each angle: accuracy, NLL and ECE (15 bins) of single networks (mean and
// std over the M networks), of the generated ensemble of M (mean probability) and, with
// --baseline, of the deep ensemble of M. The computation per angle is shift_point
// (analysis/uncert.c, tested in tests/test_metrics.c).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmds_samples.h"
#include "common.h"
#include "metrics.h"
#include "resultio.h"
#include "sample.h"
#include "uncert.h"
#include "uncert_eval.h"

#define CMD "shift"
#define MAX_ANGLES 1000

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze shift SAMPLES.h5 [--baseline DEEP.h5] [--angles 0:180:15] [options]\n"
        "\n"
        "Rotated MNIST: the first N test images rotated counterclockwise by each angle (bilinear, about\n"
        "the image centre, zero outside). Per angle: accuracy, NLL and ECE (15 equal-width confidence\n"
        "bins) of single networks (mean and std over the first M networks), of their mean-probability\n"
        "ensemble and, with --baseline, of the deep ensemble's first M networks. Writes FILE.h5\n"
        "(/angles (A), /<set>/single/<score>_mean, _std (A), /<set>/ensemble/<score> (A), /examples\n"
        "(A, h, w): test image 0 at each angle) and prints one CSV row per angle and set.\n"
        "Plot: python3 analysis/plot_shift.py FILE.h5 -o shift.png\n"
        "\n"
        "options:\n"
        "  --angles A:B:S     degrees A, A+S, ... up to B (default 0:180:15); or a list: 0,45,90\n"
        "  --baseline DEEP.h5 a deep ensemble (hyperanalyze baseline), same target architecture\n"
        "  --members M        networks of each set (default 10)\n"
        "  --images N         the first N test images (default 1000)\n"
        "  --bins B           ECE bins (default 15)\n"
        "  --out FILE.h5      result file (default SAMPLES_shift.h5 beside the set)\n"
        "  --data DIR         MNIST directory\n"
        "  --job JOB.json     fail unless the sets hold networks of this job's target architecture\n"
        "  --threads N        OpenMP threads\n");
}

typedef struct {
    const char *in, *baseline, *angles, *out, *data, *job;
    long M, images, bins, threads;
} ShiftOpts;

static int parse(int argc, char **argv, ShiftOpts *o) {
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return -1; }
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--baseline")) { o->baseline = v; i++; }
        else if (!strcmp(a, "--angles")) { o->angles = v; i++; }
        else if (!strcmp(a, "--out")) { o->out = v; i++; }
        else if (!strcmp(a, "--data")) { o->data = v; i++; }
        else if (!strcmp(a, "--job")) { o->job = v; i++; }
        else if (!strcmp(a, "--members")) { if ((rc = an_long(CMD, a, v, 1, 1L << 16, &o->M))) return rc; i++; }
        else if (!strcmp(a, "--images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 24, &o->images))) return rc; i++; }
        else if (!strcmp(a, "--bins")) { if ((rc = an_long(CMD, a, v, 1, 10000, &o->bins))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &o->threads))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (o->in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", o->in, a);
        else o->in = a;
    }
    if (!o->in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze shift SAMPLES.h5");
    return 0;
}

// One number of an angle specification in [-360, 360]; returns 0 or -1.
static int angle_number(const char *s, const char *end, double *out) {
    char buf[64];
    if (end - s <= 0 || end - s >= (long)sizeof(buf)) return -1;
    memcpy(buf, s, (size_t)(end - s));
    buf[end - s] = '\0';
    char *e;
    *out = strtod(buf, &e);
    return (*e || e == buf || !isfinite(*out) || fabs(*out) > 360.0) ? -1 : 0;
}

// "A:B:S" (A, A+S, ... <= B + 1e-9) or "a,b,c". Returns the count, or the usage-error status
// (negated) after a one-line message.
static int parse_angles(const char *spec, double *angles) {
    const char *bad = "--angles: expected A:B:S (degrees from A to B in steps of S > 0, within -360 .. 360, at "
                      "most 1000 angles) or a list like 0,45,90, got '%s'";
    const char *c1 = strchr(spec, ':');
    int n = 0;
    if (c1) {
        const char *c2 = strchr(c1 + 1, ':');
        double a, b, st;
        if (!c2 || angle_number(spec, c1, &a) || angle_number(c1 + 1, c2, &b) ||
            angle_number(c2 + 1, c2 + 1 + strlen(c2 + 1), &st) || st <= 0 || b < a || (b - a) / st >= MAX_ANGLES)
            return -ha_usage_error(CMD, bad, spec);
        for (int k = 0; a + k * st <= b + 1e-9; k++) angles[n++] = a + k * st;
        return n;
    }
    for (const char *p = spec;;) {
        const char *q = strchr(p, ',');
        const char *e = q ? q : p + strlen(p);
        if (n >= MAX_ANGLES || angle_number(p, e, &angles[n])) return -ha_usage_error(CMD, bad, spec);
        n++;
        if (!q) break;
        p = q + 1;
    }
    return n;
}

// shift_point of networks [0, M) of s at every angle; rotated (n, in_size) is scratch.
static void set_shift(const SampleSet *s, int M, const Dataset *d, const double *angles, int A, int bins,
                      const char *label, ShiftPoint *pts) {
    const TargetArch *a = &s->arch;
    const size_t isz = (size_t)a->in_size;
    float *rot = XALLOC_FLOATS(XMUL(d->n, isz, "images x pixels"));
    const size_t nl = XMUL(XMUL(M, d->n, "networks x images"), a->classes, "logits");
    HT_CHECK_MEMORY(nl * sizeof(float), "the logits of %d networks on %d images", M, d->n);
    float *logits = XALLOC_FLOATS(nl);
    for (int k = 0; k < A; k++) {
        for (int i = 0; i < d->n; i++)
            image_rotate(d->images + (size_t)i * isz, a->in_h, a->in_w, a->in_c, angles[k], rot + (size_t)i * isz);
        char what[96];
        XSNPRINTF(what, sizeof(what), "shift (%s, %g degrees)", label, angles[k]);
        uq_logits(s, 0, M, rot, d->n, logits, what);
        shift_point(logits, M, d->n, a->classes, d->labels, bins, &pts[k]);
    }
    free(rot);
    free(logits);
}

static void write_group(ResultFile *r, const char *g, const ShiftPoint *pts, int A) {
    double *v = XMALLOC_N((size_t)A, sizeof(double));
    size_t dA[1] = { (size_t)A };
    char name[128], meaning[256];
    for (int q = 0; q < UQ_N_SCORES; q++) {
        for (int w = 0; w < 3; w++) {
            for (int k = 0; k < A; k++)
                v[k] = w == 0 ? pts[k].single_mean[q] : w == 1 ? pts[k].single_std[q] : pts[k].ensemble[q];
            if (w < 2) {
                XSNPRINTF(name, sizeof(name), "%s/single/%s_%s", g, UQ_SCORE_NAMES[q], w ? "std" : "mean");
                XSNPRINTF(meaning, sizeof(meaning), "%s of each network alone on the rotated test images: %s over "
                          "the networks", UQ_SCORE_NAMES[q], w ? "population std" : "mean");
            } else {
                XSNPRINTF(name, sizeof(name), "%s/ensemble/%s", g, UQ_SCORE_NAMES[q]);
                XSNPRINTF(meaning, sizeof(meaning), "%s of the mean probability of the networks on the rotated "
                          "test images", UQ_SCORE_NAMES[q]);
            }
            resultio_f64(r, name, 1, dA, v, "(angle)", meaning);
        }
    }
    free(v);
}

static void print_rows(const char *set, const double *angles, const ShiftPoint *pts, int A) {
    for (int k = 0; k < A; k++) {
        printf("%g,%s", angles[k], set);
        for (int q = 0; q < UQ_N_SCORES; q++) printf(",%.6f,%.6f", pts[k].single_mean[q], pts[k].single_std[q]);
        for (int q = 0; q < UQ_N_SCORES; q++) printf(",%.6f", pts[k].ensemble[q]);
        printf("\n");
    }
}

int cmd_shift(int argc, char **argv) {
    ShiftOpts o = { .angles = "0:180:15", .M = 10, .images = 1000, .bins = 15 };
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, NULL, o.threads, o.in, out_buf, sizeof(out_buf), &o.out))) return rc;
    double *angles = XMALLOC_N(MAX_ANGLES, sizeof(double));
    const int A = parse_angles(o.angles, angles);
    if (A < 0) { free(angles); return -A; }

    SampleSet s, b;
    char sha_s[65], sha_b[65];
    uq_open_sets(o.in, o.baseline, o.job, o.M, &s, &b, sha_s, sha_b);
    Mnist mn;
    Dataset d;
    sample_load_split(&s.job, o.data, "test", (int)o.images, &mn, &d);
    const double t0 = ht_now();
    ShiftPoint *gen = XMALLOC_N((size_t)A, sizeof(ShiftPoint)), *base = XMALLOC_N((size_t)A, sizeof(ShiftPoint));
    set_shift(&s, (int)o.M, &d, angles, A, (int)o.bins, "generated", gen);
    if (o.baseline) set_shift(&b, (int)o.M, &d, angles, A, (int)o.bins, "baseline", base);
    const double secs = ht_now() - t0;

    const TargetArch *a = &s.arch;
    const size_t isz = (size_t)a->in_size;
    float *ex = XALLOC_FLOATS(XMUL(A, isz, "angles x pixels"));
    for (int k = 0; k < A; k++) image_rotate(d.images, a->in_h, a->in_w, a->in_c, angles[k], ex + (size_t)k * isz);
    ResultFile r;
    result_create(&r, o.out);
    resultio_provenance(&r, CMD, argc, argv);
    resultio_input(&r, "samples", o.in, sha_s);
    if (o.baseline) resultio_input(&r, "baseline", o.baseline, sha_b);
    result_attr_str(&r, "/", "checkpoint", s.checkpoint);
    result_attr_i64(&r, "/", "step", s.step);
    result_attr_str(&r, "/", "split", "test");
    result_attr_i64(&r, "/", "images", d.n);
    result_attr_i64(&r, "/", "members", o.M);
    result_attr_i64(&r, "/", "bins", o.bins);
    result_attr_str(&r, "/", "rotation", "counterclockwise as displayed, about the image centre ((w-1)/2, (h-1)/2), "
                    "bilinear interpolation, zero outside the image (analysis/metrics.c image_rotate)");
    size_t dA[1] = { (size_t)A }, de[4] = { (size_t)A, (size_t)a->in_h, (size_t)a->in_w, (size_t)a->in_c };
    resultio_f64(&r, "/angles", 1, dA, angles, "(angle)", "rotation in degrees, counterclockwise");
    result_f32(&r, "/examples", 4, de, ex);
    result_attr_str(&r, "/examples", "axes", "(angle, y, x, channel)");
    result_attr_str(&r, "/examples", "meaning", "test image 0 rotated by each angle, as the networks saw it");
    write_group(&r, "/generated", gen, A);
    result_attr_str(&r, "/generated", "label", "generated");
    if (o.baseline) {
        write_group(&r, "/baseline", base, A);
        result_attr_str(&r, "/baseline", "label", "deep ensemble");
    }
    result_close(&r);

    printf("# hyperanalyze shift: %s (step %lld)%s%s, %ld networks each, %d test images rotated by %d angles, "
           "%.1fs\n", o.in, (long long)s.step, o.baseline ? " and baseline " : "", o.baseline ? o.baseline : "", o.M,
           d.n, A, secs);
    printf("# single: each network alone, mean and std over the networks; ensemble: mean probability of the %ld "
           "networks; ECE with %ld bins\n", o.M, o.bins);
    printf("# results: %s\n", o.out);
    printf("angle,set,single_accuracy_mean,single_accuracy_std,single_nll_mean,single_nll_std,single_ece_mean,"
           "single_ece_std,ensemble_accuracy,ensemble_nll,ensemble_ece\n");
    print_rows("generated", angles, gen, A);
    if (o.baseline) { print_rows("baseline", angles, base, A); sampleset_close(&b); }
    sampleset_close(&s);
    mnist_free(&mn);
    free(angles); free(gen); free(base); free(ex);
    return 0;
}
