/* Operator listing straight from ModelProto bytes (see test_modelscan.h). */
#include "test_modelscan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Field numbers from onnx.proto. */
enum {
    MODEL_OPSET_IMPORT = 8,
    MODEL_GRAPH = 7,
    OPSET_DOMAIN = 1,
    OPSET_VERSION = 2,
    GRAPH_NODE = 1,
    NODE_OP_TYPE = 4,
    NODE_DOMAIN = 7,
    NODE_ATTRIBUTE = 5,
    ATTRIBUTE_GRAPH = 6,
    ATTRIBUTE_GRAPHS = 11,
};

enum { WIRE_VARINT = 0, WIRE_FIXED64 = 1, WIRE_BYTES = 2, WIRE_FIXED32 = 5 };

/* Subgraphs nest inside attributes; deeper nesting than this is refused, not recursed. */
#define MAX_GRAPH_DEPTH 16

typedef struct reader {
    const uint8_t *pos;
    const uint8_t *end;
} reader;

typedef struct field {
    uint32_t number;
    int wire;
    uint64_t value;           /* varint / fixed values */
    const uint8_t *bytes;     /* WIRE_BYTES payload */
    size_t length;
} field;

typedef struct scan_state {
    modelscan_result *result;
    char *error;
    size_t error_size;
} scan_state;

static bool read_varint(reader *r, uint64_t *out) {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->end) return false;
        uint8_t byte = *r->pos++;
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return true;
        }
    }
    return false;
}

/* Next field of the message; false at the end (`*bad` tells a malformed field from the end). */
static bool next_field(reader *r, field *f, bool *bad) {
    *bad = false;
    *f = (field){0};
    if (r->pos >= r->end) return false;
    uint64_t key;
    if (!read_varint(r, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) goto malformed;
    f->number = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    switch (f->wire) {
    case WIRE_VARINT:
        if (!read_varint(r, &f->value)) goto malformed;
        return true;
    case WIRE_FIXED64:
    case WIRE_FIXED32: {
        size_t n = f->wire == WIRE_FIXED64 ? 8 : 4;
        if ((size_t)(r->end - r->pos) < n) goto malformed;
        r->pos += n;
        return true;
    }
    case WIRE_BYTES: {
        uint64_t length;
        if (!read_varint(r, &length) || length > (uint64_t)(r->end - r->pos)) goto malformed;
        f->bytes = r->pos;
        f->length = (size_t)length;
        r->pos += length;
        return true;
    }
    default: goto malformed;
    }
malformed:
    *bad = true;
    return false;
}

static void copy_string(char *dst, size_t size, const field *f) {
    size_t n = f->length < size - 1 ? f->length : size - 1;
    memcpy(dst, f->bytes, n);
    dst[n] = '\0';
}

static bool fail(scan_state *s, const char *what) {
    snprintf(s->error, s->error_size, "model.onnx is not a valid ModelProto (%s)", what);
    return false;
}

static void add_op(scan_state *s, const char *domain, const char *op_type) {
    modelscan_result *res = s->result;
    if (strcmp(domain, "ai.onnx") == 0) domain = "";
    for (int i = 0; i < res->op_count; i++)
        if (strcmp(res->ops[i].op_type, op_type) == 0 && strcmp(res->ops[i].domain, domain) == 0)
            return;
    if (res->op_count == MODELSCAN_MAX_OPS) {
        res->ops_truncated = true;
        return;
    }
    modelscan_op *op = &res->ops[res->op_count++];
    snprintf(op->domain, sizeof op->domain, "%s", domain);
    snprintf(op->op_type, sizeof op->op_type, "%s", op_type);
    op->opset = 0;
}

static bool scan_graph(scan_state *s, const uint8_t *data, size_t size, int depth);

static bool scan_attribute(scan_state *s, const uint8_t *data, size_t size, int depth) {
    reader r = {data, data + size};
    field f;
    bool bad;
    while (next_field(&r, &f, &bad)) {
        if ((f.number == ATTRIBUTE_GRAPH || f.number == ATTRIBUTE_GRAPHS) &&
            f.wire == WIRE_BYTES && !scan_graph(s, f.bytes, f.length, depth + 1))
            return false;
    }
    return bad ? fail(s, "bad attribute") : true;
}

static bool scan_node(scan_state *s, const uint8_t *data, size_t size, int depth) {
    reader r = {data, data + size};
    field f;
    bool bad;
    char op_type[MODELSCAN_NAME_SIZE] = "", domain[MODELSCAN_NAME_SIZE] = "";
    while (next_field(&r, &f, &bad)) {
        if (f.wire != WIRE_BYTES) continue;
        if (f.number == NODE_OP_TYPE) copy_string(op_type, sizeof op_type, &f);
        else if (f.number == NODE_DOMAIN) copy_string(domain, sizeof domain, &f);
        else if (f.number == NODE_ATTRIBUTE && !scan_attribute(s, f.bytes, f.length, depth))
            return false;
    }
    if (bad) return fail(s, "bad node");
    if (op_type[0] == '\0') return fail(s, "node without op_type");
    add_op(s, domain, op_type);
    return true;
}

static bool scan_graph(scan_state *s, const uint8_t *data, size_t size, int depth) {
    if (depth > MAX_GRAPH_DEPTH) return fail(s, "subgraphs nested too deeply");
    reader r = {data, data + size};
    field f;
    bool bad;
    while (next_field(&r, &f, &bad)) {
        if (f.number == GRAPH_NODE && f.wire == WIRE_BYTES &&
            !scan_node(s, f.bytes, f.length, depth))
            return false;
    }
    return bad ? fail(s, "bad graph") : true;
}

bool modelscan_memory(const uint8_t *data, size_t size, modelscan_result *result, char *error,
                      size_t error_size) {
    memset(result, 0, sizeof *result);
    scan_state s = {result, error, error_size};
    error[0] = '\0';

    /* Opset imports may come after the graph in the bytes: collect them in a first pass. */
    struct {
        char domain[MODELSCAN_NAME_SIZE];
        int64_t version;
    } opsets[MODELSCAN_MAX_OPSETS];
    int opset_count = 0;
    const uint8_t *graph = NULL;
    size_t graph_size = 0;
    reader r = {data, data + size};
    field f;
    bool bad;
    while (next_field(&r, &f, &bad)) {
        if (f.number == MODEL_GRAPH && f.wire == WIRE_BYTES) {
            graph = f.bytes;
            graph_size = f.length;
        } else if (f.number == MODEL_OPSET_IMPORT && f.wire == WIRE_BYTES &&
                   opset_count < MODELSCAN_MAX_OPSETS) {
            reader o = {f.bytes, f.bytes + f.length};
            field of;
            bool obad;
            opsets[opset_count].domain[0] = '\0';
            opsets[opset_count].version = 0;
            while (next_field(&o, &of, &obad)) {
                if (of.number == OPSET_DOMAIN && of.wire == WIRE_BYTES)
                    copy_string(opsets[opset_count].domain, MODELSCAN_NAME_SIZE, &of);
                else if (of.number == OPSET_VERSION && of.wire == WIRE_VARINT)
                    opsets[opset_count].version = (int64_t)of.value;
            }
            if (obad) return fail(&s, "bad opset_import");
            if (strcmp(opsets[opset_count].domain, "ai.onnx") == 0)
                opsets[opset_count].domain[0] = '\0';
            opset_count++;
        }
    }
    if (bad) return fail(&s, "bad field");
    if (!graph) return fail(&s, "no graph");
    if (!scan_graph(&s, graph, graph_size, 0)) return false;
    for (int i = 0; i < result->op_count; i++)
        for (int k = 0; k < opset_count; k++)
            if (strcmp(result->ops[i].domain, opsets[k].domain) == 0)
                result->ops[i].opset = opsets[k].version;
    return true;
}

bool modelscan_file(const char *path, modelscan_result *result, char *error, size_t error_size) {
    memset(result, 0, sizeof *result);
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "cannot open %s", path);
        return false;
    }
    uint8_t *data = NULL;
    size_t size = 0, capacity = 0;
    bool ok = true;
    for (;;) {
        if (size == capacity) {
            size_t grown = capacity ? capacity * 2 : 1 << 16;
            uint8_t *bigger = realloc(data, grown);
            if (!bigger) {
                ok = false;
                snprintf(error, error_size, "out of memory reading %s", path);
                break;
            }
            data = bigger;
            capacity = grown;
        }
        size_t n = fread(data + size, 1, capacity - size, file);
        size += n;
        if (n == 0) {
            if (ferror(file)) {
                ok = false;
                snprintf(error, error_size, "cannot read %s", path);
            }
            break;
        }
    }
    fclose(file);
    if (ok) ok = modelscan_memory(data, size, result, error, error_size);
    free(data);
    return ok;
}
