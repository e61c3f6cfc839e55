/* Tensor files: .npy (version 1-3, little-endian, C order) and ONNX TensorProto (.pb). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

static ember_dtype npy_dtype(const char *descr) {
    static const struct {
        const char *d;
        ember_dtype t;
    } map[] = {{"f4", EMBER_FLOAT},  {"f8", EMBER_DOUBLE}, {"f2", EMBER_FLOAT16},
               {"i1", EMBER_INT8},   {"u1", EMBER_UINT8},  {"i2", EMBER_INT16},
               {"u2", EMBER_UINT16}, {"i4", EMBER_INT32},  {"u4", EMBER_UINT32},
               {"i8", EMBER_INT64},  {"u8", EMBER_UINT64}, {"b1", EMBER_BOOL}};
    char order = descr[0];
    if (order != '<' && order != '|' && order != '=') return EMBER_UNDEFINED;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(descr + 1, map[i].d) == 0) return map[i].t;
    return EMBER_UNDEFINED;
}

static const char *npy_descr(ember_dtype t) {
    switch (t) {
    case EMBER_FLOAT: return "<f4";
    case EMBER_DOUBLE: return "<f8";
    case EMBER_FLOAT16: return "<f2";
    case EMBER_INT8: return "|i1";
    case EMBER_UINT8: return "|u1";
    case EMBER_INT16: return "<i2";
    case EMBER_UINT16: return "<u2";
    case EMBER_INT32: return "<i4";
    case EMBER_UINT32: return "<u4";
    case EMBER_INT64: return "<i8";
    case EMBER_UINT64: return "<u8";
    case EMBER_BOOL: return "|b1";
    default: return NULL;
    }
}

/* Find `'key':` in the header dict and return a pointer after the colon and spaces. */
static const char *dict_value(const char *h, const char *key) {
    const char *p = strstr(h, key);
    if (!p) return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == '\'' || *p == '"') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static ember_status npy_parse(const unsigned char *data, size_t size, em_tensor **out,
                              ember_error *err) {
    *out = NULL;
    if (size < 10) return em_fail(err, EMBER_ERR_PARSE, "npy: file too short");
    int major = data[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)data[8] | (size_t)data[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) return em_fail(err, EMBER_ERR_PARSE, "npy: file too short");
        hlen = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 |
               (size_t)data[11] << 24;
        hstart = 12;
    } else {
        return em_fail(err, EMBER_ERR_PARSE, "npy: unknown format version %d", major);
    }
    if (hlen > size - hstart || hlen > 1 << 20)
        return em_fail(err, EMBER_ERR_PARSE, "npy: header runs past the end of the file");
    char *h = malloc(hlen + 1);
    if (!h) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(h, data + hstart, hlen);
    h[hlen] = '\0';
    ember_status st = EMBER_OK;
    const char *descr = dict_value(h, "descr");
    const char *fortran = dict_value(h, "fortran_order");
    const char *shape = dict_value(h, "shape");
    char dbuf[16] = {0};
    if (!descr || !fortran || !shape || *shape != '(') {
        st = em_fail(err, EMBER_ERR_PARSE, "npy: header lacks descr, fortran_order or shape");
        goto done;
    }
    if (*descr == '\'' || *descr == '"') descr++;
    for (int i = 0; i < 15 && descr[i] && descr[i] != '\'' && descr[i] != '"'; i++) dbuf[i] = descr[i];
    ember_dtype dt = npy_dtype(dbuf);
    if (dt == EMBER_UNDEFINED) {
        st = em_fail(err, EMBER_ERR_UNSUPPORTED, "npy: element type '%s' is not supported "
                     "(little-endian numeric or bool only)", dbuf);
        goto done;
    }
    if (strncmp(fortran, "True", 4) == 0) {
        st = em_fail(err, EMBER_ERR_UNSUPPORTED, "npy: Fortran-ordered arrays are not supported");
        goto done;
    }
    int64_t dims[EM_MAX_RANK];
    int rank = 0;
    const char *p = shape + 1;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0) {
            st = em_fail(err, EMBER_ERR_PARSE, "npy: bad shape in header");
            goto done;
        }
        if (rank >= EM_MAX_RANK) {
            st = em_fail(err, EMBER_ERR_UNSUPPORTED, "npy: rank above %d", EM_MAX_RANK);
            goto done;
        }
        dims[rank++] = v;
        p = end;
    }
    int64_t n = em_shape_numel(dims, rank);
    size_t es = em_dtype_size(dt);
    size_t body = size - hstart - hlen;
    if (n < 0 || (uint64_t)n > body / es) {
        st = em_fail(err, EMBER_ERR_PARSE, "npy: data is shorter than the shape needs");
        goto done;
    }
    em_tensor *t = em_tensor_new(dt, dims, rank, err);
    if (!t) {
        st = err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
        goto done;
    }
    memcpy(t->data, data + hstart + hlen, (size_t)n * es);
    if (dt == EMBER_BOOL)
        for (int64_t i = 0; i < n; i++) ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
    *out = t;
done:
    free(h);
    return st;
}

/* ---- SequenceProto / OptionalProto (onnx-data.proto) ----
 * The schema ember compiles (onnx.proto) lacks these two messages, so their outer layer is
 * decoded here by hand; the TensorProtos inside go through em_tensor_from_pb. Both messages
 * number their fields alike: 1 name, 2 elem_type, 3 tensor value(s), 4 sparse tensor(s),
 * 5 sequence(s), 6 map(s), 7 optional(s). elem_type: 1 tensor, 3 sequence, 5 optional. */

ember_status em_read_file(const char *path, void **data, size_t *size, ember_error *err);

enum { PB_ELEM_TENSOR = 1, PB_ELEM_SEQUENCE = 3, PB_ELEM_OPTIONAL = 5 };
#define PB_MAX_NESTING 8

typedef struct pb_field {
    uint32_t number;
    uint64_t varint;         /* wire type 0 */
    const uint8_t *bytes;    /* wire type 2 */
    size_t len;
} pb_field;

static bool pb_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

/* Next field of a message; false at the end (*bad set on malformed input). Fields of wire
 * types other than varint and length-delimited are skipped (fixed32/64) or refused. */
static bool pb_next(const uint8_t **p, const uint8_t *end, pb_field *f, bool *bad) {
    while (*p < end) {
        uint64_t key;
        if (!pb_varint(p, end, &key)) break;
        f->number = (uint32_t)(key >> 3);
        f->bytes = NULL; /* only length-delimited fields have bytes (fuzzer: a varint name
                          * field left a pointer into an earlier input) */
        f->len = 0;
        f->varint = 0;
        switch (key & 7) {
        case 0:
            if (!pb_varint(p, end, &f->varint)) goto fail;
            return true;
        case 1:
            if ((size_t)(end - *p) < 8) goto fail;
            *p += 8;
            continue;
        case 5:
            if ((size_t)(end - *p) < 4) goto fail;
            *p += 4;
            continue;
        case 2: {
            uint64_t len;
            if (!pb_varint(p, end, &len) || len > (uint64_t)(end - *p)) goto fail;
            f->bytes = *p;
            f->len = (size_t)len;
            *p += len;
            return true;
        }
        default: goto fail;
        }
    }
    if (*p == end) return false;
fail:
    *bad = true;
    return false;
}

static ember_status value_from_pb(const uint8_t *data, size_t size, ember_value_kind kind,
                                  int depth, const em_load_limits *lim, em_tensor **out,
                                  char **name, ember_error *err);

static ember_status pb_malformed(ember_value_kind kind, ember_error *err) {
    return em_fail(err, EMBER_ERR_PARSE, "not a valid %s (protobuf decode failed)",
                   kind == EMBER_KIND_SEQUENCE ? "SequenceProto" : "OptionalProto");
}

static ember_status value_from_pb(const uint8_t *data, size_t size, ember_value_kind kind,
                                  int depth, const em_load_limits *lim, em_tensor **out,
                                  char **name, ember_error *err) {
    *out = NULL;
    if (kind == EMBER_KIND_TENSOR) return em_tensor_from_pb(data, size, lim, out, name, err);
    if (depth > PB_MAX_NESTING)
        return em_fail(err, EMBER_ERR_LIMIT, "values nested more than %d deep", PB_MAX_NESTING);
    const uint8_t *p = data, *end = data + size;
    pb_field f;
    bool bad = false;
    uint64_t elem_type = 0;
    const uint8_t *name_bytes = NULL;
    size_t name_len = 0;
    /* First pass: name and elem_type (fields may come in any order). */
    while (pb_next(&p, end, &f, &bad)) {
        if (f.number == 1 && f.bytes) {
            name_bytes = f.bytes;
            name_len = f.len;
        }
        if (f.number == 2) elem_type = f.varint;
        f.bytes = NULL;
    }
    if (bad) return pb_malformed(kind, err);
    ember_value_kind elem_kind = EMBER_KIND_TENSOR;
    if (elem_type == PB_ELEM_SEQUENCE && kind == EMBER_KIND_OPTIONAL)
        elem_kind = EMBER_KIND_SEQUENCE;
    else if (elem_type != PB_ELEM_TENSOR && elem_type != 0)
        return em_fail(err, EMBER_ERR_UNSUPPORTED,
                       "%s of element type %llu: ember holds tensors and sequences of tensors",
                       kind == EMBER_KIND_SEQUENCE ? "SequenceProto" : "OptionalProto",
                       (unsigned long long)elem_type);
    uint32_t want = elem_kind == EMBER_KIND_SEQUENCE ? 5 : 3;
    em_tensor *v = kind == EMBER_KIND_SEQUENCE ? em_seq_new(EMBER_UNDEFINED, err)
                                               : em_optional_new(elem_kind, EMBER_UNDEFINED,
                                                                 NULL, err);
    if (!v) return err ? err->code : EMBER_ERR_OUT_OF_MEMORY;
    ember_status st = EMBER_OK;
    p = data;
    while (st == EMBER_OK && pb_next(&p, end, &f, &bad)) {
        if (f.number < 3 || f.number > 7) continue;
        if (f.number != want || !f.bytes) {
            st = em_fail(err, EMBER_ERR_UNSUPPORTED, "%s holds a value of a kind ember lacks "
                         "(field %u)", kind == EMBER_KIND_SEQUENCE ? "SequenceProto"
                                                                   : "OptionalProto", f.number);
            break;
        }
        em_tensor *item = NULL;
        st = value_from_pb(f.bytes, f.len, elem_kind, depth + 1, lim, &item, NULL, err);
        if (st != EMBER_OK) break;
        if (kind == EMBER_KIND_SEQUENCE) {
            if (em_seq_length(v) > 0 && item->dtype != v->dtype) {
                st = em_fail(err, EMBER_ERR_PARSE, "SequenceProto mixes %s and %s tensors",
                             em_dtype_name(v->dtype), em_dtype_name(item->dtype));
                em_tensor_free(item);
                break;
            }
            v->dtype = item->dtype;
            st = em_seq_insert(v, em_seq_length(v), item, err);
        } else {
            if (v->data) {
                em_tensor_free(item);
                st = em_fail(err, EMBER_ERR_PARSE, "OptionalProto holds more than one value");
                break;
            }
            v->dtype = item->dtype;
            v->data = item;
            v->owns_data = true;
        }
        f.bytes = NULL;
    }
    if (st == EMBER_OK && bad) st = pb_malformed(kind, err);
    if (st == EMBER_OK && name) {
        *name = malloc(name_len + 1);
        if (!*name) st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        else {
            if (name_len) memcpy(*name, name_bytes, name_len);
            (*name)[name_len] = '\0';
        }
    }
    if (st != EMBER_OK) {
        em_tensor_free(v);
        return st;
    }
    *out = v;
    return EMBER_OK;
}

static ember_status load_value_memory(const void *data, size_t size, ember_value_kind kind,
                                      struct ember_tensor **out, ember_error *err) {
    *out = NULL;
    struct ember_tensor *t = calloc(1, sizeof *t);
    if (!t) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    em_load_limits lim;
    em_load_limits_init(&lim, NULL);
    em_tensor *et = NULL;
    ember_status st = value_from_pb(data, size, kind, 0, &lim, &et, &t->name, err);
    if (st != EMBER_OK) {
        free(t);
        return st;
    }
    t->t = *et;
    free(et);
    *out = t;
    return EMBER_OK;
}

static bool valid_kind(ember_value_kind kind) {
    return kind == EMBER_KIND_TENSOR || kind == EMBER_KIND_SEQUENCE || kind == EMBER_KIND_OPTIONAL;
}

ember_status ember_value_load_memory(const void *data, size_t size, ember_value_kind kind,
                                     ember_tensor **out, ember_error *err) {
    if (!out || (!data && size)) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (!valid_kind(kind))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "unknown value kind %d", (int)kind);
    if (kind == EMBER_KIND_TENSOR) return ember_tensor_load_memory(data, size, out, err);
    return load_value_memory(data, size, kind, out, err);
}

ember_status ember_value_load(const char *path, ember_value_kind kind, ember_tensor **out,
                              ember_error *err) {
    if (!path || !out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    if (!valid_kind(kind))
        return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "unknown value kind %d", (int)kind);
    void *data;
    size_t size;
    EM_TRY(em_read_file(path, &data, &size, err));
    ember_status st = ember_value_load_memory(data, size, kind, out, err);
    free(data);
    if (st != EMBER_OK) em_wrap(err, st, "%s", path);
    return st;
}

static ember_status load_memory(const void *data, size_t size, struct ember_tensor **out,
                                ember_error *err) {
    *out = NULL;
    struct ember_tensor *t = calloc(1, sizeof *t);
    if (!t) return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    em_tensor *et = NULL;
    char *name = NULL;
    ember_status st;
    if (size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0) {
        st = npy_parse(data, size, &et, err);
        name = calloc(1, 1);
    } else {
        em_load_limits lim;
        em_load_limits_init(&lim, NULL);
        st = em_tensor_from_pb(data, size, &lim, &et, &name, err);
    }
    if (st == EMBER_OK && !name) st = em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    if (st != EMBER_OK) {
        em_tensor_free(et);
        free(name);
        free(t);
        return st;
    }
    t->t = *et;
    free(et);
    t->name = name;
    *out = t;
    return EMBER_OK;
}

ember_status ember_tensor_load_memory(const void *data, size_t size, ember_tensor **out,
                                      ember_error *err) {
    if (!out || (!data && size)) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    return load_memory(data, size, out, err);
}

ember_status em_read_file(const char *path, void **data, size_t *size, ember_error *err) {
    *data = NULL;
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return em_fail(err, EMBER_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (fseeko(f, 0, SEEK_END) != 0) {
        fclose(f);
        return em_fail(err, EMBER_ERR_IO, "%s: cannot seek (not a regular file?)", path);
    }
    off_t n = ftello(f);
    if (n < 0 || fseeko(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return em_fail(err, EMBER_ERR_IO, "%s: cannot read", path);
    }
    void *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return em_fail(err, EMBER_ERR_OUT_OF_MEMORY, "%s: out of memory (%lld bytes)", path,
                       (long long)n);
    }
    if (n && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return em_fail(err, EMBER_ERR_IO, "%s: short read", path);
    }
    fclose(f);
    *data = buf;
    *size = (size_t)n;
    return EMBER_OK;
}

ember_status ember_tensor_load(const char *path, ember_tensor **out, ember_error *err) {
    if (!path || !out) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    void *data;
    size_t size;
    EM_TRY(em_read_file(path, &data, &size, err));
    ember_status st = load_memory(data, size, out, err);
    free(data);
    if (st != EMBER_OK) em_wrap(err, st, "%s", path);
    return st;
}

static ember_status write_all(const char *path, const void *a, size_t na, const void *b,
                              size_t nb, ember_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return em_fail(err, EMBER_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(a, 1, na, f) == na && (nb == 0 || fwrite(b, 1, nb, f) == nb);
    ok = (fclose(f) == 0) && ok;
    if (!ok) return em_fail(err, EMBER_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return EMBER_OK;
}

ember_status ember_tensor_save(const ember_tensor *tensor, const char *path, const char *name,
                               ember_error *err) {
    if (!tensor || !path) return em_fail(err, EMBER_ERR_INVALID_ARGUMENT, "NULL argument");
    const em_tensor *t = &tensor->t;
    if (t->kind != EMBER_KIND_TENSOR)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: saving a %s is not supported", path,
                       em_kind_name(t->kind));
    size_t len = strlen(path);
    if (len >= 3 && strcmp(path + len - 3, ".pb") == 0) {
        void *buf;
        size_t n;
        EM_TRY(em_tensor_to_pb(t, name, &buf, &n, err));
        ember_status st = write_all(path, buf, n, NULL, 0, err);
        free(buf);
        return st;
    }
    const char *descr = npy_descr(t->dtype);
    if (!descr)
        return em_fail(err, EMBER_ERR_UNSUPPORTED, "%s: npy cannot hold %s", path,
                       em_dtype_name(t->dtype));
    char header[512];
    int hl = snprintf(header + 10, sizeof header - 10,
                      "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->rank; i++)
        hl += snprintf(header + 10 + hl, sizeof header - 10 - (size_t)hl, "%lld,%s",
                       (long long)t->dims[i], i + 1 < t->rank ? " " : "");
    hl += snprintf(header + 10 + hl, sizeof header - 10 - (size_t)hl, "), }");
    /* pad with spaces so that the data starts at a multiple of 64, end with newline */
    int total = 10 + hl + 1;
    int pad = (64 - total % 64) % 64;
    memset(header + 10 + hl, ' ', (size_t)pad);
    hl += pad;
    header[10 + hl] = '\n';
    hl += 1;
    memcpy(header, "\x93NUMPY\x01\x00", 8);
    header[8] = (char)(hl & 0xff);
    header[9] = (char)(hl >> 8);
    return write_all(path, header, (size_t)(10 + hl), t->data, em_nbytes(t), err);
}
