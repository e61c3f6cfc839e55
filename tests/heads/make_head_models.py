#!/usr/bin/python3
"""Writes the small head-only ONNX models tests/unit/test_heads.c loads (into argv[1]): the
decision heads PyTorch exports (which the fusion pass must replace without changing a single
result), look-alikes it must leave alone, and models that trip each lint. Every model takes
float32 logits named "logits" with a dynamic batch axis."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
FLOAT, INT64, BOOL = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def const(name, value, dtype=np.float32):
    return numpy_helper.from_array(np.array(value, dtype=dtype), name)


def save(name, nodes, classes, outputs, opset=17, inits=(), logits_shape=None):
    shape = logits_shape if logits_shape is not None else ["batch", classes]
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("logits", FLOAT, shape)],
                              [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
                              initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset < 15 else 8
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.save(model, os.path.join(out, name + ".onnx"))


def sigmoid(out="s"):
    return helper.make_node("Sigmoid", ["logits"], [out], name="sigmoid")


# ---- binary / multi-label: Sigmoid -> Round, Sigmoid -> Greater(const) [-> Cast] ----
save("round", [sigmoid(), helper.make_node("Round", ["s"], ["decision"], name="round")], 1,
     [("decision", FLOAT)])
save("round_exposed", [sigmoid("probability"),
                       helper.make_node("Round", ["probability"], ["decision"], name="round")],
     1, [("decision", FLOAT), ("probability", FLOAT)])
save("greater", [sigmoid(), helper.make_node("Greater", ["s", "t"], ["decision"], name="gt")], 1,
     [("decision", BOOL)], inits=[const("t", 0.5)])
save("greater_cast", [sigmoid(), helper.make_node("Greater", ["s", "t"], ["b"], name="gt"),
                      helper.make_node("Cast", ["b"], ["decision"], to=FLOAT, name="cast")],
     1, [("decision", FLOAT)], inits=[const("t", 0.5)])
save("labels", [sigmoid(), helper.make_node("Greater", ["s", "t"], ["b"], name="gt"),
                helper.make_node("Cast", ["b"], ["decision"], to=INT64, name="cast")],
     3, [("decision", INT64)], inits=[const("t", [0.3, 0.5, 0.7])])
save("labels_row", [sigmoid(), helper.make_node("Greater", ["s", "t"], ["decision"], name="gt")],
     3, [("decision", BOOL)], inits=[const("t", [[0.25, 0.45, 0.999]])])
save("greater_equal", [sigmoid(),
                       helper.make_node("GreaterOrEqual", ["s", "t"], ["decision"], name="ge")],
     2, [("decision", BOOL)], inits=[const("t", 0.4)], opset=16)
save("less", [sigmoid(), helper.make_node("Less", ["t", "s"], ["decision"], name="lt")], 2,
     [("decision", BOOL)], inits=[const("t", 0.6)])
save("less_equal", [sigmoid(),
                    helper.make_node("LessOrEqual", ["t", "s"], ["decision"], name="le")],
     2, [("decision", BOOL)], inits=[const("t", 0.5)], opset=16)
save("two_decisions", [sigmoid("probability"),
                       helper.make_node("Round", ["probability"], ["rounded"], name="round"),
                       helper.make_node("Greater", ["probability", "t"], ["sure"], name="gt")],
     2, [("rounded", FLOAT), ("sure", BOOL), ("probability", FLOAT)],
     inits=[const("t", 0.9)])
save("threshold_edges", [sigmoid(),
                         helper.make_node("Greater", ["s", "t0"], ["above0"], name="gt0"),
                         helper.make_node("Greater", ["s", "t1"], ["above1"], name="gt1"),
                         helper.make_node("GreaterOrEqual", ["s", "t1"], ["reach1"], name="ge1"),
                         helper.make_node("GreaterOrEqual", ["s", "t0"], ["reach0"], name="ge0")],
     2, [("above0", BOOL), ("above1", BOOL), ("reach1", BOOL), ("reach0", BOOL)],
     inits=[const("t0", 0.0), const("t1", 1.0)], opset=16)

# ---- ordinal: CORAL and CORN as PyTorch exports them ----
def coral(name, levels, opset=17, to=INT64, keepdims=0):
    nodes = [sigmoid(), helper.make_node("Greater", ["s", "half"], ["b"], name="gt"),
             helper.make_node("Cast", ["b"], ["c"], to=to, name="cast")]
    inits = [const("half", 0.5)]
    if opset >= 13:
        nodes.append(helper.make_node("ReduceSum", ["c", "axes"], ["rank"], keepdims=keepdims,
                                      name="sum"))
        inits.append(const("axes", [1], np.int64))
    else:
        nodes.append(helper.make_node("ReduceSum", ["c"], ["rank"], axes=[1], keepdims=keepdims,
                                      name="sum"))
    save(name, nodes, levels, [("rank", to)], opset=opset, inits=inits)


coral("coral", 4)
coral("coral_k2", 1)
coral("coral_opset11", 4, opset=11, to=FLOAT, keepdims=1)


def corn(name, levels, form="gather", opset=17):
    """The unrolled cumulative product: columns of the sigmoids, multiplied left to right."""
    nodes, inits = [sigmoid()], [const("half", 0.5), const("axes1", [1], np.int64)]
    columns = []
    for k in range(levels):
        if form == "gather":
            inits.append(const(f"i{k}", k, np.int64))
            nodes.append(helper.make_node("Gather", ["s", f"i{k}"], [f"g{k}"], axis=1,
                                          name=f"gather{k}"))
        else:
            inits += [const(f"st{k}", [k], np.int64), const(f"en{k}", [k + 1], np.int64)]
            nodes.append(helper.make_node("Slice", ["s", f"st{k}", f"en{k}", "axes1"], [f"g{k}"],
                                          name=f"slice{k}"))
        columns.append(f"g{k}")
    products = [columns[0]]
    for k in range(1, levels):
        operands = [products[-1], columns[k]] if k % 2 else [columns[k], products[-1]]
        nodes.append(helper.make_node("Mul", operands, [f"m{k}"], name=f"mul{k}"))
        products.append(f"m{k}")
    if form == "gather":
        stacked = []
        for k, p in enumerate(products):
            nodes.append(helper.make_node("Unsqueeze", [p, "axes1"], [f"u{k}"], name=f"unsq{k}"))
            stacked.append(f"u{k}")
    else:
        stacked = products
    nodes += [helper.make_node("Concat", stacked, ["cum"], axis=1, name="concat"),
              helper.make_node("Greater", ["cum", "half"], ["b"], name="gt"),
              helper.make_node("Cast", ["b"], ["c"], to=INT64, name="cast"),
              helper.make_node("ReduceSum", ["c", "axes1"], ["rank"], keepdims=0, name="sum")]
    save(name, nodes, levels, [("rank", INT64)], opset=opset, inits=inits)


corn("corn", 4)
corn("corn_slice", 3, form="slice")
corn("corn_k2", 1)

# ---- multi-class: Softmax -> ArgMax, ArgMax beside Softmax ----
def softmax_argmax(name, op="Softmax", opset=17, keepdims=0, last=0, classes=10):
    attrs = {"select_last_index": last} if opset >= 12 else {}
    save(name, [helper.make_node(op, ["logits"], ["p"], axis=1, name="softmax"),
                helper.make_node("ArgMax", ["p"], ["label"], axis=1, keepdims=keepdims,
                                 name="argmax", **attrs)],
         classes, [("label", INT64)], opset=opset)


softmax_argmax("softmax_argmax")
softmax_argmax("softmax_argmax_opset11", opset=11, keepdims=1)
softmax_argmax("softmax_argmax_last", last=1)
softmax_argmax("logsoftmax_argmax", op="LogSoftmax")
softmax_argmax("softmax_argmax_k2", classes=2)
save("argmax_beside_softmax",
     [helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1, name="softmax"),
      helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0, name="argmax")],
     10, [("label", INT64), ("probabilities", FLOAT)])

# ---- look-alikes the pass must leave alone (still run and compared) ----
save("keep_softmax_exposed",
     [helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"),
      helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0,
                       name="argmax")],
     10, [("label", INT64), ("probabilities", FLOAT)])
save("keep_softmax_axis0",
     [helper.make_node("Softmax", ["logits"], ["p"], axis=0, name="softmax"),
      helper.make_node("ArgMax", ["p"], ["label"], axis=0, keepdims=0, name="argmax")],
     10, [("label", INT64)])
save("keep_threshold_broadcast_grows",
     [sigmoid(), helper.make_node("Greater", ["s", "t"], ["decision"], name="gt")], 3,
     [("decision", BOOL)], inits=[const("t", [[[0.3, 0.5, 0.7]]])])
save("keep_corn_wrong_order",
     [sigmoid(), helper.make_node("Gather", ["s", "i1"], ["g1"], axis=1, name="gather1"),
      helper.make_node("Gather", ["s", "i0"], ["g0"], axis=1, name="gather0"),
      helper.make_node("Mul", ["g1", "g0"], ["m"], name="mul"),
      helper.make_node("Unsqueeze", ["g1", "axes1"], ["u0"], name="unsq0"),
      helper.make_node("Unsqueeze", ["m", "axes1"], ["u1"], name="unsq1"),
      helper.make_node("Concat", ["u0", "u1"], ["cum"], axis=1, name="concat"),
      helper.make_node("Greater", ["cum", "half"], ["b"], name="gt"),
      helper.make_node("Cast", ["b"], ["c"], to=INT64, name="cast"),
      helper.make_node("ReduceSum", ["c", "axes1"], ["rank"], keepdims=0, name="sum")],
     2, [("rank", INT64)],
     inits=[const("half", 0.5), const("axes1", [1], np.int64), const("i0", 0, np.int64),
            const("i1", 1, np.int64)])

# ---- lints: each model trips exactly one ----
save("lint_argmax_one", [helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0,
                                          name="argmax_one")], 1, [("label", INT64)])
save("lint_softmax_one", [helper.make_node("Softmax", ["logits"], ["p"], axis=1,
                                           name="softmax_one")], 1, [("p", FLOAT)])
save("lint_logsoftmax_one_opset11",
     [helper.make_node("LogSoftmax", ["logits"], ["p"], axis=1, name="logsoftmax_one")],
     None, [("p", FLOAT)], opset=11, logits_shape=["batch", 1, 1])
save("lint_sigmoid_softmax", [sigmoid(), helper.make_node("Softmax", ["s"], ["p"], axis=1,
                                                          name="softmax_after_sigmoid")],
     5, [("p", FLOAT)])
save("lint_softmax_half", [helper.make_node("Softmax", ["logits"], ["p"], axis=1, name="softmax"),
                           helper.make_node("Greater", ["p", "half"], ["labels"],
                                            name="half_threshold")],
     10, [("labels", BOOL)], inits=[const("half", 0.5)])
save("lint_sigmoid_twice", [sigmoid(), helper.make_node("Sigmoid", ["s"], ["p"],
                                                        name="second_sigmoid")],
     3, [("p", FLOAT)])
# Not lints: Softmax over two classes compared with 0.5, ArgMax over 2 classes.
save("lint_none", [helper.make_node("Softmax", ["logits"], ["p"], axis=1, name="softmax"),
                   helper.make_node("Greater", ["p", "half"], ["labels"], name="gt"),
                   helper.make_node("ArgMax", ["logits"], ["label"], axis=1, name="argmax")],
     2, [("labels", BOOL), ("label", INT64)], inits=[const("half", 0.5)])

# ---- raw logits for heads attached on request (--head): an Identity so the output is computed
save("logits_identity", [helper.make_node("Identity", ["logits"], ["y"], name="identity")], None,
     [("y", FLOAT)], logits_shape=["batch", "classes"])

# ---- the unfused computation the heads of the public API are compared with (run unoptimized):
# the Sigmoid, Softmax and ArgMax kernels on logits of any width
save("ref_unfused", [sigmoid("sigmoid"),
                     helper.make_node("Softmax", ["logits"], ["softmax"], axis=-1, name="softmax"),
                     helper.make_node("ArgMax", ["logits"], ["argmax"], axis=-1, keepdims=0,
                                      name="argmax")],
     None, [("sigmoid", FLOAT), ("softmax", FLOAT), ("argmax", INT64)],
     logits_shape=["batch", "n"])
