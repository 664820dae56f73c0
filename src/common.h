// common.h: error checking macros, allocation helpers, timing. Every fallible call goes
// through one of these so that a failure reports file and line and ends every rank.
#ifndef HT_COMMON_H
#define HT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define HT_VERSION "0.1.0"

// Prints "hypertrain: error: <msg> (file:line)" to stderr and ends the process, or every rank
// of an MPI job (MPI_Abort). Never returns.
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

double ht_now(void);          // monotonic seconds
size_t ht_peak_rss_bytes(void); // peak resident set size of this process

// Reads a whole file into a NUL-terminated buffer (fatal on error). *len may be NULL.
char *ht_read_file(const char *path, size_t *len);

// Creates a directory and its parents (like mkdir -p); fatal with a clear message on failure.
void ht_mkdir_p(const char *path);

#endif
