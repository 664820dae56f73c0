// testutil.h: minimal test harness. Each check prints PASS/FAIL with its measured value; a test
// binary returns test_summary(), which is non-zero when any check failed or none ran.
#ifndef HT_TESTUTIL_H
#define HT_TESTUTIL_H

#include <math.h>
#include <stdio.h>

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

static inline int test_summary(const TestState *ts, const char *name) {
    printf("%s: %d passed, %d failed\n", name, ts->passed, ts->failed);
    if (ts->passed + ts->failed == 0) { printf("%s: FAIL: no checks ran\n", name); return 1; }
    return ts->failed ? 1 : 0;
}

#endif
