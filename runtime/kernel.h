/* The kernel interface. Every operator, built in or from a plugin, is an em_op:
 *
 *   create  (once per node at session creation): validate attributes and constant inputs,
 *           prepare state such as packed weights. May be NULL.
 *   infer   (whenever input shapes are new): set dtype, rank and dims of every output from the
 *           inputs. Also called at load for static inference, BEFORE create: then `state` is
 *           NULL and inputs that are not constants have data == NULL (dims may be known). A
 *           kernel whose output shape depends on input values then sets that output's rank to
 *           -1. So infer must never dereference `state` without checking it for NULL.
 *   run     compute. Outputs arrive allocated as infer described them.
 *   destroy free the state. May be NULL.
 *
 * Kernels see only IR tensors and attributes, never the file format. in[i] is NULL for an
 * omitted optional input. `out` has node->n_outputs entries.
 */
#ifndef EMBER_RUNTIME_KERNEL_H
#define EMBER_RUNTIME_KERNEL_H

#include "ir.h"

typedef struct em_exec em_exec; /* one run in progress: threads, scratch memory */

enum {
    /* Output 0 is a view of input 0's data (Reshape, Squeeze, Identity, ...): the executor
     * does not allocate it and `run` may be NULL. */
    EM_OP_ALIAS_INPUT0 = 1u << 0,
    /* Output 0 may be written into input 0's buffer when input 0 dies here (elementwise). */
    EM_OP_INPLACE_OK = 1u << 1,
    /* Output shapes depend on running the kernel (If / Loop / Scan): infer may leave an output
     * at rank -1 even when every input has data. Such an output reaches `run` unallocated
     * (data NULL); run sets its dtype and shape and gives it memory from em_aligned_alloc with
     * owns_data = true, which the executor takes over (as an arena block). */
    EM_OP_DYNAMIC_OUTPUTS = 1u << 2,
    /* The kernel accepts sequence and optional values (em_tensor.kind) as inputs and may
     * produce them. Other kernels never see such values: the executor and static inference
     * refuse them first. Outputs of a non-tensor kind reach `run` unallocated; run gives them
     * an owned value (em_seq_new / em_optional_new / em_value_copy) with owns_data = true.
     * With EM_OP_ALIAS_INPUT0 (Identity), a non-tensor input is deep-copied to output 0. */
    EM_OP_ANY_KIND = 1u << 3,
    /* The kernel accepts and may produce string tensors (see em_string_tensor_new). Others
     * never see one. A string output reaches `run` unallocated: run gives it an owned string
     * tensor. With EM_OP_ALIAS_INPUT0 a string input is deep-copied to output 0. */
    EM_OP_STRINGS = 1u << 4,
    /* Output 0 may be a view into a larger buffer (the executor places a Concat input inside
     * the Concat's output; planner.c): data is 64-byte aligned, capacity is exactly the
     * output's bytes, and run writes its elements there and touches nothing else. */
    EM_OP_OUTPUT_VIEW = 1u << 5,
};

typedef struct em_op {
    const char *domain;  /* "" for the default ONNX domain */
    const char *op_type;
    int since_version;   /* first operator version this kernel implements */
    int until_version;   /* last one (inclusive); 0 means "only since_version" */
    ember_status (*create)(const em_graph *g, em_node *node, void **state, ember_error *err);
    ember_status (*infer)(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                          ember_error *err);
    ember_status (*run)(const em_node *node, void *state, em_tensor *const *in, em_tensor *out,
                        em_exec *ex, ember_error *err);
    void (*destroy)(void *state);
    unsigned flags;
} em_op;

/* ---- registry (filled once, before first use; read-only afterwards) ---- */

void em_registry_init(void); /* idempotent, thread-safe */
/* Add an operator; fails if the same (domain, op_type, version range) overlaps one present. */
ember_status em_registry_add(const em_op *op, ember_error *err);
/* The kernel for op_type in domain at the model's opset for that domain, or NULL. For the
 * default domain the opset is first mapped to the operator version in force. */
const em_op *em_registry_find(const char *domain, const char *op_type, int64_t opset);
/* Operator version in force at `opset` for a default-domain op; 0 if unknown op. */
int em_onnx_op_version(const char *op_type, int64_t opset);

/* ---- helpers for kernels while running ---- */

typedef void (*em_range_fn)(void *ctx, int64_t begin, int64_t end);
/* Split [0, n) into chunks of at least `grain` items across the run's threads. */
void em_parallel_for(em_exec *ex, int64_t n, int64_t grain, em_range_fn fn, void *ctx);
int em_exec_threads(const em_exec *ex);
/* The session's memory limit for one run (bytes). Kernels that hold memory outside the arena
 * across iterations (Loop scan outputs) check themselves against it. */
uint64_t em_exec_memory_limit(const em_exec *ex);
/* Scratch memory valid until the kernel's run returns (64-byte aligned, not zeroed). */
void *em_exec_scratch(em_exec *ex, size_t bytes, ember_error *err);

/* Run a subgraph (If / Loop / Scan body). inputs: the subgraph's declared inputs in order;
 * captures: the tensors of g->captures in order (the node's implicit inputs). outputs[i] are
 * filled with new heap tensors owned by the caller (em_tensor_free). */
ember_status em_exec_subgraph(em_exec *ex, const em_graph *g, em_tensor *const *inputs,
                              int n_inputs, em_tensor *const *captures, em_tensor **outputs,
                              ember_error *err);

/* ---- helpers for infer ---- */

/* Standard failure for an input dtype a kernel does not implement. */
ember_status em_unsupported_type(const em_node *node, int input, ember_dtype dt, ember_error *err);
/* Fails unless every input is a tensor (or the kernel has EM_OP_ANY_KIND) of a non-string
 * type (or the kernel has EM_OP_STRINGS). */
ember_status em_check_input_kinds(const em_node *node, em_tensor *const *in, ember_error *err);
/* Normalize a possibly negative axis into [0, rank); fails with a clear message otherwise. */
ember_status em_norm_axis(const em_node *node, int64_t axis, int rank, int *out, ember_error *err);

/* ---- the public kernel interface (ember_kernel, plugin.c) seen from inside ---- */

/* The node, graph and run behind a public ember_op_context: the graph during create only, the
 * run during run only (NULL otherwise). For built-in plugins (ops/heads.c) that must reach
 * other built-in kernels; third-party plugins cannot call them. */
const em_node *em_op_context_node(const ember_op_context *ctx);
const em_graph *em_op_context_graph(const ember_op_context *ctx);
em_exec *em_op_context_exec(const ember_op_context *ctx);

/* Each ops/ family file exposes its table: */
#define EM_OPS_FAMILY(name) const em_op *em_ops_##name(size_t *count)

#endif
