/* ember test: run ONNX backend test cases and compare their outputs. */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "test_runner.h"

#define DEFAULT_RTOL 1e-3
#define DEFAULT_ATOL 1e-7
#define DEFAULT_TIMEOUT 60.0

static void usage(FILE *f) {
    fprintf(f,
        "usage: ember test [OPTIONS] PATH...\n"
        "\n"
        "Run ONNX backend test cases and compare their outputs with the expected ones.\n"
        "A case is a folder holding model.onnx and test_data_set_N/ folders with input_K.pb\n"
        "and output_K.pb (TensorProto). PATH is one case, or a folder searched recursively\n"
        "for cases. The case name is the folder name.\n"
        "\n"
        "Inputs are fed by position to the graph inputs that are not initializers; an\n"
        "input_K.pb that carries a name must carry that input's name. Every data set and every\n"
        "output is compared with numpy's allclose rule\n"
        "    |got - expected| <= atol + rtol * |expected|\n"
        "elementwise; dtype and shape must be the same, NaN equals NaN, and an infinity equals\n"
        "only the infinity of the same sign. (Where the graph declares bfloat16, uint16 data\n"
        "files are read as bfloat16 bit patterns, as ONNX's generator writes them.) Each case\n"
        "runs in its own process with a timeout, so a crashing kernel ends only that case.\n"
        "\n"
        "options:\n"
        "  --rtol X            relative tolerance (default 1e-3, as ONNX's backend runner)\n"
        "  --atol X            absolute tolerance (default 1e-7)\n"
        "  --tolerances FILE   per-case overrides, one line each: 'case_name rtol atol # reason'\n"
        "                      (the reason is required; '#' lines and blank lines are skipped)\n"
        "  --filter REGEX      run only the cases whose name matches the POSIX extended REGEX\n"
        "  --expect FILE       names of the cases expected to pass, one per line, '#' comments;\n"
        "                      then only regressions fail the run: a listed case that does not\n"
        "                      pass, or that is not found while matching --filter. Passing cases\n"
        "                      missing from FILE are listed so that it can be updated\n"
        "  --json FILE         write every result (and the per-operator table) as JSON\n"
        "  --jobs N            cases run at once (default: the number of cores)\n"
        "  --timeout SECONDS   time limit per case, 0 for none (default 60); over it = error\n"
        "  --threads N         threads inside each session (default 1)\n"
        "  --opt LEVEL         graph optimization: none, basic or all (default all)\n"
        "  --no-fork           run the cases in this process, one after the other (to debug a\n"
        "                      case under gdb or valgrind; a crash then ends the run)\n"
        "  -v, --verbose       also print passing cases\n"
        "  -q, --quiet         print only failing and erroring cases\n"
        "  -h, --help          this text\n"
        "\n"
        "results: each case ends as\n"
        "  passed       every output matches\n"
        "  failed       an output differs: the first such output is reported with its worst\n"
        "               element (index, expected, got), the number of differing elements, the\n"
        "               max absolute difference and, for floating point, the max ULP distance\n"
        "  unsupported  loading the model or creating the session failed with\n"
        "               EMBER_ERR_UNSUPPORTED (an operator, opset or type ember cannot run);\n"
        "               shown as SKIP with ember's message and counted as skipped\n"
        "  error        a malformed case (missing or unreadable file, wrong file count or input\n"
        "               name), any other load or run error (EMBER_ERR_UNSUPPORTED while running\n"
        "               included), a crash ('crashed with signal N') or a timeout; counted as\n"
        "               failed\n"
        "\n"
        "The report lists cases that did not pass (all with -v), a table of operators (cases\n"
        "using each operator type, and how many of them passed) and ends with the line\n"
        "    N passed, N failed, N skipped\n"
        "\n"
        "exit status: 0 when no selected case failed or erred (with --expect: when there is no\n"
        "regression), 1 otherwise, 2 for bad options or files, or when no case is selected.\n");
}

/* ------------------------------------------------------------------------------------------
 * Name lists (--expect) and tolerance overrides (--tolerances)
 * ---------------------------------------------------------------------------------------- */

typedef struct name_entry {
    char *name;
    double rtol;
    double atol;
    int line;
    bool seen; /* found among the discovered cases */
} name_entry;

typedef struct name_table {
    name_entry *items;
    size_t count;
} name_table;

static int compare_entries(const void *a, const void *b) {
    return strcmp(((const name_entry *)a)->name, ((const name_entry *)b)->name);
}

static name_entry *table_find(const name_table *table, const char *name) {
    if (table->count == 0) return NULL;
    name_entry key = {.name = (char *)name};
    return bsearch(&key, table->items, table->count, sizeof key, compare_entries);
}

static void table_free(name_table *table) {
    for (size_t i = 0; i < table->count; i++) free(table->items[i].name);
    free(table->items);
    table->items = NULL;
    table->count = 0;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

/* Read a list file. With `tolerances`, each line is 'name rtol atol # reason'; otherwise a
 * name with an optional trailing comment. */
static bool table_load(const char *path, bool tolerances, name_table *table) {
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return false;
    }
    size_t capacity = 0;
    char *line = NULL;
    size_t line_size = 0;
    int line_number = 0;
    bool ok = true;
    while (ok && getline(&line, &line_size, f) >= 0) {
        line_number++;
        char *comment = strchr(line, '#');
        char *reason = comment ? trim(comment + 1) : NULL;
        if (comment) *comment = '\0';
        char *text = trim(line);
        if (*text == '\0') continue;
        name_entry entry = {.line = line_number, .rtol = NAN, .atol = NAN};
        char *fields[4];
        int field_count = 0;
        for (char *save = NULL, *tok = strtok_r(text, " \t", &save); tok;
             tok = strtok_r(NULL, " \t", &save))
            fields[field_count < 4 ? field_count++ : 3] = tok;
        if (tolerances) {
            char *end_r = NULL, *end_a = NULL;
            if (field_count == 3) {
                entry.rtol = strtod(fields[1], &end_r);
                entry.atol = strtod(fields[2], &end_a);
            }
            if (field_count != 3 || *end_r || *end_a || !(entry.rtol >= 0) ||
                !(entry.atol >= 0) || isinf(entry.rtol) || isinf(entry.atol)) {
                cli_error("%s:%d: expected 'case_name rtol atol # reason'", path, line_number);
                ok = false;
                break;
            }
            if (!reason || *reason == '\0') {
                cli_error("%s:%d: a tolerance override needs a reason after '#'", path,
                          line_number);
                ok = false;
                break;
            }
        } else if (field_count != 1) {
            cli_error("%s:%d: expected one case name per line", path, line_number);
            ok = false;
            break;
        }
        if (table->count == capacity) {
            capacity = capacity ? capacity * 2 : 256;
            name_entry *grown = realloc(table->items, capacity * sizeof *grown);
            if (!grown) {
                cli_error("out of memory");
                ok = false;
                break;
            }
            table->items = grown;
        }
        entry.name = strdup(fields[0]);
        if (!entry.name) {
            cli_error("out of memory");
            ok = false;
            break;
        }
        table->items[table->count++] = entry;
    }
    free(line);
    fclose(f);
    if (!ok) return false;
    if (table->count > 1) /* qsort(NULL, 0, ...) is undefined */
        qsort(table->items, table->count, sizeof *table->items, compare_entries);
    for (size_t i = 1; i < table->count; i++) {
        if (strcmp(table->items[i - 1].name, table->items[i].name) == 0) {
            cli_error("%s:%d: '%s' is listed twice", path, table->items[i].line,
                      table->items[i].name);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------------------------
 * Reporting
 * ---------------------------------------------------------------------------------------- */

typedef enum verbosity { QUIET, NORMAL, VERBOSE } verbosity;

typedef struct report_context {
    verbosity level;
} report_context;

static const char *status_tag(case_status status) {
    switch (status) {
    case CASE_PASSED: return "PASS";
    case CASE_FAILED: return "FAIL";
    case CASE_UNSUPPORTED: return "SKIP";
    case CASE_ERROR: return "ERROR";
    }
    return "?";
}

static void print_case(const test_case *item, void *context) {
    const report_context *report = context;
    case_status status = item->record.status;
    if (status == CASE_PASSED && report->level != VERBOSE) return;
    if (status == CASE_UNSUPPORTED && report->level == QUIET) return;
    printf("%-5s %s", status_tag(status), item->name);
    if (item->record.message[0]) printf(": %s", item->record.message);
    putchar('\n');
    fflush(stdout);
}

typedef struct op_row {
    const char *domain;
    const char *op_type;
    int cases;
    int passed;
} op_row;

static int compare_rows(const void *a, const void *b) {
    const op_row *x = a, *y = b;
    int c = strcmp(x->domain, y->domain);
    return c ? c : strcmp(x->op_type, y->op_type);
}

/* One row per operator type: cases whose model uses it, and how many of those passed. */
static op_row *op_table(const test_case *cases, size_t count, size_t *row_count) {
    op_row *rows = NULL;
    size_t n = 0, capacity = 0;
    for (size_t i = 0; i < count; i++) {
        const case_record *r = &cases[i].record;
        if (!r->scanned) continue;
        for (int k = 0; k < r->ops.op_count; k++) {
            const case_op *op = &r->ops.ops[k];
            size_t j = 0;
            while (j < n && (strcmp(rows[j].op_type, op->op_type) != 0 ||
                             strcmp(rows[j].domain, op->domain) != 0))
                j++;
            if (j == n) {
                if (n == capacity) {
                    capacity = capacity ? capacity * 2 : 128;
                    op_row *grown = realloc(rows, capacity * sizeof *grown);
                    if (!grown) {
                        free(rows);
                        *row_count = 0;
                        return NULL;
                    }
                    rows = grown;
                }
                rows[n++] = (op_row){op->domain, op->op_type, 0, 0};
            }
            rows[j].cases++;
            if (r->status == CASE_PASSED) rows[j].passed++;
        }
    }
    if (n) qsort(rows, n, sizeof *rows, compare_rows);
    *row_count = n;
    return rows;
}

static void op_label(const op_row *row, char *buf, size_t size) {
    if (row->domain[0]) snprintf(buf, size, "%s:%s", row->domain, row->op_type);
    else snprintf(buf, size, "%s", row->op_type);
}

static void print_op_table(const op_row *rows, size_t count) {
    if (count == 0) return;
    int width = 24;
    char name[160];
    for (size_t i = 0; i < count; i++) {
        op_label(&rows[i], name, sizeof name);
        if ((int)strlen(name) > width) width = (int)strlen(name);
    }
    printf("\n%-*s %6s %6s\n", width, "operator", "cases", "passed");
    for (size_t i = 0; i < count; i++) {
        op_label(&rows[i], name, sizeof name);
        printf("%-*s %6d %6d\n", width, name, rows[i].cases, rows[i].passed);
    }
    putchar('\n');
}

/* ------------------------------------------------------------------------------------------
 * JSON
 * ---------------------------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", f);
        else if (*p == '\t') fputs("\\t", f);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* Non-finite numbers are not JSON: written as the strings "nan", "inf", "-inf". */
static void json_number(FILE *f, double value) {
    if (isnan(value)) fputs("\"nan\"", f);
    else if (isinf(value)) fputs(value > 0 ? "\"inf\"" : "\"-inf\"", f);
    else fprintf(f, "%.17g", value);
}

static void json_mismatch(FILE *f, const case_record *r) {
    const case_mismatch *m = &r->mismatch;
    const compare_result *c = &m->compare;
    fprintf(f, ", \"mismatch\": {\"data_set\": %d, \"output_index\": %d, \"output_name\": ",
            m->data_set, m->output_index);
    json_string(f, m->output_name);
    fputs(", \"dtype\": ", f);
    json_string(f, m->dtype);
    fputs(", \"reason\": ", f);
    json_string(f, c->reason);
    fprintf(f, ", \"failing_outputs\": %d", r->failing_outputs);
    if (!c->layout_mismatch) {
        fprintf(f, ", \"elements\": %lld, \"mismatches\": %lld, \"worst_index\": [",
                (long long)c->element_count, (long long)c->mismatch_count);
        for (int d = 0; d < c->worst_rank; d++)
            fprintf(f, d ? ", %lld" : "%lld", (long long)c->worst_index[d]);
        fprintf(f, "], \"worst_flat_index\": %lld, \"expected\": ", (long long)c->worst_flat_index);
        json_string(f, c->worst_expected);
        fputs(", \"got\": ", f);
        json_string(f, c->worst_got);
        fputs(", \"max_abs_diff\": ", f);
        json_number(f, c->max_abs_diff);
        fputs(", \"max_ulp\": ", f);
        if (!c->has_ulp) fputs("null", f);
        else if (c->ulp_unbounded) fputs("\"inf\"", f);
        else fprintf(f, "%llu", (unsigned long long)c->max_ulp);
    }
    fputc('}', f);
}

typedef struct expect_summary {
    const char *path;          /* NULL without --expect */
    const test_case **regressions;
    size_t regression_count;
    const test_case **new_passes;
    size_t new_pass_count;
    const char **missing;      /* listed, selectable, but not found */
    size_t missing_count;
} expect_summary;

static const char *expect_mark(const expect_summary *expect, const name_table *list,
                               const test_case *item) {
    if (!expect->path) return NULL;
    bool listed = table_find(list, item->name) != NULL;
    bool passed = item->record.status == CASE_PASSED;
    if (listed && !passed) return "regression";
    if (!listed && passed) return "new_pass";
    return listed ? "expected_pass" : "not_expected";
}

static bool write_json(const char *path, const test_case *cases, size_t count,
                       const op_row *rows, size_t row_count, const int totals[4],
                       double rtol, double atol, const expect_summary *expect,
                       const name_table *expect_list) {
    FILE *f = fopen(path, "w");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return false;
    }
    fputs("{\n  \"ember_version\": ", f);
    json_string(f, ember_version());
    fputs(",\n  \"rtol\": ", f);
    json_number(f, rtol);
    fputs(", \"atol\": ", f);
    json_number(f, atol);
    fprintf(f,
            ",\n  \"totals\": {\"cases\": %zu, \"passed\": %d, \"failed\": %d, "
            "\"unsupported\": %d, \"error\": %d},\n",
            count, totals[CASE_PASSED], totals[CASE_FAILED], totals[CASE_UNSUPPORTED],
            totals[CASE_ERROR]);
    if (expect->path) {
        fputs("  \"expect\": {\"file\": ", f);
        json_string(f, expect->path);
        fputs(", \"regressions\": [", f);
        for (size_t i = 0; i < expect->regression_count; i++) {
            if (i) fputs(", ", f);
            json_string(f, expect->regressions[i]->name);
        }
        fputs("], \"missing\": [", f);
        for (size_t i = 0; i < expect->missing_count; i++) {
            if (i) fputs(", ", f);
            json_string(f, expect->missing[i]);
        }
        fputs("], \"new_passes\": [", f);
        for (size_t i = 0; i < expect->new_pass_count; i++) {
            if (i) fputs(", ", f);
            json_string(f, expect->new_passes[i]->name);
        }
        fputs("]},\n", f);
    }
    fputs("  \"cases\": [\n", f);
    for (size_t i = 0; i < count; i++) {
        const test_case *item = &cases[i];
        const case_record *r = &item->record;
        fputs("    {\"name\": ", f);
        json_string(f, item->name);
        fputs(", \"path\": ", f);
        json_string(f, item->path);
        fputs(", \"status\": ", f);
        json_string(f, case_status_name(r->status));
        fputs(", \"message\": ", f);
        json_string(f, r->message);
        fprintf(f, ", \"seconds\": %.6f, \"rtol\": ", item->seconds);
        json_number(f, item->options.rtol);
        fputs(", \"atol\": ", f);
        json_number(f, item->options.atol);
        fprintf(f, ", \"tolerance_override\": %s", item->tolerance_override ? "true" : "false");
        const char *mark = expect_mark(expect, expect_list, item);
        if (mark) {
            fputs(", \"expect\": ", f);
            json_string(f, mark);
        }
        fprintf(f, ", \"data_sets\": %d, \"input_types\": [", r->data_set_count);
        const char *types = r->input_types;
        for (int first = 1; *types; first = 0) {
            size_t n = strcspn(types, ",");
            fprintf(f, "%s\"%.*s\"", first ? "" : ", ", (int)n, types);
            types += n + (types[n] == ',');
        }
        fputs("], \"ops\": ", f);
        if (!r->scanned) {
            fputs("null", f);
        } else {
            fputc('[', f);
            for (int k = 0; k < r->ops.op_count; k++) {
                fputs(k ? ", {\"op_type\": " : "{\"op_type\": ", f);
                json_string(f, r->ops.ops[k].op_type);
                fputs(", \"domain\": ", f);
                json_string(f, r->ops.ops[k].domain);
                fprintf(f, ", \"opset\": %lld}", (long long)r->ops.ops[k].opset);
            }
            fprintf(f, "], \"ops_truncated\": %s", r->ops.ops_truncated ? "true" : "false");
        }
        if (r->has_mismatch) json_mismatch(f, r);
        fputs(i + 1 < count ? "},\n" : "}\n", f);
    }
    fputs("  ],\n  \"ops\": [\n", f);
    for (size_t i = 0; i < row_count; i++) {
        fputs("    {\"op_type\": ", f);
        json_string(f, rows[i].op_type);
        fputs(", \"domain\": ", f);
        json_string(f, rows[i].domain);
        fprintf(f, ", \"cases\": %d, \"passed\": %d}%s\n", rows[i].cases, rows[i].passed,
                i + 1 < row_count ? "," : "");
    }
    fputs("  ]\n}\n", f);
    bool ok = !ferror(f);
    if (fclose(f) != 0) ok = false;
    if (!ok) cli_error("%s: write failed", path);
    return ok;
}

/* ------------------------------------------------------------------------------------------
 * The command
 * ---------------------------------------------------------------------------------------- */

typedef struct test_args {
    double rtol;
    double atol;
    const char *tolerances_path;
    const char *filter;
    const char *expect_path;
    const char *json_path;
    int jobs;
    double timeout;
    int threads;
    ember_opt_level opt_level;
    bool isolate;
    verbosity level;
    const char **paths;
    int path_count;
} test_args;

/* Returns -1 when parsed, otherwise the exit code to return (0 for --help). */
static int parse_args(int argc, char **argv, test_args *args) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    *args = (test_args){
        .rtol = DEFAULT_RTOL,
        .atol = DEFAULT_ATOL,
        .jobs = cores > 0 ? (int)cores : 1,
        .timeout = DEFAULT_TIMEOUT,
        .threads = 1,
        .opt_level = EMBER_OPT_ALL,
        .isolate = true,
        .level = NORMAL,
    };
    args->paths = calloc((size_t)argc, sizeof *args->paths);
    if (!args->paths) {
        cli_error("out of memory");
        return 1;
    }
    bool bad = false;
    bool options_done = false;
    for (int i = 1; i < argc && !bad; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        long long n;
        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            args->paths[args->path_count++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
            args->level = VERBOSE;
        } else if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
            args->level = QUIET;
        } else if (strcmp(arg, "--no-fork") == 0) {
            args->isolate = false;
        } else if (cli_flag_value(argc, argv, &i, "--rtol", &value, &bad)) {
            if (!bad && (!cli_parse_double("--rtol", value, &args->rtol) || !(args->rtol >= 0)))
                bad = true;
        } else if (cli_flag_value(argc, argv, &i, "--atol", &value, &bad)) {
            if (!bad && (!cli_parse_double("--atol", value, &args->atol) || !(args->atol >= 0)))
                bad = true;
        } else if (cli_flag_value(argc, argv, &i, "--tolerances", &value, &bad)) {
            args->tolerances_path = value;
        } else if (cli_flag_value(argc, argv, &i, "--filter", &value, &bad)) {
            args->filter = value;
        } else if (cli_flag_value(argc, argv, &i, "--expect", &value, &bad)) {
            args->expect_path = value;
        } else if (cli_flag_value(argc, argv, &i, "--json", &value, &bad)) {
            args->json_path = value;
        } else if (cli_flag_value(argc, argv, &i, "--jobs", &value, &bad)) {
            if (!bad && (!cli_parse_int("--jobs", value, &n) || n < 1 || n > 1024)) bad = true;
            else if (!bad) args->jobs = (int)n;
        } else if (cli_flag_value(argc, argv, &i, "--threads", &value, &bad)) {
            if (!bad && (!cli_parse_int("--threads", value, &n) || n < 0 || n > 1024)) bad = true;
            else if (!bad) args->threads = (int)n;
        } else if (cli_flag_value(argc, argv, &i, "--timeout", &value, &bad)) {
            if (!bad && (!cli_parse_double("--timeout", value, &args->timeout) ||
                         !(args->timeout >= 0) || args->timeout > 1e6))
                bad = true;
        } else if (cli_flag_value(argc, argv, &i, "--opt", &value, &bad)) {
            if (bad) break;
            if (strcmp(value, "none") == 0) args->opt_level = EMBER_OPT_NONE;
            else if (strcmp(value, "basic") == 0) args->opt_level = EMBER_OPT_BASIC;
            else if (strcmp(value, "all") == 0) args->opt_level = EMBER_OPT_ALL;
            else {
                cli_error("--opt: '%s' is not none, basic or all", value);
                bad = true;
            }
        } else {
            cli_error("test: unknown option '%s' (see 'ember test --help')", arg);
            bad = true;
        }
    }
    if (!bad && args->path_count == 0) {
        cli_error("test: no PATH given (see 'ember test --help')");
        bad = true;
    }
    return bad ? 2 : -1;
}

/* Regressions against the --expect list, and passing cases the list does not have yet. */
static bool build_expect_summary(const test_args *args, const test_case *cases, size_t count,
                                 name_table *list, const regex_t *filter,
                                 expect_summary *expect) {
    expect->path = args->expect_path;
    expect->regressions = calloc(count + 1, sizeof *expect->regressions);
    expect->new_passes = calloc(count + 1, sizeof *expect->new_passes);
    expect->missing = calloc(list->count + 1, sizeof *expect->missing);
    if (!expect->regressions || !expect->new_passes || !expect->missing) return false;
    for (size_t i = 0; i < count; i++) {
        name_entry *entry = table_find(list, cases[i].name);
        bool passed = cases[i].record.status == CASE_PASSED;
        if (entry && !passed) expect->regressions[expect->regression_count++] = &cases[i];
        if (!entry && passed) expect->new_passes[expect->new_pass_count++] = &cases[i];
    }
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].seen) continue;
        if (filter && regexec(filter, list->items[i].name, 0, NULL, 0) != 0) continue;
        expect->missing[expect->missing_count++] = list->items[i].name;
    }
    return true;
}

static void print_expect_summary(const expect_summary *expect) {
    printf("expected passes (%s): %zu regression%s, %zu not found, %zu newly passing\n",
           expect->path, expect->regression_count, expect->regression_count == 1 ? "" : "s",
           expect->missing_count, expect->new_pass_count);
    for (size_t i = 0; i < expect->regression_count; i++)
        printf("  REGRESSION %s (%s)\n", expect->regressions[i]->name,
               case_status_name(expect->regressions[i]->record.status));
    for (size_t i = 0; i < expect->missing_count; i++)
        printf("  REGRESSION %s (not found)\n", expect->missing[i]);
    for (size_t i = 0; i < expect->new_pass_count; i++)
        printf("  NEW PASS   %s (not in the list yet)\n", expect->new_passes[i]->name);
}

int cmd_test(int argc, char **argv) {
    test_args args;
    int code = parse_args(argc, argv, &args);
    if (code >= 0) {
        free(args.paths);
        return code;
    }
    code = 2;
    regex_t filter;
    bool have_filter = false;
    name_table tolerances = {0}, expect_list = {0};
    test_case_list found = {0};
    test_case *selected = NULL;
    size_t selected_count = 0;
    op_row *rows = NULL;
    size_t row_count = 0;
    expect_summary expect = {0};

    if (args.filter) {
        int rc = regcomp(&filter, args.filter, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char message[256];
            regerror(rc, &filter, message, sizeof message);
            cli_error("--filter '%s': %s", args.filter, message);
            goto done;
        }
        have_filter = true;
    }
    if (args.tolerances_path && !table_load(args.tolerances_path, true, &tolerances)) goto done;
    if (args.expect_path && !table_load(args.expect_path, false, &expect_list)) goto done;
    for (int p = 0; p < args.path_count; p++)
        if (!runner_discover(args.paths[p], &found)) goto done;

    selected = calloc(found.count + 1, sizeof *selected);
    if (!selected) {
        cli_error("out of memory");
        goto done;
    }
    for (size_t i = 0; i < found.count; i++) {
        name_entry *override = table_find(&tolerances, found.items[i].name);
        if (override) override->seen = true;
    }
    for (size_t i = 0; i < tolerances.count; i++) {
        /* A stale override is a reviewed exception that no longer applies to anything. */
        if (!tolerances.items[i].seen)
            fprintf(stderr, "ember: warning: %s:%d: no case named '%s'\n", args.tolerances_path,
                    tolerances.items[i].line, tolerances.items[i].name);
    }
    for (size_t i = 0; i < found.count; i++) {
        test_case *item = &found.items[i];
        if (have_filter && regexec(&filter, item->name, 0, NULL, 0) != 0) continue;
        name_entry *listed = table_find(&expect_list, item->name);
        if (listed) listed->seen = true;
        item->options = (case_options){args.rtol, args.atol, args.threads, args.opt_level};
        name_entry *override = table_find(&tolerances, item->name);
        if (override) {
            item->options.rtol = override->rtol;
            item->options.atol = override->atol;
            item->tolerance_override = true;
        }
        selected[selected_count++] = *item;
    }
    if (selected_count == 0) {
        cli_error("test: no test case %s", found.count ? "matches --filter" : "found");
        goto done;
    }

    report_context report = {args.level};
    runner_options run_options = {
        .jobs = args.jobs,
        .timeout_seconds = args.timeout,
        .isolate = args.isolate,
        .on_done = print_case,
        .context = &report,
    };
    bool runner_ok = runner_run(selected, selected_count, &run_options);

    int totals[4] = {0};
    for (size_t i = 0; i < selected_count; i++) totals[selected[i].record.status]++;
    rows = op_table(selected, selected_count, &row_count);
    print_op_table(rows, row_count);
    if (args.expect_path &&
        !build_expect_summary(&args, selected, selected_count, &expect_list,
                              have_filter ? &filter : NULL, &expect)) {
        cli_error("out of memory");
        goto done;
    }
    if (args.expect_path) print_expect_summary(&expect);
    bool json_ok = !args.json_path ||
                   write_json(args.json_path, selected, selected_count, rows, row_count, totals,
                              args.rtol, args.atol, &expect, &expect_list);
    printf("%d passed, %d failed, %d skipped\n", totals[CASE_PASSED],
           totals[CASE_FAILED] + totals[CASE_ERROR], totals[CASE_UNSUPPORTED]);
    fflush(stdout);

    bool failing = args.expect_path ? expect.regression_count + expect.missing_count > 0
                                    : totals[CASE_FAILED] + totals[CASE_ERROR] > 0;
    code = failing || !runner_ok || !json_ok ? 1 : 0;
done:
    free(expect.regressions);
    free(expect.new_passes);
    free(expect.missing);
    free(rows);
    free(selected);
    runner_free_cases(&found);
    table_free(&tolerances);
    table_free(&expect_list);
    if (have_filter) regfree(&filter);
    free(args.paths);
    return code;
}
