#include "hyper.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

// Rows generator l processes for max_n samples (one per code), checked: the MLP takes int rows.
static int gen_rows(const HyperArch *h, int l, int max_n) {
    const size_t rows = XMUL(max_n, h->gen_codes[l], "generator %d: %d samples x %d codes", l + 1,
                             max_n, h->gen_codes[l]);
    HT_CHECK(rows <= (size_t)INT_MAX, "generator %d: %d samples per rank x %d codes (filters) = %zu rows "
             "exceed the limit of %d (use a smaller \"batch\"/\"val_samples\" or more ranks)",
             l + 1, max_n, h->gen_codes[l], rows, INT_MAX);
    return (int)rows;
}

// The generators as one MlpGroup (built on use: it points into hn).
static MlpGroup gen_group(HyperNet *hn) {
    MlpGroup g;
    memset(&g, 0, sizeof(g));
    g.n = hn->h->n_gens;
    for (int l = 0; l < g.n; l++) {
        g.m[l] = &hn->h->gens[l];
        g.c[l] = &hn->gen[l];
    }
    return g;
}

size_t hyper_floats(const HyperArch *h, int max_n) {
    size_t n = mlp_cache_floats(&h->extractor, max_n);
    for (int l = 0; l < h->n_gens; l++) {
        const int rows = gen_rows(h, l, max_n);
        n = XADD(n, mlp_cache_floats(&h->gens[l], rows), "generator %d", l + 1);
        // gen_in, dgen_in (code_size each) and dgen_out per row
        n = XADD(n, XMUL(rows, 2 * (size_t)h->code_size + (size_t)h->gen_out[l], "generator %d", l + 1),
                 "generator %d", l + 1);
    }
    const size_t codes = XMUL(max_n, (size_t)h->n_codes, "codes of %d samples", max_n);
    return XADD(n, XMUL(codes, h->code_size, "codes of %d samples", max_n), "hypernetwork activations");
}

void hyper_init(HyperNet *hn, const HyperArch *h, const TargetArch *t, int max_n) {
    memset(hn, 0, sizeof(*hn));
    hn->h = h;
    hn->t = t;
    hn->max_n = max_n;
    mlp_cache_init(&hn->ext, &h->extractor, max_n);
    for (int l = 0; l < h->n_gens; l++) {
        const int rows = gen_rows(h, l, max_n);
        mlp_cache_init(&hn->gen[l], &h->gens[l], rows);
        hn->gen_in[l] = XALLOC_FLOATS((size_t)rows * h->code_size);
        hn->dgen_in[l] = XALLOC_FLOATS((size_t)rows * h->code_size);
        hn->dgen_out[l] = XALLOC_FLOATS((size_t)rows * h->gen_out[l]);
    }
    const MlpGroup g = gen_group(hn);
    hn->gen_red = XCALLOC(mlp_group_red_doubles(&g) + 1, sizeof(double));
    hn->dcodes = XALLOC_FLOATS(XMUL(XMUL(max_n, h->n_codes, "codes"), h->code_size, "codes"));
}

void hyper_free(HyperNet *hn) {
    mlp_cache_free(&hn->ext);
    for (int l = 0; l < hn->h->n_gens; l++) {
        mlp_cache_free(&hn->gen[l]);
        free(hn->gen_in[l]);
        free(hn->dgen_in[l]);
        free(hn->dgen_out[l]);
    }
    free(hn->gen_red);
    free(hn->dcodes);
}

void hyper_forward(HyperNet *hn, const float *params, float *stats, const float *z, int n,
                   int global_n, int train, const BnConfig *bn, Comm *comm, float *raw) {
    const HyperArch *h = hn->h;
    const TargetArch *t = hn->t;
    HT_CHECK(n <= hn->max_n, "hypernetwork: %d samples exceed the %d it was set up for", n, hn->max_n);
    hn->n = n;
    mlp_forward(&h->extractor, &h->table, params, stats, &hn->ext, z, n, global_n, train, bn, comm);
    const float *codes = mlp_out(&h->extractor, &hn->ext); // (n, n_codes, code_size)
    const size_t cs = (size_t)h->code_size;
    const float *x[HT_MAX_OPS];
    int rows[HT_MAX_OPS], global_rows[HT_MAX_OPS];
    for (int l = 0; l < h->n_gens; l++) {
        const int nc = h->gen_codes[l];
        for (int b = 0; b < n; b++)  // (n, nc, code_size) <- codes[b, off:off+nc, :]
            memcpy(hn->gen_in[l] + (size_t)b * nc * cs,
                   codes + ((size_t)b * h->n_codes + h->gen_code_offset[l]) * cs, nc * cs * sizeof(float));
        x[l] = hn->gen_in[l];
        rows[l] = n * nc;
        global_rows[l] = global_n * nc;
    }
    const MlpGroup g = gen_group(hn);
    mlp_group_forward(&g, &h->table, params, stats, x, rows, global_rows, train, bn, hn->gen_red, comm);
    for (int l = 0; l < h->n_gens; l++) {
        // Generator output (n, nc * gen_out) is exactly layer l's block of each sample.
        const float *out = mlp_out(&h->gens[l], &hn->gen[l]);
        const size_t size = t->layers[l].size;
        for (int b = 0; b < n; b++)
            memcpy(raw + (size_t)b * t->n_weights + t->layers[l].offset, out + (size_t)b * size,
                   size * sizeof(float));
    }
}

void hyper_backward(HyperNet *hn, const float *params, float *grads, const float *draw,
                    const BnConfig *bn, Comm *comm) {
    const HyperArch *h = hn->h;
    const TargetArch *t = hn->t;
    const int n = hn->n;
    const size_t cs = (size_t)h->code_size;
    const float *dout[HT_MAX_OPS];
    for (int l = 0; l < h->n_gens; l++) {
        const size_t size = t->layers[l].size;
        for (int b = 0; b < n; b++)
            memcpy(hn->dgen_out[l] + (size_t)b * size, draw + (size_t)b * t->n_weights + t->layers[l].offset,
                   size * sizeof(float));
        dout[l] = hn->dgen_out[l];
    }
    const MlpGroup g = gen_group(hn);
    mlp_group_backward(&g, &h->table, params, grads, dout, hn->dgen_in, bn, hn->gen_red, comm);
    for (int l = 0; l < h->n_gens; l++) {
        const int nc = h->gen_codes[l];
        for (int b = 0; b < n; b++)
            memcpy(hn->dcodes + ((size_t)b * h->n_codes + h->gen_code_offset[l]) * cs,
                   hn->dgen_in[l] + (size_t)b * nc * cs, nc * cs * sizeof(float));
    }
    mlp_backward(&h->extractor, &h->table, params, grads, &hn->ext, hn->dcodes, NULL, bn, comm);
}
