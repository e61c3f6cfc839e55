/* ember score: JSON Lines parsing (a small strict JSON reader: objects, arrays, strings,
 * numbers, true/false/null; NaN, Infinity and -Infinity as Python's json writes them). */
#include "score_jsonl.h"

#include <stdarg.h>
#include <stdio.h>

#include "score_num.h"

#define MAX_DEPTH 64

typedef struct parser {
    const score_jsonl_plan *plan;
    const char *rec, *p, *end;
    int64_t line;
    char *msg;
    bool failed;
} parser;

static void fail(parser *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(parser *ps, const char *at, const char *fmt, ...) {
    if (ps->failed) return;
    ps->failed = true;
    int n = snprintf(ps->msg, SCORE_MESSAGE_SIZE, "%s:%lld:%zu: ", ps->plan->file,
                     (long long)ps->line, (size_t)(at - ps->rec) + 1);
    if (n < 0 || n >= SCORE_MESSAGE_SIZE) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->msg + n, SCORE_MESSAGE_SIZE - (size_t)n, fmt, ap);
    va_end(ap);
}

static inline void skip_ws(parser *ps) {
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r' || *ps->p == '\n'))
        ps->p++;
}

/* Describe what is at p, for "expected X, found Y" messages. */
static const char *found_word(const char *p, const char *end) {
    if (p >= end) return "the end of the line";
    switch (*p) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't': case 'f': return "a boolean";
    case 'n': return "null";
    case ']': return "the end of an array";
    default: return "unexpected text";
    }
}

/* End of a string token starting at p (on its opening quote), or NULL. */
static const char *string_end(const char *p, const char *end) {
    for (const char *q = p + 1; q < end; q++) {
        if (*q == '\\') {
            q++;
            continue;
        }
        if (*q == '"') return q + 1;
        if ((unsigned char)*q < 0x20) return NULL;
    }
    return NULL;
}

static bool is_token_char(char c) {
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' ||
           (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Skip one value of any kind. */
static bool skip_value(parser *ps, int depth) {
    skip_ws(ps);
    if (ps->p >= ps->end) {
        fail(ps, ps->p, "expected a value, found the end of the line");
        return false;
    }
    if (depth > MAX_DEPTH) {
        fail(ps, ps->p, "nested deeper than %d levels", MAX_DEPTH);
        return false;
    }
    char c = *ps->p;
    if (c == '"') {
        const char *e = string_end(ps->p, ps->end);
        if (!e) {
            fail(ps, ps->p, "unterminated string");
            return false;
        }
        ps->p = e;
        return true;
    }
    if (c == '[' || c == '{') {
        char close = c == '[' ? ']' : '}';
        ps->p++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return true;
        }
        for (;;) {
            if (c == '{') {
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != '"') {
                    fail(ps, ps->p, "expected a key, found %s", found_word(ps->p, ps->end));
                    return false;
                }
                const char *e = string_end(ps->p, ps->end);
                if (!e) {
                    fail(ps, ps->p, "unterminated string");
                    return false;
                }
                ps->p = e;
                skip_ws(ps);
                if (ps->p >= ps->end || *ps->p != ':') {
                    fail(ps, ps->p, "expected ':' after a key");
                    return false;
                }
                ps->p++;
            }
            if (!skip_value(ps, depth + 1)) return false;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == close) {
                ps->p++;
                return true;
            }
            fail(ps, ps->p, "expected ',' or '%c'", close);
            return false;
        }
    }
    const char *s = ps->p;
    while (ps->p < ps->end && is_token_char(*ps->p)) ps->p++;
    if (ps->p == s) {
        fail(ps, s, "expected a value, found '%c'", *s);
        return false;
    }
    return true;
}

/* One number (or boolean for bool inputs) into dst. */
static bool parse_scalar(parser *ps, const score_input_spec *in, void *dst) {
    const char *s = ps->p;
    if (in->dtype == EMBER_FLOAT) {
        const char *e = score_parse_f32_prefix(s, ps->end, dst);
        if (e && (e == ps->end || !is_token_char(*e))) {
            ps->p = e;
            return true;
        }
    }
    const char *e = s;
    while (e < ps->end && is_token_char(*e)) e++;
    size_t len = (size_t)(e - s);
    bool ok;
    if (in->dtype == EMBER_FLOAT || in->dtype == EMBER_DOUBLE) {
        /* JSON spellings of the non-finite values; strtof would also take "nan", "inf" */
        const char *t = s;
        size_t n = len;
        if (n == 3 && memcmp(t, "NaN", 3) == 0) {
            t = "nan";
        } else if (n == 8 && memcmp(t, "Infinity", 8) == 0) {
            t = "inf";
            n = 3;
        } else if (n == 9 && memcmp(t, "-Infinity", 9) == 0) {
            t = "-inf";
            n = 4;
        } else if (n == 0 || !((t[0] >= '0' && t[0] <= '9') || t[0] == '-')) {
            n = 0; /* not a JSON number: reject "nan", "inf", "+1" */
        }
        ok = n > 0 && score_parse_value(in->dtype, t, n, dst);
    } else {
        ok = len > 0 && score_parse_value(in->dtype, s, len, dst);
    }
    if (!ok) {
        if (len == 0)
            fail(ps, s, "'%s': expected a number, found %s", in->key, found_word(s, ps->end));
        else
            fail(ps, s, "'%s': '%.*s' is not %s", in->key, (int)(len > 40 ? 40 : len), s,
                 in->dtype == EMBER_FLOAT || in->dtype == EMBER_DOUBLE ? "a number"
                 : in->dtype == EMBER_BOOL                           ? "a boolean"
                                                                     : "an integer in range");
        return false;
    }
    ps->p = e;
    return true;
}

/* Numbers of one input, nested like dims[level..]; *count counts elements written. With
 * `flat`, the array at level 0 holds all elements directly. */
static bool parse_nested(parser *ps, const score_input_spec *in, char *dst, int level,
                         bool flat, int64_t *count) {
    skip_ws(ps);
    int rank = flat ? 1 : in->rank;
    if (level == rank) {
        if (*count >= in->row_elems) {
            fail(ps, ps->p, "'%s': more than %lld values", in->key, (long long)in->row_elems);
            return false;
        }
        if (!parse_scalar(ps, in, dst + (size_t)*count * in->elem_size)) return false;
        (*count)++;
        return true;
    }
    int64_t want = flat ? in->row_elems : in->dims[level];
    const char *open = ps->p;
    if (ps->p >= ps->end || *ps->p != '[') {
        fail(ps, ps->p, "'%s': expected an array of %lld, found %s", in->key, (long long)want,
             ps->p < ps->end && ((*ps->p >= '0' && *ps->p <= '9') || *ps->p == '-')
                 ? "a number"
                 : found_word(ps->p, ps->end));
        return false;
    }
    ps->p++;
    skip_ws(ps);
    int64_t n = 0;
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            if (n == want) {
                fail(ps, ps->p, "'%s': expected an array of %lld, found more", in->key,
                     (long long)want);
                return false;
            }
            if (!parse_nested(ps, in, dst, level + 1, flat, count)) return false;
            n++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                break;
            }
            fail(ps, ps->p, "'%s': expected ',' or ']'", in->key);
            return false;
        }
    }
    if (n != want) {
        fail(ps, open, "'%s': expected an array of %lld, found %lld", in->key, (long long)want,
             (long long)n);
        return false;
    }
    return true;
}

/* Shape as text, e.g. "[1, 8, 8]". */
static void shape_text(const score_input_spec *in, char *out, size_t size) {
    size_t o = 0;
    o += (size_t)snprintf(out + o, size - o, "[");
    for (int i = 0; i < in->rank && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%s%lld", i ? ", " : "", (long long)in->dims[i]);
    if (o < size) snprintf(out + o, size - o, "]");
}

static bool parse_input(parser *ps, const score_input_spec *in, char *dst) {
    skip_ws(ps);
    int64_t count = 0;
    const char *start = ps->p;
    if (ps->p >= ps->end) {
        fail(ps, ps->p, "'%s': expected a value, found the end of the line", in->key);
        return false;
    }
    if (in->row_elems == 1 && ps->p < ps->end && *ps->p != '[') {
        /* one value per row: a bare number is fine */
        return parse_scalar(ps, in, dst);
    }
    /* a flat array is accepted for any shape with the same element count */
    bool flat = false;
    if (in->rank > 1 && ps->p < ps->end && *ps->p == '[') {
        const char *q = ps->p + 1;
        while (q < ps->end && (*q == ' ' || *q == '\t')) q++;
        flat = q < ps->end && *q != '[';
    }
    if (in->rank == 0) {
        /* a scalar row: [x] is accepted too */
        ps->p++;
        skip_ws(ps);
        if (!parse_scalar(ps, in, dst)) return false;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ']') {
            fail(ps, start, "'%s': expected one number", in->key);
            return false;
        }
        ps->p++;
        return true;
    }
    if (!parse_nested(ps, in, dst, 0, flat, &count)) {
        if (!flat && in->rank > 1) {
            /* say which shape was expected */
            char shape[128];
            shape_text(in, shape, sizeof shape);
            size_t n = strlen(ps->msg);
            if (n + 40 < SCORE_MESSAGE_SIZE)
                snprintf(ps->msg + n, SCORE_MESSAGE_SIZE - n, " (shape %s)", shape);
        }
        return false;
    }
    if (count != in->row_elems) {
        fail(ps, start, "'%s': expected %lld values, found %lld", in->key,
             (long long)in->row_elems, (long long)count);
        return false;
    }
    return true;
}

/* Compare a key token (with quotes, maybe escaped) with a name. */
static bool key_equals(const char *tok, size_t len, const char *name, score_buf *scratch) {
    size_t n = strlen(name);
    if (!memchr(tok, '\\', len)) return len == n + 2 && memcmp(tok + 1, name, n) == 0;
    scratch->len = 0;
    if (!score_json_unescape(tok, len, scratch)) return false;
    return scratch->len == n && memcmp(scratch->data, name, n) == 0;
}

/* Walk the members of the object; for each, call visit (returns false to stop). */
typedef bool (*member_fn)(parser *ps, const char *key, size_t key_len, void *ctx);

static bool walk_object(parser *ps, member_fn visit, void *ctx) {
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '{') {
        fail(ps, ps->p, "expected a JSON object, found %s",
             ps->p < ps->end && *ps->p == '[' ? "an array" : found_word(ps->p, ps->end));
        return false;
    }
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"') {
                fail(ps, ps->p, "expected a key, found %s", found_word(ps->p, ps->end));
                return false;
            }
            const char *k = ps->p, *e = string_end(ps->p, ps->end);
            if (!e) {
                fail(ps, ps->p, "unterminated string");
                return false;
            }
            ps->p = e;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                fail(ps, ps->p, "expected ':' after a key");
                return false;
            }
            ps->p++;
            skip_ws(ps);
            if (!visit(ps, k, (size_t)(e - k), ctx)) return false;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == '}') {
                ps->p++;
                break;
            }
            fail(ps, ps->p, "expected ',' or '}'");
            return false;
        }
    }
    skip_ws(ps);
    if (ps->p != ps->end) {
        fail(ps, ps->p, "unexpected text after the object");
        return false;
    }
    return true;
}

typedef struct row_ctx {
    score_rows *rows;
    score_buf *scratch;
    bool seen[256];
    const char *id;
    size_t id_len;
    bool id_seen;
} row_ctx;

static bool visit_row(parser *ps, const char *key, size_t key_len, void *vctx) {
    row_ctx *ctx = vctx;
    const score_jsonl_plan *plan = ps->plan;
    for (size_t i = 0; i < plan->n_inputs; i++) {
        const score_input_spec *in = &plan->inputs[i];
        if (!key_equals(key, key_len, in->key, ctx->scratch)) continue;
        if (ctx->seen[i]) {
            fail(ps, key, "duplicate key '%s'", in->key);
            return false;
        }
        ctx->seen[i] = true;
        char *dst = (char *)ctx->rows->data[i] +
                    (size_t)ctx->rows->n_rows * (size_t)in->row_elems * in->elem_size;
        return parse_input(ps, in, dst);
    }
    if (plan->id_key && key_equals(key, key_len, plan->id_key, ctx->scratch)) {
        const char *s = ps->p;
        if (!skip_value(ps, 1)) return false;
        if (ctx->id_seen) {
            fail(ps, key, "duplicate key '%s'", plan->id_key);
            return false;
        }
        ctx->id_seen = true;
        ctx->id = s;
        ctx->id_len = (size_t)(ps->p - s);
        return true;
    }
    return skip_value(ps, 1);
}

bool score_jsonl_parse_row(const score_jsonl_plan *plan, const char *rec, size_t len,
                           int64_t line, score_rows *rows, score_buf *scratch, char *msg) {
    parser ps = {plan, rec, rec, rec + len, line, msg, false};
    row_ctx ctx;
    memset(ctx.seen, 0, sizeof ctx.seen);
    ctx.rows = rows;
    ctx.scratch = scratch;
    ctx.id = NULL;
    ctx.id_len = 0;
    ctx.id_seen = false;
    if (plan->n_inputs > sizeof ctx.seen) {
        fail(&ps, rec, "too many inputs");
        return false;
    }
    if (!walk_object(&ps, visit_row, &ctx)) return false;
    for (size_t i = 0; i < plan->n_inputs; i++)
        if (!ctx.seen[i]) {
            fail(&ps, rec, "missing key '%s'", plan->inputs[i].key);
            return false;
        }
    if (plan->id_key) {
        if (!ctx.id_seen) {
            fail(&ps, rec, "missing key '%s'", plan->id_key);
            return false;
        }
        if (!score_rows_push_id(rows, ctx.id, ctx.id_len)) {
            fail(&ps, rec, "out of memory");
            return false;
        }
    }
    return true;
}

typedef struct id_ctx {
    const char *key;
    const char *id;
    size_t id_len;
    score_buf scratch;
} id_ctx;

static bool visit_id(parser *ps, const char *key, size_t key_len, void *vctx) {
    id_ctx *ctx = vctx;
    const char *s = ps->p;
    if (!skip_value(ps, 1)) return false;
    if (key_equals(key, key_len, ctx->key, &ctx->scratch)) {
        ctx->id = s;
        ctx->id_len = (size_t)(ps->p - s);
    }
    return true;
}

bool score_jsonl_row_id(const score_jsonl_plan *plan, const char *rec, size_t len,
                        const char **id, size_t *id_len) {
    if (!plan->id_key) return false;
    char msg[SCORE_MESSAGE_SIZE];
    parser ps = {plan, rec, rec, rec + len, 0, msg, false};
    id_ctx ctx = {plan->id_key, NULL, 0, {0}};
    walk_object(&ps, visit_id, &ctx); /* the id may come before the error */
    score_buf_free(&ctx.scratch);
    if (!ctx.id) return false;
    *id = ctx.id;
    *id_len = ctx.id_len;
    return true;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool put_utf8(score_buf *out, uint32_t cp) {
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return score_buf_append(out, b, n);
}

bool score_json_unescape(const char *tok, size_t len, score_buf *out) {
    if (len < 2 || tok[0] != '"' || tok[len - 1] != '"') return false;
    const char *p = tok + 1, *end = tok + len - 1;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        const char *stop = bs ? bs : end;
        if (!score_buf_append(out, p, (size_t)(stop - p))) return false;
        if (!bs) break;
        p = bs + 1;
        if (p >= end) return false;
        char c = *p++;
        char lit;
        switch (c) {
        case '"': lit = '"'; break;
        case '\\': lit = '\\'; break;
        case '/': lit = '/'; break;
        case 'b': lit = '\b'; break;
        case 'f': lit = '\f'; break;
        case 'n': lit = '\n'; break;
        case 'r': lit = '\r'; break;
        case 't': lit = '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            for (int i = 0; i < 4; i++) {
                int h = p < end ? hex_value(*p++) : -1;
                if (h < 0) return false;
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp >= 0xd800 && cp < 0xdc00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                uint32_t lo = 0;
                bool ok = true;
                for (int i = 0; i < 4; i++) {
                    int h = hex_value(p[2 + i]);
                    if (h < 0) ok = false;
                    lo = lo * 16 + (uint32_t)(h < 0 ? 0 : h);
                }
                if (ok && lo >= 0xdc00 && lo < 0xe000) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    p += 6;
                }
            }
            if (!put_utf8(out, cp)) return false;
            continue;
        }
        default: return false;
        }
        if (!score_buf_append(out, &lit, 1)) return false;
    }
    return true;
}
