#include "gauge.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

#define GAUGE_EPS_SQ 1e-8  // added under the square root
#define GAUGE_EPS_DIV 1e-8 // added to the divisor

int gauge_n_scales(const TargetArch *a) {
    int n = 0;
    for (int l = 0; l + 1 < a->n_layers; l++) n += a->layers[l].filters;
    return n;
}

// ---- row kernels ----
// Every kernel computes each output element with the operations of the portable version, in the
// same order (float products and scalings elementwise; the double sums of dot8 in the same 8
// lanes, each lane summed in ascending k, combined in the same order; the scale gradients per
// channel summed over (f, p) in ascending order). The vector versions only process several
// independent elements per instruction, so every version gives the same bits (test_target
// checks it). The build uses -std=c11, hence -ffp-contract=off: no multiply-add is fused.
typedef struct {
    const char *name;
    // sum_k a[k] b[k] in double, in 8 interleaved partial sums (independent chains, so the loop
    // runs at one element per cycle instead of one per add latency); lane u takes k = 8m + u,
    // the tail k >= 8*floor(n/8) goes to lane k - 8*floor(n/8), lanes combined in a fixed order.
    double (*dot8)(const float *a, const float *b, int n);
    void (*scale)(float *w, float s, int n);                            // w[k] *= s
    void (*scale_ch)(float *w, const float *s, int P, int C);           // w[p*C + c] *= s[c]
    // g[k] = (float)(g[k] * rden + cu * u[k]), in double
    void (*norm_bwd)(float *g, const float *u, double rden, double cu, int n);
    // gs[c] += (double)g[p*C + c] * r[p*C + c], then g[p*C + c] *= s[c], for p = 0..P-1
    void (*ch_grad)(double *gs, float *g, const float *r, const float *s, int P, int C);
} GaugeKernels;

static double combine8(const double s[8]) {
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static double dot8_portable(const float *a, const float *b, int n) {
    double s[8] = {0};
    const int n8 = n & ~7;
    for (int k = 0; k < n8; k += 8)
        for (int u = 0; u < 8; u++) s[u] += (double)a[k + u] * b[k + u];
    for (int k = n8; k < n; k++) s[k - n8] += (double)a[k] * b[k];
    return combine8(s);
}

static void scale_portable(float *w, float s, int n) {
    for (int k = 0; k < n; k++) w[k] *= s;
}

static void scale_ch_portable(float *w, const float *s, int P, int C) {
    for (int p = 0; p < P; p++, w += C)
        for (int c = 0; c < C; c++) w[c] *= s[c];
}

static void norm_bwd_portable(float *g, const float *u, double rden, double cu, int n) {
    for (int k = 0; k < n; k++) g[k] = (float)(g[k] * rden + cu * u[k]);
}

static void ch_grad_portable(double *gs, float *g, const float *r, const float *s, int P, int C) {
    for (int p = 0; p < P; p++, g += C, r += C)
        for (int c = 0; c < C; c++) {
            gs[c] += (double)g[c] * r[c];
            g[c] *= s[c];
        }
}

static const GaugeKernels KERNELS_PORTABLE = {"portable", dot8_portable, scale_portable, scale_ch_portable,
                                              norm_bwd_portable, ch_grad_portable};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_GAUGE_AVX512 1
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2")))

static int cpu_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx2");
}

static AVX512 __mmask16 tail_mask(int r) { return (__mmask16)((1u << r) - 1u); } // r < 16 lanes

// The 8 lanes of dot8 are the 8 doubles of one zmm; the tail is added with a lane mask.
static AVX512 double dot8_avx512(const float *a, const float *b, int n) {
    __m512d s0 = _mm512_setzero_pd();
    const int n8 = n & ~7;
    for (int k = 0; k < n8; k += 8) {
        const __m512d x = _mm512_cvtps_pd(_mm256_loadu_ps(a + k)), y = _mm512_cvtps_pd(_mm256_loadu_ps(b + k));
        s0 = _mm512_add_pd(s0, _mm512_mul_pd(x, y));
    }
    if (n > n8) {
        const __mmask8 m = (__mmask8)((1u << (n - n8)) - 1u);
        const __m512d x = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, a + n8));
        const __m512d y = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, b + n8));
        s0 = _mm512_mask_add_pd(s0, m, s0, _mm512_mul_pd(x, y));
    }
    double s[8];
    _mm512_storeu_pd(s, s0);
    return combine8(s);
}

static AVX512 void scale_avx512(float *w, float s, int n) {
    const __m512 v = _mm512_set1_ps(s);
    int k = 0;
    for (; k + 16 <= n; k += 16) _mm512_storeu_ps(w + k, _mm512_mul_ps(_mm512_loadu_ps(w + k), v));
    if (k < n) {
        const __mmask16 m = tail_mask(n - k);
        _mm512_mask_storeu_ps(w + k, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + k), v));
    }
}

static AVX512 void scale_ch_avx512(float *w, const float *s, int P, int C) {
    for (int p = 0; p < P; p++, w += C) {
        int c = 0;
        for (; c + 16 <= C; c += 16)
            _mm512_storeu_ps(w + c, _mm512_mul_ps(_mm512_loadu_ps(w + c), _mm512_loadu_ps(s + c)));
        if (c < C) {
            const __mmask16 m = tail_mask(C - c);
            _mm512_mask_storeu_ps(w + c, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, w + c), _mm512_maskz_loadu_ps(m, s + c)));
        }
    }
}

// 8 elements: (float)(g * rden + cu * u), the double products and the sum rounded separately
static AVX512 __m256 norm_bwd8(__m256 g, __m256 u, __m512d rden, __m512d cu) {
    const __m512d a = _mm512_mul_pd(_mm512_cvtps_pd(g), rden), b = _mm512_mul_pd(cu, _mm512_cvtps_pd(u));
    return _mm512_cvtpd_ps(_mm512_add_pd(a, b));
}

static AVX512 void norm_bwd_avx512(float *g, const float *u, double rden, double cu, int n) {
    const __m512d vr = _mm512_set1_pd(rden), vc = _mm512_set1_pd(cu);
    int k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(g + k, norm_bwd8(_mm256_loadu_ps(g + k), _mm256_loadu_ps(u + k), vr, vc));
    if (k < n) {
        const __mmask8 m = (__mmask8)((1u << (n - k)) - 1u);
        _mm256_mask_storeu_ps(g + k, m, norm_bwd8(_mm256_maskz_loadu_ps(m, g + k), _mm256_maskz_loadu_ps(m, u + k), vr, vc));
    }
}

// 8 channels at c: gs[c..c+8) += g * r (double), g *= s (float); m selects the lanes
static AVX512 void ch_grad8(double *gs, float *g, const float *r, const float *s, __mmask8 m) {
    const __m256 vg = _mm256_maskz_loadu_ps(m, g);
    const __m512d p = _mm512_mul_pd(_mm512_cvtps_pd(vg), _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, r)));
    _mm512_mask_storeu_pd(gs, m, _mm512_add_pd(_mm512_maskz_loadu_pd(m, gs), p));
    _mm256_mask_storeu_ps(g, m, _mm256_mul_ps(vg, _mm256_maskz_loadu_ps(m, s)));
}

static AVX512 void ch_grad_avx512(double *gs, float *g, const float *r, const float *s, int P, int C) {
    const int C8 = C & ~7;
    const __mmask8 mt = (__mmask8)((1u << (C - C8)) - 1u);
    for (int p = 0; p < P; p++, g += C, r += C) {
        for (int c = 0; c < C8; c += 8) ch_grad8(gs + c, g + c, r + c, s + c, 0xff);
        if (C8 < C) ch_grad8(gs + C8, g + C8, r + C8, s + C8, mt);
    }
}

static const GaugeKernels KERNELS_AVX512 = {"avx512", dot8_avx512, scale_avx512, scale_ch_avx512,
                                            norm_bwd_avx512, ch_grad_avx512};
#endif

int gauge_have_avx512(void) {
#ifdef HAVE_GAUGE_AVX512
    return cpu_avx512();
#else
    return 0;
#endif
}

static const GaugeKernels *kernels(GaugeImpl impl) {
#ifdef HAVE_GAUGE_AVX512
    if (impl == GAUGE_AUTO) impl = cpu_avx512() ? GAUGE_AVX512 : GAUGE_PORTABLE;
    if (impl == GAUGE_AVX512) {
        HT_CHECK(cpu_avx512(), "gauge: the avx512 row kernels need AVX-512 F, BW and VL, which this CPU lacks");
        return &KERNELS_AVX512;
    }
#else
    HT_CHECK(impl != GAUGE_AVX512, "gauge: the avx512 row kernels are not built for this CPU architecture");
#endif
    return &KERNELS_PORTABLE;
}

const char *gauge_impl_name(GaugeImpl impl) { return kernels(impl)->name; }

// Multiplies the weights (not the bias) of every filter of layer L by s[channel of the element]:
// element j = p * C + c (p the kernel position or input pixel) reads channel c.
static void scale_inputs(const GaugeKernels *k, const TargetLayer *L, float *w, const float *s) {
    const int stride = L->fan_in + 1, C = L->in_channels, P = L->fan_in / C;
    for (int f = 0; f < L->filters; f++) k->scale_ch(w + (size_t)f * stride, s, P, C);
}

static void forward_one(const GaugeKernels *k, const TargetArch *a, float *w, float *scales) {
    float *s = scales;
    for (int l = 0; l + 1 < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        const int n = L->fan_in + 1;
        float *wl = w + L->offset;
        for (int i = 0; i < L->filters; i++) {
            float *fi = wl + (size_t)i * n;
            double si = sqrt(k->dot8(fi, fi, n) / n + GAUGE_EPS_SQ);
            k->scale(fi, (float)(1.0 / (si + GAUGE_EPS_DIV)), n);
            s[i] = (float)si;
        }
        scale_inputs(k, &a->layers[l + 1], w + a->layers[l + 1].offset, s);
        s += L->filters;
    }
    const TargetLayer *last = &a->layers[a->n_layers - 1];
    const int n = last->fan_in + 1;
    float *wl = w + last->offset;
    double mean = 0.0;
    for (int i = 0; i < last->filters; i++) mean += wl[(size_t)i * n + last->fan_in];
    mean /= last->filters;
    for (int i = 0; i < last->filters; i++) wl[(size_t)i * n + last->fan_in] -= (float)mean;
}

void gauge_forward_impl(GaugeImpl impl, const TargetArch *a, int n, const float *raw, float *out,
                        float *scales) {
    const GaugeKernels *k = kernels(impl);
    const int ns = gauge_n_scales(a);
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < n; b++) {
        float *w = out + (size_t)b * a->n_weights;
        memcpy(w, raw + (size_t)b * a->n_weights, a->n_weights * sizeof(float));
        forward_one(k, a, w, scales + (size_t)b * ns);
    }
}

void gauge_forward(const TargetArch *a, int n, const float *raw, float *out, float *scales) {
    gauge_forward_impl(GAUGE_AUTO, a, n, raw, out, scales);
}

// One network. g holds d/d(gauge-fixed weights) on entry and d/d(raw) on exit; u is scratch for
// one layer's pre-normalization weights; gs for the scale gradients of the previous layer.
static void backward_one(const GaugeKernels *k, const TargetArch *a, const float *raw, const float *scales,
                         float *g, float *u, double *gs) {
    const int m = a->n_layers;
    int s_off[HT_MAX_OPS];
    for (int l = 0, o = 0; l + 1 < m; l++) { s_off[l] = o; o += a->layers[l].filters; }
    // Last layer: bias minus its mean -> gradient minus its mean.
    {
        const TargetLayer *L = &a->layers[m - 1];
        const int n = L->fan_in + 1;
        float *gl = g + L->offset;
        double mean = 0.0;
        for (int i = 0; i < L->filters; i++) mean += gl[(size_t)i * n + L->fan_in];
        mean /= L->filters;
        for (int i = 0; i < L->filters; i++) gl[(size_t)i * n + L->fan_in] -= (float)mean;
    }
    double *gs_cur = gs; // d/d s_l for the layer being normalized, filled by layer l+1's step
    for (int l = m - 1; l >= 0; l--) {
        const TargetLayer *L = &a->layers[l];
        const int n = L->fan_in + 1;
        const float *rl = raw + L->offset;
        float *gl = g + L->offset;
        // u = this layer's weights before normalization: raw, inputs scaled by s_{l-1}
        memcpy(u, rl, L->size * sizeof(float));
        if (l > 0) scale_inputs(k, L, u, scales + s_off[l - 1]);
        if (l + 1 < m) { // normalization: out = u / (s + eps), s = sqrt(sum u^2 / n + eps)
            const float *s = scales + s_off[l];
            for (int i = 0; i < L->filters; i++) {
                const float *ui = u + (size_t)i * n;
                float *gi = gl + (size_t)i * n;
                const double si = s[i], den = si + GAUGE_EPS_DIV, rden = 1.0 / den;
                const double dsi = gs_cur[i] - k->dot8(gi, ui, n) * (rden * rden);
                k->norm_bwd(gi, ui, rden, dsi / (n * si), n);
            }
        }
        if (l > 0) { // input scaling by s_{l-1}: d s_{l-1}[c] and d raw
            const TargetLayer *P = &a->layers[l - 1];
            const float *sp = scales + s_off[l - 1];
            const int c = L->in_channels, np = L->fan_in / c;
            HT_CHECK(c == P->filters, "gauge: layer %d reads %d channels but layer %d has %d filters",
                     l + 1, c, l, P->filters);
            memset(gs, 0, (size_t)c * sizeof(double));
            for (int f = 0; f < L->filters; f++)
                k->ch_grad(gs, gl + (size_t)f * n, rl + (size_t)f * n, sp, np, c);
            gs_cur = gs;
        }
    }
}

void gauge_backward_impl(GaugeImpl impl, const TargetArch *a, int n, const float *raw, const float *scales,
                         const float *dout, float *draw) {
    const GaugeKernels *k = kernels(impl);
    const int ns = gauge_n_scales(a);
    size_t max_layer = 0;
    int max_f = 1;
    for (int l = 0; l < a->n_layers; l++) {
        if (a->layers[l].size > max_layer) max_layer = a->layers[l].size;
        if (a->layers[l].filters > max_f) max_f = a->layers[l].filters;
    }
    #pragma omp parallel
    {
        float *u = XMALLOC(max_layer * sizeof(float));
        double *gs = XCALLOC((size_t)max_f, sizeof(double));
        #pragma omp for schedule(static)
        for (int b = 0; b < n; b++) {
            float *g = draw + (size_t)b * a->n_weights;
            if (g != dout + (size_t)b * a->n_weights)
                memcpy(g, dout + (size_t)b * a->n_weights, a->n_weights * sizeof(float));
            backward_one(k, a, raw + (size_t)b * a->n_weights, scales + (size_t)b * ns, g, u, gs);
        }
        free(u);
        free(gs);
    }
}

void gauge_backward(const TargetArch *a, int n, const float *raw, const float *scales,
                    const float *dout, float *draw) {
    gauge_backward_impl(GAUGE_AUTO, a, n, raw, scales, dout, draw);
}
