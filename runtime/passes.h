/* Optimizer passes over a session's graph. Each returns the number of rewrites; nodes are
 * removed by clearing op_type (em_graph_compact drops them). */
#ifndef EMBER_RUNTIME_PASSES_H
#define EMBER_RUNTIME_PASSES_H

#include "kernel.h"

/* The constant behind value v if it is fixed: not an initializer that the caller may override
 * through a graph input of the same name (IR < 4 models list weights as inputs). */
static inline const em_tensor *em_fixed_const(const em_graph *g, int v) {
    return v >= 0 && !g->values[v].is_input ? g->values[v].constant : NULL;
}

/* em_fixed_const of input i of node n (NULL if absent). */
static inline const em_tensor *em_node_fixed_input(const em_graph *g, const em_node *n, int i) {
    return i >= 0 && i < n->n_inputs ? em_fixed_const(g, n->inputs[i]) : NULL;
}

int em_pass_fold_shapes(em_graph *g);
int em_pass_shape_values(em_graph *g);       /* Reshape targets computed from symbolic dims */
int em_pass_fold_conv_bn(em_graph *g);        /* changes rounding: EMBER_OPT_ALL only */
int em_pass_fuse_activations(em_graph *g);
int em_pass_fuse_conv_maxpool(em_graph *g);   /* after em_pass_fuse_activations */
int em_pass_matmul_add_to_gemm(em_graph *g);  /* changes rounding: EMBER_OPT_ALL only */
int em_pass_fuse_layer_norm(em_graph *g);     /* changes rounding: EMBER_OPT_ALL only */
int em_pass_matmul_bias(em_graph *g);         /* N-D MatMul + bias -> FusedMatMul */
int em_pass_fuse_attention(em_graph *g);      /* changes rounding: EMBER_OPT_ALL only */
int em_pass_fuse_mbconv(em_graph *g);         /* changes rounding: EMBER_OPT_ALL only */

/* Shared by the passes (runtime/pass_util.c). */
/* A live node of the default domain with this op_type. */
bool em_pass_is_onnx_op(const em_node *n, const char *op);
/* Marks a node dead (dead nodes have op_type NULL and are dropped after the passes). */
void em_pass_remove_node(em_node *n);
/* The only live node reading value v (however many of its inputs), when v is not a graph
 * output; else -1. */
int em_pass_sole_consumer(const em_graph *g, int v);
/* The live node producing value v, or -1 (an input or constant). Scanned, because fusion
 * passes rewire outputs without updating em_value.producer. */
int em_pass_live_producer(const em_graph *g, int v);

#endif
