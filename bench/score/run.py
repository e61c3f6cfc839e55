#!/usr/bin/python3
"""End-to-end batch scoring benchmark (not a timed test): a 1M-row CSV scored by the binary MLP of
models/ (30 features -> one logit), the way users do it:

  ember score       `ember score models/binary_mlp.onnx --input data.csv --output out.csv`
  Node.js + ORT     readline over the CSV, batches of 1024 rows into onnxruntime-node 1.30
  pandas + PyTorch  pandas.read_csv, the same network in torch (weights from the ONNX file),
                    DataFrame.to_csv

Reports wall time, rows/s, input MB/s, peak RSS, the ratios, and ember's peak RSS on 1M and 10M
rows (10M rows streamed through stdin, nothing written to disk). Outputs are checked against each
other. Usage:

  /usr/bin/python3 bench/score/run.py [--build build] [--rows 1000000] [--skip-10m]

onnxruntime-node is installed (npm --ignore-scripts) under BUILD/bench/score/node, the data and
outputs live in BUILD/bench/score: nothing is written into the source tree.
"""
import argparse
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def timed(cmd, env=None, repeat=1):
    """Run cmd under /usr/bin/time `repeat` times; returns the best (wall seconds, CPU seconds,
    peak RSS in MiB). CPU time (user + system) is what the job costs whatever else runs on
    the machine; wall time is what a user waits on this machine."""
    best = None
    for _ in range(repeat):
        t = time.time()
        p = subprocess.run(["/usr/bin/time", "-f", "%e %M %U %S"] + cmd, env=env,
                           stderr=subprocess.PIPE, text=True)
        wall = time.time() - t
        if p.returncode != 0:
            sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr}")
        last = p.stderr.strip().splitlines()[-1].split()
        run = (wall, float(last[2]) + float(last[3]), int(last[1]) / 1024.0)
        if best is None or run[0] < best[0]:
            best = run
    return best


def make_data(path, rows, zoo):
    """Rows like the breast-cancer inputs: held-out rows resampled with 5% noise, 6 digits."""
    x = np.load(os.path.join(zoo, "binary_mlp.input.npy")).astype(np.float64)
    rng = np.random.default_rng(42)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(",".join(f"f{i}" for i in range(x.shape[1])) + "\n")
        chunk = 100000
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            pick = x[rng.integers(0, len(x), n)] * (1 + 0.05 * rng.standard_normal((n, x.shape[1])))
            np.savetxt(f, pick, fmt="%.6g", delimiter=",")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--rows", type=int, default=1000000)
    ap.add_argument("--skip-10m", action="store_true")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    ember = os.path.join(args.build, "tools", "ember")
    zoo = os.path.join(ROOT, "models")
    model = os.path.join(zoo, "binary_mlp.onnx")
    for p in (ember, model):
        if not os.path.exists(p):
            sys.exit(f"{p} not found (build ember; models/ comes with the model zoo)")
    work = os.path.join(args.build, "bench", "score")
    os.makedirs(work, exist_ok=True)
    data = os.path.join(work, f"binary_{args.rows}.csv")
    if not os.path.exists(data):
        print(f"writing {data} ...", flush=True)
        make_data(data, args.rows, zoo)
    mb = os.path.getsize(data) / 1e6
    rows = args.rows
    results = []

    print(f"{rows:,} rows, {mb:.0f} MB of CSV; best of {args.repeat} runs for ember, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'':42s} {'wall':>7s}  {'rows/s':>10s}  {'MB/s':>6s}  {'CPU s':>6s}  "
          f"{'MB/CPU-s':>8s}  {'peak RSS':>9s}")

    def report(name, run):
        secs, cpu, rss = run
        results.append((name, secs, cpu, rss))
        print(f"{name:42s} {secs:6.2f}s  {rows / secs:10,.0f}  {mb / secs:6.1f}  {cpu:6.2f}  "
              f"{mb / cpu:8.1f}  {rss:5.1f} MiB", flush=True)

    out = os.path.join(work, "ember.csv")
    report("ember score", timed([ember, "score", model, "--input", data, "--output", out,
                                 "--quiet"], repeat=args.repeat))
    report("ember score --threads 1", timed([ember, "score", model, "--input", data, "--output",
                                             os.path.join(work, "ember1.csv"), "--quiet",
                                             "--threads", "1"], repeat=args.repeat))
    report("ember score --head binary, to /dev/null",
           timed([ember, "score", model, "--input", data, "--output", "/dev/null",
                  "--output-format", "csv", "--quiet", "--head", "binary"], repeat=args.repeat))

    if not args.skip_peers:
        node_dir = os.path.join(work, "node")
        if not os.path.exists(os.path.join(node_dir, "node_modules", "onnxruntime-node")):
            os.makedirs(node_dir, exist_ok=True)
            subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund",
                            "--prefix", node_dir, "onnxruntime-node@1.30.0"], check=True)
        env = dict(os.environ, NODE_PATH=os.path.join(node_dir, "node_modules"))
        report("Node.js + onnxruntime-node 1.30",
               timed(["node", os.path.join(HERE, "score_ort.js"), model, data,
                      os.path.join(work, "ort.csv"), "1024"], env=env))
        report("pandas + PyTorch", timed(["/usr/bin/python3", os.path.join(HERE, "score_pandas.py"),
                                          model, data, os.path.join(work, "pandas.csv")]))
        # the three agree
        e = np.loadtxt(out, delimiter=",", skiprows=1, dtype=np.float64)
        for peer in ("ort.csv", "pandas.csv"):
            p = np.loadtxt(os.path.join(work, peer), delimiter=",", skiprows=1, dtype=np.float64)
            diff = np.abs(e - p).max()
            print(f"max |ember - {peer[:-4]}| = {diff:.3g}")
            if not diff < 1e-3:
                sys.exit("outputs disagree")
        base = results[0]
        print()
        for name, secs, cpu, _ in results[3:]:
            print(f"ember score vs {name}: {secs / base[1]:.1f}x less wall time, "
                  f"{cpu / base[2]:.1f}x less CPU time")

    if not args.skip_10m:
        # 10x the rows through a pipe: memory must not grow with the input
        cmd = (f"for i in $(seq 10); do tail -n +2 {data}; done | "
               f"/usr/bin/time -f '%e %M %U %S' {ember} score {model} --input - "
               f"--input-format csv --output /dev/null --output-format csv --quiet --no-header")
        p = subprocess.run(["/bin/bash", "-c", cmd], stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            sys.exit(p.stderr)
        f = p.stderr.split()[-4:]
        secs, rss, cpu = float(f[0]), int(f[1]) / 1024.0, float(f[2]) + float(f[3])
        print(f"{'ember score, 10x the rows via stdin':42s} {secs:6.2f}s  "
              f"{10 * rows / secs:10,.0f}  {10 * mb / secs:6.1f}  {cpu:6.2f}  "
              f"{10 * mb / cpu:8.1f}  {rss:5.1f} MiB")


if __name__ == "__main__":
    main()
