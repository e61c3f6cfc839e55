/* A small reader of ONNX model bytes for `ember test` reports: which operators (with their
 * opset) a model uses. It works on models ember cannot load, so that the per-operator table
 * also counts unsupported cases. It reads the protobuf wire format directly and only the few
 * fields it needs; anything it does not understand ends the scan with an error. */
#ifndef EMBER_TOOLS_TEST_MODELSCAN_H
#define EMBER_TOOLS_TEST_MODELSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MODELSCAN_MAX_OPS 64
#define MODELSCAN_MAX_OPSETS 16
#define MODELSCAN_NAME_SIZE 64

typedef struct modelscan_op {
    char domain[MODELSCAN_NAME_SIZE];  /* "" for the default domain */
    char op_type[MODELSCAN_NAME_SIZE];
    int64_t opset;                     /* the model's opset for the domain (0 if not imported) */
} modelscan_op;

typedef struct modelscan_result {
    int op_count;
    bool ops_truncated;                /* more distinct operators than MODELSCAN_MAX_OPS */
    modelscan_op ops[MODELSCAN_MAX_OPS]; /* distinct, in order of first use (subgraphs too) */
} modelscan_result;

/* Scan model bytes. Returns false (with a reason in `error`) when the bytes are not a
 * well-formed ModelProto as far as the scanned fields go. */
bool modelscan_memory(const uint8_t *data, size_t size, modelscan_result *result, char *error,
                      size_t error_size);
bool modelscan_file(const char *path, modelscan_result *result, char *error, size_t error_size);

#endif
