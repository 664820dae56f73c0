// adam.h: Adam (Kingma & Ba) in TensorFlow's form, as the original code used:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr * sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps)      (t = 1 at the first step)
#ifndef HT_ADAM_H
#define HT_ADAM_H

#include <stddef.h>
#include <stdint.h>

void adam_update(float *params, const float *grads, float *m, float *v, size_t n, double lr,
                 double beta1, double beta2, double eps, int64_t t);

// adam_update with the AVX-512 loop where use_avx512 and the CPU has AVX-512 F (what adam_update
// does), else the portable one; both give the same bits (src/adam.c).
int adam_have_avx512(void);
void adam_update_impl(int use_avx512, float *params, const float *grads, float *m, float *v, size_t n,
                      double lr, double beta1, double beta2, double eps, int64_t t);

#endif
