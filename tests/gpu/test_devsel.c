// test_devsel: the GPU assignment of mpi/devsel.c on faked device lists (CPU only, no CUDA):
// tests/t_gpu_emu.sh compiles and runs it in make test.
//   - mpirun style: every rank of a node sees the node's GPUs -> local rank r takes device r
//   - Slurm --gpus-per-task=1 / --gpu-bind: 8 ranks each seeing ONE different GPU -> valid, device 0
//   - two ranks given the same GPU (same PCI bus id) -> error naming both ranks and the bus id
//   - more ranks than GPUs on a node (identical lists) -> "N ranks run on host X but it has only M"
//   - two nodes: local ranks are counted per node; the same bus id on two nodes is no conflict
//   - a rank that sees no GPU -> error; a mix that needs an augmenting path still succeeds
#include <stdio.h>
#include <string.h>

#include "devsel.h"
#include "testutil.h"

static TestState g_ts;

// rank r: node, host, then its visible GPUs as "bus,bus,..." ("" = none)
static void fake(DevselRank *d, int node, const char *host, const char *buses) {
    memset(d, 0, sizeof(*d));
    d->node = node;
    snprintf(d->host, sizeof(d->host), "%s", host);
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", buses);
    for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save))
        snprintf(d->bus[d->n_visible++], DEVSEL_BUS, "%s", t);
}

static const char *B8 = "0000:19:00.0,0000:3b:00.0,0000:4c:00.0,0000:5d:00.0,0000:9b:00.0,0000:bb:00.0,"
                        "0000:cb:00.0,0000:db:00.0";

static void bus_of(char *out, int g) {
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s", B8);
    char *save = NULL, *t = strtok_r(tmp, ",", &save);
    for (int i = 0; i < g; i++) t = strtok_r(NULL, ",", &save);
    snprintf(out, DEVSEL_BUS, "%s", t);
}

int main(void) {
    DevselRank r[16];
    char msg[768];
    int lr, ls;

    // 1. mpirun: 8 ranks, each sees all 8 GPUs of the node
    for (int i = 0; i < 8; i++) fake(&r[i], 0, "gpu01", B8);
    int ok = 1;
    for (int i = 0; i < 8; i++) ok &= devsel_choose(r, 8, i, &lr, &ls, msg, sizeof(msg)) == i && lr == i && ls == 8;
    T_CHECK(&g_ts, ok, "8 ranks, each seeing the node's 8 GPUs: local rank r takes device r");

    // 2. Slurm --gpus-per-task=1: each rank sees only its own GPU (device 0 of its list)
    for (int i = 0; i < 8; i++) { char b[DEVSEL_BUS]; bus_of(b, i); fake(&r[i], 0, "gpu01", b); }
    ok = 1;
    for (int i = 0; i < 8; i++) ok &= devsel_choose(r, 8, i, &lr, &ls, msg, sizeof(msg)) == 0;
    T_CHECK(&g_ts, ok, "8 ranks, each with its own CUDA_VISIBLE_DEVICES (one GPU each): valid, device 0 on each");

    // 3. two ranks given the same physical GPU
    fake(&r[0], 0, "gpu01", "0000:19:00.0");
    fake(&r[1], 0, "gpu01", "0000:3b:00.0");
    fake(&r[2], 0, "gpu01", "0000:19:00.0");
    int d0 = devsel_choose(r, 3, 0, NULL, NULL, msg, sizeof(msg));
    int d2 = devsel_choose(r, 3, 2, NULL, NULL, msg, sizeof(msg));
    T_CHECK(&g_ts, d0 < 0 && d2 < 0 && strstr(msg, "ranks 0 and 2") && strstr(msg, "0000:19:00.0"),
            "ranks 0 and 2 on the same PCI bus id: error on every rank of the node: %s", msg);

    // 4. oversubscription with identical lists (mpirun -np 2 on a one-GPU machine)
    fake(&r[0], 0, "gpu01", "0000:19:00.0");
    fake(&r[1], 0, "gpu01", "0000:19:00.0");
    d0 = devsel_choose(r, 2, 1, NULL, NULL, msg, sizeof(msg));
    T_CHECK(&g_ts, d0 < 0 && strstr(msg, "2 ranks run on host gpu01 but it has only 1 visible GPU(s)"),
            "2 ranks on a 1-GPU host: %s", msg);

    // 5. two nodes of 2 ranks; the same bus ids on both nodes are different GPUs
    fake(&r[0], 0, "gpu01", "0000:19:00.0,0000:3b:00.0");
    fake(&r[1], 0, "gpu01", "0000:19:00.0,0000:3b:00.0");
    fake(&r[2], 2, "gpu02", "0000:19:00.0,0000:3b:00.0");
    fake(&r[3], 2, "gpu02", "0000:19:00.0,0000:3b:00.0");
    ok = 1;
    for (int i = 0; i < 4; i++) ok &= devsel_choose(r, 4, i, &lr, &ls, msg, sizeof(msg)) == i % 2 && lr == i % 2 && ls == 2;
    T_CHECK(&g_ts, ok, "2 nodes x 2 ranks: local ranks per node, device = local rank");

    // 6. a rank that sees no GPU
    fake(&r[0], 0, "gpu01", "0000:19:00.0");
    fake(&r[1], 0, "gpu01", "");
    d0 = devsel_choose(r, 2, 1, NULL, NULL, msg, sizeof(msg));
    T_CHECK(&g_ts, d0 < 0 && strstr(msg, "rank 1 on host gpu01 sees no GPU"), "a rank without GPU: %s", msg);

    // 7. rank 0 sees {A, B}, rank 1 sees {A} only: rank 0 must give A up (augmenting path)
    fake(&r[0], 0, "gpu01", "0000:19:00.0,0000:3b:00.0");
    fake(&r[1], 0, "gpu01", "0000:19:00.0");
    d0 = devsel_choose(r, 2, 0, NULL, NULL, msg, sizeof(msg));
    int d1 = devsel_choose(r, 2, 1, NULL, NULL, msg, sizeof(msg));
    T_CHECK(&g_ts, d0 == 1 && d1 == 0, "rank 0 sees 2 GPUs, rank 1 only the first: rank 0 -> device %d (1), rank 1 -> "
            "device %d (0)", d0, d1);

    // 8. one rank, one GPU (the common case)
    fake(&r[0], 0, "gpu01", "0000:19:00.0");
    T_CHECK(&g_ts, devsel_choose(r, 1, 0, &lr, &ls, msg, sizeof(msg)) == 0 && lr == 0 && ls == 1, "one rank, one GPU");
    return test_summary(&g_ts, "test_devsel");
}
