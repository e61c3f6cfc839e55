/* Edge cases of the reduce and gather families that the ONNX node tests do not reach: empty
 * axes, noop_with_empty_axes, keepdims=0 down to a scalar, empty reductions, NaN and ties in
 * ArgMax/ArgMin/TopK, and out-of-range indices (an error with a message, never a crash).
 * Each test builds a one-node model with protobuf-c and runs it through the public API. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "onnx.pb-c.h"

#include "one_node.h"

static const int64_t d23[] = {2, 3};
static const float x23[] = {1, -2, 3, -4, 5, -6};

/* ---- Reduce* ---- */

Test(reduce, empty_axes_input_reduces_everything) {
    const int64_t zero = 0;
    node_case c = {"ReduceSum", 13, {{0}}, 0,
                   {f32(d23, 2, x23), i64(&zero, 1, NULL)}, 2, {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&c);
    const int64_t want_dims[] = {1, 1};
    expect_shape(y, want_dims, 2);
    expect_f32(y, (const float[]){-3}, 1);
    ember_tensor_free(y);
}

Test(reduce, omitted_axes_reduce_everything_to_scalar) {
    node_case c = {"ReduceMean", 18, {A_INT("keepdims", 0)}, 1,
                   {f32(d23, 2, x23)}, 1, {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&c);
    expect_shape(y, NULL, 0);
    expect_f32(y, (const float[]){-0.5f}, 1);
    ember_tensor_free(y);
}

Test(reduce, keepdims0_attr_axes_to_scalar) {
    const int64_t axes[] = {0, -1};
    node_case c = {"ReduceMax", 13, {A_INTS("axes", axes, 2), A_INT("keepdims", 0)}, 2,
                   {f32(d23, 2, x23)}, 1, {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&c);
    expect_shape(y, NULL, 0);
    expect_f32(y, (const float[]){5}, 1);
    ember_tensor_free(y);
}

Test(reduce, noop_with_empty_axes_is_elementwise) {
    /* Reducing over no axis applies the op to each element alone (square, abs, identity). */
    node_case sq = {"ReduceSumSquare", 18, {A_INT("noop_with_empty_axes", 1)}, 1,
                    {f32(d23, 2, x23)}, 1, {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&sq);
    expect_shape(y, d23, 2);
    expect_f32(y, (const float[]){1, 4, 9, 16, 25, 36}, 6);
    ember_tensor_free(y);

    const int64_t zero = 0;
    node_case l1 = {"ReduceL1", 18, {A_INT("noop_with_empty_axes", 1)}, 1,
                    {f32(d23, 2, x23), i64(&zero, 1, NULL)}, 2, {EMBER_FLOAT}, 1, 1};
    y = run_ok(&l1);
    expect_shape(y, d23, 2);
    expect_f32(y, (const float[]){1, 2, 3, 4, 5, 6}, 6);
    ember_tensor_free(y);

    node_case sum = {"ReduceSum", 13, {A_INT("noop_with_empty_axes", 1)}, 1,
                     {f32(d23, 2, x23)}, 1, {EMBER_FLOAT}, 1, 1};
    y = run_ok(&sum);
    expect_shape(y, d23, 2);
    expect_f32(y, x23, 6);
    ember_tensor_free(y);
}

Test(reduce, empty_reductions_give_identities) {
    const int64_t d20[] = {2, 0};
    const int64_t axes[] = {1};
    struct {
        const char *op;
        float want;
    } cases[] = {{"ReduceSum", 0},          {"ReduceProd", 1},        {"ReduceMax", -INFINITY},
                 {"ReduceMin", INFINITY},   {"ReduceL2", 0},          {"ReduceLogSum", -INFINITY},
                 {"ReduceLogSumExp", -INFINITY}, {"ReduceMean", NAN}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        node_case c = {cases[k].op, 13, {A_INTS("axes", axes, 1), A_INT("keepdims", 0)}, 2,
                       {f32(d20, 2, NULL)}, 1, {EMBER_FLOAT}, 1, 1};
        if (strcmp(cases[k].op, "ReduceSum") == 0) c.opset = 11;
        ember_tensor *y = run_ok(&c);
        const int64_t two = 2;
        expect_shape(y, &two, 1);
        expect_f32(y, (const float[]){cases[k].want, cases[k].want}, 2);
        ember_tensor_free(y);
    }
}

Test(reduce, nan_propagates_through_max_and_min) {
    const int64_t d4 = 4;
    const float x[] = {1, NAN, 7, -3};
    node_case mx = {"ReduceMax", 13, {A_INT("keepdims", 0)}, 1, {f32(&d4, 1, x)}, 1,
                    {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&mx);
    cr_assert(isnan(((const float *)ember_tensor_const_data(y))[0]));
    ember_tensor_free(y);
    node_case mn = {"ReduceMin", 13, {A_INT("keepdims", 0)}, 1, {f32(&d4, 1, x)}, 1,
                    {EMBER_FLOAT}, 1, 1};
    y = run_ok(&mn);
    cr_assert(isnan(((const float *)ember_tensor_const_data(y))[0]));
    ember_tensor_free(y);
}

Test(reduce, integer_mean_truncates) {
    const int64_t d = 2;
    const int32_t x[] = {-3, -4};
    node_case c = {"ReduceMean", 13, {A_INT("keepdims", 0)}, 1,
                   {tensor(EMBER_INT32, &d, 1, x)}, 1, {EMBER_INT32}, 1, 1};
    ember_tensor *y = run_ok(&c);
    cr_assert_eq(((const int32_t *)ember_tensor_const_data(y))[0], -3);
    ember_tensor_free(y);
}

/* Float sums over long rows and columns stay accurate (16+ accumulators, banded threads). */
static void long_sum(int64_t rows, int64_t cols, int64_t axis, int threads) {
    const int64_t dims[] = {rows, cols};
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    for (int64_t i = 0; i < rows * cols; i++) x[i] = 0.1f;
    const int64_t axes[] = {axis};
    /* axis -1: every axis */
    node_case c = {"ReduceSum", 11, {A_INT("keepdims", 0), A_INTS("axes", axes, 1)},
                   axis >= 0 ? 2 : 1, {f32(dims, 2, x)}, 1, {EMBER_FLOAT}, 1, threads};
    free(x);
    ember_tensor *y = run_ok(&c);
    const float *s = ember_tensor_const_data(y);
    const int64_t n = ember_tensor_element_count(y);
    const double want = 0.1 * (double)(axis == 0 ? rows : axis == 1 ? cols : rows * cols);
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs(s[i] - want) <= 1e-4 * want, "sum[%lld] = %.7g, expected %.7g",
                  (long long)i, s[i], want);
    ember_tensor_free(y);
}

Test(reduce, long_float_sums_are_accurate) {
    long_sum(4, 1 << 20, 1, 1);
    long_sum(4, 1 << 20, 1, 2);
    long_sum(1 << 16, 8, 0, 2);
    long_sum(1 << 12, 300, 0, 2);
    long_sum(4, 100000, 0, 2);
    long_sum(1 << 20, 2, -1, 1);
    long_sum(1 << 20, 2, -1, 2);
}

Test(reduce, log_sum_exp_is_stable) {
    const int64_t d3 = 3;
    const float big[] = {1000, 1000, -INFINITY}, ninf[] = {-INFINITY, -INFINITY, -INFINITY};
    node_case c = {"ReduceLogSumExp", 13, {A_INT("keepdims", 0)}, 1, {f32(&d3, 1, big)}, 1,
                   {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&c);
    expect_f32(y, (const float[]){1000 + logf(2)}, 1);
    ember_tensor_free(y);
    c.in[0] = f32(&d3, 1, ninf);
    y = run_ok(&c);
    expect_f32(y, (const float[]){-INFINITY}, 1);
    ember_tensor_free(y);
}

Test(reduce, axis_out_of_range_fails) {
    const int64_t axes[] = {2};
    node_case c = {"ReduceL2", 13, {A_INTS("axes", axes, 1)}, 1, {f32(d23, 2, x23)}, 1,
                   {EMBER_FLOAT}, 1, 1};
    expect_fail(&c, EMBER_ERR_INVALID_MODEL, "out of range");
}

/* ---- ArgMax / ArgMin ---- */

static int64_t arg1(const char *op, int opset, const float *x, int64_t n, int last) {
    node_case c = {op, opset, {A_INT("keepdims", 0), A_INT("select_last_index", last)}, 2,
                   {f32(&n, 1, x)}, 1, {EMBER_INT64}, 1, 1};
    ember_tensor *y = run_ok(&c);
    expect_shape(y, NULL, 0);
    int64_t v = ((const int64_t *)ember_tensor_const_data(y))[0];
    ember_tensor_free(y);
    return v;
}

Test(argmax, select_last_index_with_ties) {
    const float x[] = {1, 3, 3, 2};
    cr_assert_eq(arg1("ArgMax", 13, x, 4, 0), 1);
    cr_assert_eq(arg1("ArgMax", 13, x, 4, 1), 2);
    const float y[] = {0, 5, 0};
    cr_assert_eq(arg1("ArgMin", 13, y, 3, 0), 0);
    cr_assert_eq(arg1("ArgMin", 13, y, 3, 1), 2);
    /* before opset 12 there is no select_last_index: the first index always */
    cr_assert_eq(arg1("ArgMax", 11, x, 4, 1), 1);
}

Test(argmax, long_rows_with_ties) {
    float x[1000];
    for (int i = 0; i < 1000; i++) x[i] = (float)(i % 7);
    /* max 6 first at 6, last at 993; min 0 first at 0, last at 994 */
    cr_assert_eq(arg1("ArgMax", 13, x, 1000, 0), 6);
    cr_assert_eq(arg1("ArgMax", 13, x, 1000, 1), 993);
    cr_assert_eq(arg1("ArgMin", 13, x, 1000, 0), 0);
    cr_assert_eq(arg1("ArgMin", 13, x, 1000, 1), 994);
}

/* Many rows (threads split them) and a strided axis, against a plain loop. */
Test(argmax, many_rows_and_strided_axis_match_a_loop) {
    enum { R = 2048, C = 64 };
    const int64_t dims[] = {R, C};
    float *x = malloc(sizeof(float) * R * C);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) x[r * C + c] = (float)((c * 37 + r * 11) % 50);
    for (int axis = 0; axis < 2; axis++) {
        for (int last = 0; last < 2; last++) {
            node_case nc = {"ArgMax", 13,
                            {A_INT("axis", axis), A_INT("keepdims", 0),
                             A_INT("select_last_index", last)},
                            3, {f32(dims, 2, x)}, 1, {EMBER_INT64}, 1, 2};
            ember_tensor *y = run_ok(&nc);
            const int64_t *got = ember_tensor_const_data(y);
            const int outer = axis == 1 ? R : C, n = axis == 1 ? C : R;
            for (int o = 0; o < outer; o++) {
                int best = 0;
                for (int i = 1; i < n; i++) {
                    float v = axis == 1 ? x[o * C + i] : x[i * C + o];
                    float b = axis == 1 ? x[o * C + best] : x[best * C + o];
                    if (v > b || (last && v == b)) best = i;
                }
                cr_assert_eq(got[o], best, "axis %d last %d row %d: %lld, expected %d", axis,
                             last, o, (long long)got[o], best);
            }
            ember_tensor_free(y);
        }
    }
    free(x);
}

Test(argmax, nan_wins_like_numpy) {
    const float x[] = {1, NAN, 3, NAN};
    cr_assert_eq(arg1("ArgMax", 13, x, 4, 0), 1);
    cr_assert_eq(arg1("ArgMax", 13, x, 4, 1), 3);
    cr_assert_eq(arg1("ArgMin", 13, x, 4, 0), 1);
}

Test(argmax, keepdims_default_and_inner_axis) {
    /* axis 0 of [2, 3]: columns, keepdims default 1 -> [1, 3] */
    node_case c = {"ArgMax", 13, {{0}}, 0, {f32(d23, 2, x23)}, 1, {EMBER_INT64}, 1, 1};
    ember_tensor *y = run_ok(&c);
    const int64_t want_dims[] = {1, 3};
    expect_shape(y, want_dims, 2);
    expect_i64(y, (const int64_t[]){0, 1, 0}, 3);
    ember_tensor_free(y);
}

/* ---- TopK / CumSum ---- */

Test(topk, ties_take_the_lower_index) {
    const int64_t d4 = 4, one = 1, k2[] = {2};
    const float x[] = {3, 1, 3, 2};
    ember_tensor *outs[2] = {0};
    node_case c = {"TopK", 11, {{0}}, 0, {f32(&d4, 1, x), i64(&one, 1, k2)}, 2,
                   {EMBER_FLOAT, EMBER_INT64}, 2, 1};
    run_all_ok(&c, outs);
    expect_f32(outs[0], (const float[]){3, 3}, 2);
    expect_i64(outs[1], (const int64_t[]){0, 2}, 2);
    ember_tensor_free(outs[0]);
    ember_tensor_free(outs[1]);
    node_case s = {"TopK", 11, {A_INT("largest", 0)}, 1, {f32(&d4, 1, x), i64(&one, 1, k2)}, 2,
                   {EMBER_FLOAT, EMBER_INT64}, 2, 1};
    run_all_ok(&s, outs);
    expect_f32(outs[0], (const float[]){1, 2}, 2);
    expect_i64(outs[1], (const int64_t[]){1, 3}, 2);
    ember_tensor_free(outs[0]);
    ember_tensor_free(outs[1]);
}

Test(topk, k_larger_than_axis_fails) {
    const int64_t d4 = 4, one = 1, k5[] = {5};
    const float x[] = {3, 1, 3, 2};
    node_case c = {"TopK", 11, {{0}}, 0, {f32(&d4, 1, x), i64(&one, 1, k5)}, 2,
                   {EMBER_FLOAT, EMBER_INT64}, 2, 1};
    expect_fail(&c, EMBER_ERR_INVALID_ARGUMENT, "larger than axis");
}

Test(cumsum, int32_exclusive_reverse) {
    const int64_t d4 = 4;
    const int32_t x[] = {1, 2, 3, 4};
    const int32_t axis = 0;
    node_case c = {"CumSum", 14, {A_INT("exclusive", 1), A_INT("reverse", 1)}, 2,
                   {tensor(EMBER_INT32, &d4, 1, x), tensor(EMBER_INT32, NULL, 0, &axis)}, 2,
                   {EMBER_INT32}, 1, 1};
    ember_tensor *y = run_ok(&c);
    const int32_t *v = ember_tensor_const_data(y);
    cr_assert(v[0] == 9 && v[1] == 7 && v[2] == 4 && v[3] == 0);
    ember_tensor_free(y);
}

/* ---- losses ---- */

Test(loss, nll_target_out_of_range_fails) {
    const int64_t dx[] = {2, 3}, dt = 2, t[] = {0, 3};
    const float x[] = {-1, -2, -3, -1, -2, -3};
    node_case c = {"NegativeLogLikelihoodLoss", 13, {{0}}, 0, {f32(dx, 2, x), i64(&dt, 1, t)}, 2,
                   {EMBER_FLOAT}, 1, 1};
    expect_fail(&c, EMBER_ERR_INVALID_ARGUMENT, "outside [0, 3)");
}

Test(loss, nll_ignore_index_skips_targets) {
    const int64_t dx[] = {2, 3}, dt = 2, t[] = {1, -1};
    const float x[] = {-1, -2, -3, -1, -2, -3};
    node_case c = {"NegativeLogLikelihoodLoss", 13, {A_INT("ignore_index", -1)}, 1,
                   {f32(dx, 2, x), i64(&dt, 1, t)}, 2, {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&c);
    expect_shape(y, NULL, 0);
    expect_f32(y, (const float[]){2}, 1); /* mean over the one target kept */
    ember_tensor_free(y);
}

Test(loss, sce_log_prob_output_is_log_softmax) {
    const int64_t dx[] = {1, 2}, dt = 1, t[] = {0};
    const float x[] = {0, 0};
    ember_tensor *outs[2] = {0};
    node_case c = {"SoftmaxCrossEntropyLoss", 13, {A_STR("reduction", "sum")}, 1,
                   {f32(dx, 2, x), i64(&dt, 1, t)}, 2, {EMBER_FLOAT, EMBER_FLOAT}, 2, 1};
    run_all_ok(&c, outs);
    const float l2 = logf(2);
    expect_f32(outs[0], (const float[]){l2}, 1);
    expect_f32(outs[1], (const float[]){-l2, -l2}, 2);
    ember_tensor_free(outs[0]);
    ember_tensor_free(outs[1]);
}

/* ---- gather family: indices out of range are errors ---- */

Test(gather, negative_index_and_out_of_range) {
    const int64_t one = 1, idx_ok[] = {-1}, idx_bad[] = {3};
    node_case ok = {"Gather", 13, {A_INT("axis", 1)}, 1, {f32(d23, 2, x23), i64(&one, 1, idx_ok)},
                    2, {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&ok);
    const int64_t want_dims[] = {2, 1};
    expect_shape(y, want_dims, 2);
    expect_f32(y, (const float[]){3, -6}, 2);
    ember_tensor_free(y);
    node_case bad = {"Gather", 13, {A_INT("axis", 1)}, 1,
                     {f32(d23, 2, x23), i64(&one, 1, idx_bad)}, 2, {EMBER_FLOAT}, 1, 1};
    expect_fail(&bad, EMBER_ERR_INVALID_ARGUMENT, "index 3 at position 0 is out of range");
}

Test(gather, elements_and_nd_out_of_range) {
    const int64_t di[] = {2, 1}, ge[] = {0, -4};
    node_case c = {"GatherElements", 13, {A_INT("axis", 1)}, 1,
                   {f32(d23, 2, x23), i64(di, 2, ge)}, 2, {EMBER_FLOAT}, 1, 1};
    expect_fail(&c, EMBER_ERR_INVALID_ARGUMENT, "index -4");
    const int64_t dn[] = {1, 2}, nd[] = {1, 7};
    node_case n = {"GatherND", 13, {{0}}, 0, {f32(d23, 2, x23), i64(dn, 2, nd)}, 2,
                   {EMBER_FLOAT}, 1, 1};
    expect_fail(&n, EMBER_ERR_INVALID_ARGUMENT, "index 7");
}

Test(gather, gathernd_batch_dims) {
    const int64_t di[] = {2, 1}, idx[] = {2, 0};
    node_case c = {"GatherND", 13, {A_INT("batch_dims", 1)}, 1,
                   {f32(d23, 2, x23), i64(di, 2, idx)}, 2, {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&c);
    const int64_t two = 2;
    expect_shape(y, &two, 1);
    expect_f32(y, (const float[]){3, -4}, 2);
    ember_tensor_free(y);
}

Test(scatter, elements_reductions_and_errors) {
    const int64_t di[] = {1, 2}, idx[] = {2, 2};
    const float upd[] = {10, 20};
    node_case add = {"ScatterElements", 16, {A_INT("axis", 1), A_STR("reduction", "add")}, 2,
                     {f32(d23, 2, x23), i64(di, 2, idx), f32(di, 2, upd)}, 3, {EMBER_FLOAT},
                     1, 1};
    ember_tensor *y = run_ok(&add);
    expect_f32(y, (const float[]){1, -2, 33, -4, 5, -6}, 6);
    ember_tensor_free(y);
    node_case mx = {"ScatterElements", 18, {A_INT("axis", 1), A_STR("reduction", "min")}, 2,
                    {f32(d23, 2, x23), i64(di, 2, idx), f32(di, 2, upd)}, 3, {EMBER_FLOAT}, 1,
                    1};
    y = run_ok(&mx);
    expect_f32(y, x23, 6);
    ember_tensor_free(y);
    /* max/min reductions only exist from version 18 */
    node_case old = {"ScatterElements", 16, {A_INT("axis", 1), A_STR("reduction", "max")}, 2,
                     {f32(d23, 2, x23), i64(di, 2, idx), f32(di, 2, upd)}, 3, {EMBER_FLOAT},
                     1, 1};
    expect_fail(&old, EMBER_ERR_INVALID_MODEL, "reduction 'max'");
    const int64_t bad[] = {0, 3};
    node_case oob = {"ScatterElements", 16, {A_INT("axis", 1)}, 1,
                     {f32(d23, 2, x23), i64(di, 2, bad), f32(di, 2, upd)}, 3, {EMBER_FLOAT}, 1,
                     1};
    expect_fail(&oob, EMBER_ERR_INVALID_ARGUMENT, "index 3 at position 1");
    const int64_t dn[] = {1, 1}, nd[] = {-3};
    const float row[] = {7, 8, 9};
    const int64_t dr[] = {1, 3};
    node_case snd = {"ScatterND", 16, {{0}}, 0,
                     {f32(d23, 2, x23), i64(dn, 2, nd), f32(dr, 2, row)}, 3, {EMBER_FLOAT}, 1,
                     1};
    expect_fail(&snd, EMBER_ERR_INVALID_ARGUMENT, "index -3");
}

/* ---- OneHot / NonZero / Compress / Unique / ReverseSequence ---- */

Test(onehot, out_of_range_index_is_all_off_and_depth_must_be_positive) {
    const int64_t d3 = 3, idx[] = {1, 5, -1}, one = 1;
    const float depth[] = {3}, vals[] = {0, 1};
    const int64_t d2 = 2;
    node_case c = {"OneHot", 11, {{0}}, 0,
                   {i64(&d3, 1, idx), f32(&one, 1, depth), f32(&d2, 1, vals)}, 3, {EMBER_FLOAT},
                   1, 1};
    ember_tensor *y = run_ok(&c);
    const int64_t want_dims[] = {3, 3};
    expect_shape(y, want_dims, 2);
    expect_f32(y, (const float[]){0, 1, 0, 0, 0, 0, 0, 0, 1}, 9);
    ember_tensor_free(y);
    const float zero[] = {0};
    node_case bad = {"OneHot", 11, {{0}}, 0,
                     {i64(&d3, 1, idx), f32(&one, 1, zero), f32(&d2, 1, vals)}, 3,
                     {EMBER_FLOAT}, 1, 1};
    expect_fail(&bad, EMBER_ERR_INVALID_ARGUMENT, "not positive");
}

Test(nonzero, negative_zero_is_zero_and_nan_is_not) {
    const float x[] = {-0.0f, NAN, 0, 2, 0, -1};
    node_case c = {"NonZero", 13, {{0}}, 0, {f32(d23, 2, x)}, 1, {EMBER_INT64}, 1, 1};
    ember_tensor *y = run_ok(&c);
    const int64_t want_dims[] = {2, 3};
    expect_shape(y, want_dims, 2);
    expect_i64(y, (const int64_t[]){0, 1, 1, 1, 0, 2}, 6);
    ember_tensor_free(y);
}

Test(compress, condition_shorter_ok_longer_selecting_fails) {
    const int64_t d1 = 1, d4 = 4;
    const uint8_t c1[] = {1};
    node_case ok = {"Compress", 11, {A_INT("axis", 1)}, 1,
                    {f32(d23, 2, x23), tensor(EMBER_BOOL, &d1, 1, c1)}, 2, {EMBER_FLOAT}, 1, 1};
    ember_tensor *y = run_ok(&ok);
    const int64_t want_dims[] = {2, 1};
    expect_shape(y, want_dims, 2);
    expect_f32(y, (const float[]){1, -4}, 2);
    ember_tensor_free(y);
    const uint8_t c4[] = {0, 0, 0, 1};
    node_case bad = {"Compress", 11, {A_INT("axis", 1)}, 1,
                     {f32(d23, 2, x23), tensor(EMBER_BOOL, &d4, 1, c4)}, 2, {EMBER_FLOAT}, 1,
                     1};
    expect_fail(&bad, EMBER_ERR_INVALID_ARGUMENT, "beyond the axis length");
}

Test(unique, unsorted_keeps_first_occurrence_order) {
    const int64_t d6 = 6;
    const float x[] = {3, 1, 3, 2, 1, 3};
    ember_tensor *outs[4] = {0};
    node_case c = {"Unique", 11, {A_INT("sorted", 0)}, 1, {f32(&d6, 1, x)}, 1,
                   {EMBER_FLOAT, EMBER_INT64, EMBER_INT64, EMBER_INT64}, 4, 1};
    run_all_ok(&c, outs);
    expect_f32(outs[0], (const float[]){3, 1, 2}, 3);
    expect_i64(outs[1], (const int64_t[]){0, 1, 3}, 3);
    expect_i64(outs[2], (const int64_t[]){0, 1, 0, 2, 1, 0}, 6);
    expect_i64(outs[3], (const int64_t[]){3, 2, 1}, 3);
    for (int k = 0; k < 4; k++) ember_tensor_free(outs[k]);
}

Test(unique, empty_input) {
    const int64_t d0 = 0;
    ember_tensor *outs[4] = {0};
    node_case c = {"Unique", 11, {{0}}, 0, {f32(&d0, 1, NULL)}, 1,
                   {EMBER_FLOAT, EMBER_INT64, EMBER_INT64, EMBER_INT64}, 4, 1};
    run_all_ok(&c, outs);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(ember_tensor_element_count(outs[k]), 0);
        ember_tensor_free(outs[k]);
    }
}

Test(reversesequence, length_beyond_time_fails) {
    const int64_t d2 = 2, lens[] = {1, 4};
    node_case c = {"ReverseSequence", 10, {A_INT("batch_axis", 0), A_INT("time_axis", 1)}, 2,
                   {f32(d23, 2, x23), i64(&d2, 1, lens)}, 2, {EMBER_FLOAT}, 1, 1};
    expect_fail(&c, EMBER_ERR_INVALID_ARGUMENT, "sequence_lens[1] = 4");
}
