// uncert_eval.h: what hyperanalyze diversity, shift and calibrate share besides the computations
// of uncert.h: the logits of a sample set's networks on images, and the options they share.
#ifndef HT_UNCERT_EVAL_H
#define HT_UNCERT_EVAL_H

#include <stdint.h>

#include "sample.h"

// Logits (M, n, C) of networks [first, first + M) of the set on images (n, in_size) in [0, 1]:
// the reference forward pass of src/classifier.h (input_grad_forward: im2col + OpenBLAS, the
// oracle), OpenMP over networks (one workspace per thread, images in chunks of UQ_CHUNK), so the
// result does not depend on the number of threads. Progress on stderr every 10 s, labelled `what`.
#define UQ_CHUNK 100
void uq_logits(const SampleSet *s, long long first, int M, const float *images, int n, float *logits,
               const char *what);

// Opens the sample set `in` (of the architecture of `job`, when given) and, when `baseline` is not
// NULL, the deep ensemble of the same architecture; each must hold M networks (a one-line error
// naming the counts otherwise). Their SHA-256s go to sha_s and sha_b for the result's provenance.
void uq_open_sets(const char *in, const char *baseline, const char *job, long M, SampleSet *s, SampleSet *b,
                  char sha_s[65], char sha_b[65]);

// Ensemble sizes 1, 2, 4, ... < M, then M; returns their number (at most 64).
int uq_sizes(long M, int64_t *sizes);

#endif
