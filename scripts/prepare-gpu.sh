#!/usr/bin/env bash
# Compile here, run there: prepares, on a machine with LLVM/MLIR, everything
# the GPU machine needs to test the fused-step kernel, in one folder small
# enough to travel (the device tool carries at most 64 MiB):
#
#   gpu-bundle/cases/GROUP/gpu-CHIP/   for every integration case that is a
#       fused optimizer step: CASE.mlir, its .npy inputs and CASE.nora (the
#       artifact from nora-compile); CASE.skip for the cases that are not;
#       CASE.simt.nora (CASE.wgmma.nora, CASE.wgmma-ws.nora,
#       CASE.wgmma-pingpong.nora, CASE.wgmma-tall.nora,
#       CASE.wgmma-wide.nora) the same with the exact-f32 (the sm_90a
#       wgmma, warp-specialized wgmma, ping-pong wgmma, 256 x 128 wgmma,
#       128 x 256 wgmma) mainloop
#   gpu-bundle/bench/NAME.nora          the benchmark steps of bench/gpu
#       (NAME-simt.nora: the same with the exact-f32 mainloop;
#       NAME-wgmma.nora, NAME-wgmma-ws.nora, NAME-wgmma-ws6.nora,
#       NAME-wgmma-ws-t16.nora, NAME-wgmma-pingpong.nora,
#       NAME-wgmma-tall.nora, NAME-wgmma-tall-t32.nora,
#       NAME-wgmma-wide.nora, NAME-wgmma-wide-cluster.nora (at most 4096
#       columns),
#       NAME-cluster.nora (at most 2048 columns): the sm_90a
#       variants of
#       NAME-noprefetch.nora: scripts/gpu_steps.py's BENCH_VARIANTS, the
#       wgmma mainloop, warp-specialized rings of 4 x 64, 6 x 64 and 4 x 16
#       tokens, and the default without its L2 prefetch of W and M;
#       NAME-optim.nora: the optimizer step alone, on a given gradient;
#       NAME-wgrad.nora: the gradient alone, our GEMM)
#   gpu-bundle/cases/tf32/gpu-CHIP/     the f32 tile-edge cases, CASE.tf32.nora
#       with --allow-tf32 (and CASE.nofuse.nora in cases/tiles: --no-fuse)
#   gpu-bundle/host/                    libstep.so (the step of
#       test/Pipelines/gpu-pipeline.mlir lowered to LLVM calls into the
#       runtime) and step.nora (its artifact)
#   gpu-bundle/resources.txt            ptxas -v registers and spills
#   gpu-bundle/artifact-cache/          the Python GPU test's artifacts
#
# Then, on the GPU machine (no LLVM/MLIR needed), scripts/gpu-check.sh
# builds the runtime, runs every artifact against the float64 reference,
# twice (bitwise determinism), and under compute-sanitizer; with --bench it
# also runs bench/gpu/bench.py.
#
#   scripts/prepare-gpu.sh [CHIP]        CHIP: sm_90a (default) or sm_80
#
# Environment: NORA_GPU_BUNDLE (default: gpu-bundle in the repository).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHIP="${1:-sm_90a}"
BUNDLE="${NORA_GPU_BUNDLE:-$ROOT/gpu-bundle}"
GROUPS_FILE="$ROOT/scripts/gpu-groups.txt"

"$ROOT/scripts/setup.sh"
export PATH="$ROOT/build/bin:$PATH"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"
PYTHON="$(grep -oP '(?<=config.nora_python = ").*(?=")' \
            "$ROOT/build/test/lit.site.cfg.py")"
# mlir-translate and clang from the LLVM that nora is built against.
LLVM_BIN="$(grep -oP '(?<=config.llvm_tools_dir = lit_config.substitute\(").*(?="\))' \
              "$ROOT/build/test/lit.site.cfg.py")"

rm -rf "$BUNDLE"
mkdir -p "$BUNDLE/cases"
echo "$CHIP" > "$BUNDLE/chip"
while read -r group; do
  [ -z "$group" ] && continue
  mainloops="auto simt"
  [ "$CHIP" = sm_90a ] &&
    mainloops="auto simt wgmma wgmma-ws wgmma-pingpong wgmma-tall wgmma-wide"
  for mainloop in $mainloops; do
    printf '==> compiling the GPU cases of %s for %s (mainloop %s)\n' \
      "$group" "$CHIP" "$mainloop" >&2
    "$PYTHON" "$ROOT/test/Integration/$group.py" "$BUNDLE/cases/$group" \
      --gpu="$CHIP" --mainloop="$mainloop" --compile-only
  done
done < "$GROUPS_FILE"
# The f32 steps of the tf32 group on tf32 tensor cores (CASE.tf32.nora).
printf '==> compiling the tf32 cases for %s\n' "$CHIP" >&2
"$PYTHON" "$ROOT/test/Integration/tf32.py" "$BUNDLE/cases/tf32" \
  --gpu="$CHIP" --allow-tf32 --compile-only
# The tile-edge cases with the cluster row exchange (sm_90a,
# CASE.cluster.nora, CASE.wgmma-ws.cluster.nora, CASE.wgmma-wide.cluster.nora;
# the steps of more than 16 CTAs a row block are skipped).
if [ "$CHIP" = sm_90a ]; then
  for mainloop in auto wgmma-ws wgmma-wide; do
    printf '==> compiling the tiles cases with the cluster row exchange (mainloop %s)\n' \
      "$mainloop" >&2
    "$PYTHON" "$ROOT/test/Integration/tiles.py" "$BUNDLE/cases/tiles" \
      --gpu="$CHIP" --mainloop="$mainloop" --row-exchange=cluster --compile-only
  done
fi
# The tile-edge cases unfused: the gradient kernel, then the step's
# (CASE.nofuse.nora).
printf '==> compiling the unfused tiles cases for %s\n' "$CHIP" >&2
"$PYTHON" "$ROOT/test/Integration/tiles.py" "$BUNDLE/cases/tiles" \
  --gpu="$CHIP" --no-fuse --compile-only
# A step lowered by --nora-gpu-host-to-runtime, as a shared library on
# device pointers, beside the artifact of the same step
# (python/tests/test_gpu.py compares the two on the GPU).
mkdir -p "$BUNDLE/host"
nora-opt "$ROOT/test/Pipelines/gpu-pipeline.mlir" \
  --nora-gpu-pipeline="chip=$CHIP host=runtime" -o "$BUNDLE/host/step.mlir"
"$LLVM_BIN/mlir-translate" --mlir-to-llvmir "$BUNDLE/host/step.mlir" \
  -o "$BUNDLE/host/step.ll"
"$LLVM_BIN/clang" -shared -fPIC -w "$BUNDLE/host/step.ll" -o "$BUNDLE/host/libstep.so" \
  -L"$ROOT/build/lib" -lNoraRuntimeCAPI
rm "$BUNDLE/host/step.mlir" "$BUNDLE/host/step.ll"
nora-compile "$ROOT/test/Pipelines/gpu-pipeline.mlir" --chip="$CHIP" \
  -o "$BUNDLE/host/step.nora" >/dev/null
# The benchmark steps of bench/gpu/bench.py (bf16, the GPU issue's shapes).
mkdir -p "$BUNDLE/bench"
"$PYTHON" - "$ROOT" "$BUNDLE/bench" "$CHIP" <<'PYEOF'
import os, subprocess, sys
root, out, chip = sys.argv[1:]
sys.path.insert(0, os.path.join(root, "scripts"))
from gpu_steps import (BENCH_SHAPES, BENCH_VARIANTS, bench_name, optim_mlir,
                       step_mlir, variant_applies, wgrad_mlir)
for T, M, N in BENCH_SHAPES:
    name = bench_name(T, M, N)
    src = os.path.join(out, name + ".mlir")
    with open(src, "w") as f:
        f.write(step_mlir(name, T, M, N))
    # (d): the optimizer step alone on cuBLAS's gradient.
    optim = os.path.join(out, name + "-optim.mlir")
    with open(optim, "w") as f:
        f.write(optim_mlir(name, M, N))
    subprocess.run(["nora-compile", optim, "--chip=" + chip,
                    "-o", os.path.join(out, name + "-optim.nora")],
                   check=True)
    # (d) ours: our GEMM alone (the wgrad-only kernel), then the above.
    wgrad = os.path.join(out, name + "-wgrad.mlir")
    with open(wgrad, "w") as f:
        f.write(wgrad_mlir(name, T, M, N))
    subprocess.run(["nora-compile", wgrad, "--chip=" + chip,
                    "-o", os.path.join(out, name + "-wgrad.nora")],
                   check=True)
    variants = [("", ["--mainloop=auto"]), ("-simt", ["--mainloop=simt"])]
    variants += [("-" + suffix, flags)
                 for suffix, flags, _, sm90 in BENCH_VARIANTS
                 if (chip == "sm_90a" or not sm90) and
                 variant_applies(suffix, N)]
    for suffix, flags in variants:
        subprocess.run(["nora-compile", src, "--chip=" + chip] + flags +
                       ["-o", os.path.join(out, name + suffix + ".nora")],
                       check=True)
PYEOF
# The artifacts python/tests/test_gpu.py's optimizer test needs, in an
# artifact cache (the GPU machine has no compiler).
"$ROOT/scripts/setup-python.sh" >/dev/null 2>&1 || true
VENV_PY="${NORA_VENV:-$HOME/.cache/nora/venv}/bin/python"
if [ -x "$VENV_PY" ]; then
  NORA_ARTIFACT_CACHE="$BUNDLE/artifact-cache" "$VENV_PY" - "$CHIP" <<'PYEOF'
import sys
import torch
from nora import gpu, optim
chip = sys.argv[1]
for Opt in (optim.Nora, optim.RMNP):     # test_optimizer_on_cuda_parameters
    opt = Opt([torch.zeros(96, 80, requires_grad=True)], lr=0.02)
    group = opt.param_groups[0]
    ir = opt._gpu_step_ir(group, 96, 80, opt._scale(group, 96, 80))
    print("cached", gpu.cached_artifact(ir, "step", chip).path)
for mode in ("skip_row", "skip_step"):   # test_guarded_optimizer_on_cuda_...
    opt = optim.Nora([torch.zeros(96, 80, requires_grad=True)], lr=0.02,
                     nonfinite=mode)
    group = opt.param_groups[0]
    ir = opt._gpu_step_ir(group, 96, 80, opt._scale(group, 96, 80))
    print("cached", gpu.cached_artifact(ir, "step", chip).path)
from nora import nn                      # test_fused_linear_on_cuda
layer = nn.Linear(80, 96)
opt, group = layer.rule.optimizer, layer.rule.group
ir = opt._gpu_step_ir(group, 96, 80, opt._scale(group, 96, 80), tokens=64,
                      act="f32", acc=False, grad_scale=1.0)
print("cached", gpu.cached_artifact(ir, "step", chip).path)
PYEOF
fi
python3 "$ROOT/scripts/check-gpu-resources.py" --bin "$ROOT/build/bin" \
  --chips="$CHIP" > "$BUNDLE/resources.txt"
size=$(du -sm "$BUNDLE" | cut -f1)
printf '==> %s: %s MiB (the device tool carries at most 64 MiB)\n' \
  "$BUNDLE" "$size" >&2
if [ "$size" -ge 64 ]; then
  echo "error: the bundle is too large to travel" >&2
  exit 1
fi
