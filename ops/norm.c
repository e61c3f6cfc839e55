/* Normalization: BatchNormalization, InstanceNormalization, LayerNormalization,
 * GroupNormalization, LRN, MeanVarianceNormalization, and Dropout (identity at inference).
 *
 * float32 is computed directly; double in double; float16 / bfloat16 through float32 scratch.
 * Statistics (means, variances) are accumulated in double. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"

static const char *desc(const em_node *node, char *buf, size_t size) {
    return em_node_desc(node, buf, size);
}

static bool is_half(ember_dtype dt) { return dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16; }
static bool is_float_type(ember_dtype dt) {
    return dt == EMBER_FLOAT || dt == EMBER_DOUBLE || is_half(dt);
}

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

/* A float / double view of a tensor for computing: half types are widened to float32 in
 * scratch. `out_view` gives the buffer to write; `finish_view` narrows it back. */
typedef struct fview {
    ember_dtype dt; /* EMBER_FLOAT or EMBER_DOUBLE */
    void *data;
} fview;

static ember_status view_in(em_exec *ex, const em_tensor *t, fview *v, ember_error *err) {
    if (!is_half(t->dtype)) {
        v->dt = t->dtype;
        v->data = t->data;
        return EMBER_OK;
    }
    int64_t n = em_numel(t);
    v->dt = EMBER_FLOAT;
    v->data = em_exec_scratch(ex, sizeof(float) * (size_t)(n > 0 ? n : 1), err);
    if (!v->data) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    half_to_f32(v->data, t->data, n, t->dtype);
    return EMBER_OK;
}

static ember_status view_out(em_exec *ex, em_tensor *t, fview *v, ember_error *err) {
    if (!is_half(t->dtype)) {
        v->dt = t->dtype;
        v->data = t->data;
        return EMBER_OK;
    }
    int64_t n = em_numel(t);
    v->dt = EMBER_FLOAT;
    v->data = em_exec_scratch(ex, sizeof(float) * (size_t)(n > 0 ? n : 1), err);
    if (!v->data) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    return EMBER_OK;
}

static void view_finish(em_tensor *t, const fview *v) {
    if (is_half(t->dtype)) f32_to_half(t->data, v->data, em_numel(t), t->dtype);
}

/* Small parameter vectors (scale, bias, mean, var) of any float type, read as double. */
static ember_status param_vector(em_exec *ex, const em_tensor *t, int64_t n, double **out,
                                 ember_error *err) {
    *out = em_exec_scratch(ex, sizeof(double) * (size_t)(n > 0 ? n : 1), err);
    if (!*out) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < n; i++) (*out)[i] = em_get_f64(t, i);
    return EMBER_OK;
}

/* Check that input i is a float tensor holding exactly `want` elements (want < 0: unknown). */
static ember_status check_param(const em_node *node, em_tensor *const *in, int i,
                                const char *what, int64_t want, ember_error *err) {
    char buf[160];
    const em_tensor *t = in[i];
    if (!t)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input %d (%s) is required",
                       desc(node, buf, sizeof buf), i, what);
    if (!is_float_type(t->dtype)) return em_unsupported_type(node, i, t->dtype, err);
    if (t->rank < 0 || want < 0) return EMBER_OK;
    int64_t n = em_numel(t);
    if (n >= 0 && n != want)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: %s has %lld elements, expected %lld",
                       desc(node, buf, sizeof buf), what, (long long)n, (long long)want);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Per-plane affine map y = x * a[c] + b[c], shared by inference BatchNormalization.
 * ------------------------------------------------------------------------------------------- */

typedef struct affine_ctx {
    ember_dtype dt;
    const void *x;
    void *y;
    int64_t channels, inner;
    const double *a, *b;
} affine_ctx;

static void affine_range(void *vctx, int64_t p0, int64_t p1) {
    const affine_ctx *c = vctx;
    int64_t inner = c->inner;
    for (int64_t p = p0; p < p1; p++) {
        int64_t ch = p % c->channels;
        if (c->dt == EMBER_FLOAT) {
            const float *restrict x = (const float *)c->x + p * inner;
            float *restrict y = (float *)c->y + p * inner;
            float a = (float)c->a[ch], b = (float)c->b[ch];
            for (int64_t i = 0; i < inner; i++) y[i] = x[i] * a + b;
        } else {
            const double *restrict x = (const double *)c->x + p * inner;
            double *restrict y = (double *)c->y + p * inner;
            double a = c->a[ch], b = c->b[ch];
            for (int64_t i = 0; i < inner; i++) y[i] = x[i] * a + b;
        }
    }
}

static int64_t grain_for(int64_t inner) {
    int64_t g = inner > 0 ? 16384 / inner : 1;
    return g < 1 ? 1 : g;
}

/* Mean and population variance of n values (two passes, double accumulation). */
static void moments(ember_dtype dt, const void *x, int64_t n, int64_t stride, double *mean,
                    double *var) {
    double s = 0.0, q = 0.0;
    if (dt == EMBER_FLOAT) {
        const float *v = x;
        for (int64_t i = 0; i < n; i++) s += v[i * stride];
        double m = n > 0 ? s / (double)n : 0.0;
        for (int64_t i = 0; i < n; i++) {
            double d = v[i * stride] - m;
            q += d * d;
        }
        *mean = m;
    } else {
        const double *v = x;
        for (int64_t i = 0; i < n; i++) s += v[i * stride];
        double m = n > 0 ? s / (double)n : 0.0;
        for (int64_t i = 0; i < n; i++) {
            double d = v[i * stride] - m;
            q += d * d;
        }
        *mean = m;
    }
    *var = n > 0 ? q / (double)n : 0.0;
}

/* Contiguous moments with float lanes for the float32 hot path (LayerNorm, InstanceNorm). */
static void moments_f32(const float *restrict x, int64_t n, double *mean, double *var) {
    enum { LANES = 8 };
    double s = 0.0;
    float acc[LANES] = {0};
    int64_t i = 0;
    /* Blocks keep float partial sums short, so precision stays close to double. */
    while (i < n) {
        int64_t end = i + 4096 < n ? i + 4096 : n;
        for (int l = 0; l < LANES; l++) acc[l] = 0.0f;
        int64_t j = i;
        for (; j + LANES <= end; j += LANES)
            for (int l = 0; l < LANES; l++) acc[l] += x[j + l];
        for (; j < end; j++) s += x[j];
        for (int l = 0; l < LANES; l++) s += acc[l];
        i = end;
    }
    double m = n > 0 ? s / (double)n : 0.0;
    float mf = (float)m;
    double q = 0.0;
    i = 0;
    while (i < n) {
        int64_t end = i + 4096 < n ? i + 4096 : n;
        for (int l = 0; l < LANES; l++) acc[l] = 0.0f;
        int64_t j = i;
        for (; j + LANES <= end; j += LANES)
            for (int l = 0; l < LANES; l++) {
                float d = x[j + l] - mf;
                acc[l] += d * d;
            }
        for (; j < end; j++) {
            double d = x[j] - m;
            q += d * d;
        }
        for (int l = 0; l < LANES; l++) q += acc[l];
        i = end;
    }
    *mean = m;
    *var = n > 0 ? q / (double)n : 0.0;
}

/* ---------------------------------------------------------------------------------------------
 * BatchNormalization
 * ------------------------------------------------------------------------------------------- */

/* Channels and inner size of X for BatchNormalization (spatial = 0 in versions 6-7 normalizes
 * each of C x D1 x ... separately). */
static void bn_layout(const em_node *node, const em_tensor *x, int64_t *channels,
                      int64_t *inner) {
    bool spatial = node->opset >= 9 || em_attr_int(node, "spatial", 1) != 0;
    int64_t rest = x->rank > 2 ? em_shape_numel(x->dims + 2, x->rank - 2) : 1;
    if (spatial) {
        *channels = x->dims[1];
        *inner = rest;
    } else {
        *channels = x->dims[1] >= 0 && rest >= 0 ? x->dims[1] * rest : -1;
        *inner = 1;
    }
}

static bool bn_training(const em_node *node) {
    return em_onnx_op_version("BatchNormalization", node->opset) >= 14 &&
           em_attr_int(node, "training_mode", 0) != 0;
}

static int present_outputs(const em_node *node) {
    int n = 0;
    for (int i = 1; i < node->n_outputs; i++) n += node->outputs[i] >= 0;
    return n;
}

static ember_status bn_infer(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_tensor *x = in[0];
    if (!is_float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (node->n_inputs < 5)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: needs 5 inputs",
                       desc(node, buf, sizeof buf));
    bool training = bn_training(node);
    if (present_outputs(node) > 0 && !training) {
        if (em_onnx_op_version("BatchNormalization", node->opset) >= 14)
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: outputs running_mean / running_var need training_mode = 1",
                           desc(node, buf, sizeof buf));
        return em_fail(err, EMBER_ERR_UNSUPPORTED,
                       "%s: training outputs (mean, var, saved_mean, saved_var) are not "
                       "supported", desc(node, buf, sizeof buf));
    }
    if (node->n_outputs > 3)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: too many outputs",
                       desc(node, buf, sizeof buf));
    int64_t channels = -1, inner = -1;
    if (x->rank >= 0) {
        if (x->rank < 2)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: X must have rank >= 2, got %d",
                           desc(node, buf, sizeof buf), x->rank);
        bn_layout(node, x, &channels, &inner);
    }
    static const char *const names[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++) EM_TRY(check_param(node, in, i, names[i], channels, err));
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    int64_t cdim[1] = {channels};
    for (int i = 1; i < node->n_outputs; i++)
        if (node->outputs[i] >= 0) {
            if (channels < 0) em_tensor_set_shape(&out[i], in[3]->dtype, NULL, -1);
            else em_tensor_set_shape(&out[i], in[3]->dtype, cdim, 1);
        }
    return EMBER_OK;
}

/* Per-channel batch statistics over N and the spatial dims. */
typedef struct bn_stats_ctx {
    ember_dtype dt;
    const void *x;
    int64_t batch, channels, inner;
    double *mean, *var;
} bn_stats_ctx;

static void bn_stats_range(void *vctx, int64_t c0, int64_t c1) {
    const bn_stats_ctx *c = vctx;
    size_t es = c->dt == EMBER_FLOAT ? 4 : 8;
    for (int64_t ch = c0; ch < c1; ch++) {
        double s = 0.0, q = 0.0;
        int64_t count = c->batch * c->inner;
        for (int64_t n = 0; n < c->batch; n++) {
            const char *p = (const char *)c->x + (size_t)((n * c->channels + ch) * c->inner) * es;
            double m, v;
            if (c->dt == EMBER_FLOAT) moments_f32((const float *)p, c->inner, &m, &v);
            else moments(c->dt, p, c->inner, 1, &m, &v);
            s += m * (double)c->inner;
            q += (v + m * m) * (double)c->inner;
        }
        double mean = count > 0 ? s / (double)count : 0.0;
        double var = count > 0 ? q / (double)count - mean * mean : 0.0;
        c->mean[ch] = mean;
        c->var[ch] = var > 0.0 ? var : 0.0;
    }
}

static ember_status bn_run(const em_node *node, void *state, em_tensor *const *in,
                           em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int64_t channels, inner;
    bn_layout(node, x, &channels, &inner);
    int64_t batch = x->dims[0];
    double eps = em_attr_float(node, "epsilon", 1e-5f);
    double momentum = em_attr_float(node, "momentum", 0.9f);
    double *scale, *bias, *mean, *var, *a, *b;
    EM_TRY(param_vector(ex, in[1], channels, &scale, err));
    EM_TRY(param_vector(ex, in[2], channels, &bias, err));
    EM_TRY(param_vector(ex, in[3], channels, &mean, err));
    EM_TRY(param_vector(ex, in[4], channels, &var, err));
    EM_TRY(param_vector(ex, in[4], 0, &a, err));
    a = em_exec_scratch(ex, sizeof(double) * (size_t)(2 * channels + 1), err);
    if (!a) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    b = a + channels;

    fview xv, yv;
    EM_TRY(view_in(ex, x, &xv, err));
    EM_TRY(view_out(ex, &out[0], &yv, err));
    if (bn_training(node)) {
        double *bmean = em_exec_scratch(ex, sizeof(double) * (size_t)(2 * channels + 1), err);
        if (!bmean) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        double *bvar = bmean + channels;
        bn_stats_ctx sc = {xv.dt, xv.data, batch, channels, inner, bmean, bvar};
        em_parallel_for(ex, channels, 1, bn_stats_range, &sc);
        for (int i = 1; i < node->n_outputs && i < 3; i++) {
            if (node->outputs[i] < 0) continue;
            const double *cur = i == 1 ? bmean : bvar;
            const double *run = i == 1 ? mean : var;
            for (int64_t ch = 0; ch < channels; ch++)
                em_set_f64(&out[i], ch, run[ch] * momentum + cur[ch] * (1.0 - momentum));
        }
        mean = bmean;
        var = bvar;
    }
    for (int64_t ch = 0; ch < channels; ch++) {
        a[ch] = scale[ch] / sqrt(var[ch] + eps);
        b[ch] = bias[ch] - mean[ch] * a[ch];
    }
    affine_ctx c = {yv.dt, xv.data, yv.data, channels, inner, a, b};
    em_parallel_for(ex, batch * channels, grain_for(inner), affine_range, &c);
    view_finish(&out[0], &yv);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * InstanceNormalization and GroupNormalization: statistics per (n, group) over contiguous
 * blocks, then a per-channel affine map.
 * ------------------------------------------------------------------------------------------- */

typedef struct group_ctx {
    ember_dtype dt;
    const void *x;
    void *y;
    int64_t channels, groups, inner; /* inner: spatial size of one channel */
    const double *scale, *bias;      /* per channel */
    double eps;
} group_ctx;

static void group_range(void *vctx, int64_t p0, int64_t p1) {
    const group_ctx *c = vctx;
    int64_t cpg = c->channels / c->groups;
    int64_t block = cpg * c->inner;
    for (int64_t p = p0; p < p1; p++) {
        int64_t first_ch = (p % c->groups) * cpg;
        double mean, var;
        if (c->dt == EMBER_FLOAT) moments_f32((const float *)c->x + p * block, block, &mean, &var);
        else moments(c->dt, (const double *)c->x + p * block, block, 1, &mean, &var);
        double inv = 1.0 / sqrt(var + c->eps);
        for (int64_t k = 0; k < cpg; k++) {
            int64_t ch = first_ch + k;
            double a = c->scale[ch] * inv, b = c->bias[ch] - mean * a;
            int64_t off = p * block + k * c->inner;
            if (c->dt == EMBER_FLOAT) {
                const float *restrict x = (const float *)c->x + off;
                float *restrict y = (float *)c->y + off;
                float af = (float)a, bf = (float)b;
                for (int64_t i = 0; i < c->inner; i++) y[i] = x[i] * af + bf;
            } else {
                const double *restrict x = (const double *)c->x + off;
                double *restrict y = (double *)c->y + off;
                for (int64_t i = 0; i < c->inner; i++) y[i] = x[i] * a + b;
            }
        }
    }
}

static ember_status instnorm_infer(const em_node *node, void *state, em_tensor *const *in,
                                   em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_tensor *x = in[0];
    if (!is_float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (node->n_inputs < 3)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: needs 3 inputs",
                       desc(node, buf, sizeof buf));
    int64_t channels = -1;
    if (x->rank >= 0) {
        if (x->rank < 2)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: input must have rank >= 2, got %d",
                           desc(node, buf, sizeof buf), x->rank);
        channels = x->dims[1];
    }
    EM_TRY(check_param(node, in, 1, "scale", channels, err));
    EM_TRY(check_param(node, in, 2, "B", channels, err));
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status group_run_common(const em_node *node, em_tensor *const *in, em_tensor *out,
                                     em_exec *ex, int64_t groups, bool per_group_params,
                                     ember_error *err) {
    const em_tensor *x = in[0];
    int64_t channels = x->dims[1];
    int64_t inner = x->rank > 2 ? em_shape_numel(x->dims + 2, x->rank - 2) : 1;
    double *scale, *bias;
    int64_t nparam = per_group_params ? groups : channels;
    EM_TRY(param_vector(ex, in[1], nparam, &scale, err));
    EM_TRY(param_vector(ex, in[2], nparam, &bias, err));
    if (per_group_params) {
        /* Expand per-group parameters to per-channel. */
        double *s2 = em_exec_scratch(ex, sizeof(double) * (size_t)(2 * channels + 1), err);
        if (!s2) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        int64_t cpg = channels / groups;
        for (int64_t ch = 0; ch < channels; ch++) {
            s2[ch] = scale[ch / cpg];
            s2[channels + ch] = bias[ch / cpg];
        }
        scale = s2;
        bias = s2 + channels;
    }
    fview xv, yv;
    EM_TRY(view_in(ex, x, &xv, err));
    EM_TRY(view_out(ex, &out[0], &yv, err));
    group_ctx c = {yv.dt, xv.data, yv.data, channels, groups, inner, scale, bias,
                   em_attr_float(node, "epsilon", 1e-5f)};
    int64_t block = channels / groups * inner;
    em_parallel_for(ex, x->dims[0] * groups, grain_for(block), group_range, &c);
    view_finish(&out[0], &yv);
    return EMBER_OK;
}

static ember_status instnorm_run(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    if (em_numel(in[0]) == 0) return EMBER_OK;
    return group_run_common(node, in, out, ex, in[0]->dims[1], false, err);
}

static bool groupnorm_per_group(const em_node *node) {
    return em_onnx_op_version("GroupNormalization", node->opset) < 21;
}

static ember_status groupnorm_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_tensor *x = in[0];
    if (!is_float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (node->n_inputs < 3)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: needs 3 inputs",
                       desc(node, buf, sizeof buf));
    int64_t groups = em_attr_int(node, "num_groups", 0);
    if (groups < 1 || !em_node_attr(node, "num_groups"))
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: num_groups must be given and >= 1",
                       desc(node, buf, sizeof buf));
    int64_t channels = -1;
    if (x->rank >= 0) {
        if (x->rank < 2)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: input must have rank >= 2, got %d",
                           desc(node, buf, sizeof buf), x->rank);
        channels = x->dims[1];
        if (channels >= 0 && channels % groups != 0)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: %lld channels do not split into %lld groups",
                           desc(node, buf, sizeof buf), (long long)channels, (long long)groups);
    }
    int64_t want = groupnorm_per_group(node) ? groups : channels;
    EM_TRY(check_param(node, in, 1, "scale", want, err));
    EM_TRY(check_param(node, in, 2, "bias", want, err));
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status groupnorm_run(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    if (em_numel(in[0]) == 0) return EMBER_OK;
    return group_run_common(node, in, out, ex, em_attr_int(node, "num_groups", 1),
                            groupnorm_per_group(node), err);
}

/* ---------------------------------------------------------------------------------------------
 * LayerNormalization (17): normalize over dims [axis, rank).
 * ------------------------------------------------------------------------------------------- */

/* Unidirectional broadcast of a parameter onto the normalized shape (dims[axis:]): returns
 * false if it does not broadcast. */
static bool ln_param_fits(const em_tensor *p, const int64_t *norm_dims, int norm_rank) {
    if (p->rank > norm_rank) {
        /* Leading dims of size 1 beyond the normalized rank are harmless. */
        for (int i = 0; i < p->rank - norm_rank; i++)
            if (p->dims[i] != 1) return false;
    }
    int off = norm_rank - p->rank;
    for (int i = 0; i < p->rank; i++) {
        int j = i + off;
        if (j < 0) continue;
        if (p->dims[i] != 1 && p->dims[i] >= 0 && norm_dims[j] >= 0 && p->dims[i] != norm_dims[j])
            return false;
    }
    return true;
}

static ember_status ln_axis(const em_node *node, int rank, int *axis, ember_error *err) {
    return em_norm_axis(node, em_attr_int(node, "axis", -1), rank, axis, err);
}

static ember_dtype ln_stat_type(const em_node *node, ember_dtype x) {
    int64_t stash = em_attr_int(node, "stash_type", 1);
    if (stash == EMBER_FLOAT || stash == EMBER_DOUBLE || stash == EMBER_FLOAT16 ||
        stash == EMBER_BFLOAT16)
        return (ember_dtype)stash;
    return x;
}

static ember_status ln_infer(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_tensor *x = in[0];
    if (!is_float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (node->n_inputs < 2 || !in[1])
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: Scale is required",
                       desc(node, buf, sizeof buf));
    for (int i = 1; i < 3 && i < node->n_inputs; i++)
        if (in[i] && !is_float_type(in[i]->dtype))
            return em_unsupported_type(node, i, in[i]->dtype, err);
    ember_dtype st = ln_stat_type(node, x->dtype);
    if (x->rank < 0) {
        em_tensor_set_shape(&out[0], x->dtype, NULL, -1);
        for (int i = 1; i < node->n_outputs && i < 3; i++)
            if (node->outputs[i] >= 0) em_tensor_set_shape(&out[i], st, NULL, -1);
        return EMBER_OK;
    }
    if (x->rank < 1)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: X must have rank >= 1",
                       desc(node, buf, sizeof buf));
    int axis;
    EM_TRY(ln_axis(node, x->rank, &axis, err));
    for (int i = 1; i < 3 && i < node->n_inputs; i++) {
        if (!in[i] || in[i]->rank < 0) continue;
        if (!ln_param_fits(in[i], x->dims + axis, x->rank - axis))
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: %s does not broadcast to the normalized shape (axis %d)",
                           desc(node, buf, sizeof buf), i == 1 ? "Scale" : "B", axis);
    }
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    int64_t sdims[EM_MAX_RANK];
    for (int i = 0; i < x->rank; i++) sdims[i] = i < axis ? x->dims[i] : 1;
    for (int i = 1; i < node->n_outputs && i < 3; i++)
        if (node->outputs[i] >= 0) em_tensor_set_shape(&out[i], st, sdims, x->rank);
    return EMBER_OK;
}

typedef struct ln_ctx {
    ember_dtype dt;
    const void *x;
    void *y;
    int64_t inner;
    const void *scale, *bias; /* inner-length vectors of dt (bias may be NULL) */
    double eps;
    em_tensor *mean_out, *inv_out; /* may be NULL */
} ln_ctx;

static void ln_range(void *vctx, int64_t r0, int64_t r1) {
    const ln_ctx *c = vctx;
    int64_t n = c->inner;
    for (int64_t r = r0; r < r1; r++) {
        double mean, var;
        if (c->dt == EMBER_FLOAT) moments_f32((const float *)c->x + r * n, n, &mean, &var);
        else moments(c->dt, (const double *)c->x + r * n, n, 1, &mean, &var);
        double inv = 1.0 / sqrt(var + c->eps);
        if (c->mean_out) em_set_f64(c->mean_out, r, mean);
        if (c->inv_out) em_set_f64(c->inv_out, r, inv);
        if (c->dt == EMBER_FLOAT) {
            const float *restrict x = (const float *)c->x + r * n;
            float *restrict y = (float *)c->y + r * n;
            const float *restrict s = c->scale;
            const float *restrict b = c->bias;
            float mf = (float)mean, invf = (float)inv;
            if (b)
                for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mf) * invf * s[i] + b[i];
            else
                for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mf) * invf * s[i];
        } else {
            const double *restrict x = (const double *)c->x + r * n;
            double *restrict y = (double *)c->y + r * n;
            const double *restrict s = c->scale;
            const double *restrict b = c->bias;
            for (int64_t i = 0; i < n; i++) y[i] = (x[i] - mean) * inv * s[i] + (b ? b[i] : 0.0);
        }
    }
}

/* Expand a parameter to a contiguous vector of the normalized shape in the compute type. */
static ember_status ln_expand(em_exec *ex, const em_tensor *p, const int64_t *norm_dims,
                              int norm_rank, int64_t inner, ember_dtype dt, void **out,
                              ember_error *err) {
    size_t es = dt == EMBER_FLOAT ? 4 : 8;
    if (p->dtype == dt && em_numel(p) == inner) {
        *out = p->data;
        return EMBER_OK;
    }
    void *buf = em_exec_scratch(ex, es * (size_t)(inner > 0 ? inner : 1), err);
    if (!buf) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    /* Source strides aligned to the normalized dims; size-1 dims broadcast (stride 0). */
    int64_t pstr[EM_MAX_RANK], str[EM_MAX_RANK] = {0};
    em_strides(p->dims, p->rank, pstr);
    for (int j = 0; j < norm_rank; j++) {
        int i = j - (norm_rank - p->rank);
        str[j] = i >= 0 && p->dims[i] != 1 ? pstr[i] : 0;
    }
    int64_t pos[EM_MAX_RANK] = {0};
    for (int64_t e = 0; e < inner; e++) {
        int64_t src = 0;
        for (int j = 0; j < norm_rank; j++) src += pos[j] * str[j];
        double v = em_get_f64(p, src);
        if (dt == EMBER_FLOAT) ((float *)buf)[e] = (float)v;
        else ((double *)buf)[e] = v;
        for (int j = norm_rank - 1; j >= 0; j--) {
            if (++pos[j] < norm_dims[j]) break;
            pos[j] = 0;
        }
    }
    *out = buf;
    return EMBER_OK;
}

static ember_status ln_run(const em_node *node, void *state, em_tensor *const *in,
                           em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int axis;
    EM_TRY(ln_axis(node, x->rank, &axis, err));
    int64_t outer = em_shape_numel(x->dims, axis);
    int64_t inner = em_shape_numel(x->dims + axis, x->rank - axis);
    if (outer == 0 || inner == 0) return EMBER_OK;
    fview xv, yv;
    EM_TRY(view_in(ex, x, &xv, err));
    EM_TRY(view_out(ex, &out[0], &yv, err));
    ln_ctx c = {.dt = yv.dt, .x = xv.data, .y = yv.data, .inner = inner,
                .eps = em_attr_float(node, "epsilon", 1e-5f)};
    void *s = NULL, *b = NULL;
    EM_TRY(ln_expand(ex, in[1], x->dims + axis, x->rank - axis, inner, yv.dt, &s, err));
    if (node->n_inputs > 2 && in[2])
        EM_TRY(ln_expand(ex, in[2], x->dims + axis, x->rank - axis, inner, yv.dt, &b, err));
    c.scale = s;
    c.bias = b;
    if (node->n_outputs > 1 && node->outputs[1] >= 0) c.mean_out = &out[1];
    if (node->n_outputs > 2 && node->outputs[2] >= 0) c.inv_out = &out[2];
    em_parallel_for(ex, outer, grain_for(inner), ln_range, &c);
    view_finish(&out[0], &yv);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * ai.ember AddLayerNormalization (made by the optimizer): LayerNormalization over the last axis
 * of A + B (numpy broadcasting), float32. The sum is rounded to float first, so the result is
 * exactly that of Add then LayerNormalization, without writing and re-reading the sum.
 * ------------------------------------------------------------------------------------------- */

static ember_status addln_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    for (int i = 0; i < 4 && i < node->n_inputs; i++)
        if (in[i] && in[i]->dtype != EMBER_FLOAT) return em_unsupported_type(node, i, in[i]->dtype, err);
    if (node->n_inputs < 3 || !in[0] || !in[1] || !in[2])
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: A, B and Scale are required",
                       desc(node, buf, sizeof buf));
    if (in[0]->rank < 0 || in[1]->rank < 0) {
        em_tensor_set_shape(&out[0], EMBER_FLOAT, NULL, -1);
        return EMBER_OK;
    }
    int64_t dims[EM_MAX_RANK];
    int rank;
    if (!em_broadcast_shape(in[0]->dims, in[0]->rank, in[1]->dims, in[1]->rank, dims, &rank) ||
        rank < 1)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: A and B do not broadcast to rank >= 1",
                       desc(node, buf, sizeof buf));
    for (int i = 2; i < 4 && i < node->n_inputs; i++) {
        if (!in[i] || in[i]->rank < 0) continue;
        if (!ln_param_fits(in[i], dims + rank - 1, 1))
            return em_fail(err, EMBER_ERR_SHAPE, "%s: %s does not broadcast to the last axis",
                           desc(node, buf, sizeof buf), i == 2 ? "Scale" : "B");
    }
    em_tensor_set_shape(&out[0], EMBER_FLOAT, dims, rank);
    return EMBER_OK;
}

typedef struct addln_ctx {
    const float *a, *b;
    float *y;
    const float *scale, *bias;
    int rank;
    int64_t dims[EM_MAX_RANK], sa[EM_MAX_RANK], sb[EM_MAX_RANK]; /* strides, 0 = broadcast */
    double eps;
    bool avx2;
} addln_ctx;

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ADDLN_AVX2 1
/* One row of sum-then-normalize, computing exactly what moments_f32 and ln_range compute (the
 * same 8 float lanes, the same order of double sums, no fused multiply-adds), in AVX2. */
__attribute__((target("avx2"))) static void addln_row_avx2(const float *a, const float *b,
                                                            float *y, int64_t n, const float *s,
                                                            const float *bi, double eps) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++) y[i] = a[i] + b[i];
    double sum = 0.0, q = 0.0;
    float lanes[8];
    for (int64_t i0 = 0; i0 < n; i0 += 4096) {
        int64_t end = i0 + 4096 < n ? i0 + 4096 : n, j = i0;
        __m256 acc = _mm256_setzero_ps();
        for (; j + 8 <= end; j += 8) acc = _mm256_add_ps(acc, _mm256_loadu_ps(y + j));
        for (; j < end; j++) sum += y[j];
        _mm256_storeu_ps(lanes, acc);
        for (int l = 0; l < 8; l++) sum += lanes[l];
    }
    double mean = n > 0 ? sum / (double)n : 0.0;
    float mf = (float)mean;
    const __m256 vm = _mm256_set1_ps(mf);
    for (int64_t i0 = 0; i0 < n; i0 += 4096) {
        int64_t end = i0 + 4096 < n ? i0 + 4096 : n, j = i0;
        __m256 acc = _mm256_setzero_ps();
        for (; j + 8 <= end; j += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(y + j), vm);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
        }
        for (; j < end; j++) {
            double d = y[j] - mean;
            q += d * d;
        }
        _mm256_storeu_ps(lanes, acc);
        for (int l = 0; l < 8; l++) q += lanes[l];
    }
    double var = n > 0 ? q / (double)n : 0.0;
    float invf = (float)(1.0 / sqrt(var + eps));
    const __m256 vi = _mm256_set1_ps(invf);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(y + i), vm), vi),
                                 _mm256_loadu_ps(s + i));
        if (bi) v = _mm256_add_ps(v, _mm256_loadu_ps(bi + i));
        _mm256_storeu_ps(y + i, v);
    }
    for (; i < n; i++) y[i] = bi ? (y[i] - mf) * invf * s[i] + bi[i] : (y[i] - mf) * invf * s[i];
}
#endif

/* Offsets of row r of the two (broadcast) inputs: rows are the output's leading dims. */
static inline void addln_row_offsets(const addln_ctx *c, int64_t r, int64_t *oa, int64_t *ob) {
    int64_t a = 0, b = 0, rem = r;
    for (int d = c->rank - 2; d >= 0; d--) {
        int64_t i = rem % c->dims[d];
        rem /= c->dims[d];
        a += i * c->sa[d];
        b += i * c->sb[d];
    }
    *oa = a;
    *ob = b;
}

static void addln_range(void *vctx, int64_t r0, int64_t r1) {
    const addln_ctx *c = vctx;
#ifdef ADDLN_AVX2
    if (c->avx2 && c->sa[c->rank - 1] == 1 && c->sb[c->rank - 1] == 1) {
        const int last = c->rank - 1;
        const int64_t n = c->dims[last];
        for (int64_t r = r0; r < r1; r++) {
            int64_t oa, ob;
            addln_row_offsets(c, r, &oa, &ob);
            addln_row_avx2(c->a + oa, c->b + ob, c->y + r * n, n, c->scale, c->bias, c->eps);
        }
        return;
    }
#endif
    const int last = c->rank - 1;
    const int64_t n = c->dims[last], sal = c->sa[last], sbl = c->sb[last];
    for (int64_t r = r0; r < r1; r++) {
        int64_t oa, ob;
        addln_row_offsets(c, r, &oa, &ob);
        const float *a = c->a + oa, *b = c->b + ob;
        float *y = c->y + r * n;
        if (sal == 1 && sbl == 1)
            for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
        else
            for (int64_t i = 0; i < n; i++) y[i] = a[i * sal] + b[i * sbl];
        double mean, var;
        moments_f32(y, n, &mean, &var);
        float mf = (float)mean, invf = (float)(1.0 / sqrt(var + c->eps));
        const float *s = c->scale, *bi = c->bias;
        if (bi)
            for (int64_t i = 0; i < n; i++) y[i] = (y[i] - mf) * invf * s[i] + bi[i];
        else
            for (int64_t i = 0; i < n; i++) y[i] = (y[i] - mf) * invf * s[i];
    }
}

/* Element strides of t aligned to the trailing dims of an output of `rank` (0 where t
 * broadcasts). */
static void broadcast_strides(const em_tensor *t, int rank, int64_t *out) {
    int64_t st[EM_MAX_RANK];
    em_strides(t->dims, t->rank, st);
    for (int d = 0; d < rank; d++) {
        int i = d - (rank - t->rank);
        out[d] = i >= 0 && t->dims[i] != 1 ? st[i] : 0;
    }
}

static ember_status addln_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    em_tensor *y = &out[0];
    addln_ctx c = {.a = in[0]->data, .b = in[1]->data, .y = y->data, .rank = y->rank,
                   .eps = em_attr_float(node, "epsilon", 1e-5f)};
    int64_t n = y->dims[y->rank - 1], rows = n > 0 ? em_numel(y) / n : 0;
    if (rows == 0) return EMBER_OK;
    memcpy(c.dims, y->dims, sizeof(int64_t) * (size_t)y->rank);
    broadcast_strides(in[0], y->rank, c.sa);
    broadcast_strides(in[1], y->rank, c.sb);
    void *s = NULL, *b = NULL;
    EM_TRY(ln_expand(ex, in[2], &n, 1, n, EMBER_FLOAT, &s, err));
    if (node->n_inputs > 3 && in[3]) EM_TRY(ln_expand(ex, in[3], &n, 1, n, EMBER_FLOAT, &b, err));
    c.scale = s;
    c.bias = b;
#ifdef ADDLN_AVX2
    c.avx2 = __builtin_cpu_supports("avx2");
#endif
    em_parallel_for(ex, rows, grain_for(n), addln_range, &c);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * LRN: across-channel local response normalization.
 * ------------------------------------------------------------------------------------------- */

typedef struct lrn_ctx {
    ember_dtype dt;
    const void *x;
    void *y;
    int64_t channels, inner;
    int64_t before, after; /* window: [c - before, c + after] */
    double alpha_over_size, beta, bias;
} lrn_ctx;

static void lrn_range(void *vctx, int64_t p0, int64_t p1) {
    const lrn_ctx *c = vctx;
    int64_t inner = c->inner;
    for (int64_t p = p0; p < p1; p++) {
        int64_t n = p / c->channels, ch = p % c->channels;
        int64_t lo = ch - c->before < 0 ? 0 : ch - c->before;
        int64_t hi = ch + c->after >= c->channels ? c->channels - 1 : ch + c->after;
        for (int64_t i = 0; i < inner; i++) {
            double sq = 0.0;
            for (int64_t k = lo; k <= hi; k++) {
                int64_t off = (n * c->channels + k) * inner + i;
                double v = c->dt == EMBER_FLOAT ? ((const float *)c->x)[off]
                                                : ((const double *)c->x)[off];
                sq += v * v;
            }
            int64_t off = p * inner + i;
            double base = c->bias + c->alpha_over_size * sq;
            double div = c->beta == 0.75 ? sqrt(base) * sqrt(sqrt(base)) : pow(base, c->beta);
            if (c->dt == EMBER_FLOAT)
                ((float *)c->y)[off] = (float)(((const float *)c->x)[off] / div);
            else
                ((double *)c->y)[off] = ((const double *)c->x)[off] / div;
        }
    }
}

static ember_status lrn_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_tensor *x = in[0];
    if (!is_float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    int64_t size = em_attr_int(node, "size", 0);
    if (size < 1)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: attribute 'size' must be >= 1",
                       desc(node, buf, sizeof buf));
    if (x->rank >= 0 && x->rank < 2)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: input must have rank >= 2, got %d",
                       desc(node, buf, sizeof buf), x->rank);
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status lrn_run(const em_node *node, void *state, em_tensor *const *in,
                            em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int64_t size = em_attr_int(node, "size", 1);
    if (em_numel(x) == 0) return EMBER_OK;
    fview xv, yv;
    EM_TRY(view_in(ex, x, &xv, err));
    EM_TRY(view_out(ex, &out[0], &yv, err));
    lrn_ctx c = {.dt = yv.dt, .x = xv.data, .y = yv.data, .channels = x->dims[1],
                 .inner = x->rank > 2 ? em_shape_numel(x->dims + 2, x->rank - 2) : 1,
                 .before = (size - 1) / 2, .after = size / 2,
                 .alpha_over_size = em_attr_float(node, "alpha", 1e-4f) / (double)size,
                 .beta = em_attr_float(node, "beta", 0.75f),
                 .bias = em_attr_float(node, "bias", 1.0f)};
    em_parallel_for(ex, x->dims[0] * c.channels, grain_for(c.inner * size), lrn_range, &c);
    view_finish(&out[0], &yv);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * MeanVarianceNormalization: (X - E[X]) / (sqrt(E[X^2] - E[X]^2) + 1e-9) over `axes`.
 * ------------------------------------------------------------------------------------------- */

static ember_status mvn_axes(const em_node *node, int rank, bool *reduce, ember_error *err) {
    static const int64_t dflt[] = {0, 2, 3};
    int64_t n = 0;
    const int64_t *axes = em_attr_ints(node, "axes", &n);
    if (!axes) {
        axes = dflt;
        n = 3;
    }
    for (int i = 0; i < rank; i++) reduce[i] = false;
    for (int64_t i = 0; i < n; i++) {
        int a;
        EM_TRY(em_norm_axis(node, axes[i], rank, &a, err));
        reduce[a] = true;
    }
    return EMBER_OK;
}

static ember_status mvn_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    if (!is_float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank >= 0) {
        bool reduce[EM_MAX_RANK];
        EM_TRY(mvn_axes(node, x->rank, reduce, err));
    }
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status mvn_run(const em_node *node, void *state, em_tensor *const *in,
                            em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    int rank = x->rank;
    bool reduce[EM_MAX_RANK];
    EM_TRY(mvn_axes(node, rank, reduce, err));
    int64_t n = em_numel(x);
    if (n == 0) return EMBER_OK;
    /* Kept-coordinate index of each element: strides over the kept dims only. */
    int64_t kstride[EM_MAX_RANK], groups = 1;
    for (int i = rank - 1; i >= 0; i--) {
        kstride[i] = reduce[i] ? 0 : groups;
        if (!reduce[i]) groups *= x->dims[i];
    }
    int64_t count = groups > 0 ? n / groups : 0;
    double *stats = em_exec_scratch(ex, sizeof(double) * (size_t)(2 * groups), err);
    if (!stats) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    double *sum = stats, *sumsq = stats + groups;
    for (int64_t g = 0; g < 2 * groups; g++) stats[g] = 0.0;
    fview xv, yv;
    EM_TRY(view_in(ex, x, &xv, err));
    EM_TRY(view_out(ex, &out[0], &yv, err));
    int64_t pos[EM_MAX_RANK] = {0}, k = 0;
    for (int64_t e = 0; e < n; e++) {
        double v = xv.dt == EMBER_FLOAT ? ((const float *)xv.data)[e]
                                        : ((const double *)xv.data)[e];
        sum[k] += v;
        sumsq[k] += v * v;
        for (int i = rank - 1; i >= 0; i--) {
            k += kstride[i];
            if (++pos[i] < x->dims[i]) break;
            k -= kstride[i] * x->dims[i];
            pos[i] = 0;
        }
    }
    for (int64_t g = 0; g < groups; g++) {
        double mean = sum[g] / (double)count;
        double var = sumsq[g] / (double)count - mean * mean;
        sum[g] = mean;
        sumsq[g] = 1.0 / (sqrt(var > 0.0 ? var : 0.0) + 1e-9);
    }
    memset(pos, 0, sizeof pos);
    k = 0;
    for (int64_t e = 0; e < n; e++) {
        if (yv.dt == EMBER_FLOAT)
            ((float *)yv.data)[e] =
                (float)((((const float *)xv.data)[e] - sum[k]) * sumsq[k]);
        else
            ((double *)yv.data)[e] = (((const double *)xv.data)[e] - sum[k]) * sumsq[k];
        for (int i = rank - 1; i >= 0; i--) {
            k += kstride[i];
            if (++pos[i] < x->dims[i]) break;
            k -= kstride[i] * x->dims[i];
            pos[i] = 0;
        }
    }
    view_finish(&out[0], &yv);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Dropout. Inference: identity, mask all true. Training mode (inputs from version 12): the
 * mask keeps an element when a uniform draw in [0, 1) is >= ratio. Draws come from MT19937
 * seeded like numpy's legacy RandomState, so a fixed `seed` reproduces the ONNX reference.
 * ------------------------------------------------------------------------------------------- */

typedef struct mt19937 {
    uint32_t state[624];
    int index;
} mt19937;

static void mt_seed(mt19937 *mt, uint32_t seed) {
    mt->state[0] = seed;
    for (int i = 1; i < 624; i++)
        mt->state[i] =
            1812433253u * (mt->state[i - 1] ^ (mt->state[i - 1] >> 30)) + (uint32_t)i;
    mt->index = 624;
}

static uint32_t mt_next(mt19937 *mt) {
    if (mt->index >= 624) {
        for (int i = 0; i < 624; i++) {
            uint32_t y = (mt->state[i] & 0x80000000u) | (mt->state[(i + 1) % 624] & 0x7fffffffu);
            uint32_t v = mt->state[(i + 397) % 624] ^ (y >> 1);
            if (y & 1u) v ^= 0x9908b0dfu;
            mt->state[i] = v;
        }
        mt->index = 0;
    }
    uint32_t y = mt->state[mt->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* Uniform double in [0, 1) with 53 random bits (numpy's random_sample). */
static double mt_uniform(mt19937 *mt) {
    uint32_t a = mt_next(mt) >> 5, b = mt_next(mt) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

static int dropout_version(const em_node *node) {
    return em_onnx_op_version("Dropout", node->opset);
}

static ember_status dropout_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_tensor *x = in[0];
    if (!is_float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (node->n_outputs > 2)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: too many outputs",
                       desc(node, buf, sizeof buf));
    int version = dropout_version(node);
    if (version >= 12) {
        if (node->n_inputs > 1 && in[1]) {
            if (!is_float_type(in[1]->dtype)) return em_unsupported_type(node, 1, in[1]->dtype, err);
            if (in[1]->rank > 0 && em_numel(in[1]) != 1)
                return em_fail(err, EMBER_ERR_SHAPE, "%s: ratio must be a scalar",
                               desc(node, buf, sizeof buf));
        }
        if (node->n_inputs > 2 && in[2]) {
            if (in[2]->dtype != EMBER_BOOL) return em_unsupported_type(node, 2, in[2]->dtype, err);
            if (in[2]->rank > 0 && em_numel(in[2]) != 1)
                return em_fail(err, EMBER_ERR_SHAPE, "%s: training_mode must be a scalar",
                               desc(node, buf, sizeof buf));
        }
    }
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank);
    if (node->n_outputs > 1 && node->outputs[1] >= 0)
        em_tensor_set_shape(&out[1], version >= 10 ? EMBER_BOOL : x->dtype, x->dims, x->rank);
    return EMBER_OK;
}

static ember_status dropout_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state, (void)ex;
    const em_tensor *x = in[0];
    int64_t n = em_numel(x);
    bool want_mask = node->n_outputs > 1 && node->outputs[1] >= 0;
    bool training = false;
    double ratio = 0.5;
    if (dropout_version(node) >= 12) {
        if (node->n_inputs > 2 && in[2] && em_numel(in[2]) == 1) training = em_get_i64(in[2], 0);
        if (node->n_inputs > 1 && in[1] && em_numel(in[1]) == 1) ratio = em_get_f64(in[1], 0);
    }
    if (training && ratio != 0.0) {
        if (!(ratio > 0.0 && ratio < 1.0)) {
            char buf[160];
            return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "%s: ratio %g is outside [0, 1)",
                           desc(node, buf, sizeof buf), ratio);
        }
        mt19937 *mt = em_exec_scratch(ex, sizeof *mt, err);
        if (!mt) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        const em_attr *seed = em_node_attr(node, "seed");
        /* Without a seed, take one from the address of this run's scratch and the data. */
        uint64_t s = seed ? (uint64_t)seed->i
                          : (uint64_t)(uintptr_t)mt ^ ((uint64_t)(uintptr_t)x->data >> 4);
        mt_seed(mt, (uint32_t)s);
        double scale = 1.0 / (1.0 - ratio);
        bool *mask = want_mask ? out[1].data : NULL;
        for (int64_t i = 0; i < n; i++) {
            bool keep = mt_uniform(mt) >= ratio;
            if (mask) mask[i] = keep;
            double v = keep ? em_get_f64(x, i) * scale : 0.0;
            em_set_f64(&out[0], i, v);
        }
        return EMBER_OK;
    }
    if (out[0].data != x->data) memcpy(out[0].data, x->data, em_nbytes(x));
    if (want_mask) {
        if (out[1].dtype == EMBER_BOOL) memset(out[1].data, 1, (size_t)n);
        else
            for (int64_t i = 0; i < n; i++) em_set_f64(&out[1], i, 1.0);
    }
    return EMBER_OK;
}

static const em_op k_norm_ops[] = {
    {"", "BatchNormalization", 6, 15, NULL, bn_infer, bn_run, NULL, 0},
    {"", "InstanceNormalization", 6, 22, NULL, instnorm_infer, instnorm_run, NULL, 0},
    {"", "LayerNormalization", 17, 0, NULL, ln_infer, ln_run, NULL, 0},
    {"ai.ember", "AddLayerNormalization", 1, 0, NULL, addln_infer, addln_run, NULL, 0},
    {"", "GroupNormalization", 18, 21, NULL, groupnorm_infer, groupnorm_run, NULL, 0},
    {"", "LRN", 1, 13, NULL, lrn_infer, lrn_run, NULL, 0},
    {"", "MeanVarianceNormalization", 9, 13, NULL, mvn_infer, mvn_run, NULL, 0},
    {"", "Dropout", 7, 22, NULL, dropout_infer, dropout_run, NULL, 0},
};

EM_OPS_FAMILY(norm) {
    *count = sizeof k_norm_ops / sizeof k_norm_ops[0];
    return k_norm_ops;
}
