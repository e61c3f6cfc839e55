/* A test plugin: registers ai.test.plugin:AddConstant(x) = x + attribute `value`, through the
 * public API only (threads through ember_op_parallel_for). Built twice: normally, and with PLUGIN_ABI set to a wrong version. */
#include <ember.h>
#include <string.h>

#ifndef PLUGIN_ABI
#define PLUGIN_ABI EMBER_ABI_VERSION
#endif

static ember_status infer(void *state, const ember_op_context *ctx, size_t n_in,
                          const ember_tensor *const *in, size_t n_out, ember_tensor_shape *out,
                          ember_error *err) {
    (void)state, (void)ctx, (void)n_out;
    if (n_in != 1 || ember_tensor_dtype(in[0]) != EMBER_FLOAT) {
        if (err) {
            err->code = EMBER_ERR_UNSUPPORTED;
            strcpy(err->message, "AddConstant takes one float32 input");
        }
        return EMBER_ERR_UNSUPPORTED;
    }
    out[0].dtype = EMBER_FLOAT;
    out[0].rank = ember_tensor_rank(in[0]);
    memcpy(out[0].dims, ember_tensor_dims(in[0]), sizeof(int64_t) * (size_t)out[0].rank);
    return EMBER_OK;
}

typedef struct add_job {
    const float *x;
    float *y;
    float v;
} add_job;

static void add_range(void *arg, int64_t begin, int64_t end) {
    const add_job *j = arg;
    for (int64_t i = begin; i < end; i++) j->y[i] = j->x[i] + j->v;
}

/* Split over the session's threads with the public ember_op_parallel_for (one element a
 * chunk at least, so that even 3 elements are shared out). */
static ember_status run(void *state, const ember_op_context *ctx, size_t n_in,
                        const ember_tensor *const *in, size_t n_out, ember_tensor *const *out,
                        ember_error *err) {
    (void)state, (void)n_in, (void)n_out;
    if (ember_op_threads(ctx) < 1 || !ember_op_output_present(ctx, 0) ||
        ember_op_output_count(ctx) != 1) {
        if (err) {
            err->code = EMBER_ERR_RUNTIME;
            strcpy(err->message, "AddConstant: bad context");
        }
        return EMBER_ERR_RUNTIME;
    }
    add_job j = {ember_tensor_const_data(in[0]), ember_tensor_data(out[0]),
                 ember_op_attr_float(ctx, "value", 0.0f)};
    ember_op_parallel_for(ctx, ember_tensor_element_count(in[0]), 1, add_range, &j);
    return EMBER_OK;
}

__attribute__((visibility("default"))) ember_status ember_plugin_init(int abi_version,
                                                                      ember_error *err) {
    ember_kernel k = {PLUGIN_ABI, "ai.test.plugin", "AddConstant", 1, NULL, infer, run, NULL};
    if (abi_version != PLUGIN_ABI) {
        /* Register anyway: ember itself must refuse a kernel built for another ABI. */
        return ember_register_op(&k, err);
    }
    return ember_register_op(&k, err);
}
