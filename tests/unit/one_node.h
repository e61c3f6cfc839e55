/* One-node ONNX models built with protobuf-c and run through the public API: the shared
 * harness of the kernel edge-case tests (tests/unit/test_ops_*.c). */
#ifndef EMBER_TESTS_ONE_NODE_H
#define EMBER_TESTS_ONE_NODE_H

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "onnx.pb-c.h"

/* ---- one-node models ---- */

typedef struct attr_spec {
    const char *name;
    char kind; /* 'i' int, 'I' ints, 's' string */
    int64_t i;
    const int64_t *ints;
    size_t n;
    const char *s;
} attr_spec;

#define A_INT(name, v)                                                                             \
    { name, 'i', v, NULL, 0, NULL }
#define A_INTS(name, arr, count)                                                                   \
    { name, 'I', 0, arr, count, NULL }
#define A_STR(name, str)                                                                           \
    { name, 's', 0, NULL, 0, str }

#define MAX_IO 6

typedef struct node_case {
    const char *op;
    int opset;
    attr_spec attrs[6];
    int n_attrs;
    ember_tensor *in[MAX_IO]; /* NULL: omitted optional input */
    int n_in;
    ember_dtype out_types[MAX_IO];
    int n_out;
    int threads;
} node_case;

static ember_tensor *tensor(ember_dtype dt, const int64_t *dims, int rank, const void *data) {
    ember_tensor *t = NULL;
    ember_error err;
    cr_assert_eq(ember_tensor_create(dt, dims, rank, &t, &err), EMBER_OK, "%s", err.message);
    size_t bytes = ember_tensor_byte_size(t);
    if (bytes) memcpy(ember_tensor_data(t), data, bytes);
    return t;
}

static ember_tensor *f32(const int64_t *dims, int rank, const float *data) {
    return tensor(EMBER_FLOAT, dims, rank, data);
}
static ember_tensor *i64(const int64_t *dims, int rank, const int64_t *data) {
    return tensor(EMBER_INT64, dims, rank, data);
}

/* Serialize a model with one node: inputs i0.., outputs o0..; returns the bytes (malloc). */
static uint8_t *build_model(const node_case *c, size_t *size) {
    char in_names[MAX_IO][8], out_names[MAX_IO][8];
    char *node_in[MAX_IO], *node_out[MAX_IO];
    Onnx__ValueInfoProto vi[2 * MAX_IO], *g_in[MAX_IO], *g_out[MAX_IO];
    Onnx__TypeProto tp[2 * MAX_IO];
    Onnx__TypeProto__Tensor tt[2 * MAX_IO];
    int n_vi = 0, n_gin = 0;
    for (int k = 0; k < c->n_in; k++) {
        snprintf(in_names[k], sizeof in_names[k], "i%d", k);
        node_in[k] = c->in[k] ? in_names[k] : "";
        if (!c->in[k]) continue;
        onnx__value_info_proto__init(&vi[n_vi]);
        onnx__type_proto__init(&tp[n_vi]);
        onnx__type_proto__tensor__init(&tt[n_vi]);
        tt[n_vi].has_elem_type = 1;
        tt[n_vi].elem_type = (int32_t)ember_tensor_dtype(c->in[k]);
        tp[n_vi].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        tp[n_vi].tensor_type = &tt[n_vi];
        vi[n_vi].name = in_names[k];
        vi[n_vi].type = &tp[n_vi];
        g_in[n_gin++] = &vi[n_vi++];
    }
    for (int k = 0; k < c->n_out; k++) {
        snprintf(out_names[k], sizeof out_names[k], "o%d", k);
        node_out[k] = out_names[k];
        onnx__value_info_proto__init(&vi[n_vi]);
        onnx__type_proto__init(&tp[n_vi]);
        onnx__type_proto__tensor__init(&tt[n_vi]);
        tt[n_vi].has_elem_type = 1;
        tt[n_vi].elem_type = (int32_t)c->out_types[k];
        tp[n_vi].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
        tp[n_vi].tensor_type = &tt[n_vi];
        vi[n_vi].name = out_names[k];
        vi[n_vi].type = &tp[n_vi];
        g_out[k] = &vi[n_vi++];
    }
    Onnx__AttributeProto attrs[6], *attr_ptrs[6];
    for (int a = 0; a < c->n_attrs; a++) {
        const attr_spec *s = &c->attrs[a];
        onnx__attribute_proto__init(&attrs[a]);
        attrs[a].name = (char *)s->name;
        attrs[a].has_type = 1;
        if (s->kind == 'i') {
            attrs[a].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            attrs[a].has_i = 1;
            attrs[a].i = s->i;
        } else if (s->kind == 'I') {
            attrs[a].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
            attrs[a].n_ints = s->n;
            attrs[a].ints = (int64_t *)s->ints;
        } else {
            attrs[a].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
            attrs[a].has_s = 1;
            attrs[a].s.data = (uint8_t *)s->s;
            attrs[a].s.len = strlen(s->s);
        }
        attr_ptrs[a] = &attrs[a];
    }
    Onnx__NodeProto node;
    onnx__node_proto__init(&node);
    node.op_type = (char *)c->op;
    node.n_input = (size_t)c->n_in;
    node.input = node_in;
    node.n_output = (size_t)c->n_out;
    node.output = node_out;
    node.n_attribute = (size_t)c->n_attrs;
    node.attribute = attr_ptrs;
    Onnx__NodeProto *nodes[1] = {&node};
    Onnx__GraphProto graph;
    onnx__graph_proto__init(&graph);
    graph.name = "g";
    graph.n_node = 1;
    graph.node = nodes;
    graph.n_input = (size_t)n_gin;
    graph.input = g_in;
    graph.n_output = (size_t)c->n_out;
    graph.output = g_out;
    Onnx__OperatorSetIdProto opset, *opsets[1] = {&opset};
    onnx__operator_set_id_proto__init(&opset);
    opset.domain = "";
    opset.has_version = 1;
    opset.version = c->opset;
    Onnx__ModelProto model;
    onnx__model_proto__init(&model);
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.graph = &graph;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    *size = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = malloc(*size);
    cr_assert_not_null(buf);
    onnx__model_proto__pack(&model, buf);
    return buf;
}

/* Load, create a session, run. Outputs are set on success; the status of the first failing
 * step is returned with its message in err. */
static ember_status run_case(const node_case *c, ember_tensor **outs, ember_error *err) {
    size_t size;
    uint8_t *bytes = build_model(c, &size);
    ember_model *m = NULL;
    ember_session *s = NULL;
    ember_status st = ember_model_load_memory(bytes, size, NULL, &m, err);
    free(bytes);
    if (st == EMBER_OK) {
        ember_session_options o;
        ember_session_options_init(&o);
        o.threads = c->threads ? c->threads : 1;
        st = ember_session_create(m, &o, &s, err);
    }
    if (st == EMBER_OK) {
        const char *in_names[MAX_IO], *out_names[MAX_IO];
        const ember_tensor *ins[MAX_IO];
        char in_buf[MAX_IO][8], out_buf[MAX_IO][8];
        size_t n = 0;
        for (int k = 0; k < c->n_in; k++) {
            if (!c->in[k]) continue;
            snprintf(in_buf[k], sizeof in_buf[k], "i%d", k);
            in_names[n] = in_buf[k];
            ins[n++] = c->in[k];
        }
        for (int k = 0; k < c->n_out; k++) {
            snprintf(out_buf[k], sizeof out_buf[k], "o%d", k);
            out_names[k] = out_buf[k];
        }
        st = ember_session_run(s, in_names, ins, n, out_names, (size_t)c->n_out, outs, err);
    }
    ember_session_free(s);
    ember_model_free(m);
    for (int k = 0; k < c->n_in; k++) ember_tensor_free(c->in[k]);
    return st;
}

static ember_tensor *run_ok(const node_case *c) {
    ember_tensor *outs[MAX_IO] = {0};
    ember_error err = {0};
    ember_status st = run_case(c, outs, &err);
    cr_assert_eq(st, EMBER_OK, "%s: %s", c->op, err.message);
    for (int k = 1; k < c->n_out; k++) ember_tensor_free(outs[k]);
    return outs[0];
}

static void run_all_ok(const node_case *c, ember_tensor **outs) {
    ember_error err = {0};
    ember_status st = run_case(c, outs, &err);
    cr_assert_eq(st, EMBER_OK, "%s: %s", c->op, err.message);
}

static void expect_fail(const node_case *c, ember_status code, const char *needle) {
    ember_tensor *outs[MAX_IO] = {0};
    ember_error err = {0};
    ember_status st = run_case(c, outs, &err);
    cr_assert_eq(st, code, "%s: expected status %d, got %d (%s)", c->op, code, st, err.message);
    cr_assert(strstr(err.message, needle), "%s: message '%s' lacks '%s'", c->op, err.message,
              needle);
    for (int k = 0; k < c->n_out; k++) cr_assert_null(outs[k]);
}

static void expect_shape(const ember_tensor *t, const int64_t *dims, int rank) {
    cr_assert_eq(ember_tensor_rank(t), rank, "rank %d, expected %d", ember_tensor_rank(t), rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(ember_tensor_dims(t)[i], dims[i], "dim %d: %lld, expected %lld", i,
                     (long long)ember_tensor_dims(t)[i], (long long)dims[i]);
}

static void expect_f32(const ember_tensor *t, const float *want, int64_t n) {
    cr_assert_eq(ember_tensor_dtype(t), EMBER_FLOAT);
    cr_assert_eq(ember_tensor_element_count(t), n);
    const float *got = ember_tensor_const_data(t);
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            cr_assert(isnan(got[i]), "[%lld]: %g, expected NaN", (long long)i, got[i]);
            continue;
        }
        cr_assert(got[i] == want[i] || fabsf(got[i] - want[i]) <= 1e-5f * fabsf(want[i]),
                  "[%lld]: %g, expected %g", (long long)i, got[i], want[i]);
    }
}

static void expect_i64(const ember_tensor *t, const int64_t *want, int64_t n) {
    cr_assert_eq(ember_tensor_dtype(t), EMBER_INT64);
    cr_assert_eq(ember_tensor_element_count(t), n);
    const int64_t *got = ember_tensor_const_data(t);
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(got[i], want[i], "[%lld]: %lld, expected %lld", (long long)i,
                     (long long)got[i], (long long)want[i]);
}

#endif
