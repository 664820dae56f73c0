// baseline_core.h: the computation of hyperanalyze baseline (analysis/baseline.c is the command:
// options, data, gauge fixing, metrics, writing the sample set, stdout): K target networks trained
// directly, a deep ensemble (Lakshminarayanan et al. 2017). Each member has its own initialization
// (classifier_init keyed by (seed, member)) and its own order of training images (an epoch sampler
// keyed by splitmix64 of (seed, member)). One step: every member draws its own B images,
// target_loss_grad gives the mean cross-entropy and its gradient for all K members at once, and one
// Adam update (TensorFlow form, lr, 0.9, 0.999, 1e-8) updates all of them. Members never interact,
// so member k depends only on (arch, data, seed, k, steps, batch, lr, init). Tests in
// tests/test_analysis.c.
#ifndef HT_BASELINE_CORE_H
#define HT_BASELINE_CORE_H

#include <stdint.h>

#include "arch.h"
#include "classifier.h"
#include "data.h"

typedef struct {
    long K;            // members
    long steps;        // Adam steps (0: the initialization)
    long batch;        // training images per member and step
    long log_every;    // a progress line (stderr) and a logging interval every log_every steps
    double lr;         // Adam learning rate
    uint64_t seed;
    ClassifierInit init;
} BaselineTrainCfg;

typedef struct {
    double *first;     // (K) mean training cross-entropy per image over the first logging interval
    double *last;      // (K) the same over the last interval
    double *last_acc;  // (K) training accuracy over the last interval
    long first_n, last_n;   // steps in the first and the last interval (0 when steps = 0)
} BaselineLog;

// Trains cfg->K members on train (train->n >= 1); theta (K, a->n_weights) gets their weights (as
// trained, not gauge-fixed). Fatal on a non-finite loss (naming the member and step) or when the
// training state does not fit in memory. Free log with baseline_log_free.
void baseline_train(const BaselineTrainCfg *cfg, const TargetArch *a, const Dataset *train, float *theta,
                    BaselineLog *log);
void baseline_log_free(BaselineLog *log);
// Fatal (one line naming --members, the weights and --batch) when the training state of
// baseline_train (weights, gradients, two Adam moments, a batch of images per member) would not fit
// in memory or overflows size_t.
void baseline_check_memory(const BaselineTrainCfg *cfg, const TargetArch *a);

#endif
