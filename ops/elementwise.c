/* Elementwise binary, variadic and ternary operators with numpy (multidirectional)
 * broadcasting: Add Sub Mul Div Pow Mod Min Max Sum Mean, comparisons, And Or Xor Not,
 * BitShift, Bitwise*, Where, PRelu.
 *
 * Broadcasting: the output shape is collapsed into as few dims as possible (adjacent dims
 * merge when every input walks them contiguously or not at all), then every row of the
 * innermost dim is handed to a typed loop that knows only three cases: both inputs
 * contiguous, b a scalar, a a scalar. Those loops are what the compiler vectorizes.
 *
 * Integer semantics: arithmetic wraps (two's complement), Div truncates toward zero like C,
 * and division or Mod by zero gives 0 instead of trapping. float16 / bfloat16 are computed in
 * float32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "vmath.h"

/* ---- broadcast plan ---- */

#define EW_MAX_IN 3

typedef struct ew_plan {
    int n_in;
    int rank; /* >= 1 after collapsing */
    int64_t dims[EM_MAX_RANK];
    int64_t strides[EW_MAX_IN][EM_MAX_RANK]; /* in elements; 0 along broadcast dims */
    int64_t total;
} ew_plan;

/* in_dims[k] / in_rank[k]: the shape each input takes part with (right-aligned to out). */
static void ew_plan_init(ew_plan *p, const int64_t *out_dims, int out_rank, int n_in,
                         const int64_t *const *in_dims, const int *in_rank) {
    int64_t st[EW_MAX_IN][EM_MAX_RANK];
    for (int k = 0; k < n_in; k++) {
        int off = out_rank - in_rank[k];
        int64_t s = 1;
        for (int d = out_rank - 1; d >= 0; d--) {
            int64_t dim = d >= off ? in_dims[k][d - off] : 1;
            st[k][d] = dim == 1 ? 0 : s;
            s *= dim;
        }
    }
    p->n_in = n_in;
    p->total = em_shape_numel(out_dims, out_rank);
    /* Collapse from the innermost dim outwards, skipping dims of size 1. */
    int64_t dims[EM_MAX_RANK], cst[EW_MAX_IN][EM_MAX_RANK];
    int r = 0; /* collapsed dims, innermost first */
    for (int d = out_rank - 1; d >= 0; d--) {
        if (out_dims[d] == 1) continue;
        bool merge = r > 0;
        for (int k = 0; k < n_in && merge; k++)
            if (st[k][d] != cst[k][r - 1] * dims[r - 1]) merge = false;
        if (merge) {
            dims[r - 1] *= out_dims[d];
            continue;
        }
        dims[r] = out_dims[d];
        for (int k = 0; k < n_in; k++) cst[k][r] = st[k][d];
        r++;
    }
    if (r == 0) { /* a single element */
        dims[0] = 1;
        for (int k = 0; k < n_in; k++) cst[k][0] = 1;
        r = 1;
    }
    p->rank = r;
    for (int i = 0; i < r; i++) {
        p->dims[i] = dims[r - 1 - i];
        for (int k = 0; k < n_in; k++) p->strides[k][i] = cst[k][r - 1 - i];
    }
}

/* mode 0: a and b contiguous; 1: b is one value; 2: a is one value. a may alias o exactly. */
typedef void (*bin_fn)(const void *a, const void *b, void *o, int64_t n, int mode);
/* Where: strides are 0 or 1. */
typedef void (*where_fn)(const uint8_t *c, const void *x, const void *y, void *o, int64_t n, int sc,
                         int sx, int sy);

typedef struct ew_job {
    const ew_plan *plan;
    const char *in[EW_MAX_IN];
    size_t esize[EW_MAX_IN];
    char *out;
    size_t osize;
    bin_fn bin;
    where_fn where;
} ew_job;

static void ew_range(void *ctx, int64_t begin, int64_t end) {
    const ew_job *j = ctx;
    const ew_plan *p = j->plan;
    int r = p->rank, n_in = p->n_in;
    int64_t inner = p->dims[r - 1];
    int64_t inner_st[EW_MAX_IN], off[EW_MAX_IN], idx[EM_MAX_RANK];
    int64_t row = begin / inner, col = begin % inner;
    for (int k = 0; k < n_in; k++) {
        inner_st[k] = p->strides[k][r - 1];
        off[k] = 0;
    }
    for (int d = r - 2; d >= 0; d--) {
        idx[d] = row % p->dims[d];
        row /= p->dims[d];
        for (int k = 0; k < n_in; k++) off[k] += idx[d] * p->strides[k][d];
    }
    int mode = 0;
    if (n_in == 2) mode = inner_st[0] == 0 ? 2 : inner_st[1] == 0 ? 1 : 0;
    int64_t pos = begin;
    while (pos < end) {
        int64_t len = inner - col < end - pos ? inner - col : end - pos;
        const char *src[EW_MAX_IN];
        for (int k = 0; k < n_in; k++)
            src[k] = j->in[k] + (size_t)(off[k] + col * inner_st[k]) * j->esize[k];
        char *dst = j->out + (size_t)pos * j->osize;
        if (n_in == 2 && inner_st[0] == 0 && inner_st[1] == 0) {
            /* Both inputs broadcast along the inner dim (Sum/Max/Mean of [1], [1] and [111]):
             * one value, repeated; the modes would read one of them as a row (fuzzer). */
            j->bin(src[0], src[1], dst, 1, 0);
            for (int64_t i = 1; i < len; i++) memcpy(dst + (size_t)i * j->osize, dst, j->osize);
        } else if (n_in == 2)
            j->bin(src[0], src[1], dst, len, mode);
        else
            j->where((const uint8_t *)src[0], src[1], src[2], dst, len, (int)inner_st[0],
                     (int)inner_st[1], (int)inner_st[2]);
        pos += len;
        col = 0;
        for (int d = r - 2; d >= 0; d--) {
            for (int k = 0; k < n_in; k++) off[k] += p->strides[k][d];
            if (++idx[d] < p->dims[d]) break;
            for (int k = 0; k < n_in; k++) off[k] -= p->strides[k][d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

#define EW_GRAIN_CHEAP 32768
#define EW_GRAIN_COSTLY 4096

static void ew_binary(em_exec *ex, const em_tensor *a, const int64_t *a_dims, int a_rank,
                      const em_tensor *b, const int64_t *b_dims, int b_rank, em_tensor *o,
                      bin_fn fn, int64_t grain) {
    ew_plan plan;
    const int64_t *dims[2] = {a_dims, b_dims};
    int ranks[2] = {a_rank, b_rank};
    ew_plan_init(&plan, o->dims, o->rank, 2, dims, ranks);
    if (plan.total <= 0) return;
    ew_job job = {.plan = &plan,
                  .in = {a->data, b->data},
                  .esize = {em_dtype_size(a->dtype), em_dtype_size(b->dtype)},
                  .out = o->data,
                  .osize = em_dtype_size(o->dtype),
                  .bin = fn};
    em_parallel_for(ex, plan.total, grain, ew_range, &job);
}

// clang-format off
/* ---- typed loops ---- */

#define EW_FN(name, TA, TB, TO, EXPR)                                                              \
    static void name(const void *va, const void *vb, void *vo, int64_t n, int mode) {             \
        const TA *a = va;                                                                          \
        const TB *restrict b = vb;                                                                 \
        TO *o = vo;                                                                                \
        if (mode == 0) {                                                                           \
            for (int64_t i = 0; i < n; i++) {                                                      \
                TA x = a[i];                                                                       \
                TB y = b[i];                                                                       \
                (void)x, (void)y;                                                                  \
                o[i] = (TO)(EXPR);                                                                 \
            }                                                                                      \
        } else if (mode == 1) {                                                                    \
            const TB y = b[0];                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                      \
                TA x = a[i];                                                                       \
                (void)x, (void)y;                                                                  \
                o[i] = (TO)(EXPR);                                                                 \
            }                                                                                      \
        } else {                                                                                   \
            const TA x = a[0];                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                      \
                TB y = b[i];                                                                       \
                (void)x, (void)y;                                                                  \
                o[i] = (TO)(EXPR);                                                                 \
            }                                                                                      \
        }                                                                                          \
    }

/* One op over every integer type: EXPR_S(T, W) for signed, EXPR_U(T, W) for unsigned, where W
 * is the unsigned type the arithmetic wraps in (no signed overflow, no int promotion traps). */
#define EW_INTS(op, EXPR_S, EXPR_U)                                                                \
    EW_FN(op##_i8, int8_t, int8_t, int8_t, EXPR_S(int8_t, uint32_t))                               \
    EW_FN(op##_i16, int16_t, int16_t, int16_t, EXPR_S(int16_t, uint32_t))                          \
    EW_FN(op##_i32, int32_t, int32_t, int32_t, EXPR_S(int32_t, uint32_t))                          \
    EW_FN(op##_i64, int64_t, int64_t, int64_t, EXPR_S(int64_t, uint64_t))                          \
    EW_FN(op##_u8, uint8_t, uint8_t, uint8_t, EXPR_U(uint8_t, uint32_t))                           \
    EW_FN(op##_u16, uint16_t, uint16_t, uint16_t, EXPR_U(uint16_t, uint32_t))                      \
    EW_FN(op##_u32, uint32_t, uint32_t, uint32_t, EXPR_U(uint32_t, uint32_t))                      \
    EW_FN(op##_u64, uint64_t, uint64_t, uint64_t, EXPR_U(uint64_t, uint64_t))

#define EW_FLOATS(op, EXPR_F32, EXPR_F64)                                                          \
    EW_FN(op##_f32, float, float, float, EXPR_F32)                                                 \
    EW_FN(op##_f64, double, double, double, EXPR_F64)

#define EW_TABLE_NUM(op)                                                                           \
    static const bin_fn op##_fns[VM_NSLOTS] = {op##_f32, op##_f64, op##_i8,  op##_i16,            \
                                               op##_i32, op##_i64, op##_u8,  op##_u16,            \
                                               op##_u32, op##_u64, NULL}
#define EW_TABLE_INT(op)                                                                           \
    static const bin_fn op##_fns[VM_NSLOTS] = {NULL,     NULL,     op##_i8,  op##_i16,            \
                                               op##_i32, op##_i64, op##_u8,  op##_u16,            \
                                               op##_u32, op##_u64, NULL}

static inline double vm_seld(int cond, double a, double b) {
    int64_t m = -(int64_t)(cond != 0), ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    ia = (ia & m) | (ib & ~m);
    memcpy(&a, &ia, sizeof a);
    return a;
}

/* Add Sub Mul Div */
#define WRAP_ADD(T, W) (T)((W)x + (W)y)
#define WRAP_SUB(T, W) (T)((W)x - (W)y)
#define WRAP_MUL(T, W) (T)((W)x * (W)y)
#define SDIV(T, W) (y == 0 ? (T)0 : y == -1 ? (T)(0u - (W)x) : (T)(x / y))
#define UDIV(T, W) (y == 0 ? (T)0 : (T)(x / y))
EW_FLOATS(add, x + y, x + y)
EW_INTS(add, WRAP_ADD, WRAP_ADD)
EW_TABLE_NUM(add);
EW_FLOATS(sub, x - y, x - y)
EW_INTS(sub, WRAP_SUB, WRAP_SUB)
EW_TABLE_NUM(sub);
EW_FLOATS(mul, (x * y), (x * y))
EW_INTS(mul, WRAP_MUL, WRAP_MUL)
EW_TABLE_NUM(mul);
EW_FLOATS(div, x / y, x / y)
EW_INTS(div, SDIV, UDIV)
EW_TABLE_NUM(div);

/* Mod: fmod = 0 follows Python (sign of the divisor), fmod = 1 follows C (sign of the
 * dividend). Floats with fmod = 0 are outside the spec; they get the Python rule too. */
#define SMOD_PY(T, W)                                                                              \
    (y == 0 || y == -1 ? (T)0                                                                      \
                       : (T)((x % y != 0 && ((x % y < 0) != (y < 0))) ? x % y + y : x % y))
#define SMOD_C(T, W) (y == 0 || y == -1 ? (T)0 : (T)(x % y))
#define UMOD(T, W) (y == 0 ? (T)0 : (T)(x % y))
static inline float py_fmodf(float x, float y) {
    float r = fmodf(x, y);
    return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
static inline double py_fmod(double x, double y) {
    double r = fmod(x, y);
    return (r != 0 && ((r < 0) != (y < 0))) ? r + y : r;
}
EW_FLOATS(modpy, py_fmodf(x, y), py_fmod(x, y))
EW_INTS(modpy, SMOD_PY, UMOD)
EW_TABLE_NUM(modpy);
EW_FLOATS(modc, fmodf(x, y), fmod(x, y))
EW_INTS(modc, SMOD_C, UMOD)
EW_TABLE_NUM(modc);

/* Min / Max: NaN in either input gives NaN (like numpy's minimum / maximum). */
#define IMIN(T, W) (x < y ? x : y)
#define IMAX(T, W) (x > y ? x : y)
EW_FLOATS(min, ((x < y) | (x != x)) ? x : y, ((x < y) | (x != x)) ? x : y)
EW_INTS(min, IMIN, IMIN)
EW_TABLE_NUM(min);
EW_FLOATS(max, ((x > y) | (x != x)) ? x : y, ((x > y) | (x != x)) ? x : y)
EW_INTS(max, IMAX, IMAX)
EW_TABLE_NUM(max);

/* Sum / Mean accumulate with add; Mean divides at the end. */

/* PRelu: both arms computed unconditionally so the float loop stays vectorizable. */
#define IPRELU(T, W) (x < 0 ? (T)((W)x * (W)y) : x)
#define UPRELU(T, W) (x)
EW_FLOATS(prelu, vm_sel(vm_mask(x < 0), (x * y), x), vm_seld(x < 0, (x * y), x))
EW_INTS(prelu, IPRELU, UPRELU)
EW_TABLE_NUM(prelu);

/* Comparisons -> bool (stored as uint8_t 0 / 1). */
#define EW_CMP(op, EXPR)                                                                           \
    EW_FN(op##_f32, float, float, uint8_t, EXPR)                                                   \
    EW_FN(op##_f64, double, double, uint8_t, EXPR)                                                 \
    EW_FN(op##_i8, int8_t, int8_t, uint8_t, EXPR)                                                  \
    EW_FN(op##_i16, int16_t, int16_t, uint8_t, EXPR)                                               \
    EW_FN(op##_i32, int32_t, int32_t, uint8_t, EXPR)                                               \
    EW_FN(op##_i64, int64_t, int64_t, uint8_t, EXPR)                                               \
    EW_FN(op##_u8, uint8_t, uint8_t, uint8_t, EXPR)                                                \
    EW_FN(op##_u16, uint16_t, uint16_t, uint8_t, EXPR)                                             \
    EW_FN(op##_u32, uint32_t, uint32_t, uint8_t, EXPR)                                             \
    EW_FN(op##_u64, uint64_t, uint64_t, uint8_t, EXPR)
EW_CMP(eq, x == y)
EW_FN(eq_b, uint8_t, uint8_t, uint8_t, (x != 0) == (y != 0))
static const bin_fn eq_fns[VM_NSLOTS] = {eq_f32, eq_f64, eq_i8,  eq_i16, eq_i32, eq_i64,
                                         eq_u8,  eq_u16, eq_u32, eq_u64, eq_b};
EW_CMP(lt, x < y)
EW_TABLE_NUM(lt);
EW_CMP(le, x <= y)
EW_TABLE_NUM(le);
/* Greater and GreaterOrEqual run Less and LessOrEqual with the inputs swapped (their bool
 * output never shares a buffer with a numeric input, so the restrict on b still holds). */

/* Logical ops on bool. */
EW_FN(and_b, uint8_t, uint8_t, uint8_t, (x != 0) & (y != 0))
EW_FN(or_b, uint8_t, uint8_t, uint8_t, (x != 0) | (y != 0))
EW_FN(xor_b, uint8_t, uint8_t, uint8_t, (x != 0) ^ (y != 0))
static const bin_fn and_fns[VM_NSLOTS] = {[VM_BOOL] = and_b};
static const bin_fn or_fns[VM_NSLOTS] = {[VM_BOOL] = or_b};
static const bin_fn xor_fns[VM_NSLOTS] = {[VM_BOOL] = xor_b};

/* Bitwise ops and shifts on integers. A shift by the type's width or more gives 0. */
#define BAND(T, W) (T)(x & y)
#define BOR(T, W) (T)(x | y)
#define BXOR(T, W) (T)(x ^ y)
#define SHL(T, W) ((uint64_t)y >= 8 * sizeof(T) ? (T)0 : (T)((W)x << y))
#define SHR(T, W) ((uint64_t)y >= 8 * sizeof(T) ? (T)0 : (T)((W)x >> y))
EW_INTS(band, BAND, BAND)
EW_TABLE_INT(band);
EW_INTS(bor, BOR, BOR)
EW_TABLE_INT(bor);
EW_INTS(bxor, BXOR, BXOR)
EW_TABLE_INT(bxor);
#define NOSHIFT(T, W) (T)0
EW_INTS(shl, NOSHIFT, SHL)
EW_TABLE_INT(shl);
EW_INTS(shr, NOSHIFT, SHR)
EW_TABLE_INT(shr);

/* ---- Pow: base float / double / int32 / int64, exponent of any numeric type ---- */

/* Integer power by squaring, wrapping like the other integer ops. Negative exponents give the
 * truncated real result: 1 for base 1, +-1 for base -1, 0 otherwise. */
static inline int64_t ipow_u(int64_t base, uint64_t e) {
    uint64_t r = 1, b = (uint64_t)base;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return (int64_t)r;
}
static inline int64_t ipow_s(int64_t base, int64_t e) {
    if (e >= 0) return ipow_u(base, (uint64_t)e);
    if (base == 1) return 1;
    if (base == -1) return (e & 1) ? -1 : 1;
    return 0;
}

#define POW_FOR_EXPS(X, base, TB)                                                                  \
    X(base, f32, TB, float)                                                                        \
    X(base, f64, TB, double)                                                                       \
    X(base, i8, TB, int8_t)                                                                        \
    X(base, i16, TB, int16_t)                                                                      \
    X(base, i32, TB, int32_t)                                                                      \
    X(base, i64, TB, int64_t)                                                                      \
    X(base, u8, TB, uint8_t)                                                                       \
    X(base, u16, TB, uint16_t)                                                                     \
    X(base, u32, TB, uint32_t)                                                                     \
    X(base, u64, TB, uint64_t)

#define POW_FLOAT_BASE(base, es, TB, TE)                                                           \
    EW_FN(pow_##base##_##es, TB, TE, TB, pow((double)x, (double)y))
#define POW_INT_BASE_F(base, es, TB, TE)                                                           \
    EW_FN(pow_##base##_##es, TB, TE, TB, vm_sat_i64(pow((double)x, (double)y)))
#define POW_INT_BASE_S(base, es, TB, TE)                                                           \
    EW_FN(pow_##base##_##es, TB, TE, TB, ipow_s(x, (int64_t)y))
#define POW_INT_BASE_U(base, es, TB, TE)                                                           \
    EW_FN(pow_##base##_##es, TB, TE, TB, ipow_u(x, (uint64_t)y))

/* float ^ float gets its own loop: exponents such as 2 or 0.5 are common and cheap. */
static void pow_f32_f32(const void *va, const void *vb, void *vo, int64_t n, int mode) {
    const float *a = va;
    const float *restrict b = vb;
    float *o = vo;
    if (mode == 1) {
        const float y = b[0];
        if (y == 2.0f) {
            for (int64_t i = 0; i < n; i++) o[i] = a[i] * a[i];
        } else if (y == 1.0f) {
            for (int64_t i = 0; i < n; i++) o[i] = a[i];
        } else if (y == 3.0f) {
            for (int64_t i = 0; i < n; i++) o[i] = a[i] * a[i] * a[i];
        } else if (y == 0.5f) { /* pow(-0, 0.5) = +0 and pow(-inf, 0.5) = +inf, unlike sqrt */
            for (int64_t i = 0; i < n; i++)
                o[i] = vm_sel(vm_mask(a[i] == -INFINITY), INFINITY, sqrtf(a[i]) + 0.0f);
        } else if (y == -1.0f) {
            for (int64_t i = 0; i < n; i++) o[i] = 1.0f / a[i];
        } else {
            for (int64_t i = 0; i < n; i++) o[i] = powf(a[i], y);
        }
    } else if (mode == 0) {
        for (int64_t i = 0; i < n; i++) o[i] = powf(a[i], b[i]);
    } else {
        const float x = a[0];
        for (int64_t i = 0; i < n; i++) o[i] = powf(x, b[i]);
    }
}
#define POW_F32_BASE(base, es, TB, TE)                                                             \
    EW_FN(pow_##base##_##es, TB, TE, TB, pow((double)x, (double)y))
POW_F32_BASE(f32, f64, float, double)
POW_F32_BASE(f32, i8, float, int8_t)
POW_F32_BASE(f32, i16, float, int16_t)
POW_F32_BASE(f32, i32, float, int32_t)
POW_F32_BASE(f32, i64, float, int64_t)
POW_F32_BASE(f32, u8, float, uint8_t)
POW_F32_BASE(f32, u16, float, uint16_t)
POW_F32_BASE(f32, u32, float, uint32_t)
POW_F32_BASE(f32, u64, float, uint64_t)
POW_FOR_EXPS(POW_FLOAT_BASE, f64, double)

#define POW_INT(base, TB)                                                                          \
    POW_INT_BASE_F(base, f32, TB, float)                                                           \
    POW_INT_BASE_F(base, f64, TB, double)                                                          \
    POW_INT_BASE_S(base, i8, TB, int8_t)                                                           \
    POW_INT_BASE_S(base, i16, TB, int16_t)                                                         \
    POW_INT_BASE_S(base, i32, TB, int32_t)                                                         \
    POW_INT_BASE_S(base, i64, TB, int64_t)                                                         \
    POW_INT_BASE_U(base, u8, TB, uint8_t)                                                          \
    POW_INT_BASE_U(base, u16, TB, uint16_t)                                                        \
    POW_INT_BASE_U(base, u32, TB, uint32_t)                                                        \
    POW_INT_BASE_U(base, u64, TB, uint64_t)
POW_INT(i32, int32_t)
POW_INT(i64, int64_t)

#define POW_ROW(base)                                                                              \
    {pow_##base##_f32, pow_##base##_f64, pow_##base##_i8,  pow_##base##_i16, pow_##base##_i32,    \
     pow_##base##_i64, pow_##base##_u8,  pow_##base##_u16, pow_##base##_u32, pow_##base##_u64,    \
     NULL}
static const bin_fn pow_fns[VM_NSLOTS][VM_NSLOTS] = {
    [VM_F32] = POW_ROW(f32),
    [VM_F64] = POW_ROW(f64),
    [VM_I32] = POW_ROW(i32),
    [VM_I64] = POW_ROW(i64),
};

/* ---- Where: element-size generic ---- */

#define WHERE_FN(name, T)                                                                          \
    static void name(const uint8_t *c, const void *vx, const void *vy, void *vo, int64_t n,        \
                     int sc, int sx, int sy) {                                                     \
        const T *restrict x = vx, *restrict y = vy;                                                \
        T *o = vo;                                                                                 \
        if (sc && sx && sy) {                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T xv = x[i], yv = y[i];                                                            \
                o[i] = c[i] ? xv : yv;                                                             \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T xv = x[i * sx], yv = y[i * sy];                                                  \
                o[i] = c[i * sc] ? xv : yv;                                                        \
            }                                                                                      \
        }                                                                                          \
    }
WHERE_FN(where_1, uint8_t)
WHERE_FN(where_2, uint16_t)
WHERE_FN(where_4, uint32_t)
WHERE_FN(where_8, uint64_t)

// clang-format on

/* ---- op definitions ---- */

typedef enum ew_kind {
    EW_BINARY,   /* two inputs of the same type */
    EW_POW,      /* base and exponent types may differ */
    EW_VARIADIC, /* Min Max Sum Mean */
    EW_PRELU,
    EW_WHERE,
    EW_NOT, /* Not, BitwiseNot */
} ew_kind;

typedef struct ew_def {
    const char *op_type;
    int since, until;
    ew_kind kind;
    unsigned types;    /* accepted type classes (VM_T_*) */
    const bin_fn *fns; /* per slot of input 0 (NULL for Pow, Where, Not) */
    bool bool_out;
    bool legacy_bcast; /* versions before 7 have the `broadcast` / `axis` attributes */
    bool mean;
    int64_t grain;
    bool swap; /* compute op(b, a) */
} ew_def;

static const ew_def k_defs[] = {
    {"Add", 1, 14, EW_BINARY, VM_T_NUM, add_fns, false, true, false, EW_GRAIN_CHEAP, false},
    {"Sub", 1, 14, EW_BINARY, VM_T_NUM, sub_fns, false, true, false, EW_GRAIN_CHEAP, false},
    {"Mul", 1, 14, EW_BINARY, VM_T_NUM, mul_fns, false, true, false, EW_GRAIN_CHEAP, false},
    {"Div", 1, 14, EW_BINARY, VM_T_NUM, div_fns, false, true, false, EW_GRAIN_CHEAP, false},
    {"Pow", 1, 15, EW_POW, VM_T_FLOAT | VM_T_SINT, NULL, false, true, false, EW_GRAIN_COSTLY,
     false},
    {"Mod", 10, 13, EW_BINARY, VM_T_NUM, modpy_fns, false, false, false, EW_GRAIN_COSTLY, false},
    {"Equal", 1, 19, EW_BINARY, VM_T_NUM | VM_T_BOOL, eq_fns, true, true, false, EW_GRAIN_CHEAP,
     false},
    {"Less", 1, 13, EW_BINARY, VM_T_NUM, lt_fns, true, true, false, EW_GRAIN_CHEAP, false},
    {"LessOrEqual", 12, 16, EW_BINARY, VM_T_NUM, le_fns, true, false, false, EW_GRAIN_CHEAP, false},
    {"Greater", 1, 13, EW_BINARY, VM_T_NUM, lt_fns, true, true, false, EW_GRAIN_CHEAP, true},
    {"GreaterOrEqual", 12, 16, EW_BINARY, VM_T_NUM, le_fns, true, false, false, EW_GRAIN_CHEAP,
     true},
    {"And", 1, 7, EW_BINARY, VM_T_BOOL, and_fns, true, true, false, EW_GRAIN_CHEAP, false},
    {"Or", 1, 7, EW_BINARY, VM_T_BOOL, or_fns, true, true, false, EW_GRAIN_CHEAP, false},
    {"Xor", 1, 7, EW_BINARY, VM_T_BOOL, xor_fns, true, true, false, EW_GRAIN_CHEAP, false},
    {"BitShift", 11, 11, EW_BINARY, VM_T_UINT, NULL, false, false, false, EW_GRAIN_CHEAP, false},
    {"BitwiseAnd", 18, 18, EW_BINARY, VM_T_SINT | VM_T_UINT, band_fns, false, false, false,
     EW_GRAIN_CHEAP, false},
    {"BitwiseOr", 18, 18, EW_BINARY, VM_T_SINT | VM_T_UINT, bor_fns, false, false, false,
     EW_GRAIN_CHEAP, false},
    {"BitwiseXor", 18, 18, EW_BINARY, VM_T_SINT | VM_T_UINT, bxor_fns, false, false, false,
     EW_GRAIN_CHEAP, false},
    {"Min", 1, 13, EW_VARIADIC, VM_T_NUM, min_fns, false, false, false, EW_GRAIN_CHEAP, false},
    {"Max", 1, 13, EW_VARIADIC, VM_T_NUM, max_fns, false, false, false, EW_GRAIN_CHEAP, false},
    {"Sum", 1, 13, EW_VARIADIC, VM_T_NUM, add_fns, false, false, false, EW_GRAIN_CHEAP, false},
    {"Mean", 1, 13, EW_VARIADIC, VM_T_FLOAT, add_fns, false, false, true, EW_GRAIN_CHEAP, false},
    {"PRelu", 1, 16, EW_PRELU, VM_T_NUM, prelu_fns, false, false, false, EW_GRAIN_CHEAP, false},
    {"Where", 9, 16, EW_WHERE, VM_T_NUM | VM_T_BOOL, NULL, false, false, false, EW_GRAIN_CHEAP,
     false},
    {"Not", 1, 1, EW_NOT, VM_T_BOOL, NULL, true, false, false, EW_GRAIN_CHEAP, false},
    {"BitwiseNot", 18, 18, EW_NOT, VM_T_SINT | VM_T_UINT, NULL, false, false, false, EW_GRAIN_CHEAP,
     false},
};
#define N_DEFS (sizeof k_defs / sizeof k_defs[0])

static const ew_def *find_def(const char *op_type) {
    for (size_t i = 0; i < N_DEFS; i++)
        if (strcmp(k_defs[i].op_type, op_type) == 0) return &k_defs[i];
    return NULL;
}

/* Kernel state: the definition plus attribute values, read once at creation. */
typedef struct ew_state {
    const ew_def *def;
    const bin_fn *fns; /* the table to use (Mod and BitShift depend on attributes) */
} ew_state;

static ember_status fail_node(const em_node *node, ember_error *err, ember_status code,
                              const char *what) {
    char desc[256];
    return em_fail(err, code, "%s: %s", em_node_desc(node, desc, sizeof desc), what);
}

static ember_status resolve(const em_node *node, ew_state *st, ember_error *err) {
    st->def = find_def(node->op_type);
    if (!st->def) return fail_node(node, err, EMBER_ERR_UNSUPPORTED, "unknown operator");
    st->fns = st->def->fns;
    if (strcmp(node->op_type, "Mod") == 0) {
        int64_t f = em_attr_int(node, "fmod", 0);
        if (f != 0 && f != 1)
            return fail_node(node, err, EMBER_ERR_INVALID_MODEL, "fmod must be 0 or 1");
        st->fns = f ? modc_fns : modpy_fns;
    } else if (strcmp(node->op_type, "BitShift") == 0) {
        const char *d = em_attr_string(node, "direction", "");
        if (strcmp(d, "LEFT") == 0)
            st->fns = shl_fns;
        else if (strcmp(d, "RIGHT") == 0)
            st->fns = shr_fns;
        else
            return fail_node(node, err, EMBER_ERR_INVALID_MODEL,
                             "attribute direction must be \"LEFT\" or \"RIGHT\"");
    }
    return EMBER_OK;
}

static ember_status ew_create(const em_graph *g, em_node *node, void **state, ember_error *err) {
    (void)g;
    ew_state *st = malloc(sizeof *st);
    if (!st) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status s = resolve(node, st, err);
    if (s != EMBER_OK) {
        free(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

static void ew_destroy(void *state) {
    free(state);
}

/* The loop for input 0 (and, for Pow, input 1) of these types, or NULL. */
static bin_fn pick_fn(const ew_state *st, ember_dtype a, ember_dtype b) {
    int sa = vm_slot(a), sb = vm_slot(b);
    if (sa < 0 || !(vm_class(a) & st->def->types)) return NULL;
    if (st->def->kind == EW_POW) return sb < 0 || sb == VM_BOOL ? NULL : pow_fns[sa][sb];
    return st->fns ? st->fns[sa] : NULL;
}

static ember_status check_type(const em_node *node, const ew_def *def, int input, ember_dtype dt,
                               ember_error *err) {
    if (!(vm_class(dt) & def->types) || vm_slot(dt) < 0)
        return em_unsupported_type(node, input, dt, err);
    return EMBER_OK;
}

static ember_status need_inputs(const em_node *node, em_tensor *const *in, int n,
                                ember_error *err) {
    if (node->n_explicit_inputs < n) {
        char desc[256];
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: needs %d inputs, has %d",
                       em_node_desc(node, desc, sizeof desc), n, node->n_explicit_inputs);
    }
    for (int k = 0; k < n; k++)
        if (!in[k]) {
            char desc[256];
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input %d is missing",
                           em_node_desc(node, desc, sizeof desc), k);
        }
    return EMBER_OK;
}

static ember_status same_types(const em_node *node, em_tensor *const *in, int n, ember_error *err) {
    for (int k = 1; k < n; k++)
        if (in[k]->dtype != in[0]->dtype) {
            char desc[256];
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: input %d has type %s but input 0 has type %s",
                           em_node_desc(node, desc, sizeof desc), k, em_dtype_name(in[k]->dtype),
                           em_dtype_name(in[0]->dtype));
        }
    return EMBER_OK;
}

static ember_status bcast_fail(const em_node *node, const em_tensor *a, const em_tensor *b,
                               ember_error *err) {
    char desc[256], sa[128], sb[128];
    return em_fail(err, EMBER_ERR_SHAPE, "%s: shapes %s and %s cannot be broadcast together",
                   em_node_desc(node, desc, sizeof desc), em_shape_str(a, sa, sizeof sa),
                   em_shape_str(b, sb, sizeof sb));
}

/* The shape input 1 takes part with. Before opset 7, B broadcasts only with broadcast=1, and
 * then onto A's dims starting at `axis` (default: aligned to the end). */
static ember_status b_shape(const em_node *node, const ew_def *def, const em_tensor *a,
                            const em_tensor *b, int64_t *dims, int *rank, ember_error *err) {
    *rank = b->rank;
    memcpy(dims, b->dims, sizeof(int64_t) * (size_t)b->rank);
    if (!def->legacy_bcast || em_onnx_op_version(node->op_type, node->opset) >= 7) return EMBER_OK;
    if (em_attr_int(node, "broadcast", 0) == 0) {
        if (!em_same_shape(a, b)) return bcast_fail(node, a, b, err);
        return EMBER_OK;
    }
    int64_t axis = em_attr_int(node, "axis", a->rank - b->rank);
    if (axis < 0) axis += a->rank;
    if (b->rank > a->rank || axis < 0 || axis + b->rank > a->rank)
        return bcast_fail(node, a, b, err);
    for (int d = 0; d < a->rank; d++) dims[d] = 1;
    for (int d = 0; d < b->rank; d++) {
        dims[axis + d] = b->dims[d];
        if (b->dims[d] != 1 && b->dims[d] != a->dims[axis + d] && a->dims[axis + d] >= 0)
            return bcast_fail(node, a, b, err);
    }
    *rank = a->rank;
    return EMBER_OK;
}

static ember_dtype out_type(const ew_def *def, ember_dtype in) {
    return def->bool_out ? EMBER_BOOL : in;
}

static ember_status ew_infer(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             ember_error *err) {
    ew_state local;
    const ew_def *def;
    if (state) {
        def = ((ew_state *)state)->def;
    } else {
        EM_TRY(resolve(node, &local, err));
        def = local.def;
    }
    int64_t dims[EM_MAX_RANK];
    int rank;
    switch (def->kind) {
    case EW_BINARY:
    case EW_POW: {
        EM_TRY(need_inputs(node, in, 2, err));
        if (def->kind == EW_BINARY) EM_TRY(same_types(node, in, 2, err));
        const ew_state *st = state ? state : &local;
        if (!pick_fn(st, in[0]->dtype, in[1]->dtype))
            return vm_slot(in[0]->dtype) >= 0 && (vm_class(in[0]->dtype) & def->types) &&
                           def->kind == EW_POW
                       ? em_unsupported_type(node, 1, in[1]->dtype, err)
                       : em_unsupported_type(node, 0, in[0]->dtype, err);
        int64_t bd[EM_MAX_RANK];
        int br;
        EM_TRY(b_shape(node, def, in[0], in[1], bd, &br, err));
        if (!em_broadcast_shape(in[0]->dims, in[0]->rank, bd, br, dims, &rank))
            return bcast_fail(node, in[0], in[1], err);
        em_tensor_set_shape(&out[0], out_type(def, in[0]->dtype), dims, rank);
        return EMBER_OK;
    }
    case EW_VARIADIC: {
        int n = node->n_explicit_inputs;
        if (n < 1) return fail_node(node, err, EMBER_ERR_INVALID_MODEL, "needs at least one input");
        EM_TRY(need_inputs(node, in, n, err));
        EM_TRY(check_type(node, def, 0, in[0]->dtype, err));
        EM_TRY(same_types(node, in, n, err));
        rank = in[0]->rank;
        memcpy(dims, in[0]->dims, sizeof(int64_t) * (size_t)rank);
        for (int k = 1; k < n; k++) {
            int64_t next[EM_MAX_RANK];
            int nr;
            if (!em_broadcast_shape(dims, rank, in[k]->dims, in[k]->rank, next, &nr))
                return bcast_fail(node, in[0], in[k], err);
            memcpy(dims, next, sizeof next);
            rank = nr;
        }
        em_tensor_set_shape(&out[0], in[0]->dtype, dims, rank);
        return EMBER_OK;
    }
    case EW_PRELU: {
        EM_TRY(need_inputs(node, in, 2, err));
        EM_TRY(check_type(node, def, 0, in[0]->dtype, err));
        EM_TRY(same_types(node, in, 2, err));
        /* Slope broadcasts one way: the result must keep X's shape. */
        if (!em_broadcast_shape(in[0]->dims, in[0]->rank, in[1]->dims, in[1]->rank, dims, &rank) ||
            rank != in[0]->rank)
            return bcast_fail(node, in[0], in[1], err);
        for (int d = 0; d < rank; d++)
            if (dims[d] != in[0]->dims[d] && in[0]->dims[d] >= 0)
                return bcast_fail(node, in[0], in[1], err);
        em_tensor_set_shape(&out[0], in[0]->dtype, in[0]->dims, in[0]->rank);
        return EMBER_OK;
    }
    case EW_WHERE: {
        EM_TRY(need_inputs(node, in, 3, err));
        if (in[0]->dtype != EMBER_BOOL) return em_unsupported_type(node, 0, in[0]->dtype, err);
        if (em_dtype_size(in[1]->dtype) == 0)
            return em_unsupported_type(node, 1, in[1]->dtype, err);
        if (in[2]->dtype != in[1]->dtype) {
            char desc[256];
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: inputs 1 and 2 have different types %s and %s",
                           em_node_desc(node, desc, sizeof desc), em_dtype_name(in[1]->dtype),
                           em_dtype_name(in[2]->dtype));
        }
        int64_t t[EM_MAX_RANK];
        int tr;
        if (!em_broadcast_shape(in[0]->dims, in[0]->rank, in[1]->dims, in[1]->rank, t, &tr))
            return bcast_fail(node, in[0], in[1], err);
        if (!em_broadcast_shape(t, tr, in[2]->dims, in[2]->rank, dims, &rank))
            return bcast_fail(node, in[1], in[2], err);
        em_tensor_set_shape(&out[0], in[1]->dtype, dims, rank);
        return EMBER_OK;
    }
    case EW_NOT:
        EM_TRY(need_inputs(node, in, 1, err));
        EM_TRY(check_type(node, def, 0, in[0]->dtype, err));
        em_tensor_set_shape(&out[0], in[0]->dtype, in[0]->dims, in[0]->rank);
        return EMBER_OK;
    }
    return fail_node(node, err, EMBER_ERR_UNSUPPORTED, "unknown operator kind");
}

/* ---- run ---- */

static ember_status run_binary(const em_node *node, const ew_state *st, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    const ew_def *def = st->def;
    int64_t bd[EM_MAX_RANK];
    int br;
    EM_TRY(b_shape(node, def, in[0], in[1], bd, &br, err));
    em_tensor a = {0}, b = {0}, o = {0};
    ember_status s = vm_widen(in[0], &a, err);
    if (s == EMBER_OK) s = vm_widen(in[1], &b, err);
    if (s == EMBER_OK) s = vm_out_begin(out, &o, err);
    if (s == EMBER_OK) {
        bin_fn fn = pick_fn(st, a.dtype, b.dtype);
        if (!fn)
            s = em_unsupported_type(node, 0, in[0]->dtype, err);
        else if (def->swap)
            ew_binary(ex, &b, bd, br, &a, a.dims, a.rank, &o, fn, def->grain);
        else
            ew_binary(ex, &a, a.dims, a.rank, &b, bd, br, &o, fn, def->grain);
    }
    if (s == EMBER_OK) vm_out_finish(out, &o);
    vm_unwiden(&o);
    vm_unwiden(&a);
    vm_unwiden(&b);
    return s;
}

static void scale_f32(float *x, int64_t n, float k) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / k;
}
static void scale_f64(double *x, int64_t n, double k) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / k;
}

static ember_status run_variadic(const em_node *node, const ew_state *st, em_tensor *const *in,
                                 em_tensor *out, em_exec *ex, ember_error *err) {
    const ew_def *def = st->def;
    int n = node->n_explicit_inputs;
    em_tensor o;
    EM_TRY(vm_out_begin(out, &o, err));
    ember_status s = EMBER_OK;
    if (n == 1) {
        if (o.data != in[0]->data)
            em_convert(o.data, o.dtype, in[0]->data, in[0]->dtype, em_numel(&o));
    }
    bin_fn fn = st->fns[vm_slot(o.dtype)];
    /* Fold left: o = op(in0, in1), then o = op(o, in_k); all broadcast to the output shape. */
    for (int k = 1; k < n && s == EMBER_OK; k++) {
        em_tensor a = o, b;
        a.owns_data = false;
        if (k == 1) s = vm_widen(in[0], &a, err);
        if (s == EMBER_OK) s = vm_widen(in[k], &b, err);
        if (s == EMBER_OK) {
            ew_binary(ex, &a, a.dims, a.rank, &b, b.dims, b.rank, &o, fn, def->grain);
            vm_unwiden(&b);
        }
        vm_unwiden(&a);
    }
    if (s == EMBER_OK && def->mean && n > 1) {
        if (o.dtype == EMBER_FLOAT)
            scale_f32(o.data, em_numel(&o), (float)n);
        else
            scale_f64(o.data, em_numel(&o), (double)n);
    }
    if (s == EMBER_OK) vm_out_finish(out, &o);
    vm_unwiden(&o);
    return s;
}

static ember_status run_where(em_tensor *const *in, em_tensor *out, em_exec *ex) {
    ew_plan plan;
    const int64_t *dims[3] = {in[0]->dims, in[1]->dims, in[2]->dims};
    int ranks[3] = {in[0]->rank, in[1]->rank, in[2]->rank};
    ew_plan_init(&plan, out->dims, out->rank, 3, dims, ranks);
    if (plan.total <= 0) return EMBER_OK;
    size_t es = em_dtype_size(out->dtype);
    ew_job job = {.plan = &plan,
                  .in = {in[0]->data, in[1]->data, in[2]->data},
                  .esize = {1, es, es},
                  .out = out->data,
                  .osize = es,
                  .where = es == 1   ? where_1
                           : es == 2 ? where_2
                           : es == 4 ? where_4
                                     : where_8};
    em_parallel_for(ex, plan.total, EW_GRAIN_CHEAP, ew_range, &job);
    return EMBER_OK;
}

#define NOT_LOOP(T, EXPR)                                                                          \
    do {                                                                                           \
        const T *x = in[0]->data;                                                                  \
        T *y = out->data;                                                                          \
        for (int64_t i = 0; i < n; i++) y[i] = (T)(EXPR);                                          \
    } while (0)

static ember_status run_not(em_tensor *const *in, em_tensor *out) {
    int64_t n = em_numel(out);
    switch (in[0]->dtype) {
    case EMBER_BOOL:
        NOT_LOOP(uint8_t, x[i] == 0);
        break;
    case EMBER_INT8:
    case EMBER_UINT8:
        NOT_LOOP(uint8_t, ~x[i]);
        break;
    case EMBER_INT16:
    case EMBER_UINT16:
        NOT_LOOP(uint16_t, ~x[i]);
        break;
    case EMBER_INT32:
    case EMBER_UINT32:
        NOT_LOOP(uint32_t, ~x[i]);
        break;
    default:
        NOT_LOOP(uint64_t, ~x[i]);
        break;
    }
    return EMBER_OK;
}

static ember_status ew_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                           em_exec *ex, ember_error *err) {
    ew_state local;
    const ew_state *st = state;
    if (!st) {
        EM_TRY(resolve(node, &local, err));
        st = &local;
    }
    switch (st->def->kind) {
    case EW_BINARY:
    case EW_POW:
    case EW_PRELU:
        return run_binary(node, st, in, out, ex, err);
    case EW_VARIADIC:
        return run_variadic(node, st, in, out, ex, err);
    case EW_WHERE:
        return run_where(in, out, ex);
    case EW_NOT:
        return run_not(in, out);
    }
    return fail_node(node, err, EMBER_ERR_UNSUPPORTED, "unknown operator kind");
}

#define EW_OP(name, since, until)                                                                  \
    { "", name, since, until, ew_create, ew_infer, ew_run, ew_destroy, EM_OP_INPLACE_OK }

static const em_op k_ops[] = {
    EW_OP("Add", 1, 14),
    EW_OP("Sub", 1, 14),
    EW_OP("Mul", 1, 14),
    EW_OP("Div", 1, 14),
    EW_OP("Pow", 1, 15),
    EW_OP("Mod", 10, 13),
    EW_OP("Equal", 1, 19),
    EW_OP("Less", 1, 13),
    EW_OP("LessOrEqual", 12, 16),
    EW_OP("Greater", 1, 13),
    EW_OP("GreaterOrEqual", 12, 16),
    EW_OP("And", 1, 7),
    EW_OP("Or", 1, 7),
    EW_OP("Xor", 1, 7),
    EW_OP("BitShift", 11, 11),
    EW_OP("BitwiseAnd", 18, 18),
    EW_OP("BitwiseOr", 18, 18),
    EW_OP("BitwiseXor", 18, 18),
    EW_OP("BitwiseNot", 18, 18),
    EW_OP("Min", 1, 13),
    EW_OP("Max", 1, 13),
    EW_OP("Sum", 1, 13),
    EW_OP("Mean", 1, 13),
    EW_OP("PRelu", 1, 16),
    EW_OP("Where", 9, 16),
    EW_OP("Not", 1, 1),
};

EM_OPS_FAMILY(elementwise) {
    *count = sizeof k_ops / sizeof k_ops[0];
    return k_ops;
}
