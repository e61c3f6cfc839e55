/* ember score: JSON Lines rows. Each line is one object; the value of each input's key is a
 * number or nested arrays of numbers shaped like the input's dims after the batch axis (a flat
 * array of the same element count is accepted too). Other keys are ignored. */
#ifndef EMBER_TOOLS_SCORE_JSONL_H
#define EMBER_TOOLS_SCORE_JSONL_H

#include "score.h"

typedef struct score_jsonl_plan {
    const char *file; /* name used in messages */
    const score_input_spec *inputs;
    size_t n_inputs;
    const char *id_key; /* NULL: no id */
} score_jsonl_plan;

/* Parse one line (without line ending) into row rows->n_rows; the id, if any, is pushed as its
 * raw JSON text. On failure writes "FILE:LINE:COLUMN: reason" into msg. */
bool score_jsonl_parse_row(const score_jsonl_plan *plan, const char *rec, size_t len,
                           int64_t line, score_rows *rows, score_buf *scratch, char *msg);

/* Raw JSON text of the id of a line that failed to parse; false if not found. */
bool score_jsonl_row_id(const score_jsonl_plan *plan, const char *rec, size_t len,
                        const char **id, size_t *id_len);

/* Unescape a JSON string token (with its quotes) into out; false if it is not a valid string. */
bool score_json_unescape(const char *token, size_t len, score_buf *out);

#endif
