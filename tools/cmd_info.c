/* ember info MODEL: what a model needs and holds. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void print_value(const ember_value_info *v) {
    if (v->kind != EMBER_KIND_TENSOR) {
        bool seq = v->kind == EMBER_KIND_SEQUENCE || v->element_kind == EMBER_KIND_SEQUENCE;
        bool opt = v->kind == EMBER_KIND_OPTIONAL;
        printf("  %-24s %s%s%s%s%s\n", v->name, opt ? "optional<" : "", seq ? "sequence<" : "",
               ember_dtype_name(v->dtype), seq ? ">" : "", opt ? ">" : "");
        return;
    }
    printf("  %-24s %s[", v->name, ember_dtype_name(v->dtype));
    if (v->rank < 0) printf("?");
    for (int d = 0; d < v->rank; d++) {
        if (d) printf(", ");
        if (v->dims[d] >= 0) printf("%lld", (long long)v->dims[d]);
        else if (v->dim_names && v->dim_names[d]) printf("%s", v->dim_names[d]);
        else printf("?");
    }
    printf("]\n");
}

typedef struct op_count {
    const char *domain, *op;
    int count;
} op_count;

static int by_count(const void *a, const void *b) {
    const op_count *x = a, *y = b;
    if (x->count != y->count) return y->count - x->count;
    return strcmp(x->op, y->op);
}

int cmd_info(int argc, char **argv) {
    const char *path = NULL;
    bool optimized = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: ember info MODEL [--optimized]\n\n"
                   "Prints the model's IR version and opsets, inputs and outputs with shapes,\n"
                   "an operator histogram, parameter count and bytes, and warnings (lints).\n"
                   "  --optimized   also print the graph as it runs after optimization\n");
            return 0;
        }
        if (strcmp(argv[i], "--optimized") == 0) optimized = true;
        else if (argv[i][0] == '-') {
            cli_error("info: unknown option '%s'", argv[i]);
            return 2;
        } else if (!path) path = argv[i];
        else {
            cli_error("info: only one model at a time");
            return 2;
        }
    }
    if (!path) {
        cli_error("info: missing MODEL (see 'ember info --help')");
        return 2;
    }
    ember_error err;
    ember_model *m;
    if (ember_model_load_file(path, NULL, &m, &err) != EMBER_OK) {
        cli_error("%s", err.message);
        return 1;
    }
    printf("model:      %s\n", path);
    printf("ir version: %lld\n", (long long)ember_model_ir_version(m));
    printf("opset:      %lld\n", (long long)ember_model_opset(m, ""));
    printf("producer:   %s\n", ember_model_producer(m));
    printf("inputs:\n");
    for (size_t i = 0; i < ember_model_input_count(m); i++) {
        ember_value_info v;
        ember_model_input(m, i, &v);
        print_value(&v);
    }
    printf("outputs:\n");
    for (size_t i = 0; i < ember_model_output_count(m); i++) {
        ember_value_info v;
        ember_model_output(m, i, &v);
        print_value(&v);
    }
    size_t n = ember_model_node_count(m);
    op_count *ops = calloc(n + 1, sizeof *ops);
    size_t n_ops = 0;
    for (size_t i = 0; ops && i < n; i++) {
        ember_node_info ni;
        ember_model_node(m, i, &ni);
        size_t k = 0;
        while (k < n_ops && (strcmp(ops[k].op, ni.op_type) || strcmp(ops[k].domain, ni.domain)))
            k++;
        if (k == n_ops) ops[n_ops++] = (op_count){ni.domain, ni.op_type, 0};
        ops[k].count++;
    }
    if (ops) qsort(ops, n_ops, sizeof *ops, by_count);
    printf("operators:  %zu nodes\n", n);
    for (size_t k = 0; k < n_ops; k++)
        printf("  %-24s %d\n", ops[k].domain[0] ? ops[k].op : ops[k].op, ops[k].count);
    free(ops);
    unsigned long long pc = (unsigned long long)ember_model_parameter_count(m);
    unsigned long long pb = (unsigned long long)ember_model_parameter_bytes(m);
    printf("parameters: %llu (%llu bytes)\n", pc, pb);
    size_t nw = ember_model_warning_count(m);
    printf("warnings:   %zu\n", nw);
    for (size_t i = 0; i < nw; i++) printf("  warning: %s\n", ember_model_warning(m, i));
    int rc = 0;
    if (optimized) {
        ember_session_options o;
        ember_session_options_init(&o);
        o.threads = 1;
        ember_session *s;
        if (ember_session_create(m, &o, &s, &err) != EMBER_OK) {
            cli_error("%s", err.message);
            rc = 1;
        } else {
            size_t len = ember_session_describe(s, NULL, 0);
            char *buf = malloc(len + 1);
            if (buf) {
                ember_session_describe(s, buf, len + 1);
                printf("optimized graph:\n%s", buf);
                free(buf);
            }
            ember_session_free(s);
        }
    }
    ember_model_free(m);
    return rc;
}
