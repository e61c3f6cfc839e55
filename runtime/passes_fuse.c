/* Fusion passes: shape folding, Conv+BatchNormalization folding, activation and residual
 * fusion into the ai.ember Fused* kernels (see ops/conv.c for their contract), MatMul+Add ->
 * Gemm. Each pass only rewrites when the result is the same computation; the ones that change
 * rounding (BatchNormalization folding) run at EMBER_OPT_ALL only. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "passes.h"

static bool is_op(const em_node *n, const char *domain, const char *op) {
    return n->op_type && strcmp(n->domain, domain) == 0 && strcmp(n->op_type, op) == 0;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool add_attr(em_node *n, em_attr *a) {
    em_attr *attrs = realloc(n->attrs, sizeof(em_attr) * (size_t)(n->n_attrs + 1));
    if (!attrs) return false;
    n->attrs = attrs;
    n->attrs[n->n_attrs++] = *a;
    return true;
}

static bool set_string_attr(em_node *n, const char *name, const char *value) {
    em_attr a = {0};
    a.type = EM_ATTR_STRING;
    a.name = dup_str(name);
    a.s = dup_str(value);
    a.s_len = strlen(value);
    if (!a.name || !a.s || !add_attr(n, &a)) {
        em_attr_clear(&a);
        return false;
    }
    return true;
}

static bool set_floats_attr(em_node *n, const char *name, const float *v, int count) {
    em_attr a = {0};
    a.type = EM_ATTR_FLOATS;
    a.name = dup_str(name);
    a.n = count;
    a.floats = malloc(sizeof(float) * (size_t)(count + 1));
    if (!a.name || !a.floats || !add_attr(n, &a)) {
        em_attr_clear(&a);
        return false;
    }
    if (count) memcpy(a.floats, v, sizeof(float) * (size_t)count);
    n->attrs[n->n_attrs - 1].floats = a.floats;
    return true;
}

/* Rename a node to domain:op (strings replaced), re-resolving its kernel. */
static bool retype(em_node *n, const char *domain, const char *op, int opset) {
    char *d = dup_str(domain), *o = dup_str(op);
    if (!d || !o) {
        free(d);
        free(o);
        return false;
    }
    free(n->domain);
    free(n->op_type);
    n->domain = d;
    n->op_type = o;
    n->opset = opset;
    n->op = em_registry_find(domain, op, opset);
    return n->op != NULL;
}

/* Retype n to ai.ember:op (version 1); if that fails, n is left as it was. */
static bool retype_to_ember(em_node *n, const char *op) {
    char *domain = dup_str(n->domain), *type = dup_str(n->op_type);
    const int opset = n->opset;
    const bool ok = domain && type && retype(n, "ai.ember", op, 1);
    if (!ok && domain && type) retype(n, domain, type, opset);
    free(domain);
    free(type);
    return ok;
}

static bool fully_static(const em_tensor *t) {
    if (t->rank < 0 || t->dtype == EMBER_UNDEFINED) return false;
    for (int d = 0; d < t->rank; d++)
        if (t->dims[d] < 0) return false;
    return true;
}

/* The [start, end) range of dims a Shape node reports for an input of rank r (opset 15 adds
 * start / end; out-of-range values clamp). */
static void shape_range(const em_node *n, int r, int64_t *start, int64_t *end) {
    int64_t s = em_attr_int(n, "start", 0), e = em_attr_int(n, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    *start = s < 0 ? 0 : s > r ? r : s;
    *end = e < *start ? *start : e > r ? r : e;
}

/* Static info of value v: its fixed constant, else what inference found. */
static const em_tensor *static_info(const em_graph *g, int v) {
    return em_fixed_const(g, v) ? g->values[v].constant : &g->values[v].info;
}

static bool dims_static(const em_tensor *t, int64_t start, int64_t end) {
    if (t->rank < 0) return false;
    for (int64_t d = start; d < end; d++)
        if (t->dims[d] < 0) return false;
    return true;
}

static void make_constant(em_graph *g, int v, em_tensor *t) {
    em_value *out = &g->values[v];
    out->constant = t;
    em_tensor_set_shape(&out->info, t->dtype, t->dims, t->rank);
}


/* Gather(Shape(x), constant indices) picking dims of x known at load: a constant, even when
 * other dims of x (the batch) are symbolic. PyTorch exports of attention are full of these. */
static bool fold_gather_of_shape(em_graph *g, em_node *n) {
    if (!em_pass_is_onnx_op(n, "Gather") || n->n_inputs != 2 || n->inputs[0] < 0 || n->outputs[0] < 0 ||
        g->values[n->outputs[0]].is_output || em_attr_int(n, "axis", 0) != 0)
        return false;
    const em_tensor *idx = em_node_fixed_input(g, n, 1);
    if (!idx || idx->rank > 1 || (idx->dtype != EMBER_INT64 && idx->dtype != EMBER_INT32))
        return false;
    int p = em_pass_live_producer(g, n->inputs[0]);
    if (p < 0 || !em_pass_is_onnx_op(&g->nodes[p], "Shape") || g->nodes[p].inputs[0] < 0) return false;
    const em_tensor *info = static_info(g, g->nodes[p].inputs[0]);
    if (info->rank < 0) return false;
    int64_t start, end;
    shape_range(&g->nodes[p], info->rank, &start, &end);
    int64_t len = end - start, count = em_numel(idx);
    for (int64_t k = 0; k < count; k++) {
        int64_t i = em_get_i64(idx, k);
        if (i < -len || i >= len || info->dims[start + (i < 0 ? i + len : i)] < 0) return false;
    }
    em_tensor *t = em_tensor_new(EMBER_INT64, idx->dims, idx->rank, NULL);
    if (!t) return false;
    for (int64_t k = 0; k < count; k++) {
        int64_t i = em_get_i64(idx, k);
        ((int64_t *)t->data)[k] = info->dims[start + (i < 0 ? i + len : i)];
    }
    make_constant(g, n->outputs[0], t);
    return true;
}

/* Shape / Size of a value whose (reported) dims are known at load become constants, so the
 * Shape -> Gather -> Concat -> Reshape chains that exporters emit fold away; with a symbolic
 * batch, the Gathers that pick static dims still fold. */
int em_pass_fold_shapes(em_graph *g) {
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op_type) continue;
        if (fold_gather_of_shape(g, n)) {
            em_pass_remove_node(n);
            changed++;
            continue;
        }
        bool shape = em_pass_is_onnx_op(n, "Shape"), size = em_pass_is_onnx_op(n, "Size");
        if ((!shape && !size) || n->n_inputs < 1 || n->inputs[0] < 0 || n->outputs[0] < 0) continue;
        const em_tensor *info = static_info(g, n->inputs[0]);
        if (info->rank < 0 || g->values[n->outputs[0]].is_output) continue;
        em_tensor *t;
        if (shape) {
            int64_t start, end;
            shape_range(n, info->rank, &start, &end);
            if (!dims_static(info, start, end)) continue;
            int64_t len = end - start;
            t = em_tensor_new(EMBER_INT64, &len, 1, NULL);
            if (!t) continue;
            for (int64_t k = 0; k < len; k++) ((int64_t *)t->data)[k] = info->dims[start + k];
        } else {
            if (!fully_static(info)) continue;
            t = em_tensor_new(EMBER_INT64, NULL, 0, NULL);
            if (!t) continue;
            *(int64_t *)t->data = em_shape_numel(info->dims, info->rank);
        }
        make_constant(g, n->outputs[0], t);
        em_pass_remove_node(n);
        changed++;
    }
    return changed;
}

/* Conv(X, W, B) -> BatchNormalization(scale, bias, mean, var) becomes one Conv with
 * W' = W * s and B' = (B - mean) * s + bias, s = scale / sqrt(var + eps). */
int em_pass_fold_conv_bn(em_graph *g) {
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *conv = &g->nodes[i];
        if (!em_pass_is_onnx_op(conv, "Conv") || conv->n_outputs != 1) continue;
        const em_tensor *w = em_node_fixed_input(g, conv, 1);
        const em_tensor *b = conv->n_inputs > 2 ? em_node_fixed_input(g, conv, 2) : NULL;
        bool has_b = conv->n_inputs > 2 && conv->inputs[2] >= 0;
        if (!w || w->dtype != EMBER_FLOAT || w->rank < 3 || (has_b && !b)) continue;
        int c = em_pass_sole_consumer(g, conv->outputs[0]);
        if (c < 0) continue;
        em_node *bn = &g->nodes[c];
        if (!em_pass_is_onnx_op(bn, "BatchNormalization") || bn->n_inputs < 5 || bn->inputs[0] != conv->outputs[0])
            continue;
        if (bn->n_outputs > 1) {
            bool extra = false;
            for (int k = 1; k < bn->n_outputs; k++)
                if (bn->outputs[k] >= 0) extra = true;
            if (extra) continue;
        }
        if (em_attr_int(bn, "training_mode", 0) != 0) continue;
        const em_tensor *sc = em_node_fixed_input(g, bn, 1), *bi = em_node_fixed_input(g, bn, 2),
                        *mu = em_node_fixed_input(g, bn, 3), *var = em_node_fixed_input(g, bn, 4);
        int64_t m = w->dims[0];
        if (!sc || !bi || !mu || !var || em_numel(sc) != m || em_numel(bi) != m ||
            em_numel(mu) != m || em_numel(var) != m || sc->dtype != EMBER_FLOAT ||
            bi->dtype != EMBER_FLOAT || mu->dtype != EMBER_FLOAT || var->dtype != EMBER_FLOAT ||
            (b && (b->dtype != EMBER_FLOAT || em_numel(b) != m)))
            continue;
        float eps = em_attr_float(bn, "epsilon", 1e-5f);
        em_tensor *nw = em_tensor_clone(w, NULL);
        em_tensor *nb = em_tensor_new(EMBER_FLOAT, &m, 1, NULL);
        int nbv = em_graph_add_value(g, "");
        int nwv = em_graph_add_value(g, "");
        conv = &g->nodes[i];
        bn = &g->nodes[c];
        if (!nw || !nb || nbv < 0 || nwv < 0) {
            em_tensor_free(nw);
            em_tensor_free(nb);
            continue;
        }
        int64_t per = em_numel(w) / (m ? m : 1);
        float *wd = nw->data, *bd = nb->data;
        const float *scd = sc->data, *bid = bi->data, *mud = mu->data, *vd = var->data;
        for (int64_t o = 0; o < m; o++) {
            float s = scd[o] / sqrtf(vd[o] + eps);
            for (int64_t k = 0; k < per; k++) wd[o * per + k] *= s;
            float b0 = b ? ((const float *)b->data)[o] : 0.0f;
            bd[o] = (b0 - mud[o]) * s + bid[o];
        }
        char name[64];
        snprintf(name, sizeof name, "%s.folded_w", g->values[conv->inputs[1]].name);
        free(g->values[nwv].name);
        g->values[nwv].name = dup_str(name);
        snprintf(name, sizeof name, "%s.folded_b", g->values[conv->inputs[1]].name);
        free(g->values[nbv].name);
        g->values[nbv].name = dup_str(name);
        g->values[nwv].constant = nw;
        em_tensor_set_shape(&g->values[nwv].info, nw->dtype, nw->dims, nw->rank);
        g->values[nbv].constant = nb;
        em_tensor_set_shape(&g->values[nbv].info, nb->dtype, nb->dims, nb->rank);
        if (conv->n_inputs < 3) {
            int *in = realloc(conv->inputs, sizeof(int) * 3);
            if (!in) continue;
            conv->inputs = in;
            conv->n_inputs = conv->n_explicit_inputs = 3;
        }
        conv->inputs[1] = nwv;
        conv->inputs[2] = nbv;
        conv->outputs[0] = bn->outputs[0];
        em_pass_remove_node(bn);
        changed++;
    }
    return changed;
}

static bool activation_of(const em_graph *g, const em_node *n, const char **name, float *params,
                          int *n_params) {
    *n_params = 0;
    if (n->domain[0] != '\0') return false;
    if (strcmp(n->op_type, "Relu") == 0 || strcmp(n->op_type, "Sigmoid") == 0 ||
        strcmp(n->op_type, "Tanh") == 0) {
        *name = n->op_type;
        return true;
    }
    if (strcmp(n->op_type, "LeakyRelu") == 0) {
        *name = "LeakyRelu";
        params[0] = em_attr_float(n, "alpha", 0.01f);
        *n_params = 1;
        return true;
    }
    if (strcmp(n->op_type, "HardSigmoid") == 0) {
        *name = "HardSigmoid";
        params[0] = em_attr_float(n, "alpha", 0.2f);
        params[1] = em_attr_float(n, "beta", 0.5f);
        *n_params = 2;
        return true;
    }
    if (strcmp(n->op_type, "Clip") == 0) {
        *name = "Clip";
        if (n->opset < 11) {
            params[0] = em_attr_float(n, "min", -INFINITY);
            params[1] = em_attr_float(n, "max", INFINITY);
        } else {
            params[0] = -INFINITY;
            params[1] = INFINITY;
            for (int k = 1; k <= 2; k++) {
                if (n->n_inputs <= k || n->inputs[k] < 0) continue;
                const em_tensor *t = em_node_fixed_input(g, n, k);
                if (!t || t->dtype != EMBER_FLOAT || em_numel(t) != 1) return false;
                params[k - 1] = ((const float *)t->data)[0];
            }
        }
        *n_params = 2;
        return true;
    }
    return false;
}

/* Static float32 output of a node, or NULL. */
static const em_tensor *out_info(const em_graph *g, const em_node *n) {
    if (n->n_outputs < 1 || n->outputs[0] < 0) return NULL;
    return &g->values[n->outputs[0]].info;
}

/* Operators whose output's dim 0 is their input 0's dim 0. */
static bool keeps_dim0(const em_node *n) {
    static const char *const ops[] = {
        "Conv", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh",
        "HardSigmoid", "HardSwish", "MaxPool", "AveragePool", "GlobalAveragePool",
        "GlobalMaxPool", "Identity", "Dropout", "InstanceNormalization", NULL};
    if (is_op(n, "ai.ember", "FusedConv")) return true;
    for (int i = 0; ops[i]; i++)
        if (em_pass_is_onnx_op(n, ops[i])) return true;
    return false;
}

/* The value whose dim 0 value v's dim 0 provably equals at run time, following producers up
 * through keeps_dim0 operators and through elementwise Add / Mul / Sub whose two inputs share
 * such a root (or whose other input is a constant that cannot widen dim 0). -1 if unknown. */
static int dim0_root(const em_graph *g, int v, int depth) {
    while (v >= 0 && depth++ < 10000) {
        int p = em_pass_live_producer(g, v);
        if (p < 0) return v;
        const em_node *n = &g->nodes[p];
        if (n->n_inputs < 1 || n->inputs[0] < 0 || n->outputs[0] != v) return -1;
        if (keeps_dim0(n)) {
            v = n->inputs[0];
            continue;
        }
        if (!(em_pass_is_onnx_op(n, "Add") || em_pass_is_onnx_op(n, "Mul") || em_pass_is_onnx_op(n, "Sub")) || n->n_inputs != 2)
            return -1;
        const em_tensor *out = &g->values[v].info;
        int roots[2];
        for (int k = 0; k < 2; k++) {
            int in = n->inputs[k];
            const em_tensor *c = em_fixed_const(g, in);
            if (c) { /* a constant must not broadcast dim 0 wider */
                roots[k] = c->rank < out->rank || (c->rank > 0 && c->dims[0] == 1) ? -2 : -1;
                continue;
            }
            roots[k] = g->values[in].info.rank == out->rank ? dim0_root(g, in, depth) : -1;
        }
        if (roots[0] == -1 || roots[1] == -1 || (roots[0] == -2 && roots[1] == -2)) return -1;
        if (roots[0] >= 0 && roots[1] >= 0 && roots[0] != roots[1]) return -1;
        return roots[0] >= 0 ? roots[0] : roots[1];
    }
    return -1;
}

/* Whether Z has exactly the conv output's shape whatever the input sizes: equal static dims,
 * and an unknown dim 0 (the batch) only if both come from the same value's dim 0. */
static bool residual_fits(const em_graph *g, const em_node *conv, int z, const em_tensor *oi) {
    const em_value *zv = &g->values[z];
    const em_tensor *zi = em_fixed_const(g, z) ? zv->constant : &zv->info;
    if (zi->dtype != EMBER_FLOAT || zi->rank < 1 || zi->rank != oi->rank) return false;
    bool batch_unknown = false;
    for (int d = 0; d < zi->rank; d++) {
        if (zi->dims[d] >= 0 && oi->dims[d] >= 0) {
            if (zi->dims[d] != oi->dims[d]) return false;
        } else if (d == 0 && zi->dims[0] < 0 && oi->dims[0] < 0) {
            batch_unknown = true;
        } else {
            return false;
        }
    }
    if (!batch_unknown) return true;
    int root = dim0_root(g, conv->inputs[0], 0);
    return root >= 0 && root == dim0_root(g, z, 0);
}

/* Conv / Gemm / MatMul followed by an activation (and, for Conv, a residual Add before it)
 * become ai.ember FusedConv / FusedGemm / FusedMatMul. */
int em_pass_fuse_activations(em_graph *g) {
    if (!em_registry_find("ai.ember", "FusedConv", 1)) return 0;
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        const char *fused = NULL;
        if (em_pass_is_onnx_op(n, "Conv")) fused = "FusedConv";
        else if (em_pass_is_onnx_op(n, "Gemm")) fused = "FusedGemm";
        else if (em_pass_is_onnx_op(n, "MatMul")) fused = "FusedMatMul";
        else if (is_op(n, "ai.ember", "FusedMatMul") && !em_node_attr(n, "activation"))
            fused = "FusedMatMul"; /* with a bias from em_pass_matmul_bias */
        else continue;
        if (n->n_outputs != 1) continue;
        const em_tensor *oi = out_info(g, n);
        if (!oi || oi->dtype != EMBER_FLOAT) continue;
        int c = em_pass_sole_consumer(g, n->outputs[0]);
        if (c < 0) continue;
        em_node *next = &g->nodes[c];
        int z = -1;
        /* Residual: Conv -> Add(conv, Z) with Z of exactly the output's shape. */
        if (strcmp(fused, "FusedConv") == 0 && em_pass_is_onnx_op(next, "Add") && next->n_inputs == 2) {
            int other = next->inputs[0] == n->outputs[0] ? next->inputs[1] : next->inputs[0];
            if (other >= 0 && other != n->outputs[0] && residual_fits(g, n, other, oi)) {
                /* Z must be ready before the conv runs: it is, in topological order, unless
                 * Z is produced after the conv; the final re-sort checks that. */
                z = other;
            }
        }
        const char *act = NULL;
        float params[2];
        int n_params = 0;
        em_node *act_node = NULL;
        if (z >= 0) {
            int c2 = em_pass_sole_consumer(g, next->outputs[0]);
            if (c2 >= 0 && activation_of(g, &g->nodes[c2], &act, params, &n_params))
                act_node = &g->nodes[c2];
        } else if (activation_of(g, next, &act, params, &n_params)) {
            act_node = next;
        }
        if (z < 0 && !act_node) continue;
        /* Rewrite n into the fused op. */
        if (n->domain[0] == '\0' && !retype_to_ember(n, fused)) continue;
        if (z >= 0) {
            int *in = realloc(n->inputs, sizeof(int) * 4);
            if (!in) continue;
            n->inputs = in;
            while (n->n_inputs < 3) n->inputs[n->n_inputs++] = -1;
            n->inputs[3] = z;
            n->n_inputs = n->n_explicit_inputs = 4;
            n->outputs[0] = next->outputs[0];
            em_pass_remove_node(next);
        }
        if (act_node) {
            set_string_attr(n, "activation", act);
            if (n_params) set_floats_attr(n, "activation_params", params, n_params);
            n->outputs[0] = act_node->outputs[0];
            em_pass_remove_node(act_node);
        }
        changed++;
    }
    return changed;
}

/* ---- inverted-residual blocks -> FusedMBConv (ops/conv_mbconv.c) ---- */

/* Expanded tensors smaller than this per image stay in cache between the unfused convs. */
#define MBCONV_MIN_BYTES (512 << 10)
/* Stride-1 blocks fuse from a smaller size: there the three unfused convs split their work
 * between threads differently (columns, planes, columns), so on several threads much of each
 * conv's input comes from the other core, while a fused band stays on its thread. Measured on
 * MobileNetV2's 14x14 blocks (expanded 301 and 451 KiB): 10-19% faster on 2 threads, 1-6%
 * slower on 1; its 7x7 blocks (188 KiB) and the 14x14 stride-2 block are slower fused. */
#define MBCONV_MIN_BYTES_STRIDE1 (256 << 10)

static bool conv_like(const em_node *n) {
    return em_pass_is_onnx_op(n, "Conv") || is_op(n, "ai.ember", "FusedConv");
}

/* The input X of a Conv / FusedConv with one output and no residual input (at most X, W, B)
 * when X is a float32 4-D tensor; NULL otherwise. Where the conv fusions start. */
static const em_tensor *plain_conv_float_input(const em_graph *g, const em_node *n) {
    if (!conv_like(n) || n->n_outputs != 1 || n->n_inputs > 3 || n->inputs[0] < 0) return NULL;
    const em_tensor *x = &g->values[n->inputs[0]].info;
    return x->dtype == EMBER_FLOAT && x->rank == 4 ? x : NULL;
}

/* Plain Conv attributes of a 2-D conv: no auto_pad, dilations 1, `group` as given, kernel
 * kh x kw; strides / pads returned (defaults 1 / 0). */
static bool plain_conv2d(const em_node *n, int64_t group, int64_t kh, int64_t kw,
                         int64_t strides[2], int64_t pads[4]) {
    const char *auto_pad = em_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(auto_pad, "NOTSET") != 0 || em_attr_int(n, "group", 1) != group) return false;
    int64_t count = 0;
    const int64_t *v = em_attr_ints(n, "dilations", &count);
    for (int64_t i = 0; i < count; i++)
        if (v[i] != 1) return false;
    if (count != 0 && count != 2) return false;
    v = em_attr_ints(n, "kernel_shape", &count);
    if (count != 0 && (count != 2 || v[0] != kh || v[1] != kw)) return false;
    v = em_attr_ints(n, "strides", &count);
    if (count != 0 && count != 2) return false;
    strides[0] = count ? v[0] : 1, strides[1] = count ? v[1] : 1;
    v = em_attr_ints(n, "pads", &count);
    if (count != 0 && count != 4) return false;
    for (int i = 0; i < 4; i++) pads[i] = count ? v[i] : 0;
    return true;
}

/* Conv / FusedConv with a constant float32 W of [rows, k, kh, kw] and a bias that is absent or
 * constant; no residual input. */
static bool conv_weights(const em_graph *g, const em_node *n, int64_t rows, int64_t k, int64_t kh,
                         int64_t kw) {
    const em_tensor *w = em_node_fixed_input(g, n, 1);
    if (!w || w->dtype != EMBER_FLOAT || w->rank != 4 || (rows >= 0 && w->dims[0] != rows) ||
        w->dims[1] != k || w->dims[2] != kh || w->dims[3] != kw)
        return false;
    return n->n_inputs < 3 || n->inputs[2] < 0 || em_node_fixed_input(g, n, 2);
}

/* 1x1, stride 1, no padding, one group. */
static bool pointwise_conv(const em_graph *g, const em_node *n, int64_t rows, int64_t k) {
    int64_t st[2], pd[4];
    return conv_like(n) && plain_conv2d(n, 1, 1, 1, st, pd) && st[0] == 1 && st[1] == 1 &&
           pd[0] == 0 && pd[1] == 0 && pd[2] == 0 && pd[3] == 0 &&
           conv_weights(g, n, rows, k, 1, 1);
}

static bool set_ints_attr(em_node *n, const char *name, const int64_t *v, int count) {
    em_attr a = {0};
    a.type = EM_ATTR_INTS;
    a.name = dup_str(name);
    a.n = count;
    a.ints = malloc(sizeof(int64_t) * (size_t)(count + 1));
    if (!a.name || !a.ints) {
        em_attr_clear(&a);
        return false;
    }
    memcpy(a.ints, v, sizeof(int64_t) * (size_t)count);
    if (!add_attr(n, &a)) {
        em_attr_clear(&a);
        return false;
    }
    return true;
}

/* Copy conv n's activation attributes to `to` under the names prefix + "activation" and
 * prefix + "activation_params". */
static bool copy_activation(const em_node *n, em_node *to, const char *prefix) {
    const char *act = n ? em_attr_string(n, "activation", NULL) : NULL;
    if (!act) return true;
    char name[64], params[64];
    snprintf(name, sizeof name, "%sactivation", prefix);
    snprintf(params, sizeof params, "%sactivation_params", prefix);
    int64_t count = 0;
    const float *v = em_attr_floats(n, "activation_params", &count);
    return set_string_attr(to, name, act) &&
           (count == 0 || set_floats_attr(to, params, v, (int)count));
}

/* Rewrite dw into FusedMBConv(X, W1, B1, W2, B2, W3, B3, [Z]); expand may be NULL. */
static bool make_mbconv(em_node *expand, em_node *dw, em_node *project, const int64_t strides[2],
                        const int64_t pads[4]) {
    int in[8];
    in[0] = expand ? expand->inputs[0] : dw->inputs[0];
    in[1] = expand ? expand->inputs[1] : -1;
    in[2] = expand && expand->n_inputs > 2 ? expand->inputs[2] : -1;
    in[3] = dw->inputs[1];
    in[4] = dw->n_inputs > 2 ? dw->inputs[2] : -1;
    in[5] = project->inputs[1];
    in[6] = project->n_inputs > 2 ? project->inputs[2] : -1;
    in[7] = project->n_inputs > 3 ? project->inputs[3] : -1;
    const int n_in = in[7] >= 0 ? 8 : 7;
    em_node fused = {0};
    if (!copy_activation(expand, &fused, "expand_") || !copy_activation(dw, &fused, "dw_") ||
        !copy_activation(project, &fused, "") || !set_ints_attr(&fused, "strides", strides, 2) ||
        !set_ints_attr(&fused, "pads", pads, 4))
        goto fail;
    int *inputs = malloc(sizeof(int) * (size_t)n_in);
    if (!inputs) goto fail;
    if (!retype_to_ember(dw, "FusedMBConv")) {
        free(inputs);
        goto fail;
    }
    memcpy(inputs, in, sizeof(int) * (size_t)n_in);
    free(dw->inputs);
    dw->inputs = inputs;
    dw->n_inputs = dw->n_explicit_inputs = n_in;
    for (int a = 0; a < dw->n_attrs; a++) em_attr_clear(&dw->attrs[a]);
    free(dw->attrs);
    dw->attrs = fused.attrs;
    dw->n_attrs = fused.n_attrs;
    dw->outputs[0] = project->outputs[0];
    em_pass_remove_node(project);
    if (expand) em_pass_remove_node(expand);
    return true;
fail:
    for (int a = 0; a < fused.n_attrs; a++) em_attr_clear(&fused.attrs[a]);
    free(fused.attrs);
    return false;
}

/* Conv 1x1 -> depthwise Conv 3x3 -> Conv 1x1 (each with or without an activation, the last
 * with or without a residual Z; or without the first conv), the values between them read by
 * nothing else, become one ai.ember FusedMBConv, which computes the block band by band so
 * the expanded values never leave the cache. Only where the expanded tensor of one image is
 * at least MBCONV_MIN_BYTES (MBCONV_MIN_BYTES_STRIDE1 with stride 1), and where the kernel is
 * registered (AVX-512 CPUs). Changes rounding where the unfused depthwise conv runs small
 * planes flat: EMBER_OPT_ALL only. */
int em_pass_fuse_mbconv(em_graph *g) {
    if (!em_registry_find("ai.ember", "FusedMBConv", 1)) return 0;
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *dw = &g->nodes[i];
        const em_tensor *xi = plain_conv_float_input(g, dw);
        if (!xi || xi->dims[1] <= 0 || xi->dims[2] <= 0 || xi->dims[3] <= 0) continue;
        const int64_t E = xi->dims[1];
        int64_t strides[2], pads[4];
        if (!plain_conv2d(dw, E, 3, 3, strides, pads) || !conv_weights(g, dw, E, 1, 3, 3) ||
            (strides[1] != 1 && strides[1] != 2) || strides[0] < 1 || pads[0] > 2 || pads[1] > 2 ||
            (uint64_t)(E * xi->dims[2] * xi->dims[3]) * sizeof(float) <
                (strides[0] == 1 && strides[1] == 1 ? MBCONV_MIN_BYTES_STRIDE1 : MBCONV_MIN_BYTES))
            continue;
        const int c = em_pass_sole_consumer(g, dw->outputs[0]);
        if (c < 0) continue;
        em_node *project = &g->nodes[c];
        if (!pointwise_conv(g, project, -1, E) || project->inputs[0] != dw->outputs[0] ||
            project->n_outputs != 1)
            continue;
        if (project->n_inputs > 3 && project->inputs[3] >= 0 &&
            (project->inputs[3] == dw->outputs[0] ||
             g->values[project->inputs[3]].info.dtype != EMBER_FLOAT))
            continue;
        em_node *expand = NULL;
        const int p = em_pass_live_producer(g, dw->inputs[0]);
        if (p >= 0 && em_pass_sole_consumer(g, dw->inputs[0]) == i) {
            em_node *e = &g->nodes[p];
            const em_tensor *ei = e->inputs[0] >= 0 ? &g->values[e->inputs[0]].info : NULL;
            if (ei && ei->rank == 4 && ei->dims[1] > 0 && e->n_outputs == 1 && e->n_inputs <= 3 &&
                pointwise_conv(g, e, E, ei->dims[1]))
                expand = e;
        }
        if (make_mbconv(expand, dw, project, strides, pads)) changed++;
    }
    return changed;
}

/* ---- Conv -> MaxPool -> FusedConv with a pool (ops/conv.c, conv_direct.c) ---- */

/* A conv over at most 4 channels (the RGB input layer, computed by the direct kernel) whose
 * output only a MaxPool reads becomes a FusedConv with that pool: the conv output is then
 * pooled band by band while in cache instead of going to memory and back. The result is the
 * same bits. */
int em_pass_fuse_conv_maxpool(em_graph *g) {
    if (!em_registry_find("ai.ember", "FusedConv", 1)) return 0;
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        const em_tensor *xi = plain_conv_float_input(g, n);
        if (!xi || em_node_attr(n, "pool")) continue;
        const em_tensor *w = em_node_fixed_input(g, n, 1);
        int64_t cst[2], cpd[4];
        if (xi->dims[1] < 1 || xi->dims[1] > 4 || !w ||
            w->dtype != EMBER_FLOAT || w->rank != 4 || w->dims[0] < 16 ||
            w->dims[1] * w->dims[2] * w->dims[3] > 256 ||
            !plain_conv2d(n, 1, w->dims[2], w->dims[3], cst, cpd) ||
            (n->n_inputs > 2 && n->inputs[2] >= 0 && !em_node_fixed_input(g, n, 2)))
            continue;
        const int c = em_pass_sole_consumer(g, n->outputs[0]);
        if (c < 0) continue;
        em_node *mp = &g->nodes[c];
        if (!em_pass_is_onnx_op(mp, "MaxPool") || mp->inputs[0] != n->outputs[0] ||
            (mp->n_outputs > 1 && mp->outputs[1] >= 0) ||
            strcmp(em_attr_string(mp, "auto_pad", "NOTSET"), "NOTSET") != 0)
            continue;
        int64_t nk = 0, ns = 0, np = 0, nd = 0;
        const int64_t *k = em_attr_ints(mp, "kernel_shape", &nk);
        const int64_t *st = em_attr_ints(mp, "strides", &ns);
        const int64_t *pd = em_attr_ints(mp, "pads", &np);
        const int64_t *dl = em_attr_ints(mp, "dilations", &nd);
        if (nk != 2 || (ns != 0 && ns != 2) || (np != 0 && np != 4) || (nd != 0 && nd != 2))
            continue;
        int64_t strides[2], pads[4];
        bool ok = true;
        for (int a = 0; a < 2; a++) {
            strides[a] = ns ? st[a] : 1;
            ok = ok && k[a] >= 1 && strides[a] >= 1 && (!nd || dl[a] == 1);
        }
        for (int a = 0; a < 4; a++) {
            pads[a] = np ? pd[a] : 0;
            ok = ok && pads[a] >= 0 && pads[a] < k[a % 2];
        }
        if (!ok) continue;
        if (em_attr_int(mp, "ceil_mode", 0)) {
            /* Fused only where rounding up gives the size rounding down gives. */
            const em_tensor *ci = &g->values[n->outputs[0]].info;
            if (ci->rank != 4) continue;
            for (int a = 0; a < 2 && ok; a++) {
                const int64_t span = ci->dims[2 + a] + pads[a] + pads[a + 2] - k[a];
                ok = ci->dims[2 + a] >= 0 && span >= 0 && span % strides[a] == 0;
            }
            if (!ok) continue;
        }
        if (n->domain[0] == '\0' && !retype_to_ember(n, "FusedConv")) continue;
        if (!set_string_attr(n, "pool", "MaxPool") ||
            !set_ints_attr(n, "pool_kernel_shape", k, 2) ||
            !set_ints_attr(n, "pool_strides", strides, 2) ||
            !set_ints_attr(n, "pool_pads", pads, 4))
            return changed; /* out of memory: the node may be half-made; leave the rest */
        n->outputs[0] = mp->outputs[0];
        em_pass_remove_node(mp);
        changed++;
    }
    return changed;
}

/* MatMul(A, B const 2-D) + Add(bias const, broadcast over rows) with A of static rank 2
 * becomes Gemm(A, B, bias): one pass over the output instead of two. */
int em_pass_matmul_add_to_gemm(em_graph *g) {
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *mm = &g->nodes[i];
        if (!em_pass_is_onnx_op(mm, "MatMul") || mm->n_inputs != 2) continue;
        const em_value *a = &g->values[mm->inputs[0]];
        const em_tensor *b = em_node_fixed_input(g, mm, 1);
        if (!b || b->rank != 2 || b->dtype != EMBER_FLOAT || a->info.rank != 2 ||
            a->info.dtype != EMBER_FLOAT)
            continue;
        int c = em_pass_sole_consumer(g, mm->outputs[0]);
        if (c < 0) continue;
        em_node *add = &g->nodes[c];
        if (!em_pass_is_onnx_op(add, "Add") || add->n_inputs != 2) continue;
        int bias_v = add->inputs[0] == mm->outputs[0] ? add->inputs[1] : add->inputs[0];
        const em_tensor *bias = em_fixed_const(g, bias_v);
        int64_t n_cols = b->dims[1];
        if (!bias || bias->dtype != EMBER_FLOAT || em_numel(bias) != n_cols ||
            !(bias->rank == 1 || (bias->rank == 2 && bias->dims[0] == 1)))
            continue;
        int opset = mm->opset;
        if (!retype(mm, "", "Gemm", opset)) {
            retype(mm, "", "MatMul", opset);
            continue;
        }
        int *in = realloc(mm->inputs, sizeof(int) * 3);
        if (!in) continue;
        mm->inputs = in;
        mm->inputs[2] = bias_v;
        mm->n_inputs = mm->n_explicit_inputs = 3;
        mm->outputs[0] = add->outputs[0];
        em_pass_remove_node(add);
        changed++;
    }
    return changed;
}
