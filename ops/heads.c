/* Fused task heads: SigmoidThreshold, SoftmaxArgMax, CumulativeOrdinal (domain "ai.ember",
 * version 1). The operators and their attributes are described in heads.h. */
#include "heads.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "sigmoid.h"

/* ---------------------------------------------------------------------------------------------
 * The exact logit-space cut
 * ------------------------------------------------------------------------------------------- */

/* Position of a non-NaN float in the order -inf < ... < -0 < +0 < ... < +inf, as an integer:
 * +0 -> 0, -0 -> -1, +inf -> 0x7f800000, -inf -> -0x7f800001. */
static int64_t f32_order(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if (bits & 0x80000000u) return -(int64_t)(bits & 0x7fffffffu) - 1;
    return (int64_t)bits;
}

static float f32_from_order(int64_t order) {
    uint32_t bits = order >= 0 ? (uint32_t)order : ((uint32_t)(-(order + 1)) | 0x80000000u);
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* The exact sigmoid, in double (its own error, ~1e-16, is covered by the margin below). */
static double exact_sigmoid(float x) {
    return 1.0 / (1.0 + exp(-(double)x));
}

/* The shared float32 sigmoid s(x) satisfies |s - S| <= EM_SIGMOID_MAX_ULP 2^-23 S + 2^-126
 * around the exact S; one more ulp (and twice the absolute term) of margin covers the double
 * evaluation of S. */
static const double k_rel = (EM_SIGMOID_MAX_ULP + 1) * 0x1p-23;
static const double k_abs = 0x1p-125;

/* Certainly false at x: every float the shared sigmoid may return at x fails the test. */
static bool certainly_false(float x, float t, bool inclusive) {
    double upper = exact_sigmoid(x) * (1.0 + k_rel) + k_abs;
    return inclusive ? upper < t : upper <= t;
}

static bool certainly_true(float x, float t, bool inclusive) {
    double lower = exact_sigmoid(x) * (1.0 - k_rel) - k_abs;
    return inclusive ? lower >= t : lower > t;
}

/* Largest x (in float order) where pred holds, for a pred that holds up to some point and not
 * after; NaN if it holds nowhere. */
static float last_where(bool (*pred)(float, float, bool), float t, bool inclusive) {
    int64_t lo = f32_order(-INFINITY), hi = f32_order(INFINITY);
    if (!pred(f32_from_order(lo), t, inclusive)) return NAN;
    if (pred(f32_from_order(hi), t, inclusive)) return INFINITY;
    while (hi - lo > 1) { /* pred(lo) holds, pred(hi) does not */
        int64_t mid = lo + (hi - lo) / 2;
        if (pred(f32_from_order(mid), t, inclusive))
            lo = mid;
        else
            hi = mid;
    }
    return f32_from_order(lo);
}

/* Smallest x where pred holds, for a pred that fails up to some point and holds after. */
static float first_where(bool (*pred)(float, float, bool), float t, bool inclusive) {
    int64_t lo = f32_order(-INFINITY), hi = f32_order(INFINITY);
    if (!pred(f32_from_order(hi), t, inclusive)) return NAN;
    if (pred(f32_from_order(lo), t, inclusive)) return -INFINITY;
    while (hi - lo > 1) { /* pred(lo) fails, pred(hi) holds */
        int64_t mid = lo + (hi - lo) / 2;
        if (pred(f32_from_order(mid), t, inclusive))
            hi = mid;
        else
            lo = mid;
    }
    return f32_from_order(hi);
}

em_sigmoid_cut em_sigmoid_cut_f32(float t, bool inclusive) {
    em_sigmoid_cut c = {NAN, NAN, t, inclusive};
    if (t != t) {
        c.lo = INFINITY; /* nothing compares true with NaN */
        return c;
    }
    /* The shared sigmoid stays in [0, 1]: thresholds outside decide everything. */
    if (inclusive ? t > 1.0f : t >= 1.0f) {
        c.lo = INFINITY;
        return c;
    }
    if (inclusive ? t <= 0.0f : t < 0.0f) {
        c.hi = -INFINITY;
        return c;
    }
    c.lo = last_where(certainly_false, t, inclusive);
    c.hi = first_where(certainly_true, t, inclusive);
    return c;
}

static inline bool sigmoid_test(float s, float t, bool inclusive) {
    return inclusive ? s >= t : s > t;
}

bool em_sigmoid_cut_test(const em_sigmoid_cut *c, float x) {
    if (x >= c->hi) return true;
    if (x <= c->lo) return false;
    return sigmoid_test(em_sigmoid_f32(x), c->t, c->inclusive);
}

/* ---------------------------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------------------------- */

/* The kernels below are a built-in plugin: they see the node through the public
 * ember_op_context (include/ember.h) and are registered with ember_register_op. */

static ember_status node_fail(const ember_op_context *ctx, const char *op, ember_status code,
                              const char *what, ember_error *err) {
    return em_fail(err, code, "node '%s' (%s:%s): %s", ember_op_name(ctx), EM_HEADS_DOMAIN, op,
                   what);
}

bool em_head_decision_type_ok(int64_t to) {
    switch (to) {
    case EMBER_BOOL:
    case EMBER_UINT8:
    case EMBER_INT8:
    case EMBER_UINT16:
    case EMBER_INT16:
    case EMBER_UINT32:
    case EMBER_INT32:
    case EMBER_UINT64:
    case EMBER_INT64:
    case EMBER_FLOAT:
    case EMBER_DOUBLE:
    case EMBER_FLOAT16:
    case EMBER_BFLOAT16:
        return true;
    default:
        return false;
    }
}

/* Store a small non-negative count (or 0 / 1 decision) as element i of an array of type `to`. */
static void store_count(void *out, ember_dtype to, int64_t i, int64_t v) {
    switch (to) {
    case EMBER_BOOL:
    case EMBER_UINT8:
        ((uint8_t *)out)[i] = (uint8_t)(v != 0 ? v : 0);
        break;
    case EMBER_INT8:
        ((int8_t *)out)[i] = (int8_t)v;
        break;
    case EMBER_UINT16:
        ((uint16_t *)out)[i] = (uint16_t)v;
        break;
    case EMBER_INT16:
        ((int16_t *)out)[i] = (int16_t)v;
        break;
    case EMBER_UINT32:
        ((uint32_t *)out)[i] = (uint32_t)v;
        break;
    case EMBER_INT32:
        ((int32_t *)out)[i] = (int32_t)v;
        break;
    case EMBER_UINT64:
        ((uint64_t *)out)[i] = (uint64_t)v;
        break;
    case EMBER_INT64:
        ((int64_t *)out)[i] = v;
        break;
    case EMBER_FLOAT:
        ((float *)out)[i] = (float)v;
        break;
    case EMBER_DOUBLE:
        ((double *)out)[i] = (double)v;
        break;
    case EMBER_FLOAT16:
        ((uint16_t *)out)[i] = em_f32_to_f16((float)v);
        break;
    case EMBER_BFLOAT16:
        ((uint16_t *)out)[i] = em_f32_to_bf16((float)v);
        break;
    default:
        break;
    }
}

static bool output_wanted(const ember_op_context *ctx, int k) {
    return ember_op_output_present(ctx, (size_t)k) != 0;
}

static void set_shape(ember_tensor_shape *out, ember_dtype dt, const int64_t *dims, int rank) {
    out->dtype = dt;
    out->rank = rank;
    for (int d = 0; d < rank; d++) out->dims[d] = dims[d];
}

/* Omitted optional outputs still get a (empty) shape: the executor sizes every output. */
static void set_empty(ember_tensor_shape *out, ember_dtype dt) {
    int64_t zero = 0;
    set_shape(out, dt, &zero, 1);
}

/* The logits: one float32 input. Its shape (dims may be -1 at load) goes to *x. */
typedef struct logits {
    int rank;
    const int64_t *dims;
    const float *data; /* NULL during static inference */
} logits;

static ember_status get_logits(const ember_op_context *ctx, const char *op, size_t n_inputs,
                               const ember_tensor *const *inputs, logits *x, ember_error *err) {
    if (n_inputs < 1 || !inputs[0])
        return node_fail(ctx, op, EMBER_ERR_INVALID_MODEL, "the logits input is missing", err);
    ember_dtype dt = ember_tensor_dtype(inputs[0]);
    if (dt != EMBER_FLOAT)
        return em_fail(err, EMBER_ERR_UNSUPPORTED,
                       "node '%s' (%s:%s): the logits are %s; the kernel takes float32",
                       ember_op_name(ctx), EM_HEADS_DOMAIN, op, ember_dtype_name(dt));
    x->rank = ember_tensor_rank(inputs[0]);
    x->dims = ember_tensor_dims(inputs[0]);
    x->data = ember_tensor_const_data(inputs[0]);
    return EMBER_OK;
}

static int64_t numel(const logits *x) {
    int64_t n = 1;
    for (int d = 0; d < x->rank; d++) n *= x->dims[d];
    return n;
}

/* Smallest number of rows of `row_len` elements worth a thread: about 64K elements. */
static int64_t row_grain(int64_t row_len) {
    int64_t g = (int64_t)65536 / (row_len > 0 ? row_len : 1);
    return g > 0 ? g : 1;
}

bool em_head_logits_fit(const char *head, const char *output, int rank, int64_t count,
                        ember_error *err) {
    if (rank < 0 || count < 0) return true; /* known at run time */
    const char *need = NULL, *hint = "";
    if (strcmp(head, "binary") == 0 && rank >= 2 && count != 1) {
        need = "one logit per row";
        hint = " (use multilabel or multiclass)";
    } else if (strcmp(head, "multiclass") == 0 && count < 2) {
        need = "at least 2 logits per row";
        hint = " (an argmax over one value is always 0: use binary)";
    } else if (strcmp(head, "ordinal") == 0 && count < 1) {
        need = "at least 1 logit per row (K-1 for K classes)";
    }
    if (!need) return true;
    em_fail(err, EMBER_ERR_SHAPE, "head %s on output '%s' needs %s, the output has %lld%s", head,
            output, need, (long long)count, hint);
    return false;
}

/* A head attached on request (attribute `head`, set by em_head_attach) checks the number of
 * logits per row (the size of `axis`) once it is known: the fused op itself accepts any. The
 * node is named after the logits output it reads. */
static ember_status check_head(const ember_op_context *ctx, const logits *x, int axis,
                               ember_error *err) {
    const char *head = ember_op_attr_string(ctx, "head", "");
    if (!head[0] || x->rank < 0) return EMBER_OK;
    int64_t count = x->rank == 0 ? 1 : x->dims[axis];
    return em_head_logits_fit(head, ember_op_name(ctx), x->rank, count, err) ? EMBER_OK
                                                                              : EMBER_ERR_SHAPE;
}

/* ---------------------------------------------------------------------------------------------
 * SigmoidThreshold
 * ------------------------------------------------------------------------------------------- */

enum { MODE_GREATER, MODE_GREATER_EQUAL, MODE_ROUND };

typedef struct threshold_config {
    int mode;
    ember_dtype to;
    int64_t n_thresholds; /* 1, or the label count along the last axis */
    const float *thresholds;
    float single;
} threshold_config;

#define THRESHOLD "SigmoidThreshold"

static ember_status threshold_parse(const ember_op_context *n, threshold_config *c,
                                    ember_error *err) {
    memset(c, 0, sizeof *c);
    const char *mode = ember_op_attr_string(n, "mode", "greater");
    if (strcmp(mode, "greater") == 0)
        c->mode = MODE_GREATER;
    else if (strcmp(mode, "greater_equal") == 0)
        c->mode = MODE_GREATER_EQUAL;
    else if (strcmp(mode, "round") == 0)
        c->mode = MODE_ROUND;
    else
        return node_fail(n, THRESHOLD, EMBER_ERR_INVALID_MODEL,
                         "mode must be \"greater\", \"greater_equal\" or \"round\"", err);
    int64_t to = ember_op_attr_int(n, "to", c->mode == MODE_ROUND ? EMBER_FLOAT : EMBER_BOOL);
    if (!em_head_decision_type_ok(to))
        return node_fail(n, THRESHOLD, EMBER_ERR_UNSUPPORTED,
                         "'to' is not a numeric or bool type", err);
    c->to = (ember_dtype)to;
    size_t count = 0;
    const float *list = ember_op_attr_floats(n, "thresholds", &count);
    /* absent 'threshold' reads as NaN, which no valid threshold is */
    bool single = !isnan(ember_op_attr_float(n, "threshold", NAN));
    if (list && single)
        return node_fail(n, THRESHOLD, EMBER_ERR_INVALID_MODEL,
                         "give either 'threshold' or 'thresholds', not both", err);
    if (list && count < 1)
        return node_fail(n, THRESHOLD, EMBER_ERR_INVALID_MODEL, "'thresholds' is empty", err);
    c->single = ember_op_attr_float(n, "threshold", 0.5f);
    c->n_thresholds = list ? (int64_t)count : 1;
    c->thresholds = list ? list : &c->single;
    if (c->mode == MODE_ROUND) {
        if (c->n_thresholds != 1 || c->thresholds[0] != 0.5f)
            return node_fail(n, THRESHOLD, EMBER_ERR_INVALID_MODEL,
                             "mode \"round\" thresholds at 0.5 only", err);
        if (c->to != EMBER_FLOAT)
            return node_fail(n, THRESHOLD, EMBER_ERR_INVALID_MODEL,
                             "mode \"round\" keeps NaN, so 'to' must be float", err);
    }
    return EMBER_OK;
}

typedef struct threshold_state {
    threshold_config config;
    int64_t n_cuts;       /* 1 when every threshold is the same */
    em_sigmoid_cut *cuts; /* per label */
    float *hi, *lo;       /* the brackets, as arrays for the vectorized loops */
} threshold_state;

static void threshold_destroy(void *state) {
    threshold_state *s = state;
    if (!s) return;
    free(s->cuts);
    free(s->hi);
    free(s->lo);
    free(s);
}

static ember_status threshold_create(const ember_op_context *n, void **state, ember_error *err) {
    threshold_state *s = calloc(1, sizeof *s);
    if (!s) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = threshold_parse(n, &s->config, err);
    if (st != EMBER_OK) {
        free(s);
        return st;
    }
    const threshold_config *c = &s->config;
    bool same = true;
    for (int64_t j = 1; j < c->n_thresholds; j++)
        if (memcmp(&c->thresholds[j], &c->thresholds[0], sizeof(float)) != 0) same = false;
    s->n_cuts = same ? 1 : c->n_thresholds;
    s->cuts = malloc(sizeof(em_sigmoid_cut) * (size_t)s->n_cuts);
    s->hi = malloc(sizeof(float) * (size_t)s->n_cuts);
    s->lo = malloc(sizeof(float) * (size_t)s->n_cuts);
    if (!s->cuts || !s->hi || !s->lo) {
        threshold_destroy(s);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    bool inclusive = c->mode == MODE_GREATER_EQUAL;
    for (int64_t j = 0; j < s->n_cuts; j++) {
        s->cuts[j] = em_sigmoid_cut_f32(c->thresholds[j], inclusive);
        s->hi[j] = s->cuts[j].hi;
        s->lo[j] = s->cuts[j].lo;
    }
    *state = s;
    return EMBER_OK;
}

static ember_status threshold_infer(void *state, const ember_op_context *n, size_t n_inputs,
                                    const ember_tensor *const *inputs, size_t n_outputs,
                                    ember_tensor_shape *out, ember_error *err) {
    threshold_config local;
    const threshold_config *c = state ? &((threshold_state *)state)->config : &local;
    if (!state) EM_TRY(threshold_parse(n, &local, err));
    logits x = {0};
    EM_TRY(get_logits(n, THRESHOLD, n_inputs, inputs, &x, err));
    EM_TRY(check_head(n, &x, x.rank - 1, err));
    if (c->n_thresholds > 1 && x.rank >= 0 &&
        (x.rank < 1 || (x.dims[x.rank - 1] >= 0 && x.dims[x.rank - 1] != c->n_thresholds)))
        return em_fail(err, EMBER_ERR_SHAPE,
                       "node '%s' (%s:%s): %lld per-label thresholds do not match the last axis "
                       "(%lld) of the logits",
                       ember_op_name(n), EM_HEADS_DOMAIN, THRESHOLD, (long long)c->n_thresholds,
                       (long long)(x.rank < 1 ? 0 : x.dims[x.rank - 1]));
    if (n_outputs > 2)
        return node_fail(n, THRESHOLD, EMBER_ERR_INVALID_MODEL,
                         "SigmoidThreshold has at most 2 outputs", err);
    if (x.rank < 0) return EMBER_OK; /* unknown until run */
    set_shape(&out[0], c->to, x.dims, x.rank);
    if (n_outputs > 1) {
        if (output_wanted(n, 1))
            set_shape(&out[1], EMBER_FLOAT, x.dims, x.rank);
        else
            set_empty(&out[1], EMBER_FLOAT);
    }
    return EMBER_OK;
}

/* decision[i] = x[i] >= hi (per label along the last axis), as 1 / 0 of type T. Returns
 * nonzero when some element is inside its bracket (x > lo and not x >= hi, or NaN): those
 * need the sigmoid itself. */
#define DEFINE_CUT_LOOP(NAME, T, ONE)                                                              \
    static int NAME(const float *restrict x, int64_t rows, int64_t labels,                         \
                    const float *restrict hi, const float *restrict lo, T *restrict out) {         \
        int unsure = 0;                                                                            \
        if (labels == 1) {                                                                         \
            const float h = hi[0], l = lo[0];                                                      \
            for (int64_t i = 0; i < rows; i++) {                                                   \
                out[i] = x[i] >= h ? (T)(ONE) : (T)0;                                              \
                unsure |= !(x[i] >= h) & !(x[i] <= l);                                             \
            }                                                                                      \
            return unsure;                                                                         \
        }                                                                                          \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            const float *restrict xr = x + r * labels;                                             \
            T *restrict o = out + r * labels;                                                      \
            for (int64_t j = 0; j < labels; j++) {                                                 \
                o[j] = xr[j] >= hi[j] ? (T)(ONE) : (T)0;                                           \
                unsure |= !(xr[j] >= hi[j]) & !(xr[j] <= lo[j]);                                   \
            }                                                                                      \
        }                                                                                          \
        return unsure;                                                                             \
    }

DEFINE_CUT_LOOP(cut_u8, uint8_t, 1)
DEFINE_CUT_LOOP(cut_u16, uint16_t, 1)
DEFINE_CUT_LOOP(cut_u32, uint32_t, 1)
DEFINE_CUT_LOOP(cut_u64, uint64_t, 1)
DEFINE_CUT_LOOP(cut_f32, float, 1.0f)
DEFINE_CUT_LOOP(cut_f64, double, 1.0)
DEFINE_CUT_LOOP(cut_half, uint16_t, 0x3C00)   /* float16 1.0 */
DEFINE_CUT_LOOP(cut_bfloat, uint16_t, 0x3F80) /* bfloat16 1.0 */

typedef struct threshold_job {
    const threshold_state *s;
    const float *x;
    void *decision;
    float *probabilities;
    int64_t labels; /* elements per row: 1 for a single cut */
} threshold_job;

enum { FIX_BLOCK = 4096 }; /* elements per block of the vectorized passes */

/* One threshold (L = 1): replace the elements inside the bracket by the sigmoid's own
 * decision, branch-free, from the block's sigmoids `sig`. Every compare is unconditional, so
 * that the loops vectorize. */
#define DEFINE_FIX_LOOP(NAME, T, ONE)                                                              \
    static void NAME(const float *restrict x, const float *restrict sig, int64_t n,                \
                     const em_sigmoid_cut *c, T *restrict out) {                                   \
        const float h = c->hi, l = c->lo, t = c->t;                                                \
        const int inclusive = c->inclusive;                                                        \
        for (int64_t i = 0; i < n; i++) {                                                          \
            int inside = !(x[i] >= h) & !(x[i] <= l);                                              \
            int pass = inclusive ? sig[i] >= t : sig[i] > t;                                       \
            T d = pass ? (T)(ONE) : (T)0;                                                          \
            out[i] = inside ? d : out[i];                                                          \
        }                                                                                          \
    }

DEFINE_FIX_LOOP(fix_u8, uint8_t, 1)
DEFINE_FIX_LOOP(fix_u16, uint16_t, 1)
DEFINE_FIX_LOOP(fix_u32, uint32_t, 1)
DEFINE_FIX_LOOP(fix_u64, uint64_t, 1)
DEFINE_FIX_LOOP(fix_f64, double, 1.0)
DEFINE_FIX_LOOP(fix_half, uint16_t, 0x3C00)
DEFINE_FIX_LOOP(fix_bfloat, uint16_t, 0x3F80)

/* float output: `>` / `>=`, or round (NaN stays NaN; 0.5 rounds to even, 0). */
static void fix_f32(const float *restrict x, const float *restrict sig, int64_t n,
                    const em_sigmoid_cut *c, bool round, float *restrict out) {
    const float h = c->hi, l = c->lo, t = round ? 0.5f : c->t;
    const int inclusive = !round && c->inclusive, keep_nan = round;
    for (int64_t i = 0; i < n; i++) {
        int inside = !(x[i] >= h) & !(x[i] <= l);
        float p = sig[i];
        int pass = inclusive ? p >= t : p > t;
        int nan = p != p;
        float d = pass ? 1.0f : 0.0f;
        d = keep_nan & nan ? p : d;
        out[i] = inside ? d : out[i];
    }
}

/* Elements inside their bracket: the shared sigmoid decides, exactly as unfused. */
static void threshold_fix(const threshold_state *s, const float *x, int64_t rows, int64_t L,
                          void *decision, int64_t at) {
    const bool round = s->config.mode == MODE_ROUND;
    const int64_t n = rows * L;
    if (L == 1 && n <= FIX_BLOCK) {
        /* The sigmoid of the whole block in one vectorized pass, then branch-free selects:
         * cheap even when many elements are inside (extreme thresholds, huge logits). */
        float sig[FIX_BLOCK];
        for (int64_t i = 0; i < n; i++) sig[i] = em_sigmoid_f32(x[i]);
        const em_sigmoid_cut *c = &s->cuts[0];
        switch (s->config.to) {
        case EMBER_BOOL:
        case EMBER_UINT8:
        case EMBER_INT8:
            fix_u8(x, sig, n, c, (uint8_t *)decision + at);
            return;
        case EMBER_UINT16:
        case EMBER_INT16:
            fix_u16(x, sig, n, c, (uint16_t *)decision + at);
            return;
        case EMBER_UINT32:
        case EMBER_INT32:
            fix_u32(x, sig, n, c, (uint32_t *)decision + at);
            return;
        case EMBER_UINT64:
        case EMBER_INT64:
            fix_u64(x, sig, n, c, (uint64_t *)decision + at);
            return;
        case EMBER_FLOAT:
            fix_f32(x, sig, n, c, round, (float *)decision + at);
            return;
        case EMBER_DOUBLE:
            fix_f64(x, sig, n, c, (double *)decision + at);
            return;
        case EMBER_FLOAT16:
            fix_half(x, sig, n, c, (uint16_t *)decision + at);
            return;
        case EMBER_BFLOAT16:
            fix_bfloat(x, sig, n, c, (uint16_t *)decision + at);
            return;
        default:
            return;
        }
    }
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < L; j++) {
            int64_t e = r * L + j;
            float v = x[e];
            if (v >= s->hi[j] || v <= s->lo[j]) continue;
            float p = em_sigmoid_f32(v);
            if (round)
                ((float *)decision)[at + e] = p != p ? p : p > 0.5f ? 1.0f : 0.0f;
            else
                store_count(decision, s->config.to, at + e,
                            sigmoid_test(p, s->cuts[j].t, s->cuts[j].inclusive));
        }
}

static void threshold_range(void *ctx, int64_t begin, int64_t end) {
    const threshold_job *j = ctx;
    const threshold_state *s = j->s;
    const int64_t L = j->labels;
    const float *hi = s->hi, *lo = s->lo;
    /* Blocks of ~4K elements, so that a block with an element inside its bracket is scanned
     * again while still in cache. */
    const int64_t block = L >= FIX_BLOCK ? 1 : FIX_BLOCK / L;
    for (int64_t b = begin; b < end; b += block) {
        int64_t rows = end - b < block ? end - b : block, at = b * L;
        const float *x = j->x + at;
        int unsure = 0;
        switch (s->config.to) {
        case EMBER_BOOL:
        case EMBER_UINT8:
        case EMBER_INT8:
            unsure = cut_u8(x, rows, L, hi, lo, (uint8_t *)j->decision + at);
            break;
        case EMBER_UINT16:
        case EMBER_INT16:
            unsure = cut_u16(x, rows, L, hi, lo, (uint16_t *)j->decision + at);
            break;
        case EMBER_UINT32:
        case EMBER_INT32:
            unsure = cut_u32(x, rows, L, hi, lo, (uint32_t *)j->decision + at);
            break;
        case EMBER_UINT64:
        case EMBER_INT64:
            unsure = cut_u64(x, rows, L, hi, lo, (uint64_t *)j->decision + at);
            break;
        case EMBER_FLOAT:
            unsure = cut_f32(x, rows, L, hi, lo, (float *)j->decision + at);
            break;
        case EMBER_DOUBLE:
            unsure = cut_f64(x, rows, L, hi, lo, (double *)j->decision + at);
            break;
        case EMBER_FLOAT16:
            unsure = cut_half(x, rows, L, hi, lo, (uint16_t *)j->decision + at);
            break;
        case EMBER_BFLOAT16:
            unsure = cut_bfloat(x, rows, L, hi, lo, (uint16_t *)j->decision + at);
            break;
        default:
            break;
        }
        if (unsure) threshold_fix(s, x, rows, L, j->decision, at);
        if (j->probabilities) {
            float *restrict p = j->probabilities + at;
            for (int64_t i = 0; i < rows * L; i++) p[i] = em_sigmoid_f32(x[i]);
        }
    }
}

static ember_status threshold_run(void *state, const ember_op_context *n, size_t n_inputs,
                                  const ember_tensor *const *inputs, size_t n_outputs,
                                  ember_tensor *const *out, ember_error *err) {
    const threshold_state *s = state;
    logits x = {0};
    EM_TRY(get_logits(n, THRESHOLD, n_inputs, inputs, &x, err));
    int64_t total = numel(&x);
    bool probabilities = n_outputs > 1 && output_wanted(n, 1);
    threshold_job job = {s, x.data, ember_tensor_data(out[0]),
                         probabilities ? ember_tensor_data(out[1]) : NULL, s->n_cuts};
    if (total == 0) return EMBER_OK;
    ember_op_parallel_for(n, total / job.labels, row_grain(job.labels), threshold_range, &job);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Calling other kernels (for the exact "match" modes of SoftmaxArgMax)
 * ------------------------------------------------------------------------------------------- */

/* A default-domain kernel run on the fused node's behalf, as the node it replaced would have
 * run it. Built-in kernels are not reachable through the public interface: this is the one
 * place the plugin uses the internal view of its context (em_op_context_*, kernel.h). */
typedef struct delegate {
    const em_op *op;
    em_node node;
    em_attr attrs[3];
    int input_id, output_id;
    void *state;
} delegate;

static void delegate_release(delegate *d) {
    if (d->state && d->op && d->op->destroy) d->op->destroy(d->state);
    for (int a = 0; a < d->node.n_attrs; a++) free(d->attrs[a].name);
    free(d->node.name);
    free(d->node.op_type);
    d->state = NULL;
    d->op = NULL;
}

static char *copy_string(const char *s) {
    size_t len = strlen(s) + 1;
    char *c = malloc(len);
    if (c) memcpy(c, s, len);
    return c;
}

/* Prepare `op_type` at `opset` with integer attributes names[i] = values[i]. */
static ember_status delegate_init(delegate *d, const em_graph *g, const em_node *fused,
                                  const char *op_type, int64_t opset, int n_attrs,
                                  const char *const *names, const int64_t *values,
                                  ember_error *err) {
    memset(d, 0, sizeof *d);
    d->op = em_registry_find("", op_type, opset);
    if (!d->op) {
        char desc[256];
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: no %s kernel for opset %lld to match",
                       em_node_desc(fused, desc, sizeof desc), op_type, (long long)opset);
    }
    if (d->op->flags & (EM_OP_ALIAS_INPUT0 | EM_OP_DYNAMIC_OUTPUTS) || !d->op->run) {
        char desc[256];
        d->op = NULL;
        return em_fail(err, EMBER_ERR_UNSUPPORTED,
                       "%s: the %s kernel does not write into given buffers, so it cannot be "
                       "matched",
                       em_node_desc(fused, desc, sizeof desc), op_type);
    }
    d->input_id = fused->inputs[0];
    d->output_id = fused->outputs[0];
    d->node.name = copy_string(fused->name);
    d->node.op_type = copy_string(op_type);
    d->node.domain = "";
    d->node.opset = (int)opset;
    d->node.index = fused->index;
    d->node.n_inputs = d->node.n_explicit_inputs = 1;
    d->node.inputs = &d->input_id;
    d->node.n_outputs = 1;
    d->node.outputs = &d->output_id;
    d->node.attrs = d->attrs;
    d->node.op = d->op;
    if (!d->node.name || !d->node.op_type) {
        delegate_release(d);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int a = 0; a < n_attrs; a++) {
        d->attrs[a].name = copy_string(names[a]);
        d->attrs[a].type = EM_ATTR_INT;
        d->attrs[a].i = values[a];
        d->node.n_attrs = a + 1;
        if (!d->attrs[a].name) {
            delegate_release(d);
            return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    if (d->op->create) {
        ember_status st = d->op->create(g, &d->node, &d->state, err);
        if (st != EMBER_OK) {
            delegate_release(d);
            return st;
        }
    }
    return EMBER_OK;
}

/* Run the delegate on `x`, writing into `out`, whose data the caller provides with room for
 * `capacity` bytes. */
static ember_status delegate_run(delegate *d, em_tensor *x, em_tensor *out, size_t capacity,
                                 em_exec *ex, ember_error *err) {
    void *data = out->data;
    memset(out, 0, sizeof *out);
    out->rank = -1;
    EM_TRY(d->op->infer(&d->node, d->state, &x, out, err));
    if (em_nbytes(out) > capacity)
        return em_fail(err, EMBER_ERR_RUNTIME, "%s produced a larger output than expected",
                       d->node.op_type);
    out->data = data;
    out->capacity = capacity;
    return d->op->run ? d->op->run(&d->node, d->state, &x, out, ex, err) : EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * SoftmaxArgMax
 * ------------------------------------------------------------------------------------------- */

enum { MATCH_NONE, MATCH_ARGMAX_OF_SOFTMAX, MATCH_ARGMAX };

typedef struct argmax_config {
    int64_t axis, keepdims, select_last;
    int match;
    const char *match_op;
    int64_t match_opset;
} argmax_config;

#define ARGMAX "SoftmaxArgMax"

static ember_status argmax_parse(const ember_op_context *n, argmax_config *c, ember_error *err) {
    c->axis = ember_op_attr_int(n, "axis", -1);
    c->keepdims = ember_op_attr_int(n, "keepdims", 1);
    c->select_last = ember_op_attr_int(n, "select_last_index", 0);
    if ((c->keepdims != 0 && c->keepdims != 1) || (c->select_last != 0 && c->select_last != 1))
        return node_fail(n, ARGMAX, EMBER_ERR_INVALID_MODEL,
                         "keepdims and select_last_index must be 0 or 1", err);
    const char *match = ember_op_attr_string(n, "match", "");
    if (strcmp(match, "") == 0)
        c->match = MATCH_NONE;
    else if (strcmp(match, "argmax_of_softmax") == 0)
        c->match = MATCH_ARGMAX_OF_SOFTMAX;
    else if (strcmp(match, "argmax") == 0)
        c->match = MATCH_ARGMAX;
    else
        return node_fail(n, ARGMAX, EMBER_ERR_INVALID_MODEL,
                         "match must be \"\", \"argmax_of_softmax\" or \"argmax\"", err);
    c->match_op = ember_op_attr_string(n, "match_op", "Softmax");
    if (strcmp(c->match_op, "Softmax") != 0 && strcmp(c->match_op, "LogSoftmax") != 0)
        return node_fail(n, ARGMAX, EMBER_ERR_INVALID_MODEL,
                         "match_op must be \"Softmax\" or \"LogSoftmax\"", err);
    c->match_opset = ember_op_attr_int(n, "match_opset", 13);
    if (c->match != MATCH_NONE) {
        if (output_wanted(n, 1))
            return node_fail(n, ARGMAX, EMBER_ERR_INVALID_MODEL,
                             "top_probability is not available in a match mode", err);
        if (c->match == MATCH_ARGMAX_OF_SOFTMAX && output_wanted(n, 2))
            return node_fail(n, ARGMAX, EMBER_ERR_INVALID_MODEL,
                             "match \"argmax_of_softmax\" computes only the index", err);
    }
    if (ember_op_output_count(n) > 3)
        return node_fail(n, ARGMAX, EMBER_ERR_INVALID_MODEL,
                         "SoftmaxArgMax has at most 3 outputs", err);
    return EMBER_OK;
}

typedef struct argmax_state {
    argmax_config config;
    delegate normalizer; /* Softmax / LogSoftmax kernel (match modes) */
    delegate argmax;     /* ArgMax kernel (match modes) */
} argmax_state;

static void argmax_destroy(void *state) {
    argmax_state *s = state;
    if (!s) return;
    delegate_release(&s->normalizer);
    delegate_release(&s->argmax);
    free(s);
}

static ember_status argmax_create(const ember_op_context *ctx, void **state, ember_error *err) {
    const em_graph *g = em_op_context_graph(ctx);
    const em_node *n = em_op_context_node(ctx);
    argmax_state *s = calloc(1, sizeof *s);
    if (!s) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = argmax_parse(ctx, &s->config, err);
    const argmax_config *c = &s->config;
    if (st == EMBER_OK && c->match != MATCH_NONE) {
        static const char *const softmax_names[] = {"axis"};
        static const char *const argmax_names[] = {"axis", "keepdims", "select_last_index"};
        int64_t argmax_values[] = {c->axis, c->keepdims, c->select_last};
        st = delegate_init(&s->normalizer, g, n, c->match_op, c->match_opset, 1, softmax_names,
                           &c->axis, err);
        if (st == EMBER_OK)
            st = delegate_init(&s->argmax, g, n, "ArgMax", c->match_opset, c->select_last ? 3 : 2,
                               argmax_names, argmax_values, err);
    }
    if (st != EMBER_OK) {
        argmax_destroy(s);
        return st;
    }
    *state = s;
    return EMBER_OK;
}

/* The axis in [0, rank), or a failure naming the node. */
static ember_status norm_axis(const ember_op_context *n, int64_t axis, int rank, int *out,
                              ember_error *err) {
    if (axis < -(int64_t)rank || axis >= rank)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "node '%s' (%s:%s): axis %lld is out of range for rank %d",
                       ember_op_name(n), EM_HEADS_DOMAIN, ARGMAX, (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return EMBER_OK;
}

static ember_status argmax_infer(void *state, const ember_op_context *n, size_t n_inputs,
                                 const ember_tensor *const *inputs, size_t n_outputs,
                                 ember_tensor_shape *out, ember_error *err) {
    argmax_config local;
    const argmax_config *c = state ? &((argmax_state *)state)->config : &local;
    if (!state) EM_TRY(argmax_parse(n, &local, err));
    logits x = {0};
    EM_TRY(get_logits(n, ARGMAX, n_inputs, inputs, &x, err));
    if (x.rank < 0) return EMBER_OK; /* unknown until run */
    if (x.rank < 1)
        return node_fail(n, ARGMAX, EMBER_ERR_SHAPE, "the logits need at least one axis", err);
    int axis = 0;
    EM_TRY(norm_axis(n, c->axis, x.rank, &axis, err));
    if (c->match != MATCH_NONE && axis != x.rank - 1)
        return node_fail(n, ARGMAX, EMBER_ERR_INVALID_MODEL, "match modes need the last axis",
                         err);
    EM_TRY(check_head(n, &x, axis, err));
    if (x.dims[axis] == 0)
        return node_fail(n, ARGMAX, EMBER_ERR_SHAPE, "ArgMax over an empty axis has no answer",
                         err);
    int64_t dims[EMBER_MAX_RANK];
    int rank = 0;
    for (int d = 0; d < x.rank; d++) {
        if (d != axis)
            dims[rank++] = x.dims[d];
        else if (c->keepdims)
            dims[rank++] = 1;
    }
    set_shape(&out[0], EMBER_INT64, dims, rank);
    if (n_outputs > 1) {
        if (output_wanted(n, 1))
            set_shape(&out[1], EMBER_FLOAT, dims, rank);
        else
            set_empty(&out[1], EMBER_FLOAT);
    }
    if (n_outputs > 2) {
        if (output_wanted(n, 2))
            set_shape(&out[2], EMBER_FLOAT, x.dims, x.rank);
        else
            set_empty(&out[2], EMBER_FLOAT);
    }
    return EMBER_OK;
}

typedef struct argmax_job {
    const argmax_state *s;
    const float *x;
    int64_t outer, len, inner; /* x is [outer, len, inner], the axis in the middle */
    int64_t *index;
    float *top;
    float *probabilities;
    atomic_llong hazards; /* rows left to the matched kernels */
} argmax_job;

/* torch.argmax semantics: the first (or last) largest value; a NaN counts as the largest. */
static int64_t argmax_torch(const float *x, int64_t len, int64_t stride, bool last) {
    int64_t best = 0, nan_at = -1;
    float m = -INFINITY;
    for (int64_t k = 0; k < len; k++) {
        float v = x[k * stride];
        if (v != v) {
            if (nan_at < 0 || last) nan_at = k;
            if (!last) break;
        } else if (last ? v >= m : v > m) {
            m = v;
            best = k;
        }
    }
    return nan_at >= 0 ? nan_at : best;
}

/* Softmax of one strided row into p (may be NULL); returns the largest probability. */
static float softmax_row(const float *x, int64_t len, int64_t stride, float *p) {
    float m = -INFINITY;
    bool nan = false;
    for (int64_t k = 0; k < len; k++) {
        float v = x[k * stride];
        if (v != v)
            nan = true;
        else if (v > m)
            m = v;
    }
    if (nan || m == -INFINITY) { /* NaN, or all -inf: undefined, NaN as in torch */
        for (int64_t k = 0; p && k < len; k++) p[k * stride] = NAN;
        return NAN;
    }
    if (m == INFINITY) { /* the limit: the +inf logits share the mass */
        int64_t count = 0;
        for (int64_t k = 0; k < len; k++) count += x[k * stride] == INFINITY;
        for (int64_t k = 0; p && k < len; k++)
            p[k * stride] = x[k * stride] == INFINITY ? 1.0f / (float)count : 0.0f;
        return 1.0f / (float)count;
    }
    double sum = 0;
    for (int64_t k = 0; k < len; k++) sum += expf(x[k * stride] - m);
    for (int64_t k = 0; p && k < len; k++) p[k * stride] = (float)(expf(x[k * stride] - m) / sum);
    return (float)(1.0 / sum);
}

static void argmax_range_plain(void *ctx, int64_t begin, int64_t end) {
    argmax_job *j = ctx;
    bool last = j->s->config.select_last != 0;
    for (int64_t r = begin; r < end; r++) {
        int64_t o = r / j->inner, i = r % j->inner;
        const float *x = j->x + o * j->len * j->inner + i;
        j->index[r] = argmax_torch(x, j->len, j->inner, last);
        float *p = j->probabilities ? j->probabilities + o * j->len * j->inner + i : NULL;
        if (j->top || p) {
            float top = softmax_row(x, j->len, j->inner, p);
            if (j->top) j->top[r] = top;
        }
    }
}

/* Match modes (last axis, contiguous rows): the index from the logits unless the row is one
 * where the matched kernels could decide otherwise (NaN / inf, or for argmax_of_softmax a logit
 * within EM_HEADS_TIE_MARGIN below the maximum); those get index -1 and are counted. Rows go
 * in blocks of ROWS interleaved, so that the per-row compare chains overlap; within a row
 * everything is branch-free. */
enum { ROWS = 8 };

static void argmax_range_match(void *ctx, int64_t begin, int64_t end) {
    argmax_job *j = ctx;
    const bool last = j->s->config.select_last != 0;
    const bool of_softmax = j->s->config.match == MATCH_ARGMAX_OF_SOFTMAX;
    const int64_t len = j->len;
    long long hazards = 0;
    for (int64_t r0 = begin; r0 < end; r0 += ROWS) {
        const int64_t n = end - r0 < ROWS ? end - r0 : ROWS;
        const float *restrict x = j->x + r0 * len;
        float m[ROWS];
        int64_t best[ROWS];
        int finite[ROWS], near_tie[ROWS];
        for (int64_t i = 0; i < n; i++) {
            m[i] = x[i * len];
            best[i] = 0;
            finite[i] = 1;
            near_tie[i] = 0;
        }
        for (int64_t k = 0; k < len; k++)
            for (int64_t i = 0; i < n; i++) {
                float v = x[i * len + k];
                int take = last ? v >= m[i] : v > m[i];
                m[i] = take ? v : m[i];
                best[i] = take ? k : best[i];
                finite[i] &= v - v == 0.0f;
            }
        if (of_softmax)
            for (int64_t k = 0; k < len; k++)
                for (int64_t i = 0; i < n; i++) {
                    float v = x[i * len + k];
                    near_tie[i] |= (v < m[i]) & (v > m[i] - EM_HEADS_TIE_MARGIN);
                }
        for (int64_t i = 0; i < n; i++) {
            bool hazard = !finite[i] || near_tie[i];
            j->index[r0 + i] = hazard ? -1 : best[i];
            hazards += hazard;
        }
    }
    if (hazards) atomic_fetch_add(&j->hazards, hazards);
}

/* Rows marked -1: run the matched kernels on each such row, exactly as the graph would. */
static ember_status argmax_resolve_hazards(argmax_job *j, const em_tensor *x, em_exec *ex,
                                           ember_error *err) {
    argmax_state *s = (argmax_state *)j->s;
    bool of_softmax = s->config.match == MATCH_ARGMAX_OF_SOFTMAX;
    size_t row_bytes = sizeof(float) * (size_t)j->len;
    float *probabilities = of_softmax ? malloc(row_bytes) : NULL;
    if (of_softmax && !probabilities) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = EMBER_OK;
    int64_t rows = j->outer * j->inner;
    for (int64_t r = 0; r < rows && st == EMBER_OK; r++) {
        if (j->index[r] >= 0) continue;
        em_tensor row = {0};
        row.dtype = EMBER_FLOAT;
        row.rank = x->rank;
        for (int d = 0; d < x->rank; d++) row.dims[d] = 1;
        row.dims[x->rank - 1] = j->len;
        row.data = (void *)(j->x + r * j->len);
        row.capacity = row_bytes;
        em_tensor norm = {.data = probabilities}, index = {.data = &j->index[r]};
        em_tensor *argmax_in = &row;
        if (of_softmax) {
            st = delegate_run(&s->normalizer, &row, &norm, row_bytes, ex, err);
            argmax_in = &norm;
        }
        if (st == EMBER_OK)
            st = delegate_run(&s->argmax, argmax_in, &index, sizeof(int64_t), ex, err);
    }
    free(probabilities);
    return st;
}

static ember_status argmax_run(void *state, const ember_op_context *n, size_t n_inputs,
                               const ember_tensor *const *inputs, size_t n_outputs,
                               ember_tensor *const *out, ember_error *err) {
    argmax_state *s = state;
    logits x = {0};
    EM_TRY(get_logits(n, ARGMAX, n_inputs, inputs, &x, err));
    int axis = 0;
    EM_TRY(norm_axis(n, s->config.axis, x.rank, &axis, err));
    argmax_job j = {.s = s,
                    .x = x.data,
                    .outer = 1,
                    .len = x.dims[axis],
                    .inner = 1,
                    .index = ember_tensor_data(out[0])};
    for (int d = 0; d < axis; d++) j.outer *= x.dims[d];
    for (int d = axis + 1; d < x.rank; d++) j.inner *= x.dims[d];
    atomic_init(&j.hazards, 0);
    int64_t rows = j.outer * j.inner;
    bool top = n_outputs > 1 && output_wanted(n, 1);
    bool probabilities = n_outputs > 2 && output_wanted(n, 2);
    if (s->config.match == MATCH_NONE) {
        j.top = top ? ember_tensor_data(out[1]) : NULL;
        j.probabilities = probabilities ? ember_tensor_data(out[2]) : NULL;
        ember_op_parallel_for(n, rows, row_grain(j.len), argmax_range_plain, &j);
        return EMBER_OK;
    }
    /* the matched kernels take internal tensors: a view of the logits */
    em_tensor xt = {0};
    xt.dtype = EMBER_FLOAT;
    xt.rank = x.rank;
    memcpy(xt.dims, x.dims, sizeof(int64_t) * (size_t)x.rank);
    xt.data = (void *)x.data;
    xt.capacity = ember_tensor_byte_size(inputs[0]);
    em_exec *ex = em_op_context_exec(n);
    if (probabilities) {
        /* The probabilities of the matched graph: its own Softmax kernel on the whole tensor. */
        em_tensor p = {.data = ember_tensor_data(out[2])};
        EM_TRY(delegate_run(&s->normalizer, &xt, &p, ember_tensor_byte_size(out[2]), ex, err));
    }
    ember_op_parallel_for(n, rows, row_grain(j.len), argmax_range_match, &j);
    if (atomic_load(&j.hazards) > 0) EM_TRY(argmax_resolve_hazards(&j, &xt, ex, err));
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * CumulativeOrdinal
 * ------------------------------------------------------------------------------------------- */

typedef struct ordinal_config {
    bool corn;
    float threshold;
    ember_dtype to;
    int64_t keepdims;
} ordinal_config;

#define ORDINAL "CumulativeOrdinal"

static ember_status ordinal_parse(const ember_op_context *n, ordinal_config *c, ember_error *err) {
    const char *mode = ember_op_attr_string(n, "mode", "coral");
    if (strcmp(mode, "coral") == 0)
        c->corn = false;
    else if (strcmp(mode, "corn") == 0)
        c->corn = true;
    else
        return node_fail(n, ORDINAL, EMBER_ERR_INVALID_MODEL,
                         "mode must be \"coral\" or \"corn\"", err);
    c->threshold = ember_op_attr_float(n, "threshold", 0.5f);
    int64_t to = ember_op_attr_int(n, "to", EMBER_INT64);
    if (!em_head_decision_type_ok(to) || to == EMBER_BOOL)
        return node_fail(n, ORDINAL, EMBER_ERR_UNSUPPORTED, "'to' must be a numeric type", err);
    c->to = (ember_dtype)to;
    c->keepdims = ember_op_attr_int(n, "keepdims", 0);
    if (c->keepdims != 0 && c->keepdims != 1)
        return node_fail(n, ORDINAL, EMBER_ERR_INVALID_MODEL, "keepdims must be 0 or 1", err);
    if (ember_op_output_count(n) > 3)
        return node_fail(n, ORDINAL, EMBER_ERR_INVALID_MODEL,
                         "CumulativeOrdinal has at most 3 outputs", err);
    return EMBER_OK;
}

typedef struct ordinal_state {
    ordinal_config config;
    em_sigmoid_cut cut; /* sigmoid(x) > threshold, decided in logit space */
} ordinal_state;

static ember_status ordinal_create(const ember_op_context *n, void **state, ember_error *err) {
    ordinal_state *s = calloc(1, sizeof *s);
    if (!s) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = ordinal_parse(n, &s->config, err);
    if (st != EMBER_OK) {
        free(s);
        return st;
    }
    s->cut = em_sigmoid_cut_f32(s->config.threshold, false);
    *state = s;
    return EMBER_OK;
}

static void ordinal_destroy(void *state) {
    free(state);
}

static ember_status ordinal_infer(void *state, const ember_op_context *n, size_t n_inputs,
                                  const ember_tensor *const *inputs, size_t n_outputs,
                                  ember_tensor_shape *out, ember_error *err) {
    ordinal_config local;
    const ordinal_config *c = state ? &((ordinal_state *)state)->config : &local;
    if (!state) EM_TRY(ordinal_parse(n, &local, err));
    logits x = {0};
    EM_TRY(get_logits(n, ORDINAL, n_inputs, inputs, &x, err));
    if (x.rank < 0) return EMBER_OK; /* unknown until run */
    if (x.rank < 1)
        return node_fail(n, ORDINAL, EMBER_ERR_SHAPE, "the logits need a last axis of K-1 logits",
                         err);
    EM_TRY(check_head(n, &x, x.rank - 1, err));
    int64_t dims[EMBER_MAX_RANK];
    memcpy(dims, x.dims, sizeof(int64_t) * (size_t)x.rank);
    int rank = c->keepdims ? x.rank : x.rank - 1;
    if (c->keepdims) dims[x.rank - 1] = 1;
    set_shape(&out[0], c->to, dims, rank);
    if (n_outputs > 1) {
        if (output_wanted(n, 1))
            set_shape(&out[1], EMBER_FLOAT, x.dims, x.rank);
        else
            set_empty(&out[1], EMBER_FLOAT);
    }
    if (n_outputs > 2) {
        memcpy(dims, x.dims, sizeof(int64_t) * (size_t)x.rank);
        if (dims[x.rank - 1] >= INT64_MAX - 1)
            return node_fail(n, ORDINAL, EMBER_ERR_SHAPE, "too many ordinal logits", err);
        if (dims[x.rank - 1] >= 0) dims[x.rank - 1] += 1; /* -1 (unknown) stays unknown */
        if (output_wanted(n, 2))
            set_shape(&out[2], EMBER_FLOAT, dims, x.rank);
        else
            set_empty(&out[2], EMBER_FLOAT);
    }
    return EMBER_OK;
}

typedef struct ordinal_job {
    const ordinal_state *s;
    const float *x;
    int64_t levels; /* K-1 */
    void *rank;
    float *cumulative;
    float *classes;
} ordinal_job;

static void ordinal_range(void *ctx, int64_t begin, int64_t end) {
    const ordinal_job *j = ctx;
    const ordinal_config *c = &j->s->config;
    const em_sigmoid_cut *cut = &j->s->cut;
    const float hi = cut->hi, lo = cut->lo, t = c->threshold;
    const int64_t K1 = j->levels;
    bool probabilities = j->cumulative || j->classes;
    for (int64_t r = begin; r < end; r++) {
        const float *restrict x = j->x + r * K1;
        int64_t count = 0;
        if (!probabilities && !c->corn) {
            int unsure = 0;
            for (int64_t k = 0; k < K1; k++) {
                count += x[k] >= hi;
                unsure |= !(x[k] >= hi) & !(x[k] <= lo);
            }
            for (int64_t k = 0; unsure && k < K1; k++)
                if (!(x[k] >= hi) && !(x[k] <= lo)) count += em_sigmoid_f32(x[k]) > t;
        } else if (!probabilities) {
            /* CORN: P(y > k) does not increase with k (each factor is <= 1), so count while
             * it stays above t; and P(y > k) <= sigmoid(x_k), so x_k <= lo ends the count
             * without an exp. */
            float cum = 1.0f;
            for (int64_t k = 0; k < K1; k++) {
                if (x[k] <= lo) break;
                float s = em_sigmoid_f32(x[k]);
                cum = k == 0 ? s : cum * s;
                if (!(cum > t)) break;
                count++;
            }
        } else {
            float *cum = j->cumulative ? j->cumulative + r * K1 : NULL;
            float *cls = j->classes ? j->classes + r * (K1 + 1) : NULL;
            float prev = 1.0f, running = 1.0f;
            for (int64_t k = 0; k < K1; k++) {
                float s = em_sigmoid_f32(x[k]);
                float p = c->corn ? (running = k == 0 ? s : running * s) : s;
                count += p > t;
                if (cum) cum[k] = p;
                if (cls) cls[k] = prev - p;
                prev = p;
            }
            if (cls) cls[K1] = prev;
        }
        store_count(j->rank, c->to, r, count);
    }
}

static ember_status ordinal_run(void *state, const ember_op_context *n, size_t n_inputs,
                                const ember_tensor *const *inputs, size_t n_outputs,
                                ember_tensor *const *out, ember_error *err) {
    const ordinal_state *s = state;
    logits x = {0};
    EM_TRY(get_logits(n, ORDINAL, n_inputs, inputs, &x, err));
    ordinal_job j = {.s = s,
                     .x = x.data,
                     .levels = x.dims[x.rank - 1],
                     .rank = ember_tensor_data(out[0])};
    j.cumulative = n_outputs > 1 && output_wanted(n, 1) ? ember_tensor_data(out[1]) : NULL;
    j.classes = n_outputs > 2 && output_wanted(n, 2) ? ember_tensor_data(out[2]) : NULL;
    int64_t rows = ember_tensor_element_count(out[0]);
    if (rows > 0) ember_op_parallel_for(n, rows, row_grain(j.levels + 1), ordinal_range, &j);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Table
 * ------------------------------------------------------------------------------------------- */

/* Registered at registry initialization through ember_register_op, like any plugin's. */
static const ember_kernel k_heads_kernels[] = {
    {EMBER_ABI_VERSION, EM_HEADS_DOMAIN, THRESHOLD, EM_HEADS_VERSION, threshold_create,
     threshold_infer, threshold_run, threshold_destroy},
    {EMBER_ABI_VERSION, EM_HEADS_DOMAIN, ARGMAX, EM_HEADS_VERSION, argmax_create, argmax_infer,
     argmax_run, argmax_destroy},
    {EMBER_ABI_VERSION, EM_HEADS_DOMAIN, ORDINAL, EM_HEADS_VERSION, ordinal_create, ordinal_infer,
     ordinal_run, ordinal_destroy},
};

ember_status em_heads_plugin_init(int abi_version, ember_error *err) {
    if (abi_version != EMBER_ABI_VERSION)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "the heads plugin is built for ABI %d, not %d", EMBER_ABI_VERSION,
                       abi_version);
    for (size_t i = 0; i < sizeof k_heads_kernels / sizeof k_heads_kernels[0]; i++)
        EM_TRY(ember_register_op(&k_heads_kernels[i], err));
    return EMBER_OK;
}

const em_op *em_heads_op(const char *op_type) {
    return em_registry_find(EM_HEADS_DOMAIN, op_type, EM_HEADS_VERSION);
}
