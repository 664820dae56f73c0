// tmpfiles.h: files written under a temporary name "<path>.tmp.<pid>" and renamed over their final
// name when complete (sample sets, src/sampleset.c; analysis result files, src/resultfile.c), so
// that a reader never sees a half-written file and a failed write leaves an existing file intact.
//
// A registered temporary file is removed at exit if a fatal error ends the process before it was
// renamed; the process then ends with status 1 without running HDF5's exit handler (after a failed
// write HDF5 1.10 can crash while closing the broken file). tmpf_remove_now is the on_error hook
// of H5Ctx (src/h5util.h) for every HDF5 call on these files.
#ifndef HT_TMPFILES_H
#define HT_TMPFILES_H

#include <stddef.h>

// tmp = "<path>.tmp.<pid>" (fatal if it does not fit in n).
void tmpf_name(char *tmp, size_t n, const char *path);
// Registers tmp for removal at a fatal exit (at most 4 at once).
void tmpf_register(const char *tmp);
void tmpf_unregister(const char *tmp);
// Renames tmp over path (atomic) and unregisters it; fatal naming both (kind: "sample set", ...).
void tmpf_commit(const char *tmp, const char *path, const char *kind);
// Removes every registered temporary file now and marks HDF5 as failed (H5Ctx.on_error).
void tmpf_remove_now(void);

#endif
