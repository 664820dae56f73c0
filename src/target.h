// target.h: the target network (the network whose weights the hypernetwork generates), run for
// many generated networks at once, each on its own images. CPU reference: per-network im2col +
// OpenBLAS sgemm, OpenMP over networks. Layouts are described in arch.h.
#ifndef HT_TARGET_H
#define HT_TARGET_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"

typedef struct {
    const TargetArch *arch;
    int max_images;   // images per network per call
    int n_threads;    // OpenMP threads (workspaces)
    size_t ws_floats; // floats of one thread's workspace
    float *ws;        // (n_threads, ws_floats)
} TargetNet;

void target_init(TargetNet *t, const TargetArch *arch, int max_images, int n_threads);
void target_free(TargetNet *t);

// Forward pass of n_nets networks. Network k uses theta + k*n_weights and the n_img images at
// images + k*img_stride (each in_size floats, NHWC, in [0, 1]); img_stride = 0 shares one set.
// probs: (n_nets, n_img, classes) softmax probabilities.
void target_forward(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                    size_t img_stride, float *probs);

// Cross-entropy of each network on its images. labels + k*label_stride holds network k's labels.
// loss[k] = sum over its images of -log p(label), correct[k] = images whose argmax is the label.
// If dtheta != NULL: dtheta (n_nets, n_weights) = scale * d(loss[k]) / d(theta_k), overwritten.
void target_loss_grad(TargetNet *t, int n_nets, const float *theta, int n_img, const float *images,
                      size_t img_stride, const uint8_t *labels, size_t label_stride, float scale,
                      double *loss, int *correct, float *dtheta);

#endif
