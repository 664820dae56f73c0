// adv_core.h: the computation behind `hyperanalyze adversarial` (analysis/adversarial.c is the thin
// command; tests/test_adversarial.c calls these directly). The paper's §4.2.3 protocol as its
// original code ran it, one image at a time (docs/analysis.md, "adversarial"):
//
//   image i (label y): networks drawn from a pool for this image alone (adv_pick_networks): a
//   source, one other network and an ensemble of M more; a target y' != y (adv_target_class).
//   Skipped when the source misclassifies x. Else fast gradient sign attacks for every eps of the
//   grid, untargeted x + eps sign(d CE(y)/dx) and targeted x - eps sign(d CE(y')/dx), clipped to
//   [0, 1] unless cfg.clip = 0, crafted on the source (tested on the source, the other network and
//   the ensemble's majority vote) and on the ensemble's own loss -log mean_m p_m(class | x) (tested
//   on the ensemble). Fooled: untargeted prediction != y, targeted prediction == y'. Result: the
//   smallest fooling eps of each line, INFINITY when none on the grid fools it.
#ifndef HT_ADV_CORE_H
#define HT_ADV_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "classifier.h"
#include "sample.h"
#include "target.h"

#define ADV_RNG_STREAM_TARGET 202u   // y' of image i: Philox (seed, 202, i)
#define ADV_RNG_STREAM_PICK 203u     // networks of image i: Philox (seed, 203, i, slot, attempt)

enum { ADV_UNTARGETED = 0, ADV_TARGETED = 1, ADV_MODES = 2 };
// Lines of Fig. 8: crafted on the source and tested on it / on one other network / on the
// ensemble (transfer); crafted on the ensemble and tested on it (white-box).
enum { ADV_SOURCE = 0, ADV_OTHER = 1, ADV_ENS_TRANSFER = 2, ADV_ENS_WHITEBOX = 3, ADV_LINES = 4 };
extern const char *const adv_mode_names[ADV_MODES];  // "untargeted", "targeted"
extern const char *const adv_line_names[ADV_LINES];  // "source", "other", "ensemble_transfer", ...

typedef struct {
    int members;          // M: ensemble size; each image uses M + 2 networks of the pool
    int n_eps;            // E
    const double *eps;    // (E) ascending, >= 0
    int clip;             // 1: adversarial images clipped to [0, 1]
    uint64_t seed;        // networks and targets of image i depend on (seed, i) only
    int block;            // eps values per ensemble evaluation, ascending; a mode stops at the first
                          // block that fools the ensemble (0: the whole grid at once; same results)
} AdvConfig;

// The networks one population offers: all in memory (theta != NULL) or read from a sample set.
typedef struct {
    const TargetArch *arch;
    long long n;          // networks
    const float *theta;   // (n, n_weights), or NULL
    const SampleSet *set; // used when theta is NULL
} AdvPool;

// Per-image result.
typedef struct {
    int attacked;                         // 0: skipped (the source misclassifies the clean image)
    double eps_min[ADV_MODES][ADV_LINES]; // smallest fooling eps; INFINITY: never; NAN: skipped
} AdvImage;

typedef struct {
    const TargetArch *arch;
    int M, E, n_threads;
    TargetNet tn;         // up to 2E images per network
    InputGrad *ig;        // (n_threads), 2 images each
    float *nets;          // (M + 2, n_weights): source, other, members
    float *probs;         // (M + 2, 2E, C)
    float *adv;           // (2E, in_size): untargeted eps_0..eps_E-1, then targeted
    float *x2;            // (2, in_size): the clean image twice
    float *grad;          // (2, in_size): d loss(y) / dx, d loss(y') / dx
    float *member_grads;  // (M, 2, in_size)
    float *dlogits;       // (n_threads, 2, C)
    int *votes;           // (C)
} AdvWork;

void adv_work_init(AdvWork *w, const TargetArch *a, const AdvConfig *cfg);
void adv_work_free(AdvWork *w);

// Target class of image i: uniform over the C - 1 classes != y.
int adv_target_class(uint64_t seed, long long i, int y, int C);

// k distinct indices of [0, n) for image i, in slot order (slot 0 the source, 1 the other
// network, 2.. the ensemble): slot s draws rng_below(seed, 203, i, s, attempt) for attempt = 0,
// 1, ... until it gets an index no earlier slot holds (uniform without replacement). Fatal when
// n < k ("<what> holds n networks, but ... needs k").
void adv_pick_networks(uint64_t seed, long long i, long long n, int k, const char *what, int64_t *out);

// out = x + dir * eps * sign(grad), sign(0) = 0, then clipped to [0, 1] if clip. dir = +1 ascends
// the loss (untargeted), -1 descends it (targeted). out may be x.
void adv_fgsm(size_t n, const float *x, const float *grad, float eps, int dir, int clip, float *out);

// Majority vote of M members on image i of probs (M, n, C): the class most members predict (each
// member's argmax, ties to the lowest class); a tie between classes goes to the lowest class (the
// rule of `hyperanalyze ensemble` and of validation). votes: (C) scratch.
int adv_majority(const float *probs, int M, int n, int C, int i, int *votes);

// eps[k] of the first k with fooled[k] != 0, INFINITY when none.
double adv_smallest_eps(const int *fooled, const double *eps, int E);

// d CE / dx of one network at x for the classes cls[0], cls[1] (grad (2, in_size)), probs (2, C).
void adv_source_grad(AdvWork *w, const float *theta, const float *x, const int cls[2], float *probs, float *grad);

// d/dx of the ensemble's loss -log mean_m p_m(cls[j] | x) for j = 0, 1 (grad (2, in_size)),
// members (M, n_weights); summed over members in member order (independent of threads).
void adv_ensemble_grad(AdvWork *w, const float *members, const float *x, const int cls[2], float *grad);

// The whole protocol for image i (x (in_size), label y, target y'); nets (M + 2) receives the pool
// indices used.
void adv_image(AdvWork *w, const AdvConfig *cfg, const AdvPool *pool, long long i, const float *x, int y,
               int target, int64_t *nets, AdvImage *out);

// adv_image for images [0, n) (images (n, in_size)); res (n), nets (n, M + 2). Progress on stderr
// every 10 s when label is not NULL ("adversarial: <label>: 20/1000 images ...").
void adv_run(AdvWork *w, const AdvConfig *cfg, const AdvPool *pool, int n, const float *images,
             const uint8_t *labels, const int *targets, const char *label, int64_t *nets, AdvImage *res);

#endif
