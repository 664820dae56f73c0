#include "entropy.h"

#include <math.h>
#include <stdlib.h>

#include "common.h"

double digamma(double x) {
    double r = 0.0;
    while (x < 10.0) { r -= 1.0 / x; x += 1.0; }
    double f = 1.0 / (x * x);
    // asymptotic series: ln x - 1/(2x) - 1/(12x^2) + 1/(120x^4) - 1/(252x^6) + 1/(240x^8)
    return r + log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240))));
}

double entropy_distance(const float *a, const float *b, size_t D, Distance dist) {
    double s = 0.0;
    if (dist == DIST_L1) {
        for (size_t k = 0; k < D; k++) s += fabs((double)a[k] - (double)b[k]);
        return s;
    }
    for (size_t k = 0; k < D; k++) { double d = (double)a[k] - (double)b[k]; s += d * d; }
    return sqrt(s);
}

void entropy_work_init(EntropyWork *w, int n) {
    w->n = n;
    w->nn = XCALLOC((size_t)n, sizeof(int));
    w->eps = XCALLOC((size_t)n, sizeof(float));
}

void entropy_work_free(EntropyWork *w) {
    free(w->nn);
    free(w->eps);
    w->nn = NULL; w->eps = NULL;
}

// Nearest neighbours of the local samples (blockwise over the local rows, one row per thread).
static void local_neighbours(const float *all, int N, size_t D, int start, int n_local, Distance dist,
                             int *nn, float *eps) {
    #pragma omp parallel for schedule(dynamic, 1)
    for (int i = start; i < start + n_local; i++) {
        double best = INFINITY;
        int arg = -1;
        for (int j = 0; j < N; j++) {
            if (j == i) continue;
            double dij = entropy_distance(all + (size_t)i * D, all + (size_t)j * D, D, dist);
            if (dij < best) { best = dij; arg = j; }
        }
        nn[i] = arg;
        eps[i] = (float)best;
    }
}

// d eps_i / d x_i for the pair (x_i, x_j) with distance e: sign (L1) or unit vector (L2);
// adds coef * that into g (D).
static void add_distance_grad(const float *xi, const float *xj, size_t D, Distance dist, double e,
                              double coef, float *g) {
    if (dist == DIST_L1) {
        for (size_t k = 0; k < D; k++) {
            float d = xi[k] - xj[k];
            g[k] += (float)(d > 0.0f ? coef : d < 0.0f ? -coef : 0.0);
        }
        return;
    }
    if (e <= 0.0) return; // coincident samples: the L2 distance has no gradient there
    const double c = coef / e;
    for (size_t k = 0; k < D; k++) g[k] += (float)(c * ((double)xi[k] - (double)xj[k]));
}

double entropy_estimate(Comm *comm, EntropyWork *w, const float *all, int N, size_t D, int start,
                        int n_local, Distance dist, int d, float scale, float *grad_local) {
    HT_CHECK(N >= 2 && N <= w->n, "entropy: need 2 <= N <= %d samples, got %d", w->n, N);
    local_neighbours(all, N, D, start, n_local, dist, w->nn, w->eps);
    int counts[1024], displs[1024];
    HT_CHECK(comm->size <= 1024, "entropy: at most 1024 ranks");
    for (int r = 0; r < comm->size; r++) {
        displs[r] = comm_shard_start(N, r, comm->size);
        counts[r] = comm_shard_start(N, r + 1, comm->size) - displs[r];
    }
    comm_allgatherv_i32(comm, w->nn + start, w->nn, counts, displs);
    comm_allgatherv_f32(comm, w->eps + start, w->eps, counts, displs);
    double sum_log = 0.0;
    for (int i = 0; i < N; i++) sum_log += log((double)w->eps[i] + ENTROPY_EPS);
    const double H = digamma((double)N) + (double)d / N * sum_log;
    if (!grad_local) return H;
    // dH/d eps_i = (d/N) / (eps_i + 1e-8); eps_i depends on x_i (+) and x_nn(i) (-).
    #pragma omp parallel for schedule(static)
    for (int k = start; k < start + n_local; k++) {
        float *g = grad_local + (size_t)(k - start) * D;
        const float *xk = all + (size_t)k * D;
        for (int i = 0; i < N; i++) {
            if (i != k && w->nn[i] != k) continue;
            const double coef = scale * ((double)d / N) / ((double)w->eps[i] + ENTROPY_EPS);
            if (i == k) add_distance_grad(xk, all + (size_t)w->nn[k] * D, D, dist, w->eps[k], coef, g);
            else add_distance_grad(xk, all + (size_t)i * D, D, dist, w->eps[i], coef, g);
        }
    }
    return H;
}
