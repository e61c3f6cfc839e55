/* Transformer fusions: the LayerNorm that exporters decompose into nine elementwise nodes
 * becomes one LayerNormalization (and, with the residual Add in front, an ai.ember
 * AddLayerNormalization); MatMul + bias over N-D activations (nn.Linear on a sequence) becomes
 * an ai.ember FusedMatMul with the bias added inside the GEMM; the self-attention block of
 * PyTorch's exported nn.MultiheadAttention becomes an ai.ember FusedAttention. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
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
    if (!em_pass_is_onnx_op(n, "ReduceMean") || n->n_inputs < 1 || n->inputs[0] != x ||
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
    int i_sub = em_pass_sole_consumer(g, mean->outputs[0]);
    if (i_sub < 0) return false;
    em_node *sub = &g->nodes[i_sub];
    if (!em_pass_is_onnx_op(sub, "Sub") || sub->n_inputs != 2 || sub->inputs[0] != x ||
        sub->inputs[1] != mean->outputs[0])
        return false;
    int dv = sub->outputs[0], first;
    if (g->values[dv].is_output || consumers(g, dv, &first) != 2) return false;
    int i_pow = -1, i_div = -1;
    for (int i = first; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op_type || n->n_inputs < 1 || n->inputs[0] != dv) continue;
        if (em_pass_is_onnx_op(n, "Pow")) i_pow = i;
        else if (em_pass_is_onnx_op(n, "Div")) i_div = i;
    }
    if (i_pow < 0 || i_div < 0 || g->nodes[i_pow].n_inputs != 2 ||
        scalar_input(g, &g->nodes[i_pow], 1) != 2.0f || g->nodes[i_div].n_inputs != 2)
        return false;
    int i_var = em_pass_sole_consumer(g, g->nodes[i_pow].outputs[0]);
    if (i_var < 0 || !is_mean_last(g, &g->nodes[i_var], g->nodes[i_pow].outputs[0], r))
        return false;
    int i_eps = em_pass_sole_consumer(g, g->nodes[i_var].outputs[0]);
    if (i_eps < 0 || !em_pass_is_onnx_op(&g->nodes[i_eps], "Add") || g->nodes[i_eps].n_inputs != 2)
        return false;
    em_node *add_eps = &g->nodes[i_eps];
    int eps_slot = add_eps->inputs[0] == g->nodes[i_var].outputs[0] ? 1 : 0;
    float eps = scalar_input(g, add_eps, eps_slot);
    if (!(eps >= 0.0f)) return false; /* also rejects NAN: no constant */
    int i_sqrt = em_pass_sole_consumer(g, add_eps->outputs[0]);
    if (i_sqrt < 0 || !em_pass_is_onnx_op(&g->nodes[i_sqrt], "Sqrt")) return false;
    if (em_pass_sole_consumer(g, g->nodes[i_sqrt].outputs[0]) != i_div ||
        g->nodes[i_div].inputs[1] != g->nodes[i_sqrt].outputs[0])
        return false;
    /* The affine part: Mul by gamma, then optionally Add beta (either operand order). */
    int i_mul = em_pass_sole_consumer(g, g->nodes[i_div].outputs[0]);
    if (i_mul < 0 || !em_pass_is_onnx_op(&g->nodes[i_mul], "Mul") || g->nodes[i_mul].n_inputs != 2)
        return false;
    em_node *mul = &g->nodes[i_mul];
    int gamma = mul->inputs[0] == g->nodes[i_div].outputs[0] ? mul->inputs[1] : mul->inputs[0];
    const em_tensor *gt = em_fixed_const(g, gamma);
    if (dim < 0 && gt && gt->rank >= 1 && gt->dims[gt->rank - 1] > 1) dim = gt->dims[gt->rank - 1];
    if (dim <= 0 || !is_last_axis_vector(gt, dim, r)) return false;
    int out = mul->outputs[0], beta = -1, i_add = em_pass_sole_consumer(g, out);
    if (i_add >= 0 && em_pass_is_onnx_op(&g->nodes[i_add], "Add") && g->nodes[i_add].n_inputs == 2) {
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
    em_pass_remove_node(&g->nodes[i_mean]);
    em_pass_remove_node(&g->nodes[i_sub]);
    em_pass_remove_node(&g->nodes[i_pow]);
    em_pass_remove_node(&g->nodes[i_var]);
    em_pass_remove_node(&g->nodes[i_eps]);
    em_pass_remove_node(&g->nodes[i_sqrt]);
    em_pass_remove_node(&g->nodes[i_mul]);
    if (i_add >= 0) em_pass_remove_node(&g->nodes[i_add]);
    return true;
}

/* Add(a, b) read only by a float32 LayerNormalization over the last axis (with no mean /
 * inverse-deviation outputs) becomes ai.ember AddLayerNormalization(a, b, scale[, bias]): the
 * residual connection in front of a transformer's LayerNorm, one pass instead of two. */
static bool fuse_one_add_layer_norm(em_graph *g, int i_ln) {
    em_node *ln = &g->nodes[i_ln];
    if (ln->n_inputs < 2 || ln->inputs[0] < 0 || ln->inputs[1] < 0) return false;
    for (int k = 1; k < ln->n_outputs; k++)
        if (ln->outputs[k] >= 0) return false;
    const em_tensor *xi = &g->values[ln->inputs[0]].info;
    int64_t axis = em_attr_int(ln, "axis", -1);
    if (xi->dtype != EMBER_FLOAT || xi->rank < 1 || !(axis == -1 || axis == xi->rank - 1))
        return false;
    for (int k = 1; k < ln->n_inputs; k++)
        if (ln->inputs[k] >= 0 && g->values[ln->inputs[k]].info.dtype != EMBER_FLOAT) return false;
    int i_add = em_pass_live_producer(g, ln->inputs[0]);
    if (i_add < 0 || !em_pass_is_onnx_op(&g->nodes[i_add], "Add") || g->nodes[i_add].n_inputs != 2 ||
        em_pass_sole_consumer(g, ln->inputs[0]) != i_ln)
        return false;
    const em_node *add = &g->nodes[i_add];
    if (add->inputs[0] < 0 || add->inputs[1] < 0 ||
        g->values[add->inputs[0]].info.dtype != EMBER_FLOAT ||
        g->values[add->inputs[1]].info.dtype != EMBER_FLOAT)
        return false;
    em_attr *attrs = calloc(1, sizeof(em_attr));
    if (!attrs) return false;
    attrs[0] = (em_attr){.type = EM_ATTR_FLOAT, .f = em_attr_float(ln, "epsilon", 1e-5f),
                         .name = dup_str("epsilon")};
    int inputs[4] = {add->inputs[0], add->inputs[1], ln->inputs[1],
                     ln->n_inputs > 2 ? ln->inputs[2] : -1};
    int n_in = inputs[3] >= 0 ? 4 : 3;
    if (!attrs[0].name || !rewrite(ln, "ai.ember", "AddLayerNormalization", 1, inputs, n_in,
                                   ln->outputs[0], attrs, 1)) {
        em_attr_clear(&attrs[0]);
        free(attrs);
        return false;
    }
    em_pass_remove_node(&g->nodes[i_add]);
    return true;
}

int em_pass_fuse_layer_norm(em_graph *g) {
    if (!em_registry_find("", "LayerNormalization", 17)) return 0;
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (em_pass_is_onnx_op(&g->nodes[i], "ReduceMean") && fuse_one_layer_norm(g, i)) changed++;
    if (!em_registry_find("ai.ember", "AddLayerNormalization", 1)) return changed;
    for (int i = 0; i < g->n_nodes; i++)
        if (em_pass_is_onnx_op(&g->nodes[i], "LayerNormalization") && fuse_one_add_layer_norm(g, i))
            changed++;
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
        if (!em_pass_is_onnx_op(mm, "MatMul") || mm->n_inputs != 2 || mm->n_outputs != 1 ||
            mm->inputs[0] < 0)
            continue;
        const em_tensor *ai = &g->values[mm->inputs[0]].info;
        const em_tensor *b = em_node_fixed_input(g, mm, 1);
        if (!b || b->rank != 2 || b->dtype != EMBER_FLOAT || ai->dtype != EMBER_FLOAT ||
            ai->rank < 3)
            continue;
        int c = em_pass_sole_consumer(g, mm->outputs[0]);
        if (c < 0) continue;
        em_node *add = &g->nodes[c];
        if (!em_pass_is_onnx_op(add, "Add") || add->n_inputs != 2) continue;
        int bias = add->inputs[0] == mm->outputs[0] ? add->inputs[1] : add->inputs[0];
        if (bias == mm->outputs[0] || !is_last_axis_vector(em_fixed_const(g, bias), b->dims[1],
                                                          ai->rank))
            continue;
        int inputs[3] = {mm->inputs[0], mm->inputs[1], bias};
        if (!rewrite(mm, "ai.ember", "FusedMatMul", 1, inputs, 3, add->outputs[0], NULL, 0))
            continue;
        em_pass_remove_node(add);
        changed++;
    }
    return changed;
}

/* ---- self-attention (PyTorch nn.MultiheadAttention, sequence-first, as exported) ---- */

/* The node producing v if it is `op` and v's only reader is node `reader`; else -1. */
static int only_feeder(const em_graph *g, int v, const char *op, int reader) {
    int p = em_pass_live_producer(g, v);
    if (p < 0 || !em_pass_is_onnx_op(&g->nodes[p], op) || g->nodes[p].n_outputs < 1 ||
        g->nodes[p].outputs[0] != v || em_pass_sole_consumer(g, v) != reader)
        return -1;
    for (int k = 1; k < g->nodes[p].n_outputs; k++)
        if (g->nodes[p].outputs[k] >= 0) return -1;
    return p;
}

static bool is_perm(const em_node *n, int a, int b, int c) {
    int64_t count = 0;
    const int64_t *p = em_attr_ints(n, "perm", &count);
    return p && count == 3 && p[0] == a && p[1] == b && p[2] == c;
}

/* One constant integer element of input i, in *v. */
static bool const_int(const em_graph *g, const em_node *n, int i, int64_t *v) {
    const em_tensor *t = em_node_fixed_input(g, n, i);
    if (!t || em_numel(t) != 1 || (t->dtype != EMBER_INT64 && t->dtype != EMBER_INT32)) return false;
    *v = em_get_i64(t, 0);
    return true;
}

/* Slice(qkv, start, end, axes = last, steps = 1) of constants: [*begin, *begin + *width) of
 * qkv's last dim (length e). */
static bool last_axis_slice(const em_graph *g, const em_node *s, int qkv, int64_t e,
                            int64_t *begin, int64_t *width) {
    if (s->opset < 10 || s->n_inputs < 3 || s->inputs[0] != qkv) return false;
    int64_t start, end, axis = -1, step = 1;
    if (!const_int(g, s, 1, &start) || !const_int(g, s, 2, &end)) return false;
    if (s->n_inputs > 3 && s->inputs[3] >= 0 && !const_int(g, s, 3, &axis)) return false;
    if (s->n_inputs > 4 && s->inputs[4] >= 0 && !const_int(g, s, 4, &step)) return false;
    if ((axis != -1 && axis != 2) || step != 1) return false;
    if (start < 0) start += e;
    if (end < 0) end += e;
    start = start < 0 ? 0 : start > e ? e : start;
    end = end < 0 ? 0 : end > e ? e : end;
    *begin = start;
    *width = end - start;
    return end > start;
}

/* Whether every reader of the slice sv other than `reshape` is a Shape whose dims are only
 * picked at 0 or 1 by Gathers (the exporter's k.shape[0]): those dims are qkv's too. */
static bool shape_readers_only(const em_graph *g, int sv, int reshape) {
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        bool reads = false;
        for (int k = 0; n->op_type && k < n->n_inputs; k++)
            if (n->inputs[k] == sv) reads = true;
        if (!reads || i == reshape) continue;
        if (!em_pass_is_onnx_op(n, "Shape") || n->n_inputs != 1 || em_node_attr(n, "start") ||
            em_node_attr(n, "end") || n->outputs[0] < 0 || g->values[n->outputs[0]].is_output)
            return false;
        for (int j = 0; j < g->n_nodes; j++) {
            const em_node *u = &g->nodes[j];
            bool uses = false;
            for (int k = 0; u->op_type && k < u->n_inputs; k++)
                if (u->inputs[k] == n->outputs[0]) uses = true;
            if (!uses) continue;
            int64_t idx;
            if (!em_pass_is_onnx_op(u, "Gather") || u->n_inputs != 2 || u->inputs[0] != n->outputs[0] ||
                u->inputs[1] == n->outputs[0] || em_attr_int(u, "axis", 0) != 0 ||
                !const_int(g, u, 1, &idx) || !(idx == 0 || idx == 1 || idx == -3 || idx == -2))
                return false;
        }
    }
    return true;
}

/* From the value read by a MatMul back through Transpose(perm) <- Reshape <- Slice(qkv):
 * fills the three nodes, the Reshape's shape value and the slice range. */
typedef struct head_path {
    int transpose, reshape, slice;
    int shape;
    int64_t begin, width;
} head_path;

static bool head_input(const em_graph *g, int v, int reader, int p0, int p1, int p2, int qkv,
                       int64_t e, head_path *hp) {
    hp->transpose = only_feeder(g, v, "Transpose", reader);
    if (hp->transpose < 0 || !is_perm(&g->nodes[hp->transpose], p0, p1, p2)) return false;
    hp->reshape = only_feeder(g, g->nodes[hp->transpose].inputs[0], "Reshape", hp->transpose);
    if (hp->reshape < 0) return false;
    const em_node *r = &g->nodes[hp->reshape];
    if (r->n_inputs != 2 || r->inputs[1] < 0 || em_attr_int(r, "allowzero", 0) != 0) return false;
    hp->shape = r->inputs[1];
    int sv = r->inputs[0];
    hp->slice = em_pass_live_producer(g, sv);
    if (hp->slice < 0 || !em_pass_is_onnx_op(&g->nodes[hp->slice], "Slice") || g->values[sv].is_output ||
        g->nodes[hp->slice].n_outputs != 1 || !shape_readers_only(g, sv, hp->reshape))
        return false;
    return last_axis_slice(g, &g->nodes[hp->slice], qkv, e, &hp->begin, &hp->width);
}

/* Point the Shape nodes reading a removed slice at qkv (they only use dims 0 and 1). */
static void rewire_shape_readers(em_graph *g, int sv, int qkv) {
    for (int i = 0; i < g->n_nodes; i++)
        if (em_pass_is_onnx_op(&g->nodes[i], "Shape") && g->nodes[i].inputs[0] == sv)
            g->nodes[i].inputs[0] = qkv;
}

/* Softmax(Q' K^T) V over heads cut out of one packed projection qkv [S, B, E]:
 *   Q' = Transpose(Reshape(Slice(qkv)), [1,0,2]) / c   (or * c, or unscaled)
 *   K^T = Transpose(Reshape(Slice(qkv)), [1,2,0]),  V = Transpose(Reshape(Slice(qkv)), [1,0,2])
 *   out = Transpose(Softmax(Q' K^T, last axis) V, [1,0,2])
 * becomes ai.ember FusedAttention(qkv, shape_q, shape_k, shape_v): when the Reshapes split heads
 * (as they do in nn.MultiheadAttention), strided GEMMs straight from qkv into the output, no
 * copies; any other targets are computed from copies of the slices (ops/softmax.c). */
static bool fuse_one_attention(em_graph *g, int i_sm) {
    const em_node *sm = &g->nodes[i_sm];
    int64_t axis = em_attr_int(sm, "axis", sm->opset >= 13 ? -1 : 1);
    if (sm->n_inputs != 1 || sm->n_outputs != 1 || !(axis == 2 || (sm->opset >= 13 && axis == -1)))
        return false;
    int i_mm1 = only_feeder(g, sm->inputs[0], "MatMul", i_sm);
    int i_mm2 = em_pass_sole_consumer(g, sm->outputs[0]);
    if (i_mm1 < 0 || i_mm2 < 0 || !em_pass_is_onnx_op(&g->nodes[i_mm2], "MatMul") ||
        g->nodes[i_mm2].inputs[0] != sm->outputs[0] || g->nodes[i_mm2].inputs[1] == sm->outputs[0])
        return false;
    int i_out = em_pass_sole_consumer(g, g->nodes[i_mm2].outputs[0]);
    if (i_out < 0 || !em_pass_is_onnx_op(&g->nodes[i_out], "Transpose") || !is_perm(&g->nodes[i_out], 1, 0, 2) ||
        g->nodes[i_out].n_outputs != 1)
        return false;
    /* The scale on Q. */
    const em_node *mm1 = &g->nodes[i_mm1];
    int q_in = mm1->inputs[0], i_scale = -1;
    float scale = 1.0f;
    if (q_in == mm1->inputs[1]) return false;
    int p = em_pass_live_producer(g, q_in);
    if (p >= 0 && (em_pass_is_onnx_op(&g->nodes[p], "Div") || em_pass_is_onnx_op(&g->nodes[p], "Mul")) &&
        g->nodes[p].n_inputs == 2 && em_pass_sole_consumer(g, q_in) == i_mm1) {
        float c = scalar_input(g, &g->nodes[p], 1);
        if (c == c && c != 0.0f && isfinite(c)) {
            i_scale = p;
            scale = em_pass_is_onnx_op(&g->nodes[p], "Div") ? 1.0f / c : c;
            q_in = g->nodes[p].inputs[0];
        }
    }
    /* Find qkv from the Q path's Slice, then match all three paths against it. */
    int t = only_feeder(g, q_in, "Transpose", i_scale >= 0 ? i_scale : i_mm1);
    int r = t >= 0 ? only_feeder(g, g->nodes[t].inputs[0], "Reshape", t) : -1;
    int s = r >= 0 ? only_feeder(g, g->nodes[r].inputs[0], "Slice", r) : -1;
    if (s < 0 || g->nodes[s].n_inputs < 1) return false;
    int qkv = g->nodes[s].inputs[0];
    const em_tensor *qi = &g->values[qkv].info;
    if (qkv < 0 || qi->dtype != EMBER_FLOAT || qi->rank != 3 || qi->dims[2] <= 0) return false;
    int64_t e = qi->dims[2];
    head_path q, k, v;
    if (!head_input(g, q_in, i_scale >= 0 ? i_scale : i_mm1, 1, 0, 2, qkv, e, &q) ||
        !head_input(g, mm1->inputs[1], i_mm1, 1, 2, 0, qkv, e, &k) ||
        !head_input(g, g->nodes[i_mm2].inputs[1], i_mm2, 1, 0, 2, qkv, e, &v))
        return false;
    if (q.width != k.width || q.width != v.width) return false;
    em_attr *attrs = calloc(5, sizeof(em_attr));
    if (!attrs) return false;
    const char *names[4] = {"q_offset", "k_offset", "v_offset", "width"};
    int64_t values[4] = {q.begin, k.begin, v.begin, q.width};
    bool ok = true;
    for (int a = 0; a < 4; a++) {
        attrs[a] = (em_attr){.type = EM_ATTR_INT, .i = values[a], .name = dup_str(names[a])};
        ok = ok && attrs[a].name;
    }
    attrs[4] = (em_attr){.type = EM_ATTR_FLOAT, .f = scale, .name = dup_str("scale")};
    int inputs[4] = {qkv, q.shape, k.shape, v.shape};
    int out = g->nodes[i_out].outputs[0];
    if (!ok || !attrs[4].name ||
        !rewrite(&g->nodes[i_out], "ai.ember", "FusedAttention", 1, inputs, 4, out, attrs, 5)) {
        for (int a = 0; a < 5; a++) em_attr_clear(&attrs[a]);
        free(attrs);
        return false;
    }
    rewire_shape_readers(g, g->nodes[q.slice].outputs[0], qkv);
    rewire_shape_readers(g, g->nodes[k.slice].outputs[0], qkv);
    rewire_shape_readers(g, g->nodes[v.slice].outputs[0], qkv);
    int dead[] = {i_sm, i_mm1, i_mm2, i_scale, q.transpose, q.reshape, q.slice, k.transpose,
                  k.reshape, k.slice, v.transpose, v.reshape, v.slice};
    for (size_t d = 0; d < sizeof dead / sizeof dead[0]; d++)
        if (dead[d] >= 0) em_pass_remove_node(&g->nodes[dead[d]]);
    return true;
}

int em_pass_fuse_attention(em_graph *g) {
    if (!em_registry_find("ai.ember", "FusedAttention", 1)) return 0;
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (em_pass_is_onnx_op(&g->nodes[i], "Softmax") && fuse_one_attention(g, i)) changed++;
    return changed;
}
