/* ember score: exact number parsing and shortest round-trip printing.
 *
 * Parsing: the common case (up to 19 significant digits, a decimal exponent within range) is
 * scanned by hand into an integer mantissa and a power of ten, then computed in double. The
 * result can only differ from strtof's when the double lands near a float32 rounding midpoint;
 * those rare inputs, and everything outside the simple grammar (nan, inf, hex, long digit
 * strings), go to strtof / strtod. */
#include "score_num.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1e0 .. 1e22 are exact in double; the rest are correctly rounded by the compiler. */
static const double k_pow10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11, 1e12,
    1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23, 1e24, 1e25,
    1e26, 1e27, 1e28, 1e29, 1e30, 1e31, 1e32, 1e33, 1e34, 1e35, 1e36, 1e37, 1e38,
    1e39, 1e40, 1e41, 1e42, 1e43, 1e44, 1e45, 1e46, 1e47, 1e48, 1e49, 1e50, 1e51,
    1e52, 1e53, 1e54, 1e55, 1e56, 1e57, 1e58, 1e59, 1e60, 1e61, 1e62, 1e63, 1e64,
};
#define POW10_EXACT_MAX 22
#define POW10_TABLE_MAX 64

typedef struct decimal {
    uint64_t mantissa; /* up to 19 significant digits */
    int exp10;         /* value = mantissa * 10^exp10 */
    bool negative;
    bool truncated; /* nonzero digits beyond the 19th were dropped */
} decimal;

static inline bool is_digit(char c) { return (unsigned)(c - '0') < 10u; }

/* [+-]digits[.digits][(e|E)[+-]digits] with at least one mantissa digit, as a prefix of
 * [s, end). Returns the end of the number, or NULL if the text does not start that way. This
 * version keeps the first 19 significant digits of any digit string. */
static const char *scan_decimal_careful(const char *s, const char *end, decimal *d) {
    const char *p = s;
    bool negative = false, truncated = false, any = false;
    if (p < end && (*p == '-' || *p == '+')) negative = *p++ == '-';
    uint64_t m = 0;
    int digits = 0, exp10 = 0;
    while (p < end && is_digit(*p)) {
        unsigned dg = (unsigned)(*p++ - '0');
        any = true;
        if (digits < 19) {
            m = m * 10 + dg;
            digits += m != 0;
        } else {
            exp10++;
            truncated |= dg != 0;
        }
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && is_digit(*p)) {
            unsigned dg = (unsigned)(*p++ - '0');
            any = true;
            if (digits < 19) {
                m = m * 10 + dg;
                digits += m != 0;
                exp10--;
            } else {
                truncated |= dg != 0;
            }
        }
    }
    if (!any) return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < end && (*p == '-' || *p == '+')) eneg = *p++ == '-';
        if (p >= end || !is_digit(*p)) return NULL;
        int e = 0;
        while (p < end && is_digit(*p)) {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    d->mantissa = m;
    d->exp10 = exp10;
    d->negative = negative;
    d->truncated = truncated;
    return p;
}

/* Eight ASCII digits at once (little-endian loads). */
static inline bool eight_digits(uint64_t v) {
    return ((v & 0xF0F0F0F0F0F0F0F0u) |
            (((v + 0x0606060606060606u) & 0xF0F0F0F0F0F0F0F0u) >> 4)) == 0x3333333333333333u;
}

static inline uint64_t eight_digits_value(uint64_t v) {
    const uint64_t mask = 0x000000FF000000FFu;
    v -= 0x3030303030303030u;
    v = v * 10 + (v >> 8); /* pairs */
    v = ((v & mask) * (100 + (UINT64_C(1000000) << 32)) +
         ((v >> 16) & mask) * (1 + (UINT64_C(10000) << 32))) >> 32;
    return v;
}

/* Digits at p as an integer (wrapping past 19 digits: the caller checks the count). */
static inline const char *scan_digits(const char *p, const char *end, uint64_t *m) {
    uint64_t v = *m;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (!eight_digits(w)) break;
        v = v * 100000000u + eight_digits_value(w);
        p += 8;
    }
#endif
    while (p < end && is_digit(*p)) v = v * 10 + (uint64_t)(*p++ - '0');
    *m = v;
    return p;
}

/* The common case fast (at most 19 digits in all); longer digit strings go to the careful
 * scanner. */
static inline const char *scan_decimal(const char *s, const char *end, decimal *d) {
    const char *p = s;
    bool negative = false;
    if (p < end && (*p == '-' || *p == '+')) negative = *p++ == '-';
    uint64_t m = 0;
    const char *int_start = p;
    p = scan_digits(p, end, &m);
    size_t digits = (size_t)(p - int_start);
    int exp10 = 0;
    if (p < end && *p == '.') {
        const char *frac_start = ++p;
        p = scan_digits(p, end, &m);
        digits += (size_t)(p - frac_start);
        exp10 = -(int)(p - frac_start);
    }
    if (digits == 0) return NULL;
    if (digits > 19) return scan_decimal_careful(s, end, d);
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < end && (*p == '-' || *p == '+')) eneg = *p++ == '-';
        if (p >= end || !is_digit(*p)) return NULL;
        int e = 0;
        while (p < end && is_digit(*p)) {
            if (e < 100000) e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    d->mantissa = m;
    d->exp10 = exp10;
    d->negative = negative;
    d->truncated = false;
    return p;
}

/* The float32 nearest to the decimal (as strtof rounds), or false when the fast computation
 * cannot be sure of the last bit. */
static bool decimal_to_f32(const decimal *d, float *out) {
    if (d->mantissa == 0) {
        *out = d->negative ? -0.0f : 0.0f;
        return true;
    }
    if (d->exp10 < -POW10_TABLE_MAX || d->exp10 > POW10_TABLE_MAX) return false;
    bool exact = d->mantissa <= (UINT64_C(1) << 53) && !d->truncated &&
                 d->exp10 >= -POW10_EXACT_MAX && d->exp10 <= POW10_EXACT_MAX;
    double v = (double)d->mantissa;
    v = d->exp10 < 0 ? v / k_pow10[-d->exp10] : v * k_pow10[d->exp10];
    if (!(v >= FLT_MIN && v <= FLT_MAX)) return false;
    /* Bits of the double below float32's last place: 1 << 28 is the midpoint. Exact: v is
     * the correctly rounded double, which misleads only on a midpoint. Inexact: v is within
     * 4 double ulps of the true value. */
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int64_t dist = (int64_t)(bits & ((UINT64_C(1) << 29) - 1)) - (INT64_C(1) << 28);
    if (exact ? dist == 0 : (dist <= 8 && dist >= -8)) return false;
    float f = (float)v;
    *out = d->negative ? -f : f;
    return true;
}

const char *score_parse_f32_prefix(const char *text, const char *end, float *out) {
    decimal d;
    const char *p = scan_decimal(text, end, &d);
    if (!p || !decimal_to_f32(&d, out)) return NULL;
    return p;
}

/* strtof / strtod on a NUL-terminated copy; the whole text must be consumed. */
static bool slow_parse(const char *text, size_t len, bool single, double *out_d, float *out_f) {
    if (len == 0 || text[0] == ' ' || text[0] == '\t' || text[0] == '\n' || text[0] == '\r' ||
        text[0] == '\v' || text[0] == '\f')
        return false;
    char local[128];
    char *buf = len < sizeof local ? local : malloc(len + 1);
    if (!buf) return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *end = NULL;
    errno = 0;
    if (single)
        *out_f = strtof(buf, &end);
    else
        *out_d = strtod(buf, &end);
    bool ok = end == buf + len; /* ERANGE still gives strto*'s value (inf or 0): accepted */
    if (buf != local) free(buf);
    return ok;
}

bool score_parse_f32(const char *text, size_t len, float *out) {
    if (score_parse_f32_prefix(text, text + len, out) == text + len) return true;
    double unused;
    return slow_parse(text, len, true, &unused, out);
}

bool score_parse_f64(const char *text, size_t len, double *out) {
    decimal d;
    if (scan_decimal(text, text + len, &d) == text + len && len > 0) {
        if (d.mantissa == 0) {
            *out = d.negative ? -0.0 : 0.0;
            return true;
        }
        if (d.mantissa <= (UINT64_C(1) << 53) && !d.truncated && d.exp10 >= -POW10_EXACT_MAX &&
            d.exp10 <= POW10_EXACT_MAX) {
            /* both operands exact: one correctly rounded operation */
            double v = (double)d.mantissa;
            v = d.exp10 < 0 ? v / k_pow10[-d.exp10] : v * k_pow10[d.exp10];
            *out = d.negative ? -v : v;
            return true;
        }
    }
    float unused;
    return slow_parse(text, len, false, out, &unused);
}

bool score_parse_u64(const char *text, size_t len, uint64_t *out) {
    const char *p = text, *end = text + len;
    if (p < end && *p == '+') p++;
    if (p >= end) return false;
    uint64_t v = 0;
    for (; p < end; p++) {
        if (!is_digit(*p)) return false;
        unsigned dg = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - dg) / 10) return false;
        v = v * 10 + dg;
    }
    *out = v;
    return true;
}

bool score_parse_int(const char *text, size_t len, int64_t min, int64_t max, int64_t *out) {
    bool negative = len > 0 && text[0] == '-';
    if (negative) {
        text++;
        len--;
        if (len > 0 && text[0] == '+') return false;
    }
    uint64_t mag;
    if (!score_parse_u64(text, len, &mag)) return false;
    int64_t v;
    if (negative) {
        if (mag > (uint64_t)INT64_MAX + 1) return false;
        v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return false;
        v = (int64_t)mag;
    }
    if (v < min || v > max) return false;
    *out = v;
    return true;
}

static bool equal_nocase(const char *text, size_t len, const char *word) {
    size_t n = strlen(word);
    if (len != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != word[i]) return false;
    }
    return true;
}

bool score_parse_bool(const char *text, size_t len, bool *out) {
    if (equal_nocase(text, len, "1") || equal_nocase(text, len, "true")) {
        *out = true;
        return true;
    }
    if (equal_nocase(text, len, "0") || equal_nocase(text, len, "false")) {
        *out = false;
        return true;
    }
    return false;
}

bool score_dtype_parsable(ember_dtype dtype) {
    switch (dtype) {
    case EMBER_FLOAT: case EMBER_DOUBLE: case EMBER_INT8: case EMBER_UINT8: case EMBER_INT16:
    case EMBER_UINT16: case EMBER_INT32: case EMBER_UINT32: case EMBER_INT64: case EMBER_UINT64:
    case EMBER_BOOL:
        return true;
    default:
        return false;
    }
}

bool score_parse_value(ember_dtype dtype, const char *text, size_t len, void *dst) {
    int64_t i = 0;
    switch (dtype) {
    case EMBER_FLOAT: return score_parse_f32(text, len, dst);
    case EMBER_DOUBLE: return score_parse_f64(text, len, dst);
    case EMBER_INT64: return score_parse_int(text, len, INT64_MIN, INT64_MAX, dst);
    case EMBER_UINT64: return score_parse_u64(text, len, dst);
    case EMBER_INT32:
        if (!score_parse_int(text, len, INT32_MIN, INT32_MAX, &i)) return false;
        *(int32_t *)dst = (int32_t)i;
        return true;
    case EMBER_UINT32:
        if (!score_parse_int(text, len, 0, UINT32_MAX, &i)) return false;
        *(uint32_t *)dst = (uint32_t)i;
        return true;
    case EMBER_INT16:
        if (!score_parse_int(text, len, INT16_MIN, INT16_MAX, &i)) return false;
        *(int16_t *)dst = (int16_t)i;
        return true;
    case EMBER_UINT16:
        if (!score_parse_int(text, len, 0, UINT16_MAX, &i)) return false;
        *(uint16_t *)dst = (uint16_t)i;
        return true;
    case EMBER_INT8:
        if (!score_parse_int(text, len, INT8_MIN, INT8_MAX, &i)) return false;
        *(int8_t *)dst = (int8_t)i;
        return true;
    case EMBER_UINT8:
        if (!score_parse_int(text, len, 0, UINT8_MAX, &i)) return false;
        *(uint8_t *)dst = (uint8_t)i;
        return true;
    case EMBER_BOOL: {
        bool b;
        if (!score_parse_bool(text, len, &b)) return false;
        *(uint8_t *)dst = b;
        return true;
    }
    default:
        return false;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Printing
 * ------------------------------------------------------------------------------------------- */

static int format_special(double value, bool json, char *buf) {
    const char *s;
    if (isnan(value))
        s = json ? "NaN" : "nan";
    else if (value > 0)
        s = json ? "Infinity" : "inf";
    else
        s = json ? "-Infinity" : "-inf";
    size_t n = strlen(s);
    memcpy(buf, s, n + 1);
    return (int)n;
}

/* Digits of |v| rounded to `p` significant digits, exactly as printf rounds (to nearest, ties
 * to even, on the exact binary value). Returns false when the 128-bit arithmetic would
 * overflow (very large or very small magnitudes); *digits is in [10^(p-1), 10^p) and
 * |v| ~= digits * 10^(exp10 - p + 1). */
typedef unsigned __int128 u128;

static bool round_digits(uint64_t mant, int exp2, int p, int exp10, uint64_t *digits) {
    /* value * 10^s = mant * 5^s * 2^(exp2 + s) with s = p - 1 - exp10: an exact fraction */
    int s = p - 1 - exp10, t = exp2 + s;
    if (s > 27 || s < -27 || t > 64 || t < -64) return false; /* 5^27 < 2^63 */
    uint64_t five = 1;
    for (int i = 0; i < (s < 0 ? -s : s); i++) five *= 5;
    u128 num = mant, den = 1;
    if (s >= 0)
        num *= five;
    else
        den = five;
    if (t >= 0) {
        if (num >> (127 - t)) return false;
        num <<= t;
    } else {
        if (den >> (127 + t)) return false;
        den <<= -t;
    }
    u128 q, r;
    if (s >= 0 && t < 0) { /* power-of-two denominator */
        q = num >> -t;
        r = num & (den - 1);
    } else {
        q = num / den;
        r = num % den;
    }
    u128 twice = r << 1; /* r < den < 2^127 */
    if (twice > den || (twice == den && (q & 1))) q++;
    if (q >> 64) return false;
    *digits = (uint64_t)q;
    return true;
}

static const uint64_t k_pow10_u64[] = {
    1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull, 100000000ull,
    1000000000ull, 10000000000ull, 100000000000ull, 1000000000000ull, 10000000000000ull,
    100000000000000ull, 1000000000000000ull, 10000000000000000ull, 100000000000000000ull,
    1000000000000000000ull,
};

/* Render `digits` (exactly p digits) with decimal exponent exp10 the way %.{p}g does:
 * trailing zeros removed, exponent form when exp10 < -4 or exp10 >= p. */
static int render_g(bool negative, uint64_t digits, int p, int exp10, char *buf) {
    char d[24];
    for (int i = p - 1; i >= 0; i--) {
        d[i] = (char)('0' + digits % 10);
        digits /= 10;
    }
    int nd = p;
    while (nd > 1 && d[nd - 1] == '0') nd--;
    char *o = buf;
    if (negative) *o++ = '-';
    if (exp10 < -4 || exp10 >= p) {
        *o++ = d[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, d + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        *o++ = 'e';
        int e = exp10;
        *o++ = e < 0 ? '-' : '+';
        if (e < 0) e = -e;
        if (e >= 100) *o++ = (char)('0' + e / 100);
        *o++ = (char)('0' + (e / 10) % 10);
        *o++ = (char)('0' + e % 10);
    } else if (exp10 < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -exp10 - 1; i++) *o++ = '0';
        memcpy(o, d, (size_t)nd);
        o += nd;
    } else {
        int int_digits = exp10 + 1;
        for (int i = 0; i < int_digits; i++) *o++ = i < nd ? d[i] : '0';
        if (nd > int_digits) {
            *o++ = '.';
            memcpy(o, d + int_digits, (size_t)(nd - int_digits));
            o += nd - int_digits;
        }
    }
    *o = '\0';
    return (int)(o - buf);
}

/* A finite nonzero float as mant * 2^exp2 (mant < 2^24), and an estimate of floor(log10 |v|)
 * that is exact or one too small (round_g corrects it). */
typedef struct f32_parts {
    uint64_t mant;
    int exp2;
    int exp10;
    bool negative;
} f32_parts;

static f32_parts split_f32(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    f32_parts f;
    f.negative = bits >> 31;
    int biased = (int)((bits >> 23) & 0xff);
    f.mant = bits & 0x7fffff;
    if (biased) {
        f.mant |= 0x800000;
        f.exp2 = biased - 150;
    } else {
        f.exp2 = -149;
    }
    /* floor(log10(2) * position of the top bit), with 78913 / 2^18 ~ log10(2) */
    int top = 63 - __builtin_clzll(f.mant) + f.exp2;
    f.exp10 = (int)((int64_t)top * 78913 >> 18) - 1;
    return f;
}

/* The p significant digits of f rounded as printf rounds; *exp10 is the decimal exponent of the
 * first digit. false when 128-bit arithmetic does not suffice (then printf is used). */
static bool round_g(const f32_parts *f, int p, int *exp10, uint64_t *digits) {
    int e = f->exp10;
    for (int attempt = 0; attempt < 4; attempt++) {
        if (!round_digits(f->mant, f->exp2, p, e, digits)) return false;
        if (*digits >= k_pow10_u64[p]) {
            e++;
            continue;
        }
        if (*digits < k_pow10_u64[p - 1]) {
            e--;
            continue;
        }
        *exp10 = e;
        return true;
    }
    return false;
}

/* %.{p}g of a finite nonzero float, without printf when the arithmetic fits. */
static int format_g_f32(float value, int p, char *buf) {
    f32_parts f = split_f32(value);
    int exp10;
    uint64_t digits;
    if (round_g(&f, p, &exp10, &digits)) return render_g(f.negative, digits, p, exp10, buf);
    return snprintf(buf, SCORE_NUM_MAX, "%.*g", p, (double)value);
}

int score_format_f32(float value, int precision, bool json, char *buf) {
    if (!isfinite(value)) return format_special(value, json, buf);
    if (value == 0) {
        const char *s = signbit(value) ? "-0" : "0";
        size_t n = strlen(s);
        memcpy(buf, s, n + 1);
        return (int)n;
    }
    if (precision > 0) {
        if (precision <= 18) return format_g_f32(value, precision, buf);
        return snprintf(buf, SCORE_NUM_MAX, "%.*g", precision, (double)value);
    }
    /* Shortest: a normal float32 has at most one 6-digit decimal within its rounding interval,
     * so 6 digits already give every answer of 6 digits or fewer; 9 digits always round-trip.
     * Each candidate is checked by converting the digits back, without text. */
    f32_parts f = split_f32(value);
    float magnitude = fabsf(value);
    for (int p = magnitude < FLT_MIN ? 1 : 6; p < 9; p++) { /* subnormals: fewer digits */
        int exp10;
        uint64_t digits;
        if (!round_g(&f, p, &exp10, &digits)) { /* extreme exponents: through printf */
            int n = snprintf(buf, SCORE_NUM_MAX, "%.*g", p, (double)value);
            if (strtof(buf, NULL) == value) return n;
            continue;
        }
        decimal d = {digits, exp10 - p + 1, false, false};
        float back;
        if (decimal_to_f32(&d, &back)) {
            if (back == magnitude) return render_g(f.negative, digits, p, exp10, buf);
            continue;
        }
        int n = render_g(f.negative, digits, p, exp10, buf); /* a hard case: ask strtof */
        if (strtof(buf, NULL) == value) return n;
    }
    return format_g_f32(value, 9, buf);
}

int score_format_f64(double value, int precision, bool json, char *buf) {
    if (!isfinite(value)) return format_special(value, json, buf);
    if (value == 0) {
        const char *s = signbit(value) ? "-0" : "0";
        size_t n = strlen(s);
        memcpy(buf, s, n + 1);
        return (int)n;
    }
    if (precision > 0) return snprintf(buf, SCORE_NUM_MAX, "%.*g", precision, value);
    for (int p = fabs(value) < DBL_MIN ? 1 : 15; p < 17; p++) { /* subnormals: fewer digits */
        int n = snprintf(buf, SCORE_NUM_MAX, "%.*g", p, value);
        if (strtod(buf, NULL) == value) return n;
    }
    return snprintf(buf, SCORE_NUM_MAX, "%.17g", value);
}

int score_format_u64(uint64_t value, char *buf) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    for (int i = 0; i < n; i++) buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

int score_format_i64(int64_t value, char *buf) {
    if (value < 0) {
        buf[0] = '-';
        return 1 + score_format_u64((uint64_t)0 - (uint64_t)value, buf + 1);
    }
    return score_format_u64((uint64_t)value, buf);
}

float score_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f, frac = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (frac << 13);
    } else if (exp == 0) {
        /* zero or subnormal: frac * 2^-24 exactly */
        float f = (float)frac * 0x1p-24f;
        return sign ? -f : f;
    } else {
        bits = sign | ((exp + 112) << 23) | (frac << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

float score_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
