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

/* A value. Most are tensors (kind EMBER_KIND_TENSOR, the zero value). A sequence or optional
 * value has no shape: rank is 0 once its type is known (-1 unknown in static inference), dtype
 * is the element type of the tensors inside (EMBER_UNDEFINED if unknown), and `data` points to
 *   sequence: an em_seq whose items are heap tensors it owns;
 *   optional: the held value (a heap em_tensor of kind elem_kind), or NULL for none.
 * Such values are never arena memory: owns_data says whether this struct owns the em_seq /
 * held value (and through it every item). */
typedef struct em_tensor {
    ember_dtype dtype;
    int rank; /* -1: unknown (static inference only) */
    int64_t dims[EM_MAX_RANK];
    void *data;      /* NULL while only the shape is known */
    size_t capacity; /* bytes available at data */
    bool owns_data;  /* free(data) on em_tensor_free */
    ember_value_kind kind;      /* tensor, sequence or optional */
    ember_value_kind elem_kind; /* optional only: the kind it holds (tensor or sequence) */
} em_tensor;

typedef struct em_seq {
    int64_t n, cap;
    struct em_tensor **items; /* n owned heap tensors (each owns its data) */
} em_seq;

int64_t em_numel(const em_tensor *t);
size_t em_nbytes(const em_tensor *t);
int64_t em_shape_numel(const int64_t *dims, int rank); /* -1 on overflow or negative dim */
size_t em_dtype_size(ember_dtype dt);
const char *em_dtype_name(ember_dtype dt);
bool em_dtype_is_float(ember_dtype dt); /* float16, bfloat16, float, double */
bool em_dtype_is_signed_int(ember_dtype dt);
bool em_dtype_is_unsigned_int(ember_dtype dt);

void *em_aligned_alloc(size_t bytes); /* 64-byte aligned, zeroed; free with em_aligned_free */
/* The same, not zeroed: for buffers the caller writes in full at once (packed weights). */
void *em_aligned_alloc_uninit(size_t bytes);
void em_aligned_free(void *p);

/* Heap tensor with owned, zeroed data. Returns NULL on bad shape / no memory (err set). */
em_tensor *em_tensor_new(ember_dtype dt, const int64_t *dims, int rank, ember_error *err);
em_tensor *em_tensor_clone(const em_tensor *src, ember_error *err);
void em_tensor_free(em_tensor *t);
/* ---- string tensors ----
 * A tensor of dtype EMBER_STRING holds `char *` per element (data is an array of
 * capacity / sizeof(char *) pointers): each points to an owned NUL-terminated heap string or is
 * NULL for "". em_dtype_size(EMBER_STRING) stays 0, so byte-copying code copies nothing. Like
 * sequences, string tensors live outside the arena and are deep-copied, never aliased. */
em_tensor *em_string_tensor_new(const int64_t *dims, int rank, ember_error *err);
const char *em_string_at(const em_tensor *t, int64_t i); /* "" for an unset element */
/* Set element i to a copy of s[0..len). */
ember_status em_string_set(em_tensor *t, int64_t i, const char *s, size_t len, ember_error *err);
/* Sequences, optionals and string tensors: values the executor keeps outside the arena. */
static inline bool em_value_boxed(const em_tensor *t) {
    return t->kind != EMBER_KIND_TENSOR || t->dtype == EMBER_STRING;
}

/* ---- sequences and optionals ---- */

/* Set t to the static type "kind of dtype" (rank 0, no data). */
void em_value_set_type(em_tensor *t, ember_value_kind kind, ember_value_kind elem_kind,
                       ember_dtype dtype);
bool em_same_type(const em_tensor *a, const em_tensor *b); /* kind, elem_kind and dtype */
bool em_same_kind(const em_tensor *a, const em_tensor *b); /* kind and elem_kind */
/* Free what t owns (tensor data, sequence items, optional's value); t keeps its type. */
void em_value_release(em_tensor *t);
/* dst becomes an owned deep copy of src (dst's previous content is not freed). */
ember_status em_value_copy(em_tensor *dst, const em_tensor *src, ember_error *err);
/* Empty owned sequence of `elem` tensors (heap; em_tensor_free). */
em_tensor *em_seq_new(ember_dtype elem, ember_error *err);
int64_t em_seq_length(const em_tensor *seq);
em_tensor *em_seq_at(const em_tensor *seq, int64_t i); /* 0 <= i < length */
/* Insert `item` (taken over: a heap tensor owning its data; freed on failure) at `pos`
 * (0..length). */
ember_status em_seq_insert(em_tensor *seq, int64_t pos, em_tensor *item, ember_error *err);
/* Remove and free item `pos`. */
void em_seq_erase(em_tensor *seq, int64_t pos);
/* Optional holding `value` (taken over; NULL for none); elem_kind/dtype name the type. */
em_tensor *em_optional_new(ember_value_kind elem_kind, ember_dtype dtype, em_tensor *value,
                           ember_error *err);
const char *em_kind_name(ember_value_kind kind);

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

/* One axis of a Slice (Slice-10 and later): clamps start/end to a dimension of size dim as the
 * spec does and gives the first index and the element count (no overflow for huge steps).
 * Shared by the Slice kernel and the shape-value pass, which must agree exactly. */
void em_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *out_start,
                   int64_t *out_count);

#endif
