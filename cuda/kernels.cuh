// kernels.cuh: the element-wise and reduction kernels of the CUDA backend, each the device twin of
// a piece of src/ (named after it). All take device pointers and run on `st`; each launch is
// checked (LAUNCH_CHECK). Shapes and layouts are src/'s: row-major activations (rows, features),
// NHWC images, filter-major target weights with the bias last (arch.h), one flat weight vector of
// n_weights floats per generated network.
#ifndef HT_CUDA_KERNELS_CUH
#define HT_CUDA_KERNELS_CUH

#include "common.cuh"

// ---- batch norm after leaky ReLU (src/mlp.c act_bn_forward / act_bn_backward) ----
// red: 4*f doubles of scratch. Forward, train: red[0..f) and red[f..2f) receive the local sums of
// leaky(a) and leaky(a)^2 (to be all-reduced before bn_finalize).
void k_bn_stats(cudaStream_t st, const float *a, int rows, int f, float alpha, double *red);
// train: mean/var from the (reduced) sums over global_rows, running averages updated;
// eval: running averages. red[0..f) <- mean (double); rstd <- 1/sqrt(var + eps) (float).
void k_bn_finalize(cudaStream_t st, int f, int global_rows, int train, double decay, double eps,
                   double *red, float *run_mean, float *run_var, float *rstd);
// xhat = (leaky(a) - mean) * rstd;  y = gamma * xhat + beta.
void k_bn_apply(cudaStream_t st, const float *a, float *xhat, float *y, int rows, int f, float alpha,
                const double *mean, const float *rstd, const float *gamma, const float *beta);
// Backward sums: dbeta += sum dy, dgamma += sum dy*xhat (local); red[0..f) <- gamma * sum dy,
// red[f..2f) <- gamma * sum dy*xhat (to be all-reduced before k_bn_bwd_apply).
void k_bn_bwd_sums(cudaStream_t st, const float *dy, const float *xhat, int rows, int f,
                   const float *gamma, float *dgamma, float *dbeta, double *red);
// da = leaky'(a) * rstd * (gamma*dy - s1/n - xhat * s2/n), n = global rows.
void k_bn_bwd_apply(cudaStream_t st, const float *dy, const float *xhat, const float *a, float *da,
                    int rows, int f, float alpha, const float *gamma, const float *rstd,
                    const double *red, int global_rows);

// Grouped batch norm: one launch covers a hidden level of several MLPs (the hypernetwork's weight
// generators), blockIdx.y = op; every op computes exactly what the one-MLP kernels above compute
// for it (the same device code). op.red: that op's 2 f doubles in the level's one reduction
// buffer (sums forward, then the mean; gamma-scaled gradient sums backward), so the whole level
// needs one all-reduce. Fields an operation does not use may be NULL.
typedef struct {
    const float *a;           // (rows, f) dense output before the activation
    float *xhat, *y;          // (rows, f) forward outputs (apply); xhat read backward
    const float *dy;          // (rows, f) backward: gradient w.r.t. y
    float *da;                // (rows, f) backward: gradient w.r.t. a
    const float *gamma, *beta;
    float *dgamma, *dbeta;    // accumulated (+=)
    float *run_mean, *run_var, *rstd;   // (f)
    double *red;              // (2 f)
    int rows, f, global_rows;
} BnOp;
typedef struct {
    int n, train;             // ops; finalize: batch statistics (1) or running averages (0)
    float alpha;              // leaky ReLU slope
    double decay, eps;
    BnOp op[HT_MAX_OPS];
} BnGroup;
// Passed by value as a kernel parameter: within the classic 4 KiB limit.
static_assert(sizeof(BnGroup) <= 4096, "BnGroup must fit the 4 KiB kernel parameter space");
void k_bn_stats_group(cudaStream_t st, const BnGroup *g);       // as k_bn_stats per op
void k_bn_finalize_group(cudaStream_t st, const BnGroup *g);    // as k_bn_finalize per op
void k_bn_apply_group(cudaStream_t st, const BnGroup *g);       // as k_bn_apply per op
void k_bn_bwd_sums_group(cudaStream_t st, const BnGroup *g);    // as k_bn_bwd_sums (red: its first 2 f)
void k_bn_bwd_apply_group(cudaStream_t st, const BnGroup *g);   // as k_bn_bwd_apply per op

// Copies of `rows` rows for several buffers in one launch (blockIdx.z = copy, blockIdx.y = row):
// dst[r * dpitch + c] = src[r * spitch + c] for c < width (floats). rows <= 65535.
typedef struct {
    float *dst;
    const float *src;
    size_t width, dpitch, spitch;
} RowCopy;
typedef struct {
    int n;
    RowCopy op[HT_MAX_OPS];
} RowCopyGroup;
void k_copy_rows_group(cudaStream_t st, const RowCopyGroup *g, int rows);

// ---- gauge fixing (src/gauge.c) ----
// out/raw (n, n_weights); scales (n, gauge_n_scales); gs: (n, gauge_n_scales) doubles of scratch.
void k_gauge_forward(cudaStream_t st, const TargetArch *a, int n, const float *raw, float *out,
                     float *scales);
// dout -> draw (may be the same buffer).
void k_gauge_backward(cudaStream_t st, const TargetArch *a, int n, const float *raw, const float *scales,
                      const float *dout, float *draw, double *gs);

// ---- entropy (src/entropy.c) ----
// dist (n_local, N) doubles: distance of local sample start+i to every sample j (j == i skipped).
void k_entropy_distances(cudaStream_t st, const float *all, int N, size_t D, int start, int n_local,
                         Distance dist, double *out);
// nn[start+i], eps[start+i] for the local samples: nearest neighbour (ties: lowest index).
void k_entropy_nn(cudaStream_t st, const double *dist, int N, int start, int n_local, int *nn, float *eps);
// grad_local (n_local, D) += scale * dH/dx for the local samples (nn, eps: all N, all-gathered).
void k_entropy_grad(cudaStream_t st, const float *all, int N, size_t D, int start, int n_local,
                    Distance dist, int d, float scale, const int *nn, const float *eps, float *grad_local);
struct DevStepParams;
// The same, with the cross-entropy part of grad_local first multiplied by the step's lambda read
// from device memory: grad_local = (float)(par->lambda * grad_local) + scale * dH/dx (one pass; the
// target network's backward ran with the loss scale 1/(B*images), so that no per-step value is
// captured into the step's CUDA graph).
void k_entropy_grad_lambda(cudaStream_t st, const float *all, int N, size_t D, int start, int n_local,
                           Distance dist, int d, float scale, const int *nn, const float *eps,
                           const struct DevStepParams *par, float *grad_local);

// ---- target network pieces (src/target.c) ----
// col (nb, n_img*H*W, k*k*C): im2col of nb groups of n_img images (H, W, C) at in + b*in_stride.
void k_im2col(cudaStream_t st, int nb, int n_img, int H, int W, int C, int k, const float *in,
              size_t in_stride, float *col);
// din (nb, n_img, H, W, C) = sum over the k*k patches containing each pixel of dcol (nb, rows, K).
void k_col2im(cudaStream_t st, int nb, int n_img, int H, int W, int C, int k, const float *dcol, float *din);
// out (nb, rows, F) <- the biases of each group's layer: w + b*w_stride + f*(K+1) + K.
void k_fill_bias(cudaStream_t st, int nb, size_t rows, int F, int K, const float *w, size_t w_stride,
                 float *out);
// dw[b*w_stride + f*(K+1) + K] = sum over rows of dout (nb, rows, F) (double accumulation).
void k_bias_grad(cudaStream_t st, int nb, size_t rows, int F, int K, const float *dout, float *dw,
                 size_t w_stride);
void k_relu_forward(cudaStream_t st, size_t n, const float *in, float *out);
void k_relu_backward(cudaStream_t st, size_t n, const float *out, const float *dout, float *din);
// n_imgs images (H, W, C) -> (OH, OW, C); argmax indexes the image group of `group` images
// (the network's input block), as src/target.c does per network.
void k_maxpool_forward(cudaStream_t st, int n_imgs, int group, int H, int W, int C, int OH, int OW, int k,
                       const float *in, float *out, int32_t *argmax);
void k_maxpool_backward(cudaStream_t st, int n_imgs, int group, int H, int W, int C, int OH, int OW, int k,
                        const int32_t *argmax, const float *dout, float *din);
// Softmax cross-entropy of logits (n_nets, n_img, classes) (src/target.c target_softmax_ce).
// labels + b*label_stride (may be NULL: probabilities only); probs, dlogits optional (NULL).
// terms (n_nets*n_img) doubles and flags (n_nets*n_img) ints receive each image's loss and
// correctness when labels are given.
void k_softmax_ce(cudaStream_t st, int n_nets, int n_img, int classes, const float *logits,
                  const uint8_t *labels, size_t label_stride, float scale, float *probs, float *dlogits,
                  double *terms, int *flags);
// loss[b] = sum over images of terms (in image order), correct[b] = sum of flags.
void k_net_loss_sum(cudaStream_t st, int n_nets, int n_img, const double *terms, const int *flags,
                    double *loss, int *correct);
// out (n, in_size) = src[idx[i]] (image gather from the device copy of the training set).
void k_gather_rows(cudaStream_t st, int n, int in_size, const float *src, const int32_t *idx, float *out);

// ---- the step's scalars in device memory (no host synchronization inside a step) ----
// Uploaded by the host with the step's z and image indices (one small copy, outside the graph).
typedef struct DevStepParams {
    double lr, lambda;    // model_lr, model_lambda of this step
    double adam_a;        // Adam's step size lr sqrt(1 - b2^t) / (1 - b1^t), in double on the host (src/adam.c)
    double step;          // t: the 1-based number of this step
} DevStepParams;
// StepStats of src/train.h as the device forms them.
typedef struct DevStepStats {
    double loss, ce, entropy, acc, lr, lambda, grad_norm, step;
} DevStepStats;
typedef struct DevStepRecord {
    DevStepStats last;    // the latest finalized step
    DevStepStats bad;     // the first step whose loss, cross-entropy, entropy or gradient norm was
                          // not finite (valid when bad_step > 0)
    double bad_step;      // 0 while every step was finite; once set, it never changes and every
                          // later k_adam_dev skips its update
} DevStepRecord;
// One thread: H = digamma_N + d/N sum_i log(eps_i + ENTROPY_EPS) (src/entropy.c, index order),
// ce = red[0] / count, acc = red[1] / count, loss = lambda ce - H, grad_norm = sqrt(red[2]) (src/
// train.c); the finiteness check of trainer_step sets rec->bad (first time only).
void k_step_finalize(cudaStream_t st, const double *red, const float *eps, int N, int d, double digamma_N,
                     double count, const DevStepParams *par, DevStepRecord *rec);

// ---- validation accumulated on the device (src/train.c val_chunk_stats) ----
// probs (g, n, classes) of g networks on images [i0, i0 + n): votes/psum (n, classes) of those
// images += each network's argmax vote (ties: lowest class) and probabilities, networks in order
// (the host loop's float order); correct[k] += hits, nll[k] += -log(p[y] + 1e-30) in image order.
// labels: the n images' labels (device).
void k_val_accumulate(cudaStream_t st, int g, int n, int classes, const float *probs, const uint8_t *labels,
                      float *votes, float *psum, int *correct, double *nll);

// ---- optimizer and reductions (src/adam.c, src/train.c) ----
// Adam's step size lr sqrt(1 - beta2^t) / (1 - beta1^t), in double on the host, exactly as src/adam.c.
double k_adam_step_size(double lr, double beta1, double beta2, int64_t t);
void k_adam(cudaStream_t st, float *params, const float *grads, float *m, float *v, size_t n, double lr,
            double beta1, double beta2, double eps, int64_t t);
// The same update with the step size par->adam_a read from device memory; no update at all once
// rec->bad_step is set (a non-finite step, or any step queued after one).
void k_adam_dev(cudaStream_t st, float *params, const float *grads, float *m, float *v, size_t n, double beta1,
                double beta2, double eps, const DevStepParams *par, const DevStepRecord *rec);
// out[0] = sum of g^2 in double; partial: HT_SUMSQ_BLOCKS doubles of scratch (fixed order).
#define HT_SUMSQ_BLOCKS 512
void k_sumsq(cudaStream_t st, const float *g, size_t n, double *partial, double *out);
// out[0] = sum of v (in index order), out[1] = sum of iv (in order): one thread.
void k_sum_loss(cudaStream_t st, int n, const double *v, const int *iv, double *out);

#endif
