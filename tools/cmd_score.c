/* ember score MODEL --input PATH|- --output PATH|- [options]: batch scoring of files and
 * streams. This file reads the options and sets the run up; score_pipe.c runs it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "heads_cli.h"
#include "score_num.h"
#include "score_pipe.h"

#define MAX_MAPS 64
#define MAX_BATCH (1 << 24)

static void usage(FILE *f) {
    fprintf(f,
        "usage: ember score MODEL --input PATH|- --output PATH|- [options]\n"
        "\n"
        "Scores every row of a CSV / TSV, NPY or JSON Lines input and writes one prediction per\n"
        "row, in input order, as CSV / TSV, JSON Lines or NPY. Memory stays bounded whatever\n"
        "the input size (a few batches in flight).\n"
        "\n"
        "input and output:\n"
        "  --input PATH|-          rows to score ('-': stdin, needs --input-format)\n"
        "  --output PATH|-         where predictions go ('-': stdout)\n"
        "  --input-format F        csv, tsv, npy or jsonl (default: from the file name)\n"
        "  --output-format F       csv, tsv, npy or jsonl (default: from the file name; for\n"
        "                          stdout the input's text format, CSV for npy input)\n"
        "  --delimiter C           CSV field separator (default ',' ; TSV: tab)\n"
        "  --header | --no-header  the first CSV line is / is not column names (default: a\n"
        "                          header when none of its fields is a number)\n"
        "  --no-output-header      do not write the CSV header line\n"
        "\n"
        "rows to inputs:\n"
        "  --columns LIST          CSV columns feeding the model's input, in order: names, or\n"
        "                          1-based numbers and ranges, e.g. 2-31 or age,income,3\n"
        "                          (npy: 1-based elements of a row). Default: every column but\n"
        "                          the id column.\n"
        "  --map INPUT=LIST        for a model with several inputs: the columns of each (JSONL:\n"
        "                          INPUT=KEY when the key is not the input's name)\n"
        "  --id-column COL         a column (JSONL: a key) copied to the output as the row id\n"
        "\n"
        "predictions:\n"
        "  --outputs A,B           outputs to write (default: all)\n"
        "  --head H                turn raw logits into labels: binary[:T], multilabel[:T1,..],\n"
        "                          multiclass or ordinal[:coral|corn[:T]]; writes 'label'\n"
        "  --probabilities         with --head, also write 'probability' columns\n"
        "  --precision N           N significant digits (default: the shortest text that reads\n"
        "                          back as the same float)\n"
        "\n"
        "running:\n"
        "  --batch N               rows per run (default 256)\n"
        "  --threads N             batches scored at once (default: all cores)\n"
        "  --intra-threads N       threads inside one run (default 1)\n"
        "  --opt-level L           graph optimizations: none, basic or all (default all)\n"
        "  --on-error MODE         a bad row: stop (default; exit code 2), skip (leave it out)\n"
        "                          or null (write an empty prediction)\n"
        "  --quiet                 no progress and no summary on stderr\n"
        "\n"
        "Bad rows are reported as FILE:LINE:COLUMN: reason (npy: FILE:ROW:ELEMENT). Exit codes:\n"
        "0 success, 1 failure (model, I/O), 2 bad usage or bad input data.\n");
}

typedef struct options {
    const char *model_path, *input_path, *output_path;
    score_format in_format, out_format;
    char delimiter;
    int header; /* -1 auto, 0 no, 1 yes */
    bool output_header;
    const char *columns, *id_column, *outputs;
    const char *maps[MAX_MAPS];
    int n_maps;
    const char *head;
    bool probabilities;
    long long precision, batch, threads, intra_threads;
    ember_opt_level opt_level;
    score_on_error on_error;
    bool quiet;
} options;

static score_format format_named(const char *text) {
    if (strcmp(text, "csv") == 0) return SCORE_FORMAT_CSV;
    if (strcmp(text, "tsv") == 0) return SCORE_FORMAT_TSV;
    if (strcmp(text, "npy") == 0) return SCORE_FORMAT_NPY;
    if (strcmp(text, "jsonl") == 0 || strcmp(text, "ndjson") == 0) return SCORE_FORMAT_JSONL;
    return SCORE_FORMAT_NONE;
}

static score_format format_of_path(const char *path) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return SCORE_FORMAT_NONE;
    if (strcmp(dot, ".tab") == 0) return SCORE_FORMAT_TSV;
    return format_named(dot + 1);
}

/* Returns 0 when parsed, else the exit code. */
static int parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->header = -1;
    o->output_header = true;
    o->batch = 256;
    o->threads = 0;
    o->intra_threads = 1;
    o->opt_level = EMBER_OPT_ALL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        bool bad = false;
        const char *a = argv[i];
#define FLAG(name) (cli_flag_value(argc, argv, &i, name, &v, &bad))
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        } else if (FLAG("--input") || FLAG("-i")) {
            o->input_path = v;
        } else if (FLAG("--output") || FLAG("-o")) {
            o->output_path = v;
        } else if (FLAG("--input-format") || FLAG("--output-format")) {
            if (bad) return 2;
            score_format f = format_named(v);
            if (f == SCORE_FORMAT_NONE) {
                cli_error("%s: '%s' is not one of csv, tsv, npy, jsonl", a, v);
                return 2;
            }
            if (strncmp(a, "--input-format", 14) == 0)
                o->in_format = f;
            else
                o->out_format = f;
        } else if (FLAG("--delimiter")) {
            if (bad) return 2;
            if (strcmp(v, "\\t") == 0 || strcmp(v, "tab") == 0) v = "\t";
            if (strlen(v) != 1 || v[0] == '"' || v[0] == '\n' || v[0] == '\r') {
                cli_error("--delimiter: expected one character other than a quote or newline");
                return 2;
            }
            o->delimiter = v[0];
        } else if (strcmp(a, "--header") == 0) {
            o->header = 1;
        } else if (strcmp(a, "--no-header") == 0) {
            o->header = 0;
        } else if (strcmp(a, "--no-output-header") == 0) {
            o->output_header = false;
        } else if (FLAG("--columns")) {
            o->columns = v;
        } else if (FLAG("--id-column")) {
            o->id_column = v;
        } else if (FLAG("--map")) {
            if (bad) return 2;
            if (o->n_maps == MAX_MAPS || !strchr(v, '=')) {
                cli_error("--map: expected INPUT=COLUMNS (at most %d)", MAX_MAPS);
                return 2;
            }
            o->maps[o->n_maps++] = v;
        } else if (FLAG("--outputs")) {
            o->outputs = v;
        } else if (FLAG("--head")) {
            o->head = v;
        } else if (strcmp(a, "--probabilities") == 0) {
            o->probabilities = true;
        } else if (FLAG("--precision")) {
            if (bad || !cli_parse_int(a, v, &o->precision)) return 2;
            if (o->precision < 1 || o->precision > 17) {
                cli_error("--precision: expected 1 to 17 significant digits");
                return 2;
            }
        } else if (FLAG("--batch")) {
            if (bad || !cli_parse_int(a, v, &o->batch)) return 2;
            if (o->batch < 1 || o->batch > MAX_BATCH) {
                cli_error("--batch: expected 1 to %d rows", MAX_BATCH);
                return 2;
            }
        } else if (FLAG("--threads")) {
            if (bad || !cli_parse_int(a, v, &o->threads)) return 2;
            if (o->threads < 1 || o->threads > 256) {
                cli_error("--threads: expected 1 to 256");
                return 2;
            }
        } else if (FLAG("--intra-threads")) {
            if (bad || !cli_parse_int(a, v, &o->intra_threads)) return 2;
            if (o->intra_threads < 0 || o->intra_threads > 1024) {
                cli_error("--intra-threads: expected 0 (all cores) to 1024");
                return 2;
            }
        } else if (FLAG("--opt-level")) {
            if (bad) return 2;
            if (strcmp(v, "none") == 0 || strcmp(v, "0") == 0) o->opt_level = EMBER_OPT_NONE;
            else if (strcmp(v, "basic") == 0 || strcmp(v, "1") == 0) o->opt_level = EMBER_OPT_BASIC;
            else if (strcmp(v, "all") == 0 || strcmp(v, "2") == 0) o->opt_level = EMBER_OPT_ALL;
            else {
                cli_error("--opt-level: expected none, basic or all");
                return 2;
            }
        } else if (FLAG("--on-error")) {
            if (bad) return 2;
            if (strcmp(v, "stop") == 0) o->on_error = SCORE_ON_ERROR_STOP;
            else if (strcmp(v, "skip") == 0) o->on_error = SCORE_ON_ERROR_SKIP;
            else if (strcmp(v, "null") == 0) o->on_error = SCORE_ON_ERROR_NULL;
            else {
                cli_error("--on-error: expected stop, skip or null");
                return 2;
            }
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            o->quiet = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            cli_error("score: unknown option '%s' (see 'ember score --help')", a);
            return 2;
        } else if (!o->model_path) {
            o->model_path = a;
        } else {
            cli_error("score: unexpected argument '%s'", a);
            return 2;
        }
        if (bad) return 2;
#undef FLAG
    }
    if (!o->model_path || !o->input_path || !o->output_path) {
        cli_error("score: usage: ember score MODEL --input PATH|- --output PATH|- (see "
                  "'ember score --help')");
        return 2;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Setup state (owned here, freed at the end)
 * ------------------------------------------------------------------------------------------- */

typedef struct setup {
    options opt;
    ember_model *model;
    score_ctx ctx;
    char **column_names; /* CSV header, or NULL */
    size_t n_columns;
    score_column_dest *dest;
    int64_t **input_columns; /* per input: its 0-based CSV columns */
    int64_t id_index; /* CSV: 0-based id column, -1 none */
    char *id_name;
    void *npy_map;
    size_t npy_map_len;
    bool empty_input;
    bool in_opened, out_opened;
} setup;

/* Column list "a,b,3,5-9" against the header names (NULL: numbers only); n_available columns
 * exist. 0-based results. */
static bool resolve_columns(const char *what, const char *spec, char *const *names,
                            size_t n_available, int64_t **out, size_t *count) {
    size_t cap = 16, n = 0;
    int64_t *cols = malloc(cap * sizeof *cols);
    if (!cols) return false;
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[1024];
        if (len == 0 || len >= sizeof item) {
            cli_error("%s: empty or overlong item in '%s'", what, spec);
            free(cols);
            return false;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        int64_t lo = -1, hi = -1;
        for (size_t c = 0; names && c < n_available && lo < 0; c++)
            if (strcmp(names[c], item) == 0) lo = hi = (int64_t)c;
        if (lo < 0) {
            int64_t a, b;
            const char *dash = strchr(item, '-');
            if (score_parse_int(item, len, 1, INT64_MAX, &a)) {
                lo = hi = a - 1;
            } else if (dash && dash > item &&
                       score_parse_int(item, (size_t)(dash - item), 1, INT64_MAX, &a) &&
                       score_parse_int(dash + 1, strlen(dash + 1), 1, INT64_MAX, &b) && a <= b) {
                lo = a - 1;
                hi = b - 1;
            } else {
                cli_error("%s: no column '%s'%s", what, item,
                          names ? "" : " (without a header, name columns by number: 1, 2-5)");
                free(cols);
                return false;
            }
            if (hi >= (int64_t)n_available) {
                cli_error("%s: column %lld is past the last one (%zu)", what, (long long)hi + 1,
                          n_available);
                free(cols);
                return false;
            }
        }
        for (int64_t c = lo; c <= hi; c++) {
            if (n == cap) {
                cap *= 2;
                int64_t *g = realloc(cols, cap * sizeof *g);
                if (!g) {
                    free(cols);
                    return false;
                }
                cols = g;
            }
            cols[n++] = c;
        }
        if (!comma) break;
        p = comma + 1;
    }
    *out = cols;
    *count = n;
    return true;
}

/* Dims after the batch axis for `ncols` values a row; false with a message if they cannot be. */
static bool fit_trailing(const ember_value_info *vi, score_input_spec *in, int64_t ncols,
                         bool need_static, const char *source, const char *hint) {
    if (vi->rank < 0) {
        if (need_static) {
            cli_error("input '%s' declares no shape; JSONL needs the dims after the batch axis",
                      vi->name);
            return false;
        }
        in->rank = 1;
        in->dims[0] = ncols;
        in->row_elems = ncols;
        return true;
    }
    in->rank = vi->rank - 1;
    int64_t known = 1;
    int unknown = -1, n_unknown = 0;
    for (int i = 1; i < vi->rank; i++) {
        if (vi->dims[i] < 0) {
            unknown = i - 1;
            n_unknown++;
        } else {
            known *= vi->dims[i];
        }
        in->dims[i - 1] = vi->dims[i];
    }
    if (n_unknown == 0) {
        in->row_elems = known;
        if (ncols >= 0 && ncols != known) {
            char shape[128];
            int o = 0;
            for (int i = 0; i < in->rank; i++)
                o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%lld", i ? ", " : "",
                              (long long)in->dims[i]);
            cli_error("input '%s' takes %lld values per row ([%s]), %s %lld%s", vi->name,
                      (long long)known, shape, source, (long long)ncols, hint);
            return false;
        }
        return true;
    }
    if (need_static || n_unknown > 1 || ncols < 0 || known == 0 || ncols % known != 0) {
        cli_error("input '%s' has %d unknown dims after the batch axis; ember score cannot "
                  "shape %s rows for it", vi->name, n_unknown,
                  need_static ? "JSONL" : "these");
        return false;
    }
    in->dims[unknown] = ncols / known;
    in->row_elems = ncols;
    return true;
}

static int open_input(setup *s) {
    score_ctx *c = &s->ctx;
    const char *path = s->opt.input_path;
    if (strcmp(path, "-") == 0) {
        c->in_fd = 0;
        c->in_name = "<stdin>";
        if (s->opt.in_format == SCORE_FORMAT_NONE) {
            cli_error("--input -: say the format with --input-format csv|tsv|npy|jsonl");
            return 2;
        }
    } else {
        c->in_fd = open(path, O_RDONLY | O_CLOEXEC);
        c->in_name = path;
        if (c->in_fd < 0) {
            cli_error("%s: %s", path, strerror(errno));
            return 1;
        }
        s->in_opened = true;
        if (s->opt.in_format == SCORE_FORMAT_NONE) s->opt.in_format = format_of_path(path);
        if (s->opt.in_format == SCORE_FORMAT_NONE) {
            cli_error("%s: cannot tell the format from the name; use --input-format", path);
            return 2;
        }
    }
    struct stat st;
    if (fstat(c->in_fd, &st) == 0 && S_ISREG(st.st_mode)) c->in_size = (uint64_t)st.st_size;
    c->in_format = s->opt.in_format;
    return 0;
}

/* Skip a UTF-8 byte order mark at the start of a text input (spreadsheet exports write one). */
static int skip_bom(score_ctx *c) {
    char msg[SCORE_MESSAGE_SIZE + 128];
    while (c->tlen < 3 && !c->teof) {
        int r = score_text_read_more(c, msg, sizeof msg);
        if (r < 0) {
            cli_error("%s", msg);
            return 1;
        }
    }
    if (c->tlen >= 3 && memcmp(c->tbuf, "\xef\xbb\xbf", 3) == 0) c->tstart = 3;
    return 0;
}

/* The first record of a text input (reading as needed); 0: empty input. */
static int first_record(score_ctx *c, const char **rec, size_t *len, size_t *bytes,
                        int64_t *newlines) {
    char msg[SCORE_MESSAGE_SIZE + 128];
    for (;;) {
        int64_t nrec;
        *bytes = score_find_records(c->tbuf + c->tstart, c->tlen - c->tstart,
                                    c->in_format == SCORE_FORMAT_JSONL ? 0 : c->csv.delimiter,
                                    c->teof, 1, &nrec, newlines);
        if (nrec == 1) {
            *rec = c->tbuf + c->tstart;
            *len = score_record_content(*rec, *bytes);
            return 1;
        }
        if (c->teof) return 0;
        int r = score_text_read_more(c, msg, sizeof msg);
        if (r < 0) {
            cli_error("%s", msg);
            return r == -2 ? -2 : -1;
        }
    }
}

static bool field_is_value(const score_field_text *f, char delim) {
    const char *t = f->text;
    size_t n = f->len;
    while (n && (*t == ' ' || (*t == '\t' && delim != '\t'))) t++, n--;
    while (n && (t[n - 1] == ' ' || (t[n - 1] == '\t' && delim != '\t'))) n--;
    double v;
    bool b;
    return n && (score_parse_f64(t, n, &v) || score_parse_bool(t, n, &b));
}

/* CSV / TSV: header, columns and where each goes. */
static int setup_csv(setup *s) {
    score_ctx *c = &s->ctx;
    options *o = &s->opt;
    char delim = o->delimiter ? o->delimiter : c->in_format == SCORE_FORMAT_TSV ? '\t' : ',';
    c->csv.delimiter = delim;
    const char *rec;
    size_t len, bytes;
    int64_t nl;
    int r = first_record(c, &rec, &len, &bytes, &nl);
    if (r < 0) return r == -2 ? 2 : 1;
    if (r == 0) {
        s->empty_input = true;
        return 0;
    }
    score_buf scratch = {0};
    score_field_text *fields = NULL;
    size_t n = 0;
    char msg[256];
    if (!score_csv_split(rec, len, delim, &scratch, &fields, &n, msg, sizeof msg)) {
        cli_error("%s:%lld:%s", c->in_name, (long long)c->tline, msg);
        score_buf_free(&scratch);
        return 2;
    }
    int header = o->header;
    if (header < 0) {
        size_t numbers = 0, words = 0;
        for (size_t i = 0; i < n; i++) {
            if (field_is_value(&fields[i], delim))
                numbers++;
            else if (fields[i].len)
                words++;
        }
        if (numbers && words) {
            cli_error("%s:%lld: the first line has both numbers and names: say --header or "
                      "--no-header", c->in_name, (long long)c->tline);
            free(fields);
            score_buf_free(&scratch);
            return 2;
        }
        header = numbers == 0 && words > 0;
    }
    s->n_columns = n;
    if (header) {
        s->column_names = calloc(n, sizeof *s->column_names);
        for (size_t i = 0; s->column_names && i < n; i++)
            s->column_names[i] = strndup(fields[i].text, fields[i].len);
        c->tstart += bytes;
        c->tline += nl;
    }
    free(fields);
    score_buf_free(&scratch);
    if (header && !s->column_names) {
        cli_error("out of memory");
        return 1;
    }
    for (size_t i = 0; header && i < n; i++)
        if (!s->column_names[i]) {
            cli_error("out of memory");
            return 1;
        }
    /* id column */
    s->id_index = -1;
    if (o->id_column) {
        int64_t *cols;
        size_t nc;
        if (!resolve_columns("--id-column", o->id_column, s->column_names, n, &cols, &nc))
            return 2;
        if (nc != 1) {
            free(cols);
            cli_error("--id-column: name one column");
            return 2;
        }
        s->id_index = cols[0];
        free(cols);
        s->id_name = strdup(s->column_names ? s->column_names[s->id_index] : "id");
    }
    s->dest = calloc(n ? n : 1, sizeof *s->dest);
    if (!s->dest) return 1;
    for (size_t i = 0; i < n; i++) s->dest[i].target = SCORE_DEST_SKIP;
    if (s->id_index >= 0) s->dest[s->id_index].target = SCORE_DEST_ID;
    c->csv.file = c->in_name;
    c->csv.delimiter = delim;
    c->csv.n_columns = n;
    c->csv.dest = s->dest;
    c->csv.column_names = (const char *const *)s->column_names;
    c->csv.id_column = s->id_index;
    return 0;
}

/* Where each model input's values come from. */
static int setup_inputs(setup *s) {
    score_ctx *c = &s->ctx;
    options *o = &s->opt;
    size_t n_in = ember_model_input_count(s->model);
    if (n_in == 0) {
        cli_error("%s: the model has no inputs", o->model_path);
        return 2;
    }
    if (n_in > 64) {
        cli_error("%s: ember score feeds at most 64 inputs", o->model_path);
        return 2;
    }
    c->n_inputs = n_in;
    c->inputs = calloc(n_in, sizeof *c->inputs);
    c->input_names = calloc(n_in, sizeof *c->input_names);
    s->input_columns = calloc(n_in, sizeof *s->input_columns);
    if (!c->inputs || !c->input_names || !s->input_columns)
        return 1;
    const char *map_spec[64] = {0};
    for (int m = 0; m < o->n_maps; m++) {
        const char *eq = strchr(o->maps[m], '=');
        size_t nlen = (size_t)(eq - o->maps[m]);
        size_t k;
        for (k = 0; k < n_in; k++) {
            ember_value_info vi;
            ember_model_input(s->model, k, &vi);
            if (strlen(vi.name) == nlen && strncmp(vi.name, o->maps[m], nlen) == 0) break;
        }
        if (k == n_in) {
            cli_error("--map %s: the model has no input '%.*s'", o->maps[m], (int)nlen,
                      o->maps[m]);
            return 2;
        }
        if (map_spec[k]) {
            cli_error("--map: input '%.*s' is mapped twice", (int)nlen, o->maps[m]);
            return 2;
        }
        map_spec[k] = eq + 1;
    }
    if (o->n_maps && o->columns) {
        cli_error("--columns and --map do not go together: give each input's columns with --map");
        return 2;
    }
    c->static_batch = 0;
    for (size_t k = 0; k < n_in; k++) {
        ember_value_info vi;
        ember_model_input(s->model, k, &vi);
        score_input_spec *in = &c->inputs[k];
        in->name = vi.name;
        in->key = vi.name;
        c->input_names[k] = vi.name;
        if (!score_dtype_parsable(vi.dtype)) {
            cli_error("input '%s' is %s: ember score reads numbers and booleans only", vi.name,
                      ember_dtype_name(vi.dtype));
            return 2;
        }
        in->dtype = vi.dtype;
        in->elem_size = ember_dtype_size(vi.dtype);
        if (vi.rank == 0) {
            cli_error("input '%s' is a scalar; ember score feeds rows along a batch axis",
                      vi.name);
            return 2;
        }
        if (vi.rank > 0 && vi.dims[0] > 0) {
            if (c->static_batch && c->static_batch != vi.dims[0]) {
                cli_error("the model's inputs fix different batch sizes");
                return 2;
            }
            c->static_batch = vi.dims[0];
        }
    }
    if (c->in_format == SCORE_FORMAT_JSONL) {
        if (o->columns) {
            cli_error("--columns is for CSV and npy input; JSONL takes each input from its key "
                      "(--map INPUT=KEY to rename)");
            return 2;
        }
        for (size_t k = 0; k < n_in; k++) {
            ember_value_info vi;
            ember_model_input(s->model, k, &vi);
            if (map_spec[k]) c->inputs[k].key = map_spec[k];
            if (!fit_trailing(&vi, &c->inputs[k], -1, true, "", "")) return 2;
        }
        c->jsonl.file = c->in_name;
        c->jsonl.inputs = c->inputs;
        c->jsonl.n_inputs = n_in;
        c->jsonl.id_key = o->id_column;
        if (o->id_column) s->id_name = strdup(o->id_column);
        return 0;
    }
    if (n_in > 1 && c->in_format == SCORE_FORMAT_NPY) {
        cli_error("an npy input feeds one model input, this model has %zu: use CSV or JSONL",
                  n_in);
        return 2;
    }
    if (n_in > 1) {
        for (size_t k = 0; k < n_in; k++)
            if (!map_spec[k]) {
                cli_error("the model has %zu inputs: give the columns of each with --map "
                          "INPUT=COLUMNS ('%s' has none)", n_in, c->inputs[k].name);
                return 2;
            }
    }
    if (c->in_format == SCORE_FORMAT_NPY) {
        if (o->id_column) {
            cli_error("--id-column: an npy input has no id column");
            return 2;
        }
        return 0; /* shaped in setup_npy */
    }
    if (s->empty_input) {
        for (size_t k = 0; k < n_in; k++) { /* no rows: any shape will do */
            c->inputs[k].rank = 1;
            c->inputs[k].dims[0] = 1;
            c->inputs[k].row_elems = 1;
        }
        return 0;
    }
    /* CSV: columns per input */
    c->csv.inputs = c->inputs;
    c->csv.n_inputs = n_in;
    for (size_t k = 0; k < n_in; k++) {
        const char *spec = n_in > 1 ? map_spec[k] : map_spec[0] ? map_spec[0] : o->columns;
        int64_t *cols = NULL;
        size_t nc = 0;
        if (spec) {
            if (!resolve_columns(map_spec[k] ? "--map" : "--columns", spec, s->column_names,
                                 s->n_columns, &cols, &nc))
                return 2;
        } else {
            cols = malloc((s->n_columns ? s->n_columns : 1) * sizeof *cols);
            if (!cols) return 1;
            for (size_t i = 0; i < s->n_columns; i++)
                if ((int64_t)i != s->id_index) cols[nc++] = (int64_t)i;
        }
        s->input_columns[k] = cols;
        for (size_t j = 0; j < nc; j++) {
            score_column_dest *d = &s->dest[cols[j]];
            if (d->target != SCORE_DEST_SKIP) {
                cli_error("column %lld%s%s%s is used twice", (long long)cols[j] + 1,
                          s->column_names ? " ('" : "",
                          s->column_names ? s->column_names[cols[j]] : "",
                          s->column_names ? "')" : "");
                return 2;
            }
            d->target = (int)k;
            d->offset = (int64_t)j;
        }
        ember_value_info vi;
        ember_model_input(s->model, k, &vi);
        const char *source = spec ? "the column list gives"
                             : s->id_index >= 0 ? "the file has (besides the id column)"
                                                : "the file has";
        if (!fit_trailing(&vi, &c->inputs[k], (int64_t)nc, false, source,
                          spec ? "" : ": pick the feature columns with --columns"))
            return 2;
    }
    return 0;
}

static int setup_npy(setup *s) {
    score_ctx *c = &s->ctx;
    options *o = &s->opt;
    char msg[256];
    score_npy_header *h = &c->npy;
    struct stat st;
    if (fstat(c->in_fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
        s->npy_map_len = (size_t)st.st_size;
        /* private and writable: the runtime gets a plain buffer; pages stay the file's */
        s->npy_map = mmap(NULL, s->npy_map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE, c->in_fd, 0);
        if (s->npy_map == MAP_FAILED) {
            s->npy_map = NULL;
        } else {
            madvise(s->npy_map, s->npy_map_len, MADV_SEQUENTIAL);
            size_t need;
            int r = score_npy_parse_header(s->npy_map, s->npy_map_len, h, &need, msg, sizeof msg);
            if (r <= 0) {
                cli_error("%s: %s", c->in_name, r == 0 ? "truncated npy header" : msg);
                return 2;
            }
            c->npy_map = s->npy_map;
            c->npy_map_len = s->npy_map_len;
        }
    }
    if (!c->npy_map) {
        for (;;) {
            size_t need = 0;
            int r = score_npy_parse_header(c->tbuf + c->tstart, c->tlen - c->tstart, h, &need,
                                           msg, sizeof msg);
            if (r < 0) {
                cli_error("%s: %s", c->in_name, msg);
                return 2;
            }
            if (r == 1) break;
            char rmsg[SCORE_MESSAGE_SIZE + 128];
            int rr = score_text_read_more(c, rmsg, sizeof rmsg);
            if (rr < 0) {
                cli_error("%s", rmsg);
                return 1;
            }
            if (rr == 0) {
                cli_error("%s: %s", c->in_name,
                          c->tlen == c->tstart ? "empty input" : "truncated npy header");
                return 2;
            }
        }
        c->tstart += h->data_offset;
    }
    if (h->dtype == EMBER_UNDEFINED) {
        cli_error("%s: npy dtype '%s' is not supported", c->in_name, h->descr);
        return 2;
    }
    if (h->fortran_order && h->rank > 1) {
        cli_error("%s: a Fortran-order npy array cannot be read row by row; save it in C "
                  "order (numpy.ascontiguousarray)", c->in_name);
        return 2;
    }
    if (h->rank < 1) {
        cli_error("%s: a 0-d npy array has no rows", c->in_name);
        return 2;
    }
    int64_t row_elems = 1;
    for (int i = 1; i < h->rank; i++) {
        if (h->dims[i] != 0 && row_elems > INT64_MAX / h->dims[i]) {
            cli_error("%s: npy shape is too large", c->in_name);
            return 2;
        }
        row_elems *= h->dims[i];
    }
    c->npy_total_rows = h->dims[0];
    c->npy_row_bytes = (size_t)row_elems * h->elem_size;
    if (c->npy_row_bytes == 0 && c->npy_total_rows > 0) {
        cli_error("%s: npy rows hold no values", c->in_name);
        return 2;
    }
    if (c->npy_map) {
        uint64_t need = h->data_offset + (uint64_t)c->npy_total_rows * c->npy_row_bytes;
        if (c->npy_row_bytes && ((uint64_t)c->npy_total_rows > UINT64_MAX / c->npy_row_bytes ||
                                 need > c->npy_map_len)) {
            cli_error("%s: the file holds %llu bytes of data, the header says %lld rows of %zu",
                      c->in_name, (unsigned long long)(c->npy_map_len - h->data_offset),
                      (long long)c->npy_total_rows, c->npy_row_bytes);
            return 2;
        }
    }
    score_input_spec *in = &c->inputs[0];
    ember_value_info vi;
    ember_model_input(s->model, 0, &vi);
    int64_t ncols = row_elems;
    if (o->columns) {
        if (!resolve_columns("--columns", o->columns, NULL, (size_t)row_elems, &c->npy_columns,
                             &c->n_npy_columns))
            return 2;
        ncols = (int64_t)c->n_npy_columns;
    }
    if (o->n_maps) {
        cli_error("--map: an npy input feeds the model's one input; use --columns");
        return 2;
    }
    if (!score_npy_convertible(h->dtype, in->dtype)) {
        cli_error("%s: npy %s cannot feed input '%s' (%s)", c->in_name,
                  ember_dtype_name(h->dtype), in->name, ember_dtype_name(in->dtype));
        return 2;
    }
    if (!fit_trailing(&vi, in, ncols, false, o->columns ? "--columns gives" : "the npy rows hold",
                      o->columns ? "" : ": pick elements with --columns"))
        return 2;
    const unsigned char *first = c->npy_map ? c->npy_map + h->data_offset : NULL;
    c->npy_zero_copy = !c->npy_columns && h->dtype == in->dtype && !h->swap &&
                       (!first || (uintptr_t)first % h->elem_size == 0);
    return 0;
}

/* Which outputs, and the layout when their shapes are static. */
static int setup_outputs(setup *s) {
    score_ctx *c = &s->ctx;
    options *o = &s->opt;
    size_t n_out = ember_model_output_count(s->model);
    if (n_out > 64) {
        cli_error("%s: ember score writes at most 64 outputs", o->model_path);
        return 2;
    }
    c->output_names = calloc(n_out + 2, sizeof *c->output_names); /* + a head's two */
    if (!c->output_names) return 1;
    if (o->outputs) {
        const char *p = o->outputs;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            size_t k;
            ember_value_info vi;
            for (k = 0; k < n_out; k++) {
                ember_model_output(s->model, k, &vi);
                if (strlen(vi.name) == len && strncmp(vi.name, p, len) == 0) break;
            }
            if (k == n_out) {
                cli_error("--outputs: the model has no output '%.*s'", (int)len, p);
                return 2;
            }
            if (c->n_outputs == n_out) {
                cli_error("--outputs: an output is named twice");
                return 2;
            }
            c->output_names[c->n_outputs++] = vi.name;
            if (!comma) break;
            p = comma + 1;
        }
    } else {
        for (size_t k = 0; k < n_out; k++) {
            ember_value_info vi;
            ember_model_output(s->model, k, &vi);
            c->output_names[c->n_outputs++] = vi.name;
        }
    }
    if (c->n_outputs == 0) {
        cli_error("%s: the model has no outputs", o->model_path);
        return 2;
    }
    if (o->head) {
        char msg[512];
        if (!cli_head_setup(&c->head, o->head, c->output_names[0], o->probabilities, true, msg,
                            sizeof msg)) {
            cli_error("%s", msg);
            return 2;
        }
        if (c->n_outputs != 1) {
            cli_error("--head applies to one output and this run has %zu: choose it with "
                      "--outputs", c->n_outputs);
            return 2;
        }
    } else if (o->probabilities) {
        cli_error("--probabilities goes with --head");
        return 2;
    }
    c->probabilities = o->probabilities;
    /* The session applies the head: its outputs replace the logits. A head that does not fit
     * the logits shows up here when their shape is static. */
    ember_session_options so;
    ember_session_options_init(&so);
    so.threads = (int)o->intra_threads;
    so.opt_level = o->opt_level;
    if (c->head.active) {
        so.heads = &c->head.head;
        so.n_heads = 1;
    }
    ember_error err;
    if (ember_session_create(s->model, &so, &c->session, &err) != EMBER_OK) {
        /* the API's head messages start with "head ": say it as the option */
        cli_error("%s%s", strncmp(err.message, "head ", 5) == 0 ? "--" : "", err.message);
        return c->head.active &&
                       (err.code == EMBER_ERR_SHAPE || err.code == EMBER_ERR_INVALID_ARGUMENT)
                   ? 2
                   : 1;
    }
    if (c->head.active) {
        c->output_names[0] = c->head.decision;
        if (c->probabilities) c->output_names[c->n_outputs++] = c->head.probabilities;
    }
    /* static layout: head and npy problems show up before any row is read */
    size_t n_session = ember_session_output_count(c->session);
    ember_value_info info[64];
    int64_t per_row[64];
    bool all_static = true;
    for (size_t k = 0; k < c->n_outputs && all_static; k++) {
        for (size_t j = 0; j < n_session; j++) {
            ember_session_output(c->session, j, &info[k]);
            if (strcmp(info[k].name, c->output_names[k]) == 0) break;
        }
        if (info[k].rank < 1) {
            all_static = false;
            break;
        }
        per_row[k] = 1;
        for (int i = 1; i < info[k].rank; i++) {
            if (info[k].dims[i] < 0) all_static = false;
            per_row[k] *= info[k].dims[i] < 0 ? 1 : info[k].dims[i];
        }
        if (info[k].dtype == EMBER_UNDEFINED) all_static = false;
    }
    if (all_static) {
        char msg[SCORE_MESSAGE_SIZE];
        if (!score_build_layout(c, info, per_row, msg, sizeof msg)) {
            cli_error("%s", msg);
            return 2;
        }
    }
    return 0;
}

static int output_format(setup *s) {
    score_ctx *c = &s->ctx;
    options *o = &s->opt;
    const char *path = o->output_path;
    if (o->out_format == SCORE_FORMAT_NONE && strcmp(path, "-") != 0)
        o->out_format = format_of_path(path);
    if (o->out_format == SCORE_FORMAT_NONE) {
        if (strcmp(path, "-") != 0) {
            cli_error("%s: cannot tell the format from the name; use --output-format", path);
            return 2;
        }
        o->out_format = c->in_format == SCORE_FORMAT_NPY ? SCORE_FORMAT_CSV : c->in_format;
    }
    c->out_format = o->out_format;
    return 0;
}

static int open_output(setup *s) {
    score_ctx *c = &s->ctx;
    options *o = &s->opt;
    const char *path = o->output_path;
    if (strcmp(path, "-") == 0) {
        c->out_fd = 1;
        c->out_name = "<stdout>";
        c->out_is_stdout = true;
        if (c->out_format == SCORE_FORMAT_NPY && isatty(1)) {
            cli_error("--output -: not writing npy to a terminal");
            return 2;
        }
    } else {
        struct stat in_st, out_st;
        if (fstat(c->in_fd, &in_st) == 0 && stat(path, &out_st) == 0 &&
            in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino) {
            cli_error("%s: the output is the input file", path);
            return 2;
        }
        c->out_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        c->out_name = path;
        if (c->out_fd < 0) {
            cli_error("%s: %s", path, strerror(errno));
            return 1;
        }
        s->out_opened = true;
    }
    struct stat st;
    int fl = fcntl(c->out_fd, F_GETFL);
    c->out_seekable = fstat(c->out_fd, &st) == 0 && S_ISREG(st.st_mode) && fl >= 0 &&
                      !(fl & O_APPEND);
    c->out_known_rows = -1;
    if (c->out_format == SCORE_FORMAT_NPY) {
        if (c->in_format == SCORE_FORMAT_NPY && c->on_error != SCORE_ON_ERROR_SKIP)
            c->out_known_rows = c->npy_total_rows;
        else if (!c->out_seekable) {
            cli_error("%s: an npy output that is not a regular file needs the row count up "
                      "front (npy input without --on-error skip)", c->out_name);
            return 2;
        }
    }
    c->out_plan.format = c->out_format;
    c->out_plan.delimiter = c->out_format == SCORE_FORMAT_TSV ? '\t' : ',';
    if (c->out_format == SCORE_FORMAT_CSV && o->delimiter && o->delimiter != '\t' &&
        c->in_format == SCORE_FORMAT_CSV)
        c->out_plan.delimiter = o->delimiter;
    c->out_plan.precision = (int)o->precision;
    c->out_plan.id_name = s->id_name;
    c->out_plan.id_kind = c->in_format == SCORE_FORMAT_JSONL ? SCORE_ID_JSON : SCORE_ID_TEXT;
    if (s->id_name && c->out_format == SCORE_FORMAT_NPY) {
        cli_error("--id-column: an npy output has no place for ids");
        return 2;
    }
    return 0;
}

static bool alloc_slots(setup *s) {
    score_ctx *c = &s->ctx;
    c->n_slots = (size_t)c->workers * 2 + 2;
    c->slots = calloc(c->n_slots, sizeof *c->slots);
    if (!c->slots) return false;
    int64_t max_rows = c->batch_rows;
    for (size_t i = 0; i < c->n_slots; i++) {
        score_batch *b = &c->slots[i];
        score_rows *r = &b->rows;
        r->n_inputs = c->n_inputs;
        r->max_rows = max_rows;
        r->has_ids = s->id_name != NULL;
        r->data = calloc(c->n_inputs, sizeof *r->data);
        r->null_rows = calloc((size_t)max_rows, 1);
        if (!r->data || !r->null_rows) return false;
        for (size_t k = 0; k < c->n_inputs; k++) {
            size_t bytes = (size_t)max_rows * (size_t)c->inputs[k].row_elems *
                           c->inputs[k].elem_size;
            bytes = (bytes + 63) / 64 * 64;
            r->data[k] = aligned_alloc(64, bytes ? bytes : 64);
            if (!r->data[k]) return false;
        }
    }
    return true;
}

static void free_setup(setup *s) {
    score_ctx *c = &s->ctx;
    for (size_t i = 0; c->slots && i < c->n_slots; i++) {
        score_batch *b = &c->slots[i];
        for (size_t k = 0; b->rows.data && k < c->n_inputs; k++) free(b->rows.data[k]);
        free(b->rows.data);
        free(b->rows.null_rows);
        score_buf_free(&b->rows.id_text);
        score_buf_free(&b->rows.id_ends);
        score_buf_free(&b->raw);
        score_buf_free(&b->out);
        score_buf_free(&b->scratch);
        score_buf_free(&b->scratch2);
    }
    free(c->slots);
    for (size_t f = 0; f < c->n_fields; f++) free(c->fields[f].name);
    free(c->fields);
    free(c->out_per_row);
    cli_head_free(&c->head);
    free(c->inputs);
    free(c->input_names);
    free(c->output_names);
    free(c->npy_columns);
    free(c->tbuf);
    for (size_t i = 0; s->column_names && i < s->n_columns; i++) free(s->column_names[i]);
    free(s->column_names);
    free(s->dest);
    for (size_t k = 0; s->input_columns && k < c->n_inputs; k++) free(s->input_columns[k]);
    free(s->input_columns);
    free(s->id_name);
    if (s->npy_map) munmap(s->npy_map, s->npy_map_len);
    if (s->in_opened) close(c->in_fd);
    if (s->out_opened && close(c->out_fd) != 0)
        cli_error("%s: %s", c->out_name, strerror(errno));
    ember_session_free(c->session);
    ember_model_free(s->model);
    pthread_mutex_destroy(&c->lock);
    pthread_mutex_destroy(&c->layout_lock);
    pthread_cond_destroy(&c->cond);
}

int cmd_score(int argc, char **argv) {
    setup *s = calloc(1, sizeof *s);
    if (!s) {
        cli_error("out of memory");
        return 1;
    }
    score_ctx *c = &s->ctx;
    pthread_mutex_init(&c->lock, NULL);
    pthread_mutex_init(&c->layout_lock, NULL);
    pthread_cond_init(&c->cond, NULL);
    c->in_fd = -1;
    c->out_fd = -1;
    int rc = parse_options(argc, argv, &s->opt);
    if (rc != 0) {
        free_setup(s);
        free(s);
        return rc < 0 ? 0 : rc;
    }
    options *o = &s->opt;
    /* a closed output pipe shows up as EPIPE from write(), handled where it happens */
    signal(SIGPIPE, SIG_IGN);

    ember_error err;
    if ((rc = open_input(s)) != 0) goto done;
    c->on_error = o->on_error;
    if (ember_model_load_file(o->model_path, NULL, &s->model, &err) != EMBER_OK) {
        cli_error("%s", err.message);
        rc = err.code == EMBER_ERR_IO ? 1 : 2;
        goto done;
    }
    c->tline = 1;
    if (c->in_format != SCORE_FORMAT_NPY && (rc = skip_bom(c)) != 0) goto done;
    if (c->in_format == SCORE_FORMAT_CSV || c->in_format == SCORE_FORMAT_TSV) {
        if ((rc = setup_csv(s)) != 0) goto done;
    }
    if (o->header >= 0 && c->in_format != SCORE_FORMAT_CSV && c->in_format != SCORE_FORMAT_TSV) {
        cli_error("--header / --no-header are for CSV and TSV input");
        rc = 2;
        goto done;
    }
    if ((rc = setup_inputs(s)) != 0) goto done;
    if (c->in_format == SCORE_FORMAT_NPY && (rc = setup_npy(s)) != 0) goto done;
    if ((rc = output_format(s)) != 0) goto done;
    if ((rc = setup_outputs(s)) != 0) goto done;
    if ((rc = open_output(s)) != 0) goto done;

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    c->workers = o->threads > 0 ? (int)o->threads : cores > 0 ? (int)(cores < 64 ? cores : 64) : 1;
    c->batch_rows = o->batch;
    if (c->static_batch > 0) {
        if (!o->quiet && c->static_batch != o->batch)
            fprintf(stderr, "ember: the model fixes the batch size at %lld: scoring %lld rows a "
                    "run\n", (long long)c->static_batch, (long long)c->static_batch);
        c->batch_rows = c->static_batch;
    }
    c->quiet = o->quiet;
    c->progress = !o->quiet && isatty(2);
    c->output_header = o->output_header;
    if (!alloc_slots(s)) {
        cli_error("out of memory");
        rc = 1;
        goto done;
    }
    rc = score_pipe_run(c);
done:
    free_setup(s);
    free(s);
    return rc;
}
