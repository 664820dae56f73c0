// hyperanalyze: analyses of hypertrain's outputs (run directories, checkpoints, sample sets).
// One program with subcommands, like git: `hyperanalyze COMMAND [args]`. The commands are listed
// in hyperanalyze.h (HA_COMMANDS); each lives in its own file analysis/<command>.c.
#define _GNU_SOURCE // program_invocation_short_name
#include "hyperanalyze.h"

#include <errno.h>
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

// One line on stderr: "hyperanalyze CMD: KIND: <msg><tail>\n" (control characters in the message,
// e.g. from a file name, become spaces so that it stays one line).
static void vreport(const char *cmd, const char *kind, const char *tail, const char *fmt, va_list ap) {
    char msg[4096];
    fflush(stdout);
    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0) msg[0] = '\0';
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20) *c = ' ';
    fprintf(stderr, "hyperanalyze%s%s: %s: %s%s\n", cmd ? " " : "", cmd ? cmd : "", kind, msg, tail);
}

int ha_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, "error", "", fmt, ap);
    va_end(ap);
    return 1;
}

int ha_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tail[64];
    XSNPRINTF(tail, sizeof(tail), " (see hyperanalyze%s%s --help)", cmd ? " " : "", cmd ? cmd : "");
    vreport(cmd, "error", tail, fmt, ap);
    va_end(ap);
    return 2;
}

void ha_warn(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, "warning", "", fmt, ap);
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

// Runs a command under the program name "hyperanalyze CMD", so that errors raised deep inside
// (HT_FATAL reading a sample set, an allocation) read "hyperanalyze CMD: error: ..." like the
// command's own. The name lives in main's frame, which outlives the command.
static int run_command(const Command *c, int argc, char **argv) {
    char prog[64];
    XSNPRINTF(prog, sizeof(prog), "hyperanalyze %s", c->name);
    char *saved = program_invocation_short_name;
    program_invocation_short_name = prog;
    const int rc = c->run(argc, argv);
    program_invocation_short_name = saved;
    return rc;
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
            if (!strcmp(COMMANDS[i].name, name)) return run_command(&COMMANDS[i], argc - 1, argv + 1);
    }
    char names[512] = "";
    for (int i = 0; i < N_COMMANDS; i++) {
        const size_t len = strlen(names);
        XSNPRINTF(names + len, sizeof(names) - len, "%s%s", i ? ", " : "", COMMANDS[i].name);
    }
    return ha_usage_error(NULL, "unknown command '%s' (commands: %s)", name, names);
}
