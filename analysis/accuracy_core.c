// accuracy_core.c: see accuracy_core.h.
#include "accuracy_core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "metrics.h"

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void acc_summarize(const double *acc, const double *loss, long long n, int bins, int full, AccSummary *s,
                   int64_t *counts, double *edges) {
    metric_mean_std(acc, (int)n, &s->mean, &s->std);
    double *sorted = XMALLOC((size_t)n * sizeof(double));
    memcpy(sorted, acc, (size_t)n * sizeof(double));
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    s->min = sorted[0];
    s->max = sorted[n - 1];
    s->median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    s->p05 = sorted[(long long)floor(0.05 * (n - 1))];
    s->p95 = sorted[(long long)ceil(0.95 * (n - 1))];
    free(sorted);
    metric_mean_std(loss, (int)n, &s->loss_mean, &s->loss_std);
    s->lo = 0.0;
    s->hi = 1.0;
    if (!full) {
        s->lo = floor(s->min * 200.0) / 200.0;
        s->hi = ceil(s->max * 200.0) / 200.0;
        if (s->hi <= s->lo) s->hi = s->lo + 0.005;
    }
    metric_histogram(acc, (int)n, s->lo, s->hi, bins, counts, edges);
}
