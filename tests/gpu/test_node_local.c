// test_node_local: the node-local rank (comm_node_local: MPI_Comm_split_type) and the device
// decision across real MPI ranks with faked device lists: each rank builds its DevselRank the way
// mpi/comm_nccl.c devcomm_select_device does (node from comm_node_local, bus ids faked), the
// reports are all-gathered with comm_allgatherv_i32, and devsel_choose decides on every rank.
// Run under mpirun -np P (tests/t_gpu_emu.sh, P = 3, one host):
//   1. node 0 on every rank, local ranks 0..P-1, local size P
//   2. every rank sees all P GPUs -> rank r takes device r
//   3. every rank sees only its own GPU (per-rank CUDA_VISIBLE_DEVICES) -> device 0 each, valid
//   4. ranks 0 and P-1 are given the same GPU -> every rank gets the error naming both
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "devsel.h"
#include "testutil.h"

static TestState g_ts;

static int decide(Comm *c, DevselRank *me, char *msg, size_t n) {
    enum { INTS = sizeof(DevselRank) / sizeof(int) };
    DevselRank *all = malloc(sizeof(DevselRank) * (size_t)c->size);
    int *counts = malloc(sizeof(int) * (size_t)c->size), *displs = malloc(sizeof(int) * (size_t)c->size);
    for (int r = 0; r < c->size; r++) { counts[r] = INTS; displs[r] = r * INTS; }
    comm_allgatherv_i32(c, (const int *)me, (int *)all, counts, displs);
    const int d = devsel_choose(all, c->size, c->rank, NULL, NULL, msg, n);
    free(all); free(counts); free(displs);
    return d;
}

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    const int P = c.size, r = c.rank;
    if (P > DEVSEL_MAX_GPUS) { fprintf(stderr, "test_node_local: at most %d ranks\n", DEVSEL_MAX_GPUS); return 2; }
    DevselRank me;
    memset(&me, 0, sizeof(me));
    int lr = -1, ls = -1;
    comm_node_local(&c, &me.node, &lr, &ls);
    snprintf(me.host, sizeof(me.host), "testhost");
    int ok = comm_allreduce_max_int(&c, !(me.node == 0 && lr == r && ls == P)) == 0;
    if (r == 0) T_CHECK(&g_ts, ok, "comm_node_local on %d ranks of one host: node 0, local rank = rank, local size %d", P, P);
    char msg[768] = "";
    me.n_visible = P;
    for (int g = 0; g < P; g++) snprintf(me.bus[g], DEVSEL_BUS, "0000:%02x:00.0", (0x19 + g) & 0xff);
    ok = comm_allreduce_max_int(&c, decide(&c, &me, msg, sizeof(msg)) != r) == 0;
    if (r == 0) T_CHECK(&g_ts, ok, "every rank sees all %d GPUs: rank r takes device r", P);
    me.n_visible = 1;
    snprintf(me.bus[0], DEVSEL_BUS, "0000:%02x:00.0", (0x19 + r) & 0xff);
    ok = comm_allreduce_max_int(&c, decide(&c, &me, msg, sizeof(msg)) != 0) == 0;
    if (r == 0) T_CHECK(&g_ts, ok, "each rank sees only its own GPU: device 0 on every rank");
    if (r == P - 1) snprintf(me.bus[0], DEVSEL_BUS, "0000:19:00.0");
    const int d = decide(&c, &me, msg, sizeof(msg));
    char want[64];
    snprintf(want, sizeof(want), "ranks 0 and %d", P - 1);
    ok = comm_allreduce_max_int(&c, !(d < 0 && strstr(msg, want) && strstr(msg, "0000:19:00.0"))) == 0;
    if (r == 0) T_CHECK(&g_ts, ok, "ranks 0 and %d given the same GPU: every rank fails: %.90s...", P - 1, msg);
    const int rc = r == 0 ? test_summary(&g_ts, "test_node_local") : 0;
    const int any = comm_allreduce_max_int(&c, rc);
    comm_finalize(&c);
    return any;
}
