/* Shape, pad and resize kernels called directly (no model file): edge cases the ONNX node tests
 * do not cover. Kernels run with ex == NULL, i.e. single-threaded with malloc'd scratch. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

#define MAX_IO 8

typedef struct test_node {
    em_node node;
    em_attr attrs[8];
    int64_t ints[8][16];
} test_node;

static void node_init(test_node *t, const char *op, int opset, int n_in, int n_out) {
    memset(t, 0, sizeof *t);
    t->node.name = (char *)"t";
    t->node.op_type = (char *)op;
    t->node.domain = (char *)"";
    t->node.opset = opset;
    t->node.n_inputs = t->node.n_explicit_inputs = n_in;
    t->node.n_outputs = n_out;
    t->node.attrs = t->attrs;
}

static void attr_int(test_node *t, const char *name, int64_t v) {
    em_attr *a = &t->attrs[t->node.n_attrs++];
    a->name = (char *)name;
    a->type = EM_ATTR_INT;
    a->i = v;
}

static void attr_ints(test_node *t, const char *name, const int64_t *v, int n) {
    int k = t->node.n_attrs++;
    em_attr *a = &t->attrs[k];
    a->name = (char *)name;
    a->type = EM_ATTR_INTS;
    memcpy(t->ints[k], v, sizeof *v * (size_t)n);
    a->ints = t->ints[k];
    a->n = n;
}

static void attr_str(test_node *t, const char *name, const char *s) {
    em_attr *a = &t->attrs[t->node.n_attrs++];
    a->name = (char *)name;
    a->type = EM_ATTR_STRING;
    a->s = (char *)s;
    a->s_len = strlen(s);
}

static em_tensor *tensor(ember_dtype dt, int rank, const int64_t *dims) {
    em_tensor *t = em_tensor_new(dt, dims, rank, NULL);
    cr_assert_not_null(t);
    return t;
}

static em_tensor *i64_vec(int n, const int64_t *v) {
    int64_t d[1] = {n};
    em_tensor *t = tensor(EMBER_INT64, 1, d);
    if (n) memcpy(t->data, v, sizeof *v * (size_t)n);
    return t;
}

static em_tensor *f32_iota(int rank, const int64_t *dims) {
    em_tensor *t = tensor(EMBER_FLOAT, rank, dims);
    for (int64_t i = 0; i < em_numel(t); i++) ((float *)t->data)[i] = (float)i;
    return t;
}

/* infer + allocate + run, like the executor. Outputs own their data (free with out_free). */
static ember_status run_node(test_node *t, em_tensor **in, em_tensor *out, ember_error *err) {
    em_node *n = &t->node;
    const em_op *op = em_registry_find("", n->op_type, n->opset);
    cr_assert_not_null(op, "no kernel for %s-%d", n->op_type, n->opset);
    for (int k = 0; k < n->n_outputs; k++) {
        memset(&out[k], 0, sizeof out[k]);
        out[k].rank = -1;
    }
    ember_status st = op->infer(n, NULL, in, out, err);
    if (st != EMBER_OK) return st;
    for (int k = 0; k < n->n_outputs; k++) {
        cr_assert(out[k].rank >= 0 && em_numel(&out[k]) >= 0, "output %d has no shape", k);
        if (k == 0 && (op->flags & EM_OP_ALIAS_INPUT0)) {
            out[k].data = in[0]->data;
            continue;
        }
        out[k].data = em_aligned_alloc(em_nbytes(&out[k]));
        out[k].owns_data = true;
    }
    return op->run ? op->run(n, NULL, in, out, NULL, err) : EMBER_OK;
}

static void out_free(em_tensor *out, int n) {
    for (int k = 0; k < n; k++)
        if (out[k].owns_data) em_aligned_free(out[k].data);
}

static void assert_dims(const em_tensor *t, int rank, const int64_t *dims) {
    cr_assert_eq(t->rank, rank, "rank %d, expected %d", t->rank, rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(t->dims[i], dims[i], "dim %d is %lld, expected %lld", i, (long long)t->dims[i],
                     (long long)dims[i]);
}

static void init(void) {
    em_registry_init();
}
TestSuite(ops_shape, .init = init);

/* ---- Slice -------------------------------------------------------------------------------- */

static void slice_1d(int64_t start, int64_t end, int64_t step, int n_expect, const float *expect) {
    int64_t d10[1] = {10}, zero = 0;
    test_node t;
    node_init(&t, "Slice", 13, 5, 1);
    em_tensor *in[5] = {f32_iota(1, d10), i64_vec(1, &start), i64_vec(1, &end), i64_vec(1, &zero),
                        i64_vec(1, &step)};
    em_tensor out[1];
    ember_error err;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(out[0].dims[0], n_expect, "start %lld end %lld step %lld: %lld elements",
                 (long long)start, (long long)end, (long long)step, (long long)out[0].dims[0]);
    for (int i = 0; i < n_expect; i++)
        cr_assert_eq(((float *)out[0].data)[i], expect[i], "element %d", i);
    out_free(out, 1);
    for (int i = 0; i < 5; i++) em_tensor_free(in[i]);
}

Test(ops_shape, slice_int64_extremes_and_negative_steps) {
    const float rev[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    const float all[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    slice_1d(INT64_MAX, INT64_MIN, -1, 10, rev);
    slice_1d(-1, INT64_MIN, -3, 4, (const float[]){9, 6, 3, 0});
    slice_1d(INT64_MIN, INT64_MAX, 1, 10, all);
    slice_1d(0, INT64_MAX, INT64_MAX, 1, all);
    slice_1d(INT64_MAX, INT64_MIN, INT64_MIN, 1, (const float[]){9});
    slice_1d(-1, -1, -1, 0, NULL); /* end -1 means index 9, not "before 0" */
    slice_1d(5, 2, 1, 0, NULL);    /* empty forward */
    slice_1d(2, 5, -1, 0, NULL);   /* empty backward */
    slice_1d(-100, 3, 2, 2, (const float[]){0, 2});
    slice_1d(100, -100, -4, 3, (const float[]){9, 5, 1});
}

Test(ops_shape, slice_negative_axes_2d_and_empty_axis) {
    int64_t dims[2] = {3, 4};
    int64_t starts[2] = {-1, 1}, ends[2] = {INT64_MIN, 3}, axes[2] = {-1, 0}, steps[2] = {-2, 1};
    test_node t;
    node_init(&t, "Slice", 13, 5, 1);
    em_tensor *in[5] = {f32_iota(2, dims), i64_vec(2, starts), i64_vec(2, ends), i64_vec(2, axes),
                        i64_vec(2, steps)};
    em_tensor out[1];
    ember_error err;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){2, 2});
    const float expect[4] = {7, 5, 11, 9}; /* rows 1..2, columns 3, 1 */
    for (int i = 0; i < 4; i++) cr_assert_eq(((float *)out[0].data)[i], expect[i]);
    out_free(out, 1);
    for (int i = 0; i < 5; i++) em_tensor_free(in[i]);

    int64_t empty[2] = {0, 4}, s = -1, e = INT64_MIN, a = 0, st = -1;
    node_init(&t, "Slice", 13, 5, 1);
    em_tensor *in2[5] = {f32_iota(2, empty), i64_vec(1, &s), i64_vec(1, &e), i64_vec(1, &a),
                         i64_vec(1, &st)};
    cr_assert_eq(run_node(&t, in2, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){0, 4});
    out_free(out, 1);
    for (int i = 0; i < 5; i++) em_tensor_free(in2[i]);
}

Test(ops_shape, slice_rejects_zero_step_and_repeated_axis) {
    int64_t d10[1] = {10}, z = 0, one = 1;
    int64_t two_axes[2] = {0, -1}, two[2] = {0, 0}, steps[2] = {1, 1};
    test_node t;
    node_init(&t, "Slice", 13, 5, 1);
    em_tensor *in[5] = {f32_iota(1, d10), i64_vec(1, &z), i64_vec(1, &one), i64_vec(1, &z),
                        i64_vec(1, &z)};
    em_tensor out[1];
    ember_error err = {0};
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "step") && strstr(err.message, "Slice"), "%s", err.message);
    for (int i = 1; i < 5; i++) em_tensor_free(in[i]);
    in[1] = i64_vec(2, two);
    in[2] = i64_vec(2, two);
    in[3] = i64_vec(2, two_axes);
    in[4] = i64_vec(2, steps);
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_INVALID_MODEL, "%s", err.message);
    for (int i = 0; i < 5; i++) em_tensor_free(in[i]);
}

/* ---- Reshape ------------------------------------------------------------------------------ */

static ember_status reshape(int opset, int64_t allowzero, int in_rank, const int64_t *in_dims,
                            int n, const int64_t *shape, em_tensor *out, ember_error *err) {
    test_node t;
    node_init(&t, "Reshape", opset, 2, 1);
    if (allowzero >= 0) attr_int(&t, "allowzero", allowzero);
    em_tensor *in[2] = {f32_iota(in_rank, in_dims), i64_vec(n, shape)};
    ember_status st = run_node(&t, in, out, err);
    if (st == EMBER_OK) cr_assert_eq(out[0].data, in[0]->data, "Reshape must be a view");
    em_tensor_free(in[0]);
    em_tensor_free(in[1]);
    return st;
}

Test(ops_shape, reshape_zero_and_minus_one) {
    int64_t d[3] = {2, 3, 4};
    em_tensor out[1];
    ember_error err = {0};
    cr_assert_eq(reshape(14, -1, 3, d, 2, (int64_t[]){0, -1}, out, &err), EMBER_OK);
    assert_dims(&out[0], 2, (int64_t[]){2, 12});
    cr_assert_eq(reshape(14, -1, 3, d, 3, (int64_t[]){-1, 0, 2}, out, &err), EMBER_OK);
    assert_dims(&out[0], 3, (int64_t[]){4, 3, 2});
    cr_assert_eq(reshape(5, -1, 3, d, 4, (int64_t[]){0, 0, 2, -1}, out, &err), EMBER_OK);
    assert_dims(&out[0], 4, (int64_t[]){2, 3, 2, 2});
    /* allowzero: 0 is a real size */
    int64_t e[2] = {0, 3};
    cr_assert_eq(reshape(14, 1, 2, e, 3, (int64_t[]){3, 0, 5}, out, &err), EMBER_OK, "%s",
                 err.message);
    assert_dims(&out[0], 3, (int64_t[]){3, 0, 5});
    /* without allowzero, 0 copies the input dim: [0,3] -> [0, 3] */
    cr_assert_eq(reshape(14, 0, 2, e, 2, (int64_t[]){0, -1}, out, &err), EMBER_ERR_SHAPE);
    cr_assert_eq(reshape(14, 0, 2, e, 2, (int64_t[]){0, 3}, out, &err), EMBER_OK);
    assert_dims(&out[0], 2, (int64_t[]){0, 3});
    /* errors */
    cr_assert_eq(reshape(14, 1, 2, e, 2, (int64_t[]){0, -1}, out, &err), EMBER_ERR_SHAPE);
    cr_assert_eq(reshape(14, 0, 3, d, 2, (int64_t[]){-1, -1}, out, &err), EMBER_ERR_INVALID_MODEL);
    cr_assert_eq(reshape(14, 0, 3, d, 2, (int64_t[]){5, -1}, out, &err), EMBER_ERR_SHAPE);
    cr_assert_eq(reshape(14, 0, 3, d, 2, (int64_t[]){5, 5}, out, &err), EMBER_ERR_SHAPE);
    cr_assert_eq(reshape(14, 0, 3, d, 4, (int64_t[]){2, 3, 4, 0}, out, &err), EMBER_ERR_SHAPE);
    cr_assert_eq(reshape(14, 0, 3, d, 1, (int64_t[]){-2}, out, &err), EMBER_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "Reshape"), "message names the node: %s", err.message);
}

Test(ops_shape, reshape_static_inference_without_shape_values) {
    test_node t;
    node_init(&t, "Reshape", 14, 2, 1);
    em_tensor x = {.dtype = EMBER_FLOAT, .rank = 2, .dims = {2, 3}};
    em_tensor s = {.dtype = EMBER_INT64, .rank = 1, .dims = {3}}; /* data unknown */
    em_tensor *in[2] = {&x, &s};
    em_tensor out = {.rank = -1};
    ember_error err;
    const em_op *op = em_registry_find("", "Reshape", 14);
    cr_assert_eq(op->infer(&t.node, NULL, in, &out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out, 3, (int64_t[]){-1, -1, -1});
    cr_assert(op->flags & EM_OP_ALIAS_INPUT0);
}

/* ---- Transpose ---------------------------------------------------------------------------- */

static void check_transpose(ember_dtype dt, int rank, const int64_t *dims, const int64_t *perm) {
    test_node t;
    node_init(&t, "Transpose", 13, 1, 1);
    attr_ints(&t, "perm", perm, rank);
    em_tensor *x = tensor(dt, rank, dims);
    size_t es = em_dtype_size(dt);
    int64_t n = em_numel(x);
    for (int64_t i = 0; i < n; i++) /* distinct byte patterns per element */
        for (size_t b = 0; b < es; b++)
            ((uint8_t *)x->data)[i * (int64_t)es + (int64_t)b] =
                (uint8_t)((i * 7 + (int64_t)b * 131 + i / 256) & 0xff);
    em_tensor *in[1] = {x};
    em_tensor out[1];
    ember_error err;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    int64_t in_st[EM_MAX_RANK], odims[EM_MAX_RANK];
    em_strides(dims, rank, in_st);
    for (int k = 0; k < rank; k++) odims[k] = dims[perm[k]];
    assert_dims(&out[0], rank, odims);
    int64_t idx[EM_MAX_RANK] = {0};
    for (int64_t o = 0; o < n; o++) {
        int64_t src = 0;
        for (int k = 0; k < rank; k++) src += idx[k] * in_st[perm[k]];
        cr_assert(memcmp((char *)out[0].data + o * (int64_t)es, (char *)x->data + src * (int64_t)es,
                         es) == 0,
                  "element %lld differs (dtype %s)", (long long)o, em_dtype_name(dt));
        for (int k = rank - 1; k >= 0; k--) {
            if (++idx[k] < odims[k]) break;
            idx[k] = 0;
        }
    }
    out_free(out, 1);
    em_tensor_free(x);
}

Test(ops_shape, transpose_rank6_all_element_sizes) {
    const int64_t dims[6] = {2, 3, 1, 4, 5, 3};
    const int64_t perms[][6] = {{5, 4, 3, 2, 1, 0}, {0, 2, 1, 3, 5, 4}, {1, 0, 3, 5, 2, 4},
                                {0, 1, 2, 3, 4, 5}, {3, 4, 5, 0, 1, 2}, {4, 0, 5, 1, 3, 2}};
    const ember_dtype types[] = {EMBER_UINT8, EMBER_FLOAT16, EMBER_FLOAT, EMBER_INT64};
    for (size_t p = 0; p < sizeof perms / sizeof perms[0]; p++)
        for (size_t d = 0; d < sizeof types / sizeof types[0]; d++)
            check_transpose(types[d], 6, dims, perms[p]);
    /* tile edges: sizes that are not multiples of the 16x16 tile */
    check_transpose(EMBER_FLOAT, 2, (int64_t[]){37, 19}, (int64_t[]){1, 0});
    check_transpose(EMBER_DOUBLE, 3, (int64_t[]){3, 17, 33}, (int64_t[]){2, 0, 1});
    check_transpose(EMBER_FLOAT, 8, (int64_t[]){2, 1, 2, 3, 1, 2, 2, 3},
                    (int64_t[]){7, 0, 6, 1, 5, 2, 4, 3});
}

Test(ops_shape, transpose_zero_size_and_bad_perm) {
    check_transpose(EMBER_FLOAT, 3, (int64_t[]){2, 0, 3}, (int64_t[]){2, 1, 0});
    test_node t;
    node_init(&t, "Transpose", 13, 1, 1);
    attr_ints(&t, "perm", (int64_t[]){0, 0}, 2);
    em_tensor *x = f32_iota(2, (int64_t[]){2, 2});
    em_tensor *in[1] = {x};
    em_tensor out[1];
    ember_error err;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_INVALID_MODEL);
    em_tensor_free(x);
}

/* ---- zero-size dims in other copies ------------------------------------------------------- */

Test(ops_shape, zero_size_tile_expand_concat_split) {
    em_tensor out[4];
    ember_error err;
    test_node t;
    /* Tile with a zero repeat */
    node_init(&t, "Tile", 13, 2, 1);
    em_tensor *x = f32_iota(2, (int64_t[]){2, 3});
    em_tensor *r = i64_vec(2, (int64_t[]){0, 2});
    em_tensor *in[2] = {x, r};
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){0, 6});
    out_free(out, 1);
    em_tensor_free(r);
    /* Expand to a zero dim */
    node_init(&t, "Expand", 13, 2, 1);
    in[1] = r = i64_vec(3, (int64_t[]){0, 1, 3});
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 3, (int64_t[]){0, 2, 3});
    out_free(out, 1);
    em_tensor_free(r);
    /* Concat with an empty input */
    node_init(&t, "Concat", 13, 2, 1);
    attr_int(&t, "axis", 0);
    in[1] = r = tensor(EMBER_FLOAT, 2, (int64_t[]){0, 3});
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){2, 3});
    cr_assert_eq(memcmp(out[0].data, x->data, 6 * sizeof(float)), 0);
    out_free(out, 1);
    em_tensor_free(r);
    /* Split with a zero-size part */
    node_init(&t, "Split", 13, 2, 3);
    attr_int(&t, "axis", 1);
    in[1] = r = i64_vec(3, (int64_t[]){0, 3, 0});
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){2, 0});
    assert_dims(&out[1], 2, (int64_t[]){2, 3});
    assert_dims(&out[2], 2, (int64_t[]){2, 0});
    cr_assert_eq(memcmp(out[1].data, x->data, 6 * sizeof(float)), 0);
    out_free(out, 3);
    em_tensor_free(r);
    em_tensor_free(x);
}

Test(ops_shape, split_num_outputs) {
    em_tensor out[4];
    ember_error err = {0};
    test_node t;
    node_init(&t, "Split", 18, 1, 4);
    attr_int(&t, "num_outputs", 4);
    em_tensor *x = f32_iota(1, (int64_t[]){10});
    em_tensor *in[1] = {x};
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    const int64_t sizes[4] = {3, 3, 3, 1};
    for (int k = 0; k < 4; k++) cr_assert_eq(out[k].dims[0], sizes[k]);
    cr_assert_eq(((float *)out[3].data)[0], 9.0f);
    out_free(out, 4);
    em_tensor_free(x);
    /* 5 elements cannot make 4 chunks of ceil(5/4) = 2 */
    x = f32_iota(1, (int64_t[]){5});
    in[0] = x;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_SHAPE);
    em_tensor_free(x);
    /* before opset 18 an uneven split without sizes is an error */
    node_init(&t, "Split", 13, 1, 3);
    x = f32_iota(1, (int64_t[]){10});
    in[0] = x;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_SHAPE);
    em_tensor_free(x);
}

/* ---- Squeeze / Unsqueeze / Flatten --------------------------------------------------------- */

Test(ops_shape, squeeze_unsqueeze_versions) {
    em_tensor out[1];
    ember_error err = {0};
    test_node t;
    em_tensor *x = f32_iota(4, (int64_t[]){1, 3, 1, 2});
    /* opset 11: axes attribute */
    node_init(&t, "Squeeze", 11, 1, 1);
    attr_ints(&t, "axes", (int64_t[]){-4}, 1);
    em_tensor *in[2] = {x, NULL};
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 3, (int64_t[]){3, 1, 2});
    cr_assert_eq(out[0].data, x->data);
    /* opset 13: no axes input squeezes every 1 */
    node_init(&t, "Squeeze", 13, 1, 1);
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){3, 2});
    /* squeezing a dim that is not 1 fails */
    node_init(&t, "Squeeze", 13, 2, 1);
    in[1] = i64_vec(1, (int64_t[]){1});
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_SHAPE);
    em_tensor_free(in[1]);
    /* Unsqueeze-13: axes refer to the output rank, unsorted, negative */
    node_init(&t, "Unsqueeze", 13, 2, 1);
    in[1] = i64_vec(2, (int64_t[]){-1, 0});
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 6, (int64_t[]){1, 1, 3, 1, 2, 1});
    em_tensor_free(in[1]);
    in[1] = i64_vec(2, (int64_t[]){2, -4}); /* both name axis 2 of the rank-6 output */
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_INVALID_MODEL);
    em_tensor_free(in[1]);
    /* Flatten-13 with a negative axis, and axis == rank */
    node_init(&t, "Flatten", 13, 1, 1);
    attr_int(&t, "axis", -3);
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){1, 6});
    node_init(&t, "Flatten", 13, 1, 1);
    attr_int(&t, "axis", 4);
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){6, 1});
    node_init(&t, "Flatten", 9, 1, 1); /* negative axes arrived in opset 11 */
    attr_int(&t, "axis", -1);
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_INVALID_MODEL);
    em_tensor_free(x);
}

/* ---- Shape / Size in static inference ------------------------------------------------------ */

Test(ops_shape, shape_and_size_infer_without_data) {
    em_tensor x = {.dtype = EMBER_FLOAT, .rank = 3, .dims = {2, 5, 7}};
    em_tensor *in[1] = {&x};
    em_tensor out = {.rank = -1};
    ember_error err;
    test_node t;
    node_init(&t, "Shape", 15, 1, 1);
    attr_int(&t, "start", -2);
    const em_op *op = em_registry_find("", "Shape", 15);
    cr_assert_eq(op->infer(&t.node, NULL, in, &out, &err), EMBER_OK);
    assert_dims(&out, 1, (int64_t[]){2});
    cr_assert_eq(out.dtype, EMBER_INT64);
    int64_t got[2];
    out.data = got;
    cr_assert_eq(op->run(&t.node, NULL, in, &out, NULL, &err), EMBER_OK);
    cr_assert(got[0] == 5 && got[1] == 7);
    op = em_registry_find("", "Size", 13);
    node_init(&t, "Size", 13, 1, 1);
    cr_assert_eq(op->infer(&t.node, NULL, in, &out, &err), EMBER_OK);
    cr_assert_eq(out.rank, 0);
}

/* ---- Cast ---------------------------------------------------------------------------------- */

Test(ops_shape, cast_double_to_half_rounds_once) {
    /* 1 + 2^-11 + 2^-40 is just above the midpoint between two halves: the answer is
     * 1 + 2^-10. Rounding to float first lands exactly on the midpoint, then on 1.0. */
    double v[4] = {1.0 + ldexp(1, -11) + ldexp(1, -40), -0.0, INFINITY, 65520.0};
    em_tensor *x = tensor(EMBER_DOUBLE, 1, (int64_t[]){4});
    memcpy(x->data, v, sizeof v);
    test_node t;
    node_init(&t, "Cast", 13, 1, 1);
    attr_int(&t, "to", EMBER_FLOAT16);
    em_tensor *in[1] = {x};
    em_tensor out[1];
    ember_error err;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    const uint16_t *h = out[0].data;
    cr_assert_eq(h[0], 0x3c01, "got 0x%04x", h[0]);
    cr_assert_eq(h[1], 0x8000);
    cr_assert_eq(h[2], 0x7c00);
    cr_assert_eq(h[3], 0x7c00, "65520 rounds to infinity in half");
    out_free(out, 1);
    em_tensor_free(x);
}

/* Casts to string produce string tensors (run through a session in test_sequence.c). */
Test(ops_shape, cast_to_string_infers_a_string_tensor) {
    test_node t;
    node_init(&t, "Cast", 13, 1, 1);
    attr_int(&t, "to", EMBER_STRING);
    em_tensor *x = f32_iota(1, (int64_t[]){2});
    em_tensor *in[1] = {x};
    em_tensor out[1] = {{.rank = -1}};
    ember_error err;
    const em_op *op = em_registry_find("", "Cast", 13);
    cr_assert(op->flags & EM_OP_STRINGS);
    cr_assert_eq(op->infer(&t.node, NULL, in, out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(out[0].dtype, EMBER_STRING);
    assert_dims(&out[0], 1, (int64_t[]){2});
    em_tensor_free(x);
}

/* ---- Range / Trilu extremes ---------------------------------------------------------------- */

Test(ops_shape, range_int64_extremes) {
    test_node t;
    node_init(&t, "Range", 11, 3, 1);
    em_tensor *in[3];
    int64_t v[3] = {INT64_MIN, INT64_MAX, INT64_MAX};
    for (int i = 0; i < 3; i++) {
        in[i] = tensor(EMBER_INT64, 0, NULL);
        *(int64_t *)in[i]->data = v[i];
    }
    em_tensor out[1];
    ember_error err;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 1, (int64_t[]){3});
    const int64_t *o = out[0].data;
    cr_assert(o[0] == INT64_MIN && o[1] == -1 && o[2] == INT64_MAX - 1);
    out_free(out, 1);
    *(int64_t *)in[2]->data = 0;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_INVALID_MODEL);
    for (int i = 0; i < 3; i++) em_tensor_free(in[i]);
}

Test(ops_shape, trilu_k_extremes) {
    em_tensor *x = f32_iota(2, (int64_t[]){3, 4});
    em_tensor *k = tensor(EMBER_INT64, 0, NULL);
    em_tensor *in[2] = {x, k};
    em_tensor out[1];
    ember_error err;
    test_node t;
    int64_t ks[2] = {INT64_MAX, INT64_MIN};
    for (int upper = 0; upper <= 1; upper++)
        for (int i = 0; i < 2; i++) {
            node_init(&t, "Trilu", 14, 2, 1);
            attr_int(&t, "upper", upper);
            *(int64_t *)k->data = ks[i];
            cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
            /* lower with +inf k and upper with -inf k keep everything; the others nothing */
            bool keep = (upper == 0) == (i == 0);
            for (int e = 0; e < 12; e++)
                cr_assert_eq(((float *)out[0].data)[e], keep ? (float)e : 0.0f);
            out_free(out, 1);
        }
    em_tensor_free(x);
    em_tensor_free(k);
}

/* ---- Pad ----------------------------------------------------------------------------------- */

Test(ops_shape, pad_negative_and_empty) {
    em_tensor out[1];
    ember_error err = {0};
    test_node t;
    /* [0..5] with pads (-2, 3) in edge mode: crop 2 first, then repeat the last element */
    node_init(&t, "Pad", 13, 2, 1);
    attr_str(&t, "mode", "edge");
    em_tensor *x = f32_iota(1, (int64_t[]){6});
    em_tensor *p = i64_vec(2, (int64_t[]){-2, 3});
    em_tensor *in[3] = {x, p, NULL};
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    const float e1[7] = {2, 3, 4, 5, 5, 5, 5};
    assert_dims(&out[0], 1, (int64_t[]){7});
    for (int i = 0; i < 7; i++) cr_assert_eq(((float *)out[0].data)[i], e1[i]);
    out_free(out, 1);
    em_tensor_free(p);
    /* cropping more than the axis holds */
    in[1] = p = i64_vec(2, (int64_t[]){-7, 2});
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_SHAPE);
    em_tensor_free(p);
    em_tensor_free(x);
    /* an empty axis can be padded with a constant, not reflected */
    x = tensor(EMBER_FLOAT, 2, (int64_t[]){2, 0});
    in[0] = x;
    in[1] = p = i64_vec(4, (int64_t[]){0, 1, 0, 2});
    node_init(&t, "Pad", 13, 2, 1);
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++) cr_assert_eq(((float *)out[0].data)[i], 0.0f);
    out_free(out, 1);
    node_init(&t, "Pad", 13, 2, 1);
    attr_str(&t, "mode", "reflect");
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_SHAPE);
    node_init(&t, "Pad", 18, 2, 1);
    attr_str(&t, "mode", "wrap"); /* wrap arrived in opset 19 */
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_INVALID_MODEL);
    em_tensor_free(p);
    em_tensor_free(x);
}

Test(ops_shape, pad_wrap_and_reflect_beyond_one_period) {
    em_tensor out[1];
    ember_error err = {0};
    test_node t;
    em_tensor *x = f32_iota(1, (int64_t[]){3}); /* 0 1 2 */
    em_tensor *p = i64_vec(2, (int64_t[]){5, 4});
    em_tensor *in[2] = {x, p};
    node_init(&t, "Pad", 19, 2, 1);
    attr_str(&t, "mode", "wrap");
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    const float wrap[12] = {1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0};
    for (int i = 0; i < 12; i++) cr_assert_eq(((float *)out[0].data)[i], wrap[i], "wrap %d", i);
    out_free(out, 1);
    node_init(&t, "Pad", 13, 2, 1);
    attr_str(&t, "mode", "reflect");
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    const float refl[12] = {1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2}; /* numpy's reflect */
    for (int i = 0; i < 12; i++) cr_assert_eq(((float *)out[0].data)[i], refl[i], "reflect %d", i);
    out_free(out, 1);
    em_tensor_free(p);
    em_tensor_free(x);
}

/* ---- Resize -------------------------------------------------------------------------------- */

Test(ops_shape, resize_identity_scale_copies_and_empty_output) {
    em_tensor out[1];
    ember_error err = {0};
    test_node t;
    node_init(&t, "Resize", 13, 3, 1);
    attr_str(&t, "mode", "cubic");
    em_tensor *x = f32_iota(4, (int64_t[]){1, 2, 3, 5});
    em_tensor *s = tensor(EMBER_FLOAT, 1, (int64_t[]){4});
    for (int i = 0; i < 4; i++) ((float *)s->data)[i] = 1.0f;
    em_tensor *in[3] = {x, NULL, s};
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(memcmp(out[0].data, x->data, em_nbytes(x)), 0);
    out_free(out, 1);
    ((float *)s->data)[3] = 0.1f; /* floor(5 * 0.1) = 0 columns */
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_OK, "%s", err.message);
    assert_dims(&out[0], 4, (int64_t[]){1, 2, 3, 0});
    out_free(out, 1);
    ((float *)s->data)[3] = -1.0f;
    cr_assert_eq(run_node(&t, in, out, &err), EMBER_ERR_INVALID_MODEL);
    em_tensor_free(s);
    em_tensor_free(x);
}
