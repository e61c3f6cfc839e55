/* Signal operators: HannWindow, HammingWindow, BlackmanWindow, DFT, STFT, MelWeightMatrix.
 *
 * Transforms compute in float64 whatever the tensor type (float16 / bfloat16 / float / double):
 * each line along the transform axis is loaded into an interleaved complex buffer, transformed
 * and stored (two real lines share one complex transform). Lengths whose prime factors are
 * small use a mixed-radix FFT; others a direct O(n^2) sum when short, Bluestein's chirp-z
 * algorithm on a power-of-two FFT when long, so any length costs O(n log n). The plan (twiddles,
 * chirp) is built once per run in scratch memory and shared read-only by the threads; each
 * thread owns one slot of work buffers. The inverse transform is conj(DFT(conj(x))) / n. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"

#define SIG_PI 3.14159265358979323846

/* Longest transform accepted (elements along the axis): keeps every plan size far from
 * overflow; anything this long would not fit a tensor anyway. */
#define MAX_DFT_LENGTH ((int64_t)1 << 30)

/* Lengths with a prime factor above MAX_RADIX use the direct sum up to this length. */
#define DIRECT_MAX 64

/* ------------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------------- */

/* The executor prefixes kernel errors with the node's description: messages give the reason. */
static ember_status node_fail(ember_error *err, ember_status code, const char *fmt, ...)
    EM_PRINTF(3, 4);

static ember_status node_fail(ember_error *err, ember_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static const em_tensor *opt_input(const em_node *node, em_tensor *const *in, int i) {
    return i < node->n_inputs ? in[i] : NULL;
}

static int op_version(const em_node *node) {
    int v = em_onnx_op_version(node->op_type, node->opset);
    return v > 0 ? v : node->opset;
}

static bool is_real_type(ember_dtype dt) {
    return dt == EMBER_FLOAT || dt == EMBER_DOUBLE || dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16;
}

static void set_unknown(em_tensor *t, ember_dtype dt) {
    t->dtype = dt;
    t->rank = -1;
}

/* A scalar (or one-element) int32/int64 input. Its value is read only when data is present. */
static ember_status check_int_scalar(const em_node *node, const em_tensor *t, int input,
                                     const char *what, ember_error *err) {
    if (t->dtype != EMBER_INT32 && t->dtype != EMBER_INT64)
        return em_unsupported_type(node, input, t->dtype, err);
    if (t->rank >= 0 && em_numel(t) != 1)
        return node_fail(err, EMBER_ERR_SHAPE, "input %d (%s) must be a scalar", input, what);
    return EMBER_OK;
}

static ember_status check_real_scalar(const em_node *node, const em_tensor *t, int input,
                                      const char *what, ember_error *err) {
    if (!is_real_type(t->dtype)) return em_unsupported_type(node, input, t->dtype, err);
    if (t->rank >= 0 && em_numel(t) != 1)
        return node_fail(err, EMBER_ERR_SHAPE, "input %d (%s) must be a scalar", input, what);
    return EMBER_OK;
}

/* The numeric types a generated output (window, mel matrix) may take. */
static bool numeric_output_type(int64_t dt) {
    switch (dt) {
    case EMBER_UINT8: case EMBER_UINT16: case EMBER_UINT32: case EMBER_UINT64:
    case EMBER_INT8: case EMBER_INT16: case EMBER_INT32: case EMBER_INT64:
    case EMBER_FLOAT16: case EMBER_FLOAT: case EMBER_DOUBLE: case EMBER_BFLOAT16:
        return true;
    default:
        return false;
    }
}

static ember_status output_datatype(const em_node *node, ember_dtype *dt, ember_error *err) {
    int64_t v = em_attr_int(node, "output_datatype", EMBER_FLOAT);
    if (!numeric_output_type(v))
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "output_datatype %lld is not a numeric type",
                         (long long)v);
    *dt = (ember_dtype)v;
    return EMBER_OK;
}

/* Store n float64 values into a tensor of any numeric type (Cast semantics). */
static void store_f64(void *dst, ember_dtype dt, const double *src, int64_t n) {
    if (dt == EMBER_DOUBLE) {
        memcpy(dst, src, sizeof(double) * (size_t)n);
    } else if (dt == EMBER_FLOAT) {
        float *restrict d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = (float)src[i];
    } else {
        em_convert(dst, dt, src, EMBER_DOUBLE, n);
    }
}

static ember_status scratch(em_exec *ex, size_t bytes, void **p, ember_error *err) {
    *p = em_exec_scratch(ex, bytes ? bytes : 1, err);
    return *p ? EMBER_OK : (err ? err->code : EMBER_ERR_OUT_OF_MEMORY);
}

/* ------------------------------------------------------------------------------------------
 * Window functions: w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), n in [0, size),
 * N = size (periodic) or size - 1 (symmetric).
 * ---------------------------------------------------------------------------------------- */

static ember_status window_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    ember_dtype dt = EMBER_FLOAT;
    EM_TRY(output_datatype(node, &dt, err));
    int64_t periodic = em_attr_int(node, "periodic", 1);
    if (periodic != 0 && periodic != 1)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "periodic must be 0 or 1, not %lld",
                         (long long)periodic);
    EM_TRY(check_int_scalar(node, in[0], 0, "size", err));
    if (!in[0]->data || in[0]->rank < 0) {
        set_unknown(&out[0], dt);
        return EMBER_OK;
    }
    int64_t size = em_get_i64(in[0], 0);
    if (size < 0)
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, "size %lld is negative", (long long)size);
    em_tensor_set_shape(&out[0], dt, &size, 1);
    return EMBER_OK;
}

static ember_status window_run(const em_node *node, em_tensor *const *in, em_tensor *out,
                               em_exec *ex, double a0, double a1, double a2, ember_error *err) {
    const int64_t size = em_get_i64(in[0], 0);
    if (size == 0) return EMBER_OK;
    const bool periodic = em_attr_int(node, "periodic", 1) != 0;
    double *w;
    if (out[0].dtype == EMBER_DOUBLE) {
        w = out[0].data;
    } else {
        EM_TRY(scratch(ex, sizeof(double) * (size_t)size, (void **)&w, err));
    }
    const int64_t denom = periodic ? size : size - 1;
    if (denom == 0) {
        w[0] = 1.0; /* a one-point symmetric window is [1] (as numpy and PyTorch define it) */
    } else {
        const double step = 2.0 * SIG_PI / (double)denom;
        for (int64_t n = 0; n < size; n++) {
            const double t = step * (double)n;
            w[n] = a0 - a1 * cos(t) + a2 * cos(2.0 * t);
        }
    }
    if (out[0].dtype != EMBER_DOUBLE) store_f64(out[0].data, out[0].dtype, w, size);
    return EMBER_OK;
}

static ember_status hann_run(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    return window_run(node, in, out, ex, 0.5, 0.5, 0.0, err);
}

static ember_status hamming_run(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    return window_run(node, in, out, ex, 25.0 / 46.0, 21.0 / 46.0, 0.0, err);
}

static ember_status blackman_run(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    return window_run(node, in, out, ex, 0.42, 0.5, 0.08, err);
}

/* ------------------------------------------------------------------------------------------
 * FFT engine (complex values interleaved: re, im)
 *
 * Lengths whose prime factors are all <= MAX_RADIX run a self-sorting (Stockham) mixed-radix
 * FFT: radix 4 first, then 2, 3, 5, 7, ...; stage s with radix R reads the R legs of butterfly
 * j = b * ns + q at x[j + r n/R], twiddles them by exp(-2 pi i q r / (ns R)), and writes
 * y[b ns R + q + r ns], ns being the product of the earlier radices; the output comes out in
 * natural order. Each stage stores its twiddles contiguously in q. Other short lengths use the
 * direct sum, other long ones Bluestein's algorithm over a power-of-two Stockham FFT.
 * ---------------------------------------------------------------------------------------- */

enum { FFT_STOCKHAM, FFT_DIRECT, FFT_BLUESTEIN };

#define MAX_RADIX 31
#define MAX_STAGES 64

typedef struct fft_stage {
    int radix;
    int64_t ns;          /* product of the earlier radices */
    const double *tw;    /* ns * (radix - 1) twiddles, [q][r - 1] */
    const double *roots; /* radix roots exp(-2 pi i k / radix), for the generic butterfly */
} fft_stage;

typedef struct fft_seq {
    int64_t len;
    int n_stages;
    fft_stage stages[MAX_STAGES];
} fft_seq;

typedef struct fft_plan {
    int64_t n;      /* transform length */
    int kind;
    fft_seq seq;    /* STOCKHAM: length n; BLUESTEIN: length m */
    int64_t m;      /* BLUESTEIN: power of two >= 2n - 1 */
    double *direct; /* DIRECT: n twiddles exp(-2 pi i k / n) */
    double *chirp;  /* BLUESTEIN: n values exp(-pi i k^2 / n) */
    double *filter; /* BLUESTEIN: FFT of the conjugate chirp filter, scaled by 1/m */
    size_t work;    /* doubles of work memory one line needs */
} fft_plan;

/* Radices of n (4s first); returns the part of n left with a prime factor above MAX_RADIX. */
static int64_t factorize(int64_t n, int *radices, int *count) {
    *count = 0;
    while (n % 4 == 0 && *count < MAX_STAGES) {
        radices[(*count)++] = 4;
        n /= 4;
    }
    for (int p = 2; p <= MAX_RADIX && n > 1; p++)
        while (n % p == 0 && *count < MAX_STAGES) {
            radices[(*count)++] = p;
            n /= p;
        }
    return n;
}

/* Doubles of tables for a sequence of radices. */
static size_t seq_doubles(const int *radices, int count) {
    size_t total = 0, ns = 1;
    for (int s = 0; s < count; s++) {
        total += 2 * (ns * (size_t)(radices[s] - 1) + (size_t)radices[s]);
        ns *= (size_t)radices[s];
    }
    return total;
}

/* Fill the stages and their tables (from mem); returns the doubles used. */
static size_t seq_init(fft_seq *seq, int64_t len, const int *radices, int count, double *mem) {
    seq->len = len;
    seq->n_stages = count;
    double *p = mem;
    int64_t ns = 1;
    for (int s = 0; s < count; s++) {
        const int radix = radices[s];
        fft_stage *st = &seq->stages[s];
        st->radix = radix;
        st->ns = ns;
        st->tw = p;
        for (int64_t q = 0; q < ns; q++)
            for (int r = 1; r < radix; r++) {
                const double t = 2.0 * SIG_PI * (double)(q * r) / (double)(ns * radix);
                p[2 * (q * (radix - 1) + r - 1)] = cos(t);
                p[2 * (q * (radix - 1) + r - 1) + 1] = -sin(t);
            }
        p += 2 * ns * (radix - 1);
        st->roots = p;
        for (int k = 0; k < radix; k++) {
            const double t = 2.0 * SIG_PI * (double)k / (double)radix;
            p[2 * k] = cos(t);
            p[2 * k + 1] = -sin(t);
        }
        p += 2 * radix;
        ns *= radix;
    }
    return (size_t)(p - mem);
}

/* Complex multiply-in-place helpers for the butterflies. */
#define CMUL(or_, oi, ar, ai, br, bi)                                                              \
    do {                                                                                           \
        or_ = (ar) * (br) - (ai) * (bi);                                                           \
        oi = (ar) * (bi) + (ai) * (br);                                                            \
    } while (0)

static void stage_radix2(const double *restrict x, double *restrict y, int64_t n, int64_t ns,
                         const double *restrict tw) {
    const int64_t m = n / 2, blocks = m / ns;
    for (int64_t b = 0; b < blocks; b++) {
        const double *restrict x0 = x + 2 * b * ns, *restrict x1 = x0 + 2 * m;
        double *restrict y0 = y + 4 * b * ns, *restrict y1 = y0 + 2 * ns;
        for (int64_t q = 0; q < ns; q++) {
            double br, bi;
            CMUL(br, bi, x1[2 * q], x1[2 * q + 1], tw[2 * q], tw[2 * q + 1]);
            const double ar = x0[2 * q], ai = x0[2 * q + 1];
            y0[2 * q] = ar + br;
            y0[2 * q + 1] = ai + bi;
            y1[2 * q] = ar - br;
            y1[2 * q + 1] = ai - bi;
        }
    }
}

static void stage_radix3(const double *restrict x, double *restrict y, int64_t n, int64_t ns,
                         const double *restrict tw) {
    const double s3 = 0.86602540378443864676; /* sin(2 pi / 3) */
    const int64_t m = n / 3, blocks = m / ns;
    for (int64_t b = 0; b < blocks; b++) {
        const double *restrict x0 = x + 2 * b * ns, *restrict x1 = x0 + 2 * m,
                               *restrict x2 = x1 + 2 * m;
        double *restrict y0 = y + 6 * b * ns, *restrict y1 = y0 + 2 * ns,
                         *restrict y2 = y1 + 2 * ns;
        for (int64_t q = 0; q < ns; q++) {
            const double *w = tw + 4 * q;
            double v1r, v1i, v2r, v2i;
            CMUL(v1r, v1i, x1[2 * q], x1[2 * q + 1], w[0], w[1]);
            CMUL(v2r, v2i, x2[2 * q], x2[2 * q + 1], w[2], w[3]);
            const double v0r = x0[2 * q], v0i = x0[2 * q + 1];
            const double tr = v1r + v2r, ti = v1i + v2i;
            const double hr = v0r - 0.5 * tr, hi = v0i - 0.5 * ti;
            /* -i sin(2 pi / 3) (v1 - v2) */
            const double dr = s3 * (v1i - v2i), di = -s3 * (v1r - v2r);
            y0[2 * q] = v0r + tr;
            y0[2 * q + 1] = v0i + ti;
            y1[2 * q] = hr + dr;
            y1[2 * q + 1] = hi + di;
            y2[2 * q] = hr - dr;
            y2[2 * q + 1] = hi - di;
        }
    }
}

static void stage_radix4(const double *restrict x, double *restrict y, int64_t n, int64_t ns,
                         const double *restrict tw) {
    const int64_t m = n / 4, blocks = m / ns;
    for (int64_t b = 0; b < blocks; b++) {
        const double *restrict x0 = x + 2 * b * ns, *restrict x1 = x0 + 2 * m,
                               *restrict x2 = x1 + 2 * m, *restrict x3 = x2 + 2 * m;
        double *restrict y0 = y + 8 * b * ns, *restrict y1 = y0 + 2 * ns,
                         *restrict y2 = y1 + 2 * ns, *restrict y3 = y2 + 2 * ns;
        for (int64_t q = 0; q < ns; q++) {
            const double *w = tw + 6 * q;
            double v1r, v1i, v2r, v2i, v3r, v3i;
            CMUL(v1r, v1i, x1[2 * q], x1[2 * q + 1], w[0], w[1]);
            CMUL(v2r, v2i, x2[2 * q], x2[2 * q + 1], w[2], w[3]);
            CMUL(v3r, v3i, x3[2 * q], x3[2 * q + 1], w[4], w[5]);
            const double v0r = x0[2 * q], v0i = x0[2 * q + 1];
            const double ar = v0r + v2r, ai = v0i + v2i, br = v0r - v2r, bi = v0i - v2i;
            const double cr = v1r + v3r, ci = v1i + v3i;
            const double dr = v1i - v3i, di = v3r - v1r; /* -i (v1 - v3) */
            y0[2 * q] = ar + cr;
            y0[2 * q + 1] = ai + ci;
            y2[2 * q] = ar - cr;
            y2[2 * q + 1] = ai - ci;
            y1[2 * q] = br + dr;
            y1[2 * q + 1] = bi + di;
            y3[2 * q] = br - dr;
            y3[2 * q + 1] = bi - di;
        }
    }
}

static void stage_generic(const double *restrict x, double *restrict y, int64_t n, int64_t ns,
                          int radix, const double *restrict tw, const double *restrict roots) {
    const int64_t m = n / radix, blocks = m / ns;
    double v[2 * MAX_RADIX];
    for (int64_t b = 0; b < blocks; b++)
        for (int64_t q = 0; q < ns; q++) {
            const int64_t j = b * ns + q;
            v[0] = x[2 * j];
            v[1] = x[2 * j + 1];
            for (int r = 1; r < radix; r++) {
                const double *w = tw + 2 * (q * (radix - 1) + r - 1);
                CMUL(v[2 * r], v[2 * r + 1], x[2 * (j + r * m)], x[2 * (j + r * m) + 1], w[0],
                     w[1]);
            }
            double *restrict out = y + 2 * (b * ns * radix + q);
            for (int k = 0; k < radix; k++) {
                double re = 0.0, im = 0.0;
                int idx = 0; /* (r * k) mod radix */
                for (int r = 0; r < radix; r++) {
                    re += v[2 * r] * roots[2 * idx] - v[2 * r + 1] * roots[2 * idx + 1];
                    im += v[2 * r] * roots[2 * idx + 1] + v[2 * r + 1] * roots[2 * idx];
                    idx += k;
                    if (idx >= radix) idx -= radix;
                }
                out[2 * k * ns] = re;
                out[2 * k * ns + 1] = im;
            }
        }
}

/* In-place forward FFT of seq->len complex values in x; tmp holds as many. */
static void seq_run(const fft_seq *seq, double *x, double *tmp) {
    double *src = x, *dst = tmp;
    for (int s = 0; s < seq->n_stages; s++) {
        const fft_stage *st = &seq->stages[s];
        switch (st->radix) {
        case 2: stage_radix2(src, dst, seq->len, st->ns, st->tw); break;
        case 3: stage_radix3(src, dst, seq->len, st->ns, st->tw); break;
        case 4: stage_radix4(src, dst, seq->len, st->ns, st->tw); break;
        default: stage_generic(src, dst, seq->len, st->ns, st->radix, st->tw, st->roots); break;
        }
        double *t = src;
        src = dst;
        dst = t;
    }
    if (src != x) memcpy(x, src, sizeof(double) * 2 * (size_t)seq->len);
}

/* Build a plan for length n (1 <= n <= MAX_DFT_LENGTH) with tables in scratch memory. */
static ember_status plan_make(fft_plan *p, int64_t n, em_exec *ex, ember_error *err) {
    memset(p, 0, sizeof *p);
    p->n = n;
    int radices[MAX_STAGES], count;
    double *mem;
    if (factorize(n, radices, &count) == 1) {
        p->kind = FFT_STOCKHAM;
        EM_TRY(scratch(ex, sizeof(double) * seq_doubles(radices, count), (void **)&mem, err));
        seq_init(&p->seq, n, radices, count, mem);
        p->work = 2 * (size_t)n;
        return EMBER_OK;
    }
    if (n <= DIRECT_MAX) {
        p->kind = FFT_DIRECT;
        EM_TRY(scratch(ex, sizeof(double) * 2 * (size_t)n, (void **)&mem, err));
        p->direct = mem;
        for (int64_t k = 0; k < n; k++) {
            const double t = 2.0 * SIG_PI * (double)k / (double)n;
            p->direct[2 * k] = cos(t);
            p->direct[2 * k + 1] = -sin(t);
        }
        p->work = 2 * (size_t)n;
        return EMBER_OK;
    }
    p->kind = FFT_BLUESTEIN;
    int64_t m = 1;
    while (m < 2 * n - 1) m <<= 1;
    p->m = m;
    factorize(m, radices, &count);
    const size_t tables = seq_doubles(radices, count);
    /* tables, chirp, filter, and room to transform the filter */
    EM_TRY(scratch(ex, sizeof(double) * (tables + 2 * (size_t)n + 4 * (size_t)m), (void **)&mem,
                   err));
    seq_init(&p->seq, m, radices, count, mem);
    p->chirp = mem + tables;
    p->filter = p->chirp + 2 * n;
    double *tmp = p->filter + 2 * m;
    for (int64_t k = 0; k < n; k++) {
        /* k^2 mod 2n keeps the angle small, so the chirp stays accurate for long n */
        const int64_t q = (int64_t)(((uint64_t)k * (uint64_t)k) % (uint64_t)(2 * n));
        const double t = SIG_PI * (double)q / (double)n;
        p->chirp[2 * k] = cos(t);
        p->chirp[2 * k + 1] = -sin(t);
    }
    /* filter b[t] = conj(chirp[|t|]) for -n < t < n, wrapped to length m */
    memset(p->filter, 0, sizeof(double) * 2 * (size_t)m);
    for (int64_t k = 0; k < n; k++) {
        p->filter[2 * k] = p->chirp[2 * k];
        p->filter[2 * k + 1] = -p->chirp[2 * k + 1];
        if (k > 0) {
            p->filter[2 * (m - k)] = p->chirp[2 * k];
            p->filter[2 * (m - k) + 1] = -p->chirp[2 * k + 1];
        }
    }
    seq_run(&p->seq, p->filter, tmp);
    const double inv_m = 1.0 / (double)m;
    for (int64_t k = 0; k < 2 * m; k++) p->filter[k] *= inv_m;
    p->work = 4 * (size_t)m;
    return EMBER_OK;
}

/* In-place forward DFT of the n complex values in x; `work` holds plan->work doubles. */
static void plan_forward(const fft_plan *p, double *restrict x, double *restrict work) {
    const int64_t n = p->n;
    if (p->kind == FFT_STOCKHAM) {
        seq_run(&p->seq, x, work);
    } else if (p->kind == FFT_DIRECT) {
        const double *restrict w = p->direct;
        for (int64_t k = 0; k < n; k++) {
            double re = 0.0, im = 0.0;
            int64_t idx = 0; /* (j * k) mod n */
            for (int64_t j = 0; j < n; j++) {
                re += x[2 * j] * w[2 * idx] - x[2 * j + 1] * w[2 * idx + 1];
                im += x[2 * j] * w[2 * idx + 1] + x[2 * j + 1] * w[2 * idx];
                idx += k;
                if (idx >= n) idx -= n;
            }
            work[2 * k] = re;
            work[2 * k + 1] = im;
        }
        memcpy(x, work, sizeof(double) * 2 * (size_t)n);
    } else {
        const int64_t m = p->m;
        const double *restrict c = p->chirp, *restrict f = p->filter;
        double *restrict a = work, *restrict tmp = work + 2 * m;
        for (int64_t k = 0; k < n; k++) {
            a[2 * k] = x[2 * k] * c[2 * k] - x[2 * k + 1] * c[2 * k + 1];
            a[2 * k + 1] = x[2 * k] * c[2 * k + 1] + x[2 * k + 1] * c[2 * k];
        }
        memset(a + 2 * n, 0, sizeof(double) * 2 * (size_t)(m - n));
        seq_run(&p->seq, a, tmp);
        /* multiply by the filter and conjugate, so the next forward FFT is an inverse one */
        for (int64_t k = 0; k < m; k++) {
            const double re = a[2 * k] * f[2 * k] - a[2 * k + 1] * f[2 * k + 1];
            const double im = a[2 * k] * f[2 * k + 1] + a[2 * k + 1] * f[2 * k];
            a[2 * k] = re;
            a[2 * k + 1] = -im;
        }
        seq_run(&p->seq, a, tmp);
        for (int64_t k = 0; k < n; k++) {
            const double re = a[2 * k], im = -a[2 * k + 1];
            x[2 * k] = re * c[2 * k] - im * c[2 * k + 1];
            x[2 * k + 1] = re * c[2 * k + 1] + im * c[2 * k];
        }
    }
}

/* Load `count` samples (stride in elements, 1 or 2 components each) as complex values. */
static void load_line(double *restrict dst, const void *src, ember_dtype dt, int64_t offset,
                      int64_t stride, int64_t count, int comps, const double *restrict window) {
#define LOAD_LINE(T, CONV)                                                                         \
    do {                                                                                           \
        const T *restrict s = (const T *)src + offset;                                             \
        for (int64_t j = 0; j < count; j++) {                                                      \
            const double w = window ? window[j] : 1.0;                                             \
            dst[2 * j] = (double)CONV(s[j * stride]) * w;                                          \
            dst[2 * j + 1] = comps == 2 ? (double)CONV(s[j * stride + 1]) * w : 0.0;               \
        }                                                                                          \
    } while (0)
#define NO_CONV(v) (v)
    switch (dt) {
    case EMBER_FLOAT: LOAD_LINE(float, NO_CONV); break;
    case EMBER_DOUBLE: LOAD_LINE(double, NO_CONV); break;
    case EMBER_FLOAT16: LOAD_LINE(uint16_t, em_f16_to_f32); break;
    default: LOAD_LINE(uint16_t, em_bf16_to_f32); break;
    }
#undef NO_CONV
#undef LOAD_LINE
}

/* Store `count` complex values (times scale; conjugated if asked) at a stride in elements. */
static void store_line(void *dst, ember_dtype dt, int64_t offset, int64_t stride,
                       const double *restrict src, int64_t count, double scale, bool conj) {
    const double si = conj ? -scale : scale;
#define STORE_LINE(T, CONV)                                                                        \
    do {                                                                                           \
        T *restrict d = (T *)dst + offset;                                                         \
        for (int64_t k = 0; k < count; k++) {                                                      \
            d[k * stride] = CONV(src[2 * k] * scale);                                              \
            d[k * stride + 1] = CONV(src[2 * k + 1] * si);                                         \
        }                                                                                          \
    } while (0)
#define TO_FLOAT(v) ((float)(v))
#define TO_DOUBLE(v) (v)
#define TO_F16(v) em_f32_to_f16((float)(v))
#define TO_BF16(v) em_f32_to_bf16((float)(v))
    switch (dt) {
    case EMBER_FLOAT: STORE_LINE(float, TO_FLOAT); break;
    case EMBER_DOUBLE: STORE_LINE(double, TO_DOUBLE); break;
    case EMBER_FLOAT16: STORE_LINE(uint16_t, TO_F16); break;
    default: STORE_LINE(uint16_t, TO_BF16); break;
    }
#undef TO_FLOAT
#undef TO_DOUBLE
#undef TO_F16
#undef TO_BF16
#undef STORE_LINE
}

/* Lines of a transform, split into one contiguous range per thread slot; each slot owns a
 * line buffer (2n doubles) and plan work memory. */
typedef struct line_job {
    const fft_plan *plan;
    const void *x;
    void *y;
    ember_dtype dt;
    int comps;       /* components per input sample: 1 real, 2 complex */
    bool inverse;
    int64_t lines;
    int64_t slots;
    double *work;    /* slots * per_slot doubles */
    size_t per_slot;
    int64_t in_len, out_len, in_stride, out_stride; /* samples read, bins written */
    /* DFT geometry: line l = (o, i) with o = l / inner, i = l % inner */
    int64_t inner, in_dim;
    /* STFT geometry (frames > 0): line l = (batch, frame) */
    int64_t frames, signal_len, step;
    const double *window;
} line_job;

/* Input and output offsets (in elements) of line l. */
static void line_offsets(const line_job *j, int64_t l, int64_t *in_off, int64_t *out_off) {
    if (j->frames > 0) {
        const int64_t b = l / j->frames, f = l % j->frames;
        *in_off = (b * j->signal_len + f * j->step) * j->comps;
        *out_off = l * j->out_len * 2;
    } else {
        const int64_t o = l / j->inner, i = l % j->inner;
        *in_off = (o * j->in_dim * j->inner + i) * j->comps;
        *out_off = (o * j->out_len * j->inner + i) * 2;
    }
}

static void transform_one(const line_job *j, double *buf, double *work, int64_t l) {
    const int64_t n = j->plan->n;
    int64_t in_off, out_off;
    line_offsets(j, l, &in_off, &out_off);
    load_line(buf, j->x, j->dt, in_off, j->in_stride, j->in_len, j->comps, j->window);
    if (j->in_len < n)
        memset(buf + 2 * j->in_len, 0, sizeof(double) * 2 * (size_t)(n - j->in_len));
    if (j->inverse)
        for (int64_t k = 0; k < n; k++) buf[2 * k + 1] = -buf[2 * k + 1];
    plan_forward(j->plan, buf, work);
    store_line(j->y, j->dt, out_off, j->out_stride, buf, j->out_len,
               j->inverse ? 1.0 / (double)n : 1.0, j->inverse);
}

/* Two real lines l, l + 1 in one complex transform of x1 + i x2, separated through the
 * conjugate symmetry: X1[k] = (Z[k] + conj Z[n-k]) / 2, X2[k] = (Z[k] - conj Z[n-k]) / 2i.
 * For real input the inverse is conj(DFT(x)) / n, so only the store differs. `pair` holds
 * 4n doubles. */
static void transform_pair(const line_job *j, double *buf, double *pair, double *work,
                           int64_t l) {
    const int64_t n = j->plan->n, len = j->in_len, bins = j->out_len;
    int64_t in1, out1, in2, out2;
    line_offsets(j, l, &in1, &out1);
    line_offsets(j, l + 1, &in2, &out2);
    load_line(buf, j->x, j->dt, in1, j->in_stride, len, 1, j->window);
    load_line(pair, j->x, j->dt, in2, j->in_stride, len, 1, j->window);
    for (int64_t k = 0; k < len; k++) buf[2 * k + 1] = pair[2 * k];
    if (len < n) memset(buf + 2 * len, 0, sizeof(double) * 2 * (size_t)(n - len));
    plan_forward(j->plan, buf, work);
    double *restrict x1 = pair, *restrict x2 = pair + 2 * bins;
    for (int64_t k = 0; k < bins; k++) {
        const int64_t nk = k ? n - k : 0;
        const double a = buf[2 * k], b = buf[2 * k + 1], c = buf[2 * nk], d = buf[2 * nk + 1];
        x1[2 * k] = 0.5 * (a + c);
        x1[2 * k + 1] = 0.5 * (b - d);
        x2[2 * k] = 0.5 * (b + d);
        x2[2 * k + 1] = 0.5 * (c - a);
    }
    const double scale = j->inverse ? 1.0 / (double)n : 1.0;
    store_line(j->y, j->dt, out1, j->out_stride, x1, bins, scale, j->inverse);
    store_line(j->y, j->dt, out2, j->out_stride, x2, bins, scale, j->inverse);
}

static void line_slots(void *ctx, int64_t begin, int64_t end) {
    const line_job *j = ctx;
    const int64_t n = j->plan->n;
    for (int64_t s = begin; s < end; s++) {
        double *buf = j->work + (size_t)s * j->per_slot;
        double *pair = buf + 2 * n, *work = pair + 4 * n;
        const int64_t lo = j->lines * s / j->slots, hi = j->lines * (s + 1) / j->slots;
        for (int64_t l = lo; l < hi;) {
            if (j->comps == 1 && l + 1 < hi) {
                transform_pair(j, buf, pair, work, l);
                l += 2;
            } else {
                transform_one(j, buf, work, l);
                l++;
            }
        }
    }
}

/* Plan for length n, per-slot memory, then every line across the threads. */
static ember_status run_lines(line_job *j, int64_t n, em_exec *ex, ember_error *err) {
    if (j->lines == 0 || j->out_len == 0) return EMBER_OK;
    fft_plan plan;
    EM_TRY(plan_make(&plan, n, ex, err));
    j->plan = &plan;
    int64_t threads = em_exec_threads(ex);
    /* one slot per thread, fewer when there is little work (a slot costs a parallel task) */
    const double cost =
        (double)j->lines * (double)n * (plan.kind == FFT_DIRECT ? (double)n : 8.0);
    int64_t useful = (int64_t)(cost / 32768.0) + 1;
    j->slots = threads < useful ? threads : useful;
    if (j->slots > j->lines) j->slots = j->lines;
    j->per_slot = 6 * (size_t)n + plan.work; /* line, pair split, plan work */
    EM_TRY(scratch(ex, sizeof(double) * j->per_slot * (size_t)j->slots, (void **)&j->work, err));
    if (j->slots == 1) line_slots(j, 0, 1);
    else em_parallel_for(ex, j->slots, 1, line_slots, j);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * DFT (17: axis attribute; 20: axis input, default -2)
 * ---------------------------------------------------------------------------------------- */

typedef struct dft_params {
    bool known;     /* every value the output shape needs was available */
    int axis;
    int64_t n;      /* transform length */
    int64_t out_len;
    bool inverse, onesided;
} dft_params;

static ember_status dft_params_get(const em_node *node, em_tensor *const *in, dft_params *p,
                                   ember_error *err) {
    memset(p, 0, sizeof *p);
    const em_tensor *x = in[0];
    const int version = op_version(node);
    int64_t inverse = em_attr_int(node, "inverse", 0), onesided = em_attr_int(node, "onesided", 0);
    if ((inverse != 0 && inverse != 1) || (onesided != 0 && onesided != 1))
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "inverse and onesided must be 0 or 1");
    if (inverse && onesided)
        return node_fail(err, EMBER_ERR_INVALID_MODEL,
                         "onesided and inverse cannot both be set");
    p->inverse = inverse;
    p->onesided = onesided;
    if (!is_real_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    const em_tensor *len_t = opt_input(node, in, 1);
    if (len_t) EM_TRY(check_int_scalar(node, len_t, 1, "dft_length", err));
    int64_t axis = 1;
    bool axis_known = true;
    if (version >= 20) {
        axis = -2;
        const em_tensor *axis_t = opt_input(node, in, 2);
        if (axis_t) {
            EM_TRY(check_int_scalar(node, axis_t, 2, "axis", err));
            if (axis_t->data) axis = em_get_i64(axis_t, 0);
            else axis_known = false;
        }
    } else {
        axis = em_attr_int(node, "axis", 1);
    }
    if (x->rank < 0 || !axis_known || (len_t && (!len_t->data || len_t->rank < 0)))
        return EMBER_OK;
    const int r = x->rank;
    if (r < 2)
        return node_fail(err, EMBER_ERR_SHAPE, "input must have rank >= 2, not %d", r);
    if (x->dims[r - 1] != 1 && x->dims[r - 1] != 2)
        return node_fail(err, EMBER_ERR_SHAPE,
                         "the last dimension must be 1 (real) or 2 (complex), not %lld",
                         (long long)x->dims[r - 1]);
    if (axis < -r || axis > r - 2 || axis == -1)
        return node_fail(err, EMBER_ERR_INVALID_MODEL,
                         "axis %lld is out of range for rank %d (the last dimension holds the "
                         "complex components)", (long long)axis, r);
    p->axis = (int)(axis < 0 ? axis + r : axis);
    p->n = x->dims[p->axis];
    if (len_t) {
        p->n = em_get_i64(len_t, 0);
        if (p->n <= 0)
            return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, "dft_length %lld is not positive",
                             (long long)p->n);
    } else if (p->n == 0) {
        return node_fail(err, EMBER_ERR_SHAPE, "the signal along axis %d is empty", p->axis);
    }
    if (p->n > MAX_DFT_LENGTH)
        return node_fail(err, EMBER_ERR_LIMIT, "DFT length %lld is above %lld", (long long)p->n,
                         (long long)MAX_DFT_LENGTH);
    p->out_len = onesided ? p->n / 2 + 1 : p->n;
    p->known = true;
    return EMBER_OK;
}

static ember_status dft_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    dft_params p;
    EM_TRY(dft_params_get(node, in, &p, err));
    if (!p.known) {
        set_unknown(&out[0], in[0]->dtype);
        return EMBER_OK;
    }
    int64_t dims[EM_MAX_RANK];
    memcpy(dims, in[0]->dims, sizeof(int64_t) * (size_t)in[0]->rank);
    dims[p.axis] = p.out_len;
    dims[in[0]->rank - 1] = 2;
    if (em_shape_numel(dims, in[0]->rank) < 0)
        return node_fail(err, EMBER_ERR_LIMIT, "output size overflows");
    em_tensor_set_shape(&out[0], in[0]->dtype, dims, in[0]->rank);
    return EMBER_OK;
}

static ember_status dft_run(const em_node *node, void *state, em_tensor *const *in,
                            em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    dft_params p;
    EM_TRY(dft_params_get(node, in, &p, err));
    const em_tensor *x = in[0];
    const int r = x->rank;
    line_job j = {
        .x = x->data,
        .y = out[0].data,
        .dt = x->dtype,
        .comps = (int)x->dims[r - 1],
        .inverse = p.inverse,
        .inner = 1,
        .in_dim = x->dims[p.axis],
        .out_len = p.out_len,
    };
    for (int d = p.axis + 1; d < r - 1; d++) j.inner *= x->dims[d];
    j.in_stride = j.inner * j.comps;
    j.out_stride = j.inner * 2;
    int64_t outer = 1;
    for (int d = 0; d < p.axis; d++) outer *= x->dims[d];
    j.lines = outer * j.inner;
    j.in_len = j.in_dim < p.n ? j.in_dim : p.n;
    return run_lines(&j, p.n, ex, err);
}

/* ------------------------------------------------------------------------------------------
 * STFT (17): signal [batch][length][1|2], frame_step, optional window [frame_length],
 * optional frame_length -> [batch][frames][bins][2]
 * ---------------------------------------------------------------------------------------- */

typedef struct stft_params {
    bool known;
    int64_t frame_length, step, frames, bins;
} stft_params;

static ember_status stft_params_get(const em_node *node, em_tensor *const *in, stft_params *p,
                                    ember_error *err) {
    memset(p, 0, sizeof *p);
    const em_tensor *x = in[0], *step_t = in[1];
    const em_tensor *win = opt_input(node, in, 2), *len_t = opt_input(node, in, 3);
    int64_t onesided = em_attr_int(node, "onesided", 1);
    if (onesided != 0 && onesided != 1)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "onesided must be 0 or 1");
    if (!is_real_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    EM_TRY(check_int_scalar(node, step_t, 1, "frame_step", err));
    if (win) {
        if (win->dtype != x->dtype)
            return node_fail(err, EMBER_ERR_INVALID_MODEL,
                             "window type %s differs from the signal type %s",
                             em_dtype_name(win->dtype), em_dtype_name(x->dtype));
        if (win->rank >= 0 && win->rank != 1)
            return node_fail(err, EMBER_ERR_SHAPE, "window must have rank 1, not %d", win->rank);
    }
    if (len_t) EM_TRY(check_int_scalar(node, len_t, 3, "frame_length", err));
    if (x->rank >= 0) {
        if (x->rank != 3)
            return node_fail(err, EMBER_ERR_SHAPE,
                             "signal must be [batch, length, 1 or 2], not of rank %d", x->rank);
        if (x->dims[2] != 1 && x->dims[2] != 2)
            return node_fail(err, EMBER_ERR_SHAPE,
                             "the signal's last dimension must be 1 (real) or 2 (complex), "
                             "not %lld", (long long)x->dims[2]);
    }
    if (x->rank < 0 || !step_t->data || step_t->rank < 0 || (win && win->rank < 0) ||
        (len_t && (!len_t->data || len_t->rank < 0)))
        return EMBER_OK;
    p->step = em_get_i64(step_t, 0);
    if (p->step <= 0)
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, "frame_step %lld is not positive",
                         (long long)p->step);
    if (len_t) {
        p->frame_length = em_get_i64(len_t, 0);
        if (win && win->dims[0] != p->frame_length)
            return node_fail(err, EMBER_ERR_SHAPE,
                             "the window length %lld differs from frame_length %lld",
                             (long long)win->dims[0], (long long)p->frame_length);
    } else {
        p->frame_length = win ? win->dims[0] : x->dims[1];
    }
    if (p->frame_length <= 0)
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT, "frame length %lld is not positive",
                         (long long)p->frame_length);
    if (p->frame_length > MAX_DFT_LENGTH)
        return node_fail(err, EMBER_ERR_LIMIT, "frame length %lld is above %lld",
                         (long long)p->frame_length, (long long)MAX_DFT_LENGTH);
    if (x->dims[1] < p->frame_length)
        return node_fail(err, EMBER_ERR_SHAPE, "the signal (%lld samples) is shorter than one "
                         "frame (%lld)", (long long)x->dims[1], (long long)p->frame_length);
    p->frames = 1 + (x->dims[1] - p->frame_length) / p->step;
    p->bins = onesided ? p->frame_length / 2 + 1 : p->frame_length;
    p->known = true;
    return EMBER_OK;
}

static ember_status stft_infer(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, ember_error *err) {
    (void)state;
    stft_params p;
    EM_TRY(stft_params_get(node, in, &p, err));
    if (!p.known) {
        set_unknown(&out[0], in[0]->dtype);
        return EMBER_OK;
    }
    int64_t dims[4] = {in[0]->dims[0], p.frames, p.bins, 2};
    if (em_shape_numel(dims, 4) < 0)
        return node_fail(err, EMBER_ERR_LIMIT, "output size overflows");
    em_tensor_set_shape(&out[0], in[0]->dtype, dims, 4);
    return EMBER_OK;
}

static ember_status stft_run(const em_node *node, void *state, em_tensor *const *in,
                             em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    stft_params p;
    EM_TRY(stft_params_get(node, in, &p, err));
    const em_tensor *x = in[0], *win = opt_input(node, in, 2);
    double *window = NULL;
    if (win) {
        EM_TRY(scratch(ex, sizeof(double) * (size_t)p.frame_length, (void **)&window, err));
        for (int64_t k = 0; k < p.frame_length; k++) window[k] = em_get_f64(win, k);
    }
    line_job j = {
        .x = x->data,
        .y = out[0].data,
        .dt = x->dtype,
        .comps = (int)x->dims[2],
        .lines = x->dims[0] * p.frames,
        .in_len = p.frame_length,
        .out_len = p.bins,
        .in_stride = x->dims[2],
        .out_stride = 2,
        .frames = p.frames,
        .signal_len = x->dims[1],
        .step = p.step,
        .window = window,
    };
    return run_lines(&j, p.frame_length, ex, err);
}

/* ------------------------------------------------------------------------------------------
 * MelWeightMatrix (17): triangular filters between frequency points equally spaced on the mel
 * scale mel(f) = 2595 log10(1 + f / 700), mapped to DFT bins floor((dft_length + 1) f / rate).
 * The arithmetic follows the ONNX reference (mel edges in the input's float precision,
 * num_mel_bins + 2 points spaced by (high - low) / (num_mel_bins + 2), numpy floor division).
 * ---------------------------------------------------------------------------------------- */

/* numpy's float floor division (fmod based, so exact quotients stay exact). */
static double np_floor_divide(double a, double b) {
    const double mod = fmod(a, b);
    double div = (a - mod) / b;
    if (mod != 0.0 && ((b < 0) != (mod < 0))) div -= 1.0;
    if (div == 0.0) return copysign(0.0, a / b);
    double fl = floor(div);
    if (div - fl > 0.5) fl += 1.0;
    return fl;
}

typedef struct mel_params {
    bool known;
    int64_t mel_bins, dft_length, rate, spec_bins;
    double lower, upper;
    bool single; /* edges given in a 32-bit-or-less float type: mel math in float32 */
} mel_params;

static ember_status mel_params_get(const em_node *node, em_tensor *const *in, mel_params *p,
                                   ember_error *err) {
    memset(p, 0, sizeof *p);
    static const char *const names[] = {"num_mel_bins", "dft_length", "sample_rate",
                                        "lower_edge_hertz", "upper_edge_hertz"};
    for (int i = 0; i < 3; i++) EM_TRY(check_int_scalar(node, in[i], i, names[i], err));
    for (int i = 3; i < 5; i++) EM_TRY(check_real_scalar(node, in[i], i, names[i], err));
    for (int i = 0; i < 5; i++)
        if (!in[i]->data || in[i]->rank < 0) return EMBER_OK;
    p->mel_bins = em_get_i64(in[0], 0);
    p->dft_length = em_get_i64(in[1], 0);
    p->rate = em_get_i64(in[2], 0);
    p->lower = em_get_f64(in[3], 0);
    p->upper = em_get_f64(in[4], 0);
    p->single = in[3]->dtype != EMBER_DOUBLE;
    if (p->mel_bins < 0 || p->dft_length <= 0 || p->rate <= 0)
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                         "num_mel_bins (%lld) must be >= 0, dft_length (%lld) and sample_rate "
                         "(%lld) positive", (long long)p->mel_bins, (long long)p->dft_length,
                         (long long)p->rate);
    if (!isfinite(p->lower) || !isfinite(p->upper) || p->lower < 0 || p->upper < p->lower)
        return node_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                         "the edges must satisfy 0 <= lower_edge_hertz (%g) <= upper_edge_hertz "
                         "(%g)", p->lower, p->upper);
    p->spec_bins = p->dft_length / 2 + 1;
    p->known = true;
    return EMBER_OK;
}

/* The num_mel_bins + 2 filter edges as spectrogram bin indices, each checked to be in range. */
static ember_status mel_edges(const mel_params *p, int64_t *edges, ember_error *err) {
    const int64_t points = p->mel_bins + 2;
    double low_mel, step;
    if (p->single) {
        const float lo = 2595.0f * log10f(1.0f + (float)p->lower / 700.0f);
        const float hi = 2595.0f * log10f(1.0f + (float)p->upper / 700.0f);
        low_mel = lo;
        step = (float)((hi - lo) / (float)points);
    } else {
        low_mel = 2595.0 * log10(1.0 + p->lower / 700.0);
        const double hi = 2595.0 * log10(1.0 + p->upper / 700.0);
        step = (hi - low_mel) / (double)points;
    }
    for (int64_t i = 0; i < points; i++) {
        const double mel = (double)i * step + low_mel;
        const double hz = 700.0 * (pow(10.0, mel / 2595.0) - 1.0);
        const double bin = np_floor_divide((double)(p->dft_length + 1) * hz, (double)p->rate);
        if (!(bin >= 0.0 && bin < (double)p->spec_bins))
            return node_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                             "the frequency %g Hz falls outside the %lld spectrogram bins (is "
                             "upper_edge_hertz above sample_rate / 2?)", hz,
                             (long long)p->spec_bins);
        edges[i] = (int64_t)bin;
    }
    return EMBER_OK;
}

static ember_status mel_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    ember_dtype dt = EMBER_FLOAT;
    EM_TRY(output_datatype(node, &dt, err));
    mel_params p;
    EM_TRY(mel_params_get(node, in, &p, err));
    if (!p.known) {
        set_unknown(&out[0], dt);
        return EMBER_OK;
    }
    int64_t dims[2] = {p.spec_bins, p.mel_bins};
    if (em_shape_numel(dims, 2) < 0 || p.mel_bins > (INT64_MAX / 8) - 2)
        return node_fail(err, EMBER_ERR_LIMIT, "output size overflows");
    /* the edges depend only on the inputs: check them now rather than at run time */
    int64_t *edges = malloc(sizeof(int64_t) * (size_t)(p.mel_bins + 2));
    if (!edges) return node_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = mel_edges(&p, edges, err);
    free(edges);
    if (st != EMBER_OK) return st;
    em_tensor_set_shape(&out[0], dt, dims, 2);
    return EMBER_OK;
}

static ember_status mel_run(const em_node *node, void *state, em_tensor *const *in,
                            em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    mel_params p;
    EM_TRY(mel_params_get(node, in, &p, err));
    const int64_t m = p.mel_bins, total = p.spec_bins * m;
    int64_t *edges;
    EM_TRY(scratch(ex, sizeof(int64_t) * (size_t)(m + 2), (void **)&edges, err));
    EM_TRY(mel_edges(&p, edges, err));
    double *w;
    EM_TRY(scratch(ex, sizeof(double) * (size_t)total, (void **)&w, err));
    memset(w, 0, sizeof(double) * (size_t)total);
    for (int64_t i = 0; i < m; i++) {
        const int64_t left = edges[i], center = edges[i + 1], right = edges[i + 2];
        if (center == left) {
            w[center * m + i] = 1.0;
        } else {
            for (int64_t b = left; b <= center; b++)
                w[b * m + i] = (double)(b - left) / (double)(center - left);
        }
        for (int64_t b = center; b < right; b++)
            w[b * m + i] = (double)(right - b) / (double)(right - center);
    }
    store_f64(out[0].data, out[0].dtype, w, total);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------ */

static const em_op k_signal_ops[] = {
    {"", "HannWindow", 17, 0, NULL, window_infer, hann_run, NULL, 0},
    {"", "HammingWindow", 17, 0, NULL, window_infer, hamming_run, NULL, 0},
    {"", "BlackmanWindow", 17, 0, NULL, window_infer, blackman_run, NULL, 0},
    {"", "DFT", 17, 20, NULL, dft_infer, dft_run, NULL, 0},
    {"", "STFT", 17, 0, NULL, stft_infer, stft_run, NULL, 0},
    {"", "MelWeightMatrix", 17, 0, NULL, mel_infer, mel_run, NULL, 0},
};

EM_OPS_FAMILY(signal) {
    *count = sizeof k_signal_ops / sizeof k_signal_ops[0];
    return k_signal_ops;
}
