/* Detection and sampling operators: NonMaxSuppression, RoiAlign, MaxRoiPool, GridSample,
 * Col2Im.
 *
 * float16 / bfloat16 data is widened to float32 in scratch memory, computed, and narrowed back;
 * float64 data is computed in double. Coordinates coming from tensors (boxes, rois, grids) are
 * untrusted: NaN and infinities never reach an integer conversion, and batch indices are
 * checked. The arithmetic follows the ONNX reference implementation (onnx/reference/ops),
 * which is also what ONNX Runtime computes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "shape_util.h"

static int op_version(const em_node *node) {
    int v = em_onnx_op_version(node->op_type, node->opset);
    return v > 0 ? v : node->opset;
}

static const em_tensor *opt_input(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_explicit_inputs ? in[i] : NULL;
}

static bool float_type(ember_dtype t) {
    return t == EMBER_FLOAT || t == EMBER_DOUBLE || t == EMBER_FLOAT16 || t == EMBER_BFLOAT16;
}

static bool half_type(ember_dtype t) {
    return t == EMBER_FLOAT16 || t == EMBER_BFLOAT16;
}

/* Data of a float tensor as float32 or float64: half types are widened into scratch. */
static const void *widen(const em_tensor *t, em_exec *ex, void **owned, ember_error *err) {
    *owned = NULL;
    if (!half_type(t->dtype)) return t->data;
    const int64_t n = em_numel(t);
    float *dst = ems_scratch(ex, sizeof(float) * (size_t)n, owned, err);
    if (!dst) return NULL;
    const uint16_t *src = t->data;
    for (int64_t i = 0; i < n; i++)
        dst[i] = t->dtype == EMBER_FLOAT16 ? em_f16_to_f32(src[i]) : em_bf16_to_f32(src[i]);
    return dst;
}

/* Where a kernel writes its result: the output itself, or float32 scratch for half types. */
static void *result_buffer(em_tensor *out, em_exec *ex, void **owned, ember_error *err) {
    *owned = NULL;
    if (!half_type(out->dtype)) return out->data;
    return ems_scratch(ex, sizeof(float) * (size_t)em_numel(out), owned, err);
}

static void narrow_result(em_tensor *out, const void *buf) {
    if (!half_type(out->dtype)) return;
    const int64_t n = em_numel(out);
    const float *src = buf;
    uint16_t *dst = out->data;
    for (int64_t i = 0; i < n; i++)
        dst[i] = out->dtype == EMBER_FLOAT16 ? em_f32_to_f16(src[i]) : em_f32_to_bf16(src[i]);
}

static bool is_dims(const em_tensor *t, int rank) {
    return t->rank == rank;
}

/* Largest double below 2^62: a clamp before converting coordinates to int64. */
#define DT_COORD_MAX 4.0e18

static int64_t to_index(double v) {
    if (!(v > -DT_COORD_MAX)) return v != v ? 0 : (int64_t)-DT_COORD_MAX;
    if (v > DT_COORD_MAX) return (int64_t)DT_COORD_MAX;
    return (int64_t)v;
}

/* ============================================================================================
 * NonMaxSuppression
 *
 * Per batch and class: boxes whose score passes score_threshold (strictly greater, only when
 * the input is given) are visited by decreasing score (ties: lower index first; NaN scores
 * last), and a box is selected unless its IoU with a box already selected for that class is
 * greater than iou_threshold. At most max_output_boxes_per_class per class (0 when absent).
 * Output: [num_selected, 3] int64 rows (batch, class, box), batch-major, then class, then
 * selection order. The count depends on values, so the output is allocated by `run`.
 * ========================================================================================== */

typedef struct nms_box {
    float x0, y0, x1, y1, area;
} nms_box;

typedef struct nms_cand {
    float score;
    int64_t index;
} nms_cand;

static void nms_corners(const float *b, int center, nms_box *o) {
    if (center) {
        /* [x_center, y_center, width, height], as the reference: no reordering */
        float hw = b[2] / 2, hh = b[3] / 2;
        o->x0 = b[0] - hw;
        o->x1 = b[0] + hw;
        o->y0 = b[1] - hh;
        o->y1 = b[1] + hh;
    } else {
        /* [y1, x1, y2, x2]: any diagonal pair of corners */
        o->y0 = b[0] < b[2] ? b[0] : b[2];
        o->y1 = b[0] < b[2] ? b[2] : b[0];
        o->x0 = b[1] < b[3] ? b[1] : b[3];
        o->x1 = b[1] < b[3] ? b[3] : b[1];
    }
    o->area = (o->x1 - o->x0) * (o->y1 - o->y0);
}

static bool nms_suppresses(const nms_box *a, const nms_box *b, float iou_threshold) {
    float ix0 = a->x0 > b->x0 ? a->x0 : b->x0, ix1 = a->x1 < b->x1 ? a->x1 : b->x1;
    if (!(ix1 > ix0)) return false;
    float iy0 = a->y0 > b->y0 ? a->y0 : b->y0, iy1 = a->y1 < b->y1 ? a->y1 : b->y1;
    if (!(iy1 > iy0)) return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float uni = a->area + b->area - inter;
    if (!(inter > 0) || !(a->area > 0) || !(b->area > 0) || !(uni > 0)) return false;
    return inter / uni > iou_threshold;
}

static int nms_cmp(const void *pa, const void *pb) {
    const nms_cand *a = pa, *b = pb;
    bool an = isnan(a->score), bn = isnan(b->score);
    if (an != bn) return an ? 1 : -1;
    if (!an && a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

typedef struct nms_ctx {
    const nms_box *boxes; /* [batches, spatial] */
    const float *scores;  /* [batches, classes, spatial] */
    int64_t classes, spatial, cap;
    float iou_threshold, score_threshold;
    bool has_score_threshold;
    int64_t *selected; /* [pairs, cap] box indices */
    int64_t *counts;   /* [pairs]; -1: out of memory */
} nms_ctx;

static void nms_range(void *vctx, int64_t begin, int64_t end) {
    const nms_ctx *c = vctx;
    nms_cand *cand = malloc(sizeof *cand * (size_t)(c->spatial ? c->spatial : 1));
    nms_box *kept = malloc(sizeof *kept * (size_t)(c->cap ? c->cap : 1));
    for (int64_t p = begin; p < end; p++) {
        if (!cand || !kept) {
            c->counts[p] = -1;
            continue;
        }
        const int64_t batch = p / c->classes;
        const float *sc = c->scores + p * c->spatial;
        const nms_box *bx = c->boxes + batch * c->spatial;
        int64_t n = 0;
        for (int64_t i = 0; i < c->spatial; i++) {
            if (c->has_score_threshold && !(sc[i] > c->score_threshold)) continue;
            cand[n].score = sc[i];
            cand[n].index = i;
            n++;
        }
        qsort(cand, (size_t)n, sizeof *cand, nms_cmp);
        int64_t *sel = c->selected + p * c->cap;
        int64_t k = 0;
        for (int64_t i = 0; i < n && k < c->cap; i++) {
            const nms_box *b = &bx[cand[i].index];
            bool keep = true;
            for (int64_t j = 0; j < k && keep; j++)
                if (nms_suppresses(b, &kept[j], c->iou_threshold)) keep = false;
            if (!keep) continue;
            kept[k] = *b;
            sel[k++] = cand[i].index;
        }
        c->counts[p] = k;
    }
    free(cand);
    free(kept);
}

/* An optional scalar input: absent or empty means "not given". */
static bool scalar_given(const em_tensor *t) {
    return t && t->rank >= 0 && em_numel(t) > 0;
}

static ember_status nms_check_scalar(const em_node *node, const em_tensor *t, const char *what,
                                     bool want_int, ember_error *err) {
    if (!t || t->rank < 0) return EMBER_OK;
    if (em_numel(t) > 1)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "%s must be a scalar, got %lld values",
                        what, (long long)em_numel(t));
    bool ok =
        want_int ? (t->dtype == EMBER_INT64 || t->dtype == EMBER_INT32) : float_type(t->dtype);
    if (!ok)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "%s has type %s, expected %s", what,
                        em_dtype_name(t->dtype), want_int ? "int64" : "float");
    return EMBER_OK;
}

static ember_status nms_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *boxes = in[0], *scores = opt_input(node, in, 1);
    if (!scores) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "scores are required");
    if (boxes->dtype != EMBER_FLOAT) return em_unsupported_type(node, 0, boxes->dtype, err);
    if (scores->dtype != EMBER_FLOAT) return em_unsupported_type(node, 1, scores->dtype, err);
    if (!is_dims(boxes, 3) || boxes->dims[2] != 4)
        return ems_fail(err, EMBER_ERR_SHAPE, node,
                        "boxes must be [num_batches, spatial_dimension, 4]");
    if (!is_dims(scores, 3) || scores->dims[0] != boxes->dims[0] ||
        scores->dims[2] != boxes->dims[1])
        return ems_fail(err, EMBER_ERR_SHAPE, node,
                        "scores must be [num_batches, num_classes, spatial_dimension] matching "
                        "boxes [%lld, %lld, 4]",
                        (long long)boxes->dims[0], (long long)boxes->dims[1]);
    EM_TRY(nms_check_scalar(node, opt_input(node, in, 2), "max_output_boxes_per_class", true, err));
    EM_TRY(nms_check_scalar(node, opt_input(node, in, 3), "iou_threshold", false, err));
    EM_TRY(nms_check_scalar(node, opt_input(node, in, 4), "score_threshold", false, err));
    int64_t center = em_attr_int(node, "center_point_box", 0);
    if (center != 0 && center != 1)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "center_point_box must be 0 or 1, got %lld", (long long)center);
    if (em_numel(boxes) < 0 || em_numel(scores) < 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "input shapes are too large");
    /* The row count depends on values: run allocates the output. */
    out[0].dtype = EMBER_INT64;
    out[0].rank = -1;
    return EMBER_OK;
}

static ember_status nms_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                            em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *boxes = in[0], *scores = in[1];
    const em_tensor *t_max = opt_input(node, in, 2), *t_iou = opt_input(node, in, 3);
    const em_tensor *t_score = opt_input(node, in, 4);
    const int64_t batches = boxes->dims[0], spatial = boxes->dims[1], classes = scores->dims[1];
    int64_t max_out = scalar_given(t_max) ? em_get_i64(t_max, 0) : 0;
    if (max_out < 0) max_out = 0;
    nms_ctx c = {.classes = classes,
                 .spatial = spatial,
                 .cap = max_out < spatial ? max_out : spatial,
                 .iou_threshold = scalar_given(t_iou) ? (float)em_get_f64(t_iou, 0) : 0.0f,
                 .has_score_threshold = scalar_given(t_score),
                 .score_threshold = scalar_given(t_score) ? (float)em_get_f64(t_score, 0) : 0.0f,
                 .scores = scores->data};
    const int64_t pairs = batches * classes;
    int64_t total = 0;
    void *owned[3] = {NULL, NULL, NULL};
    ember_status st = EMBER_OK;
    if (pairs > 0 && c.cap > 0) {
        nms_box *bx =
            ems_scratch(ex, sizeof(nms_box) * (size_t)(batches * spatial), &owned[0], err);
        c.selected =
            bx ? ems_scratch(ex, sizeof(int64_t) * (size_t)(pairs * c.cap), &owned[1], err) : NULL;
        c.counts =
            c.selected ? ems_scratch(ex, sizeof(int64_t) * (size_t)pairs, &owned[2], err) : NULL;
        if (!c.counts) {
            st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            goto done;
        }
        const int center = (int)em_attr_int(node, "center_point_box", 0);
        const float *b = boxes->data;
        for (int64_t i = 0; i < batches * spatial; i++) nms_corners(b + 4 * i, center, &bx[i]);
        c.boxes = bx;
        ems_parallel(ex, pairs, 1, nms_range, &c);
        for (int64_t p = 0; p < pairs; p++) {
            if (c.counts[p] < 0) {
                st = ems_fail(err, EMBER_ERR_OUT_OF_MEMORY, node, "out of memory");
                goto done;
            }
            total += c.counts[p];
        }
    }
    int64_t dims[2] = {total, 3};
    em_tensor_set_shape(&out[0], EMBER_INT64, dims, 2);
    out[0].capacity = sizeof(int64_t) * 3 * (size_t)total;
    out[0].data = em_aligned_alloc(out[0].capacity);
    if (!out[0].data) {
        st = ems_fail(err, EMBER_ERR_OUT_OF_MEMORY, node, "out of memory for %lld selected boxes",
                      (long long)total);
        goto done;
    }
    out[0].owns_data = true;
    int64_t *y = out[0].data;
    for (int64_t p = 0; p < pairs && total > 0; p++) {
        const int64_t *sel = c.selected + p * c.cap;
        for (int64_t k = 0; k < c.counts[p]; k++) {
            *y++ = p / classes;
            *y++ = p % classes;
            *y++ = sel[k];
        }
    }
done:
    for (int i = 0; i < 3; i++) free(owned[i]);
    return st;
}

/* ============================================================================================
 * RoiAlign (opset 10, 16)
 *
 * Each output bin averages (or takes the max of) roi_bin_grid_h x roi_bin_grid_w bilinear
 * samples. The sample positions are separable: a table of (low, high, weights) per output row
 * and sample row, and one per output column and sample column; a sample outside
 * [-1, size] on either axis has zero weights. Max mode takes the max of the four weighted
 * corner values of each sample, as the reference does. opset 10 has no
 * coordinate_transformation_mode: it behaves as 'output_half_pixel'.
 * ========================================================================================== */

typedef struct ra_tap {
    int64_t lo, hi;
    double wl, wh;
} ra_tap;

/* Sample grids beyond this per bin axis are refused (adaptive sampling of a huge roi). */
#define RA_MAX_GRID 65536

static void ra_axis(double start, double bin, int64_t pooled, int64_t grid, int64_t size,
                    ra_tap *t) {
    for (int64_t p = 0; p < pooled; p++)
        for (int64_t g = 0; g < grid; g++) {
            double v = start + (double)p * bin + ((double)g + 0.5) * bin / (double)grid;
            ra_tap *e = &t[p * grid + g];
            if (v < -1.0 || v > (double)size) {
                e->lo = e->hi = 0;
                e->wl = e->wh = 0.0;
                continue;
            }
            if (v < 0) v = 0;
            int64_t lo = (int64_t)v, hi;
            if (lo >= size - 1) {
                hi = lo = size - 1;
                v = (double)lo;
            } else {
                hi = lo + 1;
            }
            double l = v - (double)lo;
            e->lo = lo;
            e->hi = hi;
            e->wl = 1.0 - l;
            e->wh = l;
        }
}

typedef struct ra_roi {
    int64_t batch, grid_h, grid_w;
    double start_h, start_w, bin_h, bin_w;
    bool finite;
} ra_roi;

typedef struct ra_ctx {
    const void *x;
    bool dbl;
    void *y;
    int64_t channels, height, width, out_h, out_w, cblock, n_cblocks;
    const ra_roi *rois;
    bool max_mode;
    char *failed; /* per work item: out of memory */
} ra_ctx;

#define RA_BIN(T)                                                                                  \
    static void ra_bins_##T(const ra_ctx *c, const ra_roi *r, const ra_tap *ty, const ra_tap *tx,  \
                            const T *plane, T *out) {                                              \
        const int64_t gh = r->grid_h, gw = r->grid_w, w = c->width;                                \
        const int64_t count = gh * gw > 1 ? gh * gw : 1;                                           \
        for (int64_t ph = 0; ph < c->out_h; ph++)                                                  \
            for (int64_t pw = 0; pw < c->out_w; pw++) {                                            \
                double acc = 0.0;                                                                  \
                bool first = true;                                                                 \
                for (int64_t iy = 0; iy < gh; iy++) {                                              \
                    const ra_tap *a = &ty[ph * gh + iy];                                           \
                    const T *rl = plane + a->lo * w, *rh = plane + a->hi * w;                      \
                    for (int64_t ix = 0; ix < gw; ix++) {                                          \
                        const ra_tap *b = &tx[pw * gw + ix];                                       \
                        double v1 = a->wl * b->wl * (double)rl[b->lo];                             \
                        double v2 = a->wl * b->wh * (double)rl[b->hi];                             \
                        double v3 = a->wh * b->wl * (double)rh[b->lo];                             \
                        double v4 = a->wh * b->wh * (double)rh[b->hi];                             \
                        if (!c->max_mode) {                                                        \
                            acc += v1 + v2 + v3 + v4;                                              \
                        } else {                                                                   \
                            double m = v1 > v2 ? v1 : v2;                                          \
                            m = m > v3 ? m : v3;                                                   \
                            m = m > v4 ? m : v4;                                                   \
                            acc = first || m > acc ? m : acc;                                      \
                            first = false;                                                         \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
                out[ph * c->out_w + pw] = (T)(c->max_mode ? acc : acc / (double)count);            \
            }                                                                                      \
    }

RA_BIN(float)
RA_BIN(double)

static void ra_range(void *vctx, int64_t begin, int64_t end) {
    const ra_ctx *c = vctx;
    ra_tap *ty = NULL, *tx = NULL;
    int64_t table_roi = -1;
    const int64_t plane = c->height * c->width, out_plane = c->out_h * c->out_w;
    for (int64_t item = begin; item < end; item++) {
        const int64_t roi = item / c->n_cblocks, c0 = (item % c->n_cblocks) * c->cblock;
        const int64_t c1 = c0 + c->cblock < c->channels ? c0 + c->cblock : c->channels;
        const ra_roi *r = &c->rois[roi];
        const int64_t obase = (roi * c->channels + c0) * out_plane;
        if (!r->finite) {
            for (int64_t i = 0; i < (c1 - c0) * out_plane; i++) {
                if (c->dbl)
                    ((double *)c->y)[obase + i] = NAN;
                else
                    ((float *)c->y)[obase + i] = NAN;
            }
            continue;
        }
        if (table_roi != roi) {
            free(ty);
            free(tx);
            ty = malloc(sizeof *ty * (size_t)(c->out_h * r->grid_h + 1));
            tx = malloc(sizeof *tx * (size_t)(c->out_w * r->grid_w + 1));
            if (!ty || !tx) {
                c->failed[item] = 1;
                table_roi = -1;
                continue;
            }
            ra_axis(r->start_h, r->bin_h, c->out_h, r->grid_h, c->height, ty);
            ra_axis(r->start_w, r->bin_w, c->out_w, r->grid_w, c->width, tx);
            table_roi = roi;
        }
        for (int64_t ch = c0; ch < c1; ch++) {
            const int64_t ibase = (r->batch * c->channels + ch) * plane;
            const int64_t ob = (roi * c->channels + ch) * out_plane;
            if (c->dbl)
                ra_bins_double(c, r, ty, tx, (const double *)c->x + ibase, (double *)c->y + ob);
            else
                ra_bins_float(c, r, ty, tx, (const float *)c->x + ibase, (float *)c->y + ob);
        }
    }
    free(ty);
    free(tx);
}

static bool ra_half_pixel(const em_node *node) {
    if (op_version(node) < 16) return false;
    return strcmp(em_attr_string(node, "coordinate_transformation_mode", "half_pixel"),
                  "half_pixel") == 0;
}

static ember_status ra_infer(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *rois = opt_input(node, in, 1), *bi = opt_input(node, in, 2);
    if (!rois || !bi)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "rois and batch_indices are required");
    if (!float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (!float_type(rois->dtype)) return em_unsupported_type(node, 1, rois->dtype, err);
    if (bi->dtype != EMBER_INT64 && bi->dtype != EMBER_INT32)
        return em_unsupported_type(node, 2, bi->dtype, err);
    if (!is_dims(x, 4)) return ems_fail(err, EMBER_ERR_SHAPE, node, "X must be 4-D (N, C, H, W)");
    if (!is_dims(rois, 2) || rois->dims[1] != 4)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "rois must be [num_rois, 4]");
    if (!is_dims(bi, 1) || bi->dims[0] != rois->dims[0])
        return ems_fail(err, EMBER_ERR_SHAPE, node, "batch_indices must be [num_rois] = [%lld]",
                        (long long)rois->dims[0]);
    const char *mode = em_attr_string(node, "mode", "avg");
    if (strcmp(mode, "avg") != 0 && strcmp(mode, "max") != 0)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "mode '%s' is not avg or max", mode);
    if (op_version(node) >= 16) {
        const char *ctm = em_attr_string(node, "coordinate_transformation_mode", "half_pixel");
        if (strcmp(ctm, "half_pixel") != 0 && strcmp(ctm, "output_half_pixel") != 0)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "coordinate_transformation_mode '%s' is not half_pixel or "
                            "output_half_pixel",
                            ctm);
    }
    const int64_t oh = em_attr_int(node, "output_height", 1),
                  ow = em_attr_int(node, "output_width", 1);
    const int64_t sr = em_attr_int(node, "sampling_ratio", 0);
    if (oh < 1 || ow < 1)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "output_height and output_width must be >= 1, got %lld x %lld",
                        (long long)oh, (long long)ow);
    if (sr < 0 || sr > RA_MAX_GRID)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "sampling_ratio %lld is out of range [0, %d]", (long long)sr, RA_MAX_GRID);
    int64_t dims[4] = {rois->dims[0], x->dims[1], oh, ow};
    if (em_shape_numel(dims, 4) < 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "the output is too large");
    em_tensor_set_shape(&out[0], x->dtype, dims, 4);
    return EMBER_OK;
}

static ember_status ra_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                           em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *rois = in[1], *bi = in[2];
    const int64_t n_rois = rois->dims[0], channels = x->dims[1];
    if (em_numel(&out[0]) == 0) return EMBER_OK;
    const bool half_pixel = ra_half_pixel(node);
    const double scale = em_attr_float(node, "spatial_scale", 1.0f);
    const int64_t oh = out[0].dims[2], ow = out[0].dims[3];
    const int64_t sr = em_attr_int(node, "sampling_ratio", 0);
    ra_ctx c = {.dbl = x->dtype == EMBER_DOUBLE,
                .channels = channels,
                .height = x->dims[2],
                .width = x->dims[3],
                .out_h = oh,
                .out_w = ow,
                .max_mode = strcmp(em_attr_string(node, "mode", "avg"), "max") == 0};
    if (c.height == 0 || c.width == 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "X has an empty spatial dimension");
    /* Channel blocks keep work items large enough but let one roi use several threads. */
    c.cblock = channels < 16 ? (channels > 0 ? channels : 1) : 16;
    c.n_cblocks = (channels + c.cblock - 1) / c.cblock;
    const int64_t items = n_rois * c.n_cblocks;
    void *own[5] = {NULL, NULL, NULL, NULL, NULL};
    ember_status st = EMBER_OK;
    ra_roi *r = ems_scratch(ex, sizeof *r * (size_t)n_rois, &own[0], err);
    c.failed = r ? ems_scratch(ex, (size_t)items, &own[1], err) : NULL;
    c.x = c.failed ? widen(x, ex, &own[2], err) : NULL;
    c.y = c.x ? result_buffer(&out[0], ex, &own[3], err) : NULL;
    if (!c.y) {
        st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        goto done;
    }
    memset(c.failed, 0, (size_t)items);
    for (int64_t i = 0; i < n_rois; i++) {
        int64_t b = em_get_i64(bi, i);
        if (b < 0 || b >= x->dims[0]) {
            st = ems_fail(err, EMBER_ERR_INVALID_ARGUMENT, node,
                          "batch_indices[%lld] = %lld is out of range [0, %lld)", (long long)i,
                          (long long)b, (long long)x->dims[0]);
            goto done;
        }
        const double off = half_pixel ? 0.5 : 0.0;
        double x1 = em_get_f64(rois, 4 * i) * scale - off,
               y1 = em_get_f64(rois, 4 * i + 1) * scale - off;
        double x2 = em_get_f64(rois, 4 * i + 2) * scale - off,
               y2 = em_get_f64(rois, 4 * i + 3) * scale - off;
        double rw = x2 - x1, rh = y2 - y1;
        if (!half_pixel) {
            rw = rw > 1.0 ? rw : 1.0; /* malformed rois are forced to 1x1 */
            rh = rh > 1.0 ? rh : 1.0;
        }
        r[i].batch = b;
        r[i].start_w = x1;
        r[i].start_h = y1;
        r[i].bin_w = rw / (double)ow;
        r[i].bin_h = rh / (double)oh;
        r[i].finite = isfinite(rw) && isfinite(rh) && isfinite(x1) && isfinite(y1);
        double gh = sr > 0 ? (double)sr : ceil(rh / (double)oh);
        double gw = sr > 0 ? (double)sr : ceil(rw / (double)ow);
        if (!r[i].finite) gh = gw = 0;
        if (gh > RA_MAX_GRID || gw > RA_MAX_GRID) {
            st = ems_fail(err, EMBER_ERR_LIMIT, node,
                          "roi %lld needs a %.0f x %.0f sampling grid per bin (limit %d); set "
                          "sampling_ratio",
                          (long long)i, gh, gw, RA_MAX_GRID);
            goto done;
        }
        r[i].grid_h = gh > 0 ? (int64_t)gh : 0;
        r[i].grid_w = gw > 0 ? (int64_t)gw : 0;
    }
    c.rois = r;
    ems_parallel(ex, items, 1, ra_range, &c);
    for (int64_t i = 0; i < items; i++)
        if (c.failed[i]) {
            st = ems_fail(err, EMBER_ERR_OUT_OF_MEMORY, node, "out of memory");
            goto done;
        }
    narrow_result(&out[0], c.y);
done:
    for (int i = 0; i < 5; i++) free(own[i]);
    return st;
}

/* ============================================================================================
 * MaxRoiPool (opset 1): rois [num_rois, 5] = (batch, x1, y1, x2, y2); each roi is rounded to
 * whole pixels (round half away from zero), split into pooled_shape bins with floor / ceil
 * edges, and each bin takes the max (0 for an empty bin). This is the Caffe / Fast R-CNN
 * definition, which ONNX Runtime implements.
 * ========================================================================================== */

typedef struct mrp_ctx {
    const void *x;
    bool dbl;
    void *y;
    const int64_t *geom; /* per roi: batch, start_h, start_w, height, width */
    int64_t channels, height, width, ph, pw;
} mrp_ctx;

#define MRP_POOL(T)                                                                                \
    static void mrp_pool_##T(const mrp_ctx *c, const int64_t *g, const T *plane, T *out) {         \
        const double bin_h = (double)g[3] / (double)c->ph, bin_w = (double)g[4] / (double)c->pw;   \
        for (int64_t i = 0; i < c->ph; i++) {                                                      \
            int64_t h0 = (int64_t)floor((double)i * bin_h) + g[1];                                 \
            int64_t h1 = (int64_t)ceil((double)(i + 1) * bin_h) + g[1];                            \
            h0 = h0 < 0 ? 0 : h0 > c->height ? c->height : h0;                                     \
            h1 = h1 < 0 ? 0 : h1 > c->height ? c->height : h1;                                     \
            for (int64_t j = 0; j < c->pw; j++) {                                                  \
                int64_t w0 = (int64_t)floor((double)j * bin_w) + g[2];                             \
                int64_t w1 = (int64_t)ceil((double)(j + 1) * bin_w) + g[2];                        \
                w0 = w0 < 0 ? 0 : w0 > c->width ? c->width : w0;                                   \
                w1 = w1 < 0 ? 0 : w1 > c->width ? c->width : w1;                                   \
                T m = 0;                                                                           \
                if (h1 > h0 && w1 > w0) {                                                          \
                    m = plane[h0 * c->width + w0];                                                 \
                    for (int64_t h = h0; h < h1; h++)                                              \
                        for (int64_t w = w0; w < w1; w++) {                                        \
                            T v = plane[h * c->width + w];                                         \
                            m = v > m ? v : m;                                                     \
                        }                                                                          \
                }                                                                                  \
                out[i * c->pw + j] = m;                                                            \
            }                                                                                      \
        }                                                                                          \
    }

MRP_POOL(float)
MRP_POOL(double)

static void mrp_range(void *vctx, int64_t begin, int64_t end) {
    const mrp_ctx *c = vctx;
    const int64_t plane = c->height * c->width, out_plane = c->ph * c->pw;
    for (int64_t item = begin; item < end; item++) {
        const int64_t roi = item / c->channels, ch = item % c->channels;
        const int64_t *g = c->geom + 5 * roi;
        const int64_t ibase = (g[0] * c->channels + ch) * plane;
        if (c->dbl)
            mrp_pool_double(c, g, (const double *)c->x + ibase, (double *)c->y + item * out_plane);
        else
            mrp_pool_float(c, g, (const float *)c->x + ibase, (float *)c->y + item * out_plane);
    }
}

static ember_status mrp_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *rois = opt_input(node, in, 1);
    if (!rois) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "rois are required");
    if (!float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (!float_type(rois->dtype)) return em_unsupported_type(node, 1, rois->dtype, err);
    if (!is_dims(x, 4)) return ems_fail(err, EMBER_ERR_SHAPE, node, "X must be 4-D (N, C, H, W)");
    if (!is_dims(rois, 2) || rois->dims[1] != 5)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "rois must be [num_rois, 5]");
    int64_t n;
    const int64_t *pooled = em_attr_ints(node, "pooled_shape", &n);
    if (!pooled || n != 2 || pooled[0] < 1 || pooled[1] < 1)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "pooled_shape must be two positive sizes (height, width)");
    int64_t dims[4] = {rois->dims[0], x->dims[1], pooled[0], pooled[1]};
    if (em_shape_numel(dims, 4) < 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "the output is too large");
    em_tensor_set_shape(&out[0], x->dtype, dims, 4);
    return EMBER_OK;
}

static int64_t mrp_round(double v) {
    return to_index(round(v));
}

static ember_status mrp_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                            em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *rois = in[1];
    const int64_t n_rois = rois->dims[0];
    if (em_numel(&out[0]) == 0) return EMBER_OK;
    const double scale = em_attr_float(node, "spatial_scale", 1.0f);
    mrp_ctx c = {.dbl = x->dtype == EMBER_DOUBLE,
                 .channels = x->dims[1],
                 .height = x->dims[2],
                 .width = x->dims[3],
                 .ph = out[0].dims[2],
                 .pw = out[0].dims[3]};
    void *own[3] = {NULL, NULL, NULL};
    ember_status st = EMBER_OK;
    int64_t *geom = ems_scratch(ex, sizeof(int64_t) * 5 * (size_t)n_rois, &own[0], err);
    c.x = geom ? widen(x, ex, &own[1], err) : NULL;
    c.y = c.x ? result_buffer(&out[0], ex, &own[2], err) : NULL;
    if (!c.y) {
        st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        goto done;
    }
    for (int64_t i = 0; i < n_rois; i++) {
        double b = em_get_f64(rois, 5 * i);
        if (!(b >= 0 && b < (double)x->dims[0])) {
            st = ems_fail(err, EMBER_ERR_INVALID_ARGUMENT, node,
                          "rois[%lld] has batch index %g, out of range [0, %lld)", (long long)i, b,
                          (long long)x->dims[0]);
            goto done;
        }
        int64_t *g = geom + 5 * i;
        int64_t x1 = mrp_round(em_get_f64(rois, 5 * i + 1) * scale);
        int64_t y1 = mrp_round(em_get_f64(rois, 5 * i + 2) * scale);
        int64_t x2 = mrp_round(em_get_f64(rois, 5 * i + 3) * scale);
        int64_t y2 = mrp_round(em_get_f64(rois, 5 * i + 4) * scale);
        /* Rounded coordinates are within +-4e18, so these differences cannot overflow. */
        g[0] = (int64_t)b;
        g[1] = y1;
        g[2] = x1;
        g[3] = y2 - y1 + 1 > 1 ? y2 - y1 + 1 : 1;
        g[4] = x2 - x1 + 1 > 1 ? x2 - x1 + 1 : 1;
    }
    c.geom = geom;
    ems_parallel(ex, n_rois * c.channels, 4, mrp_range, &c);
    narrow_result(&out[0], c.y);
done:
    for (int i = 0; i < 3; i++) free(own[i]);
    return st;
}

/* ============================================================================================
 * GridSample (opset 16: 4-D, modes bilinear / nearest / bicubic; opset 20: N-D, modes linear /
 * nearest / cubic; both spellings are accepted).
 *
 * Per output point, each spatial axis contributes 1 (nearest), 2 (linear) or 4 (cubic) taps of
 * (index, weight), with padding applied per tap as in the reference: zeros drops taps outside
 * the input, border clamps them, reflection reflects them. The point's taps are the product
 * over axes; they are computed once per tile of points and reused for every channel.
 * ========================================================================================== */

enum { GS_NEAREST, GS_LINEAR, GS_CUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };

#define GS_MAX_SPATIAL (EM_MAX_RANK - 2)
#define GS_TABLE 1024 /* tap entries per tile */

typedef struct gs_ctx {
    const void *x;
    bool dbl;
    void *y;
    const void *grid;
    ember_dtype grid_type;
    int r; /* spatial rank */
    int64_t in_dims[GS_MAX_SPATIAL];
    int64_t in_strides[GS_MAX_SPATIAL];
    int64_t channels, plane, points; /* input plane size, output points per image */
    int mode, padding;
    bool align;
    int taps1, taps; /* per axis, per point */
    int64_t tile, n_tiles;
} gs_ctx;

static double gs_grid_at(const gs_ctx *c, int64_t i) {
    switch (c->grid_type) {
    case EMBER_FLOAT:
        return ((const float *)c->grid)[i];
    case EMBER_DOUBLE:
        return ((const double *)c->grid)[i];
    case EMBER_FLOAT16:
        return em_f16_to_f32(((const uint16_t *)c->grid)[i]);
    default:
        return em_bf16_to_f32(((const uint16_t *)c->grid)[i]);
    }
}

/* Reflect x into [lo, hi] by the nearer border, repeatedly. */
static double gs_reflect(double x, double lo, double hi) {
    const double range = hi - lo;
    if (!(range > 0)) return lo;
    if (x < lo) {
        double dx = lo - x, n = floor(dx / range), r = dx - n * range;
        return fmod(n, 2.0) == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi, n = floor(dx / range), r = dx - n * range;
        return fmod(n, 2.0) == 0 ? hi - r : lo + r;
    }
    return x;
}

/* Index of tap i on an axis of size d, or -1 where zeros padding drops it. */
static int64_t gs_tap_index(const gs_ctx *c, int64_t i, int64_t d, double lo, double hi) {
    if (c->padding == GS_ZEROS) return i >= 0 && i < d ? i : -1;
    if (c->padding == GS_BORDER) return i < 0 ? 0 : i >= d ? d - 1 : i;
    int64_t k = to_index(gs_reflect((double)i, lo, hi));
    return k < 0 ? 0 : k >= d ? d - 1 : k;
}

static void gs_cubic(double t, double *w) {
    const double a = -0.75;
    double t1 = t + 1, t2 = 1 - t, t3 = 2 - t;
    w[0] = ((a * t1 - 5 * a) * t1 + 8 * a) * t1 - 4 * a;
    w[1] = ((a + 2) * t - (a + 3)) * t * t + 1;
    w[2] = ((a + 2) * t2 - (a + 3)) * t2 * t2 + 1;
    w[3] = ((a * t3 - 5 * a) * t3 + 8 * a) * t3 - 4 * a;
}

/* Taps of one axis for normalized coordinate g: indices (-1: zero) and weights. Returns false
 * for a NaN coordinate. */
static bool gs_axis_taps(const gs_ctx *c, double g, int64_t d, int64_t *idx, double *w) {
    if (g != g) return false;
    double x = c->align ? (g + 1) / 2.0 * (double)(d - 1) : ((g + 1) * (double)d - 1) / 2.0;
    const double lo = c->align ? 0.0 : -0.5, hi = c->align ? (double)d - 1 : (double)d - 0.5;
    /* Far outside, every mode has settled (zeros: all taps dropped; border: clamped), and
     * reflection is periodic, so clamping to a finite range keeps the results. */
    if (c->padding != GS_REFLECTION)
        x = x < -1e9 ? -1e9 : x > 1e9 ? 1e9 : x;
    else if (!isfinite(x))
        x = x < 0 ? lo : hi;
    if (c->mode == GS_NEAREST) x = c->r == 3 ? round(x) : nearbyint(x);
    if (x < lo || x > hi) {
        if (c->padding == GS_BORDER)
            x = x < 0 ? 0 : x > (double)(d - 1) ? (double)(d - 1) : x;
        else if (c->padding == GS_REFLECTION)
            x = gs_reflect(x, lo, hi);
    }
    if (c->mode == GS_NEAREST) {
        idx[0] = gs_tap_index(c, to_index(x), d, lo, hi);
        w[0] = 1.0;
        return true;
    }
    double f = floor(x);
    int64_t i0 = to_index(f);
    double t = x - f;
    if (c->mode == GS_LINEAR) {
        idx[0] = gs_tap_index(c, i0, d, lo, hi);
        idx[1] = gs_tap_index(c, i0 + 1, d, lo, hi);
        w[0] = 1 - t;
        w[1] = t;
    } else {
        for (int k = 0; k < 4; k++) idx[k] = gs_tap_index(c, i0 - 1 + k, d, lo, hi);
        gs_cubic(t, w);
    }
    return true;
}

/* Taps of point p of image n into off[] / w[] (taps entries). Dropped taps get weight 0 and
 * offset 0; a NaN coordinate gives weight NaN. */
static void gs_point_taps(const gs_ctx *c, int64_t n, int64_t p, int64_t *off, double *w) {
    int64_t idx[GS_MAX_SPATIAL][4] = {{0}};
    double wt[GS_MAX_SPATIAL][4] = {{0}};
    const int64_t gbase = (n * c->points + p) * c->r;
    bool nan = false;
    for (int k = 0; k < c->r; k++) {
        /* grid lists coordinates innermost axis first */
        int axis = c->r - 1 - k;
        if (!gs_axis_taps(c, gs_grid_at(c, gbase + k), c->in_dims[axis], idx[axis], wt[axis]))
            nan = true;
    }
    int digit[GS_MAX_SPATIAL] = {0};
    for (int t = 0; t < c->taps; t++) {
        int64_t o = 0;
        double wp = 1.0;
        bool dropped = false;
        for (int a = 0; a < c->r; a++) {
            int64_t i = idx[a][digit[a]];
            if (i < 0) dropped = true;
            o += i * c->in_strides[a];
            wp *= wt[a][digit[a]];
        }
        off[t] = dropped || nan ? 0 : o;
        w[t] = nan ? NAN : dropped ? 0.0 : wp;
        for (int a = c->r - 1; a >= 0; a--) {
            if (++digit[a] < c->taps1) break;
            digit[a] = 0;
        }
    }
}

#define GS_APPLY(T)                                                                                \
    static void gs_apply_##T(const gs_ctx *c, int64_t n, int64_t p0, int64_t np,                   \
                             const int64_t *restrict off, const double *restrict wd,               \
                             T *restrict wbuf) {                                                   \
        const int taps = c->taps;                                                                  \
        for (int64_t i = 0; i < np * taps; i++) wbuf[i] = (T)wd[i];                                \
        for (int64_t ch = 0; ch < c->channels; ch++) {                                             \
            const T *restrict xp = (const T *)c->x + (n * c->channels + ch) * c->plane;            \
            T *restrict yp = (T *)c->y + (n * c->channels + ch) * c->points + p0;                  \
            if (taps == 4) {                                                                       \
                for (int64_t p = 0; p < np; p++) {                                                 \
                    const int64_t *o = off + 4 * p;                                                \
                    const T *wv = wbuf + 4 * p;                                                    \
                    yp[p] =                                                                        \
                        wv[0] * xp[o[0]] + wv[1] * xp[o[1]] + wv[2] * xp[o[2]] + wv[3] * xp[o[3]]; \
                }                                                                                  \
            } else {                                                                               \
                for (int64_t p = 0; p < np; p++) {                                                 \
                    T acc = 0;                                                                     \
                    for (int t = 0; t < taps; t++)                                                 \
                        acc += wbuf[p * taps + t] * xp[off[p * taps + t]];                         \
                    yp[p] = acc;                                                                   \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

GS_APPLY(float)
GS_APPLY(double)

static void gs_range(void *vctx, int64_t begin, int64_t end) {
    const gs_ctx *c = vctx;
    int64_t off[GS_TABLE];
    double w[GS_TABLE];
    double wd[GS_TABLE];
    float wf[GS_TABLE];
    for (int64_t item = begin; item < end; item++) {
        const int64_t n = item / c->n_tiles, p0 = (item % c->n_tiles) * c->tile;
        const int64_t np = p0 + c->tile < c->points ? c->tile : c->points - p0;
        for (int64_t p = 0; p < np; p++)
            gs_point_taps(c, n, p0 + p, off + p * c->taps, w + p * c->taps);
        if (c->dbl)
            gs_apply_double(c, n, p0, np, off, w, wd);
        else
            gs_apply_float(c, n, p0, np, off, w, wf);
    }
}

static bool gs_parse(const em_node *node, int *mode, int *padding, ember_error *err,
                     ember_status *st) {
    const char *m = em_attr_string(node, "mode", op_version(node) >= 20 ? "linear" : "bilinear");
    const char *pm = em_attr_string(node, "padding_mode", "zeros");
    if (!strcmp(m, "bilinear") || !strcmp(m, "linear"))
        *mode = GS_LINEAR;
    else if (!strcmp(m, "bicubic") || !strcmp(m, "cubic"))
        *mode = GS_CUBIC;
    else if (!strcmp(m, "nearest"))
        *mode = GS_NEAREST;
    else {
        *st = ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "unknown mode '%s'", m);
        return false;
    }
    if (!strcmp(pm, "zeros"))
        *padding = GS_ZEROS;
    else if (!strcmp(pm, "border"))
        *padding = GS_BORDER;
    else if (!strcmp(pm, "reflection"))
        *padding = GS_REFLECTION;
    else {
        *st = ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "unknown padding_mode '%s'", pm);
        return false;
    }
    return true;
}

static ember_status gs_infer(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                             ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *grid = opt_input(node, in, 1);
    if (!grid) return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "grid is required");
    if (!float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (!float_type(grid->dtype)) return em_unsupported_type(node, 1, grid->dtype, err);
    int mode, padding;
    ember_status st;
    if (!gs_parse(node, &mode, &padding, err, &st)) return st;
    const int r = x->rank - 2;
    if (op_version(node) < 20 && x->rank != 4)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "X must be 4-D (N, C, H, W) before opset 20");
    if (r < 1 || r > GS_MAX_SPATIAL)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "X has rank %d; expected (N, C, D1, ..., Dr)",
                        x->rank);
    if (grid->rank != r + 2 || grid->dims[0] != x->dims[0] || grid->dims[r + 1] != r)
        return ems_fail(err, EMBER_ERR_SHAPE, node,
                        "grid must be (N=%lld, D1_out, ..., D%d_out, %d)", (long long)x->dims[0], r,
                        r);
    int taps = 1;
    for (int k = 0; k < r; k++) taps *= mode == GS_NEAREST ? 1 : mode == GS_LINEAR ? 2 : 4;
    if (taps > GS_TABLE)
        return ems_fail(err, EMBER_ERR_UNSUPPORTED, node,
                        "cubic sampling in %d dimensions is not supported", r);
    int64_t dims[EM_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int k = 0; k < r; k++) dims[2 + k] = grid->dims[1 + k];
    if (em_shape_numel(dims, x->rank) < 0 || em_numel(x) < 0 || em_numel(grid) < 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "shapes are too large");
    em_tensor_set_shape(&out[0], x->dtype, dims, x->rank);
    return EMBER_OK;
}

static ember_status gs_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                           em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *grid = in[1];
    gs_ctx c = {.dbl = x->dtype == EMBER_DOUBLE,
                .grid = grid->data,
                .grid_type = grid->dtype,
                .r = x->rank - 2,
                .channels = x->dims[1],
                .align = em_attr_int(node, "align_corners", 0) != 0};
    ember_status st = EMBER_OK;
    if (!gs_parse(node, &c.mode, &c.padding, err, &st)) return st;
    if (em_numel(&out[0]) == 0) return EMBER_OK;
    for (int k = 0; k < c.r; k++) c.in_dims[k] = x->dims[2 + k];
    em_strides(c.in_dims, c.r, c.in_strides);
    c.plane = em_shape_numel(c.in_dims, c.r);
    c.points = em_shape_numel(out[0].dims + 2, c.r);
    if (c.plane == 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "X has an empty spatial dimension");
    c.taps1 = c.mode == GS_NEAREST ? 1 : c.mode == GS_LINEAR ? 2 : 4;
    c.taps = 1;
    for (int k = 0; k < c.r; k++) c.taps *= c.taps1;
    c.tile = GS_TABLE / c.taps;
    c.n_tiles = (c.points + c.tile - 1) / c.tile;
    void *own[2] = {NULL, NULL};
    c.x = widen(x, ex, &own[0], err);
    c.y = c.x ? result_buffer(&out[0], ex, &own[1], err) : NULL;
    if (!c.y) {
        st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    } else {
        ems_parallel(ex, x->dims[0] * c.n_tiles, 1, gs_range, &c);
        narrow_result(&out[0], c.y);
    }
    free(own[0]);
    free(own[1]);
    return st;
}

/* ============================================================================================
 * Col2Im (opset 18): input [N, C * prod(block_shape), L] of columns; each column is one block
 * position, each row one (channel, kernel offset). Values add up where blocks overlap.
 * L must be the number of block positions the image, pads, dilations and strides give.
 * ========================================================================================== */

typedef struct c2i_geom {
    int r;
    int64_t image[EM_MAX_RANK], block[EM_MAX_RANK], blocks[EM_MAX_RANK];
    int64_t dil[EM_MAX_RANK], stride[EM_MAX_RANK], pad[EM_MAX_RANK];
    int64_t kernel, positions, channels, plane;
} c2i_geom;

static ember_status c2i_geometry(const em_node *node, const em_tensor *x, const em_tensor *image,
                                 const em_tensor *block, c2i_geom *g, ember_error *err) {
    int64_t n_img, n_blk;
    EM_TRY(ems_read_ints(node, image, "image_shape", g->image, EM_MAX_RANK - 2, &n_img, err));
    EM_TRY(ems_read_ints(node, block, "block_shape", g->block, EM_MAX_RANK - 2, &n_blk, err));
    if (n_img != n_blk || n_img < 1)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "image_shape (%lld values) and block_shape (%lld) must have the same "
                        "nonzero length",
                        (long long)n_img, (long long)n_blk);
    const int r = (int)n_img;
    g->r = r;
    int64_t n;
    const int64_t *dil = em_attr_ints(node, "dilations", &n);
    if (dil && n != r)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "dilations needs %d values", r);
    const int64_t *strides = em_attr_ints(node, "strides", &n);
    if (strides && n != r)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "strides needs %d values", r);
    const int64_t *pads = em_attr_ints(node, "pads", &n);
    if (pads && n != 2 * r)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node, "pads needs %d values", 2 * r);
    g->kernel = 1;
    g->positions = 1;
    for (int k = 0; k < r; k++) {
        g->dil[k] = dil ? dil[k] : 1;
        g->stride[k] = strides ? strides[k] : 1;
        g->pad[k] = pads ? pads[k] : 0;
        int64_t pad_end = pads ? pads[k + r] : 0;
        if (g->image[k] < 1 || g->block[k] < 1 || g->dil[k] < 1 || g->stride[k] < 1 ||
            g->pad[k] < 0 || pad_end < 0 || g->image[k] > ((int64_t)1 << 40) ||
            g->block[k] > ((int64_t)1 << 40) || g->dil[k] > ((int64_t)1 << 20) ||
            g->pad[k] > ((int64_t)1 << 40) || pad_end > ((int64_t)1 << 40))
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "axis %d: image %lld, block %lld, dilation %lld, stride %lld, pads "
                            "%lld/%lld are not valid",
                            k, (long long)g->image[k], (long long)g->block[k], (long long)g->dil[k],
                            (long long)g->stride[k], (long long)g->pad[k], (long long)pad_end);
        int64_t span = g->dil[k] * (g->block[k] - 1) + 1;
        int64_t room = g->image[k] + g->pad[k] + pad_end - span;
        if (room < 0)
            return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                            "axis %d: a block spans %lld but the padded image has %lld", k,
                            (long long)span, (long long)(g->image[k] + g->pad[k] + pad_end));
        g->blocks[k] = room / g->stride[k] + 1;
    }
    g->kernel = em_shape_numel(g->block, r);
    g->positions = em_shape_numel(g->blocks, r);
    g->plane = em_shape_numel(g->image, r);
    if (g->kernel < 0 || g->positions < 0 || g->plane < 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "shapes are too large");
    if (x->dims[1] % g->kernel != 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node,
                        "input dim 1 (%lld) is not a multiple of prod(block_shape) = %lld",
                        (long long)x->dims[1], (long long)g->kernel);
    if (x->dims[2] != g->positions)
        return ems_fail(err, EMBER_ERR_SHAPE, node,
                        "input dim 2 (%lld) must be the number of blocks, %lld",
                        (long long)x->dims[2], (long long)g->positions);
    g->channels = x->dims[1] / g->kernel;
    return EMBER_OK;
}

typedef struct c2i_ctx {
    const c2i_geom *g;
    const void *x;
    void *y;
    bool dbl;
} c2i_ctx;

#define C2I_CHANNEL(T)                                                                             \
    static void c2i_channel_##T(const c2i_geom *g, const T *restrict src, T *restrict dst) {       \
        const int r = g->r, last = r - 1;                                                          \
        const int64_t nb_last = g->blocks[last];                                                   \
        const int64_t outer_pos = g->positions / nb_last;                                          \
        memset(dst, 0, sizeof(T) * (size_t)g->plane);                                              \
        int64_t k[EM_MAX_RANK] = {0};                                                              \
        for (int64_t kk = 0; kk < g->kernel; kk++) {                                               \
            int64_t b[EM_MAX_RANK] = {0};                                                          \
            for (int64_t bo = 0; bo < outer_pos; bo++) {                                           \
                int64_t row = 0;                                                                   \
                bool inside = true;                                                                \
                for (int a = 0; a < last; a++) {                                                   \
                    int64_t i = b[a] * g->stride[a] - g->pad[a] + k[a] * g->dil[a];                \
                    if (i < 0 || i >= g->image[a]) inside = false;                                 \
                    row = row * g->image[a] + i;                                                   \
                }                                                                                  \
                if (inside) {                                                                      \
                    T *drow = dst + row * g->image[last];                                          \
                    const T *s = src + (kk * g->positions + bo * nb_last);                         \
                    const int64_t base = k[last] * g->dil[last] - g->pad[last];                    \
                    const int64_t st = g->stride[last], w = g->image[last];                        \
                    for (int64_t j = 0; j < nb_last; j++) {                                        \
                        int64_t i = base + j * st;                                                 \
                        if (i >= 0 && i < w) drow[i] += s[j];                                      \
                    }                                                                              \
                }                                                                                  \
                for (int a = last - 1; a >= 0; a--) {                                              \
                    if (++b[a] < g->blocks[a]) break;                                              \
                    b[a] = 0;                                                                      \
                }                                                                                  \
            }                                                                                      \
            for (int a = last; a >= 0; a--) {                                                      \
                if (++k[a] < g->block[a]) break;                                                   \
                k[a] = 0;                                                                          \
            }                                                                                      \
        }                                                                                          \
    }

C2I_CHANNEL(float)
C2I_CHANNEL(double)

static void c2i_range(void *vctx, int64_t begin, int64_t end) {
    const c2i_ctx *c = vctx;
    const c2i_geom *g = c->g;
    for (int64_t nc = begin; nc < end; nc++) {
        const int64_t in_off = nc * g->kernel * g->positions, out_off = nc * g->plane;
        if (c->dbl)
            c2i_channel_double(g, (const double *)c->x + in_off, (double *)c->y + out_off);
        else
            c2i_channel_float(g, (const float *)c->x + in_off, (float *)c->y + out_off);
    }
}

static ember_status c2i_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0], *image = opt_input(node, in, 1), *block = opt_input(node, in, 2);
    if (!image || !block)
        return ems_fail(err, EMBER_ERR_INVALID_MODEL, node,
                        "image_shape and block_shape are required");
    if (!float_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank != 3)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "input must be 3-D (N, C * prod(block), L)");
    if (!image->data || !block->data) {
        out[0].dtype = x->dtype;
        out[0].rank = -1;
        return EMBER_OK;
    }
    c2i_geom g;
    EM_TRY(c2i_geometry(node, x, image, block, &g, err));
    int64_t dims[EM_MAX_RANK] = {x->dims[0], g.channels};
    for (int k = 0; k < g.r; k++) dims[2 + k] = g.image[k];
    if (em_shape_numel(dims, g.r + 2) < 0)
        return ems_fail(err, EMBER_ERR_SHAPE, node, "the output is too large");
    em_tensor_set_shape(&out[0], x->dtype, dims, g.r + 2);
    return EMBER_OK;
}

static ember_status c2i_run(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                            em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    c2i_geom g;
    EM_TRY(c2i_geometry(node, x, in[1], in[2], &g, err));
    if (em_numel(&out[0]) == 0) return EMBER_OK;
    void *own[2] = {NULL, NULL};
    ember_status st = EMBER_OK;
    c2i_ctx c = {.g = &g, .dbl = x->dtype == EMBER_DOUBLE};
    c.x = widen(x, ex, &own[0], err);
    c.y = c.x ? result_buffer(&out[0], ex, &own[1], err) : NULL;
    if (!c.y) {
        st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    } else {
        ems_parallel(ex, x->dims[0] * g.channels, 1, c2i_range, &c);
        narrow_result(&out[0], c.y);
    }
    free(own[0]);
    free(own[1]);
    return st;
}

static const em_op k_detection_ops[] = {
    {"", "NonMaxSuppression", 10, 11, NULL, nms_infer, nms_run, NULL, EM_OP_DYNAMIC_OUTPUTS},
    {"", "RoiAlign", 10, 22, NULL, ra_infer, ra_run, NULL, 0},
    {"", "MaxRoiPool", 1, 22, NULL, mrp_infer, mrp_run, NULL, 0},
    {"", "GridSample", 16, 22, NULL, gs_infer, gs_run, NULL, 0},
    {"", "Col2Im", 18, 0, NULL, c2i_infer, c2i_run, NULL, 0},
};

EM_OPS_FAMILY(detection) {
    *count = sizeof k_detection_ops / sizeof k_detection_ops[0];
    return k_detection_ops;
}
