/* ember run MODEL -i NAME=FILE ... [-o DIR]: one run on tensors from files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "heads_cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: ember run MODEL [-i NAME=FILE]... [-o DIR] [--threads N] [--head H]\n\n"
               "Runs the model once. Inputs are .npy or ONNX TensorProto .pb files; a model\n"
               "with one input also takes a bare FILE. With -o DIR each output is written to\n"
               "DIR/NAME.npy (or NAME.pb with --pb). Prints a summary of every output.\n"
               "  -i NAME=FILE   input tensor (repeat for each input)\n"
               "  -o DIR         write outputs into DIR (must exist)\n"
               "  --pb           write outputs as TensorProto .pb instead of .npy\n"
               "  --threads N    threads for the run (default: all cores)\n"
               "  --head [OUTPUT=]H  apply a task head to the raw logits OUTPUT (default: the only\n"
               "                 output): binary[:T], multilabel[:T1,T2,...], multiclass or\n"
               "                 ordinal[:coral|corn[:T]]; adds OUTPUT_decision (binary: float\n"
               "                 0 / 1 like torch.round(sigmoid), multilabel: bool, multiclass\n"
               "                 and ordinal: int64)\n"
               "  --probabilities  with --head, also OUTPUT_probabilities\n"
               "  --no-batch-tiling  run every layer on the whole batch at once (tiling runs the\n"
               "                 leading CNN layers a few samples at a time; same results)\n");
}

static void summarize(const char *name, const ember_tensor *t) {
    if (ember_tensor_kind(t) == EMBER_KIND_OPTIONAL) {
        ember_tensor *v = NULL;
        if (!ember_optional_has_value(t) || ember_optional_get(t, &v, NULL) != EMBER_OK) {
            printf("%s: optional<%s>, empty\n", name, ember_dtype_name(ember_tensor_dtype(t)));
            return;
        }
        summarize(name, v);
        ember_tensor_free(v);
        return;
    }
    if (ember_tensor_kind(t) == EMBER_KIND_SEQUENCE) {
        size_t n = ember_sequence_length(t);
        printf("%s: sequence<%s> of %zu tensors\n", name, ember_dtype_name(ember_tensor_dtype(t)),
               n);
        for (size_t i = 0; i < n && i < 8; i++) {
            ember_tensor *item = NULL;
            char item_name[256];
            snprintf(item_name, sizeof item_name, "  %s[%zu]", name, i);
            if (ember_sequence_get(t, i, &item, NULL) == EMBER_OK) summarize(item_name, item);
            ember_tensor_free(item);
        }
        return;
    }
    printf("%s: %s[", name, ember_dtype_name(ember_tensor_dtype(t)));
    const int64_t *d = ember_tensor_dims(t);
    for (int i = 0; i < ember_tensor_rank(t); i++) printf("%s%lld", i ? ", " : "", (long long)d[i]);
    printf("]");
    int64_t n = ember_tensor_element_count(t);
    ember_dtype dt = ember_tensor_dtype(t);
    const void *p = ember_tensor_const_data(t);
    int64_t show = n < 8 ? n : 8;
    printf(" = [");
    for (int64_t i = 0; i < show; i++) {
        if (i) printf(", ");
        switch (dt) {
        case EMBER_FLOAT: printf("%.9g", ((const float *)p)[i]); break;
        case EMBER_DOUBLE: printf("%.17g", ((const double *)p)[i]); break;
        case EMBER_INT64: printf("%lld", (long long)((const int64_t *)p)[i]); break;
        case EMBER_INT32: printf("%d", ((const int32_t *)p)[i]); break;
        case EMBER_BOOL: printf("%s", ((const uint8_t *)p)[i] ? "true" : "false"); break;
        case EMBER_UINT8: printf("%u", ((const uint8_t *)p)[i]); break;
        case EMBER_INT8: printf("%d", ((const int8_t *)p)[i]); break;
        case EMBER_STRING: printf("\"%s\"", ember_tensor_string(t, (size_t)i)); break;
        default: printf("?"); break;
        }
    }
    printf("%s]", n > show ? ", ..." : "");
    if (dt == EMBER_FLOAT && n > 0) {
        const float *f = p;
        double mn = INFINITY, mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < n; i++) {
            if (f[i] < mn) mn = f[i];
            if (f[i] > mx) mx = f[i];
            sum += f[i];
        }
        printf("  min %.6g max %.6g mean %.6g", mn, mx, sum / (double)n);
    }
    printf("\n");
}

int cmd_run(int argc, char **argv) {
    const char *path = NULL, *outdir = NULL;
    const char *names[64], *files[64];
    int n_in = 0;
    long long threads = 0;
    bool pb = false, probabilities = false, batch_tiling = true;
    const char *head_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        bool bad = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (cli_flag_value(argc, argv, &i, "-i", &v, &bad) ||
            cli_flag_value(argc, argv, &i, "--input", &v, &bad)) {
            if (bad) return 2;
            if (n_in == 64) {
                cli_error("run: too many inputs");
                return 2;
            }
            const char *eq = strchr(v, '=');
            names[n_in] = eq ? strndup(v, (size_t)(eq - v)) : NULL;
            files[n_in++] = eq ? eq + 1 : v;
        } else if (cli_flag_value(argc, argv, &i, "-o", &v, &bad) ||
                   cli_flag_value(argc, argv, &i, "--output-dir", &v, &bad)) {
            if (bad) return 2;
            outdir = v;
        } else if (cli_flag_value(argc, argv, &i, "--threads", &v, &bad)) {
            if (bad || !cli_parse_int("--threads", v, &threads) || threads < 0) return 2;
        } else if (cli_flag_value(argc, argv, &i, "--head", &v, &bad)) {
            if (bad) return 2;
            head_arg = v;
        } else if (strcmp(argv[i], "--no-batch-tiling") == 0) {
            batch_tiling = false;
        } else if (strcmp(argv[i], "--probabilities") == 0) {
            probabilities = true;
        } else if (strcmp(argv[i], "--pb") == 0) {
            pb = true;
        } else if (argv[i][0] == '-') {
            cli_error("run: unknown option '%s'", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            cli_error("run: unexpected argument '%s'", argv[i]);
            return 2;
        }
    }
    if (!path) {
        cli_error("run: missing MODEL (see 'ember run --help')");
        return 2;
    }
    if (probabilities && !head_arg) {
        cli_error("run: --probabilities goes with --head");
        return 2;
    }
    int rc = 1;
    ember_error err;
    cli_head head = {0};
    ember_model *m = NULL;
    ember_session *s = NULL;
    ember_tensor *inputs[64] = {0};
    ember_tensor **outputs = NULL;
    const char **out_names = NULL;
    if (ember_model_load_file(path, NULL, &m, &err) != EMBER_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    for (int k = 0; k < n_in; k++) {
        if (!names[k]) {
            ember_value_info vi;
            if (n_in != 1 || ember_model_input_count(m) != 1) {
                cli_error("run: -i %s needs NAME=FILE (the model has %zu inputs)", files[k],
                          ember_model_input_count(m));
                rc = 2;
                goto done;
            }
            ember_model_input(m, 0, &vi);
            names[k] = strdup(vi.name);
        }
        /* Sequence and optional inputs are read from SequenceProto / OptionalProto files. */
        ember_value_kind kind = EMBER_KIND_TENSOR;
        for (size_t i = 0; i < ember_model_input_count(m); i++) {
            ember_value_info vi;
            if (ember_model_input(m, i, &vi) == EMBER_OK && strcmp(vi.name, names[k]) == 0)
                kind = vi.kind;
        }
        if (ember_value_load(files[k], kind, &inputs[k], &err) != EMBER_OK) {
            cli_error("%s", err.message);
            rc = 2;
            goto done;
        }
    }
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = (int)threads;
    o.batch_tiling = batch_tiling;
    if (head_arg) {
        /* "OUTPUT=SPEC" or "SPEC" (specs hold no '=') */
        const char *eq = strchr(head_arg, '='), *spec = eq ? eq + 1 : head_arg;
        char output[256] = "";
        ember_value_info vi;
        if (eq) {
            snprintf(output, sizeof output, "%.*s", (int)(eq - head_arg), head_arg);
        } else if (ember_model_output_count(m) == 1 && ember_model_output(m, 0, &vi) == EMBER_OK) {
            snprintf(output, sizeof output, "%s", vi.name);
        } else {
            cli_error("run: the model has %zu outputs: say which holds the logits with --head "
                      "OUTPUT=%s", ember_model_output_count(m), head_arg);
            rc = 2;
            goto done;
        }
        char msg[512];
        if (!cli_head_setup(&head, spec, output, probabilities, false, msg, sizeof msg)) {
            cli_error("%s", msg);
            rc = 2;
            goto done;
        }
        o.heads = &head.head;
        o.n_heads = 1;
    }
    if (ember_session_create(m, &o, &s, &err) != EMBER_OK) {
        cli_error("%s%s", strncmp(err.message, "head ", 5) == 0 ? "--" : "", err.message);
        if (head_arg && (err.code == EMBER_ERR_SHAPE || err.code == EMBER_ERR_INVALID_ARGUMENT))
            rc = 2;
        goto done;
    }
    /* the model's outputs, then the head's */
    size_t n_out = ember_session_output_count(s);
    outputs = calloc(n_out + 1, sizeof *outputs);
    out_names = calloc(n_out + 1, sizeof *out_names);
    if (!outputs || !out_names) {
        cli_error("out of memory");
        goto done;
    }
    for (size_t k = 0; k < n_out; k++) {
        ember_value_info vi;
        ember_session_output(s, k, &vi);
        out_names[k] = vi.name;
    }
    if (ember_session_run(s, names, (const ember_tensor *const *)inputs, (size_t)n_in, out_names,
                          n_out, outputs, &err) != EMBER_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    rc = 0;
    for (size_t k = 0; k < n_out; k++) {
        summarize(out_names[k], outputs[k]);
        if (outdir) {
            char file[4096];
            /* output names may contain '/', which would escape DIR */
            char safe[1024];
            snprintf(safe, sizeof safe, "%s", out_names[k]);
            for (char *c = safe; *c; c++)
                if (*c == '/') *c = '_';
            snprintf(file, sizeof file, "%s/%s.%s", outdir, safe, pb ? "pb" : "npy");
            if (ember_tensor_save(outputs[k], file, out_names[k], &err) != EMBER_OK) {
                cli_error("%s", err.message);
                rc = 1;
            }
        }
    }
done:
    for (int k = 0; k < n_in; k++) {
        ember_tensor_free(inputs[k]);
        free((char *)names[k]);
    }
    if (outputs)
        for (size_t k = 0; k < ember_session_output_count(s); k++) ember_tensor_free(outputs[k]);
    free(outputs);
    free(out_names);
    ember_session_free(s);
    cli_head_free(&head);
    ember_model_free(m);
    return rc;
}
