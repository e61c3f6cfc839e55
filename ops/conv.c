/* Convolutions: Conv, ConvTranspose, ConvInteger, QLinearConv, and FusedConv.
 *
 * Fusion contract for the graph optimizer (domain "ai.ember", since_version 1):
 *
 *   FusedConv(X, W, [B], [Z]) -> Y      attributes of Conv, plus `activation`, `activation_params`
 *   FusedGemm(A, B, [C]) -> Y           attributes of Gemm, plus the same two
 *   FusedMatMul(A, B) -> Y              the same two
 *
 *   Y = act(op(...) + Z): FusedConv's optional 4th input Z has exactly Y's shape and is added
 *   after the bias and before the activation (a residual Add folded into the conv). Pass ""
 *   for B to give Z without a bias.
 *   `activation` (string, absent = none) is one of:
 *     "Relu"
 *     "LeakyRelu"    activation_params = [alpha]            (default alpha 0.01)
 *     "Clip"         activation_params = [min, max]         (defaults -inf, +inf)
 *     "Sigmoid"
 *     "Tanh"
 *     "HardSigmoid"  activation_params = [alpha, beta]      (defaults 0.2, 0.5)
 *   FusedConv may also pool its output (2-D, float32, no Z): `pool` = "MaxPool" with
 *   `pool_kernel_shape` [kh, kw], `pool_strides` [sh, sw] (default 1) and `pool_pads`
 *   [top, left, bottom, right] (each smaller than the kernel; default 0), rounding down:
 *   Y = MaxPool(act(conv(X) + B)). The RGB input layer's direct kernel pools each band of rows
 *   while it is in cache (conv_direct.c); the other paths pool the whole conv output.
 *   Fewer params than listed take the defaults; more is an error; an unknown name is
 *   EMBER_ERR_UNSUPPORTED. These nodes must import domain "ai.ember" at version 1. Only float
 *   types are fused (float16 through float32; float64 also honours the activation). Z and the
 *   activation are applied in one pass per output tile while it is still in cache.
 *
 * Strategy per shape (float32; float64 runs the same paths on dgemm):
 *   - a constant float32 W (not depthwise) is packed once at create for the AVX-512 GEMM of
 *     conv_gemm.c, chosen at run time by the CPU (BLAS otherwise): the same panels as below,
 *     with bias, Z and the activation applied to each register tile before its one store;
 *     outputs under BATCHED_MAX_COLS run the whole batch as one GEMM (weights read once),
 *     their im2col through a gather table (conv_gather.c) made once at create when the
 *     input's planes are known then (else per run, when the batch repays it);
 *   - at most 4 input channels (the RGB input layer; float32, constant W, AVX-512): a direct
 *     kernel with the output pixels in the vector lanes (conv_direct.c), no im2col;
 *   - 3x3, stride 1, one group, at least 16 channels in and out (float32, constant W, AVX-512):
 *     Winograd (conv_winograd.c): F(4x4, 3x3) where the planes are known at create, hold
 *     enough 4x4 tiles and the transformed W stays small (36 multiply-adds instead of 144
 *     per 4x4 block of outputs and input channel), else F(2x2, 3x3) (16 instead of 36 per 2x2
 *     block); W is transformed and packed once at create instead. The choice depends on the
 *     planes only, so that results do not change with the batch size or the thread count;
 *   - pointwise (1x1 kernel, stride 1, no padding): the GEMM runs straight on the input, no
 *     im2col, in column chunks;
 *   - depthwise 1-D / 2-D (group == C == M): direct kernels; 3x3 with strides 1 / 2 on the
 *     AVX-512 kernel of conv_dw.c (planes read in place with masked loads, epilogue in
 *     registers), other shapes and CPUs on a zero-bordered copy of each plane;
 *   - otherwise im2col in panels of output columns sized to stay in L2 (never the whole
 *     matrix for large outputs), each panel followed by sgemm and the epilogue. Stride-1
 *     convs that keep the row width copy each im2col row in one piece.
 *   The output block starts from the bias and the GEMM accumulates onto it. Work items
 *   (batch x group x panel x row block) are spread over threads with em_parallel_slots; each
 *   BLAS call is made from inside its item (OpenBLAS must run one thread per call, see
 *   linalg.h).
 *   ConvTranspose = GEMM (W_g^T x X_g) into column panels, then col2im accumulation (never
 *   zero-stuffing), split by batch x group x output-channel block. With a constant float32 W
 *   on AVX-512 and images small enough (em_ct_eligible), convt_gemm.c instead: W^T packed at
 *   create, several images per GEMM, col2im as a gather per output.
 *   ConvInteger / QLinearConv subtract the zero points into float64 and run the float64 path
 *   (exact for 8-bit products), then round and requantize.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv_dw.h"
#include "conv_gather.h"
#include "conv_direct.h"
#include "conv_gemm.h"
#include "conv_winograd.h"
#include "convt_gemm.h"
#include "kernel.h"
#include "linalg.h"
#include "passes.h"
#include "pool_max512.h"

#define SCRATCH_FAILED (err ? err->code : EMBER_ERR_OUT_OF_MEMORY)
#define SP 3 /* spatial dims handled (1-D and 2-D run as 3-D with leading size-1 dims) */

/* Bytes of one im2col / col panel per slot: comfortably inside a 2 MiB L2 next to BLAS's own
 * packing buffers. */
#define PANEL_BYTES (1u << 20)
#define MIN_PANEL_COLS 64
/* Outputs smaller than this run the batch as one GEMM (packed weights only). */
#define BATCHED_MAX_COLS 512

typedef enum pad_mode { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID } pad_mode;

typedef struct conv_attrs {
    bool transpose;
    pad_mode auto_pad;
    int64_t group;
    int64_t n_kernel, n_strides, n_dil, n_pads, n_out_pad, n_out_shape;
    const int64_t *kernel, *strides, *dil, *pads, *out_pad, *out_shape;
    /* FusedConv's optional MaxPool over its output (2-D): kernel, strides, pads (t, l, b, r). */
    bool pool;
    int64_t pool_kernel[2], pool_strides[2], pool_pads[4];
} conv_attrs;

typedef struct conv_geom {
    int nsp; /* spatial rank of the op */
    int64_t batch, C, M, G, Cg, Mg;
    int64_t in[SP], out[SP], k[SP], s[SP], d[SP], pb[SP], pe[SP];
    int64_t in_sz, out_sz, k_sz;
} conv_geom;

static ember_status conv_read_attrs(const em_node *node, bool transpose, conv_attrs *a,
                                    ember_error *err) {
    char d[256];
    memset(a, 0, sizeof *a);
    a->transpose = transpose;
    const char *ap = em_attr_string(node, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET") || !*ap)
        a->auto_pad = PAD_NOTSET;
    else if (!strcmp(ap, "SAME_UPPER"))
        a->auto_pad = PAD_SAME_UPPER;
    else if (!strcmp(ap, "SAME_LOWER"))
        a->auto_pad = PAD_SAME_LOWER;
    else if (!strcmp(ap, "VALID"))
        a->auto_pad = PAD_VALID;
    else
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: unknown auto_pad '%s'",
                       em_node_desc(node, d, sizeof d), ap);
    a->group = em_attr_int(node, "group", 1);
    if (a->group < 1)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: group must be >= 1, got %lld",
                       em_node_desc(node, d, sizeof d), (long long)a->group);
    a->kernel = em_attr_ints(node, "kernel_shape", &a->n_kernel);
    a->strides = em_attr_ints(node, "strides", &a->n_strides);
    a->dil = em_attr_ints(node, "dilations", &a->n_dil);
    a->pads = em_attr_ints(node, "pads", &a->n_pads);
    if (transpose) {
        a->out_pad = em_attr_ints(node, "output_padding", &a->n_out_pad);
        a->out_shape = em_attr_ints(node, "output_shape", &a->n_out_shape);
    }
    const char *pool = em_attr_string(node, "pool", NULL);
    if (!pool || !*pool) return EMBER_OK;
    int64_t nk = 0, ns = 0, np = 0;
    const int64_t *k = em_attr_ints(node, "pool_kernel_shape", &nk);
    const int64_t *st = em_attr_ints(node, "pool_strides", &ns);
    const int64_t *pd = em_attr_ints(node, "pool_pads", &np);
    bool ok = strcmp(pool, "MaxPool") == 0 && !transpose && nk == 2 && (ns == 0 || ns == 2) &&
              (np == 0 || np == 4);
    for (int i = 0; ok && i < 2; i++) {
        a->pool_kernel[i] = k[i];
        a->pool_strides[i] = ns ? st[i] : 1;
        ok = k[i] >= 1 && a->pool_strides[i] >= 1;
    }
    for (int i = 0; ok && i < 4; i++) {
        a->pool_pads[i] = np ? pd[i] : 0;
        ok = a->pool_pads[i] >= 0 && a->pool_pads[i] < a->pool_kernel[i % 2];
    }
    if (!ok)
        return em_fail(
            err, EMBER_ERR_INVALID_MODEL,
            "%s: pool must be MaxPool with a 2-D pool_kernel_shape, 2 pool_strides and 4 "
            "pool_pads smaller than the kernel",
            em_node_desc(node, d, sizeof d));
    a->pool = true;
    return EMBER_OK;
}

/* Pooled size of n conv outputs along axis i (< 1: no window). */
static int64_t pooled(const conv_attrs *a, int i, int64_t n) {
    const int64_t span = n + a->pool_pads[i] + a->pool_pads[i + 2] - a->pool_kernel[i];
    return span < 0 ? 0 : span / a->pool_strides[i] + 1;
}

static int64_t ceil_div(int64_t a, int64_t b) {
    return -em_floor_div(-a, b);
}

/* Validate X / W shapes against the attributes and compute the geometry. Dims of -1 (unknown
 * at load) give -1 output dims. */
static ember_status conv_geometry(const em_node *node, const conv_attrs *a, const em_tensor *x,
                                  const em_tensor *w, conv_geom *g, int64_t *out_dims,
                                  ember_error *err) {
    char d[256];
    em_node_desc(node, d, sizeof d);
    memset(g, 0, sizeof *g);
    if (x->rank < 3)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: X must have rank >= 3, got %d", d, x->rank);
    if (w->rank != x->rank)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: W has rank %d but X has rank %d", d, w->rank,
                       x->rank);
    int nsp = x->rank - 2;
    if (nsp > SP)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: %d spatial dims (at most %d supported)", d,
                       nsp, SP);
    g->nsp = nsp;
    g->G = a->group;
    g->batch = x->dims[0];
    g->C = x->dims[1];
    if (a->transpose) {
        g->Cg = g->C >= 0 ? g->C / g->G : -1;
        g->Mg = w->dims[1];
        g->M = g->Mg >= 0 ? g->Mg * g->G : -1;
        if (w->dims[0] >= 0 && g->C >= 0 && w->dims[0] != g->C)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: W dim 0 (%lld) must equal X channels (%lld)",
                           d, (long long)w->dims[0], (long long)g->C);
        if (g->C >= 0 && g->C % g->G != 0)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: channels %lld not divisible by group %lld", d,
                           (long long)g->C, (long long)g->G);
    } else {
        g->M = w->dims[0];
        g->Cg = w->dims[1];
        g->Mg = g->M >= 0 ? g->M / g->G : -1;
        if (g->C >= 0 && g->Cg >= 0 && g->Cg * g->G != g->C)
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: W dim 1 (%lld) x group (%lld) must equal X channels (%lld)", d,
                           (long long)g->Cg, (long long)g->G, (long long)g->C);
        if (g->M >= 0 && g->M % g->G != 0)
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: output channels %lld not divisible by group %lld", d,
                           (long long)g->M, (long long)g->G);
    }
    if (a->n_kernel && a->n_kernel != nsp)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: kernel_shape has %lld values for %d "
                       "spatial dims",
                       d, (long long)a->n_kernel, nsp);
    if ((a->n_strides && a->n_strides != nsp) || (a->n_dil && a->n_dil != nsp) ||
        (a->n_pads && a->n_pads != 2 * nsp) || (a->n_out_pad && a->n_out_pad != nsp))
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: strides/dilations/pads/output_padding lengths do not match %d "
                       "spatial dims",
                       d, nsp);
    if (a->n_out_shape && a->n_out_shape != nsp && a->n_out_shape != nsp + 2)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: output_shape has %lld values", d,
                       (long long)a->n_out_shape);
    out_dims[0] = g->batch;
    out_dims[1] = g->M;
    g->in_sz = g->out_sz = g->k_sz = 1;
    for (int j = 0; j < SP; j++) {
        g->in[j] = g->out[j] = g->k[j] = g->s[j] = g->d[j] = 1;
        g->pb[j] = g->pe[j] = 0;
    }
    bool known = true;
    for (int i = 0; i < nsp; i++) {
        int j = SP - nsp + i;
        int64_t in = x->dims[2 + i];
        int64_t k = w->dims[2 + i];
        if (a->n_kernel) {
            if (k >= 0 && a->kernel[i] != k)
                return em_fail(err, EMBER_ERR_SHAPE, "%s: kernel_shape[%d] = %lld but W has %lld",
                               d, i, (long long)a->kernel[i], (long long)k);
            k = a->kernel[i];
        }
        int64_t s = a->n_strides ? a->strides[i] : 1;
        int64_t dl = a->n_dil ? a->dil[i] : 1;
        int64_t pb = a->n_pads ? a->pads[i] : 0, pe = a->n_pads ? a->pads[nsp + i] : 0;
        int64_t op = a->n_out_pad ? a->out_pad[i] : 0;
        if (s < 1 || dl < 1 || k < 0 || (k == 0 && w->dims[2 + i] >= 0) || op < 0 ||
            s > (1 << 20) || dl > (1 << 20) || k > (1 << 20) || op > (1 << 20))
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: bad kernel/stride/dilation/output_padding on axis %d", d, i);
        if (a->auto_pad == PAD_NOTSET && (pb < 0 || pe < 0 || pb > (1 << 30) || pe > (1 << 30)))
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: bad pads on axis %d", d, i);
        int64_t ek = (k - 1) * dl + 1; /* effective kernel extent */
        int64_t out = -1;
        if (in < 0 || k < 0) {
            known = false;
        } else if (!a->transpose) {
            switch (a->auto_pad) {
            case PAD_NOTSET:
                out = em_floor_div(in + pb + pe - ek, s) + 1;
                break;
            case PAD_VALID:
                pb = pe = 0;
                out = em_floor_div(in - ek, s) + 1;
                break;
            default: {
                out = ceil_div(in, s);
                int64_t total = (out - 1) * s + ek - in;
                if (total < 0) total = 0;
                pb = a->auto_pad == PAD_SAME_UPPER ? total / 2 : total - total / 2;
                pe = total - pb;
                break;
            }
            }
        } else {
            int64_t full = s * (in - 1) + op + ek;
            int64_t want = -1;
            if (a->n_out_shape)
                want = a->out_shape[a->n_out_shape - nsp + i];
            else if (a->auto_pad == PAD_SAME_UPPER || a->auto_pad == PAD_SAME_LOWER)
                want = in * s;
            if (want >= 0) {
                int64_t total = full - want;
                /* SAME_UPPER puts the odd extra at the end; otherwise at the start. Floor
                 * division: a negative total (output_shape larger than natural) extends the
                 * end. */
                if (a->auto_pad == PAD_SAME_UPPER) {
                    pb = em_floor_div(total, 2);
                    pe = total - pb;
                } else {
                    pe = em_floor_div(total, 2);
                    pb = total - pe;
                }
                out = want;
            } else {
                if (a->auto_pad == PAD_VALID) pb = pe = 0;
                out = full - pb - pe;
            }
        }
        if (known && out < 1)
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: output size %lld on spatial axis %d (input %lld, kernel %lld)", d,
                           (long long)out, i, (long long)in, (long long)k);
        g->in[j] = in;
        g->out[j] = out;
        g->k[j] = k;
        g->s[j] = s;
        g->d[j] = dl;
        g->pb[j] = pb;
        g->pe[j] = pe;
        out_dims[2 + i] = out;
        if (known) {
            g->in_sz = em_mul_size(g->in_sz, in);
            g->out_sz = em_mul_size(g->out_sz, out);
            g->k_sz = em_mul_size(g->k_sz, k);
            if (g->in_sz < 0 || g->out_sz < 0 || g->k_sz < 0)
                return em_fail(err, EMBER_ERR_SHAPE, "%s: spatial size overflows", d);
        }
    }
    if (known && g->batch >= 0 && g->C >= 0 && g->M >= 0) {
        int64_t ny = em_shape_numel(out_dims, x->rank);
        int64_t kk = em_mul_size(em_mul_size(g->Cg, g->k_sz), g->Mg);
        if (ny < 0 || kk < 0) return em_fail(err, EMBER_ERR_SHAPE, "%s: output size overflows", d);
    }
    return EMBER_OK;
}

/* ============================================================================================
 * float32 / float64 execution
 * ========================================================================================== */

static double act_f64(const em_activation *act, double v) {
    switch (act->kind) {
    case EM_ACT_NONE:
        return v;
    case EM_ACT_RELU:
        return v < 0 ? 0 : v;
    case EM_ACT_LEAKY_RELU:
        return v < 0 ? act->alpha * v : v;
    case EM_ACT_CLIP:
        return v < act->alpha ? act->alpha : v > act->beta ? act->beta : v;
    case EM_ACT_SIGMOID:
        return 1.0 / (1.0 + exp(-v));
    case EM_ACT_TANH:
        return tanh(v);
    case EM_ACT_HARD_SIGMOID: {
        double h = act->alpha * v + act->beta;
        return h < 0 ? 0 : h > 1 ? 1 : h;
    }
    }
    return v;
}

typedef struct conv_job {
    const conv_geom *g;
    bool is_double;
    const void *x, *w, *bias, *z;
    void *y;
    em_activation act;
    char *scratch;
    size_t slot_bytes;
    bool pointwise; /* GEMM straight on the input, no im2col panel */
    int64_t panel, n_panels, m_block, n_mblocks;
    const float *wpack;  /* weights packed for em_cg_gemm (float32, constant W), or NULL */
    int64_t wpack_group; /* floats per group in wpack */
    /* Packed GEMM over the columns of all images at once (small outputs): columns number
     * batch * out_sz, results go through a per-slot buffer (cbuf_offset into the slot). */
    bool batched;
    int64_t ncols;
    size_t cbuf_offset;
    const em_gather_table *gather; /* batched: im2col through this table (else NULL) */
    const em_dw_flat *dw_flat;     /* depthwise 3x3 on the vector kernel (else NULL): flat masks */
    int64_t dw_bands;              /* ... and the bands each image's planes are split into */
} conv_job;

static void job_epilogue(const conv_job *j, int64_t row0, int64_t rows, int64_t col0, int64_t cols,
                         bool add_bias) {
    /* row0: absolute output channel (n * M + m); rows are output channels */
    const conv_geom *g = j->g;
    int64_t m = row0 % g->M;
    if (j->is_double) {
        double *y = (double *)j->y + row0 * g->out_sz + col0;
        const double *b = j->bias ? (const double *)j->bias + m : NULL;
        const double *z = j->z ? (const double *)j->z + row0 * g->out_sz + col0 : NULL;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                double v = y[r * g->out_sz + c];
                if (b) v += b[r];
                if (z) v += z[r * g->out_sz + c];
                y[r * g->out_sz + c] = act_f64(&j->act, v);
            }
        return;
    }
    float *y = (float *)j->y + row0 * g->out_sz + col0;
    const float *z = j->z ? (const float *)j->z + row0 * g->out_sz + col0 : NULL;
    em_epilogue(y, rows, cols, g->out_sz, j->bias && add_bias ? (const float *)j->bias + m : NULL,
                NULL, z, g->out_sz, &j->act);
}

/* Short copies (im2col segments are one output row, often 7..112 elements): fixed-size
 * chunks the compiler inlines, the last chunk overlapping, instead of a memcpy call each. */
static inline void copy_f32(float *restrict d, const float *restrict s, int64_t n) {
    if (n >= 16) {
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) __builtin_memcpy(d + i, s + i, 64);
        if (i < n) __builtin_memcpy(d + n - 16, s + n - 16, 64);
    } else if (n >= 4) {
        int64_t i = 0;
        for (; i + 4 <= n; i += 4) __builtin_memcpy(d + i, s + i, 16);
        if (i < n) __builtin_memcpy(d + n - 4, s + n - 4, 16);
    } else {
        if (n > 0) d[0] = s[0];
        if (n > 1) d[1] = s[1];
        if (n > 2) d[2] = s[2];
    }
}

static inline void copy_f64(double *restrict d, const double *restrict s, int64_t n) {
    memcpy(d, s, (size_t)n * sizeof(double));
}

/* d[i] = s[2 i] (stride-2 im2col rows: ResNet's stem and downsampling convs); the vector
 * clones turn it into two loads and a permute per 16 outputs. */
EM_VECTOR_CLONES
static void copy_stride2_f32(float *restrict d, const float *restrict s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = s[2 * i];
}

static void copy_stride2_f64(double *restrict d, const double *restrict s, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = s[2 * i];
}

/* im2col of output columns [c0, c1) of one group: col is (Cg * k_sz) x (c1 - c0), rows nb
 * apart (nb >= c1 - c0). */
#define IM2COL_MAX_KW 64
#define DEFINE_IM2COL(T, NAME, COPY, COPY2)                                                        \
    static void NAME(const conv_geom *g, const T *x, int64_t c0, int64_t c1, T *col, int64_t nb) { \
        const int64_t OH = g->out[1], OW = g->out[2];                                              \
        const int64_t D = g->in[0], H = g->in[1], W = g->in[2];                                    \
        const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2], sx = g->s[2];                      \
        /* Output columns whose tap kx lands inside the row (0 <= ox * sx + off < W), per kx,      \
         * computed once: [first[kx], last[kx]). */                                                \
        int64_t first[IM2COL_MAX_KW], last[IM2COL_MAX_KW];                                         \
        for (int64_t kx = 0; kx < KW && kx < IM2COL_MAX_KW; kx++) {                                \
            const int64_t off = kx * g->d[2] - g->pb[2];                                           \
            first[kx] = ceil_div(-off, sx);                                                        \
            last[kx] = em_floor_div(W - 1 - off, sx) + 1;                                          \
        }                                                                                          \
        for (int64_t p = c0; p < c1;) {                                                            \
            const int64_t oz = p / (OH * OW), rem = p % (OH * OW), oy = rem / OW;                  \
            const int64_t ox0 = rem % OW;                                                          \
            const int64_t len = OW - ox0 < c1 - p ? OW - ox0 : c1 - p;                             \
            T *dst0 = col + (p - c0);                                                              \
            for (int64_t c = 0; c < g->Cg; c++) {                                                  \
                const T *xc = x + c * g->in_sz;                                                    \
                for (int64_t kz = 0; kz < KD; kz++) {                                              \
                    const int64_t iz = oz * g->s[0] - g->pb[0] + kz * g->d[0];                     \
                    for (int64_t ky = 0; ky < KH; ky++) {                                          \
                        const int64_t iy = oy * g->s[1] - g->pb[1] + ky * g->d[1];                 \
                        T *dst = dst0 + (((c * KD + kz) * KH + ky) * KW) * nb;                     \
                        if (iz < 0 || iz >= D || iy < 0 || iy >= H) {                              \
                            for (int64_t kx = 0; kx < KW; kx++)                                    \
                                memset(dst + kx * nb, 0, (size_t)len * sizeof(T));                 \
                            continue;                                                              \
                        }                                                                          \
                        const T *xrow = xc + (iz * H + iy) * W;                                    \
                        for (int64_t kx = 0; kx < KW; kx++) {                                      \
                            const int64_t off = kx * g->d[2] - g->pb[2];                           \
                            T *restrict dd = dst + kx * nb;                                        \
                            int64_t lo = kx < IM2COL_MAX_KW ? first[kx] : ceil_div(-off, sx);      \
                            int64_t hi =                                                           \
                                kx < IM2COL_MAX_KW ? last[kx] : em_floor_div(W - 1 - off, sx) + 1; \
                            if (lo < ox0) lo = ox0;                                                \
                            if (hi > ox0 + len) hi = ox0 + len;                                    \
                            if (hi < lo) hi = lo;                                                  \
                            for (int64_t ox = ox0; ox < lo; ox++) dd[ox - ox0] = 0;                \
                            if (sx == 1) {                                                         \
                                if (hi > lo) COPY(dd + (lo - ox0), xrow + (lo + off), hi - lo);    \
                            } else if (sx == 2) {                                                  \
                                if (hi > lo)                                                       \
                                    COPY2(dd + (lo - ox0), xrow + (lo * 2 + off), hi - lo);        \
                            } else {                                                               \
                                for (int64_t ox = lo; ox < hi; ox++)                               \
                                    dd[ox - ox0] = xrow[ox * sx + off];                            \
                            }                                                                      \
                            for (int64_t ox = hi; ox < ox0 + len; ox++) dd[ox - ox0] = 0;          \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            p += len;                                                                              \
        }                                                                                          \
    }
DEFINE_IM2COL(float, im2col_f32, copy_f32, copy_stride2_f32)
DEFINE_IM2COL(double, im2col_f64, copy_f64, copy_stride2_f64)

/* Stride 1 with an output as wide as the input ("same" padding along the row, 1-D or 2-D):
 * an output position p = oy * W + ox reads input element p + shift for every tap, so each
 * im2col row is one long copy; only the columns whose tap falls into the padding (wrapped
 * into a neighbouring row by the long copy) and the rows outside the input are zeroed. */
static bool im2col_is_same_row(const conv_geom *g) {
    return g->in[0] == 1 && g->k[0] == 1 && g->s[1] == 1 && g->s[2] == 1 && g->out[2] == g->in[2];
}

static void zero_f32(float *d, int64_t n) {
    if (n > 0) memset(d, 0, (size_t)n * sizeof(float));
}

static void im2col_same_row_f32(const conv_geom *g, const float *x, int64_t c0, int64_t c1,
                                float *col, int64_t nb) {
    const int64_t H = g->in[1], W = g->in[2], OH = g->out[1], HW = H * W;
    const int64_t KH = g->k[1], KW = g->k[2];
    float *dst = col;
    for (int64_t c = 0; c < g->Cg; c++) {
        const float *xc = x + c * g->in_sz;
        for (int64_t ky = 0; ky < KH; ky++) {
            const int64_t dy = ky * g->d[1] - g->pb[1]; /* iy = oy + dy */
            int64_t oy_lo = dy < 0 ? -dy : 0, oy_hi = H - dy < OH ? H - dy : OH;
            int64_t pa = oy_lo * W > c0 ? oy_lo * W : c0;
            int64_t pb = oy_hi * W < c1 ? oy_hi * W : c1;
            if (pb < pa) pb = pa;
            for (int64_t kx = 0; kx < KW; kx++, dst += nb) {
                const int64_t dx = kx * g->d[2] - g->pb[2]; /* ix = ox + dx */
                const int64_t shift = dy * W + dx;
                int64_t qa = -shift > pa ? -shift : pa, qb = HW - shift < pb ? HW - shift : pb;
                if (qb < qa) qb = qa;
                zero_f32(dst, qa - c0);
                if (qb > qa) memcpy(dst + (qa - c0), xc + qa + shift, (size_t)(qb - qa) * 4);
                zero_f32(dst + (qb - c0), c1 - qb);
                /* Columns whose tap lies in the left / right padding. */
                int64_t bl = dx < 0 ? -dx : 0, br = dx > 0 ? W - dx : W;
                if (bl > W) bl = W;
                if (br < 0) br = 0;
                if (bl == 0 && br == W) continue;
                for (int64_t oy = qa / W; oy * W < qb; oy++) {
                    int64_t row = oy * W;
                    for (int64_t ox = 0; ox < bl; ox++)
                        if (row + ox >= qa && row + ox < qb) dst[row + ox - c0] = 0.0f;
                    for (int64_t ox = br; ox < W; ox++)
                        if (row + ox >= qa && row + ox < qb) dst[row + ox - c0] = 0.0f;
                }
            }
        }
    }
}

/* C = op(A) * B, or C += op(A) * B with `accumulate`. */
static void gemm_serial(bool is_double, bool ta, int64_t m, int64_t n, int64_t k, const void *a,
                        int64_t lda, const void *b, int64_t ldb, void *c, int64_t ldc,
                        bool accumulate) {
    if (is_double)
        em_dgemm_serial(ta, false, m, n, k, 1.0, a, lda, b, ldb, accumulate ? 1.0 : 0.0, c, ldc);
    else
        em_sgemm_serial(ta, false, m, n, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f, c, ldc);
}

/* float32: start the output block from the bias so the GEMM accumulates onto it (BLAS then
 * skips its own zeroing pass and the epilogue has no bias to add). */
EM_VECTOR_CLONES
static void fill_bias_rows(float *restrict y, int64_t ldy, const float *restrict bias, int64_t rows,
                           int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float b = bias[r];
        float *restrict yr = y + r * ldy;
        for (int64_t c = 0; c < cols; c++) yr[c] = b;
    }
}

/* One work item on the packed-weight GEMM: output channels [m0, m1) (m0 on a panel boundary)
 * x output columns [c0, c1) of image n, group grp. The im2col panel (K rows of ld floats) is
 * written unless it is still there from the last item; pointwise convs read the input
 * directly. Bias, Z and the activation are fused. */
static void packed_item(const conv_job *j, const float *xg, float *col, int64_t n, int64_t grp,
                        int64_t c0, int64_t c1, int64_t m0, int64_t m1, bool new_panel) {
    const conv_geom *g = j->g;
    const int64_t K = g->Cg * g->k_sz, cols = c1 - c0;
    const int64_t row0 = n * g->M + grp * g->Mg + m0;
    float *y = (float *)j->y + row0 * g->out_sz + c0;
    const float *a = j->wpack + grp * j->wpack_group;
    const int64_t mpad = (g->Mg + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    em_cg_epilogue e = {
        .bias = j->bias ? (const float *)j->bias + grp * g->Mg + m0 : NULL,
        .z = j->z ? (const float *)j->z + row0 * g->out_sz + c0 : NULL,
        .ldz = g->out_sz,
        .act = &j->act,
    };
    if (j->pointwise) {
        em_cg_gemm(a, mpad, m0, m1 - m0, K, xg + c0, cols, EM_CG_NR, g->in_sz, g->in_sz, y,
                   g->out_sz, &e);
        return;
    }
    const int64_t ld = em_cg_panel_stride(cols);
    if (new_panel) {
        if (im2col_is_same_row(g))
            im2col_same_row_f32(g, xg, c0, c1, col, ld);
        else
            im2col_f32(g, xg, c0, c1, col, ld);
    }
    em_cg_gemm(a, mpad, m0, m1 - m0, K, col, cols, EM_CG_NR, ld, ld, y, g->out_sz, &e);
}

/* The same over columns [c0, c1) of all images (image n owns columns n * out_sz ...): the
 * weights are reused across the batch. The GEMM writes rows x (c1 - c0) into cbuf, then each
 * image's part is copied to Y (with Z and the activation when there is a Z). */
static void packed_batched_item(const conv_job *j, float *col, float *cbuf, int64_t grp, int64_t c0,
                                int64_t c1, int64_t m0, int64_t m1, bool new_panel) {
    const conv_geom *g = j->g;
    const int64_t K = g->Cg * g->k_sz, cols = c1 - c0, osz = g->out_sz, rows = m1 - m0;
    const bool same_row = im2col_is_same_row(g);
    const float *x = j->x;
    const int64_t ld = em_cg_panel_stride(cols);
    if (new_panel && j->gather) {
        em_gather_columns(j->gather, x + grp * g->Cg * g->in_sz, c0, c1, col, ld);
    } else if (new_panel) {
        for (int64_t q = c0; q < c1;) {
            const int64_t n = q / osz, e = (n + 1) * osz < c1 ? (n + 1) * osz : c1;
            const float *xg = x + (n * g->C + grp * g->Cg) * g->in_sz;
            if (same_row)
                im2col_same_row_f32(g, xg, q - n * osz, e - n * osz, col + (q - c0), ld);
            else
                im2col_f32(g, xg, q - n * osz, e - n * osz, col + (q - c0), ld);
            q = e;
        }
    }
    const em_activation none = {EM_ACT_NONE, 0.0f, 0.0f};
    em_cg_epilogue e = {
        .bias = j->bias ? (const float *)j->bias + grp * g->Mg + m0 : NULL,
        .act = j->z ? &none : &j->act,
    };
    const float *a = j->wpack + grp * j->wpack_group;
    const int64_t mpad = (g->Mg + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR;
    em_cg_gemm(a, mpad, m0, rows, K, col, cols, EM_CG_NR, ld, ld, cbuf, cols, &e);
    for (int64_t q = c0; q < c1;) {
        const int64_t n = q / osz, e1 = (n + 1) * osz < c1 ? (n + 1) * osz : c1;
        const int64_t off = (n * g->M + grp * g->Mg + m0) * osz + (q - n * osz);
        float *y = (float *)j->y + off;
        for (int64_t r = 0; r < rows; r++)
            memcpy(y + r * osz, cbuf + r * cols + (q - c0), (size_t)(e1 - q) * sizeof(float));
        if (j->z)
            em_epilogue(y, rows, e1 - q, osz, NULL, NULL, (const float *)j->z + off, osz, &j->act);
        q = e1;
    }
}

/* Items: ((n * G + grp) * n_panels + panel) * n_mblocks + mblock. */
static void conv_items(void *ctx, int slot, int64_t begin, int64_t end) {
    const conv_job *j = ctx;
    const conv_geom *g = j->g;
    const size_t es = j->is_double ? sizeof(double) : sizeof(float);
    const bool pointwise = j->pointwise;
    /* no scratch for pointwise: NULL + 0 is undefined (fuzzer, UBSan) */
    void *col = j->scratch ? j->scratch + (size_t)slot * j->slot_bytes : NULL;
    int64_t last_panel_key = -1; /* reuse the im2col panel across consecutive row blocks */
    const int64_t K = g->Cg * g->k_sz;
    for (int64_t it = begin; it < end; it++) {
        int64_t mb = it % j->n_mblocks, rest = it / j->n_mblocks;
        int64_t panel = rest % j->n_panels, ng = rest / j->n_panels;
        int64_t grp = ng % g->G, n = ng / g->G;
        int64_t c0 = panel * j->panel, c1 = c0 + j->panel < j->ncols ? c0 + j->panel : j->ncols;
        int64_t m0 = mb * j->m_block, m1 = m0 + j->m_block < g->Mg ? m0 + j->m_block : g->Mg;
        if (c0 >= c1 || m0 >= m1) continue;
        const char *xg = (const char *)j->x + (size_t)((n * g->C + grp * g->Cg) * g->in_sz) * es;
        if (j->batched) {
            packed_batched_item(j, col, (float *)((char *)col + j->cbuf_offset), grp, c0, c1, m0,
                                m1, rest != last_panel_key);
            last_panel_key = rest;
            continue;
        }
        if (j->wpack) {
            packed_item(j, (const float *)xg, col, n, grp, c0, c1, m0, m1, rest != last_panel_key);
            last_panel_key = rest;
            continue;
        }
        const char *wg = (const char *)j->w + (size_t)((grp * g->Mg + m0) * K) * es;
        int64_t row0 = n * g->M + grp * g->Mg + m0;
        char *yg = (char *)j->y + (size_t)(row0 * g->out_sz + c0) * es;
        const bool bias_first = j->bias && !j->is_double;
        if (bias_first)
            fill_bias_rows((float *)yg, g->out_sz, (const float *)j->bias + grp * g->Mg + m0,
                           m1 - m0, c1 - c0);
        if (pointwise) {
            gemm_serial(j->is_double, false, m1 - m0, c1 - c0, g->Cg, wg, g->Cg,
                        xg + (size_t)c0 * es, g->in_sz, yg, g->out_sz, bias_first);
        } else {
            if (rest != last_panel_key) {
                if (j->is_double)
                    im2col_f64(g, (const double *)xg, c0, c1, col, c1 - c0);
                else if (im2col_is_same_row(g))
                    im2col_same_row_f32(g, (const float *)xg, c0, c1, col, c1 - c0);
                else
                    im2col_f32(g, (const float *)xg, c0, c1, col, c1 - c0);
                last_panel_key = rest;
            }
            gemm_serial(j->is_double, false, m1 - m0, c1 - c0, K, wg, K, col, c1 - c0, yg,
                        g->out_sz, bias_first);
        }
        if (j->is_double || j->z || j->act.kind != EM_ACT_NONE)
            job_epilogue(j, row0, m1 - m0, c0, c1 - c0, !bias_first);
    }
}

/* ---- Depthwise 1-D / 2-D (group == C == M), float32, direct (1-D as planes of height 1) ----
 * 3x3 kernels with dilation 1 and strides 1 / 2 go to conv_dw.c on AVX-512 CPUs. Otherwise
 * each input plane is copied into a zero-bordered plane (Hp x Wp, slot scratch; the border is
 * zeroed once per slot), so every tap loop runs without bounds checks. Output rows of at least
 * 32 columns are computed straight into Y; narrower planes are computed as one long pass over
 * rows of the padded width (a few junk columns per row) and then compacted, so short rows do
 * not leave the vector units idle. 3x3 kernels sum their nine taps in registers. The vector
 * kernels are compiled for AVX-512 / AVX2 / baseline and the best is picked at load. */

/* y[i] = b + sum of the 3x3 taps for n outputs; r0..r2 point at the first tap of each kernel
 * row for output 0; outputs are sx apart in the input, taps dx apart. */
EM_VECTOR_CLONES
static void dw_3x3(float *restrict y, const float *restrict r0, const float *restrict r1,
                   const float *restrict r2, const float *restrict w, float b, int64_t n,
                   int64_t sx, int64_t dx) {
    const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3], w4 = w[4], w5 = w[5], w6 = w[6],
                w7 = w[7], w8 = w[8];
    const int64_t d2 = 2 * dx;
    if (sx == 1) {
        for (int64_t i = 0; i < n; i++)
            y[i] = b + w0 * r0[i] + w1 * r0[i + dx] + w2 * r0[i + d2] + w3 * r1[i] +
                   w4 * r1[i + dx] + w5 * r1[i + d2] + w6 * r2[i] + w7 * r2[i + dx] +
                   w8 * r2[i + d2];
    } else if (sx == 2) {
        for (int64_t i = 0; i < n; i++)
            y[i] = b + w0 * r0[2 * i] + w1 * r0[2 * i + dx] + w2 * r0[2 * i + d2] + w3 * r1[2 * i] +
                   w4 * r1[2 * i + dx] + w5 * r1[2 * i + d2] + w6 * r2[2 * i] +
                   w7 * r2[2 * i + dx] + w8 * r2[2 * i + d2];
    } else {
        for (int64_t i = 0; i < n; i++) {
            const int64_t q = i * sx;
            y[i] = b + w0 * r0[q] + w1 * r0[q + dx] + w2 * r0[q + d2] + w3 * r1[q] +
                   w4 * r1[q + dx] + w5 * r1[q + d2] + w6 * r2[q] + w7 * r2[q + dx] +
                   w8 * r2[q + d2];
        }
    }
}

/* Any kernel size: y = b, then one pass per tap; row `ld` floats apart in the padded plane. */
EM_VECTOR_CLONES
static void dw_any(float *restrict y, const float *restrict xp, int64_t ld, const float *restrict w,
                   float b, int64_t n, int64_t sx, int64_t dx, int64_t dy, int64_t KH, int64_t KW) {
    for (int64_t i = 0; i < n; i++) y[i] = b;
    for (int64_t ky = 0; ky < KH; ky++)
        for (int64_t kx = 0; kx < KW; kx++) {
            const float wv = w[ky * KW + kx];
            const float *restrict xr = xp + ky * dy * ld + kx * dx;
            if (sx == 1)
                for (int64_t i = 0; i < n; i++) y[i] += wv * xr[i];
            else
                for (int64_t i = 0; i < n; i++) y[i] += wv * xr[i * sx];
        }
}

typedef struct dw_geom {
    int64_t Hp, Wp, OH, OW, KH, KW, sy, sx, dy, dx;
    bool wide; /* narrow output: one pass over padded-width rows, then compact */
    int64_t plane_floats, wide_floats;
} dw_geom;

static dw_geom dw_geometry(const conv_geom *g) {
    dw_geom d;
    d.OH = g->out[1], d.OW = g->out[2], d.KH = g->k[1], d.KW = g->k[2];
    d.sy = g->s[1], d.sx = g->s[2], d.dy = g->d[1], d.dx = g->d[2];
    /* Rows / columns the taps can touch, and at least the input placed after the pads. */
    d.Hp = (d.OH - 1) * d.sy + (d.KH - 1) * d.dy + 1;
    d.Wp = (d.OW - 1) * d.sx + (d.KW - 1) * d.dx + 1;
    if (d.Hp < g->pb[1] + g->in[1]) d.Hp = g->pb[1] + g->in[1];
    if (d.Wp < g->pb[2] + g->in[2]) d.Wp = g->pb[2] + g->in[2];
    d.wide = d.OW < 32 && d.sx == 1 && d.sy == 1;
    /* The wide pass reads up to (KW - 1) * dx past the last padded row. */
    d.plane_floats = (d.Hp * d.Wp + d.KW * d.dx + 16 + 15) / 16 * 16;
    d.wide_floats = d.wide ? (d.OH * d.Wp + 15) / 16 * 16 : 0;
    return d;
}

static void dw_taps(const dw_geom *d, float *y, const float *xp, const float *w, float b,
                    int64_t n) {
    if (d->KH == 3 && d->KW == 3)
        dw_3x3(y, xp, xp + d->dy * d->Wp, xp + 2 * d->dy * d->Wp, w, b, n, d->sx, d->dx);
    else
        dw_any(y, xp, d->Wp, w, b, n, d->sx, d->dx, d->dy, d->KH, d->KW);
}

/* 3x3, dilation 1, rows of at least 32 outputs: straight from the input, no padded copy.
 * Rows above / below the input read a zero row; the output columns whose taps cross the
 * left / right edge are computed one by one. Each row gets its epilogue while in L1. */
static bool dw_direct_ok(const conv_geom *g, const dw_geom *d) {
    return d->KH == 3 && d->KW == 3 && d->dy == 1 && d->dx == 1 && !d->wide && g->pb[2] <= 1 &&
           g->pb[1] <= 2 && g->in[2] >= 3;
}

static void dw_direct_plane(const conv_job *j, const dw_geom *d, const float *x, const float *w,
                            float b, const float *zrow, float *y, const float *z) {
    const conv_geom *g = j->g;
    const int64_t H = g->in[1], W = g->in[2], py = g->pb[1], px = g->pb[2];
    /* Outputs whose three taps lie inside the row: ox * sx - px >= 0, ox * sx - px + 2 < W. */
    const int64_t lo = (px + d->sx - 1) / d->sx;
    int64_t hi = (W - 3 + px) / d->sx + 1;
    if (hi > d->OW) hi = d->OW;
    for (int64_t oy = 0; oy < d->OH; oy++) {
        const float *r[3];
        for (int ky = 0; ky < 3; ky++) {
            const int64_t iy = oy * d->sy - py + ky;
            r[ky] = iy >= 0 && iy < H ? x + iy * W : zrow;
        }
        float *yr = y + oy * d->OW;
        if (hi > lo)
            dw_3x3(yr + lo, r[0] + lo * d->sx - px, r[1] + lo * d->sx - px, r[2] + lo * d->sx - px,
                   w, b, hi - lo, d->sx, 1);
        for (int64_t ox = 0; ox < d->OW; ox++) {
            if (ox == lo && hi > lo) ox = hi;
            if (ox >= d->OW) break;
            float acc = b;
            for (int kx = 0; kx < 3; kx++) {
                const int64_t ix = ox * d->sx - px + kx;
                if (ix < 0 || ix >= W) continue;
                acc += w[kx] * r[0][ix] + w[3 + kx] * r[1][ix] + w[6 + kx] * r[2][ix];
            }
            yr[ox] = acc;
        }
        em_epilogue(yr, 1, d->OW, d->OW, NULL, NULL, z ? z + oy * d->OW : NULL, d->OW, &j->act);
    }
}

/* The AVX-512 3x3 kernel's view of a depthwise geometry (conv_dw.h). */
static em_dw_plane dw_plane_of(const conv_geom *g) {
    return (em_dw_plane){.H = g->in[1],
                         .W = g->in[2],
                         .OH = g->out[1],
                         .OW = g->out[2],
                         .sy = g->s[1],
                         .sx = g->s[2],
                         .py = g->pb[1],
                         .px = g->pb[2]};
}

static bool dw_vector_ok(const conv_geom *g) {
    const em_dw_plane p = dw_plane_of(g);
    return g->k[1] == 3 && g->k[2] == 3 && g->d[1] == 1 && g->d[2] == 1 && em_dw3x3_supported(&p);
}

static void depthwise_planes(void *ctx, int slot, int64_t begin, int64_t end) {
    const conv_job *j = ctx;
    const conv_geom *g = j->g;
    if (j->dw_flat) { /* set by conv_exec for the vector kernel */
        /* Items are (image, band) for large planes: all channels of one band of one image;
         * planes for small ones (flat runs), where a band would leave too little per plane. */
        const em_dw_plane p = dw_plane_of(g);
        em_dw_planes q = {.x = j->x,
                          .w = j->w,
                          .bias = j->bias,
                          .z = j->z,
                          .y = j->y,
                          .channels = g->C,
                          .act = &j->act,
                          .flat = j->dw_flat,
                          .parts = j->dw_bands};
        if (j->dw_bands == 0) {
            q.parts = 1;
            em_dw3x3_planes(&p, &q, begin, end);
            return;
        }
        for (int64_t it = begin; it < end; it++) {
            const int64_t n = it / j->dw_bands;
            q.part = it % j->dw_bands;
            em_dw3x3_planes(&p, &q, n * g->C, (n + 1) * g->C);
        }
        return;
    }
    const dw_geom d = dw_geometry(g);
    if (dw_direct_ok(g, &d)) {
        float *zrow = (float *)(j->scratch + (size_t)slot * j->slot_bytes);
        memset(zrow, 0, (size_t)g->in[2] * sizeof(float));
        for (int64_t plane = begin; plane < end; plane++) {
            const int64_t c = plane % g->C;
            dw_direct_plane(j, &d, (const float *)j->x + plane * g->in_sz,
                            (const float *)j->w + c * g->k_sz,
                            j->bias ? ((const float *)j->bias)[c] : 0.0f, zrow,
                            (float *)j->y + plane * g->out_sz,
                            j->z ? (const float *)j->z + plane * g->out_sz : NULL);
        }
        return;
    }
    const int64_t H = g->in[1], W = g->in[2], py = g->pb[1], px = g->pb[2];
    float *xp = (float *)(j->scratch + (size_t)slot * j->slot_bytes);
    float *wide = xp + d.plane_floats;
    memset(xp, 0, (size_t)d.plane_floats * sizeof(float)); /* the border stays zero */
    for (int64_t plane = begin; plane < end; plane++) {
        const int64_t c = plane % g->C;
        const float *x = (const float *)j->x + plane * g->in_sz;
        const float *w = (const float *)j->w + c * g->k_sz;
        float *y = (float *)j->y + plane * g->out_sz;
        const float b = j->bias ? ((const float *)j->bias)[c] : 0.0f;
        for (int64_t iy = 0; iy < H; iy++) copy_f32(xp + (iy + py) * d.Wp + px, x + iy * W, W);
        if (d.wide) {
            dw_taps(&d, wide, xp, w, b, d.OH * d.Wp);
            for (int64_t oy = 0; oy < d.OH; oy++) copy_f32(y + oy * d.OW, wide + oy * d.Wp, d.OW);
        } else {
            for (int64_t oy = 0; oy < d.OH; oy++)
                dw_taps(&d, y + oy * d.OW, xp + oy * d.sy * d.Wp, w, b, d.OW);
        }
        const float *z = j->z ? (const float *)j->z + plane * g->out_sz : NULL;
        em_epilogue(y, 1, g->out_sz, g->out_sz, NULL, NULL, z, g->out_sz, &j->act);
    }
}

/* Vector lanes the packed GEMM computes for a panel of w columns (tiles of 48, then whole
 * vectors of 16 for the rest). */
static int64_t panel_lanes(int64_t w) {
    return w / EM_CG_NR * EM_CG_NR + (w % EM_CG_NR + 15) / 16 * 16;
}

/* Column panels for the packed GEMM: at most 1.5x max_cols wide (the L2 budget). Among
 * panel counts near ncols / max_cols and widths exact, rounded to a vector or to a tile,
 * pick the plan whose busiest thread computes the fewest lanes (items are split into
 * contiguous ranges per thread; each item also costs a little fixed overhead). */
static void packed_panels(int64_t ncols, int64_t max_cols, int64_t groups, int threads,
                          int64_t *n_panels, int64_t *panel) {
    const int64_t n0 = (ncols + max_cols - 1) / max_cols, widest = max_cols * 3 / 2;
    static const int64_t rounding[] = {1, 16, EM_CG_NR};
    int64_t best_cost = -1;
    *n_panels = n0;
    *panel = (ncols + n0 - 1) / n0;
    for (int64_t n = n0 > 2 * threads ? n0 - 2 * threads : 1; n <= n0 + 2 * threads; n++) {
        for (int r = 0; r < 3; r++) {
            int64_t p = (ncols + n - 1) / n;
            p = (p + rounding[r] - 1) / rounding[r] * rounding[r];
            if (p > ncols) p = ncols;
            if (p > widest && n < n0) continue;
            const int64_t np = (ncols + p - 1) / p, items = groups * np;
            const int slots = items < threads ? (int)items : threads;
            int64_t cost = 0;
            for (int sl = 0; sl < slots; sl++) {
                int64_t c = 0;
                for (int64_t it = items * sl / slots; it < items * (sl + 1) / slots; it++) {
                    const int64_t pi = it % np, w = pi == np - 1 ? ncols - pi * p : p;
                    c += panel_lanes(w) + 16;
                }
                if (c > cost) cost = c;
            }
            if (best_cost < 0 || cost < best_cost) {
                best_cost = cost;
                *n_panels = np;
                *panel = p;
            }
        }
    }
}

/* 1x1 kernel, stride 1, no padding: the GEMM reads the input rows as they are. */
static bool is_pointwise(const conv_geom *g) {
    bool pw = g->k_sz == 1;
    for (int i = 0; i < SP; i++)
        if (g->s[i] != 1 || g->pb[i] != 0 || g->pe[i] != 0) pw = false;
    return pw;
}

/* Entry (row, u) of the gather table: the input offset (from image 0 of the block, channel 0
 * of the group) that im2col row `row` (channel, kz, ky, kx) reads for column u of the block, or
 * -1 where the tap falls into the padding. */
static void fill_gather_table(const conv_geom *g, em_gather_table *t) {
    const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];
    const int64_t D = g->in[0], H = g->in[1], W = g->in[2];
    const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2];
    for (int64_t r = 0; r < t->rows; r++) {
        const int64_t kx = r % KW, ky = r / KW % KH, kz = r / (KW * KH) % KD, c = r / g->k_sz;
        int32_t *row = t->idx + r * t->stride;
        int64_t u = 0;
        for (int64_t n = 0; u < t->stride; n++) {
            const int64_t base = n * t->image_floats + c * g->in_sz;
            for (int64_t oz = 0; oz < OD && u < t->stride; oz++) {
                const int64_t iz = oz * g->s[0] - g->pb[0] + kz * g->d[0];
                for (int64_t oy = 0; oy < OH && u < t->stride; oy++) {
                    const int64_t iy = oy * g->s[1] - g->pb[1] + ky * g->d[1];
                    const bool row_in = iz >= 0 && iz < D && iy >= 0 && iy < H;
                    for (int64_t ox = 0; ox < OW && u < t->stride; ox++, u++) {
                        const int64_t ix = ox * g->s[2] - g->pb[2] + kx * g->d[2];
                        row[u] = row_in && ix >= 0 && ix < W
                                     ? (int32_t)(base + (iz * H + iy) * W + ix)
                                     : -1;
                    }
                }
            }
        }
    }
}

/* Run a forward convolution on float32 or float64 buffers. */
static ember_status conv_exec(const conv_geom *g, bool is_double, const void *x, const void *w,
                              const float *wpack, const em_gather_table *gather, const void *bias,
                              const void *z, void *y, const em_activation *act, em_exec *ex,
                              ember_error *err) {
    conv_job j = {.g = g, .is_double = is_double, .x = x, .w = w, .bias = bias, .z = z, .y = y};
    if (act) j.act = *act;
    if (g->batch == 0 || g->M == 0 || g->out_sz == 0) return EMBER_OK;
    const size_t es = is_double ? sizeof(double) : sizeof(float);
    if (g->Cg == 0 || g->k_sz == 0) {
        /* Empty reduction: output is bias (+ Z, activation). */
        memset(y, 0, (size_t)(g->batch * g->M * g->out_sz) * es);
        for (int64_t r = 0; r < g->batch * g->M; r++) job_epilogue(&j, r, 1, 0, g->out_sz, true);
        return EMBER_OK;
    }
    /* Tiny convolutions run on the calling thread: waking the pool costs more than the work. */
    double macs =
        (double)g->batch * (double)g->M * (double)g->out_sz * (double)g->Cg * (double)g->k_sz;
    em_exec *par = macs < 1e5 ? NULL : ex;
    int threads = par ? em_exec_threads(par) : 1;
    if (threads < 1) threads = 1;
    bool pointwise = is_pointwise(g);
    if (!is_double && g->Cg == 1 && g->Mg == 1 && g->nsp <= 2 && !pointwise) {
        int slots = em_slot_count(par, g->batch * g->C);
        dw_geom d = dw_geometry(g);
        em_dw_flat flat;
        if (dw_vector_ok(g)) { /* planes read in place; small ones as flat runs */
            const em_dw_plane p = dw_plane_of(g);
            em_dw3x3_flat_prepare(&p, &flat);
            j.dw_flat = &flat;
            if (g->out_sz <= 16 * EM_DW_FLAT_MAX_VECTORS) { /* small: ranges of planes */
                em_parallel_slots_shared(par, g->batch * g->C, depthwise_planes, &j);
                return EMBER_OK;
            }
            /* Large planes: split by image and spatial band (not by channel), like the GEMM
             * convolutions before and after, so each thread reads what it wrote. */
            const int threads_dw = par ? em_exec_threads(par) : 1;
            j.dw_bands = g->batch % threads_dw == 0 ? 1 : threads_dw;
            if (j.dw_bands > g->out[1]) j.dw_bands = g->out[1] > 0 ? g->out[1] : 1;
            em_parallel_slots(par, g->batch * j.dw_bands, depthwise_planes, &j);
            return EMBER_OK;
        } else {
            j.slot_bytes = (size_t)(d.plane_floats + d.wide_floats) * sizeof(float);
            j.scratch = em_exec_scratch(ex, j.slot_bytes * (size_t)slots, err);
            if (!j.scratch) return SCRATCH_FAILED;
        }
        em_parallel_slots_shared(par, g->batch * g->C, depthwise_planes, &j);
        return EMBER_OK;
    }
    const int64_t K = g->Cg * g->k_sz;
    if (wpack && !is_double) {
        j.wpack = wpack;
        j.wpack_group = em_cg_packed_floats(g->Mg, K);
    }
    /* Small outputs of several images: one GEMM over all their columns, so each weight panel
     * is loaded once for the batch instead of once per image. */
    j.batched = j.wpack && g->batch > 1 && g->out_sz < BATCHED_MAX_COLS;
    /* Columns of several images: im2col tiles, through the gather table made at creation or
     * one made now when the batch repays it; pointwise convs copy whole rows instead. */
    const bool use_table = j.batched && !pointwise;
    if (j.batched) pointwise = false;
    em_gather_table run_gather;
    if (use_table && gather) {
        j.gather = gather;
    } else if (use_table && em_gather_shape(K, g->out_sz, g->C * g->in_sz, &run_gather) &&
               2 * run_gather.stride <= g->batch * g->out_sz) {
        run_gather.idx = em_exec_scratch(ex, em_gather_bytes(&run_gather), err);
        if (!run_gather.idx) return SCRATCH_FAILED;
        fill_gather_table(g, &run_gather);
        j.gather = &run_gather;
    }
    const int64_t ncols = j.batched ? g->batch * g->out_sz : g->out_sz;
    j.ncols = ncols;
    /* Column tiles of the packed GEMM; 16 (a vector) for BLAS. */
    const int64_t quantum = j.wpack ? EM_CG_NR : 16;
    /* Column panels: as wide as the L2 budget allows, balanced over the output. */
    int64_t max_cols = (int64_t)(PANEL_BYTES / es) / (pointwise ? 1 : K);
    if (pointwise) max_cols = j.wpack ? 480 : 512;
    max_cols = max_cols / quantum * quantum;
    if (max_cols < MIN_PANEL_COLS) max_cols = j.wpack ? EM_CG_NR : MIN_PANEL_COLS;
    int64_t n_panels = (ncols + max_cols - 1) / max_cols;
    int64_t groups = j.batched ? g->G : g->batch * g->G;
    int64_t panel;
    if (j.wpack) {
        packed_panels(ncols, max_cols, groups, threads, &n_panels, &panel);
        /* Few columns and more filters than columns (the deep 14x14 and 7x7 layers): the
         * weights outweigh the input, so split the filters (row blocks, below) rather than the
         * columns, and each thread streams only its share of the weights. */
        if (groups == 1 && threads > 1 && ncols <= max_cols && g->Mg >= ncols &&
            g->Mg >= 2 * EM_CG_MR * threads) {
            n_panels = 1;
            panel = ncols;
        }
    } else {
        if (groups * n_panels < threads && ncols >= 2 * MIN_PANEL_COLS) {
            int64_t want = (threads + groups - 1) / groups;
            int64_t cap = ncols / MIN_PANEL_COLS;
            n_panels = want < cap ? want : cap;
        }
        if (groups * n_panels < 4 * threads && (groups * n_panels) % threads != 0) {
            /* Few items: round up to a multiple of the thread count so no thread idles. */
            int64_t total = (groups * n_panels + threads - 1) / threads * threads;
            int64_t want = (total + groups - 1) / groups;
            if (ncols / want >= 16) n_panels = want;
        }
        panel = (ncols + n_panels - 1) / n_panels;
        if (panel < ncols) panel = (panel + quantum - 1) / quantum * quantum;
        n_panels = (ncols + panel - 1) / panel;
    }
    /* Row blocks when there is still not enough work for every thread (deep, small layers). */
    int64_t n_mblocks = 1;
    if (groups * n_panels < threads && g->Mg >= 32) {
        n_mblocks = (threads + groups * n_panels - 1) / (groups * n_panels);
        if (n_mblocks > g->Mg / 16) n_mblocks = g->Mg / 16;
    }
    j.m_block = (g->Mg + n_mblocks - 1) / n_mblocks;
    if (j.wpack) j.m_block = (j.m_block + EM_CG_MR - 1) / EM_CG_MR * EM_CG_MR; /* whole panels */
    j.n_mblocks = (g->Mg + j.m_block - 1) / j.m_block;
    j.panel = panel;
    j.n_panels = n_panels;
    j.pointwise = pointwise;
    int64_t items = groups * n_panels * j.n_mblocks;
    int slots = em_slot_count(par, items);
    if (!pointwise) {
        j.slot_bytes =
            ((size_t)(K * (j.wpack ? em_cg_panel_stride(panel) : panel)) * es + 63) / 64 * 64;
        j.cbuf_offset = j.slot_bytes;
        if (j.batched) j.slot_bytes += ((size_t)(j.m_block * panel) * es + 63) / 64 * 64;
        j.scratch = em_exec_scratch(ex, j.slot_bytes * (size_t)slots, err);
        if (!j.scratch) return SCRATCH_FAILED;
    }
    em_parallel_slots(par, items, conv_items, &j);
    return EMBER_OK;
}

/* ---- ConvTranspose ---- */

typedef struct convt_job {
    const conv_geom *g;
    bool is_double;
    const void *x, *w, *bias;
    void *y;
    char *scratch;
    size_t slot_bytes;
    int64_t panel, m_block, n_mblocks;
} convt_job;

/* col2im: rows (m_local, kz, ky, kx) x input columns [i0, i1) accumulate into output planes. */
#define DEFINE_COL2IM(T, NAME)                                                                     \
    static void NAME(const conv_geom *g, const T *col, int64_t i0, int64_t i1, int64_t mrows,      \
                     T *y) {                                                                       \
        const int64_t nb = i1 - i0, H = g->in[1], W = g->in[2];                                    \
        const int64_t OD = g->out[0], OH = g->out[1], OW = g->out[2];                              \
        const int64_t KD = g->k[0], KH = g->k[1], KW = g->k[2], sx = g->s[2];                      \
        for (int64_t p = i0; p < i1;) {                                                            \
            const int64_t iz = p / (H * W), rem = p % (H * W), iy = rem / W, ix0 = rem % W;        \
            const int64_t len = W - ix0 < i1 - p ? W - ix0 : i1 - p;                               \
            for (int64_t m = 0; m < mrows; m++) {                                                  \
                T *ym = y + m * g->out_sz;                                                         \
                for (int64_t kz = 0; kz < KD; kz++) {                                              \
                    const int64_t oz = iz * g->s[0] - g->pb[0] + kz * g->d[0];                     \
                    if (oz < 0 || oz >= OD) continue;                                              \
                    for (int64_t ky = 0; ky < KH; ky++) {                                          \
                        const int64_t oy = iy * g->s[1] - g->pb[1] + ky * g->d[1];                 \
                        if (oy < 0 || oy >= OH) continue;                                          \
                        T *yrow = ym + (oz * OH + oy) * OW;                                        \
                        const T *src0 = col + ((m * KD + kz) * KH + ky) * KW * nb + (p - i0);      \
                        for (int64_t kx = 0; kx < KW; kx++) {                                      \
                            const int64_t off = kx * g->d[2] - g->pb[2];                           \
                            int64_t lo = ceil_div(-off, sx),                                       \
                                    hi = em_floor_div(OW - 1 - off, sx) + 1;                       \
                            if (lo < ix0) lo = ix0;                                                \
                            if (hi > ix0 + len) hi = ix0 + len;                                    \
                            const T *restrict src = src0 + kx * nb;                                \
                            if (sx == 1)                                                           \
                                for (int64_t ix = lo; ix < hi; ix++)                               \
                                    yrow[ix + off] += src[ix - ix0];                               \
                            else                                                                   \
                                for (int64_t ix = lo; ix < hi; ix++)                               \
                                    yrow[ix * sx + off] += src[ix - ix0];                          \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            p += len;                                                                              \
        }                                                                                          \
    }
DEFINE_COL2IM(float, col2im_f32)
DEFINE_COL2IM(double, col2im_f64)

/* Items: (n * G + grp) * n_mblocks + mblock; each walks all input panels for its channels. */
static void convt_items(void *ctx, int slot, int64_t begin, int64_t end) {
    const convt_job *j = ctx;
    const conv_geom *g = j->g;
    const size_t es = j->is_double ? sizeof(double) : sizeof(float);
    void *col = j->scratch + (size_t)slot * j->slot_bytes;
    const int64_t ldw = g->Mg * g->k_sz;
    for (int64_t it = begin; it < end; it++) {
        int64_t mb = it % j->n_mblocks, ng = it / j->n_mblocks;
        int64_t grp = ng % g->G, n = ng / g->G;
        int64_t m0 = mb * j->m_block, m1 = m0 + j->m_block < g->Mg ? m0 + j->m_block : g->Mg;
        if (m0 >= m1) continue;
        const char *xg = (const char *)j->x + (size_t)((n * g->C + grp * g->Cg) * g->in_sz) * es;
        const char *wg = (const char *)j->w + (size_t)(grp * g->Cg * ldw + m0 * g->k_sz) * es;
        int64_t row0 = n * g->M + grp * g->Mg + m0;
        char *yg = (char *)j->y + (size_t)(row0 * g->out_sz) * es;
        /* Start from the bias (or zero), then accumulate every kernel tap. */
        for (int64_t m = m0; m < m1; m++) {
            int64_t mm = grp * g->Mg + m;
            if (j->is_double) {
                double *ym = (double *)yg + (m - m0) * g->out_sz;
                double b = j->bias ? ((const double *)j->bias)[mm] : 0.0;
                for (int64_t q = 0; q < g->out_sz; q++) ym[q] = b;
            } else {
                float *ym = (float *)yg + (m - m0) * g->out_sz;
                float b = j->bias ? ((const float *)j->bias)[mm] : 0.0f;
                for (int64_t q = 0; q < g->out_sz; q++) ym[q] = b;
            }
        }
        const int64_t rows = (m1 - m0) * g->k_sz;
        for (int64_t i0 = 0; i0 < g->in_sz; i0 += j->panel) {
            int64_t i1 = i0 + j->panel < g->in_sz ? i0 + j->panel : g->in_sz;
            /* col (rows x nb) = W_g[:, m0..m1 taps]^T x X_g[:, i0..i1] */
            gemm_serial(j->is_double, true, rows, i1 - i0, g->Cg, wg, ldw, xg + (size_t)i0 * es,
                        g->in_sz, col, i1 - i0, false);
            if (j->is_double)
                col2im_f64(g, col, i0, i1, m1 - m0, (double *)yg);
            else
                col2im_f32(g, col, i0, i1, m1 - m0, (float *)yg);
        }
    }
}

static ember_status convt_exec(const conv_geom *g, bool is_double, const void *x, const void *w,
                               const void *bias, void *y, em_exec *ex, ember_error *err) {
    const size_t es = is_double ? sizeof(double) : sizeof(float);
    if (g->batch == 0 || g->M == 0 || g->out_sz == 0) return EMBER_OK;
    convt_job j = {.g = g, .is_double = is_double, .x = x, .w = w, .bias = bias, .y = y};
    double macs =
        (double)g->batch * (double)g->C * (double)g->in_sz * (double)g->Mg * (double)g->k_sz;
    em_exec *par = macs < 1e5 ? NULL : ex; /* tiny: stay on the calling thread */
    int threads = par ? em_exec_threads(par) : 1;
    int64_t groups = g->batch * g->G;
    int64_t n_mblocks = 1;
    if (groups < threads && g->Mg > 1) {
        n_mblocks = (threads + groups - 1) / groups;
        if (n_mblocks > g->Mg) n_mblocks = g->Mg;
    }
    j.m_block = (g->Mg + n_mblocks - 1) / n_mblocks;
    j.n_mblocks = (g->Mg + j.m_block - 1) / j.m_block;
    int64_t rows = j.m_block * g->k_sz;
    int64_t panel = (int64_t)(PANEL_BYTES / es) / (rows > 0 ? rows : 1);
    panel = panel / 16 * 16;
    if (panel < 16) panel = 16;
    if (panel > g->in_sz) panel = g->in_sz;
    if (panel < 1) panel = 1;
    j.panel = panel;
    int64_t items = groups * j.n_mblocks;
    int slots = em_slot_count(par, items);
    j.slot_bytes = ((size_t)(rows * panel) * es + 63) / 64 * 64;
    j.scratch = em_exec_scratch(ex, j.slot_bytes * (size_t)slots + 64, err);
    if (!j.scratch) return SCRATCH_FAILED;
    em_parallel_slots(par, items, convt_items, &j);
    return EMBER_OK;
}

/* ============================================================================================
 * Conv / ConvTranspose / FusedConv kernels
 * ========================================================================================== */

typedef struct conv_state {
    conv_attrs attrs;
    em_activation act;
    /* Constant float32 W packed once for em_cg_gemm (NULL: not packed); used at run only
     * when W is that same tensor (data pointer and shape). */
    float *wpack;
    const void *wpack_src;
    int64_t wpack_M, wpack_K;
    /* Or, for 3x3 stride-1 convs with enough channels, the Winograd-transformed W
     * (conv_winograd.h), used under the same condition. */
    float *wino;
    const void *wino_src;
    int64_t wino_M, wino_C, wino_tile;
    /* Or, for few input channels, W packed for the direct kernel (conv_direct.h). */
    float *dc;
    const void *dc_src;
    int64_t dc_M, dc_C, dc_KH, dc_KW;
    /* With wpack, when the input's planes are known at creation: the im2col gather table for
     * whole-batch runs (conv_gather.h), used while the run's geometry is gather_geom's. */
    em_gather_table gather;
    conv_geom gather_geom;
    /* ConvTranspose: W^T packed for convt_gemm.c (same condition on W), and when the planes
     * are known at creation, their gather table (used while the run's geometry is ct_geom's). */
    float *ct;
    const void *ct_src;
    int64_t ct_C, ct_Mg, ct_k_sz;
    em_ct_table ct_table;
    conv_geom ct_geom;
} conv_state;

static bool conv_float_type(ember_dtype dt) {
    return dt == EMBER_FLOAT || dt == EMBER_DOUBLE || dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16;
}

static const em_tensor *opt_in(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_inputs ? in[i] : NULL;
}

/* Bias must be 1-D of length M. */
static ember_status check_bias(const em_node *node, const em_tensor *b, int64_t m,
                               ember_error *err) {
    char d[256];
    if (!b || b->rank < 0) return EMBER_OK;
    if (b->rank != 1 || (m >= 0 && b->dims[0] >= 0 && b->dims[0] != m)) {
        char sh[128];
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: bias B %s must be 1-D with %lld elements (one per output channel)",
                       em_node_desc(node, d, sizeof d), em_shape_str(b, sh, sizeof sh),
                       (long long)m);
    }
    return EMBER_OK;
}

/* w_input / b_input: positions of W and the bias among the inputs (b_input -1: none). */
static ember_status conv_create_common(const em_graph *g, em_node *node, bool transpose,
                                       int w_input, int b_input, void **state, ember_error *err) {
    conv_state *st = calloc(1, sizeof *st);
    if (!st) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "Conv state: out of memory");
    ember_status s = conv_read_attrs(node, transpose, &st->attrs, err);
    if (s == EMBER_OK) s = em_activation_from_node(node, &st->act, err);
    if (s == EMBER_OK && g && b_input >= 0 && node->n_inputs > b_input) {
        /* A bias of the wrong length is a broken export: refuse it now, not at run. */
        const em_tensor *w = em_node_input_info(g, node, w_input);
        const em_tensor *b = em_node_input_info(g, node, b_input);
        if (w && b && w->rank >= 2) {
            int64_t m =
                transpose ? (w->dims[1] >= 0 ? w->dims[1] * st->attrs.group : -1) : w->dims[0];
            s = check_bias(node, b, m, err);
        }
    }
    if (s != EMBER_OK) {
        free(st);
        return s;
    }
    *state = st;
    return EMBER_OK;
}

/* 3x3, stride 1, dilation 1, one group, 2-D: the shapes the Winograd path computes. */
static bool wino_eligible(const conv_attrs *a, const em_tensor *w) {
    if (!em_wino_available() || a->group != 1 || w->rank != 4 || w->dims[2] != 3 || w->dims[3] != 3)
        return false;
    for (int64_t i = 0; i < a->n_strides; i++)
        if (a->strides[i] != 1) return false;
    for (int64_t i = 0; i < a->n_dil; i++)
        if (a->dil[i] != 1) return false;
    return true;
}

static bool static_planes(const em_graph *g, const em_node *node, const conv_state *st,
                          conv_geom *geom);

/* Pack a constant float32 W (M x K per group) for the vector GEMM when the CPU has it.
 * Depthwise convs keep their direct kernel. Failure to pack only costs speed. */
static void conv_pack_weights(const em_graph *g, const em_node *node, conv_state *st) {
    const em_tensor *w = g ? em_node_fixed_input(g, node, 1) : NULL;
    if (!w || w->dtype != EMBER_FLOAT || !w->data || w->rank < 3 || !em_cg_available()) return;
    int64_t M = w->dims[0], G = st->attrs.group, K = em_shape_numel(w->dims + 1, w->rank - 1);
    if (M <= 0 || K <= 0 || M % G != 0) return;
    int64_t Mg = M / G;
    if (Mg == 1 && w->dims[1] == 1) return; /* depthwise */
    if (G == 1 && w->rank == 4 && em_dc_eligible(M, w->dims[1], w->dims[2], w->dims[3])) {
        const int64_t C = w->dims[1], KH = w->dims[2], KW = w->dims[3];
        float *d =
            em_aligned_alloc_uninit((size_t)em_dc_packed_floats(M, C, KH, KW) * sizeof(float));
        if (d) {
            em_dc_pack((const float *)w->data, M, C, KH, KW, d);
            st->dc = d;
            st->dc_src = w->data;
            st->dc_M = M, st->dc_C = C, st->dc_KH = KH, st->dc_KW = KW;
            return;
        }
    }
    if (wino_eligible(&st->attrs, w) && em_wino_worth_it(M, w->dims[1])) {
        conv_geom geom;
        const bool known = static_planes(g, node, st, &geom) && geom.nsp == 2;
        const int64_t C = w->dims[1], tile = em_wino_tile_for(M, C, known ? geom.out[1] : 0,
                                                              known ? geom.out[2] : 0);
        float *u =
            em_aligned_alloc_uninit((size_t)em_wino_packed_floats(M, C, tile) * sizeof(float));
        if (u && em_wino_pack((const float *)w->data, M, C, tile, u)) {
            st->wino = u;
            st->wino_src = w->data;
            st->wino_M = M;
            st->wino_C = C;
            st->wino_tile = tile;
            return;
        }
        em_aligned_free(u);
    }
    int64_t per = em_cg_packed_floats(Mg, K);
    float *p = em_aligned_alloc_uninit((size_t)(per * G) * sizeof(float));
    if (!p) return;
    for (int64_t grp = 0; grp < G; grp++)
        em_cg_pack((const float *)w->data + grp * Mg * K, Mg, K, p + grp * per);
    st->wpack = p;
    st->wpack_src = w->data;
    st->wpack_M = M;
    st->wpack_K = K;
}

static em_ct_geom ct_geom_of(const conv_geom *g) {
    em_ct_geom c = {.batch = g->batch, .C = g->C, .M = g->M, .G = g->G};
    for (int i = 0; i < SP; i++) {
        c.in[i] = g->in[i], c.out[i] = g->out[i], c.k[i] = g->k[i];
        c.s[i] = g->s[i], c.d[i] = g->d[i], c.pb[i] = g->pb[i];
    }
    return c;
}

/* Same planes (everything but the batch size). */
static bool same_planes(const conv_geom *a, const conv_geom *b) {
    if (a->C != b->C || a->M != b->M || a->G != b->G) return false;
    for (int i = 0; i < SP; i++)
        if (a->in[i] != b->in[i] || a->out[i] != b->out[i] || a->k[i] != b->k[i] ||
            a->s[i] != b->s[i] || a->d[i] != b->d[i] || a->pb[i] != b->pb[i])
            return false;
    return true;
}

/* The geometry of one image when the input's planes and W are known at creation. */
static bool static_planes(const em_graph *g, const em_node *node, const conv_state *st,
                          conv_geom *geom) {
    const em_tensor *xi = g ? em_node_input_info(g, node, 0) : NULL;
    const em_tensor *w = g ? em_node_fixed_input(g, node, 1) : NULL;
    if (!xi || !w || xi->rank < 3 || xi->rank > EM_MAX_RANK) return false;
    em_tensor x1 = *xi;
    x1.dims[0] = 1;
    for (int i = 1; i < x1.rank; i++)
        if (x1.dims[i] < 0) return false;
    int64_t dims[EM_MAX_RANK];
    return conv_geometry(node, &st->attrs, &x1, w, geom, dims, NULL) == EMBER_OK;
}

/* With packed weights and the input's planes known now, make the gather table of whole-batch
 * runs once instead of per run. Failure only costs speed. */
static void conv_prepare_gather(const em_graph *g, const em_node *node, conv_state *st) {
    conv_geom geom;
    em_gather_table t;
    if (!st->wpack || !static_planes(g, node, st, &geom) || geom.out_sz <= 0 ||
        geom.out_sz >= BATCHED_MAX_COLS || is_pointwise(&geom) ||
        !em_gather_shape(geom.Cg * geom.k_sz, geom.out_sz, geom.C * geom.in_sz, &t))
        return;
    t.idx = malloc(em_gather_bytes(&t));
    if (!t.idx) return;
    fill_gather_table(&geom, &t);
    st->gather = t;
    st->gather_geom = geom;
}

static ember_status conv_create(const em_graph *g, em_node *node, void **state, ember_error *err) {
    EM_TRY(conv_create_common(g, node, false, 1, 2, state, err));
    conv_pack_weights(g, node, *state);
    conv_prepare_gather(g, node, *state);
    return EMBER_OK;
}

/* Pack a constant float32 ConvTranspose W (C x M/group x kernel) for convt_gemm.c. */
static void convt_pack_weights(const em_graph *g, const em_node *node, conv_state *st) {
    const em_tensor *w = g ? em_node_fixed_input(g, node, 1) : NULL;
    if (!w || w->dtype != EMBER_FLOAT || !w->data || w->rank < 3 || !em_ct_available()) return;
    const int64_t C = w->dims[0], Mg = w->dims[1], G = st->attrs.group;
    const int64_t k_sz = em_shape_numel(w->dims + 2, w->rank - 2);
    if (C <= 0 || Mg <= 0 || k_sz <= 0 || C % G != 0) return;
    float *p = em_aligned_alloc_uninit((size_t)em_ct_packed_floats(C, Mg, k_sz, G) * sizeof(float));
    if (!p || !em_ct_pack((const float *)w->data, C, Mg, k_sz, G, p)) {
        em_aligned_free(p);
        return;
    }
    st->ct = p;
    st->ct_src = w->data;
    st->ct_C = C, st->ct_Mg = Mg, st->ct_k_sz = k_sz;
    conv_geom geom;
    if (!static_planes(g, node, st, &geom)) return;
    const em_ct_geom cg = ct_geom_of(&geom);
    if (!em_ct_eligible(&cg)) return;
    int32_t *mem = malloc(em_ct_table_bytes(&cg));
    if (!mem) return;
    em_ct_table_fill(&cg, mem, &st->ct_table);
    st->ct_geom = geom;
}

static ember_status convt_create(const em_graph *g, em_node *node, void **state, ember_error *err) {
    EM_TRY(conv_create_common(g, node, true, 1, 2, state, err));
    convt_pack_weights(g, node, *state);
    return EMBER_OK;
}

static ember_status convint_create(const em_graph *g, em_node *node, void **state,
                                   ember_error *err) {
    return conv_create_common(g, node, false, 1, -1, state, err);
}

static ember_status qlconv_create(const em_graph *g, em_node *node, void **state,
                                  ember_error *err) {
    return conv_create_common(g, node, false, 3, 8, state, err);
}

static void conv_destroy(void *state) {
    conv_state *st = state;
    if (st) em_aligned_free(st->wpack);
    if (st) em_aligned_free(st->wino);
    if (st) em_aligned_free(st->dc);
    if (st) em_aligned_free(st->ct);
    if (st) free(st->gather.idx);
    if (st) free(st->ct_table.tap); /* the table's one block */
    free(st);
}

static ember_status conv_infer_common(const em_node *node, em_tensor *const *in, em_tensor *out,
                                      bool transpose, ember_error *err) {
    char d[256];
    const em_tensor *x = in[0], *w = in[1], *b = opt_in(node, in, 2), *z = opt_in(node, in, 3);
    if (!conv_float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (w->dtype != x->dtype || (b && b->dtype != x->dtype) || (z && z->dtype != x->dtype))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: X, W, B (and Z) must have the same type",
                       em_node_desc(node, d, sizeof d));
    conv_attrs a;
    EM_TRY(conv_read_attrs(node, transpose, &a, err));
    if (x->rank < 0 || w->rank < 0) {
        out[0].dtype = x->dtype;
        out[0].rank = -1;
        return EMBER_OK;
    }
    conv_geom g;
    int64_t dims[EM_MAX_RANK];
    EM_TRY(conv_geometry(node, &a, x, w, &g, dims, err));
    EM_TRY(check_bias(node, b, g.M, err));
    if (a.pool) {
        if (x->rank != 4 || x->dtype != EMBER_FLOAT || z)
            return em_fail(err, EMBER_ERR_UNSUPPORTED,
                           "%s: a pooled FusedConv takes a 4-D float32 X and no Z",
                           em_node_desc(node, d, sizeof d));
        for (int i = 0; i < 2; i++) {
            if (dims[2 + i] < 0) continue;
            dims[2 + i] = pooled(&a, i, dims[2 + i]);
            if (dims[2 + i] < 1)
                return em_fail(err, EMBER_ERR_SHAPE,
                               "%s: the pool window is larger than the output",
                               em_node_desc(node, d, sizeof d));
        }
    }
    em_tensor_set_shape(&out[0], x->dtype, dims, x->rank);
    if (z && z->rank >= 0) {
        bool same = z->rank == x->rank;
        for (int i = 0; same && i < z->rank; i++)
            if (z->dims[i] >= 0 && dims[i] >= 0 && z->dims[i] != dims[i]) same = false;
        if (!same) {
            char sh[128];
            return em_fail(err, EMBER_ERR_SHAPE, "%s: Z %s must have the output's shape",
                           em_node_desc(node, d, sizeof d), em_shape_str(z, sh, sizeof sh));
        }
    }
    return EMBER_OK;
}

static ember_status conv_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    return conv_infer_common(node, in, out, false, err);
}

static ember_status convt_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    return conv_infer_common(node, in, out, true, err);
}

/* The direct and Winograd kernels' views of a 2-D geometry (conv_direct.h, conv_winograd.h). */
static em_dc_geom dc_geom_of(const conv_geom *g) {
    return (em_dc_geom){.batch = g->batch,
                        .C = g->C,
                        .M = g->M,
                        .H = g->in[1],
                        .W = g->in[2],
                        .OH = g->out[1],
                        .OW = g->out[2],
                        .KH = g->k[1],
                        .KW = g->k[2],
                        .sy = g->s[1],
                        .sx = g->s[2],
                        .dy = g->d[1],
                        .dx = g->d[2],
                        .py = g->pb[1],
                        .px = g->pb[2]};
}

static em_wino_geom wino_geom_of(const conv_geom *g, int64_t tile) {
    return (em_wino_geom){.tile = tile,
                          .batch = g->batch,
                          .C = g->C,
                          .M = g->M,
                          .H = g->in[1],
                          .W = g->in[2],
                          .OH = g->out[1],
                          .OW = g->out[2],
                          .pt = g->pb[1],
                          .pl = g->pb[2]};
}

/* The direct kernel's packed W is for this W and geometry (a float32 run). */
static bool direct_ready(const conv_state *st, const em_tensor *w, const conv_geom *g) {
    return st->dc && w->data == st->dc_src && g->M == st->dc_M && g->C == st->dc_C && g->G == 1 &&
           g->nsp == 2 && g->k[1] == st->dc_KH && g->k[2] == st->dc_KW;
}

static ember_status conv_run_common(const em_node *node, const conv_state *st, em_tensor *const *in,
                                    em_tensor *out, em_exec *ex, ember_error *err) {
    const em_tensor *x = in[0], *w = in[1], *b = opt_in(node, in, 2), *z = opt_in(node, in, 3);
    conv_geom g;
    int64_t dims[EM_MAX_RANK];
    EM_TRY(conv_geometry(node, &st->attrs, x, w, &g, dims, err));
    const bool transpose = st->attrs.transpose;
    ember_dtype dt = x->dtype;
    if (dt == EMBER_FLOAT || dt == EMBER_DOUBLE) {
        bool dbl = dt == EMBER_DOUBLE;
        if (transpose && st->ct && !dbl && w->data == st->ct_src && g.C == st->ct_C &&
            g.Mg == st->ct_Mg && g.k_sz == st->ct_k_sz) {
            const em_ct_geom cg = ct_geom_of(&g);
            const bool cached = st->ct_table.tap && same_planes(&g, &st->ct_geom);
            if (cached || em_ct_eligible(&cg)) { /* a table is only made for eligible planes */
                EM_TRY(em_ct_run(&cg, x->data, st->ct, cached ? &st->ct_table : NULL,
                                 b ? b->data : NULL, out[0].data, ex, err));
                if (st->act.kind != EM_ACT_NONE)
                    em_activation_apply(&st->act, out[0].data, em_numel(&out[0]));
                return EMBER_OK;
            }
        }
        if (transpose) {
            EM_TRY(convt_exec(&g, dbl, x->data, w->data, b ? b->data : NULL, out[0].data, ex, err));
            if (st->act.kind != EM_ACT_NONE && !dbl)
                em_activation_apply(&st->act, out[0].data, em_numel(&out[0]));
            return EMBER_OK;
        }
        if (!dbl && direct_ready(st, w, &g)) {
            const em_dc_geom dg = dc_geom_of(&g);
            return em_dc_conv(&dg, x->data, st->dc, b ? b->data : NULL, z ? z->data : NULL,
                              out[0].data, &st->act, ex, err);
        }
        if (st->wino && !dbl && w->data == st->wino_src && g.M == st->wino_M && g.C == st->wino_C &&
            g.G == 1 && g.nsp == 2 && g.k[1] == 3 && g.k[2] == 3 && g.s[1] == 1 && g.s[2] == 1 &&
            g.d[1] == 1 && g.d[2] == 1) {
            const em_wino_geom wg = wino_geom_of(&g, st->wino_tile);
            return em_wino_conv(&wg, x->data, st->wino, b ? b->data : NULL, z ? z->data : NULL,
                                out[0].data, &st->act, ex, err);
        }
        const bool packed = st->wpack && !dbl && w->data == st->wpack_src && g.M == st->wpack_M &&
                            g.Cg * g.k_sz == st->wpack_K;
        const bool gather = packed && st->gather.idx && same_planes(&g, &st->gather_geom);
        return conv_exec(&g, dbl, x->data, w->data, packed ? st->wpack : NULL,
                         gather ? &st->gather : NULL, b ? b->data : NULL, z ? z->data : NULL,
                         out[0].data, &st->act, ex, err);
    }
    /* float16 / bfloat16: widen everything to float32 scratch. */
    const em_tensor *src[4] = {x, w, b, z};
    float *f[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < 4; i++) {
        if (!src[i]) continue;
        int64_t n = em_numel(src[i]);
        f[i] = em_exec_scratch(ex, (size_t)(n > 0 ? n : 1) * sizeof(float), err);
        if (!f[i]) return SCRATCH_FAILED;
        em_convert(f[i], EMBER_FLOAT, src[i]->data, src[i]->dtype, n);
    }
    int64_t ny = em_numel(&out[0]);
    float *fy = em_exec_scratch(ex, (size_t)(ny > 0 ? ny : 1) * sizeof(float), err);
    if (!fy) return SCRATCH_FAILED;
    if (transpose) {
        EM_TRY(convt_exec(&g, false, f[0], f[1], f[2], fy, ex, err));
        em_activation_apply(&st->act, fy, ny);
    } else {
        EM_TRY(conv_exec(&g, false, f[0], f[1], NULL, NULL, f[2], f[3], fy, &st->act, ex, err));
    }
    em_convert(out[0].data, dt, fy, EMBER_FLOAT, ny);
    return EMBER_OK;
}

static ember_status conv_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             em_exec *ex, ember_error *err) {
    const conv_state *st = state;
    if (!st->attrs.pool) return conv_run_common(node, st, in, out, ex, err);
    const em_tensor *x = in[0], *w = in[1], *b = opt_in(node, in, 2);
    conv_geom g;
    int64_t dims[EM_MAX_RANK];
    EM_TRY(conv_geometry(node, &st->attrs, x, w, &g, dims, err));
    const conv_attrs *a = &st->attrs;
    if (direct_ready(st, w, &g)) {
        const em_dc_geom dg = dc_geom_of(&g);
        const em_dc_pool pool = {.KH = a->pool_kernel[0],
                                 .KW = a->pool_kernel[1],
                                 .SH = a->pool_strides[0],
                                 .SW = a->pool_strides[1],
                                 .PT = a->pool_pads[0],
                                 .PL = a->pool_pads[1],
                                 .OH = out[0].dims[2],
                                 .OW = out[0].dims[3]};
        return em_dc_conv_maxpool(&dg, &pool, x->data, st->dc, b ? b->data : NULL, out[0].data,
                                  &st->act, ex, err);
    }
    /* Other paths: the whole conv output into scratch, then the pool. */
    em_tensor conv_out = out[0];
    em_tensor_set_shape(&conv_out, EMBER_FLOAT, dims, 4);
    conv_out.data = em_exec_scratch(ex, em_nbytes(&conv_out) ? em_nbytes(&conv_out) : 1, err);
    if (!conv_out.data) return SCRATCH_FAILED;
    EM_TRY(conv_run_common(node, st, in, &conv_out, ex, err));
    const em_maxpool_plane q = {.H = dims[2],
                                .W = dims[3],
                                .OH = out[0].dims[2],
                                .OW = out[0].dims[3],
                                .KH = a->pool_kernel[0],
                                .KW = a->pool_kernel[1],
                                .SH = a->pool_strides[0],
                                .PT = a->pool_pads[0],
                                .PL = a->pool_pads[1]};
    em_maxpool_planes(&q, a->pool_strides[1], conv_out.data, q.H * q.W, out[0].data, q.OH * q.OW,
                      dims[0] * dims[1]);
    return EMBER_OK;
}

/* ============================================================================================
 * ConvInteger / QLinearConv: zero points subtracted into float64, exact products via dgemm
 * ========================================================================================== */

static bool is_q8(ember_dtype dt) {
    return dt == EMBER_UINT8 || dt == EMBER_INT8;
}

static double q8_get(const em_tensor *t, int64_t i) {
    return t->dtype == EMBER_UINT8 ? (double)((const uint8_t *)t->data)[i]
                                   : (double)((const int8_t *)t->data)[i];
}

/* x - zp into double (zp scalar). */
static double *dequant_x(em_exec *ex, const em_tensor *x, const em_tensor *zp, ember_error *err) {
    int64_t n = em_numel(x);
    double *o = em_exec_scratch(ex, (size_t)(n > 0 ? n : 1) * sizeof(double), err);
    if (!o) return NULL;
    double z = zp ? q8_get(zp, 0) : 0.0;
    for (int64_t i = 0; i < n; i++) o[i] = q8_get(x, i) - z;
    return o;
}

/* w - zp[m] into double (zp scalar or one per output channel, W's dim 0). */
static double *dequant_w(em_exec *ex, const em_tensor *w, const em_tensor *zp, ember_error *err) {
    int64_t n = em_numel(w);
    double *o = em_exec_scratch(ex, (size_t)(n > 0 ? n : 1) * sizeof(double), err);
    if (!o) return NULL;
    int64_t per = w->dims[0] > 0 ? n / w->dims[0] : 0;
    int64_t nz = zp ? em_numel(zp) : 0;
    for (int64_t i = 0; i < n; i++) {
        double z = nz == 0 ? 0.0 : q8_get(zp, nz == 1 ? 0 : i / per);
        o[i] = q8_get(w, i) - z;
    }
    return o;
}

static ember_status qconv_check(const em_node *node, const em_tensor *x, const em_tensor *w,
                                const em_tensor *xz, const em_tensor *wz, conv_geom *g,
                                int64_t *dims, ember_error *err) {
    char d[256];
    if (!is_q8(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (!is_q8(w->dtype)) return em_unsupported_type(node, 1, w->dtype, err);
    if ((xz && xz->dtype != x->dtype) || (wz && wz->dtype != w->dtype))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: zero point type differs from its input",
                       em_node_desc(node, d, sizeof d));
    conv_attrs a;
    EM_TRY(conv_read_attrs(node, false, &a, err));
    if (x->rank < 0 || w->rank < 0) return EMBER_OK;
    EM_TRY(conv_geometry(node, &a, x, w, g, dims, err));
    if (xz && xz->rank >= 0 && em_numel(xz) != 1)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: x_zero_point must be a scalar",
                       em_node_desc(node, d, sizeof d));
    if (wz && wz->rank >= 0 && em_numel(wz) != 1 && g->M >= 0 && em_numel(wz) != g->M)
        return em_fail(err, EMBER_ERR_SHAPE,
                       "%s: w_zero_point must be a scalar or have one value per output channel",
                       em_node_desc(node, d, sizeof d));
    return EMBER_OK;
}

static ember_status convint_infer(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    (void)state;
    conv_geom g;
    int64_t dims[EM_MAX_RANK];
    const em_tensor *x = in[0], *w = in[1];
    EM_TRY(qconv_check(node, x, w, opt_in(node, in, 2), opt_in(node, in, 3), &g, dims, err));
    if (x->rank < 0 || w->rank < 0) {
        out[0].dtype = EMBER_INT32;
        out[0].rank = -1;
        return EMBER_OK;
    }
    em_tensor_set_shape(&out[0], EMBER_INT32, dims, x->rank);
    return EMBER_OK;
}

static ember_status convint_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    const conv_state *st = state;
    const em_tensor *x = in[0], *w = in[1];
    conv_geom g;
    int64_t dims[EM_MAX_RANK];
    EM_TRY(conv_geometry(node, &st->attrs, x, w, &g, dims, err));
    double *xd = dequant_x(ex, x, opt_in(node, in, 2), err);
    double *wd = xd ? dequant_w(ex, w, opt_in(node, in, 3), err) : NULL;
    int64_t ny = em_numel(&out[0]);
    double *yd = wd ? em_exec_scratch(ex, (size_t)(ny > 0 ? ny : 1) * sizeof(double), err) : NULL;
    if (!yd) return SCRATCH_FAILED;
    EM_TRY(conv_exec(&g, true, xd, wd, NULL, NULL, NULL, NULL, yd, NULL, ex, err));
    int32_t *y = out[0].data;
    for (int64_t i = 0; i < ny; i++) y[i] = (int32_t)llrint(yd[i]);
    return EMBER_OK;
}

/* QLinearConv inputs: x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale,
 * y_zero_point, B (int32, optional). */
static ember_status qlconv_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    char d[256];
    conv_geom g;
    int64_t dims[EM_MAX_RANK];
    const em_tensor *x = in[0], *w = in[3], *yz = opt_in(node, in, 7), *b = opt_in(node, in, 8);
    EM_TRY(qconv_check(node, x, w, in[2], in[5], &g, dims, err));
    static const int scales[] = {1, 4, 6};
    for (int i = 0; i < 3; i++)
        if (in[scales[i]]->dtype != EMBER_FLOAT)
            return em_unsupported_type(node, scales[i], in[scales[i]]->dtype, err);
    ember_dtype ot = yz ? yz->dtype : EMBER_UINT8;
    if (!is_q8(ot)) return em_unsupported_type(node, 7, ot, err);
    if (b && b->dtype != EMBER_INT32) return em_unsupported_type(node, 8, b->dtype, err);
    if (x->rank < 0 || w->rank < 0) {
        out[0].dtype = ot;
        out[0].rank = -1;
        return EMBER_OK;
    }
    EM_TRY(check_bias(node, b, g.M, err));
    const em_tensor *ws = in[4];
    if (ws->rank >= 0 && em_numel(ws) != 1 && g.M >= 0 && em_numel(ws) != g.M)
        return em_fail(err, EMBER_ERR_SHAPE,
                       "%s: w_scale must be a scalar or have one value per output channel",
                       em_node_desc(node, d, sizeof d));
    if ((in[1]->rank >= 0 && em_numel(in[1]) != 1) || (in[6]->rank >= 0 && em_numel(in[6]) != 1))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: x_scale and y_scale must be scalars",
                       em_node_desc(node, d, sizeof d));
    em_tensor_set_shape(&out[0], ot, dims, x->rank);
    return EMBER_OK;
}

static ember_status qlconv_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    const conv_state *st = state;
    const em_tensor *x = in[0], *w = in[3], *yz = opt_in(node, in, 7), *b = opt_in(node, in, 8);
    conv_geom g;
    int64_t dims[EM_MAX_RANK];
    EM_TRY(conv_geometry(node, &st->attrs, x, w, &g, dims, err));
    double *xd = dequant_x(ex, x, in[2], err);
    double *wd = xd ? dequant_w(ex, w, in[5], err) : NULL;
    int64_t ny = em_numel(&out[0]);
    double *yd = wd ? em_exec_scratch(ex, (size_t)(ny > 0 ? ny : 1) * sizeof(double), err) : NULL;
    if (!yd) return SCRATCH_FAILED;
    EM_TRY(conv_exec(&g, true, xd, wd, NULL, NULL, NULL, NULL, yd, NULL, ex, err));
    const float xs = ((const float *)in[1]->data)[0], ys = ((const float *)in[6]->data)[0];
    const float *ws = in[4]->data;
    const int64_t nws = em_numel(in[4]);
    const double zy = yz ? q8_get(yz, 0) : 0.0;
    const bool sgn = out[0].dtype == EMBER_INT8;
    const double lo = sgn ? -128.0 : 0.0, hi = sgn ? 127.0 : 255.0;
    for (int64_t r = 0; r < g.batch * g.M; r++) {
        int64_t m = r % g.M;
        double acc_b = b ? (double)((const int32_t *)b->data)[m] : 0.0;
        float scale = xs * ws[nws == 1 ? 0 : m] / ys;
        for (int64_t q = 0; q < g.out_sz; q++) {
            int64_t i = r * g.out_sz + q;
            double v = nearbyint((double)((float)(yd[i] + acc_b) * scale)) + zy;
            v = v < lo ? lo : v > hi ? hi : v;
            if (sgn)
                ((int8_t *)out[0].data)[i] = (int8_t)v;
            else
                ((uint8_t *)out[0].data)[i] = (uint8_t)v;
        }
    }
    return EMBER_OK;
}

/* ============================================================================================ */

static const em_op conv_ops[] = {
    {"", "Conv", 1, 22, conv_create, conv_infer, conv_run, conv_destroy, EM_OP_OUTPUT_VIEW},
    {"ai.ember", "FusedConv", 1, 0, conv_create, conv_infer, conv_run, conv_destroy,
     EM_OP_OUTPUT_VIEW},
    {"", "ConvTranspose", 1, 22, convt_create, convt_infer, conv_run, conv_destroy, 0},
    {"", "ConvInteger", 10, 0, convint_create, convint_infer, convint_run, conv_destroy, 0},
    {"", "QLinearConv", 10, 0, qlconv_create, qlconv_infer, qlconv_run, conv_destroy, 0},
};

EM_OPS_FAMILY(conv) {
    *count = sizeof conv_ops / sizeof conv_ops[0];
    return conv_ops;
}
