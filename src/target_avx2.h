// target_avx2.h: the fast path of the target network (AVX2 + FMA kernels, chosen at run time),
// internal to target.c. It computes exactly what the reference path in target.c computes (same
// inputs, outputs and workspace contract), in a different float32 summation order.
//
// The driver (plan, packing, routed lists, pools, the fc tail) is shared by the AVX2 and the
// AVX-512 implementation (src/target_avx512.c): only the FMA kernels differ, and they reach the
// driver through a TargetSimdKernels table.
#ifndef HT_TARGET_AVX2_H
#define HT_TARGET_AVX2_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"

// One image's routed gradients of a sparse block (route_img in target_avx2.c), in the workspace,
// in lists of fixed capacity:
//   by filter: filter f's entries are e < fcnt[f] of (pix[f * OHW + e], g[...]): the window
//     offset of the argmax pixel in the padded input and the gradient, in pooled-output order;
//   by pixel (blocks with an input gradient, qw != NULL): conv output pixel q's entries are
//     e < qcnt[q] of (qw[q * F + e], qg[...]): the filter's offset f * (K+1) in theta and the
//     gradient, filters ascending.
typedef struct TargetRoute {
    int32_t *pix, *fcnt, *qw, *qcnt;
    float *g, *qg;
} TargetRoute;

// One 2x2 pool window of route_img: F filters (F % 8 == 0), conv output W x C (padded width Wp),
// relu mask, theta stride K+1 per filter, OHW pooled pixels; (y0, x0) the window's first pixel;
// go, vo, ao: its F gradients, block outputs and argmax indices; db += the kept gradients.
typedef struct TargetRouteWin {
    int F, W, C, Wp, OHW, relu, y0, x0;
    int32_t qstride;
    const float *go, *vo;
    const int32_t *ao;
    float *db;
} TargetRouteWin;

// The FMA kernels of one vector width. Packed weights (wp) hold column blocks of 16 filters (the
// last one 8 wide when the width is 8 mod 16), each K rows of stride 16, block col0 at wp + col0*K;
// iota16[t] = 16 t. Every kernel sums each output element over its steps in ascending order with
// one FMA per step and then applies its epilogue, so the AVX2 and AVX-512 kernels give the same
// bits (tests/test_target.c checks it).
typedef struct {
    const char *name;
    // out (H x W x F; pixel (y, x) at out + y*ors + x*F) = [relu](bias + conv SAME) of the padded
    // input in ((H+k-1) x Wp x C), K = k*k*C steps with window offsets win (bias may be NULL).
    void (*conv)(int H, int W, int C, int F, int K, int Wp, const float *in, const int32_t *win,
                 const int32_t *iota16, const float *wp, const float *bias, int relu, float *out,
                 ptrdiff_t ors);
    // conv + bias + [relu] + 2x2 max pool (H, W even): pooled output (pixel (oy, ox) at
    // out + oy*ors + ox*F) and, if am is not NULL, the argmax (y*W + x)*F + c (first maximum).
    void (*conv_pool)(int H, int W, int C, int F, int K, int Wp, const float *in, const int32_t *win,
                      const int32_t *iota16, const float *wp, const float *bias, int relu, float *out,
                      ptrdiff_t ors, int32_t *am);
    // dwt (K x F, rows (ky, kx, c)) (+)= im2col(in)^T . dOut over one image (add = 0: stores).
    void (*conv_dw)(int H, int W, int C, int F, int k, int Wp, const float *in, const int32_t *pin,
                    const float *dout, const int32_t *pdo, float *dwt, int add);
    // dst[0..len) += sum over e < n of g[e] * a[pix[e] + 0..len) (len a multiple of 8, <= seg).
    void (*gather)(const float *a, const int32_t *pix, const float *g, int n, float *dst, int len);
    int seg; // longest len of one gather call
    // Optional (NULL where there is none): the routed input gradient of one padded row, for the
    // shape C == dx_C, k*C == dx_kC only. For x = 0..W-1 in order, where qcnt[x] > 0:
    // drow[x*C ..+ k*C) += sum over e < qcnt[x] of qg[x*F + e] * wky[qw[x*F + e] ..+ k*C), the
    // sum in registers in e order, then one add per element: what gather does for each pixel,
    // with the row kept in registers across the pixels (each element is loaded and stored once
    // per row instead of once per pixel that touches it). init = 1: the row is taken as zeros
    // (not read), as if zeroed before; the whole row ((W + k - 1) * C floats) is written.
    void (*dx_row)(float *drow, const float *wky, const int32_t *qcnt, const int32_t *qw, const float *qg,
                   int F, int W, int init);
    int dx_C, dx_kC;
    // Optional (NULL: the driver's inline AVX2 code): the relu/pool backward of one 2x2 pool
    // window (dout_img's common case). g, v, ai: the window's F gradients, block outputs (relu:
    // kept where v > 0) and argmax indices; first = (y0*W + x0)*F, the index of the window's
    // first element; dst: dOut at pixel (y0, x0), rows Wd*F floats apart. Writes the 4 pixels
    // (g at the argmax, +0 elsewhere) and adds the kept g to db[0..F).
    void (*dout_win)(int F, int W, int Wd, int relu, const float *g, const float *v, const int32_t *ai,
                     int32_t first, float *dst, float *db);
    // Optional (NULL: the driver's inline AVX2 code): route_img's 2x2 window case, one pooled
    // pixel's F filters appended to the routed lists r (see TargetRoute), o = its pooled index.
    void (*route_win)(const struct TargetRoute *r, const struct TargetRouteWin *w);
} TargetSimdKernels;

// 1 if this build has the kernels (x86-64, GCC or Clang) and the running CPU has AVX2 and FMA.
int target_avx2_cpu_ok(void);
// The AVX2 kernels (NULL where the build has none).
const TargetSimdKernels *target_avx2_kernels(void);
// 1 if the architecture fits the fast path: zero or more blocks conv [relu] [maxpool] with
// filters a multiple of 8, then fc [relu] ... fc. Otherwise 0 and *why says what does not fit.
int target_avx2_arch_ok(const TargetArch *a, const char **why);
// Floats of one thread's workspace for up to max_images images per network.
size_t target_avx2_ws_floats(const TargetArch *a, int max_images);
// One network on n <= max_images images with the kernels kern: forward, softmax cross-entropy,
// and the backward pass if dtheta is not NULL. Arguments as for target.c's run_net (probs, loss,
// correct, dtheta optional; labels required for loss, correct and dtheta). routed = 1: the
// backward of conv blocks with a max pool (and C a multiple of 8) takes only the routed (nonzero)
// gradients; 0: dense GEMMs over the whole dOut.
void target_avx2_net(const TargetSimdKernels *kern, const TargetArch *a, int max_images, int routed,
                     float *ws, const float *theta, int n, const float *images, const uint8_t *labels,
                     float scale, float *probs, double *loss, int *correct, float *dtheta);

// Per-kernel timing for bench_target: runs each conv kernel of the paper-like architecture a on
// one image, in cache, reps times (best of), and fills up to max entries (name, FLOP per call,
// seconds per call). Returns the number of entries. ws: target_avx2_ws_floats(a, 1) floats.
typedef struct {
    char name[48];
    double flop, sec;
} TargetKernelTime;
int target_simd_kernel_times(const TargetSimdKernels *kern, const TargetArch *a, float *ws, int reps,
                             TargetKernelTime *out, int max);

#endif
