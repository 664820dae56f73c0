// model.h: the trainable state of a run: architecture, and ONE flat allocation holding the
// parameters, their gradients and Adam's two moments (4 x n_params floats), plus the batch-norm
// running averages. Named views (arch.h ParamTable) index all four the same way.
#ifndef HT_MODEL_H
#define HT_MODEL_H

#include <stdint.h>

#include "arch.h"
#include "config.h"

typedef struct {
    Job job;
    TargetArch tarch;
    HyperArch harch;
    float *flat;                      // (4, n_params): params | grads | adam_m | adam_v
    float *params, *grads, *adam_m, *adam_v;
    float *stats;                     // (n_stat) batch-norm running means and variances
    int64_t step;                     // training steps completed
} Model;

// Builds the architecture and initializes parameters as the paper's code did: dense kernels
// from a normal with sigma = sqrt(init_scale / fan_in) truncated at +-2 sigma; batch-norm scales
// 1, offsets 0; running averages 0; Adam moments 0. Deterministic in job.seed.
void model_init(Model *m, const Job *job);
void model_free(Model *m);

// lr and lambda of step t (0-based): lr * lr_decay^t, lambda * lambda_growth^t.
double model_lr(const Job *job, int64_t step);
double model_lambda(const Job *job, int64_t step);

#endif
