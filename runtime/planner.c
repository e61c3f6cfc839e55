/* The planner: liveness of every value, so the executor can hand a buffer back to the arena
 * right after its last reader ran. Buffers are then reused by later nodes (best fit by size),
 * and kept across runs so a session running the same shapes allocates nothing after its
 * first run. */
#include <stdlib.h>

#include "session.h"

ember_status em_plan_build(const em_graph *g, em_plan *plan, ember_error *err) {
    plan->memo_ok = NULL;
    plan->last_use = malloc(sizeof(int) * ((size_t)g->n_values + 1));
    if (!plan->last_use) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (int v = 0; v < g->n_values; v++) plan->last_use[v] = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] >= 0) plan->last_use[g->nodes[i].inputs[k]] = i;
    for (int k = 0; k < g->n_outputs; k++) plan->last_use[g->outputs[k]] = g->n_nodes;
    return EMBER_OK;
}

void em_plan_free(em_plan *plan) {
    free(plan->last_use);
    plan->last_use = NULL;
    free(plan->memo_ok);
    plan->memo_ok = NULL;
}
