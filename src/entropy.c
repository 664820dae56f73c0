#include "entropy.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

double digamma(double x) {
    double r = 0.0;
    while (x < 10.0) { r -= 1.0 / x; x += 1.0; }
    double f = 1.0 / (x * x);
    // asymptotic series: ln x - 1/(2x) - 1/(12x^2) + 1/(120x^4) - 1/(252x^6) + 1/(240x^8)
    return r + log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240))));
}

// ---- distances: 8 interleaved double partial sums ----
// Lane u sums the terms of elements k = 8m + u, then the tail k >= 8*floor(D/8) goes to lane
// k - 8*floor(D/8); the lanes are combined as ((s0+s4) + (s2+s6)) + ((s1+s5) + (s3+s7)). This
// fixed order is what the AVX2 version computes lane by lane (no FMA: multiply, then add), so both
// give the same bits, and |a - b| = |b - a| makes d(a, b) == d(b, a) exactly.

static double combine8(const double s[8]) {
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static double sum_tail(const float *a, const float *b, size_t D, Distance dist, double s[8]) {
    const size_t D8 = D & ~(size_t)7;
    for (size_t k = D8; k < D; k++) {
        const double d = (double)a[k] - (double)b[k];
        s[k - D8] += dist == DIST_L1 ? fabs(d) : d * d;
    }
    const double r = combine8(s);
    return dist == DIST_L1 ? r : sqrt(r);
}

double entropy_distance_portable(const float *a, const float *b, size_t D, Distance dist) {
    double s[8] = {0};
    const size_t D8 = D & ~(size_t)7;
    for (size_t k = 0; k < D8; k += 8)
        for (int u = 0; u < 8; u++) {
            const double d = (double)a[k + u] - (double)b[k + u];
            s[u] += dist == DIST_L1 ? fabs(d) : d * d;
        }
    return sum_tail(a, b, D, dist, s);
}

// d(xi, xj) / d xi scaled by coef, added into g (D): coef * sign(xi - xj) for L1 (the float
// (float)coef or its negation, 0 where equal), coef / e * (xi - xj) for L2 (rounded to float).
static void add_distance_grad_portable(const float *xi, const float *xj, size_t D, Distance dist,
                                       double e, double coef, float *g) {
    if (dist == DIST_L1) {
        const float cf = (float)coef;
        for (size_t k = 0; k < D; k++) {
            const float d = xi[k] - xj[k];
            g[k] += d > 0.0f ? cf : d < 0.0f ? -cf : 0.0f;
        }
        return;
    }
    if (e <= 0.0) return; // coincident samples: the L2 distance has no gradient there
    const double c = coef / e;
    for (size_t k = 0; k < D; k++) g[k] += (float)(c * ((double)xi[k] - (double)xj[k]));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2")))

static int have_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

static AVX2 double distance_avx2(const float *a, const float *b, size_t D, Distance dist) {
    const __m256d sign = _mm256_set1_pd(-0.0);
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd(); // lanes 0-3, 4-7
    const size_t D8 = D & ~(size_t)7;
    for (size_t k = 0; k < D8; k += 8) {
        const __m256 va = _mm256_loadu_ps(a + k), vb = _mm256_loadu_ps(b + k);
        __m256d dl = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(va)),
                                   _mm256_cvtps_pd(_mm256_castps256_ps128(vb)));
        __m256d dh = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(va, 1)),
                                   _mm256_cvtps_pd(_mm256_extractf128_ps(vb, 1)));
        if (dist == DIST_L1) { dl = _mm256_andnot_pd(sign, dl); dh = _mm256_andnot_pd(sign, dh); }
        else { dl = _mm256_mul_pd(dl, dl); dh = _mm256_mul_pd(dh, dh); }
        lo = _mm256_add_pd(lo, dl);
        hi = _mm256_add_pd(hi, dh);
    }
    double s[8];
    _mm256_storeu_pd(s, lo);
    _mm256_storeu_pd(s + 4, hi);
    return sum_tail(a, b, D, dist, s);
}

static AVX2 void add_distance_grad_avx2(const float *xi, const float *xj, size_t D, Distance dist,
                                        double e, double coef, float *g) {
    if (dist == DIST_L2 && e <= 0.0) return;
    const size_t D8 = D & ~(size_t)7;
    if (dist == DIST_L1) {
        const float cf = (float)coef;
        const __m256 pos = _mm256_set1_ps(cf), neg = _mm256_set1_ps(-cf), zero = _mm256_setzero_ps();
        for (size_t k = 0; k < D8; k += 8) {
            const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(xi + k), _mm256_loadu_ps(xj + k));
            const __m256 v = _mm256_or_ps(_mm256_and_ps(_mm256_cmp_ps(d, zero, _CMP_GT_OQ), pos),
                                          _mm256_and_ps(_mm256_cmp_ps(d, zero, _CMP_LT_OQ), neg));
            _mm256_storeu_ps(g + k, _mm256_add_ps(_mm256_loadu_ps(g + k), v));
        }
    } else {
        const __m256d c = _mm256_set1_pd(coef / e);
        for (size_t k = 0; k < D8; k += 4) {
            const __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(xi + k)),
                                            _mm256_cvtps_pd(_mm_loadu_ps(xj + k)));
            const __m128 v = _mm256_cvtpd_ps(_mm256_mul_pd(c, d));
            _mm_storeu_ps(g + k, _mm_add_ps(_mm_loadu_ps(g + k), v));
        }
    }
    add_distance_grad_portable(xi + D8, xj + D8, D - D8, dist, e, coef, g + D8);
}

// ---- AVX-512: the 8 partial sums are the 8 doubles of one zmm ----
// One pair's sum is a single chain of dependent adds (8 lanes wide), so its speed is the add
// latency's; NB pairs that share their first sample (a, b[0..NB)) run as NB independent chains
// that share the loads of a. Each pair's lanes see the same terms in the same order as the
// portable sum, so every distance has the same bits.
#define AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2")))

static int have_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx2");
}

static AVX512 inline __attribute__((always_inline)) __m512d term8(__m512d va, const float *b, Distance dist) {
    const __m512d d = _mm512_sub_pd(va, _mm512_cvtps_pd(_mm256_loadu_ps(b)));
    return dist == DIST_L1 ? _mm512_abs_pd(d) : _mm512_mul_pd(d, d);
}

static AVX512 inline __attribute__((always_inline)) void distances_nb(const float *a, const float *const *b,
                                                                      size_t D, Distance dist, double *out,
                                                                      const int NB) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd(), s2 = _mm512_setzero_pd(), s3 = _mm512_setzero_pd();
    const size_t D8 = D & ~(size_t)7;
    for (size_t k = 0; k < D8; k += 8) {
        const __m512d va = _mm512_cvtps_pd(_mm256_loadu_ps(a + k));
        s0 = _mm512_add_pd(s0, term8(va, b[0] + k, dist));
        if (NB > 1) s1 = _mm512_add_pd(s1, term8(va, b[1] + k, dist));
        if (NB > 2) s2 = _mm512_add_pd(s2, term8(va, b[2] + k, dist));
        if (NB > 3) s3 = _mm512_add_pd(s3, term8(va, b[3] + k, dist));
    }
    const __m512d acc[4] = {s0, s1, s2, s3};
    for (int j = 0; j < NB; j++) {
        double s[8];
        _mm512_storeu_pd(s, acc[j]);
        out[j] = sum_tail(a, b[j], D, dist, s);
    }
}

// d(a, b[j]) for j < nb (1..4)
static AVX512 void distances_avx512(const float *a, const float *const *b, int nb, size_t D, Distance dist,
                                    double *out) {
    switch (nb) {
    case 4: distances_nb(a, b, D, dist, out, 4); break;
    case 3: distances_nb(a, b, D, dist, out, 3); break;
    case 2: distances_nb(a, b, D, dist, out, 2); break;
    default: distances_nb(a, b, D, dist, out, 1); break;
    }
}

static AVX512 void add_distance_grad_avx512(const float *xi, const float *xj, size_t D, Distance dist,
                                          double e, double coef, float *g) {
    if (dist == DIST_L2 && e <= 0.0) return;
    const size_t D16 = D & ~(size_t)15;
    if (dist == DIST_L1) {
        const float cf = (float)coef;
        const __m512 pos = _mm512_set1_ps(cf), neg = _mm512_set1_ps(-cf), zero = _mm512_setzero_ps();
        for (size_t k = 0; k < D16; k += 16) {
            const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(xi + k), _mm512_loadu_ps(xj + k));
            const __mmask16 gt = _mm512_cmp_ps_mask(d, zero, _CMP_GT_OQ), lt = _mm512_cmp_ps_mask(d, zero, _CMP_LT_OQ);
            const __m512 v = _mm512_mask_mov_ps(_mm512_maskz_mov_ps(lt, neg), gt, pos); // cf, -cf or +0
            _mm512_storeu_ps(g + k, _mm512_add_ps(_mm512_loadu_ps(g + k), v));
        }
    } else {
        const __m512d c = _mm512_set1_pd(coef / e);
        for (size_t k = 0; k < D16; k += 8) {
            const __m512d d = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(xi + k)),
                                            _mm512_cvtps_pd(_mm256_loadu_ps(xj + k)));
            const __m256 v = _mm512_cvtpd_ps(_mm512_mul_pd(c, d));
            _mm256_storeu_ps(g + k, _mm256_add_ps(_mm256_loadu_ps(g + k), v));
        }
    }
    add_distance_grad_portable(xi + D16, xj + D16, D - D16, dist, e, coef, g + D16);
}
#else
static int have_avx2(void) { return 0; }
static int have_avx512(void) { return 0; }
static void distances_avx512(const float *a, const float *const *b, int nb, size_t D, Distance dist, double *out) {
    for (int j = 0; j < nb; j++) out[j] = entropy_distance_portable(a, b[j], D, dist);
}
static void add_distance_grad_avx512(const float *xi, const float *xj, size_t D, Distance dist,
                                     double e, double coef, float *g) {
    add_distance_grad_portable(xi, xj, D, dist, e, coef, g);
}
static double distance_avx2(const float *a, const float *b, size_t D, Distance dist) {
    return entropy_distance_portable(a, b, D, dist);
}
static void add_distance_grad_avx2(const float *xi, const float *xj, size_t D, Distance dist,
                                   double e, double coef, float *g) {
    add_distance_grad_portable(xi, xj, D, dist, e, coef, g);
}
#endif

double entropy_distance(const float *a, const float *b, size_t D, Distance dist) {
    if (have_avx512()) {
        double d;
        distances_avx512(a, &b, 1, D, dist, &d);
        return d;
    }
    return have_avx2() ? distance_avx2(a, b, D, dist) : entropy_distance_portable(a, b, D, dist);
}

void entropy_work_init(EntropyWork *w, int n) {
    memset(w, 0, sizeof(*w));
    w->n = n;
    w->nn = XCALLOC((size_t)n, sizeof(int));
    w->eps = XCALLOC((size_t)n, sizeof(float));
    const size_t nn = XMUL(n, n, "entropy estimate: %d samples squared", n);
    w->dist = XCALLOC(nn, sizeof(double));
    w->pairs = XCALLOC(nn, sizeof(int));
    w->groups = XCALLOC(nn + 1, sizeof(int));
    w->simd = have_avx512() ? 2 : have_avx2();
}

void entropy_work_free(EntropyWork *w) {
    free(w->nn);
    free(w->eps);
    free(w->dist);
    free(w->pairs);
    free(w->groups);
    memset(w, 0, sizeof(*w));
}

// Nearest neighbours of the local samples [start, start + n_local). Each unordered pair {i, j}
// with i local is computed once (a pair of two local samples is mirrored), spread over the
// threads pair by pair; distances do not depend on the thread, so neither do the neighbours.
static void local_neighbours(EntropyWork *w, const float *all, int N, size_t D, int start,
                             int n_local, Distance dist) {
    double *dm = w->dist; // (n_local, N)
    int np = 0, ng = 0;   // pairs; groups: runs of <= 4 consecutive pairs with the same i
    for (int i = start; i < start + n_local; i++)
        for (int j = 0, run = 0; j < N; j++) {
            const int local_j = j >= start && j < start + n_local;
            if (j == i || (local_j && j <= i)) continue;
            if (run++ % 4 == 0) w->groups[ng++] = np;
            w->pairs[np++] = (i - start) * N + j;
        }
    w->groups[ng] = np;
    const int simd = w->simd;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int q = 0; q < ng; q++) {
        const int p0 = w->groups[q], nb = w->groups[q + 1] - p0;
        const int i = start + w->pairs[p0] / N;
        const float *a = all + (size_t)i * D, *b[4];
        double d[4];
        for (int k = 0; k < nb; k++) b[k] = all + (size_t)(w->pairs[p0 + k] % N) * D;
        if (simd == 2) distances_avx512(a, b, nb, D, dist, d);
        else
            for (int k = 0; k < nb; k++)
                d[k] = simd ? distance_avx2(a, b[k], D, dist) : entropy_distance_portable(a, b[k], D, dist);
        for (int k = 0; k < nb; k++) {
            const int j = w->pairs[p0 + k] % N;
            dm[(size_t)(i - start) * N + j] = d[k];
            if (j >= start && j < start + n_local) dm[(size_t)(j - start) * N + i] = d[k];
        }
    }
    for (int i = start; i < start + n_local; i++) {
        const double *row = dm + (size_t)(i - start) * N;
        double best = INFINITY;
        int arg = -1;
        for (int j = 0; j < N; j++) // strict <: ties keep the lowest index
            if (j != i && row[j] < best) { best = row[j]; arg = j; }
        w->nn[i] = arg;
        w->eps[i] = (float)best;
    }
}

double entropy_estimate(Comm *comm, EntropyWork *w, const float *all, int N, size_t D, int start,
                        int n_local, Distance dist, int d, float scale, float *grad_local) {
    HT_CHECK(N >= 2 && N <= w->n, "entropy: need 2 <= N <= %d samples, got %d", w->n, N);
    local_neighbours(w, all, N, D, start, n_local, dist);
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
    const int simd = w->simd;
    #pragma omp parallel for schedule(static)
    for (int k = start; k < start + n_local; k++) {
        float *g = grad_local + (size_t)(k - start) * D;
        const float *xk = all + (size_t)k * D;
        for (int i = 0; i < N; i++) {
            if (i != k && w->nn[i] != k) continue;
            if (i == k && w->nn[k] < 0) continue; // no neighbour (NaN distances): row -1 is not there
            const double coef = scale * ((double)d / N) / ((double)w->eps[i] + ENTROPY_EPS);
            const float *other = all + (size_t)(i == k ? w->nn[k] : i) * D;
            if (simd == 2) add_distance_grad_avx512(xk, other, D, dist, w->eps[i], coef, g);
            else if (simd) add_distance_grad_avx2(xk, other, D, dist, w->eps[i], coef, g);
            else add_distance_grad_portable(xk, other, D, dist, w->eps[i], coef, g);
        }
    }
    return H;
}
