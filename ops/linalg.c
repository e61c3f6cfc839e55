/* Shared helpers of the compute-heavy kernels: activation epilogue, slot splitting, BLAS. */
#include "linalg.h"
#include "vmath.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ---- activations ---- */

ember_status em_activation_from_node(const em_node *node, em_activation *act, ember_error *err) {
    return em_activation_from_attrs(node, "activation", "activation_params", act, err);
}

ember_status em_activation_from_attrs(const em_node *node, const char *name_attr,
                                      const char *params_attr, em_activation *act,
                                      ember_error *err) {
    static const struct {
        const char *name;
        em_act_kind kind;
        int n_params; /* parameters accepted */
        float a, b;   /* defaults */
    } table[] = {
        {"Relu", EM_ACT_RELU, 0, 0.0f, 0.0f},
        {"LeakyRelu", EM_ACT_LEAKY_RELU, 1, 0.01f, 0.0f},
        {"Clip", EM_ACT_CLIP, 2, -INFINITY, INFINITY},
        {"Sigmoid", EM_ACT_SIGMOID, 0, 0.0f, 0.0f},
        {"Tanh", EM_ACT_TANH, 0, 0.0f, 0.0f},
        {"HardSigmoid", EM_ACT_HARD_SIGMOID, 2, 0.2f, 0.5f},
    };
    char desc[256];
    act->kind = EM_ACT_NONE;
    act->alpha = act->beta = 0.0f;
    const char *name = em_attr_string(node, name_attr, NULL);
    if (!name || !*name) return EMBER_OK;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(name, table[i].name) != 0) continue;
        int64_t count = 0;
        const float *params = em_attr_floats(node, params_attr, &count);
        if (count > table[i].n_params)
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: activation %s takes at most %d %s, got %lld",
                           em_node_desc(node, desc, sizeof desc), name, table[i].n_params,
                           params_attr, (long long)count);
        act->kind = table[i].kind;
        act->alpha = count > 0 ? params[0] : table[i].a;
        act->beta = count > 1 ? params[1] : table[i].b;
        return EMBER_OK;
    }
    return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: unknown fused activation '%s'",
                   em_node_desc(node, desc, sizeof desc), name);
}

/* One row: y = act(y + rb [+ cb] [+ z]) in a single pass. The piecewise-linear activations
 * stay inside the vector loop; sigmoid / tanh run as a second pass through libm. */
EM_VECTOR_CLONES
static void epilogue_row(float *restrict y, int64_t n, float rb, const float *restrict cb,
                         const float *restrict z, em_act_kind kind, float a, float b) {
    switch (kind) {
    case EM_ACT_RELU:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] + rb + (cb ? cb[i] : 0.0f) + (z ? z[i] : 0.0f);
            y[i] = v < 0.0f ? 0.0f : v;
        }
        return;
    case EM_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] + rb + (cb ? cb[i] : 0.0f) + (z ? z[i] : 0.0f);
            y[i] = v < 0.0f ? a * v : v;
        }
        return;
    case EM_ACT_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = y[i] + rb + (cb ? cb[i] : 0.0f) + (z ? z[i] : 0.0f);
            v = v < a ? a : v;
            y[i] = v > b ? b : v;
        }
        return;
    case EM_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = a * (y[i] + rb + (cb ? cb[i] : 0.0f) + (z ? z[i] : 0.0f)) + b;
            v = v < 0.0f ? 0.0f : v;
            y[i] = v > 1.0f ? 1.0f : v;
        }
        return;
    default:
        if (rb != 0.0f || cb || z)
            for (int64_t i = 0; i < n; i++)
                y[i] = y[i] + rb + (cb ? cb[i] : 0.0f) + (z ? z[i] : 0.0f);
        return;
    }
}

void em_activation_apply(const em_activation *act, float *x, int64_t n) {
    switch (act->kind) {
    case EM_ACT_NONE:
        return;
    /* The same functions as the Sigmoid / Tanh kernels (ops/vmath.h), so that fusing an
     * activation never changes a result by even one ulp. */
    case EM_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) x[i] = vm_sigmoidf(x[i]);
        return;
    case EM_ACT_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = vm_tanhf(x[i]);
        return;
    default:
        epilogue_row(x, n, 0.0f, NULL, NULL, act->kind, act->alpha, act->beta);
        return;
    }
}

void em_epilogue(float *y, int64_t rows, int64_t cols, int64_t ldy, const float *row_bias,
                 const float *col_bias, const float *z, int64_t ldz, const em_activation *act) {
    em_act_kind kind = act ? act->kind : EM_ACT_NONE;
    float a = act ? act->alpha : 0.0f, b = act ? act->beta : 0.0f;
    bool libm = kind == EM_ACT_SIGMOID || kind == EM_ACT_TANH;
    for (int64_t r = 0; r < rows; r++) {
        float *yr = y + r * ldy;
        epilogue_row(yr, cols, row_bias ? row_bias[r] : 0.0f, col_bias, z ? z + r * ldz : NULL,
                     libm ? EM_ACT_NONE : kind, a, b);
        if (libm) em_activation_apply(act, yr, cols);
    }
}

/* ---- slots ---- */

#define SHARED_STEPS_PER_SLOT 4 /* ranges per slot in em_parallel_slots_shared */

int64_t em_band_rows(int64_t batch, int64_t rows, int64_t fit, int threads) {
    if (fit < 1) fit = 1;
    int64_t bands = (rows + fit - 1) / fit;
    if (threads > 1 && batch > 0 && (batch * bands) % threads != 0) {
        const int64_t per_image = ((batch * bands + threads - 1) / threads * threads + batch - 1) / batch;
        if (per_image <= rows) bands = per_image;
    }
    return bands > 0 ? (rows + bands - 1) / bands : rows;
}

int64_t em_band_reuse(float *buf, int64_t planes, int64_t plane, int64_t row, em_band_held *held,
                      int64_t n, int64_t lo, int64_t hi) {
    int64_t from = lo;
    if (held->n == n && held->lo <= lo && lo <= held->hi) {
        const int64_t keep = (held->hi < hi ? held->hi : hi) - lo + 1;
        if (lo > held->lo)
            for (int64_t p = 0; p < planes; p++)
                memmove(buf + p * plane, buf + p * plane + (lo - held->lo) * row,
                        (size_t)(keep * row) * sizeof(float));
        from = lo + keep;
    }
    *held = (em_band_held){n, lo, hi};
    return from;
}

int em_slot_count(em_exec *ex, int64_t n_items) {
    int threads = ex ? em_exec_threads(ex) : 1;
    if (threads < 1) threads = 1;
    if (n_items < threads) return n_items < 1 ? 1 : (int)n_items;
    return threads;
}

typedef struct slot_job {
    int64_t n_items;
    int n_slots;
    em_slot_fn fn;
    void *ctx;
} slot_job;

static void slot_range(void *ctx, int64_t begin, int64_t end) {
    const slot_job *job = ctx;
    for (int64_t s = begin; s < end; s++) {
        int64_t lo = job->n_items * s / job->n_slots;
        int64_t hi = job->n_items * (s + 1) / job->n_slots;
        if (hi > lo) job->fn(job->ctx, (int)s, lo, hi);
    }
}

void em_parallel_slots(em_exec *ex, int64_t n_items, em_slot_fn fn, void *ctx) {
    if (n_items <= 0) return;
    int n_slots = em_slot_count(ex, n_items);
    if (n_slots == 1 || !ex) {
        fn(ctx, 0, 0, n_items);
        return;
    }
    slot_job job = {n_items, n_slots, fn, ctx};
    em_parallel_for(ex, n_slots, 1, slot_range, &job);
}

typedef struct shared_slot_job {
    int64_t n_items, step;
    atomic_llong next; /* first item not yet handed out */
    em_slot_fn fn;
    void *ctx;
} shared_slot_job;

/* Each slot takes `step` items at a time until none are left: a thread that starts late
 * (asleep, or preempted on a busy machine) finds the work already shared out, instead of
 * the others waiting for its fixed half. */
static void shared_slot_range(void *ctx, int64_t begin, int64_t end) {
    shared_slot_job *job = ctx;
    for (int64_t s = begin; s < end; s++) {
        for (;;) {
            int64_t lo = atomic_fetch_add_explicit(&job->next, job->step, memory_order_relaxed);
            if (lo >= job->n_items) break;
            int64_t hi = lo + job->step < job->n_items ? lo + job->step : job->n_items;
            job->fn(job->ctx, (int)s, lo, hi);
        }
    }
}

void em_parallel_slots_shared(em_exec *ex, int64_t n_items, em_slot_fn fn, void *ctx) {
    if (n_items <= 0) return;
    int n_slots = em_slot_count(ex, n_items);
    if (n_slots == 1 || !ex) {
        fn(ctx, 0, 0, n_items);
        return;
    }
    int64_t step = n_items / ((int64_t)n_slots * SHARED_STEPS_PER_SLOT);
    shared_slot_job job = {.n_items = n_items, .step = step > 0 ? step : 1, .fn = fn, .ctx = ctx};
    atomic_init(&job.next, 0);
    em_parallel_for(ex, n_slots, 1, shared_slot_range, &job);
}

/* ---- BLAS ---- */

int64_t em_mul_size(int64_t a, int64_t b) {
    if (a < 0 || b < 0) return -1;
    if (a != 0 && b > INT64_MAX / a) return -1;
    return a * b;
}

static bool blas_fits(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb, int64_t ldc) {
    return m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX && ldb <= INT_MAX &&
           ldc <= INT_MAX;
}

/* Plain loops for sizes beyond BLAS's int (never expected in practice, but never wrong). */
#define NAIVE_GEMM(T)                                                                              \
    for (int64_t i = 0; i < m; i++)                                                                \
        for (int64_t j = 0; j < n; j++) {                                                          \
            T acc = 0;                                                                             \
            for (int64_t p = 0; p < k; p++)                                                        \
                acc += (trans_a ? a[p * lda + i] : a[i * lda + p]) *                               \
                       (trans_b ? b[j * ldb + p] : b[p * ldb + j]);                                \
            T *cij = &c[i * ldc + j];                                                              \
            *cij = alpha * acc + (beta == 0 ? 0 : beta * *cij);                                    \
        }

void em_sgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                     int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
        return;
    }
    if (!blas_fits(m, n, k, lda, ldb, ldc)) {
        NAIVE_GEMM(float)
        return;
    }
    if (m == 1 && (int64_t)n * k > 65536) {
        /* A row vector times B: gemv is memory bound but much faster than sgemm here. */
        if (trans_b)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)k, alpha, b, (int)ldb, a,
                        trans_a ? (int)lda : 1, beta, c, 1);
        else
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)k, (int)n, alpha, b, (int)ldb, a,
                        trans_a ? (int)lda : 1, beta, c, 1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda, b,
                (int)ldb, beta, c, (int)ldc);
}

void em_dgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                     const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                     double *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0.0 ? 0.0 : beta * c[i * ldc + j];
        return;
    }
    if (!blas_fits(m, n, k, lda, ldb, ldc)) {
        NAIVE_GEMM(double)
        return;
    }
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a, (int)lda, b,
                (int)ldb, beta, c, (int)ldc);
}

/* One output tile per slot: split N (in multiples of 16) when it is the wider side, else M. */
typedef struct gemm_job {
    bool trans_a, trans_b, split_n, is_double;
    int64_t m, n, k, lda, ldb, ldc;
    double alpha, beta;
    const void *a, *b;
    void *c;
    int n_tiles;
} gemm_job;

static void gemm_tile(void *ctx, int64_t begin, int64_t end) {
    const gemm_job *j = ctx;
    const int64_t extent = j->split_n ? j->n : j->m;
    const int64_t step = ((extent + j->n_tiles - 1) / j->n_tiles + 15) / 16 * 16;
    int64_t lo = begin * step, hi = end * step;
    if (hi > extent) hi = extent;
    if (lo >= hi) return;
    const int64_t len = hi - lo;
    size_t es = j->is_double ? sizeof(double) : sizeof(float);
    const char *a = j->a, *b = j->b;
    char *c = j->c;
    int64_t m = j->m, n = j->n;
    if (j->split_n) {
        b += (size_t)(j->trans_b ? lo * j->ldb : lo) * es;
        c += (size_t)lo * es;
        n = len;
    } else {
        a += (size_t)(j->trans_a ? lo : lo * j->lda) * es;
        c += (size_t)(lo * j->ldc) * es;
        m = len;
    }
    if (j->is_double)
        em_dgemm_serial(j->trans_a, j->trans_b, m, n, j->k, j->alpha, (const double *)a, j->lda,
                        (const double *)b, j->ldb, j->beta, (double *)c, j->ldc);
    else
        em_sgemm_serial(j->trans_a, j->trans_b, m, n, j->k, (float)j->alpha, (const float *)a,
                        j->lda, (const float *)b, j->ldb, (float)j->beta, (float *)c, j->ldc);
}

static void gemm_dispatch(em_exec *ex, gemm_job *job) {
    int threads = ex ? em_exec_threads(ex) : 1;
    double flops = 2.0 * (double)job->m * (double)job->n * (double)job->k;
    job->split_n = job->n >= job->m;
    int64_t extent = job->split_n ? job->n : job->m;
    int64_t max_tiles = extent / 32;
    int tiles = threads;
    if (tiles > max_tiles) tiles = (int)max_tiles;
    /* Small products stay on the calling thread, unless they stream a large B (a batch-1
     * classifier layer: memory-bound, so a second core's bandwidth pays off). */
    const bool streams_b = (double)job->k * (double)job->n >= 262144.0;
    if (threads <= 1 || (flops < 4.0e6 && !streams_b) || tiles <= 1) {
        job->n_tiles = 1;
        gemm_tile(job, 0, 1);
        return;
    }
    job->n_tiles = tiles;
    em_parallel_for(ex, tiles, 1, gemm_tile, job);
}

void em_sgemm(em_exec *ex, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc) {
    gemm_job job = {trans_a, trans_b, false, false, m, n, k, lda,
                    ldb,     ldc,     alpha, beta,  a, b, c, 1};
    gemm_dispatch(ex, &job);
}

void em_dgemm(em_exec *ex, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
              double alpha, const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
              double *c, int64_t ldc) {
    gemm_job job = {trans_a, trans_b, false, true, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c, 1};
    gemm_dispatch(ex, &job);
}
