#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (lit: FileCheck tests,
# verifier tests, plugin tests, unit tests, integration tests). Exits non-zero
# when anything fails; ends with lit's summary and a line "N passed, N failed".
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${NORA_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"

printf '==> running the test suite (lit)\n' >&2
log_file="$(mktemp)"
trap 'rm -f "$log_file"' EXIT
set +e
/usr/lib/llvm-22/bin/lit -v "$BUILD_DIR/test" 2>&1 | tee "$log_file"
status=${PIPESTATUS[0]}
set -e

count() { # the number lit printed after "LABEL:" in its closing summary
  sed -nE "s/^ *$1: *([0-9]+).*/\1/p" "$log_file" | tail -1
}
passed=$(count "Passed"); passed=${passed:-0}
failed=$(count "Failed"); failed=${failed:-0}
unsupported=$(count "Unsupported"); unsupported=${unsupported:-0}
xfail=$(count "Expectedly Failed"); xfail=${xfail:-0}
unresolved=$(count "Unresolved"); unresolved=${unresolved:-0}
failed=$((failed + unresolved))
passed=$((passed + xfail))
if [ "$status" -eq 0 ] && [ "$failed" -ne 0 ]; then status=1; fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "no test ran" >&2
  status=1
fi
echo "$passed passed, $failed failed, $unsupported skipped"
exit "$status"
