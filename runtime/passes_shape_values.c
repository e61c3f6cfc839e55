/* Symbolic shape values. PyTorch exports with a dynamic batch compute Reshape targets at run
 * time (Shape -> Gather -> Unsqueeze -> Concat -> Reshape); the constant folder cannot remove
 * these because the batch is unknown at load. This pass tracks, per value, a symbolic shape
 * (each dim a constant or k * symbol) and, for small integer tensors, their contents in the same
 * form. A symbol is one dim of one graph input (fixed for a run). Declared dim_param names are
 * not trusted to be equal across inputs: the runtime does not check them.
 * A Reshape whose target is known this way gets a constant target with the same meaning:
 * a symbol equal to the input's dim at the same position becomes 0 (copy; allowzero=0 only),
 * at most one other element becomes -1 when the element counts provably agree.
 * Whenever the written graph succeeds, the rewritten one computes the same. One difference is
 * wanted: at batch 0 an element k * batch evaluates to 0, which ONNX reads as "copy the input
 * dim", so exports like (64 * batch, 128) fail as written; the -1 there gives the empty result
 * (what PyTorch computes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "passes.h"

enum { SYM_CONST = -1, SYM_UNKNOWN = -2 };

/* k * symbol `sym` (sym >= 0), the constant k (SYM_CONST), or unknown. */
typedef struct sdim {
    int64_t k;
    int sym;
} sdim;

#define SV_MAX_LEN 8   /* longest integer tensor whose contents are tracked */
#define MONO_MAX 32    /* symbols in one product */

typedef struct sval {
    int rank; /* symbolic shape; -1 unknown */
    sdim dim[EM_MAX_RANK];
    int vrank; /* contents tracked: 0 scalar, 1 vector; -1 not tracked */
    int len;
    sdim elem[SV_MAX_LEN];
} sval;

/* A product of dims: k * syms[0] * syms[1] * ... (syms sorted). */
typedef struct mono {
    int64_t k;
    int n;
    int syms[MONO_MAX];
} mono;

static const sdim UNKNOWN = {0, SYM_UNKNOWN};

static sdim cst(int64_t k) { return (sdim){k, SYM_CONST}; }
static bool known(sdim a) { return a.sym != SYM_UNKNOWN; }
static bool is_const(sdim a, int64_t k) { return a.sym == SYM_CONST && a.k == k; }
static bool same(sdim a, sdim b) { return known(a) && a.sym == b.sym && a.k == b.k; }

static bool op_in(const em_node *n, const char *const *ops) {
    for (int i = 0; ops[i]; i++)
        if (em_pass_is_onnx_op(n, ops[i])) return true;
    return false;
}

static int int_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static bool mono_mul(mono *m, sdim d) {
    if (!known(d) || __builtin_mul_overflow(m->k, d.k, &m->k)) return false;
    if (d.sym >= 0) {
        if (m->n == MONO_MAX) return false;
        m->syms[m->n++] = d.sym;
    }
    return true;
}

static bool mono_of(const sdim *d, int rank, mono *m) {
    m->k = 1;
    m->n = 0;
    for (int i = 0; i < rank; i++)
        if (!mono_mul(m, d[i])) return false;
    qsort(m->syms, (size_t)m->n, sizeof(int), int_cmp);
    return true;
}

static bool mono_eq(const mono *a, const mono *b) {
    return a->k == b->k && a->n == b->n && memcmp(a->syms, b->syms, sizeof(int) * (size_t)a->n) == 0;
}

/* a / b when it is exact (then truncating and flooring agree); false also on overflow. */
static bool exact_div(int64_t a, int64_t b, int64_t *q) {
    if (b == 0 || (b == -1 && a == INT64_MIN) || a % b != 0) return false;
    *q = a / b;
    return true;
}

/* num / den when it is a constant or k * one symbol, else unknown. */
static sdim mono_div(const mono *num, const mono *den) {
    int64_t q;
    if (!exact_div(num->k, den->k, &q)) return UNKNOWN;
    int rest[MONO_MAX], n_rest = 0, j = 0;
    for (int i = 0; i < num->n; i++) {
        if (j < den->n && den->syms[j] == num->syms[i]) j++;
        else rest[n_rest++] = num->syms[i];
    }
    if (j != den->n || n_rest > 1) return UNKNOWN;
    return (sdim){q, n_rest ? rest[0] : SYM_CONST};
}

/* ---- integer constants and attributes ---- */

static const em_tensor *int_const(const em_graph *g, const em_node *n, int i) {
    const em_tensor *t = em_node_fixed_input(g, n, i);
    return t && (t->dtype == EMBER_INT64 || t->dtype == EMBER_INT32) ? t : NULL;
}

/* The axes of Unsqueeze / Squeeze / Reduce*: attribute before `input_since`, then input 1.
 * Returns the count, 0 when absent, -1 when not known at load. */
static int node_axes(const em_graph *g, const em_node *n, int input_since, int64_t *axes) {
    if (em_onnx_op_version(n->op_type, n->opset) >= input_since) {
        if (n->n_inputs < 2 || n->inputs[1] < 0) return 0;
        const em_tensor *t = int_const(g, n, 1);
        if (!t || t->rank > 1 || em_numel(t) > EM_MAX_RANK) return -1;
        for (int64_t i = 0; i < em_numel(t); i++) axes[i] = em_get_i64(t, i);
        return (int)em_numel(t);
    }
    int64_t count;
    const int64_t *a = em_attr_ints(n, "axes", &count);
    if (count > EM_MAX_RANK) return -1;
    for (int64_t i = 0; i < count; i++) axes[i] = a[i];
    return (int)count;
}

static bool norm_axis(int64_t *a, int rank) {
    if (*a < 0) *a += rank;
    return *a >= 0 && *a < rank;
}

/* ---- shapes ---- */

static void shape_from_info(sval *s, const em_tensor *info) {
    s->rank = info->rank;
    for (int d = 0; d < info->rank; d++) s->dim[d] = info->dims[d] >= 0 ? cst(info->dims[d]) : UNKNOWN;
}

/* Numpy broadcasting of one dim pair; unknown when the result cannot be named. */
static sdim bcast_dim(sdim a, sdim b) {
    if (is_const(a, 1)) return b;
    if (is_const(b, 1)) return a;
    if (same(a, b)) return a;
    /* A constant other than 1 is the result whenever the node succeeds (the other side must
     * be 1 or equal), and the node still checks that at run time. */
    if (a.sym == SYM_CONST) return a;
    if (b.sym == SYM_CONST) return b;
    return UNKNOWN;
}

static bool bcast(sval *out, const sval *a, const sval *b) {
    if (a->rank < 0 || b->rank < 0) return false;
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int d = 0; d < r; d++) {
        int da = d - (r - a->rank), db = d - (r - b->rank);
        sdim x = da >= 0 ? a->dim[da] : cst(1), y = db >= 0 ? b->dim[db] : cst(1);
        out->dim[d] = bcast_dim(x, y);
    }
    return true;
}

static bool matmul_shape(sval *out, const sval *a, const sval *b) {
    if (a->rank < 1 || b->rank < 1) return false;
    sval ba = {.rank = a->rank > 2 ? a->rank - 2 : 0}, bb = {.rank = b->rank > 2 ? b->rank - 2 : 0};
    memcpy(ba.dim, a->dim, sizeof(sdim) * (size_t)ba.rank);
    memcpy(bb.dim, b->dim, sizeof(sdim) * (size_t)bb.rank);
    if (!bcast(out, &ba, &bb)) return false;
    if (a->rank >= 2) out->dim[out->rank++] = a->dim[a->rank - 2];
    if (b->rank >= 2) out->dim[out->rank++] = b->dim[b->rank - 1];
    return out->rank <= EM_MAX_RANK;
}

/* Output dims of Reshape with a constant target (ONNX semantics), as far as they can be named. */
static bool reshape_shape(sval *out, const sval *x, const em_tensor *t, bool allowzero) {
    int64_t n = em_numel(t);
    if (t->rank != 1 || n > EM_MAX_RANK) return false;
    out->rank = (int)n;
    int minus = -1;
    for (int i = 0; i < (int)n; i++) {
        int64_t c = em_get_i64(t, i);
        if (c == 0 && !allowzero) out->dim[i] = x->rank > i ? x->dim[i] : UNKNOWN;
        else if (c == -1 && minus < 0) minus = i, out->dim[i] = cst(1);
        else if (c >= 0) out->dim[i] = cst(c);
        else return false;
    }
    if (minus >= 0) {
        mono num, den;
        out->dim[minus] = x->rank >= 0 && mono_of(x->dim, x->rank, &num) &&
                                  mono_of(out->dim, out->rank, &den)
                              ? mono_div(&num, &den)
                              : UNKNOWN;
    }
    return true;
}

/* Slice of data with constant starts / ends / axes / steps: the length of each sliced dim
 * whose input size is a constant. `elem` (if any) receives the picked indices' count only. */
typedef struct slice_spec {
    int n;
    int64_t start[EM_MAX_RANK], end[EM_MAX_RANK], axis[EM_MAX_RANK], step[EM_MAX_RANK];
} slice_spec;

static bool slice_params(const em_graph *g, const em_node *n, int rank, slice_spec *s) {
    const em_tensor *st, *en, *ax = NULL, *sp = NULL;
    if (em_onnx_op_version("Slice", n->opset) < 10) return false;
    if (n->n_inputs < 3 || !(st = int_const(g, n, 1)) || !(en = int_const(g, n, 2))) return false;
    if (n->n_inputs > 3 && n->inputs[3] >= 0 && !(ax = int_const(g, n, 3))) return false;
    if (n->n_inputs > 4 && n->inputs[4] >= 0 && !(sp = int_const(g, n, 4))) return false;
    int64_t cnt = em_numel(st);
    if (cnt > EM_MAX_RANK || em_numel(en) != cnt || (ax && em_numel(ax) != cnt) ||
        (sp && em_numel(sp) != cnt))
        return false;
    s->n = (int)cnt;
    for (int i = 0; i < s->n; i++) {
        s->start[i] = em_get_i64(st, i);
        s->end[i] = em_get_i64(en, i);
        s->axis[i] = ax ? em_get_i64(ax, i) : i;
        s->step[i] = sp ? em_get_i64(sp, i) : 1;
        if (s->step[i] == 0 || !norm_axis(&s->axis[i], rank)) return false;
    }
    return true;
}

/* ---- contents of small integer tensors ---- */

static sdim elem_op(char op, sdim a, sdim b) {
    if (!known(a) || !known(b)) return UNKNOWN;
    int64_t r;
    if (a.sym == SYM_CONST && b.sym == SYM_CONST) {
        switch (op) {
        case '+': return __builtin_add_overflow(a.k, b.k, &r) ? UNKNOWN : cst(r);
        case '-': return __builtin_sub_overflow(a.k, b.k, &r) ? UNKNOWN : cst(r);
        case '*': return __builtin_mul_overflow(a.k, b.k, &r) ? UNKNOWN : cst(r);
        default:
            return exact_div(a.k, b.k, &r) ? cst(r) : UNKNOWN;
        }
    }
    switch (op) {
    case '+':
    case '-':
        if (b.sym == SYM_CONST && b.k == 0) return a;
        if (op == '+' && a.sym == SYM_CONST && a.k == 0) return b;
        if (a.sym == b.sym) {
            if (op == '+' ? __builtin_add_overflow(a.k, b.k, &r) : __builtin_sub_overflow(a.k, b.k, &r))
                return UNKNOWN;
            return r ? (sdim){r, a.sym} : cst(0);
        }
        return UNKNOWN;
    case '*':
        if (a.sym >= 0 && b.sym >= 0) return UNKNOWN;
        if (a.sym >= 0) {
            sdim t = a;
            a = b;
            b = t;
        }
        /* now a constant, b k * symbol */
        if (__builtin_mul_overflow(a.k, b.k, &r)) return UNKNOWN;
        return r ? (sdim){r, b.sym} : cst(0);
    default:
        /* (k * S) / c = (k / c) * S for every S when c divides k */
        if (b.sym != SYM_CONST || !exact_div(a.k, b.k, &r)) return UNKNOWN;
        return (sdim){r, a.sym};
    }
}

static void contents_from_const(sval *s, const em_tensor *t) {
    if ((t->dtype != EMBER_INT64 && t->dtype != EMBER_INT32) || t->rank > 1 ||
        em_numel(t) > SV_MAX_LEN)
        return;
    s->vrank = t->rank;
    s->len = (int)em_numel(t);
    for (int i = 0; i < s->len; i++) s->elem[i] = cst(em_get_i64(t, i));
}

/* ---- the pass ---- */

typedef struct sv_ctx {
    em_graph *g;
    sval *v;
    int n;
} sv_ctx;

static const sval *get(const sv_ctx *c, int v) {
    static const sval none = {.rank = -1, .vrank = -1};
    return v >= 0 && v < c->n ? &c->v[v] : &none;
}

static void init_values(sv_ctx *c) {
    int next_sym = 0;
    for (int i = 0; i < c->n; i++) {
        sval *s = &c->v[i];
        const em_value *v = &c->g->values[i];
        s->rank = -1;
        s->vrank = -1;
        const em_tensor *k = em_fixed_const(c->g, i);
        if (k) {
            shape_from_info(s, k);
            contents_from_const(s, k);
        } else if (v->is_input && v->outer < 0 && v->info.rank >= 0) {
            /* run time checks the declared rank and static dims of inputs */
            shape_from_info(s, &v->info);
            for (int d = 0; d < s->rank; d++)
                if (!known(s->dim[d])) s->dim[d] = (sdim){1, next_sym++};
        }
    }
}

static void contents_of_node(sv_ctx *c, const em_node *n, sval *o) {
    const em_graph *g = c->g;
    const sval *a = get(c, n->n_inputs > 0 ? n->inputs[0] : -1);
    if (em_pass_is_onnx_op(n, "Shape")) {
        if (a->rank < 0) return;
        int64_t s = em_attr_int(n, "start", 0), e = em_attr_int(n, "end", a->rank);
        if (s < 0) s += a->rank;
        if (e < 0) e += a->rank;
        s = s < 0 ? 0 : s > a->rank ? a->rank : s;
        e = e < s ? s : e > a->rank ? a->rank : e;
        if (e - s > SV_MAX_LEN) return;
        o->vrank = 1;
        o->len = (int)(e - s);
        memcpy(o->elem, &a->dim[s], sizeof(sdim) * (size_t)o->len);
        return;
    }
    if (a->vrank < 0) return;
    if (em_pass_is_onnx_op(n, "Identity") || (em_pass_is_onnx_op(n, "Cast") && em_attr_int(n, "to", 0) == EMBER_INT64)) {
        o->vrank = a->vrank;
        o->len = a->len;
        memcpy(o->elem, a->elem, sizeof(sdim) * (size_t)a->len);
    } else if (em_pass_is_onnx_op(n, "Gather") && a->vrank == 1 && n->n_inputs == 2 &&
               em_attr_int(n, "axis", 0) == 0) {
        const em_tensor *idx = int_const(g, n, 1);
        if (!idx || idx->rank > 1 || em_numel(idx) > SV_MAX_LEN) return;
        int cnt = (int)em_numel(idx);
        for (int k = 0; k < cnt; k++) {
            int64_t i = em_get_i64(idx, k);
            if (i < -a->len || i >= a->len) return;
            o->elem[k] = a->elem[i < 0 ? i + a->len : i];
        }
        o->vrank = idx->rank;
        o->len = cnt;
    } else if (em_pass_is_onnx_op(n, "Slice") && a->vrank == 1) {
        slice_spec s;
        if (!slice_params(g, n, 1, &s) || s.n != 1) return;
        int64_t first, count;
        em_slice_axis(a->len, s.start[0], s.end[0], s.step[0], &first, &count);
        for (int64_t k = 0; k < count; k++) o->elem[k] = a->elem[first + k * s.step[0]];
        o->vrank = 1;
        o->len = (int)count;
    } else if (em_pass_is_onnx_op(n, "Unsqueeze") && a->vrank == 0) {
        int64_t axes[EM_MAX_RANK];
        if (node_axes(g, n, 13, axes) != 1 || (axes[0] != 0 && axes[0] != -1)) return;
        o->vrank = 1;
        o->len = 1;
        o->elem[0] = a->elem[0];
    } else if (em_pass_is_onnx_op(n, "Squeeze") && a->vrank == 1 && a->len == 1) {
        int64_t axes[EM_MAX_RANK];
        int na = node_axes(g, n, 13, axes);
        if (na < 0 || na > 1 || (na == 1 && axes[0] != 0 && axes[0] != -1)) return;
        o->vrank = 0;
        o->len = 1;
        o->elem[0] = a->elem[0];
    } else if (em_pass_is_onnx_op(n, "Concat") && a->vrank == 1) {
        int64_t axis = em_attr_int(n, "axis", 0);
        if (axis != 0 && axis != -1) return;
        int len = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            const sval *in = get(c, n->inputs[k]);
            if (in->vrank != 1 || len + in->len > SV_MAX_LEN) return;
            memcpy(&o->elem[len], in->elem, sizeof(sdim) * (size_t)in->len);
            len += in->len;
        }
        o->vrank = 1;
        o->len = len;
    } else if ((em_pass_is_onnx_op(n, "Add") || em_pass_is_onnx_op(n, "Sub") || em_pass_is_onnx_op(n, "Mul") || em_pass_is_onnx_op(n, "Div")) &&
               n->n_inputs == 2) {
        const sval *b = get(c, n->inputs[1]);
        if (b->vrank < 0) return;
        int len = a->len > b->len ? a->len : b->len;
        if ((a->len != len && a->len != 1) || (b->len != len && b->len != 1)) return;
        char op = em_pass_is_onnx_op(n, "Add") ? '+' : em_pass_is_onnx_op(n, "Sub") ? '-' : em_pass_is_onnx_op(n, "Mul") ? '*' : '/';
        for (int k = 0; k < len; k++)
            o->elem[k] = elem_op(op, a->elem[a->len == 1 ? 0 : k], b->elem[b->len == 1 ? 0 : k]);
        o->vrank = a->vrank > b->vrank ? a->vrank : b->vrank;
        o->len = len;
    }
}

static const char *const unary_ops[] = {
    "Relu", "Sigmoid", "Tanh", "Gelu", "Erf", "Sqrt", "Exp", "Log", "Neg", "Abs", "Reciprocal",
    "Cast", "Softmax", "LogSoftmax", "Identity", "Dropout", "LayerNormalization", "LeakyRelu",
    "Elu", "Selu", "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Clip", "Not", "Floor",
    "Ceil", "Round", "Sign", "Sin", "Cos", "Mish", "CumSum", "BatchNormalization", NULL};
static const char *const binary_ops[] = {
    "Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater", "LessOrEqual",
    "GreaterOrEqual", "And", "Or", "Xor", "Mod", "Where", "PRelu", "BitShift", NULL};
static const char *const reduce_ops[] = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin",
                                         "ReduceProd", "ReduceL2", "ReduceSumSquare", NULL};

/* Symbolic shape of output 0 of node n, or false to fall back on static inference. */
static bool shape_of_node(sv_ctx *c, const em_node *n, sval *o) {
    const em_graph *g = c->g;
    const sval *a = get(c, n->n_inputs > 0 ? n->inputs[0] : -1);
    if (op_in(n, unary_ops)) {
        if (a->rank < 0) return false;
        o->rank = a->rank;
        memcpy(o->dim, a->dim, sizeof(sdim) * (size_t)a->rank);
        return true;
    }
    if (op_in(n, binary_ops)) {
        if (n->n_inputs < 2) return false;
        if (!bcast(o, a, get(c, n->inputs[1]))) return false;
        if (n->n_inputs == 3) {
            sval t = *o;
            return bcast(o, &t, get(c, n->inputs[2]));
        }
        return true;
    }
    if (em_pass_is_onnx_op(n, "MatMul") && n->n_inputs == 2) return matmul_shape(o, a, get(c, n->inputs[1]));
    if (em_pass_is_onnx_op(n, "Gemm") && n->n_inputs >= 2) {
        const sval *b = get(c, n->inputs[1]);
        if (a->rank != 2 || b->rank != 2) return false;
        o->rank = 2;
        o->dim[0] = a->dim[em_attr_int(n, "transA", 0) ? 1 : 0];
        o->dim[1] = b->dim[em_attr_int(n, "transB", 0) ? 0 : 1];
        return true;
    }
    if (em_pass_is_onnx_op(n, "Transpose")) {
        if (a->rank < 0) return false;
        int64_t cnt;
        const int64_t *perm = em_attr_ints(n, "perm", &cnt);
        o->rank = a->rank;
        if (perm && cnt != a->rank) return false;
        for (int d = 0; d < a->rank; d++) {
            int64_t p = perm ? perm[d] : a->rank - 1 - d;
            if (p < 0 || p >= a->rank) return false;
            o->dim[d] = a->dim[p];
        }
        return true;
    }
    if (em_pass_is_onnx_op(n, "Reshape") && n->n_inputs == 2) {
        const em_tensor *t = int_const(g, n, 1);
        return t && a->rank >= 0 && reshape_shape(o, a, t, em_attr_int(n, "allowzero", 0) != 0);
    }
    if (em_pass_is_onnx_op(n, "Slice")) {
        slice_spec s;
        if (a->rank < 0 || !slice_params(g, n, a->rank, &s)) return false;
        *o = *a;
        for (int i = 0; i < s.n; i++) {
            sdim d = a->dim[s.axis[i]];
            int64_t first, count;
            if (d.sym != SYM_CONST) {
                o->dim[s.axis[i]] = UNKNOWN;
                continue;
            }
            em_slice_axis(d.k, s.start[i], s.end[i], s.step[i], &first, &count);
            o->dim[s.axis[i]] = cst(count);
        }
        return true;
    }
    if (op_in(n, reduce_ops)) {
        int since = em_pass_is_onnx_op(n, "ReduceSum") ? 13 : 18;
        int64_t axes[EM_MAX_RANK];
        int na = node_axes(g, n, since, axes);
        if (a->rank < 0 || na < 0) return false;
        bool keep = em_attr_int(n, "keepdims", 1) != 0, reduced[EM_MAX_RANK] = {0};
        if (na == 0) {
            if (em_attr_int(n, "noop_with_empty_axes", 0)) return false;
            for (int d = 0; d < a->rank; d++) reduced[d] = true;
        }
        for (int i = 0; i < na; i++) {
            if (!norm_axis(&axes[i], a->rank)) return false;
            reduced[axes[i]] = true;
        }
        o->rank = 0;
        for (int d = 0; d < a->rank; d++)
            if (!reduced[d]) o->dim[o->rank++] = a->dim[d];
            else if (keep) o->dim[o->rank++] = cst(1);
        return true;
    }
    if (em_pass_is_onnx_op(n, "Unsqueeze") || em_pass_is_onnx_op(n, "Squeeze")) {
        int64_t axes[EM_MAX_RANK];
        int na = node_axes(g, n, 13, axes);
        if (a->rank < 0 || na <= 0) return false;
        bool unsq = em_pass_is_onnx_op(n, "Unsqueeze"), at[EM_MAX_RANK] = {0};
        int r = unsq ? a->rank + na : a->rank;
        if (r > EM_MAX_RANK) return false;
        for (int i = 0; i < na; i++) {
            if (!norm_axis(&axes[i], r) || at[axes[i]]) return false;
            at[axes[i]] = true;
        }
        o->rank = 0;
        for (int d = 0, src = 0; d < r; d++) {
            if (unsq) o->dim[o->rank++] = at[d] ? cst(1) : a->dim[src++];
            else if (!at[d]) o->dim[o->rank++] = a->dim[d];
        }
        return true;
    }
    return false;
}

static bool add_target(em_graph *g, em_node *n, const int64_t *t, int len) {
    int64_t dim = len;
    em_tensor *k = em_tensor_new(EMBER_INT64, &dim, 1, NULL);
    if (!k) return false;
    memcpy(k->data, t, sizeof(int64_t) * (size_t)len);
    int v = em_graph_add_value(g, "");
    if (v < 0) {
        em_tensor_free(k);
        return false;
    }
    g->values[v].constant = k;
    em_tensor_set_shape(&g->values[v].info, k->dtype, k->dims, k->rank);
    n->inputs[1] = v;
    return true;
}

/* Reshape(x, T) with T's contents known symbolically: a constant target that means the same. */
static bool rewrite_reshape(sv_ctx *c, em_node *n) {
    if (!em_pass_is_onnx_op(n, "Reshape") || n->n_inputs != 2 || n->inputs[1] < 0 ||
        em_fixed_const(c->g, n->inputs[1]))
        return false;
    const sval *x = get(c, n->inputs[0]), *t = get(c, n->inputs[1]);
    if (t->vrank != 1 || t->len > EM_MAX_RANK) return false;
    bool allowzero = em_attr_int(n, "allowzero", 0) != 0;
    int64_t target[EM_MAX_RANK];
    int minus = 0;
    bool introduced = false;
    for (int i = 0; i < t->len; i++) {
        sdim e = t->elem[i];
        if (!known(e)) return false;
        if (e.sym == SYM_CONST) {
            target[i] = e.k;
            if (e.k == -1) minus++;
            continue;
        }
        /* A symbol: with allowzero the exporter's 0 would mean a real zero, so never rewrite. */
        if (allowzero) return false;
        if (e.k == 1 && x->rank > i && same(x->dim[i], e)) {
            target[i] = 0; /* copy the input's dim, which is this very symbol */
        } else {
            target[i] = -1;
            minus++;
            introduced = true;
        }
    }
    if (minus > 1) return false;
    if (introduced) {
        /* -1 names the same size only if numel(x) provably equals the product of T (with 0
         * copying x's dim), and the other dims multiply to a nonzero constant: with a symbol
         * among them, a batch of 0 would make the -1 ambiguous (an error) where T was not. */
        sdim prod[EM_MAX_RANK], rest[EM_MAX_RANK];
        int n_rest = 0;
        for (int i = 0; i < t->len; i++) {
            sdim e = t->elem[i];
            if (is_const(e, 0)) e = x->rank > i ? x->dim[i] : UNKNOWN;
            prod[i] = e;
            if (target[i] != -1) rest[n_rest++] = e;
        }
        mono mx, mt, mr;
        if (x->rank < 0 || !mono_of(x->dim, x->rank, &mx) || !mono_of(prod, t->len, &mt) ||
            !mono_of(rest, n_rest, &mr) || !mono_eq(&mx, &mt) || mr.k == 0 || mr.n > 0)
            return false;
    }
    return add_target(c->g, n, target, t->len);
}

static int sweep(em_graph *g) {
    sv_ctx c = {g, NULL, g->n_values};
    c.v = calloc((size_t)c.n + 1, sizeof(sval));
    if (!c.v) return 0;
    init_values(&c);
    int changed = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op_type || n->n_outputs < 1 || n->outputs[0] < 0 || n->outputs[0] >= c.n) continue;
        if (n->n_inputs != n->n_explicit_inputs) continue; /* has subgraphs */
        if (rewrite_reshape(&c, n)) changed++;
        sval *o = &c.v[n->outputs[0]];
        o->rank = -1;
        o->vrank = -1;
        if (!shape_of_node(&c, n, o)) shape_from_info(o, &g->values[n->outputs[0]].info);
        contents_of_node(&c, n, o);
        for (int k = 1; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0 && n->outputs[k] < c.n)
                shape_from_info(&c.v[n->outputs[k]], &g->values[n->outputs[k]].info);
    }
    free(c.v);
    return changed;
}

int em_pass_shape_values(em_graph *g) {
    int changed = sweep(g);
    if (changed) {
        /* The rewritten Reshapes' outputs (and what follows) now have static shapes up to the
         * symbolic dims; a failure here leaves the previous (less precise) information. */
        ember_error err;
        (void)em_infer_static(g, "optimizer", &err);
    }
    return changed;
}
