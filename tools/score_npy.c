/* ember score: .npy headers and element conversion. */
#include "score_npy.h"

#include <math.h>
#include <stdio.h>

#include "score_num.h"

static const struct {
    const char *code; /* descr without the byte-order character */
    ember_dtype dtype;
    size_t size;
} k_types[] = {
    {"f4", EMBER_FLOAT, 4},  {"f8", EMBER_DOUBLE, 8}, {"f2", EMBER_FLOAT16, 2},
    {"i1", EMBER_INT8, 1},   {"u1", EMBER_UINT8, 1},  {"i2", EMBER_INT16, 2},
    {"u2", EMBER_UINT16, 2}, {"i4", EMBER_INT32, 4},  {"u4", EMBER_UINT32, 4},
    {"i8", EMBER_INT64, 8},  {"u8", EMBER_UINT64, 8}, {"b1", EMBER_BOOL, 1},
};

static uint32_t read_le(const unsigned char *p, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Value of 'key': in the header dict, or NULL. */
static const char *dict_value(const char *dict, size_t len, const char *key) {
    size_t kn = strlen(key);
    for (size_t i = 0; i + kn + 2 < len; i++) {
        if ((dict[i] == '\'' || dict[i] == '"') && memcmp(dict + i + 1, key, kn) == 0 &&
            dict[i + 1 + kn] == dict[i]) {
            const char *p = dict + i + kn + 2;
            const char *end = dict + len;
            while (p < end && (*p == ' ' || *p == ':')) p++;
            return p;
        }
    }
    return NULL;
}

int score_npy_parse_header(const void *data, size_t len, score_npy_header *h, size_t *need,
                           char *msg, size_t msg_size) {
    const unsigned char *b = data;
    memset(h, 0, sizeof *h);
    if (len < 10) {
        *need = 10;
        if (len >= 6 && memcmp(b, "\x93NUMPY", 6) != 0) goto not_npy;
        return 0;
    }
    if (memcmp(b, "\x93NUMPY", 6) != 0) goto not_npy;
    int major = b[6];
    size_t prefix, dict_len;
    if (major == 1) {
        prefix = 10;
        dict_len = read_le(b + 8, 2);
    } else if (major == 2 || major == 3) {
        if (len < 12) {
            *need = 12;
            return 0;
        }
        prefix = 12;
        dict_len = read_le(b + 8, 4);
    } else {
        snprintf(msg, msg_size, "npy format version %d is not supported", major);
        return -1;
    }
    if (dict_len > (1u << 24)) {
        snprintf(msg, msg_size, "npy header is too large");
        return -1;
    }
    if (len < prefix + dict_len) {
        *need = prefix + dict_len;
        return 0;
    }
    const char *dict = (const char *)b + prefix;
    const char *descr = dict_value(dict, dict_len, "descr");
    const char *fortran = dict_value(dict, dict_len, "fortran_order");
    const char *shape = dict_value(dict, dict_len, "shape");
    const char *end = dict + dict_len;
    if (!descr || !fortran || !shape || (*descr != '\'' && *descr != '"')) {
        snprintf(msg, msg_size, "malformed npy header");
        return -1;
    }
    const char *close = memchr(descr + 1, *descr, (size_t)(end - descr - 1));
    if (!close || (size_t)(close - descr - 1) >= sizeof h->descr) {
        snprintf(msg, msg_size, "malformed npy header");
        return -1;
    }
    memcpy(h->descr, descr + 1, (size_t)(close - descr - 1));
    h->fortran_order = strncmp(fortran, "True", 4) == 0;
    const char *d = h->descr;
    char order = d[0];
    if (order == '<' || order == '>' || order == '|' || order == '=') d++;
    h->swap = order == '>';
    h->dtype = EMBER_UNDEFINED;
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (strcmp(d, k_types[i].code) == 0) {
            h->dtype = k_types[i].dtype;
            h->elem_size = k_types[i].size;
        }
    if (h->elem_size == 1) h->swap = false;
    if (*shape != '(') {
        snprintf(msg, msg_size, "malformed npy header (shape)");
        return -1;
    }
    const char *p = shape + 1;
    h->rank = 0;
    for (;;) {
        while (p < end && (*p == ' ' || *p == ',')) p++;
        if (p < end && *p == ')') break;
        if (p >= end || *p < '0' || *p > '9') {
            snprintf(msg, msg_size, "malformed npy header (shape)");
            return -1;
        }
        if (h->rank == EMBER_MAX_RANK) {
            snprintf(msg, msg_size, "npy array has more than %d dimensions", EMBER_MAX_RANK);
            return -1;
        }
        int64_t v = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (v > (INT64_MAX - 9) / 10) {
                snprintf(msg, msg_size, "npy shape is too large");
                return -1;
            }
            v = v * 10 + (*p++ - '0');
        }
        if (p < end && *p == 'L') p++; /* Python 2 longs */
        h->dims[h->rank++] = v;
    }
    h->data_offset = prefix + dict_len;
    return 1;
not_npy:
    snprintf(msg, msg_size, "not an npy file (no \\x93NUMPY magic)");
    return -1;
}

size_t score_npy_format_header(ember_dtype dtype, const int64_t *dims, int rank,
                               size_t total_len, char *out, size_t size) {
    const char *code = NULL;
    size_t esize = 0;
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
        if (k_types[i].dtype == dtype) {
            code = k_types[i].code;
            esize = k_types[i].size;
        }
    if (!code) return 0;
    char dict[1024];
    int n = snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                     esize == 1 ? '|' : '<', code);
    for (int i = 0; i < rank; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s", (long long)dims[i],
                      rank == 1 ? "," : i + 1 < rank ? ", " : "");
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    if (n < 0 || (size_t)n >= sizeof dict - 64) return 0;
    size_t body = (size_t)n + 1; /* + '\n' */
    size_t total;
    if (total_len) {
        total = total_len;
        if (10 + body > total) return 0;
    } else {
        total = (10 + body + 24 + 63) / 64 * 64; /* room for a longer row count later */
    }
    if (total > size || total - 10 > 65535) return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    size_t dict_len = total - 10;
    out[8] = (char)(dict_len & 0xff);
    out[9] = (char)(dict_len >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', total - 10 - (size_t)n - 1);
    out[total - 1] = '\n';
    return total;
}

bool score_npy_convertible(ember_dtype s, ember_dtype d) {
    bool s_float = s == EMBER_FLOAT || s == EMBER_DOUBLE || s == EMBER_FLOAT16;
    bool s_ok = s_float || s == EMBER_BOOL || s == EMBER_INT8 || s == EMBER_UINT8 ||
                s == EMBER_INT16 || s == EMBER_UINT16 || s == EMBER_INT32 ||
                s == EMBER_UINT32 || s == EMBER_INT64 || s == EMBER_UINT64;
    if (!s_ok) return false;
    switch (d) {
    case EMBER_FLOAT: case EMBER_DOUBLE: return true;
    case EMBER_BOOL: return !s_float;
    case EMBER_INT8: case EMBER_UINT8: case EMBER_INT16: case EMBER_UINT16: case EMBER_INT32:
    case EMBER_UINT32: case EMBER_INT64: case EMBER_UINT64:
        return true;
    default: return false;
    }
}

static void load_bytes(const unsigned char *src, size_t size, bool swap, unsigned char *out) {
    if (!swap)
        memcpy(out, src, size);
    else
        for (size_t i = 0; i < size; i++) out[i] = src[size - 1 - i];
}

/* One source element as a double (floats) or as a sign and magnitude (integers). */
typedef struct element {
    bool is_float;
    double f;
    bool negative;
    uint64_t magnitude;
} element;

static element read_element(ember_dtype t, const unsigned char *p, bool swap) {
    unsigned char b[8];
    element e = {0};
    switch (t) {
    case EMBER_FLOAT: {
        float v;
        load_bytes(p, 4, swap, b);
        memcpy(&v, b, 4);
        e.is_float = true;
        e.f = v;
        return e;
    }
    case EMBER_DOUBLE:
        load_bytes(p, 8, swap, b);
        memcpy(&e.f, b, 8);
        e.is_float = true;
        return e;
    case EMBER_FLOAT16: {
        uint16_t v;
        load_bytes(p, 2, swap, b);
        memcpy(&v, b, 2);
        e.is_float = true;
        e.f = score_f16_to_f32(v);
        return e;
    }
    default: break;
    }
    int64_t sv = 0;
    uint64_t uv = 0;
    bool is_signed = true;
    switch (t) {
    case EMBER_BOOL: case EMBER_UINT8: uv = p[0]; is_signed = false; break;
    case EMBER_INT8: sv = (int8_t)p[0]; break;
    case EMBER_INT16: { int16_t v; load_bytes(p, 2, swap, b); memcpy(&v, b, 2); sv = v; break; }
    case EMBER_UINT16: { uint16_t v; load_bytes(p, 2, swap, b); memcpy(&v, b, 2); uv = v;
        is_signed = false; break; }
    case EMBER_INT32: { int32_t v; load_bytes(p, 4, swap, b); memcpy(&v, b, 4); sv = v; break; }
    case EMBER_UINT32: { uint32_t v; load_bytes(p, 4, swap, b); memcpy(&v, b, 4); uv = v;
        is_signed = false; break; }
    case EMBER_INT64: load_bytes(p, 8, swap, b); memcpy(&sv, b, 8); break;
    case EMBER_UINT64: load_bytes(p, 8, swap, b); memcpy(&uv, b, 8); is_signed = false; break;
    default: break;
    }
    if (is_signed) {
        e.negative = sv < 0;
        e.magnitude = sv < 0 ? (uint64_t)0 - (uint64_t)sv : (uint64_t)sv;
    } else {
        e.magnitude = uv;
    }
    return e;
}

/* Store e into an integer type with range [min, max] given as sign/magnitude bounds. */
static bool integer_of(element e, int64_t min, uint64_t max, int64_t *sv, uint64_t *uv) {
    bool negative;
    uint64_t mag;
    if (e.is_float) {
        if (!(e.f == floor(e.f)) || fabs(e.f) >= 18446744073709551616.0) return false;
        negative = e.f < 0;
        mag = (uint64_t)fabs(e.f);
    } else {
        negative = e.negative;
        mag = e.magnitude;
    }
    if (negative) {
        if (mag == 0) negative = false;
        else if (min >= 0 || mag > (uint64_t)0 - (uint64_t)min) return false;
    } else if (mag > max) {
        return false;
    }
    *uv = mag;
    *sv = negative ? (int64_t)((uint64_t)0 - mag) : (int64_t)mag;
    return true;
}

bool score_npy_convert(ember_dtype src_type, bool swap, const void *src, ember_dtype dst_type,
                       void *dst, int64_t n, int64_t *bad) {
    if (!swap && src_type == dst_type) {
        size_t size = ember_dtype_size(src_type);
        memcpy(dst, src, (size_t)n * size);
        return true;
    }
    if (!swap && src_type == EMBER_DOUBLE && dst_type == EMBER_FLOAT) {
        const unsigned char *s = src;
        float *restrict d = dst;
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, s + 8 * i, 8);
            d[i] = (float)v;
        }
        return true;
    }
    size_t ssize = src_type == EMBER_BOOL ? 1 : ember_dtype_size(src_type);
    const unsigned char *s = src;
    unsigned char *d = dst;
    for (int64_t i = 0; i < n; i++) {
        element e = read_element(src_type, s + (size_t)i * ssize, swap);
        int64_t sv = 0;
        uint64_t uv = 0;
        bool ok = true;
        switch (dst_type) {
        case EMBER_FLOAT: {
            float v = e.is_float ? (float)e.f
                      : e.negative ? -(float)e.magnitude : (float)e.magnitude;
            memcpy(d + 4 * i, &v, 4);
            break;
        }
        case EMBER_DOUBLE: {
            double v = e.is_float ? e.f : e.negative ? -(double)e.magnitude : (double)e.magnitude;
            memcpy(d + 8 * i, &v, 8);
            break;
        }
        case EMBER_BOOL: d[i] = e.magnitude != 0; break;
        case EMBER_INT8:
            ok = integer_of(e, INT8_MIN, INT8_MAX, &sv, &uv);
            if (ok) ((int8_t *)dst)[i] = (int8_t)sv;
            break;
        case EMBER_UINT8:
            ok = integer_of(e, 0, UINT8_MAX, &sv, &uv);
            if (ok) d[i] = (uint8_t)uv;
            break;
        case EMBER_INT16:
            ok = integer_of(e, INT16_MIN, INT16_MAX, &sv, &uv);
            if (ok) { int16_t v = (int16_t)sv; memcpy(d + 2 * i, &v, 2); }
            break;
        case EMBER_UINT16:
            ok = integer_of(e, 0, UINT16_MAX, &sv, &uv);
            if (ok) { uint16_t v = (uint16_t)uv; memcpy(d + 2 * i, &v, 2); }
            break;
        case EMBER_INT32:
            ok = integer_of(e, INT32_MIN, INT32_MAX, &sv, &uv);
            if (ok) { int32_t v = (int32_t)sv; memcpy(d + 4 * i, &v, 4); }
            break;
        case EMBER_UINT32:
            ok = integer_of(e, 0, UINT32_MAX, &sv, &uv);
            if (ok) { uint32_t v = (uint32_t)uv; memcpy(d + 4 * i, &v, 4); }
            break;
        case EMBER_INT64:
            ok = integer_of(e, INT64_MIN, INT64_MAX, &sv, &uv);
            if (ok) memcpy(d + 8 * i, &sv, 8);
            break;
        case EMBER_UINT64:
            ok = integer_of(e, 0, UINT64_MAX, &sv, &uv);
            if (ok) memcpy(d + 8 * i, &uv, 8);
            break;
        default: ok = false; break;
        }
        if (!ok) {
            *bad = i;
            return false;
        }
    }
    return true;
}
