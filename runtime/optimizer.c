/* Graph optimizer: exact rewrites of the session's copy of the graph, run before kernels are
 * created. Each pass keeps graph outputs (names and values) intact. */
#include <stdlib.h>
#include <string.h>

#include "pass_heads.h"
#include "passes.h"
#include "session.h"

static void mark_removed(em_node *n) {
    free(n->op_type);
    n->op_type = NULL; /* em_graph_compact drops it */
}

static bool is_op(const em_node *n, const char *op) {
    return n->op_type && n->domain[0] == '\0' && strcmp(n->op_type, op) == 0;
}

/* Replace every read of value `from` by `to` (node inputs only). */
static void redirect_uses(em_graph *g, int from, int to) {
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op_type) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == from) n->inputs[k] = to;
    }
}

static bool feeds_subgraph(const em_graph *g, int v) {
    /* Subgraph captures refer to node input slots, which redirect_uses updates; but a value
     * that is a graph output must keep its producer. */
    return g->values[v].is_output;
}

/* Identity, and Dropout in inference mode without a used mask, forward their input. */
static int pass_remove_identity(em_graph *g) {
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op_type) continue;
        bool identity = is_op(n, "Identity") && n->n_inputs == 1;
        if (is_op(n, "Dropout") && n->n_explicit_inputs >= 1) {
            bool mask_used = n->n_outputs > 1 && n->outputs[1] >= 0 &&
                             g->values[n->outputs[1]].n_consumers > 0;
            const em_tensor *training = em_node_fixed_input(g, n, 2);
            bool train = n->n_explicit_inputs > 2 && n->inputs[2] >= 0 &&
                         (!training || em_get_f64(training, 0) != 0);
            identity = !mask_used && !train;
        }
        if (!identity || n->inputs[0] < 0 || n->outputs[0] < 0) continue;
        int out = n->outputs[0], in = n->inputs[0];
        if (feeds_subgraph(g, out)) continue;
        redirect_uses(g, out, in);
        mark_removed(n);
        changed++;
    }
    return changed;
}

/* Nodes none of whose outputs is read or exposed. */
static int pass_dead_nodes(em_graph *g) {
    int changed = 0;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        em_node *n = &g->nodes[i];
        if (!n->op_type) continue;
        bool live = false;
        for (int k = 0; k < n->n_outputs && !live; k++) {
            int v = n->outputs[k];
            if (v >= 0 && (g->values[v].n_consumers > 0 || g->values[v].is_output)) live = true;
        }
        if (live) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) g->values[n->inputs[k]].n_consumers--;
        mark_removed(n);
        changed++;
    }
    return changed;
}

static bool nondeterministic(const em_node *n) {
    static const char *const ops[] = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                      "RandomUniformLike", "Multinomial", "Bernoulli", NULL};
    for (int i = 0; ops[i]; i++)
        if (is_op(n, ops[i])) return true;
    return false;
}

/* Control flow (If, Loop, Scan) is not folded: a Loop of constant trip count 10^12 would run
 * inside ember_session_create, where no run's memory limit applies and no caller expects to
 * wait (it hung session creation). */
static bool has_subgraph(const em_node *n) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].g || n->attrs[a].graphs) return true;
    return false;
}

/* Nodes whose inputs are all constants run once now; their outputs become constants. Large
 * outputs are only folded if no bigger than the inputs (no blow-up of the model's memory). */
static ember_status pass_fold_constants(em_graph *g, int *changed, ember_error *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op_type || !n->op || nondeterministic(n) || has_subgraph(n) || n->n_inputs == 0)
            continue;
        /* Sequence / optional results are not constants (constants are tensors); string
         * tensors are left to run time too. */
        if (n->op->flags & EM_OP_ANY_KIND) continue;
        bool strings = false;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0 && g->values[n->outputs[k]].info.dtype == EMBER_STRING)
                strings = true;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && g->values[n->inputs[k]].constant &&
                g->values[n->inputs[k]].constant->dtype == EMBER_STRING)
                strings = true;
        if (strings) continue;
        if (n->n_inputs != n->n_explicit_inputs) continue; /* has subgraph captures */
        bool all_const = true;
        size_t in_bytes = 0;
        for (int k = 0; k < n->n_inputs && all_const; k++) {
            int v = n->inputs[k];
            if (v < 0) continue;
            if (!em_fixed_const(g, v)) all_const = false;
            else in_bytes += em_nbytes(g->values[v].constant);
        }
        bool any_out = false;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0) any_out = true;
        if (!all_const || !any_out) continue;
        bool exposed = false;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0 && g->values[n->outputs[k]].is_output) exposed = true;
        if (exposed) continue;
        em_tensor *outs[16] = {0};
        if (n->n_outputs > 16) continue;
        ember_error local;
        if (em_fold_node(g, n, outs, &local) != EMBER_OK) continue; /* leave it for run time */
        size_t out_bytes = 0;
        for (int k = 0; k < n->n_outputs; k++)
            if (outs[k]) out_bytes += em_nbytes(outs[k]);
        if (out_bytes > (1u << 20) && out_bytes > in_bytes) {
            for (int k = 0; k < n->n_outputs; k++) em_tensor_free(outs[k]);
            continue;
        }
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v < 0) continue;
            g->values[v].constant = outs[k];
            em_tensor_set_shape(&g->values[v].info, outs[k]->dtype, outs[k]->dims, outs[k]->rank);
            g->values[v].producer = -1;
        }
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) g->values[n->inputs[k]].n_consumers--;
        mark_removed(n);
        (*changed)++;
    }
    (void)err;
    return EMBER_OK;
}

ember_status em_optimize(em_graph *g, ember_opt_level level, ember_error *err) {
    if (level == EMBER_OPT_NONE) return EMBER_OK;
    for (int round = 0; round < 8; round++) {
        int changed = pass_remove_identity(g);
        em_graph_compact(g);
        changed += em_pass_fold_shapes(g);
        em_graph_compact(g);
        changed += em_pass_shape_values(g);
        em_graph_compact(g);
        EM_TRY(pass_fold_constants(g, &changed, err));
        em_graph_compact(g);
        changed += pass_dead_nodes(g);
        em_graph_compact(g);
        if (!changed) break;
    }
    if (level >= EMBER_OPT_ALL) {
        em_pass_fold_conv_bn(g);
        em_graph_compact(g);
        em_pass_matmul_add_to_gemm(g);
        em_graph_compact(g);
        em_pass_matmul_bias(g);
        em_graph_compact(g);
        em_pass_fuse_layer_norm(g);
        em_graph_compact(g);
        em_pass_fuse_attention(g);
        em_graph_compact(g);
    }
    /* Heads first: activation fusion would otherwise fold their Sigmoid into a Gemm. */
    EM_TRY(em_pass_fuse_heads(g, err));
    em_pass_fuse_activations(g);
    em_graph_compact(g);
    em_pass_fuse_conv_maxpool(g);
    em_graph_compact(g);
    if (level >= EMBER_OPT_ALL) { /* on the fused convs and activations above */
        em_pass_fuse_mbconv(g);
        em_graph_compact(g);
    }
    return em_graph_finalize(g, "optimizer", err);
}
