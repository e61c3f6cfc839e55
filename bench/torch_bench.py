#!/usr/bin/python3
"""PyTorch side of bench/compare: times a TorchScript module on random inputs.
usage: torch_bench.py MODEL.pt SHAPES_JSON THREADS ITERS WARMUP  -> one JSON line"""
import json
import resource
import sys
import time

import torch

path, shapes_json, threads, iters, warmup = sys.argv[1:6]
torch.set_num_threads(int(threads))
t0 = time.perf_counter()
model = torch.jit.load(path)
model.eval()
create_ms = (time.perf_counter() - t0) * 1e3
gen = torch.Generator().manual_seed(0)
inputs = []
for name, info in json.loads(shapes_json).items():
    if info["type"] == "float32":
        inputs.append(torch.rand(*info["dims"], generator=gen) * 2 - 1)
    else:
        inputs.append(torch.zeros(*info["dims"], dtype=torch.int64))
with torch.inference_mode():
    t = time.perf_counter()
    model(*inputs)
    first_ms = (time.perf_counter() - t) * 1e3
    for _ in range(int(warmup)):
        model(*inputs)
    lat = []
    for _ in range(int(iters)):
        t = time.perf_counter()
        model(*inputs)
        lat.append((time.perf_counter() - t) * 1e3)
lat.sort()


def pct(p):
    idx = p / 100 * (len(lat) - 1)
    lo, hi = int(idx), min(int(idx) + 1, len(lat) - 1)
    return lat[lo] + (lat[hi] - lat[lo]) * (idx - lo)


def peak_rss_kb():
    """VmHWM: ru_maxrss would include the driver's peak (Linux keeps it across fork + exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


print(json.dumps({"session_create_ms": create_ms, "first_run_ms": first_ms, "median_ms": pct(50),
                  "p10_ms": pct(10), "p90_ms": pct(90), "p99_ms": pct(99),
                  "peak_rss_kb": peak_rss_kb()}))
