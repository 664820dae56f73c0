// fdcheck.h: finite-difference gradient checks for the float32 reference.
//
// Tolerance: the code under test computes in float32 (as the trainer does), so f is a float32
// computation summed in double. Central differences have truncation error O(h^2 f''') and
// roundoff error about eps32 * |f| * k / h (k: accumulated float32 operations, ~ 10-100). With
// h = 1e-3 (inputs of order 1) the roundoff term is ~1e-7 * |f| * 100 / 1e-3 = 1e-2 |f|, which is
// why the checks use DIRECTIONAL derivatives along random directions (whose magnitude sums many
// gradient entries) with rtol 1e-2, and per-element checks only on the largest entries. A wrong
// gradient (sign, missing term, factor) is off by O(1) relative, far outside these bounds.
#ifndef HT_FDCHECK_H
#define HT_FDCHECK_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef double (*fd_fn)(void *ctx);

static inline double fd_randn(uint64_t *s) {
    // xorshift + Box-Muller (test-only randomness)
    double u1, u2;
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; u1 = ((*s >> 11) + 0.5) / 9007199254740992.0;
    *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; u2 = ((*s >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

// Directional derivative along a random direction v over x[0..n): compares
// (f(x + h v) - f(x - h v)) / 2h with grad . v. Returns 1 on pass.
static inline int fd_directional(TestState *ts, const char *name, fd_fn f, void *ctx, float *x,
                                 const float *grad, size_t n, double h, double rtol, double atol,
                                 uint64_t seed) {
    float *x0 = malloc(n * sizeof(float));
    double *v = malloc(n * sizeof(double));
    memcpy(x0, x, n * sizeof(float));
    double gv = 0.0, scale = 0.0;
    uint64_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) { v[i] = fd_randn(&s); gv += grad[i] * v[i]; }
    for (size_t i = 0; i < n; i++) scale += fabs(x0[i]);
    for (size_t i = 0; i < n; i++) x[i] = (float)(x0[i] + h * v[i]);
    double fp = f(ctx);
    for (size_t i = 0; i < n; i++) x[i] = (float)(x0[i] - h * v[i]);
    double fm = f(ctx);
    memcpy(x, x0, n * sizeof(float));
    // the step actually taken in float32 differs from h*v by rounding: use the realized step
    double fd = (fp - fm) / (2.0 * h);
    int ok = t_close(fd, gv, atol, rtol);
    T_CHECK(ts, ok, "%-34s directional: fd %.6e analytic %.6e (rel err %.2e)", name, fd, gv,
            fabs(fd - gv) / fmax(fabs(gv), 1e-30));
    free(x0); free(v);
    return ok;
}

// Directional derivative over a ladder of steps h0, h0/10, h0/100, h0/1000. For a piecewise
// smooth float32 loss, large steps cross kinks and small steps drown in roundoff; the check
// passes when SOME step agrees within rtol (a wrong gradient term is O(1) off at every step).
static inline int fd_directional_ladder(TestState *ts, const char *name, fd_fn f, void *ctx, float *x,
                                        const float *grad, size_t n, double h0, double rtol,
                                        uint64_t seed) {
    float *x0 = malloc(n * sizeof(float));
    double *v = malloc(n * sizeof(double));
    memcpy(x0, x, n * sizeof(float));
    double gv = 0.0, best = INFINITY, best_fd = 0.0, best_h = h0;
    uint64_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) { v[i] = fd_randn(&s); gv += grad[i] * v[i]; }
    for (double h = h0; h > h0 * 1e-4; h *= 0.1) {
        for (size_t i = 0; i < n; i++) x[i] = (float)(x0[i] + h * v[i]);
        double fp = f(ctx);
        for (size_t i = 0; i < n; i++) x[i] = (float)(x0[i] - h * v[i]);
        double fm = f(ctx);
        double fd = (fp - fm) / (2.0 * h), err = fabs(fd - gv) / fmax(fabs(gv), 1e-30);
        if (err < best) { best = err; best_fd = fd; best_h = h; }
    }
    memcpy(x, x0, n * sizeof(float));
    int ok = best <= rtol;
    T_CHECK(ts, ok, "%-34s directional: fd %.6e analytic %.6e (rel err %.2e at h %.1e)", name, best_fd, gv,
            best, best_h);
    free(x0); free(v);
    return ok;
}

// Per-element checks on the k entries with the largest |grad|.
static inline int fd_elements(TestState *ts, const char *name, fd_fn f, void *ctx, float *x,
                              const float *grad, size_t n, double h, double rtol, double atol, int k) {
    int bad = 0, checked = 0;
    double worst = 0.0;
    char *used = calloc(n, 1);
    for (int t = 0; t < k && t < (int)n; t++) {
        size_t arg = 0; double best = -1.0;
        for (size_t i = 0; i < n; i++) if (!used[i] && fabs(grad[i]) > best) { best = fabs(grad[i]); arg = i; }
        used[arg] = 1;
        float x0 = x[arg];
        x[arg] = (float)(x0 + h); double hp = (double)x[arg] - x0; double fp = f(ctx);
        x[arg] = (float)(x0 - h); double hm = x0 - (double)x[arg]; double fm = f(ctx);
        x[arg] = x0;
        double fd = (fp - fm) / (hp + hm);
        double err = fabs(fd - grad[arg]) / fmax(fabs(grad[arg]), 1e-30);
        if (err > worst) worst = err;
        if (!t_close(fd, grad[arg], atol, rtol)) {
            bad++;
            printf("    %s[%zu]: fd %.6e analytic %.6e\n", name, arg, fd, (double)grad[arg]);
        }
        checked++;
    }
    free(used);
    T_CHECK(ts, bad == 0, "%-34s %d largest elements: worst rel err %.2e", name, checked, worst);
    return bad == 0;
}

#endif
