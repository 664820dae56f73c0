// hyperanalyze sweep: one row per run directory of a sweep (λ, how far it got, the last
// validation), sorted by λ, as a text table, CSV and/or Markdown. Reads each run's job.json (the
// resolved job hypertrain wrote) and metrics.jsonl (the last "val" line, the last "train" step).
// This file is the command (options, errors, where the tables go); reading the runs and the tables
// are analysis/sweep_core.c (tested in tests/test_analysis.c).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "hyperanalyze.h"
#include "sweep_core.h"

#define CMD "sweep"

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

typedef void (*Writer)(FILE *, const SweepRow *, int);

static int write_out(const char *path, Writer w, const SweepRow *rows, int n) {
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

    SweepRow *rows = XCALLOC((size_t)n_dirs, sizeof(SweepRow));
    int n = 0, skipped = 0;
    char err[8192];
    for (int i = 0; i < n_dirs; i++) {
        if (sweep_read_run(dirs[i], &rows[n], err, sizeof(err)) == 0) {
            if (rows[n].partial_line)
                ha_warn(CMD, "%s/metrics.jsonl:%d: ignoring an incomplete last line", rows[n].run, rows[n].partial_line);
            n++;
            continue;
        }
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
        qsort(rows, (size_t)n, sizeof(SweepRow), sweep_by_lambda);
        const int to_stdout = (csv && !strcmp(csv, "-")) || (md && !strcmp(md, "-"));
        if (!to_stdout) sweep_write_text(stdout, rows, n);
        if (csv && write_out(csv, sweep_write_csv, rows, n)) rc = 1;
        if (md && write_out(md, sweep_write_md, rows, n)) rc = 1;
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
