/* Conv / ConvTranspose / Gemm / MatMul / Einsum fast paths against naive reference loops on
 * random data. Each case builds a one-node ONNX model in memory (protobuf-c), loads it through
 * the public API and runs it with 1 and 2 threads. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "model_builder.h"
#include "onnx.pb-c.h"

/* ---- model building ---- */

typedef struct tin {
    const char *name; /* "" = omitted optional input */
    int rank;
    int64_t dims[8];
    const float *data;
    bool constant;        /* initializer instead of graph input */
    const int32_t *idata; /* int32 tensor instead of float (data unused) */
} tin;

/* While set, build_model declares its graph inputs without a shape (run_case of a case with
 * unknown_shape), so kernels see no shapes at session creation. */
static bool inputs_unshaped = false;

typedef struct tattr {
    const char *name;
    int type; /* 'i', 'f', 's', 'I' (ints), 'F' (floats) */
    int64_t i;
    float f;
    const char *s;
    int n;
    const int64_t *ints;
    const float *floats;
} tattr;

static int64_t numel(const tin *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

/* Serialize a one-node model; returns malloc'ed bytes. */
static uint8_t *build_model(const char *op, const char *domain, const tattr *attrs, int n_attrs,
                            const tin *ins, int n_ins, int n_outs, size_t *size) {
    builder b = {0}; /* the value infos */
    Onnx__NodeProto node = ONNX__NODE_PROTO__INIT;
    char *in_names[8];
    char *out_names[4] = {"Y", "Y1", "Y2", "Y3"};
    for (int i = 0; i < n_ins; i++) in_names[i] = (char *)ins[i].name;
    node.n_input = (size_t)n_ins;
    node.input = in_names;
    node.n_output = (size_t)n_outs;
    node.output = out_names;
    node.op_type = (char *)op;
    node.domain = (char *)domain;
    Onnx__AttributeProto ap[16], *app[16];
    for (int i = 0; i < n_attrs; i++) {
        onnx__attribute_proto__init(&ap[i]);
        ap[i].name = (char *)attrs[i].name;
        ap[i].has_type = 1;
        switch (attrs[i].type) {
        case 'i':
            ap[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT;
            ap[i].has_i = 1;
            ap[i].i = attrs[i].i;
            break;
        case 'f':
            ap[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
            ap[i].has_f = 1;
            ap[i].f = attrs[i].f;
            break;
        case 's':
            ap[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
            ap[i].has_s = 1;
            ap[i].s.data = (uint8_t *)attrs[i].s;
            ap[i].s.len = strlen(attrs[i].s);
            break;
        case 'I':
            ap[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
            ap[i].n_ints = (size_t)attrs[i].n;
            ap[i].ints = (int64_t *)attrs[i].ints;
            break;
        default:
            ap[i].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
            ap[i].n_floats = (size_t)attrs[i].n;
            ap[i].floats = (float *)attrs[i].floats;
            break;
        }
        app[i] = &ap[i];
    }
    node.n_attribute = (size_t)n_attrs;
    node.attribute = app;

    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    Onnx__NodeProto *nodes[1] = {&node};
    graph.n_node = 1;
    graph.node = nodes;
    graph.name = "g";
    Onnx__ValueInfoProto *gin[8];
    Onnx__TensorProto tp[8], *tpp[8];
    int n_gin = 0, n_init = 0;
    for (int i = 0; i < n_ins; i++) {
        if (!ins[i].name[0]) continue;
        if (ins[i].constant) {
            onnx__tensor_proto__init(&tp[n_init]);
            tp[n_init].name = (char *)ins[i].name;
            tp[n_init].n_dims = (size_t)ins[i].rank;
            tp[n_init].dims = (int64_t *)ins[i].dims;
            tp[n_init].has_data_type = 1;
            if (ins[i].idata) {
                tp[n_init].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT32;
                tp[n_init].n_int32_data = (size_t)numel(&ins[i]);
                tp[n_init].int32_data = (int32_t *)ins[i].idata;
            } else {
                tp[n_init].data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
                tp[n_init].n_float_data = (size_t)numel(&ins[i]);
                tp[n_init].float_data = (float *)ins[i].data;
            }
            tpp[n_init] = &tp[n_init];
            n_init++;
        } else {
            gin[n_gin++] = vi(&b, ins[i].name, ins[i].idata ? EMBER_INT32 : EMBER_FLOAT,
                              inputs_unshaped ? -1 : ins[i].rank, ins[i].dims);
        }
    }
    graph.n_input = (size_t)n_gin;
    graph.input = gin;
    graph.n_initializer = (size_t)n_init;
    graph.initializer = tpp;
    Onnx__ValueInfoProto *gout[4];
    for (int i = 0; i < n_outs; i++) gout[i] = vi(&b, out_names[i], EMBER_FLOAT, -1, NULL);
    graph.n_output = (size_t)n_outs;
    graph.output = gout;

    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    model.has_ir_version = 1;
    model.ir_version = 8;
    Onnx__OperatorSetIdProto os[2] = {ONNX__OPERATOR_SET_ID_PROTO__INIT,
                                      ONNX__OPERATOR_SET_ID_PROTO__INIT};
    Onnx__OperatorSetIdProto *osp[2] = {&os[0], &os[1]};
    os[0].domain = "";
    os[0].has_version = 1;
    os[0].version = 17;
    os[1].domain = "ai.ember";
    os[1].has_version = 1;
    os[1].version = 1;
    model.n_opset_import = 2;
    model.opset_import = osp;
    model.graph = &graph;
    *size = onnx__model_proto__get_packed_size(&model);
    uint8_t *buf = malloc(*size);
    onnx__model_proto__pack(&model, buf);
    b_free(&b);
    return buf;
}

/* Build, load, run; returns the status and (on success) the n_outs output tensors. */
static ember_status run_multi(const char *op, const char *domain, const tattr *attrs, int n_attrs,
                              const tin *ins, int n_ins, int n_outs, int threads,
                              ember_tensor **out, ember_error *err) {
    size_t size;
    uint8_t *bytes = build_model(op, domain, attrs, n_attrs, ins, n_ins, n_outs, &size);
    ember_model *m = NULL;
    ember_session *s = NULL;
    for (int i = 0; i < n_outs; i++) out[i] = NULL;
    ember_status st = ember_model_load_memory(bytes, size, NULL, &m, err);
    free(bytes);
    if (st != EMBER_OK) return st;
    ember_session_options o;
    ember_session_options_init(&o);
    o.threads = threads;
    st = ember_session_create(m, &o, &s, err);
    if (st == EMBER_OK) {
        const char *names[8];
        ember_tensor *tensors[8] = {0};
        int n = 0;
        for (int i = 0; i < n_ins; i++) {
            if (!ins[i].name[0] || ins[i].constant) continue;
            void *data = ins[i].idata ? (void *)ins[i].idata : (void *)ins[i].data;
            cr_assert_eq(ember_tensor_wrap(ins[i].idata ? EMBER_INT32 : EMBER_FLOAT, ins[i].dims,
                                           ins[i].rank, data, (size_t)numel(&ins[i]) * 4,
                                           &tensors[n], NULL),
                         EMBER_OK);
            names[n++] = ins[i].name;
        }
        const char *out_names[4] = {"Y", "Y1", "Y2", "Y3"};
        st = ember_session_run(s, names, (const ember_tensor *const *)tensors, (size_t)n, out_names,
                               (size_t)n_outs, out, err);
        for (int i = 0; i < n; i++) ember_tensor_free(tensors[i]);
        ember_session_free(s);
    }
    ember_model_free(m);
    return st;
}

static ember_status run_single(const char *op, const char *domain, const tattr *attrs, int n_attrs,
                               const tin *ins, int n_ins, int threads, ember_tensor **out,
                               ember_error *err) {
    return run_multi(op, domain, attrs, n_attrs, ins, n_ins, 1, threads, out, err);
}

/* ---- data and comparison ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float *abs_floats(const float *v, int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = fabsf(v[i]);
    return p;
}

static float *random_floats(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(rng_state >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
    }
    return p;
}

/* Each element within 1e-4 + 1e-4 |want|, or with mag (the sums of the products'
 * magnitudes), within tol_mag * mag + 1e-6: the rounding bound of Winograd F(4x4, 3x3),
 * whose transforms amplify rounding with the size of the sums, not of the result. */
static void expect_within(const ember_tensor *got, const double *want, const double *mag,
                          double tol_mag, const int64_t *dims, int rank, const char *what) {
    cr_assert_eq(ember_tensor_rank(got), rank, "%s: rank %d, want %d", what, ember_tensor_rank(got),
                 rank);
    for (int i = 0; i < rank; i++)
        cr_assert_eq(ember_tensor_dims(got)[i], dims[i], "%s: dim %d is %lld, want %lld", what, i,
                     (long long)ember_tensor_dims(got)[i], (long long)dims[i]);
    const float *g = ember_tensor_const_data(got);
    int64_t n = ember_tensor_element_count(got);
    for (int64_t i = 0; i < n; i++) {
        const double tol = mag ? tol_mag * mag[i] + 1e-6 : 1e-4 + 1e-4 * fabs(want[i]);
        cr_assert(fabs(g[i] - want[i]) <= tol, "%s: element %lld is %.7g, want %.7g (within %.3g)",
                  what, (long long)i, g[i], want[i], tol);
    }
}

static void expect_close(const ember_tensor *got, const double *want, const int64_t *dims, int rank,
                         const char *what) {
    expect_within(got, want, NULL, 0, dims, rank, what);
}

/* ---- naive references ---- */

typedef struct conv_case {
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], op[3];
    int64_t out[3];     /* filled by the reference */
    bool unknown_shape; /* X declared without a shape (nothing shaped at session creation) */
    double tol_mag;     /* > 0: compare within tol_mag x the products' magnitudes (expect_close) */
} conv_case;

/* A 2-D 3x3 stride-1 convolution (one group) of n images, c -> m channels, on h x w planes,
 * padded top, left, bottom, right: the shape of most Winograd and packed-GEMM cases. */
static conv_case conv3x3(int64_t n, int64_t c, int64_t m, int64_t h, int64_t w, int64_t top,
                         int64_t left, int64_t bottom, int64_t right) {
    return (conv_case){.nsp = 2,
                       .n = n,
                       .c = c,
                       .m = m,
                       .group = 1,
                       .in = {h, w},
                       .k = {3, 3},
                       .s = {1, 1},
                       .d = {1, 1},
                       .pb = {top, left},
                       .pe = {bottom, right}};
}

/* Forward conv in double; spatial dims padded to 3 (leading 1s). */
static double *ref_conv(conv_case *t, const float *x, const float *w, const float *b,
                        const float *z, int act) {
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
    int64_t pb[3] = {0, 0, 0}, out[3] = {1, 1, 1};
    for (int i = 0; i < t->nsp; i++) {
        int j = 3 - t->nsp + i;
        in[j] = t->in[i], k[j] = t->k[i], s[j] = t->s[i], d[j] = t->d[i], pb[j] = t->pb[i];
        out[j] = (t->in[i] + t->pb[i] + t->pe[i] - ((t->k[i] - 1) * t->d[i] + 1)) / t->s[i] + 1;
        t->out[i] = out[j];
    }
    int64_t cg = t->c / t->group, mg = t->m / t->group;
    int64_t osz = out[0] * out[1] * out[2], isz = in[0] * in[1] * in[2];
    double *y = calloc((size_t)(t->n * t->m * osz), sizeof(double));
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t m = 0; m < t->m; m++) {
            int64_t grp = m / mg;
            for (int64_t oz = 0; oz < out[0]; oz++)
                for (int64_t oy = 0; oy < out[1]; oy++)
                    for (int64_t ox = 0; ox < out[2]; ox++) {
                        double acc = b ? b[m] : 0.0;
                        for (int64_t c = 0; c < cg; c++)
                            for (int64_t kz = 0; kz < k[0]; kz++)
                                for (int64_t ky = 0; ky < k[1]; ky++)
                                    for (int64_t kx = 0; kx < k[2]; kx++) {
                                        int64_t iz = oz * s[0] - pb[0] + kz * d[0];
                                        int64_t iy = oy * s[1] - pb[1] + ky * d[1];
                                        int64_t ix = ox * s[2] - pb[2] + kx * d[2];
                                        if (iz < 0 || iz >= in[0] || iy < 0 || iy >= in[1] ||
                                            ix < 0 || ix >= in[2])
                                            continue;
                                        double xv = x[(n * t->c + grp * cg + c) * isz +
                                                      (iz * in[1] + iy) * in[2] + ix];
                                        double wv = w[((m * cg + c) * k[0] + kz) * k[1] * k[2] +
                                                      ky * k[2] + kx];
                                        acc += xv * wv;
                                    }
                        int64_t yi = (n * t->m + m) * osz + (oz * out[1] + oy) * out[2] + ox;
                        if (z) acc += z[yi];
                        if (act == 1 && acc < 0) acc = 0;
                        y[yi] = acc;
                    }
        }
    return y;
}

/* ConvTranspose by scattering every input element (the definition). W is (C, M/g, k...). */
static double *ref_convt(conv_case *t, const float *x, const float *w, const float *b) {
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
    int64_t pb[3] = {0, 0, 0}, out[3] = {1, 1, 1};
    for (int i = 0; i < t->nsp; i++) {
        int j = 3 - t->nsp + i;
        in[j] = t->in[i], k[j] = t->k[i], s[j] = t->s[i], d[j] = t->d[i], pb[j] = t->pb[i];
        out[j] = s[j] * (in[j] - 1) + t->op[i] + (k[j] - 1) * d[j] + 1 - t->pb[i] - t->pe[i];
        t->out[i] = out[j];
    }
    int64_t cg = t->c / t->group, mg = t->m / t->group;
    int64_t osz = out[0] * out[1] * out[2], isz = in[0] * in[1] * in[2];
    double *y = calloc((size_t)(t->n * t->m * osz), sizeof(double));
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t m = 0; m < t->m; m++)
            for (int64_t q = 0; q < osz; q++) y[(n * t->m + m) * osz + q] = b ? b[m] : 0.0;
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t c = 0; c < t->c; c++) {
            int64_t grp = c / cg;
            for (int64_t iz = 0; iz < in[0]; iz++)
                for (int64_t iy = 0; iy < in[1]; iy++)
                    for (int64_t ix = 0; ix < in[2]; ix++) {
                        double xv = x[(n * t->c + c) * isz + (iz * in[1] + iy) * in[2] + ix];
                        for (int64_t ml = 0; ml < mg; ml++)
                            for (int64_t kz = 0; kz < k[0]; kz++)
                                for (int64_t ky = 0; ky < k[1]; ky++)
                                    for (int64_t kx = 0; kx < k[2]; kx++) {
                                        int64_t oz = iz * s[0] - pb[0] + kz * d[0];
                                        int64_t oy = iy * s[1] - pb[1] + ky * d[1];
                                        int64_t ox = ix * s[2] - pb[2] + kx * d[2];
                                        if (oz < 0 || oz >= out[0] || oy < 0 || oy >= out[1] ||
                                            ox < 0 || ox >= out[2])
                                            continue;
                                        double wv = w[((c * mg + ml) * k[0] + kz) * k[1] * k[2] +
                                                      ky * k[2] + kx];
                                        int64_t m = grp * mg + ml;
                                        y[(n * t->m + m) * osz + (oz * out[1] + oy) * out[2] +
                                          ox] += xv * wv;
                                    }
                    }
        }
    return y;
}

/* Run Conv (or FusedConv / ConvTranspose) for a case and compare with the reference. */
/* X and W of a case (W constant or not), with dims; data filled by the caller. */
static void case_inputs(const conv_case *t, bool transpose, bool const_w, tin *x, tin *w) {
    *x = (tin){"X", t->nsp + 2, {t->n, t->c}, NULL, false, NULL};
    *w = (tin){"W", t->nsp + 2, {0}, NULL, const_w, NULL};
    w->dims[0] = transpose ? t->c : t->m;
    w->dims[1] = transpose ? t->m / t->group : t->c / t->group;
    for (int i = 0; i < t->nsp; i++) {
        x->dims[2 + i] = t->in[i];
        w->dims[2 + i] = t->k[i];
    }
}

/* Run one Conv / ConvTranspose / FusedConv (with_z: Z and Relu) of case t on the given data. */
static ember_status run_case(const conv_case *t, bool transpose, bool with_z, bool const_w,
                             float *xd, float *wd, float *bd, float *zd, const int64_t *ydims,
                             int threads, ember_tensor **y, ember_error *err) {
    const int nsp = t->nsp;
    tin x, w;
    case_inputs(t, transpose, const_w, &x, &w);
    x.data = xd;
    w.data = wd;
    int64_t pads[6], strides[3], dil[3], ks[3], op[3];
    for (int i = 0; i < nsp; i++) {
        pads[i] = t->pb[i];
        pads[nsp + i] = t->pe[i];
        strides[i] = t->s[i];
        dil[i] = t->d[i];
        ks[i] = t->k[i];
        op[i] = t->op[i];
    }
    tin bt = {bd ? "B" : "", 1, {t->m}, bd, true, NULL};
    tin z = {"Z", nsp + 2, {0}, zd, false, NULL};
    if (ydims) memcpy(z.dims, ydims, (size_t)(nsp + 2) * sizeof(int64_t));
    tattr attrs[] = {
        {"group", 'i', t->group, 0, NULL, 0, NULL, NULL},
        {"pads", 'I', 0, 0, NULL, 2 * nsp, pads, NULL},
        {"strides", 'I', 0, 0, NULL, nsp, strides, NULL},
        {"dilations", 'I', 0, 0, NULL, nsp, dil, NULL},
        {"kernel_shape", 'I', 0, 0, NULL, nsp, ks, NULL},
        {"output_padding", 'I', 0, 0, NULL, nsp, op, NULL},
    };
    if (with_z) attrs[5] = (tattr){"activation", 's', 0, 0, "Relu", 0, NULL, NULL};
    int n_attrs = transpose || with_z ? 6 : 5;
    tin ins[4] = {x, w, bt, z};
    inputs_unshaped = t->unknown_shape;
    ember_status st =
        run_single(transpose ? "ConvTranspose"
                   : with_z  ? "FusedConv"
                             : "Conv",
                   with_z ? "ai.ember" : "", attrs, n_attrs, ins, with_z ? 4 : 3, threads, y, err);
    inputs_unshaped = false;
    return st;
}

static void check_conv(conv_case t, bool transpose, bool bias, bool with_z, bool const_w,
                       const char *what) {
    const int nsp = t.nsp;
    tin x, w;
    case_inputs(&t, transpose, const_w, &x, &w);
    float *xd = random_floats(numel(&x)), *wd = random_floats(numel(&w));
    float *bd = random_floats(t.m);
    conv_case r = t;
    double *want = transpose ? ref_convt(&r, xd, wd, bias ? bd : NULL) : NULL;
    int64_t ydims[5] = {t.n, t.m};
    for (int i = 0; i < nsp; i++)
        ydims[2 + i] =
            transpose ? r.out[i]
                      : (t.in[i] + t.pb[i] + t.pe[i] - ((t.k[i] - 1) * t.d[i] + 1)) / t.s[i] + 1;
    int64_t ny = t.n * t.m;
    for (int i = 0; i < nsp; i++) ny *= ydims[2 + i];
    float *zd = random_floats(ny);
    if (!transpose) want = ref_conv(&r, xd, wd, bias ? bd : NULL, with_z ? zd : NULL, with_z);
    double *mag = NULL;
    if (t.tol_mag > 0 && !transpose) {
        float *ax = abs_floats(xd, numel(&x)), *aw = abs_floats(wd, numel(&w)),
              *ab = abs_floats(bd, t.m), *az = abs_floats(zd, ny);
        conv_case rm = t;
        mag = ref_conv(&rm, ax, aw, bias ? ab : NULL, with_z ? az : NULL, 0);
        free(ax), free(aw), free(ab), free(az);
    }
    for (int threads = 1; threads <= 2; threads++) {
        ember_tensor *y = NULL;
        ember_error err = {0};
        ember_status st = run_case(&t, transpose, with_z, const_w, xd, wd, bias ? bd : NULL, zd,
                                   ydims, threads, &y, &err);
        cr_assert_eq(st, EMBER_OK, "%s: %s", what, err.message);
        expect_within(y, want, mag, t.tol_mag, ydims, nsp + 2, what);
        ember_tensor_free(y);
    }
    free(xd);
    free(wd);
    free(bd);
    free(zd);
    free(want);
    free(mag);
}

/* Each image of a batch gets the same bits as that image run alone (batch tiling relies on
 * it), at 1 and 3 threads. */
static void expect_batch_independent(conv_case t, bool transpose, const char *what) {
    tin x, w;
    case_inputs(&t, transpose, true, &x, &w);
    float *xd = random_floats(numel(&x)), *wd = random_floats(numel(&w));
    float *bd = random_floats(t.m);
    const int64_t image = numel(&x) / t.n;
    for (int threads = 1; threads <= 3; threads += 2) {
        ember_tensor *all = NULL;
        ember_error err = {0};
        cr_assert_eq(
            run_case(&t, transpose, false, true, xd, wd, bd, NULL, NULL, threads, &all, &err),
            EMBER_OK, "%s: %s", what, err.message);
        const size_t out_bytes = ember_tensor_byte_size(all) / (size_t)t.n;
        conv_case one = t;
        one.n = 1;
        for (int64_t i = 0; i<t.n; i += t.n> 2 ? t.n / 2 : 1) {
            ember_tensor *y = NULL;
            cr_assert_eq(run_case(&one, transpose, false, true, xd + i * image, wd, bd, NULL, NULL,
                                  threads, &y, &err),
                         EMBER_OK, "%s: %s", what, err.message);
            cr_assert_eq(ember_tensor_byte_size(y), out_bytes);
            cr_assert(memcmp(ember_tensor_data(y),
                             (const char *)ember_tensor_data(all) + (size_t)i * out_bytes,
                             out_bytes) == 0,
                      "%s: image %lld alone differs from in the batch (%d threads)", what,
                      (long long)i, threads);
            ember_tensor_free(y);
        }
        ember_tensor_free(all);
    }
    free(xd);
    free(wd);
    free(bd);
}

static void describe_case(char *buf, size_t size, const char *what, int iter, const conv_case *t);

/* ---- Conv ---- */

Test(conv, pointwise_groups) {
    conv_case t = {.nsp = 2,
                   .n = 2,
                   .c = 8,
                   .m = 6,
                   .group = 2,
                   .in = {13, 11},
                   .k = {1, 1},
                   .s = {1, 1},
                   .d = {1, 1}};
    check_conv(t, false, true, false, true, "1x1 grouped");
    t.group = 1;
    t.in[0] = 40;
    t.in[1] = 41; /* several column chunks */
    check_conv(t, false, true, false, false, "1x1 wide");
    check_conv(t, false, false, true, true, "1x1 + Z + Relu, no bias");
}

Test(conv, depthwise) {
    conv_case t = {.nsp = 2,
                   .n = 1,
                   .c = 8,
                   .m = 8,
                   .group = 8,
                   .in = {20, 23},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    check_conv(t, false, true, false, true, "depthwise 3x3 s1");
    conv_case u = {.nsp = 2,
                   .n = 2,
                   .c = 6,
                   .m = 6,
                   .group = 6,
                   .in = {17, 19},
                   .k = {3, 5},
                   .s = {2, 3},
                   .d = {2, 1},
                   .pb = {2, 0},
                   .pe = {1, 3}};
    check_conv(u, false, false, false, true, "depthwise strided dilated asymmetric");
    u.s[1] = 2;
    check_conv(u, false, true, true, true, "depthwise + Z + Relu");
    /* Rows of 32+ columns are computed in place, narrower ones through the wide pass. */
    conv_case v = {.nsp = 2,
                   .n = 2,
                   .c = 5,
                   .m = 5,
                   .group = 5,
                   .in = {34, 40},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    check_conv(v, false, true, true, true, "depthwise wide rows + Z");
    conv_case w = {.nsp = 2,
                   .n = 1,
                   .c = 4,
                   .m = 4,
                   .group = 4,
                   .in = {21, 50},
                   .k = {5, 4},
                   .s = {1, 1},
                   .d = {2, 2},
                   .pb = {4, 3},
                   .pe = {4, 3}};
    check_conv(w, false, true, false, true, "depthwise 5x4 dilated");
    w.in[1] = 12;
    check_conv(w, false, false, false, true, "depthwise 5x4 dilated narrow");
    conv_case x = {.nsp = 1,
                   .n = 2,
                   .c = 6,
                   .m = 6,
                   .group = 6,
                   .in = {100},
                   .k = {7},
                   .s = {1},
                   .d = {1},
                   .pb = {3},
                   .pe = {3}};
    check_conv(x, false, true, false, true, "depthwise 1-D");
    x.s[0] = 2;
    x.d[0] = 3;
    check_conv(x, false, true, true, true, "depthwise 1-D strided dilated + Z");
}

/* The AVX-512 3x3 depthwise kernel (ops/conv_dw.c) reads planes in place with masked loads:
 * every row width around the 16-lane vector (1, 7, 15, 16, 17, 33, 70), leading / trailing
 * pads 0..2, strides 1 and 2 across and 1..3 down, planes small enough for the flat path
 * (OW == W, up to 1024 outputs) and wider ones, with and without Z + Relu. */
Test(conv, depthwise_3x3_geometries) {
    static const int64_t widths[] = {1, 2, 3, 7, 14, 15, 16, 17, 31, 33, 70};
    static const int64_t heights[] = {1, 3, 7, 14, 5};
    static const int64_t pads[][2] = {{0, 0}, {1, 1}, {0, 1}, {2, 2}, {1, 0}, {2, 0}};
    static const int64_t strides[][2] = {{1, 1}, {2, 2}, {3, 1}, {1, 2}};
    int iter = 0;
    for (size_t wi = 0; wi < sizeof widths / sizeof *widths; wi++)
        for (size_t pi = 0; pi < sizeof pads / sizeof *pads; pi++)
            for (size_t si = 0; si < sizeof strides / sizeof *strides; si++, iter++) {
                conv_case t = {.nsp = 2,
                               .n = 2,
                               .c = 3,
                               .m = 3,
                               .group = 3,
                               .in = {heights[iter % 5], widths[wi]},
                               .k = {3, 3},
                               .s = {strides[si][0], strides[si][1]},
                               .d = {1, 1},
                               .pb = {pads[(pi + 1) % 6][0], pads[pi][0]},
                               .pe = {pads[(pi + 1) % 6][1], pads[pi][1]}};
                if (t.in[0] + t.pb[0] + t.pe[0] < 3 || t.in[1] + t.pb[1] + t.pe[1] < 3) continue;
                char what[256];
                describe_case(what, sizeof what, "depthwise 3x3", iter, &t);
                check_conv(t, false, iter % 3 != 0, iter % 2 == 0, true, what);
            }
}

/* The fused activations of the FusedConv tests, by index: LeakyRelu 0.1, Clip [-0.5, 0.7],
 * Sigmoid, Tanh, HardSigmoid (0.3, 0.4), Relu. */
static double fused_act_ref(int a, double v) {
    switch (a) {
    case 0:
        return v < 0 ? 0.1 * v : v;
    case 1:
        return v < -0.5 ? -0.5 : v > 0.7 ? 0.7 : v;
    case 2:
        return 1 / (1 + exp(-v));
    case 3:
        return tanh(v);
    case 4:
        return fmin(1, fmax(0, 0.3 * v + 0.4));
    default:
        return v < 0 ? 0 : v;
    }
}

/* FusedConv with each activation against the double reference: C -> M channels in `group`
 * groups, H x W input, stride s, pads 1. */
static void check_fused_activations(int64_t C, int64_t M, int64_t group, int64_t H, int64_t W,
                                    int64_t s) {
    const char *names[] = {"LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "Relu"};
    const float params[][2] = {{0.1f, 0}, {-0.5f, 0.7f}, {0, 0}, {0, 0}, {0.3f, 0.4f}, {0, 0}};
    const int n_params[] = {1, 2, 0, 0, 2, 0};
    const int64_t cg = C / group;
    float *x = random_floats(2 * C * H * W), *w = random_floats(M * cg * 9), *b = random_floats(M);
    conv_case t = {.nsp = 2,
                   .n = 2,
                   .c = C,
                   .m = M,
                   .group = group,
                   .in = {H, W},
                   .k = {3, 3},
                   .s = {s, s},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    double *base = ref_conv(&t, x, w, b, NULL, 0);
    const int64_t ydims[4] = {2, M, t.out[0], t.out[1]};
    const int64_t ny = 2 * M * t.out[0] * t.out[1];
    double *want = malloc(sizeof(double) * (size_t)ny);
    int64_t pads[4] = {1, 1, 1, 1}, strides[2] = {s, s};
    tin ins[3] = {{"X", 4, {2, C, H, W}, x, false, NULL},
                  {"W", 4, {M, cg, 3, 3}, w, true, NULL},
                  {"B", 1, {M}, b, true, NULL}};
    for (int a = 0; a < 6; a++) {
        for (int64_t i = 0; i < ny; i++) want[i] = fused_act_ref(a, base[i]);
        tattr attrs[] = {{"group", 'i', group, 0, NULL, 0, NULL, NULL},
                         {"pads", 'I', 0, 0, NULL, 4, pads, NULL},
                         {"strides", 'I', 0, 0, NULL, 2, strides, NULL},
                         {"activation", 's', 0, 0, names[a], 0, NULL, NULL},
                         {"activation_params", 'F', 0, 0, NULL, n_params[a], NULL, params[a]}};
        for (int threads = 1; threads <= 3; threads++) {
            ember_tensor *y = NULL;
            ember_error err;
            cr_assert_eq(run_single("FusedConv", "ai.ember", attrs, n_params[a] ? 5 : 4, ins, 3,
                                    threads, &y, &err),
                         EMBER_OK, "%s", err.message);
            expect_close(y, want, ydims, 4, names[a]);
            ember_tensor_free(y);
        }
    }
    free(want);
    free(base);
    free(x);
    free(w);
    free(b);
}

/* Activations fused into a depthwise convolution: in registers (Relu, LeakyRelu, Clip) or on
 * the stored rows (the others), on the flat path (7x7), the row path (9x40) and stride 2. */
Test(conv, depthwise_fused_activations) {
    check_fused_activations(5, 5, 5, 7, 7, 1);
    check_fused_activations(5, 5, 5, 9, 40, 1);
    check_fused_activations(5, 5, 5, 14, 23, 2);
    check_fused_activations(3, 3, 3, 40, 41, 1); /* large planes: split into bands */
}

static void expect_same_across_threads(conv_case t, const char *what);

/* Convolutions over at most 4 input channels (the RGB input layer) run on a direct kernel
 * with the output pixels in the vector lanes (ops/conv_direct.c): ResNet's 7x7 / 2 and the 3x3 / 2
 * stems, filter counts that are not a multiple of 16, wide and narrow rows (partial blocks of
 * 16 pixels), dilation, asymmetric pads, several images; with and without bias, Z + Relu, the
 * other activations, and the same bits at 1, 2 and 3 threads. */
Test(conv, direct_few_channels) {
    const conv_case cases[] = {
        {.nsp = 2,
         .n = 2,
         .c = 3,
         .m = 64,
         .group = 1,
         .in = {30, 33},
         .k = {7, 7},
         .s = {2, 2},
         .d = {1, 1},
         .pb = {3, 3},
         .pe = {3, 3}},
        {.nsp = 2,
         .n = 1,
         .c = 3,
         .m = 32,
         .group = 1,
         .in = {17, 40},
         .k = {3, 3},
         .s = {2, 2},
         .d = {1, 1},
         .pb = {1, 1},
         .pe = {1, 1}},
        conv3x3(3, 1, 16, 8, 8, 1, 1, 1, 1),
        {.nsp = 2,
         .n = 2,
         .c = 4,
         .m = 20,
         .group = 1,
         .in = {11, 37},
         .k = {5, 3},
         .s = {1, 3},
         .d = {2, 1},
         .pb = {2, 0},
         .pe = {0, 2}},
        {.nsp = 2,
         .n = 1,
         .c = 2,
         .m = 17,
         .group = 1,
         .in = {1, 5},
         .k = {1, 1},
         .s = {1, 1},
         .d = {1, 1}},
        /* wide rows: 9 blocks of 16 pixels (tiles of 3), and 4 blocks (tiles of 2); more
         * output rows than one sub-band */
        {.nsp = 2,
         .n = 2,
         .c = 3,
         .m = 24,
         .group = 1,
         .in = {20, 130},
         .k = {3, 3},
         .s = {2, 1},
         .d = {1, 1},
         .pb = {1, 1},
         .pe = {1, 1}},
        {.nsp = 2,
         .n = 1,
         .c = 3,
         .m = 16,
         .group = 1,
         .in = {19, 120},
         .k = {3, 3},
         .s = {2, 2},
         .d = {1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char what[256];
        describe_case(what, sizeof what, "direct", (int)i, &cases[i]);
        check_conv(cases[i], false, i % 2 == 0, false, true, what);
        check_conv(cases[i], false, true, true, true, what);
        expect_same_across_threads(cases[i], what);
    }
    check_fused_activations(3, 20, 1, 9, 21, 2);
}

/* 3x3 stride-1 convolutions with at least 16 input and output channels run by Winograd
 * F(2x2, 3x3) or F(4x4, 3x3) (ops/conv_winograd.c): odd and even output sizes (partial tiles), pads
 * 0..2 on each side, rows of more than 16 tiles, several tile blocks spanning rows and images,
 * filter counts that are not a whole register block, a 1x1 output; with and without bias, Z + Relu,
 * the other activations, and the same bits at 1, 2 and 3 threads. */
Test(conv, winograd_3x3) {
    const conv_case cases[] = {
        conv3x3(2, 16, 20, 9, 13, 1, 1, 1, 1),
        conv3x3(1, 17, 16, 8, 40, 0, 0, 0, 0),
        conv3x3(3, 32, 33, 5, 5, 2, 1, 0, 2),
        conv3x3(1, 16, 16, 1, 1, 1, 1, 1, 1),
        conv3x3(1, 16, 24, 3, 70, 1, 1, 1, 1),
        conv3x3(2, 16, 16, 40, 41, 1, 0, 1, 2),
        conv3x3(2, 64, 64, 28, 28, 1, 1, 1, 1),
        /* F(4x4): 19 tiles per row (a run of 16, then 3), a partial last tile row and column,
         * 72 filters (a pass of 64, then 8) */
        conv3x3(2, 16, 72, 21, 75, 1, 0, 2, 1),
        /* F(4x4): 36 tiles per image, blocks spanning images */
        conv3x3(3, 24, 16, 24, 24, 1, 1, 1, 1),
    };
    /* Known planes of at least 32 4x4 tiles take F(4x4) (#5-#8), the others and every case
     * with X unshaped at creation F(2x2). Both within 1e-5 of the products' magnitudes
     * (measured: F(2x2) 1e-7, F(4x4) 2.4e-6 at most). */
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int unshaped = 0; unshaped < 2; unshaped++) {
            conv_case t = cases[i];
            t.unknown_shape = unshaped;
            t.tol_mag = 1e-5;
            char what[256];
            describe_case(what, sizeof what, unshaped ? "winograd (unshaped)" : "winograd", (int)i,
                          &t);
            check_conv(t, false, i % 2 == 0, false, true, what);
            check_conv(t, false, true, true, true, what);
            check_conv(t, false, false, true, true, what);
            expect_same_across_threads(t, what);
        }
    check_fused_activations(16, 20, 1, 9, 11, 1);
}

/* Run a 2-D Conv case (with bias) at 1, 2 and 3 threads: the outputs must be identical bit for
 * bit, whatever the split of the work. */
static void expect_same_across_threads(conv_case t, const char *what) {
    tin x = {"X", 4, {t.n, t.c, t.in[0], t.in[1]}, NULL, false, NULL};
    tin w = {"W", 4, {t.m, t.c / t.group, t.k[0], t.k[1]}, NULL, true, NULL};
    float *xd = random_floats(numel(&x)), *wd = random_floats(numel(&w));
    float *bd = random_floats(t.m);
    x.data = xd;
    w.data = wd;
    tin bt = {"B", 1, {t.m}, bd, true, NULL};
    int64_t pads[4] = {t.pb[0], t.pb[1], t.pe[0], t.pe[1]};
    tattr attrs[] = {
        {"group", 'i', t.group, 0, NULL, 0, NULL, NULL},
        {"pads", 'I', 0, 0, NULL, 4, pads, NULL},
        {"strides", 'I', 0, 0, NULL, 2, t.s, NULL},
        {"kernel_shape", 'I', 0, 0, NULL, 2, t.k, NULL},
    };
    tin ins[3] = {x, w, bt};
    ember_tensor *first = NULL;
    for (int threads = 1; threads <= 3; threads++) {
        ember_tensor *y = NULL;
        ember_error err = {0};
        cr_assert_eq(run_single("Conv", "", attrs, 4, ins, 3, threads, &y, &err), EMBER_OK,
                     "%s: %s", what, err.message);
        if (!first) {
            first = y;
            continue;
        }
        cr_assert_eq(ember_tensor_byte_size(y), ember_tensor_byte_size(first));
        cr_assert(
            memcmp(ember_tensor_data(y), ember_tensor_data(first), ember_tensor_byte_size(y)) == 0,
            "%s: %d threads differ from 1 thread", what, threads);
        ember_tensor_free(y);
    }
    ember_tensor_free(first);
    free(xd);
    free(wd);
    free(bd);
}

/* Depthwise planes are shared out in small ranges to whichever thread asks next, on the
 * direct 3x3 path and the padded one. */
Test(conv, depthwise_shared_ranges) {
    conv_case t = {.nsp = 2,
                   .n = 2,
                   .c = 45,
                   .m = 45,
                   .group = 45,
                   .in = {14, 14},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    check_conv(t, false, true, false, true, "depthwise many planes");
    expect_same_across_threads(t, "depthwise many planes");
    conv_case u = {.nsp = 2,
                   .n = 1,
                   .c = 77,
                   .m = 77,
                   .group = 77,
                   .in = {33, 35},
                   .k = {3, 3},
                   .s = {2, 2},
                   .d = {1, 1},
                   .pb = {0, 1},
                   .pe = {1, 0}};
    check_conv(u, false, true, false, true, "depthwise strided, many planes");
    expect_same_across_threads(u, "depthwise strided, many planes");
    /* Planes above 1024 outputs are split into spatial bands across threads, per image. */
    conv_case v = {.nsp = 2,
                   .n = 3,
                   .c = 5,
                   .m = 5,
                   .group = 5,
                   .in = {48, 45},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    check_conv(v, false, true, true, true, "depthwise large planes in bands");
    expect_same_across_threads(v, "depthwise large planes in bands");
    v.s[0] = v.s[1] = 2;
    v.in[0] = v.in[1] = 90;
    check_conv(v, false, true, false, true, "depthwise large strided planes in bands");
    expect_same_across_threads(v, "depthwise large strided planes in bands");
}

/* More filters than output columns: threads split the filters (row blocks, with a tail that
 * is not a whole register block), not the columns. */
Test(conv, deep_layers_split_filters) {
    conv_case t = {.nsp = 2,
                   .n = 1,
                   .c = 40,
                   .m = 200,
                   .group = 1,
                   .in = {7, 7},
                   .k = {1, 1},
                   .s = {1, 1},
                   .d = {1, 1}};
    check_conv(t, false, true, false, true, "pointwise 7x7, 200 filters");
    expect_same_across_threads(t, "pointwise 7x7, 200 filters");
    conv_case u = {.nsp = 2,
                   .n = 1,
                   .c = 16,
                   .m = 100,
                   .group = 1,
                   .in = {9, 9},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    check_conv(u, false, true, false, true, "3x3 9x9, 100 filters");
    expect_same_across_threads(u, "3x3 9x9, 100 filters");
}

Test(conv, im2col_panels) {
    /* K = 16 * 9 = 144 -> several L2 panels over 70 x 70 outputs. */
    conv_case t = {.nsp = 2,
                   .n = 1,
                   .c = 16,
                   .m = 24,
                   .group = 1,
                   .in = {70, 70},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    check_conv(t, false, true, false, true, "3x3 panels");
    /* Deep, small output: row blocks across threads. */
    conv_case u = {.nsp = 2,
                   .n = 1,
                   .c = 32,
                   .m = 64,
                   .group = 1,
                   .in = {7, 7},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    check_conv(u, false, true, false, true, "3x3 deep small");
    /* Strided, dilated, asymmetric pads, groups, with Z and Relu. */
    conv_case v = {.nsp = 2,
                   .n = 2,
                   .c = 6,
                   .m = 4,
                   .group = 2,
                   .in = {31, 29},
                   .k = {3, 2},
                   .s = {2, 3},
                   .d = {2, 1},
                   .pb = {0, 2},
                   .pe = {3, 1}};
    check_conv(v, false, true, true, false, "strided grouped + Z");
    conv_case w1 = {.nsp = 1,
                    .n = 2,
                    .c = 5,
                    .m = 7,
                    .group = 1,
                    .in = {50},
                    .k = {4},
                    .s = {3},
                    .d = {2},
                    .pb = {2},
                    .pe = {1}};
    check_conv(w1, false, true, false, true, "1-D");
    /* Row-preserving ("same" along W) stride 1: long-copy im2col, dilated, asymmetric. */
    conv_case s1 = {.nsp = 2,
                    .n = 2,
                    .c = 3,
                    .m = 5,
                    .group = 1,
                    .in = {20, 33},
                    .k = {3, 4},
                    .s = {1, 1},
                    .d = {2, 1},
                    .pb = {2, 1},
                    .pe = {2, 2}};
    check_conv(s1, false, true, true, true, "same-row dilated asymmetric");
    s1.pb[0] = 0;
    s1.pe[0] = 3;
    check_conv(s1, false, true, false, true, "same-row, uneven vertical pads");
    conv_case s2 = {.nsp = 1,
                    .n = 1,
                    .c = 4,
                    .m = 3,
                    .group = 1,
                    .in = {200},
                    .k = {5},
                    .s = {1},
                    .d = {1},
                    .pb = {2},
                    .pe = {2}};
    check_conv(s2, false, true, false, true, "same-row 1-D");
    conv_case w2 = {.nsp = 1,
                    .n = 1,
                    .c = 2,
                    .m = 3,
                    .group = 1,
                    .in = {300},
                    .k = {70},
                    .s = {2},
                    .d = {1},
                    .pb = {5},
                    .pe = {3}};
    check_conv(w2, false, true, false, true, "1-D kernel wider than 64");
}

/* Constant W runs on the packed-weight GEMM (ops/conv_gemm.c): output channels that are not a
 * multiple of its 8-row block, columns that are not a multiple of its 48-column tile, K over
 * several chunks, pointwise read in place, small outputs of several images as one GEMM. */
Test(conv, packed_weights_gemm) {
    const conv_case cases[] = {
        conv3x3(3, 40, 21, 9, 11, 1, 1, 1, 1),
        conv3x3(1, 40, 21, 9, 11, 1, 1, 1, 1),
        {.nsp = 2,
         .n = 2,
         .c = 12,
         .m = 30,
         .group = 3,
         .in = {23, 19},
         .k = {3, 2},
         .s = {2, 1},
         .d = {1, 2},
         .pb = {1, 0},
         .pe = {0, 2}},
        {.nsp = 2,
         .n = 1,
         .c = 150,
         .m = 19,
         .group = 1,
         .in = {13, 17},
         .k = {1, 1},
         .s = {1, 1},
         .d = {1, 1}},
        {.nsp = 2,
         .n = 2,
         .c = 150,
         .m = 19,
         .group = 1,
         .in = {13, 17},
         .k = {1, 1},
         .s = {1, 1},
         .d = {1, 1}},
        {.nsp = 2,
         .n = 1,
         .c = 33,
         .m = 70,
         .group = 1,
         .in = {30, 30},
         .k = {1, 1},
         .s = {1, 1},
         .d = {1, 1}},
        conv3x3(2, 16, 24, 40, 40, 1, 1, 1, 1),
        {.nsp = 2,
         .n = 3,
         .c = 8,
         .m = 9,
         .group = 1,
         .in = {15, 15},
         .k = {1, 1},
         .s = {2, 2},
         .d = {1, 1}},
        {.nsp = 1,
         .n = 2,
         .c = 70,
         .m = 13,
         .group = 1,
         .in = {60},
         .k = {5},
         .s = {1},
         .d = {3},
         .pb = {4},
         .pe = {2}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[512];
        describe_case(what, sizeof what, "packed", (int)i, &cases[i]);
        check_conv(cases[i], false, i % 2 == 0, false, true, what);
        check_conv(cases[i], false, i % 2 == 1, true, true, what);
    }
}

/* Depthwise 3x3 computed straight from the input (no padded copy): strides 1 and 2, pads
 * 0 / 1 / 2 and asymmetric, widths where the last output's taps end exactly at the edge. */
Test(conv, depthwise_direct) {
    const conv_case cases[] = {
        {.nsp = 2,
         .n = 2,
         .c = 5,
         .m = 5,
         .group = 5,
         .in = {9, 70},
         .k = {3, 3},
         .s = {2, 2},
         .d = {1, 1},
         .pb = {1, 1},
         .pe = {1, 1}},
        {.nsp = 2,
         .n = 1,
         .c = 3,
         .m = 3,
         .group = 3,
         .in = {8, 71},
         .k = {3, 3},
         .s = {2, 2},
         .d = {1, 1},
         .pb = {0, 1},
         .pe = {1, 0}},
        {.nsp = 2,
         .n = 1,
         .c = 3,
         .m = 3,
         .group = 3,
         .in = {7, 36},
         .k = {3, 3},
         .s = {1, 1},
         .d = {1, 1},
         .pb = {2, 2},
         .pe = {0, 1}},
        {.nsp = 2,
         .n = 1,
         .c = 2,
         .m = 2,
         .group = 2,
         .in = {6, 40},
         .k = {3, 3},
         .s = {1, 3},
         .d = {1, 1},
         .pb = {0, 0},
         .pe = {0, 0}},
        {.nsp = 2,
         .n = 2,
         .c = 4,
         .m = 4,
         .group = 4,
         .in = {5, 66},
         .k = {3, 3},
         .s = {1, 2},
         .d = {1, 1},
         .pb = {1, 2},
         .pe = {1, 2}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[512];
        describe_case(what, sizeof what, "depthwise direct", (int)i, &cases[i]);
        check_conv(cases[i], false, i % 2 == 0, i % 2 == 1, true, what);
    }
}

Test(conv, conv3d) {
    conv_case t = {.nsp = 3,
                   .n = 1,
                   .c = 4,
                   .m = 6,
                   .group = 2,
                   .in = {7, 9, 8},
                   .k = {3, 2, 3},
                   .s = {2, 1, 2},
                   .d = {1, 2, 1},
                   .pb = {1, 0, 1},
                   .pe = {0, 1, 2}};
    check_conv(t, false, true, false, true, "3-D");
}

Test(conv, same_lower_strided) {
    /* SAME_LOWER with stride 2 on 9: out 5, total pad (5-1)*2+3-9 = 2 -> 1, 1; on 10 with
     * kernel 4: out 5, total 2*4+4-10 = 2 -> 1, 1; kernel 2 on 10: total 0. */
    float *x = random_floats(1 * 2 * 9 * 10), *w = random_floats(3 * 2 * 3 * 4);
    tin ins[2] = {{"X", 4, {1, 2, 9, 10}, x, false, NULL}, {"W", 4, {3, 2, 3, 4}, w, true, NULL}};
    tattr attrs[] = {{"auto_pad", 's', 0, 0, "SAME_LOWER", 0, NULL, NULL},
                     {"strides", 'I', 0, 0, NULL, 2, (const int64_t[]){2, 2}, NULL}};
    ember_tensor *y = NULL;
    ember_error err;
    cr_assert_eq(run_single("Conv", "", attrs, 2, ins, 2, 1, &y, &err), EMBER_OK, "%s",
                 err.message);
    /* total pads: H (5-1)*2+3-9 = 2 -> begin 1, end 1; W (5-1)*2+4-10 = 2 -> 1, 1. */
    conv_case t = {.nsp = 2,
                   .n = 1,
                   .c = 2,
                   .m = 3,
                   .group = 1,
                   .in = {9, 10},
                   .k = {3, 4},
                   .s = {2, 2},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    double *want = ref_conv(&t, x, w, NULL, NULL, 0);
    expect_close(y, want, (const int64_t[]){1, 3, 5, 5}, 4, "SAME_LOWER");
    ember_tensor_free(y);
    free(want);
    /* Odd total: kernel 4 on 9 with stride 2 -> out 5, total 8+4-9 = 3: SAME_LOWER puts 2 at
     * the start, SAME_UPPER 2 at the end. */
    float *w2 = random_floats(3 * 2 * 4 * 1);
    tin ins2[2] = {{"X", 4, {1, 2, 9, 10}, x, false, NULL}, {"W", 4, {3, 2, 4, 1}, w2, true, NULL}};
    for (int upper = 0; upper < 2; upper++) {
        attrs[0].s = upper ? "SAME_UPPER" : "SAME_LOWER";
        cr_assert_eq(run_single("Conv", "", attrs, 2, ins2, 2, 2, &y, &err), EMBER_OK, "%s",
                     err.message);
        conv_case u = {.nsp = 2,
                       .n = 1,
                       .c = 2,
                       .m = 3,
                       .group = 1,
                       .in = {9, 10},
                       .k = {4, 1},
                       .s = {2, 2},
                       .d = {1, 1},
                       .pb = {upper ? 1 : 2, 0},
                       .pe = {upper ? 2 : 1, 0}};
        want = ref_conv(&u, x, w2, NULL, NULL, 0);
        expect_close(y, want, (const int64_t[]){1, 3, 5, 5}, 4, attrs[0].s);
        ember_tensor_free(y);
        free(want);
    }
    free(x);
    free(w);
    free(w2);
}

Test(conv, bias_length_is_an_error) {
    float *x = random_floats(1 * 3 * 8 * 8), *w = random_floats(4 * 3 * 3 * 3);
    float *b = random_floats(5);
    tin ins[3] = {{"X", 4, {1, 3, 8, 8}, x, false, NULL},
                  {"W", 4, {4, 3, 3, 3}, w, true, NULL},
                  {"B", 1, {5}, b, true, NULL}};
    ember_tensor *y = NULL;
    ember_error err = {0};
    ember_status st = run_single("Conv", "", NULL, 0, ins, 3, 1, &y, &err);
    cr_assert_neq(st, EMBER_OK, "a bias of 5 values for 4 output channels was accepted");
    cr_assert_null(y);
    cr_assert(strstr(err.message, "bias"), "message: %s", err.message);
    cr_assert(strstr(err.message, "Conv"), "message does not name the node: %s", err.message);
    free(x);
    free(w);
    free(b);
}

Test(conv, fused_activations) {
    float *x = random_floats(1 * 4 * 6 * 6), *w = random_floats(4 * 4 * 3 * 3);
    tin ins[2] = {{"X", 4, {1, 4, 6, 6}, x, false, NULL}, {"W", 4, {4, 4, 3, 3}, w, true, NULL}};
    conv_case t = {.nsp = 2,
                   .n = 1,
                   .c = 4,
                   .m = 4,
                   .group = 1,
                   .in = {6, 6},
                   .k = {3, 3},
                   .s = {1, 1},
                   .d = {1, 1}};
    double *base = ref_conv(&t, x, w, NULL, NULL, 0);
    const char *names[] = {"LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid"};
    const float params[][2] = {{0.1f, 0}, {-0.5f, 0.7f}, {0, 0}, {0, 0}, {0.3f, 0.4f}};
    const int n_params[] = {1, 2, 0, 0, 2};
    double want[64];
    for (int a = 0; a < 5; a++) {
        for (int i = 0; i < 64; i++) want[i] = fused_act_ref(a, base[i]);
        tattr attrs[] = {{"activation", 's', 0, 0, names[a], 0, NULL, NULL},
                         {"activation_params", 'F', 0, 0, NULL, n_params[a], NULL, params[a]}};
        ember_tensor *y = NULL;
        ember_error err;
        cr_assert_eq(
            run_single("FusedConv", "ai.ember", attrs, n_params[a] ? 2 : 1, ins, 2, 1, &y, &err),
            EMBER_OK, "%s", err.message);
        expect_close(y, want, (const int64_t[]){1, 4, 4, 4}, 4, names[a]);
        ember_tensor_free(y);
    }
    free(base);
    free(x);
    free(w);
}

/* ---- ConvTranspose ---- */

Test(convtranspose, stride2_output_padding_groups) {
    conv_case t = {.nsp = 2,
                   .n = 2,
                   .c = 4,
                   .m = 6,
                   .group = 2,
                   .in = {9, 7},
                   .k = {3, 3},
                   .s = {2, 2},
                   .d = {1, 1},
                   .pb = {1, 0},
                   .pe = {0, 1},
                   .op = {1, 1}};
    check_conv(t, true, true, false, true, "stride 2 + output_padding + groups");
    conv_case u = {.nsp = 2,
                   .n = 1,
                   .c = 3,
                   .m = 2,
                   .group = 1,
                   .in = {5, 6},
                   .k = {4, 2},
                   .s = {3, 2},
                   .d = {2, 3},
                   .pb = {2, 1},
                   .pe = {1, 2},
                   .op = {2, 0}};
    check_conv(u, true, false, false, false, "dilated strided");
    /* Big enough for several input panels and channel blocks. */
    conv_case v = {.nsp = 2,
                   .n = 1,
                   .c = 16,
                   .m = 32,
                   .group = 1,
                   .in = {40, 40},
                   .k = {4, 4},
                   .s = {2, 2},
                   .d = {1, 1},
                   .pb = {1, 1},
                   .pe = {1, 1}};
    check_conv(v, true, true, false, true, "4x4 stride 2 large");
}

/* Small planes over a whole batch: Conv's im2col through the gather table (conv_gather.c) and
 * ConvTranspose on the packed GEMM with the gathering col2im (convt_gemm.c), including blocks
 * of images that straddle a 16-column vector and a last, partial block. */
Test(conv, small_planes_whole_batch) {
    // clang-format off
    const conv_case cases[] = {
        /* conv_autoencoder's encoder: 8x8 -> 4x4 -> 2x2, stride 2 */
        {.nsp = 2, .n = 33, .c = 1, .m = 8, .group = 1, .in = {8, 8}, .k = {3, 3}, .s = {2, 2},
         .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}},
        {.nsp = 2, .n = 33, .c = 8, .m = 16, .group = 1, .in = {4, 4}, .k = {3, 3}, .s = {2, 2},
         .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}},
        /* pointwise: whole rows copied, no table */
        {.nsp = 2, .n = 9, .c = 12, .m = 20, .group = 1, .in = {5, 5}, .k = {1, 1}, .s = {1, 1},
         .d = {1, 1}, .pb = {0, 0}, .pe = {0, 0}},
        /* planes of 9 and 35 outputs (blocks of 16 and 80 images' columns), groups, dilation */
        {.nsp = 2, .n = 7, .c = 6, .m = 9, .group = 3, .in = {5, 5}, .k = {3, 3}, .s = {1, 1},
         .d = {1, 1}, .pb = {0, 0}, .pe = {0, 0}},
        {.nsp = 2, .n = 5, .c = 4, .m = 5, .group = 1, .in = {9, 11}, .k = {3, 2}, .s = {2, 2},
         .d = {2, 1}, .pb = {2, 0}, .pe = {1, 1}},
        {.nsp = 1, .n = 6, .c = 3, .m = 4, .group = 1, .in = {13}, .k = {3}, .s = {3}, .d = {1},
         .pb = {1}, .pe = {0}},
        {.nsp = 3, .n = 3, .c = 2, .m = 3, .group = 1, .in = {3, 4, 4}, .k = {2, 2, 3},
         .s = {1, 2, 1}, .d = {1, 1, 1}, .pb = {0, 1, 1}, .pe = {1, 0, 1}},
    };
    // clang-format on
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[512];
        describe_case(what, sizeof what, "small planes", (int)i, &cases[i]);
        check_conv(cases[i], false, i % 2 == 0, false, true, what);
        check_conv(cases[i], false, true, true, true, what); /* with Z and Relu */
        expect_batch_independent(cases[i], false, what);
        conv_case late = cases[i]; /* the table made per run instead of at creation */
        late.unknown_shape = true;
        check_conv(late, false, true, false, true, what);
        expect_batch_independent(late, false, what);
    }
}

Test(convtranspose, packed_whole_batch) {
    // clang-format off
    const conv_case cases[] = {
        /* conv_autoencoder's decoder: 2x2 -> 4x4 -> 8x8, stride 2, output_padding 1 */
        {.nsp = 2, .n = 33, .c = 16, .m = 8, .group = 1, .in = {2, 2}, .k = {3, 3}, .s = {2, 2},
         .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}, .op = {1, 1}},
        {.nsp = 2, .n = 33, .c = 8, .m = 1, .group = 1, .in = {4, 4}, .k = {3, 3}, .s = {2, 2},
         .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}, .op = {1, 1}},
        /* stride 1 (every tap reaches each inner output), groups, dilation, odd sizes */
        {.nsp = 2, .n = 4, .c = 6, .m = 9, .group = 3, .in = {5, 7}, .k = {3, 3}, .s = {1, 1},
         .d = {1, 1}, .pb = {1, 0}, .pe = {0, 1}},
        {.nsp = 2, .n = 3, .c = 4, .m = 6, .group = 2, .in = {6, 5}, .k = {4, 2}, .s = {3, 2},
         .d = {2, 3}, .pb = {2, 1}, .pe = {1, 2}, .op = {2, 0}},
        /* 32 output channels at batch 1: blocks of channels across threads */
        {.nsp = 2, .n = 1, .c = 12, .m = 32, .group = 1, .in = {9, 9}, .k = {4, 4}, .s = {2, 2},
         .d = {1, 1}, .pb = {1, 1}, .pe = {1, 1}},
        {.nsp = 1, .n = 5, .c = 3, .m = 4, .group = 1, .in = {11}, .k = {5}, .s = {2}, .d = {1},
         .pb = {2}, .pe = {1}, .op = {1}},
        {.nsp = 3, .n = 2, .c = 2, .m = 4, .group = 2, .in = {3, 4, 5}, .k = {2, 3, 2},
         .s = {2, 1, 3}, .d = {1, 2, 1}, .pb = {0, 1, 1}, .pe = {1, 0, 0}, .op = {1, 0, 2}},
    };
    // clang-format on
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[512];
        describe_case(what, sizeof what, "packed convtranspose", (int)i, &cases[i]);
        check_conv(cases[i], true, i % 2 == 0, false, true, what);
        expect_batch_independent(cases[i], true, what);
    }
}

Test(convtranspose, one_and_three_d) {
    conv_case t = {.nsp = 1,
                   .n = 2,
                   .c = 3,
                   .m = 4,
                   .group = 1,
                   .in = {11},
                   .k = {3},
                   .s = {2},
                   .d = {1},
                   .op = {1}};
    check_conv(t, true, true, false, true, "1-D");
    conv_case u = {.nsp = 3,
                   .n = 1,
                   .c = 2,
                   .m = 4,
                   .group = 2,
                   .in = {3, 4, 5},
                   .k = {2, 3, 2},
                   .s = {2, 1, 3},
                   .d = {1, 2, 1},
                   .pb = {0, 1, 1},
                   .pe = {1, 0, 0},
                   .op = {1, 0, 2}};
    check_conv(u, true, true, false, true, "3-D");
}

Test(convtranspose, output_shape_and_same) {
    /* output_shape bigger than the natural size: pads go negative at the end (floor div). */
    float *x = random_floats(1 * 1 * 3 * 3), *w = random_floats(1 * 2 * 3 * 3);
    tin ins[2] = {{"X", 4, {1, 1, 3, 3}, x, false, NULL}, {"W", 4, {1, 2, 3, 3}, w, true, NULL}};
    tattr attrs[] = {{"strides", 'I', 0, 0, NULL, 2, (const int64_t[]){3, 2}, NULL},
                     {"output_shape", 'I', 0, 0, NULL, 2, (const int64_t[]){10, 8}, NULL}};
    ember_tensor *y = NULL;
    ember_error err;
    cr_assert_eq(run_single("ConvTranspose", "", attrs, 2, ins, 2, 1, &y, &err), EMBER_OK, "%s",
                 err.message);
    conv_case t = {.nsp = 2,
                   .n = 1,
                   .c = 1,
                   .m = 2,
                   .group = 1,
                   .in = {3, 3},
                   .k = {3, 3},
                   .s = {3, 2},
                   .d = {1, 1},
                   .pb = {0, 0},
                   .pe = {-1, -1}};
    double *want = ref_convt(&t, x, w, NULL);
    expect_close(y, want, (const int64_t[]){1, 2, 10, 8}, 4, "output_shape");
    ember_tensor_free(y);
    free(want);
    /* SAME_UPPER, stride 2 on 3: out 6, total 2*2+3-6 = 1 -> pad 0 at the start, 1 at the end. */
    tattr same[] = {{"strides", 'I', 0, 0, NULL, 2, (const int64_t[]){2, 2}, NULL},
                    {"auto_pad", 's', 0, 0, "SAME_UPPER", 0, NULL, NULL}};
    cr_assert_eq(run_single("ConvTranspose", "", same, 2, ins, 2, 1, &y, &err), EMBER_OK, "%s",
                 err.message);
    conv_case u = {.nsp = 2,
                   .n = 1,
                   .c = 1,
                   .m = 2,
                   .group = 1,
                   .in = {3, 3},
                   .k = {3, 3},
                   .s = {2, 2},
                   .d = {1, 1},
                   .pb = {0, 0},
                   .pe = {1, 1}};
    want = ref_convt(&u, x, w, NULL);
    expect_close(y, want, (const int64_t[]){1, 2, 6, 6}, 4, "SAME_UPPER");
    ember_tensor_free(y);
    free(want);
    free(x);
    free(w);
}

/* ---- Gemm / MatMul / Einsum ---- */

Test(gemm, packed_b_and_bias_forms) {
    const int64_t M = 5, K = 37, N = 70;
    float *a = random_floats(M * K), *b = random_floats(N * K), *c = random_floats(M * N);
    /* C forms: (N), (M,1), (M,N), () */
    const int64_t cdims[4][2] = {{N, 0}, {M, 1}, {M, N}, {0, 0}};
    const int crank[4] = {1, 2, 2, 0};
    for (int form = 0; form < 4; form++)
        for (int cb = 0; cb < 2; cb++) {
            tin ins[3] = {{"A", 2, {M, K}, a, false, NULL},
                          {"B", 2, {N, K}, b, cb == 1, NULL},
                          {"C", crank[form], {cdims[form][0], cdims[form][1]}, c, true, NULL}};
            tattr attrs[] = {{"transB", 'i', 1, 0, NULL, 0, NULL, NULL},
                             {"alpha", 'f', 0, 0.5f, NULL, 0, NULL, NULL},
                             {"beta", 'f', 0, 2.0f, NULL, 0, NULL, NULL}};
            double *want = malloc(sizeof(double) * (size_t)(M * N));
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double acc = 0;
                    for (int64_t p = 0; p < K; p++) acc += (double)a[i * K + p] * b[j * K + p];
                    int64_t ci = form == 0 ? j : form == 1 ? i : form == 2 ? i * N + j : 0;
                    want[i * N + j] = 0.5 * acc + 2.0 * c[ci];
                }
            for (int threads = 1; threads <= 2; threads++) {
                ember_tensor *y = NULL;
                ember_error err;
                cr_assert_eq(run_single("Gemm", "", attrs, 3, ins, 3, threads, &y, &err), EMBER_OK,
                             "%s", err.message);
                expect_close(y, want, (const int64_t[]){M, N}, 2, "Gemm");
                ember_tensor_free(y);
            }
            free(want);
        }
    free(a);
    free(b);
    free(c);
}

Test(gemm, row_vector_times_large_b) {
    /* M = 1 with N * K large runs on gemv, with B constant (packed) or not, either layout. */
    const int64_t K = 300, N = 257;
    float *a = random_floats(K), *b = random_floats(N * K), *c = random_floats(N);
    for (int tb = 0; tb < 2; tb++)
        for (int cb = 0; cb < 2; cb++) {
            tin ins[3] = {{"A", 2, {1, K}, a, false, NULL},
                          {"B", 2, {tb ? N : K, tb ? K : N}, b, cb == 1, NULL},
                          {"C", 1, {N}, c, true, NULL}};
            tattr attrs[] = {{"transB", 'i', tb, 0, NULL, 0, NULL, NULL}};
            double *want = malloc(sizeof(double) * (size_t)N);
            for (int64_t j = 0; j < N; j++) {
                double acc = c[j];
                for (int64_t p = 0; p < K; p++)
                    acc += (double)a[p] * (tb ? b[j * K + p] : b[p * N + j]);
                want[j] = acc;
            }
            for (int threads = 1; threads <= 2; threads++) {
                ember_tensor *y = NULL;
                ember_error err;
                cr_assert_eq(run_single("Gemm", "", attrs, 1, ins, 3, threads, &y, &err), EMBER_OK,
                             "%s", err.message);
                expect_close(y, want, (const int64_t[]){1, N}, 2, "Gemm M=1");
                ember_tensor_free(y);
            }
            free(want);
        }
    free(a);
    free(b);
    free(c);
}

Test(gemm, matmul_broadcast_batches) {
    /* (2,1,3,4) x (5,4,6) -> (2,5,3,6): batch dims broadcast both ways. */
    float *a = random_floats(2 * 3 * 4), *b = random_floats(5 * 4 * 6);
    tin ins[2] = {{"A", 4, {2, 1, 3, 4}, a, false, NULL}, {"B", 3, {5, 4, 6}, b, false, NULL}};
    double want[2 * 5 * 3 * 6];
    for (int i0 = 0; i0 < 2; i0++)
        for (int i1 = 0; i1 < 5; i1++)
            for (int m = 0; m < 3; m++)
                for (int n = 0; n < 6; n++) {
                    double acc = 0;
                    for (int k = 0; k < 4; k++)
                        acc += (double)a[(i0 * 3 + m) * 4 + k] * b[(i1 * 4 + k) * 6 + n];
                    want[((i0 * 5 + i1) * 3 + m) * 6 + n] = acc;
                }
    for (int threads = 1; threads <= 2; threads++) {
        ember_tensor *y = NULL;
        ember_error err;
        cr_assert_eq(run_single("MatMul", "", NULL, 0, ins, 2, threads, &y, &err), EMBER_OK, "%s",
                     err.message);
        expect_close(y, want, (const int64_t[]){2, 5, 3, 6}, 4, "MatMul broadcast");
        ember_tensor_free(y);
    }
    /* 1-D x batched: (4) x (5,4,6) -> (5,6). */
    tin ins2[2] = {{"A", 1, {4}, a, false, NULL}, {"B", 3, {5, 4, 6}, b, true, NULL}};
    double want2[30];
    for (int i1 = 0; i1 < 5; i1++)
        for (int n = 0; n < 6; n++) {
            double acc = 0;
            for (int k = 0; k < 4; k++) acc += (double)a[k] * b[(i1 * 4 + k) * 6 + n];
            want2[i1 * 6 + n] = acc;
        }
    ember_tensor *y = NULL;
    ember_error err;
    cr_assert_eq(run_single("MatMul", "", NULL, 0, ins2, 2, 2, &y, &err), EMBER_OK, "%s",
                 err.message);
    expect_close(y, want2, (const int64_t[]){5, 6}, 2, "MatMul 1-D");
    ember_tensor_free(y);
    free(a);
    free(b);
}

Test(gemm, einsum_forms) {
    float *a = random_floats(3 * 4 * 5), *b = random_floats(3 * 5 * 2);
    struct {
        const char *eq;
        int n_ins;
    } cases[] = {{"bij,bjk->bik", 2},
                 {"bij,bjk->kbi", 2},
                 {"bij->jb", 1},
                 {"bii->b", 1},
                 {"bij,bkl->bijkl", 2}};
    tin ins[2] = {{"A", 3, {3, 4, 5}, a, false, NULL}, {"B", 3, {3, 5, 2}, b, false, NULL}};
    for (int c = 0; c < 5; c++) {
        double want[3 * 4 * 5 * 5 * 2];
        int64_t dims[5];
        int rank;
        if (c == 3) {
            ins[0].dims[2] = 4; /* bii needs square matrices: A as (3, 4, 4) */
        } else {
            ins[0].dims[1] = 4;
            ins[0].dims[2] = 5;
        }
        switch (c) {
        case 0:
        case 1:
            for (int bb = 0; bb < 3; bb++)
                for (int i = 0; i < 4; i++)
                    for (int k = 0; k < 2; k++) {
                        double acc = 0;
                        for (int j = 0; j < 5; j++)
                            acc += (double)a[(bb * 4 + i) * 5 + j] * b[(bb * 5 + j) * 2 + k];
                        if (c == 0)
                            want[(bb * 4 + i) * 2 + k] = acc;
                        else
                            want[(k * 3 + bb) * 4 + i] = acc;
                    }
            rank = 3;
            if (c == 0)
                memcpy(dims, (int64_t[]){3, 4, 2}, sizeof(int64_t) * 3);
            else
                memcpy(dims, (int64_t[]){2, 3, 4}, sizeof(int64_t) * 3);
            break;
        case 2:
            for (int j = 0; j < 5; j++)
                for (int bb = 0; bb < 3; bb++) {
                    double acc = 0;
                    for (int i = 0; i < 4; i++) acc += a[(bb * 4 + i) * 5 + j];
                    want[j * 3 + bb] = acc;
                }
            rank = 2;
            memcpy(dims, (int64_t[]){5, 3}, sizeof(int64_t) * 2);
            break;
        case 3:
            for (int bb = 0; bb < 3; bb++) {
                double acc = 0;
                for (int i = 0; i < 4; i++) acc += a[(bb * 4 + i) * 4 + i];
                want[bb] = acc;
            }
            rank = 1;
            dims[0] = 3;
            break;
        default:
            for (int bb = 0; bb < 3; bb++)
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 5; j++)
                        for (int k = 0; k < 5; k++)
                            for (int l = 0; l < 2; l++)
                                want[(((bb * 4 + i) * 5 + j) * 5 + k) * 2 + l] =
                                    (double)a[(bb * 4 + i) * 5 + j] * b[(bb * 5 + k) * 2 + l];
            rank = 5;
            memcpy(dims, (int64_t[]){3, 4, 5, 5, 2}, sizeof(int64_t) * 5);
            break;
        }
        tattr attrs[] = {{"equation", 's', 0, 0, cases[c].eq, 0, NULL, NULL}};
        ember_tensor *y = NULL;
        ember_error err;
        cr_assert_eq(run_single("Einsum", "", attrs, 1, ins, cases[c].n_ins, 2, &y, &err), EMBER_OK,
                     "%s: %s", cases[c].eq, err.message);
        expect_close(y, want, dims, rank, cases[c].eq);
        ember_tensor_free(y);
    }
    free(a);
    free(b);
}

/* ---- RNN / GRU / LSTM ---- */

/* Cell clip bound applied to every activation input (0: none); set per reference call. */
static double ref_clip = 0.0;
static double clipped(double x) {
    if (ref_clip <= 0.0) return x;
    return x < -ref_clip ? -ref_clip : x > ref_clip ? ref_clip : x;
}
static double sigm(double x) {
    return 1.0 / (1.0 + exp(-clipped(x)));
}
static double tanh_c(double x) {
    return tanh(clipped(x));
}

/* Straight from the operator equations, one batch row and time step at a time (double).
 * kind 0 RNN, 1 GRU, 2 LSTM. Outputs in layout 0 or 1. */
static void ref_recurrent(int kind, int dirs, bool reverse_only, int layout, int64_t T, int64_t B,
                          int64_t I, int64_t H, const float *x, const float *w, const float *r,
                          const float *bias, const int32_t *lens, const float *h0, const float *c0,
                          const float *p, bool lbr, double *y, double *yh, double *yc) {
    int G = kind == 0 ? 1 : kind == 1 ? 3 : 4;
    for (int d = 0; d < dirs; d++)
        for (int64_t b = 0; b < B; b++) {
            int64_t len = lens ? lens[b] : T;
            bool rev = dirs == 2 ? d == 1 : reverse_only;
            double h[16] = {0}, c[16] = {0};
            for (int64_t j = 0; j < H; j++) {
                int64_t si = layout ? (b * dirs + d) * H + j : (d * B + b) * H + j;
                if (h0) h[j] = h0[si];
                if (c0) c[j] = c0[si];
            }
            for (int64_t t = 0; t < T; t++) {
                int64_t yi0 = layout ? ((b * T + t) * dirs + d) * H : ((t * dirs + d) * B + b) * H;
                for (int64_t j = 0; j < H; j++) y[yi0 + j] = 0.0;
            }
            for (int64_t s = 0; s < len; s++) {
                int64_t t = rev ? len - 1 - s : s;
                const float *xr = x + (layout ? b * T + t : t * B + b) * I;
                double xw[64], hr[64]; /* per gate row, without biases */
                for (int64_t q = 0; q < G * H; q++) {
                    xw[q] = 0;
                    hr[q] = 0;
                    for (int64_t i = 0; i < I; i++)
                        xw[q] += (double)xr[i] * w[(d * G * H + q) * I + i];
                    for (int64_t m = 0; m < H; m++) hr[q] += h[m] * r[(d * G * H + q) * H + m];
                    if (bias) xw[q] += bias[d * 2 * G * H + q];
                }
                const float *rb = bias ? bias + d * 2 * G * H + G * H : NULL;
                double nh[16];
                for (int64_t j = 0; j < H; j++) {
                    if (kind == 0) {
                        nh[j] = tanh_c(xw[j] + hr[j] + (rb ? rb[j] : 0));
                    } else if (kind == 1) {
                        double z = sigm(xw[j] + hr[j] + (rb ? rb[j] : 0));
                        double rr = sigm(xw[H + j] + hr[H + j] + (rb ? rb[H + j] : 0));
                        /* without linear_before_reset, hh needs r for every j: done below */
                        nh[j] = lbr ? tanh_c(xw[2 * H + j] +
                                             rr * (hr[2 * H + j] + (rb ? rb[2 * H + j] : 0)))
                                    : 0.0;
                        (void)z;
                    } else {
                        const float *pp = p ? p + d * 3 * H : NULL;
                        double gi = xw[j] + hr[j] + (rb ? rb[j] : 0) + (pp ? pp[j] * c[j] : 0);
                        double gf = xw[2 * H + j] + hr[2 * H + j] + (rb ? rb[2 * H + j] : 0) +
                                    (pp ? pp[2 * H + j] * c[j] : 0);
                        double gc = xw[3 * H + j] + hr[3 * H + j] + (rb ? rb[3 * H + j] : 0);
                        double cn = sigm(gf) * c[j] + sigm(gi) * tanh_c(gc);
                        double go = xw[H + j] + hr[H + j] + (rb ? rb[H + j] : 0) +
                                    (pp ? pp[H + j] * cn : 0);
                        nh[j] = sigm(go) * tanh_c(cn);
                        c[j] = cn;
                    }
                }
                if (kind == 1) {
                    double rr[16], z[16];
                    for (int64_t j = 0; j < H; j++) {
                        z[j] = sigm(xw[j] + hr[j] + (rb ? rb[j] : 0));
                        rr[j] = sigm(xw[H + j] + hr[H + j] + (rb ? rb[H + j] : 0));
                    }
                    for (int64_t j = 0; j < H; j++) {
                        double hh = nh[j];
                        if (!lbr) {
                            double acc = 0;
                            for (int64_t m = 0; m < H; m++)
                                acc += rr[m] * h[m] * r[(d * G * H + 2 * H + j) * H + m];
                            hh = tanh_c(xw[2 * H + j] + acc + (rb ? rb[2 * H + j] : 0));
                        }
                        nh[j] = (1 - z[j]) * hh + z[j] * h[j];
                    }
                }
                for (int64_t j = 0; j < H; j++) h[j] = nh[j];
                int64_t yi0 = layout ? ((b * T + t) * dirs + d) * H : ((t * dirs + d) * B + b) * H;
                for (int64_t j = 0; j < H; j++) y[yi0 + j] = h[j];
            }
            for (int64_t j = 0; j < H; j++) {
                int64_t si = layout ? (b * dirs + d) * H + j : (d * B + b) * H + j;
                yh[si] = h[j];
                if (yc) yc[si] = c[j];
            }
        }
}

static void check_recurrent(int kind, const char *direction, int layout, bool lbr, bool with_lens,
                            bool with_init, bool peep, float clip) {
    const char *op = kind == 0 ? "RNN" : kind == 1 ? "GRU" : "LSTM";
    int dirs = !strcmp(direction, "bidirectional") ? 2 : 1;
    int64_t T = 5, B = 3, I = 4, H = 6, G = kind == 0 ? 1 : kind == 1 ? 3 : 4;
    float *x = random_floats(T * B * I), *w = random_floats(dirs * G * H * I);
    float *r = random_floats(dirs * G * H * H), *bias = random_floats(dirs * 2 * G * H);
    float *h0 = random_floats(dirs * B * H), *c0 = random_floats(dirs * B * H);
    float *p = random_floats(dirs * 3 * H);
    int32_t lens[3] = {5, 2, 0};
    int64_t sdims[3] = {layout ? B : dirs, layout ? dirs : B, H};
    tin ins[8] = {
        {"X", 3, {layout ? B : T, layout ? T : B, I}, x, false, NULL},
        {"W", 3, {dirs, G * H, I}, w, true, NULL},
        {"R", 3, {dirs, G * H, H}, r, true, NULL},
        {"B", 2, {dirs, 2 * G * H}, bias, true, NULL},
        {with_lens ? "L" : "", 1, {B}, NULL, false, lens},
        {with_init ? "H0" : "", 3, {sdims[0], sdims[1], sdims[2]}, h0, false, NULL},
        {with_init ? "C0" : "", 3, {sdims[0], sdims[1], sdims[2]}, c0, false, NULL},
        {peep ? "P" : "", 2, {dirs, 3 * H}, p, true, NULL},
    };
    tattr attrs[] = {{"hidden_size", 'i', H, 0, NULL, 0, NULL, NULL},
                     {"direction", 's', 0, 0, direction, 0, NULL, NULL},
                     {"layout", 'i', layout, 0, NULL, 0, NULL, NULL},
                     {"linear_before_reset", 'i', lbr, 0, NULL, 0, NULL, NULL},
                     {"clip", 'f', 0, clip, NULL, 0, NULL, NULL}};
    int n_attrs = kind == 1 ? 4 : 3;
    if (clip > 0) attrs[n_attrs++] = attrs[4];
    int n_outs = kind == 2 ? 3 : 2;
    int64_t ny = T * dirs * B * H, ns = dirs * B * H;
    double *y = calloc((size_t)ny, sizeof(double)), *yh = calloc((size_t)ns, sizeof(double));
    double *yc = calloc((size_t)ns, sizeof(double));
    ref_clip = clip;
    ref_recurrent(kind, dirs, !strcmp(direction, "reverse"), layout, T, B, I, H, x, w, r, bias,
                  with_lens ? lens : NULL, with_init ? h0 : NULL,
                  with_init && kind == 2 ? c0 : NULL, peep ? p : NULL, lbr, y, yh, yc);
    int64_t ydims[4] = {layout ? B : T, layout ? T : dirs, layout ? dirs : B, H};
    char what[128];
    snprintf(what, sizeof what, "%s %s layout %d lbr %d lens %d init %d peep %d clip %g", op,
             direction, layout, lbr, with_lens, with_init, peep, clip);
    for (int threads = 1; threads <= 2; threads++) {
        ember_tensor *out[3] = {NULL, NULL, NULL};
        ember_error err;
        cr_assert_eq(
            run_multi(op, "", attrs, n_attrs, ins, kind == 2 ? 8 : 6, n_outs, threads, out, &err),
            EMBER_OK, "%s: %s", what, err.message);
        expect_close(out[0], y, ydims, 4, what);
        expect_close(out[1], yh, sdims, 3, what);
        if (kind == 2) expect_close(out[2], yc, sdims, 3, what);
        for (int i = 0; i < n_outs; i++) ember_tensor_free(out[i]);
    }
    free(x), free(w), free(r), free(bias), free(h0), free(c0), free(p);
    free(y), free(yh), free(yc);
}

Test(rnn, lstm) {
    check_recurrent(2, "forward", 0, false, false, false, false, 0.0f);
    check_recurrent(2, "bidirectional", 0, false, true, true, true, 0.0f);
    check_recurrent(2, "reverse", 1, false, true, true, false, 0.0f);
    check_recurrent(2, "bidirectional", 1, false, false, true, true, 0.0f);
    check_recurrent(2, "forward", 0, false, true, true, true, 0.4f);
}

Test(rnn, gru) {
    check_recurrent(1, "forward", 0, false, false, false, false, 0.0f);
    check_recurrent(1, "bidirectional", 0, true, true, true, false, 0.0f);
    check_recurrent(1, "bidirectional", 1, false, true, true, false, 0.0f);
    check_recurrent(1, "reverse", 0, true, false, true, false, 0.0f);
    check_recurrent(1, "bidirectional", 0, false, false, true, false, 0.3f);
}

Test(rnn, simple_rnn) {
    check_recurrent(0, "bidirectional", 0, false, true, true, false, 0.0f);
    check_recurrent(0, "reverse", 1, false, true, false, false, 0.0f);
    check_recurrent(0, "forward", 0, false, false, true, false, 0.5f);
}

/* ---- randomized shapes (deterministic) ---- */

static int64_t rand_in(int64_t lo, int64_t hi) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return lo + (int64_t)((rng_state >> 33) % (uint64_t)(hi - lo + 1));
}

static void describe_case(char *buf, size_t size, const char *what, int iter, const conv_case *t) {
    int len = snprintf(buf, size, "%s #%d: n %lld c %lld m %lld group %lld", what, iter,
                       (long long)t->n, (long long)t->c, (long long)t->m, (long long)t->group);
    const char *names[] = {"in", "k", "s", "d", "pb", "pe", "op"};
    const int64_t *vals[] = {t->in, t->k, t->s, t->d, t->pb, t->pe, t->op};
    for (int f = 0; f < 7; f++)
        for (int i = 0; i < t->nsp && len > 0 && (size_t)len < size; i++)
            len += snprintf(buf + len, size - (size_t)len, "%s%s%s%lld", i ? "," : " ",
                            i ? "" : names[f], i ? "" : "=", (long long)vals[f][i]);
}

Test(conv, randomized_shapes) {
    for (int iter = 0; iter < 60; iter++) {
        conv_case t = {0};
        t.nsp = (int)rand_in(1, 3);
        t.n = rand_in(1, 2);
        t.group = rand_in(1, 3);
        if (iter % 5 == 0) t.group = rand_in(2, 6); /* depthwise-like */
        t.c = t.group * (iter % 5 == 0 ? 1 : rand_in(1, 3));
        t.m = t.group * (iter % 5 == 0 ? 1 : rand_in(1, 3));
        for (int i = 0; i < t.nsp; i++) {
            t.k[i] = rand_in(1, t.nsp == 3 ? 3 : 5);
            t.s[i] = rand_in(1, 3);
            t.d[i] = rand_in(1, 2);
            t.pb[i] = rand_in(0, 2);
            t.pe[i] = rand_in(0, 2);
            int64_t ek = (t.k[i] - 1) * t.d[i] + 1;
            t.in[i] = rand_in(ek > 3 ? ek : 3, t.nsp == 3 ? 7 : t.nsp == 2 ? 15 : 40);
        }
        char what[512];
        describe_case(what, sizeof what, "random conv", iter, &t);
        check_conv(t, false, iter % 2 == 0, iter % 3 == 0, iter % 4 != 0, what);
        /* ConvTranspose: output_padding below stride (or dilation). */
        for (int i = 0; i < t.nsp; i++) {
            int64_t lim = (t.s[i] > t.d[i] ? t.s[i] : t.d[i]) - 1;
            t.op[i] = rand_in(0, lim);
            t.in[i] = rand_in(1, t.nsp == 3 ? 4 : 9);
            int64_t full = t.s[i] * (t.in[i] - 1) + t.op[i] + (t.k[i] - 1) * t.d[i] + 1;
            while (t.pb[i] + t.pe[i] >= full) t.pb[i] > 0 ? t.pb[i]-- : t.pe[i]--;
        }
        describe_case(what, sizeof what, "random convtranspose", iter, &t);
        check_conv(t, true, iter % 2 == 1, false, iter % 3 != 0, what);
    }
}

Test(gemm, fused_gemm_and_matmul) {
    const int64_t M = 7, K = 9, N = 11;
    float *a = random_floats(M * K), *b = random_floats(K * N), *c = random_floats(N);
    double relu[7 * 11], leaky[7 * 11];
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            for (int64_t p = 0; p < K; p++) acc += (double)a[i * K + p] * b[p * N + j];
            double g = acc + c[j];
            relu[i * N + j] = g < 0 ? 0 : g;
            leaky[i * N + j] = acc < 0 ? 0.2 * acc : acc;
        }
    tin ins[3] = {{"A", 2, {M, K}, a, false, NULL},
                  {"B", 2, {K, N}, b, true, NULL},
                  {"C", 1, {N}, c, true, NULL}};
    tattr act_relu[] = {{"activation", 's', 0, 0, "Relu", 0, NULL, NULL}};
    tattr act_leaky[] = {{"activation", 's', 0, 0, "LeakyRelu", 0, NULL, NULL},
                         {"activation_params", 'F', 0, 0, NULL, 1, NULL, (const float[]){0.2f}}};
    ember_tensor *y = NULL;
    ember_error err;
    cr_assert_eq(run_single("FusedGemm", "ai.ember", act_relu, 1, ins, 3, 1, &y, &err), EMBER_OK,
                 "%s", err.message);
    expect_close(y, relu, (const int64_t[]){M, N}, 2, "FusedGemm Relu");
    ember_tensor_free(y);
    cr_assert_eq(run_single("FusedMatMul", "ai.ember", act_leaky, 2, ins, 2, 2, &y, &err), EMBER_OK,
                 "%s", err.message);
    expect_close(y, leaky, (const int64_t[]){M, N}, 2, "FusedMatMul LeakyRelu");
    ember_tensor_free(y);
    /* An unknown activation is refused when the session is created. */
    tattr bad[] = {{"activation", 's', 0, 0, "Swish", 0, NULL, NULL}};
    cr_assert_neq(run_single("FusedMatMul", "ai.ember", bad, 1, ins, 2, 1, &y, &err), EMBER_OK);
    cr_assert(strstr(err.message, "Swish"), "message: %s", err.message);
    free(a);
    free(b);
    free(c);
}
