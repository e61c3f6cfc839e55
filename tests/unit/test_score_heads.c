/* ember score: --head parsing, shapes and the plain-loop heads. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "heads_cli.h"

Test(score_heads, parse) {
    cli_head h;
    char msg[256];
    cr_assert(cli_head_parse("binary", &h, msg, sizeof msg));
    cr_assert(h.kind == CLI_HEAD_BINARY && h.threshold == 0.5f);
    cr_assert(cli_head_parse("binary:0.3", &h, msg, sizeof msg) && h.threshold == 0.3f);
    cr_assert(!cli_head_parse("binary:1.5", &h, msg, sizeof msg));
    cr_assert_str_eq(msg, "--head binary:1.5: the threshold must be a number in [0, 1]");
    cr_assert(!cli_head_parse("binary:nan", &h, msg, sizeof msg));
    cr_assert(cli_head_parse("multilabel:0.45,0.4,0.55", &h, msg, sizeof msg));
    cr_assert(h.n_thresholds == 3 && h.thresholds[1] == 0.4f);
    cli_head_free(&h);
    cr_assert(!cli_head_parse("multilabel:0.4,,0.5", &h, msg, sizeof msg));
    cr_assert(cli_head_parse("multiclass", &h, msg, sizeof msg));
    cr_assert(!cli_head_parse("multiclass:2", &h, msg, sizeof msg));
    cr_assert(cli_head_parse("ordinal", &h, msg, sizeof msg) && !h.corn);
    cr_assert(cli_head_parse("ordinal:corn", &h, msg, sizeof msg) && h.corn);
    cr_assert(!cli_head_parse("ordinal:other", &h, msg, sizeof msg));
    cr_assert(!cli_head_parse("regression", &h, msg, sizeof msg));
}

Test(score_heads, shapes) {
    cli_head h;
    char msg[256];
    int64_t labels, probs;
    cli_head_parse("multiclass", &h, msg, sizeof msg);
    cr_assert(!cli_head_shape(&h, 1, &labels, &probs, msg, sizeof msg));
    cr_assert(cli_head_shape(&h, 10, &labels, &probs, msg, sizeof msg));
    cr_assert(labels == 1 && probs == 10);
    cli_head_parse("ordinal", &h, msg, sizeof msg);
    cr_assert(cli_head_shape(&h, 4, &labels, &probs, msg, sizeof msg) && probs == 5);
    cli_head_parse("binary", &h, msg, sizeof msg);
    cr_assert(!cli_head_shape(&h, 2, &labels, &probs, msg, sizeof msg));
}

Test(score_heads, binary_float32_edge) {
    cli_head h;
    char msg[64];
    cli_head_parse("binary", &h, msg, sizeof msg);
    /* sigmoid(1e-9) is 0.5 in float32: not above the threshold, unlike x > 0 */
    float x[] = {1e-9f, -1e-9f, 0.0f, 1e-6f, 100.0f, -100.0f, NAN, INFINITY, -INFINITY};
    int64_t lab[9];
    float p[9];
    cli_head_apply(&h, x, 9, 1, lab, p);
    int64_t want[] = {0, 0, 0, 1, 1, 0, 0, 1, 0};
    for (int i = 0; i < 9; i++) cr_assert_eq(lab[i], want[i], "x = %g", (double)x[i]);
    cr_assert_eq(p[0], 0.5f);
    cr_assert_eq(p[5], expf(-100.0f) / (1.0f + expf(-100.0f)));
}

Test(score_heads, multiclass_ties_and_probabilities) {
    cli_head h;
    char msg[64];
    cli_head_parse("multiclass", &h, msg, sizeof msg);
    float x[] = {1, 3, 3, 0, /**/ 1000, 0, 0, 1000};
    int64_t lab[2];
    float p[8];
    cli_head_apply(&h, x, 2, 4, lab, p);
    cr_assert(lab[0] == 1 && lab[1] == 0);
    cr_assert(fabsf(p[4] - 0.5f) < 1e-6f && fabsf(p[7] - 0.5f) < 1e-6f); /* no overflow */
}

Test(score_heads, ordinal_coral_and_corn) {
    cli_head coral, corn;
    char msg[64];
    cli_head_parse("ordinal", &coral, msg, sizeof msg);
    cli_head_parse("ordinal:corn", &corn, msg, sizeof msg);
    /* sigmoids 0.9, 0.6, 0.6 */
    float x[] = {2.1972246f, 0.4054651f, 0.4054651f};
    int64_t a, b;
    float p[4];
    cli_head_apply(&coral, x, 1, 3, &a, NULL);
    cli_head_apply(&corn, x, 1, 3, &b, p);
    cr_assert_eq(a, 3);
    cr_assert_eq(b, 2);
    float sum = p[0] + p[1] + p[2] + p[3];
    cr_assert(fabsf(sum - 1.0f) < 1e-6f);
    cr_assert(fabsf(p[3] - 0.9f * 0.6f * 0.6f) < 1e-6f);
}

Test(score_heads, multilabel_thresholds) {
    cli_head h;
    char msg[64];
    cli_head_parse("multilabel:0.45,0.4,0.55", &h, msg, sizeof msg);
    float x[] = {0.0f, 0.0f, 0.0f};
    int64_t lab[3];
    cli_head_apply(&h, x, 1, 3, lab, NULL);
    cr_assert(lab[0] == 1 && lab[1] == 1 && lab[2] == 0);
    cli_head_free(&h);
}
