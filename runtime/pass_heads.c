/* The heads fusion pass: finds the decision heads PyTorch exports (see pass_heads.h for the
 * patterns and the contract) and replaces them by the fused "ai.ember" operators. */
#include "pass_heads.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/heads.h"
#include "kernel.h"
#include "passes.h"

/* ---------------------------------------------------------------------------------------------
 * Graph queries (on the live nodes: removed ones have op_type NULL)
 * ------------------------------------------------------------------------------------------- */

static bool is_op(const em_node *n, const char *op) {
    return n->op_type && n->domain[0] == '\0' && strcmp(n->op_type, op) == 0;
}

/* Which nodes read each value, built once per pass (CSR), so that the pass stays linear in
 * the graph size. Nodes removed later are skipped at query time; nodes the pass adds only read
 * logits, which are never asked about. */
typedef struct readers {
    int *start; /* per value: first entry in `node`, n_values + 1 entries */
    int *node;  /* one entry per input slot */
    int n_values;
} readers;

static void readers_free(readers *r) {
    free(r->start);
    free(r->node);
}

static bool readers_build(const em_graph *g, readers *r) {
    r->n_values = g->n_values;
    r->start = calloc((size_t)g->n_values + 1, sizeof(int));
    int slots = 0;
    for (int i = 0; i < g->n_nodes; i++) slots += g->nodes[i].n_inputs;
    r->node = malloc(sizeof(int) * ((size_t)slots + 1));
    int *fill = calloc((size_t)g->n_values + 1, sizeof(int));
    if (!r->start || !r->node || !fill) {
        free(fill);
        readers_free(r);
        return false;
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] >= 0) r->start[g->nodes[i].inputs[k] + 1]++;
    for (int v = 0; v < g->n_values; v++) r->start[v + 1] += r->start[v];
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++) {
            int v = g->nodes[i].inputs[k];
            if (v >= 0) r->node[r->start[v] + fill[v]++] = i;
        }
    free(fill);
    return true;
}

/* Input slots of live nodes reading v. */
static int count_readers(const readers *ix, const em_graph *g, int v) {
    if (v < 0 || v >= ix->n_values) return 0;
    int count = 0;
    for (int e = ix->start[v]; e < ix->start[v + 1]; e++)
        count += g->nodes[ix->node[e]].op_type != NULL;
    return count;
}

/* The node reading v when exactly one input slot of one live node does and v is not a graph
 * output (the value is private to that reader); -1 otherwise. */
static int sole_reader(const readers *ix, const em_graph *g, int v) {
    if (v < 0 || v >= ix->n_values || g->values[v].is_output) return -1;
    int found = -1;
    for (int e = ix->start[v]; e < ix->start[v + 1]; e++) {
        if (!g->nodes[ix->node[e]].op_type) continue;
        if (found >= 0) return -1;
        found = ix->node[e];
    }
    return found;
}

/* The live node producing v, or NULL. */
static em_node *producer(em_graph *g, int v) {
    if (v < 0) return NULL;
    int p = g->values[v].producer;
    if (p < 0 || p >= g->n_nodes || !g->nodes[p].op_type) return NULL;
    return &g->nodes[p];
}

static const em_tensor *info(const em_graph *g, int v) {
    return g->values[v].constant ? g->values[v].constant : &g->values[v].info;
}

static bool is_f32(const em_graph *g, int v) {
    return v >= 0 && info(g, v)->dtype == EMBER_FLOAT;
}

static int input(const em_node *n, int k) {
    return k < n->n_inputs ? n->inputs[k] : -1;
}

static int output0(const em_node *n) {
    return n->n_outputs > 0 ? n->outputs[0] : -1;
}

/* True when the node has exactly `count` explicit inputs (the first ones present) and one
 * output. */
static bool simple_node(const em_node *n, int count) {
    if (n->n_inputs != n->n_explicit_inputs || n->n_inputs < count || n->n_outputs < 1)
        return false;
    for (int k = 0; k < count; k++)
        if (n->inputs[k] < 0) return false;
    for (int k = count; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0) return false;
    for (int k = 1; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) return false;
    return output0(n) >= 0;
}

/* The integer list held by constant value v (int32 / int64), into out[cap]; count or -1. */
static int64_t const_ints(const em_graph *g, int v, int64_t *out, int64_t cap) {
    if (v < 0 || !g->values[v].constant) return -1;
    const em_tensor *t = g->values[v].constant;
    if (t->dtype != EMBER_INT64 && t->dtype != EMBER_INT32) return -1;
    int64_t n = em_numel(t);
    if (n < 0 || n > cap) return -1;
    for (int64_t i = 0; i < n; i++) out[i] = em_get_i64(t, i);
    return n;
}

/* An axis list naming exactly the last axis of a rank-`rank` tensor. */
static bool is_last_axis(const int64_t *axes, int64_t n, int rank) {
    return n == 1 && rank >= 1 && (axes[0] == rank - 1 || axes[0] == -1);
}

/* The node's `axes`, from its attribute (older opsets) or its input 1 (since `since`). */
static int64_t node_axes(const em_graph *g, const em_node *n, int since, int64_t *axes,
                         int64_t cap) {
    if (em_onnx_op_version(n->op_type, n->opset) >= since) {
        if (input(n, 1) < 0) return 0;
        return const_ints(g, input(n, 1), axes, cap);
    }
    int64_t count = 0;
    const int64_t *list = em_attr_ints(n, "axes", &count);
    if (!list) return 0;
    if (count > cap) return -1;
    memcpy(axes, list, sizeof(int64_t) * (size_t)count);
    return count;
}

/* The normalized axis of a Softmax-like node over a rank-`rank` input, when it normalizes
 * exactly along that one axis (opset < 13 flattens from `axis`: one axis only if last). */
static int softmax_axis(const em_node *n, int rank) {
    int version = em_onnx_op_version(n->op_type, n->opset);
    int64_t axis = em_attr_int(n, "axis", version >= 13 ? -1 : 1);
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return -1;
    if (version < 13 && axis != rank - 1) return -1;
    return (int)axis;
}

/* ---------------------------------------------------------------------------------------------
 * Building the fused nodes
 * ------------------------------------------------------------------------------------------- */

static ember_status oom(ember_error *err) {
    return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory while fusing heads");
}

static void share_opsets(em_graph *g) {
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i].n_attrs; a++) {
            em_attr *at = &g->nodes[i].attrs[a];
            em_graph *subs[1] = {at->g};
            for (int64_t k = -1; k < (at->graphs ? at->n : 0); k++) {
                em_graph *s = k < 0 ? subs[0] : at->graphs[k];
                if (!s || s->owns_opsets) continue;
                s->opsets = g->opsets;
                s->n_opsets = g->n_opsets;
                share_opsets(s);
            }
        }
}

/* Import "ai.ember" into the root graph if it does not yet. */
static ember_status import_heads_domain(em_graph *g, ember_error *err) {
    if (em_graph_opset(g, EM_HEADS_DOMAIN) > 0) return EMBER_OK;
    em_opset *grown = realloc(g->opsets, sizeof(em_opset) * ((size_t)g->n_opsets + 1));
    if (!grown) return oom(err);
    g->opsets = grown;
    g->opsets[g->n_opsets].domain = strdup(EM_HEADS_DOMAIN);
    if (!g->opsets[g->n_opsets].domain) return oom(err);
    g->opsets[g->n_opsets].version = EM_HEADS_VERSION;
    g->n_opsets++;
    share_opsets(g); /* subgraphs point at the root's table, which may have moved */
    return EMBER_OK;
}

static em_attr *add_attr(em_node *n, const char *name, em_attr_type type) {
    em_attr *grown = realloc(n->attrs, sizeof(em_attr) * ((size_t)n->n_attrs + 1));
    if (!grown) return NULL;
    n->attrs = grown;
    em_attr *a = &grown[n->n_attrs];
    memset(a, 0, sizeof *a);
    a->name = strdup(name);
    if (!a->name) return NULL;
    a->type = type;
    n->n_attrs++;
    return a;
}

static bool attr_int(em_node *n, const char *name, int64_t v) {
    em_attr *a = add_attr(n, name, EM_ATTR_INT);
    if (a) a->i = v;
    return a != NULL;
}

static bool attr_float(em_node *n, const char *name, float v) {
    em_attr *a = add_attr(n, name, EM_ATTR_FLOAT);
    if (a) a->f = v;
    return a != NULL;
}

static bool attr_string(em_node *n, const char *name, const char *v) {
    em_attr *a = add_attr(n, name, EM_ATTR_STRING);
    if (!a) return false;
    a->s = strdup(v);
    a->s_len = a->s ? strlen(v) : 0;
    return a->s != NULL;
}

static bool attr_floats(em_node *n, const char *name, const float *v, int64_t count) {
    em_attr *a = add_attr(n, name, EM_ATTR_FLOATS);
    if (!a) return false;
    a->floats = malloc(sizeof(float) * (size_t)count);
    if (!a->floats) return false;
    memcpy(a->floats, v, sizeof(float) * (size_t)count);
    a->n = count;
    return true;
}

/* Append an ai.ember node reading `x`; returns its index, or -1 when out of memory. The
 * name is the name of the node whose output it takes over, so messages stay recognizable. */
static int add_fused(em_graph *g, const char *op_type, const em_node *replaced, int x,
                     int n_outputs, const int *outputs) {
    if (import_heads_domain(g, NULL) != EMBER_OK) return -1;
    char *name = strdup(replaced->name);
    if (!name) return -1;
    int idx = em_graph_add_node(g, op_type, EM_HEADS_DOMAIN, name, 1, &x, n_outputs, outputs);
    free(name);
    if (idx < 0) return -1;
    em_node *n = &g->nodes[idx];
    n->opset = (int)em_graph_opset(g, EM_HEADS_DOMAIN);
    n->op = em_registry_find(EM_HEADS_DOMAIN, op_type, n->opset);
    return idx;
}

/* ---------------------------------------------------------------------------------------------
 * Threshold constants
 * ------------------------------------------------------------------------------------------- */

typedef struct thresholds {
    int64_t n; /* 1, or one per label along the last axis */
    float *values;
} thresholds;

/* The thresholds of `s > c` where s has static info `si`: one value, or one per label along
 * the last axis; false when c is not a float32 constant or would change the output shape. */
static bool read_thresholds(const em_graph *g, int c, const em_tensor *si, thresholds *t) {
    t->n = 0;
    t->values = NULL;
    if (c < 0 || !g->values[c].constant) return false;
    const em_tensor *ct = g->values[c].constant;
    int64_t count = em_numel(ct);
    if (ct->dtype != EMBER_FLOAT || count < 1 || si->rank < 0) return false;
    if (ct->rank > si->rank) return false; /* broadcasting would add axes */
    for (int d = 0; d + 1 < ct->rank; d++)
        if (ct->dims[d] != 1) return false;
    if (count > 1 &&
        (si->rank < 1 || si->dims[si->rank - 1] != count || ct->dims[ct->rank - 1] != count))
        return false;
    const float *v = ct->data;
    bool same = true;
    for (int64_t i = 1; i < count; i++)
        if (memcmp(&v[i], &v[0], sizeof(float)) != 0) same = false;
    t->n = same ? 1 : count;
    t->values = malloc(sizeof(float) * (size_t)t->n);
    if (!t->values) return false;
    memcpy(t->values, v, sizeof(float) * (size_t)t->n);
    return true;
}

/* Comparison nodes that test `s > c` / `s >= c`: Greater(s, c), Less(c, s), and the
 * inclusive forms. Returns the constant's value id and sets *inclusive; -1 if not one. */
static int compares_with_const(const em_graph *g, const em_node *n, int s, bool *inclusive) {
    if (!simple_node(n, 2)) return -1;
    bool greater = is_op(n, "Greater"), greater_eq = is_op(n, "GreaterOrEqual");
    bool less = is_op(n, "Less"), less_eq = is_op(n, "LessOrEqual");
    int a = n->inputs[0], b = n->inputs[1];
    *inclusive = greater_eq || less_eq;
    if ((greater || greater_eq) && a == s && b != s && g->values[b].constant) return b;
    if ((less || less_eq) && b == s && a != s && g->values[a].constant) return a;
    return -1;
}

/* ReduceSum over the last axis of a rank-`rank` tensor, whose sum of 0 / 1 values in type `to`
 * is exact for `levels` terms (levels < 0: unknown). Sets *keepdims. */
static bool sums_last_axis(const em_graph *g, const em_node *n, int rank, int64_t levels,
                           ember_dtype to, int64_t *keepdims) {
    if (!is_op(n, "ReduceSum") || n->n_inputs != n->n_explicit_inputs || n->n_inputs < 1 ||
        output0(n) < 0)
        return false;
    int64_t axes[EM_MAX_RANK + 1];
    int64_t count = node_axes(g, n, 13, axes, EM_MAX_RANK + 1);
    if (count == 0 && rank == 1 && em_attr_int(n, "noop_with_empty_axes", 0) == 0) {
        axes[0] = 0; /* no axes: all axes, which for rank 1 is the last one */
        count = 1;
    }
    if (!is_last_axis(axes, count, rank)) return false;
    bool exact = to == EMBER_INT64 || to == EMBER_INT32 ||
                 ((to == EMBER_FLOAT || to == EMBER_DOUBLE) && levels >= 0 && levels <= (1 << 24));
    *keepdims = em_attr_int(n, "keepdims", 1);
    return exact && (*keepdims == 0 || *keepdims == 1);
}

/* ---------------------------------------------------------------------------------------------
 * Sigmoid heads: threshold, round, CORAL
 * ------------------------------------------------------------------------------------------- */

/* One decision made from the Sigmoid output s by node `reader`. */
static ember_status fuse_sigmoid_reader(const readers *ix, em_graph *g, int sig, int reader,
                                        int *fused, ember_error *err) {
    em_node *sn = &g->nodes[sig];
    int x = sn->inputs[0], s = sn->outputs[0];
    const em_tensor *xi = info(g, x);
    em_node *rn = &g->nodes[reader];
    int nodes[4] = {reader, -1, -1, -1}; /* the nodes the fused one replaces */
    int result = -1;
    const char *op_type = "SigmoidThreshold";
    thresholds t = {0, NULL};
    bool inclusive = false, round = false, coral = false;
    int64_t to = EMBER_BOOL, keepdims = 0;
    if (is_op(rn, "Round") && simple_node(rn, 1)) {
        round = true;
        to = EMBER_FLOAT;
        result = output0(rn);
    } else {
        int c = compares_with_const(g, rn, s, &inclusive);
        if (c < 0 || !read_thresholds(g, c, xi, &t)) return EMBER_OK;
        result = output0(rn);
        int cast = sole_reader(ix, g, result);
        em_node *cn = cast >= 0 ? &g->nodes[cast] : NULL;
        if (cn && is_op(cn, "Cast") && simple_node(cn, 1) &&
            em_head_decision_type_ok(em_attr_int(cn, "to", 0))) {
            to = em_attr_int(cn, "to", 0);
            nodes[1] = cast;
            result = output0(cn);
            int sum = sole_reader(ix, g, result);
            int64_t levels = xi->rank >= 1 ? xi->dims[xi->rank - 1] : -1;
            if (sum >= 0 && !inclusive && t.n == 1 &&
                sums_last_axis(g, &g->nodes[sum], xi->rank, levels, (ember_dtype)to, &keepdims)) {
                coral = true;
                op_type = "CumulativeOrdinal";
                nodes[2] = sum;
                result = output0(&g->nodes[sum]);
            }
        }
    }
    /* The Sigmoid output rides along as output 1 when others still read it. */
    int outputs[2] = {result, -1};
    int idx = add_fused(g, op_type,
                        &g->nodes[nodes[coral           ? 2
                                        : nodes[1] >= 0 ? 1
                                                        : 0]],
                        x, 1, outputs);
    if (idx < 0) {
        free(t.values);
        return oom(err);
    }
    em_node *f = &g->nodes[idx];
    bool ok = true;
    if (coral) {
        ok = attr_string(f, "mode", "coral") && attr_float(f, "threshold", t.values[0]) &&
             attr_int(f, "to", to) && attr_int(f, "keepdims", keepdims);
    } else if (round) {
        ok = attr_string(f, "mode", "round") && attr_int(f, "to", EMBER_FLOAT);
    } else {
        ok = attr_string(f, "mode", inclusive ? "greater_equal" : "greater") &&
             attr_int(f, "to", to) &&
             (t.n == 1 ? attr_float(f, "threshold", t.values[0])
                       : attr_floats(f, "thresholds", t.values, t.n));
    }
    free(t.values);
    if (!ok) {
        em_pass_remove_node(&g->nodes[idx]);
        return oom(err);
    }
    for (int k = 0; k < 4; k++)
        if (nodes[k] >= 0) em_pass_remove_node(&g->nodes[nodes[k]]);
    (*fused)++;
    return EMBER_OK;
}

/* Give the Sigmoid output to one fused node as its probabilities (SigmoidThreshold) or
 * cumulative probabilities (CORAL), when that node reads the same logits. */
static bool adopt_sigmoid_output(em_graph *g, int first_new, int x, int s) {
    for (int i = first_new; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op_type || n->inputs[0] != x || n->n_outputs != 1) continue;
        bool threshold = strcmp(n->op_type, "SigmoidThreshold") == 0;
        bool coral = strcmp(n->op_type, "CumulativeOrdinal") == 0 &&
                     strcmp(em_attr_string(n, "mode", "coral"), "coral") == 0;
        if (!threshold && !coral) continue;
        int *grown = realloc(n->outputs, sizeof(int) * 2);
        if (!grown) return false;
        n->outputs = grown;
        n->outputs[1] = s;
        n->n_outputs = 2;
        return true;
    }
    return false;
}

static ember_status fuse_sigmoid_heads(const readers *ix, em_graph *g, int *fused,
                                       ember_error *err) {
    int n_before = g->n_nodes;
    for (int i = 0; i < n_before; i++) {
        em_node *sn = &g->nodes[i];
        if (!is_op(sn, "Sigmoid") || !simple_node(sn, 1) || !is_f32(g, sn->inputs[0])) continue;
        int x = sn->inputs[0], s = output0(sn);
        int first_new = g->n_nodes, made = 0;
        /* Each reader of s is looked at once (a fused reader is removed as we go). */
        for (int e = ix->start[s]; e < ix->start[s + 1]; e++) {
            int r = ix->node[e];
            if (e > ix->start[s] && ix->node[e - 1] == r) continue; /* reads s twice */
            if (!g->nodes[r].op_type || r == i) continue;
            EM_TRY(fuse_sigmoid_reader(ix, g, i, r, &made, err));
        }
        if (!made) continue;
        *fused += made;
        sn = &g->nodes[i];
        if (count_readers(ix, g, s) == 0 && !g->values[s].is_output) {
            em_pass_remove_node(sn);
        } else if (adopt_sigmoid_output(g, first_new, x, s)) {
            em_pass_remove_node(sn);
        }
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * CORN: Sigmoid -> columns -> cumulative product -> Concat -> Greater -> Cast -> ReduceSum
 * ------------------------------------------------------------------------------------------- */

typedef struct corn_match {
    int sigmoid;
    int rank;   /* of the logits */
    int *nodes; /* every node the fused one replaces */
    int n_nodes;
} corn_match;

/* Node `n` takes column k of s along the last axis (rank `rank`, `levels` columns); keep: the
 * column keeps the axis ([..., 1]) instead of dropping it ([...]). */
static bool is_column(const em_graph *g, const em_node *n, int s, int rank, int64_t levels,
                      int64_t k, bool keep) {
    int64_t v[4];
    if (is_op(n, "Gather") && simple_node(n, 2) && n->inputs[0] == s) {
        int64_t axis = em_attr_int(n, "axis", 0);
        if (axis != rank - 1 && axis != -1) return false;
        const em_tensor *idx = g->values[n->inputs[1]].constant;
        if (!idx || const_ints(g, n->inputs[1], v, 1) != 1 || idx->rank != (keep ? 1 : 0))
            return false;
        return (v[0] < 0 ? v[0] + levels : v[0]) == k;
    }
    if (!keep || !is_op(n, "Slice") || n->inputs[0] != s || output0(n) < 0) return false;
    int64_t starts[2], ends[2], axes[2] = {0, 0}, steps[2] = {1, 1};
    int64_t n_axes = 1;
    if (em_onnx_op_version("Slice", n->opset) >= 10) {
        if (const_ints(g, input(n, 1), starts, 1) != 1 || const_ints(g, input(n, 2), ends, 1) != 1)
            return false;
        if (input(n, 3) >= 0 && (n_axes = const_ints(g, input(n, 3), axes, 1)) != 1) return false;
        if (input(n, 4) >= 0 && const_ints(g, input(n, 4), steps, 1) != 1) return false;
    } else {
        int64_t c1 = 0, c2 = 0, c3 = 0;
        const int64_t *a = em_attr_ints(n, "starts", &c1), *b = em_attr_ints(n, "ends", &c2);
        const int64_t *ax = em_attr_ints(n, "axes", &c3);
        if (!a || !b || c1 != 1 || c2 != 1 || (ax && c3 != 1)) return false;
        starts[0] = a[0];
        ends[0] = b[0];
        if (ax) axes[0] = ax[0];
    }
    if (steps[0] != 1 || (axes[0] != rank - 1 && axes[0] != -1)) return false;
    int64_t start = starts[0] < 0 ? starts[0] + levels : starts[0];
    int64_t end = ends[0] < 0 ? ends[0] + levels : ends[0];
    if (end > levels) end = levels;
    return start == k && end == k + 1;
}

static bool corn_add(corn_match *m, int node) {
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i] == node) return false; /* a node used twice is not the pattern */
    m->nodes[m->n_nodes++] = node;
    return true;
}

/* Match the cumulative product feeding Concat node `concat`; fills m (nodes sized by caller). */
static bool match_corn_product(const readers *ix, em_graph *g, int concat, corn_match *m) {
    em_node *cc = &g->nodes[concat];
    int levels = cc->n_inputs;
    if (levels < 1 || cc->n_inputs != cc->n_explicit_inputs || !simple_node(cc, levels))
        return false;
    /* Unsqueeze(v_k) for every k (dropped axis), or v_k itself (kept axis). */
    em_node *u0 = producer(g, cc->inputs[0]);
    bool keep = !(u0 && is_op(u0, "Unsqueeze"));
    int *chain = malloc(sizeof(int) * (size_t)levels); /* v_k value ids */
    if (!chain) return false;
    bool ok = true;
    int rank = -1;
    for (int k = 0; k < levels && ok; k++) {
        int u = cc->inputs[k];
        if (keep) {
            chain[k] = u;
            continue;
        }
        em_node *un = producer(g, u);
        int64_t axes[2];
        ok = un && is_op(un, "Unsqueeze") && un->n_inputs >= 1 && sole_reader(ix, g, u) == concat;
        if (!ok) break;
        int64_t count = node_axes(g, un, 13, axes, 2);
        const em_tensor *ui = info(g, u);
        ok = ui->rank >= 1 && is_last_axis(axes, count, ui->rank) &&
             corn_add(m, (int)(un - g->nodes));
        chain[k] = un->inputs[0];
    }
    /* Walk the product from the top: v_k = Mul(v_{k-1}, column k), v_0 = column 0. */
    int s = -1;
    int64_t K1 = levels;
    for (int k = levels - 1; k >= 0 && ok; k--) {
        int v = chain[k];
        int readers = count_readers(ix, g, v);
        ok = !g->values[v].is_output && readers == (k == levels - 1 ? 1 : 2);
        em_node *vn = producer(g, v);
        if (!ok || !vn) {
            ok = false;
            break;
        }
        if (s < 0) {
            /* s comes from the column operand of the top node (or the top node itself). */
            const em_node *col = k == 0 ? vn : NULL;
            if (!col && is_op(vn, "Mul") && simple_node(vn, 2)) {
                em_node *a = producer(g, vn->inputs[0]), *b = producer(g, vn->inputs[1]);
                col = b && (is_op(b, "Gather") || is_op(b, "Slice")) ? b : a;
            }
            if (!col || (!is_op(col, "Gather") && !is_op(col, "Slice"))) {
                ok = false;
                break;
            }
            s = col->inputs[0];
            em_node *sn = producer(g, s);
            const em_tensor *xi = sn && is_op(sn, "Sigmoid") ? info(g, sn->inputs[0]) : NULL;
            ok = xi && simple_node(sn, 1) && is_f32(g, sn->inputs[0]) && xi->rank >= 1 &&
                 xi->dims[xi->rank - 1] == K1;
            if (!ok) break;
            rank = xi->rank;
            m->rank = rank;
            m->sigmoid = (int)(sn - g->nodes);
        }
        if (k == 0) {
            ok = is_column(g, vn, s, rank, K1, 0, keep) && corn_add(m, (int)(vn - g->nodes));
            break;
        }
        ok = is_op(vn, "Mul") && simple_node(vn, 2) && corn_add(m, (int)(vn - g->nodes));
        if (!ok) break;
        int prev = chain[k - 1], a = vn->inputs[0], b = vn->inputs[1];
        int column = a == prev ? b : b == prev ? a : -1;
        em_node *cn = producer(g, column);
        ok = column >= 0 && cn && sole_reader(ix, g, column) == (int)(vn - g->nodes) &&
             is_column(g, cn, s, rank, K1, k, keep) && corn_add(m, (int)(cn - g->nodes));
    }
    free(chain);
    if (!ok || rank < 0) return false;
    /* Concat along the last axis of the rank-`rank` result. */
    int64_t axis = em_attr_int(cc, "axis", 0);
    return (axis == rank - 1 || axis == -1) && corn_add(m, concat);
}

static ember_status fuse_corn(const readers *ix, em_graph *g, int *fused, ember_error *err) {
    int n_before = g->n_nodes;
    for (int i = 0; i < n_before; i++) {
        em_node *cc = &g->nodes[i];
        if (!is_op(cc, "Concat") || !is_f32(g, output0(cc))) continue;
        int levels = cc->n_inputs;
        corn_match m = {-1, -1, malloc(sizeof(int) * ((size_t)levels * 4 + 8)), 0};
        if (!m.nodes) return oom(err);
        bool ok = match_corn_product(ix, g, i, &m);
        int c = output0(&g->nodes[i]);
        int gt = ok ? sole_reader(ix, g, c) : -1;
        bool inclusive = false;
        int64_t to = 0, keepdims = 0;
        thresholds t = {0, NULL};
        int result = -1;
        if (gt >= 0) {
            const em_tensor *ci = info(g, c);
            ok = ci->rank == m.rank;
            int k = compares_with_const(g, &g->nodes[gt], c, &inclusive);
            ok = ok && k >= 0 && !inclusive && read_thresholds(g, k, ci, &t) && t.n == 1 &&
                 corn_add(&m, gt);
            int cast = ok ? sole_reader(ix, g, output0(&g->nodes[gt])) : -1;
            ok = ok && cast >= 0 && is_op(&g->nodes[cast], "Cast") &&
                 simple_node(&g->nodes[cast], 1) && corn_add(&m, cast);
            to = ok ? em_attr_int(&g->nodes[cast], "to", 0) : 0;
            int sum = ok ? sole_reader(ix, g, output0(&g->nodes[cast])) : -1;
            ok = ok && sum >= 0 &&
                 sums_last_axis(g, &g->nodes[sum], ci->rank, levels, (ember_dtype)to, &keepdims) &&
                 corn_add(&m, sum);
            if (ok) result = output0(&g->nodes[sum]);
        }
        if (!ok || gt < 0) {
            free(m.nodes);
            free(t.values);
            continue;
        }
        int x = g->nodes[m.sigmoid].inputs[0];
        int idx =
            add_fused(g, "CumulativeOrdinal", &g->nodes[m.nodes[m.n_nodes - 1]], x, 1, &result);
        em_node *f = idx >= 0 ? &g->nodes[idx] : NULL;
        bool built = f && attr_string(f, "mode", "corn") &&
                     attr_float(f, "threshold", t.values[0]) && attr_int(f, "to", to) &&
                     attr_int(f, "keepdims", keepdims);
        free(t.values);
        if (!built) {
            if (f) em_pass_remove_node(f);
            free(m.nodes);
            return oom(err);
        }
        for (int k = 0; k < m.n_nodes; k++) em_pass_remove_node(&g->nodes[m.nodes[k]]);
        int s = output0(&g->nodes[m.sigmoid]);
        if (count_readers(ix, g, s) == 0 && !g->values[s].is_output)
            em_pass_remove_node(&g->nodes[m.sigmoid]);
        free(m.nodes);
        (*fused)++;
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Softmax -> ArgMax, and ArgMax beside Softmax
 * ------------------------------------------------------------------------------------------- */

/* A kernel the fused SoftmaxArgMax can run on its behalf (into buffers it provides). */
static bool delegable(const em_node *n) {
    return n->op && n->op->run && !(n->op->flags & (EM_OP_ALIAS_INPUT0 | EM_OP_DYNAMIC_OUTPUTS));
}

/* ArgMax over the last axis of a float32 input of known rank; returns the rank or -1. */
static int argmax_last_axis(const em_graph *g, const em_node *a) {
    if (!is_op(a, "ArgMax") || !simple_node(a, 1) || !is_f32(g, a->inputs[0]) || !delegable(a))
        return -1;
    int rank = info(g, a->inputs[0])->rank;
    int64_t axis = em_attr_int(a, "axis", 0);
    if (rank < 1 || (axis != rank - 1 && axis != -1)) return -1;
    return rank;
}

static ember_status add_softmax_argmax(em_graph *g, const em_node *argmax, const em_node *norm,
                                       const char *match, int n_outputs, const int *outputs,
                                       int *fused, ember_error *err) {
    int argmax_idx = (int)(argmax - g->nodes), norm_idx = (int)(norm - g->nodes);
    int idx = add_fused(g, "SoftmaxArgMax", argmax, norm->inputs[0], n_outputs, outputs);
    if (idx < 0) return oom(err);
    em_node *f = &g->nodes[idx];
    const em_node *a = &g->nodes[argmax_idx], *sm = &g->nodes[norm_idx];
    bool ok = attr_int(f, "axis", -1) && attr_int(f, "keepdims", em_attr_int(a, "keepdims", 1)) &&
              attr_int(f, "select_last_index", em_attr_int(a, "select_last_index", 0)) &&
              attr_string(f, "match", match) && attr_string(f, "match_op", sm->op_type) &&
              attr_int(f, "match_opset", sm->opset);
    if (!ok) {
        em_pass_remove_node(f);
        return oom(err);
    }
    em_pass_remove_node(&g->nodes[argmax_idx]);
    em_pass_remove_node(&g->nodes[norm_idx]);
    (*fused)++;
    return EMBER_OK;
}

static ember_status fuse_multiclass(const readers *ix, em_graph *g, int *fused, ember_error *err) {
    int n_before = g->n_nodes;
    for (int i = 0; i < n_before; i++) {
        em_node *a = &g->nodes[i];
        int rank = argmax_last_axis(g, a);
        if (rank < 0) continue;
        /* Softmax -> ArgMax, with the probabilities read by nobody else. */
        em_node *sm = producer(g, a->inputs[0]);
        if (sm && (is_op(sm, "Softmax") || is_op(sm, "LogSoftmax")) && simple_node(sm, 1) &&
            delegable(sm) && is_f32(g, sm->inputs[0]) && info(g, sm->inputs[0])->rank == rank &&
            softmax_axis(sm, rank) == rank - 1 && sole_reader(ix, g, a->inputs[0]) == i) {
            int out = output0(a);
            EM_TRY(add_softmax_argmax(g, a, sm, "argmax_of_softmax", 1, &out, fused, err));
            continue;
        }
        /* ArgMax(x) beside Softmax(x): one node gives both. */
        int x = a->inputs[0];
        for (int e = ix->start[x]; e < ix->start[x + 1]; e++) {
            int j = ix->node[e];
            em_node *b = &g->nodes[j];
            if (!is_op(b, "Softmax") || !simple_node(b, 1) || !delegable(b) || b->inputs[0] != x ||
                softmax_axis(b, rank) != rank - 1)
                continue;
            int outs[3] = {output0(&g->nodes[i]), -1, output0(b)};
            EM_TRY(
                add_softmax_argmax(g, &g->nodes[i], &g->nodes[j], "argmax", 3, outs, fused, err));
            break;
        }
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * The pass
 * ------------------------------------------------------------------------------------------- */

ember_status em_pass_fuse_heads(em_graph *g, ember_error *err) {
    if (!g->owns_opsets) return EMBER_OK; /* subgraphs are left as they are */
    int fused = 0;
    readers ix;
    if (!readers_build(g, &ix)) return oom(err);
    ember_status st = fuse_corn(&ix, g, &fused, err);
    if (st == EMBER_OK) st = fuse_sigmoid_heads(&ix, g, &fused, err);
    if (st == EMBER_OK) st = fuse_multiclass(&ix, g, &fused, err);
    readers_free(&ix);
    em_graph_compact(g);
    if (fused == 0 && st == EMBER_OK) return EMBER_OK;
    ember_status fin = em_graph_finalize(g, "heads fusion", err);
    return st != EMBER_OK ? st : fin;
}

/* ---------------------------------------------------------------------------------------------
 * Heads on request (--head)
 * ------------------------------------------------------------------------------------------- */

void em_head_spec_clear(em_head_spec *spec) {
    free(spec->thresholds);
    memset(spec, 0, sizeof *spec);
}

/* Parse "T1,T2,..." into spec->thresholds. */
static ember_status parse_thresholds(const char *text, const char *head, em_head_spec *spec,
                                     ember_error *err) {
    int count = 1;
    for (const char *p = text; *p; p++) count += *p == ',';
    if (count > EM_HEAD_MAX_THRESHOLDS)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "head %s: more than %d thresholds", head,
                       EM_HEAD_MAX_THRESHOLDS);
    spec->thresholds = malloc(sizeof(float) * (size_t)count);
    if (!spec->thresholds) return oom(err);
    const char *p = text;
    for (int i = 0; i < count; i++) {
        char *end = NULL;
        float t = strtof(p, &end);
        if (end == p || (*end != ',' && *end != '\0') || !(t >= 0.0f && t <= 1.0f))
            return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                           "head %s: '%s' is not a list of thresholds between 0 and 1", head,
                           text);
        spec->thresholds[i] = t;
        p = end + (*end == ',');
    }
    spec->n_thresholds = count;
    return EMBER_OK;
}

ember_status em_head_parse(const char *text, em_head_spec *spec, ember_error *err) {
    memset(spec, 0, sizeof *spec);
    const char *colon = strchr(text, ':');
    size_t len = colon ? (size_t)(colon - text) : strlen(text);
    const char *rest = colon ? colon + 1 : NULL;
    ember_status st = EMBER_OK;
    if (len == 6 && strncmp(text, "binary", 6) == 0) {
        spec->kind = EM_HEAD_BINARY;
        if (rest) st = parse_thresholds(rest, "binary", spec, err);
        if (st == EMBER_OK && spec->n_thresholds > 1)
            st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                         "head binary takes one threshold; use multilabel for several");
    } else if (len == 10 && strncmp(text, "multilabel", 10) == 0) {
        spec->kind = EM_HEAD_MULTILABEL;
        if (rest) st = parse_thresholds(rest, "multilabel", spec, err);
    } else if (len == 10 && strncmp(text, "multiclass", 10) == 0) {
        spec->kind = EM_HEAD_MULTICLASS;
        if (rest)
            st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "head multiclass takes no options");
    } else if (len == 7 && strncmp(text, "ordinal", 7) == 0) {
        spec->kind = EM_HEAD_ORDINAL;
        if (rest) {
            const char *second = strchr(rest, ':');
            size_t mode_len = second ? (size_t)(second - rest) : strlen(rest);
            if (mode_len == 4 && strncmp(rest, "corn", 4) == 0)
                spec->corn = true;
            else if (!(mode_len == 5 && strncmp(rest, "coral", 5) == 0))
                st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                             "head ordinal: the mode is coral or corn, not '%.*s'", (int)mode_len,
                             rest);
            if (st == EMBER_OK && second) st = parse_thresholds(second + 1, "ordinal", spec, err);
            if (st == EMBER_OK && spec->n_thresholds > 1)
                st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "head ordinal takes one threshold");
        }
    } else {
        st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                     "head '%s': expected binary[:T], multilabel[:T1,T2,...], multiclass or "
                     "ordinal[:coral|corn[:T]]",
                     text);
    }
    if (st != EMBER_OK) em_head_spec_clear(spec);
    return st;
}

/* A new graph output named `exact` (which must be free) or "<base>_<suffix>" (made unique),
 * with the given static info. */
static int add_output_value(em_graph *g, int base, const char *exact, const char *suffix,
                            ember_dtype dtype, const int64_t *dims, int rank, ember_error *err) {
    const char *base_name = g->values[base].name;
    if (exact && em_graph_find_value(g, exact) >= 0)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head on output '%s': the graph already has a value named '%s'", base_name,
                       exact),
               -1;
    size_t size = (exact ? strlen(exact) : strlen(base_name) + strlen(suffix)) + 24;
    char *name = malloc(size);
    if (!name) return oom(err), -1;
    if (exact) {
        snprintf(name, size, "%s", exact);
    } else {
        snprintf(name, size, "%s_%s", base_name, suffix);
        for (int k = 2; em_graph_find_value(g, name) >= 0; k++)
            snprintf(name, size, "%s_%s_%d", base_name, suffix, k);
    }
    int *outputs = realloc(g->outputs, sizeof(int) * ((size_t)g->n_outputs + 1));
    int v = outputs ? em_graph_add_value(g, name) : -1;
    free(name);
    if (outputs) g->outputs = outputs;
    if (v < 0) return oom(err), -1;
    em_value *val = &g->values[v];
    em_tensor_set_shape(&val->info, dtype, dims, rank);
    val->is_output = true;
    g->outputs[g->n_outputs++] = v;
    return v;
}

ember_status em_head_attach(em_graph *g, int output_index, const em_head_spec *spec,
                            ember_error *err) {
    if (output_index < 0 || output_index >= g->n_outputs)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "head: the model has no output #%d",
                       output_index);
    int x = g->outputs[output_index];
    em_tensor xi = *info(g, x);
    const char *name = g->values[x].name;
    if (xi.dtype != EMBER_FLOAT)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head on output '%s': it is %s, a head needs float32 logits", name,
                       em_dtype_name(xi.dtype));
    if (spec->kind != EM_HEAD_BINARY && xi.rank == 0)
        return em_fail(err, EMBER_ERR_SHAPE,
                       "head on output '%s': it is a scalar, the head needs an axis of logits",
                       name);
    int64_t last = xi.rank >= 1 ? xi.dims[xi.rank - 1] : 1;
    if (spec->kind == EM_HEAD_MULTILABEL && spec->n_thresholds > 1 && last >= 0 &&
        last != spec->n_thresholds)
        return em_fail(err, EMBER_ERR_SHAPE,
                       "head multilabel on output '%s' has %d thresholds for %lld labels per row",
                       name, spec->n_thresholds, (long long)last);
    static const char *const kind_names[] = {"binary", "multilabel", "multiclass", "ordinal"};
    if (!em_head_logits_fit(kind_names[spec->kind], name, xi.rank, xi.rank >= 1 ? last : 1, err))
        return EMBER_ERR_SHAPE;
    ember_dtype to = spec->decision_dtype;
    if (spec->kind == EM_HEAD_MULTICLASS && to != EMBER_UNDEFINED && to != EMBER_INT64)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "head multiclass on output '%s': the class index is int64, not %s", name,
                       em_dtype_name(to));
    if (to == EMBER_UNDEFINED)
        to = spec->kind == EM_HEAD_BINARY       ? EMBER_FLOAT
             : spec->kind == EM_HEAD_MULTILABEL ? EMBER_BOOL
                                                : EMBER_INT64;
    int64_t reduced[EM_MAX_RANK], grown[EM_MAX_RANK];
    int rank = xi.rank < 0 ? 0 : xi.rank;
    memcpy(reduced, xi.dims, sizeof reduced);
    memcpy(grown, xi.dims, sizeof grown);
    if (rank >= 1) grown[rank - 1] = last >= 0 ? last + 1 : -1;
    int outs[3] = {-1, -1, -1}, n_outs = 1;
    const char *op_type = "SigmoidThreshold";
    bool p = spec->probabilities;
    switch (spec->kind) {
    case EM_HEAD_BINARY:
    case EM_HEAD_MULTILABEL: {
        outs[0] = add_output_value(g, x, spec->decision_name, "decision", to, xi.dims, xi.rank,
                                   err);
        if (p) n_outs = 2; /* the sigmoids */
        if (p && outs[0] >= 0)
            outs[1] = add_output_value(g, x, spec->probabilities_name, "probability", EMBER_FLOAT,
                                       xi.dims, xi.rank, err);
        break;
    }
    case EM_HEAD_MULTICLASS:
        op_type = "SoftmaxArgMax";
        outs[0] = add_output_value(g, x, spec->decision_name, "class", EMBER_INT64, reduced,
                                   rank - 1, err);
        if (p) n_outs = 3; /* the softmax over the classes */
        if (p && outs[0] >= 0)
            outs[2] = add_output_value(g, x, spec->probabilities_name, "probabilities",
                                       EMBER_FLOAT, xi.dims, xi.rank, err);
        break;
    case EM_HEAD_ORDINAL:
        op_type = "CumulativeOrdinal";
        outs[0] = add_output_value(g, x, spec->decision_name, "rank", to, reduced, rank - 1, err);
        if (p) n_outs = 3; /* P(y = k) for the K classes */
        if (p && outs[0] >= 0)
            outs[2] = add_output_value(g, x, spec->probabilities_name, "class_probabilities",
                                       EMBER_FLOAT, grown, rank, err);
        break;
    }
    if (outs[0] < 0 || (n_outs > 1 && outs[n_outs - 1] < 0))
        return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_node logits = {.name = (char *)name};
    int idx = add_fused(g, op_type, &logits, x, n_outs, outs);
    if (idx < 0) return oom(err);
    em_node *f = &g->nodes[idx];
    float t = spec->n_thresholds >= 1 ? spec->thresholds[0] : 0.5f;
    bool ok = true;
    switch (spec->kind) {
    case EM_HEAD_BINARY:
        /* At 0.5 with a float decision exactly torch.round(torch.sigmoid(x)) (NaN stays NaN). */
        ok = t == 0.5f && to == EMBER_FLOAT
                 ? attr_string(f, "mode", "round")
                 : attr_string(f, "mode", "greater") && attr_float(f, "threshold", t);
        ok = ok && attr_int(f, "to", to) && attr_string(f, "head", "binary");
        break;
    case EM_HEAD_MULTILABEL:
        ok = attr_int(f, "to", to) && attr_string(f, "head", "multilabel") &&
             (spec->n_thresholds > 1
                  ? attr_floats(f, "thresholds", spec->thresholds, spec->n_thresholds)
                  : attr_float(f, "threshold", t));
        break;
    case EM_HEAD_MULTICLASS:
        /* Match the ONNX ArgMax and Softmax-13 kernels bit for bit (NaN / inf rows go to
         * them), so the class and probabilities equal the unfused graph's. */
        ok = attr_int(f, "axis", -1) && attr_int(f, "keepdims", 0) &&
             attr_string(f, "match", "argmax") && attr_int(f, "match_opset", 13) &&
             attr_string(f, "head", "multiclass");
        break;
    case EM_HEAD_ORDINAL:
        ok = attr_string(f, "mode", spec->corn ? "corn" : "coral") &&
             attr_float(f, "threshold", t) && attr_int(f, "to", to) &&
             attr_string(f, "head", "ordinal");
        break;
    }
    if (!ok) return oom(err);
    return em_graph_finalize(g, "head", err);
}
