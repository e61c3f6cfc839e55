/* Direct convolution for few input channels (the first layer of a CNN: RGB in), AVX-512
 * (conv_direct.c). Internal to ops/.
 *
 * With C * KH * KW small (27 for a 3x3 over RGB, 147 for ResNet's 7x7), im2col costs about as
 * much as the GEMM it feeds. Here output pixels are the vector lanes: the input rows an output
 * row reads are first split into stride phases with their padding (phase p of a row holds its
 * columns p, p + sx, ...), so for every tap the 16 input values of 16 consecutive output pixels
 * are one plain load. A register tile is up to 3 blocks of 16 pixels (a tile may span two
 * output rows, so narrow rows fill it too) x 8 filters: per tap, one load per block and one
 * broadcast weight per filter feed 24 FMAs, and each accumulator is 16 consecutive outputs of
 * one filter, stored straight into its NCHW row. Filter group by filter group, so a group's
 * weights stay in L1 over the tiles of a band of rows. */
#ifndef EMBER_OPS_CONV_DIRECT_H
#define EMBER_OPS_CONV_DIRECT_H

#include <stdbool.h>
#include <stdint.h>

#include "linalg.h"

typedef struct em_dc_geom {
    int64_t batch, C, M;    /* images, input channels, filters (one group) */
    int64_t H, W, OH, OW;   /* input and output planes */
    int64_t KH, KW, sy, sx; /* kernel, strides */
    int64_t dy, dx, py, px; /* dilations, leading pads */
} em_dc_geom;

/* Whether the direct kernel takes a conv of M filters over C channels with a KH x KW kernel
 * on this CPU. */
bool em_dc_eligible(int64_t M, int64_t C, int64_t KH, int64_t KW);

/* Floats of the packed weights: blocks of 16 filters, per tap 16 weights. */
int64_t em_dc_packed_floats(int64_t M, int64_t C, int64_t KH, int64_t KW);

/* Pack w (M x C x KH x KW). */
void em_dc_pack(const float *w, int64_t M, int64_t C, int64_t KH, int64_t KW, float *dst);

/* y (batch x M x OH x OW) = act(conv(x) + bias + z); bias, z, act may be NULL. */
ember_status em_dc_conv(const em_dc_geom *g, const float *x, const float *packed, const float *bias,
                        const float *z, float *y, const em_activation *act, em_exec *ex,
                        ember_error *err);

/* A MaxPool applied to the conv's output (after the activation): kernel, strides, leading pads
 * and the pooled size; windows must overlap the conv output (pads smaller than the kernel). */
typedef struct em_dc_pool {
    int64_t KH, KW, SH, SW, PT, PL;
    int64_t OH, OW;
} em_dc_pool;

/* y (batch x M x pool->OH x pool->OW) = maxpool(act(conv(x) + bias)), computed in bands of
 * pooled rows so the conv output never leaves the cache. */
ember_status em_dc_conv_maxpool(const em_dc_geom *g, const em_dc_pool *pool, const float *x,
                                const float *packed, const float *bias, float *y,
                                const em_activation *act, em_exec *ex, ember_error *err);

#endif
