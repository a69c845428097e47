#!/usr/bin/env bash
# On the GPU machine (CUDA driver, CMake, ninja, a C++ compiler, Python with
# numpy; no LLVM/MLIR): runs what scripts/prepare-gpu.sh compiled.
#
#   1. builds the LLVM-free runtime and nora-exec (scripts/build-runtime.sh);
#   2. every prepared case, for each mainloop (auto: mma.sync tensor cores
#      for the bf16/f16 steps; simt: exact f32; on sm_90a also wgmma,
#      wgmma-ws, wgmma-pingpong, wgmma-tall and wgmma-wide): nora-exec on
#      the artifact, compared with the float64
#      reference at the tolerances of SEMANTICS.md, run twice and on grids
#      of 1 and 3 CTAs, each compared bit for bit with the first run (and
#      on sm_90a the tiles cases with the cluster row exchange, with the
#      default mainloop, wgmma-ws and wgmma-wide);
#   3. the composite and tiles cases again under compute-sanitizer memcheck,
#      racecheck, synccheck and initcheck (when compute-sanitizer is found);
#   4. with --bench: bench/gpu/bench.py (cuBLAS, eager and compiled PyTorch,
#      our fused kernel and its variants; --ncu for DRAM bytes), its table
#      in $OUT/bench.md when $OUT is set (the device tool's output folder),
#      rewritten after each shape.
#
# The order fits a short lease: the default's cases and the tile-edge
# cases of wgmma-ws, wgmma-pingpong, wgmma-tall and wgmma-wide (sm_90a),
# then the benchmark, then their other cases, the other mainloops, the
# Python tests and the sanitizers. With --budget=SECONDS no stage starts once that many seconds
# have passed (each one skipped is named, and the run fails), and the
# benchmark starts no shape past it. With $OUT
# set, everything printed also goes to $OUT/gpu-check.log as it comes.
#
#   scripts/gpu-check.sh [--bench] [--ncu] [--budget=SECONDS] [BUNDLE]
#                                                   (default: gpu-bundle)
#
# Prints a line per case and "N passed, N failed, N skipped, N with no case"
# (groups that have no case for a tensor-core mainloop); exits 1 on any
# failure or skipped stage.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bench=0 ncu=() budget=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bench) bench=1 ;;
    --ncu) ncu=(--ncu) ;;
    --budget=*)
      budget="${1#--budget=}"
      case "$budget" in
        ''|*[!0-9]*) echo "gpu-check: --budget takes seconds, got '$budget'" >&2
                    exit 2 ;;
      esac ;;
    --*) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT"
  exec > >(tee -a "$OUT/gpu-check.log") 2>&1
fi
start=$SECONDS
BUNDLE="${1:-$ROOT/gpu-bundle}"
CHIP="$(cat "$BUNDLE/chip")"
export PYTHONPATH="$ROOT/python${PYTHONPATH:+:$PYTHONPATH}"

"$ROOT/scripts/build-runtime.sh" "$ROOT/build-runtime" >/dev/null || exit 1
export PATH="$ROOT/build-runtime/bin:$PATH"
nora-exec --probe || exit 1
cat "$BUNDLE/resources.txt" 2>/dev/null

passed=0 failed=0 skipped=0 none=0
# Counts and prints a check's outcome: tally STATUS WHAT (STATUS 0: pass).
tally() {
  if [ "$1" -eq 0 ]; then
    echo "PASS: $2"
    passed=$((passed + 1))
  else
    echo "FAIL: $2"
    failed=$((failed + 1))
  fi
}
# Whether a stage may start: with --budget, not once the budget is spent.
in_budget() { # in_budget WHAT
  if [ "$budget" -gt 0 ] && [ $((SECONDS - start)) -ge "$budget" ]; then
    echo "SKIPPED (budget of ${budget} s spent): $1"
    skipped=$((skipped + 1))
    return 1
  fi
}
run_group() { # run_group GROUP MAINLOOP [label] [harness options]
  local group="$1" mainloop="$2" label="${3:-}"
  shift 3 2>/dev/null || shift $#
  in_budget "$group (mainloop $mainloop) $label" || return 0
  local log
  log="$(mktemp)"
  python3 "$ROOT/test/Integration/$group.py" "$BUNDLE/cases/$group" \
    --gpu="$CHIP" --mainloop="$mainloop" --prebuilt "$@" 2>&1 | tee "$log"
  local status=$?
  # A tensor-core mainloop may take no case of a group: not a pass.
  if [ "$status" -eq 0 ] && grep -q "^NONE RAN" "$log"; then
    echo "NONE: $group (mainloop $mainloop)${label:+ $label}: no case is such a step"
    none=$((none + 1))
  else
    tally "$status" "$group (mainloop $mainloop) $label"
  fi
  rm -f "$log"
}
# run_groups [--only=GROUP|--except=GROUP] MAINLOOP...: every group of
# gpu-groups.txt (or the one, or all but the one).
run_groups() {
  local only="" except=""
  case "${1:-}" in
    --only=*) only="${1#--only=}"; shift ;;
    --except=*) except="${1#--except=}"; shift ;;
  esac
  for mainloop in "$@"; do
    while read -r group; do
      [ -z "$group" ] && continue
      [ -n "$only" ] && [ "$group" != "$only" ] && continue
      [ -n "$except" ] && [ "$group" = "$except" ] && continue
      run_group "$group" "$mainloop" "" --check-determinism --max-ctas=1,3
    done < "$ROOT/scripts/gpu-groups.txt"
  done
}
# The warp-specialized wgmma mainloops (sm_90a), opt-in.
WARP_SPECIALIZED="wgmma-ws wgmma-pingpong wgmma-tall wgmma-wide"
# First what the benchmark times: the default's groups, and on sm_90a the
# tile-edge cases of the warp-specialized mainloops (their other groups
# after the benchmark).
run_groups auto
# shellcheck disable=SC2086
[ "$CHIP" = sm_90a ] && run_groups --only=tiles $WARP_SPECIALIZED
if [ "$bench" = 1 ] && in_budget "bench/gpu/bench.py"; then
  # The shapes start while the budget lasts (the table keeps what ran).
  bench_budget=()
  [ "$budget" -gt 0 ] && bench_budget=(--budget=$((budget - (SECONDS - start))))
  python3 "$ROOT/bench/gpu/bench.py" "$BUNDLE" "${ncu[@]}" \
    "${bench_budget[@]}" --nora-exec "$ROOT/build-runtime/bin/nora-exec" \
    ${OUT:+--out "$OUT/bench.md"}
  tally $? "bench/gpu/bench.py"
fi
if [ "$CHIP" = sm_90a ]; then
  # shellcheck disable=SC2086
  run_groups --except=tiles $WARP_SPECIALIZED
  run_groups simt wgmma
else
  run_groups simt
fi
run_group tf32 auto "(allow-tf32)" --allow-tf32 --check-determinism \
  --max-ctas=1,3
run_group tiles auto "(no-fuse)" --no-fuse --check-determinism --max-ctas=1,3
# The cluster row exchange (distributed shared memory, sm_90a), also with
# a producer warpgroup in the cluster barrier (wgmma-ws, wgmma-wide).
if [ "$CHIP" = sm_90a ]; then
  for mainloop in auto wgmma-ws wgmma-wide; do
    run_group tiles "$mainloop" "(cluster exchange)" --row-exchange=cluster \
      --check-determinism --max-ctas=1,3
  done
fi

# The Python GPU tests (the optimizers on CUDA parameters) with the
# artifacts prepared in the bundle's cache.
if ! in_budget "python/tests/test_gpu.py"; then
  :
elif python3 -c "import pytest, torch" 2>/dev/null; then
  NORA_ARTIFACT_CACHE="$BUNDLE/artifact-cache" \
    NORA_HOST_STEP="$BUNDLE/host" \
    python3 -m pytest -q -p no:cacheprovider -rs \
      "$ROOT/python/tests/test_gpu.py"
  tally $? "python/tests/test_gpu.py"
else
  echo "note: no pytest or torch here; the Python GPU tests are skipped"
fi
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
      for mainloop in wgmma wgmma-ws wgmma-pingpong wgmma-tall wgmma-wide; do
        NORA_EXEC_WRAPPER="$SANITIZER --tool $tool --error-exitcode=1" \
          run_group tiles "$mainloop" "under compute-sanitizer --tool $tool"
      done
      # The cluster barrier and the reads of other CTAs' shared memory.
      for mainloop in auto wgmma-wide; do
        NORA_EXEC_WRAPPER="$SANITIZER --tool $tool --error-exitcode=1" \
          run_group tiles "$mainloop" \
          "(cluster exchange) under compute-sanitizer --tool $tool" \
          --row-exchange=cluster
      done
    fi
  done
else
  echo "note: compute-sanitizer not found; sanitizer runs skipped"
fi
echo "$passed passed, $failed failed, $skipped skipped, $none with no case" \
  "($((SECONDS - start)) s)"
[ "$failed" -eq 0 ] && [ "$skipped" -eq 0 ]
