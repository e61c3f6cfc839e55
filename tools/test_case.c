/* Running one ONNX backend test case in process (see test_case.h). */
#include "test_case.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_DATA_SETS 4096
#define MAX_CASE_TENSORS 1024

const char *case_status_name(case_status status) {
    switch (status) {
    case CASE_PASSED: return "passed";
    case CASE_FAILED: return "failed";
    case CASE_UNSUPPORTED: return "unsupported";
    case CASE_ERROR: return "error";
    }
    return "?";
}

void case_record_init(case_record *record, const case_options *options) {
    memset(record, 0, sizeof *record);
    record->status = CASE_PASSED;
    record->rtol = options->rtol;
    record->atol = options->atol;
}

static void set_status(case_record *record, case_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_status(case_record *record, case_status status, const char *fmt, ...) {
    record->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(record->message, sizeof record->message, fmt, ap);
    va_end(ap);
}

/* A failed ember call is an error; only EMBER_ERR_UNSUPPORTED while loading the model or
 * creating the session makes the case unsupported: ember must refuse what it cannot run up
 * front, not discover it while running. */
static void set_ember_failure(case_record *record, ember_status status, const char *step,
                              const ember_error *err, bool may_be_unsupported) {
    bool unsupported = may_be_unsupported && status == EMBER_ERR_UNSUPPORTED;
    set_status(record, unsupported ? CASE_UNSUPPORTED : CASE_ERROR, "%s: %s", step,
               err->message[0] ? err->message : ember_status_string(status));
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Numbers N of the test_data_set_N folders, sorted. Returns the count, or -1 on error. */
static int find_data_sets(const char *dir, int *numbers, int capacity, case_record *record) {
    DIR *d = opendir(dir);
    if (!d) {
        set_status(record, CASE_ERROR, "cannot open case folder: %s", strerror(errno));
        return -1;
    }
    static const char prefix[] = "test_data_set_";
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (strncmp(entry->d_name, prefix, sizeof prefix - 1) != 0) continue;
        const char *digits = entry->d_name + sizeof prefix - 1;
        char *end = NULL;
        errno = 0;
        long n = strtol(digits, &end, 10);
        if (*digits < '0' || *digits > '9' || *end != '\0' || errno != 0 || n > INT_MAX) continue;
        if (count == capacity) {
            closedir(d);
            set_status(record, CASE_ERROR, "more than %d test data sets", capacity);
            return -1;
        }
        numbers[count++] = (int)n;
    }
    closedir(d);
    qsort(numbers, (size_t)count, sizeof *numbers, compare_ints);
    return count;
}

typedef struct tensor_list {
    ember_tensor *items[MAX_CASE_TENSORS];
    int count;
} tensor_list;

static void tensor_list_clear(tensor_list *list) {
    for (int i = 0; i < list->count; i++) ember_tensor_free(list->items[i]);
    list->count = 0;
}

/* Load <set>/<stem>_0.pb, <stem>_1.pb, ... until the first missing number. File k holds a
 * TensorProto, SequenceProto or OptionalProto as graph input / output k declares. */
static bool load_tensors(const char *set_dir, const char *set_name, const char *stem,
                         const ember_model *model, tensor_list *list, case_record *record) {
    list->count = 0;
    for (int k = 0;; k++) {
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s_%d.pb", set_dir, stem, k) >= (int)sizeof path) {
            set_status(record, CASE_ERROR, "path too long: %s", set_dir);
            return false;
        }
        if (!file_exists(path)) return true;
        if (k == MAX_CASE_TENSORS) {
            set_status(record, CASE_ERROR, "%s: more than %d %s files", set_name,
                       MAX_CASE_TENSORS, stem);
            return false;
        }
        ember_error err = {0};
        ember_value_info info = {0};
        bool is_input = strcmp(stem, "input") == 0;
        if ((is_input ? ember_model_input(model, (size_t)k, &info)
                      : ember_model_output(model, (size_t)k, &info)) != EMBER_OK)
            info.kind = EMBER_KIND_TENSOR; /* a count mismatch is reported by the caller */
        ember_status status = ember_value_load(path, info.kind, &list->items[k], &err);
        if (status != EMBER_OK) {
            /* ember's message names the file already. */
            set_status(record, CASE_ERROR, "%s",
                       err.message[0] ? err.message : ember_status_string(status));
            return false;
        }
        list->count = k + 1;
    }
}

static void append_text(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append_text(char *buf, size_t size, const char *fmt, ...) {
    size_t used = strlen(buf);
    if (used + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

/* Best effort, for the report only: dtypes of data set 0's inputs. */
static void describe_inputs(const char *dir, int first_set, case_record *record) {
    for (int k = 0;; k++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/test_data_set_%d/input_%d.pb", dir, first_set, k);
        if (!file_exists(path)) return;
        ember_tensor *t = NULL;
        const char *name = "?";
        if (ember_tensor_load(path, &t, NULL) == EMBER_OK)
            name = ember_dtype_name(ember_tensor_dtype(t));
        append_text(record->input_types, sizeof record->input_types, "%s%s", k ? "," : "", name);
        ember_tensor_free(t);
    }
}

/* numpy has no bfloat16: ONNX's generator stores bfloat16 test data as uint16 bit patterns.
 * Where the graph declares bfloat16 and the file says uint16, take the bits as bfloat16. */
static bool retype_bfloat16(ember_tensor **tensor, ember_dtype declared, case_record *record) {
    if (declared != EMBER_BFLOAT16 || ember_tensor_dtype(*tensor) != EMBER_UINT16 ||
        ember_tensor_kind(*tensor) != EMBER_KIND_TENSOR)
        return true;
    ember_tensor *retyped = NULL;
    ember_error err = {0};
    ember_status status = ember_tensor_create(EMBER_BFLOAT16, ember_tensor_dims(*tensor),
                                              ember_tensor_rank(*tensor), &retyped, &err);
    if (status != EMBER_OK) {
        set_ember_failure(record, status, "bfloat16 data", &err, false);
        return false;
    }
    memcpy(ember_tensor_data(retyped), ember_tensor_const_data(*tensor),
           ember_tensor_byte_size(*tensor));
    ember_tensor_free(*tensor);
    *tensor = retyped;
    return true;
}

static void describe_mismatch(case_record *record) {
    const case_mismatch *m = &record->mismatch;
    const compare_result *c = &m->compare;
    char *msg = record->message;
    size_t size = sizeof record->message;
    snprintf(msg, size, "output %d '%s' (data set %d): %s", m->output_index, m->output_name,
             m->data_set, c->reason);
    if (!c->layout_mismatch) {
        append_text(msg, size, "; worst at [");
        for (int d = 0; d < c->worst_rank; d++)
            append_text(msg, size, d ? ",%lld" : "%lld", (long long)c->worst_index[d]);
        append_text(msg, size, "] (flat %lld): expected %s, got %s; max abs diff %.6g",
                    (long long)c->worst_flat_index, c->worst_expected, c->worst_got,
                    c->max_abs_diff);
        if (c->has_ulp) {
            if (c->ulp_unbounded) append_text(msg, size, ", max ulp inf (NaN mismatch)");
            else append_text(msg, size, ", max ulp %llu", (unsigned long long)c->max_ulp);
        }
    }
    if (record->failing_outputs > 1)
        append_text(msg, size, " (%d failing outputs in all)", record->failing_outputs);
}

/* Run one data set: feed inputs by position, compare every output. False on error. */
static bool run_data_set(const char *dir, int set_number, int first_set, ember_session *session,
                         const ember_model *model, const case_options *options,
                         case_record *record, tensor_list *inputs, tensor_list *expected) {
    char set_name[64], set_dir[PATH_MAX];
    snprintf(set_name, sizeof set_name, "test_data_set_%d", set_number);
    if (snprintf(set_dir, sizeof set_dir, "%s/%s", dir, set_name) >= (int)sizeof set_dir) {
        set_status(record, CASE_ERROR, "path too long: %s", dir);
        return false;
    }
    if (!load_tensors(set_dir, set_name, "input", model, inputs, record)) return false;
    if (!load_tensors(set_dir, set_name, "output", model, expected, record)) return false;

    size_t input_count = ember_model_input_count(model);
    size_t output_count = ember_model_output_count(model);
    if ((size_t)inputs->count > input_count) {
        set_status(record, CASE_ERROR, "%s has %d input files but the graph has %zu inputs",
                   set_name, inputs->count, input_count);
        return false;
    }
    if ((size_t)expected->count != output_count) {
        set_status(record, CASE_ERROR, "%s has %d output files but the graph has %zu outputs",
                   set_name, expected->count, output_count);
        return false;
    }

    const char *input_names[MAX_CASE_TENSORS];
    const char *output_names[MAX_CASE_TENSORS];
    ember_tensor *outputs[MAX_CASE_TENSORS] = {0};
    for (int k = 0; k < inputs->count; k++) {
        ember_value_info info;
        if (ember_model_input(model, (size_t)k, &info) != EMBER_OK) {
            set_status(record, CASE_ERROR, "graph input %d cannot be described", k);
            return false;
        }
        const char *file_name = ember_tensor_name(inputs->items[k]);
        if (file_name && file_name[0] && strcmp(file_name, info.name) != 0) {
            set_status(record, CASE_ERROR,
                       "%s/input_%d.pb is named '%s' but graph input %d is '%s'", set_name, k,
                       file_name, k, info.name);
            return false;
        }
        input_names[k] = info.name;
        if (!retype_bfloat16(&inputs->items[k], info.dtype, record)) return false;
    }
    if (set_number == first_set) {
        /* The dtypes actually fed, now that bfloat16 data is typed as such. */
        record->input_types[0] = '\0';
        for (int k = 0; k < inputs->count; k++)
            append_text(record->input_types, sizeof record->input_types, "%s%s", k ? "," : "",
                        ember_dtype_name(ember_tensor_dtype(inputs->items[k])));
    }
    for (size_t k = 0; k < output_count; k++) {
        ember_value_info info;
        if (ember_model_output(model, k, &info) != EMBER_OK) {
            set_status(record, CASE_ERROR, "graph output %zu cannot be described", k);
            return false;
        }
        output_names[k] = info.name;
        if (!retype_bfloat16(&expected->items[k], info.dtype, record)) return false;
    }

    ember_error err = {0};
    ember_status status = ember_session_run(session, input_names,
                                            (const ember_tensor *const *)inputs->items,
                                            (size_t)inputs->count, output_names, output_count,
                                            outputs, &err);
    if (status != EMBER_OK) {
        char step[96];
        snprintf(step, sizeof step, "run (%s)", set_name);
        set_ember_failure(record, status, step, &err, false);
        return false;
    }
    for (size_t k = 0; k < output_count; k++) {
        compare_result result;
        if (!outputs[k]) {
            set_status(record, CASE_ERROR, "run (%s): output %zu '%s' was not returned",
                       set_name, k, output_names[k]);
            break;
        }
        if (compare_tensors(expected->items[k], outputs[k], options->rtol, options->atol,
                            &result))
            continue;
        record->failing_outputs++;
        if (!record->has_mismatch) {
            case_mismatch *m = &record->mismatch;
            record->has_mismatch = true;
            m->data_set = set_number;
            m->output_index = (int)k;
            snprintf(m->output_name, sizeof m->output_name, "%s", output_names[k]);
            snprintf(m->dtype, sizeof m->dtype, "%s",
                     ember_dtype_name(ember_tensor_dtype(expected->items[k])));
            m->compare = result;
        }
    }
    for (size_t k = 0; k < output_count; k++) ember_tensor_free(outputs[k]);
    return record->status != CASE_ERROR;
}

/* The operators of the model, for the per-operator table; false if it cannot be read. */
static bool scan_ops(const char *model_path, case_ops *ops) {
    memset(ops, 0, sizeof *ops);
    ember_op_scan *scan = NULL;
    ember_error err;
    if (ember_op_scan_file(model_path, &scan, &err) != EMBER_OK) return false;
    size_t count = ember_op_scan_count(scan);
    for (size_t i = 0; i < count; i++) {
        ember_op_use use;
        if (ember_op_scan_get(scan, i, &use) != EMBER_OK) break;
        if (ops->op_count == CASE_MAX_OPS) {
            ops->ops_truncated = true;
            break;
        }
        case_op *op = &ops->ops[ops->op_count++];
        snprintf(op->domain, sizeof op->domain, "%s", use.domain);
        snprintf(op->op_type, sizeof op->op_type, "%s", use.op_type);
        op->opset = use.opset;
    }
    ember_op_scan_free(scan);
    return true;
}

void case_run(const char *dir, const case_options *options, case_record *record) {
    case_record_init(record, options);
    char model_path[PATH_MAX];
    if (snprintf(model_path, sizeof model_path, "%s/model.onnx", dir) >= (int)sizeof model_path) {
        set_status(record, CASE_ERROR, "path too long: %s", dir);
        return;
    }
    record->scanned = scan_ops(model_path, &record->ops);

    int *set_numbers = malloc(sizeof *set_numbers * MAX_DATA_SETS);
    tensor_list *inputs = malloc(sizeof *inputs);
    tensor_list *expected = malloc(sizeof *expected);
    ember_model *model = NULL;
    ember_session *session = NULL;
    if (!set_numbers || !inputs || !expected) {
        set_status(record, CASE_ERROR, "out of memory");
        goto done;
    }
    inputs->count = expected->count = 0;
    int set_count = find_data_sets(dir, set_numbers, MAX_DATA_SETS, record);
    if (set_count < 0) goto done;
    record->data_set_count = set_count;
    if (set_count > 0) describe_inputs(dir, set_numbers[0], record);
    if (!file_exists(model_path)) {
        set_status(record, CASE_ERROR, "model.onnx is missing");
        goto done;
    }

    ember_error err = {0};
    ember_status status = ember_model_load_file(model_path, NULL, &model, &err);
    if (status != EMBER_OK) {
        set_ember_failure(record, status, "load", &err, true);
        goto done;
    }
    ember_session_options session_options;
    ember_session_options_init(&session_options);
    session_options.threads = options->threads;
    session_options.opt_level = options->opt_level;
    status = ember_session_create(model, &session_options, &session, &err);
    if (status != EMBER_OK) {
        set_ember_failure(record, status, "session", &err, true);
        goto done;
    }
    if (set_count == 0) {
        set_status(record, CASE_ERROR, "no test_data_set_* folder");
        goto done;
    }
    for (int s = 0; s < set_count; s++) {
        bool ok = run_data_set(dir, set_numbers[s], set_numbers[0], session, model, options,
                               record, inputs, expected);
        tensor_list_clear(inputs);
        tensor_list_clear(expected);
        if (!ok) goto done;
    }
    if (record->has_mismatch) {
        record->status = CASE_FAILED;
        describe_mismatch(record);
    }
done:
    if (inputs) tensor_list_clear(inputs);
    if (expected) tensor_list_clear(expected);
    ember_session_free(session);
    ember_model_free(model);
    free(set_numbers);
    free(inputs);
    free(expected);
}
