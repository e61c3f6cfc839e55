/* Helpers shared by the compute-heavy kernels (gemm.c, conv.c, rnn.c): the fused activation
 * epilogue, threaded BLAS calls and per-slot work splitting. Internal to ops/. */
#ifndef EMBER_OPS_LINALG_H
#define EMBER_OPS_LINALG_H

#include <stdbool.h>

#include "kernel.h"

/* Hot float loops are compiled for AVX-512, AVX2 and the baseline; the loader picks one for
 * the CPU (ifunc: glibc only). Not under the sanitizers, which do not mix with ifunc resolvers
 * (TSan: they crash while the program is relocated); EMBER_NO_CLONES turns them off too. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__GLIBC__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__) && !defined(EMBER_NO_CLONES)
#define EM_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EM_VECTOR_CLONES
#endif

/* ---- fused activations (domain "ai.ember": FusedConv / FusedGemm / FusedMatMul) ---- */

typedef enum em_act_kind {
    EM_ACT_NONE = 0,
    EM_ACT_RELU,
    EM_ACT_LEAKY_RELU, /* alpha (default 0.01) */
    EM_ACT_CLIP,       /* alpha = min, beta = max (defaults -inf, +inf) */
    EM_ACT_SIGMOID,
    EM_ACT_TANH,
    EM_ACT_HARD_SIGMOID, /* alpha (default 0.2), beta (default 0.5) */
} em_act_kind;

typedef struct em_activation {
    em_act_kind kind;
    float alpha, beta;
} em_activation;

/* Read attributes `activation` (string) and `activation_params` (floats) of a fused node.
 * No `activation` attribute means EM_ACT_NONE. Unknown names or bad parameter counts fail. */
ember_status em_activation_from_node(const em_node *node, em_activation *act, ember_error *err);
/* The same from attributes of other names (a node fusing several activations). */
ember_status em_activation_from_attrs(const em_node *node, const char *name_attr,
                                      const char *params_attr, em_activation *act,
                                      ember_error *err);

/* x[i] = act(x[i]) for n contiguous floats. */
void em_activation_apply(const em_activation *act, float *x, int64_t n);

/* The conv / gemm epilogue over a block of `rows` x `cols` floats with row stride ldy:
 *   y = act(y + row_bias[r] + col_bias[c] + z)
 * Any of row_bias, col_bias, z may be NULL; z has row stride ldz. One pass over y. */
void em_epilogue(float *y, int64_t rows, int64_t cols, int64_t ldy, const float *row_bias,
                 const float *col_bias, const float *z, int64_t ldz, const em_activation *act);

/* ---- splitting work into slots ---- */

/* fn(ctx, slot, begin, end): the items [begin, end) of one slot. Slots are numbered
 * 0..n_slots-1 and each runs once, so per-slot scratch can be indexed by `slot`. */
typedef void (*em_slot_fn)(void *ctx, int slot, int64_t begin, int64_t end);

/* Rows per band when `rows` rows of each of `batch` images are cut into bands of at most
 * `fit` rows (what fits the cache), evened out so that the batch's bands split evenly over the
 * threads where they can (one image at 2 threads: an even number of bands). */
int64_t em_band_rows(int64_t batch, int64_t rows, int64_t fit, int threads);

/* What a band buffer holds: rows [lo, hi] of image n (n = -1: nothing yet). */
typedef struct em_band_held {
    int64_t n, lo, hi;
} em_band_held;

/* Before rows [lo, hi] of image n are made in a band buffer (`planes` planes `plane` floats
 * apart, rows of `row` floats, row lo at the top of each plane): the rows it still holds from
 * the previous band of the same image move to the top instead of being made again. Returns the
 * first row still to make, and records the buffer's new content in *held. */
int64_t em_band_reuse(float *buf, int64_t planes, int64_t plane, int64_t row, em_band_held *held,
                      int64_t n, int64_t lo, int64_t hi);

/* Number of slots em_parallel_slots will use for n_items (at least 1 when n_items > 0). */
int em_slot_count(em_exec *ex, int64_t n_items);
/* Split n_items into em_slot_count() contiguous ranges run through em_parallel_for. */
void em_parallel_slots(em_exec *ex, int64_t n_items, em_slot_fn fn, void *ctx);
/* The same slots and scratch, but items are handed out in small ranges to whichever slot
 * asks next (a slot may see several ranges, or none), so a late thread does not hold up the
 * others. For kernels whose items do not depend on which slot or range computes them. */
void em_parallel_slots_shared(em_exec *ex, int64_t n_items, em_slot_fn fn, void *ctx);

/* ---- BLAS ----
 * ember does the threading: BLAS calls are made from inside em_parallel_for chunks, so
 * OpenBLAS itself must run one thread per call (openblas_set_num_threads(1) or
 * OPENBLAS_NUM_THREADS=1, set by the runtime, not by kernels). Otherwise each of ember's
 * threads fans out into OpenBLAS threads (oversubscription), and a session asked to use one
 * thread uses every core. */

/* Row-major C = alpha * op(A) * op(B) + beta * C, split into output tiles across the run's
 * threads when the product is large enough (each tile is one BLAS call). */
void em_sgemm(em_exec *ex, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
              const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
              int64_t ldc);
void em_dgemm(em_exec *ex, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
              double alpha, const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
              double *c, int64_t ldc);

/* The same on the calling thread only (for use inside em_parallel_* chunks). */
void em_sgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                     const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                     int64_t ldc);
void em_dgemm_serial(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                     const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                     double *c, int64_t ldc);

/* Overflow-checked products for sizes taken from untrusted shapes (return -1 on overflow or
 * a negative factor). */
int64_t em_mul_size(int64_t a, int64_t b);

/* Python-style floor division (for pads derived from a negative total). */
static inline int64_t em_floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

#endif
