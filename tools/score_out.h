/* ember score: output rows as CSV / TSV, JSON Lines or .npy. */
#ifndef EMBER_TOOLS_SCORE_OUT_H
#define EMBER_TOOLS_SCORE_OUT_H

#include "score.h"

/* One thing written per row: a model output, or a head's labels / probabilities. */
typedef struct score_field {
    char *name;
    ember_dtype dtype; /* as stored in the row data */
    int rank;          /* dims after the batch axis */
    int64_t dims[EMBER_MAX_RANK];
    int64_t per_row; /* elements per row */
} score_field;

typedef struct score_output_plan {
    score_format format; /* CSV, TSV, JSONL or NPY */
    char delimiter;
    int precision;       /* 0: shortest round-trip */
    const char *id_name; /* NULL: no id column / key */
    score_id_kind id_kind;
    const score_field *fields;
    size_t n_fields;
} score_output_plan;

/* The CSV / TSV header line (column names, with "_i" suffixes for fields of several values). */
bool score_out_header(const score_output_plan *plan, score_buf *out);

/* Append n_rows rows. data[f] points at the first row of field f (per_row elements a row).
 * `rows` gives the ids and the null rows (written with empty values). For NPY the single
 * field's bytes are appended (null rows as NaN). */
bool score_out_rows(const score_output_plan *plan, const void *const *data, int64_t n_rows,
                    const score_rows *rows, score_buf *out, score_buf *scratch);

/* Write `text` as a CSV field (quoted when needed) / as a JSON string. */
bool score_out_csv_text(score_buf *out, const char *text, size_t len, char delimiter);
bool score_out_json_string(score_buf *out, const char *text, size_t len);

#endif
