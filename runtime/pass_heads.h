/* Task heads in the graph: the fusion pass (pass_heads.c), the lints (lint.c, declared in
 * model.h), and heads attached on request (`--head`, also pass_heads.c). The fused operators
 * themselves are described in ops/heads.h. */
#ifndef EMBER_RUNTIME_PASS_HEADS_H
#define EMBER_RUNTIME_PASS_HEADS_H

#include "ir.h"

/* Replace the task heads PyTorch exports by the fused "ai.ember" operators, only where the
 * result is provably identical:
 *
 *   Sigmoid -> Round                                  -> SigmoidThreshold(mode round, float)
 *   Sigmoid -> Greater(s, C) | Less(C, s) [-> Cast]   -> SigmoidThreshold(C, to = Cast's type)
 *   Sigmoid -> GreaterOrEqual(s, C) | LessOrEqual(C, s) [-> Cast]   (mode greater_equal)
 *       C: a float32 constant, one value or one per label along the last axis
 *   Sigmoid -> Greater(t) -> Cast -> ReduceSum(last axis)            -> CumulativeOrdinal coral
 *   Sigmoid -> per column Gather/Slice -> Mul chain [-> Unsqueeze] -> Concat(last axis)
 *           -> Greater(t) -> Cast -> ReduceSum(last axis)            -> CumulativeOrdinal corn
 *   Softmax | LogSoftmax -> ArgMax, same (last) axis  -> SoftmaxArgMax(match argmax_of_softmax)
 *   ArgMax(x) beside Softmax(x), same (last) axis     -> SoftmaxArgMax(match argmax), which
 *                                                        also yields the Softmax output
 *
 * Only float32 logits with known static rank are fused. Every intermediate value of a pattern
 * must be private to it (read only inside the pattern, not a graph output); otherwise that
 * pattern is left alone and stays computed. The one exception is the Sigmoid output: when it
 * is still read elsewhere or exposed, it becomes the fused node's `probabilities` (or CORAL's
 * `cumulative_probabilities`) output, bit-identical to the Sigmoid kernel; for CORN the Sigmoid
 * node is kept.
 *
 * Contract:
 *   - g is a finalized root graph (nodes topologically sorted, producers and consumer counts
 *     valid, values[].info filled by static inference, Constant nodes already turned into
 *     constant values). Run it after Identity removal and constant folding, so that
 *     thresholds computed from constants are constants.
 *   - Matched nodes are removed, the fused nodes are added with opset "ai.ember" 1 (imported
 *     into g if missing) and their kernel resolved (node->op); node->state is not created.
 *   - When anything changed, the graph is compacted and finalized again before returning, so
 *     the executor can run it as is. Graph inputs, outputs and their names are unchanged.
 *   - Exactness rests on the kernels it replaces computing what ONNX says (Round half to even,
 *     Greater, Cast, ReduceSum, Mul in IEEE float32), on the Sigmoid kernel computing
 *     em_sigmoid_f32 (ops/sigmoid.h, error bound checked exhaustively), and on the Softmax
 *     kernel's row depending only on that row's logits, within 16 ulp of exact (NaN / inf
 *     rows and near ties are re-run through the real Softmax and ArgMax kernels). The
 *     matched Softmax / ArgMax kernels must write into buffers they are given (no alias or
 *     dynamic outputs); otherwise nothing is fused.
 *   - Fails only when out of memory; the graph is then still valid (possibly partly fused).
 */
ember_status em_pass_fuse_heads(em_graph *g, ember_error *err);

/* A head requested by the user for a raw-logits output (CLI `--head`, C API). */
typedef enum em_head_kind {
    EM_HEAD_BINARY,     /* sigmoid(x) > t, float 0 / 1 like torch.round(torch.sigmoid(x)) */
    EM_HEAD_MULTILABEL, /* sigmoid(x) > t_j per label along the last axis, bool */
    EM_HEAD_MULTICLASS, /* argmax over the last axis, int64 */
    EM_HEAD_ORDINAL,    /* CORAL or CORN rank over the last axis, int64 */
} em_head_kind;

#define EM_HEAD_MAX_THRESHOLDS 4096

typedef struct em_head_spec {
    em_head_kind kind;
    bool corn;          /* ordinal: CORN instead of CORAL */
    bool probabilities; /* also output probabilities (costs an exp per logit) */
    int n_thresholds;   /* 0: the default 0.5 */
    float *thresholds;  /* malloc'd by em_head_parse; free with em_head_spec_clear */
    ember_dtype decision_dtype; /* EMBER_UNDEFINED: the kind's default (below) */
    const char *decision_name;      /* NULL: "<logits>_<suffix>", made unique (below) */
    const char *probabilities_name; /* NULL: likewise */
} em_head_spec;

/* Parse "binary[:T]", "multilabel[:T1,T2,...]", "multiclass", "ordinal[:coral|corn]"
 * (ordinal also takes ":coral:T"/":corn:T" for a threshold other than 0.5). Thresholds are in
 * [0, 1]. spec->probabilities starts false. */
ember_status em_head_parse(const char *text, em_head_spec *spec, ember_error *err);
void em_head_spec_clear(em_head_spec *spec);

/* Add the head's fused node on graph output `output_index` (a float32 logits value with a
 * last axis). The logits output stays; the head's results are appended as new graph outputs:
 *   binary:      "<logits>_decision" float 0 / 1 (at T = 0.5 exactly torch.round(sigmoid(x)),
 *                NaN for a NaN logit); with probabilities "<logits>_probability" (sigmoids)
 *   multilabel:  "<logits>_decision" bool; with probabilities "<logits>_probability"
 *   multiclass:  "<logits>_class" int64, equal to ONNX ArgMax (first index of the largest
 *                logit; a NaN counts as the largest, like torch.argmax); with probabilities
 *                "<logits>_probabilities", equal to Softmax-13 (SoftmaxArgMax match "argmax")
 *   ordinal:     "<logits>_rank" int64; with probabilities "<logits>_class_probabilities" (K)
 * (a suffix "_2", "_3"... is added if a name is taken; a name given in the spec must be free).
 * decision_dtype replaces the decision's type (binary: at T = 0.5 only a float decision keeps
 * NaN; multiclass: int64 only). The fused node carries the attribute head = the kind's name,
 * so that its kernel checks the logits per row whenever their shape is known (binary 1,
 * multiclass >= 2, ordinal >= 1). g must be finalized; it is finalized again. Fails with
 * EMBER_ERR_INVALID_ARGUMENT / EMBER_ERR_SHAPE when the output is not
 * float32 logits fitting the head (e.g. multilabel thresholds that do not match a static last
 * axis); on any failure g may hold part of the head and must be discarded. */
ember_status em_head_attach(em_graph *g, int output_index, const em_head_spec *spec,
                            ember_error *err);

#endif
