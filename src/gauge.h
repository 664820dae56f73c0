// gauge.h: gauge fixing of generated weights (paper §3.2.2, DESIGN.md). For layers 1..m-1 in
// order, per filter i: s = sqrt((sum w^2 + b^2)/(fan_in+1) + 1e-8); the filter (weights and bias)
// is divided by (s + 1e-8) and the matching input channel of layer l+1 multiplied by s. Then the
// last layer's biases lose their mean. Because ReLU and max pooling are positively homogeneous,
// the network function is unchanged (up to the 1e-8 terms, kept to match the original code).
#ifndef HT_GAUGE_H
#define HT_GAUGE_H

#include "arch.h"

// Scales stored per network: one per filter of layers 1..m-1.
int gauge_n_scales(const TargetArch *a);

// raw (n, n_weights) -> out (n, n_weights); scales (n, gauge_n_scales) saved for the backward.
void gauge_forward(const TargetArch *a, int n, const float *raw, float *out, float *scales);

// dout (n, n_weights) -> draw (n, n_weights), the gradient w.r.t. the raw generated weights.
void gauge_backward(const TargetArch *a, int n, const float *raw, const float *scales,
                    const float *dout, float *draw);

// Row kernels: GAUGE_AUTO (what gauge_forward and gauge_backward use) picks avx512 where the CPU
// has AVX-512 F, BW and VL (__builtin_cpu_supports), else portable. Both give the same bits:
// the vector kernels do each element's operations in the portable order (src/gauge.c). Forcing
// avx512 on a CPU without it is a fatal error; gauge_have_avx512 says whether it can run.
typedef enum { GAUGE_AUTO, GAUGE_PORTABLE, GAUGE_AVX512 } GaugeImpl;
int gauge_have_avx512(void);
const char *gauge_impl_name(GaugeImpl impl);
void gauge_forward_impl(GaugeImpl impl, const TargetArch *a, int n, const float *raw, float *out,
                        float *scales);
void gauge_backward_impl(GaugeImpl impl, const TargetArch *a, int n, const float *raw, const float *scales,
                         const float *dout, float *draw);

#endif
