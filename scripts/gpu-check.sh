#!/usr/bin/env bash
# On the GPU machine (CUDA driver, CMake, ninja, a C++ compiler, Python with
# numpy; no LLVM/MLIR): runs what scripts/prepare-gpu.sh compiled.
#
#   1. builds the LLVM-free runtime and nora-exec (scripts/build-runtime.sh);
#   2. every prepared case, for each mainloop (auto: mma.sync tensor cores
#      for the bf16/f16 steps; simt: exact f32; on sm_90a also wgmma and wgmma-ws): nora-exec on the artifact, compared
#      with the float64 reference at the tolerances of SEMANTICS.md, run
#      twice and on grids of 1 and 3 CTAs, each compared bit for bit with
#      the first run;
#   3. the composite and tiles cases again under compute-sanitizer memcheck,
#      racecheck, synccheck and initcheck (when compute-sanitizer is found).
#
#   4. with --bench: bench/gpu/bench.py (cuBLAS, eager and compiled PyTorch,
#      our fused kernel; --ncu for DRAM bytes), its table in
#      $OUT/bench.md when $OUT is set (the device tool's output folder).
#
#   scripts/gpu-check.sh [--bench] [--ncu] [BUNDLE]   (default: gpu-bundle)
#
# Prints a line per case and "N passed, N failed"; exits 1 on any failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench=0 ncu=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bench) bench=1 ;;
    --ncu) ncu=(--ncu) ;;
    *) break ;;
  esac
  shift
done
BUNDLE="${1:-$ROOT/gpu-bundle}"
CHIP="$(cat "$BUNDLE/chip")"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"

"$ROOT/scripts/build-runtime.sh" "$ROOT/build-runtime" >/dev/null || exit 1
export PATH="$ROOT/build-runtime/bin:$PATH"
nora-exec --probe || exit 1
cat "$BUNDLE/resources.txt" 2>/dev/null

passed=0 failed=0
run_group() { # run_group GROUP MAINLOOP [label] [harness options]
  local group="$1" mainloop="$2" label="${3:-}"
  shift 3 2>/dev/null || shift $#
  if python3 "$ROOT/test/Integration/$group.py" "$BUNDLE/cases/$group" \
       --gpu="$CHIP" --mainloop="$mainloop" --prebuilt "$@"; then
    echo "PASS: $group (mainloop $mainloop) $label"
    passed=$((passed + 1))
  else
    echo "FAIL: $group (mainloop $mainloop) $label"
    failed=$((failed + 1))
  fi
}
mainloops="auto simt"
[ "$CHIP" = sm_90a ] && mainloops="auto simt wgmma wgmma-ws"
for mainloop in $mainloops; do
  while read -r group; do
    [ -n "$group" ] &&
      run_group "$group" "$mainloop" "" --check-determinism --max-ctas=1,3
  done < "$ROOT/scripts/gpu-groups.txt"
done
run_group tf32 auto "(allow-tf32)" --allow-tf32 --check-determinism \
  --max-ctas=1,3
run_group tiles auto "(no-fuse)" --no-fuse --check-determinism --max-ctas=1,3

SANITIZER="$(command -v compute-sanitizer ||
             ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
if [ -n "$SANITIZER" ]; then
  for tool in memcheck racecheck synccheck initcheck; do
    for group in composite tiles; do
      NORA_EXEC_WRAPPER="$SANITIZER --tool $tool --error-exitcode=1" \
        run_group "$group" auto "under compute-sanitizer --tool $tool"
    done
    # The mbarrier rings: TMA into the wgmma stages, and the producer
    # warpgroup's handshake with its consumers.
    if [ "$CHIP" = sm_90a ]; then
      for mainloop in wgmma wgmma-ws; do
        NORA_EXEC_WRAPPER="$SANITIZER --tool $tool --error-exitcode=1" \
          run_group tiles "$mainloop" "under compute-sanitizer --tool $tool"
      done
    fi
  done
else
  echo "note: compute-sanitizer not found; sanitizer runs skipped"
fi
# The Python GPU tests (the optimizers on CUDA parameters) with the
# artifacts prepared in the bundle's cache.
if python3 -c "import pytest, torch" 2>/dev/null; then
  if NORA_ARTIFACT_CACHE="$BUNDLE/artifact-cache" \
       NORA_HOST_STEP="$BUNDLE/host" \
       python3 -m pytest -q -p no:cacheprovider -rs \
         "$ROOT/python/tests/test_gpu.py"; then
    echo "PASS: python/tests/test_gpu.py"
    passed=$((passed + 1))
  else
    echo "FAIL: python/tests/test_gpu.py"
    failed=$((failed + 1))
  fi
else
  echo "note: no pytest or torch here; the Python GPU tests are skipped"
fi
if [ "$bench" = 1 ]; then
  if python3 "$ROOT/bench/gpu/bench.py" "$BUNDLE" "${ncu[@]}" \
       --nora-exec "$ROOT/build-runtime/bin/nora-exec" \
       ${OUT:+--out "$OUT/bench.md"}; then
    echo "PASS: bench/gpu/bench.py"
    passed=$((passed + 1))
  else
    echo "FAIL: bench/gpu/bench.py"
    failed=$((failed + 1))
  fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
