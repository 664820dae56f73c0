// hypertrain: trains a hypernetwork that generates all the weights of a target network, for
// accuracy and diversity ("Generating Neural Networks With Neural Networks").
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        "                    (starts at step 0 if there is none); the job defaults to the stored one\n"
        "  --threads N       OpenMP threads per rank (same as --set threads=N)\n"
        "  --device D        cpu, cuda or auto (default: $HYPERTRAIN_DEVICE, else auto = the GPU when\n"
        "                    this is a CUDA build and every rank sees one, else the CPU)\n"
        "  --print-job       print the resolved job and parameter counts, then exit\n"
        "  --quiet           no progress lines (metrics.jsonl is still written)\n"
        "  --help, --version\n"
        "\n"
        "SIGTERM, SIGUSR1 or SIGINT: checkpoint after the current step and exit with status 75\n"
        "(resume with --resume). Other exit statuses: 0 done, 1 error.\n"
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
    int print_job, quiet;
} Cli;

// --help and --version end the process here; under mpirun every rank must finalize MPI first.
static void parse_args(Cli *cli, int argc, char **argv, Comm *comm) {
    memset(cli, 0, sizeof(*cli));
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const int has_next = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(stdout); comm_finalize(comm); exit(0); }
        else if (!strcmp(a, "--version")) { printf("hypertrain %s\n", HT_VERSION); comm_finalize(comm); exit(0); }
        else if (!strcmp(a, "--set")) {
            HT_CHECK(has_next, "--set needs KEY=VALUE");
            HT_CHECK(cli->n_sets < 256, "too many --set options (max 256)");
            cli->sets[cli->n_sets++] = argv[++i];
        } else if (!strcmp(a, "--out")) { HT_CHECK(has_next, "--out needs a directory"); cli->out = argv[++i]; }
        else if (!strcmp(a, "--data")) { HT_CHECK(has_next, "--data needs a directory"); cli->data = argv[++i]; }
        else if (!strcmp(a, "--threads")) { HT_CHECK(has_next, "--threads needs a number"); cli->threads = argv[++i]; }
        else if (!strcmp(a, "--device")) { HT_CHECK(has_next, "--device needs cpu, cuda or auto"); cli->device = argv[++i]; }
        else if (!strcmp(a, "--resume")) {
            cli->resume = "";
            if (has_next && strlen(argv[i + 1]) > 3 && !strcmp(argv[i + 1] + strlen(argv[i + 1]) - 3, ".h5"))
                cli->resume = argv[++i];
        } else if (!strcmp(a, "--print-job")) cli->print_job = 1;
        else if (!strcmp(a, "--quiet")) cli->quiet = 1;
        else if (a[0] == '-') { usage(stderr); HT_FATAL("unknown option '%s' (see --help)", a); }
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
        snprintf(path, sizeof(path), "%s/job.json", out_dir_hint);
        FILE *f = fopen(path, "r");
        if (f) { fclose(f); job_load_file(job, path); }
    }
    for (int i = 0; i < cli->n_sets; i++) job_set(job, cli->sets[i]);
    char buf[HT_PATH_MAX + 32];
    if (cli->data) { snprintf(buf, sizeof(buf), "data.dir=%s", cli->data); job_set(job, buf); }
    if (cli->threads) { snprintf(buf, sizeof(buf), "threads=%s", cli->threads); job_set(job, buf); }
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
    Job job;
    char out_dir[HT_PATH_MAX];
    if (cli.out) snprintf(out_dir, sizeof(out_dir), "%s", cli.out);
    // Without --out the directory depends on the job name; resolve once to learn it.
    resolve_job(&job, &cli, cli.out);
    if (!cli.out) snprintf(out_dir, sizeof(out_dir), "runs/%s", job.name);
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
    RunOptions opt = {.out_dir = out_dir, .resume = cli.resume, .quiet = cli.quiet, .device = cli.device};
    const int rc = run_train(&comm, &job, &opt);
    comm_finalize(&comm);
    return rc;
}
