/* ember bench MODEL: latency and memory, the fields users know from onnxruntime_perf_test. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Peak resident memory of this process. Linux's ru_maxrss keeps the parent's peak across
 * fork + exec (a benchmark driver's own memory would show up here), so VmHWM first. */
static long peak_rss_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long kb = -1;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
        fclose(f);
        if (kb >= 0) return kb;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: ember bench MODEL [options]\n\n"
            "Runs MODEL on random inputs and reports session creation time, first-run time,\n"
            "latency percentiles, runs per second and peak RSS.\n"
            "  --batch B        size of every symbolic dimension (default 1)\n"
            "  --dim NAME=V     size of the symbolic dimension NAME (overrides --batch)\n"
            "  --threads T      threads per run (default: all cores)\n"
            "  --iters N        timed runs (default 100)\n"
            "  --warmup N       untimed runs first (default 10)\n"
            "  --concurrent N   N runs at once on one session (default 1)\n"
            "  --opt LEVEL      none | basic | all (default all)\n"
            "  --no-batch-tiling  run every layer on the whole batch at once\n"
            "  --json           print one JSON object\n");
}

typedef struct bench_ctx {
    ember_session *s;
    const char **in_names, **out_names;
    ember_tensor **inputs;
    size_t n_in, n_out;
    int iters;
    double *lat;
    int failed;
    char error[EMBER_ERROR_MESSAGE_SIZE];
} bench_ctx;

static int run_once(bench_ctx *c) {
    ember_tensor *outs[64];
    ember_error err;
    if (ember_session_run(c->s, c->in_names, (const ember_tensor *const *)c->inputs, c->n_in,
                          c->out_names, c->n_out, outs, &err) != EMBER_OK) {
        snprintf(c->error, sizeof c->error, "%s", err.message);
        return -1;
    }
    for (size_t k = 0; k < c->n_out; k++) ember_tensor_free(outs[k]);
    return 0;
}

static void *bench_thread(void *p) {
    bench_ctx *c = p;
    for (int i = 0; i < c->iters; i++) {
        double t0 = now_ms();
        if (run_once(c) != 0) {
            c->failed = 1;
            return NULL;
        }
        c->lat[i] = now_ms() - t0;
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int n, double p) {
    if (n == 0) return 0;
    double idx = p / 100.0 * (n - 1);
    int lo = (int)floor(idx), hi = (int)ceil(idx);
    return v[lo] + (v[hi] - v[lo]) * (idx - lo);
}

/* xorshift: deterministic random inputs */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

int cmd_bench(int argc, char **argv) {
    const char *path = NULL;
    long long batch = 1, threads = 0, iters = 100, warmup = 10, concurrent = 1;
    bool json = false, batch_tiling = true;
    const char *dim_names[16];
    long long dim_values[16];
    int n_dims = 0;
    ember_opt_level opt = EMBER_OPT_ALL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        bool bad = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (cli_flag_value(argc, argv, &i, "--batch", &v, &bad)) {
            if (bad || !cli_parse_int("--batch", v, &batch) || batch < 0) return 2;
        } else if (cli_flag_value(argc, argv, &i, "--threads", &v, &bad)) {
            if (bad || !cli_parse_int("--threads", v, &threads) || threads < 0) return 2;
        } else if (cli_flag_value(argc, argv, &i, "--iters", &v, &bad)) {
            if (bad || !cli_parse_int("--iters", v, &iters) || iters < 1) return 2;
        } else if (cli_flag_value(argc, argv, &i, "--warmup", &v, &bad)) {
            if (bad || !cli_parse_int("--warmup", v, &warmup) || warmup < 0) return 2;
        } else if (cli_flag_value(argc, argv, &i, "--concurrent", &v, &bad)) {
            if (bad || !cli_parse_int("--concurrent", v, &concurrent) || concurrent < 1 ||
                concurrent > 256)
                return 2;
        } else if (cli_flag_value(argc, argv, &i, "--opt", &v, &bad)) {
            if (bad) return 2;
            if (strcmp(v, "none") == 0) opt = EMBER_OPT_NONE;
            else if (strcmp(v, "basic") == 0) opt = EMBER_OPT_BASIC;
            else if (strcmp(v, "all") == 0) opt = EMBER_OPT_ALL;
            else {
                cli_error("--opt: expected none, basic or all");
                return 2;
            }
        } else if (cli_flag_value(argc, argv, &i, "--dim", &v, &bad)) {
            const char *eq = v ? strchr(v, '=') : NULL;
            if (bad || !eq || n_dims == 16) {
                cli_error("--dim takes NAME=VALUE");
                return 2;
            }
            dim_names[n_dims] = strndup(v, (size_t)(eq - v));
            if (!cli_parse_int("--dim", eq + 1, &dim_values[n_dims]) || dim_values[n_dims] < 0)
                return 2;
            n_dims++;
        } else if (strcmp(argv[i], "--no-batch-tiling") == 0) {
            batch_tiling = false;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] == '-') {
            cli_error("bench: unknown option '%s'", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            cli_error("bench: unexpected argument '%s'", argv[i]);
            return 2;
        }
    }
    if (!path) {
        cli_error("bench: missing MODEL (see 'ember bench --help')");
        return 2;
    }
    int rc = 1;
    ember_error err;
    ember_model *m = NULL;
    ember_session *s = NULL;
    bench_ctx base = {0};
    bench_ctx *ctxs = NULL;
    pthread_t *tids = NULL;
    double *all = NULL;
    double t0 = now_ms();
    if (ember_model_load_file(path, NULL, &m, &err) != EMBER_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = (int)threads;
    o.opt_level = opt;
    o.batch_tiling = batch_tiling;
    if (ember_session_create(m, &o, &s, &err) != EMBER_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    double create_ms = now_ms() - t0;
    base.s = s;
    base.n_in = ember_model_input_count(m);
    base.n_out = ember_model_output_count(m);
    if (base.n_out > 64) {
        cli_error("bench: more than 64 outputs");
        goto done;
    }
    base.in_names = calloc(base.n_in + 1, sizeof(char *));
    base.out_names = calloc(base.n_out + 1, sizeof(char *));
    base.inputs = calloc(base.n_in + 1, sizeof(ember_tensor *));
    if (!base.in_names || !base.out_names || !base.inputs) goto done;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < base.n_in; i++) {
        ember_value_info vi;
        ember_model_input(m, i, &vi);
        base.in_names[i] = vi.name;
        int64_t dims[EMBER_MAX_RANK];
        if (vi.rank < 0) {
            cli_error("bench: input '%s' has no declared shape", vi.name);
            goto done;
        }
        for (int d = 0; d < vi.rank; d++) {
            dims[d] = vi.dims[d];
            if (dims[d] >= 0) continue;
            dims[d] = batch;
            for (int k = 0; k < n_dims; k++)
                if (vi.dim_names && vi.dim_names[d] && strcmp(vi.dim_names[d], dim_names[k]) == 0)
                    dims[d] = dim_values[k];
        }
        if (ember_tensor_create(vi.dtype, dims, vi.rank, &base.inputs[i], &err) != EMBER_OK) {
            cli_error("bench: input '%s': %s", vi.name, err.message);
            goto done;
        }
        int64_t n = ember_tensor_element_count(base.inputs[i]);
        void *p = ember_tensor_data(base.inputs[i]);
        for (int64_t e = 0; e < n; e++) {
            uint64_t r = rng_next(&seed);
            if (vi.dtype == EMBER_FLOAT) ((float *)p)[e] = (float)((r >> 40) / 16777216.0 * 2 - 1);
            else if (vi.dtype == EMBER_DOUBLE) ((double *)p)[e] = (double)(r >> 11) / 9007199254740992.0 * 2 - 1;
        }
    }
    for (size_t k = 0; k < base.n_out; k++) {
        ember_value_info vi;
        ember_model_output(m, k, &vi);
        base.out_names[k] = vi.name;
    }
    t0 = now_ms();
    if (run_once(&base) != 0) {
        cli_error("%s", base.error);
        goto done;
    }
    double first_ms = now_ms() - t0;
    for (long long i = 0; i < warmup; i++)
        if (run_once(&base) != 0) {
            cli_error("%s", base.error);
            goto done;
        }
    int per = (int)((iters + concurrent - 1) / concurrent);
    ctxs = calloc((size_t)concurrent, sizeof *ctxs);
    tids = calloc((size_t)concurrent, sizeof *tids);
    all = calloc((size_t)(per * concurrent), sizeof(double));
    if (!ctxs || !tids || !all) goto done;
    double wall0 = now_ms();
    for (int t = 0; t < concurrent; t++) {
        ctxs[t] = base;
        ctxs[t].iters = per;
        ctxs[t].lat = all + (size_t)t * (size_t)per;
        pthread_create(&tids[t], NULL, bench_thread, &ctxs[t]);
    }
    int failed = 0;
    for (int t = 0; t < concurrent; t++) {
        pthread_join(tids[t], NULL);
        if (ctxs[t].failed) {
            failed = 1;
            cli_error("%s", ctxs[t].error);
        }
    }
    double wall = now_ms() - wall0;
    if (failed) goto done;
    int n = per * (int)concurrent;
    qsort(all, (size_t)n, sizeof(double), cmp_double);
    double mean = 0;
    for (int i = 0; i < n; i++) mean += all[i];
    mean /= n;
    double rps = n / (wall / 1e3);
    long rss = peak_rss_kb();
    if (json) {
        printf("{\"model\": \"%s\", \"batch\": %lld, \"threads\": %lld, \"concurrent\": %lld, "
               "\"iters\": %d, \"session_create_ms\": %.4f, \"first_run_ms\": %.4f, "
               "\"median_ms\": %.6f, \"mean_ms\": %.6f, \"p10_ms\": %.6f, \"p90_ms\": %.6f, "
               "\"p99_ms\": %.6f, \"min_ms\": %.6f, \"runs_per_second\": %.2f, "
               "\"peak_rss_kb\": %ld}\n",
               path, batch, threads, concurrent, n, create_ms, first_ms, pct(all, n, 50), mean,
               pct(all, n, 10), pct(all, n, 90), pct(all, n, 99), all[0], rps, rss);
    } else {
        printf("model:              %s\n", path);
        printf("batch / threads:    %lld / %lld%s\n", batch, threads, threads ? "" : " (all cores)");
        printf("session creation:   %.3f ms\n", create_ms);
        printf("first run:          %.3f ms\n", first_ms);
        printf("latency (%d runs, %lld at once): median %.4f ms, p10 %.4f, p90 %.4f, p99 %.4f\n",
               n, concurrent, pct(all, n, 50), pct(all, n, 10), pct(all, n, 90), pct(all, n, 99));
        printf("throughput:         %.1f runs/s\n", rps);
        printf("peak RSS:           %ld KB\n", rss);
    }
    rc = 0;
done:
    for (size_t i = 0; base.inputs && i < base.n_in; i++) ember_tensor_free(base.inputs[i]);
    free(base.inputs);
    free(base.in_names);
    free(base.out_names);
    free(ctxs);
    free(tids);
    free(all);
    for (int k = 0; k < n_dims; k++) free((char *)dim_names[k]);
    ember_session_free(s);
    ember_model_free(m);
    return rc;
}
