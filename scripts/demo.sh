#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on an example step:
# lower a Nora step (examples/nora_step.mlir) through the nora passes that
# exist and print the IR after each stage.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${NORA_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"

NORA_OPT="$BUILD_DIR/bin/nora-opt"
EXAMPLE="$ROOT/examples/nora_step.mlir"

stage() { printf '\n==== %s ====\n' "$*"; }

stage "input: $(basename "$EXAMPLE") (nora.wgrad + composite nora.nora_step)"
"$NORA_OPT" "$EXAMPLE"

stage "after --nora-decompose (primitive ops, defaults made explicit)"
"$NORA_OPT" "$EXAMPLE" --nora-decompose

stage "after --nora-decompose --canonicalize"
"$NORA_OPT" "$EXAMPLE" --nora-decompose --canonicalize

printf '\ndemo: done (fusion, the CPU JIT and the GPU path are the next issues)\n'
