// test_checkpoint.c: HDF5 checkpoints. Round trip (bit-exact), atomicity (a failed or crashed
// write leaves the previous checkpoint readable), every documented read error (each in a forked
// child: non-zero exit and one clear line naming the file and dataset), latest/prune, and the
// layout as users see it (tests/check_checkpoint.py with h5py, h5dump -H).
// Run from the repository root.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>

#include "checkpoint.h"
#include "common.h"
#include "testutil.h"

char *mkdtemp(char *tmpl);   // POSIX 2008, declared by glibc only with extra feature macros

// ---- a hand-made parameter table (no config.c) ----

enum { TABLE_FULL, TABLE_MISSING, TABLE_SHAPE };

static void add_view(ParamTable *t, int stat, const char *name, int d0, int d1) {
    ParamView *views = stat ? t->stats : t->views;
    int *n = stat ? &t->n_stats : &t->n_views;
    size_t *total = stat ? &t->n_stat : &t->n_params;
    ParamView *v = &views[(*n)++];
    snprintf(v->name, sizeof(v->name), "%s", name);
    v->offset = *total;
    v->ndim = d1 ? 2 : 1;
    v->shape[0] = d0;
    v->shape[1] = d1;
    v->size = (size_t)d0 * (size_t)(d1 ? d1 : 1);
    *total += v->size;
}

// FULL: the architecture. MISSING: lacks gen1/dense1/kernel. SHAPE: gen1/dense0/kernel is
// (40, 26) instead of (40, 27), as if the target layer had one weight fewer per filter.
static void make_table(ParamTable *t, int variant) {
    memset(t, 0, sizeof(*t));
    add_view(t, 0, "extractor/dense0/kernel", 7, 5);
    add_view(t, 0, "extractor/bn0/gamma", 5, 0);
    add_view(t, 0, "extractor/bn0/beta", 5, 0);
    add_view(t, 0, "gen1/dense0/kernel", 40, variant == TABLE_SHAPE ? 26 : 27);
    if (variant != TABLE_MISSING) add_view(t, 0, "gen1/dense1/kernel", 3, 4);
    add_view(t, 1, "extractor/bn0/moving_mean", 5, 0);
    add_view(t, 1, "extractor/bn0/moving_var", 5, 0);
}

typedef struct {
    ParamTable t;
    float *params, *m, *v, *stats;
} State;

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

// Random finite floats of every magnitude (random bit patterns, NaN/Inf exponents avoided), plus
// values that a lossy path would change: -0, denormals, the extremes.
static void fill(float *x, size_t n, uint64_t *s) {
    for (size_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)(rng_next(s) >> 32);
        if (((b >> 23) & 0xff) == 0xff) b &= ~(1u << 30);
        memcpy(&x[i], &b, sizeof(b));
    }
    const float special[] = { -0.0f, 1e-45f, -1.1754942e-38f, 3.4028235e38f, 1.0f };
    for (size_t i = 0; i < n && i < 5; i++) x[i] = special[i];
}

static void state_init(State *st, int variant, uint64_t seed) {
    make_table(&st->t, variant);
    st->params = XALLOC_FLOATS(st->t.n_params);
    st->m = XALLOC_FLOATS(st->t.n_params);
    st->v = XALLOC_FLOATS(st->t.n_params);
    st->stats = XALLOC_FLOATS(st->t.n_stat);
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    fill(st->params, st->t.n_params, &s);
    fill(st->m, st->t.n_params, &s);
    fill(st->v, st->t.n_params, &s);
    fill(st->stats, st->t.n_stat, &s);
}

// Every element is its index within its tensor (row-major), negated for m, times 2 for v, so
// that check_checkpoint.py --pattern can verify what h5py sees element by element.
static void state_pattern(State *st) {
    for (int i = 0; i < st->t.n_views; i++) {
        const ParamView *w = &st->t.views[i];
        for (size_t k = 0; k < w->size; k++) {
            st->params[w->offset + k] = (float)k;
            st->m[w->offset + k] = -(float)k;
            st->v[w->offset + k] = 2.0f * (float)k;
        }
    }
    for (int i = 0; i < st->t.n_stats; i++)
        for (size_t k = 0; k < st->t.stats[i].size; k++) st->stats[st->t.stats[i].offset + k] = (float)k;
}

static void state_free(State *st) { free(st->params); free(st->m); free(st->v); free(st->stats); }

static const CkptMeta META = { 1234, 0xFFFFFFFFFFFFFFF1ULL, 9876543210LL, 2.9263e-4, 1e5, 3 };

static char *make_job(void) {
    // Valid JSON, non-ASCII, and long (100 KB) to exercise large variable-length attributes.
    size_t pad = 100000;
    char *j = XMALLOC(pad + 200);
    int k = snprintf(j, 200, "{\"name\": \"test \xce\xbb=1e5\", \"lambda\": 100000.0, \"notes\": \"");
    memset(j + k, 'x', pad);
    snprintf(j + k + pad, 20, "\"}");
    return j;
}

static void write_state(const char *path, const State *st, const char *job) {
    checkpoint_write(path, &st->t, st->params, st->m, st->v, st->stats, &META, job);
}

// 1 if the checkpoint at path holds exactly st's values (read with st's table).
static int reads_back(const char *path, const State *st) {
    State r;
    make_table(&r.t, TABLE_FULL);
    r.params = XALLOC_FLOATS(st->t.n_params); r.m = XALLOC_FLOATS(st->t.n_params);
    r.v = XALLOC_FLOATS(st->t.n_params); r.stats = XALLOC_FLOATS(st->t.n_stat);
    memset(r.params, 0xA5, st->t.n_params * sizeof(float));
    memset(r.stats, 0xA5, st->t.n_stat * sizeof(float));
    CkptMeta meta;
    checkpoint_read(path, &st->t, r.params, r.m, r.v, r.stats, &meta);
    size_t pb = st->t.n_params * sizeof(float);
    int ok = !memcmp(r.params, st->params, pb) && !memcmp(r.m, st->m, pb) && !memcmp(r.v, st->v, pb) &&
             !memcmp(r.stats, st->stats, st->t.n_stat * sizeof(float));
    state_free(&r);
    return ok;
}

// ---- running a call that must fail, in a child ----

typedef void (*ChildFn)(void *arg);

typedef struct {
    int exited, status, signaled;   // exit status, or the signal that ended the child
    char err[4096];
} ChildResult;

// Runs fn(arg) in a child whose stderr goes to a pipe. `limit_fsize` > 0 caps the size of files
// the child may write (RLIMIT_FSIZE); `die_on_xfsz` leaves SIGXFSZ fatal (a crash mid-write).
static ChildResult run_child(ChildFn fn, void *arg, long limit_fsize, int die_on_xfsz) {
    ChildResult r;
    memset(&r, 0, sizeof(r));
    int fds[2];
    if (pipe(fds) != 0) { perror("pipe"); exit(2); }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(2); }
    if (pid == 0) {
        t_child_no_leak_check();
        close(fds[0]);
        dup2(fds[1], 2);
        if (limit_fsize > 0) {
            struct rlimit no_core = { 0, 0 }, fs = { (rlim_t)limit_fsize, (rlim_t)limit_fsize };
            setrlimit(RLIMIT_CORE, &no_core);
            setrlimit(RLIMIT_FSIZE, &fs);
            if (!die_on_xfsz) signal(SIGXFSZ, SIG_IGN);
        }
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    char sink[1024];
    while ((got = read(fds[0], n + 1 < sizeof(r.err) ? r.err + n : sink,
                       n + 1 < sizeof(r.err) ? sizeof(r.err) - 1 - n : sizeof(sink))) > 0)
        if (n + 1 < sizeof(r.err)) n += (size_t)got;
    r.err[n] = '\0';
    close(fds[0]);
    int ws;
    waitpid(pid, &ws, 0);
    r.exited = WIFEXITED(ws);
    r.status = r.exited ? WEXITSTATUS(ws) : 0;
    r.signaled = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
    return r;
}

static int count_lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

// The child must exit non-zero with exactly one line on stderr containing every `want` string.
static void expect_fatal(TestState *ts, const char *label, ChildFn fn, void *arg, const char *want1,
                         const char *want2) {
    ChildResult r = run_child(fn, arg, 0, 0);
    int ok = r.exited && r.status != 0 && strstr(r.err, want1) && (!want2 || strstr(r.err, want2)) &&
             count_lines(r.err) == 1;
    T_CHECK(ts, ok, "%s: exit %d, stderr: %s", label, r.exited ? r.status : -r.signaled,
            r.err[0] ? r.err : "(empty)\n");
    if (!ok) printf("    expected one line containing \"%s\"%s%s%s\n", want1, want2 ? " and \"" : "",
                    want2 ? want2 : "", want2 ? "\"" : "");
}

typedef struct {
    const char *path;
    int variant;
    const State *st;
    const char *job;
} CallArgs;

static void child_read(void *p) {
    CallArgs *a = p;
    State r;
    state_init(&r, a->variant, 1);
    CkptMeta meta;
    checkpoint_read(a->path, &r.t, r.params, r.m, r.v, r.stats, &meta);
}

static void child_read_job(void *p) { free(checkpoint_read_job(((CallArgs *)p)->path)); }

static void child_write(void *p) {
    CallArgs *a = p;
    write_state(a->path, a->st, a->job);
}

// ---- file helpers ----

static void write_bytes(const char *path, const void *buf, size_t n) {
    FILE *f = XFOPEN(path, "wb");
    if (n && fwrite(buf, 1, n, f) != n) { perror(path); exit(2); }
    XFCLOSE(f, path);
}

static int files_equal(const char *a, const char *b) {
    size_t na, nb;
    char *x = ht_read_file(a, &na), *y = ht_read_file(b, &nb);
    int eq = na == nb && !memcmp(x, y, na);
    free(x); free(y);
    return eq;
}

static int exists(const char *path) { struct stat s; return stat(path, &s) == 0; }

// Number of "*.tmp.*" files left in dir.
static int count_tmp(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "exit $(ls -1 '%s' | grep -c '\\.tmp\\.')", dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Edits a written checkpoint through the HDF5 API (as a damaged or foreign file would look).
enum { EDIT_VERSION, EDIT_FORMAT, EDIT_NO_FORMAT, EDIT_NO_JOB, EDIT_DTYPE };

static void edit_file(const char *path, int edit) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) { fprintf(stderr, "cannot open %s\n", path); exit(2); }
    hid_t sp = H5Screate(H5S_SCALAR);
    herr_t e = 0;
    if (edit == EDIT_VERSION) {
        int two = 2;
        e |= H5Adelete(f, "format_version");
        hid_t a = H5Acreate2(f, "format_version", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        e |= H5Awrite(a, H5T_NATIVE_INT, &two);
        e |= H5Aclose(a);
    } else if (edit == EDIT_FORMAT) {
        const char *s = "some-other-format";
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
        e |= H5Adelete(f, "format");
        hid_t a = H5Acreate2(f, "format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
        e |= H5Awrite(a, t, &s);
        e |= H5Aclose(a);
        H5Tclose(t);
    } else if (edit == EDIT_NO_FORMAT) {
        e |= H5Adelete(f, "format");
    } else if (edit == EDIT_NO_JOB) {
        e |= H5Adelete(f, "job");
    } else if (edit == EDIT_DTYPE) {   // /adam/v/gen1/dense0/kernel becomes float64, same shape
        hsize_t dims[2] = { 40, 27 };
        static double zeros[40 * 27];
        e |= H5Ldelete(f, "/adam/v/gen1/dense0/kernel", H5P_DEFAULT);
        hid_t s2 = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(f, "/adam/v/gen1/dense0/kernel", H5T_IEEE_F64LE, s2, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        e |= H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros);
        e |= H5Dclose(d);
        H5Sclose(s2);
    }
    H5Sclose(sp);
    if (e < 0 || H5Fclose(f) < 0) { fprintf(stderr, "editing %s failed\n", path); exit(2); }
}

// ---- the tests ----

static void test_round_trip(TestState *ts, const char *dir, const State *st, const char *job) {
    printf("round trip\n");
    char a[1024], b[1024];
    snprintf(a, sizeof(a), "%s/a.h5", dir);
    snprintf(b, sizeof(b), "%s/b.h5", dir);
    write_state(a, st, job);
    T_CHECK(ts, reads_back(a, st), "params, adam m/v and bn stats read back bit-exactly (%zu + %zu floats)",
            3 * st->t.n_params, st->t.n_stat);
    CkptMeta meta;
    State r;
    state_init(&r, TABLE_FULL, 2);
    checkpoint_read(a, &r.t, r.params, NULL, NULL, NULL, &meta);
    T_CHECK(ts, meta.step == META.step && meta.seed == META.seed && meta.data_cursor == META.data_cursor &&
            meta.lr == META.lr && meta.lambda == META.lambda && meta.world_size == META.world_size,
            "meta equal: step %lld seed %llx cursor %lld lr %.17g lambda %g world %d", (long long)meta.step,
            (unsigned long long)meta.seed, (long long)meta.data_cursor, meta.lr, meta.lambda, meta.world_size);
    T_CHECK(ts, !memcmp(r.params, st->params, st->t.n_params * sizeof(float)),
            "read with adam/stats/meta NULL gives the params alone");
    state_free(&r);
    char *j = checkpoint_read_job(a);
    T_CHECK(ts, strcmp(j, job) == 0, "job JSON equal (%zu bytes, non-ASCII included)", strlen(j));
    free(j);
    struct timespec pause = { 1, 100000000 };   // over a second later: timestamps would differ
    nanosleep(&pause, NULL);
    write_state(b, st, job);
    T_CHECK(ts, files_equal(a, b), "the same state written 1.1 s later gives a byte-identical file");
    State other;
    state_init(&other, TABLE_FULL, 3);
    write_state(a, &other, job);
    T_CHECK(ts, reads_back(a, &other) && !reads_back(a, st), "overwriting an existing checkpoint replaces it");
    T_CHECK(ts, count_tmp(dir) == 0, "no temporary files left after successful writes");
    state_free(&other);
}

static void test_atomicity(TestState *ts, const char *dir, const State *st, const char *job) {
    printf("atomic writes\n");
    char good[1024], nodir[1024], notdir[1024], under_file[1100];
    snprintf(good, sizeof(good), "%s/good.h5", dir);
    write_state(good, st, job);
    State next;
    state_init(&next, TABLE_FULL, 4);

    snprintf(nodir, sizeof(nodir), "%s/nope/ckpt.h5", dir);
    CallArgs a1 = { nodir, TABLE_FULL, &next, job };
    char want[1100];
    snprintf(want, sizeof(want), "cannot write checkpoint in '%s/nope': No such file or directory", dir);
    expect_fatal(ts, "write into a missing directory", child_write, &a1, want, NULL);

    snprintf(notdir, sizeof(notdir), "%s/regular", dir);
    write_bytes(notdir, "x", 1);
    snprintf(under_file, sizeof(under_file), "%s/ckpt.h5", notdir);
    CallArgs a2 = { under_file, TABLE_FULL, &next, job };
    snprintf(want, sizeof(want), "cannot write checkpoint in '%s': Not a directory", notdir);
    expect_fatal(ts, "write under a regular file", child_write, &a2, want, NULL);

    // A write that fails half way (the file size limit makes write(2) fail with EFBIG).
    CallArgs a3 = { good, TABLE_FULL, &next, job };
    ChildResult r = run_child(child_write, &a3, 8192, 0);
    snprintf(want, sizeof(want), "cannot write checkpoint '%s'", good);
    T_CHECK(ts, r.exited && r.status != 0 && strstr(r.err, want) && count_lines(r.err) == 1,
            "write failing mid-file (RLIMIT_FSIZE 8 KiB): exit %d, stderr: %s", r.status, r.err);
    T_CHECK(ts, reads_back(good, st), "the previous checkpoint is intact after the failed write");
    T_CHECK(ts, count_tmp(dir) == 0, "the failed write removed its temporary file");

    // A crash mid-write (SIGXFSZ kills the writer): old checkpoint intact, temp file ignored.
    r = run_child(child_write, &a3, 8192, 1);
    T_CHECK(ts, r.signaled == SIGXFSZ, "writer killed mid-write by signal %d", r.signaled);
    T_CHECK(ts, reads_back(good, st), "the previous checkpoint is intact after the crash");
    T_CHECK(ts, count_tmp(dir) == 1, "the crash left its temporary file (%d)", count_tmp(dir));
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/*.tmp.*", dir);
    if (system(cmd) != 0) printf("  (could not remove temporary files)\n");
    state_free(&next);
}

static void test_read_errors(TestState *ts, const char *dir, const State *st, const char *job) {
    printf("read errors\n");
    char path[1024], want[1200];
    CallArgs a = { path, TABLE_FULL, st, job };

    snprintf(path, sizeof(path), "%s/absent.h5", dir);
    expect_fatal(ts, "nonexistent file", child_read, &a, "cannot open checkpoint", path);

    snprintf(path, sizeof(path), "%s/garbage.h5", dir);
    char junk[5000];
    for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (char)(i * 7 + 3);
    write_bytes(path, junk, sizeof(junk));
    snprintf(want, sizeof(want), "'%s' is not a readable HDF5 file", path);
    expect_fatal(ts, "garbage file", child_read, &a, want, NULL);

    snprintf(path, sizeof(path), "%s/empty.h5", dir);
    write_bytes(path, "", 0);
    snprintf(want, sizeof(want), "'%s' is not a readable HDF5 file", path);
    expect_fatal(ts, "empty file", child_read, &a, want, NULL);

    char full[1024];
    snprintf(full, sizeof(full), "%s/full.h5", dir);
    write_state(full, st, job);
    size_t n;
    char *bytes = ht_read_file(full, &n);
    snprintf(path, sizeof(path), "%s/truncated.h5", dir);
    write_bytes(path, bytes, n / 2);
    free(bytes);
    snprintf(want, sizeof(want), "'%s' is not a readable HDF5 file", path);
    expect_fatal(ts, "truncated file (first half of a valid checkpoint)", child_read, &a, want, NULL);
    expect_fatal(ts, "truncated file, checkpoint_read_job", child_read_job, &a, want, NULL);

    State missing;
    state_init(&missing, TABLE_MISSING, 5);
    snprintf(path, sizeof(path), "%s/missing.h5", dir);
    write_state(path, &missing, job);
    snprintf(want, sizeof(want), "'%s': missing dataset /params/gen1/dense1/kernel", path);
    expect_fatal(ts, "missing dataset", child_read, &a, want, NULL);
    state_free(&missing);

    CallArgs extra = { full, TABLE_MISSING, st, job };
    snprintf(want, sizeof(want), "'%s': /params holds 5 datasets but this job's architecture has 4", full);
    expect_fatal(ts, "extra dataset (a larger architecture)", child_read, &extra, want,
                 "different architecture");

    State shape;
    state_init(&shape, TABLE_SHAPE, 6);
    snprintf(path, sizeof(path), "%s/shape.h5", dir);
    write_state(path, &shape, job);
    snprintf(want, sizeof(want), "'%s': /params/gen1/dense0/kernel has shape (40, 26) but this job's "
             "architecture expects (40, 27)", path);
    expect_fatal(ts, "shape mismatch", child_read, &a, want, "written for a different architecture");
    state_free(&shape);

    static const struct { int edit; const char *file, *want; ChildFn fn; } edits[] = {
        { EDIT_VERSION, "version.h5", "has checkpoint format_version 2", child_read },
        { EDIT_FORMAT, "format.h5", "is not a hypertrain checkpoint: its \"format\" attribute is "
                                    "\"some-other-format\"", child_read },
        { EDIT_NO_FORMAT, "noformat.h5", "is not a hypertrain checkpoint: it has no root attribute "
                                         "\"format\"", child_read_job },
        { EDIT_NO_JOB, "nojob.h5", "missing root attribute \"job\"", child_read_job },
        { EDIT_DTYPE, "dtype.h5", "/adam/v/gen1/dense0/kernel has type float64, but checkpoints store "
                                  "float32", child_read },
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, edits[i].file);
        write_state(path, st, job);
        edit_file(path, edits[i].edit);
        snprintf(want, sizeof(want), "'%s'", path);
        expect_fatal(ts, edits[i].file, edits[i].fn, &a, want, edits[i].want);
    }
}

static void test_latest_prune(TestState *ts, const char *dir, const State *st) {
    printf("latest / prune\n");
    char run[1024], p[1200], missing[1100];
    snprintf(run, sizeof(run), "%s/run", dir);
    ht_mkdir_p(run);
    snprintf(missing, sizeof(missing), "%s/no_such_run", dir);
    char *l = checkpoint_latest(missing);
    T_CHECK(ts, l == NULL, "latest of a missing run directory is NULL");
    l = checkpoint_latest(run);
    T_CHECK(ts, l == NULL, "latest of an empty run directory is NULL");
    checkpoint_path(p, sizeof(p), run, 12);
    char want[1200];
    snprintf(want, sizeof(want), "%s/ckpt_00000012.h5", run);
    T_CHECK(ts, strcmp(p, want) == 0, "checkpoint_path: %s", p);

    const int64_t steps[] = { 5, 100, 20, 123456789, 7 };   // 123456789 has 9 digits
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        checkpoint_path(p, sizeof(p), run, steps[i]);
        write_state(p, st, "{}");
    }
    const char *decoys[] = { "ckpt_99999999.h5.tmp.4242", "ckpt_abc.h5", "other.h5", "ckpt_000000001.h5",
                             "ckpt_99999998.h5x" };
    for (size_t i = 0; i < sizeof(decoys) / sizeof(decoys[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", run, decoys[i]);
        write_bytes(p, "x", 1);
    }
    l = checkpoint_latest(run);
    checkpoint_path(want, sizeof(want), run, 123456789);
    T_CHECK(ts, l && strcmp(l, want) == 0, "latest = %s (temporary and look-alike files ignored)", l ? l : "NULL");
    free(l);

    checkpoint_prune(run, 0);
    checkpoint_prune(run, 10);
    int all = 1;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        checkpoint_path(p, sizeof(p), run, steps[i]);
        all &= exists(p);
    }
    T_CHECK(ts, all, "prune(0) and prune(10) of 5 checkpoints delete nothing");

    checkpoint_prune(run, 3);
    int kept_ok = 1;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        checkpoint_path(p, sizeof(p), run, steps[i]);
        int should = steps[i] == 123456789 || steps[i] == 100 || steps[i] == 20;
        kept_ok &= exists(p) == should;
    }
    T_CHECK(ts, kept_ok, "prune(3) keeps exactly steps 123456789, 100, 20");
    int decoys_ok = 1;
    for (size_t i = 0; i < sizeof(decoys) / sizeof(decoys[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", run, decoys[i]);
        decoys_ok &= exists(p);
    }
    T_CHECK(ts, decoys_ok, "prune leaves other files alone");
    checkpoint_prune(run, 1);
    l = checkpoint_latest(run);
    T_CHECK(ts, l && strcmp(l, want) == 0 && reads_back(l, st), "after prune(1) the latest still reads");
    free(l);
}

// Finds a Python with h5py: "python3" first, then Debian's (pyenv shims may lack python3-h5py).
static const char *find_python(void) {
    static const char *cands[] = { "python3", "/usr/bin/python3" };
    for (size_t i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "%s -c 'import h5py, numpy' >/dev/null 2>&1", cands[i]);
        if (system(cmd) == 0) return cands[i];
    }
    return NULL;
}

static void test_user_tools(TestState *ts, const char *dir, const char *job) {
    printf("layout as users see it (h5py, h5dump)\n");
    char path[1024], cmd[2400];
    snprintf(path, sizeof(path), "%s/pattern.h5", dir);
    State st;
    state_init(&st, TABLE_FULL, 7);
    state_pattern(&st);
    write_state(path, &st, job);
    state_free(&st);

    const char *py = find_python();
    if (!py) {
        printf("  SKIPPED (no python3-h5py): tests/check_checkpoint.py\n");
    } else {
        snprintf(cmd, sizeof(cmd), "%s tests/check_checkpoint.py '%s' --pattern --expect step=1234 "
                 "--expect world_size=3 --expect data_cursor=9876543210 --expect seed=18446744073709551601 "
                 "--expect n_params=5 --expect n_stats=2", py, path);
        int rc = system(cmd);
        T_CHECK(ts, rc == 0, "%s tests/check_checkpoint.py (exit %d)", py, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
        char bad[1024];
        snprintf(bad, sizeof(bad), "%s/garbage.h5", dir);
        snprintf(cmd, sizeof(cmd), "%s tests/check_checkpoint.py '%s' >/dev/null 2>&1", py, bad);
        rc = system(cmd);
        T_CHECK(ts, rc != 0, "check_checkpoint.py fails on a non-checkpoint (exit %d)",
                WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
    }

    if (system("command -v h5dump >/dev/null 2>&1") != 0) {
        printf("  SKIPPED (no h5dump): h5dump -H\n");
        return;
    }
    snprintf(cmd, sizeof(cmd), "h5dump -H '%s' > '%s/h5dump.txt' 2>&1", path, dir);
    int rc = system(cmd);
    T_CHECK(ts, rc == 0, "h5dump -H succeeds (exit %d)", WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
    snprintf(cmd, sizeof(cmd), "grep -q 'ATTRIBUTE \"format_version\"' '%s/h5dump.txt' && "
             "grep -q 'GROUP \"bn_running\"' '%s/h5dump.txt' && "
             "grep -q 'DATASET \"kernel\"' '%s/h5dump.txt' && grep -q 'H5T_IEEE_F32LE' '%s/h5dump.txt'",
             dir, dir, dir, dir);
    T_CHECK(ts, system(cmd) == 0, "h5dump -H shows the format_version attribute, bn_running, kernel datasets, "
            "float32");
}

int main(void) {
    TestState ts = { 0, 0 };
    char dir[] = "/tmp/ht_test_checkpoint_XXXXXX";
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    State st;
    state_init(&st, TABLE_FULL, 42);
    char *job = make_job();

    test_round_trip(&ts, dir, &st, job);
    test_atomicity(&ts, dir, &st, job);
    test_read_errors(&ts, dir, &st, job);
    test_latest_prune(&ts, dir, &st);
    test_user_tools(&ts, dir, job);

    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (ts.failed == 0 && system(cmd) != 0) printf("(could not remove %s)\n", dir);
    if (ts.failed) printf("files kept in %s\n", dir);
    free(job);
    state_free(&st);
    return test_summary(&ts, "test_checkpoint");
}
