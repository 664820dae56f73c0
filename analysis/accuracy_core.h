// accuracy_core.h: the computation of hyperanalyze accuracy (analysis/accuracy.c is the command:
// options, reading the set, the result file and stdout): summary statistics of per-network
// accuracies and their histogram (the paper's Fig. 2). No files, no global state; tests in
// tests/test_analysis.c.
#ifndef HT_ACCURACY_CORE_H
#define HT_ACCURACY_CORE_H

#include <stdint.h>

typedef struct {
    double mean, std;          // of the accuracies (population std)
    double min, max, median;   // median: mean of the two middle values for even n
    double p05, p95;           // sorted[floor(0.05 (n-1))], sorted[ceil(0.95 (n-1))]
    double loss_mean, loss_std;
    double lo, hi;             // histogram range: [min, max] rounded out to 0.005, or [0, 1] (full)
} AccSummary;

// Summary of acc (n) and loss (n), n >= 1, and the histogram of acc: counts (bins) and edges
// (bins + 1) over [lo, hi] (metric_histogram: values outside are clamped, the last bin includes
// hi). full: the range [0, 1]; else [floor(200 min) / 200, ceil(200 max) / 200] (0.005 wide when
// all accuracies are equal on the grid).
void acc_summarize(const double *acc, const double *loss, long long n, int bins, int full, AccSummary *s,
                   int64_t *counts, double *edges);

#endif
