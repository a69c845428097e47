#!/usr/bin/env bash
# Builds the libFuzzer targets (ASan+UBSan, clang-22) and runs each for a fixed
# time. Seeds: the lit tests' IR (split at `// -----`) and small .npy files.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# TARGET is parse, passes or npy (default: all three). Corpora grow in
# build-fuzz/corpus/TARGET across runs; a crash is written to
# build-fuzz/crashes/ and makes the script exit 1.
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

status=0
for target in "${TARGETS[@]}"; do
  printf '==> fuzzing %s for %ss\n' "$target" "$SECONDS_PER_TARGET" >&2
  if ! ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
       "$FUZZ_DIR/bin/nora-fuzz-$target" "$FUZZ_DIR/corpus/$target" \
       -max_total_time="$SECONDS_PER_TARGET" -timeout=20 -rss_limit_mb=4096 \
       -max_len=16384 -print_final_stats=1 \
       -artifact_prefix="$FUZZ_DIR/crashes/$target-" \
       > "$FUZZ_DIR/$target.log" 2>&1; then
    echo "fuzz target $target found a problem: see $FUZZ_DIR/$target.log and $FUZZ_DIR/crashes/" >&2
    tail -40 "$FUZZ_DIR/$target.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$FUZZ_DIR/$target.log" |
      sed "s/^/  $target: /" >&2
  fi
done
exit "$status"
