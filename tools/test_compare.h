/* Output comparison for `ember test`: numpy's allclose rule plus the numbers a reader needs to
 * judge a failure (worst element, max absolute difference, max ULP distance). */
#ifndef EMBER_TOOLS_TEST_COMPARE_H
#define EMBER_TOOLS_TEST_COMPARE_H

#include <stdbool.h>
#include <stdint.h>

#include "ember.h"

typedef struct compare_result {
    bool equal;              /* same dtype, same shape, every element within tolerance */
    bool layout_mismatch;    /* dtype or shape differ; `reason` says how */
    char reason[256];        /* one line when !equal */
    int64_t element_count;
    int64_t mismatch_count;  /* elements outside tolerance */
    /* Worst element: the one furthest outside its tolerance (NaN or inf mismatches first). */
    int64_t worst_flat_index;
    int worst_rank;
    int64_t worst_index[EMBER_MAX_RANK];
    char worst_expected[48];
    char worst_got[48];
    /* Largest |expected - got| over all elements (NaN == NaN and equal infinities count as 0;
     * a NaN against a number makes it NaN, an infinity against a finite value makes it inf). */
    double max_abs_diff;
    /* Largest distance in units in the last place, for floating-point dtypes. */
    bool has_ulp;
    bool ulp_unbounded;      /* some pair is NaN against a non-NaN: no finite distance */
    uint64_t max_ulp;
} compare_result;

/* True when |got - expected| <= atol + rtol * |expected|, with NaN equal to NaN and an infinity
 * equal only to the same infinity. */
bool compare_close(double expected, double got, double rtol, double atol);

/* Compare every element of `got` against `expected`. Fills `result` and returns result->equal. */
bool compare_tensors(const ember_tensor *expected, const ember_tensor *got, double rtol,
                     double atol, compare_result *result);

/* Distance in representable values between two floats of the same sign convention (0 for equal
 * values, +0 and -0 are 0 apart). Callers handle NaN themselves. */
uint64_t compare_ulp_f32(float a, float b);
uint64_t compare_ulp_f64(double a, double b);

/* float16 / bfloat16 bits to float (exact). */
float compare_f16_to_f32(uint16_t bits);
float compare_bf16_to_f32(uint16_t bits);

#endif
