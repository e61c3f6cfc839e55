/* Pad, Resize and Upsample.
 *
 * Pad and nearest-neighbour Resize are both "gathers through per-axis index maps": output
 * coordinate o on axis k reads input coordinate map_k[o], or a fill value where map_k[o] < 0
 * (constant padding, tf_crop_and_resize extrapolation). Linear and cubic Resize are separable:
 * one 1-D pass per resized axis, each output a weighted sum of a few input rows, which gives
 * the same result as the spec's N-D formula (the reference also nests 1-D interpolations). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "shape_util.h"

typedef uint8_t epr_u8 __attribute__((may_alias));
typedef uint16_t epr_u16 __attribute__((may_alias));
typedef uint32_t epr_u32 __attribute__((may_alias));
typedef uint64_t epr_u64 __attribute__((may_alias));

static int op_version(const em_node *node) {
    int v = em_onnx_op_version(node->op_type, node->opset);
    return v > 0 ? v : node->opset;
}

static const em_tensor *input_or_null(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_explicit_inputs ? in[i] : NULL;
}

/* Absent, or present with zero elements (the ONNX "empty" placeholder). */
static bool input_empty(const em_node *node, em_tensor *const *in, int i) {
    const em_tensor *t = input_or_null(node, in, i);
    return t == NULL || (t->rank >= 0 && em_numel(t) == 0);
}

static void set_rank_only(em_tensor *out, ember_dtype dt, int rank) {
    out->dtype = dt;
    out->rank = rank;
    for (int i = 0; i < rank; i++) out->dims[i] = -1;
}

/* ============================================================================================
 * Gather through per-axis index maps
 * ========================================================================================== */

typedef struct map_ctx {
    char *dst;
    const char *src;
    int rank;
    const int64_t *dims;    /* output dims */
    const int64_t *strides; /* input strides in elements */
    const int64_t *const *maps;
    const void *fill;
    size_t es;
    /* On the last axis, outputs [run_lo, run_hi) read consecutive inputs from run_src. */
    int64_t run_lo, run_hi, run_src;
} map_ctx;

#define EPR_ROW_GATHER(T)                                                                          \
    do {                                                                                           \
        T *restrict d_ = (T *)d;                                                                   \
        const T *restrict s_ = (const T *)s;                                                       \
        T f_ = *(const T *)c->fill;                                                                \
        for (int64_t o = lo; o < hi; o++) d_[o] = last[o] < 0 ? f_ : s_[last[o]];                  \
    } while (0)

static void gather_part(const map_ctx *c, char *d, const char *s, int64_t lo, int64_t hi) {
    const int64_t *last = c->maps[c->rank - 1];
    switch (c->es) {
    case 1:
        EPR_ROW_GATHER(epr_u8);
        break;
    case 2:
        EPR_ROW_GATHER(epr_u16);
        break;
    case 4:
        EPR_ROW_GATHER(epr_u32);
        break;
    default:
        EPR_ROW_GATHER(epr_u64);
        break;
    }
}

static void map_range(void *vctx, int64_t begin, int64_t end) {
    const map_ctx *c = vctx;
    int outer_rank = c->rank - 1;
    int64_t w = c->dims[c->rank - 1];
    int64_t idx[EM_MAX_RANK];
    int64_t rem = begin;
    for (int k = outer_rank - 1; k >= 0; k--) {
        idx[k] = rem % c->dims[k];
        rem /= c->dims[k];
    }
    size_t row_bytes = (size_t)w * c->es;
    for (int64_t r = begin; r < end; r++) {
        char *d = c->dst + (size_t)r * row_bytes;
        int64_t off = 0;
        bool fill = false;
        for (int k = 0; k < outer_rank; k++) {
            int64_t m = c->maps[k][idx[k]];
            if (m < 0) fill = true;
            off += m * c->strides[k];
        }
        if (fill) {
            ems_fill(d, c->fill, w, c->es);
        } else {
            const char *s = c->src + off * (int64_t)c->es;
            gather_part(c, d, s, 0, c->run_lo);
            if (c->run_hi > c->run_lo)
                memcpy(d + (size_t)c->run_lo * c->es, s + c->run_src * (int64_t)c->es,
                       (size_t)(c->run_hi - c->run_lo) * c->es);
            gather_part(c, d, s, c->run_hi, w);
        }
        for (int k = outer_rank - 1; k >= 0; k--) {
            if (++idx[k] < c->dims[k]) break;
            idx[k] = 0;
        }
    }
}

/* dst[o] = src[map_0[o_0], ..., map_{r-1}[o_{r-1}]], or *fill where any map is negative. */
static void gather_maps(void *dst, const em_tensor *x, const int64_t *out_dims,
                        const int64_t *const *maps, const void *fill, em_exec *ex) {
    int r = x->rank;
    int64_t strides[EM_MAX_RANK];
    em_strides(x->dims, r, strides);
    map_ctx c = {.dst = dst,
                 .src = x->data,
                 .rank = r,
                 .dims = out_dims,
                 .strides = strides,
                 .maps = maps,
                 .fill = fill,
                 .es = em_dtype_size(x->dtype)};
    /* Longest run of consecutive input indices on the last axis: copied with memcpy. */
    const int64_t *last = maps[r - 1];
    int64_t w = out_dims[r - 1];
    for (int64_t o = 0; o < w;) {
        int64_t e = o + 1;
        if (last[o] >= 0)
            while (e < w && last[e] == last[e - 1] + 1) e++;
        if (last[o] >= 0 && e - o > c.run_hi - c.run_lo) {
            c.run_lo = o;
            c.run_hi = e;
            c.run_src = last[o];
        }
        o = e;
    }
    int64_t rows = 1;
    for (int k = 0; k < r - 1; k++) rows *= out_dims[k];
    ems_parallel(ex, rows, ems_grain(w * (int64_t)c.es), map_range, &c);
}

/* The fill value (a double) as one element of dtype dt. */
static void fill_value(double v, ember_dtype dt, void *buf8) {
    memset(buf8, 0, 8);
    em_convert(buf8, dt, &v, EMBER_DOUBLE, 1);
}

/* ============================================================================================
 * Pad
 * ========================================================================================== */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

typedef struct pad_plan {
    int mode;
    int64_t begin[EM_MAX_RANK], end[EM_MAX_RANK]; /* may be negative (crop) */
    int64_t out[EM_MAX_RANK];
} pad_plan;

static ember_status pad_mode(const em_node *node, int *mode, ember_error *err) {
    const char *m = em_attr_string(node, "mode", "constant");
    if (strcmp(m, "constant") == 0)
        *mode = PAD_CONSTANT;
    else if (strcmp(m, "reflect") == 0)
        *mode = PAD_REFLECT;
    else if (strcmp(m, "edge") == 0)
        *mode = PAD_EDGE;
    else if (strcmp(m, "wrap") == 0 && op_version(node) >= 19)
        *mode = PAD_WRAP;
    else
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "unknown mode '%s'", m);
    return EMBER_OK;
}

/* Pads per axis; *unknown when the pads (or axes) input has no data yet. */
static ember_status pad_make_plan(const em_node *node, em_tensor *const *in, pad_plan *p,
                                  bool *unknown, ember_error *err) {
    const em_tensor *x = in[0];
    int r = x->rank, ver = op_version(node);
    int64_t pads[2 * EM_MAX_RANK], n = 0;
    int axes[EM_MAX_RANK], n_axes = r;
    *unknown = false;
    EM_TRY(pad_mode(node, &p->mode, err));
    for (int i = 0; i < r; i++) axes[i] = i;
    if (ver < 11) {
        const char *name = ver < 2 ? "paddings" : "pads";
        const int64_t *a = em_attr_ints(node, name, &n);
        if (!a)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "attribute '%s' is missing", name);
        if (n != 2 * r)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "'%s' has %lld values for rank %d",
                            name, (long long)n, r);
        memcpy(pads, a, sizeof *pads * (size_t)n);
    } else {
        const em_tensor *pt = input_or_null(node, in, 1);
        if (!pt) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input 'pads' is missing");
        const em_tensor *at = ver >= 18 && !input_empty(node, in, 3) ? in[3] : NULL;
        if (!pt->data || (at && !at->data)) {
            *unknown = true;
            return EMBER_OK;
        }
        if (at) {
            int64_t av[EM_MAX_RANK], na;
            EM_TRY(ems_read_ints(node, at, "axes", av, EM_MAX_RANK, &na, err));
            bool seen[EM_MAX_RANK] = {false};
            for (int i = 0; i < na; i++) {
                EM_TRY(em_norm_axis(node, av[i], r, &axes[i], err));
                if (seen[axes[i]])
                    return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "axis %d is repeated",
                                    axes[i]);
                seen[axes[i]] = true;
            }
            n_axes = (int)na;
        }
        EM_TRY(ems_read_ints(node, pt, "pads", pads, 2 * EM_MAX_RANK, &n, err));
        if (n != 2 * n_axes)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "pads has %lld values for %d axes",
                            (long long)n, n_axes);
    }
    for (int i = 0; i < r; i++) p->begin[i] = p->end[i] = 0;
    for (int i = 0; i < n_axes; i++) {
        p->begin[axes[i]] = pads[i];
        p->end[axes[i]] = pads[n_axes + i];
    }
    for (int i = 0; i < r; i++) {
        int64_t d = x->dims[i], b = p->begin[i], e = p->end[i];
        const int64_t lim = INT64_C(1) << 56;
        if (b > lim || b < -lim || e > lim || e < -lim)
            return ems_fail(err, EMBER_ERR_LIMIT, node, "pads on axis %d are too large", i);
        if (d < 0) {
            p->out[i] = -1;
            continue;
        }
        p->out[i] = d + b + e;
        /* Negative pads crop the input first; what is left must not be negative. */
        int64_t kept = d - (b < 0 ? -b : 0) - (e < 0 ? -e : 0);
        if (p->out[i] < 0 || kept < 0)
            return ems_fail(err, EMBER_ERR_SHAPE, node,
                            "pads %lld and %lld crop more than axis %d of size %lld", (long long)b,
                            (long long)e, i, (long long)d);
        if (p->mode != PAD_CONSTANT && kept == 0 && p->out[i] > 0)
            return ems_fail(err, EMBER_ERR_SHAPE, node, "cannot pad an empty axis %d in %s mode", i,
                            em_attr_string(node, "mode", "constant"));
    }
    return EMBER_OK;
}

static ember_status pad_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    if (op_version(node) >= 11 && !input_empty(node, in, 2)) {
        const em_tensor *v = in[2];
        if (v->dtype != x->dtype)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "constant_value has type %s, data has %s", em_dtype_name(v->dtype),
                            em_dtype_name(x->dtype));
    }
    if (x->rank < 0) {
        out->dtype = x->dtype;
        out->rank = -1;
        return EMBER_OK;
    }
    pad_plan p;
    bool unknown;
    EM_TRY(pad_make_plan(node, in, &p, &unknown, err));
    if (unknown) {
        set_rank_only(out, x->dtype, x->rank);
        return EMBER_OK;
    }
    em_tensor_set_shape(out, x->dtype, p.out, x->rank);
    return EMBER_OK;
}

/* Input coordinate for output coordinate o on an axis: l kept inputs starting at `first`,
 * `before` padded positions in front of them. */
static int64_t pad_source(int mode, int64_t o, int64_t before, int64_t first, int64_t l) {
    int64_t rel = o - before;
    if (rel >= 0 && rel < l) return first + rel;
    switch (mode) {
    case PAD_EDGE:
        return first + (rel < 0 ? 0 : l - 1);
    case PAD_WRAP: {
        int64_t m = rel % l;
        return first + (m < 0 ? m + l : m);
    }
    case PAD_REFLECT: {
        if (l == 1) return first;
        int64_t period = 2 * (l - 1);
        int64_t m = rel % period;
        if (m < 0) m += period;
        return first + (m < l ? m : period - m);
    }
    default:
        return -1;
    }
}

static ember_status pad_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                            em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int r = x->rank, ver = op_version(node);
    size_t es = em_dtype_size(x->dtype);
    int64_t n_out = em_numel(out);
    if (n_out == 0) return EMBER_OK;
    if (r == 0) {
        memcpy(out->data, x->data, es);
        return EMBER_OK;
    }
    pad_plan p;
    bool unknown;
    EM_TRY(pad_make_plan(node, in, &p, &unknown, err));
    unsigned char fill[8];
    if (ver < 11) {
        fill_value(em_attr_float(node, "value", 0.0f), x->dtype, fill);
    } else if (!input_empty(node, in, 2)) {
        memcpy(fill, in[2]->data, es); /* same dtype as the data (checked in infer) */
    } else {
        memset(fill, 0, sizeof fill);
    }
    int64_t total = 0;
    for (int i = 0; i < r; i++) total += p.out[i];
    void *owned;
    int64_t *buf = ems_scratch(ex, sizeof(int64_t) * (size_t)total, &owned, err);
    if (!buf) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    const int64_t *maps[EM_MAX_RANK];
    int64_t *m = buf;
    for (int i = 0; i < r; i++) {
        int64_t before = p.begin[i] > 0 ? p.begin[i] : 0;
        int64_t first = p.begin[i] < 0 ? -p.begin[i] : 0;
        int64_t l = x->dims[i] - first - (p.end[i] < 0 ? -p.end[i] : 0);
        for (int64_t o = 0; o < p.out[i]; o++) m[o] = pad_source(p.mode, o, before, first, l);
        maps[i] = m;
        m += p.out[i];
    }
    gather_maps(out->data, x, out->dims, maps, fill, ex);
    free(owned);
    return EMBER_OK;
}

/* ============================================================================================
 * Resize, Upsample
 * ========================================================================================== */

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum {
    CT_HALF_PIXEL,
    CT_HALF_PIXEL_SYMMETRIC,
    CT_PYTORCH_HALF_PIXEL,
    CT_ALIGN_CORNERS,
    CT_ASYMMETRIC,
    CT_TF_HALF_PIXEL_FOR_NN,
    CT_TF_CROP_AND_RESIZE,
};
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };
enum { KA_STRETCH, KA_NOT_LARGER, KA_NOT_SMALLER };

typedef struct resize_params {
    bool upsample; /* Upsample op */
    int ver;
    int mode, coord, nearest, keep_aspect;
    double cubic_a;
    bool exclude_outside, antialias;
    double extrapolation;
    int n_axes; /* axes the scales / sizes / roi refer to */
    int axes[EM_MAX_RANK];
} resize_params;

static int find_name(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

static ember_status resize_params_get(const em_node *node, int rank, resize_params *p,
                                      ember_error *err) {
    memset(p, 0, sizeof *p);
    p->upsample = strcmp(node->op_type, "Upsample") == 0;
    p->ver = op_version(node);
    bool v11 = !p->upsample && p->ver >= 11;
    const char *mode = em_attr_string(node, "mode", "nearest");
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    p->mode = find_name(mode, modes, v11 ? 3 : 2);
    if (p->mode < 0 && p->upsample && strcmp(mode, "bilinear") == 0) p->mode = RS_LINEAR;
    if (p->mode < 0) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "unknown mode '%s'", mode);
    /* Upsample and Resize-10 sample at x_out / scale, nearest rounding down (up when
     * shrinking), which is what runtimes and exporters of that era do. */
    p->coord = CT_ASYMMETRIC;
    p->nearest = NM_SIMPLE;
    p->keep_aspect = KA_STRETCH;
    p->cubic_a = -0.75;
    p->n_axes = rank;
    for (int i = 0; i < rank; i++) p->axes[i] = i;
    if (!v11) return EMBER_OK;
    static const char *const coords[] = {
        "half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
        "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
    const char *ct = em_attr_string(node, "coordinate_transformation_mode", "half_pixel");
    p->coord = find_name(ct, coords, 7);
    if (p->coord < 0 || (p->coord == CT_HALF_PIXEL_SYMMETRIC && p->ver < 19) ||
        (p->coord == CT_TF_HALF_PIXEL_FOR_NN && p->ver >= 13))
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "unknown coordinate_transformation_mode '%s'", ct);
    static const char *const nearests[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
                                           "ceil"};
    const char *nm = em_attr_string(node, "nearest_mode", "round_prefer_floor");
    p->nearest = find_name(nm, nearests, 4);
    if (p->nearest < 0)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "unknown nearest_mode '%s'", nm);
    p->cubic_a = em_attr_float(node, "cubic_coeff_a", -0.75f);
    p->exclude_outside = em_attr_int(node, "exclude_outside", 0) != 0;
    p->extrapolation = em_attr_float(node, "extrapolation_value", 0.0f);
    if (p->ver >= 18) {
        p->antialias = em_attr_int(node, "antialias", 0) != 0;
        static const char *const policies[] = {"stretch", "not_larger", "not_smaller"};
        const char *kp = em_attr_string(node, "keep_aspect_ratio_policy", "stretch");
        p->keep_aspect = find_name(kp, policies, 3);
        if (p->keep_aspect < 0)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "unknown keep_aspect_ratio_policy '%s'", kp);
        int64_t n = 0;
        const int64_t *axes = em_attr_ints(node, "axes", &n);
        if (axes) {
            if (n > rank)
                return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                                "axes has %lld values for rank %d", (long long)n, rank);
            bool seen[EM_MAX_RANK] = {false};
            for (int i = 0; i < n; i++) {
                EM_TRY(em_norm_axis(node, axes[i], rank, &p->axes[i], err));
                if (seen[p->axes[i]])
                    return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "axis %d is repeated",
                                    p->axes[i]);
                seen[p->axes[i]] = true;
            }
            p->n_axes = (int)n;
        }
    }
    return EMBER_OK;
}

typedef struct resize_geom {
    int64_t out[EM_MAX_RANK];
    double scale[EM_MAX_RANK];
    double roi_start[EM_MAX_RANK], roi_end[EM_MAX_RANK];
} resize_geom;

/* Output dims, per-axis scales and roi. *unknown when scales/sizes have no data yet. */
static ember_status resize_geometry(const em_node *node, em_tensor *const *in,
                                    const resize_params *p, resize_geom *g, bool *unknown,
                                    ember_error *err) {
    const em_tensor *x = in[0];
    int r = x->rank;
    *unknown = false;
    for (int i = 0; i < r; i++) {
        g->out[i] = x->dims[i];
        g->scale[i] = 1.0;
        g->roi_start[i] = 0.0;
        g->roi_end[i] = 1.0;
    }
    const em_tensor *scales = NULL, *sizes = NULL, *roi = NULL;
    double attr_scales[EM_MAX_RANK];
    bool have_attr_scales = false;
    if (p->upsample && p->ver < 9) {
        int64_t n = 0;
        const float *a = em_attr_floats(node, "scales", &n);
        if (!a)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "attribute 'scales' is missing");
        if (n != r)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "scales has %lld values for rank %d", (long long)n, r);
        for (int i = 0; i < r; i++) attr_scales[i] = a[i];
        have_attr_scales = true;
    } else if (p->upsample || p->ver < 11) {
        scales = input_or_null(node, in, 1);
        if (!scales)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input 'scales' is missing");
    } else {
        roi = input_empty(node, in, 1) ? NULL : in[1];
        scales = input_empty(node, in, 2) ? NULL : in[2];
        sizes = input_empty(node, in, 3) ? NULL : in[3];
        if (scales && sizes)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "only one of scales and sizes may be given");
        if (!scales && !sizes)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "scales or sizes is required");
    }
    if ((scales && !scales->data) || (sizes && !sizes->data) ||
        (roi && !roi->data && p->coord == CT_TF_CROP_AND_RESIZE)) {
        *unknown = true;
        return EMBER_OK;
    }
    int na = p->n_axes;
    if (roi && p->coord == CT_TF_CROP_AND_RESIZE) {
        if (em_numel(roi) != 2 * na)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "roi has %lld values for %d axes",
                            (long long)em_numel(roi), na);
        if (!em_dtype_is_float(roi->dtype)) return em_unsupported_type(node, 1, roi->dtype, err);
        for (int i = 0; i < na; i++) {
            g->roi_start[p->axes[i]] = em_get_f64(roi, i);
            g->roi_end[p->axes[i]] = em_get_f64(roi, na + i);
        }
    }
    if (sizes) {
        if (sizes->dtype != EMBER_INT64)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "sizes must be int64");
        if (em_numel(sizes) != na)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "sizes has %lld values for %d axes",
                            (long long)em_numel(sizes), na);
        for (int i = 0; i < na; i++) {
            int a = p->axes[i];
            int64_t s = em_get_i64(sizes, i);
            if (s < 0 || s > (INT64_C(1) << 40))
                return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "sizes[%d] is %lld", i,
                                (long long)s);
            g->out[a] = s;
            if (x->dims[a] < 0) continue;
            if (x->dims[a] == 0) {
                if (s != 0)
                    return ems_fail(err, EMBER_ERR_SHAPE, node,
                                    "cannot resize the empty axis %d to %lld", a, (long long)s);
                continue;
            }
            g->scale[a] = (double)s / (double)x->dims[a];
        }
        if (p->keep_aspect != KA_STRETCH) {
            double s = p->keep_aspect == KA_NOT_LARGER ? INFINITY : 0.0;
            for (int i = 0; i < na; i++) {
                double si = g->scale[p->axes[i]];
                s = p->keep_aspect == KA_NOT_LARGER ? fmin(s, si) : fmax(s, si);
            }
            for (int i = 0; i < na; i++) {
                int a = p->axes[i];
                g->scale[a] = s;
                if (x->dims[a] >= 0) g->out[a] = (int64_t)(s * (double)x->dims[a] + 0.5);
            }
        }
        return EMBER_OK;
    }
    if (scales && em_numel(scales) != na)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "scales has %lld values for %d axes",
                        (long long)em_numel(scales), na);
    if (scales && !em_dtype_is_float(scales->dtype))
        return em_unsupported_type(node, p->ver >= 11 && !p->upsample ? 2 : 1, scales->dtype, err);
    for (int i = 0; i < na; i++) {
        int a = p->axes[i];
        double s = have_attr_scales ? attr_scales[i] : em_get_f64(scales, i);
        if (!(s > 0) || s > 1e9)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "scale %g for axis %d is invalid",
                            s, a);
        g->scale[a] = s;
        if (x->dims[a] < 0) {
            g->out[a] = -1;
            continue;
        }
        double o = floor(s * (double)x->dims[a]);
        if (o > (double)(INT64_C(1) << 40))
            return ems_fail(err, EMBER_ERR_LIMIT, node, "output is too large");
        g->out[a] = (int64_t)o;
    }
    return EMBER_OK;
}

static ember_status resize_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    if (x->rank < 0) {
        out->dtype = x->dtype;
        out->rank = -1;
        return EMBER_OK;
    }
    if (x->rank == 0)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input must have rank >= 1");
    resize_params p;
    EM_TRY(resize_params_get(node, x->rank, &p, err));
    if (p.mode == RS_NEAREST)
        EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    else if (x->dtype != EMBER_FLOAT)
        return ems_fail(err, EMBER_ERR_UNSUPPORTED, node,
                        "%s interpolation is implemented for float32 only, not %s",
                        em_attr_string(node, "mode", "nearest"), em_dtype_name(x->dtype));
    resize_geom g;
    bool unknown;
    EM_TRY(resize_geometry(node, in, &p, &g, &unknown, err));
    if (unknown) {
        set_rank_only(out, x->dtype, x->rank);
        return EMBER_OK;
    }
    if (em_shape_numel(g.out, x->rank) < 0 && ems_shape_known(x))
        return ems_fail(err, EMBER_ERR_LIMIT, node, "output is too large");
    em_tensor_set_shape(out, x->dtype, g.out, x->rank);
    return EMBER_OK;
}

/* Input coordinate of output coordinate o (the spec's coordinate_transformation_mode). The
 * "resized length" is scale * in as a real number, like the reference implementation. */
static double resize_coord(const resize_params *p, const resize_geom *g, int a, int64_t in_len,
                           int64_t o) {
    double s = g->scale[a], x = (double)o, len = s * (double)in_len, n = (double)in_len;
    switch (p->coord) {
    case CT_HALF_PIXEL:
        return (x + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYMMETRIC: {
        double adjust = (double)g->out[a] / len;
        double offset = n / 2 * (1 - adjust);
        return offset + (x + 0.5) / s - 0.5;
    }
    case CT_PYTORCH_HALF_PIXEL:
        return g->out[a] > 1 ? (x + 0.5) / s - 0.5 : 0.0;
    case CT_ALIGN_CORNERS:
        return len == 1 ? 0.0 : x * (n - 1) / (len - 1);
    case CT_TF_HALF_PIXEL_FOR_NN:
        return (x + 0.5) / s;
    case CT_TF_CROP_AND_RESIZE: {
        double rs = g->roi_start[a], re = g->roi_end[a];
        if (len == 1) return (re - rs) * (n - 1) / 2 + rs * (n - 1);
        return x * (re - rs) * (n - 1) / (len - 1) + rs * (n - 1);
    }
    default:
        return x / s; /* asymmetric */
    }
}

static int64_t nearest_index(const resize_params *p, double x, double scale) {
    double f = floor(x), ratio = x - f;
    if (ratio == 0) return (int64_t)f;
    switch (p->nearest) {
    case NM_ROUND_PREFER_FLOOR:
        return (int64_t)(ratio <= 0.5 ? f : f + 1);
    case NM_ROUND_PREFER_CEIL:
        return (int64_t)(ratio < 0.5 ? f : f + 1);
    case NM_FLOOR:
        return (int64_t)f;
    case NM_CEIL:
        return (int64_t)f + 1;
    default:
        return (int64_t)(scale < 1 ? f + 1 : f); /* NM_SIMPLE */
    }
}

static double cubic_weight(double x, double a) {
    x = fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

/* Interpolation taps of one axis: for output o, inputs idx[o*taps + t] with weights w[...];
 * extrap[o] marks tf_crop_and_resize outputs outside the input (value = extrapolation). */
typedef struct axis_taps {
    int64_t in, out;
    int taps;
    int64_t *idx;
    float *w;
    uint8_t *extrap;
    bool any_extrap;
    bool identity;
} axis_taps;

#define EPR_MAX_TAPS 1024

/* Taps per output for linear/cubic, widened by antialiasing when shrinking. */
static int taps_per_output(const resize_params *p, double scale, int64_t *first) {
    double s = p->antialias && scale < 1 ? scale : 1.0;
    double support = p->mode == RS_CUBIC ? 2.0 : 1.0;
    int64_t start = (int64_t)floor(-support / s) + 1;
    *first = start;
    return (int)(2 - 2 * start);
}

static void build_taps(const resize_params *p, const resize_geom *g, int a, axis_taps *t) {
    int64_t in = t->in, first = 0;
    double scale = g->scale[a];
    double s = p->antialias && scale < 1 ? scale : 1.0;
    t->identity = t->in == t->out;
    t->any_extrap = false;
    if (p->mode != RS_NEAREST) (void)taps_per_output(p, scale, &first);
    for (int64_t o = 0; o < t->out; o++) {
        double x = resize_coord(p, g, a, in, o);
        int64_t *idx = t->idx + o * t->taps;
        float *w = t->w + o * t->taps;
        t->extrap[o] = p->coord == CT_TF_CROP_AND_RESIZE && (x < 0 || x > (double)(in - 1));
        if (t->extrap[o]) {
            t->identity = false;
            t->any_extrap = true;
            for (int k = 0; k < t->taps; k++) {
                idx[k] = 0;
                w[k] = 0;
            }
            continue;
        }
        double f = floor(x), ratio = x - f;
        double wd[EPR_MAX_TAPS];
        if (p->mode == RS_LINEAR || p->mode == RS_CUBIC) {
            double sum = 0;
            for (int k = 0; k < t->taps; k++) {
                double d = (double)(first + k) - ratio;
                wd[k] = p->mode == RS_CUBIC ? cubic_weight(s * d, p->cubic_a)
                                            : fmax(0.0, 1.0 - fabs(s * d));
                idx[k] = (int64_t)f + first + k;
                sum += wd[k];
            }
            if (s < 1 && sum != 0) /* antialias filters are normalized */
                for (int k = 0; k < t->taps; k++) wd[k] /= sum;
        } else {
            idx[0] = nearest_index(p, x, scale);
            wd[0] = 1;
        }
        if (p->exclude_outside) {
            double sum = 0;
            for (int k = 0; k < t->taps; k++) {
                if (idx[k] < 0 || idx[k] >= in) wd[k] = 0;
                sum += wd[k];
            }
            if (sum != 0)
                for (int k = 0; k < t->taps; k++) wd[k] /= sum;
        }
        for (int k = 0; k < t->taps; k++) {
            idx[k] = idx[k] < 0 ? 0 : idx[k] >= in ? in - 1 : idx[k];
            w[k] = (float)wd[k];
            if ((idx[k] == o && w[k] != 1.0f) || (idx[k] != o && w[k] != 0.0f)) t->identity = false;
        }
    }
}

typedef struct pass_ctx {
    const float *src;
    float *dst;
    int64_t in, out, inner;
    const axis_taps *t;
    float extrap;
} pass_ctx;

/* One output of the last axis (inner == 1): a dot product of `taps` gathered inputs. */
#define EPR_DOT_LOOP(TAPS)                                                                         \
    for (int64_t o = o0; o < o1; o++) {                                                            \
        const int64_t *ix = idx + o * (TAPS);                                                      \
        const float *wo = w + o * (TAPS);                                                          \
        float acc = wo[0] * s[ix[0]];                                                              \
        for (int k = 1; k < (TAPS); k++) acc += wo[k] * s[ix[k]];                                  \
        d[o] = acc;                                                                                \
    }

/* Rows [begin, end) of outer * out; each row is `inner` floats. */
static void pass_range(void *vctx, int64_t begin, int64_t end) {
    const pass_ctx *c = vctx;
    const axis_taps *t = c->t;
    const int taps = t->taps;
    const int64_t *idx = t->idx;
    const float *w = t->w;
    if (c->inner == 1) {
        /* The interpolated axis is the contiguous one: gather along each row. */
        for (int64_t r = begin; r < end;) {
            int64_t outer = r / c->out, o0 = r % c->out;
            int64_t o1 = o0 + (end - r) < c->out ? o0 + (end - r) : c->out;
            const float *restrict s = c->src + outer * c->in;
            float *restrict d = c->dst + outer * c->out;
            switch (taps) {
            case 2:
                EPR_DOT_LOOP(2);
                break;
            case 4:
                EPR_DOT_LOOP(4);
                break;
            default:
                EPR_DOT_LOOP(taps);
                break;
            }
            if (t->any_extrap)
                for (int64_t o = o0; o < o1; o++)
                    if (t->extrap[o]) d[o] = c->extrap;
            r += o1 - o0;
        }
        return;
    }
    int64_t outer = begin / c->out, o = begin % c->out, n = c->inner;
    for (int64_t r = begin; r < end; r++) {
        const float *src = c->src + outer * c->in * n;
        float *restrict d = c->dst + r * n;
        const int64_t *ix = idx + o * taps;
        const float *wo = w + o * taps;
        if (t->extrap[o]) {
            for (int64_t j = 0; j < n; j++) d[j] = c->extrap;
        } else if (taps == 2) {
            const float *restrict s0 = src + ix[0] * n, *restrict s1 = src + ix[1] * n;
            const float w0 = wo[0], w1 = wo[1];
            for (int64_t j = 0; j < n; j++) d[j] = w0 * s0[j] + w1 * s1[j];
        } else if (taps == 4) {
            const float *restrict s0 = src + ix[0] * n, *restrict s1 = src + ix[1] * n;
            const float *restrict s2 = src + ix[2] * n, *restrict s3 = src + ix[3] * n;
            const float w0 = wo[0], w1 = wo[1], w2 = wo[2], w3 = wo[3];
            for (int64_t j = 0; j < n; j++)
                d[j] = w0 * s0[j] + w1 * s1[j] + w2 * s2[j] + w3 * s3[j];
        } else {
            const float *restrict s0 = src + ix[0] * n;
            const float w0 = wo[0];
            for (int64_t j = 0; j < n; j++) d[j] = w0 * s0[j];
            for (int k = 1; k < taps; k++) {
                if (wo[k] == 0) continue;
                const float *restrict sk = src + ix[k] * n;
                const float wk = wo[k];
                for (int64_t j = 0; j < n; j++) d[j] += wk * sk[j];
            }
        }
        if (++o == c->out) {
            o = 0;
            outer++;
        }
    }
}

static size_t round8(int64_t n) {
    return ((size_t)n + 7) / 8 * 8;
}

static ember_status resize_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int r = x->rank;
    if (em_numel(out) == 0) return EMBER_OK;
    if (em_numel(x) == 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "cannot resize an empty input");
    resize_params p;
    resize_geom g;
    bool unknown;
    EM_TRY(resize_params_get(node, r, &p, err));
    EM_TRY(resize_geometry(node, in, &p, &g, &unknown, err));
    /* Tap tables for every axis, then ping-pong buffers for the separable passes. */
    axis_taps t[EM_MAX_RANK];
    size_t bytes = 0;
    for (int a = 0; a < r; a++) {
        int64_t first;
        t[a].in = x->dims[a];
        t[a].out = g.out[a];
        t[a].taps = p.mode == RS_NEAREST ? 1 : taps_per_output(&p, g.scale[a], &first);
        if (t[a].taps > EPR_MAX_TAPS)
            return ems_fail(err, EMBER_ERR_UNSUPPORTED, node,
                            "antialiasing a %g-fold reduction is not supported", 1 / g.scale[a]);
        bytes += (size_t)(t[a].out * t[a].taps) * (sizeof(int64_t) + sizeof(float)) +
                 round8(t[a].out) + 8;
    }
    /* Largest intermediate: apply passes in order, track the biggest tensor. */
    int order[EM_MAX_RANK], n_pass = 0;
    int64_t cur[EM_MAX_RANK], biggest = 0;
    memcpy(cur, x->dims, sizeof(int64_t) * (size_t)r);
    if (p.mode != RS_NEAREST) {
        /* Shrinking axes first (less data for the rest), innermost first within each group. */
        for (int pass = 0; pass < 2; pass++)
            for (int a = r - 1; a >= 0; a--)
                if ((pass == 0) == (g.out[a] < x->dims[a])) order[n_pass++] = a;
        for (int k = 0; k < n_pass; k++) {
            cur[order[k]] = g.out[order[k]];
            int64_t n = em_shape_numel(cur, r);
            if (n > biggest) biggest = n;
        }
        bytes += 2 * (size_t)biggest * sizeof(float) + 128;
    }
    void *owned;
    char *mem = ems_scratch(ex, bytes, &owned, err);
    if (!mem) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    char *m = mem;
    for (int a = 0; a < r; a++) {
        t[a].idx = (int64_t *)m;
        m += (size_t)(t[a].out * t[a].taps) * sizeof(int64_t);
        t[a].w = (float *)m;
        m += (size_t)(t[a].out * t[a].taps) * sizeof(float);
        m = (char *)(((uintptr_t)m + 7) & ~(uintptr_t)7);
        t[a].extrap = (uint8_t *)m;
        m += round8(t[a].out);
        build_taps(&p, &g, a, &t[a]);
    }
    if (p.mode == RS_NEAREST) {
        const int64_t *maps[EM_MAX_RANK];
        for (int a = 0; a < r; a++) {
            for (int64_t o = 0; o < t[a].out; o++)
                if (t[a].extrap[o]) t[a].idx[o] = -1;
            maps[a] = t[a].idx;
        }
        unsigned char fill[8];
        fill_value(p.extrapolation, x->dtype, fill);
        gather_maps(out->data, x, out->dims, maps, fill, ex);
        free(owned);
        return EMBER_OK;
    }
    float *buf[2];
    m = (char *)(((uintptr_t)m + 63) & ~(uintptr_t)63);
    buf[0] = (float *)m;
    buf[1] = buf[0] + biggest;
    /* Skip passes that would copy the data unchanged. */
    int k_out = 0;
    for (int k = 0; k < n_pass; k++)
        if (!t[order[k]].identity) order[k_out++] = order[k];
    n_pass = k_out;
    if (n_pass == 0) {
        memcpy(out->data, x->data, em_nbytes(x));
        free(owned);
        return EMBER_OK;
    }
    memcpy(cur, x->dims, sizeof(int64_t) * (size_t)r);
    const float *src = x->data;
    for (int k = 0; k < n_pass; k++) {
        int a = order[k];
        float *dst = k == n_pass - 1 ? (float *)out->data : buf[k & 1];
        pass_ctx c = {.src = src,
                      .dst = dst,
                      .in = cur[a],
                      .out = g.out[a],
                      .t = &t[a],
                      .extrap = (float)p.extrapolation};
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= cur[i];
        for (int i = a + 1; i < r; i++) inner *= cur[i];
        c.inner = inner;
        ems_parallel(ex, outer * c.out, ems_grain(inner * t[a].taps * 8), pass_range, &c);
        cur[a] = g.out[a];
        src = dst;
    }
    free(owned);
    return EMBER_OK;
}

static const em_op k_pad_resize_ops[] = {
    {"", "Pad", 1, 21, NULL, pad_infer, pad_run, NULL, 0},
    {"", "Resize", 10, 19, NULL, resize_infer, resize_run, NULL, 0},
    {"", "Upsample", 7, 9, NULL, resize_infer, resize_run, NULL, 0},
};

EM_OPS_FAMILY(pad_resize) {
    *count = sizeof k_pad_resize_ops / sizeof k_pad_resize_ops[0];
    return k_pad_resize_ops;
}
