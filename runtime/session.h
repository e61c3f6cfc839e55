#ifndef EMBER_RUNTIME_SESSION_H
#define EMBER_RUNTIME_SESSION_H

#include <pthread.h>

#include "kernel.h"
#include "model.h"
#include "threadpool.h"

/* Liveness plan of one graph: when each value can be released. */
typedef struct em_plan {
    int *last_use; /* per value: last node index reading it; n_nodes for graph outputs,
                      -1 for values nobody reads */
    bool *memo_ok; /* per node: output shapes may be reused while input shapes repeat (root
                      graph of a session only; NULL otherwise) */
    int *concat_into; /* per value: Concat node whose output may hold it in place, or -1
                         (em_plan_concat; NULL when not planned) */
    int *concat_slot; /* per value: its input index in that Concat (same allocation) */
    /* Batch tiling (em_plan_tiling; root graph of a session): nodes [0, tile_cut) may run per
     * chunk of the batch (0: never). */
    int tile_cut;
    int n_tile_inputs, *tile_inputs; /* graph inputs the front reads as batched */
    int n_tile_fixed, *tile_fixed;   /* overridable initializers it reads as constants */
    int n_tile_cross, *tile_cross;   /* front outputs read after the cut or graph outputs */
    int64_t tile_sample_bytes;       /* largest value of the front, per sample */
} em_plan;

ember_status em_plan_build(const em_graph *g, em_plan *plan, ember_error *err);
void em_plan_free(em_plan *plan);
/* Concat inputs whose producers may write into the Concat's output (planner.c). Needs memo_ok. */
ember_status em_plan_concat(const em_graph *g, em_plan *plan, ember_error *err);
/* The batch-separable front of the root graph worth running per chunk (plan_tiling.c). Needs
 * last_use. */
ember_status em_plan_tiling(const em_graph *g, em_plan *plan, ember_error *err);

typedef struct em_run_ctx em_run_ctx;

struct ember_session {
    struct ember_model *model; /* reference held */
    em_graph *graph;           /* optimized copy; node->state prepared */
    em_plan plan;
    ember_threadpool *pool;
    bool owns_pool;
    int threads;
    uint64_t memory_limit;
    ember_opt_level opt_level;
    bool batch_tiling; /* ember_session_options.batch_tiling */
    uint64_t tile_bytes; /* a tiled chunk holds about this much of the front's largest value */
    pthread_mutex_t lock; /* guards the pool of idle run contexts */
    em_run_ctx **idle;
    int n_idle, cap_idle;
};

/* Heads of ember_session_options (heads_api.c): attach each to the optimized graph. */
ember_status em_session_attach_heads(em_graph *g, const ember_head *heads, size_t n_heads,
                                     ember_error *err);

/* Optimizer passes (optimizer.c). */
ember_status em_optimize(em_graph *g, ember_opt_level level, ember_error *err);

/* Executor (executor.c). */
em_run_ctx *em_run_ctx_new(struct ember_session *s);
void em_run_ctx_free(em_run_ctx *c);
/* inputs: one tensor per graph input slot (NULL where not given); outputs[k] receives the
 * value of output_values[k] with data it owns (owns_data; free with em_aligned_free). */
ember_status em_execute(struct ember_session *s, em_run_ctx *c, em_tensor *const *inputs,
                        const int *output_values, int n_outputs, em_tensor *outputs,
                        ember_error *err);
ember_status em_session_prepare(struct ember_session *s, ember_error *err);
void em_session_release_kernels(em_graph *g);

/* Run one node whose inputs are all constants (used by constant folding). outputs[k] receive
 * new tensors (NULL for omitted outputs). */
ember_status em_fold_node(const em_graph *g, em_node *n, em_tensor **outputs, ember_error *err);
/* Largest arena among the session's idle run contexts during their last run (bytes, outputs
 * included), for tests and bench. */
uint64_t em_session_arena_bytes(struct ember_session *s);
/* Concat inputs written in place (not copied) during the last run of an idle run context, for
 * tests: the largest count among them. */
int em_session_concat_placed(struct ember_session *s);
/* Chunks the batch-tiled front ran in during the last run of an idle run context (0 or 1: not
 * tiled), for tests: the largest count among them. */
int em_session_tile_chunks(struct ember_session *s);
#endif
