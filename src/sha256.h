// sha256.h: SHA-256 (FIPS 180-4), streaming, for verifying data files while they are read.
#ifndef HT_SHA256_H
#define HT_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];       // chaining state
    uint64_t nbytes;     // message length so far
    uint8_t block[64];   // pending partial block
    size_t nblock;       // bytes in block
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
// Finishes the hash: digest[0..32). The context must be re-initialized before reuse.
void sha256_final(Sha256 *s, uint8_t digest[32]);
// Lower-case hex of a digest, NUL-terminated.
void sha256_to_hex(const uint8_t digest[32], char hex[65]);
// One-shot: hex digest of data[0..n).
void sha256_hex(const void *data, size_t n, char hex[65]);

#endif
