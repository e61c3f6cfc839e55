/* ConvTranspose of float32 on the packed GEMM with a gathering col2im (convt_gemm.c). Internal
 * to ops/.
 *
 * ConvTranspose is a GEMM, col = W^T X (rows: output channel x kernel tap, columns: input
 * positions), then col2im, which adds each column into the outputs its taps reach. Here W^T is
 * packed once at session creation; the columns of several images run as one GEMM (small
 * images: the weights are read once per batch, not once per image); and col2im runs the other
 * way round: each output gathers its few contributions from col, 16 outputs per vector, and is
 * stored once, starting from the bias. One image's col must fit in L2 for that (em_ct_eligible).
 * Each output sums its contributions in an order fixed by the geometry, so results are the same
 * at every batch size and thread count. */
#ifndef EMBER_OPS_CONVT_GEMM_H
#define EMBER_OPS_CONVT_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "linalg.h"

typedef struct em_ct_geom {
    int64_t batch, C, M, G; /* images, input channels, output channels, groups */
    /* Spatial dims with leading 1s (1-D and 2-D as 3-D); pb: leading pads. */
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
} em_ct_geom;

/* True when the CPU runs this path (the packed AVX-512 GEMM and gathers). */
bool em_ct_available(void);

/* Whether a geometry takes this path: one image's col (8 output channels) and the gather table
 * fit their budgets. Depends on neither the batch size nor the thread count. */
bool em_ct_eligible(const em_ct_geom *g);

/* Floats of the packed W^T of a C x Mg x kernel weight in G groups (k_sz taps). */
int64_t em_ct_packed_floats(int64_t C, int64_t Mg, int64_t k_sz, int64_t G);

/* Pack w (C x Mg x k_sz, G groups) into dst. False when out of memory (dst untouched). */
bool em_ct_pack(const float *w, int64_t C, int64_t Mg, int64_t k_sz, int64_t G, float *dst);

/* Where each output's contributions come from: for every 16 outputs and contribution slot, the
 * kernel tap (-1: that output has fewer) and the input position of each lane, slots in tap
 * order. Depends on the planes only, not on the batch size, so it is made once at session
 * creation when the shapes are known then. */
typedef struct em_ct_table {
    int32_t *tap, *pos; /* ceil(out / 16) x slots x 16 each */
    int64_t slots;      /* most contributions of one output */
} em_ct_table;

/* Bytes of the table of an eligible geometry (both arrays, one block). */
size_t em_ct_table_bytes(const em_ct_geom *g);

/* Fill the table of g into mem (em_ct_table_bytes); t points into mem. */
void em_ct_table_fill(const em_ct_geom *g, int32_t *mem, em_ct_table *t);

/* y (batch x M x out) = ConvTranspose(x) + bias (bias may be NULL). table: g's table, or NULL
 * to make one for this run. */
ember_status em_ct_run(const em_ct_geom *g, const float *x, const float *packed,
                       const em_ct_table *table, const float *bias, float *y, em_exec *ex,
                       ember_error *err);

#endif
