/* Standalone timing of single Conv nodes through the public API (not a test).
 *   build/bench/conv_gflops [threads] [name filter]
 * Prints GFLOP/s (2 * MACs / median time) for ResNet- and MobileNet-like layers. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "ember.h"
#include "onnx.pb-c.h"

typedef struct layer {
    const char *name;
    int64_t c, m, h, w, k, stride, pad, group;
    bool transpose; /* ConvTranspose (W is c x m/group x k x k; output_padding stride - 1) */
} layer;

static Onnx__ValueInfoProto *value_info(const char *name, const int64_t *dims, int rank) {
    static Onnx__ValueInfoProto vi[2];
    static Onnx__TypeProto tp[2];
    static Onnx__TypeProto__Tensor tt[2];
    static Onnx__TensorShapeProto sh[2];
    static Onnx__TensorShapeProto__Dimension d[2][4], *dp[2][4];
    int i = rank > 0 ? 0 : 1;
    onnx__value_info_proto__init(&vi[i]);
    onnx__type_proto__init(&tp[i]);
    onnx__type_proto__tensor__init(&tt[i]);
    onnx__tensor_shape_proto__init(&sh[i]);
    for (int j = 0; j < rank; j++) {
        onnx__tensor_shape_proto__dimension__init(&d[i][j]);
        d[i][j].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        d[i][j].dim_value = dims[j];
        dp[i][j] = &d[i][j];
    }
    sh[i].n_dim = (size_t)rank;
    sh[i].dim = dp[i];
    tt[i].has_elem_type = 1;
    tt[i].elem_type = 1;
    tt[i].shape = rank > 0 ? &sh[i] : NULL;
    tp[i].value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp[i].tensor_type = &tt[i];
    vi[i].name = (char *)name;
    vi[i].type = &tp[i];
    return &vi[i];
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Time a chain of `reps` copies of the layer (its output feeds the next copy; a layer with
 * c != m alternates with its mirror m -> c), so the per-run cost of returning the graph output
 * is spread over many convolutions. */
static void bench(const layer *l, int threads) {
    enum { REPS = 8 };
    int64_t nx = l->c * l->h * l->w;
    float *x = malloc(sizeof(float) * (size_t)nx);
    for (int64_t i = 0; i < nx; i++) x[i] = (float)((i * 104729) % 1000) / 1000.0f - 0.5f;
    Onnx__NodeProto nodes[REPS], *np[REPS];
    Onnx__TensorProto tws[REPS], tbs[REPS], *inits[2 * REPS];
    Onnx__AttributeProto at[REPS][4], *atp[REPS][4];
    int64_t out_pad[2] = {l->stride - 1, l->stride - 1};
    char names[REPS][4][16];
    char *ins[REPS][3], *outs[REPS][1];
    int64_t wdims[REPS][4], bdims[REPS][1];
    float *wbuf[REPS], *bbuf[REPS];
    int64_t pads[4] = {l->pad, l->pad, l->pad, l->pad}, strides[2] = {l->stride, l->stride};
    bool mirror = l->c != l->m;
    int n_nodes = l->stride == 1 && !l->transpose ? REPS : 1; /* strided: cannot feed itself */
    double flops = 0;
    int64_t h = l->h, w = l->w;
    for (int r = 0; r < n_nodes; r++) {
        bool back = mirror && (r % 2 == 1);
        int64_t cin = back ? l->m : l->c, cout = back ? l->c : l->m;
        int64_t group = l->group;
        int64_t *wd = wdims[r];
        wd[0] = cout, wd[1] = cin / group, wd[2] = back ? 1 : l->k, wd[3] = back ? 1 : l->k;
        if (l->transpose) wd[0] = cin, wd[1] = cout / group;
        int64_t nw = wd[0] * wd[1] * wd[2] * wd[3];
        wbuf[r] = malloc(sizeof(float) * (size_t)nw);
        bbuf[r] = malloc(sizeof(float) * (size_t)cout);
        /* Small weights keep activations bounded through the chain. */
        for (int64_t i = 0; i < nw; i++)
            wbuf[r][i] = ((float)((i * 7919) % 1000) / 1000.0f - 0.5f) / (float)(wd[1] * wd[2]);
        for (int64_t i = 0; i < cout; i++) bbuf[r][i] = 0.01f * (float)i;
        snprintf(names[r][0], 16, r == 0 ? "X" : "t%d", r - 1);
        snprintf(names[r][1], 16, "W%d", r);
        snprintf(names[r][2], 16, "B%d", r);
        snprintf(names[r][3], 16, r == n_nodes - 1 ? "Y" : "t%d", r);
        for (int k = 0; k < 4; k++) {
            onnx__attribute_proto__init(&at[r][k]);
            atp[r][k] = &at[r][k];
        }
        at[r][0].name = "pads", at[r][0].has_type = 1, at[r][0].type = 7, at[r][0].n_ints = 4;
        at[r][0].ints = back ? (int64_t[]){0, 0, 0, 0} : pads;
        at[r][1].name = "strides", at[r][1].has_type = 1, at[r][1].type = 7;
        at[r][1].n_ints = 2, at[r][1].ints = back ? (int64_t[]){1, 1} : strides;
        at[r][2].name = "group", at[r][2].has_type = 1, at[r][2].type = 2, at[r][2].has_i = 1;
        at[r][2].i = group;
        at[r][3].name = "output_padding", at[r][3].has_type = 1, at[r][3].type = 7;
        at[r][3].n_ints = 2, at[r][3].ints = out_pad;
        for (int k = 0; k < 3; k++) ins[r][k] = names[r][k];
        outs[r][0] = names[r][3];
        onnx__node_proto__init(&nodes[r]);
        nodes[r].op_type = l->transpose ? "ConvTranspose" : "Conv";
        nodes[r].n_input = 3, nodes[r].input = ins[r], nodes[r].n_output = 1;
        nodes[r].output = outs[r], nodes[r].n_attribute = l->transpose ? 4 : 3;
        nodes[r].attribute = atp[r];
        np[r] = &nodes[r];
        onnx__tensor_proto__init(&tws[r]);
        onnx__tensor_proto__init(&tbs[r]);
        tws[r].name = names[r][1], tws[r].n_dims = 4, tws[r].dims = wd;
        tws[r].has_data_type = 1, tws[r].data_type = 1;
        tws[r].n_float_data = (size_t)nw, tws[r].float_data = wbuf[r];
        bdims[r][0] = cout;
        tbs[r].name = names[r][2], tbs[r].n_dims = 1, tbs[r].dims = bdims[r];
        tbs[r].has_data_type = 1, tbs[r].data_type = 1;
        tbs[r].n_float_data = (size_t)cout, tbs[r].float_data = bbuf[r];
        inits[2 * r] = &tws[r];
        inits[2 * r + 1] = &tbs[r];
        int64_t k = wd[2], pad = back ? 0 : l->pad, st = back ? 1 : l->stride;
        int64_t oh = (h + 2 * pad - k) / st + 1, ow = (w + 2 * pad - k) / st + 1;
        if (l->transpose) {
            /* every input pixel meets every tap once */
            flops += 2.0 * (double)cin * (double)(cout / group) * (double)(k * k) * (double)(h * w);
            oh = st * (h - 1) + (st - 1) + k - 2 * pad, ow = st * (w - 1) + (st - 1) + k - 2 * pad;
        } else {
            flops += 2.0 * (double)cout * (double)wd[1] * (double)(k * k) * (double)(oh * ow);
        }
        h = oh, w = ow;
    }
    int64_t xd[4] = {1, l->c, l->h, l->w};
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__ValueInfoProto *gi[1] = {value_info("X", xd, 4)}, *go[1] = {value_info("Y", NULL, 0)};
    g.name = "bench", g.n_node = (size_t)n_nodes, g.node = np;
    g.n_initializer = 2 * (size_t)n_nodes, g.initializer = inits;
    g.n_input = 1, g.input = gi, g.n_output = 1, g.output = go;
    Onnx__OperatorSetIdProto os = ONNX__OPERATOR_SET_ID_PROTO__INIT, *osp = &os;
    os.domain = "", os.has_version = 1, os.version = 17;
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    m.has_ir_version = 1, m.ir_version = 8, m.n_opset_import = 1, m.opset_import = &osp;
    m.graph = &g;
    size_t size = onnx__model_proto__get_packed_size(&m);
    uint8_t *buf = malloc(size);
    onnx__model_proto__pack(&m, buf);

    ember_error err;
    ember_model *model = NULL;
    ember_session *s = NULL;
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = threads;
    if (ember_model_load_memory(buf, size, NULL, &model, &err) ||
        ember_session_create(model, &o, &s, &err)) {
        fprintf(stderr, "%s: %s\n", l->name, err.message);
        exit(1);
    }
    ember_tensor *xt = NULL;
    ember_tensor_wrap(EMBER_FLOAT, xd, 4, x, sizeof(float) * (size_t)nx, &xt, NULL);
    const char *in_name = "X", *out_name = "Y";
    double times[200];
    int reps = 0;
    double start = now();
    while (reps < 200 && (reps < 5 || now() - start < 1.0)) {
        ember_tensor *y = NULL;
        double t0 = now();
        if (ember_session_run(s, &in_name, (const ember_tensor *const *)&xt, 1, &out_name, 1, &y,
                              &err)) {
            fprintf(stderr, "%s: %s\n", l->name, err.message);
            exit(1);
        }
        times[reps++] = now() - t0;
        ember_tensor_free(y);
    }
    qsort(times, (size_t)reps, sizeof times[0], cmp);
    /* The best run is the least disturbed by other processes; the median is shown too. */
    double best = times[0], med = times[reps / 2];
    printf("%-34s threads=%d  %7.3f ms/conv  best %6.1f GFLOP/s  median %6.1f  (chain of %d)\n",
           l->name, threads, best * 1e3 / n_nodes, flops / best * 1e-9, flops / med * 1e-9,
           n_nodes);
    ember_tensor_free(xt);
    ember_session_free(s);
    ember_model_free(model);
    for (int r = 0; r < n_nodes; r++) free(wbuf[r]), free(bbuf[r]);
    free(buf), free(x);
}

int main(int argc, char **argv) {
    /* One BLAS thread per call: ember spreads the work over its own threads. Set
     * EMBER_BENCH_BLAS_DEFAULT=1 to keep OpenBLAS's own thread count (to see the difference). */
    if (!getenv("EMBER_BENCH_BLAS_DEFAULT")) openblas_set_num_threads(1);
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    static const layer layers[] = {
        {"3x3 64->64 @56x56 (ResNet conv2)", 64, 64, 56, 56, 3, 1, 1, 1, false},
        {"3x3 128->128 @28x28", 128, 128, 28, 28, 3, 1, 1, 1, false},
        {"3x3 256->256 @14x14", 256, 256, 14, 14, 3, 1, 1, 1, false},
        {"3x3 512->512 @7x7", 512, 512, 7, 7, 3, 1, 1, 1, false},
        {"7x7/2 3->64 @224x224 (stem)", 3, 64, 224, 224, 7, 2, 3, 1, false},
        {"1x1 256->64 / 64->256 @56x56", 256, 64, 56, 56, 1, 1, 0, 1, false},
        {"3x3 64->128 / 1x1 128->64 @28x28", 64, 128, 28, 28, 3, 1, 1, 1, false},
        {"1x1 32->16 @112x112 (MobileNetV2)", 32, 16, 112, 112, 1, 1, 0, 1, false},
        {"1x1 16->96 @112x112", 16, 96, 112, 112, 1, 1, 0, 1, false},
        {"1x1 144->24 @56x56", 144, 24, 56, 56, 1, 1, 0, 1, false},
        {"1x1 160->960 @7x7", 160, 960, 7, 7, 1, 1, 0, 1, false},
        {"dw 3x3 144 @56x56 (MobileNetV2)", 144, 144, 56, 56, 3, 1, 1, 144, false},
        {"dw 3x3/2 144 @56x56", 144, 144, 56, 56, 3, 2, 1, 144, false},
        {"convT 4x4/2 64->32 @28x28", 64, 32, 28, 28, 4, 2, 1, 1, true},
        {"convT 3x3/2 128->64 @14x14", 128, 64, 14, 14, 3, 2, 1, 1, true},
    };
    const char *filter = argc > 2 ? argv[2] : NULL;
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (!filter || strstr(layers[i].name, filter)) bench(&layers[i], threads);
    return 0;
}
