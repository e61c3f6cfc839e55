/* Run one model from several threads on one session, the way a C service would.
 *
 *   cc threads.c $(pkg-config --cflags --libs ember) -lpthread -o threads
 *   ./threads MODEL [THREADS]
 *
 * Every input is filled with a deterministic pattern (symbolic dims set to 1); each thread
 * runs the model repeatedly and checks that it always gets the same outputs as the first run. */
#include <ember.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    ember_session *session;
    size_t n_inputs, n_outputs;
    const char **input_names, **output_names;
    ember_tensor **inputs;
    ember_tensor **reference;
    int mismatches;
} job;

static void *worker(void *arg) {
    job *j = arg;
    ember_tensor *out[16];
    ember_error err;
    for (int run = 0; run < 100; run++) {
        if (ember_session_run(j->session, j->input_names, (const ember_tensor *const *)j->inputs,
                              j->n_inputs, j->output_names, j->n_outputs, out, &err) != EMBER_OK) {
            fprintf(stderr, "run failed: %s\n", err.message);
            j->mismatches++;
            return NULL;
        }
        for (size_t k = 0; k < j->n_outputs; k++) {
            if (ember_tensor_byte_size(out[k]) != ember_tensor_byte_size(j->reference[k]) ||
                memcmp(ember_tensor_data(out[k]), ember_tensor_data(j->reference[k]),
                       ember_tensor_byte_size(out[k])) != 0)
                j->mismatches++;
            ember_tensor_free(out[k]);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MODEL [THREADS]\n", argv[0]);
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 4;
    if (threads < 1 || threads > 64) threads = 4;
    ember_error err;
    ember_model *model;
    if (ember_model_load_file(argv[1], NULL, &model, &err) != EMBER_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    ember_session *session;
    if (ember_session_create(model, NULL, &session, &err) != EMBER_OK) {
        fprintf(stderr, "%s\n", err.message);
        ember_model_free(model);
        return 1;
    }
    job j = {.session = session};
    j.n_inputs = ember_model_input_count(model);
    j.n_outputs = ember_model_output_count(model);
    if (j.n_inputs > 16 || j.n_outputs > 16) {
        fprintf(stderr, "too many inputs or outputs for this example\n");
        return 1;
    }
    j.input_names = calloc(j.n_inputs + 1, sizeof(char *));
    j.output_names = calloc(j.n_outputs + 1, sizeof(char *));
    j.inputs = calloc(j.n_inputs + 1, sizeof(ember_tensor *));
    j.reference = calloc(j.n_outputs + 1, sizeof(ember_tensor *));
    for (size_t i = 0; i < j.n_inputs; i++) {
        ember_value_info info;
        ember_model_input(model, i, &info);
        int64_t dims[EMBER_MAX_RANK];
        for (int d = 0; d < info.rank; d++) dims[d] = info.dims[d] < 0 ? 1 : info.dims[d];
        if (ember_tensor_create(info.dtype, dims, info.rank, &j.inputs[i], &err) != EMBER_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        if (info.dtype == EMBER_FLOAT) {
            float *p = ember_tensor_data(j.inputs[i]);
            for (int64_t e = 0; e < ember_tensor_element_count(j.inputs[i]); e++)
                p[e] = (float)((e * 37) % 17) / 17.0f - 0.5f;
        }
        j.input_names[i] = info.name;
    }
    for (size_t k = 0; k < j.n_outputs; k++) {
        ember_value_info info;
        ember_model_output(model, k, &info);
        j.output_names[k] = info.name;
    }
    if (ember_session_run(session, j.input_names, (const ember_tensor *const *)j.inputs,
                          j.n_inputs, j.output_names, j.n_outputs, j.reference, &err) != EMBER_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    pthread_t tid[64];
    job jobs[64];
    for (int t = 0; t < threads; t++) {
        jobs[t] = j;
        pthread_create(&tid[t], NULL, worker, &jobs[t]);
    }
    int mismatches = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        mismatches += jobs[t].mismatches;
    }
    printf("%d threads x 100 runs of %s: %s\n", threads, argv[1],
           mismatches ? "MISMATCH" : "all outputs identical");
    for (size_t i = 0; i < j.n_inputs; i++) ember_tensor_free(j.inputs[i]);
    for (size_t k = 0; k < j.n_outputs; k++) ember_tensor_free(j.reference[k]);
    free(j.input_names);
    free(j.output_names);
    free(j.inputs);
    free(j.reference);
    ember_session_free(session);
    ember_model_free(model);
    return mismatches ? 1 : 0;
}
