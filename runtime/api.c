/* The public API (include/ember.h): handles, argument checks, ownership. */
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <stdarg.h>

#include "session.h"

const char *ember_status_string(ember_status s) {
    switch (s) {
    case EMBER_OK: return "ok";
    case EMBER_ERR_INVALID_ARGUMENT: return "invalid argument";
    case EMBER_ERR_IO: return "i/o error";
    case EMBER_ERR_PARSE: return "parse error";
    case EMBER_ERR_INVALID_MODEL: return "invalid model";
    case EMBER_ERR_UNSUPPORTED: return "unsupported";
    case EMBER_ERR_OUT_OF_MEMORY: return "out of memory";
    case EMBER_ERR_LIMIT: return "limit exceeded";
    case EMBER_ERR_SHAPE: return "shape mismatch";
    case EMBER_ERR_RUNTIME: return "runtime error";
    }
    return "unknown status";
}

const char *ember_version(void) { return EMBER_VERSION_STRING; }
int ember_abi_version(void) { return EMBER_ABI_VERSION; }
size_t ember_dtype_size(ember_dtype dt) { return em_dtype_size(dt); }
const char *ember_dtype_name(ember_dtype dt) { return em_dtype_name(dt); }

/* ---- tensors ---- */

static ember_status check_shape(ember_dtype dtype, const int64_t *dims, int rank,
                                ember_error *err) {
    if (em_dtype_size(dtype) == 0 && dtype != EMBER_STRING)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "element type %d is not supported", (int)dtype);
    if (rank < 0 || rank > EMBER_MAX_RANK || (rank > 0 && !dims))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "rank %d is out of range 0..%d", rank,
                       EMBER_MAX_RANK);
    if (em_shape_numel(dims, rank) < 0)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "negative or overflowing dimensions");
    return EMBER_OK;
}

ember_status ember_tensor_create(ember_dtype dtype, const int64_t *dims, int rank,
                                 ember_tensor **out, ember_error *err) {
    if (!out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    EM_TRY(check_shape(dtype, dims, rank, err));
    em_tensor *t = dtype == EMBER_STRING ? em_string_tensor_new(dims, rank, err)
                                         : em_tensor_new(dtype, dims, rank, err);
    if (!t) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    ember_tensor *h = calloc(1, sizeof *h);
    char *name = calloc(1, 1);
    if (!h || !name) {
        em_tensor_free(t);
        free(h);
        free(name);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    h->t = *t;
    h->name = name;
    free(t);
    *out = h;
    return EMBER_OK;
}

ember_status ember_tensor_wrap(ember_dtype dtype, const int64_t *dims, int rank, void *data,
                               size_t bytes, ember_tensor **out, ember_error *err) {
    if (!out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    EM_TRY(check_shape(dtype, dims, rank, err));
    if (dtype == EMBER_STRING)
        return em_fail(err, EMBER_ERR_UNSUPPORTED,
                       "string tensors own their strings: use ember_tensor_create and "
                       "ember_tensor_set_string");
    int64_t n = em_shape_numel(dims, rank);
    size_t need = (size_t)n * em_dtype_size(dtype);
    if (bytes < need || (!data && need))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "buffer of %zu bytes is too small for %lld elements of %s (%zu bytes)",
                       bytes, (long long)n, em_dtype_name(dtype), need);
    ember_tensor *h = calloc(1, sizeof *h);
    char *name = calloc(1, 1);
    if (!h || !name) {
        free(h);
        free(name);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    em_tensor_set_shape(&h->t, dtype, dims, rank);
    h->t.data = data;
    h->t.capacity = bytes;
    h->t.owns_data = false;
    h->name = name;
    *out = h;
    return EMBER_OK;
}

void ember_tensor_free(ember_tensor *t) {
    if (!t) return;
    em_value_release(&t->t);
    free(t->name);
    free(t);
}

ember_dtype ember_tensor_dtype(const ember_tensor *t) { return t ? t->t.dtype : EMBER_UNDEFINED; }
int ember_tensor_rank(const ember_tensor *t) { return t ? t->t.rank : -1; }
const int64_t *ember_tensor_dims(const ember_tensor *t) { return t ? t->t.dims : NULL; }
int64_t ember_tensor_element_count(const ember_tensor *t) { return t ? em_numel(&t->t) : 0; }
size_t ember_tensor_byte_size(const ember_tensor *t) { return t ? em_nbytes(&t->t) : 0; }
static bool is_tensor(const ember_tensor *t) {
    return t && t->t.kind == EMBER_KIND_TENSOR && t->t.dtype != EMBER_STRING;
}

static bool is_string_tensor(const ember_tensor *t) {
    return t && t->t.kind == EMBER_KIND_TENSOR && t->t.dtype == EMBER_STRING && t->t.data;
}

const char *ember_tensor_string(const ember_tensor *t, size_t index) {
    if (!is_string_tensor(t) || index >= (size_t)em_numel(&t->t)) return NULL;
    return em_string_at(&t->t, (int64_t)index);
}

ember_status ember_tensor_set_string(ember_tensor *t, size_t index, const char *value,
                                     ember_error *err) {
    if (!t || !value) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    if (!is_string_tensor(t))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "not a string tensor");
    if (index >= (size_t)em_numel(&t->t))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "index %zu is past the tensor's %lld "
                       "elements", index, (long long)em_numel(&t->t));
    return em_string_set(&t->t, (int64_t)index, value, strlen(value), err);
}
void *ember_tensor_data(ember_tensor *t) { return is_tensor(t) ? t->t.data : NULL; }
const void *ember_tensor_const_data(const ember_tensor *t) {
    return is_tensor(t) ? t->t.data : NULL;
}
const char *ember_tensor_name(const ember_tensor *t) { return t && t->name ? t->name : ""; }

/* ---- sequences and optionals ---- */

ember_value_kind ember_tensor_kind(const ember_tensor *t) {
    return t ? t->t.kind : EMBER_KIND_TENSOR;
}

/* A handle (name "") taking over heap value v; v is freed on failure. */
static ember_status handle_of(em_tensor *v, ember_tensor **out, ember_error *err) {
    ember_tensor *h = calloc(1, sizeof *h);
    char *name = calloc(1, 1);
    if (!h || !name) {
        em_tensor_free(v);
        free(h);
        free(name);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    h->t = *v;
    h->name = name;
    free(v);
    *out = h;
    return EMBER_OK;
}

static bool valid_element_type(ember_dtype dt) {
    return dt == EMBER_UNDEFINED || em_dtype_size(dt) > 0;
}

ember_status ember_sequence_create(ember_dtype element_type, ember_tensor **out,
                                   ember_error *err) {
    if (!out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!valid_element_type(element_type))
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "element type %d is not supported",
                       (int)element_type);
    em_tensor *v = em_seq_new(element_type, err);
    if (!v) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    return handle_of(v, out, err);
}

ember_status ember_sequence_append(ember_tensor *seq, const ember_tensor *item, ember_error *err) {
    if (!seq || !item) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    if (seq->t.kind != EMBER_KIND_SEQUENCE || !seq->t.data)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "not a sequence");
    if (item->t.kind != EMBER_KIND_TENSOR)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "a sequence holds tensors, not a %s",
                       em_kind_name(item->t.kind));
    if (seq->t.dtype != EMBER_UNDEFINED && item->t.dtype != seq->t.dtype)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "a sequence of %s cannot hold %s",
                       em_dtype_name(seq->t.dtype), em_dtype_name(item->t.dtype));
    em_tensor *c = em_tensor_clone(&item->t, err);
    if (!c) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    EM_TRY(em_seq_insert(&seq->t, em_seq_length(&seq->t), c, err));
    seq->t.dtype = item->t.dtype;
    return EMBER_OK;
}

size_t ember_sequence_length(const ember_tensor *seq) {
    return seq && seq->t.kind == EMBER_KIND_SEQUENCE ? (size_t)em_seq_length(&seq->t) : 0;
}

ember_status ember_sequence_get(const ember_tensor *seq, size_t index, ember_tensor **out,
                                ember_error *err) {
    if (!seq || !out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (seq->t.kind != EMBER_KIND_SEQUENCE)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "not a sequence");
    if (index >= (size_t)em_seq_length(&seq->t))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "index %zu is past the sequence's %lld "
                       "tensors", index, (long long)em_seq_length(&seq->t));
    em_tensor *c = em_tensor_clone(em_seq_at(&seq->t, (int64_t)index), err);
    if (!c) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    return handle_of(c, out, err);
}

ember_status ember_optional_create(ember_value_kind element_kind, ember_dtype element_type,
                                   const ember_tensor *value, ember_tensor **out,
                                   ember_error *err) {
    if (!out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (element_kind != EMBER_KIND_TENSOR && element_kind != EMBER_KIND_SEQUENCE)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "an optional holds a tensor or a sequence, not a %s",
                       em_kind_name(element_kind));
    if (!valid_element_type(element_type))
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "element type %d is not supported",
                       (int)element_type);
    if (value && (value->t.kind != element_kind ||
                  (element_type != EMBER_UNDEFINED && value->t.dtype != element_type)))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "the value (a %s of %s) does not match the optional's type (%s of %s)",
                       em_kind_name(value->t.kind), em_dtype_name(value->t.dtype),
                       em_kind_name(element_kind), em_dtype_name(element_type));
    em_tensor *c = NULL;
    if (value && !(c = em_tensor_clone(&value->t, err)))
        return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    em_tensor *v = em_optional_new(element_kind, c ? c->dtype : element_type, c, err);
    if (!v) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    return handle_of(v, out, err);
}

int ember_optional_has_value(const ember_tensor *opt) {
    return opt && opt->t.kind == EMBER_KIND_OPTIONAL && opt->t.data != NULL;
}

ember_value_kind ember_optional_element_kind(const ember_tensor *opt) {
    return opt && opt->t.kind == EMBER_KIND_OPTIONAL ? opt->t.elem_kind : EMBER_KIND_TENSOR;
}

ember_status ember_optional_get(const ember_tensor *opt, ember_tensor **out, ember_error *err) {
    if (!opt || !out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (opt->t.kind != EMBER_KIND_OPTIONAL)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "not an optional");
    if (!opt->t.data) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "the optional is empty");
    em_tensor *c = em_tensor_clone(opt->t.data, err);
    if (!c) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    return handle_of(c, out, err);
}

/* A public handle over tensor t, taking over its data. NULL on no memory (t unchanged). */
static ember_tensor *wrap_owned(const em_tensor *t) {
    ember_tensor *h = malloc(sizeof *h);
    if (!h) return NULL;
    h->t = *t;
    h->name = NULL; /* ember_tensor_name gives "" */
    return h;
}

/* ---- models ---- */

ember_status ember_model_load_memory_at(const void *data, size_t size, const char *base_dir,
                                        const ember_load_options *options, ember_model **out,
                                        ember_error *err) {
    if (!out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!data && size) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "data is NULL");
    em_load_limits lim;
    em_load_limits_init(&lim, options);
    return em_model_load(data, size, "<memory>", base_dir, &lim, out, err);
}

ember_status ember_model_load_memory(const void *data, size_t size,
                                     const ember_load_options *options, ember_model **out,
                                     ember_error *err) {
    return ember_model_load_memory_at(data, size, NULL, options, out, err);
}

/* Map a regular file read-only (*map NULL for an empty file); unmap with unmap_file. */
static ember_status map_file(const char *path, void **map, size_t *size, ember_error *err) {
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a FIFO must not block */
    if (fd < 0) return em_fail(err, EMBER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return em_fail(err, EMBER_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size > 0) {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return em_fail(err, EMBER_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        }
        *map = m;
        *size = (size_t)sb.st_size;
    }
    close(fd);
    return EMBER_OK;
}

static void unmap_file(void *map, size_t size) {
    if (map) munmap(map, size);
}

ember_status ember_model_load_file(const char *path, const ember_load_options *options,
                                   ember_model **out, ember_error *err) {
    if (!out || !path) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    void *map;
    size_t size;
    EM_TRY(map_file(path, &map, &size, err));
    char *copy = strdup(path);
    if (!copy) {
        unmap_file(map, size);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const char *dir = dirname(copy);
    em_load_limits lim;
    em_load_limits_init(&lim, options);
    ember_status st = em_model_load(map ? map : "", size, path, dir, &lim, out, err);
    free(copy);
    unmap_file(map, size);
    return st;
}

/* ---- operator scan ---- */

ember_status ember_op_scan_memory(const void *data, size_t size, ember_op_scan **out,
                                  ember_error *err) {
    if (!out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!data && size) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "data is NULL");
    em_load_limits lim;
    em_load_limits_init(&lim, NULL);
    return em_scan_ops(data ? data : "", size, "<memory>", &lim, out, err);
}

ember_status ember_op_scan_file(const char *path, ember_op_scan **out, ember_error *err) {
    if (!out || !path) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    void *map;
    size_t size;
    EM_TRY(map_file(path, &map, &size, err));
    em_load_limits lim;
    em_load_limits_init(&lim, NULL);
    ember_status st = em_scan_ops(map ? map : "", size, path, &lim, out, err);
    unmap_file(map, size);
    return st;
}

size_t ember_op_scan_count(const ember_op_scan *scan) { return scan ? scan->count : 0; }

ember_status ember_op_scan_get(const ember_op_scan *scan, size_t index, ember_op_use *use) {
    if (!scan || !use || index >= scan->count) return EMBER_ERR_INVALID_ARGUMENT;
    *use = scan->uses[index];
    return EMBER_OK;
}

void ember_op_scan_free(ember_op_scan *scan) { em_op_scan_free(scan); }

void ember_model_free(ember_model *m) { em_model_release(m); }

size_t ember_model_input_count(const ember_model *m) { return m ? m->n_inputs : 0; }
size_t ember_model_output_count(const ember_model *m) { return m ? m->n_outputs : 0; }

ember_status ember_model_input(const ember_model *m, size_t i, ember_value_info *info) {
    if (!m || !info || i >= m->n_inputs)
        return EMBER_ERR_INVALID_ARGUMENT;
    *info = m->inputs[i];
    return EMBER_OK;
}

ember_status ember_model_output(const ember_model *m, size_t i, ember_value_info *info) {
    if (!m || !info || i >= m->n_outputs) return EMBER_ERR_INVALID_ARGUMENT;
    *info = m->outputs[i];
    return EMBER_OK;
}

int64_t ember_model_ir_version(const ember_model *m) { return m ? m->ir_version : 0; }
int64_t ember_model_opset(const ember_model *m, const char *domain) {
    return m ? em_graph_opset(m->graph, domain) : 0;
}
const char *ember_model_producer(const ember_model *m) { return m ? m->producer : ""; }
size_t ember_model_warning_count(const ember_model *m) { return m ? m->n_warnings : 0; }
const char *ember_model_warning(const ember_model *m, size_t i) {
    return m && i < m->n_warnings ? m->warnings[i] : NULL;
}
size_t ember_model_node_count(const ember_model *m) { return m ? m->n_nodes : 0; }
ember_status ember_model_node(const ember_model *m, size_t i, ember_node_info *info) {
    if (!m || !info || i >= m->n_nodes) return EMBER_ERR_INVALID_ARGUMENT;
    *info = m->nodes[i];
    return EMBER_OK;
}
uint64_t ember_model_parameter_count(const ember_model *m) { return m ? m->param_count : 0; }
uint64_t ember_model_parameter_bytes(const ember_model *m) { return m ? m->param_bytes : 0; }

/* ---- thread pools ---- */

ember_status ember_threadpool_create(int threads, ember_threadpool **out, ember_error *err) {
    if (!out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "out is NULL");
    if (threads < 0) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "threads must be >= 0");
    return em_threadpool_new(threads, out, err);
}

void ember_threadpool_free(ember_threadpool *p) { em_threadpool_delete(p); }

/* ---- sessions ---- */

void ember_session_options_init(ember_session_options *o) {
    memset(o, 0, sizeof *o);
    o->threads = 0;
    o->opt_level = EMBER_OPT_ALL;
    o->batch_tiling = 1;
}

void ember_session_free(ember_session *s) {
    if (!s) return;
    for (int i = 0; i < s->n_idle; i++) em_run_ctx_free(s->idle[i]);
    free(s->idle);
    em_session_release_kernels(s->graph);
    em_graph_free(s->graph);
    em_plan_free(&s->plan);
    if (s->owns_pool) em_threadpool_delete(s->pool);
    pthread_mutex_destroy(&s->lock);
    em_model_release(s->model);
    free(s);
}

ember_status ember_session_create(const ember_model *model, const ember_session_options *options,
                                  ember_session **out, ember_error *err) {
    if (!model || !out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    ember_session_options opts;
    if (options) opts = *options;
    else ember_session_options_init(&opts);
    if (opts.threads < 0) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "threads must be >= 0");
    em_blas_single_thread();
    ember_session *s = calloc(1, sizeof *s);
    if (!s) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    pthread_mutex_init(&s->lock, NULL);
    atomic_fetch_add(&((struct ember_model *)model)->refs, 1);
    s->model = (struct ember_model *)model;
    s->memory_limit = opts.memory_limit ? opts.memory_limit : (8ull << 30);
    s->opt_level = opts.opt_level;
    s->batch_tiling = opts.batch_tiling != 0;
    ember_status st = EMBER_OK;
    if (opts.threadpool) {
        s->pool = opts.threadpool;
        s->threads = em_threadpool_threads(s->pool);
    } else {
        s->threads = opts.threads ? opts.threads : em_cpu_count();
        if (s->threads > 1) {
            st = em_threadpool_new(s->threads, &s->pool, err);
            s->owns_pool = st == EMBER_OK;
        }
    }
    if (st == EMBER_OK) {
        s->graph = em_graph_clone(model->graph, err);
        if (!s->graph) st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    }
    if (st == EMBER_OK) {
        st = em_optimize(s->graph, opts.opt_level, err);
        if (st != EMBER_OK) em_wrap(err, st, "%s", model->path);
    }
    if (st == EMBER_OK) st = em_session_attach_heads(s->graph, opts.heads, opts.n_heads, err);
    if (st == EMBER_OK) st = em_session_prepare(s, err);
    if (st != EMBER_OK) {
        ember_session_free(s);
        return st;
    }
    *out = s;
    return EMBER_OK;
}

static em_run_ctx *acquire_ctx(ember_session *s) {
    em_run_ctx *c = NULL;
    pthread_mutex_lock(&s->lock);
    if (s->n_idle > 0) c = s->idle[--s->n_idle];
    pthread_mutex_unlock(&s->lock);
    return c ? c : em_run_ctx_new(s);
}

static void release_ctx(ember_session *s, em_run_ctx *c) {
    pthread_mutex_lock(&s->lock);
    if (s->n_idle == s->cap_idle) {
        int cap = s->cap_idle ? s->cap_idle * 2 : 4;
        em_run_ctx **n = realloc(s->idle, sizeof *n * (size_t)cap);
        if (n) {
            s->idle = n;
            s->cap_idle = cap;
        }
    }
    if (s->n_idle < s->cap_idle) {
        s->idle[s->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->lock);
    em_run_ctx_free(c);
}

ember_status ember_session_run(ember_session *s, const char *const *input_names,
                               const ember_tensor *const *inputs, size_t input_count,
                               const char *const *output_names, size_t output_count,
                               ember_tensor **outputs, ember_error *err) {
    if (!s || (input_count && (!input_names || !inputs)) ||
        (output_count && (!output_names || !outputs)))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    for (size_t k = 0; k < output_count; k++) outputs[k] = NULL;
    const em_graph *g = s->graph;
    em_tensor *in_stack[16];
    int outv_stack[16];
    em_tensor out_stack[16];
    em_tensor **in = g->n_inputs <= 16 ? in_stack : calloc((size_t)g->n_inputs, sizeof(em_tensor *));
    int *outv = output_count <= 16 ? outv_stack : calloc(output_count, sizeof(int));
    em_tensor *outs = output_count <= 16 ? out_stack : calloc(output_count, sizeof(em_tensor));
    ember_status st = EMBER_OK;
    if (!in || !outv || !outs) {
        st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < g->n_inputs; i++) in[i] = NULL;
    for (size_t k = 0; k < input_count && st == EMBER_OK; k++) {
        int slot = -1;
        if (!input_names[k] || !inputs[k]) {
            st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "input %zu: NULL name or tensor", k);
            break;
        }
        for (int i = 0; i < g->n_inputs; i++)
            if (strcmp(g->values[g->inputs[i]].name, input_names[k]) == 0) slot = i;
        if (slot < 0) st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "the model has no input '%s'",
                                   input_names[k]);
        else if (in[slot])
            st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "input '%s' is given twice",
                         input_names[k]);
        else in[slot] = (em_tensor *)&inputs[k]->t;
    }
    for (size_t k = 0; k < output_count && st == EMBER_OK; k++) {
        outv[k] = -1;
        for (int i = 0; i < g->n_outputs && output_names[k]; i++)
            if (strcmp(g->values[g->outputs[i]].name, output_names[k]) == 0) outv[k] = g->outputs[i];
        if (outv[k] < 0)
            st = em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "the model has no output '%s'",
                         output_names[k] ? output_names[k] : "(null)");
    }
    if (st == EMBER_OK) {
        em_run_ctx *c = acquire_ctx(s);
        if (!c) st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        else {
            st = em_execute(s, c, in, outv, (int)output_count, outs, err);
            release_ctx(s, c);
        }
    }
    for (size_t k = 0; k < output_count && st == EMBER_OK; k++) {
        outputs[k] = wrap_owned(&outs[k]);
        if (!outputs[k]) {
            for (size_t j = k; j < output_count; j++) em_value_release(&outs[j]);
            for (size_t j = 0; j < k; j++) {
                ember_tensor_free(outputs[j]);
                outputs[j] = NULL;
            }
            st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
done:
    if (in != in_stack) free(in);
    if (outv != outv_stack) free(outv);
    if (outs != out_stack) free(outs);
    return st;
}

/* Append to a line of `cap` bytes, keeping `reserve` bytes free at its end. snprintf returns
 * the untruncated length: *len is clamped after every call (it once ran past the line buffer
 * with names of a few hundred bytes). */
static void __attribute__((format(printf, 5, 6)))
line_append(char *line, size_t cap, size_t reserve, int *len, const char *fmt, ...) {
    size_t room = cap - reserve - (size_t)*len;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(line + *len, room, fmt, ap);
    va_end(ap);
    if (w > 0) *len += (size_t)w < room ? w : (int)room - 1;
}

size_t ember_session_describe(const ember_session *s, char *buf, size_t size) {
    if (!s) return 0;
    const em_graph *g = s->graph;
    size_t used = 0;
    char line[1024];
    if (buf && size) buf[0] = '\0';
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        int len = 0;
        line_append(line, sizeof line, 3, &len, "%s%s%s '%s' (", n->domain,
                    n->domain[0] ? ":" : "", n->op_type, n->name);
        for (int k = 0; k < n->n_explicit_inputs; k++)
            line_append(line, sizeof line, 3, &len, "%s%s", k ? ", " : "",
                        n->inputs[k] >= 0 ? g->values[n->inputs[k]].name : "");
        line_append(line, sizeof line, 3, &len, ") -> (");
        for (int k = 0; k < n->n_outputs; k++)
            line_append(line, sizeof line, 3, &len, "%s%s", k ? ", " : "",
                        n->outputs[k] >= 0 ? g->values[n->outputs[k]].name : "");
        line_append(line, sizeof line, 0, &len, ")\n");
        if (buf && used + (size_t)len < size) memcpy(buf + used, line, (size_t)len + 1);
        used += (size_t)len;
    }
    return used;
}
