/* The model zoo (models/, made by models/export.py): every model runs through ember and
 * matches the outputs PyTorch computed on the same rows, unoptimized and optimized; decision
 * outputs exactly, float outputs within a tight tolerance. The optimized decision models run
 * with fused heads, and no zoo model trips a lint. Runs from the source root. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ember.h"

typedef struct zoo_model {
    const char *name;
    const char *fused; /* ai.ember op the optimized graph must contain, or NULL */
} zoo_model;

static const zoo_model k_zoo[] = {
    {"binary_mlp", NULL},
    {"binary_mlp_decision", "ai.ember:SigmoidThreshold"},
    {"multiclass_mlp", NULL},
    {"multiclass_mlp_decision", NULL}, /* probabilities exposed: ArgMax of them stays */
    {"multilabel_cnn", NULL},
    {"multilabel_cnn_decision", "ai.ember:SigmoidThreshold"},
    {"coral_mlp", NULL},
    {"coral_mlp_rank", "ai.ember:CumulativeOrdinal"},
    {"corn_mlp", NULL},
    {"corn_mlp_rank", "ai.ember:CumulativeOrdinal"},
    {"conv_autoencoder", NULL},
};

/* Float outputs: |ember - torch| <= ABS + REL |torch|. Decisions: exact. */
#define REL 1e-5
#define ABS 1e-5

static bool is_decision(const char *output) {
    return strcmp(output, "decision") == 0 || strcmp(output, "label") == 0 ||
           strcmp(output, "labels") == 0 || strcmp(output, "rank") == 0;
}

static ember_tensor *load_npy(const char *model, const char *what) {
    char path[512];
    snprintf(path, sizeof path, "models/%s.%s.npy", model, what);
    ember_tensor *t = NULL;
    ember_error err;
    cr_assert_eq(ember_tensor_load(path, &t, &err), EMBER_OK, "%s: %s", path, err.message);
    return t;
}

static void compare(const char *model, const char *output, const char *how, const ember_tensor *got,
                    const ember_tensor *want) {
    cr_assert_eq(ember_tensor_dtype(got), ember_tensor_dtype(want), "%s %s (%s): dtype %s vs %s",
                 model, output, how, ember_dtype_name(ember_tensor_dtype(got)),
                 ember_dtype_name(ember_tensor_dtype(want)));
    int rank = ember_tensor_rank(got);
    cr_assert_eq(rank, ember_tensor_rank(want), "%s %s (%s): rank", model, output, how);
    for (int d = 0; d < rank; d++)
        cr_assert_eq(ember_tensor_dims(got)[d], ember_tensor_dims(want)[d], "%s %s (%s): dim %d",
                     model, output, how, d);
    int64_t n = ember_tensor_element_count(got);
    ember_dtype dt = ember_tensor_dtype(got);
    if (dt == EMBER_FLOAT && !is_decision(output)) {
        const float *a = ember_tensor_const_data(got), *b = ember_tensor_const_data(want);
        double worst = 0;
        int64_t bad = 0, at = -1;
        for (int64_t i = 0; i < n; i++) {
            double diff = fabs((double)a[i] - (double)b[i]);
            double excess = diff - (ABS + REL * fabs((double)b[i]));
            if (!(excess <= 0)) {
                bad++;
                if (at < 0 || excess > worst) {
                    worst = excess;
                    at = i;
                }
            }
        }
        cr_expect_eq(bad, 0, "%s %s (%s): %lld of %lld values off, worst at %lld: %.9g vs %.9g",
                     model, output, how, (long long)bad, (long long)n, (long long)at,
                     at >= 0 ? a[at] : 0.0, at >= 0 ? b[at] : 0.0);
        return;
    }
    size_t es = ember_dtype_size(dt);
    const unsigned char *a = ember_tensor_const_data(got), *b = ember_tensor_const_data(want);
    int64_t bad = 0, at = -1;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(a + (size_t)i * es, b + (size_t)i * es, es) != 0) {
            bad++;
            if (at < 0) at = i;
        }
    cr_expect_eq(bad, 0, "%s %s (%s): %lld of %lld decisions differ from PyTorch, first at %lld",
                 model, output, how, (long long)bad, (long long)n, (long long)at);
}

static void run_model(const zoo_model *z) {
    char path[512];
    snprintf(path, sizeof path, "models/%s.onnx", z->name);
    ember_model *m = NULL;
    ember_error err;
    cr_assert_eq(ember_model_load_file(path, NULL, &m, &err), EMBER_OK, "%s", err.message);
    cr_expect_eq(ember_model_warning_count(m), 0, "%s: %s", z->name,
                 ember_model_warning_count(m) ? ember_model_warning(m, 0) : "");
    ember_value_info in;
    cr_assert_eq(ember_model_input_count(m), 1);
    ember_model_input(m, 0, &in);
    ember_tensor *x = load_npy(z->name, "input");
    size_t n_out = ember_model_output_count(m);
    cr_assert(n_out >= 1 && n_out <= 4);
    const char *names[4];
    ember_tensor *want[4];
    for (size_t k = 0; k < n_out; k++) {
        ember_value_info info;
        ember_model_output(m, k, &info);
        names[k] = info.name;
        char what[256];
        snprintf(what, sizeof what, "expected_%s", info.name);
        want[k] = load_npy(z->name, what);
    }
    static const ember_opt_level levels[] = {EMBER_OPT_NONE, EMBER_OPT_BASIC, EMBER_OPT_ALL};
    static const char *level_names[] = {"unoptimized", "basic", "optimized"};
    for (int l = 0; l < 3; l++) {
        ember_session_options o;
        ember_session_options_init(&o);
        o.opt_level = levels[l];
        o.threads = 2;
        ember_session *s = NULL;
        cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
        if (levels[l] != EMBER_OPT_NONE && z->fused) {
            char text[8192];
            ember_session_describe(s, text, sizeof text);
            cr_expect(strstr(text, z->fused) != NULL, "%s (%s): no %s in:\n%s", z->name,
                      level_names[l], z->fused, text);
        }
        const ember_tensor *ins[1] = {x};
        ember_tensor *got[4] = {0};
        cr_assert_eq(ember_session_run(s, &in.name, ins, 1, names, n_out, got, &err), EMBER_OK,
                     "%s (%s): %s", z->name, level_names[l], err.message);
        for (size_t k = 0; k < n_out; k++) {
            compare(z->name, names[k], level_names[l], got[k], want[k]);
            ember_tensor_free(got[k]);
        }
        ember_session_free(s);
    }
    for (size_t k = 0; k < n_out; k++) ember_tensor_free(want[k]);
    ember_tensor_free(x);
    ember_model_free(m);
}

Test(zoo, binary_mlp) {
    run_model(&k_zoo[0]);
}
Test(zoo, binary_mlp_decision) {
    run_model(&k_zoo[1]);
}
Test(zoo, multiclass_mlp) {
    run_model(&k_zoo[2]);
}
Test(zoo, multiclass_mlp_decision) {
    run_model(&k_zoo[3]);
}
Test(zoo, multilabel_cnn) {
    run_model(&k_zoo[4]);
}
Test(zoo, multilabel_cnn_decision) {
    run_model(&k_zoo[5]);
}
Test(zoo, coral_mlp) {
    run_model(&k_zoo[6]);
}
Test(zoo, coral_mlp_rank) {
    run_model(&k_zoo[7]);
}
Test(zoo, corn_mlp) {
    run_model(&k_zoo[8]);
}
Test(zoo, corn_mlp_rank) {
    run_model(&k_zoo[9]);
}
Test(zoo, conv_autoencoder) {
    run_model(&k_zoo[10]);
}
