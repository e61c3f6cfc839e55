/* Helpers shared by the elementwise, unary and softmax kernels: float32 math written so that
 * gcc and clang vectorize loops calling it (no libm calls, no branches), dtype "slots" used to
 * index per-type function tables, and float16 / bfloat16 widening to float32.
 *
 * Why the bit-mask selects: with the default -ftrapping-math gcc sinks floating-point work
 * into the arm of a `c ? a : b` that uses it, which turns the loop body into control flow and
 * stops vectorization. Selecting through integer masks keeps every operation unconditional. */
#ifndef EMBER_OPS_VMATH_H
#define EMBER_OPS_VMATH_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

/* Helpers called from the VM_CLONES loops must be inlined into each variant. */
#if defined(__GNUC__) || defined(__clang__)
#define VM_INLINE static inline __attribute__((always_inline))
#else
#define VM_INLINE static inline
#endif

VM_INLINE float vm_bits_f(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

VM_INLINE int32_t vm_f_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* mask is all ones (pick a) or all zeros (pick b). */
VM_INLINE float vm_sel(int32_t mask, float a, float b) {
    return vm_bits_f((vm_f_bits(a) & mask) | (vm_f_bits(b) & ~mask));
}

VM_INLINE int32_t vm_mask(int cond) {
    return -(int32_t)(cond != 0);
}

/* exp(x) for float32, within 2 ulp over the whole range, including subnormal results, +-inf
 * and NaN. The input is clamped to [-104, 89] first (below, the result rounds to 0; above, the
 * two-step scaling overflows to inf by itself); Cody-Waite range reduction, a degree-6
 * polynomial, then scaling by 2^n in two steps so that subnormal results come out right. A NaN
 * input stays NaN through the arithmetic. */
VM_INLINE float vm_expf(float x) {
    x = vm_sel(vm_mask(x < -104.0f), -104.0f, x);
    x = vm_sel(vm_mask(x > 89.0f), 89.0f, x);
    const float shifter = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float t = x * 1.44269504088896341f + shifter;
    float nf = t - shifter;
    uint32_t n = (uint32_t)vm_f_bits(t) - 0x4B400000u; /* the integer, read from the mantissa */
    float r = x - nf * 0.693359375f;
    r = r - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r * r + r + 1.0f;
    uint32_t n1 = (uint32_t)((int32_t)n >> 1), n2 = n - n1; /* n in [-150, 129] */
    return y * vm_bits_f((int32_t)((n1 + 127u) << 23)) * vm_bits_f((int32_t)((n2 + 127u) << 23));
}

/* erf(|x|) near 0 and erfc(|x|) away from it, the pieces erf and Gelu are made of. Fitted by
 * least squares on Chebyshev nodes: erf(x)/x as a polynomial in x^2 on [0, 0.875];
 * log(erfc(x)) + x^2 as a polynomial in x on [0.875, 4]; erfc(x) * x * exp(x^2) as a polynomial
 * in 1/x^2 on [4, 10.5] (beyond, erfc underflows to 0). */
#define VM_ERF_SPLIT 0.875f
VM_INLINE float vm_erf_small(float ax) {
    float z = ax * ax;
    float p = -6.2185072e-4f;
    p = p * z + 5.0351261e-3f;
    p = p * z - 2.6793458e-2f;
    p = p * z + 1.1282511e-1f;
    p = p * z - 3.7612554e-1f;
    p = p * z + 1.1283791f;
    return ax * p;
}
VM_INLINE float vm_erfc_big(float ax) {
    float am = vm_sel(vm_mask(ax > 4.0f), 4.0f, ax);
    float t = am - VM_ERF_SPLIT;
    float q = 1.6054132e-6f;
    q = q * t - 3.4176785e-5f;
    q = q * t + 3.4749351e-4f;
    q = q * t - 2.2987847e-3f;
    q = q * t + 1.1427986e-2f;
    q = q * t - 4.6937920e-2f;
    q = q * t + 1.7346692e-1f;
    q = q * t - 6.8022043e-1f;
    q = q * t - 7.6719946e-1f;
    float inv = 1.0f / ax;
    float w = inv * inv;
    float h = 1.9142504f;
    h = h * w - 9.6095264e-1f;
    h = h * w + 4.2052639e-1f;
    h = h * w - 2.8206214e-1f;
    h = h * w + 5.6418943e-1f;
    int32_t mid = vm_mask(ax < 4.0f);
    float arg = vm_sel(mid, q, 0.0f) - ax * ax;
    return vm_expf(arg) * vm_sel(mid, 1.0f, h * inv);
}

/* erfc(|x|) on [0.875, 4] only (what erf needs: beyond 4, erf is 1 in float32). */
VM_INLINE float vm_erfc_mid(float ax) {
    float am = vm_sel(vm_mask(ax > 4.0f), 4.0f, ax);
    float t = am - VM_ERF_SPLIT;
    float q = 1.6054132e-6f;
    q = q * t - 3.4176785e-5f;
    q = q * t + 3.4749351e-4f;
    q = q * t - 2.2987847e-3f;
    q = q * t + 1.1427986e-2f;
    q = q * t - 4.6937920e-2f;
    q = q * t + 1.7346692e-1f;
    q = q * t - 6.8022043e-1f;
    q = q * t - 7.6719946e-1f;
    return vm_expf(q - am * am);
}

/* erf(x) for float32 within about 3 ulp. */
VM_INLINE float vm_erff(float x) {
    float ax = fabsf(x);
    float r = vm_sel(vm_mask(ax < VM_ERF_SPLIT), vm_erf_small(ax), 1.0f - vm_erfc_mid(ax));
    return copysignf(r, x);
}

/* 1 + erf(x), without the cancellation of 1 + erf for negative x (Gelu). */
VM_INLINE float vm_one_plus_erff(float x) {
    float ax = fabsf(x);
    float s = vm_erf_small(ax), e = vm_erfc_big(ax);
    float pos = vm_sel(vm_mask(ax < VM_ERF_SPLIT), 1.0f + s, 2.0f - e);
    float neg = vm_sel(vm_mask(ax < VM_ERF_SPLIT), 1.0f - s, e);
    return vm_sel(vm_mask(x < 0), neg, pos);
}

/* Hot float32 loops are also compiled for AVX2 and AVX-512; the loader picks the variant the
 * CPU supports (ifunc). Feature names, not "arch=": an arch= clone is chosen only when the CPU
 * model matches exactly. Helpers they call must be VM_INLINE (always_inline) so that they are
 * compiled into each variant instead of being called in their baseline version. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(EMBER_NO_CLONES)
#define VM_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define VM_CLONES
#endif

/* exp(x) - 1 keeping full relative precision near 0 (Taylor series there, exp elsewhere). */
VM_INLINE float vm_expm1f(float x) {
    float p = 1.0f / 40320.0f;
    p = p * x + 1.0f / 5040.0f;
    p = p * x + 1.0f / 720.0f;
    p = p * x + 1.0f / 120.0f;
    p = p * x + 1.0f / 24.0f;
    p = p * x + 1.0f / 6.0f;
    p = p * x + 0.5f;
    float small = (p * x) * x + x;
    return vm_sel(vm_mask(fabsf(x) < 0.5f), small, vm_expf(x) - 1.0f);
}

/* 1 / (1 + exp(-x)) without overflow and with full relative precision for large negative x. */
VM_INLINE float vm_sigmoidf(float x) {
    float e = vm_expf(-fabsf(x));
    float d = 1.0f / (1.0f + e);
    return vm_sel(vm_mask(x >= 0.0f), d, e * d);
}

/* tanh(x): an odd polynomial near 0 (where 1 - 2/(e+1) would cancel), else through exp. */
VM_INLINE float vm_tanhf(float x) {
    float ax = fabsf(x);
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = p * z * x + x;
    float e = vm_expf(2.0f * ax); /* inf for large |x|: 2 / inf = 0 */
    float big = 1.0f - 2.0f / (e + 1.0f);
    big = copysignf(big, x);
    return vm_sel(vm_mask(ax < 0.625f), small, big);
}

/* ---- dtype slots: index of per-type function tables ---- */

enum {
    VM_F32,
    VM_F64,
    VM_I8,
    VM_I16,
    VM_I32,
    VM_I64,
    VM_U8,
    VM_U16,
    VM_U32,
    VM_U64,
    VM_BOOL,
    VM_NSLOTS,
};

/* Slot of a dtype; float16 / bfloat16 map to VM_F32 (they are widened first). -1 if none. */
static inline int vm_slot(ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT:
    case EMBER_FLOAT16:
    case EMBER_BFLOAT16:
        return VM_F32;
    case EMBER_DOUBLE:
        return VM_F64;
    case EMBER_INT8:
        return VM_I8;
    case EMBER_INT16:
        return VM_I16;
    case EMBER_INT32:
        return VM_I32;
    case EMBER_INT64:
        return VM_I64;
    case EMBER_UINT8:
        return VM_U8;
    case EMBER_UINT16:
        return VM_U16;
    case EMBER_UINT32:
        return VM_U32;
    case EMBER_UINT64:
        return VM_U64;
    case EMBER_BOOL:
        return VM_BOOL;
    default:
        return -1;
    }
}

static inline int vm_is_half(ember_dtype dt) {
    return dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16;
}

/* Type classes for validation. */
#define VM_T_FLOAT (1u << 0) /* float16, bfloat16, float, double */
#define VM_T_SINT (1u << 1)  /* int8 .. int64 */
#define VM_T_UINT (1u << 2)  /* uint8 .. uint64 */
#define VM_T_BOOL (1u << 3)
#define VM_T_NUM (VM_T_FLOAT | VM_T_SINT | VM_T_UINT)

static inline unsigned vm_class(ember_dtype dt) {
    if (em_dtype_is_float(dt)) return VM_T_FLOAT;
    if (em_dtype_is_signed_int(dt)) return VM_T_SINT;
    if (em_dtype_is_unsigned_int(dt)) return VM_T_UINT;
    if (dt == EMBER_BOOL) return VM_T_BOOL;
    return 0;
}

/* A float32 copy of a float16 / bfloat16 tensor (owned: free with vm_unwiden), or a shallow
 * view of any other tensor. */
static inline ember_status vm_widen(const em_tensor *src, em_tensor *dst, ember_error *err) {
    *dst = *src;
    dst->owns_data = false;
    if (!vm_is_half(src->dtype)) return EMBER_OK;
    int64_t n = em_numel(src);
    dst->dtype = EMBER_FLOAT;
    dst->data = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!dst->data) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    dst->capacity = (size_t)(n > 0 ? n : 1) * sizeof(float);
    dst->owns_data = true;
    em_convert(dst->data, EMBER_FLOAT, src->data, src->dtype, n);
    return EMBER_OK;
}

static inline void vm_unwiden(em_tensor *t) {
    if (t->owns_data) free(t->data);
    t->data = NULL;
    t->owns_data = false;
}

/* Where a kernel writes a float16 / bfloat16 output: a float32 buffer to compute into (owned,
 * released by vm_unwiden), converted into `out` by vm_out_finish. Otherwise a view of out. */
static inline ember_status vm_out_begin(const em_tensor *out, em_tensor *tmp, ember_error *err) {
    *tmp = *out;
    tmp->owns_data = false;
    if (!vm_is_half(out->dtype)) return EMBER_OK;
    int64_t n = em_numel(out);
    tmp->dtype = EMBER_FLOAT;
    tmp->data = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!tmp->data) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    tmp->owns_data = true;
    return EMBER_OK;
}

static inline void vm_out_finish(em_tensor *out, const em_tensor *tmp) {
    if (tmp->owns_data) em_convert(out->data, out->dtype, tmp->data, EMBER_FLOAT, em_numel(out));
}

/* Saturating float -> integer conversions (C leaves out-of-range conversions undefined). */
static inline int64_t vm_sat_i64(double v) {
    if (v != v) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static inline int32_t vm_sat_i32(double v) {
    if (v != v) return 0;
    if (v >= 2147483647.0) return INT32_MAX;
    if (v <= -2147483648.0) return INT32_MIN;
    return (int32_t)v;
}

#endif
