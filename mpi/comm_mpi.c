// comm_mpi.c: the MPI implementation of comm.h, on host buffers. Chosen at build time (make MPI=1,
// the default when mpicc is found) and at run time by the world size: with one rank (a plain
// ./hypertrain or mpirun -np 1) every collective short-circuits to the single-process behaviour.
//
// Errors: MPI_ERRORS_RETURN is set on the communicators, and every MPI call goes through MPI_CHECK,
// which reports the call, the MPI error string and the rank, and ends every rank through
// ht_fatal -> comm_fatal: printed once and a clean exit when every rank fails the same way, else
// the failing rank's message and MPI_Abort. A failure on one rank therefore never leaves the
// others waiting in a collective.
//
// A Comm with size 1 or handle NULL (for example one built by hand in a test next to the world
// communicator) behaves exactly like comm_single.c: collectives are identities and move nothing.
#define _GNU_SOURCE // program_invocation_short_name
#include "comm.h"

#include <errno.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"

// Largest element count passed to one MPI call (counts are int); longer buffers go in chunks.
#define CHUNK ((size_t)1 << 30)

static MPI_Comm g_world = MPI_COMM_NULL; // our duplicate of MPI_COMM_WORLD (Comm.handle points here)

static void mpi_check(int err, const char *call, const char *file, int line) {
    if (err == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS) XSNPRINTF(msg, sizeof(msg), "MPI error code %d", err);
    else msg[len] = '\0';
    int init = 0, fin = 0, rank = -1;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    ht_fatal(file, line, "rank %d: %.*s failed: %s", rank, (int)strcspn(call, "("), call, msg);
}
#define MPI_CHECK(call) mpi_check((call), #call, __FILE__, __LINE__)

// True when this Comm needs no communication (one rank, or a hand-built size-1 Comm).
static int solo(const Comm *c) { return c->size <= 1 || c->handle == NULL; }
static MPI_Comm mcomm(const Comm *c) { return *(const MPI_Comm *)c->handle; }

void comm_init(Comm *c, int *argc, char ***argv) {
    memset(c, 0, sizeof(*c));
    int init = 0;
    MPI_CHECK(MPI_Initialized(&init));
    if (!init) {
        int provided = 0;
        // OpenMP threads never call MPI: only the main thread communicates.
        MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
        if (provided < MPI_THREAD_FUNNELED)
            fprintf(stderr, "%s: warning: the MPI library provides thread level %d < FUNNELED\n",
                    program_invocation_short_name, provided);
    }
    // Errors must come back to MPI_CHECK (the default handler would abort without saying where).
    MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    if (g_world == MPI_COMM_NULL) {
        MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &g_world));
        MPI_CHECK(MPI_Comm_set_errhandler(g_world, MPI_ERRORS_RETURN));
    }
    MPI_CHECK(MPI_Comm_rank(g_world, &c->rank));
    MPI_CHECK(MPI_Comm_size(g_world, &c->size));
    c->impl = "mpi";
    c->handle = &g_world;
}

void comm_finalize(Comm *c) {
    int init = 0, fin = 0;
    MPI_CHECK(MPI_Initialized(&init));
    MPI_CHECK(MPI_Finalized(&fin));
    if (!init || fin) return;
    fflush(stdout);
    fflush(stderr);
    if (g_world != MPI_COMM_NULL) MPI_CHECK(MPI_Comm_free(&g_world));
    MPI_CHECK(MPI_Finalize());
    if (c) c->handle = NULL;
}

// The MPI calls here are deliberately unchecked: this is the error path MPI_CHECK ends in.
void comm_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) {
        int rank = 0, size = 1;
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
        if (size > 1) {
            fprintf(stderr, "%s: rank %d of %d failed (see its message above); ending every rank "
                    "(MPI_Abort, exit code %d)\n", program_invocation_short_name, rank, size, code);
            fflush(stderr);
        }
        MPI_Abort(MPI_COMM_WORLD, code);
    }
    exit(code);
}

// How long a failing rank waits for the others to fail the same way before it decides that the
// failure is its own and aborts every rank.
#define FATAL_AGREE_SECONDS 5.0

void comm_fatal(const char *line, int code) {
    fflush(stdout);
    int init = 0, fin = 0, size = 1, rank = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    if (init && !fin) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &size);
    }
    if (!init || fin || size == 1) {       // one process: the message alone, no MPI banner
        fputs(line, stderr);
        fflush(stderr);
        if (init && !fin) MPI_Finalize();
        exit(code);
    }
    int in_main = 0;
    MPI_Is_thread_main(&in_main);
    if (in_main) {
        // Do all ranks fail? A non-blocking barrier on MPI_COMM_WORLD (which the training code
        // never uses: it works on a duplicate), so it cannot match a collective of ranks that
        // are still running. Rank 0 prints at once; the others print only if they fail alone.
        if (rank == 0) { fputs(line, stderr); fflush(stderr); }
        MPI_Request req;
        int done = 0;
        if (MPI_Ibarrier(MPI_COMM_WORLD, &req) == MPI_SUCCESS) {
            const double t0 = MPI_Wtime();
            while (!done && MPI_Wtime() - t0 < FATAL_AGREE_SECONDS) {
                if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) break;
                if (!done) { struct timespec ts = {0, 1000000}; nanosleep(&ts, NULL); }
            }
        }
        if (done) {                         // every rank failed: one message, a clean exit
            MPI_Finalize();
            exit(code);
        }
        if (rank != 0) fprintf(stderr, "[rank %d of %d] %s", rank, size, line);
    } else {
        fprintf(stderr, "[rank %d of %d] %s", rank, size, line);
    }
    fflush(stderr);
    comm_abort(code);
}

// ---------------------------------------------------------------- reductions

static void allreduce(Comm *c, void *buf, size_t n, MPI_Datatype type, size_t elt, MPI_Op op,
                      double *bytes, double *sec) {
    if (solo(c) || n == 0) return;
    const double t0 = MPI_Wtime();
    for (size_t off = 0; off < n; off += CHUNK) {
        const size_t k = n - off < CHUNK ? n - off : CHUNK;
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elt, (int)k, type, op, mcomm(c)));
    }
    *sec += MPI_Wtime() - t0;
    *bytes += (double)n * elt;
}

void comm_allreduce_sum_f32(Comm *c, float *buf, size_t n) {
    allreduce(c, buf, n, MPI_FLOAT, sizeof(float), MPI_SUM, &c->bytes_allreduce, &c->sec_allreduce);
}

void comm_allreduce_sum_f64(Comm *c, double *buf, size_t n) {
    allreduce(c, buf, n, MPI_DOUBLE, sizeof(double), MPI_SUM, &c->bytes_allreduce, &c->sec_allreduce);
}

void comm_bn_allreduce(Comm *c, double *buf, size_t n) {
    c->calls_bn++;
    allreduce(c, buf, n, MPI_DOUBLE, sizeof(double), MPI_SUM, &c->bytes_bn, &c->sec_bn);
}

int comm_allreduce_max_int(Comm *c, int v) {
    allreduce(c, &v, 1, MPI_INT, sizeof(int), MPI_MAX, &c->bytes_allreduce, &c->sec_allreduce);
    return v;
}

// ---------------------------------------------------------------- all-gathers

// In place when send == recv + displs[rank] (as train.c and entropy.c call it): MPI_IN_PLACE.
static void allgatherv(Comm *c, const void *send, void *recv, const int *counts, const int *displs,
                       MPI_Datatype type, size_t elt) {
    char *dst = (char *)recv + (size_t)displs[solo(c) ? 0 : c->rank] * elt;
    if (solo(c)) {
        if ((const char *)send != dst) memmove(dst, send, (size_t)counts[0] * elt);
        return;
    }
    const double t0 = MPI_Wtime();
    const void *sbuf = (const char *)send == dst ? MPI_IN_PLACE : send;
    MPI_CHECK(MPI_Allgatherv(sbuf, counts[c->rank], type, recv, counts, displs, type, mcomm(c)));
    c->sec_allgather += MPI_Wtime() - t0;
    size_t others = 0; // bytes this rank received from the other ranks
    for (int r = 0; r < c->size; r++)
        if (r != c->rank) others += (size_t)counts[r];
    c->bytes_allgather += (double)others * elt;
}

void comm_allgatherv_f32(Comm *c, const float *send, float *recv, const int *counts, const int *displs) {
    allgatherv(c, send, recv, counts, displs, MPI_FLOAT, sizeof(float));
}

void comm_allgatherv_i32(Comm *c, const int *send, int *recv, const int *counts, const int *displs) {
    allgatherv(c, send, recv, counts, displs, MPI_INT, sizeof(int));
}

// ---------------------------------------------------------------- other collectives

void comm_bcast(Comm *c, void *buf, size_t bytes, int root) {
    if (solo(c) || bytes == 0) return;
    for (size_t off = 0; off < bytes; off += CHUNK) {
        const size_t k = bytes - off < CHUNK ? bytes - off : CHUNK;
        MPI_CHECK(MPI_Bcast((char *)buf + off, (int)k, MPI_BYTE, root, mcomm(c)));
    }
}

void comm_barrier(Comm *c) {
    if (solo(c)) return;
    MPI_CHECK(MPI_Barrier(mcomm(c)));
}

void comm_node_local(Comm *c, int *node, int *local_rank, int *local_size) {
    if (solo(c)) { *node = 0; *local_rank = 0; *local_size = 1; return; }
    MPI_Comm local;
    MPI_CHECK(MPI_Comm_split_type(mcomm(c), MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local));
    MPI_CHECK(MPI_Comm_set_errhandler(local, MPI_ERRORS_RETURN));
    MPI_CHECK(MPI_Comm_rank(local, local_rank));
    MPI_CHECK(MPI_Comm_size(local, local_size));
    MPI_CHECK(MPI_Allreduce(&c->rank, node, 1, MPI_INT, MPI_MIN, local));
    MPI_CHECK(MPI_Comm_free(&local));
}

// 64-bit FNV-1a over the bytes, eight at a time (a checksum, not a cryptographic hash).
static uint64_t checksum(const void *buf, size_t bytes) {
    const unsigned char *p = buf;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= bytes; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < bytes; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h ^ (uint64_t)bytes;
}

// Appends printf output to the string msg (cap bytes). Returns 0, and ends msg with "...", when it
// does not fit: the caller stops adding (a list of ranks is shortened on purpose, never cut silently).
static int appendf(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int appendf(char *msg, size_t cap, const char *fmt, ...) {
    const size_t len = strlen(msg);
    va_list ap;
    va_start(ap, fmt);
    const int r = len < cap ? vsnprintf(msg + len, cap - len, fmt, ap) : -1;
    va_end(ap);
    if (r >= 0 && (size_t)r < cap - len) return 1;
    if (cap >= 4) memcpy(msg + (len < cap - 4 ? len : cap - 4), "...", 4);
    return 0;
}

// Appends "rank list hold checksum X" for the ranks whose checksum equals sums[first] (at most
// 16 listed, then their number). Returns 0 when msg is full.
static int append_group(char *msg, size_t cap, const uint64_t *sums, int size, int first) {
    int shown = 0, total = 0;
    for (int r = first; r < size; r++) {
        if (sums[r] != sums[first]) continue;
        total++;
        if (shown < 16 && !appendf(msg, cap, "%s%d", shown ? "," : "", r)) return 0;
        if (shown < 16) shown++;
    }
    if (total > shown && !appendf(msg, cap, ",... (%d ranks)", total)) return 0;
    return appendf(msg, cap, " hold checksum %016llx", (unsigned long long)sums[first]);
}

void comm_check_same(Comm *c, const float *buf, size_t n, const char *what) {
    if (solo(c)) return;
    uint64_t mine = checksum(buf, n * sizeof(float));
    uint64_t *sums = XMALLOC_N(c->size, sizeof(uint64_t));
    MPI_CHECK(MPI_Allgather(&mine, 1, MPI_UINT64_T, sums, 1, MPI_UINT64_T, mcomm(c)));
    int differ = 0;
    for (int r = 1; r < c->size; r++) differ |= sums[r] != sums[0];
    if (!differ) { free(sums); return; }
    // Every rank sees the same checksums and builds the same message: comm_fatal prints it once
    // (rank 0) and ends every rank without an MPI_Abort banner.
    char msg[2048] = "";
    int groups = 0;
    for (int r = 0; r < c->size; r++) {
        int seen = 0;
        for (int q = 0; q < r; q++) seen |= sums[q] == sums[r];
        if (seen) continue;
        if (!appendf(msg, sizeof(msg), "%srank(s) ", groups++ ? "; " : "") ||
            !append_group(msg, sizeof(msg), sums, c->size, r))
            break;
    }
    free(sums);
    ht_fatal(__FILE__, __LINE__, "consistency check failed: %s (%zu floats) differ across the %d ranks: "
             "%s. Every rank should hold bit-identical copies; the run cannot continue correctly "
             "(the ranks ran different jobs or code, or memory was corrupted)", what, n, c->size, msg);
}
