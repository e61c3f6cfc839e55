/* FusedMBConv: an inverted-residual block (MobileNetV2's "MBConv") run band by band.
 *
 * Contract (domain "ai.ember", since_version 1; made by the optimizer, runtime/passes_fuse.c,
 * and registered only on CPUs with the AVX-512 kernels it is built on):
 *
 *   FusedMBConv(X, W1, B1, W2, B2, W3, B3, [Z]) -> Y
 *     X  [N, C, H, W] float32
 *     W1 [E, C, 1, 1], B1 [E]   pointwise expansion; W1 "" for none (then E = C)
 *     W2 [E, 1, 3, 3], B2 [E]   depthwise 3x3, attributes `strides` [sy, sx] (sx 1 or 2) and
 *                               `pads` [top, left, bottom, right] (top, left < 3)
 *     W3 [M, E, 1, 1], B3 [M]   pointwise projection
 *     Z  [N, M, OH, OW]         optional residual
 *   T1 = act1(W1 * X + B1), T2 = act2(dw(T1) + B2), Y = act3(W3 * T2 + B3 + Z), with act1 from
 *   `expand_activation` / `expand_activation_params`, act2 from `dw_activation` / ..., act3
 *   from `activation` / `activation_params` (the FusedConv names, see conv.c). Any bias may
 *   be "". Weights must be constants.
 *
 * Why: in the unfused block the expanded tensors T1 and T2 (6x the block's input) each go to
 * memory and come back, and at 112x112 / 56x56 those passes cost more than the arithmetic.
 * Here each thread takes a range of bands of output rows; per band it computes the T1 rows
 * the band needs (rows shared with the previous band are kept, not recomputed), the band's
 * T2 rows from them, and the band's Y rows, so T1 and T2 only ever live in an L2-sized
 * buffer. Per output the arithmetic is that of the three convolutions (the packed GEMM of
 * conv_gemm.c and the depthwise kernel of conv_dw.c); the results equal the unfused ones
 * except where the unfused depthwise conv runs its small planes as flat runs (a different
 * order of the nine taps). */
#include <stdlib.h>
#include <string.h>

#include "conv_dw.h"
#include "conv_gemm.h"
#include "kernel.h"
#include "linalg.h"
#include "passes.h"

/* T1 + T2 bytes of one band: well inside a 2 MiB L2 next to the weights streaming past. */
#define MB_BAND_BYTES (768u << 10)

enum { IN_X, IN_W1, IN_B1, IN_W2, IN_B2, IN_W3, IN_B3, IN_Z };

typedef struct mb_state {
    int64_t C, E, M;        /* input, expanded and output channels */
    int64_t sy, sx, py, px; /* depthwise strides and leading pads */
    int64_t pad_b, pad_r;   /* trailing pads */
    float *w1, *w3;         /* packed for em_cg_gemm (w1 NULL: no expansion) */
    float *w2;              /* E x 9 */
    float *b1, *b2, *b3;    /* NULL when absent */
    em_activation act1, act2, act3;
} mb_state;

static void mb_destroy(void *state) {
    mb_state *s = state;
    if (!s) return;
    em_aligned_free(s->w1);
    em_aligned_free(s->w3);
    free(s->w2);
    free(s->b1);
    free(s->b2);
    free(s->b3);
    free(s);
}

static const em_tensor *input_of(const em_graph *g, const em_node *node, int i) {
    return i < node->n_inputs && node->inputs[i] >= 0 ? em_node_fixed_input(g, node, i) : NULL;
}

static bool present(const em_node *node, int i) {
    return i < node->n_inputs && node->inputs[i] >= 0;
}

/* A copy of a constant float32 vector of n elements (NULL and true when absent). */
static bool copy_bias(const em_graph *g, const em_node *node, int i, int64_t n, float **out) {
    *out = NULL;
    if (!present(node, i)) return true;
    const em_tensor *b = input_of(g, node, i);
    if (!b || b->dtype != EMBER_FLOAT || !b->data || em_numel(b) != n) return false;
    *out = malloc((size_t)n * sizeof(float));
    if (!*out) return false;
    memcpy(*out, b->data, (size_t)n * sizeof(float));
    return true;
}

static bool pointwise_w(const em_tensor *w, int64_t rows, int64_t k) {
    return w && w->dtype == EMBER_FLOAT && w->data && w->rank == 4 && w->dims[0] == rows &&
           w->dims[1] == k && w->dims[2] == 1 && w->dims[3] == 1;
}

static float *pack(const em_tensor *w, int64_t rows, int64_t k) {
    float *p = em_aligned_alloc_uninit((size_t)em_cg_packed_floats(rows, k) * sizeof(float));
    if (p) em_cg_pack((const float *)w->data, rows, k, p);
    return p;
}

static ember_status mb_create(const em_graph *g, em_node *node, void **state, ember_error *err) {
    char d[256];
    mb_state *s = calloc(1, sizeof *s);
    if (!s) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "FusedMBConv: out of memory");
    ember_status st = EMBER_OK;
    st = em_activation_from_attrs(node, "expand_activation", "expand_activation_params", &s->act1,
                                  err);
    if (st == EMBER_OK)
        st = em_activation_from_attrs(node, "dw_activation", "dw_activation_params", &s->act2, err);
    if (st == EMBER_OK) st = em_activation_from_node(node, &s->act3, err);
    if (st != EMBER_OK) {
        mb_destroy(s);
        return st;
    }
    int64_t n_strides = 0, n_pads = 0;
    const int64_t *strides = em_attr_ints(node, "strides", &n_strides);
    const int64_t *pads = em_attr_ints(node, "pads", &n_pads);
    s->sy = n_strides == 2 ? strides[0] : 1;
    s->sx = n_strides == 2 ? strides[1] : 1;
    if (n_pads == 4) s->py = pads[0], s->px = pads[1], s->pad_b = pads[2], s->pad_r = pads[3];
    const em_tensor *w1 = input_of(g, node, IN_W1), *w2 = input_of(g, node, IN_W2),
                    *w3 = input_of(g, node, IN_W3);
    bool ok = (n_strides == 0 || n_strides == 2) && (n_pads == 0 || n_pads == 4) &&
              (s->sx == 1 || s->sx == 2) && s->sy >= 1 && s->py >= 0 && s->py < 3 && s->px >= 0 &&
              s->px < 3 && s->pad_b >= 0 && s->pad_r >= 0 && w2 && w3 && w2->dtype == EMBER_FLOAT &&
              w2->data && w2->rank == 4 && w2->dims[1] == 1 && w2->dims[2] == 3 &&
              w2->dims[3] == 3 && (!present(node, IN_W1) || w1);
    if (ok) {
        s->E = w2->dims[0];
        s->C = w1 ? w1->dims[1] : s->E;
        s->M = w3->rank == 4 ? w3->dims[0] : -1;
        ok = s->E > 0 && s->M > 0 && (!w1 || pointwise_w(w1, s->E, s->C)) &&
             pointwise_w(w3, s->M, s->E);
    }
    if (ok) {
        s->w2 = malloc((size_t)(9 * s->E) * sizeof(float));
        ok = s->w2 != NULL;
        if (ok) memcpy(s->w2, w2->data, (size_t)(9 * s->E) * sizeof(float));
    }
    ok = ok && copy_bias(g, node, IN_B1, s->E, &s->b1) && copy_bias(g, node, IN_B2, s->E, &s->b2) &&
         copy_bias(g, node, IN_B3, s->M, &s->b3);
    if (ok && w1) ok = (s->w1 = pack(w1, s->E, s->C)) != NULL;
    if (ok) ok = (s->w3 = pack(w3, s->M, s->E)) != NULL;
    if (!ok) {
        mb_destroy(s);
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: FusedMBConv needs constant float32 weights W1 [E, C, 1, 1] (or none), "
                       "W2 [E, 1, 3, 3], W3 [M, E, 1, 1], biases of E / E / M, strides of 2 "
                       "values (sx 1 or 2) and 4 pads (leading ones below 3)",
                       em_node_desc(node, d, sizeof d));
    }
    *state = s;
    return EMBER_OK;
}

/* Output size of the depthwise conv along one axis (< 1: empty or invalid). */
static int64_t out_size(int64_t in, int64_t pad_lo, int64_t pad_hi, int64_t stride) {
    return in + pad_lo + pad_hi < 3 ? 0 : (in + pad_lo + pad_hi - 3) / stride + 1;
}

static ember_status mb_infer(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             ember_error *err) {
    char d[256], sh[128];
    const em_tensor *x = in[IN_X], *w2 = in[IN_W2], *w3 = in[IN_W3];
    if (x->dtype != EMBER_FLOAT) return em_unsupported_type(node, 0, x->dtype, err);
    out[0].dtype = EMBER_FLOAT;
    if (x->rank < 0 || w3->rank < 1) {
        out[0].rank = -1;
        return EMBER_OK;
    }
    if (x->rank != 4 || w2->rank != 4)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: X %s must be 4-D (N, C, H, W)",
                       em_node_desc(node, d, sizeof d), em_shape_str(x, sh, sizeof sh));
    int64_t n_strides = 0, n_pads = 0;
    const int64_t *strides = em_attr_ints(node, "strides", &n_strides);
    const int64_t *pads = em_attr_ints(node, "pads", &n_pads);
    const int64_t sy = n_strides == 2 ? strides[0] : 1, sx = n_strides == 2 ? strides[1] : 1;
    const int64_t p[4] = {n_pads == 4 ? pads[0] : 0, n_pads == 4 ? pads[1] : 0,
                          n_pads == 4 ? pads[2] : 0, n_pads == 4 ? pads[3] : 0};
    const int64_t C = in[IN_W1] ? (in[IN_W1]->rank == 4 ? in[IN_W1]->dims[1] : -1) : w2->dims[0];
    if (x->dims[1] >= 0 && C >= 0 && x->dims[1] != C)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: X %s must have %lld channels",
                       em_node_desc(node, d, sizeof d), em_shape_str(x, sh, sizeof sh),
                       (long long)C);
    int64_t dims[4] = {x->dims[0], w3->dims[0], -1, -1};
    if (x->dims[2] >= 0 && sy > 0) dims[2] = out_size(x->dims[2], p[0], p[2], sy);
    if (x->dims[3] >= 0 && sx > 0) dims[3] = out_size(x->dims[3], p[1], p[3], sx);
    if (dims[2] == 0 || dims[3] == 0)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: X %s is smaller than the 3x3 kernel",
                       em_node_desc(node, d, sizeof d), em_shape_str(x, sh, sizeof sh));
    em_tensor_set_shape(&out[0], EMBER_FLOAT, dims, 4);
    const em_tensor *z = node->n_inputs > IN_Z ? in[IN_Z] : NULL;
    if (z && z->dtype != EMBER_FLOAT) return em_unsupported_type(node, IN_Z, z->dtype, err);
    if (z && z->rank >= 0) {
        bool same = z->rank == 4;
        for (int i = 0; same && i < 4; i++)
            if (z->dims[i] >= 0 && dims[i] >= 0 && z->dims[i] != dims[i]) same = false;
        if (!same)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: Z %s must have the output's shape",
                           em_node_desc(node, d, sizeof d), em_shape_str(z, sh, sizeof sh));
    }
    (void)state;
    return EMBER_OK;
}

typedef struct mb_job {
    const mb_state *s;
    const float *x, *z;
    float *y;
    int64_t H, W, OH, OW;
    int64_t rows;     /* output rows per band */
    int64_t n_bands;  /* per image */
    int64_t t1_plane; /* floats per plane of the T1 band buffer */
    int64_t t2_plane; /* ... of the T2 band buffer */
    size_t slot_floats;
    float *scratch;
    bool vector_dw;
} mb_job;

/* Depthwise 3x3 of output rows [oy0, oy1) without the vector kernel (same contract as band
 * mode of em_dw3x3_planes). */
static void dw_band_portable(const mb_job *j, const em_dw_planes *q) {
    const mb_state *s = j->s;
    for (int64_t e = 0; e < s->E; e++) {
        const float *x = q->x + e * q->x_plane, *w = s->w2 + 9 * e;
        float *y = q->y + e * q->y_plane;
        for (int64_t oy = q->oy0; oy < q->oy1; oy++)
            for (int64_t ox = 0; ox < j->OW; ox++) {
                float acc = s->b2 ? s->b2[e] : 0.0f;
                for (int ky = 0; ky < 3; ky++) {
                    const int64_t iy = oy * s->sy - s->py + ky;
                    if (iy < 0 || iy >= j->H) continue;
                    for (int kx = 0; kx < 3; kx++) {
                        const int64_t ix = ox * s->sx - s->px + kx;
                        if (ix >= 0 && ix < j->W)
                            acc += w[3 * ky + kx] * x[(iy - q->x_row0) * j->W + ix];
                    }
                }
                y[(oy - q->oy0) * j->OW + ox] = acc;
            }
        em_activation_apply(&s->act2, y, (q->oy1 - q->oy0) * j->OW);
    }
}

/* Bands [begin, end) of the batch (image n's bands are n * n_bands ...), in order: T1 rows
 * that the previous band of the same image already made are moved to the buffer's top
 * instead of being computed again. */
static void mb_bands(void *ctx, int slot, int64_t begin, int64_t end) {
    const mb_job *j = ctx;
    const mb_state *s = j->s;
    const int64_t H = j->H, W = j->W, OH = j->OH, OW = j->OW, E = s->E;
    float *t1 = j->scratch + (size_t)slot * j->slot_floats;
    float *t2 = t1 + (s->w1 ? E * j->t1_plane : 0);
    const int64_t mpad1 = (E + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    const int64_t mpad3 = (s->M + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    const em_dw_plane plane = {
        .H = H, .W = W, .OH = OH, .OW = OW, .sy = s->sy, .sx = s->sx, .py = s->py, .px = s->px};
    em_band_held held = {-1, 0, -1}; /* T1 rows in the buffer */
    for (int64_t it = begin; it < end; it++) {
        const int64_t n = it / j->n_bands, r0 = it % j->n_bands * j->rows;
        const int64_t r1 = r0 + j->rows < OH ? r0 + j->rows : OH;
        if (r0 >= r1) continue;
        int64_t lo = r0 * s->sy - s->py, hi = (r1 - 1) * s->sy - s->py + 2;
        if (lo < 0) lo = 0;
        if (hi > H - 1) hi = H - 1;
        const float *xn = j->x + n * s->C * H * W;
        em_dw_planes q = {.w = s->w2,
                          .bias = s->b2,
                          .y = t2,
                          .channels = E,
                          .act = &s->act2,
                          .parts = 1,
                          .oy0 = r0,
                          .oy1 = r1,
                          .y_plane = j->t2_plane};
        if (s->w1) {
            const int64_t from = em_band_reuse(t1, E, j->t1_plane, W, &held, n, lo, hi);
            if (from <= hi) {
                const em_cg_epilogue e1 = {.bias = s->b1, .act = &s->act1};
                em_cg_gemm(s->w1, mpad1, 0, E, s->C, xn + from * W, (hi - from + 1) * W, EM_CG_NR,
                           H * W, H * W, t1 + (from - lo) * W, j->t1_plane, &e1);
            }
            q.x = t1, q.x_plane = j->t1_plane, q.x_row0 = lo;
        } else {
            q.x = xn, q.x_plane = H * W, q.x_row0 = 0;
        }
        if (j->vector_dw)
            em_dw3x3_planes(&plane, &q, 0, E);
        else
            dw_band_portable(j, &q);
        const int64_t off = n * s->M * OH * OW + r0 * OW;
        const em_cg_epilogue e3 = {
            .bias = s->b3, .z = j->z ? j->z + off : NULL, .ldz = OH * OW, .act = &s->act3};
        em_cg_gemm(s->w3, mpad3, 0, s->M, E, t2, (r1 - r0) * OW, EM_CG_NR, j->t2_plane, j->t2_plane,
                   j->y + off, OH * OW, &e3);
    }
}

static ember_status mb_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                           em_exec *ex, ember_error *err) {
    const mb_state *s = state;
    const em_tensor *x = in[IN_X], *z = node->n_inputs > IN_Z ? in[IN_Z] : NULL;
    char d[256], sh[128];
    if (x->rank != 4 || x->dims[1] != s->C)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: X %s must be (N, %lld, H, W)",
                       em_node_desc(node, d, sizeof d), em_shape_str(x, sh, sizeof sh),
                       (long long)s->C);
    mb_job j = {.s = s,
                .x = x->data,
                .z = z ? z->data : NULL,
                .y = out[0].data,
                .H = x->dims[2],
                .W = x->dims[3],
                .OH = out[0].dims[2],
                .OW = out[0].dims[3]};
    const int64_t N = x->dims[0];
    if (N == 0 || j.OH == 0 || j.OW == 0) return EMBER_OK;
    const em_dw_plane p = {.H = j.H,
                           .W = j.W,
                           .OH = j.OH,
                           .OW = j.OW,
                           .sy = s->sy,
                           .sx = s->sx,
                           .py = s->py,
                           .px = s->px};
    j.vector_dw = em_dw3x3_supported(&p);
    /* Rows per band: as many as fit MB_BAND_BYTES, then evened out so that the bands of the
     * batch split evenly over the threads when they can. */
    const int64_t t1_row = s->w1 ? s->E * j.W : 0, t2_row = s->E * j.OW;
    int64_t rows = 1;
    while (rows < j.OH && (size_t)(((rows * s->sy + 2) * t1_row + (rows + 1) * t2_row) *
                                   (int64_t)sizeof(float)) <= MB_BAND_BYTES)
        rows++;
    rows = em_band_rows(N, j.OH, rows, em_exec_threads(ex));
    j.rows = rows;
    j.n_bands = (j.OH + rows - 1) / rows;
    int64_t t1_rows = (rows - 1) * s->sy + 3;
    if (t1_rows > j.H) t1_rows = j.H;
    j.t1_plane = (t1_rows * j.W + 15) / 16 * 16;
    j.t2_plane = (rows * j.OW + 15) / 16 * 16;
    j.slot_floats = (size_t)((s->w1 ? s->E * j.t1_plane : 0) + s->E * j.t2_plane);
    j.slot_floats = (j.slot_floats + 15) / 16 * 16;
    const int64_t items = N * j.n_bands;
    const int slots = em_slot_count(ex, items);
    j.scratch = em_exec_scratch(ex, j.slot_floats * sizeof(float) * (size_t)slots, err);
    if (!j.scratch) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_parallel_slots(ex, items, mb_bands, &j);
    return EMBER_OK;
}

static const em_op mbconv_ops[] = {
    {"ai.ember", "FusedMBConv", 1, 0, mb_create, mb_infer, mb_run, mb_destroy, 0},
};

/* Registered only where its kernels are the vector ones: elsewhere the optimizer keeps the
 * three convolutions (their BLAS paths beat a portable GEMM). */
EM_OPS_FAMILY(mbconv) {
    *count = em_cg_available() ? sizeof mbconv_ops / sizeof mbconv_ops[0] : 0;
    return mbconv_ops;
}
