#!/usr/bin/python3
"""Writes the small ONNX models the `ember score` tests use into the folder argv[1].

Most use the test-only operators of score_test_ops.c (domain test.score), so the CLI can be
tested whatever built-in operators exist; gemm_sigmoid.onnx uses the standard Gemm and Sigmoid
operators (the runtime's own kernels)."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
TEST = "test.score"


def save(nodes, inputs, outputs, name, inits=(), test_ops=True, opset=13):
    graph = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    imports = [helper.make_opsetid("", opset)]
    if test_ops:
        imports.append(helper.make_opsetid(TEST, 1))
    model = helper.make_model(graph, opset_imports=imports)
    model.ir_version = 8
    onnx.save(model, os.path.join(out, name + ".onnx"))


def vi(name, dtype, shape):
    return helper.make_tensor_value_info(name, dtype, shape)


F = TensorProto.FLOAT

# y = x, several types and shapes
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", F, ["batch", 4])], [vi("y", F, ["batch", 4])], "echo4")
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", F, ["batch", 1])], [vi("y", F, ["batch", 1])], "echo1")
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", TensorProto.DOUBLE, ["batch", 2])], [vi("y", TensorProto.DOUBLE, ["batch", 2])],
     "echo_f64")
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", TensorProto.INT64, ["batch", 3])], [vi("y", TensorProto.INT64, ["batch", 3])],
     "echo_i64")
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", TensorProto.UINT8, ["batch", 2])], [vi("y", TensorProto.UINT8, ["batch", 2])],
     "echo_u8")
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", TensorProto.BOOL, ["batch", 2])], [vi("y", TensorProto.BOOL, ["batch", 2])],
     "echo_bool")
# images: [batch, 1, 2, 2] from 4 columns
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", F, ["batch", 1, 2, 2])], [vi("y", F, ["batch", 1, 2, 2])], "echo_image")
# unknown width: columns decide
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", F, ["batch", "width"])], [vi("y", F, ["batch", "width"])], "echo_any")
# the model fixes the batch size at 3
save([helper.make_node("Echo", ["x"], ["y"], domain=TEST)],
     [vi("x", F, [3, 2])], [vi("y", F, [3, 2])], "echo_fixed3")

# one logit per row
W = [0.5, -1.0, 2.0, 0.25]
save([helper.make_node("Affine", ["x"], ["logit"], domain=TEST, weights=W, bias=0.1)],
     [vi("x", F, ["batch", 4])], [vi("logit", F, ["batch", 1])], "affine4")
# two outputs
save([helper.make_node("Affine", ["x"], ["logit"], domain=TEST, weights=W, bias=0.1),
      helper.make_node("Echo", ["x"], ["copy"], domain=TEST)],
     [vi("x", F, ["batch", 4])], [vi("logit", F, ["batch", 1]), vi("copy", F, ["batch", 4])],
     "two_outputs")
# two inputs
save([helper.make_node("Concat2", ["a", "b"], ["y"], domain=TEST)],
     [vi("a", F, ["batch", 2]), vi("b", F, ["batch", 3])], [vi("y", F, ["batch", 5])], "concat")
# not one output row per input row
save([helper.make_node("OneRow", ["x"], ["y"], domain=TEST)],
     [vi("x", F, ["batch", 4])], [vi("y", F, [1, 1])], "one_row")

# standard operators: logit = x W^T + b, p = sigmoid(logit)
w = numpy_helper.from_array(np.array([[0.5, -1.0, 2.0, 0.25]], dtype=np.float32), "W")
b = numpy_helper.from_array(np.array([0.1], dtype=np.float32), "B")
save([helper.make_node("Gemm", ["x", "W", "B"], ["logit"], transB=1),
      helper.make_node("Sigmoid", ["logit"], ["p"])],
     [vi("x", F, ["batch", 4])], [vi("logit", F, ["batch", 1]), vi("p", F, ["batch", 1])],
     "gemm_sigmoid", inits=[w, b], test_ops=False)
