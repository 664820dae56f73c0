// comm_single.c: the one-process implementation of comm.h. Collectives are identities (or
// copies), so the training step runs the same code path with and without MPI.
#include "comm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void comm_init(Comm *c, int *argc, char ***argv) {
    (void)argc; (void)argv;
    memset(c, 0, sizeof(*c));
    c->rank = 0;
    c->size = 1;
    c->impl = "single";
}

void comm_finalize(Comm *c) { (void)c; }

void comm_abort(int code) { exit(code); }

void comm_fatal(const char *line, int code) {
    fputs(line, stderr);
    fflush(stderr);
    exit(code);
}

void comm_allreduce_sum_f32(Comm *c, float *buf, size_t n) { (void)c; (void)buf; (void)n; }
void comm_allreduce_sum_f64(Comm *c, double *buf, size_t n) { (void)c; (void)buf; (void)n; }
void comm_bn_allreduce(Comm *c, double *buf, size_t n) { (void)buf; (void)n; c->calls_bn++; }
int comm_allreduce_max_int(Comm *c, int v) { (void)c; return v; }

void comm_allgatherv_f32(Comm *c, const float *send, float *recv, const int *counts, const int *displs) {
    (void)c;
    if (recv + displs[0] != send) memmove(recv + displs[0], send, (size_t)counts[0] * sizeof(float));
}

void comm_allgatherv_i32(Comm *c, const int *send, int *recv, const int *counts, const int *displs) {
    (void)c;
    if (recv + displs[0] != send) memmove(recv + displs[0], send, (size_t)counts[0] * sizeof(int));
}

void comm_bcast(Comm *c, void *buf, size_t bytes, int root) { (void)c; (void)buf; (void)bytes; (void)root; }
void comm_barrier(Comm *c) { (void)c; }
void comm_node_local(Comm *c, int *node, int *local_rank, int *local_size) {
    (void)c;
    *node = 0; *local_rank = 0; *local_size = 1;
}
void comm_check_same(Comm *c, const float *buf, size_t n, const char *what) {
    (void)c; (void)buf; (void)n; (void)what;
}
