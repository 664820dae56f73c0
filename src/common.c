#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "comm.h"

void ht_fatal(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "hypertrain: error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (%s:%d)\n", file, line);
    fflush(stderr);
    comm_abort(1);
}

void *ht_malloc(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) ht_fatal(file, line, "out of memory allocating %zu bytes", n);
    return p;
}

void *ht_calloc(size_t n, size_t size, const char *file, int line) {
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

float *ht_alloc_floats(size_t n, const char *file, int line) {
    void *p = NULL;
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        ht_fatal(file, line, "out of memory allocating %zu floats", n);
    memset(p, 0, bytes ? bytes : 64);
    return p;
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
