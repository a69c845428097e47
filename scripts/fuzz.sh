#!/usr/bin/env bash
# Builds the libFuzzer targets (ASan+UBSan, clang-22) and runs each for a fixed
# time. Seeds: the lit tests' IR (split at `// -----`) and small .npy files.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# TARGET is parse, passes or npy (default: all three). Corpora grow in
# build-fuzz/corpus/TARGET across runs. libFuzzer runs in fork mode and goes
# on after a crash; each crash, timeout or leak it saves is run again and
# sorted by its stack trace: one with a frame in nora's own code
# (lib/, include/nora/, tools/nora-*) is ours and makes the script exit 1;
# one entirely inside libMLIR/LLVM is an upstream bug, moved to
# crashes/upstream/ and reported (docs/fuzzing.md lists the known ones).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="${NORA_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then TARGETS=(parse passes npy); fi
PYTHON="${PYTHON:-python3}"

if [ ! -f "$FUZZ_DIR/build.ninja" ]; then
  printf '==> configuring the fuzz build in %s\n' "$FUZZ_DIR" >&2
  cmake -S "$ROOT" -B "$FUZZ_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22 \
    -DNORA_BUILD_FUZZERS=ON -DNORA_BUILD_UNITTESTS=OFF \
    -DLLVM_EXTERNAL_LIT=/usr/lib/llvm-22/bin/lit >/dev/null
fi
printf '==> building the fuzz targets\n' >&2
ninja -C "$FUZZ_DIR" nora-fuzz-parse nora-fuzz-passes nora-fuzz-npy

# Seed corpora (re-created each run; libFuzzer adds what it finds to them).
mkdir -p "$FUZZ_DIR/corpus/parse" "$FUZZ_DIR/corpus/passes" \
         "$FUZZ_DIR/corpus/npy" "$FUZZ_DIR/crashes"
"$PYTHON" - "$ROOT" "$FUZZ_DIR/corpus" <<'PYEOF'
import hashlib, io, pathlib, sys
import numpy as np
root, corpus = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
sources = list((root / "test").rglob("*.mlir")) + list((root / "examples").glob("*.mlir"))
for path in sources:
    for chunk in path.read_text().split("// -----"):
        data = chunk.encode()
        name = hashlib.sha1(data).hexdigest()
        for target in ("parse", "passes"):
            (corpus / target / name).write_bytes(data)
rng = np.random.default_rng(0)
for i, arr in enumerate([rng.standard_normal((4, 8)).astype(np.float32),
                         np.zeros((1,), np.float64), np.arange(6, dtype=np.uint16),
                         np.ones((2, 3), np.float16), np.array(3.0, np.float32),
                         np.arange(12, dtype=np.int32).reshape(3, 4)]):
    buf = io.BytesIO()
    np.save(buf, arr)
    (corpus / "npy" / f"seed{i}.npy").write_bytes(buf.getvalue())
PYEOF

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
mkdir -p "$FUZZ_DIR/crashes/upstream"
ours_pattern="($ROOT/lib/|$ROOT/include/nora/|$ROOT/tools/nora-)"

# classify TARGET ARTIFACT: 0 when the failure is in nora's code, else 1.
classify() {
  local trace
  trace=$("$FUZZ_DIR/bin/nora-fuzz-$1" "$2" -timeout=20 -rss_limit_mb=4096 2>&1 || true)
  if ! grep -Eq "#[0-9]+ 0x[0-9a-f]+ " <<<"$trace"; then
    # A stack overflow found in a fork-mode job may need less stack than
    # the 8 MiB of a run alone (deep recursion in MLIR's parser): again
    # with 1 MiB.
    trace=$( (ulimit -s 1024
              "$FUZZ_DIR/bin/nora-fuzz-$1" "$2" -timeout=20 \
                -rss_limit_mb=4096) 2>&1 || true)
  fi
  if grep -Eq "$ours_pattern" <<<"$trace"; then
    printf '%s\n' "$trace" | grep -E "ERROR|#[0-9]+ " | head -30 >&2
    return 0
  fi
  local first
  # Symbolized ("#0 0x... in f") or not ("#0 0x... (lib.so+0x...)").
  first=$(grep -m1 -E "#[0-9]+ 0x[0-9a-f]+ " <<<"$trace" | sed 's/^ *//')
  if [ -z "$first" ]; then
    # Not reproducible alone: nothing shows it is upstream's.
    echo "  $1: $(basename "$2") does not reproduce when run alone" >&2
    return 0
  fi
  echo "  $1: upstream (no frame in nora's code): $(basename "$2"): $first" >&2
  return 1
}

status=0
for target in "${TARGETS[@]}"; do
  printf '==> fuzzing %s for %ss\n' "$target" "$SECONDS_PER_TARGET" >&2
  "$FUZZ_DIR/bin/nora-fuzz-$target" "$FUZZ_DIR/corpus/$target" \
    -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=4096 \
    -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$FUZZ_DIR/crashes/$target-" \
    > "$FUZZ_DIR/$target.log" 2>&1 || true
  grep -E "^#[0-9]+: cov: " "$FUZZ_DIR/$target.log" | tail -1 |
    sed "s/^/  $target: /" >&2
  for artifact in "$FUZZ_DIR/crashes/$target-"*; do
    [ -e "$artifact" ] || continue
    if classify "$target" "$artifact"; then
      echo "fuzz target $target: a failure in nora's code: $artifact (log: $FUZZ_DIR/$target.log)" >&2
      status=1
    else
      mv "$artifact" "$FUZZ_DIR/crashes/upstream/"
    fi
  done
done
exit "$status"
