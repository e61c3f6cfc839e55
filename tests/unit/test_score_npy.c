/* ember score: npy headers and element conversion. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "score_npy.h"

Test(score_npy, header_round_trip) {
    char buf[512];
    int64_t dims[] = {1000, 3, 4};
    size_t n = score_npy_format_header(EMBER_FLOAT, dims, 3, 0, buf, sizeof buf);
    cr_assert(n > 0 && n % 64 == 0);
    score_npy_header h;
    size_t need;
    char msg[128];
    cr_assert_eq(score_npy_parse_header(buf, n, &h, &need, msg, sizeof msg), 1, "%s", msg);
    cr_assert_eq(h.dtype, EMBER_FLOAT);
    cr_assert_eq(h.rank, 3);
    cr_assert(h.dims[0] == 1000 && h.dims[1] == 3 && h.dims[2] == 4);
    cr_assert_eq(h.data_offset, n);
    cr_assert(!h.fortran_order && !h.swap);
    /* rewritten in place with a longer row count */
    dims[0] = 123456789012LL;
    cr_assert_eq(score_npy_format_header(EMBER_FLOAT, dims, 3, n, buf, sizeof buf), n);
    cr_assert_eq(score_npy_parse_header(buf, n, &h, &need, msg, sizeof msg), 1);
    cr_assert_eq(h.dims[0], 123456789012LL);
    /* one dimension: "(5,)" */
    int64_t one[] = {5};
    n = score_npy_format_header(EMBER_INT64, one, 1, 0, buf, sizeof buf);
    cr_assert(memmem(buf, n, "'shape': (5,)", 13));
    cr_assert_eq(score_npy_parse_header(buf, n, &h, &need, msg, sizeof msg), 1);
    cr_assert(h.rank == 1 && h.dims[0] == 5 && h.dtype == EMBER_INT64);
}

Test(score_npy, header_errors) {
    score_npy_header h;
    size_t need = 0;
    char msg[128];
    cr_assert_eq(score_npy_parse_header("\x93NUM", 4, &h, &need, msg, sizeof msg), 0);
    cr_assert_eq(score_npy_parse_header("PK\x03\x04xxxxxxxx", 12, &h, &need, msg, sizeof msg), -1);
    cr_assert_str_eq(msg, "not an npy file (no \\x93NUMPY magic)");
    const char big_endian[] = "\x93NUMPY\x01\x00\x3a\x00{'descr': '>f8', 'fortran_order': True, "
                              "'shape': (2, 3), }\n";
    cr_assert_eq(score_npy_parse_header(big_endian, sizeof big_endian - 1, &h, &need, msg,
                                        sizeof msg), 1, "%s", msg);
    cr_assert(h.swap && h.fortran_order && h.dtype == EMBER_DOUBLE);
    const char dict[] = "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n";
    char odd[128] = "\x93NUMPY\x01\x00";
    odd[8] = (char)(sizeof dict - 1);
    memcpy(odd + 10, dict, sizeof dict - 1);
    cr_assert_eq(score_npy_parse_header(odd, 10 + sizeof dict - 1, &h, &need, msg, sizeof msg), 1);
    cr_assert_eq(h.dtype, EMBER_UNDEFINED);
}

Test(score_npy, convert) {
    double d[] = {1.5, -2.0, 1e300};
    float f[3];
    int64_t bad = -1;
    cr_assert(score_npy_convert(EMBER_DOUBLE, false, d, EMBER_FLOAT, f, 3, &bad));
    cr_assert(f[0] == 1.5f && f[1] == -2.0f && isinf(f[2]));
    int64_t i[3];
    cr_assert(!score_npy_convert(EMBER_DOUBLE, false, d, EMBER_INT64, i, 3, &bad));
    cr_assert_eq(bad, 0); /* 1.5 is not an integer */
    double whole[] = {3.0, -4.0};
    cr_assert(score_npy_convert(EMBER_DOUBLE, false, whole, EMBER_INT64, i, 2, &bad));
    cr_assert(i[0] == 3 && i[1] == -4);
    int32_t small[] = {127, 128};
    int8_t i8[2];
    cr_assert(!score_npy_convert(EMBER_INT32, false, small, EMBER_INT8, i8, 2, &bad));
    cr_assert_eq(bad, 1);
    uint8_t be[] = {0x3f, 0x80, 0, 0}; /* 1.0f big-endian */
    cr_assert(score_npy_convert(EMBER_FLOAT, true, be, EMBER_FLOAT, f, 1, &bad));
    cr_assert_eq(f[0], 1.0f);
    uint64_t u[] = {UINT64_MAX};
    cr_assert(!score_npy_convert(EMBER_UINT64, false, u, EMBER_INT64, i, 1, &bad));
    cr_assert(!score_npy_convertible(EMBER_FLOAT, EMBER_BOOL));
    cr_assert(score_npy_convertible(EMBER_UINT8, EMBER_BOOL));
}
