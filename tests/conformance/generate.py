#!/usr/bin/python3
"""Generate the ONNX backend test cases of ember's conformance suite.

    /usr/bin/python3 tests/conformance/generate.py OUTDIR [--stamp FILE]

Writes OUTDIR/node (the operator tests: 922 cases with onnx 1.12, opset <= 17) and
OUTDIR/simple (small model tests), each case a folder with model.onnx and
test_data_set_N/{input,output}_K.pb. The data is deterministic (onnx seeds numpy for every
case) and takes a few seconds. Generated cases are never committed.

Needs Debian's python3 with the onnx and numpy packages. onnx 1.12 still uses the numpy
aliases (np.float, np.int, ...) that numpy 1.24 removed: they are put back before import.
"""
import argparse
import os
import shutil
import sys
import tempfile

import numpy as np


def restore_numpy_aliases():
    # Only the builtin aliases onnx 1.12's test generators use; numpy >= 1.24 removed them.
    for name, builtin in [("float", float), ("int", int), ("bool", bool), ("object", object),
                          ("complex", complex), ("str", str)]:
        try:
            setattr(np, name, builtin)
        except Exception:
            pass


def count_cases(folder):
    if not os.path.isdir(folder):
        return 0
    return sum(1 for name in os.listdir(folder)
               if os.path.isfile(os.path.join(folder, name, "model.onnx")))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("outdir", help="folder to (re)create with node/ and simple/ cases")
    parser.add_argument("--stamp", help="file to write when done (for the build system)")
    args = parser.parse_args()

    restore_numpy_aliases()
    import onnx
    from onnx.backend.test import cmd_tools

    outdir = os.path.abspath(args.outdir)
    parent = os.path.dirname(outdir)
    os.makedirs(parent, exist_ok=True)
    # Generate beside the target and rename at the end, so that an interrupted run never
    # leaves a half-written case folder that looks complete.
    work = tempfile.mkdtemp(prefix=".conformance-", dir=parent)
    try:
        cmd_tools.generate_data(argparse.Namespace(output=work, op_type=None))
        # 'real' holds download links to large models, not cases.
        shutil.rmtree(os.path.join(work, "real"), ignore_errors=True)
        if os.path.exists(outdir):
            shutil.rmtree(outdir)
        os.rename(work, outdir)
    finally:
        if os.path.exists(work):
            shutil.rmtree(work)

    node = count_cases(os.path.join(outdir, "node"))
    simple = count_cases(os.path.join(outdir, "simple"))
    print(f"generated {node} node and {simple} simple cases with onnx {onnx.__version__} "
          f"into {outdir}")
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write(f"onnx {onnx.__version__}: {node} node, {simple} simple cases\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
