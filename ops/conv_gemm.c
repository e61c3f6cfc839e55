/* Packed-weight SGEMM for convolutions (see conv_gemm.h).
 *
 * The AVX-512 kernel keeps an MR x NR block of C (8 rows x 3 vectors of 16) in 24 registers:
 * per k it loads 3 vectors of B and broadcasts the MR weights of the packed A panel. Loops:
 * K in chunks of KC (the B tile chunk, KC x NR, stays in L1 while every A panel of the call
 * streams past it from L2), then B tiles, then A panels. The first chunk starts from the bias;
 * the last adds Z and applies the activation before the single store of the tile.
 * The function carries its own target attribute and is chosen at run time, so it works
 * without target_clones (sanitizer builds, EMBER_NO_CLONES). */
#include "conv_gemm.h"

#include <string.h>

#define MR EM_CG_MR
#define NR EM_CG_NR
#define KC 128 /* 128 x 48 floats of B = 24 KiB: half of L1 */
#ifndef PF_A
#define PF_A 512
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define CG_X86 1
#include <immintrin.h>
#else
#define CG_X86 0
#endif

int64_t em_cg_packed_floats(int64_t rows, int64_t k) {
    return (rows + MR - 1) / MR * MR * k;
}

/* K runs in chunks of equal size (at most KC; the last may be shorter): a short last chunk
 * would pay the load / store of the C tile for little work. */
static int64_t chunk_size(int64_t k) {
    const int64_t n = (k + KC - 1) / KC;
    return n > 0 ? (k + n - 1) / n : KC;
}

/* Chunk k0 of panel p: the panels of one chunk are contiguous so a sweep over the rows
 * streams through memory (prefetchers follow it). */
static int64_t panel_offset(int64_t mpad, int64_t k, int64_t p, int64_t k0) {
    const int64_t cs = chunk_size(k), kc = k - k0 < cs ? k - k0 : cs;
    return k0 * mpad + p * MR * kc;
}

void em_cg_pack_panel(const float *w, int64_t ldw, int64_t rows, int64_t k, int64_t p,
                      float *dst) {
    const int64_t mpad = (rows + MR - 1) / MR * MR, cs = chunk_size(k);
    for (int64_t k0 = 0; k0 < k; k0 += cs) {
        const int64_t kc = k - k0 < cs ? k - k0 : cs;
        float *d = dst + panel_offset(mpad, k, p, k0);
        for (int64_t kk = 0; kk < kc; kk++)
            for (int64_t r = 0; r < MR; r++)
                d[kk * MR + r] = p * MR + r < rows ? w[r * ldw + k0 + kk] : 0.0f;
    }
}

void em_cg_pack(const float *w, int64_t rows, int64_t k, float *dst) {
    for (int64_t p = 0; p * MR < rows; p++) em_cg_pack_panel(w + p * MR * k, k, rows, k, p, dst);
}

/* Activations applied to the tile in registers; the others run on the stored tile. */
static bool act_in_registers(const em_activation *act) {
    return !act || act->kind == EM_ACT_NONE || act->kind == EM_ACT_RELU ||
           act->kind == EM_ACT_CLIP || act->kind == EM_ACT_LEAKY_RELU;
}

#if CG_X86

bool em_cg_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

#define TARGET_512 __attribute__((target("avx512f,avx2,fma")))

/* x after the activations the tile kernel applies in registers, one value at a time, with the
 * vector max / min semantics (a NaN gives the bound). */
static inline float act_scalar(const em_activation *act, float x) {
    if (act && act->kind == EM_ACT_RELU) return x > 0.0f ? x : 0.0f;
    if (act && act->kind == EM_ACT_CLIP) {
        x = x > act->alpha ? x : act->alpha;
        return x < act->beta ? x : act->beta;
    }
    if (act && act->kind == EM_ACT_LEAKY_RELU) return x < 0.0f ? x * act->alpha : x;
    return x;
}

/* One MR x (16 * NV) tile over kc steps of k. vr: valid rows; mask: valid lanes of the last
 * vector. first: start from the bias (else from C); last: add Z, activation.
 * TC (0 to FOLD_COLS) more columns right after the tile (the last columns of the output, too
 * few for a vector of their own) ride along: their rows are read from bt (row stride ldt), and
 * each is one 8-row vector of the panel's A values per k: the same multiply-adds in the same
 * order as in a tile, so a column's bits do not depend on where it falls. */
#define DEFINE_TILE(NAME, NV, TC)                                                                  \
    static inline __attribute__((always_inline)) TARGET_512 void NAME(                             \
        const float *restrict a, const float *restrict b, int64_t ldb, int64_t kc,                 \
        float *restrict c, int64_t ldc, int vr, __mmask16 mask, bool first, bool last,             \
        const float *bias, const float *z, int64_t ldz, const em_activation *act, const float *pf, \
        int64_t ldpf, const float *restrict bt, int64_t ldt) {                                     \
        __m512 acc[MR][NV];                                                                        \
        __m256 tacc[TC > 0 ? TC : 1];                                                              \
        _Pragma("GCC unroll 3") for (int t = 0; t < TC; t++) {                                     \
            float v[MR];                                                                           \
            for (int r = 0; r < MR; r++)                                                           \
                v[r] = r >= vr ? 0.0f : !first ? c[r * ldc + 16 * NV + t] : bias ? bias[r] : 0.0f; \
            tacc[t] = _mm256_loadu_ps(v);                                                          \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                     \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) {                                 \
                __mmask16 m = v == NV - 1 ? mask : (__mmask16)0xFFFF;                              \
                if (r >= vr)                                                                       \
                    acc[r][v] = _mm512_setzero_ps();                                               \
                else if (!first)                                                                   \
                    acc[r][v] = _mm512_maskz_loadu_ps(m, c + r * ldc + 16 * v);                    \
                else                                                                               \
                    acc[r][v] = bias ? _mm512_set1_ps(bias[r]) : _mm512_setzero_ps();              \
            }                                                                                      \
        }                                                                                          \
        for (int64_t k = 0; k < kc; k++) {                                                         \
            /* A streams from memory on the first B tile: fetch PF_A floats ahead. */              \
            _mm_prefetch((const char *)(a + k * MR + PF_A), _MM_HINT_T0);                          \
            if (pf) {                                                                              \
                _mm_prefetch((const char *)(pf + k * ldpf), _MM_HINT_T0);                          \
                _mm_prefetch((const char *)(pf + k * ldpf + 16), _MM_HINT_T0);                     \
                _mm_prefetch((const char *)(pf + k * ldpf + 32), _MM_HINT_T0);                     \
                _mm_prefetch((const char *)(pf + k * ldpf + 47), _MM_HINT_T0);                     \
            }                                                                                      \
            __m512 bv[NV];                                                                         \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) bv[v] =                           \
                v == NV - 1 ? _mm512_maskz_loadu_ps(mask, b + k * ldb + 16 * v)                    \
                            : _mm512_loadu_ps(b + k * ldb + 16 * v);                               \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                 \
                __m512 av = _mm512_set1_ps(a[k * MR + r]);                                         \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) acc[r][v] =                   \
                    _mm512_fmadd_ps(av, bv[v], acc[r][v]);                                         \
            }                                                                                      \
            if (TC > 0) {                                                                          \
                const __m256 a8 = _mm256_loadu_ps(a + k * MR);                                     \
                _Pragma("GCC unroll 3") for (int t = 0; t < TC; t++) tacc[t] =                     \
                    _mm256_fmadd_ps(a8, _mm256_set1_ps(bt[k * ldt + t]), tacc[t]);                 \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 3") for (int t = 0; t < TC; t++) {                                     \
            float v[MR];                                                                           \
            _mm256_storeu_ps(v, tacc[t]);                                                          \
            for (int r = 0; r < vr; r++) {                                                         \
                float x = v[r];                                                                    \
                if (last) {                                                                        \
                    if (z) x += z[r * ldz + 16 * NV + t];                                          \
                    x = act_scalar(act, x);                                                        \
                }                                                                                  \
                c[r * ldc + 16 * NV + t] = x;                                                      \
            }                                                                                      \
        }                                                                                          \
        if (last && (z || (act && act->kind != EM_ACT_NONE))) {                                    \
            const int kind = act ? (int)act->kind : EM_ACT_NONE;                                   \
            const __m512 zero = _mm512_setzero_ps();                                               \
            const __m512 lo = _mm512_set1_ps(act ? act->alpha : 0.0f);                             \
            const __m512 hi = _mm512_set1_ps(act ? act->beta : 0.0f);                              \
            _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                 \
                if (r >= vr) break;                                                                \
                _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) {                             \
                    __mmask16 m = v == NV - 1 ? mask : (__mmask16)0xFFFF;                          \
                    __m512 x = acc[r][v];                                                          \
                    if (z) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(m, z + r * ldz + 16 * v));   \
                    if (kind == EM_ACT_RELU)                                                       \
                        x = _mm512_max_ps(x, zero);                                                \
                    else if (kind == EM_ACT_CLIP)                                                  \
                        x = _mm512_min_ps(_mm512_max_ps(x, lo), hi);                               \
                    else if (kind == EM_ACT_LEAKY_RELU)                                            \
                        x = _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, lo); \
                    acc[r][v] = x;                                                                 \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {                                     \
            if (r >= vr) break;                                                                    \
            _Pragma("GCC unroll 3") for (int v = 0; v < NV; v++) {                                 \
                if (v == NV - 1)                                                                   \
                    _mm512_mask_storeu_ps(c + r * ldc + 16 * v, mask, acc[r][v]);                  \
                else                                                                               \
                    _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);                             \
            }                                                                                      \
        }                                                                                          \
    }
DEFINE_TILE(tile_1, 1, 0)
DEFINE_TILE(tile_2, 2, 0)
DEFINE_TILE(tile_3, 3, 0)
DEFINE_TILE(tile_3_tail1, 3, 1)
DEFINE_TILE(tile_3_tail2, 3, 2)

/* A tile of `cols` columns (4 to NR): the kernel of as many vectors, the last one masked; a
 * full tile may carry tc tail columns read from bt (row stride ldt). */
static inline __attribute__((always_inline)) TARGET_512 void
tile(int64_t cols, const float *a, const float *b, int64_t ldb, int64_t kc, float *c, int64_t ldc,
     int vr, bool first, bool last, const float *bias, const float *z, int64_t ldz,
     const em_activation *act, const float *pf, int64_t ldpf, int tc, const float *bt,
     int64_t ldt) {
    const int nv = (int)((cols + 15) / 16);
    const __mmask16 mask = cols % 16 ? (__mmask16)((1u << (cols % 16)) - 1) : 0xFFFF;
    /* Full tiles (the bulk of the work) with a constant mask: plain loads in the loop. */
    const __mmask16 full = 0xFFFF;
#define TILE_ARGS(m) a, b, ldb, kc, c, ldc, vr, m, first, last, bias, z, ldz, act, pf, ldpf, bt, ldt
    if (tc == 1)
        tile_3_tail1(TILE_ARGS(full));
    else if (tc == 2)
        tile_3_tail2(TILE_ARGS(full));
    else if (cols == NR)
        tile_3(TILE_ARGS(full));
    else if (nv == 3)
        tile_3(TILE_ARGS(mask));
    else if (nv == 2)
        tile_2(TILE_ARGS(mask));
    else
        tile_1(TILE_ARGS(mask));
#undef TILE_ARGS
}

/* A last tile of at most TAIL_COLS columns (e.g. the 49th column of a 7x7 output): a whole
 * vector per row for it would compute 16 lanes for each useful one, so these columns run the
 * other way round: 8 rows of the A panel in one vector, times each column's B value. The
 * arithmetic is the tile kernel's (bias, then one FMA per k in order, then Z, activation), so
 * a column gives the same bits whichever way it is computed. */
#define TAIL_COLS 3

#define TAIL_PANELS 4 /* A panels in flight: independent FMA chains */

__attribute__((target("avx512f,avx2,fma"))) static void
tail_columns(const float *a, int64_t mpad, int64_t m0, int64_t rows, int64_t k, const float *b,
             int64_t ld, int cols, float *c, int64_t ldc, const float *bias, const float *z,
             int64_t ldz, const em_activation *act) {
    const int64_t cs = chunk_size(k);
    for (int64_t r0 = 0; r0 < rows; r0 += TAIL_PANELS * MR) {
        const int np = (int)((rows - r0 + MR - 1) / MR < TAIL_PANELS ? (rows - r0 + MR - 1) / MR
                                                                     : TAIL_PANELS);
        __m256 acc[TAIL_PANELS][TAIL_COLS];
        for (int q = 0; q < np; q++) {
            float b0[MR] = {0};
            for (int r = 0; r < MR && bias && r0 + q * MR + r < rows; r++)
                b0[r] = bias[r0 + q * MR + r];
            for (int j = 0; j < cols; j++) acc[q][j] = _mm256_loadu_ps(b0);
        }
        for (int64_t k0 = 0; k0 < k; k0 += cs) {
            const int64_t kc = k - k0 < cs ? k - k0 : cs;
            const float *ap[TAIL_PANELS];
            for (int q = 0; q < np; q++) ap[q] = a + panel_offset(mpad, k, (m0 + r0) / MR + q, k0);
            for (int64_t kk = 0; kk < kc; kk++) {
                __m256 bv[TAIL_COLS];
                for (int j = 0; j < cols; j++) bv[j] = _mm256_set1_ps(b[(k0 + kk) * ld + j]);
                for (int q = 0; q < np; q++) {
                    const __m256 av = _mm256_loadu_ps(ap[q] + kk * MR);
                    for (int j = 0; j < cols; j++)
                        acc[q][j] = _mm256_fmadd_ps(av, bv[j], acc[q][j]);
                }
            }
        }
        for (int q = 0; q < np; q++)
            for (int j = 0; j < cols; j++) {
                float v[MR];
                _mm256_storeu_ps(v, acc[q][j]);
                for (int r = 0; r < MR && r0 + q * MR + r < rows; r++) {
                    const int64_t row = r0 + q * MR + r;
                    float x = v[r];
                    if (z) x += z[row * ldz + j];
                    c[row * ldc + j] = act_scalar(act, x);
                }
            }
    }
}

/* A short k (the pointwise layers over few channels): B is small enough to stay in cache for
 * the whole call, and C is what costs: each A panel sweeps all the columns, so its MR rows
 * are written front to back as a few long streams the prefetchers follow, instead of every
 * row of the call advancing one tile at a time. */
#define SHORT_K 64

/* Row stride of B (floats) beyond which the next B tile is prefetched by software. */
#define FAR_ROWS 512

/* Columns (1 or 2) after the last full tile that ride along with it (0: none). They run on
 * their own (tail_columns) in a product this narrow; with 3 columns, which would not leave the
 * tile kernel enough registers; and when K takes several chunks while the call owns only part
 * of C's rows: the tile kernel stores them once per chunk, and the line they share with the
 * next columns (another thread's, when a plane is split between threads) would bounce between
 * the cores each time (measured 4-7% slower on MobileNetV2's 14x14 projections). */
#define FOLD_COLS 2
static int folded_tail(int64_t n, int64_t k, int64_t ldc) {
    const int64_t rest = n % NR;
    const bool one_store = k <= SHORT_K || chunk_size(k) == k || n == ldc;
    return n > NR && rest <= FOLD_COLS && one_store ? (int)rest : 0;
}

TARGET_512 static void short_k_rows(const float *a, int64_t mpad, int64_t m0, int64_t rows,
                                    int64_t k, const float *b, int64_t n, int64_t b_tile_stride,
                                    int64_t ldb, int64_t ldb_tail, float *c, int64_t ldc,
                                    const float *bias, const float *z, int64_t ldz,
                                    const em_activation *act) {
    const int64_t n_tiles = (n + NR - 1) / NR;
    const int tail = folded_tail(n, k, ldc);
    for (int64_t r0 = 0; r0 < rows; r0 += MR) {
        const float *ap = a + panel_offset(mpad, k, (m0 + r0) / MR, 0);
        const int vr = (int)(rows - r0 < MR ? rows - r0 : MR);
        const float *bp = bias ? bias + r0 : NULL;
        for (int64_t t = 0; t < n_tiles; t++) {
            const int64_t cols = n - t * NR < NR ? n - t * NR : NR;
            const int64_t ld = cols < NR ? ldb_tail : ldb;
            const float *bt = b + t * b_tile_stride;
            float *cp = c + r0 * ldc + t * NR;
            const float *zp = z ? z + r0 * ldz + t * NR : NULL;
            if (cols <= TAIL_COLS) {
                if (!tail)
                    tail_columns(a, mpad, m0 + r0, vr, k, bt, ld, (int)cols, cp, ldc, bp, zp, ldz,
                                 act);
                continue;
            }
            const int tc = t == n_tiles - 2 ? tail : 0;
            tile(cols, ap, bt, ld, k, cp, ldc, vr, true, true, bp, zp, ldz, act, NULL, 0, tc,
                 bt + b_tile_stride, ldb_tail);
        }
    }
}

TARGET_512 static void gemm_avx512(const float *a, int64_t mpad, int64_t m0, int64_t rows,
                                   int64_t k, const float *b, int64_t n, int64_t b_tile_stride,
                                   int64_t ldb, int64_t ldb_tail, float *c, int64_t ldc,
                                   const em_cg_epilogue *epi) {
    const int64_t n_tiles = (n + NR - 1) / NR;
    const em_activation *act = epi && !act_in_registers(epi->act) ? NULL : epi ? epi->act : NULL;
    const float *bias = epi ? epi->bias : NULL, *z = epi ? epi->z : NULL;
    const int64_t ldz = epi ? epi->ldz : 0;
    const int64_t cs = chunk_size(k);
    const bool far_rows = b_tile_stride < k * ldb && ldb >= FAR_ROWS;
    const int tail = folded_tail(n, k, ldc);
    if (k <= SHORT_K) {
        short_k_rows(a, mpad, m0, rows, k, b, n, b_tile_stride, ldb, ldb_tail, c, ldc, bias, z, ldz,
                     act);
        return;
    }
    for (int64_t k0 = 0; k0 < k; k0 += cs) {
        const int64_t kc = k - k0 < cs ? k - k0 : cs;
        const bool first = k0 == 0, last = k0 + kc == k;
        for (int64_t t = 0; t < n_tiles; t++) {
            const int64_t cols = n - t * NR < NR ? n - t * NR : NR;
            const int64_t ld = cols < NR ? ldb_tail : ldb;
            if (cols <= TAIL_COLS) {
                if (first && !tail) /* all chunks of k at once */
                    tail_columns(a, mpad, m0, rows, k, b + t * b_tile_stride, ld, (int)cols,
                                 c + t * NR, ldc, bias, z ? z + t * NR : NULL, ldz, act);
                continue;
            }
            const float *bt = b + t * b_tile_stride + k0 * ld;
            /* The next tile's rows of this chunk, fetched while the first panel runs, when B's
             * rows are far apart (the input planes of a pointwise conv on a large plane): the
             * hardware prefetchers follow neither one short piece per 4 KiB page nor a stride
             * that long. */
            const int64_t ld_next = n - (t + 1) * NR < NR ? ldb_tail : ldb;
            const float *pf =
                far_rows && t + 1 < n_tiles ? b + (t + 1) * b_tile_stride + k0 * ld_next : NULL;
            const int tc = t == n_tiles - 2 ? tail : 0;
            for (int64_t r0 = 0; r0 < rows; r0 += MR) {
                const float *ap = a + panel_offset(mpad, k, (m0 + r0) / MR, k0);
                float *cp = c + r0 * ldc + t * NR;
                const int vr = (int)(rows - r0 < MR ? rows - r0 : MR);
                const float *bp = bias ? bias + r0 : NULL;
                const float *zp = z ? z + r0 * ldz + t * NR : NULL;
                tile(cols, ap, bt, ld, kc, cp, ldc, vr, first, last, bp, zp, ldz, act,
                     r0 == 0 ? pf : NULL, ld_next, tc, b + (t + 1) * b_tile_stride + k0 * ldb_tail,
                     ldb_tail);
            }
        }
    }
}

#else

bool em_cg_available(void) {
    return false;
}

#endif

/* Portable version of the same contract (non-x86 builds; never chosen when the vector
 * kernel is unavailable, but kept correct). */
static void gemm_portable(const float *a, int64_t mpad, int64_t m0, int64_t rows, int64_t k,
                          const float *b, int64_t n, int64_t b_tile_stride, int64_t ldb,
                          int64_t ldb_tail, float *c, int64_t ldc, const em_cg_epilogue *epi) {
    for (int64_t r = 0; r < rows; r++) {
        const int64_t row = m0 + r;
        for (int64_t j = 0; j < n; j++) {
            const int64_t t = j / NR, cols = n - t * NR < NR ? n - t * NR : NR;
            const float *bt = b + t * b_tile_stride + j % NR;
            const int64_t ld = cols < NR ? ldb_tail : ldb;
            float s = epi && epi->bias ? epi->bias[r] : 0.0f;
            for (int64_t kk = 0; kk < k; kk++) {
                const int64_t cs = chunk_size(k);
                const float *ap = a + panel_offset(mpad, k, row / MR, kk / cs * cs);
                s += ap[kk % cs * MR + row % MR] * bt[kk * ld];
            }
            if (epi && epi->z) s += epi->z[r * epi->ldz + j];
            c[r * ldc + j] = s;
        }
    }
    if (epi && epi->act && epi->act->kind != EM_ACT_NONE)
        for (int64_t r = 0; r < rows; r++) em_activation_apply(epi->act, c + r * ldc, n);
}

void em_cg_gemm(const float *a, int64_t mpad, int64_t m0, int64_t rows, int64_t k, const float *b,
                int64_t n, int64_t b_tile_stride, int64_t ldb, int64_t ldb_tail, float *c,
                int64_t ldc, const em_cg_epilogue *epi) {
    if (rows <= 0 || n <= 0) return;
#if CG_X86
    if (k > 0 && em_cg_available()) {
        gemm_avx512(a, mpad, m0, rows, k, b, n, b_tile_stride, ldb, ldb_tail, c, ldc, epi);
        if (epi && !act_in_registers(epi->act))
            for (int64_t r = 0; r < rows; r++) em_activation_apply(epi->act, c + r * ldc, n);
        return;
    }
#endif
    gemm_portable(a, mpad, m0, rows, k, b, n, b_tile_stride, ldb, ldb_tail, c, ldc, epi);
}
