/* Reductions and friends: Reduce* (10 ops), ArgMax/ArgMin, TopK, CumSum,
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
 *
 * The Reduce* engine merges adjacent input dims that are all reduced or all kept (size-1 dims
 * dropped), then walks the merged shape with an odometer over every dim but the last:
 *   - last dim reduced: one contiguous row reduction per step (16 independent accumulators, so
 *     the compiler vectorizes it and float sums stay accurate);
 *   - last dim kept: one contiguous "out[j] = op(out[j], x[j])" vector update per step.
 * Work is split across threads over the first merged dim when it is kept, over columns for
 * [reduced, kept], and into partial results for a full reduction. float16/bfloat16 compute in
 * float32; integer L2 / LogSum / LogSumExp compute in float64. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ---------------------------------------------------------------------------------------- */

/* The executor prefixes every kernel error with the node's description (em_node_desc), so
 * messages here state only the reason. `node` is kept for symmetry and future use. */
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

/* Input i, or NULL when the node does not have it (omitted optional input). */
static const em_tensor *opt_input(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_inputs ? in[i] : NULL;
}

static bool has_output(const em_node *node, const em_tensor *out, int i) {
    return i < node->n_outputs && node->outputs[i] >= 0 && out[i].data != NULL;
}

static int op_version(const em_node *node) {
    int v = em_onnx_op_version(node->op_type, node->opset);
    return v > 0 ? v : node->opset;
}

static int exec_threads(const em_exec *ex) { return ex ? em_exec_threads(ex) : 1; }

/* Product of dims [from, to). */
static int64_t dims_prod(const int64_t *dims, int from, int to) {
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= dims[i];
    return p;
}

/* ------------------------------------------------------------------------------------------
 * Per-type element operations. Integer add/mul wrap (computed unsigned) instead of invoking
 * undefined behaviour on overflow.
 * ---------------------------------------------------------------------------------------- */

#define DEF_FLOAT_OPS(S, T, FABS, LOWEST, HIGHEST)                                                 \
    static inline T add_##S(T a, T b) { return a + b; }                                            \
    static inline T mul_##S(T a, T b) { return a * b; }                                            \
    static inline T abs_##S(T a) { return FABS(a); }                                               \
    static inline bool isnan_##S(T a) { return a != a; }                                           \
    static inline T lowest_##S(void) { return LOWEST; }                                            \
    static inline T highest_##S(void) { return HIGHEST; }

#define DEF_SINT_OPS(S, T, U, LOWEST, HIGHEST)                                                     \
    static inline T add_##S(T a, T b) { return (T)((U)a + (U)b); }                                 \
    static inline T mul_##S(T a, T b) { return (T)((U)a * (U)b); }                                 \
    static inline T abs_##S(T a) { return a < 0 ? (T)((U)0 - (U)a) : a; }                          \
    static inline bool isnan_##S(T a) { (void)a; return false; }                                   \
    static inline T lowest_##S(void) { return LOWEST; }                                            \
    static inline T highest_##S(void) { return HIGHEST; }

#define DEF_UINT_OPS(S, T, U, HIGHEST)                                                             \
    static inline T add_##S(T a, T b) { return (T)((U)a + (U)b); }                                 \
    static inline T mul_##S(T a, T b) { return (T)((U)a * (U)b); }                                 \
    static inline T abs_##S(T a) { return a; }                                                     \
    static inline bool isnan_##S(T a) { (void)a; return false; }                                   \
    static inline T lowest_##S(void) { return 0; }                                                 \
    static inline T highest_##S(void) { return HIGHEST; }

DEF_FLOAT_OPS(f32, float, fabsf, -INFINITY, INFINITY)
DEF_FLOAT_OPS(f64, double, fabs, -INFINITY, INFINITY)
DEF_SINT_OPS(i8, int8_t, unsigned, INT8_MIN, INT8_MAX)
DEF_SINT_OPS(i32, int32_t, uint32_t, INT32_MIN, INT32_MAX)
DEF_SINT_OPS(i64, int64_t, uint64_t, INT64_MIN, INT64_MAX)
DEF_UINT_OPS(u8, uint8_t, unsigned, UINT8_MAX)
DEF_UINT_OPS(u32, uint32_t, uint32_t, UINT32_MAX)
DEF_UINT_OPS(u64, uint64_t, uint64_t, UINT64_MAX)

/* NaN propagates through max/min, as in numpy. */
#define COMB_ADD(S, a, x) add_##S(a, x)
#define COMB_MUL(S, a, x) mul_##S(a, x)
#define COMB_MAX(S, a, x) ((((x) > (a)) | isnan_##S(x)) ? (x) : (a))
#define COMB_MIN(S, a, x) ((((x) < (a)) | isnan_##S(x)) ? (x) : (a))
#define PRE_ID(S, x) (x)
#define PRE_ABS(S, x) abs_##S(x)
#define PRE_SQ(S, x) mul_##S(x, x)
#define IDENT_ADD(S, T) ((T)0)
#define IDENT_MUL(S, T) ((T)1)
#define IDENT_MAX(S, T) lowest_##S()
#define IDENT_MIN(S, T) highest_##S()

/* row: *o = comb(*o, reduce(pre(x[0..n)))); vec: o[j] = comb(o[j], pre(x[j])); fill: identity.
 * `aux` (LogSumExp only) holds the shift at the same position as o. */
typedef void (*red_row_fn)(void *o, const void *x, int64_t n, const void *aux);
typedef void (*red_vec_fn)(void *o, const void *x, int64_t m, const void *aux);
typedef void (*red_fill_fn)(void *o, int64_t m);

/* Rows are summed in blocks of RED_BLOCK elements into RED_ACC independent accumulators, and
 * a long reduced leading dim in bands of RED_BAND: float sums then grow their rounding error
 * with the block or band length, not with the whole length. */
#define RED_ACC 32
#define RED_BLOCK 4096
#define RED_BAND 1024

/* Block totals combine pairwise (a binary counter of partial results), so rounding grows with
 * log(blocks) rather than with the number of blocks. Uses locals stack, weight, sp. */
#define RED_PUSH_BLOCK(COMB, S, t)                                                                 \
    do {                                                                                           \
        int64_t w_ = 1;                                                                            \
        while (sp > 0 && weight[sp - 1] == w_) {                                                   \
            t = COMB(S, stack[sp - 1], t);                                                         \
            sp--;                                                                                  \
            w_ *= 2;                                                                               \
        }                                                                                          \
        stack[sp] = t;                                                                             \
        weight[sp++] = w_;                                                                         \
    } while (0)

/* *ov = comb(*ov, all pushed blocks), smallest partial results first. */
#define RED_FOLD_BLOCKS(COMB, S, T, ov)                                                            \
    do {                                                                                           \
        if (sp == 0) break;                                                                        \
        T r_ = stack[sp - 1];                                                                      \
        for (int q_ = sp - 2; q_ >= 0; q_--) r_ = COMB(S, stack[q_], r_);                          \
        *(T *)(ov) = COMB(S, *(T *)(ov), r_);                                                      \
    } while (0)

#define COMB_PLUS(S, a, x) ((a) + (x))

#define DEF_RED(S, T, NAME, PRE, COMB, IDENT)                                                      \
    static void row_##NAME##_##S(void *ov, const void *xv, int64_t n, const void *aux) {           \
        (void)aux;                                                                                 \
        const T *restrict x = xv;                                                                  \
        T stack[64];                                                                               \
        int64_t weight[64];                                                                        \
        int sp = 0;                                                                                \
        for (int64_t i = 0; i < n;) {                                                              \
            const int64_t end = n - i > RED_BLOCK ? i + RED_BLOCK : n;                             \
            T acc[RED_ACC];                                                                        \
            for (int k = 0; k < RED_ACC; k++) acc[k] = IDENT(S, T);                                \
            for (; i + RED_ACC <= end; i += RED_ACC)                                               \
                for (int k = 0; k < RED_ACC; k++) acc[k] = COMB(S, acc[k], PRE(S, x[i + k]));      \
            T t = acc[0];                                                                          \
            for (int k = 1; k < RED_ACC; k++) t = COMB(S, t, acc[k]);                              \
            for (; i < end; i++) t = COMB(S, t, PRE(S, x[i]));                                     \
            RED_PUSH_BLOCK(COMB, S, t);                                                            \
        }                                                                                          \
        RED_FOLD_BLOCKS(COMB, S, T, ov);                                                           \
    }                                                                                              \
    static void vec_##NAME##_##S(void *ov, const void *xv, int64_t m, const void *aux) {           \
        (void)aux;                                                                                 \
        T *restrict o = ov;                                                                        \
        const T *restrict x = xv;                                                                  \
        for (int64_t j = 0; j < m; j++) o[j] = COMB(S, o[j], PRE(S, x[j]));                        \
    }                                                                                              \
    static void fill_##NAME##_##S(void *ov, int64_t m) {                                           \
        T *o = ov;                                                                                 \
        for (int64_t j = 0; j < m; j++) o[j] = IDENT(S, T);                                        \
    }

/* exp(x - shift) summed: the second pass of LogSumExp (float types only). */
#define DEF_RED_LSE(S, T, EXP)                                                                     \
    static void row_lse_##S(void *ov, const void *xv, int64_t n, const void *aux) {                \
        const T *restrict x = xv;                                                                  \
        const T shift = *(const T *)aux;                                                           \
        T stack[64];                                                                               \
        int64_t weight[64];                                                                        \
        int sp = 0;                                                                                \
        for (int64_t i = 0; i < n;) {                                                              \
            const int64_t end = n - i > RED_BLOCK ? i + RED_BLOCK : n;                             \
            T acc[RED_ACC] = {0};                                                                  \
            for (; i + RED_ACC <= end; i += RED_ACC)                                               \
                for (int k = 0; k < RED_ACC; k++) acc[k] += EXP(x[i + k] - shift);                 \
            T t = 0;                                                                               \
            for (int k = 0; k < RED_ACC; k++) t += acc[k];                                         \
            for (; i < end; i++) t += EXP(x[i] - shift);                                           \
            RED_PUSH_BLOCK(COMB_PLUS, S, t);                                                       \
        }                                                                                          \
        RED_FOLD_BLOCKS(COMB_PLUS, S, T, ov);                                                      \
    }                                                                                              \
    static void vec_lse_##S(void *ov, const void *xv, int64_t m, const void *aux) {                \
        T *restrict o = ov;                                                                        \
        const T *restrict x = xv;                                                                  \
        const T *restrict shift = aux;                                                             \
        for (int64_t j = 0; j < m; j++) o[j] += EXP(x[j] - shift[j]);                              \
    }

#define DEF_RED_ALL(S, T)                                                                          \
    DEF_RED(S, T, sum, PRE_ID, COMB_ADD, IDENT_ADD)                                                \
    DEF_RED(S, T, prod, PRE_ID, COMB_MUL, IDENT_MUL)                                               \
    DEF_RED(S, T, max, PRE_ID, COMB_MAX, IDENT_MAX)                                                \
    DEF_RED(S, T, min, PRE_ID, COMB_MIN, IDENT_MIN)                                                \
    DEF_RED(S, T, l1, PRE_ABS, COMB_ADD, IDENT_ADD)                                                \
    DEF_RED(S, T, sq, PRE_SQ, COMB_ADD, IDENT_ADD)

DEF_RED_ALL(f32, float)
DEF_RED_LSE(f32, float, expf)
DEF_RED_ALL(f64, double)
DEF_RED_LSE(f64, double, exp)
DEF_RED_ALL(i8, int8_t)
DEF_RED_ALL(i32, int32_t)
DEF_RED_ALL(i64, int64_t)
DEF_RED_ALL(u8, uint8_t)
DEF_RED_ALL(u32, uint32_t)
DEF_RED_ALL(u64, uint64_t)

/* The basic reductions every Reduce* op is built from. */
typedef enum red_base { B_SUM, B_PROD, B_MAX, B_MIN, B_L1, B_SQ, B_LSE, B_COUNT } red_base;

typedef struct red_fns {
    red_row_fn row;
    red_vec_fn vec;
    red_fill_fn fill;
    red_row_fn merge;  /* combines partial results (no `pre` transform) */
    red_vec_fn vmerge; /* the same, element-wise */
} red_fns;

#define FNS(NAME, MERGE, S)                                                                        \
    {row_##NAME##_##S, vec_##NAME##_##S, fill_##NAME##_##S, row_##MERGE##_##S, vec_##MERGE##_##S}
#define FNS_TABLE(S)                                                                               \
    FNS(sum, sum, S), FNS(prod, prod, S), FNS(max, max, S), FNS(min, min, S), FNS(l1, sum, S),     \
        FNS(sq, sum, S)

static const red_fns k_fns_f32[B_COUNT] = {
    FNS_TABLE(f32), {row_lse_f32, vec_lse_f32, fill_sum_f32, row_sum_f32, vec_sum_f32}};
static const red_fns k_fns_f64[B_COUNT] = {
    FNS_TABLE(f64), {row_lse_f64, vec_lse_f64, fill_sum_f64, row_sum_f64, vec_sum_f64}};
static const red_fns k_fns_i8[B_COUNT] = {FNS_TABLE(i8), {0}};
static const red_fns k_fns_i32[B_COUNT] = {FNS_TABLE(i32), {0}};
static const red_fns k_fns_i64[B_COUNT] = {FNS_TABLE(i64), {0}};
static const red_fns k_fns_u8[B_COUNT] = {FNS_TABLE(u8), {0}};
static const red_fns k_fns_u32[B_COUNT] = {FNS_TABLE(u32), {0}};
static const red_fns k_fns_u64[B_COUNT] = {FNS_TABLE(u64), {0}};

static const red_fns *red_table(ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT: return k_fns_f32;
    case EMBER_DOUBLE: return k_fns_f64;
    case EMBER_INT8: return k_fns_i8;
    case EMBER_INT32: return k_fns_i32;
    case EMBER_INT64: return k_fns_i64;
    case EMBER_UINT8: case EMBER_BOOL: return k_fns_u8;
    case EMBER_UINT32: return k_fns_u32;
    case EMBER_UINT64: return k_fns_u64;
    default: return NULL;
    }
}

/* ------------------------------------------------------------------------------------------
 * Reduction geometry and engine
 * ---------------------------------------------------------------------------------------- */

typedef struct red_geom {
    int k; /* merged dims */
    int64_t md[EM_MAX_RANK];
    bool mr[EM_MAX_RANK]; /* reduced? */
    int64_t istr[EM_MAX_RANK];
    int64_t ostr[EM_MAX_RANK]; /* 0 for reduced dims */
    int64_t in_numel, out_numel;
    int64_t group; /* input elements per output element */
} red_geom;

static void red_geom_init(red_geom *g, const int64_t *dims, const bool *reduced, int rank) {
    g->k = 0;
    g->in_numel = 1;
    g->group = 1;
    for (int i = 0; i < rank; i++) {
        g->in_numel *= dims[i];
        if (reduced[i]) g->group *= dims[i];
        if (dims[i] == 1) continue;
        if (g->k > 0 && g->mr[g->k - 1] == reduced[i]) {
            g->md[g->k - 1] *= dims[i];
        } else {
            g->md[g->k] = dims[i];
            g->mr[g->k] = reduced[i];
            g->k++;
        }
    }
    if (g->k == 0) { /* a single element */
        g->md[0] = 1;
        g->mr[0] = false;
        g->k = 1;
    }
    int64_t is = 1, os = 1;
    for (int d = g->k - 1; d >= 0; d--) {
        g->istr[d] = is;
        is *= g->md[d];
        g->ostr[d] = g->mr[d] ? 0 : os;
        if (!g->mr[d]) os *= g->md[d];
    }
    g->out_numel = os;
}

typedef struct red_job {
    const red_geom *g;
    const red_fns *f;
    const char *x;
    char *out;
    const char *aux; /* LogSumExp shift, laid out like out; or NULL */
    size_t es;
    char *partials; /* one partial result (or output) per chunk of dim 0 */
    int64_t chunk;
} red_job;

/* Dim 0 restricted to [lo, hi); the last dim, when kept, to [clo, chi). */
static void red_core(const red_job *j, int64_t lo, int64_t hi, int64_t clo, int64_t chi) {
    const red_geom *g = j->g;
    const size_t es = j->es;
    const int k = g->k;
    if (k == 1) {
        if (g->mr[0])
            j->f->row(j->out, j->x + lo * es, hi - lo, j->aux);
        else
            j->f->vec(j->out + lo * es, j->x + lo * es, hi - lo, j->aux ? j->aux + lo * es : NULL);
        return;
    }
    const int64_t inner = g->md[k - 1];
    const bool last_reduced = g->mr[k - 1];
    int64_t idx[EM_MAX_RANK] = {0};
    idx[0] = lo;
    int64_t xoff = lo * g->istr[0], ooff = lo * g->ostr[0];
    while (idx[0] < hi) {
        if (last_reduced) {
            j->f->row(j->out + ooff * es, j->x + xoff * es, inner,
                      j->aux ? j->aux + ooff * es : NULL);
        } else {
            j->f->vec(j->out + (ooff + clo) * es, j->x + (xoff + clo) * es, chi - clo,
                      j->aux ? j->aux + (ooff + clo) * es : NULL);
        }
        for (int d = k - 2; d >= 0; d--) {
            idx[d]++;
            xoff += g->istr[d];
            ooff += g->ostr[d];
            if (d == 0 || idx[d] < g->md[d]) break;
            xoff -= idx[d] * g->istr[d];
            ooff -= idx[d] * g->ostr[d];
            idx[d] = 0;
        }
    }
}

static void red_range_dim0(void *ctx, int64_t b, int64_t e) {
    const red_job *j = ctx;
    red_core(j, b, e, 0, j->g->md[j->g->k - 1]);
}

static void red_range_cols(void *ctx, int64_t b, int64_t e) {
    const red_job *j = ctx;
    red_core(j, 0, j->g->md[0], b, e);
}

static void red_range_chunks(void *ctx, int64_t b, int64_t e) {
    const red_job *j = ctx;
    const int64_t n = j->g->md[0];
    for (int64_t c = b; c < e; c++) {
        char *p = j->partials + c * j->es;
        int64_t s = c * j->chunk;
        int64_t len = n - s < j->chunk ? n - s : j->chunk;
        j->f->fill(p, 1);
        j->f->row(p, j->x + s * j->es, len, j->aux);
    }
}

/* Dim 0 reduced: part p reduces its band of dim 0 into its own copy of the output (or into
 * the output itself when there is one part), RED_BAND rows at a time through a temporary. */
static void red_range_parts(void *ctx, int64_t b, int64_t e) {
    const red_job *j = ctx;
    const red_geom *g = j->g;
    const int64_t n = g->md[0], cols = g->md[g->k - 1];
    const size_t bytes = (size_t)g->out_numel * j->es;
    for (int64_t p = b; p < e; p++) {
        char *acc = j->chunk >= n ? j->out : j->partials + 2 * (size_t)p * bytes;
        char *tmp = j->partials + (2 * (size_t)p + 1) * bytes;
        int64_t lo = p * j->chunk, hi = lo + j->chunk < n ? lo + j->chunk : n;
        if (acc != j->out) j->f->fill(acc, g->out_numel);
        red_job part = *j;
        if (hi - lo <= RED_BAND) {
            part.out = acc;
            red_core(&part, lo, hi, 0, cols);
            continue;
        }
        part.out = tmp;
        for (int64_t s = lo; s < hi; s += RED_BAND) {
            j->f->fill(tmp, g->out_numel);
            red_core(&part, s, s + RED_BAND < hi ? s + RED_BAND : hi, 0, cols);
            j->f->vmerge(acc, tmp, g->out_numel, NULL);
        }
    }
}

#define RED_PARALLEL_MIN 65536 /* elements below which threads cost more than they save */

/* out (already filled with the identity) = comb(out, reduce(x)). */
static ember_status red_run(const red_geom *g, const red_fns *f, const void *x, void *out,
                            const void *aux, size_t es, em_exec *ex, ember_error *err) {
    if (g->in_numel == 0) return EMBER_OK;
    red_job j = {g, f, x, out, aux, es, NULL, 0};
    const int k = g->k;
    const int threads = g->in_numel < RED_PARALLEL_MIN ? 1 : exec_threads(ex);
    if (!g->mr[0]) { /* first dim kept: slices of it write disjoint outputs */
        if (threads <= 1) {
            red_core(&j, 0, g->md[0], 0, g->md[k - 1]);
        } else {
            int64_t per = g->in_numel / g->md[0];
            int64_t grain = per >= 16384 ? 1 : 16384 / per;
            em_parallel_for(ex, g->md[0], grain, red_range_dim0, &j);
        }
    } else if (k == 1) { /* everything reduced */
        if (threads <= 1) {
            red_core(&j, 0, g->md[0], 0, g->md[0]);
            return EMBER_OK;
        }
        int64_t nchunks = (int64_t)threads * 4;
        j.chunk = (g->md[0] + nchunks - 1) / nchunks;
        nchunks = (g->md[0] + j.chunk - 1) / j.chunk;
        j.partials = em_exec_scratch(ex, (size_t)nchunks * es, err);
        if (!j.partials) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        em_parallel_for(ex, nchunks, 1, red_range_chunks, &j);
        f->merge(out, j.partials, nchunks, NULL);
    } else if (threads > 1 && g->out_numel * threads > g->in_numel / 4 && k == 2) {
        /* [reduced (short), kept (wide)]: one column band per thread */
        int64_t band = (g->md[1] + threads - 1) / threads;
        em_parallel_for(ex, g->md[1], band < 16 ? 16 : band, red_range_cols, &j);
    } else if (threads <= 1 && g->md[0] <= RED_BAND) {
        red_core(&j, 0, g->md[0], 0, g->md[k - 1]);
    } else { /* dim 0 reduced: bands of it, per thread into private outputs, then merged */
        int64_t parts = threads < g->md[0] ? threads : g->md[0];
        if (g->out_numel * parts > g->in_numel / 4) parts = 1;
        j.chunk = (g->md[0] + parts - 1) / parts;
        parts = (g->md[0] + j.chunk - 1) / j.chunk;
        j.partials = em_exec_scratch(ex, 2 * (size_t)(parts * g->out_numel) * es, err);
        if (!j.partials) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        if (parts == 1) {
            red_range_parts(&j, 0, 1);
        } else {
            em_parallel_for(ex, parts, 1, red_range_parts, &j);
            for (int64_t p = 0; p < parts; p++)
                f->vmerge(out, j.partials + 2 * (size_t)(p * g->out_numel) * es, g->out_numel,
                          NULL);
        }
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * Reduce* operators
 * ---------------------------------------------------------------------------------------- */

typedef enum reduce_kind {
    RK_SUM, RK_MEAN, RK_MAX, RK_MIN, RK_PROD, RK_L1, RK_L2, RK_LOGSUM, RK_LOGSUMEXP, RK_SUMSQUARE,
} reduce_kind;

static const struct {
    const char *op;
    reduce_kind kind;
    red_base base;
} k_reduce_kinds[] = {
    {"ReduceSum", RK_SUM, B_SUM},         {"ReduceMean", RK_MEAN, B_SUM},
    {"ReduceMax", RK_MAX, B_MAX},         {"ReduceMin", RK_MIN, B_MIN},
    {"ReduceProd", RK_PROD, B_PROD},      {"ReduceL1", RK_L1, B_L1},
    {"ReduceL2", RK_L2, B_SQ},            {"ReduceLogSum", RK_LOGSUM, B_SUM},
    {"ReduceLogSumExp", RK_LOGSUMEXP, B_LSE}, {"ReduceSumSquare", RK_SUMSQUARE, B_SQ},
};

static int reduce_index(const em_node *node) {
    for (size_t i = 0; i < sizeof k_reduce_kinds / sizeof k_reduce_kinds[0]; i++)
        if (strcmp(node->op_type, k_reduce_kinds[i].op) == 0) return (int)i;
    return 0;
}

typedef struct reduce_plan {
    bool unknown; /* axes come from an input whose value is not known yet */
    bool reduced[EM_MAX_RANK];
    int out_rank;
    int64_t out_dims[EM_MAX_RANK];
} reduce_plan;

static ember_status reduce_make_plan(const em_node *node, em_tensor *const *in, reduce_plan *p,
                                     ember_error *err) {
    const em_tensor *x = in[0];
    const int rank = x->rank;
    const int ver = op_version(node);
    const bool axes_as_input = strcmp(node->op_type, "ReduceSum") == 0 ? ver >= 13 : ver >= 18;
    const bool keepdims = em_attr_int(node, "keepdims", 1) != 0;
    memset(p, 0, sizeof *p);

    int64_t n_axes = 0;
    const int64_t *attr_axes = NULL;
    const em_tensor *axes_t = NULL;
    bool noop = false;
    if (axes_as_input) {
        noop = em_attr_int(node, "noop_with_empty_axes", 0) != 0;
        axes_t = opt_input(node, in, 1);
        if (axes_t) {
            if (axes_t->dtype != EMBER_INT64 && axes_t->dtype != EMBER_INT32)
                return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "axes must be int64, not %s",
                                 em_dtype_name(axes_t->dtype));
            if (axes_t->rank > 1)
                return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "axes must be 1-D");
            if (!axes_t->data || axes_t->rank < 0) {
                p->unknown = true;
                return EMBER_OK;
            }
            n_axes = em_numel(axes_t);
        }
    } else {
        attr_axes = em_attr_ints(node, "axes", &n_axes);
    }
    if (rank < 0) {
        p->unknown = true;
        return EMBER_OK;
    }
    if (n_axes == 0) {
        for (int i = 0; i < rank; i++) p->reduced[i] = !noop;
    } else {
        for (int64_t i = 0; i < n_axes; i++) {
            int64_t a = attr_axes ? attr_axes[i] : em_get_i64(axes_t, i);
            int axis;
            EM_TRY(em_norm_axis(node, a, rank, &axis, err));
            p->reduced[axis] = true;
        }
    }
    for (int i = 0; i < rank; i++) {
        if (!p->reduced[i])
            p->out_dims[p->out_rank++] = x->dims[i];
        else if (keepdims)
            p->out_dims[p->out_rank++] = 1;
    }
    return EMBER_OK;
}

static bool reduce_type_ok(reduce_kind kind, ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT: case EMBER_DOUBLE: case EMBER_FLOAT16: case EMBER_BFLOAT16:
    case EMBER_INT32: case EMBER_INT64: case EMBER_UINT32: case EMBER_UINT64:
        return true;
    case EMBER_INT8: case EMBER_UINT8:
        return true;
    case EMBER_BOOL:
        return kind == RK_MAX || kind == RK_MIN;
    default:
        return false;
    }
}

static ember_status reduce_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    const reduce_kind kind = k_reduce_kinds[reduce_index(node)].kind;
    if (!reduce_type_ok(kind, in[0]->dtype)) return em_unsupported_type(node, 0, in[0]->dtype, err);
    reduce_plan p;
    EM_TRY(reduce_make_plan(node, in, &p, err));
    if (p.unknown) {
        out[0].dtype = in[0]->dtype;
        out[0].rank = -1;
        return EMBER_OK;
    }
    em_tensor_set_shape(&out[0], in[0]->dtype, p.out_dims, p.out_rank);
    return EMBER_OK;
}

/* Type the computation runs in. */
static ember_dtype reduce_compute_type(reduce_kind kind, ember_dtype dt) {
    if (dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16) return EMBER_FLOAT;
    if (dt == EMBER_FLOAT || dt == EMBER_DOUBLE) return dt;
    if (kind == RK_L2 || kind == RK_LOGSUM || kind == RK_LOGSUMEXP) return EMBER_DOUBLE;
    return dt;
}

#define DEF_FINALIZE_FLOAT(S, T, SQRT, LOG)                                                        \
    static void finalize_##S(reduce_kind kind, T *restrict o, const T *restrict shift,             \
                             int64_t n, int64_t group) {                                           \
        switch (kind) {                                                                            \
        case RK_MEAN: {                                                                            \
            const T inv = (T)1 / (T)group; /* group 0: NaN, as 0 / 0 */                            \
            for (int64_t i = 0; i < n; i++) o[i] = group ? o[i] * inv : (T)NAN;                    \
            break;                                                                                 \
        }                                                                                          \
        case RK_L2: for (int64_t i = 0; i < n; i++) o[i] = SQRT(o[i]); break;                      \
        case RK_LOGSUM: for (int64_t i = 0; i < n; i++) o[i] = LOG(o[i]); break;                   \
        case RK_LOGSUMEXP: for (int64_t i = 0; i < n; i++) o[i] = LOG(o[i]) + shift[i]; break;     \
        default: break;                                                                            \
        }                                                                                          \
    }
DEF_FINALIZE_FLOAT(f32, float, sqrtf, logf)
DEF_FINALIZE_FLOAT(f64, double, sqrt, log)

/* Integer mean truncates toward zero, like the numpy reference's cast back to the int type. */
#define DEF_MEAN_INT(S, T)                                                                         \
    static void mean_##S(void *ov, int64_t n, int64_t group) {                                     \
        T *o = ov;                                                                                 \
        if (group <= 0) return;                                                                    \
        for (int64_t i = 0; i < n; i++) o[i] = (T)(o[i] / (T)group);                               \
    }
DEF_MEAN_INT(i8, int8_t)
DEF_MEAN_INT(i32, int32_t)
DEF_MEAN_INT(i64, int64_t)
DEF_MEAN_INT(u8, uint8_t)
DEF_MEAN_INT(u32, uint32_t)
DEF_MEAN_INT(u64, uint64_t)

static void reduce_finalize(reduce_kind kind, ember_dtype ct, void *o, const void *shift,
                            int64_t n, int64_t group) {
    switch (ct) {
    case EMBER_FLOAT: finalize_f32(kind, o, shift, n, group); return;
    case EMBER_DOUBLE: finalize_f64(kind, o, shift, n, group); return;
    default: break;
    }
    if (kind != RK_MEAN) return;
    switch (ct) {
    case EMBER_INT8: mean_i8(o, n, group); break;
    case EMBER_INT32: mean_i32(o, n, group); break;
    case EMBER_INT64: mean_i64(o, n, group); break;
    case EMBER_UINT8: mean_u8(o, n, group); break;
    case EMBER_UINT32: mean_u32(o, n, group); break;
    case EMBER_UINT64: mean_u64(o, n, group); break;
    default: break;
    }
}

/* LogSumExp shifts by the max, or by 0 where the max is not finite (all -inf, inf or NaN). */
static void lse_fix_shift(ember_dtype ct, void *shift, int64_t n) {
    if (ct == EMBER_FLOAT) {
        float *s = shift;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(s[i])) s[i] = 0;
    } else {
        double *s = shift;
        for (int64_t i = 0; i < n; i++)
            if (!isfinite(s[i])) s[i] = 0;
    }
}

static ember_status reduce_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const int ki = reduce_index(node);
    const reduce_kind kind = k_reduce_kinds[ki].kind;
    const red_base base = k_reduce_kinds[ki].base;
    const em_tensor *x = in[0];
    reduce_plan p;
    EM_TRY(reduce_make_plan(node, in, &p, err));
    if (p.unknown)
        return node_fail(err, EMBER_ERR_RUNTIME, node, "axes are not known when running");
    red_geom g;
    red_geom_init(&g, x->dims, p.reduced, x->rank);
    if (g.out_numel != em_numel(&out[0]))
        return node_fail(err, EMBER_ERR_RUNTIME, node, "output size does not match its shape");
    if (g.out_numel == 0) return EMBER_OK;

    const ember_dtype dt = x->dtype;
    const ember_dtype ct = reduce_compute_type(kind, dt);
    const size_t es = em_dtype_size(ct);
    const red_fns *table = red_table(ct);
    if (!table) return em_unsupported_type(node, 0, dt, err);

    const void *xd = x->data;
    void *od = out[0].data;
    if (ct != dt) {
        void *xc = em_exec_scratch(ex, (size_t)g.in_numel * es, err);
        void *oc = em_exec_scratch(ex, (size_t)g.out_numel * es, err);
        if (!xc || !oc) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        em_convert(xc, ct, x->data, dt, g.in_numel);
        xd = xc;
        od = oc;
    }

    void *shift = NULL;
    if (kind == RK_LOGSUMEXP) {
        shift = em_exec_scratch(ex, (size_t)g.out_numel * es, err);
        if (!shift) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        table[B_MAX].fill(shift, g.out_numel);
        EM_TRY(red_run(&g, &table[B_MAX], xd, shift, NULL, es, ex, err));
        lse_fix_shift(ct, shift, g.out_numel);
    }
    table[base].fill(od, g.out_numel);
    EM_TRY(red_run(&g, &table[base], xd, od, shift, es, ex, err));
    reduce_finalize(kind, ct, od, shift, g.out_numel, g.group);

    if (ct != dt) em_convert(out[0].data, dt, od, ct, g.out_numel);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * ArgMax / ArgMin
 * ---------------------------------------------------------------------------------------- */

/* NaN counts as the extreme value for both, as numpy's argmax/argmin: the first NaN wins, or
 * the last one with select_last_index. */
/* Bitwise on ints, not logical on bools: branch-free, so the loops vectorize. */
#define ARG_NAN(S, v) ((int)isnan_##S(v))
#define ARG_NUM(S, v) ((int)!isnan_##S(v))
#define ARG_FIRST_MAX(S, v, b) ((int)((v) > (b)) | (ARG_NAN(S, v) & ARG_NUM(S, b)))
#define ARG_LAST_MAX(S, v, b) (ARG_NAN(S, v) | (ARG_NUM(S, b) & (int)((v) >= (b))))
#define ARG_FIRST_MIN(S, v, b) ((int)((v) < (b)) | (ARG_NAN(S, v) & ARG_NUM(S, b)))
#define ARG_LAST_MIN(S, v, b) (ARG_NAN(S, v) | (ARG_NUM(S, b) & (int)((v) <= (b))))

/* Scratch of the strided kernels: int32 running indices (same width as float, so the select
 * vectorizes), then the running extremes. */
#define ARG_IDX_BYTES(inner) (((size_t)(inner) * sizeof(int32_t) + 63) / 64 * 64)

/* Reduced axis with a stride (inner > 1): running extremes of whole rows, branch-free. */
#define DEF_ARG_LOOP(S, T, NAME, COND)                                                             \
    static void NAME##_##S(const T *restrict x, int64_t *restrict out, void *scratch,              \
                           int64_t outer, int64_t n, int64_t inner) {                              \
        int32_t *restrict bi = scratch;                                                            \
        T *restrict best = (T *)((char *)scratch + ARG_IDX_BYTES(inner));                          \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            const T *xo = x + o * n * inner;                                                       \
            for (int64_t j = 0; j < inner; j++) {                                                  \
                best[j] = xo[j];                                                                   \
                bi[j] = 0;                                                                         \
            }                                                                                      \
            for (int64_t i = 1; i < n; i++) {                                                      \
                const T *restrict xi = xo + i * inner;                                             \
                const int32_t ii = (int32_t)i;                                                     \
                for (int64_t j = 0; j < inner; j++) {                                              \
                    T v = xi[j], b = best[j];                                                      \
                    bool take = COND(S, v, b);                                                     \
                    best[j] = take ? v : b;                                                        \
                    bi[j] = take ? ii : bi[j];                                                     \
                }                                                                                  \
            }                                                                                      \
            int64_t *restrict oi = out + o * inner;                                                \
            for (int64_t j = 0; j < inner; j++) oi[j] = bi[j];                                     \
        }                                                                                          \
    }

#define ARG_BLOCK 64

#define DEF_ARG(S, T)                                                                              \
    DEF_ARG_LOOP(S, T, argmax_first, ARG_FIRST_MAX)                                                \
    DEF_ARG_LOOP(S, T, argmax_last, ARG_LAST_MAX)                                                  \
    DEF_ARG_LOOP(S, T, argmin_first, ARG_FIRST_MIN)                                                \
    DEF_ARG_LOOP(S, T, argmin_last, ARG_LAST_MIN)                                                  \
    static inline unsigned any_eq_##S(const T *restrict x, int64_t m, T v) {                       \
        unsigned hit = 0;                                                                          \
        for (int64_t j = 0; j < m; j++) hit |= (unsigned)(x[j] == v);                              \
        return hit;                                                                                \
    }                                                                                              \
    /* One contiguous row: the extreme value by the vectorized reduction, then the block that      \
     * holds it by vectorized compares, then its index. */                                         \
    static int64_t arg_row_##S(const T *x, int64_t n, bool is_min, bool last) {                    \
        T m = is_min ? highest_##S() : lowest_##S();                                               \
        (is_min ? row_min_##S : row_max_##S)(&m, x, n, NULL);                                      \
        if (isnan_##S(m)) {                                                                        \
            for (int64_t t = 0; t < n; t++) {                                                      \
                int64_t i = last ? n - 1 - t : t;                                                  \
                if (isnan_##S(x[i])) return i;                                                     \
            }                                                                                      \
            return 0;                                                                              \
        }                                                                                          \
        if (!last) {                                                                               \
            int64_t i = 0;                                                                         \
            for (; i + ARG_BLOCK <= n; i += ARG_BLOCK)                                             \
                if (any_eq_##S(x + i, ARG_BLOCK, m)) break;                                        \
            for (; i < n; i++)                                                                     \
                if (x[i] == m) return i;                                                           \
        } else {                                                                                   \
            int64_t e = n;                                                                         \
            for (; e - ARG_BLOCK >= 0; e -= ARG_BLOCK)                                             \
                if (any_eq_##S(x + e - ARG_BLOCK, ARG_BLOCK, m)) break;                            \
            for (int64_t i = e - 1; i >= 0; i--)                                                   \
                if (x[i] == m) return i;                                                           \
        }                                                                                          \
        return 0;                                                                                  \
    }                                                                                              \
    static void arg_##S(const void *xv, int64_t *out, void *best, int64_t outer, int64_t n,        \
                        int64_t inner, bool is_min, bool last) {                                   \
        const T *x = xv;                                                                           \
        if (inner == 1) {                                                                          \
            for (int64_t o = 0; o < outer; o++) out[o] = arg_row_##S(x + o * n, n, is_min, last);  \
        } else if (is_min) {                                                                       \
            (last ? argmin_last_##S : argmin_first_##S)(x, out, best, outer, n, inner);            \
        } else {                                                                                   \
            (last ? argmax_last_##S : argmax_first_##S)(x, out, best, outer, n, inner);            \
        }                                                                                          \
    }

DEF_ARG(f32, float)
DEF_ARG(f64, double)
DEF_ARG(i8, int8_t)
DEF_ARG(i32, int32_t)
DEF_ARG(i64, int64_t)
DEF_ARG(u8, uint8_t)
DEF_ARG(u32, uint32_t)
DEF_ARG(u64, uint64_t)

typedef void (*arg_fn)(const void *x, int64_t *out, void *best, int64_t outer, int64_t n,
                       int64_t inner, bool is_min, bool last);

/* Kernel and the type it reads (float16/bfloat16 are widened to float32 first). */
static arg_fn arg_kernel(ember_dtype dt, ember_dtype *ct) {
    *ct = dt;
    switch (dt) {
    case EMBER_FLOAT: return arg_f32;
    case EMBER_FLOAT16: case EMBER_BFLOAT16: *ct = EMBER_FLOAT; return arg_f32;
    case EMBER_DOUBLE: return arg_f64;
    case EMBER_INT8: return arg_i8;
    case EMBER_INT32: return arg_i32;
    case EMBER_INT64: return arg_i64;
    case EMBER_UINT8: case EMBER_BOOL: return arg_u8;
    case EMBER_UINT32: return arg_u32;
    case EMBER_UINT64: return arg_u64;
    default: return NULL;
    }
}

static ember_status argm_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    ember_dtype ct;
    if (!arg_kernel(x->dtype, &ct)) return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank < 0) {
        out[0].dtype = EMBER_INT64;
        out[0].rank = -1;
        return EMBER_OK;
    }
    if (x->rank == 0)
        return node_fail(err, EMBER_ERR_SHAPE, node, "input must have rank >= 1, not a scalar");
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    const bool keepdims = em_attr_int(node, "keepdims", 1) != 0;
    /* An empty axis leaves nothing to pick for the (non-empty) rest of the output. The input
     * itself is empty then, so its element count cannot tell (fuzzer: [0, 1, 42], axis 0). */
    int64_t rest = 1;
    for (int i = 0; i < x->rank; i++)
        if (i != axis) rest = x->dims[i] ? rest : 0;
    if (x->dims[axis] == 0 && rest != 0)
        return node_fail(err, EMBER_ERR_SHAPE, node, "axis %d has size 0: no element to pick",
                         axis);
    int64_t dims[EM_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        if (i != axis)
            dims[r++] = x->dims[i];
        else if (keepdims)
            dims[r++] = 1;
    }
    em_tensor_set_shape(&out[0], EMBER_INT64, dims, r);
    return EMBER_OK;
}

typedef struct argm_job {
    arg_fn fn;
    const char *x;
    int64_t *out;
    int64_t n;
    size_t es;
    bool is_min, last;
} argm_job;

/* Contiguous rows [b, e). */
static void argm_rows(void *ctx, int64_t b, int64_t e) {
    const argm_job *j = ctx;
    j->fn(j->x + (size_t)(b * j->n) * j->es, j->out + b, NULL, e - b, j->n, 1, j->is_min,
          j->last);
}

static ember_status argm_run(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", 0), x->rank, &axis, err));
    const bool is_min = strcmp(node->op_type, "ArgMin") == 0;
    const bool last = op_version(node) >= 12 && em_attr_int(node, "select_last_index", 0) != 0;
    const int64_t outer = dims_prod(x->dims, 0, axis);
    const int64_t n = x->dims[axis];
    const int64_t inner = dims_prod(x->dims, axis + 1, x->rank);
    if (outer * inner == 0) return EMBER_OK;
    ember_dtype ct;
    arg_fn fn = arg_kernel(x->dtype, &ct);
    const void *xd = x->data;
    const int64_t total = em_numel(x);
    if (ct != x->dtype) {
        void *xc = em_exec_scratch(ex, (size_t)total * em_dtype_size(ct), err);
        if (!xc) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        em_convert(xc, ct, xd, x->dtype, total);
        xd = xc;
    }
    if (inner == 1) {
        argm_job j = {fn, xd, out[0].data, n, em_dtype_size(ct), is_min, last};
        if (total < RED_PARALLEL_MIN || exec_threads(ex) <= 1)
            argm_rows(&j, 0, outer);
        else
            em_parallel_for(ex, outer, n >= 16384 ? 1 : 16384 / n, argm_rows, &j);
        return EMBER_OK;
    }
    if (n > INT32_MAX)
        return node_fail(err, EMBER_ERR_UNSUPPORTED, node,
                         "axis of %lld elements with a stride is too long", (long long)n);
    void *best = em_exec_scratch(ex, ARG_IDX_BYTES(inner) + (size_t)inner * em_dtype_size(ct), err);
    if (!best) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    fn(xd, out[0].data, best, outer, n, inner, is_min, last);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * TopK: per slice, a heap of the k best (worst at the root), then extracted in order. Ties go
 * to the lower index; NaN ranks above every number.
 * ---------------------------------------------------------------------------------------- */

#define DEF_TOPK(S, T)                                                                             \
    typedef struct topk_item_##S {                                                                 \
        T v;                                                                                       \
        int64_t i;                                                                                 \
    } topk_item_##S;                                                                               \
    /* Strict order: a comes before b in the output. */                                            \
    static inline bool topk_before_##S(topk_item_##S a, topk_item_##S b, bool largest) {           \
        bool an = isnan_##S(a.v), bn = isnan_##S(b.v);                                             \
        if (an || bn) {                                                                            \
            if (an && bn) return a.i < b.i;                                                        \
            return largest ? an : bn;                                                              \
        }                                                                                          \
        if (a.v != b.v) return largest ? a.v > b.v : a.v < b.v;                                    \
        return a.i < b.i;                                                                          \
    }                                                                                              \
    static void topk_sift_down_##S(topk_item_##S *h, int64_t size, int64_t pos, bool largest) {    \
        for (;;) {                                                                                 \
            int64_t l = 2 * pos + 1, r = l + 1, w = pos;                                           \
            if (l < size && topk_before_##S(h[w], h[l], largest)) w = l;                           \
            if (r < size && topk_before_##S(h[w], h[r], largest)) w = r;                           \
            if (w == pos) return;                                                                  \
            topk_item_##S t = h[w];                                                                \
            h[w] = h[pos];                                                                         \
            h[pos] = t;                                                                            \
            pos = w;                                                                               \
        }                                                                                          \
    }                                                                                              \
    static void topk_##S(const void *xv, void *vv, int64_t *restrict idx, void *heapv,             \
                         int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest) {       \
        const T *x = xv;                                                                           \
        T *vals = vv;                                                                              \
        topk_item_##S *h = heapv;                                                                  \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            for (int64_t j = 0; j < inner; j++) {                                                  \
                const T *xs = x + o * n * inner + j;                                               \
                int64_t size = 0;                                                                  \
                for (int64_t i = 0; i < n; i++) {                                                  \
                    topk_item_##S it = {xs[i * inner], i};                                         \
                    if (size < k) { /* push, sift up: the worst item rises to the root */          \
                        int64_t p = size++;                                                        \
                        while (p > 0 && topk_before_##S(h[(p - 1) / 2], it, largest)) {            \
                            h[p] = h[(p - 1) / 2];                                                 \
                            p = (p - 1) / 2;                                                       \
                        }                                                                          \
                        h[p] = it;                                                                 \
                    } else if (topk_before_##S(it, h[0], largest)) {                               \
                        h[0] = it;                                                                 \
                        topk_sift_down_##S(h, size, 0, largest);                                   \
                    }                                                                              \
                }                                                                                  \
                T *vo = vals + o * k * inner + j;                                                  \
                int64_t *io = idx + o * k * inner + j;                                             \
                for (int64_t r = size - 1; r >= 0; r--) { /* worst first, into the back */         \
                    vo[r * inner] = h[0].v;                                                        \
                    io[r * inner] = h[0].i;                                                        \
                    h[0] = h[size - 1];                                                            \
                    size--;                                                                        \
                    topk_sift_down_##S(h, size, 0, largest);                                       \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEF_TOPK(f32, float)
DEF_TOPK(f64, double)
DEF_TOPK(i8, int8_t)
DEF_TOPK(i32, int32_t)
DEF_TOPK(i64, int64_t)
DEF_TOPK(u8, uint8_t)
DEF_TOPK(u32, uint32_t)
DEF_TOPK(u64, uint64_t)

typedef void (*topk_fn)(const void *x, void *vals, int64_t *idx, void *heap, int64_t outer,
                        int64_t n, int64_t inner, int64_t k, bool largest);

static topk_fn topk_kernel(ember_dtype dt, ember_dtype *ct, size_t *item) {
    *ct = dt;
    switch (dt) {
    case EMBER_FLOAT16: case EMBER_BFLOAT16: *ct = EMBER_FLOAT; /* fall through */
    case EMBER_FLOAT: *item = sizeof(topk_item_f32); return topk_f32;
    case EMBER_DOUBLE: *item = sizeof(topk_item_f64); return topk_f64;
    case EMBER_INT8: *item = sizeof(topk_item_i8); return topk_i8;
    case EMBER_INT32: *item = sizeof(topk_item_i32); return topk_i32;
    case EMBER_INT64: *item = sizeof(topk_item_i64); return topk_i64;
    case EMBER_UINT8: *item = sizeof(topk_item_u8); return topk_u8;
    case EMBER_UINT32: *item = sizeof(topk_item_u32); return topk_u32;
    case EMBER_UINT64: *item = sizeof(topk_item_u64); return topk_u64;
    default: return NULL;
    }
}

/* k from the attribute (opset 1) or the input (10+); -1 when not known yet. */
static ember_status topk_k(const em_node *node, em_tensor *const *in, int64_t *k,
                           ember_error *err) {
    if (op_version(node) < 10) {
        const em_attr *a = em_node_attr(node, "k");
        if (!a || a->type != EM_ATTR_INT)
            return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "attribute k is required");
        *k = a->i;
    } else {
        const em_tensor *kt = opt_input(node, in, 1);
        if (!kt) return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "input K is required");
        if (kt->dtype != EMBER_INT64)
            return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "K must be int64, not %s",
                             em_dtype_name(kt->dtype));
        if (!kt->data || kt->rank < 0) {
            *k = -1;
            return EMBER_OK;
        }
        if (em_numel(kt) != 1)
            return node_fail(err, EMBER_ERR_SHAPE, node, "K must hold exactly one value");
        *k = em_get_i64(kt, 0);
    }
    if (*k < 0)
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node, "k = %lld is negative",
                         (long long)*k);
    return EMBER_OK;
}

static ember_status topk_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    ember_dtype ct;
    size_t item;
    if (!topk_kernel(x->dtype, &ct, &item)) return em_unsupported_type(node, 0, x->dtype, err);
    int64_t k = 0;
    EM_TRY(topk_k(node, in, &k, err));
    out[0].dtype = x->dtype;
    out[1].dtype = EMBER_INT64;
    if (x->rank < 0 || k < 0) {
        out[0].rank = out[1].rank = -1;
        return EMBER_OK;
    }
    if (x->rank == 0) return node_fail(err, EMBER_ERR_SHAPE, node, "input must not be a scalar");
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", -1), x->rank, &axis, err));
    if (x->dims[axis] >= 0 && k > x->dims[axis])
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node,
                         "k = %lld is larger than axis %d of size %lld", (long long)k, axis,
                         (long long)x->dims[axis]);
    int64_t dims[EM_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = k;
    em_tensor_set_shape(&out[0], x->dtype, dims, x->rank);
    em_tensor_set_shape(&out[1], EMBER_INT64, dims, x->rank);
    return EMBER_OK;
}

static ember_status topk_run(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int64_t k = 0;
    EM_TRY(topk_k(node, in, &k, err));
    int axis;
    EM_TRY(em_norm_axis(node, em_attr_int(node, "axis", -1), x->rank, &axis, err));
    const bool largest = op_version(node) < 11 || em_attr_int(node, "largest", 1) != 0;
    const int64_t outer = dims_prod(x->dims, 0, axis);
    const int64_t n = x->dims[axis];
    const int64_t inner = dims_prod(x->dims, axis + 1, x->rank);
    if (k > n)
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, node,
                         "k = %lld is larger than axis %d of size %lld", (long long)k, axis,
                         (long long)n);
    if (k == 0 || outer * inner == 0) return EMBER_OK;
    ember_dtype ct;
    size_t item;
    topk_fn fn = topk_kernel(x->dtype, &ct, &item);
    const void *xd = x->data;
    void *vd = out[0].data;
    const int64_t total = em_numel(x), out_total = outer * k * inner;
    if (ct != x->dtype) {
        void *xc = em_exec_scratch(ex, (size_t)total * em_dtype_size(ct), err);
        void *vc = em_exec_scratch(ex, (size_t)out_total * em_dtype_size(ct), err);
        if (!xc || !vc) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        em_convert(xc, ct, xd, x->dtype, total);
        xd = xc;
        vd = vc;
    }
    void *heap = em_exec_scratch(ex, (size_t)k * item, err);
    if (!heap) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    fn(xd, vd, out[1].data, heap, outer, n, inner, k, largest);
    if (ct != x->dtype) em_convert(out[0].data, x->dtype, vd, ct, out_total);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * CumSum
 * ---------------------------------------------------------------------------------------- */

#define DEF_CUMSUM(S, T)                                                                           \
    static void cumsum_##S(const void *xv, void *yv, int64_t outer, int64_t n, int64_t inner,      \
                           bool exclusive, bool reverse) {                                         \
        const T *x = xv;                                                                           \
        T *y = yv;                                                                                 \
        for (int64_t o = 0; o < outer; o++) {                                                      \
            const T *xo = x + o * n * inner;                                                       \
            T *yo = y + o * n * inner;                                                             \
            for (int64_t t = 0; t < n; t++) {                                                      \
                int64_t i = reverse ? n - 1 - t : t;                                               \
                int64_t ip = reverse ? i + 1 : i - 1;                                              \
                T *restrict yi = yo + i * inner;                                                   \
                const T *restrict src = xo + (exclusive ? ip : i) * inner;                         \
                if (t == 0) {                                                                      \
                    for (int64_t j = 0; j < inner; j++)                                            \
                        yi[j] = exclusive ? (T)0 : xo[i * inner + j];                              \
                } else {                                                                           \
                    const T *restrict prev = yo + ip * inner;                                      \
                    for (int64_t j = 0; j < inner; j++) yi[j] = add_##S(prev[j], src[j]);          \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEF_CUMSUM(f32, float)
DEF_CUMSUM(f64, double)
DEF_CUMSUM(i8, int8_t)
DEF_CUMSUM(i32, int32_t)
DEF_CUMSUM(i64, int64_t)
DEF_CUMSUM(u8, uint8_t)
DEF_CUMSUM(u32, uint32_t)
DEF_CUMSUM(u64, uint64_t)

typedef void (*cumsum_fn)(const void *x, void *y, int64_t outer, int64_t n, int64_t inner,
                          bool exclusive, bool reverse);

static cumsum_fn cumsum_kernel(ember_dtype dt, ember_dtype *ct) {
    *ct = dt;
    switch (dt) {
    case EMBER_FLOAT: return cumsum_f32;
    case EMBER_FLOAT16: case EMBER_BFLOAT16: *ct = EMBER_FLOAT; return cumsum_f32;
    case EMBER_DOUBLE: return cumsum_f64;
    case EMBER_INT8: return cumsum_i8;
    case EMBER_INT32: return cumsum_i32;
    case EMBER_INT64: return cumsum_i64;
    case EMBER_UINT8: return cumsum_u8;
    case EMBER_UINT32: return cumsum_u32;
    case EMBER_UINT64: return cumsum_u64;
    default: return NULL;
    }
}

static ember_status cumsum_axis(const em_node *node, em_tensor *const *in, int *axis,
                                ember_error *err) {
    const em_tensor *a = opt_input(node, in, 1);
    if (!a) return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "input axis is required");
    if (a->dtype != EMBER_INT32 && a->dtype != EMBER_INT64)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "axis must be int32 or int64");
    if (a->rank > 1 || (a->rank == 1 && a->dims[0] != 1))
        return node_fail(err, EMBER_ERR_SHAPE, node, "axis must be a scalar");
    if (!a->data) {
        *axis = -1;
        return EMBER_OK;
    }
    return em_norm_axis(node, em_get_i64(a, 0), in[0]->rank, axis, err);
}

static ember_status cumsum_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    ember_dtype ct;
    if (!cumsum_kernel(x->dtype, &ct)) return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank < 0) {
        out[0].dtype = x->dtype;
        out[0].rank = -1;
        return EMBER_OK;
    }
    if (x->rank == 0) return node_fail(err, EMBER_ERR_SHAPE, node, "input must not be a scalar");
    int axis;
    EM_TRY(cumsum_axis(node, in, &axis, err));
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status cumsum_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int axis;
    EM_TRY(cumsum_axis(node, in, &axis, err));
    const int64_t total = em_numel(x);
    if (total == 0) return EMBER_OK;
    ember_dtype ct;
    cumsum_fn fn = cumsum_kernel(x->dtype, &ct);
    const void *xd = x->data;
    void *yd = out[0].data;
    if (ct != x->dtype) {
        void *xc = em_exec_scratch(ex, (size_t)total * em_dtype_size(ct), err);
        void *yc = em_exec_scratch(ex, (size_t)total * em_dtype_size(ct), err);
        if (!xc || !yc) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        em_convert(xc, ct, xd, x->dtype, total);
        xd = xc;
        yd = yc;
    }
    fn(xd, yd, dims_prod(x->dims, 0, axis), x->dims[axis], dims_prod(x->dims, axis + 1, x->rank),
       em_attr_int(node, "exclusive", 0) != 0, em_attr_int(node, "reverse", 0) != 0);
    if (ct != x->dtype) em_convert(out[0].data, x->dtype, yd, ct, total);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss
 * ---------------------------------------------------------------------------------------- */

typedef enum loss_reduction { LR_NONE, LR_SUM, LR_MEAN } loss_reduction;

static ember_status loss_reduction_attr(const em_node *node, loss_reduction *r, ember_error *err) {
    const char *s = em_attr_string(node, "reduction", "mean");
    if (strcmp(s, "none") == 0)
        *r = LR_NONE;
    else if (strcmp(s, "sum") == 0)
        *r = LR_SUM;
    else if (strcmp(s, "mean") == 0)
        *r = LR_MEAN;
    else
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node,
                         "reduction '%s' is not one of none, sum, mean", s);
    return EMBER_OK;
}

/* Shared shape checks: scores (N, C, d1..dk), target (N, d1..dk), weight (C). */
static ember_status loss_infer_common(const em_node *node, em_tensor *const *in, em_tensor *out,
                                      ember_error *err) {
    const em_tensor *x = in[0], *t = in[1];
    const em_tensor *w = opt_input(node, in, 2);
    if (x->dtype != EMBER_FLOAT && x->dtype != EMBER_DOUBLE && x->dtype != EMBER_FLOAT16 &&
        x->dtype != EMBER_BFLOAT16)
        return em_unsupported_type(node, 0, x->dtype, err);
    if (t->dtype != EMBER_INT32 && t->dtype != EMBER_INT64)
        return em_unsupported_type(node, 1, t->dtype, err);
    if (w && w->dtype != x->dtype)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, node, "weight type %s differs from %s",
                         em_dtype_name(w->dtype), em_dtype_name(x->dtype));
    loss_reduction red = LR_MEAN;
    EM_TRY(loss_reduction_attr(node, &red, err));
    if (x->rank < 0 || t->rank < 0) {
        out[0].dtype = x->dtype;
        out[0].rank = red == LR_NONE ? -1 : 0;
        return EMBER_OK;
    }
    if (x->rank < 2)
        return node_fail(err, EMBER_ERR_SHAPE, node, "scores must have rank >= 2 (N, C, ...)");
    bool ok = t->rank == x->rank - 1 && t->dims[0] == x->dims[0];
    for (int i = 2; ok && i < x->rank; i++) ok = t->dims[i - 1] == x->dims[i];
    if (!ok) {
        char a[128], b[128];
        return node_fail(err, EMBER_ERR_SHAPE, node, "target %s does not fit scores %s",
                         em_shape_str(t, b, sizeof b), em_shape_str(x, a, sizeof a));
    }
    if (w && w->rank >= 0 && (w->rank != 1 || w->dims[0] != x->dims[1]))
        return node_fail(err, EMBER_ERR_SHAPE, node, "weight must have shape (C) = (%lld)",
                         (long long)x->dims[1]);
    if (red == LR_NONE)
        em_tensor_set_shape(&out[0], x->dtype, t->dims, t->rank);
    else
        em_tensor_set_shape(&out[0], x->dtype, NULL, 0);
    return EMBER_OK;
}

typedef struct loss_args {
    const em_node *node;
    const em_tensor *target;
    int64_t n, c, d;
    bool has_ignore;
    int64_t ignore;
    loss_reduction red;
} loss_args;

static inline int64_t loss_target(const em_tensor *t, int64_t i) {
    return t->dtype == EMBER_INT32 ? ((const int32_t *)t->data)[i] : ((const int64_t *)t->data)[i];
}

/* loss = -logp[n, target, d] * weight[target]; ignored targets count 0 in loss and weight. */
#define DEF_NLL(S, T)                                                                              \
    static ember_status nll_##S(const loss_args *a, const T *logp, const T *w, T *out,             \
                                ember_error *err) {                                                \
        double sum = 0, wsum = 0;                                                                  \
        for (int64_t n = 0; n < a->n; n++) {                                                       \
            for (int64_t d = 0; d < a->d; d++) {                                                   \
                int64_t pos = n * a->d + d;                                                        \
                int64_t t = loss_target(a->target, pos);                                           \
                double l = 0, wt = 0;                                                              \
                if (!(a->has_ignore && t == a->ignore)) {                                          \
                    if (t < 0 || t >= a->c)                                                        \
                        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, a->node,                 \
                                         "target %lld at position %lld is outside [0, %lld)",      \
                                         (long long)t, (long long)pos, (long long)a->c);           \
                    wt = w ? (double)w[t] : 1.0;                                                   \
                    l = -(double)logp[(n * a->c + t) * a->d + d] * wt;                             \
                }                                                                                  \
                if (a->red == LR_NONE)                                                             \
                    out[pos] = (T)l;                                                               \
                sum += l;                                                                          \
                wsum += wt;                                                                        \
            }                                                                                      \
        }                                                                                          \
        if (a->red == LR_SUM) out[0] = (T)sum;                                                     \
        if (a->red == LR_MEAN) out[0] = (T)(sum / wsum);                                           \
        return EMBER_OK;                                                                           \
    }                                                                                              \
    /* log_softmax over the class axis (stride d). */                                              \
    static void log_softmax_axis1_##S(const T *x, T *y, int64_t nn, int64_t c, int64_t d) {        \
        for (int64_t n = 0; n < nn; n++) {                                                         \
            for (int64_t j = 0; j < d; j++) {                                                      \
                const T *xs = x + n * c * d + j;                                                   \
                T *ys = y + n * c * d + j;                                                         \
                T mx = xs[0];                                                                      \
                for (int64_t k = 1; k < c; k++) mx = xs[k * d] > mx ? xs[k * d] : mx;              \
                double s = 0;                                                                      \
                for (int64_t k = 0; k < c; k++) s += exp((double)(xs[k * d] - mx));                \
                T ls = (T)log(s);                                                                  \
                for (int64_t k = 0; k < c; k++) ys[k * d] = xs[k * d] - mx - ls;                   \
            }                                                                                      \
        }                                                                                          \
    }

DEF_NLL(f32, float)
DEF_NLL(f64, double)

static ember_status nll_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    return loss_infer_common(node, in, out, err);
}

static ember_status sce_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    EM_TRY(loss_infer_common(node, in, out, err));
    if (node->n_outputs > 1) {
        if (in[0]->rank < 0) {
            out[1].dtype = in[0]->dtype;
            out[1].rank = -1;
        } else {
            em_tensor_set_shape(&out[1], in[0]->dtype, in[0]->dims, in[0]->rank);
        }
    }
    return EMBER_OK;
}

/* Both losses; `softmax` first turns scores into log-probabilities. */
static ember_status loss_run(const em_node *node, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, bool softmax, ember_error *err) {
    const em_tensor *x = in[0];
    const em_tensor *w = opt_input(node, in, 2);
    loss_args a = {node, in[1], x->dims[0], x->dims[1], dims_prod(x->dims, 2, x->rank), false, 0,
                   LR_MEAN};
    EM_TRY(loss_reduction_attr(node, &a.red, err));
    const em_attr *ii = em_node_attr(node, "ignore_index");
    if (ii && ii->type == EM_ATTR_INT) {
        a.has_ignore = true;
        a.ignore = ii->i;
    }
    const int64_t total = em_numel(x), out_total = em_numel(&out[0]);
    const ember_dtype dt = x->dtype;
    const ember_dtype ct = dt == EMBER_DOUBLE ? EMBER_DOUBLE : EMBER_FLOAT;
    const size_t es = em_dtype_size(ct);
    const void *xd = x->data, *wd = w ? w->data : NULL;
    void *od = out[0].data;
    if (ct != dt) {
        void *xc = em_exec_scratch(ex, (size_t)total * es, err);
        void *oc = em_exec_scratch(ex, (size_t)(out_total > 0 ? out_total : 1) * es, err);
        if (!xc || !oc) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        em_convert(xc, ct, xd, dt, total);
        xd = xc;
        od = oc;
        if (w) {
            void *wc = em_exec_scratch(ex, (size_t)a.c * es, err);
            if (!wc) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            em_convert(wc, ct, wd, dt, a.c);
            wd = wc;
        }
    }
    const void *logp = xd;
    void *lp = NULL;
    if (softmax) {
        const bool want_lp = has_output(node, out, 1);
        lp = want_lp && ct == dt ? out[1].data : em_exec_scratch(ex, (size_t)total * es, err);
        if (!lp) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        if (ct == EMBER_DOUBLE)
            log_softmax_axis1_f64(xd, lp, a.n, a.c, a.d);
        else
            log_softmax_axis1_f32(xd, lp, a.n, a.c, a.d);
        logp = lp;
        if (want_lp && ct != dt) em_convert(out[1].data, dt, lp, ct, total);
    }
    if (ct == EMBER_DOUBLE)
        EM_TRY(nll_f64(&a, logp, wd, od, err));
    else
        EM_TRY(nll_f32(&a, logp, wd, od, err));
    if (ct != dt) em_convert(out[0].data, dt, od, ct, out_total);
    return EMBER_OK;
}

static ember_status nll_run(const em_node *node, void *state, em_tensor *const *in,
                            em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    return loss_run(node, in, out, ex, false, err);
}

static ember_status sce_run(const em_node *node, void *state, em_tensor *const *in,
                            em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    return loss_run(node, in, out, ex, true, err);
}

/* ------------------------------------------------------------------------------------------ */

#define REDUCE_OP(NAME, UNTIL) {"", NAME, 1, UNTIL, NULL, reduce_infer, reduce_run, NULL, 0}

static const em_op k_reduce_ops[] = {
    REDUCE_OP("ReduceSum", 13),
    REDUCE_OP("ReduceMean", 18),
    REDUCE_OP("ReduceMax", 20),
    REDUCE_OP("ReduceMin", 20),
    REDUCE_OP("ReduceProd", 18),
    REDUCE_OP("ReduceL1", 18),
    REDUCE_OP("ReduceL2", 18),
    REDUCE_OP("ReduceLogSum", 18),
    REDUCE_OP("ReduceLogSumExp", 18),
    REDUCE_OP("ReduceSumSquare", 18),
    {"", "ArgMax", 1, 13, NULL, argm_infer, argm_run, NULL, 0},
    {"", "ArgMin", 1, 13, NULL, argm_infer, argm_run, NULL, 0},
    {"", "TopK", 1, 11, NULL, topk_infer, topk_run, NULL, 0},
    {"", "CumSum", 11, 14, NULL, cumsum_infer, cumsum_run, NULL, 0},
    {"", "NegativeLogLikelihoodLoss", 12, 22, NULL, nll_infer, nll_run, NULL, 0},
    {"", "SoftmaxCrossEntropyLoss", 12, 13, NULL, sce_infer, sce_run, NULL, 0},
};

EM_OPS_FAMILY(reduce) {
    *count = sizeof k_reduce_ops / sizeof k_reduce_ops[0];
    return k_reduce_ops;
}
