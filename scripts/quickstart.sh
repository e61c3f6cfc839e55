#!/bin/bash
# Quick start: install what is missing, build ember, and score the bundled breast-cancer
# sample rows with the bundled binary classifier (logits -> decisions with --head binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release >/dev/null
fi
ninja -C build >/dev/null
build/tools/ember info models/binary_mlp.onnx
echo
echo "== ember score models/binary_mlp.onnx --input models/data/breast_cancer.csv --head binary"
build/tools/ember score models/binary_mlp.onnx --input models/data/breast_cancer.csv \
  --output - --head binary | head -n 11
