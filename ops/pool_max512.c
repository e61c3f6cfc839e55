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

/* Lanes of row columns [col, col + 16) inside [0, W), -inf elsewhere. */
static inline __attribute__((always_inline)) EM_TARGET_512 __m512 load_row(const float *row,
                                                                           int64_t col, int64_t W) {
    return _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), em512_inside(col, W),
                                (const void *)((uintptr_t)row + (uintptr_t)(col * 4)));
}

static EM_TARGET_512 void plane(const em_maxpool_plane *q, const float *x, float *y) {
    const __m512i even =
        _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    const int64_t W = q->W;
    for (int64_t oy = 0; oy < q->OH; oy++) {
        const int64_t h0 = oy * q->SH - q->PT;
        const int64_t hs = h0 < 0 ? 0 : h0, he = h0 + q->KH < q->H ? h0 + q->KH : q->H;
        float *yr = y + oy * q->OW;
        for (int64_t ox = 0; ox < q->OW; ox += 16) {
            const int64_t c = 2 * ox - q->PL;
            __m512 v0 = ninf, v1 = ninf, v2 = ninf;
            for (int64_t h = hs; h < he; h++) {
                const float *row = x + h * W;
                v0 = _mm512_max_ps(v0, load_row(row, c, W));
                v1 = _mm512_max_ps(v1, load_row(row, c + 16, W));
                if (q->KW == 3) v2 = _mm512_max_ps(v2, load_row(row, c + 32, W));
            }
            /* Window columns c + 2i, c + 2i + 1 (and c + 2i + 2: the same, shifted by two). */
            __m512 m = _mm512_max_ps(_mm512_permutex2var_ps(v0, even, v1),
                                     _mm512_permutex2var_ps(v0, odd, v1));
            if (q->KW == 3) {
                const __m512 s0 = _mm512_castsi512_ps(
                    _mm512_alignr_epi32(_mm512_castps_si512(v1), _mm512_castps_si512(v0), 2));
                const __m512 s1 = _mm512_castsi512_ps(
                    _mm512_alignr_epi32(_mm512_castps_si512(v2), _mm512_castps_si512(v1), 2));
                m = _mm512_max_ps(m, _mm512_permutex2var_ps(s0, even, s1));
            }
            const int64_t n = q->OW - ox < 16 ? q->OW - ox : 16;
            _mm512_mask_storeu_ps(yr + ox, (__mmask16)((1u << n) - 1), m);
        }
    }
}

void em_maxpool_s2_planes(const em_maxpool_plane *q, const float *x, float *y, int64_t planes) {
    for (int64_t i = 0; i < planes; i++) plane(q, x + i * q->H * q->W, y + i * q->OH * q->OW);
}

#else

void em_maxpool_s2_planes(const em_maxpool_plane *q, const float *x, float *y, int64_t planes) {
    (void)q, (void)x, (void)y, (void)planes;
}

#endif
