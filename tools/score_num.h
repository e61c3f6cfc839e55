/* ember score: number parsing (exact: float32 results equal strtof's, float64 equal strtod's)
 * and printing (shortest text that reads back as the same value). Field text is not
 * NUL-terminated: every parser takes a pointer and a length. */
#ifndef EMBER_TOOLS_SCORE_NUM_H
#define EMBER_TOOLS_SCORE_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"

/* Each returns true when the whole of [text, text + len) is one number of that kind.
 * Floats accept what strtof / strtod accept (decimal, exponent, "nan", "inf", hex); values too
 * large or small for the type become ±inf / ±0 as strtof gives them. Leading or trailing spaces
 * are not accepted (the caller trims). */
bool score_parse_f32(const char *text, size_t len, float *out);
bool score_parse_f64(const char *text, size_t len, double *out);
/* Fast path for a float32 at the start of [text, end): returns the end of the number, or NULL
 * when the text needs score_parse_f32 (not a plain decimal, or a rare hard rounding case). */
const char *score_parse_f32_prefix(const char *text, const char *end, float *out);
/* Integers: optional sign and decimal digits, within [min, max]. */
bool score_parse_int(const char *text, size_t len, int64_t min, int64_t max, int64_t *out);
bool score_parse_u64(const char *text, size_t len, uint64_t *out);
/* 0, 1, true, false (any case). */
bool score_parse_bool(const char *text, size_t len, bool *out);

/* Parse into one element of `dtype` at `dst`. Returns false if the text is not a number of
 * that kind (or out of range for an integer type). Supported: float, double, all integer
 * types, bool. */
bool score_parse_value(ember_dtype dtype, const char *text, size_t len, void *dst);
/* True if score_parse_value handles the type. */
bool score_dtype_parsable(ember_dtype dtype);

/* Printing. `precision` 0 means the shortest round-trip text; N > 0 prints N significant
 * digits (like %.Ng). Non-finite values print as "nan", "inf", "-inf" (or NaN, Infinity,
 * -Infinity with `json`). Returns the length written; buf needs SCORE_NUM_MAX bytes. */
#define SCORE_NUM_MAX 48
int score_format_f32(float value, int precision, bool json, char *buf);
int score_format_f64(double value, int precision, bool json, char *buf);
int score_format_i64(int64_t value, char *buf);
int score_format_u64(uint64_t value, char *buf);

/* float16 / bfloat16 bit patterns to float (exact). */
float score_f16_to_f32(uint16_t bits);
float score_bf16_to_f32(uint16_t bits);

#endif
