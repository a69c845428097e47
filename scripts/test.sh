#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (lit: FileCheck tests,
# verifier tests, plugin tests, unit tests, integration tests against the
# numpy reference; pytest: the Python package and torch optimizers, in a
# virtual environment with torch that scripts/setup-python.sh makes once),
# then the lit suite again against an ASan+UBSan build of the tools, then
# each libFuzzer target briefly (that build also holds them).
# Exits non-zero when anything fails; ends with lit's summary and a line
# "N passed, N failed, N skipped" over all runs (a fuzz target counts as one
# test).
#
# Environment:
#   NORA_SKIP_SANITIZERS=1   skip the ASan+UBSan run and the fuzz targets
#   NORA_FUZZ_SECONDS=N      seconds per fuzz target (default 10)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${NORA_BUILD_DIR:-$ROOT/build}"
ASAN_DIR="${NORA_ASAN_BUILD_DIR:-$ROOT/build-asan}"
LIT=/usr/lib/llvm-22/bin/lit
"$ROOT/scripts/setup.sh"

log_file="$(mktemp)"
trap 'rm -f "$log_file"' EXIT
status=0
passed=0 failed=0 skipped=0

count() { # the number lit printed after "LABEL:" in its closing summary
  local n
  n=$(sed -nE "s/^ *$1 *: *([0-9]+).*/\\1/p" "$log_file" | tail -1)
  echo "${n:-0}"
}

run_lit() { # run_lit TITLE [lit args...]
  local title="$1"
  shift
  printf '==> %s\n' "$title" >&2
  set +e
  "$LIT" -v "$@" "$BUILD_DIR/test" 2>&1 | tee "$log_file"
  local rc=${PIPESTATUS[0]}
  set -e
  local p f u x r
  p=$(count Passed) f=$(count Failed) u=$(count Unsupported)
  x=$(count "Expectedly Failed") r=$(count Unresolved)
  passed=$((passed + p + x))
  failed=$((failed + f + r))
  skipped=$((skipped + u))
  if [ "$rc" -ne 0 ] || [ $((f + r)) -ne 0 ]; then status=1; fi
  if [ $((p + f + r)) -eq 0 ]; then
    echo "no test ran in: $title" >&2
    status=1
  fi
}

run_lit "running the test suite (lit)"

# The Python package (python/tests, pytest): the compiled step through the C
# API, and the torch optimizers.
printf '==> running the Python package tests (pytest)\n' >&2
VENV_PYTHON="$("$ROOT/scripts/setup-python.sh")"
set +e
"$VENV_PYTHON" -m pytest -q -p no:cacheprovider "$ROOT/python/tests" 2>&1 |
  tee "$log_file"
rc=${PIPESTATUS[0]}
set -e
summary=$(grep -E "^[0-9]+ (passed|failed)|^=+ .*(passed|failed)" "$log_file" | tail -1)
pp=$(sed -nE 's/.*[^0-9]([0-9]+) passed.*/\1/p; s/^([0-9]+) passed.*/\1/p' <<<"$summary" | head -1)
pf=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p; s/^([0-9]+) failed.*/\1/p' <<<"$summary" | head -1)
ps=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$summary" | head -1)
pe=$(sed -nE 's/.* ([0-9]+) errors?.*/\1/p' <<<"$summary" | head -1)
passed=$((passed + ${pp:-0}))
failed=$((failed + ${pf:-0} + ${pe:-0}))
skipped=$((skipped + ${ps:-0}))
if [ "$rc" -ne 0 ] || [ -z "${pp:-}" ]; then
  echo "pytest failed or ran no test (exit status $rc)" >&2
  status=1
fi

if [ "${NORA_SKIP_SANITIZERS:-0}" != 1 ]; then
  if [ ! -f "$ASAN_DIR/build.ninja" ] ||
     ! grep -q '^NORA_BUILD_FUZZERS:BOOL=ON' "$ASAN_DIR/CMakeCache.txt"; then
    printf '==> configuring the ASan+UBSan build in %s\n' "$ASAN_DIR" >&2
    compilers=()
    if command -v clang++-22 >/dev/null 2>&1; then
      compilers=(-DCMAKE_C_COMPILER=clang-22 -DCMAKE_CXX_COMPILER=clang++-22)
    fi
    cmake -S "$ROOT" -B "$ASAN_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DNORA_ENABLE_SANITIZERS=ON -DNORA_BUILD_FUZZERS=ON \
      -DLLVM_EXTERNAL_LIT="$LIT" \
      -DNORA_PYTHON="$(grep -oP '(?<=config.nora_python = ").*(?=")' \
                        "$BUILD_DIR/test/lit.site.cfg.py")" \
      "${compilers[@]}" >/dev/null
  fi
  printf '==> building the ASan+UBSan tools\n' >&2
  ninja -C "$ASAN_DIR" nora-opt nora-run nora-compile nora-exec NoraUnitTests
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    run_lit "running the test suite against the ASan+UBSan build" \
      --param "nora_tools_dir=$ASAN_DIR/bin"

  printf '==> fuzzing each target for %ss\n' "${NORA_FUZZ_SECONDS:-10}" >&2
  for target in parse passes npy; do
    if NORA_FUZZ_BUILD_DIR="$ASAN_DIR" "$ROOT/scripts/fuzz.sh" \
         "${NORA_FUZZ_SECONDS:-10}" "$target"; then
      echo "PASS: fuzz target $target"
      passed=$((passed + 1))
    else
      echo "FAIL: fuzz target $target"
      failed=$((failed + 1))
      status=1
    fi
  done
fi

echo "$passed passed, $failed failed, $skipped skipped"
exit "$status"
