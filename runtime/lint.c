/* Lints: mistakes in task heads that run fine and silently give useless answers. Each warning
 * is one line naming the node and what is wrong. They run on the graph as loaded (after static
 * shape inference), so sizes are known where the model declares them. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "model.h"

typedef struct lint_list {
    char **items;
    size_t n, cap;
    bool failed; /* out of memory: stop adding */
} lint_list;

static void add_warning(lint_list *l, const em_node *n, const char *fmt, ...) EM_PRINTF(3, 4);

static void add_warning(lint_list *l, const em_node *n, const char *fmt, ...) {
    if (l->failed) return;
    char desc[256], what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    size_t len = strlen(em_node_desc(n, desc, sizeof desc)) + strlen(what) + 3;
    char *line = malloc(len);
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        char **grown = realloc(l->items, sizeof(char *) * cap);
        if (grown) {
            l->items = grown;
            l->cap = cap;
        }
    }
    if (!line || l->n == l->cap) {
        free(line);
        l->failed = true;
        return;
    }
    snprintf(line, len, "%s: %s", desc, what);
    l->items[l->n++] = line;
}

static bool is_op(const em_node *n, const char *op) {
    return n->op_type && n->domain[0] == '\0' && strcmp(n->op_type, op) == 0;
}

static const em_node *producer_of(const em_graph *g, int v) {
    if (v < 0 || v >= g->n_values) return NULL;
    int p = g->values[v].producer;
    return p >= 0 && p < g->n_nodes ? &g->nodes[p] : NULL;
}

static const em_tensor *value_info(const em_graph *g, int v) {
    if (v < 0 || v >= g->n_values) return NULL;
    return g->values[v].constant ? g->values[v].constant : &g->values[v].info;
}

/* Number of elements a Softmax / LogSoftmax normalizes over, from static shapes; -1 unknown.
 * Before opset 13 it is the whole block from `axis` on; since 13 one axis. *axis_out gets the
 * (normalized) axis. */
static int64_t softmax_size(const em_graph *g, const em_node *n, int *axis_out) {
    const em_tensor *x = value_info(g, n->n_inputs > 0 ? n->inputs[0] : -1);
    if (!x || x->rank < 1) return -1;
    int version = em_onnx_op_version(n->op_type, n->opset);
    int64_t axis = em_attr_int(n, "axis", version >= 13 ? -1 : 1);
    if (axis < 0) axis += x->rank;
    if (axis < 0 || axis >= x->rank) return -1;
    *axis_out = (int)axis;
    if (version >= 13) return x->dims[axis];
    int64_t size = 1;
    for (int d = (int)axis; d < x->rank; d++) {
        if (x->dims[d] < 0) return -1;
        size *= x->dims[d];
        if (size > ((int64_t)1 << 40)) return -1;
    }
    return size;
}

static bool is_softmax(const em_node *n) {
    return is_op(n, "Softmax") || is_op(n, "LogSoftmax");
}

/* A float constant whose every element is 0.5. */
static bool is_half(const em_graph *g, int v) {
    const em_tensor *t = v >= 0 && v < g->n_values ? g->values[v].constant : NULL;
    int64_t n = t ? em_numel(t) : -1;
    if (!t || n < 1 || !em_dtype_is_float(t->dtype)) return false;
    for (int64_t i = 0; i < n; i++)
        if (em_get_f64(t, i) != 0.5) return false;
    return true;
}

static void lint_graph(const em_graph *g, lint_list *l) {
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        if (!n->op_type) continue;
        int x = n->n_inputs > 0 ? n->inputs[0] : -1;
        const em_node *before = producer_of(g, x);
        if ((is_op(n, "ArgMax") || is_op(n, "ArgMin")) && x >= 0) {
            const em_tensor *xi = value_info(g, x);
            int64_t axis = em_attr_int(n, "axis", 0);
            if (xi && xi->rank >= 1 && axis < 0) axis += xi->rank;
            if (xi && xi->rank >= 1 && axis >= 0 && axis < xi->rank && xi->dims[axis] == 1)
                add_warning(l, n,
                            "%s over axis %lld, which has size 1: the result is always 0 (a "
                            "binary model with one logit needs a threshold, not %s)",
                            n->op_type, (long long)axis, n->op_type);
        }
        if (is_softmax(n)) {
            int axis = 0;
            int64_t size = softmax_size(g, n, &axis);
            if (size == 1)
                add_warning(l, n,
                            "%s over axis %d, which has size 1: the result is always %s (use "
                            "Sigmoid for one logit)",
                            n->op_type, axis, is_op(n, "Softmax") ? "1" : "0");
            if (before && is_op(before, "Sigmoid"))
                add_warning(l, n,
                            "%s applied to the output of Sigmoid '%s': the probabilities are "
                            "squashed twice; apply %s to the logits",
                            n->op_type, before->name, n->op_type);
        }
        /* A Softmax output thresholded at 0.5 (or rounded) over more than two classes. */
        bool compare = (is_op(n, "Greater") || is_op(n, "GreaterOrEqual") || is_op(n, "Less") ||
                        is_op(n, "LessOrEqual")) &&
                       n->n_inputs >= 2;
        for (int k = 0; k < (compare ? 2 : is_op(n, "Round") ? 1 : 0); k++) {
            const em_node *sm = producer_of(g, n->inputs[k]);
            if (!sm || !is_op(sm, "Softmax") || (compare && !is_half(g, n->inputs[1 - k])))
                continue;
            int axis = 0;
            int64_t size = softmax_size(g, sm, &axis);
            if (size > 2)
                add_warning(l, n,
                            "thresholds the output of Softmax '%s' at 0.5 over %lld classes: a "
                            "row can get no class at all; use ArgMax",
                            sm->name, (long long)size);
        }
        if (is_op(n, "Sigmoid") && before && is_op(before, "Sigmoid"))
            add_warning(l, n,
                        "Sigmoid applied to the output of Sigmoid '%s': values end up in "
                        "[0.5, 0.73], so a 0.5 threshold accepts almost everything",
                        before->name);
        for (int a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g) lint_graph(n->attrs[a].g, l);
            for (int64_t k = 0; n->attrs[a].graphs && k < n->attrs[a].n; k++)
                lint_graph(n->attrs[a].graphs[k], l);
        }
    }
}

size_t em_lint(const em_graph *g, char ***warnings) {
    lint_list l = {0};
    if (g) lint_graph(g, &l);
    *warnings = l.items;
    return l.n;
}
