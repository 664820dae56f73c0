#include "rng.h"

#include <math.h>

#define HT_PI 3.14159265358979323846

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t *hi) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

Philox4 philox4x32(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t c) {
    uint32_t ctr[4] = {stream, a, b, c};
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = mulhilo(PHILOX_M0, ctr[0], &hi0);
        uint32_t lo1 = mulhilo(PHILOX_M1, ctr[2], &hi1);
        uint32_t n0 = hi1 ^ ctr[1] ^ k0, n1 = lo1, n2 = hi0 ^ ctr[3] ^ k1, n3 = lo0;
        ctr[0] = n0; ctr[1] = n1; ctr[2] = n2; ctr[3] = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    Philox4 r = {{ctr[0], ctr[1], ctr[2], ctr[3]}};
    return r;
}

void rng_uniform(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, float lo, float hi,
                 float *out, int n) {
    for (int i = 0; i < n; i += 4) {
        Philox4 r = philox4x32(seed, stream, a, b, (uint32_t)(i / 4));
        for (int j = 0; j < 4 && i + j < n; j++) out[i + j] = lo + (hi - lo) * rng_u01(r.v[j]);
    }
}

double rng_truncated_normal(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b) {
    for (uint32_t attempt = 0;; attempt++) {
        Philox4 r = philox4x32(seed, stream, a, b, attempt);
        // Box-Muller gives two independent normals per block; take the first acceptable one.
        for (int j = 0; j < 4; j += 2) {
            double u1 = rng_u01_open(r.v[j]), u2 = rng_u01_open(r.v[j + 1]);
            double rad = sqrt(-2.0 * log(u1));
            double x0 = rad * cos(2.0 * HT_PI * u2), x1 = rad * sin(2.0 * HT_PI * u2);
            if (fabs(x0) <= 2.0) return x0;
            if (fabs(x1) <= 2.0) return x1;
        }
    }
}

uint32_t rng_below(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t c, uint32_t n) {
    uint32_t limit = (uint32_t)(0x100000000ull - (0x100000000ull % n)); // 0 means 2^32
    for (uint32_t attempt = 0;; attempt++) {
        Philox4 r = philox4x32(seed, stream, a, b, c ^ (attempt << 24));
        for (int j = 0; j < 4; j++)
            if (limit == 0 || r.v[j] < limit) return r.v[j] % n;
    }
}
