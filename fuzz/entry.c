/* Fuzz entry points (see entry.h). Only the public API is used, as a service embedding ember
 * would use it. */
#include "entry.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

/* Limits small enough that no input can make one execution slow or large. */
#define FUZZ_MAX_TENSOR_BYTES (16u << 20)
#define FUZZ_MAX_NODES 4096
#define FUZZ_MEMORY_LIMIT (256u << 20)
#define FUZZ_MAX_INPUT_ELEMENTS 4096 /* per input; larger inputs skip the run */
#define FUZZ_MAX_IO 64               /* inputs or outputs; more skip the run */

static void violated(const char *what, const ember_error *err) {
    fprintf(stderr, "ember fuzz: invariant violated: %s (code %d, message '%s')\n", what,
            err ? (int)err->code : -1, err ? err->message : "");
    abort();
}

/* A failed call must report the same code with a non-empty, terminated message. */
static void check_failure(ember_status st, const ember_error *err) {
    if (st == EMBER_OK) return;
    if (err->code != st) violated("returned status differs from the error report", err);
    if (memchr(err->message, '\0', sizeof err->message) == NULL)
        violated("error message is not terminated", NULL);
    if (err->message[0] == '\0') violated("error without a message", err);
    if (strcmp(ember_status_string(st), "unknown status") == 0)
        violated("unknown status code", err);
}

/* Small deterministic values in [-2, 2] (some exactly zero) for any dtype. */
static void fill(ember_tensor *t, uint32_t seed) {
    uint8_t *p = ember_tensor_data(t);
    int64_t n = ember_tensor_element_count(t);
    ember_dtype dt = ember_tensor_dtype(t);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        int v = (int)((seed >> 16) % 5) - 2;
        switch (dt) {
        case EMBER_FLOAT: ((float *)p)[i] = (float)v * 0.5f; break;
        case EMBER_DOUBLE: ((double *)p)[i] = v * 0.5; break;
        case EMBER_INT64: ((int64_t *)p)[i] = v; break;
        case EMBER_INT32: ((int32_t *)p)[i] = v; break;
        case EMBER_INT16: ((int16_t *)p)[i] = (int16_t)v; break;
        case EMBER_INT8: ((int8_t *)p)[i] = (int8_t)v; break;
        case EMBER_UINT64: ((uint64_t *)p)[i] = (uint64_t)(v + 2); break;
        case EMBER_UINT32: ((uint32_t *)p)[i] = (uint32_t)(v + 2); break;
        case EMBER_UINT16: ((uint16_t *)p)[i] = (uint16_t)(v + 2); break;
        case EMBER_UINT8: p[i] = (uint8_t)(v + 2); break;
        case EMBER_BOOL: p[i] = v > 0; break;
        case EMBER_FLOAT16: ((uint16_t *)p)[i] = v ? 0x3c00u : 0; break;  /* 1.0 or 0 */
        case EMBER_BFLOAT16: ((uint16_t *)p)[i] = v ? 0x3f80u : 0; break; /* 1.0 or 0 */
        default: break;
        }
    }
}

/* An input tensor for a declared graph input: unknown dtype -> float, unknown rank -> [1],
 * symbolic dims -> 1. NULL (skip the run) when it would be too large or cannot be made. */
static ember_tensor *make_input(const ember_value_info *vi, uint32_t seed) {
    ember_dtype dt = vi->dtype == EMBER_UNDEFINED ? EMBER_FLOAT : vi->dtype;
    int64_t dims[EMBER_MAX_RANK];
    int rank = vi->rank < 0 ? 1 : vi->rank;
    if (rank > EMBER_MAX_RANK) return NULL;
    int64_t total = 1;
    for (int d = 0; d < rank; d++) {
        dims[d] = vi->rank < 0 || vi->dims[d] < 0 ? 1 : vi->dims[d];
        if (dims[d] > FUZZ_MAX_INPUT_ELEMENTS) return NULL;
        total *= dims[d];
        if (total > FUZZ_MAX_INPUT_ELEMENTS) return NULL;
    }
    ember_tensor *t = NULL;
    ember_error err;
    ember_status st = ember_tensor_create(dt, dims, rank, &t, &err);
    check_failure(st, &err);
    if (st != EMBER_OK) return NULL;
    fill(t, seed);
    return t;
}

static void run_once(ember_session *s, const ember_model *m, uint32_t seed) {
    size_t n_in = ember_model_input_count(m), n_out = ember_model_output_count(m);
    if (n_in > FUZZ_MAX_IO || n_out > FUZZ_MAX_IO) return;
    const char *in_names[FUZZ_MAX_IO], *out_names[FUZZ_MAX_IO];
    ember_tensor *inputs[FUZZ_MAX_IO] = {0}, *outputs[FUZZ_MAX_IO];
    bool ok = true;
    for (size_t i = 0; i < n_in && ok; i++) {
        ember_value_info vi;
        if (ember_model_input(m, i, &vi) != EMBER_OK) violated("input info", NULL);
        in_names[i] = vi.name;
        inputs[i] = make_input(&vi, seed + (uint32_t)i);
        ok = inputs[i] != NULL;
    }
    for (size_t k = 0; k < n_out; k++) {
        ember_value_info vi;
        if (ember_model_output(m, k, &vi) != EMBER_OK) violated("output info", NULL);
        out_names[k] = vi.name;
        outputs[k] = (ember_tensor *)(uintptr_t)1; /* must be reset by the run */
    }
    if (ok) {
        ember_error err;
        ember_status st = ember_session_run(s, in_names, (const ember_tensor *const *)inputs,
                                            n_in, out_names, n_out, outputs, &err);
        check_failure(st, &err);
        for (size_t k = 0; k < n_out; k++) {
            if (st != EMBER_OK && outputs[k]) violated("output left after a failed run", &err);
            if (st == EMBER_OK && !outputs[k]) violated("output missing after success", NULL);
            if (!outputs[k]) continue;
            /* Touch every byte so that a short buffer shows up under ASan. */
            const uint8_t *p = ember_tensor_const_data(outputs[k]);
            size_t bytes = ember_tensor_byte_size(outputs[k]);
            volatile uint8_t sink = 0;
            for (size_t b = 0; b < bytes; b++) sink ^= p[b];
            (void)sink;
            ember_tensor_free(outputs[k]);
        }
    }
    for (size_t i = 0; i < n_in; i++) ember_tensor_free(inputs[i]);
}

int ember_fuzz_model(const uint8_t *data, size_t size) {
    ember_load_options lo = {.max_tensor_bytes = FUZZ_MAX_TENSOR_BYTES, .max_nodes = FUZZ_MAX_NODES};
    ember_model *m = NULL;
    ember_error err;
    /* The operator scan reads the same bytes without building a graph (ember test uses it on
     * models that do not load). */
    ember_op_scan *scan = NULL;
    ember_status st = ember_op_scan_memory(data, size, &scan, &err);
    check_failure(st, &err);
    for (size_t i = 0; i < ember_op_scan_count(scan); i++) {
        ember_op_use use;
        if (ember_op_scan_get(scan, i, &use) != EMBER_OK || !use.domain || !use.op_type)
            violated("scan entry unreadable", NULL);
        else if (strlen(use.domain) + strlen(use.op_type) == (size_t)-1)
            violated("unreachable", NULL); /* reads both strings to their ends */
    }
    ember_op_scan_free(scan);
    st = ember_model_load_memory(data, size, &lo, &m, &err);
    check_failure(st, &err);
    if (st != EMBER_OK) {
        if (m) violated("model returned with an error", &err);
        return 0;
    }
    /* Read everything the model describes. */
    char sink[64];
    for (size_t i = 0; i < ember_model_node_count(m); i++) {
        ember_node_info ni;
        if (ember_model_node(m, i, &ni) != EMBER_OK) violated("node info", NULL);
        snprintf(sink, sizeof sink, "%s%s%s", ni.name, ni.op_type, ni.domain);
    }
    for (size_t i = 0; i < ember_model_warning_count(m); i++)
        snprintf(sink, sizeof sink, "%s", ember_model_warning(m, i));

    ember_session_options so;
    ember_session_options_init(&so);
    so.threads = 1;
    so.memory_limit = FUZZ_MEMORY_LIMIT;
    so.opt_level = (ember_opt_level)(size % 3); /* every level, deterministically */
    ember_session *s = NULL;
    st = ember_session_create(m, &so, &s, &err);
    check_failure(st, &err);
    if (st == EMBER_OK) {
        char text[256];
        ember_session_describe(s, text, sizeof text);
        /* A Loop may legitimately run 10^18 iterations: no time limit could tell that from a
         * hang, so models that mention Loop anywhere (graphs, subgraphs, functions) are loaded
         * and prepared but not run. */
        if (!memmem(data, size, "Loop", 4)) run_once(s, m, (uint32_t)size);
        ember_session_free(s);
    } else if (s) {
        violated("session returned with an error", &err);
    }
    ember_model_free(m);
    return 0;
}

/* A sequence or optional read from the same bytes: every tensor inside is reachable. */
static void fuzz_value(const uint8_t *data, size_t size, ember_value_kind kind) {
    ember_tensor *v = NULL, *item = NULL;
    ember_error err;
    ember_status st = ember_value_load_memory(data, size, kind, &v, &err);
    check_failure(st, &err);
    if (st != EMBER_OK) {
        if (v) violated("value returned with an error", &err);
        return;
    }
    if (ember_tensor_kind(v) != kind) violated("value of the wrong kind", NULL);
    for (size_t i = 0; i < ember_sequence_length(v); i++) {
        if (ember_sequence_get(v, i, &item, &err) != EMBER_OK) violated("item unreadable", &err);
        ember_tensor_free(item);
    }
    if (ember_optional_has_value(v)) {
        if (ember_optional_get(v, &item, &err) != EMBER_OK) violated("value unreadable", &err);
        ember_tensor_free(item);
    }
    ember_tensor_free(v);
}

int ember_fuzz_tensor(const uint8_t *data, size_t size) {
    fuzz_value(data, size, EMBER_KIND_SEQUENCE);
    fuzz_value(data, size, EMBER_KIND_OPTIONAL);
    ember_tensor *t = NULL;
    ember_error err;
    ember_status st = ember_tensor_load_memory(data, size, &t, &err);
    check_failure(st, &err);
    if (st != EMBER_OK) {
        if (t) violated("tensor returned with an error", &err);
        return 0;
    }
    int rank = ember_tensor_rank(t);
    if (rank < 0 || rank > EMBER_MAX_RANK) violated("tensor rank out of range", NULL);
    int64_t n = 1;
    for (int d = 0; d < rank; d++) n *= ember_tensor_dims(t)[d];
    if (n != ember_tensor_element_count(t) ||
        ember_tensor_byte_size(t) != (size_t)n * ember_dtype_size(ember_tensor_dtype(t)))
        violated("tensor size does not match its shape", NULL);
    const uint8_t *p = ember_tensor_const_data(t);
    volatile uint8_t sink = 0;
    for (size_t b = 0; b < ember_tensor_byte_size(t); b++) sink ^= p[b];
    for (int64_t i = 0; ember_tensor_dtype(t) == EMBER_STRING && i < n; i++)
        sink ^= (uint8_t)ember_tensor_string(t, (size_t)i)[0];
    (void)sink;
    sink = (uint8_t)ember_tensor_name(t)[0];
    ember_tensor_free(t);
    return 0;
}

const ember_fuzz_target ember_fuzz_targets[] = {
    {"model", ember_fuzz_model},
    {"tensor", ember_fuzz_tensor},
    {"score", ember_fuzz_score},
    {NULL, NULL},
};
