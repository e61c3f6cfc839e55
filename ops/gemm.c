/* Matrix products: Gemm, MatMul, Einsum, MatMulInteger, QLinearMatMul, and the fused forms
 * FusedGemm / FusedMatMul of domain "ai.ember" (contract documented at the top of conv.c).
 *
 * float32 runs on sgemm, float64 on dgemm (see linalg.c for the thread split); float16 and
 * bfloat16 are widened to float32; integer types use plain wrap-around loops. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "linalg.h"

/* em_exec_scratch failed and filled err (if given). */
#define SCRATCH_FAILED (err ? err->code : EMBER_ERR_OUT_OF_MEMORY)

static const char *desc_of(const em_node *node, char *buf, size_t size) {
    return em_node_desc(node, buf, size);
}

static const em_tensor *opt_input(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_inputs ? in[i] : NULL;
}

static bool is_gemm_type(ember_dtype dt) {
    switch (dt) {
    case EMBER_FLOAT:
    case EMBER_DOUBLE:
    case EMBER_FLOAT16:
    case EMBER_BFLOAT16:
    case EMBER_INT32:
    case EMBER_INT64:
    case EMBER_UINT32:
    case EMBER_UINT64:
        return true;
    default:
        return false;
    }
}

static bool is_half(ember_dtype dt) {
    return dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16;
}

/* Widen a float16 / bfloat16 tensor into scratch float32. */
static float *widen(em_exec *ex, const em_tensor *t, ember_error *err) {
    int64_t n = em_numel(t);
    float *f = em_exec_scratch(ex, (size_t)(n > 0 ? n : 1) * sizeof(float), err);
    if (f) em_convert(f, EMBER_FLOAT, t->data, t->dtype, n);
    return f;
}

/* Integer C = A * B with element strides (row-major when a_cs == 1 etc.), wrapping like
 * unsigned arithmetic; accumulates into uint64 and returns through `store`. */
#define INT_MATMUL(T)                                                                              \
    static void matmul_##T(const T *a, int64_t a_rs, int64_t a_cs, const T *b, int64_t b_rs,       \
                           int64_t b_cs, uint64_t *acc, int64_t m, int64_t n, int64_t k) {         \
        for (int64_t i = 0; i < m; i++) {                                                          \
            uint64_t *restrict row = acc + i * n;                                                  \
            for (int64_t j = 0; j < n; j++) row[j] = 0;                                            \
            for (int64_t p = 0; p < k; p++) {                                                      \
                const uint64_t av = (uint64_t)(int64_t)a[i * a_rs + p * a_cs];                     \
                const T *restrict brow = b + p * b_rs;                                             \
                if (b_cs == 1)                                                                     \
                    for (int64_t j = 0; j < n; j++) row[j] += av * (uint64_t)(int64_t)brow[j];     \
                else                                                                               \
                    for (int64_t j = 0; j < n; j++)                                                \
                        row[j] += av * (uint64_t)(int64_t)brow[j * b_cs];                          \
            }                                                                                      \
        }                                                                                          \
    }
INT_MATMUL(int32_t)
INT_MATMUL(int64_t)
INT_MATMUL(uint32_t)
INT_MATMUL(uint64_t)

/* acc (m x n, uint64 bit patterns of the wrapped products) for any integer gemm type. */
static void int_matmul(ember_dtype dt, const void *a, int64_t a_rs, int64_t a_cs, const void *b,
                       int64_t b_rs, int64_t b_cs, uint64_t *acc, int64_t m, int64_t n, int64_t k) {
    switch (dt) {
    case EMBER_INT32:
        matmul_int32_t(a, a_rs, a_cs, b, b_rs, b_cs, acc, m, n, k);
        break;
    case EMBER_INT64:
        matmul_int64_t(a, a_rs, a_cs, b, b_rs, b_cs, acc, m, n, k);
        break;
    case EMBER_UINT32:
        matmul_uint32_t(a, a_rs, a_cs, b, b_rs, b_cs, acc, m, n, k);
        break;
    default:
        matmul_uint64_t(a, a_rs, a_cs, b, b_rs, b_cs, acc, m, n, k);
        break;
    }
}

/* Store acc into an integer tensor slice of n elements (wraps like a C cast). */
static void int_store(ember_dtype dt, void *dst, const uint64_t *acc, int64_t n) {
    switch (dt) {
    case EMBER_INT32:
    case EMBER_UINT32:
        for (int64_t i = 0; i < n; i++) ((uint32_t *)dst)[i] = (uint32_t)acc[i];
        break;
    default:
        memcpy(dst, acc, (size_t)n * sizeof(uint64_t));
        break;
    }
}

static double int_value(ember_dtype dt, uint64_t bits) {
    switch (dt) {
    case EMBER_INT32:
        return (double)(int32_t)(uint32_t)bits;
    case EMBER_UINT32:
        return (double)(uint32_t)bits;
    case EMBER_INT64:
        return (double)(int64_t)bits;
    default:
        return (double)bits;
    }
}

/* ============================================================================================
 * Gemm / FusedGemm
 * ========================================================================================== */

typedef struct gemm_state {
    bool trans_a, trans_b;
    float alpha, beta;
    em_activation act;
    /* Constant float32 B stored K x N row-major once at create (sgemm with a non-transposed
     * B is faster for small M); NULL when B is not constant or already K x N. */
    float *packed_b;
    int64_t packed_k, packed_n;
} gemm_state;

static ember_status gemm_create(const em_graph *g, em_node *node, void **state, ember_error *err) {
    gemm_state *st = calloc(1, sizeof *st);
    if (!st) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "Gemm state: out of memory");
    st->trans_a = em_attr_int(node, "transA", 0) != 0;
    st->trans_b = em_attr_int(node, "transB", 0) != 0;
    st->alpha = em_attr_float(node, "alpha", 1.0f);
    st->beta = em_attr_float(node, "beta", 1.0f);
    ember_status s = em_activation_from_node(node, &st->act, err);
    if (s != EMBER_OK) {
        free(st);
        return s;
    }
    const em_tensor *b = g ? em_node_const_input(g, node, 1) : NULL;
    if (b && st->trans_b && b->dtype == EMBER_FLOAT && b->rank == 2 && b->data) {
        int64_t n = b->dims[0], k = b->dims[1];
        float *p = em_aligned_alloc((size_t)(n * k > 0 ? n * k : 1) * sizeof(float));
        if (!p) {
            free(st);
            return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "Gemm: no memory to pack B");
        }
        const float *src = b->data;
        /* Blocked transpose (N x K -> K x N) so both sides stay in cache. */
        for (int64_t j0 = 0; j0 < n; j0 += 32)
            for (int64_t p0 = 0; p0 < k; p0 += 32)
                for (int64_t j = j0; j < n && j < j0 + 32; j++)
                    for (int64_t q = p0; q < k && q < p0 + 32; q++) p[q * n + j] = src[j * k + q];
        st->packed_b = p;
        st->packed_k = k;
        st->packed_n = n;
    }
    *state = st;
    return EMBER_OK;
}

static void gemm_destroy(void *state) {
    gemm_state *st = state;
    if (!st) return;
    em_aligned_free(st->packed_b);
    free(st);
}

static ember_status gemm_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state; /* NULL during static inference: read attributes from the node */
    const bool trans_a = em_attr_int(node, "transA", 0) != 0;
    const bool trans_b = em_attr_int(node, "transB", 0) != 0;
    char d[256];
    const em_tensor *a = in[0], *b = in[1], *c = opt_input(node, in, 2);
    if (!is_gemm_type(a->dtype)) return em_unsupported_type(node, 0, a->dtype, err);
    if (b->dtype != a->dtype || (c && c->dtype != a->dtype))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: A, B and C must have the same type",
                       desc_of(node, d, sizeof d));
    if (a->rank < 0 || b->rank < 0) {
        out[0].dtype = a->dtype;
        out[0].rank = -1;
        return EMBER_OK;
    }
    if (a->rank != 2 || b->rank != 2)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: A and B must be 2-D (got ranks %d and %d)",
                       desc_of(node, d, sizeof d), a->rank, b->rank);
    int64_t m = trans_a ? a->dims[1] : a->dims[0];
    int64_t ka = trans_a ? a->dims[0] : a->dims[1];
    int64_t kb = trans_b ? b->dims[1] : b->dims[0];
    int64_t n = trans_b ? b->dims[0] : b->dims[1];
    if (ka >= 0 && kb >= 0 && ka != kb)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: inner dimensions differ (%lld vs %lld)",
                       desc_of(node, d, sizeof d), (long long)ka, (long long)kb);
    if (c && c->rank >= 0) {
        /* C broadcasts one way to (M, N). */
        bool ok = c->rank <= 2;
        int64_t want[2] = {m, n};
        for (int i = 0; ok && i < c->rank; i++) {
            int64_t cd = c->dims[i], w = want[2 - c->rank + i];
            if (cd != 1 && cd >= 0 && w >= 0 && cd != w) ok = false;
        }
        if (!ok) {
            char sh[128];
            return em_fail(err, EMBER_ERR_SHAPE, "%s: C %s does not broadcast to (%lld, %lld)",
                           desc_of(node, d, sizeof d), em_shape_str(c, sh, sizeof sh), (long long)m,
                           (long long)n);
        }
    }
    int64_t dims[2] = {m, n};
    em_tensor_set_shape(&out[0], a->dtype, dims, 2);
    return EMBER_OK;
}

/* Element strides of C broadcast to (M, N). */
static void c_strides(const em_tensor *c, int64_t m, int64_t n, int64_t *rs, int64_t *cs) {
    *rs = 0;
    *cs = 0;
    if (c->rank == 2) {
        *rs = c->dims[0] == 1 && m != 1 ? 0 : c->dims[1];
        *cs = c->dims[1] == 1 && n != 1 ? 0 : 1;
    } else if (c->rank == 1) {
        *cs = c->dims[0] == 1 && n != 1 ? 0 : 1;
    }
}

static ember_status gemm_run_float(const gemm_state *st, const float *a, const float *b,
                                   bool trans_b, const float *c, const em_tensor *c_shape, float *y,
                                   int64_t m, int64_t n, int64_t k, em_exec *ex) {
    float beta = 0.0f;
    if (c && st->beta != 0.0f) {
        int64_t rs, cs;
        c_strides(c_shape, m, n, &rs, &cs);
        const float bt = st->beta;
        for (int64_t i = 0; i < m; i++) {
            float *restrict yr = y + i * n;
            const float *restrict cr = c + i * rs;
            if (cs == 1)
                for (int64_t j = 0; j < n; j++) yr[j] = bt * cr[j];
            else
                for (int64_t j = 0; j < n; j++) yr[j] = bt * cr[0];
        }
        beta = 1.0f;
    }
    int64_t lda = st->trans_a ? m : k;
    int64_t ldb = trans_b ? k : n;
    em_sgemm(ex, st->trans_a, trans_b, m, n, k, st->alpha, a, lda, b, ldb, beta, y, n);
    if (st->act.kind != EM_ACT_NONE) em_activation_apply(&st->act, y, m * n);
    return EMBER_OK;
}

static ember_status gemm_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, ember_error *err) {
    const gemm_state *st = state;
    const em_tensor *a = in[0], *b = in[1], *c = opt_input(node, in, 2);
    em_tensor *y = &out[0];
    int64_t m = y->dims[0], n = y->dims[1];
    int64_t k = st->trans_a ? a->dims[0] : a->dims[1];
    if (m == 0 || n == 0) return EMBER_OK;
    ember_dtype dt = a->dtype;
    if (dt == EMBER_FLOAT) {
        bool packed = st->packed_b && st->packed_k == k && st->packed_n == n;
        return gemm_run_float(st, a->data, packed ? st->packed_b : b->data,
                              packed ? false : st->trans_b, c ? c->data : NULL, c, y->data, m, n, k,
                              ex);
    }
    if (is_half(dt)) {
        float *fa = widen(ex, a, err), *fb = fa ? widen(ex, b, err) : NULL;
        float *fc = c && fb ? widen(ex, c, err) : NULL;
        float *fy = fb ? em_exec_scratch(ex, (size_t)(m * n) * sizeof(float), err) : NULL;
        if (!fy || (c && !fc)) return SCRATCH_FAILED;
        gemm_run_float(st, fa, fb, st->trans_b, fc, c, fy, m, n, k, ex);
        em_convert(y->data, dt, fy, EMBER_FLOAT, m * n);
        return EMBER_OK;
    }
    if (dt == EMBER_DOUBLE) {
        double *yd = y->data;
        double beta = 0.0;
        if (c && st->beta != 0.0f) {
            int64_t rs, cs;
            c_strides(c, m, n, &rs, &cs);
            const double *cd = c->data;
            for (int64_t i = 0; i < m; i++)
                for (int64_t j = 0; j < n; j++) yd[i * n + j] = st->beta * cd[i * rs + j * cs];
            beta = 1.0;
        }
        em_dgemm(ex, st->trans_a, st->trans_b, m, n, k, st->alpha, a->data, st->trans_a ? m : k,
                 b->data, st->trans_b ? k : n, beta, yd, n);
        if (st->act.kind != EM_ACT_NONE) {
            for (int64_t i = 0; i < m * n; i++) {
                float v = (float)yd[i];
                em_activation_apply(&st->act, &v, 1);
                yd[i] = v;
            }
        }
        return EMBER_OK;
    }
    /* Integer types. */
    uint64_t *acc = em_exec_scratch(ex, (size_t)(m * n) * sizeof(uint64_t), err);
    if (!acc) return SCRATCH_FAILED;
    int64_t a_rs = st->trans_a ? 1 : k, a_cs = st->trans_a ? m : 1;
    int64_t b_rs = st->trans_b ? 1 : n, b_cs = st->trans_b ? k : 1;
    int_matmul(dt, a->data, a_rs, a_cs, b->data, b_rs, b_cs, acc, m, n, k);
    int64_t rs = 0, cs = 0;
    if (c) c_strides(c, m, n, &rs, &cs);
    bool exact = st->alpha == 1.0f && (st->beta == 1.0f || !c);
    em_tensor ct = c ? *c : (em_tensor){0};
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            uint64_t *v = &acc[i * n + j];
            int64_t ci = i * rs + j * cs;
            if (exact) {
                if (c) *v += (uint64_t)em_get_i64(&ct, ci);
            } else {
                double r = st->alpha * int_value(dt, *v);
                if (c) r += st->beta * em_get_f64(&ct, ci);
                *v = dt == EMBER_UINT64 || dt == EMBER_UINT32 ? (uint64_t)(r < 0 ? 0 : r)
                                                              : (uint64_t)(int64_t)r;
            }
        }
    int_store(dt, y->data, acc, m * n);
    return EMBER_OK;
}

/* ============================================================================================
 * MatMul / FusedMatMul (numpy semantics)
 * ========================================================================================== */

typedef struct matmul_state {
    em_activation act;
} matmul_state;

static ember_status matmul_create(const em_graph *g, em_node *node, void **state,
                                  ember_error *err) {
    (void)g;
    matmul_state *st = calloc(1, sizeof *st);
    if (!st) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "MatMul state: out of memory");
    ember_status s = em_activation_from_node(node, &st->act, err);
    if (s != EMBER_OK) {
        free(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

static void free_state(void *state) {
    free(state);
}

/* The batched view of a MatMul: batch dims broadcast, per-batch offsets from an odometer. */
typedef struct mm_shape {
    int batch_rank;
    int64_t batch[EM_MAX_RANK];
    int64_t a_bstride[EM_MAX_RANK], b_bstride[EM_MAX_RANK]; /* element strides, 0 = broadcast */
    int64_t m, n, k;
    int64_t n_batch;
    bool a_full, b_shared; /* A covers every batch contiguously; B is one matrix for all */
} mm_shape;

/* Compute the output dims (and, when all dims are known, the batched view). */
static ember_status mm_shapes(const em_node *node, const em_tensor *a, const em_tensor *b,
                              int64_t *out_dims, int *out_rank, mm_shape *sh, ember_error *err) {
    char d[256];
    if (a->rank < 1 || b->rank < 1)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: MatMul inputs must have rank >= 1",
                       desc_of(node, d, sizeof d));
    int64_t m = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    int64_t n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    if (ka >= 0 && kb >= 0 && ka != kb)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: inner dimensions differ (%lld vs %lld)",
                       desc_of(node, d, sizeof d), (long long)ka, (long long)kb);
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0;
    int64_t batch[EM_MAX_RANK];
    int br;
    if (!em_broadcast_shape(a->dims, ra, b->dims, rb, batch, &br))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: batch dimensions do not broadcast",
                       desc_of(node, d, sizeof d));
    int r = 0;
    for (int i = 0; i < br; i++) out_dims[r++] = batch[i];
    if (a->rank >= 2) out_dims[r++] = m;
    if (b->rank >= 2) out_dims[r++] = n;
    *out_rank = r;
    if (!sh) return EMBER_OK;
    memset(sh, 0, sizeof *sh);
    sh->batch_rank = br;
    sh->m = m;
    sh->n = n;
    sh->k = ka;
    sh->n_batch = 1;
    int64_t sa = m * ka, sb = ka * n;
    bool b_shared = true, a_full = true;
    for (int i = br - 1; i >= 0; i--) {
        int ia = i - (br - ra), ib = i - (br - rb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        sh->batch[i] = batch[i];
        sh->a_bstride[i] = da == 1 ? 0 : sa;
        sh->b_bstride[i] = db == 1 ? 0 : sb;
        if (db != 1) b_shared = false;
        if (da != batch[i]) a_full = false;
        sa *= da;
        sb *= db;
        sh->n_batch *= batch[i];
    }
    sh->a_full = a_full;
    sh->b_shared = b_shared;
    return EMBER_OK;
}

static ember_status matmul_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    char d[256];
    const em_tensor *a = in[0], *b = in[1];
    if (!is_gemm_type(a->dtype)) return em_unsupported_type(node, 0, a->dtype, err);
    if (b->dtype != a->dtype)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: A and B must have the same type",
                       desc_of(node, d, sizeof d));
    if (a->rank < 0 || b->rank < 0) {
        out[0].dtype = a->dtype;
        out[0].rank = -1;
        return EMBER_OK;
    }
    int64_t dims[EM_MAX_RANK];
    int r;
    EM_TRY(mm_shapes(node, a, b, dims, &r, NULL, err));
    /* FusedMatMul's optional bias (input 2): float32, one value per output column. */
    const em_tensor *bias = opt_input(node, in, 2);
    if (bias) {
        int64_t n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
        if (a->dtype != EMBER_FLOAT || bias->dtype != EMBER_FLOAT)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: a bias needs float32 A, B and bias",
                           desc_of(node, d, sizeof d));
        if (b->rank < 2 || (bias->rank >= 0 && n >= 0 && em_shape_numel(bias->dims, bias->rank) != n))
            return em_fail(err, EMBER_ERR_SHAPE, "%s: the bias must have one value per column",
                           desc_of(node, d, sizeof d));
    }
    em_tensor_set_shape(&out[0], a->dtype, dims, r);
    return EMBER_OK;
}

static void batch_offsets(const mm_shape *sh, int64_t index, int64_t *oa, int64_t *ob) {
    *oa = 0;
    *ob = 0;
    for (int i = sh->batch_rank - 1; i >= 0; i--) {
        int64_t c = index % sh->batch[i];
        index /= sh->batch[i];
        *oa += c * sh->a_bstride[i];
        *ob += c * sh->b_bstride[i];
    }
}

typedef struct mm_batch_job {
    const mm_shape *sh;
    bool is_double;
    const void *a, *b;
    void *y;
} mm_batch_job;

static void mm_batch_range(void *ctx, int slot, int64_t begin, int64_t end) {
    (void)slot;
    const mm_batch_job *j = ctx;
    const mm_shape *sh = j->sh;
    for (int64_t t = begin; t < end; t++) {
        int64_t oa, ob;
        batch_offsets(sh, t, &oa, &ob);
        int64_t oy = t * sh->m * sh->n;
        if (j->is_double)
            em_dgemm_serial(false, false, sh->m, sh->n, sh->k, 1.0, (const double *)j->a + oa,
                            sh->k, (const double *)j->b + ob, sh->n, 0.0, (double *)j->y + oy,
                            sh->n);
        else
            em_sgemm_serial(false, false, sh->m, sh->n, sh->k, 1.0f, (const float *)j->a + oa,
                            sh->k, (const float *)j->b + ob, sh->n, 0.0f, (float *)j->y + oy,
                            sh->n);
    }
}

/* Rows [begin, end) of a shared-B float product with the bias in front and the activation
 * after, so that each thread's rows are still in its cache for the activation. */
typedef struct mm_rows_job {
    const mm_shape *sh;
    const float *a, *b, *bias;
    float *y;
    const em_activation *act;
} mm_rows_job;

static void mm_rows_range(void *ctx, int slot, int64_t begin, int64_t end) {
    (void)slot;
    const mm_rows_job *j = ctx;
    const int64_t n = j->sh->n, k = j->sh->k;
    float *y = j->y + begin * n;
    if (j->bias)
        for (int64_t r = 0; r < end - begin; r++) memcpy(y + r * n, j->bias, sizeof(float) * n);
    em_sgemm_serial(false, false, end - begin, n, k, 1.0f, j->a + begin * k, k, j->b, n,
                    j->bias ? 1.0f : 0.0f, y, n);
    if (j->act && j->act->kind != EM_ACT_NONE) em_activation_apply(j->act, y, (end - begin) * n);
}

/* Float / double batched product without copies: one big GEMM when B is shared, else one
 * GEMM per batch (spread over threads when there are enough batches). For float, `bias` (one
 * value per column, or NULL) and `act` (or NULL) are applied too when this returns true; when
 * it returns false the caller still has to apply them. */
static bool matmul_blas(const mm_shape *sh, bool is_double, const void *a, const void *b, void *y,
                        const float *bias, const em_activation *act, em_exec *ex) {
    int threads = ex ? em_exec_threads(ex) : 1;
    if (sh->b_shared && sh->a_full) {
        int64_t rows = sh->n_batch * sh->m;
        if (is_double) {
            em_dgemm(ex, false, false, rows, sh->n, sh->k, 1.0, a, sh->k, b, sh->n, 0.0, y, sh->n);
            return false;
        }
        /* Enough rows for every thread: each does its own rows start to end. */
        if (threads > 1 && rows >= 64 * (int64_t)threads) {
            mm_rows_job job = {sh, a, b, bias, y, act};
            em_parallel_slots(ex, rows, mm_rows_range, &job);
            return true;
        }
        /* The bias goes in first and the GEMM accumulates onto it (beta 1): the same sum as
         * MatMul then Add, without the BLAS zeroing pass and the second pass over Y. */
        if (bias) {
            float *yf = y;
            for (int64_t r = 0; r < rows; r++) memcpy(yf + r * sh->n, bias, sizeof(float) * sh->n);
        }
        em_sgemm(ex, false, false, rows, sh->n, sh->k, 1.0f, a, sh->k, b, sh->n,
                 bias ? 1.0f : 0.0f, y, sh->n);
        if (act && act->kind != EM_ACT_NONE) em_activation_apply(act, y, rows * sh->n);
        return true;
    }
    mm_batch_job job = {sh, is_double, a, b, y};
    if (sh->n_batch >= threads) {
        em_parallel_slots(ex, sh->n_batch, mm_batch_range, &job);
        return false;
    }
    for (int64_t t = 0; t < sh->n_batch; t++) {
        int64_t oa, ob;
        batch_offsets(sh, t, &oa, &ob);
        int64_t oy = t * sh->m * sh->n;
        if (is_double)
            em_dgemm(ex, false, false, sh->m, sh->n, sh->k, 1.0, (const double *)a + oa, sh->k,
                     (const double *)b + ob, sh->n, 0.0, (double *)y + oy, sh->n);
        else
            em_sgemm(ex, false, false, sh->m, sh->n, sh->k, 1.0f, (const float *)a + oa, sh->k,
                     (const float *)b + ob, sh->n, 0.0f, (float *)y + oy, sh->n);
    }
    return false;
}

static ember_status matmul_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    const matmul_state *st = state;
    const em_tensor *a = in[0], *b = in[1];
    em_tensor *y = &out[0];
    int64_t dims[EM_MAX_RANK];
    int r;
    mm_shape sh;
    EM_TRY(mm_shapes(node, a, b, dims, &r, &sh, err));
    int64_t total = em_numel(y);
    if (total <= 0) return EMBER_OK;
    ember_dtype dt = a->dtype;
    const em_tensor *bias_t = opt_input(node, in, 2); /* FusedMatMul: float32 only (infer) */
    const float *bias = bias_t && dt == EMBER_FLOAT ? bias_t->data : NULL;
    const em_activation *act = st && st->act.kind != EM_ACT_NONE ? &st->act : NULL;
    if (dt == EMBER_FLOAT) {
        if (!matmul_blas(&sh, false, a->data, b->data, y->data, bias, act, ex) && (bias || act))
            em_epilogue(y->data, total / sh.n, sh.n, sh.n, NULL, bias, NULL, 0, act);
        return EMBER_OK;
    } else if (dt == EMBER_DOUBLE) {
        matmul_blas(&sh, true, a->data, b->data, y->data, NULL, NULL, ex);
    } else if (is_half(dt)) {
        float *fa = widen(ex, a, err), *fb = fa ? widen(ex, b, err) : NULL;
        float *fy = fb ? em_exec_scratch(ex, (size_t)total * sizeof(float), err) : NULL;
        if (!fy) return SCRATCH_FAILED;
        matmul_blas(&sh, false, fa, fb, fy, NULL, NULL, ex);
        if (st && st->act.kind != EM_ACT_NONE) em_activation_apply(&st->act, fy, total);
        em_convert(y->data, dt, fy, EMBER_FLOAT, total);
        return EMBER_OK;
    } else {
        uint64_t *acc = em_exec_scratch(ex, (size_t)(sh.m * sh.n) * sizeof(uint64_t), err);
        if (!acc) return SCRATCH_FAILED;
        size_t es = em_dtype_size(dt);
        for (int64_t t = 0; t < sh.n_batch; t++) {
            int64_t oa, ob;
            batch_offsets(&sh, t, &oa, &ob);
            int_matmul(dt, (const char *)a->data + oa * es, sh.k, 1,
                       (const char *)b->data + ob * es, sh.n, 1, acc, sh.m, sh.n, sh.k);
            int_store(dt, (char *)y->data + (size_t)(t * sh.m * sh.n) * es, acc, sh.m * sh.n);
        }
        return EMBER_OK;
    }
    if (st && st->act.kind != EM_ACT_NONE) {
        if (dt == EMBER_FLOAT) {
            em_activation_apply(&st->act, y->data, total);
        } else {
            double *yd = y->data;
            for (int64_t i = 0; i < total; i++) {
                float v = (float)yd[i];
                em_activation_apply(&st->act, &v, 1);
                yd[i] = v;
            }
        }
    }
    return EMBER_OK;
}

/* ============================================================================================
 * MatMulInteger / QLinearMatMul
 * ========================================================================================== */

static bool is_q8(ember_dtype dt) {
    return dt == EMBER_UINT8 || dt == EMBER_INT8;
}

static int32_t q8_at(const em_tensor *t, int64_t i) {
    return t->dtype == EMBER_UINT8 ? (int32_t)((const uint8_t *)t->data)[i]
                                   : (int32_t)((const int8_t *)t->data)[i];
}

/* A zero point / scale is per tensor (1 element) or per row of A (M) / column of B (N). */
static ember_status check_quant_param(const em_node *node, const em_tensor *t, int64_t per,
                                      const char *what, ember_error *err) {
    char d[256];
    if (!t || t->rank < 0) return EMBER_OK;
    int64_t cnt = em_numel(t);
    if (cnt == 1 || per < 0 || cnt == per) return EMBER_OK;
    return em_fail(err, EMBER_ERR_SHAPE, "%s: %s must have 1 or %lld elements, got %lld",
                   desc_of(node, d, sizeof d), what, (long long)per, (long long)cnt);
}

/* acc[m x n] = sum_k (a - za[row]) * (b - zb[col]) for one batch. b32 is scratch K x N. */
static void q8_matmul(const em_tensor *a, int64_t a_off, const em_tensor *za, const em_tensor *b,
                      int64_t b_off, const em_tensor *zb, int32_t *acc, int32_t *b32, int32_t *a32,
                      int64_t m, int64_t n, int64_t k) {
    for (int64_t p = 0; p < k; p++)
        for (int64_t j = 0; j < n; j++) {
            int32_t z = zb ? q8_at(zb, em_numel(zb) == 1 ? 0 : j) : 0;
            b32[p * n + j] = q8_at(b, b_off + p * n + j) - z;
        }
    for (int64_t i = 0; i < m; i++) {
        int32_t z = za ? q8_at(za, em_numel(za) == 1 ? 0 : i) : 0;
        for (int64_t p = 0; p < k; p++) a32[p] = q8_at(a, a_off + i * k + p) - z;
        int32_t *restrict row = acc + i * n;
        for (int64_t j = 0; j < n; j++) row[j] = 0;
        for (int64_t p = 0; p < k; p++) {
            const int32_t av = a32[p];
            const int32_t *restrict br = b32 + p * n;
            for (int64_t j = 0; j < n; j++) row[j] += av * br[j];
        }
    }
}

static ember_status qmm_infer_common(const em_node *node, const em_tensor *a, const em_tensor *b,
                                     const em_tensor *za, const em_tensor *zb, em_tensor *out,
                                     ember_dtype out_type, ember_error *err) {
    char d[256];
    if (!is_q8(a->dtype)) return em_unsupported_type(node, 0, a->dtype, err);
    if (!is_q8(b->dtype)) return em_unsupported_type(node, 1, b->dtype, err);
    if ((za && za->dtype != a->dtype) || (zb && zb->dtype != b->dtype))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: zero point type differs from its input",
                       desc_of(node, d, sizeof d));
    if (a->rank < 0 || b->rank < 0) {
        out[0].dtype = out_type;
        out[0].rank = -1;
        return EMBER_OK;
    }
    int64_t dims[EM_MAX_RANK];
    int r;
    EM_TRY(mm_shapes(node, a, b, dims, &r, NULL, err));
    int64_t m = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    int64_t n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    EM_TRY(check_quant_param(node, za, m, "a_zero_point", err));
    EM_TRY(check_quant_param(node, zb, n, "b_zero_point", err));
    em_tensor_set_shape(&out[0], out_type, dims, r);
    return EMBER_OK;
}

static ember_status mmi_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    return qmm_infer_common(node, in[0], in[1], opt_input(node, in, 2), opt_input(node, in, 3), out,
                            EMBER_INT32, err);
}

/* Shared driver: for every batch, integer product then `finish` writes the output slice. */
typedef void (*q_finish_fn)(const void *ctx, const int32_t *acc, int64_t m, int64_t n, void *dst);

static ember_status q8_batched(const em_node *node, const em_tensor *a, const em_tensor *za,
                               const em_tensor *b, const em_tensor *zb, em_tensor *y, size_t out_es,
                               q_finish_fn finish, const void *fctx, em_exec *ex,
                               ember_error *err) {
    int64_t dims[EM_MAX_RANK];
    int r;
    mm_shape sh;
    EM_TRY(mm_shapes(node, a, b, dims, &r, &sh, err));
    if (em_numel(y) <= 0) return EMBER_OK;
    int64_t mn = sh.m * sh.n, kn = sh.k * sh.n;
    int32_t *acc = em_exec_scratch(ex, (size_t)(mn + kn + sh.k + 1) * sizeof(int32_t), err);
    if (!acc) return SCRATCH_FAILED;
    int32_t *b32 = acc + mn, *a32 = b32 + kn;
    for (int64_t t = 0; t < sh.n_batch; t++) {
        int64_t oa, ob;
        batch_offsets(&sh, t, &oa, &ob);
        q8_matmul(a, oa, za, b, ob, zb, acc, b32, a32, sh.m, sh.n, sh.k);
        finish(fctx, acc, sh.m, sh.n, (char *)y->data + (size_t)(t * mn) * out_es);
    }
    return EMBER_OK;
}

static void mmi_finish(const void *ctx, const int32_t *acc, int64_t m, int64_t n, void *dst) {
    (void)ctx;
    memcpy(dst, acc, (size_t)(m * n) * sizeof(int32_t));
}

static ember_status mmi_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                            em_exec *ex, ember_error *err) {
    (void)state;
    return q8_batched(node, in[0], opt_input(node, in, 2), in[1], opt_input(node, in, 3), &out[0],
                      sizeof(int32_t), mmi_finish, NULL, ex, err);
}

/* Inputs: a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point. */
static ember_status qlmm_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    char d[256];
    const em_tensor *ys = in[6], *yz = opt_input(node, in, 7);
    ember_dtype out_type = yz ? yz->dtype : EMBER_UINT8;
    if (!is_q8(out_type)) return em_unsupported_type(node, 7, out_type, err);
    static const int scale_inputs[] = {1, 4, 6};
    for (size_t i = 0; i < 3; i++) {
        const em_tensor *s = in[scale_inputs[i]];
        if (s->dtype != EMBER_FLOAT)
            return em_unsupported_type(node, scale_inputs[i], s->dtype, err);
    }
    if (ys->rank >= 0 && em_numel(ys) != 1)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: y_scale must be a scalar",
                       desc_of(node, d, sizeof d));
    if (yz && yz->rank >= 0 && em_numel(yz) != 1)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: y_zero_point must be a scalar",
                       desc_of(node, d, sizeof d));
    EM_TRY(qmm_infer_common(node, in[0], in[3], in[2], in[5], out, out_type, err));
    if (out[0].rank >= 0) {
        int64_t m = in[0]->rank >= 2 ? in[0]->dims[in[0]->rank - 2] : 1;
        int64_t n = in[3]->rank >= 2 ? in[3]->dims[in[3]->rank - 1] : 1;
        EM_TRY(check_quant_param(node, in[1], m, "a_scale", err));
        EM_TRY(check_quant_param(node, in[4], n, "b_scale", err));
    }
    return EMBER_OK;
}

typedef struct qlmm_ctx {
    const float *a_scale, *b_scale;
    int64_t a_scale_n, b_scale_n;
    float y_scale;
    int32_t y_zero;
    bool is_signed;
} qlmm_ctx;

static void qlmm_finish(const void *ctx, const int32_t *acc, int64_t m, int64_t n, void *dst) {
    const qlmm_ctx *c = ctx;
    const int32_t lo = c->is_signed ? -128 : 0, hi = c->is_signed ? 127 : 255;
    for (int64_t i = 0; i < m; i++) {
        float sa = c->a_scale[c->a_scale_n == 1 ? 0 : i];
        for (int64_t j = 0; j < n; j++) {
            float sb = c->b_scale[c->b_scale_n == 1 ? 0 : j];
            float scale = sa * sb / c->y_scale;
            float v = nearbyintf((float)acc[i * n + j] * scale) + (float)c->y_zero;
            int32_t q = v < (float)lo ? lo : v > (float)hi ? hi : (int32_t)v;
            if (c->is_signed)
                ((int8_t *)dst)[i * n + j] = (int8_t)q;
            else
                ((uint8_t *)dst)[i * n + j] = (uint8_t)q;
        }
    }
}

static ember_status qlmm_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *yz = opt_input(node, in, 7);
    qlmm_ctx c = {
        .a_scale = in[1]->data,
        .b_scale = in[4]->data,
        .a_scale_n = em_numel(in[1]),
        .b_scale_n = em_numel(in[4]),
        .y_scale = ((const float *)in[6]->data)[0],
        .y_zero = yz ? q8_at(yz, 0) : 0,
        .is_signed = out[0].dtype == EMBER_INT8,
    };
    return q8_batched(node, in[0], in[2], in[3], in[5], &out[0], 1, qlmm_finish, &c, ex, err);
}

/* ============================================================================================
 * Einsum
 * ========================================================================================== */

#define EIN_MAX_OPS 16
#define EIN_MAX_LABELS (52 + EM_MAX_RANK) /* a-z, A-Z, then ellipsis dims */

typedef struct ein_plan {
    int n_ops;
    int op_rank[EIN_MAX_OPS];
    int op_label[EIN_MAX_OPS][EM_MAX_RANK]; /* label of each axis */
    int out_rank;
    int out_label[EM_MAX_RANK];
    int64_t size[EIN_MAX_LABELS]; /* -1 unknown */
    bool used[EIN_MAX_LABELS];
} ein_plan;

static int ein_letter(char c) {
    if (c >= 'a' && c <= 'z') return c - 'a';
    if (c >= 'A' && c <= 'Z') return 26 + (c - 'A');
    return -1;
}

/* Parse one term into labels; `ell_dims` is the operand's rank minus its letters (or, for
 * the output, the ellipsis rank). Returns the axis count or -1. */
static int ein_term(const char *s, size_t len, int ell_dims, int ell_rank, int *labels,
                    bool *has_ell) {
    int r = 0;
    *has_ell = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (*has_ell || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.') return -1;
            *has_ell = true;
            i += 2;
            if (r + ell_dims > EM_MAX_RANK) return -1;
            for (int e = 0; e < ell_dims; e++) labels[r++] = 52 + (ell_rank - ell_dims) + e;
            continue;
        }
        int l = ein_letter(s[i]);
        if (l < 0 || r >= EM_MAX_RANK) return -1;
        labels[r++] = l;
    }
    return r;
}

static size_t ein_letters(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ein_letter(s[i]) >= 0;
    return n;
}

static ember_status ein_parse(const em_node *node, em_tensor *const *in, ein_plan *p,
                              ember_error *err) {
    char d[256];
    const char *eq_attr = em_attr_string(node, "equation", NULL);
    if (!eq_attr)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: missing attribute 'equation'",
                       desc_of(node, d, sizeof d));
    char eq[512];
    size_t len = 0;
    for (const char *c = eq_attr; *c; c++)
        if (*c != ' ') {
            if (len + 1 >= sizeof eq)
                return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: equation too long",
                               desc_of(node, d, sizeof d));
            eq[len++] = *c;
        }
    eq[len] = '\0';
    memset(p, 0, sizeof *p);
    for (int i = 0; i < EIN_MAX_LABELS; i++) p->size[i] = -2; /* not seen */
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : len;
    int n_ops = node->n_inputs;
    if (n_ops < 1 || n_ops > EIN_MAX_OPS)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: %d operands not supported",
                       desc_of(node, d, sizeof d), n_ops);
    p->n_ops = n_ops;
    /* First pass: the ellipsis rank is the largest ellipsis of any operand. */
    const char *term[EIN_MAX_OPS];
    size_t tlen[EIN_MAX_OPS];
    int t = 0;
    const char *start = eq;
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i == lhs_len || eq[i] == ',') {
            if (t >= n_ops)
                return em_fail(err, EMBER_ERR_INVALID_MODEL,
                               "%s: equation has more terms than inputs",
                               desc_of(node, d, sizeof d));
            term[t] = start;
            tlen[t] = (size_t)(eq + i - start);
            t++;
            start = eq + i + 1;
        }
    }
    if (t != n_ops)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: equation has %d terms for %d inputs",
                       desc_of(node, d, sizeof d), t, n_ops);
    int ell_rank = 0;
    for (int o = 0; o < n_ops; o++) {
        if (in[o]->rank < 0) return EMBER_ERR_SHAPE; /* caller handles unknown ranks */
        int e = in[o]->rank - (int)ein_letters(term[o], tlen[o]);
        if (e > ell_rank && memchr(term[o], '.', tlen[o])) ell_rank = e;
    }
    for (int o = 0; o < n_ops; o++) {
        const em_tensor *x = in[o];
        int e = x->rank - (int)ein_letters(term[o], tlen[o]);
        bool has_ell;
        int r = ein_term(term[o], tlen[o], e < 0 ? 0 : e, ell_rank, p->op_label[o], &has_ell);
        if (r < 0 || r != x->rank || (!has_ell && e != 0))
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: term %d of the equation does not match input rank %d",
                           desc_of(node, d, sizeof d), o, x->rank);
        p->op_rank[o] = r;
        for (int i = 0; i < r; i++) {
            int l = p->op_label[o][i];
            int64_t sz = x->dims[i];
            p->used[l] = true;
            int64_t cur = p->size[l];
            if (cur == -2 || cur == -1 || (l >= 52 && cur == 1)) {
                if (!(cur == -1 && sz == -1) && !(l >= 52 && cur == 1 && sz == -1)) p->size[l] = sz;
            } else if (sz >= 0 && sz != cur && !(l >= 52 && sz == 1)) {
                return em_fail(err, EMBER_ERR_SHAPE,
                               "%s: label sizes disagree (%lld vs %lld) in the equation",
                               desc_of(node, d, sizeof d), (long long)sz, (long long)cur);
            }
        }
    }
    if (arrow) {
        const char *o = arrow + 2;
        bool has_ell;
        int r = ein_term(o, strlen(o), ell_rank, ell_rank, p->out_label, &has_ell);
        if (r < 0)
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: bad output term in equation",
                           desc_of(node, d, sizeof d));
        p->out_rank = r;
        for (int i = 0; i < r; i++) {
            int l = p->out_label[i];
            if (!p->used[l])
                return em_fail(err, EMBER_ERR_INVALID_MODEL,
                               "%s: output label not present in any input",
                               desc_of(node, d, sizeof d));
            for (int j = 0; j < i; j++)
                if (p->out_label[j] == l)
                    return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: output label repeated",
                                   desc_of(node, d, sizeof d));
        }
    } else {
        /* Implicit output: ellipsis dims, then labels seen exactly once, in ASCII order. */
        int count[EIN_MAX_LABELS] = {0};
        for (int o = 0; o < n_ops; o++)
            for (int i = 0; i < p->op_rank[o]; i++) count[p->op_label[o][i]]++;
        int r = 0;
        for (int e = 0; e < ell_rank; e++) p->out_label[r++] = 52 + e;
        for (int l = 26; l < 52; l++) /* uppercase sorts first */
            if (count[l] == 1) p->out_label[r++] = l;
        for (int l = 0; l < 26; l++)
            if (count[l] == 1) p->out_label[r++] = l;
        if (r > EM_MAX_RANK)
            return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: output rank too large",
                           desc_of(node, d, sizeof d));
        p->out_rank = r;
    }
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (p->size[l] == -2) p->size[l] = 1;
    return EMBER_OK;
}

static ember_status einsum_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    char d[256];
    ember_dtype dt = in[0]->dtype;
    for (int i = 0; i < node->n_inputs; i++) {
        if (in[i]->dtype != dt)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: all inputs must have the same type",
                           desc_of(node, d, sizeof d));
        if (in[i]->rank < 0) {
            out[0].dtype = dt;
            out[0].rank = -1;
            return EMBER_OK;
        }
    }
    if (!(em_dtype_is_float(dt) || em_dtype_is_signed_int(dt) || em_dtype_is_unsigned_int(dt)))
        return em_unsupported_type(node, 0, dt, err);
    ein_plan p;
    EM_TRY(ein_parse(node, in, &p, err));
    int64_t dims[EM_MAX_RANK];
    for (int i = 0; i < p.out_rank; i++) dims[i] = p.size[p.out_label[i]];
    em_tensor_set_shape(&out[0], dt, dims, p.out_rank);
    return EMBER_OK;
}

/* Generic evaluation: an odometer over output labels, and inside it over summed labels. Each
 * operand's per-label stride is the sum of the strides of its axes with that label (which is
 * how diagonals are read); broadcast ellipsis axes of size 1 get stride 0. */
static ember_status einsum_generic(const ein_plan *p, em_tensor *const *in, em_tensor *y,
                                   em_exec *ex, ember_error *err) {
    int labels[EIN_MAX_LABELS], n_labels = 0;
    bool in_out[EIN_MAX_LABELS] = {false};
    for (int i = 0; i < p->out_rank; i++) {
        labels[n_labels++] = p->out_label[i];
        in_out[p->out_label[i]] = true;
    }
    int n_out = n_labels;
    for (int l = 0; l < EIN_MAX_LABELS; l++)
        if (p->used[l] && !in_out[l]) labels[n_labels++] = l;
    int64_t stride[EIN_MAX_OPS][EIN_MAX_LABELS];
    memset(stride, 0, sizeof stride);
    for (int o = 0; o < p->n_ops; o++) {
        int64_t st[EM_MAX_RANK];
        em_strides(in[o]->dims, in[o]->rank, st);
        for (int i = 0; i < p->op_rank[o]; i++)
            if (in[o]->dims[i] != 1) stride[o][p->op_label[o][i]] += st[i];
    }
    int64_t sum_count = 1;
    for (int i = n_out; i < n_labels; i++) sum_count *= p->size[labels[i]];
    int64_t out_count = em_numel(y);
    bool is_int = !em_dtype_is_float(y->dtype);
    double *fo = NULL;
    int64_t *io = NULL;
    if (is_int)
        io = em_exec_scratch(ex, (size_t)(out_count > 0 ? out_count : 1) * sizeof(int64_t), err);
    else
        fo = em_exec_scratch(ex, (size_t)(out_count > 0 ? out_count : 1) * sizeof(double), err);
    if (!io && !fo) return SCRATCH_FAILED;
    int64_t idx[EIN_MAX_LABELS] = {0};
    for (int64_t oi = 0; oi < out_count; oi++) {
        double facc = 0.0;
        uint64_t iacc = 0;
        for (int i = n_out; i < n_labels; i++) idx[i] = 0;
        for (int64_t si = 0; si < sum_count; si++) {
            double fprod = 1.0;
            uint64_t iprod = 1;
            for (int o = 0; o < p->n_ops; o++) {
                int64_t e = 0;
                for (int i = 0; i < n_labels; i++) e += idx[i] * stride[o][labels[i]];
                em_tensor *x = in[o];
                if (is_int)
                    iprod *= (uint64_t)em_get_i64(x, e);
                else
                    fprod *= em_get_f64(x, e);
            }
            facc += fprod;
            iacc += iprod;
            for (int i = n_labels - 1; i >= n_out; i--) {
                if (++idx[i] < p->size[labels[i]]) break;
                idx[i] = 0;
            }
        }
        if (is_int)
            io[oi] = (int64_t)iacc;
        else
            fo[oi] = facc;
        for (int i = n_out - 1; i >= 0; i--) {
            if (++idx[i] < p->size[labels[i]]) break;
            idx[i] = 0;
        }
    }
    if (is_int)
        em_convert(y->data, y->dtype, io, EMBER_INT64, out_count);
    else
        em_convert(y->data, y->dtype, fo, EMBER_DOUBLE, out_count);
    return EMBER_OK;
}

/* Copy a tensor of element size es into dst, permuted: dst axis i = src axis perm[i]. */
static void permute_copy(void *dst, const void *src, size_t es, const int64_t *src_dims, int rank,
                         const int *perm) {
    int64_t sst[EM_MAX_RANK], dims[EM_MAX_RANK], st[EM_MAX_RANK];
    em_strides(src_dims, rank, sst);
    for (int i = 0; i < rank; i++) {
        dims[i] = src_dims[perm[i]];
        st[i] = sst[perm[i]];
    }
    int64_t total = em_shape_numel(dims, rank);
    if (total <= 0) return;
    int64_t inner = rank > 0 ? dims[rank - 1] : 1, inner_st = rank > 0 ? st[rank - 1] : 1;
    int64_t idx[EM_MAX_RANK] = {0};
    char *o = dst;
    const char *s = src;
    for (int64_t done = 0; done < total; done += inner) {
        int64_t base = 0;
        for (int i = 0; i < rank - 1; i++) base += idx[i] * st[i];
        if (es == 8) {
            const double *sp = (const double *)s + base;
            double *op = (double *)o;
            for (int64_t j = 0; j < inner; j++) op[j] = sp[j * inner_st];
        } else {
            const float *sp = (const float *)s + base;
            float *op = (float *)o;
            for (int64_t j = 0; j < inner; j++) op[j] = sp[j * inner_st];
        }
        o += (size_t)inner * es;
        for (int i = rank - 2; i >= 0; i--) {
            if (++idx[i] < dims[i]) break;
            idx[i] = 0;
        }
    }
}

static bool is_identity(const int *perm, int rank) {
    for (int i = 0; i < rank; i++)
        if (perm[i] != i) return false;
    return true;
}

/* Two operands, float or double, no repeated label inside an operand, no label summed within
 * a single operand, no broadcasting: permute to [batch, M, K] x [batch, K, N] and run GEMMs. */
static ember_status einsum_pair(const ein_plan *p, em_tensor *const *in, em_tensor *y, em_exec *ex,
                                ember_error *err, bool *done) {
    *done = false;
    if (p->n_ops != 2) return EMBER_OK;
    ember_dtype dt = y->dtype;
    if (dt != EMBER_FLOAT && dt != EMBER_DOUBLE) return EMBER_OK;
    int where[EIN_MAX_LABELS] = {0}; /* bit 0: A, bit 1: B, bit 2: out */
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < p->op_rank[o]; i++) {
            int l = p->op_label[o][i];
            if (where[l] & (1 << o)) return EMBER_OK;          /* diagonal */
            if (in[o]->dims[i] != p->size[l]) return EMBER_OK; /* broadcast */
            where[l] |= 1 << o;
        }
    for (int i = 0; i < p->out_rank; i++) where[p->out_label[i]] |= 4;
    int batch[EM_MAX_RANK], nb = 0, mk[EM_MAX_RANK], nm = 0, kk[EM_MAX_RANK], nk = 0;
    int nn_[EM_MAX_RANK], nn = 0;
    for (int i = 0; i < p->out_rank; i++) {
        int l = p->out_label[i];
        if (where[l] == 7) batch[nb++] = l;
    }
    for (int i = 0; i < p->op_rank[0]; i++) {
        int l = p->op_label[0][i];
        if (where[l] == 5)
            mk[nm++] = l;
        else if (where[l] == 3)
            kk[nk++] = l;
        else if (where[l] == 1)
            return EMBER_OK; /* summed in A only */
    }
    for (int i = 0; i < p->op_rank[1]; i++) {
        int l = p->op_label[1][i];
        if (where[l] == 6)
            nn_[nn++] = l;
        else if (where[l] == 2)
            return EMBER_OK;
    }
    int64_t nbatch = 1, m = 1, n = 1, k = 1;
    for (int i = 0; i < nb; i++) nbatch *= p->size[batch[i]];
    for (int i = 0; i < nm; i++) m *= p->size[mk[i]];
    for (int i = 0; i < nn; i++) n *= p->size[nn_[i]];
    for (int i = 0; i < nk; i++) k *= p->size[kk[i]];
    size_t es = em_dtype_size(dt);
    /* Permutations of A to [batch, M, K] and B to [batch, K, N]. */
    int pa[EM_MAX_RANK], pb[EM_MAX_RANK], ra = 0, rb = 0;
    int order_a[EM_MAX_RANK], order_b[EM_MAX_RANK];
    for (int i = 0; i < nb; i++) order_a[ra++] = batch[i];
    for (int i = 0; i < nm; i++) order_a[ra++] = mk[i];
    for (int i = 0; i < nk; i++) order_a[ra++] = kk[i];
    for (int i = 0; i < nb; i++) order_b[rb++] = batch[i];
    for (int i = 0; i < nk; i++) order_b[rb++] = kk[i];
    for (int i = 0; i < nn; i++) order_b[rb++] = nn_[i];
    for (int i = 0; i < ra; i++)
        for (int j = 0; j < p->op_rank[0]; j++)
            if (p->op_label[0][j] == order_a[i]) pa[i] = j;
    for (int i = 0; i < rb; i++)
        for (int j = 0; j < p->op_rank[1]; j++)
            if (p->op_label[1][j] == order_b[i]) pb[i] = j;
    const void *a = in[0]->data, *b = in[1]->data;
    if (!is_identity(pa, ra)) {
        void *t = em_exec_scratch(ex, (size_t)(nbatch * m * k) * es + es, err);
        if (!t) return SCRATCH_FAILED;
        permute_copy(t, a, es, in[0]->dims, ra, pa);
        a = t;
    }
    if (!is_identity(pb, rb)) {
        void *t = em_exec_scratch(ex, (size_t)(nbatch * k * n) * es + es, err);
        if (!t) return SCRATCH_FAILED;
        permute_copy(t, b, es, in[1]->dims, rb, pb);
        b = t;
    }
    /* Result [batch, M, N]; the output wants p->out_label order. */
    int res_label[EM_MAX_RANK], rr = 0;
    int64_t res_dims[EM_MAX_RANK];
    for (int i = 0; i < nb; i++) res_label[rr++] = batch[i];
    for (int i = 0; i < nm; i++) res_label[rr++] = mk[i];
    for (int i = 0; i < nn; i++) res_label[rr++] = nn_[i];
    int po[EM_MAX_RANK];
    for (int i = 0; i < rr; i++) res_dims[i] = p->size[res_label[i]];
    for (int i = 0; i < p->out_rank; i++)
        for (int j = 0; j < rr; j++)
            if (res_label[j] == p->out_label[i]) po[i] = j;
    void *r = y->data;
    bool direct = is_identity(po, rr);
    if (!direct) {
        r = em_exec_scratch(ex, (size_t)(nbatch * m * n) * es + es, err);
        if (!r) return SCRATCH_FAILED;
    }
    mm_shape sh = {0};
    sh.m = m;
    sh.n = n;
    sh.k = k;
    sh.n_batch = nbatch;
    sh.batch_rank = 1;
    sh.batch[0] = nbatch;
    sh.a_bstride[0] = m * k;
    sh.b_bstride[0] = k * n;
    sh.a_full = true;
    sh.b_shared = nbatch == 1;
    matmul_blas(&sh, dt == EMBER_DOUBLE, a, b, r, NULL, NULL, ex);
    if (!direct) permute_copy(y->data, r, es, res_dims, rr, po);
    *done = true;
    return EMBER_OK;
}

static ember_status einsum_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    ein_plan p;
    EM_TRY(ein_parse(node, in, &p, err));
    if (em_numel(&out[0]) <= 0) return EMBER_OK;
    bool done;
    EM_TRY(einsum_pair(&p, in, &out[0], ex, err, &done));
    if (done) return EMBER_OK;
    return einsum_generic(&p, in, &out[0], ex, err);
}

/* ============================================================================================ */

static const em_op gemm_ops[] = {
    {"", "Gemm", 1, 13, gemm_create, gemm_infer, gemm_run, gemm_destroy, 0},
    {"ai.ember", "FusedGemm", 1, 0, gemm_create, gemm_infer, gemm_run, gemm_destroy, 0},
    {"", "MatMul", 1, 13, matmul_create, matmul_infer, matmul_run, free_state, 0},
    {"ai.ember", "FusedMatMul", 1, 0, matmul_create, matmul_infer, matmul_run, free_state, 0},
    {"", "Einsum", 12, 0, NULL, einsum_infer, einsum_run, NULL, 0},
    {"", "MatMulInteger", 10, 0, NULL, mmi_infer, mmi_run, NULL, 0},
    {"", "QLinearMatMul", 10, 21, NULL, qlmm_infer, qlmm_run, NULL, 0},
};

EM_OPS_FAMILY(gemm) {
    *count = sizeof gemm_ops / sizeof gemm_ops[0];
    return gemm_ops;
}
