/* Tensors as the runtime and kernels see them: plain structs, no hidden state. */
#ifndef EMBER_RUNTIME_TENSOR_H
#define EMBER_RUNTIME_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"
#include "error.h"

#define EM_MAX_RANK EMBER_MAX_RANK
#define EM_ALIGN 64

typedef struct em_tensor {
    ember_dtype dtype;
    int rank; /* -1: unknown (static inference only) */
    int64_t dims[EM_MAX_RANK];
    void *data;      /* NULL while only the shape is known */
    size_t capacity; /* bytes available at data */
    bool owns_data;  /* free(data) on em_tensor_free */
} em_tensor;

int64_t em_numel(const em_tensor *t);
size_t em_nbytes(const em_tensor *t);
int64_t em_shape_numel(const int64_t *dims, int rank); /* -1 on overflow or negative dim */
size_t em_dtype_size(ember_dtype dt);
const char *em_dtype_name(ember_dtype dt);
bool em_dtype_is_float(ember_dtype dt); /* float16, bfloat16, float, double */
bool em_dtype_is_signed_int(ember_dtype dt);
bool em_dtype_is_unsigned_int(ember_dtype dt);

void *em_aligned_alloc(size_t bytes); /* 64-byte aligned, zeroed; free with em_aligned_free */
void em_aligned_free(void *p);

/* Heap tensor with owned, zeroed data. Returns NULL on bad shape / no memory (err set). */
em_tensor *em_tensor_new(ember_dtype dt, const int64_t *dims, int rank, ember_error *err);
em_tensor *em_tensor_clone(const em_tensor *src, ember_error *err);
void em_tensor_free(em_tensor *t);
/* Copy dtype+shape only (no data). */
void em_tensor_set_shape(em_tensor *t, ember_dtype dt, const int64_t *dims, int rank);
bool em_same_shape(const em_tensor *a, const em_tensor *b);
/* "float32[2,3]" into buf. */
const char *em_shape_str(const em_tensor *t, char *buf, size_t size);

/* Element access converting to/from double / int64 (for small tensors: shapes, axes, scalars). */
double em_get_f64(const em_tensor *t, int64_t i);
int64_t em_get_i64(const em_tensor *t, int64_t i);
void em_set_f64(em_tensor *t, int64_t i, double v);

/* IEEE half and bfloat16 conversions, round to nearest even, keeping ±0, subnormals, inf, NaN. */
float em_f16_to_f32(uint16_t h);
uint16_t em_f32_to_f16(float f);
float em_bf16_to_f32(uint16_t h);
uint16_t em_f32_to_bf16(float f);

/* Convert `n` elements between any two numeric dtypes (Cast semantics: float->int truncates,
 * ->bool is != 0). */
void em_convert(void *dst, ember_dtype dst_type, const void *src, ember_dtype src_type, int64_t n);

/* Row-major strides of a shape (in elements). */
void em_strides(const int64_t *dims, int rank, int64_t *strides);

/* Multidirectional (numpy) broadcast of two shapes. Returns false if incompatible. */
bool em_broadcast_shape(const int64_t *a, int ra, const int64_t *b, int rb, int64_t *out, int *rout);

#endif
