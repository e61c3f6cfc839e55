/* Optimizer passes over a session's graph. Each returns the number of rewrites; nodes are
 * removed by clearing op_type (em_graph_compact drops them). */
#ifndef EMBER_RUNTIME_PASSES_H
#define EMBER_RUNTIME_PASSES_H

#include "kernel.h"

int em_pass_fold_shapes(em_graph *g);
int em_pass_fold_conv_bn(em_graph *g);        /* changes rounding: EMBER_OPT_ALL only */
int em_pass_fuse_activations(em_graph *g);
int em_pass_matmul_add_to_gemm(em_graph *g);  /* changes rounding: EMBER_OPT_ALL only */

#endif
