/* Edge cases of the quantization and detection kernels that the ONNX node tests do not reach:
 * QuantizeLinear ties, saturation, NaN / inf and every scale layout; DequantizeLinear and
 * DynamicQuantizeLinear corner cases; NonMaxSuppression with no boxes, max_output 0, ties and
 * NaN scores; GridSample coordinates outside the image for each padding mode, NaN / inf grid
 * values; RoiAlign / MaxRoiPool bad batch indices; Col2Im shape checks. Each test builds a
 * one-node model with protobuf-c and runs it through the public API. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "onnx.pb-c.h"

#include "one_node.h"

static void expect_u8(const ember_tensor *t, ember_dtype dt, const void *want, int64_t n) {
    cr_assert_eq(ember_tensor_dtype(t), dt, "dtype %d, expected %d", ember_tensor_dtype(t), dt);
    cr_assert_eq(ember_tensor_element_count(t), n);
    size_t es = ember_dtype_size(dt);
    const uint8_t *got = ember_tensor_const_data(t), *w = want;
    for (int64_t i = 0; i < n; i++)
        cr_assert(memcmp(got + i * es, w + i * es, es) == 0, "[%lld] differs", (long long)i);
}

static ember_tensor *u8t(const int64_t *dims, int rank, const uint8_t *data) {
    return tensor(EMBER_UINT8, dims, rank, data);
}
static ember_tensor *i8t(const int64_t *dims, int rank, const int8_t *data) {
    return tensor(EMBER_INT8, dims, rank, data);
}
static ember_tensor *f32_scalar(float v) {
    return tensor(EMBER_FLOAT, NULL, 0, &v);
}

/* ============================== QuantizeLinear ============================== */

Test(quantize, ties_round_to_even_and_saturate_int8) {
    const float x[] = {0.5f,  1.5f,   2.5f,     -0.5f,     -1.5f, 100.5f,     -100.5f,   101.5f,
                       1e10f, -1e10f, INFINITY, -INFINITY, NAN,   127.49998f, 4194305.0f};
    const int64_t n = 15;
    const int8_t zp = 0;
    node_case c = {
        "QuantizeLinear", 13, {{0}}, 0, {f32(&n, 1, x), f32_scalar(1.0f), i8t(NULL, 0, &zp)}, 3,
        {EMBER_INT8},     1,  1};
    ember_tensor *y = run_ok(&c);
    /* NaN quantizes to the type's minimum */
    const int8_t want[] = {0, 2, 2, 0, -2, 100, -100, 102, 127, -128, 127, -128, -128, 127, 127};
    expect_u8(y, EMBER_INT8, want, n);
    ember_tensor_free(y);
}

Test(quantize, ties_and_saturation_uint8_with_zero_point) {
    const float x[] = {1, 3, 5, -1, -3, 1e10f, -1e10f, INFINITY, -INFINITY, NAN, 127.5f};
    const int64_t n = 11;
    const uint8_t zp = 128;
    node_case c = {
        "QuantizeLinear", 10, {{0}}, 0, {f32(&n, 1, x), f32_scalar(2.0f), u8t(NULL, 0, &zp)}, 3,
        {EMBER_UINT8},    1,  1};
    ember_tensor *y = run_ok(&c);
    const uint8_t want[] = {128, 130, 130, 128, 126, 255, 0, 255, 0, 0, 192};
    expect_u8(y, EMBER_UINT8, want, n);
    ember_tensor_free(y);
}

Test(quantize, omitted_zero_point_gives_uint8) {
    const float x[] = {-3, 0, 2.5f, 3.5f, 1000};
    const int64_t n = 5;
    node_case c = {"QuantizeLinear", 13, {{0}}, 0, {f32(&n, 1, x), f32_scalar(1.0f)}, 2,
                   {EMBER_UINT8},    1,  1};
    ember_tensor *y = run_ok(&c);
    const uint8_t want[] = {0, 0, 2, 4, 255};
    expect_u8(y, EMBER_UINT8, want, n);
    ember_tensor_free(y);
}

/* Quantize x of `dims` per axis / per block and compare with a direct formula. */
static void check_layout(const int64_t *dims, int rank, int axis, int64_t block, int threads) {
    int64_t n = 1, outer = 1, inner = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    for (int i = 0; i < axis; i++) outer *= dims[i];
    for (int i = axis + 1; i < rank; i++) inner *= dims[i];
    const int64_t d = dims[axis], sd = block ? (d + block - 1) / block : d;
    const int64_t ns = block ? outer * sd * inner : d;
    float *x = malloc(sizeof(float) * (size_t)n), *s = malloc(sizeof(float) * (size_t)ns);
    int8_t *zp = malloc((size_t)ns), *want = malloc((size_t)n);
    uint32_t seed = 12345;
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((int32_t)(seed >> 8) % 20000) / 64.0f; /* many exact halves */
    }
    for (int64_t i = 0; i < ns; i++) {
        s[i] = 0.5f + (float)(i % 7) * 0.25f;
        zp[i] = (int8_t)((i * 37) % 50 - 25);
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t a = 0; a < d; a++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t p = (o * d + a) * inner + i;
                int64_t k = block ? (o * sd + a / block) * inner + i : a;
                float v = nearbyintf(x[p] / s[k]) + (float)zp[k];
                want[p] = (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
            }
    int64_t sdims[EMBER_MAX_RANK];
    for (int i = 0; i < rank; i++) sdims[i] = i == axis ? sd : dims[i];
    node_case c = {"QuantizeLinear",
                   block ? 21 : 13,
                   {A_INT("axis", axis - rank), A_INT("block_size", block)},
                   block ? 2 : 1,
                   {f32(dims, rank, x), block ? f32(sdims, rank, s) : f32(&d, 1, s),
                    block ? i8t(sdims, rank, zp) : i8t(&d, 1, zp)},
                   3,
                   {EMBER_INT8},
                   1,
                   threads};
    ember_tensor *y = run_ok(&c);
    expect_u8(y, EMBER_INT8, want, n);
    ember_tensor_free(y);
    free(x);
    free(s);
    free(zp);
    free(want);
}

Test(quantize, per_axis_and_blocked_layouts) {
    const int64_t d345[] = {3, 4, 5}, d2340k[] = {2, 3, 40000}, d64k[] = {3, 70000};
    for (int axis = 0; axis < 3; axis++) check_layout(d345, 3, axis, 0, 1);
    check_layout(d2340k, 3, 1, 0, 2); /* long runs split across threads */
    check_layout(d64k, 2, 1, 0, 2);   /* per-axis on the last axis, too long to expand */
    const int64_t d410[] = {4, 10}, d104[] = {10, 4}, d375[] = {3, 7, 5};
    check_layout(d410, 2, 1, 4, 1); /* blocks on the innermost axis, last block short */
    check_layout(d104, 2, 0, 3, 1); /* blocks on an outer axis */
    check_layout(d375, 3, 1, 2, 1);
    check_layout(d375, 3, 1, 7, 1); /* one block spans the whole axis */
    check_layout(d2340k, 3, 2, 1000, 2);
}

Test(quantize, bad_scales_fail_with_a_message) {
    const int64_t d23[] = {2, 3}, three = 3, two = 2, d22[] = {2, 2};
    const float x[6] = {0}, s3[] = {1, 1, 1}, s4[] = {1, 1, 1, 1};
    /* per-axis scale whose length is not the axis size */
    node_case c1 = {"QuantizeLinear",
                    13,
                    {A_INT("axis", 0)},
                    1,
                    {f32(d23, 2, x), f32(&three, 1, s3)},
                    2,
                    {EMBER_UINT8},
                    1,
                    1};
    expect_fail(&c1, EMBER_ERR_INVALID_MODEL, "per-axis");
    /* per-axis before opset 13 */
    node_case c2 = {"QuantizeLinear", 10, {{0}}, 0, {f32(d23, 2, x), f32(&three, 1, s3)}, 2,
                    {EMBER_UINT8},    1,  1};
    expect_fail(&c2, EMBER_ERR_INVALID_MODEL, "opset 13");
    /* a 2-D scale without block_size */
    node_case c3 = {"QuantizeLinear", 21, {{0}}, 0, {f32(d23, 2, x), f32(d22, 2, s4)}, 2,
                    {EMBER_UINT8},    1,  1};
    expect_fail(&c3, EMBER_ERR_INVALID_MODEL, "rank 2");
    /* blocked scale of the wrong size */
    node_case c4 = {"QuantizeLinear",
                    21,
                    {A_INT("axis", 1), A_INT("block_size", 1)},
                    2,
                    {f32(d23, 2, x), f32(d22, 2, s4)},
                    2,
                    {EMBER_UINT8},
                    1,
                    1};
    expect_fail(&c4, EMBER_ERR_INVALID_MODEL, "block_size");
    /* zero point with another shape than the scale */
    const uint8_t z2[] = {0, 0};
    node_case c5 = {"QuantizeLinear",
                    13,
                    {A_INT("axis", 1)},
                    1,
                    {f32(d23, 2, x), f32(&three, 1, s3), u8t(&two, 1, z2)},
                    3,
                    {EMBER_UINT8},
                    1,
                    1};
    expect_fail(&c5, EMBER_ERR_INVALID_MODEL, "zero point");
    /* an output type ember does not quantize to */
    const int32_t z32 = 0;
    node_case c6 = {"QuantizeLinear",
                    13,
                    {{0}},
                    0,
                    {f32(d23, 2, x), f32_scalar(1.0f), tensor(EMBER_INT32, NULL, 0, &z32)},
                    3,
                    {EMBER_INT32},
                    1,
                    1};
    expect_fail(&c6, EMBER_ERR_UNSUPPORTED, "not supported");
}

/* ============================== DequantizeLinear ============================== */

Test(dequantize, int8_per_axis_and_int32_extremes) {
    const int64_t d23[] = {2, 3}, three = 3;
    const int8_t x[] = {-128, 0, 127, 5, -5, 1};
    const float s[] = {0.5f, 2, -1};
    const int8_t zp[] = {-128, 1, 127};
    node_case c = {"DequantizeLinear",
                   13,
                   {A_INT("axis", -1)},
                   1,
                   {i8t(d23, 2, x), f32(&three, 1, s), i8t(&three, 1, zp)},
                   3,
                   {EMBER_FLOAT},
                   1,
                   1};
    ember_tensor *y = run_ok(&c);
    expect_f32(y, (const float[]){0, -2, 0, 66.5f, -12, 126}, 6);
    ember_tensor_free(y);

    /* int32: the difference is taken in 64 bits */
    const int64_t two = 2;
    const int32_t xi[] = {INT32_MIN, INT32_MAX}, zi = 1;
    node_case c2 = {
        "DequantizeLinear",
        13,
        {{0}},
        0,
        {tensor(EMBER_INT32, &two, 1, xi), f32_scalar(1.0f), tensor(EMBER_INT32, NULL, 0, &zi)},
        3,
        {EMBER_FLOAT},
        1,
        1};
    y = run_ok(&c2);
    expect_f32(y, (const float[]){-2147483649.0f, 2147483646.0f}, 2);
    ember_tensor_free(y);
}

Test(dequantize, zero_point_type_must_match) {
    const int64_t two = 2;
    const uint8_t x[] = {1, 2};
    const int8_t zp = 0;
    node_case c = {
        "DequantizeLinear", 13, {{0}}, 0, {u8t(&two, 1, x), f32_scalar(1.0f), i8t(NULL, 0, &zp)}, 3,
        {EMBER_FLOAT},      1,  1};
    expect_fail(&c, EMBER_ERR_INVALID_MODEL, "x_zero_point");
}

/* ============================== DynamicQuantizeLinear ============================== */

static int64_t count_of(const int64_t *dims, int rank) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    return n;
}

static void dynq(const int64_t *dims, int rank, const float *x, const uint8_t *want_y,
                 float want_scale, uint8_t want_zp) {
    node_case c = {"DynamicQuantizeLinear",
                   11,
                   {{0}},
                   0,
                   {f32(dims, rank, x)},
                   1,
                   {EMBER_UINT8, EMBER_FLOAT, EMBER_UINT8},
                   3,
                   1};
    ember_tensor *outs[MAX_IO] = {0};
    run_all_ok(&c, outs);
    expect_u8(outs[0], EMBER_UINT8, want_y, count_of(dims, rank));
    expect_f32(outs[1], &want_scale, 1);
    expect_u8(outs[2], EMBER_UINT8, &want_zp, 1);
    for (int k = 0; k < 3; k++) ember_tensor_free(outs[k]);
}

Test(dynamic_quantize, range_always_includes_zero) {
    const int64_t three = 3, zero = 0;
    /* scale (255 - -255) / 255 = 2; zero point 127.5 rounds to even 128 */
    dynq(&three, 1, (const float[]){-255, 0, 255}, (const uint8_t[]){0, 128, 255}, 2.0f, 128);
    /* all negative: max is 0, zero point 255 */
    dynq(&three, 1, (const float[]){-510, -255, -1}, (const uint8_t[]){0, 127, 255}, 2.0f, 255);
    /* all zeros: scale 1, zero point 0 */
    dynq(&three, 1, (const float[]){0, 0, 0}, (const uint8_t[]){0, 0, 0}, 1.0f, 0);
    /* NaN is left out of the range and quantizes to 0 */
    dynq(&three, 1, (const float[]){NAN, -255, 255}, (const uint8_t[]){0, 0, 255}, 2.0f, 128);
    /* empty input */
    dynq(&zero, 1, NULL, NULL, 1.0f, 0);
    /* long enough for the 16-lane min / max, with a NaN inside a lane block */
    const int64_t forty = 40;
    float x[40] = {0};
    uint8_t want[40];
    memset(want, 128, sizeof want);
    x[5] = NAN, want[5] = 0;
    x[17] = -255, want[17] = 0;
    x[30] = 255, want[30] = 255;
    dynq(&forty, 1, x, want, 2.0f, 128);
}

/* ============================== NonMaxSuppression ============================== */

static ember_tensor *nms_run_case(ember_tensor *boxes, ember_tensor *scores, const int64_t *max_out,
                                  const float *iou, const float *score_thr, int center,
                                  int threads) {
    const int64_t one = 1;
    node_case c = {"NonMaxSuppression",
                   11,
                   {A_INT("center_point_box", center)},
                   1,
                   {boxes, scores, max_out ? i64(&one, 1, max_out) : NULL,
                    iou ? f32(&one, 1, iou) : NULL, score_thr ? f32(&one, 1, score_thr) : NULL},
                   5,
                   {EMBER_INT64},
                   1,
                   threads};
    return run_ok(&c);
}

static void expect_rows(const ember_tensor *y, const int64_t *want, int64_t rows) {
    const int64_t dims[] = {rows, 3};
    expect_shape(y, dims, 2);
    expect_i64(y, want, rows * 3);
}

Test(nms, no_boxes_no_batches_and_zero_max_give_empty_output) {
    const int64_t b0[] = {1, 0, 4}, s0[] = {1, 2, 0}, big = 5, zero = 0, neg = -3;
    ember_tensor *y = nms_run_case(f32(b0, 3, NULL), f32(s0, 3, NULL), &big, NULL, NULL, 0, 1);
    expect_rows(y, NULL, 0);
    ember_tensor_free(y);
    const int64_t b1[] = {0, 3, 4}, s1[] = {0, 2, 3};
    y = nms_run_case(f32(b1, 3, NULL), f32(s1, 3, NULL), &big, NULL, NULL, 1, 1);
    expect_rows(y, NULL, 0);
    ember_tensor_free(y);
    const int64_t b2[] = {1, 2, 4}, s2[] = {1, 1, 2};
    const float boxes[] = {0, 0, 1, 1, 2, 2, 3, 3}, scores[] = {0.9f, 0.8f};
    const int64_t *maxes[] = {&zero, &neg, NULL};
    for (int k = 0; k < 3; k++) {
        y = nms_run_case(f32(b2, 3, boxes), f32(s2, 3, scores), maxes[k], NULL, NULL, 0, 1);
        expect_rows(y, NULL, 0);
        ember_tensor_free(y);
    }
}

Test(nms, ties_pick_lower_index_and_thresholds_are_strict) {
    /* four disjoint unit boxes, equal scores */
    const int64_t bd[] = {1, 4, 4}, sd[] = {1, 1, 4}, two = 2, all = 10;
    const float boxes[] = {0, 0, 1, 1, 0, 2, 1, 3, 0, 4, 1, 5, 0, 6, 1, 7};
    const float scores[] = {0.5f, 0.5f, 0.7f, 0.5f};
    ember_tensor *y = nms_run_case(f32(bd, 3, boxes), f32(sd, 3, scores), &two, NULL, NULL, 0, 1);
    expect_rows(y, (const int64_t[]){0, 0, 2, 0, 0, 0}, 2);
    ember_tensor_free(y);
    /* score_threshold equal to a score removes it (strictly greater passes) */
    const float thr = 0.5f;
    y = nms_run_case(f32(bd, 3, boxes), f32(sd, 3, scores), &all, NULL, &thr, 0, 1);
    expect_rows(y, (const int64_t[]){0, 0, 2}, 1);
    ember_tensor_free(y);
}

Test(nms, iou_equal_to_threshold_keeps_the_box) {
    /* A = [0,0]-[1,2] (area 2), B = [0,0]-[1,1] (area 1): IoU exactly 0.5 */
    const int64_t bd[] = {1, 2, 4}, sd[] = {1, 1, 2}, all = 10;
    const float boxes[] = {0, 0, 1, 2, 1, 1, 0, 0}; /* B given by its other diagonal */
    const float scores[] = {0.9f, 0.8f};
    const float half = 0.5f, less = 0.49f;
    ember_tensor *y = nms_run_case(f32(bd, 3, boxes), f32(sd, 3, scores), &all, &half, NULL, 0, 1);
    expect_rows(y, (const int64_t[]){0, 0, 0, 0, 0, 1}, 2);
    ember_tensor_free(y);
    y = nms_run_case(f32(bd, 3, boxes), f32(sd, 3, scores), &all, &less, NULL, 0, 1);
    expect_rows(y, (const int64_t[]){0, 0, 0}, 1);
    ember_tensor_free(y);
    /* the same boxes in center format: A = (1, 0.5, 2, 1), B = (0.5, 0.5, 1, 1) */
    const float centers[] = {1, 0.5f, 2, 1, 0.5f, 0.5f, 1, 1};
    y = nms_run_case(f32(bd, 3, centers), f32(sd, 3, scores), &all, &less, NULL, 1, 1);
    expect_rows(y, (const int64_t[]){0, 0, 0}, 1);
    ember_tensor_free(y);
}

Test(nms, nan_scores_come_last_or_are_filtered) {
    const int64_t bd[] = {1, 3, 4}, sd[] = {1, 1, 3}, all = 10;
    const float boxes[] = {0, 0, 1, 1, 0, 2, 1, 3, 0, 4, 1, 5};
    const float scores[] = {NAN, 0.5f, 0.9f};
    ember_tensor *y = nms_run_case(f32(bd, 3, boxes), f32(sd, 3, scores), &all, NULL, NULL, 0, 1);
    expect_rows(y, (const int64_t[]){0, 0, 2, 0, 0, 1, 0, 0, 0}, 3);
    ember_tensor_free(y);
    const float thr = 0.0f;
    y = nms_run_case(f32(bd, 3, boxes), f32(sd, 3, scores), &all, NULL, &thr, 0, 1);
    expect_rows(y, (const int64_t[]){0, 0, 2, 0, 0, 1}, 2);
    ember_tensor_free(y);
}

Test(nms, threads_give_the_same_rows) {
    enum { B = 2, C = 9, S = 300 };
    const int64_t bd[] = {B, S, 4}, sd[] = {B, C, S}, mx = 20;
    static float boxes[B * S * 4], scores[B * C * S];
    uint32_t seed = 99;
    for (int i = 0; i < B * S * 4; i++) {
        seed = seed * 1664525u + 1013904223u;
        boxes[i] = (float)(seed >> 16) / 65536.0f * 20.0f;
    }
    for (int i = 0; i < B * C * S; i++) {
        seed = seed * 1664525u + 1013904223u;
        scores[i] = (float)((seed >> 20) % 10) / 10.0f;
    }
    const float iou = 0.3f, thr = 0.15f;
    ember_tensor *y1 = nms_run_case(f32(bd, 3, boxes), f32(sd, 3, scores), &mx, &iou, &thr, 0, 1);
    ember_tensor *y2 = nms_run_case(f32(bd, 3, boxes), f32(sd, 3, scores), &mx, &iou, &thr, 0, 2);
    cr_assert_gt(ember_tensor_dims(y1)[0], B * C); /* several boxes per class */
    expect_rows(y2, ember_tensor_const_data(y1), ember_tensor_dims(y1)[0]);
    ember_tensor_free(y1);
    ember_tensor_free(y2);
}

Test(nms, bad_inputs_fail) {
    const int64_t bd[] = {1, 2, 4}, sd[] = {1, 1, 3};
    const float boxes[8] = {0}, scores[3] = {0};
    node_case c = {"NonMaxSuppression", 11, {{0}}, 0, {f32(bd, 3, boxes), f32(sd, 3, scores)}, 2,
                   {EMBER_INT64},       1,  1};
    expect_fail(&c, EMBER_ERR_SHAPE, "scores must be");
    const int64_t sd2[] = {1, 1, 2};
    node_case c2 = {"NonMaxSuppression",
                    11,
                    {A_INT("center_point_box", 2)},
                    1,
                    {f32(bd, 3, boxes), f32(sd2, 3, scores)},
                    2,
                    {EMBER_INT64},
                    1,
                    1};
    expect_fail(&c2, EMBER_ERR_INVALID_MODEL, "center_point_box");
}

/* ============================== GridSample ============================== */

static ember_tensor *grid_sample(const float *x, const int64_t *xd, const float *grid,
                                 const int64_t *gd, const char *mode, const char *pad, int align) {
    node_case c = {"GridSample",
                   16,
                   {A_STR("mode", mode), A_STR("padding_mode", pad), A_INT("align_corners", align)},
                   3,
                   {f32(xd, 4, x), f32(gd, 4, grid)},
                   2,
                   {EMBER_FLOAT},
                   1,
                   1};
    return run_ok(&c);
}

/* X = [[1, 2, 3], [4, 5, 6]]; points far left, far right and above, inside, near a corner.
 * Expected values from the ONNX reference implementation (they agree with PyTorch here). */
Test(gridsample, outside_points_per_padding_mode) {
    const int64_t xd[] = {1, 1, 2, 3}, gd[] = {1, 1, 4, 2};
    const float x[] = {1, 2, 3, 4, 5, 6};
    const float grid[] = {-3, 0, 5, -4, 0.2f, 0.3f, -0.9f, 0.95f};
    static const struct {
        const char *mode, *pad;
        int align;
        float want[4];
    } cases[] = {
        {"bilinear", "zeros", 0, {0, 0, 4.7f, 1.43f}},
        {"bilinear", "zeros", 1, {0, 0, 4.15f, 4.025f}},
        {"bilinear", "border", 0, {2.5f, 3, 4.7f, 4}},
        {"bilinear", "border", 1, {2.5f, 3, 4.15f, 4.025f}},
        {"bilinear", "reflection", 0, {4.5f, 4.5f, 4.7f, 4}},
        {"bilinear", "reflection", 1, {4.5f, 4.5f, 4.15f, 4.025f}},
        {"nearest", "zeros", 0, {0, 0, 5, 4}},
        {"nearest", "zeros", 1, {0, 0, 5, 4}},
        {"nearest", "border", 0, {1, 3, 5, 4}},
        {"nearest", "border", 1, {1, 3, 5, 4}},
        {"nearest", "reflection", 0, {3, 3, 5, 4}},
        {"nearest", "reflection", 1, {3, 3, 5, 4}},
        {"bicubic", "zeros", 0, {0, 0, 5.72513f, 1.626671f}},
        {"bicubic", "zeros", 1, {0, 0, 5.133865f, 4.334605f}},
        {"bicubic", "border", 0, {2.5f, 3, 4.86125f, 4.195375f}},
        {"bicubic", "border", 1, {2.5f, 3, 4.273188f, 4.017617f}},
        {"bicubic", "reflection", 0, {4.6875f, 4.6875f, 4.86125f, 4.38625f}},
        {"bicubic", "reflection", 1, {4.5f, 4.5f, 4.45075f, 4.008969f}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ember_tensor *y = grid_sample(x, xd, grid, gd, cases[k].mode, cases[k].pad, cases[k].align);
        const float *got = ember_tensor_const_data(y);
        for (int i = 0; i < 4; i++)
            cr_assert(fabsf(got[i] - cases[k].want[i]) <= 2e-6f * (1 + fabsf(cases[k].want[i])),
                      "%s/%s/align %d point %d: %.7g, expected %.7g", cases[k].mode, cases[k].pad,
                      cases[k].align, i, got[i], cases[k].want[i]);
        ember_tensor_free(y);
    }
}

Test(gridsample, nearest_ties_round_to_even) {
    /* W = 4, align_corners = 1: x = (g + 1) / 2 * 3; g = -2/3 gives 0.5 -> 0, g = 0 gives
     * 1.5 -> 2, g = 2/3 gives 2.5 -> 2 */
    const int64_t xd[] = {1, 1, 1, 4}, gd[] = {1, 1, 3, 2};
    const float x[] = {10, 20, 30, 40};
    const float grid[] = {-1.0f / 3.0f * 2.0f, 0, 0, 0, 2.0f / 3.0f, 0};
    ember_tensor *y = grid_sample(x, xd, grid, gd, "nearest", "zeros", 1);
    const float *got = ember_tensor_const_data(y);
    /* -2/3 in float is not exact: its pixel lands within 1e-7 of 0.5 either way */
    cr_assert(got[0] == 10 || got[0] == 20);
    cr_assert_eq(got[1], 30);
    cr_assert(got[2] == 30 || got[2] == 40);
    ember_tensor_free(y);
    /* exact halves: W = 2, align_corners = 0: x = (g + 1) - 0.5; g = 0 -> 0.5 -> 0 */
    const int64_t xd2[] = {1, 1, 1, 2}, gd2[] = {1, 1, 2, 2};
    const float x2[] = {10, 20}, grid2[] = {0, 0, 1, 0}; /* x = 0.5 -> 0; x = 1.5 -> 2: zero */
    y = grid_sample(x2, xd2, grid2, gd2, "nearest", "zeros", 0);
    expect_f32(y, (const float[]){10, 0}, 2);
    ember_tensor_free(y);
}

Test(gridsample, nan_and_infinite_coordinates) {
    const int64_t xd[] = {1, 1, 2, 3}, gd[] = {1, 1, 3, 2};
    const float x[] = {1, 2, 3, 4, 5, 6};
    const float grid[] = {NAN, 0, INFINITY, 0, -INFINITY, -INFINITY};
    const char *modes[] = {"bilinear", "nearest", "bicubic"};
    for (int m = 0; m < 3; m++) {
        ember_tensor *y = grid_sample(x, xd, grid, gd, modes[m], "zeros", 0);
        expect_f32(y, (const float[]){NAN, 0, 0}, 3);
        ember_tensor_free(y);
        y = grid_sample(x, xd, grid, gd, modes[m], "border", 0);
        const float *g = ember_tensor_const_data(y);
        cr_assert(isnan(g[0]) && isfinite(g[1]) && g[2] == 1, "%s border: %g %g %g", modes[m], g[0],
                  g[1], g[2]);
        ember_tensor_free(y);
        y = grid_sample(x, xd, grid, gd, modes[m], "reflection", 1);
        g = ember_tensor_const_data(y);
        cr_assert(isnan(g[0]) && isfinite(g[1]) && isfinite(g[2]));
        ember_tensor_free(y);
    }
}

Test(gridsample, single_pixel_axis_with_reflection) {
    /* H = 1 with align_corners: the reflection range is empty, every row maps to row 0 */
    const int64_t xd[] = {1, 1, 1, 3}, gd[] = {1, 1, 2, 2};
    const float x[] = {1, 2, 3}, grid[] = {0.5f, 0.7f, 0, -5};
    ember_tensor *y = grid_sample(x, xd, grid, gd, "bilinear", "reflection", 1);
    expect_f32(y, (const float[]){2.5f, 2}, 2);
    ember_tensor_free(y);
    /* cubic taps 0..3 at x = 1.5: tap 3 reflects to 1 */
    y = grid_sample(x, xd, grid, gd, "bicubic", "reflection", 1);
    expect_f32(y, (const float[]){2.6875f, 2}, 2);
    ember_tensor_free(y);
}

Test(gridsample, opset16_needs_4d_input) {
    const int64_t xd[] = {1, 1, 2, 2, 2}, gd[] = {1, 1, 1, 1, 3};
    const float x[8] = {0}, grid[3] = {0};
    node_case c = {"GridSample",  16, {{0}}, 0, {f32(xd, 5, x), f32(gd, 5, grid)}, 2,
                   {EMBER_FLOAT}, 1,  1};
    expect_fail(&c, EMBER_ERR_SHAPE, "4-D");
    node_case c2 = {"GridSample",
                    20,
                    {A_STR("mode", "cubc")},
                    1,
                    {f32(xd, 5, x), f32(gd, 5, grid)},
                    2,
                    {EMBER_FLOAT},
                    1,
                    1};
    expect_fail(&c2, EMBER_ERR_INVALID_MODEL, "cubc");
}

/* ============================== RoiAlign, MaxRoiPool ============================== */

static const float k_arange16[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

Test(roialign, batch_index_out_of_range_fails) {
    const int64_t xd[] = {1, 1, 4, 4}, rd[] = {1, 4}, one = 1;
    const float rois[] = {0, 0, 2, 2};
    const int64_t bad = 1;
    node_case c = {"RoiAlign",
                   16,
                   {{0}},
                   0,
                   {f32(xd, 4, k_arange16), f32(rd, 2, rois), i64(&one, 1, &bad)},
                   3,
                   {EMBER_FLOAT},
                   1,
                   1};
    expect_fail(&c, EMBER_ERR_INVALID_ARGUMENT, "batch_indices");
}

Test(roialign, nan_roi_gives_nan_and_huge_roi_is_refused) {
    const int64_t xd[] = {1, 1, 4, 4}, rd[] = {2, 4}, two = 2;
    const float rois[] = {0, 0, 3, 3, NAN, 0, 1, 1};
    const int64_t bi[] = {0, 0};
    node_case c = {
        "RoiAlign",
        16,
        {A_STR("coordinate_transformation_mode", "output_half_pixel"), A_INT("sampling_ratio", 1)},
        2,
        {f32(xd, 4, k_arange16), f32(rd, 2, rois), i64(&two, 1, bi)},
        3,
        {EMBER_FLOAT},
        1,
        1};
    ember_tensor *y = run_ok(&c);
    /* one sample at (1.5, 1.5) */
    expect_f32(y, (const float[]){7.5f, NAN}, 2);
    ember_tensor_free(y);
    const float huge[] = {0, 0, 1e9f, 1e9f, 0, 0, 1, 1};
    node_case c2 = {"RoiAlign",
                    16,
                    {{0}},
                    0,
                    {f32(xd, 4, k_arange16), f32(rd, 2, huge), i64(&two, 1, bi)},
                    3,
                    {EMBER_FLOAT},
                    1,
                    1};
    expect_fail(&c2, EMBER_ERR_LIMIT, "sampling");
}

Test(maxroipool, empty_bins_and_bad_batch) {
    const int64_t xd[] = {1, 1, 4, 4}, rd[] = {2, 5}, pooled[] = {1, 1};
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i - 100;
    /* roi 0 covers [0, 1] x [0, 1]: max -95; roi 1 lies outside the image: 0 */
    const float rois[] = {0, 0, 0, 1, 1, 0, 10, 10, 12, 12};
    node_case c = {"MaxRoiPool",
                   1,
                   {A_INTS("pooled_shape", pooled, 2)},
                   1,
                   {f32(xd, 4, x), f32(rd, 2, rois)},
                   2,
                   {EMBER_FLOAT},
                   1,
                   1};
    ember_tensor *y = run_ok(&c);
    expect_f32(y, (const float[]){-95, 0}, 2);
    ember_tensor_free(y);
    const float bad[] = {1, 0, 0, 1, 1, NAN, 0, 0, 1, 1};
    node_case c2 = {"MaxRoiPool",
                    1,
                    {A_INTS("pooled_shape", pooled, 2)},
                    1,
                    {f32(xd, 4, x), f32(rd, 2, bad)},
                    2,
                    {EMBER_FLOAT},
                    1,
                    1};
    expect_fail(&c2, EMBER_ERR_INVALID_ARGUMENT, "batch index");
}

/* ============================== Col2Im ============================== */

Test(col2im, one_dimensional_overlap_adds) {
    const int64_t xd[] = {1, 2, 2}, one = 1;
    const float x[] = {1, 2, 10, 20}; /* rows: kernel offsets 0, 1; columns: positions 0, 1 */
    const int64_t image = 3, block = 2;
    node_case c = {
        "Col2Im",      18, {{0}}, 0, {f32(xd, 3, x), i64(&one, 1, &image), i64(&one, 1, &block)}, 3,
        {EMBER_FLOAT}, 1,  1};
    ember_tensor *y = run_ok(&c);
    const int64_t yd[] = {1, 1, 3};
    expect_shape(y, yd, 3);
    expect_f32(y, (const float[]){1, 12, 20}, 3);
    ember_tensor_free(y);
}

Test(col2im, block_count_must_match) {
    const int64_t xd[] = {1, 4, 5}, two = 2;
    const float x[20] = {0};
    const int64_t image[] = {3, 3}, block[] = {2, 2}; /* 2 x 2 = 4 positions, not 5 */
    node_case c = {
        "Col2Im",      18, {{0}}, 0, {f32(xd, 3, x), i64(&two, 1, image), i64(&two, 1, block)}, 3,
        {EMBER_FLOAT}, 1,  1};
    expect_fail(&c, EMBER_ERR_SHAPE, "number of blocks");
}
