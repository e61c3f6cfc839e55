/* Recurrent layers: RNN, GRU, LSTM (float32; float16 widened to float32).
 *
 * Per direction, the input projection of every time step is one GEMM over the whole sequence
 * (X * W^T, with the biases folded in); each step then adds H_{t-1} * R^T (one small GEMM) and
 * runs the gate arithmetic per batch row. sequence_lens: a batch row only advances for its
 * own length (the reverse direction starts at its own last step); Y is zero past the length
 * and Y_h / Y_c hold the state after the last valid step. layout (opset 14) 1 swaps the batch
 * and sequence axes of X, Y, the initial states and Y_h / Y_c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "linalg.h"

#define SCRATCH_FAILED (err ? err->code : EMBER_ERR_OUT_OF_MEMORY)

typedef enum rnn_kind { KIND_RNN, KIND_GRU, KIND_LSTM } rnn_kind;

typedef enum rnn_act {
    RA_RELU,
    RA_TANH,
    RA_SIGMOID,
    RA_AFFINE,
    RA_LEAKY_RELU,
    RA_THRESHOLDED_RELU,
    RA_SCALED_TANH,
    RA_HARD_SIGMOID,
    RA_ELU,
    RA_SOFTSIGN,
    RA_SOFTPLUS,
} rnn_act;

typedef struct rnn_fn {
    rnn_act kind;
    float alpha, beta;
} rnn_fn;

typedef struct rnn_attrs {
    rnn_kind kind;
    int gates;      /* 1, 3, 4 */
    int n_fns;      /* activations per direction: 1, 2, 3 */
    int dirs;       /* 1 or 2 */
    bool reverse;   /* single direction, reversed */
    int64_t hidden; /* -1: take it from R */
    int layout;
    bool has_clip;
    float clip;
    bool linear_before_reset; /* GRU */
    bool input_forget;        /* LSTM */
    rnn_fn fns[6];
} rnn_attrs;

static const struct {
    const char *name;
    rnn_act kind;
    bool uses_alpha, uses_beta;
    float alpha, beta; /* ONNX defaults of the matching operators */
} act_table[] = {
    {"Relu", RA_RELU, false, false, 0, 0},
    {"Tanh", RA_TANH, false, false, 0, 0},
    {"Sigmoid", RA_SIGMOID, false, false, 0, 0},
    {"Affine", RA_AFFINE, true, true, 1.0f, 0.0f},
    {"LeakyRelu", RA_LEAKY_RELU, true, false, 0.01f, 0},
    {"ThresholdedRelu", RA_THRESHOLDED_RELU, true, false, 1.0f, 0},
    {"ScaledTanh", RA_SCALED_TANH, true, true, 1.0f, 1.0f},
    {"HardSigmoid", RA_HARD_SIGMOID, true, true, 0.2f, 0.5f},
    {"Elu", RA_ELU, true, false, 1.0f, 0},
    {"Softsign", RA_SOFTSIGN, false, false, 0, 0},
    {"Softplus", RA_SOFTPLUS, false, false, 0, 0},
};

static int ci_equal(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
        char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
        if (x != y) return 0;
    }
    return *a == *b;
}

static ember_status rnn_read_attrs(const em_node *node, rnn_kind kind, rnn_attrs *a,
                                   ember_error *err) {
    char d[256];
    em_node_desc(node, d, sizeof d);
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->gates = kind == KIND_RNN ? 1 : kind == KIND_GRU ? 3 : 4;
    a->n_fns = kind == KIND_RNN ? 1 : kind == KIND_GRU ? 2 : 3;
    const char *dir = em_attr_string(node, "direction", "forward");
    if (!strcmp(dir, "forward"))
        a->dirs = 1;
    else if (!strcmp(dir, "reverse"))
        a->dirs = 1, a->reverse = true;
    else if (!strcmp(dir, "bidirectional"))
        a->dirs = 2;
    else
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: unknown direction '%s'", d, dir);
    a->hidden = em_attr_int(node, "hidden_size", -1);
    if (a->hidden == 0 || a->hidden < -1)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: bad hidden_size", d);
    a->layout = (int)em_attr_int(node, "layout", 0);
    if (a->layout != 0 && a->layout != 1)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: layout must be 0 or 1", d);
    const em_attr *clip = em_node_attr(node, "clip");
    if (clip && clip->type == EM_ATTR_FLOAT) {
        a->has_clip = true;
        a->clip = clip->f;
        if (!(a->clip >= 0.0f))
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: clip must be >= 0", d);
    }
    a->linear_before_reset = em_attr_int(node, "linear_before_reset", 0) != 0;
    a->input_forget = em_attr_int(node, "input_forget", 0) != 0;
    /* Defaults: RNN Tanh; GRU Sigmoid, Tanh; LSTM Sigmoid, Tanh, Tanh (per direction). */
    static const rnn_act defaults[3][3] = {
        {RA_TANH}, {RA_SIGMOID, RA_TANH}, {RA_SIGMOID, RA_TANH, RA_TANH}};
    int want = a->n_fns * a->dirs;
    int64_t n_names = 0, n_alpha = 0, n_beta = 0;
    const em_attr *names = em_node_attr(node, "activations");
    if (names && names->type == EM_ATTR_STRINGS) n_names = names->n;
    const float *alphas = em_attr_floats(node, "activation_alpha", &n_alpha);
    const float *betas = em_attr_floats(node, "activation_beta", &n_beta);
    if (n_names == 0) {
        for (int i = 0; i < want; i++) {
            a->fns[i].kind = defaults[kind][i % a->n_fns];
            a->fns[i].alpha = a->fns[i].beta = 0.0f;
        }
        return EMBER_OK;
    }
    if (n_names != want)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: expected %d activations, got %lld", d,
                       want, (long long)n_names);
    int64_t ai = 0, bi = 0;
    for (int i = 0; i < want; i++) {
        size_t t;
        for (t = 0; t < sizeof act_table / sizeof act_table[0]; t++)
            if (ci_equal(names->strings[i], act_table[t].name)) break;
        if (t == sizeof act_table / sizeof act_table[0])
            return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: unknown activation '%s'", d,
                           names->strings[i]);
        a->fns[i].kind = act_table[t].kind;
        a->fns[i].alpha = act_table[t].alpha;
        a->fns[i].beta = act_table[t].beta;
        /* activation_alpha / _beta are consumed in order by the functions that use them. */
        if (act_table[t].uses_alpha && ai < n_alpha) a->fns[i].alpha = alphas[ai++];
        if (act_table[t].uses_beta && bi < n_beta) a->fns[i].beta = betas[bi++];
    }
    return EMBER_OK;
}

static inline float apply_fn(const rnn_fn *f, float x) {
    switch (f->kind) {
    case RA_RELU:
        return x < 0.0f ? 0.0f : x;
    case RA_TANH:
        return tanhf(x);
    case RA_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case RA_AFFINE:
        return f->alpha * x + f->beta;
    case RA_LEAKY_RELU:
        return x < 0.0f ? f->alpha * x : x;
    case RA_THRESHOLDED_RELU:
        return x > f->alpha ? x : 0.0f;
    case RA_SCALED_TANH:
        return f->alpha * tanhf(f->beta * x);
    case RA_HARD_SIGMOID: {
        float v = f->alpha * x + f->beta;
        return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
    }
    case RA_ELU:
        return x < 0.0f ? f->alpha * (expf(x) - 1.0f) : x;
    case RA_SOFTSIGN:
        return x / (1.0f + fabsf(x));
    case RA_SOFTPLUS:
        return x > 20.0f ? x : log1pf(expf(x));
    }
    return x;
}

/* Apply f to n values in place, clipping the input first when asked. */
static void apply_fn_n(const rnn_fn *f, const rnn_attrs *a, float *restrict x, int64_t n) {
    if (a->has_clip) {
        const float c = a->clip;
        for (int64_t i = 0; i < n; i++) x[i] = x[i] < -c ? -c : x[i] > c ? c : x[i];
    }
    switch (f->kind) {
    case RA_SIGMOID:
        for (int64_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    case RA_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        break;
    default:
        for (int64_t i = 0; i < n; i++) x[i] = apply_fn(f, x[i]);
        break;
    }
}

/* ---- shapes ---- */

typedef struct rnn_shape {
    int64_t T, B, I, H;
} rnn_shape;

static const em_tensor *opt_in(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_inputs ? in[i] : NULL;
}

static ember_status check_dims(const char *d, const em_tensor *t, const char *what, int rank,
                               const int64_t *want, ember_error *err) {
    if (!t || t->rank < 0) return EMBER_OK;
    bool ok = t->rank == rank;
    for (int i = 0; ok && i < rank; i++)
        if (t->dims[i] >= 0 && want[i] >= 0 && t->dims[i] != want[i]) ok = false;
    if (ok) return EMBER_OK;
    char sh[128], ws[128];
    int len = 0;
    ws[0] = '\0';
    for (int i = 0; i < rank && len < 100; i++)
        len +=
            snprintf(ws + len, sizeof ws - (size_t)len, "%s%lld", i ? "," : "", (long long)want[i]);
    em_tensor tmp = *t;
    return em_fail(err, EMBER_ERR_SHAPE, "%s: %s is %s, expected [%s]", d, what,
                   em_shape_str(&tmp, sh, sizeof sh), ws);
}

static ember_status rnn_shapes(const em_node *node, const rnn_attrs *a, em_tensor *const *in,
                               rnn_shape *s, ember_error *err) {
    char d[256];
    em_node_desc(node, d, sizeof d);
    const em_tensor *x = in[0], *w = in[1], *r = in[2];
    if (x->rank != 3 || w->rank != 3 || r->rank != 3)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: X, W and R must be 3-D", d);
    s->T = a->layout ? x->dims[1] : x->dims[0];
    s->B = a->layout ? x->dims[0] : x->dims[1];
    s->I = x->dims[2];
    s->H = a->hidden >= 0 ? a->hidden : r->dims[2];
    int64_t gh = s->H >= 0 ? a->gates * s->H : -1;
    EM_TRY(check_dims(d, w, "W", 3, (const int64_t[]){a->dirs, gh, s->I}, err));
    EM_TRY(check_dims(d, r, "R", 3, (const int64_t[]){a->dirs, gh, s->H}, err));
    EM_TRY(check_dims(d, opt_in(node, in, 3), "B", 2,
                      (const int64_t[]){a->dirs, gh >= 0 ? 2 * gh : -1}, err));
    EM_TRY(check_dims(d, opt_in(node, in, 4), "sequence_lens", 1, (const int64_t[]){s->B}, err));
    const int64_t state[3] = {a->layout ? s->B : a->dirs, a->layout ? a->dirs : s->B, s->H};
    EM_TRY(check_dims(d, opt_in(node, in, 5), "initial_h", 3, state, err));
    if (a->kind == KIND_LSTM) {
        EM_TRY(check_dims(d, opt_in(node, in, 6), "initial_c", 3, state, err));
        EM_TRY(check_dims(d, opt_in(node, in, 7), "P", 2,
                          (const int64_t[]){a->dirs, s->H >= 0 ? 3 * s->H : -1}, err));
    }
    const em_tensor *sl = opt_in(node, in, 4);
    if (sl && sl->dtype != EMBER_INT32) return em_unsupported_type(node, 4, sl->dtype, err);
    return EMBER_OK;
}

static ember_status rnn_infer_common(const em_node *node, em_tensor *const *in, em_tensor *out,
                                     rnn_kind kind, ember_error *err) {
    char d[256];
    rnn_attrs a;
    EM_TRY(rnn_read_attrs(node, kind, &a, err));
    ember_dtype dt = in[0]->dtype;
    if (dt != EMBER_FLOAT && dt != EMBER_FLOAT16) return em_unsupported_type(node, 0, dt, err);
    static const int float_inputs[] = {1, 2, 3, 5, 6, 7};
    for (size_t i = 0; i < sizeof float_inputs / sizeof float_inputs[0]; i++) {
        const em_tensor *t = opt_in(node, in, float_inputs[i]);
        if (t && t->dtype != dt)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: input %d must have X's type",
                           em_node_desc(node, d, sizeof d), float_inputs[i]);
    }
    if (in[0]->rank < 0 || in[1]->rank < 0 || in[2]->rank < 0) {
        for (int k = 0; k < node->n_outputs; k++) {
            out[k].dtype = dt;
            out[k].rank = -1;
        }
        return EMBER_OK;
    }
    rnn_shape s;
    EM_TRY(rnn_shapes(node, &a, in, &s, err));
    int64_t y[4], st[3];
    if (a.layout) {
        memcpy(y, (int64_t[]){s.B, s.T, a.dirs, s.H}, sizeof y);
        memcpy(st, (int64_t[]){s.B, a.dirs, s.H}, sizeof st);
    } else {
        memcpy(y, (int64_t[]){s.T, a.dirs, s.B, s.H}, sizeof y);
        memcpy(st, (int64_t[]){a.dirs, s.B, s.H}, sizeof st);
    }
    for (int k = 0; k < node->n_outputs; k++) {
        if (k == 0)
            em_tensor_set_shape(&out[k], dt, y, 4);
        else
            em_tensor_set_shape(&out[k], dt, st, 3);
    }
    return EMBER_OK;
}

/* ---- run ---- */

typedef struct rnn_bufs {
    const float *x, *w, *r, *b, *h0, *c0, *p;
    const int32_t *lens;
    float *y, *yh, *yc;
} rnn_bufs;

/* Element offsets of the (t, d, b) row of Y and of the (d, b) row of a state tensor. */
static inline int64_t y_row(const rnn_shape *s, int layout, int dirs, int64_t t, int d, int64_t b) {
    return (layout ? (b * s->T + t) * dirs + d : (t * dirs + d) * s->B + b) * s->H;
}
static inline int64_t st_row(const rnn_shape *s, int layout, int dirs, int d, int64_t b) {
    return (layout ? b * dirs + d : d * s->B + b) * s->H;
}

static ember_status run_direction(const rnn_attrs *a, const rnn_shape *s, const rnn_bufs *io, int d,
                                  bool reverse, float *xw, float *hr, float *h, float *c,
                                  float *tmp, em_exec *ex) {
    const int64_t T = s->T, B = s->B, I = s->I, H = s->H, G = a->gates, GH = G * H;
    const float *w = io->w + (int64_t)d * GH * I, *r = io->r + (int64_t)d * GH * H;
    const float *wb = io->b ? io->b + (int64_t)d * 2 * GH : NULL, *rb = wb ? wb + GH : NULL;
    const rnn_fn *fn = a->fns + d * a->n_fns;
    /* Input projection of the whole sequence, rows in X's order, plus the foldable biases. */
    em_sgemm(ex, false, true, T * B, GH, I, 1.0f, io->x, I, w, I, 0.0f, xw, GH);
    if (wb) {
        for (int64_t g = 0; g < G; g++) {
            bool fold_rb = !(a->kind == KIND_GRU && g == 2 && a->linear_before_reset);
            for (int64_t q = 0; q < T * B; q++) {
                float *row = xw + q * GH + g * H;
                for (int64_t j = 0; j < H; j++)
                    row[j] += wb[g * H + j] + (fold_rb ? rb[g * H + j] : 0.0f);
            }
        }
    }
    /* Initial state. */
    for (int64_t b = 0; b < B; b++) {
        if (io->h0)
            memcpy(h + b * H, io->h0 + st_row(s, a->layout, a->dirs, d, b),
                   (size_t)H * sizeof(float));
        else
            memset(h + b * H, 0, (size_t)H * sizeof(float));
        if (c) {
            if (io->c0)
                memcpy(c + b * H, io->c0 + st_row(s, a->layout, a->dirs, d, b),
                       (size_t)H * sizeof(float));
            else
                memset(c + b * H, 0, (size_t)H * sizeof(float));
        }
    }
    const float *pi = NULL, *po = NULL, *pf = NULL;
    if (io->p) {
        pi = io->p + (int64_t)d * 3 * H;
        po = pi + H;
        pf = po + H;
    }
    for (int64_t step = 0; step < T; step++) {
        /* hr = H_{t-1} * R^T for every batch row (GRU without linear_before_reset: z, r only). */
        int64_t n_rec = a->kind == KIND_GRU && !a->linear_before_reset ? 2 * H : GH;
        em_sgemm(ex, false, true, B, n_rec, H, 1.0f, h, H, r, H, 0.0f, hr, GH);
        for (int64_t b = 0; b < B; b++) {
            int64_t len = io->lens ? io->lens[b] : T;
            if (step >= len) continue;
            int64_t t = reverse ? len - 1 - step : step;
            float *g = tmp; /* GH gate pre-activations of this row */
            const float *xr = xw + (a->layout ? b * T + t : t * B + b) * GH;
            const float *hrr = hr + b * GH;
            float *hb = h + b * H;
            for (int64_t j = 0; j < n_rec; j++) g[j] = xr[j] + hrr[j];
            if (a->kind == KIND_RNN) {
                apply_fn_n(&fn[0], a, g, H);
                memcpy(hb, g, (size_t)H * sizeof(float));
            } else if (a->kind == KIND_LSTM) {
                float *gi = g, *go = g + H, *gf = g + 2 * H, *gc = g + 3 * H, *cb = c + b * H;
                if (pi)
                    for (int64_t j = 0; j < H; j++) {
                        gi[j] += pi[j] * cb[j];
                        gf[j] += pf[j] * cb[j];
                    }
                apply_fn_n(&fn[0], a, gi, H);
                if (a->input_forget)
                    for (int64_t j = 0; j < H; j++) gf[j] = 1.0f - gi[j];
                else
                    apply_fn_n(&fn[0], a, gf, H);
                apply_fn_n(&fn[1], a, gc, H);
                for (int64_t j = 0; j < H; j++) cb[j] = gf[j] * cb[j] + gi[j] * gc[j];
                if (po)
                    for (int64_t j = 0; j < H; j++) go[j] += po[j] * cb[j];
                apply_fn_n(&fn[0], a, go, H);
                float *hc = gf; /* reuse: h(C) */
                memcpy(hc, cb, (size_t)H * sizeof(float));
                apply_fn_n(&fn[2], a, hc, H);
                for (int64_t j = 0; j < H; j++) hb[j] = go[j] * hc[j];
            } else { /* GRU */
                float *gz = g, *gr = g + H, *gh = g + 2 * H;
                apply_fn_n(&fn[0], a, gz, H);
                apply_fn_n(&fn[0], a, gr, H);
                if (a->linear_before_reset) {
                    const float *rbh = rb ? rb + 2 * H : NULL;
                    for (int64_t j = 0; j < H; j++)
                        gh[j] = xr[2 * H + j] + gr[j] * (hrr[2 * H + j] + (rbh ? rbh[j] : 0.0f));
                } else {
                    /* (r .* H_{t-1}) * Rh^T, one row */
                    float *rh = gh; /* reuse as input, then output below */
                    float *acc = tmp + GH;
                    for (int64_t j = 0; j < H; j++) rh[j] = gr[j] * hb[j];
                    em_sgemm_serial(false, true, 1, H, H, 1.0f, rh, H, r + 2 * H * H, H, 0.0f, acc,
                                    H);
                    for (int64_t j = 0; j < H; j++) gh[j] = xr[2 * H + j] + acc[j];
                }
                apply_fn_n(&fn[1], a, gh, H);
                for (int64_t j = 0; j < H; j++) hb[j] = (1.0f - gz[j]) * gh[j] + gz[j] * hb[j];
            }
            float *yr = io->y + y_row(s, a->layout, a->dirs, t, d, b);
            memcpy(yr, hb, (size_t)H * sizeof(float));
        }
    }
    /* Y past each row's length is zero; final states. */
    for (int64_t b = 0; b < B; b++) {
        int64_t len = io->lens ? io->lens[b] : T;
        for (int64_t t = len; t < T; t++)
            memset(io->y + y_row(s, a->layout, a->dirs, t, d, b), 0, (size_t)H * sizeof(float));
        memcpy(io->yh + st_row(s, a->layout, a->dirs, d, b), h + b * H, (size_t)H * sizeof(float));
        if (c && io->yc)
            memcpy(io->yc + st_row(s, a->layout, a->dirs, d, b), c + b * H,
                   (size_t)H * sizeof(float));
    }
    return EMBER_OK;
}

static ember_status rnn_run_common(const em_node *node, em_tensor *const *in, em_tensor *out,
                                   rnn_kind kind, em_exec *ex, ember_error *err) {
    char d[256];
    rnn_attrs a;
    EM_TRY(rnn_read_attrs(node, kind, &a, err));
    rnn_shape s;
    EM_TRY(rnn_shapes(node, &a, in, &s, err));
    const em_tensor *lens = opt_in(node, in, 4);
    if (lens) {
        for (int64_t b = 0; b < s.B; b++) {
            int32_t v = ((const int32_t *)lens->data)[b];
            if (v < 0 || v > s.T)
                return em_fail(err, EMBER_ERR_SHAPE,
                               "%s: sequence_lens[%lld] = %d is outside [0, %lld]",
                               em_node_desc(node, d, sizeof d), (long long)b, v, (long long)s.T);
        }
    }
    const int64_t GH = a.gates * s.H;
    /* float16: widen every float input and compute into float32 outputs. */
    const bool half = in[0]->dtype == EMBER_FLOAT16;
    const float *fin[8] = {NULL};
    for (int i = 0; i < node->n_inputs && i < 8; i++) {
        if (i == 4 || !in[i]) continue;
        if (!half) {
            fin[i] = in[i]->data;
            continue;
        }
        int64_t n = em_numel(in[i]);
        float *f = em_exec_scratch(ex, (size_t)(n > 0 ? n : 1) * sizeof(float), err);
        if (!f) return SCRATCH_FAILED;
        em_convert(f, EMBER_FLOAT, in[i]->data, in[i]->dtype, n);
        fin[i] = f;
    }
    int64_t ny = s.T * a.dirs * s.B * s.H, ns = a.dirs * s.B * s.H;
    float *y = out[0].data, *yh = node->n_outputs > 1 ? out[1].data : NULL;
    float *yc = kind == KIND_LSTM && node->n_outputs > 2 ? out[2].data : NULL;
    float *half_out = NULL;
    if (half || !yh) {
        half_out = em_exec_scratch(ex, (size_t)(ny + 2 * ns + 1) * sizeof(float), err);
        if (!half_out) return SCRATCH_FAILED;
        if (half) y = half_out;
        if (half || !yh) yh = half_out + ny;
        if (half && yc) yc = half_out + ny + ns;
    }
    rnn_bufs io = {fin[0],
                   fin[1],
                   fin[2],
                   fin[3],
                   fin[5],
                   kind == KIND_LSTM ? fin[6] : NULL,
                   kind == KIND_LSTM ? fin[7] : NULL,
                   lens ? (const int32_t *)lens->data : NULL,
                   y,
                   yh,
                   yc};
    /* Scratch: xw (T*B x GH), hr (B x GH), h, c (B x H), gates row (GH + H). */
    size_t floats = (size_t)(s.T * s.B * GH + s.B * GH + 2 * s.B * s.H + GH + s.H + 16);
    float *work = em_exec_scratch(ex, floats * sizeof(float), err);
    if (!work) return SCRATCH_FAILED;
    float *xw = work, *hr = xw + s.T * s.B * GH, *h = hr + s.B * GH, *c = h + s.B * s.H;
    float *tmp = c + s.B * s.H;
    for (int dir = 0; dir < a.dirs; dir++) {
        bool reverse = a.dirs == 2 ? dir == 1 : a.reverse;
        EM_TRY(run_direction(&a, &s, &io, dir, reverse, xw, hr, h, kind == KIND_LSTM ? c : NULL,
                             tmp, ex));
    }
    if (half) {
        em_convert(out[0].data, EMBER_FLOAT16, y, EMBER_FLOAT, ny);
        if (node->n_outputs > 1) em_convert(out[1].data, EMBER_FLOAT16, yh, EMBER_FLOAT, ns);
        if (yc) em_convert(out[2].data, EMBER_FLOAT16, yc, EMBER_FLOAT, ns);
    }
    return EMBER_OK;
}

static ember_status rnn_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    return rnn_infer_common(node, in, out, KIND_RNN, err);
}
static ember_status gru_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    return rnn_infer_common(node, in, out, KIND_GRU, err);
}
static ember_status lstm_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    return rnn_infer_common(node, in, out, KIND_LSTM, err);
}
static ember_status rnn_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                            em_exec *ex, ember_error *err) {
    (void)state;
    return rnn_run_common(node, in, out, KIND_RNN, ex, err);
}
static ember_status gru_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                            em_exec *ex, ember_error *err) {
    (void)state;
    return rnn_run_common(node, in, out, KIND_GRU, ex, err);
}
static ember_status lstm_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, ember_error *err) {
    (void)state;
    return rnn_run_common(node, in, out, KIND_LSTM, ex, err);
}

/* Versions: 1 and 3 / 7 differ in attributes we handle uniformly (GRU-1 had no
 * linear_before_reset, RNN/LSTM-1 an `output_sequence` flag: Y is always produced); 14 adds
 * `layout`; 22 only widens types. */
static const em_op rnn_ops[] = {
    {"", "RNN", 1, 22, NULL, rnn_infer, rnn_run, NULL, 0},
    {"", "GRU", 1, 22, NULL, gru_infer, gru_run, NULL, 0},
    {"", "LSTM", 1, 22, NULL, lstm_infer, lstm_run, NULL, 0},
};

EM_OPS_FAMILY(rnn) {
    *count = sizeof rnn_ops / sizeof rnn_ops[0];
    return rnn_ops;
}
