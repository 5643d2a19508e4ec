#!/usr/bin/env bash
# make sanitize: the extension built with AddressSanitizer and UndefinedBehaviorSanitizer into
# build/sanitize (never the in-place .so), and CPU tests run against it there, from a copy of the
# package and the tests. Every finding is reported (the build recovers from errors instead of
# aborting) into build/sanitize/logs; the command fails when there is any, or when a test fails.
#
#   bash tools/sanitize.sh [pytest arguments]      default: $SANITIZE_TESTS below
#
# Environment: PYTHON (default .venv/bin/python), SANITIZERS (default address,undefined),
# MAX_JOBS (parallel compiles, default 2).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PY=${PYTHON:-.venv/bin/python}
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")  # absolute, the venv's link kept
SANITIZERS=${SANITIZERS:-address,undefined}
OUT=build/sanitize
# The ops, every layer kind against sinabs, bad and empty input, layouts, thread counts and
# threads, fuzzing: the tests that reach the kernels with the most shapes and options.
SANITIZE_TESTS=(tests/test_ops.py tests/test_iaf_equivalence.py tests/test_lif_equivalence.py
  tests/test_alif.py tests/test_recurrent.py tests/test_empty_inputs.py tests/test_op_errors.py
  tests/test_input_layouts.py tests/test_determinism.py tests/test_public_errors.py
  tests/test_threads.py tests/test_fuzz.py)
(( $# )) && SANITIZE_TESTS=("$@")

start=$(date +%s)
SINABS_FAST_SANITIZE=$SANITIZERS MAX_JOBS=${MAX_JOBS:-2} "$PY" setup.py --quiet build_ext \
  --build-lib "$OUT/lib" --build-temp "$OUT/temp" || exit 1
echo "sanitize: the $SANITIZERS build took $(( $(date +%s) - start )) s"

rm -rf "$OUT/tree" "$OUT/logs"
mkdir -p "$OUT/tree" "$OUT/logs"
cp -r sinabs_fast tests "$OUT/tree/"
find "$OUT/tree" -name __pycache__ -prune -exec rm -rf {} +
rm -f "$OUT"/tree/sinabs_fast/_C*.so
cp "$OUT"/lib/sinabs_fast/_C*.so "$OUT/tree/sinabs_fast/"

# Python and torch are not built with the sanitizers: the ASan runtime must be loaded first, and
# their own leaks at exit are not ours (detect_leaks=0). libstdc++ is preloaded too: Python does
# not link it, and ASan's __cxa_throw interceptor must find it at start-up, or the first C++
# exception (an op's argument error) aborts in the interceptor.
if [[ $SANITIZERS == *address* ]]; then
  export LD_PRELOAD="$("${CXX:-c++}" -print-file-name=libasan.so) $("${CXX:-c++}" -print-file-name=libstdc++.so)"
fi
export ASAN_OPTIONS=detect_leaks=0:halt_on_error=0:log_path=$ROOT/$OUT/logs/asan
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0:log_path=$ROOT/$OUT/logs/ubsan
start=$(date +%s)
(cd "$OUT/tree" && PYTHONPATH=$ROOT/$OUT/tree "$PY" -m pytest -q -p no:cacheprovider \
  "${SANITIZE_TESTS[@]}")
rc=$?
unset LD_PRELOAD
echo "sanitize: the tests took $(( $(date +%s) - start )) s (pytest exit status $rc)"
reports=$(ls "$OUT/logs")
if [[ -n $reports ]]; then
  echo "sanitize: $(echo "$reports" | wc -l) report file(s) in $OUT/logs:"
  for f in "$OUT"/logs/*; do echo "== $f"; head -n 40 "$f"; done
  exit 1
fi
echo "sanitize: no AddressSanitizer or UndefinedBehaviorSanitizer report"
exit $rc
