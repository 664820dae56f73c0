// testarch.h: target architectures for the target-network tests (test_target, test_bf16) from a
// short layer list: "c5:32" conv with kernel 5 and 32 filters, "r" relu, "p2" max pool 2, "f8" fc
// with 8 units.
#ifndef HT_TESTARCH_H
#define HT_TESTARCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch.h"

static inline void make_arch(TargetArch *a, int h, int w, int c, int classes, const char *const *spec, int n) {
    Job job;
    memset(&job, 0, sizeof(job));
    job.input_h = h; job.input_w = w; job.input_c = c; job.classes = classes;
    for (int i = 0; i < n; i++) {
        LayerSpec *s = &job.layers[i];
        switch (spec[i][0]) {
        case 'c': s->type = OP_CONV; sscanf(spec[i] + 1, "%d:%d", &s->kernel, &s->filters); break;
        case 'f': s->type = OP_FC; s->filters = atoi(spec[i] + 1); break;
        case 'r': s->type = OP_RELU; break;
        case 'p': s->type = OP_MAXPOOL; s->kernel = atoi(spec[i] + 1); break;
        }
    }
    job.n_layers = n;
    arch_build_target(a, &job);
}

#endif
