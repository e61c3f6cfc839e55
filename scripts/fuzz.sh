#!/bin/bash
# Runs every libFuzzer target (fuzz/) for a bounded time: scripts/fuzz.sh SECONDS [TARGET...]
# Builds them with clang (-Dfuzz=true) in build-fuzz/, makes seed corpora from models/, the
# ONNX backend node cases (tests/conformance/generate.py) and the test fixtures, and keeps the
# corpus that grows across runs in build-fuzz/corpus/TARGET. Any crash, leak, timeout or OOM
# is a failure: the input is copied into tests/reliability/regressions/TARGET/, which the
# normal test suite replays in every build (meson test --suite reliability).
# FUZZ_SEED=N fixes libFuzzer's random seed: with the seed corpora (regenerated, deterministic)
# and no corpus kept from earlier runs (FUZZ_FRESH=1), a run tries the same inputs in the same
# order on every machine, as far as its time allows. .ci/run does that; by hand, leave both
# unset to explore further from the grown corpus.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
seconds="${1:-60}"
shift || true
build="${FUZZ_BUILD:-build-fuzz}"
python=/usr/bin/python3

if [ ! -f "$build/build.ninja" ]; then
  CC=clang meson setup "$build" -Dfuzz=true -Dtests=false --buildtype=debugoptimized >/dev/null ||
    { echo "fuzz.sh: meson setup failed"; exit 1; }
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  # every fuzz_NAME the build defines (fuzz/meson.build: fuzz_entry_names)
  mapfile -t targets < <(sed -n "s/^fuzz_entry_names = \[\(.*\)\]/\1/p" fuzz/meson.build |
                         tr -d "' " | tr ',' '\n')
fi
ninja -C "$build" $(printf 'fuzz/fuzz_%s ' "${targets[@]}") >/dev/null ||
  { echo "fuzz.sh: build failed"; exit 1; }

# ---- seed corpora (regenerated every time, never committed) ----
seeds="$build/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
cases="$build/conformance-cases"
if [ ! -d "$cases/node" ]; then
  $python tests/conformance/generate.py "$cases" >/dev/null || echo "fuzz.sh: no conformance seeds"
fi
if [ ! -d "$build/fixtures" ]; then
  $python tests/fixtures/make_fixtures.py "$build/fixtures" >/dev/null || echo "fuzz.sh: no fixture seeds"
fi
small() { [ -f "$1" ] && [ "$(stat -c %s "$1")" -le 65536 ]; } # keeps -max_len small
seed() { # target file...
  local t="$1"
  shift
  mkdir -p "$seeds/$t"
  for f in "$@"; do
    if small "$f"; then cp "$f" "$seeds/$t/$(sha1sum "$f" | cut -c1-16)"; fi
  done
}
for t in "${targets[@]}"; do
  case "$t" in
    model)
      seed model models/*.onnx "$build"/fixtures/*.onnx "$build"/fixtures/*/*.onnx
      for d in "$cases"/*/*/; do seed model "$d/model.onnx"; done
      ;;
    tensor)
      seed tensor models/*.npy
      for d in "$cases"/node/*/; do seed tensor "$d"/test_data_set_0/*.pb; done
      ;;
    *)
      # other targets bring their own seeds: fuzz/seeds_TARGET.py OUTDIR
      if [ -f "fuzz/seeds_$t.py" ]; then $python "fuzz/seeds_$t.py" "$seeds/$t"; fi
      mkdir -p "$seeds/$t"
      ;;
  esac
done

# Dictionaries: operator and attribute names, so that mutations turn one operator into another.
{
  sed -n 's/^{"\([A-Za-z0-9]*\)".*/"\1"/p' runtime/onnx_versions.inc
  for a in axis axes perm pads strides kernel_shape dilations group keepdims to value mode alpha \
           beta epsilon transA transB auto_pad output_padding output_shape direction body \
           then_branch else_branch num_scan_inputs split batch_dims exclusive reverse \
           activation activation_params pool pool_kernel_shape pool_strides pool_pads \
           expand_activation dw_activation; do
    echo "\"$a\""
  done
  # ember's own operators (domain ai.ember), which a model file may use too
  for op in ai.ember FusedConv FusedGemm FusedMatMul FusedMBConv FusedAttention \
            AddLayerNormalization; do
    echo "\"$op\""
  done
} >"$build/model.dict"

# ---- runs ----
failed=0
summary=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  crashes="$build/crashes/$t"
  log="$build/fuzz_$t.log"
  [ "${FUZZ_FRESH:-0}" = 1 ] && rm -rf "$corpus"
  mkdir -p "$corpus" "$crashes"
  rm -f "$crashes"/*
  start=$(date +%s)
  # -timeout: one input may take 25 s; -rss_limit_mb: the process may use 2 GB (ember's own
  # limits in fuzz/entry.c keep a model far below both).
  flags=()
  [ "$t" = model ] && flags+=(-dict="$build/model.dict")
  [ -n "${FUZZ_SEED:-}" ] && flags+=(-seed="$FUZZ_SEED")
  "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2048 "${flags[@]}" \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" "$seeds/$t" >"$log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  n_corpus=$(ls "$corpus" | wc -l)
  # crash-, leak-, timeout-, oom- files are failures; slow-unit- files (over 10 s) are reported
  shopt -s nullglob
  found=("$crashes"/crash-* "$crashes"/leak-* "$crashes"/timeout-* "$crashes"/oom-*)
  slow=("$crashes"/slow-unit-*)
  shopt -u nullglob
  [ ${#slow[@]} -gt 0 ] && echo "fuzz.sh: $t: ${#slow[@]} slow input(s) in $crashes (not failures)"
  if [ $rc -ne 0 ] || [ ${#found[@]} -gt 0 ]; then
    failed=1
    mkdir -p "tests/reliability/regressions/$t"
    for f in "${found[@]}"; do
      [ -e "$f" ] || continue
      dest="tests/reliability/regressions/$t/$(basename "$f")"
      cp "$f" "$dest"
      echo "fuzz.sh: $t: $(basename "$f") -> $dest"
    done
    echo "fuzz.sh: $t FAILED (exit $rc); the log is $log:"
    grep -E 'ERROR|SUMMARY|invariant|==[0-9]+==' "$log" | head -20
  fi
  summary+=("$t: ${runs:-?} inputs in $(( $(date +%s) - start )) s, $cov, corpus $n_corpus files, exit $rc")
done
printf 'fuzz.sh: %s\n' "${summary[@]}"
if [ $failed -ne 0 ]; then
  echo "fuzz.sh: FAILED: crashing inputs were copied into tests/reliability/regressions/"
  exit 1
fi
echo "fuzz.sh: no crashes"
