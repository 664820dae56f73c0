// hypertrain: trains a hypernetwork that generates all the weights of a target network, for
// accuracy and diversity ("Generating Neural Networks With Neural Networks").
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "arch.h"
#include "checkpoint.h"
#include "comm.h"
#include "common.h"
#include "config.h"
#include "run.h"
#include "sample.h"

static void usage(FILE *f) {
    fprintf(f,
        "usage: hypertrain [JOB.json] [options]\n"
        "       hypertrain sample --checkpoint CKPT --count N --out FILE.h5 [...]  (see sample --help)\n"
        "\n"
        "Trains the hypernetwork described by JOB.json (default: the paper's MNIST run, the same as\n"
        "jobs/mnist.json). The resolved job (defaults + file + --set) is printed and stored in the run\n"
        "directory and in every checkpoint.\n"
        "\n"
        "options:\n"
        "  --set KEY=VALUE   override a job key (dotted for nested keys: lambda=1e5, data.dir=/x,\n"
        "                    target.classes=10); repeatable; applied in order after the job file\n"
        "  --out DIR         run directory (default runs/<job name>): job.json, metrics.jsonl,\n"
        "                    ckpt_<step>.h5, toy_curve.csv\n"
        "  --data DIR        MNIST directory (same as --set data.dir=DIR; default: job's data.dir,\n"
        "                    else $HYPERTRAIN_DATA, else data/mnist, else ../shared/data/mnist)\n"
        "  --resume [CKPT]   continue from CKPT, or from the latest checkpoint in the run directory\n"
        "                    (starts at step 0 if there is none); the job defaults to the stored one.\n"
        "                    The word after --resume is CKPT unless it starts with '-' or ends in\n"
        "                    '.json' (then it is the next option or the job file); --resume=CKPT\n"
        "                    always names a checkpoint. CKPT must be an existing file.\n"
        "  --branch          with --resume CKPT older than the run directory's latest checkpoint:\n"
        "                    move the newer checkpoints (and a copy of job.json and metrics.jsonl)\n"
        "                    into <out>/abandoned-<step>-<time>/ and continue from CKPT. Without it\n"
        "                    such a resume is refused: it would mix two runs in one directory\n"
        "  --threads N       OpenMP threads per rank (same as --set threads=N)\n"
        "  --device D        cpu, cuda or auto (default: $HYPERTRAIN_DEVICE, else auto = the GPU when\n"
        "                    this is a CUDA build and every rank sees one, else the CPU)\n"
        "  --print-job       print the resolved job and parameter counts, then exit\n"
        "  --quiet           no progress lines (metrics.jsonl is still written)\n"
        "  --help, --version\n"
        "\n"
        "SIGTERM, SIGUSR1 or SIGINT: checkpoint after the current step and exit with status 75\n"
        "(resume with --resume). Other exit statuses: 0 done, 1 error. One run at a time per run\n"
        "directory: a second one exits 1 naming the process that holds <out>/.lock. Nothing in\n"
        "the run directory changes until the run's first step (or validation) has succeeded.\n"
        "\n"
        "Job keys are documented in docs/jobs.md; file formats in docs/checkpoint.md.\n");
}

typedef struct {
    const char *job_file;
    const char *sets[256];
    int n_sets;
    const char *out;
    const char *data;
    const char *threads;
    const char *resume;
    const char *device;
    int print_job, quiet, branch;
} Cli;

// The word after --resume names the checkpoint unless it is an option or a job file (*.json).
static int names_checkpoint(const char *word) {
    const size_t n = strlen(word);
    return word[0] && word[0] != '-' && !(n >= 5 && !strcmp(word + n - 5, ".json"));
}

// --resume CKPT must be an existing file; --branch only means something with --resume.
static void check_resume_args(const Cli *cli) {
    HT_CHECK(!cli->branch || cli->resume, "--branch applies only with --resume CKPT (the checkpoint to "
             "branch from)");
    if (!cli->resume || !cli->resume[0]) return;
    struct stat st;
    if (stat(cli->resume, &st) != 0)
        HT_FATAL("--resume: checkpoint '%s' does not exist (%s)", cli->resume, strerror(errno));
    if (S_ISDIR(st.st_mode))
        HT_FATAL("--resume: '%s' is a directory, not a checkpoint file (to continue the latest "
                 "checkpoint of a run directory: --out '%s' --resume)", cli->resume, cli->resume);
    HT_CHECK(S_ISREG(st.st_mode), "--resume: '%s' is not a regular file (a checkpoint ckpt_<step>.h5 "
             "is expected)", cli->resume);
}

// The run directory: --out, else runs/<job name>; too long a path is an error, never cut.
static void out_dir_of(const Cli *cli, const Job *job, char *out, size_t n) {
    if (cli->out) {
        const size_t len = strlen(cli->out);
        HT_CHECK(len > 0, "--out needs a directory (got an empty string)");
        HT_CHECK(len <= HT_RUN_DIR_MAX, "--out '%.60s...' is too long: %zu bytes, run directory paths "
                 "are limited to %d bytes (the files inside must fit in %d)", cli->out, len,
                 HT_RUN_DIR_MAX, HT_PATH_MAX);
        XSNPRINTF(out, n, "%s", cli->out);
        return;
    }
    HT_CHECK(strlen(job->name) + 5 <= HT_RUN_DIR_MAX, "the run directory runs/<job name> would be too "
             "long (job name of %zu bytes); give --out", strlen(job->name));
    XSNPRINTF(out, n, "runs/%s", job->name);
}

// --help and --version end the process here; under mpirun every rank must finalize MPI first.
// The value of an option that takes one: the next argument, which must exist and must not look
// like another option ("--out --print-job" would otherwise train into a directory "--print-job").
static const char *option_value(int argc, char **argv, int *i, const char *need) {
    const char *opt = argv[*i];
    HT_CHECK(*i + 1 < argc, "%s needs %s", opt, need);
    const char *v = argv[*i + 1];
    HT_CHECK(strncmp(v, "--", 2) != 0, "%s needs %s, got the option '%s' (a value that starts with "
             "'--' must be written as ./--...)", opt, need, v);
    (*i)++;
    return v;
}

static void parse_args(Cli *cli, int argc, char **argv, Comm *comm) {
    memset(cli, 0, sizeof(*cli));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_next = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); comm_finalize(comm); exit(0); }
        else if (!strcmp(a, "--version")) { printf("hypertrain %s\n", HT_VERSION); comm_finalize(comm); exit(0); }
        else if (!strcmp(a, "--set")) {
            HT_CHECK(cli->n_sets < 256, "too many --set options (max 256)");
            cli->sets[cli->n_sets++] = option_value(argc, argv, &i, "KEY=VALUE");
        } else if (!strcmp(a, "--out")) cli->out = option_value(argc, argv, &i, "a directory");
        else if (!strcmp(a, "--data")) cli->data = option_value(argc, argv, &i, "a directory");
        else if (!strcmp(a, "--threads")) cli->threads = option_value(argc, argv, &i, "a number");
        else if (!strcmp(a, "--device")) {
            const char *d = cli->device = option_value(argc, argv, &i, "cpu, cuda or auto");
            HT_CHECK(!strcmp(d, "cpu") || !strcmp(d, "cuda") || !strcmp(d, "auto"),
                     "--device must be cpu, cuda or auto (got '%s')", d);
        }
        else if (!strcmp(a, "--resume")) cli->resume = has_next && names_checkpoint(argv[i + 1]) ? argv[++i] : "";
        else if (!strncmp(a, "--resume=", 9)) {
            HT_CHECK(a[9], "--resume= needs a checkpoint path (or use --resume alone for the latest)");
            cli->resume = a + 9;
        } else if (!strcmp(a, "--branch")) cli->branch = 1;
        else if (!strcmp(a, "--print-job")) cli->print_job = 1;
        else if (!strcmp(a, "--quiet")) cli->quiet = 1;
        else if (a[0] == '-') HT_FATAL("unknown option '%s' (see --help)", a);
        else {
            HT_CHECK(!cli->job_file, "more than one job file given ('%s' and '%s')", cli->job_file, a);
            cli->job_file = a;
        }
    }
}

// The resolved job: defaults < (checkpoint's job when resuming without a job file) < job file
// < --set, --data, --threads.
static void resolve_job(Job *job, const Cli *cli, const char *out_dir_hint) {
    job_defaults(job);
    if (cli->job_file) job_load_file(job, cli->job_file);
    else if (cli->resume && cli->resume[0]) {
        char *stored = checkpoint_read_job(cli->resume);
        job_from_json_string(job, stored, cli->resume);
        free(stored);
    } else if (cli->resume && out_dir_hint) {
        char path[HT_PATH_MAX + 32];
        XSNPRINTF(path, sizeof(path), "%s/job.json", out_dir_hint);
        FILE *f = fopen(path, "r");
        if (f) { fclose(f); job_load_file(job, path); }
    }
    for (int i = 0; i < cli->n_sets; i++) job_set(job, cli->sets[i]);
    char buf[HT_PATH_MAX + 32];
    if (cli->data) { XSNPRINTF(buf, sizeof(buf), "data.dir=%s", cli->data); job_set(job, buf); }
    if (cli->threads) { XSNPRINTF(buf, sizeof(buf), "threads=%s", cli->threads); job_set(job, buf); }
    job_validate(job);
}

int main(int argc, char **argv) {
    // Line-buffered output so progress streams through pipes (srun, mpirun, tee, nohup).
    setvbuf(stdout, NULL, _IOLBF, 0);
    Comm comm;
    comm_init(&comm, &argc, &argv);
    if (argc > 1 && !strcmp(argv[1], "sample")) {   // hypertrain sample ... (src/sample.c)
        const int rc = sample_main(&comm, argc - 1, argv + 1);
        comm_finalize(&comm);
        return rc;
    }
    Cli cli;
    parse_args(&cli, argc, argv, &comm);
    check_resume_args(&cli);
    Job job;
    char out_dir[HT_PATH_MAX];
    if (cli.out) out_dir_of(&cli, NULL, out_dir, sizeof(out_dir));
    // Without --out the directory depends on the job name; resolve once to learn it.
    resolve_job(&job, &cli, cli.out);
    if (!cli.out) out_dir_of(&cli, &job, out_dir, sizeof(out_dir));
    if (comm.rank == 0) {
        char *json = job_to_json(&job);
        printf("resolved job:\n%s\n", json);
        free(json);
    }
    if (cli.print_job) {
        TargetArch t;
        HyperArch h;
        memset(&t, 0, sizeof(t));
        if (job.task == TASK_MNIST) arch_build_target(&t, &job);
        arch_build_hyper(&h, &job, &t);
        if (comm.rank == 0) arch_print(&h, job.task == TASK_MNIST ? &t : NULL, stdout);
        comm_finalize(&comm);
        return 0;
    }
    RunOptions opt = {.out_dir = out_dir, .resume = cli.resume, .branch = cli.branch, .quiet = cli.quiet,
                      .device = cli.device};
    const int rc = run_train(&comm, &job, &opt);
    comm_finalize(&comm);
    return rc;
}
