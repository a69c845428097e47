#!/usr/bin/env bash
# Shared set-up of demo.sh and test.sh: install what is missing, configure
# once, build incrementally. Safe to re-run: with everything present it does
# no installs and an incremental build.
#
# Environment:
#   NORA_BUILD_DIR   build directory (default: build)
#   NORA_CMAKE_ARGS  extra arguments for the first cmake configure
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${NORA_BUILD_DIR:-$ROOT/build}"
LLVM_PREFIX=/usr/lib/llvm-22

log() { printf '==> %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
fi

# --- Debian packages --------------------------------------------------------
APT_PACKAGES=(
  cmake ninja-build ccache
  llvm-22-dev llvm-22-tools mlir-22-tools libmlir-22-dev
  clang-22 lld-22 libomp-22-dev libclang-rt-22-dev
  libgtest-dev
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: all present"
fi

# --- Python packages (the numpy reference and integration tests) -------------
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import numpy" >/dev/null 2>&1; then
  log "installing Python packages: numpy"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check numpy
else
  log "Python packages: all present"
fi

# --- Configure (once) and build (incremental) -------------------------------
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  log "configuring $BUILD_DIR"
  compilers=()
  if command -v clang++-22 >/dev/null 2>&1; then
    compilers=(-DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22)
  fi
  # shellcheck disable=SC2086
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja \
    -DNORA_PYTHON="$("$PYTHON" -c 'import sys; print(sys.executable)')" \
    -DCMAKE_BUILD_TYPE=Release \
    -DLLVM_EXTERNAL_LIT="$LLVM_PREFIX/bin/lit" \
    "${compilers[@]}" ${NORA_CMAKE_ARGS:-} >/dev/null
fi
log "building (ninja -C $BUILD_DIR)"
ninja -C "$BUILD_DIR"
