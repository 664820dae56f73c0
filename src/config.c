// config.c: the job (see config.h). One table, KEYS, lists every key with its JSON path, type,
// field and valid range; loading a file, --set overrides, printing and validation all go through
// it, so a key cannot be parsed one way and printed another. Every error names its source (the
// file, "--set" or "job"), the key, what was expected and what was found, and is fatal.
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common.h"
#include "data.h"

#define HT_SIZE_MAX (1 << 20)        // upper bound of widths (filters, units, hidden, z_dim, code_size)
#define HT_INPUT_MAX (1 << 24)       // upper bound of h*w*c of one input image
#define MNIST_TRAIN_FILE 60000    // images in the training file of MNIST and of Fashion-MNIST
#define SEED_MAX 9007199254740992.0 // 2^53: largest integer a JSON number holds exactly
#define KEY_MAX 256

typedef enum {
    K_SECTION, K_INT, K_DOUBLE, K_BOOL, K_STRING, K_SEED, K_TASK, K_DIST, K_EVALP, K_CMATH, K_DATASET,
    K_HIDDEN, K_INPUT, K_LAYERS, K_MEANS
} Kind;

typedef struct {
    const char *key;    // dotted JSON path
    Kind kind;
    size_t off;         // offsetof(Job, field)
    size_t aux;         // K_HIDDEN: offsetof the count field; K_STRING: buffer size
    double lo, hi;      // K_INT, K_DOUBLE, K_HIDDEN entries: valid range
    int lo_open, hi_open; // 1 = bound excluded
} KeyDef;

#define F(field) offsetof(Job, field)
#define SZ(field) sizeof(((Job *)0)->field)
#define INF INFINITY
// Order = order of job_to_json's output. Sections precede their members, which are contiguous.
static const KeyDef KEYS[] = {
    {"name",              K_STRING, F(name), SZ(name), 0, 0, 0, 0},
    {"task",              K_TASK,   F(task), 0, 0, 0, 0, 0},
    {"seed",              K_SEED,   F(seed), 0, 0, SEED_MAX, 0, 0},
    {"steps",             K_INT,    F(steps), 0, 1, INT_MAX, 0, 0},
    {"batch",             K_INT,    F(batch), 0, 2, INT_MAX, 0, 0},
    {"images_per_sample", K_INT,    F(images_per_sample), 0, 1, INT_MAX, 0, 0},
    {"lambda",            K_DOUBLE, F(lambda), 0, 0, INF, 1, 0},
    {"lambda_growth",     K_DOUBLE, F(lambda_growth), 0, 0, INF, 1, 0},
    {"lr",                K_DOUBLE, F(lr), 0, 0, INF, 1, 0},
    {"lr_decay",          K_DOUBLE, F(lr_decay), 0, 0, 1, 1, 0},
    {"adam_beta1",        K_DOUBLE, F(beta1), 0, 0, 1, 0, 1},
    {"adam_beta2",        K_DOUBLE, F(beta2), 0, 0, 1, 0, 1},
    {"adam_eps",          K_DOUBLE, F(adam_eps), 0, 0, INF, 1, 0},
    {"entropy_distance",  K_DIST,   F(distance), 0, 0, 0, 0, 0},
    {"z_dim",             K_INT,    F(z_dim), 0, 1, HT_SIZE_MAX, 0, 0},
    {"code_size",         K_INT,    F(code_size), 0, 1, HT_SIZE_MAX, 0, 0},
    {"extractor_hidden",  K_HIDDEN, F(ext_hidden), F(n_ext_hidden), 1, HT_SIZE_MAX, 0, 0},
    {"leaky_alpha",       K_DOUBLE, F(leaky_alpha), 0, 0, 1, 0, 1},
    {"bn_eps",            K_DOUBLE, F(bn_eps), 0, 0, INF, 1, 0},
    {"bn_decay",          K_DOUBLE, F(bn_decay), 0, 0, 1, 0, 1},
    {"init_scale",        K_DOUBLE, F(init_scale), 0, 0, INF, 1, 0},
    {"gauge_fixing",      K_BOOL,   F(gauge_fixing), 0, 0, 0, 0, 0},
    {"target",            K_SECTION, 0, 0, 0, 0, 0, 0},
    {"target.input",      K_INPUT,  F(input_h), 0, 1, HT_INPUT_MAX, 0, 0},
    {"target.classes",    K_INT,    F(classes), 0, 2, HT_SIZE_MAX, 0, 0},
    {"target.layers",     K_LAYERS, F(layers), 0, 0, 0, 0, 0},
    {"data",              K_SECTION, 0, 0, 0, 0, 0, 0},
    {"data.dataset",      K_DATASET, F(dataset), 0, 0, 0, 0, 0},
    {"data.dir",          K_STRING, F(data_dir), SZ(data_dir), 0, 0, 0, 0},
    {"data.train",        K_INT,    F(n_train), 0, 1, MNIST_TRAIN_FILE, 0, 0},
    {"data.validation",   K_INT,    F(n_val), 0, 1, MNIST_TRAIN_FILE, 0, 0},
    {"data.verify",       K_BOOL,   F(verify_checksums), 0, 0, 0, 0, 0},
    {"val_every",         K_INT,    F(val_every), 0, 0, INT_MAX, 0, 0},
    {"val_samples",       K_INT,    F(val_samples), 0, 2, INT_MAX, 0, 0},
    {"val_images",        K_INT,    F(val_images), 0, 0, INT_MAX, 0, 0},
    {"eval_precision",    K_EVALP,  F(eval_precision), 0, 0, 0, 0, 0},
    {"cuda_math",         K_CMATH,  F(cuda_math), 0, 0, 0, 0, 0},
    {"checkpoint_every",  K_INT,    F(ckpt_every), 0, 0, INT_MAX, 0, 0},
    {"keep_checkpoints",  K_INT,    F(keep_ckpt), 0, 1, INT_MAX, 0, 0},
    {"log_every",         K_INT,    F(log_every), 0, 1, INT_MAX, 0, 0},
    {"threads",           K_INT,    F(threads), 0, 0, 4096, 0, 0},
    {"toy",               K_SECTION, 0, 0, 0, 0, 0, 0},
    {"toy.hidden",        K_HIDDEN, F(toy_hidden), F(n_toy_hidden), 1, HT_SIZE_MAX, 0, 0},
    {"toy.l2",            K_DOUBLE, F(toy_l2), 0, 0, INF, 0, 0},
    {"toy.means",         K_MEANS,  F(toy_means), 0, 0, 0, 0, 0},
    {"toy.sigma",         K_DOUBLE, F(toy_sigma), 0, 0, INF, 1, 0},
    {"toy.curve_points",  K_INT,    F(toy_curve_points), 0, 2, INT_MAX, 0, 0},
};
#define N_KEYS ((int)(sizeof(KEYS) / sizeof(KEYS[0])))

static const char *const OP_NAMES[] = {"conv", "fc", "relu", "maxpool"};
static const char *const TASK_NAMES[] = {"mnist", "toy"};
static const char *const DIST_NAMES[] = {"l1", "l2"};
static const char *const EVALP_NAMES[] = {"fp32", "bf16"};
static const char *const CMATH_NAMES[] = {"fp32", "tf32"};

// The data sets' names (data.h), in DataSetId order, for get_enum.
static void dataset_names(const char *names[DATA_N_SETS]) {
    for (int i = 0; i < DATA_N_SETS; i++) names[i] = data_set_name(i);
}

// ---------------------------------------------------------------------------------------------
// Defaults: the paper's MNIST run (DESIGN.md, "The model").

static void set_layer(LayerSpec *l, OpType type, int kernel, int filters, int h0, int h1,
                      int per_filter) {
    memset(l, 0, sizeof(*l));
    l->type = type;
    l->kernel = kernel;
    l->filters = filters;
    if (h0 > 0) l->gen_hidden[l->n_gen_hidden++] = h0;
    if (h1 > 0) l->gen_hidden[l->n_gen_hidden++] = h1;
    l->per_filter = per_filter;
}

void job_defaults(Job *job) {
    memset(job, 0, sizeof(*job)); // also zeroes padding and unused array tails (memcmp-able)
    XSNPRINTF(job->name, sizeof(job->name), "mnist");
    job->task = TASK_MNIST;
    job->seed = 1;
    job->steps = 13000;
    job->batch = 32;
    job->images_per_sample = 32;
    job->lambda = 1000;
    job->lambda_growth = 1;
    job->lr = 3e-4;
    job->lr_decay = 0.99998;
    job->beta1 = 0.9;
    job->beta2 = 0.999;
    job->adam_eps = 1e-8;
    job->distance = DIST_L1;
    job->z_dim = 300;
    job->code_size = 15;
    job->ext_hidden[0] = 300;
    job->ext_hidden[1] = 300;
    job->n_ext_hidden = 2;
    job->leaky_alpha = 0.05;
    job->bn_eps = 1e-7;
    job->bn_decay = 0.98;
    job->init_scale = 0.01;
    job->gauge_fixing = 1;
    job->input_h = 28;
    job->input_w = 28;
    job->input_c = 1;
    job->classes = 10;
    int n = 0;
    set_layer(&job->layers[n++], OP_CONV, 5, 32, 40, 40, 1);
    set_layer(&job->layers[n++], OP_RELU, 0, 0, 0, 0, 0);
    set_layer(&job->layers[n++], OP_MAXPOOL, 2, 0, 0, 0, 0);
    set_layer(&job->layers[n++], OP_CONV, 5, 16, 100, 100, 1);
    set_layer(&job->layers[n++], OP_RELU, 0, 0, 0, 0, 0);
    set_layer(&job->layers[n++], OP_MAXPOOL, 2, 0, 0, 0, 0);
    set_layer(&job->layers[n++], OP_FC, 0, 8, 100, 100, 1);
    set_layer(&job->layers[n++], OP_RELU, 0, 0, 0, 0, 0);
    set_layer(&job->layers[n++], OP_FC, 0, 10, 60, 60, 0);
    job->n_layers = n;
    job->dataset = DATA_MNIST;
    job->data_dir[0] = '\0';
    job->n_train = 55000;
    job->n_val = 5000;
    job->verify_checksums = 1;
    job->val_every = 500;
    job->val_samples = 200;
    job->val_images = 0;
    job->ckpt_every = 1000;
    job->keep_ckpt = 3;
    job->log_every = 10;
    job->threads = 0;
    job->toy_hidden[0] = 30;
    job->toy_hidden[1] = 10;
    job->toy_hidden[2] = 10;
    job->n_toy_hidden = 3;
    job->toy_l2 = 0.001;
    // 8 components evenly spaced on a circle of radius 2 (1.4142135623730951 = 2 cos 45 deg).
    static const double means[8][2] = {
        {2, 0}, {1.4142135623730951, 1.4142135623730951}, {0, 2},
        {-1.4142135623730951, 1.4142135623730951}, {-2, 0},
        {-1.4142135623730951, -1.4142135623730951}, {0, -2},
        {1.4142135623730951, -1.4142135623730951}};
    job->toy_n_mix = 8;
    memcpy(job->toy_means, means, sizeof(means));
    job->toy_sigma = 0.2;
    job->toy_curve_points = 400;
}

// ---------------------------------------------------------------------------------------------
// Growing text buffer and number/string formatting.

typedef struct { char *p; size_t n, cap; } Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        while (b->n + n + 1 > b->cap) b->cap = b->cap ? 2 * b->cap : 1024;
        b->p = XREALLOC(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void buf_puts(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }

// Shortest of %.15g/%.16g/%.17g that reads back as exactly d; integers without exponent.
static void fmt_double(char *out, size_t n, double d) {
    if (!isfinite(d)) { XSNPRINTF(out, n, "null"); return; }
    if (d == floor(d) && fabs(d) <= SEED_MAX) { XSNPRINTF(out, n, "%.0f", d); return; }
    for (int prec = 15; prec <= 17; prec++) {
        XSNPRINTF(out, n, "%.*g", prec, d);
        if (strtod(out, NULL) == d) break;
    }
    char *e = strchr(out, 'e'); // "1e-08" -> "1e-8", "1e+20" -> "1e20"
    if (e) {
        char *digits = e + 1 + (e[1] == '-' || e[1] == '+'), *w = e + 1;
        if (e[1] == '-') w++;
        while (*digits == '0' && digits[1]) digits++;
        memmove(w, digits, strlen(digits) + 1);
    }
}

static void put_json_string(Buf *b, const char *s) {
    buf_puts(b, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') { esc[0] = '\\'; esc[1] = (char)*c; buf_put(b, esc, 2); }
        else if (*c == '\n') buf_puts(b, "\\n");
        else if (*c == '\t') buf_puts(b, "\\t");
        else if (*c < 0x20) { XSNPRINTF(esc, sizeof(esc), "\\u%04x", *c); buf_puts(b, esc); }
        else buf_put(b, (const char *)c, 1);
    }
    buf_puts(b, "\"");
}

// One-line JSON with ", " and ": " separators.
static void put_inline(Buf *b, const cJSON *v) {
    char num[40];
    if (cJSON_IsNumber(v)) { fmt_double(num, sizeof(num), v->valuedouble); buf_puts(b, num); }
    else if (cJSON_IsString(v)) put_json_string(b, v->valuestring);
    else if (cJSON_IsTrue(v)) buf_puts(b, "true");
    else if (cJSON_IsFalse(v)) buf_puts(b, "false");
    else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        int obj = cJSON_IsObject(v);
        buf_puts(b, obj ? "{" : "[");
        for (const cJSON *c = v->child; c; c = c->next) {
            if (obj) { put_json_string(b, c->string); buf_puts(b, ": "); }
            put_inline(b, c);
            if (c->next) buf_puts(b, ", ");
        }
        buf_puts(b, obj ? "}" : "]");
    } else buf_puts(b, "null");
}

static void put_indent(Buf *b, int indent) {
    for (int i = 0; i < indent; i++) buf_puts(b, " ");
}

// Objects one member per line; arrays of arrays/objects one element per line; other arrays inline.
static void put_pretty(Buf *b, const cJSON *v, int indent) {
    int nested = 0;
    if (cJSON_IsArray(v))
        for (const cJSON *c = v->child; c; c = c->next) nested |= cJSON_IsArray(c) || cJSON_IsObject(c);
    if (cJSON_IsObject(v) && v->child) {
        buf_puts(b, "{\n");
        for (const cJSON *c = v->child; c; c = c->next) {
            put_indent(b, indent + 2);
            put_json_string(b, c->string);
            buf_puts(b, ": ");
            put_pretty(b, c, indent + 2);
            buf_puts(b, c->next ? ",\n" : "\n");
        }
        put_indent(b, indent);
        buf_puts(b, "}");
    } else if (nested) {
        buf_puts(b, "[\n");
        for (const cJSON *c = v->child; c; c = c->next) {
            put_indent(b, indent + 2);
            put_inline(b, c);
            buf_puts(b, c->next ? ",\n" : "\n");
        }
        put_indent(b, indent);
        buf_puts(b, "]");
    } else put_inline(b, v);
}

// A JSON value for error messages, shortened to about 80 characters.
static char *show(const cJSON *v) {
    Buf b = {0};
    if (!v) buf_puts(&b, "nothing");
    else put_inline(&b, v);
    if (b.n > 80) { b.n = 77; b.p[77] = '\0'; buf_puts(&b, "..."); }
    return b.p;
}

// ---------------------------------------------------------------------------------------------
// Errors.

__attribute__((noreturn)) static void bad_value(const char *src, const char *key,
                                                const char *expected, const cJSON *got) {
    HT_FATAL("%s: key \"%s\": expected %s, got %s", src, key, expected, show(got));
}

static void describe_range(char *out, size_t n, const char *what, double lo, double hi,
                           int lo_open, int hi_open) {
    char a[40], c[40];
    fmt_double(a, sizeof(a), lo);
    fmt_double(c, sizeof(c), hi);
    int no_hi = isinf(hi) || hi >= (double)INT_MAX;
    if (no_hi) XSNPRINTF(out, n, "%s %s %s", what, lo_open ? ">" : ">=", a);
    else XSNPRINTF(out, n, "%s in %c%s, %s%c", what, lo_open ? '(' : '[', a, c, hi_open ? ')' : ']');
}

static int in_range(double x, double lo, double hi, int lo_open, int hi_open) {
    return (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
}

// out (KEY_MAX bytes) = "prefix.name", or name at the top level. A key that does not fit is no
// key of a job: fatal, naming the start of it.
static void join_key(char *out, const char *src, const char *prefix, const char *name) {
    const int p = prefix && *prefix;
    if (strlen(name) + (p ? strlen(prefix) + 1 : 0) >= KEY_MAX)
        HT_FATAL("%s: unknown key \"%s%s%.40s...\" (too long: %zu characters)", src, p ? prefix : "",
                 p ? "." : "", name, strlen(name));
    if (p) XSNPRINTF(out, KEY_MAX, "%s.%s", prefix, name);
    else XSNPRINTF(out, KEY_MAX, "%s", name);
}

// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions), case-insensitive.
static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < d[i][j])
                d[i][j] = d[i - 2][j - 2] + 1; // transposition ("lamdba")
        }
    return d[la][lb];
}

static const char *last_part(const char *key) {
    const char *dot = strrchr(key, '.');
    return dot ? dot + 1 : key;
}

static int parent_is(const char *key, const char *prefix) {
    size_t n = strlen(prefix);
    if (n == 0) return strchr(key, '.') == NULL;
    return strncmp(key, prefix, n) == 0 && key[n] == '.' && strchr(key + n + 1, '.') == NULL;
}

// Unknown key `name` inside object `prefix` ("" = top level). With full = 1 (--set), `name` is a
// full dotted path and every key is a candidate.
__attribute__((noreturn)) static void unknown_key(const char *src, const char *prefix,
                                                  const char *name, int full) {
    char key[KEY_MAX];
    if (full) XSNPRINTF(key, sizeof(key), "%s", name);
    else join_key(key, src, prefix, name);
    const char *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < N_KEYS; i++) {
        if (!full && !parent_is(KEYS[i].key, prefix)) continue;
        int d = edit_distance(full ? key : name, full ? KEYS[i].key : last_part(KEYS[i].key));
        if (d < best_d) { best_d = d; best = KEYS[i].key; }
    }
    int len = (int)strlen(full ? key : name);
    int max_d = len <= 4 ? 1 : len <= 8 ? 2 : len / 3;
    if (best && best_d <= max_d)
        HT_FATAL("%s: unknown key \"%s\" (did you mean \"%s\"?)", src, key, best);
    if (!full && *prefix) {
        Buf b = {0};
        for (int i = 0; i < N_KEYS; i++) {
            if (!parent_is(KEYS[i].key, prefix)) continue;
            buf_puts(&b, b.n ? ", \"" : "\"");
            buf_puts(&b, last_part(KEYS[i].key));
            buf_puts(&b, "\"");
        }
        HT_FATAL("%s: unknown key \"%s\" (\"%s\" takes %s, \"comment\")", src, key, prefix, b.p);
    }
    HT_FATAL("%s: unknown key \"%s\" (docs/jobs.md lists every key)", src, key);
}

// "comment" may appear in any object: a string, or a list of strings.
static void check_comment(const char *src, const char *prefix, const cJSON *v) {
    int ok = cJSON_IsString(v);
    if (cJSON_IsArray(v)) {
        ok = 1;
        for (const cJSON *c = v->child; c; c = c->next) ok &= cJSON_IsString(c);
    }
    if (!ok) {
        char key[KEY_MAX];
        join_key(key, src, prefix, "comment");
        bad_value(src, key, "a string or a list of strings", v);
    }
}

static void check_duplicate(const char *src, const char *prefix, const cJSON *obj, const cJSON *c) {
    for (const cJSON *p = obj->child; p != c; p = p->next)
        if (strcmp(p->string, c->string) == 0) {
            char key[KEY_MAX];
            join_key(key, src, prefix, c->string);
            HT_FATAL("%s: key \"%s\" appears more than once", src, key);
        }
}

// ---------------------------------------------------------------------------------------------
// Typed getters: each checks type and range and names the key on failure.

static int get_int(const char *src, const char *key, const cJSON *v, double lo, double hi,
                   const char *what) {
    char exp[128];
    if (lo < (double)INT_MIN) lo = INT_MIN;
    if (hi > (double)INT_MAX) hi = INT_MAX;
    describe_range(exp, sizeof(exp), what ? what : "an integer", lo, hi, 0, 0);
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble > hi) { // say where it ends
        char top[40];
        fmt_double(top, sizeof(top), hi);
        const size_t len = strlen(exp);
        XSNPRINTF(exp + len, sizeof(exp) - len, "%s%s", strchr(exp, '[') ? "" : " and <= ", strchr(exp, '[') ? "" : top);
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
        !in_range(v->valuedouble, lo, hi, 0, 0))
        bad_value(src, key, exp, v);
    return (int)v->valuedouble;
}

static double get_double(const char *src, const char *key, const cJSON *v, const KeyDef *d) {
    char exp[128];
    describe_range(exp, sizeof(exp), "a number", d->lo, d->hi, d->lo_open, d->hi_open);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        !in_range(v->valuedouble, d->lo, d->hi, d->lo_open, d->hi_open))
        bad_value(src, key, exp, v);
    return v->valuedouble;
}

static int get_bool(const char *src, const char *key, const cJSON *v) {
    if (!cJSON_IsBool(v)) bad_value(src, key, "true or false", v);
    return cJSON_IsTrue(v) ? 1 : 0;
}

static int get_enum(const char *src, const char *key, const cJSON *v, const char *const *names, int n) {
    if (cJSON_IsString(v))
        for (int i = 0; i < n; i++)
            if (strcmp(v->valuestring, names[i]) == 0) return i;
    char exp[128] = "one of ";
    for (int i = 0; i < n; i++) {
        size_t l = strlen(exp);
        XSNPRINTF(exp + l, sizeof(exp) - l, "%s\"%s\"", i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
    }
    bad_value(src, key, exp, v);
}

static void get_string(const char *src, const char *key, const cJSON *v, char *dst, size_t cap,
                       int is_name) {
    char exp[128];
    if (is_name)
        XSNPRINTF(exp, sizeof(exp), "a name of 1 to %zu characters from A-Z a-z 0-9 . _ + -, "
                 "not starting with '.'", cap - 1);
    else XSNPRINTF(exp, sizeof(exp), "a string of at most %zu bytes", cap - 1);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) bad_value(src, key, exp, v);
    if (is_name) {
        const char *s = v->valuestring;
        int ok = s[0] != '\0' && s[0] != '.';
        for (; *s; s++) ok &= isalnum((unsigned char)*s) || strchr("._+-", *s) != NULL;
        if (!ok) bad_value(src, key, exp, v);
    }
    memset(dst, 0, cap); // no stale bytes after the terminator: the Job stays memcmp-able
    XSNPRINTF(dst, cap, "%s", v->valuestring);
}

static void get_int_list(const char *src, const char *key, const cJSON *v, int *dst, int *count,
                         int cap, double lo, double hi) {
    char exp[160], range[96], sub[KEY_MAX];
    describe_range(range, sizeof(range), "integers", lo, hi, 0, 0);
    XSNPRINTF(exp, sizeof(exp), "a list of at most %d %s", cap, range);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > cap) bad_value(src, key, exp, v);
    int tmp[HT_MAX_HIDDEN] = {0}, n = 0;
    for (const cJSON *c = v->child; c; c = c->next, n++) {
        XSNPRINTF(sub, sizeof(sub), "%s[%d]", key, n);
        tmp[n] = get_int(src, sub, c, lo, hi, NULL);
    }
    memset(dst, 0, (size_t)cap * sizeof(int));
    memcpy(dst, tmp, (size_t)n * sizeof(int));
    *count = n;
}

// ---------------------------------------------------------------------------------------------
// Compound values: target.input, target.layers, toy.means.

static void get_input(const char *src, const char *key, const cJSON *v, Job *job) {
    char exp[128], sub[KEY_MAX];
    XSNPRINTF(exp, sizeof(exp), "a list [h, w, c] of 3 integers >= 1 with h*w*c <= %d", HT_INPUT_MAX);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3) bad_value(src, key, exp, v);
    int dims[3], i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        XSNPRINTF(sub, sizeof(sub), "%s[%d]", key, i);
        dims[i] = get_int(src, sub, c, 1, HT_INPUT_MAX, NULL);
    }
    if ((double)dims[0] * dims[1] * dims[2] > HT_INPUT_MAX) bad_value(src, key, exp, v);
    job->input_h = dims[0];
    job->input_w = dims[1];
    job->input_c = dims[2];
}

__attribute__((noreturn)) static void layer_unknown_key(const char *src, const char *key,
                                                        const char *name, OpType t) {
    static const char *const takes[] = {
        "\"kernel\", \"filters\", \"gen_hidden\", \"per_filter\"",
        "\"units\", \"gen_hidden\", \"per_filter\"", "no other keys", "\"kernel\""};
    const char *hint = "";
    if (t == OP_FC && strcmp(name, "filters") == 0) hint = "; did you mean \"units\"?";
    if (t == OP_CONV && strcmp(name, "units") == 0) hint = "; did you mean \"filters\"?";
    HT_FATAL("%s: key \"%s\": not a key of %s %s layer (it takes \"type\", %s, \"comment\")%s",
             src, key, t == OP_FC ? "an" : "a", OP_NAMES[t], takes[t], hint);
}

static void get_layer(const char *src, const char *key, const cJSON *v, LayerSpec *out) {
    char sub[KEY_MAX];
    if (!cJSON_IsObject(v))
        bad_value(src, key, "a layer object such as {\"type\": \"relu\"}", v);
    const cJSON *tv = NULL;
    for (const cJSON *c = v->child; c; c = c->next) {
        check_duplicate(src, key, v, c);
        if (strcmp(c->string, "type") == 0) tv = c;
    }
    if (!tv)
        HT_FATAL("%s: key \"%s\": a layer needs \"type\": one of \"conv\", \"fc\", \"relu\" or "
                 "\"maxpool\", got %s", src, key, show(v));
    XSNPRINTF(sub, sizeof(sub), "%s.type", key);
    OpType t = (OpType)get_enum(src, sub, tv, OP_NAMES, 4);
    LayerSpec l;
    memset(&l, 0, sizeof(l));
    l.type = t;
    l.per_filter = (t == OP_CONV || t == OP_FC) ? 1 : 0;
    int has_kernel = 0, has_size = 0, has_hidden = 0;
    int generated = t == OP_CONV || t == OP_FC;
    for (const cJSON *c = v->child; c; c = c->next) {
        const char *name = c->string;
        if (strcmp(name, "type") == 0) continue;
        if (strcmp(name, "comment") == 0) { check_comment(src, key, c); continue; }
        XSNPRINTF(sub, sizeof(sub), "%s.%.100s%s", key, name, strlen(name) > 100 ? "..." : "");
        if (strcmp(name, "kernel") == 0 && (t == OP_CONV || t == OP_MAXPOOL)) {
            l.kernel = get_int(src, sub, c, 1, 1023, t == OP_CONV ? "an odd integer" : NULL);
            if (t == OP_CONV && l.kernel % 2 == 0) bad_value(src, sub, "an odd integer in [1, 1023] (SAME padding)", c);
            has_kernel = 1;
        } else if (generated && strcmp(name, t == OP_CONV ? "filters" : "units") == 0) {
            l.filters = get_int(src, sub, c, 1, HT_SIZE_MAX, NULL);
            has_size = 1;
        } else if (generated && strcmp(name, "gen_hidden") == 0) {
            get_int_list(src, sub, c, l.gen_hidden, &l.n_gen_hidden, HT_MAX_HIDDEN, 1, HT_SIZE_MAX);
            has_hidden = 1;
        } else if (generated && strcmp(name, "per_filter") == 0) {
            l.per_filter = get_bool(src, sub, c);
        } else layer_unknown_key(src, sub, name, t);
    }
    const char *missing = NULL;
    if ((t == OP_CONV || t == OP_MAXPOOL) && !has_kernel) missing = "kernel";
    else if (generated && !has_size) missing = t == OP_CONV ? "filters" : "units";
    else if (generated && !has_hidden) missing = "gen_hidden";
    if (missing)
        HT_FATAL("%s: key \"%s\": a %s layer needs \"%s\", got %s", src, key, OP_NAMES[t], missing, show(v));
    *out = l;
}

static void get_layers(const char *src, const char *key, const cJSON *v, Job *job) {
    char exp[128], sub[KEY_MAX];
    XSNPRINTF(exp, sizeof(exp), "a list of 1 to %d layer objects", HT_MAX_OPS);
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > HT_MAX_OPS) bad_value(src, key, exp, v);
    LayerSpec tmp[HT_MAX_OPS];
    memset(tmp, 0, sizeof(tmp));
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        XSNPRINTF(sub, sizeof(sub), "%s[%d]", key, i);
        get_layer(src, sub, c, &tmp[i]);
    }
    memcpy(job->layers, tmp, sizeof(tmp));
    job->n_layers = n;
}

static void get_means(const char *src, const char *key, const cJSON *v, Job *job) {
    char exp[128], sub[KEY_MAX];
    XSNPRINTF(exp, sizeof(exp), "a list of 1 to %d points [x, y]", HT_MAX_MIX);
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < 1 || n > HT_MAX_MIX) bad_value(src, key, exp, v);
    double tmp[HT_MAX_MIX][2];
    memset(tmp, 0, sizeof(tmp));
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        XSNPRINTF(sub, sizeof(sub), "%s[%d]", key, i);
        if (!cJSON_IsArray(c) || cJSON_GetArraySize(c) != 2) bad_value(src, sub, "a point [x, y]", c);
        int j = 0;
        for (const cJSON *e = c->child; e; e = e->next, j++) {
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) {
                XSNPRINTF(sub, sizeof(sub), "%s[%d][%d]", key, i, j);
                bad_value(src, sub, "a number", e);
            }
            tmp[i][j] = e->valuedouble;
        }
    }
    memcpy(job->toy_means, tmp, sizeof(tmp));
    job->toy_n_mix = n;
}

// ---------------------------------------------------------------------------------------------
// Applying JSON to a Job.

static const KeyDef *find_key(const char *key) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].key, key) == 0) return &KEYS[i];
    return NULL;
}

static void apply_object(Job *job, const char *src, const char *prefix, const cJSON *obj);

static void apply_value(Job *job, const KeyDef *d, const cJSON *v, const char *src) {
    char *base = (char *)job;
    switch (d->kind) {
    case K_SECTION:
        if (!cJSON_IsObject(v)) bad_value(src, d->key, "an object { ... }", v);
        apply_object(job, src, d->key, v);
        break;
    case K_INT: *(int *)(base + d->off) = get_int(src, d->key, v, d->lo, d->hi, NULL); break;
    case K_DOUBLE: *(double *)(base + d->off) = get_double(src, d->key, v, d); break;
    case K_BOOL: *(int *)(base + d->off) = get_bool(src, d->key, v); break;
    case K_STRING:
        get_string(src, d->key, v, base + d->off, d->aux, strcmp(d->key, "name") == 0);
        break;
    case K_SEED:
        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble) ||
            v->valuedouble < 0 || v->valuedouble > SEED_MAX)
            bad_value(src, d->key, "an integer in [0, 9007199254740992] (2^53)", v);
        job->seed = (uint64_t)v->valuedouble;
        break;
    case K_TASK: job->task = (Task)get_enum(src, d->key, v, TASK_NAMES, 2); break;
    case K_DIST: job->distance = (Distance)get_enum(src, d->key, v, DIST_NAMES, 2); break;
    case K_EVALP: job->eval_precision = (EvalPrecision)get_enum(src, d->key, v, EVALP_NAMES, 2); break;
    case K_CMATH: job->cuda_math = (CudaMath)get_enum(src, d->key, v, CMATH_NAMES, 2); break;
    case K_DATASET: {
        const char *names[DATA_N_SETS];
        dataset_names(names);
        job->dataset = get_enum(src, d->key, v, names, DATA_N_SETS);
        break;
    }
    case K_HIDDEN:
        get_int_list(src, d->key, v, (int *)(base + d->off), (int *)(base + d->aux), HT_MAX_HIDDEN,
                     d->lo, d->hi);
        break;
    case K_INPUT: get_input(src, d->key, v, job); break;
    case K_LAYERS: get_layers(src, d->key, v, job); break;
    case K_MEANS: get_means(src, d->key, v, job); break;
    }
}

static void apply_object(Job *job, const char *src, const char *prefix, const cJSON *obj) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        check_duplicate(src, prefix, obj, c);
        if (strcmp(c->string, "comment") == 0) { check_comment(src, prefix, c); continue; }
        char key[KEY_MAX];
        join_key(key, src, prefix, c->string);
        const KeyDef *d = strchr(c->string, '.') ? NULL : find_key(key);
        if (!d) unknown_key(src, prefix, c->string, 0);
        apply_value(job, d, c, src);
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers out of range. cJSON reads a literal too large for a double (1e400) as inf, which would
// then show as "null" in messages; such numbers are rejected by name before anything is applied.

// Copies the n-th (0-based) number literal of JSON text into out. Numbers reach the parsed tree in
// the order of the text, so the n-th number node in depth-first order is the n-th literal.
static void nth_number_literal(const char *text, int n, char *out, size_t cap) {
    int k = 0;
    for (const char *p = text; *p; p++) {
        if (*p == '"') {            // skip a string, with its escapes
            for (p++; *p && *p != '"'; p++)
                if (*p == '\\' && p[1]) p++;
            if (!*p) break;
            continue;
        }
        if (!(*p == '-' || isdigit((unsigned char)*p))) continue;
        size_t len = strspn(p, "+-.eE0123456789");
        if (k++ == n) {
            XSNPRINTF(out, cap, "%.*s%s", (int)(len < 40 ? len : 40), p, len > 40 ? "..." : "");
            return;
        }
        p += len - 1;
    }
    XSNPRINTF(out, cap, "%s", "(a number out of range)");
}

// Depth-first search for the first non-finite number under v; builds its key path in `path`
// (from `key`) and counts the numbers before it in *index. Returns 1 when found.
static int find_nonfinite(const cJSON *v, const char *key, char *path, int *index) {
    if (cJSON_IsNumber(v)) {
        if (!isfinite(v->valuedouble)) { XSNPRINTF(path, KEY_MAX, "%s", key); return 1; }
        (*index)++;
        return 0;
    }
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char sub[KEY_MAX];
        if (cJSON_IsObject(v)) {
            if (*key) XSNPRINTF(sub, sizeof(sub), "%.120s.%.120s", key, c->string);
            else XSNPRINTF(sub, sizeof(sub), "%.120s", c->string);
        } else XSNPRINTF(sub, sizeof(sub), "%.200s[%d]", key, i);
        if (find_nonfinite(c, sub, path, index)) return 1;
    }
    return 0;
}

// Fatal when the JSON value v, parsed from text, holds a number that is not finite.
static void check_finite(const cJSON *v, const char *text, const char *src, const char *key) {
    char path[KEY_MAX], literal[64];
    int index = 0;
    if (!find_nonfinite(v, key, path, &index)) return;
    nth_number_literal(text, index, literal, sizeof(literal));
    HT_FATAL("%s: key \"%s\": the number %s is out of range (a finite number of at most about "
             "1.8e308 in magnitude is expected)", src, path, literal);
}

// Parses text as JSON; on a syntax error reports line and column.
static cJSON *parse_json(const char *text, const char *src) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (root) return root;
    const char *at = end ? end : cJSON_GetErrorPtr();
    if (!at || at < text || at > text + strlen(text)) at = text;
    int line = 1, col = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') { line++; col = 1; } else col++;
    }
    char near[32];
    int n = 0;
    for (const char *p = at; *p && n < 24; p++) near[n++] = (*p == '\n' || *p == '\t') ? ' ' : *p;
    near[n] = '\0';
    const char *q = text;
    while (*q && isspace((unsigned char)*q)) q++;
    if (*q == '\0') HT_FATAL("%s: invalid JSON: the text is empty (expected an object { ... })", src);
    HT_FATAL("%s: invalid JSON at line %d, column %d (near \"%s\"): check for a missing or extra "
             "comma, quote or bracket", src, line, col, near);
}

static void apply_root(Job *job, const char *json, const char *src) {
    cJSON *root = parse_json(json, src);
    if (!cJSON_IsObject(root))
        HT_FATAL("%s: expected a JSON object { ... } at the top level, got %s", src, show(root));
    check_finite(root, json, src, "");
    apply_object(job, src, "", root);
    cJSON_Delete(root);
}

void job_load_file(Job *job, const char *path) {
    char *text = ht_read_file(path, NULL);
    apply_root(job, text, path);
    free(text);
}

void job_from_json_string(Job *job, const char *json, const char *what) {
    job_defaults(job);
    apply_root(job, json, what ? what : "job");
}

// ---------------------------------------------------------------------------------------------
// Job -> JSON.

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static cJSON *layer_json(const LayerSpec *l) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", OP_NAMES[l->type]);
    if (l->type == OP_CONV || l->type == OP_MAXPOOL) cJSON_AddNumberToObject(o, "kernel", l->kernel);
    if (l->type == OP_CONV || l->type == OP_FC) {
        cJSON_AddNumberToObject(o, l->type == OP_CONV ? "filters" : "units", l->filters);
        cJSON_AddItemToObject(o, "gen_hidden", int_array(l->gen_hidden, l->n_gen_hidden));
        cJSON_AddBoolToObject(o, "per_filter", l->per_filter);
    }
    return o;
}

static cJSON *value_json(const Job *job, const KeyDef *d) {
    const char *base = (const char *)job;
    switch (d->kind) {
    case K_SECTION: return cJSON_CreateObject();
    case K_INT: return cJSON_CreateNumber(*(const int *)(base + d->off));
    case K_DOUBLE: return cJSON_CreateNumber(*(const double *)(base + d->off));
    case K_BOOL: return cJSON_CreateBool(*(const int *)(base + d->off));
    case K_STRING: return cJSON_CreateString(base + d->off);
    case K_SEED: return cJSON_CreateNumber((double)job->seed);
    case K_TASK: return cJSON_CreateString(TASK_NAMES[job->task == TASK_TOY]);
    case K_DIST: return cJSON_CreateString(DIST_NAMES[job->distance == DIST_L2]);
    case K_EVALP: return cJSON_CreateString(EVALP_NAMES[job->eval_precision == EVAL_BF16]);
    case K_CMATH: return cJSON_CreateString(CMATH_NAMES[job->cuda_math == CUDA_MATH_TF32]);
    case K_DATASET: { // an id that is no data set prints as null, which job_validate rejects
        const char *name = data_set_name(job->dataset);
        return name ? cJSON_CreateString(name) : cJSON_CreateNull();
    }
    case K_HIDDEN: {
        int n = *(const int *)(base + d->aux);
        return int_array((const int *)(base + d->off), n < 0 ? 0 : n > HT_MAX_HIDDEN ? HT_MAX_HIDDEN : n);
    }
    case K_INPUT: {
        int dims[3] = {job->input_h, job->input_w, job->input_c};
        return int_array(dims, 3);
    }
    case K_LAYERS: {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < job->n_layers && i < HT_MAX_OPS; i++) {
            const LayerSpec *l = &job->layers[i];
            if ((unsigned)l->type > OP_MAXPOOL) { cJSON_AddItemToArray(a, cJSON_CreateNull()); continue; }
            cJSON_AddItemToArray(a, layer_json(l));
        }
        return a;
    }
    case K_MEANS: {
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < job->toy_n_mix && i < HT_MAX_MIX; i++)
            cJSON_AddItemToArray(a, cJSON_CreateDoubleArray(job->toy_means[i], 2));
        return a;
    }
    }
    return cJSON_CreateNull();
}

static cJSON *job_tree(const Job *job) {
    cJSON *root = cJSON_CreateObject(), *section = NULL;
    for (int i = 0; i < N_KEYS; i++) {
        const KeyDef *d = &KEYS[i];
        cJSON *v = value_json(job, d);
        if (strchr(d->key, '.')) cJSON_AddItemToObject(section, last_part(d->key), v);
        else cJSON_AddItemToObject(root, d->key, v);
        if (d->kind == K_SECTION) section = v;
    }
    return root;
}

static char *tree_text(const cJSON *root) {
    Buf b = {0};
    put_pretty(&b, root, 0);
    buf_puts(&b, "\n");
    return b.p;
}

char *job_to_json(const Job *job) {
    cJSON *root = job_tree(job);
    char *s = tree_text(root);
    cJSON_Delete(root);
    return s;
}

// ---------------------------------------------------------------------------------------------
// --set key=value

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

// Parses "target.layers[<i>]" or "target.layers[<i>].<field>": returns i (or -1), sets *field.
static int layer_path(const char *key, const char **field) {
    static const char pre[] = "target.layers[";
    size_t np = sizeof(pre) - 1;
    if (strncmp(key, pre, np) != 0 || !isdigit((unsigned char)key[np])) return -1;
    char *end;
    long i = strtol(key + np, &end, 10);
    if (*end != ']' || i > HT_MAX_OPS) return -1;
    if (end[1] == '\0') *field = NULL;
    else if (end[1] == '.' && end[2] != '\0') *field = end + 2;
    else return -1;
    return (int)i;
}

static void set_layer_entry(Job *job, int index, const char *field, cJSON *v, const char *key) {
    if (index >= job->n_layers)
        HT_FATAL("--set: key \"%s\": the job has %d entries in \"target.layers\" (indices 0 to %d); "
                 "set the whole list with target.layers=[...]", key, job->n_layers, job->n_layers - 1);
    char base[KEY_MAX];
    XSNPRINTF(base, sizeof(base), "target.layers[%d]", index);
    cJSON *obj = v;
    if (field) { // modify one field of the current entry, then re-check the whole entry
        obj = layer_json(&job->layers[index]);
        if (strcmp(field, "type") == 0) { // a new type: keep only the fields the new type takes
            cJSON_Delete(obj);
            obj = cJSON_CreateObject();
        }
        cJSON_DeleteItemFromObjectCaseSensitive(obj, field);
        cJSON_AddItemReferenceToObject(obj, field, v);
    }
    get_layer("--set", base, obj, &job->layers[index]);
    if (field) cJSON_Delete(obj);
}

void job_set(Job *job, const char *assignment) {
    const char *eq = strchr(assignment, '=');
    if (!eq)
        HT_FATAL("--set \"%s\": expected key=value, e.g. --set lambda=1e5 or --set data.dir=/path",
                 assignment);
    char *copy = XSTRDUP(assignment);
    copy[eq - assignment] = '\0';
    char *key = trim(copy), *text = trim(copy + (eq - assignment) + 1);
    if (*key == '\0') HT_FATAL("--set \"%s\": the key before '=' is empty", assignment);
    if (strlen(key) >= KEY_MAX) HT_FATAL("--set: key \"%.40s...\" is too long", key);
    // The value is JSON if it parses as JSON, otherwise a bare string (data.dir=/path, task=toy).
    cJSON *v = cJSON_ParseWithOpts(text, NULL, 1);
    const char *field = NULL;
    int index = layer_path(key, &field);
    const KeyDef *d = index >= 0 ? NULL : find_key(key);
    if (index < 0 && !d) unknown_key("--set", "", key, 1);
    int wants_string = d && (d->kind == K_STRING || d->kind == K_TASK || d->kind == K_DIST || d->kind == K_EVALP ||
                             d->kind == K_CMATH || d->kind == K_DATASET);
    if (index >= 0 && field && strcmp(field, "type") == 0) wants_string = 1;
    if (!v || (wants_string && !cJSON_IsString(v))) { // e.g. name=123 means the string "123"
        cJSON_Delete(v);
        v = cJSON_CreateString(text);
    }
    check_finite(v, text, "--set", key);
    if (index >= 0) set_layer_entry(job, index, field, v, key);
    else apply_value(job, d, v, "--set");
    cJSON_Delete(v);
    free(copy);
}

// ---------------------------------------------------------------------------------------------
// Validation.

void job_validate(const Job *job) {
    HT_CHECK(job->n_layers >= 0 && job->n_layers <= HT_MAX_OPS,
             "job: \"target.layers\" has %d entries, expected 1 to %d", job->n_layers, HT_MAX_OPS);
    HT_CHECK(job->n_ext_hidden >= 0 && job->n_ext_hidden <= HT_MAX_HIDDEN &&
             job->n_toy_hidden >= 0 && job->n_toy_hidden <= HT_MAX_HIDDEN &&
             job->toy_n_mix >= 0 && job->toy_n_mix <= HT_MAX_MIX,
             "job: corrupt list counts (extractor_hidden %d, toy.hidden %d, toy.means %d)",
             job->n_ext_hidden, job->n_toy_hidden, job->toy_n_mix);
    for (int i = 0; i < job->n_layers; i++)
        HT_CHECK((unsigned)job->layers[i].type <= OP_MAXPOOL && job->layers[i].n_gen_hidden >= 0 &&
                 job->layers[i].n_gen_hidden <= HT_MAX_HIDDEN,
                 "job: target.layers[%d] is corrupt (type %d)", i, (int)job->layers[i].type);
    // Every per-key type and range check: print the job and read it back through the parser.
    // This also proves that the job survives the trip into a checkpoint and back.
    {
        Job check;
        memset(&check, 0, sizeof(check));
        cJSON *root = job_tree(job);
        apply_object(&check, "job", "", root);
        cJSON_Delete(root);
    }
    HT_CHECK(job->batch >= 2, "job: key \"batch\": expected an integer >= 2 (the entropy estimate "
             "needs a nearest neighbour), got %d", job->batch);
    if (job->task == TASK_TOY) {
        HT_CHECK(job->z_dim >= 1, "job: task \"toy\" needs \"z_dim\" >= 1, got %d", job->z_dim);
        HT_CHECK(job->toy_n_mix >= 1, "job: task \"toy\" needs at least one mixture component in "
                 "\"toy.means\"");
        return; // the target network and the data are not used by the toy problem
    }
    HT_CHECK(job->input_h == 28 && job->input_w == 28 && job->input_c == 1 && job->classes == 10,
             "job: task \"mnist\" needs \"target.input\" [28, 28, 1] and \"target.classes\" 10, "
             "got [%d, %d, %d] and %d", job->input_h, job->input_w, job->input_c, job->classes);
    int n_param = 0, first_fc = -1;
    for (int i = 0; i < job->n_layers; i++) {
        const LayerSpec *l = &job->layers[i];
        if (l->type == OP_CONV || l->type == OP_FC) n_param++;
        if (l->type == OP_FC && first_fc < 0) first_fc = i;
        HT_CHECK(first_fc < 0 || l->type == OP_FC || l->type == OP_RELU,
                 "job: key \"target.layers[%d]\": a %s layer cannot follow the fc layer "
                 "target.layers[%d] (after an fc layer only fc and relu may follow)",
                 i, OP_NAMES[l->type], first_fc);
    }
    HT_CHECK(n_param >= 1, "job: key \"target.layers\": needs at least one conv or fc layer");
    const LayerSpec *last = &job->layers[job->n_layers - 1];
    char got[64];
    if (last->type == OP_FC) XSNPRINTF(got, sizeof(got), "an fc layer with %d units", last->filters);
    else XSNPRINTF(got, sizeof(got), "a %s layer", OP_NAMES[last->type]);
    HT_CHECK(last->type == OP_FC && last->filters == job->classes,
             "job: key \"target.layers\": the last entry must be an fc layer with \"units\" equal to "
             "\"target.classes\" (%d; softmax is implied), got %s", job->classes, got);
    HT_CHECK(job->n_train + job->n_val <= MNIST_TRAIN_FILE,
             "job: keys \"data.train\" + \"data.validation\" = %d + %d exceed the %d images of the "
             "%s training file", job->n_train, job->n_val, MNIST_TRAIN_FILE, data_set_title(job->dataset));
    HT_CHECK(job->val_images <= job->n_val,
             "job: key \"val_images\": expected at most \"data.validation\" (%d) images (0 = all), got %d",
             job->n_val, job->val_images);
}
