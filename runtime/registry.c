/* The op registry: the one piece of global state, filled once (pthread_once) before use and
 * read-only afterwards, except for plugin registrations which take the lock. */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/ops.h"
#include "kernel.h"

typedef struct onnx_versions {
    const char *op_type;
    int versions[12];
} onnx_versions;

static const onnx_versions k_onnx_versions[] = {
#include "onnx_versions.inc"
};

#define MAX_OPS 2048
static const em_op *g_ops[MAX_OPS];
static int g_n_ops;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_rwlock_t g_lock = PTHREAD_RWLOCK_INITIALIZER;

static const char *norm_domain(const char *d) {
    if (!d || strcmp(d, "ai.onnx") == 0) return "";
    return d;
}

static int until_of(const em_op *op) {
    return op->until_version ? op->until_version : op->since_version;
}

static ember_status add_locked(const em_op *op, ember_error *err) {
    for (int i = 0; i < g_n_ops; i++) {
        const em_op *o = g_ops[i];
        bool custom = norm_domain(op->domain)[0] != '\0';
        bool overlap = custom ? o->since_version == op->since_version
                              : op->since_version <= until_of(o) && o->since_version <= until_of(op);
        if (strcmp(norm_domain(o->domain), norm_domain(op->domain)) == 0 &&
            strcmp(o->op_type, op->op_type) == 0 && overlap)
            return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                           "operator %s%s%s versions %d-%d is already registered",
                           op->domain ? op->domain : "", op->domain && op->domain[0] ? ":" : "",
                           op->op_type, op->since_version, until_of(op));
    }
    if (g_n_ops >= MAX_OPS)
        return em_fail(err, EMBER_ERR_LIMIT, "too many registered operators");
    g_ops[g_n_ops++] = op;
    return EMBER_OK;
}

/* OpenBLAS's own threads would oversubscribe the cores: ember splits work across its own
 * pool and calls BLAS from inside each chunk, so BLAS runs single-threaded (set once). */
void openblas_set_num_threads(int threads);

/* True on the thread running init_builtins: built-in plugins register through the public
 * ember_register_op, which initializes the registry first; it must not wait for itself. */
static _Thread_local bool t_initializing;

static void init_builtins(void) {
    openblas_set_num_threads(1);
    for (int f = 0; em_op_families[f]; f++) {
        size_t count = 0;
        const em_op *table = em_op_families[f](&count);
        for (size_t i = 0; i < count; i++) add_locked(&table[i], NULL);
    }
    t_initializing = true;
    for (int p = 0; em_builtin_plugins[p]; p++) em_builtin_plugins[p](EMBER_ABI_VERSION, NULL);
    t_initializing = false;
}

void em_registry_init(void) {
    if (!t_initializing) pthread_once(&g_once, init_builtins);
}

ember_status em_registry_add(const em_op *op, ember_error *err) {
    if (!op || !op->op_type || !op->infer || op->since_version < 1)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "an operator needs an op_type, an infer function and a version >= 1");
    em_registry_init();
    pthread_rwlock_wrlock(&g_lock);
    ember_status st = add_locked(op, err);
    pthread_rwlock_unlock(&g_lock);
    return st;
}

/* The table is sorted by op_type (scripts/gen_onnx_versions.py writes it so; a unit test
 * checks it): kernels call this while running, so it is a binary search. */
int em_onnx_op_version(const char *op_type, int64_t opset) {
    size_t lo = 0, hi = sizeof k_onnx_versions / sizeof k_onnx_versions[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(k_onnx_versions[mid].op_type, op_type);
        if (c < 0) {
            lo = mid + 1;
        } else if (c > 0) {
            hi = mid;
        } else {
            int best = 0;
            const int *v = k_onnx_versions[mid].versions;
            for (int k = 0; k < 12 && v[k]; k++)
                if (v[k] <= opset) best = v[k];
            return best;
        }
    }
    return 0;
}

const em_op *em_registry_find(const char *domain, const char *op_type, int64_t opset) {
    em_registry_init();
    domain = norm_domain(domain);
    int64_t version = opset;
    if (domain[0] == '\0') {
        int v = em_onnx_op_version(op_type, opset);
        if (v > 0) version = v;
    }
    const em_op *best = NULL;
    pthread_rwlock_rdlock(&g_lock);
    for (int i = 0; i < g_n_ops; i++) {
        const em_op *o = g_ops[i];
        if (strcmp(norm_domain(o->domain), domain) != 0 || strcmp(o->op_type, op_type) != 0)
            continue;
        if (domain[0] == '\0') {
            if (o->since_version <= version && version <= until_of(o)) best = o;
        } else if (o->since_version <= version && (!best || o->since_version > best->since_version)) {
            best = o; /* custom domains: newest version not above the imported opset */
        }
    }
    pthread_rwlock_unlock(&g_lock);
    return best;
}
