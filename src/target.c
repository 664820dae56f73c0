// target.c: CPU reference of the target network, many generated networks per call, each on its
// own images. One OpenMP thread runs one whole network (forward and backward) in its own
// workspace, and its BLAS calls run single-threaded, so a network's result does not depend on
// the number of threads or on the other networks of the call.
//
// Per network, with n images (NHWC each), P = n*H*W output pixels:
//   conv (SAME, stride 1, odd kernel k, pad (k-1)/2), K = k*k*cin ordered (kh, kw, cin):
//     forward   out (P, F) = bias + im2col(in) (P, K) . W^T     W: (F, K) read in place, ld K+1
//     backward  dW (F, K) = dOut^T . im2col(in),  dbias = column sums of dOut
//               dIn = conv SAME of dOut with the flipped kernel Wf (cin, k*k*F),
//               Wf[c][(ky, kx, f)] = W[f][(k-1-ky, k-1-kx, c)]  (no col2im, and a GEMM with
//               inner dimension k*k*F instead of F)
//     The pixels are processed in chunks of rows so that the im2col block stays in cache
//     (HT_CONV_CHUNK_FLOATS); the blocks depend on the layer and n_img only, never on the number
//     of networks or threads.
//   fc: the same with the input (n, K) (NHWC flattening) in place of im2col.
//   relu: in place on the previous op's output (the backward pass only needs the mask out > 0).
//   maxpool (SAME, window = stride = k, TensorFlow padding): windows start at o*k - pad_top with
//     pad_top = (out*k - in)/2, clipped to the input; the forward pass stores the argmax (first
//     maximum in (h, w) order) and the backward pass scatters dOut to it.
//   softmax cross-entropy: max-subtracted, log-sum-exp and the loss in double.
// dtheta is scale * dLoss/dtheta: the scale is folded into dLogits, and every weight and bias of
// dtheta is overwritten by its layer's backward pass.
#include "target.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "target_avx2.h"
#include "target_avx512.h"
#include "target_bf16.h"

// Target size (floats) of one im2col block: 512 KiB, about one core's L2. Measured on the paper
// network (2-core Zen 3): 128K-1M floats all run the conv layers about 2x faster than one block for
// all images (which streams a 20 MB im2col matrix through memory).
#ifndef HT_CONV_CHUNK_FLOATS
#define HT_CONV_CHUNK_FLOATS (128 * 1024)
#endif

// 4-wide float vectors (GCC/Clang vector extension, one SSE2 register on any x86-64) for the
// elementwise loops, so that they run branch-free.
typedef float vf4 __attribute__((vector_size(16)));
typedef int32_t vi4 __attribute__((vector_size(16)));
static inline vf4 vf4_load(const float *p) { vf4 v; memcpy(&v, p, sizeof(v)); return v; }
static inline void vf4_store(float *p, vf4 v) { memcpy(p, &v, sizeof(v)); }
static inline void vi4_store(int32_t *p, vi4 v) { memcpy(p, &v, sizeof(v)); }

// ---- sizes ----

static size_t op_in_size(const TargetOp *op) { return (size_t)op->in_h * op->in_w * op->in_c; }
static size_t op_out_size(const TargetOp *op) { return (size_t)op->out_h * op->out_w * op->out_c; }
static int op_fan_in(const TargetOp *op) {
    return op->type == OP_CONV ? op->kernel * op->kernel * op->in_c : (int)op_in_size(op);
}
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

// Rows (output pixels) per im2col block for inner dimension K, over `rows` rows in total.
static int chunk_rows(int K, size_t rows) {
    size_t r = HT_CONV_CHUNK_FLOATS / (size_t)K;
    if (r < 16) r = 16;
    return (int)(r < rows ? r : rows);
}

size_t target_conv_scratch_floats(const TargetOp *op, int n_img) {
    const size_t rows = (size_t)n_img * op->out_h * op->out_w;
    const int kk = op->kernel * op->kernel, Kf = kk * op->in_c, Kb = kk * op->out_c;
    const size_t col_f = (size_t)chunk_rows(Kf, rows) * Kf, col_b = (size_t)chunk_rows(Kb, rows) * Kb;
    return round16(col_f > col_b ? col_f : col_b) + (size_t)op->in_c * Kb;
}

// ---- conv ----

// Short copies and fills inline (conv1 of MNIST has 5-float runs), long ones through libc.
static inline void copy_floats(float *dst, const float *src, size_t n) {
    if (n > 32) { memcpy(dst, src, n * sizeof(float)); return; }
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vf4_store(dst + i, vf4_load(src + i));
    for (; i < n; i++) dst[i] = src[i];
}
static inline void zero_floats(float *dst, size_t n) {
    if (n > 32) { memset(dst, 0, n * sizeof(float)); return; }
    const vf4 zero = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vf4_store(dst + i, zero);
    for (; i < n; i++) dst[i] = 0.0f;
}

// col (nrows, k*k*C): rows [row0, row0+nrows) of the im2col matrix of in (images of H x W x C);
// row (img, y, x) holds the k x k x C patch centred on (y, x), zeros outside the image.
static void im2col_rows(int H, int W, int C, int k, const float *in, size_t row0, int nrows,
                        float *col) {
    const int p = (k - 1) / 2;
    const size_t K = (size_t)k * k * C, img_size = (size_t)H * W * C, kC = (size_t)k * C;
    size_t n = row0 / ((size_t)H * W);
    int y = (int)(row0 / (size_t)W % (size_t)H), x = (int)(row0 % (size_t)W);
    for (int r = 0; r < nrows; r++, x++) {
        if (x == W) { x = 0; if (++y == H) { y = 0; n++; } }
        const float *im = in + n * img_size;
        float *row = col + (size_t)r * K;
        // valid kx range: 0 <= x + kx - p < W
        const int kx0 = x - p < 0 ? p - x : 0, kx1 = x + k - p > W ? W - x + p : k;
        for (int ky = 0; ky < k; ky++) {
            float *dst = row + (size_t)ky * kC;
            const int iy = y + ky - p;
            if (iy < 0 || iy >= H) { zero_floats(dst, kC); continue; }
            zero_floats(dst, (size_t)kx0 * C);
            copy_floats(dst + (size_t)kx0 * C, im + ((size_t)iy * W + (x + kx0 - p)) * C,
                        (size_t)(kx1 - kx0) * C);
            zero_floats(dst + (size_t)kx1 * C, (size_t)(k - kx1) * C);
        }
    }
}

// out (n_img*H*W, F) = [bias +] conv SAME of in (n_img, H, W, C) with w (F, k*k*C), row stride ldw.
static void conv_same(int n_img, int H, int W, int C, int k, int F, const float *in, const float *w,
                      int ldw, const float *bias, int bias_stride, float *col, float *out) {
    const int K = k * k * C;
    const size_t rows = (size_t)n_img * H * W;
    const int cr = chunk_rows(K, rows);
    for (size_t r0 = 0; r0 < rows; r0 += (size_t)cr) {
        const int nr = (int)(rows - r0 < (size_t)cr ? rows - r0 : (size_t)cr);
        float *o = out + r0 * F;
        if (bias)
            for (int r = 0; r < nr; r++)
                for (int f = 0; f < F; f++) o[(size_t)r * F + f] = bias[(size_t)f * bias_stride];
        im2col_rows(H, W, C, k, in, r0, nr, col);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, F, K, 1.0f, col, K, w, ldw,
                    bias ? 1.0f : 0.0f, o, F);
    }
}

// Adds the column sums of g (rows, F) to dbias[f * stride].
static void add_colsums(size_t rows, int F, const float *g, float *dbias, int stride) {
    for (size_t r = 0; r < rows; r++)
        for (int f = 0; f < F; f++) dbias[(size_t)f * stride] += g[r * F + f];
}

void target_conv_forward(const TargetOp *op, int n_img, const float *in, const float *w,
                         float *scratch, float *out) {
    const int K = op_fan_in(op);
    conv_same(n_img, op->in_h, op->in_w, op->in_c, op->kernel, op->out_c, in, w, K + 1, w + K, K + 1,
              scratch, out);
}

void target_conv_backward(const TargetOp *op, int n_img, const float *in, const float *w,
                          const float *dout, float *scratch, float *dw, float *din) {
    const int H = op->in_h, W = op->in_w, C = op->in_c, k = op->kernel, F = op->out_c;
    const int K = op_fan_in(op), Kb = k * k * F;
    const size_t rows = (size_t)n_img * H * W;
    float *col = scratch;
    // dW = dOut^T . im2col(in), accumulated over blocks of rows; dbias = column sums
    const int cr = chunk_rows(K, rows);
    for (int f = 0; f < F; f++) dw[(size_t)f * (K + 1) + K] = 0.0f;
    for (size_t r0 = 0; r0 < rows; r0 += (size_t)cr) {
        const int nr = (int)(rows - r0 < (size_t)cr ? rows - r0 : (size_t)cr);
        im2col_rows(H, W, C, k, in, r0, nr, col);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, K, nr, 1.0f, dout + r0 * F, F, col, K,
                    r0 ? 1.0f : 0.0f, dw, K + 1);
        add_colsums((size_t)nr, F, dout + r0 * F, dw + K, K + 1);
    }
    if (!din) return;
    // dIn = conv SAME of dOut (F channels) with the flipped, transposed kernel (C, k*k*F)
    float *wf = scratch + target_conv_scratch_floats(op, n_img) - (size_t)C * Kb;
    for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++)
            for (int f = 0; f < F; f++) {
                const float *src = w + (size_t)f * (K + 1) + ((size_t)(k - 1 - ky) * k + (k - 1 - kx)) * C;
                for (int c = 0; c < C; c++) wf[(size_t)c * Kb + ((size_t)ky * k + kx) * F + f] = src[c];
            }
    conv_same(n_img, H, W, F, k, C, dout, wf, Kb, NULL, 0, col, din);
}

// ---- fc ----

void target_fc_forward(const TargetOp *op, int n_img, const float *in, const float *w, float *out) {
    const int K = op_fan_in(op), F = op->out_c;
    for (int r = 0; r < n_img; r++)
        for (int f = 0; f < F; f++) out[(size_t)r * F + f] = w[(size_t)f * (K + 1) + K];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_img, F, K, 1.0f, in, K, w, K + 1, 1.0f,
                out, F);
}

void target_fc_backward(const TargetOp *op, int n_img, const float *in, const float *w,
                        const float *dout, float *dw, float *din) {
    const int K = op_fan_in(op), F = op->out_c;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, K, n_img, 1.0f, dout, F, in, K, 0.0f, dw,
                K + 1);
    for (int f = 0; f < F; f++) dw[(size_t)f * (K + 1) + K] = 0.0f;
    add_colsums((size_t)n_img, F, dout, dw + K, K + 1);
    if (din)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n_img, K, F, 1.0f, dout, F, w, K + 1,
                    0.0f, din, K);
}

// ---- relu ----

void target_relu_forward(size_t n, const float *in, float *out) {
    const vf4 zero = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vf4 v = vf4_load(in + i);
        vf4_store(out + i, (vf4)((vi4)v & (v > zero)));
    }
    for (; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void target_relu_backward(size_t n, const float *out, const float *dout, float *din) {
    const vf4 zero = {0};
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        vf4 g = vf4_load(dout + i);
        vf4_store(din + i, (vf4)((vi4)g & (vf4_load(out + i) > zero)));
    }
    for (; i < n; i++) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

// ---- maxpool ----

static int pool_pad(int in, int out, int k) { return (out * k - in) / 2; }

void target_maxpool_forward(const TargetOp *op, int n_img, const float *in, float *out,
                            int32_t *argmax) {
    const int H = op->in_h, W = op->in_w, C = op->in_c, OH = op->out_h, OW = op->out_w, k = op->kernel;
    const int py = pool_pad(H, OH, k), px = pool_pad(W, OW, k);
    const vi4 lane = {0, 1, 2, 3};
    for (int n = 0; n < n_img; n++) {
        const size_t base = (size_t)n * H * W * C;
        float *om = out + (size_t)n * OH * OW * C;
        int32_t *am = argmax + (size_t)n * OH * OW * C;
        for (int oy = 0; oy < OH; oy++) {
            const int y0 = oy * k - py < 0 ? 0 : oy * k - py;
            const int y1 = oy * k - py + k > H ? H : oy * k - py + k;
            for (int ox = 0; ox < OW; ox++) {
                const int x0 = ox * k - px < 0 ? 0 : ox * k - px;
                const int x1 = ox * k - px + k > W ? W : ox * k - px + k;
                float *o = om + ((size_t)oy * OW + ox) * C;
                int32_t *a = am + ((size_t)oy * OW + ox) * C;
                const int32_t first = (int32_t)(base + ((size_t)y0 * W + x0) * C);
                int c = 0;
                for (; c + 4 <= C; c += 4) { // strict > keeps the first maximum
                    vf4 best = vf4_load(in + first + c);
                    vi4 bi = first + c + lane;
                    for (int y = y0; y < y1; y++)
                        for (int x = x0; x < x1; x++) {
                            const int32_t i = (int32_t)(base + ((size_t)y * W + x) * C) + c;
                            const vf4 v = vf4_load(in + i);
                            const vi4 m = v > best;
                            best = (vf4)(((vi4)v & m) | ((vi4)best & ~m));
                            bi = ((i + lane) & m) | (bi & ~m);
                        }
                    vf4_store(o + c, best);
                    vi4_store(a + c, bi);
                }
                for (; c < C; c++) {
                    int32_t best = first + c;
                    for (int y = y0; y < y1; y++)
                        for (int x = x0; x < x1; x++) {
                            const int32_t i = (int32_t)(base + ((size_t)y * W + x) * C) + c;
                            if (in[i] > in[best]) best = i;
                        }
                    o[c] = in[best];
                    a[c] = best;
                }
            }
        }
    }
}

void target_maxpool_backward(const TargetOp *op, int n_img, const int32_t *argmax, const float *dout,
                             float *din) {
    const size_t nin = (size_t)n_img * op_in_size(op), nout = (size_t)n_img * op_out_size(op);
    memset(din, 0, nin * sizeof(float));
    for (size_t i = 0; i < nout; i++) din[argmax[i]] += dout[i];
}

// ---- softmax cross-entropy ----

void target_softmax_ce(int n_img, int classes, const float *logits, const uint8_t *labels,
                       float scale, float *probs, float *dlogits, double *loss, int *correct) {
    double total = 0.0;
    int right = 0;
    for (int n = 0; n < n_img; n++) {
        const float *l = logits + (size_t)n * classes;
        int best = 0;
        for (int c = 1; c < classes; c++)
            if (l[c] > l[best]) best = c;
        const double m = l[best];
        double s = 0.0;
        for (int c = 0; c < classes; c++) s += exp((double)l[c] - m);
        const double lse = m + log(s);
        if (labels) {
            HT_CHECK(labels[n] < classes, "label %d out of range [0, %d)", labels[n], classes);
            total += lse - (double)l[labels[n]];
            right += best == labels[n];
        }
        for (int c = 0; c < classes; c++) {
            const double p = exp((double)l[c] - lse);
            if (probs) probs[(size_t)n * classes + c] = (float)p;
            if (dlogits)
                dlogits[(size_t)n * classes + c] =
                    (float)(scale * (p - (labels && c == labels[n] ? 1.0 : 0.0)));
        }
    }
    if (loss) *loss = total;
    if (correct) *correct = right;
}

// ---- whole network ----

// Workspace of one thread (offsets in floats, each 16-float aligned).
typedef struct {
    size_t act[HT_MAX_OPS];    // output of op i (relu after op 0: the previous op's buffer)
    size_t argmax[HT_MAX_OPS]; // maxpool ops: int32 argmax per output (region used only as int32)
    size_t scratch;            // conv scratch (im2col block + flipped kernel)
    size_t grad[2];            // ping-pong gradient buffers
    size_t total;
} WsLayout;

static void ws_layout(const TargetArch *a, int n, WsLayout *L) {
    size_t off = 0, scratch = 0;
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        L->argmax[i] = 0;
        if (op->type == OP_RELU && i > 0) { L->act[i] = L->act[i - 1]; continue; }
        L->act[i] = off;
        off += round16((size_t)n * op_out_size(op));
        if (op->type == OP_MAXPOOL) {
            L->argmax[i] = off;
            off += round16((size_t)n * op_out_size(op));
        }
        if (op->type == OP_CONV) {
            size_t s = target_conv_scratch_floats(op, n);
            if (s > scratch) scratch = s;
        }
    }
    L->scratch = off;
    off += round16(scratch);
    const size_t g = (size_t)n * (a->max_act > (size_t)a->classes ? a->max_act : (size_t)a->classes);
    for (int i = 0; i < 2; i++) {
        L->grad[i] = off;
        off += round16(g);
    }
    L->total = off;
}

// Floats of one thread's workspace for impl.
static size_t impl_ws_floats(const TargetArch *arch, int max_images, TargetImpl impl) {
    if (impl != TARGET_IMPL_REFERENCE) return target_avx2_ws_floats(arch, max_images);
    WsLayout L;
    ws_layout(arch, max_images, &L);
    return L.total;
}

void target_init(TargetNet *t, const TargetArch *arch, int max_images, int n_threads) {
    HT_CHECK(max_images >= 1, "target_init: max_images must be >= 1 (got %d)", max_images);
    HT_CHECK(arch->n_ops >= 1 && arch->ops[arch->n_ops - 1].type == OP_FC,
             "target_init: the target network must end with an fc layer");
    HT_CHECK((double)max_images * (double)arch->max_act < (double)INT32_MAX,
             "target_init: %d images of %zu floats overflow the pool index", max_images, arch->max_act);
    for (int i = 0; i < arch->n_ops; i++) {
        const TargetOp *op = &arch->ops[i];
        HT_CHECK(op->type != OP_CONV || (op->kernel >= 1 && op->kernel % 2 == 1),
                 "target_init: conv op %d has kernel %d (must be odd)", i, op->kernel);
        HT_CHECK(op->type != OP_MAXPOOL || op->kernel >= 1,
                 "target_init: maxpool op %d has window %d", i, op->kernel);
    }
    memset(t, 0, sizeof(*t));
    t->arch = arch;
    t->max_images = max_images;
    t->n_threads = n_threads > 0 ? n_threads : omp_get_max_threads();
    t->impl = target_impl_available(arch, TARGET_IMPL_AVX512) ? TARGET_IMPL_AVX512
              : target_impl_available(arch, TARGET_IMPL_AVX2)   ? TARGET_IMPL_AVX2
                                                                : TARGET_IMPL_REFERENCE;
    const char *env = getenv("HT_TARGET_IMPL");
    if (env && *env) {
        TargetImpl want;
        HT_CHECK(target_impl_parse(env, &want), "HT_TARGET_IMPL must be 'reference', 'avx2', 'avx2-dense', "
                 "'avx512' or 'avx512-dense' (got '%s')", env);
        HT_CHECK(target_impl_available(arch, want),
                 "HT_TARGET_IMPL=%s but this CPU or target architecture does not support it", env);
        t->impl = want;
    }
    t->ws_floats = impl_ws_floats(arch, max_images, t->impl);
    const char *penv = getenv("HT_EVAL_PRECISION");
    if (penv && *penv) {
        const char *why = NULL;
        HT_CHECK(target_precision_parse(penv, &t->eval), "HT_EVAL_PRECISION must be 'fp32' or 'bf16' (got '%s')", penv);
        HT_CHECK(target_precision_available(arch, t->eval, &why), "HT_EVAL_PRECISION=%s but %s", penv, why);
        if (t->eval == TARGET_EVAL_BF16) {
            const size_t need = target_bf16_ws_floats(arch, max_images);
            if (need > t->ws_floats) t->ws_floats = need;
        }
    }
    const size_t ws = XMUL(t->ws_floats, t->n_threads, "target network workspace: %d threads x %zu floats",
                           t->n_threads, t->ws_floats);
    HT_CHECK_MEMORY(XMUL(ws, sizeof(float), "target network workspace"), "the target network's workspace "
                    "(%d threads x %d images, %zu floats each)", t->n_threads, max_images, t->ws_floats);
    t->ws = XALLOC_FLOATS(ws);
}

// The kernels of a fast implementation (NULL for the reference).
static const TargetSimdKernels *impl_kernels(TargetImpl impl) {
    switch (impl) {
    case TARGET_IMPL_AVX2: case TARGET_IMPL_AVX2_DENSE: return target_avx2_kernels();
    case TARGET_IMPL_AVX512: case TARGET_IMPL_AVX512_DENSE: return target_avx512_kernels();
    default: return NULL;
    }
}

int target_impl_available(const TargetArch *arch, TargetImpl impl) {
    switch (impl) {
    case TARGET_IMPL_REFERENCE: return 1;
    case TARGET_IMPL_AVX2: case TARGET_IMPL_AVX2_DENSE:
        return target_avx2_cpu_ok() && target_avx2_arch_ok(arch, NULL);
    case TARGET_IMPL_AVX512: case TARGET_IMPL_AVX512_DENSE:
        return target_avx2_cpu_ok() && target_avx512_cpu_ok() && target_avx2_arch_ok(arch, NULL);
    default: return 0;
    }
}

int target_set_impl(TargetNet *t, TargetImpl impl) {
    if (!target_impl_available(t->arch, impl)) return 0;
    const size_t need = impl_ws_floats(t->arch, t->max_images, impl);
    if (need > t->ws_floats) { // the reference needs more (the AVX2 path keeps less per image)
        free(t->ws);
        t->ws_floats = need;
        t->ws = XALLOC_FLOATS(XMUL(t->ws_floats, t->n_threads, "target network workspace"));
    }
    t->impl = impl;
    return 1;
}

int target_precision_available(const TargetArch *arch, TargetPrecision p, const char **why) {
    const char *w = NULL;
    if (p == TARGET_EVAL_BF16) {
        if (!target_bf16_cpu_ok()) w = "this CPU has no AVX512_BF16 (bf16 dot products)";
        else target_bf16_arch_ok(arch, &w);
    } else if (p != TARGET_EVAL_FP32)
        w = "it is no evaluation precision";
    if (why) *why = w;
    return w == NULL;
}

int target_set_eval_precision(TargetNet *t, TargetPrecision p) {
    if (!target_precision_available(t->arch, p, NULL)) return 0;
    if (p == TARGET_EVAL_BF16) {
        const size_t need = target_bf16_ws_floats(t->arch, t->max_images);
        if (need > t->ws_floats) {
            free(t->ws);
            t->ws_floats = need;
            t->ws = XALLOC_FLOATS(XMUL(t->ws_floats, t->n_threads, "target network workspace"));
        }
    }
    t->eval = p;
    return 1;
}

void target_apply_eval_precision(TargetNet *t, TargetPrecision p, const char *source) {
    const char *env = getenv("HT_EVAL_PRECISION");
    if (env && *env) return; // target_init applied it
    const char *why = NULL;
    HT_CHECK(target_precision_available(t->arch, p, &why), "%s: %s evaluation was asked for, but %s",
             source, target_precision_name(p), why);
    HT_CHECK(target_set_eval_precision(t, p), "%s: cannot set %s evaluation", source, target_precision_name(p));
}

static const char *const PRECISION_NAMES[2] = {"fp32", "bf16"};

const char *target_precision_name(TargetPrecision p) {
    return (unsigned)p < 2 ? PRECISION_NAMES[p] : "unknown";
}

int target_precision_parse(const char *name, TargetPrecision *p) {
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, PRECISION_NAMES[i])) { *p = (TargetPrecision)i; return 1; }
    return 0;
}

static const char *const IMPL_NAMES[TARGET_IMPL_COUNT] = {"reference", "avx2", "avx2-dense", "avx512",
                                                          "avx512-dense"};

const char *target_impl_name(TargetImpl impl) {
    return (unsigned)impl < TARGET_IMPL_COUNT ? IMPL_NAMES[impl] : "unknown";
}

int target_impl_parse(const char *name, TargetImpl *impl) {
    for (int i = 0; i < TARGET_IMPL_COUNT; i++)
        if (!strcmp(name, IMPL_NAMES[i])) { *impl = (TargetImpl)i; return 1; }
    return 0;
}

void target_free(TargetNet *t) {
    free(t->ws);
    memset(t, 0, sizeof(*t));
}

// Forward pass of one network; returns the logits (n, classes) inside the workspace.
static const float *net_forward(const TargetArch *a, const WsLayout *L, float *ws, const float *theta,
                                int n, const float *images) {
    const float *in = images;
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        float *out = ws + L->act[i];
        const float *w = op->layer >= 0 ? theta + a->layers[op->layer].offset : NULL;
        switch (op->type) {
        case OP_CONV: target_conv_forward(op, n, in, w, ws + L->scratch, out); break;
        case OP_FC: target_fc_forward(op, n, in, w, out); break;
        case OP_RELU: target_relu_forward((size_t)n * op_out_size(op), in, out); break;
        case OP_MAXPOOL:
            target_maxpool_forward(op, n, in, out, (int32_t *)(ws + L->argmax[i]));
            break;
        }
        in = out;
    }
    return in;
}

// Backward pass of one network after net_forward, with dLogits in ws + L->grad[0].
static void net_backward(const TargetArch *a, const WsLayout *L, float *ws, const float *theta,
                         int n, const float *images, float *dtheta) {
    const int first = a->layers[0].op; // no input gradient is needed at or below the first layer
    int cur = 0;                       // grad buffer holding dOut of op i
    for (int i = a->n_ops - 1; i >= first; i--) {
        const TargetOp *op = &a->ops[i];
        const float *in = i > 0 ? ws + L->act[i - 1] : images;
        float *g = ws + L->grad[cur], *din = i > first ? ws + L->grad[1 - cur] : NULL;
        const float *w = op->layer >= 0 ? theta + a->layers[op->layer].offset : NULL;
        float *dw = op->layer >= 0 ? dtheta + a->layers[op->layer].offset : NULL;
        switch (op->type) {
        case OP_CONV: target_conv_backward(op, n, in, w, g, ws + L->scratch, dw, din); break;
        case OP_FC: target_fc_backward(op, n, in, w, g, dw, din); break;
        case OP_RELU:
            target_relu_backward((size_t)n * op_out_size(op), ws + L->act[i], g, g);
            continue; // in place: dIn stays in the same buffer
        case OP_MAXPOOL:
            target_maxpool_backward(op, n, (const int32_t *)(ws + L->argmax[i]), g, din);
            break;
        }
        cur = 1 - cur;
    }
}

// Threads of the team: at most the workspaces, the OpenMP setting and the networks.
static int team_size(const TargetNet *t, int n_nets) {
    int nt = omp_get_max_threads();
    if (nt > t->n_threads) nt = t->n_threads;
    if (nt > n_nets) nt = n_nets;
    return nt < 1 ? 1 : nt;
}

// One network: forward, loss and (if dtheta) backward. probs, loss, correct, dtheta optional.
static void run_net(const TargetNet *t, const WsLayout *L, float *ws, const float *theta, int n,
                    const float *images, const uint8_t *labels, float scale, float *probs,
                    double *loss, int *correct, float *dtheta) {
    const TargetArch *a = t->arch;
    const float *logits = net_forward(a, L, ws, theta, n, images);
    target_softmax_ce(n, a->classes, logits, labels, scale, probs, dtheta ? ws + L->grad[0] : NULL,
                      loss, correct);
    if (dtheta) net_backward(a, L, ws, theta, n, images, dtheta);
}

// Runs the networks over the team, one whole network per thread.
static void run_all(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                    size_t img_stride, const uint8_t *labels, size_t label_stride, float scale,
                    float *probs, double *loss, int *correct, float *dtheta) {
    const TargetArch *a = t->arch;
    HT_CHECK(n_img >= 1 && n_img <= t->max_images,
             "target: %d images per network (the workspace holds %d)", n_img, t->max_images);
    WsLayout L;
    ws_layout(a, t->max_images, &L);
    const size_t nw = a->n_weights, np = (size_t)n_img * a->classes;
#pragma omp parallel num_threads(team_size(t, n_nets))
    {
        // This thread's BLAS calls run single-threaded, also in a team of one (the setting is
        // local to this thread's task and ends with the region).
        omp_set_num_threads(1);
        float *ws = t->ws + (size_t)omp_get_thread_num() * t->ws_floats;
        // Dynamic: a network's result does not depend on the thread that computes it (nothing is
        // reduced across networks), so this stays bitwise deterministic for any number of threads,
        // and a core shared with another process no longer holds up the whole call.
        // bf16 evaluation: forward-only calls (target_forward) only, never a gradient
        const int bf16 = t->eval == TARGET_EVAL_BF16 && !labels && !dtheta && probs;
#pragma omp for schedule(dynamic, 1)
        for (int k = 0; k < n_nets; k++)
            if (bf16)
                target_bf16_forward_net(a, t->max_images, ws, theta + (size_t)k * nw, n_img,
                                        images + (size_t)k * img_stride, probs + (size_t)k * np, TARGET_BF16_OK);
            else if (t->impl != TARGET_IMPL_REFERENCE)
                target_avx2_net(impl_kernels(t->impl), a, t->max_images,
                                t->impl == TARGET_IMPL_AVX2 || t->impl == TARGET_IMPL_AVX512, ws, theta + (size_t)k * nw, n_img,
                                images + (size_t)k * img_stride,
                                labels ? labels + (size_t)k * label_stride : NULL, scale,
                                probs ? probs + (size_t)k * np : NULL, loss ? &loss[k] : NULL,
                                correct ? &correct[k] : NULL, dtheta ? dtheta + (size_t)k * nw : NULL);
            else
                run_net(t, &L, ws, theta + (size_t)k * nw, n_img, images + (size_t)k * img_stride,
                    labels ? labels + (size_t)k * label_stride : NULL, scale,
                    probs ? probs + (size_t)k * np : NULL, loss ? &loss[k] : NULL,
                    correct ? &correct[k] : NULL, dtheta ? dtheta + (size_t)k * nw : NULL);
    }
}

void target_forward(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                    size_t img_stride, float *probs) {
    run_all(t, n_nets, theta, n_img, images, img_stride, NULL, 0, 0.0f, probs, NULL, NULL, NULL);
}

void target_loss_grad(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                      size_t img_stride, const uint8_t *labels, size_t label_stride, float scale,
                      double *loss, int *correct, float *dtheta) {
    HT_CHECK(labels, "target_loss_grad: labels are required");
    run_all(t, n_nets, theta, n_img, images, img_stride, labels, label_stride, scale, NULL, loss,
            correct, dtheta);
}
