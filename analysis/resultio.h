// resultio.h: self-describing result files (issue #14, "the page and the tools"): on top of
// src/resultfile.h's ResultFile, the provenance every result of hyperanalyze accuracy, ensemble,
// ood, baseline, diversity, shift and calibrate carries (tests/check_resultfiles.py checks it), so
// that an h5py user needs no docs to read it:
//   root attributes  command ("hyperanalyze NAME"), tool_version (HT_VERSION), command_line (the
//                    full command, shell-quoted), and per input file a role attribute (e.g.
//                    "samples", "baseline") holding its path and "<role>_sha256" the SHA-256 of
//                    its bytes;
//   dataset attributes  "axes" (what each axis indexes, e.g. "(pair)" or "(before|after, size, bin)")
//                    and "meaning" (what the numbers are, with the formula).
#ifndef HT_RESULTIO_H
#define HT_RESULTIO_H

#include <stddef.h>

#include "resultfile.h"

// command "hyperanalyze <name>"; argv as the command got it (argv[0] = its name).
void resultio_provenance(ResultFile *r, const char *name, int argc, char **argv);
// Attributes role = path and role_sha256 = sha256_hex (from resultio_file_sha256, computed before
// result_create so that a read error leaves no temporary result file behind).
void resultio_input(ResultFile *r, const char *role, const char *path, const char *sha256_hex);
// Writes a float64 dataset with its "axes" and "meaning" attributes.
void resultio_f64(ResultFile *r, const char *name, int ndim, const size_t *dims, const double *data,
                  const char *axes, const char *meaning);
void resultio_i64(ResultFile *r, const char *name, int ndim, const size_t *dims, const int64_t *data,
                  const char *axes, const char *meaning);
// SHA-256 (hex) of a file's bytes; fatal with one line naming the file on a read error.
void resultio_file_sha256(const char *path, char hex[65]);

#endif
