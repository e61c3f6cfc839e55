#!/usr/bin/python3
"""Writes the unfused heads, as PyTorch exports them, over 10 logits per row (argv[1] is the
output folder): the models bench/heads/run times with and without the heads fusion."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
C = 10
FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def save(name, nodes, outputs, inits=()):
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("logits", FLOAT, ["batch", C])],
                              [helper.make_tensor_value_info(n, t, ["batch"] + s)
                               for n, t, s in outputs],
                              initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, name + ".onnx"))


sig = helper.make_node("Sigmoid", ["logits"], ["s"])
save("multiclass_softmax_argmax",
     [helper.make_node("Softmax", ["logits"], ["p"], axis=1),
      helper.make_node("ArgMax", ["p"], ["label"], axis=1, keepdims=0)],
     [("label", INT64, [])])
save("binary_sigmoid_round", [sig, helper.make_node("Round", ["s"], ["decision"])],
     [("decision", FLOAT, [C])])
save("multilabel_sigmoid_greater",
     [sig, helper.make_node("Greater", ["s", "t"], ["labels"])], [("labels", BOOL, [C])],
     inits=[const("t", np.linspace(0.3, 0.75, C))])
save("ordinal_coral",
     [sig, helper.make_node("Greater", ["s", "half"], ["b"]),
      helper.make_node("Cast", ["b"], ["c"], to=INT64),
      helper.make_node("ReduceSum", ["c", "axes"], ["rank"], keepdims=0)],
     [("rank", INT64, [])], inits=[const("half", 0.5), const("axes", [1], np.int64)])
nodes, inits = [sig], [const("half", 0.5), const("axes", [1], np.int64)]
products = []
for k in range(C):
    inits.append(const(f"i{k}", k, np.int64))
    nodes.append(helper.make_node("Gather", ["s", f"i{k}"], [f"g{k}"], axis=1))
    if k == 0:
        products.append("g0")
    else:
        nodes.append(helper.make_node("Mul", [products[-1], f"g{k}"], [f"m{k}"]))
        products.append(f"m{k}")
for k, p in enumerate(products):
    nodes.append(helper.make_node("Unsqueeze", [p, "axes"], [f"u{k}"]))
nodes += [helper.make_node("Concat", [f"u{k}" for k in range(C)], ["cum"], axis=1),
          helper.make_node("Greater", ["cum", "half"], ["b"]),
          helper.make_node("Cast", ["b"], ["c"], to=INT64),
          helper.make_node("ReduceSum", ["c", "axes"], ["rank"], keepdims=0)]
save("ordinal_corn", nodes, [("rank", INT64, [])], inits=inits)
