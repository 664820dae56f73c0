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

// sum_k a[k] b[k] in double, in 8 interleaved partial sums (independent chains, so the loop runs
// at one element per cycle instead of one per add latency); lane u takes k = 8m + u, the tail
// k >= 8*floor(n/8) goes to lane k - 8*floor(n/8), lanes combined in a fixed order.
static double dot8(const float *a, const float *b, int n) {
    double s[8] = {0};
    const int n8 = n & ~7;
    for (int k = 0; k < n8; k += 8)
        for (int u = 0; u < 8; u++) s[u] += (double)a[k + u] * b[k + u];
    for (int k = n8; k < n; k++) s[k - n8] += (double)a[k] * b[k];
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

// Multiplies the weights (not the bias) of every filter of layer L by s[channel of the element]:
// element j = p * C + c (p the kernel position or input pixel) reads channel c.
static void scale_inputs(const TargetLayer *L, float *w, const float *s) {
    const int stride = L->fan_in + 1, C = L->in_channels, P = L->fan_in / C;
    for (int f = 0; f < L->filters; f++)
        for (int p = 0; p < P; p++) {
            float *wp = w + (size_t)f * stride + (size_t)p * C;
            for (int c = 0; c < C; c++) wp[c] *= s[c];
        }
}

static void forward_one(const TargetArch *a, float *w, float *scales) {
    float *s = scales;
    for (int l = 0; l + 1 < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        const int n = L->fan_in + 1;
        float *wl = w + L->offset;
        for (int i = 0; i < L->filters; i++) {
            float *fi = wl + (size_t)i * n;
            double si = sqrt(dot8(fi, fi, n) / n + GAUGE_EPS_SQ);
            float inv = (float)(1.0 / (si + GAUGE_EPS_DIV));
            for (int k = 0; k < n; k++) fi[k] *= inv;
            s[i] = (float)si;
        }
        scale_inputs(&a->layers[l + 1], w + a->layers[l + 1].offset, s);
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

void gauge_forward(const TargetArch *a, int n, const float *raw, float *out, float *scales) {
    const int ns = gauge_n_scales(a);
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < n; b++) {
        float *w = out + (size_t)b * a->n_weights;
        memcpy(w, raw + (size_t)b * a->n_weights, a->n_weights * sizeof(float));
        forward_one(a, w, scales + (size_t)b * ns);
    }
}

// One network. g holds d/d(gauge-fixed weights) on entry and d/d(raw) on exit; u is scratch for
// one layer's pre-normalization weights; gs_next for the scale gradients of the previous layer.
static void backward_one(const TargetArch *a, const float *raw, const float *scales, float *g,
                         float *u, double *gs) {
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
        if (l > 0) scale_inputs(L, u, scales + s_off[l - 1]);
        if (l + 1 < m) { // normalization: out = u / (s + eps), s = sqrt(sum u^2 / n + eps)
            const float *s = scales + s_off[l];
            for (int i = 0; i < L->filters; i++) {
                const float *ui = u + (size_t)i * n;
                float *gi = gl + (size_t)i * n;
                const double si = s[i], den = si + GAUGE_EPS_DIV, rden = 1.0 / den;
                const double dsi = gs_cur[i] - dot8(gi, ui, n) * (rden * rden);
                const double cu = dsi / (n * si);
                for (int k = 0; k < n; k++) gi[k] = (float)(gi[k] * rden + cu * ui[k]);
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
                for (int p = 0; p < np; p++) {
                    float *gf = gl + (size_t)f * n + (size_t)p * c;
                    const float *rf = rl + (size_t)f * n + (size_t)p * c;
                    for (int ch = 0; ch < c; ch++) {
                        gs[ch] += (double)gf[ch] * rf[ch];
                        gf[ch] *= sp[ch];
                    }
                }
            gs_cur = gs;
        }
    }
}

void gauge_backward(const TargetArch *a, int n, const float *raw, const float *scales,
                    const float *dout, float *draw) {
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
            backward_one(a, raw + (size_t)b * a->n_weights, scales + (size_t)b * ns, g, u, gs);
        }
        free(u);
        free(gs);
    }
}
