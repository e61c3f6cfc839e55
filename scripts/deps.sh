#!/bin/bash
# Installs the Debian 12 packages ember needs to build and test (only the missing ones).
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev libopenblas-dev libcriterion-dev
  python3-onnx python3-numpy python3-torch
  valgrind clang libclang-rt-14-dev parallel
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi
