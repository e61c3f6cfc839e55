/* Finding test cases under folders and running them, each in its own forked process with a
 * timeout, several at once, for `ember test`. */
#ifndef EMBER_TOOLS_TEST_RUNNER_H
#define EMBER_TOOLS_TEST_RUNNER_H

#include <stdbool.h>
#include <stddef.h>

#include "test_case.h"

typedef struct test_case {
    char *name;               /* folder name, e.g. "test_add" */
    char *path;               /* folder path as found */
    case_options options;     /* tolerances may be overridden per case */
    bool tolerance_override;
    case_record record;
    double seconds;           /* wall time of the case */
} test_case;

typedef struct test_case_list {
    test_case *items;
    size_t count;
    size_t capacity;
} test_case_list;

/* Add the cases at `path`: the folder itself when it is a case (it holds model.onnx or a
 * test_data_set_* folder), otherwise the cases found in its subfolders, recursively, sorted by
 * name. Returns false with a message on stderr when `path` is not a readable folder. */
bool runner_discover(const char *path, test_case_list *list);
void runner_free_cases(test_case_list *list);

typedef struct runner_options {
    int jobs;                 /* cases at once */
    double timeout_seconds;   /* per case; <= 0 means none */
    bool isolate;             /* fork per case (false: run in this process, in order) */
    /* Called once per case as soon as it and every case before it are done, in list order. */
    void (*on_done)(const test_case *item, void *context);
    void *context;
} runner_options;

/* Run every case of `cases`, filling each record. Returns false only when the runner itself
 * cannot go on (fork or pipe failure); cases not run then end as errors. */
bool runner_run(test_case *cases, size_t count, const runner_options *options);

#endif
