/* The loader: the only part of ember that sees protobuf-c types. It turns a ModelProto into
 * the graph IR, treating every count, size and name in the file as untrusted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel.h"
#include "model.h"
#include "onnx.pb-c.h"

/* Subgraph bookkeeping: which node of the parent owns the subgraph under construction. */
typedef struct scope_link {
    em_graph *g;
    int owner_node; /* index in g->parent's node list, -1 for the root */
} scope_link;

#define MAX_SCOPES 64
typedef struct scope_stack {
    scope_link links[MAX_SCOPES];
    int n;
} scope_stack;

/* Value names of every graph being built, hashed: em_graph_find_value is a linear scan, and
 * the loader looks up every node's inputs and outputs, which made a 1 MB file of 40,000 nodes
 * take 26 s to load. Slots hold value id + 1 (0 = empty). */
typedef struct name_index {
    struct name_slot {
        const em_graph *g;
        int v1;
    } *slots;
    size_t cap, used;
} name_index;

typedef struct load_ctx {
    scope_stack scopes;
    name_index names;
    const char *file; /* for messages */
    const char *base_dir;
    const em_load_limits *limits;
    const Onnx__ModelProto *model;
    uint64_t node_budget;
    int inline_counter;
    ember_error *err;
} load_ctx;

static char *dup_str(const char *s) {
    if (!s) s = "";
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static size_t name_hash(const em_graph *g, const char *name) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)(uintptr_t)g;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* Slot holding (g, name), or the empty slot where it would go. */
static struct name_slot *name_slot(const name_index *ix, const em_graph *g, const char *name) {
    size_t mask = ix->cap - 1;
    for (size_t i = name_hash(g, name) & mask;; i = (i + 1) & mask) {
        struct name_slot *sl = &ix->slots[i];
        if (!sl->v1) return sl;
        if (sl->g == g && sl->v1 <= g->n_values && strcmp(g->values[sl->v1 - 1].name, name) == 0)
            return sl;
    }
}

static int find_value(const load_ctx *c, const em_graph *g, const char *name) {
    if (!c->names.cap) return em_graph_find_value(g, name);
    return name_slot(&c->names, g, name)->v1 - 1;
}

/* em_graph_add_value, indexed. -1 on no memory. */
static int add_value(load_ctx *c, em_graph *g, const char *name) {
    name_index *ix = &c->names;
    if (2 * (ix->used + 1) > ix->cap) {
        name_index bigger = {calloc(ix->cap ? ix->cap * 2 : 256, sizeof(struct name_slot)),
                             ix->cap ? ix->cap * 2 : 256, ix->used};
        if (!bigger.slots) return -1;
        for (size_t i = 0; i < ix->cap; i++)
            if (ix->slots[i].v1) {
                const struct name_slot *old = &ix->slots[i];
                *name_slot(&bigger, old->g, old->g->values[old->v1 - 1].name) = *old;
            }
        free(ix->slots);
        *ix = bigger;
    }
    int v = em_graph_add_value(g, name);
    if (v < 0) return -1;
    struct name_slot *sl = name_slot(ix, g, name);
    if (!sl->v1) { /* a second value of the same name keeps the first one findable */
        *sl = (struct name_slot){g, v + 1};
        ix->used++;
    }
    return v;
}

static ember_status oom(load_ctx *c) {
    return em_fail(c->err, EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", c->file);
}

void em_load_limits_init(em_load_limits *l, const ember_load_options *o) {
    l->max_tensor_bytes = (o && o->max_tensor_bytes) ? o->max_tensor_bytes : (4ull << 30);
    l->max_nodes = (o && o->max_nodes) ? o->max_nodes : 1000000;
    l->max_depth = 32;
}

/* ---------------------------------------------------------------------------------------------
 * Wire format pre-check
 * ------------------------------------------------------------------------------------------- */

/* protobuf-c decodes nested messages recursively without a depth limit, so a file of a few MB
 * whose graphs (or sequence types) nest 100,000 deep overflows the stack inside unpack. And it
 * allocates a struct of 100-250 bytes for every message, however small: a 100 MB file of empty
 * nodes (2 bytes each) would take 7 GB before any check of ours. So the wire format is walked
 * first, descending only into fields the schema declares as messages, counting messages and
 * nodes; bytes that do not parse are left for unpack to reject. */
#define MAX_MESSAGE_DEPTH 256
#define MAX_NODE_ATTRIBUTES 256
/* Messages per allowed node (attributes, dims, value infos, ...), beyond a fixed allowance. */
#define MESSAGES_PER_NODE 16
#define MESSAGES_ALLOWANCE (1u << 20)

typedef struct wire_stats {
    int deepest;         /* message nesting below the model */
    uint64_t messages;   /* every nested message */
    uint64_t nodes;      /* NodeProto messages (graphs, subgraphs and functions) */
} wire_stats;

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Walk one message at `depth`; stops descending past MAX_MESSAGE_DEPTH. */
static void wire_scan(const uint8_t *p, const uint8_t *end, const ProtobufCMessageDescriptor *d,
                      int depth, wire_stats *st) {
    if (depth > st->deepest) st->deepest = depth;
    if (depth >= MAX_MESSAGE_DEPTH) return;
    while (p < end) {
        uint64_t tag, len;
        if (!read_varint(&p, end, &tag)) return;
        switch (tag & 7) {
        case PROTOBUF_C_WIRE_TYPE_VARINT:
            if (!read_varint(&p, end, &len)) return;
            continue;
        case PROTOBUF_C_WIRE_TYPE_64BIT:
            if ((size_t)(end - p) < 8) return;
            p += 8;
            continue;
        case PROTOBUF_C_WIRE_TYPE_32BIT:
            if ((size_t)(end - p) < 4) return;
            p += 4;
            continue;
        case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
            if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p)) return;
            break;
        default:
            return; /* groups or garbage: unpack refuses them */
        }
        const ProtobufCFieldDescriptor *f =
            tag >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3))
                                   : NULL;
        if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
            st->messages++;
            if (f->descriptor == &onnx__node_proto__descriptor) st->nodes++;
            wire_scan(p, p + len, f->descriptor, depth + 1, st);
        }
        p += len;
    }
}

static ember_status check_wire(const void *data, size_t size, const char *file,
                               const em_load_limits *limits, ember_error *err) {
    wire_stats st = {0};
    wire_scan(data, (const uint8_t *)data + size, &onnx__model_proto__descriptor, 0, &st);
    if (st.deepest >= MAX_MESSAGE_DEPTH)
        return em_fail(err, EMBER_ERR_LIMIT,
                       "%s: protobuf messages nest deeper than %d levels (graphs or types nested "
                       "too deeply)",
                       file, MAX_MESSAGE_DEPTH);
    if (st.nodes > limits->max_nodes)
        return em_fail(err, EMBER_ERR_LIMIT, "%s: more than %llu nodes (%llu in the file)", file,
                       (unsigned long long)limits->max_nodes, (unsigned long long)st.nodes);
    uint64_t max_messages = limits->max_nodes > (UINT64_MAX - MESSAGES_ALLOWANCE) / MESSAGES_PER_NODE
                                ? UINT64_MAX
                                : limits->max_nodes * MESSAGES_PER_NODE + MESSAGES_ALLOWANCE;
    if (st.messages > max_messages)
        return em_fail(err, EMBER_ERR_LIMIT,
                       "%s: %llu protobuf messages, more than %llu (%d per allowed node)", file,
                       (unsigned long long)st.messages, (unsigned long long)max_messages,
                       MESSAGES_PER_NODE);
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Tensors
 * ------------------------------------------------------------------------------------------- */

static bool valid_dtype(int32_t t) {
    switch (t) {
    case EMBER_FLOAT: case EMBER_UINT8: case EMBER_INT8: case EMBER_UINT16: case EMBER_INT16:
    case EMBER_INT32: case EMBER_INT64: case EMBER_BOOL: case EMBER_FLOAT16: case EMBER_DOUBLE:
    case EMBER_UINT32: case EMBER_UINT64: case EMBER_BFLOAT16: case EMBER_STRING:
        return true;
    default:
        return false;
    }
}

static const char *onnx_type_name(int32_t t) {
    switch (t) {
    case 8: return "string";
    case 14: return "complex64";
    case 15: return "complex128";
    case 17: case 18: case 19: case 20: return "float8";
    case 21: return "uint4";
    case 22: return "int4";
    default: return em_dtype_name((ember_dtype)t);
    }
}

/* Is `rel` a safe relative path (no absolute path, no "..")? */
static bool safe_relative_path(const char *rel) {
    if (!rel[0] || rel[0] == '/') return false;
    const char *p = rel;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return false;
        if (!slash) break;
        p = slash + 1;
    }
    return true;
}

static bool parse_u64(const char *s, uint64_t *out) {
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    if (s[0] == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* Check a tensor's external data and open it, positioned at its offset: all before the
 * tensor is allocated, so that a 100-byte file claiming 4 GB of missing external data cannot
 * make ember allocate (and zero) 4 GB first. */
static ember_status open_external(const Onnx__TensorProto *tp, const char *tname,
                                  const char *base_dir, size_t want, FILE **out, ember_error *err) {
    *out = NULL;
    const char *location = NULL;
    uint64_t offset = 0, length = want;
    bool has_length = false;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *kv = tp->external_data[i];
        if (!kv->key) continue;
        if (strcmp(kv->key, "location") == 0) location = kv->value;
        else if (strcmp(kv->key, "offset") == 0) {
            if (!parse_u64(kv->value, &offset))
                return em_fail(err, EMBER_ERR_INVALID_MODEL,
                               "tensor '%s': external data offset '%s' is not a number", tname,
                               kv->value ? kv->value : "");
        } else if (strcmp(kv->key, "length") == 0) {
            if (!parse_u64(kv->value, &length))
                return em_fail(err, EMBER_ERR_INVALID_MODEL,
                               "tensor '%s': external data length '%s' is not a number", tname,
                               kv->value ? kv->value : "");
            has_length = true;
        }
    }
    if (!location)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "tensor '%s': external data without location",
                       tname);
    if (!base_dir)
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                       "tensor '%s': external data '%s' needs the model's folder (load from a "
                       "file or use ember_model_load_memory_at)",
                       tname, location);
    if (!safe_relative_path(location))
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "tensor '%s': external data location '%s' escapes the model's folder",
                       tname, location);
    if (has_length && length != want)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "tensor '%s': external data length %llu does not match the %zu bytes its "
                       "shape needs",
                       tname, (unsigned long long)length, want);
    size_t plen = strlen(base_dir) + strlen(location) + 2;
    char *path = malloc(plen);
    if (!path) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    snprintf(path, plen, "%s/%s", base_dir, location);
    /* Resolve symlinks too: the real file must stay under the real model folder. */
    char *real_file = realpath(path, NULL);
    char *real_base = realpath(base_dir, NULL);
    ember_status st = EMBER_OK;
    if (!real_file || !real_base) {
        st = em_fail(err, EMBER_ERR_IO, "tensor '%s': cannot open external data '%s': %s", tname,
                     path, strerror(errno));
    } else {
        size_t bl = strlen(real_base);
        if (strncmp(real_file, real_base, bl) != 0 || (real_file[bl] != '/' && bl != 1))
            st = em_fail(err, EMBER_ERR_INVALID_MODEL,
                         "tensor '%s': external data location '%s' escapes the model's folder",
                         tname, location);
    }
    FILE *f = NULL;
    if (st == EMBER_OK) {
        /* O_NONBLOCK: a FIFO planted in the model folder must not block the load forever. */
        int fd = open(real_file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        f = fd >= 0 ? fdopen(fd, "rb") : NULL;
        if (fd >= 0 && !f) close(fd);
        struct stat sb;
        if (!f || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))
            st = em_fail(err, EMBER_ERR_IO, "tensor '%s': cannot read external data '%s'", tname,
                         path);
        else if (offset > (uint64_t)sb.st_size || want > (uint64_t)sb.st_size - offset)
            st = em_fail(err, EMBER_ERR_INVALID_MODEL,
                         "tensor '%s': external data '%s' has %lld bytes; offset %llu + length %zu "
                         "runs past its end",
                         tname, location, (long long)sb.st_size, (unsigned long long)offset, want);
        else if (fseeko(f, (off_t)offset, SEEK_SET) != 0)
            st = em_fail(err, EMBER_ERR_IO, "tensor '%s': cannot seek in '%s'", tname, path);
    }
    if (st == EMBER_OK) *out = f;
    else if (f) fclose(f);
    free(real_file);
    free(real_base);
    free(path);
    return st;
}

/* Convert a TensorProto; base_dir may be NULL (no external data allowed). */
/* A string tensor: string_data holds one byte string per element (raw_data and external data
 * cannot hold strings). */
static ember_status string_tensor_from_proto(const Onnx__TensorProto *tp, const char *tname,
                                             const int64_t *dims, int rank,
                                             const em_load_limits *lim, em_tensor **out,
                                             ember_error *err) {
    int64_t n = em_shape_numel(dims, rank);
    if (n < 0 || (uint64_t)n != tp->n_string_data)
        return em_fail(err, EMBER_ERR_INVALID_MODEL,
                       "tensor '%s': string_data holds %zu strings, its shape needs %lld", tname,
                       tp->n_string_data, (long long)n);
    uint64_t total = 0;
    for (size_t i = 0; i < tp->n_string_data; i++) total += tp->string_data[i].len + 1;
    if (total > lim->max_tensor_bytes)
        return em_fail(err, EMBER_ERR_LIMIT,
                       "tensor '%s' is larger than the %llu-byte limit for one tensor", tname,
                       (unsigned long long)lim->max_tensor_bytes);
    em_tensor *t = em_string_tensor_new(dims, rank, err);
    if (!t) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; i < tp->n_string_data; i++) {
        ember_status st = em_string_set(t, (int64_t)i, (const char *)tp->string_data[i].data,
                                        tp->string_data[i].len, err);
        if (st != EMBER_OK) {
            em_tensor_free(t);
            return st;
        }
    }
    *out = t;
    return EMBER_OK;
}

static ember_status tensor_from_proto(const Onnx__TensorProto *tp, const char *base_dir,
                                      const em_load_limits *lim, em_tensor **out,
                                      ember_error *err) {
    *out = NULL;
    const char *tname = tp->name ? tp->name : "";
    if (tp->segment)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "tensor '%s': segmented tensors are not supported",
                       tname);
    if (!tp->has_data_type || tp->data_type == 0)
        return em_fail(err, EMBER_ERR_INVALID_MODEL, "tensor '%s' has no data type", tname);
    if (!valid_dtype(tp->data_type))
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "tensor '%s': element type %s (%d) is not supported",
                       tname, onnx_type_name(tp->data_type), tp->data_type);
    if (tp->n_dims > EM_MAX_RANK)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "tensor '%s' has rank %zu; ember supports up to %d",
                       tname, tp->n_dims, EM_MAX_RANK);
    int64_t dims[EM_MAX_RANK];
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0)
            return em_fail(err, EMBER_ERR_INVALID_MODEL, "tensor '%s' has a negative dimension %lld",
                           tname, (long long)tp->dims[i]);
        dims[i] = tp->dims[i];
    }
    ember_dtype dt = (ember_dtype)tp->data_type;
    int rank = (int)tp->n_dims;
    if (dt == EMBER_STRING) return string_tensor_from_proto(tp, tname, dims, rank, lim, out, err);
    int64_t n = em_shape_numel(dims, rank);
    size_t es = em_dtype_size(dt);
    if (n < 0 || (uint64_t)n > lim->max_tensor_bytes / es)
        return em_fail(err, EMBER_ERR_LIMIT,
                       "tensor '%s' is larger than the %llu-byte limit for one tensor", tname,
                       (unsigned long long)lim->max_tensor_bytes);
    size_t bytes = (size_t)n * es;
    uint64_t un = (uint64_t)n;
    bool external = tp->has_data_location &&
                    tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    /* Check the stored count before allocating, so a tiny file cannot demand a huge buffer. */
    size_t have = 0;
    const char *field = "";
    if (external) {
        have = un;
    } else if (tp->has_raw_data) {
        if (tp->raw_data.len != bytes)
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "tensor '%s': raw_data has %zu bytes, its shape needs %zu", tname,
                           tp->raw_data.len, bytes);
        have = un;
    } else {
        switch (dt) {
        case EMBER_FLOAT: have = tp->n_float_data; field = "float_data"; break;
        case EMBER_DOUBLE: have = tp->n_double_data; field = "double_data"; break;
        case EMBER_INT64: have = tp->n_int64_data; field = "int64_data"; break;
        case EMBER_UINT32: case EMBER_UINT64: have = tp->n_uint64_data; field = "uint64_data"; break;
        default: have = tp->n_int32_data; field = "int32_data"; break;
        }
        if (have != un)
            return em_fail(err, EMBER_ERR_INVALID_MODEL,
                           "tensor '%s': %s holds %zu values, its shape needs %lld", tname, field,
                           have, (long long)n);
    }
    FILE *ext = NULL;
    if (external) EM_TRY(open_external(tp, tname, base_dir, bytes, &ext, err));
    em_tensor *t = em_tensor_new(dt, dims, rank, err);
    if (!t) {
        if (ext) fclose(ext);
        return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    }
    ember_status st = EMBER_OK;
    if (external) {
        if (fread(t->data, 1, bytes, ext) != bytes)
            st = em_fail(err, EMBER_ERR_IO, "tensor '%s': short read of external data", tname);
        fclose(ext);
    } else if (tp->has_raw_data) {
        if (bytes) memcpy(t->data, tp->raw_data.data, bytes); /* little-endian host assumed */
    } else {
        void *d = t->data;
        for (size_t i = 0; i < un; i++) {
            switch (dt) {
            case EMBER_FLOAT: ((float *)d)[i] = tp->float_data[i]; break;
            case EMBER_DOUBLE: ((double *)d)[i] = tp->double_data[i]; break;
            case EMBER_INT64: ((int64_t *)d)[i] = tp->int64_data[i]; break;
            case EMBER_UINT64: ((uint64_t *)d)[i] = tp->uint64_data[i]; break;
            case EMBER_UINT32: ((uint32_t *)d)[i] = (uint32_t)tp->uint64_data[i]; break;
            case EMBER_INT32: ((int32_t *)d)[i] = tp->int32_data[i]; break;
            case EMBER_INT16: ((int16_t *)d)[i] = (int16_t)tp->int32_data[i]; break;
            case EMBER_UINT16: case EMBER_FLOAT16: case EMBER_BFLOAT16:
                ((uint16_t *)d)[i] = (uint16_t)tp->int32_data[i];
                break;
            case EMBER_INT8: ((int8_t *)d)[i] = (int8_t)tp->int32_data[i]; break;
            case EMBER_UINT8: ((uint8_t *)d)[i] = (uint8_t)tp->int32_data[i]; break;
            case EMBER_BOOL: ((uint8_t *)d)[i] = tp->int32_data[i] != 0; break;
            default: break;
            }
        }
    }
    if (st != EMBER_OK) {
        em_tensor_free(t);
        return st;
    }
    if (dt == EMBER_BOOL) /* normalize raw bools so kernels can rely on 0/1 */
        for (size_t i = 0; i < un; i++) ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
    *out = t;
    return EMBER_OK;
}

ember_status em_tensor_from_pb(const void *data, size_t size, const em_load_limits *limits,
                               em_tensor **out, char **name, ember_error *err) {
    *out = NULL;
    if (name) *name = NULL;
    Onnx__TensorProto *tp = onnx__tensor_proto__unpack(NULL, size, data);
    if (!tp) return em_fail(err, EMBER_ERR_PARSE, "not a valid TensorProto (protobuf decode failed)");
    ember_status st = tensor_from_proto(tp, NULL, limits, out, err);
    if (st == EMBER_OK && name) {
        *name = dup_str(tp->name);
        if (!*name) {
            em_tensor_free(*out);
            *out = NULL;
            st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return st;
}

ember_status em_tensor_to_pb(const em_tensor *t, const char *name, void **out, size_t *size,
                             ember_error *err) {
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[EM_MAX_RANK];
    for (int i = 0; i < t->rank; i++) dims[i] = t->dims[i];
    tp.n_dims = (size_t)t->rank;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = (int32_t)t->dtype;
    tp.name = (char *)(name ? name : "");
    ProtobufCBinaryData *strings = NULL;
    if (t->dtype == EMBER_STRING) {
        int64_t count = em_numel(t);
        strings = calloc((size_t)count + 1, sizeof *strings);
        if (!strings) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        for (int64_t i = 0; i < count; i++) {
            const char *s = em_string_at(t, i);
            strings[i].data = (uint8_t *)s;
            strings[i].len = strlen(s);
        }
        tp.n_string_data = (size_t)count;
        tp.string_data = strings;
    } else {
        tp.has_raw_data = 1;
        tp.raw_data.len = em_nbytes(t);
        tp.raw_data.data = t->data;
    }
    size_t n = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) {
        free(strings);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    onnx__tensor_proto__pack(&tp, buf);
    free(strings);
    *out = buf;
    *size = n;
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------------------------------- */

/* The kind of a TypeProto: tensor, seq(tensor), optional(tensor) or optional(seq(tensor)),
 * with the TypeProto.Tensor inside (NULL if absent). False for types ember has no kind for
 * (maps, sparse tensors, nested sequences). */
static bool type_kind(const Onnx__TypeProto *tp, ember_value_kind *kind,
                      ember_value_kind *elem_kind, const Onnx__TypeProto__Tensor **tensor) {
    *kind = EMBER_KIND_TENSOR;
    *elem_kind = EMBER_KIND_TENSOR;
    *tensor = NULL;
    if (tp->value_case == ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE) {
        *kind = EMBER_KIND_OPTIONAL;
        if (!tp->optional_type || !tp->optional_type->elem_type) return true;
        tp = tp->optional_type->elem_type;
        if (tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE)
            *elem_kind = EMBER_KIND_SEQUENCE;
        else if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) return false;
    }
    if (tp->value_case == ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE) {
        if (*kind == EMBER_KIND_TENSOR) *kind = EMBER_KIND_SEQUENCE;
        if (!tp->sequence_type || !tp->sequence_type->elem_type) return true;
        tp = tp->sequence_type->elem_type;
    }
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) return false;
    *tensor = tp->tensor_type;
    return true;
}

/* Fill a value's static type from a ValueInfoProto. Types ember cannot hold (maps, sparse
 * tensors) are rejected for graph inputs and outputs (`strict`), ignored for value_info. A
 * sequence or optional keeps only its element type (no shape). */
static ember_status apply_value_info(load_ctx *c, em_value *v, const Onnx__ValueInfoProto *vi,
                                     bool strict) {
    const Onnx__TypeProto *tp = vi->type;
    if (!tp) return EMBER_OK;
    ember_value_kind kind, elem_kind;
    const Onnx__TypeProto__Tensor *tt;
    if (!type_kind(tp, &kind, &elem_kind, &tt)) {
        if (!strict) return EMBER_OK;
        const char *what = tp->value_case == ONNX__TYPE_PROTO__VALUE_MAP_TYPE ? "map"
                           : tp->value_case == ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE
                               ? "sparse tensor"
                               : "nested or unknown";
        return em_fail(c->err, EMBER_ERR_UNSUPPORTED,
                       "%s: graph input/output '%s' has a %s type; ember supports tensors, "
                       "sequences of tensors and optionals of those only",
                       c->file, v->name, what);
    }
    if (kind != EMBER_KIND_TENSOR) {
        ember_dtype dt = EMBER_UNDEFINED;
        if (tt && tt->has_elem_type && valid_dtype(tt->elem_type)) dt = (ember_dtype)tt->elem_type;
        else if (tt && tt->has_elem_type && tt->elem_type != 0 && strict)
            return em_fail(c->err, EMBER_ERR_UNSUPPORTED,
                           "%s: '%s' has element type %s, which ember does not support", c->file,
                           v->name, onnx_type_name(tt->elem_type));
        em_value_set_type(&v->info, kind, elem_kind, dt);
        return EMBER_OK;
    }
    if (!tt) return EMBER_OK;
    if (tt->has_elem_type && tt->elem_type != 0) {
        if (!valid_dtype(tt->elem_type)) {
            if (!strict) return EMBER_OK;
            return em_fail(c->err, EMBER_ERR_UNSUPPORTED,
                           "%s: '%s' has element type %s, which ember does not support", c->file,
                           v->name, onnx_type_name(tt->elem_type));
        }
        v->info.dtype = (ember_dtype)tt->elem_type;
    }
    if (!tt->shape) return EMBER_OK;
    if (tt->shape->n_dim > EM_MAX_RANK)
        return em_fail(c->err, EMBER_ERR_UNSUPPORTED, "%s: '%s' has rank %zu; ember supports up to %d",
                       c->file, v->name, tt->shape->n_dim, EM_MAX_RANK);
    v->info.rank = (int)tt->shape->n_dim;
    for (size_t i = 0; i < tt->shape->n_dim; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        v->info.dims[i] = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                               "%s: '%s' declares a negative dimension %lld", c->file, v->name,
                               (long long)d->dim_value);
            v->info.dims[i] = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM &&
                   d->dim_param && d->dim_param[0]) {
            if (!v->dim_params && !(v->dim_params = calloc(EM_MAX_RANK, sizeof(char *))))
                return oom(c);
            free(v->dim_params[i]);
            if (!(v->dim_params[i] = dup_str(d->dim_param))) return oom(c);
        }
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Attributes
 * ------------------------------------------------------------------------------------------- */


typedef struct pending_node pending_node;

/* A node after function expansion: names already mapped to the graph's namespace. */
struct pending_node {
    const Onnx__NodeProto *np;
    const pending_node *caller; /* the function call this node came from (attribute refs) */
    char *name;
    char *domain;
    int64_t opset;
    size_t n_in, n_out;
    char **in, **out;
};

typedef struct name_scope {
    const em_graph *g;
    int node;    /* node in g that owns the subgraph being built */
} name_scope;

static const Onnx__AttributeProto *find_caller_attr(const pending_node *caller, const char *name) {
    for (; caller; caller = caller->caller) {
        for (size_t i = 0; i < caller->np->n_attribute; i++) {
            const Onnx__AttributeProto *a = caller->np->attribute[i];
            if (a->name && strcmp(a->name, name) == 0) {
                if (a->ref_attr_name && a->ref_attr_name[0]) {
                    name = a->ref_attr_name; /* chained reference: look further up */
                    break;
                }
                return a;
            }
        }
    }
    return NULL;
}

static em_attr_type attr_type_of(const Onnx__AttributeProto *a) {
    if (a->has_type && a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED)
        return (em_attr_type)a->type;
    /* IR < 3 files may omit the discriminator: infer it from the field that is set. */
    if (a->has_f) return EM_ATTR_FLOAT;
    if (a->has_i) return EM_ATTR_INT;
    if (a->has_s) return EM_ATTR_STRING;
    if (a->t) return EM_ATTR_TENSOR;
    if (a->g) return EM_ATTR_GRAPH;
    if (a->n_floats) return EM_ATTR_FLOATS;
    if (a->n_ints) return EM_ATTR_INTS;
    if (a->n_strings) return EM_ATTR_STRINGS;
    if (a->n_tensors) return EM_ATTR_TENSORS;
    if (a->n_graphs) return EM_ATTR_GRAPHS;
    return EM_ATTR_UNDEFINED;
}

static ember_status build_subgraph(load_ctx *c, const Onnx__GraphProto *gp, em_graph *parent,
                                   int node_index, int depth, em_graph **out);

static ember_status convert_attr(load_ctx *c, const Onnx__AttributeProto *a, em_attr *d,
                                 em_graph *g, int node_index, int depth, const char *node_desc) {
    memset(d, 0, sizeof *d);
    d->name = dup_str(a->name);
    if (!d->name) return oom(c);
    d->type = attr_type_of(a);
    switch (d->type) {
    case EM_ATTR_FLOAT: d->f = a->f; break;
    case EM_ATTR_INT: d->i = a->i; break;
    case EM_ATTR_STRING:
        d->s = malloc(a->s.len + 1);
        if (!d->s) return oom(c);
        if (a->s.len) memcpy(d->s, a->s.data, a->s.len);
        d->s[a->s.len] = '\0';
        d->s_len = a->s.len;
        break;
    case EM_ATTR_TENSOR:
        if (!a->t)
            return em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: %s: attribute '%s' has no tensor",
                           c->file, node_desc, d->name);
        EM_TRY(tensor_from_proto(a->t, c->base_dir, c->limits, &d->t, c->err));
        break;
    case EM_ATTR_GRAPH:
        if (!a->g)
            return em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: %s: attribute '%s' has no graph",
                           c->file, node_desc, d->name);
        EM_TRY(build_subgraph(c, a->g, g, node_index, depth + 1, &d->g));
        break;
    case EM_ATTR_FLOATS:
        d->n = (int64_t)a->n_floats;
        if (!(d->floats = malloc(sizeof(float) * (a->n_floats + 1)))) return oom(c);
        if (a->n_floats) memcpy(d->floats, a->floats, sizeof(float) * a->n_floats);
        break;
    case EM_ATTR_INTS:
        d->n = (int64_t)a->n_ints;
        if (!(d->ints = malloc(sizeof(int64_t) * (a->n_ints + 1)))) return oom(c);
        if (a->n_ints) memcpy(d->ints, a->ints, sizeof(int64_t) * a->n_ints);
        break;
    case EM_ATTR_STRINGS:
        if (!(d->strings = calloc(a->n_strings + 1, sizeof(char *)))) return oom(c);
        for (size_t i = 0; i < a->n_strings; i++) {
            d->n = (int64_t)i + 1;
            if (!(d->strings[i] = malloc(a->strings[i].len + 1))) return oom(c);
            if (a->strings[i].len) memcpy(d->strings[i], a->strings[i].data, a->strings[i].len);
            d->strings[i][a->strings[i].len] = '\0';
        }
        d->n = (int64_t)a->n_strings;
        break;
    case EM_ATTR_TENSORS:
        if (!(d->tensors = calloc(a->n_tensors + 1, sizeof(em_tensor *)))) return oom(c);
        d->n = (int64_t)a->n_tensors;
        for (size_t i = 0; i < a->n_tensors; i++)
            EM_TRY(tensor_from_proto(a->tensors[i], c->base_dir, c->limits, &d->tensors[i], c->err));
        break;
    case EM_ATTR_TYPE_PROTO: {
        /* Kept as a type-only tensor (no data): kind, elem_kind, dtype (Optional's `type`). */
        ember_value_kind kind, elem_kind;
        const Onnx__TypeProto__Tensor *tt;
        if (!a->tp || !type_kind(a->tp, &kind, &elem_kind, &tt))
            return em_fail(c->err, EMBER_ERR_UNSUPPORTED,
                           "%s: %s: attribute '%s' has a type ember does not support", c->file,
                           node_desc, d->name);
        if (!(d->t = calloc(1, sizeof *d->t))) return oom(c);
        ember_dtype dt = tt && tt->has_elem_type && valid_dtype(tt->elem_type)
                             ? (ember_dtype)tt->elem_type : EMBER_UNDEFINED;
        if (kind == EMBER_KIND_TENSOR) em_tensor_set_shape(d->t, dt, NULL, -1);
        else em_value_set_type(d->t, kind, elem_kind, dt);
        break;
    }
    case EM_ATTR_GRAPHS:
        if (!(d->graphs = calloc(a->n_graphs + 1, sizeof(em_graph *)))) return oom(c);
        d->n = (int64_t)a->n_graphs;
        for (size_t i = 0; i < a->n_graphs; i++)
            EM_TRY(build_subgraph(c, a->graphs[i], g, node_index, depth + 1, &d->graphs[i]));
        break;
    default:
        return em_fail(c->err, EMBER_ERR_UNSUPPORTED,
                       "%s: %s: attribute '%s' has a type ember does not support (%d)", c->file,
                       node_desc, d->name, (int)d->type);
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Function expansion
 * ------------------------------------------------------------------------------------------- */

typedef struct pending_list {
    pending_node *items;
    size_t n, cap;
    pending_node **calls; /* function call nodes, heap-allocated so `caller` pointers stay valid */
    size_t n_calls, cap_calls;
} pending_list;

static void pending_node_clear(pending_node *p) {
    free(p->name);
    free(p->domain);
    for (size_t k = 0; k < p->n_in; k++) free(p->in[k]);
    for (size_t k = 0; k < p->n_out; k++) free(p->out[k]);
    free(p->in);
    free(p->out);
}

static void pending_free(pending_list *l) {
    for (size_t i = 0; i < l->n; i++) pending_node_clear(&l->items[i]);
    for (size_t i = 0; i < l->n_calls; i++) {
        pending_node_clear(l->calls[i]);
        free(l->calls[i]);
    }
    free(l->items);
    free(l->calls);
    memset(l, 0, sizeof *l);
}

static const Onnx__FunctionProto *find_function(load_ctx *c, const char *domain, const char *op) {
    if (!c->model) return NULL;
    for (size_t i = 0; i < c->model->n_functions; i++) {
        const Onnx__FunctionProto *f = c->model->functions[i];
        if (f->name && strcmp(f->name, op) == 0 &&
            strcmp(f->domain ? f->domain : "", domain ? domain : "") == 0)
            return f;
    }
    return NULL;
}

static int64_t opset_in(Onnx__OperatorSetIdProto *const *ops, size_t n, const char *domain) {
    if (!domain || strcmp(domain, "ai.onnx") == 0) domain = "";
    for (size_t i = 0; i < n; i++) {
        const char *d = ops[i]->domain ? ops[i]->domain : "";
        if (strcmp(d, "ai.onnx") == 0) d = "";
        if (strcmp(d, domain) == 0) return ops[i]->version;
    }
    return 0;
}

typedef struct name_map {
    size_t n;
    const char **from;
    const char **to;
} name_map;

/* Map a name inside a function body: formal parameters to actual names, internal names to
 * unique ones ("prefix/name"). Returns a malloc'd string. */
static char *map_name(const name_map *m, const char *name, const char *prefix) {
    if (!name || !name[0]) return dup_str("");
    if (!m) return dup_str(name);
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->from[i], name) == 0) return dup_str(m->to[i]);
    size_t len = strlen(prefix) + strlen(name) + 2;
    char *s = malloc(len);
    if (s) snprintf(s, len, "%s/%s", prefix, name);
    return s;
}

/* Nodes that inlining `nodes` makes, counted up to `budget` + 1: a function that calls
 * another twice, 20 deep, is a 2 KB file that inlines to a million nodes, so the budget is
 * checked before anything is allocated. */
static uint64_t count_expanded(load_ctx *c, Onnx__NodeProto *const *nodes, size_t n_nodes,
                               int depth, uint64_t budget) {
    if (depth > c->limits->max_depth) return 0; /* expand_nodes reports the depth */
    uint64_t total = 0;
    for (size_t i = 0; i < n_nodes && total <= budget; i++) {
        const Onnx__NodeProto *np = nodes[i];
        total++;
        if (!np->op_type) continue;
        const char *domain = np->domain ? np->domain : "";
        if (strcmp(domain, "ai.onnx") == 0) domain = "";
        const Onnx__FunctionProto *fn = find_function(c, domain, np->op_type);
        if (fn && total <= budget)
            total += count_expanded(c, fn->node, fn->n_node, depth + 1, budget - total);
    }
    return total;
}

static ember_status expand_nodes(load_ctx *c, Onnx__NodeProto *const *nodes, size_t n_nodes,
                                 Onnx__OperatorSetIdProto *const *opsets, size_t n_opsets,
                                 const pending_node *caller, const name_map *map,
                                 const char *prefix, int depth, pending_list *out) {
    if (depth > c->limits->max_depth)
        return em_fail(c->err, EMBER_ERR_LIMIT, "%s: functions nest deeper than %d levels",
                       c->file, c->limits->max_depth);
    if (!caller && count_expanded(c, nodes, n_nodes, depth, c->node_budget) > c->node_budget)
        return em_fail(c->err, EMBER_ERR_LIMIT,
                       "%s: more than %llu nodes once model-local functions are inlined", c->file,
                       (unsigned long long)c->limits->max_nodes);
    for (size_t i = 0; i < n_nodes; i++) {
        const Onnx__NodeProto *np = nodes[i];
        if (!np->op_type || !np->op_type[0])
            return em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: node #%zu ('%s') has no op_type",
                           c->file, out->n, np->name ? np->name : "");
        if (c->node_budget == 0)
            return em_fail(c->err, EMBER_ERR_LIMIT, "%s: more than %llu nodes", c->file,
                           (unsigned long long)c->limits->max_nodes);
        c->node_budget--;
        const char *domain = np->domain ? np->domain : "";
        if (strcmp(domain, "ai.onnx") == 0) domain = "";
        const Onnx__FunctionProto *fn = find_function(c, domain, np->op_type);
        pending_node *p = calloc(1, sizeof *p);
        if (!p) return oom(c);
        p->np = np;
        p->caller = caller;
        p->n_in = np->n_input;
        p->n_out = np->n_output;
        p->in = calloc(p->n_in + 1, sizeof(char *));
        p->out = calloc(p->n_out + 1, sizeof(char *));
        p->domain = dup_str(domain);
        p->name = map ? map_name(NULL, np->name, prefix) : dup_str(np->name);
        if (map && np->name && np->name[0]) {
            free(p->name);
            size_t len = strlen(prefix) + strlen(np->name) + 2;
            p->name = malloc(len);
            if (p->name) snprintf(p->name, len, "%s/%s", prefix, np->name);
        }
        p->opset = opset_in(opsets, n_opsets, domain);
        bool ok = p->in && p->out && p->domain && p->name;
        for (size_t k = 0; ok && k < p->n_in; k++)
            ok = (p->in[k] = map_name(map, np->input[k], prefix)) != NULL;
        for (size_t k = 0; ok && k < p->n_out; k++)
            ok = (p->out[k] = map_name(map, np->output[k], prefix)) != NULL;
        if (!fn) {
            if (out->n == out->cap) {
                size_t cap = out->cap ? out->cap * 2 : 64;
                pending_node *items = realloc(out->items, cap * sizeof *items);
                if (!items) ok = false;
                else {
                    out->items = items;
                    out->cap = cap;
                }
            }
            if (!ok) {
                pending_node_clear(p);
                free(p);
                return oom(c);
            }
            out->items[out->n++] = *p;
            free(p);
            continue;
        }
        /* A call of a model-local function: keep the call node (for attribute references)
         * and inline the body with formal names mapped to this call's actual names. */
        if (out->n_calls == out->cap_calls) {
            size_t cap = out->cap_calls ? out->cap_calls * 2 : 16;
            pending_node **calls = realloc(out->calls, cap * sizeof *calls);
            if (!calls) ok = false;
            else {
                out->calls = calls;
                out->cap_calls = cap;
            }
        }
        if (!ok) {
            pending_node_clear(p);
            free(p);
            return oom(c);
        }
        out->calls[out->n_calls++] = p;
        size_t nm = fn->n_input + fn->n_output;
        name_map fmap = {0};
        fmap.from = calloc(nm + 1, sizeof(char *));
        fmap.to = calloc(nm + 1, sizeof(char *));
        ember_status st = EMBER_OK;
        if (!fmap.from || !fmap.to) st = oom(c);
        for (size_t k = 0; st == EMBER_OK && k < fn->n_input; k++) {
            fmap.from[fmap.n] = fn->input[k];
            fmap.to[fmap.n++] = k < p->n_in ? p->in[k] : "";
        }
        for (size_t k = 0; st == EMBER_OK && k < fn->n_output; k++) {
            fmap.from[fmap.n] = fn->output[k];
            fmap.to[fmap.n++] = k < p->n_out ? p->out[k] : "";
        }
        char fprefix[512];
        snprintf(fprefix, sizeof fprefix, "%s%s%s#%d", prefix ? prefix : "", prefix ? "/" : "",
                 np->op_type, c->inline_counter++);
        if (st == EMBER_OK) {
            Onnx__OperatorSetIdProto *const *fops = fn->n_opset_import ? fn->opset_import : opsets;
            size_t nfops = fn->n_opset_import ? fn->n_opset_import : n_opsets;
            st = expand_nodes(c, fn->node, fn->n_node, fops, nfops, p, &fmap, fprefix, depth + 1,
                              out);
        }
        free(fmap.from);
        free(fmap.to);
        if (st != EMBER_OK) return st;
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Graphs
 * ------------------------------------------------------------------------------------------- */

static int owner_of(const scope_stack *s, const em_graph *g) {
    for (int i = s->n - 1; i >= 0; i--)
        if (s->links[i].g == g) return s->links[i].owner_node;
    return -1;
}

/* Value id for `name` as seen from graph g, capturing it from enclosing graphs if needed (the
 * owning node in the parent gets it as an implicit input). -1: undefined, -2: no memory. */
static int resolve_in(load_ctx *c, em_graph *g, const char *name) {
    scope_stack *s = &c->scopes;
    int v = find_value(c, g, name);
    if (v >= 0) return v;
    if (!g->parent) return -1;
    int pv = resolve_in(c, g->parent, name);
    if (pv < 0) return pv;
    /* Capture pv: make it an implicit input of the owning node in the parent. */
    int owner = owner_of(s, g);
    if (owner < 0) return -1;
    em_node *node = &g->parent->nodes[owner];
    int slot = -1;
    for (int k = node->n_explicit_inputs; k < node->n_inputs; k++)
        if (node->inputs[k] == pv) slot = k;
    if (slot < 0) {
        int *in = realloc(node->inputs, sizeof(int) * (size_t)(node->n_inputs + 1));
        if (!in) return -2;
        node->inputs = in;
        in[node->n_inputs] = pv;
        slot = node->n_inputs++;
    }
    v = add_value(c, g, name);
    if (v < 0) return -2;
    int *caps = realloc(g->captures, sizeof(int) * (size_t)(g->n_captures + 1));
    if (!caps) return -2;
    g->captures = caps;
    caps[g->n_captures++] = v;
    g->values[v].outer = slot;
    g->values[v].info = g->parent->values[pv].constant ? *g->parent->values[pv].constant
                                                        : g->parent->values[pv].info;
    g->values[v].info.data = NULL;
    g->values[v].info.owns_data = false;
    return v;
}

static ember_status convert_nodes(load_ctx *c, em_graph *g, pending_list *pl, int depth);

static ember_status build_graph(load_ctx *c, const Onnx__GraphProto *gp, em_graph *g,
                                int owner_node, int depth) {
    scope_stack *scopes = &c->scopes;
    if (depth > c->limits->max_depth || scopes->n >= MAX_SCOPES)
        return em_fail(c->err, EMBER_ERR_LIMIT, "%s: subgraphs nest deeper than %d levels", c->file,
                       c->limits->max_depth);
    scopes->links[scopes->n++] = (scope_link){g, owner_node};
    ember_status st = EMBER_OK;
    free(g->name);
    g->name = dup_str(gp->name);
    if (!g->name) st = oom(c);
    /* Initializers: constants. */
    for (size_t i = 0; st == EMBER_OK && i < gp->n_initializer; i++) {
        const Onnx__TensorProto *tp = gp->initializer[i];
        const char *name = tp->name ? tp->name : "";
        if (!name[0]) {
            st = em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: initializer #%zu has no name",
                         c->file, i);
            break;
        }
        if (find_value(c, g, name) >= 0) {
            st = em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: initializer '%s' is defined twice",
                         c->file, name);
            break;
        }
        int v = add_value(c, g, name);
        if (v < 0) {
            st = oom(c);
            break;
        }
        st = tensor_from_proto(tp, c->base_dir, c->limits, &g->values[v].constant, c->err);
        if (st != EMBER_OK) em_wrap(c->err, st, "%s: initializer '%s'", c->file, name);
        else em_tensor_set_shape(&g->values[v].info, g->values[v].constant->dtype,
                                 g->values[v].constant->dims, g->values[v].constant->rank);
    }
    if (st == EMBER_OK && gp->n_sparse_initializer)
        st = em_fail(c->err, EMBER_ERR_UNSUPPORTED, "%s: sparse initializers are not supported",
                     c->file);
    /* Inputs. */
    if (st == EMBER_OK) {
        g->inputs = malloc(sizeof(int) * (gp->n_input + 1));
        if (!g->inputs) st = oom(c);
    }
    for (size_t i = 0; st == EMBER_OK && i < gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = gp->input[i];
        const char *name = vi->name ? vi->name : "";
        int v = find_value(c, g, name);
        if (v >= 0 && (g->values[v].is_input || !g->values[v].constant)) {
            st = em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: graph input '%s' is declared twice",
                         c->file, name);
            break;
        }
        if (!name[0] && !g->parent) {
            st = em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: graph input #%zu has no name",
                         c->file, i);
            break;
        }
        if (v < 0) {
            v = add_value(c, g, name);
            if (v < 0) {
                st = oom(c);
                break;
            }
            st = apply_value_info(c, &g->values[v], vi, true);
        }
        g->values[v].is_input = true;
        g->inputs[g->n_inputs++] = v;
    }
    /* Pass 1: expand functions, create a value for every node output. */
    pending_list pl = {0};
    if (st == EMBER_OK)
        st = expand_nodes(c, gp->node, gp->n_node, c->model->opset_import,
                          c->model->n_opset_import, NULL, NULL, NULL, depth, &pl);
    for (size_t i = 0; st == EMBER_OK && i < pl.n; i++) {
        for (size_t k = 0; k < pl.items[i].n_out; k++) {
            const char *name = pl.items[i].out[k];
            if (!name[0]) continue;
            int v = find_value(c, g, name);
            if (v >= 0) {
                const em_value *val = &g->values[v];
                st = em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                             "%s: node '%s' (#%zu, %s) writes '%s', which is already %s", c->file,
                             pl.items[i].name, i, pl.items[i].np->op_type, name,
                             val->constant   ? "an initializer"
                             : val->is_input ? "a graph input"
                                             : "written by another node");
                break;
            }
            if (add_value(c, g, name) < 0) {
                st = oom(c);
                break;
            }
        }
    }
    /* value_info: static types of intermediates. */
    for (size_t i = 0; st == EMBER_OK && i < gp->n_value_info; i++) {
        int v = find_value(c, g, gp->value_info[i]->name ? gp->value_info[i]->name : "");
        if (v >= 0 && !g->values[v].constant && !g->values[v].is_input)
            st = apply_value_info(c, &g->values[v], gp->value_info[i], false);
    }
    /* Pass 2: nodes. */
    if (st == EMBER_OK) st = convert_nodes(c, g, &pl, depth);
    pending_free(&pl);
    /* Outputs. */
    if (st == EMBER_OK) {
        g->outputs = malloc(sizeof(int) * (gp->n_output + 1));
        if (!g->outputs) st = oom(c);
    }
    for (size_t i = 0; st == EMBER_OK && i < gp->n_output; i++) {
        const Onnx__ValueInfoProto *vi = gp->output[i];
        const char *name = vi->name ? vi->name : "";
        int v = resolve_in(c, g, name);
        if (v == -2) st = oom(c);
        else if (v < 0)
            st = em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                         "%s: graph output '%s' is not produced by any node", c->file, name);
        else {
            g->values[v].is_output = true;
            g->outputs[g->n_outputs++] = v;
            if (g->values[v].producer >= 0 || !g->values[v].constant)
                st = apply_value_info(c, &g->values[v], vi, g->parent == NULL);
        }
    }
    scopes->n--;
    if (st == EMBER_OK) st = em_graph_finalize(g, c->file, c->err);
    return st;
}

static ember_status convert_nodes(load_ctx *c, em_graph *g, pending_list *pl, int depth) {
    for (size_t i = 0; i < pl->n; i++) {
        const pending_node *p = &pl->items[i];
        const Onnx__NodeProto *np = p->np;
        char desc[512];
        snprintf(desc, sizeof desc, "node '%s' (#%zu, %s%s%s)", p->name, i, p->domain,
                 p->domain[0] ? ":" : "", np->op_type);
        bool is_constant = p->domain[0] == '\0' && strcmp(np->op_type, "Constant") == 0;
        if (is_constant) {
            /* Constant nodes become constant values right away. */
            if (p->n_out != 1 || !p->out[0][0])
                return em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: %s must have one output",
                               c->file, desc);
            if (np->n_attribute != 1)
                return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                               "%s: %s must have exactly one attribute, has %zu", c->file, desc,
                               np->n_attribute);
            const Onnx__AttributeProto *a = np->attribute[0];
            if (a->ref_attr_name && a->ref_attr_name[0]) {
                const Onnx__AttributeProto *r = find_caller_attr(p->caller, a->ref_attr_name);
                if (!r)
                    return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                                   "%s: %s refers to attribute '%s' that the call lacks", c->file,
                                   desc, a->ref_attr_name);
                a = r;
            }
            em_attr at;
            ember_status st = convert_attr(c, a, &at, g, -1, depth, desc);
            if (st != EMBER_OK) {
                em_attr_clear(&at);
                return st;
            }
            em_tensor *t = NULL;
            ember_error *err = c->err;
            const char *an = a->name ? a->name : "";
            if (strcmp(an, "value") == 0 && at.type == EM_ATTR_TENSOR) {
                t = at.t;
                at.t = NULL;
            } else if (strcmp(an, "value_float") == 0 && at.type == EM_ATTR_FLOAT) {
                if ((t = em_tensor_new(EMBER_FLOAT, NULL, 0, err))) *(float *)t->data = at.f;
            } else if (strcmp(an, "value_int") == 0 && at.type == EM_ATTR_INT) {
                if ((t = em_tensor_new(EMBER_INT64, NULL, 0, err))) *(int64_t *)t->data = at.i;
            } else if (strcmp(an, "value_floats") == 0 && at.type == EM_ATTR_FLOATS) {
                int64_t d = at.n;
                if ((t = em_tensor_new(EMBER_FLOAT, &d, 1, err)) && d)
                    memcpy(t->data, at.floats, sizeof(float) * (size_t)d);
            } else if (strcmp(an, "value_ints") == 0 && at.type == EM_ATTR_INTS) {
                int64_t d = at.n;
                if ((t = em_tensor_new(EMBER_INT64, &d, 1, err)) && d)
                    memcpy(t->data, at.ints, sizeof(int64_t) * (size_t)d);
            } else if (strcmp(an, "value_string") == 0 && at.type == EM_ATTR_STRING) {
                if ((t = em_string_tensor_new(NULL, 0, err)) &&
                    em_string_set(t, 0, at.s, at.s_len, err) != EMBER_OK) {
                    em_tensor_free(t);
                    t = NULL;
                }
            } else if (strcmp(an, "value_strings") == 0 && at.type == EM_ATTR_STRINGS) {
                int64_t d = at.n;
                t = em_string_tensor_new(&d, 1, err);
                for (int64_t k = 0; t && k < d; k++)
                    if (em_string_set(t, k, at.strings[k], strlen(at.strings[k]), err) !=
                        EMBER_OK) {
                        em_tensor_free(t);
                        t = NULL;
                    }
            } else {
                em_attr_clear(&at);
                return em_fail(c->err,
                               strcmp(an, "sparse_value") == 0 ? EMBER_ERR_UNSUPPORTED
                                   : EMBER_ERR_INVALID_MODEL,
                               "%s: %s: attribute '%s' is not supported for Constant", c->file,
                               desc, an);
            }
            em_attr_clear(&at);
            if (!t) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
            int v = find_value(c, g, p->out[0]);
            g->values[v].constant = t;
            em_tensor_set_shape(&g->values[v].info, t->dtype, t->dims, t->rank);
            continue;
        }
        int in[1], out[1];
        int ni = em_graph_add_node(g, np->op_type, p->domain, p->name, 0, in, 0, out);
        if (ni < 0) return oom(c);
        em_node *node = &g->nodes[ni];
        node->index = (int)i;
        node->opset = (int)(p->opset > INT_MAX ? INT_MAX : p->opset);
        if (p->opset == 0)
            return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                           "%s: %s uses domain '%s', which the model does not import", c->file,
                           desc, p->domain);
        free(node->outputs);
        node->outputs = malloc(sizeof(int) * (p->n_out + 1));
        if (!node->outputs) return oom(c);
        for (size_t k = 0; k < p->n_out; k++)
            node->outputs[k] = p->out[k][0] ? find_value(c, g, p->out[k]) : -1;
        node->n_outputs = (int)p->n_out;
        free(node->inputs);
        node->inputs = malloc(sizeof(int) * (p->n_in + 1));
        if (!node->inputs) return oom(c);
        node->n_inputs = node->n_explicit_inputs = 0;
        for (size_t k = 0; k < p->n_in; k++) {
            int v = -1;
            if (p->in[k][0]) {
                v = resolve_in(c, g, p->in[k]);
                node = &g->nodes[ni];
                if (v == -2) return oom(c);
                if (v < 0)
                    return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                                   "%s: %s reads '%s', which no node produces and is neither a "
                                   "graph input nor an initializer",
                                   c->file, desc, p->in[k]);
            }
            node->inputs[node->n_inputs++] = v;
            node->n_explicit_inputs = node->n_inputs;
        }
        /* Attributes (subgraphs may append implicit inputs to this node). The duplicate check
         * below is quadratic: ONNX operators have at most a few dozen attributes. */
        if (np->n_attribute > MAX_NODE_ATTRIBUTES)
            return em_fail(c->err, EMBER_ERR_LIMIT, "%s: %s has %zu attributes; the limit is %d",
                           c->file, desc, np->n_attribute, MAX_NODE_ATTRIBUTES);
        if (np->n_attribute) {
            node->attrs = calloc(np->n_attribute, sizeof(em_attr));
            if (!node->attrs) return oom(c);
        }
        for (size_t k = 0; k < np->n_attribute; k++) {
            const Onnx__AttributeProto *a = np->attribute[k];
            const char *aname = a->name ? a->name : "";
            if (!aname[0])
                return em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: %s has an attribute with no name",
                               c->file, desc);
            for (int j = 0; j < g->nodes[ni].n_attrs; j++)
                if (strcmp(g->nodes[ni].attrs[j].name, aname) == 0)
                    return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                                   "%s: %s has attribute '%s' twice", c->file, desc, aname);
            if (a->ref_attr_name && a->ref_attr_name[0]) {
                const Onnx__AttributeProto *r = find_caller_attr(p->caller, a->ref_attr_name);
                if (!r) continue; /* not given by the call: the attribute takes its default */
                a = r;
            }
            em_attr at;
            ember_status st = convert_attr(c, a, &at, g, ni, depth, desc);
            if (st != EMBER_OK) {
                em_attr_clear(&at);
                return st;
            }
            free(at.name);
            at.name = dup_str(aname);
            node = &g->nodes[ni];
            if (!at.name) {
                em_attr_clear(&at);
                return oom(c);
            }
            node->attrs[node->n_attrs++] = at;
        }
    }
    return EMBER_OK;
}

static ember_status build_subgraph(load_ctx *c, const Onnx__GraphProto *gp, em_graph *parent,
                                   int node_index, int depth, em_graph **out) {
    *out = NULL;
    if (node_index < 0)
        return em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: a graph attribute outside a node",
                       c->file);
    em_graph *g = em_graph_new();
    if (!g) return oom(c);
    g->parent = parent;
    g->opsets = parent->opsets;
    g->n_opsets = parent->n_opsets;
    ember_status st = build_graph(c, gp, g, node_index, depth);
    if (st != EMBER_OK) {
        em_graph_free(g);
        return st;
    }
    *out = g;
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Kernel resolution: every unsupported operator of the model in one message
 * ------------------------------------------------------------------------------------------- */

typedef struct missing_list {
    char text[EMBER_ERROR_MESSAGE_SIZE - 128];
    size_t len;
    int count;
} missing_list;

static void note_missing(missing_list *m, const em_node *n) {
    char item[256];
    char key[160];
    snprintf(key, sizeof key, "%s%s%s (opset %d)", n->domain, n->domain[0] ? ":" : "", n->op_type,
             n->opset);
    if (strstr(m->text, key)) return; /* list each op once */
    int len = snprintf(item, sizeof item, "%s%s at node '%s' #%d", m->count ? "; " : "", key,
                       n->name, n->index);
    m->count++;
    if (len > 0 && m->len + (size_t)len + 8 < sizeof m->text) {
        memcpy(m->text + m->len, item, (size_t)len + 1);
        m->len += (size_t)len;
    } else if (m->len + 5 < sizeof m->text && !strstr(m->text, "...")) {
        memcpy(m->text + m->len, "; ...", 6);
        m->len += 5;
    }
}

static void resolve_kernels(em_graph *g, missing_list *m) {
    for (int i = 0; i < g->n_nodes; i++) {
        em_node *n = &g->nodes[i];
        n->op = em_registry_find(n->domain, n->op_type, n->opset);
        if (!n->op) note_missing(m, n);
        for (int a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g) resolve_kernels(n->attrs[a].g, m);
            for (int64_t k = 0; n->attrs[a].graphs && k < n->attrs[a].n; k++)
                resolve_kernels(n->attrs[a].graphs[k], m);
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Arity: kernels may rely on the inputs their operator requires
 * ------------------------------------------------------------------------------------------- */

typedef struct op_arity {
    const char *op_type;
    int since_version, min_in, max_in, min_out, max_out;
    uint32_t required_in; /* bit k: input k is a Single parameter and may not be left empty */
    int variadic_from;    /* inputs from here on are elements of a variadic parameter (-1: none) */
} op_arity;

static const op_arity k_arity[] = {
#include "onnx_arity.inc"
};

/* The ai.ember operators the optimizer makes (contracts in ops/: conv.c, conv_mbconv.c,
 * gemm.c, softmax.c, norm.c) may also come in a model file: their kernels index the inputs
 * listed here. required: bit k, input k may not be empty. One output each. */
typedef struct ember_arity {
    const char *op_type;
    int min_in, max_in;
    uint32_t required;
} ember_arity;

static const ember_arity k_ember_arity[] = {
    {"AddLayerNormalization", 3, 4, 0x7}, {"FusedAttention", 4, 4, 0xF},
    {"FusedConv", 2, 4, 0x3},             {"FusedGemm", 2, 3, 0x3},
    {"FusedMBConv", 7, 8, 0x29}, /* X, W2, W3 */
    {"FusedMatMul", 2, 3, 0x3},
};

static ember_status check_ember_arity(const load_ctx *c, const em_node *n) {
    if (strcmp(n->domain, "ai.ember") != 0) return EMBER_OK;
    const ember_arity *a = NULL;
    for (size_t i = 0; i < sizeof k_ember_arity / sizeof k_ember_arity[0]; i++)
        if (strcmp(k_ember_arity[i].op_type, n->op_type) == 0) a = &k_ember_arity[i];
    if (!a) return EMBER_OK;
    char desc[256];
    em_node_desc(n, desc, sizeof desc);
    if (n->n_explicit_inputs < a->min_in || n->n_explicit_inputs > a->max_in)
        return em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: %s has %d input%s; ai.ember:%s takes %d to %d",
                       c->file, desc, n->n_explicit_inputs, n->n_explicit_inputs == 1 ? "" : "s",
                       n->op_type, a->min_in, a->max_in);
    if (n->n_outputs != 1 || n->outputs[0] < 0)
        return em_fail(c->err, EMBER_ERR_INVALID_MODEL, "%s: %s has %d outputs; ai.ember:%s gives one",
                       c->file, desc, n->n_outputs, n->op_type);
    for (int k = 0; k < n->n_explicit_inputs && k < 32; k++)
        if ((a->required >> k & 1) && n->inputs[k] < 0)
            return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                           "%s: %s leaves input %d empty, which ai.ember:%s requires", c->file, desc,
                           k, n->op_type);
    return EMBER_OK;
}

/* A default-domain node with fewer inputs than its operator requires (or a required input left
 * empty) made kernels read past their input array. */
static ember_status check_arity(const load_ctx *c, const em_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        for (int a = 0; a < n->n_attrs; a++) {
            if (n->attrs[a].g) EM_TRY(check_arity(c, n->attrs[a].g));
            for (int64_t k = 0; n->attrs[a].graphs && k < n->attrs[a].n; k++)
                EM_TRY(check_arity(c, n->attrs[a].graphs[k]));
        }
        if (n->domain[0]) {
            EM_TRY(check_ember_arity(c, n));
            continue;
        }
        int version = em_onnx_op_version(n->op_type, n->opset);
        /* The table is sorted by op_type, then version: find the first row of op_type. */
        size_t lo = 0, hi = sizeof k_arity / sizeof k_arity[0];
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (strcmp(k_arity[mid].op_type, n->op_type) < 0) lo = mid + 1;
            else hi = mid;
        }
        const op_arity *best = NULL;
        for (size_t k = lo; k < sizeof k_arity / sizeof k_arity[0] &&
                            strcmp(k_arity[k].op_type, n->op_type) == 0;
             k++)
            if (k_arity[k].since_version <= version) best = &k_arity[k];
        if (!best) continue;
        /* A version newer than the schemas ember was built with may take more. */
        bool exact = best->since_version == version;
        int max_in = exact ? best->max_in : INT_MAX, max_out = exact ? best->max_out : INT_MAX;
        char desc[256];
        em_node_desc(n, desc, sizeof desc);
        if (n->n_explicit_inputs < best->min_in || n->n_explicit_inputs > max_in)
            return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                           "%s: %s has %d input%s; %s-%d takes %d to %d", c->file, desc,
                           n->n_explicit_inputs, n->n_explicit_inputs == 1 ? "" : "s",
                           n->op_type, best->since_version, best->min_in, max_in);
        if (n->n_outputs < best->min_out || n->n_outputs > max_out)
            return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                           "%s: %s has %d output%s; %s-%d gives %d to %d", c->file, desc,
                           n->n_outputs, n->n_outputs == 1 ? "" : "s", n->op_type,
                           best->since_version, best->min_out, max_out);
        for (int k = 0; k < n->n_explicit_inputs; k++)
            if (((k < 32 && (best->required_in >> k & 1)) ||
                 (best->variadic_from >= 0 && k >= best->variadic_from)) &&
                n->inputs[k] < 0)
                return em_fail(c->err, EMBER_ERR_INVALID_MODEL,
                               "%s: %s leaves input %d empty, which %s requires", c->file, desc, k,
                               n->op_type);
    }
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------------------------- */

void em_model_release(struct ember_model *m) {
    if (!m) return;
    if (atomic_fetch_sub(&m->refs, 1) != 1) return;
    em_graph_free(m->graph);
    free(m->producer);
    free(m->path);
    free(m->inputs);
    free(m->outputs);
    for (size_t i = 0; i < m->n_warnings; i++) free(m->warnings[i]);
    free(m->warnings);
    free(m->nodes);
    free(m);
}

static void describe_value(const em_value *v, ember_value_info *info) {
    info->name = v->name;
    info->dtype = v->constant ? v->constant->dtype : v->info.dtype;
    info->rank = v->constant ? v->constant->rank : v->info.rank;
    info->dims = v->constant ? v->constant->dims : v->info.dims;
    info->dim_names = (const char *const *)v->dim_params;
    info->kind = v->constant ? EMBER_KIND_TENSOR : v->info.kind;
    info->element_kind = v->constant ? EMBER_KIND_TENSOR : v->info.elem_kind;
}

static ember_status build_public_info(struct ember_model *m) {
    em_graph *g = m->graph;
    m->inputs = calloc((size_t)g->n_inputs + 1, sizeof(ember_value_info));
    m->outputs = calloc((size_t)g->n_outputs + 1, sizeof(ember_value_info));
    m->nodes = calloc((size_t)g->n_nodes + 1, sizeof(ember_node_info));
    if (!m->inputs || !m->outputs || !m->nodes) return EMBER_ERR_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_inputs; i++) {
        const em_value *v = &g->values[g->inputs[i]];
        if (v->constant) continue; /* weights listed as inputs (IR < 4) stay optional */
        describe_value(v, &m->inputs[m->n_inputs++]);
    }
    for (int i = 0; i < g->n_outputs; i++)
        describe_value(&g->values[g->outputs[i]], &m->outputs[m->n_outputs++]);
    for (int i = 0; i < g->n_nodes; i++) {
        const em_node *n = &g->nodes[i];
        m->nodes[i] = (ember_node_info){n->name, n->op_type, n->domain, n->opset};
    }
    m->n_nodes = (size_t)g->n_nodes;
    for (int i = 0; i < g->n_values; i++) {
        const em_tensor *t = g->values[i].constant;
        if (!t) continue;
        m->param_count += (uint64_t)em_numel(t);
        m->param_bytes += em_nbytes(t);
    }
    return EMBER_OK;
}

/* Decode model bytes after the wire pre-check; free with onnx__model_proto__free_unpacked. */
static ember_status unpack_model(const void *data, size_t size, const char *file,
                                 const em_load_limits *limits, Onnx__ModelProto **out,
                                 ember_error *err) {
    *out = NULL;
    if (size == 0)
        return em_fail(err, EMBER_ERR_PARSE, "%s: empty file, not an ONNX model", file);
    EM_TRY(check_wire(data, size, file, limits, err));
    *out = onnx__model_proto__unpack(NULL, size, data);
    if (!*out)
        return em_fail(err, EMBER_ERR_PARSE,
                       "%s: not an ONNX model (protobuf decode failed: truncated or corrupt file)",
                       file);
    return EMBER_OK;
}

ember_status em_model_load(const void *data, size_t size, const char *display_name,
                           const char *base_dir, const em_load_limits *limits,
                           struct ember_model **out, ember_error *err) {
    *out = NULL;
    const char *file = display_name ? display_name : "<memory>";
    Onnx__ModelProto *mp;
    EM_TRY(unpack_model(data, size, file, limits, &mp, err));
    ember_status st = EMBER_OK;
    struct ember_model *m = calloc(1, sizeof *m);
    load_ctx c = {0};
    c.file = file;
    c.base_dir = base_dir;
    c.limits = limits;
    c.model = mp;
    c.node_budget = limits->max_nodes;
    c.err = err;
    if (!m) {
        st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
        goto done;
    }
    atomic_init(&m->refs, 1);
    m->ir_version = mp->has_ir_version ? mp->ir_version : 0;
    m->producer = dup_str(mp->producer_name);
    m->path = dup_str(file);
    m->graph = em_graph_new();
    if (!m->producer || !m->path || !m->graph) {
        st = oom(&c);
        goto done;
    }
    if (!mp->graph) {
        st = em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: the model has no graph", file);
        goto done;
    }
    if (m->ir_version < 3 && mp->n_opset_import == 0) {
        st = em_fail(err, EMBER_ERR_UNSUPPORTED,
                     "%s: IR version %lld without opset_import is not supported", file,
                     (long long)m->ir_version);
        goto done;
    }
    /* Opsets. */
    em_graph *g = m->graph;
    g->owns_opsets = true;
    g->opsets = calloc(mp->n_opset_import + 1, sizeof(em_opset));
    if (!g->opsets) {
        st = oom(&c);
        goto done;
    }
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const char *d = mp->opset_import[i]->domain ? mp->opset_import[i]->domain : "";
        if (strcmp(d, "ai.onnx") == 0) d = "";
        if (!(g->opsets[i].domain = dup_str(d))) {
            st = oom(&c);
            goto done;
        }
        g->opsets[i].version = mp->opset_import[i]->version;
        g->n_opsets = (int)i + 1;
    }
    st = build_graph(&c, mp->graph, g, -1, 0);
    if (st != EMBER_OK) goto done;
    missing_list missing = {0};
    resolve_kernels(g, &missing);
    if (missing.count) {
        st = em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: %d unsupported operator%s: %s", file,
                     missing.count, missing.count == 1 ? "" : "s", missing.text);
        goto done;
    }
    st = check_arity(&c, g);
    if (st != EMBER_OK) goto done;
    st = em_infer_static(g, file, err);
    if (st != EMBER_OK) goto done;
    m->n_warnings = em_lint(g, &m->warnings);
    if (build_public_info(m) != EMBER_OK) st = oom(&c);
done:
    free(c.names.slots);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st != EMBER_OK) {
        if (m) em_model_release(m);
        return st;
    }
    *out = m;
    return EMBER_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Operator scan: the (domain, op_type) pairs a model uses, without building anything
 * ------------------------------------------------------------------------------------------- */

void em_op_scan_free(struct ember_op_scan *scan) {
    if (!scan) return;
    for (size_t i = 0; i < scan->count; i++) {
        free((char *)scan->uses[i].domain);
        free((char *)scan->uses[i].op_type);
    }
    free(scan->uses);
    free(scan);
}

typedef struct scan_ctx {
    const Onnx__ModelProto *model;
    const em_load_limits *limits;
    const char *file;
    struct ember_op_scan *scan;
    ember_error *err;
} scan_ctx;

static ember_status scan_note(scan_ctx *s, const char *domain, const char *op_type) {
    struct ember_op_scan *scan = s->scan;
    for (size_t i = 0; i < scan->count; i++)
        if (strcmp(scan->uses[i].op_type, op_type) == 0 &&
            strcmp(scan->uses[i].domain, domain) == 0)
            return EMBER_OK;
    if (scan->count == scan->capacity) {
        size_t capacity = scan->capacity ? scan->capacity * 2 : 16;
        ember_op_use *grown = realloc(scan->uses, capacity * sizeof *grown);
        if (!grown) return em_fail(s->err, EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", s->file);
        scan->uses = grown;
        scan->capacity = capacity;
    }
    const Onnx__ModelProto *mp = s->model;
    int64_t opset = opset_in(mp->opset_import, mp->n_opset_import, domain);
    bool function = false;
    for (size_t f = 0; f < mp->n_functions && !function; f++) {
        const char *fd = mp->functions[f]->domain ? mp->functions[f]->domain : "";
        function = mp->functions[f]->name && strcmp(mp->functions[f]->name, op_type) == 0 &&
                   strcmp(fd, domain) == 0;
    }
    ember_op_use *use = &scan->uses[scan->count];
    use->domain = dup_str(domain);
    use->op_type = dup_str(op_type);
    use->opset = opset;
    use->supported = function || em_registry_find(domain, op_type, opset) != NULL;
    if (!use->domain || !use->op_type) {
        free((char *)use->domain);
        free((char *)use->op_type);
        return em_fail(s->err, EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", s->file);
    }
    scan->count++;
    return EMBER_OK;
}

static ember_status scan_graph(scan_ctx *s, const Onnx__GraphProto *gp, int depth) {
    if (depth > s->limits->max_depth)
        return em_fail(s->err, EMBER_ERR_LIMIT, "%s: subgraphs nested deeper than %d", s->file,
                       s->limits->max_depth);
    for (size_t i = 0; i < gp->n_node; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        const char *domain = np->domain ? np->domain : "";
        if (strcmp(domain, "ai.onnx") == 0) domain = "";
        EM_TRY(scan_note(s, domain, np->op_type ? np->op_type : ""));
        for (size_t a = 0; a < np->n_attribute; a++) {
            const Onnx__AttributeProto *ap = np->attribute[a];
            if (ap->g) EM_TRY(scan_graph(s, ap->g, depth + 1));
            for (size_t k = 0; k < ap->n_graphs; k++)
                EM_TRY(scan_graph(s, ap->graphs[k], depth + 1));
        }
    }
    return EMBER_OK;
}

ember_status em_scan_ops(const void *data, size_t size, const char *display_name,
                         const em_load_limits *limits, struct ember_op_scan **out,
                         ember_error *err) {
    *out = NULL;
    const char *file = display_name ? display_name : "<memory>";
    Onnx__ModelProto *mp;
    EM_TRY(unpack_model(data, size, file, limits, &mp, err));
    scan_ctx s = {.model = mp, .limits = limits, .file = file, .err = err};
    s.scan = calloc(1, sizeof *s.scan);
    ember_status st = s.scan ? EMBER_OK
                             : em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory", file);
    if (st == EMBER_OK && !mp->graph)
        st = em_fail(err, EMBER_ERR_INVALID_MODEL, "%s: the model has no graph", file);
    if (st == EMBER_OK) st = scan_graph(&s, mp->graph, 0);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (st != EMBER_OK) {
        em_op_scan_free(s.scan);
        return st;
    }
    *out = s.scan;
    return EMBER_OK;
}
