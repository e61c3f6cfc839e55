/* Exhaustive check of the fused SigmoidThreshold over all 2^32 float32 bit patterns: its
 * decision (made in logit space, with the sigmoid evaluated only inside a narrow bracket) must
 * equal round(sigmoid(x)) / sigmoid(x) > t / sigmoid(x) >= t computed with the shared sigmoid
 * for every input, NaN and infinities included. Also checks the properties of the shared
 * sigmoid the brackets rely on for every other threshold: within EM_SIGMOID_MAX_ULP of the
 * exact sigmoid, in [0, 1], NaN for NaN. Runs the real kernel through its em_op interface, on
 * all cores; takes seconds. Instrumented builds (scripts/sanitize.sh) set
 * EMBER_EXHAUSTIVE_STRIDE=S: then every S-th block of 2^20 consecutive floats is checked, plus
 * the blocks holding each threshold's bracket, the zeros, the infinities and the first NaNs. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../ops/heads.h"
#include "../../ops/sigmoid.h"

enum { CHUNK = 1 << 20 };

typedef struct config {
    const char *mode;
    float threshold;
    const em_op *op;
    em_node node;
    em_attr attrs[3];
    void *state;
} config;

static const struct {
    const char *mode;
    float threshold;
} k_configs[] = {
    {"round", 0.5f},    {"greater", 0.5f}, {"greater_equal", 0.5f}, {"greater", 0.3f},
    {"greater", 1e-6f}, {"greater", 0.0f}, {"greater_equal", 1.0f}, {"greater", 0.99999994f},
};
enum { N_CONFIGS = sizeof k_configs / sizeof k_configs[0] };

static void config_init(config *c, const char *mode, float threshold) {
    memset(c, 0, sizeof *c);
    c->mode = mode;
    c->threshold = threshold;
    c->op = em_heads_op("SigmoidThreshold");
    cr_assert_not_null(c->op);
    bool round = strcmp(mode, "round") == 0;
    c->attrs[0] =
        (em_attr){.name = "mode", .type = EM_ATTR_STRING, .s = (char *)mode, .s_len = strlen(mode)};
    c->attrs[1] = (em_attr){.name = "threshold", .type = EM_ATTR_FLOAT, .f = threshold};
    c->attrs[2] =
        (em_attr){.name = "to", .type = EM_ATTR_INT, .i = round ? EMBER_FLOAT : EMBER_BOOL};
    static int ids[2] = {0, 1};
    c->node = (em_node){.name = "exhaustive",
                        .op_type = "SigmoidThreshold",
                        .domain = EM_HEADS_DOMAIN,
                        .opset = 1,
                        .n_inputs = 1,
                        .n_explicit_inputs = 1,
                        .inputs = &ids[0],
                        .n_outputs = 1,
                        .outputs = &ids[1],
                        .n_attrs = 3,
                        .attrs = c->attrs,
                        .op = c->op};
    ember_error err;
    cr_assert_eq(c->op->create(NULL, &c->node, &c->state, &err), EMBER_OK, "%s", err.message);
}

typedef struct worker {
    const config *configs;
    int64_t stride;      /* check every stride-th block (1: all) ... */
    const int64_t *must; /* ... and the blocks holding these positions */
    int n_must;
    int64_t first, last; /* bit patterns [first, last) of the 2^32, in float order */
    int64_t mismatches[N_CONFIGS];
    int64_t example[N_CONFIGS];
    int64_t beyond_bound, out_of_range;
    float worst_x; /* largest error, in units of the bound */
    double worst;
    char message[256];
} worker;

/* Float number `o` positions from -inf in the order of the non-NaN floats, or a NaN pattern
 * for the 2 * (2^23 - 1) positions past +inf. */
static float nth_float(int64_t o) {
    const int64_t finite_and_inf = 2 * (int64_t)0x7f800001; /* -inf .. -0, +0 .. +inf */
    uint32_t bits;
    if (o < 0x7f800001)
        bits = 0x80000000u | (uint32_t)(0x7f800000 - o); /* -inf .. -0 */
    else if (o < finite_and_inf)
        bits = (uint32_t)(o - 0x7f800001); /* +0 .. +inf */
    else {
        int64_t k = o - finite_and_inf; /* NaNs: 0x7f800001.., then 0xff800001.. */
        bits = k < 0x7fffff ? 0x7f800001u + (uint32_t)k : 0xff800001u + (uint32_t)(k - 0x7fffff);
    }
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* x[i] = nth_float(first + i), a region at a time. */
static void fill_floats(float *x, int64_t first, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int64_t o = first + i;
        if (o >= 0x7f800001 || first + n > 0x7f800001) {
            x[i] = nth_float(o);
            continue;
        }
        uint32_t bits = 0x80000000u | (uint32_t)(0x7f800000 - o);
        memcpy(&x[i], &bits, sizeof bits);
    }
}

/* d is what round-half-to-even of s gives (NaN for NaN). Adding and subtracting 2^23 rounds
 * a float in [0, 2^23) to an integer in the current (nearest-even) rounding mode; IEEE
 * arithmetic (no -ffast-math) keeps the compiler from folding it away. */
static inline bool same_rounding(float d, float s) {
    float want = (s + 0x1p23f) - 0x1p23f;
    return want != want ? d != d : d == want;
}

/* Mismatch counts, written so that they vectorize (the test checks 12 x 2^32 decisions). */
static int64_t count_bad_round(const float *restrict d, const float *restrict s, int64_t n) {
    int32_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !same_rounding(d[i], s[i]);
    return bad;
}

static int64_t count_bad_greater(const uint8_t *restrict d, const float *restrict s, float t,
                                 int64_t n) {
    int32_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += (d[i] != 0) != (s[i] > t);
    return bad;
}

static int64_t count_bad_greater_equal(const uint8_t *restrict d, const float *restrict s, float t,
                                       int64_t n) {
    int32_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += (d[i] != 0) != (s[i] >= t);
    return bad;
}

/* Position of x in nth_float's order (x not NaN). */
static int64_t float_position(float x) {
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits & 0x80000000u ? (int64_t)0x7f800000 - (bits & 0x7fffffffu)
                              : (int64_t)0x7f800001 + bits;
}

static bool block_selected(const worker *w, int64_t start) {
    if (w->stride <= 1 || (start / CHUNK) % w->stride == 0) return true;
    for (int i = 0; i < w->n_must; i++)
        if (w->must[i] / CHUNK == start / CHUNK) return true;
    return false;
}

static void *work(void *arg) {
    worker *w = arg;
    float *x = malloc(sizeof(float) * CHUNK);
    float *s = malloc(sizeof(float) * CHUNK);
    void *out = malloc(sizeof(float) * CHUNK);
    if (!x || !s || !out) {
        snprintf(w->message, sizeof w->message, "out of memory");
        free(x), free(s), free(out);
        return NULL;
    }
    for (int c = 0; c < N_CONFIGS; c++) w->example[c] = -1;
    for (int64_t start = w->first; start < w->last; start += CHUNK) {
        int64_t n = w->last - start < CHUNK ? w->last - start : CHUNK;
        if (!block_selected(w, start)) continue;
        fill_floats(x, start, n);
        for (int64_t i = 0; i < n; i++) s[i] = em_sigmoid_f32(x[i]);
        for (int64_t i = 0; i < n; i++) {
            if (x[i] != x[i]) {
                w->out_of_range += s[i] == s[i]; /* sigmoid(NaN) must be NaN */
                continue;
            }
            w->out_of_range += !(s[i] >= 0.0f && s[i] <= 1.0f);
            double exact = 1.0 / (1.0 + exp(-(double)x[i]));
            double bound = EM_SIGMOID_MAX_ULP * 0x1p-23 * exact + 0x1p-126;
            double ratio = fabs((double)s[i] - exact) / bound;
            if (ratio > 1.0) w->beyond_bound++;
            if (ratio > w->worst) {
                w->worst = ratio;
                w->worst_x = x[i];
            }
        }
        em_tensor in = {.dtype = EMBER_FLOAT,
                        .rank = 1,
                        .dims = {n},
                        .data = x,
                        .capacity = sizeof(float) * (size_t)n};
        em_tensor *inputs[1] = {&in};
        for (int c = 0; c < N_CONFIGS; c++) {
            const config *cf = &w->configs[c];
            em_tensor o = {.rank = -1};
            ember_error err;
            if (cf->op->infer(&cf->node, cf->state, inputs, &o, &err) != EMBER_OK || o.rank != 1 ||
                o.dims[0] != n) {
                snprintf(w->message, sizeof w->message, "infer failed: %s", err.message);
                break;
            }
            o.data = out;
            o.capacity = sizeof(float) * CHUNK;
            if (cf->op->run(&cf->node, cf->state, inputs, &o, NULL, &err) != EMBER_OK) {
                snprintf(w->message, sizeof w->message, "run failed: %s", err.message);
                break;
            }
            bool round = strcmp(cf->mode, "round") == 0;
            bool inclusive = strcmp(cf->mode, "greater_equal") == 0;
            const float t = cf->threshold;
            int64_t bad = round       ? count_bad_round(out, s, n)
                          : inclusive ? count_bad_greater_equal(out, s, t, n)
                                      : count_bad_greater(out, s, t, n);
            if (bad && w->mismatches[c] == 0) {
                for (int64_t i = 0; i < n && w->example[c] < 0; i++) {
                    bool ok =
                        round ? same_rounding(((float *)out)[i], s[i])
                              : (((uint8_t *)out)[i] != 0) == (inclusive ? s[i] >= t : s[i] > t);
                    if (!ok) w->example[c] = start + i;
                }
            }
            w->mismatches[c] += bad;
        }
        if (w->message[0]) break;
    }
    free(x), free(s), free(out);
    return NULL;
}

Test(heads_exhaustive, sigmoid_threshold_all_float32, .timeout = 1200) {
    static config configs[N_CONFIGS];
    for (int c = 0; c < N_CONFIGS; c++)
        config_init(&configs[c], k_configs[c].mode, k_configs[c].threshold);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores < 1 ? 1 : cores > 16 ? 16 : (int)cores;
    const int64_t total = (int64_t)1 << 32;
    const char *stride_env = getenv("EMBER_EXHAUSTIVE_STRIDE");
    int64_t stride = stride_env ? strtoll(stride_env, NULL, 10) : 1;
    /* Where decisions turn: each threshold's bracket, +-0, +-inf, the first NaNs. */
    int64_t must[2 * N_CONFIGS + 5];
    int n_must = 0;
    for (int c = 0; c < N_CONFIGS; c++) {
        em_sigmoid_cut cut = em_sigmoid_cut_f32(k_configs[c].threshold,
                                                strcmp(k_configs[c].mode, "greater_equal") == 0);
        if (cut.lo == cut.lo) must[n_must++] = float_position(cut.lo);
        if (cut.hi == cut.hi) must[n_must++] = float_position(cut.hi);
    }
    must[n_must++] = float_position(-0.0f);
    must[n_must++] = float_position(0.0f);
    must[n_must++] = float_position(-INFINITY);
    must[n_must++] = float_position(INFINITY);
    must[n_must++] = 2 * (int64_t)0x7f800001; /* first NaN */
    if (stride > 1)
        cr_log_info("checking every %lld-th block and %d chosen ones", (long long)stride, n_must);
    worker workers[16];
    pthread_t ids[16];
    for (int t = 0; t < threads; t++) {
        memset(&workers[t], 0, sizeof workers[t]);
        workers[t].configs = configs;
        workers[t].stride = stride;
        workers[t].must = must;
        workers[t].n_must = n_must;
        workers[t].first = total / threads * t;
        workers[t].last = t == threads - 1 ? total : total / threads * (t + 1);
        cr_assert_eq(pthread_create(&ids[t], NULL, work, &workers[t]), 0);
    }
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    int64_t beyond_bound = 0, out_of_range = 0;
    double worst = 0;
    float worst_x = 0;
    for (int t = 0; t < threads; t++) {
        cr_expect_eq(workers[t].message[0], '\0', "%s", workers[t].message);
        beyond_bound += workers[t].beyond_bound;
        out_of_range += workers[t].out_of_range;
        if (workers[t].worst > worst) {
            worst = workers[t].worst;
            worst_x = workers[t].worst_x;
        }
    }
    cr_expect_eq(beyond_bound, 0,
                 "the shared sigmoid is beyond its error bound at %lld inputs (worst %.2f x the "
                 "bound at x = %a)",
                 (long long)beyond_bound, worst, (double)worst_x);
    cr_expect_eq(out_of_range, 0, "the sigmoid leaves [0, 1] (or maps NaN to a number) %lld times",
                 (long long)out_of_range);
    cr_log_info("shared sigmoid: largest error %.3f x the bound (%d ulp) at x = %a", worst,
                EM_SIGMOID_MAX_ULP, (double)worst_x);
    for (int c = 0; c < N_CONFIGS; c++) {
        int64_t bad = 0, example = -1;
        for (int t = 0; t < threads; t++) {
            if (workers[t].mismatches[c] && example < 0) example = workers[t].example[c];
            bad += workers[t].mismatches[c];
        }
        float xe = example >= 0 ? nth_float(example) : 0.0f;
        cr_expect_eq(bad, 0, "mode %s, t = %a: %lld of 2^32 inputs differ, e.g. x = %a",
                     configs[c].mode, (double)configs[c].threshold, (long long)bad, (double)xe);
    }
    for (int c = 0; c < N_CONFIGS; c++) configs[c].op->destroy(configs[c].state);
}

/* The brackets, at the places the issue names: sigmoid(1e-9) is exactly 0.5 in float32, so
 * round(sigmoid(x)) is 0 there while x > 0 would say 1. */
Test(heads_exhaustive, brackets) {
    em_sigmoid_cut c = em_sigmoid_cut_f32(0.5f, false);
    cr_assert(c.lo < 0.0f && c.hi > 0.0f && c.hi < 1e-5f, "bracket [%a, %a]", (double)c.lo,
              (double)c.hi);
    cr_assert_eq(em_sigmoid_f32(1e-9f), 0.5f);
    cr_assert(!em_sigmoid_cut_test(&c, 1e-9f), "round(sigmoid(1e-9)) is 0");
    cr_assert(!em_sigmoid_cut_test(&c, 0.0f) && !em_sigmoid_cut_test(&c, -0.0f));
    cr_assert(em_sigmoid_cut_test(&c, 1e-3f) && !em_sigmoid_cut_test(&c, -1e-3f));
    cr_assert(!em_sigmoid_cut_test(&c, NAN) && em_sigmoid_cut_test(&c, INFINITY) &&
              !em_sigmoid_cut_test(&c, -INFINITY));
    /* The bracket is narrow: 0.3 is at logit -0.847298; a few ulp of sigmoid around it. */
    em_sigmoid_cut d = em_sigmoid_cut_f32(0.3f, false);
    cr_assert(d.lo < -0.8472f && d.hi > -0.8474f && d.hi - d.lo < 1e-5f, "bracket [%a, %a]",
              (double)d.lo, (double)d.hi);
    /* Thresholds outside (0, 1) decide everything without a sigmoid. */
    em_sigmoid_cut one = em_sigmoid_cut_f32(1.0f, false);
    cr_assert(one.lo == INFINITY && !em_sigmoid_cut_test(&one, INFINITY));
    em_sigmoid_cut nan = em_sigmoid_cut_f32(NAN, false);
    cr_assert(!em_sigmoid_cut_test(&nan, 3.0f) && !em_sigmoid_cut_test(&nan, INFINITY));
    em_sigmoid_cut below = em_sigmoid_cut_f32(-0.5f, false);
    cr_assert(below.hi == -INFINITY && em_sigmoid_cut_test(&below, -INFINITY) &&
              !em_sigmoid_cut_test(&below, NAN));
    em_sigmoid_cut zero = em_sigmoid_cut_f32(0.0f, true);
    cr_assert(zero.hi == -INFINITY && em_sigmoid_cut_test(&zero, -INFINITY));
    em_sigmoid_cut all = em_sigmoid_cut_f32(1.0f, true);
    cr_assert(em_sigmoid_cut_test(&all, INFINITY) == (em_sigmoid_f32(INFINITY) >= 1.0f));
}
