// sample_eval.c: evaluation helpers shared by `hypertrain sample` and the analysis tools (see
// sample.h): loading a split, running many networks on it.
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

void sample_load_split(const Job *job, const char *data_dir, const char *split, int max_images,
                       Mnist *m, Dataset *d) {
    HT_CHECK(!strcmp(split, "val") || !strcmp(split, "test"),
             "unknown split '%s' (expected val or test)", split);
    const char *dir = data_resolve_dir_for(job->dataset, data_dir && data_dir[0] ? data_dir : job->data_dir);
    data_load(m, job->dataset, dir, job->n_train, job->n_val, job->verify_checksums);
    *d = !strcmp(split, "val") ? m->val : m->test;
    if (max_images > 0 && max_images < d->n) d->n = max_images;
    HT_CHECK(d->n > 0, "the %s split of '%s' has no images", split, dir);
}

void sample_eval(TargetNet *tn, int n_nets, const float *theta, const Dataset *d, float *probs,
                 double *acc, double *nll) {
    if (n_nets <= 0) return;
    const int C = tn->arch->classes, in = tn->arch->in_size, chunk = tn->max_images;
    HT_CHECK(d->h * d->w == in, "images of %dx%d pixels but the target network takes %d inputs", d->h,
             d->w, in);
    float *p = XALLOC_FLOATS((size_t)n_nets * chunk * C);
    double *corr = XCALLOC((size_t)n_nets, sizeof(double)), *ls = XCALLOC((size_t)n_nets, sizeof(double));
    for (int i0 = 0; i0 < d->n; i0 += chunk) {
        const int n = d->n - i0 < chunk ? d->n - i0 : chunk;
        target_forward(tn, n_nets, theta, n, d->images + (size_t)i0 * in, 0, p);
        for (int k = 0; k < n_nets; k++)
            for (int i = 0; i < n; i++) {
                const float *pk = p + ((size_t)k * n + i) * C;
                int arg = 0;
                for (int c = 1; c < C; c++) if (pk[c] > pk[arg]) arg = c;
                const int y = d->labels[i0 + i];
                corr[k] += arg == y;
                ls[k] -= log((double)pk[y] + 1e-30);
                if (probs) memcpy(probs + ((size_t)k * d->n + i0 + i) * C, pk, (size_t)C * sizeof(float));
            }
    }
    for (int k = 0; k < n_nets; k++) {
        if (acc) acc[k] = corr[k] / d->n;
        if (nll) nll[k] = ls[k] / d->n;
    }
    free(p); free(corr); free(ls);
}
