/* Task heads through the public API only (include/ember.h): ember_head parsed or filled by hand,
 * attached through ember_session_options. Every decision and probability must equal, bit for
 * bit, the unfused computation: the Sigmoid / Softmax / ArgMax kernels of an unoptimized model
 * (ref_unfused from tests/heads/make_head_models.py) followed by the float32 arithmetic the
 * exported graphs do (Greater, Round, the CORN product, ReduceSum). On adversarial logits (ties
 * at the threshold, NaN, +-inf, huge values, K = 2, one label) and on the model zoo, whose
 * PyTorch decisions must also match. Runs from the source root with EMBER_HEAD_MODELS set. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

static char *head_model(const char *name) {
    static _Thread_local char path[1024];
    const char *dir = getenv("EMBER_HEAD_MODELS");
    cr_assert_not_null(dir, "EMBER_HEAD_MODELS is not set (run through meson test)");
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    return path;
}

static ember_model *load(const char *path) {
    ember_model *m = NULL;
    ember_error err;
    cr_assert_eq(ember_model_load_file(path, NULL, &m, &err), EMBER_OK, "%s", err.message);
    return m;
}

static ember_tensor *matrix(const float *values, int64_t rows, int64_t cols) {
    int64_t dims[2] = {rows, cols};
    ember_tensor *t = NULL;
    ember_error err;
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, dims, 2, &t, &err), EMBER_OK, "%s", err.message);
    if (rows > 0 && cols > 0) memcpy(ember_tensor_data(t), values, sizeof(float) * (size_t)(rows * cols));
    return t;
}

/* Run `model` with one head on input `x`; decision (and probabilities when asked for). */
static ember_status run_head(ember_model *m, const ember_head *head, const ember_tensor *x,
                             ember_tensor **decision, ember_tensor **probabilities,
                             ember_error *err) {
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = 2;
    o.heads = head;
    o.n_heads = 1;
    ember_session *s = NULL;
    ember_status st = ember_session_create(m, &o, &s, err);
    if (st != EMBER_OK) return st;
    ember_value_info in;
    ember_model_input(m, 0, &in);
    const char *out_name = head->output;
    if (!out_name) {
        ember_value_info vi;
        ember_model_output(m, 0, &vi);
        out_name = vi.name;
    }
    char dname[256], pname[256];
    snprintf(dname, sizeof dname, "%s_decision", out_name);
    snprintf(pname, sizeof pname, "%s_probabilities", out_name);
    const char *names[2] = {head->decision_name ? head->decision_name : dname,
                            head->probabilities_name ? head->probabilities_name : pname};
    ember_tensor *outs[2] = {NULL, NULL};
    st = ember_session_run(s, &in.name, &x, 1, names, head->probabilities ? 2 : 1, outs, err);
    ember_session_free(s);
    *decision = outs[0];
    if (probabilities) *probabilities = outs[1];
    else ember_tensor_free(outs[1]);
    return st;
}

/* The unfused kernels on logits [rows, n]: sigmoid, softmax, argmax. */
typedef struct reference {
    ember_tensor *sigmoid, *softmax, *argmax;
} reference;

static reference unfused(const ember_tensor *x) {
    ember_model *m = load(head_model("ref_unfused"));
    ember_session_options o;
    ember_session_options_init(&o);
    o.opt_level = EMBER_OPT_NONE;
    o.threads = 1;
    ember_session *s = NULL;
    ember_error err;
    cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
    const char *in = "logits";
    const char *names[3] = {"sigmoid", "softmax", "argmax"};
    ember_tensor *outs[3];
    cr_assert_eq(ember_session_run(s, &in, &x, 1, names, 3, outs, &err), EMBER_OK, "%s",
                 err.message);
    ember_session_free(s);
    ember_model_free(m);
    return (reference){outs[0], outs[1], outs[2]};
}

static void reference_free(reference *r) {
    ember_tensor_free(r->sigmoid);
    ember_tensor_free(r->softmax);
    ember_tensor_free(r->argmax);
}

static bool same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* ---------------------------------------------------------------------------------------------
 * Adversarial logits
 * ------------------------------------------------------------------------------------------- */

/* Values around the cuts of the thresholds used below, specials and huge values. */
static size_t adversarial_pool(float *pool, size_t cap) {
    size_t n = 0;
    const float specials[] = {0.0f,     -0.0f,     1e-9f,     -1e-9f,   1e-8f,    -1e-8f,
                              1e-7f,    -1e-7f,    2e-6f,     -2e-6f,   NAN,      -NAN,
                              INFINITY, -INFINITY, 1e30f,     -1e30f,   88.72f,   -88.72f,
                              103.0f,   -103.0f,   3.4e38f,   -3.4e38f, 1e-45f,   -1e-45f,
                              16.63f,   -16.63f,   17.0f,     -17.0f,   0.5f,     -0.5f};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) pool[n++] = specials[i];
    const float thresholds[] = {0.5f, 0.3f, 0.45f, 0.4f, 0.55f, 0.7f, 0.999f, 1e-6f};
    for (size_t t = 0; t < sizeof thresholds / sizeof thresholds[0]; t++) {
        float cut = logf(thresholds[t] / (1.0f - thresholds[t]));
        float up = cut, down = cut;
        for (int k = 0; k < 24 && n + 2 <= cap; k++) {
            pool[n++] = up;
            pool[n++] = down;
            up = nextafterf(up, INFINITY);
            down = nextafterf(down, -INFINITY);
        }
    }
    return n;
}

/* rows x n logits from the pool (a fixed sequence), with whole-row ties every 7th row. */
static float *adversarial(int64_t rows, int64_t n) {
    float pool[512];
    size_t np = adversarial_pool(pool, 512);
    float *x = malloc(sizeof(float) * (size_t)(rows * n));
    cr_assert_not_null(x);
    uint64_t state = 0x9E3779B97F4A7C15ull;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < n; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            float v = pool[(state >> 33) % np];
            if (r % 7 == 3 && k > 0) v = x[r * n]; /* a tie with the first logit */
            if (r % 11 == 5) v = (float)(int)((state >> 40) % 3); /* small-integer ties */
            x[r * n + k] = v;
        }
    return x;
}

enum { ROWS = 5000 }; /* more than one block of the fused loops, on two threads */

/* ---------------------------------------------------------------------------------------------
 * Each head against the unfused computation
 * ------------------------------------------------------------------------------------------- */

static void check_sigmoid_head(ember_head_kind kind, int64_t n, const float *thresholds,
                               size_t n_thresholds, float threshold, ember_dtype dtype,
                               bool round) {
    float *x = adversarial(ROWS, n);
    ember_tensor *xt = matrix(x, ROWS, n);
    ember_model *m = load(head_model("logits_identity"));
    ember_head h;
    ember_head_init(&h, kind);
    h.threshold = threshold;
    h.thresholds = thresholds;
    h.n_thresholds = n_thresholds;
    h.decision_dtype = dtype;
    h.probabilities = 1;
    ember_tensor *d = NULL, *p = NULL;
    ember_error err;
    cr_assert_eq(run_head(m, &h, xt, &d, &p, &err), EMBER_OK, "%s", err.message);
    reference ref = unfused(xt);
    const float *s = ember_tensor_const_data(ref.sigmoid);
    ember_dtype want_dtype = dtype != EMBER_UNDEFINED ? dtype
                             : kind == EMBER_HEAD_BINARY ? EMBER_FLOAT
                                                         : EMBER_BOOL;
    cr_assert_eq(ember_tensor_dtype(d), want_dtype);
    cr_assert_eq(ember_tensor_element_count(d), ROWS * n);
    const float *prob = ember_tensor_const_data(p);
    int64_t bad = 0;
    for (int64_t i = 0; i < ROWS * n; i++) {
        float t = thresholds ? thresholds[i % n] : threshold;
        bool above = s[i] > t; /* Greater(Sigmoid(x), t) */
        const void *dv = ember_tensor_const_data(d);
        bool ok;
        if (round) { /* Round(Sigmoid(x)): half to even, NaN stays */
            float want = s[i] != s[i] ? s[i] : s[i] > 0.5f ? 1.0f : 0.0f;
            ok = same_bits(((const float *)dv)[i], want) ||
                 (want != want && ((const float *)dv)[i] != ((const float *)dv)[i]);
        } else if (want_dtype == EMBER_FLOAT) {
            ok = ((const float *)dv)[i] == (above ? 1.0f : 0.0f);
        } else if (want_dtype == EMBER_INT64) {
            ok = ((const int64_t *)dv)[i] == (int64_t)above;
        } else {
            ok = ((const uint8_t *)dv)[i] == (uint8_t)above;
        }
        ok = ok && same_bits(prob[i], s[i]);
        if (!ok && bad++ < 5)
            cr_log_error("element %lld: x = %a, sigmoid %a, threshold %g", (long long)i,
                         (double)x[i], (double)s[i], (double)t);
    }
    cr_expect_eq(bad, 0, "%lld decisions or probabilities differ from the unfused graph",
                 (long long)bad);
    reference_free(&ref);
    ember_tensor_free(d);
    ember_tensor_free(p);
    ember_tensor_free(xt);
    ember_model_free(m);
    free(x);
}

Test(heads_api, binary_round_matches_unfused) {
    check_sigmoid_head(EMBER_HEAD_BINARY, 1, NULL, 0, 0.5f, EMBER_UNDEFINED, true);
}

Test(heads_api, binary_threshold_int64_matches_unfused) {
    check_sigmoid_head(EMBER_HEAD_BINARY, 1, NULL, 0, 0.3f, EMBER_INT64, false);
    check_sigmoid_head(EMBER_HEAD_BINARY, 1, NULL, 0, 0.5f, EMBER_INT64, false);
    check_sigmoid_head(EMBER_HEAD_BINARY, 1, NULL, 0, 0.0f, EMBER_BOOL, false);
    check_sigmoid_head(EMBER_HEAD_BINARY, 1, NULL, 0, 1.0f, EMBER_BOOL, false);
}

Test(heads_api, multilabel_matches_unfused) {
    const float t[] = {0.45f, 0.4f, 0.55f};
    check_sigmoid_head(EMBER_HEAD_MULTILABEL, 3, t, 3, 0.5f, EMBER_UNDEFINED, false);
    check_sigmoid_head(EMBER_HEAD_MULTILABEL, 5, NULL, 0, 0.999f, EMBER_FLOAT, false);
    check_sigmoid_head(EMBER_HEAD_MULTILABEL, 1, NULL, 0, 0.5f, EMBER_UNDEFINED, false); /* 1 label */
}

static void check_multiclass(int64_t n) {
    float *x = adversarial(ROWS, n);
    ember_tensor *xt = matrix(x, ROWS, n);
    ember_model *m = load(head_model("logits_identity"));
    ember_head h;
    ember_head_init(&h, EMBER_HEAD_MULTICLASS);
    h.probabilities = 1;
    ember_tensor *d = NULL, *p = NULL;
    ember_error err;
    cr_assert_eq(run_head(m, &h, xt, &d, &p, &err), EMBER_OK, "%s", err.message);
    reference ref = unfused(xt);
    cr_assert_eq(ember_tensor_dtype(d), EMBER_INT64);
    cr_assert_eq(ember_tensor_element_count(d), ROWS);
    cr_expect(memcmp(ember_tensor_const_data(d), ember_tensor_const_data(ref.argmax),
                     sizeof(int64_t) * ROWS) == 0,
              "class indices differ from ArgMax");
    cr_expect(memcmp(ember_tensor_const_data(p), ember_tensor_const_data(ref.softmax),
                     sizeof(float) * (size_t)(ROWS * n)) == 0,
              "probabilities differ from Softmax");
    reference_free(&ref);
    ember_tensor_free(d);
    ember_tensor_free(p);
    ember_tensor_free(xt);
    ember_model_free(m);
    free(x);
}

Test(heads_api, multiclass_matches_unfused) {
    check_multiclass(10);
    check_multiclass(2); /* K = 2 */
}

static void check_ordinal(int64_t levels, ember_ordinal_mode mode, float threshold) {
    float *x = adversarial(ROWS, levels);
    ember_tensor *xt = matrix(x, ROWS, levels);
    ember_model *m = load(head_model("logits_identity"));
    ember_head h;
    ember_head_init(&h, EMBER_HEAD_ORDINAL);
    h.ordinal = mode;
    h.threshold = threshold;
    for (int with_p = 0; with_p < 2; with_p++) {
        h.probabilities = with_p;
        ember_tensor *d = NULL, *p = NULL;
        ember_error err;
        cr_assert_eq(run_head(m, &h, xt, &d, &p, &err), EMBER_OK, "%s", err.message);
        reference ref = unfused(xt);
        const float *s = ember_tensor_const_data(ref.sigmoid);
        const int64_t *rank = ember_tensor_const_data(d);
        const float *cls = with_p ? ember_tensor_const_data(p) : NULL;
        cr_assert_eq(ember_tensor_element_count(d), ROWS);
        if (with_p) cr_assert_eq(ember_tensor_element_count(p), ROWS * (levels + 1));
        int64_t bad = 0;
        for (int64_t r = 0; r < ROWS; r++) {
            /* the exported graph: (CORN) Mul chain, Greater(t), Cast, ReduceSum */
            float cum = 1.0f, prev = 1.0f;
            int64_t count = 0;
            bool ok = true;
            for (int64_t k = 0; k < levels; k++) {
                float sk = s[r * levels + k];
                cum = mode == EMBER_ORDINAL_CORN ? (k == 0 ? sk : cum * sk) : sk;
                count += cum > threshold;
                if (cls) ok = ok && same_bits(cls[r * (levels + 1) + k], prev - cum);
                prev = cum;
            }
            if (cls) ok = ok && same_bits(cls[r * (levels + 1) + levels], prev);
            ok = ok && rank[r] == count;
            if (!ok && bad++ < 5)
                cr_log_error("row %lld: rank %lld, unfused %lld", (long long)r,
                             (long long)rank[r], (long long)count);
        }
        cr_expect_eq(bad, 0, "%lld rows differ (levels %lld, mode %d, threshold %g)",
                     (long long)bad, (long long)levels, (int)mode, (double)threshold);
        reference_free(&ref);
        ember_tensor_free(d);
        ember_tensor_free(p);
    }
    ember_tensor_free(xt);
    ember_model_free(m);
    free(x);
}

Test(heads_api, ordinal_matches_unfused) {
    check_ordinal(4, EMBER_ORDINAL_CORAL, 0.5f);
    check_ordinal(4, EMBER_ORDINAL_CORN, 0.5f);
    check_ordinal(1, EMBER_ORDINAL_CORAL, 0.5f); /* K = 2 */
    check_ordinal(1, EMBER_ORDINAL_CORN, 0.5f);
    check_ordinal(6, EMBER_ORDINAL_CORAL, 0.7f);
    check_ordinal(6, EMBER_ORDINAL_CORN, 0.3f);
}

/* ---------------------------------------------------------------------------------------------
 * The zoo: heads on the logits models equal PyTorch's decisions and the unfused computation
 * ------------------------------------------------------------------------------------------- */

static ember_tensor *npy(const char *model, const char *what) {
    char path[512];
    snprintf(path, sizeof path, "models/%s.%s.npy", model, what);
    ember_tensor *t = NULL;
    ember_error err;
    cr_assert_eq(ember_tensor_load(path, &t, &err), EMBER_OK, "%s", err.message);
    return t;
}

static void check_zoo(const char *model, const char *spec, const char *decision_model,
                      const char *expected, ember_dtype dtype) {
    char path[512];
    snprintf(path, sizeof path, "models/%s.onnx", model);
    ember_model *m = load(path);
    ember_tensor *x = npy(model, "input");
    ember_head h;
    ember_error err;
    cr_assert_eq(ember_head_parse(spec, &h, &err), EMBER_OK, "%s", err.message);
    h.decision_dtype = dtype;
    ember_tensor *d = NULL;
    cr_assert_eq(run_head(m, &h, x, &d, NULL, &err), EMBER_OK, "%s: %s", model, err.message);
    ember_tensor *want = npy(decision_model, expected);
    cr_assert_eq(ember_tensor_dtype(d), ember_tensor_dtype(want), "%s", model);
    cr_assert_eq(ember_tensor_byte_size(d), ember_tensor_byte_size(want), "%s", model);
    cr_expect(memcmp(ember_tensor_const_data(d), ember_tensor_const_data(want),
                     ember_tensor_byte_size(d)) == 0,
              "%s --head %s differs from PyTorch's decisions", model, spec);
    ember_head_clear(&h);
    ember_tensor_free(want);
    ember_tensor_free(d);
    ember_tensor_free(x);
    ember_model_free(m);
}

Test(heads_api, zoo_matches_pytorch) {
    check_zoo("binary_mlp", "binary", "binary_mlp_decision", "expected_decision", 0);
    check_zoo("multiclass_mlp", "multiclass", "multiclass_mlp_decision", "expected_label", 0);
    check_zoo("multilabel_cnn", "multilabel:0.45,0.4,0.55", "multilabel_cnn_decision",
              "expected_labels", 0);
    check_zoo("coral_mlp", "ordinal:coral", "coral_mlp_rank", "expected_rank", 0);
    check_zoo("corn_mlp", "ordinal:corn", "corn_mlp_rank", "expected_rank", 0);
}

Test(heads_api, zoo_logits_match_unfused) {
    const struct {
        const char *model, *spec;
    } cases[] = {{"multiclass_mlp", "multiclass"}, {"coral_mlp", "ordinal"},
                 {"corn_mlp", "ordinal:corn"}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char path[512];
        snprintf(path, sizeof path, "models/%s.onnx", cases[c].model);
        ember_model *m = load(path);
        ember_tensor *x = npy(cases[c].model, "input");
        ember_head h;
        ember_error err;
        cr_assert_eq(ember_head_parse(cases[c].spec, &h, &err), EMBER_OK);
        h.probabilities = 1;
        ember_tensor *d = NULL, *p = NULL;
        cr_assert_eq(run_head(m, &h, x, &d, &p, &err), EMBER_OK, "%s", err.message);
        /* the logits themselves, then the unfused kernels on them */
        ember_session *s = NULL;
        cr_assert_eq(ember_session_create(m, NULL, &s, &err), EMBER_OK);
        ember_value_info in, out;
        ember_model_input(m, 0, &in);
        ember_model_output(m, 0, &out);
        ember_tensor *logits = NULL;
        const ember_tensor *xs = x;
        cr_assert_eq(ember_session_run(s, &in.name, &xs, 1, &out.name, 1, &logits, &err),
                     EMBER_OK);
        reference ref = unfused(logits);
        if (h.kind == EMBER_HEAD_MULTICLASS) {
            cr_expect(memcmp(ember_tensor_const_data(d), ember_tensor_const_data(ref.argmax),
                             ember_tensor_byte_size(d)) == 0);
            cr_expect(memcmp(ember_tensor_const_data(p), ember_tensor_const_data(ref.softmax),
                             ember_tensor_byte_size(p)) == 0);
        } else {
            const float *sg = ember_tensor_const_data(ref.sigmoid);
            const int64_t *rank = ember_tensor_const_data(d);
            int64_t rows = ember_tensor_dims(logits)[0], levels = ember_tensor_dims(logits)[1];
            for (int64_t r = 0; r < rows; r++) {
                float cum = 1.0f;
                int64_t count = 0;
                for (int64_t k = 0; k < levels; k++) {
                    float sk = sg[r * levels + k];
                    cum = h.ordinal == EMBER_ORDINAL_CORN ? (k == 0 ? sk : cum * sk) : sk;
                    count += cum > 0.5f;
                }
                cr_expect_eq(rank[r], count, "%s row %lld", cases[c].model, (long long)r);
            }
        }
        reference_free(&ref);
        ember_tensor_free(logits);
        ember_session_free(s);
        ember_tensor_free(d);
        ember_tensor_free(p);
        ember_tensor_free(x);
        ember_model_free(m);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Parsing, names, several heads, errors
 * ------------------------------------------------------------------------------------------- */

Test(heads_api, parse) {
    ember_head h;
    ember_error err;
    cr_assert_eq(ember_head_parse("binary", &h, &err), EMBER_OK);
    cr_expect(h.kind == EMBER_HEAD_BINARY && h.threshold == 0.5f && !h.thresholds && !h.output);
    cr_assert_eq(ember_head_parse("binary:0.3", &h, &err), EMBER_OK);
    cr_expect(h.threshold == 0.3f);
    cr_assert_eq(ember_head_parse("multilabel:0.2", &h, &err), EMBER_OK);
    cr_expect(h.kind == EMBER_HEAD_MULTILABEL && h.threshold == 0.2f && !h.thresholds);
    cr_assert_eq(ember_head_parse("multilabel:0.45,0.4,0.55", &h, &err), EMBER_OK);
    cr_expect(h.n_thresholds == 3 && h.thresholds[1] == 0.4f && h.owned == h.thresholds);
    ember_head_clear(&h);
    cr_expect(!h.owned && !h.thresholds && h.n_thresholds == 0);
    ember_head_clear(&h); /* twice is harmless */
    cr_assert_eq(ember_head_parse("multiclass", &h, &err), EMBER_OK);
    cr_expect(h.kind == EMBER_HEAD_MULTICLASS);
    cr_assert_eq(ember_head_parse("ordinal", &h, &err), EMBER_OK);
    cr_expect(h.kind == EMBER_HEAD_ORDINAL && h.ordinal == EMBER_ORDINAL_CORAL);
    cr_assert_eq(ember_head_parse("ordinal:corn:0.6", &h, &err), EMBER_OK);
    cr_expect(h.ordinal == EMBER_ORDINAL_CORN && h.threshold == 0.6f);
    const char *bad[] = {"binary:1.5", "binary:nan", "binary:0.2,0.3", "multilabel:0.4,,0.5",
                         "multiclass:2", "ordinal:probit", "regression", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(ember_head_parse(bad[i], &h, &err), EMBER_ERR_INVALID_ARGUMENT, "'%s'",
                     bad[i]);
        cr_expect(strncmp(err.message, "head ", 5) == 0, "'%s': %s", bad[i], err.message);
    }
    cr_expect_str_eq(err.message, "head '': expected binary[:T], multilabel[:T1,T2,...], "
                                  "multiclass or ordinal[:coral|corn[:T]]");
}

Test(heads_api, names_and_several_heads) {
    ember_model *m = load("models/multilabel_cnn.onnx");
    ember_tensor *x = npy("multilabel_cnn", "input");
    ember_head heads[2];
    ember_head_init(&heads[0], EMBER_HEAD_MULTILABEL);
    heads[0].output = "logits";
    heads[0].decision_name = "labels";
    heads[0].probabilities = 1;
    heads[0].probabilities_name = "p";
    ember_head_init(&heads[1], EMBER_HEAD_MULTICLASS);
    heads[1].output = "logits";
    ember_session_options o;
    ember_session_options_init(&o);
    o.heads = heads;
    o.n_heads = 2;
    ember_session *s = NULL;
    ember_error err;
    cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
    cr_assert_eq(ember_session_output_count(s), 4);
    const char *want[] = {"logits", "labels", "p", "logits_decision"};
    const ember_dtype types[] = {EMBER_FLOAT, EMBER_BOOL, EMBER_FLOAT, EMBER_INT64};
    for (size_t k = 0; k < 4; k++) {
        ember_value_info vi;
        cr_assert_eq(ember_session_output(s, k, &vi), EMBER_OK);
        cr_expect_str_eq(vi.name, want[k]);
        cr_expect_eq(vi.dtype, types[k], "%s", want[k]);
    }
    cr_expect_eq(ember_session_output(s, 4, &(ember_value_info){0}), EMBER_ERR_INVALID_ARGUMENT);
    ember_value_info in;
    ember_model_input(m, 0, &in);
    ember_tensor *outs[4];
    const ember_tensor *xs = x;
    cr_assert_eq(ember_session_run(s, &in.name, &xs, 1, want, 4, outs, &err), EMBER_OK, "%s",
                 err.message);
    cr_expect_eq(ember_tensor_dims(outs[1])[1], 3);
    cr_expect_eq(ember_tensor_rank(outs[3]), 1);
    for (int k = 0; k < 4; k++) ember_tensor_free(outs[k]);
    ember_session_free(s);
    ember_tensor_free(x);
    ember_model_free(m);
}

/* Session creation fails with `code` and a message containing `text`. */
static void expect_create_fails(const char *model_path, const ember_head *h, ember_status code,
                                const char *text) {
    ember_model *m = load(model_path);
    ember_session_options o;
    ember_session_options_init(&o);
    o.heads = h;
    o.n_heads = 1;
    ember_session *s = NULL;
    ember_error err;
    cr_expect_eq(ember_session_create(m, &o, &s, &err), code, "%s", text);
    cr_expect_null(s);
    cr_expect(strstr(err.message, text) != NULL, "'%s' not in '%s'", text, err.message);
    ember_session_free(s);
    ember_model_free(m);
}

Test(heads_api, errors_at_creation) {
    ember_head h;
    ember_head_init(&h, EMBER_HEAD_BINARY);
    h.output = "nope";
    expect_create_fails("models/binary_mlp.onnx", &h, EMBER_ERR_INVALID_ARGUMENT,
                        "the model has no output 'nope'");
    ember_head_init(&h, EMBER_HEAD_BINARY); /* which of three outputs? */
    expect_create_fails(head_model("two_decisions"), &h, EMBER_ERR_INVALID_ARGUMENT,
                        "the model has 3 outputs");
    ember_head_init(&h, EMBER_HEAD_MULTICLASS); /* C == 1 */
    expect_create_fails("models/binary_mlp.onnx", &h, EMBER_ERR_SHAPE,
                        "head multiclass on output 'logit' needs at least 2 logits per row");
    ember_head_init(&h, EMBER_HEAD_BINARY); /* 10 logits */
    expect_create_fails("models/multiclass_mlp.onnx", &h, EMBER_ERR_SHAPE,
                        "head binary on output 'logits' needs one logit per row");
    const float two[] = {0.5f, 0.6f};
    ember_head_init(&h, EMBER_HEAD_MULTILABEL); /* 2 thresholds, 3 labels */
    h.thresholds = two;
    h.n_thresholds = 2;
    expect_create_fails("models/multilabel_cnn.onnx", &h, EMBER_ERR_SHAPE,
                        "2 thresholds for 3 labels per row");
    ember_head_init(&h, EMBER_HEAD_BINARY);
    h.threshold = 1.5f;
    expect_create_fails("models/binary_mlp.onnx", &h, EMBER_ERR_INVALID_ARGUMENT, "not in [0, 1]");
    h.threshold = NAN;
    expect_create_fails("models/binary_mlp.onnx", &h, EMBER_ERR_INVALID_ARGUMENT, "not in [0, 1]");
    ember_head_init(&h, EMBER_HEAD_MULTICLASS);
    h.decision_dtype = EMBER_FLOAT;
    expect_create_fails("models/multiclass_mlp.onnx", &h, EMBER_ERR_INVALID_ARGUMENT,
                        "cannot be float32");
    ember_head_init(&h, EMBER_HEAD_BINARY);
    h.decision_name = "logit"; /* the logits themselves */
    expect_create_fails("models/binary_mlp.onnx", &h, EMBER_ERR_INVALID_ARGUMENT,
                        "already has a value named 'logit'");
    ember_head_init(&h, EMBER_HEAD_MULTICLASS); /* int64 labels are not logits */
    h.output = "label";
    expect_create_fails("models/multiclass_mlp_decision.onnx", &h, EMBER_ERR_INVALID_ARGUMENT,
                        "needs float32 logits");
    ember_head_init(&h, (ember_head_kind)9);
    expect_create_fails("models/binary_mlp.onnx", &h, EMBER_ERR_INVALID_ARGUMENT, "unknown kind");
}

/* With a dynamic number of logits the check happens when the run knows it. */
Test(heads_api, errors_at_run) {
    ember_model *m = load(head_model("logits_identity"));
    const float x[3] = {1, 2, 3};
    ember_tensor *one = matrix(x, 3, 1), *none = matrix(x, 3, 0);
    ember_head h;
    ember_tensor *d = NULL;
    ember_error err;
    ember_head_init(&h, EMBER_HEAD_MULTICLASS);
    cr_expect_eq(run_head(m, &h, one, &d, NULL, &err), EMBER_ERR_SHAPE);
    cr_expect(strstr(err.message, "head multiclass on output 'y' needs at least 2 logits per row, "
                                  "the output has 1 (an argmax over one value is always 0: use "
                                  "binary)"),
              "%s", err.message);
    cr_expect_null(d);
    ember_head_init(&h, EMBER_HEAD_ORDINAL);
    cr_expect_eq(run_head(m, &h, none, &d, NULL, &err), EMBER_ERR_SHAPE);
    cr_expect(strstr(err.message, "head ordinal on output 'y' needs at least 1 logit"), "%s",
              err.message);
    ember_head_init(&h, EMBER_HEAD_BINARY);
    ember_tensor *four = matrix((const float[]){1, 2, 3, 4}, 1, 4);
    cr_expect_eq(run_head(m, &h, four, &d, NULL, &err), EMBER_ERR_SHAPE);
    const float t3[] = {0.1f, 0.2f, 0.3f};
    ember_head_init(&h, EMBER_HEAD_MULTILABEL);
    h.thresholds = t3;
    h.n_thresholds = 3;
    cr_expect_eq(run_head(m, &h, four, &d, NULL, &err), EMBER_ERR_SHAPE);
    ember_head_init(&h, EMBER_HEAD_BINARY); /* one logit per row is fine */
    cr_expect_eq(run_head(m, &h, one, &d, NULL, &err), EMBER_OK, "%s", err.message);
    ember_tensor_free(d);
    ember_tensor_free(four);
    ember_tensor_free(one);
    ember_tensor_free(none);
    ember_model_free(m);
}
