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
 * Input 0 is the packed projection qkv [S, B, E]; Q, K and V are its columns [q_offset, +width),
 * [k_offset, +width), [v_offset, +width), each reshaped by the targets in inputs 1..3 (Reshape
 * semantics: 0 copies, -1 infers) into [a, n, c] and transposed: Q' = [n, a, c],
 * K^T = [n, c, a'], V' = [n, a', c']. Output: Transpose(softmax(scale * Q' K^T) V', [1, 0, 2]),
 * [a, n, c']. When the targets split heads ([S, B * H, hd]), the GEMMs read qkv in place;
 * otherwise the three slices are first copied out contiguously.
 * ------------------------------------------------------------------------------------------- */

typedef struct attn_geom {
    int64_t t[3][3]; /* resolved Reshape targets of Q, K, V */
    bool in_place;   /* all three split heads: read qkv directly */
} attn_geom;

/* Resolve a Reshape target for a [s, b, w] slice; false if it is not a valid target. */
static bool attn_target(const em_tensor *shape, int64_t s, int64_t b, int64_t w, int64_t *out) {
    if (!shape->data || (shape->dtype != EMBER_INT64 && shape->dtype != EMBER_INT32) ||
        em_numel(shape) != 3)
        return false;
    int64_t in[3] = {s, b, w}, known = 1, total = s * b * w;
    int infer = -1;
    for (int i = 0; i < 3; i++) {
        out[i] = em_get_i64(shape, i);
        if (out[i] == 0) out[i] = in[i];
        if (out[i] == -1) {
            if (infer >= 0) return false;
            infer = i;
        } else if (out[i] < 0) {
            return false;
        } else {
            if (out[i] > 0 && known > INT64_MAX / out[i]) return false;
            known *= out[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || total % known != 0) return false;
        out[infer] = total / known;
    }
    return out[0] * out[1] * out[2] == total;
}

/* Fills *geo when the targets are known (*known = false at load, when they are not). */
static ember_status attn_geometry(const em_node *node, em_tensor *const *in, attn_geom *geo,
                                  bool *known, ember_error *err) {
    char buf[160];
    const em_tensor *x = in[0];
    int64_t width = em_attr_int(node, "width", 0);
    const int64_t off[3] = {em_attr_int(node, "q_offset", -1), em_attr_int(node, "k_offset", -1),
                            em_attr_int(node, "v_offset", -1)};
    *known = false;
    if (x->dtype != EMBER_FLOAT) return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank != 3)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: qkv must have rank 3 (got %d)",
                       em_node_desc(node, buf, sizeof buf), x->rank);
    for (int i = 0; i < 3; i++)
        if (width <= 0 || off[i] < 0 || (x->dims[2] >= 0 && off[i] + width > x->dims[2]))
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: column range outside qkv",
                           em_node_desc(node, buf, sizeof buf));
    for (int i = 1; i <= 3; i++)
        if (!in[i]->data || x->dims[0] < 0 || x->dims[1] < 0) return EMBER_OK; /* at load */
    int64_t s = x->dims[0], b = x->dims[1];
    for (int i = 0; i < 3; i++)
        if (!attn_target(in[i + 1], s, b, width, geo->t[i]))
            return em_fail(err, EMBER_ERR_SHAPE, "%s: Reshape target %d does not fit [%lld, %lld, "
                           "%lld]", em_node_desc(node, buf, sizeof buf), i + 1, (long long)s,
                           (long long)b, (long long)width);
    const int64_t *q = geo->t[0], *k = geo->t[1], *v = geo->t[2];
    /* What the MatMuls of the unfused graph require (no broadcasting of the batch dim). */
    if (q[1] != k[1] || q[1] != v[1] || q[2] != k[2] || k[0] != v[0])
        return em_fail(err, EMBER_ERR_SHAPE,
                       "%s: Q [%lld, %lld, %lld], K [%lld, %lld, %lld] and V [%lld, %lld, %lld] "
                       "do not multiply", em_node_desc(node, buf, sizeof buf), (long long)q[0],
                       (long long)q[1], (long long)q[2], (long long)k[0], (long long)k[1],
                       (long long)k[2], (long long)v[0], (long long)v[1], (long long)v[2]);
    geo->in_place = true;
    for (int i = 0; i < 3; i++) {
        const int64_t *t = geo->t[i];
        if (t[0] != s || t[2] <= 0 || width % t[2] != 0 || t[1] != b * (width / t[2]))
            geo->in_place = false;
    }
    *known = true;
    return EMBER_OK;
}

static ember_status attn_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    if (in[0]->rank < 0) {
        em_tensor_set_shape(&out[0], EMBER_FLOAT, NULL, -1);
        return EMBER_OK;
    }
    attn_geom geo;
    bool known;
    EM_TRY(attn_geometry(node, in, &geo, &known, err));
    if (!known) {
        em_tensor_set_shape(&out[0], EMBER_FLOAT, NULL, -1);
        return EMBER_OK;
    }
    int64_t dims[3] = {geo.t[0][0], geo.t[0][1], geo.t[2][2]};
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

/* Batch t of Q' starts at q + (t / per) * rstride + (t % per) * cq (K likewise, V with cv):
 * heads cut from rows of qkv (per = heads, rstride = E), or contiguous copies (per = n). */
typedef struct attn_job {
    bool avx512;
    const float *q, *k, *v;
    int64_t ld; /* between rows a of one batch, all three */
    int64_t per, rstride;
    float *y, *scratch; /* y: [a, n, cv]; scratch: a * a2 floats per slot */
    int64_t a, a2, cq, cv, n;
    float scale;
} attn_job;

static void attn_range(void *ctx, int slot, int64_t begin, int64_t end) {
    const attn_job *j = ctx;
    const int64_t a = j->a, a2 = j->a2, ldy = j->n * j->cv;
    float *p = j->scratch + (size_t)slot * (size_t)(a * a2);
    for (int64_t t = begin; t < end; t++) {
        int64_t row = (t / j->per) * j->rstride, h = t % j->per;
        em_sgemm_serial(false, true, a, a2, j->cq, j->scale, j->q + row + h * j->cq, j->ld,
                        j->k + row + h * j->cq, j->ld, 0.0f, p, a2);
        attn_softmax(p, a, a2, j->avx512);
        em_sgemm_serial(false, false, a, j->cv, a2, 1.0f, p, a2, j->v + row + h * j->cv, j->ld,
                        0.0f, j->y + t * j->cv, ldy);
    }
}

static ember_status attn_run(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    attn_geom geo;
    bool known;
    char buf[160];
    EM_TRY(attn_geometry(node, in, &geo, &known, err));
    if (!known)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: sizes unknown at run time",
                       em_node_desc(node, buf, sizeof buf));
    const em_tensor *x = in[0];
    const float *qkv = x->data;
    const int64_t s = x->dims[0], b = x->dims[1], e = x->dims[2];
    const int64_t width = em_attr_int(node, "width", 0);
    const int64_t off[3] = {em_attr_int(node, "q_offset", 0), em_attr_int(node, "k_offset", 0),
                            em_attr_int(node, "v_offset", 0)};
    attn_job j = {.y = out[0].data, .a = geo.t[0][0], .a2 = geo.t[1][0], .cq = geo.t[0][2],
                  .cv = geo.t[2][2], .n = geo.t[0][1],
                  .scale = em_attr_float(node, "scale", 1.0f)};
#ifdef ATTN_AVX512
    j.avx512 = __builtin_cpu_supports("avx512f");
#endif
    if (em_numel(&out[0]) == 0) return EMBER_OK;
    const int slots = em_slot_count(ex, j.n);
    const size_t per_slot = (size_t)(j.a * j.a2), slice = (size_t)(s * b * width);
    size_t floats = (size_t)slots * per_slot + (geo.in_place ? 0 : 3 * slice);
    float *mem = em_exec_scratch(ex, sizeof(float) * (floats ? floats : 1), err);
    if (!mem) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    j.scratch = mem;
    if (geo.in_place) {
        /* Head h of batch row r: columns off + h * hd of the rows (., r) of qkv. */
        j.q = qkv + off[0];
        j.k = qkv + off[1];
        j.v = qkv + off[2];
        j.ld = b * e;
        j.per = width / j.cq;
        j.rstride = e;
    } else {
        /* Each slice copied out is the [s, b, width] tensor its Reshape views as [a, n, c]. */
        float *copy = mem + (size_t)slots * per_slot;
        for (int i = 0; i < 3; i++)
            for (int64_t r = 0; r < s * b; r++)
                memcpy(copy + i * slice + (size_t)(r * width), qkv + r * e + off[i],
                       sizeof(float) * (size_t)width);
        j.q = copy;
        j.k = copy + slice;
        j.v = copy + 2 * slice;
        j.ld = j.n * j.cq; /* n * c is the same for all three: a * n * c = s * b * width */
        if (j.n * j.cv != j.ld || j.n * geo.t[1][2] != j.ld)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: Q, K and V rows differ in length",
                           em_node_desc(node, buf, sizeof buf));
        j.per = j.n;
        j.rstride = 0;
    }
    em_parallel_slots(ex, j.n, attn_range, &j);
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
