/* The one logistic sigmoid of ember. The Sigmoid kernel (ops/unary.c) and the fused heads
 * (ops/heads.c) must both compute it through em_sigmoid_f32: the fused SigmoidThreshold and
 * CumulativeOrdinal decide most elements without evaluating it, from a bracket derived from
 * this function's error bound, and evaluate it (this very function) for the elements inside
 * the bracket, so that fused and unfused graphs give identical decisions for every float32
 * input.
 *
 * What the heads rely on, checked over all 2^32 float32 inputs by
 * tests/unit/test_heads_exhaustive.c:
 *   - |em_sigmoid_f32(x) - sigmoid(x)| <= EM_SIGMOID_MAX_ULP * 2^-23 * sigmoid(x) + 2^-126
 *     for every non-NaN x (sigmoid(x) the exact value): a few ulp, and results below the
 *     smallest normal float may be flushed to 0 (1 / (1 + expf(-x)) is 0 below x = -88.7);
 *   - values in [0, 1]; NaN for NaN.
 * Monotonicity is NOT required (vectorized exp approximations break it at the ulp level).
 * A faster replacement (a vectorized exp) is welcome if it keeps these properties and both
 * kernels use it.
 */
#ifndef EMBER_OPS_SIGMOID_H
#define EMBER_OPS_SIGMOID_H

#include <math.h>

#define EM_SIGMOID_MAX_ULP 4

/* 1 / (1 + e^-x): saturates to exactly 1 for x above ~16.6 and to 0 below ~-88.7 (where
 * e^-x overflows), the formula PyTorch uses. */
static inline float em_sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

static inline double em_sigmoid_f64(double x) { return 1.0 / (1.0 + exp(-x)); }

#endif
