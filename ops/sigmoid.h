/* The one logistic sigmoid of ember. The Sigmoid kernel (ops/unary.c) and the fused heads
 * (ops/heads.c) must compute it with this exact formula: the fused SigmoidThreshold and
 * CumulativeOrdinal derive their logit-space cut from this function, so that fused and unfused
 * graphs give identical decisions for every float32 input.
 *
 * Properties the heads rely on (checked over all 2^32 float32 inputs by
 * tests/unit/test_heads_exhaustive.c): non-decreasing over the non-NaN floats, values in
 * [0, 1], NaN for NaN, sigmoid(-0) == sigmoid(+0). Any faster replacement (a vectorized exp)
 * must keep these properties and be used by both kernels.
 */
#ifndef EMBER_OPS_SIGMOID_H
#define EMBER_OPS_SIGMOID_H

#include <math.h>

/* 1 / (1 + e^-x): saturates to exactly 1 for x above ~16.6 and to 0 below ~-88.7 (where
 * e^-x overflows), the same formula PyTorch uses. */
static inline float em_sigmoid_f32(float x) { return 1.0f / (1.0f + expf(-x)); }

static inline double em_sigmoid_f64(double x) { return 1.0 / (1.0 + exp(-x)); }

#endif
