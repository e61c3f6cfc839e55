/* Test-only operators for the `ember score` tests, in the domain "test.score", loaded with
 * `ember --plugin`. They keep the CLI tests independent of the built-in operator set:
 *   Echo(x) -> y                 y = x (any type and shape)
 *   Affine(x) -> y               y[n, 0] = sum_k x[n, k] * weights[k] + bias  (float32)
 *   Concat2(a, b) -> y           rows of a and b side by side, flattened        (float32)
 *   OneRow(x) -> y               a [1, 1] output whatever the batch (a broken model)
 */
#include <string.h>

#include "ember.h"

static ember_status fail(ember_error *err, ember_status code, const char *msg) {
    if (err) {
        err->code = code;
        strncpy(err->message, msg, sizeof err->message - 1);
        err->message[sizeof err->message - 1] = '\0';
    }
    return code;
}

static int64_t row_elems(const ember_tensor *t) {
    const int64_t *d = ember_tensor_dims(t);
    int64_t n = 1;
    for (int i = 1; i < ember_tensor_rank(t); i++) n *= d[i];
    return n;
}

/* Static inference at load passes inputs whose shape may hold -1; keep it. */
static ember_status echo_infer(void *st, const ember_op_context *ctx, size_t n_in,
                               const ember_tensor *const *in, size_t n_out,
                               ember_tensor_shape *out, ember_error *err) {
    (void)st, (void)ctx, (void)n_in, (void)n_out, (void)err;
    out[0].dtype = ember_tensor_dtype(in[0]);
    out[0].rank = ember_tensor_rank(in[0]);
    memcpy(out[0].dims, ember_tensor_dims(in[0]), sizeof(int64_t) * (size_t)out[0].rank);
    return EMBER_OK;
}

static ember_status echo_run(void *st, const ember_op_context *ctx, size_t n_in,
                             const ember_tensor *const *in, size_t n_out,
                             ember_tensor *const *out, ember_error *err) {
    (void)st, (void)ctx, (void)n_in, (void)n_out, (void)err;
    memcpy(ember_tensor_data(out[0]), ember_tensor_const_data(in[0]),
           ember_tensor_byte_size(in[0]));
    return EMBER_OK;
}

static ember_status affine_infer(void *st, const ember_op_context *ctx, size_t n_in,
                                 const ember_tensor *const *in, size_t n_out,
                                 ember_tensor_shape *out, ember_error *err) {
    (void)st, (void)n_in, (void)n_out;
    if (ember_tensor_dtype(in[0]) != EMBER_FLOAT || ember_tensor_rank(in[0]) != 2)
        return fail(err, EMBER_ERR_SHAPE, "Affine: x must be float32 [N, K]");
    size_t nw = 0;
    ember_op_attr_floats(ctx, "weights", &nw);
    int64_t k = ember_tensor_dims(in[0])[1];
    if (k >= 0 && (int64_t)nw != k) return fail(err, EMBER_ERR_SHAPE, "Affine: K != |weights|");
    out[0].dtype = EMBER_FLOAT;
    out[0].rank = 2;
    out[0].dims[0] = ember_tensor_dims(in[0])[0];
    out[0].dims[1] = 1;
    return EMBER_OK;
}

static ember_status affine_run(void *st, const ember_op_context *ctx, size_t n_in,
                               const ember_tensor *const *in, size_t n_out,
                               ember_tensor *const *out, ember_error *err) {
    (void)st, (void)n_in, (void)n_out, (void)err;
    size_t nw = 0;
    const float *w = ember_op_attr_floats(ctx, "weights", &nw);
    float bias = ember_op_attr_float(ctx, "bias", 0.0f);
    const float *x = ember_tensor_const_data(in[0]);
    float *y = ember_tensor_data(out[0]);
    int64_t rows = ember_tensor_dims(in[0])[0];
    for (int64_t r = 0; r < rows; r++) {
        float acc = bias;
        for (size_t k = 0; k < nw; k++) acc += x[r * (int64_t)nw + (int64_t)k] * w[k];
        y[r] = acc;
    }
    return EMBER_OK;
}

static ember_status concat_infer(void *st, const ember_op_context *ctx, size_t n_in,
                                 const ember_tensor *const *in, size_t n_out,
                                 ember_tensor_shape *out, ember_error *err) {
    (void)st, (void)ctx, (void)n_in, (void)n_out;
    if (ember_tensor_dtype(in[0]) != EMBER_FLOAT || ember_tensor_dtype(in[1]) != EMBER_FLOAT)
        return fail(err, EMBER_ERR_SHAPE, "Concat2: float32 only");
    int64_t a = row_elems(in[0]), b = row_elems(in[1]);
    out[0].dtype = EMBER_FLOAT;
    out[0].rank = 2;
    out[0].dims[0] = ember_tensor_dims(in[0])[0];
    out[0].dims[1] = a < 0 || b < 0 ? -1 : a + b;
    return EMBER_OK;
}

static ember_status concat_run(void *st, const ember_op_context *ctx, size_t n_in,
                               const ember_tensor *const *in, size_t n_out,
                               ember_tensor *const *out, ember_error *err) {
    (void)st, (void)ctx, (void)n_in, (void)n_out;
    int64_t rows = ember_tensor_dims(in[0])[0];
    if (ember_tensor_dims(in[1])[0] != rows)
        return fail(err, EMBER_ERR_SHAPE, "Concat2: different row counts");
    int64_t a = row_elems(in[0]), b = row_elems(in[1]);
    const float *pa = ember_tensor_const_data(in[0]), *pb = ember_tensor_const_data(in[1]);
    float *y = ember_tensor_data(out[0]);
    for (int64_t r = 0; r < rows; r++) {
        memcpy(y + r * (a + b), pa + r * a, sizeof(float) * (size_t)a);
        memcpy(y + r * (a + b) + a, pb + r * b, sizeof(float) * (size_t)b);
    }
    return EMBER_OK;
}

static ember_status onerow_infer(void *st, const ember_op_context *ctx, size_t n_in,
                                 const ember_tensor *const *in, size_t n_out,
                                 ember_tensor_shape *out, ember_error *err) {
    (void)st, (void)ctx, (void)n_in, (void)in, (void)n_out, (void)err;
    out[0].dtype = EMBER_FLOAT;
    out[0].rank = 2;
    out[0].dims[0] = 1;
    out[0].dims[1] = 1;
    return EMBER_OK;
}

static ember_status onerow_run(void *st, const ember_op_context *ctx, size_t n_in,
                               const ember_tensor *const *in, size_t n_out,
                               ember_tensor *const *out, ember_error *err) {
    (void)st, (void)ctx, (void)n_in, (void)in, (void)n_out, (void)err;
    ((float *)ember_tensor_data(out[0]))[0] = 1.0f;
    return EMBER_OK;
}

__attribute__((visibility("default"))) ember_status ember_plugin_init(int abi_version,
                                                                      ember_error *err) {
    if (abi_version != EMBER_ABI_VERSION)
        return fail(err, EMBER_ERR_INVALID_ARGUMENT, "score test ops: ABI mismatch");
    const ember_kernel kernels[] = {
        {EMBER_ABI_VERSION, "test.score", "Echo", 1, NULL, echo_infer, echo_run, NULL},
        {EMBER_ABI_VERSION, "test.score", "Affine", 1, NULL, affine_infer, affine_run, NULL},
        {EMBER_ABI_VERSION, "test.score", "Concat2", 1, NULL, concat_infer, concat_run, NULL},
        {EMBER_ABI_VERSION, "test.score", "OneRow", 1, NULL, onerow_infer, onerow_run, NULL},
    };
    for (size_t i = 0; i < sizeof kernels / sizeof kernels[0]; i++) {
        ember_status s = ember_register_op(&kernels[i], err);
        if (s != EMBER_OK) return s;
    }
    return EMBER_OK;
}
