/* Graph IR: what the loader builds from a ModelProto and what passes, planner and executor use.
 * Independent of protobuf-c: only loader.c sees the file format. */
#ifndef EMBER_RUNTIME_IR_H
#define EMBER_RUNTIME_IR_H

#include "tensor.h"

struct em_op;
struct em_graph;

typedef enum em_attr_type {
    EM_ATTR_UNDEFINED = 0,
    EM_ATTR_FLOAT = 1,
    EM_ATTR_INT = 2,
    EM_ATTR_STRING = 3,
    EM_ATTR_TENSOR = 4,
    EM_ATTR_GRAPH = 5,
    EM_ATTR_FLOATS = 6,
    EM_ATTR_INTS = 7,
    EM_ATTR_STRINGS = 8,
    EM_ATTR_TENSORS = 9,
    EM_ATTR_GRAPHS = 10,
    EM_ATTR_TYPE_PROTO = 13, /* kept in `t` as a type-only value (data NULL) */
} em_attr_type; /* numbering follows AttributeProto.AttributeType */

typedef struct em_attr {
    char *name;
    em_attr_type type;
    float f;
    int64_t i;
    char *s; /* NUL-terminated copy; s_len excludes the NUL (strings may contain NULs) */
    size_t s_len;
    em_tensor *t;
    struct em_graph *g;
    int64_t n; /* element count of the list forms */
    float *floats;
    int64_t *ints;
    char **strings;
    em_tensor **tensors;
    struct em_graph **graphs;
} em_attr;

typedef struct em_node {
    char *name;    /* may be "" */
    char *op_type;
    char *domain;  /* "" for the default ONNX domain */
    int opset;     /* version of `domain` the model imports */
    int index;     /* position in the file's node list (for messages) */
    int n_inputs;  /* explicit inputs first, then implicit captures of subgraphs */
    int n_explicit_inputs;
    int *inputs; /* value ids, -1 for an omitted optional input */
    int n_outputs;
    int *outputs; /* value ids, -1 for an omitted optional output */
    int n_attrs;
    em_attr *attrs;
    const struct em_op *op; /* kernel chosen for (domain, op_type, opset) */
    void *state;            /* kernel state made by op->create (session graphs only) */
} em_node;

typedef struct em_value {
    char *name;
    em_tensor info;      /* dtype and static shape; rank -1 unknown, dim -1 unknown/symbolic */
    char **dim_params;   /* EM_MAX_RANK names of symbolic dims, or NULL */
    em_tensor *constant; /* initializer, Constant or folded value (immutable), or NULL */
    int producer;        /* node index, or -1 */
    int n_consumers;
    bool is_input;       /* declared graph input */
    bool is_output;      /* declared graph output */
    int outer;           /* for a subgraph capture: index into the owning node's inputs; else -1 */
} em_value;

typedef struct em_opset {
    char *domain; /* "" for the default domain */
    int64_t version;
} em_opset;

typedef struct em_graph {
    char *name;
    int n_values, cap_values;
    em_value *values;
    int n_nodes, cap_nodes;
    em_node *nodes; /* topologically sorted after em_graph_toposort */
    int n_inputs;
    int *inputs; /* declared inputs in order (those with a constant are optional) */
    int n_outputs;
    int *outputs;
    int n_captures;
    int *captures; /* values this subgraph reads from enclosing graphs (value->outer set) */
    struct em_graph *parent;
    int n_opsets;
    em_opset *opsets; /* shared with the root graph's model for subgraphs: owned by root only */
    bool owns_opsets;
} em_graph;

em_graph *em_graph_new(void);
void em_graph_free(em_graph *g);
/* A copy whose constants (and attribute tensors) are views of g's: g must outlive it. */
em_graph *em_graph_clone(const em_graph *g, ember_error *err);

/* Find a value by name in this graph only; -1 if absent. */
int em_graph_find_value(const em_graph *g, const char *name);
/* Add a value (name copied) and return its id, or -1 on no memory. */
int em_graph_add_value(em_graph *g, const char *name);
/* Append a node (strings copied, arrays allocated, no attributes); returns index or -1. */
int em_graph_add_node(em_graph *g, const char *op_type, const char *domain, const char *name,
                      int n_inputs, const int *inputs, int n_outputs, const int *outputs);
/* Rebuild producer / consumer counts, then sort nodes topologically. Fails on cycles,
 * a value produced twice, or a consumed value that is neither produced, input, nor constant. */
ember_status em_graph_finalize(em_graph *g, const char *what, ember_error *err);
/* Remove nodes marked by op_type == NULL and values no longer referenced. */
void em_graph_compact(em_graph *g);

int64_t em_graph_opset(const em_graph *g, const char *domain);

/* Attribute look-ups (NULL / default when absent or of another type). */
const em_attr *em_node_attr(const em_node *n, const char *name);
int64_t em_attr_int(const em_node *n, const char *name, int64_t dflt);
float em_attr_float(const em_node *n, const char *name, float dflt);
const char *em_attr_string(const em_node *n, const char *name, const char *dflt);
/* Returns the list and its length in *count, or NULL with *count = 0. */
const int64_t *em_attr_ints(const em_node *n, const char *name, int64_t *count);
const float *em_attr_floats(const em_node *n, const char *name, int64_t *count);
const em_tensor *em_attr_tensor(const em_node *n, const char *name);
const em_graph *em_attr_graph(const em_node *n, const char *name);

/* The constant behind input i of a node, or NULL if the input is absent or not constant. */
const em_tensor *em_node_const_input(const em_graph *g, const em_node *n, int i);
/* Static info of input / output i (dtype, shape, rank -1 unknown), or NULL if absent. */
const em_tensor *em_node_input_info(const em_graph *g, const em_node *n, int i);

/* "node 'name' (#index, Op, opset N)" for messages. */
const char *em_node_desc(const em_node *n, char *buf, size_t size);

void em_attr_clear(em_attr *a);

#endif
