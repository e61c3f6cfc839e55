/* Concurrency (built with ThreadSanitizer by scripts/sanitize.sh):
 *     concurrency MODEL.onnx...
 * For each model (one input with a symbolic batch dim):
 *  1. one session, 16 threads at once, each with its own input and batch size (1..16), every
 *     thread running its input and its neighbours' many times: every output must be bitwise
 *     equal to the output of a serial run of the same input;
 *  2. sessions created, run and destroyed concurrently from 8 threads (each with its own thread
 *     pool or a shared one), while the model they come from is shared: same results.
 * Plain C (no Criterion, no fork), so that TSan, ASan and valgrind see everything. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"

#define N_THREADS 16
#define ROUNDS 12
#define N_CREATORS 8
#define CREATE_ROUNDS 6

typedef struct shared {
    const char *path;
    ember_model *model;
    ember_session *session;
    ember_threadpool *pool;
    const char *in_name, *out_name;
    ember_tensor *inputs[N_THREADS];
    ember_tensor *expected[N_THREADS];
} shared;

typedef struct worker {
    shared *sh;
    int id;
    int failures;
    char first_failure[EMBER_ERROR_MESSAGE_SIZE + 128];
} worker;

static void note_failure(worker *w, const char *fmt, const char *detail) {
    if (w->failures++ == 0) snprintf(w->first_failure, sizeof w->first_failure, fmt, detail);
}

static bool same_tensor(const ember_tensor *a, const ember_tensor *b) {
    if (ember_tensor_dtype(a) != ember_tensor_dtype(b) || ember_tensor_rank(a) != ember_tensor_rank(b))
        return false;
    for (int d = 0; d < ember_tensor_rank(a); d++)
        if (ember_tensor_dims(a)[d] != ember_tensor_dims(b)[d]) return false;
    return memcmp(ember_tensor_const_data(a), ember_tensor_const_data(b),
                  ember_tensor_byte_size(a)) == 0;
}

static ember_status run_one(ember_session *s, const shared *sh, int input, ember_tensor **out,
                            ember_error *err) {
    const ember_tensor *in = sh->inputs[input];
    return ember_session_run(s, &sh->in_name, &in, 1, &sh->out_name, 1, out, err);
}

/* Part 1: many runs on one session. */
static void *runner(void *arg) {
    worker *w = arg;
    shared *sh = w->sh;
    for (int r = 0; r < ROUNDS; r++) {
        int input = (w->id + r) % N_THREADS; /* batch sizes change from run to run */
        ember_tensor *out = NULL;
        ember_error err;
        if (run_one(sh->session, sh, input, &out, &err) != EMBER_OK) {
            note_failure(w, "run failed: %s", err.message);
            continue;
        }
        if (!same_tensor(out, sh->expected[input])) note_failure(w, "%s", "output differs from the serial run");
        ember_tensor_free(out);
    }
    return NULL;
}

/* Part 2: sessions made and destroyed concurrently from one model. */
static void *creator(void *arg) {
    worker *w = arg;
    shared *sh = w->sh;
    for (int r = 0; r < CREATE_ROUNDS; r++) {
        ember_session_options o;
        ember_session_options_init(&o);
        o.threads = 1 + (w->id + r) % 2;
        if ((w->id + r) % 3 == 0) o.threadpool = sh->pool;
        o.opt_level = (ember_opt_level)((w->id + r) % 3);
        ember_session *s = NULL;
        ember_error err;
        if (ember_session_create(sh->model, &o, &s, &err) != EMBER_OK) {
            note_failure(w, "session create failed: %s", err.message);
            continue;
        }
        int input = (w->id * 5 + r) % N_THREADS;
        ember_tensor *out = NULL;
        if (run_one(s, sh, input, &out, &err) != EMBER_OK) {
            note_failure(w, "run failed: %s", err.message);
        } else {
            /* Another optimization level may round differently (Conv+BatchNorm folding). */
            const ember_tensor *want = sh->expected[input];
            bool close = ember_tensor_element_count(out) == ember_tensor_element_count(want) &&
                         ember_tensor_dtype(out) == ember_tensor_dtype(want);
            if (close && ember_tensor_dtype(out) == EMBER_FLOAT) {
                const float *a = ember_tensor_const_data(out), *b = ember_tensor_const_data(want);
                for (int64_t i = 0; close && i < ember_tensor_element_count(out); i++)
                    close = fabsf(a[i] - b[i]) <= 1e-4f * (1.0f + fabsf(b[i]));
            } else if (close) {
                close = same_tensor(out, want); /* labels, ranks: exact */
            }
            if (!close) note_failure(w, "%s", "output of a new session differs");
            ember_tensor_free(out);
        }
        ember_session_free(s);
    }
    return NULL;
}

static int check_model(const char *path) {
    shared sh = {.path = path};
    ember_error err;
    int failures = 0;
    if (ember_model_load_file(path, NULL, &sh.model, &err) != EMBER_OK) {
        printf("FAIL %s: %s\n", path, err.message);
        return 1;
    }
    ember_value_info in, out;
    if (ember_model_input_count(sh.model) != 1 || ember_model_input(sh.model, 0, &in) != EMBER_OK ||
        ember_model_output(sh.model, 0, &out) != EMBER_OK || in.rank < 1 || in.dtype != EMBER_FLOAT) {
        printf("FAIL %s: needs one float input with a batch dim\n", path);
        ember_model_free(sh.model);
        return 1;
    }
    sh.in_name = in.name;
    sh.out_name = out.name;
    /* Inputs: batch i + 1, deterministic values. */
    unsigned seed = 12345;
    for (int i = 0; i < N_THREADS; i++) {
        int64_t dims[EMBER_MAX_RANK];
        for (int d = 0; d < in.rank; d++) dims[d] = in.dims[d] < 0 ? 1 : in.dims[d];
        dims[0] = i + 1;
        if (ember_tensor_create(EMBER_FLOAT, dims, in.rank, &sh.inputs[i], &err) != EMBER_OK) {
            printf("FAIL %s: %s\n", path, err.message);
            failures++;
            goto done;
        }
        float *x = ember_tensor_data(sh.inputs[i]);
        for (int64_t k = 0; k < ember_tensor_element_count(sh.inputs[i]); k++) {
            seed = seed * 1103515245u + 12345u;
            x[k] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
        }
    }
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = 2;
    if (ember_session_create(sh.model, &o, &sh.session, &err) != EMBER_OK ||
        ember_threadpool_create(2, &sh.pool, &err) != EMBER_OK) {
        printf("FAIL %s: %s\n", path, err.message);
        failures++;
        goto done;
    }
    for (int i = 0; i < N_THREADS; i++)
        if (run_one(sh.session, &sh, i, &sh.expected[i], &err) != EMBER_OK) {
            printf("FAIL %s: serial run: %s\n", path, err.message);
            failures++;
            goto done;
        }
    worker w[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){.sh = &sh, .id = i};
        if (pthread_create(&th[i], NULL, runner, &w[i]) != 0) return 1;
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures) printf("FAIL %s: runner %d: %d failures, first: %s\n", path, i,
                                  w[i].failures, w[i].first_failure);
        failures += w[i].failures;
    }
    for (int i = 0; i < N_CREATORS; i++) {
        w[i] = (worker){.sh = &sh, .id = i};
        if (pthread_create(&th[i], NULL, creator, &w[i]) != 0) return 1;
    }
    for (int i = 0; i < N_CREATORS; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failures) printf("FAIL %s: creator %d: %d failures, first: %s\n", path, i,
                                  w[i].failures, w[i].first_failure);
        failures += w[i].failures;
    }
    if (!failures)
        printf("ok   %s: %d threads x %d runs on one session, %d threads x %d sessions\n", path,
               N_THREADS, ROUNDS, N_CREATORS, CREATE_ROUNDS);
done:
    for (int i = 0; i < N_THREADS; i++) {
        ember_tensor_free(sh.inputs[i]);
        ember_tensor_free(sh.expected[i]);
    }
    ember_session_free(sh.session);
    ember_threadpool_free(sh.pool);
    ember_model_free(sh.model);
    return failures;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: concurrency MODEL.onnx...\n");
        return 2;
    }
    int failures = 0;
    for (int i = 1; i < argc; i++) failures += check_model(argv[i]) != 0;
    return failures ? 1 : 0;
}
