/* ember score: CSV / TSV records (RFC 4180 quoting) and rows. */
#ifndef EMBER_TOOLS_SCORE_CSV_H
#define EMBER_TOOLS_SCORE_CSV_H

#include "score.h"

/* Find up to `max_records` complete records at the start of [data, data + len). A record ends
 * with '\n' (a "\r\n" ending is handled by the row parser). With a `quote_delim` (the CSV
 * field delimiter; 0 for JSONL), a '\n' inside a double-quoted field belongs to the record.
 * With `at_eof`, trailing bytes without a newline make a last record. Returns the bytes the
 * records cover; *records and *newlines count them and their '\n' bytes (physical lines). */
size_t score_find_records(const char *data, size_t len, char quote_delim, bool at_eof,
                          int64_t max_records, int64_t *records, int64_t *newlines);

/* Content length of a record without its line ending ("\n" or "\r\n"). */
static inline size_t score_record_content(const char *rec, size_t len) {
    if (len && rec[len - 1] == '\n') len--;
    if (len && rec[len - 1] == '\r') len--;
    return len;
}

/* Split a record (without line ending) into fields, unquoting into `scratch` (which the
 * returned pointers may point into: do not append to it while using them). Returns false with
 * a message ("COLUMN: reason", column 1-based in bytes from the record start) on bad quoting.
 * starts[i] is the byte offset of field i in the record. */
typedef struct score_field_text {
    const char *text;
    size_t len;
    size_t start; /* byte offset in the record */
} score_field_text;
bool score_csv_split(const char *rec, size_t len, char delimiter, score_buf *scratch,
                     score_field_text **fields, size_t *count, char *msg, size_t msg_size);

typedef struct score_csv_plan {
    const char *file; /* name used in messages */
    char delimiter;
    size_t n_columns;                  /* fields every row must have */
    const score_column_dest *dest;     /* per column */
    const char *const *column_names;   /* per column, or NULL without a header */
    const score_input_spec *inputs;
    size_t n_inputs;
    int64_t id_column; /* -1: none */
} score_csv_plan;

/* Parse one record (without line ending) starting on physical line `line` into row
 * rows->n_rows (which the caller then counts). On failure writes "FILE:LINE:COLUMN: reason"
 * into msg (SCORE_MESSAGE_SIZE bytes); the row's contents are then unspecified. `scratch` is
 * working memory reused between calls. */
bool score_csv_parse_row(const score_csv_plan *plan, const char *rec, size_t len, int64_t line,
                         score_rows *rows, score_buf *scratch, char *msg);

/* The id field of a record that failed to parse (for --on-error null); false if the record
 * has no such field. The text may point into scratch. */
bool score_csv_row_id(const score_csv_plan *plan, const char *rec, size_t len,
                      score_buf *scratch, const char **id, size_t *id_len);

#endif
