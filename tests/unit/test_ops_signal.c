/* Signal and misc kernels through the public API on small models built in memory: DFT against
 * a naive sum for power-of-two, short and long (Bluestein) lengths, inverse round trips,
 * dft_length padding, onesided, opset-20 axis input; STFT on complex signals; window edge
 * cases; Det of singular and batched matrices; random operators against numpy's generator for
 * a seed; TfIdfVectorizer modes; the training optimizers with T > 0. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember.h"
#include "model_builder.h"
#include "onnx.pb-c.h"

static Onnx__TensorProto *init_i64(builder *b, const char *name, int64_t v) {
    return init_raw(b, name, EMBER_INT64, 0, NULL, &v, sizeof v);
}

static void expect_f32(const ember_tensor *t, int64_t n, const float *want, double tol) {
    cr_assert_eq(ember_tensor_dtype(t), EMBER_FLOAT);
    cr_assert_eq(ember_tensor_element_count(t), n);
    const float *v = ember_tensor_const_data(t);
    for (int64_t i = 0; i < n; i++)
        cr_assert(fabs((double)v[i] - (double)want[i]) <= tol, "element %lld: %.9g vs %.9g",
                  (long long)i, v[i], want[i]);
}

/* Run a one-input, one-output model; returns the output (caller frees). */
static ember_tensor *run1(builder *b, Onnx__GraphProto *g, int opset, ember_tensor *x,
                          const char *in_name) {
    ember_tensor *y = NULL;
    ember_error err;
    const char *in_names[] = {in_name};
    cr_assert_eq(run_model(b, g, opset, 1, &x, in_names, 1, STRS("y"), &y, &err), EMBER_OK, "%s",
                 err.message);
    return y;
}

/* Deterministic values in [-1, 1). */
static float pseudo(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) / 8388608.0 - 1.0);
}

/* Naive DFT of n complex values (interleaved), in double. */
static void naive_dft(const double *x, int64_t n, double *y, bool inverse) {
    for (int64_t k = 0; k < n; k++) {
        double re = 0, im = 0;
        for (int64_t j = 0; j < n; j++) {
            const double t = (inverse ? 2.0 : -2.0) * M_PI * (double)((j * k) % n) / (double)n;
            re += x[2 * j] * cos(t) - x[2 * j + 1] * sin(t);
            im += x[2 * j] * sin(t) + x[2 * j + 1] * cos(t);
        }
        y[2 * k] = inverse ? re / (double)n : re;
        y[2 * k + 1] = inverse ? im / (double)n : im;
    }
}

/* ---------------------------------------------------------------------------------------------
 * DFT
 * ------------------------------------------------------------------------------------------- */

/* Complex input [1, n, 2] against the naive sum. */
Test(dft, matches_naive_sum_for_many_lengths) {
    /* mixed radix (4, 2, 3, 5, 7, generic 11..31), direct (prime 37 <= 64) and Bluestein (a factor
     * above 31, long) */
    static const int64_t lengths[] = {1,   2,   3,    5,    6,    8,          12,
                                      37,  45,  49,   63,   64,   65,         97,
                                      121, 128, 1000, 1021, 4000, 2 * 37 * 3, 29 * 31};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int64_t n = lengths[li];
        builder b = {0};
        Onnx__GraphProto *g = graph(
            &b, "g", NODES(node(&b, "DFT", STRS("x"), STRS("y"), ATTRS(a_int(&b, "axis", 1)))),
            VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)),
            NO_INITS);
        float *xv = malloc(sizeof(float) * 2 * (size_t)n);
        double *xd = malloc(sizeof(double) * 2 * (size_t)n);
        double *yd = malloc(sizeof(double) * 2 * (size_t)n);
        float *want = malloc(sizeof(float) * 2 * (size_t)n);
        uint32_t seed = (uint32_t)n;
        for (int64_t i = 0; i < 2 * n; i++) xd[i] = xv[i] = pseudo(&seed);
        naive_dft(xd, n, yd, false);
        for (int64_t i = 0; i < 2 * n; i++) want[i] = (float)yd[i];
        ember_tensor *x = tensor_of(EMBER_FLOAT, 3, (int64_t[]){1, n, 2}, xv);
        ember_tensor *y = run1(&b, g, 17, x, "x");
        expect_dims(y, 3, (int64_t[]){1, n, 2});
        expect_f32(y, 2 * n, want, 1e-5 * (double)n + 1e-6);
        ember_tensor_free(x);
        ember_tensor_free(y);
        free(xv);
        free(xd);
        free(yd);
        free(want);
        b_free(&b);
    }
}

/* Real lines go through the transform two at a time: an odd count of lines, forward onesided
 * and inverse (of a real input) against the naive sums. */
Test(dft, real_lines_forward_onesided_and_inverse) {
    static const int64_t lengths[] = {5, 64, 100};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int64_t n = lengths[li], bins = n / 2 + 1;
        for (int inverse = 0; inverse <= 1; inverse++) {
            builder b = {0};
            Onnx__GraphProto *g =
                graph(&b, "g",
                      NODES(node(&b, "DFT", STRS("x"), STRS("y"),
                                 ATTRS(a_int(&b, "axis", 1), a_int(&b, "inverse", inverse),
                                       a_int(&b, "onesided", !inverse)))),
                      VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)),
                      VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)), NO_INITS);
            const int64_t out_len = inverse ? n : bins;
            float *xv = malloc(sizeof(float) * 3 * (size_t)n);
            float *want = malloc(sizeof(float) * 6 * (size_t)n);
            double *xd = malloc(sizeof(double) * 2 * (size_t)n);
            double *yd = malloc(sizeof(double) * 2 * (size_t)n);
            uint32_t seed = 7;
            for (int64_t i = 0; i < 3 * n; i++) xv[i] = pseudo(&seed);
            for (int line = 0; line < 3; line++) {
                for (int64_t i = 0; i < n; i++) {
                    xd[2 * i] = xv[line * n + i];
                    xd[2 * i + 1] = 0;
                }
                naive_dft(xd, n, yd, inverse);
                for (int64_t k = 0; k < 2 * out_len; k++)
                    want[line * 2 * out_len + k] = (float)yd[k];
            }
            ember_tensor *x = tensor_of(EMBER_FLOAT, 3, (int64_t[]){3, n, 1}, xv);
            ember_tensor *y = run1(&b, g, 17, x, "x");
            expect_dims(y, 3, (int64_t[]){3, out_len, 2});
            expect_f32(y, 6 * out_len, want, 1e-5 * (double)n);
            ember_tensor_free(x);
            ember_tensor_free(y);
            free(xv);
            free(want);
            free(xd);
            free(yd);
            b_free(&b);
        }
    }
}

/* DFT then inverse DFT gives the signal back (imaginary part 0), along a middle axis. */
Test(dft, inverse_round_trip) {
    static const int64_t lengths[] = {6, 64, 100};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        const int64_t n = lengths[li], count = 2 * n * 3;
        builder b = {0};
        Onnx__GraphProto *g =
            graph(&b, "g",
                  NODES(node(&b, "DFT", STRS("x"), STRS("f"), ATTRS(a_int(&b, "axis", 1))),
                        node(&b, "DFT", STRS("f"), STRS("y"),
                             ATTRS(a_int(&b, "axis", 1), a_int(&b, "inverse", 1)))),
                  VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)),
                  NO_INITS);
        float *xv = malloc(sizeof(float) * (size_t)count);
        float *want = malloc(sizeof(float) * 2 * (size_t)count);
        uint32_t seed = 99;
        for (int64_t i = 0; i < count; i++) {
            xv[i] = pseudo(&seed);
            want[2 * i] = xv[i];
            want[2 * i + 1] = 0.0f;
        }
        ember_tensor *x = tensor_of(EMBER_FLOAT, 4, (int64_t[]){2, n, 3, 1}, xv);
        ember_tensor *y = run1(&b, g, 17, x, "x");
        expect_dims(y, 4, (int64_t[]){2, n, 3, 2});
        expect_f32(y, 2 * count, want, 1e-5);
        ember_tensor_free(x);
        ember_tensor_free(y);
        free(xv);
        free(want);
        b_free(&b);
    }
}

/* dft_length zero-pads a short signal and truncates a long one. */
Test(dft, dft_length_pads_and_truncates) {
    const float xv[] = {1, 2, 3, 4};
    const int64_t lens[] = {6, 2};
    for (int c = 0; c < 2; c++) {
        const int64_t n = lens[c];
        builder b = {0};
        Onnx__GraphProto *g =
            graph(&b, "g",
                  NODES(node(&b, "DFT", STRS("x", "len"), STRS("y"), ATTRS(a_int(&b, "axis", 1)))),
                  VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)),
                  INITS(init_i64(&b, "len", n)));
        double xd[12] = {0}, yd[12];
        for (int64_t i = 0; i < n && i < 4; i++) xd[2 * i] = xv[i];
        naive_dft(xd, n, yd, false);
        float want[12];
        for (int64_t i = 0; i < 2 * n; i++) want[i] = (float)yd[i];
        ember_tensor *x = tensor_of(EMBER_FLOAT, 3, (int64_t[]){1, 4, 1}, xv);
        ember_tensor *y = run1(&b, g, 17, x, "x");
        expect_dims(y, 3, (int64_t[]){1, n, 2});
        expect_f32(y, 2 * n, want, 1e-5);
        ember_tensor_free(x);
        ember_tensor_free(y);
        b_free(&b);
    }
}

/* onesided keeps floor(n/2) + 1 bins of a real signal; odd n = 7 gives 4. */
Test(dft, onesided_real_input) {
    builder b = {0};
    Onnx__GraphProto *g = graph(&b, "g",
                                NODES(node(&b, "DFT", STRS("x"), STRS("y"),
                                           ATTRS(a_int(&b, "axis", 1), a_int(&b, "onesided", 1)))),
                                VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)),
                                VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)), NO_INITS);
    const float xv[] = {3, -1, 4, 1, -5, 9, 2};
    double xd[14] = {0}, yd[14];
    for (int i = 0; i < 7; i++) xd[2 * i] = xv[i];
    naive_dft(xd, 7, yd, false);
    float want[8];
    for (int i = 0; i < 8; i++) want[i] = (float)yd[i];
    ember_tensor *x = tensor_of(EMBER_FLOAT, 3, (int64_t[]){1, 7, 1}, xv);
    ember_tensor *y = run1(&b, g, 17, x, "x");
    expect_dims(y, 3, (int64_t[]){1, 4, 2});
    expect_f32(y, 8, want, 1e-5);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

Test(dft, onesided_with_inverse_is_rejected) {
    builder b = {0};
    Onnx__GraphProto *g = graph(
        &b, "g",
        NODES(node(&b, "DFT", STRS("x"), STRS("y"),
                   ATTRS(a_int(&b, "inverse", 1), a_int(&b, "onesided", 1)))),
        VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)), NO_INITS);
    ember_tensor *x = tensor_of(EMBER_FLOAT, 3, (int64_t[]){1, 2, 2}, (float[]){1, 0, 2, 0});
    ember_tensor *y = NULL;
    ember_error err;
    ember_status st = run_model(&b, g, 17, 1, &x, STRS("x"), 1, STRS("y"), &y, &err);
    cr_assert_eq(st, EMBER_ERR_INVALID_MODEL, "%s", err.message);
    cr_assert(strstr(err.message, "onesided"), "%s", err.message);
    ember_tensor_free(x);
    b_free(&b);
}

/* Opset 20 takes the axis as an input (here the last signal axis of [1, 3, 4, 1]); double. */
Test(dft, opset20_axis_input_double) {
    builder b = {0};
    Onnx__GraphProto *g =
        graph(&b, "g", NODES(node(&b, "DFT", STRS("x", "", "axis"), STRS("y"), NO_ATTRS)),
              VIS(vi(&b, "x", EMBER_DOUBLE, -1, NULL)), VIS(vi(&b, "y", EMBER_DOUBLE, -1, NULL)),
              INITS(init_i64(&b, "axis", 2)));
    double xv[12];
    for (int i = 0; i < 12; i++) xv[i] = i * i - 3.0;
    ember_tensor *x = tensor_of(EMBER_DOUBLE, 4, (int64_t[]){1, 3, 4, 1}, xv);
    ember_tensor *y = run1(&b, g, 20, x, "x");
    expect_dims(y, 4, (int64_t[]){1, 3, 4, 2});
    const double *yv = ember_tensor_const_data(y);
    for (int r = 0; r < 3; r++) {
        double xd[8] = {0}, yd[8];
        for (int j = 0; j < 4; j++) xd[2 * j] = xv[r * 4 + j];
        naive_dft(xd, 4, yd, false);
        for (int k = 0; k < 8; k++)
            cr_assert(fabs(yv[r * 8 + k] - yd[k]) < 1e-12, "row %d, %d: %g vs %g", r, k,
                      yv[r * 8 + k], yd[k]);
    }
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

/* float16 in and out (computed in float64 inside): [1, 2, 3, 4] -> [10, -2+2i, -2, -2-2i]. */
Test(dft, float16) {
    builder b = {0};
    Onnx__GraphProto *g = graph(&b, "g", NODES(node(&b, "DFT", STRS("x"), STRS("y"), NO_ATTRS)),
                                VIS(vi(&b, "x", EMBER_FLOAT16, -1, NULL)),
                                VIS(vi(&b, "y", EMBER_FLOAT16, -1, NULL)), NO_INITS);
    const uint16_t xv[] = {0x3C00, 0x4000, 0x4200, 0x4400}; /* 1, 2, 3, 4 */
    ember_tensor *x = tensor_of(EMBER_FLOAT16, 3, (int64_t[]){1, 4, 1}, xv);
    ember_tensor *y = run1(&b, g, 17, x, "x");
    expect_dims(y, 3, (int64_t[]){1, 4, 2});
    /* 10, 0, -2, 2, -2, 0, -2, -2; a zero may come out as -0 */
    const uint16_t want[] = {0x4900, 0, 0xC000, 0x4000, 0xC000, 0, 0xC000, 0xC000};
    const uint16_t *v = ember_tensor_const_data(y);
    for (int i = 0; i < 8; i++)
        cr_assert(v[i] == want[i] || (want[i] == 0 && v[i] == 0x8000), "%d: %04x vs %04x", i, v[i],
                  want[i]);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * STFT
 * ------------------------------------------------------------------------------------------- */

/* Complex signal, two-sided: frames = 1 + (10 - 4) / 3 = 3, each the DFT of its slice. */
Test(stft, complex_two_sided_frames) {
    builder b = {0};
    Onnx__GraphProto *g =
        graph(&b, "g",
              NODES(node(&b, "STFT", STRS("x", "step", "", "len"), STRS("y"),
                         ATTRS(a_int(&b, "onesided", 0)))),
              VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)),
              INITS(init_i64(&b, "step", 3), init_i64(&b, "len", 4)));
    float xv[20];
    uint32_t seed = 5;
    for (int i = 0; i < 20; i++) xv[i] = pseudo(&seed);
    ember_tensor *x = tensor_of(EMBER_FLOAT, 3, (int64_t[]){1, 10, 2}, xv);
    ember_tensor *y = run1(&b, g, 17, x, "x");
    expect_dims(y, 4, (int64_t[]){1, 3, 4, 2});
    float want[24];
    for (int f = 0; f < 3; f++) {
        double xd[8], yd[8];
        for (int i = 0; i < 8; i++) xd[i] = xv[f * 3 * 2 + i];
        naive_dft(xd, 4, yd, false);
        for (int i = 0; i < 8; i++) want[f * 8 + i] = (float)yd[i];
    }
    expect_f32(y, 24, want, 1e-5);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

Test(stft, signal_shorter_than_frame_fails) {
    builder b = {0};
    Onnx__GraphProto *g =
        graph(&b, "g", NODES(node(&b, "STFT", STRS("x", "step", "", "len"), STRS("y"), NO_ATTRS)),
              VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)),
              INITS(init_i64(&b, "step", 1), init_i64(&b, "len", 8)));
    ember_tensor *x = tensor_of(EMBER_FLOAT, 3, (int64_t[]){1, 4, 1}, (float[]){1, 2, 3, 4});
    ember_tensor *y = NULL;
    ember_error err;
    ember_status st = run_model(&b, g, 17, 1, &x, STRS("x"), 1, STRS("y"), &y, &err);
    cr_assert_eq(st, EMBER_ERR_SHAPE, "%s", err.message);
    cr_assert(strstr(err.message, "shorter"), "%s", err.message);
    ember_tensor_free(x);
    b_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Windows and MelWeightMatrix
 * ------------------------------------------------------------------------------------------- */

static ember_tensor *run_window(builder *b, const char *op, int32_t size, ember_dtype out,
                                Onnx__AttributeProto **attrs) {
    Onnx__GraphProto *g =
        graph(b, "g", NODES(node(b, op, STRS("n"), STRS("y"), attrs)),
              VIS(vi(b, "n", EMBER_INT32, -1, NULL)), VIS(vi(b, "y", out, -1, NULL)), NO_INITS);
    ember_tensor *n = tensor_of(EMBER_INT32, 0, NULL, &size);
    ember_tensor *y = run1(b, g, 17, n, "n");
    ember_tensor_free(n);
    return y;
}

Test(window, symmetric_size_one_is_one_and_size_zero_is_empty) {
    builder b = {0};
    ember_tensor *y = run_window(&b, "HannWindow", 1, EMBER_FLOAT, ATTRS(a_int(&b, "periodic", 0)));
    expect_dims(y, 1, (int64_t[]){1});
    expect_f32(y, 1, (float[]){1.0f}, 0);
    ember_tensor_free(y);
    y = run_window(&b, "BlackmanWindow", 0, EMBER_FLOAT, NO_ATTRS);
    expect_dims(y, 1, (int64_t[]){0});
    ember_tensor_free(y);
    b_free(&b);
}

Test(window, output_datatype_double_and_int) {
    builder b = {0};
    ember_tensor *y = run_window(&b, "HannWindow", 4, EMBER_DOUBLE,
                                 ATTRS(a_int(&b, "output_datatype", EMBER_DOUBLE)));
    cr_assert_eq(ember_tensor_dtype(y), EMBER_DOUBLE);
    const double *d = ember_tensor_const_data(y);
    const double want[] = {0.0, 0.5, 1.0, 0.5};
    for (int i = 0; i < 4; i++) cr_assert(fabs(d[i] - want[i]) < 1e-15, "%d: %g", i, d[i]);
    ember_tensor_free(y);
    y = run_window(&b, "HannWindow", 4, EMBER_INT32,
                   ATTRS(a_int(&b, "output_datatype", EMBER_INT32)));
    cr_assert_eq(ember_tensor_dtype(y), EMBER_INT32);
    const int32_t *iv = ember_tensor_const_data(y);
    cr_assert(iv[0] == 0 && iv[1] == 0 && iv[2] == 1 && iv[3] == 0);
    ember_tensor_free(y);
    /* Hamming uses a0 = 25/46 exactly: w[0] = 25/46 - 21/46 = 4/46 */
    y = run_window(&b, "HammingWindow", 8, EMBER_FLOAT, NO_ATTRS);
    cr_assert(fabsf(((const float *)ember_tensor_const_data(y))[0] - 4.0f / 46.0f) < 1e-7f);
    ember_tensor_free(y);
    b_free(&b);
}

Test(mel, upper_edge_above_nyquist_fails) {
    builder b = {0};
    int32_t bins = 8, len = 16, rate = 8192;
    float lo = 0, hi = 8192;
    Onnx__GraphProto *g = graph(
        &b, "g",
        NODES(node(&b, "MelWeightMatrix", STRS("m", "n", "r", "lo", "hi"), STRS("y"), NO_ATTRS)),
        (Onnx__ValueInfoProto *[]){NULL}, VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)),
        INITS(init_raw(&b, "m", EMBER_INT32, 0, NULL, &bins, 4),
              init_raw(&b, "n", EMBER_INT32, 0, NULL, &len, 4),
              init_raw(&b, "r", EMBER_INT32, 0, NULL, &rate, 4),
              init_raw(&b, "lo", EMBER_FLOAT, 0, NULL, &lo, 4),
              init_raw(&b, "hi", EMBER_FLOAT, 0, NULL, &hi, 4)));
    ember_tensor *y = NULL;
    ember_error err;
    ember_status st = run_model(&b, g, 17, 0, NULL, NULL, 1, STRS("y"), &y, &err);
    cr_assert_eq(st, EMBER_ERR_INVALID_ARGUMENT, "%s", err.message);
    cr_assert(strstr(err.message, "spectrogram bins"), "%s", err.message);
    b_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Det
 * ------------------------------------------------------------------------------------------- */

static ember_tensor *run_det(builder *b, ember_tensor *x) {
    Onnx__GraphProto *g = graph(b, "g", NODES(node(b, "Det", STRS("x"), STRS("y"), NO_ATTRS)),
                                VIS(vi(b, "x", ember_tensor_dtype(x), -1, NULL)),
                                VIS(vi(b, "y", ember_tensor_dtype(x), -1, NULL)), NO_INITS);
    return run1(b, g, 11, x, "x");
}

Test(det, singular_matrices_are_zero) {
    builder b = {0};
    /* exact elimination: dependent rows, a zero column */
    const float m[3][9] = {
        {1, 2, 3, 2, 4, 6, 1, 1, 1}, {0, 1, 2, 0, 3, 4, 0, 5, 6}, {1, 2, 2, 4, 0, 0, 0, 0, 0}};
    for (int i = 0; i < 3; i++) {
        ember_tensor *x = tensor_of(EMBER_FLOAT, 2, (int64_t[]){3, 3}, m[i]);
        ember_tensor *y = run_det(&b, x);
        expect_dims(y, 0, NULL);
        cr_assert_eq(*(const float *)ember_tensor_const_data(y), 0.0f, "matrix %d: %g", i,
                     *(const float *)ember_tensor_const_data(y));
        ember_tensor_free(x);
        ember_tensor_free(y);
    }
    /* rounding leaves at most a tiny residue */
    ember_tensor *x =
        tensor_of(EMBER_DOUBLE, 2, (int64_t[]){3, 3}, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
    ember_tensor *y = run_det(&b, x);
    cr_assert(fabs(*(const double *)ember_tensor_const_data(y)) < 1e-12);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

Test(det, batched_with_pivoting_and_nan) {
    builder b = {0};
    const float m[4 * 9] = {
        2, -1,  0, 1, 3, 2, 0, 1, 4, /* 24 */
        0, 1,   0, 1, 0, 0, 0, 0, 1, /* row swap: -1 */
        2, 0,   0, 0, 2, 0, 0, 0, 2, /* 8 */
        1, NAN, 0, 0, 1, 0, 0, 0, 1, /* NaN */
    };
    ember_tensor *x = tensor_of(EMBER_FLOAT, 4, (int64_t[]){2, 2, 3, 3}, m);
    ember_tensor *y = run_det(&b, x);
    expect_dims(y, 2, (int64_t[]){2, 2});
    const float *v = ember_tensor_const_data(y);
    cr_assert(fabsf(v[0] - 24.0f) < 1e-5f && v[1] == -1.0f && v[2] == 8.0f && isnan(v[3]),
              "%g %g %g %g", v[0], v[1], v[2], v[3]);
    ember_tensor_free(x);
    ember_tensor_free(y);
    /* a 0 x 0 matrix has determinant 1 */
    x = tensor_of(EMBER_FLOAT, 3, (int64_t[]){2, 0, 0}, NULL);
    y = run_det(&b, x);
    expect_dims(y, 1, (int64_t[]){2});
    expect_f32(y, 2, (float[]){1, 1}, 0);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Random operators (values from numpy 1.x: np.random.seed(s) then the same call)
 * ------------------------------------------------------------------------------------------- */

static ember_tensor *run_generator(builder *b, const char *op, Onnx__AttributeProto **attrs) {
    Onnx__GraphProto *g =
        graph(b, "g", NODES(node(b, op, (const char *[]){NULL}, STRS("y"), attrs)),
              (Onnx__ValueInfoProto *[]){NULL}, VIS(vi(b, "y", EMBER_FLOAT, -1, NULL)), NO_INITS);
    ember_tensor *y = NULL;
    ember_error err;
    cr_assert_eq(run_model(b, g, 17, 0, NULL, NULL, 1, STRS("y"), &y, &err), EMBER_OK, "%s",
                 err.message);
    return y;
}

Test(random, uniform_matches_numpy_for_a_seed) {
    builder b = {0};
    /* np.random.seed(5); np.random.uniform(-1, 3, (2, 3)) */
    ember_tensor *y = run_generator(&b, "RandomUniform",
                                    ATTRS(a_ints(&b, "shape", INTS(2, 3)), a_float(&b, "low", -1),
                                          a_float(&b, "high", 3), a_float(&b, "seed", 5)));
    expect_dims(y, 2, (int64_t[]){2, 3});
    expect_f32(
        y, 6,
        (float[]){-0.11202732f, 2.4829292f, -0.17312337f, 2.6744437f, 0.95364475f, 1.4469755f},
        1e-6);
    ember_tensor_free(y);
    b_free(&b);
}

Test(random, normal_matches_numpy_and_repeats_per_run) {
    builder b = {0};
    /* np.random.seed(7); np.random.normal(0.5, 2.0, 5) */
    const float want[] = {3.8810513f, -0.43187475f, 0.56564033f, 1.3150326f, -1.077846f};
    for (int run = 0; run < 2; run++) {
        ember_tensor *y =
            run_generator(&b, "RandomNormal",
                          ATTRS(a_ints(&b, "shape", INTS(5)), a_float(&b, "mean", 0.5f),
                                a_float(&b, "scale", 2.0f), a_float(&b, "seed", 7)));
        expect_f32(y, 5, want, 1e-6);
        ember_tensor_free(y);
    }
    b_free(&b);
}

Test(random, unseeded_runs_differ) {
    builder b = {0};
    ember_tensor *y1 = run_generator(&b, "RandomUniform", ATTRS(a_ints(&b, "shape", INTS(64))));
    ember_tensor *y2 = run_generator(&b, "RandomUniform", ATTRS(a_ints(&b, "shape", INTS(64))));
    const float *a = ember_tensor_const_data(y1), *c = ember_tensor_const_data(y2);
    int same = 0;
    for (int i = 0; i < 64; i++) {
        cr_assert(a[i] >= 0.0f && a[i] < 1.0f);
        same += a[i] == c[i];
    }
    cr_assert_lt(same, 64);
    ember_tensor_free(y1);
    ember_tensor_free(y2);
    b_free(&b);
}

static Onnx__GraphProto *bernoulli_graph(builder *b, ember_dtype out,
                                         Onnx__AttributeProto **attrs) {
    return graph(b, "g", NODES(node(b, "Bernoulli", STRS("x"), STRS("y"), attrs)),
                 VIS(vi(b, "x", EMBER_FLOAT, -1, NULL)), VIS(vi(b, "y", out, -1, NULL)), NO_INITS);
}

Test(random, bernoulli_matches_numpy_binomial) {
    builder b = {0};
    const float p[] = {0.1f, 0.9f, 0.5f, 0.0f, 1.0f, 0.3f, 0.7f, 0.25f};
    /* np.random.seed(11); np.random.binomial(1, p) with p as float32 */
    const int64_t want[] = {0, 1, 0, 0, 1, 0, 1, 0};
    Onnx__GraphProto *g = bernoulli_graph(
        &b, EMBER_INT64, ATTRS(a_float(&b, "seed", 11), a_int(&b, "dtype", EMBER_INT64)));
    ember_tensor *x = tensor_of(EMBER_FLOAT, 1, (int64_t[]){8}, p);
    ember_tensor *y = run1(&b, g, 15, x, "x");
    cr_assert_eq(ember_tensor_dtype(y), EMBER_INT64);
    const int64_t *v = ember_tensor_const_data(y);
    for (int i = 0; i < 8; i++) cr_assert_eq(v[i], want[i], "element %d", i);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

Test(random, bernoulli_rejects_probability_outside_unit_interval) {
    builder b = {0};
    Onnx__GraphProto *g = bernoulli_graph(&b, EMBER_FLOAT, NO_ATTRS);
    ember_tensor *x = tensor_of(EMBER_FLOAT, 1, (int64_t[]){2}, (float[]){0.5f, 1.5f});
    ember_tensor *y = NULL;
    ember_error err;
    ember_status st = run_model(&b, g, 15, 1, &x, STRS("x"), 1, STRS("y"), &y, &err);
    cr_assert_eq(st, EMBER_ERR_INVALID_ARGUMENT, "%s", err.message);
    cr_assert(strstr(err.message, "index 1"), "%s", err.message);
    ember_tensor_free(x);
    b_free(&b);
}

Test(random, multinomial_masks_and_frequencies) {
    builder b = {0};
    Onnx__GraphProto *g = graph(
        &b, "g",
        NODES(node(&b, "Multinomial", STRS("x"), STRS("y"),
                   ATTRS(a_int(&b, "sample_size", 4000), a_int(&b, "dtype", EMBER_INT64),
                         a_float(&b, "seed", 3)))),
        VIS(vi(&b, "x", EMBER_FLOAT, -1, NULL)), VIS(vi(&b, "y", EMBER_INT64, -1, NULL)), NO_INITS);
    const float logits[] = {-INFINITY, 0, -INFINITY, logf(0.2f), logf(0.8f), -INFINITY};
    ember_tensor *x = tensor_of(EMBER_FLOAT, 2, (int64_t[]){2, 3}, logits);
    ember_tensor *y = run1(&b, g, 7, x, "x");
    expect_dims(y, 2, (int64_t[]){2, 4000});
    const int64_t *v = ember_tensor_const_data(y);
    int ones = 0;
    for (int s = 0; s < 4000; s++) {
        cr_assert_eq(v[s], 1, "row 0 sample %d: %lld", s, (long long)v[s]);
        cr_assert(v[4000 + s] == 0 || v[4000 + s] == 1);
        ones += v[4000 + s] == 1;
    }
    cr_assert(ones > 3100 && ones < 3300, "class 1 drawn %d of 4000 times (p = 0.8)", ones);
    ember_tensor_free(x);
    ember_tensor_free(y);
    b_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * TfIdfVectorizer
 * ------------------------------------------------------------------------------------------- */

/* Pool: unigrams 2, 3; bigrams (2,3), (3,2). Row [2, 3, 2, 5, 3] with skips up to 1:
 * unigrams 2 x2, 3 x2; bigrams at distance 1: (2,3), (3,2); at distance 2: (2,3). */
static ember_tensor *run_tfidf(builder *b, const char *mode, bool weights) {
    Onnx__AttributeProto **attrs =
        ATTRS(a_int(b, "min_gram_length", 1), a_int(b, "max_gram_length", 2),
              a_int(b, "max_skip_count", 1), a_str(b, "mode", mode),
              a_ints(b, "ngram_counts", INTS(0, 2)), a_ints(b, "ngram_indexes", INTS(0, 1, 2, 3)),
              a_ints(b, "pool_int64s", INTS(2, 3, 2, 3, 3, 2)),
              weights ? a_floats(b, "weights", FLOATS(0.5f, 2, 3, 4)) : NULL);
    Onnx__GraphProto *g = graph(
        b, "g", NODES(node(b, "TfIdfVectorizer", STRS("x"), STRS("y"), attrs)),
        VIS(vi(b, "x", EMBER_INT64, -1, NULL)), VIS(vi(b, "y", EMBER_FLOAT, -1, NULL)), NO_INITS);
    ember_tensor *x = tensor_of(EMBER_INT64, 1, (int64_t[]){5}, (int64_t[]){2, 3, 2, 5, 3});
    ember_tensor *y = run1(b, g, 9, x, "x");
    ember_tensor_free(x);
    return y;
}

Test(tfidf, modes_with_skips_and_weights) {
    builder b = {0};
    ember_tensor *y = run_tfidf(&b, "TF", false);
    expect_dims(y, 1, (int64_t[]){4});
    expect_f32(y, 4, (float[]){2, 2, 2, 1}, 0);
    ember_tensor_free(y);
    y = run_tfidf(&b, "TFIDF", true);
    expect_f32(y, 4, (float[]){1, 4, 6, 4}, 0);
    ember_tensor_free(y);
    y = run_tfidf(&b, "IDF", true);
    expect_f32(y, 4, (float[]){0.5f, 2, 3, 4}, 0);
    ember_tensor_free(y);
    y = run_tfidf(&b, "IDF", false);
    expect_f32(y, 4, (float[]){1, 1, 1, 1}, 0);
    ember_tensor_free(y);
    b_free(&b);
}

/* A repeated pool entry counts into the coordinate of its last occurrence; int32 [B, C]. */
Test(tfidf, repeated_pool_entry_and_string_pool_rejected) {
    builder b = {0};
    Onnx__GraphProto *g = graph(
        &b, "g",
        NODES(node(&b, "TfIdfVectorizer", STRS("x"), STRS("y"),
                   ATTRS(a_int(&b, "min_gram_length", 1), a_int(&b, "max_gram_length", 1),
                         a_int(&b, "max_skip_count", 0), a_str(&b, "mode", "TF"),
                         a_ints(&b, "ngram_counts", INTS(0)),
                         a_ints(&b, "ngram_indexes", INTS(0, 1, 2)),
                         a_ints(&b, "pool_int64s", INTS(7, 8, 7))))),
        VIS(vi(&b, "x", EMBER_INT32, -1, NULL)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)), NO_INITS);
    ember_tensor *x = tensor_of(EMBER_INT32, 2, (int64_t[]){2, 3}, (int32_t[]){7, 7, 8, 1, 2, 3});
    ember_tensor *y = run1(&b, g, 9, x, "x");
    expect_dims(y, 2, (int64_t[]){2, 3});
    expect_f32(y, 6, (float[]){0, 1, 2, 0, 0, 0}, 0);
    ember_tensor_free(x);
    ember_tensor_free(y);

    Onnx__AttributeProto *strings =
        a_new(&b, "pool_strings", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    strings->n_strings = 1;
    strings->strings = b_alloc(&b, sizeof(ProtobufCBinaryData));
    strings->strings[0].data = (uint8_t *)b_str(&b, "a");
    strings->strings[0].len = 1;
    g = graph(&b, "g",
              NODES(node(&b, "TfIdfVectorizer", STRS("x"), STRS("y"),
                         ATTRS(a_int(&b, "min_gram_length", 1), a_int(&b, "max_gram_length", 1),
                               a_int(&b, "max_skip_count", 0), a_str(&b, "mode", "TF"),
                               a_ints(&b, "ngram_counts", INTS(0)),
                               a_ints(&b, "ngram_indexes", INTS(0)), strings))),
              VIS(vi(&b, "x", EMBER_INT32, -1, NULL)), VIS(vi(&b, "y", EMBER_FLOAT, -1, NULL)),
              NO_INITS);
    x = tensor_of(EMBER_INT32, 1, (int64_t[]){1}, (int32_t[]){1});
    ember_error err;
    ember_status st = run_model(&b, g, 9, 1, &x, STRS("x"), 1, STRS("y"), &y, &err);
    cr_assert_eq(st, EMBER_ERR_UNSUPPORTED, "%s", err.message);
    ember_tensor_free(x);
    b_free(&b);
}

/* ---------------------------------------------------------------------------------------------
 * Training optimizers with T > 0 (bias correction, beta applied)
 * ------------------------------------------------------------------------------------------- */

static void run_optimizer(builder *b, const char *op, const char **ins, const char **outs,
                          Onnx__AttributeProto **attrs, int n_in, ember_tensor **inputs, int n_out,
                          ember_tensor **outputs) {
    Onnx__ValueInfoProto **ivi = b_alloc(b, sizeof *ivi * (size_t)(n_in + 1));
    Onnx__ValueInfoProto **ovi = b_alloc(b, sizeof *ovi * (size_t)(n_out + 1));
    for (int i = 0; i < n_in; i++) ivi[i] = vi(b, ins[i], ember_tensor_dtype(inputs[i]), -1, NULL);
    for (int i = 0; i < n_out; i++) ovi[i] = vi(b, outs[i], EMBER_FLOAT, -1, NULL);
    Onnx__GraphProto *g =
        graph(b, "g", NODES(node_in(b, "ai.onnx.preview.training", op, ins, outs, attrs)), ivi, ovi,
              NO_INITS);
    ember_error err;
    cr_assert_eq(run_model(b, g, 17, n_in, inputs, ins, n_out, outs, outputs, &err), EMBER_OK, "%s",
                 err.message);
}

Test(training, adam_bias_correction) {
    builder b = {0};
    const double alpha = 0.9, beta = 0.99, eps = 1e-3, norm = 0.01, post = 0.1, r = 0.5;
    const int64_t t = 3;
    const float x[] = {1.0f, -2.0f}, g[] = {0.5f, 1.5f}, v[] = {0.1f, -0.2f}, h[] = {0.3f, 0.4f};
    ember_tensor *in[6] = {
        tensor_of(EMBER_FLOAT, 0, NULL, (float[]){(float)r}),
        tensor_of(EMBER_INT64, 0, NULL, &t),
        tensor_of(EMBER_FLOAT, 1, (int64_t[]){2}, x),
        tensor_of(EMBER_FLOAT, 1, (int64_t[]){2}, g),
        tensor_of(EMBER_FLOAT, 1, (int64_t[]){2}, v),
        tensor_of(EMBER_FLOAT, 1, (int64_t[]){2}, h),
    };
    ember_tensor *out[3] = {0};
    run_optimizer(&b, "Adam", STRS("R", "T", "X", "G", "V", "H"), STRS("X2", "V2", "H2"),
                  ATTRS(a_float(&b, "alpha", (float)alpha), a_float(&b, "beta", (float)beta),
                        a_float(&b, "epsilon", (float)eps),
                        a_float(&b, "norm_coefficient", (float)norm),
                        a_float(&b, "norm_coefficient_post", (float)post)),
                  6, in, 3, out);
    float wx[2], wv[2], wh[2];
    for (int i = 0; i < 2; i++) {
        const double gr = norm * x[i] + g[i];
        const double vn = alpha * v[i] + (1 - alpha) * gr;
        const double hn = beta * h[i] + (1 - beta) * gr * gr;
        const double ra = r * sqrt(1 - pow(beta, t)) / (1 - pow(alpha, t));
        wx[i] = (float)((1 - post) * (x[i] - ra * vn / (sqrt(hn) + eps)));
        wv[i] = (float)vn;
        wh[i] = (float)hn;
    }
    expect_f32(out[0], 2, wx, 1e-5);
    expect_f32(out[1], 2, wv, 1e-6);
    expect_f32(out[2], 2, wh, 1e-6);
    for (int i = 0; i < 6; i++) ember_tensor_free(in[i]);
    for (int i = 0; i < 3; i++) ember_tensor_free(out[i]);
    b_free(&b);
}

Test(training, nesterov_momentum_after_first_step) {
    builder b = {0};
    const float x[] = {1.0f, 2.0f}, g[] = {-1.0f, 0.5f}, v[] = {0.5f, 0.25f};
    const int64_t t = 1;
    ember_tensor *in[5] = {
        tensor_of(EMBER_FLOAT, 0, NULL, (float[]){0.1f}),
        tensor_of(EMBER_INT64, 0, NULL, &t),
        tensor_of(EMBER_FLOAT, 1, (int64_t[]){2}, x),
        tensor_of(EMBER_FLOAT, 1, (int64_t[]){2}, g),
        tensor_of(EMBER_FLOAT, 1, (int64_t[]){2}, v),
    };
    ember_tensor *out[2] = {0};
    run_optimizer(&b, "Momentum", STRS("R", "T", "X", "G", "V"), STRS("X2", "V2"),
                  ATTRS(a_float(&b, "alpha", 0.5f), a_float(&b, "beta", 0.25f),
                        a_str(&b, "mode", "nesterov"), a_float(&b, "norm_coefficient", 0.0f)),
                  5, in, 2, out);
    float wx[2], wv[2];
    for (int i = 0; i < 2; i++) {
        const double vn = 0.5 * v[i] + 0.25 * g[i];
        wv[i] = (float)vn;
        wx[i] = (float)(x[i] - 0.1 * (g[i] + 0.5 * vn));
    }
    expect_f32(out[0], 2, wx, 1e-6);
    expect_f32(out[1], 2, wv, 1e-6);
    for (int i = 0; i < 5; i++) ember_tensor_free(in[i]);
    for (int i = 0; i < 2; i++) ember_tensor_free(out[i]);
    b_free(&b);
}
