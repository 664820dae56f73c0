// resultio.c: see resultio.h.
#include "resultio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "sha256.h"

// Appends s to buf (shell-quoted when it holds anything but [A-Za-z0-9_./:=,+-]).
static void append_quoted(char **buf, size_t *len, size_t *cap, const char *s) {
    int plain = *s != '\0';
    for (const char *c = s; *c; c++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=,+-", *c)) plain = 0;
    const size_t need = *len + 4 * strlen(s) + 4;
    if (need > *cap) {
        *cap = need * 2;
        *buf = XREALLOC(*buf, *cap);
    }
    char *o = *buf + *len;
    if (*len) *o++ = ' ';
    if (plain) { strcpy(o, s); o += strlen(s); }
    else {
        *o++ = '\'';
        for (const char *c = s; *c; c++) {
            if (*c == '\'') { memcpy(o, "'\\''", 4); o += 4; }
            else *o++ = *c;
        }
        *o++ = '\'';
    }
    *o = '\0';
    *len = (size_t)(o - *buf);
}

void resultio_provenance(ResultFile *r, const char *name, int argc, char **argv) {
    char cmd[128];
    XSNPRINTF(cmd, sizeof(cmd), "hyperanalyze %s", name);
    result_attr_str(r, "/", "command", cmd);
    result_attr_str(r, "/", "tool_version", HT_VERSION);
    size_t len = 0, cap = 64;
    char *line = XMALLOC(cap);
    line[0] = '\0';
    append_quoted(&line, &len, &cap, "hyperanalyze");
    for (int i = 0; i < argc; i++) append_quoted(&line, &len, &cap, argv[i]);
    result_attr_str(r, "/", "command_line", line);
    free(line);
}

void resultio_file_sha256(const char *path, char hex[65]) {
    FILE *f = XFOPEN(path, "rb");
    Sha256 h;
    sha256_init(&h);
    const size_t cap = 1 << 20;
    unsigned char *buf = XMALLOC(cap);
    size_t got;
    while ((got = fread(buf, 1, cap, f)) > 0) sha256_update(&h, buf, got);
    if (ferror(f)) HT_FATAL("cannot read '%s' to hash it: %s", path, strerror(errno));
    free(buf);
    XFCLOSE(f, path);
    uint8_t d[32];
    sha256_final(&h, d);
    sha256_to_hex(d, hex);
}

void resultio_input(ResultFile *r, const char *role, const char *path, const char *hex) {
    char name[96];
    result_attr_str(r, "/", role, path);
    XSNPRINTF(name, sizeof(name), "%s_sha256", role);
    result_attr_str(r, "/", name, hex);
}

void resultio_f64(ResultFile *r, const char *name, int ndim, const size_t *dims, const double *data,
                  const char *axes, const char *meaning) {
    result_f64(r, name, ndim, dims, data);
    result_attr_str(r, name, "axes", axes);
    result_attr_str(r, name, "meaning", meaning);
}

void resultio_i64(ResultFile *r, const char *name, int ndim, const size_t *dims, const int64_t *data,
                  const char *axes, const char *meaning) {
    result_i64(r, name, ndim, dims, data);
    result_attr_str(r, name, "axes", axes);
    result_attr_str(r, name, "meaning", meaning);
}
