// uncert_eval.c: see uncert_eval.h.
#include "uncert_eval.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifier.h"
#include "cmds_samples.h"
#include "common.h"
#include "resultio.h"

#define READ_BLOCK 16

void uq_logits(const SampleSet *s, long long first, int M, const float *images, int n, float *logits,
               const char *what) {
    const TargetArch *a = &s->arch;
    const int C = a->classes, nt = omp_get_max_threads();
    const size_t W = a->n_weights, isz = (size_t)a->in_size, nc = XMUL(n, C, "images x classes");
    InputGrad *ig = XMALLOC_N((size_t)nt, sizeof(InputGrad));
    for (int t = 0; t < nt; t++) input_grad_init(&ig[t], a, UQ_CHUNK);
    float *theta = XALLOC_FLOATS(XMUL(READ_BLOCK, W, "networks x weights"));
    const double t0 = ht_now();
    double t_last = t0;
    for (int b0 = 0; b0 < M; b0 += READ_BLOCK) {
        const int nb = M - b0 < READ_BLOCK ? M - b0 : READ_BLOCK;
        sampleset_read(s, first + b0, nb, theta);
        #pragma omp parallel num_threads(nt)
        {
            omp_set_num_threads(1);   // OpenBLAS inside: one thread per network
            InputGrad *g = &ig[omp_get_thread_num()];
            #pragma omp for schedule(dynamic, 1) collapse(2)
            for (int k = 0; k < nb; k++)
                for (int i0 = 0; i0 < n; i0 += UQ_CHUNK) {
                    const int c = n - i0 < UQ_CHUNK ? n - i0 : UQ_CHUNK;
                    input_grad_forward(g, theta + (size_t)k * W, c, images + (size_t)i0 * isz, NULL);
                    memcpy(logits + (size_t)(b0 + k) * nc + (size_t)i0 * C, g->ws + g->logits,
                           (size_t)c * C * sizeof(float));
                }
        }
        if (ht_now() - t_last > 10.0) {
            fprintf(stderr, "%s: %d/%d networks on %d images, %.0fs\n", what, b0 + nb, M, n, ht_now() - t0);
            t_last = ht_now();
        }
    }
    for (int t = 0; t < nt; t++) input_grad_free(&ig[t]);
    free(ig);
    free(theta);
}

int uq_sizes(long M, int64_t *sizes) {
    int S = 0;
    for (long sz = 1; sz < M; sz *= 2) sizes[S++] = sz;
    sizes[S++] = M;
    return S;
}

void uq_open_sets(const char *in, const char *baseline, const char *job, long M, SampleSet *s, SampleSet *b,
                  char sha_s[65], char sha_b[65]) {
    TargetArch expect;
    char what[64];
    XSNPRINTF(what, sizeof(what), "--members %ld", M);
    sampleset_open(s, in, an_expected_arch(job, &expect));
    sampleset_require(s, M, what);
    if (baseline) {
        sampleset_open(b, baseline, &s->arch);
        sampleset_require(b, M, what);
        resultio_file_sha256(baseline, sha_b);
    }
    resultio_file_sha256(in, sha_s);
}
