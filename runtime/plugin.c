/* Custom operators through the public API: an adapter em_op wraps each ember_kernel, so
 * plugin kernels and built-in ones run through the same executor path. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "model.h"

typedef struct plugin_op {
    em_op op; /* first: node->op points here */
    ember_kernel k;
} plugin_op;

typedef struct plugin_state {
    const plugin_op *pop;
    void *user;
} plugin_state;

/* What a callback sees: the node, and the graph (create) or the run (run) when there is one. */
struct ember_op_context {
    const em_node *node;
    const em_graph *graph;
    em_exec *exec;
};

static ember_op_context ctx_of(const em_node *n, const em_graph *g, em_exec *ex) {
    return (ember_op_context){n, g, ex};
}
static const em_node *node_of(const ember_op_context *c) { return c->node; }

const em_node *em_op_context_node(const ember_op_context *c) { return c->node; }
const em_graph *em_op_context_graph(const ember_op_context *c) { return c->graph; }
em_exec *em_op_context_exec(const ember_op_context *c) { return c->exec; }

/* Views of em_tensors as public handles, valid during one callback. */
static void view(ember_tensor *h, const em_tensor *t) {
    h->t = *t;
    h->t.owns_data = false;
    h->name = NULL;
}

static ember_status adapter_create(const em_graph *g, em_node *n, void **state, ember_error *err) {
    const plugin_op *p = (const plugin_op *)n->op;
    plugin_state *s = calloc(1, sizeof *s);
    if (!s) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    s->pop = p;
    if (p->k.create) {
        ember_op_context ctx = ctx_of(n, g, NULL);
        ember_status st = p->k.create(&ctx, &s->user, err);
        if (st != EMBER_OK) {
            free(s);
            return st;
        }
    }
    *state = s;
    return EMBER_OK;
}

static void adapter_destroy(void *state) {
    plugin_state *s = state;
    if (!s) return;
    if (s->pop->k.destroy) s->pop->k.destroy(s->user);
    free(s);
}

#define MAX_IO 64

static ember_status adapter_infer(const em_node *n, void *state, em_tensor *const *in,
                                  em_tensor *out, ember_error *err) {
    const plugin_op *p = (const plugin_op *)n->op;
    plugin_state *s = state;
    if (n->n_inputs > MAX_IO || n->n_outputs > MAX_IO)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "custom operator with more than %d inputs",
                       MAX_IO);
    ember_tensor views[MAX_IO];
    const ember_tensor *inputs[MAX_IO];
    ember_tensor_shape shapes[MAX_IO];
    for (int i = 0; i < n->n_explicit_inputs; i++) {
        if (in[i]) view(&views[i], in[i]);
        inputs[i] = in[i] ? &views[i] : NULL;
    }
    for (int k = 0; k < n->n_outputs; k++) {
        memset(&shapes[k], 0, sizeof shapes[k]);
        shapes[k].rank = -1;
    }
    ember_op_context ctx = ctx_of(n, NULL, NULL);
    EM_TRY(p->k.infer(s ? s->user : NULL, &ctx, (size_t)n->n_explicit_inputs, inputs,
                      (size_t)n->n_outputs, shapes, err));
    for (int k = 0; k < n->n_outputs; k++) {
        if (shapes[k].rank > EM_MAX_RANK)
            return em_fail(err, EMBER_ERR_RUNTIME, "custom operator output %d: rank %d", k,
                           shapes[k].rank);
        out[k].dtype = shapes[k].dtype;
        out[k].rank = shapes[k].rank;
        if (shapes[k].rank > 0) memcpy(out[k].dims, shapes[k].dims, sizeof(int64_t) * (size_t)shapes[k].rank);
    }
    return EMBER_OK;
}

static ember_status adapter_run(const em_node *n, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    plugin_state *s = state;
    ember_tensor in_views[MAX_IO], out_views[MAX_IO];
    const ember_tensor *inputs[MAX_IO];
    ember_tensor *outputs[MAX_IO];
    for (int i = 0; i < n->n_explicit_inputs; i++) {
        if (in[i]) view(&in_views[i], in[i]);
        inputs[i] = in[i] ? &in_views[i] : NULL;
    }
    for (int k = 0; k < n->n_outputs; k++) {
        view(&out_views[k], &out[k]);
        outputs[k] = &out_views[k];
    }
    ember_op_context ctx = ctx_of(n, NULL, ex);
    return s->pop->k.run(s->user, &ctx, (size_t)n->n_explicit_inputs, inputs,
                         (size_t)n->n_outputs, outputs, err);
}

ember_status ember_register_op(const ember_kernel *k, ember_error *err) {
    if (!k) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "kernel is NULL");
    if (k->abi_version != EMBER_ABI_VERSION)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "kernel %s: built for ABI version %d, this ember has %d",
                       k->op_type ? k->op_type : "?", k->abi_version, EMBER_ABI_VERSION);
    if (!k->op_type || !k->op_type[0] || !k->infer || !k->run || k->since_version < 1)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "a kernel needs op_type, infer, run and since_version >= 1");
    /* Registrations live as long as the process (like the built-in tables). */
    plugin_op *p = calloc(1, sizeof *p);
    if (!p) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    p->k = *k;
    p->op = (em_op){.domain = k->domain ? k->domain : "",
                    .op_type = k->op_type,
                    .since_version = k->since_version,
                    .until_version = 0,
                    .create = adapter_create,
                    .infer = adapter_infer,
                    .run = adapter_run,
                    .destroy = adapter_destroy};
    if (p->op.domain[0] != '\0') p->op.until_version = 1 << 30; /* custom domains: open-ended */
    ember_status st = em_registry_add(&p->op, err);
    if (st != EMBER_OK) free(p);
    return st;
}

ember_status ember_load_plugin(const char *path, ember_error *err) {
    if (!path) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "path is NULL");
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return em_fail(err, EMBER_ERR_IO, "plugin %s: %s", path, dlerror());
    typedef ember_status (*init_fn)(int, ember_error *);
    init_fn init;
    *(void **)&init = dlsym(lib, "ember_plugin_init");
    if (!init) {
        dlclose(lib);
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "plugin %s: no ember_plugin_init symbol",
                       path);
    }
    ember_status st = init(EMBER_ABI_VERSION, err);
    if (st != EMBER_OK) {
        em_wrap(err, st, "plugin %s", path);
        /* Kernels it registered before failing stay registered, so the library stays loaded. */
        return st;
    }
    return EMBER_OK;
}

int64_t ember_op_attr_int(const ember_op_context *c, const char *name, int64_t dflt) {
    return em_attr_int(node_of(c), name, dflt);
}
float ember_op_attr_float(const ember_op_context *c, const char *name, float dflt) {
    return em_attr_float(node_of(c), name, dflt);
}
const char *ember_op_attr_string(const ember_op_context *c, const char *name, const char *dflt) {
    return em_attr_string(node_of(c), name, dflt);
}
const int64_t *ember_op_attr_ints(const ember_op_context *c, const char *name, size_t *count) {
    int64_t n = 0;
    const int64_t *v = em_attr_ints(node_of(c), name, &n);
    if (count) *count = (size_t)n;
    return v;
}
const float *ember_op_attr_floats(const ember_op_context *c, const char *name, size_t *count) {
    int64_t n = 0;
    const float *v = em_attr_floats(node_of(c), name, &n);
    if (count) *count = (size_t)n;
    return v;
}
int64_t ember_op_opset(const ember_op_context *c) { return node_of(c)->opset; }
const char *ember_op_name(const ember_op_context *c) { return node_of(c)->name; }

size_t ember_op_output_count(const ember_op_context *c) { return (size_t)node_of(c)->n_outputs; }
int ember_op_output_present(const ember_op_context *c, size_t index) {
    const em_node *n = node_of(c);
    return index < (size_t)n->n_outputs && n->outputs[index] >= 0;
}

void ember_op_parallel_for(const ember_op_context *c, int64_t n, int64_t grain, ember_range_fn fn,
                           void *arg) {
    if (n <= 0) return;
    em_parallel_for(c->exec, n, grain > 0 ? grain : 1, fn, arg); /* exec NULL: inline */
}
int ember_op_threads(const ember_op_context *c) { return em_exec_threads(c->exec); }
