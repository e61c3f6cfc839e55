/* im2col through an index table (see conv_gather.h). The AVX-512 path carries its own target
 * attribute and is chosen at run time; the scalar loop is the same gather one column at a time. */
#include "conv_gather.h"

#include "conv_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define GATHER_X86 1
#include "simd512.h"
#else
#define GATHER_X86 0
#endif

bool em_gather_shape(int64_t rows, int64_t plane, int64_t image_floats, em_gather_table *t) {
    if (rows <= 0 || plane <= 0 || image_floats <= 0) return false;
    int64_t a = plane, b = 16; /* T = lcm(plane, 16) */
    while (b) {
        int64_t r = a % b;
        a = b;
        b = r;
    }
    const int64_t images = 16 / a, T = plane * images;
    if (rows > EM_GATHER_MAX_ENTRIES / (T + 16)) return false;
    /* The 16 entries past a block reach at most `images` images into the next block. */
    if ((2 * images + 1) * image_floats > INT32_MAX) return false;
    *t = (em_gather_table){
        .rows = rows, .images = images, .T = T, .stride = T + 16, .image_floats = image_floats};
    return true;
}

size_t em_gather_bytes(const em_gather_table *t) {
    return (size_t)(t->rows * t->stride) * sizeof(int32_t);
}

static void gather_scalar(const em_gather_table *t, const float *x, int64_t c0, int64_t c1,
                          float *col, int64_t ld) {
    const int64_t block_floats = t->images * t->image_floats;
    for (int64_t r = 0; r < t->rows; r++) {
        const int32_t *row = t->idx + r * t->stride;
        float *dst = col + r * ld;
        for (int64_t q = c0; q < c1; q++) {
            const int32_t i = row[q % t->T];
            dst[q - c0] = i >= 0 ? x[(q / t->T) * block_floats + i] : 0.0f;
        }
    }
}

#if GATHER_X86
static EM_TARGET_512 void gather_512(const em_gather_table *t, const float *x, int64_t c0,
                                     int64_t c1, float *col, int64_t ld) {
    const int64_t block_floats = t->images * t->image_floats;
    const __m512i zero_i = _mm512_setzero_si512();
    for (int64_t q = c0; q < c1; q += 16) {
        const __mmask16 m = c1 - q >= 16 ? 0xffff : (__mmask16)((1u << (c1 - q)) - 1);
        const float *base = x + (q / t->T) * block_floats;
        const int32_t *tab = t->idx + q % t->T;
        float *dst = col + (q - c0);
        for (int64_t r = 0; r < t->rows; r++) {
            const __m512i i = _mm512_maskz_loadu_epi32(m, tab + r * t->stride);
            const __mmask16 valid = _mm512_mask_cmpge_epi32_mask(m, i, zero_i);
            const __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, i, base, 4);
            _mm512_mask_storeu_ps(dst + r * ld, m, v);
        }
    }
}
#endif

void em_gather_columns(const em_gather_table *t, const float *x, int64_t c0, int64_t c1, float *col,
                       int64_t ld) {
#if GATHER_X86
    if (em_cg_available()) {
        gather_512(t, x, c0, c1, col, ld);
        return;
    }
#endif
    gather_scalar(t, x, c0, c1, col, ld);
}
