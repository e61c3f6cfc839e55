/* The executor: runs a graph node by node. For every node: infer output shapes from the actual
 * inputs, take output buffers from the run context's arena (or alias / reuse an input buffer),
 * run the kernel, then hand buffers whose last reader has run back to the arena.
 *
 * Fixed cost per run matters for small models (an MLP runs in a few microseconds), so a run
 * context keeps everything a run needs between runs: the value table, the arena, and per node
 * the output shapes infer gave for the last input shapes (re-inferred only when those change).
 * Those memoized shapes also let producers of Concat inputs write into the Concat's output
 * (place_in_concat below; the plan is in planner.c). */
#include <stdlib.h>
#include <string.h>

#include "session.h"

typedef struct em_block {
    void *p;
    size_t cap;
    int refs;  /* values (and scratch users) holding it; 0 = free */
    bool used; /* touched during the current run */
} em_block;

/* Largest input value (bytes) that takes part in a node's shape memo; see memo_value_bytes. */
#define MEMO_VALUE_BYTES 256

/* What the shape memo remembers of one input of a node. */
typedef struct memo_input {
    ember_dtype dtype;
    int rank; /* -2: input absent */
    int64_t dims[EM_MAX_RANK];
    uint32_t n_bytes; /* bytes of the value kept below (small inputs only) */
    unsigned char bytes[MEMO_VALUE_BYTES];
} memo_input;

typedef struct node_memo {
    bool valid;
    memo_input *in; /* n_inputs */
    em_tensor *out; /* n_outputs: dtype and shape only */
} node_memo;

struct em_run_ctx {
    struct ember_session *s;
    em_block *blocks;
    int n_blocks, cap_blocks;
    uint64_t arena_bytes;
    uint64_t peak_bytes; /* most arena_bytes reached during the last run (outputs included) */
    /* Root graph frame, kept across runs (NULL for the one-node frames of constant folding). */
    em_tensor *vals;
    int *block_of;
    node_memo *memo; /* per root node; NULL where the node's shapes are always inferred */
    memo_input *memo_in;
    em_tensor *memo_out;
    int *concat_block; /* per root node: its output block taken early for placed inputs, or -1 */
    int placed;        /* Concat inputs placed in the current run */
    int last_placed;   /* ... in the last finished run */
    /* Batch tiling (run_tiled): sized by the session's plan. */
    em_tensor *tile_saved;   /* per tiled graph input: the caller's whole batch */
    em_tensor *tile_whole;   /* per crossing value: its whole-batch shape and buffer */
    int *tile_block;         /* per crossing value: its whole-batch arena block, or -1 */
    int chunks, last_chunks; /* chunks of the current / last finished run (0: not tiled) */
    /* Batch tiling at several threads: a run context per extra thread ("lane"), each running
     * its own chunks of the front single-threaded; kept (with their arenas) across runs. */
    em_run_ctx **lanes;
    int n_lanes;
    ember_status lane_status; /* how this context's lane ended in the last tiled run */
    ember_error lane_error;
};

struct em_exec {
    em_run_ctx *rc;
    const em_graph *g;
    em_tensor *vals;
    int *block_of; /* per value: arena block or -1 (input, constant, capture) */
    const int *last_use;
    node_memo *memo;                      /* per node, or NULL (subgraphs, constant folding) */
    const int *concat_into, *concat_slot; /* the plan's Concat placement (root frame), or NULL */
    int concat_limit;                     /* only Concat nodes before this one take placed inputs */
    int threads;     /* 1: kernels run on the calling thread (a batch-tiling lane); 0: session's */
    bool owns_frame; /* vals / block_of allocated for this frame only */
    int scratch[16]; /* blocks taken by the running kernel */
    int n_scratch;
};

/* ---- arena ---- */

/* A free slot in the block table (a block freed after an earlier run) or a new one. */
static int arena_slot(em_run_ctx *rc, ember_error *err) {
    for (int i = 0; i < rc->n_blocks; i++)
        if (!rc->blocks[i].p) return i;
    if (rc->n_blocks == rc->cap_blocks) {
        int cap = rc->cap_blocks ? rc->cap_blocks * 2 : 32;
        em_block *nb = realloc(rc->blocks, sizeof *nb * (size_t)cap);
        if (!nb) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory"), -1;
        rc->blocks = nb;
        rc->cap_blocks = cap;
    }
    return rc->n_blocks++;
}

static int arena_take(em_run_ctx *rc, size_t bytes, ember_error *err) {
    if (bytes == 0) bytes = 1;
    int best = -1;
    for (int i = 0; i < rc->n_blocks; i++) {
        em_block *b = &rc->blocks[i];
        if (b->refs || b->cap < bytes) continue;
        if (best < 0 || b->cap < rc->blocks[best].cap) best = i;
    }
    /* A much bigger free block would waste memory that a later, bigger tensor needs. */
    if (best >= 0 && rc->blocks[best].cap > 4 * bytes + (1u << 20)) best = -1;
    if (best >= 0) {
        rc->blocks[best].refs = 1;
        rc->blocks[best].used = true;
        return best;
    }
    uint64_t limit = rc->s->memory_limit;
    if (rc->arena_bytes + bytes > limit || bytes > limit)
        return em_fail(err, EMBER_ERR_LIMIT,
                       "a run needs more than the session's memory limit of %llu bytes "
                       "(%llu in use, %zu more requested)",
                       (unsigned long long)limit, (unsigned long long)rc->arena_bytes, bytes),
               -1;
    int slot = arena_slot(rc, err);
    if (slot < 0) return -1;
    void *p = em_aligned_alloc(bytes);
    if (!p) {
        rc->blocks[slot] = (em_block){0};
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", bytes),
               -1;
    }
    rc->blocks[slot] = (em_block){.p = p, .cap = bytes, .refs = 1, .used = true};
    rc->arena_bytes += bytes;
    if (rc->arena_bytes > rc->peak_bytes) rc->peak_bytes = rc->arena_bytes;
    return slot;
}

/* Take over memory a kernel allocated (em_aligned_alloc) as an arena block, so that it is
 * reference counted and reused like any other. On failure the memory is freed. */
static int arena_adopt(em_run_ctx *rc, void *p, size_t bytes, ember_error *err) {
    uint64_t limit = rc->s->memory_limit;
    if (rc->arena_bytes + bytes > limit || bytes > limit) {
        em_aligned_free(p);
        return em_fail(err, EMBER_ERR_LIMIT,
                       "a run needs more than the session's memory limit of %llu bytes",
                       (unsigned long long)limit),
               -1;
    }
    int slot = arena_slot(rc, err);
    if (slot < 0) {
        em_aligned_free(p);
        return -1;
    }
    rc->blocks[slot] = (em_block){.p = p, .cap = bytes, .refs = 1, .used = true};
    rc->arena_bytes += bytes;
    if (rc->arena_bytes > rc->peak_bytes) rc->peak_bytes = rc->arena_bytes;
    return slot;
}

static void arena_release(em_run_ctx *rc, int block) {
    if (block >= 0 && rc->blocks[block].refs > 0) rc->blocks[block].refs--;
}

/* After a run: blocks this run did not use are returned to the system, so memory follows the
 * latest shapes instead of growing with every shape ever seen. */
static void arena_trim(em_run_ctx *rc) {
    for (int i = 0; i < rc->n_blocks; i++) {
        em_block *b = &rc->blocks[i];
        b->refs = 0;
        if (b->p && !b->used) {
            em_aligned_free(b->p);
            rc->arena_bytes -= b->cap;
            *b = (em_block){0};
        }
        b->used = false;
    }
}

/* The root graph's value table with constants in place; graph inputs are set per run. */
static void frame_reset_values(const em_graph *g, em_tensor *vals, int *block_of) {
    for (int v = 0; v < g->n_values; v++) {
        block_of[v] = -1;
        memset(&vals[v], 0, sizeof vals[v]);
        vals[v].rank = -1;
        if (g->values[v].constant) {
            vals[v] = *g->values[v].constant;
            vals[v].owns_data = false;
        }
    }
}

em_run_ctx *em_run_ctx_new(struct ember_session *s) {
    em_run_ctx *rc = calloc(1, sizeof *rc);
    if (!rc) return NULL;
    rc->s = s;
    const em_graph *g = s->graph;
    size_t n_in = 0, n_out = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!s->plan.memo_ok || !s->plan.memo_ok[i]) continue;
        n_in += (size_t)g->nodes[i].n_inputs;
        n_out += (size_t)g->nodes[i].n_outputs;
    }
    rc->vals = malloc(sizeof *rc->vals * ((size_t)g->n_values + 1));
    rc->block_of = malloc(sizeof *rc->block_of * ((size_t)g->n_values + 1));
    rc->memo = calloc((size_t)g->n_nodes + 1, sizeof *rc->memo);
    rc->memo_in = calloc(n_in + 1, sizeof *rc->memo_in);
    rc->memo_out = calloc(n_out + 1, sizeof *rc->memo_out);
    rc->concat_block = malloc(sizeof *rc->concat_block * ((size_t)g->n_nodes + 1));
    rc->tile_saved = calloc((size_t)s->plan.n_tile_inputs + 1, sizeof *rc->tile_saved);
    rc->tile_whole = calloc((size_t)s->plan.n_tile_cross + 1, sizeof *rc->tile_whole);
    rc->tile_block = calloc((size_t)s->plan.n_tile_cross + 1, sizeof *rc->tile_block);
    if (!rc->vals || !rc->block_of || !rc->memo || !rc->memo_in || !rc->memo_out ||
        !rc->concat_block || !rc->tile_saved || !rc->tile_whole || !rc->tile_block) {
        em_run_ctx_free(rc);
        return NULL;
    }
    frame_reset_values(g, rc->vals, rc->block_of);
    memo_input *mi = rc->memo_in;
    em_tensor *mo = rc->memo_out;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!s->plan.memo_ok || !s->plan.memo_ok[i]) continue;
        rc->memo[i].in = mi;
        rc->memo[i].out = mo;
        mi += g->nodes[i].n_inputs;
        mo += g->nodes[i].n_outputs;
    }
    return rc;
}

void em_run_ctx_free(em_run_ctx *rc) {
    if (!rc) return;
    for (int i = 0; i < rc->n_lanes; i++) em_run_ctx_free(rc->lanes[i]);
    free(rc->lanes);
    for (int i = 0; i < rc->n_blocks; i++) em_aligned_free(rc->blocks[i].p);
    free(rc->blocks);
    free(rc->vals);
    free(rc->block_of);
    free(rc->memo);
    free(rc->memo_in);
    free(rc->memo_out);
    free(rc->concat_block);
    free(rc->tile_saved);
    free(rc->tile_whole);
    free(rc->tile_block);
    free(rc);
}

/* ---- kernel helpers ---- */

void em_parallel_for(em_exec *ex, int64_t n, int64_t grain, em_range_fn fn, void *ctx) {
    if (ex && ex->threads == 1) {
        if (n > 0) fn(ctx, 0, n);
        return;
    }
    struct ember_session *s = ex ? ex->rc->s : NULL;
    em_threadpool_run(s ? s->pool : NULL, s ? s->threads : 1, n, grain, fn, ctx);
}

int em_exec_threads(const em_exec *ex) {
    return ex ? (ex->threads > 0 ? ex->threads : ex->rc->s->threads) : 1;
}
uint64_t em_exec_memory_limit(const em_exec *ex) {
    return ex ? ex->rc->s->memory_limit : UINT64_MAX;
}

void *em_exec_scratch(em_exec *ex, size_t bytes, ember_error *err) {
    if (ex->n_scratch >= (int)(sizeof ex->scratch / sizeof ex->scratch[0])) {
        em_fail(err, EMBER_ERR_RUNTIME, "a kernel asked for too many scratch buffers");
        return NULL;
    }
    int b = arena_take(ex->rc, bytes, err);
    if (b < 0) return NULL;
    ex->scratch[ex->n_scratch++] = b;
    return ex->rc->blocks[b].p;
}

ember_status em_unsupported_type(const em_node *node, int input, ember_dtype dt, ember_error *err) {
    char desc[256];
    return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: input %d has type %s, which is not supported",
                   em_node_desc(node, desc, sizeof desc), input, em_dtype_name(dt));
}

ember_status em_check_input_kinds(const em_node *node, em_tensor *const *in, ember_error *err) {
    unsigned flags = node->op ? node->op->flags : 0;
    for (int k = 0; k < node->n_inputs; k++) {
        if (!in[k]) continue;
        char desc[256];
        if (in[k]->kind != EMBER_KIND_TENSOR && !(flags & EM_OP_ANY_KIND))
            return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: input %d is a %s; %s takes tensors",
                           em_node_desc(node, desc, sizeof desc), k, em_kind_name(in[k]->kind),
                           node->op_type);
        if (in[k]->kind == EMBER_KIND_TENSOR && in[k]->dtype == EMBER_STRING &&
            !(flags & EM_OP_STRINGS))
            return em_fail(err, EMBER_ERR_UNSUPPORTED,
                           "%s: input %d is a string tensor, which %s does not take",
                           em_node_desc(node, desc, sizeof desc), k, node->op_type);
    }
    return EMBER_OK;
}

ember_status em_norm_axis(const em_node *node, int64_t axis, int rank, int *out, ember_error *err) {
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= (rank > 0 ? rank : 1)) {
        char desc[256];
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: axis %lld is out of range for rank %d",
                       em_node_desc(node, desc, sizeof desc), (long long)axis, rank);
    }
    *out = (int)a;
    return EMBER_OK;
}

/* ---- running one graph ---- */

static void release_value(em_exec *ex, int v) {
    if (ex->block_of[v] >= 0) arena_release(ex->rc, ex->block_of[v]);
    ex->block_of[v] = -1;
    /* Sequences, optionals and string tensors live outside the arena: the value owns them. */
    if (em_value_boxed(&ex->vals[v]) && ex->vals[v].owns_data) em_value_release(&ex->vals[v]);
}

/* Prefix the node's description unless the kernel's message already names it. */
static ember_status wrap_node(ember_error *err, ember_status st, const em_node *n) {
    char desc[256];
    em_node_desc(n, desc, sizeof desc);
    if (err && strstr(err->message, desc)) return st;
    return em_wrap(err, st, "%s", desc);
}

/* ---- shape memo ----
 * A node's output shapes are a function of its input dtypes and shapes, plus the values of
 * inputs that carry shapes (Reshape's shape, Slice's starts, Range's limits...). Those are small
 * integer tensors or float scalars / short float vectors (Resize scales); the memo keeps the
 * values of such inputs too, so a change in them means a new infer. Only nodes whose static
 * inference at load found every output's rank qualify (em_session_prepare): by the kernel
 * contract, an infer whose shapes need input values it lacked reports rank -1 there. */

static size_t memo_value_bytes(const em_tensor *t) {
    int64_t n = em_numel(t);
    size_t es = em_dtype_size(t->dtype);
    bool small = em_dtype_is_float(t->dtype) ? n <= 8 && t->rank <= 1 : n <= 32;
    if (!small || !t->data || n * (int64_t)es > MEMO_VALUE_BYTES) return 0;
    return (size_t)n * es;
}

/* Whether input k of node n can change between runs (a graph input may override a default). */
static bool input_varies(const em_graph *g, const em_node *n, int k) {
    const em_value *v = &g->values[n->inputs[k]];
    return !v->constant || v->is_input;
}

static bool memo_hit(const em_exec *ex, const em_node *n, const node_memo *m,
                     em_tensor *const *in) {
    if (!m->valid) return false;
    for (int k = 0; k < n->n_inputs; k++) {
        const memo_input *mi = &m->in[k];
        if (!in[k]) {
            if (mi->rank != -2) return false;
            continue;
        }
        if (mi->rank != in[k]->rank || mi->dtype != in[k]->dtype) return false;
        for (int d = 0; d < mi->rank; d++)
            if (mi->dims[d] != in[k]->dims[d]) return false;
        if (mi->n_bytes && memcmp(mi->bytes, in[k]->data, mi->n_bytes) != 0) return false;
        if (!mi->n_bytes && input_varies(ex->g, n, k) && memo_value_bytes(in[k])) return false;
    }
    return true;
}

static void memo_store(const em_exec *ex, const em_node *n, node_memo *m, em_tensor *const *in,
                       const em_tensor *outs) {
    for (int k = 0; k < n->n_inputs; k++) {
        memo_input *mi = &m->in[k];
        mi->n_bytes = 0;
        if (!in[k]) {
            mi->rank = -2;
            continue;
        }
        mi->dtype = in[k]->dtype;
        mi->rank = in[k]->rank;
        memcpy(mi->dims, in[k]->dims, sizeof mi->dims);
        if (input_varies(ex->g, n, k)) {
            mi->n_bytes = (uint32_t)memo_value_bytes(in[k]);
            if (mi->n_bytes) memcpy(mi->bytes, in[k]->data, mi->n_bytes);
        }
    }
    for (int k = 0; k < n->n_outputs; k++) {
        memset(&m->out[k], 0, sizeof m->out[k]);
        em_tensor_set_shape(&m->out[k], outs[k].dtype, outs[k].dims, outs[k].rank);
    }
    m->valid = true;
}

/* ---- Concat placement (plan: em_plan_concat in planner.c) ----
 * Output v of the running node is an input of Concat node c, planned as placeable. If c's
 * shapes of the previous run (its memo) predict this output's shape, the slice is contiguous
 * (every dim before the axis is 1) and starts 64-byte aligned, the output becomes a view into
 * c's output block, taken now (ex->rc->concat_block[c]) if no earlier input of c took it.
 * When c runs with the predicted shapes (memo hit) that block becomes its output and Concat
 * finds placed inputs already at their destination; otherwise c gets a new block and copies
 * everything (views keep the early block alive until they die). */
static bool place_in_concat(em_exec *ex, int v, em_tensor *o, size_t bytes, int *block) {
    const int c = ex->concat_into[v], slot = ex->concat_slot[v];
    const em_node *cn = &ex->g->nodes[c];
    const node_memo *m = &ex->memo[c];
    if (!m->in || !m->valid) return false;
    const em_tensor *ct = &m->out[0];
    const memo_input *mi = &m->in[slot];
    if (mi->rank != o->rank || mi->dtype != o->dtype || ct->dtype != o->dtype ||
        ct->rank != o->rank || ct->rank < 1)
        return false;
    for (int d = 0; d < o->rank; d++)
        if (mi->dims[d] != o->dims[d]) return false;
    const em_attr *aa = em_node_attr(cn, "axis");
    int64_t axis = aa ? aa->i : 1;
    if (axis < 0) axis += ct->rank;
    if (axis < 0 || axis >= ct->rank) return false;
    int64_t inner = (int64_t)em_dtype_size(ct->dtype);
    for (int d = 0; d < ct->rank; d++) {
        if (d < axis && ct->dims[d] != 1) return false; /* slices would be strided */
        if (d > axis) inner *= ct->dims[d];
    }
    int64_t offset = 0;
    for (int j = 0; j < slot; j++) {
        if (m->in[j].rank != ct->rank) return false;
        offset += m->in[j].dims[axis] * inner;
    }
    size_t total = em_nbytes(ct);
    if (offset % EM_ALIGN != 0 || (uint64_t)offset + bytes > total) return false;
    em_run_ctx *rc = ex->rc;
    int b = rc->concat_block[c];
    if (b < 0) {
        ember_error ignored = {0}; /* no memory: just do not place */
        b = arena_take(rc, total, &ignored);
        if (b < 0) return false;
        rc->concat_block[c] = b;
    }
    rc->blocks[b].refs++;
    o->data = (char *)rc->blocks[b].p + offset;
    o->capacity = bytes;
    *block = b;
    rc->placed++;
    return true;
}

static ember_status run_node(em_exec *ex, int ni, ember_error *err) {
    const em_graph *g = ex->g;
    em_node *n = &g->nodes[ni];
    em_tensor *in_stack[16];
    em_tensor out_stack[8];
    int out_block_stack[8];
    em_tensor **in =
        n->n_inputs <= 16 ? in_stack : malloc(sizeof(em_tensor *) * (size_t)n->n_inputs);
    em_tensor *outs = n->n_outputs <= 8 ? out_stack : calloc((size_t)n->n_outputs, sizeof *outs);
    int *out_block =
        n->n_outputs <= 8 ? out_block_stack : malloc(sizeof(int) * (size_t)n->n_outputs);
    ember_status st = EMBER_OK;
    bool outs_ready = false;
    char desc[256];
    if (!in || !outs || !out_block) {
        st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int k = 0; k < n->n_inputs; k++)
        in[k] = n->inputs[k] >= 0 ? &ex->vals[n->inputs[k]] : NULL;
    for (int k = 0; k < n->n_outputs; k++) {
        memset(&outs[k], 0, sizeof outs[k]);
        outs[k].rank = -1;
        out_block[k] = -1;
    }
    outs_ready = true;
    node_memo *memo = ex->memo && ex->memo[ni].in ? &ex->memo[ni] : NULL;
    bool memo_was_hit = memo && memo_hit(ex, n, memo, in);
    if (memo_was_hit) {
        for (int k = 0; k < n->n_outputs; k++)
            em_tensor_set_shape(&outs[k], memo->out[k].dtype, memo->out[k].dims, memo->out[k].rank);
    } else {
        if (memo) memo->valid = false;
        st = em_check_input_kinds(n, in, err);
        if (st == EMBER_OK) st = n->op->infer(n, n->state, in, outs, err);
        if (st != EMBER_OK) {
            wrap_node(err, st, n);
            goto done;
        }
        if (memo) memo_store(ex, n, memo, in, outs);
    }
    unsigned flags = n->op->flags;
    for (int k = 0; k < n->n_outputs; k++) {
        em_tensor *o = &outs[k];
        if ((o->kind != EMBER_KIND_TENSOR && !(flags & EM_OP_ANY_KIND)) ||
            (o->kind == EMBER_KIND_TENSOR && o->dtype == EMBER_STRING &&
             !(flags & EM_OP_STRINGS))) {
            st = em_fail(err, EMBER_ERR_RUNTIME, "%s: output %d is a %s",
                         em_node_desc(n, desc, sizeof desc), k,
                         o->kind == EMBER_KIND_TENSOR ? "string tensor" : em_kind_name(o->kind));
            goto done;
        }
        if (em_value_boxed(o)) {
            o->data = NULL;
            o->capacity = 0;
            o->owns_data = false;
            if (k == 0 && (flags & EM_OP_ALIAS_INPUT0) && in[0]) {
                st = em_value_copy(o, in[0], err);
                if (st != EMBER_OK) goto done;
            }
            continue;
        }
        if (o->rank < 0 && (flags & EM_OP_DYNAMIC_OUTPUTS)) {
            o->data = NULL; /* run allocates it */
            o->capacity = 0;
            o->owns_data = false;
            continue;
        }
        int64_t numel = em_numel(o);
        if (o->rank < 0 || o->rank > EM_MAX_RANK || numel < 0 || em_dtype_size(o->dtype) == 0) {
            st = em_fail(err, EMBER_ERR_RUNTIME, "%s: output %d has no valid shape",
                         em_node_desc(n, desc, sizeof desc), k);
            goto done;
        }
        size_t es = em_dtype_size(o->dtype);
        if ((uint64_t)numel > SIZE_MAX / es) {
            st = em_fail(err, EMBER_ERR_LIMIT, "%s: output %d is too large",
                         em_node_desc(n, desc, sizeof desc), k);
            goto done;
        }
        size_t bytes = (size_t)numel * es;
        o->owns_data = false;
        if (k == 0 && ex->concat_into) {
            int early = ex->rc->concat_block[ni]; /* this is a Concat with placed inputs */
            if (early >= 0) {
                ex->rc->concat_block[ni] = -1;
                if (memo_was_hit && ex->rc->blocks[early].cap >= bytes) {
                    o->data = ex->rc->blocks[early].p;
                    o->capacity = ex->rc->blocks[early].cap;
                    out_block[k] = early;
                    continue;
                }
                arena_release(ex->rc, early);
            }
            if (n->outputs[0] >= 0 && ex->concat_into[n->outputs[0]] >= 0 &&
                ex->concat_into[n->outputs[0]] < ex->concat_limit &&
                place_in_concat(ex, n->outputs[0], o, bytes, &out_block[k]))
                continue;
        }
        if (k == 0 && (flags & EM_OP_ALIAS_INPUT0) && in[0]) {
            if (bytes > em_nbytes(in[0])) {
                st = em_fail(err, EMBER_ERR_RUNTIME, "%s: view is larger than its input",
                             em_node_desc(n, desc, sizeof desc));
                goto done;
            }
            o->data = in[0]->data;
            o->capacity = in[0]->capacity;
            int b = ex->block_of[n->inputs[0]];
            if (b >= 0) ex->rc->blocks[b].refs++;
            out_block[k] = b;
            continue;
        }
        if (k == 0 && (flags & EM_OP_INPLACE_OK) && in[0] && n->inputs[0] >= 0) {
            int v0 = n->inputs[0];
            int b = ex->block_of[v0];
            bool dies = ex->last_use[v0] == ni;
            for (int j = 1; j < n->n_inputs && dies; j++)
                if (n->inputs[j] == v0) dies = false; /* read again by this node: keep it */
            if (b >= 0 && dies && ex->rc->blocks[b].refs == 1 && ex->rc->blocks[b].cap >= bytes &&
                in[0]->dtype == o->dtype && em_numel(in[0]) == numel) {
                ex->rc->blocks[b].refs++;
                o->data = ex->rc->blocks[b].p;
                o->capacity = ex->rc->blocks[b].cap;
                out_block[k] = b;
                continue;
            }
        }
        int b = arena_take(ex->rc, bytes, err);
        if (b < 0) {
            st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            em_wrap(err, st, "%s", em_node_desc(n, desc, sizeof desc));
            goto done;
        }
        out_block[k] = b;
        o->data = ex->rc->blocks[b].p;
        o->capacity = ex->rc->blocks[b].cap;
    }
    if (n->op->run) {
        ex->n_scratch = 0;
        st = n->op->run(n, n->state, in, outs, ex, err);
        for (int k = 0; k < ex->n_scratch; k++) arena_release(ex->rc, ex->scratch[k]);
        ex->n_scratch = 0;
        if (st != EMBER_OK) {
            wrap_node(err, st, n);
            goto done;
        }
    }
    /* Outputs a dynamic kernel allocated become arena blocks. */
    unsigned boxing = EM_OP_DYNAMIC_OUTPUTS | EM_OP_ANY_KIND | EM_OP_STRINGS;
    for (int k = 0; k < n->n_outputs && (flags & boxing); k++) {
        em_tensor *o = &outs[k];
        if (em_value_boxed(o)) {
            bool needs_data =
                o->kind == EMBER_KIND_SEQUENCE || (o->kind == EMBER_KIND_TENSOR && o->rank >= 0);
            if (n->outputs[k] >= 0 && needs_data && !o->data) {
                st = em_fail(err, EMBER_ERR_RUNTIME, "%s: output %d was not produced",
                             em_node_desc(n, desc, sizeof desc), k);
                goto done;
            }
            if (o->data && !o->owns_data) { /* borrowed: give the value its own copy */
                em_tensor borrowed = *o;
                st = em_value_copy(o, &borrowed, err);
                if (st != EMBER_OK) goto done;
            }
            continue;
        }
        if (!(flags & EM_OP_DYNAMIC_OUTPUTS)) continue;
        if (o->owns_data) {
            o->owns_data = false;
            out_block[k] = arena_adopt(ex->rc, o->data, o->capacity, err);
            if (out_block[k] < 0) {
                o->data = NULL;
                st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
                em_wrap(err, st, "%s", em_node_desc(n, desc, sizeof desc));
                goto done;
            }
        }
        if (n->outputs[k] >= 0 && (o->rank < 0 || em_numel(o) < 0 || (!o->data && em_numel(o)))) {
            st = em_fail(err, EMBER_ERR_RUNTIME, "%s: output %d was not produced",
                         em_node_desc(n, desc, sizeof desc), k);
            goto done;
        }
    }
    /* Publish outputs; release what died here. */
    for (int k = 0; k < n->n_outputs; k++) {
        int v = n->outputs[k];
        if (v < 0 || ex->last_use[v] < 0) {
            arena_release(ex->rc, out_block[k]);
            out_block[k] = -1;
            if (em_value_boxed(&outs[k])) em_value_release(&outs[k]);
            if (v < 0) continue;
        }
        ex->vals[v] = outs[k];
        ex->block_of[v] = out_block[k];
        out_block[k] = -1;
    }
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        if (v < 0 || ex->last_use[v] != ni) continue;
        bool first = true;
        for (int j = 0; j < k; j++)
            if (n->inputs[j] == v) first = false;
        if (first) release_value(ex, v);
    }
done:
    if (st != EMBER_OK && out_block)
        for (int k = 0; k < n->n_outputs; k++) arena_release(ex->rc, out_block[k]);
    for (int k = 0; st != EMBER_OK && outs_ready && k < n->n_outputs; k++)
        if (outs[k].owns_data) em_value_release(&outs[k]); /* not adopted yet */
    if (in != in_stack) free(in);
    if (outs != out_stack) free(outs);
    if (out_block != out_block_stack) free(out_block);
    return st;
}

static ember_status run_frame(em_exec *ex, ember_error *err) {
    for (int i = 0; i < ex->g->n_nodes; i++) EM_TRY(run_node(ex, i, err));
    return EMBER_OK;
}

/* ---- batch tiling (plan: em_plan_tiling in plan_tiling.c) ----
 * The planned front of the graph runs once per chunk of the batch, on views of the graph
 * inputs, so that its activations stay in L2 from one node to the next; values crossing the
 * cut are gathered into whole-batch buffers, then the rest of the graph runs once. */

/* Samples per chunk and thread: about this many bytes of the front's largest value (the L2 of
 * one core), at least one; tests may change the session's tile_bytes. A chunk holds a share
 * for every thread: kernels split small chunks over threads badly. Measured at batch 8 / 32,
 * 1 and 2 threads, on MobileNetV2, SqueezeNet 1.1 and ResNet-18 at 224x224 and smaller inputs
 * (96 to 128): 1, 2, 4, 8 and 16 MiB per thread; 4 MiB was best or within 4% of the best in
 * every case, 1 MiB was up to 10% slower than no tiling on 2 threads (ResNet-18 at 112x112,
 * MobileNetV2 at 96x96). At 224x224 every choice up to 4 MiB gave chunks of one sample per
 * thread. Since the RGB layer and its MaxPool fused (and MobileNet's blocks), the largest
 * value of a sample is smaller (SqueezeNet 1.5 MB, ResNet-18 0.8 MB) and 4 MiB made chunks of
 * two and five samples: SqueezeNet at batch 8 ran 5-8% slower than with one; 2 MiB restores
 * it and MobileNetV2, and costs ResNet-18 2-4% (measured at 224x224 only). */
#define TILE_BYTES (2u << 20)

/* Number of chunks for this run (1: run as a whole), and the batch in *batch; *lane_chunks:
 * the number of chunks of one thread's share each, for running chunks on separate threads. */
static int64_t tile_chunks(const em_exec *ex, int64_t *batch, int64_t *lane_chunks) {
    const struct ember_session *s = ex->rc->s;
    const em_plan *p = &s->plan;
    *lane_chunks = 1;
    if (p->tile_cut <= 0 || p->n_tile_inputs <= 0 || p->tile_sample_bytes <= 0) return 1;
    int64_t b = -1;
    for (int i = 0; i < p->n_tile_inputs; i++) {
        const em_tensor *t = &ex->vals[p->tile_inputs[i]];
        if (em_value_boxed(t) || t->rank < 1 || !t->data || em_nbytes(t) == 0) return 1;
        if (b < 0)
            b = t->dims[0];
        else if (t->dims[0] != b)
            return 1;
    }
    for (int i = 0; i < p->n_tile_fixed; i++) { /* the caller replaced a weight: no plan */
        int v = p->tile_fixed[i];
        if (ex->vals[v].data != s->graph->values[v].constant->data) return 1;
    }
    uint64_t per = s->tile_bytes / (uint64_t)p->tile_sample_bytes;
    if (per < 1) per = 1;
    if (b < 2) return 1;
    *batch = b;
    *lane_chunks = per < (uint64_t)b ? (b + (int64_t)per - 1) / (int64_t)per : 1;
    uint64_t threads = s->threads > 1 ? (uint64_t)s->threads : 1;
    per = per > (uint64_t)INT64_MAX / threads ? (uint64_t)INT64_MAX : per * threads;
    if (per >= (uint64_t)b) return 1;
    return (b + (int64_t)per - 1) / (int64_t)per;
}

/* Copy crossing value k of a chunk of `count` samples from `start` into its whole-batch buffer,
 * then release the chunk's value. The buffer was taken before the first chunk from the static
 * shape (taking it first keeps the arena's layout the same from run to run); the first chunk
 * sets its shape, and takes another buffer if the static shape was not the real one. */
static ember_status gather_crossing(em_exec *ex, int k, int64_t start, int64_t count, int64_t batch,
                                    ember_error *err) {
    em_run_ctx *rc = ex->rc;
    int v = rc->s->plan.tile_cross[k];
    const em_tensor *t = &ex->vals[v];
    em_tensor *whole = &rc->tile_whole[k];
    if (em_value_boxed(t) || t->rank < 1 || t->dims[0] != count || (!t->data && em_numel(t)))
        return em_fail(err, EMBER_ERR_RUNTIME,
                       "batch tiling: value '%s' does not keep the batch in dim 0",
                       ex->g->values[v].name);
    size_t sample = em_nbytes(t) / (size_t)count;
    if (start == 0) {
        em_tensor_set_shape(whole, t->dtype, t->dims, t->rank);
        whole->dims[0] = batch;
        int b = rc->tile_block[k];
        if (sample && (size_t)batch > SIZE_MAX / sample)
            return em_fail(err, EMBER_ERR_LIMIT, "value '%s' is too large for the batch",
                           ex->g->values[v].name);
        if (b < 0 || rc->blocks[b].cap < sample * (size_t)batch) {
            arena_release(rc, b);
            rc->tile_block[k] = -1;
            b = arena_take(rc, sample * (size_t)batch, err);
            if (b < 0) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            rc->tile_block[k] = b;
        }
        whole->data = rc->blocks[b].p;
        whole->capacity = rc->blocks[b].cap;
    } else {
        bool same = t->dtype == whole->dtype && t->rank == whole->rank;
        for (int d = 1; same && d < t->rank; d++) same = t->dims[d] == whole->dims[d];
        if (!same)
            return em_fail(err, EMBER_ERR_RUNTIME,
                           "batch tiling: value '%s' changes shape between chunks",
                           ex->g->values[v].name);
    }
    if (sample)
        memcpy((char *)whole->data + (size_t)start * sample, t->data, sample * (size_t)count);
    release_value(ex, v);
    ex->vals[v].rank = -1;
    return EMBER_OK;
}

/* Bind the tiled graph inputs of frame ex to samples [start, start + count) of the whole
 * batch saved in rc->tile_saved. */
static void bind_chunk(em_exec *ex, const em_run_ctx *rc, int64_t batch, int64_t start,
                       int64_t count) {
    const em_plan *p = &rc->s->plan;
    for (int i = 0; i < p->n_tile_inputs; i++) {
        const em_tensor *whole = &rc->tile_saved[i];
        size_t sample = em_nbytes(whole) / (size_t)batch;
        em_tensor *view = &ex->vals[p->tile_inputs[i]];
        *view = *whole;
        view->owns_data = false;
        view->dims[0] = count;
        view->data = (char *)whole->data + (size_t)start * sample;
        view->capacity = sample * (size_t)count;
    }
}

/* After the front: the graph inputs back to the whole batch and, when it succeeded, the
 * crossing values to their whole-batch buffers (released on failure). */
static void finish_front(em_exec *ex, ember_status st) {
    em_run_ctx *rc = ex->rc;
    const em_plan *p = &rc->s->plan;
    for (int i = 0; i < p->n_tile_inputs; i++) ex->vals[p->tile_inputs[i]] = rc->tile_saved[i];
    for (int k = 0; k < p->n_tile_cross; k++) {
        int b = rc->tile_block[k];
        rc->tile_block[k] = -1;
        if (st != EMBER_OK) {
            arena_release(rc, b);
            continue;
        }
        int v = p->tile_cross[k];
        ex->vals[v] = rc->tile_whole[k];
        ex->block_of[v] = b;
    }
}

static ember_status run_tiled(em_exec *ex, int64_t batch, int64_t n_chunks, ember_error *err) {
    em_run_ctx *rc = ex->rc;
    const em_plan *p = &rc->s->plan;
    const int cut = p->tile_cut;
    for (int i = 0; i < p->n_tile_inputs; i++) rc->tile_saved[i] = ex->vals[p->tile_inputs[i]];
    ember_status st = EMBER_OK;
    for (int k = 0; k < p->n_tile_cross; k++) {
        const em_tensor *info = &ex->g->values[p->tile_cross[k]].info;
        int64_t sample = info->rank >= 1 ? em_shape_numel(info->dims + 1, info->rank - 1) : -1;
        rc->tile_block[k] = -1;
        size_t bytes = sample > 0 ? (size_t)sample * em_dtype_size(info->dtype) : 0;
        if (st != EMBER_OK || bytes == 0 || (size_t)batch > SIZE_MAX / bytes)
            continue; /* taken (or refused) at the first chunk */
        rc->tile_block[k] = arena_take(rc, bytes * (size_t)batch, err);
        if (rc->tile_block[k] < 0) st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    }
    /* A Concat after the cut sees whole-batch inputs, never a chunk's. */
    ex->concat_limit = cut;
    int64_t start = 0;
    for (int64_t j = 0; j < n_chunks && st == EMBER_OK; j++) {
        /* Equal chunks (sizes differ by at most one), so node shape memos mostly hit. */
        int64_t count = batch / n_chunks + (j < batch % n_chunks);
        bind_chunk(ex, rc, batch, start, count);
        for (int i = 0; i < cut && st == EMBER_OK; i++) st = run_node(ex, i, err);
        for (int k = 0; k < p->n_tile_cross && st == EMBER_OK; k++)
            st = gather_crossing(ex, k, start, count, batch, err);
        start += count;
        rc->chunks++;
    }
    ex->concat_limit = ex->g->n_nodes;
    finish_front(ex, st);
    for (int i = cut; i < ex->g->n_nodes && st == EMBER_OK; i++) st = run_node(ex, i, err);
    return st;
}

/* ---- batch tiling on several threads: one chunk per thread at a time ----
 * Kernels split a small chunk over threads badly (a layer's work is cut into pieces with a
 * synchronization each); instead each thread ("lane") runs whole chunks of the front on its
 * own run context (value table, arena, shape memos), single-threaded, and writes the values
 * crossing the cut into the whole-batch buffers of the main context (disjoint samples). Needs
 * the crossing values' per-sample shapes known at load, so the buffers exist before any lane
 * starts; otherwise the chunks run one after another (run_tiled). */

static ember_status frame_init(em_exec *ex, em_run_ctx *rc, const em_graph *g, const int *last_use,
                               bool root, ember_error *err);
static void frame_free(em_exec *ex);

typedef struct lanes_job {
    em_exec *main;
    int64_t batch, n_chunks;
    int n_lanes;
} lanes_job;

static int64_t chunk_start(int64_t batch, int64_t n_chunks, int64_t j) {
    return j * (batch / n_chunks) + (j < batch % n_chunks ? j : batch % n_chunks);
}

/* Chunks lane, lane + n_lanes, ... of the front on frame ex (counted in ex->rc->chunks). */
static ember_status lane_chunks_run(const lanes_job *job, em_exec *ex, int lane, ember_error *err) {
    em_run_ctx *main_rc = job->main->rc;
    const em_plan *p = &main_rc->s->plan;
    const int cut = p->tile_cut;
    for (int64_t j = lane; j < job->n_chunks; j += job->n_lanes) {
        const int64_t start = chunk_start(job->batch, job->n_chunks, j);
        const int64_t count = chunk_start(job->batch, job->n_chunks, j + 1) - start;
        bind_chunk(ex, main_rc, job->batch, start, count);
        for (int i = 0; i < cut; i++) EM_TRY(run_node(ex, i, err));
        for (int k = 0; k < p->n_tile_cross; k++) {
            int v = p->tile_cross[k];
            const em_tensor *t = &ex->vals[v];
            const em_tensor *whole = &main_rc->tile_whole[k];
            bool same = !em_value_boxed(t) && t->dtype == whole->dtype && t->rank == whole->rank &&
                        t->dims[0] == count && (t->data || !em_numel(t));
            for (int d = 1; same && d < t->rank; d++) same = t->dims[d] == whole->dims[d];
            if (!same)
                return em_fail(err, EMBER_ERR_RUNTIME,
                               "batch tiling: value '%s' does not have its planned shape",
                               ex->g->values[v].name);
            size_t sample = em_nbytes(whole) / (size_t)job->batch;
            if (sample)
                memcpy((char *)whole->data + (size_t)start * sample, t->data,
                       sample * (size_t)count);
            release_value(ex, v);
            ex->vals[v].rank = -1;
        }
        ex->rc->chunks++;
    }
    return EMBER_OK;
}

static bool is_tile_input(const em_plan *p, int v) {
    for (int i = 0; i < p->n_tile_inputs; i++)
        if (p->tile_inputs[i] == v) return true;
    return false;
}

static void lanes_range(void *ctx, int64_t begin, int64_t end) {
    lanes_job *job = ctx;
    em_exec *main = job->main;
    const em_plan *p = &main->rc->s->plan;
    for (int64_t lane = begin; lane < end; lane++) {
        if (lane == 0) {
            main->threads = 1;
            main->rc->lane_status = lane_chunks_run(job, main, 0, &main->rc->lane_error);
            main->threads = 0;
            continue;
        }
        em_run_ctx *rc = main->rc->lanes[lane - 1];
        ember_error *err = &rc->lane_error;
        const em_graph *g = main->g;
        em_exec ex;
        rc->chunks = 0;
        ember_status st = frame_init(&ex, rc, g, main->last_use, true, err);
        if (st == EMBER_OK) {
            ex.threads = 1;
            ex.concat_limit = p->tile_cut;
            rc->peak_bytes = rc->arena_bytes;
            /* The caller's other inputs; the tiled ones, which lane 0 rebinds in the main
             * frame meanwhile, are bound per chunk from tile_saved. */
            for (int i = 0; i < g->n_inputs; i++) {
                if (is_tile_input(p, g->inputs[i])) continue;
                ex.vals[g->inputs[i]] = main->vals[g->inputs[i]];
                ex.vals[g->inputs[i]].owns_data = false;
            }
            st = lane_chunks_run(job, &ex, (int)lane, err);
            frame_free(&ex);
            for (int i = 0; i < g->n_inputs; i++) /* no reference to the caller's data left */
                ex.vals[g->inputs[i]] = (em_tensor){.rank = -1};
        }
        arena_trim(rc);
        rc->lane_status = st;
    }
}

/* EMBER_OK after running the whole graph; EMBER_ERR_UNSUPPORTED (with nothing run) when the
 * lanes cannot be used for this run: the caller then runs the chunks one after another. */
static ember_status run_tiled_lanes(em_exec *ex, int64_t batch, int64_t n_chunks,
                                    ember_error *err) {
    em_run_ctx *rc = ex->rc;
    struct ember_session *s = rc->s;
    const em_plan *p = &s->plan;
    const int cut = p->tile_cut, n_lanes = s->threads;
    /* Whole-batch buffers from the static per-sample shapes. */
    for (int k = 0; k < p->n_tile_cross; k++) {
        const em_tensor *info = &ex->g->values[p->tile_cross[k]].info;
        int64_t sample = info->rank >= 1 ? em_shape_numel(info->dims + 1, info->rank - 1) : -1;
        if (info->kind != EMBER_KIND_TENSOR || info->dtype == EMBER_UNDEFINED || sample < 0 ||
            (sample > 0 &&
             (size_t)batch > SIZE_MAX / ((size_t)sample * em_dtype_size(info->dtype))))
            return EMBER_ERR_UNSUPPORTED;
    }
    if (rc->n_lanes < n_lanes - 1) {
        em_run_ctx **l = realloc(rc->lanes, sizeof *l * (size_t)(n_lanes - 1));
        if (!l) return EMBER_ERR_UNSUPPORTED;
        rc->lanes = l;
        while (rc->n_lanes < n_lanes - 1) {
            em_run_ctx *lane = em_run_ctx_new(s);
            if (!lane) return EMBER_ERR_UNSUPPORTED;
            rc->lanes[rc->n_lanes++] = lane;
        }
    }
    ember_status st = EMBER_OK;
    for (int k = 0; k < p->n_tile_cross && st == EMBER_OK; k++) {
        const em_tensor *info = &ex->g->values[p->tile_cross[k]].info;
        em_tensor *whole = &rc->tile_whole[k];
        em_tensor_set_shape(whole, info->dtype, info->dims, info->rank);
        whole->dims[0] = batch;
        size_t bytes = em_nbytes(whole);
        rc->tile_block[k] = arena_take(rc, bytes, err);
        if (rc->tile_block[k] < 0) {
            st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            break;
        }
        whole->data = rc->blocks[rc->tile_block[k]].p;
        whole->capacity = rc->blocks[rc->tile_block[k]].cap;
    }
    for (int i = 0; i < p->n_tile_inputs; i++) rc->tile_saved[i] = ex->vals[p->tile_inputs[i]];
    if (st == EMBER_OK) {
        lanes_job job = {.main = ex, .batch = batch, .n_chunks = n_chunks, .n_lanes = n_lanes};
        ex->concat_limit = cut;
        em_threadpool_run(s->pool, n_lanes, n_lanes, 1, lanes_range, &job);
        ex->concat_limit = ex->g->n_nodes;
        for (int l = 0; l < n_lanes; l++) {
            em_run_ctx *lane = l == 0 ? rc : rc->lanes[l - 1];
            if (l > 0) rc->chunks += lane->chunks;
            if (st == EMBER_OK && lane->lane_status != EMBER_OK) {
                st = lane->lane_status;
                if (err) *err = lane->lane_error;
            }
        }
    }
    finish_front(ex, st);
    for (int i = cut; i < ex->g->n_nodes && st == EMBER_OK; i++) st = run_node(ex, i, err);
    return st;
}

/* A frame over graph g. With rc->vals (the root graph of a session) the run context's value
 * table is used as is; otherwise (subgraphs, constant folding) a new one is made. */
static ember_status frame_init(em_exec *ex, em_run_ctx *rc, const em_graph *g, const int *last_use,
                               bool root, ember_error *err) {
    memset(ex, 0, sizeof *ex);
    ex->rc = rc;
    ex->g = g;
    ex->last_use = last_use;
    if (root && rc->vals) {
        ex->vals = rc->vals;
        ex->block_of = rc->block_of;
        ex->memo = rc->memo;
        ex->concat_into = rc->s->plan.concat_into;
        ex->concat_slot = rc->s->plan.concat_slot;
        ex->concat_limit = g->n_nodes;
        for (int i = 0; ex->concat_into && i < g->n_nodes; i++) rc->concat_block[i] = -1;
        rc->placed = 0;
        return EMBER_OK;
    }
    ex->owns_frame = true;
    ex->vals = malloc(sizeof(em_tensor) * ((size_t)g->n_values + 1));
    ex->block_of = malloc(sizeof(int) * ((size_t)g->n_values + 1));
    if (!ex->vals || !ex->block_of) {
        free(ex->vals);
        free(ex->block_of);
        ex->block_of = NULL;
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    frame_reset_values(g, ex->vals, ex->block_of);
    return EMBER_OK;
}

static void frame_free(em_exec *ex) {
    if (ex->block_of)
        for (int v = 0; v < ex->g->n_values; v++) release_value(ex, v);
    if (!ex->owns_frame) return;
    free(ex->vals);
    free(ex->block_of);
}

static ember_status check_input(const em_graph *g, int v, const em_tensor *t, ember_error *err) {
    const em_value *val = &g->values[v];
    const em_tensor *decl = &val->info;
    char a[128], b[128];
    if (t->kind != decl->kind ||
        (t->kind == EMBER_KIND_OPTIONAL && t->elem_kind != decl->elem_kind))
        return em_fail(err, EMBER_ERR_SHAPE, "input '%s' is a %s, the model expects %s", val->name,
                       em_shape_str(t, a, sizeof a), em_shape_str(decl, b, sizeof b));
    if (t->kind != EMBER_KIND_TENSOR) {
        bool known = decl->dtype != EMBER_UNDEFINED && t->dtype != EMBER_UNDEFINED;
        if (known && t->dtype != decl->dtype)
            return em_fail(err, EMBER_ERR_SHAPE, "input '%s' is a %s, the model expects %s",
                           val->name, em_shape_str(t, a, sizeof a),
                           em_shape_str(decl, b, sizeof b));
        return EMBER_OK;
    }
    if (decl->dtype != EMBER_UNDEFINED && t->dtype != decl->dtype)
        return em_fail(err, EMBER_ERR_SHAPE, "input '%s' has type %s, the model expects %s",
                       val->name, em_dtype_name(t->dtype), em_dtype_name(decl->dtype));
    if (decl->rank >= 0) {
        bool ok = decl->rank == t->rank;
        for (int d = 0; ok && d < t->rank; d++)
            if (decl->dims[d] >= 0 && decl->dims[d] != t->dims[d]) ok = false;
        if (!ok)
            return em_fail(err, EMBER_ERR_SHAPE, "input '%s' has shape %s, the model expects %s",
                           val->name, em_shape_str(t, a, sizeof a),
                           em_shape_str(decl, b, sizeof b));
    }
    return EMBER_OK;
}

/* Give output value v to the caller in *out: the arena block itself when only v holds it
 * and it is not much larger than the tensor (no copy), else a copy. */
static ember_status hand_over(em_exec *ex, int v, bool shared, em_tensor *out, ember_error *err) {
    const em_tensor *t = &ex->vals[v];
    int b = ex->block_of[v];
    em_run_ctx *rc = ex->rc;
    if (em_value_boxed(t)) {
        if (!shared && t->owns_data) { /* move */
            *out = *t;
            ex->vals[v].data = NULL;
            ex->vals[v].owns_data = false;
            return EMBER_OK;
        }
        return em_value_copy(out, t, err);
    }
    size_t bytes = em_nbytes(t);
    if (!shared && b >= 0 && rc->blocks[b].refs == 1 && rc->blocks[b].p == t->data &&
        rc->blocks[b].cap <= 2 * bytes + 4096) {
        *out = *t;
        out->capacity = rc->blocks[b].cap;
        out->owns_data = true;
        rc->arena_bytes -= rc->blocks[b].cap;
        rc->blocks[b] = (em_block){0};
        ex->block_of[v] = -1;
        return EMBER_OK;
    }
    *out = *t;
    out->capacity = bytes ? bytes : 1;
    out->data = em_aligned_alloc(out->capacity);
    out->owns_data = true;
    if (!out->data)
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory allocating %zu bytes", bytes);
    if (bytes) memcpy(out->data, t->data, bytes);
    return EMBER_OK;
}

ember_status em_execute(struct ember_session *s, em_run_ctx *rc, em_tensor *const *inputs,
                        const int *output_values, int n_outputs, em_tensor *outputs,
                        ember_error *err) {
    const em_graph *g = s->graph;
    for (int k = 0; k < n_outputs; k++) outputs[k] = (em_tensor){.rank = -1};
    em_exec ex;
    EM_TRY(frame_init(&ex, rc, g, s->plan.last_use, true, err));
    rc->peak_bytes = rc->arena_bytes;
    ember_status st = EMBER_OK;
    for (int i = 0; i < g->n_inputs && st == EMBER_OK; i++) {
        int v = g->inputs[i];
        if (!inputs[i]) {
            if (!g->values[v].constant) {
                st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "required input '%s' is missing",
                             g->values[v].name);
                continue;
            }
            ex.vals[v] = *g->values[v].constant; /* the default (an earlier run may have set it) */
            ex.vals[v].owns_data = false;
            continue;
        }
        st = check_input(g, v, inputs[i], err);
        ex.vals[v] = *inputs[i];
        ex.vals[v].owns_data = false;
    }
    rc->chunks = 0;
    if (st == EMBER_OK) {
        int64_t batch = 0, lane_chunks = 1, chunks = tile_chunks(&ex, &batch, &lane_chunks);
        bool ran = false;
        if (s->threads > 1 && s->pool && lane_chunks >= s->threads) {
            st = run_tiled_lanes(&ex, batch, lane_chunks, err);
            ran = st != EMBER_ERR_UNSUPPORTED;
            if (!ran) st = EMBER_OK;
        }
        if (!ran) st = chunks > 1 ? run_tiled(&ex, batch, chunks, err) : run_frame(&ex, err);
    }
    for (int k = 0; k < n_outputs && st == EMBER_OK; k++) {
        bool shared = false; /* the same output asked for twice */
        for (int j = 0; j < n_outputs; j++)
            if (j != k && output_values[j] == output_values[k]) shared = true;
        st = hand_over(&ex, output_values[k], shared, &outputs[k], err);
    }
    if (st != EMBER_OK)
        for (int k = 0; k < n_outputs; k++) {
            em_value_release(&outputs[k]);
            outputs[k] = (em_tensor){.rank = -1};
        }
    frame_free(&ex);
    rc->last_placed = rc->placed;
    rc->last_chunks = rc->chunks;
    arena_trim(rc);
    return st;
}

ember_status em_exec_subgraph(em_exec *parent, const em_graph *g, em_tensor *const *inputs,
                              int n_inputs, em_tensor *const *captures, em_tensor **outputs,
                              ember_error *err) {
    for (int k = 0; k < g->n_outputs; k++) outputs[k] = NULL;
    if (n_inputs != g->n_inputs)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "subgraph '%s' takes %d inputs, got %d",
                       g->name, g->n_inputs, n_inputs);
    em_plan plan;
    EM_TRY(em_plan_build(g, &plan, err));
    em_exec ex;
    ember_status st = frame_init(&ex, parent->rc, g, plan.last_use, false, err);
    if (st != EMBER_OK) {
        em_plan_free(&plan);
        return st;
    }
    for (int i = 0; i < n_inputs; i++) {
        if (!inputs[i]) continue;
        em_tensor *slot = &ex.vals[g->inputs[i]];
        const em_tensor *decl = &g->values[g->inputs[i]].info;
        if (decl->kind == EMBER_KIND_OPTIONAL && inputs[i]->kind != EMBER_KIND_OPTIONAL) {
            /* A body input declared optional that receives a plain value (a Loop whose body
             * turns an optional carried value into a sequence): it holds that value. */
            *slot = (em_tensor){.kind = EMBER_KIND_OPTIONAL,
                                .elem_kind = inputs[i]->kind,
                                .dtype = inputs[i]->dtype,
                                .data = inputs[i]};
            continue;
        }
        *slot = *inputs[i];
        slot->owns_data = false;
    }
    for (int i = 0; i < g->n_captures; i++) {
        if (!captures[i]) continue;
        ex.vals[g->captures[i]] = *captures[i];
        ex.vals[g->captures[i]].owns_data = false;
    }
    st = run_frame(&ex, err);
    for (int k = 0; k < g->n_outputs && st == EMBER_OK; k++) {
        const em_tensor *t = &ex.vals[g->outputs[k]];
        if (t->rank < 0 || (!t->data && em_numel(t) != 0) ||
            (t->kind == EMBER_KIND_SEQUENCE && !t->data)) {
            st = em_fail(err, EMBER_ERR_RUNTIME, "subgraph '%s': output %d was not computed",
                         g->name, k);
            break;
        }
        outputs[k] = em_tensor_clone(t, err);
        if (!outputs[k]) st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    }
    if (st != EMBER_OK)
        for (int k = 0; k < g->n_outputs; k++) {
            em_tensor_free(outputs[k]);
            outputs[k] = NULL;
        }
    frame_free(&ex);
    em_plan_free(&plan);
    return st;
}

/* ---- session preparation: kernel create, per node ---- */

static ember_status create_kernels(em_graph *g, const char *what, ember_error *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        if (!n->op) {
            n->op = em_registry_find(n->domain, n->op_type, n->opset);
            if (!n->op) {
                char desc[256];
                return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: %s: no kernel", what,
                               em_node_desc(n, desc, sizeof desc));
            }
        }
        for (int a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g) EM_TRY(create_kernels(n->attrs[a].g, what, err));
            for (int64_t k = 0; n->attrs[a].graphs && k < n->attrs[a].n; k++)
                EM_TRY(create_kernels(n->attrs[a].graphs[k], what, err));
        }
        if (n->op->create) {
            ember_status st = n->op->create(g, n, &n->state, err);
            if (st != EMBER_OK) {
                char desc[256];
                return em_wrap(err, st, "%s: %s", what, em_node_desc(n, desc, sizeof desc));
            }
        }
    }
    return EMBER_OK;
}

void em_session_release_kernels(em_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        for (int a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g) em_session_release_kernels(n->attrs[a].g);
            for (int64_t k = 0; n->attrs[a].graphs && k < n->attrs[a].n; k++)
                em_session_release_kernels(n->attrs[a].graphs[k]);
        }
        if (n->state && n->op && n->op->destroy) n->op->destroy(n->state);
        n->state = NULL;
    }
}

/* Nodes whose output shapes may be memoized per input signature (see memo_hit): plain
 * kernels (no subgraphs, no kernel-allocated outputs) whose outputs all got a rank at load. */
static ember_status plan_memo(const em_graph *g, em_plan *plan, ember_error *err) {
    plan->memo_ok = calloc((size_t)g->n_nodes + 1, 1);
    if (!plan->memo_ok) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        bool ok = n->n_inputs == n->n_explicit_inputs &&
                  !(n->op->flags & (EM_OP_DYNAMIC_OUTPUTS | EM_OP_ANY_KIND));
        for (int a = 0; a < n->n_attrs && ok; a++)
            if (n->attrs[a].g || n->attrs[a].graphs) ok = false;
        for (int k = 0; k < n->n_outputs && ok; k++) {
            int v = n->outputs[k];
            if (v >= 0 &&
                (g->values[v].info.rank < 0 || g->values[v].info.dtype == EMBER_UNDEFINED))
                ok = false;
        }
        plan->memo_ok[i] = ok;
    }
    return EMBER_OK;
}

ember_status em_session_prepare(struct ember_session *s, ember_error *err) {
    EM_TRY(create_kernels(s->graph, s->model->path, err));
    EM_TRY(em_plan_build(s->graph, &s->plan, err));
    EM_TRY(plan_memo(s->graph, &s->plan, err));
    /* Placement changes no value, but "run the graph as written" keeps every copy. */
    if (s->opt_level >= EMBER_OPT_BASIC) EM_TRY(em_plan_concat(s->graph, &s->plan, err));
    /* Tiling changes no value either, but it changes the shapes kernels see; off with the
     * other rewrites below EMBER_OPT_ALL. */
    s->tile_bytes = TILE_BYTES;
    if (s->opt_level >= EMBER_OPT_ALL && s->batch_tiling)
        EM_TRY(em_plan_tiling(s->graph, &s->plan, err));
    return EMBER_OK;
}

/* Liveness of subgraph values is computed per call; nothing else to plan here. */

/* ---- constant folding support: run one node on constant inputs, single-threaded ---- */

ember_status em_fold_node(const em_graph *g, em_node *n, em_tensor **outputs, ember_error *err) {
    struct ember_session dummy;
    memset(&dummy, 0, sizeof dummy);
    /* Folding runs at session creation, outside any run's memory limit: a ConstantOfShape
     * or Expand of a constant shape could otherwise demand terabytes. The optimizer keeps
     * only results no larger than max(1 MiB, inputs), so this cap changes no outcome. */
    uint64_t in_bytes = 0;
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0 && g->values[n->inputs[k]].constant)
            in_bytes += em_nbytes(g->values[n->inputs[k]].constant);
    dummy.memory_limit = 2 * in_bytes + (16u << 20);
    dummy.threads = 1;
    em_run_ctx rc = {.s = &dummy};
    for (int k = 0; k < n->n_outputs; k++) outputs[k] = NULL;
    ember_status st = EMBER_OK;
    void *state = NULL;
    if (n->op->create) st = n->op->create(g, n, &state, err);
    if (st != EMBER_OK) return st;
    /* A one-node frame over the parent's values. */
    int *last_use = malloc(sizeof(int) * ((size_t)g->n_values + 1));
    em_exec ex;
    if (!last_use) {
        if (state && n->op->destroy) n->op->destroy(state);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int v = 0; v < g->n_values; v++) last_use[v] = 1; /* keep everything alive */
    st = frame_init(&ex, &rc, g, last_use, false, err);
    if (st == EMBER_OK) {
        void *saved = n->state;
        n->state = state;
        int ni = (int)(n - g->nodes);
        st = run_node(&ex, ni, err);
        n->state = saved;
        for (int k = 0; k < n->n_outputs && st == EMBER_OK; k++) {
            if (n->outputs[k] < 0) continue;
            outputs[k] = em_tensor_clone(&ex.vals[n->outputs[k]], err);
            if (!outputs[k]) st = EMBER_ERR_OUT_OF_MEMORY;
        }
        frame_free(&ex);
    }
    if (st != EMBER_OK)
        for (int k = 0; k < n->n_outputs; k++) {
            em_tensor_free(outputs[k]);
            outputs[k] = NULL;
        }
    for (int i = 0; i < rc.n_blocks; i++) em_aligned_free(rc.blocks[i].p);
    free(rc.blocks);
    free(last_use);
    if (state && n->op->destroy) n->op->destroy(state);
    return st;
}

int em_session_concat_placed(struct ember_session *s) {
    int best = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_idle; i++)
        if (s->idle[i]->last_placed > best) best = s->idle[i]->last_placed;
    pthread_mutex_unlock(&s->lock);
    return best;
}

int em_session_tile_chunks(struct ember_session *s) {
    int best = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_idle; i++)
        if (s->idle[i]->last_chunks > best) best = s->idle[i]->last_chunks;
    pthread_mutex_unlock(&s->lock);
    return best;
}

uint64_t em_session_arena_bytes(struct ember_session *s) {
    uint64_t best = 0;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->n_idle; i++)
        if (s->idle[i]->peak_bytes > best) best = s->idle[i]->peak_bytes;
    pthread_mutex_unlock(&s->lock);
    return best;
}
