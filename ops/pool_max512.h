/* MaxPool of float32 planes with column stride 2 and a 2- or 3-wide kernel (the pools of
 * ResNet, SqueezeNet and small CNNs), AVX-512 (pool_max512.c). Internal to ops/.
 *
 * 16 outputs per vector: the kernel rows that fall inside the plane are first combined by max
 * (masked loads, -inf off the row, so pads need no scalar code), then the two or three columns
 * of every window are picked out of the combined 32 (or 33) inputs with permutes. */
#ifndef EMBER_OPS_POOL_MAX512_H
#define EMBER_OPS_POOL_MAX512_H

#include <stdbool.h>
#include <stdint.h>

typedef struct em_maxpool_plane {
    int64_t H, W, OH, OW; /* input and output planes */
    int64_t KH, KW, SH;   /* kernel; row stride (the column stride is 2) */
    int64_t PT, PL;       /* leading pads */
    int64_t XS;           /* floats from one input row to the next; 0: W */
} em_maxpool_plane;

/* Whether this CPU runs the geometry here: AVX-512, KW 2 or 3, every window overlapping the
 * plane (pads smaller than the kernel, the last windows starting inside). */
bool em_maxpool_s2_supported(const em_maxpool_plane *q);

/* Planes [0, planes): plane i reads x + i * H * W and writes y + i * OH * OW. */
void em_maxpool_s2_planes(const em_maxpool_plane *q, const float *x, float *y, int64_t planes);

/* The same pool with column stride sw (any KW; pads smaller than the kernel): the kernel above
 * where it runs (sw 2, em_maxpool_s2_supported), else a portable loop. Plane i reads
 * x + i * x_plane and writes y + i * y_plane (planes inside larger buffers). For the pooled
 * FusedConv (conv.c, conv_direct.c); MaxPool itself has its own paths (pool.c). */
void em_maxpool_planes(const em_maxpool_plane *q, int64_t sw, const float *x, int64_t x_plane,
                       float *y, int64_t y_plane, int64_t planes);

#endif
