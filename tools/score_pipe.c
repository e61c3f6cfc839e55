/* ember score: reader, workers and writer. */
#include "score_pipe.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "score_num.h"

#define READ_CHUNK (1u << 20)
#define MAX_RECORD_BYTES ((size_t)64 << 20)
#define WRITE_FLUSH_BYTES (1u << 20)

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static bool aborted(score_ctx *c) {
    pthread_mutex_lock(&c->lock);
    bool a = c->abort;
    pthread_mutex_unlock(&c->lock);
    return a;
}

static void set_abort(score_ctx *c) {
    pthread_mutex_lock(&c->lock);
    c->abort = true;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* ---------------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------------- */

/* Wait until fd is readable, checking for an abort now and then (a pipe may stay silent).
 * Returns false when aborted. */
static bool wait_readable(score_ctx *c, int fd) {
    for (;;) {
        if (aborted(c)) return false;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, 200);
        if (r != 0) return true; /* readable, hung up, or an error read() will report */
    }
}

static bool input_idle(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

int score_text_read_more(score_ctx *c, char *msg, size_t msg_size) {
    if (c->teof) return 0;
    if (c->tcap - c->tlen < READ_CHUNK && c->tstart > 0) {
        memmove(c->tbuf, c->tbuf + c->tstart, c->tlen - c->tstart);
        c->tlen -= c->tstart;
        c->toffset += c->tstart;
        c->tstart = 0;
    }
    if (c->tcap - c->tlen < READ_CHUNK) {
        if (c->tlen > MAX_RECORD_BYTES + READ_CHUNK) {
            snprintf(msg, msg_size, "%s:%lld: a row longer than %zu MiB (a missing closing "
                     "quote?)", c->in_name, (long long)c->tline, MAX_RECORD_BYTES >> 20);
            return -2;
        }
        size_t cap = c->tcap ? c->tcap * 2 : 4 * READ_CHUNK;
        char *b = realloc(c->tbuf, cap);
        if (!b) {
            snprintf(msg, msg_size, "out of memory");
            return -1;
        }
        c->tbuf = b;
        c->tcap = cap;
    }
    for (;;) {
        if (!wait_readable(c, c->in_fd)) return -3;
        ssize_t r = read(c->in_fd, c->tbuf + c->tlen, c->tcap - c->tlen);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            snprintf(msg, msg_size, "%s: read failed: %s", c->in_name, strerror(errno));
            return -1;
        }
        if (r == 0) {
            c->teof = true;
            return 0;
        }
        c->tlen += (size_t)r;
        return 1;
    }
}

static score_batch *acquire_slot(score_ctx *c) {
    pthread_mutex_lock(&c->lock);
    score_batch *slot = NULL;
    while (!c->abort) {
        for (size_t i = 0; i < c->n_slots && !slot; i++)
            if (c->slots[i].state == BATCH_FREE) slot = &c->slots[i];
        if (slot) break;
        pthread_cond_wait(&c->cond, &c->lock);
    }
    if (slot) {
        slot->state = BATCH_BUSY; /* owned by the reader until published */
        slot->seq = c->next_seq++;
    }
    pthread_mutex_unlock(&c->lock);
    return slot;
}

static void publish(score_ctx *c, score_batch *b, batch_state state) {
    pthread_mutex_lock(&c->lock);
    b->state = state;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void reset_batch(score_batch *b) {
    b->raw.len = 0;
    b->npy = NULL;
    b->npy_rows = 0;
    b->rows.n_rows = 0;
    b->rows.id_text.len = 0;
    b->rows.id_ends.len = 0;
    b->skipped = 0;
    b->n_skip_msgs = 0;
    b->out.len = 0;
    b->status = 0;
    b->message[0] = '\0';
}

/* A batch that carries only an error (after all rows before it). */
static void publish_error(score_ctx *c, score_batch *b, int status, const char *msg) {
    reset_batch(b);
    b->status = status;
    snprintf(b->message, sizeof b->message, "%s", msg);
    publish(c, b, BATCH_DONE);
}

static void read_text(score_ctx *c) {
    const char quotes = c->in_format == SCORE_FORMAT_JSONL ? 0 : c->csv.delimiter;
    char msg[SCORE_MESSAGE_SIZE + 128];
    for (;;) {
        score_batch *b = acquire_slot(c);
        if (!b) return;
        reset_batch(b);
        int64_t nrec = 0, nl = 0;
        size_t bytes = 0;
        for (;;) {
            bytes = score_find_records(c->tbuf + c->tstart, c->tlen - c->tstart, quotes, c->teof,
                                       c->batch_rows, &nrec, &nl);
            if (nrec == c->batch_rows || c->teof) break;
            /* a stream gives what it has: score it rather than wait for a full batch */
            if (nrec > 0 && input_idle(c->in_fd)) break;
            int r = score_text_read_more(c, msg, sizeof msg);
            if (r == -3) {
                publish(c, b, BATCH_FREE);
                return;
            }
            if (r < 0) {
                publish_error(c, b, r == -2 ? 2 : 1, msg);
                return;
            }
        }
        if (nrec == 0) { /* end of input */
            pthread_mutex_lock(&c->lock);
            b->state = BATCH_FREE;
            c->next_seq--; /* this slot's number was not used */
            pthread_mutex_unlock(&c->lock);
            return;
        }
        if (!score_buf_append(&b->raw, c->tbuf + c->tstart, bytes)) {
            publish_error(c, b, 1, "out of memory");
            return;
        }
        b->first_line = c->tline;
        c->tline += nl;
        c->tstart += bytes;
        b->end_offset = c->toffset + c->tstart;
        publish(c, b, BATCH_FILLED);
    }
}

/* Read exactly `len` bytes of npy data (after what the setup already buffered). */
static int read_exact(score_ctx *c, unsigned char *dst, size_t len, size_t *got, char *msg,
                      size_t msg_size) {
    *got = 0;
    size_t have = c->tlen - c->tstart;
    if (have) {
        size_t n = have < len ? have : len;
        memcpy(dst, c->tbuf + c->tstart, n);
        c->tstart += n;
        *got = n;
    }
    while (*got < len) {
        if (!wait_readable(c, c->in_fd)) return -3;
        ssize_t r = read(c->in_fd, dst + *got, len - *got);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            snprintf(msg, msg_size, "%s: read failed: %s", c->in_name, strerror(errno));
            return -1;
        }
        if (r == 0) return 0;
        *got += (size_t)r;
    }
    return 1;
}

static void read_npy(score_ctx *c) {
    char msg[SCORE_MESSAGE_SIZE + 128];
    int64_t row = 0;
    while (row < c->npy_total_rows) {
        score_batch *b = acquire_slot(c);
        if (!b) return;
        reset_batch(b);
        int64_t n = c->npy_total_rows - row;
        if (n > c->batch_rows) n = c->batch_rows;
        b->first_line = row;
        b->npy_rows = n;
        size_t bytes = (size_t)n * c->npy_row_bytes;
        if (c->npy_map) {
            b->npy = c->npy_map + c->npy.data_offset + (size_t)row * c->npy_row_bytes;
        } else {
            if (!score_buf_reserve(&b->raw, bytes + 64)) {
                publish_error(c, b, 1, "out of memory");
                return;
            }
            /* 64-byte aligned start inside raw, like the runtime's own tensors */
            unsigned char *dst = (unsigned char *)b->raw.data;
            dst += (64 - ((uintptr_t)dst & 63)) & 63;
            size_t got;
            int r = read_exact(c, dst, bytes, &got, msg, sizeof msg);
            if (r == -3) {
                publish(c, b, BATCH_FREE);
                return;
            }
            if (r < 0) {
                publish_error(c, b, 1, msg);
                return;
            }
            if (r == 0) {
                snprintf(msg, sizeof msg, "%s: the data ends after %lld rows, the header says "
                         "%lld", c->in_name,
                         (long long)(row + (int64_t)(got / c->npy_row_bytes)),
                         (long long)c->npy_total_rows);
                publish_error(c, b, 2, msg);
                return;
            }
            b->npy = dst;
        }
        row += n;
        b->end_offset = c->npy.data_offset + (uint64_t)row * c->npy_row_bytes;
        publish(c, b, BATCH_FILLED);
    }
}

static void *reader_main(void *arg) {
    score_ctx *c = arg;
    if (c->in_format == SCORE_FORMAT_NPY)
        read_npy(c);
    else
        read_text(c);
    pthread_mutex_lock(&c->lock);
    c->reader_done = true;
    c->total_batches = c->next_seq;
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Workers
 * ------------------------------------------------------------------------------------------- */

/* Record a bad row per --on-error. Returns false when the batch must stop here. */
static bool bad_row(score_ctx *c, score_batch *b, const char *msg, const char *rec, size_t len) {
    switch (c->on_error) {
    case SCORE_ON_ERROR_STOP:
        b->status = 2;
        snprintf(b->message, sizeof b->message, "%s", msg);
        return false;
    case SCORE_ON_ERROR_SKIP:
        if (b->n_skip_msgs < SCORE_SKIP_LIST)
            snprintf(b->skip_msgs[b->n_skip_msgs++], SCORE_MESSAGE_SIZE, "%s", msg);
        b->skipped++;
        /* drop whatever part of the id the failed row pushed */
        while (b->rows.id_ends.len / sizeof(size_t) > (size_t)b->rows.n_rows)
            b->rows.id_ends.len -= sizeof(size_t);
        return true;
    case SCORE_ON_ERROR_NULL: {
        score_rows *rows = &b->rows;
        while (rows->id_ends.len / sizeof(size_t) > (size_t)rows->n_rows)
            rows->id_ends.len -= sizeof(size_t);
        score_rows_clear_row(rows, c->inputs, rows->n_rows);
        rows->null_rows[rows->n_rows] = 1;
        if (rows->has_ids) {
            const char *id = "";
            size_t id_len = 0;
            if (rec) {
                if (c->in_format == SCORE_FORMAT_JSONL)
                    score_jsonl_row_id(&c->jsonl, rec, len, &id, &id_len);
                else
                    score_csv_row_id(&c->csv, rec, len, &b->scratch2, &id, &id_len);
            }
            score_rows_push_id(rows, id, id_len);
        }
        rows->n_rows++;
        b->skipped++; /* counted as null in the summary */
        if (b->n_skip_msgs < SCORE_SKIP_LIST)
            snprintf(b->skip_msgs[b->n_skip_msgs++], SCORE_MESSAGE_SIZE, "%s", msg);
        return true;
    }
    }
    return false;
}

static void parse_text(score_ctx *c, score_batch *b) {
    const bool json = c->in_format == SCORE_FORMAT_JSONL;
    const char *p = b->raw.data, *end = p + b->raw.len;
    int64_t line = b->first_line;
    score_rows *rows = &b->rows;
    char msg[SCORE_MESSAGE_SIZE];
    while (p < end) {
        int64_t nrec, nl;
        size_t n = score_find_records(p, (size_t)(end - p), json ? 0 : c->csv.delimiter, true, 1,
                                      &nrec, &nl);
        size_t len = score_record_content(p, n);
        bool blank = len == 0;
        if (json && !blank) {
            blank = true;
            for (size_t i = 0; i < len && blank; i++)
                blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
        }
        if (!blank) {
            rows->null_rows[rows->n_rows] = 0;
            bool ok = json ? score_jsonl_parse_row(&c->jsonl, p, len, line, rows, &b->scratch, msg)
                           : score_csv_parse_row(&c->csv, p, len, line, rows, &b->scratch, msg);
            if (ok)
                rows->n_rows++;
            else if (!bad_row(c, b, msg, p, len))
                return;
        }
        line += nl;
        p += n;
    }
}

static void parse_npy(score_ctx *c, score_batch *b) {
    const score_input_spec *in = &c->inputs[0];
    score_rows *rows = &b->rows;
    char msg[SCORE_MESSAGE_SIZE];
    if (c->npy_zero_copy) {
        rows->n_rows = b->npy_rows;
        memset(rows->null_rows, 0, (size_t)b->npy_rows);
        return;
    }
    size_t esize = c->npy.elem_size;
    for (int64_t r = 0; r < b->npy_rows; r++) {
        const unsigned char *src = b->npy + (size_t)r * c->npy_row_bytes;
        char *dst = (char *)rows->data[0] + (size_t)rows->n_rows * (size_t)in->row_elems *
                                                in->elem_size;
        int64_t bad = -1;
        bool ok = true;
        if (!c->npy_columns) {
            ok = score_npy_convert(c->npy.dtype, c->npy.swap, src, in->dtype, dst,
                                   in->row_elems, &bad);
        } else {
            for (size_t k = 0; k < c->n_npy_columns && ok; k++) {
                int64_t unused;
                ok = score_npy_convert(c->npy.dtype, c->npy.swap,
                                       src + (size_t)c->npy_columns[k] * esize, in->dtype,
                                       dst + k * in->elem_size, 1, &unused);
                if (!ok) bad = c->npy_columns[k];
            }
        }
        rows->null_rows[rows->n_rows] = 0;
        if (ok) {
            rows->n_rows++;
            continue;
        }
        snprintf(msg, sizeof msg, "%s:%lld:%lld: value does not fit %s (row %lld, element %lld)",
                 c->in_name, (long long)(b->first_line + r + 1), (long long)bad + 1,
                 ember_dtype_name(in->dtype), (long long)(b->first_line + r + 1),
                 (long long)bad + 1);
        if (!bad_row(c, b, msg, NULL, 0)) return;
    }
}

static void fail_batch(score_batch *b, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_batch(score_batch *b, int status, const char *fmt, ...) {
    b->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->message, sizeof b->message, fmt, ap);
    va_end(ap);
}

static void run_batch(score_ctx *c, score_batch *b) {
    score_rows *rows = &b->rows;
    const int64_t n = rows->n_rows;
    const int64_t n_run = c->static_batch > 0 ? c->static_batch : n;
    for (int64_t r = n; r < n_run; r++) score_rows_clear_row(rows, c->inputs, r); /* padding */
    ember_tensor *in_t[64] = {0};
    ember_tensor *out_t[64] = {0};
    ember_error err;
    bool ok = true;
    for (size_t k = 0; k < c->n_inputs && ok; k++) {
        const score_input_spec *in = &c->inputs[k];
        int64_t dims[EMBER_MAX_RANK];
        dims[0] = n_run;
        for (int i = 0; i < in->rank; i++) dims[i + 1] = in->dims[i];
        void *data = c->npy_zero_copy ? (void *)(uintptr_t)b->npy : rows->data[k];
        size_t bytes = (size_t)n_run * (size_t)in->row_elems * in->elem_size;
        if (ember_tensor_wrap(in->dtype, dims, in->rank + 1, data, bytes, &in_t[k], &err) !=
            EMBER_OK) {
            fail_batch(b, 1, "%s", err.message);
            ok = false;
        }
    }
    if (ok && ember_session_run(c->session, c->input_names, (const ember_tensor *const *)in_t,
                                c->n_inputs, c->output_names, c->n_outputs, out_t,
                                &err) != EMBER_OK) {
        fail_batch(b, 1, "%s", err.message);
        ok = false;
    }
    for (size_t k = 0; k < c->n_inputs; k++) ember_tensor_free(in_t[k]);
    if (!ok) goto done;

    /* one row of every output per input row */
    int64_t per_row[64];
    for (size_t k = 0; k < c->n_outputs; k++) {
        int rank = ember_tensor_rank(out_t[k]);
        const int64_t *d = ember_tensor_dims(out_t[k]);
        if (rank < 1 || d[0] != n_run) {
            fail_batch(b, 1, "output '%s' has %s%lld rows for %lld input rows: choose outputs "
                       "with one row per input row (--outputs)", c->output_names[k],
                       rank < 1 ? "no batch axis, " : "", rank < 1 ? 0LL : (long long)d[0],
                       (long long)n_run);
            goto done;
        }
        per_row[k] = n_run ? ember_tensor_element_count(out_t[k]) / n_run : 0;
    }
    pthread_mutex_lock(&c->layout_lock);
    if (!c->layout_ready) {
        ember_value_info info[64];
        for (size_t k = 0; k < c->n_outputs; k++) {
            info[k].name = c->output_names[k];
            info[k].dtype = ember_tensor_dtype(out_t[k]);
            info[k].rank = ember_tensor_rank(out_t[k]);
            info[k].dims = ember_tensor_dims(out_t[k]);
            info[k].dim_names = NULL;
        }
        char msg[SCORE_MESSAGE_SIZE];
        if (!score_build_layout(c, info, per_row, msg, sizeof msg)) {
            pthread_mutex_unlock(&c->layout_lock);
            fail_batch(b, 2, "%s", msg);
            goto done;
        }
    }
    pthread_mutex_unlock(&c->layout_lock);
    for (size_t k = 0; k < c->n_outputs; k++) {
        if (per_row[k] != c->out_per_row[k]) {
            fail_batch(b, 1, "output '%s' has %lld values per row, expected %lld (from its "
                       "declared shape or an earlier batch)", c->output_names[k],
                       (long long)per_row[k], (long long)c->out_per_row[k]);
            goto done;
        }
    }

    const void *data[64];
    for (size_t k = 0; k < c->n_outputs; k++) data[k] = ember_tensor_const_data(out_t[k]);
    if (!score_out_rows(&c->out_plan, data, n, rows, &b->out, &b->scratch))
        fail_batch(b, 1, "out of memory");
done:
    for (size_t k = 0; k < c->n_outputs; k++) ember_tensor_free(out_t[k]);
}

static void process(score_ctx *c, score_batch *b) {
    if (c->in_format == SCORE_FORMAT_NPY)
        parse_npy(c, b);
    else
        parse_text(c, b);
    if (b->status == 1 || b->rows.n_rows == 0) return;
    int status = b->status; /* a bad row (stop mode): run the rows before it */
    char message[sizeof b->message];
    memcpy(message, b->message, sizeof message);
    b->status = 0;
    run_batch(c, b);
    if (b->status == 0 && status) {
        b->status = status;
        memcpy(b->message, message, sizeof message);
    }
}

static void *worker_main(void *arg) {
    score_ctx *c = arg;
    for (;;) {
        pthread_mutex_lock(&c->lock);
        score_batch *b = NULL;
        for (;;) {
            if (c->abort) break;
            for (size_t i = 0; i < c->n_slots; i++)
                if (c->slots[i].state == BATCH_FILLED && (!b || c->slots[i].seq < b->seq))
                    b = &c->slots[i];
            if (b || c->reader_done) break;
            pthread_cond_wait(&c->cond, &c->lock);
        }
        if (b) b->state = BATCH_BUSY;
        pthread_mutex_unlock(&c->lock);
        if (!b) return NULL;
        process(c, b);
        publish(c, b, BATCH_DONE);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Layout
 * ------------------------------------------------------------------------------------------- */

static score_field make_field(const char *name, ember_dtype dtype, int rank,
                              const int64_t *dims) {
    score_field f;
    memset(&f, 0, sizeof f);
    f.name = strdup(name);
    f.dtype = dtype;
    f.rank = rank;
    f.per_row = 1;
    for (int i = 0; i < rank; i++) {
        f.dims[i] = dims[i];
        f.per_row *= dims[i];
    }
    return f;
}

bool score_build_layout(score_ctx *c, const ember_value_info *info, const int64_t *per_row,
                        char *msg, size_t msg_size) {
    size_t n = c->n_outputs;
    score_field *fields = calloc(n, sizeof *fields);
    int64_t *counts = calloc(c->n_outputs, sizeof *counts);
    if (!fields || !counts) {
        free(fields);
        free(counts);
        snprintf(msg, msg_size, "out of memory");
        return false;
    }
    size_t nf = 0;
    for (size_t k = 0; k < c->n_outputs; k++) {
        int rank = info[k].rank > 0 ? info[k].rank - 1 : 0;
        const char *name = info[k].name;
        if (c->head.active) {
            /* the head's outputs: "label" and "probability"; binary has one of each a row */
            name = k == 0 ? "label" : "probability";
            if (c->head.head.kind == EMBER_HEAD_BINARY) rank = 0;
        }
        fields[nf++] = make_field(name, info[k].dtype, rank, info[k].dims + 1);
    }
    for (size_t f = 0; f < nf; f++) {
        if (!fields[f].name) {
            for (size_t g = 0; g < nf; g++) free(fields[g].name);
            free(fields);
            free(counts);
            snprintf(msg, msg_size, "out of memory");
            return false;
        }
    }
    if (c->out_format == SCORE_FORMAT_NPY) {
        if (nf != 1) {
            snprintf(msg, msg_size, "an npy output holds one array, this run writes %zu (%s); "
                     "choose one with --outputs, or write CSV or JSONL", nf,
                     c->head.active ? "labels and probabilities" : "outputs");
            goto fail;
        }
        if (c->on_error == SCORE_ON_ERROR_NULL && fields[0].dtype != EMBER_FLOAT &&
            fields[0].dtype != EMBER_DOUBLE) {
            snprintf(msg, msg_size, "--on-error null marks bad rows with NaN, which an npy "
                     "array of %s cannot hold; use --on-error skip, or CSV or JSONL output",
                     ember_dtype_name(fields[0].dtype));
            goto fail;
        }
        if (ember_dtype_size(fields[0].dtype) == 0 ||
            fields[0].dtype == EMBER_BFLOAT16) {
            snprintf(msg, msg_size, "an npy output cannot hold %s",
                     ember_dtype_name(fields[0].dtype));
            goto fail;
        }
    }
    for (size_t f = 0; f < nf; f++) {
        if (ember_dtype_size(fields[f].dtype) == 0) {
            snprintf(msg, msg_size, "output '%s' is %s, which ember score cannot write",
                     fields[f].name, ember_dtype_name(fields[f].dtype));
            goto fail;
        }
    }
    for (size_t k = 0; k < c->n_outputs; k++) counts[k] = per_row[k];
    c->fields = fields;
    c->n_fields = nf;
    c->out_per_row = counts;
    c->out_plan.fields = fields;
    c->out_plan.n_fields = nf;
    c->layout_ready = true;
    return true;
fail:
    for (size_t g = 0; g < nf; g++) free(fields[g].name);
    free(fields);
    free(counts);
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------------- */

typedef struct writer {
    score_ctx *c;
    score_buf buf;
    uint64_t committed; /* bytes of whole rows known to be written */
    int64_t rows_in_buf, rows_flushed;
    bool header_done;
    bool broken_pipe;
    size_t npy_header_len;
    char error[SCORE_MESSAGE_SIZE + 256];
} writer;

static bool flush(writer *w) {
    score_ctx *c = w->c;
    size_t off = 0;
    while (off < w->buf.len) {
        ssize_t r = write(c->out_fd, w->buf.data + off, w->buf.len - off);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            int e = errno;
            if (e == EPIPE && c->out_is_stdout) {
                w->broken_pipe = true;
                return false;
            }
            if (c->out_seekable && off > 0) {
                /* never leave half a row behind */
                if (ftruncate(c->out_fd, (off_t)w->committed) == 0)
                    lseek(c->out_fd, (off_t)w->committed, SEEK_SET);
            }
            snprintf(w->error, sizeof w->error, "%s: write failed: %s%s", c->out_name,
                     strerror(e), c->out_seekable && off > 0 ? " (the output ends at the last "
                     "complete row)" : "");
            return false;
        }
        off += (size_t)r;
    }
    w->committed += w->buf.len;
    w->rows_flushed += w->rows_in_buf;
    w->rows_in_buf = 0;
    w->buf.len = 0;
    return true;
}

static bool write_header(writer *w) {
    score_ctx *c = w->c;
    w->header_done = true;
    if (c->out_format == SCORE_FORMAT_NPY) {
        const score_field *f = &c->fields[0];
        int64_t dims[EMBER_MAX_RANK + 1];
        dims[0] = c->out_known_rows >= 0 ? c->out_known_rows : 0;
        for (int i = 0; i < f->rank; i++) dims[i + 1] = f->dims[i];
        char head[4096];
        size_t n = score_npy_format_header(f->dtype, dims, f->rank + 1, 0, head, sizeof head);
        if (!n) {
            snprintf(w->error, sizeof w->error, "cannot write an npy header for %s",
                     ember_dtype_name(f->dtype));
            return false;
        }
        w->npy_header_len = n;
        return score_buf_append(&w->buf, head, n);
    }
    if (!c->output_header || c->out_format == SCORE_FORMAT_JSONL) return true;
    return score_out_header(&c->out_plan, &w->buf);
}

/* Rewrite the npy header with the real row count. */
static bool finish_npy(writer *w) {
    score_ctx *c = w->c;
    if (c->out_format != SCORE_FORMAT_NPY || !w->header_done) return true;
    if (c->out_known_rows >= 0) {
        if (w->rows_flushed != c->out_known_rows) {
            snprintf(w->error, sizeof w->error, "%s: wrote %lld rows, the npy header says %lld",
                     c->out_name, (long long)w->rows_flushed, (long long)c->out_known_rows);
            return false;
        }
        return true;
    }
    const score_field *f = &c->fields[0];
    int64_t dims[EMBER_MAX_RANK + 1];
    dims[0] = w->rows_flushed;
    for (int i = 0; i < f->rank; i++) dims[i + 1] = f->dims[i];
    char head[4096];
    size_t n = score_npy_format_header(f->dtype, dims, f->rank + 1, w->npy_header_len, head,
                                       sizeof head);
    if (!n || pwrite(c->out_fd, head, n, 0) != (ssize_t)n) {
        snprintf(w->error, sizeof w->error, "%s: could not update the npy header: %s",
                 c->out_name, n ? strerror(errno) : "too many rows");
        return false;
    }
    return true;
}

static void print_count(char *out, size_t size, double v) {
    /* 1234567 -> "1,234,567" */
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", v < 0 ? 0 : v);
    size_t n = strlen(digits), o = 0;
    for (size_t i = 0; i < n && o + 2 < size; i++) {
        if (i && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

static void show_progress(score_ctx *c, int64_t rows, uint64_t offset, double elapsed) {
    char r[32], rate[32], eta[48] = "";
    print_count(r, sizeof r, (double)rows);
    print_count(rate, sizeof rate, elapsed > 0 ? (double)rows / elapsed : 0);
    if (c->in_size > 0 && offset > 0 && elapsed > 0) {
        double frac = (double)offset / (double)c->in_size;
        double left = elapsed * (1.0 - frac) / frac;
        snprintf(eta, sizeof eta, "  %3.0f%%  ETA %d:%02d", frac * 100.0, (int)(left / 60),
                 (int)left % 60);
    }
    fprintf(stderr, "\r\033[Kember: %s rows  %s rows/s%s", r, rate, eta);
    fflush(stderr);
}

int score_pipe_run(score_ctx *c) {
    int rc = 0;
    double start = now_seconds(), last_progress = start;
    pthread_t reader, workers[256];
    int started = 0;
    bool reader_started = pthread_create(&reader, NULL, reader_main, c) == 0;
    if (!reader_started) {
        cli_error("cannot start a thread");
        return 1;
    }
    for (int i = 0; i < c->workers && i < 256; i++) {
        if (pthread_create(&workers[i], NULL, worker_main, c) != 0) break;
        started++;
    }
    writer w;
    memset(&w, 0, sizeof w);
    w.c = c;
    int64_t rows_done = 0, skipped = 0;
    char skip_list[SCORE_SKIP_LIST][SCORE_MESSAGE_SIZE];
    int n_skip_list = 0;
    int64_t next = 0;
    bool ok = started > 0;
    if (!ok) snprintf(w.error, sizeof w.error, "cannot start worker threads");
    uint64_t dropped = 0; /* npy mapping: bytes handed back to the kernel */
    while (ok) {
        pthread_mutex_lock(&c->lock);
        score_batch *b = NULL;
        for (;;) {
            for (size_t i = 0; i < c->n_slots && !b; i++)
                if (c->slots[i].state == BATCH_DONE && c->slots[i].seq == next) b = &c->slots[i];
            if (b || (c->reader_done && next >= c->total_batches) || c->abort) break;
            if (w.buf.len) { /* idle: let what is done go out */
                pthread_mutex_unlock(&c->lock);
                bool f = flush(&w);
                pthread_mutex_lock(&c->lock);
                if (!f) break;
                continue;
            }
            pthread_cond_wait(&c->cond, &c->lock);
        }
        pthread_mutex_unlock(&c->lock);
        if (w.broken_pipe || w.error[0] || !b) break;

        if (b->out.len > 0 && !w.header_done && !write_header(&w)) break;
        if (!score_buf_append(&w.buf, b->out.data, b->out.len)) {
            snprintf(w.error, sizeof w.error, "out of memory");
            break;
        }
        w.rows_in_buf += b->rows.n_rows;
        rows_done += b->rows.n_rows;
        skipped += b->skipped;
        for (int i = 0; i < b->n_skip_msgs && n_skip_list < SCORE_SKIP_LIST; i++)
            memcpy(skip_list[n_skip_list++], b->skip_msgs[i], SCORE_MESSAGE_SIZE);
        int status = b->status;
        char message[sizeof b->message];
        memcpy(message, b->message, sizeof message);
        uint64_t offset = b->end_offset;
        if (c->npy_map && b->npy) {
            /* pages before this batch's end are done with: keep the resident set small */
            size_t page = (size_t)sysconf(_SC_PAGESIZE);
            size_t upto = (size_t)(b->npy + (size_t)b->npy_rows * c->npy_row_bytes - c->npy_map);
            upto = upto / page * page;
            if (upto > dropped) {
                madvise((void *)(uintptr_t)(c->npy_map + dropped), upto - dropped,
                        MADV_DONTNEED);
                dropped = upto;
            }
        }
        pthread_mutex_lock(&c->lock);
        b->state = BATCH_FREE;
        next++;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        if (status) {
            if (flush(&w)) {
                if (c->progress) fprintf(stderr, "\r\033[K");
                cli_error("%s", message);
                rc = status;
            }
            break;
        }
        if (w.buf.len >= WRITE_FLUSH_BYTES && !flush(&w)) break;
        double t = now_seconds();
        if (c->progress && t - last_progress >= 0.25) {
            show_progress(c, rows_done, offset, t - start);
            last_progress = t;
        }
    }
    if (rc == 0 && !w.broken_pipe && !w.error[0]) {
        if (!w.header_done && c->layout_ready) write_header(&w);
        if (!w.error[0] && flush(&w)) finish_npy(&w);
    }
    set_abort(c);
    pthread_join(reader, NULL);
    for (int i = 0; i < started; i++) pthread_join(workers[i], NULL);
    if (c->progress) fprintf(stderr, "\r\033[K");
    if (w.broken_pipe) {
        score_buf_free(&w.buf);
        return 0; /* the reader of our output has had enough (| head): not an error */
    }
    if (w.error[0]) {
        cli_error("%s", w.error);
        rc = 1;
    }
    if (!c->quiet && rc == 0) {
        double secs = now_seconds() - start;
        char r[32], rate[32];
        print_count(r, sizeof r, (double)rows_done);
        print_count(rate, sizeof rate, secs > 0 ? (double)rows_done / secs : 0);
        char extra[96] = "";
        if (skipped)
            snprintf(extra, sizeof extra, ", %lld %s", (long long)skipped,
                     c->on_error == SCORE_ON_ERROR_NULL ? "null (bad rows)" : "skipped");
        fprintf(stderr, "ember: %s row%s in %.2f s (%s rows/s)%s\n", r,
                rows_done == 1 ? "" : "s", secs, rate, extra);
        for (int i = 0; i < n_skip_list; i++)
            fprintf(stderr, "ember:   %s %s\n",
                    c->on_error == SCORE_ON_ERROR_NULL ? "null" : "skipped", skip_list[i]);
        if (skipped > n_skip_list)
            fprintf(stderr, "ember:   ... and %lld more\n", (long long)(skipped - n_skip_list));
    }
    score_buf_free(&w.buf);
    return rc;
}
