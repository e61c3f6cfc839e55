/* Transformer fusions: the LayerNorm that exporters decompose into nine elementwise nodes
 * becomes one LayerNormalization, and MatMul + bias over N-D activations (nn.Linear on a
 * sequence) becomes an ai.ember FusedMatMul with the bias added inside the GEMM. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static bool onnx_op(const em_node *n, const char *op) {
    return n->op_type && n->domain[0] == '\0' && strcmp(n->op_type, op) == 0;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void remove_node(em_node *n) {
    free(n->op_type);
    n->op_type = NULL;
}

/* Live nodes reading value v (each node counted once); the first one in *first. */
static int consumers(const em_graph *g, int v, int *first) {
    int count = 0;
    *first = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        if (!n->op_type) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v) {
                if (*first < 0) *first = i;
                count++;
                break;
            }
    }
    return count;
}

/* The only node reading v, when v is not a graph output; else -1. */
static int sole_consumer(const em_graph *g, int v) {
    int first;
    if (v < 0 || g->values[v].is_output || consumers(g, v, &first) != 1) return -1;
    return first;
}

/* The value of a one-element float32 constant input, or NAN. */
static float scalar_input(const em_graph *g, const em_node *n, int i) {
    const em_tensor *t = em_node_fixed_input(g, n, i);
    if (!t || t->dtype != EMBER_FLOAT || em_numel(t) != 1) return NAN;
    return ((const float *)t->data)[0];
}

/* A float32 constant that broadcasts onto the last axis (length d) of a rank-r tensor without
 * widening it: shape [..., 1, d] of rank <= r. */
static bool is_last_axis_vector(const em_tensor *t, int64_t d, int r) {
    if (!t || t->dtype != EMBER_FLOAT || t->rank < 1 || t->rank > r || t->dims[t->rank - 1] != d)
        return false;
    for (int i = 0; i < t->rank - 1; i++)
        if (t->dims[i] != 1) return false;
    return true;
}

/* ReduceMean over the last axis only, keepdims 1, reading value x of rank r. */
static bool is_mean_last(const em_graph *g, const em_node *n, int x, int r) {
    if (!onnx_op(n, "ReduceMean") || n->n_inputs < 1 || n->inputs[0] != x ||
        em_attr_int(n, "keepdims", 1) != 1)
        return false;
    int64_t count = 0;
    const int64_t *axes = em_attr_ints(n, "axes", &count);
    int64_t axis;
    if (n->opset >= 18) {
        const em_tensor *t = em_node_fixed_input(g, n, 1);
        if (!t || em_numel(t) != 1 || (t->dtype != EMBER_INT64 && t->dtype != EMBER_INT32))
            return false;
        axis = em_get_i64(t, 0);
    } else {
        if (!axes || count != 1) return false;
        axis = axes[0];
    }
    return axis == -1 || axis == r - 1;
}

/* Turn node n into domain:op at `opset` with the given inputs, one output, and the attributes
 * `attrs` (ownership taken on success). */
static bool rewrite(em_node *n, const char *domain, const char *op, int opset, const int *inputs,
                    int n_inputs, int output, em_attr *attrs, int n_attrs) {
    char *d = dup_str(domain), *o = dup_str(op);
    int *in = malloc(sizeof(int) * (size_t)n_inputs);
    const em_op *kernel = em_registry_find(domain, op, opset);
    if (!d || !o || !in || !kernel) {
        free(d);
        free(o);
        free(in);
        return false;
    }
    free(n->domain);
    free(n->op_type);
    free(n->inputs);
    for (int a = 0; a < n->n_attrs; a++) em_attr_clear(&n->attrs[a]);
    free(n->attrs);
    n->attrs = attrs;
    n->n_attrs = n_attrs;
    n->domain = d;
    n->op_type = o;
    n->opset = opset;
    n->op = kernel;
    memcpy(in, inputs, sizeof(int) * (size_t)n_inputs);
    n->inputs = in;
    n->n_inputs = n->n_explicit_inputs = n_inputs;
    n->outputs[0] = output;
    for (int k = 1; k < n->n_outputs; k++) n->outputs[k] = -1;
    return true;
}

/* mean = ReduceMean(x); d = Sub(x, mean); v = ReduceMean(Pow(d, 2)); s = Sqrt(Add(v, eps));
 * y = Div(d, s) [* gamma] [+ beta], all over the last axis: PyTorch's LayerNorm as opset < 17
 * exports it. One LayerNormalization (17) pass over x replaces nine over it. */
static bool fuse_one_layer_norm(em_graph *g, int i_mean) {
    em_node *mean = &g->nodes[i_mean];
    int x = mean->n_inputs >= 1 ? mean->inputs[0] : -1;
    if (x < 0 || mean->n_outputs != 1) return false;
    const em_tensor *xi = &g->values[x].info;
    if (xi->dtype != EMBER_FLOAT || xi->rank < 1) return false;
    int r = xi->rank;
    /* The normalized length: x's last dim when inference knows it, else gamma's (PyTorch
     * exports of attention lose static dims in Reshape; the kernel checks at run time). */
    int64_t dim = xi->dims[r - 1];
    if (!is_mean_last(g, mean, x, r)) return false;
    int i_sub = sole_consumer(g, mean->outputs[0]);
    if (i_sub < 0) return false;
    em_node *sub = &g->nodes[i_sub];
    if (!onnx_op(sub, "Sub") || sub->n_inputs != 2 || sub->inputs[0] != x ||
        sub->inputs[1] != mean->outputs[0])
        return false;
    int dv = sub->outputs[0], first;
    if (g->values[dv].is_output || consumers(g, dv, &first) != 2) return false;
    int i_pow = -1, i_div = -1;
    for (int i = first; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op_type || n->n_inputs < 1 || n->inputs[0] != dv) continue;
        if (onnx_op(n, "Pow")) i_pow = i;
        else if (onnx_op(n, "Div")) i_div = i;
    }
    if (i_pow < 0 || i_div < 0 || g->nodes[i_pow].n_inputs != 2 ||
        scalar_input(g, &g->nodes[i_pow], 1) != 2.0f || g->nodes[i_div].n_inputs != 2)
        return false;
    int i_var = sole_consumer(g, g->nodes[i_pow].outputs[0]);
    if (i_var < 0 || !is_mean_last(g, &g->nodes[i_var], g->nodes[i_pow].outputs[0], r))
        return false;
    int i_eps = sole_consumer(g, g->nodes[i_var].outputs[0]);
    if (i_eps < 0 || !onnx_op(&g->nodes[i_eps], "Add") || g->nodes[i_eps].n_inputs != 2)
        return false;
    em_node *add_eps = &g->nodes[i_eps];
    int eps_slot = add_eps->inputs[0] == g->nodes[i_var].outputs[0] ? 1 : 0;
    float eps = scalar_input(g, add_eps, eps_slot);
    if (!(eps >= 0.0f)) return false; /* also rejects NAN: no constant */
    int i_sqrt = sole_consumer(g, add_eps->outputs[0]);
    if (i_sqrt < 0 || !onnx_op(&g->nodes[i_sqrt], "Sqrt")) return false;
    if (sole_consumer(g, g->nodes[i_sqrt].outputs[0]) != i_div ||
        g->nodes[i_div].inputs[1] != g->nodes[i_sqrt].outputs[0])
        return false;
    /* The affine part: Mul by gamma, then optionally Add beta (either operand order). */
    int i_mul = sole_consumer(g, g->nodes[i_div].outputs[0]);
    if (i_mul < 0 || !onnx_op(&g->nodes[i_mul], "Mul") || g->nodes[i_mul].n_inputs != 2)
        return false;
    em_node *mul = &g->nodes[i_mul];
    int gamma = mul->inputs[0] == g->nodes[i_div].outputs[0] ? mul->inputs[1] : mul->inputs[0];
    const em_tensor *gt = em_fixed_const(g, gamma);
    if (dim < 0 && gt && gt->rank >= 1 && gt->dims[gt->rank - 1] > 1) dim = gt->dims[gt->rank - 1];
    if (dim <= 0 || !is_last_axis_vector(gt, dim, r)) return false;
    int out = mul->outputs[0], beta = -1, i_add = sole_consumer(g, out);
    if (i_add >= 0 && onnx_op(&g->nodes[i_add], "Add") && g->nodes[i_add].n_inputs == 2) {
        em_node *add = &g->nodes[i_add];
        int other = add->inputs[0] == out ? add->inputs[1] : add->inputs[0];
        if (is_last_axis_vector(em_fixed_const(g, other), dim, r)) {
            beta = other;
            out = add->outputs[0];
        } else {
            i_add = -1;
        }
    } else {
        i_add = -1;
    }
    em_attr *attrs = calloc(2, sizeof(em_attr));
    if (!attrs) return false;
    attrs[0] = (em_attr){.type = EM_ATTR_INT, .i = -1, .name = dup_str("axis")};
    attrs[1] = (em_attr){.type = EM_ATTR_FLOAT, .f = eps, .name = dup_str("epsilon")};
    int inputs[3] = {x, gamma, beta};
    if (!attrs[0].name || !attrs[1].name ||
        !rewrite(&g->nodes[i_div], "", "LayerNormalization", 17, inputs, beta >= 0 ? 3 : 2, out,
                 attrs, 2)) {
        em_attr_clear(&attrs[0]);
        em_attr_clear(&attrs[1]);
        free(attrs);
        return false;
    }
    remove_node(&g->nodes[i_mean]);
    remove_node(&g->nodes[i_sub]);
    remove_node(&g->nodes[i_pow]);
    remove_node(&g->nodes[i_var]);
    remove_node(&g->nodes[i_eps]);
    remove_node(&g->nodes[i_sqrt]);
    remove_node(&g->nodes[i_mul]);
    if (i_add >= 0) remove_node(&g->nodes[i_add]);
    return true;
}

int em_pass_fuse_layer_norm(em_graph *g) {
    if (!em_registry_find("", "LayerNormalization", 17)) return 0;
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (onnx_op(&g->nodes[i], "ReduceMean") && fuse_one_layer_norm(g, i)) changed++;
    return changed;
}

/* MatMul(A of rank >= 3, B constant 2-D float32) + Add(constant bias of B's column count that
 * does not widen the product) becomes ai.ember FusedMatMul(A, B, bias). Rank 2 is left to the
 * MatMul + Add -> Gemm pass. */
int em_pass_matmul_bias(em_graph *g) {
    if (!em_registry_find("ai.ember", "FusedMatMul", 1)) return 0;
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *mm = &g->nodes[i];
        if (!onnx_op(mm, "MatMul") || mm->n_inputs != 2 || mm->n_outputs != 1 ||
            mm->inputs[0] < 0)
            continue;
        const em_tensor *ai = &g->values[mm->inputs[0]].info;
        const em_tensor *b = em_node_fixed_input(g, mm, 1);
        if (!b || b->rank != 2 || b->dtype != EMBER_FLOAT || ai->dtype != EMBER_FLOAT ||
            ai->rank < 3)
            continue;
        int c = sole_consumer(g, mm->outputs[0]);
        if (c < 0) continue;
        em_node *add = &g->nodes[c];
        if (!onnx_op(add, "Add") || add->n_inputs != 2) continue;
        int bias = add->inputs[0] == mm->outputs[0] ? add->inputs[1] : add->inputs[0];
        if (bias == mm->outputs[0] || !is_last_axis_vector(em_fixed_const(g, bias), b->dims[1],
                                                          ai->rank))
            continue;
        int inputs[3] = {mm->inputs[0], mm->inputs[1], bias};
        if (!rewrite(mm, "ai.ember", "FusedMatMul", 1, inputs, 3, add->outputs[0], NULL, 0))
            continue;
        remove_node(add);
        changed++;
    }
    return changed;
}
