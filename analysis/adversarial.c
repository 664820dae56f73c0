// hyperanalyze adversarial: the paper's Fig. 8 (§4.2.3) as its original code ran it: for each
// image a new source network and a new ensemble, the smallest eps of a fast gradient sign attack
// that fools each line. The computation is analysis/adv_core.c (tested by tests/test_adversarial.c);
// this file parses options, reads the inputs and writes the result file.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adv_core.h"
#include "cmds_samples.h"
#include "common.h"
#include "sample.h"
#include "sha256.h"

#define CMD "adversarial"
#define ADV_MAX_EPS 1024                   // grid values at most
#define ADV_EPS_BLOCK 8                    // eps values per ensemble evaluation (adv_core.h)

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze adversarial SAMPLES.h5 [options]\n"
        "\n"
        "Fast gradient sign attacks as the paper's original code ran them (Fig. 8). For each image,\n"
        "networks drawn from the set for it alone: a source, one other network and an ensemble of M;\n"
        "images the source misclassifies are skipped. For each eps of the grid: untargeted\n"
        "x + eps sign(d CE(y)/dx) and targeted x - eps sign(d CE(y')/dx) (y' != y drawn per image),\n"
        "clipped to [0, 1]. Records per image the smallest eps that fools: the source, the other\n"
        "network and the ensemble's majority vote (crafted on the source), and the ensemble attacked\n"
        "white-box (crafted on -log mean_m p_m). Fools: untargeted prediction != y, targeted == y'.\n"
        "Writes FILE.h5 (docs/analysis.md) and prints, per line, the median smallest eps as CSV.\n"
        "Plot: python3 analysis/plot_adversarial.py FILE.h5 -o fig8.png\n"
        "\n"
        "options:\n"
        "  --n-images N       the first N images of the split (default 1000)\n"
        "  --split val|test   images (default val, as the paper)\n"
        "  --members M        ensemble size (default 100); the set needs M + 2 networks\n"
        "  --baseline DEEP.h5 the same attacks on a deep ensemble (hyperanalyze baseline) of M + 2\n"
        "  --eps-max E        largest perturbation (default 0.24)\n"
        "  --eps-step E       grid step (default 1/255: 0, 1/255, ..., 61/255)\n"
        "  --no-clip          do not clip adversarial images to [0, 1] (the original's variant)\n"
        "  --seed S           networks and target classes of each image (default 1)\n"
        "  --out FILE.h5      result file (default SAMPLES_adversarial.h5 beside the set)\n"
        "  --data DIR         MNIST directory\n"
        "  --job JOB.json     fail unless the set holds networks of this job's target architecture\n"
        "  --preload-max-mib N  read a set of at most N MiB into memory once (default 2048); a larger\n"
        "                     one is read network by network for every image (same results)\n"
        "  --threads N        OpenMP threads\n");
}

typedef struct {
    const char *in, *deep, *split, *out, *data, *job;
    long n_images, members, threads, seed, preload_mib;
    double eps_max, eps_step;
    int clip;
} AdvOptions;

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !(v >= lo && v <= hi))
        return ha_usage_error(CMD, "%s: expected a number in [%g, %g], got '%s'", opt, lo, hi, s ? s : "");
    *out = v;
    return 0;
}

// Returns -1 to go on, else the exit status.
static int parse_options(int argc, char **argv, AdvOptions *o) {
    *o = (AdvOptions){ .split = "val", .n_images = 1000, .members = 100, .seed = 1, .eps_max = 0.24,
                       .eps_step = 1.0 / 255.0, .clip = 1, .preload_mib = 2048 };
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--no-clip")) o->clip = 0;
        else if (a[0] == '-' && !v) return an_missing_value(CMD, a, usage);
        else if (!strcmp(a, "--split")) { o->split = v; i++; }
        else if (!strcmp(a, "--out")) { o->out = v; i++; }
        else if (!strcmp(a, "--data")) { o->data = v; i++; }
        else if (!strcmp(a, "--job")) { o->job = v; i++; }
        else if (!strcmp(a, "--baseline")) { o->deep = v; i++; }
        else if (!strcmp(a, "--n-images")) { if ((rc = an_long(CMD, a, v, 1, 1L << 30, &o->n_images))) return rc; i++; }
        else if (!strcmp(a, "--members")) { if ((rc = an_long(CMD, a, v, 1, 1L << 20, &o->members))) return rc; i++; }
        else if (!strcmp(a, "--seed")) { if ((rc = an_long(CMD, a, v, 0, 1L << 62, &o->seed))) return rc; i++; }
        else if (!strcmp(a, "--preload-max-mib")) { if ((rc = an_long(CMD, a, v, 0, 1L << 30, &o->preload_mib))) return rc; i++; }
        else if (!strcmp(a, "--threads")) { if ((rc = an_long(CMD, a, v, 1, 4096, &o->threads))) return rc; i++; }
        else if (!strcmp(a, "--eps-max")) { if ((rc = parse_double(a, v, 0.0, 1.0, &o->eps_max))) return rc; i++; }
        else if (!strcmp(a, "--eps-step")) { if ((rc = parse_double(a, v, 1e-6, 1.0, &o->eps_step))) return rc; i++; }
        else if (a[0] == '-') return ha_usage_error(CMD, "unknown option '%s'", a);
        else if (o->in) return ha_usage_error(CMD, "one sample set expected, got '%s' and '%s'", o->in, a);
        else o->in = a;
    }
    if (!o->in) return ha_usage_error(CMD, "a sample set is required: hyperanalyze adversarial SAMPLES.h5");
    if (o->eps_step > o->eps_max)
        return ha_usage_error(CMD, "--eps-step %g is larger than --eps-max %g: the grid would hold only eps = 0",
                              o->eps_step, o->eps_max);
    if (o->eps_max / o->eps_step + 1 > ADV_MAX_EPS)
        return ha_usage_error(CMD, "--eps-max %g / --eps-step %g gives %.0f grid values (at most %d)", o->eps_max,
                              o->eps_step, floor(o->eps_max / o->eps_step + 1e-9) + 1, ADV_MAX_EPS);
    return -1;
}

// SHA-256 (hex) of a whole file.
static void file_sha256(const char *path, char hex[65]) {
    FILE *f = XFOPEN(path, "rb");
    Sha256 h;
    sha256_init(&h);
    enum { BUF = 1 << 20 };
    unsigned char *buf = XMALLOC(BUF);
    size_t got;
    while ((got = fread(buf, 1, BUF, f)) > 0) sha256_update(&h, buf, got);
    HT_CHECK(!ferror(f), "'%s': read error while computing its SHA-256", path);
    XFCLOSE(f, path);
    free(buf);
    uint8_t d[32];
    sha256_final(&h, d);
    sha256_to_hex(d, hex);
}

// "hyperanalyze adversarial ARG ..." with arguments holding anything but [A-Za-z0-9_./=:,+-] in
// single quotes.
static char *command_line(int argc, char **argv) {
    size_t n = strlen("hyperanalyze") + 1;
    for (int i = 0; i < argc; i++) n = XADD(n, 4 * strlen(argv[i]) + 3, "command line");
    char *s = XMALLOC(n), *p = s;
    p += sprintf(p, "hyperanalyze");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const int plain = a[0] && strspn(a, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./=:,+-") == strlen(a);
        *p++ = ' ';
        if (plain) { strcpy(p, a); p += strlen(a); continue; }
        *p++ = '\'';
        for (; *a; a++) {
            if (*a == '\'') { strcpy(p, "'\\''"); p += 4; }
            else *p++ = *a;
        }
        *p++ = '\'';
        *p = 0;
    }
    *p = 0;
    return s;
}

// One population of networks: the set, its checksum, its pool (in memory when small) and results.
typedef struct {
    const char *name;     // "generated" or "deep"
    SampleSet set;
    char sha[65];
    float *theta;         // preloaded (n, n_weights) or NULL
    AdvPool pool;
    AdvImage *res;        // (n_images)
    int64_t *nets;        // (n_images, M + 2)
} Population;

static void population_open(Population *p, const char *name, const char *path, const TargetArch *expect, int M) {
    memset(p, 0, sizeof(*p));
    p->name = name;
    sampleset_open(&p->set, path, expect);
    int64_t probe[1];
    if (p->set.n < M + 2) adv_pick_networks(0, 0, p->set.n, M + 2, path, probe);   // fatal with the counts
    p->pool = (AdvPool){ &p->set.arch, p->set.n, NULL, &p->set };
}

static void population_load(Population *p, int n_images, int M, long preload_mib) {
    file_sha256(p->set.path, p->sha);
    const size_t W = p->set.arch.n_weights;
    size_t bytes;
    if (!ht_mul_overflows((size_t)p->set.n, W * sizeof(float), &bytes) && bytes <= ((size_t)preload_mib << 20)) {
        HT_CHECK_MEMORY(bytes, "adversarial: the %lld networks of '%s'", p->set.n, p->set.path);
        p->theta = XALLOC_FLOATS((size_t)p->set.n * W);
        for (long long s = 0; s < p->set.n; s += 256) {
            const int k = p->set.n - s < 256 ? (int)(p->set.n - s) : 256;
            sampleset_read(&p->set, s, k, p->theta + (size_t)s * W);
        }
        p->pool.theta = p->theta;
    }
    p->res = XMALLOC_N(n_images, sizeof(AdvImage));
    p->nets = XMALLOC_N(XMUL(n_images, M + 2, "adversarial: network indices"), sizeof(int64_t));
}

static void population_free(Population *p) {
    sampleset_close(&p->set);
    free(p->theta); free(p->res); free(p->nets);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Median of the smallest eps over the attacked images (INFINITY when at most half are fooled).
static double median_eps(const Population *p, int n, int mode, int line, double *scratch) {
    int k = 0;
    for (int i = 0; i < n; i++) if (p->res[i].attacked) scratch[k++] = p->res[i].eps_min[mode][line];
    if (!k) return NAN;
    qsort(scratch, (size_t)k, sizeof(double), cmp_double);
    return k % 2 ? scratch[k / 2] : 0.5 * (scratch[k / 2 - 1] + scratch[k / 2]);
}

static const char *line_meaning(int line) {
    switch (line) {
    case ADV_SOURCE: return "crafted on the source network, tested on it (white-box, one network)";
    case ADV_OTHER: return "crafted on the source network, tested on one other network (transfer to one network)";
    case ADV_ENS_TRANSFER: return "crafted on the source network, tested on the ensemble's majority vote (transfer)";
    default: return "crafted on the ensemble's loss -log mean_m p_m, tested on its majority vote (white-box)";
    }
}

static void write_population(ResultFile *r, const Population *p, int n, int M) {
    char name[128];
    int attacked = 0;
    double *v = XMALLOC_N(n, sizeof(double));
    int64_t *a = XMALLOC_N(n, sizeof(int64_t));
    for (int i = 0; i < n; i++) attacked += a[i] = p->res[i].attacked;
    const size_t dn[1] = { (size_t)n }, dnm[2] = { (size_t)n, (size_t)M + 2 };
    XSNPRINTF(name, sizeof(name), "/%s/attacked", p->name);
    result_i64(r, name, 1, dn, a);
    result_attr_str(r, name, "axes", "image");
    result_attr_str(r, name, "meaning", "1: attacked; 0: skipped, the source network misclassifies the clean image");
    XSNPRINTF(name, sizeof(name), "/%s/networks", p->name);
    result_i64(r, name, 2, dnm, p->nets);
    result_attr_str(r, name, "axes", "image, slot");
    result_attr_str(r, name, "meaning", "indices into the sample set: slot 0 the source, 1 the other network, "
                    "2.. the ensemble (drawn for every image, also skipped ones)");
    for (int mode = 0; mode < ADV_MODES; mode++)
        for (int line = 0; line < ADV_LINES; line++) {
            for (int i = 0; i < n; i++) v[i] = p->res[i].eps_min[mode][line];
            XSNPRINTF(name, sizeof(name), "/%s/%s/%s", p->name, adv_mode_names[mode], adv_line_names[line]);
            result_f64(r, name, 1, dn, v);
            result_attr_str(r, name, "axes", "image");
            char meaning[400];
            XSNPRINTF(meaning, sizeof(meaning), "smallest eps of the grid (fraction of [0, 1]) at which the %s attack "
                      "fools it (%s): %s; inf: no eps of the grid does, nan: image skipped", adv_mode_names[mode],
                      mode == ADV_UNTARGETED ? "prediction != label" : "prediction == target", line_meaning(line));
            result_attr_str(r, name, "meaning", meaning);
        }
    XSNPRINTF(name, sizeof(name), "/%s", p->name);
    result_attr_str(r, name, "samples", p->set.path);
    result_attr_str(r, name, "samples_sha256", p->sha);
    result_attr_str(r, name, "checkpoint", p->set.checkpoint);
    result_attr_i64(r, name, "step", p->set.step);
    result_attr_i64(r, name, "attacked", attacked);
    result_attr_i64(r, name, "skipped", n - attacked);
    free(v); free(a);
}

static void write_result(const AdvOptions *o, const char *cmdline, const AdvConfig *cfg, const Dataset *d,
                         const int *targets, Population *pops, int n_pops) {
    const int n = d->n, E = cfg->n_eps;
    ResultFile r;
    result_create(&r, o->out);
    const size_t de[1] = { (size_t)E }, dn[1] = { (size_t)n };
    result_f64(&r, "/eps", 1, de, cfg->eps);
    result_attr_str(&r, "/eps", "axes", "eps");
    result_attr_str(&r, "/eps", "meaning", "perturbation sizes of the grid, fractions of the dynamic range [0, 1]");
    int64_t *l = XMALLOC_N(n, sizeof(int64_t)), *t = XMALLOC_N(n, sizeof(int64_t));
    for (int i = 0; i < n; i++) { l[i] = d->labels[i]; t[i] = targets[i]; }
    result_i64(&r, "/labels", 1, dn, l);
    result_attr_str(&r, "/labels", "axes", "image");
    result_attr_str(&r, "/labels", "meaning", "label y of image i (image i = the i-th image of the split)");
    result_i64(&r, "/targets", 1, dn, t);
    result_attr_str(&r, "/targets", "axes", "image");
    result_attr_str(&r, "/targets", "meaning", "target class y' != y of the targeted attack");
    for (int q = 0; q < n_pops; q++) write_population(&r, &pops[q], n, cfg->members);
    result_attr_str(&r, "/", "command", "hyperanalyze adversarial");
    result_attr_str(&r, "/", "command_line", cmdline);
    result_attr_str(&r, "/", "tool_version", "hypertrain " HT_VERSION);
    result_attr_str(&r, "/", "samples", o->in);
    result_attr_str(&r, "/", "samples_sha256", pops[0].sha);
    result_attr_str(&r, "/", "baseline", o->deep ? o->deep : "");
    result_attr_str(&r, "/", "baseline_sha256", n_pops > 1 ? pops[1].sha : "");
    result_attr_str(&r, "/", "split", o->split);
    result_attr_i64(&r, "/", "images", n);
    result_attr_i64(&r, "/", "members", cfg->members);
    result_attr_i64(&r, "/", "seed", (int64_t)cfg->seed);
    result_attr_i64(&r, "/", "clip", cfg->clip);
    result_attr_f64(&r, "/", "eps_step", o->eps_step);
    result_attr_f64(&r, "/", "eps_max", o->eps_max);
    result_attr_str(&r, "/", "attack", cfg->clip
        ? "fast gradient sign: untargeted clip(x + eps sign(dCE(y)/dx), 0, 1), targeted clip(x - eps sign(dCE(y')/dx), 0, 1)"
        : "fast gradient sign: untargeted x + eps sign(dCE(y)/dx), targeted x - eps sign(dCE(y')/dx) (not clipped)");
    result_attr_str(&r, "/", "vote", "majority of the members' argmax (ties to the lowest class); ties between "
                    "classes to the lowest class");
    result_attr_str(&r, "/", "whitebox_loss", "-log mean_m p_m(y | x) (untargeted, ascended), -log mean_m p_m(y' | x) "
                    "(targeted, descended)");
    result_close(&r);
    free(l); free(t);
}

static void print_summary(const AdvOptions *o, const AdvConfig *cfg, const Population *pops, int n_pops, int n,
                          double secs) {
    printf("# hyperanalyze adversarial: %s, %d %s images, ensembles of %d, %d eps values 0 .. %.4f, %s, %.1f s\n", o->in,
           n, o->split, cfg->members, cfg->n_eps, cfg->eps[cfg->n_eps - 1], cfg->clip ? "clipped" : "not clipped", secs);
    printf("# results: %s\n", o->out);
    printf("population,mode,line,attacked,skipped,median_eps,median_eps_x255,fooled_at_max_eps\n");
    double *scratch = XMALLOC_N(n, sizeof(double));
    for (int q = 0; q < n_pops; q++) {
        int att = 0;
        for (int i = 0; i < n; i++) att += pops[q].res[i].attacked;
        for (int mode = 0; mode < ADV_MODES; mode++)
            for (int line = 0; line < ADV_LINES; line++) {
                int fooled = 0;
                for (int i = 0; i < n; i++) fooled += pops[q].res[i].attacked && isfinite(pops[q].res[i].eps_min[mode][line]);
                const double med = median_eps(&pops[q], n, mode, line, scratch);
                printf("%s,%s,%s,%d,%d,%.6f,%.2f,%.6f\n", pops[q].name, adv_mode_names[mode], adv_line_names[line], att,
                       n - att, med, med * 255.0, att ? (double)fooled / att : NAN);
            }
    }
    free(scratch);
}

int cmd_adversarial(int argc, char **argv) {
    AdvOptions o;
    int rc = parse_options(argc, argv, &o);
    if (rc >= 0) return rc;
    char out_buf[HT_PATH_MAX + 32];
    if ((rc = an_finish_options(CMD, o.split, o.threads, o.in, out_buf, sizeof(out_buf), &o.out))) return rc;
    const int M = (int)o.members, E = (int)floor(o.eps_max / o.eps_step + 1e-9) + 1;
    double *eps = XMALLOC_N(E, sizeof(double));
    for (int k = 0; k < E; k++) eps[k] = k * o.eps_step;

    TargetArch expect;
    Population pops[2];
    const int n_pops = o.deep ? 2 : 1;
    population_open(&pops[0], "generated", o.in, an_expected_arch(o.job, &expect), M);
    if (o.deep) population_open(&pops[1], "deep", o.deep, &pops[0].set.arch, M);
    const TargetArch *a = &pops[0].set.arch;
    HT_CHECK(a->classes >= 2, "'%s': the target network has %d classes; the attacks need 2 or more", o.in, a->classes);
    Mnist mn;
    Dataset d;
    sample_load_split(&pops[0].set.job, o.data, o.split, (int)o.n_images, &mn, &d);
    const AdvConfig cfg = { M, E, eps, o.clip, (uint64_t)o.seed, ADV_EPS_BLOCK };
    int *targets = XMALLOC_N(d.n, sizeof(int));
    for (int i = 0; i < d.n; i++) targets[i] = adv_target_class(cfg.seed, i, d.labels[i], a->classes);
    char *cmdline = command_line(argc, argv);

    const double t0 = ht_now();
    AdvWork w;
    adv_work_init(&w, a, &cfg);
    for (int q = 0; q < n_pops; q++) {
        population_load(&pops[q], d.n, M, o.preload_mib);
        adv_run(&w, &cfg, &pops[q].pool, d.n, d.images, d.labels, targets, pops[q].name, pops[q].nets, pops[q].res);
    }
    adv_work_free(&w);
    const double secs = ht_now() - t0;
    write_result(&o, cmdline, &cfg, &d, targets, pops, n_pops);
    print_summary(&o, &cfg, pops, n_pops, d.n, secs);

    for (int q = 0; q < n_pops; q++) population_free(&pops[q]);
    mnist_free(&mn);
    free(eps); free(targets); free(cmdline);
    return 0;
}
