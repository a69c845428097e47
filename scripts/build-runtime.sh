#!/usr/bin/env bash
# Builds the LLVM-free runtime (NoraNpy, NoraCudaRuntime, nora-exec) from
# runtime/CMakeLists.txt into OUTDIR with plain CMake and ninja: this is what
# is built on, or carried to, the GPU machine. Then checks the result: it
# runs (--help), links no LLVM/MLIR/libcuda, and is small.
#
#   scripts/build-runtime.sh OUTDIR [extra cmake arguments...]
#
# Environment: CXX picks the compiler (default: cmake's choice);
# NORA_RUNTIME_MAX_BYTES the size limit of nora-exec (default 4 MiB).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 OUTDIR [cmake arguments...]" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$1"
shift
MAX_BYTES="${NORA_RUNTIME_MAX_BYTES:-4194304}"

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
generator=()
if command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { cmake -S "$ROOT/runtime" -B "$OUT" "${generator[@]}" \
         -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@" &&
       cmake --build "$OUT" --parallel "${NORA_BUILD_JOBS:-2}"; } >"$log" 2>&1
then
  cat "$log" >&2
  echo "error: the runtime-only build in $OUT failed" >&2
  exit 1
fi

exe="$OUT/bin/nora-exec"
"$exe" --help >/dev/null
if readelf -d "$exe" | grep -E 'NEEDED.*(LLVM|MLIR|libcuda)'; then
  echo "error: $exe links LLVM, MLIR or libcuda" >&2
  exit 1
fi
size=$(stat -c %s "$exe")
if [ "$size" -gt "$MAX_BYTES" ]; then
  echo "error: $exe is $size bytes (limit $MAX_BYTES)" >&2
  exit 1
fi
echo "nora-exec: $exe ($size bytes, no LLVM/MLIR)"
