/* Single-precision GEMM for convolutions with the weights packed once (conv_gemm.c).
 *
 *   C[rows x n] = A[rows x K] * B[K x n] (+ bias per row, + Z, activation), C row stride ldc.
 *
 * A is a constant weight matrix packed at kernel creation into panels of EM_CG_MR rows
 * (MR floats per k, rows past the end zero), stored by chunks of k: chunk after chunk, and in
 * a chunk panel after panel.
 * B is read in tiles of EM_CG_NR columns: tile t starts at b + t * b_tile_stride, its rows are
 * ldb floats apart (ldb_tail for a last, narrower tile). An im2col written tile by tile
 * (each tile K x width, contiguous) and a plain row-major matrix (tile stride NR, ldb = its row
 * length) both fit. Internal to ops/. */
#ifndef EMBER_OPS_CONV_GEMM_H
#define EMBER_OPS_CONV_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "linalg.h"

#define EM_CG_MR 8  /* rows per A panel (register block) */
#define EM_CG_NR 48 /* columns per B tile (3 AVX-512 vectors) */

/* True when the CPU runs the packed kernel (AVX-512F); otherwise callers use BLAS. */
bool em_cg_available(void);

/* Floats of the packed form of one group of `rows` x K weights. */
int64_t em_cg_packed_floats(int64_t rows, int64_t k);

/* Pack `rows` x K row-major weights (row stride K) into dst (em_cg_packed_floats floats). */
void em_cg_pack(const float *w, int64_t rows, int64_t k, float *dst);
/* Pack only panel p (rows p * EM_CG_MR ... of `rows`, read from w with row stride ldw; w points
 * at the panel's first row) into dst, the packed form of all `rows`. */
void em_cg_pack_panel(const float *w, int64_t ldw, int64_t rows, int64_t k, int64_t p, float *dst);

/* Row stride of a B panel of `cols` columns: whole vectors, and an odd number of them so the
 * rows of a tile spread over all L1 sets. */
static inline int64_t em_cg_panel_stride(int64_t cols) {
    const int64_t ld = (cols + 15) / 16 * 16;
    return (ld / 16) % 2 ? ld : ld + 16;
}

typedef struct em_cg_epilogue {
    const float *bias; /* one per row of this call, or NULL */
    const float *z;    /* residual with C's layout (row stride ldz), or NULL */
    int64_t ldz;
    const em_activation *act; /* NULL: none */
} em_cg_epilogue;

/* a: the packed weights of `mpad` rows (rows rounded up to MR) in which this call computes rows
 * [m0, m0 + rows), m0 a multiple of MR. Overwrites C. */
void em_cg_gemm(const float *a, int64_t mpad, int64_t m0, int64_t rows, int64_t k, const float *b,
                int64_t n, int64_t b_tile_stride, int64_t ldb, int64_t ldb_tail, float *c,
                int64_t ldc, const em_cg_epilogue *epi);

#endif
