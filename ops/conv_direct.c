/* Direct convolution for few input channels (see conv_direct.h). */
#include "conv_direct.h"

#include <string.h>

#include "conv_gemm.h"
#include "pool_max512.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define DC_X86 1
#include "simd512.h"
#else
#define DC_X86 0
#endif

#define MAX_TAPS 256 /* C * KH * KW: beyond this im2col + GEMM is the better plan */
#define MAX_CHANNELS 4
#define MIN_FILTERS 16 /* fewer would leave lanes of each 16-filter block empty */

bool em_dc_eligible(int64_t M, int64_t C, int64_t KH, int64_t KW) {
    return DC_X86 && em_cg_available() && C >= 1 && C <= MAX_CHANNELS && M >= MIN_FILTERS &&
           KH >= 1 && KW >= 1 && C * KH * KW <= MAX_TAPS;
}

int64_t em_dc_packed_floats(int64_t M, int64_t C, int64_t KH, int64_t KW) {
    return (M + 15) / 16 * C * KH * KW * 16;
}

void em_dc_pack(const float *w, int64_t M, int64_t C, int64_t KH, int64_t KW, float *dst) {
    const int64_t K = C * KH * KW;
    for (int64_t mb = 0; mb < (M + 15) / 16; mb++)
        for (int64_t k = 0; k < K; k++)
            for (int64_t l = 0; l < 16; l++) {
                const int64_t m = mb * 16 + l;
                dst[(mb * K + k) * 16 + l] = m < M ? w[m * K + k] : 0.0f;
            }
}

#if DC_X86

#define TARGET_512 EM_TARGET_512

/* Most output rows per sub-band: their input rows are split into phases once for all of
 * them; fewer when the split rows of all channels would pass SUB_BYTES. */
#define SUB_ROWS 8
#define SUB_BYTES (256u << 10)
/* Filters per register tile (half of a packed block of 16) and most pixel blocks per tile. */
#define TILE_FILTERS 8
#define MAX_PIXEL_BLOCKS 3

/* Where tiles store: image n, filter m, output row oy at y + n * image + m * plane +
 * (oy - row0) * row (the output tensor, row = OW; or a band buffer for the pooled path, whose
 * rows are padded to whole blocks of 16 so that every block is one aligned store). */
typedef struct dc_out {
    float *y;
    int64_t image, plane, row0, row;
} dc_out;

/* A block of 16 output pixels in a sub-band: row oy, first column ox; its input for tap k
 * starts at tap[k] + off (tap[] is set for the sub-band's first row). */
typedef struct dc_block {
    int64_t off, oy, ox;
} dc_block;

typedef struct dc_job {
    const em_dc_geom *g;
    const float *x, *packed, *bias, *z;
    float *y;
    em_activation act;
    int64_t bands;    /* output-row bands per image */
    int64_t blocks;   /* 16-pixel blocks per output row */
    int64_t wph;      /* floats per phase row */
    int64_t sub;      /* output rows per sub-band */
    int64_t sub_rows; /* input rows of one sub-band (at most) */
    char *scratch;    /* per slot: split rows, then the tap table, then the blocks */
    size_t slot_bytes, taps_offset, blocks_offset;
    /* With a MaxPool after the conv (em_dc_conv_maxpool): bands of pool_rows pooled rows per
     * image; each slot's conv rows go to its band buffer (at band_offset, band_plane floats
     * per filter) instead of y. */
    const em_dc_pool *pool;
    int64_t pool_rows, pool_bands, band_row, band_plane;
    size_t band_offset;
} dc_job;

/* Phase p of the zero-padded input row xrow (input column i sits at padded column i + px):
 * dst[i] = padded column i * sx + p, for i < wph. Stride 2 splits 32 columns into their even
 * and odd halves with two permutes; masked loads supply the padding. */
TARGET_512 static void split_row(const dc_job *j, const float *xrow, float *dst) {
    const em_dc_geom *g = j->g;
    const int64_t sx = g->sx, W = g->W, px = g->px, wph = j->wph;
    if (sx == 1) {
        for (int64_t i = 0; i < wph; i += 16) {
            const int64_t c = i - px;
            _mm512_storeu_ps(dst + i, EM512_LOAD(em512_inside(c, W), xrow, c));
        }
    } else if (sx == 2) {
        const __m512i even =
            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        for (int64_t i = 0; i < wph; i += 16) {
            const int64_t c = 2 * i - px;
            const __m512 a = EM512_LOAD(em512_inside(c, W), xrow, c);
            const __m512 b = EM512_LOAD(em512_inside(c + 16, W), xrow, c + 16);
            _mm512_storeu_ps(dst + i, _mm512_permutex2var_ps(a, even, b));
            _mm512_storeu_ps(dst + wph + i, _mm512_permutex2var_ps(a, odd, b));
        }
    } else {
        for (int64_t p = 0; p < sx; p++)
            for (int64_t i = 0; i < wph; i++) {
                const int64_t c = i * sx + p - px;
                dst[p * wph + i] = c >= 0 && c < W ? xrow[c] : 0.0f;
            }
    }
}

/* One register tile: PB blocks of 16 output pixels (bl[0..PB), possibly on different rows) x
 * TILE_FILTERS filters from m0. Every tap is one plain load per block and one broadcast weight
 * per filter into PB x 8 accumulators; each accumulator is 16 consecutive outputs of one filter,
 * stored straight into its NCHW row. */
static inline __attribute__((always_inline)) TARGET_512 void tile(const dc_job *j, const dc_out *o,
                                                                  const float *const *tap,
                                                                  int64_t n, const dc_block *bl,
                                                                  int64_t m0, const int PB) {
    const em_dc_geom *g = j->g;
    const int64_t K = g->C * g->KH * g->KW, M = g->M, OW = g->OW;
    const int64_t nf = M - m0 < TILE_FILTERS ? M - m0 : TILE_FILTERS;
    const float *w = j->packed + (m0 / 16) * K * 16 + m0 % 16;
    __m512 acc[MAX_PIXEL_BLOCKS][TILE_FILTERS];
    for (int f = 0; f < TILE_FILTERS; f++) {
        const __m512 b = _mm512_set1_ps(j->bias && f < nf ? j->bias[m0 + f] : 0.0f);
        for (int b2 = 0; b2 < PB; b2++) acc[b2][f] = b;
    }
    int64_t off[MAX_PIXEL_BLOCKS];
    for (int b2 = 0; b2 < PB; b2++) off[b2] = bl[b2].off;
    for (int64_t k = 0; k < K; k++) {
        const float *src = tap[k];
        __m512 xv[MAX_PIXEL_BLOCKS];
        for (int b2 = 0; b2 < PB; b2++) xv[b2] = _mm512_loadu_ps(src + off[b2]);
        const float *wk = w + k * 16;
        for (int f = 0; f < TILE_FILTERS; f++) {
            const __m512 wv = _mm512_set1_ps(wk[f]);
            for (int b2 = 0; b2 < PB; b2++) acc[b2][f] = _mm512_fmadd_ps(xv[b2], wv, acc[b2][f]);
        }
    }
    const bool in_regs = em512_act_in_registers(j->act.kind);
    const __m512 lo = _mm512_set1_ps(j->act.alpha), hi = _mm512_set1_ps(j->act.beta);
    const int64_t plane = o->plane;
    /* Constant bounds (nf only guards): the accumulators stay in registers. */
    for (int b2 = 0; b2 < PB; b2++) {
        const int64_t ox = bl[b2].ox, oy = bl[b2].oy, np = OW - ox < 16 ? OW - ox : 16;
        const __mmask16 pm = (__mmask16)((1u << np) - 1);
        const __mmask16 sm = o->row - ox >= 16 ? (__mmask16)0xFFFF : pm; /* pads take the rest */
        float *y0 = o->y + n * o->image + m0 * plane + (oy - o->row0) * o->row + ox;
        const float *z0 = j->z ? j->z + ((n * M + m0) * g->OH + oy) * OW + ox : NULL;
        for (int f = 0; f < TILE_FILTERS; f++) {
            if (f >= nf) break;
            __m512 v = acc[b2][f];
            if (z0) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(pm, z0 + f * g->OH * OW));
            if (in_regs) v = em512_activate(v, j->act.kind, lo, hi);
            _mm512_mask_storeu_ps(y0 + f * plane, sm, v);
            if (!in_regs) em_activation_apply(&j->act, y0 + f * plane, np);
        }
    }
}

TARGET_512 static void tile1(const dc_job *j, const dc_out *o, const float *const *tap, int64_t n,
                             const dc_block *bl, int64_t m0) {
    tile(j, o, tap, n, bl, m0, 1);
}
TARGET_512 static void tile2(const dc_job *j, const dc_out *o, const float *const *tap, int64_t n,
                             const dc_block *bl, int64_t m0) {
    tile(j, o, tap, n, bl, m0, 2);
}
TARGET_512 static void tile3(const dc_job *j, const dc_out *o, const float *const *tap, int64_t n,
                             const dc_block *bl, int64_t m0) {
    tile(j, o, tap, n, bl, m0, 3);
}

/* Output rows [oy0, oy1) of image n (at most j->sub): split the input rows they read into
 * phases (rows outside the image as zeros), set the tap table for row oy0, then run the
 * sub-band's blocks of 16 pixels, row after row, in tiles of 3 (a tile may end one row and
 * start the next, so narrow rows still fill it). */
TARGET_512 static void sub_band(const dc_job *j, const dc_out *o, char *slot, int64_t n,
                                int64_t oy0, int64_t oy1) {
    const em_dc_geom *g = j->g;
    float *buf = (float *)slot;
    const float **tap = (const float **)(slot + j->taps_offset);
    dc_block *bl = (dc_block *)(slot + j->blocks_offset);
    const int64_t iy0 = oy0 * g->sy - g->py;
    const int64_t rows = (oy1 - 1 - oy0) * g->sy + (g->KH - 1) * g->dy + 1;
    const int64_t row_floats = g->sx * j->wph;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t r = 0; r < rows; r++) {
            float *dst = buf + (c * j->sub_rows + r) * row_floats;
            const int64_t iy = iy0 + r;
            if (iy < 0 || iy >= g->H)
                memset(dst, 0, (size_t)row_floats * sizeof(float));
            else
                split_row(j, j->x + ((n * g->C + c) * g->H + iy) * g->W, dst);
        }
    int64_t k = 0;
    for (int64_t c = 0; c < g->C; c++)
        for (int64_t ky = 0; ky < g->KH; ky++) {
            const float *row = buf + (c * j->sub_rows + ky * g->dy) * row_floats;
            for (int64_t kx = 0; kx < g->KW; kx++, k++) {
                const int64_t t = kx * g->dx;
                tap[k] = row + (t % g->sx) * j->wph + t / g->sx;
            }
        }
    int64_t nb = 0;
    for (int64_t oy = oy0; oy < oy1; oy++)
        for (int64_t b = 0; b < j->blocks; b++, nb++)
            bl[nb] =
                (dc_block){.off = (oy - oy0) * g->sy * row_floats + 16 * b, .oy = oy, .ox = 16 * b};
    /* Tiles of 3 blocks (2 + 2 for the last 4, so no tile runs mostly empty). Filter groups
     * outermost: each writes its 8 planes as 8 sequential streams (all filters per tile, 64
     * scattered lines at a time, measured 7% slower). */
    for (int64_t m0 = 0; m0 < g->M; m0 += TILE_FILTERS)
        for (int64_t b = 0; b < nb;) {
            const int64_t left = nb - b, pb = left >= 3 && left != 4 ? 3 : left >= 2 ? 2 : 1;
            if (pb == 3)
                tile3(j, o, tap, n, bl + b, m0);
            else if (pb == 2)
                tile2(j, o, tap, n, bl + b, m0);
            else
                tile1(j, o, tap, n, bl + b, m0);
            b += pb;
        }
}

/* Items [begin, end): (image, band of output rows). */
static void dc_items(void *ctx, int slot, int64_t begin, int64_t end) {
    const dc_job *j = ctx;
    const em_dc_geom *g = j->g;
    char *mem = j->scratch + (size_t)slot * j->slot_bytes;
    const dc_out o = {
        .y = j->y, .image = g->M * g->OH * g->OW, .plane = g->OH * g->OW, .row = g->OW};
    for (int64_t it = begin; it < end; it++) {
        const int64_t n = it / j->bands, band = it % j->bands;
        const int64_t oy0 = g->OH * band / j->bands, oy1 = g->OH * (band + 1) / j->bands;
        for (int64_t oy = oy0; oy < oy1; oy += j->sub)
            sub_band(j, &o, mem, n, oy, oy + j->sub < oy1 ? oy + j->sub : oy1);
    }
}

/* The sub-band layout of j->g: pixel blocks, phase rows, rows per sub-band, and the parts of
 * a slot (split rows, tap table, blocks), leaving j->slot_bytes at their end. */
static void dc_layout(dc_job *j) {
    const em_dc_geom *g = j->g;
    j->blocks = (g->OW + 15) / 16;
    /* A tap reads phase row entries up to the last pixel of the last block plus its offset. */
    j->wph = (j->blocks * 16 + (g->KW - 1) * g->dx / g->sx + 1 + 15) / 16 * 16;
    /* Output rows per sub-band: as many as SUB_ROWS while the split rows fit SUB_BYTES. */
    const size_t row_bytes = (size_t)(g->C * g->sx * j->wph) * sizeof(float);
    j->sub = SUB_ROWS;
    while (j->sub > 1 &&
           (size_t)((j->sub - 1) * g->sy + (g->KH - 1) * g->dy + 1) * row_bytes > SUB_BYTES)
        j->sub--;
    j->sub_rows = (j->sub - 1) * g->sy + (g->KH - 1) * g->dy + 1;
    const int64_t K = g->C * g->KH * g->KW;
    j->taps_offset = ((size_t)j->sub_rows * row_bytes + 63) / 64 * 64;
    j->blocks_offset = j->taps_offset + ((size_t)K * sizeof(float *) + 63) / 64 * 64;
    j->slot_bytes =
        j->blocks_offset + ((size_t)(j->sub * j->blocks) * sizeof(dc_block) + 63) / 64 * 64;
}

ember_status em_dc_conv(const em_dc_geom *g, const float *x, const float *packed, const float *bias,
                        const float *z, float *y, const em_activation *act, em_exec *ex,
                        ember_error *err) {
    dc_job j = {.g = g, .x = x, .packed = packed, .bias = bias, .z = z, .y = y};
    if (act) j.act = *act;
    if (g->batch == 0 || g->OH == 0 || g->OW == 0 || g->M == 0) return EMBER_OK;
    dc_layout(&j);
    const int threads = em_exec_threads(ex) > 0 ? em_exec_threads(ex) : 1;
    /* Bands of output rows per image, so that every thread gets work (and, as in the other
     * convolutions, a spatial share of each image). */
    j.bands = g->batch % threads == 0 ? 1 : 2 * threads;
    if (j.bands > g->OH) j.bands = g->OH;
    const int64_t items = g->batch * j.bands;
    const int slots = em_slot_count(ex, items);
    j.scratch = em_exec_scratch(ex, j.slot_bytes * (size_t)slots, err);
    if (!j.scratch) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_parallel_slots(ex, items, dc_items, &j);
    return EMBER_OK;
}

/* ---- conv + MaxPool ---- */

/* Conv rows of one band of pooled rows, most: kept in L2 with the split input rows. */
#define POOL_BAND_BYTES (512u << 10)

/* MaxPool of a band of conv rows (band rows lo.. in buf, band_plane floats per filter) into
 * pooled rows [p0, p1) of image n. */
static void pool_band(const dc_job *j, const float *buf, int64_t n, int64_t lo, int64_t hi,
                      int64_t p0, int64_t p1) {
    const em_dc_geom *g = j->g;
    const em_dc_pool *p = j->pool;
    const em_maxpool_plane q = {.H = hi - lo + 1,
                                .W = g->OW,
                                .OH = p1 - p0,
                                .OW = p->OW,
                                .KH = p->KH,
                                .KW = p->KW,
                                .SH = p->SH,
                                .PT = lo - (p0 * p->SH - p->PT),
                                .PL = p->PL,
                                .XS = j->band_row};
    em_maxpool_planes(&q, p->SW, buf, j->band_plane, j->y + n * g->M * p->OH * p->OW + p0 * p->OW,
                      p->OH * p->OW, g->M);
}

/* Items [begin, end): (image, band of pooled rows), in order: conv rows the previous band of
 * the same image already computed are moved to the top of the buffer, not computed again. */
static void pool_items(void *ctx, int slot, int64_t begin, int64_t end) {
    const dc_job *j = ctx;
    const em_dc_geom *g = j->g;
    const em_dc_pool *p = j->pool;
    char *mem = j->scratch + (size_t)slot * j->slot_bytes;
    float *band = (float *)(mem + j->band_offset);
    em_band_held held = {-1, 0, -1};
    for (int64_t it = begin; it < end; it++) {
        const int64_t n = it / j->pool_bands, p0 = it % j->pool_bands * j->pool_rows;
        const int64_t p1 = p0 + j->pool_rows < p->OH ? p0 + j->pool_rows : p->OH;
        if (p0 >= p1) continue;
        int64_t lo = p0 * p->SH - p->PT, hi = (p1 - 1) * p->SH - p->PT + p->KH - 1;
        if (lo < 0) lo = 0;
        if (hi > g->OH - 1) hi = g->OH - 1;
        const int64_t from =
            em_band_reuse(band, g->M, j->band_plane, j->band_row, &held, n, lo, hi);
        const dc_out o = {.y = band, .plane = j->band_plane, .row0 = lo, .row = j->band_row};
        for (int64_t oy = from; oy <= hi; oy += j->sub)
            sub_band(j, &o, mem, n, oy, oy + j->sub < hi + 1 ? oy + j->sub : hi + 1);
        pool_band(j, band, n, lo, hi, p0, p1);
    }
}

ember_status em_dc_conv_maxpool(const em_dc_geom *g, const em_dc_pool *pool, const float *x,
                                const float *packed, const float *bias, float *y,
                                const em_activation *act, em_exec *ex, ember_error *err) {
    dc_job j = {.g = g, .x = x, .packed = packed, .bias = bias, .y = y, .pool = pool};
    if (act) j.act = *act;
    if (g->batch == 0 || pool->OH == 0 || pool->OW == 0 || g->M == 0) return EMBER_OK;
    dc_layout(&j);
    /* Pooled rows per band: as many as keep the band's conv rows within POOL_BAND_BYTES, then
     * evened out so that the batch's bands split evenly over the threads when they can. */
    j.band_row = j.blocks * 16;
    const size_t conv_row = (size_t)(g->M * j.band_row) * sizeof(float);
    int64_t rows = 1;
    while (rows < pool->OH && (size_t)(rows * pool->SH + pool->KH) * conv_row <= POOL_BAND_BYTES)
        rows++;
    j.pool_rows = em_band_rows(g->batch, pool->OH, rows, em_exec_threads(ex));
    j.pool_bands = (pool->OH + j.pool_rows - 1) / j.pool_rows;
    int64_t conv_rows = (j.pool_rows - 1) * pool->SH + pool->KH;
    if (conv_rows > g->OH) conv_rows = g->OH;
    j.band_plane = conv_rows * j.band_row;
    j.band_offset = (j.slot_bytes + 63) / 64 * 64;
    j.slot_bytes = j.band_offset + (size_t)(g->M * j.band_plane) * sizeof(float);
    const int64_t items = g->batch * j.pool_bands;
    const int slots = em_slot_count(ex, items);
    j.scratch = em_exec_scratch(ex, j.slot_bytes * (size_t)slots, err);
    if (!j.scratch) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_parallel_slots(ex, items, pool_items, &j);
    return EMBER_OK;
}

#else

ember_status em_dc_conv_maxpool(const em_dc_geom *g, const em_dc_pool *pool, const float *x,
                                const float *packed, const float *bias, float *y,
                                const em_activation *act, em_exec *ex, ember_error *err) {
    (void)g, (void)pool, (void)x, (void)packed, (void)bias, (void)y, (void)act, (void)ex;
    return em_fail(err, EMBER_ERR_UNSUPPORTED, "the direct convolution needs AVX-512");
}

ember_status em_dc_conv(const em_dc_geom *g, const float *x, const float *packed, const float *bias,
                        const float *z, float *y, const em_activation *act, em_exec *ex,
                        ember_error *err) {
    (void)g, (void)x, (void)packed, (void)bias, (void)z, (void)y, (void)act, (void)ex;
    return em_fail(err, EMBER_ERR_UNSUPPORTED, "the direct convolution needs AVX-512");
}

#endif
