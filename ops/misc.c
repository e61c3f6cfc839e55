/* Miscellaneous operators: Det; the random generators (RandomUniform, RandomNormal, their *Like
 * forms, Bernoulli, Multinomial); the training optimizers of domain ai.onnx.preview.training
 * (Adagrad, Adam, Momentum); TfIdfVectorizer over integer tokens.
 *
 * Random numbers come from MT19937 used the way numpy's legacy RandomState uses it (53-bit
 * doubles, polar Gaussian, inversion binomial), so with a `seed` attribute the outputs equal
 * numpy's for np.random.seed(seed): RandomUniform = np.random.uniform(low, high, shape),
 * RandomNormal = np.random.normal(mean, scale, shape), Bernoulli = np.random.binomial(1, p).
 * A seeded node restarts from its seed on every run (same output each run, no state shared
 * between concurrent runs); without a seed every run draws a fresh one from the clocks. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel.h"

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

static bool has_output(const em_node *node, const em_tensor *out, int i) {
    return i < node->n_outputs && node->outputs[i] >= 0 && out[i].data != NULL;
}

static bool is_real_type(ember_dtype dt) {
    return dt == EMBER_FLOAT || dt == EMBER_DOUBLE || dt == EMBER_FLOAT16 || dt == EMBER_BFLOAT16;
}

static ember_status scratch(em_exec *ex, size_t bytes, void **p, ember_error *err) {
    *p = em_exec_scratch(ex, bytes ? bytes : 1, err);
    return *p ? EMBER_OK : (err ? err->code : EMBER_ERR_OUT_OF_MEMORY);
}

/* Element i of a float16 / bfloat16 / float / double tensor. */
static inline double real_at(const void *p, ember_dtype dt, int64_t i) {
    switch (dt) {
    case EMBER_FLOAT: return ((const float *)p)[i];
    case EMBER_DOUBLE: return ((const double *)p)[i];
    case EMBER_FLOAT16: return em_f16_to_f32(((const uint16_t *)p)[i]);
    default: return em_bf16_to_f32(((const uint16_t *)p)[i]);
    }
}

static inline void real_put(void *p, ember_dtype dt, int64_t i, double v) {
    switch (dt) {
    case EMBER_FLOAT: ((float *)p)[i] = (float)v; break;
    case EMBER_DOUBLE: ((double *)p)[i] = v; break;
    case EMBER_FLOAT16: ((uint16_t *)p)[i] = em_f32_to_f16((float)v); break;
    default: ((uint16_t *)p)[i] = em_f32_to_bf16((float)v); break;
    }
}

/* ------------------------------------------------------------------------------------------
 * Det: LU decomposition with partial pivoting in float64, one matrix at a time.
 * ---------------------------------------------------------------------------------------- */

static ember_status det_infer(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    if (!is_real_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank < 0) {
        out[0].dtype = x->dtype;
        out[0].rank = -1;
        return EMBER_OK;
    }
    if (x->rank < 2)
        return node_fail(err, EMBER_ERR_SHAPE, "input must have rank >= 2, not %d", x->rank);
    if (x->dims[x->rank - 1] != x->dims[x->rank - 2])
        return node_fail(err, EMBER_ERR_SHAPE, "matrices must be square, not %lld x %lld",
                         (long long)x->dims[x->rank - 2], (long long)x->dims[x->rank - 1]);
    em_tensor_set_shape(&out[0], x->dtype, x->dims, x->rank - 2);
    return EMBER_OK;
}

/* Determinant of the m x m matrix in a (destroyed). */
static double det_lu(double *restrict a, int64_t m) {
    for (int64_t i = 0; i < m * m; i++)
        if (isnan(a[i])) return NAN;
    double det = 1.0;
    for (int64_t k = 0; k < m; k++) {
        int64_t p = k;
        double best = fabs(a[k * m + k]);
        for (int64_t i = k + 1; i < m; i++)
            if (fabs(a[i * m + k]) > best) {
                best = fabs(a[i * m + k]);
                p = i;
            }
        if (best == 0.0) return 0.0; /* singular */
        if (p != k) {
            for (int64_t j = 0; j < m; j++) {
                double t = a[k * m + j];
                a[k * m + j] = a[p * m + j];
                a[p * m + j] = t;
            }
            det = -det;
        }
        const double pivot = a[k * m + k];
        det *= pivot;
        for (int64_t i = k + 1; i < m; i++) {
            const double f = a[i * m + k] / pivot;
            if (f == 0.0) continue;
            double *restrict row = a + i * m;
            const double *restrict top = a + k * m;
            for (int64_t j = k + 1; j < m; j++) row[j] -= f * top[j];
        }
    }
    return det;
}

typedef struct det_job {
    const void *x;
    void *y;
    ember_dtype dt;
    int64_t m, batch, slots;
    double *work; /* slots * m * m */
} det_job;

static void det_slots(void *ctx, int64_t begin, int64_t end) {
    const det_job *j = ctx;
    const int64_t mm = j->m * j->m;
    for (int64_t s = begin; s < end; s++) {
        double *a = j->work + s * mm;
        for (int64_t b = j->batch * s / j->slots; b < j->batch * (s + 1) / j->slots; b++) {
            for (int64_t i = 0; i < mm; i++) a[i] = real_at(j->x, j->dt, b * mm + i);
            real_put(j->y, j->dt, b, det_lu(a, j->m));
        }
    }
}

static ember_status det_run(const em_node *node, void *state, em_tensor *const *in,
                            em_tensor *out, em_exec *ex, ember_error *err) {
    (void)node;
    (void)state;
    const em_tensor *x = in[0];
    det_job j = {.x = x->data, .y = out[0].data, .dt = x->dtype, .m = x->dims[x->rank - 1]};
    j.batch = em_numel(&out[0]);
    if (j.batch == 0) return EMBER_OK;
    const double flops = (double)j.batch * (double)j.m * (double)j.m * (double)(j.m + 1);
    int64_t useful = (int64_t)(flops / 65536.0) + 1, threads = em_exec_threads(ex);
    j.slots = threads < useful ? threads : useful;
    if (j.slots > j.batch) j.slots = j.batch;
    EM_TRY(scratch(ex, sizeof(double) * (size_t)(j.m * j.m) * (size_t)j.slots,
                   (void **)&j.work, err));
    if (j.slots == 1) det_slots(&j, 0, 1);
    else em_parallel_for(ex, j.slots, 1, det_slots, &j);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * MT19937 with numpy's legacy sampling
 * ---------------------------------------------------------------------------------------- */

#define MT_N 624
#define MT_M 397

typedef struct mt19937 {
    uint32_t mt[MT_N];
    int mti;
    bool has_gauss;
    double gauss;
} mt19937;

static void mt_seed(mt19937 *r, uint32_t s) {
    r->mt[0] = s;
    for (int i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mti = MT_N;
    r->has_gauss = false;
    r->gauss = 0.0;
}

static void mt_seed_array(mt19937 *r, const uint32_t *key, int len) {
    mt_seed(r, 19650218u);
    int i = 1, j = 0;
    for (int k = MT_N > len ? MT_N : len; k > 0; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] +
                   (uint32_t)j;
        i++;
        j++;
        if (i >= MT_N) {
            r->mt[0] = r->mt[MT_N - 1];
            i = 1;
        }
        if (j >= len) j = 0;
    }
    for (int k = MT_N - 1; k > 0; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) -
                   (uint32_t)i;
        i++;
        if (i >= MT_N) {
            r->mt[0] = r->mt[MT_N - 1];
            i = 1;
        }
    }
    r->mt[0] = 0x80000000u;
}

static uint32_t mt_next(mt19937 *r) {
    if (r->mti >= MT_N) {
        static const uint32_t mag[2] = {0u, 0x9908b0dfu};
        int k;
        for (k = 0; k < MT_N - MT_M; k++) {
            uint32_t y = (r->mt[k] & 0x80000000u) | (r->mt[k + 1] & 0x7fffffffu);
            r->mt[k] = r->mt[k + MT_M] ^ (y >> 1) ^ mag[y & 1u];
        }
        for (; k < MT_N - 1; k++) {
            uint32_t y = (r->mt[k] & 0x80000000u) | (r->mt[k + 1] & 0x7fffffffu);
            r->mt[k] = r->mt[k + (MT_M - MT_N)] ^ (y >> 1) ^ mag[y & 1u];
        }
        uint32_t y = (r->mt[MT_N - 1] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[MT_N - 1] = r->mt[MT_M - 1] ^ (y >> 1) ^ mag[y & 1u];
        r->mti = 0;
    }
    uint32_t y = r->mt[r->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* Uniform in [0, 1) with 53 random bits. */
static double mt_double(mt19937 *r) {
    const uint32_t a = mt_next(r) >> 5, b = mt_next(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

/* Standard normal, Marsaglia's polar method keeping the second value for the next call. */
static double mt_gauss(mt19937 *r) {
    if (r->has_gauss) {
        r->has_gauss = false;
        return r->gauss;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * mt_double(r) - 1.0;
        x2 = 2.0 * mt_double(r) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    const double f = sqrt(-2.0 * log(r2) / r2);
    r->gauss = f * x1;
    r->has_gauss = true;
    return f * x2;
}

/* Binomial(1, p) by inversion, drawing exactly as numpy's legacy binomial does. */
static int binomial_inversion1(mt19937 *r, double p) {
    const double q = 1.0 - p, qn = exp(log(q));
    const int64_t bound = (int64_t)fmin(1.0, p + 10.0 * sqrt(p * q + 1.0));
    int64_t x = 0;
    double px = qn, u = mt_double(r);
    while (u > px) {
        x++;
        if (x > bound) {
            x = 0;
            px = qn;
            u = mt_double(r);
        } else {
            u -= px;
            px = ((double)(1 - x + 1) * p * px) / ((double)x * q);
        }
    }
    return (int)x;
}

static int bernoulli_draw(mt19937 *r, double p) {
    if (p == 0.0) return 0;
    if (p <= 0.5) return binomial_inversion1(r, p);
    return 1 - binomial_inversion1(r, 1.0 - p);
}

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static ember_status seed_attr(const em_node *node, bool *seeded, uint32_t *seed,
                              ember_error *err) {
    const em_attr *a = em_node_attr(node, "seed");
    *seeded = false;
    if (!a) return EMBER_OK;
    /* beyond +-2^63 the conversion to int64 below is undefined (fuzzer, UBSan) */
    if (a->type != EM_ATTR_FLOAT || !isfinite(a->f) || fabsf(a->f) >= 9.2e18f)
        return node_fail(err, EMBER_ERR_INVALID_MODEL,
                         "seed must be a finite float within the int64 range");
    *seeded = true;
    *seed = (uint32_t)(uint64_t)(int64_t)a->f;
    return EMBER_OK;
}

/* Seeded from the attribute, or from clocks and addresses (differs per run and per thread). */
static void rng_init(mt19937 *r, const em_node *node, const void *salt) {
    bool seeded = false;
    uint32_t seed = 0;
    (void)seed_attr(node, &seeded, &seed, NULL); /* validated by infer */
    if (seeded) {
        mt_seed(r, seed);
        return;
    }
    struct timespec rt = {0}, mono = {0};
    clock_gettime(CLOCK_REALTIME, &rt);
    clock_gettime(CLOCK_MONOTONIC, &mono);
    uint64_t s = (uint64_t)rt.tv_sec * 1000000007ull ^ (uint64_t)rt.tv_nsec ^
                 ((uint64_t)mono.tv_nsec << 32) ^ (uint64_t)(uintptr_t)salt ^
                 (uint64_t)(uintptr_t)&rt;
    uint32_t key[8];
    for (int i = 0; i < 8; i += 2) {
        uint64_t v = splitmix64(&s);
        key[i] = (uint32_t)v;
        key[i + 1] = (uint32_t)(v >> 32);
    }
    mt_seed_array(r, key, 8);
}

/* ------------------------------------------------------------------------------------------
 * RandomUniform, RandomNormal (+Like)
 * ---------------------------------------------------------------------------------------- */

static bool random_out_type(int64_t dt) {
    return dt == EMBER_FLOAT || dt == EMBER_DOUBLE || dt == EMBER_FLOAT16 ||
           dt == EMBER_BFLOAT16;
}

static ember_status random_common(const em_node *node, ember_dtype *dt, ember_error *err) {
    bool seeded;
    uint32_t seed;
    EM_TRY(seed_attr(node, &seeded, &seed, err));
    if (!random_out_type(*dt))
        return node_fail(err, EMBER_ERR_UNSUPPORTED, "output type %s is not a float type",
                         em_dtype_name(*dt));
    return EMBER_OK;
}

static ember_status random_infer(const em_node *node, void *state, em_tensor *const *in,
                                 em_tensor *out, ember_error *err) {
    (void)state;
    (void)in;
    ember_dtype dt = (ember_dtype)em_attr_int(node, "dtype", EMBER_FLOAT);
    EM_TRY(random_common(node, &dt, err));
    int64_t rank = 0;
    const int64_t *shape = em_attr_ints(node, "shape", &rank);
    if (!em_node_attr(node, "shape"))
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "attribute 'shape' is required");
    if (rank > EM_MAX_RANK)
        return node_fail(err, EMBER_ERR_UNSUPPORTED, "shape rank %lld is above %d",
                         (long long)rank, EM_MAX_RANK);
    if (em_shape_numel(shape, (int)rank) < 0)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "shape has a negative dimension or "
                         "overflows");
    em_tensor_set_shape(&out[0], dt, shape, (int)rank);
    return EMBER_OK;
}

static ember_status random_like_infer(const em_node *node, void *state, em_tensor *const *in,
                                      em_tensor *out, ember_error *err) {
    (void)state;
    const em_attr *a = em_node_attr(node, "dtype");
    ember_dtype dt = a ? (ember_dtype)a->i : in[0]->dtype;
    EM_TRY(random_common(node, &dt, err));
    if (in[0]->rank < 0) {
        out[0].dtype = dt;
        out[0].rank = -1;
        return EMBER_OK;
    }
    em_tensor_set_shape(&out[0], dt, in[0]->dims, in[0]->rank);
    return EMBER_OK;
}

static bool is_normal(const em_node *node) { return strstr(node->op_type, "Normal") != NULL; }

static ember_status random_run(const em_node *node, void *state, em_tensor *const *in,
                               em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    (void)in;
    (void)ex;
    (void)err;
    mt19937 rng;
    rng_init(&rng, node, out[0].data);
    const int64_t n = em_numel(&out[0]);
    const ember_dtype dt = out[0].dtype;
    if (is_normal(node)) {
        const double mean = em_attr_float(node, "mean", 0.0f);
        const double scale = em_attr_float(node, "scale", 1.0f);
        for (int64_t i = 0; i < n; i++) real_put(out[0].data, dt, i, mean + scale * mt_gauss(&rng));
    } else {
        const double low = em_attr_float(node, "low", 0.0f);
        const double high = em_attr_float(node, "high", 1.0f);
        for (int64_t i = 0; i < n; i++)
            real_put(out[0].data, dt, i, low + (high - low) * mt_double(&rng));
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * Bernoulli (15)
 * ---------------------------------------------------------------------------------------- */

static bool bernoulli_out_type(int64_t dt) {
    switch (dt) {
    case EMBER_UINT8: case EMBER_UINT16: case EMBER_UINT32: case EMBER_UINT64:
    case EMBER_INT8: case EMBER_INT16: case EMBER_INT32: case EMBER_INT64:
    case EMBER_FLOAT16: case EMBER_FLOAT: case EMBER_DOUBLE: case EMBER_BFLOAT16:
    case EMBER_BOOL:
        return true;
    default:
        return false;
    }
}

static ember_status bernoulli_infer(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, ember_error *err) {
    (void)state;
    if (!is_real_type(in[0]->dtype)) return em_unsupported_type(node, 0, in[0]->dtype, err);
    bool seeded;
    uint32_t seed;
    EM_TRY(seed_attr(node, &seeded, &seed, err));
    const em_attr *a = em_node_attr(node, "dtype");
    const int64_t dt = a ? a->i : in[0]->dtype;
    if (!bernoulli_out_type(dt))
        return node_fail(err, EMBER_ERR_UNSUPPORTED, "output type %lld is not supported",
                         (long long)dt);
    if (in[0]->rank < 0) {
        out[0].dtype = (ember_dtype)dt;
        out[0].rank = -1;
        return EMBER_OK;
    }
    em_tensor_set_shape(&out[0], (ember_dtype)dt, in[0]->dims, in[0]->rank);
    return EMBER_OK;
}

static ember_status bernoulli_run(const em_node *node, void *state, em_tensor *const *in,
                                  em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    const int64_t n = em_numel(x);
    for (int64_t i = 0; i < n; i++) {
        const double p = real_at(x->data, x->dtype, i);
        if (!(p >= 0.0 && p <= 1.0))
            return node_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                             "probability %g at index %lld is outside [0, 1]", p, (long long)i);
    }
    uint8_t *bits;
    EM_TRY(scratch(ex, (size_t)n, (void **)&bits, err));
    mt19937 rng;
    rng_init(&rng, node, out[0].data);
    for (int64_t i = 0; i < n; i++)
        bits[i] = (uint8_t)bernoulli_draw(&rng, real_at(x->data, x->dtype, i));
    em_convert(out[0].data, out[0].dtype, bits, EMBER_UINT8, n);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * Multinomial (7): input [batch, classes] of unnormalized log-probabilities
 * ---------------------------------------------------------------------------------------- */

static ember_status multinomial_infer(const em_node *node, void *state, em_tensor *const *in,
                                      em_tensor *out, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    if (!is_real_type(x->dtype)) return em_unsupported_type(node, 0, x->dtype, err);
    bool seeded;
    uint32_t seed;
    EM_TRY(seed_attr(node, &seeded, &seed, err));
    const int64_t dt = em_attr_int(node, "dtype", EMBER_INT32);
    if (dt != EMBER_INT32 && dt != EMBER_INT64)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "dtype must be int32 or int64, not %lld",
                         (long long)dt);
    const int64_t samples = em_attr_int(node, "sample_size", 1);
    if (samples < 1)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "sample_size %lld is not positive",
                         (long long)samples);
    if (x->rank < 0) {
        out[0].dtype = (ember_dtype)dt;
        out[0].rank = -1;
        return EMBER_OK;
    }
    if (x->rank != 2)
        return node_fail(err, EMBER_ERR_SHAPE, "input must be [batch, classes], not of rank %d",
                         x->rank);
    if (x->dims[1] < 1 && x->dims[0] > 0)
        return node_fail(err, EMBER_ERR_SHAPE, "there must be at least one class");
    int64_t dims[2] = {x->dims[0], samples};
    if (em_shape_numel(dims, 2) < 0)
        return node_fail(err, EMBER_ERR_LIMIT, "output size overflows");
    em_tensor_set_shape(&out[0], (ember_dtype)dt, dims, 2);
    return EMBER_OK;
}

static ember_status multinomial_run(const em_node *node, void *state, em_tensor *const *in,
                                    em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    const em_tensor *x = in[0];
    const int64_t batch = x->dims[0], classes = x->dims[1], samples = out[0].dims[1];
    if (batch == 0) return EMBER_OK;
    double *cum;
    EM_TRY(scratch(ex, sizeof(double) * (size_t)classes, (void **)&cum, err));
    mt19937 rng;
    rng_init(&rng, node, out[0].data);
    for (int64_t b = 0; b < batch; b++) {
        double mx = -INFINITY;
        for (int64_t c = 0; c < classes; c++) {
            const double v = real_at(x->data, x->dtype, b * classes + c);
            if (v > mx || isnan(v)) mx = v;
        }
        double total = 0.0;
        for (int64_t c = 0; c < classes; c++) {
            total += exp(real_at(x->data, x->dtype, b * classes + c) - mx);
            cum[c] = total;
        }
        if (!(total > 0.0) || !isfinite(total))
            return node_fail(err, EMBER_ERR_INVALID_ARGUMENT,
                             "row %lld has no finite probability mass (NaN or infinite logits)",
                             (long long)b);
        for (int64_t s = 0; s < samples; s++) {
            const double u = mt_double(&rng) * total;
            int64_t lo = 0, hi = classes - 1; /* first class whose cumulative sum exceeds u */
            while (lo < hi) {
                const int64_t mid = lo + (hi - lo) / 2;
                if (cum[mid] > u) hi = mid;
                else lo = mid + 1;
            }
            if (out[0].dtype == EMBER_INT32)
                ((int32_t *)out[0].data)[b * samples + s] = (int32_t)lo;
            else
                ((int64_t *)out[0].data)[b * samples + s] = lo;
        }
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * Training optimizers (ai.onnx.preview.training, version 1): inputs R, T, then `groups` lists
 * of n tensors each (X..., G..., then V... and/or H...); outputs X_new... and the new states.
 * ---------------------------------------------------------------------------------------- */

typedef struct optim_shape {
    int in_groups;  /* tensor lists after R and T */
    int out_groups; /* tensor lists in the outputs */
} optim_shape;

static optim_shape optim_shape_of(const em_node *node) {
    if (strcmp(node->op_type, "Adam") == 0) return (optim_shape){4, 3};
    return (optim_shape){3, 2}; /* Adagrad: X, G, H; Momentum: X, G, V */
}

static ember_status optim_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    (void)state;
    const optim_shape sh = optim_shape_of(node);
    const int inputs = node->n_explicit_inputs;
    if (inputs < 2 + sh.in_groups || (inputs - 2) % sh.in_groups != 0)
        return node_fail(err, EMBER_ERR_INVALID_MODEL,
                         "expects R, T and %d lists of tensors, not %d inputs", sh.in_groups,
                         inputs);
    const int n = (inputs - 2) / sh.in_groups;
    if (node->n_outputs > n * sh.out_groups)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "has %d outputs; at most %d expected",
                         node->n_outputs, n * sh.out_groups);
    for (int i = 0; i < inputs; i++)
        if (!in[i]) return node_fail(err, EMBER_ERR_INVALID_MODEL, "input %d is missing", i);
    if (in[0]->dtype != EMBER_FLOAT && in[0]->dtype != EMBER_DOUBLE)
        return em_unsupported_type(node, 0, in[0]->dtype, err);
    if (in[1]->dtype != EMBER_INT64) return em_unsupported_type(node, 1, in[1]->dtype, err);
    for (int i = 0; i < 2; i++)
        if (in[i]->rank >= 0 && em_numel(in[i]) != 1)
            return node_fail(err, EMBER_ERR_SHAPE, "input %d (%s) must be a scalar", i,
                             i ? "T" : "R");
    if (strcmp(node->op_type, "Momentum") == 0) {
        static const char *const required[] = {"alpha", "beta", "mode", "norm_coefficient"};
        for (int i = 0; i < 4; i++)
            if (!em_node_attr(node, required[i]))
                return node_fail(err, EMBER_ERR_INVALID_MODEL, "attribute '%s' is required",
                                 required[i]);
        const char *mode = em_attr_string(node, "mode", "");
        if (strcmp(mode, "standard") != 0 && strcmp(mode, "nesterov") != 0)
            return node_fail(err, EMBER_ERR_INVALID_MODEL,
                             "mode must be \"standard\" or \"nesterov\", not \"%s\"", mode);
    }
    for (int t = 0; t < n; t++) {
        const em_tensor *x = in[2 + t];
        if (x->dtype != EMBER_FLOAT && x->dtype != EMBER_DOUBLE)
            return em_unsupported_type(node, 2 + t, x->dtype, err);
        for (int g = 1; g < sh.in_groups; g++) {
            const em_tensor *o = in[2 + g * n + t];
            if (o->dtype != x->dtype)
                return node_fail(err, EMBER_ERR_INVALID_MODEL,
                                 "input %d has type %s, input %d (its tensor) %s", 2 + g * n + t,
                                 em_dtype_name(o->dtype), 2 + t, em_dtype_name(x->dtype));
            if (x->rank >= 0 && o->rank >= 0 && !em_same_shape(x, o)) {
                char a[128], b[128];
                return node_fail(err, EMBER_ERR_SHAPE, "input %d is %s but its tensor is %s",
                                 2 + g * n + t, em_shape_str(o, a, sizeof a),
                                 em_shape_str(x, b, sizeof b));
            }
        }
        for (int g = 0; g < sh.out_groups; g++)
            if (g * n + t < node->n_outputs)
                em_tensor_set_shape(&out[g * n + t], x->dtype, x->dims, x->rank);
    }
    return EMBER_OK;
}

typedef struct optim_args {
    double r;      /* effective learning rate */
    double alpha, beta, epsilon, norm, norm_post;
    int kind;      /* 0 Adagrad, 1 Adam, 2 Momentum standard, 3 Momentum nesterov */
} optim_args;

static void optim_tensor(const optim_args *a, ember_dtype dt, int64_t count, const void *x,
                         const void *g, const void *s1, const void *s2, void *x_new,
                         void *s1_new, void *s2_new) {
    for (int64_t i = 0; i < count; i++) {
        const double xv = real_at(x, dt, i);
        const double gr = a->norm * xv + real_at(g, dt, i);
        double xn;
        if (a->kind == 0) { /* Adagrad: s1 = H */
            const double h = real_at(s1, dt, i) + gr * gr;
            xn = xv - a->r * gr / (sqrt(h) + a->epsilon);
            if (s1_new) real_put(s1_new, dt, i, h);
        } else if (a->kind == 1) { /* Adam: s1 = V, s2 = H */
            const double v = a->alpha * real_at(s1, dt, i) + (1.0 - a->alpha) * gr;
            const double h = a->beta * real_at(s2, dt, i) + (1.0 - a->beta) * gr * gr;
            xn = (1.0 - a->norm_post) * (xv - a->r * (v / (sqrt(h) + a->epsilon)));
            if (s1_new) real_put(s1_new, dt, i, v);
            if (s2_new) real_put(s2_new, dt, i, h);
        } else { /* Momentum: s1 = V; beta already adjusted for T */
            const double v = a->alpha * real_at(s1, dt, i) + a->beta * gr;
            xn = a->kind == 2 ? xv - a->r * v : xv - a->r * (gr + a->alpha * v);
            if (s1_new) real_put(s1_new, dt, i, v);
        }
        if (x_new) real_put(x_new, dt, i, xn);
    }
}

static ember_status optim_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)state;
    (void)ex;
    (void)err;
    const optim_shape sh = optim_shape_of(node);
    const int n = (node->n_explicit_inputs - 2) / sh.in_groups;
    const double r = em_get_f64(in[0], 0);
    const int64_t t = em_get_i64(in[1], 0);
    optim_args a = {.r = r, .norm = em_attr_float(node, "norm_coefficient", 0.0f)};
    if (strcmp(node->op_type, "Adagrad") == 0) {
        a.kind = 0;
        a.epsilon = em_attr_float(node, "epsilon", 1e-6f);
        a.r = r / (1.0 + (double)t * em_attr_float(node, "decay_factor", 0.0f));
    } else if (strcmp(node->op_type, "Adam") == 0) {
        a.kind = 1;
        a.alpha = em_attr_float(node, "alpha", 0.9f);
        a.beta = em_attr_float(node, "beta", 0.999f);
        a.epsilon = em_attr_float(node, "epsilon", 1e-6f);
        a.norm_post = em_attr_float(node, "norm_coefficient_post", 0.0f);
        if (t > 0)
            a.r = r * sqrt(1.0 - pow(a.beta, (double)t)) / (1.0 - pow(a.alpha, (double)t));
    } else {
        a.kind = strcmp(em_attr_string(node, "mode", ""), "nesterov") == 0 ? 3 : 2;
        a.alpha = em_attr_float(node, "alpha", 0.0f);
        a.beta = t > 0 ? em_attr_float(node, "beta", 0.0f) : 1.0;
    }
    for (int k = 0; k < n; k++) {
        const em_tensor *x = in[2 + k];
        void *outs[3] = {NULL, NULL, NULL};
        for (int g = 0; g < sh.out_groups; g++)
            if (has_output(node, out, g * n + k)) outs[g] = out[g * n + k].data;
        optim_tensor(&a, x->dtype, em_numel(x), x->data, in[2 + n + k]->data,
                     in[2 + 2 * n + k]->data, sh.in_groups > 3 ? in[2 + 3 * n + k]->data : NULL,
                     outs[0], outs[1], outs[2]);
    }
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------
 * TfIdfVectorizer (9), integer tokens. The pool holds n-grams grouped by length (ngram_counts
 * gives where each length starts); the g-th n-gram of the pool counts into output coordinate
 * ngram_indexes[g]. Each length in [min_gram_length, max_gram_length] gets a table sorted by
 * tokens; a row is scanned once per skip distance 1..max_skip_count+1 (unigrams only once),
 * every candidate looked up by binary search. Weights scale output coordinates, as in the
 * ONNX reference implementation and ONNX Runtime.
 * ---------------------------------------------------------------------------------------- */

enum { TFIDF_TF, TFIDF_IDF, TFIDF_TFIDF };

typedef struct gram_table {
    int64_t len;     /* tokens per n-gram */
    int64_t count;
    int64_t *tokens; /* count * len, sorted */
    int64_t *coord;  /* output coordinate of each */
} gram_table;

typedef struct tfidf_state {
    int64_t min_len, max_len, max_skip, out_size;
    int mode;
    int n_tables;
    gram_table *tables; /* lengths min_len .. min_len + n_tables - 1 */
    const float *weights;
    int64_t n_weights;
} tfidf_state;

static void tfidf_destroy(void *p) {
    tfidf_state *s = p;
    if (!s) return;
    for (int i = 0; i < s->n_tables; i++) {
        free(s->tables[i].tokens);
        free(s->tables[i].coord);
    }
    free(s->tables);
    free(s);
}

/* Validate the attributes; fill the scalar fields of s (tables untouched). */
static ember_status tfidf_attrs(const em_node *node, tfidf_state *s, ember_error *err) {
    static const char *const required[] = {"max_gram_length", "max_skip_count",
                                           "min_gram_length", "mode", "ngram_counts",
                                           "ngram_indexes"};
    for (int i = 0; i < 6; i++)
        if (!em_node_attr(node, required[i]))
            return node_fail(err, EMBER_ERR_INVALID_MODEL, "attribute '%s' is required",
                             required[i]);
    if (em_node_attr(node, "pool_strings"))
        return node_fail(err, EMBER_ERR_UNSUPPORTED, "string n-grams (pool_strings) are not "
                         "supported");
    if (!em_node_attr(node, "pool_int64s"))
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "attribute 'pool_int64s' is required");
    s->min_len = em_attr_int(node, "min_gram_length", 0);
    s->max_len = em_attr_int(node, "max_gram_length", 0);
    s->max_skip = em_attr_int(node, "max_skip_count", 0);
    if (s->min_len < 1 || s->max_len < s->min_len || s->max_skip < 0)
        return node_fail(err, EMBER_ERR_INVALID_MODEL,
                         "need 1 <= min_gram_length (%lld) <= max_gram_length (%lld) and "
                         "max_skip_count (%lld) >= 0", (long long)s->min_len,
                         (long long)s->max_len, (long long)s->max_skip);
    const char *mode = em_attr_string(node, "mode", "");
    if (strcmp(mode, "TF") == 0) s->mode = TFIDF_TF;
    else if (strcmp(mode, "IDF") == 0) s->mode = TFIDF_IDF;
    else if (strcmp(mode, "TFIDF") == 0) s->mode = TFIDF_TFIDF;
    else
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "mode must be TF, IDF or TFIDF, not %s",
                         mode);
    int64_t n_idx = 0, n_counts = 0, n_pool = 0;
    const int64_t *idx = em_attr_ints(node, "ngram_indexes", &n_idx);
    const int64_t *counts = em_attr_ints(node, "ngram_counts", &n_counts);
    (void)em_attr_ints(node, "pool_int64s", &n_pool);
    if (n_idx == 0)
        return node_fail(err, EMBER_ERR_INVALID_MODEL, "ngram_indexes is empty");
    s->out_size = 0;
    for (int64_t i = 0; i < n_idx; i++) {
        if (idx[i] < 0 || idx[i] >= INT64_MAX / 2)
            return node_fail(err, EMBER_ERR_INVALID_MODEL, "ngram_indexes[%lld] = %lld is invalid",
                             (long long)i, (long long)idx[i]);
        if (idx[i] + 1 > s->out_size) s->out_size = idx[i] + 1;
    }
    int64_t grams = 0;
    for (int64_t i = 0; i < n_counts; i++) {
        const int64_t end = i + 1 < n_counts ? counts[i + 1] : n_pool;
        if (counts[i] < 0 || counts[i] > end || end > n_pool)
            return node_fail(err, EMBER_ERR_INVALID_MODEL,
                             "ngram_counts must be non-decreasing offsets into the pool of %lld",
                             (long long)n_pool);
        const int64_t len = i + 1, in_len = (end - counts[i]) / len;
        if (len >= s->min_len && len <= s->max_len && grams + in_len > n_idx)
            return node_fail(err, EMBER_ERR_INVALID_MODEL,
                             "the pool has more n-grams than ngram_indexes (%lld)",
                             (long long)n_idx);
        grams += in_len;
    }
    s->weights = em_attr_floats(node, "weights", &s->n_weights);
    if (s->n_weights > 0 && s->n_weights < s->out_size)
        return node_fail(err, EMBER_ERR_INVALID_MODEL,
                         "weights has %lld values for %lld output coordinates",
                         (long long)s->n_weights, (long long)s->out_size);
    return EMBER_OK;
}

/* Compare n-gram a (len tokens) with the tokens x[pos], x[pos + skip], ... */
static int gram_cmp_tokens(const int64_t *a, int64_t len, const void *x, bool x32, int64_t pos,
                           int64_t skip) {
    for (int64_t k = 0; k < len; k++) {
        const int64_t i = pos + k * skip;
        const int64_t v = x32 ? ((const int32_t *)x)[i] : ((const int64_t *)x)[i];
        if (a[k] != v) return a[k] < v ? -1 : 1;
    }
    return 0;
}

static int gram_cmp(const int64_t *a, const int64_t *b, int64_t len) {
    for (int64_t k = 0; k < len; k++)
        if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
    return 0;
}

/* Stable merge sort of n-gram numbers by their tokens. */
static void sort_grams(int64_t *order, int64_t *tmp, int64_t n, const int64_t *pool,
                       int64_t len) {
    for (int64_t width = 1; width < n; width *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * width) {
            int64_t mid = lo + width < n ? lo + width : n;
            int64_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = gram_cmp(pool + order[j] * len, pool + order[i] * len, len) < 0
                               ? order[j++] : order[i++];
            while (i < mid) tmp[k++] = order[i++];
            while (j < hi) tmp[k++] = order[j++];
        }
        memcpy(order, tmp, sizeof(int64_t) * (size_t)n);
    }
}

/* One table: `count` n-grams of `len` tokens at pool, numbered from first_gram. A repeated
 * n-gram keeps its last coordinate (later pool entries replace earlier ones). */
static ember_status build_table(gram_table *t, const int64_t *pool, int64_t len, int64_t count,
                                int64_t first_gram, const int64_t *idx, ember_error *err) {
    t->len = len;
    int64_t *order = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
    int64_t *tmp = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
    t->tokens = malloc(sizeof(int64_t) * (size_t)(count > 0 ? count * len : 1));
    t->coord = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
    if (!order || !tmp || !t->tokens || !t->coord) {
        free(order);
        free(tmp);
        return node_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory for the n-gram pool");
    }
    for (int64_t i = 0; i < count; i++) order[i] = i;
    sort_grams(order, tmp, count, pool, len);
    int64_t kept = 0;
    for (int64_t i = 0; i < count; i++) {
        const int64_t *g = pool + order[i] * len;
        if (kept > 0 && gram_cmp(t->tokens + (kept - 1) * len, g, len) == 0) {
            t->coord[kept - 1] = idx[first_gram + order[i]]; /* stable: this one is later */
            continue;
        }
        memcpy(t->tokens + kept * len, g, sizeof(int64_t) * (size_t)len);
        t->coord[kept++] = idx[first_gram + order[i]];
    }
    t->count = kept;
    free(order);
    free(tmp);
    return EMBER_OK;
}

static ember_status tfidf_create(const em_graph *g, em_node *node, void **state,
                                 ember_error *err) {
    (void)g;
    tfidf_state *s = calloc(1, sizeof *s);
    if (!s) return node_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    ember_status st = tfidf_attrs(node, s, err);
    int64_t n_idx = 0, n_counts = 0, n_pool = 0;
    const int64_t *idx = em_attr_ints(node, "ngram_indexes", &n_idx);
    const int64_t *counts = em_attr_ints(node, "ngram_counts", &n_counts);
    const int64_t *pool = em_attr_ints(node, "pool_int64s", &n_pool);
    static const int64_t empty_pool[1] = {0};
    if (!pool) pool = empty_pool; /* an empty pool: NULL + 0 below is undefined (UBSan) */
    if (st == EMBER_OK) {
        /* lengths beyond the pool's have no n-grams: no table */
        const int64_t top = s->max_len < n_counts ? s->max_len : n_counts;
        s->n_tables = top >= s->min_len ? (int)(top - s->min_len + 1) : 0;
        s->tables = calloc((size_t)(s->n_tables ? s->n_tables : 1), sizeof *s->tables);
        if (!s->tables) st = node_fail(err, EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int64_t gram = 0;
    for (int64_t i = 0; st == EMBER_OK && i < n_counts; i++) {
        const int64_t len = i + 1, end = i + 1 < n_counts ? counts[i + 1] : n_pool;
        const int64_t count = (end - counts[i]) / len;
        if (len >= s->min_len && len <= s->max_len)
            st = build_table(&s->tables[len - s->min_len], pool + counts[i], len, count, gram,
                             idx, err);
        gram += count;
    }
    if (st != EMBER_OK) {
        tfidf_destroy(s);
        return st;
    }
    *state = s;
    return EMBER_OK;
}

static ember_status tfidf_infer(const em_node *node, void *state, em_tensor *const *in,
                                em_tensor *out, ember_error *err) {
    tfidf_state local = {0};
    tfidf_state *s = state;
    if (!s) {
        EM_TRY(tfidf_attrs(node, &local, err));
        s = &local;
    }
    const em_tensor *x = in[0];
    if (x->dtype == EMBER_STRING)
        return node_fail(err, EMBER_ERR_UNSUPPORTED, "string input is not supported");
    if (x->dtype != EMBER_INT32 && x->dtype != EMBER_INT64)
        return em_unsupported_type(node, 0, x->dtype, err);
    if (x->rank < 0) {
        out[0].dtype = EMBER_FLOAT;
        out[0].rank = -1;
        return EMBER_OK;
    }
    if (x->rank > 2)
        return node_fail(err, EMBER_ERR_SHAPE, "input must be [C] or [B, C], not of rank %d",
                         x->rank);
    int64_t dims[2] = {x->rank == 2 ? x->dims[0] : s->out_size, s->out_size};
    const int rank = x->rank == 2 ? 2 : 1;
    if (em_shape_numel(dims, rank) < 0)
        return node_fail(err, EMBER_ERR_LIMIT, "output size overflows");
    em_tensor_set_shape(&out[0], EMBER_FLOAT, dims, rank);
    return EMBER_OK;
}

/* Count into y (out_size floats) every n-gram of the row x[0..c). */
static void tfidf_row(const tfidf_state *s, const void *x, bool x32, int64_t c, float *y) {
    for (int ti = 0; ti < s->n_tables; ti++) {
        const gram_table *t = &s->tables[ti];
        if (t->count == 0) continue;
        /* unigrams ignore the skip distance: counted once */
        const int64_t skips = t->len == 1 ? 1 : s->max_skip + 1;
        for (int64_t skip = 1; skip <= skips; skip++) {
            const int64_t span = (t->len - 1) * skip;
            for (int64_t pos = 0; pos + span < c; pos++) {
                int64_t lo = 0, hi = t->count;
                while (lo < hi) {
                    const int64_t mid = lo + (hi - lo) / 2;
                    const int cmp = gram_cmp_tokens(t->tokens + mid * t->len, t->len, x, x32, pos,
                                                    skip);
                    if (cmp == 0) {
                        y[t->coord[mid]] += 1.0f;
                        break;
                    }
                    if (cmp < 0) lo = mid + 1;
                    else hi = mid;
                }
            }
        }
    }
    for (int64_t i = 0; i < s->out_size; i++) {
        const float w = s->n_weights > 0 ? s->weights[i] : 1.0f;
        if (s->mode == TFIDF_IDF) y[i] = y[i] > 0.0f ? w : 0.0f;
        else if (s->mode == TFIDF_TFIDF) y[i] *= w;
    }
}

typedef struct tfidf_job {
    const tfidf_state *s;
    const char *x;
    bool x32;
    int64_t c;
    float *y;
} tfidf_job;

static void tfidf_rows(void *ctx, int64_t begin, int64_t end) {
    const tfidf_job *j = ctx;
    const size_t es = j->x32 ? 4 : 8;
    for (int64_t r = begin; r < end; r++)
        tfidf_row(j->s, j->x + (size_t)(r * j->c) * es, j->x32, j->c, j->y + r * j->s->out_size);
}

static ember_status tfidf_run(const em_node *node, void *state, em_tensor *const *in,
                              em_tensor *out, em_exec *ex, ember_error *err) {
    (void)node;
    (void)err;
    const em_tensor *x = in[0];
    tfidf_job j = {.s = state, .x = x->data, .x32 = x->dtype == EMBER_INT32, .y = out[0].data};
    const int64_t rows = x->rank == 2 ? x->dims[0] : 1;
    j.c = x->rank == 0 ? 1 : x->dims[x->rank - 1];
    memset(out[0].data, 0, em_nbytes(&out[0]));
    if (rows == 0) return EMBER_OK;
    const int64_t grain = 4096 / (j.c + 1) + 1;
    em_parallel_for(ex, rows, grain, tfidf_rows, &j);
    return EMBER_OK;
}

/* ------------------------------------------------------------------------------------------ */

#define TRAINING "ai.onnx.preview.training"

static const em_op k_misc_ops[] = {
    {"", "Det", 11, 22, NULL, det_infer, det_run, NULL, 0},
    {"", "RandomUniform", 1, 22, NULL, random_infer, random_run, NULL, 0},
    {"", "RandomNormal", 1, 22, NULL, random_infer, random_run, NULL, 0},
    {"", "RandomUniformLike", 1, 22, NULL, random_like_infer, random_run, NULL, 0},
    {"", "RandomNormalLike", 1, 22, NULL, random_like_infer, random_run, NULL, 0},
    {"", "Bernoulli", 15, 22, NULL, bernoulli_infer, bernoulli_run, NULL, 0},
    {"", "Multinomial", 7, 22, NULL, multinomial_infer, multinomial_run, NULL, 0},
    {TRAINING, "Adagrad", 1, 0, NULL, optim_infer, optim_run, NULL, 0},
    {TRAINING, "Adam", 1, 0, NULL, optim_infer, optim_run, NULL, 0},
    {TRAINING, "Momentum", 1, 0, NULL, optim_infer, optim_run, NULL, 0},
    {"", "TfIdfVectorizer", 9, 0, tfidf_create, tfidf_infer, tfidf_run, tfidf_destroy, 0},
};

EM_OPS_FAMILY(misc) {
    *count = sizeof k_misc_ops / sizeof k_misc_ops[0];
    return k_misc_ops;
}
