/* Graph IR: construction, copying, topological sort, attribute look-ups. */
#include "ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

em_graph *em_graph_new(void) {
    em_graph *g = calloc(1, sizeof *g);
    if (g) g->name = dup_str("");
    if (g && !g->name) {
        free(g);
        return NULL;
    }
    return g;
}

void em_attr_clear(em_attr *a) {
    free(a->name);
    free(a->s);
    em_tensor_free(a->t);
    em_graph_free(a->g);
    free(a->floats);
    free(a->ints);
    if (a->strings)
        for (int64_t i = 0; i < a->n; i++) free(a->strings[i]);
    free(a->strings);
    if (a->tensors)
        for (int64_t i = 0; i < a->n; i++) em_tensor_free(a->tensors[i]);
    free(a->tensors);
    if (a->graphs)
        for (int64_t i = 0; i < a->n; i++) em_graph_free(a->graphs[i]);
    free(a->graphs);
    memset(a, 0, sizeof *a);
}

static void node_clear(em_node *n) {
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    for (int i = 0; i < n->n_attrs; i++) em_attr_clear(&n->attrs[i]);
    free(n->attrs);
    memset(n, 0, sizeof *n);
}

static void value_clear(em_value *v) {
    free(v->name);
    if (v->dim_params) {
        for (int i = 0; i < EM_MAX_RANK; i++) free(v->dim_params[i]);
        free(v->dim_params);
    }
    em_tensor_free(v->constant);
    memset(v, 0, sizeof *v);
}

void em_graph_free(em_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) node_clear(&g->nodes[i]);
    for (int i = 0; i < g->n_values; i++) value_clear(&g->values[i]);
    free(g->nodes);
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    free(g->captures);
    if (g->owns_opsets) {
        for (int i = 0; i < g->n_opsets; i++) free(g->opsets[i].domain);
        free(g->opsets);
    }
    free(g->name);
    free(g);
}

int em_graph_find_value(const em_graph *g, const char *name) {
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0) return i;
    return -1;
}

int em_graph_add_value(em_graph *g, const char *name) {
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 16;
        em_value *v = realloc(g->values, (size_t)cap * sizeof *v);
        if (!v) return -1;
        g->values = v;
        g->cap_values = cap;
    }
    em_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = dup_str(name);
    if (!v->name) return -1;
    v->info.rank = -1;
    v->producer = -1;
    v->outer = -1;
    return g->n_values++;
}

int em_graph_add_node(em_graph *g, const char *op_type, const char *domain, const char *name,
                      int n_inputs, const int *inputs, int n_outputs, const int *outputs) {
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 16;
        em_node *n = realloc(g->nodes, (size_t)cap * sizeof *n);
        if (!n) return -1;
        g->nodes = n;
        g->cap_nodes = cap;
    }
    em_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    n->op_type = dup_str(op_type);
    n->domain = dup_str(domain);
    n->name = dup_str(name);
    n->inputs = malloc(sizeof(int) * (size_t)(n_inputs > 0 ? n_inputs : 1));
    n->outputs = malloc(sizeof(int) * (size_t)(n_outputs > 0 ? n_outputs : 1));
    if (!n->op_type || !n->domain || !n->name || !n->inputs || !n->outputs) {
        node_clear(n);
        return -1;
    }
    n->n_inputs = n->n_explicit_inputs = n_inputs;
    n->n_outputs = n_outputs;
    if (n_inputs) memcpy(n->inputs, inputs, sizeof(int) * (size_t)n_inputs);
    if (n_outputs) memcpy(n->outputs, outputs, sizeof(int) * (size_t)n_outputs);
    n->index = g->n_nodes;
    return g->n_nodes++;
}

int64_t em_graph_opset(const em_graph *g, const char *domain) {
    if (!domain || strcmp(domain, "ai.onnx") == 0) domain = "";
    for (int i = 0; i < g->n_opsets; i++)
        if (strcmp(g->opsets[i].domain, domain) == 0) return g->opsets[i].version;
    return 0;
}

/* ---- copying ---- */

static ember_status copy_attr(em_attr *d, const em_attr *s, ember_error *err);

/* Tensors of a clone (initializers, attribute tensors) are views of the source's data:
 * constants are immutable, and a model's weights should not sit in memory once per session. */
static ember_status copy_tensor(em_tensor **d, const em_tensor *s, ember_error *err) {
    *d = NULL;
    if (!s) return EMBER_OK;
    *d = malloc(sizeof **d);
    if (!*d) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    **d = *s;
    (*d)->owns_data = false;
    return EMBER_OK;
}

static ember_status copy_attr(em_attr *d, const em_attr *s, ember_error *err) {
    memset(d, 0, sizeof *d);
    d->name = dup_str(s->name);
    d->type = s->type;
    d->f = s->f;
    d->i = s->i;
    d->n = s->n;
    if (!d->name) goto oom;
    if (s->s) {
        d->s = malloc(s->s_len + 1);
        if (!d->s) goto oom;
        memcpy(d->s, s->s, s->s_len + 1);
        d->s_len = s->s_len;
    }
    EM_TRY(copy_tensor(&d->t, s->t, err));
    if (s->g && !(d->g = em_graph_clone(s->g, err))) return EMBER_ERR_OUT_OF_MEMORY;
    size_t n = (size_t)s->n;
    if (s->floats) {
        if (!(d->floats = malloc(n * sizeof(float) + 1))) goto oom;
        memcpy(d->floats, s->floats, n * sizeof(float));
    }
    if (s->ints) {
        if (!(d->ints = malloc(n * sizeof(int64_t) + 1))) goto oom;
        memcpy(d->ints, s->ints, n * sizeof(int64_t));
    }
    if (s->strings) {
        if (!(d->strings = calloc(n + 1, sizeof(char *)))) goto oom;
        for (size_t i = 0; i < n; i++)
            if (!(d->strings[i] = dup_str(s->strings[i]))) goto oom;
    }
    if (s->tensors) {
        if (!(d->tensors = calloc(n + 1, sizeof(em_tensor *)))) goto oom;
        for (size_t i = 0; i < n; i++) EM_TRY(copy_tensor(&d->tensors[i], s->tensors[i], err));
    }
    if (s->graphs) {
        if (!(d->graphs = calloc(n + 1, sizeof(em_graph *)))) goto oom;
        for (size_t i = 0; i < n; i++)
            if (!(d->graphs[i] = em_graph_clone(s->graphs[i], err))) return EMBER_ERR_OUT_OF_MEMORY;
    }
    return EMBER_OK;
oom:
    return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory copying attribute");
}

static em_graph *clone_into(const em_graph *s, em_graph *parent, ember_error *err);

em_graph *em_graph_clone(const em_graph *s, ember_error *err) {
    return clone_into(s, s->parent, err);
}

static void fix_subgraph_parents(em_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i].n_attrs; a++) {
            em_attr *at = &g->nodes[i].attrs[a];
            if (at->g) {
                at->g->parent = g;
                if (!at->g->owns_opsets) {
                    at->g->opsets = g->opsets;
                    at->g->n_opsets = g->n_opsets;
                }
                fix_subgraph_parents(at->g);
            }
            for (int64_t k = 0; at->graphs && k < at->n; k++) {
                at->graphs[k]->parent = g;
                if (!at->graphs[k]->owns_opsets) {
                    at->graphs[k]->opsets = g->opsets;
                    at->graphs[k]->n_opsets = g->n_opsets;
                }
                fix_subgraph_parents(at->graphs[k]);
            }
        }
}

static em_graph *clone_into(const em_graph *s, em_graph *parent, ember_error *err) {
    em_graph *g = calloc(1, sizeof *g);
    if (!g) goto oom;
    g->parent = parent;
    g->name = dup_str(s->name);
    if (!g->name) goto oom;
    if (s->n_values) {
        g->values = calloc((size_t)s->n_values, sizeof *g->values);
        if (!g->values) goto oom;
        g->cap_values = s->n_values;
    }
    for (int i = 0; i < s->n_values; i++) {
        const em_value *sv = &s->values[i];
        em_value *dv = &g->values[i];
        g->n_values = i + 1;
        *dv = *sv;
        dv->name = dup_str(sv->name);
        dv->dim_params = NULL;
        dv->constant = NULL;
        if (!dv->name) goto oom;
        if (sv->dim_params) {
            dv->dim_params = calloc(EM_MAX_RANK, sizeof(char *));
            if (!dv->dim_params) goto oom;
            for (int k = 0; k < EM_MAX_RANK; k++)
                if (sv->dim_params[k] && !(dv->dim_params[k] = dup_str(sv->dim_params[k])))
                    goto oom;
        }
        if (copy_tensor(&dv->constant, sv->constant, err) != EMBER_OK) goto fail;
    }
    if (s->n_nodes) {
        g->nodes = calloc((size_t)s->n_nodes, sizeof *g->nodes);
        if (!g->nodes) goto oom;
        g->cap_nodes = s->n_nodes;
    }
    for (int i = 0; i < s->n_nodes; i++) {
        const em_node *sn = &s->nodes[i];
        em_node *dn = &g->nodes[i];
        g->n_nodes = i + 1;
        *dn = *sn;
        dn->state = NULL;
        dn->name = dup_str(sn->name);
        dn->op_type = dup_str(sn->op_type);
        dn->domain = dup_str(sn->domain);
        dn->inputs = malloc(sizeof(int) * (size_t)(sn->n_inputs + 1));
        dn->outputs = malloc(sizeof(int) * (size_t)(sn->n_outputs + 1));
        dn->attrs = NULL;
        dn->n_attrs = 0;
        if (!dn->name || !dn->op_type || !dn->domain || !dn->inputs || !dn->outputs) goto oom;
        if (sn->n_inputs) memcpy(dn->inputs, sn->inputs, sizeof(int) * (size_t)sn->n_inputs);
        if (sn->n_outputs) memcpy(dn->outputs, sn->outputs, sizeof(int) * (size_t)sn->n_outputs);
        if (sn->n_attrs) {
            dn->attrs = calloc((size_t)sn->n_attrs, sizeof(em_attr));
            if (!dn->attrs) goto oom;
        }
        for (int a = 0; a < sn->n_attrs; a++) {
            dn->n_attrs = a + 1;
            if (copy_attr(&dn->attrs[a], &sn->attrs[a], err) != EMBER_OK) goto fail;
        }
    }
    g->inputs = malloc(sizeof(int) * (size_t)(s->n_inputs + 1));
    g->outputs = malloc(sizeof(int) * (size_t)(s->n_outputs + 1));
    g->captures = malloc(sizeof(int) * (size_t)(s->n_captures + 1));
    if (!g->inputs || !g->outputs || !g->captures) goto oom;
    g->n_inputs = s->n_inputs;
    g->n_outputs = s->n_outputs;
    g->n_captures = s->n_captures;
    if (s->n_inputs) memcpy(g->inputs, s->inputs, sizeof(int) * (size_t)s->n_inputs);
    if (s->n_outputs) memcpy(g->outputs, s->outputs, sizeof(int) * (size_t)s->n_outputs);
    if (s->n_captures) memcpy(g->captures, s->captures, sizeof(int) * (size_t)s->n_captures);
    if (s->owns_opsets) {
        g->owns_opsets = true;
        g->opsets = calloc((size_t)s->n_opsets + 1, sizeof(em_opset));
        if (!g->opsets) goto oom;
        g->n_opsets = s->n_opsets;
        for (int i = 0; i < s->n_opsets; i++) {
            g->opsets[i].version = s->opsets[i].version;
            if (!(g->opsets[i].domain = dup_str(s->opsets[i].domain))) goto oom;
        }
    } else {
        g->opsets = s->opsets;
        g->n_opsets = s->n_opsets;
    }
    fix_subgraph_parents(g);
    return g;
oom:
    em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory copying the graph");
fail:
    em_graph_free(g);
    return NULL;
}

/* ---- finalize: producers, consumers, topological order ---- */

ember_status em_graph_finalize(em_graph *g, const char *what, ember_error *err) {
    if (!what) what = "graph";
    for (int i = 0; i < g->n_values; i++) {
        g->values[i].producer = -1;
        g->values[i].n_consumers = 0;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v < 0) continue;
            em_value *val = &g->values[v];
            if (val->producer >= 0 || val->constant || val->is_input || val->outer >= 0) {
                char buf[256];
                return em_fail(err, EMBER_ERR_INVALID_MODEL,
                               "%s: %s writes value '%s', which is already %s", what,
                               em_node_desc(n, buf, sizeof buf), val->name,
                               val->producer >= 0 ? "produced by another node"
                               : val->constant ? "an initializer"
                                               : "a graph input");
            }
            val->producer = i;
        }
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) g->values[n->inputs[k]].n_consumers++;
    }
    for (int k = 0; k < g->n_outputs; k++) g->values[g->outputs[k]].n_consumers++;
    /* Every consumed value must come from somewhere. */
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v < 0) continue;
            em_value *val = &g->values[v];
            if (val->producer < 0 && !val->constant && !val->is_input && val->outer < 0) {
                char buf[256];
                return em_fail(err, EMBER_ERR_INVALID_MODEL,
                               "%s: %s reads '%s', which no node produces and is neither a graph "
                               "input nor an initializer",
                               what, em_node_desc(n, buf, sizeof buf), val->name);
            }
        }
    }
    for (int k = 0; k < g->n_outputs; k++) {
        em_value *val = &g->values[g->outputs[k]];
        if (val->producer < 0 && !val->constant && !val->is_input && val->outer < 0)
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: graph output '%s' is not produced by any node", what, val->name);
    }
    /* Kahn's algorithm, stable with respect to file order. */
    int n_nodes = g->n_nodes;
    if (n_nodes == 0) return EMBER_OK;
    int *pending = calloc((size_t)n_nodes, sizeof(int));
    int *order = malloc(sizeof(int) * (size_t)n_nodes);
    int *queue = malloc(sizeof(int) * (size_t)n_nodes);
    /* consumers list per value: CSR */
    int *cstart = calloc((size_t)g->n_values + 1, sizeof(int));
    if (!pending || !order || !queue || !cstart) {
        free(pending), free(order), free(queue), free(cstart);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory sorting the graph");
    }
    for (int i = 0; i < n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] >= 0) cstart[g->nodes[i].inputs[k] + 1]++;
    for (int v = 0; v < g->n_values; v++) cstart[v + 1] += cstart[v];
    int *clist = malloc(sizeof(int) * (size_t)(cstart[g->n_values] + 1));
    int *cfill = calloc((size_t)g->n_values + 1, sizeof(int));
    if (!clist || !cfill) {
        free(pending), free(order), free(queue), free(cstart), free(clist), free(cfill);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory sorting the graph");
    }
    for (int i = 0; i < n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++) {
            int v = g->nodes[i].inputs[k];
            if (v < 0) continue;
            clist[cstart[v] + cfill[v]++] = i;
            if (g->values[v].producer >= 0) pending[i]++;
        }
    int head = 0, tail = 0, done = 0;
    for (int i = 0; i < n_nodes; i++)
        if (pending[i] == 0) queue[tail++] = i;
    while (head < tail) {
        int i = queue[head++];
        order[done++] = i;
        for (int k = 0; k < g->nodes[i].n_outputs; k++) {
            int v = g->nodes[i].outputs[k];
            if (v < 0) continue;
            for (int c = cstart[v]; c < cstart[v + 1]; c++)
                if (--pending[clist[c]] == 0) queue[tail++] = clist[c];
        }
    }
    ember_status st = EMBER_OK;
    if (done != n_nodes) {
        int stuck = -1;
        for (int i = 0; i < n_nodes && stuck < 0; i++)
            if (pending[i] > 0) stuck = i;
        char buf[256];
        st = em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: the graph has a cycle through %s", what,
                     em_node_desc(&g->nodes[stuck], buf, sizeof buf));
    } else {
        em_node *sorted = malloc(sizeof(em_node) * (size_t)n_nodes);
        if (!sorted) {
            st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory sorting the graph");
        } else {
            for (int i = 0; i < n_nodes; i++) sorted[i] = g->nodes[order[i]];
            memcpy(g->nodes, sorted, sizeof(em_node) * (size_t)n_nodes);
            free(sorted);
            for (int i = 0; i < n_nodes; i++)
                for (int k = 0; k < g->nodes[i].n_outputs; k++)
                    if (g->nodes[i].outputs[k] >= 0) g->values[g->nodes[i].outputs[k]].producer = i;
        }
    }
    free(pending), free(order), free(queue), free(cstart), free(clist), free(cfill);
    return st;
}

void em_graph_compact(em_graph *g) {
    int w = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op_type == NULL) {
            node_clear(&g->nodes[i]);
            continue;
        }
        if (w != i) g->nodes[w] = g->nodes[i];
        w++;
    }
    g->n_nodes = w;
    for (int i = 0; i < g->n_values; i++) {
        g->values[i].producer = -1;
        g->values[i].n_consumers = 0;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0) g->values[n->outputs[k]].producer = i;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) g->values[n->inputs[k]].n_consumers++;
    }
    for (int k = 0; k < g->n_outputs; k++) g->values[g->outputs[k]].n_consumers++;
    /* Constants nobody reads any more are dropped to free memory (values stay, ids stable). */
    for (int i = 0; i < g->n_values; i++) {
        em_value *v = &g->values[i];
        if (v->constant && v->n_consumers == 0 && !v->is_input && !v->is_output) {
            em_tensor_free(v->constant);
            v->constant = NULL;
        }
    }
}

/* ---- attributes ---- */

const em_attr *em_node_attr(const em_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t em_attr_int(const em_node *n, const char *name, int64_t dflt) {
    const em_attr *a = em_node_attr(n, name);
    return a && a->type == EM_ATTR_INT ? a->i : dflt;
}

float em_attr_float(const em_node *n, const char *name, float dflt) {
    const em_attr *a = em_node_attr(n, name);
    if (a && a->type == EM_ATTR_FLOAT) return a->f;
    if (a && a->type == EM_ATTR_INT) return (float)a->i;
    return dflt;
}

const char *em_attr_string(const em_node *n, const char *name, const char *dflt) {
    const em_attr *a = em_node_attr(n, name);
    return a && a->type == EM_ATTR_STRING ? a->s : dflt;
}

const int64_t *em_attr_ints(const em_node *n, const char *name, int64_t *count) {
    const em_attr *a = em_node_attr(n, name);
    if (a && a->type == EM_ATTR_INTS) {
        *count = a->n;
        return a->ints ? a->ints : (const int64_t *)"";
    }
    *count = 0;
    return NULL;
}

const float *em_attr_floats(const em_node *n, const char *name, int64_t *count) {
    const em_attr *a = em_node_attr(n, name);
    if (a && a->type == EM_ATTR_FLOATS) {
        *count = a->n;
        return a->floats ? a->floats : (const float *)"";
    }
    *count = 0;
    return NULL;
}

const em_tensor *em_attr_tensor(const em_node *n, const char *name) {
    const em_attr *a = em_node_attr(n, name);
    return a && a->type == EM_ATTR_TENSOR ? a->t : NULL;
}

const em_graph *em_attr_graph(const em_node *n, const char *name) {
    const em_attr *a = em_node_attr(n, name);
    return a && a->type == EM_ATTR_GRAPH ? a->g : NULL;
}

const em_tensor *em_node_const_input(const em_graph *g, const em_node *n, int i) {
    if (i < 0 || i >= n->n_inputs || n->inputs[i] < 0) return NULL;
    return g->values[n->inputs[i]].constant;
}

const em_tensor *em_node_input_info(const em_graph *g, const em_node *n, int i) {
    if (i < 0 || i >= n->n_inputs || n->inputs[i] < 0) return NULL;
    const em_value *v = &g->values[n->inputs[i]];
    return v->constant ? v->constant : &v->info;
}

const char *em_node_desc(const em_node *n, char *buf, size_t size) {
    if (n->domain && n->domain[0])
        snprintf(buf, size, "node '%s' (#%d, %s:%s, opset %d)", n->name ? n->name : "", n->index,
                 n->domain, n->op_type ? n->op_type : "?", n->opset);
    else
        snprintf(buf, size, "node '%s' (#%d, %s, opset %d)", n->name ? n->name : "", n->index,
                 n->op_type ? n->op_type : "?", n->opset);
    return buf;
}
