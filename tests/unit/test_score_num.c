/* ember score: number parsing equals strtof / strtod bit for bit; printing is the shortest
 * text that reads back as the same value. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "score_num.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15u;
static uint64_t next_random(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void expect_f32(const char *text) {
    float want = strtof(text, NULL), got = 0;
    cr_assert(score_parse_f32(text, strlen(text), &got), "'%s' not parsed", text);
    cr_assert(memcmp(&want, &got, 4) == 0 || (isnan(want) && isnan(got)),
              "'%s': got %a, strtof %a", text, (double)got, (double)want);
}

static void expect_f64(const char *text) {
    double want = strtod(text, NULL), got = 0;
    cr_assert(score_parse_f64(text, strlen(text), &got), "'%s' not parsed", text);
    cr_assert(memcmp(&want, &got, 8) == 0 || (isnan(want) && isnan(got)),
              "'%s': got %a, strtod %a", text, got, want);
}

Test(score_num, float_edge_cases) {
    const char *cases[] = {
        "0", "-0", "+0", "0.0", ".5", "5.", "1", "-1", "0.1", "0.3", "1e10", "1E-10", "3.4028235e38",
        "3.4028236e38", "3.5e38", "1e39", "1.17549435e-38", "1.1754942e-38", "1e-45", "7e-46",
        "1.4e-45", "16777217", "16777216.5", "33554435", "0.000000000000000000000000000001",
        "123456789012345678901234567890", "1.00000005960464477539062500001", "nan", "-inf",
        "Infinity", "0x1p-3", "4.9406564584124654e-324", "2.7182818284590452353602874713527",
        "0.10000000149011611938476562", "0.100000001490116119384765625",
        "0.1000000014901161193847656251", "9999999999999999999", "99999999999999999999e-20",
        "1e-64", "1e64", "12345678.9", "8388608.5", "8388609.5",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_f32(cases[i]);
        expect_f64(cases[i]);
    }
}

Test(score_num, float_random_decimals) {
    char text[80];
    for (int i = 0; i < 300000; i++) {
        int k = 0;
        if (next_random() & 1) text[k++] = '-';
        int digits = 1 + (int)(next_random() % 22);
        int dot = (int)(next_random() % (uint64_t)(digits + 1));
        for (int j = 0; j < digits; j++) {
            if (j == dot) text[k++] = '.';
            text[k++] = (char)('0' + next_random() % 10);
        }
        if (next_random() % 3 == 0)
            k += sprintf(text + k, "e%d", (int)(next_random() % 100) - 50);
        text[k] = '\0';
        expect_f32(text);
        expect_f64(text);
    }
}

Test(score_num, float_midpoints) {
    /* decimal expansions of exact float32 midpoints, and one digit either side */
    for (int i = 0; i < 20000; i++) {
        uint32_t bits = (uint32_t)(next_random() % 0x7f000000u) + 0x00800000u;
        float f;
        memcpy(&f, &bits, 4);
        float g = nextafterf(f, INFINITY);
        double mid = ((double)f + (double)g) / 2;
        char text[64];
        snprintf(text, sizeof text, "%.40g", mid);
        expect_f32(text);
        snprintf(text, sizeof text, "%.17g", mid);
        expect_f32(text);
        snprintf(text, sizeof text, "%.9g", mid);
        expect_f32(text);
    }
}

Test(score_num, float_rejects) {
    const char *bad[] = {"", " 1", "1 ", "1,", "1e", "1e+", "--1", "+-1", ".", "-", "e5", "1.2.3",
                         "abc", "0x", "1_000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float f;
        double d;
        cr_assert(!score_parse_f32(bad[i], strlen(bad[i]), &f), "'%s' accepted", bad[i]);
        cr_assert(!score_parse_f64(bad[i], strlen(bad[i]), &d), "'%s' accepted", bad[i]);
    }
}

Test(score_num, prefix_stops_at_delimiter) {
    const char *s = "-12.5e1,7";
    float f;
    const char *end = score_parse_f32_prefix(s, s + strlen(s), &f);
    cr_assert_eq(end, s + 7);
    cr_assert_eq(f, -125.0f);
    const char *x = "x1";
    cr_assert_null(score_parse_f32_prefix(x, x + 2, &f));
}

/* The fewest significant digits that read back as v, by brute force through printf. */
static int shortest_digits(float v) {
    char buf[64];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) return p;
    }
    return 9;
}

static int significant_digits(const char *s) {
    int n = 0, lead = 1, trailing_zeros = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (lead && *s == '0') continue;
        lead = 0;
        n++;
        trailing_zeros = *s == '0' ? trailing_zeros + 1 : 0;
    }
    return n - trailing_zeros;
}

Test(score_num, shortest_round_trip) {
    char buf[SCORE_NUM_MAX];
    for (int i = 0; i < 300000; i++) {
        uint32_t bits = (uint32_t)next_random();
        float v;
        memcpy(&v, &bits, 4);
        if (!isfinite(v) || v == 0) continue;
        int n = score_format_f32(v, 0, false, buf);
        cr_assert_eq((size_t)n, strlen(buf));
        cr_assert_eq(strtof(buf, NULL), v, "%a printed as %s", (double)v, buf);
        cr_assert_eq(significant_digits(buf), shortest_digits(v), "%a printed as %s (not shortest)",
                     (double)v, buf);
    }
}

Test(score_num, precision_matches_printf) {
    char buf[SCORE_NUM_MAX], want[64];
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = (uint32_t)next_random();
        float v;
        memcpy(&v, &bits, 4);
        if (!isfinite(v)) continue;
        int p = 1 + (int)(next_random() % 12);
        score_format_f32(v, p, false, buf);
        snprintf(want, sizeof want, "%.*g", p, (double)v);
        if (v == 0) continue; /* printf writes 0 / -0 the same way */
        cr_assert_str_eq(buf, want, "%a at precision %d", (double)v, p);
    }
}

Test(score_num, specials_and_doubles) {
    char buf[SCORE_NUM_MAX];
    score_format_f32(NAN, 0, false, buf);
    cr_assert_str_eq(buf, "nan");
    score_format_f32(-INFINITY, 0, true, buf);
    cr_assert_str_eq(buf, "-Infinity");
    score_format_f32(-0.0f, 0, false, buf);
    cr_assert_str_eq(buf, "-0");
    score_format_f64(0.1, 0, false, buf);
    cr_assert_str_eq(buf, "0.1");
    score_format_f64(1e-320, 0, false, buf);
    cr_assert_str_eq(buf, "1e-320");
    score_format_f64(0.1 + 0.2, 0, false, buf);
    cr_assert_str_eq(buf, "0.30000000000000004");
    score_format_i64(INT64_MIN, buf);
    cr_assert_str_eq(buf, "-9223372036854775808");
    score_format_u64(UINT64_MAX, buf);
    cr_assert_str_eq(buf, "18446744073709551615");
}

Test(score_num, integers_and_bools) {
    int64_t v;
    cr_assert(score_parse_int("-9223372036854775808", 20, INT64_MIN, INT64_MAX, &v));
    cr_assert_eq(v, INT64_MIN);
    cr_assert(!score_parse_int("9223372036854775808", 19, INT64_MIN, INT64_MAX, &v));
    cr_assert(!score_parse_int("1.0", 3, INT64_MIN, INT64_MAX, &v));
    cr_assert(!score_parse_int("-", 1, INT64_MIN, INT64_MAX, &v));
    uint8_t u8;
    cr_assert(score_parse_value(EMBER_UINT8, "255", 3, &u8));
    cr_assert_eq(u8, 255);
    cr_assert(!score_parse_value(EMBER_UINT8, "256", 3, &u8));
    cr_assert(!score_parse_value(EMBER_UINT8, "-1", 2, &u8));
    bool b;
    cr_assert(score_parse_bool("TRUE", 4, &b) && b);
    cr_assert(score_parse_bool("0", 1, &b) && !b);
    cr_assert(!score_parse_bool("yes", 3, &b));
}

Test(score_num, half_floats) {
    cr_assert_eq(score_f16_to_f32(0x3c00), 1.0f);
    cr_assert_eq(score_f16_to_f32(0xc000), -2.0f);
    cr_assert_eq(score_f16_to_f32(0x0001), 0x1p-24f);
    cr_assert(isinf(score_f16_to_f32(0x7c00)));
    cr_assert(isnan(score_f16_to_f32(0x7e00)));
    cr_assert_eq(score_bf16_to_f32(0x3f80), 1.0f);
}
