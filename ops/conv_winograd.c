/* Winograd F(2x2, 3x3) and F(4x4, 3x3) convolution (see conv_winograd.h).
 *
 * Tiles of all images are numbered in one sequence (image, tile row, tile column) and cut
 * into blocks; each block is one work item with its own scratch. With n = (t+2)^2 products
 * per tile (16 or 36):
 *   1. input transform: V[xi][c][tile] = (B^T d B)[xi] for the block's tiles, 16 tiles per
 *      vector (column k of 16 neighbouring patches is every t-th of the consecutive inputs,
 *      picked with permutes from masked loads, so the pads need no copy);
 *   2. n GEMMs M[xi] = U[xi] (M x C, packed at creation) x V[xi] (C x tiles);
 *   3. output transform Y = A^T M A per tile, plus bias, Z and the activation, written as t
 *      output rows of interleaved tile columns.
 * A block's V and M stay within L2 (BLOCK_BYTES). */
#include "conv_winograd.h"

#include <stdlib.h>
#include <string.h>

#include "conv_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define WINO_X86 1
#include "simd512.h"
#else
#define WINO_X86 0
#endif

#define BLOCK_BYTES (1u << 20) /* V + M of one block */
#define MIN_CHANNELS 16
/* F(4x4) only where its packed filters take at most this (ResNet's 256- and 512-channel
 * layers would add ~80 MB) and an image has at least MIN_TILES4 4x4 tiles: with fewer, its
 * GEMMs run on mostly empty 48-column tiles (SqueezeNet's 13x13 layers, 16 tiles: 10%
 * faster on 1 thread, 20% slower on 2). */
#define MAX_PACKED4_BYTES (4u << 20)
#define MIN_TILES4 32
/* F(4x4)'s 36 products per tile make M large: its GEMMs and output transform take at most
 * this many filters at a time, so that a block holds more tiles. */
#define MAX_ROWS4 64

bool em_wino_available(void) {
    return WINO_X86 && em_cg_available();
}

bool em_wino_worth_it(int64_t M, int64_t C) {
    return M >= MIN_CHANNELS && C >= MIN_CHANNELS;
}

int64_t em_wino_tile_for(int64_t M, int64_t C, int64_t OH, int64_t OW) {
    const bool small =
        (uint64_t)em_wino_packed_floats(M, C, 4) * sizeof(float) <= MAX_PACKED4_BYTES;
    return small && OH > 0 && OW > 0 && ((OH + 3) / 4) * ((OW + 3) / 4) >= MIN_TILES4 ? 4 : 2;
}

int64_t em_wino_packed_floats(int64_t M, int64_t C, int64_t tile) {
    return (tile + 2) * (tile + 2) * em_cg_packed_floats(M, C);
}

/* U = G g G^T for the C filters of output channel m, written to u[xi][c] (xi-th matrix, row
 * stride C). G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. Sixteen filters at a time with the
 * filter index innermost (the compiler vectorizes it): packing must not make session creation
 * slow. */
EM_VECTOR_CLONES
static void transform_filters(const float *restrict w, int64_t C, float *restrict u,
                              int64_t xi_stride) {
    for (int64_t c0 = 0; c0 < C; c0 += 16) {
        const int n = C - c0 < 16 ? (int)(C - c0) : 16;
        float g[9][16] = {{0}}, gg[4][3][16], out[16][16];
        for (int i = 0; i < n; i++)
            for (int t = 0; t < 9; t++) g[t][i] = w[(c0 + i) * 9 + t];
        for (int k = 0; k < 3; k++)
            for (int i = 0; i < 16; i++) {
                gg[0][k][i] = g[k][i];
                gg[1][k][i] = 0.5f * (g[k][i] + g[3 + k][i] + g[6 + k][i]);
                gg[2][k][i] = 0.5f * (g[k][i] - g[3 + k][i] + g[6 + k][i]);
                gg[3][k][i] = g[6 + k][i];
            }
        for (int r = 0; r < 4; r++)
            for (int i = 0; i < 16; i++) {
                out[4 * r + 0][i] = gg[r][0][i];
                out[4 * r + 1][i] = 0.5f * (gg[r][0][i] + gg[r][1][i] + gg[r][2][i]);
                out[4 * r + 2][i] = 0.5f * (gg[r][0][i] - gg[r][1][i] + gg[r][2][i]);
                out[4 * r + 3][i] = gg[r][2][i];
            }
        for (int xi = 0; xi < 16; xi++)
            memcpy(u + xi * xi_stride + c0, out[xi], (size_t)n * sizeof(float));
    }
}

/* The same for F(4x4, 3x3): U = G g G^T (6 x 6) with G = [1/4 0 0; -1/6 -1/6 -1/6;
 * -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1], in double (its fractions are not
 * exact in float), one channel at a time: only done at creation. */
static void transform_filters4(const float *w, int64_t C, float *u, int64_t xi_stride) {
    static const double G[6][3] = {{0.25, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    for (int64_t c = 0; c < C; c++) {
        const float *g = w + c * 9;
        double gg[6][3];
        for (int i = 0; i < 6; i++)
            for (int k = 0; k < 3; k++)
                gg[i][k] = G[i][0] * g[k] + G[i][1] * g[3 + k] + G[i][2] * g[6 + k];
        for (int i = 0; i < 6; i++)
            for (int jj = 0; jj < 6; jj++)
                u[(6 * i + jj) * xi_stride + c] =
                    (float)(gg[i][0] * G[jj][0] + gg[i][1] * G[jj][1] + gg[i][2] * G[jj][2]);
    }
}

bool em_wino_pack(const float *w, int64_t M, int64_t C, int64_t tile, float *dst) {
    /* One register panel of filters at a time: its transformed matrices, then packed. */
    const int nxi = (int)((tile + 2) * (tile + 2));
    float *u = malloc(sizeof(float) * (size_t)(nxi * EM_CG_MR * C));
    if (!u) return false;
    const int64_t per = em_cg_packed_floats(M, C);
    for (int64_t p = 0; p * EM_CG_MR < M; p++) {
        for (int64_t r = 0; r < EM_CG_MR && p * EM_CG_MR + r < M; r++) {
            const float *wm = w + (p * EM_CG_MR + r) * C * 9;
            if (tile == 4)
                transform_filters4(wm, C, u + r * C, EM_CG_MR * C);
            else
                transform_filters(wm, C, u + r * C, EM_CG_MR * C);
        }
        for (int xi = 0; xi < nxi; xi++)
            em_cg_pack_panel(u + xi * EM_CG_MR * C, C, M, C, p, dst + xi * per);
    }
    free(u);
    return true;
}

#if WINO_X86

#define TARGET_512 EM_TARGET_512

typedef struct wino_job {
    const em_wino_geom *g;
    const float *x, *packed, *bias, *z;
    float *y;
    em_activation act;
    int64_t t, nxi;                      /* tile side (2 or 4); products per tile */
    int64_t tiles_h, tiles_w, tiles;     /* per image: rows, columns, all */
    int64_t n_tiles, block;              /* all images; tiles per block */
    int64_t n_blocks, m_splits, m_chunk; /* work item = (block, range of m_chunk filters) */
    int64_t m_rows;                      /* filters per pass of GEMMs + output transform */
    char *scratch;
    size_t slot_bytes;
} wino_job;

/* Input transform of `cnt` (<= 16) tiles of one tile row, starting at tile column tx0, for
 * every channel: V[xi][c][l0 + i], row stride ldv. */
TARGET_512 static void input_tiles(const wino_job *j, int64_t n, int64_t ty, int64_t tx0, int cnt,
                                   float *v, int64_t ldv, int64_t l0) {
    const em_wino_geom *g = j->g;
    const int64_t H = g->H, W = g->W, C = g->C, c0 = 2 * tx0 - g->pl;
    const __m512i even =
        _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __mmask16 m_lo = em512_inside(c0, W), m_hi = em512_inside(c0 + 16, W),
                    m_lo2 = em512_inside(c0 + 2, W), m_hi2 = em512_inside(c0 + 18, W);
    const __mmask16 out = (__mmask16)((1u << cnt) - 1);
    bool row_in[4];
    for (int r = 0; r < 4; r++) {
        const int64_t iy = 2 * ty - g->pt + r;
        row_in[r] = iy >= 0 && iy < H;
    }
    for (int64_t c = 0; c < C; c++) {
        const float *plane = j->x + (n * C + c) * H * W;
        __m512 d[4][4];
        for (int r = 0; r < 4; r++) {
            if (!row_in[r]) {
                d[r][0] = d[r][1] = d[r][2] = d[r][3] = _mm512_setzero_ps();
                continue;
            }
            const float *row = plane + (2 * ty - g->pt + r) * W;
            const __m512 lo = EM512_LOAD(m_lo, row, c0), hi = EM512_LOAD(m_hi, row, c0 + 16);
            const __m512 lo2 = EM512_LOAD(m_lo2, row, c0 + 2),
                         hi2 = EM512_LOAD(m_hi2, row, c0 + 18);
            d[r][0] = _mm512_permutex2var_ps(lo, even, hi);
            d[r][1] = _mm512_permutex2var_ps(lo, odd, hi);
            d[r][2] = _mm512_permutex2var_ps(lo2, even, hi2);
            d[r][3] = _mm512_permutex2var_ps(lo2, odd, hi2);
        }
        /* B^T d: rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3); then the same on the columns. */
        __m512 t[4][4];
        for (int k = 0; k < 4; k++) {
            t[0][k] = _mm512_sub_ps(d[0][k], d[2][k]);
            t[1][k] = _mm512_add_ps(d[1][k], d[2][k]);
            t[2][k] = _mm512_sub_ps(d[2][k], d[1][k]);
            t[3][k] = _mm512_sub_ps(d[1][k], d[3][k]);
        }
        for (int r = 0; r < 4; r++) {
            float *dst = v + ((4 * r) * C + c) * ldv + l0;
            const int64_t step = C * ldv; /* next xi */
            _mm512_mask_storeu_ps(dst, out, _mm512_sub_ps(t[r][0], t[r][2]));
            _mm512_mask_storeu_ps(dst + step, out, _mm512_add_ps(t[r][1], t[r][2]));
            _mm512_mask_storeu_ps(dst + 2 * step, out, _mm512_sub_ps(t[r][2], t[r][1]));
            _mm512_mask_storeu_ps(dst + 3 * step, out, _mm512_sub_ps(t[r][1], t[r][3]));
        }
    }
}

/* Output transform of `cnt` tiles of one tile row (M[xi][m][l0 + i], row stride ldm) for
 * every output channel, with bias, Z and the activation. */
TARGET_512 static void output_tiles(const wino_job *j, int64_t n, int64_t ty, int64_t tx0, int cnt,
                                    const float *mb, int64_t rows_xi, int64_t ldm, int64_t l0,
                                    int64_t m_begin, int64_t m_end) {
    const em_wino_geom *g = j->g;
    const int64_t M = g->M, OH = g->OH, OW = g->OW;
    const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_idx =
        _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __mmask16 in = (__mmask16)((1u << cnt) - 1);
    /* Output columns 2 * tx0 + [0, 32) that exist. */
    int64_t lim = OW - 2 * tx0;
    if (lim > 2 * cnt) lim = 2 * cnt;
    const __mmask16 m0 = em512_inside(0, lim), m1 = em512_inside(16, lim);
    const bool in_regs = em512_act_in_registers(j->act.kind);
    const __m512 act_lo = _mm512_set1_ps(j->act.alpha), act_hi = _mm512_set1_ps(j->act.beta);
    const int rows = 2 * ty + 1 < OH ? 2 : 1;
    for (int64_t m = m_begin; m < m_end; m++) {
        __m512 s[2][4];
        for (int k = 0; k < 4; k++) {
            const float *p = mb + (k * rows_xi + m - m_begin) * ldm + l0;
            const int64_t step = 4 * rows_xi * ldm; /* next row of the 4 x 4 */
            const __m512 a0 = _mm512_maskz_loadu_ps(in, p),
                         a1 = _mm512_maskz_loadu_ps(in, p + step),
                         a2 = _mm512_maskz_loadu_ps(in, p + 2 * step),
                         a3 = _mm512_maskz_loadu_ps(in, p + 3 * step);
            s[0][k] = _mm512_add_ps(_mm512_add_ps(a0, a1), a2);
            s[1][k] = _mm512_sub_ps(_mm512_sub_ps(a1, a2), a3);
        }
        const __m512 b = _mm512_set1_ps(j->bias ? j->bias[m] : 0.0f);
        for (int r = 0; r < rows; r++) {
            const __m512 e =
                _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), s[r][2]), b);
            const __m512 o =
                _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[r][1], s[r][2]), s[r][3]), b);
            __m512 v0 = _mm512_permutex2var_ps(e, lo_idx, o),
                   v1 = _mm512_permutex2var_ps(e, hi_idx, o);
            const int64_t off = ((n * M + m) * OH + 2 * ty + r) * OW + 2 * tx0;
            if (j->z) {
                v0 = _mm512_add_ps(v0, EM512_LOAD(m0, j->z + off, 0));
                v1 = _mm512_add_ps(v1, EM512_LOAD(m1, j->z + off, 16));
            }
            if (in_regs) {
                v0 = em512_activate(v0, j->act.kind, act_lo, act_hi);
                v1 = em512_activate(v1, j->act.kind, act_lo, act_hi);
            }
            _mm512_mask_storeu_ps(j->y + off, m0, v0);
            if (m1) _mm512_mask_storeu_ps(j->y + off + 16, m1, v1);
            if (!in_regs) em_activation_apply(&j->act, j->y + off, lim);
        }
    }
}

/* ---- F(4x4, 3x3) ---- */

/* B^T of F(4x4, 3x3) on six values (a column or a row of the 6 x 6 patches):
 * [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. */
static inline __attribute__((always_inline)) TARGET_512 void bt6(const __m512 *d, __m512 *r) {
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
    const __m512 a = _mm512_fnmadd_ps(four, d[2], d[4]); /* d4 - 4 d2 */
    const __m512 b = _mm512_fnmadd_ps(four, d[1], d[3]); /* d3 - 4 d1 */
    const __m512 c = _mm512_sub_ps(d[4], d[2]);
    const __m512 e = _mm512_add_ps(_mm512_sub_ps(d[3], d[1]), _mm512_sub_ps(d[3], d[1]));
    r[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    r[1] = _mm512_add_ps(a, b);
    r[2] = _mm512_sub_ps(a, b);
    r[3] = _mm512_add_ps(c, e);
    r[4] = _mm512_sub_ps(c, e);
    r[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

/* Input transform of `cnt` (<= 16) 6x6 patches of one tile row (tile columns from tx0), every
 * channel: V[xi][c][l0 + i], row stride ldv. Column k of patch i is input column
 * c0 + 4 i + k: lanes 0-7 are picked from the 32 inputs at c0 (k < 4) or c0 + 4 (k >= 4),
 * lanes 8-15 from the 32 after them. */
TARGET_512 static void input_tiles4(const wino_job *j, int64_t n, int64_t ty, int64_t tx0, int cnt,
                                    float *v, int64_t ldv, int64_t l0) {
    const em_wino_geom *g = j->g;
    const int64_t H = g->H, W = g->W, C = g->C, c0 = 4 * tx0 - g->pl;
    __m512i pick[4];
    for (int k = 0; k < 4; k++)
        pick[k] = _mm512_add_epi32(
            _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28),
            _mm512_set1_epi32(k));
    __mmask16 m[2][4];
    for (int h = 0; h < 2; h++)
        for (int q = 0; q < 4; q++) m[h][q] = em512_inside(c0 + 4 * h + 16 * q, W);
    const __mmask16 out = (__mmask16)((1u << cnt) - 1);
    const int64_t step = C * ldv; /* next xi */
    for (int64_t c = 0; c < C; c++) {
        const float *plane = j->x + (n * C + c) * H * W;
        __m512 rows[6][6]; /* rows of B^T-transformed columns: rows[r][k] = (d B)[r][k] */
        for (int r = 0; r < 6; r++) {
            const int64_t iy = 4 * ty - g->pt + r;
            if (iy < 0 || iy >= H) {
                for (int k = 0; k < 6; k++) rows[r][k] = _mm512_setzero_ps();
                continue;
            }
            const float *row = plane + iy * W;
            __m512 d[6];
            for (int h = 0; h < 2; h++) {
                const int64_t col = c0 + 4 * h;
                const __m512 a0 = EM512_LOAD(m[h][0], row, col),
                             a1 = EM512_LOAD(m[h][1], row, col + 16),
                             a2 = EM512_LOAD(m[h][2], row, col + 32),
                             a3 = EM512_LOAD(m[h][3], row, col + 48);
                for (int k = 4 * h; k < (h ? 6 : 4); k++)
                    d[k] = _mm512_mask_blend_ps(0xFF00, _mm512_permutex2var_ps(a0, pick[k % 4], a1),
                                                _mm512_permutex2var_ps(a2, pick[k % 4], a3));
            }
            bt6(d, rows[r]);
        }
        for (int k = 0; k < 6; k++) {
            const __m512 col[6] = {rows[0][k], rows[1][k], rows[2][k],
                                   rows[3][k], rows[4][k], rows[5][k]};
            __m512 t[6];
            bt6(col, t);
            float *dst = v + (k * C + c) * ldv + l0;
            for (int i = 0; i < 6; i++) _mm512_mask_storeu_ps(dst + 6 * i * step, out, t[i]);
        }
    }
}

/* A^T of F(4x4, 3x3) on six values: [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]. */
static inline __attribute__((always_inline)) TARGET_512 void at6(const __m512 *s, __m512 *y) {
    const __m512 s12 = _mm512_add_ps(s[1], s[2]), d12 = _mm512_sub_ps(s[1], s[2]);
    const __m512 s34 = _mm512_add_ps(s[3], s[4]), d34 = _mm512_sub_ps(s[3], s[4]);
    y[0] = _mm512_add_ps(_mm512_add_ps(s[0], s12), s34);
    y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
    y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
    y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), s[5]);
}

/* Output transform of `cnt` tiles of one tile row (M[xi][m - m_begin][l0 + i]: rows_xi rows
 * per xi, row stride ldm) for filters [m_begin, m_end), with bias, Z and the activation: per
 * output row, the 4 columns
 * of 16 tiles are interleaved into 64 consecutive outputs. */
TARGET_512 static void output_tiles4(const wino_job *j, int64_t n, int64_t ty, int64_t tx0, int cnt,
                                     const float *mb, int64_t rows_xi, int64_t ldm, int64_t l0,
                                     int64_t m_begin, int64_t m_end) {
    const em_wino_geom *g = j->g;
    const int64_t M = g->M, OH = g->OH, OW = g->OW;
    /* (y0, y1) -> y0[0] y1[0] y0[1] y1[1] ...: tiles 0-7 (zip_lo) or 8-15 (zip_hi); then two
     * such pairs -> 4 columns of 4 tiles (quad_lo: tiles 0-3 of the pair, quad_hi: 4-7). */
    const __m512i zip_lo =
        _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i zip_hi = _mm512_add_epi32(zip_lo, _mm512_set1_epi32(8));
    const __m512i quad_lo =
        _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i quad_hi = _mm512_add_epi32(quad_lo, _mm512_set1_epi32(8));
    const __mmask16 in = (__mmask16)((1u << cnt) - 1);
    int64_t lim = OW - 4 * tx0; /* output columns 4 * tx0 + [0, 64) that exist */
    if (lim > 4 * cnt) lim = 4 * cnt;
    __mmask16 om[4];
    for (int q = 0; q < 4; q++) om[q] = em512_inside(16 * q, lim);
    const bool in_regs = em512_act_in_registers(j->act.kind);
    const __m512 act_lo = _mm512_set1_ps(j->act.alpha), act_hi = _mm512_set1_ps(j->act.beta);
    const int rows = OH - 4 * ty < 4 ? (int)(OH - 4 * ty) : 4;
    const int64_t step = rows_xi * ldm; /* next xi */
    for (int64_t m = m_begin; m < m_end; m++) {
        __m512 at[4][6]; /* A^T applied down each column */
        for (int k = 0; k < 6; k++) {
            const float *p = mb + (k * rows_xi + m - m_begin) * ldm + l0;
            __m512 s[6];
            for (int i = 0; i < 6; i++) s[i] = _mm512_maskz_loadu_ps(in, p + 6 * i * step);
            __m512 y[4];
            at6(s, y);
            for (int r = 0; r < 4; r++) at[r][k] = y[r];
        }
        const __m512 b = _mm512_set1_ps(j->bias ? j->bias[m] : 0.0f);
        for (int r = 0; r < rows; r++) {
            __m512 y[4];
            at6(at[r], y);
            for (int k = 0; k < 4; k++) y[k] = _mm512_add_ps(y[k], b);
            const __m512 p01 = _mm512_permutex2var_ps(y[0], zip_lo, y[1]),
                         p01h = _mm512_permutex2var_ps(y[0], zip_hi, y[1]),
                         p23 = _mm512_permutex2var_ps(y[2], zip_lo, y[3]),
                         p23h = _mm512_permutex2var_ps(y[2], zip_hi, y[3]);
            __m512 o[4] = {_mm512_permutex2var_ps(p01, quad_lo, p23),
                           _mm512_permutex2var_ps(p01, quad_hi, p23),
                           _mm512_permutex2var_ps(p01h, quad_lo, p23h),
                           _mm512_permutex2var_ps(p01h, quad_hi, p23h)};
            const int64_t off = ((n * M + m) * OH + 4 * ty + r) * OW + 4 * tx0;
            for (int q = 0; q < 4 && om[q]; q++) {
                if (j->z) o[q] = _mm512_add_ps(o[q], EM512_LOAD(om[q], j->z + off, 16 * q));
                if (in_regs) o[q] = em512_activate(o[q], j->act.kind, act_lo, act_hi);
                _mm512_mask_storeu_ps(j->y + off + 16 * q, om[q], o[q]);
            }
            if (!in_regs) em_activation_apply(&j->act, j->y + off, lim);
        }
    }
}

/* The run of tiles at block position l (of nt, from tile t0): image n, tile row ty, first tile
 * column tx; returns its length (within one tile row, at most 16). */
static int run_at(const wino_job *j, int64_t t0, int64_t nt, int64_t l, int64_t *n, int64_t *ty,
                  int64_t *tx) {
    const int64_t t = t0 + l, rest = t % j->tiles;
    *n = t / j->tiles;
    *ty = rest / j->tiles_w;
    *tx = rest % j->tiles_w;
    int64_t cnt = j->tiles_w - *tx;
    if (cnt > nt - l) cnt = nt - l;
    return cnt > 16 ? 16 : (int)cnt;
}

/* Work items [begin, end) for one slot: item = block * m_splits + filter range. Per item the
 * input transform, then per m_rows filters the GEMMs and their output transform, each pass
 * over the block's tiles in runs within one tile row. */
static void wino_items(void *ctx, int slot, int64_t begin, int64_t end) {
    const wino_job *j = ctx;
    const em_wino_geom *g = j->g;
    const int64_t ld = j->block, C = g->C, M = g->M, R = j->m_rows;
    float *v = (float *)(j->scratch + (size_t)slot * j->slot_bytes);
    float *mb = v + j->nxi * C * ld;
    const int64_t per = em_cg_packed_floats(M, C), mpad = (M + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    for (int64_t item = begin; item < end; item++) {
        const int64_t blk = item / j->m_splits, ms = item % j->m_splits;
        const int64_t m0 = ms * j->m_chunk, m1 = m0 + j->m_chunk < M ? m0 + j->m_chunk : M;
        if (m0 >= m1) continue;
        const int64_t t0 = blk * j->block;
        const int64_t nt = j->n_tiles - t0 < j->block ? j->n_tiles - t0 : j->block;
        int64_t n, ty, tx;
        for (int64_t l = 0; l < nt;) {
            const int cnt = run_at(j, t0, nt, l, &n, &ty, &tx);
            if (j->t == 4)
                input_tiles4(j, n, ty, tx, cnt, v, ld, l);
            else
                input_tiles(j, n, ty, tx, cnt, v, ld, l);
            l += cnt;
        }
        for (int64_t mc = m0; mc < m1; mc += R) {
            const int64_t me = mc + R < m1 ? mc + R : m1;
            for (int64_t xi = 0; xi < j->nxi; xi++)
                em_cg_gemm(j->packed + xi * per, mpad, mc, me - mc, C, v + xi * C * ld, nt,
                           EM_CG_NR, ld, ld, mb + xi * R * ld, ld, NULL);
            for (int64_t l = 0; l < nt;) {
                const int cnt = run_at(j, t0, nt, l, &n, &ty, &tx);
                if (j->t == 4)
                    output_tiles4(j, n, ty, tx, cnt, mb, R, ld, l, mc, me);
                else
                    output_tiles(j, n, ty, tx, cnt, mb, R, ld, l, mc, me);
                l += cnt;
            }
        }
    }
}

ember_status em_wino_conv(const em_wino_geom *g, const float *x, const float *packed,
                          const float *bias, const float *z, float *y, const em_activation *act,
                          em_exec *ex, ember_error *err) {
    wino_job j = {.g = g, .x = x, .packed = packed, .bias = bias, .z = z, .y = y};
    if (act) j.act = *act;
    j.t = g->tile == 4 ? 4 : 2;
    j.nxi = (j.t + 2) * (j.t + 2);
    j.tiles_h = (g->OH + j.t - 1) / j.t;
    j.tiles_w = (g->OW + j.t - 1) / j.t;
    j.tiles = j.tiles_h * j.tiles_w;
    j.n_tiles = g->batch * j.tiles;
    if (j.n_tiles == 0 || g->M == 0) return EMBER_OK;
    /* Tiles per block: V and M of a block within BLOCK_BYTES (at least one GEMM column tile),
     * blocks of equal size. All tiles that fit in one block (small planes) stay in one, its
     * filters split over the threads: a split of the tiles would leave the GEMMs' column
     * tiles half empty (SqueezeNet's 27x27 and 13x13 expand convs: 10-15% faster on 2
     * threads, 10% on 1). With fewer blocks than two per thread, the filters are split too.
     * Each such item redoes its block's input transform, cheap next to its share of the
     * GEMMs. */
    const int64_t m_all = (g->M + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    j.m_rows = j.t == 4 && m_all > MAX_ROWS4 ? MAX_ROWS4 : m_all;
    const int64_t fits = (int64_t)BLOCK_BYTES / (j.nxi * 4 * (g->C + j.m_rows));
    int64_t block = fits / EM_CG_NR * EM_CG_NR;
    if (block < EM_CG_NR) block = EM_CG_NR;
    const int threads = em_exec_threads(ex) > 0 ? em_exec_threads(ex) : 1;
    const bool one_block = j.n_tiles <= fits;
    if (one_block)
        block = j.n_tiles;
    else
        while (block > EM_CG_NR && (j.n_tiles + block - 1) / block < 2 * threads) block -= EM_CG_NR;
    j.n_blocks = (j.n_tiles + block - 1) / block;
    /* A whole number of blocks per thread (each slot takes a contiguous range of items). */
    if (j.n_blocks > threads) j.n_blocks = (j.n_blocks + threads - 1) / threads * threads;
    j.block = (j.n_tiles + j.n_blocks - 1) / j.n_blocks;
    /* Blocks of whole GEMM column tiles and a short last one rather than equal blocks of
     * partly empty tiles (196 tiles: 4 x 48 + 4, not 5 x 40 or 6 x 33), where there are blocks
     * enough for the short one not to unbalance the threads. */
    const int64_t whole = (j.block + EM_CG_NR - 1) / EM_CG_NR * EM_CG_NR;
    if (!one_block && (j.n_tiles + whole - 1) / whole >= 2 * threads) j.block = whole;
    j.n_blocks = (j.n_tiles + j.block - 1) / j.block;
    const int64_t m_panels = (g->M + EM_CG_MR - 1) / EM_CG_MR;
    if (one_block)
        j.m_splits = threads;
    else if (threads > 1 && j.n_blocks < 2 * threads)
        j.m_splits = (2 * threads + j.n_blocks - 1) / j.n_blocks;
    else
        j.m_splits = 1;
    if (j.m_splits > m_panels) j.m_splits = m_panels;
    j.m_chunk = (m_panels + j.m_splits - 1) / j.m_splits * EM_CG_MR;
    const int64_t items = j.n_blocks * j.m_splits;
    j.slot_bytes = ((size_t)(j.nxi * (g->C + j.m_rows) * j.block) * sizeof(float) + 63) / 64 * 64;
    const int slots = em_slot_count(ex, items);
    j.scratch = em_exec_scratch(ex, j.slot_bytes * (size_t)slots, err);
    if (!j.scratch) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_parallel_slots(ex, items, wino_items, &j);
    return EMBER_OK;
}

#else

ember_status em_wino_conv(const em_wino_geom *g, const float *x, const float *packed,
                          const float *bias, const float *z, float *y, const em_activation *act,
                          em_exec *ex, ember_error *err) {
    (void)g, (void)x, (void)packed, (void)bias, (void)z, (void)y, (void)act, (void)ex;
    return em_fail(err, EMBER_ERR_UNSUPPORTED, "Winograd convolution needs AVX-512");
}

#endif
