/* Indexing operators: Gather, GatherElements, GatherND, ScatterElements, Scatter, ScatterND,
 * OneHot, NonZero, Compress, ReverseSequence, Unique.
 *
 * Data movement is by element size (1, 2, 4 or 8 bytes), so every fixed-size type works; only
 * the scatter reductions and Unique's ordering look at values. Every index is checked before
 * anything is written: an index out of range fails with a message naming it, never a crash. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------- */

/* The executor prefixes every kernel error with the node's description, so messages here
 * state only the reason. */
static ember_status node_fail(ember_error *err, ember_status code, const em_node *node,
                              const char *fmt, ...) EM_PRINTF(4, 5);

static ember_status node_fail(ember_error *err, ember_status code, const em_node *node,
                              const char *fmt, ...) {
    (void)node;
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static bool has_output(const em_node *node, const em_tensor *out, int i) {
    return i < node->n_outputs && node->outputs[i] >= 0 && out[i].data != NULL;
}

static int op_version(const em_node *node) {
    int v = em_onnx_op_version(node->op_type, node->opset);
    return v > 0 ? v : node->opset;
}

static int64_t dims_prod(const int64_t *dims, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= dims[i];
    return p;
}

static ember_status scratch(em_exec *ex, size_t bytes, void **p, ember_error *err) {
    *p = em_exec_scratch(ex, bytes ? bytes : 1, err);
    return *p ? EMBER_OK : (err ? err->code : EMBER_ERR_OUT_OF_MEMORY);
}

static void set_unknown(em_tensor *t, ember_dtype dt) {
    t->dtype = dt;
    t->rank = -1;
}

static bool movable_type(ember_dtype dt) {
    size_t es = em_dtype_size(dt);
    return es == 1 || es == 2 || es == 4 || es == 8;
}

static ember_status check_index_type(const em_node *node, const em_tensor *t, int input,
                                     ember_error *err) {
    if (t->dtype != EMBER_INT64 && t->dtype != EMBER_INT32)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node,
                         "input %d (indices) must be int32 or int64, not %s", input,
                         em_dtype_name(t->dtype));
    return EMBER_OK;
}

static inline int64_t index_at(const em_tensor *t, int64_t i) {
    return t->dtype == EMBER_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

/* Indices as int64 in [0, dim): negatives wrap once; anything outside [-dim, dim) fails. */
static ember_status load_indices(const em_node *node, const em_tensor *t, int64_t dim,
                                 int64_t *dst, ember_error *err) {
    const int64_t n = em_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t v = index_at(t, i);
        if (v < -dim || v >= dim)
            return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node,
                             "index %lld at position %lld is out of range [%lld, %lld)",
                             (long long)v, (long long)i, (long long)-dim, (long long)dim);
        dst[i] = v < 0 ? v + dim : v;
    }
    return EMBER_OK;
}

/* Row-major strides in elements. */
static void strides_of(const int64_t *dims, int rank, int64_t *st) {
    int64_t s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        st[d] = s;
        s *= dims[d];
    }
}

/* dst[i] = src[off[i]] for element size es. */
static void gather_elems(void *dst, const void *src, const int64_t *off, int64_t n, size_t es) {
#define GATHER_ELEMS(T)                                                                            \
    do {                                                                                           \
        T *restrict d = dst;                                                                       \
        const T *restrict s = src;                                                                 \
        for (int64_t i = 0; i < n; i++) d[i] = s[off[i]];                                          \
    } while (0)
    switch (es) {
    case 1: GATHER_ELEMS(uint8_t); break;
    case 2: GATHER_ELEMS(uint16_t); break;
    case 4: GATHER_ELEMS(uint32_t); break;
    default: GATHER_ELEMS(uint64_t); break;
    }
#undef GATHER_ELEMS
}

/* ------------------------------------------------------------------------------------------
 * Gather
 * ---------------------------------------------------------------------------------------- */

static ember_status gather_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1];
    if (!movable_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    EM_TRY(check_index_type(node, ind, 1, err));
    if (x->rank == 0) return node_fail(err, EMBER_ERR_SHAPE, node, "data must not be a scalar");
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    const int rank = x->rank - 1 + ind->rank;
    if (rank > EM_MAX_RANK)
        return node_fail(err, EMBER_ERR_UNSUPPORTED, node, "output rank %d is above %d", rank,
                         EM_MAX_RANK);
    int64_t dims[EM_MAX_RANK];
    int r = 0;
    for (int i = 0; i < axis; i++) dims[r++] = x->dims[i];
    for (int i = 0; i < ind->rank; i++) dims[r++] = ind->dims[i];
    for (int i = axis + 1; i < x->rank; i++) dims[r++] = x->dims[i];
    if (em_shape_numel(dims, rank) < 0)
        return node_fail(err, EMBER_ERR_LIMIT, node, "output size overflows");
    em_tensor_set_shape(&out[0], x->dtype, dims, rank);
    return EMBER_OK;
}

typedef struct gather_job {
    const char *x;
    char *y;
    const int64_t *idx;
    int64_t m, n, inner;
    size_t es;
} gather_job;

/* Rows r = o * m + i of the output: y[o, i, :] = x[o, idx[i], :]. */
static void gather_rows(void *ctx, int64_t b, int64_t e) {
    const gather_job *j = ctx;
    const size_t row = (size_t)j->inner * j->es;
    for (int64_t r = b; r < e; r++) {
        int64_t o = r / j->m, i = r % j->m;
        memcpy(j->y + (size_t)r * row, j->x + (size_t)(o * j->n + j->idx[i]) * row, row);
    }
}

static ember_status gather_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1];
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    const int64_t outer = dims_prod(x->dims, 0, axis), n = x->dims[axis];
    const int64_t inner = dims_prod(x->dims, axis + 1, x->rank), m = em_numel(ind);
    const size_t es = em_dtype_size(x->dtype);
    int64_t *idx;
    EM_TRY(scratch(ex, (size_t)m * sizeof *idx, (void **)&idx, err));
    EM_TRY(load_indices(node, ind, n, idx, err));
    if (outer * m * inner == 0) return EMBER_OK;
    if (inner == 1) { /* single elements: a typed loop per outer slice */
        for (int64_t o = 0; o < outer; o++)
            gather_elems((char *)out[0].data + (size_t)(o * m) * es,
                         (const char *)x->data + (size_t)(o * n) * es, idx, m, es);
        return EMBER_OK;
    }
    gather_job j = {x->data, out[0].data, idx, m, n, inner, es};
    const int64_t rows = outer * m;
    const int64_t row_bytes = inner * (int64_t)es;
    if (rows * row_bytes < (1 << 18)) {
        gather_rows(&j, 0, rows);
    } else {
        int64_t grain = row_bytes >= 16384 ? 1 : 16384 / row_bytes;
        em_parallel_for(ex, rows, grain, gather_rows, &j);
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * GatherElements / ScatterElements / Scatter: element offsets into data
 * ---------------------------------------------------------------------------------------- */

/* For every position p of `ind` (same rank as data, dims no larger except along axis): the
 * offset of data[p with p[axis] = index]. */
static ember_status element_offsets(const em_node *node, const em_tensor *x, const em_tensor *ind,
                                    int axis, int64_t *off, ember_error *err) {
    const int rank = x->rank;
    const int64_t n = em_numel(ind);
    if (n == 0) return EMBER_OK;
    EM_TRY(load_indices(node, ind, x->dims[axis], off, err));
    int64_t xs[EM_MAX_RANK];
    strides_of(x->dims, rank, xs);
    int64_t pos[EM_MAX_RANK] = {0};
    int64_t base = 0; /* offset of p with p[axis] = 0 */
    for (int64_t i = 0; i < n; i++) {
        off[i] = base + off[i] * xs[axis];
        for (int d = rank - 1; d >= 0; d--) {
            pos[d]++;
            if (d != axis) base += xs[d];
            if (pos[d] < ind->dims[d]) break;
            if (d != axis) base -= pos[d] * xs[d];
            pos[d] = 0;
        }
    }
    return EMBER_OK;
}

static ember_status elements_shape_check(const em_node *node, const em_tensor *x,
                                         const em_tensor *ind, int *axis, ember_error *err) {
    if (x->rank == 0) return node_fail(err, EMBER_ERR_SHAPE, node, "data must not be a scalar");
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, axis, err));
    if (ind->rank != x->rank)
        return node_fail(err, EMBER_ERR_SHAPE, node, "indices rank %d differs from data rank %d",
                         ind->rank, x->rank);
    for (int d = 0; d < x->rank; d++)
        if (d != *axis && ind->dims[d] > x->dims[d])
            return node_fail(err, EMBER_ERR_SHAPE, node,
                             "indices dim %d (%lld) is larger than data's (%lld)", d,
                             (long long)ind->dims[d], (long long)x->dims[d]);
    return EMBER_OK;
}

static ember_status gather_elements_infer(const em_node *node, void *state, em_tensor *const *in,
                                          em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1];
    if (!movable_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    EM_TRY(check_index_type(node, ind, 1, err));
    int axis;
    EM_TRY(elements_shape_check(node, x, ind, &axis, err));
    em_tensor_set_shape(&out[0], x->dtype, ind->dims, ind->rank);
    return EMBER_OK;
}

static ember_status gather_elements_run(const em_node *node, void *state, em_tensor *const *in,
                                        em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1];
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    const int64_t n = em_numel(ind);
    int64_t *off;
    EM_TRY(scratch(ex, (size_t)n * sizeof *off, (void **)&off, err));
    EM_TRY(element_offsets(node, x, ind, axis, off, err));
    gather_elems(out[0].data, x->data, off, n, em_dtype_size(x->dtype));
    return EMBER_OK;
}

/* ---- scatter reductions ---- */

typedef enum scatter_red { SR_NONE, SR_ADD, SR_MUL, SR_MAX, SR_MIN } scatter_red;

/* dst[off[i] + s] = red(dst[off[i] + s], upd[i * slice + s]) for s < slice, in order. */
#define DEF_SCATTER_ARITH(S, T, U, IS_NAN)                                                         \
    static void scatter_apply_##S(void *dv, const void *uv, const int64_t *off, int64_t n,         \
                                  int64_t slice, scatter_red red) {                                \
        T *d = dv;                                                                                 \
        const T *u = uv;                                                                           \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T *restrict dd = d + off[i];                                                           \
            const T *restrict uu = u + i * slice;                                                  \
            switch (red) {                                                                         \
            case SR_NONE: for (int64_t s = 0; s < slice; s++) dd[s] = uu[s]; break;                \
            case SR_ADD:                                                                           \
                for (int64_t s = 0; s < slice; s++) dd[s] = (T)((U)dd[s] + (U)uu[s]);              \
                break;                                                                             \
            case SR_MUL:                                                                           \
                for (int64_t s = 0; s < slice; s++) dd[s] = (T)((U)dd[s] * (U)uu[s]);              \
                break;                                                                             \
            case SR_MAX:                                                                           \
                for (int64_t s = 0; s < slice; s++)                                                \
                    if (uu[s] > dd[s] || IS_NAN(uu[s])) dd[s] = uu[s];                             \
                break;                                                                             \
            case SR_MIN:                                                                           \
                for (int64_t s = 0; s < slice; s++)                                                \
                    if (uu[s] < dd[s] || IS_NAN(uu[s])) dd[s] = uu[s];                             \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
    }

static inline bool never_nan(int64_t v) {
    (void)v;
    return false;
}
#define FLOAT_NAN(v) isnan(v)
#define INT_NAN(v) never_nan((int64_t)(v))

DEF_SCATTER_ARITH(f32, float, float, FLOAT_NAN)
DEF_SCATTER_ARITH(f64, double, double, FLOAT_NAN)
DEF_SCATTER_ARITH(i8, int8_t, unsigned, INT_NAN)
DEF_SCATTER_ARITH(u8, uint8_t, unsigned, INT_NAN)
DEF_SCATTER_ARITH(i16, int16_t, unsigned, INT_NAN)
DEF_SCATTER_ARITH(i32, int32_t, uint32_t, INT_NAN)
DEF_SCATTER_ARITH(u32, uint32_t, uint32_t, INT_NAN)
DEF_SCATTER_ARITH(i64, int64_t, uint64_t, INT_NAN)
DEF_SCATTER_ARITH(u64, uint64_t, uint64_t, INT_NAN)

/* uint16 products overflow int after promotion: widen explicitly. */
static void scatter_apply_u16(void *dv, const void *uv, const int64_t *off, int64_t n,
                              int64_t slice, scatter_red red) {
    uint16_t *d = dv;
    const uint16_t *u = uv;
    for (int64_t i = 0; i < n; i++)
        for (int64_t s = 0; s < slice; s++) {
            uint16_t *dd = d + off[i] + s;
            uint32_t a = *dd, b = u[i * slice + s];
            switch (red) {
            case SR_NONE: a = b; break;
            case SR_ADD: a = a + b; break;
            case SR_MUL: a = a * b; break;
            case SR_MAX: a = b > a ? b : a; break;
            case SR_MIN: a = b < a ? b : a; break;
            }
            *dd = (uint16_t)a;
        }
}

/* Half types: reduce in float32, round back. */
static void scatter_apply_half(void *dv, const void *uv, const int64_t *off, int64_t n,
                               int64_t slice, scatter_red red, bool bf16) {
    uint16_t *d = dv;
    const uint16_t *u = uv;
    for (int64_t i = 0; i < n; i++)
        for (int64_t s = 0; s < slice; s++) {
            uint16_t *dd = d + off[i] + s;
            uint16_t ub = u[i * slice + s];
            if (red == SR_NONE) {
                *dd = ub;
                continue;
            }
            float a = bf16 ? em_bf16_to_f32(*dd) : em_f16_to_f32(*dd);
            float b = bf16 ? em_bf16_to_f32(ub) : em_f16_to_f32(ub);
            switch (red) {
            case SR_ADD: a = a + b; break;
            case SR_MUL: a = a * b; break;
            case SR_MAX: a = (b > a || isnan(b)) ? b : a; break;
            case SR_MIN: a = (b < a || isnan(b)) ? b : a; break;
            default: break;
            }
            *dd = bf16 ? em_f32_to_bf16(a) : em_f32_to_f16(a);
        }
}

static void scatter_apply(ember_dtype dt, void *d, const void *u, const int64_t *off, int64_t n,
                          int64_t slice, scatter_red red) {
    switch (dt) {
    case EMBER_FLOAT: scatter_apply_f32(d, u, off, n, slice, red); break;
    case EMBER_DOUBLE: scatter_apply_f64(d, u, off, n, slice, red); break;
    case EMBER_INT8: scatter_apply_i8(d, u, off, n, slice, red); break;
    case EMBER_UINT8: case EMBER_BOOL: scatter_apply_u8(d, u, off, n, slice, red); break;
    case EMBER_INT16: scatter_apply_i16(d, u, off, n, slice, red); break;
    case EMBER_UINT16: scatter_apply_u16(d, u, off, n, slice, red); break;
    case EMBER_INT32: scatter_apply_i32(d, u, off, n, slice, red); break;
    case EMBER_UINT32: scatter_apply_u32(d, u, off, n, slice, red); break;
    case EMBER_INT64: scatter_apply_i64(d, u, off, n, slice, red); break;
    case EMBER_UINT64: scatter_apply_u64(d, u, off, n, slice, red); break;
    case EMBER_FLOAT16: scatter_apply_half(d, u, off, n, slice, red, false); break;
    case EMBER_BFLOAT16: scatter_apply_half(d, u, off, n, slice, red, true); break;
    default: break;
    }
}

static bool scatter_type_ok(ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT: case EMBER_DOUBLE: case EMBER_FLOAT16: case EMBER_BFLOAT16:
    case EMBER_INT8: case EMBER_UINT8: case EMBER_INT16: case EMBER_UINT16:
    case EMBER_INT32: case EMBER_UINT32: case EMBER_INT64: case EMBER_UINT64: case EMBER_BOOL:
        return true;
    default:
        return false;
    }
}

/* reduction attribute: add/mul from version 16, max/min from 18. */
static ember_status scatter_reduction(const em_node *node, ember_dtype dt, scatter_red *red,
                                      ember_error *err) {
    const int ver = op_version(node);
    const char *s = em_attr_string(node, "reduction", "none");
    if (strcmp(s, "none") == 0)
        *red = SR_NONE;
    else if (ver >= 16 && strcmp(s, "add") == 0)
        *red = SR_ADD;
    else if (ver >= 16 && strcmp(s, "mul") == 0)
        *red = SR_MUL;
    else if (ver >= 18 && strcmp(s, "max") == 0)
        *red = SR_MAX;
    else if (ver >= 18 && strcmp(s, "min") == 0)
        *red = SR_MIN;
    else
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node,
                         "reduction '%s' is not defined for %s version %d", s, node->op_type, ver);
    if (*red != SR_NONE && dt == EMBER_BOOL)
        return node_fail(err, EMBER_ERR_UNSUPPORTED, node, "reduction '%s' on bool data", s);
    return EMBER_OK;
}

static ember_status scatter_elements_infer(const em_node *node, void *state, em_tensor *const *in,
                                           em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1], *upd = in[2];
    if (!scatter_type_ok(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    EM_TRY(check_index_type(node, ind, 1, err));
    if (upd->dtype != x->dtype)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "updates type %s differs from %s",
                         em_dtype_name(upd->dtype), em_dtype_name(x->dtype));
    scatter_red red;
    EM_TRY(scatter_reduction(node, x->dtype, &red, err));
    int axis;
    EM_TRY(elements_shape_check(node, x, ind, &axis, err));
    if (!em_same_shape(ind, upd))
        return node_fail(err, EMBER_ERR_SHAPE, node, "updates and indices differ in shape");
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status scatter_elements_run(const em_node *node, void *state, em_tensor *const *in,
                                         em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1], *upd = in[2];
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    scatter_red red;
    EM_TRY(scatter_reduction(node, x->dtype, &red, err));
    const int64_t n = em_numel(ind);
    int64_t *off;
    EM_TRY(scratch(ex, (size_t)n * sizeof *off, (void **)&off, err));
    EM_TRY(element_offsets(node, x, ind, axis, off, err));
    if (out[0].data != x->data) memcpy(out[0].data, x->data, em_nbytes(x));
    scatter_apply(x->dtype, out[0].data, upd->data, off, n, 1, red);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * GatherND / ScatterND: offsets of index tuples
 * ---------------------------------------------------------------------------------------- */

/* Index tuples of length k over data dims [b, b + k), batched over the first b dims: off[t]
 * is the element offset of slice t. `tuples` is the number of tuples per batch. */
static ember_status nd_offsets(const em_node *node, const em_tensor *x, const em_tensor *ind,
                               int b, int64_t *off, ember_error *err) {
    const int q = ind->rank;
    const int64_t k = ind->dims[q - 1];
    const int64_t batches = dims_prod(x->dims, 0, b);
    const int64_t tuples = batches ? em_numel(ind) / (k ? k : 1) / batches : 0;
    int64_t xs[EM_MAX_RANK];
    strides_of(x->dims, x->rank, xs);
    const int64_t batch_stride = b > 0 ? xs[b - 1] : 0;
    for (int64_t bi = 0; bi < batches; bi++)
        for (int64_t t = 0; t < tuples; t++) {
            int64_t tt = bi * tuples + t;
            int64_t o = bi * batch_stride;
            for (int64_t j = 0; j < k; j++) {
                int64_t dim = x->dims[b + j];
                int64_t v = index_at(ind, tt * k + j);
                if (v < -dim || v >= dim)
                    return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node,
                                     "index %lld at position %lld is out of range [%lld, %lld) "
                                     "for data dim %lld",
                                     (long long)v, (long long)(tt * k + j), (long long)-dim,
                                     (long long)dim, (long long)(b + j));
                o += (v < 0 ? v + dim : v) * xs[b + j];
            }
            off[tt] = o;
        }
    return EMBER_OK;
}

static ember_status gather_nd_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1];
    if (!movable_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (ind->dtype != EMBER_INT64)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "indices must be int64, not %s",
                         em_dtype_name(ind->dtype));
    const int64_t b = op_version(node) >= 12 ? em_attr_int(node, "batch_dims", 0) : 0;
    const int r = x->rank, q = ind->rank;
    if (r < 1 || q < 1)
        return node_fail(err, EMBER_ERR_SHAPE, node, "data and indices need rank >= 1");
    if (b < 0 || b >= (r < q ? r : q))
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node,
                         "batch_dims %lld must be below both ranks (%d, %d)", (long long)b, r, q);
    const int64_t k = ind->dims[q - 1];
    if (k < 0 || k > r - b)
        return node_fail(err, EMBER_ERR_SHAPE, node,
                         "index tuples of length %lld do not fit data of rank %d (batch_dims %lld)",
                         (long long)k, r, (long long)b);
    for (int d = 0; d < b; d++)
        if (x->dims[d] != ind->dims[d])
            return node_fail(err, EMBER_ERR_SHAPE, node,
                             "batch dim %d differs: data %lld, indices %lld", d,
                             (long long)x->dims[d], (long long)ind->dims[d]);
    const int rank = q - 1 + r - (int)b - (int)k;
    if (rank > EM_MAX_RANK)
        return node_fail(err, EMBER_ERR_UNSUPPORTED, node, "output rank %d is above %d", rank,
                         EM_MAX_RANK);
    int64_t dims[EM_MAX_RANK];
    int n = 0;
    for (int d = 0; d < q - 1; d++) dims[n++] = ind->dims[d];
    for (int d = (int)(b + k); d < r; d++) dims[n++] = x->dims[d];
    em_tensor_set_shape(&out[0], x->dtype, dims, rank);
    return EMBER_OK;
}

static ember_status gather_nd_run(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1];
    const int b = op_version(node) >= 12 ? (int)em_attr_int(node, "batch_dims", 0) : 0;
    const int64_t k = ind->dims[ind->rank - 1];
    const int64_t tuples = dims_prod(ind->dims, 0, ind->rank - 1);
    const int64_t slice = dims_prod(x->dims, b + (int)k, x->rank);
    if (tuples == 0 || slice == 0) return EMBER_OK;
    int64_t *off;
    EM_TRY(scratch(ex, (size_t)tuples * sizeof *off, (void **)&off, err));
    if (k == 0) { /* whole batch slices */
        const int64_t batches = dims_prod(x->dims, 0, b);
        const int64_t per = tuples / batches;
        for (int64_t t = 0; t < tuples; t++) off[t] = (t / per) * slice;
    } else {
        EM_TRY(nd_offsets(node, x, ind, b, off, err));
    }
    const size_t es = em_dtype_size(x->dtype);
    if (slice == 1) {
        gather_elems(out[0].data, x->data, off, tuples, es);
        return EMBER_OK;
    }
    const size_t row = (size_t)slice * es;
    char *y = out[0].data;
    const char *xd = x->data;
    for (int64_t t = 0; t < tuples; t++) memcpy(y + (size_t)t * row, xd + (size_t)off[t] * es, row);
    return EMBER_OK;
}

static ember_status scatter_nd_infer(const em_node *node, void *state, em_tensor *const *in,
                                     em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1], *upd = in[2];
    if (!scatter_type_ok(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (ind->dtype != EMBER_INT64)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "indices must be int64, not %s",
                         em_dtype_name(ind->dtype));
    if (upd->dtype != x->dtype)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "updates type %s differs from %s",
                         em_dtype_name(upd->dtype), em_dtype_name(x->dtype));
    scatter_red red;
    EM_TRY(scatter_reduction(node, x->dtype, &red, err));
    const int r = x->rank, q = ind->rank;
    if (r < 1 || q < 1)
        return node_fail(err, EMBER_ERR_SHAPE, node, "data and indices need rank >= 1");
    const int64_t k = ind->dims[q - 1];
    if (k < 1 || k > r)
        return node_fail(err, EMBER_ERR_SHAPE, node,
                         "index tuples of length %lld do not fit data of rank %d", (long long)k, r);
    /* updates: indices.shape[:-1] + data.shape[k:] */
    bool ok = upd->rank == q - 1 + r - (int)k;
    for (int d = 0; ok && d < q - 1; d++) ok = upd->dims[d] == ind->dims[d];
    for (int d = 0; ok && d < r - (int)k; d++) ok = upd->dims[q - 1 + d] == x->dims[k + d];
    if (!ok) {
        char a[128];
        return node_fail(err, EMBER_ERR_SHAPE, node,
                         "updates %s must have shape indices.shape[:-1] + data.shape[%lld:]",
                         em_shape_str(upd, a, sizeof a), (long long)k);
    }
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status scatter_nd_run(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *ind = in[1], *upd = in[2];
    scatter_red red;
    EM_TRY(scatter_reduction(node, x->dtype, &red, err));
    const int64_t k = ind->dims[ind->rank - 1];
    const int64_t tuples = em_numel(ind) / k;
    const int64_t slice = dims_prod(x->dims, (int)k, x->rank);
    int64_t *off;
    EM_TRY(scratch(ex, (size_t)tuples * sizeof *off, (void **)&off, err));
    EM_TRY(nd_offsets(node, x, ind, 0, off, err));
    if (out[0].data != x->data) memcpy(out[0].data, x->data, em_nbytes(x));
    scatter_apply(x->dtype, out[0].data, upd->data, off, tuples, slice, red);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * OneHot
 * ---------------------------------------------------------------------------------------- */

static ember_status onehot_depth(const em_node *node, const em_tensor *depth, int64_t *out,
                                 ember_error *err) {
    if (!depth->data) {
        *out = -1;
        return EMBER_OK;
    }
    if (em_numel(depth) != 1)
        return node_fail(err, EMBER_ERR_SHAPE, node, "depth must hold exactly one value");
    if (em_dtype_is_float(depth->dtype)) {
        double d = em_get_f64(depth, 0);
        if (!(d >= 1 && d < 9.2e18))
            return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node, "depth %g is not positive",
                             d);
    }
    *out = em_get_i64(depth, 0);
    if (*out < 1)
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node, "depth %lld is not positive",
                         (long long)*out);
    return EMBER_OK;
}

static ember_status onehot_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *ind = in[0], *depth = in[1], *vals = in[2];
    if (!movable_type(ind->dtype)) return em_unsupported_type(node, 0, ind->dtype, err);
    if (!movable_type(depth->dtype)) return em_unsupported_type(node, 1, depth->dtype, err);
    if (!movable_type(vals->dtype)) return em_unsupported_type(node, 2, vals->dtype, err);
    if (em_numel(vals) != 2)
        return node_fail(err, EMBER_ERR_SHAPE, node, "values must hold [off_value, on_value]");
    const int rank = ind->rank + 1;
    if (rank > EM_MAX_RANK)
        return node_fail(err, EMBER_ERR_UNSUPPORTED, node, "output rank %d is above %d", rank,
                         EM_MAX_RANK);
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", -1), rank, &axis, err));
    int64_t d;
    EM_TRY(onehot_depth(node, depth, &d, err));
    if (d < 0) {
        set_unknown(&out[0], vals->dtype);
        return EMBER_OK;
    }
    int64_t dims[EM_MAX_RANK];
    int n = 0;
    for (int i = 0; i < axis; i++) dims[n++] = ind->dims[i];
    dims[n++] = d;
    for (int i = axis; i < ind->rank; i++) dims[n++] = ind->dims[i];
    if (em_shape_numel(dims, rank) < 0)
        return node_fail(err, EMBER_ERR_LIMIT, node, "output size overflows");
    em_tensor_set_shape(&out[0], vals->dtype, dims, rank);
    return EMBER_OK;
}

/* out[0..n) = the element at v. */
static void fill_elems(void *out, const void *v, int64_t n, size_t es) {
#define FILL_ELEMS(T)                                                                              \
    do {                                                                                           \
        T *restrict o = out;                                                                       \
        T x;                                                                                       \
        memcpy(&x, v, sizeof x);                                                                   \
        for (int64_t i = 0; i < n; i++) o[i] = x;                                                  \
    } while (0)
    switch (es) {
    case 1: FILL_ELEMS(uint8_t); break;
    case 2: FILL_ELEMS(uint16_t); break;
    case 4: FILL_ELEMS(uint32_t); break;
    default: FILL_ELEMS(uint64_t); break;
    }
#undef FILL_ELEMS
}

static ember_status onehot_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *ind = in[0], *depth = in[1], *vals = in[2];
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", -1), ind->rank + 1, &axis, err));
    int64_t d;
    EM_TRY(onehot_depth(node, depth, &d, err));
    const size_t es = em_dtype_size(vals->dtype);
    const int64_t n = em_numel(ind), total = em_numel(&out[0]);
    const char *off_value = vals->data, *on_value = (const char *)vals->data + es;
    fill_elems(out[0].data, off_value, total, es);
    if (n == 0) return EMBER_OK;
    int64_t *idx;
    EM_TRY(scratch(ex, (size_t)n * sizeof *idx, (void **)&idx, err));
    em_convert(idx, EMBER_INT64, ind->data, ind->dtype, n); /* floats truncate, as Cast */
    const int64_t inner = dims_prod(ind->dims, axis, ind->rank);
    char *y = out[0].data;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = idx[i];
        if (v < 0) v += d;
        if (v < 0 || v >= d) continue; /* out of range: all off_value, per the spec */
        int64_t o = i / inner, j = i % inner;
        memcpy(y + (size_t)((o * d + v) * inner + j) * es, on_value, es);
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * NonZero
 * ---------------------------------------------------------------------------------------- */

/* Nonzero flags by value: -0.0 is zero, NaN is not. */
static int64_t nonzero_flags(const em_tensor *x, uint8_t *flags) {
    const int64_t n = em_numel(x);
    int64_t count = 0;
#define NZ_LOOP(T, EXPR)                                                                           \
    do {                                                                                           \
        const T *p = x->data;                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T v = p[i];                                                                            \
            uint8_t f = (EXPR) ? 1 : 0;                                                            \
            if (flags) flags[i] = f;                                                               \
            count += f;                                                                            \
        }                                                                                          \
    } while (0)
    switch (x->dtype) {
    case EMBER_FLOAT: NZ_LOOP(float, v != 0); break;
    case EMBER_DOUBLE: NZ_LOOP(double, v != 0); break;
    case EMBER_FLOAT16: case EMBER_BFLOAT16: NZ_LOOP(uint16_t, (v & 0x7fff) != 0); break;
    default:
        switch (em_dtype_size(x->dtype)) {
        case 1: NZ_LOOP(uint8_t, v != 0); break;
        case 2: NZ_LOOP(uint16_t, v != 0); break;
        case 4: NZ_LOOP(uint32_t, v != 0); break;
        default: NZ_LOOP(uint64_t, v != 0); break;
        }
    }
#undef NZ_LOOP
    return count;
}

static ember_status nonzero_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    if (!movable_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (!x->data) {
        set_unknown(&out[0], EMBER_INT64);
        return EMBER_OK;
    }
    /* A scalar counts as a 1-D tensor of one element (as numpy's nonzero did). */
    int64_t dims[2] = {x->rank > 0 ? x->rank : 1, nonzero_flags(x, NULL)};
    em_tensor_set_shape(&out[0], EMBER_INT64, dims, 2);
    return EMBER_OK;
}

static ember_status nonzero_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    const int64_t n = em_numel(x);
    const int rank = x->rank > 0 ? x->rank : 1;
    uint8_t *flags;
    EM_TRY(scratch(ex, (size_t)n, (void **)&flags, err));
    const int64_t nnz = nonzero_flags(x, flags);
    if (out[0].dims[1] != nnz)
        return node_fail(err, EMBER_ERR_RUNTIME, node, "input changed between infer and run");
    int64_t *y = out[0].data;
    int64_t pos[EM_MAX_RANK] = {0};
    const int64_t one = 1;
    const int64_t *dims = x->rank > 0 ? x->dims : &one;
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) {
        if (flags[i]) {
            for (int d = 0; d < rank; d++) y[d * nnz + c] = pos[d];
            c++;
        }
        for (int d = rank - 1; d >= 0; d--) {
            if (++pos[d] < dims[d]) break;
            pos[d] = 0;
        }
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * Compress
 * ---------------------------------------------------------------------------------------- */

/* Number of selected slices; a condition longer than the axis may only add false entries. */
static ember_status compress_count(const em_node *node, const em_tensor *cond, int64_t len,
                                   int64_t *count, ember_error *err) {
    const uint8_t *c = cond->data;
    const int64_t n = em_numel(cond);
    *count = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!c[i]) continue;
        if (i >= len)
            return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node,
                             "condition selects entry %lld, beyond the axis length %lld",
                             (long long)i, (long long)len);
        (*count)++;
    }
    return EMBER_OK;
}

static ember_status compress_geometry(const em_node *node, const em_tensor *x, bool *has_axis,
                                      int *axis, ember_error *err) {
    const em_attr *a = em_node_attr(node, "axis");
    *has_axis = a && a->type == EM_ATTR_INT;
    *axis = 0;
    if (*has_axis) {
        if (x->rank == 0)
            return node_fail(err, EMBER_ERR_SHAPE, node, "axis given for a scalar input");
        EM_TRY(em_norm_axis(node, a->i, x->rank, axis, err));
    }
    return EMBER_OK;
}

static ember_status compress_infer(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *cond = in[1];
    if (!movable_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (cond->dtype != EMBER_BOOL) return em_unsupported_type(node, 1, cond->dtype, err);
    if (cond->rank != 1) return node_fail(err, EMBER_ERR_SHAPE, node, "condition must be 1-D");
    bool has_axis;
    int axis;
    EM_TRY(compress_geometry(node, x, &has_axis, &axis, err));
    if (!cond->data) {
        set_unknown(&out[0], x->dtype);
        return EMBER_OK;
    }
    int64_t count;
    if (!has_axis) {
        EM_TRY(compress_count(node, cond, em_numel(x), &count, err));
        em_tensor_set_shape(&out[0], x->dtype, &count, 1);
        return EMBER_OK;
    }
    EM_TRY(compress_count(node, cond, x->dims[axis], &count, err));
    int64_t dims[EM_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = count;
    em_tensor_set_shape(&out[0], x->dtype, dims, x->rank);
    return EMBER_OK;
}

static ember_status compress_run(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    const em_tensor *x = in[0], *cond = in[1];
    bool has_axis;
    int axis;
    EM_TRY(compress_geometry(node, x, &has_axis, &axis, err));
    const size_t es = em_dtype_size(x->dtype);
    const int64_t outer = has_axis ? dims_prod(x->dims, 0, axis) : 1;
    const int64_t n = has_axis ? x->dims[axis] : em_numel(x);
    const int64_t inner = has_axis ? dims_prod(x->dims, axis + 1, x->rank) : 1;
    int64_t count;
    EM_TRY(compress_count(node, cond, n, &count, err));
    const int64_t len = em_numel(cond) < n ? em_numel(cond) : n;
    const uint8_t *c = cond->data;
    const size_t row = (size_t)inner * es;
    const char *xd = x->data;
    char *y = out[0].data;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < len; i++)
            if (c[i]) {
                memcpy(y, xd + (size_t)(o * n + i) * row, row);
                y += row;
            }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * ReverseSequence
 * ---------------------------------------------------------------------------------------- */

static ember_status revseq_axes(const em_node *node, int *batch_axis, int *time_axis,
                                ember_error *err) {
    int64_t b = em_attr_int(node, "batch_axis", 1), t = em_attr_int(node, "time_axis", 0);
    if (!((b == 0 && t == 1) || (b == 1 && t == 0)))
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node,
                         "batch_axis (%lld) and time_axis (%lld) must be 0 and 1", (long long)b,
                         (long long)t);
    *batch_axis = (int)b;
    *time_axis = (int)t;
    return EMBER_OK;
}

static ember_status revseq_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *lens = in[1];
    if (!movable_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (lens->dtype != EMBER_INT64) return em_unsupported_type(node, 1, lens->dtype, err);
    int ba = 1, ta = 0;
    EM_TRY(revseq_axes(node, &ba, &ta, err));
    if (x->rank < 2) return node_fail(err, EMBER_ERR_SHAPE, node, "input needs rank >= 2");
    if (lens->rank != 1 || lens->dims[0] != x->dims[ba])
        return node_fail(err, EMBER_ERR_SHAPE, node,
                         "sequence_lens must have shape (batch) = (%lld)", (long long)x->dims[ba]);
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status revseq_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    const em_tensor *x = in[0], *lens = in[1];
    int ba = 1, ta = 0;
    EM_TRY(revseq_axes(node, &ba, &ta, err));
    const int64_t nb = x->dims[ba], nt = x->dims[ta];
    const int64_t *len = lens->data;
    for (int64_t b = 0; b < nb; b++)
        if (len[b] < 0 || len[b] > nt)
            return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node,
                             "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)b,
                             (long long)len[b], (long long)nt);
    const size_t es = em_dtype_size(x->dtype);
    const size_t row = (size_t)dims_prod(x->dims, 2, x->rank) * es;
    /* element (t, b) of the first two dims starts at row * (t * st + b * sb) */
    const int64_t st = ta == 0 ? nb : 1, sb = ba == 0 ? nt : 1;
    const char *xd = x->data;
    char *y = out[0].data;
    for (int64_t b = 0; b < nb; b++)
        for (int64_t t = 0; t < nt; t++) {
            int64_t src = t < len[b] ? len[b] - 1 - t : t;
            memcpy(y + (size_t)(t * st + b * sb) * row, xd + (size_t)(src * st + b * sb) * row,
                   row);
        }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * Unique: slices (single elements without axis) ordered by a stable merge sort, then grouped.
 * NaN sorts after every number and equals NaN, like numpy's unique.
 * ---------------------------------------------------------------------------------------- */

typedef int (*unique_cmp_fn)(const void *a, const void *b, int64_t len);

#define DEF_UNIQUE_CMP(S, T, IS_NAN)                                                               \
    static int unique_cmp_##S(const void *av, const void *bv, int64_t len) {                       \
        const T *a = av, *b = bv;                                                                  \
        for (int64_t i = 0; i < len; i++) {                                                        \
            T x = a[i], y = b[i];                                                                  \
            bool xn = IS_NAN(x), yn = IS_NAN(y);                                                   \
            if (xn || yn) {                                                                        \
                if (xn && yn) continue;                                                            \
                return xn ? 1 : -1;                                                                \
            }                                                                                      \
            if (x < y) return -1;                                                                  \
            if (x > y) return 1;                                                                   \
        }                                                                                          \
        return 0;                                                                                  \
    }

DEF_UNIQUE_CMP(f32, float, FLOAT_NAN)
DEF_UNIQUE_CMP(f64, double, FLOAT_NAN)
DEF_UNIQUE_CMP(i8, int8_t, INT_NAN)
DEF_UNIQUE_CMP(u8, uint8_t, INT_NAN)
DEF_UNIQUE_CMP(i16, int16_t, INT_NAN)
DEF_UNIQUE_CMP(u16, uint16_t, INT_NAN)
DEF_UNIQUE_CMP(i32, int32_t, INT_NAN)
DEF_UNIQUE_CMP(u32, uint32_t, INT_NAN)
DEF_UNIQUE_CMP(i64, int64_t, INT_NAN)
DEF_UNIQUE_CMP(u64, uint64_t, INT_NAN)

/* Half types compare in float32. */
static int unique_cmp_half(const uint16_t *a, const uint16_t *b, int64_t len, bool bf16) {
    for (int64_t i = 0; i < len; i++) {
        float x = bf16 ? em_bf16_to_f32(a[i]) : em_f16_to_f32(a[i]);
        float y = bf16 ? em_bf16_to_f32(b[i]) : em_f16_to_f32(b[i]);
        int c = unique_cmp_f32(&x, &y, 1);
        if (c) return c;
    }
    return 0;
}
static int unique_cmp_f16(const void *a, const void *b, int64_t len) {
    return unique_cmp_half(a, b, len, false);
}
static int unique_cmp_bf16(const void *a, const void *b, int64_t len) {
    return unique_cmp_half(a, b, len, true);
}

static unique_cmp_fn unique_cmp(ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT: return unique_cmp_f32;
    case EMBER_DOUBLE: return unique_cmp_f64;
    case EMBER_FLOAT16: return unique_cmp_f16;
    case EMBER_BFLOAT16: return unique_cmp_bf16;
    case EMBER_INT8: return unique_cmp_i8;
    case EMBER_UINT8: case EMBER_BOOL: return unique_cmp_u8;
    case EMBER_INT16: return unique_cmp_i16;
    case EMBER_UINT16: return unique_cmp_u16;
    case EMBER_INT32: return unique_cmp_i32;
    case EMBER_UINT32: return unique_cmp_u32;
    case EMBER_INT64: return unique_cmp_i64;
    case EMBER_UINT64: return unique_cmp_u64;
    default: return NULL;
    }
}

typedef struct unique_ctx {
    unique_cmp_fn cmp;
    const char *slices; /* n slices of len elements, contiguous */
    int64_t len;
    size_t slice_bytes;
} unique_ctx;

static int unique_cmp_at(const unique_ctx *c, int64_t a, int64_t b) {
    return c->cmp(c->slices + (size_t)a * c->slice_bytes, c->slices + (size_t)b * c->slice_bytes,
                  c->len);
}

/* Stable bottom-up merge sort of ord[0..n) by slice value (tmp holds n entries). */
static void unique_sort(const unique_ctx *c, int64_t *ord, int64_t *tmp, int64_t n) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = unique_cmp_at(c, ord[j], ord[i]) < 0 ? ord[j++] : ord[i++];
            while (i < mid) tmp[k++] = ord[i++];
            while (j < hi) tmp[k++] = ord[j++];
        }
        memcpy(ord, tmp, (size_t)n * sizeof *ord);
    }
}

typedef struct unique_result {
    int64_t n_unique;
    int64_t *first;   /* per unique, in output order: first occurrence */
    int64_t *counts;  /* per unique */
    int64_t *inverse; /* per slice: its unique's output position */
} unique_result;

typedef struct unique_geom {
    bool has_axis;
    int axis;
    int64_t outer, n, inner; /* slices i of x: elements [o, i, j] */
} unique_geom;

static ember_status unique_geometry(const em_node *node, const em_tensor *x, unique_geom *g,
                                    ember_error *err) {
    const em_attr *a = em_node_attr(node, "axis");
    g->has_axis = a && a->type == EM_ATTR_INT;
    g->axis = 0;
    if (g->has_axis) {
        if (x->rank == 0) return node_fail(err, EMBER_ERR_SHAPE, node, "axis given for a scalar");
        EM_TRY(em_norm_axis(node, a->i, x->rank, &g->axis, err));
        g->outer = dims_prod(x->dims, 0, g->axis);
        g->n = x->dims[g->axis];
        g->inner = dims_prod(x->dims, g->axis + 1, x->rank);
    } else {
        g->outer = 1;
        g->n = em_numel(x);
        g->inner = 1;
    }
    return EMBER_OK;
}

/* Everything Unique needs, in scratch memory (exec may be NULL only during infer, where a
 * plain heap buffer is used and freed by the caller through *heap). */
static ember_status unique_compute(const em_node *node, const em_tensor *x, const unique_geom *g,
                                   em_exec *ex, void **heap, const char **slices_out,
                                   unique_result *r, ember_error *err) {
    const size_t es = em_dtype_size(x->dtype);
    const int64_t n = g->n, len = g->outer * g->inner;
    const size_t slice_bytes = (size_t)len * es;
    /* one block: slices (when gathered), ord, tmp, first, counts, inverse */
    const bool gather_slices = g->has_axis && g->outer > 1;
    size_t need = (size_t)n * sizeof(int64_t) * 5 + (gather_slices ? (size_t)n * slice_bytes : 0);
    char *mem;
    if (ex) {
        EM_TRY(scratch(ex, need, (void **)&mem, err));
    } else {
        mem = malloc(need ? need : 1);
        if (!mem) return node_fail(err, EMBER_ERR_OUT_OF_MEMORY, node, "out of memory");
        *heap = mem;
    }
    int64_t *ord = (int64_t *)mem, *tmp = ord + n;
    r->first = tmp + n;
    r->counts = r->first + n;
    r->inverse = r->counts + n;
    const char *slices = x->data;
    if (gather_slices) { /* slice i = x[:, i, :] flattened, outer-major */
        char *s = (char *)(r->inverse + n);
        const char *xd = x->data;
        const size_t irow = (size_t)g->inner * es;
        for (int64_t i = 0; i < n; i++)
            for (int64_t o = 0; o < g->outer; o++)
                memcpy(s + (size_t)i * slice_bytes + (size_t)o * irow,
                       xd + (size_t)(o * n + i) * irow, irow);
        slices = s;
    }
    *slices_out = slices;
    unique_ctx c = {unique_cmp(x->dtype), slices, len, slice_bytes};
    for (int64_t i = 0; i < n; i++) ord[i] = i;
    unique_sort(&c, ord, tmp, n);
    /* groups in sorted order; stability puts each group's first occurrence first */
    int64_t u = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || unique_cmp_at(&c, ord[i - 1], ord[i]) != 0) {
            r->first[u] = ord[i];
            r->counts[u] = 0;
            u++;
        }
        r->counts[u - 1]++;
        tmp[ord[i]] = u - 1; /* group of slice ord[i] */
    }
    r->n_unique = u;
    const bool sorted = em_attr_int(node, "sorted", 1) != 0;
    if (!sorted) { /* order groups by first occurrence: walk the slices in order */
        int64_t *rank_of = ord; /* reuse: group -> output position, -1 unseen */
        for (int64_t k = 0; k < u; k++) rank_of[k] = -1;
        int64_t next = 0;
        int64_t *nf = r->inverse; /* temporary for first / counts in new order */
        for (int64_t i = 0; i < n; i++) {
            int64_t grp = tmp[i];
            if (rank_of[grp] < 0) rank_of[grp] = next++;
        }
        for (int64_t k = 0; k < u; k++) nf[rank_of[k]] = r->first[k];
        memcpy(r->first, nf, (size_t)u * sizeof *nf);
        for (int64_t k = 0; k < u; k++) nf[rank_of[k]] = r->counts[k];
        memcpy(r->counts, nf, (size_t)u * sizeof *nf);
        for (int64_t i = 0; i < n; i++) r->inverse[i] = rank_of[tmp[i]];
    } else {
        memcpy(r->inverse, tmp, (size_t)n * sizeof *tmp);
    }
    return EMBER_OK;
}

static ember_status unique_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    if (!unique_cmp(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    unique_geom g;
    EM_TRY(unique_geometry(node, x, &g, err));
    for (int k = 1; k < node->n_outputs && k < 4; k++) set_unknown(&out[k], EMBER_INT64);
    if (!x->data) {
        set_unknown(&out[0], x->dtype);
        return EMBER_OK;
    }
    void *heap = NULL;
    const char *slices;
    unique_result r;
    ember_status st = unique_compute(node, x, &g, NULL, &heap, &slices, &r, err);
    free(heap);
    EM_TRY(st);
    int64_t dims[EM_MAX_RANK];
    if (g.has_axis) {
        memcpy(dims, x->dims, sizeof dims);
        dims[g.axis] = r.n_unique;
        em_tensor_set_shape(&out[0], x->dtype, dims, x->rank);
    } else {
        em_tensor_set_shape(&out[0], x->dtype, &r.n_unique, 1);
    }
    if (node->n_outputs > 1) em_tensor_set_shape(&out[1], EMBER_INT64, &r.n_unique, 1);
    if (node->n_outputs > 2) em_tensor_set_shape(&out[2], EMBER_INT64, &g.n, 1);
    if (node->n_outputs > 3) em_tensor_set_shape(&out[3], EMBER_INT64, &r.n_unique, 1);
    return EMBER_OK;
}

static ember_status unique_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    unique_geom g;
    EM_TRY(unique_geometry(node, x, &g, err));
    const char *slices;
    unique_result r;
    EM_TRY(unique_compute(node, x, &g, ex, NULL, &slices, &r, err));
    if (out[0].rank < 1 || out[0].dims[g.has_axis ? g.axis : 0] != r.n_unique)
        return node_fail(err, EMBER_ERR_RUNTIME, node, "input changed between infer and run");
    const size_t es = em_dtype_size(x->dtype);
    const size_t irow = (size_t)g.inner * es, slice_bytes = (size_t)g.outer * irow;
    char *y = out[0].data;
    /* Y[o, u, :] = slice first[u], part o */
    for (int64_t u = 0; u < r.n_unique; u++)
        for (int64_t o = 0; o < g.outer; o++)
            memcpy(y + (size_t)(o * r.n_unique + u) * irow,
                   slices + (size_t)r.first[u] * slice_bytes + (size_t)o * irow, irow);
    const size_t ub = (size_t)r.n_unique * sizeof(int64_t);
    if (has_output(node, out, 1)) memcpy(out[1].data, r.first, ub);
    if (has_output(node, out, 2)) memcpy(out[2].data, r.inverse, (size_t)g.n * sizeof(int64_t));
    if (has_output(node, out, 3)) memcpy(out[3].data, r.counts, ub);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------ */

static const em_op k_gather_ops[] = {
    {"", "Gather", 1, 13, NULL, gather_infer, gather_run, NULL, 0},
    {"", "GatherElements", 11, 13, NULL, gather_elements_infer, gather_elements_run, NULL, 0},
    {"", "GatherND", 11, 13, NULL, gather_nd_infer, gather_nd_run, NULL, 0},
    {"", "ScatterElements", 11, 18, NULL, scatter_elements_infer, scatter_elements_run, NULL,
     EM_OP_INPLACE_OK},
    {"", "Scatter", 9, 11, NULL, scatter_elements_infer, scatter_elements_run, NULL,
     EM_OP_INPLACE_OK},
    {"", "ScatterND", 11, 18, NULL, scatter_nd_infer, scatter_nd_run, NULL, EM_OP_INPLACE_OK},
    {"", "OneHot", 9, 11, NULL, onehot_infer, onehot_run, NULL, 0},
    {"", "NonZero", 9, 13, NULL, nonzero_infer, nonzero_run, NULL, 0},
    {"", "Compress", 9, 11, NULL, compress_infer, compress_run, NULL, 0},
    {"", "ReverseSequence", 10, 10, NULL, revseq_infer, revseq_run, NULL, 0},
    {"", "Unique", 11, 11, NULL, unique_infer, unique_run, NULL, 0},
};

EM_OPS_FAMILY(gather) {
    *count = sizeof k_gather_ops / sizeof k_gather_ops[0];
    return k_gather_ops;
}
