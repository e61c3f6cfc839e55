/* ember score: the pipeline. One reader thread cuts the input into batches of whole rows, N
 * worker threads parse, run and format batches (any order), and the calling thread writes
 * them in input order. A fixed pool of batch slots bounds the memory: the reader waits for a
 * free slot, so at most n_slots batches are in flight whatever the input size. */
#ifndef EMBER_TOOLS_SCORE_PIPE_H
#define EMBER_TOOLS_SCORE_PIPE_H

#include <pthread.h>

#include "heads_cli.h"
#include "score.h"
#include "score_csv.h"
#include "score_jsonl.h"
#include "score_npy.h"
#include "score_out.h"

#define SCORE_SKIP_LIST 5 /* skipped rows listed in the summary */

typedef enum batch_state { BATCH_FREE = 0, BATCH_FILLED, BATCH_BUSY, BATCH_DONE } batch_state;

typedef struct score_batch {
    batch_state state;
    int64_t seq;
    /* input */
    score_buf raw;              /* whole records (text) or streamed npy rows */
    const unsigned char *npy;   /* npy rows: into the mapping or raw.data */
    int64_t npy_rows;
    int64_t first_line;         /* physical line of the first record; first row for npy */
    uint64_t end_offset;        /* input bytes consumed up to the end of this batch */
    /* parsed */
    score_rows rows;
    int64_t skipped;
    int n_skip_msgs;
    char skip_msgs[SCORE_SKIP_LIST][SCORE_MESSAGE_SIZE];
    /* result */
    score_buf out;
    int status; /* 0 ok; 1 failure; 2 bad input: after this batch's rows, stop */
    char message[SCORE_MESSAGE_SIZE + 512];
    /* working memory */
    score_buf scratch, scratch2;
} score_batch;

typedef struct score_ctx {
    /* options */
    score_format in_format;
    score_on_error on_error;
    int64_t batch_rows;   /* rows per batch */
    int64_t static_batch; /* > 0: the model fixes the batch size (batches padded to it) */
    int workers;
    bool quiet, progress;
    bool output_header;

    /* model */
    ember_session *session;
    score_input_spec *inputs;
    size_t n_inputs;
    const char **input_names;
    const char **output_names; /* selected outputs (with --head: its decision, probabilities) */
    size_t n_outputs;
    cli_head head; /* applied by the session */
    bool probabilities;

    /* input */
    int in_fd;
    const char *in_name;
    uint64_t in_size; /* 0: unknown */
    score_csv_plan csv;
    score_jsonl_plan jsonl;
    /* text reader state (header already consumed by the setup) */
    char *tbuf;
    size_t tcap, tstart, tlen;
    bool teof;
    int64_t tline;
    uint64_t toffset; /* input offset of tbuf[tstart] */
    /* npy input */
    score_npy_header npy;
    const unsigned char *npy_map; /* whole file mapped, or NULL when streamed */
    size_t npy_map_len;
    int64_t npy_total_rows;
    size_t npy_row_bytes;
    int64_t *npy_columns; /* 0-based elements of a row fed to the input, or NULL: all */
    size_t n_npy_columns;
    bool npy_zero_copy;

    /* output */
    score_output_plan out_plan; /* fields filled from the first batch's outputs */
    score_format out_format;
    int out_fd;
    const char *out_name;
    bool out_is_stdout, out_seekable;
    int64_t out_known_rows; /* -1: unknown */

    /* layout of the outputs, set by the first batch that runs */
    pthread_mutex_t layout_lock;
    bool layout_ready;
    score_field *fields;
    size_t n_fields;
    int64_t *out_per_row; /* per selected output: values per row */

    /* pipeline */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    score_batch *slots;
    size_t n_slots;
    int64_t next_seq;
    bool reader_done;
    int64_t total_batches;
    bool abort;
} score_ctx;

/* Read more of a text (or npy-streamed) input into the reader buffer. Returns 1 on new data,
 * 0 at the end of input, -1 on a read error, -2 on a row too long (message in msg), -3 when
 * the run was aborted. */
int score_text_read_more(score_ctx *ctx, char *msg, size_t msg_size);

/* Run the pipeline; prints errors, progress and the summary. Returns the exit code. */
int score_pipe_run(score_ctx *ctx);

/* Build the output fields from the per-row counts of the selected outputs (static shapes or a
 * batch's). false with a message when a head does not fit. */
bool score_build_layout(score_ctx *ctx, const ember_value_info *info, const int64_t *per_row,
                        char *msg, size_t msg_size);

#endif
