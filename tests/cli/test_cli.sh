#!/bin/bash
# CLI behaviour: exit codes, one-line errors, info and run on a bundled model.
# Usage: test_cli.sh EMBER_BINARY FIXTURES_DIR
set -uo pipefail
ember="$1"
fixtures="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

check() { # name expected_code command...
  local name="$1" want="$2"
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL $name: exit $got, expected $want"; cat "$tmp/err"; fi
}
expect_err() { # name pattern: the last command's stderr is one line matching pattern
  local name="$1" pattern="$2"
  if [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q -- "$pattern" "$tmp/err"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL $name: stderr does not match '$pattern':"; cat "$tmp/err"; fi
}
expect_out() {
  local name="$1" pattern="$2"
  if grep -q -- "$pattern" "$tmp/out"; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL $name: stdout lacks '$pattern':"; cat "$tmp/out"; fi
}

check help 0 "$ember" --help
expect_out help "commands:"
check version 0 "$ember" version
expect_out version "ember 0"
check unknown_command 2 "$ember" frobnicate
expect_err unknown_command "unknown command 'frobnicate'"
for sub in info run test score bench; do
  check "${sub}_help" 0 "$ember" "$sub" --help
  expect_out "${sub}_help" "usage: ember $sub"
done
check info_missing_arg 2 "$ember" info
expect_err info_missing_arg "missing MODEL"
check info_garbage 1 "$ember" info "$fixtures/garbage.onnx"
expect_err info_garbage "garbage.onnx: not an ONNX model"
check info_no_file 1 "$ember" info "$tmp/none.onnx"
expect_err info_no_file "cannot open"
check info_unsupported 1 "$ember" info "$fixtures/unsupported.onnx"
expect_err info_unsupported "3 unsupported operators: FooBar"
check info_cycle 1 "$ember" info "$fixtures/cycle.onnx"
check run_bad_option 2 "$ember" run "$fixtures/garbage.onnx" --frob
expect_err run_bad_option "unknown option '--frob'"

model="$root/models/binary_mlp.onnx"
input="$root/models/binary_mlp.input.npy"
if [ -f "$model" ]; then
  check info_model 0 "$ember" info "$model"
  expect_out info_model "parameters:"
  expect_out info_model "batch"
  check info_optimized 0 "$ember" info --optimized "$model"
  expect_out info_optimized "optimized graph:"
  check run_model 0 "$ember" run "$model" -i "$input" -o "$tmp"
  ls "$tmp"/*.npy >/dev/null 2>&1 && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL run_model: no output file"; }
  check run_wrong_input 2 "$ember" run "$model" -i "$fixtures/garbage.onnx"
  check run_wrong_name 1 "$ember" run "$model" -i nope="$input"
  expect_err run_wrong_name "no input 'nope'"
  check bench_model 0 "$ember" bench "$model" --batch 4 --iters 5 --warmup 1 --json
  expect_out bench_model '"median_ms"'
  check bench_no_tiling 0 "$ember" bench "$model" --batch 4 --iters 5 --warmup 1 --no-batch-tiling
  check run_no_tiling 0 "$ember" run "$model" -i "$input" --no-batch-tiling
else
  fail=$((fail + 1)); echo "FAIL: $model is missing"
fi

# --head on the zoo's raw-logits models (the session applies the fused head)
zoo="$root/models"
check run_head 0 "$ember" run "$zoo/multiclass_mlp.onnx" -i "$zoo/multiclass_mlp.input.npy" \
  --head multiclass --probabilities -o "$tmp"
expect_out run_head "^logits_decision: int64\[32\]"
expect_out run_head "^logits_probabilities: float32\[32, 10\]"
cmp -s <(/usr/bin/python3 -c "import numpy as np, sys; sys.stdout.buffer.write(np.load('$tmp/logits_decision.npy').tobytes())") \
  <(/usr/bin/python3 -c "import numpy as np, sys; sys.stdout.buffer.write(np.load('$zoo/multiclass_mlp_decision.expected_label.npy').tobytes())") \
  && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL run_head: labels differ from PyTorch's"; }
check run_head_output 0 "$ember" run "$zoo/coral_mlp.onnx" -i "$zoo/coral_mlp.input.npy" \
  --head logits=ordinal:corn:0.7
expect_out run_head_output "^logits_decision: int64\[32\]"
check run_head_misfit 2 "$ember" run "$zoo/binary_mlp.onnx" -i "$zoo/binary_mlp.input.npy" \
  --head multiclass
expect_err run_head_misfit "--head multiclass on output 'logit' needs at least 2 logits per row"
check run_head_which 2 "$ember" run "$zoo/multiclass_mlp_decision.onnx" \
  -i "$zoo/multiclass_mlp.input.npy" --head binary
expect_err run_head_which "the model has 2 outputs: say which holds the logits"
check run_head_bad 2 "$ember" run "$zoo/binary_mlp.onnx" -i "$zoo/binary_mlp.input.npy" --head foo
expect_err run_head_bad "--head 'foo': expected binary"
check run_probabilities_alone 2 "$ember" run "$zoo/binary_mlp.onnx" --probabilities
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
