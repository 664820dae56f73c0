// kernels.cu: element-wise and reduction kernels of the CUDA backend; each mirrors the matching
// loop of src/ operation by operation (same float/double mix, same order where the order is
// sequential on the CPU), so that the only differences are the orders of parallel sums.
// Compiled with --fmad=false: a*b+c is never contracted into an FMA, as on the CPU build.
#include "kernels.cuh"

#include <math.h>

extern "C" {
#include "entropy.h"
#include "gauge.h"
}

// ============================================================================ batch norm

// Block (32 features, BN_LANES row lanes); grid over feature chunks of 32.
#define BN_LANES 16

__device__ __forceinline__ float leaky(float x, float alpha) { return x > 0.0f ? x : alpha * x; }

// The per-block, per-element bodies are shared by the one-MLP kernels and the grouped ones (one
// launch for every generator of a level), so both compute every value with the same operations in
// the same order: the grouped path gives the split path's bits.

// Block (32 features, BN_LANES row lanes) over features [blockIdx.x * 32, + 32): s1[j], s2[j].
__device__ __forceinline__ void bn_stats_block(const float *a, int rows, int f, float alpha, double *s1, double *s2) {
    __shared__ double sh1[BN_LANES][33], sh2[BN_LANES][33];
    const int tx = threadIdx.x, ty = threadIdx.y, j = blockIdx.x * 32 + tx;
    double p1 = 0.0, p2 = 0.0;
    if (j < f)
        for (int r = ty; r < rows; r += BN_LANES) {
            const float x = a[(size_t)r * f + j];
            const double l = x > 0.0f ? (double)x : (double)(alpha * x); // src: double l = ar>0 ? ar : alpha*ar
            p1 += l;
            p2 += l * l;
        }
    sh1[ty][tx] = p1;
    sh2[ty][tx] = p2;
    __syncthreads();
    if (ty == 0 && j < f) {
        double t1 = 0.0, t2 = 0.0;
        for (int k = 0; k < BN_LANES; k++) { t1 += sh1[k][tx]; t2 += sh2[k][tx]; }
        s1[j] = t1;
        s2[j] = t2;
    }
}

__global__ void bn_stats_kernel(const float *a, int rows, int f, float alpha, double *s1, double *s2) {
    bn_stats_block(a, rows, f, alpha, s1, s2);
}

void k_bn_stats(cudaStream_t st, const float *a, int rows, int f, float alpha, double *red) {
    dim3 block(32, BN_LANES), grid((unsigned)((f + 31) / 32));
    bn_stats_kernel<<<grid, block, 0, st>>>(a, rows, f, alpha, red, red + f);
    LAUNCH_CHECK("bn_stats_kernel");
}

__device__ __forceinline__ void bn_finalize_elem(int j, int global_rows, int train, double decay, double eps,
                                                 double *s1, const double *s2, float *run_mean, float *run_var,
                                                 float *rstd) {
    double mean, var;
    if (train) {
        mean = s1[j] / global_rows;
        var = s2[j] / global_rows - mean * mean;
        if (var < 0.0) var = 0.0;
        run_mean[j] = (float)(decay * run_mean[j] + (1.0 - decay) * mean);
        run_var[j] = (float)(decay * run_var[j] + (1.0 - decay) * var);
    } else {
        mean = run_mean[j];
        var = run_var[j];
    }
    s1[j] = mean;
    rstd[j] = (float)(1.0 / sqrt(var + eps));
}

__global__ void bn_finalize_kernel(int f, int global_rows, int train, double decay, double eps, double *s1,
                                   const double *s2, float *run_mean, float *run_var, float *rstd) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= f) return;
    bn_finalize_elem(j, global_rows, train, decay, eps, s1, s2, run_mean, run_var, rstd);
}

void k_bn_finalize(cudaStream_t st, int f, int global_rows, int train, double decay, double eps,
                   double *red, float *run_mean, float *run_var, float *rstd) {
    bn_finalize_kernel<<<grid_for((size_t)f), HT_BLOCK, 0, st>>>(f, global_rows, train, decay, eps, red,
                                                                 red + f, run_mean, run_var, rstd);
    LAUNCH_CHECK("bn_finalize_kernel");
}

__device__ __forceinline__ void bn_apply_elem(size_t i, const float *a, float *xhat, float *y, int f, float alpha,
                                              const double *mean, const float *rstd, const float *gamma,
                                              const float *beta) {
    const int j = (int)(i % (size_t)f);
    const float l = leaky(a[i], alpha);
    const float xr = (float)((l - mean[j]) * rstd[j]);
    xhat[i] = xr;
    y[i] = gamma[j] * xr + beta[j];
}

__global__ void bn_apply_kernel(const float *a, float *xhat, float *y, size_t n, int f, float alpha,
                                const double *mean, const float *rstd, const float *gamma,
                                const float *beta) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    bn_apply_elem(i, a, xhat, y, f, alpha, mean, rstd, gamma, beta);
}

void k_bn_apply(cudaStream_t st, const float *a, float *xhat, float *y, int rows, int f, float alpha,
                const double *mean, const float *rstd, const float *gamma, const float *beta) {
    const size_t n = (size_t)rows * f;
    bn_apply_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(a, xhat, y, n, f, alpha, mean, rstd, gamma, beta);
    LAUNCH_CHECK("bn_apply_kernel");
}

// Block (32 features, BN_LANES row lanes): dbeta/dgamma += the local sums; s[j] = gamma sum dy,
// s[f + j] = gamma sum dy*xhat; raw (when not NULL): raw[j] = sum dy, raw[f + j] = sum dy*xhat.
__device__ __forceinline__ void bn_bwd_sums_block(const float *dy, const float *xhat, int rows, int f,
                                                  const float *gamma, float *dgamma, float *dbeta, double *s,
                                                  double *raw) {
    __shared__ double sh1[BN_LANES][33], sh2[BN_LANES][33];
    const int tx = threadIdx.x, ty = threadIdx.y, j = blockIdx.x * 32 + tx;
    double p1 = 0.0, p2 = 0.0;
    if (j < f)
        for (int r = ty; r < rows; r += BN_LANES) {
            const size_t i = (size_t)r * f + j;
            p1 += dy[i];
            p2 += dy[i] * xhat[i]; // float product, double sum (as src/mlp.c)
        }
    sh1[ty][tx] = p1;
    sh2[ty][tx] = p2;
    __syncthreads();
    if (ty == 0 && j < f) {
        double g1 = 0.0, g2 = 0.0;
        for (int k = 0; k < BN_LANES; k++) { g1 += sh1[k][tx]; g2 += sh2[k][tx]; }
        dbeta[j] += (float)g1;
        dgamma[j] += (float)g2;
        s[j] = gamma[j] * g1;
        s[f + j] = gamma[j] * g2;
        if (raw) {
            raw[j] = g1;
            raw[f + j] = g2;
        }
    }
}

__global__ void bn_bwd_sums_kernel(const float *dy, const float *xhat, int rows, int f, const float *gamma,
                                   float *dgamma, float *dbeta, double *red) {
    bn_bwd_sums_block(dy, xhat, rows, f, gamma, dgamma, dbeta, red, red + 2 * f);
}

void k_bn_bwd_sums(cudaStream_t st, const float *dy, const float *xhat, int rows, int f,
                   const float *gamma, float *dgamma, float *dbeta, double *red) {
    dim3 block(32, BN_LANES), grid((unsigned)((f + 31) / 32));
    bn_bwd_sums_kernel<<<grid, block, 0, st>>>(dy, xhat, rows, f, gamma, dgamma, dbeta, red);
    LAUNCH_CHECK("bn_bwd_sums_kernel");
}

__device__ __forceinline__ void bn_bwd_apply_elem(size_t i, const float *dy, const float *xhat, const float *a,
                                                  float *da, int f, float alpha, const float *gamma,
                                                  const float *rstd, const double *s1, const double *s2,
                                                  double inv_n) {
    const int j = (int)(i % (size_t)f);
    const double dxh = (double)gamma[j] * dy[i];
    const double dl = rstd[j] * (dxh - inv_n * s1[j] - xhat[i] * inv_n * s2[j]);
    da[i] = (float)(a[i] > 0.0f ? dl : alpha * dl);
}

__global__ void bn_bwd_apply_kernel(const float *dy, const float *xhat, const float *a, float *da, size_t n,
                                    int f, float alpha, const float *gamma, const float *rstd,
                                    const double *s1, const double *s2, double inv_n) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    bn_bwd_apply_elem(i, dy, xhat, a, da, f, alpha, gamma, rstd, s1, s2, inv_n);
}

void k_bn_bwd_apply(cudaStream_t st, const float *dy, const float *xhat, const float *a, float *da,
                    int rows, int f, float alpha, const float *gamma, const float *rstd,
                    const double *red, int global_rows) {
    const size_t n = (size_t)rows * f;
    bn_bwd_apply_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(dy, xhat, a, da, n, f, alpha, gamma, rstd, red,
                                                          red + f, 1.0 / global_rows);
    LAUNCH_CHECK("bn_bwd_apply_kernel");
}

// ---- grouped: one launch for every op of a BnGroup, blockIdx.y = op (the same bodies) ----

static void bn_group_check(const BnGroup *g, const char *what) {
    HT_CHECK(g->n >= 1 && g->n <= HT_MAX_OPS, "%s: %d batch norms in one launch (1 to %d)", what, g->n, HT_MAX_OPS);
}

// Largest features and elements (rows x features) of the group's ops (the grid covers the largest).
static void bn_group_extent(const BnGroup *g, int *max_f, size_t *max_n) {
    *max_f = 1;
    *max_n = 1;
    for (int k = 0; k < g->n; k++) {
        if (g->op[k].f > *max_f) *max_f = g->op[k].f;
        const size_t n = (size_t)g->op[k].rows * g->op[k].f;
        if (n > *max_n) *max_n = n;
    }
}

__global__ void bn_stats_group_kernel(BnGroup g) {
    const BnOp *o = &g.op[blockIdx.y];
    if ((int)blockIdx.x * 32 >= o->f) return; // the whole block: no thread reaches the barrier
    bn_stats_block(o->a, o->rows, o->f, g.alpha, o->red, o->red + o->f);
}

void k_bn_stats_group(cudaStream_t st, const BnGroup *g) {
    bn_group_check(g, "k_bn_stats_group");
    int max_f;
    size_t max_n;
    bn_group_extent(g, &max_f, &max_n);
    dim3 block(32, BN_LANES), grid((unsigned)((max_f + 31) / 32), (unsigned)g->n);
    bn_stats_group_kernel<<<grid, block, 0, st>>>(*g);
    LAUNCH_CHECK("bn_stats_group_kernel");
}

__global__ void bn_finalize_group_kernel(BnGroup g) {
    const BnOp *o = &g.op[blockIdx.y];
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= o->f) return;
    bn_finalize_elem(j, o->global_rows, g.train, g.decay, g.eps, o->red, o->red + o->f, o->run_mean, o->run_var,
                     o->rstd);
}

void k_bn_finalize_group(cudaStream_t st, const BnGroup *g) {
    bn_group_check(g, "k_bn_finalize_group");
    int max_f;
    size_t max_n;
    bn_group_extent(g, &max_f, &max_n);
    dim3 grid(grid_for((size_t)max_f), (unsigned)g->n);
    bn_finalize_group_kernel<<<grid, HT_BLOCK, 0, st>>>(*g);
    LAUNCH_CHECK("bn_finalize_group_kernel");
}

__global__ void bn_apply_group_kernel(BnGroup g) {
    const BnOp *o = &g.op[blockIdx.y];
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)o->rows * o->f) return;
    bn_apply_elem(i, o->a, o->xhat, o->y, o->f, g.alpha, o->red, o->rstd, o->gamma, o->beta);
}

void k_bn_apply_group(cudaStream_t st, const BnGroup *g) {
    bn_group_check(g, "k_bn_apply_group");
    int max_f;
    size_t max_n;
    bn_group_extent(g, &max_f, &max_n);
    dim3 grid(grid_for(max_n), (unsigned)g->n);
    bn_apply_group_kernel<<<grid, HT_BLOCK, 0, st>>>(*g);
    LAUNCH_CHECK("bn_apply_group_kernel");
}

__global__ void bn_bwd_sums_group_kernel(BnGroup g) {
    const BnOp *o = &g.op[blockIdx.y];
    if ((int)blockIdx.x * 32 >= o->f) return;
    bn_bwd_sums_block(o->dy, o->xhat, o->rows, o->f, o->gamma, o->dgamma, o->dbeta, o->red, NULL);
}

void k_bn_bwd_sums_group(cudaStream_t st, const BnGroup *g) {
    bn_group_check(g, "k_bn_bwd_sums_group");
    int max_f;
    size_t max_n;
    bn_group_extent(g, &max_f, &max_n);
    dim3 block(32, BN_LANES), grid((unsigned)((max_f + 31) / 32), (unsigned)g->n);
    bn_bwd_sums_group_kernel<<<grid, block, 0, st>>>(*g);
    LAUNCH_CHECK("bn_bwd_sums_group_kernel");
}

__global__ void bn_bwd_apply_group_kernel(BnGroup g) {
    const BnOp *o = &g.op[blockIdx.y];
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)o->rows * o->f) return;
    bn_bwd_apply_elem(i, o->dy, o->xhat, o->a, o->da, o->f, g.alpha, o->gamma, o->rstd, o->red, o->red + o->f,
                      1.0 / o->global_rows);
}

void k_bn_bwd_apply_group(cudaStream_t st, const BnGroup *g) {
    bn_group_check(g, "k_bn_bwd_apply_group");
    int max_f;
    size_t max_n;
    bn_group_extent(g, &max_f, &max_n);
    dim3 grid(grid_for(max_n), (unsigned)g->n);
    bn_bwd_apply_group_kernel<<<grid, HT_BLOCK, 0, st>>>(*g);
    LAUNCH_CHECK("bn_bwd_apply_group_kernel");
}

// ---- row copies of several buffers in one launch (generator inputs and outputs) ----

__global__ void copy_rows_group_kernel(RowCopyGroup g) {
    const RowCopy *c = &g.op[blockIdx.z];
    const size_t col = (size_t)blockIdx.x * blockDim.x + threadIdx.x, row = blockIdx.y;
    if (col >= c->width) return;
    c->dst[row * c->dpitch + col] = c->src[row * c->spitch + col];
}

void k_copy_rows_group(cudaStream_t st, const RowCopyGroup *g, int rows) {
    HT_CHECK(g->n >= 1 && g->n <= HT_MAX_OPS, "k_copy_rows_group: %d copies in one launch (1 to %d)", g->n,
             HT_MAX_OPS);
    HT_CHECK(rows >= 1 && rows <= 65535, "k_copy_rows_group: %d rows (1 to 65535: one grid row each)", rows);
    size_t width = 1;
    for (int k = 0; k < g->n; k++) if (g->op[k].width > width) width = g->op[k].width;
    dim3 grid(grid_for(width), (unsigned)rows, (unsigned)g->n);
    copy_rows_group_kernel<<<grid, HT_BLOCK, 0, st>>>(*g);
    LAUNCH_CHECK("copy_rows_group_kernel");
}

// ============================================================================ gauge fixing

#define GAUGE_EPS_SQ 1e-8
#define GAUGE_EPS_DIV 1e-8

// First scale index of each layer 0..n_layers-2 (layer l's filters), as src/gauge.c s_off.
static void scale_offsets(const TargetArch *a, int *s_off) {
    for (int l = 0, o = 0; l + 1 < a->n_layers; l++) { s_off[l] = o; o += a->layers[l].filters; }
}

// One block per (filter i, network b): s = sqrt(sum w^2 / n + eps); filter /= (s + eps).
__global__ void gauge_normalize_kernel(float *w, size_t W, size_t off, int n, float *scales, int ns,
                                       int soff) {
    __shared__ double sh[HT_BLOCK];
    const int i = blockIdx.x, b = blockIdx.y;
    float *fi = w + (size_t)b * W + off + (size_t)i * n;
    double sq = 0.0;
    for (int k = threadIdx.x; k < n; k += HT_BLOCK) sq += (double)fi[k] * fi[k];
    sq = block_sum_d(sq, sh);
    const double si = sqrt(sq / n + GAUGE_EPS_SQ);
    const float inv = (float)(1.0 / (si + GAUGE_EPS_DIV));
    for (int k = threadIdx.x; k < n; k += HT_BLOCK) fi[k] *= inv;
    if (threadIdx.x == 0) scales[(size_t)b * ns + soff + i] = (float)si;
}

// w[b][f][j] *= s[b][j % c] for the weights (not the bias) of every filter of a layer
// (src/gauge.c scale_inputs; also the backward's gradient scaling).
__global__ void gauge_scale_inputs_kernel(float *w, size_t W, size_t off, int filters, int fan_in, int c,
                                          const float *scales, int ns, int soff, int nets) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const size_t per_net = (size_t)filters * fan_in;
    if (e >= per_net * nets) return;
    const int b = (int)(e / per_net);
    const size_t r = e % per_net;
    const int f = (int)(r / fan_in), j = (int)(r % fan_in);
    w[(size_t)b * W + off + (size_t)f * (fan_in + 1) + j] *= scales[(size_t)b * ns + soff + j % c];
}

static void scale_inputs(cudaStream_t st, float *w, size_t W, const TargetLayer *L, const float *scales,
                         int ns, int soff, int nets) {
    const size_t n = (size_t)L->filters * L->fan_in * nets;
    gauge_scale_inputs_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(w, W, L->offset, L->filters, L->fan_in,
                                                                L->in_channels, scales, ns, soff, nets);
    LAUNCH_CHECK("gauge_scale_inputs_kernel");
}

// One thread per network: the last layer's biases lose their mean (sequential, as src/).
__global__ void gauge_bias_mean_kernel(float *w, size_t W, size_t off, int filters, int fan_in, int nets) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= nets) return;
    float *wl = w + (size_t)b * W + off;
    const int n = fan_in + 1;
    double mean = 0.0;
    for (int i = 0; i < filters; i++) mean += wl[(size_t)i * n + fan_in];
    mean /= filters;
    for (int i = 0; i < filters; i++) wl[(size_t)i * n + fan_in] -= (float)mean;
}

static void bias_mean(cudaStream_t st, float *w, size_t W, const TargetLayer *L, int nets) {
    gauge_bias_mean_kernel<<<grid_for((size_t)nets), HT_BLOCK, 0, st>>>(w, W, L->offset, L->filters,
                                                                        L->fan_in, nets);
    LAUNCH_CHECK("gauge_bias_mean_kernel");
}

void k_gauge_forward(cudaStream_t st, const TargetArch *a, int n, const float *raw, float *out,
                     float *scales) {
    const size_t W = a->n_weights;
    const int ns = gauge_n_scales(a);
    if (out != raw)
        CUDA_CHECK(cudaMemcpyAsync(out, raw, (size_t)n * W * sizeof(float), cudaMemcpyDeviceToDevice, st));
    int s_off[HT_MAX_OPS];
    scale_offsets(a, s_off);
    for (int l = 0; l + 1 < a->n_layers; l++) {
        const TargetLayer *L = &a->layers[l];
        dim3 grid((unsigned)L->filters, (unsigned)n);
        gauge_normalize_kernel<<<grid, HT_BLOCK, 0, st>>>(out, W, L->offset, L->fan_in + 1, scales, ns, s_off[l]);
        LAUNCH_CHECK("gauge_normalize_kernel");
        scale_inputs(st, out, W, &a->layers[l + 1], scales, ns, s_off[l], n);
    }
    bias_mean(st, out, W, &a->layers[a->n_layers - 1], n);
}

// Backward of the normalization of layer l (src/gauge.c backward_one): one block per (filter, net).
// u = raw weights with inputs scaled by s_{l-1} (when l > 0); g <- g/den + cu*u with
// dsi = gs[i] - <g,u>/den^2, cu = dsi/(n*si).
__global__ void gauge_norm_bwd_kernel(float *g, const float *raw, size_t W, size_t off, int n, int fan_in,
                                      int c_in, const float *scales, int ns, int soff, int soff_prev,
                                      const double *gs) {
    __shared__ double sh[HT_BLOCK];
    const int i = blockIdx.x, b = blockIdx.y;
    const size_t base = (size_t)b * W + off + (size_t)i * n;
    float *gi = g + base;
    const float *ri = raw + base;
    const float *sp = soff_prev >= 0 ? scales + (size_t)b * ns + soff_prev : NULL;
    double dot = 0.0;
    for (int k = threadIdx.x; k < n; k += HT_BLOCK) {
        const float u = sp && k < fan_in ? ri[k] * sp[k % c_in] : ri[k];
        dot += (double)gi[k] * u;
    }
    dot = block_sum_d(dot, sh);
    const double si = scales[(size_t)b * ns + soff + i], den = si + GAUGE_EPS_DIV;
    const double dsi = gs[(size_t)b * ns + soff + i] - dot / (den * den);
    const double cu = dsi / (n * si);
    for (int k = threadIdx.x; k < n; k += HT_BLOCK) {
        const float u = sp && k < fan_in ? ri[k] * sp[k % c_in] : ri[k];
        gi[k] = (float)(gi[k] / den + cu * u);
    }
}

// d s_{l-1}[ch] = sum over filters f and weights j = ch (mod c) of g[f][j] * raw[f][j]:
// one block per (channel, network).
__global__ void gauge_scale_grad_kernel(const float *g, const float *raw, size_t W, size_t off, int filters,
                                        int fan_in, int c, double *gs, int ns, int soff_prev) {
    __shared__ double sh[HT_BLOCK];
    const int ch = blockIdx.x, b = blockIdx.y;
    const int per = (fan_in - ch + c - 1) / c; // weights j = ch + t*c < fan_in of one filter
    const size_t base = (size_t)b * W + off;
    double acc = 0.0;
    for (int q = threadIdx.x; q < filters * per; q += HT_BLOCK) {
        const int f = q / per, j = ch + (q % per) * c;
        const size_t e = base + (size_t)f * (fan_in + 1) + j;
        acc += (double)g[e] * raw[e];
    }
    acc = block_sum_d(acc, sh);
    if (threadIdx.x == 0) gs[(size_t)b * ns + soff_prev + ch] = acc;
}

void k_gauge_backward(cudaStream_t st, const TargetArch *a, int n, const float *raw, const float *scales,
                      const float *dout, float *draw, double *gs) {
    const size_t W = a->n_weights;
    const int m = a->n_layers, ns = gauge_n_scales(a);
    if (draw != dout)
        CUDA_CHECK(cudaMemcpyAsync(draw, dout, (size_t)n * W * sizeof(float), cudaMemcpyDeviceToDevice, st));
    int s_off[HT_MAX_OPS];
    scale_offsets(a, s_off);
    bias_mean(st, draw, W, &a->layers[m - 1], n); // bias minus its mean -> gradient minus its mean
    for (int l = m - 1; l >= 0; l--) {
        const TargetLayer *L = &a->layers[l];
        if (l + 1 < m) {
            dim3 grid((unsigned)L->filters, (unsigned)n);
            gauge_norm_bwd_kernel<<<grid, HT_BLOCK, 0, st>>>(draw, raw, W, L->offset, L->fan_in + 1, L->fan_in,
                                                             L->in_channels, scales, ns, s_off[l],
                                                             l > 0 ? s_off[l - 1] : -1, gs);
            LAUNCH_CHECK("gauge_norm_bwd_kernel");
        }
        if (l > 0) {
            const TargetLayer *P = &a->layers[l - 1];
            HT_CHECK(L->in_channels == P->filters, "gauge: layer %d reads %d channels but layer %d has %d filters",
                     l + 1, L->in_channels, l, P->filters);
            dim3 grid((unsigned)L->in_channels, (unsigned)n);
            gauge_scale_grad_kernel<<<grid, HT_BLOCK, 0, st>>>(draw, raw, W, L->offset, L->filters, L->fan_in,
                                                               L->in_channels, gs, ns, s_off[l - 1]);
            LAUNCH_CHECK("gauge_scale_grad_kernel");
            scale_inputs(st, draw, W, L, scales, ns, s_off[l - 1], n);
        }
    }
}

// ============================================================================ entropy

// One block per (j, local i): distance in double over D.
__global__ void entropy_dist_kernel(const float *all, int N, size_t D, int start, int l1, double *out) {
    __shared__ double sh[HT_BLOCK];
    const int j = blockIdx.x, il = blockIdx.y, i = start + il;
    if (j == i) { // uniform over the block: no thread reaches the barrier below
        if (threadIdx.x == 0) out[(size_t)il * N + j] = INFINITY;
        return;
    }
    const float *a = all + (size_t)i * D, *b = all + (size_t)j * D;
    double s = 0.0;
    if (l1)
        for (size_t k = threadIdx.x; k < D; k += HT_BLOCK) s += fabs((double)a[k] - (double)b[k]);
    else
        for (size_t k = threadIdx.x; k < D; k += HT_BLOCK) { const double d = (double)a[k] - (double)b[k]; s += d * d; }
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) out[(size_t)il * N + j] = l1 ? s : sqrt(s);
}

void k_entropy_distances(cudaStream_t st, const float *all, int N, size_t D, int start, int n_local,
                         Distance dist, double *out) {
    dim3 grid((unsigned)N, (unsigned)n_local);
    entropy_dist_kernel<<<grid, HT_BLOCK, 0, st>>>(all, N, D, start, dist == DIST_L1, out);
    LAUNCH_CHECK("entropy_dist_kernel");
}

__global__ void entropy_nn_kernel(const double *dist, int N, int start, int n_local, int *nn, float *eps) {
    const int il = blockIdx.x * blockDim.x + threadIdx.x;
    if (il >= n_local) return;
    const int i = start + il;
    double best = INFINITY;
    int arg = -1;
    for (int j = 0; j < N; j++) {
        if (j == i) continue;
        const double d = dist[(size_t)il * N + j];
        if (d < best) { best = d; arg = j; }
    }
    // No neighbour when every distance is NaN (NaN or Inf in the generated weights): nn stays -1,
    // which entropy_grad_kernel skips (it used to read row -1), and eps is +Inf, so the entropy is
    // infinite and the step ends in the CPU's "training diverged" error before any update.
    nn[i] = arg;
    eps[i] = (float)best;
}

void k_entropy_nn(cudaStream_t st, const double *dist, int N, int start, int n_local, int *nn, float *eps) {
    entropy_nn_kernel<<<grid_for((size_t)n_local), HT_BLOCK, 0, st>>>(dist, N, start, n_local, nn, eps);
    LAUNCH_CHECK("entropy_nn_kernel");
}

// One thread per (local sample, element): the terms of every i whose pair involves k, in i order,
// accumulated in float as src/entropy.c does.
// lambda (device, may be NULL): grad[e] is first multiplied by *lambda (k_entropy_grad_lambda).
__global__ void entropy_grad_kernel(const float *all, int N, size_t D, int start, int n_local, int l1, int d,
                                    float scale, const int *nn, const float *eps, const double *lambda,
                                    float *grad) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)n_local * D) return;
    const int kl = (int)(e / D);
    const size_t x = e % D;
    const int k = start + kl;
    const float xk = all[(size_t)k * D + x];
    float g = lambda ? (float)(*lambda * (double)grad[e]) : grad[e];
    for (int i = 0; i < N; i++) {
        if (i != k && nn[i] != k) continue;
        if (i == k && nn[k] < 0) continue; // no neighbour (NaN distances): nothing to read
        const double coef = scale * ((double)d / N) / ((double)eps[i] + ENTROPY_EPS);
        const float xo = i == k ? all[(size_t)nn[k] * D + x] : all[(size_t)i * D + x];
        if (l1) {
            const float df = xk - xo;
            g += (float)(df > 0.0f ? coef : df < 0.0f ? -coef : 0.0);
        } else {
            const double ei = eps[i]; // i == k: eps[k]; else eps[i]: the pair's distance either way
            if (ei <= 0.0) continue;
            const double c = coef / ei;
            g += (float)(c * ((double)xk - (double)xo));
        }
    }
    grad[e] = g;
}

void k_entropy_grad(cudaStream_t st, const float *all, int N, size_t D, int start, int n_local,
                    Distance dist, int d, float scale, const int *nn, const float *eps, float *grad_local) {
    const size_t n = (size_t)n_local * D;
    entropy_grad_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(all, N, D, start, n_local, dist == DIST_L1, d, scale,
                                                          nn, eps, (const double *)NULL, grad_local);
    LAUNCH_CHECK("entropy_grad_kernel");
}

void k_entropy_grad_lambda(cudaStream_t st, const float *all, int N, size_t D, int start, int n_local,
                           Distance dist, int d, float scale, const int *nn, const float *eps,
                           const DevStepParams *par, float *grad_local) {
    const size_t n = (size_t)n_local * D;
    entropy_grad_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(all, N, D, start, n_local, dist == DIST_L1, d, scale,
                                                          nn, eps, &par->lambda, grad_local);
    LAUNCH_CHECK("entropy_grad_kernel");
}

// ============================================================================ target network

__global__ void im2col_kernel(int n_img, int H, int W, int C, int k, const float *in, size_t in_stride,
                              float *col, size_t total) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    const int p = (k - 1) / 2;
    const size_t K = (size_t)k * k * C, rows = (size_t)n_img * H * W;
    const int kk = (int)(e % K);
    const size_t r = (e / K) % rows, b = e / (K * rows);
    const int c = kk % C, kx = (kk / C) % k, ky = kk / (C * k);
    const int img = (int)(r / ((size_t)H * W)), y = (int)((r / W) % H), x = (int)(r % W);
    const int iy = y + ky - p, ix = x + kx - p;
    float v = 0.0f;
    if (iy >= 0 && iy < H && ix >= 0 && ix < W)
        v = in[b * in_stride + (((size_t)img * H + iy) * W + ix) * C + c];
    col[e] = v;
}

void k_im2col(cudaStream_t st, int nb, int n_img, int H, int W, int C, int k, const float *in,
              size_t in_stride, float *col) {
    const size_t total = (size_t)nb * n_img * H * W * k * k * C;
    im2col_kernel<<<grid_for(total), HT_BLOCK, 0, st>>>(n_img, H, W, C, k, in, in_stride, col, total);
    LAUNCH_CHECK("im2col_kernel");
}

// Gather form (no atomics): each input pixel sums the k*k patch entries that read it, ky then kx.
__global__ void col2im_kernel(int n_img, int H, int W, int C, int k, const float *dcol, float *din,
                              size_t total) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    const int p = (k - 1) / 2;
    const size_t K = (size_t)k * k * C, rows = (size_t)n_img * H * W;
    const int c = (int)(e % C);
    const size_t pix = e / C; // (b, img, y, x)
    const int x = (int)(pix % W), y = (int)((pix / W) % H);
    const size_t img_g = pix / ((size_t)H * W); // b * n_img + img
    const size_t b = img_g / n_img, img = img_g % n_img;
    const float *dc = dcol + b * rows * K;
    float s = 0.0f;
    for (int ky = 0; ky < k; ky++) {
        const int oy = y - ky + p;
        if (oy < 0 || oy >= H) continue;
        for (int kx = 0; kx < k; kx++) {
            const int ox = x - kx + p;
            if (ox < 0 || ox >= W) continue;
            s += dc[((img * H + oy) * W + ox) * K + ((size_t)ky * k + kx) * C + c];
        }
    }
    din[e] = s;
}

void k_col2im(cudaStream_t st, int nb, int n_img, int H, int W, int C, int k, const float *dcol, float *din) {
    const size_t total = (size_t)nb * n_img * H * W * C;
    col2im_kernel<<<grid_for(total), HT_BLOCK, 0, st>>>(n_img, H, W, C, k, dcol, din, total);
    LAUNCH_CHECK("col2im_kernel");
}

__global__ void fill_bias_kernel(size_t rows, int F, int K, const float *w, size_t w_stride, float *out,
                                 size_t total) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    const int f = (int)(e % F);
    const size_t b = e / ((size_t)F * rows);
    out[e] = w[b * w_stride + (size_t)f * (K + 1) + K];
}

void k_fill_bias(cudaStream_t st, int nb, size_t rows, int F, int K, const float *w, size_t w_stride,
                 float *out) {
    const size_t total = (size_t)nb * rows * F;
    fill_bias_kernel<<<grid_for(total), HT_BLOCK, 0, st>>>(rows, F, K, w, w_stride, out, total);
    LAUNCH_CHECK("fill_bias_kernel");
}

// One block per (filter, group): column sum of dout in double.
__global__ void bias_grad_kernel(size_t rows, int F, int K, const float *dout, float *dw, size_t w_stride) {
    __shared__ double sh[HT_BLOCK];
    const int f = blockIdx.x, b = blockIdx.y;
    const float *g = dout + (size_t)b * rows * F;
    double s = 0.0;
    for (size_t r = threadIdx.x; r < rows; r += HT_BLOCK) s += g[r * F + f];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) dw[(size_t)b * w_stride + (size_t)f * (K + 1) + K] = (float)s;
}

void k_bias_grad(cudaStream_t st, int nb, size_t rows, int F, int K, const float *dout, float *dw,
                 size_t w_stride) {
    dim3 grid((unsigned)F, (unsigned)nb);
    bias_grad_kernel<<<grid, HT_BLOCK, 0, st>>>(rows, F, K, dout, dw, w_stride);
    LAUNCH_CHECK("bias_grad_kernel");
}

__global__ void relu_fwd_kernel(size_t n, const float *in, float *out) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void k_relu_forward(cudaStream_t st, size_t n, const float *in, float *out) {
    relu_fwd_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(n, in, out);
    LAUNCH_CHECK("relu_fwd_kernel");
}

__global__ void relu_bwd_kernel(size_t n, const float *out, const float *dout, float *din) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

void k_relu_backward(cudaStream_t st, size_t n, const float *out, const float *dout, float *din) {
    relu_bwd_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(n, out, dout, din);
    LAUNCH_CHECK("relu_bwd_kernel");
}

// One thread per output element; TensorFlow SAME padding pad = (out*k - in)/2; the first maximum in
// (y, x) order wins (strict >), its index relative to the network's input block.
__global__ void maxpool_fwd_kernel(int group, int H, int W, int C, int OH, int OW, int k, const float *in,
                                   float *out, int32_t *argmax, size_t total) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    const int c = (int)(e % C), ox = (int)((e / C) % OW), oy = (int)((e / ((size_t)C * OW)) % OH);
    const size_t gi = e / ((size_t)C * OW * OH); // image over all groups
    const int py = (OH * k - H) / 2, px = (OW * k - W) / 2;
    const int y0 = max(oy * k - py, 0), y1 = min(oy * k - py + k, H);
    const int x0 = max(ox * k - px, 0), x1 = min(ox * k - px + k, W);
    const size_t img_in_group = gi % group, group_base = (gi - img_in_group) * H * W * C;
    const int32_t base = (int32_t)(img_in_group * H * W * C);
    int32_t best = base + (int32_t)(((size_t)y0 * W + x0) * C + c);
    const float *ig = in + group_base;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            const int32_t i = base + (int32_t)(((size_t)y * W + x) * C + c);
            if (ig[i] > ig[best]) best = i;
        }
    out[e] = ig[best];
    argmax[e] = best;
}

void k_maxpool_forward(cudaStream_t st, int n_imgs, int group, int H, int W, int C, int OH, int OW, int k,
                       const float *in, float *out, int32_t *argmax) {
    const size_t total = (size_t)n_imgs * OH * OW * C;
    maxpool_fwd_kernel<<<grid_for(total), HT_BLOCK, 0, st>>>(group, H, W, C, OH, OW, k, in, out, argmax, total);
    LAUNCH_CHECK("maxpool_fwd_kernel");
}

// Gather form: windows are disjoint (window = stride), so each input element belongs to exactly
// one output and receives its gradient iff it is that output's argmax.
__global__ void maxpool_bwd_kernel(int group, int H, int W, int C, int OH, int OW, int k, const int32_t *argmax,
                                   const float *dout, float *din, size_t total) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    const int c = (int)(e % C), x = (int)((e / C) % W), y = (int)((e / ((size_t)C * W)) % H);
    const size_t gi = e / ((size_t)C * W * H);
    const int py = (OH * k - H) / 2, px = (OW * k - W) / 2;
    const int oy = (y + py) / k, ox = (x + px) / k;
    const size_t img_in_group = gi % group;
    const int32_t mine = (int32_t)(img_in_group * H * W * C + ((size_t)y * W + x) * C + c);
    const size_t o = ((gi * OH + oy) * OW + ox) * C + c;
    din[e] = argmax[o] == mine ? dout[o] : 0.0f;
}

void k_maxpool_backward(cudaStream_t st, int n_imgs, int group, int H, int W, int C, int OH, int OW, int k,
                        const int32_t *argmax, const float *dout, float *din) {
    const size_t total = (size_t)n_imgs * H * W * C;
    maxpool_bwd_kernel<<<grid_for(total), HT_BLOCK, 0, st>>>(group, H, W, C, OH, OW, k, argmax, dout, din, total);
    LAUNCH_CHECK("maxpool_bwd_kernel");
}

// One thread per (network, image), exactly src/target.c target_softmax_ce's arithmetic.
__global__ void softmax_ce_kernel(int n_nets, int n_img, int classes, const float *logits,
                                  const uint8_t *labels, size_t label_stride, float scale, float *probs,
                                  float *dlogits, double *terms, int *flags) {
    const int q = blockIdx.x * blockDim.x + threadIdx.x;
    if (q >= n_nets * n_img) return;
    const int b = q / n_img, n = q % n_img;
    const float *l = logits + (size_t)q * classes;
    int best = 0;
    for (int c = 1; c < classes; c++)
        if (l[c] > l[best]) best = c;
    const double m = l[best];
    double s = 0.0;
    for (int c = 0; c < classes; c++) s += exp((double)l[c] - m);
    const double lse = m + log(s);
    int y = -1;
    if (labels) {
        y = labels[(size_t)b * label_stride + n];
        // src/ checks the label range on the host side when the batch is loaded
        terms[q] = y < classes ? lse - (double)l[y] : NAN;
        flags[q] = best == y;
    }
    for (int c = 0; c < classes; c++) {
        const double p = exp((double)l[c] - lse);
        if (probs) probs[(size_t)q * classes + c] = (float)p;
        if (dlogits) dlogits[(size_t)q * classes + c] = (float)(scale * (p - (c == y ? 1.0 : 0.0)));
    }
}

void k_softmax_ce(cudaStream_t st, int n_nets, int n_img, int classes, const float *logits,
                  const uint8_t *labels, size_t label_stride, float scale, float *probs, float *dlogits,
                  double *terms, int *flags) {
    softmax_ce_kernel<<<grid_for((size_t)n_nets * n_img), HT_BLOCK, 0, st>>>(
        n_nets, n_img, classes, logits, labels, label_stride, scale, probs, dlogits, terms, flags);
    LAUNCH_CHECK("softmax_ce_kernel");
}

__global__ void net_loss_sum_kernel(int n_nets, int n_img, const double *terms, const int *flags,
                                    double *loss, int *correct) {
    const int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= n_nets) return;
    double t = 0.0;
    int r = 0;
    for (int n = 0; n < n_img; n++) { t += terms[(size_t)b * n_img + n]; r += flags[(size_t)b * n_img + n]; }
    loss[b] = t;
    correct[b] = r;
}

void k_net_loss_sum(cudaStream_t st, int n_nets, int n_img, const double *terms, const int *flags,
                    double *loss, int *correct) {
    net_loss_sum_kernel<<<grid_for((size_t)n_nets), HT_BLOCK, 0, st>>>(n_nets, n_img, terms, flags, loss, correct);
    LAUNCH_CHECK("net_loss_sum_kernel");
}

__global__ void gather_rows_kernel(int n, int in_size, const float *src, const int32_t *idx, float *out) {
    const size_t e = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (size_t)n * in_size) return;
    const size_t i = e / in_size, p = e % in_size;
    out[e] = src[(size_t)idx[i] * in_size + p];
}

void k_gather_rows(cudaStream_t st, int n, int in_size, const float *src, const int32_t *idx, float *out) {
    gather_rows_kernel<<<grid_for((size_t)n * in_size), HT_BLOCK, 0, st>>>(n, in_size, src, idx, out);
    LAUNCH_CHECK("gather_rows_kernel");
}

// ============================================================================ optimizer, reductions

__device__ __forceinline__ void adam_one(float *params, const float *grads, float *m, float *v, size_t i,
                                         float b1, float b2, float e, float a) {
    const float g = grads[i];
    m[i] = b1 * m[i] + (1.0f - b1) * g;
    v[i] = b2 * v[i] + (1.0f - b2) * g * g;
    params[i] -= a * m[i] / (sqrtf(v[i]) + e);
}

__global__ void adam_kernel(float *params, const float *grads, float *m, float *v, size_t n, float b1,
                            float b2, float e, float a) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    adam_one(params, grads, m, v, i, b1, b2, e, a);
}

__global__ void adam_dev_kernel(float *params, const float *grads, float *m, float *v, size_t n, float b1,
                                float b2, float e, const DevStepParams *par, const DevStepRecord *rec) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n || rec->bad_step != 0.0) return; // a non-finite step happened: no update, ever
    adam_one(params, grads, m, v, i, b1, b2, e, (float)par->adam_a);
}

void k_adam_dev(cudaStream_t st, float *params, const float *grads, float *m, float *v, size_t n, double beta1,
                double beta2, double eps, const DevStepParams *par, const DevStepRecord *rec) {
    adam_dev_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(params, grads, m, v, n, (float)beta1, (float)beta2,
                                                      (float)eps, par, rec);
    LAUNCH_CHECK("adam_dev_kernel");
}

__global__ void step_finalize_kernel(const double *red, const float *eps, int N, int d, double digamma_N,
                                     double count, const DevStepParams *par, DevStepRecord *rec) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double sum_log = 0.0;
    for (int i = 0; i < N; i++) sum_log += log((double)eps[i] + ENTROPY_EPS);
    DevStepStats s;
    s.entropy = digamma_N + (double)d / N * sum_log;
    s.ce = red[0] / count;
    s.acc = red[1] / count;
    s.lr = par->lr;
    s.lambda = par->lambda;
    s.loss = s.lambda * s.ce - s.entropy;
    s.grad_norm = sqrt(red[2]);
    s.step = par->step;
    rec->last = s;
    const int finite = isfinite(s.loss) && isfinite(s.ce) && isfinite(s.entropy) && isfinite(s.grad_norm);
    if (!finite && rec->bad_step == 0.0) {
        rec->bad = s;
        rec->bad_step = s.step;
    }
}

void k_step_finalize(cudaStream_t st, const double *red, const float *eps, int N, int d, double digamma_N,
                     double count, const DevStepParams *par, DevStepRecord *rec) {
    step_finalize_kernel<<<1, 32, 0, st>>>(red, eps, N, d, digamma_N, count, par, rec);
    LAUNCH_CHECK("step_finalize_kernel");
}

// One thread per image: the ensemble's votes and probability sums, networks in order.
__global__ void val_ensemble_kernel(int g, int n, int C, const float *probs, float *votes, float *psum) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    for (int k = 0; k < g; k++) {
        const float *p = probs + ((size_t)k * n + i) * C;
        int arg = 0;
        for (int c = 1; c < C; c++) if (p[c] > p[arg]) arg = c;
        votes[(size_t)i * C + arg] += 1.0f;
        for (int c = 0; c < C; c++) psum[(size_t)i * C + c] += p[c];
    }
}

// One thread per network: its correct count and NLL over the n images, in image order.
__global__ void val_network_kernel(int g, int n, int C, const float *probs, const uint8_t *labels, int *correct,
                                   double *nll) {
    const int k = blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= g) return;
    int hits = 0;
    double s = 0.0;
    for (int i = 0; i < n; i++) {
        const float *p = probs + ((size_t)k * n + i) * C;
        int arg = 0;
        for (int c = 1; c < C; c++) if (p[c] > p[arg]) arg = c;
        const int y = labels[i];
        hits += arg == y;
        s -= log((double)p[y] + 1e-30);
    }
    correct[k] += hits;
    nll[k] += s;
}

void k_val_accumulate(cudaStream_t st, int g, int n, int classes, const float *probs, const uint8_t *labels,
                      float *votes, float *psum, int *correct, double *nll) {
    val_ensemble_kernel<<<grid_for((size_t)n), HT_BLOCK, 0, st>>>(g, n, classes, probs, votes, psum);
    LAUNCH_CHECK("val_ensemble_kernel");
    val_network_kernel<<<grid_for((size_t)g), HT_BLOCK, 0, st>>>(g, n, classes, probs, labels, correct, nll);
    LAUNCH_CHECK("val_network_kernel");
}

double k_adam_step_size(double lr, double beta1, double beta2, int64_t t) {
    // The step size in double on the host, exactly as src/adam.c.
    return lr * sqrt(1.0 - pow(beta2, (double)t)) / (1.0 - pow(beta1, (double)t));
}

void k_adam(cudaStream_t st, float *params, const float *grads, float *m, float *v, size_t n, double lr,
            double beta1, double beta2, double eps, int64_t t) {
    const double lr_t = k_adam_step_size(lr, beta1, beta2, t);
    adam_kernel<<<grid_for(n), HT_BLOCK, 0, st>>>(params, grads, m, v, n, (float)beta1, (float)beta2,
                                                  (float)eps, (float)lr_t);
    LAUNCH_CHECK("adam_kernel");
}

__global__ void sumsq_partial_kernel(const float *g, size_t n, double *partial) {
    __shared__ double sh[HT_BLOCK];
    double s = 0.0;
    for (size_t i = (size_t)blockIdx.x * HT_BLOCK + threadIdx.x; i < n; i += (size_t)HT_SUMSQ_BLOCKS * HT_BLOCK)
        s += (double)g[i] * g[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void sum_partial_kernel(const double *partial, int n, double *out) {
    __shared__ double sh[HT_BLOCK];
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += HT_BLOCK) s += partial[i];
    s = block_sum_d(s, sh);
    if (threadIdx.x == 0) out[0] = s;
}

void k_sumsq(cudaStream_t st, const float *g, size_t n, double *partial, double *out) {
    sumsq_partial_kernel<<<HT_SUMSQ_BLOCKS, HT_BLOCK, 0, st>>>(g, n, partial);
    LAUNCH_CHECK("sumsq_partial_kernel");
    sum_partial_kernel<<<1, HT_BLOCK, 0, st>>>(partial, HT_SUMSQ_BLOCKS, out);
    LAUNCH_CHECK("sum_partial_kernel");
}

__global__ void sum_loss_kernel(int n, const double *v, const int *iv, double *out) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double a = 0.0, b = 0.0;
    for (int i = 0; i < n; i++) { a += v[i]; b += iv[i]; }
    out[0] = a;
    out[1] = b;
}

void k_sum_loss(cudaStream_t st, int n, const double *v, const int *iv, double *out) {
    sum_loss_kernel<<<1, 32, 0, st>>>(n, v, iv, out);
    LAUNCH_CHECK("sum_loss_kernel");
}
