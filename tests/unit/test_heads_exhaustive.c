/* Exhaustive check of the fused SigmoidThreshold over all 2^32 float32 bit patterns: its
 * decision (which never evaluates a sigmoid) must equal round(sigmoid(x)) / sigmoid(x) > t /
 * sigmoid(x) >= t computed with the shared sigmoid for every input, NaN and infinities
 * included. Also checks the properties of the sigmoid the cut relies on (non-decreasing, in
 * [0, 1]). Runs the real kernel through its em_op interface, on all cores; takes seconds. */
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
    {"round", 0.5f},   {"greater", 0.5f},       {"greater_equal", 0.5f}, {"greater", 0.3f},
    {"greater", 1e-6f}, {"greater", 0.0f},      {"greater_equal", 1.0f}, {"greater", 0.99999994f},
};
enum { N_CONFIGS = sizeof k_configs / sizeof k_configs[0] };

static void config_init(config *c, const char *mode, float threshold) {
    memset(c, 0, sizeof *c);
    c->mode = mode;
    c->threshold = threshold;
    c->op = em_heads_op("SigmoidThreshold");
    cr_assert_not_null(c->op);
    bool round = strcmp(mode, "round") == 0;
    c->attrs[0] = (em_attr){.name = "mode", .type = EM_ATTR_STRING, .s = (char *)mode,
                            .s_len = strlen(mode)};
    c->attrs[1] = (em_attr){.name = "threshold", .type = EM_ATTR_FLOAT, .f = threshold};
    c->attrs[2] = (em_attr){.name = "to", .type = EM_ATTR_INT,
                            .i = round ? EMBER_FLOAT : EMBER_BOOL};
    static int ids[2] = {0, 1};
    c->node = (em_node){.name = "exhaustive", .op_type = "SigmoidThreshold",
                        .domain = EM_HEADS_DOMAIN, .opset = 1, .n_inputs = 1,
                        .n_explicit_inputs = 1, .inputs = &ids[0], .n_outputs = 1,
                        .outputs = &ids[1], .n_attrs = 3, .attrs = c->attrs, .op = c->op};
    ember_error err;
    cr_assert_eq(c->op->create(NULL, &c->node, &c->state, &err), EMBER_OK, "%s", err.message);
}

typedef struct worker {
    const config *configs;
    int64_t first, last; /* bit patterns [first, last) of the 2^32, in float order */
    int64_t mismatches[N_CONFIGS];
    int64_t example[N_CONFIGS];
    int64_t not_monotone, out_of_range;
    char message[256];
} worker;

/* Float number `o` positions from -inf in the order of the non-NaN floats, or a NaN pattern
 * for the 2 * (2^23 - 1) positions past +inf. */
static float nth_float(int64_t o) {
    const int64_t finite_and_inf = 2 * (int64_t)0x7f800001; /* -inf .. -0, +0 .. +inf */
    uint32_t bits;
    if (o < 0x7f800001) bits = 0x80000000u | (uint32_t)(0x7f800000 - o); /* -inf .. -0 */
    else if (o < finite_and_inf) bits = (uint32_t)(o - 0x7f800001);      /* +0 .. +inf */
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

static int64_t count_bad_greater_equal(const uint8_t *restrict d, const float *restrict s,
                                       float t, int64_t n) {
    int32_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += (d[i] != 0) != (s[i] >= t);
    return bad;
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
    float prev = w->first > 0 ? em_sigmoid_f32(nth_float(w->first - 1)) : 0.0f;
    for (int64_t start = w->first; start < w->last; start += CHUNK) {
        int64_t n = w->last - start < CHUNK ? w->last - start : CHUNK;
        fill_floats(x, start, n);
        for (int64_t i = 0; i < n; i++) {
            s[i] = em_sigmoid_f32(x[i]);
            if (x[i] == x[i]) {
                if (s[i] < prev) w->not_monotone++;
                if (!(s[i] >= 0.0f && s[i] <= 1.0f)) w->out_of_range++;
                prev = s[i];
            } else if (s[i] == s[i]) {
                w->out_of_range++; /* sigmoid(NaN) must be NaN */
            }
        }
        em_tensor in = {.dtype = EMBER_FLOAT, .rank = 1, .dims = {n}, .data = x,
                        .capacity = sizeof(float) * (size_t)n};
        em_tensor *inputs[1] = {&in};
        for (int c = 0; c < N_CONFIGS; c++) {
            const config *cf = &w->configs[c];
            em_tensor o = {.rank = -1};
            ember_error err;
            if (cf->op->infer(&cf->node, cf->state, inputs, &o, &err) != EMBER_OK ||
                o.rank != 1 || o.dims[0] != n) {
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
                    bool ok = round ? same_rounding(((float *)out)[i], s[i])
                                    : (((uint8_t *)out)[i] != 0) ==
                                          (inclusive ? s[i] >= t : s[i] > t);
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

Test(heads_exhaustive, sigmoid_threshold_all_float32, .timeout = 600) {
    static config configs[N_CONFIGS];
    for (int c = 0; c < N_CONFIGS; c++)
        config_init(&configs[c], k_configs[c].mode, k_configs[c].threshold);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores < 1 ? 1 : cores > 16 ? 16 : (int)cores;
    const int64_t total = (int64_t)1 << 32;
    worker workers[16];
    pthread_t ids[16];
    for (int t = 0; t < threads; t++) {
        memset(&workers[t], 0, sizeof workers[t]);
        workers[t].configs = configs;
        workers[t].first = total / threads * t;
        workers[t].last = t == threads - 1 ? total : total / threads * (t + 1);
        cr_assert_eq(pthread_create(&ids[t], NULL, work, &workers[t]), 0);
    }
    for (int t = 0; t < threads; t++) pthread_join(ids[t], NULL);
    int64_t not_monotone = 0, out_of_range = 0;
    for (int t = 0; t < threads; t++) {
        cr_expect_eq(workers[t].message[0], '\0', "%s", workers[t].message);
        not_monotone += workers[t].not_monotone;
        out_of_range += workers[t].out_of_range;
    }
    cr_expect_eq(not_monotone, 0, "the sigmoid decreases at %lld places", (long long)not_monotone);
    cr_expect_eq(out_of_range, 0, "the sigmoid leaves [0, 1] (or maps NaN to a number) %lld times",
                 (long long)out_of_range);
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

/* The cut itself, at the places the issue names: sigmoid(1e-9) is exactly 0.5 in float32, so
 * round(sigmoid(x)) is 0 there while x > 0 would say 1. */
Test(heads_exhaustive, cut_is_not_zero_at_half) {
    float cut = em_sigmoid_cut_f32(0.5f, false);
    cr_assert(cut > 0.0f, "cut %a", (double)cut);
    cr_assert_eq(em_sigmoid_f32(1e-9f), 0.5f);
    cr_assert(1e-9f < cut);
    cr_assert(em_sigmoid_f32(cut) > 0.5f);
    cr_assert(!(em_sigmoid_f32(nextafterf(cut, -INFINITY)) > 0.5f));
    cr_assert(isnan(em_sigmoid_cut_f32(1.0f, false)), "nothing is above 1");
    cr_assert(isnan(em_sigmoid_cut_f32(NAN, false)), "nothing compares with NaN");
    cr_assert_eq(em_sigmoid_cut_f32(-0.5f, false), -INFINITY, "everything but NaN is above -0.5");
    float one = em_sigmoid_cut_f32(1.0f, true);
    cr_assert(isfinite(one) && em_sigmoid_f32(one) == 1.0f, "sigmoid reaches 1 at %a",
              (double)one);
}
