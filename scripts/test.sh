#!/bin/bash
# The whole test suite: installs what is missing, builds from scratch with -Werror, runs every
# test (unit, conformance, models, CLI). Usage: scripts/test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
build="${1:-build-test}"
rm -rf "$build"
meson setup "$build" -Dwerror=true --buildtype=release >/dev/null
ninja -C "$build"
meson test -C "$build" --print-errorlogs --num-processes 2
