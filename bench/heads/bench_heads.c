/* Fused heads vs the unfused operators: each model of bench/heads/make_models.py run on the
 * same logits (N rows x 10, uniform in [-6, 6)) in a session without
 * optimization (the exported Sigmoid / Softmax / ... nodes) and in one with the heads fusion
 * (EMBER_OPT_BASIC). Runs alternate; prints the median time per run of each and checks that
 * both give identical outputs, with the mean process CPU time per run (a steadier figure on a
 * loaded machine). Uses only the public API. BENCH_ONLY=NAME runs one model.
 *
 * usage: bench_heads MODELS_DIR [--rows N] [--runs R] [--threads T] */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember.h"

static const char *const k_models[] = {"multiclass_softmax_argmax", "binary_sigmoid_round",
                                       "multilabel_sigmoid_greater", "ordinal_coral",
                                       "ordinal_corn"};

static double clock_ms(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Logits uniform in [-6, 6): a spread of signs and magnitudes, reproducible. */
static void fill_logits(float *x, int64_t n) {
    uint64_t s = 0x2545F4914F6CDD1Dull;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)(((double)(s >> 11) / 9007199254740992.0 - 0.5) * 12.0);
    }
}

static ember_session *make_session(const ember_model *m, ember_opt_level level, int threads) {
    ember_session_options o;
    ember_session_options_init(&o);
    o.opt_level = level;
    o.threads = threads;
    ember_session *s = NULL;
    ember_error err;
    if (ember_session_create(m, &o, &s, &err) != EMBER_OK) {
        fprintf(stderr, "session: %s\n", err.message);
        exit(1);
    }
    return s;
}

/* One run; returns its wall time and adds the process CPU time (all threads) to *cpu. */
static double run(ember_session *s, const char *in_name, const ember_tensor *x,
                  const char *out_name, ember_tensor **out, double *cpu) {
    ember_error err;
    const ember_tensor *ins[1] = {x};
    double c0 = clock_ms(CLOCK_PROCESS_CPUTIME_ID), t0 = clock_ms(CLOCK_MONOTONIC);
    if (ember_session_run(s, &in_name, ins, 1, &out_name, 1, out, &err) != EMBER_OK) {
        fprintf(stderr, "run: %s\n", err.message);
        exit(1);
    }
    double wall = clock_ms(CLOCK_MONOTONIC) - t0;
    *cpu += clock_ms(CLOCK_PROCESS_CPUTIME_ID) - c0;
    return wall;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_heads MODELS_DIR [--rows N] [--runs R] [--threads T]\n");
        return 2;
    }
    int64_t rows = 1000000;
    int runs = 11, threads = 1;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rows") == 0)
            rows = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
    }
    if (rows < 1 || runs < 1 || runs > 1000 || threads < 1) return 2;
    const int64_t C = 10;
    float *data = malloc(sizeof(float) * (size_t)(rows * C));
    if (!data) return 1;
    fill_logits(data, rows * C);
    int64_t dims[2] = {rows, C};
    ember_tensor *x = NULL;
    ember_error err;
    if (ember_tensor_wrap(EMBER_FLOAT, dims, 2, data, sizeof(float) * (size_t)(rows * C), &x,
                          &err) != EMBER_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    printf("| head (%lld rows x 10, %d thread%s) | unfused ms | fused ms | speedup | fused Mrows/s "
           "| CPU ms unfused / fused | same output |\n|---|---|---|---|---|---|---|\n",
           (long long)rows, threads, threads == 1 ? "" : "s");
    const char *only = getenv("BENCH_ONLY");
    for (size_t k = 0; k < sizeof k_models / sizeof k_models[0]; k++) {
        if (only && strcmp(only, k_models[k]) != 0) continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.onnx", argv[1], k_models[k]);
        ember_model *m = NULL;
        if (ember_model_load_file(path, NULL, &m, &err) != EMBER_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        ember_value_info out;
        ember_model_output(m, 0, &out);
        ember_session *plain = make_session(m, EMBER_OPT_NONE, threads);
        ember_session *fused = make_session(m, EMBER_OPT_BASIC, threads);
        double *tp = malloc(sizeof(double) * (size_t)runs),
               *tf = malloc(sizeof(double) * (size_t)runs);
        ember_tensor *a = NULL, *b = NULL;
        double cpu_plain = 0, cpu_fused = 0;
        run(plain, "logits", x, out.name, &a, &cpu_plain); /* warm up (arenas, pages) */
        run(fused, "logits", x, out.name, &b, &cpu_fused);
        cpu_plain = cpu_fused = 0;
        bool same = ember_tensor_byte_size(a) == ember_tensor_byte_size(b) &&
                    memcmp(ember_tensor_const_data(a), ember_tensor_const_data(b),
                           ember_tensor_byte_size(a)) == 0;
        ember_tensor_free(a);
        ember_tensor_free(b);
        for (int r = 0; r < runs; r++) {
            tp[r] = run(plain, "logits", x, out.name, &a, &cpu_plain);
            tf[r] = run(fused, "logits", x, out.name, &b, &cpu_fused);
            ember_tensor_free(a);
            ember_tensor_free(b);
        }
        qsort(tp, (size_t)runs, sizeof(double), cmp_double);
        qsort(tf, (size_t)runs, sizeof(double), cmp_double);
        double mp = tp[runs / 2], mf = tf[runs / 2];
        printf("| %s | %.1f | %.1f | %.1fx | %.0f | %.1f / %.1f | %s |\n", k_models[k], mp, mf,
               mp / mf, (double)rows / mf / 1e3, cpu_plain / runs, cpu_fused / runs,
               same ? "yes" : "NO");
        free(tp);
        free(tf);
        ember_session_free(plain);
        ember_session_free(fused);
        ember_model_free(m);
    }
    ember_tensor_free(x);
    free(data);
    return 0;
}
