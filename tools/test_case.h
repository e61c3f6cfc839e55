/* One ONNX backend test case for `ember test`: a folder with model.onnx and
 * test_data_set_N/{input_K.pb, output_K.pb}. case_run() runs it in the calling process and
 * fills a fixed-size record (plain bytes, so a forked child can send it through a pipe). */
#ifndef EMBER_TOOLS_TEST_CASE_H
#define EMBER_TOOLS_TEST_CASE_H

#include <stdbool.h>

#include "ember.h"
#include "test_compare.h"

typedef enum case_status {
    CASE_PASSED = 0,
    CASE_FAILED = 1,      /* ran, but an output differs */
    CASE_UNSUPPORTED = 2, /* EMBER_ERR_UNSUPPORTED from model load or session creation */
    CASE_ERROR = 3,       /* malformed case, load / run error, crash, timeout */
} case_status;

typedef struct case_options {
    double rtol;
    double atol;
    int threads;                /* per session */
    ember_opt_level opt_level;
} case_options;

/* The first output that does not match, in data-set then output order. */
typedef struct case_mismatch {
    int data_set;
    int output_index;
    char output_name[128];
    char dtype[16];
    compare_result compare;
} case_mismatch;

#define CASE_MESSAGE_SIZE 1536
#define CASE_MAX_OPS 64
#define CASE_NAME_SIZE 64

/* An operator the case's model uses (from ember_op_scan_file, which also reads models ember
 * cannot load, so that the per-operator table counts unsupported cases too). */
typedef struct case_op {
    char domain[CASE_NAME_SIZE]; /* "" for the default domain */
    char op_type[CASE_NAME_SIZE];
    int64_t opset; /* the model's opset for the domain (0 if not imported) */
} case_op;

typedef struct case_ops {
    int op_count;
    bool ops_truncated; /* more distinct operators than CASE_MAX_OPS */
    case_op ops[CASE_MAX_OPS]; /* distinct, in order of first use (subgraphs too) */
} case_ops;

typedef struct case_record {
    case_status status;
    char message[CASE_MESSAGE_SIZE]; /* empty when passed */
    double rtol;                     /* tolerance actually used */
    double atol;
    bool scanned;                    /* `ops` is valid */
    case_ops ops;
    char input_types[256];           /* dtypes of data set 0's inputs, comma separated */
    int data_set_count;
    int failing_outputs;             /* over all data sets */
    bool has_mismatch;               /* `mismatch` is valid (status == CASE_FAILED) */
    case_mismatch mismatch;
} case_record;

const char *case_status_name(case_status status); /* "passed", "failed", ... */

void case_record_init(case_record *record, const case_options *options);

/* Run the case in folder `dir` with `options` and fill `record` (initialized here). */
void case_run(const char *dir, const case_options *options, case_record *record);

#endif
