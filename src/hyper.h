// hyper.h: the hypernetwork G(z): extractor E maps z to one code per filter (plus one per
// whole-layer generator), each generator W_l maps its codes to filters, and the filters are
// assembled into one flat raw weight vector per sample (layout in arch.h).
#ifndef HT_HYPER_H
#define HT_HYPER_H

#include "mlp.h"

typedef struct {
    const HyperArch *h;
    const TargetArch *t;
    int max_n;                       // most local samples per call
    int n;                           // samples of the last forward pass
    MlpCache ext;                    // rows: samples
    MlpCache gen[HT_MAX_OPS];        // rows: samples * codes of generator l
    float *gen_in[HT_MAX_OPS];       // (n * codes_l, code_size): codes gathered per generator
    float *dgen_out[HT_MAX_OPS];     // (n * codes_l, gen_out_l)
    float *dgen_in[HT_MAX_OPS];      // (n * codes_l, code_size)
    float *dcodes;                   // (n, n_codes * code_size)
    double *gen_red;                 // the generators' batch-norm sums, side by side per level
                                     // (mlp_group_red_doubles: they run as one MlpGroup)
} HyperNet;

void hyper_init(HyperNet *hn, const HyperArch *h, const TargetArch *t, int max_n);
// Floats hyper_init allocates for max_n samples (checked arithmetic; for memory estimates).
size_t hyper_floats(const HyperArch *h, int max_n);
void hyper_free(HyperNet *hn);

// z (n, z_dim) -> raw (n, n_weights). global_n: samples over all ranks (batch-norm counts).
// Training: one comm_bn_allreduce per hidden level of the extractor, then one per hidden level of
// the deepest generator (all generators together); hyper_backward the same again.
void hyper_forward(HyperNet *hn, const float *params, float *stats, const float *z, int n,
                   int global_n, int train, const BnConfig *bn, Comm *comm, float *raw);

// draw (n, n_weights): gradient w.r.t. the raw weights of the last training forward pass;
// parameter gradients are accumulated (+=) into grads.
void hyper_backward(HyperNet *hn, const float *params, float *grads, const float *draw,
                    const BnConfig *bn, Comm *comm);

#endif
