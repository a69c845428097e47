#!/usr/bin/env bash
# Installs what is missing, builds, and runs the main job on an example step:
# lower a Nora step (examples/nora_step.mlir) through the nora passes,
# printing the IR after each stage (CPU panels and LLVM, the GPU kernel, its
# PTX and artifact), then run it on the CPU JIT (fused and op by op) and
# compare with the f64 numpy reference.
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

stage "after --nora-fuse-wgrad-epilogue (one fused step: matmul + optimizer)"
"$NORA_OPT" "$EXAMPLE" --nora-decompose --nora-fuse-wgrad-epilogue

stage "after --nora-fused-step-to-panels (row panels in parallel; first 40 lines)"
"$NORA_OPT" "$EXAMPLE" --nora-decompose --nora-fuse-wgrad-epilogue \
  --nora-fused-step-to-panels | head -40

stage "after --nora-cpu-pipeline (LLVM dialect: functions and calls)"
"$NORA_OPT" "$EXAMPLE" --nora-cpu-pipeline |
  grep -E "llvm.func|omp.parallel|llvm.call @nora" | cut -c1-110 || true

stage "after --nora-fused-step-to-gpu (one persistent kernel, one launch; host side)"
"$NORA_OPT" "$EXAMPLE" --nora-decompose --nora-fuse-wgrad-epilogue \
  --nora-fused-step-to-gpu --cse | sed -n '/func.func/,/^  }/p' | cut -c1-160

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if command -v ptxas >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/ptxas ]; then
  export PATH="$PATH:/usr/local/cuda/bin"
  stage "nora-compile: the GPU artifact for sm_90a (PTX excerpt: the row-block sync)"
  "$BUILD_DIR/bin/nora-compile" "$EXAMPLE" --chip=sm_90a \
    --emit-ptx="$work/step.ptx" -o "$work/step.nora"
  grep -E "\.entry|fence\.acq_rel|atom\.|ld\.acquire|bar\.sync" \
    "$work/step.ptx" | sort | uniq -c | sort -rn | head -8
  "$BUILD_DIR/bin/nora-exec" "$work/step.nora" --print-plan
else
  stage "nora-compile: skipped (no ptxas: the CUDA toolkit is not installed)"
fi

stage "run: nora-run on the CPU JIT vs the f64 numpy reference (1024x1024, T=64)"
PYTHON="${PYTHON:-python3}"
"$PYTHON" "$ROOT/scripts/demo_step.py" "$BUILD_DIR/bin/nora-run"
