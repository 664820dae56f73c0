// arch.h: shapes derived from the job: the target network's ops and weight layout, and the
// hypernetwork's parameter table (one flat buffer, named views).
//
// Target weight layout (one network = one flat vector of n_weights floats, 20,018 for MNIST):
// parametrized layers in order; within a layer, filter-major: filter i occupies
// [offset + i*(fan_in+1), offset + (i+1)*(fan_in+1)): fan_in weights, then the bias.
// Conv weights of a filter are ordered (kh, kw, cin); activations are NHWC per image, and a
// fully connected layer after a conv reads the NHWC flattening (h, w, c). In both cases element
// j of a filter reads input channel j % in_channels (used by gauge fixing).
#ifndef HT_ARCH_H
#define HT_ARCH_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

typedef struct {
    OpType type;
    int in_h, in_w, in_c;   // input activation shape of one image (NHWC)
    int out_h, out_w, out_c;
    int kernel;             // conv kernel / pool window
    int layer;              // conv/fc: index into TargetArch.layers; else -1
} TargetOp;

typedef struct {
    int filters;            // output channels or units
    int fan_in;             // weights per filter, bias excluded (k*k*cin or input features)
    int in_channels;        // channels of the input activation
    size_t offset;          // start in the flat weight vector
    size_t size;            // filters * (fan_in + 1)
    int op;                 // index into TargetArch.ops
} TargetLayer;

typedef struct {
    int in_h, in_w, in_c, in_size; // one input image
    int classes;
    int n_ops;
    TargetOp ops[HT_MAX_OPS];
    int n_layers;
    TargetLayer layers[HT_MAX_OPS];
    size_t n_weights;       // 20,018 for the paper's network
    size_t max_act;         // largest activation of one image over all op inputs/outputs
} TargetArch;

// Builds the target architecture from the job (fatal with a clear message if inconsistent).
void arch_build_target(TargetArch *a, const Job *job);

// ---- Hypernetwork parameter table ----
#define HT_MAX_VIEWS 128
#define HT_NAME_MAX 64

typedef struct {
    char name[HT_NAME_MAX]; // e.g. "extractor/dense0/kernel", "gen1/bn0/gamma"
    size_t offset;          // in floats, into the flat buffer
    int ndim;
    int shape[2];
    size_t size;
} ParamView;

typedef struct {
    int n_views;
    ParamView views[HT_MAX_VIEWS];   // trainable parameters, in flat-buffer order
    size_t n_params;                 // 633,640 for the paper job
    size_t n_weights;                // dense kernels only (631,240)
    int n_stats;
    ParamView stats[HT_MAX_VIEWS];   // batch-norm running averages ("…/bn0/moving_mean", "…/moving_var")
    size_t n_stat;
} ParamTable;

// One MLP of the hypernetwork: dims[0] -> dims[1] -> ... -> dims[n_dense]. Hidden layers
// (all but the last dense) are followed by leaky ReLU then batch norm; the last is linear.
typedef struct {
    char name[HT_NAME_MAX];
    int n_dense;
    int dims[HT_MAX_HIDDEN + 2];
    int kernel[HT_MAX_HIDDEN + 1];   // view index of dense i's kernel (dims[i], dims[i+1])
    int gamma[HT_MAX_HIDDEN + 1], beta[HT_MAX_HIDDEN + 1];   // view indices, hidden layers only
    int mean[HT_MAX_HIDDEN + 1], var[HT_MAX_HIDDEN + 1];     // stats indices, hidden layers only
} MlpArch;

typedef struct {
    int z_dim, code_size;
    int n_codes;             // codes produced by the extractor (57 for MNIST)
    MlpArch extractor;       // z_dim -> ... -> n_codes * code_size
    int n_gens;              // = target n_layers
    MlpArch gens[HT_MAX_OPS];// code_size -> ... -> per-code output
    int gen_codes[HT_MAX_OPS];   // codes (rows per sample) for generator l: filters or 1
    int gen_code_offset[HT_MAX_OPS]; // first code index of generator l
    int gen_out[HT_MAX_OPS];     // outputs per code: fan_in+1 or filters*(fan_in+1)
    ParamTable table;
} HyperArch;

// Builds the hypernetwork (MNIST task) or the toy generator from the job and target.
void arch_build_hyper(HyperArch *h, const Job *job, const TargetArch *t);

// Prints the parameter counts and table summary.
void arch_print(const HyperArch *h, const TargetArch *t, FILE *out);

#endif
