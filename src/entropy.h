// entropy.h: Kozachenko–Leonenko entropy estimate over the whole noise batch (paper A.5):
//   H = psi(N) + (d/N) * sum_i log(eps_i + 1e-8)
// with eps_i the distance (L1 as in the original code, or L2 as in the paper's text) from sample i
// to its nearest neighbour among the N samples, and d = dim z. The gradient flows through eps_i
// into sample i and into its neighbour. Multi-rank: every rank holds all N gauge-fixed vectors
// (all-gathered), finds the neighbours of its own samples, and the neighbour indices and distances
// are all-gathered so that each rank also adds the terms of remote samples whose neighbour is local.
#ifndef HT_ENTROPY_H
#define HT_ENTROPY_H

#include "comm.h"
#include "config.h"

#define ENTROPY_EPS 1e-8

double digamma(double x);

// Distance between two vectors of length D: the terms |a_k - b_k| (L1) or (a_k - b_k)^2 (L2) in
// double, summed in 8 interleaved partial sums in a fixed order (entropy.c), so the result is
// symmetric, identical on every rank and thread, and the same for the AVX-512 and AVX2 versions
// (picked at run time) and the portable one.
double entropy_distance(const float *a, const float *b, size_t D, Distance dist);
double entropy_distance_portable(const float *a, const float *b, size_t D, Distance dist);

typedef struct {
    int n;          // samples N
    int *nn;        // (N) nearest neighbour of each sample (ties: lowest index)
    float *eps;     // (N) its distance
    double *dist;   // (n_local, N) distances of the local samples (scratch, N x N allocated)
    int *pairs;     // (N * N) scratch: the pairs to compute
    int *groups;    // (N * N + 1) scratch: starts of the runs of <= 4 pairs with the same first sample
    int simd;       // 2: AVX-512 kernels, 1: AVX2, 0: portable (set at init from the CPU's
                    // features; tests may lower it); all give the same bits
} EntropyWork;

void entropy_work_init(EntropyWork *w, int n);
void entropy_work_free(EntropyWork *w);

// all: (N, D) every sample; this rank owns samples [start, start + n_local). Returns H (the same
// value on every rank). If grad_local != NULL, adds scale * dH/d(sample) for the local samples
// into grad_local (n_local, D).
double entropy_estimate(Comm *comm, EntropyWork *w, const float *all, int N, size_t D, int start,
                        int n_local, Distance dist, int d, float scale, float *grad_local);

#endif
