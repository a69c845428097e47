#!/usr/bin/env bash
# ThreadSanitizer on the threaded CPU path: builds nora-run with
# -fsanitize=thread (NORA_ENABLE_TSAN, in build-tsan/) and runs fused steps
# whose row panels run on 1-4 OpenMP threads, with LLVM's Archer OMPT tool
# so that TSan understands OpenMP's synchronization. Any TSan report fails
# the run; the threaded results must also equal the 1-thread ones bit for
# bit.
#
#   scripts/tsan.sh            (docs/sanitizers.md records the runs)
#
# What TSan sees: nora-run itself and the CPU micro-kernels (the inner loops
# of the fused step, where the threads read and write shared buffers) are
# instrumented; the JIT-compiled panel loop around them is not.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TSAN_DIR="${NORA_TSAN_BUILD_DIR:-$ROOT/build-tsan}"
LLVM_LIB=/usr/lib/llvm-22/lib
"$ROOT/scripts/setup.sh" >/dev/null
PYTHON="$(grep -oP '(?<=config.nora_python = ").*(?=")' \
            "$ROOT/build/test/lit.site.cfg.py")"

if [ ! -f "$TSAN_DIR/build.ninja" ]; then
  cmake -S "$ROOT" -B "$TSAN_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DNORA_ENABLE_TSAN=ON -DNORA_BUILD_UNITTESTS=OFF \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DLLVM_EXTERNAL_LIT="/usr/lib/llvm-22/bin/lit" >/dev/null
fi
ninja -C "$TSAN_DIR" nora-run

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$PYTHON" "$ROOT/test/Integration/Inputs/make_step_npy.py" "$work"
# libomp itself is not instrumented: its internal locking would be reported.
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 ignore_noninstrumented_modules=1"
export OMP_TOOL_LIBRARIES="$LLVM_LIB/libarcher.so"
export ARCHER_OPTIONS="verbose=1"
status=0 runs=0
run() { # run TAG THREADS [nora-run options...]
  local tag="$1" threads="$2"
  shift 2
  if ! env OMP_NUM_THREADS="$threads" "$TSAN_DIR/bin/nora-run" \
      "$ROOT/test/Integration/Inputs/threads.mlir" --entry=step \
      --input=@"$work/dy.npy" --input=@"$work/x.npy" --input=@"$work/w.npy" \
      --input=@"$work/m.npy" --input=0.01 --input=0.1 \
      --output=@"$work/$tag.w.npy" --output=@"$work/$tag.m.npy" "$@" \
      > "$work/$tag.log" 2>&1; then
    echo "FAIL: $tag ($threads threads $*)"
    cat "$work/$tag.log"
    status=1
  elif grep -q "ThreadSanitizer" "$work/$tag.log"; then
    echo "FAIL: $tag: ThreadSanitizer report"
    cat "$work/$tag.log"
    status=1
  else
    echo "ok   $tag ($threads threads $*)"
  fi
  runs=$((runs + 1))
}
run t1 1 --rows-per-panel=48
for threads in 2 3 4; do
  run "t$threads" "$threads" --rows-per-panel=6
  for part in w m; do
    cmp -s "$work/t1.$part.npy" "$work/t$threads.$part.npy" ||
      { echo "FAIL: $threads threads: $part differs from 1 thread"; status=1; }
  done
done
run skiprow 3 --rows-per-panel=6 --nonfinite=skip_row
run skipstep 3 --rows-per-panel=6 --nonfinite=skip_step
grep -h "Archer" "$work"/*.log | sort -u | head -3 || true
echo "tsan: $runs runs, $([ $status = 0 ] && echo clean || echo FAILED)"
exit "$status"
