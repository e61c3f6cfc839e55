/* ember: command line entry point; dispatches to subcommands. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("ember: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool cli_flag_value(int argc, char **argv, int *i, const char *name, const char **value,
                    bool *bad) {
    const char *arg = argv[*i];
    size_t n = strlen(name);
    if (strncmp(arg, name, n) != 0) return false;
    if (arg[n] == '=') {
        *value = arg + n + 1;
        return true;
    }
    if (arg[n] != '\0') return false;
    if (*i + 1 >= argc) {
        cli_error("%s needs a value", name);
        *bad = true;
        return true;
    }
    *value = argv[++*i];
    return true;
}

bool cli_parse_int(const char *flag, const char *text, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') {
        cli_error("%s: '%s' is not an integer", flag, text);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_double(const char *flag, const char *text, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0') {
        cli_error("%s: '%s' is not a number", flag, text);
        return false;
    }
    *out = v;
    return true;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ember [--plugin LIB.so]... COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  info MODEL       inputs, outputs, operators, parameters and warnings\n"
            "  run MODEL        run once on input files (.npy / .pb)\n"
            "  score MODEL      score rows from CSV / NPY / JSONL files or stdin\n"
            "  test PATH...     run ONNX backend test cases and compare outputs\n"
            "  bench MODEL      measure latency and memory\n"
            "  version          print the version\n"
            "\n"
            "'ember COMMAND --help' describes a command.\n");
}

int main(int argc, char **argv) {
    int i = 1;
    while (i < argc && strncmp(argv[i], "--plugin", 8) == 0) {
        const char *lib = NULL;
        bool bad = false;
        if (!cli_flag_value(argc, argv, &i, "--plugin", &lib, &bad) || bad) {
            cli_error("usage: ember --plugin LIB.so COMMAND ...");
            return 2;
        }
        ember_error err;
        if (ember_load_plugin(lib, &err) != EMBER_OK) {
            cli_error("%s", err.message);
            return 1;
        }
        i++;
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ember %s (ABI %d)\n", ember_version(), ember_abi_version());
        return 0;
    }
    if (strcmp(cmd, "info") == 0) return cmd_info(sub_argc, sub_argv);
    if (strcmp(cmd, "run") == 0) return cmd_run(sub_argc, sub_argv);
    if (strcmp(cmd, "test") == 0) return cmd_test(sub_argc, sub_argv);
    if (strcmp(cmd, "score") == 0) return cmd_score(sub_argc, sub_argv);
    if (strcmp(cmd, "bench") == 0) return cmd_bench(sub_argc, sub_argv);
    cli_error("unknown command '%s' (see 'ember --help')", cmd);
    return 2;
}
