/* The one logistic sigmoid of ember. The Sigmoid kernel (ops/unary.c) computes vm_sigmoidf
 * (ops/vmath.h); the fused heads (ops/heads.c) call it as em_sigmoid_f32. SigmoidThreshold and
 * CumulativeOrdinal decide most elements without it, from a bracket derived from its error
 * bound, and evaluate this very function for the elements inside the bracket, so that fused
 * and unfused graphs give identical decisions for every float32 input.
 *
 * What the heads rely on, checked over all 2^32 float32 inputs by
 * tests/unit/test_heads_exhaustive.c:
 *   - |em_sigmoid_f32(x) - sigmoid(x)| <= EM_SIGMOID_MAX_ULP * 2^-23 * sigmoid(x) + 2^-126
 *     for every non-NaN x (sigmoid(x) the exact value): a few ulp, and results below the
 *     smallest normal float may even be flushed to 0;
 *   - values in [0, 1]; NaN for NaN.
 * Monotonicity is NOT required: vm_sigmoidf decreases between neighbouring floats at about
 * 1.4 million places, which is why the heads use a bracket rather than a single cut.
 * Every compiled variant must give the same bits (the Sigmoid loop also has AVX2 / AVX-512
 * clones): hence -ffp-contract=off for the whole project (no FMA contraction in some variants
 * only).
 */
#ifndef EMBER_OPS_SIGMOID_H
#define EMBER_OPS_SIGMOID_H

#include "vmath.h"

#define EM_SIGMOID_MAX_ULP 4

/* The Sigmoid kernel's function (ops/vmath.h): a vectorizable exp, 1 / (1 + e) for x >= 0 and
 * e / (1 + e) below, e = exp(-|x|). Within 2 ulp; not monotone at the ulp level. */
static inline float em_sigmoid_f32(float x) {
    return vm_sigmoidf(x);
}

#endif
