// target_cuda.cu: the target network for many networks per call on the GPU (see target_cuda.cuh).
// Row-major operands are handed to column-major cuBLAS as their transposes:
//   forward  out_b (P, F)  = X_b (P, K) . W_b^T      -> C (F x P) = W^T (F x K) . X^T (K x P)
//   dW       dW_b (F, K)   = dOut_b^T . X_b          -> C (K x F) = X^T (K x P) . dOut (P x F)
//   dX       dX_b (P, K)   = dOut_b (P, F) . W_b     -> C (K x P) = W^T (K x F) . dOut^T (F x P)
// with W_b read in place at leading dimension K + 1 (the bias of each filter is skipped).
#include "target_cuda.cuh"

#include <stdlib.h>
#include <string.h>

#include "kernels.cuh"

static const float k_one = 1.0f;

static size_t op_in_size(const TargetOp *op) { return (size_t)op->in_h * op->in_w * op->in_c; }
static size_t op_out_size(const TargetOp *op) { return (size_t)op->out_h * op->out_w * op->out_c; }
static int op_fan_in(const TargetOp *op) {
    return op->type == OP_CONV ? op->kernel * op->kernel * op->in_c : (int)op_in_size(op);
}

// One batched GEMM of the target network: plain FP32 (cublasSgemmStridedBatched, the parity path)
// or, for the conv layers of a cuda_math = tf32 job, on TF32 tensor cores
// (cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F_FAST_TF32: A and B rounded to TF32, products
// accumulated in float). A per-call compute type, not the handle's math mode: the fc layers and the
// hypernetwork's GEMMs on the same handle stay FP32 whatever ran before them.
static void gemm_batched(CudaCtx *ctx, CudaMath math, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                         const float *A, int lda, long long sA, const float *B, int ldb, long long sB, float beta,
                         float *C, int ldc, long long sC, int nb) {
    if (math == CUDA_MATH_TF32) {
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(ctx->blas, ta, tb, m, n, k, &k_one, A, CUDA_R_32F, lda, sA, B,
                                                CUDA_R_32F, ldb, sB, &beta, C, CUDA_R_32F, ldc, sC, nb,
                                                CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_GEMM_DEFAULT));
        return;
    }
    CUBLAS_CHECK(cublasSgemmStridedBatched(ctx->blas, ta, tb, m, n, k, &k_one, A, lda, sA, B, ldb, sB, &beta, C, ldc,
                                           sC, nb));
}

// out_b = beta * out_b + X_b . W_b^T for b < nb.
static void gemm_xwt(CudaCtx *ctx, CudaMath math, int nb, int P, int F, int K, const float *X, long long sX,
                     const float *W, int ldw, long long sW, float beta, float *out, long long sO) {
    gemm_batched(ctx, math, CUBLAS_OP_T, CUBLAS_OP_N, F, P, K, W, ldw, sW, X, K, sX, beta, out, F, sO, nb);
}

// dW_b (F rows of K, row stride ldw) = dOut_b^T . X_b (the bias column is not touched).
static void gemm_dw(CudaCtx *ctx, CudaMath math, int nb, int P, int F, int K, const float *X, long long sX,
                    const float *dout, long long sD, float *dW, int ldw, long long sW) {
    gemm_batched(ctx, math, CUBLAS_OP_N, CUBLAS_OP_T, K, F, P, X, K, sX, dout, F, sD, 0.0f, dW, ldw, sW, nb);
}

// dX_b (P, K) = dOut_b . W_b.
static void gemm_dx(CudaCtx *ctx, CudaMath math, int nb, int P, int F, int K, const float *dout, long long sD,
                    const float *W, int ldw, long long sW, float *dX, long long sX) {
    gemm_batched(ctx, math, CUBLAS_OP_N, CUBLAS_OP_N, K, P, F, W, ldw, sW, dout, F, sD, 0.0f, dX, K, sX, nb);
}

void cuda_conv_forward(CudaCtx *ctx, const TargetOp *op, int n_nets, int n_img, const float *in,
                       size_t in_stride, const float *w, size_t w_stride, float *col, float *out, CudaMath math) {
    const int H = op->in_h, Wd = op->in_w, C = op->in_c, k = op->kernel, F = op->out_c, K = op_fan_in(op);
    const size_t P = (size_t)n_img * H * Wd;
    HT_CHECK(P * (size_t)K < ((size_t)1 << 40) && P < (size_t)INT32_MAX, "conv: %zu output pixels are too many", P);
    k_im2col(ctx->stream, in_stride ? n_nets : 1, n_img, H, Wd, C, k, in, in_stride, col);
    k_fill_bias(ctx->stream, n_nets, P, F, K, w, w_stride, out);
    gemm_xwt(ctx, math, n_nets, (int)P, F, K, col, in_stride ? (long long)(P * K) : 0, w, K + 1, (long long)w_stride,
             1.0f, out, (long long)(P * F));
}

void cuda_conv_backward(CudaCtx *ctx, const TargetOp *op, int n_nets, int n_img, float *col, const float *w,
                        size_t w_stride, const float *dout, float *dw, size_t dw_stride, float *din, CudaMath math) {
    const int H = op->in_h, Wd = op->in_w, C = op->in_c, k = op->kernel, F = op->out_c, K = op_fan_in(op);
    const size_t P = (size_t)n_img * H * Wd;
    gemm_dw(ctx, math, n_nets, (int)P, F, K, col, (long long)(P * K), dout, (long long)(P * F), dw, K + 1,
            (long long)dw_stride);
    k_bias_grad(ctx->stream, n_nets, P, F, K, dout, dw, dw_stride);
    if (!din) return;
    // dCol = dOut . W into the im2col block (no longer needed), then col2im.
    gemm_dx(ctx, math, n_nets, (int)P, F, K, dout, (long long)(P * F), w, K + 1, (long long)w_stride, col,
            (long long)(P * K));
    k_col2im(ctx->stream, n_nets, n_img, H, Wd, C, k, col, din);
}

void cuda_fc_forward(CudaCtx *ctx, const TargetOp *op, int n_nets, int n_img, const float *in, size_t in_stride,
                     const float *w, size_t w_stride, float *out) {
    const int K = op_fan_in(op), F = op->out_c;
    k_fill_bias(ctx->stream, n_nets, (size_t)n_img, F, K, w, w_stride, out);
    gemm_xwt(ctx, CUDA_MATH_FP32, n_nets, n_img, F, K, in, (long long)in_stride, w, K + 1, (long long)w_stride, 1.0f,
             out, (long long)n_img * F);
}

void cuda_fc_backward(CudaCtx *ctx, const TargetOp *op, int n_nets, int n_img, const float *in, size_t in_stride,
                      const float *w, size_t w_stride, const float *dout, float *dw, size_t dw_stride, float *din) {
    const int K = op_fan_in(op), F = op->out_c;
    gemm_dw(ctx, CUDA_MATH_FP32, n_nets, n_img, F, K, in, (long long)in_stride, dout, (long long)n_img * F, dw, K + 1,
            (long long)dw_stride);
    k_bias_grad(ctx->stream, n_nets, (size_t)n_img, F, K, dout, dw, dw_stride);
    if (din)
        gemm_dx(ctx, CUDA_MATH_FP32, n_nets, n_img, F, K, dout, (long long)n_img * F, w, K + 1, (long long)w_stride,
                din, (long long)n_img * K);
}

// ---------------------------------------------------------------- whole network

const char *cuda_conv_impl_name(CudaConvImpl c) { return c == CUDA_CONV_IGEMM ? "igemm" : "im2col"; }

CudaConvImpl cuda_conv_impl_choose(const TargetArch *a, CudaMath math) {
    char why[160];
    const int fits = igemm_arch_fits(a, why, sizeof(why));
    const char *env = getenv("HT_CUDA_CONV");
    if (math == CUDA_MATH_TF32) { // TF32 is cuBLAS's tensor-core GEMM: the im2col path
        HT_CHECK(!env || !*env || !strcmp(env, "im2col") || strcmp(env, "igemm"),
                 "HT_CUDA_CONV=igemm: cuda_math \"tf32\" runs the convolutions as cuBLAS TF32 GEMMs on the im2col "
                 "path, and the implicit-GEMM kernels are FP32 only (unset HT_CUDA_CONV, set it to im2col, or use "
                 "cuda_math \"fp32\")");
        HT_CHECK(!env || !*env || !strcmp(env, "im2col"),
                 "HT_CUDA_CONV=%s: unknown conv implementation (expected im2col or igemm)", env);
        return CUDA_CONV_IM2COL;
    }
    if (!env || !*env) return fits ? CUDA_CONV_IGEMM : CUDA_CONV_IM2COL;
    if (!strcmp(env, "im2col")) return CUDA_CONV_IM2COL;
    HT_CHECK(!strcmp(env, "igemm"), "HT_CUDA_CONV=%s: unknown conv implementation (expected im2col or igemm)", env);
    HT_CHECK(fits, "HT_CUDA_CONV=igemm: this target network does not fit the implicit-GEMM kernels: %s", why);
    return CUDA_CONV_IGEMM;
}

CudaConvImpl cuda_conv_impl_from_env(const TargetArch *a) { return cuda_conv_impl_choose(a, CUDA_MATH_FP32); }

const char *cuda_math_name(CudaMath m) { return m == CUDA_MATH_TF32 ? "tf32" : "fp32"; }

// igemm: conv op i runs fused with its ReLU (i + 1) and max pool (i + 2).
static int fused_conv(const CudaTarget *t, int i) { return t->conv == CUDA_CONV_IGEMM && t->arch->ops[i].type == OP_CONV; }
static int fused_tail(const CudaTarget *t, int i) {
    return t->conv == CUDA_CONV_IGEMM && i >= 2 && t->arch->ops[i - 2].type == OP_CONV;
}

void cuda_target_init(CudaTarget *t, const TargetArch *a, int cap, int with_backward, CudaMath math) {
    HT_CHECK(cap >= 1, "cuda_target_init: capacity must be >= 1 (got %d)", cap);
    HT_CHECK(a->n_ops >= 1 && a->ops[a->n_ops - 1].type == OP_FC,
             "target network: the last op must be an fc layer");
    HT_CHECK((double)cap * (double)a->max_act < (double)INT32_MAX,
             "target network: %d network-images of %zu floats overflow the pool index", cap, a->max_act);
    memset(t, 0, sizeof(*t));
    t->arch = a;
    t->cap = cap;
    t->with_backward = with_backward;
    t->math = math;
    t->conv = cuda_conv_impl_choose(a, math);
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        HT_CHECK(op->type != OP_CONV || (op->kernel >= 1 && op->kernel % 2 == 1),
                 "target network: conv op %d has kernel %d (must be odd)", i, op->kernel);
        if (fused_conv(t, i) || (i >= 1 && fused_conv(t, i - 1))) continue; // conv and ReLU outputs never stored
        if (op->type == OP_RELU && i > 0) { t->act[i] = t->act[i - 1]; continue; }
        t->act[i] = DALLOC(float, (size_t)cap * op_out_size(op), "target network activations");
        if (op->type == OP_MAXPOOL)
            t->argmax[i] = DALLOC(int32_t, (size_t)cap * op_out_size(op), "target network max-pool indices");
        if (op->type == OP_CONV)
            t->col[i] = DALLOC(float, (size_t)cap * op->out_h * op->out_w * op_fan_in(op),
                               "target network im2col blocks");
    }
    if (t->conv == CUDA_CONV_IGEMM) {
        igemm_pack_init(&t->pack, a);
        t->wpack = DALLOC(float, (size_t)cap * t->pack.stride, "packed conv weights (igemm)");
        if (with_backward) {
            t->dwpack = DALLOC(float, (size_t)cap * t->pack.stride, "packed conv gradients (igemm)");
            // dW's split reductions: the scratch grows with the images per network, so the largest
            // need of n networks is at n_img = cap / n.
            size_t most = 0;
            for (int i = 0; i + 2 < a->n_ops; i++) {
                if (a->ops[i].type != OP_CONV) continue;
                for (int n = 1; n <= cap && n <= 65535; n++) {
                    const size_t need = igemm_dw_scratch_floats(&a->ops[i], &a->ops[i + 2], n, cap / n);
                    if (need > most) most = need;
                }
            }
            if (most) t->dwscratch = DALLOC(float, most, "split dW partial sums (igemm)");
        }
    }
    if (with_backward) {
        const size_t g = a->max_act > (size_t)a->classes ? a->max_act : (size_t)a->classes;
        for (int i = 0; i < 2; i++) t->grad[i] = DALLOC(float, (size_t)cap * g, "target network gradients");
    }
    t->terms = DALLOC(double, cap, "per-image losses");
    t->flags = DALLOC(int, cap, "per-image correctness");
}

void cuda_target_free(CudaTarget *t) {
    const TargetArch *a = t->arch;
    if (!a) return;
    for (int i = 0; i < a->n_ops; i++) {
        if (!(a->ops[i].type == OP_RELU && i > 0)) ht_cuda_free(t->act[i]);
        ht_cuda_free(t->argmax[i]);
        ht_cuda_free(t->col[i]);
    }
    ht_cuda_free(t->wpack); ht_cuda_free(t->dwpack); ht_cuda_free(t->dwscratch);
    ht_cuda_free(t->grad[0]); ht_cuda_free(t->grad[1]);
    ht_cuda_free(t->terms); ht_cuda_free(t->flags);
    memset(t, 0, sizeof(*t));
}

// Forward pass of n_nets networks; returns the logits (n_nets, n_img, classes).
static const float *net_forward(CudaCtx *ctx, CudaTarget *t, int n_nets, const float *theta, int n_img,
                                const float *images, size_t img_stride) {
    const TargetArch *a = t->arch;
    const size_t W = a->n_weights;
    HT_CHECK((size_t)n_nets * n_img <= (size_t)t->cap, "target network: %d networks x %d images exceed the "
             "workspace's %d", n_nets, n_img, t->cap);
    const float *in = images;
    size_t in_stride = img_stride;
    if (t->conv == CUDA_CONV_IGEMM) igemm_pack_weights(ctx->stream, &t->pack, a, n_nets, theta, W, t->wpack);
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        if (fused_conv(t, i)) { // conv + bias + ReLU + max pool: the pool's output and argmax
            const TargetOp *pool = &a->ops[i + 2];
            igemm_conv_pool_forward(ctx->stream, op, pool, n_nets, n_img, in, in_stride,
                                    t->wpack + t->pack.off[op->layer], t->pack.kp[op->layer], t->pack.stride,
                                    t->act[i + 2], t->argmax[i + 2]);
            in = t->act[i + 2];
            in_stride = (size_t)n_img * op_out_size(pool);
            i += 2;
            continue;
        }
        const size_t osz = op_out_size(op);
        const int per_net = op->layer >= 0 || in_stride != 0; // else the output is shared too
        const size_t out_stride = per_net ? (size_t)n_img * osz : 0;
        const int nb = per_net ? n_nets : 1;
        float *out = t->act[i];
        const float *w = op->layer >= 0 ? theta + a->layers[op->layer].offset : NULL;
        switch (op->type) {
        case OP_CONV: cuda_conv_forward(ctx, op, n_nets, n_img, in, in_stride, w, W, t->col[i], out, t->math); break;
        case OP_FC: cuda_fc_forward(ctx, op, n_nets, n_img, in, in_stride, w, W, out); break;
        case OP_RELU: k_relu_forward(ctx->stream, (size_t)nb * n_img * osz, in, out); break;
        case OP_MAXPOOL:
            k_maxpool_forward(ctx->stream, nb * n_img, n_img, op->in_h, op->in_w, op->in_c, op->out_h, op->out_w,
                              op->kernel, in, out, t->argmax[i]);
            break;
        }
        in = out;
        in_stride = out_stride;
    }
    return in;
}

// Backward after net_forward with dLogits in t->grad[0]; writes every weight and bias of dtheta.
static void net_backward(CudaCtx *ctx, CudaTarget *t, int n_nets, const float *theta, int n_img,
                         const float *images, size_t img_stride, float *dtheta) {
    const TargetArch *a = t->arch;
    const size_t W = a->n_weights;
    const int first = a->layers[0].op; // no input gradient at or below the first layer
    int cur = 0;
    for (int i = a->n_ops - 1; i >= first; i--) {
        if (fused_tail(t, i)) { // max pool i, ReLU i - 1, conv i - 2: dW, dbias, dIn in one block
            const int ci = i - 2;
            const TargetOp *conv = &a->ops[ci];
            const float *in = ci > 0 ? t->act[ci - 1] : images;
            const size_t in_stride = ci > 0 ? (size_t)n_img * op_in_size(conv) : img_stride;
            const size_t po = t->pack.off[conv->layer];
            igemm_conv_pool_backward(ctx->stream, conv, &a->ops[i], n_nets, n_img, in, in_stride, t->wpack + po,
                                     t->pack.kp[conv->layer], t->pack.stride, t->act[i], t->argmax[i], t->grad[cur],
                                     t->dwpack + po, t->pack.stride, ci > first ? t->grad[1 - cur] : NULL,
                                     t->dwscratch);
            cur = 1 - cur;
            i = ci;
            continue;
        }
        const TargetOp *op = &a->ops[i];
        const float *in = i > 0 ? t->act[i - 1] : images;
        const size_t in_stride = i > 0 ? (size_t)n_img * op_in_size(op) : img_stride;
        float *g = t->grad[cur], *din = i > first ? t->grad[1 - cur] : NULL;
        const float *w = op->layer >= 0 ? theta + a->layers[op->layer].offset : NULL;
        float *dw = op->layer >= 0 ? dtheta + a->layers[op->layer].offset : NULL;
        switch (op->type) {
        case OP_CONV: cuda_conv_backward(ctx, op, n_nets, n_img, t->col[i], w, W, g, dw, W, din, t->math); break;
        case OP_FC: cuda_fc_backward(ctx, op, n_nets, n_img, in, in_stride, w, W, g, dw, W, din); break;
        case OP_RELU:
            k_relu_backward(ctx->stream, (size_t)n_nets * n_img * op_out_size(op), t->act[i], g, g);
            continue; // in place
        case OP_MAXPOOL:
            k_maxpool_backward(ctx->stream, n_nets * n_img, n_img, op->in_h, op->in_w, op->in_c, op->out_h,
                               op->out_w, op->kernel, t->argmax[i], g, din);
            break;
        }
        cur = 1 - cur;
    }
    if (t->conv == CUDA_CONV_IGEMM) igemm_unpack_grads(ctx->stream, &t->pack, a, n_nets, t->dwpack, dtheta, W);
}

void cuda_target_forward(CudaCtx *ctx, CudaTarget *t, int n_nets, const float *theta, int n_img,
                         const float *images, size_t img_stride, float *probs) {
    const float *logits = net_forward(ctx, t, n_nets, theta, n_img, images, img_stride);
    k_softmax_ce(ctx->stream, n_nets, n_img, t->arch->classes, logits, NULL, 0, 0.0f, probs, NULL, NULL, NULL);
}

void cuda_target_loss_grad(CudaCtx *ctx, CudaTarget *t, int n_nets, const float *theta, int n_img,
                           const float *images, size_t img_stride, const uint8_t *labels, size_t label_stride,
                           float scale, double *loss, int *correct, float *dtheta) {
    HT_CHECK(labels, "cuda_target_loss_grad: labels are required");
    HT_CHECK(!dtheta || (t->with_backward && img_stride != 0),
             "cuda_target_loss_grad: gradients need a workspace with backward buffers and per-network images");
    const float *logits = net_forward(ctx, t, n_nets, theta, n_img, images, img_stride);
    k_softmax_ce(ctx->stream, n_nets, n_img, t->arch->classes, logits, labels, label_stride, scale, NULL,
                 dtheta ? t->grad[0] : NULL, t->terms, t->flags);
    k_net_loss_sum(ctx->stream, n_nets, n_img, t->terms, t->flags, loss, correct);
    if (dtheta) net_backward(ctx, t, n_nets, theta, n_img, images, img_stride, dtheta);
}
