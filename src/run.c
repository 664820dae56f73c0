#include "run.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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

static void install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    HT_CHECK(sigaction(SIGTERM, &sa, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0 &&
             sigaction(SIGINT, &sa, NULL) == 0, "cannot install signal handlers: %s", strerror(errno));
}

typedef struct {
    Comm *comm;
    const RunOptions *opt;
    Model model;
    Trainer tr;
    struct CudaTrainer *gpu; // CUDA build on a GPU: steps and validation run there (--device)
    Mnist data;
    int have_data;
    char *job_json;
    FILE *metrics;           // rank 0: metrics.jsonl
    double t_start;
    int64_t step0;
} Run;

static void format_eta(double sec, char *buf, size_t n) {
    if (!isfinite(sec) || sec < 0) { snprintf(buf, n, "?"); return; }
    long s = (long)sec;
    if (s >= 3600) snprintf(buf, n, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60) snprintf(buf, n, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, n, "%lds", s);
}

// Keeps only the metric lines of steps <= step (a resumed run replays the steps after it).
static void truncate_metrics(const char *path, int64_t step) {
    if (access(path, F_OK) != 0) return;
    size_t len;
    char *buf = ht_read_file(path, &len);
    char tmp[HT_PATH_MAX + 128];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = XFOPEN(tmp, "w");
    for (char *line = buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        const char *s = strstr(line, "\"step\":");
        if (s && strtoll(s + 7, NULL, 10) > step) continue;
        fprintf(f, "%s\n", line);
    }
    XFCLOSE(f, tmp);
    if (rename(tmp, path) != 0) HT_FATAL("cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    free(buf);
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[HT_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) HT_FATAL("output directory '%s' is not writable (cannot create %s: %s)", dir, name, strerror(errno));
    fputs(text, f);
    XFCLOSE(f, path);
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

static void run_step(Run *r, StepStats *st) {
#ifdef HT_CUDA
    if (r->gpu) { cuda_trainer_step(r->gpu, st); return; }
#endif
    trainer_step(&r->tr, st);
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
    if (r->comm->rank == 0) {
        char path[HT_PATH_MAX + 64];
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

static void log_train(Run *r, const StepStats *st, double steps_per_s) {
    const Model *m = &r->model;
    if (r->comm->rank != 0) return;
    fprintf(r->metrics, "{\"type\":\"train\",\"step\":%lld,\"loss\":%.9g,\"ce\":%.9g,\"entropy\":%.9g,"
            "\"acc\":%.6f,\"grad_norm\":%.6g,\"lr\":%.9g,\"lambda\":%.9g,\"steps_per_s\":%.4g}\n",
            (long long)m->step, st->loss, st->ce, st->entropy, st->acc, st->grad_norm, st->lr, st->lambda,
            steps_per_s);
    fflush(r->metrics);
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
        fflush(r->metrics);
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
    fflush(r->metrics);
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
    log_val(r, &vs, ht_now() - t0);
}

static void open_run(Run *r, const Job *job) {
    const RunOptions *opt = r->opt;
    if (r->comm->rank == 0) {
        ht_mkdir_p(opt->out_dir);
        char *latest = checkpoint_latest(opt->out_dir);
        if (latest && !opt->resume)
            HT_FATAL("run directory '%s' already holds checkpoints (latest: %s); use --resume to "
                     "continue it or --out for a new run (nothing was changed)", opt->out_dir, latest);
        free(latest);
        write_text(opt->out_dir, "job.json", r->job_json);
    }
    comm_barrier(r->comm);
    model_init(&r->model, job);
    if (r->comm->rank == 0) {
        printf("hypertrain %s | %s | %d rank(s) x %d thread(s) | run directory %s\n", HT_VERSION,
               r->comm->impl, r->comm->size, omp_get_max_threads(), opt->out_dir);
        arch_print(&r->model.harch, job->task == TASK_MNIST ? &r->model.tarch : NULL, stdout);
    }
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
             "resuming would not continue the same run", path, (unsigned long long)meta.seed,
             (unsigned long long)m->job.seed);
    m->step = meta.step;
    if (r->comm->rank == 0) {
        printf("resumed from %s at step %lld (written by %d rank(s))\n", path, (long long)m->step,
               meta.world_size);
        char *stored = checkpoint_read_job(path);
        if (strcmp(stored, r->job_json) != 0)
            printf("note: the job differs from the one stored in the checkpoint (see job.json)\n");
        free(stored);
    }
    free(path);
}

int run_train(Comm *comm, const Job *job, const RunOptions *opt) {
    Run r;
    memset(&r, 0, sizeof(r));
    r.comm = comm;
    r.opt = opt;
    r.job_json = job_to_json(job);
    if (job->threads > 0) omp_set_num_threads(job->threads);
    open_run(&r, job);
    const int use_gpu = choose_device(&r, job);
    if (job->task == TASK_MNIST) {
        const char *dir = data_resolve_dir(job->data_dir);
        mnist_load(&r.data, dir, job->n_train, job->n_val, job->verify_checksums);
        r.have_data = 1;
        if (comm->rank == 0)
            printf("data: %s (%d train, %d validation, %d test)\n", dir, r.data.train.n, r.data.val.n, r.data.test.n);
    }
    if (opt->resume) resume(&r);
    Model *m = &r.model;
    char path[HT_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/metrics.jsonl", opt->out_dir);
    if (comm->rank == 0) {
        if (opt->resume) truncate_metrics(path, m->step);
        r.metrics = fopen(path, opt->resume ? "a" : "w");
        if (!r.metrics) HT_FATAL("cannot open '%s': %s", path, strerror(errno));
    }
    trainer_init(&r.tr, m, comm, r.have_data ? &r.data : NULL);
    if (comm->rank == 0 && job->task == TASK_MNIST && !use_gpu)
        printf("target network on the CPU: %s implementation (HT_TARGET_IMPL=reference|avx2|avx2-dense; "
               "a resumed run repeats its steps bit for bit with the same one)\n", target_impl_name(r.tr.tn.impl));
#ifdef HT_CUDA
    if (use_gpu) r.gpu = cuda_trainer_create(&r.tr);
#else
    (void)use_gpu;
#endif
    r.step0 = m->step;
    r.t_start = ht_now();
    int validated = 0, saved = 0, stop = 0;
    install_signal_handlers();
    while (m->step < job->steps) {
        StepStats st;
        run_step(&r, &st);
        validated = saved = 0;
        // All ranks agree on stopping (a signal may reach only some of them).
        stop = comm_allreduce_max_int(comm, (int)g_stop_signal);
        if (stop) {
            log_train(&r, &st, (m->step - r.step0) / (ht_now() - r.t_start));
            save_checkpoint(&r);
            if (comm->rank == 0)
                printf("received signal %d: checkpoint written at step %lld; continue with --resume\n",
                       stop, (long long)m->step);
            break;
        }
        const double sps = (m->step - r.step0) / (ht_now() - r.t_start);
        if (m->step == r.step0 + 1 || m->step % job->log_every == 0 || m->step == job->steps)
            log_train(&r, &st, sps);
        if (job->val_every > 0 && m->step % job->val_every == 0) { validate(&r); validated = 1; }
        if (job->ckpt_every > 0 && m->step % job->ckpt_every == 0) { save_checkpoint(&r); saved = 1; }
    }
    if (stop) {
        if (comm->rank == 0) XFCLOSE(r.metrics, "metrics.jsonl");
        free_device(&r);
        trainer_free(&r.tr);
        if (r.have_data) mnist_free(&r.data);
        model_free(m);
        free(r.job_json);
        return HT_EXIT_INTERRUPTED;
    }
    if (!validated) validate(&r);
    if (!saved) save_checkpoint(&r);
    if (job->task == TASK_TOY) {
        snprintf(path, sizeof(path), "%s/toy_curve.csv", opt->out_dir);
        trainer_write_toy_curve(&r.tr, path, job->toy_curve_points);
        if (comm->rank == 0) printf("toy curve: %s\n", path);
    }
    if (comm->rank == 0) {
        XFCLOSE(r.metrics, "metrics.jsonl");
        printf("done: %lld steps in %.1fs; peak memory %.1f MiB\n", (long long)(m->step - r.step0),
               ht_now() - r.t_start, ht_peak_rss_bytes() / 1048576.0);
    }
    free_device(&r);
    trainer_free(&r.tr);
    if (r.have_data) mnist_free(&r.data);
    model_free(m);
    free(r.job_json);
    return 0;
}
