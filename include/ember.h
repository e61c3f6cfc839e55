/*
 * ember — an ONNX inference runtime in C.
 *
 * Lifecycle:
 *   ember_model_load_file()  -> ember_model     (immutable, parsed graph + weights)
 *   ember_session_create()   -> ember_session   (optimized graph, prepared kernels)
 *   ember_session_run()      -> output tensors  (any number of threads at once)
 *   ember_session_free(), ember_model_free()
 *
 * Errors: every fallible call returns an ember_status and, when `err` is not NULL, fills it
 * with the same code and a one-line message naming the file, node and reason. Nothing aborts.
 *
 * Ownership: a handle returned through an out-pointer belongs to the caller, who releases it
 * with the matching *_free(). A session keeps its own reference to the model's weights, so the
 * model may be freed while sessions made from it are still alive.
 *
 * OpenBLAS: ember sets OpenBLAS to one thread when it first loads a model (it parallelizes
 * above BLAS with its own pool); call openblas_set_num_threads() afterwards to change that.
 *
 * Threads: a model and a session are immutable after creation. ember_session_run() may be
 * called concurrently on one session from any number of threads; each call gets its own
 * scratch memory (run contexts are pooled and reused). Tensors are not synchronized: do not
 * write a tensor while a run reads it.
 */
#ifndef EMBER_H
#define EMBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_VERSION_MAJOR 0
#define EMBER_VERSION_MINOR 3
#define EMBER_VERSION_PATCH 0
#define EMBER_VERSION_STRING "0.3.0"

/* Bumped whenever a struct or function signature below changes incompatibly. Plugins pass
 * the value they were compiled with; ember refuses a mismatch. 2: ember_session_options gained
 * `heads` / `n_heads`. 3: ember_value_info gained `kind` / `element_kind` (sequences and
 * optionals). 4: ember_session_options gained `batch_tiling`. The shared library's soname
 * carries the same number (libember.so.4). */
#define EMBER_ABI_VERSION 4

#if defined(__GNUC__)
#define EMBER_API __attribute__((visibility("default")))
#else
#define EMBER_API
#endif

/* ---------------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------------- */

typedef enum ember_status {
    EMBER_OK = 0,
    EMBER_ERR_INVALID_ARGUMENT = 1, /* the caller passed something wrong */
    EMBER_ERR_IO = 2,               /* a file could not be read or written */
    EMBER_ERR_PARSE = 3,            /* bytes are not a valid protobuf / npy / ... */
    EMBER_ERR_INVALID_MODEL = 4,    /* parsed, but the graph breaks the ONNX rules */
    EMBER_ERR_UNSUPPORTED = 5,      /* valid ONNX that ember cannot run (op, type, ...) */
    EMBER_ERR_OUT_OF_MEMORY = 6,
    EMBER_ERR_LIMIT = 7,            /* a configured limit (memory, size, depth) was exceeded */
    EMBER_ERR_SHAPE = 8,            /* input shapes or types do not fit the graph */
    EMBER_ERR_RUNTIME = 9,          /* a kernel failed while running */
} ember_status;

#define EMBER_ERROR_MESSAGE_SIZE 1024

/* Caller-allocated error report; pass NULL where the message is not wanted. */
typedef struct ember_error {
    ember_status code;
    char message[EMBER_ERROR_MESSAGE_SIZE];
} ember_error;

/* Static string naming a status, e.g. "invalid model". */
EMBER_API const char *ember_status_string(ember_status status);

/* Library version, e.g. "0.3.0", and the ABI version it was built with. */
EMBER_API const char *ember_version(void);
EMBER_API int ember_abi_version(void);

/* ---------------------------------------------------------------------------------------------
 * Element types (numbering follows ONNX TensorProto.DataType)
 * ------------------------------------------------------------------------------------------- */

typedef enum ember_dtype {
    EMBER_UNDEFINED = 0,
    EMBER_FLOAT = 1,
    EMBER_UINT8 = 2,
    EMBER_INT8 = 3,
    EMBER_UINT16 = 4,
    EMBER_INT16 = 5,
    EMBER_INT32 = 6,
    EMBER_INT64 = 7,
    EMBER_STRING = 8,
    EMBER_BOOL = 9,
    EMBER_FLOAT16 = 10,
    EMBER_DOUBLE = 11,
    EMBER_UINT32 = 12,
    EMBER_UINT64 = 13,
    EMBER_BFLOAT16 = 16,
} ember_dtype;

/* What a value is: a tensor, a sequence of tensors (ONNX seq(tensor(T))), or an optional
 * (ONNX optional(tensor(T)) or optional(seq(tensor(T)))) that holds one such value or none. */
typedef enum ember_value_kind {
    EMBER_KIND_TENSOR = 0,
    EMBER_KIND_SEQUENCE = 1,
    EMBER_KIND_OPTIONAL = 2,
} ember_value_kind;

/* Bytes per element (0 for undefined or string: see ember_tensor_string), and a name such as
 * "float32". */
EMBER_API size_t ember_dtype_size(ember_dtype dtype);
EMBER_API const char *ember_dtype_name(ember_dtype dtype);

/* Highest tensor rank ember handles. */
#define EMBER_MAX_RANK 8

/* ---------------------------------------------------------------------------------------------
 * Tensors
 * ------------------------------------------------------------------------------------------- */

typedef struct ember_tensor ember_tensor;

/* A tensor that owns zero-filled, 64-byte aligned memory for dims[0] x ... x dims[rank-1]
 * elements. rank 0 is a scalar. */
EMBER_API ember_status ember_tensor_create(ember_dtype dtype, const int64_t *dims, int rank,
                                           ember_tensor **out, ember_error *err);

/* A tensor over caller memory (zero copy). `data` must hold at least `bytes` bytes, which must
 * cover every element, and must outlive the tensor. ember never frees it. */
EMBER_API ember_status ember_tensor_wrap(ember_dtype dtype, const int64_t *dims, int rank,
                                         void *data, size_t bytes, ember_tensor **out,
                                         ember_error *err);

EMBER_API void ember_tensor_free(ember_tensor *tensor);

EMBER_API ember_dtype ember_tensor_dtype(const ember_tensor *tensor);
EMBER_API int ember_tensor_rank(const ember_tensor *tensor);
EMBER_API const int64_t *ember_tensor_dims(const ember_tensor *tensor);
EMBER_API int64_t ember_tensor_element_count(const ember_tensor *tensor);
EMBER_API size_t ember_tensor_byte_size(const ember_tensor *tensor);
EMBER_API void *ember_tensor_data(ember_tensor *tensor);
EMBER_API const void *ember_tensor_const_data(const ember_tensor *tensor);

/* String tensors (EMBER_STRING): ember_tensor_create() makes one whose elements are empty
 * strings; each element is a NUL-terminated string the tensor owns. Read and write elements
 * with the two calls below (strings are copied in). For a string tensor ember_tensor_data()
 * and ember_tensor_const_data() return NULL, ember_tensor_byte_size() is 0 and
 * ember_tensor_wrap() fails with EMBER_ERR_UNSUPPORTED; .pb files hold them, .npy files not.
 * ember_tensor_string() returns NULL for another dtype or an index past the end; the string
 * stays valid until the element is set again or the tensor is freed. */
EMBER_API const char *ember_tensor_string(const ember_tensor *tensor, size_t index);
EMBER_API ember_status ember_tensor_set_string(ember_tensor *tensor, size_t index,
                                               const char *value, ember_error *err);
/* Name carried by a tensor read from a file ("" if none). */
EMBER_API const char *ember_tensor_name(const ember_tensor *tensor);

/* Read a tensor from a .npy file or an ONNX TensorProto (.pb) file; the format is recognized
 * from the content (npy magic) and otherwise taken as TensorProto. */
EMBER_API ember_status ember_tensor_load(const char *path, ember_tensor **out, ember_error *err);
EMBER_API ember_status ember_tensor_load_memory(const void *data, size_t size, ember_tensor **out,
                                                ember_error *err);
/* Write a tensor as .npy, or as a TensorProto when the path ends in ".pb" (then `name`, which
 * may be NULL, becomes the TensorProto's name). */
EMBER_API ember_status ember_tensor_save(const ember_tensor *tensor, const char *path,
                                         const char *name, ember_error *err);

/* ---------------------------------------------------------------------------------------------
 * Sequences and optionals
 *
 * An ember_tensor handle may hold a sequence of tensors (ONNX seq(tensor)) or an optional value
 * (ONNX optional(tensor) or optional(seq(tensor))) instead of a tensor; ember_tensor_kind()
 * tells which. They are passed to and returned from ember_session_run() like tensors and freed
 * with ember_tensor_free(), which frees everything they hold. For such a handle
 * ember_tensor_dtype() is the element type of the tensors inside (EMBER_UNDEFINED when not
 * known, e.g. an empty sequence read from a file), ember_tensor_rank() is 0,
 * ember_tensor_element_count() and ember_tensor_byte_size() are 0, ember_tensor_data() is
 * NULL, and ember_tensor_save() fails with EMBER_ERR_UNSUPPORTED.
 * ------------------------------------------------------------------------------------------- */

EMBER_API ember_value_kind ember_tensor_kind(const ember_tensor *tensor);

/* An empty sequence of `element_type` tensors (EMBER_UNDEFINED: decided by the first item). */
EMBER_API ember_status ember_sequence_create(ember_dtype element_type, ember_tensor **out,
                                             ember_error *err);
/* Append a copy of tensor `item`, whose type must be the sequence's element type. */
EMBER_API ember_status ember_sequence_append(ember_tensor *sequence, const ember_tensor *item,
                                             ember_error *err);
/* Number of tensors in a sequence (0 for other kinds). */
EMBER_API size_t ember_sequence_length(const ember_tensor *sequence);
/* A copy of tensor `index` of a sequence, owned by the caller. */
EMBER_API ember_status ember_sequence_get(const ember_tensor *sequence, size_t index,
                                          ember_tensor **out, ember_error *err);

/* An optional holding a copy of `value` (a tensor or a sequence), or none when `value` is
 * NULL; `element_kind` (EMBER_KIND_TENSOR or EMBER_KIND_SEQUENCE) and `element_type` give its
 * type and must match `value` when it is given. */
EMBER_API ember_status ember_optional_create(ember_value_kind element_kind,
                                             ember_dtype element_type, const ember_tensor *value,
                                             ember_tensor **out, ember_error *err);
/* 1 if the optional holds a value, else 0 (also for handles of other kinds). */
EMBER_API int ember_optional_has_value(const ember_tensor *optional);
/* EMBER_KIND_TENSOR or EMBER_KIND_SEQUENCE: what the optional holds or would hold. */
EMBER_API ember_value_kind ember_optional_element_kind(const ember_tensor *optional);
/* A copy of the value an optional holds, owned by the caller; EMBER_ERR_INVALID_ARGUMENT if
 * it holds none. */
EMBER_API ember_status ember_optional_get(const ember_tensor *optional, ember_tensor **out,
                                          ember_error *err);

/* Read a value of a known kind from a .pb file: a TensorProto (EMBER_KIND_TENSOR, same as
 * ember_tensor_load), a SequenceProto of tensors (EMBER_KIND_SEQUENCE) or an OptionalProto of a
 * tensor or sequence (EMBER_KIND_OPTIONAL). The protobuf bytes do not say which message they
 * hold, so the caller names it (ember_value_info.kind of the graph input or output). */
EMBER_API ember_status ember_value_load(const char *path, ember_value_kind kind,
                                        ember_tensor **out, ember_error *err);
EMBER_API ember_status ember_value_load_memory(const void *data, size_t size,
                                               ember_value_kind kind, ember_tensor **out,
                                               ember_error *err);

/* ---------------------------------------------------------------------------------------------
 * Models
 * ------------------------------------------------------------------------------------------- */

typedef struct ember_model ember_model;

typedef struct ember_load_options {
    /* Largest single tensor (initializer, external data, declared shape) accepted, in bytes.
     * 0 means the default (4 GiB). */
    uint64_t max_tensor_bytes;
    /* Refuse graphs with more nodes than this. 0 means the default (1,000,000). */
    uint64_t max_nodes;
} ember_load_options;

/* Load a ModelProto. `options` may be NULL. Every unsupported operator of the model is listed
 * in one error. External data is resolved relative to the model file's folder and may not
 * escape it; a model loaded from memory may only use external data when `base_dir` is given
 * through ember_model_load_memory_at(). */
EMBER_API ember_status ember_model_load_file(const char *path, const ember_load_options *options,
                                             ember_model **out, ember_error *err);
EMBER_API ember_status ember_model_load_memory(const void *data, size_t size,
                                               const ember_load_options *options,
                                               ember_model **out, ember_error *err);
EMBER_API ember_status ember_model_load_memory_at(const void *data, size_t size,
                                                  const char *base_dir,
                                                  const ember_load_options *options,
                                                  ember_model **out, ember_error *err);
EMBER_API void ember_model_free(ember_model *model);

/* Description of a graph input or output. Strings and arrays are owned by the model. A dim
 * of -1 is symbolic or unknown; dim_names[i] then holds its name (e.g. "batch") or NULL.
 * rank is -1 when the graph does not declare a shape. For a sequence or optional (`kind`),
 * dtype is the element type of its tensors and rank is 0; element_kind is what an optional
 * holds (EMBER_KIND_TENSOR or EMBER_KIND_SEQUENCE; EMBER_KIND_TENSOR for other kinds). */
typedef struct ember_value_info {
    const char *name;
    ember_dtype dtype;
    int rank;
    const int64_t *dims;
    const char *const *dim_names;
    ember_value_kind kind;
    ember_value_kind element_kind;
} ember_value_info;

EMBER_API size_t ember_model_input_count(const ember_model *model);
EMBER_API size_t ember_model_output_count(const ember_model *model);
/* Inputs exclude initializers (IR < 4 models list weights as inputs: those stay optional). */
EMBER_API ember_status ember_model_input(const ember_model *model, size_t index,
                                         ember_value_info *info);
EMBER_API ember_status ember_model_output(const ember_model *model, size_t index,
                                          ember_value_info *info);

EMBER_API int64_t ember_model_ir_version(const ember_model *model);
/* Opset version imported for `domain` ("" or "ai.onnx" for the default domain); 0 if none. */
EMBER_API int64_t ember_model_opset(const ember_model *model, const char *domain);
EMBER_API const char *ember_model_producer(const ember_model *model);

/* Nodes of the graph as loaded (before optimization), in topological order. */
typedef struct ember_node_info {
    const char *name;    /* may be "" */
    const char *op_type;
    const char *domain;  /* "" for the default domain */
    int64_t opset;       /* version of the domain the model imports */
} ember_node_info;

EMBER_API size_t ember_model_node_count(const ember_model *model);
EMBER_API ember_status ember_model_node(const ember_model *model, size_t index,
                                        ember_node_info *info);
/* Number of weight elements and their bytes (initializers and Constant nodes). */
EMBER_API uint64_t ember_model_parameter_count(const ember_model *model);
EMBER_API uint64_t ember_model_parameter_bytes(const ember_model *model);

/* The operators a model file uses, read without loading the model: works on models ember
 * cannot load (unsupported operators, element types or value kinds), so that reports can say
 * what a model needs and what is missing. Each distinct (domain, op_type) appears once, in
 * order of first use, nodes of subgraphs (If/Loop/Scan bodies) included. The scan owns the
 * strings; free it with ember_op_scan_free. Fails only on bytes that are not a ModelProto. */
typedef struct ember_op_scan ember_op_scan;
typedef struct ember_op_use {
    const char *domain;  /* "" for the default domain */
    const char *op_type;
    int64_t opset;       /* version of the domain the model imports (0: not imported) */
    int supported;       /* 1 if a kernel is registered for it at that opset, or the model
                          * defines it as a function */
} ember_op_use;

EMBER_API ember_status ember_op_scan_memory(const void *data, size_t size, ember_op_scan **out,
                                            ember_error *err);
EMBER_API ember_status ember_op_scan_file(const char *path, ember_op_scan **out,
                                          ember_error *err);
EMBER_API size_t ember_op_scan_count(const ember_op_scan *scan);
EMBER_API ember_status ember_op_scan_get(const ember_op_scan *scan, size_t index,
                                         ember_op_use *use);
EMBER_API void ember_op_scan_free(ember_op_scan *scan);

/* Warnings found at load (lints such as "ArgMax over an axis of size 1"), one per line,
 * owned by the model. count may be 0. */
EMBER_API size_t ember_model_warning_count(const ember_model *model);
EMBER_API const char *ember_model_warning(const ember_model *model, size_t index);

/* ---------------------------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------------------------- */

typedef struct ember_session ember_session;

typedef enum ember_opt_level {
    EMBER_OPT_NONE = 0,  /* run the graph as written */
    EMBER_OPT_BASIC = 1, /* exact rewrites only: folding, dead code, identity removal, heads */
    EMBER_OPT_ALL = 2,   /* also fusions that may change rounding (e.g. Conv+BatchNorm) */
} ember_opt_level;

/* A pool of worker threads that several sessions may share, so that N sessions do not start
 * N pools that fight over the cores. Idle workers sleep: after a job they poll for new work for
 * at most 50 microseconds (yielding the core), then wait without spinning. ember splits BLAS work
 * over its own threads: creating a session sets OpenBLAS to one thread per call for the
 * process (openblas_set_num_threads(1)). */
typedef struct ember_threadpool ember_threadpool;

/* threads: total threads working on one run, including the caller (0 = all cores). */
EMBER_API ember_status ember_threadpool_create(int threads, ember_threadpool **out,
                                               ember_error *err);
/* Frees the pool; every session using it must be freed first. */
EMBER_API void ember_threadpool_free(ember_threadpool *pool);

/* ---------------------------------------------------------------------------------------------
 * Task heads: logits -> decisions
 *
 * A head turns a raw-logits output of the model into decisions (and optionally probabilities)
 * inside the session: ember adds a fused operator (ai.ember SigmoidThreshold, SoftmaxArgMax or
 * CumulativeOrdinal) reading that output, so ember_session_run() returns the decisions as new
 * outputs next to the logits. The decisions are exactly those of the unfused float32 graph
 * (Sigmoid -> Greater / Round, ArgMax, the CORAL / CORN count), for every float32 logit.
 *
 *   kind        logits per row (last axis)  decision (default type)          probabilities
 *   BINARY      1                           sigmoid(x) > T (float 0 / 1)      sigmoid(x)
 *   MULTILABEL  L                           sigmoid(x_k) > T_k (bool)         sigmoid per label
 *   MULTICLASS  C >= 2                      argmax (int64)                    softmax (C)
 *   ORDINAL     K-1 >= 1                    number of k with P(y>k) > T       P(y = k) (K)
 *                                           (int64); P(y>k) = sigmoid(x_k)
 *                                           (CORAL) or the running product
 *                                           of the sigmoids (CORN)
 *
 * Special values (the fused kernels' rules, which are the unfused graph's):
 *   BINARY at T = 0.5 with a float decision is torch.round(torch.sigmoid(x)): a NaN logit gives
 *   NaN. Any other threshold or decision type: a NaN logit gives 0 (NaN > T is false).
 *   sigmoid(x) for |x| below ~1e-7 is exactly 0.5 in float32, so the decision is 0 there (a
 *   plain x > 0 would say 1). +inf and -inf have sigmoids 1 and 0, compared with T as any value.
 *   MULTICLASS: the first index of the largest logit; a NaN counts as the largest (the first
 *   NaN wins), as ONNX ArgMax and torch.argmax. Its probabilities are the Softmax operator's,
 *   bit for bit: NaN for a row holding a NaN, a +inf (inf - inf) or only -inf.
 *   ORDINAL: a NaN logit is not counted (NaN > T is false); for CORN it also stops the count.
 * Rows are the elements of all axes but the last; a rank-0 or rank-1 output is one logit per
 * element for BINARY.
 * ------------------------------------------------------------------------------------------- */

typedef enum ember_head_kind {
    EMBER_HEAD_BINARY = 1,
    EMBER_HEAD_MULTILABEL = 2,
    EMBER_HEAD_MULTICLASS = 3,
    EMBER_HEAD_ORDINAL = 4,
} ember_head_kind;

typedef enum ember_ordinal_mode {
    EMBER_ORDINAL_CORAL = 0, /* P(y > k) = sigmoid(x_k) */
    EMBER_ORDINAL_CORN = 1,  /* P(y > k) = prod_{j <= k} sigmoid(x_j) */
} ember_ordinal_mode;

typedef struct ember_head {
    /* Graph output holding the raw logits (float32). NULL: the model's only output. */
    const char *output;
    ember_head_kind kind;
    /* Threshold in [0, 1] (default 0.5): BINARY, ORDINAL, and MULTILABEL for every label. */
    float threshold;
    /* MULTILABEL only: one threshold per label along the last axis (n_thresholds of them,
     * matching its size), or NULL to use `threshold`. Read during ember_session_create(). */
    const float *thresholds;
    size_t n_thresholds;
    ember_ordinal_mode ordinal; /* ORDINAL only */
    /* Nonzero: also output the probabilities (costs an exp per logit). */
    int probabilities;
    /* Element type of the decision; EMBER_UNDEFINED: the kind's default (table above).
     * BINARY / MULTILABEL: bool, any integer type, float, double, float16 or bfloat16 (1 / 0).
     * MULTICLASS: int64 only. ORDINAL: any integer or float type. */
    ember_dtype decision_dtype;
    /* Names of the new outputs; NULL: "<output>_decision" and "<output>_probabilities". A name
     * the graph already uses is an error. */
    const char *decision_name;
    const char *probabilities_name;
    /* Memory owned by ember_head_parse() (per-label thresholds); release it with
     * ember_head_clear(). Leave it NULL when filling the struct by hand. */
    void *owned;
} ember_head;

/* A head of `kind` with the defaults: threshold 0.5, CORAL, no probabilities, default decision
 * type and names, output NULL. */
EMBER_API void ember_head_init(ember_head *head, ember_head_kind kind);

/* Fill `head` (as ember_head_init, then the spec) from the text the command line takes:
 *   binary[:T] | multilabel[:T] | multilabel:T1,T2,... | multiclass
 *   | ordinal[:coral|corn[:T]]
 * Thresholds are numbers in [0, 1]. Fails with EMBER_ERR_INVALID_ARGUMENT and a message saying
 * what is expected, leaving `head` as it was. Several multilabel thresholds are stored in
 * memory the head owns: call ember_head_clear() when done and before parsing into it again
 * (harmless otherwise). */
EMBER_API ember_status ember_head_parse(const char *spec, ember_head *head, ember_error *err);
EMBER_API void ember_head_clear(ember_head *head);

typedef struct ember_session_options {
    /* Threads used inside one run (1 = the calling thread only). 0 means all cores. Ignored
     * when `threadpool` is set. */
    int threads;
    /* Optional shared pool (not owned by the session); NULL: the session makes its own. */
    ember_threadpool *threadpool;
    ember_opt_level opt_level;
    /* Scratch memory one run may use, in bytes; a run needing more fails with
     * EMBER_ERR_LIMIT. 0 means the default (8 GiB). */
    uint64_t memory_limit;
    /* Heads to apply (see ember_head), read during ember_session_create() only; NULL / 0: none.
     * Session creation fails with EMBER_ERR_INVALID_ARGUMENT when a head names no output, is
     * malformed, or clashes with a name, and EMBER_ERR_SHAPE when the logits do not fit it
     * (e.g. MULTICLASS over one logit, thresholds that do not match the labels). When the
     * number of logits is only known at run time, ember_session_run() checks it. */
    const ember_head *heads;
    size_t n_heads;
    /* Batch tiling, at EMBER_OPT_ALL: 1 (the default) = on, 0 = off. When on, a run whose
     * inputs carry a batch (the same dim 0, at least 2) may run the front of a CNN (the leading
     * convolutions, pooling, normalization and elementwise layers, which treat every sample
     * apart) a few samples at a time, so that their activations stay in cache; the rest of the
     * graph then runs on the whole batch. With several threads, each thread runs its own
     * chunks with scratch memory of its own (each within memory_limit). Outputs do not change:
     * ember's kernels compute a sample the same way at any batch size. */
    int batch_tiling;
} ember_session_options;

/* Default options: all cores, EMBER_OPT_ALL, default memory limit, no heads, batch tiling on. */
EMBER_API void ember_session_options_init(ember_session_options *options);

EMBER_API ember_status ember_session_create(const ember_model *model,
                                            const ember_session_options *options,
                                            ember_session **out, ember_error *err);
EMBER_API void ember_session_free(ember_session *session);

/* Run the graph. inputs[i] feeds the graph input named input_names[i]; all required inputs
 * must be given. For each requested output a new tensor is returned in outputs[i], owned by
 * the caller. Thread-safe on one session. On failure no output is returned (all NULL). */
EMBER_API ember_status ember_session_run(ember_session *session, const char *const *input_names,
                                         const ember_tensor *const *inputs, size_t input_count,
                                         const char *const *output_names, size_t output_count,
                                         ember_tensor **outputs, ember_error *err);

/* Outputs a session can return: the model's, then those added by heads, in order. Strings and
 * arrays are owned by the session; shapes are as known at creation (-1: known at run time). */
EMBER_API size_t ember_session_output_count(const ember_session *session);
EMBER_API ember_status ember_session_output(const ember_session *session, size_t index,
                                            ember_value_info *info);

/* Print the graph as it runs after optimization, one node per line, into `buf`
 * (NUL-terminated, truncated to `size`). Returns the length the full text needs. */
EMBER_API size_t ember_session_describe(const ember_session *session, char *buf, size_t size);

/* ---------------------------------------------------------------------------------------------
 * Custom operators and plugins
 *
 * A kernel is a vtable versioned by (domain, op_type, since_version). ember calls
 *   create  once per node when a session is created (read attributes, prepare state),
 *   infer   whenever input shapes change, and once at load with state == NULL and inputs whose
 *           data may be NULL (set every output's dtype and shape; leave rank -1 if unknown),
 *   run     to compute (outputs arrive allocated as infer described them),
 *   destroy when the session is freed.
 * Kernels must be thread-safe: run may be called concurrently with the same state.
 * ------------------------------------------------------------------------------------------- */

/* A node as a kernel sees it (attributes, opset); valid during the callback only. */
typedef struct ember_op_context ember_op_context;

typedef struct ember_tensor_shape {
    ember_dtype dtype;
    int rank; /* -1: unknown */
    int64_t dims[EMBER_MAX_RANK];
} ember_tensor_shape;

typedef struct ember_kernel {
    int abi_version; /* EMBER_ABI_VERSION the kernel was compiled with */
    const char *domain;
    const char *op_type;
    int since_version;
    ember_status (*create)(const ember_op_context *ctx, void **state, ember_error *err);
    ember_status (*infer)(void *state, const ember_op_context *ctx, size_t n_inputs,
                          const ember_tensor *const *inputs, size_t n_outputs,
                          ember_tensor_shape *outputs, ember_error *err);
    ember_status (*run)(void *state, const ember_op_context *ctx, size_t n_inputs,
                        const ember_tensor *const *inputs, size_t n_outputs,
                        ember_tensor *const *outputs, ember_error *err);
    void (*destroy)(void *state);
} ember_kernel;

/* Register a kernel (copied; the strings must stay valid for the life of the process). Models
 * loaded afterwards may use it. Fails if the ABI version differs from EMBER_ABI_VERSION or if
 * the same (domain, op_type, since_version) is already registered. */
EMBER_API ember_status ember_register_op(const ember_kernel *kernel, ember_error *err);

/* Load a shared library that registers operators: it must export
 *   ember_status ember_plugin_init(int abi_version, ember_error *err);
 * which ember calls with EMBER_ABI_VERSION; the plugin refuses versions it was not built for.
 * The library stays loaded for the life of the process. */
EMBER_API ember_status ember_load_plugin(const char *path, ember_error *err);

/* Attribute access for kernels; defaults are returned when the attribute is absent. */
EMBER_API int64_t ember_op_attr_int(const ember_op_context *ctx, const char *name, int64_t dflt);
EMBER_API float ember_op_attr_float(const ember_op_context *ctx, const char *name, float dflt);
EMBER_API const char *ember_op_attr_string(const ember_op_context *ctx, const char *name,
                                           const char *dflt);
EMBER_API const int64_t *ember_op_attr_ints(const ember_op_context *ctx, const char *name,
                                            size_t *count);
EMBER_API const float *ember_op_attr_floats(const ember_op_context *ctx, const char *name,
                                            size_t *count);
/* Opset of the node's domain imported by the model, and the node's name. */
EMBER_API int64_t ember_op_opset(const ember_op_context *ctx);
EMBER_API const char *ember_op_name(const ember_op_context *ctx);
/* Number of outputs the node declares, and whether output `index` is present: an optional
 * output may be omitted (empty name). infer may give an omitted output an empty shape
 * ({0}), and run need not write it. */
EMBER_API size_t ember_op_output_count(const ember_op_context *ctx);
EMBER_API int ember_op_output_present(const ember_op_context *ctx, size_t index);

/* Work splitting for run: calls fn(arg, begin, end) on disjoint chunks covering [0, n), each
 * of at least `grain` items (but the last), on the session's threads (the calling one
 * included), and returns when all are done. fn must be thread-safe. Outside run, or with one
 * thread, it calls fn(arg, 0, n) on the calling thread. */
typedef void (*ember_range_fn)(void *arg, int64_t begin, int64_t end);
EMBER_API void ember_op_parallel_for(const ember_op_context *ctx, int64_t n, int64_t grain,
                                     ember_range_fn fn, void *arg);
/* Threads a run may use (1 outside run). */
EMBER_API int ember_op_threads(const ember_op_context *ctx);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
