// test_cuda_conv: the implicit-GEMM conv blocks of cuda/conv_igemm.cu (conv + bias + ReLU + 2x2 max
// pool fused; dW, dbias, dIn routed through the pool's argmax) against the CPU reference of src/
// (target_conv_forward/backward, target_relu_*, target_maxpool_*), and whole target networks
// through cuda_target_loss_grad with HT_CUDA_CONV=igemm against the CPU and against
// HT_CUDA_CONV=im2col. Budgets are those of tests/gpu/gpu_check.cuh, justified where used.
//
//   packing: pack + unpack of the flat layout round-trips exactly (copies only)
//   per block, several shapes (the paper's two conv layers, odd sizes with clipped pool windows,
//   filters and channels not multiples of 4 and above one 32-wide tile, a 1x1 kernel):
//     pooled output                 -> gemm(K + 1) of the window's largest magnitude
//     argmax                        -> exact, except near-ties (both values within the gemm budget)
//     dW and dbias, dIn             -> gemm (K = pixels, resp. k*k*F), given the CPU's argmax
//   whole networks (paper, and one with odd pool edges):
//     loss (rtol 1e-5), correct counts (+-1), dtheta (robust), probabilities on shared images
//   HT_CUDA_CONV: default choice, an unknown value and igemm on a network it cannot run are
//     one-line fatal errors (checked in a child process)
//
// Prints "SKIPPED (no GPU)" and exits 0 when no GPU is visible; exits non-zero on any failure.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.cuh"
#include "conv_igemm.cuh"
#include "target_cuda.cuh"

extern "C" {
#include "model.h"
#include "rng.h"
}
#include "gpu_check.cuh"

static CudaCtx g_ctx;

static float *rand_floats(size_t n, float lo, float hi, uint32_t key) {
    float *h = XALLOC_FLOATS(n ? n : 1);
    rng_uniform(11, RNG_STREAM_TEST, key, 0, lo, hi, h, (int)n);
    return h;
}

// Guards every comparison against comparing zeros with zeros: at least min_frac of the reference's
// elements must be nonzero.
static void nonzero(const char *name, const float *r, size_t n, double min_frac) {
    size_t nz = 0;
    for (size_t i = 0; i < n; i++) nz += r[i] != 0.0f;
    T_CHECK(&g_ts, (double)nz >= min_frac * (double)n && nz > 0, "%s: %zu of %zu reference values nonzero (>= %.0f%%)",
            name, nz, n, 100.0 * min_frac);
}

static float *abs_copy(const float *x, size_t n) {
    float *a = XALLOC_FLOATS(n ? n : 1);
    for (size_t i = 0; i < n; i++) a[i] = fabsf(x[i]);
    return a;
}

// The random inputs of one conv-block check and their absolute values (for the error bounds'
// magnitudes): weights (nb, WS), images (nb, isz), output gradients (nb, osz).
typedef struct {
    float *theta, *in, *dout, *atheta, *ain, *adout;
} ConvData;

static ConvData conv_data(int nb, size_t WS, size_t isz, size_t osz, uint32_t key) {
    ConvData c;
    c.theta = rand_floats((size_t)nb * WS, -0.3f, 0.3f, key);
    c.in = rand_floats((size_t)nb * isz, -0.5f, 1.0f, key + 1);
    c.dout = rand_floats((size_t)nb * osz, -1.0f, 1.0f, key + 2);
    c.atheta = abs_copy(c.theta, (size_t)nb * WS);
    c.ain = abs_copy(c.in, (size_t)nb * isz);
    c.adout = abs_copy(c.dout, (size_t)nb * osz);
    return c;
}

static void conv_data_free(ConvData *c) {
    free(c->theta); free(c->in); free(c->dout); free(c->atheta); free(c->ain); free(c->adout);
}

// A one-block architecture: conv (k, F) on (H, W, C), ReLU, max pool 2 (SAME), then an fc layer
// that is never run here (the pack functions only look at the conv layer).
static void block_arch(TargetArch *a, int H, int W, int C, int k, int F) {
    memset(a, 0, sizeof(*a));
    a->in_h = H; a->in_w = W; a->in_c = C; a->in_size = H * W * C; a->classes = 10;
    TargetOp *cv = &a->ops[0], *rl = &a->ops[1], *pl = &a->ops[2];
    *cv = (TargetOp){OP_CONV, H, W, C, H, W, F, k, 0};
    *rl = (TargetOp){OP_RELU, H, W, F, H, W, F, 0, -1};
    *pl = (TargetOp){OP_MAXPOOL, H, W, F, (H + 1) / 2, (W + 1) / 2, F, 2, -1};
    a->n_ops = 3;
    a->n_layers = 1;
    a->layers[0] = (TargetLayer){F, k * k * C, C, 0, (size_t)F * (k * k * C + 1), 0};
    a->n_weights = a->layers[0].size;
}

static void test_pack(void) {
    printf("packing: the flat layout -> packed blocks -> back\n");
    Job job;
    job_defaults(&job);
    job_validate(&job);
    TargetArch a;
    arch_build_target(&a, &job);
    IgemmPack p;
    igemm_pack_init(&p, &a);
    const int nb = 3;
    const size_t W = a.n_weights;
    float *theta = rand_floats((size_t)nb * W, -1.0f, 1.0f, 1);
    float *d_theta = gc_upload(theta, (size_t)nb * W), *d_back = DALLOC(float, (size_t)nb * W, "back");
    float *d_pack = DALLOC(float, (size_t)nb * p.stride, "pack");
    gc_zero(d_back, (size_t)nb * W * sizeof(float));
    CUDA_CHECK(cudaMemset(d_pack, 0xff, (size_t)nb * p.stride * sizeof(float))); // NaN: padding must be written
    igemm_pack_weights(g_ctx.stream, &p, &a, nb, d_theta, W, d_pack);
    igemm_unpack_grads(g_ctx.stream, &p, &a, nb, d_pack, d_back, W);
    float *back = gc_download(d_back, (size_t)nb * W), *pk = gc_download(d_pack, (size_t)nb * p.stride);
    float *want = XALLOC_FLOATS((size_t)nb * W);
    memset(want, 0, (size_t)nb * W * sizeof(float));
    for (int l = 0; l < a.n_layers; l++) {
        if (a.ops[a.layers[l].op].type != OP_CONV) continue;
        for (int b = 0; b < nb; b++)
            memcpy(want + (size_t)b * W + a.layers[l].offset, theta + (size_t)b * W + a.layers[l].offset,
                   a.layers[l].size * sizeof(float));
        T_CHECK(&g_ts, p.off[l] % 32 == 0 && p.kp[l] % 4 == 0 && p.kp[l] >= a.layers[l].fan_in,
                "layer %d packed at float %zu (multiple of 32), rows of %d floats (fan-in %d rounded up to 4)", l + 1,
                p.off[l], p.kp[l], a.layers[l].fan_in);
    }
    T_CHECK(&g_ts, p.stride % 32 == 0, "packed stride %zu floats per network (multiple of 32)", p.stride);
    gc_exact("pack + unpack = the conv layers of theta (fc layers untouched)", back, want, (size_t)nb * W);
    // row padding is written as zeros (the NaN fill must be gone); the tail after the biases is never read
    size_t row_pad_bad = 0;
    for (int l = 0; l < a.n_layers; l++) {
        if (a.ops[a.layers[l].op].type != OP_CONV) continue;
        const TargetLayer *L = &a.layers[l];
        for (int b = 0; b < nb; b++)
            for (int f = 0; f < L->filters; f++)
                for (int j = L->fan_in; j < p.kp[l]; j++)
                    if (pk[(size_t)b * p.stride + p.off[l] + (size_t)f * p.kp[l] + j] != 0.0f) row_pad_bad++;
    }
    T_CHECK(&g_ts, row_pad_bad == 0, "row padding of the packed weights is zero (%zu nonzero)", row_pad_bad);
    ht_cuda_free(d_theta); ht_cuda_free(d_back); ht_cuda_free(d_pack);
    free(theta); free(back); free(pk); free(want);
}

// One conv block (H, W, C, kernel k, F filters) for nb networks of n_img images.
static void test_block(const char *what, int H, int W, int C, int k, int F, int nb, int n_img, int with_din,
                       uint32_t key) {
    TargetArch a;
    block_arch(&a, H, W, C, k, F);
    const TargetOp *cv = &a.ops[0], *pl = &a.ops[2];
    const TargetLayer *L = &a.layers[0];
    const int K = L->fan_in, OH = pl->out_h, OW = pl->out_w;
    const size_t WS = a.n_weights, isz = (size_t)n_img * H * W * C, csz = (size_t)n_img * H * W * F;
    const size_t psz = (size_t)n_img * OH * OW * F;
    printf("conv block %s: %dx%dx%d, kernel %d, %d filters -> pool %dx%d; %d networks x %d images\n", what, H, W, C,
           k, F, OH, OW, nb, n_img);
    ConvData cd = conv_data(nb, WS, isz, psz, key);
    // CPU reference, network by network
    float *conv = XALLOC_FLOATS((size_t)nb * csz), *cmag = XALLOC_FLOATS((size_t)nb * csz);
    float *pout = XALLOC_FLOATS((size_t)nb * psz), *pmag = XALLOC_FLOATS((size_t)nb * psz);
    int32_t *amax = (int32_t *)XMALLOC((size_t)nb * psz * sizeof(int32_t));
    int32_t *amag = (int32_t *)XMALLOC((size_t)nb * psz * sizeof(int32_t));
    float *dconv = XALLOC_FLOATS((size_t)nb * csz), *dcmag = XALLOC_FLOATS((size_t)nb * csz);
    float *dw = XALLOC_FLOATS((size_t)nb * WS), *dwm = XALLOC_FLOATS((size_t)nb * WS);
    float *din = XALLOC_FLOATS((size_t)nb * isz), *dinm = XALLOC_FLOATS((size_t)nb * isz);
    float *scratch = XALLOC_FLOATS(target_conv_scratch_floats(cv, n_img));
    for (int b = 0; b < nb; b++) {
        const size_t ci = (size_t)b * csz, pi = (size_t)b * psz, ii = (size_t)b * isz, wi = (size_t)b * WS;
        target_conv_forward(cv, n_img, cd.in + ii, cd.theta + wi, scratch, conv + ci);
        target_relu_forward(csz, conv + ci, conv + ci);
        target_maxpool_forward(pl, n_img, conv + ci, pout + pi, amax + pi);
        target_conv_forward(cv, n_img, cd.ain + ii, cd.atheta + wi, scratch, cmag + ci);
        target_maxpool_forward(pl, n_img, cmag + ci, pmag + pi, amag + pi); // >= |every pixel's terms|
        // backward of the dense chain: pool (routes to argmax), ReLU (mask of the output), conv
        target_maxpool_backward(pl, n_img, amax + pi, cd.dout + pi, dconv + ci);
        target_relu_backward(csz, conv + ci, dconv + ci, dconv + ci);
        target_maxpool_backward(pl, n_img, amax + pi, cd.adout + pi, dcmag + ci);
        target_relu_backward(csz, conv + ci, dcmag + ci, dcmag + ci);
        target_conv_backward(cv, n_img, cd.in + ii, cd.theta + wi, dconv + ci, scratch, dw + wi, with_din ? din + ii : NULL);
        target_conv_backward(cv, n_img, cd.ain + ii, cd.atheta + wi, dcmag + ci, scratch, dwm + wi,
                             with_din ? dinm + ii : NULL);
    }
    // GPU
    IgemmPack p;
    igemm_pack_init(&p, &a);
    float *d_theta = gc_upload(cd.theta, (size_t)nb * WS), *d_in = gc_upload(cd.in, (size_t)nb * isz);
    float *d_pack = DALLOC(float, (size_t)nb * p.stride, "pack"), *d_dpack = DALLOC(float, (size_t)nb * p.stride, "dpack");
    float *d_out = DALLOC(float, (size_t)nb * psz, "out");
    int32_t *d_amax = DALLOC(int32_t, (size_t)nb * psz, "argmax");
    igemm_pack_weights(g_ctx.stream, &p, &a, nb, d_theta, WS, d_pack);
    igemm_conv_pool_forward(g_ctx.stream, cv, pl, nb, n_img, d_in, isz, d_pack + p.off[0], p.kp[0], p.stride, d_out,
                            d_amax);
    float *g = gc_download(d_out, (size_t)nb * psz);
    int32_t *ga = (int32_t *)XMALLOC((size_t)nb * psz * sizeof(int32_t));
    CUDA_CHECK(cudaMemcpy(ga, d_amax, (size_t)nb * psz * sizeof(int32_t), cudaMemcpyDeviceToHost));
    char name[160];
    // Pooled value = max over the window of relu(sum of K + 1 products): the max of perturbed values
    // moves by at most the largest perturbation, so the gemm budget of the window's largest
    // magnitude (pmag: the pool of the |.| conv) bounds it.
    snprintf(name, sizeof(name), "%s: pooled output (conv + bias + ReLU + pool fused)", what);
    gc_gemm(name, g, pout, pmag, (size_t)nb * psz, K + 1);
    nonzero(name, pout, (size_t)nb * psz, 0.2); // about half the pooled values survive ReLU
    // argmax: the same index, or a near-tie: the CPU's ReLU outputs at both indices within the
    // same gemm budget (the two sides' rounding decided it). Indices outside the window are never ok.
    // Where both sides' pooled value is 0 (every window value cut by ReLU: an exact tie), both must
    // pick the first pixel of the window (strict >): no tolerance.
    size_t diff = 0, bad = 0, zero_ties = 0, zero_bad = 0;
    for (size_t e = 0; e < (size_t)nb * psz; e++) {
        if (g[e] == 0.0f && pout[e] == 0.0f) { zero_ties++; zero_bad += ga[e] != amax[e]; continue; }
        if (ga[e] == amax[e]) continue;
        diff++;
        const size_t b = e / psz, f = e % F;
        const int32_t gi = ga[e];
        const double budget = 16.0 * sqrt((double)K + 1) * GC_U * pmag[e];
        if (gi < 0 || (size_t)gi >= csz || (size_t)gi % F != f ||
            fabs((double)conv[b * csz + gi] - (double)conv[b * csz + amax[e]]) > budget)
            bad++;
    }
    T_CHECK(&g_ts, bad == 0, "%s: argmax, %zu values: %zu differ from the CPU, all near-ties within the gemm "
            "budget (%zu not) [exact up to near-ties]", what, (size_t)nb * psz, diff, bad);
    T_CHECK(&g_ts, zero_bad == 0 && zero_ties > 0, "%s: argmax of the %zu all-zero windows (after ReLU) is the first "
            "pixel on both sides (%zu differ) [exact]", what, zero_ties, zero_bad);
    free(g);
    // Backward from the CPU's pooled output and argmax, so that both sides route the same way.
    const size_t nscr = igemm_dw_scratch_floats(cv, pl, nb, n_img);
    float *d_scr = nscr ? DALLOC(float, nscr, "dW scratch") : NULL;
    printf("  dW: %s\n", nscr ? "pooled positions split over several blocks (partial sums + ordered reduction)"
                              : "one block per weight tile (no split)");
    int32_t *d_camax = gc_upload(amax, (size_t)nb * psz);
    float *d_pout = gc_upload(pout, (size_t)nb * psz), *d_dout = gc_upload(cd.dout, (size_t)nb * psz);
    float *d_din = DALLOC(float, (size_t)nb * isz, "din"), *d_dw = DALLOC(float, (size_t)nb * WS, "dw");
    igemm_conv_pool_backward(g_ctx.stream, cv, pl, nb, n_img, d_in, isz, d_pack + p.off[0], p.kp[0], p.stride,
                             d_pout, d_camax, d_dout, d_dpack + p.off[0], p.stride, with_din ? d_din : NULL, d_scr);
    igemm_unpack_grads(g_ctx.stream, &p, &a, nb, d_dpack, d_dw, WS);
    g = gc_download(d_dw, (size_t)nb * WS);
    const double P = (double)n_img * H * W;
    snprintf(name, sizeof(name), "%s: dW and dbias (routed, implicit GEMM; CPU argmax)", what);
    gc_gemm(name, g, dw, dwm, (size_t)nb * WS, P); // dW sums over every conv pixel on the CPU (zeros included)
    nonzero(name, dw, (size_t)nb * WS, 0.5);
    free(g);
    if (with_din) {
        g = gc_download(d_din, (size_t)nb * isz);
        snprintf(name, sizeof(name), "%s: dIn (gather form, routed; CPU argmax)", what);
        gc_gemm(name, g, din, dinm, (size_t)nb * isz, (double)k * k * F);
        nonzero(name, din, (size_t)nb * isz, 0.2);
        free(g);
    }
    // The same backward from the GPU's own forward (argmax near-ties may route differently: robust).
    igemm_conv_pool_backward(g_ctx.stream, cv, pl, nb, n_img, d_in, isz, d_pack + p.off[0], p.kp[0], p.stride,
                             d_out, d_amax, d_dout, d_dpack + p.off[0], p.stride, NULL, d_scr);
    igemm_unpack_grads(g_ctx.stream, &p, &a, nb, d_dpack, d_dw, WS);
    g = gc_download(d_dw, (size_t)nb * WS);
    snprintf(name, sizeof(name), "%s: dW from the GPU's own forward", what);
    // a flipped near-tie moves one filter's gradient by one pixel's terms: at most 1% flips, the rest rounding
    gc_robust(name, g, dw, (size_t)nb * WS, 1e-4, 1e-3, 0.99);
    free(g);
    ht_cuda_free(d_theta); ht_cuda_free(d_in); ht_cuda_free(d_pack); ht_cuda_free(d_dpack); ht_cuda_free(d_out);
    ht_cuda_free(d_amax); ht_cuda_free(d_camax); ht_cuda_free(d_pout); ht_cuda_free(d_dout); ht_cuda_free(d_din);
    ht_cuda_free(d_dw); ht_cuda_free(d_scr);
    conv_data_free(&cd); free(conv); free(cmag); free(pout);
    free(pmag); free(amax); free(amag); free(dconv); free(dcmag); free(dw); free(dwm); free(din); free(dinm);
    free(scratch); free(ga);
}

// Whole network: CPU target_loss_grad vs cuda_target_loss_grad with igemm, and igemm vs im2col.
static void run_gpu_net(const TargetArch *a, const char *impl, int nb, int n_img, const float *d_theta,
                        const float *d_images, const uint8_t *d_labels, float scale, double *loss, int *correct,
                        float *dtheta, float *probs) {
    setenv("HT_CUDA_CONV", impl, 1);
    CudaTarget ct;
    cuda_target_init(&ct, a, nb * n_img, 1);
    unsetenv("HT_CUDA_CONV");
    T_CHECK(&g_ts, !strcmp(cuda_conv_impl_name(ct.conv), impl), "HT_CUDA_CONV=%s selects %s", impl,
            cuda_conv_impl_name(ct.conv));
    const size_t W = a->n_weights, isz = (size_t)a->in_size;
    double *d_loss = DALLOC(double, nb, "loss");
    int *d_correct = DALLOC(int, nb, "correct");
    float *d_dtheta = DALLOC(float, (size_t)nb * W, "dtheta");
    float *d_probs = DALLOC(float, (size_t)nb * n_img * a->classes, "probs");
    cuda_target_loss_grad(&g_ctx, &ct, nb, d_theta, n_img, d_images, (size_t)n_img * isz, d_labels, (size_t)n_img,
                          scale, d_loss, d_correct, d_dtheta);
    cuda_target_forward(&g_ctx, &ct, nb, d_theta, n_img, d_images, 0, d_probs);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemcpy(loss, d_loss, nb * sizeof(double), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(correct, d_correct, nb * sizeof(int), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(dtheta, d_dtheta, (size_t)nb * W * sizeof(float), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(probs, d_probs, (size_t)nb * n_img * a->classes * sizeof(float), cudaMemcpyDeviceToHost));
    cuda_target_free(&ct);
    ht_cuda_free(d_loss); ht_cuda_free(d_correct); ht_cuda_free(d_dtheta); ht_cuda_free(d_probs);
}

static void compare_nets(const char *what, const TargetArch *a, int nb, int n_img, const double *l1, const int *c1,
                         const float *g1, const float *p1, const double *l2, const int *c2, const float *g2,
                         const float *p2) {
    char name[160];
    const size_t W = a->n_weights;
    for (int b = 0; b < nb; b++) {
        snprintf(name, sizeof(name), "%s: loss of network %d", what, b);
        gc_scalar(name, l1[b], l2[b], 1e-5, 0.0);
        T_CHECK(&g_ts, abs(c1[b] - c2[b]) <= 1, "%s: correct images of network %d: %d vs %d (allowed difference 1: "
                "near-tied logits)", what, b, c1[b], c2[b]);
    }
    for (int l = 0; l < a->n_layers; l++) {
        const size_t sz = a->layers[l].size;
        float *x = XALLOC_FLOATS((size_t)nb * sz), *y = XALLOC_FLOATS((size_t)nb * sz);
        for (int b = 0; b < nb; b++) {
            memcpy(x + (size_t)b * sz, g1 + (size_t)b * W + a->layers[l].offset, sz * sizeof(float));
            memcpy(y + (size_t)b * sz, g2 + (size_t)b * W + a->layers[l].offset, sz * sizeof(float));
        }
        snprintf(name, sizeof(name), "%s: dtheta of layer %d", what, l + 1);
        // as test_cuda_kernels' whole-network check: ReLU/max-pool decisions flipped by a different
        // summation order move one filter tap by O(1/#pixels): <= 1% such flips, the rest <= 3e-2 rel-L2
        gc_robust(name, x, y, (size_t)nb * sz, 3e-2, 1e-3, 0.99);
        free(x); free(y);
    }
    snprintf(name, sizeof(name), "%s: probabilities on shared images", what);
    gc_check(name, p1, p2, (size_t)nb * n_img * a->classes, [](size_t) { return 1e-5; }, "absolute 1e-5");
}

static void test_network(const char *what, const Job *job, float wscale) {
    const int nb = 3, n_img = 6;
    TargetArch a;
    arch_build_target(&a, job);
    printf("whole target network (%s): %d networks x %d images\n", what, nb, n_img);
    const size_t W = a.n_weights, isz = (size_t)a.in_size;
    float *theta = rand_floats((size_t)nb * W, -wscale, wscale, 90);
    float *images = rand_floats((size_t)nb * n_img * isz, 0.0f, 1.0f, 91);
    uint8_t labels[64];
    for (int i = 0; i < nb * n_img; i++) labels[i] = (uint8_t)((i * 3 + 1) % a.classes);
    const float scale = 1000.0f / (nb * n_img);
    TargetNet tn;
    target_init(&tn, &a, n_img, 0);
    HT_CHECK(target_set_impl(&tn, TARGET_IMPL_REFERENCE), "reference target implementation unavailable");
    double lc[8], li[8], lm[8];
    int cc[8], ci[8], cm[8];
    const size_t np = (size_t)nb * n_img * a.classes;
    float *gc = XALLOC_FLOATS((size_t)nb * W), *gi = XALLOC_FLOATS((size_t)nb * W), *gm = XALLOC_FLOATS((size_t)nb * W);
    float *pc = XALLOC_FLOATS(np), *pi = XALLOC_FLOATS(np), *pm = XALLOC_FLOATS(np);
    target_loss_grad(&tn, nb, theta, n_img, images, (size_t)n_img * isz, labels, (size_t)n_img, scale, lc, cc, gc);
    target_forward(&tn, nb, theta, n_img, images, 0, pc);
    char name[160];
    for (int l = 0; l < a.n_layers; l++) { // every layer gets a gradient (signals reach the logits)
        size_t nz = 0;
        for (int b = 0; b < nb; b++)
            for (size_t i = 0; i < a.layers[l].size; i++) nz += gc[(size_t)b * W + a.layers[l].offset + i] != 0.0f;
        T_CHECK(&g_ts, nz >= a.layers[l].size / 4 * nb, "%s: CPU dtheta of layer %d has %zu nonzero of %zu", what, l + 1,
                nz, a.layers[l].size * nb);
    }
    float *d_theta = gc_upload(theta, (size_t)nb * W), *d_images = gc_upload(images, (size_t)nb * n_img * isz);
    uint8_t *d_labels = gc_upload(labels, (size_t)nb * n_img);
    run_gpu_net(&a, "igemm", nb, n_img, d_theta, d_images, d_labels, scale, li, ci, gi, pi);
    run_gpu_net(&a, "im2col", nb, n_img, d_theta, d_images, d_labels, scale, lm, cm, gm, pm);
    snprintf(name, sizeof(name), "%s, igemm vs CPU", what);
    compare_nets(name, &a, nb, n_img, li, ci, gi, pi, lc, cc, gc, pc);
    snprintf(name, sizeof(name), "%s, igemm vs im2col", what);
    compare_nets(name, &a, nb, n_img, li, ci, gi, pi, lm, cm, gm, pm);
    target_free(&tn);
    ht_cuda_free(d_theta); ht_cuda_free(d_images); ht_cuda_free(d_labels);
    free(theta); free(images); free(gc); free(gi); free(gm); free(pc); free(pi); free(pm);
}

// ---------------------------------------------------------------- TF32 (cuda_math = tf32)
//
// cuda_math = tf32 runs the conv GEMMs of the im2col path (forward X.W^T, dW = dOut^T.X, dX = dOut.W)
// on TF32 tensor cores: every operand element is rounded to TF32 (10 explicit mantissa bits), the
// products are exact in float and accumulated in float. The budget (docs/cuda.md, "TF32"):
//   |g - r| <= (2 u_t + u_t^2) mag + 16 sqrt(K) u mag,   u_t = 2^-10, mag = sum |a||b|
// Each operand carries a relative error <= u_t: 2^-11 for round-to-nearest (cvt.rna.tf32.f32, what
// the emulation models), 2^-10 if cuBLAS truncates (it does not document its conversion), so u_t =
// 2^-10 covers both; a product then carries <= 2 u_t + u_t^2; the float accumulation of K terms
// adds the FP32 GEMM budget of gpu_check.cuh. Deterministic in the rounding part (no sqrt(K)
// averaging is assumed). Three checks per tensor:
//   1. TF32 result vs the CPU reference on the float inputs: within the budget above;
//   2. the rounding model: vs the CPU reference on operands rounded to TF32 first (to nearest, or
//      truncated: whichever the GPU does; the emulation rounds to nearest) within the FP32 budget
//      alone: fails if only one operand is rounded, or a wrong one;
//   3. TF32 was applied: at least 20% of the elements differ from the CPU by more than the FP32
//      budget (the FP32 path, run alongside, stays within it): fails if the math mode is lost.

static const double TF32_UT = 1.0 / 1024.0; // 2^-10
static const double TF32_APPLIED = 1.0 / 16384.0; // 2^-14: see check 3

static float tf32_round(float x, int truncate) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (truncate ? u : u + 0x1000u) & 0xffffe000u;
    memcpy(&x, &u, 4);
    return x;
}

static float *tf32_copy(const float *x, size_t n, int truncate) {
    float *r = XALLOC_FLOATS(n ? n : 1);
    for (size_t i = 0; i < n; i++) r[i] = tf32_round(x[i], truncate);
    return r;
}

// Largest |g - r| / (k_t mag + 16 sqrt(K) u mag) over n elements; *over_fp32: how many exceed the FP32 part alone.
static double tf32_ratio(const float *g, const float *r, const float *mag, size_t n, double K, double k_t,
                         size_t *over_fp32) {
    double worst = 0.0;
    size_t over = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)g[i] - (double)r[i]), m = fabs((double)mag[i]);
        const double bf = 16.0 * sqrt(K) * GC_U * m + 1e-37, b = k_t * m + bf;
        if (!(e == e)) return INFINITY;
        worst = fmax(worst, e / b);
        over += e > bf;
    }
    if (over_fp32) *over_fp32 = over;
    return worst;
}

// The three checks for one tensor: g = GPU TF32, f = GPU FP32, r = CPU (float inputs), rn / rt = CPU
// on operands rounded to nearest / truncated, mag = CPU on |inputs|; K = reduction length.
static void tf32_checks(const char *name, const float *g, const float *f, const float *r, const float *rn,
                        const float *rt, const float *mag, size_t n, double K) {
    size_t over = 0;
    const double kt = 2.0 * TF32_UT + TF32_UT * TF32_UT;
    const double e1 = tf32_ratio(g, r, mag, n, K, kt, &over);
    T_CHECK(&g_ts, e1 <= 1.0 && n > 0, "%s, TF32 vs CPU: %zu values at %.1f%% of budget [(2 u_t + u_t^2) mag + 16 "
            "sqrt(K) u mag, u_t = 2^-10, K = %.0f]", name, n, 100.0 * e1, K);
    const double en = tf32_ratio(g, rn, mag, n, K, 0.0, NULL), et = tf32_ratio(g, rt, mag, n, K, 0.0, NULL);
    T_CHECK(&g_ts, fmin(en, et) <= 1.0, "%s, TF32 vs CPU on TF32-rounded operands: %.1f%% of the FP32 budget with "
            "round-to-nearest operands, %.1f%% with truncated ones (one must be <= 100%%: both operands rounded, "
            "float accumulation)%s", name, 100.0 * en, 100.0 * et,
            en <= 1.0 ? ": the GPU rounds to nearest" : et <= 1.0 ? ": the GPU truncates" : "");
    size_t over_f = 0;
    const double ef = tf32_ratio(f, r, mag, n, K, 0.0, &over_f);
    const double lt = gc_rel_l2(g, r, n), lf = gc_rel_l2(f, r, n);
    T_CHECK(&g_ts, lt >= TF32_APPLIED && lt >= 10.0 * lf && ef <= 1.0, "%s, TF32 applied: rel-L2 vs CPU %.3g (>= %.3g "
            "and >= 10x the FP32 path's %.3g required; %zu of %zu values beyond the FP32 budget); the FP32 path at "
            "%.1f%% of its budget", name, lt, TF32_APPLIED, lf, over, n, 100.0 * ef);
}

// The conv op of block_arch through cuda_conv_forward / cuda_conv_backward (im2col + cuBLAS) with
// math m; out (nb, n_img, H, W, F), dw (nb, WS), din (nb, n_img, H, W, C) downloaded into h_*.
static void gpu_conv_im2col(const TargetArch *a, CudaMath m, int nb, int n_img, const float *d_theta,
                            const float *d_in, const float *d_dout, float *h_out, float *h_dw, float *h_din) {
    const TargetOp *cv = &a->ops[0];
    const size_t WS = a->n_weights, isz = (size_t)n_img * cv->in_h * cv->in_w * cv->in_c;
    const size_t P = (size_t)n_img * cv->in_h * cv->in_w, csz = P * cv->out_c, K = (size_t)a->layers[0].fan_in;
    float *d_col = DALLOC(float, (size_t)nb * P * K, "im2col"), *d_out = DALLOC(float, (size_t)nb * csz, "out");
    float *d_dw = DALLOC(float, (size_t)nb * WS, "dw"), *d_din = DALLOC(float, (size_t)nb * isz, "din");
    cuda_conv_forward(&g_ctx, cv, nb, n_img, d_in, isz, d_theta, WS, d_col, d_out, m);
    float *g = gc_download(d_out, (size_t)nb * csz);
    memcpy(h_out, g, (size_t)nb * csz * sizeof(float));
    free(g);
    cuda_conv_backward(&g_ctx, cv, nb, n_img, d_col, d_theta, WS, d_dout, d_dw, WS, d_din, m);
    g = gc_download(d_dw, (size_t)nb * WS);
    memcpy(h_dw, g, (size_t)nb * WS * sizeof(float));
    free(g);
    g = gc_download(d_din, (size_t)nb * isz);
    memcpy(h_din, g, (size_t)nb * isz * sizeof(float));
    free(g);
    ht_cuda_free(d_col); ht_cuda_free(d_out); ht_cuda_free(d_dw); ht_cuda_free(d_din);
}

// CPU conv forward and backward of nb networks (src/target.c), the reference of every TF32 check.
static void cpu_conv(const TargetArch *a, int nb, int n_img, const float *theta, const float *in, const float *dout,
                     float *out, float *dw, float *din) {
    const TargetOp *cv = &a->ops[0];
    const size_t WS = a->n_weights, isz = (size_t)n_img * cv->in_h * cv->in_w * cv->in_c;
    const size_t csz = (size_t)n_img * cv->in_h * cv->in_w * cv->out_c;
    float *scratch = XALLOC_FLOATS(target_conv_scratch_floats(cv, n_img));
    for (int b = 0; b < nb; b++) {
        target_conv_forward(cv, n_img, in + b * isz, theta + b * WS, scratch, out + b * csz);
        target_conv_backward(cv, n_img, in + b * isz, theta + b * WS, dout + b * csz, scratch, dw + b * WS,
                             din + b * isz);
    }
    free(scratch);
}

static void test_tf32_conv(const char *what, int H, int W, int C, int k, int F, int nb, int n_img, uint32_t key) {
    TargetArch a;
    block_arch(&a, H, W, C, k, F);
    const TargetLayer *L = &a.layers[0];
    const int K = L->fan_in;
    const size_t WS = a.n_weights, isz = (size_t)n_img * H * W * C, csz = (size_t)n_img * H * W * F;
    printf("TF32 conv (im2col + cuBLAS TF32) %s: %dx%dx%d, kernel %d, %d filters; %d networks x %d images\n", what, H,
           W, C, k, F, nb, n_img);
    ConvData cd = conv_data(nb, WS, isz, csz, key);
    // references: r (float inputs), mag (|inputs|), rn / rt (TF32-rounded GEMM operands: the weights,
    // not the biases, which enter as the GEMM's C; the image and dOut; dbias is a float sum of dOut)
    float *r[3], *mg[3], *rn[3], *rt[3], *g[3], *f[3];
    const size_t sz[3] = {(size_t)nb * csz, (size_t)nb * WS, (size_t)nb * isz};
    for (int i = 0; i < 3; i++) {
        r[i] = XALLOC_FLOATS(sz[i]); mg[i] = XALLOC_FLOATS(sz[i]); rn[i] = XALLOC_FLOATS(sz[i]);
        rt[i] = XALLOC_FLOATS(sz[i]); g[i] = XALLOC_FLOATS(sz[i]); f[i] = XALLOC_FLOATS(sz[i]);
    }
    cpu_conv(&a, nb, n_img, cd.theta, cd.in, cd.dout, r[0], r[1], r[2]);
    cpu_conv(&a, nb, n_img, cd.atheta, cd.ain, cd.adout, mg[0], mg[1], mg[2]);
    for (int trunc = 0; trunc <= 1; trunc++) {
        float *th = tf32_copy(cd.theta, (size_t)nb * WS, trunc), *x = tf32_copy(cd.in, (size_t)nb * isz, trunc);
        float *d = tf32_copy(cd.dout, (size_t)nb * csz, trunc);
        for (int b = 0; b < nb; b++)
            for (int fi = 0; fi < F; fi++) {
                const size_t o = b * WS + (size_t)fi * (K + 1) + K;
                th[o] = cd.theta[o];
            }
        float **rr = trunc ? rt : rn;
        cpu_conv(&a, nb, n_img, th, x, d, rr[0], rr[1], rr[2]);
        for (int b = 0; b < nb; b++) // dbias: the float column sums of the unrounded dOut (no GEMM)
            for (int fi = 0; fi < F; fi++) {
                const size_t o = b * WS + (size_t)fi * (K + 1) + K;
                rr[1][o] = r[1][o];
            }
        free(th); free(x); free(d);
    }
    float *d_theta = gc_upload(cd.theta, (size_t)nb * WS), *d_in = gc_upload(cd.in, (size_t)nb * isz);
    float *d_dout = gc_upload(cd.dout, (size_t)nb * csz);
#ifdef HT_CUDA_EMU
    const long tf32_before = emu_tf32_gemms();
#endif
    gpu_conv_im2col(&a, CUDA_MATH_TF32, nb, n_img, d_theta, d_in, d_dout, g[0], g[1], g[2]);
#ifdef HT_CUDA_EMU
    const long tf32_n = emu_tf32_gemms() - tf32_before, tf32_before2 = emu_tf32_gemms();
    T_CHECK(&g_ts, tf32_n == 3L * nb, "%s: the emulator ran %ld TF32 GEMMs (forward, dW, dX per network: %d)", what,
            tf32_n, 3 * nb);
#endif
    gpu_conv_im2col(&a, CUDA_MATH_FP32, nb, n_img, d_theta, d_in, d_dout, f[0], f[1], f[2]);
#ifdef HT_CUDA_EMU
    T_CHECK(&g_ts, emu_tf32_gemms() == tf32_before2, "%s: the FP32 path ran no TF32 GEMM", what);
#endif
    const char *names[3] = {"conv output (bias + X.W^T)", "dW and dbias", "dIn (dOut.W, col2im)"};
    const double Ks[3] = {(double)K + 1, (double)n_img * H * W, (double)k * k * F};
    char name[200];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "%s: %s", what, names[i]);
        nonzero(name, r[i], sz[i], 0.5);
        tf32_checks(name, g[i], f[i], r[i], rn[i], rt[i], mg[i], sz[i], Ks[i]);
    }
    for (int i = 0; i < 3; i++) { free(r[i]); free(mg[i]); free(rn[i]); free(rt[i]); free(g[i]); free(f[i]); }
    ht_cuda_free(d_theta); ht_cuda_free(d_in); ht_cuda_free(d_dout);
    conv_data_free(&cd);
}

// Runs cuda_conv_impl_choose(a, math) with HT_CUDA_CONV=value in a child; returns its exit status
// and its stderr (first line) in err.
static int child_select(const TargetArch *a, const char *value, char *err, size_t n,
                        CudaMath math = CUDA_MATH_FP32) {
    int fd[2];
    HT_CHECK(pipe(fd) == 0, "pipe failed");
    fflush(stdout); fflush(stderr);
    const pid_t pid = fork();
    HT_CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        setenv("HT_CUDA_CONV", value, 1);
        const CudaConvImpl c = cuda_conv_impl_choose(a, math);
        fprintf(stderr, "selected %s\n", cuda_conv_impl_name(c));
        _exit(0);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], err, n - 1);
    err[got > 0 ? got : 0] = 0;
    char *nl = strchr(err, '\n');
    if (nl) *nl = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_selection(const Job *paper, const Job *smooth) {
    printf("HT_CUDA_CONV selection\n");
    TargetArch a, s;
    arch_build_target(&a, paper);
    arch_build_target(&s, smooth);
    unsetenv("HT_CUDA_CONV");
    T_CHECK(&g_ts, cuda_conv_impl_from_env(&a) == CUDA_CONV_IGEMM, "default on the paper network: igemm");
    T_CHECK(&g_ts, cuda_conv_impl_from_env(&s) == CUDA_CONV_IM2COL,
            "default on conv-conv-fc-fc (no ReLU/pool after a conv): im2col");
    char err[512];
    int rc = child_select(&a, "bogus", err, sizeof(err));
    T_CHECK(&g_ts, rc != 0 && strstr(err, "HT_CUDA_CONV=bogus") && strstr(err, "im2col or igemm"),
            "HT_CUDA_CONV=bogus: exit %d, \"%s\"", rc, err);
    rc = child_select(&s, "igemm", err, sizeof(err));
    T_CHECK(&g_ts, rc != 0 && strstr(err, "HT_CUDA_CONV=igemm") && strstr(err, "conv op 0"),
            "HT_CUDA_CONV=igemm on conv-conv-fc-fc: exit %d, \"%s\"", rc, err);
    rc = child_select(&s, "im2col", err, sizeof(err));
    T_CHECK(&g_ts, rc == 0 && strstr(err, "selected im2col"), "HT_CUDA_CONV=im2col: exit %d, \"%s\"", rc, err);
    // cuda_math = tf32: the im2col path (cuBLAS TF32); igemm is FP32 only and refused by name
    T_CHECK(&g_ts, cuda_conv_impl_choose(&a, CUDA_MATH_TF32) == CUDA_CONV_IM2COL,
            "cuda_math tf32 on the paper network (HT_CUDA_CONV unset): im2col");
    rc = child_select(&a, "igemm", err, sizeof(err), CUDA_MATH_TF32);
    T_CHECK(&g_ts, rc != 0 && strstr(err, "HT_CUDA_CONV=igemm") && strstr(err, "cuda_math \"tf32\""),
            "HT_CUDA_CONV=igemm with cuda_math tf32: exit %d, \"%s\"", rc, err);
    rc = child_select(&a, "im2col", err, sizeof(err), CUDA_MATH_TF32);
    T_CHECK(&g_ts, rc == 0 && strstr(err, "selected im2col"), "HT_CUDA_CONV=im2col with cuda_math tf32: exit %d, "
            "\"%s\"", rc, err);
    rc = child_select(&a, "bogus", err, sizeof(err), CUDA_MATH_TF32);
    T_CHECK(&g_ts, rc != 0 && strstr(err, "HT_CUDA_CONV=bogus"), "HT_CUDA_CONV=bogus with cuda_math tf32: exit %d, "
            "\"%s\"", rc, err);
}

int main(void) {
    if (gc_skip_without_gpu("test_cuda_conv")) return 0;
    cuda_ctx_init(&g_ctx, NULL);
    int dev = 0;
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    printf("test_cuda_conv on GPU %d: %s (compute %d.%d)\n", dev, prop.name, prop.major, prop.minor);
    const int quick = getenv("HT_GPU_TEST_QUICK") != NULL;

    test_pack();
    test_block("paper conv 1", 28, 28, 1, 5, 32, 2, quick ? 2 : 3, 0, 100);
    test_block("paper conv 2", 14, 14, 32, 5, 16, 2, quick ? 2 : 3, 1, 110);
    test_block("odd edges", 7, 9, 3, 3, 5, 3, 2, 1, 120);
    test_block("wide tiles", 6, 5, 33, 3, 40, 2, 2, 1, 130);
    test_block("1x1 kernel", 4, 3, 2, 1, 7, 2, 3, 1, 140);

    Job paper;
    job_defaults(&paper);
    job_validate(&paper);
    Job odd = paper; // pools of odd sizes (7 -> 4) and filters not multiples of 4
    job_set(&odd, "target.layers=[{\"type\":\"conv\",\"kernel\":3,\"filters\":6,\"gen_hidden\":[6]},"
                  "{\"type\":\"relu\"},{\"type\":\"maxpool\",\"kernel\":2},"
                  "{\"type\":\"conv\",\"kernel\":5,\"filters\":5,\"gen_hidden\":[6]},"
                  "{\"type\":\"relu\"},{\"type\":\"maxpool\",\"kernel\":2},"
                  "{\"type\":\"conv\",\"kernel\":3,\"filters\":3,\"gen_hidden\":[6]},"
                  "{\"type\":\"relu\"},{\"type\":\"maxpool\",\"kernel\":2},"
                  "{\"type\":\"fc\",\"units\":10,\"gen_hidden\":[6],\"per_filter\":false}]");
    job_validate(&odd);
    Job smooth = paper;
    job_set(&smooth, "target.layers=[{\"type\":\"conv\",\"kernel\":5,\"filters\":3,\"gen_hidden\":[6]},"
                     "{\"type\":\"conv\",\"kernel\":3,\"filters\":2,\"gen_hidden\":[6]},"
                     "{\"type\":\"fc\",\"units\":10,\"gen_hidden\":[6],\"per_filter\":false}]");
    job_validate(&smooth);
    test_network("paper network", &paper, 0.15f);
    test_network("three blocks, odd pool edges", &odd, 0.6f); // larger weights: signals survive three ReLU/pools
    test_selection(&paper, &smooth);
    test_tf32_conv("paper conv 1", 28, 28, 1, 5, 32, 2, 2, 200);
    test_tf32_conv("paper conv 2", 14, 14, 32, 5, 16, 2, quick ? 2 : 3, 210);
    test_tf32_conv("odd sizes", 7, 9, 3, 3, 5, 3, 2, 220);

    cuda_ctx_free(&g_ctx);
    return test_summary(&g_ts, "test_cuda_conv");
}
