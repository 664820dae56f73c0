// common.h: error checking macros, allocation helpers, checked size arithmetic, timing. Every
// fallible call goes through one of these so that a failure gives one clear line and ends every
// rank.
#ifndef HT_COMMON_H
#define HT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HT_VERSION "0.1.0"

// Prints "<program>: error: <msg>" (one line; " (file:line)" appended only with HT_DEBUG=1) and
// ends the process, or every rank of an MPI job (comm_fatal: printed once when every rank fails
// alike, else the failing rank's message and MPI_Abort). Never returns.
void ht_fatal(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
#define HT_FATAL(...) ht_fatal(__FILE__, __LINE__, __VA_ARGS__)
#ifdef HT_FUZZ
// Fuzz builds only (make fuzz, fuzz/): when a harness points this at its jmp_buf, ht_fatal formats
// the message (printed only when $HT_FUZZ_VERBOSE is set) and longjmps there instead of ending
// the process, so that a clean one-line error is not reported as a crash. Never set otherwise.
#include <setjmp.h>
extern jmp_buf *ht_fuzz_escape;
#endif
// Always-on check (never compiled out, unlike assert).
#define HT_CHECK(cond, ...) do { if (!(cond)) ht_fatal(__FILE__, __LINE__, __VA_ARGS__); } while (0)

void *ht_malloc(size_t n, const char *file, int line);
void *ht_calloc(size_t n, size_t size, const char *file, int line);
void *ht_realloc(void *p, size_t n, const char *file, int line);
char *ht_strdup(const char *s, const char *file, int line);
FILE *ht_fopen(const char *path, const char *mode, const char *file, int line);
void ht_fclose(FILE *f, const char *path, const char *file, int line);
#define XMALLOC(n) ht_malloc((n), __FILE__, __LINE__)
#define XCALLOC(n, s) ht_calloc((n), (s), __FILE__, __LINE__)
#define XREALLOC(p, n) ht_realloc((p), (n), __FILE__, __LINE__)
#define XSTRDUP(s) ht_strdup((s), __FILE__, __LINE__)
#define XFOPEN(p, m) ht_fopen((p), (m), __FILE__, __LINE__)
#define XFCLOSE(f, p) ht_fclose((f), (p), __FILE__, __LINE__)

// snprintf into a fixed buffer that must hold the whole result: truncation (or an encoding
// error) is fatal and names what was being formatted, instead of silently using a shorter string
// (a cut path is a different path). Returns the length written.
int ht_snprintf(const char *file, int line, char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define XSNPRINTF(buf, n, ...) ht_snprintf(__FILE__, __LINE__, (buf), (n), __VA_ARGS__)

// 64-byte aligned allocation (for SIMD-friendly flat buffers); free with free().
float *ht_alloc_floats(size_t n, const char *file, int line);
#define XALLOC_FLOATS(n) ht_alloc_floats((n), __FILE__, __LINE__)

// ---- Checked size arithmetic ----
// Sizes that come from a job, a command line or a file are multiplied with these, never with a
// bare `*`: a product that does not fit in size_t is fatal, and the message says what was being
// sized ("target layer 2: 65536 filters x 1048577 weights each"), so the user sees which keys
// are too large instead of a wrapped count or a crash.
//
// a * b, or fatal "<what>: <a> x <b> is too large (the product overflows 64 bits)".
size_t ht_mul_size(const char *file, int line, size_t a, size_t b, const char *what, ...)
    __attribute__((format(printf, 5, 6)));
#define XMUL(a, b, ...) ht_mul_size(__FILE__, __LINE__, (size_t)(a), (size_t)(b), __VA_ARGS__)
// a + b, the same for sums.
size_t ht_add_size(const char *file, int line, size_t a, size_t b, const char *what, ...)
    __attribute__((format(printf, 5, 6)));
#define XADD(a, b, ...) ht_add_size(__FILE__, __LINE__, (size_t)(a), (size_t)(b), __VA_ARGS__)
// Non-fatal form: 1 (and *out untouched) when a * b overflows.
static inline int ht_mul_overflows(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return 1;
    *out = r;
    return 0;
}
// Array allocations: count x size bytes with the product checked.
#define XMALLOC_N(count, size) XMALLOC(XMUL((count), (size), "allocation of %zu x %zu bytes", \
                                            (size_t)(count), (size_t)(size)))

// Physical memory of this machine in bytes (0 if unknown).
size_t ht_phys_memory_bytes(void);
// Fatal before allocating when `bytes` exceed this machine's physical memory: "<what> needs
// 12.0 GiB, more than the 7.8 GiB of memory of this machine". No-op if the memory is unknown.
void ht_check_memory(const char *file, int line, size_t bytes, const char *what, ...)
    __attribute__((format(printf, 4, 5)));
#define HT_CHECK_MEMORY(bytes, ...) ht_check_memory(__FILE__, __LINE__, (bytes), __VA_ARGS__)

double ht_now(void);          // monotonic seconds
size_t ht_peak_rss_bytes(void); // peak resident set size of this process

// Reads a whole file into a NUL-terminated buffer (fatal on error). *len may be NULL.
char *ht_read_file(const char *path, size_t *len);

// Creates a directory and its parents (like mkdir -p); fatal with a clear message on failure.
void ht_mkdir_p(const char *path);

#endif
