/* Pooling, normalization and control-flow kernels, through the public API on small models
 * built in memory: output sizes (ceil_mode, auto_pad), padding rules, count_include_pad,
 * Indices, the float32 fast path against the generic path, and subgraphs with captures. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "model_builder.h"
#include "onnx.pb-c.h"

static ember_tensor *tensor_f32(int rank, const int64_t *dims, const float *vals) {
    ember_tensor *t;
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, dims, rank, &t, NULL), EMBER_OK);
    memcpy(ember_tensor_data(t), vals, ember_tensor_byte_size(t));
    return t;
}

static void expect_f32(const ember_tensor *t, int n, const float *want, float tol) {
    cr_assert_eq(ember_tensor_element_count(t), n);
    const float *v = ember_tensor_const_data(t);
    for (int i = 0; i < n; i++)
        cr_assert(fabsf(v[i] - want[i]) <= tol, "element %d: %g vs %g", i, v[i], want[i]);
}

/* One-node float model: input "x" of the given shape, outputs listed. */
static Onnx__GraphProto *one_node(builder *b, const char *op, int rank, const int64_t *dims,
                                  const char **outs, Onnx__AttributeProto **attrs) {
    int n_out = count_null((const void *const *)outs);
    Onnx__ValueInfoProto **ovi = b_alloc(b, sizeof *ovi * (size_t)(n_out + 1));
    for (int i = 0; i < n_out; i++)
        ovi[i] = vi(b, outs[i], strstr(outs[i], "ind") ? EMBER_INT64 : EMBER_FLOAT, -1, NULL);
    return graph(b, op, NODES(node(b, op, STRS("x"), outs, attrs)),
                 VIS(vi(b, "x", EMBER_FLOAT, rank, dims)), ovi, NO_INITS);
}

static const char *const X_NAME[] = {"x"};

/* ---------------------------------------------------------------------------------------------
 * Pooling
 * ------------------------------------------------------------------------------------------- */

static float iota16[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

Test(pool, ceil_mode_output_size) {
    builder b = {0};
    int64_t dims[] = {1, 1, 4, 4};
    for (int ceil = 0; ceil <= 1; ceil++) {
        Onnx__GraphProto *g =
            one_node(&b, "MaxPool", 4, dims, STRS("y"),
                     ATTRS(a_ints(&b, "kernel_shape", INTS(3, 3)),
                           a_ints(&b, "strides", INTS(2, 2)), a_int(&b, "ceil_mode", ceil)));
        ember_tensor *x = tensor_f32(4, dims, iota16), *y = NULL;
        ember_error err;
        cr_assert_eq(run_model(&b, g, 12, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                     EMBER_OK, "%s", err.message);
        if (ceil) {
            expect_dims(y, 4, (int64_t[]){1, 1, 2, 2});
            expect_f32(y, 4, (float[]){10, 11, 14, 15}, 0);
        } else {
            expect_dims(y, 4, (int64_t[]){1, 1, 1, 1});
            expect_f32(y, 1, (float[]){10}, 0);
        }
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    b_free(&b);
}

/* ceil_mode drops a last window that would start inside the end padding: W = 4, k = 2, s = 2,
 * pads (0, 1) gives ceil(3 / 2) + 1 = 3 windows, but the third would start at 4 (padding). */
Test(pool, ceil_mode_drops_window_in_end_padding) {
    builder b = {0};
    int64_t dims[] = {1, 1, 4};
    Onnx__GraphProto *g =
        one_node(&b, "MaxPool", 3, dims, STRS("y"),
                 ATTRS(a_ints(&b, "kernel_shape", INTS(2)), a_ints(&b, "strides", INTS(2)),
                       a_ints(&b, "pads", INTS(0, 1)), a_int(&b, "ceil_mode", 1)));
    ember_tensor *x = tensor_f32(3, dims, (float[]){1, 5, 2, 7}), *y = NULL;
    ember_error err;
    cr_assert_eq(run_model(&b, g, 12, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                 EMBER_OK, "%s", err.message);
    expect_dims(y, 3, (int64_t[]){1, 1, 2});
    expect_f32(y, 2, (float[]){5, 7}, 0);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

Test(pool, pads_not_smaller_than_kernel_rejected) {
    builder b = {0};
    int64_t dims[] = {1, 1, 4, 4};
    Onnx__GraphProto *g = one_node(
        &b, "MaxPool", 4, dims, STRS("y"),
        ATTRS(a_ints(&b, "kernel_shape", INTS(2, 2)), a_ints(&b, "pads", INTS(2, 0, 0, 0))));
    ember_tensor *x = tensor_f32(4, dims, iota16), *y = NULL;
    ember_error err = {0};
    ember_status st = run_model(&b, g, 12, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err);
    cr_assert_eq(st, EMBER_ERR_INVALID_MODEL, "status %d: %s", st, err.message);
    cr_assert(strstr(err.message, "pads") && strstr(err.message, "MaxPool"), "%s", err.message);
    cr_assert_null(y);
    ember_tensor_free(x);
    b_free(&b);
}

Test(pool, kernel_larger_than_input_rejected) {
    builder b = {0};
    int64_t dims[] = {1, 1, 2, 2};
    Onnx__GraphProto *g = one_node(&b, "AveragePool", 4, dims, STRS("y"),
                                   ATTRS(a_ints(&b, "kernel_shape", INTS(3, 3))));
    ember_model *m = NULL;
    ember_error err = {0};
    cr_assert_eq(load_model(&b, g, 11, &m, &err), EMBER_ERR_SHAPE, "%s", err.message);
    cr_assert(strstr(err.message, "kernel"), "%s", err.message);
    cr_assert_null(m);
    b_free(&b);
}

/* 3x3 ones, 3x3 kernel, pads 1: without pads in the count every mean is 1; with them the
 * corners are 4/9 and the edges 6/9. */
Test(pool, count_include_pad) {
    builder b = {0};
    int64_t dims[] = {1, 1, 3, 3};
    float ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    for (int include = 0; include <= 1; include++) {
        Onnx__GraphProto *g = one_node(&b, "AveragePool", 4, dims, STRS("y"),
                                       ATTRS(a_ints(&b, "kernel_shape", INTS(3, 3)),
                                             a_ints(&b, "pads", INTS(1, 1, 1, 1)),
                                             a_int(&b, "count_include_pad", include)));
        ember_tensor *x = tensor_f32(4, dims, ones), *y = NULL;
        ember_error err;
        cr_assert_eq(run_model(&b, g, 11, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                     EMBER_OK, "%s", err.message);
        expect_dims(y, 4, dims);
        float c = 4.0f / 9, e = 6.0f / 9;
        if (include)
            expect_f32(y, 9, (float[]){c, e, c, e, 1, e, c, e, c}, 1e-6f);
        else
            expect_f32(y, 9, ones, 1e-6f);
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    b_free(&b);
}

/* With ceil_mode the last window reaches past the end padding: only cells up to the end of the
 * padding count. W = 4, k = 3, s = 2, pads (1, 1): windows [-1, 1], [1, 3], [3, 5). */
Test(pool, count_include_pad_with_ceil_mode) {
    builder b = {0};
    int64_t dims[] = {1, 1, 4};
    Onnx__GraphProto *g =
        one_node(&b, "AveragePool", 3, dims, STRS("y"),
                 ATTRS(a_ints(&b, "kernel_shape", INTS(3)), a_ints(&b, "strides", INTS(2)),
                       a_ints(&b, "pads", INTS(1, 1)), a_int(&b, "ceil_mode", 1),
                       a_int(&b, "count_include_pad", 1)));
    ember_tensor *x = tensor_f32(3, dims, (float[]){3, 3, 3, 3}), *y = NULL;
    ember_error err;
    cr_assert_eq(run_model(&b, g, 11, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                 EMBER_OK, "%s", err.message);
    expect_dims(y, 3, (int64_t[]){1, 1, 3});
    expect_f32(y, 3, (float[]){2, 3, 1.5f}, 1e-6f);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

Test(pool, same_upper_and_lower) {
    builder b = {0};
    int64_t dims[] = {1, 1, 4};
    /* x = {1, 5, 2, 7}, k = 2, s = 1: one pad cell, at the end (SAME_UPPER: windows
     * [i, i + 1]) or at the start (SAME_LOWER: windows [i - 1, i]). */
    const char *modes[] = {"SAME_UPPER", "SAME_LOWER"};
    float want[2][4] = {{5, 5, 7, 7}, {1, 5, 5, 7}};
    for (int m = 0; m < 2; m++) {
        Onnx__GraphProto *g =
            one_node(&b, "MaxPool", 3, dims, STRS("y"),
                     ATTRS(a_ints(&b, "kernel_shape", INTS(2)), a_str(&b, "auto_pad", modes[m])));
        ember_tensor *x = tensor_f32(3, dims, (float[]){1, 5, 2, 7}), *y = NULL;
        ember_error err;
        cr_assert_eq(run_model(&b, g, 12, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                     EMBER_OK, "%s", err.message);
        expect_dims(y, 3, dims);
        expect_f32(y, 4, want[m], 0);
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    b_free(&b);
}

/* Indices: flat over the whole input; storage_order 1 orders spatial dims column-major. */
Test(pool, indices_row_and_column_major) {
    builder b = {0};
    int64_t dims[] = {2, 1, 2, 3};
    float xv[12] = {0, 9, 1, 2, 3, 4, /* plane 0 */ 5, 6, 7, 8, 1, 0};
    for (int order = 0; order <= 1; order++) {
        Onnx__GraphProto *g = one_node(
            &b, "MaxPool", 4, dims, STRS("y", "ind"),
            ATTRS(a_ints(&b, "kernel_shape", INTS(2, 2)), a_int(&b, "storage_order", order)));
        ember_tensor *x = tensor_f32(4, dims, xv), *out[2] = {0};
        ember_error err;
        cr_assert_eq(
            run_model(&b, g, 12, 1, &x, (const char **)X_NAME, 2, STRS("y", "ind"), out, &err),
            EMBER_OK, "%s", err.message);
        expect_dims(out[0], 4, (int64_t[]){2, 1, 1, 2});
        expect_f32(out[0], 4, (float[]){9, 9, 8, 7}, 0);
        const int64_t *ind = ember_tensor_const_data(out[1]);
        /* Maxima: plane 0 at (0, 1) twice; plane 1 at (1, 0) and (0, 2). Planes are 6 apart;
         * row-major offset h * 3 + w, column-major h + w * 2. */
        int64_t want_row[4] = {1, 1, 6 + 3, 6 + 2};
        int64_t want_col[4] = {2, 2, 6 + 1, 6 + 4};
        for (int i = 0; i < 4; i++)
            cr_assert_eq(ind[i], order ? want_col[i] : want_row[i], "order %d index %d: %lld",
                         order, i, (long long)ind[i]);
        ember_tensor_free(x);
        ember_tensor_free(out[0]);
        ember_tensor_free(out[1]);
    }
    b_free(&b);
}

/* The float32 fast path (2-D, no dilation) against a direct reference on random data, with
 * borders, strides, asymmetric pads, ceil_mode and count_include_pad. */
static float ref_pool(const float *x, int H, int W, int kh, int kw, int sh, int sw, int pt, int pl,
                      int pb, int pr, int oh, int ow, int avg, int include) {
    float m = -INFINITY, s = 0;
    int count = 0, padded = 0;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) {
            int h = oh * sh - pt + i, w = ow * sw - pl + j;
            if (h < H + pb && w < W + pr) padded++;
            if (h < 0 || w < 0 || h >= H || w >= W) continue;
            float v = x[h * W + w];
            m = v > m ? v : m;
            s += v;
            count++;
        }
    return avg ? s / (float)(include ? padded : count) : m;
}

Test(pool, fast_path_matches_reference) {
    builder b = {0};
    srand(7);
    struct {
        int H, W, kh, kw, sh, sw, pt, pl, pb, pr, ceil, include;
    } cases[] = {
        {112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0},
        {9, 13, 2, 2, 2, 2, 0, 0, 0, 0, 1, 0},
        {7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 0, 1},
        {10, 5, 4, 2, 3, 1, 2, 1, 0, 1, 1, 1},
        {1, 17, 1, 5, 1, 3, 0, 2, 0, 2, 0, 0},
        /* MaxPool 3x3 stride 2 has its own kernel: ceil_mode windows cut by the border, pads,
         * inputs with no interior column. */
        {111, 111, 3, 3, 2, 2, 0, 0, 0, 0, 1, 0},
        {56, 57, 3, 3, 2, 2, 0, 0, 0, 0, 1, 0},
        {13, 40, 3, 3, 2, 2, 1, 0, 0, 1, 1, 0},
        {4, 5, 3, 3, 2, 2, 1, 2, 2, 1, 0, 0},
        {1, 7, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0},
        {2, 2, 3, 3, 2, 2, 1, 1, 1, 1, 1, 0},
        /* Column stride 2 with a 2- or 3-wide kernel runs on AVX-512 (ops/pool_max512.c):
         * small planes (one masked vector per row), rows of several vectors, row strides 1 and
         * 3, a left pad with a 2-wide kernel, ceil_mode. */
        {8, 8, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0},
        {5, 70, 2, 3, 1, 2, 0, 1, 1, 1, 0, 0},
        {9, 67, 3, 2, 3, 2, 1, 1, 0, 0, 1, 0},
        {1, 33, 1, 3, 1, 2, 0, 0, 0, 0, 1, 0},
        {3, 2100, 3, 3, 2, 2, 0, 1, 0, 1, 0, 0}, /* rows of over 1024 outputs: two passes */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int H = cases[c].H, W = cases[c].W;
        int64_t dims[] = {2, 3, H, W};
        int n = 6 * H * W;
        float *xv = malloc(sizeof(float) * (size_t)n);
        for (int i = 0; i < n; i++) xv[i] = (float)rand() / (float)RAND_MAX * 2.0f - 1.0f;
        for (int avg = 0; avg <= 1; avg++) {
            Onnx__GraphProto *g = one_node(
                &b, avg ? "AveragePool" : "MaxPool", 4, dims, STRS("y"),
                ATTRS(a_ints(&b, "kernel_shape", INTS(cases[c].kh, cases[c].kw)),
                      a_ints(&b, "strides", INTS(cases[c].sh, cases[c].sw)),
                      a_ints(&b, "pads", INTS(cases[c].pt, cases[c].pl, cases[c].pb, cases[c].pr)),
                      a_int(&b, "ceil_mode", cases[c].ceil),
                      a_int(&b, "count_include_pad", cases[c].include)));
            ember_tensor *x = tensor_f32(4, dims, xv), *y = NULL;
            ember_error err;
            cr_assert_eq(run_model(&b, g, 11, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                         EMBER_OK, "case %zu: %s", c, err.message);
            const int64_t *yd = ember_tensor_dims(y);
            int OH = (int)yd[2], OW = (int)yd[3];
            const float *yv = ember_tensor_const_data(y);
            for (int p = 0; p < 6; p++)
                for (int oh = 0; oh < OH; oh++)
                    for (int ow = 0; ow < OW; ow++) {
                        float want =
                            ref_pool(xv + p * H * W, H, W, cases[c].kh, cases[c].kw, cases[c].sh,
                                     cases[c].sw, cases[c].pt, cases[c].pl, cases[c].pb,
                                     cases[c].pr, oh, ow, avg, cases[c].include);
                        float got = yv[(p * OH + oh) * OW + ow];
                        cr_assert(fabsf(got - want) <= 1e-5f,
                                  "case %zu avg %d (%d,%d,%d): %g vs %g", c, avg, p, oh, ow, got,
                                  want);
                    }
            ember_tensor_free(x);
            ember_tensor_free(y);
            b_free(&b); /* each case's model on its own */
        }
        free(xv);
    }
}

Test(pool, dilated_maxpool) {
    builder b = {0};
    int64_t dims[] = {1, 1, 4, 4};
    Onnx__GraphProto *g = one_node(
        &b, "MaxPool", 4, dims, STRS("y"),
        ATTRS(a_ints(&b, "kernel_shape", INTS(2, 2)), a_ints(&b, "dilations", INTS(2, 2))));
    ember_tensor *x = tensor_f32(4, dims, iota16), *y = NULL;
    ember_error err;
    cr_assert_eq(run_model(&b, g, 12, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                 EMBER_OK, "%s", err.message);
    expect_dims(y, 4, (int64_t[]){1, 1, 2, 2});
    expect_f32(y, 4, (float[]){10, 11, 14, 15}, 0);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

Test(pool, lppool_and_global) {
    builder b = {0};
    int64_t dims[] = {1, 2, 2, 2};
    float xv[8] = {3, 4, 0, 0, 1, -2, 3, -4};
    const char *ops[] = {"LpPool", "GlobalLpPool", "GlobalAveragePool", "GlobalMaxPool"};
    float want[4][2] = {{5, sqrtf(30)}, {5, sqrtf(30)}, {1.75f, -0.5f}, {4, 3}};
    for (int k = 0; k < 4; k++) {
        Onnx__AttributeProto **attrs =
            k == 0 ? ATTRS(a_ints(&b, "kernel_shape", INTS(2, 2)), a_int(&b, "p", 2)) : NO_ATTRS;
        Onnx__GraphProto *g = one_node(&b, ops[k], 4, dims, STRS("y"), attrs);
        ember_tensor *x = tensor_f32(4, dims, xv), *y = NULL;
        ember_error err;
        cr_assert_eq(run_model(&b, g, 11, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                     EMBER_OK, "%s: %s", ops[k], err.message);
        expect_dims(y, 4, (int64_t[]){1, 2, 1, 1});
        expect_f32(y, 2, want[k], 1e-5f);
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    b_free(&b);
}

Test(pool, maxpool_uint8_and_float16_global) {
    builder b = {0};
    int64_t dims[] = {1, 1, 2, 2};
    Onnx__GraphProto *g = graph(&b, "u8",
                                NODES(node(&b, "MaxPool", STRS("x"), STRS("y"),
                                           ATTRS(a_ints(&b, "kernel_shape", INTS(2, 2)),
                                                 a_ints(&b, "pads", INTS(1, 1, 0, 0))))),
                                VIS(vi(&b, "x", EMBER_UINT8, 4, dims)),
                                VIS(vi(&b, "y", EMBER_UINT8, -1, NULL)), NO_INITS);
    uint8_t xv[4] = {0, 200, 7, 255};
    ember_tensor *x = tensor_of(EMBER_UINT8, 4, dims, xv), *y = NULL;
    ember_error err;
    cr_assert_eq(run_model(&b, g, 12, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                 EMBER_OK, "%s", err.message);
    expect_dims(y, 4, dims);
    const uint8_t *yv = ember_tensor_const_data(y);
    cr_assert(yv[0] == 0 && yv[1] == 200 && yv[2] == 7 && yv[3] == 255);
    ember_tensor_free(x);
    ember_tensor_free(y);

    /* float16 GlobalAveragePool: computed in float32. */
    g = graph(&b, "f16", NODES(node(&b, "GlobalAveragePool", STRS("x"), STRS("y"), NO_ATTRS)),
              VIS(vi(&b, "x", EMBER_FLOAT16, 4, dims)), VIS(vi(&b, "y", EMBER_FLOAT16, -1, NULL)),
              NO_INITS);
    uint16_t hv[4] = {0x3c00, 0x4000, 0x4200, 0x4400}; /* 1, 2, 3, 4 */
    x = tensor_of(EMBER_FLOAT16, 4, dims, hv);
    cr_assert_eq(run_model(&b, g, 11, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                 EMBER_OK, "%s", err.message);
    cr_assert_eq(*(const uint16_t *)ember_tensor_const_data(y), 0x4100); /* 2.5 */
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

/* MaxPool with Indices then MaxUnpool restores the maxima in place, zeros elsewhere. */
Test(pool, maxunpool_roundtrip) {
    builder b = {0};
    int64_t dims[] = {1, 1, 4, 4};
    Onnx__AttributeProto **pattrs =
        ATTRS(a_ints(&b, "kernel_shape", INTS(2, 2)), a_ints(&b, "strides", INTS(2, 2)));
    Onnx__GraphProto *g = graph(&b, "unpool",
                                NODES(node(&b, "MaxPool", STRS("x"), STRS("p", "ind"), pattrs),
                                      node(&b, "MaxUnpool", STRS("p", "ind"), STRS("y"), pattrs)),
                                VIS(vi(&b, "x", EMBER_FLOAT, 4, dims)),
                                VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)), NO_INITS);
    float xv[16] = {1, 2, 0, 0, 4, 3, 0, 9, 0, 0, 0, 0, 0, 5, 6, 0};
    ember_tensor *x = tensor_f32(4, dims, xv), *y = NULL;
    ember_error err;
    cr_assert_eq(run_model(&b, g, 11, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
                 EMBER_OK, "%s", err.message);
    expect_dims(y, 4, dims);
    expect_f32(y, 16, (float[]){0, 0, 0, 0, 4, 0, 0, 9, 0, 0, 0, 0, 0, 5, 6, 0}, 0);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Normalization
 * ------------------------------------------------------------------------------------------- */

Test(norm, layernorm_stats_outputs) {
    builder b = {0};
    int64_t dims[] = {2, 4};
    Onnx__GraphProto *g =
        graph(&b, "ln",
              NODES(node(&b, "LayerNormalization", STRS("x", "s", "bias"), STRS("y", "mean", "inv"),
                         ATTRS(a_float(&b, "epsilon", 0.0f)))),
              VIS(vi(&b, "x", EMBER_FLOAT, 2, dims)),
              VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL), vi(&b, "mean", EMBER_FLOAT, -1, NULL),
                  vi(&b, "inv", EMBER_FLOAT, -1, NULL)),
              INITS(init_f32(&b, "s", 1, (int64_t[]){4}, (float[]){1, 1, 2, 2}),
                    init_f32(&b, "bias", 1, (int64_t[]){4}, (float[]){0, 0, 0, 1})));
    ember_tensor *x = tensor_f32(2, dims, (float[]){1, 2, 3, 4, 5, 5, 5, 7}), *out[3] = {0};
    ember_error err;
    cr_assert_eq(
        run_model(&b, g, 17, 1, &x, (const char **)X_NAME, 3, STRS("y", "mean", "inv"), out, &err),
        EMBER_OK, "%s", err.message);
    expect_dims(out[1], 2, (int64_t[]){2, 1});
    expect_f32(out[1], 2, (float[]){2.5f, 5.5f}, 1e-6f);
    float inv0 = 1.0f / sqrtf(1.25f), inv1 = 1.0f / sqrtf(0.75f);
    expect_f32(out[2], 2, (float[]){inv0, inv1}, 1e-5f);
    expect_f32(out[0], 8,
               (float[]){-1.5f * inv0, -0.5f * inv0, 1.0f * inv0, 3.0f * inv0 + 1, -0.5f * inv1,
                         -0.5f * inv1, -1.0f * inv1, 3.0f * inv1 + 1},
               1e-5f);
    for (int i = 0; i < 3; i++) ember_tensor_free(out[i]);
    ember_tensor_free(x);
    b_free(&b);
}

Test(norm, batchnorm_extra_outputs_need_training_mode) {
    builder b = {0};
    int64_t dims[] = {1, 2};
    Onnx__GraphProto *g =
        graph(&b, "bn",
              NODES(node(&b, "BatchNormalization", STRS("x", "s", "bias", "m", "v"),
                         STRS("y", "rm", "rv"), NO_ATTRS)),
              VIS(vi(&b, "x", EMBER_FLOAT, 2, dims)),
              VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL), vi(&b, "rm", EMBER_FLOAT, -1, NULL),
                  vi(&b, "rv", EMBER_FLOAT, -1, NULL)),
              INITS(init_f32(&b, "s", 1, (int64_t[]){2}, (float[]){1, 1}),
                    init_f32(&b, "bias", 1, (int64_t[]){2}, (float[]){0, 0}),
                    init_f32(&b, "m", 1, (int64_t[]){2}, (float[]){0, 0}),
                    init_f32(&b, "v", 1, (int64_t[]){2}, (float[]){1, 1})));
    ember_model *m = NULL;
    ember_error err = {0};
    cr_assert_eq(load_model(&b, g, 15, &m, &err), EMBER_ERR_INVALID_MODEL, "%s", err.message);
    cr_assert(strstr(err.message, "training_mode"), "%s", err.message);
    b_free(&b);
}

/* GroupNormalization: version 21 scales per channel, version 18 per group. X is (1, 4, 2) in
 * two groups: {1, 3, 5, 7} (mean 4, var 5) and {0, 0, 2, 2} (mean 1, var 1). */
Test(norm, groupnorm_per_channel_and_per_group) {
    builder b = {0};
    int64_t dims[] = {1, 4, 2};
    float xv[8] = {1, 3, 5, 7, 0, 0, 2, 2};
    float r = 1.0f / sqrtf(5.0f);
    for (int v21 = 0; v21 <= 1; v21++) {
        int64_t pd[] = {v21 ? 4 : 2};
        float scale21[] = {1, 2, 1, 1}, bias21[] = {0, 0, 0, 10};
        float scale18[] = {2, 1}, bias18[] = {0, 5};
        Onnx__GraphProto *g =
            graph(&b, "gn",
                  NODES(node(&b, "GroupNormalization", STRS("x", "s", "bias"), STRS("y"),
                             ATTRS(a_int(&b, "num_groups", 2), a_float(&b, "epsilon", 0.0f)))),
                  VIS(vi(&b, "x", EMBER_FLOAT, 3, dims)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)),
                  INITS(init_f32(&b, "s", 1, pd, v21 ? scale21 : scale18),
                        init_f32(&b, "bias", 1, pd, v21 ? bias21 : bias18)));
        ember_tensor *x = tensor_f32(3, dims, xv), *y = NULL;
        ember_error err;
        cr_assert_eq(
            run_model(&b, g, v21 ? 21 : 18, 1, &x, (const char **)X_NAME, 1, STRS("y"), &y, &err),
            EMBER_OK, "%s", err.message);
        if (v21)
            expect_f32(y, 8, (float[]){-3 * r, -r, 2 * r, 6 * r, -1, -1, 11, 11}, 1e-5f);
        else
            expect_f32(y, 8, (float[]){-6 * r, -2 * r, 2 * r, 6 * r, 4, 4, 6, 6}, 1e-5f);
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    b_free(&b);
}

/* BatchNormalization in training mode: batch statistics, running statistics with momentum. */
Test(norm, batchnorm_training_outputs) {
    builder b = {0};
    int64_t dims[] = {2, 2};
    Onnx__GraphProto *g =
        graph(&b, "bn",
              NODES(node(&b, "BatchNormalization", STRS("x", "s", "bias", "m", "v"),
                         STRS("y", "rm", "rv"),
                         ATTRS(a_int(&b, "training_mode", 1), a_float(&b, "epsilon", 0.0f),
                               a_float(&b, "momentum", 0.5f)))),
              VIS(vi(&b, "x", EMBER_FLOAT, 2, dims)),
              VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL), vi(&b, "rm", EMBER_FLOAT, -1, NULL),
                  vi(&b, "rv", EMBER_FLOAT, -1, NULL)),
              INITS(init_f32(&b, "s", 1, (int64_t[]){2}, (float[]){1, 2}),
                    init_f32(&b, "bias", 1, (int64_t[]){2}, (float[]){0, 1}),
                    init_f32(&b, "m", 1, (int64_t[]){2}, (float[]){0, 10}),
                    init_f32(&b, "v", 1, (int64_t[]){2}, (float[]){1, 3})));
    /* Channel 0: {1, 3} mean 2 var 1; channel 1: {4, 6} mean 5 var 1. */
    ember_tensor *x = tensor_f32(2, dims, (float[]){1, 4, 3, 6}), *out[3] = {0};
    ember_error err;
    cr_assert_eq(
        run_model(&b, g, 15, 1, &x, (const char **)X_NAME, 3, STRS("y", "rm", "rv"), out, &err),
        EMBER_OK, "%s", err.message);
    expect_f32(out[0], 4, (float[]){-1, -1, 1, 3}, 1e-6f);
    expect_f32(out[1], 2, (float[]){1, 7.5f}, 1e-6f);
    expect_f32(out[2], 2, (float[]){1, 2}, 1e-6f);
    for (int i = 0; i < 3; i++) ember_tensor_free(out[i]);
    ember_tensor_free(x);
    b_free(&b);
}

/* Dropout in training mode with a seed reproduces numpy's legacy RandomState stream:
 * np.random.seed(0); np.random.uniform(0, 1, 6) >= 0.5 -> T T T T F T. */
Test(norm, dropout_training_seeded_mask) {
    builder b = {0};
    int64_t dims[] = {6};
    Onnx__GraphProto *g = graph(
        &b, "drop",
        NODES(node(&b, "Dropout", STRS("x", "r", "t"), STRS("y", "mask"),
                   ATTRS(a_int(&b, "seed", 0)))),
        VIS(vi(&b, "x", EMBER_FLOAT, 1, dims), vi(&b, "r", EMBER_FLOAT, 0, NULL),
            vi(&b, "t", EMBER_BOOL, 0, NULL)),
        VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL), vi(&b, "mask", EMBER_BOOL, -1, NULL)), NO_INITS);
    float ratio = 0.5f;
    bool train = true;
    ember_tensor *in[3] = {tensor_f32(1, dims, (float[]){1, 2, 3, 4, 5, 6}),
                           tensor_of(EMBER_FLOAT, 0, NULL, &ratio),
                           tensor_of(EMBER_BOOL, 0, NULL, &train)};
    ember_tensor *out[2] = {0};
    ember_error err;
    cr_assert_eq(run_model(&b, g, 13, 3, in, STRS("x", "r", "t"), 2, STRS("y", "mask"), out, &err),
                 EMBER_OK, "%s", err.message);
    expect_f32(out[0], 6, (float[]){2, 4, 6, 8, 0, 12}, 0);
    const bool *mask = ember_tensor_const_data(out[1]);
    bool want[6] = {true, true, true, true, false, true};
    for (int i = 0; i < 6; i++) cr_assert_eq(mask[i], want[i], "mask %d", i);
    for (int i = 0; i < 3; i++) ember_tensor_free(in[i]);
    ember_tensor_free(out[0]);
    ember_tensor_free(out[1]);
    b_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Control flow. Bodies use BatchNormalization with scale a, B = c, mean 0, var 1, epsilon 0
 * as an exact "a * x + c", reading a and c from the outer graph (captures).
 * ------------------------------------------------------------------------------------------- */

static Onnx__NodeProto *affine_node(builder *b, const char *x, const char *scale, const char *bias,
                                    const char *y) {
    return node(b, "BatchNormalization", (const char *[]){x, scale, bias, "zero", "one", NULL},
                (const char *[]){y, NULL}, ATTRS(a_float(b, "epsilon", 0.0f)));
}

static Onnx__TensorProto **affine_inits(builder *b) {
    int64_t d[] = {1};
    static const char *const names[] = {"two", "three", "one", "zero", "ten"};
    static const float values[] = {2, 3, 1, 0, 10};
    Onnx__TensorProto **inits = b_alloc(b, sizeof *inits * 6);
    for (int i = 0; i < 5; i++) inits[i] = init_f32(b, names[i], 1, d, &values[i]);
    return inits;
}

Test(control, if_branches_with_captures) {
    builder b = {0};
    int64_t dims[] = {1, 1, 2};
    Onnx__GraphProto *then_g = graph(&b, "then", NODES(affine_node(&b, "x", "two", "one", "t_out")),
                                     NO_VIS, VIS(vi(&b, "t_out", EMBER_FLOAT, -1, NULL)), NO_INITS);
    Onnx__GraphProto *else_g =
        graph(&b, "else", NODES(affine_node(&b, "x", "three", "ten", "e_out")), NO_VIS,
              VIS(vi(&b, "e_out", EMBER_FLOAT, -1, NULL)), NO_INITS);
    Onnx__GraphProto *g = graph(
        &b, "main",
        NODES(node(&b, "If", STRS("c"), STRS("y"),
                   ATTRS(a_graph(&b, "then_branch", then_g), a_graph(&b, "else_branch", else_g)))),
        VIS(vi(&b, "c", EMBER_BOOL, 0, NULL), vi(&b, "x", EMBER_FLOAT, 3, dims)),
        VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)), affine_inits(&b));
    for (int c = 0; c <= 1; c++) {
        bool cond = c;
        ember_tensor *in[2] = {tensor_of(EMBER_BOOL, 0, NULL, &cond),
                               tensor_f32(3, dims, (float[]){1, 2})};
        ember_tensor *y = NULL;
        ember_error err;
        cr_assert_eq(run_model(&b, g, 15, 2, in, STRS("c", "x"), 1, STRS("y"), &y, &err), EMBER_OK,
                     "%s", err.message);
        expect_dims(y, 3, dims);
        if (cond)
            expect_f32(y, 2, (float[]){3, 5}, 0);
        else
            expect_f32(y, 2, (float[]){13, 16}, 0);
        ember_tensor_free(in[0]);
        ember_tensor_free(in[1]);
        ember_tensor_free(y);
    }
    b_free(&b);
}

/* Loop with trip count 3, cond from the outer scope, one carried value and one scan output:
 * x -> 2x + 1 each iteration. */
Test(control, loop_carried_and_scan_outputs) {
    builder b = {0};
    int64_t dims[] = {1, 1};
    Onnx__GraphProto *body =
        graph(&b, "body",
              NODES(affine_node(&b, "x_in", "two", "one", "x_out"),
                    affine_node(&b, "x_out", "one", "zero", "scan_out")),
              VIS(vi(&b, "i", EMBER_INT64, 0, NULL), vi(&b, "cond_in", EMBER_BOOL, 0, NULL),
                  vi(&b, "x_in", EMBER_FLOAT, -1, NULL)),
              VIS(vi(&b, "keep", EMBER_BOOL, 0, NULL), vi(&b, "x_out", EMBER_FLOAT, -1, NULL),
                  vi(&b, "scan_out", EMBER_FLOAT, -1, NULL)),
              NO_INITS);
    Onnx__GraphProto *g =
        graph(&b, "main",
              NODES(node(&b, "Loop", STRS("m", "", "x"), STRS("final", "stacked"),
                         ATTRS(a_graph(&b, "body", body)))),
              VIS(vi(&b, "m", EMBER_INT64, 0, NULL), vi(&b, "keep", EMBER_BOOL, 0, NULL),
                  vi(&b, "x", EMBER_FLOAT, 2, dims)),
              VIS(vi(&b, "final", EMBER_FLOAT, -1, NULL), vi(&b, "stacked", EMBER_FLOAT, -1, NULL)),
              affine_inits(&b));
    int64_t trips = 3;
    bool keep = true;
    ember_tensor *in[3] = {tensor_of(EMBER_INT64, 0, NULL, &trips),
                           tensor_of(EMBER_BOOL, 0, NULL, &keep),
                           tensor_f32(2, dims, (float[]){1})};
    ember_tensor *out[2] = {0};
    ember_error err;
    cr_assert_eq(
        run_model(&b, g, 13, 3, in, STRS("m", "keep", "x"), 2, STRS("final", "stacked"), out, &err),
        EMBER_OK, "%s", err.message);
    expect_dims(out[0], 2, dims);
    expect_f32(out[0], 1, (float[]){15}, 0);
    expect_dims(out[1], 3, (int64_t[]){3, 1, 1});
    expect_f32(out[1], 3, (float[]){3, 7, 15}, 0);
    for (int i = 0; i < 3; i++) ember_tensor_free(in[i]);
    ember_tensor_free(out[0]);
    ember_tensor_free(out[1]);

    /* Zero iterations: the carried value passes through, the scan output is empty. */
    trips = 0;
    in[0] = tensor_of(EMBER_INT64, 0, NULL, &trips);
    in[1] = tensor_of(EMBER_BOOL, 0, NULL, &keep);
    in[2] = tensor_f32(2, dims, (float[]){1});
    cr_assert_eq(
        run_model(&b, g, 13, 3, in, STRS("m", "keep", "x"), 2, STRS("final", "stacked"), out, &err),
        EMBER_OK, "%s", err.message);
    expect_f32(out[0], 1, (float[]){1}, 0);
    cr_assert_eq(ember_tensor_element_count(out[1]), 0);
    for (int i = 0; i < 3; i++) ember_tensor_free(in[i]);
    ember_tensor_free(out[0]);
    ember_tensor_free(out[1]);
    b_free(&b);
}

/* Scan over axis 2 in reverse, output stacked on the last axis: the state goes
 * s -> 2s + 1 and each step emits 3 x_t + 10 (constants captured from the outer graph). */
Test(control, scan_axes_and_directions) {
    Onnx__GraphProto *body, *g;
    builder b2 = {0};
    int64_t x3[] = {2, 1, 3};
    body =
        graph(&b2, "body",
              NODES(affine_node(&b2, "s_in", "two", "one", "s_out"),
                    affine_node(&b2, "x_t", "three", "ten", "y_t")),
              VIS(vi(&b2, "s_in", EMBER_FLOAT, -1, NULL), vi(&b2, "x_t", EMBER_FLOAT, -1, NULL)),
              VIS(vi(&b2, "s_out", EMBER_FLOAT, -1, NULL), vi(&b2, "y_t", EMBER_FLOAT, -1, NULL)),
              NO_INITS);
    g = graph(
        &b2, "main",
        NODES(node(&b2, "Scan", STRS("s", "x"), STRS("s_final", "y"),
                   ATTRS(a_graph(&b2, "body", body), a_int(&b2, "num_scan_inputs", 1),
                         a_ints(&b2, "scan_input_axes", INTS(2)),
                         a_ints(&b2, "scan_input_directions", INTS(1)),
                         a_ints(&b2, "scan_output_axes", INTS(-1))))),
        VIS(vi(&b2, "s", EMBER_FLOAT, 2, (int64_t[]){1, 1}), vi(&b2, "x", EMBER_FLOAT, 3, x3)),
        VIS(vi(&b2, "s_final", EMBER_FLOAT, -1, NULL), vi(&b2, "y", EMBER_FLOAT, -1, NULL)),
        affine_inits(&b2));
    float s0 = 0;
    ember_tensor *in[2] = {tensor_f32(2, (int64_t[]){1, 1}, &s0),
                           tensor_f32(3, x3, (float[]){1, 2, 3, 4, 5, 6})};
    ember_tensor *out[2] = {0};
    ember_error err;
    cr_assert_eq(run_model(&b2, g, 16, 2, in, STRS("s", "x"), 2, STRS("s_final", "y"), out, &err),
                 EMBER_OK, "%s", err.message);
    expect_f32(out[0], 1, (float[]){7}, 0); /* 0 -> 1 -> 3 -> 7 */
    /* Iterations t = 0, 1, 2 read x[:, :, 2 - t]; y_t = 3 x + 10, stacked on the last axis in
     * iteration order: y[:, :, t] = 3 * x[:, :, 2 - t] + 10. */
    expect_dims(out[1], 3, x3);
    expect_f32(out[1], 6, (float[]){19, 16, 13, 28, 25, 22}, 0);
    for (int i = 0; i < 2; i++) {
        ember_tensor_free(in[i]);
        ember_tensor_free(out[i]);
    }
    b_free(&b2);
}
