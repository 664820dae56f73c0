#include "adam.h"

#include <math.h>

void adam_update(float *params, const float *grads, float *m, float *v, size_t n, double lr,
                 double beta1, double beta2, double eps, int64_t t) {
    const double lr_t = lr * sqrt(1.0 - pow(beta2, (double)t)) / (1.0 - pow(beta1, (double)t));
    const float b1 = (float)beta1, b2 = (float)beta2, e = (float)eps, a = (float)lr_t;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= a * m[i] / (sqrtf(v[i]) + e);
    }
}
