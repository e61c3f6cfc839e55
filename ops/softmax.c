/* Softmax, LogSoftmax and Hardmax.
 *
 * Versions 1 and 11 view the input as 2-D at `axis` (default 1) and normalize each row of
 * prod(dims[axis:]) elements; version 13 normalizes along the single axis (default -1). Both
 * become [outer, n, inner]: inner is 1 for the old versions and for a last axis, and then each
 * row is contiguous; otherwise columns are processed in tiles so that loops run over contiguous
 * memory.
 *
 * Numerics: the maximum is subtracted before exp. A row whose maximum is -inf or NaN gives NaN
 * (exp(-inf - -inf)), as the ONNX reference, numpy and ONNX Runtime do; entries at -inf in a
 * row with a finite maximum give exactly 0 (Softmax) or -inf (LogSoftmax). Hardmax picks the
 * first maximum, a NaN counting as the maximum (numpy's argmax). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "linalg.h"
#include "vmath.h"

enum { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX };

typedef struct sm_shape {
    int64_t outer, n, inner;
} sm_shape;

static int sm_kind(const em_node *node) {
    if (strcmp(node->op_type, "LogSoftmax") == 0) return SM_LOGSOFTMAX;
    if (strcmp(node->op_type, "Hardmax") == 0) return SM_HARDMAX;
    return SM_SOFTMAX;
}

static ember_status sm_geometry(const em_node *node, const em_tensor *x, sm_shape *g,
                                ember_error *err) {
    int version = em_onnx_op_version(node->op_type, node->opset);
    bool flatten = version < 13;
    int64_t axis = em_attr_int(node, "axis", flatten ? 1 : -1);
    int rank = x->rank;
    int64_t a = axis < 0 ? axis + rank : axis;
    /* The 2-D view also accepts axis == rank (rows of one element). */
    if (a < 0 || a > rank || (!flatten && a == rank)) {
        char desc[256];
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: axis %lld is out of range for rank %d",
                       em_node_desc(node, desc, sizeof desc), (long long)axis, rank);
    }
    g->outer = 1;
    g->n = 1;
    g->inner = 1;
    for (int d = 0; d < rank; d++) {
        if (d < a)
            g->outer *= x->dims[d];
        else if (d == a || flatten)
            g->n *= x->dims[d];
        else
            g->inner *= x->dims[d];
    }
    return EMBER_OK;
}

static ember_status sm_infer(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             ember_error *err) {
    (void)state;
    if (node->n_explicit_inputs < 1 || !in[0]) {
        char desc[256];
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input 0 is missing",
                       em_node_desc(node, desc, sizeof desc));
    }
    if (!em_dtype_is_float(in[0]->dtype)) return em_unsupported_type(node, 0, in[0]->dtype, err);
    sm_shape g;
    EM_TRY(sm_geometry(node, in[0], &g, err));
    em_tensor_set_shape(&out[0], in[0]->dtype, in[0]->dims, in[0]->rank);
    return EMBER_OK;
}

/* ---- float32 rows (inner == 1) ---- */

#define LANES 16

/* Reductions in LANES independent accumulators: the compiler vectorizes them without
 * reassociating a single float sum. */
VM_INLINE float max_f32(const float *x, int64_t n) {
    float m = x[0];
    int64_t i = 0;
    if (n >= LANES) {
        float acc[LANES];
        for (int k = 0; k < LANES; k++) acc[k] = x[k];
        for (i = LANES; i + LANES <= n; i += LANES)
            for (int k = 0; k < LANES; k++) acc[k] = x[i + k] > acc[k] ? x[i + k] : acc[k];
        m = acc[0];
        for (int k = 1; k < LANES; k++) m = acc[k] > m ? acc[k] : m;
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

VM_INLINE float sum_f32(const float *x, int64_t n) {
    float acc[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) acc[k] += x[i + k];
    float s = 0.0f;
    for (; i < n; i++) s += x[i];
    for (int k = 0; k < LANES; k++) s += acc[k];
    return s;
}

/* y = exp(x - m); x may be y. */
VM_INLINE void exp_shift_f32(const float *x, float *y, int64_t n, float m) {
    for (int64_t i = 0; i < n; i++) y[i] = vm_expf(x[i] - m);
}

VM_CLONES static void softmax_row_f32(const float *x, float *y, int64_t n) {
    float m = max_f32(x, n);
    exp_shift_f32(x, y, n, m);
    float inv = 1.0f / sum_f32(y, n);
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

VM_CLONES static void logsoftmax_row_f32(const float *x, float *y, int64_t n) {
    float m = max_f32(x, n);
    /* The sum goes through a small buffer: y may be x, which is still needed. */
    float buf[256], s = 0.0f;
    for (int64_t i = 0; i < n; i += 256) {
        int64_t len = n - i < 256 ? n - i : 256;
        exp_shift_f32(x + i, buf, len, m);
        s += sum_f32(buf, len);
    }
    /* (x - m) is exact near the maximum; folding m into log(s) first would round it away. */
    float ls = logf(s);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
}

static bool has_nan_f32(const float *x, int64_t n) {
    int any = 0;
    for (int64_t i = 0; i < n; i++) any |= x[i] != x[i];
    return any != 0;
}

static void hardmax_row_f32(const float *x, float *y, int64_t n) {
    int64_t best = 0;
    if (has_nan_f32(x, n)) {
        while (x[best] == x[best]) best++;
    } else {
        float m = max_f32(x, n);
        while (x[best] != m) best++;
    }
    for (int64_t i = 0; i < n; i++) y[i] = 0.0f;
    y[best] = 1.0f;
}

/* ---- float32 columns (inner > 1): tiles of TILE columns, contiguous along the tile ---- */

#define TILE 256

VM_CLONES static void softmax_cols_f32(const float *x, float *y, int64_t n, int64_t inner,
                                       int64_t len, int kind) {
    float mx[TILE], acc[TILE];
    for (int64_t j = 0; j < len; j++) mx[j] = x[j];
    for (int64_t k = 1; k < n; k++) {
        const float *r = x + k * inner;
        for (int64_t j = 0; j < len; j++) mx[j] = ((r[j] > mx[j]) | (r[j] != r[j])) ? r[j] : mx[j];
    }
    if (kind == SM_HARDMAX) {
        /* mx holds the maximum (or the first NaN): mark its first occurrence. */
        uint8_t done[TILE] = {0};
        for (int64_t k = 0; k < n; k++) {
            const float *r = x + k * inner;
            float *o = y + k * inner;
            for (int64_t j = 0; j < len; j++) {
                bool hit = !done[j] && (r[j] == mx[j] || (r[j] != r[j] && mx[j] != mx[j]));
                done[j] |= hit;
                o[j] = hit ? 1.0f : 0.0f;
            }
        }
        return;
    }
    for (int64_t j = 0; j < len; j++) acc[j] = 0.0f;
    for (int64_t k = 0; k < n; k++) {
        const float *r = x + k * inner;
        float *o = y + k * inner;
        if (kind == SM_SOFTMAX) {
            for (int64_t j = 0; j < len; j++) {
                float e = vm_expf(r[j] - mx[j]);
                o[j] = e;
                acc[j] += e;
            }
        } else {
            for (int64_t j = 0; j < len; j++) acc[j] += vm_expf(r[j] - mx[j]);
        }
    }
    if (kind == SM_SOFTMAX) {
        for (int64_t j = 0; j < len; j++) acc[j] = 1.0f / acc[j];
        for (int64_t k = 0; k < n; k++) {
            float *o = y + k * inner;
            for (int64_t j = 0; j < len; j++) o[j] *= acc[j];
        }
    } else {
        for (int64_t j = 0; j < len; j++) acc[j] = logf(acc[j]);
        for (int64_t k = 0; k < n; k++) {
            const float *r = x + k * inner;
            float *o = y + k * inner;
            for (int64_t j = 0; j < len; j++) o[j] = (r[j] - mx[j]) - acc[j];
        }
    }
}

/* ---- float64: plain loops (not a hot type) ---- */

static void softmax_strided_f64(const double *x, double *y, int64_t n, int64_t inner, int kind) {
    double m = x[0];
    int64_t best = 0;
    for (int64_t k = 1; k < n; k++) {
        double v = x[k * inner];
        if (m != m) break;
        if (v > m || v != v) m = v, best = k;
    }
    if (kind == SM_HARDMAX) {
        for (int64_t k = 0; k < n; k++) y[k * inner] = k == best ? 1.0 : 0.0;
        return;
    }
    double s = 0.0;
    for (int64_t k = 0; k < n; k++) s += exp(x[k * inner] - m);
    if (kind == SM_SOFTMAX) {
        for (int64_t k = 0; k < n; k++) y[k * inner] = exp(x[k * inner] - m) / s;
    } else {
        double ls = log(s);
        for (int64_t k = 0; k < n; k++) y[k * inner] = (x[k * inner] - m) - ls;
    }
}

/* ---- parallel driver ---- */

typedef struct sm_job {
    sm_shape g;
    int kind;
    ember_dtype dtype;
    const void *x;
    void *y;
    int64_t tiles; /* column tiles per outer index (inner > 1) */
} sm_job;

static void sm_range(void *ctx, int64_t begin, int64_t end) {
    const sm_job *j = ctx;
    int64_t n = j->g.n, inner = j->g.inner;
    if (j->dtype == EMBER_DOUBLE) {
        /* Tasks are (outer, column) pairs. */
        for (int64_t t = begin; t < end; t++) {
            int64_t o = t / inner, c = t % inner;
            size_t off = (size_t)(o * n * inner + c);
            softmax_strided_f64((const double *)j->x + off, (double *)j->y + off, n, inner,
                                j->kind);
        }
        return;
    }
    const float *x = j->x;
    float *y = j->y;
    if (inner == 1) {
        for (int64_t r = begin; r < end; r++) {
            const float *xr = x + r * n;
            float *yr = y + r * n;
            if (j->kind == SM_SOFTMAX)
                softmax_row_f32(xr, yr, n);
            else if (j->kind == SM_LOGSOFTMAX)
                logsoftmax_row_f32(xr, yr, n);
            else
                hardmax_row_f32(xr, yr, n);
        }
        return;
    }
    for (int64_t t = begin; t < end; t++) {
        int64_t o = t / j->tiles, c0 = (t % j->tiles) * TILE;
        int64_t len = inner - c0 < TILE ? inner - c0 : TILE;
        size_t off = (size_t)(o * n * inner + c0);
        softmax_cols_f32(x + off, y + off, n, inner, len, j->kind);
    }
}

static ember_status sm_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                           em_exec *ex, ember_error *err) {
    (void)state;
    sm_job job = {.kind = sm_kind(node)};
    EM_TRY(sm_geometry(node, in[0], &job.g, err));
    if (em_numel(in[0]) == 0) return EMBER_OK;
    em_tensor x, y = {0};
    EM_TRY(vm_widen(in[0], &x, err));
    ember_status s = vm_out_begin(&out[0], &y, err);
    if (s == EMBER_OK) {
        job.dtype = x.dtype;
        job.x = x.data;
        job.y = y.data;
        int64_t tasks, per_task;
        if (x.dtype == EMBER_DOUBLE) {
            tasks = job.g.outer * job.g.inner;
            per_task = job.g.n;
        } else if (job.g.inner == 1) {
            tasks = job.g.outer;
            per_task = job.g.n;
        } else {
            job.tiles = (job.g.inner + TILE - 1) / TILE;
            tasks = job.g.outer * job.tiles;
            per_task = job.g.n * (job.g.inner < TILE ? job.g.inner : TILE);
        }
        int64_t grain = 16384 / (per_task > 0 ? per_task : 1);
        em_parallel_for(ex, tasks, grain > 0 ? grain : 1, sm_range, &job);
        vm_out_finish(&out[0], &y);
    }
    vm_unwiden(&y);
    vm_unwiden(&x);
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * ai.ember FusedAttention (made by the optimizer from PyTorch's exported self-attention).
 * Input 0 is the packed projection qkv [S, B, E] (sequence first); Q, K and V are the columns
 * [q_offset, +width), [k_offset, +width), [v_offset, +width) of it, each split into heads of
 * hd columns by Reshape targets given as inputs 1..3 (which must read [S, B * H, hd] with
 * H * hd = width). Output [S, B * H, hd]: for every (b, h), softmax(scale * Q K^T) V, written
 * where Transpose(., [1, 0, 2]) of the per-head results would put it.
 * ------------------------------------------------------------------------------------------- */

/* The head size a Reshape target (opset 5+ semantics, allowzero 0) gives a [S, B, D] slice,
 * or -1 if the target does not read [S, B * H, hd] with H * hd = D. */
static int64_t attn_head_dim(const em_tensor *shape, int64_t s, int64_t b, int64_t d) {
    if (!shape->data || (shape->dtype != EMBER_INT64 && shape->dtype != EMBER_INT32) ||
        em_numel(shape) != 3)
        return -1;
    int64_t in[3] = {s, b, d}, out[3], known = 1;
    int infer = -1;
    for (int i = 0; i < 3; i++) {
        out[i] = em_get_i64(shape, i);
        if (out[i] == 0) out[i] = in[i];
        if (out[i] == -1) {
            if (infer >= 0) return -1;
            infer = i;
        } else if (out[i] < 0) {
            return -1;
        } else {
            known *= out[i] > 0 ? out[i] : 1;
        }
    }
    if (infer >= 0) {
        if (known == 0 || (s * b * d) % known != 0) return -1;
        out[infer] = s * b * d / known;
    }
    int64_t hd = out[2];
    if (out[0] != s || hd <= 0 || d % hd != 0 || out[1] != b * (d / hd)) return -1;
    return hd;
}

static ember_status attn_geometry(const em_node *node, em_tensor *const *in, int64_t *hd,
                                  ember_error *err) {
    char buf[160];
    const em_tensor *x = in[0];
    int64_t width = em_attr_int(node, "width", 0);
    const int64_t off[3] = {em_attr_int(node, "q_offset", -1), em_attr_int(node, "k_offset", -1),
                            em_attr_int(node, "v_offset", -1)};
    if (x->dtype != EMBER_FLOAT) return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank != 3)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: qkv must have rank 3 (got %d)",
                       em_node_desc(node, buf, sizeof buf), x->rank);
    for (int i = 0; i < 3; i++)
        if (width <= 0 || off[i] < 0 || (x->dims[2] >= 0 && off[i] + width > x->dims[2]))
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: column range outside qkv",
                           em_node_desc(node, buf, sizeof buf));
    *hd = -1;
    for (int i = 1; i <= 3; i++) {
        if (!in[i]->data) return EMBER_OK; /* at load: decided when the shapes are known */
        int64_t h = attn_head_dim(in[i], x->dims[0], x->dims[1], width);
        if (h < 0 || (*hd >= 0 && h != *hd))
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: Reshape target %d does not split the %lld columns into heads",
                           em_node_desc(node, buf, sizeof buf), i, (long long)width);
        *hd = h;
    }
    return EMBER_OK;
}

static ember_status attn_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    if (in[0]->rank < 0) {
        em_tensor_set_shape(&out[0], EMBER_FLOAT, NULL, -1);
        return EMBER_OK;
    }
    int64_t hd;
    EM_TRY(attn_geometry(node, in, &hd, err));
    if (hd < 0 || in[0]->dims[0] < 0 || in[0]->dims[1] < 0) {
        em_tensor_set_shape(&out[0], EMBER_FLOAT, NULL, -1);
        return EMBER_OK;
    }
    int64_t width = em_attr_int(node, "width", 0);
    int64_t dims[3] = {in[0]->dims[0], in[0]->dims[1] * (width / hd), hd};
    em_tensor_set_shape(&out[0], EMBER_FLOAT, dims, 3);
    return EMBER_OK;
}

/* Softmax of `rows` rows of n floats in place. The attention scores are rounded differently
 * from the unfused graph anyway (the scale is inside the GEMM), so on AVX-512 CPUs a faster exp
 * with fused multiply-adds is used: within a few ulp, results below e^-87.3 (far below the
 * row's maximum, which gives 1) flush to 0. Rows with a NaN or an infinite maximum take the
 * exact path, which gives what the Softmax kernel gives. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define ATTN_AVX512 1
__attribute__((target("avx512f"))) static void attn_softmax_avx512(float *p, int64_t rows,
                                                                    int64_t n) {
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f), shifter = _mm512_set1_ps(12582912.0f);
    const __m512 ln2_hi = _mm512_set1_ps(0.693359375f), ln2_lo = _mm512_set1_ps(-2.12194440e-4f);
    const __m512 lo = _mm512_set1_ps(-87.0f), cut = _mm512_set1_ps(-87.3f), one = _mm512_set1_ps(1.0f);
    for (int64_t r = 0; r < rows; r++) {
        float *x = p + r * n;
        __m512 vmax = _mm512_set1_ps(-INFINITY);
        __mmask16 nan = 0;
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512 v = _mm512_mask_loadu_ps(vmax, k, x + i);
            nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
            vmax = _mm512_max_ps(vmax, v);
        }
        float m = _mm512_reduce_max_ps(vmax);
        if (nan || !isfinite(m)) {
            softmax_row_f32(x, x, n);
            continue;
        }
        const __m512 vm = _mm512_set1_ps(m);
        __m512 sum = _mm512_setzero_ps();
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm);
            __mmask16 keep = _mm512_cmp_ps_mask(d, cut, _CMP_GE_OQ);
            d = _mm512_max_ps(d, lo);
            __m512 t = _mm512_fmadd_ps(d, log2e, shifter);
            __m512 nf = _mm512_sub_ps(t, shifter);
            __m512i e = _mm512_slli_epi32(
                _mm512_add_epi32(_mm512_sub_epi32(_mm512_castps_si512(t),
                                                  _mm512_set1_epi32(0x4B400000)),
                                 _mm512_set1_epi32(127)),
                23);
            __m512 f = _mm512_fnmadd_ps(nf, ln2_hi, d);
            f = _mm512_fnmadd_ps(nf, ln2_lo, f);
            __m512 q = _mm512_set1_ps(1.9875691500e-4f);
            q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(1.3981999507e-3f));
            q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(8.3334519073e-3f));
            q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(4.1665795894e-2f));
            q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(1.6666665459e-1f));
            q = _mm512_fmadd_ps(q, f, _mm512_set1_ps(5.0000001201e-1f));
            __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(q, f), f, _mm512_add_ps(f, one));
            y = _mm512_maskz_mul_ps((__mmask16)(keep & k), y, _mm512_castsi512_ps(e));
            sum = _mm512_add_ps(sum, y);
            _mm512_mask_storeu_ps(x + i, k, y);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
        for (int64_t i = 0; i < n; i += 16) {
            __mmask16 k = n - i >= 16 ? 0xFFFF : (__mmask16)((1u << (n - i)) - 1);
            _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), inv));
        }
    }
}
#endif

static void attn_softmax(float *p, int64_t rows, int64_t n, bool avx512) {
#ifdef ATTN_AVX512
    if (avx512) {
        attn_softmax_avx512(p, rows, n);
        return;
    }
#endif
    (void)avx512;
    for (int64_t r = 0; r < rows; r++) softmax_row_f32(p + r * n, p + r * n, n);
}

typedef struct attn_job {
    bool avx512;
    const float *qkv;
    float *y, *scratch; /* scratch: s * s floats per slot */
    int64_t s, b, e, heads, hd;
    int64_t off[3];
    float scale;
} attn_job;

static void attn_range(void *ctx, int slot, int64_t begin, int64_t end) {
    const attn_job *j = ctx;
    const int64_t s = j->s, ld = j->b * j->e, ldy = j->b * j->heads * j->hd;
    float *p = j->scratch + (size_t)slot * (size_t)(s * s);
    for (int64_t t = begin; t < end; t++) {
        int64_t b = t / j->heads, h = t % j->heads;
        const float *row = j->qkv + b * j->e + h * j->hd;
        em_sgemm_serial(false, true, s, s, j->hd, j->scale, row + j->off[0], ld, row + j->off[1],
                        ld, 0.0f, p, s);
        attn_softmax(p, s, s, j->avx512);
        em_sgemm_serial(false, false, s, j->hd, s, 1.0f, p, s, row + j->off[2], ld, 0.0f,
                        j->y + t * j->hd, ldy);
    }
}

static ember_status attn_run(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    int64_t hd;
    EM_TRY(attn_geometry(node, in, &hd, err));
    const em_tensor *x = in[0];
    attn_job j = {.qkv = x->data, .y = out[0].data, .s = x->dims[0], .b = x->dims[1],
                  .e = x->dims[2], .hd = hd, .scale = em_attr_float(node, "scale", 1.0f),
                  .off = {em_attr_int(node, "q_offset", 0), em_attr_int(node, "k_offset", 0),
                          em_attr_int(node, "v_offset", 0)}};
    j.heads = em_attr_int(node, "width", 0) / hd;
#ifdef ATTN_AVX512
    j.avx512 = __builtin_cpu_supports("avx512f");
#endif
    int64_t items = j.b * j.heads;
    if (items == 0 || j.s == 0) return EMBER_OK;
    int slots = em_slot_count(ex, items);
    j.scratch = em_exec_scratch(ex, sizeof(float) * (size_t)slots * (size_t)(j.s * j.s), err);
    if (!j.scratch) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_parallel_slots(ex, items, attn_range, &j);
    return EMBER_OK;
}

static const em_op k_ops[] = {
    {"ai.ember", "FusedAttention", 1, 0, NULL, attn_infer, attn_run, NULL, 0},
    {"", "Softmax", 1, 13, NULL, sm_infer, sm_run, NULL, EM_OP_INPLACE_OK},
    {"", "LogSoftmax", 1, 13, NULL, sm_infer, sm_run, NULL, EM_OP_INPLACE_OK},
    {"", "Hardmax", 1, 13, NULL, sm_infer, sm_run, NULL, EM_OP_INPLACE_OK},
};

EM_OPS_FAMILY(softmax) {
    *count = sizeof k_ops / sizeof k_ops[0];
    return k_ops;
}
