/* Optimizer passes: each fires on a model made for it (tests/fixtures/make_pass_models.py),
 * the optimized graph computes what EMBER_OPT_NONE computes (bit for bit, except where a pass
 * changes rounding), and it does not fire where it must not: a graph output in the middle, a
 * second reader, weights that are not constants. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "kernel.h"
#include "session.h"

#define MAX_IO 8

static const char *model_path(const char *name) {
    static char buf[4096];
    const char *dir = getenv("EMBER_PASS_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s.onnx", dir ? dir : "build/tests/pass_fixtures", name);
    return buf;
}

static ember_model *load(const char *name) {
    ember_model *m = NULL;
    ember_error err = {0};
    cr_assert_eq(ember_model_load_file(model_path(name), NULL, &m, &err), EMBER_OK, "%s: %s",
                 name, err.message);
    return m;
}

/* Random inputs of the declared shapes, symbolic dims set to `sym` (deterministic). */
typedef struct inputs {
    size_t n;
    const char *names[MAX_IO];
    ember_tensor *t[MAX_IO];
} inputs;

static void make_inputs(const ember_model *m, inputs *in, int64_t sym) {
    uint64_t seed = 0x243f6a8885a308d3ull;
    in->n = ember_model_input_count(m);
    cr_assert(in->n <= MAX_IO);
    for (size_t i = 0; i < in->n; i++) {
        ember_value_info vi;
        ember_error err;
        cr_assert_eq(ember_model_input(m, i, &vi), EMBER_OK);
        int64_t dims[EMBER_MAX_RANK];
        for (int d = 0; d < vi.rank; d++) dims[d] = vi.dims[d] >= 0 ? vi.dims[d] : sym;
        in->names[i] = vi.name;
        cr_assert_eq(ember_tensor_create(vi.dtype, dims, vi.rank, &in->t[i], &err), EMBER_OK);
        cr_assert_eq(vi.dtype, EMBER_FLOAT, "input %s: only float inputs here", vi.name);
        float *p = ember_tensor_data(in->t[i]);
        for (int64_t e = 0; e < ember_tensor_element_count(in->t[i]); e++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            p[e] = (float)((double)(seed >> 11) / 9007199254740992.0 * 4.0 - 2.0);
        }
    }
}

static void free_inputs(inputs *in) {
    for (size_t i = 0; i < in->n; i++) ember_tensor_free(in->t[i]);
}

typedef struct result {
    size_t n;
    ember_tensor *out[MAX_IO];
    char graph[8192]; /* the graph as it runs */
} result;

static void run_level_threads(const ember_model *m, ember_opt_level level, int threads,
                              const inputs *in, result *r) {
    ember_session_options o;
    ember_session_options_init(&o);
    o.opt_level = level;
    o.threads = threads;
    ember_session *s = NULL;
    ember_error err = {0};
    cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
    ember_session_describe(s, r->graph, sizeof r->graph);
    r->n = ember_model_output_count(m);
    cr_assert(r->n <= MAX_IO);
    const char *names[MAX_IO];
    for (size_t k = 0; k < r->n; k++) {
        ember_value_info vi;
        ember_model_output(m, k, &vi);
        names[k] = vi.name;
    }
    cr_assert_eq(ember_session_run(s, in->names, (const ember_tensor *const *)in->t, in->n, names,
                                   r->n, r->out, &err),
                 EMBER_OK, "%s", err.message);
    ember_session_free(s);
}

static void run_level(const ember_model *m, ember_opt_level level, const inputs *in, result *r) {
    run_level_threads(m, level, 1, in, r);
}

static void free_result(result *r) {
    for (size_t k = 0; k < r->n; k++) ember_tensor_free(r->out[k]);
}

/* Lines of the described graph that run operator `op` ("Conv", "ai.ember:FusedConv"). */
static int count_op(const char *graph, const char *op) {
    int count = 0;
    size_t len = strlen(op);
    for (const char *line = graph; line && *line; line = strchr(line, '\n')) {
        if (*line == '\n') line++;
        if (strncmp(line, op, len) == 0 && strncmp(line + len, " '", 2) == 0) count++;
    }
    return count;
}

/* Outputs equal: bit for bit when tol == 0, else |a - b| <= tol * (1 + |b|). */
static void expect_same(const result *opt, const result *ref, double tol, const char *model) {
    cr_assert_eq(opt->n, ref->n);
    for (size_t k = 0; k < ref->n; k++) {
        const ember_tensor *a = opt->out[k], *b = ref->out[k];
        cr_assert_eq(ember_tensor_rank(a), ember_tensor_rank(b), "%s: output %zu rank", model, k);
        for (int d = 0; d < ember_tensor_rank(a); d++)
            cr_assert_eq(ember_tensor_dims(a)[d], ember_tensor_dims(b)[d], "%s: output %zu dims",
                         model, k);
        const float *x = ember_tensor_const_data(a), *y = ember_tensor_const_data(b);
        for (int64_t i = 0; i < ember_tensor_element_count(b); i++) {
            if (tol == 0)
                cr_assert(memcmp(&x[i], &y[i], sizeof(float)) == 0,
                          "%s: output %zu [%lld]: optimized %.9g, as written %.9g", model, k,
                          (long long)i, x[i], y[i]);
            else
                cr_assert(fabs((double)x[i] - y[i]) <= tol * (1 + fabs((double)y[i])),
                          "%s: output %zu [%lld]: optimized %.9g, as written %.9g", model, k,
                          (long long)i, x[i], y[i]);
        }
    }
}

/* Runs `model` as written and optimized; returns the optimized graph's description in `graph`
 * after checking that both compute the same outputs. */
static void check_model_at(const char *model, double tol, int64_t sym, char *graph, size_t size) {
    ember_model *m = load(model);
    inputs in;
    make_inputs(m, &in, sym);
    result ref, opt;
    run_level(m, EMBER_OPT_NONE, &in, &ref);
    run_level(m, EMBER_OPT_ALL, &in, &opt);
    expect_same(&opt, &ref, tol, model);
    snprintf(graph, size, "%s", opt.graph);
    free_result(&ref);
    free_result(&opt);
    free_inputs(&in);
    ember_model_free(m);
}

static void check_model(const char *model, double tol, char *graph, size_t size) {
    check_model_at(model, tol, 2, graph, size);
}

#define CHECK(model, tol)                                                                          \
    char graph[8192];                                                                              \
    check_model(model, tol, graph, sizeof graph)

#define EXPECT_OPS(op, n) cr_expect_eq(count_op(graph, op), n, "%s:\n%s", op, graph)

/* ---- Identity / Dropout removal ---- */

Test(passes, identity_and_dropout_removed) {
    CHECK("identity", 0);
    EXPECT_OPS("Identity", 0);
    EXPECT_OPS("Dropout", 0);
    EXPECT_OPS("Add", 1);
}

Test(passes, identity_kept_when_its_output_is_a_graph_output) {
    CHECK("identity_output", 0);
    EXPECT_OPS("Identity", 1);
}

Test(passes, dropout_kept_when_its_mask_is_read) {
    CHECK("dropout_mask", 0);
    EXPECT_OPS("Dropout", 1);
}

/* ---- constant folding and dead nodes ---- */

Test(passes, constants_folded) {
    CHECK("fold_constants", 0);
    EXPECT_OPS("Mul", 0);
    EXPECT_OPS("Add", 1);
}

Test(passes, overridable_initializers_not_folded) {
    CHECK("fold_overridable", 0);
    EXPECT_OPS("Mul", 1);
    /* And overriding them works: y = x + c1 * c2 with the caller's c1 and c2. */
    ember_model *m = load("fold_overridable");
    ember_session *s;
    ember_error err;
    cr_assert_eq(ember_session_create(m, NULL, &s, &err), EMBER_OK, "%s", err.message);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, c1[4] = {2, 3, 4, 5}, c2[4] = {0.5f, -1, 2, 10};
    ember_tensor *tx, *t1, *t2, *y;
    ember_tensor_wrap(EMBER_FLOAT, (int64_t[]){2, 4}, 2, x, sizeof x, &tx, &err);
    ember_tensor_wrap(EMBER_FLOAT, (int64_t[]){4}, 1, c1, sizeof c1, &t1, &err);
    ember_tensor_wrap(EMBER_FLOAT, (int64_t[]){4}, 1, c2, sizeof c2, &t2, &err);
    const char *names[] = {"x", "c1", "c2"}, *out = "y";
    const ember_tensor *ins[] = {tx, t1, t2};
    cr_assert_eq(ember_session_run(s, names, ins, 3, &out, 1, &y, &err), EMBER_OK, "%s",
                 err.message);
    const float *v = ember_tensor_const_data(y);
    for (int i = 0; i < 8; i++) cr_expect_eq(v[i], x[i] + c1[i % 4] * c2[i % 4], "y[%d]", i);
    ember_tensor_free(y);
    ember_tensor_free(tx);
    ember_tensor_free(t1);
    ember_tensor_free(t2);
    ember_session_free(s);
    ember_model_free(m);
}

Test(passes, dead_nodes_removed) {
    CHECK("dead_nodes", 0);
    EXPECT_OPS("Mul", 0);
    EXPECT_OPS("Sub", 0);
}

/* ---- shape folding ---- */

Test(passes, static_shape_chain_folded) {
    CHECK("fold_shapes", 0);
    EXPECT_OPS("Shape", 0);
    EXPECT_OPS("Gather", 0);
    EXPECT_OPS("Unsqueeze", 0);
    EXPECT_OPS("Concat", 0);
    EXPECT_OPS("Reshape", 1);
}

Test(passes, static_dims_of_a_symbolic_shape_folded) {
    CHECK("fold_shapes_static_dim", 0);
    EXPECT_OPS("Shape", 0);
    EXPECT_OPS("Gather", 0);
    EXPECT_OPS("Concat", 0);
    EXPECT_OPS("Reshape", 1);
}

Test(passes, shape_with_start_over_static_dims_folded) {
    CHECK("fold_shapes_start", 0);
    EXPECT_OPS("Shape", 0);
    EXPECT_OPS("Concat", 0);
}

Test(passes, symbolic_shape_chain_folded) {
    CHECK("fold_shapes_symbolic", 0);
    EXPECT_OPS("Shape", 0);
    EXPECT_OPS("Concat", 0);
    EXPECT_OPS("Reshape", 1);
}

/* ---- symbolic shape values (Reshape targets computed from a symbolic batch) ---- */

/* The model at batch 1, 3 and 7, optimized against as written; the last graph in `graph`. */
#define CHECK_BATCHES(model, tol)                                                                  \
    char graph[8192];                                                                              \
    for (int64_t b = 1; b <= 7; b += b == 1 ? 2 : 4) check_model_at(model, tol, b, graph, sizeof graph)

Test(passes, shape_values_torch_chain_folded) {
    CHECK_BATCHES("shape_values_torch_chain", 0);
    EXPECT_OPS("Shape", 0);
    EXPECT_OPS("Gather", 0);
    EXPECT_OPS("Slice", 0);
    EXPECT_OPS("Mul", 0);
    EXPECT_OPS("Unsqueeze", 0);
    EXPECT_OPS("Concat", 0);
    EXPECT_OPS("Reshape", 4);
}

/* nn.TransformerEncoder through torch.onnx.export: every shape chain folds (attention fusion
 * rounds differently, hence the tolerance). */
Test(passes, shape_values_torch_transformer_folded) {
    CHECK_BATCHES("torch_transformer", 1e-5);
    EXPECT_OPS("Shape", 0);
    EXPECT_OPS("Gather", 0);
    EXPECT_OPS("Unsqueeze", 0);
    EXPECT_OPS("Concat", 0);
    EXPECT_OPS("Cast", 0);
    EXPECT_OPS("ai.ember:FusedAttention", 2);
}

/* After the rewrite, static inference knows the Reshapes' outputs up to the batch. */
Test(passes, shape_values_give_reshape_outputs_static_shapes) {
    ember_model *m = load("shape_values_torch_chain");
    ember_session *s = NULL;
    ember_error err;
    cr_assert_eq(ember_session_create(m, NULL, &s, &err), EMBER_OK, "%s", err.message);
    static const struct {
        const char *name;
        int rank;
        int64_t dims[3];
    } want[] = {{"heads", 3, {6, -1, 4}}, {"flat", 2, {-1, 8}}, {"back", 3, {6, -1, 8}}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int v = em_graph_find_value(s->graph, want[i].name);
        cr_assert(v >= 0, "%s", want[i].name);
        const em_tensor *info = &s->graph->values[v].info;
        cr_expect_eq(info->rank, want[i].rank, "%s: rank %d", want[i].name, info->rank);
        for (int d = 0; d < want[i].rank && d < info->rank; d++)
            cr_expect_eq(info->dims[d], want[i].dims[d], "%s: dim %d is %lld", want[i].name, d,
                         (long long)info->dims[d]);
    }
    ember_session_free(s);
    ember_model_free(m);
}

/* At batch 0 the written graph fails (its 6 * batch rows read as 0 = copy the 6); the
 * optimized one returns the empty tensors. */
Test(passes, shape_values_torch_chain_at_batch_0) {
    ember_model *m = load("shape_values_torch_chain");
    inputs in;
    make_inputs(m, &in, 0);
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = 1;
    const char *names[] = {"y", "y2"};
    ember_tensor *out[2];
    ember_error err;
    for (int level = 0; level < 2; level++) {
        o.opt_level = level ? EMBER_OPT_ALL : EMBER_OPT_NONE;
        ember_session *s;
        cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
        ember_status st = ember_session_run(s, in.names, (const ember_tensor *const *)in.t, in.n,
                                            names, 2, out, &err);
        if (!level) {
            cr_expect_neq(st, EMBER_OK, "the written graph reshapes 0 rows into 6");
        } else {
            cr_assert_eq(st, EMBER_OK, "%s", err.message);
            cr_expect_eq(ember_tensor_rank(out[0]), 3);
            cr_expect_eq(ember_tensor_dims(out[0])[0], 0);
            cr_expect_eq(ember_tensor_dims(out[1])[0], 0);
            cr_expect_eq(ember_tensor_dims(out[1])[1], 48);
            ember_tensor_free(out[0]);
            ember_tensor_free(out[1]);
        }
        ember_session_free(s);
    }
    free_inputs(&in);
    ember_model_free(m);
}

Test(passes, shape_values_symbol_out_of_place_becomes_minus_one) {
    CHECK_BATCHES("shape_values_minus_one", 0);
    EXPECT_OPS("Shape", 0);
    EXPECT_OPS("Concat", 0);
}

Test(passes, shape_values_kept_with_allowzero) {
    CHECK_BATCHES("shape_values_allowzero", 0);
    EXPECT_OPS("Shape", 1);
    EXPECT_OPS("Concat", 1);
}

Test(passes, shape_values_kept_when_symbol_is_elsewhere_and_target_has_minus_one) {
    CHECK_BATCHES("shape_values_wrong_position", 0);
    EXPECT_OPS("Shape", 1);
    EXPECT_OPS("Concat", 1);
}

Test(passes, shape_values_kept_when_minus_one_would_divide_by_a_symbol) {
    CHECK_BATCHES("shape_values_minus_one_over_a_symbol", 0);
    EXPECT_OPS("Shape", 2);
    EXPECT_OPS("Concat", 1);
    check_model_at("shape_values_minus_one_over_a_symbol", 0, 0, graph, sizeof graph);
}

Test(passes, shape_values_kept_when_two_symbols_need_minus_one) {
    CHECK_BATCHES("shape_values_two_unknowns", 0);
    EXPECT_OPS("Shape", 2);
    EXPECT_OPS("Concat", 1);
}

Test(passes, shape_values_kept_for_a_data_dependent_dim) {
    CHECK_BATCHES("shape_values_data_dependent", 0);
    EXPECT_OPS("Shape", 1);
    EXPECT_OPS("Concat", 1);
}

Test(passes, shape_values_kept_across_inputs_with_the_same_dim_name) {
    CHECK_BATCHES("shape_values_two_inputs", 0);
    EXPECT_OPS("Shape", 1);
    EXPECT_OPS("Concat", 1);
}

/* ---- Conv + BatchNormalization ---- */

Test(passes, conv_bn_folded) {
    CHECK("conv_bn", 1e-5);
    EXPECT_OPS("BatchNormalization", 0);
    EXPECT_OPS("Conv", 1);
}

Test(passes, conv_bn_folded_without_conv_bias) {
    CHECK("conv_bn_nobias", 1e-5);
    EXPECT_OPS("BatchNormalization", 0);
}

Test(passes, conv_bn_not_folded_when_conv_output_is_a_graph_output) {
    CHECK("conv_bn_output", 0);
    EXPECT_OPS("BatchNormalization", 1);
}

Test(passes, conv_bn_not_folded_with_two_readers) {
    CHECK("conv_bn_two_readers", 0);
    EXPECT_OPS("BatchNormalization", 1);
}

Test(passes, conv_bn_not_folded_with_weights_from_an_input) {
    CHECK("conv_bn_weight_input", 0);
    EXPECT_OPS("BatchNormalization", 1);
}

Test(passes, conv_bn_not_folded_with_statistics_from_an_input) {
    CHECK("conv_bn_mean_input", 0);
    EXPECT_OPS("BatchNormalization", 1);
}

Test(passes, conv_bn_not_folded_with_overridable_weights) {
    CHECK("conv_bn_overridable", 0);
    EXPECT_OPS("BatchNormalization", 1);
}

/* ---- activation and residual fusion ---- */

Test(passes, conv_relu_fused) {
    CHECK("conv_relu", 0);
    EXPECT_OPS("ai.ember:FusedConv", 1);
    EXPECT_OPS("Relu", 0);
}

Test(passes, conv_leaky_relu_fused) {
    CHECK("conv_leaky", 0);
    EXPECT_OPS("ai.ember:FusedConv", 1);
    EXPECT_OPS("LeakyRelu", 0);
}

Test(passes, conv_residual_relu_fused) {
    CHECK("conv_residual_static", 0);
    EXPECT_OPS("ai.ember:FusedConv", 1);
    EXPECT_OPS("Add", 0);
    EXPECT_OPS("Relu", 0);
}

Test(passes, conv_residual_fused_activation_kept_when_sum_is_a_graph_output) {
    CHECK("conv_residual_static_output", 0);
    EXPECT_OPS("ai.ember:FusedConv", 1);
    EXPECT_OPS("Add", 0);
    EXPECT_OPS("Relu", 1);
}

Test(passes, conv_residual_not_fused_when_z_broadcasts) {
    CHECK("conv_residual_broadcast", 0);
    EXPECT_OPS("Add", 1);
}

/* Symbolic batch: Z's batch is provably the conv input's (the same value, or convs of it). */
Test(passes, conv_residual_with_symbolic_batch_fused) {
    CHECK("conv_residual", 0);
    EXPECT_OPS("ai.ember:FusedConv", 1);
    EXPECT_OPS("Add", 0);
    EXPECT_OPS("Relu", 0);
}

Test(passes, conv_residual_through_a_downsampling_branch_fused) {
    CHECK("conv_residual_branch", 0);
    /* Either conv may take the Add (both are its sole producer-side readers). */
    cr_expect_eq(count_op(graph, "ai.ember:FusedConv") + count_op(graph, "Conv"), 3, "%s", graph);
    cr_expect_geq(count_op(graph, "ai.ember:FusedConv"), 2, "%s", graph);
    EXPECT_OPS("Add", 0);
    EXPECT_OPS("Relu", 0);
}

Test(passes, conv_residual_not_fused_when_z_has_its_own_batch) {
    CHECK("conv_residual_other_input", 0);
    EXPECT_OPS("Add", 1);
}

Test(passes, gemm_relu_fused) {
    CHECK("gemm_relu", 0);
    EXPECT_OPS("ai.ember:FusedGemm", 1);
    EXPECT_OPS("Relu", 0);
}

Test(passes, gemm_clip_with_constant_bounds_fused) {
    CHECK("gemm_clip", 0);
    EXPECT_OPS("ai.ember:FusedGemm", 1);
    EXPECT_OPS("Clip", 0);
}

Test(passes, gemm_clip_with_bounds_from_an_input_not_fused) {
    CHECK("gemm_clip_input", 0);
    EXPECT_OPS("Gemm", 1);
    EXPECT_OPS("Clip", 1);
}

/* The fused epilogue (ops/linalg.c) and the Sigmoid kernel (ops/unary.c) may evaluate exp
 * differently: a few ulps apart. */
Test(passes, matmul_sigmoid_fused) {
    CHECK("matmul_sigmoid", 1e-6);
    EXPECT_OPS("ai.ember:FusedMatMul", 1);
    EXPECT_OPS("Sigmoid", 0);
}

Test(passes, activation_not_fused_when_its_input_is_a_graph_output) {
    CHECK("gemm_relu_output", 0);
    EXPECT_OPS("Gemm", 1);
    EXPECT_OPS("Relu", 1);
}

Test(passes, activation_not_fused_with_two_readers) {
    CHECK("gemm_relu_two_readers", 0);
    EXPECT_OPS("Gemm", 1);
    EXPECT_OPS("Relu", 1);
}

/* ---- MatMul + Add -> Gemm (the bias is added inside the GEMM: rounding may differ) ---- */

Test(passes, matmul_add_becomes_gemm) {
    CHECK("matmul_add", 1e-6);
    EXPECT_OPS("Gemm", 1);
    EXPECT_OPS("MatMul", 0);
    EXPECT_OPS("Add", 0);
}

Test(passes, matmul_add_becomes_gemm_with_bias_first) {
    CHECK("matmul_add_first", 1e-6);
    EXPECT_OPS("Gemm", 1);
    EXPECT_OPS("Add", 0);
}

Test(passes, matmul_add_kept_with_bias_from_an_input) {
    CHECK("matmul_add_bias_input", 0);
    EXPECT_OPS("MatMul", 1);
    EXPECT_OPS("Add", 1);
}

/* ---- N-D MatMul + bias -> FusedMatMul: the GEMM accumulates onto the bias, the same sum ---- */

Test(passes, matmul_add_rank_3_becomes_fused_matmul_with_bias) {
    CHECK("matmul_add_rank3", 0);
    EXPECT_OPS("Add", 0);
    EXPECT_OPS("MatMul", 0);
    EXPECT_OPS("Gemm", 0);
    EXPECT_OPS("ai.ember:FusedMatMul", 1);
}

Test(passes, matmul_bias_and_relu_fused_for_rank_3) {
    CHECK("matmul_bias_relu_rank3", 0);
    EXPECT_OPS("Add", 0);
    EXPECT_OPS("Relu", 0);
    EXPECT_OPS("ai.ember:FusedMatMul", 1);
}

Test(passes, matmul_bias_kept_when_bias_varies_along_rows) {
    CHECK("matmul_bias_rows_rank3", 0);
    EXPECT_OPS("MatMul", 1);
    EXPECT_OPS("Add", 1);
}

Test(passes, matmul_bias_kept_when_bias_widens_the_product) {
    CHECK("matmul_bias_widening_rank3", 0);
    EXPECT_OPS("MatMul", 1);
    EXPECT_OPS("Add", 1);
}

Test(passes, matmul_bias_kept_when_product_is_a_graph_output) {
    CHECK("matmul_bias_product_output", 0);
    EXPECT_OPS("MatMul", 1);
    EXPECT_OPS("Add", 1);
}

/* ---- decomposed LayerNorm -> LayerNormalization (statistics in double: rounding differs) ---- */

Test(passes, layer_norm_fused) {
    CHECK("layer_norm", 1e-5);
    EXPECT_OPS("ReduceMean", 0);
    EXPECT_OPS("Sqrt", 0);
    EXPECT_OPS("Div", 0);
    EXPECT_OPS("Mul", 0);
    /* ... and with the residual Add in front. */
    EXPECT_OPS("ai.ember:AddLayerNormalization", 1);
    EXPECT_OPS("LayerNormalization", 0);
    EXPECT_OPS("Add", 0);
}

/* ---- Add + LayerNormalization -> ai.ember AddLayerNormalization (exact) ---- */

Test(passes, add_layer_norm_fused) {
    CHECK("add_layer_norm", 0);
    EXPECT_OPS("ai.ember:AddLayerNormalization", 1);
    EXPECT_OPS("Add", 0);
}

Test(passes, add_layer_norm_wide_rows_exact) {
    CHECK("add_layer_norm_wide", 0);
    EXPECT_OPS("ai.ember:AddLayerNormalization", 1);
}

Test(passes, add_layer_norm_with_broadcast_fused) {
    CHECK("add_layer_norm_broadcast", 0);
    EXPECT_OPS("ai.ember:AddLayerNormalization", 1);
}

Test(passes, add_layer_norm_kept_when_sum_is_read_elsewhere) {
    CHECK("add_layer_norm_sum_read", 0);
    EXPECT_OPS("ai.ember:AddLayerNormalization", 0);
    EXPECT_OPS("LayerNormalization", 1);
}

Test(passes, add_layer_norm_kept_when_mean_is_an_output) {
    CHECK("add_layer_norm_mean_output", 0);
    EXPECT_OPS("ai.ember:AddLayerNormalization", 0);
}

Test(passes, add_layer_norm_kept_over_two_axes) {
    CHECK("add_layer_norm_two_axes", 0);
    EXPECT_OPS("ai.ember:AddLayerNormalization", 0);
}

Test(passes, layer_norm_without_beta_fused) {
    CHECK("layer_norm_no_beta", 1e-5);
    EXPECT_OPS("LayerNormalization", 1);
    EXPECT_OPS("Mul", 0);
}

Test(passes, layer_norm_with_axes_input_fused) {
    CHECK("layer_norm_opset18", 1e-5);
    EXPECT_OPS("LayerNormalization", 1);
    EXPECT_OPS("Add", 0);
}

Test(passes, layer_norm_over_a_middle_axis_kept) {
    CHECK("layer_norm_middle_axis", 0);
    EXPECT_OPS("LayerNormalization", 0);
}

Test(passes, layer_norm_with_a_cube_kept) {
    CHECK("layer_norm_cube", 0);
    EXPECT_OPS("LayerNormalization", 0);
}

Test(passes, layer_norm_kept_when_centred_value_is_read_elsewhere) {
    CHECK("layer_norm_centred_read_twice", 0);
    EXPECT_OPS("LayerNormalization", 0);
}

Test(passes, layer_norm_without_affine_kept) {
    CHECK("layer_norm_no_affine", 0);
    EXPECT_OPS("LayerNormalization", 0);
}

/* ---- self-attention -> ai.ember FusedAttention (scale inside the GEMM: rounding differs) ---- */

Test(passes, attention_fused) {
    CHECK("attention_static", 1e-5);
    EXPECT_OPS("ai.ember:FusedAttention", 1);
    EXPECT_OPS("Softmax", 0);
    EXPECT_OPS("MatMul", 0);
    EXPECT_OPS("Transpose", 0);
    EXPECT_OPS("Slice", 0);
    EXPECT_OPS("Reshape", 0);
}

Test(passes, attention_with_symbolic_batch_fused) {
    CHECK("attention_symbolic", 1e-5);
    EXPECT_OPS("ai.ember:FusedAttention", 1);
    EXPECT_OPS("Slice", 0);
    EXPECT_OPS("Softmax", 0);
}

Test(passes, attention_with_odd_sizes_fused) {
    CHECK("attention_odd_sizes", 1e-5);
    EXPECT_OPS("ai.ember:FusedAttention", 1);
    EXPECT_OPS("Softmax", 0);
}

Test(passes, attention_kept_when_scores_are_a_graph_output) {
    CHECK("attention_scores_output", 0);
    EXPECT_OPS("ai.ember:FusedAttention", 0);
    EXPECT_OPS("Softmax", 1);
}

Test(passes, attention_kept_for_softmax_over_another_axis) {
    CHECK("attention_softmax_axis1", 0);
    EXPECT_OPS("ai.ember:FusedAttention", 0);
}

/* Reshapes that mix positions into the batch: fused too, through copies of the slices. */
Test(passes, attention_with_reshapes_that_do_not_split_heads_fused) {
    CHECK("attention_not_heads", 1e-5);
    EXPECT_OPS("ai.ember:FusedAttention", 1);
    EXPECT_OPS("Slice", 0);
}

Test(passes, layer_norm_with_a_2d_gamma_kept) {
    CHECK("layer_norm_gamma_2d", 0);
    EXPECT_OPS("LayerNormalization", 0);
}

Test(passes, matmul_add_kept_when_product_is_a_graph_output) {
    CHECK("matmul_add_output", 0);
    EXPECT_OPS("MatMul", 1);
    EXPECT_OPS("Add", 1);
}

Test(passes, matmul_add_kept_for_a_column_bias) {
    CHECK("matmul_add_column", 0);
    EXPECT_OPS("Add", 1);
}

/* The optimized model gives the same bits on 3 threads as on 1 (kernels that cut their work
 * by thread count must not change a result). */
static void expect_same_on_3_threads(const char *model, int64_t batch) {
    ember_model *m = load(model);
    inputs in;
    make_inputs(m, &in, batch);
    result one, three;
    run_level_threads(m, EMBER_OPT_ALL, 1, &in, &one);
    run_level_threads(m, EMBER_OPT_ALL, 3, &in, &three);
    expect_same(&three, &one, 0, model);
    free_result(&one);
    free_result(&three);
    free_inputs(&in);
    ember_model_free(m);
}

/* ---- inverted-residual blocks -> FusedMBConv (registered on AVX-512 CPUs only) ---- */

/* The fused block computes what the three convolutions compute, bit for bit (their large
 * depthwise planes run the same row kernel), at batch 1 and 3, and the same bits on 3 threads
 * as on 1 (the bands of rows differ). */
static void check_mbconv_tol(const char *model, int64_t batch, int fused, double tol) {
    char graph[8192];
    check_model_at(model, tol, batch, graph, sizeof graph);
    if (!em_registry_find("ai.ember", "FusedMBConv", 1)) {
        cr_log_warn("FusedMBConv is not registered on this CPU: only the unfused path checked");
        return;
    }
    EXPECT_OPS("ai.ember:FusedMBConv", fused);
    expect_same_on_3_threads(model, batch);
}

static void check_mbconv(const char *model, int64_t batch, int fused) {
    check_mbconv_tol(model, batch, fused, 0);
}

Test(passes, mbconv_with_residual_fused) {
    check_mbconv("mbconv_residual", 1, 1);
    check_mbconv("mbconv_residual", 3, 1);
    char graph[8192];
    check_model("mbconv_residual", 0, graph, sizeof graph);
    if (em_registry_find("ai.ember", "FusedMBConv", 1)) {
        EXPECT_OPS("Conv", 0);
        EXPECT_OPS("ai.ember:FusedConv", 0);
        EXPECT_OPS("Clip", 0);
        EXPECT_OPS("Add", 0);
    }
}

Test(passes, mbconv_stride2_fused) {
    check_mbconv("mbconv_stride2", 1, 1);
}

Test(passes, mbconv_asymmetric_pads_fused) {
    check_mbconv("mbconv_asym_pads", 1, 1);
}

Test(passes, mbconv_without_expansion_fused) {
    check_mbconv("mbconv_no_expand", 1, 1);
    check_mbconv("mbconv_no_expand", 2, 1);
}

/* Activations applied after the stored tile (not in registers). */
Test(passes, mbconv_with_sigmoid_and_tanh_fused) {
    check_mbconv("mbconv_sigmoid", 2, 1);
}

/* Rows too wide for the vector depthwise kernel: the fused block's portable loop, which sums
 * the taps in another order than the unfused conv's. */
Test(passes, mbconv_with_rows_wider_than_the_vector_kernel_fused) {
    check_mbconv_tol("mbconv_wide_rows", 1, 1, 1e-5);
}

Test(passes, mbconv_small_planes_not_fused) {
    check_mbconv("mbconv_small", 2, 0);
}

/* 14x14 planes: the unfused depthwise conv runs them flat, in another order of the taps. */
Test(passes, mbconv_14x14_stride1_fused_stride2_not) {
    check_mbconv_tol("mbconv_14_stride1", 2, 1, 1e-5);
    check_mbconv("mbconv_14_stride2", 1, 0);
}

/* The expansion is read twice (also a graph output): it stays a conv of its own. */
Test(passes, mbconv_expansion_read_twice_kept) {
    check_mbconv("mbconv_expansion_read_twice", 1, 1);
    char graph[8192];
    check_model("mbconv_expansion_read_twice", 0, graph, sizeof graph);
    if (em_registry_find("ai.ember", "FusedMBConv", 1)) EXPECT_OPS("Conv", 1);
}

/* FusedMBConv in a model file with too few inputs, or W2 empty: refused at load (unsupported
 * where it is not registered). */
Test(passes, mbconv_arity_checked_at_load) {
    const bool registered = em_registry_find("ai.ember", "FusedMBConv", 1) != NULL;
    const char *models[] = {"mbconv_one_input", "mbconv_w2_empty"};
    const char *want[] = {"takes 7 to 8", "leaves input 3 empty"};
    for (int i = 0; i < 2; i++) {
        ember_model *m = NULL;
        ember_error err = {0};
        ember_status st = ember_model_load_file(model_path(models[i]), NULL, &m, &err);
        cr_expect_eq(st, registered ? EMBER_ERR_INVALID_MODEL : EMBER_ERR_UNSUPPORTED, "%s: %s",
                     models[i], err.message);
        if (registered)
            cr_expect(strstr(err.message, want[i]) != NULL, "%s: %s", models[i], err.message);
        ember_model_free(m);
    }
}

/* ---- the RGB input layer + MaxPool -> FusedConv with a pool (same bits) ---- */

/* Fused (or not, fused == 0) and bit for bit what Conv, activation and MaxPool compute, at batch
 * 1 and 3, and on 3 threads as on 1. */
static void check_conv_pool(const char *model, int fused) {
    for (int64_t batch = 1; batch <= 3; batch += 2) {
        char graph[8192];
        check_model_at(model, 0, batch, graph, sizeof graph);
        EXPECT_OPS("MaxPool", fused ? 0 : 1);
        EXPECT_OPS("ai.ember:FusedConv", 1);
        expect_same_on_3_threads(model, batch);
    }
}

Test(passes, conv_maxpool_fused_squeezenet_stem) {
    check_conv_pool("conv_pool_squeezenet", 1); /* ceil_mode that rounds to the same size */
}

Test(passes, conv_maxpool_fused_resnet_stem) {
    check_conv_pool("conv_pool_resnet", 1); /* 7x7 stride 2, pool padded */
}

Test(passes, conv_maxpool_fused_2x2_pool) {
    check_conv_pool("conv_pool_k2", 1);
}

/* Row stride 1, column stride 3, a 3x2 window: the pool's portable loop. */
Test(passes, conv_maxpool_fused_odd_strides) {
    check_conv_pool("conv_pool_odd_strides", 1);
}

Test(passes, conv_maxpool_kept_when_ceil_mode_adds_a_window) {
    check_conv_pool("conv_pool_ceil_grows", 0);
}

Test(passes, conv_maxpool_kept_when_indices_are_read) {
    char graph[8192];
    check_model("conv_pool_indices", 0, graph, sizeof graph);
    EXPECT_OPS("MaxPool", 1);
}

Test(passes, conv_maxpool_kept_for_eight_input_channels) {
    check_conv_pool("conv_pool_wide_input", 0);
}

/* A pooled FusedConv whose conv is not the direct kernel's: the whole conv output, then the
 * pool; the same bits as Conv, Relu and MaxPool. */
Test(passes, pooled_fused_conv_off_the_direct_kernel) {
    ember_model *fused = load("fused_conv_pool_by_hand"), *plain = load("conv_pool_wide_input");
    inputs in;
    make_inputs(plain, &in, 2);
    result a, b;
    run_level_threads(fused, EMBER_OPT_NONE, 2, &in, &a);
    run_level_threads(plain, EMBER_OPT_NONE, 2, &in, &b);
    expect_same(&a, &b, 0, "fused_conv_pool_by_hand");
    free_result(&a);
    free_result(&b);
    free_inputs(&in);
    ember_model_free(fused);
    ember_model_free(plain);
}
