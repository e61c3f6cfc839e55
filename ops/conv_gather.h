/* im2col of small output planes through an index table (conv_gather.c). Internal to ops/.
 *
 * A convolution with small output planes runs the columns of several images as one GEMM
 * (conv.c's batched path). Copying their im2col rows one output row at a time costs more than
 * the GEMM there (an 8x8 plane is eight copies of eight floats per channel and tap), so the
 * source of every (row, column) is computed once per convolution into a table and each im2col
 * row of a panel becomes one masked gather per 16 columns.
 *
 * Columns come in blocks of T (a multiple of 16): block b holds images b * L ... b * L + L - 1,
 * whose input starts block_floats * b floats into the group's input. Each table row holds the
 * T entries of one block and then 16 more that point into the next block, so a vector of 16
 * columns starting anywhere in a block reads one run of the table. */
#ifndef EMBER_OPS_CONV_GATHER_H
#define EMBER_OPS_CONV_GATHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest table (entries); beyond it the row copies are used. */
#define EM_GATHER_MAX_ENTRIES (1 << 16)

typedef struct em_gather_table {
    int32_t *idx;         /* rows x stride entries: source offset from the block's start, or -1 */
    int64_t rows;         /* im2col rows (input channels of a group x kernel taps) */
    int64_t images;       /* L: images per block */
    int64_t T;            /* columns per block (images * plane, a multiple of 16) */
    int64_t stride;       /* T + 16 */
    int64_t image_floats; /* input floats from one image to the next */
} em_gather_table;

/* Shape the table for `rows` im2col rows of output planes of `plane` columns whose images are
 * image_floats apart (idx is left NULL). False when it would exceed EM_GATHER_MAX_ENTRIES or
 * its offsets would not fit in 32 bits. */
bool em_gather_shape(int64_t rows, int64_t plane, int64_t image_floats, em_gather_table *t);

/* Bytes of the shaped table's idx. */
size_t em_gather_bytes(const em_gather_table *t);

/* im2col rows of output columns [c0, c1) (column q is column q % plane of image q / plane) of
 * the input x (the group's slice of image 0) into col, rows ld floats apart. */
void em_gather_columns(const em_gather_table *t, const float *x, int64_t c0, int64_t c1, float *col,
                       int64_t ld);

#endif
