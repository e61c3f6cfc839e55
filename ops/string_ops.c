/* String tensors: Cast to and from strings (called by Cast / CastLike in shape.c) and
 * StringNormalizer.
 *
 * A string tensor's elements are owned NUL-terminated heap strings (runtime/tensor.h); these
 * kernels are EM_OP_STRINGS, so string outputs reach `run` unallocated and run gives them a
 * tensor from em_string_tensor_new.
 *
 * Number -> string: the spec asks for a plain representation ("314.15926"). ember writes the
 * shortest decimal that reads back as the same value (9 significant digits at most for
 * float32, 17 for float64), positional for 1e-4 <= |x| < 1e16 and otherwise scientific with a
 * two-digit exponent ("1e-05"), with "nan", "inf", "-inf": the form numpy's str() gives, which
 * is how the ONNX test data was made. Integers print in decimal, bools as "1" / "0".
 * String -> number: decimal or scientific notation; "INF", "+INF", "-INF" and "NaN" in any case
 * are the special values. A string that is not a number is refused (the spec leaves it
 * undefined); strings cast to integer types are parsed as numbers and truncated. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "string_ops.h"

static const char *desc(const em_node *node, char *buf, size_t size) {
    return em_node_desc(node, buf, size);
}

/* ---------------------------------------------------------------------------------------------
 * Number -> string
 * ------------------------------------------------------------------------------------------- */

/* Shortest round-trip decimal of v: digits (no dot, no trailing zeros) and the exponent of the
 * first digit, so that v = 0.d1d2... * 10^(exp + 1). */
static void shortest_digits(double v, bool single, char *digits, int *exp) {
    char tmp[48];
    int max = single ? 9 : 17;
    for (int p = 1; p <= max; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p - 1, v);
        bool same = single ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v;
        if (same) break;
    }
    /* tmp is "[-]d.ddde[+-]xx" */
    const char *p = tmp[0] == '-' ? tmp + 1 : tmp;
    int n = 0;
    for (; *p && *p != 'e'; p++)
        if (isdigit((unsigned char)*p)) digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0') n--;
    digits[n] = '\0';
    *exp = *p == 'e' ? atoi(p + 1) : 0;
}

void em_format_number(double v, bool single, char *buf, size_t size) {
    if (isnan(v)) {
        snprintf(buf, size, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v < 0 ? "-inf" : "inf");
        return;
    }
    const char *sign = signbit(v) ? "-" : "";
    if (v == 0) {
        snprintf(buf, size, "%s0.0", sign);
        return;
    }
    char digits[32];
    int exp;
    shortest_digits(fabs(v), single, digits, &exp);
    int n = (int)strlen(digits);
    double mag = fabs(v);
    if (mag >= 1e-4 && mag < 1e16) {
        char out[64];
        int k = 0;
        if (exp >= 0) {
            for (int i = 0; i <= exp; i++) out[k++] = i < n ? digits[i] : '0';
            out[k++] = '.';
            if (n > exp + 1)
                for (int i = exp + 1; i < n; i++) out[k++] = digits[i];
            else out[k++] = '0';
        } else {
            out[k++] = '0';
            out[k++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[k++] = '0';
            for (int i = 0; i < n; i++) out[k++] = digits[i];
        }
        out[k] = '\0';
        snprintf(buf, size, "%s%s", sign, out);
        return;
    }
    snprintf(buf, size, "%s%c%s%se%c%02d", sign, digits[0], n > 1 ? "." : "",
             n > 1 ? digits + 1 : "", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
}

/* ---------------------------------------------------------------------------------------------
 * String -> number
 * ------------------------------------------------------------------------------------------- */

static bool parse_number(const char *s, double *v) {
    while (isspace((unsigned char)*s)) s++;
    if (strcasecmp(s, "inf") == 0 || strcasecmp(s, "+inf") == 0) {
        *v = INFINITY;
        return true;
    }
    if (strcasecmp(s, "-inf") == 0) {
        *v = -INFINITY;
        return true;
    }
    if (strcasecmp(s, "nan") == 0) {
        *v = NAN;
        return true;
    }
    char *end;
    *v = strtod(s, &end);
    if (end == s) return false;
    while (isspace((unsigned char)*end)) end++;
    return *end == '\0';
}

static bool castable_with_strings(ember_dtype dt) {
    return em_dtype_is_float(dt) || em_dtype_is_signed_int(dt) || em_dtype_is_unsigned_int(dt) ||
           dt == EMBER_BOOL;
}

ember_status em_cast_string_check(const em_node *node, ember_dtype from, ember_dtype to,
                                  ember_error *err) {
    ember_dtype other = from == EMBER_STRING ? to : from;
    if (other == EMBER_STRING || castable_with_strings(other)) return EMBER_OK;
    char buf[160];
    return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: cannot cast between string and %s",
                   desc(node, buf, sizeof buf), em_dtype_name(other));
}

ember_status em_cast_strings(const em_node *node, const em_tensor *in, em_tensor *out,
                             ember_error *err) {
    char buf[160];
    int64_t n = em_numel(in);
    if (out->dtype == EMBER_STRING) {
        em_tensor *s = em_string_tensor_new(in->dims, in->rank, err);
        if (!s) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        for (int64_t i = 0; i < n; i++) {
            char text[64];
            ember_status st;
            if (in->dtype == EMBER_STRING) {
                const char *v = em_string_at(in, i);
                st = em_string_set(s, i, v, strlen(v), err);
            } else {
                if (em_dtype_is_float(in->dtype))
                    em_format_number(em_get_f64(in, i), in->dtype != EMBER_DOUBLE, text,
                                     sizeof text);
                else if (in->dtype == EMBER_UINT64)
                    snprintf(text, sizeof text, "%llu",
                             (unsigned long long)((const uint64_t *)in->data)[i]);
                else
                    snprintf(text, sizeof text, "%lld", (long long)em_get_i64(in, i));
                st = em_string_set(s, i, text, strlen(text), err);
            }
            if (st != EMBER_OK) {
                em_tensor_free(s);
                return st;
            }
        }
        *out = *s;
        free(s);
        return EMBER_OK;
    }
    /* string -> number: out is allocated by the executor */
    size_t es = em_dtype_size(out->dtype);
    for (int64_t i = 0; i < n; i++) {
        const char *s = em_string_at(in, i);
        double v;
        if (!parse_number(s, &v))
            return em_fail(err, EMBER_ERR_RUNTIME, "%s: element %lld (\"%.40s\") is not a number",
                           desc(node, buf, sizeof buf), (long long)i, s);
        char *dst = (char *)out->data + (size_t)i * es;
        if (out->dtype == EMBER_FLOAT) {
            float f = strtof(s, NULL); /* parse once into float: no double rounding */
            if (isnan(v) || isinf(v)) f = (float)v;
            memcpy(dst, &f, sizeof f);
        } else {
            em_convert(dst, out->dtype, &v, EMBER_DOUBLE, 1);
        }
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * StringNormalizer (opset 10): drop stopwords, then change case. X is [C] or [1, C].
 * ------------------------------------------------------------------------------------------- */

typedef enum case_action { CASE_NONE, CASE_LOWER, CASE_UPPER } case_action;

static ember_status normalizer_attrs(const em_node *node, case_action *action,
                                     ember_error *err) {
    const char *a = em_attr_string(node, "case_change_action", "NONE");
    char buf[160];
    if (strcmp(a, "NONE") == 0) *action = CASE_NONE;
    else if (strcmp(a, "LOWER") == 0) *action = CASE_LOWER;
    else if (strcmp(a, "UPPER") == 0) *action = CASE_UPPER;
    else
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: case_change_action '%s' is not NONE, LOWER or UPPER",
                       desc(node, buf, sizeof buf), a);
    const char *locale = em_attr_string(node, "locale", "");
    if (locale[0] && strncmp(locale, "en", 2) != 0 && strcmp(locale, "C") != 0 &&
        strcmp(locale, "POSIX") != 0)
        return em_fail(err, EMBER_ERR_UNSUPPORTED,
                       "%s: locale '%s': ember changes case and compares in ASCII only",
                       desc(node, buf, sizeof buf), locale);
    return EMBER_OK;
}

static bool is_stopword(const em_node *node, const char *s, bool case_sensitive) {
    const em_attr *sw = em_node_attr(node, "stopwords");
    if (!sw || sw->type != EM_ATTR_STRINGS) return false;
    for (int64_t i = 0; i < sw->n; i++)
        if (case_sensitive ? strcmp(s, sw->strings[i]) == 0 : strcasecmp(s, sw->strings[i]) == 0)
            return true;
    return false;
}

static ember_status normalizer_infer(const em_node *node, void *state, em_tensor *const *in,
                                     em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    case_action action;
    EM_TRY(normalizer_attrs(node, &action, err));
    const em_tensor *x = in[0];
    if (x->dtype != EMBER_STRING) return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank >= 0 && x->rank != 1 && !(x->rank == 2 && x->dims[0] == 1))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: input must be [C] or [1, C]",
                       desc(node, buf, sizeof buf));
    if (!x->data || x->rank < 0) {
        em_tensor_set_shape(&out[0], EMBER_STRING, NULL, -1);
        return EMBER_OK;
    }
    bool cs = em_attr_int(node, "is_case_sensitive", 0) != 0;
    int64_t kept = 0, n = em_numel(x);
    for (int64_t i = 0; i < n; i++)
        if (!is_stopword(node, em_string_at(x, i), cs)) kept++;
    int64_t dims[2] = {1, kept ? kept : 1}; /* nothing left: one empty string */
    if (x->rank == 1) em_tensor_set_shape(&out[0], EMBER_STRING, dims + 1, 1);
    else em_tensor_set_shape(&out[0], EMBER_STRING, dims, 2);
    return EMBER_OK;
}

static ember_status normalizer_run(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    case_action action;
    EM_TRY(normalizer_attrs(node, &action, err));
    bool cs = em_attr_int(node, "is_case_sensitive", 0) != 0;
    const em_tensor *x = in[0];
    em_tensor *y = em_string_tensor_new(out[0].dims, out[0].rank, err);
    if (!y) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    int64_t n = em_numel(x), k = 0, cap = em_numel(y);
    for (int64_t i = 0; i < n; i++) {
        const char *s = em_string_at(x, i);
        if (is_stopword(node, s, cs)) continue;
        ember_status st = k < cap ? em_string_set(y, k, s, strlen(s), err)
                                  : em_fail(err, EMBER_ERR_RUNTIME, "output shape changed");
        if (st != EMBER_OK) {
            em_tensor_free(y);
            return st;
        }
        char *d = ((char **)y->data)[k++];
        for (; action != CASE_NONE && *d; d++)
            *d = (char)(action == CASE_LOWER ? tolower((unsigned char)*d)
                                             : toupper((unsigned char)*d));
    }
    out[0] = *y;
    free(y);
    return EMBER_OK;
}

static const em_op k_string_ops[] = {
    {"", "StringNormalizer", 10, 10, NULL, normalizer_infer, normalizer_run, NULL, EM_OP_STRINGS},
};

EM_OPS_FAMILY(strings) {
    *count = sizeof k_string_ops / sizeof k_string_ops[0];
    return k_string_ops;
}
