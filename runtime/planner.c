/* The planner: liveness of every value, so the executor can hand a buffer back to the arena
 * right after its last reader ran. Buffers are then reused by later nodes (best fit by size),
 * and kept across runs so a session running the same shapes allocates nothing after its
 * first run.
 *
 * Concat placement (em_plan_concat, root graph of a session, opt level basic and up): an
 * input of a Concat that is produced only for it (one reader, not a graph input / output /
 * constant, producer's op flagged EM_OP_OUTPUT_VIEW) may be written by its producer straight
 * into the Concat's output, which then copies only its other inputs. The plan records the
 * candidates; the executor decides per run (see place_in_concat in executor.c): only when the
 * Concat's shapes of the previous run (its shape memo) still hold, every dim before the axis is
 * 1 (the slice is contiguous: channels of NCHW at batch 1) and the slice starts 64-byte
 * aligned. Concat skips an input whose data already sits at its destination. */
#include <stdlib.h>
#include <string.h>

#include "session.h"

ember_status em_plan_build(const em_graph *g, em_plan *plan, ember_error *err) {
    plan->memo_ok = NULL;
    plan->concat_into = NULL;
    plan->tile_cut = plan->n_tile_inputs = plan->n_tile_fixed = plan->n_tile_cross = 0;
    plan->tile_inputs = plan->tile_fixed = plan->tile_cross = NULL;
    plan->tile_sample_bytes = 0;
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
    free(plan->concat_into);
    plan->concat_into = NULL;
    free(plan->tile_inputs);
    free(plan->tile_fixed);
    free(plan->tile_cross);
    plan->tile_inputs = plan->tile_fixed = plan->tile_cross = NULL;
    plan->tile_cut = 0;
}

/* Whether value v (input `slot` of Concat node c) may be written by its producer straight into
 * c's output. Only structure is checked here; shapes, offsets and alignment at run time. */
static bool concat_candidate(const em_graph *g, const int *readers, const int *producer, int c,
                             int slot) {
    const em_node *cn = &g->nodes[c];
    int v = cn->inputs[slot];
    if (v < 0 || readers[v] != 1) return false; /* also: not read twice by the Concat itself */
    const em_value *val = &g->values[v];
    if (val->constant || val->is_input || val->is_output || val->outer >= 0 || producer[v] < 0 ||
        producer[v] > c)
        return false;
    const em_node *p = &g->nodes[producer[v]];
    if (!p->op || p->outputs[0] != v || !p->op->run || !(p->op->flags & EM_OP_OUTPUT_VIEW) ||
        (p->op->flags & (EM_OP_ALIAS_INPUT0 | EM_OP_DYNAMIC_OUTPUTS)))
        return false;
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v) return false;
    return true;
}

ember_status em_plan_concat(const em_graph *g, em_plan *plan, ember_error *err) {
    int *readers = calloc(2 * ((size_t)g->n_values + 1), sizeof *readers);
    plan->concat_into = malloc(sizeof(int) * 2 * ((size_t)g->n_values + 1));
    if (!readers || !plan->concat_into) {
        free(readers);
        free(plan->concat_into);
        plan->concat_into = NULL;
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    plan->concat_slot = plan->concat_into + g->n_values + 1;
    int *producer = readers + g->n_values + 1;
    for (int v = 0; v < g->n_values; v++)
        plan->concat_into[v] = plan->concat_slot[v] = producer[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) readers[n->inputs[k]]++;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0) producer[n->outputs[k]] = i;
    }
    for (int c = 0; c < g->n_nodes; c++) {
        const em_node *cn = &g->nodes[c];
        if (strcmp(cn->op_type, "Concat") != 0 || cn->domain[0] || !plan->memo_ok ||
            !plan->memo_ok[c])
            continue;
        for (int k = 0; k < cn->n_explicit_inputs; k++)
            if (concat_candidate(g, readers, producer, c, k)) {
                plan->concat_into[cn->inputs[k]] = c;
                plan->concat_slot[cn->inputs[k]] = k;
            }
    }
    free(readers);
    return EMBER_OK;
}
