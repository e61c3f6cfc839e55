/* Depthwise 3x3 convolution of one float32 plane with AVX-512 (see conv_dw.h).
 *
 * Per output row, 16 outputs per vector: the three kernel rows that fall inside the input are
 * read with masked loads whose mask keeps the lanes inside [0, W) and inside the row's
 * outputs, so the left / right pads and a short last vector need no scalar code. Stride 2
 * loads 32 consecutive inputs and splits them into even / odd lanes with one permute each.
 * The function carries its own target attribute and is chosen at run time, so it also works
 * without target_clones (sanitizer builds, EMBER_NO_CLONES). */
#include "conv_dw.h"

#include "conv_gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define DW_X86 1
#include "simd512.h"
#else
#define DW_X86 0
#endif

/* Widest input row: kernel rows off the plane read a row of zeros this wide. */
#define ZERO_ROW 2048

bool em_dw3x3_supported(const em_dw_plane *p) {
    return DW_X86 && em_cg_available() && (p->sx == 1 || p->sx == 2) && p->sy >= 1 && p->px >= 0 &&
           p->px < 3 && p->py >= 0 && p->py < 3 && p->H > 0 && p->W > 0 && p->W + 64 <= ZERO_ROW &&
           p->OW > 0 && p->OH > 0;
}

#if DW_X86

#define TARGET_512 EM_TARGET_512

/* The epilogue's constants, set once per plane. */
typedef struct epi_regs {
    int kind; /* EM_ACT_NONE when the activation runs on the stored row instead */
    __m512 lo, hi;
} epi_regs;

/* z (when not NULL) then the activation `kind` (a constant in each specialization below). */
static inline __attribute__((always_inline)) TARGET_512 __m512 epilogue(__m512 acc, __mmask16 om,
                                                                        const float *z, int kind,
                                                                        __m512 lo, __m512 hi) {
    if (z) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(om, z));
    return em512_activate(acc, kind, lo, hi);
}

/* Column blocks of one output row: per block of 16 outputs, the first input column and the
 * load masks (stride 1: one per kx; stride 2: the four 16-column loads), shared by all rows. */
#define MAX_BLOCKS 64 /* output rows up to 1024 wide; wider rows go block by block */

typedef struct col_block {
    int64_t c0;
    __mmask16 om, m[4];
    bool full; /* every load mask is all lanes: plain loads */
} col_block;

static void col_blocks(const em_dw_plane *p, int64_t ox0, int n_blocks, col_block *b) {
    for (int i = 0; i < n_blocks; i++) {
        const int64_t ox = ox0 + 16 * (int64_t)i, n = p->OW - ox < 16 ? p->OW - ox : 16;
        b[i].om = (__mmask16)((1u << n) - 1);
        if (p->sx == 1) {
            b[i].c0 = ox - p->px;
            for (int k = 0; k < 3; k++) b[i].m[k] = em512_inside(b[i].c0 + k, p->W) & b[i].om;
            b[i].m[3] = 0;
        } else {
            b[i].c0 = 2 * ox - p->px;
            static const int offset[4] = {0, 16, 2, 18};
            for (int k = 0; k < 4; k++) b[i].m[k] = em512_inside(b[i].c0 + offset[k], p->W);
        }
        b[i].full = b[i].om == 0xFFFF && b[i].m[0] == 0xFFFF && b[i].m[1] == 0xFFFF &&
                    b[i].m[2] == 0xFFFF && (p->sx == 1 || b[i].m[3] == 0xFFFF);
    }
}

/* Kernel rows above / below the plane read zeros from here. Read-only. */
static const float zero_row[ZERO_ROW + 64];

/* Input row iy of a plane x whose first row is x_row0 (row stride W); rows outside the
 * plane [0, H) read zeros. */
static inline const float *input_row(const float *x, int64_t iy, int64_t H, int64_t W,
                                     int64_t x_row0) {
    return iy >= 0 && iy < H ? x + (iy - x_row0) * W : zero_row + 32;
}

/* One block of 16 outputs: acc = bias + the nine taps. LD(k, col) loads 16 columns of each
 * kernel row r0..r2 with load mask k (0..3). */
#define BLOCK_S1(LD)                                                                               \
    {                                                                                              \
        __m512 acc2 = _mm512_mul_ps(LD(0, r1, c), w3);                                             \
        acc = _mm512_fmadd_ps(LD(0, r0, c), w0, acc);                                              \
        acc2 = _mm512_fmadd_ps(LD(1, r1, c + 1), w4, acc2);                                        \
        acc = _mm512_fmadd_ps(LD(1, r0, c + 1), w1, acc);                                          \
        acc2 = _mm512_fmadd_ps(LD(2, r1, c + 2), w5, acc2);                                        \
        acc = _mm512_fmadd_ps(LD(2, r0, c + 2), w2, acc);                                          \
        acc2 = _mm512_fmadd_ps(LD(0, r2, c), w6, acc2);                                            \
        acc = _mm512_fmadd_ps(LD(1, r2, c + 1), w7, acc);                                          \
        acc2 = _mm512_fmadd_ps(LD(2, r2, c + 2), w8, acc2);                                        \
        acc = _mm512_add_ps(acc, acc2);                                                            \
    }
/* Two output rows of one block (stride 1) from input rows r0..r3, each row loaded once: row
 * oy's taps come from r0..r2 and row oy + 1's from r1..r3, in BLOCK_S1's order for each, so
 * the results are BLOCK_S1's bits with 12 loads instead of 18. */
#define BLOCK_S1_ROW(A, X0, X1, X2, Y0, Y1, Y2, Z0, Z1, Z2)                                        \
    {                                                                                              \
        __m512 acc2 = _mm512_mul_ps(Y0, w3);                                                       \
        A = _mm512_fmadd_ps(X0, w0, A);                                                            \
        acc2 = _mm512_fmadd_ps(Y1, w4, acc2);                                                      \
        A = _mm512_fmadd_ps(X1, w1, A);                                                            \
        acc2 = _mm512_fmadd_ps(Y2, w5, acc2);                                                      \
        A = _mm512_fmadd_ps(X2, w2, A);                                                            \
        acc2 = _mm512_fmadd_ps(Z0, w6, acc2);                                                      \
        A = _mm512_fmadd_ps(Z1, w7, A);                                                            \
        acc2 = _mm512_fmadd_ps(Z2, w8, acc2);                                                      \
        A = _mm512_add_ps(A, acc2);                                                                \
    }
#define BLOCK_S1_X2(LD)                                                                            \
    {                                                                                              \
        const __m512 a0 = LD(0, r0, c), a1 = LD(1, r0, c + 1), a2 = LD(2, r0, c + 2);              \
        const __m512 b0 = LD(0, r1, c), b1 = LD(1, r1, c + 1), b2 = LD(2, r1, c + 2);              \
        const __m512 d0 = LD(0, r2, c), d1 = LD(1, r2, c + 1), d2 = LD(2, r2, c + 2);              \
        const __m512 e0 = LD(0, r3, c), e1 = LD(1, r3, c + 1), e2 = LD(2, r3, c + 2);              \
        BLOCK_S1_ROW(acc, a0, a1, a2, b0, b1, b2, d0, d1, d2)                                      \
        BLOCK_S1_ROW(accb, b0, b1, b2, d0, d1, d2, e0, e1, e2)                                     \
    }
/* Stride 2: outputs read columns c + 2i + kx, i.e. 32 columns from c (kx 0, 1: even / odd
 * lanes) and 32 from c + 2 (kx 2: even lanes). */
#define ROW_S2(LD, R, WA, WB, WC, A)                                                               \
    {                                                                                              \
        const __m512 lo = LD(0, R, c), hi = LD(1, R, c + 16);                                      \
        const __m512 lo2 = LD(2, R, c + 2), hi2 = LD(3, R, c + 18);                                \
        A = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo, even, hi), WA, A);                          \
        A = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo, odd, hi), WB, A);                           \
        A = _mm512_fmadd_ps(_mm512_permutex2var_ps(lo2, even, hi2), WC, A);                        \
    }
#define BLOCK_S2(LD)                                                                               \
    {                                                                                              \
        __m512 acc2 = _mm512_setzero_ps();                                                         \
        ROW_S2(LD, r0, w0, w1, w2, acc)                                                            \
        ROW_S2(LD, r1, w3, w4, w5, acc2)                                                           \
        ROW_S2(LD, r2, w6, w7, w8, acc)                                                            \
        acc = _mm512_add_ps(acc, acc2);                                                            \
    }
#define LD_FULL(k, row, col) _mm512_loadu_ps((row) + (col))
#define LD_MASK(k, row, col) EM512_LOAD(mk##k, row, col)

/* The plane for one stride (1 / 2) and one in-register activation kind: both are constants
 * in each call below, so the block loops carry no branches on them. */
static inline __attribute__((always_inline)) TARGET_512 void
plane_impl(const em_dw_plane *p, const em_dw_planes *q, int64_t plane, const col_block *blocks,
           int nb, int f0, int f1, int64_t ox0, const int sx, const int kind) {
    const int64_t H = p->H, W = p->W, OW = p->OW, ch = plane % q->channels;
    const bool band = q->oy1 > 0;
    const int64_t x_row0 = band ? q->x_row0 : 0, y_row0 = band ? q->oy0 : 0;
    const int64_t y_plane = band ? q->y_plane : p->OH * OW;
    const float *x = q->x + plane * (band ? q->x_plane : H * W), *w = q->w + 9 * ch;
    const float *z = q->z ? q->z + plane * y_plane : NULL;
    float *y = q->y + plane * y_plane;
    const float bias = q->bias ? q->bias[ch] : 0.0f;
    const float alpha = q->act ? q->act->alpha : 0.0f, beta = q->act ? q->act->beta : 0.0f;
    const __m512 w0 = _mm512_set1_ps(w[0]), w1 = _mm512_set1_ps(w[1]), w2 = _mm512_set1_ps(w[2]),
                 w3 = _mm512_set1_ps(w[3]), w4 = _mm512_set1_ps(w[4]), w5 = _mm512_set1_ps(w[5]),
                 w6 = _mm512_set1_ps(w[6]), w7 = _mm512_set1_ps(w[7]), w8 = _mm512_set1_ps(w[8]);
    const __m512 bv = _mm512_set1_ps(bias), lo_v = _mm512_set1_ps(alpha),
                 hi_v = _mm512_set1_ps(beta);
    const __m512i even =
        _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const int64_t oy_end = band ? q->oy1 : p->OH * (q->part + 1) / q->parts;
    int64_t oy = band ? q->oy0 : p->OH * q->part / q->parts;
    /* Stride 1: output rows in pairs, each input row loaded once for both. */
    for (; sx == 1 && p->sy == 1 && oy + 1 < oy_end; oy += 2) {
        const int64_t iy = oy - p->py;
        const float *r0 = input_row(x, iy, H, W, x_row0);
        const float *r1 = input_row(x, iy + 1, H, W, x_row0);
        const float *r2 = input_row(x, iy + 2, H, W, x_row0);
        const float *r3 = input_row(x, iy + 3, H, W, x_row0);
        float *yr = y + (oy - y_row0) * OW + ox0;
        const float *zr = z ? z + (oy - y_row0) * OW + ox0 : NULL;
        for (int i = 0; i < nb; i++) {
            const col_block *b = &blocks[i];
            const int64_t c = b->c0;
            __m512 acc = bv, accb = bv;
            if (i >= f0 && i < f1) {
                BLOCK_S1_X2(LD_FULL)
            } else {
                const __mmask16 mk0 = b->m[0], mk1 = b->m[1], mk2 = b->m[2];
                BLOCK_S1_X2(LD_MASK)
            }
            const __mmask16 om = i >= f0 && i < f1 ? (__mmask16)0xFFFF : b->om;
            acc = epilogue(acc, om, zr ? zr + 16 * i : NULL, kind, lo_v, hi_v);
            accb = epilogue(accb, om, zr ? zr + OW + 16 * i : NULL, kind, lo_v, hi_v);
            _mm512_mask_storeu_ps(yr + 16 * i, om, acc);
            _mm512_mask_storeu_ps(yr + OW + 16 * i, om, accb);
        }
    }
    for (; oy < oy_end; oy++) {
        const int64_t iy = oy * p->sy - p->py;
        const float *r0 = input_row(x, iy, H, W, x_row0);
        const float *r1 = input_row(x, iy + 1, H, W, x_row0);
        const float *r2 = input_row(x, iy + 2, H, W, x_row0);
        float *yr = y + (oy - y_row0) * OW + ox0;
        const float *zr = z ? z + (oy - y_row0) * OW + ox0 : NULL;
        for (int i = 0; i < nb; i++) {
            if (i == f0) { /* the full blocks: plain loads */
                for (; i < f1; i++) {
                    const int64_t c = blocks[i].c0;
                    __m512 acc = bv;
                    if (sx == 1)
                        BLOCK_S1(LD_FULL)
                    else
                        BLOCK_S2(LD_FULL)
                    acc = epilogue(acc, 0xFFFF, zr ? zr + 16 * i : NULL, kind, lo_v, hi_v);
                    _mm512_storeu_ps(yr + 16 * i, acc);
                }
                if (i >= nb) break;
            }
            const col_block *b = &blocks[i];
            const int64_t c = b->c0;
            const __mmask16 mk0 = b->m[0], mk1 = b->m[1], mk2 = b->m[2], mk3 = b->m[3];
            __m512 acc = bv;
            if (sx == 1)
                BLOCK_S1(LD_MASK)
            else
                BLOCK_S2(LD_MASK)
            (void)mk3;
            acc = epilogue(acc, b->om, zr ? zr + 16 * i : NULL, kind, lo_v, hi_v);
            _mm512_mask_storeu_ps(yr + 16 * i, b->om, acc);
        }
    }
}

#define PLANE(SX, KIND)                                                                            \
    TARGET_512 static void plane_s##SX##_##KIND(                                                   \
        const em_dw_plane *p, const em_dw_planes *q, int64_t begin, int64_t end,                   \
        const col_block *blocks, int nb, int f0, int f1, int64_t ox0) {                            \
        for (int64_t plane = begin; plane < end; plane++)                                          \
            plane_impl(p, q, plane, blocks, nb, f0, f1, ox0, SX, KIND);                            \
    }
PLANE(1, 0)
PLANE(1, 1)
PLANE(1, 2)
PLANE(1, 3)
PLANE(2, 0)
PLANE(2, 1)
PLANE(2, 2)
PLANE(2, 3)
#undef PLANE
_Static_assert(EM_ACT_NONE == 0 && EM_ACT_RELU == 1 && EM_ACT_LEAKY_RELU == 2 && EM_ACT_CLIP == 3,
               "the plane specializations are numbered by em_act_kind");

/* Small stride-1 planes whose output rows are as wide as the input rows (OW == W): the plane
 * is one flat run of OH * W outputs, and output j reads input j + (ky - py) * W + (kx - px),
 * so 16 outputs per vector span several rows (a 7x7 plane is 4 vectors instead of 7 rows of 7
 * lanes). Each tap's lanes off the plane are masked; the masks depend only on the geometry
 * and are computed once per call. */
static bool flat_ok(const em_dw_plane *p) {
    return p->sx == 1 && p->sy == 1 && p->OW == p->W &&
           p->OH * p->OW <= 16 * EM_DW_FLAT_MAX_VECTORS;
}

static inline __attribute__((always_inline)) TARGET_512 void
flat_impl(const em_dw_plane *p, const em_dw_planes *q, int64_t begin, int64_t end,
          __mmask16 (*m)[9], const int kind) {
    const int64_t n = p->OH * p->OW, nv = (n + 15) / 16, W = p->W;
    const float alpha = q->act ? q->act->alpha : 0.0f, beta = q->act ? q->act->beta : 0.0f;
    const __m512 lo_v = _mm512_set1_ps(alpha), hi_v = _mm512_set1_ps(beta);
    int64_t off[9];
    for (int t = 0; t < 9; t++) off[t] = (t / 3 - p->py) * W + (t % 3 - p->px);
    for (int64_t plane = begin; plane < end; plane++) {
        const int64_t ch = plane % q->channels;
        const float *x = q->x + plane * p->H * W, *w = q->w + 9 * ch;
        const float *z = q->z ? q->z + plane * n : NULL;
        float *y = q->y + plane * n;
        __m512 wv[9];
        for (int t = 0; t < 9; t++) wv[t] = _mm512_set1_ps(w[t]);
        const __m512 bv = _mm512_set1_ps(q->bias ? q->bias[ch] : 0.0f);
        for (int64_t v = nv * q->part / q->parts; v < nv * (q->part + 1) / q->parts; v++) {
            const int64_t j = 16 * v;
            __m512 acc = bv, acc2 = _mm512_setzero_ps();
            for (int t = 0; t < 9; t += 2) {
                acc = _mm512_fmadd_ps(EM512_LOAD(m[v][t], x, j + off[t]), wv[t], acc);
                if (t + 1 < 9)
                    acc2 = _mm512_fmadd_ps(EM512_LOAD(m[v][t + 1], x, j + off[t + 1]), wv[t + 1],
                                           acc2);
            }
            const __mmask16 om = n - j >= 16 ? 0xFFFF : (__mmask16)((1u << (n - j)) - 1);
            acc = epilogue(_mm512_add_ps(acc, acc2), om, z ? z + j : NULL, kind, lo_v, hi_v);
            _mm512_mask_storeu_ps(y + j, om, acc);
        }
    }
}

#define FLAT(KIND)                                                                                 \
    TARGET_512 static void flat_##KIND(const em_dw_plane *p, const em_dw_planes *q, int64_t begin, \
                                       int64_t end, __mmask16(*m)[9]) {                            \
        flat_impl(p, q, begin, end, m, KIND);                                                      \
    }
FLAT(0)
FLAT(1)
FLAT(2)
FLAT(3)
#undef FLAT

typedef void (*plane_fn)(const em_dw_plane *, const em_dw_planes *, int64_t, int64_t,
                         const col_block *, int, int, int, int64_t);

static void planes_rows(const em_dw_plane *p, const em_dw_planes *q, int64_t begin, int64_t end,
                        plane_fn fn);

static void planes_avx512(const em_dw_plane *p, const em_dw_planes *q, int64_t begin, int64_t end) {
    static const plane_fn fns[2][4] = {{plane_s1_0, plane_s1_1, plane_s1_2, plane_s1_3},
                                       {plane_s2_0, plane_s2_1, plane_s2_2, plane_s2_3}};
    const em_activation *act = q->act;
    const int kind = act ? (int)act->kind : EM_ACT_NONE;
    const bool in_regs = em512_act_in_registers(kind);
    const plane_fn fn = fns[p->sx - 1][in_regs ? kind : EM_ACT_NONE];
    if (q->flat && q->flat->n_vectors > 0) {
        typedef void (*flat_fn)(const em_dw_plane *, const em_dw_planes *, int64_t, int64_t,
                                __mmask16(*)[9]);
        static const flat_fn flat[4] = {flat_0, flat_1, flat_2, flat_3};
        flat[in_regs ? kind : EM_ACT_NONE](p, q, begin, end, (__mmask16(*)[9])q->flat->masks);
    } else {
        planes_rows(p, q, begin, end, fn);
    }
    if (!in_regs && q->oy1 > 0) { /* band mode: rows [oy0, oy1) of each band plane */
        for (int64_t plane = begin; plane < end; plane++)
            em_activation_apply(act, q->y + plane * q->y_plane, (q->oy1 - q->oy0) * p->OW);
    } else if (!in_regs) {
        /* The part's outputs: rows of the row path, vectors of the flat run. */
        const int64_t n = p->OH * p->OW, nv = (n + 15) / 16;
        int64_t lo = p->OH * q->part / q->parts * p->OW,
                hi = p->OH * (q->part + 1) / q->parts * p->OW;
        if (q->flat && q->flat->n_vectors > 0) {
            lo = 16 * (nv * q->part / q->parts);
            hi = 16 * (nv * (q->part + 1) / q->parts);
            if (hi > n) hi = n;
        }
        for (int64_t plane = begin; plane < end && hi > lo; plane++)
            em_activation_apply(act, q->y + plane * n + lo, hi - lo);
    }
}

/* Row by row (any width, strides 1 and 2). */
static void planes_rows(const em_dw_plane *p, const em_dw_planes *q, int64_t begin, int64_t end,
                        plane_fn fn) {
    const int64_t n_all = (p->OW + 15) / 16;
    col_block blocks[MAX_BLOCKS];
    for (int64_t ox0 = 0; ox0 < p->OW; ox0 += 16 * MAX_BLOCKS) {
        const int nb = (int)(n_all - ox0 / 16 < MAX_BLOCKS ? n_all - ox0 / 16 : MAX_BLOCKS);
        col_blocks(p, ox0, nb, blocks);
        /* Full blocks are the middle ones: [f0, f1); the others load with masks. */
        int f0 = 0, f1 = nb;
        while (f0 < nb && !blocks[f0].full) f0++;
        while (f1 > f0 && !blocks[f1 - 1].full) f1--;
        for (int i = f0; i < f1; i++)
            if (!blocks[i].full) f1 = f0;
        if (f1 == f0) f0 = f1 = nb; /* none: every block masked */
        fn(p, q, begin, end, blocks, nb, f0, f1, ox0);
    }
}

#endif

void em_dw3x3_flat_prepare(const em_dw_plane *p, em_dw_flat *f) {
    f->n_vectors = 0;
    if (!flat_ok(p)) return;
    const int64_t n = p->OH * p->OW, nv = (n + 15) / 16;
    for (int64_t v = 0; v < nv; v++) {
        /* Per lane: which kernel rows / columns land inside the input. */
        unsigned rows[3] = {0, 0, 0}, cols[3] = {0, 0, 0};
        int64_t j = 16 * v, oy = j / p->OW, ox = j % p->OW;
        for (int l = 0; l < 16 && j < n; l++, j++) {
            for (int k = 0; k < 3; k++) {
                const int64_t iy = oy - p->py + k, ix = ox - p->px + k;
                if (iy >= 0 && iy < p->H) rows[k] |= 1u << l;
                if (ix >= 0 && ix < p->W) cols[k] |= 1u << l;
            }
            if (++ox == p->OW) ox = 0, oy++;
        }
        for (int t = 0; t < 9; t++) f->masks[v][t] = (uint16_t)(rows[t / 3] & cols[t % 3]);
    }
    f->n_vectors = (int)nv;
}

void em_dw3x3_planes(const em_dw_plane *p, const em_dw_planes *q, int64_t begin, int64_t end) {
#if DW_X86
    if (end > begin) planes_avx512(p, q, begin, end);
#else
    (void)p, (void)q, (void)begin, (void)end;
#endif
}
