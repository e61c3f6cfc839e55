/* Internal definitions of the public handles. */
#ifndef EMBER_RUNTIME_MODEL_H
#define EMBER_RUNTIME_MODEL_H

#include <stdatomic.h>

#include "ir.h"

/* Loaded model: immutable after load, shared by sessions through a reference count. */
struct ember_model {
    atomic_int refs;
    em_graph *graph;
    int64_t ir_version;
    char *producer;
    char *path; /* file name for messages ("<memory>" when loaded from memory) */
    size_t n_inputs, n_outputs;
    ember_value_info *inputs, *outputs; /* public descriptions (strings point into graph) */
    size_t n_warnings;
    char **warnings;
    size_t n_nodes;
    ember_node_info *nodes;
    uint64_t param_count, param_bytes;
};

struct ember_tensor {
    em_tensor t;
    char *name;
};

typedef struct em_load_limits {
    uint64_t max_tensor_bytes;
    uint64_t max_nodes;
    int max_depth; /* nesting of subgraphs and functions */
} em_load_limits;

void em_load_limits_init(em_load_limits *l, const ember_load_options *o);

/* Parse a ModelProto into an em_model (graph built, kernels resolved, static shapes inferred). */
ember_status em_model_load(const void *data, size_t size, const char *display_name,
                           const char *base_dir, const em_load_limits *limits,
                           struct ember_model **out, ember_error *err);
void em_model_release(struct ember_model *m);

struct ember_op_scan {
    size_t count, capacity;
    ember_op_use *uses; /* strings owned (malloc'd) */
};

/* The operators a ModelProto uses (ember_op_scan_memory); nothing else is built. */
ember_status em_scan_ops(const void *data, size_t size, const char *display_name,
                         const em_load_limits *limits, struct ember_op_scan **out,
                         ember_error *err);
void em_op_scan_free(struct ember_op_scan *scan);

/* Decode a serialized TensorProto. *name receives a malloc'd copy of its name (may be ""). */
ember_status em_tensor_from_pb(const void *data, size_t size, const em_load_limits *limits,
                               em_tensor **out, char **name, ember_error *err);
/* Serialize a tensor as a TensorProto; *out is malloc'd. */
ember_status em_tensor_to_pb(const em_tensor *t, const char *name, void **out, size_t *size,
                             ember_error *err);

/* Static shape and type inference over a graph (fills values[].info). Never fails on
 * unknown shapes; fails on shapes that are provably wrong. */
ember_status em_infer_static(em_graph *g, const char *what, ember_error *err);

/* Lints: one line per warning, appended to *list (malloc'd strings). */
size_t em_lint(const em_graph *g, char ***warnings);

#endif
