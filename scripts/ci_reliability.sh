#!/bin/bash
# CI reliability gate (called from .ci/run): sanitizer builds of the test suite (ASan+UBSan,
# TSan concurrency, valgrind catalogue) and a bounded fuzz run of every libFuzzer target.
# Exits non-zero on any failure. Usage: scripts/ci_reliability.sh [FUZZ_SECONDS_PER_TARGET]
# (default 60). Build folders are made from scratch, so stale objects cannot hide a problem.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
start=$(date +%s)
scripts/deps.sh
rm -rf build-asan build-tsan build-valgrind build-fuzz
status=0
step() { # name command...
  local name="$1" t0
  shift
  t0=$(date +%s)
  echo "=== ci_reliability: $name"
  if "$@"; then
    echo "=== ci_reliability: $name passed in $(( $(date +%s) - t0 )) s"
  else
    echo "=== ci_reliability: $name FAILED after $(( $(date +%s) - t0 )) s"
    status=1
  fi
}
step "ASan+UBSan test suite" scripts/sanitize.sh asan
step "TSan concurrency" scripts/sanitize.sh tsan
step "valgrind catalogue" scripts/sanitize.sh valgrind
# A fixed seed and no kept corpus: every CI run tries the same inputs (a red CI is a
# reproducible finding, not luck); longer exploratory runs are `scripts/fuzz.sh SECONDS`.
step "fuzzing, $seconds s per target" env FUZZ_SEED=1 FUZZ_FRESH=1 scripts/fuzz.sh "$seconds"
echo "=== ci_reliability: total $(( $(date +%s) - start )) s, $([ $status -eq 0 ] && echo passed || echo FAILED)"
exit $status
