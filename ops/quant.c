/* Linear quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear.
 *
 * x is seen as [outer, d, inner] around `axis`. A scale (and its zero point) applies to the
 * whole tensor, to one index along the axis (per-axis, opset 13), or to a block of `block_size`
 * indices along the axis (blocked, opset 21; the scale keeps x's other dims). The kernels walk
 * x in "segments": runs of consecutive elements whose scales are either one value or
 * consecutive in the scale array, so every inner loop is a tight, vectorizable loop.
 *
 * Rounding is half to even. In float32 it is done with the 1.5 * 2^23 trick (exact for
 * |v| <= 2^22; larger values are clamped first, which saturates them anyway), so the loop
 * vectorizes without SSE4.1. NaN quantizes to the type's minimum (as x86 min/max clamping
 * does in other runtimes). float8 and 4-bit types are not implemented (ember has no such
 * dtypes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "shape_util.h"

static int op_version(const em_node *node) {
    int v = em_onnx_op_version(node->op_type, node->opset);
    return v > 0 ? v : node->opset;
}

static const em_tensor *opt_input(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_explicit_inputs ? in[i] : NULL;
}

/* ============================================================================================
 * Layout: how an element finds its scale
 * ========================================================================================== */

typedef enum qmode {
    Q_TENSOR,        /* one scale */
    Q_AXIS,          /* scale[(p / inner) % d], constant over runs of `inner` */
    Q_AXIS_EXPANDED, /* per-axis with a short inner: scales expanded to a period of d * inner */
    Q_BLOCK,         /* blocked, inner > 1: scales consecutive over runs of `inner` */
    Q_BLOCK_LAST,    /* blocked on the innermost axis: one scale per run of `block` */
} qmode;

typedef struct qlayout {
    qmode mode;
    int64_t numel;
    int64_t outer, d, inner; /* x = [outer, d, inner] around the axis */
    int64_t block, scale_d;  /* blocked: indices per scale, scale dim on the axis */
    int64_t n_scales;        /* elements of the scale (and zero point) tensors */
} qlayout;

/* Expanding per-axis scales pays off when runs would be shorter than this. */
#define Q_SHORT_INNER 16
#define Q_MAX_EXPANDED 65536

static bool same_dims(const em_tensor *a, const em_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

/* Validate scale / zero point shapes against x and describe the granularity. */
static ember_status q_layout(const em_node *node, const em_tensor *x, const em_tensor *scale,
                             const em_tensor *zp, const char *scale_name, qlayout *lay,
                             ember_error *err) {
    const int version = op_version(node);
    memset(lay, 0, sizeof *lay);
    lay->numel = em_numel(x);
    lay->n_scales = em_numel(scale);
    if (lay->numel < 0 || lay->n_scales < 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "input shapes are invalid or too large");
    if (zp && (zp->rank != scale->rank || !same_dims(zp, scale)) &&
        !(zp->rank <= 1 && scale->rank <= 1 && em_numel(zp) == 1 && lay->n_scales == 1))
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "the zero point's shape must match the shape of %s", scale_name);
    const int64_t block = version >= 21 ? em_attr_int(node, "block_size", 0) : 0;
    if (block < 0)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "block_size %lld is negative",
                        (long long)block);
    if (block == 0 && scale->rank <= 1 && lay->n_scales == 1) {
        lay->mode = Q_TENSOR;
        lay->outer = lay->d = 1;
        lay->inner = lay->numel;
        return EMBER_OK;
    }
    if (block == 0 && scale->rank != 1)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "%s has rank %d: per-tensor needs a scalar, per-axis a 1-D tensor%s",
                        scale_name, scale->rank,
                        version >= 21 ? ", blocked quantization block_size > 0" : "");
    if (block == 0 && version < 13)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "%s must be a scalar before opset 13 (per-axis came with opset 13), "
                        "got %lld elements",
                        scale_name, (long long)lay->n_scales);
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 1), x->rank, &axis, err));
    if (x->rank == 0)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "a scalar input has no axis");
    lay->outer = em_shape_numel(x->dims, axis);
    lay->d = x->dims[axis];
    lay->inner = em_shape_numel(x->dims + axis + 1, x->rank - axis - 1);
    if (block == 0) {
        if (scale->dims[0] != lay->d)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "per-axis %s has %lld elements but axis %d has size %lld", scale_name,
                            (long long)scale->dims[0], axis, (long long)lay->d);
        lay->mode = Q_AXIS;
        if (lay->inner < Q_SHORT_INNER && lay->d * lay->inner <= Q_MAX_EXPANDED)
            lay->mode = Q_AXIS_EXPANDED;
        return EMBER_OK;
    }
    /* Blocked: scale dims equal x's except ceil(d / block) on the axis. */
    if (scale->rank != x->rank)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "blocked %s must have the input's rank %d, got %d", scale_name, x->rank,
                        scale->rank);
    const int64_t want = lay->d / block + (lay->d % block != 0);
    for (int i = 0; i < x->rank; i++) {
        int64_t expect = i == axis ? want : x->dims[i];
        if (scale->dims[i] != expect)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "blocked %s has size %lld on axis %d, expected %lld (block_size "
                            "%lld)",
                            scale_name, (long long)scale->dims[i], i, (long long)expect,
                            (long long)block);
    }
    lay->block = block;
    lay->scale_d = want;
    lay->mode = lay->inner == 1 ? Q_BLOCK_LAST : Q_BLOCK;
    return EMBER_OK;
}

/* The segment starting at flat position pos: its maximum length, the offset of its first
 * scale, and whether scales advance with the elements (*vec) or stay fixed. */
static int64_t q_segment(const qlayout *lay, int64_t pos, int64_t *soff, int *vec) {
    int64_t row, i, a;
    switch (lay->mode) {
    case Q_TENSOR:
        *soff = 0;
        *vec = 0;
        return lay->numel - pos;
    case Q_AXIS:
        row = pos / lay->inner;
        *soff = row % lay->d;
        *vec = 0;
        return lay->inner - pos % lay->inner;
    case Q_AXIS_EXPANDED:
        i = pos % (lay->d * lay->inner);
        *soff = i;
        *vec = 1;
        return lay->d * lay->inner - i;
    case Q_BLOCK:
        row = pos / lay->inner;
        i = pos % lay->inner;
        *soff = ((row / lay->d) * lay->scale_d + (row % lay->d) / lay->block) * lay->inner + i;
        *vec = 1;
        return lay->inner - i;
    default: /* Q_BLOCK_LAST */
        a = pos % lay->d;
        *soff = (pos / lay->d) * lay->scale_d + a / lay->block;
        *vec = 0;
        i = lay->block - a % lay->block;
        return i < lay->d - a ? i : lay->d - a;
    }
}

/* Number of scale entries the run needs: expanded per-axis repeats each scale inner times. */
static int64_t q_table_len(const qlayout *lay) {
    return lay->mode == Q_AXIS_EXPANDED ? lay->d * lay->inner : lay->n_scales;
}

/* Scale table in float, expanded where the layout asks for it. */
static void q_fill_table(const qlayout *lay, const em_tensor *t, float *dst) {
    const int64_t n = lay->n_scales;
    if (lay->mode == Q_AXIS_EXPANDED) {
        for (int64_t a = 0; a < lay->d; a++) {
            float v = (float)em_get_f64(t, a);
            for (int64_t i = 0; i < lay->inner; i++) dst[a * lay->inner + i] = v;
        }
        return;
    }
    if (t->dtype == EMBER_FLOAT) {
        memcpy(dst, t->data, sizeof(float) * (size_t)n);
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = (float)em_get_f64(t, i);
}

static void q_fill_table_i32(const qlayout *lay, const em_tensor *t, int32_t *dst) {
    if (lay->mode == Q_AXIS_EXPANDED) {
        for (int64_t a = 0; a < lay->d; a++) {
            int32_t v = t ? (int32_t)em_get_i64(t, a) : 0;
            for (int64_t i = 0; i < lay->inner; i++) dst[a * lay->inner + i] = v;
        }
        return;
    }
    for (int64_t i = 0; i < lay->n_scales; i++) dst[i] = t ? (int32_t)em_get_i64(t, i) : 0;
}

/* ============================================================================================
 * QuantizeLinear
 * ========================================================================================== */

#define Q_MAGIC 12582912.0f /* 1.5 * 2^23: adding and subtracting it rounds to an integer */
#define Q_LIMIT 4194304.0f  /* 2^22: beyond this every integer type saturates */

/* Selects through integer masks: with gcc's default -ftrapping-math, `c ? a : b` on floats
 * turns the loop body into control flow and stops vectorization. */
static inline float q_bits_f(int32_t i) {
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline int32_t q_f_bits(float f) {
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

static inline float q_sel(int cond, float a, float b) {
    int32_t mask = -(int32_t)(cond != 0);
    return q_bits_f((q_f_bits(a) & mask) | (q_f_bits(b) & ~mask));
}

/* round_half_even(v) + zp, clamped to [lo, hi]; NaN gives lo. */
static inline float q_round_clamp(float v, float zp, float lo, float hi) {
    v = q_sel(v < -Q_LIMIT, -Q_LIMIT, v);
    v = q_sel(v > Q_LIMIT, Q_LIMIT, v);
    v = (v + Q_MAGIC) - Q_MAGIC;
    v += zp;
    v = q_sel(v > lo, v, lo);
    return q_sel(v < hi, v, hi);
}

#define Q_SEG_F32(T)                                                                               \
    static void q_seg_f32_##T(const float *restrict x, T *restrict y, int64_t n,                   \
                              const float *restrict s, const float *restrict z, int vec, float lo, \
                              float hi) {                                                          \
        if (!vec) {                                                                                \
            const float sc = s[0], zp = z[0];                                                      \
            for (int64_t i = 0; i < n; i++)                                                        \
                y[i] = (T)(int32_t)q_round_clamp(x[i] / sc, zp, lo, hi);                           \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++)                                                        \
                y[i] = (T)(int32_t)q_round_clamp(x[i] / s[i], z[i], lo, hi);                       \
        }                                                                                          \
    }

Q_SEG_F32(uint8_t)
Q_SEG_F32(int8_t)
Q_SEG_F32(uint16_t)
Q_SEG_F32(int16_t)

typedef struct quant_ctx {
    const qlayout *lay;
    const void *x;
    ember_dtype xt;
    void *y;
    ember_dtype yt;
    const float *scale, *zp;
    float lo, hi;
} quant_ctx;

static void q_store_f32(const quant_ctx *c, const float *x, int64_t pos, int64_t n, const float *s,
                        const float *z, int vec) {
    switch (c->yt) {
    case EMBER_UINT8:
        q_seg_f32_uint8_t(x, (uint8_t *)c->y + pos, n, s, z, vec, c->lo, c->hi);
        break;
    case EMBER_INT8:
        q_seg_f32_int8_t(x, (int8_t *)c->y + pos, n, s, z, vec, c->lo, c->hi);
        break;
    case EMBER_UINT16:
        q_seg_f32_uint16_t(x, (uint16_t *)c->y + pos, n, s, z, vec, c->lo, c->hi);
        break;
    default:
        q_seg_f32_int16_t(x, (int16_t *)c->y + pos, n, s, z, vec, c->lo, c->hi);
        break;
    }
}

/* int32 / double inputs: double arithmetic, as exact as the spec's reference. */
static void q_seg_f64(const quant_ctx *c, int64_t pos, int64_t n, const float *s, const float *z,
                      int vec) {
    for (int64_t i = 0; i < n; i++) {
        double xv = c->xt == EMBER_INT32 ? (double)((const int32_t *)c->x)[pos + i]
                                         : ((const double *)c->x)[pos + i];
        double v = nearbyint(xv / (double)s[vec ? i : 0]) + (double)z[vec ? i : 0];
        v = v > c->lo ? v : c->lo;
        int32_t q = (int32_t)(v < c->hi ? v : c->hi);
        switch (c->yt) {
        case EMBER_UINT8:
            ((uint8_t *)c->y)[pos + i] = (uint8_t)q;
            break;
        case EMBER_INT8:
            ((int8_t *)c->y)[pos + i] = (int8_t)q;
            break;
        case EMBER_UINT16:
            ((uint16_t *)c->y)[pos + i] = (uint16_t)q;
            break;
        default:
            ((int16_t *)c->y)[pos + i] = (int16_t)q;
            break;
        }
    }
}

static void quant_range(void *vctx, int64_t begin, int64_t end) {
    const quant_ctx *c = vctx;
    float buf[256];
    for (int64_t pos = begin; pos < end;) {
        int64_t soff;
        int vec;
        int64_t n = q_segment(c->lay, pos, &soff, &vec);
        if (n > end - pos) n = end - pos;
        const float *s = c->scale + soff, *z = c->zp + soff;
        if (c->xt == EMBER_FLOAT) {
            q_store_f32(c, (const float *)c->x + pos, pos, n, s, z, vec);
        } else if (c->xt == EMBER_FLOAT16 || c->xt == EMBER_BFLOAT16) {
            const uint16_t *xh = (const uint16_t *)c->x + pos;
            for (int64_t k = 0; k < n; k += 256) {
                int64_t m = n - k < 256 ? n - k : 256;
                for (int64_t i = 0; i < m; i++)
                    buf[i] = c->xt == EMBER_FLOAT16 ? em_f16_to_f32(xh[k + i])
                                                    : em_bf16_to_f32(xh[k + i]);
                q_store_f32(c, buf, pos + k, m, vec ? s + k : s, vec ? z + k : z, vec);
            }
        } else {
            q_seg_f64(c, pos, n, s, z, vec);
        }
        pos += n;
    }
}

static bool q_out_range(ember_dtype t, float *lo, float *hi) {
    switch (t) {
    case EMBER_UINT8:
        *lo = 0, *hi = 255;
        return true;
    case EMBER_INT8:
        *lo = -128, *hi = 127;
        return true;
    case EMBER_UINT16:
        *lo = 0, *hi = 65535;
        return true;
    case EMBER_INT16:
        *lo = -32768, *hi = 32767;
        return true;
    default:
        return false;
    }
}

static bool q_float_input(ember_dtype t) {
    return t == EMBER_FLOAT || t == EMBER_FLOAT16 || t == EMBER_BFLOAT16;
}

static ember_status quant_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *scale = opt_input(node, in, 1), *zp = opt_input(node, in, 2);
    if (!scale) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "y_scale is required");
    if (!q_float_input(x->dtype) && x->dtype != EMBER_INT32 && x->dtype != EMBER_DOUBLE)
        return em_unsupported_type(node, 0, x->dtype, err);
    if (!q_float_input(scale->dtype) && scale->dtype != EMBER_INT32 && scale->dtype != EMBER_DOUBLE)
        return em_unsupported_type(node, 1, scale->dtype, err);
    ember_dtype yt = EMBER_UINT8;
    const int64_t attr_type = op_version(node) >= 21 ? em_attr_int(node, "output_dtype", 0) : 0;
    if (zp) {
        yt = zp->dtype;
        if (attr_type != 0 && attr_type != (int64_t)yt)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "output_dtype %lld does not match the zero point's type %s",
                            (long long)attr_type, em_dtype_name(yt));
    } else if (attr_type != 0) {
        yt = (ember_dtype)attr_type;
    }
    float lo, hi;
    if (!q_out_range(yt, &lo, &hi))
        return ems_fail(err, EMBER_ERR_UNSUPPORTED, node,
                        "quantizing to type %d (%s) is not supported (uint8, int8, uint16, "
                        "int16 are)",
                        (int)yt, em_dtype_name(yt));
    qlayout lay;
    EM_TRY(q_layout(node, x, scale, zp, "y_scale", &lay, err));
    em_tensor_set_shape(&out[0], yt, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status quant_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *scale = in[1], *zp = opt_input(node, in, 2);
    qlayout lay;
    EM_TRY(q_layout(node, x, scale, zp, "y_scale", &lay, err));
    if (lay.numel == 0) return EMBER_OK;
    const int64_t tn = q_table_len(&lay);
    void *owned = NULL;
    float *tables = ems_scratch(ex, sizeof(float) * 2 * (size_t)tn, &owned, err);
    if (!tables) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    q_fill_table(&lay, scale, tables);
    if (zp) {
        q_fill_table(&lay, zp, tables + tn);
    } else {
        memset(tables + tn, 0, sizeof(float) * (size_t)tn);
    }
    quant_ctx c = {.lay = &lay,
                   .x = x->data,
                   .xt = x->dtype,
                   .y = out[0].data,
                   .yt = out[0].dtype,
                   .scale = tables,
                   .zp = tables + tn};
    q_out_range(c.yt, &c.lo, &c.hi);
    ems_parallel(ex, lay.numel, 16384, quant_range, &c);
    free(owned);
    return EMBER_OK;
}

/* ============================================================================================
 * DequantizeLinear: y = (x - zero_point) * scale
 * ========================================================================================== */

#define DQ_SEG(T)                                                                                  \
    static void dq_seg_##T(const T *restrict x, float *restrict y, int64_t n,                      \
                           const float *restrict s, const int32_t *restrict z, int vec) {          \
        if (!vec) {                                                                                \
            const float sc = s[0];                                                                 \
            const int32_t zp = z[0];                                                               \
            for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - zp) * sc;               \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) y[i] = (float)((int32_t)x[i] - z[i]) * s[i];           \
        }                                                                                          \
    }

DQ_SEG(uint8_t)
DQ_SEG(int8_t)
DQ_SEG(uint16_t)
DQ_SEG(int16_t)

/* int32: the difference in 64 bits (it may not fit 32). */
static void dq_seg_int32_t(const int32_t *restrict x, float *restrict y, int64_t n,
                           const float *restrict s, const int32_t *restrict z, int vec) {
    for (int64_t i = 0; i < n; i++) {
        int64_t k = vec ? i : 0;
        y[i] = (float)((int64_t)x[i] - (int64_t)z[k]) * s[k];
    }
}

typedef struct dequant_ctx {
    const qlayout *lay;
    const void *x;
    ember_dtype xt;
    void *y;
    ember_dtype yt;
    const float *scale;
    const int32_t *zp;
} dequant_ctx;

static void dq_seg(const dequant_ctx *c, int64_t pos, int64_t n, float *y, const float *s,
                   const int32_t *z, int vec) {
    switch (c->xt) {
    case EMBER_UINT8:
        dq_seg_uint8_t((const uint8_t *)c->x + pos, y, n, s, z, vec);
        break;
    case EMBER_INT8:
        dq_seg_int8_t((const int8_t *)c->x + pos, y, n, s, z, vec);
        break;
    case EMBER_UINT16:
        dq_seg_uint16_t((const uint16_t *)c->x + pos, y, n, s, z, vec);
        break;
    case EMBER_INT16:
        dq_seg_int16_t((const int16_t *)c->x + pos, y, n, s, z, vec);
        break;
    default:
        dq_seg_int32_t((const int32_t *)c->x + pos, y, n, s, z, vec);
        break;
    }
}

static void dequant_range(void *vctx, int64_t begin, int64_t end) {
    const dequant_ctx *c = vctx;
    float buf[256];
    for (int64_t pos = begin; pos < end;) {
        int64_t soff;
        int vec;
        int64_t n = q_segment(c->lay, pos, &soff, &vec);
        if (n > end - pos) n = end - pos;
        const float *s = c->scale + soff;
        const int32_t *z = c->zp + soff;
        if (c->yt == EMBER_FLOAT) {
            dq_seg(c, pos, n, (float *)c->y + pos, s, z, vec);
        } else {
            uint16_t *yh = (uint16_t *)c->y + pos;
            for (int64_t k = 0; k < n; k += 256) {
                int64_t m = n - k < 256 ? n - k : 256;
                dq_seg(c, pos + k, m, buf, vec ? s + k : s, vec ? z + k : z, vec);
                for (int64_t i = 0; i < m; i++)
                    yh[k + i] =
                        c->yt == EMBER_FLOAT16 ? em_f32_to_f16(buf[i]) : em_f32_to_bf16(buf[i]);
            }
        }
        pos += n;
    }
}

static ember_status dequant_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *scale = opt_input(node, in, 1), *zp = opt_input(node, in, 2);
    if (!scale) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "x_scale is required");
    switch (x->dtype) {
    case EMBER_UINT8:
    case EMBER_INT8:
    case EMBER_UINT16:
    case EMBER_INT16:
    case EMBER_INT32:
        break;
    default:
        return em_unsupported_type(node, 0, x->dtype, err);
    }
    if (!q_float_input(scale->dtype)) return em_unsupported_type(node, 1, scale->dtype, err);
    if (zp && zp->dtype != x->dtype)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "x_zero_point has type %s but x has type %s", em_dtype_name(zp->dtype),
                        em_dtype_name(x->dtype));
    qlayout lay;
    EM_TRY(q_layout(node, x, scale, zp, "x_scale", &lay, err));
    em_tensor_set_shape(&out[0], scale->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status dequant_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *scale = in[1], *zp = opt_input(node, in, 2);
    qlayout lay;
    EM_TRY(q_layout(node, x, scale, zp, "x_scale", &lay, err));
    if (lay.numel == 0) return EMBER_OK;
    const int64_t tn = q_table_len(&lay);
    void *owned = NULL;
    float *tables = ems_scratch(ex, (sizeof(float) + sizeof(int32_t)) * (size_t)tn, &owned, err);
    if (!tables) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    int32_t *zps = (int32_t *)(tables + tn);
    q_fill_table(&lay, scale, tables);
    q_fill_table_i32(&lay, zp, zps);
    dequant_ctx c = {.lay = &lay,
                     .x = x->data,
                     .xt = x->dtype,
                     .y = out[0].data,
                     .yt = out[0].dtype,
                     .scale = tables,
                     .zp = zps};
    ems_parallel(ex, lay.numel, 16384, dequant_range, &c);
    free(owned);
    return EMBER_OK;
}

/* ============================================================================================
 * DynamicQuantizeLinear: uint8 with a scale and zero point from the range of x (widened to
 * include 0): scale = (max - min) / 255 (1 when x is all zeros), zero point =
 * round(clamp(-min / scale, 0, 255)). NaN is ignored by the range and quantizes to 0.
 * ========================================================================================== */

static ember_status dynq_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    if (x->dtype != EMBER_FLOAT) return em_unsupported_type(node, 0, x->dtype, err);
    if (em_numel(x) < 0) return ems_fail(err, EMBER_ERR_SHAPE, node, "input shape is invalid");
    em_tensor_set_shape(&out[0], EMBER_UINT8, x->dims, x->rank);
    if (node->n_outputs > 1) em_tensor_set_shape(&out[1], EMBER_FLOAT, NULL, 0);
    if (node->n_outputs > 2) em_tensor_set_shape(&out[2], EMBER_UINT8, NULL, 0);
    return EMBER_OK;
}

static ember_status dynq_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, ember_error *err) {
    (void)state;
    (void)err;
    const em_tensor *x = in[0];
    const int64_t n = em_numel(x);
    const float *restrict xv = x->data;
    /* 16 lanes of running min / max (vectorizes); NaN never compares, so it is skipped */
    float lane_mn[16] = {0}, lane_mx[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) {
            float v = xv[i + j];
            lane_mn[j] = q_sel(v < lane_mn[j], v, lane_mn[j]);
            lane_mx[j] = q_sel(v > lane_mx[j], v, lane_mx[j]);
        }
    float mn = 0.0f, mx = 0.0f;
    for (int j = 0; j < 16; j++) {
        mn = lane_mn[j] < mn ? lane_mn[j] : mn;
        mx = lane_mx[j] > mx ? lane_mx[j] : mx;
    }
    for (; i < n; i++) {
        mn = xv[i] < mn ? xv[i] : mn;
        mx = xv[i] > mx ? xv[i] : mx;
    }
    float scale = mx == mn ? 1.0f : (mx - mn) / 255.0f;
    float zpf = 0.0f - mn / scale;
    zpf = zpf > 0.0f ? zpf : 0.0f;
    zpf = zpf < 255.0f ? zpf : 255.0f;
    zpf = nearbyintf(zpf);
    if (node->n_outputs > 1 && out[1].data) *(float *)out[1].data = scale;
    if (node->n_outputs > 2 && out[2].data) *(uint8_t *)out[2].data = (uint8_t)zpf;
    if (n == 0) return EMBER_OK;
    qlayout lay = {.mode = Q_TENSOR, .numel = n, .outer = 1, .d = 1, .inner = n, .n_scales = 1};
    quant_ctx c = {.lay = &lay,
                   .x = xv,
                   .xt = EMBER_FLOAT,
                   .y = out[0].data,
                   .yt = EMBER_UINT8,
                   .scale = &scale,
                   .zp = &zpf,
                   .lo = 0.0f,
                   .hi = 255.0f};
    ems_parallel(ex, n, 16384, quant_range, &c);
    return EMBER_OK;
}

static const em_op k_quant_ops[] = {
    {"", "QuantizeLinear", 10, 21, NULL, quant_infer, quant_run, NULL, 0},
    {"", "DequantizeLinear", 10, 21, NULL, dequant_infer, dequant_run, NULL, 0},
    {"", "DynamicQuantizeLinear", 11, 0, NULL, dynq_infer, dynq_run, NULL, 0},
};

EM_OPS_FAMILY(quant) {
    *count = sizeof k_quant_ops / sizeof k_quant_ops[0];
    return k_quant_ops;
}
