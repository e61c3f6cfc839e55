#!/usr/bin/python3
"""Exports the benchmark-only models (random weights, never committed) into OUTDIR:
torchvision resnet18, mobilenet_v2, squeezenet1_1 and a small nn.TransformerEncoder, each as
NAME.onnx (dynamic batch, opset 13) and NAME.pt (TorchScript, for the PyTorch peer).
The transformer also gets NAME.flops.json (multiply-adds x 2 per sample, counted from its
configuration): its Reshape targets are computed in the graph, which ONNX shape inference
cannot follow, so bench/compare could not count its MatMuls from the file.
usage: export_models.py OUTDIR"""
import json
import os
import sys

import torch
import torchvision

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)


class Encoder(torch.nn.Module):
    """A small text-classifier body: 2 encoder layers, d_model 128, 4 heads, seq 64."""

    def __init__(self):
        super().__init__()
        layer = torch.nn.TransformerEncoderLayer(d_model=128, nhead=4, dim_feedforward=512,
                                                 dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(128, 10)

    def forward(self, x):
        return self.head(self.encoder(x).mean(dim=1))

    def flops_per_sample(self, seq):
        total = 0
        for layer in self.encoder.layers:
            d = layer.self_attn.embed_dim
            ff = layer.linear1.out_features
            total += 2 * seq * d * 3 * d      # q, k, v projections
            total += 2 * 2 * seq * seq * d    # q k^T and attention x v, all heads
            total += 2 * seq * d * d          # output projection
            total += 2 * 2 * seq * d * ff     # feed-forward, two layers
        return total + 2 * self.head.in_features * self.head.out_features


models = {
    "resnet18": (torchvision.models.resnet18(weights=None), (1, 3, 224, 224)),
    "mobilenet_v2": (torchvision.models.mobilenet_v2(weights=None), (1, 3, 224, 224)),
    "squeezenet1_1": (torchvision.models.squeezenet1_1(weights=None), (1, 3, 224, 224)),
    "transformer": (Encoder(), (1, 64, 128)),
}
for name, (model, shape) in models.items():
    model.eval()
    x = torch.randn(*shape)
    onnx_path = os.path.join(out, name + ".onnx")
    if not os.path.exists(onnx_path):
        # Not under no_grad: there nn.TransformerEncoderLayer takes its fused fast path
        # (aten::_transformer_encoder_layer_fwd), which the ONNX exporter cannot export.
        torch.onnx.export(model, x, onnx_path, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          opset_version=13, do_constant_folding=True)
    pt_path = os.path.join(out, name + ".pt")
    if not os.path.exists(pt_path):
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(model, x), pt_path)
    if hasattr(model, "flops_per_sample"):
        with open(os.path.join(out, name + ".flops.json"), "w") as f:
            json.dump({"flops_per_sample": model.flops_per_sample(shape[1])}, f)
    print("exported", name)
