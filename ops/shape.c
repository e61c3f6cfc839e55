/* Shape and data-movement operators.
 *
 * Views (zero copy, EM_OP_ALIAS_INPUT0): Reshape, Flatten, Squeeze, Unsqueeze, Identity.
 * Copies by element size, whatever the dtype: Transpose, Concat, Split, Slice, Expand, Tile,
 * DepthToSpace, SpaceToDepth, Trilu. Value producers: Shape, Size, Cast, CastLike,
 * ConstantOfShape, Range, EyeLike.
 *
 * Every copy goes through two primitives: ems_copy_strided (a gather with arbitrary per-axis
 * strides whose inner loop is a memcpy, a fill or a strided loop) and ems_transpose (the same,
 * plus a tiled 2-D path when the innermost output axis is not the innermost input axis). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "shape_util.h"
#include "string_ops.h"

/* Integer views of element bytes that may alias any type (moving float data as uint32_t). */
typedef uint8_t ems_u8 __attribute__((may_alias));
typedef uint16_t ems_u16 __attribute__((may_alias));
typedef uint32_t ems_u32 __attribute__((may_alias));
typedef uint64_t ems_u64 __attribute__((may_alias));

/* ============================================================================================
 * Shared helpers
 * ========================================================================================== */

ember_status ems_fail(ember_error *err, ember_status code, const em_node *node, const char *fmt,
                      ...) {
    char desc[256], msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return em_fail(err, code, "%s: %s", em_node_desc(node, desc, sizeof desc), msg);
}

bool ems_shape_known(const em_tensor *t) {
    if (t->rank < 0) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dims[i] < 0) return false;
    return true;
}

ember_status ems_movable_type(const em_node *node, int input, ember_dtype dt, ember_error *err) {
    size_t es = em_dtype_size(dt);
    if (dt == EMBER_STRING || (es != 1 && es != 2 && es != 4 && es != 8))
        return em_unsupported_type(node, input, dt, err);
    return EMBER_OK;
}

void ems_parallel(em_exec *ex, int64_t n, int64_t grain, em_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (ex == NULL || n <= grain || em_exec_threads(ex) <= 1) {
        fn(ctx, 0, n);
        return;
    }
    em_parallel_for(ex, n, grain, fn, ctx);
}

int64_t ems_grain(int64_t bytes_per_item) {
    const int64_t target = 32 * 1024;
    if (bytes_per_item <= 0) return target;
    int64_t g = target / bytes_per_item;
    return g < 1 ? 1 : g;
}

void ems_fill(void *dst, const void *value, int64_t n, size_t esize) {
    switch (esize) {
    case 1:
        memset(dst, *(const ems_u8 *)value, (size_t)n);
        break;
    case 2: {
        ems_u16 v = *(const ems_u16 *)value, *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    case 4: {
        ems_u32 v = *(const ems_u32 *)value, *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    case 8: {
        ems_u64 v = *(const ems_u64 *)value, *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = v;
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++) memcpy((char *)dst + (size_t)i * esize, value, esize);
    }
}

void *ems_scratch(em_exec *ex, size_t bytes, void **owned, ember_error *err) {
    *owned = NULL;
    if (ex) return em_exec_scratch(ex, bytes, err);
    *owned = malloc(bytes ? bytes : 1);
    if (!*owned) em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", bytes);
    return *owned;
}

ember_status ems_read_ints(const em_node *node, const em_tensor *t, const char *what, int64_t *vals,
                           int64_t max, int64_t *n, ember_error *err) {
    if (t->dtype != EMBER_INT64 && t->dtype != EMBER_INT32)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "%s must be int32 or int64, not %s",
                        what, em_dtype_name(t->dtype));
    if (t->rank > 1)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "%s must be 1-D, got rank %d", what,
                        t->rank);
    int64_t count = em_numel(t);
    if (count < 0 || count > max)
        return ems_fail(err, EMBER_ERR_UNSUPPORTED, node,
                        "%s has %lld values, at most %lld "
                        "are supported",
                        what, (long long)count, (long long)max);
    for (int64_t i = 0; i < count; i++) vals[i] = em_get_i64(t, i);
    *n = count;
    return EMBER_OK;
}

/* Same as ems_read_ints for a node whose list may come from an attribute instead. */
static ember_status attr_ints(const em_node *node, const char *name, int64_t *vals, int64_t max,
                              int64_t *n, bool *present, ember_error *err) {
    int64_t count = 0;
    const int64_t *a = em_attr_ints(node, name, &count);
    *present = em_node_attr(node, name) != NULL;
    if (count > max)
        return ems_fail(err, EMBER_ERR_UNSUPPORTED, node,
                        "attribute '%s' has %lld values, at "
                        "most %lld are supported",
                        name, (long long)count, (long long)max);
    if (count) memcpy(vals, a, sizeof *vals * (size_t)count);
    *n = count;
    return EMBER_OK;
}

static int op_version(const em_node *node) {
    int v = em_onnx_op_version(node->op_type, node->opset);
    return v > 0 ? v : node->opset;
}

static const em_tensor *input_or_null(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_explicit_inputs ? in[i] : NULL;
}

/* An optional input that is absent or has zero elements (ONNX "empty" placeholder). */
static bool input_empty(const em_node *node, em_tensor *const *in, int i) {
    const em_tensor *t = input_or_null(node, in, i);
    return t == NULL || (t->rank >= 0 && em_numel(t) == 0);
}

static void set_unknown(em_tensor *out, ember_dtype dt) {
    out->dtype = dt;
    out->rank = -1;
}

/* Shape with every dim unknown. */
static void set_rank_only(em_tensor *out, ember_dtype dt, int rank) {
    out->dtype = dt;
    out->rank = rank;
    for (int i = 0; i < rank; i++) out->dims[i] = -1;
}

/* Product of dims[b..e), -1 if one is unknown, -2 on overflow. */
static int64_t dims_product(const int64_t *dims, int b, int e) {
    int64_t p = 1;
    bool unknown = false;
    for (int i = b; i < e; i++) {
        if (dims[i] < 0) {
            unknown = true;
            continue;
        }
        if (dims[i] != 0 && p > INT64_MAX / dims[i]) return -2;
        p *= dims[i];
    }
    if (unknown) return p == 0 ? 0 : -1;
    return p;
}

/* ---- strided copy ---- */

typedef struct strided_ctx {
    char *dst;
    const char *src;
    int rank; /* outer axes (the inner one excluded) */
    int64_t dims[EMS_LOOP_RANK];
    int64_t strides[EMS_LOOP_RANK]; /* bytes */
    int64_t inner_n;
    int64_t inner_stride; /* elements */
    size_t esize;
} strided_ctx;

#define EMS_GATHER(T)                                                                              \
    do {                                                                                           \
        T *restrict d_ = (T *)dst;                                                                 \
        const T *restrict s_ = (const T *)src;                                                     \
        for (int64_t i_ = 0; i_ < n; i_++) d_[i_] = s_[i_ * stride];                               \
    } while (0)

static void copy_row(char *dst, const char *src, int64_t n, int64_t stride, size_t esize) {
    if (stride == 1) {
        memcpy(dst, src, (size_t)n * esize);
        return;
    }
    if (stride == 0) {
        ems_fill(dst, src, n, esize);
        return;
    }
    switch (esize) {
    case 1:
        EMS_GATHER(ems_u8);
        break;
    case 2:
        EMS_GATHER(ems_u16);
        break;
    case 4:
        EMS_GATHER(ems_u32);
        break;
    case 8:
        EMS_GATHER(ems_u64);
        break;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(dst + (size_t)i * esize, src + i * stride * (int64_t)esize, esize);
    }
}

static void strided_range(void *vctx, int64_t begin, int64_t end) {
    const strided_ctx *c = vctx;
    int64_t idx[EMS_LOOP_RANK];
    int64_t rem = begin, off = 0;
    for (int k = c->rank - 1; k >= 0; k--) {
        idx[k] = rem % c->dims[k];
        rem /= c->dims[k];
        off += idx[k] * c->strides[k];
    }
    size_t row_bytes = (size_t)c->inner_n * c->esize;
    char *d = c->dst + (size_t)begin * row_bytes;
    for (int64_t r = begin; r < end; r++) {
        copy_row(d, c->src + off, c->inner_n, c->inner_stride, c->esize);
        d += row_bytes;
        for (int k = c->rank - 1; k >= 0; k--) {
            off += c->strides[k];
            if (++idx[k] < c->dims[k]) break;
            off -= c->strides[k] * c->dims[k];
            idx[k] = 0;
        }
    }
}

void ems_copy_strided(void *dst, const void *src, const int64_t *dims, const int64_t *src_strides,
                      int rank, size_t esize, em_exec *ex) {
    int64_t d[EMS_LOOP_RANK], s[EMS_LOOP_RANK];
    int r = 0;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0) return;
        if (dims[i] == 1) continue;
        /* Merge into the previous (outer) axis when together they walk memory as one. */
        if (r > 0 && s[r - 1] == src_strides[i] * dims[i]) {
            d[r - 1] *= dims[i];
            s[r - 1] = src_strides[i];
            continue;
        }
        d[r] = dims[i];
        s[r] = src_strides[i];
        r++;
    }
    if (r == 0) {
        memcpy(dst, src, esize);
        return;
    }
    strided_ctx c = {.dst = dst,
                     .src = src,
                     .rank = r - 1,
                     .inner_n = d[r - 1],
                     .inner_stride = s[r - 1],
                     .esize = esize};
    int64_t rows = 1;
    for (int i = 0; i < r - 1; i++) {
        c.dims[i] = d[i];
        c.strides[i] = s[i] * (int64_t)esize;
        rows *= d[i];
    }
    ems_parallel(ex, rows, ems_grain(c.inner_n * (int64_t)esize), strided_range, &c);
}

/* ---- transpose ---- */

#define EMS_TILE 16

typedef struct tile_ctx {
    char *dst;
    const char *src;
    size_t esize;
    int n_outer;
    int64_t outer_dims[EMS_LOOP_RANK];
    int64_t outer_src[EMS_LOOP_RANK]; /* element strides */
    int64_t outer_dst[EMS_LOOP_RANK];
    int64_t ni, nj;  /* i: input-contiguous axis, j: output-contiguous axis */
    int64_t src_j;   /* src stride of j (i has src stride 1) */
    int64_t dst_i;   /* dst stride of i (j has dst stride 1) */
    int64_t stripes; /* ceil(ni / EMS_TILE) */
} tile_ctx;

#define EMS_TILE_LOOP(T)                                                                           \
    do {                                                                                           \
        T *restrict d_ = (T *)dbase;                                                               \
        const T *restrict s_ = (const T *)sbase;                                                   \
        for (int64_t j0 = 0; j0 < c->nj; j0 += EMS_TILE) {                                         \
            int64_t j1 = j0 + EMS_TILE < c->nj ? j0 + EMS_TILE : c->nj;                            \
            for (int64_t i = i0; i < i1; i++) {                                                    \
                T *restrict dr = d_ + i * c->dst_i;                                                \
                const T *restrict sr = s_ + i;                                                     \
                for (int64_t j = j0; j < j1; j++) dr[j] = sr[j * c->src_j];                        \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static void tile_range(void *vctx, int64_t begin, int64_t end) {
    const tile_ctx *c = vctx;
    for (int64_t item = begin; item < end; item++) {
        int64_t outer = item / c->stripes, stripe = item % c->stripes;
        int64_t soff = 0, doff = 0, rem = outer;
        for (int k = c->n_outer - 1; k >= 0; k--) {
            int64_t ik = rem % c->outer_dims[k];
            rem /= c->outer_dims[k];
            soff += ik * c->outer_src[k];
            doff += ik * c->outer_dst[k];
        }
        int64_t i0 = stripe * EMS_TILE;
        int64_t i1 = i0 + EMS_TILE < c->ni ? i0 + EMS_TILE : c->ni;
        const char *sbase = c->src + soff * (int64_t)c->esize;
        char *dbase = c->dst + doff * (int64_t)c->esize;
        switch (c->esize) {
        case 1:
            EMS_TILE_LOOP(ems_u8);
            break;
        case 2:
            EMS_TILE_LOOP(ems_u16);
            break;
        case 4:
            EMS_TILE_LOOP(ems_u32);
            break;
        default:
            EMS_TILE_LOOP(ems_u64);
            break;
        }
    }
}

void ems_transpose(void *dst, const void *src, const int64_t *dims, const int *perm, int rank,
                   size_t esize, em_exec *ex) {
    if (dims_product(dims, 0, rank) == 0) return;
    /* 1. Drop unit axes, renumbering the rest. */
    int newid[EMS_LOOP_RANK];
    int64_t d1[EMS_LOOP_RANK];
    int r1 = 0;
    for (int i = 0; i < rank; i++) {
        newid[i] = dims[i] == 1 ? -1 : r1;
        if (dims[i] != 1) d1[r1++] = dims[i];
    }
    int p1[EMS_LOOP_RANK], np1 = 0;
    for (int k = 0; k < rank; k++)
        if (newid[perm[k]] >= 0) p1[np1++] = newid[perm[k]];
    /* 2. Merge runs of input axes that stay adjacent and in order in the output. */
    int group_of[EMS_LOOP_RANK] = {0}; /* input axis -> group (in input order) */
    bool starts[EMS_LOOP_RANK] = {false};
    for (int k = 0; k < np1; k++)
        if (k == 0 || p1[k] != p1[k - 1] + 1) starts[p1[k]] = true;
    int r = 0;
    int64_t d[EMS_LOOP_RANK];
    for (int i = 0; i < r1; i++) {
        if (starts[i] || i == 0) {
            d[r] = 1;
            r++;
        }
        group_of[i] = r - 1;
        d[r - 1] *= d1[i];
    }
    int p[EMS_LOOP_RANK], np = 0;
    for (int k = 0; k < np1; k++)
        if (starts[p1[k]]) p[np++] = group_of[p1[k]];
    if (r <= 1) {
        memcpy(dst, src, (size_t)dims_product(dims, 0, rank) * esize);
        return;
    }
    int64_t st[EMS_LOOP_RANK];
    em_strides(d, r, st);
    int64_t od[EMS_LOOP_RANK], os[EMS_LOOP_RANK];
    for (int k = 0; k < r; k++) {
        od[k] = d[p[k]];
        os[k] = st[p[k]];
    }
    if (p[r - 1] == r - 1) { /* inner rows stay contiguous */
        ems_copy_strided(dst, src, od, os, r, esize, ex);
        return;
    }
    int64_t dstr[EMS_LOOP_RANK];
    em_strides(od, r, dstr);
    tile_ctx c = {.dst = dst, .src = src, .esize = esize};
    int pi = 0;
    for (int k = 0; k < r; k++)
        if (p[k] == r - 1) pi = k;
    c.ni = od[pi];
    c.dst_i = dstr[pi];
    c.nj = od[r - 1];
    c.src_j = os[r - 1];
    int64_t outer = 1;
    for (int k = 0; k < r - 1; k++) {
        if (k == pi) continue;
        c.outer_dims[c.n_outer] = od[k];
        c.outer_src[c.n_outer] = os[k];
        c.outer_dst[c.n_outer] = dstr[k];
        c.n_outer++;
        outer *= od[k];
    }
    c.stripes = (c.ni + EMS_TILE - 1) / EMS_TILE;
    ems_parallel(ex, outer * c.stripes, ems_grain(EMS_TILE * c.nj * (int64_t)esize), tile_range,
                 &c);
}

/* ============================================================================================
 * Views: Reshape, Flatten, Squeeze, Unsqueeze, Identity
 * ========================================================================================== */

static ember_status reshape_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int ver = op_version(node);
    int64_t shape[EM_MAX_RANK + 1], n = 0;
    if (ver < 5) {
        bool present;
        EM_TRY(attr_ints(node, "shape", shape, EM_MAX_RANK, &n, &present, err));
        if (!present)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "attribute 'shape' is missing");
    } else {
        const em_tensor *s = input_or_null(node, in, 1);
        if (!s) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input 'shape' is missing");
        if (!s->data) {
            if (s->rank == 1 && s->dims[0] >= 0 && s->dims[0] <= EM_MAX_RANK)
                set_rank_only(out, x->dtype, (int)s->dims[0]);
            else
                set_unknown(out, x->dtype);
            return EMBER_OK;
        }
        EM_TRY(ems_read_ints(node, s, "shape", shape, EM_MAX_RANK, &n, err));
    }
    bool allowzero = ver >= 14 && em_attr_int(node, "allowzero", 0) != 0;
    int64_t dims[EM_MAX_RANK];
    int infer_at = -1;
    bool unknown = x->rank < 0;
    for (int i = 0; i < n; i++) {
        int64_t v = shape[i];
        if (v == -1) {
            if (infer_at >= 0)
                return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "shape has more than one -1");
            infer_at = i;
            dims[i] = 1;
        } else if (v == 0 && !allowzero) {
            if (x->rank >= 0 && i >= x->rank)
                return ems_fail(err, EMBER_ERR_SHAPE, node,
                                "shape[%d] is 0 (copy) but the input has rank %d", i, x->rank);
            dims[i] = x->rank >= 0 ? x->dims[i] : -1;
        } else if (v < -1) {
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "shape[%d] is %lld", i,
                            (long long)v);
        } else {
            dims[i] = v;
        }
    }
    int64_t known = dims_product(dims, 0, (int)n);
    int64_t total = x->rank >= 0 ? dims_product(x->dims, 0, x->rank) : -1;
    if (known == -2 || total == -2)
        return ems_fail(err, EMBER_ERR_LIMIT, node, "shape is too large");
    if (infer_at >= 0) {
        if (known == 0)
            return ems_fail(err, EMBER_ERR_SHAPE, node,
                            "cannot infer the -1 dim: the other dims multiply to 0");
        if (known < 0 || total < 0 || unknown) {
            dims[infer_at] = -1;
        } else {
            if (total % known != 0)
                return ems_fail(err, EMBER_ERR_SHAPE, node,
                                "cannot reshape %lld elements into a multiple of %lld",
                                (long long)total, (long long)known);
            dims[infer_at] = total / known;
        }
    } else if (known >= 0 && total >= 0 && known != total) {
        char a[128];
        return ems_fail(err, EMBER_ERR_SHAPE, node, "cannot reshape %s into %lld elements",
                        em_shape_str(x, a, sizeof a), (long long)known);
    }
    em_tensor_set_shape(out, x->dtype, dims, (int)n);
    return EMBER_OK;
}

static ember_status flatten_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int64_t axis = em_attr_int(node, "axis", 1);
    if (x->rank < 0) {
        set_rank_only(out, x->dtype, 2);
        return EMBER_OK;
    }
    int r = x->rank;
    if (axis < 0 && op_version(node) >= 11) axis += r;
    if (axis < 0 || axis > r)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "axis %lld is out of range for rank %d",
                        (long long)em_attr_int(node, "axis", 1), r);
    int64_t a = dims_product(x->dims, 0, (int)axis), b = dims_product(x->dims, (int)axis, r);
    if (a == -2 || b == -2) return ems_fail(err, EMBER_ERR_LIMIT, node, "shape is too large");
    int64_t dims[2] = {a, b};
    em_tensor_set_shape(out, x->dtype, dims, 2);
    return EMBER_OK;
}

/* The axes list of Squeeze / Unsqueeze: attribute before opset 13, input from 13.
 * *have = false when none was given; *values_unknown when the input's data is not known. */
static ember_status squeeze_axes(const em_node *node, em_tensor *const *in, int64_t *axes,
                                 int64_t *n, bool *have, bool *values_unknown, ember_error *err) {
    *values_unknown = false;
    *n = 0;
    if (op_version(node) < 13) {
        return attr_ints(node, "axes", axes, EMS_LOOP_RANK, n, have, err);
    }
    const em_tensor *a = input_or_null(node, in, 1);
    *have = a != NULL;
    if (!a) return EMBER_OK;
    if (!a->data) {
        *values_unknown = true;
        *n = a->rank == 1 ? a->dims[0] : -1;
        return EMBER_OK;
    }
    return ems_read_ints(node, a, "axes", axes, EMS_LOOP_RANK, n, err);
}

static ember_status squeeze_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int64_t axes[EMS_LOOP_RANK], n;
    bool have, unknown_values;
    EM_TRY(squeeze_axes(node, in, axes, &n, &have, &unknown_values, err));
    if (x->rank < 0) {
        set_unknown(out, x->dtype);
        return EMBER_OK;
    }
    int r = x->rank;
    if (unknown_values) {
        if (n >= 0 && n <= r)
            set_rank_only(out, x->dtype, r - (int)n);
        else
            set_unknown(out, x->dtype);
        return EMBER_OK;
    }
    bool drop[EM_MAX_RANK] = {false};
    if (!have) {
        for (int i = 0; i < r; i++) {
            if (x->dims[i] < 0) { /* may or may not be 1 */
                set_unknown(out, x->dtype);
                return EMBER_OK;
            }
            drop[i] = x->dims[i] == 1;
        }
    }
    for (int64_t k = 0; k < n; k++) {
        int a;
        EM_TRY(em_norm_axis(node, axes[k], r, &a, err));
        if (drop[a])
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "axis %lld is listed twice",
                            (long long)axes[k]);
        if (x->dims[a] != 1 && x->dims[a] >= 0)
            return ems_fail(err, EMBER_ERR_SHAPE, node,
                            "cannot squeeze axis %d of size %lld (must be 1)", a,
                            (long long)x->dims[a]);
        drop[a] = true;
    }
    int64_t dims[EM_MAX_RANK];
    int ro = 0;
    for (int i = 0; i < r; i++)
        if (!drop[i]) dims[ro++] = x->dims[i];
    em_tensor_set_shape(out, x->dtype, dims, ro);
    return EMBER_OK;
}

static ember_status unsqueeze_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int64_t axes[EMS_LOOP_RANK], n;
    bool have, unknown_values;
    EM_TRY(squeeze_axes(node, in, axes, &n, &have, &unknown_values, err));
    if (!have) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "axes are missing");
    if (x->rank < 0) {
        set_unknown(out, x->dtype);
        return EMBER_OK;
    }
    if (n < 0 || x->rank + n > EM_MAX_RANK) {
        if (n < 0) {
            set_unknown(out, x->dtype);
            return EMBER_OK;
        }
        return ems_fail(err, EMBER_ERR_UNSUPPORTED, node, "output rank %lld exceeds %d",
                        (long long)(x->rank + n), EM_MAX_RANK);
    }
    int ro = x->rank + (int)n;
    if (unknown_values) {
        set_rank_only(out, x->dtype, ro);
        return EMBER_OK;
    }
    bool inserted[EM_MAX_RANK] = {false};
    for (int64_t k = 0; k < n; k++) {
        int a;
        EM_TRY(em_norm_axis(node, axes[k], ro, &a, err));
        if (inserted[a])
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "axis %lld is listed twice",
                            (long long)axes[k]);
        inserted[a] = true;
    }
    int64_t dims[EM_MAX_RANK];
    for (int i = 0, j = 0; i < ro; i++) dims[i] = inserted[i] ? 1 : x->dims[j++];
    em_tensor_set_shape(out, x->dtype, dims, ro);
    return EMBER_OK;
}

static ember_status identity_infer(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, ember_error *err) {
    (void)state;
    (void)node;
    (void)err;
    em_tensor_set_shape(out, in[0]->dtype, in[0]->dims, in[0]->rank);
    if (in[0]->kind != EMBER_KIND_TENSOR) /* sequence / optional: the executor copies it */
        em_value_set_type(out, in[0]->kind, in[0]->elem_kind, in[0]->dtype);
    return EMBER_OK;
}

/* ============================================================================================
 * Transpose
 * ========================================================================================== */

static ember_status transpose_perm(const em_node *node, int rank, int *perm, ember_error *err) {
    int64_t count = 0;
    const int64_t *p = em_attr_ints(node, "perm", &count);
    if (!p) {
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return EMBER_OK;
    }
    if (count != rank)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "perm has %lld values for rank %d",
                        (long long)count, rank);
    bool seen[EM_MAX_RANK] = {false};
    for (int i = 0; i < rank; i++) {
        int64_t v = p[i] < 0 ? p[i] + rank : p[i];
        if (v < 0 || v >= rank || seen[v])
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "perm is not a permutation of 0..%d", rank - 1);
        seen[v] = true;
        perm[i] = (int)v;
    }
    return EMBER_OK;
}

static ember_status transpose_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    if (x->rank < 0) {
        set_unknown(out, x->dtype);
        return EMBER_OK;
    }
    int perm[EM_MAX_RANK];
    EM_TRY(transpose_perm(node, x->rank, perm, err));
    int64_t dims[EM_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = x->dims[perm[i]];
    em_tensor_set_shape(out, x->dtype, dims, x->rank);
    return EMBER_OK;
}

static ember_status transpose_run(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int perm[EM_MAX_RANK];
    EM_TRY(transpose_perm(node, x->rank, perm, err));
    ems_transpose(out->data, x->data, x->dims, perm, x->rank, em_dtype_size(x->dtype), ex);
    return EMBER_OK;
}

/* ============================================================================================
 * Concat, Split
 * ========================================================================================== */

static ember_status concat_axis(const em_node *node, int rank, int *axis, ember_error *err) {
    const em_attr *a = em_node_attr(node, "axis");
    if (!a && op_version(node) >= 4)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "attribute 'axis' is missing");
    return em_norm_axis(node, a ? a->i : 1, rank, axis, err);
}

static ember_status concat_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    int n = node->n_explicit_inputs;
    if (n < 1 || !in[0]) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "no inputs");
    const em_tensor *x0 = in[0];
    EM_TRY(ems_movable_type(node, 0, x0->dtype, err));
    int rank = -1;
    for (int k = 0; k < n; k++) {
        if (!in[k]) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input %d is missing", k);
        if (in[k]->dtype != x0->dtype)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "input %d has type %s, input 0 has %s", k, em_dtype_name(in[k]->dtype),
                            em_dtype_name(x0->dtype));
        if (in[k]->rank >= 0) {
            if (rank >= 0 && in[k]->rank != rank)
                return ems_fail(err, EMBER_ERR_SHAPE, node, "input %d has rank %d, not %d", k,
                                in[k]->rank, rank);
            rank = in[k]->rank;
        }
    }
    if (rank < 0) {
        set_unknown(out, x0->dtype);
        return EMBER_OK;
    }
    int axis;
    EM_TRY(concat_axis(node, rank, &axis, err));
    int64_t dims[EM_MAX_RANK];
    for (int i = 0; i < rank; i++) dims[i] = -1;
    int64_t sum = 0;
    for (int k = 0; k < n; k++) {
        const em_tensor *t = in[k];
        if (t->rank < 0) {
            sum = -1;
            continue;
        }
        for (int i = 0; i < rank; i++) {
            if (i == axis || t->dims[i] < 0) continue;
            if (dims[i] >= 0 && dims[i] != t->dims[i]) {
                char a[128], b[128];
                return ems_fail(err, EMBER_ERR_SHAPE, node,
                                "input %d %s does not match input 0 %s outside axis %d", k,
                                em_shape_str(t, a, sizeof a), em_shape_str(x0, b, sizeof b), axis);
            }
            dims[i] = t->dims[i];
        }
        if (sum >= 0) sum = t->dims[axis] < 0 ? -1 : sum + t->dims[axis];
    }
    dims[axis] = sum;
    em_tensor_set_shape(out, x0->dtype, dims, rank);
    return EMBER_OK;
}

typedef struct concat_ctx {
    char *dst;
    int64_t dst_row; /* bytes per outer row of the output */
    int n;
    const char **src;
    const int64_t *src_row; /* bytes per outer row of each input */
    const int64_t *dst_off; /* byte offset of each input inside an output row */
} concat_ctx;

static void concat_range(void *vctx, int64_t begin, int64_t end) {
    const concat_ctx *c = vctx;
    for (int64_t r = begin; r < end; r++)
        for (int k = 0; k < c->n; k++) {
            char *d = c->dst + r * c->dst_row + c->dst_off[k];
            const char *s = c->src[k] + r * c->src_row[k];
            /* An input its producer wrote in place (executor's Concat placement) is done. */
            if (c->src_row[k] > 0 && s != d) memcpy(d, s, (size_t)c->src_row[k]);
        }
}

static ember_status concat_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    int n = node->n_explicit_inputs, axis;
    EM_TRY(concat_axis(node, out->rank, &axis, err));
    size_t es = em_dtype_size(out->dtype);
    int64_t outer = dims_product(out->dims, 0, axis);
    int64_t inner = dims_product(out->dims, axis + 1, out->rank) * (int64_t)es;
    const char *src_stack[16];
    int64_t row_stack[16], off_stack[16];
    const char **src = n <= 16 ? src_stack : malloc(sizeof *src * (size_t)n);
    int64_t *rows = n <= 16 ? row_stack : malloc(sizeof *rows * (size_t)n);
    int64_t *offs = n <= 16 ? off_stack : malloc(sizeof *offs * (size_t)n);
    ember_status st = EMBER_OK;
    if (!src || !rows || !offs) {
        st = ems_fail(err, EMBER_ERR_OUT_OF_MEMORY, node, "out of memory");
    } else {
        int64_t off = 0;
        for (int k = 0; k < n; k++) {
            src[k] = in[k]->data;
            rows[k] = in[k]->dims[axis] * inner;
            offs[k] = off;
            off += rows[k];
        }
        concat_ctx c = {
            .dst = out->data, .dst_row = off, .n = n, .src = src, .src_row = rows, .dst_off = offs};
        if (off > 0) ems_parallel(ex, outer, ems_grain(off), concat_range, &c);
    }
    if (src != src_stack) free(src);
    if (rows != row_stack) free(rows);
    if (offs != off_stack) free(offs);
    return st;
}

/* Split sizes along the axis; sizes[k] = -1 when unknown (static inference). */
static ember_status split_sizes(const em_node *node, em_tensor *const *in, int64_t dim,
                                int64_t *sizes, ember_error *err) {
    int ver = op_version(node);
    int n_out = node->n_outputs;
    int64_t count = 0;
    const int64_t *attr = NULL;
    const em_tensor *split_in = NULL;
    if (ver < 13) {
        attr = em_attr_ints(node, "split", &count);
        if (!attr && ver < 2 && !input_empty(node, in, 1)) split_in = in[1];
    } else if (!input_empty(node, in, 1)) {
        split_in = in[1];
    }
    if (split_in) {
        if (!split_in->data) {
            for (int k = 0; k < n_out; k++) sizes[k] = -1;
            return EMBER_OK;
        }
        if (split_in->dtype != EMBER_INT64 && split_in->dtype != EMBER_INT32)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "split must be int64");
        count = em_numel(split_in);
    }
    if (attr || split_in) {
        if (count != n_out)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "split has %lld values for %d outputs", (long long)count, n_out);
        int64_t sum = 0;
        for (int k = 0; k < n_out; k++) {
            sizes[k] = attr ? attr[k] : em_get_i64(split_in, k);
            if (sizes[k] < 0 || sizes[k] > INT64_MAX - sum)
                return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "split[%d] is %lld", k,
                                (long long)sizes[k]);
            sum += sizes[k];
        }
        if (dim >= 0 && sum != dim)
            return ems_fail(err, EMBER_ERR_SHAPE, node,
                            "split sizes add up to %lld but the axis has %lld", (long long)sum,
                            (long long)dim);
        return EMBER_OK;
    }
    const em_attr *num = ver >= 18 ? em_node_attr(node, "num_outputs") : NULL;
    if (num && num->i != n_out)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "num_outputs is %lld but the node has %d outputs", (long long)num->i,
                        n_out);
    if (dim < 0) {
        for (int k = 0; k < n_out; k++) sizes[k] = -1;
        return EMBER_OK;
    }
    if (num) { /* chunks of ceil(dim / n); the last one takes what is left */
        int64_t chunk = (dim + n_out - 1) / n_out;
        if (chunk * (n_out - 1) > dim)
            return ems_fail(err, EMBER_ERR_SHAPE, node,
                            "an axis of %lld cannot be split into %d chunks of %lld",
                            (long long)dim, n_out, (long long)chunk);
        for (int k = 0; k < n_out; k++) sizes[k] = k < n_out - 1 ? chunk : dim - chunk * k;
        return EMBER_OK;
    }
    if (dim % n_out != 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node,
                        "an axis of %lld cannot be split into %d equal parts", (long long)dim,
                        n_out);
    for (int k = 0; k < n_out; k++) sizes[k] = dim / n_out;
    return EMBER_OK;
}

static ember_status split_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int n_out = node->n_outputs;
    EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    if (n_out < 1) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "no outputs");
    if (x->rank < 0) {
        for (int k = 0; k < n_out; k++) set_unknown(&out[k], x->dtype);
        return EMBER_OK;
    }
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    int64_t stack[16];
    int64_t *sizes = n_out <= 16 ? stack : malloc(sizeof *sizes * (size_t)n_out);
    if (!sizes) return ems_fail(err, EMBER_ERR_OUT_OF_MEMORY, node, "out of memory");
    ember_status st = split_sizes(node, in, x->dims[axis], sizes, err);
    for (int k = 0; st == EMBER_OK && k < n_out; k++) {
        em_tensor_set_shape(&out[k], x->dtype, x->dims, x->rank);
        out[k].dims[axis] = sizes[k];
    }
    if (sizes != stack) free(sizes);
    return st;
}

static ember_status split_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    size_t es = em_dtype_size(x->dtype);
    int64_t outer = dims_product(x->dims, 0, axis);
    int64_t inner = dims_product(x->dims, axis + 1, x->rank);
    int64_t in_stride[3] = {x->dims[axis] * inner, inner, 1};
    int64_t offset = 0;
    for (int k = 0; k < node->n_outputs; k++) {
        int64_t part = out[k].dims[axis];
        int64_t dims[3] = {outer, part, inner};
        if (out[k].data && part > 0)
            ems_copy_strided(out[k].data, (const char *)x->data + offset * inner * (int64_t)es,
                             dims, in_stride, 3, es, ex);
        offset += part;
    }
    return EMBER_OK;
}

/* ============================================================================================
 * Slice
 * ========================================================================================== */

typedef struct slice_plan {
    int64_t start[EM_MAX_RANK];
    int64_t step[EM_MAX_RANK];
    int64_t count[EM_MAX_RANK];
} slice_plan;

/* Builds the plan; *unknown when a needed input's data is not available (static inference). */
static ember_status slice_make_plan(const em_node *node, em_tensor *const *in, slice_plan *p,
                                    bool *unknown, ember_error *err) {
    const em_tensor *x = in[0];
    int r = x->rank;
    int64_t starts[EM_MAX_RANK], ends[EM_MAX_RANK], axes[EM_MAX_RANK], steps[EM_MAX_RANK];
    int64_t ns = 0, ne = 0, na = -1, nst = -1;
    *unknown = false;
    if (op_version(node) < 10) {
        bool have;
        EM_TRY(attr_ints(node, "starts", starts, EM_MAX_RANK, &ns, &have, err));
        if (!have) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "'starts' is missing");
        EM_TRY(attr_ints(node, "ends", ends, EM_MAX_RANK, &ne, &have, err));
        if (!have) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "'ends' is missing");
        EM_TRY(attr_ints(node, "axes", axes, EM_MAX_RANK, &na, &have, err));
        if (!have) na = -1;
    } else {
        const char *names[4] = {"starts", "ends", "axes", "steps"};
        int64_t *vals[4] = {starts, ends, axes, steps};
        int64_t *counts[4] = {&ns, &ne, &na, &nst};
        for (int i = 0; i < 4; i++) {
            const em_tensor *t = input_or_null(node, in, i + 1);
            if (!t) {
                if (i < 2)
                    return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input '%s' is missing",
                                    names[i]);
                continue;
            }
            if (!t->data && em_numel(t) != 0) {
                *unknown = true;
                return EMBER_OK;
            }
            EM_TRY(ems_read_ints(node, t, names[i], vals[i], EM_MAX_RANK, counts[i], err));
        }
    }
    if (ns != ne)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "starts has %lld values, ends %lld",
                        (long long)ns, (long long)ne);
    if (na < 0) {
        na = ns;
        for (int i = 0; i < ns; i++) axes[i] = i;
    }
    if (nst < 0) {
        nst = ns;
        for (int i = 0; i < ns; i++) steps[i] = 1;
    }
    if (na != ns || nst != ns)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "starts, ends, axes and steps must have the same length");
    for (int i = 0; i < r; i++) {
        p->start[i] = 0;
        p->step[i] = 1;
        p->count[i] = x->dims[i];
    }
    bool seen[EM_MAX_RANK] = {false};
    for (int i = 0; i < ns; i++) {
        int a;
        EM_TRY(em_norm_axis(node, axes[i], r, &a, err));
        if (seen[a])
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "axis %d is sliced twice", a);
        seen[a] = true;
        if (steps[i] == 0)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "step for axis %d is 0", a);
        p->step[a] = steps[i];
        if (x->dims[a] < 0) {
            p->count[a] = -1;
            continue;
        }
        em_slice_axis(x->dims[a], starts[i], ends[i], steps[i], &p->start[a], &p->count[a]);
    }
    return EMBER_OK;
}

static ember_status slice_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    if (x->rank < 0) {
        set_unknown(out, x->dtype);
        return EMBER_OK;
    }
    slice_plan p;
    bool unknown;
    EM_TRY(slice_make_plan(node, in, &p, &unknown, err));
    if (unknown) {
        set_rank_only(out, x->dtype, x->rank);
        return EMBER_OK;
    }
    em_tensor_set_shape(out, x->dtype, p.count, x->rank);
    return EMBER_OK;
}

static ember_status slice_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    slice_plan p;
    bool unknown;
    EM_TRY(slice_make_plan(node, in, &p, &unknown, err));
    if (em_numel(out) == 0) return EMBER_OK;
    int64_t st[EM_MAX_RANK], strides[EM_MAX_RANK], off = 0;
    em_strides(x->dims, x->rank, st);
    for (int i = 0; i < x->rank; i++) {
        off += p.start[i] * st[i];
        /* With 2+ elements |step| < dim, so the product fits; a lone element needs none. */
        strides[i] = p.count[i] > 1 ? p.step[i] * st[i] : 0;
    }
    size_t es = em_dtype_size(x->dtype);
    ems_copy_strided(out->data, (const char *)x->data + off * (int64_t)es, p.count, strides,
                     x->rank, es, ex);
    return EMBER_OK;
}

/* ============================================================================================
 * Expand, Tile
 * ========================================================================================== */

static ember_status expand_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *s = input_or_null(node, in, 1);
    EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    if (!s) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input 'shape' is missing");
    if (x->rank < 0 || !s->data) {
        if (x->rank >= 0 && s->rank == 1 && s->dims[0] >= 0 && s->dims[0] <= EM_MAX_RANK)
            set_rank_only(out, x->dtype, x->rank > s->dims[0] ? x->rank : (int)s->dims[0]);
        else
            set_unknown(out, x->dtype);
        return EMBER_OK;
    }
    int64_t shape[EM_MAX_RANK], n;
    EM_TRY(ems_read_ints(node, s, "shape", shape, EM_MAX_RANK, &n, err));
    for (int i = 0; i < n; i++)
        if (shape[i] < 0)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "shape[%d] is %lld", i,
                            (long long)shape[i]);
    int64_t dims[EM_MAX_RANK];
    int r;
    if (!em_broadcast_shape(x->dims, x->rank, shape, (int)n, dims, &r)) {
        char a[128];
        return ems_fail(err, EMBER_ERR_SHAPE, node, "cannot expand %s to the given shape",
                        em_shape_str(x, a, sizeof a));
    }
    if (dims_product(dims, 0, r) == -2)
        return ems_fail(err, EMBER_ERR_LIMIT, node, "output is too large");
    em_tensor_set_shape(out, x->dtype, dims, r);
    return EMBER_OK;
}

static ember_status expand_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    (void)node;
    (void)err;
    const em_tensor *x = in[0];
    int64_t st[EM_MAX_RANK], strides[EM_MAX_RANK];
    em_strides(x->dims, x->rank, st);
    int lead = out->rank - x->rank;
    for (int i = 0; i < out->rank; i++) {
        int j = i - lead;
        strides[i] = (j < 0 || x->dims[j] == 1) ? 0 : st[j];
    }
    ems_copy_strided(out->data, x->data, out->dims, strides, out->rank, em_dtype_size(x->dtype),
                     ex);
    return EMBER_OK;
}

/* Repeats per axis: input `repeats` (1-D, opset 6+) or Tile-1's scalar `tiles` + `axis`. */
static ember_status tile_repeats(const em_node *node, em_tensor *const *in, int rank, int64_t *reps,
                                 bool *unknown, ember_error *err) {
    *unknown = false;
    const em_tensor *r = input_or_null(node, in, 1);
    if (!r) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input 'repeats' is missing");
    if (op_version(node) < 6) {
        const em_tensor *a = input_or_null(node, in, 2);
        if (!a) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input 'axis' is missing");
        if (!r->data || !a->data) {
            *unknown = true;
            return EMBER_OK;
        }
        if (em_numel(r) != 1 || em_numel(a) != 1)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "tiles and axis must be scalars");
        int axis;
        EM_TRY(em_norm_axis(node, em_get_i64(a, 0), rank, &axis, err));
        for (int i = 0; i < rank; i++) reps[i] = 1;
        reps[axis] = em_get_i64(r, 0);
    } else {
        if (!r->data) {
            *unknown = true;
            return EMBER_OK;
        }
        int64_t n;
        EM_TRY(ems_read_ints(node, r, "repeats", reps, EM_MAX_RANK, &n, err));
        if (n != rank)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "repeats has %lld values for rank %d", (long long)n, rank);
    }
    for (int i = 0; i < rank; i++)
        if (reps[i] < 0)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "repeats[%d] is %lld", i,
                            (long long)reps[i]);
    return EMBER_OK;
}

static ember_status tile_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    if (x->rank < 0) {
        set_unknown(out, x->dtype);
        return EMBER_OK;
    }
    int64_t reps[EM_MAX_RANK];
    bool unknown;
    EM_TRY(tile_repeats(node, in, x->rank, reps, &unknown, err));
    if (unknown) {
        set_rank_only(out, x->dtype, x->rank);
        return EMBER_OK;
    }
    int64_t dims[EM_MAX_RANK];
    for (int i = 0; i < x->rank; i++) {
        if (x->dims[i] < 0) {
            dims[i] = reps[i] == 0 ? 0 : -1;
            continue;
        }
        if (reps[i] != 0 && x->dims[i] > INT64_MAX / reps[i])
            return ems_fail(err, EMBER_ERR_LIMIT, node, "output is too large");
        dims[i] = x->dims[i] * reps[i];
    }
    if (dims_product(dims, 0, x->rank) == -2)
        return ems_fail(err, EMBER_ERR_LIMIT, node, "output is too large");
    em_tensor_set_shape(out, x->dtype, dims, x->rank);
    return EMBER_OK;
}

static ember_status tile_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int64_t reps[EM_MAX_RANK];
    bool unknown;
    EM_TRY(tile_repeats(node, in, x->rank, reps, &unknown, err));
    /* Output axis i of size reps*d is laid out as (rep, i) in row-major order: a broadcast
     * copy over interleaved axes [r0, d0, r1, d1, ...] with stride 0 on the repeat axes. */
    int64_t st[EM_MAX_RANK], dims[EMS_LOOP_RANK], strides[EMS_LOOP_RANK];
    em_strides(x->dims, x->rank, st);
    for (int i = 0; i < x->rank; i++) {
        dims[2 * i] = reps[i];
        strides[2 * i] = 0;
        dims[2 * i + 1] = x->dims[i];
        strides[2 * i + 1] = st[i];
    }
    ems_copy_strided(out->data, x->data, dims, strides, 2 * x->rank, em_dtype_size(x->dtype), ex);
    return EMBER_OK;
}

/* ============================================================================================
 * Shape, Size
 * ========================================================================================== */

static void shape_range(const em_node *node, int rank, int64_t *start, int64_t *end) {
    int64_t s = 0, e = rank;
    if (op_version(node) >= 15) {
        s = em_attr_int(node, "start", 0);
        e = em_attr_int(node, "end", rank);
        if (s < 0) s += rank;
        if (e < 0) e += rank;
        s = s < 0 ? 0 : s > rank ? rank : s;
        e = e < 0 ? 0 : e > rank ? rank : e;
    }
    *start = s;
    *end = e > s ? e : s;
}

static ember_status shape_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    (void)err;
    const em_tensor *x = in[0];
    if (x->rank < 0) {
        set_rank_only(out, EMBER_INT64, 1);
        return EMBER_OK;
    }
    int64_t s, e;
    shape_range(node, x->rank, &s, &e);
    int64_t dims[1] = {e - s};
    em_tensor_set_shape(out, EMBER_INT64, dims, 1);
    return EMBER_OK;
}

static ember_status shape_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    (void)ex;
    (void)err;
    int64_t s, e;
    shape_range(node, in[0]->rank, &s, &e);
    int64_t *o = out->data;
    for (int64_t i = s; i < e; i++) o[i - s] = in[0]->dims[i];
    return EMBER_OK;
}

static ember_status size_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    (void)node;
    (void)in;
    (void)err;
    em_tensor_set_shape(out, EMBER_INT64, NULL, 0);
    return EMBER_OK;
}

static ember_status size_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, ember_error *err) {
    (void)state;
    (void)ex;
    int64_t n = em_numel(in[0]);
    if (n < 0) return ems_fail(err, EMBER_ERR_RUNTIME, node, "input size is unknown");
    *(int64_t *)out->data = n;
    return EMBER_OK;
}

/* ============================================================================================
 * Cast, CastLike
 * ========================================================================================== */

static bool castable(ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT:
    case EMBER_UINT8:
    case EMBER_INT8:
    case EMBER_UINT16:
    case EMBER_INT16:
    case EMBER_INT32:
    case EMBER_INT64:
    case EMBER_BOOL:
    case EMBER_FLOAT16:
    case EMBER_DOUBLE:
    case EMBER_UINT32:
    case EMBER_UINT64:
    case EMBER_BFLOAT16:
        return true;
    default:
        return false;
    }
}

/* Cast-1 names the type with a string. */
static ember_dtype dtype_from_name(const char *s) {
    static const struct {
        const char *name;
        ember_dtype dt;
    } names[] = {
        {"FLOAT", EMBER_FLOAT},     {"UINT8", EMBER_UINT8},       {"INT8", EMBER_INT8},
        {"UINT16", EMBER_UINT16},   {"INT16", EMBER_INT16},       {"INT32", EMBER_INT32},
        {"INT64", EMBER_INT64},     {"STRING", EMBER_STRING},     {"BOOL", EMBER_BOOL},
        {"FLOAT16", EMBER_FLOAT16}, {"DOUBLE", EMBER_DOUBLE},     {"UINT32", EMBER_UINT32},
        {"UINT64", EMBER_UINT64},   {"BFLOAT16", EMBER_BFLOAT16},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) return names[i].dt;
    return EMBER_UNDEFINED;
}

static ember_status cast_target(const em_node *node, em_tensor *const *in, ember_dtype *dt,
                                ember_error *err) {
    if (strcmp(node->op_type, "CastLike") == 0) {
        const em_tensor *like = input_or_null(node, in, 1);
        if (!like)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input 'target_type' is missing");
        *dt = like->dtype;
    } else {
        const em_attr *to = em_node_attr(node, "to");
        if (!to) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "attribute 'to' is missing");
        *dt = to->type == EM_ATTR_STRING ? dtype_from_name(to->s) : (ember_dtype)to->i;
    }
    if (*dt == EMBER_STRING || in[0]->dtype == EMBER_STRING)
        return em_cast_string_check(node, in[0]->dtype, *dt, err);
    if (!castable(*dt))
        return ems_fail(err, EMBER_ERR_UNSUPPORTED, node, "cannot cast to type %d (%s)", (int)*dt,
                        em_dtype_name(*dt));
    if (!castable(in[0]->dtype)) return em_unsupported_type(node, 0, in[0]->dtype, err);
    return EMBER_OK;
}

static ember_status cast_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    ember_dtype dt = EMBER_UNDEFINED;
    EM_TRY(cast_target(node, in, &dt, err));
    em_tensor_set_shape(out, dt, in[0]->dims, in[0]->rank);
    return EMBER_OK;
}

/* double -> float rounding to odd, so that a second rounding to 16 bits is correct. */
static float f64_to_f32_odd(double v) {
    float f = (float)v;
    if (isnan(v) || isinf(f) || (double)f == v) return f;
    if (fabs((double)f) > fabs(v)) f = nextafterf(f, 0.0f);
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bits |= 1;
    memcpy(&f, &bits, 4);
    return f;
}

typedef struct cast_ctx {
    const char *src;
    char *dst;
    ember_dtype st, dt;
} cast_ctx;

static void cast_range(void *vctx, int64_t begin, int64_t end) {
    const cast_ctx *c = vctx;
    size_t ss = em_dtype_size(c->st), ds = em_dtype_size(c->dt);
    const char *src = c->src + (size_t)begin * ss;
    char *dst = c->dst + (size_t)begin * ds;
    int64_t n = end - begin;
    if (c->st == EMBER_DOUBLE && (c->dt == EMBER_FLOAT16 || c->dt == EMBER_BFLOAT16)) {
        const double *s = (const double *)src;
        uint16_t *d = (uint16_t *)dst;
        for (int64_t i = 0; i < n; i++) {
            float f = f64_to_f32_odd(s[i]);
            d[i] = c->dt == EMBER_FLOAT16 ? em_f32_to_f16(f) : em_f32_to_bf16(f);
        }
        return;
    }
    em_convert(dst, c->dt, src, c->st, n);
}

static ember_status cast_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, ember_error *err) {
    (void)state;
    if (in[0]->dtype == EMBER_STRING || out->dtype == EMBER_STRING)
        return em_cast_strings(node, in[0], out, err);
    cast_ctx c = {.src = in[0]->data, .dst = out->data, .st = in[0]->dtype, .dt = out->dtype};
    ems_parallel(ex, em_numel(out), 16384, cast_range, &c);
    return EMBER_OK;
}

/* ============================================================================================
 * ConstantOfShape, Range, EyeLike
 * ========================================================================================== */

static ember_status constant_of_shape_infer(const em_node *node, void *state, em_tensor *const *in,
                                            em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *value = em_attr_tensor(node, "value");
    ember_dtype dt = value ? value->dtype : EMBER_FLOAT;
    if (value) {
        if (em_numel(value) != 1)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "attribute 'value' must have one element, it has %lld",
                            (long long)em_numel(value));
        EM_TRY(ems_movable_type(node, 0, dt, err));
    }
    const em_tensor *s = in[0];
    if (!s->data) {
        if (s->rank == 1 && s->dims[0] >= 0 && s->dims[0] <= EM_MAX_RANK)
            set_rank_only(out, dt, (int)s->dims[0]);
        else
            set_unknown(out, dt);
        return EMBER_OK;
    }
    int64_t dims[EM_MAX_RANK], n;
    EM_TRY(ems_read_ints(node, s, "shape", dims, EM_MAX_RANK, &n, err));
    for (int i = 0; i < n; i++)
        if (dims[i] < 0)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "shape[%d] is %lld", i,
                            (long long)dims[i]);
    if (dims_product(dims, 0, (int)n) == -2)
        return ems_fail(err, EMBER_ERR_LIMIT, node, "output is too large");
    em_tensor_set_shape(out, dt, dims, (int)n);
    return EMBER_OK;
}

static ember_status constant_of_shape_run(const em_node *node, void *state, em_tensor *const *in,
                                          em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    (void)in;
    (void)ex;
    (void)err;
    const em_tensor *value = em_attr_tensor(node, "value");
    int64_t n = em_numel(out);
    if (!value) {
        memset(out->data, 0, (size_t)n * sizeof(float));
        return EMBER_OK;
    }
    ems_fill(out->data, value->data, n, em_dtype_size(out->dtype));
    return EMBER_OK;
}

static bool range_type(ember_dtype dt) {
    return dt == EMBER_FLOAT || dt == EMBER_DOUBLE || dt == EMBER_INT16 || dt == EMBER_INT32 ||
           dt == EMBER_INT64;
}

/* Number of elements of Range: max(ceil((limit - start) / delta), 0). */
static ember_status range_count(const em_node *node, em_tensor *const *in, int64_t *count,
                                ember_error *err) {
    ember_dtype dt = in[0]->dtype;
    if (dt == EMBER_FLOAT || dt == EMBER_DOUBLE) {
        double s = em_get_f64(in[0], 0), l = em_get_f64(in[1], 0), d = em_get_f64(in[2], 0);
        if (d == 0 || isnan(s) || isnan(l) || isnan(d))
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "delta is 0 or a value is NaN");
        double n = ceil((l - s) / d);
        if (!(n <= 4.0e18)) return ems_fail(err, EMBER_ERR_LIMIT, node, "range is too long");
        *count = n > 0 ? (int64_t)n : 0;
        return EMBER_OK;
    }
    int64_t s = em_get_i64(in[0], 0), l = em_get_i64(in[1], 0), d = em_get_i64(in[2], 0);
    if (d == 0) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "delta is 0");
    if (d > 0) {
        *count = l > s ? (int64_t)(((uint64_t)l - (uint64_t)s - 1) / (uint64_t)d) + 1 : 0;
    } else {
        uint64_t ud = (uint64_t)0 - (uint64_t)d;
        *count = s > l ? (int64_t)(((uint64_t)s - (uint64_t)l - 1) / ud) + 1 : 0;
    }
    return EMBER_OK;
}

static ember_status range_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    for (int i = 0; i < 3; i++) {
        const em_tensor *t = input_or_null(node, in, i);
        if (!t) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input %d is missing", i);
        if (t->dtype != in[0]->dtype)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "start, limit and delta must have the same type");
        if (t->rank >= 0 && em_numel(t) != 1)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input %d must be a scalar", i);
    }
    if (!range_type(in[0]->dtype)) return em_unsupported_type(node, 0, in[0]->dtype, err);
    if (!in[0]->data || !in[1]->data || !in[2]->data) {
        set_rank_only(out, in[0]->dtype, 1);
        return EMBER_OK;
    }
    int64_t n;
    EM_TRY(range_count(node, in, &n, err));
    em_tensor_set_shape(out, in[0]->dtype, &n, 1);
    return EMBER_OK;
}

static ember_status range_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    (void)node;
    (void)ex;
    (void)err;
    int64_t n = out->dims[0];
    switch (out->dtype) {
    case EMBER_FLOAT: {
        /* start + i * delta (the spec's formula; no accumulated rounding). */
        float s = *(const float *)in[0]->data, d = *(const float *)in[2]->data;
        float *o = out->data;
        for (int64_t i = 0; i < n; i++) o[i] = s + (float)i * d;
        break;
    }
    case EMBER_DOUBLE: {
        double s = *(const double *)in[0]->data, d = *(const double *)in[2]->data;
        double *o = out->data;
        for (int64_t i = 0; i < n; i++) o[i] = s + (double)i * d;
        break;
    }
    default: {
        /* Wrap-free in uint64; the values fit the type because limit does. */
        uint64_t s = (uint64_t)em_get_i64(in[0], 0), d = (uint64_t)em_get_i64(in[2], 0);
        for (int64_t i = 0; i < n; i++) {
            int64_t v = (int64_t)(s + (uint64_t)i * d);
            switch (out->dtype) {
            case EMBER_INT16:
                ((int16_t *)out->data)[i] = (int16_t)v;
                break;
            case EMBER_INT32:
                ((int32_t *)out->data)[i] = (int32_t)v;
                break;
            default:
                ((int64_t *)out->data)[i] = v;
                break;
            }
        }
    }
    }
    return EMBER_OK;
}

static ember_status eyelike_type(const em_node *node, em_tensor *const *in, ember_dtype *dt,
                                 ember_error *err) {
    const em_attr *a = em_node_attr(node, "dtype");
    *dt = a ? (ember_dtype)a->i : in[0]->dtype;
    if (!castable(*dt)) return em_unsupported_type(node, 0, *dt, err);
    return EMBER_OK;
}

static ember_status eyelike_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    ember_dtype dt = EMBER_UNDEFINED;
    EM_TRY(eyelike_type(node, in, &dt, err));
    if (in[0]->rank >= 0 && in[0]->rank != 2)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input must be 2-D, got rank %d",
                        in[0]->rank);
    em_tensor_set_shape(out, dt, in[0]->dims, in[0]->rank);
    return EMBER_OK;
}

static ember_status eyelike_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    (void)in;
    (void)ex;
    (void)err;
    int64_t rows = out->dims[0], cols = out->dims[1];
    int64_t k = em_attr_int(node, "k", 0);
    size_t es = em_dtype_size(out->dtype);
    memset(out->data, 0, (size_t)(rows * cols) * es); /* 0 is all-zero bits in every type */
    if (k >= cols || k <= -rows) return EMBER_OK;
    for (int64_t i = k < 0 ? -k : 0; i < rows && i + k < cols; i++)
        em_set_f64(out, i * cols + i + k, 1.0);
    return EMBER_OK;
}

/* ============================================================================================
 * Trilu
 * ========================================================================================== */

static ember_status trilu_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    if (x->rank >= 0 && x->rank < 2)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input rank must be >= 2, got %d",
                        x->rank);
    const em_tensor *k = input_or_null(node, in, 1);
    if (k && k->rank >= 0 && em_numel(k) != 1)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "k must be a scalar");
    em_tensor_set_shape(out, x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

typedef struct trilu_ctx {
    const char *src;
    char *dst;
    int64_t n, m; /* matrix rows, cols */
    int64_t k;
    bool upper;
    size_t es;
} trilu_ctx;

static void trilu_range(void *vctx, int64_t begin, int64_t end) {
    const trilu_ctx *c = vctx;
    size_t row = (size_t)c->m * c->es;
    for (int64_t r = begin; r < end; r++) {
        int64_t i = r % c->n;
        const char *s = c->src + (size_t)r * row;
        char *d = c->dst + (size_t)r * row;
        /* Kept columns: upper j >= i + k, lower j <= i + k. */
        int64_t edge = i + c->k;
        if (c->upper) {
            int64_t z = edge < 0 ? 0 : edge > c->m ? c->m : edge;
            memset(d, 0, (size_t)z * c->es);
            if (d != s)
                memcpy(d + (size_t)z * c->es, s + (size_t)z * c->es, (size_t)(c->m - z) * c->es);
        } else {
            int64_t keep = edge + 1 < 0 ? 0 : edge + 1 > c->m ? c->m : edge + 1;
            if (d != s) memcpy(d, s, (size_t)keep * c->es);
            memset(d + (size_t)keep * c->es, 0, (size_t)(c->m - keep) * c->es);
        }
    }
}

static ember_status trilu_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    (void)err;
    const em_tensor *x = in[0];
    const em_tensor *kt = input_or_null(node, in, 1);
    trilu_ctx c = {.src = x->data,
                   .dst = out->data,
                   .n = x->dims[x->rank - 2],
                   .m = x->dims[x->rank - 1],
                   .k = 0,
                   .upper = em_attr_int(node, "upper", 1) != 0,
                   .es = em_dtype_size(x->dtype)};
    if (kt && em_numel(kt) == 1) {
        int64_t k = em_get_i64(kt, 0);
        int64_t lim = c.n + c.m + 1; /* beyond this every k acts the same; avoids overflow */
        c.k = k > lim ? lim : k < -lim ? -lim : k;
    }
    int64_t rows = dims_product(x->dims, 0, x->rank - 1);
    if (c.m > 0) ems_parallel(ex, rows, ems_grain(c.m * (int64_t)c.es), trilu_range, &c);
    return EMBER_OK;
}

/* ============================================================================================
 * DepthToSpace, SpaceToDepth
 * ========================================================================================== */

static ember_status blocksize(const em_node *node, int64_t *b, ember_error *err) {
    *b = em_attr_int(node, "blocksize", 0);
    if (*b <= 0 || *b > (1 << 20))
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "blocksize must be positive, got %lld",
                        (long long)*b);
    return EMBER_OK;
}

static ember_status d2s_mode_crd(const em_node *node, bool *crd, ember_error *err) {
    const char *mode = op_version(node) >= 11 ? em_attr_string(node, "mode", "DCR") : "DCR";
    *crd = strcmp(mode, "CRD") == 0;
    if (!*crd && strcmp(mode, "DCR") != 0)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "unknown mode '%s'", mode);
    return EMBER_OK;
}

static ember_status depth_space_infer(const em_node *node, void *state, em_tensor *const *in,
                                      em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    bool to_space = strcmp(node->op_type, "DepthToSpace") == 0;
    int64_t b;
    EM_TRY(blocksize(node, &b, err));
    EM_TRY(ems_movable_type(node, 0, x->dtype, err));
    if (to_space) {
        bool crd;
        EM_TRY(d2s_mode_crd(node, &crd, err));
    }
    if (x->rank < 0) {
        set_rank_only(out, x->dtype, 4);
        return EMBER_OK;
    }
    if (x->rank != 4)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "input must be 4-D, got rank %d",
                        x->rank);
    int64_t n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    int64_t dims[4];
    if (to_space) {
        if (c >= 0 && c % (b * b) != 0)
            return ems_fail(err, EMBER_ERR_SHAPE, node,
                            "channels (%lld) are not a multiple of blocksize^2 (%lld)",
                            (long long)c, (long long)(b * b));
        if ((h > 0 && h > INT64_MAX / b) || (w > 0 && w > INT64_MAX / b))
            return ems_fail(err, EMBER_ERR_LIMIT, node, "output is too large");
        dims[0] = n;
        dims[1] = c < 0 ? -1 : c / (b * b);
        dims[2] = h < 0 ? -1 : h * b;
        dims[3] = w < 0 ? -1 : w * b;
    } else {
        if ((h >= 0 && h % b != 0) || (w >= 0 && w % b != 0))
            return ems_fail(err, EMBER_ERR_SHAPE, node,
                            "height %lld and width %lld must be multiples of blocksize %lld",
                            (long long)h, (long long)w, (long long)b);
        if (c > 0 && c > INT64_MAX / (b * b))
            return ems_fail(err, EMBER_ERR_LIMIT, node, "output is too large");
        dims[0] = n;
        dims[1] = c < 0 ? -1 : c * b * b;
        dims[2] = h < 0 ? -1 : h / b;
        dims[3] = w < 0 ? -1 : w / b;
    }
    em_tensor_set_shape(out, x->dtype, dims, 4);
    return EMBER_OK;
}

static ember_status depth_space_run(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int64_t b;
    EM_TRY(blocksize(node, &b, err));
    int64_t n = x->dims[0], c = x->dims[1], h = x->dims[2], w = x->dims[3];
    size_t es = em_dtype_size(x->dtype);
    if (strcmp(node->op_type, "DepthToSpace") == 0) {
        bool crd;
        EM_TRY(d2s_mode_crd(node, &crd, err));
        int64_t co = c / (b * b);
        if (crd) { /* [n, co, b, b, h, w] -> [n, co, h, b, w, b] */
            int64_t dims[6] = {n, co, b, b, h, w};
            int perm[6] = {0, 1, 4, 2, 5, 3};
            ems_transpose(out->data, x->data, dims, perm, 6, es, ex);
        } else { /* DCR: [n, b, b, co, h, w] -> [n, co, h, b, w, b] */
            int64_t dims[6] = {n, b, b, co, h, w};
            int perm[6] = {0, 3, 4, 1, 5, 2};
            ems_transpose(out->data, x->data, dims, perm, 6, es, ex);
        }
    } else { /* [n, c, h/b, b, w/b, b] -> [n, b, b, c, h/b, w/b] */
        int64_t dims[6] = {n, c, h / b, b, w / b, b};
        int perm[6] = {0, 3, 5, 1, 2, 4};
        ems_transpose(out->data, x->data, dims, perm, 6, es, ex);
    }
    return EMBER_OK;
}

/* ============================================================================================
 * Table
 * ========================================================================================== */

#define VIEW EM_OP_ALIAS_INPUT0

static const em_op k_shape_ops[] = {
    {"", "Reshape", 1, 21, NULL, reshape_infer, NULL, NULL, VIEW},
    {"", "Flatten", 1, 21, NULL, flatten_infer, NULL, NULL, VIEW},
    {"", "Squeeze", 1, 21, NULL, squeeze_infer, NULL, NULL, VIEW},
    {"", "Unsqueeze", 1, 21, NULL, unsqueeze_infer, NULL, NULL, VIEW},
    {"", "Identity", 1, 21, NULL, identity_infer, NULL, NULL,
     VIEW | EM_OP_ANY_KIND | EM_OP_STRINGS},
    {"", "Transpose", 1, 21, NULL, transpose_infer, transpose_run, NULL, 0},
    {"", "Concat", 1, 13, NULL, concat_infer, concat_run, NULL, 0},
    {"", "Split", 1, 18, NULL, split_infer, split_run, NULL, 0},
    {"", "Slice", 1, 13, NULL, slice_infer, slice_run, NULL, 0},
    {"", "Expand", 8, 13, NULL, expand_infer, expand_run, NULL, 0},
    {"", "Tile", 1, 13, NULL, tile_infer, tile_run, NULL, 0},
    {"", "Shape", 1, 21, NULL, shape_infer, shape_run, NULL, 0},
    {"", "Size", 1, 21, NULL, size_infer, size_run, NULL, 0},
    {"", "Cast", 1, 21, NULL, cast_infer, cast_run, NULL, EM_OP_STRINGS},
    {"", "CastLike", 15, 21, NULL, cast_infer, cast_run, NULL, EM_OP_STRINGS},
    {"", "ConstantOfShape", 9, 21, NULL, constant_of_shape_infer, constant_of_shape_run, NULL, 0},
    {"", "Range", 11, 11, NULL, range_infer, range_run, NULL, 0},
    {"", "EyeLike", 9, 22, NULL, eyelike_infer, eyelike_run, NULL, 0},
    {"", "Trilu", 14, 14, NULL, trilu_infer, trilu_run, NULL, 0},
    {"", "DepthToSpace", 1, 13, NULL, depth_space_infer, depth_space_run, NULL, 0},
    {"", "SpaceToDepth", 1, 13, NULL, depth_space_infer, depth_space_run, NULL, 0},
};

EM_OPS_FAMILY(shape) {
    *count = sizeof k_shape_ops / sizeof k_shape_ops[0];
    return k_shape_ops;
}
