/* ember score: output formatting. */
#include "score_out.h"

#include <math.h>
#include <stdio.h>

#include "score_jsonl.h"
#include "score_num.h"

bool score_out_csv_text(score_buf *out, const char *text, size_t len, char delimiter) {
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = text[i] == delimiter || text[i] == '"' || text[i] == '\n' || text[i] == '\r';
    if (!quote) return score_buf_append(out, text, len);
    if (!score_buf_reserve(out, 2 * len + 2)) return false;
    char *o = out->data + out->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"') *o++ = '"';
        *o++ = text[i];
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
    return true;
}

bool score_out_json_string(score_buf *out, const char *text, size_t len) {
    if (!score_buf_reserve(out, 6 * len + 2)) return false;
    char *o = out->data + out->len;
    *o++ = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            switch (c) {
            case '\n': *o++ = '\\'; *o++ = 'n'; break;
            case '\r': *o++ = '\\'; *o++ = 'r'; break;
            case '\t': *o++ = '\\'; *o++ = 't'; break;
            default:
                memcpy(o, "\\u00", 4);
                o += 4;
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    out->len = (size_t)(o - out->data);
    return true;
}

/* One element as text; returns its length. */
static int format_value(ember_dtype dtype, const void *base, int64_t i, int precision, bool json,
                        char *buf) {
    switch (dtype) {
    case EMBER_FLOAT: return score_format_f32(((const float *)base)[i], precision, json, buf);
    case EMBER_DOUBLE: return score_format_f64(((const double *)base)[i], precision, json, buf);
    case EMBER_FLOAT16:
        return score_format_f32(score_f16_to_f32(((const uint16_t *)base)[i]), precision, json,
                                buf);
    case EMBER_BFLOAT16:
        return score_format_f32(score_bf16_to_f32(((const uint16_t *)base)[i]), precision, json,
                                buf);
    case EMBER_INT64: return score_format_i64(((const int64_t *)base)[i], buf);
    case EMBER_INT32: return score_format_i64(((const int32_t *)base)[i], buf);
    case EMBER_INT16: return score_format_i64(((const int16_t *)base)[i], buf);
    case EMBER_INT8: return score_format_i64(((const int8_t *)base)[i], buf);
    case EMBER_UINT64: return score_format_u64(((const uint64_t *)base)[i], buf);
    case EMBER_UINT32: return score_format_u64(((const uint32_t *)base)[i], buf);
    case EMBER_UINT16: return score_format_u64(((const uint16_t *)base)[i], buf);
    case EMBER_UINT8: return score_format_u64(((const uint8_t *)base)[i], buf);
    case EMBER_BOOL: {
        bool v = ((const uint8_t *)base)[i] != 0;
        const char *s = json ? (v ? "true" : "false") : (v ? "1" : "0");
        size_t n = strlen(s);
        memcpy(buf, s, n + 1);
        return (int)n;
    }
    default:
        memcpy(buf, "?", 2);
        return 1;
    }
}

static bool append_name(score_buf *out, const score_output_plan *plan, const char *name,
                        int64_t index) {
    char tmp[4096];
    if (index >= 0)
        snprintf(tmp, sizeof tmp, "%s_%lld", name, (long long)index);
    else
        snprintf(tmp, sizeof tmp, "%s", name);
    return score_out_csv_text(out, tmp, strlen(tmp), plan->delimiter);
}

bool score_out_header(const score_output_plan *plan, score_buf *out) {
    bool first = true;
    if (plan->id_name) {
        if (!append_name(out, plan, plan->id_name, -1)) return false;
        first = false;
    }
    for (size_t f = 0; f < plan->n_fields; f++) {
        const score_field *fd = &plan->fields[f];
        for (int64_t i = 0; i < fd->per_row; i++) {
            if (!first && !score_buf_append(out, &plan->delimiter, 1)) return false;
            first = false;
            if (!append_name(out, plan, fd->name, fd->per_row == 1 ? -1 : i)) return false;
        }
    }
    return score_buf_append(out, "\n", 1);
}

/* The id of row i as CSV text or as a JSON value. */
static bool append_id(const score_output_plan *plan, const score_rows *rows, int64_t i,
                      bool json, score_buf *out, score_buf *scratch) {
    size_t len;
    const char *id = score_rows_id(rows, i, &len);
    if (plan->id_kind == SCORE_ID_TEXT)
        return json ? score_out_json_string(out, id, len)
                    : score_out_csv_text(out, id, len, plan->delimiter);
    if (json || len == 0 || id[0] != '"') return score_buf_append(out, id, len);
    scratch->len = 0;
    if (!score_json_unescape(id, len, scratch)) return score_buf_append(out, id, len);
    return score_out_csv_text(out, scratch->data, scratch->len, plan->delimiter);
}

/* Nested JSON array of one row of a field (dims after the batch axis). */
static void json_nested(const score_field *fd, const void *base, int64_t *index, int level,
                        int precision, char **o) {
    if (level == fd->rank) {
        *o += format_value(fd->dtype, base, (*index)++, precision, true, *o);
        return;
    }
    *(*o)++ = '[';
    for (int64_t k = 0; k < fd->dims[level]; k++) {
        if (k) *(*o)++ = ',';
        json_nested(fd, base, index, level + 1, precision, o);
    }
    *(*o)++ = ']';
}

static bool npy_rows(const score_output_plan *plan, const void *const *data, int64_t n_rows,
                     const score_rows *rows, score_buf *out) {
    const score_field *fd = &plan->fields[0];
    size_t esize = ember_dtype_size(fd->dtype);
    size_t row_bytes = (size_t)fd->per_row * esize;
    if (!score_buf_reserve(out, row_bytes * (size_t)n_rows)) return false;
    memcpy(out->data + out->len, data[0], row_bytes * (size_t)n_rows);
    if (rows->null_rows) {
        for (int64_t r = 0; r < n_rows; r++) {
            if (!rows->null_rows[r]) continue;
            char *row = out->data + out->len + (size_t)r * row_bytes;
            for (int64_t k = 0; k < fd->per_row; k++) {
                if (fd->dtype == EMBER_FLOAT) {
                    float v = NAN;
                    memcpy(row + (size_t)k * 4, &v, 4);
                } else if (fd->dtype == EMBER_DOUBLE) {
                    double v = NAN;
                    memcpy(row + (size_t)k * 8, &v, 8);
                }
            }
        }
    }
    out->len += row_bytes * (size_t)n_rows;
    return true;
}

bool score_out_rows(const score_output_plan *plan, const void *const *data, int64_t n_rows,
                    const score_rows *rows, score_buf *out, score_buf *scratch) {
    if (plan->format == SCORE_FORMAT_NPY) return npy_rows(plan, data, n_rows, rows, out);
    const bool json = plan->format == SCORE_FORMAT_JSONL;
    const char delim = plan->delimiter;
    /* room for one row: every value at most SCORE_NUM_MAX bytes, plus names for JSON */
    size_t row_room = 64;
    for (size_t f = 0; f < plan->n_fields; f++) {
        /* a value, its separator, and for JSON the brackets of up to `rank` levels */
        row_room += (size_t)plan->fields[f].per_row *
                    (SCORE_NUM_MAX + 2 + 2 * (size_t)plan->fields[f].rank);
        if (json) row_room += 6 * strlen(plan->fields[f].name) + 16 + 2 * EMBER_MAX_RANK;
    }
    for (int64_t r = 0; r < n_rows; r++) {
        bool null_row = rows->null_rows && rows->null_rows[r];
        bool first = true;
        if (json && !score_buf_append(out, "{", 1)) return false;
        if (plan->id_name) {
            if (json && (!score_out_json_string(out, plan->id_name, strlen(plan->id_name)) ||
                         !score_buf_append(out, ":", 1)))
                return false;
            if (!append_id(plan, rows, r, json, out, scratch)) return false;
            first = false;
        }
        if (!score_buf_reserve(out, row_room)) return false;
        for (size_t f = 0; f < plan->n_fields; f++) {
            const score_field *fd = &plan->fields[f];
            const int64_t n = fd->per_row;
            if (json) {
                if (!first && !score_buf_append(out, ",", 1)) return false;
                first = false;
                if (!score_out_json_string(out, fd->name, strlen(fd->name)) ||
                    !score_buf_append(out, ":", 1) || !score_buf_reserve(out, row_room))
                    return false;
                char *o = out->data + out->len;
                if (null_row) {
                    memcpy(o, "null", 4);
                    o += 4;
                } else {
                    int64_t index = r * n;
                    json_nested(fd, data[f], &index, 0, plan->precision, &o);
                }
                out->len = (size_t)(o - out->data);
                continue;
            }
            char *o = out->data + out->len;
            for (int64_t k = 0; k < n; k++) {
                if (!first) *o++ = delim;
                first = false;
                if (!null_row) o += format_value(fd->dtype, data[f], r * n + k, plan->precision,
                                                 false, o);
            }
            out->len = (size_t)(o - out->data);
        }
        if (json && !score_buf_append(out, "}", 1)) return false;
        if (!score_buf_append(out, "\n", 1)) return false;
    }
    return true;
}
