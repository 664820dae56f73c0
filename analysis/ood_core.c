// ood_core.c: see ood_core.h.
#include "ood_core.h"

#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "common.h"
#include "metrics.h"

const char *const OOD_SCORE_NAMES[OOD_N_SCORES] = {"entropy", "mutual_information", "max_prob"};

void ood_init(OodCompute *o, long M, int n, int n_in, int C, const uint8_t *labels) {
    memset(o, 0, sizeof(*o));
    o->M = M; o->n = n; o->n_in = n_in; o->C = C; o->labels = labels;
    for (long sz = 1; sz < M; sz *= 2) o->sizes[o->S++] = sz;
    o->sizes[o->S++] = M;
    o->is_out = XMALLOC((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) o->is_out[i] = i >= n_in;
    o->scores = XCALLOC((size_t)OOD_N_SCORES * n, sizeof(double));
    o->auroc = XCALLOC((size_t)OOD_N_SCORES * o->S, sizeof(double));
    o->in_acc = XCALLOC((size_t)o->S, sizeof(double));
    o->psum = XCALLOC((size_t)n * C, sizeof(double));
    o->hsum = XCALLOC((size_t)n, sizeof(double));
    o->mean = XCALLOC((size_t)C, sizeof(double));
}

// Scores, AUROCs and accuracy of the ensemble of the first `size` members into slot si.
static void ood_score(OodCompute *o, int si, long size) {
    const int n = o->n, C = o->C, S = o->S;
    double *mean = o->mean, *scores = o->scores;
    int right = 0;
    for (int i = 0; i < n; i++) {
        double best = 0.0;
        for (int q = 0; q < C; q++) {
            mean[q] = o->psum[(size_t)i * C + q] / size;
            if (mean[q] > best) best = mean[q];
        }
        const double h = prob_entropy(mean, C);
        scores[i] = h;
        scores[(size_t)n + i] = h - o->hsum[i] / size;
        scores[(size_t)2 * n + i] = 1.0 - best;
        if (i < o->n_in) right += metric_argmax(mean, C) == o->labels[i];
    }
    for (int q = 0; q < OOD_N_SCORES; q++)
        o->auroc[(size_t)q * S + si] = metric_auroc(scores + (size_t)q * n, o->is_out, n);
    o->in_acc[si] = (double)right / o->n_in;
}

void ood_add(OodCompute *o, const float *p) {
    const int n = o->n, C = o->C;
    for (int i = 0; i < n; i++) {
        const float *pi = p + (size_t)i * C;
        for (int q = 0; q < C; q++) {
            o->mean[q] = pi[q];
            o->psum[(size_t)i * C + q] += pi[q];
        }
        o->hsum[i] += prob_entropy(o->mean, C);
    }
    const long size = ++o->next;
    for (int si = 0; si < o->S; si++)
        if (o->sizes[si] == size) ood_score(o, si, size);
}

void ood_free(OodCompute *o) {
    free(o->is_out); free(o->scores); free(o->auroc); free(o->in_acc); free(o->psum); free(o->hsum); free(o->mean);
    memset(o, 0, sizeof(*o));
}
