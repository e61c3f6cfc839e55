/* Control flow: If, Loop, Scan.
 *
 * Bodies run through em_exec_subgraph. A body may read values of enclosing graphs: the loader
 * lists them in g->captures, and each captured value's `outer` is the index of the owning
 * node's input (an implicit input after the explicit ones) that feeds it.
 *
 * Output shapes depend on what the bodies compute, so these kernels are EM_OP_DYNAMIC_OUTPUTS:
 * infer gives dtypes only (rank -1) and run allocates the outputs. If and Loop also carry
 * sequence and optional values (EM_OP_ANY_KIND); Scan takes tensors only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

static const char *desc(const em_node *node, char *buf, size_t size) {
    return em_node_desc(node, buf, size);
}

/* The capture tensors of body g, in g->captures order, from the node's inputs. */
static ember_status body_captures(const em_node *node, const em_graph *g, em_tensor *const *in,
                                  em_tensor ***caps, ember_error *err) {
    *caps = NULL;
    if (g->n_captures == 0) return EMBER_OK;
    *caps = calloc((size_t)g->n_captures, sizeof **caps);
    if (!*caps) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < g->n_captures; i++) {
        int slot = g->values[g->captures[i]].outer;
        if (slot < node->n_explicit_inputs || slot >= node->n_inputs) {
            char buf[160];
            free(*caps);
            *caps = NULL;
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "%s: body '%s' reads '%s' from an outer scope through no input",
                           desc(node, buf, sizeof buf), g->name ? g->name : "",
                           g->values[g->captures[i]].name);
        }
        (*caps)[i] = in[slot];
    }
    return EMBER_OK;
}

static const em_graph *body_attr(const em_node *node, const char *name, ember_error *err) {
    const em_graph *g = em_attr_graph(node, name);
    if (!g) {
        char buf[160];
        em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: graph attribute '%s' is required",
                desc(node, buf, sizeof buf), name);
    }
    return g;
}

static ember_dtype body_output_type(const em_graph *g, int k) {
    return g->values[g->outputs[k]].info.dtype;
}

/* A body output declared as a sequence or optional makes the node output one (rank 0, no
 * allocation); a tensor output keeps rank -1 (shape known when the body has run). */
static void set_output_type(em_tensor *out, const em_graph *g, int k, ember_dtype dt,
                            const em_tensor *fallback) {
    const em_tensor *info = &g->values[g->outputs[k]].info;
    if (info->kind == EMBER_KIND_TENSOR && fallback && fallback->kind != EMBER_KIND_TENSOR)
        info = fallback;
    if (info->kind != EMBER_KIND_TENSOR) em_value_set_type(out, info->kind, info->elem_kind, dt);
    else em_tensor_set_shape(out, dt, NULL, -1);
}

/* Hand tensor t (owned: a heap tensor this kernel may consume; else borrowed) to an output
 * slot. Slots arrive unallocated (EM_OP_DYNAMIC_OUTPUTS), but an allocated slot is accepted
 * when the shape matches. */
static ember_status emit(const em_node *node, int k, em_tensor *slot, em_tensor *t, bool owned,
                         ember_error *err) {
    char buf[160];
    if (slot->data) {
        bool fits = slot->dtype == t->dtype && em_same_shape(slot, t);
        if (fits) memcpy(slot->data, t->data, em_nbytes(t));
        if (owned) em_tensor_free(t);
        if (!fits)
            return em_fail(err, EMBER_ERR_RUNTIME, "%s: output %d changed shape at run time",
                           desc(node, buf, sizeof buf), k);
        return EMBER_OK;
    }
    if (!owned) {
        t = em_tensor_clone(t, err);
        if (!t) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    }
    if (!t->owns_data) {
        /* A view: give the slot its own copy. */
        em_tensor *c = em_tensor_clone(t, err);
        em_tensor_free(t);
        if (!c) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        t = c;
    }
    *slot = *t;
    t->data = NULL;
    t->owns_data = false;
    em_tensor_free(t);
    return EMBER_OK;
}

static void free_all(em_tensor **ts, int n) {
    for (int i = 0; ts && i < n; i++) {
        em_tensor_free(ts[i]);
        ts[i] = NULL;
    }
}

/* A single-element bool (or numeric) tensor as a truth value. */
static ember_status truth(const em_node *node, const em_tensor *t, const char *what, bool *v,
                          ember_error *err) {
    if (!t || em_numel(t) != 1 || !t->data) {
        char buf[160];
        return em_fail(err, EMBER_ERR_RUNTIME, "%s: %s must hold exactly one value",
                       desc(node, buf, sizeof buf), what);
    }
    *v = t->dtype == EMBER_BOOL ? *(const bool *)t->data : em_get_f64(t, 0) != 0.0;
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * If
 * ------------------------------------------------------------------------------------------- */

static ember_status if_infer(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_graph *then_g = body_attr(node, "then_branch", err);
    if (!then_g) return err ? err->code : EMBER_ERR_INVALID_MODEL;
    const em_graph *else_g = body_attr(node, "else_branch", err);
    if (!else_g) return err ? err->code : EMBER_ERR_INVALID_MODEL;
    if (node->n_explicit_inputs < 1)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: input cond is required",
                       desc(node, buf, sizeof buf));
    if (then_g->n_outputs != node->n_outputs || else_g->n_outputs != node->n_outputs)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: branches have %d and %d outputs, the node %d",
                       desc(node, buf, sizeof buf), then_g->n_outputs, else_g->n_outputs,
                       node->n_outputs);
    if (in[0] && in[0]->rank >= 0 && em_numel(in[0]) != 1)
        return em_fail(err, EMBER_ERR_SHAPE, "%s: cond must hold one value",
                       desc(node, buf, sizeof buf));
    for (int k = 0; k < node->n_outputs; k++) {
        ember_dtype dt = body_output_type(then_g, k);
        if (dt == EMBER_UNDEFINED) dt = body_output_type(else_g, k);
        set_output_type(&out[k], then_g, k, dt, &else_g->values[else_g->outputs[k]].info);
    }
    return EMBER_OK;
}

static ember_status if_run(const em_node *node, void *state, em_tensor *const *in,
                           em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    bool cond = false;
    EM_TRY(truth(node, in[0], "cond", &cond, err));
    const em_graph *g = body_attr(node, cond ? "then_branch" : "else_branch", err);
    if (!g) return err ? err->code : EMBER_ERR_INVALID_MODEL;
    em_tensor **caps;
    EM_TRY(body_captures(node, g, in, &caps, err));
    em_tensor **res = calloc((size_t)g->n_outputs + 1, sizeof *res);
    ember_status st = res ? EMBER_OK : em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    if (st == EMBER_OK) st = em_exec_subgraph(ex, g, NULL, 0, caps, res, err);
    for (int k = 0; k < node->n_outputs && st == EMBER_OK; k++) {
        if (node->outputs[k] < 0) continue;
        st = emit(node, k, &out[k], res[k], true, err);
        res[k] = NULL;
    }
    free_all(res, g->n_outputs);
    free(res);
    free(caps);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Stacking per-iteration tensors (Loop and Scan outputs).
 * ------------------------------------------------------------------------------------------- */

typedef struct stack_list {
    em_tensor **items;
    int64_t n, cap;
} stack_list;

static ember_status stack_push(stack_list *s, em_tensor *t, ember_error *err) {
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 16;
        em_tensor **items = realloc(s->items, sizeof *items * (size_t)cap);
        if (!items) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = t;
    return EMBER_OK;
}

static void stack_free(stack_list *s) {
    for (int64_t i = 0; i < s->n; i++) em_tensor_free(s->items[i]);
    free(s->items);
    s->items = NULL;
    s->n = s->cap = 0;
}

/* Per-iteration outputs of Loop and Scan pile up outside the run's arena until they are
 * stacked: count them against the session's memory limit (half of it, since the stacked copy
 * needs as much again), or a Loop with a large M grows until the process is killed. */
static ember_status charge_iteration_output(const em_node *node, em_exec *ex, uint64_t *held,
                                            const em_tensor *t, int64_t iteration,
                                            ember_error *err) {
    *held += t ? em_nbytes(t) : 0;
    uint64_t limit = em_exec_memory_limit(ex);
    if (*held <= limit / 2) return EMBER_OK;
    char buf[160];
    return em_fail(err, EMBER_ERR_LIMIT,
                   "%s: outputs of %lld iterations need more than the session's memory limit of "
                   "%llu bytes",
                   desc(node, buf, sizeof buf), (long long)iteration + 1, (unsigned long long)limit);
}

/* Check that every item has the first item's dtype and shape. */
static ember_status stack_check(const em_node *node, const stack_list *s, int k,
                                ember_error *err) {
    for (int64_t i = 1; i < s->n; i++)
        if (s->items[i]->dtype != s->items[0]->dtype || !em_same_shape(s->items[i], s->items[0])) {
            char buf[160], a[96], b[96];
            return em_fail(err, EMBER_ERR_RUNTIME,
                           "%s: scan output %d changes from %s to %s at iteration %lld",
                           desc(node, buf, sizeof buf), k, em_shape_str(s->items[0], a, sizeof a),
                           em_shape_str(s->items[i], b, sizeof b), (long long)i);
        }
    return EMBER_OK;
}

/* Stack the items along `axis` of the result (reversed order if `reverse`). With no items,
 * the element shape comes from `empty_elem` (rank -1: a 1-D empty tensor). */
static ember_status stack_build(const em_node *node, const stack_list *s, int axis, bool reverse,
                                const em_tensor *empty_elem, ember_dtype dtype,
                                em_tensor **result, ember_error *err) {
    char buf[160];
    const em_tensor *elem = s->n > 0 ? s->items[0] : empty_elem;
    int64_t dims[EM_MAX_RANK];
    int erank = elem && elem->rank >= 0 ? elem->rank : 0;
    if (s->n == 0 && (!elem || elem->rank < 0)) erank = 0;
    if (erank + 1 > EM_MAX_RANK)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: stacked output rank exceeds %d",
                       desc(node, buf, sizeof buf), EM_MAX_RANK);
    if (axis < 0 || axis > erank)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: scan output axis %d out of range",
                       desc(node, buf, sizeof buf), axis);
    for (int i = 0, j = 0; i <= erank; i++) {
        if (i == axis) dims[i] = s->n;
        else dims[i] = elem && elem->rank >= 0 ? (elem->dims[j] < 0 ? 0 : elem->dims[j]) : 0;
        if (i != axis) j++;
    }
    *result = em_tensor_new(s->n > 0 ? elem->dtype : dtype, dims, erank + 1, err);
    if (!*result) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    if (s->n == 0) return EMBER_OK;
    size_t es = em_dtype_size(elem->dtype);
    int64_t outer = em_shape_numel(elem->dims, axis);
    int64_t inner = em_shape_numel(elem->dims + axis, erank - axis);
    char *dst = (*result)->data;
    for (int64_t t = 0; t < s->n; t++) {
        int64_t pos = reverse ? s->n - 1 - t : t;
        const char *src = s->items[t]->data;
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst + (size_t)((o * s->n + pos) * inner) * es, src + (size_t)(o * inner) * es,
                   (size_t)inner * es);
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Loop
 * ------------------------------------------------------------------------------------------- */

static ember_status loop_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    char buf[160];
    const em_graph *g = body_attr(node, "body", err);
    if (!g) return err ? err->code : EMBER_ERR_INVALID_MODEL;
    int n_carried = node->n_explicit_inputs > 2 ? node->n_explicit_inputs - 2 : 0;
    if (g->n_inputs != n_carried + 2 || g->n_outputs < n_carried + 1 ||
        node->n_outputs != g->n_outputs - 1)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: body has %d inputs and %d outputs for %d loop-carried values and %d "
                       "node outputs", desc(node, buf, sizeof buf), g->n_inputs, g->n_outputs,
                       n_carried, node->n_outputs);
    if (node->n_explicit_inputs > 0 && in[0] && in[0]->dtype != EMBER_INT64)
        return em_unsupported_type(node, 0, in[0]->dtype, err);
    for (int k = 0; k < node->n_outputs; k++) {
        ember_dtype dt = body_output_type(g, k + 1);
        if (dt == EMBER_UNDEFINED && k < n_carried && in[2 + k]) dt = in[2 + k]->dtype;
        set_output_type(&out[k], g, k + 1, dt, k < n_carried ? in[2 + k] : NULL);
    }
    return EMBER_OK;
}

static ember_status loop_run(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    char buf[160];
    const em_graph *g = body_attr(node, "body", err);
    if (!g) return err ? err->code : EMBER_ERR_INVALID_MODEL;
    int n_carried = node->n_explicit_inputs > 2 ? node->n_explicit_inputs - 2 : 0;
    /* M and cond may be omitted at the end of the input list. */
    const em_tensor *m_in = node->n_explicit_inputs > 0 ? in[0] : NULL;
    const em_tensor *cond_in = node->n_explicit_inputs > 1 ? in[1] : NULL;
    int n_scan = g->n_outputs - 1 - n_carried;
    int64_t max_trip = INT64_MAX;
    if (m_in) {
        if (em_numel(m_in) != 1)
            return em_fail(err, EMBER_ERR_RUNTIME, "%s: M must hold one value",
                           desc(node, buf, sizeof buf));
        max_trip = em_get_i64(m_in, 0);
    }
    bool cond = true;
    if (cond_in) EM_TRY(truth(node, cond_in, "cond", &cond, err));

    em_tensor **caps = NULL;
    EM_TRY(body_captures(node, g, in, &caps, err));
    em_tensor **carried = calloc((size_t)n_carried + 1, sizeof *carried);
    bool *owned = calloc((size_t)n_carried + 1, sizeof *owned);
    em_tensor **body_in = calloc((size_t)n_carried + 2, sizeof *body_in);
    em_tensor **res = calloc((size_t)g->n_outputs + 1, sizeof *res);
    stack_list *scans = calloc((size_t)n_scan + 1, sizeof *scans);
    ember_status st = EMBER_OK;
    if (!carried || !owned || !body_in || !res || !scans)
        st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (int k = 0; st == EMBER_OK && k < n_carried; k++) {
        carried[k] = in[2 + k];
        if (!carried[k])
            st = em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: loop-carried input %d is missing",
                         desc(node, buf, sizeof buf), k);
    }
    int64_t iter_value = 0;
    bool cond_value = true;
    em_tensor iter_t = {.dtype = EMBER_INT64, .rank = 0, .data = &iter_value,
                        .capacity = sizeof iter_value};
    em_tensor cond_t = {.dtype = EMBER_BOOL, .rank = 0, .data = &cond_value,
                        .capacity = sizeof cond_value};
    uint64_t held = 0;
    for (int64_t i = 0; st == EMBER_OK && i < max_trip && cond; i++) {
        iter_value = i;
        cond_value = cond;
        body_in[0] = &iter_t;
        body_in[1] = &cond_t;
        for (int k = 0; k < n_carried; k++) body_in[2 + k] = carried[k];
        st = em_exec_subgraph(ex, g, body_in, n_carried + 2, caps, res, err);
        if (st != EMBER_OK) break;
        st = truth(node, res[0], "the body's cond output", &cond, err);
        em_tensor_free(res[0]);
        res[0] = NULL;
        for (int k = 0; k < n_carried; k++) {
            if (owned[k]) em_tensor_free(carried[k]);
            carried[k] = res[1 + k];
            owned[k] = true;
            res[1 + k] = NULL;
        }
        for (int k = 0; k < n_scan; k++) {
            em_tensor *item = res[1 + n_carried + k];
            if (st == EMBER_OK) st = charge_iteration_output(node, ex, &held, item, i, err);
            if (st == EMBER_OK) st = stack_push(&scans[k], item, err);
            else em_tensor_free(item);
            res[1 + n_carried + k] = NULL;
        }
    }
    for (int k = 0; st == EMBER_OK && k < n_carried; k++) {
        if (node->outputs[k] < 0) continue;
        st = emit(node, k, &out[k], carried[k], owned[k], err);
        owned[k] = false;
    }
    for (int k = 0; st == EMBER_OK && k < n_scan; k++) {
        int slot = n_carried + k;
        if (node->outputs[slot] < 0) continue;
        st = stack_check(node, &scans[k], k, err);
        em_tensor *stacked = NULL;
        if (st == EMBER_OK)
            st = stack_build(node, &scans[k], 0, false, &g->values[g->outputs[1 + slot]].info,
                             body_output_type(g, 1 + slot), &stacked, err);
        if (st == EMBER_OK) st = emit(node, slot, &out[slot], stacked, true, err);
    }
    for (int k = 0; carried && owned && k < n_carried; k++)
        if (owned[k]) em_tensor_free(carried[k]);
    for (int k = 0; scans && k < n_scan; k++) stack_free(&scans[k]);
    if (res) free_all(res, g->n_outputs);
    free(res);
    free(scans);
    free(body_in);
    free(owned);
    free(carried);
    free(caps);
    return st;
}

/* ---------------------------------------------------------------------------------------------
 * Scan (versions 8 and 9+)
 * ------------------------------------------------------------------------------------------- */

typedef struct scan_attrs {
    int n_state, n_scan_in, n_scan_out;
    int in_axis[EM_MAX_RANK * 4];
    bool in_reverse[EM_MAX_RANK * 4];
    int out_axis[EM_MAX_RANK * 4];
    bool out_reverse[EM_MAX_RANK * 4];
} scan_attrs;

#define SCAN_MAX_IO (EM_MAX_RANK * 4)

static bool scan_v8(const em_node *node) { return em_onnx_op_version("Scan", node->opset) < 9; }

/* in_ranks: ranks of the scan inputs (or -1 if unknown). */
static ember_status scan_parse(const em_node *node, const em_graph *g, em_tensor *const *in,
                               scan_attrs *a, ember_error *err) {
    char buf[160];
    int first = scan_v8(node) ? 1 : 0; /* version 8: input 0 is sequence_lens */
    int64_t m = em_attr_int(node, "num_scan_inputs", -1);
    int n_in = node->n_explicit_inputs - first;
    if (m < 1 || m > n_in || m > SCAN_MAX_IO)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: num_scan_inputs %lld is invalid",
                       desc(node, buf, sizeof buf), (long long)m);
    memset(a, 0, sizeof *a);
    a->n_scan_in = (int)m;
    a->n_state = n_in - a->n_scan_in;
    a->n_scan_out = node->n_outputs - a->n_state;
    if (a->n_scan_out < 0 || a->n_scan_out > SCAN_MAX_IO || g->n_inputs != n_in ||
        g->n_outputs != node->n_outputs)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "%s: body has %d inputs and %d outputs; the node %d and %d",
                       desc(node, buf, sizeof buf), g->n_inputs, g->n_outputs, n_in,
                       node->n_outputs);
    int64_t n;
    const int64_t *v;
    if (scan_v8(node)) {
        v = em_attr_ints(node, "directions", &n);
        if (v && n != a->n_scan_in)
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: directions needs %d values",
                           desc(node, buf, sizeof buf), a->n_scan_in);
        for (int i = 0; i < a->n_scan_in; i++) {
            a->in_axis[i] = 1;
            a->in_reverse[i] = v && v[i] != 0;
        }
        return EMBER_OK;
    }
    v = em_attr_ints(node, "scan_input_directions", &n);
    if (v && n != a->n_scan_in)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: scan_input_directions needs %d values",
                       desc(node, buf, sizeof buf), a->n_scan_in);
    for (int i = 0; i < a->n_scan_in; i++) a->in_reverse[i] = v && v[i] != 0;
    v = em_attr_ints(node, "scan_output_directions", &n);
    if (v && n != a->n_scan_out)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: scan_output_directions needs %d values",
                       desc(node, buf, sizeof buf), a->n_scan_out);
    for (int i = 0; i < a->n_scan_out; i++) a->out_reverse[i] = v && v[i] != 0;
    v = em_attr_ints(node, "scan_input_axes", &n);
    if (v && n != a->n_scan_in)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: scan_input_axes needs %d values",
                       desc(node, buf, sizeof buf), a->n_scan_in);
    for (int i = 0; i < a->n_scan_in; i++) {
        const em_tensor *t = in[first + a->n_state + i];
        int64_t axis = v ? v[i] : 0;
        if (t && t->rank >= 0) {
            int norm;
            EM_TRY(em_norm_axis(node, axis, t->rank, &norm, err));
            axis = norm;
        }
        a->in_axis[i] = (int)axis;
    }
    v = em_attr_ints(node, "scan_output_axes", &n);
    if (v && n != a->n_scan_out)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: scan_output_axes needs %d values",
                       desc(node, buf, sizeof buf), a->n_scan_out);
    for (int i = 0; i < a->n_scan_out; i++) a->out_axis[i] = v ? (int)v[i] : 0;
    return EMBER_OK;
}

static ember_status scan_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    const em_graph *g = body_attr(node, "body", err);
    if (!g) return err ? err->code : EMBER_ERR_INVALID_MODEL;
    scan_attrs a;
    EM_TRY(scan_parse(node, g, in, &a, err));
    int first = scan_v8(node) ? 1 : 0;
    for (int k = 0; k < node->n_outputs; k++) {
        ember_dtype dt = body_output_type(g, k);
        if (dt == EMBER_UNDEFINED && k < a.n_state && in[first + k]) dt = in[first + k]->dtype;
        em_tensor_set_shape(&out[k], dt, NULL, -1);
    }
    return EMBER_OK;
}

/* Slice index `pos` of `axis` out of t into dst (rank - 1). Axis 0 is a view; others copy. */
static ember_status slice_axis(const em_tensor *t, int axis, int64_t pos, em_tensor *dst,
                               void *buf) {
    int r = 0;
    for (int i = 0; i < t->rank; i++)
        if (i != axis) dst->dims[r++] = t->dims[i];
    dst->rank = t->rank - 1;
    dst->dtype = t->dtype;
    dst->kind = EMBER_KIND_TENSOR;
    dst->elem_kind = EMBER_KIND_TENSOR;
    dst->owns_data = false;
    size_t es = em_dtype_size(t->dtype);
    int64_t outer = em_shape_numel(t->dims, axis);
    int64_t inner = em_shape_numel(t->dims + axis + 1, t->rank - axis - 1);
    int64_t len = t->dims[axis];
    dst->capacity = (size_t)(outer * inner) * es;
    if (outer == 1) {
        dst->data = (char *)t->data + (size_t)(pos * inner) * es;
        return EMBER_OK;
    }
    dst->data = buf;
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)buf + (size_t)(o * inner) * es,
               (const char *)t->data + (size_t)((o * len + pos) * inner) * es, (size_t)inner * es);
    return EMBER_OK;
}

/* One scan over sequence length `len` (batch element `batch` in version 8, else -1). States
 * in/out are heap or borrowed tensors; scan outputs are pushed to lists. */
typedef struct scan_run {
    const em_node *node;
    const em_graph *g;
    const scan_attrs *a;
    em_exec *ex;
    em_tensor **caps;
    em_tensor *const *scan_in; /* n_scan_in full inputs */
    void **slice_buf;          /* per scan input, or NULL */
    uint64_t *held;            /* bytes of scan outputs so far (all batch elements) */
} scan_run;

static ember_status scan_sequence(const scan_run *r, int64_t len, em_tensor **states,
                                  bool *owned, stack_list *lists, ember_error *err) {
    const scan_attrs *a = r->a;
    int n_in = a->n_state + a->n_scan_in;
    em_tensor *body_in[2 * SCAN_MAX_IO];
    em_tensor slices[SCAN_MAX_IO] = {0};
    em_tensor **res = calloc((size_t)r->g->n_outputs + 1, sizeof *res);
    if (!res) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = EMBER_OK;
    for (int64_t t = 0; t < len && st == EMBER_OK; t++) {
        for (int i = 0; i < a->n_state; i++) body_in[i] = states[i];
        for (int i = 0; i < a->n_scan_in; i++) {
            int64_t pos = a->in_reverse[i] ? len - 1 - t : t;
            slice_axis(r->scan_in[i], a->in_axis[i], pos, &slices[i], r->slice_buf[i]);
            body_in[a->n_state + i] = &slices[i];
        }
        st = em_exec_subgraph(r->ex, r->g, body_in, n_in, r->caps, res, err);
        if (st != EMBER_OK) break;
        for (int i = 0; i < a->n_state; i++) {
            if (owned[i]) em_tensor_free(states[i]);
            states[i] = res[i];
            owned[i] = true;
            res[i] = NULL;
        }
        for (int k = 0; k < a->n_scan_out; k++) {
            em_tensor *e = res[a->n_state + k];
            res[a->n_state + k] = NULL;
            if (st == EMBER_OK) st = charge_iteration_output(r->node, r->ex, r->held, e, t, err);
            if (st == EMBER_OK) st = stack_push(&lists[k], e, err);
            else em_tensor_free(e);
        }
    }
    free_all(res, r->g->n_outputs);
    free(res);
    return st;
}

/* Scan 9+: scan inputs along arbitrary axes, no batching. */
static ember_status scan9_run(const em_node *node, const em_graph *g, const scan_attrs *a,
                              em_tensor *const *in, em_tensor *out, em_exec *ex, em_tensor **caps,
                              ember_error *err) {
    char buf[160];
    int64_t len = -1;
    em_tensor *const *scan_in = in + a->n_state;
    void *slice_buf[SCAN_MAX_IO] = {0};
    for (int i = 0; i < a->n_scan_in; i++) {
        const em_tensor *t = scan_in[i];
        if (!t || t->rank < 1)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: scan input %d must have rank >= 1",
                           desc(node, buf, sizeof buf), i);
        int64_t l = t->dims[a->in_axis[i]];
        if (len >= 0 && l != len)
            return em_fail(err, EMBER_ERR_SHAPE,
                           "%s: scan inputs have different lengths (%lld and %lld)",
                           desc(node, buf, sizeof buf), (long long)len, (long long)l);
        len = l;
        if (a->in_axis[i] != 0 && em_shape_numel(t->dims, a->in_axis[i]) != 1) {
            slice_buf[i] = em_exec_scratch(ex, em_nbytes(t) / (size_t)(l > 0 ? l : 1) + 1, err);
            if (!slice_buf[i]) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        }
    }
    em_tensor *states[SCAN_MAX_IO];
    bool owned[SCAN_MAX_IO] = {0};
    stack_list lists[SCAN_MAX_IO];
    memset(lists, 0, sizeof lists);
    for (int i = 0; i < a->n_state; i++) states[i] = in[i];
    uint64_t held = 0;
    scan_run r = {node, g, a, ex, caps, scan_in, slice_buf, &held};
    ember_status st = scan_sequence(&r, len, states, owned, lists, err);
    for (int k = 0; st == EMBER_OK && k < a->n_state; k++) {
        if (node->outputs[k] < 0) continue;
        st = emit(node, k, &out[k], states[k], owned[k], err);
        owned[k] = false;
    }
    for (int k = 0; st == EMBER_OK && k < a->n_scan_out; k++) {
        int slot = a->n_state + k;
        if (node->outputs[slot] < 0) continue;
        st = stack_check(node, &lists[k], k, err);
        int axis = a->out_axis[k];
        int erank = lists[k].n > 0 ? lists[k].items[0]->rank : 0;
        if (axis < 0) axis += erank + 1;
        em_tensor *stacked = NULL;
        if (st == EMBER_OK)
            st = stack_build(node, &lists[k], axis, a->out_reverse[k],
                             &g->values[g->outputs[slot]].info, body_output_type(g, slot),
                             &stacked, err);
        if (st == EMBER_OK) st = emit(node, slot, &out[slot], stacked, true, err);
    }
    for (int k = 0; k < a->n_state; k++)
        if (owned[k]) em_tensor_free(states[k]);
    for (int k = 0; k < a->n_scan_out; k++) stack_free(&lists[k]);
    return st;
}

/* Scan 8: batch axis 0, sequence axis 1, optional per-batch sequence_lens. */
static ember_status scan8_run(const em_node *node, const em_graph *g, const scan_attrs *a,
                              em_tensor *const *in, em_tensor *out, em_exec *ex, em_tensor **caps,
                              ember_error *err) {
    char buf[160];
    const em_tensor *lens = in[0];
    em_tensor *const *state_in = in + 1;
    em_tensor *const *scan_full = in + 1 + a->n_state;
    int64_t batch = -1, max_len = -1;
    for (int i = 0; i < a->n_state + a->n_scan_in; i++) {
        const em_tensor *t = state_in[i];
        bool is_scan = i >= a->n_state;
        if (!t || t->rank < (is_scan ? 2 : 1))
            return em_fail(err, EMBER_ERR_SHAPE, "%s: input %d lacks the batch%s axis",
                           desc(node, buf, sizeof buf), i + 1, is_scan ? " and sequence" : "");
        if (batch >= 0 && t->dims[0] != batch)
            return em_fail(err, EMBER_ERR_SHAPE, "%s: inputs disagree on the batch size",
                           desc(node, buf, sizeof buf));
        batch = t->dims[0];
        if (is_scan) {
            if (max_len >= 0 && t->dims[1] != max_len)
                return em_fail(err, EMBER_ERR_SHAPE, "%s: scan inputs have different lengths",
                               desc(node, buf, sizeof buf));
            max_len = t->dims[1];
        }
    }
    if (lens && (lens->dtype != EMBER_INT64 || em_numel(lens) != batch))
        return em_fail(err, EMBER_ERR_SHAPE, "%s: sequence_lens must be int64[%lld]",
                       desc(node, buf, sizeof buf), (long long)batch);
    /* Per batch element: views of its state and scan inputs, then run the sequence. */
    em_tensor views[SCAN_MAX_IO * 2] = {0};
    em_tensor *view_ptrs[SCAN_MAX_IO];
    void *no_buf[SCAN_MAX_IO] = {0};
    stack_list *lists = calloc((size_t)batch * (size_t)(a->n_scan_out + 1) + 1, sizeof *lists);
    em_tensor **finals = calloc((size_t)batch * (size_t)(a->n_state + 1) + 1, sizeof *finals);
    ember_status st = lists && finals ? EMBER_OK
                                      : em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    uint64_t held = 0;
    for (int64_t b = 0; st == EMBER_OK && b < batch; b++) {
        int64_t len = lens ? ((const int64_t *)lens->data)[b] : max_len;
        if (len < 0 || len > max_len) {
            st = em_fail(err, EMBER_ERR_RUNTIME, "%s: sequence_lens[%lld] = %lld is outside [0, "
                         "%lld]", desc(node, buf, sizeof buf), (long long)b, (long long)len,
                         (long long)max_len);
            break;
        }
        em_tensor *states[SCAN_MAX_IO];
        bool owned[SCAN_MAX_IO] = {0};
        for (int i = 0; i < a->n_state; i++) {
            slice_axis(state_in[i], 0, b, &views[i], NULL);
            states[i] = &views[i];
        }
        for (int i = 0; i < a->n_scan_in; i++) {
            slice_axis(scan_full[i], 0, b, &views[SCAN_MAX_IO + i], NULL);
            view_ptrs[i] = &views[SCAN_MAX_IO + i];
        }
        scan_attrs ab = *a;
        for (int i = 0; i < a->n_scan_in; i++) ab.in_axis[i] = 0; /* sequence axis after slicing */
        scan_run r = {node, g, &ab, ex, caps, view_ptrs, no_buf, &held};
        stack_list *bl = lists + b * (a->n_scan_out + 1);
        st = scan_sequence(&r, len, states, owned, bl, err);
        for (int i = 0; i < a->n_state; i++) {
            em_tensor *f = states[i];
            if (st == EMBER_OK && !owned[i]) {
                f = em_tensor_clone(states[i], err);
                if (!f) st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            }
            finals[b * (a->n_state + 1) + i] = (st == EMBER_OK || owned[i]) ? f : NULL;
        }
    }
    /* Final states: stack over the batch. */
    for (int k = 0; st == EMBER_OK && k < a->n_state; k++) {
        stack_list s = {0};
        for (int64_t b = 0; st == EMBER_OK && b < batch; b++)
            st = stack_push(&s, finals[b * (a->n_state + 1) + k], err);
        if (st == EMBER_OK) st = stack_check(node, &s, k, err);
        em_tensor *stacked = NULL;
        if (st == EMBER_OK)
            st = stack_build(node, &s, 0, false, state_in[k], state_in[k]->dtype, &stacked,
                             err);
        free(s.items); /* items stay owned by finals */
        if (st == EMBER_OK && node->outputs[k] >= 0) st = emit(node, k, &out[k], stacked, true, err);
        else em_tensor_free(stacked);
    }
    /* Scan outputs: [batch, max_len, ...], zero beyond each sequence's length. */
    for (int k = 0; st == EMBER_OK && k < a->n_scan_out; k++) {
        int slot = a->n_state + k;
        const em_tensor *elem = NULL;
        for (int64_t b = 0; b < batch && !elem; b++) {
            stack_list *bl = lists + b * (a->n_scan_out + 1);
            if (bl[k].n > 0) elem = bl[k].items[0];
        }
        if (!elem) elem = &g->values[g->outputs[slot]].info;
        int64_t dims[EM_MAX_RANK];
        if (elem->rank < 0 || elem->rank + 2 > EM_MAX_RANK) {
            st = em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: cannot shape scan output %d",
                         desc(node, buf, sizeof buf), k);
            break;
        }
        dims[0] = batch;
        dims[1] = max_len;
        for (int i = 0; i < elem->rank; i++) dims[i + 2] = elem->dims[i] < 0 ? 0 : elem->dims[i];
        ember_dtype dt = elem->dtype ? elem->dtype : body_output_type(g, slot);
        em_tensor *res = em_tensor_new(dt, dims, elem->rank + 2, err);
        if (!res) {
            st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            break;
        }
        size_t step = em_nbytes(res) / (size_t)(batch * max_len > 0 ? batch * max_len : 1);
        for (int64_t b = 0; st == EMBER_OK && b < batch; b++) {
            stack_list *bl = lists + b * (a->n_scan_out + 1);
            st = stack_check(node, &bl[k], k, err);
            for (int64_t t = 0; st == EMBER_OK && t < bl[k].n; t++) {
                const em_tensor *e = bl[k].items[t];
                if (e->dtype != dt || em_nbytes(e) != step) {
                    st = em_fail(err, EMBER_ERR_RUNTIME, "%s: scan output %d changes shape",
                                 desc(node, buf, sizeof buf), k);
                    break;
                }
                /* Version 8 appends in iteration order, whatever the direction. */
                memcpy((char *)res->data + (size_t)(b * max_len + t) * step, e->data, step);
            }
        }
        if (st == EMBER_OK && node->outputs[slot] >= 0) st = emit(node, slot, &out[slot], res, true, err);
        else em_tensor_free(res);
    }
    for (int64_t b = 0; lists && b < batch; b++)
        for (int k = 0; k < a->n_scan_out; k++) stack_free(&lists[b * (a->n_scan_out + 1) + k]);
    for (int64_t i = 0; finals && i < batch * (a->n_state + 1); i++) em_tensor_free(finals[i]);
    free(lists);
    free(finals);
    return st;
}

static ember_status scan_run_op(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_graph *g = body_attr(node, "body", err);
    if (!g) return err ? err->code : EMBER_ERR_INVALID_MODEL;
    scan_attrs a;
    EM_TRY(scan_parse(node, g, in, &a, err));
    em_tensor **caps;
    EM_TRY(body_captures(node, g, in, &caps, err));
    ember_status st = scan_v8(node) ? scan8_run(node, g, &a, in, out, ex, caps, err)
                                    : scan9_run(node, g, &a, in, out, ex, caps, err);
    free(caps);
    return st;
}

static const em_op k_control_ops[] = {
    {"", "If", 1, 21, NULL, if_infer, if_run, NULL, EM_OP_DYNAMIC_OUTPUTS | EM_OP_ANY_KIND},
    {"", "Loop", 1, 21, NULL, loop_infer, loop_run, NULL, EM_OP_DYNAMIC_OUTPUTS | EM_OP_ANY_KIND},
    {"", "Scan", 8, 21, NULL, scan_infer, scan_run_op, NULL, EM_OP_DYNAMIC_OUTPUTS},
};

EM_OPS_FAMILY(control) {
    *count = sizeof k_control_ops / sizeof k_control_ops[0];
    return k_control_ops;
}
