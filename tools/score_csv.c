/* ember score: CSV / TSV parsing.
 *
 * The hot loop parses float32 fields in one pass straight from the record (digits scanned by
 * hand, see score_num.c); anything unusual (quotes, spaces, nan, other types, bad text) takes
 * the general path for that field only. */
#include "score_csv.h"

#include <stdarg.h>
#include <stdio.h>

#include "score_num.h"

/* End of a record that holds a quote, scanning field by field: a quote opens a quoted field
 * only at the start of a field (spaces aside), "" inside it is a quote, and a newline inside
 * it belongs to the field. Returns the '\n' ending the record, or NULL if none before `end`
 * (*inner counts the newlines inside quotes). */
static const char *quoted_record_end(const char *p, const char *end, char delim, bool at_eof,
                                     int64_t *inner) {
    bool field_start = true, in_quotes = false;
    *inner = 0;
    for (const char *q = p; q < end; q++) {
        char c = *q;
        if (in_quotes) {
            if (c == '"') {
                if (q + 1 == end && !at_eof) return NULL; /* "" or a close: wait and see */
                if (q + 1 < end && q[1] == '"')
                    q++;
                else
                    in_quotes = false;
            } else if (c == '\n') {
                (*inner)++;
            }
            continue;
        }
        if (c == '\n') return q;
        if (c == delim) {
            field_start = true;
        } else if (c == '"' && field_start) {
            in_quotes = true;
            field_start = false;
        } else if (!(field_start && (c == ' ' || c == '\t'))) {
            field_start = false;
        }
    }
    return NULL;
}

size_t score_find_records(const char *data, size_t len, char quote_delim, bool at_eof,
                          int64_t max_records, int64_t *records, int64_t *newlines) {
    const char *p = data, *end = data + len;
    int64_t n = 0, nl = 0;
    while (n < max_records && p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        const char *rec_end = e ? e : end;
        if (quote_delim && memchr(p, '"', (size_t)(rec_end - p))) {
            int64_t inner = 0;
            e = quoted_record_end(p, end, quote_delim, at_eof, &inner);
            if (!e) {
                if (!at_eof) break;
                /* an unterminated quote: the rest is one record (the row parser says so) */
                for (const char *q = p; q < end; q++) nl += *q == '\n';
                p = end;
                n++;
                break;
            }
            nl += inner;
        }
        if (!e) {
            if (!at_eof) break;
            p = end;
            n++;
            break;
        }
        nl++;
        n++;
        p = e + 1;
    }
    *records = n;
    *newlines = nl;
    return (size_t)(p - data);
}

/* One field starting at p (record ends at `end`). Sets the unquoted content and returns the
 * position after the field (a delimiter or end); NULL on bad quoting, with *bad_at the
 * offending position and *reason set. Escaped quotes ("") are undone into scratch, appended
 * at scratch->len: the caller reserves room for the whole record first, so scratch never
 * moves while a record is parsed. */
static const char *take_field(const char *p, const char *end, char delim, score_buf *scratch,
                              const char **text, size_t *len, const char **bad_at,
                              const char **reason) {
    if (p < end && *p == '"') {
        const char *q = p + 1;
        const char *close = NULL;
        bool escaped = false;
        while (q < end) {
            const char *hit = memchr(q, '"', (size_t)(end - q));
            if (!hit) break;
            if (hit + 1 < end && hit[1] == '"') {
                escaped = true;
                q = hit + 2;
                continue;
            }
            close = hit;
            break;
        }
        if (!close) {
            *bad_at = p;
            *reason = "unterminated quoted field";
            return NULL;
        }
        const char *after = close + 1;
        while (after < end && (*after == ' ' || *after == '\t') && *after != delim) after++;
        if (after < end && *after != delim) {
            *bad_at = after;
            *reason = "unexpected text after a closing quote";
            return NULL;
        }
        if (!escaped) {
            *text = p + 1;
            *len = (size_t)(close - p - 1);
        } else {
            char *start = scratch->data + scratch->len, *o = start;
            for (const char *c = p + 1; c < close; c++) {
                *o++ = *c;
                if (*c == '"') c++; /* "" -> " */
            }
            *text = start;
            *len = (size_t)(o - start);
            scratch->len += *len;
        }
        return after;
    }
    const char *e = memchr(p, delim, (size_t)(end - p));
    if (!e) e = end;
    *text = p;
    *len = (size_t)(e - p);
    return e;
}

bool score_csv_split(const char *rec, size_t len, char delimiter, score_buf *scratch,
                     score_field_text **fields, size_t *count, char *msg, size_t msg_size) {
    const char *p = rec, *end = rec + len;
    score_field_text *out = NULL;
    size_t n = 0, cap = 0;
    scratch->len = 0;
    if (!score_buf_reserve(scratch, len + 1)) {
        snprintf(msg, msg_size, "1: out of memory");
        return false;
    }
    for (;;) {
        const char *text = end, *bad_at = p, *reason = "";
        size_t flen = 0;
        const char *next = p;
        bool last_empty = p == end && n > 0; /* after a trailing delimiter */
        if (!last_empty) {
            next = take_field(p, end, delimiter, scratch, &text, &flen, &bad_at, &reason);
            if (!next) {
                snprintf(msg, msg_size, "%zu: %s", (size_t)(bad_at - rec) + 1, reason);
                free(out);
                return false;
            }
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            score_field_text *g = realloc(out, cap * sizeof *out);
            if (!g) {
                snprintf(msg, msg_size, "1: out of memory");
                free(out);
                return false;
            }
            out = g;
        }
        out[n].text = text;
        out[n].len = flen;
        out[n].start = (size_t)(p - rec);
        n++;
        if (last_empty || next >= end) break;
        p = next + 1; /* delimiter */
    }
    *fields = out;
    *count = n;
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Rows
 * ------------------------------------------------------------------------------------------- */

/* Printable excerpt of a value for messages. */
static void excerpt(const char *text, size_t len, char *out, size_t size) {
    size_t max = 40, o = 0;
    for (size_t i = 0; i < len && i < max && o + 1 < size; i++) {
        unsigned char c = (unsigned char)text[i];
        out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (len > max && o + 4 < size) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

static void field_name(const score_csv_plan *plan, size_t col, char *out, size_t size) {
    if (plan->column_names && plan->column_names[col] && plan->column_names[col][0])
        snprintf(out, size, "field %zu ('%s')", col + 1, plan->column_names[col]);
    else
        snprintf(out, size, "field %zu", col + 1);
}

static void fail_at(const score_csv_plan *plan, const char *rec, size_t offset, int64_t line,
                    char *msg, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void fail_at(const score_csv_plan *plan, const char *rec, size_t offset, int64_t line,
                    char *msg, const char *fmt, ...) {
    size_t line_start = 0;
    for (size_t i = 0; i < offset; i++)
        if (rec[i] == '\n') {
            line++;
            line_start = i + 1;
        }
    int n = snprintf(msg, SCORE_MESSAGE_SIZE, "%s:%lld:%zu: ", plan->file, (long long)line,
                     offset - line_start + 1);
    if (n < 0 || n >= SCORE_MESSAGE_SIZE) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, SCORE_MESSAGE_SIZE - (size_t)n, fmt, ap);
    va_end(ap);
}

static const char *dtype_word(ember_dtype t) {
    switch (t) {
    case EMBER_FLOAT: case EMBER_DOUBLE: return "a number";
    case EMBER_BOOL: return "a boolean (0, 1, true, false)";
    default: return "an integer";
    }
}

/* Why `text` does not parse as `dtype`. */
static void value_reason(ember_dtype dtype, const char *text, size_t len, char *out,
                         size_t size) {
    char shown[64];
    excerpt(text, len, shown, sizeof shown);
    if (len == 0) {
        snprintf(out, size, "empty value");
        return;
    }
    int64_t i;
    uint64_t u;
    bool integer = score_parse_int(text, len, INT64_MIN, INT64_MAX, &i) ||
                   score_parse_u64(text, len, &u);
    if (integer && dtype != EMBER_FLOAT && dtype != EMBER_DOUBLE && dtype != EMBER_BOOL)
        snprintf(out, size, "'%s' is out of range for %s", shown, ember_dtype_name(dtype));
    else
        snprintf(out, size, "'%s' is not %s", shown, dtype_word(dtype));
}

static inline bool is_space(char c, char delim) { return (c == ' ' || c == '\t') && c != delim; }

/* General path for one value field: unquote, trim, parse. */
static bool parse_field_slow(const score_csv_plan *plan, const char *rec, const char *p,
                             const char *end, size_t col, int64_t line, void *dst,
                             ember_dtype dtype, score_buf *scratch, const char **after,
                             char *msg) {
    char delim = plan->delimiter;
    const char *q = p;
    while (q < end && is_space(*q, delim)) q++; /* spaces before an opening quote */
    if (q == end || *q != '"') q = p;
    const char *text, *bad_at, *reason;
    size_t len;
    const char *next = take_field(q, end, delim, scratch, &text, &len, &bad_at, &reason);
    char name[300];
    field_name(plan, col, name, sizeof name);
    if (!next) {
        fail_at(plan, rec, (size_t)(bad_at - rec), line, msg, "%s: %s", name, reason);
        return false;
    }
    while (len && is_space(*text, delim)) text++, len--;
    while (len && is_space(text[len - 1], delim)) len--;
    if (!score_parse_value(dtype, text, len, dst)) {
        char why[200];
        value_reason(dtype, text, len, why, sizeof why);
        fail_at(plan, rec, (size_t)(p - rec), line, msg, "%s: %s", name, why);
        return false;
    }
    *after = next;
    return true;
}

/* Count the fields of a record (for the "found N" of a field-count error). */
static size_t count_fields(const char *p, const char *end, char delim, score_buf *scratch) {
    size_t n = 1;
    for (;;) {
        const char *text, *bad_at, *reason;
        size_t len;
        const char *next = take_field(p, end, delim, scratch, &text, &len, &bad_at, &reason);
        if (!next) { /* bad quoting: count the rest plainly */
            for (const char *c = p; c < end; c++) n += *c == delim;
            return n;
        }
        if (next >= end) return n;
        p = next + 1;
        n++;
    }
}

bool score_csv_parse_row(const score_csv_plan *plan, const char *rec, size_t len, int64_t line,
                         score_rows *rows, score_buf *scratch, char *msg) {
    const char delim = plan->delimiter;
    const char *p = rec, *end = rec + len;
    const size_t ncols = plan->n_columns;
    const int64_t row = rows->n_rows;
    const score_input_spec *inputs = plan->inputs;
    const char *id_text = "";
    size_t id_len = 0;
    scratch->len = 0;
    if (!score_buf_reserve(scratch, len + 1)) {
        fail_at(plan, rec, 0, line, msg, "out of memory");
        return false;
    }
    size_t col = 0;
    for (;;) {
        if (col == ncols) {
            size_t found = ncols + count_fields(p, end, delim, scratch);
            fail_at(plan, rec, (size_t)(p - rec), line, msg, "expected %zu fields, found %zu",
                    ncols, found);
            return false;
        }
        const score_column_dest d = plan->dest[col];
        if (d.target >= 0) {
            const score_input_spec *in = &inputs[d.target];
            char *dst = (char *)rows->data[d.target] +
                        ((size_t)row * (size_t)in->row_elems + (size_t)d.offset) * in->elem_size;
            const char *after = NULL;
            if (in->dtype == EMBER_FLOAT) {
                after = score_parse_f32_prefix(p, end, (float *)(void *)dst);
                if (after && after < end && *after != delim) after = NULL;
            }
            if (!after && !parse_field_slow(plan, rec, p, end, col, line, dst, in->dtype,
                                            scratch, &after, msg))
                return false;
            p = after;
        } else {
            const char *next;
            if (d.target == SCORE_DEST_SKIP && (p == end || *p != '"')) {
                next = memchr(p, delim, (size_t)(end - p));
                if (!next) next = end;
            } else {
                const char *text, *bad_at, *reason;
                size_t flen;
                next = take_field(p, end, delim, scratch, &text, &flen, &bad_at, &reason);
                if (!next) {
                    char name[300];
                    field_name(plan, col, name, sizeof name);
                    fail_at(plan, rec, (size_t)(bad_at - rec), line, msg, "%s: %s", name,
                            reason);
                    return false;
                }
                if (d.target == SCORE_DEST_ID) {
                    id_text = text;
                    id_len = flen;
                }
            }
            p = next;
        }
        col++;
        if (p >= end) break;
        p++; /* delimiter */
        if (p == end) {
            /* a trailing delimiter: one more field, empty */
            if (col == ncols) {
                fail_at(plan, rec, len, line, msg, "expected %zu fields, found %zu", ncols,
                        ncols + 1);
                return false;
            }
            const score_column_dest last = plan->dest[col];
            if (last.target >= 0) {
                char name[300];
                field_name(plan, col, name, sizeof name);
                fail_at(plan, rec, len, line, msg, "%s: empty value", name);
                return false;
            }
            if (last.target == SCORE_DEST_ID) {
                id_text = "";
                id_len = 0;
            }
            col++;
            break;
        }
    }
    if (col < ncols) {
        fail_at(plan, rec, len, line, msg, "expected %zu fields, found %zu", ncols, col);
        return false;
    }
    if (plan->id_column >= 0 && !score_rows_push_id(rows, id_text, id_len)) {
        fail_at(plan, rec, 0, line, msg, "out of memory");
        return false;
    }
    return true;
}

bool score_csv_row_id(const score_csv_plan *plan, const char *rec, size_t len,
                      score_buf *scratch, const char **id, size_t *id_len) {
    if (plan->id_column < 0) return false;
    const char *p = rec, *end = rec + len;
    scratch->len = 0;
    if (!score_buf_reserve(scratch, len + 1)) return false;
    for (int64_t col = 0;; col++) {
        const char *text, *bad_at, *reason;
        size_t flen;
        const char *next = take_field(p, end, plan->delimiter, scratch, &text, &flen, &bad_at,
                                      &reason);
        if (!next) return false;
        if (col == plan->id_column) {
            *id = text;
            *id_len = flen;
            return true;
        }
        if (next >= end) return false;
        p = next + 1;
    }
}

void score_rows_clear_row(score_rows *rows, const score_input_spec *inputs, int64_t row) {
    for (size_t k = 0; k < rows->n_inputs; k++) {
        size_t bytes = (size_t)inputs[k].row_elems * inputs[k].elem_size;
        memset((char *)rows->data[k] + (size_t)row * bytes, 0, bytes);
    }
}

bool score_rows_push_id(score_rows *rows, const char *text, size_t len) {
    if (!score_buf_append(&rows->id_text, text, len)) return false;
    size_t end = rows->id_text.len;
    return score_buf_append(&rows->id_ends, &end, sizeof end);
}
