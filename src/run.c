// run.c: a whole training run. The run directory is changed only once the run is known to start
// (docs/running.md, "Run directories"): every check that can refuse the run (job, seed, step,
// newer checkpoints, lock) happens before, and a refused or failed start leaves every file as it
// was.
#define _GNU_SOURCE   // flock(2)
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "common.h"
#include "data.h"
#include "model.h"
#include "train.h"
#ifdef HT_CUDA
#include "cuda_backend.h"
#endif

// The one piece of global mutable state: a signal handler can only talk to the program through
// a volatile sig_atomic_t. SIGTERM (preemption, scancel) and SIGUSR1 (Slurm's --signal before the
// time limit) ask the run to checkpoint after the current step and exit with HT_EXIT_INTERRUPTED.
static volatile sig_atomic_t g_stop_signal = 0;

static void on_stop_signal(int sig) { g_stop_signal = sig; }

// SA_RESTART: a signal arriving during a read or write (data loading, a checkpoint, metrics)
// restarts the call instead of failing it with EINTR; the flag is looked at after each step.
static void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    HT_CHECK(sigaction(SIGTERM, &sa, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0 &&
             sigaction(SIGINT, &sa, NULL) == 0, "cannot install signal handlers: %s", strerror(errno));
}

typedef struct {
    Comm *comm;
    const RunOptions *opt;
    Model model;
    Trainer tr;
    int have_trainer;
    struct CudaTrainer *gpu; // CUDA build on a GPU: steps and validation run there (--device)
    Mnist data;
    int have_data;
    char *job_json;
    char metrics_path[HT_PATH_MAX];
    FILE *metrics;           // rank 0: metrics.jsonl, open once the run directory is committed
    char *latest;            // rank 0: the run directory's latest checkpoint when it was checked
    long long *newer;        // rank 0: steps of its checkpoints after the resumed one (--branch)
    int n_newer;
    int lock_fd;             // rank 0: holds <out>/.lock (-1: none)
    int committed;           // rank 0: the run directory was updated for this run
    double t_start;
    int64_t step0;
} Run;

static void format_eta(double sec, char *buf, size_t n) {
    if (!isfinite(sec) || sec < 0) { XSNPRINTF(buf, n, "?"); return; }
    long s = (long)sec;
    if (s >= 3600) XSNPRINTF(buf, n, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) XSNPRINTF(buf, n, "%ldm%02lds", s / 60, s % 60);
    else XSNPRINTF(buf, n, "%lds", s);
}

// ---- metrics.jsonl ----

// Step of a metrics line, -1 if it has none.
static long long line_step(const char *line) {
    const char *s = strstr(line, "\"step\":");
    return s ? strtoll(s + 7, NULL, 10) : -1;
}

// The complete lines (ending in '\n') of a regular file `path` (caller frees), NULL when it is
// absent or not a regular file (a device, as in tests of a full disk, is only appended to).
static char *read_regular(const char *path, size_t *len) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return NULL;
    char *buf = ht_read_file(path, len);
    while (*len > 0 && buf[*len - 1] != '\n') buf[--*len] = '\0';  // a line cut by a kill
    return buf;
}

// Keeps only the lines of steps <= step: a resumed run repeats the steps after its checkpoint,
// and a line cut short by a kill is dropped. Atomic; nothing is written if nothing changes.
static void truncate_metrics(const char *path, int64_t step) {
    size_t len, full;
    struct stat st;
    char *buf = read_regular(path, &len);
    if (!buf) return;
    full = stat(path, &st) == 0 ? (size_t)st.st_size : len;
    char *out = XMALLOC(len + 1);
    size_t n = 0;
    for (char *line = buf, *next; *line; line = next) {
        next = strchr(line, '\n') + 1;   // every line is complete
        if (line_step(line) > step) continue;
        memcpy(out + n, line, (size_t)(next - line));
        n += (size_t)(next - line);
    }
    if (n != full) atomic_write_file(path, out, n, "metrics file");
    free(out);
    free(buf);
}

// 1 when metrics.jsonl holds a validation line for `step`.
static int metrics_has_val(const char *path, int64_t step) {
    size_t len;
    char *buf = read_regular(path, &len);
    int found = 0;
    for (char *line = buf, *next; buf && *line && !found; line = next) {
        next = strchr(line, '\n');
        *next++ = '\0';
        found = strstr(line, "\"type\":\"val\"") && line_step(line) == step;
    }
    free(buf);
    return found;
}

// Every metrics line goes to disk at once; a failed write (disk full) ends the run.
static void metrics_end_line(Run *r) {
    if (fflush(r->metrics) != 0 || ferror(r->metrics))
        HT_FATAL("cannot write '%s': %s", r->metrics_path, strerror(errno));
}

// ---- the run directory: lock, stale files, --branch, commit ----

// The owner line of a lock file, or a note when it has none (caller's buffer).
static void lock_owner(int fd, char *buf, size_t n) {
    ssize_t got = pread(fd, buf, n - 1, 0);
    if (got <= 0) { XSNPRINTF(buf, n, "no owner recorded yet"); return; }
    buf[got] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

static void write_lock_owner(int fd, const char *path) {
    char host[256] = "?", stamp[32], line[400];
    if (gethostname(host, sizeof(host)) != 0) XSNPRINTF(host, sizeof(host), "?");
    host[sizeof(host) - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    const int len = XSNPRINTF(line, sizeof(line), "pid %ld on host %s since %s\n", (long)getpid(), host, stamp);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len)
        HT_FATAL("cannot write the lock file '%s': %s", path, strerror(errno));
}

// Rank 0 takes an exclusive flock on <out>/.lock (held until the run ends; the kernel drops it
// when the process dies) and writes its pid, host and start time there. A run that ends normally deletes the
// file while still holding the lock, so a run that opened it just before must look again.
static void lock_run_dir(Run *r) {
    const char *dir = r->opt->out_dir;
    char path[HT_PATH_MAX], owner[300];
    XSNPRINTF(path, sizeof(path), "%s/.lock", dir);
    for (int attempt = 0; attempt < 100; attempt++) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            HT_FATAL("run directory '%s' is not writable (cannot create its lock file .lock: %s)", dir,
                     strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            const int e = errno;
            if (e == EWOULDBLOCK) {
                lock_owner(fd, owner, sizeof(owner));
                close(fd);
                HT_FATAL("run directory '%s' is in use by another run (%s; lock file %s); wait for it "
                         "to end or use another --out (nothing was changed)", dir, owner, path);
            }
            close(fd);
            if (e == EINTR) continue;
            fprintf(stderr, "hypertrain: warning: cannot lock run directory '%s' (flock on %s: %s); "
                    "continuing without protection against a second run in it\n", dir, path, strerror(e));
            return;
        }
        struct stat held, now;
        if (fstat(fd, &held) == 0 && stat(path, &now) == 0 && held.st_dev == now.st_dev &&
            held.st_ino == now.st_ino) {
            write_lock_owner(fd, path);
            r->lock_fd = fd;
            return;
        }
        close(fd);   // deleted by the run that held it: lock the new file
    }
    HT_FATAL("cannot lock run directory '%s': its lock file %s keeps being replaced", dir, path);
}

// Rank 0, at start-up: fail fast, creating nothing, when another run holds the lock or the run
// directory is not writable. The lock itself is taken when the run commits (commit_run_dir): a
// second run started at the same moment then fails there, before it has changed anything.
static void probe_lock(const char *dir) {
    char path[HT_PATH_MAX], owner[300];
    XSNPRINTF(path, sizeof(path), "%s/.lock", dir);
    if (access(dir, W_OK) != 0)
        HT_FATAL("run directory '%s' is not writable (%s)", dir, strerror(errno));
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;   // no lock file: no run holds the directory
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) {
        lock_owner(fd, owner, sizeof(owner));
        close(fd);
        HT_FATAL("run directory '%s' is in use by another run (%s; lock file %s); wait for it "
                 "to end or use another --out (nothing was changed)", dir, owner, path);
    }
    close(fd);   // releases the probe's lock, if it got one
}

static void unlock_run_dir(Run *r) {
    if (r->lock_fd < 0) return;
    char path[HT_PATH_MAX];
    XSNPRINTF(path, sizeof(path), "%s/.lock", r->opt->out_dir);
    if (unlink(path) != 0 && errno != ENOENT)
        fprintf(stderr, "hypertrain: warning: cannot delete the lock file '%s': %s\n", path, strerror(errno));
    close(r->lock_fd);
    r->lock_fd = -1;
}

// A .lock left by a run killed after its last step: removed (under the lock) so that a finished
// run directory holds none. Nothing is created when there is none.
static void remove_stale_lock(Run *r) {
    char path[HT_PATH_MAX];
    XSNPRINTF(path, sizeof(path), "%s/.lock", r->opt->out_dir);
    if (access(path, F_OK) != 0) return;
    lock_run_dir(r);
    unlock_run_dir(r);
}

// Copies <dir>/<name> into <sub>/<name> if it exists.
static void copy_into(const char *dir, const char *sub, const char *name) {
    char src[HT_PATH_MAX], dst[HT_PATH_MAX];
    XSNPRINTF(src, sizeof(src), "%s/%s", dir, name);
    XSNPRINTF(dst, sizeof(dst), "%s/%s", sub, name);
    size_t len;
    char *buf = read_regular(src, &len);
    if (!buf) return;
    atomic_write_file(dst, buf, len, "copy");
    free(buf);
}

// Makes <dir>/abandoned-<step>-<UTC time>[-<n>] and returns its path in `sub`.
static void make_abandoned_dir(const char *dir, int64_t step, char *sub, size_t n) {
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
    for (int i = 0; i < 100; i++) {
        if (i == 0) XSNPRINTF(sub, n, "%s/abandoned-%lld-%s", dir, (long long)step, stamp);
        else XSNPRINTF(sub, n, "%s/abandoned-%lld-%s-%d", dir, (long long)step, stamp, i);
        if (mkdir(sub, 0777) == 0) return;
        if (errno != EEXIST) HT_FATAL("--branch: cannot create '%s': %s", sub, strerror(errno));
    }
    HT_FATAL("--branch: cannot find a free name for '%s'", sub);
}

// --branch: the checkpoints after the resumed step move to abandoned-<step>-<time>/ with a copy
// of job.json and metrics.jsonl. Highest first: if this is interrupted, the run directory still
// holds one consistent history (the abandoned run up to its highest remaining checkpoint).
static void branch_run_dir(Run *r) {
    if (r->n_newer == 0) return;
    const char *dir = r->opt->out_dir;
    char sub[HT_PATH_MAX], src[HT_PATH_MAX], dst[HT_PATH_MAX];
    make_abandoned_dir(dir, r->step0, sub, sizeof(sub));
    copy_into(dir, sub, "job.json");
    copy_into(dir, sub, "metrics.jsonl");
    for (int i = 0; i < r->n_newer; i++) {
        checkpoint_path(src, sizeof(src), dir, r->newer[i]);
        checkpoint_path(dst, sizeof(dst), sub, r->newer[i]);
        if (rename(src, dst) != 0) HT_FATAL("--branch: cannot move '%s' to '%s': %s", src, dst, strerror(errno));
    }
    printf("branch: moved %d newer checkpoint(s) (steps %lld to %lld) and a copy of job.json and "
           "metrics.jsonl to %s\n", r->n_newer, r->newer[r->n_newer - 1], r->newer[0], sub);
}

// Under the lock: nothing may have changed since check_run_dir (another run that finished in
// between would otherwise be overwritten or mixed with this one).
static void recheck_run_dir(const Run *r) {
    char *now = checkpoint_latest(r->opt->out_dir);
    const int same = (!now && !r->latest) || (now && r->latest && !strcmp(now, r->latest));
    if (!same)
        HT_FATAL("run directory '%s' changed while this run was starting (latest checkpoint %s, "
                 "was %s): another run wrote in it; start again", r->opt->out_dir, now ? now : "none",
                 r->latest ? r->latest : "none");
    free(now);
}

// The run is known to start (its first step succeeded, or it is about to validate or save):
// rank 0 locks the run directory, checks that no other run changed it meanwhile, removes stale
// temporary files, moves newer checkpoints aside (--branch), truncates
// metrics.jsonl to the resumed step, writes job.json (atomically) and opens metrics.jsonl.
static void commit_run_dir(Run *r) {
    if (r->comm->rank != 0 || r->committed) return;
    r->committed = 1;
    const char *dir = r->opt->out_dir;
    lock_run_dir(r);
    recheck_run_dir(r);
    const int stale = checkpoint_remove_stale_tmp(dir);
    if (stale && !r->opt->quiet) printf("removed %d temporary file(s) left by an interrupted run\n", stale);
    branch_run_dir(r);
    truncate_metrics(r->metrics_path, r->step0);
    char path[HT_PATH_MAX];
    XSNPRINTF(path, sizeof(path), "%s/job.json", dir);
    atomic_write_file(path, r->job_json, strlen(r->job_json), "job file");
    r->metrics = fopen(r->metrics_path, "a");
    if (!r->metrics) HT_FATAL("cannot open '%s': %s", r->metrics_path, strerror(errno));
}

// ---- device: the CPU trainer, or the GPU trainer of a CUDA build (docs/cuda.md) ----

// 1 when this run trains on a GPU (--device, else $HYPERTRAIN_DEVICE, else auto).
static int choose_device(Run *r, const Job *job) {
    const char *dev = r->opt->device ? r->opt->device : getenv("HYPERTRAIN_DEVICE");
    if (!dev || !dev[0]) dev = "auto";
#ifdef HT_CUDA
    return cuda_backend_select(r->comm, dev, job->task == TASK_TOY);
#else
    (void)job;
    HT_CHECK(!strcmp(dev, "cpu") || !strcmp(dev, "auto") || !strcmp(dev, "cuda"),
             "--device must be cpu, cuda or auto (got '%s')", dev);
    HT_CHECK(strcmp(dev, "cuda") != 0, "--device cuda: this hypertrain was built without CUDA "
             "(build it with make CUDA=1; the binary is then build-cuda/hypertrain)");
    return 0;
#endif
}

// The GPU keeps the training state; the Model's host copy is refreshed before it is read.
static void sync_host(Run *r) {
#ifdef HT_CUDA
    if (r->gpu) cuda_trainer_to_host(r->gpu);
#else
    (void)r;
#endif
}

// One step. On the GPU it is only queued (no host synchronization): its statistics and the
// divergence check are read by step_stats when the step is logged, and by every checkpoint and
// validation (cuda_trainer_to_host / cuda_trainer_validate check first).
static void run_step(Run *r, StepStats *st) {
#ifdef HT_CUDA
    if (r->gpu) { memset(st, 0, sizeof(*st)); cuda_trainer_step_queue(r->gpu); return; }
#endif
    trainer_step(&r->tr, st);
}

static void step_stats(Run *r, StepStats *st) {
#ifdef HT_CUDA
    if (r->gpu) cuda_trainer_step_stats(r->gpu, st);
#else
    (void)r;
    (void)st;
#endif
}

static void free_device(Run *r) {
#ifdef HT_CUDA
    cuda_trainer_destroy(r->gpu);
#endif
    r->gpu = NULL;
}

static void save_checkpoint(Run *r) {
    Model *m = &r->model;
    sync_host(r);
    commit_run_dir(r);
    if (r->comm->rank == 0) {
        char path[HT_PATH_MAX];
        checkpoint_path(path, sizeof(path), r->opt->out_dir, m->step);
        CkptMeta meta = {
            .step = m->step, .seed = m->job.seed,
            .data_cursor = m->step * (int64_t)m->job.batch * m->job.images_per_sample,
            .lr = model_lr(&m->job, m->step), .lambda = model_lambda(&m->job, m->step),
            .world_size = r->comm->size,
        };
        checkpoint_write(path, &m->harch.table, m->params, m->adam_m, m->adam_v, m->stats, &meta, r->job_json);
        checkpoint_prune(r->opt->out_dir, m->job.keep_ckpt);
        if (!r->opt->quiet) printf("checkpoint: %s\n", path);
    }
    comm_barrier(r->comm);
}

// A metrics line on the log_every schedule (the history does not depend on where a run was
// interrupted); the progress line also for the first step after a start.
static void log_train(Run *r, const StepStats *st, double steps_per_s, int to_metrics) {
    const Model *m = &r->model;
    if (r->comm->rank != 0) return;
    if (to_metrics) {
        fprintf(r->metrics, "{\"type\":\"train\",\"step\":%lld,\"loss\":%.9g,\"ce\":%.9g,\"entropy\":%.9g,"
                "\"acc\":%.6f,\"grad_norm\":%.6g,\"lr\":%.9g,\"lambda\":%.9g,\"steps_per_s\":%.4g}\n",
                (long long)m->step, st->loss, st->ce, st->entropy, st->acc, st->grad_norm, st->lr, st->lambda,
                steps_per_s);
        metrics_end_line(r);
    }
    if (r->opt->quiet) return;
    char eta[32];
    format_eta((m->job.steps - m->step) / steps_per_s, eta, sizeof(eta));
    printf("step %lld/%d | loss %.4g (ce %.4f, H %.2f) | acc %.4f | lr %.3g | %.2f steps/s | ETA %s\n",
           (long long)m->step, m->job.steps, st->loss, st->ce, st->entropy, st->acc, st->lr, steps_per_s, eta);
    fflush(stdout);
}

static void log_val(Run *r, const ValStats *vs, double seconds) {
    const Model *m = &r->model;
    if (r->comm->rank != 0) return;
    if (m->job.task == TASK_TOY) {
        fprintf(r->metrics, "{\"type\":\"val\",\"step\":%lld,\"points\":%d,\"mean_nll\":%.6f,"
                "\"mean_density\":%.6f,\"entropy\":%.6f,\"seconds\":%.3f}\n", (long long)m->step,
                vs->n_nets, vs->mean_nll, vs->mean_acc, vs->entropy, seconds);
        metrics_end_line(r);
        if (!r->opt->quiet)
            printf("validation @ %lld: mean -log p %.4f | entropy %.3f (%d points)\n", (long long)m->step,
                   vs->mean_nll, vs->entropy, vs->n_nets);
        return;
    }
    fprintf(r->metrics, "{\"type\":\"val\",\"step\":%lld,\"networks\":%d,\"images\":%d,\"mean_acc\":%.6f,"
            "\"std_acc\":%.6f,\"min_acc\":%.6f,\"max_acc\":%.6f,\"majority_acc\":%.6f,"
            "\"mean_prob_acc\":%.6f,\"mean_nll\":%.6f,\"entropy\":%.6f,\"hist\":[",
            (long long)m->step, vs->n_nets, vs->n_images, vs->mean_acc, vs->std_acc, vs->min_acc,
            vs->max_acc, vs->majority_acc, vs->mean_prob_acc, vs->mean_nll, vs->entropy);
    for (int b = 0; b < VAL_HIST_BINS; b++) fprintf(r->metrics, "%s%d", b ? "," : "", vs->hist[b]);
    fprintf(r->metrics, "],\"seconds\":%.3f}\n", seconds);
    metrics_end_line(r);
    if (r->opt->quiet) return;
    printf("validation @ %lld: mean acc %.4f (std %.4f, min %.4f, max %.4f) | majority %.4f | "
               "mean-prob %.4f | entropy %.2f | %d nets x %d images, %.1fs\n",
               (long long)m->step, vs->mean_acc, vs->std_acc, vs->min_acc, vs->max_acc, vs->majority_acc,
               vs->mean_prob_acc, vs->entropy, vs->n_nets, vs->n_images, seconds);
    fflush(stdout);
}

static void validate(Run *r) {
    // Every rank applied the same updates: their parameters must agree bit for bit.
    sync_host(r);
    comm_check_same(r->comm, r->model.params, r->model.harch.table.n_params, "parameters");
    ValStats vs;
    double t0 = ht_now();
#ifdef HT_CUDA
    if (r->gpu) cuda_trainer_validate(r->gpu, &vs);
    else
#endif
    trainer_validate(&r->tr, &vs);
    commit_run_dir(r);
    log_val(r, &vs, ht_now() - t0);
}

// Rank 0, before anything is written: --out must be (or become) a directory, and a fresh run
// must not start over the checkpoints of another.
static void check_run_dir(Run *r) {
    const RunOptions *opt = r->opt;
    struct stat st;
    if (stat(opt->out_dir, &st) == 0 && !S_ISDIR(st.st_mode))
        HT_FATAL("--out '%s' exists and is not a directory (a run directory is expected)", opt->out_dir);
    ht_mkdir_p(opt->out_dir);
    r->latest = checkpoint_latest(opt->out_dir);
    if (r->latest && !opt->resume)
        HT_FATAL("run directory '%s' already holds checkpoints (latest: %s); use --resume to "
                 "continue it or --out for a new run (nothing was changed)", opt->out_dir, r->latest);
    probe_lock(opt->out_dir);
}

static void open_run(Run *r, const Job *job) {
    if (r->comm->rank == 0) check_run_dir(r);
    comm_barrier(r->comm);
    model_init(&r->model, job);
    if (r->comm->rank == 0) {
        printf("hypertrain %s | %s | %d rank(s) x %d thread(s) | run directory %s\n", HT_VERSION,
               r->comm->impl, r->comm->size, omp_get_max_threads(), r->opt->out_dir);
        arch_print(&r->model.harch, job->task == TASK_MNIST ? &r->model.tarch : NULL, stdout);
    }
}

// Rank 0: the run directory's checkpoints after `step` (resuming an older checkpoint). Without
// --branch they make the resume fail: continuing would mix two histories.
static void find_newer(Run *r, const char *path, int64_t step) {
    int n;
    long long *steps = checkpoint_steps(r->opt->out_dir, &n);
    r->n_newer = 0;
    while (r->n_newer < n && steps[r->n_newer] > step) r->n_newer++;
    r->newer = steps;
    if (r->n_newer == 0 || r->opt->branch) return;
    char names[200] = "";
    size_t used = 0;
    for (int i = r->n_newer - 1; i >= 0 && r->n_newer - 1 - i < 3; i--)
        used += (size_t)XSNPRINTF(names + used, sizeof(names) - used, "%sckpt_%08lld.h5",
                                  used ? ", " : "", steps[i]);
    HT_FATAL("'%s' is at step %lld but run directory '%s' holds %d newer checkpoint(s) (%s%s); "
             "continuing from it would mix two runs: add --branch to move them to %s/abandoned-%lld-<time>/ "
             "and continue from step %lld, or resume the latest with --resume alone (nothing was changed)",
             path, (long long)step, r->opt->out_dir, r->n_newer, names, r->n_newer > 3 ? ", ..." : "",
             r->opt->out_dir, (long long)step, (long long)step);
}

static void resume(Run *r) {
    const RunOptions *opt = r->opt;
    char *path = opt->resume[0] ? XSTRDUP(opt->resume) : checkpoint_latest(opt->out_dir);
    if (!path) {
        if (r->comm->rank == 0) printf("resume: no checkpoint in '%s'; starting at step 0\n", opt->out_dir);
        return;
    }
    Model *m = &r->model;
    CkptMeta meta;
    checkpoint_read(path, &m->harch.table, m->params, m->adam_m, m->adam_v, m->stats, &meta);
    HT_CHECK(meta.seed == m->job.seed, "'%s' was written with seed %llu but the job has seed %llu; "
             "resuming would not continue the same run (nothing was changed)", path,
             (unsigned long long)meta.seed, (unsigned long long)m->job.seed);
    HT_CHECK(meta.step <= m->job.steps, "'%s' is at step %lld, beyond the job's steps = %d; raise "
             "steps (--set steps=N) to continue it (nothing was changed)", path, (long long)meta.step,
             m->job.steps);
    m->step = meta.step;
    if (r->comm->rank == 0) {
        find_newer(r, path, meta.step);
        printf("resumed from %s at step %lld (written by %d rank(s))\n", path, (long long)m->step,
               meta.world_size);
        // Compared as resolved jobs: a checkpoint written before a key existed (data.dataset)
        // stores no value for it, which means the key's default.
        char *stored = checkpoint_read_job(path);
        Job was;
        job_from_json_string(&was, stored, path);
        char *resolved = job_to_json(&was);
        if (strcmp(resolved, r->job_json) != 0)
            printf("note: the job differs from the one stored in the checkpoint (see job.json)\n");
        free(resolved);
        free(stored);
    }
    free(path);
}

// What the resumed step still lacks: bit 0, its validation (due at a val_every step and at the
// last step; missing when a signal stopped the run there); bit 1: its checkpoint in the run
// directory is present. Decided by rank 0, the same on every rank.
enum { PENDING_VAL = 1, HAVE_CKPT = 2 };
static int resumed_state(Run *r) {
    const Model *m = &r->model;
    int state = 0;
    if (r->comm->rank == 0 && m->step > 0) {
        const int due = m->step == m->job.steps || (m->job.val_every > 0 && m->step % m->job.val_every == 0);
        if (due && !metrics_has_val(r->metrics_path, m->step)) state |= PENDING_VAL;
        char path[HT_PATH_MAX];
        checkpoint_path(path, sizeof(path), r->opt->out_dir, m->step);
        if (access(path, F_OK) == 0) state |= HAVE_CKPT;
    }
    return comm_allreduce_max_int(r->comm, state);
}

static void free_run(Run *r) {
    free_device(r);
    if (r->have_trainer) trainer_free(&r->tr);
    if (r->have_data) mnist_free(&r->data);
    model_free(&r->model);
    unlock_run_dir(r);
    free(r->job_json);
    free(r->latest);
    free(r->newer);
}

// Trains until job->steps or a stop signal. Returns 1 when a signal stopped it.
static int train_loop(Run *r, int validated, int saved) {
    Model *m = &r->model;
    const Job *job = &m->job;
    const Comm *comm = r->comm;
    int stop = 0;
    while (m->step < job->steps) {
        StepStats st;
        run_step(r, &st);
        commit_run_dir(r);
        validated = saved = 0;
        // All ranks agree on stopping (a signal may reach only some of them).
        stop = comm_allreduce_max_int(r->comm, (int)g_stop_signal);
        const int scheduled = m->step % job->log_every == 0 || m->step == job->steps;
        if (scheduled || stop || m->step == r->step0 + 1) {
            step_stats(r, &st); // GPU: waits for the queued steps, so the rate below is the GPU's
            const double sps = (m->step - r->step0) / (ht_now() - r->t_start);
            log_train(r, &st, sps, scheduled);
        }
        if (stop) {
            save_checkpoint(r);
            if (comm->rank == 0)
                printf("received signal %d: checkpoint written at step %lld; continue with --resume\n",
                       stop, (long long)m->step);
            return 1;
        }
        if (job->val_every > 0 && m->step % job->val_every == 0) { validate(r); validated = 1; }
        if (job->ckpt_every > 0 && m->step % job->ckpt_every == 0) { save_checkpoint(r); saved = 1; }
    }
    if (!validated) validate(r);
    if (!saved) save_checkpoint(r);
    return 0;
}

int run_train(Comm *comm, const Job *job, const RunOptions *opt) {
    Run r;
    memset(&r, 0, sizeof(r));
    r.comm = comm;
    r.opt = opt;
    r.lock_fd = -1;
    r.job_json = job_to_json(job);
    XSNPRINTF(r.metrics_path, sizeof(r.metrics_path), "%s/metrics.jsonl", opt->out_dir);
    if (job->threads > 0) omp_set_num_threads(job->threads);
    open_run(&r, job);
    const int use_gpu = choose_device(&r, job);
    // cuda_math: TF32 is the GPU's tensor-core math; the CPU trainer has none, so a CPU run (a CPU
    // build, --device cpu, or auto without a usable GPU) refuses it rather than train in fp32 unasked.
    HT_CHECK(use_gpu || job->cuda_math == CUDA_MATH_FP32, "cuda_math: \"tf32\" is the GPU trainer's tensor-core "
             "math for the convolutions, and this run trains on the CPU (use \"fp32\", or --device cuda in a "
             "CUDA build)");
    if (job->task == TASK_MNIST) {
        const char *dir = data_resolve_dir_for(job->dataset, job->data_dir);
        data_load(&r.data, job->dataset, dir, job->n_train, job->n_val, job->verify_checksums);
        r.have_data = 1;
        if (comm->rank == 0)
            printf("data: %s from %s (%d train, %d validation, %d test)\n", data_set_title(job->dataset), dir,
                   r.data.train.n, r.data.val.n, r.data.test.n);
    }
    if (opt->resume) resume(&r);
    Model *m = &r.model;
    r.step0 = m->step;
    const int state = resumed_state(&r);
    if (m->step >= job->steps && !(state & PENDING_VAL) && (state & HAVE_CKPT)) {
        if (comm->rank == 0) remove_stale_lock(&r);
        if (comm->rank == 0)
            printf("nothing to do: the run in '%s' is complete (step %lld of %d, validated and "
                   "checkpointed); raise steps (--set steps=N) to train further\n", opt->out_dir,
                   (long long)m->step, job->steps);
        free_run(&r);
        return 0;
    }
    trainer_init(&r.tr, m, comm, r.have_data ? &r.data : NULL);
    r.have_trainer = 1;
    if (comm->rank == 0 && job->task == TASK_MNIST && !use_gpu)
        printf("target network on the CPU: %s implementation (HT_TARGET_IMPL=reference|avx2|avx2-dense|avx512|avx512-dense; "
               "a resumed run repeats its steps bit for bit with the same one)\n", target_impl_name(r.tr.tn.impl));
    // The validation's precision (training is float32 in any case). bf16 is a CPU path: a GPU run
    // refuses it rather than validate in another precision than the job says.
    HT_CHECK(!(use_gpu && job->eval_precision == EVAL_BF16), "eval_precision: \"bf16\" evaluation runs on the CPU "
             "only, and this run validates on the GPU (use \"fp32\")");
    if (job->task == TASK_MNIST && !use_gpu) {
        target_apply_eval_precision(&r.tr.tn, job->eval_precision == EVAL_BF16 ? TARGET_EVAL_BF16 : TARGET_EVAL_FP32,
                                    "eval_precision");
        const TargetPrecision want = job->eval_precision == EVAL_BF16 ? TARGET_EVAL_BF16 : TARGET_EVAL_FP32;
        if (comm->rank == 0 && (r.tr.tn.eval != TARGET_EVAL_FP32 || want != r.tr.tn.eval))
            printf("validation: target network forward in %s (%s; training stays fp32)\n",
                   target_precision_name(r.tr.tn.eval), want != r.tr.tn.eval ?
                   "HT_EVAL_PRECISION overrides the job's eval_precision" : "eval_precision");
    }
#ifdef HT_CUDA
    if (use_gpu) r.gpu = cuda_trainer_create(&r.tr);
#else
    (void)use_gpu;
#endif
    r.t_start = ht_now();
    install_signal_handlers();
    int validated = !(state & PENDING_VAL);
    if (!validated && m->step < job->steps) { validate(&r); validated = 1; }
    const int stopped = train_loop(&r, validated, state & HAVE_CKPT);
    if (!stopped && job->task == TASK_TOY) {
        char path[HT_PATH_MAX];
        XSNPRINTF(path, sizeof(path), "%s/toy_curve.csv", opt->out_dir);
        trainer_write_toy_curve(&r.tr, path, job->toy_curve_points);
        if (comm->rank == 0) printf("toy curve: %s\n", path);
    }
    if (comm->rank == 0) {
        XFCLOSE(r.metrics, r.metrics_path);
        if (!stopped)
            printf("done: %lld steps in %.1fs; peak memory %.1f MiB\n", (long long)(m->step - r.step0),
                   ht_now() - r.t_start, ht_peak_rss_bytes() / 1048576.0);
    }
    free_run(&r);
    return stopped ? HT_EXIT_INTERRUPTED : 0;
}
