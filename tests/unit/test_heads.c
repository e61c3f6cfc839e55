/* Task heads: the fusion pass gives exactly the unfused results (every output, bit for bit,
 * NaN for NaN) on adversarial logits; it fuses what PyTorch exports and leaves look-alikes
 * alone; the fused operators used directly compute what ops/heads.h says; each lint fires on
 * the model made to trigger it and on nothing else; --head parsing.
 *
 * Models come from tests/heads/make_head_models.py, generated at build time into the folder
 * named by EMBER_HEAD_MODELS. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ops/heads.h"
#include "../../ops/sigmoid.h"
#include "ember.h"
#include "model.h"
#include "pass_heads.h"

static const char *model_path(const char *name) {
    static char path[1024];
    const char *dir = getenv("EMBER_HEAD_MODELS");
    cr_assert_not_null(dir, "EMBER_HEAD_MODELS is not set (run through meson test)");
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    return path;
}

static ember_model *load(const char *name) {
    ember_model *m = NULL;
    ember_error err;
    ember_status st = ember_model_load_file(model_path(name), NULL, &m, &err);
    cr_assert_eq(st, EMBER_OK, "%s: %s", name, err.message);
    return m;
}

static ember_session *session(const ember_model *m, ember_opt_level level, int threads) {
    ember_session_options o;
    ember_session_options_init(&o);
    o.opt_level = level;
    o.threads = threads;
    ember_session *s = NULL;
    ember_error err;
    cr_assert_eq(ember_session_create(m, &o, &s, &err), EMBER_OK, "%s", err.message);
    return s;
}

/* ---------------------------------------------------------------------------------------------
 * Adversarial logits
 * ------------------------------------------------------------------------------------------- */

typedef struct rows {
    float *data;
    int64_t n, cap, width;
} rows;

static float *new_row(rows *r) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->data = realloc(r->data, sizeof(float) * (size_t)(r->cap * r->width));
        cr_assert_not_null(r->data);
    }
    return r->data + r->n++ * r->width;
}

/* Deterministic pseudo-random normals (xorshift + Box-Muller). */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static double uniform(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}
static float normal(double scale) {
    return (float)(scale * sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform()));
}

/* Values where a head can go wrong: the brackets of the thresholds the models use (and
 * their neighbours), the float32 points where sigmoid saturates or rounds to 0.5, signed
 * zeros, subnormals, huge values, infinities and NaN. */
static int special_values(float *v, int cap) {
    static const float thresholds[] = {0.5f, 0.3f, 0.7f, 0.25f, 0.45f, 0.999f,
                                       0.4f, 0.6f, 0.9f, 0.0f,  1.0f};
    static const float fixed[] = {0.0f,  1e-9f, 1e-30f,  FLT_TRUE_MIN, FLT_MIN, 1e-7f,
                                  2e-6f, 1e-6f, 0.5f,    1.0f,         2.0f,    16.5f,
                                  16.7f, 17.0f, 88.7f,   88.8f,        103.9f,  104.0f,
                                  1e4f,  1e30f, FLT_MAX, INFINITY};
    int n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        v[n++] = fixed[i];
        v[n++] = -fixed[i];
    }
    v[n++] = NAN;
    v[n++] = -NAN;
    for (size_t i = 0; i < sizeof thresholds / sizeof thresholds[0]; i++)
        for (int inclusive = 0; inclusive < 2; inclusive++) {
            em_sigmoid_cut c = em_sigmoid_cut_f32(thresholds[i], inclusive);
            float ends[2] = {c.lo, c.hi};
            for (int e = 0; e < 2; e++) {
                if (!isfinite(ends[e])) continue;
                float below = nextafterf(ends[e], -INFINITY), above = nextafterf(ends[e], INFINITY);
                v[n++] = ends[e];
                v[n++] = below;
                v[n++] = above;
            }
            float t = thresholds[i];
            if (t > 0.0f && t < 1.0f) {
                float logit = logf(t / (1.0f - t));
                for (int k = -3; k <= 3; k++) {
                    float x = logit;
                    for (int s = 0; s < (k < 0 ? -k : k); s++)
                        x = nextafterf(x, k < 0 ? -INFINITY : INFINITY);
                    v[n++] = x;
                }
            }
        }
    cr_assert(n <= cap);
    return n;
}

/* Rows of `width` logits: every special value alone and in every column of a random row,
 * whole rows of one value (ties everywhere), near ties around a random maximum, and random
 * rows at several scales. */
static rows adversarial(int64_t width) {
    rows r = {NULL, 0, 0, width};
    float v[512];
    int nv = special_values(v, 512);
    for (int i = 0; i < nv; i++) {
        float *row = new_row(&r);
        for (int64_t j = 0; j < width; j++) row[j] = v[i];
        for (int64_t j = 0; j < width; j++) {
            row = new_row(&r);
            for (int64_t k = 0; k < width; k++) row[k] = normal(2.0);
            row[j] = v[i];
        }
    }
    for (int i = 0; i < 200 && width > 1; i++) {
        float *row = new_row(&r);
        float m = normal(i < 100 ? 1e-3 : 5.0);
        for (int64_t k = 0; k < width; k++) row[k] = m - (float)uniform();
        int64_t a = (int64_t)(uniform() * (double)width), b = (int64_t)(uniform() * (double)width);
        row[a] = m;
        row[b] = i % 3 == 0 ? m : nextafterf(m, -INFINITY); /* exact and 1-ulp ties */
        if (i % 5 == 0) row[(a + 1) % width] = m - EM_HEADS_TIE_MARGIN * (float)uniform();
    }
    for (int i = 0; i < 3000; i++) {
        float *row = new_row(&r);
        double scale = i < 1000 ? 1e-6 : i < 2000 ? 3.0 : 60.0;
        for (int64_t k = 0; k < width; k++) row[k] = normal(scale);
    }
    return r;
}

/* ---------------------------------------------------------------------------------------------
 * Fused == unfused
 * ------------------------------------------------------------------------------------------- */

static bool same_element(const ember_tensor *a, const ember_tensor *b, int64_t i) {
    ember_dtype dt = ember_tensor_dtype(a);
    const uint8_t *pa = ember_tensor_const_data(a), *pb = ember_tensor_const_data(b);
    size_t es = ember_dtype_size(dt);
    if (dt == EMBER_FLOAT) {
        float x, y;
        memcpy(&x, pa + i * 4, 4);
        memcpy(&y, pb + i * 4, 4);
        if (x != x || y != y) return x != x && y != y;
    }
    return memcmp(pa + (size_t)i * es, pb + (size_t)i * es, es) == 0;
}

static char *describe(const ember_session *s) {
    size_t len = ember_session_describe(s, NULL, 0);
    char *text = malloc(len + 1);
    cr_assert_not_null(text);
    ember_session_describe(s, text, len + 1);
    return text;
}

static int count_substring(const char *text, const char *needle) {
    int count = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle)) count++;
    return count;
}

/* Run `name` unoptimized and optimized on adversarial logits; every output must match
 * exactly. `fused` names the ai.ember op the optimized graph must contain (`count` times), or
 * is NULL when the pass must leave the graph without ai.ember heads. */
static void check_fusion(const char *name, int64_t width, const char *fused, int count) {
    ember_model *m = load(name);
    ember_session *plain = session(m, EMBER_OPT_NONE, 1);
    ember_session *opt = session(m, EMBER_OPT_ALL, 2);
    char *text = describe(opt);
    if (fused) {
        cr_expect_eq(count_substring(text, fused), count, "%s: expected %d x %s in:\n%s", name,
                     count, fused, text);
    } else {
        cr_expect_eq(count_substring(text, "ai.ember:SigmoidThreshold") +
                         count_substring(text, "ai.ember:SoftmaxArgMax") +
                         count_substring(text, "ai.ember:CumulativeOrdinal"),
                     0, "%s: must not be fused:\n%s", name, text);
    }
    free(text);
    rows r = adversarial(width);
    int64_t dims[2] = {r.n, width};
    ember_tensor *x = NULL;
    ember_error err;
    cr_assert_eq(ember_tensor_wrap(EMBER_FLOAT, dims, 2, r.data,
                                   sizeof(float) * (size_t)(r.n * width), &x, &err),
                 EMBER_OK, "%s", err.message);
    size_t n_out = ember_model_output_count(m);
    const char *names[8];
    cr_assert(n_out <= 8);
    for (size_t k = 0; k < n_out; k++) {
        ember_value_info info;
        ember_model_output(m, k, &info);
        names[k] = info.name;
    }
    const char *in_name = "logits";
    const ember_tensor *ins[1] = {x};
    ember_tensor *a[8] = {0}, *b[8] = {0};
    cr_assert_eq(ember_session_run(plain, &in_name, ins, 1, names, n_out, a, &err), EMBER_OK,
                 "%s unfused: %s", name, err.message);
    cr_assert_eq(ember_session_run(opt, &in_name, ins, 1, names, n_out, b, &err), EMBER_OK,
                 "%s fused: %s", name, err.message);
    for (size_t k = 0; k < n_out; k++) {
        cr_assert_eq(ember_tensor_dtype(a[k]), ember_tensor_dtype(b[k]), "%s: %s dtype", name,
                     names[k]);
        cr_assert_eq(ember_tensor_rank(a[k]), ember_tensor_rank(b[k]), "%s: %s rank", name,
                     names[k]);
        int64_t n = ember_tensor_element_count(a[k]);
        cr_assert_eq(n, ember_tensor_element_count(b[k]), "%s: %s size", name, names[k]);
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < n; i++)
            if (!same_element(a[k], b[k], i)) {
                if (first < 0) first = i;
                bad++;
            }
        if (bad) {
            int64_t per_row = n / r.n, row = first / (per_row ? per_row : 1);
            char logits[512] = "";
            for (int64_t j = 0, len = 0; j < width && len < 400; j++)
                len += snprintf(logits + len, sizeof logits - (size_t)len, "%s%a", j ? ", " : "",
                                (double)r.data[row * width + j]);
            cr_expect_eq(bad, 0,
                         "%s: output %s differs in %lld of %lld elements; first at row "
                         "%lld, logits [%s]",
                         name, names[k], (long long)bad, (long long)n, (long long)row, logits);
        }
        ember_tensor_free(a[k]);
        ember_tensor_free(b[k]);
    }
    ember_tensor_free(x);
    free(r.data);
    ember_session_free(plain);
    ember_session_free(opt);
    ember_model_free(m);
}

Test(heads_fusion, binary_round) {
    check_fusion("round", 1, "ai.ember:SigmoidThreshold", 1);
}
Test(heads_fusion, binary_round_exposed_probability) {
    check_fusion("round_exposed", 1, "ai.ember:SigmoidThreshold", 1);
}
Test(heads_fusion, greater) {
    check_fusion("greater", 1, "ai.ember:SigmoidThreshold", 1);
}
Test(heads_fusion, greater_cast) {
    check_fusion("greater_cast", 1, "ai.ember:SigmoidThreshold", 1);
}
Test(heads_fusion, per_label_thresholds) {
    check_fusion("labels", 3, "ai.ember:SigmoidThreshold", 1);
    check_fusion("labels_row", 3, "ai.ember:SigmoidThreshold", 1);
}
Test(heads_fusion, greater_equal_less_less_equal) {
    check_fusion("greater_equal", 2, "ai.ember:SigmoidThreshold", 1);
    check_fusion("less", 2, "ai.ember:SigmoidThreshold", 1);
    check_fusion("less_equal", 2, "ai.ember:SigmoidThreshold", 1);
}
Test(heads_fusion, two_decisions_share_the_sigmoid) {
    check_fusion("two_decisions", 2, "ai.ember:SigmoidThreshold", 2);
}
Test(heads_fusion, thresholds_zero_and_one) {
    check_fusion("threshold_edges", 2, "ai.ember:SigmoidThreshold", 4);
}
Test(heads_fusion, coral) {
    check_fusion("coral", 4, "ai.ember:CumulativeOrdinal", 1);
    check_fusion("coral_k2", 1, "ai.ember:CumulativeOrdinal", 1);
    check_fusion("coral_opset11", 4, "ai.ember:CumulativeOrdinal", 1);
}
Test(heads_fusion, corn) {
    check_fusion("corn", 4, "ai.ember:CumulativeOrdinal", 1);
    check_fusion("corn_slice", 3, "ai.ember:CumulativeOrdinal", 1);
    check_fusion("corn_k2", 1, "ai.ember:CumulativeOrdinal", 1);
}
Test(heads_fusion, softmax_argmax) {
    check_fusion("softmax_argmax", 10, "ai.ember:SoftmaxArgMax", 1);
    check_fusion("softmax_argmax_opset11", 10, "ai.ember:SoftmaxArgMax", 1);
    check_fusion("softmax_argmax_last", 10, "ai.ember:SoftmaxArgMax", 1);
    check_fusion("logsoftmax_argmax", 10, "ai.ember:SoftmaxArgMax", 1);
    check_fusion("softmax_argmax_k2", 2, "ai.ember:SoftmaxArgMax", 1);
}
Test(heads_fusion, argmax_beside_softmax) {
    check_fusion("argmax_beside_softmax", 10, "ai.ember:SoftmaxArgMax", 1);
}
Test(heads_fusion, look_alikes_stay) {
    check_fusion("keep_softmax_exposed", 10, NULL, 0);
    check_fusion("keep_softmax_axis0", 10, NULL, 0);
    check_fusion("keep_threshold_broadcast_grows", 3, NULL, 0);
    check_fusion("keep_corn_wrong_order", 2, NULL, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Probabilities that two different logits round to: ArgMax of the Softmax picks the first,
 * and so must the fused op.
 * ------------------------------------------------------------------------------------------- */

Test(heads_fusion, softmax_rounding_ties) {
    ember_model *m = load("softmax_argmax");
    ember_session *plain = session(m, EMBER_OPT_NONE, 1);
    ember_session *opt = session(m, EMBER_OPT_ALL, 1);
    /* Row i: the maximum at column 9, a logit one ulp below it at column i % 9; with 10
     * classes the two probabilities round to the same float32 for many of these. */
    enum { N = 4096, C = 10 };
    static float data[N * C];
    int64_t differ = 0;
    for (int i = 0; i < N; i++) {
        float m_ = (float)(i - N / 2) * 0.37f;
        for (int k = 0; k < C; k++) data[i * C + k] = m_ - 3.0f;
        data[i * C + 9] = m_;
        data[i * C + i % 9] = nextafterf(m_, -INFINITY);
    }
    int64_t dims[2] = {N, C};
    ember_tensor *x = NULL;
    ember_error err;
    ember_tensor_wrap(EMBER_FLOAT, dims, 2, data, sizeof data, &x, &err);
    const char *in = "logits", *out = "label";
    const ember_tensor *ins[1] = {x};
    ember_tensor *a = NULL, *b = NULL;
    cr_assert_eq(ember_session_run(plain, &in, ins, 1, &out, 1, &a, &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_eq(ember_session_run(opt, &in, ins, 1, &out, 1, &b, &err), EMBER_OK, "%s",
                 err.message);
    const int64_t *ia = ember_tensor_const_data(a), *ib = ember_tensor_const_data(b);
    int64_t first_not_max = 0;
    for (int i = 0; i < N; i++) {
        differ += ia[i] != ib[i];
        first_not_max += ia[i] != 9; /* ties in probability that the unfused graph resolves */
    }
    cr_expect_eq(differ, 0, "%lld rows differ", (long long)differ);
    cr_expect_gt(first_not_max, 0, "the test should contain probability ties");
    ember_tensor_free(a);
    ember_tensor_free(b);
    ember_tensor_free(x);
    ember_session_free(plain);
    ember_session_free(opt);
    ember_model_free(m);
}

/* ---------------------------------------------------------------------------------------------
 * Lints
 * ------------------------------------------------------------------------------------------- */

static void check_lint(const char *name, const char *node, const char *phrase) {
    ember_model *m = load(name);
    size_t n = ember_model_warning_count(m);
    if (!phrase) {
        cr_expect_eq(n, 0, "%s: unexpected warning: %s", name, n ? ember_model_warning(m, 0) : "");
    } else {
        cr_expect_eq(n, 1, "%s: expected one warning, got %zu", name, n);
        const char *w = n ? ember_model_warning(m, 0) : "";
        cr_expect(strstr(w, node) != NULL, "%s: the warning must name '%s': %s", name, node, w);
        cr_expect(strstr(w, phrase) != NULL, "%s: expected '%s' in: %s", name, phrase, w);
        cr_expect(strchr(w, '\n') == NULL, "%s: one line: %s", name, w);
    }
    ember_model_free(m);
}

Test(heads_lint, each_fires_once) {
    check_lint("lint_argmax_one", "argmax_one", "size 1: the result is always 0");
    check_lint("lint_softmax_one", "softmax_one", "the result is always 1");
    check_lint("lint_logsoftmax_one_opset11", "logsoftmax_one", "the result is always 0");
    check_lint("lint_sigmoid_softmax", "softmax_after_sigmoid", "squashed twice");
    check_lint("lint_softmax_half", "half_threshold", "at 0.5 over 10 classes");
    check_lint("lint_sigmoid_twice", "second_sigmoid", "Sigmoid applied to the output of Sigmoid");
}

Test(heads_lint, not_on_correct_heads) {
    check_lint("lint_none", NULL, NULL);
    check_lint("softmax_argmax", NULL, NULL);
    check_lint("corn", NULL, NULL);
    check_lint("labels", NULL, NULL);
}

/* ---------------------------------------------------------------------------------------------
 * --head parsing
 * ------------------------------------------------------------------------------------------- */

Test(heads_spec, parse) {
    em_head_spec s;
    ember_error err;
    cr_assert_eq(em_head_parse("binary", &s, &err), EMBER_OK);
    cr_expect(s.kind == EM_HEAD_BINARY && s.n_thresholds == 0);
    em_head_spec_clear(&s);
    cr_assert_eq(em_head_parse("binary:0.3", &s, &err), EMBER_OK);
    cr_expect(s.n_thresholds == 1 && s.thresholds[0] == 0.3f);
    em_head_spec_clear(&s);
    cr_assert_eq(em_head_parse("multilabel:0.45,0.4,0.55", &s, &err), EMBER_OK);
    cr_expect(s.kind == EM_HEAD_MULTILABEL && s.n_thresholds == 3 && s.thresholds[2] == 0.55f);
    em_head_spec_clear(&s);
    cr_assert_eq(em_head_parse("multiclass", &s, &err), EMBER_OK);
    cr_expect(s.kind == EM_HEAD_MULTICLASS);
    em_head_spec_clear(&s);
    cr_assert_eq(em_head_parse("ordinal:corn", &s, &err), EMBER_OK);
    cr_expect(s.kind == EM_HEAD_ORDINAL && s.corn);
    em_head_spec_clear(&s);
    cr_assert_eq(em_head_parse("ordinal:coral:0.6", &s, &err), EMBER_OK);
    cr_expect(!s.corn && s.n_thresholds == 1 && s.thresholds[0] == 0.6f);
    em_head_spec_clear(&s);
    const char *bad[] = {"binary:x",       "binary:0.2,0.3", "multilabel:0.5,", "multiclass:3",
                         "ordinal:probit", "ordinal:corn:2", "regression",      "",
                         "binary:1.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(em_head_parse(bad[i], &s, &err), EMBER_ERR_INVALID_ARGUMENT, "'%s'", bad[i]);
        cr_expect(strstr(err.message, "head") != NULL, "'%s': %s", bad[i], err.message);
        cr_expect_null(s.thresholds);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Heads attached on request (--head), which also checks the fused operators' own semantics
 * (ops/heads.h) against references computed here.
 * ------------------------------------------------------------------------------------------- */

typedef struct head_run {
    ember_tensor *out[3];
    size_t n_out;
} head_run;

/* Attach `head` to the raw logits of logits_identity, run on rows x width logits, return the
 * head's outputs (the logits output itself is not requested). */
static head_run run_head(const char *head, const float *logits, int64_t rows, int64_t width,
                         const char *const *names, size_t n_names) {
    bool probabilities = n_names > 1;
    ember_model *m = load("logits_identity");
    em_head_spec spec;
    ember_error err;
    cr_assert_eq(em_head_parse(head, &spec, &err), EMBER_OK, "%s", err.message);
    spec.probabilities = probabilities;
    /* Attached to the loaded graph before any session copies it (tests only: the API keeps
     * models immutable). */
    cr_assert_eq(em_head_attach(m->graph, 0, &spec, &err), EMBER_OK, "%s", err.message);
    em_head_spec_clear(&spec);
    ember_session *s = session(m, EMBER_OPT_ALL, 2);
    int64_t dims[2] = {rows, width};
    ember_tensor *x = NULL;
    cr_assert_eq(ember_tensor_wrap(EMBER_FLOAT, dims, 2, (void *)logits,
                                   sizeof(float) * (size_t)(rows * width), &x, &err),
                 EMBER_OK);
    const char *in = "logits";
    const ember_tensor *ins[1] = {x};
    head_run r = {{0}, n_names};
    cr_assert_eq(ember_session_run(s, &in, ins, 1, names, n_names, r.out, &err), EMBER_OK, "%s: %s",
                 head, err.message);
    ember_tensor_free(x);
    ember_session_free(s);
    ember_model_free(m);
    return r;
}

static void free_run(head_run *r) {
    for (size_t k = 0; k < r->n_out; k++) ember_tensor_free(r->out[k]);
}

static bool same_float(float a, float b) {
    return (a != a && b != b) || a == b;
}

Test(heads_attach, binary_and_multilabel) {
    rows r = adversarial(3);
    const char *bin_names[] = {"y_decision", "y_probability"};
    head_run b = run_head("binary", r.data, r.n * 3, 1, bin_names, 2); /* one logit a row */
    const float *d = ember_tensor_const_data(b.out[0]);
    cr_assert_eq(ember_tensor_dtype(b.out[0]), EMBER_FLOAT);
    int64_t bad = 0;
    for (int64_t i = 0; i < r.n * 3; i++) {
        float s = em_sigmoid_f32(r.data[i]);
        float want = s != s ? s : s > 0.5f ? 1.0f : 0.0f; /* torch.round(torch.sigmoid(x)) */
        bad += !same_float(d[i], want);
    }
    cr_expect_eq(bad, 0, "binary: %lld decisions differ", (long long)bad);
    const float *prob = ember_tensor_const_data(b.out[1]);
    bad = 0;
    for (int64_t i = 0; i < r.n * 3; i++) bad += !same_float(prob[i], em_sigmoid_f32(r.data[i]));
    cr_expect_eq(bad, 0, "binary: %lld probabilities differ from the shared sigmoid",
                 (long long)bad);
    free_run(&b);
    head_run ml = run_head("multilabel:0.3,0.5,0.999", r.data, r.n, 3, bin_names, 1);
    const uint8_t *l = ember_tensor_const_data(ml.out[0]);
    cr_assert_eq(ember_tensor_dtype(ml.out[0]), EMBER_BOOL);
    static const float t[3] = {0.3f, 0.5f, 0.999f};
    bad = 0;
    for (int64_t i = 0; i < r.n * 3; i++) bad += l[i] != (em_sigmoid_f32(r.data[i]) > t[i % 3]);
    cr_expect_eq(bad, 0, "multilabel: %lld decisions differ", (long long)bad);
    free_run(&ml);
    free(r.data);
}

Test(heads_attach, multiclass) {
    enum { W = 5 };
    static const float rows_[][W] = {
        {0.1f, 2.0f, -1.0f, 2.0f, 0.5f},                         /* tie: first index */
        {1e-9f, 0.0f, -0.0f, -1e-9f, 0.0f},                      /* tiny differences count */
        {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY}, /* undefined: NaN */
        {1.0f, INFINITY, 3.0f, INFINITY, 0.0f},                  /* as the Softmax kernel: NaN */
        {1.0f, NAN, 3.0f, 2.0f, 0.0f},        /* NaN is the largest (torch.argmax) */
        {88.0f, 89.0f, 90.0f, -1e30f, 1e30f}, /* huge logits, no overflow */
        {-3.0f, -2.0f, -1.0f, -4.0f, -5.0f},
    };
    enum { N = sizeof rows_ / sizeof rows_[0] };
    static const int64_t want_index[N] = {1, 0, 0, 1, 1, 4, 2};
    const char *names[] = {"y_class", "y_probabilities"};
    head_run h = run_head("multiclass", &rows_[0][0], N, W, names, 2);
    const int64_t *index = ember_tensor_const_data(h.out[0]);
    const float *p = ember_tensor_const_data(h.out[1]);
    cr_assert_eq(ember_tensor_dtype(h.out[0]), EMBER_INT64);
    cr_assert_eq(ember_tensor_rank(h.out[0]), 1);
    cr_assert_eq(ember_tensor_dims(h.out[1])[1], W);
    for (int i = 0; i < N; i++) {
        cr_expect_eq(index[i], want_index[i], "row %d: index %lld", i, (long long)index[i]);
        double m = -INFINITY, sum = 0;
        for (int k = 0; k < W; k++) m = rows_[i][k] > m ? rows_[i][k] : m;
        for (int k = 0; k < W; k++) sum += exp((double)rows_[i][k] - m);
        for (int k = 0; k < W; k++) {
            double want = exp((double)rows_[i][k] - m) / sum;
            /* undefined rows: NaN (+inf - +inf in the Softmax kernel, like torch.softmax) */
            if (i == 2 || i == 3 || i == 4) want = NAN;
            float got = p[i * W + k];
            cr_expect(same_float(got, (float)want) || fabs(got - want) <= 1e-6 * want,
                      "row %d class %d: probability %.9g, want %.9g", i, k, got, want);
        }
    }
    free_run(&h);
    const char *only[] = {"y_class"};
    head_run fast = run_head("multiclass", &rows_[0][0], N, W, only, 1);
    cr_expect_eq(memcmp(ember_tensor_const_data(fast.out[0]), want_index, sizeof want_index), 0);
    free_run(&fast);
}

/* Reference ranks and class probabilities, straight from the definitions. */
static void ordinal_reference(const float *x, int64_t levels, bool corn, float t, int64_t *rank,
                              float *classes) {
    float p[64], running = 1.0f;
    *rank = 0;
    for (int64_t k = 0; k < levels; k++) {
        float s = em_sigmoid_f32(x[k]);
        p[k] = corn ? (running = k == 0 ? s : running * s) : s;
        *rank += p[k] > t;
    }
    for (int64_t k = 0; k <= levels; k++)
        classes[k] = (k == 0 ? 1.0f : p[k - 1]) - (k == levels ? 0.0f : p[k]);
}

static void check_ordinal(const char *head, bool corn, float t, int64_t levels) {
    rows r = adversarial(levels);
    const char *names[] = {"y_rank", "y_class_probabilities"};
    head_run h = run_head(head, r.data, r.n, levels, names, 2);
    const int64_t *rank = ember_tensor_const_data(h.out[0]);
    const float *cls = ember_tensor_const_data(h.out[1]);
    cr_assert_eq(ember_tensor_dims(h.out[1])[1], levels + 1);
    int64_t bad_rank = 0, bad_prob = 0;
    for (int64_t i = 0; i < r.n; i++) {
        int64_t want;
        float want_cls[65];
        ordinal_reference(r.data + i * levels, levels, corn, t, &want, want_cls);
        bad_rank += rank[i] != want;
        for (int64_t k = 0; k <= levels; k++)
            bad_prob += !same_float(cls[i * (levels + 1) + k], want_cls[k]);
    }
    cr_expect_eq(bad_rank, 0, "%s: %lld ranks differ", head, (long long)bad_rank);
    cr_expect_eq(bad_prob, 0, "%s: %lld class probabilities differ", head, (long long)bad_prob);
    free_run(&h);
    free(r.data);
}

Test(heads_attach, ordinal) {
    check_ordinal("ordinal", false, 0.5f, 4);
    check_ordinal("ordinal:corn", true, 0.5f, 4);
    check_ordinal("ordinal:coral:0.3", false, 0.3f, 1); /* K = 2 */
    check_ordinal("ordinal:corn:0.7", true, 0.7f, 6);
}

/* The example: sigmoids [0.9, 0.6, 0.6] give CORN rank 2 (0.9, 0.54, 0.324), a plain
 * count 3. */
Test(heads_attach, corn_is_not_a_count) {
    float x[3] = {logf(0.9f / 0.1f), logf(0.6f / 0.4f), logf(0.6f / 0.4f)};
    const char *names[] = {"y_rank", "y_class_probabilities"};
    head_run corn = run_head("ordinal:corn", x, 1, 3, names, 2);
    head_run coral = run_head("ordinal:coral", x, 1, 3, names, 2);
    cr_expect_eq(*(const int64_t *)ember_tensor_const_data(corn.out[0]), 2);
    cr_expect_eq(*(const int64_t *)ember_tensor_const_data(coral.out[0]), 3);
    const float *p = ember_tensor_const_data(corn.out[1]);
    float sum = p[0] + p[1] + p[2] + p[3];
    cr_expect(fabsf(p[0] - 0.1f) < 1e-6f && fabsf(p[2] - 0.216f) < 1e-6f && fabsf(sum - 1) < 1e-6f,
              "class probabilities %g %g %g %g", p[0], p[1], p[2], p[3]);
    free_run(&corn);
    free_run(&coral);
}

Test(heads_attach, refuses_what_does_not_fit) {
    ember_model *m = load("labels"); /* output: bool decisions */
    em_head_spec spec;
    ember_error err;
    cr_assert_eq(em_head_parse("binary", &spec, &err), EMBER_OK);
    cr_expect_eq(em_head_attach(m->graph, 0, &spec, &err), EMBER_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "float32 logits") != NULL, "%s", err.message);
    cr_expect_eq(em_head_attach(m->graph, 5, &spec, &err), EMBER_ERR_INVALID_ARGUMENT);
    em_head_spec_clear(&spec);
    ember_model_free(m);
}
