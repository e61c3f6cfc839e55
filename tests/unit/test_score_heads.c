/* ember score / run --head: the option text, and the labels and probabilities the session
 * returns for the head the command line sets up (int64 labels), on raw logits fed through
 * logits_identity (EMBER_HEAD_MODELS). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heads_cli.h"

Test(score_heads, parse) {
    cli_head h;
    char msg[256];
    cr_assert(cli_head_setup(&h, "binary", "y", false, true, msg, sizeof msg));
    cr_assert(h.head.kind == EMBER_HEAD_BINARY && h.head.threshold == 0.5f);
    cr_assert(h.head.decision_dtype == EMBER_INT64 && strcmp(h.head.output, "y") == 0);
    cr_assert_str_eq(h.head.decision_name, "y_decision");
    cr_assert(cli_head_setup(&h, "binary:0.3", "y", false, true, msg, sizeof msg) &&
              h.head.threshold == 0.3f);
    cr_assert(!cli_head_setup(&h, "binary:1.5", "y", false, true, msg, sizeof msg));
    cr_assert_str_eq(msg, "--head binary: '1.5' is not a list of thresholds between 0 and 1");
    cr_assert(!cli_head_setup(&h, "binary:nan", "y", false, true, msg, sizeof msg));
    cr_assert(cli_head_setup(&h, "multilabel:0.45,0.4,0.55", "y", true, true, msg, sizeof msg));
    cr_assert(h.head.n_thresholds == 3 && h.head.thresholds[1] == 0.4f && h.head.probabilities);
    cli_head_free(&h);
    cr_assert(!cli_head_setup(&h, "multilabel:0.4,,0.5", "y", false, true, msg, sizeof msg));
    cr_assert(cli_head_setup(&h, "multiclass", "y", false, true, msg, sizeof msg));
    cr_assert(!cli_head_setup(&h, "multiclass:2", "y", false, true, msg, sizeof msg));
    cr_assert(cli_head_setup(&h, "ordinal", "y", false, true, msg, sizeof msg) &&
              h.head.ordinal == EMBER_ORDINAL_CORAL);
    cr_assert(cli_head_setup(&h, "ordinal:corn", "y", false, true, msg, sizeof msg) &&
              h.head.ordinal == EMBER_ORDINAL_CORN);
    cr_assert(!cli_head_setup(&h, "ordinal:other", "y", false, true, msg, sizeof msg));
    cr_assert(!cli_head_setup(&h, "regression", "y", false, true, msg, sizeof msg));
    cr_assert_str_eq(msg, "--head 'regression': expected binary[:T], multilabel[:T1,T2,...], "
                          "multiclass or ordinal[:coral|corn[:T]]");
}

typedef struct result {
    ember_status status;
    char message[EMBER_ERROR_MESSAGE_SIZE];
    ember_tensor *labels, *probabilities;
} result;

/* `spec` on rows x n logits, as ember score sets it up. */
static result apply(const char *spec, const float *logits, int64_t rows, int64_t n,
                    bool probabilities) {
    char path[1024];
    const char *dir = getenv("EMBER_HEAD_MODELS");
    cr_assert_not_null(dir, "EMBER_HEAD_MODELS is not set (run through meson test)");
    snprintf(path, sizeof path, "%s/logits_identity.onnx", dir);
    ember_error err;
    ember_model *m = NULL;
    cr_assert_eq(ember_model_load_file(path, NULL, &m, &err), EMBER_OK, "%s", err.message);
    cli_head h;
    char msg[256];
    cr_assert(cli_head_setup(&h, spec, "y", probabilities, true, msg, sizeof msg), "%s", msg);
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = 1;
    o.heads = &h.head;
    o.n_heads = 1;
    ember_session *s = NULL;
    result r = {0};
    r.status = ember_session_create(m, &o, &s, &err);
    int64_t dims[2] = {rows, n};
    ember_tensor *x = NULL;
    cr_assert_eq(ember_tensor_wrap(EMBER_FLOAT, dims, 2, (void *)logits,
                                   sizeof(float) * (size_t)(rows * n), &x, &err),
                 EMBER_OK);
    const char *in = "logits";
    const char *names[2] = {h.decision, h.probabilities};
    ember_tensor *outs[2] = {NULL, NULL};
    const ember_tensor *xs = x;
    if (r.status == EMBER_OK)
        r.status = ember_session_run(s, &in, &xs, 1, names, probabilities ? 2 : 1, outs, &err);
    if (r.status != EMBER_OK) snprintf(r.message, sizeof r.message, "%s", err.message);
    r.labels = outs[0];
    r.probabilities = outs[1];
    if (r.labels) cr_assert_eq(ember_tensor_dtype(r.labels), EMBER_INT64);
    ember_tensor_free(x);
    ember_session_free(s);
    ember_model_free(m);
    cli_head_free(&h);
    return r;
}

static void result_free(result *r) {
    ember_tensor_free(r->labels);
    ember_tensor_free(r->probabilities);
}

Test(score_heads, shapes) {
    const float x[10] = {0};
    result r = apply("multiclass", x, 3, 1, false);
    cr_assert_eq(r.status, EMBER_ERR_SHAPE);
    cr_assert(strstr(r.message, "head multiclass on output 'y' needs at least 2 logits per row, "
                                "the output has 1 (an argmax over one value is always 0: use "
                                "binary)"),
              "%s", r.message);
    r = apply("multiclass", x, 1, 10, true);
    cr_assert_eq(r.status, EMBER_OK, "%s", r.message);
    cr_assert(ember_tensor_element_count(r.labels) == 1 &&
              ember_tensor_element_count(r.probabilities) == 10);
    result_free(&r);
    r = apply("ordinal", x, 2, 4, true);
    cr_assert_eq(r.status, EMBER_OK, "%s", r.message);
    cr_assert(ember_tensor_element_count(r.labels) == 2 &&
              ember_tensor_dims(r.probabilities)[1] == 5);
    result_free(&r);
    r = apply("binary", x, 1, 2, false);
    cr_assert_eq(r.status, EMBER_ERR_SHAPE);
    cr_assert(strstr(r.message, "head binary on output 'y' needs one logit per row, the output "
                                "has 2"),
              "%s", r.message);
}

Test(score_heads, binary_float32_edge) {
    /* sigmoid(1e-9) is 0.5 in float32: not above the threshold, unlike x > 0; NaN is no label */
    float x[] = {1e-9f, -1e-9f, 0.0f, 1e-6f, 100.0f, -100.0f, NAN, INFINITY, -INFINITY};
    result r = apply("binary", x, 9, 1, true);
    cr_assert_eq(r.status, EMBER_OK, "%s", r.message);
    const int64_t *lab = ember_tensor_const_data(r.labels);
    const float *p = ember_tensor_const_data(r.probabilities);
    int64_t want[] = {0, 0, 0, 1, 1, 0, 0, 1, 0};
    for (int i = 0; i < 9; i++) cr_assert_eq(lab[i], want[i], "x = %g", (double)x[i]);
    cr_assert_eq(p[0], 0.5f);
    cr_assert(p[5] > 0.0f && p[5] < 1e-43f, "sigmoid(-100) = %g", (double)p[5]);
    cr_assert(isnan(p[6]) && p[7] == 1.0f && p[8] == 0.0f);
    result_free(&r);
}

Test(score_heads, multiclass_ties_nan_and_probabilities) {
    float x[] = {1, 3, 3, 0, /**/ 1000, 0, 0, 1000, /**/ 1, NAN, 3, 2};
    result r = apply("multiclass", x, 3, 4, true);
    cr_assert_eq(r.status, EMBER_OK, "%s", r.message);
    const int64_t *lab = ember_tensor_const_data(r.labels);
    const float *p = ember_tensor_const_data(r.probabilities);
    /* first index on ties; a NaN counts as the largest (ONNX ArgMax, torch.argmax) */
    cr_assert(lab[0] == 1 && lab[1] == 0 && lab[2] == 1);
    cr_assert(fabsf(p[4] - 0.5f) < 1e-6f && fabsf(p[7] - 0.5f) < 1e-6f); /* no overflow */
    cr_assert(isnan(p[8]));
    result_free(&r);
}

Test(score_heads, ordinal_coral_and_corn) {
    /* sigmoids 0.9, 0.6, 0.6 */
    float x[] = {2.1972246f, 0.4054651f, 0.4054651f};
    result coral = apply("ordinal", x, 1, 3, false);
    result corn = apply("ordinal:corn", x, 1, 3, true);
    cr_assert_eq(*(const int64_t *)ember_tensor_const_data(coral.labels), 3);
    cr_assert_eq(*(const int64_t *)ember_tensor_const_data(corn.labels), 2);
    const float *p = ember_tensor_const_data(corn.probabilities);
    float sum = p[0] + p[1] + p[2] + p[3];
    cr_assert(fabsf(sum - 1.0f) < 1e-6f);
    cr_assert(fabsf(p[3] - 0.9f * 0.6f * 0.6f) < 1e-6f);
    result_free(&coral);
    result_free(&corn);
}

Test(score_heads, multilabel_thresholds) {
    float x[] = {0.0f, 0.0f, 0.0f};
    result r = apply("multilabel:0.45,0.4,0.55", x, 1, 3, false);
    const int64_t *lab = ember_tensor_const_data(r.labels);
    cr_assert(lab[0] == 1 && lab[1] == 1 && lab[2] == 0);
    result_free(&r);
}
