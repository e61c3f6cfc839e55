/* Executor fast paths: shapes memoized per input signature (and re-inferred when a shape or a
 * shape-carrying value changes), outputs handed over from the arena, run contexts reused, the
 * operator version look-up, the thread pool. Models from tests/fixtures/make_pass_models.py,
 * made of shape and reduce operators only. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

static const char *model_path(const char *name) {
    static char buf[4096];
    const char *dir = getenv("EMBER_PASS_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s.onnx", dir ? dir : "build/tests/pass_fixtures", name);
    return buf;
}

static ember_session *open_session(const char *name, ember_model **m, int threads) {
    ember_error err = {0};
    cr_assert_eq(ember_model_load_file(model_path(name), NULL, m, &err), EMBER_OK, "%s",
                 err.message);
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = threads;
    ember_session *s = NULL;
    cr_assert_eq(ember_session_create(*m, &o, &s, &err), EMBER_OK, "%s", err.message);
    return s;
}

static ember_tensor *floats(const int64_t *dims, int rank, float start) {
    ember_tensor *t;
    ember_error err;
    cr_assert_eq(ember_tensor_create(EMBER_FLOAT, dims, rank, &t, &err), EMBER_OK);
    float *p = ember_tensor_data(t);
    for (int64_t i = 0; i < ember_tensor_element_count(t); i++) p[i] = start + (float)i * 0.5f;
    return t;
}

/* Reshape to a shape given as an input value, then Transpose: every (x shape, target) pair
 * must give its own output shape, also when runs alternate between them. */
Test(executor, new_shape_values_are_re_inferred) {
    ember_model *m;
    ember_session *s = open_session("reshape_input", &m, 1);
    static const struct {
        int64_t rows;
        int64_t target[2];
    } cases[] = {{2, {4, 2}}, {2, {8, 1}}, {2, {4, 2}}, {3, {2, 6}}, {3, {-1, 3}}, {2, {1, 8}}};
    for (int r = 0; r < 2; r++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            ember_tensor *x = floats((int64_t[]){cases[c].rows, 4}, 2, -3.0f), *shape, *y;
            ember_error err;
            cr_assert_eq(ember_tensor_create(EMBER_INT64, (int64_t[]){2}, 1, &shape, &err),
                         EMBER_OK);
            memcpy(ember_tensor_data(shape), cases[c].target, sizeof cases[c].target);
            const char *names[] = {"x", "shape"}, *out = "y";
            const ember_tensor *ins[] = {x, shape};
            cr_assert_eq(ember_session_run(s, names, ins, 2, &out, 1, &y, &err), EMBER_OK, "%s",
                         err.message);
            int64_t n = cases[c].rows * 4;
            int64_t d0 = cases[c].target[0] < 0 ? n / cases[c].target[1] : cases[c].target[0];
            int64_t d1 = cases[c].target[1];
            cr_assert_eq(ember_tensor_rank(y), 2);
            cr_assert_eq(ember_tensor_dims(y)[0], d1, "case %zu", c);
            cr_assert_eq(ember_tensor_dims(y)[1], d0, "case %zu", c);
            const float *v = ember_tensor_const_data(y);
            for (int64_t i = 0; i < d1; i++)
                for (int64_t j = 0; j < d0; j++)
                    cr_assert_eq(v[i * d0 + j], -3.0f + (float)(j * d1 + i) * 0.5f);
            ember_tensor_free(y);
            ember_tensor_free(x);
            ember_tensor_free(shape);
        }
    ember_session_free(s);
    ember_model_free(m);
}

static ember_tensor *run_row_sums(ember_session *s, int64_t batch) {
    ember_tensor *x = floats((int64_t[]){batch, 8}, 2, -1.0f), *y;
    ember_error err;
    const char *in = "x", *out = "y";
    cr_assert_eq(ember_session_run(s, &in, (const ember_tensor *const *)&x, 1, &out, 1, &y, &err),
                 EMBER_OK, "%s", err.message);
    ember_tensor_free(x);
    return y;
}

/* Batch sizes alternating on one session give what a fresh session gives for each. */
Test(executor, alternating_batch_sizes) {
    ember_model *m;
    ember_session *s = open_session("row_sums", &m, 2);
    static const int64_t batches[] = {1, 5, 1, 64, 5, 0, 2};
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        ember_session *fresh;
        ember_error err;
        cr_assert_eq(ember_session_create(m, NULL, &fresh, &err), EMBER_OK);
        ember_tensor *a = run_row_sums(s, batches[i]), *b = run_row_sums(fresh, batches[i]);
        cr_assert_eq(ember_tensor_dims(a)[0], batches[i]);
        cr_assert_eq(ember_tensor_byte_size(a), ember_tensor_byte_size(b));
        cr_assert(memcmp(ember_tensor_const_data(a), ember_tensor_const_data(b),
                         ember_tensor_byte_size(a)) == 0,
                  "batch %lld", (long long)batches[i]);
        ember_tensor_free(a);
        ember_tensor_free(b);
        ember_session_free(fresh);
    }
    ember_session_free(s);
    ember_model_free(m);
}

/* Outputs belong to the caller: they outlive the session, and an output asked for twice comes
 * back as two tensors. Repeated runs keep the arena's size. */
Test(executor, outputs_handed_over) {
    ember_model *m;
    ember_session *s = open_session("two_outputs", &m, 1);
    ember_tensor *x = floats((int64_t[]){3, 8}, 2, -2.0f);
    const char *in = "x", *outs[] = {"y", "t", "y"};
    ember_tensor *y[3], *first[3];
    ember_error err;
    uint64_t arena = 0;
    for (int r = 0; r < 4; r++) {
        cr_assert_eq(ember_session_run(s, &in, (const ember_tensor *const *)&x, 1, outs, 3, y,
                                       &err),
                     EMBER_OK, "%s", err.message);
        cr_assert_neq(ember_tensor_data(y[0]), ember_tensor_data(y[2]));
        cr_assert(memcmp(ember_tensor_data(y[0]), ember_tensor_data(y[2]),
                         ember_tensor_byte_size(y[0])) == 0);
        const float *t = ember_tensor_const_data(y[1]), *v = ember_tensor_const_data(y[0]);
        for (int i = 0; i < 8; i++) {
            float mx = t[i * 3];
            for (int j = 1; j < 3; j++) mx = t[i * 3 + j] > mx ? t[i * 3 + j] : mx;
            cr_assert_eq(v[i], mx);
        }
        if (r == 0) {
            memcpy(first, y, sizeof y);
            arena = em_session_arena_bytes(s);
            continue;
        }
        cr_assert_eq(em_session_arena_bytes(s), arena, "run %d", r);
        for (int k = 0; k < 3; k++) {
            cr_assert(memcmp(ember_tensor_data(y[k]), ember_tensor_data(first[k]),
                             ember_tensor_byte_size(y[k])) == 0);
            ember_tensor_free(y[k]);
        }
    }
    ember_session_free(s);
    ember_model_free(m);
    for (int k = 0; k < 3; k++) { /* still readable after the session is gone */
        volatile float sum = 0;
        const float *v = ember_tensor_const_data(first[k]);
        for (int64_t i = 0; i < ember_tensor_element_count(first[k]); i++) sum += v[i];
        (void)sum;
        ember_tensor_free(first[k]);
    }
    ember_tensor_free(x);
}

/* A graph input with a default (IR 3 initializer): overriding it in one run must not stick to
 * the next run, which uses the default again. */
Test(executor, input_defaults_restored_between_runs) {
    ember_model *m;
    ember_session *s = open_session("input_default", &m, 1);
    ember_tensor *x = floats((int64_t[]){2, 4}, 2, 0.0f), *c = floats((int64_t[]){4}, 1, 7.0f);
    ember_tensor *y0, *y1, *y2;
    ember_error err;
    const char *names[] = {"x", "c"}, *out = "y";
    const ember_tensor *ins[] = {x, c};
    cr_assert_eq(ember_session_run(s, names, ins, 1, &out, 1, &y0, &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_eq(ember_session_run(s, names, ins, 2, &out, 1, &y1, &err), EMBER_OK, "%s",
                 err.message);
    cr_assert_eq(ember_session_run(s, names, ins, 1, &out, 1, &y2, &err), EMBER_OK, "%s",
                 err.message);
    const float *v1 = ember_tensor_const_data(y1);
    for (int i = 0; i < 4; i++) cr_assert_eq(v1[8 + i], 7.0f + (float)i * 0.5f);
    cr_assert(memcmp(ember_tensor_data(y0), ember_tensor_data(y1), ember_tensor_byte_size(y0)));
    cr_assert(memcmp(ember_tensor_data(y0), ember_tensor_data(y2), ember_tensor_byte_size(y0)) ==
              0);
    ember_tensor_free(y0);
    ember_tensor_free(y1);
    ember_tensor_free(y2);
    ember_tensor_free(x);
    ember_tensor_free(c);
    ember_session_free(s);
    ember_model_free(m);
}

/* Kernels look operator versions up while running (binary search over a sorted table): every
 * operator of the table must be found, at its first version and above. */
typedef struct onnx_versions {
    const char *op_type;
    int versions[12];
} onnx_versions;

static const onnx_versions k_table[] = {
#include "onnx_versions.inc"
};

Test(executor, every_operator_version_found) {
    size_t n = sizeof k_table / sizeof k_table[0];
    cr_assert_gt(n, 150);
    for (size_t i = 0; i < n; i++) {
        const int *v = k_table[i].versions;
        cr_expect_eq(em_onnx_op_version(k_table[i].op_type, v[0]), v[0], "%s", k_table[i].op_type);
        if (v[0] > 1) cr_expect_eq(em_onnx_op_version(k_table[i].op_type, v[0] - 1), 0);
        int last = v[0];
        for (int k = 0; k < 12 && v[k]; k++) last = v[k];
        cr_expect_eq(em_onnx_op_version(k_table[i].op_type, 10000), last, "%s",
                     k_table[i].op_type);
    }
    cr_expect_eq(em_onnx_op_version("NoSuchOp", 13), 0);
    cr_expect_eq(em_onnx_op_version("", 13), 0);
}

/* ---- thread pool: polling and sleeping hand-offs ---- */

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "threadpool.h"

typedef struct sum_job {
    atomic_llong sum;
} sum_job;

static void add_range(void *ctx, int64_t b, int64_t e) {
    sum_job *s = ctx;
    int64_t local = 0;
    for (int64_t i = b; i < e; i++) local += i;
    atomic_fetch_add(&s->sum, local);
}

typedef struct submitter {
    ember_threadpool *pool;
    int rounds;
    bool pause; /* sleep between jobs so that the workers go to sleep too */
    int bad;
} submitter;

static void *submit_many(void *arg) {
    submitter *t = arg;
    for (int r = 0; r < t->rounds; r++) {
        int64_t n = 1 + (r * 37) % 500;
        sum_job s;
        atomic_init(&s.sum, 0);
        em_threadpool_run(t->pool, 0, n, 1, add_range, &s);
        if (atomic_load(&s.sum) != n * (n - 1) / 2) t->bad++;
        if (t->pause && r % 8 == 0) nanosleep(&(struct timespec){0, 200000}, NULL);
    }
    return NULL;
}

Test(executor, threadpool_many_small_jobs_from_several_threads) {
    ember_threadpool *pool;
    ember_error err;
    cr_assert_eq(em_threadpool_new(3, &pool, &err), EMBER_OK);
    submitter subs[3];
    pthread_t tids[3];
    for (int i = 0; i < 3; i++) {
        subs[i] = (submitter){pool, i == 0 ? 20000 : 400, i == 2, 0};
        pthread_create(&tids[i], NULL, submit_many, &subs[i]);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(tids[i], NULL);
        cr_expect_eq(subs[i].bad, 0, "submitter %d: %d wrong sums", i, subs[i].bad);
    }
    em_threadpool_delete(pool);
}
