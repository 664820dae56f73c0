// classifier.c: input gradients, fast gradient sign steps, ensemble OOD scores and the He/Glorot
// initialization of directly trained target networks (see classifier.h).
//
// The input gradient is the network's backward pass continued one op further than training's
// (target.c stops at the first conv, whose input gradient training never needs): every op keeps
// its own output buffer, and the backward walks ops n_ops-1 .. 0 through two ping-pong gradient
// buffers, with op 0 writing dLoss/dImages. The per-op weight gradients that target.h's backward
// functions always produce go to a scratch vector and are ignored.
#include "classifier.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "rng.h"
#include "target.h"

static size_t op_out(const TargetOp *op) { return (size_t)op->out_h * op->out_w * op->out_c; }
static size_t op_in(const TargetOp *op) { return (size_t)op->in_h * op->in_w * op->in_c; }
static size_t r16(size_t n) { return (n + 15) & ~(size_t)15; }

void input_grad_init(InputGrad *g, const TargetArch *a, int max_images) {
    HT_CHECK(max_images >= 1, "input_grad_init: max_images %d < 1", max_images);
    memset(g, 0, sizeof(*g));
    g->arch = a;
    g->max_images = max_images;
    const size_t n = (size_t)max_images;
    size_t off = 0, scratch = 16, max_act = (size_t)a->in_size;
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        g->act[i] = off;
        off += r16(n * op_out(op));
        if (op->type == OP_MAXPOOL) { g->argmax[i] = off; off += r16(n * op_out(op)); }
        if (op->type == OP_CONV) {
            const size_t s = target_conv_scratch_floats(op, max_images);
            if (s > scratch) scratch = s;
        }
        if (op_out(op) > max_act) max_act = op_out(op);
        if (op_in(op) > max_act) max_act = op_in(op);
    }
    g->grad[0] = off; off += r16(n * max_act);
    g->grad[1] = off; off += r16(n * max_act);
    g->scratch = off; off += r16(scratch);
    g->dtheta = off; off += r16(a->n_weights);
    g->logits = off; off += r16(n * (size_t)a->classes);
    g->ws = XALLOC_FLOATS(off);
}

void input_grad_free(InputGrad *g) {
    free(g->ws);
    memset(g, 0, sizeof(*g));
}

void input_grad_forward(InputGrad *g, const float *theta, int n, const float *images, float *probs) {
    const TargetArch *a = g->arch;
    HT_CHECK(n >= 1 && n <= g->max_images, "input_grad_forward: %d images (the workspace holds %d)", n,
             g->max_images);
    float *ws = g->ws;
    const float *in = images;
    for (int i = 0; i < a->n_ops; i++) {
        const TargetOp *op = &a->ops[i];
        float *out = ws + g->act[i];
        const float *w = op->layer >= 0 ? theta + a->layers[op->layer].offset : NULL;
        switch (op->type) {
        case OP_CONV: target_conv_forward(op, n, in, w, ws + g->scratch, out); break;
        case OP_FC: target_fc_forward(op, n, in, w, out); break;
        case OP_RELU: target_relu_forward((size_t)n * op_out(op), in, out); break;
        case OP_MAXPOOL: target_maxpool_forward(op, n, in, out, (int32_t *)(ws + g->argmax[i])); break;
        }
        in = out;
    }
    memcpy(ws + g->logits, in, (size_t)n * a->classes * sizeof(float));
    g->n_last = n;
    if (probs) target_softmax_ce(n, a->classes, in, NULL, 1.0f, probs, NULL, NULL, NULL);
}

void input_grad_backward(InputGrad *g, const float *theta, int n, const float *images,
                         const float *dlogits, float *dimages) {
    const TargetArch *a = g->arch;
    HT_CHECK(n == g->n_last, "input_grad_backward: %d images, but the forward pass ran %d", n, g->n_last);
    float *ws = g->ws;
    int cur = 0;
    memcpy(ws + g->grad[0], dlogits, (size_t)n * a->classes * sizeof(float));
    for (int i = a->n_ops - 1; i >= 0; i--) {
        const TargetOp *op = &a->ops[i];
        const float *in = i > 0 ? ws + g->act[i - 1] : images;
        float *dout = ws + g->grad[cur];
        float *din = i > 0 ? ws + g->grad[1 - cur] : dimages;
        const float *w = op->layer >= 0 ? theta + a->layers[op->layer].offset : NULL;
        float *dw = ws + g->dtheta + (op->layer >= 0 ? a->layers[op->layer].offset : 0);
        switch (op->type) {
        case OP_CONV: target_conv_backward(op, n, in, w, dout, ws + g->scratch, dw, din); break;
        case OP_FC: target_fc_backward(op, n, in, w, dout, dw, din); break;
        case OP_RELU: target_relu_backward((size_t)n * op_out(op), ws + g->act[i], dout, din); break;
        case OP_MAXPOOL:
            target_maxpool_backward(op, n, (const int32_t *)(ws + g->argmax[i]), dout, din);
            break;
        }
        cur = 1 - cur;
    }
}

double input_grad_ce(InputGrad *g, const float *theta, int n, const float *images,
                     const uint8_t *labels, float *probs, float *dimages) {
    input_grad_forward(g, theta, n, images, NULL);
    const TargetArch *a = g->arch;
    float *dl = XALLOC_FLOATS((size_t)n * a->classes);
    double loss = 0.0;
    target_softmax_ce(n, a->classes, g->ws + g->logits, labels, 1.0f, probs, dl, &loss, NULL);
    input_grad_backward(g, theta, n, images, dl, dimages);
    free(dl);
    return loss;
}

void fgsm_targeted(size_t n, const float *x, const float *grad, float eps, float *out) {
    for (size_t i = 0; i < n; i++) {
        const float s = grad[i] > 0.0f ? 1.0f : grad[i] < 0.0f ? -1.0f : 0.0f;
        float v = x[i] - eps * s;
        out[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
}

double ensemble_target_weight(double p_member_target, double mean_target, int M) {
    return mean_target > 0.0 ? p_member_target / ((double)M * mean_target) : 0.0;
}

double prob_entropy(const double *p, int C) {
    double h = 0.0;
    for (int c = 0; c < C; c++)
        if (p[c] > 0.0) h -= p[c] * log(p[c]);
    return h;
}

void ood_scores(const float *probs, int M, int n, int C, double *entropy, double *mi, double *maxprob) {
    double *mean = XMALLOC((size_t)C * sizeof(double)), *pm = XMALLOC((size_t)C * sizeof(double));
    for (int i = 0; i < n; i++) {
        double mean_h = 0.0;
        for (int c = 0; c < C; c++) mean[c] = 0.0;
        for (int m = 0; m < M; m++) {
            const float *p = probs + ((size_t)m * n + i) * C;
            for (int c = 0; c < C; c++) { pm[c] = p[c]; mean[c] += p[c]; }
            mean_h += prob_entropy(pm, C);
        }
        double best = 0.0;
        for (int c = 0; c < C; c++) {
            mean[c] /= M;
            if (mean[c] > best) best = mean[c];
        }
        const double h = prob_entropy(mean, C);
        if (entropy) entropy[i] = h;
        if (mi) mi[i] = h - mean_h / M;
        if (maxprob) maxprob[i] = 1.0 - best;
    }
    free(mean);
    free(pm);
}

// Standard normal from Philox (Box-Muller on two open-interval uniforms).
static double normal_at(uint64_t seed, uint32_t net, uint32_t j) {
    const Philox4 r = philox4x32(seed, CLASSIFIER_RNG_STREAM_INIT, net, j, 0);
    const double u1 = rng_u01_open(r.v[0]), u2 = rng_u01_open(r.v[1]);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static double uniform_at(uint64_t seed, uint32_t net, uint32_t j) {
    const Philox4 r = philox4x32(seed, CLASSIFIER_RNG_STREAM_INIT, net, j, 0);
    return 2.0 * rng_u01_open(r.v[2]) - 1.0;   // (-1, 1)
}

void classifier_init(const TargetArch *a, ClassifierInit kind, uint64_t seed, long long first, int n_nets,
                     float *theta) {
    for (int k = 0; k < n_nets; k++) {
        float *t = theta + (size_t)k * a->n_weights;
        const uint32_t net = (uint32_t)(first + k);
        for (int l = 0; l < a->n_layers; l++) {
            const TargetLayer *L = &a->layers[l];
            const TargetOp *op = &a->ops[L->op];
            const int fan_out = op->type == OP_CONV ? op->kernel * op->kernel * L->filters : L->filters;
            const int last = l == a->n_layers - 1;
            const int he = kind == INIT_HE && !last;
            const double sigma = sqrt(2.0 / L->fan_in), lim = sqrt(6.0 / (L->fan_in + fan_out));
            for (int f = 0; f < L->filters; f++)
                for (int j = 0; j <= L->fan_in; j++) {
                    const size_t idx = L->offset + (size_t)f * (L->fan_in + 1) + j;
                    if (j == L->fan_in) { t[idx] = 0.0f; continue; }   // bias
                    t[idx] = (float)(he ? sigma * normal_at(seed, net, (uint32_t)idx)
                                        : lim * uniform_at(seed, net, (uint32_t)idx));
                }
        }
    }
}
