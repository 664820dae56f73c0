// rng.h: counter-based random numbers (Philox4x32-10, Salmon et al. 2011, as in cuRAND).
// Every draw is a pure function of (seed, stream, a, b, c): no state to save, the same numbers on
// any number of ranks, and a resumed run draws exactly what the uninterrupted run would have.
#ifndef HT_RNG_H
#define HT_RNG_H

#include <stdint.h>

// Streams keep unrelated uses of the generator apart.
enum {
    RNG_STREAM_INIT = 1,   // parameter initialization: (param element, attempt)
    RNG_STREAM_Z = 2,      // training noise: (step, global sample, block)
    RNG_STREAM_PERM = 3,   // epoch permutation of the training images: (epoch, swap index)
    RNG_STREAM_VAL_Z = 4,  // validation noise: (step, sample, block)
    RNG_STREAM_TOY = 5,    // toy problem noise
    RNG_STREAM_TEST = 99,  // tests
    RNG_STREAM_SAMPLE = 6, // sample sets (hypertrain sample, hyperanalyze paths): (sample index lo, hi, block)
};

typedef struct { uint32_t v[4]; } Philox4;

// One Philox4x32-10 block for key = seed and counter = (stream, a, b, c).
Philox4 philox4x32(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t c);

// Uniform float in [0, 1) from 24 random bits (exactly representable).
static inline float rng_u01(uint32_t x) { return (float)(x >> 8) * (1.0f / 16777216.0f); }
// Uniform double in (0, 1) from 32 bits, never 0 (safe for log).
static inline double rng_u01_open(uint32_t x) { return ((double)x + 0.5) * (1.0 / 4294967296.0); }

// Fills out[0..n) with U[lo, hi) draws for counter (stream, a, b, block) with block = i / 4.
void rng_uniform(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, float lo, float hi,
                 float *out, int n);

// Standard normal truncated to [-2, 2] (rejection), deterministic in (seed, stream, a, b).
double rng_truncated_normal(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b);

// Uniform integer in [0, n) (n > 0), unbiased by rejection, from counter (stream, a, b, c).
uint32_t rng_below(uint64_t seed, uint32_t stream, uint32_t a, uint32_t b, uint32_t c, uint32_t n);

#endif
