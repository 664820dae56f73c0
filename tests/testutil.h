// testutil.h: minimal test harness. Each check prints PASS/FAIL with its measured value; a test
// binary returns test_summary(), which is non-zero when any check failed or none ran.
#ifndef HT_TESTUTIL_H
#define HT_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

typedef struct { int passed, failed; } TestState;

#define T_CHECK(ts, cond, ...) do { \
    if (cond) { (ts)->passed++; printf("  PASS "); } \
    else { (ts)->failed++; printf("  FAIL (%s:%d) ", __FILE__, __LINE__); } \
    printf(__VA_ARGS__); printf("\n"); fflush(stdout); } while (0)

// |a - b| <= atol + rtol * max(|a|, |b|)
static inline int t_close(double a, double b, double atol, double rtol) {
    double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    return fabs(a - b) <= atol + rtol * m && !isnan(a) && !isnan(b);
}

// Where tests find real MNIST: $HYPERTRAIN_TEST_DATA (as in the tests/t_*.sh scripts), else
// ../shared/data/mnist. HYPERTRAIN_TEST_DATA=/nonexistent shows what runs without it. A check
// that needs no images must not sit behind this (docs/testing.md).
static inline const char *t_mnist_dir(void) {
    const char *d = getenv("HYPERTRAIN_TEST_DATA");
    return d && *d ? d : "../shared/data/mnist";
}

// Called first in a forked child that tests a fatal error: ht_fatal exits with what the failed
// call had allocated still held (by design), which LeakSanitizer would report at exit. Without
// the sanitizer build (make SANITIZE=1) it does nothing.
static inline void t_child_no_leak_check(void) {
#if defined(__SANITIZE_ADDRESS__)
    __lsan_disable();
#endif
}

static inline int test_summary(const TestState *ts, const char *name) {
    printf("%s: %d passed, %d failed\n", name, ts->passed, ts->failed);
    if (ts->passed + ts->failed == 0) { printf("%s: FAIL: no checks ran\n", name); return 1; }
    return ts->failed ? 1 : 0;
}

#endif
