#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "rng.h"

void model_init(Model *m, const Job *job) {
    memset(m, 0, sizeof(*m));
    m->job = *job;
    if (job->task == TASK_MNIST) arch_build_target(&m->tarch, job);
    arch_build_hyper(&m->harch, job, &m->tarch);
    const ParamTable *t = &m->harch.table;
    const size_t n = t->n_params;
    // Parameters, gradients and the two Adam moments: 16 bytes per parameter.
    const size_t flat = XMUL(4, n, "hypernetwork: %zu parameters with gradients and Adam state", n);
    HT_CHECK_MEMORY(XMUL(flat, sizeof(float), "hypernetwork: %zu parameters", n),
                    "job: the hypernetwork (%zu parameters, with gradients and Adam state)", n);
    m->flat = XALLOC_FLOATS(flat);
    m->params = m->flat;
    m->grads = m->flat + n;
    m->adam_m = m->flat + 2 * n;
    m->adam_v = m->flat + 3 * n;
    m->stats = XALLOC_FLOATS(t->n_stat);
    for (int i = 0; i < t->n_views; i++) {
        const ParamView *v = &t->views[i];
        float *p = m->params + v->offset;
        const char *leaf = strrchr(v->name, '/');
        leaf = leaf ? leaf + 1 : v->name;
        if (strcmp(leaf, "gamma") == 0) {
            for (size_t k = 0; k < v->size; k++) p[k] = 1.0f;
        } else if (strcmp(leaf, "beta") == 0) {
            memset(p, 0, v->size * sizeof(float));
        } else { // dense kernel (fan_in, fan_out)
            const double sigma = sqrt(job->init_scale / v->shape[0]);
            for (size_t k = 0; k < v->size; k++)
                p[k] = (float)(sigma * rng_truncated_normal(job->seed, RNG_STREAM_INIT, (uint32_t)i,
                                                            (uint32_t)k));
        }
    }
}

void model_free(Model *m) {
    free(m->flat);
    free(m->stats);
    memset(m, 0, sizeof(*m));
}

double model_lr(const Job *job, int64_t step) { return job->lr * pow(job->lr_decay, (double)step); }

double model_lambda(const Job *job, int64_t step) {
    return job->lambda * pow(job->lambda_growth, (double)step);
}
