/* Small graph queries and edits shared by the optimizer passes. */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

bool em_pass_is_onnx_op(const em_node *n, const char *op) {
    return n->op_type && n->domain[0] == '\0' && strcmp(n->op_type, op) == 0;
}

void em_pass_remove_node(em_node *n) {
    free(n->op_type);
    n->op_type = NULL;
}

int em_pass_sole_consumer(const em_graph *g, int v) {
    if (v < 0 || g->values[v].is_output) return -1;
    int found = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        if (!n->op_type) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v) {
                if (found >= 0 && found != i) return -1;
                found = i;
            }
    }
    return found;
}

int em_pass_live_producer(const em_graph *g, int v) {
    if (v < 0) return -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        if (!n->op_type) continue;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] == v) return i;
    }
    return -1;
}
