#include "adam.h"

#include <math.h>

// The update of one element, in float: the portable loop below. The AVX-512 version does the
// same operations in the same order on 16 elements per instruction (IEEE multiply, add, divide
// and square root are correctly rounded in vector form too, and -std=c11 fuses no multiply-add),
// so both give the same bits.
static void adam_portable(float *params, const float *grads, float *m, float *v, size_t n, float b1,
                          float b2, float e, float a) {
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        const float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= a * m[i] / (sqrtf(v[i]) + e);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_ADAM_AVX512 1
#define AVX512 __attribute__((target("avx512f")))

static AVX512 void adam16(float *p, const float *gr, float *m, float *v, __mmask16 k, __m512 b1, __m512 c1,
                          __m512 b2, __m512 c2, __m512 e, __m512 a) {
    const __m512 g = _mm512_maskz_loadu_ps(k, gr);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(b1, _mm512_maskz_loadu_ps(k, m)), _mm512_mul_ps(c1, g));
    const __m512 vi = _mm512_add_ps(_mm512_mul_ps(b2, _mm512_maskz_loadu_ps(k, v)), _mm512_mul_ps(_mm512_mul_ps(c2, g), g));
    const __m512 step = _mm512_div_ps(_mm512_mul_ps(a, mi), _mm512_add_ps(_mm512_sqrt_ps(vi), e));
    _mm512_mask_storeu_ps(m, k, mi);
    _mm512_mask_storeu_ps(v, k, vi);
    _mm512_mask_storeu_ps(p, k, _mm512_sub_ps(_mm512_maskz_loadu_ps(k, p), step));
}

// elements [i0, i1) in blocks of 16, the last one masked
static AVX512 void adam_avx512_range(float *params, const float *grads, float *m, float *v, size_t i0, size_t i1,
                                     float b1, float b2, float e, float a) {
    const __m512 vb1 = _mm512_set1_ps(b1), vc1 = _mm512_set1_ps(1.0f - b1), vb2 = _mm512_set1_ps(b2);
    const __m512 vc2 = _mm512_set1_ps(1.0f - b2), ve = _mm512_set1_ps(e), va = _mm512_set1_ps(a);
    for (size_t i = i0; i < i1; i += 16) {
        const __mmask16 k = i1 - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (i1 - i)) - 1u);
        adam16(params + i, grads + i, m + i, v + i, k, vb1, vc1, vb2, vc2, ve, va);
    }
}

// The parallel loop is outside the target("avx512f") function: an OpenMP outlined region does
// not inherit the attribute (Clang then rejects passing __m512 values inside it).
static void adam_avx512(float *params, const float *grads, float *m, float *v, size_t n, float b1, float b2,
                        float e, float a) {
    const size_t chunk = 4096, nc = (n + chunk - 1) / chunk;
    #pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nc; c++)
        adam_avx512_range(params, grads, m, v, c * chunk, c + 1 < nc ? (c + 1) * chunk : n, b1, b2, e, a);
}

static int cpu_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}
#endif

int adam_have_avx512(void) {
#ifdef HAVE_ADAM_AVX512
    return cpu_avx512();
#else
    return 0;
#endif
}

void adam_update_impl(int use_avx512, float *params, const float *grads, float *m, float *v, size_t n,
                      double lr, double beta1, double beta2, double eps, int64_t t) {
    const double lr_t = lr * sqrt(1.0 - pow(beta2, (double)t)) / (1.0 - pow(beta1, (double)t));
    const float b1 = (float)beta1, b2 = (float)beta2, e = (float)eps, a = (float)lr_t;
#ifdef HAVE_ADAM_AVX512
    if (use_avx512 && cpu_avx512()) { adam_avx512(params, grads, m, v, n, b1, b2, e, a); return; }
#endif
    adam_portable(params, grads, m, v, n, b1, b2, e, a);
}

void adam_update(float *params, const float *grads, float *m, float *v, size_t n, double lr,
                 double beta1, double beta2, double eps, int64_t t) {
    adam_update_impl(1, params, grads, m, v, n, lr, beta1, beta2, eps, t);
}
