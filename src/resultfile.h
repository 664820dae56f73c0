// resultfile.h: the result files of the analysis tools: small HDF5 files written under a temporary
// name and renamed when closed (src/tmpfiles.h); every failure is one line naming the file and the
// object. analysis/resultio.h adds the provenance and dataset descriptions on top.
#ifndef HT_RESULTFILE_H
#define HT_RESULTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"   // HT_PATH_MAX

typedef struct {
    char path[HT_PATH_MAX];
    char tmp[HT_PATH_MAX + 32];
    int64_t file;
} ResultFile;

// Creates path.tmp.<pid>; result_close renames it to path. Datasets and attributes take absolute
// or relative names; intermediate groups are created. obj "" or "/" is the root.
void result_create(ResultFile *r, const char *path);
void result_f64(ResultFile *r, const char *name, int ndim, const size_t *dims, const double *data);
void result_f32(ResultFile *r, const char *name, int ndim, const size_t *dims, const float *data);
void result_i64(ResultFile *r, const char *name, int ndim, const size_t *dims, const int64_t *data);
void result_attr_str(ResultFile *r, const char *obj, const char *name, const char *value);
void result_attr_f64(ResultFile *r, const char *obj, const char *name, double value);
void result_attr_i64(ResultFile *r, const char *obj, const char *name, int64_t value);
void result_close(ResultFile *r);

#endif
