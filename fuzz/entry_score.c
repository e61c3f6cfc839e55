/* Fuzz entry point for the row readers of `ember score` (tools/score_csv.c, score_jsonl.c):
 * the bytes are a CSV, TSV or JSON Lines file, read the way `ember score --on-error null`
 * reads a batch: records found, each parsed into the rows of two inputs (float32 x[4] or
 * x[2,2], int64 k[2]) plus an id, a bad row cleared and given its id. The first byte picks
 * the format and the shape of x. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry.h"
#include "score_csv.h"
#include "score_jsonl.h"

#define FUZZ_MAX_ROWS 64

int ember_fuzz_score(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const int format = data[0] % 3; /* CSV, TSV, JSONL */
    const bool nested = data[0] & 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    score_input_spec inputs[2] = {
        {.name = "x", .key = "x", .dtype = EMBER_FLOAT, .elem_size = 4, .row_elems = 4,
         .rank = nested ? 2 : 1, .dims = {nested ? 2 : 4, 2}},
        {.name = "k", .key = "k", .dtype = EMBER_INT64, .elem_size = 8, .row_elems = 2,
         .rank = 1, .dims = {2}},
    };
    /* CSV columns: id, x0..x3, k0, k1, one skipped column. */
    const score_column_dest dest[8] = {{SCORE_DEST_ID, 0}, {0, 0}, {0, 1}, {0, 2},
                                       {0, 3},             {1, 0}, {1, 1}, {SCORE_DEST_SKIP, 0}};
    const char *const names[8] = {"id", "x0", "x1", "x2", "x3", "k0", "k1", "note"};
    const char delim = format == 1 ? '\t' : ',';
    score_csv_plan csv = {.file = "fuzz.csv", .delimiter = delim, .n_columns = 8, .dest = dest,
                          .column_names = (data[0] & 8) ? names : NULL, .inputs = inputs,
                          .n_inputs = 2, .id_column = 0};
    score_jsonl_plan jsonl = {.file = "fuzz.jsonl", .inputs = inputs, .n_inputs = 2,
                              .id_key = (data[0] & 8) ? "id" : NULL};

    void *buffers[2] = {calloc(FUZZ_MAX_ROWS * 4, 4), calloc(FUZZ_MAX_ROWS * 2, 8)};
    score_rows rows = {.n_inputs = 2, .data = buffers, .max_rows = FUZZ_MAX_ROWS,
                       .null_rows = calloc(FUZZ_MAX_ROWS, 1),
                       .has_ids = format != 2 || jsonl.id_key != NULL};
    score_buf scratch = {0}, scratch2 = {0};
    char msg[SCORE_MESSAGE_SIZE];
    const char *p = text, *end = text + len;
    int64_t line = 1;
    while (buffers[0] && buffers[1] && rows.null_rows && p < end && rows.n_rows < FUZZ_MAX_ROWS) {
        int64_t nrec = 0, nl = 0;
        size_t n = score_find_records(p, (size_t)(end - p), format == 2 ? 0 : delim, true, 1,
                                      &nrec, &nl);
        if (n == 0 || n > (size_t)(end - p)) {
            fprintf(stderr, "ember fuzz: score_find_records returned %zu of %zu bytes\n", n,
                    (size_t)(end - p));
            abort();
        }
        size_t rlen = score_record_content(p, n);
        if (rlen > 0) {
            msg[0] = '\0';
            rows.null_rows[rows.n_rows] = 0;
            bool ok = format == 2
                          ? score_jsonl_parse_row(&jsonl, p, rlen, line, &rows, &scratch, msg)
                          : score_csv_parse_row(&csv, p, rlen, line, &rows, &scratch, msg);
            if (!ok) {
                if (!memchr(msg, '\0', sizeof msg) || !msg[0]) {
                    fprintf(stderr, "ember fuzz: a bad row without a message\n");
                    abort();
                }
                /* as --on-error null does: drop a partial id, clear the row, find its id */
                while (rows.id_ends.len / sizeof(size_t) > (size_t)rows.n_rows)
                    rows.id_ends.len -= sizeof(size_t);
                score_rows_clear_row(&rows, inputs, rows.n_rows);
                rows.null_rows[rows.n_rows] = 1;
                const char *id = "";
                size_t id_len = 0;
                if (format == 2) score_jsonl_row_id(&jsonl, p, rlen, &id, &id_len);
                else score_csv_row_id(&csv, p, rlen, &scratch2, &id, &id_len);
                if (rows.has_ids) score_rows_push_id(&rows, id, id_len);
            }
            rows.n_rows++;
            if (rows.has_ids && rows.id_ends.len / sizeof(size_t) == (size_t)rows.n_rows) {
                size_t id_len;
                const char *id = score_rows_id(&rows, rows.n_rows - 1, &id_len);
                volatile char sink = id_len ? id[id_len - 1] : 0;
                (void)sink;
            }
        }
        line += nl;
        p += n;
    }
    free(buffers[0]);
    free(buffers[1]);
    free(rows.null_rows);
    score_buf_free(&rows.id_text);
    score_buf_free(&rows.id_ends);
    score_buf_free(&scratch);
    score_buf_free(&scratch2);
    return 0;
}
