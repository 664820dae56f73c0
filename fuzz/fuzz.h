// fuzz.h: what every libFuzzer harness of fuzz/ shares (docs/fuzzing.md). Built only by
// `make fuzz` (clang, -DHT_FUZZ): ht_fatal longjmps to the harness instead of exiting, so a clean
// one-line error is an ordinary outcome and only a real crash, hang or sanitizer report counts.
#ifndef HT_FUZZ_H
#define HT_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

#ifndef HT_FUZZ
#error "fuzz/ harnesses are built with -DHT_FUZZ (make fuzz)"
#endif

// Runs fn(arg); returns 0 when it returned, 1 when it ended in a fatal error (ht_fatal).
static inline int fuzz_try(void (*fn)(void *), void *arg) {
    jmp_buf env;
    int failed = 0;
    if (setjmp(env) == 0) {
        ht_fuzz_escape = &env;
        fn(arg);
    } else {
        failed = 1;
    }
    ht_fuzz_escape = NULL;
    return failed;
}

// A per-process scratch file name, in $TMPDIR, else /dev/shm (memory), else /tmp.
static inline void fuzz_tmp_path(char *out, size_t n, const char *tag) {
    const char *dir = getenv("TMPDIR");
    if (!dir || !dir[0]) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    XSNPRINTF(out, n, "%s/ht_fuzz_%s_%ld", dir, tag, (long)getpid());
}

// Writes size bytes to path (abort on failure: the harness itself is broken then).
static inline void fuzz_write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || (size && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#endif
