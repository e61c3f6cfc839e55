/* Depthwise 3x3 convolution of one float32 plane with AVX-512 (conv_dw.c). Internal to ops/.
 *
 * Reads the input plane in place: taps outside the plane come from masked loads (the lanes
 * off the plane read as zero), so no padded copy is made and rows of any width keep whole
 * vectors busy (a row narrower than 16 is one masked vector). Bias, residual and activation
 * are applied in registers before the single store of each output vector. */
#ifndef EMBER_OPS_CONV_DW_H
#define EMBER_OPS_CONV_DW_H

#include <stdbool.h>
#include <stdint.h>

#include "linalg.h"

typedef struct em_dw_plane {
    int64_t H, W;   /* input plane */
    int64_t OH, OW; /* output plane */
    int64_t sy, sx; /* strides; sx must be 1 or 2 */
    int64_t py, px; /* leading pads (the trailing ones follow from OH / OW) */
} em_dw_plane;

/* True when em_dw3x3_plane can run this geometry on this CPU (AVX-512F, sx 1 or 2, pads
 * smaller than the kernel). */
bool em_dw3x3_supported(const em_dw_plane *p);

/* Small stride-1 planes whose output rows are as wide as the input rows run as one flat run
 * of outputs; the masks of that run depend only on the geometry and are computed once per
 * convolution (not per range of planes) by em_dw3x3_flat_prepare. */
#define EM_DW_FLAT_MAX_VECTORS 64

typedef struct em_dw_flat {
    int n_vectors; /* 0: the plane is not run flat */
    uint16_t masks[EM_DW_FLAT_MAX_VECTORS][9];
} em_dw_flat;

void em_dw3x3_flat_prepare(const em_dw_plane *p, em_dw_flat *f);

/* Planes of one depthwise convolution: plane i (image i / channels, channel i % channels) reads
 * x + i * H * W with weights w + 9 * channel and bias[channel], writes y + i * OH * OW
 * = act(bias + conv3x3 (+ z + i * OH * OW)). bias, z, act may be NULL. */
typedef struct em_dw_planes {
    const float *x, *w, *bias, *z;
    float *y;
    int64_t channels;
    const em_activation *act;
    const em_dw_flat *flat; /* from em_dw3x3_flat_prepare; NULL: rows */
    /* Only part `part` of `parts` (>= 1) equal bands of each plane's outputs (output rows, or
     * vectors of a flat run): threads that split a plane by bands work on the same spatial
     * region as the convolutions around it, which split their columns the same way. */
    int64_t part, parts;
    /* Band mode (oy1 > 0; flat must be NULL, part / parts unused): only output rows
     * [oy0, oy1) are computed. Input plane i starts at x + i * x_plane and holds the rows
     * from x_row0 on (every row the band reads that lies inside the plane); Y and Z plane i
     * start at y / z + i * y_plane and hold the rows from oy0 on. For the band buffers of a
     * fused block (conv_mbconv.c). */
    int64_t oy0, oy1, x_plane, x_row0, y_plane;
} em_dw_planes;

/* Compute planes [begin, end). */
void em_dw3x3_planes(const em_dw_plane *p, const em_dw_planes *q, int64_t begin, int64_t end);

#endif
