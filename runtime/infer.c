/* Static shape and type inference at load. Symbolic dims (batch) are resolved by running the
 * kernels' infer twice with the symbolic dims set to two different sizes: a dim that comes out
 * equal both times is static, one that differs depends on the symbolic dims. Failures on nodes
 * whose inputs are fully static are real model errors (e.g. a Conv bias of the wrong length);
 * failures that involve symbolic dims are left for run time, when the real sizes are known. */
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "model.h"

typedef struct pass_value {
    em_tensor info; /* rank -1: unknown */
    bool tainted;   /* depends on a symbolic dim */
} pass_value;

static ember_status infer_pass(em_graph *g, int64_t sym, pass_value *pv, const char *what,
                               ember_error *err) {
    for (int i = 0; i < g->n_values; i++) {
        em_value *v = &g->values[i];
        pv[i].tainted = false;
        if (v->constant) {
            pv[i].info = *v->constant;
            continue;
        }
        pv[i].info = v->info;
        pv[i].info.data = NULL;
        pv[i].info.owns_data = false;
        if (!(v->is_input || v->outer >= 0)) {
            pv[i].info.rank = -1; /* recomputed from the producer */
            continue;
        }
        for (int d = 0; d < v->info.rank; d++)
            if (v->info.dims[d] < 0) {
                pv[i].info.dims[d] = sym;
                pv[i].tainted = true;
            }
        if (v->info.dtype == EMBER_UNDEFINED) pv[i].info.rank = -1;
    }
    em_tensor *in[64];
    em_tensor outs[64];
    for (int ni = 0; ni < g->n_nodes; ni++) {
        em_node *n = &g->nodes[ni];
        bool known = n->n_inputs <= 64 && n->n_outputs <= 64 && n->op != NULL;
        bool tainted = false;
        for (int k = 0; known && k < n->n_inputs; k++) {
            int v = n->inputs[k];
            in[k] = v >= 0 ? &pv[v].info : NULL;
            if (v >= 0 && pv[v].info.rank < 0) known = false;
            if (v >= 0 && pv[v].tainted) tainted = true;
            /* A partly unknown shape (dim -1) cannot prove the node wrong either. */
            for (int d = 0; v >= 0 && d < pv[v].info.rank; d++)
                if (pv[v].info.dims[d] < 0) tainted = true;
        }
        if (!known) continue;
        for (int k = 0; k < n->n_outputs; k++) {
            memset(&outs[k], 0, sizeof outs[k]);
            outs[k].rank = -1;
        }
        ember_error local;
        ember_status st = em_check_input_kinds(n, in, &local);
        if (st == EMBER_OK) st = n->op->infer(n, n->state, in, outs, &local);
        if (st != EMBER_OK) {
            if (tainted) continue;
            char desc[256];
            if (err) *err = local;
            em_node_desc(n, desc, sizeof desc);
            if (strstr(local.message, desc)) return em_wrap(err, st, "%s", what);
            return em_wrap(err, st, "%s: %s", what, desc);
        }
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v < 0) continue;
            pv[v].info = outs[k];
            pv[v].info.data = NULL;
            pv[v].info.owns_data = false;
            pv[v].tainted = tainted;
        }
    }
    return EMBER_OK;
}

ember_status em_infer_static(em_graph *g, const char *what, ember_error *err) {
    size_t n = (size_t)g->n_values + 1;
    pass_value *a = calloc(n, sizeof *a);
    pass_value *b = calloc(n, sizeof *b);
    ember_status st = EMBER_OK;
    if (!a || !b) st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == EMBER_OK) st = infer_pass(g, 2, a, what, err);
    if (st == EMBER_OK) st = infer_pass(g, 3, b, what, err);
    for (int i = 0; st == EMBER_OK && i < g->n_values; i++) {
        em_value *v = &g->values[i];
        if (v->constant || v->is_input || v->outer >= 0) continue;
        const em_tensor *x = &a[i].info, *y = &b[i].info;
        if (x->rank < 0 || y->rank != x->rank || x->dtype != y->dtype) {
            /* unknown here: keep what the file declared */
            if (x->rank >= 0 && v->info.dtype == EMBER_UNDEFINED) v->info.dtype = x->dtype;
            continue;
        }
        /* A graph output declared as one kind of value but computed as another. */
        bool declared = v->info.dtype != EMBER_UNDEFINED || v->info.kind != EMBER_KIND_TENSOR;
        if (v->is_output && declared && !em_same_kind(&v->info, x)) {
            char a[96], b[96];
            st = em_fail(err, EMBER_ERR_INVALID_MODEL,
                         "%s: graph output '%s' is declared as %s but computed as %s", what,
                         v->name, em_shape_str(&v->info, a, sizeof a), em_shape_str(x, b, sizeof b));
            break;
        }
        em_tensor merged = *x;
        for (int d = 0; d < x->rank; d++)
            if (x->dims[d] != y->dims[d]) merged.dims[d] = -1;
        /* A declared static dim wins over an unknown inferred one. */
        if (v->info.rank == merged.rank)
            for (int d = 0; d < merged.rank; d++)
                if (merged.dims[d] < 0 && v->info.dims[d] >= 0) merged.dims[d] = v->info.dims[d];
        v->info.dtype = merged.dtype;
        v->info.rank = merged.rank;
        v->info.kind = merged.kind;
        v->info.elem_kind = merged.elem_kind;
        memcpy(v->info.dims, merged.dims, sizeof merged.dims);
    }
    free(a);
    free(b);
    return st;
}
