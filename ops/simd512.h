/* Small AVX-512 helpers shared by the convolution kernels (conv_dw.c, conv_winograd.c,
 * conv_direct.c). Internal to ops/; include only on x86-64 with GCC or clang. */
#ifndef EMBER_OPS_SIMD512_H
#define EMBER_OPS_SIMD512_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#include "linalg.h"

#define EM_TARGET_512 __attribute__((target("avx512f")))

/* Lanes i of a vector loaded at column col of a row of W floats with 0 <= col + i < W. */
static inline __mmask16 em512_inside(int64_t col, int64_t W) {
    int64_t lo = -col, hi = W - col;
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

/* Masked load of the 16 floats at row + col. Masked lanes are never read, so col may lie before
 * the row: the address only names the lanes (integer arithmetic keeps the pointer inside the
 * object). */
#define EM512_LOAD(m, row, col)                                                                    \
    _mm512_maskz_loadu_ps((m), (const void *)((uintptr_t)(row) + (uintptr_t)((col)*4)))

/* The activations applied in registers; the others run on the stored values. */
static inline bool em512_act_in_registers(int kind) {
    return kind == EM_ACT_NONE || kind == EM_ACT_RELU || kind == EM_ACT_CLIP ||
           kind == EM_ACT_LEAKY_RELU;
}

/* Relu, Clip (lo, hi) or LeakyRelu (slope lo) in registers, as the packed GEMM's tile epilogue
 * (NaN gives Clip's bound); any other kind returns v unchanged. */
static inline __attribute__((always_inline)) EM_TARGET_512 __m512 em512_activate(__m512 v, int kind,
                                                                                 __m512 lo,
                                                                                 __m512 hi) {
    if (kind == EM_ACT_RELU) return _mm512_max_ps(v, _mm512_setzero_ps());
    if (kind == EM_ACT_CLIP) return _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    if (kind == EM_ACT_LEAKY_RELU)
        return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), v, lo);
    return v;
}

#endif
