/* Winograd F(2x2, 3x3) convolution (see conv_winograd.h).
 *
 * Tiles of all images are numbered in one sequence (image, tile row, tile column) and cut
 * into blocks; each block is one work item with its own scratch:
 *   1. input transform: V[xi][c][tile] = (B^T d B)[xi] for the block's tiles, 16 tiles per
 *      vector (the 4 columns of 16 neighbouring patches are the even / odd lanes of 34
 *      consecutive inputs, read with masked loads so the pads need no copy);
 *   2. 16 GEMMs M[xi] = U[xi] (M x C, packed at creation) x V[xi] (C x tiles);
 *   3. output transform Y = A^T M A per tile, plus bias, Z and the activation, written as two
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

bool em_wino_available(void) {
    return WINO_X86 && em_cg_available();
}

bool em_wino_worth_it(int64_t M, int64_t C) {
    return M >= MIN_CHANNELS && C >= MIN_CHANNELS;
}

int64_t em_wino_packed_floats(int64_t M, int64_t C) {
    return 16 * em_cg_packed_floats(M, C);
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

bool em_wino_pack(const float *w, int64_t M, int64_t C, float *dst) {
    /* One register panel of filters at a time: its 16 transformed matrices, then packed. */
    float *u = malloc(sizeof(float) * (size_t)(16 * EM_CG_MR * C));
    if (!u) return false;
    const int64_t per = em_cg_packed_floats(M, C);
    for (int64_t p = 0; p * EM_CG_MR < M; p++) {
        for (int64_t r = 0; r < EM_CG_MR && p * EM_CG_MR + r < M; r++)
            transform_filters(w + (p * EM_CG_MR + r) * C * 9, C, u + r * C, EM_CG_MR * C);
        for (int xi = 0; xi < 16; xi++)
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
    int64_t tiles_h, tiles_w, tiles;     /* per image: rows, columns, all */
    int64_t n_tiles, block;              /* all images; tiles per block */
    int64_t n_blocks, m_splits, m_chunk; /* work item = (block, range of m_chunk filters) */
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
                                    const float *mb, int64_t ldm, int64_t l0, int64_t m_begin,
                                    int64_t m_end) {
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
            const float *p = mb + (k * M + m) * ldm + l0;
            const int64_t step = 4 * M * ldm; /* next row of the 4 x 4 */
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

/* Work items [begin, end) for one slot: item = block * m_splits + filter range. */
static void wino_items(void *ctx, int slot, int64_t begin, int64_t end) {
    const wino_job *j = ctx;
    const em_wino_geom *g = j->g;
    const int64_t ld = j->block, C = g->C, M = g->M;
    float *v = (float *)(j->scratch + (size_t)slot * j->slot_bytes);
    float *mb = v + 16 * C * ld;
    const int64_t per = em_cg_packed_floats(M, C), mpad = (M + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    for (int64_t item = begin; item < end; item++) {
        const int64_t blk = item / j->m_splits, ms = item % j->m_splits;
        const int64_t m0 = ms * j->m_chunk, m1 = m0 + j->m_chunk < M ? m0 + j->m_chunk : M;
        if (m0 >= m1) continue;
        const int64_t t0 = blk * j->block;
        const int64_t nt = j->n_tiles - t0 < j->block ? j->n_tiles - t0 : j->block;
        /* Pass 0: input transform; pass 1: the 16 GEMMs, then the output transform. Both
         * walk the block's tiles in runs within one tile row, 16 at a time. */
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1)
                for (int xi = 0; xi < 16; xi++)
                    em_cg_gemm(j->packed + xi * per, mpad, m0, m1 - m0, C, v + xi * C * ld, nt,
                               EM_CG_NR, ld, ld, mb + (xi * M + m0) * ld, ld, NULL);
            for (int64_t l = 0; l < nt;) {
                const int64_t t = t0 + l, n = t / j->tiles, rest = t % j->tiles;
                const int64_t ty = rest / j->tiles_w, tx = rest % j->tiles_w;
                int64_t cnt = j->tiles_w - tx;
                if (cnt > nt - l) cnt = nt - l;
                if (cnt > 16) cnt = 16;
                if (pass == 0)
                    input_tiles(j, n, ty, tx, (int)cnt, v, ld, l);
                else
                    output_tiles(j, n, ty, tx, (int)cnt, mb, ld, l, m0, m1);
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
    j.tiles_h = (g->OH + 1) / 2;
    j.tiles_w = (g->OW + 1) / 2;
    j.tiles = j.tiles_h * j.tiles_w;
    j.n_tiles = g->batch * j.tiles;
    if (j.n_tiles == 0 || g->M == 0) return EMBER_OK;
    /* Tiles per block: V and M of a block within BLOCK_BYTES (at least one GEMM column tile),
     * blocks of equal size. With fewer blocks than two per thread (small planes), the filters
     * are split too: each such item redoes its block's input transform, which is cheap next
     * to its share of the GEMMs. */
    int64_t block = (int64_t)BLOCK_BYTES / (64 * (g->C + g->M)) / EM_CG_NR * EM_CG_NR;
    if (block < EM_CG_NR) block = EM_CG_NR;
    const int threads = em_exec_threads(ex) > 0 ? em_exec_threads(ex) : 1;
    while (block > EM_CG_NR && (j.n_tiles + block - 1) / block < 2 * threads) block -= EM_CG_NR;
    j.n_blocks = (j.n_tiles + block - 1) / block;
    /* A whole number of blocks per thread (each slot takes a contiguous range of items). */
    if (j.n_blocks > threads) j.n_blocks = (j.n_blocks + threads - 1) / threads * threads;
    j.block = (j.n_tiles + j.n_blocks - 1) / j.n_blocks;
    j.n_blocks = (j.n_tiles + j.block - 1) / j.block;
    const int64_t m_panels = (g->M + EM_CG_MR - 1) / EM_CG_MR;
    j.m_splits =
        threads > 1 && j.n_blocks < 2 * threads ? (2 * threads + j.n_blocks - 1) / j.n_blocks : 1;
    if (j.m_splits > m_panels) j.m_splits = m_panels;
    j.m_chunk = (m_panels + j.m_splits - 1) / j.m_splits * EM_CG_MR;
    const int64_t items = j.n_blocks * j.m_splits;
    j.slot_bytes = ((size_t)(16 * (g->C + g->M) * j.block) * sizeof(float) + 63) / 64 * 64;
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
