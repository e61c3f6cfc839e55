/* Runs the catalogue of malformed models and inputs written by make_catalogue.py:
 *     catalogue CATALOGUE.tsv [--ember PATH] [--only NAME]
 * For every case, through the public API as `ember run` uses it (load the model, load the input
 * files, create a session, run every output): the case must stop at the expected stage with
 * the expected status, a message containing the expected fragment, and no output left behind.
 * Each case must also finish within EMBER_CATALOGUE_MAX_SECONDS (default 10) and may not raise
 * the process's peak memory by more than 512 MB: resource bombs are refused, not survived.
 * With --ember, the same case also runs as `ember run MODEL -i NAME=FILE...`: the exit code
 * must match and a failure must be one "ember: ..." line on stderr with the fragment.
 * No Criterion and no fork for the API part, so that valgrind and LeakSanitizer see leaks. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ember.h"

#define MAX_INPUTS 16
#define MAX_OUTPUTS 64
#define TEXT_SIZE 4096
#define MAX_GROWTH_MB 512

typedef struct catalogue_case {
    char *name, *model, *inputs, *options, *stage, *status, *exit_code, *fragment;
} catalogue_case;

typedef struct outcome {
    const char *stage;
    ember_status status;
    char text[TEXT_SIZE]; /* error message, or the printed outputs */
} outcome;

static const char *status_name(ember_status st) {
    switch (st) {
    case EMBER_OK: return "OK";
    case EMBER_ERR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case EMBER_ERR_IO: return "IO";
    case EMBER_ERR_PARSE: return "PARSE";
    case EMBER_ERR_INVALID_MODEL: return "INVALID_MODEL";
    case EMBER_ERR_UNSUPPORTED: return "UNSUPPORTED";
    case EMBER_ERR_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case EMBER_ERR_LIMIT: return "LIMIT";
    case EMBER_ERR_SHAPE: return "SHAPE";
    case EMBER_ERR_RUNTIME: return "RUNTIME";
    }
    return "?";
}

/* Append like `ember run` prints an output: "y: float32[2, 4] = [1, 2, ...]". */
static void describe_output(char *text, const char *name, const ember_tensor *t) {
    size_t len = strlen(text);
    char *p = text + len;
    size_t room = TEXT_SIZE - len;
    int w = snprintf(p, room, "%s: %s[", name, ember_dtype_name(ember_tensor_dtype(t)));
    for (int i = 0; i < ember_tensor_rank(t) && w > 0 && (size_t)w < room; i++)
        w += snprintf(p + w, room - (size_t)w, "%s%" PRId64, i ? ", " : "", ember_tensor_dims(t)[i]);
    if (w > 0 && (size_t)w < room) w += snprintf(p + w, room - (size_t)w, "] = [");
    int64_t n = ember_tensor_element_count(t), show = n < 8 ? n : 8;
    const void *d = ember_tensor_const_data(t);
    for (int64_t i = 0; i < show && w > 0 && (size_t)w < room; i++) {
        const char *sep = i ? ", " : "";
        switch (ember_tensor_dtype(t)) {
        case EMBER_FLOAT:
            w += snprintf(p + w, room - (size_t)w, "%s%.9g", sep, ((const float *)d)[i]);
            break;
        case EMBER_DOUBLE:
            w += snprintf(p + w, room - (size_t)w, "%s%.17g", sep, ((const double *)d)[i]);
            break;
        case EMBER_INT64:
            w += snprintf(p + w, room - (size_t)w, "%s%" PRId64, sep, ((const int64_t *)d)[i]);
            break;
        case EMBER_INT32:
            w += snprintf(p + w, room - (size_t)w, "%s%" PRId32, sep, ((const int32_t *)d)[i]);
            break;
        case EMBER_BOOL:
            w += snprintf(p + w, room - (size_t)w, "%s%s", sep,
                          ((const uint8_t *)d)[i] ? "true" : "false");
            break;
        default: w += snprintf(p + w, room - (size_t)w, "%s?", sep); break;
        }
    }
    if (w > 0 && (size_t)w < room) snprintf(p + w, room - (size_t)w, "%s]\n", n > show ? ", ..." : "");
}

static bool parse_options(const char *text, ember_load_options *lo, ember_session_options *so,
                          bool *session_only) {
    if (strcmp(text, "-") == 0) return true;
    char *copy = strdup(text), *save = NULL;
    bool ok = copy != NULL;
    for (char *item = copy ? strtok_r(copy, ";", &save) : NULL; item && ok;
         item = strtok_r(NULL, ";", &save)) {
        unsigned long long v = 0;
        if (sscanf(item, "max_nodes=%llu", &v) == 1) lo->max_nodes = v;
        else if (sscanf(item, "max_tensor_bytes=%llu", &v) == 1) lo->max_tensor_bytes = v;
        else if (sscanf(item, "memory_limit=%llu", &v) == 1) so->memory_limit = v;
        else if (strcmp(item, "session_only") == 0) *session_only = true; /* no run */
        else ok = false;
    }
    free(copy);
    return ok;
}

/* Split "a=F;b=G" into names and files (pointers into `buf`). Returns the count or -1. */
static int split_inputs(char *buf, char **names, char **files) {
    if (strcmp(buf, "-") == 0) return 0;
    int n = 0;
    char *save = NULL;
    for (char *item = strtok_r(buf, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(item, '=');
        if (!eq || n == MAX_INPUTS) return -1;
        *eq = '\0';
        names[n] = item;
        files[n++] = eq + 1;
    }
    return n;
}

static bool fail_with(outcome *o, const char *stage, ember_status st, const ember_error *err) {
    o->stage = stage;
    o->status = st;
    snprintf(o->text, sizeof o->text, "%s", err->message);
    if (err->code != st) {
        snprintf(o->text, sizeof o->text, "status %d but error report says %d: %s", (int)st,
                 (int)err->code, err->message);
        o->stage = "inconsistent";
    }
    return false;
}

/* The API path. Returns false if the case could not even be set up. */
static bool run_api(const catalogue_case *c, outcome *o) {
    ember_load_options lo = {0};
    ember_session_options so;
    ember_session_options_init(&so);
    so.threads = 1;
    memset(o, 0, sizeof *o);
    bool session_only = false;
    if (!parse_options(c->options, &lo, &so, &session_only)) {
        snprintf(o->text, sizeof o->text, "bad options '%s'", c->options);
        return false;
    }
    char inputs[TEXT_SIZE];
    snprintf(inputs, sizeof inputs, "%s", c->inputs);
    char *names[MAX_INPUTS], *files[MAX_INPUTS];
    int n_in = split_inputs(inputs, names, files);
    if (n_in < 0) {
        snprintf(o->text, sizeof o->text, "bad inputs '%s'", c->inputs);
        return false;
    }
    ember_error err;
    ember_model *m = NULL;
    ember_session *s = NULL;
    ember_tensor *in[MAX_INPUTS] = {0}, *out[MAX_OUTPUTS];
    const char *out_names[MAX_OUTPUTS];
    ember_status st = ember_model_load_file(c->model, &lo, &m, &err);
    if (st != EMBER_OK) {
        if (m) snprintf(o->text, sizeof o->text, "a model came back with an error");
        fail_with(o, m ? "inconsistent" : "load", st, &err);
        goto done;
    }
    for (int i = 0; i < n_in; i++) {
        st = ember_tensor_load(files[i], &in[i], &err);
        if (st != EMBER_OK) {
            fail_with(o, "input", st, &err);
            goto done;
        }
    }
    st = ember_session_create(m, &so, &s, &err);
    if (st != EMBER_OK) {
        fail_with(o, "session", st, &err);
        goto done;
    }
    if (session_only) {
        o->stage = "ok";
        o->status = EMBER_OK;
        snprintf(o->text, sizeof o->text, "session created");
        goto done;
    }
    size_t n_out = ember_model_output_count(m);
    if (n_out > MAX_OUTPUTS) n_out = MAX_OUTPUTS;
    for (size_t k = 0; k < n_out; k++) {
        ember_value_info vi;
        ember_model_output(m, k, &vi);
        out_names[k] = vi.name;
        out[k] = (ember_tensor *)&err; /* must be cleared by the run */
    }
    st = ember_session_run(s, (const char *const *)names, (const ember_tensor *const *)in,
                           (size_t)n_in, out_names, n_out, out, &err);
    if (st != EMBER_OK) {
        fail_with(o, "run", st, &err);
        for (size_t k = 0; k < n_out; k++)
            if (out[k]) o->stage = "inconsistent (outputs left after a failed run)";
        goto done;
    }
    o->stage = "ok";
    o->status = EMBER_OK;
    for (size_t k = 0; k < n_out; k++) {
        describe_output(o->text, out_names[k], out[k]);
        ember_tensor_free(out[k]);
    }
done:
    for (int i = 0; i < n_in; i++) ember_tensor_free(in[i]);
    ember_session_free(s);
    ember_model_free(m);
    return true;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    char *buf = calloc(1, TEXT_SIZE);
    if (f && buf) {
        size_t n = fread(buf, 1, TEXT_SIZE - 1, f);
        buf[n] = '\0';
    }
    if (f) fclose(f);
    return buf;
}

/* The CLI path: ember run MODEL -i NAME=FILE... Returns a malloc'd complaint or NULL. */
static char *run_cli(const char *ember, const catalogue_case *c) {
    char inputs[TEXT_SIZE];
    snprintf(inputs, sizeof inputs, "%s", c->inputs);
    char *names[MAX_INPUTS], *files[MAX_INPUTS];
    int n_in = split_inputs(inputs, names, files);
    char specs[MAX_INPUTS][TEXT_SIZE];
    char *argv[4 + 2 * MAX_INPUTS];
    int argc = 0;
    argv[argc++] = (char *)ember;
    argv[argc++] = "run";
    argv[argc++] = c->model;
    for (int i = 0; i < n_in; i++) {
        snprintf(specs[i], sizeof specs[i], "%s=%s", names[i], files[i]);
        argv[argc++] = "-i";
        argv[argc++] = specs[i];
    }
    argv[argc] = NULL;
    char out_path[] = "/tmp/ember-catalogue-out-XXXXXX", err_path[] = "/tmp/ember-catalogue-err-XXXXXX";
    int out_fd = mkstemp(out_path), err_fd = mkstemp(err_path);
    char *complaint = calloc(1, TEXT_SIZE);
    if (out_fd < 0 || err_fd < 0 || !complaint) {
        if (complaint) snprintf(complaint, TEXT_SIZE, "cannot create temporary files");
        goto cleanup;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out_fd, 1);
        dup2(err_fd, 2);
        alarm(120); /* survives exec: a hung case ends instead of blocking the test */
        execv(ember, argv);
        _exit(127);
    }
    int wstatus = 0;
    if (pid < 0 || waitpid(pid, &wstatus, 0) != pid) {
        snprintf(complaint, TEXT_SIZE, "cannot run %s", ember);
        goto cleanup;
    }
    char *out = slurp(out_path), *errtext = slurp(err_path);
    int want = atoi(c->exit_code);
    if (!WIFEXITED(wstatus)) {
        snprintf(complaint, TEXT_SIZE, "ember run died with signal %d; stderr: %s",
                 WTERMSIG(wstatus), errtext ? errtext : "");
    } else if (WEXITSTATUS(wstatus) != want) {
        snprintf(complaint, TEXT_SIZE, "ember run exited %d, expected %d; stderr: %s",
                 WEXITSTATUS(wstatus), want, errtext ? errtext : "");
    } else if (want == 0 && (!out || !strstr(out, c->fragment))) {
        snprintf(complaint, TEXT_SIZE, "ember run printed '%s', which lacks '%s'", out ? out : "",
                 c->fragment);
    } else if (want != 0) {
        size_t len = errtext ? strlen(errtext) : 0;
        bool one_line = len > 0 && errtext[len - 1] == '\n' && !memchr(errtext, '\n', len - 1);
        if (!one_line || strncmp(errtext, "ember: ", 7) != 0 || !strstr(errtext, c->fragment))
            snprintf(complaint, TEXT_SIZE, "ember run's stderr is not one 'ember: ' line with '%s': %s",
                     c->fragment, errtext ? errtext : "");
    }
    free(out);
    free(errtext);
cleanup:
    if (out_fd >= 0) close(out_fd), unlink(out_path);
    if (err_fd >= 0) close(err_fd), unlink(err_path);
    if (complaint && !complaint[0]) {
        free(complaint);
        complaint = NULL;
    }
    return complaint;
}

static bool parse_line(char *line, catalogue_case *c) {
    char *fields[8];
    int n = 0;
    for (char *p = line; n < 8; n++) {
        fields[n] = p;
        char *tab = strchr(p, '\t');
        if (!tab) {
            p[strcspn(p, "\r\n")] = '\0';
            n++;
            break;
        }
        *tab = '\0';
        p = tab + 1;
    }
    if (n != 8) return false;
    *c = (catalogue_case){fields[0], fields[1], fields[2], fields[3],
                          fields[4], fields[5], fields[6], fields[7]};
    return true;
}

int main(int argc, char **argv) {
    const char *path = NULL, *ember = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ember") == 0 && i + 1 < argc) ember = argv[++i];
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) only = argv[++i];
        else path = argv[i];
    }
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) {
        fprintf(stderr, "usage: catalogue CATALOGUE.tsv [--ember PATH] [--only NAME]\n");
        return 2;
    }
    /* Every case is small: one that takes long is a time bomb. Valgrind needs more. */
    const char *limit_env = getenv("EMBER_CATALOGUE_MAX_SECONDS");
    const double max_seconds = limit_env ? atof(limit_env) : 10.0;
    char line[8192];
    int total = 0, failed = 0, cli_runs = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || isspace((unsigned char)line[0])) continue;
        catalogue_case c;
        if (!parse_line(line, &c)) {
            fprintf(stderr, "catalogue: malformed line: %s\n", line);
            failed++;
            continue;
        }
        if (only && strcmp(only, c.name) != 0) continue;
        total++;
        outcome o;
        char why[2 * TEXT_SIZE] = "";
        /* The peak resident size may not jump during a case: a resource bomb must be refused
         * before it allocates, not after (the process's peak only grows, so a jump is this
         * case's doing). */
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        long peak_before = ru.ru_maxrss;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        bool ran = run_api(&c, &o);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        getrusage(RUSAGE_SELF, &ru);
        long grown_mb = (ru.ru_maxrss - peak_before) / 1024;
        double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (!ran) {
            snprintf(why, sizeof why, "%s", o.text);
        } else if (strcmp(o.stage, c.stage) != 0 || strcmp(status_name(o.status), c.status) != 0) {
            snprintf(why, sizeof why, "stopped at %s with %s, expected %s with %s: %s", o.stage,
                     status_name(o.status), c.stage, c.status, o.text);
        } else if (!strstr(o.text, c.fragment)) {
            snprintf(why, sizeof why, "'%s' lacks '%s'", o.text, c.fragment);
        } else if (grown_mb > MAX_GROWTH_MB) {
            snprintf(why, sizeof why, "the peak memory grew by %ld MB (more than %d)", grown_mb,
                     MAX_GROWTH_MB);
        } else if (seconds > max_seconds) {
            snprintf(why, sizeof why, "took %.1f s (more than %.0f)", seconds, max_seconds);
        }
        char *cli = NULL;
        if (ember && strcmp(c.options, "-") == 0 && strcmp(c.exit_code, "-") != 0) {
            cli = run_cli(ember, &c);
            cli_runs++;
        }
        if (why[0] || cli) {
            failed++;
            printf("FAIL %s: %s%s%s\n", c.name, why, why[0] && cli ? "; " : "", cli ? cli : "");
        } else {
            printf("ok   %s (%s %s)\n", c.name, c.stage, c.status);
        }
        free(cli);
    }
    fclose(f);
    printf("catalogue: %d cases (%d also through the CLI), %d failed\n", total, cli_runs, failed);
    return failed || total == 0 ? 1 : 0;
}
