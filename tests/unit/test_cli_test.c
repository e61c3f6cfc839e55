/* Tests of `ember test`, the conformance runner: its comparison rule (linked directly) and the
 * command end to end on small case folders written here (the ember binary and a plugin come
 * from the EMBER_EXE and EMBER_TEST_PLUGIN environment variables, set by meson). The models
 * need no built-in operator kernel: graph outputs that are graph inputs, Constant nodes (folded
 * at load), an unknown operator, or the plugin's operators (cli_test_plugin.c) that copy, fail,
 * crash or hang. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ember.h"
#include "onnx.pb-c.h"
#include "test_compare.h"

/* ------------------------------------------------------------------------------------------
 * The comparison rule
 * ---------------------------------------------------------------------------------------- */

Test(compare, allclose_rule_is_relative_to_expected) {
    /* |got - expected| <= atol + rtol * |expected| */
    cr_assert(compare_close(1000.0, 1000.9, 1e-3, 0));
    cr_assert(!compare_close(1000.0, 1001.1, 1e-3, 0));
    /* Relative to the expected value, not to got: 1.0 vs 2.0 with rtol 0.5 fails one way. */
    cr_assert(compare_close(2.0, 1.0, 0.5, 0));
    cr_assert(!compare_close(1.0, 2.0, 0.5, 0));
    cr_assert(compare_close(0.0, 1e-7, 1e-3, 1e-7));
    cr_assert(!compare_close(0.0, 2e-7, 1e-3, 1e-7));
}

Test(compare, nan_and_infinity) {
    cr_assert(compare_close(NAN, NAN, 1e-3, 1e-7));
    cr_assert(!compare_close(NAN, 0.0, 1e-3, 1e-7));
    cr_assert(!compare_close(0.0, NAN, 1e-3, 1e-7));
    cr_assert(!compare_close(NAN, 0.0, INFINITY, INFINITY));
    cr_assert(compare_close(INFINITY, INFINITY, 1e-3, 1e-7));
    cr_assert(!compare_close(INFINITY, -INFINITY, 1e-3, 1e-7));
    cr_assert(!compare_close(INFINITY, 1e308, 1e-3, 1e-7));
    cr_assert(!compare_close(1e38, INFINITY, 1e-3, 1e-7));
}

Test(compare, ulp_distance) {
    cr_assert_eq(compare_ulp_f32(1.0f, 1.0f), 0);
    cr_assert_eq(compare_ulp_f32(1.0f, nextafterf(1.0f, 2.0f)), 1);
    cr_assert_eq(compare_ulp_f32(0.0f, -0.0f), 0);
    /* Smallest subnormals on either side of zero are two steps apart. */
    cr_assert_eq(compare_ulp_f32(-0x1p-149f, 0x1p-149f), 2);
    cr_assert_eq(compare_ulp_f32(1.0f, 2.0f), 1u << 23);
    cr_assert_eq(compare_ulp_f64(1.0, nextafter(1.0, 0.0)), 1);
    cr_assert_eq(compare_ulp_f64(-1.0, 1.0), 2 * 0x3ff0000000000000ull);
    cr_assert_eq(compare_ulp_f64(-INFINITY, INFINITY), 2 * 0x7ff0000000000000ull);
}

Test(compare, half_precision_conversion) {
    cr_assert_eq(compare_f16_to_f32(0x3c00), 1.0f);
    cr_assert_eq(compare_f16_to_f32(0xc000), -2.0f);
    cr_assert_eq(compare_f16_to_f32(0x0001), 0x1p-24f);
    cr_assert_eq(compare_f16_to_f32(0x7bff), 65504.0f);
    cr_assert(isinf(compare_f16_to_f32(0x7c00)));
    cr_assert(isnan(compare_f16_to_f32(0x7e00)));
    cr_assert(signbit(compare_f16_to_f32(0x8000)));
    cr_assert_eq(compare_bf16_to_f32(0x3f80), 1.0f);
}

static ember_tensor *make_tensor(ember_dtype dtype, const int64_t *dims, int rank,
                                 const void *data) {
    ember_tensor *t = NULL;
    cr_assert_eq(ember_tensor_create(dtype, dims, rank, &t, NULL), EMBER_OK);
    memcpy(ember_tensor_data(t), data, ember_tensor_byte_size(t));
    return t;
}

Test(compare, tensors_report_the_worst_element) {
    int64_t dims[2] = {2, 3};
    float want[6] = {1, 2, 3, 4, 5, 6};
    float have[6] = {1, 2.001f, 3, 4, 5, 6.5f}; /* [0,1] just out, [1,2] far out */
    ember_tensor *e = make_tensor(EMBER_FLOAT, dims, 2, want);
    ember_tensor *g = make_tensor(EMBER_FLOAT, dims, 2, have);
    compare_result r;
    cr_assert(!compare_tensors(e, g, 1e-4, 0, &r));
    cr_assert_eq(r.mismatch_count, 2);
    cr_assert_eq(r.worst_flat_index, 5);
    cr_assert_eq(r.worst_rank, 2);
    cr_assert_eq(r.worst_index[0], 1);
    cr_assert_eq(r.worst_index[1], 2);
    cr_assert_str_eq(r.worst_expected, "6");
    cr_assert_str_eq(r.worst_got, "6.5");
    cr_assert_float_eq(r.max_abs_diff, 0.5, 1e-12);
    cr_assert(r.has_ulp);
    cr_assert_eq(r.max_ulp, compare_ulp_f32(6.0f, 6.5f));
    /* Loose enough, the same tensors are close. */
    cr_assert(compare_tensors(e, g, 0.1, 0, &r));
    ember_tensor_free(e);
    ember_tensor_free(g);
}

Test(compare, tensors_need_same_dtype_and_shape) {
    int64_t dims23[2] = {2, 3}, dims32[2] = {3, 2}, dims6[1] = {6};
    float values[6] = {0};
    double doubles[6] = {0};
    ember_tensor *a = make_tensor(EMBER_FLOAT, dims23, 2, values);
    ember_tensor *b = make_tensor(EMBER_FLOAT, dims32, 2, values);
    ember_tensor *c = make_tensor(EMBER_FLOAT, dims6, 1, values);
    ember_tensor *d = make_tensor(EMBER_DOUBLE, dims23, 2, doubles);
    compare_result r;
    cr_assert(!compare_tensors(a, b, 1, 1, &r));
    cr_assert(r.layout_mismatch);
    cr_assert(strstr(r.reason, "shape: expected [2,3], got [3,2]"), "%s", r.reason);
    cr_assert(!compare_tensors(a, c, 1, 1, &r));
    cr_assert(!compare_tensors(a, d, 1, 1, &r));
    cr_assert(strstr(r.reason, "dtype"), "%s", r.reason);
    cr_assert(compare_tensors(a, a, 0, 0, &r));
    ember_tensor_free(a);
    ember_tensor_free(b);
    ember_tensor_free(c);
    ember_tensor_free(d);
}

Test(compare, int64_differences_are_exact) {
    int64_t dims[1] = {1};
    int64_t want = INT64_C(1) << 60, have = (INT64_C(1) << 60) + 1;
    ember_tensor *e = make_tensor(EMBER_INT64, dims, 1, &want);
    ember_tensor *g = make_tensor(EMBER_INT64, dims, 1, &have);
    compare_result r;
    cr_assert(!compare_tensors(e, g, 0, 0, &r));
    cr_assert_str_eq(r.worst_expected, "1152921504606846976");
    cr_assert_str_eq(r.worst_got, "1152921504606846977");
    cr_assert(!r.has_ulp);
    ember_tensor_free(e);
    ember_tensor_free(g);
}

Test(compare, bool_and_nan_tensors) {
    int64_t dims[1] = {3};
    uint8_t b1[3] = {1, 0, 1}, b2[3] = {1, 1, 1};
    ember_tensor *e = make_tensor(EMBER_BOOL, dims, 1, b1);
    ember_tensor *g = make_tensor(EMBER_BOOL, dims, 1, b2);
    compare_result r;
    cr_assert(!compare_tensors(e, g, 1e-3, 1e-7, &r));
    cr_assert_eq(r.worst_flat_index, 1);
    cr_assert_str_eq(r.worst_expected, "false");
    ember_tensor_free(e);
    ember_tensor_free(g);

    double n1[3] = {NAN, 1, INFINITY}, n2[3] = {NAN, 1, INFINITY}, n3[3] = {0, 1, INFINITY};
    e = make_tensor(EMBER_DOUBLE, dims, 1, n1);
    g = make_tensor(EMBER_DOUBLE, dims, 1, n2);
    ember_tensor *h = make_tensor(EMBER_DOUBLE, dims, 1, n3);
    cr_assert(compare_tensors(e, g, 0, 0, &r));
    cr_assert(!compare_tensors(e, h, 1e-3, 1e-7, &r));
    cr_assert_eq(r.worst_flat_index, 0);
    cr_assert(r.ulp_unbounded);
    cr_assert(isnan(r.max_abs_diff));
    ember_tensor_free(e);
    ember_tensor_free(g);
    ember_tensor_free(h);
}

/* ------------------------------------------------------------------------------------------
 * Writing case folders
 * ---------------------------------------------------------------------------------------- */

static char *path_join(const char *a, const char *b) {
    char *p = NULL;
    cr_assert(asprintf(&p, "%s/%s", a, b) > 0);
    return p;
}

static char *test_root; /* this test process's folder, removed at exit */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void remove_root(void) {
    if (test_root) nftw(test_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh folder for one test's cases (each Criterion test runs in its own process). */
static char *make_root(void) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *templ = path_join(base, "ember-cli-test-XXXXXX");
    cr_assert(mkdtemp(templ), "mkdtemp: %s", strerror(errno));
    if (!test_root) atexit(remove_root);
    test_root = templ;
    return templ;
}

static void make_dir(const char *path) {
    cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path, strerror(errno));
}

static void write_bytes(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    cr_assert_eq(fwrite(data, 1, size, f), size);
    cr_assert_eq(fclose(f), 0);
}

static void write_text(const char *path, const char *text) {
    write_bytes(path, text, strlen(text));
}

/* A float / other tensor as a TensorProto file with raw_data. */
static void write_tensor(const char *path, const char *name, int dtype, const int64_t *dims,
                         int rank, const void *data, size_t bytes) {
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    t.n_dims = (size_t)rank;
    t.dims = (int64_t *)dims;
    t.has_data_type = 1;
    t.data_type = dtype;
    t.name = (char *)(name ? name : "");
    t.has_raw_data = 1;
    t.raw_data.len = bytes;
    t.raw_data.data = (uint8_t *)data;
    size_t size = onnx__tensor_proto__get_packed_size(&t);
    uint8_t *buf = malloc(size ? size : 1);
    onnx__tensor_proto__pack(&t, buf);
    write_bytes(path, buf, size);
    free(buf);
}

static void write_floats(const char *path, const char *name, const int64_t *dims, int rank,
                         const float *values, size_t count) {
    write_tensor(path, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, dims, rank, values,
                 count * sizeof *values);
}

typedef struct value_spec {
    const char *name;
    int rank;
    int64_t dims[4];
} value_spec;

/* float32 tensor value infos. */
static Onnx__ValueInfoProto *value_info(const value_spec *spec) {
    Onnx__TensorShapeProto__Dimension **dims = calloc(4, sizeof *dims);
    Onnx__TensorShapeProto *shape = malloc(sizeof *shape);
    onnx__tensor_shape_proto__init(shape);
    shape->n_dim = (size_t)spec->rank;
    shape->dim = dims;
    for (int d = 0; d < spec->rank; d++) {
        dims[d] = malloc(sizeof **dims);
        onnx__tensor_shape_proto__dimension__init(dims[d]);
        dims[d]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        dims[d]->dim_value = spec->dims[d];
    }
    Onnx__TypeProto__Tensor *tensor_type = malloc(sizeof *tensor_type);
    onnx__type_proto__tensor__init(tensor_type);
    tensor_type->has_elem_type = 1;
    tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tensor_type->shape = shape;
    Onnx__TypeProto *type = malloc(sizeof *type);
    onnx__type_proto__init(type);
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor_type;
    Onnx__ValueInfoProto *info = malloc(sizeof *info);
    onnx__value_info_proto__init(info);
    info->name = (char *)spec->name;
    info->type = type;
    return info;
}

/* The graph: `nodes` (may be empty), inputs and outputs (float32), opset 17 and the plugin's
 * domain. */
static void write_model(const char *path, const value_spec *inputs, int n_inputs,
                        const value_spec *outputs, int n_outputs, Onnx__NodeProto **nodes,
                        int n_nodes) {
    Onnx__ValueInfoProto *in[8], *out[8];
    for (int i = 0; i < n_inputs; i++) in[i] = value_info(&inputs[i]);
    for (int i = 0; i < n_outputs; i++) out[i] = value_info(&outputs[i]);
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    graph.name = "g";
    graph.n_node = (size_t)n_nodes;
    graph.node = nodes;
    graph.n_input = (size_t)n_inputs;
    graph.input = in;
    graph.n_output = (size_t)n_outputs;
    graph.output = out;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    opset.domain = "";
    opset.has_version = 1;
    opset.version = 17;
    Onnx__OperatorSetIdProto plugin_opset = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    plugin_opset.domain = "test.ember.cli";
    plugin_opset.has_version = 1;
    plugin_opset.version = 1;
    Onnx__OperatorSetIdProto *opsets[2] = {&opset, &plugin_opset};
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.producer_name = "test_cli_test";
    model.n_opset_import = 2;
    model.opset_import = opsets;
    model.graph = &graph;
    size_t size = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = malloc(size);
    onnx__model_proto__pack(&model, buf);
    write_bytes(path, buf, size);
    free(buf);
    /* The value infos are leaked on purpose: each test is its own short-lived process. */
}

/* Case `name` under `root`: graph inputs x (and more) passed straight to outputs. */
static char *make_case_dir(const char *root, const char *name) {
    char *dir = path_join(root, name);
    make_dir(dir);
    char *set = path_join(dir, "test_data_set_0");
    make_dir(set);
    free(set);
    return dir;
}

static void write_case_file(const char *dir, const char *file, const char *name,
                            const int64_t *dims, int rank, const float *values, size_t count) {
    char *path = path_join(dir, file);
    write_floats(path, name, dims, rank, values, count);
    free(path);
}

/* y = x, with x a 2x3 float tensor; `expected` is written as output_0.pb. */
static char *make_identity_case(const char *root, const char *name, const float *input,
                                const float *expected) {
    char *dir = make_case_dir(root, name);
    value_spec x = {"x", 2, {2, 3}};
    char *model = path_join(dir, "model.onnx");
    write_model(model, &x, 1, &x, 1, NULL, 0);
    free(model);
    int64_t dims[2] = {2, 3};
    write_case_file(dir, "test_data_set_0/input_0.pb", "x", dims, 2, input, 6);
    write_case_file(dir, "test_data_set_0/output_0.pb", "x", dims, 2, expected, 6);
    return dir;
}

/* y = Constant(value): no input at all. */
static char *make_constant_case(const char *root, const char *name, const float *value,
                                const float *expected, size_t count) {
    char *dir = make_case_dir(root, name);
    int64_t dims[1] = {(int64_t)count};
    Onnx__TensorProto t = ONNX__TENSOR_PROTO__INIT;
    t.n_dims = 1;
    t.dims = dims;
    t.has_data_type = 1;
    t.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t.has_raw_data = 1;
    t.raw_data.len = count * sizeof(float);
    t.raw_data.data = (uint8_t *)value;
    Onnx__AttributeProto attr = ONNX__ATTRIBUTE_PROTO__INIT;
    attr.name = "value";
    attr.has_type = 1;
    attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR;
    attr.t = &t;
    Onnx__AttributeProto *attrs[1] = {&attr};
    char *outs[1] = {"y"};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.op_type = "Constant";
    node.n_output = 1;
    node.output = outs;
    node.n_attribute = 1;
    node.attribute = attrs;
    Onnx__NodeProto *nodes[1] = {&node};
    value_spec y = {"y", 1, {(int64_t)count}};
    char *model = path_join(dir, "model.onnx");
    write_model(model, NULL, 0, &y, 1, nodes, 1);
    free(model);
    write_case_file(dir, "test_data_set_0/output_0.pb", "y", dims, 1, expected, count);
    return dir;
}

/* y = NoSuchOp(x): valid ONNX that no runtime supports. */
static char *make_unsupported_case(const char *root, const char *name) {
    char *dir = make_case_dir(root, name);
    char *ins[1] = {"x"}, *outs[1] = {"y"};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.op_type = "NoSuchOp";
    node.n_input = 1;
    node.input = ins;
    node.n_output = 1;
    node.output = outs;
    Onnx__NodeProto *nodes[1] = {&node};
    value_spec x = {"x", 1, {2}}, y = {"y", 1, {2}};
    char *model = path_join(dir, "model.onnx");
    write_model(model, &x, 1, &y, 1, nodes, 1);
    free(model);
    int64_t dims[1] = {2};
    float v[2] = {1, 2};
    write_case_file(dir, "test_data_set_0/input_0.pb", "x", dims, 1, v, 2);
    write_case_file(dir, "test_data_set_0/output_0.pb", "y", dims, 1, v, 2);
    return dir;
}

/* y = test.ember.cli:OP(x), x a 2x3 float tensor (see cli_test_plugin.c). */
static char *make_op_case(const char *root, const char *name, const char *op_type,
                          const float *input, const float *expected) {
    char *dir = make_case_dir(root, name);
    char *ins[1] = {"x"}, *outs[1] = {"y"};
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    node.op_type = (char *)op_type;
    node.domain = "test.ember.cli";
    node.n_input = 1;
    node.input = ins;
    node.n_output = 1;
    node.output = outs;
    Onnx__NodeProto *nodes[1] = {&node};
    value_spec x = {"x", 2, {2, 3}}, y = {"y", 2, {2, 3}};
    char *model = path_join(dir, "model.onnx");
    write_model(model, &x, 1, &y, 1, nodes, 1);
    free(model);
    int64_t dims[2] = {2, 3};
    write_case_file(dir, "test_data_set_0/input_0.pb", "x", dims, 2, input, 6);
    write_case_file(dir, "test_data_set_0/output_0.pb", "y", dims, 2, expected, 6);
    return dir;
}

static const float ones_to_six[6] = {1, 2, 3, 4, 5, 6};

/* ------------------------------------------------------------------------------------------
 * Running the command
 * ---------------------------------------------------------------------------------------- */

typedef struct run_result {
    int status; /* exit status */
    char *output; /* stdout and stderr */
} run_result;

static run_result run_ember(const char *first, ...) {
    const char *exe = getenv("EMBER_EXE");
    const char *plugin = getenv("EMBER_TEST_PLUGIN");
    cr_assert(exe && plugin, "EMBER_EXE or EMBER_TEST_PLUGIN is not set (run through meson test)");
    const char *argv[64] = {exe, "--plugin", plugin, "test"};
    int argc = 4;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(exe, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t size = 0, capacity = 4096;
    char *out = malloc(capacity);
    for (;;) {
        if (capacity - size < 1024) out = realloc(out, capacity *= 2);
        ssize_t n = read(fds[0], out + size, capacity - size - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size += (size_t)n;
    }
    out[size] = '\0';
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status), "ember did not exit normally:\n%s", out);
    return (run_result){WEXITSTATUS(status), out};
}

/* The last non-empty line of the output. */
static const char *last_line(const char *text) {
    static char line[256];
    const char *end = text + strlen(text);
    while (end > text && end[-1] == '\n') end--;
    const char *start = end;
    while (start > text && start[-1] != '\n') start--;
    snprintf(line, sizeof line, "%.*s", (int)(end - start), start);
    return line;
}

/* Numbers of the operator table's row for `op`. */
static bool table_row(const char *text, const char *op, int *cases, int *passed) {
    size_t n = strlen(op);
    for (const char *line = text; *line;) {
        if (strncmp(line, op, n) == 0 && line[n] == ' ')
            return sscanf(line + n, "%d %d", cases, passed) == 2;
        const char *newline = strchr(line, '\n');
        if (!newline) break;
        line = newline + 1;
    }
    return false;
}

#define ASSERT_HAS(result, needle)                                                                 \
    cr_assert(strstr((result).output, (needle)), "missing '%s' in:\n%s", (needle), (result).output)
#define ASSERT_LACKS(result, needle)                                                               \
    cr_assert(!strstr((result).output, (needle)), "unexpected '%s' in:\n%s", (needle),           \
              (result).output)
#define ASSERT_SUMMARY(result, text)                                                               \
    cr_assert_str_eq(last_line((result).output), (text), "output:\n%s", (result).output)

/* ------------------------------------------------------------------------------------------
 * End to end
 * ---------------------------------------------------------------------------------------- */

Test(cli_test, help_documents_the_options) {
    run_result r = run_ember("--help", NULL);
    cr_assert_eq(r.status, 0);
    const char *options[] = {"--rtol", "--atol", "--tolerances", "--filter", "--expect",
                             "--json", "--jobs", "--timeout", "N passed, N failed, N skipped"};
    for (size_t i = 0; i < sizeof options / sizeof *options; i++) ASSERT_HAS(r, options[i]);
}

Test(cli_test, passing_case) {
    char *root = make_root();
    make_identity_case(root, "test_pass", ones_to_six, ones_to_six);
    run_result r = run_ember("-v", root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);
    ASSERT_HAS(r, "PASS  test_pass");
    ASSERT_SUMMARY(r, "1 passed, 0 failed, 0 skipped");
}

Test(cli_test, failing_case_reports_worst_element_and_exits_nonzero) {
    char *root = make_root();
    float wrong[6] = {1, 2, 3, 4, 5.01f, 9};
    make_identity_case(root, "test_wrong", ones_to_six, wrong);
    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "FAIL  test_wrong: output 0 'x' (data set 0): 2 of 6 elements differ");
    ASSERT_HAS(r, "worst at [1,2] (flat 5): expected 9, got 6");
    ASSERT_HAS(r, "max abs diff 3");
    char ulp[64];
    snprintf(ulp, sizeof ulp, "max ulp %llu", (unsigned long long)compare_ulp_f32(9.0f, 6.0f));
    ASSERT_HAS(r, ulp);
    ASSERT_SUMMARY(r, "0 passed, 1 failed, 0 skipped");
}

Test(cli_test, tolerance_options_change_the_verdict) {
    char *root = make_root();
    float close[6] = {1, 2, 3, 4, 5, 6.004f}; /* 6.7e-4 relative */
    make_identity_case(root, "test_close", ones_to_six, close);
    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);
    r = run_ember("--rtol", "1e-4", root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    r = run_ember("--rtol=0", "--atol=0.005", root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);
    r = run_ember("--rtol", "-1", root, NULL);
    cr_assert_eq(r.status, 2, "%s", r.output);
}

Test(cli_test, nan_equals_nan_and_infinities_need_the_same_sign) {
    char *root = make_root();
    float nan_in[3] = {NAN, 1, INFINITY};
    make_constant_case(root, "test_nan_same", nan_in, nan_in, 3);
    float nan_vs_number[3] = {0, 1, INFINITY};
    make_constant_case(root, "test_nan_vs_number", nan_in, nan_vs_number, 3);
    float inf_sign[3] = {NAN, 1, -INFINITY};
    make_constant_case(root, "test_inf_sign", nan_in, inf_sign, 3);
    run_result r = run_ember("-v", root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "PASS  test_nan_same");
    ASSERT_HAS(r, "FAIL  test_nan_vs_number");
    ASSERT_HAS(r, "expected 0, got nan");
    ASSERT_HAS(r, "max ulp inf (NaN mismatch)");
    ASSERT_HAS(r, "FAIL  test_inf_sign");
    ASSERT_HAS(r, "expected -inf, got inf");
    ASSERT_SUMMARY(r, "1 passed, 2 failed, 0 skipped");
}

Test(cli_test, inputs_map_by_position_and_names_are_checked) {
    char *root = make_root();
    /* Graph inputs a, b; outputs b then a. */
    char *dir = make_case_dir(root, "test_two_inputs");
    value_spec ins[2] = {{"a", 1, {2}}, {"b", 1, {2}}};
    value_spec outs[2] = {{"b", 1, {2}}, {"a", 1, {2}}};
    char *model = path_join(dir, "model.onnx");
    write_model(model, ins, 2, outs, 2, NULL, 0);
    int64_t dims[1] = {2};
    float a[2] = {1, 2}, b[2] = {3, 4};
    write_case_file(dir, "test_data_set_0/input_0.pb", "", dims, 1, a, 2); /* unnamed */
    write_case_file(dir, "test_data_set_0/input_1.pb", "b", dims, 1, b, 2);
    write_case_file(dir, "test_data_set_0/output_0.pb", "b", dims, 1, b, 2);
    write_case_file(dir, "test_data_set_0/output_1.pb", "a", dims, 1, a, 2);
    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);
    ASSERT_SUMMARY(r, "1 passed, 0 failed, 0 skipped");

    /* A named input file must carry the name of the graph input at its position. */
    write_case_file(dir, "test_data_set_0/input_1.pb", "a", dims, 1, b, 2);
    r = run_ember(root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "ERROR test_two_inputs: test_data_set_0/input_1.pb is named 'a' but graph "
                  "input 1 is 'b'");
    free(model);
}

Test(cli_test, every_data_set_and_output_is_compared) {
    char *root = make_root();
    char *dir = make_identity_case(root, "test_sets", ones_to_six, ones_to_six);
    char *set1 = path_join(dir, "test_data_set_1");
    make_dir(set1);
    int64_t dims[2] = {2, 3};
    float other[6] = {6, 5, 4, 3, 2, 1};
    float wrong[6] = {6, 5, 4, 3, 2, 0};
    write_case_file(dir, "test_data_set_1/input_0.pb", "x", dims, 2, other, 6);
    write_case_file(dir, "test_data_set_1/output_0.pb", "x", dims, 2, wrong, 6);
    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "FAIL  test_sets: output 0 'x' (data set 1)");

    /* A second output that differs while the first matches. */
    char *dir2 = make_case_dir(root, "test_second_output");
    value_spec ins[2] = {{"a", 1, {2}}, {"b", 1, {2}}};
    char *model = path_join(dir2, "model.onnx");
    write_model(model, ins, 2, ins, 2, NULL, 0);
    int64_t d2[1] = {2};
    float a[2] = {1, 2}, b[2] = {3, 4}, bad[2] = {3, 5};
    write_case_file(dir2, "test_data_set_0/input_0.pb", "a", d2, 1, a, 2);
    write_case_file(dir2, "test_data_set_0/input_1.pb", "b", d2, 1, b, 2);
    write_case_file(dir2, "test_data_set_0/output_0.pb", "a", d2, 1, a, 2);
    write_case_file(dir2, "test_data_set_0/output_1.pb", "b", d2, 1, bad, 2);
    r = run_ember(dir2, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "FAIL  test_second_output: output 1 'b' (data set 0)");
    free(model);
    free(set1);
}

Test(cli_test, shape_and_dtype_must_match) {
    char *root = make_root();
    char *dir = make_identity_case(root, "test_shape", ones_to_six, ones_to_six);
    int64_t flat[1] = {6};
    write_case_file(dir, "test_data_set_0/output_0.pb", "x", flat, 1, ones_to_six, 6);
    char *dir2 = make_identity_case(root, "test_dtype", ones_to_six, ones_to_six);
    double as_double[6] = {1, 2, 3, 4, 5, 6};
    int64_t dims[2] = {2, 3};
    char *out = path_join(dir2, "test_data_set_0/output_0.pb");
    write_tensor(out, "x", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, dims, 2, as_double,
                 sizeof as_double);
    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "FAIL  test_shape: output 0 'x' (data set 0): shape: expected [6], got [2,3]");
    ASSERT_HAS(r, "FAIL  test_dtype: output 0 'x' (data set 0): dtype: expected float64, got "
                  "float32");
    ASSERT_SUMMARY(r, "0 passed, 2 failed, 0 skipped");
    free(out);
}

Test(cli_test, malformed_cases_are_errors_and_the_run_goes_on) {
    char *root = make_root();
    make_identity_case(root, "test_a_good", ones_to_six, ones_to_six);

    char *garbage = make_case_dir(root, "test_garbage_model");
    char *model = path_join(garbage, "model.onnx");
    write_text(model, "this is not a protobuf \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff");
    free(model);

    char *no_model = make_case_dir(root, "test_no_model");
    int64_t dims[2] = {2, 3};
    write_case_file(no_model, "test_data_set_0/output_0.pb", "x", dims, 2, ones_to_six, 6);

    char *bad_pb = make_identity_case(root, "test_bad_pb", ones_to_six, ones_to_six);
    char *pb = path_join(bad_pb, "test_data_set_0/output_0.pb");
    write_text(pb, "\x0a\xff\xff\xff\xff\x0f garbage");
    free(pb);

    char *no_output = make_identity_case(root, "test_no_output", ones_to_six, ones_to_six);
    pb = path_join(no_output, "test_data_set_0/output_0.pb");
    cr_assert_eq(unlink(pb), 0);
    free(pb);

    char *no_sets = path_join(root, "test_no_data_sets");
    make_dir(no_sets);
    value_spec x = {"x", 2, {2, 3}};
    model = path_join(no_sets, "model.onnx");
    write_model(model, &x, 1, &x, 1, NULL, 0);
    free(model);

    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "ERROR test_garbage_model: load:");
    ASSERT_HAS(r, "ERROR test_no_model: model.onnx is missing");
    ASSERT_HAS(r, "ERROR test_bad_pb: ");
    ASSERT_HAS(r, "test_bad_pb/test_data_set_0/output_0.pb");
    ASSERT_HAS(r, "ERROR test_no_output: test_data_set_0 has 0 output files but the graph has 1");
    ASSERT_HAS(r, "ERROR test_no_data_sets: no test_data_set_* folder");
    ASSERT_SUMMARY(r, "1 passed, 5 failed, 0 skipped");
}

Test(cli_test, unsupported_operator_is_skipped) {
    char *root = make_root();
    make_unsupported_case(root, "test_unknown_op");
    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);
    ASSERT_HAS(r, "SKIP  test_unknown_op: load:");
    ASSERT_HAS(r, "NoSuchOp");
    /* The per-operator table counts the case although the model could not be loaded. */
    int cases = -1, passed = -1;
    cr_assert(table_row(r.output, "NoSuchOp", &cases, &passed), "%s", r.output);
    cr_assert_eq(cases, 1);
    cr_assert_eq(passed, 0);
    ASSERT_SUMMARY(r, "0 passed, 0 failed, 1 skipped");
}

Test(cli_test, kernel_outputs_are_compared) {
    char *root = make_root();
    make_op_case(root, "test_copy_right", "Copy", ones_to_six, ones_to_six);
    float wrong[6] = {1, 2, 3, -4, 5, 6};
    make_op_case(root, "test_copy_wrong", "Copy", ones_to_six, wrong);
    run_result r = run_ember("-v", root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "PASS  test_copy_right");
    ASSERT_HAS(r, "FAIL  test_copy_wrong: output 0 'y' (data set 0): 1 of 6 elements differ; "
                  "worst at [1,0] (flat 3): expected -4, got 4");
    int cases = -1, passed = -1;
    cr_assert(table_row(r.output, "test.ember.cli:Copy", &cases, &passed), "%s", r.output);
    cr_assert_eq(cases, 2);
    cr_assert_eq(passed, 1);
    ASSERT_SUMMARY(r, "1 passed, 1 failed, 0 skipped");
}

Test(cli_test, run_error_is_an_error) {
    char *root = make_root();
    make_op_case(root, "test_fail", "Fail", ones_to_six, ones_to_six);
    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "ERROR test_fail: run (test_data_set_0): ");
    ASSERT_HAS(r, "failing on purpose");
    ASSERT_SUMMARY(r, "0 passed, 1 failed, 0 skipped");
}

Test(cli_test, unsupported_only_before_running) {
    char *root = make_root();
    make_op_case(root, "test_refused_at_session", "CreateUnsupported", ones_to_six, ones_to_six);
    make_op_case(root, "test_refused_while_running", "RunUnsupported", ones_to_six, ones_to_six);
    run_result r = run_ember(root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "SKIP  test_refused_at_session: session: ");
    ASSERT_HAS(r, "ERROR test_refused_while_running: run (test_data_set_0): ");
    ASSERT_SUMMARY(r, "0 passed, 1 failed, 1 skipped");
}

Test(cli_test, crashing_kernel_is_isolated) {
    char *root = make_root();
    make_op_case(root, "test_crash", "Crash", ones_to_six, ones_to_six);
    make_op_case(root, "test_survivor", "Copy", ones_to_six, ones_to_six);
    run_result r = run_ember("-v", "--jobs", "1", root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "ERROR test_crash: crashed with signal 11");
    ASSERT_HAS(r, "PASS  test_survivor");
    ASSERT_SUMMARY(r, "1 passed, 1 failed, 0 skipped");
}

Test(cli_test, hanging_kernel_times_out) {
    char *root = make_root();
    make_op_case(root, "test_hang", "Hang", ones_to_six, ones_to_six);
    make_op_case(root, "test_quick", "Copy", ones_to_six, ones_to_six);
    run_result r = run_ember("--timeout", "0.5", "--jobs", "2", root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "ERROR test_hang: timed out after 0.5 s");
    ASSERT_SUMMARY(r, "1 passed, 1 failed, 0 skipped");
}

Test(cli_test, parallel_jobs_report_in_order) {
    char *root = make_root();
    float wrong[6] = {0};
    char name[32];
    for (int i = 0; i < 24; i++) {
        snprintf(name, sizeof name, "test_case_%02d", i);
        const char *op = i % 6 == 1 ? "Crash" : "Copy";
        make_op_case(root, name, op, ones_to_six, i % 6 == 4 ? wrong : ones_to_six);
    }
    run_result r = run_ember("-v", "--jobs", "4", root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    const char *at = r.output;
    for (int i = 0; i < 24; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s test_case_%02d",
                 i % 6 == 1 ? "ERROR" : i % 6 == 4 ? "FAIL " : "PASS ", i);
        const char *found = strstr(at, line);
        cr_assert(found, "'%s' missing or out of order in:\n%s", line, r.output);
        at = found + 1;
    }
    ASSERT_SUMMARY(r, "16 passed, 8 failed, 0 skipped");
}

Test(cli_test, filter_selects_cases_by_name) {
    char *root = make_root();
    make_identity_case(root, "test_add_one", ones_to_six, ones_to_six);
    float wrong[6] = {0};
    make_identity_case(root, "test_sub_one", ones_to_six, wrong);
    run_result r = run_ember("--filter", "^test_(add|mul)", root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);
    ASSERT_SUMMARY(r, "1 passed, 0 failed, 0 skipped");
    r = run_ember("--filter", "sub", root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_SUMMARY(r, "0 passed, 1 failed, 0 skipped");
    r = run_ember("--filter", "^nothing$", root, NULL);
    cr_assert_eq(r.status, 2, "%s", r.output);
    r = run_ember("--filter", "(", root, NULL);
    cr_assert_eq(r.status, 2, "%s", r.output);
}

Test(cli_test, expect_list_fails_only_on_regressions) {
    char *root = make_root();
    make_identity_case(root, "test_good", ones_to_six, ones_to_six);
    float wrong[6] = {0};
    make_identity_case(root, "test_bad", ones_to_six, wrong);
    make_unsupported_case(root, "test_skip");
    char *list = path_join(root, "expected.txt");

    /* Bad is not listed: its failure does not fail the run. */
    write_text(list, "# cases that pass\ntest_good  # trailing comment\n\n");
    run_result r = run_ember("--expect", list, root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);
    ASSERT_HAS(r, "0 regressions, 0 not found, 0 newly passing");
    ASSERT_SUMMARY(r, "1 passed, 1 failed, 1 skipped");

    /* Listed cases that fail or are skipped are regressions. */
    write_text(list, "test_good\ntest_bad\ntest_skip\n");
    r = run_ember("--expect", list, root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "REGRESSION test_bad (failed)");
    ASSERT_HAS(r, "REGRESSION test_skip (unsupported)");
    ASSERT_SUMMARY(r, "1 passed, 1 failed, 1 skipped");

    /* A passing case missing from the list is reported, not failed. */
    write_text(list, "# empty\n");
    r = run_ember("--expect", list, root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);
    ASSERT_HAS(r, "NEW PASS   test_good");

    /* A listed case that is not found is a regression unless --filter excludes it. */
    write_text(list, "test_good\ntest_gone\n");
    r = run_ember("--expect", list, root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_HAS(r, "REGRESSION test_gone (not found)");
    r = run_ember("--expect", list, "--filter", "good", root, NULL);
    cr_assert_eq(r.status, 0, "%s", r.output);

    /* Malformed lists are refused. */
    write_text(list, "test_good test_bad\n");
    r = run_ember("--expect", list, root, NULL);
    cr_assert_eq(r.status, 2, "%s", r.output);
    free(list);
}

Test(cli_test, tolerance_file_overrides_per_case) {
    char *root = make_root();
    float close[6] = {1, 2, 3, 4, 5, 6.06f};
    make_identity_case(root, "test_loose", ones_to_six, close);
    make_identity_case(root, "test_strict", ones_to_six, close);
    char *file = path_join(root, "tolerances.txt");
    write_text(file, "# reviewed\ntest_loose 0.02 0  # accumulates in float32\n"
                     "test_gone 1 1 # stale\n");
    run_result r = run_ember("--tolerances", file, root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    ASSERT_LACKS(r, "test_loose");
    ASSERT_HAS(r, "warning: ");
    ASSERT_HAS(r, "no case named 'test_gone'");
    ASSERT_HAS(r, "FAIL  test_strict");
    ASSERT_SUMMARY(r, "1 passed, 1 failed, 0 skipped");

    write_text(file, "test_loose 0.02 0\n"); /* no reason */
    r = run_ember("--tolerances", file, root, NULL);
    cr_assert_eq(r.status, 2, "%s", r.output);
    ASSERT_HAS(r, "needs a reason");
    free(file);
}

Test(cli_test, json_has_every_case) {
    char *root = make_root();
    make_identity_case(root, "test_good", ones_to_six, ones_to_six);
    float wrong[6] = {1, 2, 3, 4, 5, 7};
    make_identity_case(root, "test_bad", ones_to_six, wrong);
    make_unsupported_case(root, "test_skip");
    char *json = path_join(root, "result.json");
    run_result r = run_ember("--json", json, root, NULL);
    cr_assert_eq(r.status, 1, "%s", r.output);
    FILE *f = fopen(json, "r");
    cr_assert(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    const char *needles[] = {
        "\"totals\": {\"cases\": 3, \"passed\": 1, \"failed\": 1, \"unsupported\": 1, "
        "\"error\": 0}",
        "\"name\": \"test_bad\"", "\"status\": \"failed\"", "\"worst_index\": [1, 2]",
        "\"expected\": \"7\", \"got\": \"6\"", "\"max_abs_diff\": 1",
        "\"status\": \"unsupported\"", "{\"op_type\": \"NoSuchOp\", \"domain\": \"\", "
        "\"opset\": 17}",
        "\"input_types\": [\"float32\"]"};
    for (size_t i = 0; i < sizeof needles / sizeof *needles; i++)
        cr_assert(strstr(text, needles[i]), "missing %s in:\n%s", needles[i], text);
    free(json);
}

Test(cli_test, bad_paths_are_usage_errors) {
    run_result r = run_ember("/nonexistent/ember-cases", NULL);
    cr_assert_eq(r.status, 2, "%s", r.output);
    r = run_ember(NULL);
    cr_assert_eq(r.status, 2, "%s", r.output);
    r = run_ember("--bogus", "/tmp", NULL);
    cr_assert_eq(r.status, 2, "%s", r.output);
}
