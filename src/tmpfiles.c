// tmpfiles.c: see tmpfiles.h.
#include "tmpfiles.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "config.h"   // HT_PATH_MAX

// Temporary files being written ("<path>.tmp.<pid>"): removed at exit if a fatal error ends the
// process before they were renamed (under MPI_Abort they may stay; readers never open them).
// Only a fatal error can exit while one is registered (every normal path renames and unregisters
// first), and then the process ends here with status 1 (ht_fatal's) without running HDF5's own exit
// handler: after a failed write (disk full, file-size limit) HDF5 1.10 crashes with a segmentation
// fault while closing the broken file, which would turn our one-line error into a crash.
#define MAX_TMP 4
static char g_tmp[MAX_TMP][HT_PATH_MAX + 32];
static int g_h5_failed = 0;   // an HDF5 call failed: skip HDF5's exit handler

void tmpf_remove_now(void) {
    g_h5_failed = 1;
    for (int i = 0; i < MAX_TMP; i++)
        if (g_tmp[i][0]) { unlink(g_tmp[i]); g_tmp[i][0] = '\0'; }
}

static void remove_tmp_files(void) {
    int any = g_h5_failed;
    for (int i = 0; i < MAX_TMP; i++)
        if (g_tmp[i][0]) { unlink(g_tmp[i]); g_tmp[i][0] = '\0'; any = 1; }
    if (any) {
        fflush(NULL);
        _exit(1);
    }
}

void tmpf_register(const char *tmp) {
    static int registered = 0;
    if (!registered) { atexit(remove_tmp_files); registered = 1; }
    for (int i = 0; i < MAX_TMP; i++)
        if (!g_tmp[i][0]) { snprintf(g_tmp[i], sizeof(g_tmp[i]), "%s", tmp); return; }
}

void tmpf_unregister(const char *tmp) {
    for (int i = 0; i < MAX_TMP; i++)
        if (!strcmp(g_tmp[i], tmp)) g_tmp[i][0] = '\0';
}

void tmpf_name(char *tmp, size_t n, const char *path) {
    int r = snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    HT_CHECK(r > 0 && (size_t)r < n, "output path '%s' is too long", path);
}

// Renames tmp over path (atomic); fatal naming both on failure.
void tmpf_commit(const char *tmp, const char *path, const char *kind) {
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        tmpf_unregister(tmp);
        HT_FATAL("cannot write %s '%s': renaming '%s' to it failed: %s", kind, path, tmp, strerror(e));
    }
    tmpf_unregister(tmp);
}
