#!/usr/bin/env bash
# Builds nora, puts the compiled library (libNoraCAPI.so) into the Python
# package and installs it with pip:
#
#   scripts/install-python.sh [pip install arguments...]
#
# e.g. `scripts/install-python.sh --user` or, in a virtual environment,
# `PYTHON=.venv/bin/python scripts/install-python.sh`. The library links
# Debian's libMLIR.so (LLVM 22), which must stay installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
"$ROOT/scripts/setup.sh"
mkdir -p "$ROOT/python/nora/_lib"
cp "$ROOT/build/lib/libNoraCAPI.so" "$ROOT/python/nora/_lib/"
"$PYTHON" -m pip install --disable-pip-version-check "$@" "$ROOT/python"
