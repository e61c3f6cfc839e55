/* Data-movement helpers shared by the shape and pad/resize families (defined in shape.c). */
#ifndef EMBER_OPS_SHAPE_UTIL_H
#define EMBER_OPS_SHAPE_UTIL_H

#include "kernel.h"

/* Loops may see twice the tensor rank (Tile interleaves repeat and data axes). */
#define EMS_LOOP_RANK (2 * EM_MAX_RANK)

/* em_fail with the node's description in front: "node 'x' (#3, Pad, opset 13): reason". */
ember_status ems_fail(ember_error *err, ember_status code, const em_node *node, const char *fmt,
                      ...) EM_PRINTF(4, 5);

/* True when the rank and every dim are known (no -1). */
bool ems_shape_known(const em_tensor *t);

/* Element size of a dtype the copy kernels can move (1, 2, 4 or 8 bytes), else fail. */
ember_status ems_movable_type(const em_node *node, int input, ember_dtype dt, ember_error *err);

/* Run fn over [0, n) on the run's threads, or inline when the work is small or ex is NULL. */
void ems_parallel(em_exec *ex, int64_t n, int64_t grain, em_range_fn fn, void *ctx);

/* Items per parallel task so that one task moves about 32 KiB. */
int64_t ems_grain(int64_t bytes_per_item);

/* dst (contiguous, row-major over dims) = src read with per-axis element strides (may be 0 or
 * negative). rank <= EMS_LOOP_RANK. Adjacent axes are merged, so the inner loop is a memcpy,
 * a fill or a strided gather. */
void ems_copy_strided(void *dst, const void *src, const int64_t *dims, const int64_t *src_strides,
                      int rank, size_t esize, em_exec *ex);

/* dst = transpose(src, perm) for a row-major src of shape dims (rank <= EMS_LOOP_RANK);
 * output axis k is input axis perm[k]. */
void ems_transpose(void *dst, const void *src, const int64_t *dims, const int *perm, int rank,
                   size_t esize, em_exec *ex);

/* Fill n elements of esize bytes with the element at value. */
void ems_fill(void *dst, const void *value, int64_t n, size_t esize);

/* Scratch memory for one run: the run's arena, or malloc when ex is NULL (direct kernel calls
 * in unit tests); then *owned is set and the caller frees it. NULL (err set) on failure. */
void *ems_scratch(em_exec *ex, size_t bytes, void **owned, ember_error *err);

/* Read a 0-D or 1-D int32/int64 tensor of at most max values into vals. */
ember_status ems_read_ints(const em_node *node, const em_tensor *t, const char *what, int64_t *vals,
                           int64_t max, int64_t *n, ember_error *err);

#endif
