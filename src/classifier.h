// classifier.h: the target network as a plain classifier, for the analyses that compare generated
// networks with conventionally trained ones and attack them (hyperanalyze adversarial, ood,
// baseline; docs/analysis.md):
//   - gradients with respect to the INPUT images of one network (composed from the per-op
//     backward functions of target.h down to the first conv's input), for fast gradient sign
//     attacks;
//   - targeted fast gradient sign perturbations (Goodfellow et al. 2014);
//   - out-of-distribution scores of an ensemble (predictive entropy, mutual information);
//   - the usual initializations (He / Glorot) for training target networks directly.
// Single-threaded per call; callers run one InputGrad per OpenMP thread.
#ifndef HT_CLASSIFIER_H
#define HT_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"

// Philox stream of the initialization of directly trained networks (not in rng.h's list, so that
// it cannot collide with the hypernetwork's streams 1-6 and the tests' 99).
#define CLASSIFIER_RNG_STREAM_INIT 201u

// Workspace of one network's forward and input-gradient passes on up to max_images images.
typedef struct {
    const TargetArch *arch;
    int max_images;
    size_t act[HT_MAX_OPS];    // output of op i (own buffer per op), offsets into ws
    size_t argmax[HT_MAX_OPS]; // maxpool ops: int32 argmax (stored in float-sized slots)
    size_t grad[2];            // ping-pong gradient buffers (max_images * max_act)
    size_t scratch;            // conv scratch (largest conv)
    size_t dtheta;             // weight gradients the op backward functions produce (discarded)
    size_t logits;             // (max_images, classes)
    float *ws;
    int n_last;                // images of the last forward pass
} InputGrad;

void input_grad_init(InputGrad *g, const TargetArch *a, int max_images);
void input_grad_free(InputGrad *g);

// Forward pass of the network theta (n_weights floats) on n images (n, in_size), keeping every
// activation for input_grad_backward. probs (n, classes) softmax, may be NULL.
void input_grad_forward(InputGrad *g, const float *theta, int n, const float *images, float *probs);

// After input_grad_forward with the same theta and images: dimages (n, in_size) = the gradient
// with respect to the images of a loss whose gradient with respect to the logits is dlogits
// (n, classes).
void input_grad_backward(InputGrad *g, const float *theta, int n, const float *images,
                         const float *dlogits, float *dimages);

// Both passes for the cross-entropy sum_i -log p(labels[i] | images[i]): returns the loss (in
// double), writes dimages (n, in_size) = d loss / d images and probs (n, classes) if not NULL.
double input_grad_ce(InputGrad *g, const float *theta, int n, const float *images,
                     const uint8_t *labels, float *probs, float *dimages);

// Targeted fast gradient sign step: out[i] = clip(x[i] - eps * sign(grad[i]), 0, 1) with sign(0) = 0,
// where grad is d CE(target class) / dx (descending the target's cross-entropy). out may be x.
void fgsm_targeted(size_t n, const float *x, const float *grad, float eps, float *out);

// dlogits of member m for the ensemble loss -log(mean_m p_m[target]) of one image:
// dlogits_m[c] = w_m * (p_m[c] - [c == target]) with w_m = p_m[target] / (M * mean_p[target]).
// Returns w_m (0 when mean_p[target] is 0).
double ensemble_target_weight(double p_member_target, double mean_target, int M);

// Shannon entropy -sum_c p_c log p_c (natural log, 0 log 0 = 0) of one probability vector.
double prob_entropy(const double *p, int C);

// Out-of-distribution scores of an ensemble of M members on n inputs, probs (M, n, C):
//   entropy[i] = H(mean_m p_m(i))                   (predictive entropy)
//   mi[i]      = H(mean_m p_m(i)) - mean_m H(p_m(i))  (mutual information, >= 0 up to rounding)
//   maxprob[i] = 1 - max_c mean_m p_m(i)[c]
// Any output may be NULL. Larger means "more likely an outlier" for all three.
void ood_scores(const float *probs, int M, int n, int C, double *entropy, double *mi, double *maxprob);

// Initialization of directly trained target networks, every bias 0:
//   INIT_HE:     layers followed by ReLU: normal, sigma = sqrt(2 / fan_in) (He et al. 2015); the
//                output layer: Glorot uniform (Keras' default for a softmax layer)
//   INIT_GLOROT: every layer Glorot uniform, U(-a, a), a = sqrt(6 / (fan_in + fan_out)), with
//                fan_out = kernel^2 * filters for conv, units for fc (Keras / TensorFlow's default)
// Network k of the call is network first + k of the seed: element j of it is drawn from Philox
// keyed by (seed, CLASSIFIER_RNG_STREAM_INIT, first + k, j), so it depends on nothing else.
typedef enum { INIT_HE = 0, INIT_GLOROT = 1 } ClassifierInit;
void classifier_init(const TargetArch *a, ClassifierInit kind, uint64_t seed, long long first, int n_nets,
                     float *theta);

#endif
