#!/bin/bash
# Installs the build into a temporary prefix, then builds examples/threads.c against it with
# pkg-config (shared and static) and runs it on MODEL from several threads.
# Usage: tests/install_test.sh BUILD_DIR MODEL
set -euo pipefail
build="$1"
model="$2"
src="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp" --quiet >/dev/null
pc="$(dirname "$(find "$tmp" -name ember.pc | head -1)")"
export PKG_CONFIG_PATH="$pc" PKG_CONFIG_SYSROOT_DIR="$tmp"
libdir="$(dirname "$pc")"
test -f "$libdir/libember.a" || { echo "static library not installed"; exit 1; }
test -f "$(find "$tmp" -name ember.h | head -1)" || { echo "header not installed"; exit 1; }
test -x "$(find "$tmp" -name ember -type f | head -1)" || { echo "ember binary not installed"; exit 1; }
cc -std=c11 -Wall -Wextra -Werror "$src/examples/threads.c" $(pkg-config --cflags --libs ember) \
   -lpthread -o "$tmp/threads_shared"
LD_LIBRARY_PATH="$libdir" "$tmp/threads_shared" "$model" 8
cc -std=c11 -Wall -Wextra -Werror "$src/examples/threads.c" $(pkg-config --cflags ember) \
   "$libdir/libember.a" $(pkg-config --libs-only-other --static ember) \
   $(pkg-config --static --libs-only-l ember | sed 's/-lember//') -lpthread -o "$tmp/threads_static"
"$tmp/threads_static" "$model" 4
echo "install test passed"
