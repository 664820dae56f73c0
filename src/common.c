#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"

// The message is one line, "<program>: error: <msg>", where <program> is the name the binary was
// run as (hypertrain, hyperanalyze, a test). The source location is appended only when the
// environment sets HT_DEBUG (to anything but "" or "0"): users see the message, developers can
// ask where it came from.
#ifdef HT_FUZZ
jmp_buf *ht_fuzz_escape = NULL;
#endif

void ht_fatal(const char *file, int line, const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    fflush(stdout);
    int len = snprintf(msg, sizeof(msg), "%s: error: ", program_invocation_short_name);
    if (len < 0 || (size_t)len >= sizeof(msg)) len = 0;
    va_start(ap, fmt);
    vsnprintf(msg + len, sizeof(msg) - (size_t)len, fmt, ap);
    va_end(ap);
    // Keep it one line: a message that quotes user input (a file name, a JSON value) may hold
    // newlines or control characters.
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20) *c = ' ';
    const char *dbg = getenv("HT_DEBUG");
    len = (int)strlen(msg);
    if (dbg && dbg[0] && strcmp(dbg, "0") != 0)
        snprintf(msg + len, sizeof(msg) - (size_t)len, " (%s:%d)", file, line);
    len = (int)strlen(msg);
    if ((size_t)len + 2 > sizeof(msg)) len = (int)sizeof(msg) - 2;
    msg[len] = '\n';
    msg[len + 1] = '\0';
#ifdef HT_FUZZ
    if (ht_fuzz_escape) {
        if (getenv("HT_FUZZ_VERBOSE")) fputs(msg, stderr);
        longjmp(*ht_fuzz_escape, 1);
    }
#endif
    comm_fatal(msg, 1);
}

void *ht_malloc(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) ht_fatal(file, line, "out of memory allocating %zu bytes", n);
    return p;
}

void *ht_calloc(size_t n, size_t size, const char *file, int line) {
    size_t total;
    if (ht_mul_overflows(n, size, &total))
        ht_fatal(file, line, "cannot allocate %zu x %zu bytes: the size overflows 64 bits", n, size);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) ht_fatal(file, line, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *ht_realloc(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) ht_fatal(file, line, "out of memory reallocating %zu bytes", n);
    return q;
}

char *ht_strdup(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = ht_malloc(n, file, line);
    memcpy(p, s, n);
    return p;
}

FILE *ht_fopen(const char *path, const char *mode, const char *file, int line) {
    FILE *f = fopen(path, mode);
    if (!f) ht_fatal(file, line, "cannot open '%s' (mode %s): %s", path, mode, strerror(errno));
    return f;
}

void ht_fclose(FILE *f, const char *path, const char *file, int line) {
    if (fclose(f) != 0) ht_fatal(file, line, "error closing '%s': %s", path, strerror(errno));
}

int ht_snprintf(const char *file, int line, char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    const int r = vsnprintf(buf, n, fmt, ap);
    va_end(ap);
    if (r < 0) ht_fatal(file, line, "cannot format '%s': %s", fmt, strerror(errno));
    if ((size_t)r >= n)
        ht_fatal(file, line, "'%.60s%s' is too long (%d bytes, the limit is %zu)", buf,
                 r > 60 ? "..." : "", r, n ? n - 1 : 0);
    return r;
}

float *ht_alloc_floats(size_t n, const char *file, int line) {
    void *p = NULL;
    if (n > (SIZE_MAX - 63) / sizeof(float))
        ht_fatal(file, line, "cannot allocate %zu floats: the size overflows 64 bits", n);
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        ht_fatal(file, line, "out of memory allocating %zu floats (%.1f GiB)", n,
                 (double)bytes / (1024.0 * 1024.0 * 1024.0));
    memset(p, 0, bytes ? bytes : 64);
    return p;
}

// The fatal error of a checked size operation: the caller's description of what is being sized
// (a printf format and its arguments), the operands, and which operation overflowed.
static void __attribute__((noreturn)) size_overflow(const char *file, int line, size_t a, const char *op,
                                                    size_t b, const char *result, const char *what,
                                                    va_list ap) {
    char msg[512];
    if (vsnprintf(msg, sizeof(msg), what, ap) < 0) msg[0] = '\0';
    ht_fatal(file, line, "%s: %zu %s %zu is too large (the %s overflows 64 bits)", msg, a, op, b, result);
}

size_t ht_mul_size(const char *file, int line, size_t a, size_t b, const char *what, ...) {
    size_t r;
    if (!__builtin_mul_overflow(a, b, &r)) return r;
    va_list ap;
    va_start(ap, what);
    size_overflow(file, line, a, "x", b, "product", what, ap);
}

size_t ht_add_size(const char *file, int line, size_t a, size_t b, const char *what, ...) {
    size_t r;
    if (!__builtin_add_overflow(a, b, &r)) return r;
    va_list ap;
    va_start(ap, what);
    size_overflow(file, line, a, "+", b, "sum", what, ap);
}

size_t ht_phys_memory_bytes(void) {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    size_t r;
    return ht_mul_overflows((size_t)pages, (size_t)page, &r) ? SIZE_MAX : r;
}

void ht_check_memory(const char *file, int line, size_t bytes, const char *what, ...) {
    const size_t phys = ht_phys_memory_bytes();
    if (phys == 0 || bytes <= phys) return;
    char msg[512];
    va_list ap;
    va_start(ap, what);
    if (vsnprintf(msg, sizeof(msg), what, ap) < 0) msg[0] = '\0';
    va_end(ap);
    const double gib = 1024.0 * 1024.0 * 1024.0;
    ht_fatal(file, line, "%s needs %.1f GiB, more than the %.1f GiB of memory of this machine",
             msg, (double)bytes / gib, (double)phys / gib);
}

double ht_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t ht_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (size_t)ru.ru_maxrss * 1024; // Linux reports KiB
}

char *ht_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) HT_FATAL("cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = XMALLOC(cap);
    for (;;) {
        if (n + 1 >= cap) { cap *= 2; buf = XREALLOC(buf, cap); }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) HT_FATAL("error reading '%s': %s", path, strerror(errno));
    fclose(f);
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

void ht_mkdir_p(const char *path) {
    char *tmp = XSTRDUP(path);
    size_t n = strlen(tmp);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0') continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            HT_FATAL("cannot create directory '%s': %s", tmp, strerror(errno));
        tmp[i] = c;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        HT_FATAL("'%s' exists but is not a directory", path);
    free(tmp);
}
