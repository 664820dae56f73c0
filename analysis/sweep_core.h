// sweep_core.h: the computation of hyperanalyze sweep (analysis/sweep.c is the command: options,
// error reporting, where the tables go): one row per run directory (lambda from job.json, the last
// training step and the last validation line of metrics.jsonl), the sort by lambda and the CSV,
// Markdown and text tables. job.json is read with cJSON rather than job_from_json_string so that
// runs written by an older or newer hypertrain (with other job keys) still summarize; only
// "lambda" is required. No global state; tests in tests/test_analysis.c.
#ifndef HT_SWEEP_CORE_H
#define HT_SWEEP_CORE_H

#include <stddef.h>
#include <stdio.h>

// The validation fields reported, in column order (names as in metrics.jsonl).
#define SWEEP_N_VAL 6
extern const char *const SWEEP_VAL_FIELDS[SWEEP_N_VAL];

typedef struct {
    char *run;           // run directory as given, without trailing '/'
    double lambda;       // job.json "lambda"
    long long job_steps; // job.json "steps" (-1 if absent)
    long long step;      // step of the last "train" line (-1 if none)
    long long val_step;  // step of the last "val" line
    double val[SWEEP_N_VAL];   // SWEEP_VAL_FIELDS of the last "val" line
    int partial_line;    // > 0: metrics.jsonl ends with this incomplete line (a run killed while writing), ignored
} SweepRow;

// Reads run directory dir_arg (trailing '/' removed into row->run, which the caller frees, also on
// failure). Returns 0, or -1 with a one-line reason naming the file (and line) in err.
int sweep_read_run(const char *dir_arg, SweepRow *row, char *err, size_t n_err);
// qsort order: by lambda, then by run name.
int sweep_by_lambda(const void *a, const void *b);
// Header + one line per row (fields with , " or newlines quoted as in RFC 4180; %.9g numbers;
// job_steps and step empty when unknown).
void sweep_write_csv(FILE *f, const SweepRow *rows, int n);
void sweep_write_md(FILE *f, const SweepRow *rows, int n);
void sweep_write_text(FILE *f, const SweepRow *rows, int n);

#endif
