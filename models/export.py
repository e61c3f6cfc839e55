#!/usr/bin/python3
"""Train and export ember's example model zoo (models/*.onnx).

Run with Debian's Python (python3-torch 1.13, python3-onnx, python3-sklearn):

    /usr/bin/python3 models/export.py [OUTDIR]
    /usr/bin/python3 models/export.py --torchscript OUTDIR   # also NAME.pt (bench/compare)

Everything is deterministic: fixed seeds, one thread, torch.use_deterministic_algorithms.
Each model is trained for a few seconds of CPU on a small real data set bundled with
scikit-learn and exported with torch.onnx.export with a dynamic batch axis named "batch".
Next to every NAME.onnx the script writes NAME.input.npy (held-out rows) and
NAME.expected_<output>.npy (what PyTorch computes on them), and it prints the held-out
metrics that models/README.md quotes. With --torchscript, each model is also saved as
NAME.pt, traced with torch.jit.trace, for the PyTorch column of bench/compare.
"""

import io
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn import datasets
from sklearn.model_selection import train_test_split

SEED = 0
SAMPLE_ROWS = 32  # rows in NAME.input.npy
ORDINAL_CLASSES = 5

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)


def reseed(offset=0):
    torch.manual_seed(SEED + offset)
    np.random.seed(SEED + offset)


def to_tensor(a, dtype=torch.float32):
    return torch.from_numpy(np.ascontiguousarray(a)).to(dtype)


def train(model, loss_fn, x, y, epochs, lr=1e-2, batch=64, weight_decay=0.0):
    """Plain Adam over shuffled mini-batches; the order comes from the seeded generator."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(SEED)
    n = x.shape[0]
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            if idx.numel() < 2:  # BatchNorm in train mode needs more than one row
                continue
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    model.eval()


def export(module, example, path, input_name, output_names, opset):
    """Export with a dynamic batch axis and check the result with the ONNX checker."""
    dynamic = {input_name: {0: "batch"}}
    for name in output_names:
        dynamic[name] = {0: "batch"}
    buf = io.BytesIO()
    torch.onnx.export(module, example, buf, opset_version=opset, input_names=[input_name],
                      output_names=list(output_names), dynamic_axes=dynamic,
                      do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(model)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    size = os.path.getsize(path)
    assert size < 1 << 20, f"{path} is {size} bytes"
    return size


class Zoo:
    def __init__(self, outdir, torchscript=False):
        self.outdir = outdir
        self.torchscript = torchscript
        self.readme_rows = []

    def save(self, name, module, sample, input_name, output_names, opset, task, metrics):
        """Export `module`, write its sample input and PyTorch's outputs on it."""
        path = os.path.join(self.outdir, name + ".onnx")
        size = export(module, sample[:2], path, input_name, output_names, opset)
        np.save(os.path.join(self.outdir, name + ".input.npy"), sample.numpy())
        with torch.no_grad():
            outs = module(sample)
            if self.torchscript:
                traced = torch.jit.trace(module, sample[:2])
                check = traced(sample)
                for a, b in zip(check if isinstance(check, tuple) else (check,),
                                outs if isinstance(outs, tuple) else (outs,)):
                    assert torch.equal(a, b), f"{name}: traced module differs from eager"
                traced.save(os.path.join(self.outdir, name + ".pt"))
        if not isinstance(outs, tuple):
            outs = (outs,)
        shapes = []
        for out_name, out in zip(output_names, outs):
            arr = out.numpy()
            np.save(os.path.join(self.outdir, f"{name}.expected_{out_name}.npy"), arr)
            shapes.append(f"{out_name} {arr.dtype}[batch,{','.join(map(str, arr.shape[1:]))}]"
                          .replace(",]", "]"))
        in_shape = ",".join(map(str, sample.shape[1:]))
        print(f"{name:28s} opset {opset}  {size:7d} bytes  {metrics}")
        self.readme_rows.append((name, task, f"{input_name} float32[batch,{in_shape}]",
                                 "; ".join(shapes), opset, metrics))


# ------------------------------------------------------------------------------------------
# Binary: breast cancer (30 features), one logit trained with BCEWithLogitsLoss.
# ------------------------------------------------------------------------------------------

class Standardize(nn.Module):
    """(x - mean) / std with the training set's statistics, so the model takes raw features."""

    def __init__(self, x):
        super().__init__()
        self.register_buffer("mean", x.mean(0))
        self.register_buffer("std", x.std(0) + 1e-6)

    def forward(self, x):
        return (x - self.mean) / self.std


class BinaryMLP(nn.Module):
    def __init__(self, x_train):
        super().__init__()
        self.norm = Standardize(x_train)
        self.fc1 = nn.Linear(x_train.shape[1], 16)
        self.fc2 = nn.Linear(16, 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(self.norm(x))))


class BinaryDecision(nn.Module):
    """What users write at inference: torch.round(torch.sigmoid(logit))."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.round(torch.sigmoid(self.net(x)))


def binary(zoo):
    reseed(1)
    data = datasets.load_breast_cancer()
    x_tr, x_te, y_tr, y_te = train_test_split(data.data, data.target, test_size=0.3,
                                              random_state=SEED, stratify=data.target)
    x_tr, x_te = to_tensor(x_tr), to_tensor(x_te)
    y_tr, y_te = to_tensor(y_tr), to_tensor(y_te)
    net = BinaryMLP(x_tr)
    train(net, lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y), x_tr, y_tr,
          epochs=40, lr=5e-3)
    with torch.no_grad():
        pred = torch.round(torch.sigmoid(net(x_te)))[:, 0]
    acc = (pred == y_te).float().mean().item()
    metrics = f"accuracy {acc:.3f} on {len(y_te)} held-out rows"
    sample = x_te[:SAMPLE_ROWS]
    zoo.save("binary_mlp", net, sample, "features", ["logit"], 17,
             "binary (breast cancer), raw logit", metrics)
    zoo.save("binary_mlp_decision", BinaryDecision(net), sample, "features", ["decision"], 17,
             "binary, Sigmoid -> Round in the graph", metrics)
    # The README's `ember score` demo: the same held-out rows as CSV with a header.
    os.makedirs(os.path.join(zoo.outdir, "data"), exist_ok=True)
    header = ",".join(name.replace(" ", "_") for name in data.feature_names)
    # Shortest decimal that reads back as the same float32 (what numpy prints for float32).
    with open(os.path.join(zoo.outdir, "data", "breast_cancer.csv"), "w") as f:
        f.write(header + "\n")
        for row in sample.numpy():
            f.write(",".join(np.format_float_positional(v, unique=True, trim="-")
                             for v in row) + "\n")


# ------------------------------------------------------------------------------------------
# Multi-class: handwritten digits as 64 features, 10 classes.
# ------------------------------------------------------------------------------------------

class MulticlassMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x / 16.0)))


class MulticlassDecision(nn.Module):
    """Softmax -> ArgMax, exposing the probabilities too (as most exports do)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        probabilities = torch.softmax(self.net(x), dim=1)
        return torch.argmax(probabilities, dim=1), probabilities


def digits_split():
    data = datasets.load_digits()
    return train_test_split(data.data, data.target, test_size=0.3, random_state=SEED,
                            stratify=data.target)


def multiclass(zoo):
    reseed(2)
    x_tr, x_te, y_tr, y_te = digits_split()
    x_tr, x_te = to_tensor(x_tr), to_tensor(x_te)
    y_tr, y_te = to_tensor(y_tr, torch.int64), to_tensor(y_te, torch.int64)
    net = MulticlassMLP()
    train(net, F.cross_entropy, x_tr, y_tr, epochs=30, lr=5e-3)
    with torch.no_grad():
        acc = (net(x_te).argmax(1) == y_te).float().mean().item()
    metrics = f"accuracy {acc:.3f} on {len(y_te)} held-out rows"
    sample = x_te[:SAMPLE_ROWS]
    zoo.save("multiclass_mlp", net, sample, "pixels", ["logits"], 13,
             "multi-class (digits, 10 classes), raw logits", metrics)
    zoo.save("multiclass_mlp_decision", MulticlassDecision(net), sample, "pixels",
             ["label", "probabilities"], 13, "multi-class, Softmax -> ArgMax in the graph",
             metrics)


# ------------------------------------------------------------------------------------------
# Multi-label: digits as 1x8x8 images; three labels per image.
# ------------------------------------------------------------------------------------------

LABEL_NAMES = ["even", "greater_than_4", "has_loop"]


def digit_labels(y):
    return np.stack([y % 2 == 0, y > 4, np.isin(y, [0, 6, 8, 9])], axis=1).astype(np.float32)


class MultilabelCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)    # right after a Conv: the exporter folds it
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)   # after a ReLU: stays a BatchNormalization node
        self.fc = nn.Linear(16, len(LABEL_NAMES))

    def forward(self, x):
        h = F.max_pool2d(torch.relu(self.bn1(self.conv1(x / 16.0))), 2)
        h = self.bn2(torch.relu(self.conv2(h)))
        return self.fc(F.adaptive_avg_pool2d(h, 1).flatten(1))


class MultilabelDecision(nn.Module):
    """sigmoid(logits) > per-label thresholds tuned on validation data."""

    def __init__(self, net, thresholds):
        super().__init__()
        self.net = net
        self.register_buffer("thresholds", thresholds)

    def forward(self, x):
        return torch.sigmoid(self.net(x)) > self.thresholds


def multilabel(zoo):
    reseed(3)
    x_tr, x_te, y_tr, y_te = digits_split()
    # Thresholds are tuned on a validation split of the training rows, never on the test rows.
    x_tr, x_va, y_tr, y_va = train_test_split(x_tr, y_tr, test_size=0.25, random_state=SEED,
                                              stratify=y_tr)
    images = lambda a: to_tensor(a).reshape(-1, 1, 8, 8)
    x_tr, x_va, x_te = images(x_tr), images(x_va), images(x_te)
    l_tr, l_va, l_te = (to_tensor(digit_labels(y)) for y in (y_tr, y_va, y_te))
    net = MultilabelCNN()
    train(net, F.binary_cross_entropy_with_logits, x_tr, l_tr, epochs=25, lr=1e-2)
    with torch.no_grad():
        p_va = torch.sigmoid(net(x_va))
        p_te = torch.sigmoid(net(x_te))
    grid = np.round(np.arange(0.05, 0.96, 0.05), 2)
    thresholds = []
    for j in range(len(LABEL_NAMES)):
        # Balanced accuracy on validation rows picks each label's threshold.
        def score(t):
            pred = p_va[:, j] > t
            truth = l_va[:, j] > 0.5
            tpr = (pred & truth).sum().item() / max(1, truth.sum().item())
            tnr = (~pred & ~truth).sum().item() / max(1, (~truth).sum().item())
            return (tpr + tnr) / 2
        thresholds.append(float(max(grid, key=score)))
    thr = torch.tensor(thresholds, dtype=torch.float32)
    acc = ((p_te > thr) == (l_te > 0.5)).float().mean(0)
    exact = ((p_te > thr) == (l_te > 0.5)).all(1).float().mean().item()
    metrics = ("per-label accuracy " + ", ".join(f"{n} {a:.3f}" for n, a in
                                                   zip(LABEL_NAMES, acc.tolist()))
               + f"; all three right {exact:.3f} on {len(y_te)} held-out images"
               + "; thresholds " + ", ".join(f"{t:g}" for t in thresholds))
    sample = x_te[:SAMPLE_ROWS]
    zoo.save("multilabel_cnn", net, sample, "image", ["logits"], 17,
             "multi-label CNN (digits: even, >4, has a loop), raw logits", metrics)
    zoo.save("multilabel_cnn_decision", MultilabelDecision(net, thr), sample, "image",
             ["labels"], 17, "multi-label CNN, Sigmoid -> Greater(per-label thresholds)",
             metrics)


# ------------------------------------------------------------------------------------------
# Ordinal: diabetes progression binned into 5 ordered classes; CORAL and CORN heads.
# ------------------------------------------------------------------------------------------

class CoralMLP(nn.Module):
    """CORAL (Cao et al.): one shared weight vector, K-1 ordered biases."""

    def __init__(self, features, classes):
        super().__init__()
        self.fc1 = nn.Linear(features, 16)
        self.shared = nn.Linear(16, 1, bias=False)
        self.biases = nn.Parameter(torch.linspace(1.0, -1.0, classes - 1))

    def forward(self, x):
        return self.shared(torch.relu(self.fc1(x))) + self.biases


class CornMLP(nn.Module):
    """CORN (Shi et al.): K-1 independent logits, each trained conditionally."""

    def __init__(self, features, classes):
        super().__init__()
        self.fc1 = nn.Linear(features, 16)
        self.fc2 = nn.Linear(16, classes - 1)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def coral_rank(logits):
    # coral-pytorch's proba_to_label: count of P(y > k) > 0.5.
    return (torch.sigmoid(logits) > 0.5).sum(1)


def corn_rank(logits):
    # coral-pytorch's corn_label_from_logits, with the cumulative product unrolled because
    # torch.onnx cannot export torch.cumprod.
    p = torch.sigmoid(logits)
    columns = [p[:, 0]]
    for k in range(1, logits.shape[1]):
        columns.append(columns[-1] * p[:, k])
    return (torch.stack(columns, 1) > 0.5).sum(1)


class RankHead(nn.Module):
    def __init__(self, net, rank):
        super().__init__()
        self.net = net
        self.rank = rank

    def forward(self, x):
        return self.rank(self.net(x))


def coral_loss(logits, y):
    levels = (y[:, None] > torch.arange(logits.shape[1])[None, :]).float()
    return F.binary_cross_entropy_with_logits(logits, levels)


def corn_loss(logits, y):
    # Task k learns P(y > k | y > k-1) on the rows with y > k-1.
    total, count = 0.0, 0
    for k in range(logits.shape[1]):
        rows = y > k - 1
        if rows.sum() == 0:
            continue
        target = (y[rows] > k).float()
        total = total + F.binary_cross_entropy_with_logits(logits[rows, k], target,
                                                           reduction="sum")
        count += int(rows.sum())
    return total / max(count, 1)


def ordinal(zoo):
    data = datasets.load_diabetes()
    x_tr, x_te, t_tr, t_te = train_test_split(data.data, data.target, test_size=0.3,
                                              random_state=SEED)
    # Quantile bins of the training targets: K ordered classes of disease progression.
    edges = np.quantile(t_tr, np.linspace(0, 1, ORDINAL_CLASSES + 1)[1:-1])
    y_tr, y_te = np.digitize(t_tr, edges), np.digitize(t_te, edges)
    mean, std = x_tr.mean(0), x_tr.std(0)
    x_tr, x_te = to_tensor((x_tr - mean) / std), to_tensor((x_te - mean) / std)
    y_tr, y_te = to_tensor(y_tr, torch.int64), to_tensor(y_te, torch.int64)
    sample = x_te[:SAMPLE_ROWS]
    bins = ", ".join(f"{e:g}" for e in edges)
    for name, cls, loss, rank, opsets in (("coral_mlp", CoralMLP, coral_loss, coral_rank, 14),
                                          ("corn_mlp", CornMLP, corn_loss, corn_rank, 15)):
        reseed(4 if name == "coral_mlp" else 5)
        net = cls(x_tr.shape[1], ORDINAL_CLASSES)
        train(net, loss, x_tr, y_tr, epochs=15, lr=1e-2, batch=32)
        with torch.no_grad():
            pred = rank(net(x_te))
        acc = (pred == y_te).float().mean().item()
        mae = (pred - y_te).abs().float().mean().item()
        metrics = (f"accuracy {acc:.3f}, mean absolute error {mae:.3f} classes on "
                   f"{len(y_te)} held-out rows (chance accuracy 0.2)")
        label = name.split("_")[0].upper()
        zoo.save(name, net, sample, "features", ["logits"], opsets,
                 f"ordinal {label}, 5 classes (diabetes progression bins at {bins}), "
                 "4 raw logits", metrics)
        zoo.save(name + "_rank", RankHead(net, rank), sample, "features", ["rank"], opsets,
                 f"ordinal {label}, rank computed in the graph", metrics)


# ------------------------------------------------------------------------------------------
# Conv autoencoder on the digit images: Conv stride 2 down, ConvTranspose stride 2 up.
# ------------------------------------------------------------------------------------------

class ConvAutoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)     # 8x8 -> 4x4
        self.enc2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)    # 4x4 -> 2x2
        self.dec1 = nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)
        self.dec2 = nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1)

    def forward(self, x):
        h = torch.relu(self.enc2(torch.relu(self.enc1(x / 16.0))))
        return torch.sigmoid(self.dec2(torch.relu(self.dec1(h))))


def autoencoder(zoo):
    reseed(6)
    x_tr, x_te, _, _ = digits_split()
    x_tr = to_tensor(x_tr).reshape(-1, 1, 8, 8)
    x_te = to_tensor(x_te).reshape(-1, 1, 8, 8)
    net = ConvAutoencoder()
    train(net, lambda out, x: F.mse_loss(out, x / 16.0), x_tr, x_tr, epochs=40, lr=1e-2)
    with torch.no_grad():
        mse = F.mse_loss(net(x_te), x_te / 16.0).item()
    baseline = F.mse_loss((x_tr / 16.0).mean(0, keepdim=True).expand_as(x_te),
                          x_te / 16.0).item()
    metrics = (f"reconstruction MSE {mse:.4f} on {len(x_te)} held-out images "
               f"(mean image: {baseline:.4f}); pixels scaled to [0, 1]")
    zoo.save("conv_autoencoder", net, x_te[:SAMPLE_ROWS], "image", ["reconstruction"], 16,
             "conv autoencoder (digits), ConvTranspose stride 2, padding 1, output_padding 1",
             metrics)


def main():
    args = sys.argv[1:]
    torchscript = "--torchscript" in args
    args = [a for a in args if a != "--torchscript"]
    if torchscript and not args:
        sys.exit("usage: export.py --torchscript OUTDIR (not into models/: .pt files are large)")
    outdir = args[0] if args else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(outdir, exist_ok=True)
    zoo = Zoo(outdir, torchscript)
    binary(zoo)
    multiclass(zoo)
    multilabel(zoo)
    ordinal(zoo)
    autoencoder(zoo)
    print("\n| model | task | input | outputs | opset | held-out result |")
    print("|---|---|---|---|---|---|")
    for row in zoo.readme_rows:
        print("| " + " | ".join(str(c) for c in row) + " |")


if __name__ == "__main__":
    main()
