/* Elementwise, unary and softmax kernels: cases the ONNX node tests miss (broadcast shapes,
 * NaN handling, rounding, extreme inputs, integer edge cases, legacy attributes), kernels
 * called directly with ex == NULL; plus one model run through a session with two threads, so
 * that in-place buffer reuse and chunks that start in the middle of a row are exercised. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "kernel.h"
#include "onnx.pb-c.h"

typedef struct test_node {
    em_node node;
    em_attr attrs[8];
} test_node;

static void node_init(test_node *t, const char *op, int opset, int n_in) {
    memset(t, 0, sizeof *t);
    t->node.name = (char *)"t";
    t->node.op_type = (char *)op;
    t->node.domain = (char *)"";
    t->node.opset = opset;
    t->node.n_inputs = t->node.n_explicit_inputs = n_in;
    t->node.n_outputs = 1;
    t->node.attrs = t->attrs;
}

static void attr_int(test_node *t, const char *name, int64_t v) {
    em_attr *a = &t->attrs[t->node.n_attrs++];
    a->name = (char *)name;
    a->type = EM_ATTR_INT;
    a->i = v;
}

static void attr_float(test_node *t, const char *name, float v) {
    em_attr *a = &t->attrs[t->node.n_attrs++];
    a->name = (char *)name;
    a->type = EM_ATTR_FLOAT;
    a->f = v;
}

static void attr_str(test_node *t, const char *name, const char *s) {
    em_attr *a = &t->attrs[t->node.n_attrs++];
    a->name = (char *)name;
    a->type = EM_ATTR_STRING;
    a->s = (char *)s;
    a->s_len = strlen(s);
}

static em_tensor *tensor(ember_dtype dt, int rank, const int64_t *dims, const void *data) {
    em_tensor *t = em_tensor_new(dt, dims, rank, NULL);
    cr_assert_not_null(t);
    if (data) memcpy(t->data, data, em_nbytes(t));
    return t;
}

static em_tensor *f32(int rank, const int64_t *dims, const float *v) {
    return tensor(EMBER_FLOAT, rank, dims, v);
}

/* create + infer + allocate + run + destroy, as the executor does. The output owns its data. */
static ember_status run_node(test_node *t, em_tensor **in, em_tensor *out, ember_error *err) {
    em_node *n = &t->node;
    const em_op *op = em_registry_find("", n->op_type, n->opset);
    cr_assert_not_null(op, "no kernel for %s-%d", n->op_type, n->opset);
    memset(out, 0, sizeof *out);
    out->rank = -1;
    void *state = NULL;
    ember_status st = op->create ? op->create(NULL, n, &state, err) : EMBER_OK;
    if (st != EMBER_OK) return st;
    st = op->infer(n, state, in, out, err);
    if (st == EMBER_OK) {
        cr_assert(out->rank >= 0 && em_numel(out) >= 0, "output has no shape");
        out->data = em_aligned_alloc(em_nbytes(out) ? em_nbytes(out) : 1);
        out->owns_data = true;
        st = op->run(n, state, in, out, NULL, err);
    }
    if (op->destroy) op->destroy(state);
    return st;
}

static void out_free(em_tensor *out) {
    if (out->owns_data) em_aligned_free(out->data);
    out->data = NULL;
}

static void free_all(em_tensor **t, int n) {
    for (int i = 0; i < n; i++) em_tensor_free(t[i]);
}

static void assert_dims(const em_tensor *t, int rank, const int64_t *dims) {
    cr_assert_eq(t->rank, rank, "rank %d, expected %d", t->rank, rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(t->dims[i], dims[i], "dim %d is %lld, expected %lld", i, (long long)t->dims[i],
                     (long long)dims[i]);
}

/* Same value, NaN equal to NaN, and the sign of zero checked. */
static bool same_f(double got, double want) {
    if (isnan(want)) return isnan(got);
    if (want == 0 && got == 0) return signbit(want) == signbit(got);
    return got == want;
}

static bool close_f(double got, double want, double rtol) {
    if (isnan(want)) return isnan(got);
    if (isinf(want)) return got == want;
    return fabs(got - want) <= 1e-30 + rtol * fabs(want);
}

/* Run a binary op on two float32 tensors and check every element against `want`. */
static void binary_f32(const char *op, int opset, int ra, const int64_t *da, const float *a, int rb,
                       const int64_t *db, const float *b, int ro, const int64_t *dout,
                       const float *want) {
    test_node t;
    node_init(&t, op, opset, 2);
    em_tensor *in[2] = {f32(ra, da, a), f32(rb, db, b)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out, ro, dout);
    for (int64_t i = 0; i < em_numel(&out); i++)
        cr_assert(same_f(((float *)out.data)[i], want[i]), "%s element %lld: %g, expected %g", op,
                  (long long)i, ((float *)out.data)[i], want[i]);
    out_free(&out);
    free_all(in, 2);
}

static void init(void) {
    em_registry_init();
}
TestSuite(ops_math, .init = init);

/* ---- broadcasting ---------------------------------------------------------------------- */

Test(ops_math, broadcast_shapes) {
    /* [2,3,1] + [1,1,4] -> [2,3,4]: both inputs broadcast, in different dims. */
    float a[6] = {0, 10, 20, 30, 40, 50}, b[4] = {1, 2, 3, 4}, want[24];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 4; j++) want[i * 4 + j] = a[i] + b[j];
    binary_f32("Add", 14, 3, (int64_t[]){2, 3, 1}, a, 3, (int64_t[]){1, 1, 4}, b, 3,
               (int64_t[]){2, 3, 4}, want);
    /* Rank 0 scalar minus a matrix: the scalar is input a (mode "a is one value"). */
    float s = 100, m[4] = {1, 2, 3, 4}, w2[4] = {99, 98, 97, 96};
    binary_f32("Sub", 14, 0, NULL, &s, 2, (int64_t[]){2, 2}, m, 2, (int64_t[]){2, 2}, w2);
    /* Broadcast in the middle: [2,1,3] * [4,1] -> [2,4,3]. */
    float c[6] = {1, 2, 3, 4, 5, 6}, d[4] = {1, 10, 100, 1000}, w3[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++)
            for (int k = 0; k < 3; k++) w3[(i * 4 + j) * 3 + k] = c[i * 3 + k] * d[j];
    binary_f32("Mul", 14, 3, (int64_t[]){2, 1, 3}, c, 2, (int64_t[]){4, 1}, d, 3,
               (int64_t[]){2, 4, 3}, w3);
    /* Zero-size dim broadcasts with 1 and yields an empty output. */
    binary_f32("Add", 14, 2, (int64_t[]){0, 3}, NULL, 2, (int64_t[]){1, 3}, b, 2, (int64_t[]){0, 3},
               NULL);
}

Test(ops_math, comparisons_broadcast_both_ways) {
    /* Greater / GreaterOrEqual run Less / LessOrEqual with swapped inputs: check both sides. */
    float a[2] = {1, 3}, b[3] = {0, 1, 2};
    const uint8_t gt[6] = {1, 0, 0, 1, 1, 1}, ge[6] = {1, 1, 0, 1, 1, 1},
                  lt[6] = {0, 0, 1, 0, 0, 0};
    const char *ops[3] = {"Greater", "GreaterOrEqual", "Less"};
    const uint8_t *want[3] = {gt, ge, lt};
    for (int k = 0; k < 3; k++) {
        test_node t;
        node_init(&t, ops[k], 16, 2);
        em_tensor *in[2] = {f32(2, (int64_t[]){2, 1}, a), f32(1, (int64_t[]){3}, b)};
        em_tensor out;
        ember_error err;
        cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
        assert_dims(&out, 2, (int64_t[]){2, 3});
        cr_assert_eq(out.dtype, EMBER_BOOL);
        cr_assert_arr_eq(out.data, want[k], 6, "%s", ops[k]);
        out_free(&out);
        free_all(in, 2);
    }
}

Test(ops_math, broadcast_incompatible_and_type_mismatch) {
    test_node t;
    node_init(&t, "Add", 14, 2);
    em_tensor *in[2] = {f32(2, (int64_t[]){2, 3}, NULL), f32(1, (int64_t[]){2}, NULL)};
    em_tensor out;
    ember_error err = {0};
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_ERR_SHAPE);
    cr_assert(strstr(err.message, "Add") && strstr(err.message, "broadcast"), "%s", err.message);
    em_tensor_free(in[1]);
    in[1] = tensor(EMBER_INT64, 1, (int64_t[]){3}, NULL);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "int64") && strstr(err.message, "float32"), "%s", err.message);
    free_all(in, 2);
    /* PRelu's slope broadcasts one way only: it may not grow X. */
    node_init(&t, "PRelu", 16, 2);
    em_tensor *p[2] = {f32(1, (int64_t[]){3}, NULL), f32(2, (int64_t[]){2, 3}, NULL)};
    cr_assert_eq(run_node(&t, p, &out, &err), EMBER_ERR_SHAPE, "%s", err.message);
    free_all(p, 2);
}

Test(ops_math, legacy_broadcast_attribute) {
    /* Opset 6: B of shape [3] broadcast onto A [2,3,2] at axis 1. */
    float a[12] = {0}, b[3] = {1, 2, 3}, want[12];
    for (int i = 0; i < 12; i++) want[i] = b[(i / 2) % 3];
    test_node t;
    node_init(&t, "Add", 6, 2);
    attr_int(&t, "broadcast", 1);
    attr_int(&t, "axis", 1);
    em_tensor *in[2] = {f32(3, (int64_t[]){2, 3, 2}, a), f32(1, (int64_t[]){3}, b)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    for (int i = 0; i < 12; i++) cr_assert_eq(((float *)out.data)[i], want[i]);
    out_free(&out);
    /* Without broadcast=1 the shapes must match. */
    node_init(&t, "Add", 6, 2);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_ERR_SHAPE);
    free_all(in, 2);
}

/* ---- Min / Max / variadic --------------------------------------------------------------- */

Test(ops_math, min_max_propagate_nan) {
    float a[4] = {NAN, 1, 2, NAN}, b[4] = {0, NAN, 1, NAN};
    float wmax[4] = {NAN, NAN, 2, NAN}, wmin[4] = {NAN, NAN, 1, NAN};
    int64_t d[1] = {4};
    binary_f32("Max", 13, 1, d, a, 1, d, b, 1, d, wmax);
    binary_f32("Min", 13, 1, d, a, 1, d, b, 1, d, wmin);
    /* NaN as the broadcast scalar, on either side. */
    float nan = NAN, all_nan[4] = {NAN, NAN, NAN, NAN};
    binary_f32("Max", 13, 1, d, b, 0, NULL, &nan, 1, d, all_nan);
    binary_f32("Min", 13, 0, NULL, &nan, 1, d, b, 1, d, all_nan);
    /* float64 too. */
    test_node t;
    node_init(&t, "Max", 13, 2);
    double x[2] = {NAN, 1}, y[2] = {1, NAN};
    em_tensor *in[2] = {tensor(EMBER_DOUBLE, 1, (int64_t[]){2}, x),
                        tensor(EMBER_DOUBLE, 1, (int64_t[]){2}, y)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    cr_assert(isnan(((double *)out.data)[0]) && isnan(((double *)out.data)[1]));
    out_free(&out);
    free_all(in, 2);
}

Test(ops_math, variadic_broadcast_and_mean) {
    /* Max of [3], [2,1] and a scalar -> [2,3]; Mean of the same. */
    float a[3] = {1, 5, 3}, b[2] = {4, 0}, c = 2;
    em_tensor *in[3] = {f32(1, (int64_t[]){3}, a), f32(2, (int64_t[]){2, 1}, b), f32(0, NULL, &c)};
    test_node t;
    node_init(&t, "Max", 13, 3);
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out, 2, (int64_t[]){2, 3});
    float wmax[6] = {4, 5, 4, 2, 5, 3};
    for (int i = 0; i < 6; i++) cr_assert_eq(((float *)out.data)[i], wmax[i]);
    out_free(&out);
    node_init(&t, "Mean", 13, 3);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            cr_assert_float_eq(((float *)out.data)[i * 3 + j], (a[j] + b[i] + c) / 3.0f, 1e-6);
    out_free(&out);
    /* One input: a copy. */
    node_init(&t, "Sum", 13, 1);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    for (int j = 0; j < 3; j++) cr_assert_eq(((float *)out.data)[j], a[j]);
    out_free(&out);
    free_all(in, 3);
}

Test(ops_math, float16_max) {
    uint16_t a[3] = {em_f32_to_f16(1.5f), em_f32_to_f16(-2.0f), em_f32_to_f16(NAN)};
    uint16_t b[3] = {em_f32_to_f16(1.0f), em_f32_to_f16(65504.0f), em_f32_to_f16(0.0f)};
    em_tensor *in[2] = {tensor(EMBER_FLOAT16, 1, (int64_t[]){3}, a),
                        tensor(EMBER_FLOAT16, 1, (int64_t[]){3}, b)};
    test_node t;
    node_init(&t, "Max", 13, 2);
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(out.dtype, EMBER_FLOAT16);
    const uint16_t *o = out.data;
    cr_assert_eq(em_f16_to_f32(o[0]), 1.5f);
    cr_assert_eq(em_f16_to_f32(o[1]), 65504.0f);
    cr_assert(isnan(em_f16_to_f32(o[2])));
    out_free(&out);
    free_all(in, 2);
}

/* ---- integer semantics ------------------------------------------------------------------ */

static void binary_i32(const char *op, int opset, const char *attr, int64_t attr_v,
                       const int32_t *a, const int32_t *b, const int32_t *want, int n) {
    test_node t;
    node_init(&t, op, opset, 2);
    if (attr) attr_int(&t, attr, attr_v);
    int64_t d[1] = {n};
    em_tensor *in[2] = {tensor(EMBER_INT32, 1, d, a), tensor(EMBER_INT32, 1, d, b)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    for (int i = 0; i < n; i++)
        cr_assert_eq(((int32_t *)out.data)[i], want[i], "%s %d: %d, expected %d", op, i,
                     ((int32_t *)out.data)[i], want[i]);
    out_free(&out);
    free_all(in, 2);
}

Test(ops_math, integer_div_mod_edge_cases) {
    int32_t a[6] = {7, -7, 7, -7, INT32_MIN, 5}, b[6] = {2, 2, -2, -2, -1, 0};
    /* Div truncates toward zero; INT_MIN / -1 wraps; division by zero gives 0 (no trap). */
    binary_i32("Div", 14, NULL, 0, a, b, (int32_t[]){3, -3, -3, 3, INT32_MIN, 0}, 6);
    /* Mod fmod=0: sign of the divisor (Python). */
    binary_i32("Mod", 13, NULL, 0, a, b, (int32_t[]){1, 1, -1, -1, 0, 0}, 6);
    /* Mod fmod=1: sign of the dividend (C). */
    binary_i32("Mod", 13, "fmod", 1, a, b, (int32_t[]){1, -1, 1, -1, 0, 0}, 6);
    /* Add and Mul wrap. */
    binary_i32("Add", 14, NULL, 0, (int32_t[]){INT32_MAX}, (int32_t[]){1}, (int32_t[]){INT32_MIN},
               1);
    binary_i32("Mul", 14, NULL, 0, (int32_t[]){65536}, (int32_t[]){65536}, (int32_t[]){0}, 1);
}

Test(ops_math, bitshift_and_bitwise) {
    uint8_t a[4] = {1, 0x80, 0xFF, 3}, b[4] = {7, 1, 8, 200};
    test_node t;
    node_init(&t, "BitShift", 11, 2);
    attr_str(&t, "direction", "LEFT");
    em_tensor *in[2] = {tensor(EMBER_UINT8, 1, (int64_t[]){4}, a),
                        tensor(EMBER_UINT8, 1, (int64_t[]){4}, b)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    const uint8_t wl[4] = {0x80, 0, 0, 0}; /* shifts by the width or more give 0 */
    cr_assert_arr_eq(out.data, wl, 4);
    out_free(&out);
    node_init(&t, "BitShift", 11, 2);
    attr_str(&t, "direction", "UP");
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_ERR_INVALID_MODEL);
    node_init(&t, "BitwiseXor", 18, 2);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    const uint8_t wx[4] = {6, 0x81, 0xF7, 203};
    cr_assert_arr_eq(out.data, wx, 4);
    out_free(&out);
    node_init(&t, "BitwiseNot", 18, 1);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    const uint8_t wn[4] = {0xFE, 0x7F, 0, 0xFC};
    cr_assert_arr_eq(out.data, wn, 4);
    out_free(&out);
    free_all(in, 2);
}

/* ---- Pow ------------------------------------------------------------------------------- */

Test(ops_math, pow_fast_paths_and_mixed_types) {
    float x[5] = {-3, -0.0f, 2, -INFINITY, 1.5f};
    int64_t d[1] = {5};
    float two = 2, half = 0.5f, m1 = -1;
    float w2[5] = {9, 0, 4, INFINITY, 2.25f};
    binary_f32("Pow", 15, 1, d, x, 0, NULL, &two, 1, d, w2);
    float wh[5] = {NAN, 0.0f, sqrtf(2), INFINITY, sqrtf(1.5f)}; /* pow(-0, .5) is +0 */
    binary_f32("Pow", 15, 1, d, x, 0, NULL, &half, 1, d, wh);
    float wm1[5] = {-1.0f / 3, -INFINITY, 0.5f, -0.0f, 1 / 1.5f};
    binary_f32("Pow", 15, 1, d, x, 0, NULL, &m1, 1, d, wm1);
    /* int32 base, int64 exponents including negative ones. */
    test_node t;
    node_init(&t, "Pow", 15, 2);
    int32_t base[5] = {2, -3, 1, -1, 2};
    int64_t ex[5] = {10, 3, -5, -3, -1};
    em_tensor *in[2] = {tensor(EMBER_INT32, 1, d, base), tensor(EMBER_INT64, 1, d, ex)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(out.dtype, EMBER_INT32);
    const int32_t wi[5] = {1024, -27, 1, -1, 0};
    for (int i = 0; i < 5; i++) cr_assert_eq(((int32_t *)out.data)[i], wi[i]);
    out_free(&out);
    free_all(in, 2);
    /* A bool exponent is refused with a message naming the input. */
    node_init(&t, "Pow", 15, 2);
    em_tensor *bad[2] = {f32(1, d, x), tensor(EMBER_BOOL, 1, d, NULL)};
    cr_assert_eq(run_node(&t, bad, &out, &err), EMBER_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "input 1"), "%s", err.message);
    free_all(bad, 2);
}

/* ---- Where ------------------------------------------------------------------------------ */

Test(ops_math, where_broadcasts_three_ways) {
    uint8_t c[3] = {1, 0, 1};
    int64_t x[2] = {10, 20}, y = -1;
    em_tensor *in[3] = {tensor(EMBER_BOOL, 2, (int64_t[]){1, 3}, c),
                        tensor(EMBER_INT64, 2, (int64_t[]){2, 1}, x),
                        tensor(EMBER_INT64, 0, NULL, &y)};
    test_node t;
    node_init(&t, "Where", 16, 3);
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out, 2, (int64_t[]){2, 3});
    const int64_t want[6] = {10, -1, 10, 20, -1, 20};
    for (int i = 0; i < 6; i++) cr_assert_eq(((int64_t *)out.data)[i], want[i]);
    out_free(&out);
    free_all(in, 3);
}

/* ---- unary ------------------------------------------------------------------------------ */

static void unary_f32(const char *op, int opset, test_node *t, const float *x, const float *want,
                      int n, double rtol) {
    test_node local;
    if (!t) {
        node_init(&local, op, opset, 1);
        t = &local;
    }
    int64_t d[1] = {n};
    em_tensor *in[1] = {f32(1, d, x)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(t, in, &out, &err), EMBER_OK, "%s", err.message);
    for (int i = 0; i < n; i++) {
        float got = ((float *)out.data)[i];
        bool ok = rtol == 0 ? same_f(got, want[i]) : close_f(got, want[i], rtol);
        cr_assert(ok, "%s(%g) = %.9g, expected %.9g", op, x[i], got, want[i]);
    }
    out_free(&out);
    free_all(in, 1);
}

Test(ops_math, round_half_to_even) {
    float x[14] = {-2.5f,      -1.5f,       -0.5f,      0.5f,  1.5f, 2.5f,     3.5f,
                   2.4999998f, 0.49999997f, 8388609.0f, -0.0f, NAN,  INFINITY, -3.7f};
    float w[14] = {-2, -2, -0.0f, 0, 2, 2, 4, 2, 0, 8388609.0f, -0.0f, NAN, INFINITY, -4};
    unary_f32("Round", 11, NULL, x, w, 14, 0);
}

Test(ops_math, sigmoid_extremes) {
    float x[9] = {-100, 100, -88.8f, 88.8f, 0, -INFINITY, INFINITY, NAN, -20};
    float w[9];
    for (int i = 0; i < 9; i++) w[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
    w[7] = NAN;
    /* Relative precision also for the tiny values (sigmoid(-100) is about 3.7e-44). */
    unary_f32("Sigmoid", 13, NULL, x, w, 9, 1e-5);
    cr_assert(w[0] > 0);
}

Test(ops_math, exp_tanh_accuracy_sweep) {
    enum { N = 4001 };
    static float x[N], we[N], wt[N], ws[N];
    for (int i = 0; i < N; i++) {
        x[i] = -105.0f + 0.0485f * (float)i; /* -105 .. 89 */
        we[i] = (float)exp((double)x[i]);
        wt[i] = (float)tanh((double)x[i] / 20);
        ws[i] = (float)(1.0 / (1.0 + exp(-(double)x[i])));
    }
    unary_f32("Exp", 13, NULL, x, we, N, 3e-7); /* ~2 ulp, subnormal results included */
    unary_f32("Sigmoid", 13, NULL, x, ws, N, 5e-7);
    for (int i = 0; i < N; i++) x[i] /= 20;
    unary_f32("Tanh", 13, NULL, x, wt, N, 3e-7);
    float small[4] = {1e-8f, -1e-5f, 0.3f, -0.0f};
    float wsmall[4] = {1e-8f, (float)tanh(-1e-5), (float)tanh(0.3), -0.0f};
    unary_f32("Tanh", 13, NULL, small, wsmall, 4, 3e-7);
}

Test(ops_math, activations_against_definitions) {
    float x[7] = {-3, -0.5f, -1e-6f, 0, 1e-6f, 0.7f, 4};
    float w[7];
    test_node t;
    /* Elu keeps relative precision near 0 (exp(x) - 1 would cancel). */
    for (int i = 0; i < 7; i++) w[i] = x[i] < 0 ? (float)(0.5 * expm1((double)x[i])) : x[i];
    node_init(&t, "Elu", 6, 1);
    attr_float(&t, "alpha", 0.5f);
    unary_f32("Elu", 6, &t, x, w, 7, 1e-6);
    for (int i = 0; i < 7; i++) w[i] = (float)(0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))));
    unary_f32("Gelu", 20, NULL, x, w, 7, 1e-6);
    for (int i = 0; i < 7; i++) {
        double v = x[i];
        w[i] = (float)(0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
    }
    node_init(&t, "Gelu", 20, 1);
    attr_str(&t, "approximate", "tanh");
    unary_f32("Gelu", 20, &t, x, w, 7, 1e-6);
    for (int i = 0; i < 7; i++) w[i] = (float)(x[i] * tanh(log1p(exp((double)x[i]))));
    unary_f32("Mish", 18, NULL, x, w, 7, 1e-6);
    for (int i = 0; i < 7; i++) w[i] = (float)log1p(exp((double)x[i]));
    unary_f32("Softplus", 1, NULL, x, w, 7, 1e-6);
    float big[3] = {100, -100, 1000}, wbig[3] = {100, 3.7200760e-44f, 1000};
    unary_f32("Softplus", 1, NULL, big, wbig, 3, 1e-5);
    node_init(&t, "Gelu", 20, 1);
    attr_str(&t, "approximate", "erf");
    em_tensor *in[1] = {f32(1, (int64_t[]){1}, x)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_ERR_INVALID_MODEL);
    free_all(in, 1);
}

Test(ops_math, relu_keeps_nan_and_integer_abs) {
    float x[4] = {NAN, -1, -0.0f, 2}, w[4] = {NAN, 0, -0.0f, 2};
    unary_f32("Relu", 14, NULL, x, w, 4, 0);
    int8_t v[4] = {-128, -5, 0, 127};
    em_tensor *in[1] = {tensor(EMBER_INT8, 1, (int64_t[]){4}, v)};
    test_node t;
    node_init(&t, "Abs", 13, 1);
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    const int8_t wa[4] = {-128, 5, 0, 127}; /* abs(-128) wraps, like two's complement */
    cr_assert_arr_eq(out.data, wa, 4);
    out_free(&out);
    node_init(&t, "Sign", 13, 1);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    const int8_t ws[4] = {-1, -1, 0, 1};
    cr_assert_arr_eq(out.data, ws, 4);
    out_free(&out);
    free_all(in, 1);
}

Test(ops_math, isinf_flags_and_isnan) {
    float x[4] = {INFINITY, -INFINITY, NAN, 1};
    em_tensor *in[1] = {f32(1, (int64_t[]){4}, x)};
    test_node t;
    node_init(&t, "IsInf", 10, 1);
    attr_int(&t, "detect_positive", 0);
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(out.dtype, EMBER_BOOL);
    cr_assert_arr_eq(out.data, ((uint8_t[]){0, 1, 0, 0}), 4);
    out_free(&out);
    node_init(&t, "IsNaN", 13, 1);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    cr_assert_arr_eq(out.data, ((uint8_t[]){0, 0, 1, 0}), 4);
    out_free(&out);
    free_all(in, 1);
}

Test(ops_math, clip_versions) {
    float x[5] = {-5, -1, 0.5f, 3, NAN};
    /* Opset 6: attributes. */
    test_node t;
    node_init(&t, "Clip", 6, 1);
    attr_float(&t, "min", -2);
    attr_float(&t, "max", 2);
    unary_f32("Clip", 6, &t, x, (float[]){-2, -1, 0.5f, 2, NAN}, 5, 0);
    /* Opset 11: min given, max omitted. */
    node_init(&t, "Clip", 11, 3);
    float lo = 0;
    em_tensor *in[3] = {f32(1, (int64_t[]){5}, x), f32(0, NULL, &lo), NULL};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    const float w[5] = {0, 0, 0.5f, 3, NAN};
    for (int i = 0; i < 5; i++) cr_assert(same_f(((float *)out.data)[i], w[i]));
    out_free(&out);
    /* min > max: everything becomes max. */
    float hi = -1;
    in[2] = f32(0, NULL, &hi);
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_OK, "%s", err.message);
    for (int i = 0; i < 4; i++) cr_assert_eq(((float *)out.data)[i], -1.0f);
    out_free(&out);
    free_all(in, 3);
    /* int8 with only max. */
    int8_t v[3] = {-128, 5, 127}, mx = 6;
    em_tensor *iv[3] = {tensor(EMBER_INT8, 1, (int64_t[]){3}, v), NULL,
                        tensor(EMBER_INT8, 0, NULL, &mx)};
    node_init(&t, "Clip", 13, 3);
    cr_assert_eq(run_node(&t, iv, &out, &err), EMBER_OK, "%s", err.message);
    cr_assert_arr_eq(out.data, ((int8_t[]){-128, 5, 6}), 3);
    out_free(&out);
    free_all(iv, 3);
}

/* ---- softmax family --------------------------------------------------------------------- */

static em_tensor *run_softmax(const char *op, int opset, int64_t axis, int rank,
                              const int64_t *dims, const float *x) {
    test_node t;
    node_init(&t, op, opset, 1);
    if (axis != 99) attr_int(&t, "axis", axis);
    em_tensor *in[1] = {f32(rank, dims, x)};
    em_tensor *out = calloc(1, sizeof *out);
    ember_error err;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    free_all(in, 1);
    return out;
}

static void free_out(em_tensor *out) {
    out_free(out);
    free(out);
}

Test(ops_math, softmax_masked_and_all_masked_rows) {
    float x[8] = {-INFINITY, 0, -INFINITY, 0, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    em_tensor *o = run_softmax("Softmax", 13, -1, 2, (int64_t[]){2, 4}, x);
    const float *y = o->data;
    cr_assert(y[0] == 0 && y[2] == 0 && y[1] == 0.5f && y[3] == 0.5f);
    /* A row with nothing but -inf: NaN, as the reference (exp(-inf + inf)). */
    for (int i = 4; i < 8; i++) cr_assert(isnan(y[i]));
    free_out(o);
    o = run_softmax("LogSoftmax", 13, -1, 2, (int64_t[]){2, 4}, x);
    y = o->data;
    cr_assert(y[0] == -INFINITY && close_f(y[1], -log(2.0), 1e-6));
    free_out(o);
}

Test(ops_math, softmax_large_values_and_long_rows) {
    enum { N = 1000 };
    static float x[N];
    for (int i = 0; i < N; i++) x[i] = 1e4f + (float)(i % 7);
    em_tensor *o = run_softmax("Softmax", 13, -1, 1, (int64_t[]){N}, x);
    double sum = 0, z = 0;
    for (int k = 0; k < 7; k++) z += exp(k - 6.0) * (k < N % 7 ? N / 7 + 1 : N / 7);
    for (int i = 0; i < N; i++) {
        float got = ((float *)o->data)[i];
        sum += got;
        cr_assert(close_f(got, exp((i % 7) - 6.0) / z, 1e-5), "%d: %g", i, got);
    }
    cr_assert(fabs(sum - 1) < 1e-5);
    free_out(o);
    o = run_softmax("LogSoftmax", 13, -1, 1, (int64_t[]){N}, x);
    for (int i = 0; i < N; i++)
        cr_assert(close_f(((float *)o->data)[i], (i % 7) - 6.0 - log(z), 1e-5));
    free_out(o);
}

Test(ops_math, softmax_opset11_flattens_opset13_does_not) {
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)((i * 7) % 5) * 0.5f;
    int64_t dims[3] = {2, 3, 4};
    /* Opset 11, axis 1: each of the 2 blocks of 12 sums to 1. */
    em_tensor *o = run_softmax("Softmax", 11, 1, 3, dims, x);
    for (int b = 0; b < 2; b++) {
        double s = 0;
        for (int i = 0; i < 12; i++) s += ((float *)o->data)[b * 12 + i];
        cr_assert(fabs(s - 1) < 1e-6);
    }
    free_out(o);
    /* Opset 13, axis 1: each of the 8 columns (over 3 elements) sums to 1; compare with the
     * definition. */
    o = run_softmax("Softmax", 13, 1, 3, dims, x);
    for (int b = 0; b < 2; b++)
        for (int c = 0; c < 4; c++) {
            double m = -INFINITY, z = 0;
            for (int k = 0; k < 3; k++) m = fmax(m, x[b * 12 + k * 4 + c]);
            for (int k = 0; k < 3; k++) z += exp(x[b * 12 + k * 4 + c] - m);
            for (int k = 0; k < 3; k++) {
                int i = b * 12 + k * 4 + c;
                cr_assert(close_f(((float *)o->data)[i], exp(x[i] - m) / z, 1e-6));
            }
        }
    free_out(o);
    /* Default axis: 1 for opset 11 (whole rows of 12), -1 for opset 13. */
    em_tensor *a = run_softmax("Softmax", 11, 99, 3, dims, x);
    em_tensor *b = run_softmax("Softmax", 11, 1, 3, dims, x);
    cr_assert_arr_eq(a->data, b->data, 24 * sizeof(float));
    free_out(a);
    free_out(b);
    /* Axis out of range is a model error. */
    test_node t;
    node_init(&t, "Softmax", 13, 1);
    attr_int(&t, "axis", 3);
    em_tensor *in[1] = {f32(3, dims, x)};
    em_tensor out;
    ember_error err;
    cr_assert_eq(run_node(&t, in, &out, &err), EMBER_ERR_INVALID_MODEL);
    free_all(in, 1);
}

Test(ops_math, hardmax_first_maximum_and_nan) {
    float x[8] = {1, 3, 3, 2, 1, NAN, 5, NAN};
    em_tensor *o = run_softmax("Hardmax", 13, -1, 2, (int64_t[]){2, 4}, x);
    const float want[8] = {0, 1, 0, 0, 0, 1, 0, 0};
    cr_assert_arr_eq(o->data, want, sizeof want);
    free_out(o);
    /* Same along a non-last axis (column path). */
    float xt[8] = {1, 1, 3, NAN, 3, 5, 2, NAN};
    o = run_softmax("Hardmax", 13, 0, 2, (int64_t[]){4, 2}, xt);
    const float wt[8] = {0, 0, 1, 1, 0, 0, 0, 0};
    cr_assert_arr_eq(o->data, wt, sizeof wt);
    free_out(o);
}

/* ---- a model through a session: in-place reuse and multi-threaded chunks ---------------- */

typedef struct mb {
    Onnx__NodeProto nodes[16], *node_ptrs[16];
    char *ios[16][6];
    Onnx__AttributeProto attrs[16], *attr_ptrs[16];
    int n_nodes;
    Onnx__ValueInfoProto vi[8], *vi_ptrs[8];
    Onnx__TypeProto types[8];
    Onnx__TypeProto__Tensor tt[8];
    Onnx__TensorShapeProto shapes[8];
    Onnx__TensorShapeProto__Dimension dims[8][8], *dim_ptrs[8][8];
    int n_vi;
} mb;

static void mb_node(mb *m, const char *op, const char *a, const char *b, const char *out,
                    int64_t axis) {
    Onnx__NodeProto *n = &m->nodes[m->n_nodes];
    onnx__node_proto__init(n);
    char **io = m->ios[m->n_nodes];
    io[0] = (char *)a;
    io[1] = (char *)b;
    io[2] = (char *)out;
    n->n_input = b ? 2 : 1;
    n->input = io;
    n->n_output = 1;
    n->output = io + 2;
    n->op_type = (char *)op;
    if (axis != 99) {
        Onnx__AttributeProto *at = &m->attrs[m->n_nodes];
        onnx__attribute_proto__init(at);
        at->name = (char *)"axis";
        at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
        at->has_i = 1;
        at->i = axis;
        m->attr_ptrs[m->n_nodes] = at;
        n->n_attribute = 1;
        n->attribute = &m->attr_ptrs[m->n_nodes];
    }
    m->node_ptrs[m->n_nodes] = n;
    m->n_nodes++;
}

static Onnx__ValueInfoProto *mb_value(mb *m, const char *name, int rank, const int64_t *dims) {
    int k = m->n_vi++;
    onnx__value_info_proto__init(&m->vi[k]);
    onnx__type_proto__init(&m->types[k]);
    onnx__type_proto__tensor__init(&m->tt[k]);
    onnx__tensor_shape_proto__init(&m->shapes[k]);
    for (int d = 0; d < rank; d++) {
        onnx__tensor_shape_proto__dimension__init(&m->dims[k][d]);
        m->dims[k][d].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        m->dims[k][d].dim_value = dims[d];
        m->dim_ptrs[k][d] = &m->dims[k][d];
    }
    m->shapes[k].n_dim = (size_t)rank;
    m->shapes[k].dim = m->dim_ptrs[k];
    m->tt[k].has_elem_type = 1;
    m->tt[k].elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    m->tt[k].shape = &m->shapes[k];
    m->types[k].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    m->types[k].tensor_type = &m->tt[k];
    m->vi[k].name = (char *)name;
    m->vi[k].type = &m->types[k];
    m->vi_ptrs[k] = &m->vi[k];
    return &m->vi[k];
}

#define B 2
#define C 3
#define H 37
#define W 1001

static double chain_reference(const float *a, const float *bias, const float *row, int64_t i,
                              const float *t5) {
    (void)a, (void)bias, (void)row;
    double v5 = t5[i];
    double v6 = row[i % W] - v5;
    return v6 > v5 ? v6 : v5;
}

Test(ops_math, session_chain_inplace_and_threads) {
    /* t1 = A + bias[1,C,1,1]; t2 = Relu(t1); t3 = t2 * row[W]; t4 = Sigmoid(t3);
     * t5 = Softmax(t4, axis=1) (a non-last axis); t6 = row - t5; y = Max(t6, t5).
     * Every intermediate dies at its consumer, so the executor runs them in place. */
    mb m;
    memset(&m, 0, sizeof m);
    mb_node(&m, "Add", "A", "bias", "t1", 99);
    mb_node(&m, "Relu", "t1", NULL, "t2", 99);
    mb_node(&m, "Mul", "t2", "row", "t3", 99);
    mb_node(&m, "Sigmoid", "t3", NULL, "t4", 99);
    mb_node(&m, "Softmax", "t4", NULL, "t5", 1);
    mb_node(&m, "Sub", "row", "t5", "t6", 99);
    mb_node(&m, "Max", "t6", "t5", "y", 99);
    int64_t da[4] = {B, C, H, W}, db[4] = {1, C, 1, 1}, dr[1] = {W};
    Onnx__ValueInfoProto *inputs[3] = {mb_value(&m, "A", 4, da), mb_value(&m, "bias", 4, db),
                                       mb_value(&m, "row", 1, dr)};
    Onnx__ValueInfoProto *outputs[1] = {mb_value(&m, "y", 4, da)};
    Onnx__GraphProto g;
    onnx__graph_proto__init(&g);
    g.name = (char *)"chain";
    g.n_node = (size_t)m.n_nodes;
    g.node = m.node_ptrs;
    g.n_input = 3;
    g.input = inputs;
    g.n_output = 1;
    g.output = outputs;
    Onnx__OperatorSetIdProto ops;
    onnx__operator_set_id_proto__init(&ops);
    ops.domain = (char *)"";
    ops.has_version = 1;
    ops.version = 17;
    Onnx__OperatorSetIdProto *ops_ptr = &ops;
    Onnx__ModelProto model;
    onnx__model_proto__init(&model);
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.n_opset_import = 1;
    model.opset_import = &ops_ptr;
    model.graph = &g;
    size_t size = onnx__model_proto__get_packed_size(&model);
    uint8_t *bytes = malloc(size);
    onnx__model_proto__pack(&model, bytes);

    ember_model *em;
    ember_error err;
    cr_assert_eq(ember_model_load_memory(bytes, size, NULL, &em, &err), EMBER_OK, "%s",
                 err.message);
    free(bytes);
    ember_tensor *ta, *tb, *tr;
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, da, 4, &ta, &err), EMBER_OK);
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, db, 4, &tb, &err), EMBER_OK);
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, dr, 1, &tr, &err), EMBER_OK);
    float *a = ember_tensor_data(ta), *bias = ember_tensor_data(tb), *row = ember_tensor_data(tr);
    int64_t n = (int64_t)B * C * H * W;
    for (int64_t i = 0; i < n; i++) a[i] = (float)((i * 7919) % 2001 - 1000) / 250.0f;
    for (int c = 0; c < C; c++) bias[c] = (float)c - 1.0f;
    for (int w = 0; w < W; w++) row[w] = (float)(w % 13 - 6) * 0.75f;

    /* Reference, in double, step by step. */
    float *t4 = malloc(sizeof(float) * (size_t)n), *t5 = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        double v = a[i] + bias[(i / (H * W)) % C];
        v = v < 0 ? 0 : v;
        v *= row[i % W];
        t4[i] = (float)(1.0 / (1.0 + exp(-v)));
    }
    for (int b = 0; b < B; b++)
        for (int64_t hw = 0; hw < H * W; hw++) {
            double mx = -INFINITY, z = 0;
            for (int c = 0; c < C; c++) mx = fmax(mx, t4[(b * C + c) * H * W + hw]);
            for (int c = 0; c < C; c++) z += exp(t4[(b * C + c) * H * W + hw] - mx);
            for (int c = 0; c < C; c++) {
                int64_t i = (b * C + c) * H * W + hw;
                t5[i] = (float)(exp(t4[i] - mx) / z);
            }
        }

    const char *in_names[3] = {"A", "bias", "row"}, *out_names[1] = {"y"};
    const ember_tensor *in_t[3] = {ta, tb, tr};
    for (int threads = 1; threads <= 2; threads++) {
        ember_session_options so;
        ember_session_options_init(&so);
        so.threads = threads;
        so.opt_level = EMBER_OPT_NONE; /* keep every node, so every kernel runs */
        ember_session *s;
        cr_assert_eq(ember_session_create(em, &so, &s, &err), EMBER_OK, "%s", err.message);
        for (int rep = 0; rep < 2; rep++) {
            ember_tensor *y = NULL;
            cr_assert_eq(ember_session_run(s, in_names, in_t, 3, out_names, 1, &y, &err), EMBER_OK,
                         "%s", err.message);
            const float *yd = ember_tensor_data(y);
            for (int64_t i = 0; i < n; i++) {
                double want = chain_reference(a, bias, row, i, t5);
                cr_assert(fabs(yd[i] - want) <= 1e-6 + 1e-5 * fabs(want),
                          "threads %d element %lld: %g vs %g", threads, (long long)i, yd[i], want);
            }
            ember_tensor_free(y);
        }
        ember_session_free(s);
    }
    free(t4);
    free(t5);
    ember_tensor_free(ta);
    ember_tensor_free(tb);
    ember_tensor_free(tr);
    ember_model_free(em);
}
