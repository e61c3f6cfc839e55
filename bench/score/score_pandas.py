#!/usr/bin/python3
"""Batch scoring of a CSV with pandas and PyTorch, the usual way: read_csv, one forward pass of
the network in torch (rebuilt from the ONNX file's weights; Sub, Div, Gemm, Relu as exported),
to_csv.  usage: score_pandas.py MODEL INPUT.csv OUTPUT.csv"""
import os
import sys

import numpy as np
import onnx
import pandas as pd
import torch
from onnx import numpy_helper


def torch_forward(model, x):
    """Evaluate the exported MLP graph with torch ops."""
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy())
               for i in model.graph.initializer}
    values = {model.graph.input[0].name: x}
    for node in model.graph.node:
        args = [values[n] if n in values else weights[n] for n in node.input]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Sub":
            y = args[0] - args[1]
        elif node.op_type == "Div":
            y = args[0] / args[1]
        elif node.op_type == "Relu":
            y = torch.relu(args[0])
        elif node.op_type == "Gemm":
            b = args[1].t() if attrs.get("transB", 0) else args[1]
            a = args[0].t() if attrs.get("transA", 0) else args[0]
            y = torch.addmm(args[2], a, b, beta=attrs.get("beta", 1.0), alpha=attrs.get("alpha", 1.0))
        else:
            sys.exit(f"score_pandas.py: operator {node.op_type} is not handled")
        values[node.output[0]] = y
    return values[model.graph.output[0].name]


def main():
    model_path, inp, outp = sys.argv[1:4]
    torch.set_num_threads(os.cpu_count() or 1)
    model = onnx.load(model_path)
    df = pd.read_csv(inp, dtype=np.float32)
    with torch.no_grad():
        y = torch_forward(model, torch.from_numpy(df.to_numpy())).numpy()
    name = model.graph.output[0].name
    cols = [name] if y.shape[1] == 1 else [f"{name}_{i}" for i in range(y.shape[1])]
    pd.DataFrame(y, columns=cols).to_csv(outp, index=False)


if __name__ == "__main__":
    main()
