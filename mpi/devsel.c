// devsel.c: the GPU assignment of devsel.h.
#include "devsel.h"

#include <stdio.h>
#include <string.h>

#include "common.h"

#define DEVSEL_MAX_LOCAL 1024

static int id_of(int n_ids, char (*ids)[DEVSEL_BUS], const char *bus) {
    int id = 0;
    while (id < n_ids && strcmp(ids[id], bus) != 0) id++;
    return id;
}

// Kuhn's augmenting path from local rank u over the distinct bus ids `ids`: first a free GPU in u's
// order (so identical lists give local rank r device r), then one whose holder can move elsewhere.
static int augment(const DevselRank *const *loc, int u, int n_ids, char (*ids)[DEVSEL_BUS], int *owner,
                   int *seen) {
    const DevselRank *r = loc[u];
    const int nv = r->n_visible < DEVSEL_MAX_GPUS ? r->n_visible : DEVSEL_MAX_GPUS;
    for (int g = 0; g < nv; g++) {
        const int id = id_of(n_ids, ids, r->bus[g]);
        if (id >= n_ids) continue; // beyond the table of distinct ids (more than 64 on one node)
        if (owner[id] < 0 && !seen[id]) { seen[id] = 1; owner[id] = u; return 1; }
    }
    for (int g = 0; g < nv; g++) {
        const int id = id_of(n_ids, ids, r->bus[g]);
        if (id >= n_ids || seen[id]) continue;
        seen[id] = 1;
        if (augment(loc, owner[id], n_ids, ids, owner, seen)) { owner[id] = u; return 1; }
    }
    return 0;
}

int devsel_choose(const DevselRank *all, int P, int me, int *local_rank, int *local_size, char *msg, size_t n) {
    static const char hint[] = "each rank needs a GPU of its own (NCCL cannot share one between ranks): start "
                               "fewer ranks per node, give each rank its own GPU (srun --gpus-per-task=1, "
                               "CUDA_VISIBLE_DEVICES), or train on the CPU with --device cpu";
    const DevselRank *loc[DEVSEL_MAX_LOCAL];
    int grank[DEVSEL_MAX_LOCAL], ls = 0, lr = -1;
    for (int r = 0; r < P; r++) {
        if (all[r].node != all[me].node) continue;
        if (ls == DEVSEL_MAX_LOCAL) {
            XSNPRINTF(msg, n, "more than %d ranks on host %s", DEVSEL_MAX_LOCAL, all[me].host);
            return -1;
        }
        if (r == me) lr = ls;
        grank[ls] = r;
        loc[ls++] = &all[r];
    }
    if (local_rank) *local_rank = lr;
    if (local_size) *local_size = ls;
    // The distinct bus ids seen on this node.
    char ids[DEVSEL_MAX_GPUS * 4][DEVSEL_BUS];
    int n_ids = 0, same = 1;
    for (int u = 0; u < ls; u++) {
        const int nv = loc[u]->n_visible < DEVSEL_MAX_GPUS ? loc[u]->n_visible : DEVSEL_MAX_GPUS;
        same &= loc[u]->n_visible == loc[0]->n_visible &&
                memcmp(loc[u]->bus, loc[0]->bus, (size_t)nv * DEVSEL_BUS) == 0;
        for (int g = 0; g < nv; g++) {
            int id = 0;
            while (id < n_ids && strcmp(ids[id], loc[u]->bus[g]) != 0) id++;
            if (id == n_ids && n_ids < (int)(sizeof(ids) / sizeof(ids[0]))) XSNPRINTF(ids[n_ids++], DEVSEL_BUS, "%s", loc[u]->bus[g]);
        }
    }
    if (all[me].n_visible <= 0) {
        XSNPRINTF(msg, n, "rank %d on host %s sees no GPU", me, all[me].host);
        return -1;
    }
    int owner[DEVSEL_MAX_GPUS * 4], seen[DEVSEL_MAX_GPUS * 4];
    for (int i = 0; i < n_ids; i++) owner[i] = -1;
    int unmatched = -1;
    for (int u = 0; u < ls && unmatched < 0; u++) {
        memset(seen, 0, sizeof(seen));
        if (!augment(loc, u, n_ids, ids, owner, seen)) unmatched = u;
    }
    if (unmatched >= 0) {
        if (same)
            XSNPRINTF(msg, n, "%d ranks run on host %s but it has only %d visible GPU(s): %s", ls, all[me].host,
                      n_ids, hint);
        else {
            // Name the rank that found no GPU and one rank holding a GPU it could see.
            const DevselRank *r = loc[unmatched];
            int other = -1;
            const char *bus = r->n_visible > 0 ? r->bus[0] : "(none)";
            for (int id = 0; id < n_ids && r->n_visible > 0; id++)
                if (!strcmp(ids[id], r->bus[0])) other = owner[id];
            if (other >= 0)
                XSNPRINTF(msg, n, "ranks %d and %d on host %s would share the GPU with PCI bus id %s (%d ranks, %d "
                          "distinct GPUs visible on that host): %s", grank[other], grank[unmatched], all[me].host,
                          bus, ls, n_ids, hint);
            else
                XSNPRINTF(msg, n, "rank %d on host %s sees no GPU that another rank of the host does not already "
                          "use (%d ranks, %d distinct GPUs): %s", grank[unmatched], all[me].host, ls, n_ids, hint);
        }
        return -1;
    }
    for (int id = 0; id < n_ids; id++)
        if (owner[id] == lr)
            for (int g = 0; g < all[me].n_visible && g < DEVSEL_MAX_GPUS; g++)
                if (!strcmp(all[me].bus[g], ids[id])) return g;
    XSNPRINTF(msg, n, "internal error: no device assigned to rank %d", me);
    return -1;
}
