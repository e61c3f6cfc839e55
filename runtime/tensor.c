/* Tensor basics: sizes, allocation, dtype conversion, broadcasting. */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t em_dtype_size(ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT: case EMBER_INT32: case EMBER_UINT32: return 4;
    case EMBER_UINT8: case EMBER_INT8: case EMBER_BOOL: return 1;
    case EMBER_UINT16: case EMBER_INT16: case EMBER_FLOAT16: case EMBER_BFLOAT16: return 2;
    case EMBER_INT64: case EMBER_DOUBLE: case EMBER_UINT64: return 8;
    default: return 0;
    }
}

const char *em_dtype_name(ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT: return "float32";
    case EMBER_UINT8: return "uint8";
    case EMBER_INT8: return "int8";
    case EMBER_UINT16: return "uint16";
    case EMBER_INT16: return "int16";
    case EMBER_INT32: return "int32";
    case EMBER_INT64: return "int64";
    case EMBER_STRING: return "string";
    case EMBER_BOOL: return "bool";
    case EMBER_FLOAT16: return "float16";
    case EMBER_DOUBLE: return "float64";
    case EMBER_UINT32: return "uint32";
    case EMBER_UINT64: return "uint64";
    case EMBER_BFLOAT16: return "bfloat16";
    case EMBER_UNDEFINED: return "undefined";
    }
    return "unknown";
}

bool em_dtype_is_float(ember_dtype dt) {
    return dt == EMBER_FLOAT || dt == EMBER_DOUBLE || dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16;
}
bool em_dtype_is_signed_int(ember_dtype dt) {
    return dt == EMBER_INT8 || dt == EMBER_INT16 || dt == EMBER_INT32 || dt == EMBER_INT64;
}
bool em_dtype_is_unsigned_int(ember_dtype dt) {
    return dt == EMBER_UINT8 || dt == EMBER_UINT16 || dt == EMBER_UINT32 || dt == EMBER_UINT64;
}

int64_t em_shape_numel(const int64_t *dims, int rank) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return -1;
        if (dims[i] != 0 && n > INT64_MAX / dims[i]) return -1;
        n *= dims[i];
    }
    return n;
}

int64_t em_numel(const em_tensor *t) {
    if (t->rank < 0) return -1;
    if (t->kind != EMBER_KIND_TENSOR) return 0; /* no elements of its own */
    return em_shape_numel(t->dims, t->rank);
}

size_t em_nbytes(const em_tensor *t) {
    int64_t n = em_numel(t);
    if (n < 0) return 0;
    return (size_t)n * em_dtype_size(t->dtype);
}

void *em_aligned_alloc_uninit(size_t bytes) {
    size_t size = (bytes + EM_ALIGN - 1) / EM_ALIGN * EM_ALIGN;
    if (size == 0) size = EM_ALIGN;
    if (size < bytes) return NULL;
    return aligned_alloc(EM_ALIGN, size);
}

void *em_aligned_alloc(size_t bytes) {
    void *p = em_aligned_alloc_uninit(bytes);
    if (p) memset(p, 0, (bytes + EM_ALIGN - 1) / EM_ALIGN * EM_ALIGN);
    return p;
}

void em_aligned_free(void *p) { free(p); }

void em_tensor_set_shape(em_tensor *t, ember_dtype dt, const int64_t *dims, int rank) {
    t->dtype = dt;
    t->rank = rank;
    t->kind = EMBER_KIND_TENSOR;
    t->elem_kind = EMBER_KIND_TENSOR;
    for (int i = 0; i < rank && i < EM_MAX_RANK; i++) t->dims[i] = dims[i];
}

em_tensor *em_tensor_new(ember_dtype dt, const int64_t *dims, int rank, ember_error *err) {
    if (rank < 0 || rank > EM_MAX_RANK) {
        em_fail(err, EMBER_ERR_UNSUPPORTED, "tensor rank %d is above the maximum %d", rank,
                EM_MAX_RANK);
        return NULL;
    }
    int64_t n = em_shape_numel(dims, rank);
    size_t es = em_dtype_size(dt);
    if (n < 0 || es == 0 || (uint64_t)n > SIZE_MAX / es) {
        em_fail(err, n < 0 ? EMBER_ERR_LIMIT : EMBER_ERR_UNSUPPORTED,
                es == 0 ? "tensor of type %s is not supported" : "tensor size overflows (%s)",
                em_dtype_name(dt));
        return NULL;
    }
    em_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    em_tensor_set_shape(t, dt, dims, rank);
    t->capacity = (size_t)n * es;
    t->data = em_aligned_alloc(t->capacity);
    if (!t->data) {
        free(t);
        em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes",
                (size_t)n * es);
        return NULL;
    }
    t->owns_data = true;
    return t;
}

em_tensor *em_tensor_clone(const em_tensor *src, ember_error *err) {
    if (em_value_boxed(src)) {
        em_tensor *t = calloc(1, sizeof *t);
        if (!t) {
            em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
            return NULL;
        }
        if (em_value_copy(t, src, err) != EMBER_OK) {
            free(t);
            return NULL;
        }
        return t;
    }
    em_tensor *t = em_tensor_new(src->dtype, src->dims, src->rank, err);
    if (t && src->data) memcpy(t->data, src->data, em_nbytes(src));
    return t;
}

void em_tensor_free(em_tensor *t) {
    if (!t) return;
    em_value_release(t);
    free(t);
}

/* ---- sequences and optionals ---- */

const char *em_kind_name(ember_value_kind kind) {
    switch (kind) {
    case EMBER_KIND_TENSOR: return "tensor";
    case EMBER_KIND_SEQUENCE: return "sequence";
    case EMBER_KIND_OPTIONAL: return "optional";
    }
    return "unknown kind";
}

void em_value_set_type(em_tensor *t, ember_value_kind kind, ember_value_kind elem_kind,
                       ember_dtype dtype) {
    t->kind = kind;
    t->elem_kind = kind == EMBER_KIND_OPTIONAL ? elem_kind : EMBER_KIND_TENSOR;
    t->dtype = dtype;
    t->rank = 0;
}

bool em_same_kind(const em_tensor *a, const em_tensor *b) {
    return a->kind == b->kind && (a->kind != EMBER_KIND_OPTIONAL || a->elem_kind == b->elem_kind);
}

bool em_same_type(const em_tensor *a, const em_tensor *b) {
    return a->kind == b->kind && a->dtype == b->dtype &&
           (a->kind != EMBER_KIND_OPTIONAL || a->elem_kind == b->elem_kind);
}

em_tensor *em_string_tensor_new(const int64_t *dims, int rank, ember_error *err) {
    int64_t n = rank >= 0 && rank <= EM_MAX_RANK ? em_shape_numel(dims, rank) : -1;
    if (n < 0 || (uint64_t)n > SIZE_MAX / sizeof(char *) / 2) {
        em_fail(err, EMBER_ERR_LIMIT, "string tensor shape is invalid or too large");
        return NULL;
    }
    em_tensor *t = calloc(1, sizeof *t);
    size_t bytes = (size_t)n * sizeof(char *);
    void *data = em_aligned_alloc(bytes ? bytes : 1);
    if (!t || !data) {
        free(t);
        em_aligned_free(data);
        em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    em_tensor_set_shape(t, EMBER_STRING, dims, rank);
    t->data = data;
    t->capacity = bytes;
    t->owns_data = true;
    return t;
}

const char *em_string_at(const em_tensor *t, int64_t i) {
    const char *const *s = t->data;
    return s && s[i] ? s[i] : "";
}

ember_status em_string_set(em_tensor *t, int64_t i, const char *s, size_t len, ember_error *err) {
    char **slots = t->data;
    char *copy = malloc(len + 1);
    if (!copy) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    if (len) memcpy(copy, s, len);
    copy[len] = '\0';
    free(slots[i]);
    slots[i] = copy;
    return EMBER_OK;
}

void em_value_release(em_tensor *t) {
    if (t->owns_data && t->data) {
        if (t->kind == EMBER_KIND_TENSOR && t->dtype == EMBER_STRING) {
            char **s = t->data;
            for (size_t i = 0; i < t->capacity / sizeof(char *); i++) free(s[i]);
            em_aligned_free(t->data);
        } else if (t->kind == EMBER_KIND_SEQUENCE) {
            em_seq *s = t->data;
            for (int64_t i = 0; i < s->n; i++) em_tensor_free(s->items[i]);
            free(s->items);
            free(s);
        } else if (t->kind == EMBER_KIND_OPTIONAL) {
            em_tensor_free(t->data);
        } else {
            em_aligned_free(t->data);
        }
    }
    t->data = NULL;
    t->capacity = 0;
    t->owns_data = false;
}

ember_status em_value_copy(em_tensor *dst, const em_tensor *src, ember_error *err) {
    *dst = *src;
    dst->data = NULL;
    dst->capacity = 0;
    dst->owns_data = false;
    if (src->kind == EMBER_KIND_TENSOR && src->dtype == EMBER_STRING) {
        if (src->rank < 0) return EMBER_OK;
        em_tensor *t = em_string_tensor_new(src->dims, src->rank, err);
        if (!t) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        int64_t n = em_numel(src);
        for (int64_t i = 0; src->data && i < n; i++) {
            const char *s = ((char *const *)src->data)[i];
            if (s && em_string_set(t, i, s, strlen(s), err) != EMBER_OK) {
                em_tensor_free(t);
                return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            }
        }
        *dst = *t;
        free(t);
        return EMBER_OK;
    }
    if (src->kind == EMBER_KIND_TENSOR) {
        size_t bytes = em_nbytes(src);
        if (src->rank < 0) return EMBER_OK;
        dst->data = em_aligned_alloc(bytes ? bytes : 1);
        if (!dst->data) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        if (bytes && src->data) memcpy(dst->data, src->data, bytes);
        dst->capacity = bytes ? bytes : 1;
        dst->owns_data = true;
        return EMBER_OK;
    }
    if (!src->data) return EMBER_OK; /* empty optional, or type only */
    if (src->kind == EMBER_KIND_OPTIONAL) {
        em_tensor *v = em_tensor_clone(src->data, err);
        if (!v) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        dst->data = v;
        dst->owns_data = true;
        return EMBER_OK;
    }
    const em_seq *s = src->data;
    em_seq *d = calloc(1, sizeof *d);
    if (!d) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    dst->data = d;
    dst->owns_data = true;
    d->items = calloc((size_t)s->n + 1, sizeof *d->items);
    if (!d->items) {
        em_value_release(dst);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    d->cap = s->n + 1;
    for (int64_t i = 0; i < s->n; i++) {
        d->items[i] = em_tensor_clone(s->items[i], err);
        if (!d->items[i]) {
            em_value_release(dst);
            return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        }
        d->n = i + 1;
    }
    return EMBER_OK;
}

em_tensor *em_seq_new(ember_dtype elem, ember_error *err) {
    em_tensor *t = calloc(1, sizeof *t);
    em_seq *s = calloc(1, sizeof *s);
    if (!t || !s) {
        free(t);
        free(s);
        em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    em_value_set_type(t, EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR, elem);
    t->data = s;
    t->owns_data = true;
    return t;
}

int64_t em_seq_length(const em_tensor *seq) {
    const em_seq *s = seq->data;
    return s ? s->n : 0;
}

em_tensor *em_seq_at(const em_tensor *seq, int64_t i) {
    const em_seq *s = seq->data;
    return s && i >= 0 && i < s->n ? s->items[i] : NULL;
}

ember_status em_seq_insert(em_tensor *seq, int64_t pos, em_tensor *item, ember_error *err) {
    em_seq *s = seq->data;
    if (!s || pos < 0 || pos > s->n) {
        em_tensor_free(item);
        return em_fail(err, EMBER_ERR_RUNTIME, "sequence position %lld is out of range",
                       (long long)pos);
    }
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 8;
        em_tensor **items = realloc(s->items, sizeof *items * (size_t)cap);
        if (!items) {
            em_tensor_free(item);
            return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        }
        s->items = items;
        s->cap = cap;
    }
    memmove(s->items + pos + 1, s->items + pos, sizeof *s->items * (size_t)(s->n - pos));
    s->items[pos] = item;
    s->n++;
    return EMBER_OK;
}

void em_seq_erase(em_tensor *seq, int64_t pos) {
    em_seq *s = seq->data;
    if (!s || pos < 0 || pos >= s->n) return;
    em_tensor_free(s->items[pos]);
    memmove(s->items + pos, s->items + pos + 1, sizeof *s->items * (size_t)(s->n - pos - 1));
    s->n--;
}

em_tensor *em_optional_new(ember_value_kind elem_kind, ember_dtype dtype, em_tensor *value,
                           ember_error *err) {
    em_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        em_tensor_free(value);
        em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        return NULL;
    }
    em_value_set_type(t, EMBER_KIND_OPTIONAL, elem_kind, dtype);
    t->data = value;
    t->owns_data = value != NULL;
    return t;
}

bool em_same_shape(const em_tensor *a, const em_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

const char *em_shape_str(const em_tensor *t, char *buf, size_t size) {
    if (t->kind == EMBER_KIND_SEQUENCE || (t->kind == EMBER_KIND_OPTIONAL &&
                                           t->elem_kind == EMBER_KIND_SEQUENCE)) {
        snprintf(buf, size, "%s%s<%s>%s", t->kind == EMBER_KIND_OPTIONAL ? "optional<" : "",
                 "sequence", em_dtype_name(t->dtype), t->kind == EMBER_KIND_OPTIONAL ? ">" : "");
        return buf;
    }
    if (t->kind == EMBER_KIND_OPTIONAL) {
        snprintf(buf, size, "optional<%s>", em_dtype_name(t->dtype));
        return buf;
    }
    size_t used = (size_t)snprintf(buf, size, "%s", em_dtype_name(t->dtype));
    if (t->rank < 0) {
        if (used < size) snprintf(buf + used, size - used, "[?]");
        return buf;
    }
    if (used < size) used += (size_t)snprintf(buf + used, size - used, "[");
    for (int i = 0; i < t->rank && used < size; i++) {
        if (t->dims[i] < 0)
            used += (size_t)snprintf(buf + used, size - used, "%s?", i ? "," : "");
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "",
                                     (long long)t->dims[i]);
    }
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* ---- half precision ---- */

float em_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else { /* subnormal: normalize */
            int e = -1;
            do {
                e++;
                mant <<= 1;
            } while ((mant & 0x400) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t em_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t exp = (x >> 23) & 0xff;
    uint32_t mant = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);
    if (e <= 0) {
        if (e < -10) return (uint16_t)sign;
        mant |= 0x800000;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++; /* may carry into inf: right */
    return (uint16_t)(sign | half);
}

float em_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t em_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    uint32_t lsb = (x >> 16) & 1;
    x += 0x7fff + lsb;
    return (uint16_t)(x >> 16);
}

/* ---- generic element access ---- */

double em_get_f64(const em_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case EMBER_FLOAT: return ((const float *)d)[i];
    case EMBER_DOUBLE: return ((const double *)d)[i];
    case EMBER_FLOAT16: return em_f16_to_f32(((const uint16_t *)d)[i]);
    case EMBER_BFLOAT16: return em_bf16_to_f32(((const uint16_t *)d)[i]);
    case EMBER_INT8: return ((const int8_t *)d)[i];
    case EMBER_UINT8: return ((const uint8_t *)d)[i];
    case EMBER_BOOL: return ((const uint8_t *)d)[i] != 0;
    case EMBER_INT16: return ((const int16_t *)d)[i];
    case EMBER_UINT16: return ((const uint16_t *)d)[i];
    case EMBER_INT32: return ((const int32_t *)d)[i];
    case EMBER_UINT32: return ((const uint32_t *)d)[i];
    case EMBER_INT64: return (double)((const int64_t *)d)[i];
    case EMBER_UINT64: return (double)((const uint64_t *)d)[i];
    default: return 0;
    }
}

int64_t em_get_i64(const em_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case EMBER_INT64: return ((const int64_t *)d)[i];
    case EMBER_INT32: return ((const int32_t *)d)[i];
    case EMBER_UINT64: return (int64_t)((const uint64_t *)d)[i];
    case EMBER_INT8: return ((const int8_t *)d)[i];
    case EMBER_UINT8: return ((const uint8_t *)d)[i];
    case EMBER_BOOL: return ((const uint8_t *)d)[i] != 0;
    case EMBER_INT16: return ((const int16_t *)d)[i];
    case EMBER_UINT16: return ((const uint16_t *)d)[i];
    case EMBER_UINT32: return ((const uint32_t *)d)[i];
    default: {
        double v = em_get_f64(t, i);
        if (isnan(v)) return 0;
        if (v >= 9.2233720368547758e18) return INT64_MAX;
        if (v <= -9.2233720368547758e18) return INT64_MIN;
        return (int64_t)v;
    }
    }
}

void em_set_f64(em_tensor *t, int64_t i, double v) {
    em_convert((char *)t->data + (size_t)i * em_dtype_size(t->dtype), t->dtype, &v, EMBER_DOUBLE,
               1);
}

/* Cast semantics: float -> integer truncates toward zero (out of range is undefined in ONNX;
 * we saturate to avoid C undefined behaviour), anything -> bool is != 0. */
#define EM_CONVERT_LOOP(DT, ST, EXPR)                                                              \
    do {                                                                                           \
        DT *restrict o_ = (DT *)dst;                                                               \
        const ST *restrict s_ = (const ST *)src;                                                   \
        for (int64_t k = 0; k < n; k++) {                                                          \
            ST v = s_[k];                                                                          \
            o_[k] = (DT)(EXPR);                                                                    \
        }                                                                                          \
    } while (0)

static int64_t sat_i64(double v, double lo, double hi) {
    if (isnan(v)) return 0;
    if (v < lo) return (int64_t)lo;
    if (v > hi) return (int64_t)hi;
    return (int64_t)v;
}

static uint64_t sat_u64(double v, double hi) {
    if (isnan(v) || v <= 0) return (uint64_t)(v <= -1 ? (int64_t)sat_i64(v, -9.2233720368547758e18, 0) : 0);
    if (v >= hi) return (uint64_t)hi;
    return (uint64_t)v;
}

static void to_double(double *o, const void *src, ember_dtype st, int64_t n) {
    em_tensor t = {.dtype = st, .data = (void *)src};
    for (int64_t k = 0; k < n; k++) o[k] = em_get_f64(&t, k);
}

void em_convert(void *dst, ember_dtype dt, const void *src, ember_dtype st, int64_t n) {
    if (n <= 0) return;
    if (dt == st) {
        memcpy(dst, src, (size_t)n * em_dtype_size(dt));
        return;
    }
    /* Fast common paths. */
    if (dt == EMBER_FLOAT && st == EMBER_DOUBLE) { EM_CONVERT_LOOP(float, double, v); return; }
    if (dt == EMBER_DOUBLE && st == EMBER_FLOAT) { EM_CONVERT_LOOP(double, float, v); return; }
    if (dt == EMBER_FLOAT && st == EMBER_INT64) { EM_CONVERT_LOOP(float, int64_t, v); return; }
    if (dt == EMBER_FLOAT && st == EMBER_INT32) { EM_CONVERT_LOOP(float, int32_t, v); return; }
    if (dt == EMBER_INT64 && st == EMBER_INT32) { EM_CONVERT_LOOP(int64_t, int32_t, v); return; }
    if (dt == EMBER_INT32 && st == EMBER_INT64) { EM_CONVERT_LOOP(int32_t, int64_t, v); return; }
    if (dt == EMBER_FLOAT && st == EMBER_UINT8) { EM_CONVERT_LOOP(float, uint8_t, v); return; }
    if (dt == EMBER_FLOAT && st == EMBER_FLOAT16) {
        EM_CONVERT_LOOP(float, uint16_t, em_f16_to_f32(v));
        return;
    }
    if (dt == EMBER_FLOAT16 && st == EMBER_FLOAT) {
        EM_CONVERT_LOOP(uint16_t, float, em_f32_to_f16(v));
        return;
    }
    if (dt == EMBER_BOOL && st == EMBER_FLOAT) { EM_CONVERT_LOOP(uint8_t, float, v != 0); return; }
    /* Integer -> integer keeps exact bits (wrap-around as C casts do for two's complement). */
    bool s_int = em_dtype_is_signed_int(st) || em_dtype_is_unsigned_int(st) || st == EMBER_BOOL;
    bool d_int = em_dtype_is_signed_int(dt) || em_dtype_is_unsigned_int(dt);
    int64_t chunk = 256;
    double buf[256];
    em_tensor s = {.dtype = st, .data = (void *)src};
    for (int64_t base = 0; base < n; base += chunk) {
        int64_t m = n - base < chunk ? n - base : chunk;
        if (s_int && d_int) {
            for (int64_t k = 0; k < m; k++) {
                uint64_t bits = em_dtype_is_unsigned_int(st)
                                    ? (uint64_t)em_get_i64(&s, base + k)
                                    : (uint64_t)em_get_i64(&s, base + k);
                if (st == EMBER_UINT64) bits = ((const uint64_t *)src)[base + k];
                char *o = (char *)dst + (size_t)(base + k) * em_dtype_size(dt);
                switch (dt) {
                case EMBER_INT8: case EMBER_UINT8: *(uint8_t *)o = (uint8_t)bits; break;
                case EMBER_INT16: case EMBER_UINT16: memcpy(o, &(uint16_t){(uint16_t)bits}, 2); break;
                case EMBER_INT32: case EMBER_UINT32: memcpy(o, &(uint32_t){(uint32_t)bits}, 4); break;
                default: memcpy(o, &bits, 8); break;
                }
            }
            continue;
        }
        to_double(buf, (const char *)src + (size_t)base * em_dtype_size(st), st, m);
        char *o = (char *)dst + (size_t)base * em_dtype_size(dt);
        for (int64_t k = 0; k < m; k++) {
            double v = buf[k];
            switch (dt) {
            case EMBER_FLOAT: ((float *)o)[k] = (float)v; break;
            case EMBER_DOUBLE: ((double *)o)[k] = v; break;
            case EMBER_FLOAT16: ((uint16_t *)o)[k] = em_f32_to_f16((float)v); break;
            case EMBER_BFLOAT16: ((uint16_t *)o)[k] = em_f32_to_bf16((float)v); break;
            case EMBER_BOOL: ((uint8_t *)o)[k] = v != 0; break;
            case EMBER_INT8: ((int8_t *)o)[k] = (int8_t)sat_i64(v, -9.2233720368547758e18, 9.2233720368547748e18); break;
            case EMBER_UINT8: ((uint8_t *)o)[k] = (uint8_t)sat_i64(v, -9.2233720368547758e18, 9.2233720368547748e18); break;
            case EMBER_INT16: ((int16_t *)o)[k] = (int16_t)sat_i64(v, -9.2233720368547758e18, 9.2233720368547748e18); break;
            case EMBER_UINT16: ((uint16_t *)o)[k] = (uint16_t)sat_i64(v, -9.2233720368547758e18, 9.2233720368547748e18); break;
            case EMBER_INT32: ((int32_t *)o)[k] = (int32_t)sat_i64(v, -9.2233720368547758e18, 9.2233720368547748e18); break;
            case EMBER_UINT32: ((uint32_t *)o)[k] = (uint32_t)sat_i64(v, -9.2233720368547758e18, 9.2233720368547748e18); break;
            case EMBER_INT64: ((int64_t *)o)[k] = sat_i64(v, -9.2233720368547758e18, 9.2233720368547748e18); break;
            case EMBER_UINT64: ((uint64_t *)o)[k] = sat_u64(v, 1.8446744073709550e19); break;
            default: break;
            }
        }
    }
}

void em_strides(const int64_t *dims, int rank, int64_t *strides) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

bool em_broadcast_shape(const int64_t *a, int ra, const int64_t *b, int rb, int64_t *out,
                        int *rout) {
    int r = ra > rb ? ra : rb;
    if (r > EM_MAX_RANK) return false;
    for (int i = 0; i < r; i++) {
        int64_t da = i < r - ra ? 1 : a[i - (r - ra)];
        int64_t db = i < r - rb ? 1 : b[i - (r - rb)];
        if (da == db || db == 1) out[i] = da;
        else if (da == 1) out[i] = db;
        else if (da < 0 || db < 0) out[i] = -1; /* unknown during static inference */
        else return false;
    }
    *rout = r;
    return true;
}

/* Clamp start/end for one axis of size dim and count the elements (spec of Slice-10+). */
void em_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *out_start,
                   int64_t *out_count) {
    if (dim == 0) {
        *out_start = 0;
        *out_count = 0;
        return;
    }
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *out_count = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        uint64_t ustep = (uint64_t)0 - (uint64_t)step; /* -step without overflow at INT64_MIN */
        *out_count = start > end ? (int64_t)((uint64_t)(start - end - 1) / ustep) + 1 : 0;
    }
    *out_start = start;
}
