/* String conversions shared by Cast / CastLike (shape.c) and the string kernels. */
#ifndef EMBER_OPS_STRING_OPS_H
#define EMBER_OPS_STRING_OPS_H

#include "kernel.h"

/* Whether Cast can convert between `from` and `to` when one of them is EMBER_STRING. */
ember_status em_cast_string_check(const em_node *node, ember_dtype from, ember_dtype to,
                                  ember_error *err);
/* Cast `in` into `out` (out->dtype set by infer) when either is a string tensor. A string `out`
 * arrives unallocated and receives a new string tensor; a numeric one is allocated. */
ember_status em_cast_strings(const em_node *node, const em_tensor *in, em_tensor *out,
                             ember_error *err);
/* The shortest decimal that reads back as v (as float32 when `single`), numpy's str() form. */
void em_format_number(double v, bool single, char *buf, size_t size);

#endif
