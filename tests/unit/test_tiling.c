/* Batch tiling (runtime/plan_tiling.c, executor.c): the batch-separable front of a graph runs a
 * few samples at a time. Small CNNs built in memory run with tiling on and off at several
 * batches and chunk sizes (the session's tile_bytes is set to whole multiples of the front's
 * per-sample size, so chunks of 1 and of 3 samples, even and uneven); outputs must be bit
 * identical, the plan must cut where expected and the chunk count must be what was asked. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_builder.h"
#include "onnx.pb-c.h"
#include "session.h"

/* A float initializer filled with a deterministic pattern scaled by `scale`. */
static Onnx__TensorProto *weight(builder *b, const char *name, int rank, const int64_t *dims,
                                 float scale) {
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    float *v = b_alloc(b, sizeof(float) * n);
    for (size_t i = 0; i < n; i++) v[i] = scale * sinf(0.7f * (float)i + scale);
    return init_f32(b, name, rank, dims, v);
}

static Onnx__TensorProto *int64s(builder *b, const char *name, int n, const int64_t *v) {
    return init_raw(b, name, EMBER_INT64, 1, (int64_t[]){n}, v, sizeof(int64_t) * (size_t)n);
}

static ember_model *load(builder *b, Onnx__NodeProto **nodes, Onnx__ValueInfoProto **inputs,
                         Onnx__ValueInfoProto **outputs, Onnx__TensorProto **inits) {
    ember_model *m = NULL;
    ember_error err = {0};
    ember_status st =
        load_model(b, graph(b, "tiling", nodes, inputs, outputs, inits), 17, &m, &err);
    b_free(b);
    cr_assert_eq(st, EMBER_OK, "%s", err.message);
    return m;
}

/* ---- the models: input x [N, 3, 12, 12] ---- */

#define SIDE 12

static Onnx__ValueInfoProto *x_info(builder *b) {
    return vi(b, "x", EMBER_FLOAT, 4, (int64_t[]){-1, 3, SIDE, SIDE});
}

static Onnx__ValueInfoProto *out_info(builder *b, const char *name) {
    return vi(b, name, EMBER_FLOAT, -1, NULL);
}

static Onnx__NodeProto *conv3x3(builder *b, const char *x, const char *w, const char *bias,
                                const char *y) {
    return node(b, "Conv", (const char *[]){x, w, bias, NULL}, STRS(y),
                ATTRS(a_ints(b, "pads", INTS(1, 1, 1, 1)), a_ints(b, "kernel_shape", INTS(3, 3))));
}

/* Conv -> Relu -> Conv -> Add(residual) -> Relu, then Concat on axis 0 of the block's input and
 * output: the Concat mixes samples, so two values cross the cut. */
static ember_model *residual_model(void) {
    builder b = {0};
    return load(&b,
                NODES(conv3x3(&b, "x", "w1", "b1", "c1"),
                      node(&b, "Relu", STRS("c1"), STRS("a"), NO_ATTRS),
                      conv3x3(&b, "a", "w2", "b2", "c2"),
                      node(&b, "Add", STRS("c2", "a"), STRS("s"), NO_ATTRS),
                      node(&b, "Relu", STRS("s"), STRS("c"), NO_ATTRS),
                      node(&b, "Concat", STRS("c", "a"), STRS("y"), ATTRS(a_int(&b, "axis", 0)))),
                VIS(x_info(&b)), VIS(out_info(&b, "y")),
                INITS(weight(&b, "w1", 4, (int64_t[]){8, 3, 3, 3}, 0.5f),
                      weight(&b, "b1", 1, (int64_t[]){8}, 0.1f),
                      weight(&b, "w2", 4, (int64_t[]){8, 8, 3, 3}, 0.25f),
                      weight(&b, "b2", 1, (int64_t[]){8}, 0.2f)));
}

/* A graph output inside the front (a), then pooling and a per-channel scale, then a Reshape
 * (not in the allowlist) ends the front; the Relu after it runs on the whole batch. */
static ember_model *inner_output_model(void) {
    builder b = {0};
    return load(
        &b,
        NODES(
            conv3x3(&b, "x", "w1", "b1", "c1"), node(&b, "Relu", STRS("c1"), STRS("a"), NO_ATTRS),
            node(&b, "AveragePool", STRS("a"), STRS("p"),
                 ATTRS(a_ints(&b, "kernel_shape", INTS(2, 2)), a_ints(&b, "strides", INTS(2, 2)))),
            node(&b, "Mul", STRS("p", "scale"), STRS("m"), NO_ATTRS),
            node(&b, "Reshape", STRS("m", "shape"), STRS("r"), NO_ATTRS),
            node(&b, "Relu", STRS("r"), STRS("y"), NO_ATTRS)),
        VIS(x_info(&b)), VIS(out_info(&b, "y"), out_info(&b, "a"), out_info(&b, "m")),
        INITS(weight(&b, "w1", 4, (int64_t[]){8, 3, 3, 3}, 0.5f),
              weight(&b, "b1", 1, (int64_t[]){8}, 0.1f),
              weight(&b, "scale", 4, (int64_t[]){1, 8, 1, 1}, 2.0f),
              int64s(&b, "shape", 2, (int64_t[]){-1, 8 * (SIDE / 2) * (SIDE / 2)})));
}

/* Softmax over axis 1 keeps samples apart, over axis 0 it does not: the front ends there, and
 * the Add after it reads a value from inside the front. */
static ember_model *softmax_model(void) {
    builder b = {0};
    return load(&b,
                NODES(conv3x3(&b, "x", "w1", "b1", "c1"),
                      node(&b, "Relu", STRS("c1"), STRS("a"), NO_ATTRS),
                      node(&b, "GlobalAveragePool", STRS("a"), STRS("g"), NO_ATTRS),
                      node(&b, "Flatten", STRS("g"), STRS("f"), NO_ATTRS),
                      node(&b, "Softmax", STRS("f"), STRS("s1"), ATTRS(a_int(&b, "axis", 1))),
                      node(&b, "Softmax", STRS("s1"), STRS("s0"), ATTRS(a_int(&b, "axis", 0))),
                      node(&b, "Add", STRS("s0", "f"), STRS("y"), NO_ATTRS)),
                VIS(x_info(&b)), VIS(out_info(&b, "y")),
                INITS(weight(&b, "w1", 4, (int64_t[]){8, 3, 3, 3}, 0.5f),
                      weight(&b, "b1", 1, (int64_t[]){8}, 0.1f)));
}

/* Conv -> GlobalAveragePool -> Flatten -> Gemm head with `classes` outputs. Up to 7 classes the
 * Gemm's weights (9 floats per class) stay within 4 times its activations per sample (8 inputs
 * and `classes` outputs), so the whole graph is the front; with more the front ends before the
 * Gemm. With `weight_input`, the conv's weight is also a graph input (an initializer the caller
 * may override). */
static ember_model *gemm_model(int64_t classes, bool weight_input) {
    builder b = {0};
    Onnx__ValueInfoProto *w_in = vi(&b, "w1", EMBER_FLOAT, 4, (int64_t[]){8, 3, 3, 3});
    return load(
        &b,
        NODES(conv3x3(&b, "x", "w1", "b1", "c1"), node(&b, "Relu", STRS("c1"), STRS("a"), NO_ATTRS),
              node(&b, "GlobalAveragePool", STRS("a"), STRS("g"), NO_ATTRS),
              node(&b, "Flatten", STRS("g"), STRS("f"), NO_ATTRS),
              node(&b, "Gemm", STRS("f", "wg", "bg"), STRS("y"), ATTRS(a_int(&b, "transB", 1)))),
        weight_input ? VIS(x_info(&b), w_in) : VIS(x_info(&b)), VIS(out_info(&b, "y")),
        INITS(weight(&b, "w1", 4, (int64_t[]){8, 3, 3, 3}, 0.5f),
              weight(&b, "b1", 1, (int64_t[]){8}, 0.1f),
              weight(&b, "wg", 2, (int64_t[]){classes, 8}, 0.3f),
              weight(&b, "bg", 1, (int64_t[]){classes}, 0.05f)));
}

/* A SqueezeNet fire module: squeeze, two expands concatenated on channels, then MaxPool. With
 * chunks of one sample the expands write straight into the Concat's output. */
static ember_model *fire_model(void) {
    builder b = {0};
    return load(
        &b,
        NODES(
            conv3x3(&b, "x", "w1", "b1", "c1"), node(&b, "Relu", STRS("c1"), STRS("sq"), NO_ATTRS),
            node(&b, "Conv", STRS("sq", "we1", "be1"), STRS("ce1"), NO_ATTRS),
            node(&b, "Relu", STRS("ce1"), STRS("e1"), NO_ATTRS),
            conv3x3(&b, "sq", "we3", "be3", "ce3"),
            node(&b, "Relu", STRS("ce3"), STRS("e3"), NO_ATTRS),
            node(&b, "Concat", STRS("e1", "e3"), STRS("cat"), ATTRS(a_int(&b, "axis", 1))),
            node(&b, "MaxPool", STRS("cat"), STRS("y"),
                 ATTRS(a_ints(&b, "kernel_shape", INTS(2, 2)), a_ints(&b, "strides", INTS(2, 2))))),
        VIS(x_info(&b)), VIS(out_info(&b, "y")),
        INITS(weight(&b, "w1", 4, (int64_t[]){4, 3, 3, 3}, 0.5f),
              weight(&b, "b1", 1, (int64_t[]){4}, 0.1f),
              weight(&b, "we1", 4, (int64_t[]){8, 4, 1, 1}, 0.4f),
              weight(&b, "be1", 1, (int64_t[]){8}, 0.2f),
              weight(&b, "we3", 4, (int64_t[]){8, 4, 3, 3}, 0.3f),
              weight(&b, "be3", 1, (int64_t[]){8}, 0.15f)));
}

/* ---- running ---- */

static ember_session *open_session(ember_model *m, bool tiling, int threads) {
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = threads;
    o.batch_tiling = tiling;
    ember_session *s = NULL;
    ember_error err = {0};
    cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
    return s;
}

/* x of `batch` samples of c x side x side. */
static ember_tensor *input_x_of(int64_t batch, int64_t c, int64_t side, float seed) {
    ember_tensor *t;
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, (int64_t[]){batch, c, side, side}, 4, &t, NULL),
                 EMBER_OK);
    float *p = ember_tensor_data(t);
    for (int64_t i = 0; i < ember_tensor_element_count(t); i++)
        p[i] = sinf(seed + 0.37f * (float)i) + 0.25f * cosf(0.011f * (float)i);
    return t;
}

static ember_tensor *input_x(int64_t batch, float seed) {
    return input_x_of(batch, 3, SIDE, seed);
}

/* x for model m (input x of static channels and square planes). */
static ember_tensor *model_input_x(const ember_model *m, int64_t batch, float seed) {
    ember_value_info info;
    cr_assert_eq(ember_model_input(m, 0, &info), EMBER_OK);
    return input_x_of(batch, info.dims[1], info.dims[2], seed);
}

/* Run both sessions on the same inputs: every output must be identical, bit for bit. */
static void run_both(ember_session *on, ember_session *off, const char **in_names,
                     ember_tensor **ins, int n_in, const char **outs, int n_out, const char *what) {
    ember_tensor *a[4], *b[4];
    ember_error err = {0};
    cr_assert_eq(ember_session_run(on, in_names, (const ember_tensor *const *)ins, (size_t)n_in,
                                   outs, (size_t)n_out, a, &err),
                 EMBER_OK, "%s: %s", what, err.message);
    cr_assert_eq(ember_session_run(off, in_names, (const ember_tensor *const *)ins, (size_t)n_in,
                                   outs, (size_t)n_out, b, &err),
                 EMBER_OK, "%s: %s", what, err.message);
    for (int k = 0; k < n_out; k++) {
        cr_assert_eq(ember_tensor_rank(a[k]), ember_tensor_rank(b[k]), "%s", what);
        for (int d = 0; d < ember_tensor_rank(a[k]); d++)
            cr_assert_eq(ember_tensor_dims(a[k])[d], ember_tensor_dims(b[k])[d], "%s: %s dim %d",
                         what, outs[k], d);
        size_t bytes = ember_tensor_byte_size(a[k]);
        cr_assert_eq(bytes, ember_tensor_byte_size(b[k]));
        cr_assert(memcmp(ember_tensor_const_data(a[k]), ember_tensor_const_data(b[k]), bytes) == 0,
                  "%s: output %s differs with tiling", what, outs[k]);
        ember_tensor_free(a[k]);
        ember_tensor_free(b[k]);
    }
}

static const int64_t BATCHES[] = {1, 2, 3, 8, 13, 8, 2, 13};

/* Every batch of BATCHES, twice each, with chunks of `per` samples per thread. */
static void check_model(ember_model *m, const char **outs, int n_out, int per, int threads) {
    ember_session *on = open_session(m, true, threads);
    ember_session *off = open_session(m, false, threads);
    cr_assert_gt(on->plan.tile_cut, 0);
    cr_assert_eq(off->plan.tile_cut, 0);
    on->tile_bytes = (uint64_t)per * (uint64_t)on->plan.tile_sample_bytes;
    const char *in = "x";
    for (size_t r = 0; r < sizeof BATCHES / sizeof BATCHES[0]; r++) {
        int64_t batch = BATCHES[r];
        /* At several threads with at least one chunk of `per` samples per thread, each thread
         * runs its own chunks; otherwise a chunk holds `per` samples per thread. */
        int64_t lane_chunks = batch >= 2 && per < batch ? (batch + per - 1) / per : 1;
        int64_t size = (int64_t)per * threads;
        int64_t chunks = batch >= 2 && size < batch ? (batch + size - 1) / size : 0;
        if (threads > 1 && lane_chunks >= threads) chunks = lane_chunks;
        for (int rep = 0; rep < 2; rep++) {
            char what[128];
            snprintf(what, sizeof what, "batch %lld, %d per chunk, %d threads, run %d",
                     (long long)batch, per, threads, rep);
            ember_tensor *x = model_input_x(m, batch, (float)(r * 2 + (size_t)rep));
            run_both(on, off, &in, &x, 1, outs, n_out, what);
            ember_tensor_free(x);
            cr_assert_eq(em_session_tile_chunks(on), chunks, "%s", what);
            cr_assert_eq(em_session_tile_chunks(off), 0, "%s", what);
        }
    }
    ember_session_free(on);
    ember_session_free(off);
}

static void check_all(ember_model *m, const char **outs, int n_out) {
    check_model(m, outs, n_out, 1, 1);
    check_model(m, outs, n_out, 3, 1);
    check_model(m, outs, n_out, 1, 2); /* chunks of 2 */
    check_model(m, outs, n_out, 2, 2); /* chunks of 4 */
}

/* The plan of a session with tiling on: the cut and the values crossing it, by name. */
static void expect_plan(ember_model *m, int cut, const char **cross) {
    ember_session *s = open_session(m, true, 1);
    cr_assert_eq(s->plan.tile_cut, cut, "cut %d, expected %d", s->plan.tile_cut, cut);
    int n = count_null((const void *const *)cross);
    cr_assert_eq(s->plan.n_tile_cross, n);
    for (int i = 0; i < n; i++) {
        bool found = false;
        for (int k = 0; k < n; k++)
            found |= strcmp(s->graph->values[s->plan.tile_cross[k]].name, cross[i]) == 0;
        cr_assert(found, "'%s' does not cross the cut", cross[i]);
    }
    ember_session_free(s);
}

Test(tiling, residual_two_crossing_values) {
    ember_model *m = residual_model();
    /* FusedConv, FusedConv (residual + Relu) | Concat axis 0 */
    expect_plan(m, 2, STRS("a", "c"));
    check_all(m, STRS("y"), 1);
    ember_model_free(m);
}

/* An inverted-residual block large enough to become one FusedMBConv (x [N, 8, 48, 48], 64
 * expanded channels), then GlobalAveragePool and Flatten: all of it is the front. */
static ember_model *mbconv_model(void) {
    builder b = {0};
    return load(&b,
                NODES(node(&b, "Conv", STRS("x", "w1", "b1"), STRS("e"), NO_ATTRS),
                      node(&b, "Relu", STRS("e"), STRS("ea"), NO_ATTRS),
                      node(&b, "Conv", STRS("ea", "w2", "b2"), STRS("d"),
                           ATTRS(a_ints(&b, "pads", INTS(1, 1, 1, 1)),
                                 a_ints(&b, "kernel_shape", INTS(3, 3)), a_int(&b, "group", 64))),
                      node(&b, "Relu", STRS("d"), STRS("da"), NO_ATTRS),
                      node(&b, "Conv", STRS("da", "w3", "b3"), STRS("p"), NO_ATTRS),
                      node(&b, "Add", STRS("p", "x"), STRS("s"), NO_ATTRS),
                      node(&b, "GlobalAveragePool", STRS("s"), STRS("g"), NO_ATTRS),
                      node(&b, "Flatten", STRS("g"), STRS("y"), NO_ATTRS)),
                VIS(vi(&b, "x", EMBER_FLOAT, 4, (int64_t[]){-1, 8, 48, 48})),
                VIS(out_info(&b, "y")),
                INITS(weight(&b, "w1", 4, (int64_t[]){64, 8, 1, 1}, 0.5f),
                      weight(&b, "b1", 1, (int64_t[]){64}, 0.1f),
                      weight(&b, "w2", 4, (int64_t[]){64, 1, 3, 3}, 0.3f),
                      weight(&b, "b2", 1, (int64_t[]){64}, 0.2f),
                      weight(&b, "w3", 4, (int64_t[]){8, 64, 1, 1}, 0.25f),
                      weight(&b, "b3", 1, (int64_t[]){8}, 0.1f)));
}

Test(tiling, mbconv_block_in_front) {
    ember_model *m = mbconv_model();
    ember_session *s = open_session(m, true, 1);
    const bool fused = em_registry_find("ai.ember", "FusedMBConv", 1) != NULL;
    /* FusedMBConv (or its three convs), GlobalAveragePool, Flatten */
    cr_assert_eq(s->plan.tile_cut, fused ? 3 : 5, "cut %d", s->plan.tile_cut);
    ember_session_free(s);
    check_all(m, STRS("y"), 1);
    ember_model_free(m);
}

Test(tiling, graph_output_inside_front) {
    ember_model *m = inner_output_model();
    /* FusedConv, AveragePool, Mul | Reshape, Relu */
    expect_plan(m, 3, STRS("a", "m"));
    check_all(m, STRS("y", "a", "m"), 3);
    check_all(m, STRS("a"), 1);
    ember_model *again = inner_output_model();
    check_all(again, STRS("m", "y", "m"), 3); /* one output asked for twice */
    ember_model_free(again);
    ember_model_free(m);
}

Test(tiling, softmax_over_batch_ends_front) {
    ember_model *m = softmax_model();
    /* FusedConv, GlobalAveragePool, Flatten, Softmax axis 1 | Softmax axis 0, Add */
    expect_plan(m, 4, STRS("f", "s1"));
    check_all(m, STRS("y"), 1);
    ember_model_free(m);
}

Test(tiling, gemm_head_after_flatten) {
    ember_model *one = gemm_model(1, false);
    expect_plan(one, 4, STRS("y")); /* the whole graph */
    check_all(one, STRS("y"), 1);
    ember_model_free(one);
    ember_model *three = gemm_model(3, false);
    expect_plan(three, 4, STRS("y"));
    check_all(three, STRS("y"), 1);
    ember_model_free(three);
    ember_model *ten = gemm_model(10, false);
    expect_plan(ten, 3, STRS("f"));
    check_all(ten, STRS("y"), 1);
    ember_model_free(ten);
}

Test(tiling, concat_placement_inside_front) {
    ember_model *m = fire_model();
    expect_plan(m, 5, STRS("y")); /* FusedConv x 3, Concat, MaxPool */
    check_all(m, STRS("y"), 1);
    /* Chunks of one sample look like batch 1: both expands are placed in every chunk once the
     * Concat's shapes are known. */
    ember_session *on = open_session(m, true, 1);
    on->tile_bytes = (uint64_t)on->plan.tile_sample_bytes;
    const char *in = "x", *out = "y";
    for (int rep = 0; rep < 3; rep++) {
        ember_tensor *x = input_x(5, 1.0f), *y = NULL;
        ember_error err = {0};
        cr_assert_eq(
            ember_session_run(on, &in, (const ember_tensor *const *)&x, 1, &out, 1, &y, &err),
            EMBER_OK, "%s", err.message);
        cr_assert_eq(em_session_tile_chunks(on), 5);
        cr_assert_eq(em_session_concat_placed(on), rep == 0 ? 8 : 10, "run %d", rep);
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    ember_session_free(on);
    ember_model_free(m);
}

/* A weight that is also a graph input: tiled while the caller leaves it alone, run whole when
 * the caller supplies it (the plan took it for a constant). */
Test(tiling, overridden_weight_disables_tiling) {
    ember_model *m = gemm_model(1, true);
    ember_session *on = open_session(m, true, 1), *off = open_session(m, false, 1);
    cr_assert_eq(on->plan.n_tile_fixed, 1);
    on->tile_bytes = (uint64_t)on->plan.tile_sample_bytes;
    const char *names[] = {"x", "w1"}, *out = "y";
    ember_tensor *ins[2] = {input_x(6, 0.5f), NULL};
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, (int64_t[]){8, 3, 3, 3}, 4, &ins[1], NULL),
                 EMBER_OK);
    float *w = ember_tensor_data(ins[1]);
    for (int i = 0; i < 8 * 27; i++) w[i] = cosf(0.3f * (float)i);
    run_both(on, off, names, ins, 1, &out, 1, "default weight");
    cr_assert_eq(em_session_tile_chunks(on), 6);
    run_both(on, off, names, ins, 2, &out, 1, "weight supplied");
    cr_assert_eq(em_session_tile_chunks(on), 0);
    ember_tensor_free(ins[0]);
    ember_tensor_free(ins[1]);
    ember_session_free(on);
    ember_session_free(off);
    ember_model_free(m);
}

/* Runs with the same shapes reuse the arena as it is: the same blocks, nothing new. */
Test(tiling, arena_reused_across_runs) {
    ember_model *m = residual_model();
    ember_session *s = open_session(m, true, 2);
    s->tile_bytes = 3 * (uint64_t)s->plan.tile_sample_bytes;
    const char *in = "x", *out = "y";
    ember_tensor *x = input_x(13, 0.0f);
    uint64_t arena = 0;
    for (int r = 0; r < 4; r++) {
        ember_tensor *y = NULL;
        ember_error err = {0};
        cr_assert_eq(
            ember_session_run(s, &in, (const ember_tensor *const *)&x, 1, &out, 1, &y, &err),
            EMBER_OK, "%s", err.message);
        cr_assert_eq(em_session_tile_chunks(s), 5); /* chunks of 3 samples, per thread */
        ember_tensor_free(y);
        if (r == 0) arena = em_session_arena_bytes(s);
        cr_assert_eq(em_session_arena_bytes(s), arena, "run %d", r);
    }
    ember_tensor_free(x);
    ember_session_free(s);
    ember_model_free(m);
}

/* A memory limit met at every point of a tiled run (whole-batch buffers, a chunk, the rest of
 * the graph): the run fails cleanly, and the next run with room succeeds with the right result.
 * (Under valgrind or ASan this also checks that the failed runs leak nothing.) */
Test(tiling, memory_limit_at_every_step) {
    ember_model *m = inner_output_model();
    ember_session *on = open_session(m, true, 1), *off = open_session(m, false, 1);
    on->tile_bytes = 3 * (uint64_t)on->plan.tile_sample_bytes;
    const char *in = "x", *outs[] = {"y", "a", "m"};
    ember_tensor *x = input_x(8, 2.0f);
    int failed = 0, passed = 0;
    for (uint64_t limit = 4096; limit < 400000; limit += 4096) {
        on->memory_limit = limit;
        ember_tensor *y[3] = {NULL, NULL, NULL};
        ember_error err = {0};
        ember_status st =
            ember_session_run(on, &in, (const ember_tensor *const *)&x, 1, outs, 3, y, &err);
        if (st != EMBER_OK) {
            cr_assert_eq(st, EMBER_ERR_LIMIT, "%s", err.message);
            for (int k = 0; k < 3; k++) cr_assert_null(y[k]);
            failed++;
            continue;
        }
        for (int k = 0; k < 3; k++) ember_tensor_free(y[k]);
        passed++;
        on->memory_limit = 8ull << 30;
        run_both(on, off, &in, &x, 1, outs, 3, "after a failed run");
        cr_assert_eq(em_session_tile_chunks(on), 3);
    }
    cr_assert_gt(failed, 5);
    cr_assert_gt(passed, 5);
    ember_tensor_free(x);
    ember_session_free(on);
    ember_session_free(off);
    ember_model_free(m);
}

/* Several threads running one session at different batches: each run has its own context. */
typedef struct runner {
    ember_session *s;
    const ember_tensor *want[3]; /* per batch index */
    int failures;
} runner;

static const int64_t THREAD_BATCHES[] = {5, 8, 13};

static void *run_many(void *p) {
    runner *r = p;
    const char *in = "x", *out = "y";
    for (int i = 0; i < 30; i++) {
        int which = i % 3;
        ember_tensor *x = input_x(THREAD_BATCHES[which], 1.0f), *y = NULL;
        ember_error err;
        if (ember_session_run(r->s, &in, (const ember_tensor *const *)&x, 1, &out, 1, &y, &err) !=
                EMBER_OK ||
            ember_tensor_byte_size(y) != ember_tensor_byte_size(r->want[which]) ||
            memcmp(ember_tensor_const_data(y), ember_tensor_const_data(r->want[which]),
                   ember_tensor_byte_size(y)) != 0)
            r->failures++;
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    return NULL;
}

Test(tiling, concurrent_runs) {
    ember_model *m = residual_model();
    ember_session *on = open_session(m, true, 2), *off = open_session(m, false, 1);
    on->tile_bytes = 2 * (uint64_t)on->plan.tile_sample_bytes; /* chunks of 4 */
    ember_tensor *want[3];
    const char *in = "x", *out = "y";
    for (int i = 0; i < 3; i++) {
        ember_tensor *x = input_x(THREAD_BATCHES[i], 1.0f);
        ember_error err;
        cr_assert_eq(ember_session_run(off, &in, (const ember_tensor *const *)&x, 1, &out, 1,
                                       &want[i], &err),
                     EMBER_OK, "%s", err.message);
        ember_tensor_free(x);
    }
    runner r[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (runner){on, {want[0], want[1], want[2]}, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, run_many, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(r[i].failures, 0, "thread %d", i);
    }
    cr_assert_gt(em_session_tile_chunks(on), 1);
    for (int i = 0; i < 3; i++) ember_tensor_free(want[i]);
    ember_session_free(on);
    ember_session_free(off);
    ember_model_free(m);
}

/* Below EMBER_OPT_ALL, or with the option off, there is no plan. */
Test(tiling, off_by_option_and_level) {
    ember_model *m = residual_model();
    ember_session_options o;
    ember_session_options_init(&o);
    cr_assert_eq(o.batch_tiling, 1);
    ember_error err = {0};
    for (int level = EMBER_OPT_NONE; level <= EMBER_OPT_ALL; level++) {
        o.opt_level = (ember_opt_level)level;
        ember_session *s = NULL;
        cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
        cr_assert_eq(s->plan.tile_cut > 0, level == EMBER_OPT_ALL);
        ember_session_free(s);
    }
    ember_session_free(open_session(m, false, 1));
    ember_model_free(m);
}

/* The default chunk size: a front whose largest value is small runs whole at these batches. */
Test(tiling, small_front_runs_whole) {
    ember_model *m = residual_model();
    ember_session *s = open_session(m, true, 1);
    const char *in = "x", *out = "y";
    ember_tensor *x = input_x(13, 0.0f), *y = NULL;
    ember_error err = {0};
    cr_assert_eq(ember_session_run(s, &in, (const ember_tensor *const *)&x, 1, &out, 1, &y, &err),
                 EMBER_OK, "%s", err.message);
    cr_assert_eq(em_session_tile_chunks(s), 0);
    ember_tensor_free(x);
    ember_tensor_free(y);
    ember_session_free(s);
    ember_model_free(m);
}
