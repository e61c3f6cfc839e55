/* Operators for the tests of `ember test`, loaded with `ember --plugin`: kernels that copy,
 * fail (while running, or refusing the node as unsupported when the session is created or while
 * running), crash or hang, so that the runner meets each of these for real. Domain
 * "test.ember.cli", version 1; every operator has one input and one output of the same shape. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ember.h"

#define PLUGIN_EXPORT __attribute__((visibility("default")))

static ember_status same_shape(void *state, const ember_op_context *ctx, size_t n_inputs,
                               const ember_tensor *const *inputs, size_t n_outputs,
                               ember_tensor_shape *outputs, ember_error *err) {
    (void)state;
    (void)ctx;
    if (n_inputs != 1 || n_outputs != 1) {
        if (err) {
            err->code = EMBER_ERR_INVALID_MODEL;
            strcpy(err->message, "test operators take one input and one output");
        }
        return EMBER_ERR_INVALID_MODEL;
    }
    outputs[0].dtype = ember_tensor_dtype(inputs[0]);
    outputs[0].rank = ember_tensor_rank(inputs[0]);
    for (int d = 0; d < outputs[0].rank; d++) outputs[0].dims[d] = ember_tensor_dims(inputs[0])[d];
    return EMBER_OK;
}

static ember_status run_copy(void *state, const ember_op_context *ctx, size_t n_inputs,
                             const ember_tensor *const *inputs, size_t n_outputs,
                             ember_tensor *const *outputs, ember_error *err) {
    (void)state;
    (void)ctx;
    (void)n_inputs;
    (void)n_outputs;
    (void)err;
    memcpy(ember_tensor_data(outputs[0]), ember_tensor_const_data(inputs[0]),
           ember_tensor_byte_size(inputs[0]));
    return EMBER_OK;
}

static ember_status run_fail(void *state, const ember_op_context *ctx, size_t n_inputs,
                             const ember_tensor *const *inputs, size_t n_outputs,
                             ember_tensor *const *outputs, ember_error *err) {
    (void)state;
    (void)ctx;
    (void)n_inputs;
    (void)inputs;
    (void)n_outputs;
    (void)outputs;
    if (err) {
        err->code = EMBER_ERR_RUNTIME;
        strcpy(err->message, "Fail: failing on purpose");
    }
    return EMBER_ERR_RUNTIME;
}

static ember_status run_unsupported(void *state, const ember_op_context *ctx, size_t n_inputs,
                                    const ember_tensor *const *inputs, size_t n_outputs,
                                    ember_tensor *const *outputs, ember_error *err) {
    (void)state;
    (void)ctx;
    (void)n_inputs;
    (void)inputs;
    (void)n_outputs;
    (void)outputs;
    if (err) {
        err->code = EMBER_ERR_UNSUPPORTED;
        strcpy(err->message, "RunUnsupported: found out too late");
    }
    return EMBER_ERR_UNSUPPORTED;
}

static ember_status create_unsupported(const ember_op_context *ctx, void **state,
                                       ember_error *err) {
    (void)ctx;
    (void)state;
    if (err) {
        err->code = EMBER_ERR_UNSUPPORTED;
        strcpy(err->message, "CreateUnsupported: this attribute value is not supported");
    }
    return EMBER_ERR_UNSUPPORTED;
}

static ember_status run_crash(void *state, const ember_op_context *ctx, size_t n_inputs,
                              const ember_tensor *const *inputs, size_t n_outputs,
                              ember_tensor *const *outputs, ember_error *err) {
    (void)state;
    (void)ctx;
    (void)n_inputs;
    (void)inputs;
    (void)n_outputs;
    (void)outputs;
    (void)err;
    raise(SIGSEGV); /* what an out-of-bounds write in a kernel ends as */
    return EMBER_OK;
}

static ember_status run_hang(void *state, const ember_op_context *ctx, size_t n_inputs,
                             const ember_tensor *const *inputs, size_t n_outputs,
                             ember_tensor *const *outputs, ember_error *err) {
    (void)state;
    (void)ctx;
    (void)n_inputs;
    (void)inputs;
    (void)n_outputs;
    (void)outputs;
    (void)err;
    for (;;) pause();
    return EMBER_OK;
}

PLUGIN_EXPORT ember_status ember_plugin_init(int abi_version, ember_error *err) {
    if (abi_version != EMBER_ABI_VERSION) return EMBER_ERR_UNSUPPORTED;
    static const struct {
        const char *op_type;
        ember_status (*run)(void *, const ember_op_context *, size_t, const ember_tensor *const *,
                            size_t, ember_tensor *const *, ember_error *);
        ember_status (*create)(const ember_op_context *, void **, ember_error *);
    } ops[] = {
        {"Copy", run_copy, NULL},
        {"Fail", run_fail, NULL},
        {"RunUnsupported", run_unsupported, NULL},
        {"CreateUnsupported", run_copy, create_unsupported},
        {"Crash", run_crash, NULL},
        {"Hang", run_hang, NULL},
    };
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++) {
        ember_kernel kernel = {
            .abi_version = EMBER_ABI_VERSION,
            .domain = "test.ember.cli",
            .op_type = ops[i].op_type,
            .since_version = 1,
            .create = ops[i].create,
            .infer = same_shape,
            .run = ops[i].run,
        };
        ember_status status = ember_register_op(&kernel, err);
        if (status != EMBER_OK) return status;
    }
    return EMBER_OK;
}
