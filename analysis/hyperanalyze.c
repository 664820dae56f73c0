// hyperanalyze: analyses of hypertrain's outputs (run directories, checkpoints, sample sets).
// One program with subcommands, like git: `hyperanalyze COMMAND [args]`. The commands are listed
// in hyperanalyze.h (HA_COMMANDS); each lives in its own file analysis/<command>.c.
#include "hyperanalyze.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

#define HA_ENTRY(name, summary) {#name, cmd_##name, summary},
static const Command COMMANDS[] = {HA_COMMANDS(HA_ENTRY)};
#undef HA_ENTRY
static const int N_COMMANDS = (int)(sizeof(COMMANDS) / sizeof(COMMANDS[0]));

static void vreport(const char *cmd, const char *kind, const char *fmt, va_list ap) {
    fflush(stdout);
    fprintf(stderr, "hyperanalyze%s%s: %s: ", cmd ? " " : "", cmd ? cmd : "", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int ha_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, "error", fmt, ap);
    va_end(ap);
    return 1;
}

int ha_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, "error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "(see hyperanalyze %s --help)\n", cmd ? cmd : "");
    return 2;
}

void ha_warn(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, "warning", fmt, ap);
    va_end(ap);
}

static void usage(FILE *f) {
    fprintf(f,
        "usage: hyperanalyze COMMAND [arguments]\n"
        "\n"
        "Analyses of hypertrain's run directories, checkpoints and sample sets.\n"
        "\n"
        "commands:\n");
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(f,
        "\n"
        "hyperanalyze COMMAND --help describes a command. Exit status: 0 success, 1 error, 2 usage.\n"
        "  --help, --version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) { usage(stdout); return 0; }
    if (!strcmp(name, "--version")) { printf("hyperanalyze %s\n", HT_VERSION); return 0; }
    // `hyperanalyze help CMD` is `hyperanalyze CMD --help`.
    if (!strcmp(name, "help")) {
        if (argc < 3) { usage(stdout); return 0; }
        name = argv[2];
        char help[] = "--help";
        char *args[] = {argv[2], help, NULL};
        for (int i = 0; i < N_COMMANDS; i++)
            if (!strcmp(COMMANDS[i].name, name)) return COMMANDS[i].run(2, args);
    } else {
        for (int i = 0; i < N_COMMANDS; i++)
            if (!strcmp(COMMANDS[i].name, name)) return COMMANDS[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "hyperanalyze: error: unknown command '%s'\n\n", name);
    usage(stderr);
    return 2;
}
