// train.h: one training step and validation, shaped for P ranks (DESIGN.md "One training step
// on P ranks"): each rank owns samples [start, start + n_local) of the noise batch; z and images
// come from the counter-based RNG keyed by (seed, step, global sample index); batch norm is
// synchronized; gauge-fixed weights are all-gathered for the entropy; gradients are all-reduced
// and every rank applies the same Adam update.
#ifndef HT_TRAIN_H
#define HT_TRAIN_H

#include "comm.h"
#include "data.h"
#include "entropy.h"
#include "hyper.h"
#include "model.h"
#include "target.h"

typedef struct {
    double loss;        // lambda * ce - entropy (+ toy l2 term)
    double ce;          // mean cross-entropy (toy: mean -log p)
    double entropy;     // Kozachenko–Leonenko estimate over the batch
    double acc;         // training accuracy of this step's networks on their images (toy: 0)
    double lr, lambda;
    double grad_norm;   // L2 norm of the all-reduced gradient (trainer_step only)
} StepStats;

#define VAL_HIST_BINS 20
typedef struct {
    int n_nets, n_images;
    double mean_acc, std_acc, min_acc, max_acc;
    double majority_acc;     // ensemble by majority vote (ties: lowest class)
    double mean_prob_acc;    // ensemble by mean probability
    double mean_nll;         // mean single-network NLL
    double entropy;          // estimate over the n_nets gauge-fixed samples
    int hist[VAL_HIST_BINS]; // per-network accuracies in [0,1] split into equal bins
    double *net_acc;         // (n_nets) per-network accuracy (owned by the trainer)
} ValStats;

typedef struct {
    double hyper, gauge, target, entropy, comm, adam, data; // seconds, accumulated
} StepTimes;

typedef struct {
    Model *m;
    Comm *comm;
    const Mnist *data;       // NULL for the toy task
    BnConfig bn;
    int B, start, n_local;   // noise batch and this rank's shard
    int V, vstart, v_local;  // validation networks and this rank's shard
    int val_chunk;           // validation images per forward call
    int n_scales;
    HyperNet hn;
    TargetNet tn;
    EntropyWork ew;          // sized for max(B, V)
    Sampler sampler;
    size_t out_dim;          // floats per generated sample (n_weights, or 2 for the toy)
    float *z;                // (max local, z_dim)
    float *raw;              // (max local, out_dim) generated, before gauge fixing
    float *all;              // (max(B, V), out_dim) gauge-fixed samples of every rank
    float *scales;           // (max local, n_scales)
    float *dtheta;           // (max local, out_dim)
    float *images;           // (n_local, ips, in_size)
    uint8_t *labels;         // (n_local, ips)
    double *loss_k;          // (max local)
    int *correct_k;          // (max local)
    float *probs;            // (v_local, val_chunk, classes)
    float *ens;              // (2, val images, classes): votes, probability sums
    double *net_acc;         // (V)
    StepTimes times;
} Trainer;

void trainer_init(Trainer *tr, Model *m, Comm *comm, const Mnist *data);
void trainer_free(Trainer *tr);

// One step: forward, loss, backward, all-reduce, Adam; m->step advances. Fatal if the loss is
// not finite (before any update is applied).
void trainer_step(Trainer *tr, StepStats *st);

// Loss and gradient of the current step's batch without the update (for gradient checks):
// leaves the full gradient in m->grads.
void trainer_loss_grad(Trainer *tr, StepStats *st);

// Validation: V fresh z (keyed by the current step), batch norm in evaluation mode.
void trainer_validate(Trainer *tr, ValStats *vs);

// Toy task: writes the generator's curve for n uniformly spaced z in [-1, 1] as CSV
// (z,x,y,log_density,nn_distance) to path (rank 0 only).
void trainer_write_toy_curve(Trainer *tr, const char *path, int n);

#endif
