/* Concat placement (runtime/planner.c, executor.c): producers of Concat inputs write straight
 * into the Concat's output when that is safe. Every model runs several times with the
 * placement (EMBER_OPT_BASIC) and without it (EMBER_OPT_NONE, the graph as written): outputs
 * must be equal, and the count of placed inputs must be what the plan allows. Models from
 * tests/fixtures/make_concat_models.py. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

static const char *model_path(const char *name) {
    static char buf[4096];
    const char *dir = getenv("EMBER_CONCAT_MODELS");
    snprintf(buf, sizeof buf, "%s/%s.onnx", dir ? dir : "build/tests/concat_models", name);
    return buf;
}

static ember_session *open_session(ember_model *m, ember_opt_level level, int threads) {
    ember_error err = {0};
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = threads;
    o.opt_level = level;
    ember_session *s = NULL;
    cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
    return s;
}

static ember_tensor *floats(const int64_t *dims, int rank, float seed) {
    ember_tensor *t;
    ember_error err;
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, dims, rank, &t, &err), EMBER_OK);
    float *p = ember_tensor_data(t);
    for (int64_t i = 0; i < ember_tensor_element_count(t); i++)
        p[i] = sinf(seed + (float)i * 0.37f);
    return t;
}

/* One run of both sessions on the same inputs; outputs must agree. */
static void run_both(ember_session *placed, ember_session *plain, const char *const *in_names,
                     const ember_tensor *const *ins, int n_in, const char *const *out_names,
                     int n_out) {
    ember_tensor *a[4], *b[4];
    ember_error err;
    cr_assert_eq(ember_session_run(placed, in_names, ins, (size_t)n_in, out_names, (size_t)n_out,
                                   a, &err),
                 EMBER_OK, "%s", err.message);
    cr_assert_eq(ember_session_run(plain, in_names, ins, (size_t)n_in, out_names, (size_t)n_out,
                                   b, &err),
                 EMBER_OK, "%s", err.message);
    for (int k = 0; k < n_out; k++) {
        cr_assert_eq(ember_tensor_element_count(a[k]), ember_tensor_element_count(b[k]));
        const float *x = ember_tensor_const_data(a[k]), *y = ember_tensor_const_data(b[k]);
        for (int64_t i = 0; i < ember_tensor_element_count(a[k]); i++)
            cr_assert(fabsf(x[i] - y[i]) <= 1e-5f * (1.0f + fabsf(y[i])),
                      "output %d [%lld]: %g vs %g", k, (long long)i, x[i], y[i]);
        ember_tensor_free(a[k]);
        ember_tensor_free(b[k]);
    }
}

/* Runs model `name` (input x of batch `batches[r]`, 4 channels, side `side`) and checks the
 * placed count after every run: runs after the first with the same shapes place `expect`. */
static void check_model(const char *name, int64_t side, const int64_t *batches, int n_runs,
                        const char *const *outs, int n_out, int expect, int threads) {
    ember_model *m;
    ember_error err = {0};
    cr_assert_eq(ember_model_load_file(model_path(name), NULL, &m, &err), EMBER_OK, "%s",
                 err.message);
    ember_session *placed = open_session(m, EMBER_OPT_BASIC, threads);
    ember_session *plain = open_session(m, EMBER_OPT_NONE, threads);
    const char *in = "x";
    for (int r = 0; r < n_runs; r++) {
        ember_tensor *x = floats((int64_t[]){batches[r], 4, side, side}, 4, (float)r);
        run_both(placed, plain, &in, (const ember_tensor *const *)&x, 1, outs, n_out);
        bool repeat = r > 0 && batches[r] == batches[r - 1];
        int want = repeat && batches[r] == 1 ? expect : 0;
        cr_assert_eq(em_session_concat_placed(placed), want, "%s run %d (batch %lld)", name, r,
                     (long long)batches[r]);
        cr_assert_eq(em_session_concat_placed(plain), 0);
        ember_tensor_free(x);
    }
    ember_session_free(placed);
    ember_session_free(plain);
    ember_model_free(m);
}

static const char *const Y[] = {"y"};

/* Two convs (one through an in-place Relu) into one Concat: both placed from the second run
 * at batch 1; at batch 2 the channel slices are strided, so nothing is placed; switching
 * batch sizes falls back to copies for one run. */
Test(planner, concat_of_two_convs) {
    static const int64_t batches[] = {1, 1, 1, 2, 2, 1, 1, 2, 1};
    check_model("concat_convs", 6, batches, 9, Y, 1, 2, 1);
    check_model("concat_convs", 6, batches, 9, Y, 1, 2, 2);
}

Test(planner, graph_output_input_not_placed) {
    static const int64_t batches[] = {1, 1, 1};
    static const char *const outs[] = {"y", "a"};
    check_model("concat_graph_output", 6, batches, 3, outs, 2, 1, 1);
}

/* Concat(a, a, Relu(a)): `a` is read three times and stays; the Relu's output is placed. */
Test(planner, input_read_twice_not_placed) {
    static const int64_t batches[] = {1, 1, 1};
    check_model("concat_twice", 6, batches, 3, Y, 1, 1, 1);
}

Test(planner, constant_input_not_placed) {
    static const int64_t batches[] = {1, 1, 1};
    check_model("concat_constant", 6, batches, 3, Y, 1, 1, 1);
}

Test(planner, view_producers_not_placed) {
    static const int64_t batches[] = {1, 1, 1};
    check_model("concat_views", 6, batches, 3, Y, 1, 0, 1);
}

Test(planner, unaligned_slice_not_placed) {
    static const int64_t batches[] = {1, 1, 1, 3, 3};
    check_model("concat_unaligned", 5, batches, 5, Y, 1, 1, 1);
}

/* The Concat's other input is a graph input whose channel count changes between runs: the
 * conv's output was placed by the prediction of the last run's shapes and must then be
 * copied from that early view into a new output. */
Test(planner, prediction_missed_falls_back_to_copy) {
    ember_model *m;
    ember_error err = {0};
    cr_assert_eq(ember_model_load_file(model_path("concat_input"), NULL, &m, &err), EMBER_OK,
                 "%s", err.message);
    ember_session *placed = open_session(m, EMBER_OPT_BASIC, 1);
    ember_session *plain = open_session(m, EMBER_OPT_NONE, 1);
    static const int64_t channels[] = {3, 3, 5, 5, 1, 3, 3};
    const char *names[] = {"x", "z"};
    for (int r = 0; r < 7; r++) {
        ember_tensor *x = floats((int64_t[]){1, 4, 6, 6}, 4, (float)r);
        ember_tensor *z = floats((int64_t[]){1, channels[r], 6, 6}, 4, 10.0f + (float)r);
        const ember_tensor *ins[] = {x, z};
        run_both(placed, plain, names, ins, 2, Y, 1);
        /* The conv's shape never changes, so it is placed from the second run on, even when
         * the Concat then misses the prediction and copies it. */
        cr_assert_eq(em_session_concat_placed(placed), r > 0 ? 1 : 0, "run %d", r);
        ember_tensor_free(x);
        ember_tensor_free(z);
    }
    ember_session_free(placed);
    ember_session_free(plain);
    ember_model_free(m);
}
