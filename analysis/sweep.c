// hyperanalyze sweep: one row per run directory of a sweep (λ, how far it got, the last
// validation), sorted by λ, as a text table, CSV and/or Markdown. Reads each run's job.json (the
// resolved job hypertrain wrote) and metrics.jsonl (the last "val" line, the last "train" step).
// job.json is read with cJSON rather than job_from_json_string so that runs written by an older or
// newer hypertrain (with other job keys) still summarize; only "lambda" is required.
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"
#include "hyperanalyze.h"

#define CMD "sweep"

// The validation fields reported, in column order (names as in metrics.jsonl).
static const char *const VAL_FIELDS[] = {"mean_acc", "std_acc", "majority_acc", "mean_prob_acc",
                                         "mean_nll", "entropy"};
enum { N_VAL = sizeof(VAL_FIELDS) / sizeof(VAL_FIELDS[0]) };

typedef struct {
    char *run;           // run directory as given, without trailing '/'
    double lambda;       // job.json "lambda"
    long long job_steps; // job.json "steps" (-1 if absent)
    long long step;      // step of the last "train" line (-1 if none)
    long long val_step;  // step of the last "val" line
    double val[N_VAL];   // VAL_FIELDS of the last "val" line
} Row;

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze sweep [--csv FILE] [--md FILE] [--keep-going] RUN_DIR...\n"
        "\n"
        "Summarizes hypertrain runs (e.g. the run directories of a lambda sweep, runs/<sweep>/*):\n"
        "one row per run with lambda (from job.json), the last training step, and the last validation\n"
        "in metrics.jsonl, sorted by lambda. Columns:\n"
        "  run, lambda, job_steps, step, val_step, mean_acc, std_acc, majority_acc, mean_prob_acc,\n"
        "  mean_nll, entropy\n"
        "(mean_acc/std_acc: single generated networks; majority_acc, mean_prob_acc: ensembles by\n"
        "majority vote and by mean probability; mean_nll: mean negative log-likelihood; entropy: the\n"
        "entropy estimate of the generated weights; see docs/jobs.md).\n"
        "\n"
        "options:\n"
        "  --csv FILE     write CSV (header + one line per run); '-' for stdout\n"
        "  --md FILE      write a Markdown table; '-' for stdout\n"
        "  --keep-going   report runs that cannot be read, leave them out, summarize the rest\n"
        "                 (exit status 1 if any run was left out)\n"
        "A plain-text table goes to stdout unless --csv or --md writes there.\n"
        "Plot a CSV with: python3 analysis/plot_sweep.py FILE.csv -o sweep.png\n");
}

// Reads a whole file; on failure returns NULL with the errno value in *err_no.
static char *read_text(const char *path, int *err_no) {
    FILE *f = fopen(path, "rb");
    if (!f) { *err_no = errno; return NULL; }
    size_t cap = 1 << 16, len = 0;
    char *buf = XMALLOC(cap);
    while (buf) {
        if (len + 1 >= cap) buf = XREALLOC(buf, cap *= 2);
        const size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0) break;
    }
    if (buf && ferror(f)) { *err_no = EIO; free(buf); buf = NULL; }
    fclose(f);
    if (buf) buf[len] = '\0';
    return buf;
}

static int read_job(const char *dir, Row *row, char *err, size_t n_err) {
    char path[4200];
    XSNPRINTF(path, sizeof(path), "%s/job.json", dir);
    int e;
    char *text = read_text(path, &e);
    if (!text) {
        if (e == ENOENT) XSNPRINTF(err, n_err, "%s does not exist (is '%s' a hypertrain run directory?)", path, dir);
        else XSNPRINTF(err, n_err, "cannot read %s: %s", path, strerror(e));
        return -1;
    }
    cJSON *job = cJSON_Parse(text);
    int rc = -1;
    if (!job || !cJSON_IsObject(job)) {
        XSNPRINTF(err, n_err, "%s is not a JSON object (invalid JSON)", path);
    } else {
        const cJSON *lam = cJSON_GetObjectItemCaseSensitive(job, "lambda");
        const cJSON *steps = cJSON_GetObjectItemCaseSensitive(job, "steps");
        if (!cJSON_IsNumber(lam) || !isfinite(lam->valuedouble)) {
            XSNPRINTF(err, n_err, "%s has no numeric \"lambda\"", path);
        } else {
            row->lambda = lam->valuedouble;
            row->job_steps = cJSON_IsNumber(steps) ? (long long)steps->valuedouble : -1;
            rc = 0;
        }
    }
    cJSON_Delete(job);
    free(text);
    return rc;
}

static int read_metrics(const char *dir, Row *row, char *err, size_t n_err) {
    char path[4200];
    XSNPRINTF(path, sizeof(path), "%s/metrics.jsonl", dir);
    int e;
    char *text = read_text(path, &e);
    if (!text) {
        if (e == ENOENT) XSNPRINTF(err, n_err, "%s does not exist (the run has not started?)", path);
        else XSNPRINTF(err, n_err, "cannot read %s: %s", path, strerror(e));
        return -1;
    }
    row->step = -1;
    cJSON *last_val = NULL;
    int last_val_line = 0, rc = 0, lineno = 0;
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        const int complete = next != NULL;
        if (next) *next++ = '\0';
        lineno++;
        if (strspn(line, " \t\r") == strlen(line)) continue;
        cJSON *obj = cJSON_Parse(line);
        if (!obj || !cJSON_IsObject(obj)) {
            cJSON_Delete(obj);
            // A run killed while writing leaves a partial last line: not an error.
            if (!complete) { ha_warn(CMD, "%s:%d: ignoring an incomplete last line", path, lineno); break; }
            XSNPRINTF(err, n_err, "%s:%d: invalid JSON line", path, lineno);
            rc = -1;
            break;
        }
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
        const cJSON *step = cJSON_GetObjectItemCaseSensitive(obj, "step");
        const int is_val = cJSON_IsString(type) && !strcmp(type->valuestring, "val");
        const int is_train = cJSON_IsString(type) && !strcmp(type->valuestring, "train");
        if ((is_val || is_train) && !cJSON_IsNumber(step)) {
            XSNPRINTF(err, n_err, "%s:%d: a \"%.40s\" line without a numeric \"step\"", path, lineno, type->valuestring);
            cJSON_Delete(obj);
            rc = -1;
            break;
        }
        if (is_train) row->step = (long long)step->valuedouble;
        if (is_val) {
            cJSON_Delete(last_val);
            last_val = obj;
            last_val_line = lineno;
        } else {
            cJSON_Delete(obj);
        }
    }
    if (rc == 0 && !last_val) {
        XSNPRINTF(err, n_err, "%s has no validation line ({\"type\":\"val\",...}); the run has not reached "
                 "its first validation (val_every) or failed before it", path);
        rc = -1;
    }
    if (rc == 0) {
        row->val_step = (long long)cJSON_GetObjectItemCaseSensitive(last_val, "step")->valuedouble;
        for (int k = 0; k < N_VAL && rc == 0; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(last_val, VAL_FIELDS[k]);
            if (!cJSON_IsNumber(v)) {
                XSNPRINTF(err, n_err, "%s:%d: the validation line has no numeric \"%s\" (only MNIST runs "
                         "are summarized, not the toy task)", path, last_val_line, VAL_FIELDS[k]);
                rc = -1;
            } else {
                row->val[k] = v->valuedouble;
            }
        }
    }
    cJSON_Delete(last_val);
    free(text);
    return rc;
}

static int read_run(const char *dir_arg, Row *row, char *err, size_t n_err) {
    memset(row, 0, sizeof(*row));
    size_t len = strlen(dir_arg);
    while (len > 1 && dir_arg[len - 1] == '/') len--;
    row->run = XMALLOC(len + 1);
    memcpy(row->run, dir_arg, len);
    row->run[len] = '\0';
    struct stat st;
    if (stat(row->run, &st) != 0) {
        XSNPRINTF(err, n_err, "run directory '%s': %s", row->run,
                 errno == ENOENT ? "does not exist" : strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) { XSNPRINTF(err, n_err, "'%s' is not a directory (expected a run directory)", row->run); return -1; }
    if (read_job(row->run, row, err, n_err) != 0) return -1;
    return read_metrics(row->run, row, err, n_err);
}

static int by_lambda(const void *a, const void *b) {
    const Row *x = a, *y = b;
    if (x->lambda != y->lambda) return x->lambda < y->lambda ? -1 : 1;
    return strcmp(x->run, y->run);
}

static void put_int(FILE *f, long long v) { if (v >= 0) fprintf(f, "%lld", v); }

static void write_csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) { fputs(s, f); return; }
    fputc('"', f);
    for (; *s; s++) { if (*s == '"') fputc('"', f); fputc(*s, f); }
    fputc('"', f);
}

static void write_csv(FILE *f, const Row *rows, int n) {
    fprintf(f, "run,lambda,job_steps,step,val_step");
    for (int k = 0; k < N_VAL; k++) fprintf(f, ",%s", VAL_FIELDS[k]);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        write_csv_field(f, r->run);
        fprintf(f, ",%.9g,", r->lambda);
        put_int(f, r->job_steps);
        fputc(',', f);
        put_int(f, r->step);
        fprintf(f, ",%lld", r->val_step);
        for (int k = 0; k < N_VAL; k++) fprintf(f, ",%.9g", r->val[k]);
        fputc('\n', f);
    }
}

// Formats the cells of row r (or the header when r is NULL) for the human-readable tables.
enum { N_COLS = 5 + N_VAL };
static void cells(const Row *r, char out[N_COLS][64]) {
    static const char *const head[N_COLS] = {"run", "lambda", "job_steps", "step", "val_step", "mean_acc",
                                             "std_acc", "majority_acc", "mean_prob_acc", "mean_nll", "entropy"};
    if (!r) { for (int c = 0; c < N_COLS; c++) XSNPRINTF(out[c], 64, "%s", head[c]); return; }
    out[0][0] = '\0'; // the run name is printed separately (it can be long)
    XSNPRINTF(out[1], 64, "%g", r->lambda);
    if (r->job_steps >= 0) XSNPRINTF(out[2], 64, "%lld", r->job_steps); else XSNPRINTF(out[2], 64, "-");
    if (r->step >= 0) XSNPRINTF(out[3], 64, "%lld", r->step); else XSNPRINTF(out[3], 64, "-");
    XSNPRINTF(out[4], 64, "%lld", r->val_step);
    for (int k = 0; k < N_VAL; k++)
        XSNPRINTF(out[5 + k], 64, k < 4 ? "%.4f" : "%.6g", r->val[k]);
}

static void write_md(FILE *f, const Row *rows, int n) {
    char c[N_COLS][64];
    cells(NULL, c);
    for (int k = 0; k < N_COLS; k++) fprintf(f, "| %s ", c[k]);
    fprintf(f, "|\n|---|");
    for (int k = 1; k < N_COLS; k++) fprintf(f, "---:|");
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        cells(&rows[i], c);
        fputs("| ", f);
        for (const char *s = rows[i].run; *s; s++) { if (*s == '|') fputc('\\', f); fputc(*s, f); }
        fputc(' ', f);
        for (int k = 1; k < N_COLS; k++) fprintf(f, "| %s ", c[k]);
        fputs("|\n", f);
    }
}

static void write_text_table(FILE *f, const Row *rows, int n) {
    char c[N_COLS][64];
    int w[N_COLS];
    cells(NULL, c);
    for (int k = 0; k < N_COLS; k++) w[k] = (int)strlen(c[k]);
    for (int i = 0; i < n; i++) {
        cells(&rows[i], c);
        const int lr = (int)strlen(rows[i].run);
        if (lr > w[0]) w[0] = lr;
        for (int k = 1; k < N_COLS; k++) if ((int)strlen(c[k]) > w[k]) w[k] = (int)strlen(c[k]);
    }
    cells(NULL, c);
    for (int k = 0; k < N_COLS; k++) fprintf(f, k ? "  %*s" : "%-*s", w[k], c[k]);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        cells(&rows[i], c);
        fprintf(f, "%-*s", w[0], rows[i].run);
        for (int k = 1; k < N_COLS; k++) fprintf(f, "  %*s", w[k], c[k]);
        fputc('\n', f);
    }
}

typedef void (*Writer)(FILE *, const Row *, int);

static int write_out(const char *path, Writer w, const Row *rows, int n) {
    if (!strcmp(path, "-")) { w(stdout, rows, n); fflush(stdout); return 0; }
    FILE *f = fopen(path, "w");
    if (!f) return ha_error(CMD, "cannot create %s: %s", path, strerror(errno));
    w(f, rows, n);
    if (fclose(f) != 0) return ha_error(CMD, "error writing %s: %s", path, strerror(errno));
    return 0;
}

int cmd_sweep(int argc, char **argv) {
    const char *csv = NULL, *md = NULL;
    int keep_going = 0, n_dirs = 0;
    char **dirs = XCALLOC((size_t)argc + 1, sizeof(char *));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); free(dirs); return 0; }
        else if (!strcmp(a, "--csv") || !strcmp(a, "--md")) {
            if (i + 1 >= argc) { free(dirs); return ha_usage_error(CMD, "%s needs a file name ('-' for stdout)", a); }
            if (!strcmp(a, "--csv")) csv = argv[++i]; else md = argv[++i];
        } else if (!strcmp(a, "--keep-going")) keep_going = 1;
        else if (!strcmp(a, "--")) { while (++i < argc) dirs[n_dirs++] = argv[i]; }
        else if (a[0] == '-' && a[1]) { free(dirs); return ha_usage_error(CMD, "unknown option '%s'", a); }
        else dirs[n_dirs++] = argv[i];
    }
    if (n_dirs == 0) { free(dirs); return ha_usage_error(CMD, "no run directories given"); }

    Row *rows = XCALLOC((size_t)n_dirs, sizeof(Row));
    int n = 0, skipped = 0;
    char err[8192];
    for (int i = 0; i < n_dirs; i++) {
        if (read_run(dirs[i], &rows[n], err, sizeof(err)) == 0) { n++; continue; }
        free(rows[n].run);
        if (!keep_going) {
            ha_error(CMD, "%s", err);
            for (int j = 0; j < n; j++) free(rows[j].run);
            free(rows);
            free(dirs);
            return 1;
        }
        ha_error(CMD, "%s (left out)", err);
        skipped++;
    }
    int rc = 0;
    if (n == 0) {
        rc = ha_error(CMD, "none of the %d run directories could be summarized", n_dirs);
    } else {
        qsort(rows, (size_t)n, sizeof(Row), by_lambda);
        const int to_stdout = (csv && !strcmp(csv, "-")) || (md && !strcmp(md, "-"));
        if (!to_stdout) write_text_table(stdout, rows, n);
        if (csv && write_out(csv, write_csv, rows, n)) rc = 1;
        if (md && write_out(md, write_md, rows, n)) rc = 1;
        if (skipped) {
            ha_warn(CMD, "%d of %d runs left out (see the errors above)", skipped, n_dirs);
            rc = 1;
        }
    }
    for (int j = 0; j < n; j++) free(rows[j].run);
    free(rows);
    free(dirs);
    return rc;
}
