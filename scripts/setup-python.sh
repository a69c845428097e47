#!/usr/bin/env bash
# The Python environment of the package tests (python/tests): a virtual
# environment with torch 2.x, numpy, pytest and matplotlib (for the examples)
# from PyPI, made once and
# reused (it is about 5 GiB: torch's PyPI wheel brings the CUDA libraries).
# Prints the environment's python on stdout.
#
# Environment: NORA_VENV (default: ~/.cache/nora/venv).
set -euo pipefail

VENV="${NORA_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/nora/venv}"
PYTHON_BASE="${PYTHON:-python3}"
log() { printf '==> %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating the Python environment $VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON_BASE" -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -c "import torch, numpy, pytest, matplotlib" \
    >/dev/null 2>&1; then
  log "installing torch, numpy, pytest and matplotlib into $VENV (once)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "torch>=2.4" numpy pytest matplotlib >&2
fi
echo "$VENV/bin/python"
