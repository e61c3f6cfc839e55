/* Unary elementwise operators: math functions, activations, IsNaN / IsInf, Clip.
 *
 * Every op is a table entry with one loop per dtype slot. Attribute values are read once at
 * creation into the kernel state and copied into locals at the top of each loop, so the
 * compiler can keep them in registers and vectorize. float32 exp-based activations use the
 * branch-free helpers of vmath.h; float16 / bfloat16 are computed in float32. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "vmath.h"

typedef struct un_params {
    float alpha, beta, gamma, lambd, bias;
    int detect_neg, detect_pos;
    double dlo, dhi;   /* Clip bounds for float types */
    int64_t ilo, ihi;  /* ... for signed integers */
    uint64_t ulo, uhi; /* ... for unsigned integers */
} un_params;

// clang-format off
typedef void (*un_fn)(const void *x, void *y, int64_t n, const un_params *p);

/* Locals every loop may use (unused ones cost nothing). */
#define UN_LOCALS                                                                                  \
    const float alpha = p->alpha, beta = p->beta, gamma = p->gamma, lambd = p->lambd,              \
                bias = p->bias;                                                                    \
    (void)alpha, (void)beta, (void)gamma, (void)lambd, (void)bias

#define UN_LOOP(name, TX, TY, EXPR) UN_LOOP_ATTR(name, TX, TY, EXPR, )
#define UN_LOOP_ATTR(name, TX, TY, EXPR, ATTR)                                                     \
    ATTR static void name(const void *vx, void *vy, int64_t n, const un_params *p) {              \
        const TX *xs = vx;                                                                         \
        TY *ys = vy;                                                                               \
        UN_LOCALS;                                                                                 \
        for (int64_t i = 0; i < n; i++) {                                                          \
            const TX x = xs[i];                                                                    \
            ys[i] = (TY)(EXPR);                                                                    \
        }                                                                                          \
    }

#define UN_FLOAT(op, EXPR_F, EXPR_D)                                                               \
    UN_LOOP(op##_f32, float, float, EXPR_F)                                                        \
    UN_LOOP(op##_f64, double, double, EXPR_D)

/* Compute-bound float32 loops: also compiled for wider vector units (see VM_CLONES). */
#define UN_FLOAT_WIDE(op, EXPR_F, EXPR_D)                                                          \
    UN_LOOP_ATTR(op##_f32, float, float, EXPR_F, VM_CLONES)                                        \
    UN_LOOP(op##_f64, double, double, EXPR_D)

/* EXPR_S(T, W) for signed types, EXPR_U(T, W) for unsigned; W is the wrapping unsigned type. */
#define UN_INTS(op, EXPR_S, EXPR_U)                                                                \
    UN_LOOP(op##_i8, int8_t, int8_t, EXPR_S(int8_t, uint32_t))                                     \
    UN_LOOP(op##_i16, int16_t, int16_t, EXPR_S(int16_t, uint32_t))                                 \
    UN_LOOP(op##_i32, int32_t, int32_t, EXPR_S(int32_t, uint32_t))                                 \
    UN_LOOP(op##_i64, int64_t, int64_t, EXPR_S(int64_t, uint64_t))                                 \
    UN_LOOP(op##_u8, uint8_t, uint8_t, EXPR_U(uint8_t, uint32_t))                                  \
    UN_LOOP(op##_u16, uint16_t, uint16_t, EXPR_U(uint16_t, uint32_t))                              \
    UN_LOOP(op##_u32, uint32_t, uint32_t, EXPR_U(uint32_t, uint32_t))                              \
    UN_LOOP(op##_u64, uint64_t, uint64_t, EXPR_U(uint64_t, uint64_t))

#define UN_SINTS(op, EXPR_S)                                                                       \
    UN_LOOP(op##_i8, int8_t, int8_t, EXPR_S(int8_t, uint32_t))                                     \
    UN_LOOP(op##_i16, int16_t, int16_t, EXPR_S(int16_t, uint32_t))                                 \
    UN_LOOP(op##_i32, int32_t, int32_t, EXPR_S(int32_t, uint32_t))                                 \
    UN_LOOP(op##_i64, int64_t, int64_t, EXPR_S(int64_t, uint64_t))

#define T_FLOAT(op) {op##_f32, op##_f64}
#define T_NUM(op)                                                                                  \
    {op##_f32, op##_f64, op##_i8,  op##_i16, op##_i32,                                             \
     op##_i64, op##_u8,  op##_u16, op##_u32, op##_u64}
#define T_SIGNED(op) {op##_f32, op##_f64, op##_i8, op##_i16, op##_i32, op##_i64}

/* ---- helpers ---- */

VM_INLINE double sigmoid_d(double x) {
    double e = exp(-fabs(x));
    return x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
}

/* Round half to even without depending on the floating-point rounding mode. */
VM_INLINE float round_even_f(float x) {
    float r = roundf(x); /* half away from zero */
    return fabsf(x - truncf(x)) == 0.5f ? 2.0f * roundf(x * 0.5f) : r;
}
VM_INLINE double round_even_d(double x) {
    double r = round(x);
    return fabs(x - trunc(x)) == 0.5 ? 2.0 * round(x * 0.5) : r;
}

/* max(0, min(1, v)) keeping NaN. */
VM_INLINE float clamp01_f(float v) {
    v = vm_sel(vm_mask(v < 0.0f), 0.0f, v);
    return vm_sel(vm_mask(v > 1.0f), 1.0f, v);
}
VM_INLINE double clamp01_d(double v) {
    v = v < 0.0 ? 0.0 : v;
    return v > 1.0 ? 1.0 : v;
}

/* log(1 + exp(x)) without overflow. */
VM_INLINE float softplus_f(float x) {
    /* log1p(e) for e = exp(-|x|) in (0, 1]: log1p(e) = 2 atanh(e / (2 + e)), odd series. */
    float e = vm_expf(-fabsf(x));
    float u = e / (2.0f + e), u2 = u * u;
    float s = 1.0f / 13;
    s = s * u2 + 1.0f / 11;
    s = s * u2 + 1.0f / 9;
    s = s * u2 + 1.0f / 7;
    s = s * u2 + 1.0f / 5;
    s = s * u2 + 1.0f / 3;
    s = s * u2 + 1.0f;
    return vm_sel(vm_mask(x > 0), x, 0.0f) + 2.0f * u * s;
}
VM_INLINE double softplus_d(double x) { return (x < 0 ? 0.0 : x) + log1p(exp(-fabs(x))); }

/* Gelu without cancellation for negative x: 1 + erf(z) = erfc(-z), and
 * 0.5 * (1 + tanh(u)) = sigmoid(2u). */
VM_INLINE float gelu_tanh_f(float x) {
    return x * vm_sigmoidf(1.5957691216057308f * (x + 0.044715f * x * x * x));
}
VM_INLINE double gelu_tanh_d(double x) {
    return x * sigmoid_d(1.5957691216057308 * (x + 0.044715 * x * x * x));
}

VM_INLINE double shrink_d(double x, double lambd, double bias) {
    return x < -lambd ? x + bias : x > lambd ? x - bias : 0.0;
}

/* ---- loops ---- */

UN_FLOAT(sqrt, sqrtf(x), sqrt(x))
UN_FLOAT(recip, 1.0f / x, 1.0 / x)
UN_FLOAT_WIDE(exp, vm_expf(x), exp(x))
UN_FLOAT(log, logf(x), log(x))
UN_FLOAT(ceil, ceilf(x), ceil(x))
UN_FLOAT(floor, floorf(x), floor(x))
UN_FLOAT(round, round_even_f(x), round_even_d(x))
UN_FLOAT(sin, sinf(x), sin(x))
UN_FLOAT(cos, cosf(x), cos(x))
UN_FLOAT(tan, tanf(x), tan(x))
UN_FLOAT_WIDE(tanh, vm_tanhf(x), tanh(x))
UN_FLOAT(sinh, sinhf(x), sinh(x))
UN_FLOAT(cosh, coshf(x), cosh(x))
UN_FLOAT(asin, asinf(x), asin(x))
UN_FLOAT(acos, acosf(x), acos(x))
UN_FLOAT(atan, atanf(x), atan(x))
UN_FLOAT(asinh, asinhf(x), asinh(x))
UN_FLOAT(acosh, acoshf(x), acosh(x))
UN_FLOAT(atanh, atanhf(x), atanh(x))
UN_FLOAT_WIDE(sigmoid, vm_sigmoidf(x), sigmoid_d(x))
UN_FLOAT(leaky, vm_sel(vm_mask(x < 0), alpha * x, x), x < 0 ? (double)alpha * x : x)
UN_FLOAT_WIDE(elu, vm_sel(vm_mask(x < 0), alpha * vm_expm1f(x), x), x < 0 ? alpha * expm1(x) : x)
UN_FLOAT_WIDE(selu, gamma * vm_sel(vm_mask(x <= 0), alpha * vm_expm1f(x), x),
         (double)gamma * (x <= 0 ? (double)alpha * expm1(x) : x))
UN_FLOAT_WIDE(celu, vm_sel(vm_mask(x < 0), alpha * vm_expm1f(x / alpha), x),
         x < 0 ? (double)alpha * expm1(x / (double)alpha) : x)
UN_FLOAT(hsig, clamp01_f(alpha * x + beta), clamp01_d((double)alpha * x + (double)beta))
UN_FLOAT(hswish, x * clamp01_f(x * (1.0f / 6.0f) + 0.5f), x * clamp01_d(x / 6.0 + 0.5))
UN_FLOAT_WIDE(softplus, softplus_f(x), softplus_d(x))
UN_FLOAT(softsign, x / (1.0f + fabsf(x)), x / (1.0 + fabs(x)))
UN_FLOAT(threlu, x > alpha ? x : 0.0f, x > alpha ? x : 0.0)
UN_FLOAT_WIDE(gelu, 0.5f * x * vm_one_plus_erff(x * 0.70710678118654752f),
              0.5 * x * erfc(x * -0.70710678118654752))
UN_FLOAT_WIDE(gelu_tanh, gelu_tanh_f(x), gelu_tanh_d(x))
UN_FLOAT_WIDE(mish, x * vm_tanhf(softplus_f(x)), x * tanh(softplus_d(x)))

/* Erf and Shrink also accept integers: computed in double, saturated back. */
#define VIA_DOUBLE_ERF(T, W) (T) vm_sat_i64(erf((double)x))
UN_FLOAT_WIDE(erf, vm_erff(x), erf(x))
UN_INTS(erf, VIA_DOUBLE_ERF, VIA_DOUBLE_ERF)
#define VIA_DOUBLE_SHRINK(T, W) (T) vm_sat_i64(shrink_d((double)x, lambd, bias))
UN_FLOAT(shrink, x < -lambd ? x + bias : x > lambd ? x - bias : 0.0f, shrink_d(x, lambd, bias))
UN_INTS(shrink, VIA_DOUBLE_SHRINK, VIA_DOUBLE_SHRINK)

/* Abs Neg Sign Relu on integers (wrapping: abs(INT_MIN) = INT_MIN as in two's complement). */
#define ABS_S(T, W) (x < 0 ? (T)(0u - (W)x) : x)
#define ABS_U(T, W) (x)
UN_FLOAT(abs, fabsf(x), fabs(x))
UN_INTS(abs, ABS_S, ABS_U)
#define NEG_S(T, W) (T)(0u - (W)x)
UN_FLOAT(neg, -x, -x)
UN_SINTS(neg, NEG_S)
#define SIGN_S(T, W) (T)((x > 0) - (x < 0))
#define SIGN_U(T, W) (T)(x > 0)
UN_FLOAT(sign, vm_sel(vm_mask(x != x), x, (float)((x > 0) - (x < 0))),
         x != x ? x : (double)((x > 0) - (x < 0)))
UN_INTS(sign, SIGN_S, SIGN_U)
#define RELU_S(T, W) (x < 0 ? (T)0 : x)
UN_FLOAT(relu, x < 0 ? 0.0f : x, x < 0 ? 0.0 : x) /* NaN stays NaN */
UN_SINTS(relu, RELU_S)

/* Clip: NaN passes through; min > max gives max, as the spec says. */
static void clip_f32(const void *vx, void *vy, int64_t n, const un_params *p) {
    const float *x = vx;
    float *y = vy;
    const float lo = (float)p->dlo, hi = (float)p->dhi;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}
static void clip_f64(const void *vx, void *vy, int64_t n, const un_params *p) {
    const double *x = vx;
    double *y = vy;
    const double lo = p->dlo, hi = p->dhi;
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        v = v < lo ? lo : v;
        y[i] = v > hi ? hi : v;
    }
}
#define CLIP_INT(name, T, LO, HI)                                                                  \
    static void name(const void *vx, void *vy, int64_t n, const un_params *p) {                   \
        const T *x = vx;                                                                           \
        T *y = vy;                                                                                 \
        const T lo = (T)p->LO, hi = (T)p->HI;                                                      \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T v = x[i];                                                                            \
            v = v < lo ? lo : v;                                                                   \
            y[i] = v > hi ? hi : v;                                                                \
        }                                                                                          \
    }
CLIP_INT(clip_i8, int8_t, ilo, ihi)
CLIP_INT(clip_i16, int16_t, ilo, ihi)
CLIP_INT(clip_i32, int32_t, ilo, ihi)
CLIP_INT(clip_i64, int64_t, ilo, ihi)
CLIP_INT(clip_u8, uint8_t, ulo, uhi)
CLIP_INT(clip_u16, uint16_t, ulo, uhi)
CLIP_INT(clip_u32, uint32_t, ulo, uhi)
CLIP_INT(clip_u64, uint64_t, ulo, uhi)

/* IsNaN / IsInf: float in, bool out. */
UN_LOOP(isnan_f32, float, uint8_t, x != x)
UN_LOOP(isnan_f64, double, uint8_t, x != x)
UN_LOOP(isinf_f32, float, uint8_t,
        (p->detect_pos && x == INFINITY) || (p->detect_neg && x == -INFINITY))
UN_LOOP(isinf_f64, double, uint8_t,
        (p->detect_pos && x == INFINITY) || (p->detect_neg && x == -INFINITY))

// clang-format on

/* ---- op table ---- */

enum { UN_PLAIN, UN_CLIP, UN_BOOL_OUT };

typedef struct un_def {
    const char *op_type;
    int since, until;
    int kind;
    un_fn fns[VM_NSLOTS];
    int64_t grain; /* elements per parallel chunk, lower for costly functions */
} un_def;

#define CHEAP 32768
#define COSTLY 4096

static const un_def k_defs[] = {
    {"Sqrt", 1, 13, UN_PLAIN, T_FLOAT(sqrt), CHEAP},
    {"Reciprocal", 1, 13, UN_PLAIN, T_FLOAT(recip), CHEAP},
    {"Exp", 1, 13, UN_PLAIN, T_FLOAT(exp), COSTLY},
    {"Log", 1, 13, UN_PLAIN, T_FLOAT(log), COSTLY},
    {"Abs", 1, 13, UN_PLAIN, T_NUM(abs), CHEAP},
    {"Neg", 1, 13, UN_PLAIN, T_SIGNED(neg), CHEAP},
    {"Sign", 9, 13, UN_PLAIN, T_NUM(sign), CHEAP},
    {"Ceil", 1, 13, UN_PLAIN, T_FLOAT(ceil), CHEAP},
    {"Floor", 1, 13, UN_PLAIN, T_FLOAT(floor), CHEAP},
    {"Round", 11, 22, UN_PLAIN, T_FLOAT(round), CHEAP},
    {"Erf", 9, 13, UN_PLAIN, T_NUM(erf), COSTLY},
    {"Sin", 7, 22, UN_PLAIN, T_FLOAT(sin), COSTLY},
    {"Cos", 7, 22, UN_PLAIN, T_FLOAT(cos), COSTLY},
    {"Tan", 7, 22, UN_PLAIN, T_FLOAT(tan), COSTLY},
    {"Tanh", 1, 13, UN_PLAIN, T_FLOAT(tanh), COSTLY},
    {"Sinh", 9, 22, UN_PLAIN, T_FLOAT(sinh), COSTLY},
    {"Cosh", 9, 22, UN_PLAIN, T_FLOAT(cosh), COSTLY},
    {"Asin", 7, 22, UN_PLAIN, T_FLOAT(asin), COSTLY},
    {"Acos", 7, 22, UN_PLAIN, T_FLOAT(acos), COSTLY},
    {"Atan", 7, 22, UN_PLAIN, T_FLOAT(atan), COSTLY},
    {"Asinh", 9, 22, UN_PLAIN, T_FLOAT(asinh), COSTLY},
    {"Acosh", 9, 22, UN_PLAIN, T_FLOAT(acosh), COSTLY},
    {"Atanh", 9, 22, UN_PLAIN, T_FLOAT(atanh), COSTLY},
    {"IsNaN", 9, 20, UN_BOOL_OUT, T_FLOAT(isnan), CHEAP},
    {"IsInf", 10, 20, UN_BOOL_OUT, T_FLOAT(isinf), CHEAP},
    {"Relu", 1, 14, UN_PLAIN, T_SIGNED(relu), CHEAP},
    {"LeakyRelu", 1, 16, UN_PLAIN, T_FLOAT(leaky), CHEAP},
    {"Elu", 1, 22, UN_PLAIN, T_FLOAT(elu), COSTLY},
    {"Selu", 1, 22, UN_PLAIN, T_FLOAT(selu), COSTLY},
    {"Celu", 12, 12, UN_PLAIN, T_FLOAT(celu), COSTLY},
    {"Sigmoid", 1, 13, UN_PLAIN, T_FLOAT(sigmoid), COSTLY},
    {"HardSigmoid", 1, 22, UN_PLAIN, T_FLOAT(hsig), CHEAP},
    {"HardSwish", 14, 22, UN_PLAIN, T_FLOAT(hswish), CHEAP},
    {"Softplus", 1, 22, UN_PLAIN, T_FLOAT(softplus), COSTLY},
    {"Softsign", 1, 22, UN_PLAIN, T_FLOAT(softsign), CHEAP},
    {"ThresholdedRelu", 10, 22, UN_PLAIN, T_FLOAT(threlu), CHEAP},
    {"Shrink", 9, 9, UN_PLAIN, T_NUM(shrink), CHEAP},
    {"Clip", 1, 13, UN_CLIP, T_NUM(clip), CHEAP},
    {"Gelu", 20, 20, UN_PLAIN, T_FLOAT(gelu), COSTLY},
    {"Mish", 18, 22, UN_PLAIN, T_FLOAT(mish), COSTLY},
};
#define N_DEFS (sizeof k_defs / sizeof k_defs[0])

static const un_def *find_def(const char *op_type) {
    for (size_t i = 0; i < N_DEFS; i++)
        if (strcmp(k_defs[i].op_type, op_type) == 0) return &k_defs[i];
    return NULL;
}

typedef struct un_state {
    const un_def *def;
    const un_fn *fns; /* def->fns, or another table chosen by an attribute */
    un_params p;
} un_state;

static const un_fn gelu_tanh_fns[VM_NSLOTS] = T_FLOAT(gelu_tanh);

static ember_status fail_node(const em_node *node, ember_error *err, ember_status code,
                              const char *what) {
    char desc[256];
    return em_fail(err, code, "%s: %s", em_node_desc(node, desc, sizeof desc), what);
}

/* Attribute defaults differ per op (alpha is 0.01 for LeakyRelu, 0.2 for HardSigmoid, ...). */
static ember_status read_params(const em_node *node, un_state *st, ember_error *err) {
    const char *op = node->op_type;
    un_params *p = &st->p;
    memset(p, 0, sizeof *p);
    float alpha = 1.0f;
    if (strcmp(op, "LeakyRelu") == 0)
        alpha = 0.01f;
    else if (strcmp(op, "HardSigmoid") == 0)
        alpha = 0.2f;
    else if (strcmp(op, "Selu") == 0)
        alpha = 1.67326319217681884765625f;
    p->alpha = em_attr_float(node, "alpha", alpha);
    p->beta = em_attr_float(node, "beta", 0.5f);
    p->gamma = em_attr_float(node, "gamma", 1.05070102214813232421875f);
    p->lambd = em_attr_float(node, "lambd", 0.5f);
    p->bias = em_attr_float(node, "bias", 0.0f);
    p->detect_neg = em_attr_int(node, "detect_negative", 1) != 0;
    p->detect_pos = em_attr_int(node, "detect_positive", 1) != 0;
    if (strcmp(op, "Celu") == 0 && p->alpha == 0.0f)
        return fail_node(node, err, EMBER_ERR_INVALID_MODEL, "alpha must not be 0");
    if (strcmp(op, "Gelu") == 0) {
        const char *a = em_attr_string(node, "approximate", "none");
        if (strcmp(a, "tanh") == 0)
            st->fns = gelu_tanh_fns;
        else if (strcmp(a, "none") != 0)
            return fail_node(node, err, EMBER_ERR_INVALID_MODEL,
                             "attribute approximate must be \"none\" or \"tanh\"");
    }
    return EMBER_OK;
}

static ember_status resolve(const em_node *node, un_state *st, ember_error *err) {
    st->def = find_def(node->op_type);
    if (!st->def) return fail_node(node, err, EMBER_ERR_UNSUPPORTED, "unknown operator");
    st->fns = st->def->fns;
    return read_params(node, st, err);
}

static ember_status un_create(const em_graph *g, em_node *node, void **state, ember_error *err) {
    (void)g;
    un_state *st = malloc(sizeof *st);
    if (!st) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status s = resolve(node, st, err);
    if (s != EMBER_OK) {
        free(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

static void un_destroy(void *state) {
    free(state);
}

/* Clip before opset 11 takes min / max from attributes; from 11 on from optional inputs. */
static bool clip_uses_inputs(const em_node *node) {
    return em_onnx_op_version("Clip", node->opset) >= 11;
}

static ember_status un_infer(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             ember_error *err) {
    un_state local;
    const un_state *st = state;
    if (!st) {
        EM_TRY(resolve(node, &local, err));
        st = &local;
    }
    if (node->n_explicit_inputs < 1 || !in[0])
        return fail_node(node, err, EMBER_ERR_INVALID_MODEL, "input 0 is missing");
    int slot = vm_slot(in[0]->dtype);
    if (slot < 0 || slot >= VM_NSLOTS || !st->fns[slot])
        return em_unsupported_type(node, 0, in[0]->dtype, err);
    if (st->def->kind == UN_CLIP && clip_uses_inputs(node)) {
        for (int k = 1; k < 3 && k < node->n_explicit_inputs; k++) {
            if (!in[k]) continue;
            if (in[k]->dtype != in[0]->dtype) {
                char desc[256];
                return em_fail(err, EMBER_ERR_INVALID_MODEL,
                               "%s: input %d has type %s but input 0 has type %s",
                               em_node_desc(node, desc, sizeof desc), k,
                               em_dtype_name(in[k]->dtype), em_dtype_name(in[0]->dtype));
            }
            if (in[k]->rank > 0 && em_numel(in[k]) >= 0 && em_numel(in[k]) != 1) {
                char desc[256];
                return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input %d (%s) must be a scalar",
                               em_node_desc(node, desc, sizeof desc), k, k == 1 ? "min" : "max");
            }
        }
    }
    ember_dtype ot = st->def->kind == UN_BOOL_OUT ? EMBER_BOOL : in[0]->dtype;
    em_tensor_set_shape(&out[0], ot, in[0]->dims, in[0]->rank);
    return EMBER_OK;
}

/* One element of a Clip bound tensor in the three representations. */
static void read_bound(const em_tensor *t, double *d, int64_t *i, uint64_t *u) {
    switch (t->dtype) {
    case EMBER_UINT64: {
        uint64_t v = ((const uint64_t *)t->data)[0];
        *u = v;
        *d = (double)v;
        *i = v > INT64_MAX ? INT64_MAX : (int64_t)v;
        return;
    }
    case EMBER_FLOAT:
    case EMBER_DOUBLE:
    case EMBER_FLOAT16:
    case EMBER_BFLOAT16:
        *d = em_get_f64(t, 0);
        return;
    default: {
        int64_t v = em_get_i64(t, 0);
        *i = v;
        *d = (double)v;
        *u = v < 0 ? 0 : (uint64_t)v;
        return;
    }
    }
}

static void clip_bounds(const em_node *node, em_tensor *const *in, un_params *p) {
    p->dlo = -INFINITY;
    p->dhi = INFINITY;
    switch (in[0]->dtype) {
    case EMBER_INT8:
        p->ilo = INT8_MIN, p->ihi = INT8_MAX;
        break;
    case EMBER_INT16:
        p->ilo = INT16_MIN, p->ihi = INT16_MAX;
        break;
    case EMBER_INT32:
        p->ilo = INT32_MIN, p->ihi = INT32_MAX;
        break;
    case EMBER_INT64:
        p->ilo = INT64_MIN, p->ihi = INT64_MAX;
        break;
    case EMBER_UINT8:
        p->uhi = UINT8_MAX;
        break;
    case EMBER_UINT16:
        p->uhi = UINT16_MAX;
        break;
    case EMBER_UINT32:
        p->uhi = UINT32_MAX;
        break;
    default:
        p->uhi = UINT64_MAX;
        break;
    }
    if (!clip_uses_inputs(node)) {
        /* Float attributes; integer inputs (outside the old spec) get them rounded inwards. */
        const em_attr *lo = em_node_attr(node, "min"), *hi = em_node_attr(node, "max");
        if (lo && lo->type == EM_ATTR_FLOAT) {
            p->dlo = lo->f;
            int64_t v = vm_sat_i64(ceil(p->dlo));
            p->ilo = v > p->ilo ? v : p->ilo;
            p->ulo = v > 0 ? (uint64_t)v : 0;
        }
        if (hi && hi->type == EM_ATTR_FLOAT) {
            p->dhi = hi->f;
            int64_t v = vm_sat_i64(floor(p->dhi));
            p->ihi = v < p->ihi ? v : p->ihi;
            p->uhi = v < 0 ? 0 : (uint64_t)v < p->uhi ? (uint64_t)v : p->uhi;
        }
        return;
    }
    if (node->n_explicit_inputs > 1 && in[1] && em_numel(in[1]) == 1)
        read_bound(in[1], &p->dlo, &p->ilo, &p->ulo);
    if (node->n_explicit_inputs > 2 && in[2] && em_numel(in[2]) == 1)
        read_bound(in[2], &p->dhi, &p->ihi, &p->uhi);
}

typedef struct un_job {
    un_fn fn;
    const char *x;
    char *y;
    size_t xs, ys;
    const un_params *p;
} un_job;

static void un_range(void *ctx, int64_t begin, int64_t end) {
    const un_job *j = ctx;
    j->fn(j->x + (size_t)begin * j->xs, j->y + (size_t)begin * j->ys, end - begin, j->p);
}

static ember_status un_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                           em_exec *ex, ember_error *err) {
    un_state local;
    const un_state *st = state;
    if (!st) {
        EM_TRY(resolve(node, &local, err));
        st = &local;
    }
    un_params p = st->p;
    if (st->def->kind == UN_CLIP) clip_bounds(node, in, &p);
    em_tensor x, y = {0};
    EM_TRY(vm_widen(in[0], &x, err));
    ember_status s = vm_out_begin(&out[0], &y, err);
    if (s == EMBER_OK) {
        un_job job = {.fn = st->fns[vm_slot(x.dtype)],
                      .x = x.data,
                      .y = y.data,
                      .xs = em_dtype_size(x.dtype),
                      .ys = em_dtype_size(y.dtype),
                      .p = &p};
        em_parallel_for(ex, em_numel(&x), st->def->grain, un_range, &job);
        vm_out_finish(&out[0], &y);
    }
    vm_unwiden(&y);
    vm_unwiden(&x);
    return s;
}

/* Elementwise: the output may also be a slice of a Concat's output (EM_OP_OUTPUT_VIEW). */
#define UN_OP(name, since, until)                                                                  \
    { "", name, since, until, un_create, un_infer, un_run, un_destroy,                            \
      EM_OP_INPLACE_OK | EM_OP_OUTPUT_VIEW }

static const em_op k_ops[] = {
    UN_OP("Sqrt", 1, 13),     UN_OP("Reciprocal", 1, 13),  UN_OP("Exp", 1, 13),
    UN_OP("Log", 1, 13),      UN_OP("Abs", 1, 13),         UN_OP("Neg", 1, 13),
    UN_OP("Sign", 9, 13),     UN_OP("Ceil", 1, 13),        UN_OP("Floor", 1, 13),
    UN_OP("Round", 11, 22),   UN_OP("Erf", 9, 13),         UN_OP("Sin", 7, 22),
    UN_OP("Cos", 7, 22),      UN_OP("Tan", 7, 22),         UN_OP("Tanh", 1, 13),
    UN_OP("Sinh", 9, 22),     UN_OP("Cosh", 9, 22),        UN_OP("Asin", 7, 22),
    UN_OP("Acos", 7, 22),     UN_OP("Atan", 7, 22),        UN_OP("Asinh", 9, 22),
    UN_OP("Acosh", 9, 22),    UN_OP("Atanh", 9, 22),       UN_OP("IsNaN", 9, 20),
    UN_OP("IsInf", 10, 20),   UN_OP("Relu", 1, 14),        UN_OP("LeakyRelu", 1, 16),
    UN_OP("Elu", 1, 22),      UN_OP("Selu", 1, 22),        UN_OP("Celu", 12, 12),
    UN_OP("Sigmoid", 1, 13),  UN_OP("HardSigmoid", 1, 22), UN_OP("HardSwish", 14, 22),
    UN_OP("Softplus", 1, 22), UN_OP("Softsign", 1, 22),    UN_OP("ThresholdedRelu", 10, 22),
    UN_OP("Shrink", 9, 9),    UN_OP("Clip", 1, 13),        UN_OP("Gelu", 20, 20),
    UN_OP("Mish", 18, 22),
};

EM_OPS_FAMILY(unary) {
    *count = sizeof k_ops / sizeof k_ops[0];
    return k_ops;
}
