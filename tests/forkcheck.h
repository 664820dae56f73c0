// forkcheck.h: run a function that must fail in a forked child and capture what it wrote to
// stderr, for the tests of fatal errors (ht_fatal exits the process). Call before any OpenMP
// thread exists: a forked child of a multithreaded process cannot run LeakSanitizer's exit check
// cleanly (make SANITIZE=1). Needs the POSIX headers, so it is apart from testutil.h.
#ifndef HT_FORKCHECK_H
#define HT_FORKCHECK_H

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "testutil.h"

typedef struct {
    int exit_code;     // the child's exit status, -1 when it did not exit normally
    int lines;         // lines written to stderr
    char err[512];     // stderr (truncated), without its last newline
} ChildResult;

// Forks; the child disables the leak check, points stderr at a pipe and calls fn(ctx); if fn
// returns, the child exits 0 (which the caller's check should treat as "not refused").
static inline ChildResult t_run_child(void (*fn)(void *ctx), void *ctx) {
    int fds[2];
    HT_CHECK(pipe(fds) == 0, "pipe failed");
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    HT_CHECK(pid >= 0, "fork failed");
    if (pid == 0) {
        t_child_no_leak_check();
        close(fds[0]);
        dup2(fds[1], 2);
        fn(ctx);
        _exit(0);
    }
    close(fds[1]);
    ChildResult r;
    memset(&r, 0, sizeof(r));
    size_t n = 0;
    ssize_t got;
    while (n + 1 < sizeof(r.err) && (got = read(fds[0], r.err + n, sizeof(r.err) - 1 - n)) > 0) n += (size_t)got;
    r.err[n] = '\0';
    close(fds[0]);
    int st = 0;
    HT_CHECK(waitpid(pid, &st, 0) == pid, "waitpid failed");
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    for (size_t i = 0; i < n; i++) r.lines += r.err[i] == '\n';
    if (n && r.err[n - 1] == '\n') r.err[n - 1] = '\0';
    return r;
}

#endif
