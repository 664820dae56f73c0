// cmds_samples.h: the hyperanalyze subcommands that read sample sets and checkpoints
// (docs/samples.md): accuracy, ensemble, pca, paths; and small helpers they share.
//
// Each returns the exit status (0 success, 2 usage error); errors in files end the process with
// one line naming the file and dataset (exit 1), through the library's HT_FATAL.
#ifndef HT_CMDS_SAMPLES_H
#define HT_CMDS_SAMPLES_H

#include <ctype.h>
#include <errno.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"
#include "common.h"
#include "config.h"
#include "hyperanalyze.h"

int cmd_accuracy(int argc, char **argv);   // analysis/accuracy.c
int cmd_ensemble(int argc, char **argv);   // analysis/ensemble.c
int cmd_pca(int argc, char **argv);        // analysis/pca.c
int cmd_paths(int argc, char **argv);      // analysis/paths.c

// Parses an integer option value in [lo, hi]. Returns 0, or the usage-error status 2.
static inline int an_long(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi)
        return ha_usage_error(cmd, "%s: expected an integer in [%ld, %ld], got '%s'", opt, lo, hi, s ? s : "");
    *out = v;
    return 0;
}

// An option given last, without its value: "--n needs a value" when the command's --help lists
// it, else "unknown option '--frob'" (an unknown option must not read as a known one missing its
// value). usage is the command's --help printer. Returns the usage-error status 2.
static inline int an_missing_value(const char *cmd, const char *opt, void (*usage)(FILE *)) {
    char *text = NULL;
    size_t len = 0, n = strlen(opt);
    int known = 0;
    FILE *f = open_memstream(&text, &len);
    if (f) {
        usage(f);
        fclose(f);
        for (const char *p = text; p && (p = strstr(p, opt)) != NULL; p += n)
            known |= (p == text || p[-1] == ' ' || p[-1] == '[') && !(isalnum((unsigned char)p[n]) || p[n] == '-');
    }
    free(text);
    if (known) return ha_usage_error(cmd, "%s needs a value", opt);
    return ha_usage_error(cmd, "unknown option '%s'", opt);
}

// Default result file: "DIR/NAME.h5" -> "DIR/NAME_<what>.h5" (beside the input).
static inline void an_default_out(char *out, size_t n, const char *in, const char *what) {
    size_t len = strlen(in);
    if (len > 3 && !strcmp(in + len - 3, ".h5")) len -= 3;
    XSNPRINTF(out, n, "%.*s_%s.h5", (int)len, in, what); // a cut name would be another file
}

// What every subcommand does after parsing its options: --split (split != NULL) must be val or
// test, --threads (> 0) sets the OpenMP threads, and *out defaults to an_default_out(in, cmd) in
// out_buf (n chars). Returns 0, or the usage-error status 2.
static inline int an_finish_options(const char *cmd, const char *split, long threads, const char *in,
                                    char *out_buf, size_t n, const char **out) {
    if (split && strcmp(split, "val") && strcmp(split, "test"))
        return ha_usage_error(cmd, "--split: expected val or test, got '%s'", split);
    if (threads > 0) omp_set_num_threads((int)threads);
    if (!*out) { an_default_out(out_buf, n, in, cmd); *out = out_buf; }
    return 0;
}

// --job JOB.json: the target architecture the analysis expects (NULL when not given).
static inline const TargetArch *an_expected_arch(const char *job_file, TargetArch *a) {
    if (!job_file) return NULL;
    Job job;
    job_defaults(&job);
    job_load_file(&job, job_file);
    job_validate(&job);
    arch_build_target(a, &job);
    return a;
}

#endif
