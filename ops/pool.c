/* Pooling: MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool, GlobalLpPool and
 * MaxUnpool.
 *
 * Layout is always NC + spatial dims. Every kernel works plane by plane (one (n, c) pair), so
 * planes are the unit of parallel work. float32 2-D pooling without dilation and without the
 * Indices output takes a fast path whose inner loops run over contiguous output rows (MaxPool
 * with column stride 2 and a 2- or 3-wide kernel on the AVX-512 kernel of pool_max512.c); all
 * other cases go through a generic N-D path. float16 / bfloat16 are computed in float32. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"
#include "linalg.h"
#include "pool_max512.h"

#define POOL_MAX_SPATIAL (EM_MAX_RANK - 2)
/* Bound on kernel, stride, dilation and pad values, so geometry arithmetic cannot overflow. */
#define POOL_ATTR_LIMIT ((int64_t)1 << 31)

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_LP } pool_kind;

typedef enum auto_pad_mode {
    AUTO_PAD_NOTSET,
    AUTO_PAD_SAME_UPPER,
    AUTO_PAD_SAME_LOWER,
    AUTO_PAD_VALID,
} auto_pad_mode;

/* Pooling attributes, parsed from the node. */
typedef struct pool_attrs {
    pool_kind kind;
    int nsp; /* number of spatial dims */
    int64_t kernel[POOL_MAX_SPATIAL];
    int64_t stride[POOL_MAX_SPATIAL];
    int64_t dilation[POOL_MAX_SPATIAL];
    int64_t pads[2 * POOL_MAX_SPATIAL];
    auto_pad_mode auto_pad;
    bool ceil_mode;
    bool count_include_pad;
    bool column_major; /* MaxPool storage_order = 1 */
    double p;          /* LpPool norm */
} pool_attrs;

/* Attributes resolved against an input shape. */
typedef struct pool_geom {
    pool_attrs a;
    int64_t planes; /* N * C */
    int64_t in[POOL_MAX_SPATIAL];
    int64_t out[POOL_MAX_SPATIAL];
    int64_t pad_begin[POOL_MAX_SPATIAL];
    int64_t pad_end[POOL_MAX_SPATIAL];
    int64_t in_plane, out_plane;
} pool_geom;

static const char *desc(const em_node *node, char *buf, size_t size) {
    return em_node_desc(node, buf, size);
}

/* Read an INTS attribute of exactly `want` values in [lo, POOL_ATTR_LIMIT) into dst; keep dst
 * (the defaults) when the attribute is absent. */
static ember_status read_ints(const em_node *node, const char *name, int want, int64_t lo,
                              int64_t *dst, ember_error *err) {
    char buf[160];
    int64_t n = 0;
    const int64_t *v = em_attr_ints(node, name, &n);
    if (!v) {
        if (em_node_attr(node, name))
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: attribute '%s' must be a list of ints",
                           desc(node, buf, sizeof buf), name);
        return EMBER_OK;
    }
    if (n != want)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: attribute '%s' has %lld values, expected %d",
                       desc(node, buf, sizeof buf), name, (long long)n, want);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] < lo || v[i] >= POOL_ATTR_LIMIT)
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: attribute '%s' value %lld is out of range (must be >= %lld)",
                           desc(node, buf, sizeof buf), name, (long long)v[i], (long long)lo);
        dst[i] = v[i];
    }
    return EMBER_OK;
}

static ember_status parse_auto_pad(const em_node *node, auto_pad_mode *mode, ember_error *err) {
    const char *s = em_attr_string(node, "auto_pad", "NOTSET");
    if (strcmp(s, "NOTSET") == 0 || s[0] == '\0') *mode = AUTO_PAD_NOTSET;
    else if (strcmp(s, "SAME_UPPER") == 0) *mode = AUTO_PAD_SAME_UPPER;
    else if (strcmp(s, "SAME_LOWER") == 0) *mode = AUTO_PAD_SAME_LOWER;
    else if (strcmp(s, "VALID") == 0) *mode = AUTO_PAD_VALID;
    else {
        char buf[160];
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: unknown auto_pad '%s'",
                       desc(node, buf, sizeof buf), s);
    }
    return EMBER_OK;
}

/* LpPool / GlobalLpPool norm: a float attribute in version 1, an int later; default 2. */
static ember_status read_p(const em_node *node, double *p, ember_error *err) {
    const em_attr *pa = em_node_attr(node, "p");
    *p = 2.0;
    if (pa && pa->type == EM_ATTR_INT) *p = (double)pa->i;
    else if (pa && pa->type == EM_ATTR_FLOAT) *p = pa->f;
    if (!(*p > 0.0) || !isfinite(*p)) {
        char buf[160];
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: p must be positive, got %g",
                       desc(node, buf, sizeof buf), *p);
    }
    return EMBER_OK;
}

static ember_status parse_pool_attrs(const em_node *node, pool_kind kind, pool_attrs *a,
                                     ember_error *err) {
    char buf[160];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    int64_t nk = 0;
    const int64_t *k = em_attr_ints(node, "kernel_shape", &nk);
    if (!k || nk < 1)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: attribute 'kernel_shape' is required",
                       desc(node, buf, sizeof buf));
    if (nk > POOL_MAX_SPATIAL)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: %lld spatial dims (at most %d supported)",
                       desc(node, buf, sizeof buf), (long long)nk, POOL_MAX_SPATIAL);
    a->nsp = (int)nk;
    for (int i = 0; i < a->nsp; i++) {
        a->stride[i] = 1;
        a->dilation[i] = 1;
    }
    EM_TRY(read_ints(node, "kernel_shape", a->nsp, 1, a->kernel, err));
    EM_TRY(read_ints(node, "strides", a->nsp, 1, a->stride, err));
    EM_TRY(read_ints(node, "dilations", a->nsp, 1, a->dilation, err));
    EM_TRY(read_ints(node, "pads", 2 * a->nsp, 0, a->pads, err));
    EM_TRY(parse_auto_pad(node, &a->auto_pad, err));
    int64_t ceil_mode = em_attr_int(node, "ceil_mode", 0);
    int64_t include_pad = em_attr_int(node, "count_include_pad", 0);
    int64_t order = em_attr_int(node, "storage_order", 0);
    if ((ceil_mode != 0 && ceil_mode != 1) || (include_pad != 0 && include_pad != 1) ||
        (order != 0 && order != 1))
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: ceil_mode, count_include_pad and storage_order must be 0 or 1",
                       desc(node, buf, sizeof buf));
    a->ceil_mode = ceil_mode;
    a->count_include_pad = include_pad;
    a->column_major = order;
    if (kind == POOL_LP) EM_TRY(read_p(node, &a->p, err));
    return EMBER_OK;
}

/* Resolve attributes against input dims (NC + spatial). A spatial dim < 0 (unknown during
 * static inference) gives an unknown output dim. */
static ember_status resolve_geom(const em_node *node, const pool_attrs *a, const em_tensor *x,
                                 pool_geom *g, ember_error *err) {
    char buf[160];
    if (x->rank != a->nsp + 2)
        return em_fail(err, EMBER_ERR_SHAPE,
                       "%s: input has rank %d but kernel_shape has %d dims (expected rank %d)",
                       desc(node, buf, sizeof buf), x->rank, a->nsp, a->nsp + 2);
    memset(g, 0, sizeof *g);
    g->a = *a;
    for (int i = 0; i < a->nsp; i++) {
        int64_t in = x->dims[i + 2];
        int64_t k = a->kernel[i], s = a->stride[i];
        int64_t eff = (k - 1) * a->dilation[i] + 1;
        int64_t pb = 0, pe = 0, out = -1;
        g->in[i] = in;
        switch (a->auto_pad) {
        case AUTO_PAD_NOTSET:
            pb = a->pads[i];
            pe = a->pads[i + a->nsp];
            if (pb >= eff || pe >= eff)
                return em_fail(err, EMBER_ERR_INVALID_MODEL,
                               "%s: pads (%lld, %lld) of spatial axis %d must be smaller than the "
                               "kernel extent %lld",
                               desc(node, buf, sizeof buf), (long long)pb, (long long)pe, i,
                               (long long)eff);
            if (in >= 0) {
                int64_t span = in + pb + pe - eff;
                if (span < 0)
                    return em_fail(err, EMBER_ERR_SHAPE,
                                   "%s: kernel extent %lld exceeds padded input size %lld on "
                                   "spatial axis %d",
                                   desc(node, buf, sizeof buf), (long long)eff,
                                   (long long)(in + pb + pe), i);
                if (a->ceil_mode) {
                    out = (span + s - 1) / s + 1;
                    /* A window may not start inside the end padding. */
                    if ((out - 1) * s >= in + pb) out--;
                } else {
                    out = span / s + 1;
                }
            }
            break;
        case AUTO_PAD_VALID:
            if (in >= 0) {
                if (in < eff)
                    return em_fail(err, EMBER_ERR_SHAPE,
                                   "%s: kernel extent %lld exceeds input size %lld on spatial "
                                   "axis %d (auto_pad VALID)",
                                   desc(node, buf, sizeof buf), (long long)eff, (long long)in, i);
                out = (in - eff) / s + 1;
            }
            break;
        case AUTO_PAD_SAME_UPPER:
        case AUTO_PAD_SAME_LOWER:
            if (in >= 0) {
                out = (in + s - 1) / s;
                int64_t total = (out - 1) * s + eff - in;
                if (total < 0) total = 0;
                int64_t small = total / 2;
                pb = a->auto_pad == AUTO_PAD_SAME_UPPER ? small : total - small;
                pe = total - pb;
            }
            break;
        }
        g->out[i] = out;
        g->pad_begin[i] = pb;
        g->pad_end[i] = pe;
    }
    return EMBER_OK;
}

/* Output dims N, C, out... (unknown stays -1). */
static void geom_out_dims(const pool_geom *g, const em_tensor *x, int64_t *dims) {
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int i = 0; i < g->a.nsp; i++) dims[i + 2] = g->out[i];
}

/* Fill planes / plane sizes once every dim is known (run time). */
static ember_status geom_finish(const em_node *node, pool_geom *g, const em_tensor *x,
                                ember_error *err) {
    int64_t out_dims[EM_MAX_RANK];
    geom_out_dims(g, x, out_dims);
    int rank = g->a.nsp + 2;
    if (em_shape_numel(x->dims, rank) < 0 || em_shape_numel(out_dims, rank) < 0) {
        char buf[160];
        return em_fail(err, EMBER_ERR_SHAPE, "%s: tensor size overflows",
                       desc(node, buf, sizeof buf));
    }
    g->planes = x->dims[0] * x->dims[1];
    g->in_plane = em_shape_numel(x->dims + 2, g->a.nsp);
    g->out_plane = em_shape_numel(out_dims + 2, g->a.nsp);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Window tables: for every spatial axis and output index, the first valid input coordinate,
 * the number of valid taps and the divisor contribution (taps inside input + pads).
 * ------------------------------------------------------------------------------------------- */

typedef struct axis_table {
    int64_t *first;    /* first tap's input coordinate */
    int64_t *taps;     /* taps inside the input */
    int64_t *padded;   /* taps inside input + pads (count_include_pad divisor) */
} axis_table;

static void fill_axis_table(const pool_geom *g, int i, axis_table *t) {
    int64_t k = g->a.kernel[i], d = g->a.dilation[i], in = g->in[i];
    for (int64_t o = 0; o < g->out[i]; o++) {
        int64_t start = o * g->a.stride[i] - g->pad_begin[i];
        int64_t jlo = start < 0 ? (-start + d - 1) / d : 0;
        int64_t jhi = in - start <= 0 ? 0 : (in - start + d - 1) / d;
        if (jhi > k) jhi = k;
        int64_t phi = (in + g->pad_end[i] - start + d - 1) / d;
        if (phi > k) phi = k;
        t->first[o] = start + jlo * d;
        t->taps[o] = jhi > jlo ? jhi - jlo : 0;
        t->padded[o] = phi;
    }
}

typedef struct pool_ctx {
    const pool_geom *g;
    ember_dtype dtype;
    const void *x;
    void *y;
    int64_t *indices; /* MaxPool second output, or NULL */
    axis_table tables[POOL_MAX_SPATIAL];
    int64_t in_stride[POOL_MAX_SPATIAL]; /* row-major strides of the input plane */
    int64_t col_stride[POOL_MAX_SPATIAL]; /* column-major strides (storage_order = 1) */
} pool_ctx;

/* Window of one output position: taps per axis, starting offset and per-axis step. */
typedef struct window {
    int64_t base;
    int64_t count[POOL_MAX_SPATIAL];
    int64_t step[POOL_MAX_SPATIAL];
    int64_t rows;    /* product of counts over all axes but the last */
    double divisor;  /* AveragePool divisor */
} window;

static void window_at(const pool_ctx *c, const int64_t *opos, window *w) {
    const pool_geom *g = c->g;
    int nsp = g->a.nsp;
    w->base = 0;
    w->rows = 1;
    double valid = 1.0, padded = 1.0;
    for (int i = 0; i < nsp; i++) {
        const axis_table *t = &c->tables[i];
        int64_t o = opos[i];
        w->count[i] = t->taps[o];
        w->step[i] = g->a.dilation[i] * c->in_stride[i];
        w->base += t->first[o] * c->in_stride[i];
        if (i < nsp - 1) w->rows *= t->taps[o];
        valid *= (double)t->taps[o];
        padded *= (double)t->padded[o];
    }
    w->divisor = g->a.count_include_pad ? padded : valid;
}

/* Offset of the first tap of window row r (rows enumerate all axes but the last). */
static int64_t window_row(const window *w, int nsp, int64_t r) {
    int64_t off = w->base;
    for (int i = nsp - 2; i >= 0; i--) {
        int64_t ci = w->count[i];
        off += (r % ci) * w->step[i];
        r /= ci;
    }
    return off;
}

static void next_position(int64_t *opos, const int64_t *out, int nsp) {
    for (int i = nsp - 1; i >= 0; i--) {
        if (++opos[i] < out[i]) return;
        opos[i] = 0;
    }
}

/* Convert a row-major offset inside a plane to the storage_order = 1 offset. */
static int64_t to_column_major(const pool_ctx *c, int64_t off) {
    int nsp = c->g->a.nsp;
    int64_t res = 0;
    for (int i = 0; i < nsp; i++) {
        int64_t coord = off / c->in_stride[i];
        off -= coord * c->in_stride[i];
        res += coord * c->col_stride[i];
    }
    return res;
}

/* Generic N-D kernels, one per element type. Max ignores NaN (as a comparison-based max
 * does); an all-padding window (possible only with dilation) gives the lowest value. */
#define DEFINE_MAX_GENERIC(SUFFIX, T, LOWEST)                                                     \
    static void max_generic_##SUFFIX(const pool_ctx *c, int64_t p0, int64_t p1) {                 \
        const pool_geom *g = c->g;                                                                \
        int nsp = g->a.nsp;                                                                       \
        int64_t last_step = g->a.dilation[nsp - 1];                                               \
        for (int64_t p = p0; p < p1; p++) {                                                       \
            const T *xp = (const T *)c->x + p * g->in_plane;                                      \
            T *yp = (T *)c->y + p * g->out_plane;                                                 \
            int64_t *ip = c->indices ? c->indices + p * g->out_plane : NULL;                      \
            int64_t opos[POOL_MAX_SPATIAL] = {0};                                                 \
            for (int64_t o = 0; o < g->out_plane; o++) {                                          \
                window w;                                                                         \
                window_at(c, opos, &w);                                                           \
                T best = LOWEST;                                                                  \
                int64_t best_off = -1;                                                            \
                int64_t n_last = w.count[nsp - 1];                                                \
                if (n_last > 0) {                                                                 \
                    for (int64_t r = 0; r < w.rows; r++) {                                        \
                        int64_t off = window_row(&w, nsp, r);                                     \
                        for (int64_t t = 0; t < n_last; t++) {                                    \
                            T v = xp[off + t * last_step];                                        \
                            if (v > best || best_off < 0) {                                       \
                                if (v == v) {                                                     \
                                    best = v;                                                     \
                                    best_off = off + t * last_step;                               \
                                }                                                                 \
                            }                                                                     \
                        }                                                                         \
                    }                                                                             \
                }                                                                                 \
                yp[o] = best;                                                                     \
                if (ip) {                                                                         \
                    if (best_off < 0) best_off = w.base;                                          \
                    ip[o] = p * g->in_plane +                                                     \
                            (g->a.column_major ? to_column_major(c, best_off) : best_off);        \
                }                                                                                 \
                next_position(opos, g->out, nsp);                                                 \
            }                                                                                     \
        }                                                                                         \
    }

DEFINE_MAX_GENERIC(f32, float, -INFINITY)
DEFINE_MAX_GENERIC(f64, double, -INFINITY)
DEFINE_MAX_GENERIC(i8, int8_t, INT8_MIN)
DEFINE_MAX_GENERIC(u8, uint8_t, 0)

/* AveragePool and LpPool accumulate in double on the generic path. */
#define DEFINE_SUM_GENERIC(SUFFIX, T)                                                             \
    static void sum_generic_##SUFFIX(const pool_ctx *c, int64_t p0, int64_t p1) {                 \
        const pool_geom *g = c->g;                                                                \
        int nsp = g->a.nsp;                                                                       \
        int64_t last_step = g->a.dilation[nsp - 1];                                               \
        bool lp = g->a.kind == POOL_LP;                                                           \
        double p_norm = g->a.p;                                                                   \
        for (int64_t p = p0; p < p1; p++) {                                                       \
            const T *xp = (const T *)c->x + p * g->in_plane;                                      \
            T *yp = (T *)c->y + p * g->out_plane;                                                 \
            int64_t opos[POOL_MAX_SPATIAL] = {0};                                                 \
            for (int64_t o = 0; o < g->out_plane; o++) {                                          \
                window w;                                                                         \
                window_at(c, opos, &w);                                                           \
                double acc = 0.0;                                                                 \
                int64_t n_last = w.count[nsp - 1];                                                \
                if (n_last > 0) {                                                                 \
                    for (int64_t r = 0; r < w.rows; r++) {                                        \
                        int64_t off = window_row(&w, nsp, r);                                     \
                        for (int64_t t = 0; t < n_last; t++) {                                    \
                            double v = (double)xp[off + t * last_step];                           \
                            if (!lp) acc += v;                                                    \
                            else if (p_norm == 2.0) acc += v * v;                                 \
                            else if (p_norm == 1.0) acc += fabs(v);                               \
                            else acc += pow(fabs(v), p_norm);                                     \
                        }                                                                         \
                    }                                                                             \
                }                                                                                 \
                double res;                                                                       \
                if (lp) res = p_norm == 2.0 ? sqrt(acc) : p_norm == 1.0 ? acc                     \
                                                                        : pow(acc, 1.0 / p_norm); \
                else res = w.divisor > 0 ? acc / w.divisor : 0.0;                                 \
                yp[o] = (T)res;                                                                   \
                next_position(opos, g->out, nsp);                                                 \
            }                                                                                     \
        }                                                                                         \
    }

DEFINE_SUM_GENERIC(f32, float)
DEFINE_SUM_GENERIC(f64, double)

/* ---------------------------------------------------------------------------------------------
 * float32 2-D fast path (1-D runs as H = 1). No dilation, no Indices output.
 * For each output row, the rows of its window are folded into the output row with inner
 * loops over output columns; the columns whose window lies fully inside the input form a
 * branch-free interior loop.
 * ------------------------------------------------------------------------------------------- */

typedef struct plane2d {
    int64_t H, W, OH, OW, KH, KW, SH, SW, PT, PL, PB, PR;
    int64_t ow_lo, ow_hi; /* interior output columns */
    bool include_pad;
} plane2d;

static void plane2d_from_geom(const pool_geom *g, plane2d *q) {
    bool one_d = g->a.nsp == 1;
    int h = 0, w = one_d ? 0 : 1;
    q->H = one_d ? 1 : g->in[h];
    q->OH = one_d ? 1 : g->out[h];
    q->KH = one_d ? 1 : g->a.kernel[h];
    q->SH = one_d ? 1 : g->a.stride[h];
    q->PT = one_d ? 0 : g->pad_begin[h];
    q->PB = one_d ? 0 : g->pad_end[h];
    q->W = g->in[w];
    q->OW = g->out[w];
    q->KW = g->a.kernel[w];
    q->SW = g->a.stride[w];
    q->PL = g->pad_begin[w];
    q->PR = g->pad_end[w];
    q->include_pad = g->a.count_include_pad;
    /* Interior: ow * SW - PL >= 0 and ow * SW - PL + KW <= W. */
    int64_t lo = (q->PL + q->SW - 1) / q->SW;
    int64_t hi = q->W - q->KW + q->PL >= 0 ? (q->W - q->KW + q->PL) / q->SW + 1 : 0;
    if (hi > q->OW) hi = q->OW;
    if (lo > hi) lo = hi;
    q->ow_lo = lo;
    q->ow_hi = hi;
}

/* Rows of the fast path fit this many columns in a stack buffer; wider inputs fold input
 * rows straight into the output row. */
#define POOL_ROW_MAX 4096

/* The row helpers are inlined into pool2d_plane_f32, whose clones compile them for AVX-512 /
 * AVX2 (the stride-2 column pass of MaxPool 3x3/2 needs the wide permutes to vectorize). */
#define POOL_INLINE __attribute__((always_inline))

/* Reduce input rows [hs, he) into tmp (max or sum): contiguous, vectorizes. */
static inline POOL_INLINE void fold_rows_f32(const float *restrict x, int64_t W, int64_t hs, int64_t he, bool max,
                          float *restrict tmp) {
    const float *restrict r0 = x + hs * W;
    for (int64_t w = 0; w < W; w++) tmp[w] = r0[w];
    for (int64_t h = hs + 1; h < he; h++) {
        const float *restrict r = x + h * W;
        if (max)
            for (int64_t w = 0; w < W; w++) tmp[w] = r[w] > tmp[w] ? r[w] : tmp[w];
        else
            for (int64_t w = 0; w < W; w++) tmp[w] += r[w];
    }
}

/* Horizontal pass over one (folded) row: yr[ow] op= row[ow * SW - PL + kw], kw < KW. With
 * `init`, the interior columns are first set from kw = 0. */
static inline POOL_INLINE void fold_cols_f32(const plane2d *q, const float *restrict row, bool max, bool init,
                          float *restrict yr) {
    const int64_t W = q->W, KW = q->KW, SW = q->SW, PL = q->PL, lo = q->ow_lo, hi = q->ow_hi;
    for (int64_t ow = 0; ow < q->OW; ow++) {
        if (ow == lo) ow = hi;
        if (ow >= q->OW) break;
        int64_t w0 = ow * SW - PL;
        int64_t ws = w0 < 0 ? 0 : w0, we = w0 + KW > W ? W : w0 + KW;
        float a = init ? (max ? -INFINITY : 0.0f) : yr[ow];
        for (int64_t w = ws; w < we; w++) a = max ? (row[w] > a ? row[w] : a) : a + row[w];
        yr[ow] = a;
    }
    /* No interior column (a kernel wider than the input): the loop over KW below would spin
     * through up to 2^31 taps doing nothing (fuzzer: 60+ s for a 100-byte model). */
    if (lo >= hi) return;
    const float *restrict xs = row - PL;
    int64_t k0 = 0;
    if (init) {
        for (int64_t ow = lo; ow < hi; ow++) yr[ow] = xs[SW * ow];
        k0 = 1;
    }
    for (int64_t kw = k0; kw < KW; kw++) {
        const float *restrict xk = xs + kw;
        if (max) {
            if (SW == 1)
                for (int64_t ow = lo; ow < hi; ow++) yr[ow] = xk[ow] > yr[ow] ? xk[ow] : yr[ow];
            else if (SW == 2)
                for (int64_t ow = lo; ow < hi; ow++)
                    yr[ow] = xk[2 * ow] > yr[ow] ? xk[2 * ow] : yr[ow];
            else
                for (int64_t ow = lo; ow < hi; ow++)
                    yr[ow] = xk[SW * ow] > yr[ow] ? xk[SW * ow] : yr[ow];
        } else {
            if (SW == 1)
                for (int64_t ow = lo; ow < hi; ow++) yr[ow] += xk[ow];
            else if (SW == 2)
                for (int64_t ow = lo; ow < hi; ow++) yr[ow] += xk[2 * ow];
            else
                for (int64_t ow = lo; ow < hi; ow++) yr[ow] += xk[SW * ow];
        }
    }
}

/* AveragePool divisors of one output row. */
static inline POOL_INLINE void avg_divide_f32(const plane2d *q, int64_t h0, int64_t hs, int64_t he,
                           float *restrict yr) {
    const int64_t W = q->W, KW = q->KW, SW = q->SW, PL = q->PL;
    int64_t hpe = h0 + q->KH > q->H + q->PB ? q->H + q->PB : h0 + q->KH;
    int64_t rows = q->include_pad ? hpe - h0 : he - hs;
    for (int64_t ow = 0; ow < q->OW; ow++) {
        int64_t w0 = ow * SW - PL;
        int64_t cols;
        if (q->include_pad) {
            int64_t wpe = w0 + KW > W + q->PR ? W + q->PR : w0 + KW;
            cols = wpe - w0;
        } else {
            int64_t ws = w0 < 0 ? 0 : w0, we = w0 + KW > W ? W : w0 + KW;
            cols = we - ws;
        }
        int64_t count = rows * cols;
        yr[ow] = count > 0 ? yr[ow] / (float)count : 0.0f;
    }
}

/* One plane: for each output row, fold its window's input rows (into tmp when the row fits,
 * else one by one into the output row), then the columns. Windows are never empty here
 * (pads < kernel, no dilation). */
EM_VECTOR_CLONES
static void pool2d_plane_f32(const plane2d *q, bool max, const float *restrict x,
                             float *restrict y, float *restrict tmp) {
    for (int64_t oh = 0; oh < q->OH; oh++) {
        int64_t h0 = oh * q->SH - q->PT;
        int64_t hs = h0 < 0 ? 0 : h0, he = h0 + q->KH > q->H ? q->H : h0 + q->KH;
        float *restrict yr = y + oh * q->OW;
        if (tmp) {
            fold_rows_f32(x, q->W, hs, he, max, tmp);
            fold_cols_f32(q, tmp, max, true, yr);
        } else {
            for (int64_t h = hs; h < he; h++) fold_cols_f32(q, x + h * q->W, max, h == hs, yr);
        }
        if (!max) avg_divide_f32(q, h0, hs, he, yr);
    }
}

#define MAX_OF(a, b) ((a) > (b) ? (a) : (b))

/* MaxPool 3x3 stride 2 (SqueezeNet, the ResNet stem): one pass per output row over the three
 * input rows, no row buffer. Rows past the border repeat a valid one (max ignores repeats). */
EM_VECTOR_CLONES
static void max3s2_plane_f32(const plane2d *q, const float *restrict x, float *restrict y) {
    const int64_t W = q->W, lo = q->ow_lo, hi = q->ow_hi;
    for (int64_t oh = 0; oh < q->OH; oh++) {
        int64_t h0 = oh * 2 - q->PT;
        int64_t hs = h0 < 0 ? 0 : h0, he = h0 + 3 > q->H ? q->H : h0 + 3;
        const float *restrict r0 = x + hs * W;
        const float *restrict r1 = x + (hs + 1 < he ? hs + 1 : he - 1) * W;
        const float *restrict r2 = x + (he - 1) * W;
        float *restrict yr = y + oh * q->OW;
        for (int64_t ow = 0; ow < q->OW; ow++) { /* border columns */
            if (ow == lo) ow = hi;
            if (ow >= q->OW) break;
            int64_t w0 = ow * 2 - q->PL;
            int64_t ws = w0 < 0 ? 0 : w0, we = w0 + 3 > W ? W : w0 + 3;
            float m = r0[ws];
            for (int64_t w = ws; w < we; w++) {
                m = MAX_OF(r0[w], m);
                m = MAX_OF(r1[w], m);
                m = MAX_OF(r2[w], m);
            }
            yr[ow] = m;
        }
        const float *restrict a = r0 - q->PL, *restrict b = r1 - q->PL, *restrict c = r2 - q->PL;
        for (int64_t ow = lo; ow < hi; ow++) {
            const int64_t w = 2 * ow;
            float m0 = MAX_OF(b[w], a[w]), m1 = MAX_OF(b[w + 1], a[w + 1]);
            float m2 = MAX_OF(b[w + 2], a[w + 2]);
            m0 = MAX_OF(c[w], m0);
            m1 = MAX_OF(c[w + 1], m1);
            m2 = MAX_OF(c[w + 2], m2);
            m0 = MAX_OF(m1, m0);
            yr[ow] = MAX_OF(m2, m0);
        }
    }
}

static void pool_range(void *vctx, int64_t p0, int64_t p1) {
    const pool_ctx *c = vctx;
    const pool_geom *g = c->g;
    bool fast = c->dtype == EMBER_FLOAT && g->a.nsp <= 2 && !c->indices &&
                g->a.kind != POOL_LP;
    for (int i = 0; i < g->a.nsp; i++) fast = fast && g->a.dilation[i] == 1;
    if (fast) {
        plane2d q;
        plane2d_from_geom(g, &q);
        if (g->a.kind == POOL_MAX && q.SW == 2) { /* the common pools, on AVX-512 */
            const em_maxpool_plane mp = {.H = q.H, .W = q.W, .OH = q.OH, .OW = q.OW, .KH = q.KH,
                                         .KW = q.KW, .SH = q.SH, .PT = q.PT, .PL = q.PL};
            if (em_maxpool_s2_supported(&mp)) {
                em_maxpool_s2_planes(&mp, (const float *)c->x + p0 * g->in_plane,
                                     (float *)c->y + p0 * g->out_plane, p1 - p0);
                return;
            }
        }
        bool max3s2 = g->a.kind == POOL_MAX && q.KH == 3 && q.KW == 3 && q.SH == 2 && q.SW == 2 &&
                      q.H >= 1 && q.W >= 1;
        float row[POOL_ROW_MAX];
        for (int64_t p = p0; p < p1; p++) {
            if (max3s2) {
                max3s2_plane_f32(&q, (const float *)c->x + p * g->in_plane,
                                 (float *)c->y + p * g->out_plane);
                continue;
            }
            const float *x = (const float *)c->x + p * g->in_plane;
            float *y = (float *)c->y + p * g->out_plane;
            pool2d_plane_f32(&q, g->a.kind == POOL_MAX, x, y, q.W <= POOL_ROW_MAX ? row : NULL);
        }
        return;
    }
    if (g->a.kind == POOL_MAX) {
        switch (c->dtype) {
        case EMBER_FLOAT: max_generic_f32(c, p0, p1); break;
        case EMBER_DOUBLE: max_generic_f64(c, p0, p1); break;
        case EMBER_INT8: max_generic_i8(c, p0, p1); break;
        case EMBER_UINT8: max_generic_u8(c, p0, p1); break;
        default: break;
        }
    } else {
        if (c->dtype == EMBER_FLOAT) sum_generic_f32(c, p0, p1);
        else if (c->dtype == EMBER_DOUBLE) sum_generic_f64(c, p0, p1);
    }
}

/* ---------------------------------------------------------------------------------------------
 * float16 / bfloat16: compute in float32 scratch.
 * ------------------------------------------------------------------------------------------- */

static bool is_half(ember_dtype dt) { return dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16; }

static void half_to_f32(float *dst, const uint16_t *src, int64_t n, ember_dtype dt) {
    if (dt == EMBER_FLOAT16)
        for (int64_t i = 0; i < n; i++) dst[i] = em_f16_to_f32(src[i]);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = em_bf16_to_f32(src[i]);
}

static void f32_to_half(uint16_t *dst, const float *src, int64_t n, ember_dtype dt) {
    if (dt == EMBER_FLOAT16)
        for (int64_t i = 0; i < n; i++) dst[i] = em_f32_to_f16(src[i]);
    else
        for (int64_t i = 0; i < n; i++) dst[i] = em_f32_to_bf16(src[i]);
}

/* ---------------------------------------------------------------------------------------------
 * MaxPool / AveragePool / LpPool kernels
 * ------------------------------------------------------------------------------------------- */

static bool pool_type_ok(pool_kind kind, ember_dtype dt) {
    if (dt == EMBER_FLOAT || dt == EMBER_DOUBLE || is_half(dt)) return true;
    return kind == POOL_MAX && (dt == EMBER_INT8 || dt == EMBER_UINT8);
}

static ember_status pool_infer_kind(pool_kind kind, const em_node *node, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    const em_tensor *x = in[0];
    if (!pool_type_ok(kind, x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    pool_attrs a;
    EM_TRY(parse_pool_attrs(node, kind, &a, err));
    bool want_indices = kind == POOL_MAX && node->n_outputs > 1 && node->outputs[1] >= 0;
    if (node->n_outputs > (kind == POOL_MAX ? 2 : 1)) {
        char buf[160];
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: too many outputs (%d)",
                       desc(node, buf, sizeof buf), node->n_outputs);
    }
    if (x->rank < 0) {
        em_tensor_set_shape(&out[0], x->dtype, NULL, -1);
        if (want_indices) em_tensor_set_shape(&out[1], EMBER_INT64, NULL, -1);
        return EMBER_OK;
    }
    pool_geom g;
    EM_TRY(resolve_geom(node, &a, x, &g, err));
    int64_t dims[EM_MAX_RANK];
    geom_out_dims(&g, x, dims);
    em_tensor_set_shape(&out[0], x->dtype, dims, x->rank);
    if (want_indices) em_tensor_set_shape(&out[1], EMBER_INT64, dims, x->rank);
    return EMBER_OK;
}

static ember_status pool_run_kind(pool_kind kind, const em_node *node, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    const em_tensor *x = in[0];
    pool_attrs a;
    pool_geom g;
    EM_TRY(parse_pool_attrs(node, kind, &a, err));
    EM_TRY(resolve_geom(node, &a, x, &g, err));
    EM_TRY(geom_finish(node, &g, x, err));
    bool want_indices = kind == POOL_MAX && node->n_outputs > 1 && node->outputs[1] >= 0;

    pool_ctx c;
    memset(&c, 0, sizeof c);
    c.g = &g;
    c.dtype = x->dtype;
    c.x = x->data;
    c.y = out[0].data;
    c.indices = want_indices ? (int64_t *)out[1].data : NULL;
    if (g.planes == 0 || g.out_plane == 0) return EMBER_OK;

    /* Axis tables live in scratch: sum of output sizes x 3. */
    int64_t table_len = 0;
    for (int i = 0; i < a.nsp; i++) table_len += g.out[i];
    int64_t *tables = em_exec_scratch(ex, sizeof(int64_t) * (size_t)(3 * table_len), err);
    if (!tables) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    int64_t at = 0;
    for (int i = 0; i < a.nsp; i++) {
        c.tables[i].first = tables + at;
        c.tables[i].taps = tables + table_len + at;
        c.tables[i].padded = tables + 2 * table_len + at;
        fill_axis_table(&g, i, &c.tables[i]);
        at += g.out[i];
    }
    int64_t rs = 1, cs = 1;
    for (int i = a.nsp - 1; i >= 0; i--) {
        c.in_stride[i] = rs;
        rs *= g.in[i];
    }
    for (int i = 0; i < a.nsp; i++) {
        c.col_stride[i] = cs;
        cs *= g.in[i];
    }

    float *xf = NULL, *yf = NULL;
    if (is_half(x->dtype)) {
        int64_t nx = g.planes * g.in_plane, ny = g.planes * g.out_plane;
        xf = em_exec_scratch(ex, sizeof(float) * (size_t)nx, err);
        yf = xf ? em_exec_scratch(ex, sizeof(float) * (size_t)ny, err) : NULL;
        if (!yf) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        half_to_f32(xf, x->data, nx, x->dtype);
        c.dtype = EMBER_FLOAT;
        c.x = xf;
        c.y = yf;
    }

    int64_t window = 1;
    for (int i = 0; i < a.nsp; i++) window *= a.kernel[i];
    int64_t work = g.out_plane * window + g.in_plane;
    int64_t grain = work > 0 ? 32768 / work : 1;
    em_parallel_for(ex, g.planes, grain < 1 ? 1 : grain, pool_range, &c);

    if (yf) f32_to_half(out[0].data, yf, g.planes * g.out_plane, x->dtype);
    return EMBER_OK;
}

static ember_status maxpool_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    return pool_infer_kind(POOL_MAX, node, in, out, err);
}
static ember_status maxpool_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    return pool_run_kind(POOL_MAX, node, in, out, ex, err);
}
static ember_status avgpool_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    return pool_infer_kind(POOL_AVG, node, in, out, err);
}
static ember_status avgpool_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    return pool_run_kind(POOL_AVG, node, in, out, ex, err);
}
static ember_status lppool_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    return pool_infer_kind(POOL_LP, node, in, out, err);
}
static ember_status lppool_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    return pool_run_kind(POOL_LP, node, in, out, ex, err);
}

/* ---------------------------------------------------------------------------------------------
 * Global pools: reduce each (n, c) plane to one value.
 * ------------------------------------------------------------------------------------------- */

typedef struct global_ctx {
    pool_kind kind;
    ember_dtype dtype;
    const void *x;
    void *y;
    int64_t plane;
    double p;
} global_ctx;

/* 16 independent lanes so the compiler vectorizes the reduction without reassociation. */
#define GLOBAL_LANES 16

static float plane_sum_f32(const float *restrict x, int64_t n) {
    float acc[GLOBAL_LANES] = {0};
    int64_t i = 0;
    for (; i + GLOBAL_LANES <= n; i += GLOBAL_LANES)
        for (int l = 0; l < GLOBAL_LANES; l++) acc[l] += x[i + l];
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int l = 0; l < GLOBAL_LANES; l++) s += acc[l];
    return s;
}

static float plane_max_f32(const float *restrict x, int64_t n) {
    float acc[GLOBAL_LANES];
    for (int l = 0; l < GLOBAL_LANES; l++) acc[l] = -INFINITY;
    int64_t i = 0;
    for (; i + GLOBAL_LANES <= n; i += GLOBAL_LANES)
        for (int l = 0; l < GLOBAL_LANES; l++) acc[l] = x[i + l] > acc[l] ? x[i + l] : acc[l];
    float m = -INFINITY;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int l = 0; l < GLOBAL_LANES; l++) m = acc[l] > m ? acc[l] : m;
    return m;
}

static double plane_lp(const global_ctx *c, const void *xp, int64_t n) {
    double acc = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double v = c->dtype == EMBER_FLOAT ? ((const float *)xp)[i] : ((const double *)xp)[i];
        acc += c->p == 2.0 ? v * v : c->p == 1.0 ? fabs(v) : pow(fabs(v), c->p);
    }
    return c->p == 2.0 ? sqrt(acc) : c->p == 1.0 ? acc : pow(acc, 1.0 / c->p);
}

static void global_range(void *vctx, int64_t p0, int64_t p1) {
    const global_ctx *c = vctx;
    int64_t n = c->plane;
    for (int64_t p = p0; p < p1; p++) {
        if (c->dtype == EMBER_FLOAT) {
            const float *x = (const float *)c->x + p * n;
            float *y = (float *)c->y;
            if (c->kind == POOL_AVG) y[p] = n > 0 ? plane_sum_f32(x, n) / (float)n : 0.0f;
            else if (c->kind == POOL_MAX) y[p] = plane_max_f32(x, n);
            else y[p] = (float)plane_lp(c, x, n);
        } else {
            const double *x = (const double *)c->x + p * n;
            double *y = (double *)c->y;
            if (c->kind == POOL_LP) {
                y[p] = plane_lp(c, x, n);
                continue;
            }
            double acc = c->kind == POOL_AVG ? 0.0 : -INFINITY;
            for (int64_t i = 0; i < n; i++) {
                if (c->kind == POOL_AVG) acc += x[i];
                else acc = x[i] > acc ? x[i] : acc;
            }
            y[p] = c->kind == POOL_AVG ? (n > 0 ? acc / (double)n : 0.0) : acc;
        }
    }
}

static ember_status global_infer_kind(pool_kind kind, const em_node *node, em_tensor *const *in,
                                      em_tensor *out, ember_error *err) {
    const em_tensor *x = in[0];
    if (!pool_type_ok(POOL_AVG, x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (kind == POOL_LP) {
        double p;
        EM_TRY(read_p(node, &p, err));
    }
    if (x->rank < 0) {
        em_tensor_set_shape(&out[0], x->dtype, NULL, -1);
        return EMBER_OK;
    }
    if (x->rank < 2) {
        char buf[160];
        return em_fail(err, EMBER_ERR_SHAPE, "%s: input must have rank >= 2 (N, C, ...), got %d",
                       desc(node, buf, sizeof buf), x->rank);
    }
    int64_t dims[EM_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = i < 2 ? x->dims[i] : 1;
    em_tensor_set_shape(&out[0], x->dtype, dims, x->rank);
    return EMBER_OK;
}

static ember_status global_run_kind(pool_kind kind, const em_node *node, em_tensor *const *in,
                                    em_tensor *out, em_exec *ex, ember_error *err) {
    const em_tensor *x = in[0];
    global_ctx c = {.kind = kind, .dtype = x->dtype, .x = x->data, .y = out[0].data};
    c.plane = em_shape_numel(x->dims + 2, x->rank - 2);
    int64_t planes = x->dims[0] * x->dims[1];
    if (kind == POOL_LP) EM_TRY(read_p(node, &c.p, err));
    if (planes == 0) return EMBER_OK;
    float *xf = NULL, *yf = NULL;
    if (is_half(x->dtype)) {
        int64_t nx = planes * c.plane;
        xf = em_exec_scratch(ex, sizeof(float) * (size_t)(nx > 0 ? nx : 1), err);
        yf = xf ? em_exec_scratch(ex, sizeof(float) * (size_t)planes, err) : NULL;
        if (!yf) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        half_to_f32(xf, x->data, nx, x->dtype);
        c.dtype = EMBER_FLOAT;
        c.x = xf;
        c.y = yf;
    }
    int64_t grain = c.plane > 0 ? 32768 / c.plane : planes;
    em_parallel_for(ex, planes, grain < 1 ? 1 : grain, global_range, &c);
    if (yf) f32_to_half(out[0].data, yf, planes, x->dtype);
    return EMBER_OK;
}

#define GLOBAL_WRAPPERS(NAME, KIND)                                                               \
    static ember_status NAME##_infer(const em_node *node, void *state, em_tensor *const *in,      \
                                     em_tensor *out, ember_error *err) {                          \
        (void)state;                                                                              \
        return global_infer_kind(KIND, node, in, out, err);                                       \
    }                                                                                             \
    static ember_status NAME##_run(const em_node *node, void *state, em_tensor *const *in,        \
                                   em_tensor *out, em_exec *ex, ember_error *err) {               \
        (void)state;                                                                              \
        return global_run_kind(KIND, node, in, out, ex, err);                                     \
    }

GLOBAL_WRAPPERS(global_avg, POOL_AVG)
GLOBAL_WRAPPERS(global_max, POOL_MAX)
GLOBAL_WRAPPERS(global_lp, POOL_LP)

/* ---------------------------------------------------------------------------------------------
 * MaxUnpool: scatter X into zeros at the flat positions given by I. Indices address the
 * default output shape ((in - 1) * stride + kernel - pads); an explicit output_shape may only
 * enlarge the spatial dims, the extra cells staying zero (as the ONNX reference does).
 * ------------------------------------------------------------------------------------------- */

typedef struct unpool_attrs {
    int nsp;
    int64_t kernel[POOL_MAX_SPATIAL];
    int64_t stride[POOL_MAX_SPATIAL];
    int64_t pads[2 * POOL_MAX_SPATIAL];
} unpool_attrs;

static ember_status unpool_parse(const em_node *node, const em_tensor *x, unpool_attrs *a,
                                 int64_t *inferred, ember_error *err) {
    char buf[160];
    memset(a, 0, sizeof *a);
    int64_t nk = 0;
    const int64_t *k = em_attr_ints(node, "kernel_shape", &nk);
    if (!k || nk < 1 || nk > POOL_MAX_SPATIAL)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: attribute 'kernel_shape' is required (1 to %d values)",
                       desc(node, buf, sizeof buf), POOL_MAX_SPATIAL);
    a->nsp = (int)nk;
    for (int i = 0; i < a->nsp; i++) a->stride[i] = 1;
    EM_TRY(read_ints(node, "kernel_shape", a->nsp, 1, a->kernel, err));
    EM_TRY(read_ints(node, "strides", a->nsp, 1, a->stride, err));
    EM_TRY(read_ints(node, "pads", 2 * a->nsp, 0, a->pads, err));
    if (x->rank < 0) return EMBER_OK;
    if (x->rank != a->nsp + 2)
        return em_fail(err, EMBER_ERR_SHAPE,
                       "%s: input has rank %d but kernel_shape has %d dims (expected rank %d)",
                       desc(node, buf, sizeof buf), x->rank, a->nsp, a->nsp + 2);
    inferred[0] = x->dims[0];
    inferred[1] = x->dims[1];
    for (int i = 0; i < a->nsp; i++) {
        int64_t in = x->dims[i + 2];
        if (in < 0) {
            inferred[i + 2] = -1;
            continue;
        }
        if (in > POOL_ATTR_LIMIT * 4)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: input dim %lld is too large",
                           desc(node, buf, sizeof buf), (long long)in);
        int64_t o = (in - 1) * a->stride[i] + a->kernel[i] - a->pads[i] - a->pads[i + a->nsp];
        if (in == 0) o = 0;
        if (o < 0)
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: pads exceed the unpooled size on spatial axis %d",
                           desc(node, buf, sizeof buf), i);
        inferred[i + 2] = o;
    }
    return EMBER_OK;
}

static ember_status unpool_out_shape(const em_node *node, em_tensor *const *in,
                                     const unpool_attrs *a, const int64_t *inferred,
                                     int64_t *dims, bool *known, ember_error *err) {
    char buf[160];
    int rank = a->nsp + 2;
    const em_tensor *shape = node->n_inputs > 2 ? in[2] : NULL;
    *known = true;
    if (!shape) {
        memcpy(dims, inferred, sizeof(int64_t) * (size_t)rank);
        return EMBER_OK;
    }
    if (shape->dtype != EMBER_INT64) return em_unsupported_type(node, 2, shape->dtype, err);
    if (shape->rank >= 0 && (shape->rank != 1 || (shape->dims[0] >= 0 && shape->dims[0] != rank)))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: output_shape must be a 1-D tensor of %d values",
                       desc(node, buf, sizeof buf), rank);
    if (!shape->data) {
        *known = false;
        return EMBER_OK;
    }
    const int64_t *v = shape->data;
    for (int i = 0; i < rank; i++) {
        dims[i] = v[i];
        bool ok = i < 2 ? inferred[i] < 0 || v[i] == inferred[i]
                        : v[i] >= 0 && (inferred[i] < 0 || v[i] >= inferred[i]);
        if (!ok)
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: output_shape[%d] = %lld does not fit the unpooled size %lld",
                           desc(node, buf, sizeof buf), i, (long long)v[i],
                           (long long)inferred[i]);
    }
    return EMBER_OK;
}

static ember_status maxunpool_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *idx = in[1];
    char buf[160];
    if (!pool_type_ok(POOL_AVG, x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (!idx || idx->dtype != EMBER_INT64)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input I must be an int64 tensor",
                       desc(node, buf, sizeof buf));
    unpool_attrs a;
    int64_t inferred[EM_MAX_RANK], dims[EM_MAX_RANK];
    EM_TRY(unpool_parse(node, x, &a, inferred, err));
    if (x->rank < 0) {
        em_tensor_set_shape(&out[0], x->dtype, NULL, -1);
        return EMBER_OK;
    }
    if (idx->rank >= 0 && idx->rank != x->rank)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: I must have the shape of X",
                       desc(node, buf, sizeof buf));
    for (int i = 0; idx->rank >= 0 && i < x->rank; i++)
        if (x->dims[i] >= 0 && idx->dims[i] >= 0 && x->dims[i] != idx->dims[i])
            return em_fail(err, EMBER_ERR_SHAPE, "%s: I must have the shape of X",
                           desc(node, buf, sizeof buf));
    bool known;
    EM_TRY(unpool_out_shape(node, in, &a, inferred, dims, &known, err));
    if (!known) em_tensor_set_shape(&out[0], x->dtype, NULL, -1);
    else em_tensor_set_shape(&out[0], x->dtype, dims, x->rank);
    return EMBER_OK;
}

static ember_status maxunpool_run(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    const em_tensor *x = in[0], *idx = in[1];
    unpool_attrs a;
    int64_t inferred[EM_MAX_RANK], dims[EM_MAX_RANK];
    bool known;
    EM_TRY(unpool_parse(node, x, &a, inferred, err));
    EM_TRY(unpool_out_shape(node, in, &a, inferred, dims, &known, err));
    int rank = a.nsp + 2;
    int64_t total = em_shape_numel(inferred, rank);
    int64_t n = em_numel(x);
    size_t es = em_dtype_size(x->dtype);
    if (total < 0 || n < 0) {
        char buf[160];
        return em_fail(err, EMBER_ERR_SHAPE, "%s: tensor size overflows",
                       desc(node, buf, sizeof buf));
    }
    memset(out[0].data, 0, em_nbytes(&out[0]));
    /* Index -> coordinates in the inferred shape -> offset in the output. */
    int64_t in_strides[EM_MAX_RANK], out_strides[EM_MAX_RANK];
    em_strides(inferred, rank, in_strides);
    em_strides(dims, rank, out_strides);
    const int64_t *iv = idx->data;
    const char *xv = x->data;
    char *yv = out[0].data;
    bool same = memcmp(inferred, dims, sizeof(int64_t) * (size_t)rank) == 0;
    for (int64_t e = 0; e < n; e++) {
        int64_t flat = iv[e];
        if (flat < 0 || flat >= total) {
            char buf[160];
            return em_fail(err, EMBER_ERR_RUNTIME, "%s: index %lld at position %lld is outside "
                           "[0, %lld)", desc(node, buf, sizeof buf), (long long)flat,
                           (long long)e, (long long)total);
        }
        int64_t off = flat;
        if (!same) {
            off = 0;
            for (int i = 0; i < rank; i++) {
                int64_t coord = flat / in_strides[i];
                flat -= coord * in_strides[i];
                off += coord * out_strides[i];
            }
        }
        memcpy(yv + (size_t)off * es, xv + (size_t)e * es, es);
    }
    return EMBER_OK;
}

static const em_op k_pool_ops[] = {
    {"", "MaxPool", 1, 22, NULL, maxpool_infer, maxpool_run, NULL, 0},
    {"", "AveragePool", 1, 22, NULL, avgpool_infer, avgpool_run, NULL, 0},
    {"", "LpPool", 1, 22, NULL, lppool_infer, lppool_run, NULL, 0},
    {"", "GlobalAveragePool", 1, 22, NULL, global_avg_infer, global_avg_run, NULL, 0},
    {"", "GlobalMaxPool", 1, 22, NULL, global_max_infer, global_max_run, NULL, 0},
    {"", "GlobalLpPool", 1, 22, NULL, global_lp_infer, global_lp_run, NULL, 0},
    {"", "MaxUnpool", 9, 22, NULL, maxunpool_infer, maxunpool_run, NULL, 0},
};

EM_OPS_FAMILY(pool) {
    *count = sizeof k_pool_ops / sizeof k_pool_ops[0];
    return k_pool_ops;
}
