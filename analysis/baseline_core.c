// baseline_core.c: see baseline_core.h.
#include "baseline_core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "common.h"
#include "target.h"

void baseline_check_memory(const BaselineTrainCfg *cfg, const TargetArch *a) {
    const size_t W = a->n_weights, K = (size_t)cfg->K, B = (size_t)cfg->batch, isz = (size_t)a->in_size;
    // Weights, gradients and Adam moments of K networks, and a batch of images per member.
    const size_t KW = XMUL(K, W, "baseline: --members %zu x %zu weights", K, W);
    const size_t KBI = XMUL(XMUL(K, B, "baseline: --members x --batch"), isz, "baseline: images");
    HT_CHECK_MEMORY(XADD(XMUL(KW, 4 * sizeof(float), "baseline: training state"),
                         XMUL(KBI, sizeof(float), "baseline: images"), "baseline: memory"),
                    "baseline: --members %zu networks of %zu weights with --batch %zu", K, W, B);
}

void baseline_train(const BaselineTrainCfg *cfg, const TargetArch *a, const Dataset *train, float *theta,
                    BaselineLog *log) {
    const size_t W = a->n_weights, K = (size_t)cfg->K, B = (size_t)cfg->batch, isz = (size_t)a->in_size;
    HT_CHECK(train->n >= 1, "baseline: the job's training split is empty");
    baseline_check_memory(cfg, a);
    const size_t KW = K * W, KBI = K * B * isz;
    float *grad = XALLOC_FLOATS(KW);
    float *m1 = XCALLOC(KW, sizeof(float)), *m2 = XCALLOC(KW, sizeof(float));
    classifier_init(a, cfg->init, cfg->seed, 0, (int)K, theta);
    Sampler *smp = XMALLOC(K * sizeof(Sampler));
    for (size_t k = 0; k < K; k++)   // a distinct image order per member (splitmix64 of (seed, k))
        sampler_init(&smp[k], cfg->seed * 0x9E3779B97F4A7C15ull + (k + 1) * 0xBF58476D1CE4E5B9ull, train->n);
    float *imgs = XALLOC_FLOATS(KBI);
    uint8_t *labels = XMALLOC(K * B);
    double *loss = XMALLOC(K * sizeof(double));
    double *run = XCALLOC(K, sizeof(double)), *run_acc = XCALLOC(K, sizeof(double));
    int *correct = XMALLOC(K * sizeof(int));
    log->first = XCALLOC(K, sizeof(double));
    log->last = XCALLOC(K, sizeof(double));
    log->last_acc = XCALLOC(K, sizeof(double));
    log->first_n = log->last_n = 0;
    long run_n = 0;
    TargetNet tn;
    target_init(&tn, a, (int)B, 0);
    const double t0 = ht_now();
    for (long t = 1; t <= cfg->steps; t++) {
        for (size_t k = 0; k < K; k++)
            for (size_t j = 0; j < B; j++) {
                const int idx = sampler_index(&smp[k], (int64_t)(t - 1) * (int64_t)B + (int64_t)j);
                memcpy(imgs + (k * B + j) * isz, train->images + (size_t)idx * isz, isz * sizeof(float));
                labels[k * B + j] = train->labels[idx];
            }
        target_loss_grad(&tn, (int)K, theta, (int)B, imgs, B * isz, labels, B, 1.0f / (float)B, loss, correct, grad);
        for (size_t k = 0; k < K; k++) {
            HT_CHECK(isfinite(loss[k]), "baseline: member %zu: non-finite loss at step %ld (lower --lr)", k, t);
            run[k] += loss[k] / B;
            run_acc[k] += (double)correct[k] / B;
        }
        run_n++;
        adam_update(theta, grad, m1, m2, K * W, cfg->lr, 0.9, 0.999, 1e-8, t);
        if (t % cfg->log_every == 0 || t == cfg->steps) {
            double mean = 0;
            for (size_t k = 0; k < K; k++) {
                if (!log->first_n) log->first[k] = run[k] / run_n;
                log->last[k] = run[k] / run_n;
                log->last_acc[k] = run_acc[k] / run_n;
                mean += log->last[k] / K;
                run[k] = run_acc[k] = 0;
            }
            if (!log->first_n) log->first_n = run_n;
            log->last_n = run_n;
            run_n = 0;
            fprintf(stderr, "baseline: step %ld/%ld | mean loss %.4f over the last %ld steps | %.1fs\n", t,
                    cfg->steps, mean, log->last_n, ht_now() - t0);
        }
    }
    for (size_t k = 0; k < K; k++) sampler_free(&smp[k]);
    target_free(&tn);
    free(grad); free(m1); free(m2); free(smp); free(imgs); free(labels); free(loss); free(run); free(run_acc);
    free(correct);
}

void baseline_log_free(BaselineLog *log) {
    free(log->first); free(log->last); free(log->last_acc);
    log->first = log->last = log->last_acc = NULL;
}
