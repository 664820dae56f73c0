// devsel.h: which GPU each rank of a CUDA run takes (pure logic, no CUDA, no MPI: tested on the CPU
// with faked device lists by tests/gpu/test_devsel.c).
//
// Each rank reports its node (from MPI_Comm_split_type, comm_node_local) and the PCI bus ids of the
// GPUs it can see, in CUDA's order. Launchers differ: mpirun usually shows every rank all GPUs of the
// node (then local rank r takes GPU r), while Slurm's --gpus-per-task=1 or --gpu-bind gives every
// rank its own CUDA_VISIBLE_DEVICES (then each rank sees one GPU, its device 0, and 8 ranks on 8
// GPUs is valid although each sees only one). The only real error is two ranks on the same physical
// GPU (the same PCI bus id): NCCL refuses it. So the ranks of a node are matched to distinct bus ids,
// in local-rank order, each rank trying its visible GPUs in CUDA order (a bipartite matching with
// augmenting paths, deterministic; with identical lists it gives local rank r device r).
#ifndef HT_DEVSEL_H
#define HT_DEVSEL_H

#include <stddef.h>

#define DEVSEL_MAX_GPUS 16
#define DEVSEL_BUS 16   // "0000:19:00.0" and its NUL fit
#define DEVSEL_HOST 64

typedef struct DevselRank {
    int node;                              // node id (equal on the ranks of one node)
    int n_visible;                         // GPUs this rank sees (at most DEVSEL_MAX_GPUS are listed)
    char host[DEVSEL_HOST];                // host name, for messages
    char bus[DEVSEL_MAX_GPUS][DEVSEL_BUS]; // PCI bus id of each visible GPU, in CUDA order
} DevselRank;

// The device index (into rank `me`'s own visible list) that rank `me` of the P ranks in `all`
// takes, or -1 with a one-line explanation in msg (every rank of the node reaches the same verdict).
// `local_rank` and `local_size` (may be NULL) receive me's place among the ranks of its node.
int devsel_choose(const DevselRank *all, int P, int me, int *local_rank, int *local_size, char *msg, size_t n);

#endif
