// sweep_core.c: see sweep_core.h.
#include "sweep_core.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common.h"

const char *const SWEEP_VAL_FIELDS[SWEEP_N_VAL] = {"mean_acc", "std_acc", "majority_acc", "mean_prob_acc",
                                                   "mean_nll", "entropy"};

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

static int read_job(const char *dir, SweepRow *row, char *err, size_t n_err) {
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

static int read_metrics(const char *dir, SweepRow *row, char *err, size_t n_err) {
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
            if (!complete) { row->partial_line = lineno; break; }
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
        for (int k = 0; k < SWEEP_N_VAL && rc == 0; k++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(last_val, SWEEP_VAL_FIELDS[k]);
            if (!cJSON_IsNumber(v)) {
                XSNPRINTF(err, n_err, "%s:%d: the validation line has no numeric \"%s\" (only MNIST runs "
                         "are summarized, not the toy task)", path, last_val_line, SWEEP_VAL_FIELDS[k]);
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

int sweep_read_run(const char *dir_arg, SweepRow *row, char *err, size_t n_err) {
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

int sweep_by_lambda(const void *a, const void *b) {
    const SweepRow *x = a, *y = b;
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

void sweep_write_csv(FILE *f, const SweepRow *rows, int n) {
    fprintf(f, "run,lambda,job_steps,step,val_step");
    for (int k = 0; k < SWEEP_N_VAL; k++) fprintf(f, ",%s", SWEEP_VAL_FIELDS[k]);
    fputc('\n', f);
    for (int i = 0; i < n; i++) {
        const SweepRow *r = &rows[i];
        write_csv_field(f, r->run);
        fprintf(f, ",%.9g,", r->lambda);
        put_int(f, r->job_steps);
        fputc(',', f);
        put_int(f, r->step);
        fprintf(f, ",%lld", r->val_step);
        for (int k = 0; k < SWEEP_N_VAL; k++) fprintf(f, ",%.9g", r->val[k]);
        fputc('\n', f);
    }
}

// Formats the cells of row r (or the header when r is NULL) for the human-readable tables.
enum { N_COLS = 5 + SWEEP_N_VAL };
static void cells(const SweepRow *r, char out[N_COLS][64]) {
    static const char *const head[N_COLS] = {"run", "lambda", "job_steps", "step", "val_step", "mean_acc",
                                             "std_acc", "majority_acc", "mean_prob_acc", "mean_nll", "entropy"};
    if (!r) { for (int c = 0; c < N_COLS; c++) XSNPRINTF(out[c], 64, "%s", head[c]); return; }
    out[0][0] = '\0'; // the run name is printed separately (it can be long)
    XSNPRINTF(out[1], 64, "%g", r->lambda);
    if (r->job_steps >= 0) XSNPRINTF(out[2], 64, "%lld", r->job_steps); else XSNPRINTF(out[2], 64, "-");
    if (r->step >= 0) XSNPRINTF(out[3], 64, "%lld", r->step); else XSNPRINTF(out[3], 64, "-");
    XSNPRINTF(out[4], 64, "%lld", r->val_step);
    for (int k = 0; k < SWEEP_N_VAL; k++)
        XSNPRINTF(out[5 + k], 64, k < 4 ? "%.4f" : "%.6g", r->val[k]);
}

void sweep_write_md(FILE *f, const SweepRow *rows, int n) {
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

void sweep_write_text(FILE *f, const SweepRow *rows, int n) {
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

