/* ember score: types shared by the input parsers, the output writers and the pipeline. */
#ifndef EMBER_TOOLS_SCORE_H
#define EMBER_TOOLS_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

typedef enum score_format {
    SCORE_FORMAT_NONE = 0,
    SCORE_FORMAT_CSV,
    SCORE_FORMAT_TSV,
    SCORE_FORMAT_NPY,
    SCORE_FORMAT_JSONL,
} score_format;

typedef enum score_on_error {
    SCORE_ON_ERROR_STOP = 0, /* the first bad row ends the run (exit code 2) */
    SCORE_ON_ERROR_SKIP,     /* bad rows are left out and counted */
    SCORE_ON_ERROR_NULL,     /* bad rows get an empty prediction */
} score_on_error;

/* Room for one "FILE:LINE:COLUMN: reason" message. */
#define SCORE_MESSAGE_SIZE 512

/* A growable byte buffer. */
typedef struct score_buf {
    char *data;
    size_t len, cap;
} score_buf;

/* Make room for `extra` more bytes; false when out of memory. */
static inline bool score_buf_reserve(score_buf *b, size_t extra) {
    if (b->cap - b->len >= extra) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return false;
    b->data = p;
    b->cap = cap;
    return true;
}

static inline bool score_buf_append(score_buf *b, const void *data, size_t n) {
    if (!score_buf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    return true;
}

static inline void score_buf_free(score_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* One model input as the row parsers see it. */
typedef struct score_input_spec {
    const char *name;  /* graph input name */
    const char *key;   /* JSONL key holding it (default: the name) */
    ember_dtype dtype; /* element type to parse into */
    size_t elem_size;
    int64_t row_elems; /* elements per row */
    int rank;          /* dims after the batch axis */
    int64_t dims[EMBER_MAX_RANK];
} score_input_spec;

/* Where a column of a CSV/TSV row goes. */
enum { SCORE_DEST_SKIP = -1, SCORE_DEST_ID = -2 };
typedef struct score_column_dest {
    int target;     /* input index, SCORE_DEST_SKIP or SCORE_DEST_ID */
    int64_t offset; /* element offset within that input's row */
} score_column_dest;

/* How ids were read: CSV text, or the raw JSON value of a JSONL key. */
typedef enum score_id_kind { SCORE_ID_TEXT = 0, SCORE_ID_JSON } score_id_kind;

/* The rows of one batch as parsed: one buffer per input (max_rows rows each), ids, and the
 * rows that failed under --on-error null. */
typedef struct score_rows {
    size_t n_inputs;
    void **data;
    int64_t max_rows;
    int64_t n_rows;
    uint8_t *null_rows; /* per row: 1 if the row failed to parse (null mode) */
    bool has_ids;
    score_buf id_text; /* ids, concatenated */
    score_buf id_ends; /* size_t per row: end offset of its id in id_text */
} score_rows;

/* Zero one row of every input (the placeholder of a row that failed in null mode). */
void score_rows_clear_row(score_rows *rows, const score_input_spec *inputs, int64_t row);
/* Append the id of the current row (n_rows). */
bool score_rows_push_id(score_rows *rows, const char *text, size_t len);
/* Id of row i. */
static inline const char *score_rows_id(const score_rows *rows, int64_t i, size_t *len) {
    const size_t *ends = (const size_t *)(const void *)rows->id_ends.data;
    size_t start = i ? ends[i - 1] : 0;
    *len = ends[i] - start;
    /* all ids empty so far: no buffer yet, and NULL + 0 is undefined (fuzzer, UBSan) */
    return rows->id_text.data ? rows->id_text.data + start : "";
}

#endif
