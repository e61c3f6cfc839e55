/* The packed-weight convolution GEMM (ops/conv_gemm.c) against a naive float64 product, over
 * shapes that are not multiples of the register block (rows, columns, K across chunk
 * boundaries), both B layouts (im2col tiles and a strided matrix), row offsets into the packed
 * weights, and every epilogue (bias, residual Z, each fused activation). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../ops/conv_gemm.h"

static uint64_t rng = 0x243F6A8885A308D3ull;
static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static double act_ref(const em_activation *a, double v) {
    switch (a->kind) {
    case EM_ACT_RELU:
        return v < 0 ? 0 : v;
    case EM_ACT_LEAKY_RELU:
        return v < 0 ? a->alpha * v : v;
    case EM_ACT_CLIP:
        return v < a->alpha ? a->alpha : v > a->beta ? a->beta : v;
    case EM_ACT_SIGMOID:
        return 1 / (1 + exp(-v));
    case EM_ACT_TANH:
        return tanh(v);
    case EM_ACT_HARD_SIGMOID:
        return fmin(1, fmax(0, a->alpha * v + a->beta));
    default:
        return v;
    }
}

/* C rows [m0, m0 + rows) of W (M x K) times B (K x N), tiled (`tiled`: each EM_CG_NR-column
 * tile stored K x width contiguously) or plain row-major with row length ldb >= N. */
static void check_ld(int64_t M, int64_t m0, int64_t rows, int64_t K, int64_t N, int64_t ldb,
                     int64_t ldc, bool tiled, bool bias, bool z, em_activation act) {
    float *w = malloc((size_t)(M * K) * sizeof(float));
    for (int64_t i = 0; i < M * K; i++) w[i] = frand();
    const int64_t mpad = (M + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    cr_assert_eq(em_cg_packed_floats(M, K), mpad * K);
    float *packed = malloc((size_t)(mpad * K) * sizeof(float));
    em_cg_pack(w, M, K, packed);
    float *b = malloc((size_t)(K * ldb) * sizeof(float));
    for (int64_t i = 0; i < K * ldb; i++) b[i] = frand();
    float *bt = malloc((size_t)(K * N) * sizeof(float));
    const int64_t tail = N % EM_CG_NR ? N % EM_CG_NR : EM_CG_NR;
    for (int64_t j = 0; j < N; j++) {
        const int64_t t = j / EM_CG_NR, width = N - t * EM_CG_NR < EM_CG_NR ? tail : EM_CG_NR;
        for (int64_t k = 0; k < K; k++)
            bt[t * EM_CG_NR * K + k * width + j % EM_CG_NR] = b[k * ldb + j];
    }
    float *bi = malloc((size_t)M * sizeof(float));
    for (int64_t i = 0; i < M; i++) bi[i] = frand();
    float *zd = malloc((size_t)(rows * ldc) * sizeof(float));
    for (int64_t i = 0; i < rows * ldc; i++) zd[i] = frand();
    float *c = malloc((size_t)(rows * ldc) * sizeof(float));
    for (int64_t i = 0; i < rows * ldc; i++) c[i] = 1234.0f; /* must be overwritten */
    em_cg_epilogue e = {bias ? bi + m0 : NULL, z ? zd : NULL, ldc, &act};
    if (tiled)
        em_cg_gemm(packed, mpad, m0, rows, K, bt, N, EM_CG_NR * K, EM_CG_NR, tail, c, ldc, &e);
    else
        em_cg_gemm(packed, mpad, m0, rows, K, b, N, EM_CG_NR, ldb, ldb, c, ldc, &e);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < N; j++) {
            double s = bias ? bi[m0 + r] : 0.0, mag = fabs(s);
            for (int64_t k = 0; k < K; k++) {
                double p = (double)w[(m0 + r) * K + k] * b[k * ldb + j];
                s += p;
                mag += fabs(p);
            }
            if (z) s += zd[r * ldc + j], mag += fabs(zd[r * ldc + j]);
            const double want = act_ref(&act, s), got = c[r * ldc + j];
            cr_assert(fabs(got - want) <= 1e-5 * mag + 1e-6,
                      "M %lld m0 %lld rows %lld K %lld N %lld tiled %d act %d: C[%lld][%lld] = %g, "
                      "want %g",
                      (long long)M, (long long)m0, (long long)rows, (long long)K, (long long)N,
                      tiled, act.kind, (long long)r, (long long)j, got, want);
        }
        for (int64_t j = N; j < ldc; j++)
            cr_assert_eq(c[r * ldc + j], 1234.0f, "wrote past column N (row %lld)", (long long)r);
    }
    free(w), free(packed), free(b), free(bt), free(bi), free(zd), free(c);
}

/* Plain B with a row stride larger than N (like a conv input read in place). */
static void check(int64_t M, int64_t m0, int64_t rows, int64_t K, int64_t N, bool tiled, bool bias,
                  bool z, em_activation act) {
    check_ld(M, m0, rows, K, N, N + 5, N + 3, tiled, bias, z, act);
}

Test(conv_gemm, awkward_shapes) {
    const int64_t ms[] = {1, 7, 8, 13, 24, 67};
    /* K up to 64 runs panel by panel over all columns, longer K chunk by chunk. */
    const int64_t ks[] = {1, 5, 24, 64, 65, 127, 128, 129, 300};
    const int64_t ns[] = {1, 15, 16, 17, 47, 48, 49, 100, 145};
    const em_activation none = {EM_ACT_NONE, 0, 0};
    int iter = 0;
    for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
        for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++)
            for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++, iter++)
                check(ms[a], 0, ms[a], ks[b], ns[c], iter % 2 == 0, iter % 3 != 0, iter % 4 == 1,
                      none);
}

/* Rows of B far apart (a pointwise conv's input planes on a large plane): the next column tile
 * is prefetched while the current one runs, which must not change what is computed. */
Test(conv_gemm, far_apart_rows) {
    const em_activation relu = {EM_ACT_RELU, 0, 0};
    const int64_t ks[] = {65, 200, 300};
    const int64_t ns[] = {49, 97, 145, 480};
    for (size_t a = 0; a < sizeof ks / sizeof ks[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            check_ld(16, 0, 16, ks[a], ns[b], 3025, ns[b] + 3, false, true, false, relu);
            check_ld(45, 8, 37, ks[a], ns[b], ns[b] + 700, ns[b], false, a % 2 == 0, b % 2 == 1,
                     relu);
        }
}

/* Calls that own whole rows of C (row stride = the columns), B plain and tiled: 1-2 tail
 * columns ride along with the last full tile over several chunks of K. */
Test(conv_gemm, whole_rows) {
    const em_activation relu = {EM_ACT_RELU, 0, 0};
    const int64_t ns[] = {49, 50, 51, 97, 145};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++)
        for (int tiled = 0; tiled < 2; tiled++) {
            check_ld(37, 0, 37, 300, ns[i], ns[i] + 5, ns[i], tiled, true, i % 2 == 0, relu);
            check_ld(24, 0, 24, 40, ns[i], ns[i], ns[i], tiled, i % 2 == 1, true, relu);
        }
}

Test(conv_gemm, row_offsets_and_epilogues) {
    const em_activation acts[] = {
        {EM_ACT_NONE, 0, 0},
        {EM_ACT_RELU, 0, 0},
        {EM_ACT_LEAKY_RELU, 0.1f, 0},
        {EM_ACT_CLIP, -0.3f, 0.5f},
        {EM_ACT_SIGMOID, 0, 0},
        {EM_ACT_TANH, 0, 0},
        {EM_ACT_HARD_SIGMOID, 0.2f, 0.5f},
    };
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        /* Rows 16..36 of 45 (last panel partial), K over two chunks, tails in N. */
        check(45, 16, 21, 200, 113, i % 2 == 0, true, true, acts[i]);
        check(45, 40, 5, 9, 50, i % 2 == 1, i % 3 == 0, i % 2 == 0, acts[i]);
    }
}

/* 1-3 columns past the last full tile ride along with it, and a product of only 1-3 columns
 * takes a path of its own (both 8 rows per vector); their columns must carry the same bits as
 * when they sit inside a wider tile, so that how columns are split into panels (which depends
 * on the thread count) never changes a result. */
static void tail_columns_same_bits(int64_t K) {
    const int64_t M = 21, ld = 64;
    const em_activation acts[] = {{EM_ACT_NONE, 0, 0},
                                  {EM_ACT_RELU, 0, 0},
                                  {EM_ACT_CLIP, -0.3f, 0.5f},
                                  {EM_ACT_LEAKY_RELU, 0.1f, 0}};
    float *w = malloc(sizeof(float) * (size_t)(M * K));
    float *packed = malloc(sizeof(float) * (size_t)em_cg_packed_floats(M, K));
    float *b = malloc(sizeof(float) * (size_t)(K * ld)), *bias = malloc(sizeof(float) * M);
    float *z = malloc(sizeof(float) * (size_t)(M * ld));
    float *wide = malloc(sizeof(float) * (size_t)(M * ld)),
          *narrow = malloc(sizeof(float) * (size_t)(M * ld));
    for (int64_t i = 0; i < M * K; i++) w[i] = frand();
    for (int64_t i = 0; i < K * ld; i++) b[i] = frand();
    for (int64_t i = 0; i < M * ld; i++) z[i] = frand();
    for (int64_t i = 0; i < M; i++) bias[i] = frand();
    em_cg_pack(w, M, K, packed);
    const int64_t mpad = (M + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
        for (int64_t tail = 1; tail <= 3; tail++) {
            const em_cg_epilogue epi = {
                .bias = bias, .z = a % 2 ? z : NULL, .ldz = ld, .act = &acts[a]};
            em_cg_gemm(packed, mpad, 0, M, K, b, ld, EM_CG_NR, ld, ld, wide, ld, &epi);
            em_cg_gemm(packed, mpad, 0, M, K, b, EM_CG_NR + tail, EM_CG_NR, ld, ld, narrow, ld,
                       &epi);
            for (int64_t r = 0; r < M; r++)
                for (int64_t j = 0; j < EM_CG_NR + tail; j++)
                    cr_assert(memcmp(&wide[r * ld + j], &narrow[r * ld + j], sizeof(float)) == 0,
                              "K %lld act %d tail %lld: C[%lld][%lld] %.9g vs %.9g", (long long)K,
                              acts[a].kind, (long long)tail, (long long)r, (long long)j,
                              wide[r * ld + j], narrow[r * ld + j]);
            /* Whole rows of C (row stride = the columns): K's chunks store the tail columns
             * in passing. */
            const int64_t own_ld = EM_CG_NR + tail;
            em_cg_gemm(packed, mpad, 0, M, K, b, own_ld, EM_CG_NR, ld, ld, narrow, own_ld, &epi);
            for (int64_t r = 0; r < M; r++)
                cr_assert(
                    memcmp(&wide[r * ld], &narrow[r * own_ld], sizeof(float) * (size_t)own_ld) == 0,
                    "K %lld act %d tail %lld: whole rows differ in row %lld", (long long)K,
                    acts[a].kind, (long long)tail, (long long)r);
            /* The same columns as a product of their own. */
            em_cg_gemm(
                packed, mpad, 0, M, K, b + EM_CG_NR, tail, EM_CG_NR, ld, ld, narrow + EM_CG_NR, ld,
                &(em_cg_epilogue){
                    .bias = bias, .z = a % 2 ? z + EM_CG_NR : NULL, .ldz = ld, .act = &acts[a]});
            for (int64_t r = 0; r < M; r++)
                cr_assert(memcmp(&wide[r * ld + EM_CG_NR], &narrow[r * ld + EM_CG_NR],
                                 sizeof(float) * (size_t)tail) == 0,
                          "K %lld act %d: %lld columns alone differ in row %lld", (long long)K,
                          acts[a].kind, (long long)tail, (long long)r);
        }
    free(w), free(packed), free(b), free(bias), free(z), free(wide), free(narrow);
}

Test(conv_gemm, tail_columns_same_bits) {
    tail_columns_same_bits(24); /* short K: panel by panel */
    tail_columns_same_bits(200);
}
