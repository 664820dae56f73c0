// hyperanalyze.h: the subcommands of hyperanalyze (analysis/hyperanalyze.c dispatches to them).
//
// To add a subcommand NAME: write analysis/NAME.c with `int cmd_NAME(int argc, char **argv)` and
// add one line X(NAME, "one-line summary") to HA_COMMANDS below. That line declares cmd_NAME and
// puts it in hyperanalyze's command table and --help; nothing else changes (the Makefile builds
// every analysis/*.c into ./hyperanalyze).
//
// A command gets argv[0] = its own name and the arguments after it. It returns the process exit
// status: 0 success, 1 error (message on stderr, naming the file at fault), 2 usage error. It
// handles --help itself (print usage to stdout, return 0); ha_usage_error below helps with the rest.
#ifndef HT_HYPERANALYZE_H
#define HT_HYPERANALYZE_H

#include <stdio.h>

#define HA_COMMANDS(X) \
    X(sweep, "summarize runs of a sweep (e.g. over lambda): one row per run directory, as CSV and Markdown") \
    X(accuracy, "accuracy of every network of a sample set on val/test, and its histogram (Fig. 2)") \
    X(ensemble, "ensembles of a sample set: majority vote, mean probability, NLL, Brier, ECE vs size") \
    X(pca, "PCA of generated weights: one filter, one layer or the whole network (Figs. 6, 9-15)") \
    X(paths, "accuracy along interpolated and direct paths between generated networks (Fig. 7)") \
    X(filters, "samples of one generated filter slice, for 5 x 5 image grids (Fig. 3)") \
    X(filterdiv, "per-filter diversity across networks vs the next layer's weight norm on its channel (Fig. 3)") \
    X(adversarial, "fast gradient sign attacks: smallest eps fooling a network, another one, ensembles (Fig. 8)") \
    X(ood, "out-of-distribution detection (Fashion-MNIST): AUROC of entropy and mutual information") \
    X(baseline, "train K target networks directly (a deep ensemble) and write them as a sample set") \
    X(diversity, "function-space diversity: pairwise disagreement, KL, disagreement/error vs error (Fort et al.)") \
    X(shift, "rotated MNIST: accuracy, NLL, ECE against angle for single networks and ensembles") \
    X(calibrate, "temperature scaling fitted on val: test ECE/NLL/accuracy before and after vs ensemble size")

#define HA_DECLARE(name, summary) int cmd_##name(int argc, char **argv);
HA_COMMANDS(HA_DECLARE)
#undef HA_DECLARE

// Prints "hyperanalyze CMD: error: <msg>" to stderr. Returns 1, for `return ha_error(...)`.
int ha_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Same for command-line mistakes, adding "(see hyperanalyze CMD --help)". Returns 2.
int ha_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prints "hyperanalyze CMD: warning: <msg>" to stderr.
void ha_warn(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
