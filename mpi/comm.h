// comm.h: the communication interface of a training step. One process (comm_single.c), MPI on
// host buffers (comm_mpi.c) and, later, NCCL on device buffers implement it. The training step
// calls these even with one process so that multi-rank runs only swap the implementation.
#ifndef HT_COMM_H
#define HT_COMM_H

#include <stddef.h>

typedef struct Comm {
    int rank;        // this process's rank in [0, size)
    int size;        // number of ranks P
    const char *impl;// "single" or "mpi"
    void *handle;    // implementation data (MPI communicator), NULL for single
    // Bytes moved by each kind of collective since the last reset (for bench/).
    double bytes_allgather, bytes_allreduce, bytes_bn;
    double sec_allgather, sec_allreduce, sec_bn;
    // comm_bn_allreduce calls since the last reset, counted on one rank too (where they move
    // nothing): a training step makes 2 per hidden level of the extractor and of the deepest
    // generator (the generators share one per level).
    long calls_bn;
} Comm;

void comm_init(Comm *c, int *argc, char ***argv);
void comm_finalize(Comm *c);

// Ends this process and, under MPI, every rank (MPI_Abort). Safe before comm_init. Never returns.
// For genuinely one-sided failures; errors go through ht_fatal -> comm_fatal.
void comm_abort(int code) __attribute__((noreturn));
// The end of ht_fatal: `line` is the complete message ("prog: error: ...\n"). One process: prints
// it and exits with `code` (no MPI banner). Several ranks: if every rank reaches comm_fatal within
// a few seconds (an error all ranks detect the same way: job, data, checkpoint), rank 0 alone
// prints its message and every rank exits with `code` after MPI_Finalize; otherwise (a failure on
// some ranks only) each failing rank prints its message with its rank and ends every rank with
// MPI_Abort. Safe before comm_init and after comm_finalize. Never returns.
void comm_fatal(const char *line, int code) __attribute__((noreturn));

// In-place sum over ranks.
void comm_allreduce_sum_f32(Comm *c, float *buf, size_t n);
void comm_allreduce_sum_f64(Comm *c, double *buf, size_t n);
// Batch-norm statistic reductions (in-place sum in double); counted separately for bench/.
void comm_bn_allreduce(Comm *c, double *buf, size_t n);
// In-place max over ranks of one int (for consistency checks and error agreement).
int comm_allreduce_max_int(Comm *c, int v);

// Gathers uneven row shards: rank r contributes counts[r] elements, which land at recv + displs[r].
// `send` holds this rank's counts[rank] elements (may alias recv + displs[rank]).
void comm_allgatherv_f32(Comm *c, const float *send, float *recv, const int *counts, const int *displs);
void comm_allgatherv_i32(Comm *c, const int *send, int *recv, const int *counts, const int *displs);

void comm_bcast(Comm *c, void *buf, size_t bytes, int root);

// This rank's node and its place there: ranks that share memory (MPI_Comm_split_type with
// MPI_COMM_TYPE_SHARED) have the same *node (the lowest world rank among them); *local_rank and
// *local_size count the ranks of that node. One process: 0, 0, 1.
void comm_node_local(Comm *c, int *node, int *local_rank, int *local_size);

// Consistency check: every rank must hold bit-identical buf (e.g. the parameters after the same
// Adam updates). Compares a checksum across ranks and ends the job with a clear message naming
// `what` and the ranks that differ. No-op with one process.
void comm_check_same(Comm *c, const float *buf, size_t n, const char *what);
void comm_barrier(Comm *c);

// Rank r of P owns global samples [shard_start(r), shard_start(r+1)) of a batch of n:
// floor(r*n/P). Shards differ by at most one sample when P does not divide n.
static inline int comm_shard_start(int n, int rank, int size) {
    return (int)(((long long)n * rank) / size);
}

#endif
