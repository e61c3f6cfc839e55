/* 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3) (conv_winograd.c).
 * Internal to ops/.
 *
 * Each 2x2 block of outputs ("tile") comes from a 4x4 input patch d and the transformed
 * filter U = G g G^T (4x4, computed once at session creation):
 *     Y = A^T [ U (.) (B^T d B) ] A          ((.) : elementwise, summed over input channels)
 * so a tile costs 16 multiply-adds per input channel instead of 36: the 16 products are 16
 * GEMMs (M x C times C x tiles) on the packed AVX-512 GEMM. Transforms use only additions
 * (and halves in G), so results differ from the direct sum by a few float32 roundings. */
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
} em_wino_geom;

/* True when this CPU runs the Winograd path (the packed GEMM and the vector transforms). */
bool em_wino_available(void);

/* Whether a conv of M filters over C channels is worth it (enough channels for the
 * transforms to pay off). */
bool em_wino_worth_it(int64_t M, int64_t C);

/* Floats of the transformed, packed filters of M x C x 3 x 3 weights. */
int64_t em_wino_packed_floats(int64_t M, int64_t C);

/* Transform and pack w (M x C x 3 x 3) into dst (em_wino_packed_floats floats). False when
 * out of memory (nothing written then). */
bool em_wino_pack(const float *w, int64_t M, int64_t C, float *dst);

/* y (batch x M x OH x OW) = act(conv(x) + bias + z); bias, z, act may be NULL. */
ember_status em_wino_conv(const em_wino_geom *g, const float *x, const float *packed,
                          const float *bias, const float *z, float *y, const em_activation *act,
                          em_exec *ex, ember_error *err);

#endif
