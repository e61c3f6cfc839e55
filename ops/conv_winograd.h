/* 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) or F(4x4, 3x3)
 * (conv_winograd.c). Internal to ops/.
 *
 * Each t x t block of outputs ("tile", t = 2 or 4) comes from a (t+2) x (t+2) input patch d
 * and the transformed filter U = G g G^T (computed once at session creation):
 *     Y = A^T [ U (.) (B^T d B) ] A          ((.) : elementwise, summed over input channels)
 * so a tile costs (t+2)^2 multiply-adds per input channel instead of 9 t^2: 16 instead of 36
 * (F(2x2)), 36 instead of 144 (F(4x4)). The (t+2)^2 products are GEMMs (M x C times
 * C x tiles) on the packed AVX-512 GEMM. F(2x2)'s transforms use only additions and halves,
 * so results differ from the direct sum by a few float32 roundings; F(4x4)'s use factors up
 * to 8 (and 1/24 in G), so its rounding error is some 10x larger (still ~1e-6 of the sum of
 * the products' magnitudes), and its packed filters take 36 / 9 times W's memory. */
#ifndef EMBER_OPS_CONV_WINOGRAD_H
#define EMBER_OPS_CONV_WINOGRAD_H

#include <stdbool.h>
#include <stdint.h>

#include "linalg.h"

typedef struct em_wino_geom {
    int64_t batch, C, M; /* images, input channels, output channels (one group) */
    int64_t H, W;        /* input plane */
    int64_t OH, OW;      /* output plane (stride 1: OH = H + pads - 2) */
    int64_t pt, pl;      /* top / left pads */
    int64_t tile;        /* outputs per tile side: 2 or 4, as the filters were packed */
} em_wino_geom;

/* True when this CPU runs the Winograd path (the packed GEMM and the vector transforms). */
bool em_wino_available(void);

/* Whether a conv of M filters over C channels is worth it (enough channels for the
 * transforms to pay off). */
bool em_wino_worth_it(int64_t M, int64_t C);

/* The tile side for M x C filters over OH x OW outputs (0: not known at creation): 4 where
 * the planes are known and hold enough 4x4 tiles and the packed filters stay small (their
 * memory grows with the tile), else 2. It depends on the planes alone: the bits of a
 * result must not change with the batch size or the thread count. */
int64_t em_wino_tile_for(int64_t M, int64_t C, int64_t OH, int64_t OW);

/* Floats of the transformed, packed filters of M x C x 3 x 3 weights for tile side `tile`. */
int64_t em_wino_packed_floats(int64_t M, int64_t C, int64_t tile);

/* Transform and pack w (M x C x 3 x 3) for tile side `tile` into dst (em_wino_packed_floats
 * floats). False when out of memory (nothing written then). */
bool em_wino_pack(const float *w, int64_t M, int64_t C, int64_t tile, float *dst);

/* y (batch x M x OH x OW) = act(conv(x) + bias + z); bias, z, act may be NULL. */
ember_status em_wino_conv(const em_wino_geom *g, const float *x, const float *packed,
                          const float *bias, const float *z, float *y, const em_activation *act,
                          em_exec *ex, ember_error *err);

#endif
