/* Direct convolution for few input channels (see conv_direct.h). */
#include "conv_direct.h"

#include <string.h>

#include "conv_gemm.h"

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

typedef struct dc_job {
    const em_dc_geom *g;
    const float *x, *packed, *bias, *z;
    float *y;
    em_activation act;
    int64_t bands, wpad; /* output-row bands per image; padded input row length */
    char *scratch;
    size_t slot_bytes;
} dc_job;

/* 16 x 16 transpose: r[p] lane l -> r[l] lane p. */
TARGET_512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(
            _mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(
            _mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(
            _mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(
            _mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* r[4q + j] now holds, in each 128-bit lane b, element j of rows 4b'..: gather the
     * 128-bit blocks: rows 0-3 x blocks, then rows 4-7, ... */
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
    }
}

/* One output row oy of image n: rows holds the C x KH padded input rows it reads. The column
 * stride SX is a constant in each specialization below, so the 16 broadcast addresses are
 * fixed offsets instead of 16 index registers. */
static inline __attribute__((always_inline)) TARGET_512 void
output_row_impl(const dc_job *j, int64_t n, int64_t oy, const float *rows, const int64_t SX) {
    const em_dc_geom *g = j->g;
    const int64_t K = g->C * g->KH * g->KW, sx = SX > 0 ? SX : g->sx, M = g->M, OW = g->OW;
    const bool in_regs = em512_act_in_registers(j->act.kind);
    const __m512 act_lo = _mm512_set1_ps(j->act.alpha), act_hi = _mm512_set1_ps(j->act.beta);
    for (int64_t ox0 = 0; ox0 < OW; ox0 += 16) {
        const int64_t np = OW - ox0 < 16 ? OW - ox0 : 16;
        const __mmask16 pm = (__mmask16)((1u << np) - 1);
        for (int64_t mb = 0; mb * 16 < M; mb++) {
            const int64_t nm = M - mb * 16 < 16 ? M - mb * 16 : 16;
            const __m512 b0 =
                j->bias ? _mm512_maskz_loadu_ps((__mmask16)((1u << nm) - 1), j->bias + mb * 16)
                        : _mm512_setzero_ps();
            __m512 acc[16];
            for (int p = 0; p < 16; p++) acc[p] = b0;
            const float *wp = j->packed + mb * K * 16;
            int64_t k = 0;
            for (int64_t c = 0; c < g->C; c++)
                for (int64_t ky = 0; ky < g->KH; ky++) {
                    const float *row = rows + (c * g->KH + ky) * j->wpad + ox0 * sx;
                    for (int64_t kx = 0; kx < g->KW; kx++, k++) {
                        const __m512 wv = _mm512_loadu_ps(wp + k * 16);
                        const float *src = row + kx * g->dx;
                        _Pragma("GCC unroll 16") for (int p = 0; p < 16; p++) acc[p] =
                            _mm512_fmadd_ps(wv, _mm512_set1_ps(src[p * sx]), acc[p]);
                    }
                }
            transpose16(acc);
            for (int64_t l = 0; l < nm; l++) {
                float *yr = j->y + ((n * M + mb * 16 + l) * g->OH + oy) * OW + ox0;
                __m512 v = acc[l];
                if (j->z) {
                    const float *zr = j->z + ((n * M + mb * 16 + l) * g->OH + oy) * OW + ox0;
                    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(pm, zr));
                }
                if (in_regs) v = em512_activate(v, j->act.kind, act_lo, act_hi);
                _mm512_mask_storeu_ps(yr, pm, v);
                if (!in_regs) em_activation_apply(&j->act, yr, np);
            }
        }
    }
}

TARGET_512 static void output_row_s1(const dc_job *j, int64_t n, int64_t oy, const float *rows) {
    output_row_impl(j, n, oy, rows, 1);
}
TARGET_512 static void output_row_s2(const dc_job *j, int64_t n, int64_t oy, const float *rows) {
    output_row_impl(j, n, oy, rows, 2);
}
TARGET_512 static void output_row_any(const dc_job *j, int64_t n, int64_t oy, const float *rows) {
    output_row_impl(j, n, oy, rows, 0);
}

/* Items [begin, end): (image, band of output rows). */
static void dc_items(void *ctx, int slot, int64_t begin, int64_t end) {
    const dc_job *j = ctx;
    const em_dc_geom *g = j->g;
    float *rows = (float *)(j->scratch + (size_t)slot * j->slot_bytes);
    for (int64_t it = begin; it < end; it++) {
        const int64_t n = it / j->bands, band = it % j->bands;
        const int64_t oy0 = g->OH * band / j->bands, oy1 = g->OH * (band + 1) / j->bands;
        for (int64_t oy = oy0; oy < oy1; oy++) {
            /* The padded input rows of this output row: column t is input column t - px. */
            for (int64_t c = 0; c < g->C; c++)
                for (int64_t ky = 0; ky < g->KH; ky++) {
                    float *dst = rows + (c * g->KH + ky) * j->wpad;
                    memset(dst, 0, (size_t)j->wpad * sizeof(float));
                    const int64_t iy = oy * g->sy - g->py + ky * g->dy;
                    if (iy < 0 || iy >= g->H) continue;
                    const int64_t lo = g->px, hi = g->px + g->W < j->wpad ? g->px + g->W : j->wpad;
                    if (hi > lo)
                        memcpy(dst + lo, j->x + ((n * g->C + c) * g->H + iy) * g->W,
                               (size_t)(hi - lo) * sizeof(float));
                }
            if (g->sx == 1)
                output_row_s1(j, n, oy, rows);
            else if (g->sx == 2)
                output_row_s2(j, n, oy, rows);
            else
                output_row_any(j, n, oy, rows);
        }
    }
}

ember_status em_dc_conv(const em_dc_geom *g, const float *x, const float *packed, const float *bias,
                        const float *z, float *y, const em_activation *act, em_exec *ex,
                        ember_error *err) {
    dc_job j = {.g = g, .x = x, .packed = packed, .bias = bias, .z = z, .y = y};
    if (act) j.act = *act;
    if (g->batch == 0 || g->OH == 0 || g->OW == 0 || g->M == 0) return EMBER_OK;
    /* Columns read: up to the last of 16 pixels of the last block, plus the kernel span; at
     * least the pads and the row (the copy fills [px, px + W)). */
    j.wpad = ((g->OW + 15) / 16 * 16 - 1) * g->sx + (g->KW - 1) * g->dx + 1;
    if (j.wpad < g->px + g->W) j.wpad = g->px + g->W;
    j.wpad = (j.wpad + 15) / 16 * 16;
    const int threads = em_exec_threads(ex) > 0 ? em_exec_threads(ex) : 1;
    /* Bands of output rows per image, so that every thread gets work (and, as in the other
     * convolutions, a spatial share of each image). */
    j.bands = g->batch % threads == 0 ? 1 : 2 * threads;
    if (j.bands > g->OH) j.bands = g->OH;
    const int64_t items = g->batch * j.bands;
    j.slot_bytes = ((size_t)(g->C * g->KH * j.wpad) * sizeof(float) + 63) / 64 * 64;
    const int slots = em_slot_count(ex, items);
    j.scratch = em_exec_scratch(ex, j.slot_bytes * (size_t)slots, err);
    if (!j.scratch) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_parallel_slots(ex, items, dc_items, &j);
    return EMBER_OK;
}

#else

ember_status em_dc_conv(const em_dc_geom *g, const float *x, const float *packed, const float *bias,
                        const float *z, float *y, const em_activation *act, em_exec *ex,
                        ember_error *err) {
    (void)g, (void)x, (void)packed, (void)bias, (void)z, (void)y, (void)act, (void)ex;
    return em_fail(err, EMBER_ERR_UNSUPPORTED, "the direct convolution needs AVX-512");
}

#endif
