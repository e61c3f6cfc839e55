/* Output comparison for `ember test` (see test_compare.h). */
#include "test_compare.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef enum element_kind { KIND_FLOAT, KIND_SIGNED, KIND_UNSIGNED, KIND_BOOL } element_kind;

/* One element widened for comparison; integers keep their exact value next to the double. */
typedef struct element {
    double value;
    int64_t s;
    uint64_t u;
} element;

float compare_f16_to_f32(uint16_t bits) {
    uint32_t sign = (uint32_t)(bits >> 15) << 31;
    uint32_t exponent = (bits >> 10) & 0x1f;
    uint32_t mantissa = bits & 0x3ff;
    uint32_t out;
    if (exponent == 0x1f) {
        out = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {
        out = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        out = sign;
    } else {
        /* Subnormal half: value = mantissa * 2^-24, exact in float. */
        float magnitude = (float)mantissa * 0x1p-24f;
        return sign ? -magnitude : magnitude;
    }
    float f;
    memcpy(&f, &out, sizeof f);
    return f;
}

float compare_bf16_to_f32(uint16_t bits) {
    uint32_t out = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &out, sizeof f);
    return f;
}

/* Map sign-magnitude float bits of `width` bits onto a monotonic signed scale (-0 == +0). */
static int64_t ordered_bits(uint64_t bits, int width) {
    uint64_t sign_bit = (uint64_t)1 << (width - 1);
    uint64_t magnitude = bits & (sign_bit - 1);
    return (bits & sign_bit) ? -(int64_t)magnitude : (int64_t)magnitude;
}

static uint64_t ulp_distance(uint64_t a_bits, uint64_t b_bits, int width) {
    if (width == 64) {
        /* Magnitudes fit in 63 bits; their signed difference can need 64, so subtract unsigned. */
        uint64_t sign_bit = (uint64_t)1 << 63;
        uint64_t ma = a_bits & ~sign_bit, mb = b_bits & ~sign_bit;
        bool na = (a_bits & sign_bit) != 0, nb = (b_bits & sign_bit) != 0;
        if (na == nb) return ma > mb ? ma - mb : mb - ma;
        return ma + mb; /* at most 2 * (2^63 - 1) < 2^64 */
    }
    int64_t oa = ordered_bits(a_bits, width), ob = ordered_bits(b_bits, width);
    return oa > ob ? (uint64_t)(oa - ob) : (uint64_t)(ob - oa);
}

uint64_t compare_ulp_f32(float a, float b) {
    uint32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    return ulp_distance(ia, ib, 32);
}

uint64_t compare_ulp_f64(double a, double b) {
    uint64_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    return ulp_distance(ia, ib, 64);
}

bool compare_close(double expected, double got, double rtol, double atol) {
    if (isnan(expected) || isnan(got)) return isnan(expected) && isnan(got);
    if (isinf(expected) || isinf(got)) return expected == got;
    return fabs(got - expected) <= atol + rtol * fabs(expected);
}

static bool dtype_kind(ember_dtype dtype, element_kind *kind) {
    switch (dtype) {
    case EMBER_FLOAT:
    case EMBER_DOUBLE:
    case EMBER_FLOAT16:
    case EMBER_BFLOAT16: *kind = KIND_FLOAT; return true;
    case EMBER_INT8:
    case EMBER_INT16:
    case EMBER_INT32:
    case EMBER_INT64: *kind = KIND_SIGNED; return true;
    case EMBER_UINT8:
    case EMBER_UINT16:
    case EMBER_UINT32:
    case EMBER_UINT64: *kind = KIND_UNSIGNED; return true;
    case EMBER_BOOL: *kind = KIND_BOOL; return true;
    default: return false;
    }
}

/* Raw bits of element i for the floating-point dtypes (for ULP distances). */
static uint64_t float_bits(ember_dtype dtype, const void *data, int64_t i) {
    switch (dtype) {
    case EMBER_FLOAT: {
        uint32_t v;
        memcpy(&v, (const char *)data + i * 4, 4);
        return v;
    }
    case EMBER_DOUBLE: {
        uint64_t v;
        memcpy(&v, (const char *)data + i * 8, 8);
        return v;
    }
    default: {
        uint16_t v;
        memcpy(&v, (const char *)data + i * 2, 2);
        return v;
    }
    }
}

static int float_width(ember_dtype dtype) {
    return dtype == EMBER_FLOAT ? 32 : dtype == EMBER_DOUBLE ? 64 : 16;
}

static element load_element(ember_dtype dtype, const void *data, int64_t i) {
    element e = {0};
    const char *p = data;
    switch (dtype) {
    case EMBER_FLOAT: {
        float v;
        memcpy(&v, p + i * 4, 4);
        e.value = v;
        break;
    }
    case EMBER_DOUBLE: memcpy(&e.value, p + i * 8, 8); break;
    case EMBER_FLOAT16:
    case EMBER_BFLOAT16: {
        uint16_t v;
        memcpy(&v, p + i * 2, 2);
        e.value = dtype == EMBER_FLOAT16 ? compare_f16_to_f32(v) : compare_bf16_to_f32(v);
        break;
    }
    case EMBER_INT8: e.s = ((const int8_t *)data)[i]; break;
    case EMBER_INT16: {
        int16_t v;
        memcpy(&v, p + i * 2, 2);
        e.s = v;
        break;
    }
    case EMBER_INT32: {
        int32_t v;
        memcpy(&v, p + i * 4, 4);
        e.s = v;
        break;
    }
    case EMBER_INT64: memcpy(&e.s, p + i * 8, 8); break;
    case EMBER_UINT8:
    case EMBER_BOOL: e.u = ((const uint8_t *)data)[i]; break;
    case EMBER_UINT16: {
        uint16_t v;
        memcpy(&v, p + i * 2, 2);
        e.u = v;
        break;
    }
    case EMBER_UINT32: {
        uint32_t v;
        memcpy(&v, p + i * 4, 4);
        e.u = v;
        break;
    }
    case EMBER_UINT64: memcpy(&e.u, p + i * 8, 8); break;
    default: break;
    }
    return e;
}

static void format_element(ember_dtype dtype, element_kind kind, element e, char *buf,
                           size_t size) {
    switch (kind) {
    case KIND_FLOAT:
        snprintf(buf, size, dtype == EMBER_DOUBLE ? "%.17g" : "%.9g", e.value);
        break;
    case KIND_SIGNED: snprintf(buf, size, "%lld", (long long)e.s); break;
    case KIND_UNSIGNED: snprintf(buf, size, "%llu", (unsigned long long)e.u); break;
    case KIND_BOOL: snprintf(buf, size, e.u ? "true" : "false"); break;
    }
}

static void format_shape(const ember_tensor *t, char *buf, size_t size) {
    int rank = ember_tensor_rank(t);
    const int64_t *dims = ember_tensor_dims(t);
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < rank && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, d ? ",%lld" : "%lld", (long long)dims[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* |expected - got| and whether the pair is within tolerance, for the integer kinds. Integer
 * differences are taken exactly before widening, so large int64 values do not round to equal. */
static bool integer_pair(element_kind kind, element e, element g, double rtol, double atol,
                         double *diff) {
    if (kind == KIND_SIGNED) {
        if (e.s == g.s) {
            *diff = 0;
            return true;
        }
        uint64_t d = e.s > g.s ? (uint64_t)e.s - (uint64_t)g.s : (uint64_t)g.s - (uint64_t)e.s;
        *diff = (double)d;
        return *diff <= atol + rtol * fabs((double)e.s);
    }
    if (e.u == g.u) {
        *diff = 0;
        return true;
    }
    *diff = (double)(e.u > g.u ? e.u - g.u : g.u - e.u);
    return *diff <= atol + rtol * (double)e.u;
}

static bool compare_tensor_data(const ember_tensor *expected, const ember_tensor *got,
                                double rtol, double atol, compare_result *result) {
    memset(result, 0, sizeof *result);
    result->worst_flat_index = -1;
    ember_dtype dtype = ember_tensor_dtype(expected);
    if (ember_tensor_dtype(got) != dtype) {
        result->layout_mismatch = true;
        snprintf(result->reason, sizeof result->reason, "dtype: expected %s, got %s",
                 ember_dtype_name(dtype), ember_dtype_name(ember_tensor_dtype(got)));
        return false;
    }
    int rank = ember_tensor_rank(expected);
    bool same_shape = ember_tensor_rank(got) == rank;
    for (int d = 0; same_shape && d < rank; d++)
        same_shape = ember_tensor_dims(got)[d] == ember_tensor_dims(expected)[d];
    if (!same_shape) {
        char want[96], have[96];
        format_shape(expected, want, sizeof want);
        format_shape(got, have, sizeof have);
        result->layout_mismatch = true;
        snprintf(result->reason, sizeof result->reason, "shape: expected %s, got %s", want,
                 have);
        return false;
    }
    if (dtype == EMBER_STRING) {
        int64_t count = ember_tensor_element_count(expected);
        result->element_count = count;
        for (int64_t i = 0; i < count; i++) {
            const char *e = ember_tensor_string(expected, (size_t)i);
            const char *g = ember_tensor_string(got, (size_t)i);
            if (e && g && strcmp(e, g) == 0) continue;
            if (result->mismatch_count++ == 0) {
                result->worst_flat_index = i;
                result->worst_rank = rank;
                int64_t rest = i;
                for (int d = rank - 1; d >= 0; d--) {
                    int64_t dim = ember_tensor_dims(expected)[d];
                    result->worst_index[d] = dim ? rest % dim : 0;
                    rest = dim ? rest / dim : 0;
                }
                snprintf(result->worst_expected, sizeof result->worst_expected, "\"%.40s\"",
                         e ? e : "");
                snprintf(result->worst_got, sizeof result->worst_got, "\"%.40s\"", g ? g : "");
            }
        }
        result->equal = result->mismatch_count == 0;
        if (!result->equal)
            snprintf(result->reason, sizeof result->reason, "%lld of %lld strings differ",
                     (long long)result->mismatch_count, (long long)count);
        return result->equal;
    }
    element_kind kind;
    if (!dtype_kind(dtype, &kind)) {
        result->layout_mismatch = true;
        snprintf(result->reason, sizeof result->reason, "cannot compare %s tensors",
                 ember_dtype_name(dtype));
        return false;
    }
    int64_t count = ember_tensor_element_count(expected);
    const void *want = ember_tensor_const_data(expected);
    const void *have = ember_tensor_const_data(got);
    result->element_count = count;
    result->has_ulp = kind == KIND_FLOAT;

    double worst_score = -1, worst_diff = -1;
    bool max_is_nan = false;
    for (int64_t i = 0; i < count; i++) {
        element e = load_element(dtype, want, i), g = load_element(dtype, have, i);
        double diff, tolerance = 0;
        bool close;
        if (kind == KIND_FLOAT) {
            close = compare_close(e.value, g.value, rtol, atol);
            bool e_nan = isnan(e.value), g_nan = isnan(g.value);
            if (e_nan || g_nan) {
                diff = close ? 0 : NAN;
                if (!close) result->ulp_unbounded = true;
            } else if (isinf(e.value) || isinf(g.value)) {
                diff = close ? 0 : INFINITY;
            } else {
                diff = fabs(g.value - e.value);
                tolerance = atol + rtol * fabs(e.value);
            }
            if (!e_nan && !g_nan) {
                uint64_t ulp = ulp_distance(float_bits(dtype, want, i), float_bits(dtype, have, i),
                                            float_width(dtype));
                if (ulp > result->max_ulp) result->max_ulp = ulp;
            }
        } else if (kind == KIND_BOOL) {
            close = (e.u != 0) == (g.u != 0);
            diff = close ? 0 : 1;
        } else {
            close = integer_pair(kind, e, g, rtol, atol, &diff);
            tolerance = atol + rtol * (kind == KIND_SIGNED ? fabs((double)e.s) : (double)e.u);
        }
        if (isnan(diff)) max_is_nan = true;
        else if (diff > result->max_abs_diff) result->max_abs_diff = diff;
        if (close) continue;

        result->mismatch_count++;
        /* Rank by how far outside its tolerance the element is; NaN/inf mismatches first. */
        double ranked_diff = isnan(diff) ? INFINITY : diff;
        double score = tolerance > 0 ? ranked_diff / tolerance : INFINITY;
        if (score > worst_score || (score == worst_score && ranked_diff > worst_diff)) {
            worst_score = score;
            worst_diff = ranked_diff;
            result->worst_flat_index = i;
            format_element(dtype, kind, e, result->worst_expected,
                           sizeof result->worst_expected);
            format_element(dtype, kind, g, result->worst_got, sizeof result->worst_got);
        }
    }
    if (max_is_nan) result->max_abs_diff = NAN;
    result->equal = result->mismatch_count == 0;
    if (!result->equal) {
        const int64_t *dims = ember_tensor_dims(expected);
        int64_t rest = result->worst_flat_index;
        result->worst_rank = rank;
        for (int d = rank - 1; d >= 0; d--) {
            result->worst_index[d] = dims[d] > 0 ? rest % dims[d] : 0;
            rest = dims[d] > 0 ? rest / dims[d] : 0;
        }
        snprintf(result->reason, sizeof result->reason, "%lld of %lld elements differ",
                 (long long)result->mismatch_count, (long long)count);
    }
    return result->equal;
}

static const char *kind_name(ember_value_kind kind) {
    return kind == EMBER_KIND_SEQUENCE ? "sequence" : kind == EMBER_KIND_OPTIONAL ? "optional"
                                                                                 : "tensor";
}

static bool layout_fail(compare_result *result, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool layout_fail(compare_result *result, const char *fmt, ...) {
    memset(result, 0, sizeof *result);
    result->worst_flat_index = -1;
    result->layout_mismatch = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(result->reason, sizeof result->reason, fmt, ap);
    va_end(ap);
    return false;
}

/* Prefix a nested comparison's reason with where it happened ("item 2: "). */
static void prefix_reason(compare_result *result, const char *prefix) {
    char reason[sizeof result->reason];
    snprintf(reason, sizeof reason, "%s%s", prefix, result->reason);
    memcpy(result->reason, reason, sizeof reason);
}

/* Sequences match item by item (same length); optionals when both hold nothing or both hold
 * matching values. The element type of an empty sequence or optional read from a file may be
 * unknown (undefined): then only the kind and length count. */
bool compare_tensors(const ember_tensor *expected, const ember_tensor *got, double rtol,
                     double atol, compare_result *result) {
    ember_value_kind kind = ember_tensor_kind(expected);
    if (ember_tensor_kind(got) != kind)
        return layout_fail(result, "kind: expected a %s, got a %s", kind_name(kind),
                           kind_name(ember_tensor_kind(got)));
    if (kind == EMBER_KIND_TENSOR) return compare_tensor_data(expected, got, rtol, atol, result);
    ember_dtype want = ember_tensor_dtype(expected), have = ember_tensor_dtype(got);
    if (want != EMBER_UNDEFINED && have != EMBER_UNDEFINED && want != have)
        return layout_fail(result, "element type: expected %s, got %s", ember_dtype_name(want),
                           ember_dtype_name(have));
    if (kind == EMBER_KIND_OPTIONAL) {
        int want_has = ember_optional_has_value(expected), got_has = ember_optional_has_value(got);
        if (want_has != got_has)
            return layout_fail(result, "optional: expected %s, got %s",
                               want_has ? "a value" : "none", got_has ? "a value" : "none");
        if (!want_has) {
            memset(result, 0, sizeof *result);
            result->equal = true;
            return true;
        }
        ember_tensor *a = NULL, *b = NULL;
        bool ok = ember_optional_get(expected, &a, NULL) == EMBER_OK &&
                  ember_optional_get(got, &b, NULL) == EMBER_OK;
        if (ok) ok = compare_tensors(a, b, rtol, atol, result);
        else layout_fail(result, "optional: cannot read the value");
        if (!ok) prefix_reason(result, "optional value: ");
        ember_tensor_free(a);
        ember_tensor_free(b);
        return ok;
    }
    size_t n = ember_sequence_length(expected);
    if (ember_sequence_length(got) != n)
        return layout_fail(result, "sequence length: expected %zu, got %zu", n,
                           ember_sequence_length(got));
    memset(result, 0, sizeof *result);
    result->equal = true;
    for (size_t i = 0; i < n; i++) {
        ember_tensor *a = NULL, *b = NULL;
        bool ok = ember_sequence_get(expected, i, &a, NULL) == EMBER_OK &&
                  ember_sequence_get(got, i, &b, NULL) == EMBER_OK;
        if (ok) ok = compare_tensors(a, b, rtol, atol, result);
        else layout_fail(result, "sequence: cannot read item %zu", i);
        ember_tensor_free(a);
        ember_tensor_free(b);
        if (!ok) {
            char prefix[48];
            snprintf(prefix, sizeof prefix, "sequence item %zu: ", i);
            prefix_reason(result, prefix);
            return false;
        }
    }
    return true;
}
