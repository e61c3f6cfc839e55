/* MaxPool with column stride 2 on AVX-512 (see pool_max512.h). The function carries its own
 * target attribute and is chosen at run time. */
#include "pool_max512.h"

#include <math.h>

#include "conv_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define MP_X86 1
#include "simd512.h"
#else
#define MP_X86 0
#endif

bool em_maxpool_s2_supported(const em_maxpool_plane *q) {
    return MP_X86 && em_cg_available() && (q->KW == 2 || q->KW == 3) && q->KH >= 1 && q->SH >= 1 &&
           q->H > 0 && q->W > 0 && q->OH > 0 && q->OW > 0 && q->PT >= 0 && q->PT < q->KH &&
           q->PL >= 0 && q->PL < q->KW && (q->OH - 1) * q->SH - q->PT < q->H &&
           (q->OW - 1) * 2 - q->PL < q->W;
}

#if MP_X86

/* The 16 floats at row + col in the lanes of mask m, -inf in the others (never read, so col
 * may lie before the row: integer arithmetic keeps the pointer inside the object). */
static inline __attribute__((always_inline)) EM_TARGET_512 __m512 load_ninf(__mmask16 m,
                                                                            const float *row,
                                                                            int64_t col) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m,
                                (const void *)((uintptr_t)row + (uintptr_t)(col * 4)));
}

/* Blocks of 16 outputs per row whose load masks are computed once per plane (rows up to 1024
 * outputs; wider ones go in several passes). Blocks whose loads all lie inside the row use
 * plain loads. */
#define MP_MAX_BLOCKS 64

/* Floats from one input row to the next. */
static inline int64_t row_stride(const em_maxpool_plane *q) {
    return q->XS ? q->XS : q->W;
}

/* One plane; KW (2 or 3) and, when nonzero, KH are constants of the specializations below, so
 * the compiler drops the KW tests and unrolls the kernel rows. */
static inline __attribute__((always_inline)) EM_TARGET_512 void
plane_k(const em_maxpool_plane *q, const float *x, float *y, const int KW, const int KH_FIXED) {
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const int64_t W = q->W, XS = row_stride(q), nb_all = (q->OW + 15) / 16;
    const int64_t H = q->H, OH = q->OH, OW = q->OW, SH = q->SH, PT = q->PT, PL = q->PL;
    const int64_t KH = KH_FIXED ? KH_FIXED : q->KH;
    for (int64_t b0 = 0; b0 < nb_all; b0 += MP_MAX_BLOCKS) {
        const int nb = (int)(nb_all - b0 < MP_MAX_BLOCKS ? nb_all - b0 : MP_MAX_BLOCKS);
        __mmask16 m[MP_MAX_BLOCKS][3], om[MP_MAX_BLOCKS];
        bool full[MP_MAX_BLOCKS];
        for (int b = 0; b < nb; b++) {
            const int64_t ox = 16 * (b0 + b), c = 2 * ox - PL, n = OW - ox < 16 ? OW - ox : 16;
            for (int k = 0; k < 3; k++) m[b][k] = em512_inside(c + 16 * k, W);
            if (KW == 2) m[b][2] = 0;
            om[b] = (__mmask16)((1u << n) - 1);
            full[b] = m[b][0] == 0xFFFF && m[b][1] == 0xFFFF && (KW == 2 || m[b][2] == 0xFFFF);
        }
        for (int64_t oy = 0; oy < OH; oy++) {
            const int64_t h0 = oy * SH - PT;
            const int64_t hs = h0 < 0 ? 0 : h0, he = h0 + KH < H ? h0 + KH : H;
            float *yr = y + oy * OW + 16 * b0;
            for (int b = 0; b < nb; b++) {
                const int64_t c = 2 * 16 * (b0 + b) - PL;
                __m512 v0 = ninf, v1 = ninf, v2 = ninf;
                if (full[b]) {
#pragma GCC unroll 3
                    for (int64_t h = hs; h < he; h++) {
                        const float *row = x + h * XS + c;
                        v0 = _mm512_max_ps(v0, _mm512_loadu_ps(row));
                        v1 = _mm512_max_ps(v1, _mm512_loadu_ps(row + 16));
                        if (KW == 3) v2 = _mm512_max_ps(v2, _mm512_loadu_ps(row + 32));
                    }
                } else {
#pragma GCC unroll 3
                    for (int64_t h = hs; h < he; h++) {
                        const float *row = x + h * XS;
                        v0 = _mm512_max_ps(v0, load_ninf(m[b][0], row, c));
                        v1 = _mm512_max_ps(v1, load_ninf(m[b][1], row, c + 16));
                        if (KW == 3) v2 = _mm512_max_ps(v2, load_ninf(m[b][2], row, c + 32));
                    }
                }
                __m512 r = _mm512_max_ps(_mm512_permutex2var_ps(v0, even, v1),
                                         _mm512_permutex2var_ps(v0, odd, v1));
                if (KW == 3) {
                    const __m512 s0 = _mm512_castsi512_ps(
                        _mm512_alignr_epi32(_mm512_castps_si512(v1), _mm512_castps_si512(v0), 2));
                    const __m512 s1 = _mm512_castsi512_ps(
                        _mm512_alignr_epi32(_mm512_castps_si512(v2), _mm512_castps_si512(v1), 2));
                    r = _mm512_max_ps(r, _mm512_permutex2var_ps(s0, even, s1));
                }
                _mm512_mask_storeu_ps(yr + 16 * b, om[b], r);
            }
        }
    }
}

static EM_TARGET_512 void plane_3x3(const em_maxpool_plane *q, const float *x, float *y) {
    plane_k(q, x, y, 3, 3);
}
static EM_TARGET_512 void plane_kx3(const em_maxpool_plane *q, const float *x, float *y) {
    plane_k(q, x, y, 3, 0);
}
static EM_TARGET_512 void plane_kx2(const em_maxpool_plane *q, const float *x, float *y) {
    plane_k(q, x, y, 2, 0);
}

static void plane(const em_maxpool_plane *q, const float *x, float *y) {
    if (q->KW == 3 && q->KH == 3)
        plane_3x3(q, x, y);
    else if (q->KW == 3)
        plane_kx3(q, x, y);
    else
        plane_kx2(q, x, y);
}

void em_maxpool_s2_planes(const em_maxpool_plane *q, const float *x, float *y, int64_t planes) {
    for (int64_t i = 0; i < planes; i++) plane(q, x + i * q->H * q->W, y + i * q->OH * q->OW);
}

#endif

void em_maxpool_planes(const em_maxpool_plane *q, int64_t sw, const float *x, int64_t x_plane,
                       float *y, int64_t y_plane, int64_t planes) {
#if MP_X86
    if (sw == 2 && em_maxpool_s2_supported(q)) {
        for (int64_t i = 0; i < planes; i++) plane(q, x + i * x_plane, y + i * y_plane);
        return;
    }
#endif
    for (int64_t i = 0; i < planes; i++) {
        const float *src = x + i * x_plane;
        float *dst = y + i * y_plane;
        const int64_t xs = row_stride(q);
        for (int64_t r = 0; r < q->OH; r++)
            for (int64_t c = 0; c < q->OW; c++) {
                float v = -INFINITY;
                for (int64_t ky = 0; ky < q->KH; ky++) {
                    const int64_t iy = r * q->SH - q->PT + ky;
                    if (iy < 0 || iy >= q->H) continue;
                    for (int64_t kx = 0; kx < q->KW; kx++) {
                        const int64_t ix = c * sw - q->PL + kx;
                        if (ix >= 0 && ix < q->W && src[iy * xs + ix] > v) v = src[iy * xs + ix];
                    }
                }
                dst[r * q->OW + c] = v;
            }
    }
}

#if !MP_X86

void em_maxpool_s2_planes(const em_maxpool_plane *q, const float *x, float *y, int64_t planes) {
    (void)q, (void)x, (void)y, (void)planes;
}

#endif
