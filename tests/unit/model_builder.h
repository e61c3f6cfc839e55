/* A small in-memory ONNX model builder on protobuf-c, shared by the unit tests that build graphs
 * of several nodes (test_ops_pool.c, test_ops_signal.c, test_tiling.c): every allocation belongs
 * to the builder and is freed by b_free. Lists are NULL-terminated compound literals (NODES,
 * VIS, INITS, STRS, ATTRS). Header-only, static inline, like one_node.h. */
#ifndef EMBER_TESTS_MODEL_BUILDER_H
#define EMBER_TESTS_MODEL_BUILDER_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "onnx.pb-c.h"

#define BUILDER_ALLOCS 2048

typedef struct builder {
    void *allocs[BUILDER_ALLOCS];
    int n;
} builder;

static inline void *b_alloc(builder *b, size_t size) {
    cr_assert_lt(b->n, BUILDER_ALLOCS);
    void *p = calloc(1, size ? size : 1);
    cr_assert_not_null(p);
    b->allocs[b->n++] = p;
    return p;
}

static inline void b_free(builder *b) {
    for (int i = 0; i < b->n; i++) free(b->allocs[i]);
    b->n = 0;
}

static inline char *b_str(builder *b, const char *s) {
    char *c = b_alloc(b, strlen(s) + 1);
    strcpy(c, s);
    return c;
}

static inline int count_null(const void *const *p) {
    int n = 0;
    while (p && p[n]) n++;
    return n;
}

/* Copy a NULL-terminated pointer array into the builder. */
static inline void *b_list(builder *b, void *const *list, size_t *count) {
    *count = (size_t)count_null((const void *const *)list);
    void **copy = b_alloc(b, sizeof *copy * (*count + 1));
    memcpy(copy, list, sizeof *copy * *count);
    return copy;
}

#define INTS(...)                                                                                  \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}
#define FLOATS(...) (int)(sizeof((float[]){__VA_ARGS__}) / sizeof(float)), (float[]){__VA_ARGS__}
#define STRS(...) (const char *[]){__VA_ARGS__, NULL}
#define ATTRS(...) (Onnx__AttributeProto *[]){__VA_ARGS__, NULL}
#define NO_ATTRS (Onnx__AttributeProto *[]){NULL}
#define NODES(...) (Onnx__NodeProto *[]){__VA_ARGS__, NULL}
#define VIS(...) (Onnx__ValueInfoProto *[]){__VA_ARGS__, NULL}
#define NO_VIS (Onnx__ValueInfoProto *[]){NULL}
#define INITS(...) (Onnx__TensorProto *[]){__VA_ARGS__, NULL}
#define NO_INITS (Onnx__TensorProto *[]){NULL}

/* Tensor value info of element type `elem`; rank < 0: no shape; a dim < 0: the symbolic "N". */
static inline Onnx__ValueInfoProto *vi(builder *b, const char *name, int elem, int rank,
                                       const int64_t *dims) {
    Onnx__ValueInfoProto *v = b_alloc(b, sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = b_str(b, name);
    Onnx__TypeProto *t = b_alloc(b, sizeof *t);
    onnx__type_proto__init(t);
    Onnx__TypeProto__Tensor *tt = b_alloc(b, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    if (rank >= 0) {
        Onnx__TensorShapeProto *sh = b_alloc(b, sizeof *sh);
        onnx__tensor_shape_proto__init(sh);
        sh->n_dim = (size_t)rank;
        sh->dim = b_alloc(b, sizeof *sh->dim * (size_t)(rank + 1));
        for (int i = 0; i < rank; i++) {
            Onnx__TensorShapeProto__Dimension *d = b_alloc(b, sizeof *d);
            onnx__tensor_shape_proto__dimension__init(d);
            if (dims[i] < 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = b_str(b, "N");
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[i];
            }
            sh->dim[i] = d;
        }
        tt->shape = sh;
    }
    t->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    t->tensor_type = tt;
    v->type = t;
    return v;
}

static inline Onnx__AttributeProto *a_new(builder *b, const char *name, int type) {
    Onnx__AttributeProto *a = b_alloc(b, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = b_str(b, name);
    a->has_type = 1;
    a->type = type;
    return a;
}

static inline Onnx__AttributeProto *a_int(builder *b, const char *name, int64_t v) {
    Onnx__AttributeProto *a = a_new(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
    return a;
}

static inline Onnx__AttributeProto *a_float(builder *b, const char *name, float v) {
    Onnx__AttributeProto *a = a_new(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
    return a;
}

static inline Onnx__AttributeProto *a_str(builder *b, const char *name, const char *v) {
    Onnx__AttributeProto *a = a_new(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.data = (uint8_t *)b_str(b, v);
    a->s.len = strlen(v);
    return a;
}

static inline Onnx__AttributeProto *a_ints(builder *b, const char *name, int n, const int64_t *v) {
    Onnx__AttributeProto *a = a_new(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)n;
    a->ints = b_alloc(b, sizeof(int64_t) * (size_t)n);
    memcpy(a->ints, v, sizeof(int64_t) * (size_t)n);
    return a;
}

static inline Onnx__AttributeProto *a_floats(builder *b, const char *name, int n, const float *v) {
    Onnx__AttributeProto *a = a_new(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    a->n_floats = (size_t)n;
    a->floats = b_alloc(b, sizeof(float) * (size_t)n);
    memcpy(a->floats, v, sizeof(float) * (size_t)n);
    return a;
}

static inline Onnx__AttributeProto *a_graph(builder *b, const char *name, Onnx__GraphProto *g) {
    Onnx__AttributeProto *a = a_new(b, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = g;
    return a;
}

static inline Onnx__NodeProto *node_in(builder *b, const char *domain, const char *op,
                                       const char **in, const char **out,
                                       Onnx__AttributeProto **attrs) {
    Onnx__NodeProto *n = b_alloc(b, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = b_str(b, op);
    n->domain = b_str(b, domain);
    n->n_input = (size_t)count_null((const void *const *)in);
    n->input = b_alloc(b, sizeof(char *) * (n->n_input + 1));
    for (size_t i = 0; i < n->n_input; i++) n->input[i] = b_str(b, in[i]);
    n->n_output = (size_t)count_null((const void *const *)out);
    n->output = b_alloc(b, sizeof(char *) * (n->n_output + 1));
    for (size_t i = 0; i < n->n_output; i++) n->output[i] = b_str(b, out[i]);
    n->attribute = b_list(b, (void *const *)attrs, &n->n_attribute);
    return n;
}

/* A node of the default domain. */
static inline Onnx__NodeProto *node(builder *b, const char *op, const char **in, const char **out,
                                    Onnx__AttributeProto **attrs) {
    return node_in(b, "", op, in, out, attrs);
}

/* An initializer of any fixed-size type, given as raw little-endian bytes. */
static inline Onnx__TensorProto *init_raw(builder *b, const char *name, int dtype, int rank,
                                          const int64_t *dims, const void *data, size_t bytes) {
    Onnx__TensorProto *t = b_alloc(b, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = b_str(b, name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)rank;
    t->dims = b_alloc(b, sizeof(int64_t) * (size_t)(rank + 1));
    if (rank) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = b_alloc(b, bytes);
    memcpy(t->raw_data.data, data, bytes);
    return t;
}

static inline Onnx__TensorProto *init_f32(builder *b, const char *name, int rank,
                                          const int64_t *dims, const float *vals) {
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= (size_t)dims[i];
    return init_raw(b, name, EMBER_FLOAT, rank, dims, vals, n * sizeof(float));
}

static inline Onnx__GraphProto *graph(builder *b, const char *name, Onnx__NodeProto **nodes,
                                      Onnx__ValueInfoProto **inputs,
                                      Onnx__ValueInfoProto **outputs, Onnx__TensorProto **inits) {
    Onnx__GraphProto *g = b_alloc(b, sizeof *g);
    onnx__graph_proto__init(g);
    g->name = b_str(b, name);
    g->node = b_list(b, (void *const *)nodes, &g->n_node);
    g->input = b_list(b, (void *const *)inputs, &g->n_input);
    g->output = b_list(b, (void *const *)outputs, &g->n_output);
    g->initializer = b_list(b, (void *const *)inits, &g->n_initializer);
    return g;
}

/* Serialize g (the default domain at `opset`, plus the training domain at 1) and load it. */
static inline ember_status load_model(builder *b, Onnx__GraphProto *g, int opset, ember_model **m,
                                      ember_error *err) {
    Onnx__ModelProto mp;
    onnx__model_proto__init(&mp);
    mp.has_ir_version = 1;
    mp.ir_version = 8;
    Onnx__OperatorSetIdProto ops[2];
    onnx__operator_set_id_proto__init(&ops[0]);
    ops[0].domain = b_str(b, "");
    ops[0].has_version = 1;
    ops[0].version = opset;
    onnx__operator_set_id_proto__init(&ops[1]);
    ops[1].domain = b_str(b, "ai.onnx.preview.training");
    ops[1].has_version = 1;
    ops[1].version = 1;
    Onnx__OperatorSetIdProto *opp[] = {&ops[0], &ops[1]};
    mp.n_opset_import = 2;
    mp.opset_import = opp;
    mp.graph = g;
    size_t size = onnx__model_proto__get_packed_size(&mp);
    uint8_t *buf = malloc(size);
    cr_assert_not_null(buf);
    onnx__model_proto__pack(&mp, buf);
    ember_status st = ember_model_load_memory(buf, size, NULL, m, err);
    free(buf);
    return st;
}

/* Load, create a session on 2 threads and run once: inputs and outputs by name. */
static inline ember_status run_model(builder *b, Onnx__GraphProto *g, int opset, int n_in,
                                     ember_tensor **inputs, const char **in_names, int n_out,
                                     const char **out_names, ember_tensor **outputs,
                                     ember_error *err) {
    ember_model *m = NULL;
    ember_status st = load_model(b, g, opset, &m, err);
    if (st != EMBER_OK) return st;
    ember_session_options opt;
    ember_session_options_init(&opt);
    opt.threads = 2;
    ember_session *s = NULL;
    st = ember_session_create(m, &opt, &s, err);
    if (st == EMBER_OK)
        st = ember_session_run(s, in_names, (const ember_tensor *const *)inputs, (size_t)n_in,
                               out_names, (size_t)n_out, outputs, err);
    ember_session_free(s);
    ember_model_free(m);
    return st;
}

/* A tensor of type dt filled from vals (left as created when vals is NULL). */
static inline ember_tensor *tensor_of(ember_dtype dt, int rank, const int64_t *dims,
                                      const void *vals) {
    ember_tensor *t;
    cr_assert_eq(ember_tensor_create(dt, dims, rank, &t, NULL), EMBER_OK);
    if (vals) memcpy(ember_tensor_data(t), vals, ember_tensor_byte_size(t));
    return t;
}

static inline void expect_dims(const ember_tensor *t, int rank, const int64_t *dims) {
    cr_assert_eq(ember_tensor_rank(t), rank, "rank %d vs %d", ember_tensor_rank(t), rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(ember_tensor_dims(t)[i], dims[i], "dim %d: %lld vs %lld", i,
                     (long long)ember_tensor_dims(t)[i], (long long)dims[i]);
}

#endif
