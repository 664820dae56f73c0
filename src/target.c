// target.c: CPU reference of the target network, many generated networks per call, each on its
// own images. One OpenMP thread runs one whole network (forward and backward) in its own
// workspace; BLAS calls inside the parallel region run single-threaded (OpenMP OpenBLAS does
// this by itself), so a network's result does not depend on the number of threads.
//
// Per network, with n images (NHWC each):
//   conv (SAME, stride 1, odd kernel k, pad (k-1)/2):
//     forward   col (n*H*W, K) = im2col(in), K = k*k*cin ordered (kh, kw, cin)
//               out (n*H*W, F) = bias + col . W^T      W: (F, K) read in place, ld K+1
//     backward  dW (F, K) = dOut^T . col,  dbias = column sums of dOut
//               dcol (n*H*W, K) = dOut . W,  dIn = col2im(dcol)   (skipped where not needed)
//   fc: the same with col = the input (n, K) (NHWC flattening), no im2col.
//   relu: in place on the previous op's output (the backward pass only needs the mask out > 0).
//   maxpool (SAME, window = stride = k, TensorFlow padding): windows start at o*k - pad_top with
//     pad_top = (out*k - in)/2, clipped to the input; the backward pass recomputes the argmax
//     (first maximum in (h, w) order) from the cached input.
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

// ---- sizes ----

static size_t op_in_size(const TargetOp *op) { return (size_t)op->in_h * op->in_w * op->in_c; }
static size_t op_out_size(const TargetOp *op) { return (size_t)op->out_h * op->out_w * op->out_c; }
static int op_fan_in(const TargetOp *op) {
    return op->type == OP_CONV ? op->kernel * op->kernel * op->in_c : (int)op_in_size(op);
}
static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

size_t target_conv_col_floats(const TargetOp *op, int n_img) {
    return (size_t)n_img * op->out_h * op->out_w * (size_t)op_fan_in(op);
}

// ---- conv ----

// col (n_img*H*W, k*k*cin): row (img, y, x) holds the k x k x cin input patch centred on (y, x),
// zeros outside the image.
static void im2col(const TargetOp *op, int n_img, const float *in, float *col) {
    const int H = op->in_h, W = op->in_w, C = op->in_c, k = op->kernel, p = (k - 1) / 2;
    const size_t K = (size_t)k * k * C, img_size = (size_t)H * W * C;
    for (int n = 0; n < n_img; n++) {
        const float *im = in + (size_t)n * img_size;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                float *row = col + (((size_t)n * H + y) * W + x) * K;
                // valid kx range: 0 <= x + kx - p < W
                const int kx0 = x - p < 0 ? p - x : 0, kx1 = x + k - p > W ? W - x + p : k;
                for (int ky = 0; ky < k; ky++) {
                    float *dst = row + (size_t)ky * k * C;
                    const int iy = y + ky - p;
                    if (iy < 0 || iy >= H) { memset(dst, 0, (size_t)k * C * sizeof(float)); continue; }
                    if (kx0 > 0) memset(dst, 0, (size_t)kx0 * C * sizeof(float));
                    memcpy(dst + (size_t)kx0 * C, im + ((size_t)iy * W + (x + kx0 - p)) * C,
                           (size_t)(kx1 - kx0) * C * sizeof(float));
                    if (kx1 < k) memset(dst + (size_t)kx1 * C, 0, (size_t)(k - kx1) * C * sizeof(float));
                }
            }
    }
}

// din = col2im(dcol): the adjoint of im2col (din is overwritten).
static void col2im(const TargetOp *op, int n_img, const float *dcol, float *din) {
    const int H = op->in_h, W = op->in_w, C = op->in_c, k = op->kernel, p = (k - 1) / 2;
    const size_t K = (size_t)k * k * C, img_size = (size_t)H * W * C;
    memset(din, 0, (size_t)n_img * img_size * sizeof(float));
    for (int n = 0; n < n_img; n++) {
        float *im = din + (size_t)n * img_size;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                const float *row = dcol + (((size_t)n * H + y) * W + x) * K;
                const int kx0 = x - p < 0 ? p - x : 0, kx1 = x + k - p > W ? W - x + p : k;
                for (int ky = 0; ky < k; ky++) {
                    const int iy = y + ky - p;
                    if (iy < 0 || iy >= H) continue;
                    const float *src = row + ((size_t)ky * k + kx0) * C;
                    float *dst = im + ((size_t)iy * W + (x + kx0 - p)) * C;
                    const size_t len = (size_t)(kx1 - kx0) * C;
                    for (size_t j = 0; j < len; j++) dst[j] += src[j];
                }
            }
    }
}

// out (rows, F) = bias + a (rows, K) . W^T, W = (F, K) with ld K+1 and the bias in column K.
static void dense_forward(int rows, int K, int F, const float *a, const float *w, float *out) {
    for (int r = 0; r < rows; r++) {
        float *o = out + (size_t)r * F;
        for (int f = 0; f < F; f++) o[f] = w[(size_t)f * (K + 1) + K];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, F, K, 1.0f, a, K, w, K + 1, 1.0f,
                out, F);
}

// dw (F, K+1) = [dOut^T . a | column sums of dOut]; da (rows, K) = dOut . W unless da is NULL.
static void dense_backward(int rows, int K, int F, const float *a, const float *w, const float *dout,
                           float *dw, float *da) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, K, rows, 1.0f, dout, F, a, K, 0.0f, dw,
                K + 1);
    for (int f = 0; f < F; f++) dw[(size_t)f * (K + 1) + K] = 0.0f;
    for (int r = 0; r < rows; r++) {
        const float *g = dout + (size_t)r * F;
        for (int f = 0; f < F; f++) dw[(size_t)f * (K + 1) + K] += g[f];
    }
    if (da)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, K, F, 1.0f, dout, F, w, K + 1,
                    0.0f, da, K);
}

void target_conv_forward(const TargetOp *op, int n_img, const float *in, const float *w, float *col,
                         float *out) {
    im2col(op, n_img, in, col);
    dense_forward(n_img * op->out_h * op->out_w, op_fan_in(op), op->out_c, col, w, out);
}

void target_conv_backward(const TargetOp *op, int n_img, const float *in, const float *w,
                          const float *dout, float *col, float *dw, float *din) {
    im2col(op, n_img, in, col);
    // dcol overwrites col once dW has been computed from it
    dense_backward(n_img * op->out_h * op->out_w, op_fan_in(op), op->out_c, col, w, dout, dw,
                   din ? col : NULL);
    if (din) col2im(op, n_img, col, din);
}

// ---- fc ----

void target_fc_forward(const TargetOp *op, int n_img, const float *in, const float *w, float *out) {
    dense_forward(n_img, op_fan_in(op), op->out_c, in, w, out);
}

void target_fc_backward(const TargetOp *op, int n_img, const float *in, const float *w,
                        const float *dout, float *dw, float *din) {
    dense_backward(n_img, op_fan_in(op), op->out_c, in, w, dout, dw, din);
}

// ---- relu ----

void target_relu_forward(size_t n, const float *in, float *out) {
    for (size_t i = 0; i < n; i++) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

void target_relu_backward(size_t n, const float *out, const float *dout, float *din) {
    for (size_t i = 0; i < n; i++) din[i] = out[i] > 0.0f ? dout[i] : 0.0f;
}

// ---- maxpool ----

static int pool_pad(int in, int out, int k) { return (out * k - in) / 2; }

void target_maxpool_forward(const TargetOp *op, int n_img, const float *in, float *out) {
    const int H = op->in_h, W = op->in_w, C = op->in_c, OH = op->out_h, OW = op->out_w, k = op->kernel;
    const int py = pool_pad(H, OH, k), px = pool_pad(W, OW, k);
    for (int n = 0; n < n_img; n++) {
        const float *im = in + (size_t)n * H * W * C;
        float *om = out + (size_t)n * OH * OW * C;
        for (int oy = 0; oy < OH; oy++) {
            const int y0 = oy * k - py < 0 ? 0 : oy * k - py;
            const int y1 = oy * k - py + k > H ? H : oy * k - py + k;
            for (int ox = 0; ox < OW; ox++) {
                const int x0 = ox * k - px < 0 ? 0 : ox * k - px;
                const int x1 = ox * k - px + k > W ? W : ox * k - px + k;
                float *o = om + ((size_t)oy * OW + ox) * C;
                const float *first = im + ((size_t)y0 * W + x0) * C;
                for (int c = 0; c < C; c++) o[c] = first[c];
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) {
                        const float *v = im + ((size_t)y * W + x) * C;
                        for (int c = 0; c < C; c++) o[c] = v[c] > o[c] ? v[c] : o[c];
                    }
            }
        }
    }
}

// din (overwritten): dout routed to the first maximum of each window (recomputed from in).
void target_maxpool_backward(const TargetOp *op, int n_img, const float *in, const float *dout,
                             float *din) {
    const int H = op->in_h, W = op->in_w, C = op->in_c, OH = op->out_h, OW = op->out_w, k = op->kernel;
    const int py = pool_pad(H, OH, k), px = pool_pad(W, OW, k);
    memset(din, 0, (size_t)n_img * H * W * C * sizeof(float));
    for (int n = 0; n < n_img; n++) {
        const float *im = in + (size_t)n * H * W * C;
        float *dm = din + (size_t)n * H * W * C;
        const float *gm = dout + (size_t)n * OH * OW * C;
        for (int oy = 0; oy < OH; oy++) {
            const int y0 = oy * k - py < 0 ? 0 : oy * k - py;
            const int y1 = oy * k - py + k > H ? H : oy * k - py + k;
            for (int ox = 0; ox < OW; ox++) {
                const int x0 = ox * k - px < 0 ? 0 : ox * k - px;
                const int x1 = ox * k - px + k > W ? W : ox * k - px + k;
                const float *g = gm + ((size_t)oy * OW + ox) * C;
                for (int c = 0; c < C; c++) {
                    size_t best = ((size_t)y0 * W + x0) * C + c;
                    for (int y = y0; y < y1; y++)
                        for (int x = x0; x < x1; x++) {
                            const size_t i = ((size_t)y * W + x) * C + c;
                            if (im[i] > im[best]) best = i;
                        }
                    dm[best] += g[c];
                }
            }
        }
    }
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
    size_t act[HT_MAX_OPS]; // output of op i (relu after op 0: the previous op's buffer)
    size_t col;             // im2col / dcol buffer
    size_t grad[2];         // ping-pong gradient buffers
    size_t total;
} WsLayout;

static void ws_layout(const TargetArch *a, int n, WsLayout *L) {
    size_t off = 0, col = 0;
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        if (op->type == OP_RELU && i > 0) { L->act[i] = L->act[i - 1]; continue; }
        L->act[i] = off;
        off += round16((size_t)n * op_out_size(op));
        if (op->type == OP_CONV) {
            size_t c = target_conv_col_floats(op, n);
            if (c > col) col = c;
        }
    }
    L->col = off;
    off += round16(col);
    for (int g = 0; g < 2; g++) {
        L->grad[g] = off;
        off += round16((size_t)n * (a->max_act > (size_t)a->classes ? a->max_act : (size_t)a->classes));
    }
    L->total = off;
}

void target_init(TargetNet *t, const TargetArch *arch, int max_images, int n_threads) {
    HT_CHECK(max_images >= 1, "target_init: max_images must be >= 1 (got %d)", max_images);
    HT_CHECK(arch->n_ops >= 1 && arch->ops[arch->n_ops - 1].type == OP_FC,
             "target_init: the target network must end with an fc layer");
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
    WsLayout L;
    ws_layout(arch, max_images, &L);
    t->ws_floats = L.total;
    t->ws = XALLOC_FLOATS(t->ws_floats * (size_t)t->n_threads);
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
        case OP_CONV: target_conv_forward(op, n, in, w, ws + L->col, out); break;
        case OP_FC: target_fc_forward(op, n, in, w, out); break;
        case OP_RELU: target_relu_forward((size_t)n * op_out_size(op), in, out); break;
        case OP_MAXPOOL: target_maxpool_forward(op, n, in, out); break;
        }
        in = out;
    }
    return in;
}

// Backward pass of one network after net_forward; g holds dLogits (in ws + L->grad[0]).
static void net_backward(const TargetArch *a, const WsLayout *L, float *ws, const float *theta,
                         int n, const float *images, float *dtheta) {
    int first = a->layers[0].op; // no input gradient is needed at or below the first layer
    int cur = 0;                 // grad buffer holding dOut of op i
    for (int i = a->n_ops - 1; i >= first; i--) {
        const TargetOp *op = &a->ops[i];
        const float *in = i > 0 ? ws + L->act[i - 1] : images;
        float *g = ws + L->grad[cur], *din = i > first ? ws + L->grad[1 - cur] : NULL;
        const float *w = op->layer >= 0 ? theta + a->layers[op->layer].offset : NULL;
        float *dw = op->layer >= 0 ? dtheta + a->layers[op->layer].offset : NULL;
        switch (op->type) {
        case OP_CONV: target_conv_backward(op, n, in, w, g, ws + L->col, dw, din); break;
        case OP_FC: target_fc_backward(op, n, in, w, g, dw, din); break;
        case OP_RELU:
            target_relu_backward((size_t)n * op_out_size(op), ws + L->act[i], g, g);
            continue; // in place: dIn stays in the same buffer
        case OP_MAXPOOL: target_maxpool_backward(op, n, in, g, din); break;
        }
        cur = 1 - cur;
    }
}

static int team_size(const TargetNet *t, int n_nets) {
    int nt = omp_get_max_threads();
    if (nt > t->n_threads) nt = t->n_threads;
    if (nt > n_nets) nt = n_nets;
    return nt < 1 ? 1 : nt;
}

void target_forward(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                    size_t img_stride, float *probs) {
    const TargetArch *a = t->arch;
    HT_CHECK(n_img >= 1 && n_img <= t->max_images,
             "target_forward: %d images per network (workspace holds %d)", n_img, t->max_images);
    WsLayout L;
    ws_layout(a, t->max_images, &L);
#pragma omp parallel num_threads(team_size(t, n_nets))
    {
    omp_set_num_threads(1); // this thread's BLAS calls run single-threaded, even in a team of 1
#pragma omp for schedule(static)
    for (int k = 0; k < n_nets; k++) {
        float *ws = t->ws + (size_t)omp_get_thread_num() * t->ws_floats;
        const float *th = theta + (size_t)k * a->n_weights;
        const float *logits = net_forward(a, &L, ws, th, n_img, images + (size_t)k * img_stride);
        target_softmax_ce(n_img, a->classes, logits, NULL, 0.0f,
                          probs + (size_t)k * n_img * a->classes, NULL, NULL, NULL);
    }
    }
}

void target_loss_grad(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                      size_t img_stride, const uint8_t *labels, size_t label_stride, float scale,
                      double *loss, int *correct, float *dtheta) {
    const TargetArch *a = t->arch;
    HT_CHECK(n_img >= 1 && n_img <= t->max_images,
             "target_loss_grad: %d images per network (workspace holds %d)", n_img, t->max_images);
    WsLayout L;
    ws_layout(a, t->max_images, &L);
#pragma omp parallel num_threads(team_size(t, n_nets))
    {
    omp_set_num_threads(1); // this thread's BLAS calls run single-threaded, even in a team of 1
#pragma omp for schedule(static)
    for (int k = 0; k < n_nets; k++) {
        float *ws = t->ws + (size_t)omp_get_thread_num() * t->ws_floats;
        const float *th = theta + (size_t)k * a->n_weights;
        const float *img = images + (size_t)k * img_stride;
        const float *logits = net_forward(a, &L, ws, th, n_img, img);
        double l = 0.0;
        int c = 0;
        target_softmax_ce(n_img, a->classes, logits, labels + (size_t)k * label_stride, scale, NULL,
                          dtheta ? ws + L.grad[0] : NULL, &l, &c);
        if (loss) loss[k] = l;
        if (correct) correct[k] = c;
        if (dtheta) net_backward(a, &L, ws, th, n_img, img, dtheta + (size_t)k * a->n_weights);
    }
    }
}
