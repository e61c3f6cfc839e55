/* Plugins: a shared library registers a custom-domain op that a model uses; a plugin built
 * for another ABI version is refused cleanly. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static const char *env_or(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v ? v : dflt;
}

Test(plugin, wrong_abi_is_refused) {
    ember_error err;
    ember_status st = ember_load_plugin(env_or("EMBER_BAD_PLUGIN", "bad.so"), &err);
    cr_assert_eq(st, EMBER_ERR_INVALID_ARGUMENT, "%d %s", st, err.message);
    cr_assert(strstr(err.message, "ABI version 999"), "%s", err.message);
}

Test(plugin, missing_library) {
    ember_error err;
    cr_assert_eq(ember_load_plugin("/nonexistent/plugin.so", &err), EMBER_ERR_IO);
    cr_assert(strstr(err.message, "/nonexistent/plugin.so"), "%s", err.message);
}

Test(plugin, custom_op_runs) {
    ember_error err;
    char path[4096];
    snprintf(path, sizeof path, "%s/plugin_model.onnx", env_or("EMBER_FIXTURES", "."));
    ember_model *m = NULL;
    /* Before the plugin is loaded the op is unknown, and the error says which. */
    cr_assert_eq(ember_model_load_file(path, NULL, &m, &err), EMBER_ERR_UNSUPPORTED);
    cr_assert(strstr(err.message, "ai.test.plugin:AddConstant"), "%s", err.message);
    cr_assert_eq(ember_load_plugin(env_or("EMBER_PLUGIN", "plugin.so"), &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_eq(ember_model_load_file(path, NULL, &m, &err), EMBER_OK, "%s", err.message);
    ember_session *s;
    cr_assert_eq(ember_session_create(m, NULL, &s, &err), EMBER_OK, "%s", err.message);
    float xs[3] = {1, 2, 3};
    ember_tensor *x, *y;
    cr_assert_eq(ember_tensor_wrap(EMBER_FLOAT, (int64_t[]){3}, 1, xs, sizeof xs, &x, &err),
                 EMBER_OK);
    const char *in = "x", *out = "y";
    cr_assert_eq(ember_session_run(s, &in, (const ember_tensor *const *)&x, 1, &out, 1, &y, &err),
                 EMBER_OK, "%s", err.message);
    const float *v = ember_tensor_data(y);
    cr_assert(v[0] == 3.5f && v[1] == 4.5f && v[2] == 5.5f);
    ember_tensor_free(x);
    ember_tensor_free(y);
    ember_session_free(s);
    ember_model_free(m);
}

/* The task heads are a built-in plugin registered through ember_register_op: the same
 * (domain, op, version) cannot be registered again, a new version can be refused for ABI. */
static ember_status no_infer(void *state, const ember_op_context *ctx, size_t n_in,
                             const ember_tensor *const *in, size_t n_out, ember_tensor_shape *out,
                             ember_error *err) {
    (void)state, (void)ctx, (void)n_in, (void)in, (void)n_out, (void)out, (void)err;
    return EMBER_ERR_UNSUPPORTED;
}
static ember_status no_run(void *state, const ember_op_context *ctx, size_t n_in,
                           const ember_tensor *const *in, size_t n_out, ember_tensor *const *out,
                           ember_error *err) {
    (void)state, (void)ctx, (void)n_in, (void)in, (void)n_out, (void)out, (void)err;
    return EMBER_ERR_UNSUPPORTED;
}

Test(plugin, builtin_heads_are_registered_ops) {
    ember_error err;
    const char *ops[] = {"SigmoidThreshold", "SoftmaxArgMax", "CumulativeOrdinal"};
    for (int i = 0; i < 3; i++) {
        ember_kernel k = {EMBER_ABI_VERSION, "ai.ember", ops[i], 1, NULL, no_infer, no_run, NULL};
        cr_expect_eq(ember_register_op(&k, &err), EMBER_ERR_INVALID_ARGUMENT, "%s", ops[i]);
        cr_expect(strstr(err.message, "already registered"), "%s", err.message);
    }
    ember_kernel old = {1, "ai.ember", "SigmoidThreshold", 2, NULL, no_infer, no_run, NULL};
    cr_expect_eq(ember_register_op(&old, &err), EMBER_ERR_INVALID_ARGUMENT);
    char want[64];
    snprintf(want, sizeof want, "ABI version 1, this ember has %d", EMBER_ABI_VERSION);
    cr_expect(strstr(err.message, want), "%s", err.message);
}
