/* Core: loader (every tensor-data form, external data, malformed files), functions, planner,
 * executor and the public API including concurrent runs on one session. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "kernel.h"
#include "session.h"

/* Test-only op ai.test:Scale(x) = x * scale. */
static ember_status scale_infer(const em_node *n, void *st, em_tensor *const *in, em_tensor *out,
                                ember_error *err) {
    (void)n, (void)st;
    if (in[0]->dtype != EMBER_FLOAT) return em_fail(err, EMBER_ERR_UNSUPPORTED, "float only");
    em_tensor_set_shape(&out[0], EMBER_FLOAT, in[0]->dims, in[0]->rank);
    return EMBER_OK;
}
static ember_status scale_run(const em_node *n, void *st, em_tensor *const *in, em_tensor *out,
                              em_exec *ex, ember_error *err) {
    (void)st, (void)ex, (void)err;
    float s = em_attr_float(n, "scale", 1.0f);
    const float *x = in[0]->data;
    float *y = out[0].data;
    for (int64_t i = 0; i < em_numel(in[0]); i++) y[i] = x[i] * s;
    return EMBER_OK;
}
static const em_op k_scale = {"ai.test", "Scale", 1, 1, NULL, scale_infer, scale_run, NULL,
                              EM_OP_INPLACE_OK};

static char fixture[4096];
static const char *fx(const char *name) {
    const char *dir = getenv("EMBER_FIXTURES");
    snprintf(fixture, sizeof fixture, "%s/%s", dir ? dir : "tests/fixtures/out", name);
    return fixture;
}

static void setup(void) { em_registry_add(&k_scale, NULL); }

TestSuite(core, .init = setup);

static ember_model *load_ok(const char *name) {
    ember_model *m = NULL;
    ember_error err;
    ember_status st = ember_model_load_file(fx(name), NULL, &m, &err);
    cr_assert_eq(st, EMBER_OK, "%s: %s", name, err.message);
    return m;
}

static void expect_load_error(const char *name, ember_status code, const char *needle) {
    ember_model *m = NULL;
    ember_error err = {0};
    ember_status st = ember_model_load_file(fx(name), NULL, &m, &err);
    cr_assert_eq(st, code, "%s: expected status %d, got %d (%s)", name, code, st, err.message);
    cr_assert_null(m);
    cr_assert(strstr(err.message, needle), "%s: message '%s' lacks '%s'", name, err.message,
              needle);
    cr_assert(strstr(err.message, name) || strstr(err.message, "weights") ||
                  strstr(err.message, "external"),
              "%s: message '%s' should name the file", name, err.message);
}

Test(core, tensor_forms) {
    ember_model *m = load_ok("forms.onnx");
    ember_session *s;
    ember_error err;
    cr_assert_eq(ember_session_create(m, NULL, &s, &err), EMBER_OK, "%s", err.message);
    const char *names[] = {"f_raw", "f_typed", "i8_typed", "u16_typed", "b_typed",
                           "h_typed", "i64_typed", "d_typed", "u64_typed", "u32_typed"};
    ember_tensor *out[10];
    cr_assert_eq(ember_session_run(s, NULL, NULL, 0, names, 10, out, &err), EMBER_OK, "%s",
                 err.message);
    const float *fr = ember_tensor_data(out[0]), *ft = ember_tensor_data(out[1]);
    for (int i = 0; i < 6; i++) cr_assert(fr[i] == (float)i && ft[i] == (float)i);
    const int8_t *i8 = ember_tensor_data(out[2]);
    cr_assert(i8[0] == -128 && i8[1] == -1 && i8[2] == 0 && i8[3] == 127);
    const uint16_t *u16 = ember_tensor_data(out[3]);
    cr_assert(u16[0] == 0 && u16[1] == 65535);
    const uint8_t *b = ember_tensor_data(out[4]);
    cr_assert(b[0] == 1 && b[1] == 0 && b[2] == 1);
    const uint16_t *h = ember_tensor_data(out[5]);
    cr_assert(em_f16_to_f32(h[0]) == 1.0f && em_f16_to_f32(h[1]) == -2.0f &&
              em_f16_to_f32(h[2]) == 65504.0f);
    const int64_t *i64 = ember_tensor_data(out[6]);
    cr_assert(i64[0] == -(1ll << 62) && i64[1] == (1ll << 62));
    const double *d = ember_tensor_data(out[7]);
    cr_assert(d[0] == 1.5 && d[1] == -2.25);
    cr_assert(*(uint64_t *)ember_tensor_data(out[8]) == (1ull << 63) + 5);
    cr_assert(*(uint32_t *)ember_tensor_data(out[9]) == 4000000000u);
    cr_assert_eq(ember_tensor_dims(out[0])[0], 2);
    cr_assert_eq(ember_tensor_dims(out[0])[1], 3);
    for (int i = 0; i < 10; i++) ember_tensor_free(out[i]);
    ember_session_free(s);
    ember_model_free(m);
}

Test(core, external_data) {
    ember_model *m = load_ok("external/ok.onnx");
    ember_session *s;
    ember_error err;
    cr_assert_eq(ember_session_create(m, NULL, &s, &err), EMBER_OK, "%s", err.message);
    const char *name = "ext";
    ember_tensor *out;
    cr_assert_eq(ember_session_run(s, NULL, NULL, 0, &name, 1, &out, &err), EMBER_OK);
    const float *v = ember_tensor_data(out);
    for (int i = 0; i < 8; i++) cr_assert_eq(v[i], (float)i);
    ember_tensor_free(out);
    ember_session_free(s);
    ember_model_free(m);
    expect_load_error("external/escape.onnx", EMBER_ERR_INVALID_MODEL, "escapes");
    expect_load_error("external/absolute.onnx", EMBER_ERR_INVALID_MODEL, "escapes");
    expect_load_error("external/past_end.onnx", EMBER_ERR_INVALID_MODEL, "past its end");
    expect_load_error("external/missing.onnx", EMBER_ERR_IO, "cannot open");
}

Test(core, external_data_needs_folder_from_memory) {
    FILE *f = fopen(fx("external/ok.onnx"), "rb");
    cr_assert_not_null(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ember_model *m = NULL;
    ember_error err;
    cr_assert_eq(ember_model_load_memory(buf, n, NULL, &m, &err), EMBER_ERR_INVALID_ARGUMENT);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", fx("external"));
    cr_assert_eq(ember_model_load_memory_at(buf, n, dir, NULL, &m, &err), EMBER_OK, "%s",
                 err.message);
    ember_model_free(m);
}

Test(core, malformed_models) {
    expect_load_error("truncated.onnx", EMBER_ERR_PARSE, "not an ONNX model");
    expect_load_error("garbage.onnx", EMBER_ERR_PARSE, "not an ONNX model");
    expect_load_error("empty.onnx", EMBER_ERR_PARSE, "empty");
    expect_load_error("cycle.onnx", EMBER_ERR_INVALID_MODEL, "cycle");
    expect_load_error("dangling.onnx", EMBER_ERR_INVALID_MODEL, "'nowhere'");
    expect_load_error("missing_output.onnx", EMBER_ERR_INVALID_MODEL, "'z'");
    expect_load_error("duplicate_output.onnx", EMBER_ERR_INVALID_MODEL, "already");
    expect_load_error("bad_raw.onnx", EMBER_ERR_INVALID_MODEL, "raw_data has 15 bytes");
    expect_load_error("negative_dim.onnx", EMBER_ERR_INVALID_MODEL, "negative");
    expect_load_error("huge_dim.onnx", EMBER_ERR_LIMIT, "limit");
    expect_load_error("short_typed.onnx", EMBER_ERR_INVALID_MODEL, "float_data holds 3");
    expect_load_error("no_domain.onnx", EMBER_ERR_INVALID_MODEL, "does not import");
}

Test(core, all_unsupported_ops_in_one_error) {
    ember_model *m = NULL;
    ember_error err;
    cr_assert_eq(ember_model_load_file(fx("unsupported.onnx"), NULL, &m, &err),
                 EMBER_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "2 unsupported operators"), "%s", err.message);
    cr_assert(strstr(err.message, "FooBar") && strstr(err.message, "BazQux"), "%s", err.message);
}

/* Finds `op_type` in the scan; returns its entry or fails the test. */
static ember_op_use scanned_op(const ember_op_scan *scan, const char *domain, const char *op_type) {
    for (size_t i = 0; i < ember_op_scan_count(scan); i++) {
        ember_op_use use;
        cr_assert_eq(ember_op_scan_get(scan, i, &use), EMBER_OK);
        if (strcmp(use.op_type, op_type) == 0 && strcmp(use.domain, domain) == 0) return use;
    }
    cr_assert_fail("%s:%s not in the scan", domain, op_type);
    return (ember_op_use){0};
}

Test(op_scan, lists_operators_of_models_that_do_not_load) {
    ember_op_scan *scan = NULL;
    ember_error err;
    cr_assert_eq(ember_op_scan_file(fx("unsupported.onnx"), &scan, &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_eq(ember_op_scan_count(scan), 3);
    ember_op_use use;
    cr_assert_eq(ember_op_scan_get(scan, 0, &use), EMBER_OK);
    cr_assert_str_eq(use.op_type, "FooBar"); /* order of first use */
    cr_assert_str_eq(use.domain, "");
    cr_assert_eq(use.opset, 13);
    cr_assert_eq(use.supported, 0);
    cr_assert_eq(scanned_op(scan, "", "BazQux").supported, 0);
    cr_assert_eq(scanned_op(scan, "ai.test", "Scale").opset, 1);
    cr_assert_eq(ember_op_scan_get(scan, 3, &use), EMBER_ERR_INVALID_ARGUMENT);
    ember_op_scan_free(scan);
}

Test(op_scan, subgraphs_functions_and_duplicates) {
    ember_op_scan *scan = NULL;
    ember_error err;
    cr_assert_eq(ember_op_scan_file(fx("if_branches.onnx"), &scan, &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_eq(ember_op_scan_count(scan), 3, "If, Neg (twice, listed once), Abs");
    cr_assert_eq(scanned_op(scan, "", "If").supported, 1);
    cr_assert_eq(scanned_op(scan, "", "Neg").supported, 1);
    cr_assert_eq(scanned_op(scan, "", "Abs").opset, 13);
    ember_op_scan_free(scan);
    cr_assert_eq(ember_op_scan_file(fx("function.onnx"), &scan, &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_eq(ember_op_scan_count(scan), 1);
    ember_op_use twice = scanned_op(scan, "ai.local", "Twice");
    cr_assert_eq(twice.supported, 1, "a model-local function is supported");
    ember_op_scan_free(scan);
}

Test(op_scan, rejects_what_is_not_a_model) {
    ember_op_scan *scan = (ember_op_scan *)&scan;
    ember_error err;
    const char junk[] = "\xff\xff\xff\xff not protobuf";
    cr_assert_eq(ember_op_scan_memory(junk, sizeof junk, &scan, &err), EMBER_ERR_PARSE);
    cr_assert_null(scan);
    cr_assert_eq(ember_op_scan_memory("", 0, &scan, &err), EMBER_ERR_PARSE);
    cr_assert_eq(ember_op_scan_file("/nonexistent/model.onnx", &scan, &err), EMBER_ERR_IO);
    cr_assert_eq(ember_op_scan_memory(NULL, 0, NULL, &err), EMBER_ERR_INVALID_ARGUMENT);
    ember_op_scan_free(NULL);
    cr_assert_eq(ember_op_scan_count(NULL), 0);
}

static ember_tensor *filled(int64_t batch, float base) {
    int64_t dims[2] = {batch, 4};
    ember_tensor *t;
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, dims, 2, &t, NULL), EMBER_OK);
    float *p = ember_tensor_data(t);
    for (int64_t i = 0; i < batch * 4; i++) p[i] = base + (float)i;
    return t;
}

static ember_status run_one(ember_session *s, const char *out_name, ember_tensor *x,
                            ember_tensor **y, ember_error *err) {
    const char *in = "x";
    return ember_session_run(s, &in, (const ember_tensor *const *)&x, 1, &out_name, 1, y, err);
}

Test(core, function_inlining) {
    ember_model *m = load_ok("function.onnx");
    ember_session *s;
    ember_error err;
    cr_assert_eq(ember_session_create(m, NULL, &s, &err), EMBER_OK, "%s", err.message);
    ember_tensor *x = filled(2, 1), *y;
    cr_assert_eq(run_one(s, "y", x, &y, &err), EMBER_OK, "%s", err.message);
    for (int i = 0; i < 8; i++) cr_assert_eq(((float *)ember_tensor_data(y))[i], 4.0f * (1 + i));
    ember_tensor_free(x);
    ember_tensor_free(y);
    ember_session_free(s);
    ember_model_free(m);
}

Test(core, planner_reuses_buffers) {
    ember_model *m = load_ok("chain.onnx");
    ember_session_options o;
    ember_session_options_init(&o);
    o.opt_level = EMBER_OPT_NONE;
    o.threads = 1;
    ember_session *s;
    ember_error err;
    cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
    ember_tensor *x = filled(1000, 0), *y;
    cr_assert_eq(run_one(s, "y", x, &y, &err), EMBER_OK, "%s", err.message);
    const float *v = ember_tensor_data(y);
    for (int i = 0; i < 4000; i++) cr_assert_eq(v[i], 1024.0f * (float)i);
    /* 11 intermediates of 16000 bytes: without reuse 176000 bytes; the plan needs ~2. */
    uint64_t arena = em_session_arena_bytes(s);
    cr_assert(arena > 0 && arena <= 3 * 16000, "arena holds %llu bytes", (unsigned long long)arena);
    ember_tensor_free(y);
    /* Same shapes again: same result, arena unchanged (no growth across runs). */
    cr_assert_eq(run_one(s, "y", x, &y, &err), EMBER_OK);
    cr_assert_eq(((float *)ember_tensor_data(y))[3999], 1024.0f * 3999);
    cr_assert_eq(em_session_arena_bytes(s), arena);
    ember_tensor_free(y);
    ember_tensor_free(x);
    ember_session_free(s);
    ember_model_free(m);
}

Test(core, input_validation) {
    ember_model *m = load_ok("chain.onnx");
    ember_session *s;
    ember_error err;
    cr_assert_eq(ember_session_create(m, NULL, &s, &err), EMBER_OK);
    ember_tensor *y = NULL;
    int64_t dims[2] = {2, 5};
    ember_tensor *bad_shape, *bad_type;
    ember_tensor_create(EMBER_FLOAT, dims, 2, &bad_shape, NULL);
    dims[1] = 4;
    ember_tensor_create(EMBER_INT64, dims, 2, &bad_type, NULL);
    cr_assert_eq(run_one(s, "y", bad_shape, &y, &err), EMBER_ERR_SHAPE);
    cr_assert(strstr(err.message, "float32[2,5]"), "%s", err.message);
    cr_assert_eq(run_one(s, "y", bad_type, &y, &err), EMBER_ERR_SHAPE);
    cr_assert(strstr(err.message, "int64"), "%s", err.message);
    cr_assert_eq(run_one(s, "nope", bad_shape, &y, &err), EMBER_ERR_INVALID_ARGUMENT);
    const char *out = "y";
    cr_assert_eq(ember_session_run(s, NULL, NULL, 0, &out, 1, &y, &err),
                 EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(err.message, "'x' is missing"), "%s", err.message);
    cr_assert_null(y);
    ember_tensor_free(bad_shape);
    ember_tensor_free(bad_type);
    ember_session_free(s);
    ember_model_free(m);
}

typedef struct worker_arg {
    ember_session *s;
    int id;
    int failures;
} worker_arg;

static void *worker(void *p) {
    worker_arg *a = p;
    for (int r = 0; r < 50; r++) {
        int64_t batch = 1 + (a->id * 7 + r) % 13;
        ember_tensor *x = filled(batch, (float)a->id), *y = NULL;
        ember_error err;
        if (run_one(a->s, "y", x, &y, &err) != EMBER_OK) a->failures++;
        else {
            const float *v = ember_tensor_data(y);
            for (int64_t i = 0; i < batch * 4; i++)
                if (v[i] != 1024.0f * ((float)a->id + (float)i)) {
                    a->failures++;
                    break;
                }
        }
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    return NULL;
}

Test(core, concurrent_runs_on_one_session) {
    ember_model *m = load_ok("chain.onnx");
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = 2;
    ember_session *s;
    cr_assert_eq(ember_session_create(m, &o, &s, NULL), EMBER_OK);
    ember_model_free(m); /* the session keeps what it needs */
    pthread_t th[8];
    worker_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (worker_arg){s, i, 0};
        pthread_create(&th[i], NULL, worker, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(args[i].failures, 0, "thread %d saw %d wrong results", i, args[i].failures);
    }
    ember_session_free(s);
}

Test(core, shared_threadpool_and_model_info) {
    ember_threadpool *pool;
    cr_assert_eq(ember_threadpool_create(2, &pool, NULL), EMBER_OK);
    ember_model *m = load_ok("chain.onnx");
    cr_assert_eq(ember_model_input_count(m), 1);
    ember_value_info vi;
    cr_assert_eq(ember_model_input(m, 0, &vi), EMBER_OK);
    cr_assert_str_eq(vi.name, "x");
    cr_assert_eq(vi.rank, 2);
    cr_assert_eq(vi.dims[0], -1);
    cr_assert_str_eq(vi.dim_names[0], "batch");
    cr_assert_eq(vi.dims[1], 4);
    cr_assert_eq(ember_model_opset(m, "ai.test"), 1);
    cr_assert_eq(ember_model_node_count(m), 11);
    ember_session_options o;
    ember_session_options_init(&o);
    o.threadpool = pool;
    ember_session *a, *b;
    cr_assert_eq(ember_session_create(m, &o, &a, NULL), EMBER_OK);
    cr_assert_eq(ember_session_create(m, &o, &b, NULL), EMBER_OK);
    ember_tensor *x = filled(3, 0), *y;
    cr_assert_eq(run_one(a, "y", x, &y, NULL), EMBER_OK);
    ember_tensor_free(y);
    cr_assert_eq(run_one(b, "y", x, &y, NULL), EMBER_OK);
    ember_tensor_free(y);
    ember_tensor_free(x);
    ember_session_free(a);
    ember_session_free(b);
    ember_model_free(m);
    ember_threadpool_free(pool);
}

Test(core, tensor_files_roundtrip) {
    ember_tensor *t = filled(3, 0.5f), *back;
    ember_error err;
    const char *paths[] = {"/tmp/ember_test_rt.npy", "/tmp/ember_test_rt.pb"};
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(ember_tensor_save(t, paths[k], "x", &err), EMBER_OK, "%s", err.message);
        cr_assert_eq(ember_tensor_load(paths[k], &back, &err), EMBER_OK, "%s", err.message);
        cr_assert_eq(ember_tensor_rank(back), 2);
        cr_assert_eq(ember_tensor_dims(back)[0], 3);
        cr_assert_eq(memcmp(ember_tensor_data(back), ember_tensor_data(t), 48), 0);
        if (k == 1) cr_assert_str_eq(ember_tensor_name(back), "x");
        ember_tensor_free(back);
        remove(paths[k]);
    }
    cr_assert_eq(ember_tensor_load_memory("\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'", 22, &back,
                                          &err),
                 EMBER_ERR_PARSE);
    ember_tensor_free(t);
}

Test(core, half_precision_conversions) {
    /* every float16 bit pattern survives f16 -> f32 -> f16 (NaNs stay NaN) */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = em_f16_to_f32((uint16_t)h);
        uint16_t back = em_f32_to_f16(f);
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) cr_assert((back & 0x7c00) == 0x7c00 && (back & 0x3ff));
        else cr_assert_eq(back, h, "0x%04x -> %g -> 0x%04x", h, f, back);
    }
    cr_assert_eq(em_f32_to_f16(65520.0f), 0x7c00);     /* rounds to inf */
    cr_assert_eq(em_f32_to_f16(5.960464477539063e-8f), 0x0001); /* smallest subnormal */
    cr_assert_eq(em_f32_to_f16(2.98023223876953125e-8f), 0x0000); /* tie to even: 0 */
    cr_assert_eq(em_f32_to_bf16(1.00390625f), 0x3f80);  /* tie to even */
}
