/* Sequence, optional and string values: the public API (create, accessors, .pb files), the
 * sequence, optional and string operators run through small models, and their error paths. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <math.h>

#include "ember.h"
#include "onnx.pb-c.h"

/* ---- a small arena for the protobuf-c structs of one model ---- */

typedef struct pool {
    void *items[512];
    int n;
} pool;

static void *pool_alloc(pool *p, size_t size) {
    cr_assert_lt(p->n, 512);
    void *q = calloc(1, size);
    cr_assert_not_null(q);
    p->items[p->n++] = q;
    return q;
}

static void pool_free(pool *p) {
    for (int i = 0; i < p->n; i++) free(p->items[i]);
    p->n = 0;
}

/* ---- model building ---- */

typedef struct io_spec {
    const char *name;
    ember_value_kind kind;
    ember_value_kind elem_kind; /* optionals: what they hold */
    ember_dtype dtype;
} io_spec;

#define T(name, dt)                                                                                \
    { name, EMBER_KIND_TENSOR, EMBER_KIND_TENSOR, dt }
#define SEQ(name, dt)                                                                              \
    { name, EMBER_KIND_SEQUENCE, EMBER_KIND_TENSOR, dt }
#define OPT(name, dt)                                                                              \
    { name, EMBER_KIND_OPTIONAL, EMBER_KIND_TENSOR, dt }
#define OPT_SEQ(name, dt)                                                                          \
    { name, EMBER_KIND_OPTIONAL, EMBER_KIND_SEQUENCE, dt }

typedef struct graph_spec graph_spec;

typedef struct node_spec {
    const char *op;
    const char *in[4]; /* "" omitted, NULL end */
    const char *out[2];
    const char *int_names[3];
    int64_t ints[3];
    const char *str_names[2]; /* string attributes */
    const char *strs[2];
    const char *list_name;  /* a strings attribute */
    const char *list[4];    /* NULL end */
    const graph_spec *body; /* attribute "body" */
    const io_spec *type;    /* attribute "type" (Optional) */
} node_spec;

struct graph_spec {
    const node_spec *nodes;
    int n_nodes;
    const io_spec *inputs;
    int n_inputs;
    const io_spec *outputs;
    int n_outputs;
};

static Onnx__TypeProto *make_type(pool *p, const io_spec *s) {
    Onnx__TypeProto *tensor = pool_alloc(p, sizeof *tensor);
    onnx__type_proto__init(tensor);
    Onnx__TypeProto__Tensor *tt = pool_alloc(p, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = (int32_t)s->dtype;
    tensor->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tensor->tensor_type = tt;
    Onnx__TypeProto *inner = tensor;
    bool seq = s->kind == EMBER_KIND_SEQUENCE ||
               (s->kind == EMBER_KIND_OPTIONAL && s->elem_kind == EMBER_KIND_SEQUENCE);
    if (seq) {
        inner = pool_alloc(p, sizeof *inner);
        onnx__type_proto__init(inner);
        Onnx__TypeProto__Sequence *st = pool_alloc(p, sizeof *st);
        onnx__type_proto__sequence__init(st);
        st->elem_type = tensor;
        inner->value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
        inner->sequence_type = st;
    }
    if (s->kind != EMBER_KIND_OPTIONAL) return inner;
    Onnx__TypeProto *outer = pool_alloc(p, sizeof *outer);
    onnx__type_proto__init(outer);
    Onnx__TypeProto__Optional *ot = pool_alloc(p, sizeof *ot);
    onnx__type_proto__optional__init(ot);
    ot->elem_type = inner;
    outer->value_case = ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE;
    outer->optional_type = ot;
    return outer;
}

static Onnx__ValueInfoProto **make_values(pool *p, const io_spec *s, int n) {
    Onnx__ValueInfoProto **list = pool_alloc(p, sizeof *list * (size_t)(n + 1));
    for (int i = 0; i < n; i++) {
        list[i] = pool_alloc(p, sizeof *list[i]);
        onnx__value_info_proto__init(list[i]);
        list[i]->name = (char *)s[i].name;
        list[i]->type = make_type(p, &s[i]);
    }
    return list;
}

static Onnx__GraphProto *make_graph(pool *p, const graph_spec *gs, const char *name) {
    Onnx__GraphProto *g = pool_alloc(p, sizeof *g);
    onnx__graph_proto__init(g);
    g->name = (char *)name;
    g->n_node = (size_t)gs->n_nodes;
    g->node = pool_alloc(p, sizeof *g->node * (size_t)(gs->n_nodes + 1));
    for (int i = 0; i < gs->n_nodes; i++) {
        const node_spec *ns = &gs->nodes[i];
        Onnx__NodeProto *n = pool_alloc(p, sizeof *n);
        onnx__node_proto__init(n);
        n->op_type = (char *)ns->op;
        while (n->n_input < 4 && ns->in[n->n_input]) n->n_input++;
        n->input = (char **)ns->in;
        while (n->n_output < 2 && ns->out[n->n_output]) n->n_output++;
        n->output = (char **)ns->out;
        n->attribute = pool_alloc(p, sizeof *n->attribute * 8);
        for (int a = 0; a < 3 && ns->int_names[a]; a++) {
            Onnx__AttributeProto *at = pool_alloc(p, sizeof *at);
            onnx__attribute_proto__init(at);
            at->name = (char *)ns->int_names[a];
            at->has_type = 1;
            at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            at->has_i = 1;
            at->i = ns->ints[a];
            n->attribute[n->n_attribute++] = at;
        }
        for (int a = 0; a < 2 && ns->str_names[a]; a++) {
            Onnx__AttributeProto *at = pool_alloc(p, sizeof *at);
            onnx__attribute_proto__init(at);
            at->name = (char *)ns->str_names[a];
            at->has_type = 1;
            at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
            at->has_s = 1;
            at->s.data = (uint8_t *)ns->strs[a];
            at->s.len = strlen(ns->strs[a]);
            n->attribute[n->n_attribute++] = at;
        }
        if (ns->list_name) {
            Onnx__AttributeProto *at = pool_alloc(p, sizeof *at);
            onnx__attribute_proto__init(at);
            at->name = (char *)ns->list_name;
            at->has_type = 1;
            at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
            at->strings = pool_alloc(p, sizeof *at->strings * 4);
            for (; at->n_strings < 4 && ns->list[at->n_strings]; at->n_strings++) {
                at->strings[at->n_strings].data = (uint8_t *)ns->list[at->n_strings];
                at->strings[at->n_strings].len = strlen(ns->list[at->n_strings]);
            }
            n->attribute[n->n_attribute++] = at;
        }
        if (ns->body) {
            Onnx__AttributeProto *at = pool_alloc(p, sizeof *at);
            onnx__attribute_proto__init(at);
            at->name = "body";
            at->has_type = 1;
            at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
            at->g = make_graph(p, ns->body, "body");
            n->attribute[n->n_attribute++] = at;
        }
        if (ns->type) {
            Onnx__AttributeProto *at = pool_alloc(p, sizeof *at);
            onnx__attribute_proto__init(at);
            at->name = "type";
            at->has_type = 1;
            at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO;
            at->tp = make_type(p, ns->type);
            n->attribute[n->n_attribute++] = at;
        }
        g->node[i] = n;
    }
    g->n_input = (size_t)gs->n_inputs;
    g->input = make_values(p, gs->inputs, gs->n_inputs);
    g->n_output = (size_t)gs->n_outputs;
    g->output = make_values(p, gs->outputs, gs->n_outputs);
    return g;
}

static ember_status load_graph(const graph_spec *gs, int opset, ember_model **m, ember_error *err) {
    pool p = {0};
    Onnx__OperatorSetIdProto opset_id, *opsets[1] = {&opset_id};
    onnx__operator_set_id_proto__init(&opset_id);
    opset_id.domain = "";
    opset_id.has_version = 1;
    opset_id.version = opset;
    Onnx__ModelProto model;
    onnx__model_proto__init(&model);
    model.has_ir_version = 1;
    model.ir_version = 8;
    model.graph = make_graph(&p, gs, "g");
    model.n_opset_import = 1;
    model.opset_import = opsets;
    size_t size = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = malloc(size);
    cr_assert_not_null(buf);
    onnx__model_proto__pack(&model, buf);
    pool_free(&p);
    ember_status st = ember_model_load_memory(buf, size, NULL, m, err);
    free(buf);
    return st;
}

/* Load, create a session and run with inputs named after the graph's inputs (in order);
 * every graph output is returned. The inputs are not freed. */
static ember_status run_graph(const graph_spec *gs, int opset, ember_tensor *const *inputs,
                              ember_tensor **outputs, ember_error *err) {
    ember_model *m = NULL;
    ember_session *s = NULL;
    ember_status st = load_graph(gs, opset, &m, err);
    if (st == EMBER_OK) {
        ember_session_options o;
        ember_session_options_init(&o);
        o.threads = 1;
        st = ember_session_create(m, &o, &s, err);
    }
    if (st == EMBER_OK) {
        const char *in_names[8], *out_names[8];
        for (int i = 0; i < gs->n_inputs; i++) in_names[i] = gs->inputs[i].name;
        for (int i = 0; i < gs->n_outputs; i++) out_names[i] = gs->outputs[i].name;
        st =
            ember_session_run(s, in_names, (const ember_tensor *const *)inputs,
                              (size_t)gs->n_inputs, out_names, (size_t)gs->n_outputs, outputs, err);
    }
    ember_session_free(s);
    ember_model_free(m);
    return st;
}

/* ---- values ---- */

static ember_tensor *f32(const int64_t *dims, int rank, const float *data) {
    ember_tensor *t = NULL;
    ember_error err;
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, dims, rank, &t, &err), EMBER_OK, "%s",
                 err.message);
    if (ember_tensor_byte_size(t)) memcpy(ember_tensor_data(t), data, ember_tensor_byte_size(t));
    return t;
}

static ember_tensor *i64_scalar(int64_t v) {
    ember_tensor *t = NULL;
    cr_assert_eq(ember_tensor_create(EMBER_INT64, NULL, 0, &t, NULL), EMBER_OK);
    *(int64_t *)ember_tensor_data(t) = v;
    return t;
}

/* A float sequence of 1-D tensors {first, first+1, ...} of the given lengths. */
static ember_tensor *f32_seq(const int64_t *lens, int n, float first) {
    ember_tensor *s = NULL;
    ember_error err;
    cr_assert_eq(ember_sequence_create(EMBER_FLOAT, &s, &err), EMBER_OK, "%s", err.message);
    for (int i = 0; i < n; i++) {
        float data[16];
        for (int64_t j = 0; j < lens[i]; j++) data[j] = first++;
        ember_tensor *t = f32(&lens[i], 1, data);
        cr_assert_eq(ember_sequence_append(s, t, &err), EMBER_OK, "%s", err.message);
        ember_tensor_free(t);
    }
    return s;
}

static void expect_f32(const ember_tensor *t, const int64_t *dims, int rank, const float *want) {
    cr_assert_eq(ember_tensor_kind(t), EMBER_KIND_TENSOR);
    cr_assert_eq(ember_tensor_dtype(t), EMBER_FLOAT);
    cr_assert_eq(ember_tensor_rank(t), rank);
    for (int d = 0; d < rank; d++) cr_assert_eq(ember_tensor_dims(t)[d], dims[d], "dim %d", d);
    const float *got = ember_tensor_const_data(t);
    for (int64_t i = 0; i < ember_tensor_element_count(t); i++)
        cr_assert_eq(got[i], want[i], "[%lld]: %g, expected %g", (long long)i, got[i], want[i]);
}

/* Item i of a sequence (a copy the test frees). */
static ember_tensor *item(const ember_tensor *s, size_t i) {
    ember_tensor *t = NULL;
    ember_error err;
    cr_assert_eq(ember_sequence_get(s, i, &t, &err), EMBER_OK, "%s", err.message);
    return t;
}

static void expect_item(const ember_tensor *s, size_t i, const int64_t *dims, int rank,
                        const float *want) {
    ember_tensor *t = item(s, i);
    expect_f32(t, dims, rank, want);
    ember_tensor_free(t);
}

static void free_all(ember_tensor **ts, int n) {
    for (int i = 0; i < n; i++) ember_tensor_free(ts[i]);
}

/* ---- public API ---- */

Test(sequence_api, create_append_get) {
    int64_t lens[] = {2, 3};
    ember_tensor *s = f32_seq(lens, 2, 1.0f);
    cr_assert_eq(ember_tensor_kind(s), EMBER_KIND_SEQUENCE);
    cr_assert_eq(ember_tensor_dtype(s), EMBER_FLOAT);
    cr_assert_eq(ember_tensor_rank(s), 0);
    cr_assert_eq(ember_tensor_element_count(s), 0);
    cr_assert_eq(ember_tensor_byte_size(s), 0);
    cr_assert_null(ember_tensor_data(s));
    cr_assert_eq(ember_sequence_length(s), 2);
    expect_item(s, 1, (int64_t[]){3}, 1, (float[]){3, 4, 5});
    ember_tensor *t = NULL;
    ember_error err;
    cr_assert_eq(ember_sequence_get(s, 2, &t, &err), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_null(t);
    cr_assert(strstr(err.message, "past the sequence"), "%s", err.message);
    /* A sequence of float cannot take an int64 tensor, nor a sequence. */
    ember_tensor *k = i64_scalar(1);
    cr_assert_eq(ember_sequence_append(s, k, &err), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_eq(ember_sequence_append(s, s, &err), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_eq(ember_sequence_length(s), 2);
    cr_assert_eq(ember_sequence_append(k, k, &err), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_eq(ember_tensor_save(s, "/tmp/ember_seq_unused.pb", NULL, &err),
                 EMBER_ERR_UNSUPPORTED);
    ember_tensor_free(k);
    ember_tensor_free(s);
}

Test(sequence_api, undefined_element_type_follows_first_item) {
    ember_tensor *s = NULL;
    cr_assert_eq(ember_sequence_create(EMBER_UNDEFINED, &s, NULL), EMBER_OK);
    cr_assert_eq(ember_tensor_dtype(s), EMBER_UNDEFINED);
    ember_tensor *k = i64_scalar(7);
    cr_assert_eq(ember_sequence_append(s, k, NULL), EMBER_OK);
    cr_assert_eq(ember_tensor_dtype(s), EMBER_INT64);
    ember_tensor_free(k);
    ember_tensor_free(s);
    cr_assert_eq(ember_sequence_create(EMBER_STRING, &s, NULL), EMBER_ERR_UNSUPPORTED);
    cr_assert_null(s);
}

Test(sequence_api, optionals) {
    ember_tensor *none = NULL, *some = NULL, *got = NULL;
    ember_error err;
    cr_assert_eq(ember_optional_create(EMBER_KIND_TENSOR, EMBER_FLOAT, NULL, &none, &err),
                 EMBER_OK);
    cr_assert_eq(ember_tensor_kind(none), EMBER_KIND_OPTIONAL);
    cr_assert_eq(ember_optional_has_value(none), 0);
    cr_assert_eq(ember_optional_get(none, &got, &err), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_null(got);
    int64_t lens[] = {1};
    ember_tensor *s = f32_seq(lens, 1, 5.0f);
    cr_assert_eq(ember_optional_create(EMBER_KIND_SEQUENCE, EMBER_FLOAT, s, &some, &err), EMBER_OK);
    ember_tensor_free(s); /* the optional holds its own copy */
    cr_assert_eq(ember_optional_has_value(some), 1);
    cr_assert_eq(ember_optional_element_kind(some), EMBER_KIND_SEQUENCE);
    cr_assert_eq(ember_optional_get(some, &got, &err), EMBER_OK);
    cr_assert_eq(ember_tensor_kind(got), EMBER_KIND_SEQUENCE);
    expect_item(got, 0, (int64_t[]){1}, 1, (float[]){5});
    ember_tensor_free(got);
    /* Mismatched kind or element type, an optional of an optional. */
    ember_tensor *t = i64_scalar(1), *bad = NULL;
    cr_assert_eq(ember_optional_create(EMBER_KIND_SEQUENCE, EMBER_INT64, t, &bad, &err),
                 EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_eq(ember_optional_create(EMBER_KIND_TENSOR, EMBER_FLOAT, t, &bad, &err),
                 EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_eq(ember_optional_create(EMBER_KIND_OPTIONAL, EMBER_FLOAT, NULL, &bad, &err),
                 EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_null(bad);
    ember_tensor_free(t);
    ember_tensor_free(some);
    ember_tensor_free(none);
}

/* ---- SequenceProto / OptionalProto files ---- */

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static size_t put_bytes(uint8_t *p, unsigned field, const void *data, size_t len) {
    size_t n = put_varint(p, (uint64_t)field << 3 | 2);
    n += put_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

static size_t put_int(uint8_t *p, unsigned field, uint64_t v) {
    size_t n = put_varint(p, (uint64_t)field << 3);
    return n + put_varint(p + n, v);
}

/* A serialized float TensorProto of shape [n] holding first, first+1, ... */
static size_t tensor_pb(uint8_t *buf, int64_t n, float first) {
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    float data[8];
    for (int64_t i = 0; i < n; i++) data[i] = first + (float)i;
    tp.n_dims = 1;
    tp.dims = &n;
    tp.has_data_type = 1;
    tp.data_type = EMBER_FLOAT;
    tp.n_float_data = (size_t)n;
    tp.float_data = data;
    return onnx__tensor_proto__pack(&tp, buf);
}

Test(sequence_files, sequence_and_optional_protos) {
    uint8_t t0[64], t1[64], seq[256], opt[512];
    size_t n0 = tensor_pb(t0, 2, 1.0f), n1 = tensor_pb(t1, 1, 9.0f);
    size_t ns = put_bytes(seq, 1, "s", 1);
    ns += put_int(seq + ns, 2, 1); /* elem_type TENSOR */
    ns += put_bytes(seq + ns, 3, t0, n0);
    ns += put_bytes(seq + ns, 3, t1, n1);
    ember_tensor *v = NULL;
    ember_error err;
    cr_assert_eq(ember_value_load_memory(seq, ns, EMBER_KIND_SEQUENCE, &v, &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_str_eq(ember_tensor_name(v), "s");
    cr_assert_eq(ember_sequence_length(v), 2);
    expect_item(v, 0, (int64_t[]){2}, 1, (float[]){1, 2});
    expect_item(v, 1, (int64_t[]){1}, 1, (float[]){9});
    ember_tensor_free(v);

    /* optional(sequence) holding the sequence above; and an empty optional. */
    size_t no = put_int(opt, 2, 3); /* elem_type SEQUENCE */
    no += put_bytes(opt + no, 5, seq, ns);
    cr_assert_eq(ember_value_load_memory(opt, no, EMBER_KIND_OPTIONAL, &v, &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_eq(ember_optional_element_kind(v), EMBER_KIND_SEQUENCE);
    cr_assert_eq(ember_optional_has_value(v), 1);
    ember_tensor_free(v);
    no = put_int(opt, 2, 1);
    cr_assert_eq(ember_value_load_memory(opt, no, EMBER_KIND_OPTIONAL, &v, &err), EMBER_OK);
    cr_assert_eq(ember_optional_has_value(v), 0);
    ember_tensor_free(v);
}

Test(sequence_files, malformed_and_unsupported) {
    uint8_t t0[64], seq[256];
    size_t n0 = tensor_pb(t0, 2, 1.0f);
    size_t ns = put_int(seq, 2, 1);
    ns += put_bytes(seq + ns, 3, t0, n0);
    ember_tensor *v = NULL;
    ember_error err;
    /* Truncated inside the tensor field. */
    cr_assert_eq(ember_value_load_memory(seq, ns - 3, EMBER_KIND_SEQUENCE, &v, &err),
                 EMBER_ERR_PARSE);
    cr_assert_null(v);
    /* A sequence of maps. */
    size_t nm = put_int(seq, 2, 4);
    cr_assert_eq(ember_value_load_memory(seq, nm, EMBER_KIND_SEQUENCE, &v, &err),
                 EMBER_ERR_UNSUPPORTED);
    /* A sequence whose items mix float and int64. */
    Onnx__TensorProto tp;
    onnx__tensor_proto__init(&tp);
    int64_t one = 1, dims = 1;
    tp.n_dims = 1;
    tp.dims = &dims;
    tp.has_data_type = 1;
    tp.data_type = EMBER_INT64;
    tp.n_int64_data = 1;
    tp.int64_data = &one;
    uint8_t t1[64];
    size_t n1 = onnx__tensor_proto__pack(&tp, t1);
    ns = put_bytes(seq, 3, t0, n0);
    ns += put_bytes(seq + ns, 3, t1, n1);
    cr_assert_eq(ember_value_load_memory(seq, ns, EMBER_KIND_SEQUENCE, &v, &err), EMBER_ERR_PARSE);
    cr_assert(strstr(err.message, "mixes"), "%s", err.message);
    cr_assert_eq(ember_value_load_memory(seq, ns, (ember_value_kind)7, &v, &err),
                 EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_null(v);
}

/* ---- operators ---- */

Test(sequence_ops, construct_insert_erase_at_length) {
    static const node_spec nodes[] = {
        {.op = "SequenceConstruct", .in = {"a", "b", NULL}, .out = {"s0", NULL}},
        {.op = "SequenceInsert",
         .in = {"s0", "c", "pos", NULL},
         .out = {"s1", NULL}},                                            /* pos -1: before last */
        {.op = "SequenceErase", .in = {"s1", NULL}, .out = {"s2", NULL}}, /* drops the last */
        {.op = "SequenceAt", .in = {"s1", "pos", NULL}, .out = {"at", NULL}},
        {.op = "SequenceLength", .in = {"s2", NULL}, .out = {"len", NULL}},
    };
    static const io_spec ins[] = {T("a", EMBER_FLOAT), T("b", EMBER_FLOAT), T("c", EMBER_FLOAT),
                                  T("pos", EMBER_INT64)};
    static const io_spec outs[] = {SEQ("s1", EMBER_FLOAT), SEQ("s2", EMBER_FLOAT),
                                   T("at", EMBER_FLOAT), T("len", EMBER_INT64)};
    graph_spec gs = {nodes, 5, ins, 4, outs, 4};
    ember_tensor *in[4] = {f32((int64_t[]){1}, 1, (float[]){1}),
                           f32((int64_t[]){2}, 1, (float[]){2, 3}),
                           f32((int64_t[]){1}, 1, (float[]){9}), i64_scalar(-1)};
    ember_tensor *out[4] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(ember_sequence_length(out[0]), 3);
    expect_item(out[0], 0, (int64_t[]){1}, 1, (float[]){1});
    expect_item(out[0], 1, (int64_t[]){1}, 1, (float[]){9});
    expect_item(out[0], 2, (int64_t[]){2}, 1, (float[]){2, 3});
    cr_assert_eq(ember_sequence_length(out[1]), 2);
    expect_item(out[1], 1, (int64_t[]){1}, 1, (float[]){9});
    expect_f32(out[2], (int64_t[]){2}, 1, (float[]){2, 3});
    cr_assert_eq(*(const int64_t *)ember_tensor_const_data(out[3]), 2);
    free_all(out, 4);
    free_all(in, 4);
}

Test(sequence_ops, position_out_of_range_fails_cleanly) {
    static const node_spec nodes[] = {
        {.op = "SequenceConstruct", .in = {"a", "a", NULL}, .out = {"s", NULL}},
        {.op = "SequenceAt", .in = {"s", "pos", NULL}, .out = {"at", NULL}},
    };
    static const io_spec ins[] = {T("a", EMBER_FLOAT), T("pos", EMBER_INT64)};
    static const io_spec outs[] = {T("at", EMBER_FLOAT)};
    graph_spec gs = {nodes, 2, ins, 2, outs, 1};
    int64_t bad[] = {2, -3};
    for (int i = 0; i < 2; i++) {
        ember_tensor *in[2] = {f32((int64_t[]){1}, 1, (float[]){1}), i64_scalar(bad[i])};
        ember_tensor *out[1] = {0};
        ember_error err;
        cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_ERR_RUNTIME);
        cr_assert(strstr(err.message, "out of range"), "%s", err.message);
        cr_assert_null(out[0]);
        free_all(in, 2);
    }
}

Test(sequence_ops, erase_from_empty_fails) {
    static const node_spec nodes[] = {
        {.op = "SequenceEmpty", .in = {NULL}, .out = {"s", NULL}},
        {.op = "SequenceErase", .in = {"s", NULL}, .out = {"e", NULL}},
    };
    static const io_spec outs[] = {SEQ("e", EMBER_FLOAT)};
    graph_spec gs = {nodes, 2, NULL, 0, outs, 1};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, NULL, out, &err), EMBER_ERR_RUNTIME);
    cr_assert(strstr(err.message, "empty sequence"), "%s", err.message);
    cr_assert_null(out[0]);
}

Test(sequence_ops, split_and_concat) {
    static const node_spec nodes[] = {
        {.op = "SplitToSequence",
         .in = {"x", NULL},
         .out = {"parts", NULL},
         .int_names = {"axis", "keepdims"},
         .ints = {1, 0}},
        {.op = "SplitToSequence",
         .in = {"x", "split", NULL},
         .out = {"chunks", NULL},
         .int_names = {"axis"},
         .ints = {1}},
        {.op = "ConcatFromSequence",
         .in = {"parts", NULL},
         .out = {"stacked", NULL},
         .int_names = {"axis", "new_axis"},
         .ints = {0, 1}},
        {.op = "ConcatFromSequence",
         .in = {"chunks", NULL},
         .out = {"joined", NULL},
         .int_names = {"axis"},
         .ints = {-1}},
    };
    static const io_spec ins[] = {T("x", EMBER_FLOAT), T("split", EMBER_INT64)};
    static const io_spec outs[] = {SEQ("parts", EMBER_FLOAT), SEQ("chunks", EMBER_FLOAT),
                                   T("stacked", EMBER_FLOAT), T("joined", EMBER_FLOAT)};
    graph_spec gs = {nodes, 4, ins, 2, outs, 4};
    /* x = [[0 1 2], [3 4 5]]; split 2 along axis 1 gives [2, 1] columns. */
    ember_tensor *in[2] = {f32((int64_t[]){2, 3}, 2, (float[]){0, 1, 2, 3, 4, 5}), i64_scalar(2)};
    ember_tensor *out[4] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(ember_sequence_length(out[0]), 3);
    expect_item(out[0], 2, (int64_t[]){2}, 1, (float[]){2, 5}); /* keepdims 0: rank 1 */
    cr_assert_eq(ember_sequence_length(out[1]), 2);
    expect_item(out[1], 0, (int64_t[]){2, 2}, 2, (float[]){0, 1, 3, 4});
    expect_item(out[1], 1, (int64_t[]){2, 1}, 2, (float[]){2, 5});
    expect_f32(out[2], (int64_t[]){3, 2}, 2, (float[]){0, 3, 1, 4, 2, 5}); /* transposed */
    expect_f32(out[3], (int64_t[]){2, 3}, 2, (float[]){0, 1, 2, 3, 4, 5});
    free_all(out, 4);
    free_all(in, 2);
}

Test(sequence_ops, split_lengths_must_add_up) {
    static const node_spec nodes[] = {
        {.op = "SplitToSequence", .in = {"x", "split", NULL}, .out = {"parts", NULL}},
    };
    static const io_spec ins[] = {T("x", EMBER_FLOAT), T("split", EMBER_INT64)};
    static const io_spec outs[] = {SEQ("parts", EMBER_FLOAT)};
    graph_spec gs = {nodes, 1, ins, 2, outs, 1};
    ember_tensor *split = NULL;
    cr_assert_eq(ember_tensor_create(EMBER_INT64, (int64_t[]){2}, 1, &split, NULL), EMBER_OK);
    ((int64_t *)ember_tensor_data(split))[0] = 1;
    ((int64_t *)ember_tensor_data(split))[1] = 1;
    ember_tensor *in[2] = {f32((int64_t[]){3}, 1, (float[]){1, 2, 3}), split};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_ERR_RUNTIME);
    cr_assert(strstr(err.message, "add up"), "%s", err.message);
    free_all(in, 2);
}

Test(sequence_ops, identity_copies_and_same_output_twice) {
    static const node_spec nodes[] = {{.op = "Identity", .in = {"s", NULL}, .out = {"t", NULL}}};
    static const io_spec ins[] = {SEQ("s", EMBER_FLOAT)};
    static const io_spec outs[] = {SEQ("t", EMBER_FLOAT), SEQ("t", EMBER_FLOAT)};
    graph_spec gs = {nodes, 1, ins, 1, outs, 2};
    int64_t lens[] = {2, 1};
    ember_tensor *in[1] = {f32_seq(lens, 2, 0.0f)};
    ember_tensor *out[2] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 16, in, out, &err), EMBER_OK, "%s", err.message);
    ember_tensor_free(in[0]); /* outputs must not depend on the input */
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(ember_sequence_length(out[k]), 2);
        expect_item(out[k], 1, (int64_t[]){1}, 1, (float[]){2});
    }
    free_all(out, 2);
}

Test(sequence_ops, kind_mismatch_is_refused) {
    /* A tensor fed where the graph declares a sequence. */
    static const node_spec nodes[] = {
        {.op = "SequenceLength", .in = {"s", NULL}, .out = {"n", NULL}}};
    static const io_spec ins[] = {SEQ("s", EMBER_FLOAT)};
    static const io_spec outs[] = {T("n", EMBER_INT64)};
    graph_spec gs = {nodes, 1, ins, 1, outs, 1};
    ember_tensor *in[1] = {f32((int64_t[]){1}, 1, (float[]){1})};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_ERR_SHAPE);
    cr_assert(strstr(err.message, "sequence"), "%s", err.message);
    free_all(in, 1);
    /* A tensor kernel given a sequence: refused at load. */
    static const node_spec add[] = {{.op = "Add", .in = {"s", "s", NULL}, .out = {"y", NULL}}};
    static const io_spec add_out[] = {T("y", EMBER_FLOAT)};
    graph_spec gs2 = {add, 1, ins, 1, add_out, 1};
    ember_model *m = NULL;
    cr_assert_eq(load_graph(&gs2, 13, &m, &err), EMBER_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "takes tensors"), "%s", err.message);
    cr_assert_null(m);
}

Test(sequence_ops, optional_ops) {
    static const io_spec none_type = T("", EMBER_FLOAT);
    static const node_spec nodes[] = {
        {.op = "Optional", .in = {"x", NULL}, .out = {"some", NULL}},
        {.op = "Optional", .in = {NULL}, .out = {"none", NULL}, .type = &none_type},
        {.op = "OptionalHasElement", .in = {"some", NULL}, .out = {"has_some", NULL}},
        {.op = "OptionalHasElement", .in = {"none", NULL}, .out = {"has_none", NULL}},
        {.op = "OptionalGetElement", .in = {"some", NULL}, .out = {"value", NULL}},
    };
    static const io_spec ins[] = {T("x", EMBER_FLOAT)};
    static const io_spec outs[] = {T("has_some", EMBER_BOOL), T("has_none", EMBER_BOOL),
                                   T("value", EMBER_FLOAT), OPT("none", EMBER_FLOAT)};
    graph_spec gs = {nodes, 5, ins, 1, outs, 4};
    ember_tensor *in[1] = {f32((int64_t[]){2}, 1, (float[]){4, 5})};
    ember_tensor *out[4] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 15, in, out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(*(const bool *)ember_tensor_const_data(out[0]), true);
    cr_assert_eq(*(const bool *)ember_tensor_const_data(out[1]), false);
    expect_f32(out[2], (int64_t[]){2}, 1, (float[]){4, 5});
    cr_assert_eq(ember_tensor_kind(out[3]), EMBER_KIND_OPTIONAL);
    cr_assert_eq(ember_optional_has_value(out[3]), 0);
    free_all(out, 4);
    free_all(in, 1);
}

Test(sequence_ops, optional_get_element_of_none_fails) {
    static const node_spec nodes[] = {
        {.op = "OptionalGetElement", .in = {"o", NULL}, .out = {"v", NULL}}};
    static const io_spec ins[] = {OPT_SEQ("o", EMBER_FLOAT)};
    static const io_spec outs[] = {SEQ("v", EMBER_FLOAT)};
    graph_spec gs = {nodes, 1, ins, 1, outs, 1};
    ember_tensor *none = NULL;
    cr_assert_eq(ember_optional_create(EMBER_KIND_SEQUENCE, EMBER_FLOAT, NULL, &none, NULL),
                 EMBER_OK);
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 15, &none, out, &err), EMBER_ERR_RUNTIME);
    cr_assert(strstr(err.message, "holds no value"), "%s", err.message);
    cr_assert_null(out[0]);
    ember_tensor_free(none);
}

/* r = SequenceMap(s, y) with body(x_i, y) = Add(x_i, y). */
static const node_spec map_add_body_nodes[] = {
    {.op = "Add", .in = {"bx", "by", NULL}, .out = {"bz", NULL}}};
static const io_spec map_add_body_in[] = {T("bx", EMBER_FLOAT), T("by", EMBER_FLOAT)};
static const io_spec map_add_body_out[] = {T("bz", EMBER_FLOAT)};
static const graph_spec map_add_body = {map_add_body_nodes, 1, map_add_body_in, 2,
                                        map_add_body_out,   1};
static const node_spec map_add_nodes[] = {
    {.op = "SequenceMap", .in = {"s", "y", NULL}, .out = {"r", NULL}, .body = &map_add_body},
};
static const io_spec map_add_ins[] = {SEQ("s", EMBER_FLOAT), T("y", EMBER_FLOAT)};
static const io_spec map_add_outs[] = {SEQ("r", EMBER_FLOAT)};
static const graph_spec map_add_graph = {map_add_nodes, 1, map_add_ins, 2, map_add_outs, 1};

Test(sequence_ops, sequence_map_with_a_tensor_input) {
    /* body(x_i, y) = Add(x_i, y) for every x_i of the sequence. */
    const graph_spec *gs = &map_add_graph;
    int64_t lens[] = {1, 1, 1};
    ember_tensor *in[2] = {f32_seq(lens, 3, 1.0f), f32((int64_t[]){1}, 1, (float[]){10})};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(gs, 17, in, out, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(ember_sequence_length(out[0]), 3);
    expect_item(out[0], 2, (int64_t[]){1}, 1, (float[]){13});
    free_all(out, 1);
    free_all(in, 2);
}

Test(sequence_ops, sequence_map_body_error_frees_partial_results) {
    /* Items of different lengths: Add against a [2] tensor fails on the second item. */
    const graph_spec *gs = &map_add_graph;
    int64_t lens[] = {2, 3};
    ember_tensor *in[2] = {f32_seq(lens, 2, 1.0f), f32((int64_t[]){2}, 1, (float[]){1, 1})};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_neq(run_graph(gs, 17, in, out, &err), EMBER_OK);
    cr_assert_null(out[0]);
    free_all(in, 2);
}

/* ---- string tensors ---- */

static ember_tensor *strings(const int64_t *dims, int rank, const char *const *values) {
    ember_tensor *t = NULL;
    ember_error err;
    cr_assert_eq(ember_tensor_create(EMBER_STRING, dims, rank, &t, &err), EMBER_OK, "%s",
                 err.message);
    for (int64_t i = 0; i < ember_tensor_element_count(t); i++)
        cr_assert_eq(ember_tensor_set_string(t, (size_t)i, values[i], &err), EMBER_OK);
    return t;
}

static void expect_strings(const ember_tensor *t, const int64_t *dims, int rank,
                           const char *const *want) {
    cr_assert_eq(ember_tensor_dtype(t), EMBER_STRING);
    cr_assert_eq(ember_tensor_rank(t), rank);
    for (int d = 0; d < rank; d++) cr_assert_eq(ember_tensor_dims(t)[d], dims[d], "dim %d", d);
    for (int64_t i = 0; i < ember_tensor_element_count(t); i++)
        cr_assert_str_eq(ember_tensor_string(t, (size_t)i), want[i], "[%lld]", (long long)i);
}

Test(string_api, create_set_get_save_load) {
    ember_tensor *t = strings((int64_t[]){3}, 1, (const char *[]){"a", "", "long string"});
    ember_error err;
    cr_assert_null(ember_tensor_data(t));
    cr_assert_eq(ember_tensor_byte_size(t), 0);
    cr_assert_null(ember_tensor_string(t, 3));
    cr_assert_eq(ember_tensor_set_string(t, 3, "x", &err), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_eq(ember_tensor_set_string(t, 0, "replaced", &err), EMBER_OK);
    char path[] = "/tmp/ember_strings_XXXXXX.pb";
    int fd = mkstemps(path, 3);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(ember_tensor_save(t, path, "s", &err), EMBER_OK, "%s", err.message);
    ember_tensor *back = NULL;
    cr_assert_eq(ember_tensor_load(path, &back, &err), EMBER_OK, "%s", err.message);
    remove(path);
    expect_strings(back, (int64_t[]){3}, 1, (const char *[]){"replaced", "", "long string"});
    cr_assert_str_eq(ember_tensor_name(back), "s");
    ember_tensor_free(back);
    cr_assert_eq(ember_tensor_save(t, "/tmp/ember_strings_unused.npy", NULL, &err),
                 EMBER_ERR_UNSUPPORTED);
    ember_tensor *w = NULL;
    char *ptrs[1] = {NULL};
    cr_assert_eq(ember_tensor_wrap(EMBER_STRING, (int64_t[]){1}, 1, ptrs, sizeof ptrs, &w, &err),
                 EMBER_ERR_UNSUPPORTED);
    ember_tensor *k = i64_scalar(1);
    cr_assert_eq(ember_tensor_set_string(k, 0, "x", &err), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_null(ember_tensor_string(k, 0));
    ember_tensor_free(k);
    ember_tensor_free(t);
}

Test(string_ops, cast_float_to_string_forms) {
    static const node_spec nodes[] = {
        {.op = "Cast", .in = {"x", NULL}, .out = {"y", NULL}, .int_names = {"to"}, .ints = {8}},
    };
    static const io_spec ins[] = {T("x", EMBER_FLOAT)};
    static const io_spec outs[] = {T("y", EMBER_STRING)};
    graph_spec gs = {nodes, 1, ins, 1, outs, 1};
    float v[] = {3.0f, 1e-5f, 123456789.0f, NAN, -INFINITY, -0.0f, 0.1f, 1e16f, 0.00012f};
    ember_tensor *in[1] = {f32((int64_t[]){9}, 1, v)};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_OK, "%s", err.message);
    expect_strings(out[0], (int64_t[]){9}, 1,
                   (const char *[]){"3.0", "1e-05", "123456790.0", "nan", "-inf", "-0.0", "0.1",
                                    "1e+16", "0.00012"});
    free_all(out, 1);
    free_all(in, 1);
}

Test(string_ops, cast_string_to_numbers) {
    static const node_spec nodes[] = {
        {.op = "Cast", .in = {"s", NULL}, .out = {"f", NULL}, .int_names = {"to"}, .ints = {1}},
        {.op = "Cast", .in = {"s", NULL}, .out = {"i", NULL}, .int_names = {"to"}, .ints = {7}},
    };
    static const io_spec ins[] = {T("s", EMBER_STRING)};
    static const io_spec outs[] = {T("f", EMBER_FLOAT), T("i", EMBER_INT64)};
    graph_spec gs = {nodes, 2, ins, 1, outs, 2};
    ember_tensor *in[1] = {
        strings((int64_t[]){4}, 1, (const char *[]){"1E2", "-INF", " 2.5", "100.5"})};
    ember_tensor *out[2] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_OK, "%s", err.message);
    const float *f = ember_tensor_const_data(out[0]);
    cr_assert(f[0] == 100.0f && isinf(f[1]) && f[1] < 0 && f[2] == 2.5f && f[3] == 100.5f);
    const int64_t *i = ember_tensor_const_data(out[1]);
    cr_assert(i[0] == 100 && i[2] == 2 && i[3] == 100);
    free_all(out, 2);
    free_all(in, 1);
    /* Not a number: refused, nothing returned. */
    in[0] = strings((int64_t[]){1}, 1, (const char *[]){"Hello World!"});
    cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_ERR_RUNTIME);
    cr_assert(strstr(err.message, "not a number"), "%s", err.message);
    cr_assert_null(out[0]);
    free_all(in, 1);
}

Test(string_ops, normalizer) {
    static const node_spec nodes[] = {
        {.op = "StringNormalizer",
         .in = {"x", NULL},
         .out = {"y", NULL},
         .str_names = {"case_change_action"},
         .strs = {"LOWER"},
         .list_name = "stopwords",
         .list = {"the", NULL}},
    };
    static const io_spec ins[] = {T("x", EMBER_STRING)};
    static const io_spec outs[] = {T("y", EMBER_STRING)};
    graph_spec gs = {nodes, 1, ins, 1, outs, 1};
    ember_tensor *in[1] = {strings((int64_t[]){1, 3}, 2, (const char *[]){"The", "Cat", "SAT"})};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 10, in, out, &err), EMBER_OK, "%s", err.message);
    expect_strings(out[0], (int64_t[]){1, 2}, 2, (const char *[]){"cat", "sat"});
    free_all(out, 1);
    free_all(in, 1);
    /* Everything removed: one empty string. */
    in[0] = strings((int64_t[]){2}, 1, (const char *[]){"the", "THE"});
    cr_assert_eq(run_graph(&gs, 10, in, out, &err), EMBER_OK, "%s", err.message);
    expect_strings(out[0], (int64_t[]){1}, 1, (const char *[]){""});
    free_all(out, 1);
    free_all(in, 1);
}

Test(string_ops, normalizer_bad_action_and_tensor_ops_refuse_strings) {
    static const node_spec nodes[] = {
        {.op = "StringNormalizer",
         .in = {"x", NULL},
         .out = {"y", NULL},
         .str_names = {"case_change_action"},
         .strs = {"TITLE"}},
    };
    static const io_spec ins[] = {T("x", EMBER_STRING)};
    static const io_spec outs[] = {T("y", EMBER_STRING)};
    graph_spec gs = {nodes, 1, ins, 1, outs, 1};
    ember_tensor *in[1] = {strings((int64_t[]){1}, 1, (const char *[]){"a"})};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 10, in, out, &err), EMBER_ERR_INVALID_MODEL);
    cr_assert(strstr(err.message, "TITLE"), "%s", err.message);
    static const node_spec add[] = {{.op = "Add", .in = {"x", "x", NULL}, .out = {"y", NULL}}};
    graph_spec gs2 = {add, 1, ins, 1, outs, 1};
    cr_assert_eq(run_graph(&gs2, 13, in, out, &err), EMBER_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "string tensor"), "%s", err.message);
    free_all(in, 1);
}

Test(string_ops, identity_copies_strings) {
    static const node_spec nodes[] = {{.op = "Identity", .in = {"x", NULL}, .out = {"y", NULL}}};
    static const io_spec ins[] = {T("x", EMBER_STRING)};
    static const io_spec outs[] = {T("y", EMBER_STRING)};
    graph_spec gs = {nodes, 1, ins, 1, outs, 1};
    ember_tensor *in[1] = {strings((int64_t[]){2}, 1, (const char *[]){"p", "q"})};
    ember_tensor *out[1] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, in, out, &err), EMBER_OK, "%s", err.message);
    free_all(in, 1);
    expect_strings(out[0], (int64_t[]){2}, 1, (const char *[]){"p", "q"});
    free_all(out, 1);
}

Test(string_ops, constant_strings) {
    static const node_spec nodes[] = {
        {.op = "Constant",
         .out = {"c", NULL},
         .list_name = "value_strings",
         .list = {"first", "", "third", NULL}},
        {.op = "StringNormalizer",
         .in = {"c", NULL},
         .out = {"y", NULL},
         .str_names = {"case_change_action"},
         .strs = {"UPPER"}},
    };
    static const io_spec outs[] = {T("c", EMBER_STRING), T("y", EMBER_STRING)};
    graph_spec gs = {nodes, 2, NULL, 0, outs, 2};
    ember_tensor *out[2] = {0};
    ember_error err;
    cr_assert_eq(run_graph(&gs, 13, NULL, out, &err), EMBER_OK, "%s", err.message);
    expect_strings(out[0], (int64_t[]){3}, 1, (const char *[]){"first", "", "third"});
    expect_strings(out[1], (int64_t[]){3}, 1, (const char *[]){"FIRST", "", "THIRD"});
    free_all(out, 2);
}
