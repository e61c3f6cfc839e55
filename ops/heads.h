/* Fused task heads (domain "ai.ember", version 1): the operators, their attributes, and the
 * pieces the graph pass, the lints, the tests and the benchmark share.
 *
 * SigmoidThreshold(logits) -> decision[, probabilities]
 *   threshold  float, default 0.5         one threshold for every element, or
 *   thresholds floats                     one per label along the last axis (length = last dim)
 *   mode       "greater" (default)        decision = sigmoid(x) >  t
 *              "greater_equal"            decision = sigmoid(x) >= t
 *              "round"                    decision = round_half_even(sigmoid(x)) (t must be 0.5;
 *                                         NaN stays NaN, so `to` must be float)
 *   to         output element type (ONNX TensorProto number), default bool; 1 / 0 in that type
 *   The decision compares x with a bracket precomputed for t (em_sigmoid_cut_f32) and
 *   evaluates the shared sigmoid only inside it, so it equals the unfused Sigmoid -> Greater /
 *   Round for every float32 input, NaN and infinities included (NaN -> false / NaN).
 *   probabilities: sigmoid(x), bit-identical to the Sigmoid kernel.
 *
 * SoftmaxArgMax(logits) -> index[, top_probability, probabilities]
 *   axis (default -1), keepdims (default 1), select_last_index (default 0): as ONNX ArgMax.
 *   match      ""  (default)              index of the largest logit (softmax is monotonic);
 *                                         a NaN counts as the largest, like torch.argmax.
 *                                         top_probability = 1 / sum(exp(x - max)) and
 *                                         probabilities = softmax(x), both stable.
 *              "argmax_of_softmax"        the index equals ONNX ArgMax(Softmax(x)) exactly
 *                                         (made by the fusion pass): rows where probabilities
 *                                         could tie in float32 (a logit within 2^-16 of the
 *                                         maximum, or NaN / inf) are run through the Softmax and
 *                                         ArgMax kernels themselves. Only `index`.
 *              "argmax"                   the index equals ONNX ArgMax(x) exactly (rows with
 *                                         NaN / inf go to the ArgMax kernel) and probabilities
 *                                         equal the Softmax kernel's output (it runs it).
 *   match_op   "Softmax" (default) or "LogSoftmax": the normalizer of the matched graph.
 *   match_opset  the default-domain opset of the matched graph (selects those kernels).
 *   Match modes need axis = the last axis.
 *
 * CumulativeOrdinal(logits) -> rank[, cumulative_probabilities, class_probabilities]
 *   logits: [..., K-1] (the last axis holds the K-1 ordinal logits)
 *   mode       "coral" (default): P(y > k) = sigmoid(x_k)
 *              "corn":            P(y > k) = prod_{j <= k} sigmoid(x_j), multiplied left to
 *                                 right in float32 as the exported graphs do
 *   threshold  float, default 0.5: rank = number of k with P(y > k) > threshold
 *   to         element type of rank, default int64 (float types give the count as a float)
 *   keepdims   0 (default): rank has shape [...]; 1: [..., 1]
 *   cumulative_probabilities [..., K-1]: P(y > k).
 *   class_probabilities [..., K]: P(y = k) = P(y > k-1) - P(y > k), P(y > -1) = 1,
 *   P(y > K-1) = 0 (not clipped: CORAL logits that are not ordered can give negatives).
 */
#ifndef EMBER_OPS_HEADS_H
#define EMBER_OPS_HEADS_H

#include <stdbool.h>

#include "kernel.h"

#define EM_HEADS_DOMAIN "ai.ember"
#define EM_HEADS_VERSION 1

/* A logit whose distance to the row maximum is below this (absolute) may, after the Softmax
 * kernel's rounding, get the same probability as the maximum: such rows are resolved by the
 * real kernels in "argmax_of_softmax" mode. 2^-16 covers an exp with up to 2^4 ulp error and a
 * log-sum-exp with |log(sum)| up to 2^6. */
#define EM_HEADS_TIE_MARGIN (1.0f / 65536.0f)

/* A test `sigmoid(x) > t` (inclusive: `>= t`) decided in logit space. The bracket comes from
 * the exact sigmoid (in double) widened by the shared sigmoid's error bound
 * (EM_SIGMOID_MAX_ULP, ops/sigmoid.h):
 *   x >= hi   the test is true for em_sigmoid_f32(x), whatever its rounding;
 *   x <= lo   the test is false;
 *   between   (and NaN) em_sigmoid_f32(x) is evaluated and compared.
 * lo / hi are NaN when no x is certain that way. For real data almost every element is decided
 * by a compare: the bracket holds the x whose sigmoid is within ~1e-6 (relative) of t, e.g.
 * |x| < 2e-6 for t = 0.5 (where sigmoid(1e-9) is exactly 0.5 in float32, so round(sigmoid(x))
 * is 0 while a plain x > 0 would say 1). Both ends are
 * found by bisection over the ordered bit patterns of the float32 numbers. */
typedef struct em_sigmoid_cut {
    float lo, hi, t;
    bool inclusive;
} em_sigmoid_cut;

em_sigmoid_cut em_sigmoid_cut_f32(float t, bool inclusive);

/* The test for one element (the kernels use vectorized loops with the same logic). */
bool em_sigmoid_cut_test(const em_sigmoid_cut *c, float x);

/* Whether `rank`-dimensional logits with `count` of them per row (the last axis; -1: not
 * known yet) fit the head named `head` ("binary", "multilabel", "multiclass", "ordinal"); if
 * not, fails `err` with EMBER_ERR_SHAPE and a message naming the output. A fused node given
 * the attribute `head` (em_head_attach) runs this check in its infer. */
bool em_head_logits_fit(const char *head, const char *output, int rank, int64_t count,
                        ember_error *err);

/* The heads are a built-in plugin: em_heads_plugin_init (the ember_plugin_init of a plugin)
 * registers the three kernels through ember_register_op when the registry is initialized.
 * em_heads_op returns the registered operator (the public-kernel adapter), e.g. for tests. */
/* Element types a fused decision (SigmoidThreshold / CumulativeOrdinal `to`) may be written
 * in: bool, the integer types, float16/bfloat16/float/double (1 / 0 or a count). */
bool em_head_decision_type_ok(int64_t to);

ember_status em_heads_plugin_init(int abi_version, ember_error *err);
const em_op *em_heads_op(const char *op_type);

#endif
