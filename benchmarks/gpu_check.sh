#!/usr/bin/env bash
# The one prepared command for a GPU machine (one without network, reached through the device
# tool as below): CUDA tests and the GPU benchmark, in well under 8 minutes, with a full log.
#
# HOW TO RUN IT (through the device tool, from a session of this repository):
#   0. Here, first (network to PyPI; ~10 s):  bash benchmarks/prepare_gpu_wheels.sh
#      -> gpu_wheels/ (git-ignored, ~1.6 MiB: sinabs, nir, nirtorch, pbr, spikingjelly, loguru,
#         snntorch wheels and the sinabs-exodus source archive, built only with GPU_CHECK_EXODUS=1).
#   1. One call of the device tool:
#        run(command="bash benchmarks/gpu_check.sh", carry=["gpu_wheels"], timeout_s=600)
#      (kind left out: an H100 or, failing that, an H200; the JSON names the card).
#      The script budgets itself to DEADLINE_S (default 420 s) of wall time; ~6-7 min expected.
#   2. What comes back lands in the reply's files_at folder (from $OUT on the machine):
#        log                         everything printed (versions, build, tests, benchmark), ending
#                                    with a summary of every stage
#        gpu-<device>.json/.md/.png  the benchmark (e.g. gpu-nvidia-h100-80gb-hbm3.json), in the
#                                    suite's result format (benchmarks/README.md)
#        diagnostics.txt             wrong-argument calls, build flags, registers per kernel, ncu
#        build.txt, pytest-cuda.txt, pytest-all.txt (exodus-build.txt with GPU_CHECK_EXODUS=1)
#   3. Copy the JSON into benchmarks/results/ (an older file of the same card into
#      benchmarks/results/history/), regenerate the pages and commit, e.g.
#        cp <files_at>/gpu-*.json benchmarks/results/ && python -m sinabs_fast.bench.pages &&
#        git add benchmarks README.md && git commit -m "GPU benchmark on NVIDIA H100 80GB HBM3"
#      Never mix H100 and H200 numbers in one table.
#
# Stages (each under `timeout`, capped by what is left of DEADLINE_S; a failed stage does not stop
# the later ones; the exit status is that of the CUDA tests, else the benchmark), in order of what
# matters most if time runs out:
#   1. machine: nvidia-smi, torch, Triton;  2. the carried wheels into a scratch folder on
#   PYTHONPATH;  3. build sinabs_fast in place for sm_90 (build.txt);  4. diagnostics
#   (benchmarks/gpu_diagnostics.sh errors registers -> diagnostics.txt): every op with wrong
#   arguments must raise a Python exception on CPU and CUDA tensors (the C++-error segfault of
#   2026-11-27), the build's C++ standard/ABI next to torch's, and registers, spills and G1 waves
#   per float kernel;  5. tests/test_cuda.py;  6. the short benchmark: `sinabs-fast bench
#   --device cuda --quick` on G1, G2, G6 (IAF and LIF, every mode, float32), sinabs_fast vs every
#   peer whose wheel was carried (sinabs, SpikingJelly torch and Triton, snnTorch, Norse,
#   sinabs-exodus when built), and the seed network's training step (eager, compiled, and
#   under reduce-overhead's CUDA graphs), then appended while time allows: LIF with tau_syn,
#   ALIF, LIFRecurrent (G5, G7), the tiny host-cost calls (H1, H2), bfloat16 and float16 at
#   G2;  7. Nsight Compute on
#   the G1 kernels (gpu_diagnostics.sh ncu), after the build-setting probe of gpu_diagnostics.sh
#   when a wrong-argument call crashed;  8. GPU_CHECK_EXTRA;  9. the rest of the tests with
#   whatever time is left;  10. a summary of every stage.
#   Environment: DEADLINE_S (wall-time budget, default 420), GPU_CHECK_EXTRA (a script to run
#   after the benchmark), GPU_CHECK_EXODUS=1 (also build sinabs-exodus from its carried archive
#   and time it: ~1-2 min of nvcc beside the build), PYTHON, WHEELS.
#
# Locally (no GPU) it still runs through: the build is CPU-only, the CUDA tests skip, and the
# benchmark prints "no CUDA device".
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${OUT:-$ROOT/benchmarks/out}"
mkdir -p "$OUT"
exec > >(tee "$OUT/log") 2>&1
export PYTHONUNBUFFERED=1

START=$(date +%s)
DEADLINE_S="${DEADLINE_S:-420}"
PY="${PYTHON:-python3}"
WHEELS="${WHEELS:-$ROOT/gpu_wheels}"
SITE="${SITE:-/tmp/sinabs_fast_gpu_site}"
elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( DEADLINE_S - $(date +%s) + START )); }
stage() { echo; echo "=== [$(elapsed) s] $*"; }
# run_for SECONDS cmd...: timeout, capped by what is left of the deadline (at least 10 s).
run_for() {
  local want=$1; shift
  local l; l=$(left)
  (( want > l )) && want=$l
  (( want < 10 )) && want=10
  timeout --kill-after=10 "$want" "$@"
}

stage "machine"
date -u
nvidia-smi -L || echo "nvidia-smi: not available"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv || true
"$PY" - << 'PY' || true
import sys, torch
print("python", sys.version.split()[0], sys.executable)
print("torch", torch.__version__, "CUDA", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("device", p.name, f"sm_{p.major}{p.minor}", p.multi_processor_count, "SMs",
          round(p.total_memory / 2**30, 1), "GiB")
try:
    import triton
    print("triton", triton.__version__)
except Exception as e:
    print("triton: not importable:", e)
PY
nproc

# CUDA toolkit: /usr/local/cuda when it has nvcc, else the nvcc on PATH.
if [[ -z "${CUDA_HOME:-}" ]]; then
  if [[ -x /usr/local/cuda/bin/nvcc ]]; then CUDA_HOME=/usr/local/cuda
  elif command -v nvcc > /dev/null; then CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
  fi
fi
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export PATH="$CUDA_HOME/bin:$PATH"
echo "CUDA_HOME=$CUDA_HOME"; nvcc --version 2> /dev/null | tail -n 2 || echo "nvcc: not found"

stage "install the carried wheels into $SITE"
rm -rf "$SITE"; mkdir -p "$SITE"
if ls "$WHEELS"/*.whl > /dev/null 2>&1; then
  ls -l "$WHEELS"
  run_for 120 "$PY" -m pip install --quiet --no-index --no-deps --no-compile --target "$SITE" \
    "$WHEELS"/*.whl || echo "wheel install FAILED"
else
  echo "no wheels in $WHEELS (run benchmarks/prepare_gpu_wheels.sh and carry gpu_wheels)"
fi
# The repository root too: sinabs_fast is built in place there.
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import sinabs, spikingjelly, snntorch, norse; print('sinabs', sinabs.__file__)" \
  || echo "peer imports FAILED"

# sinabs-exodus: build its wheel in the background (nvcc, ~1-2 min) while sinabs_fast builds.
EXO_SDIST=""
if [[ "${GPU_CHECK_EXODUS:-0}" == 1 ]]; then
  EXO_SDIST="$(ls "$WHEELS"/sinabs[-_]exodus-*.tar.gz 2> /dev/null | head -n 1 || true)"
fi
EXO_PID=""
if [[ -n "$EXO_SDIST" ]]; then
  stage "build sinabs-exodus from $(basename "$EXO_SDIST") in the background (log: exodus-build.txt)"
  mkdir -p /tmp/exodus_wheel
  ( run_for 300 env TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=8 "$PY" -m pip wheel --no-build-isolation \
      --no-deps --no-index -w /tmp/exodus_wheel "$EXO_SDIST" ) > "$OUT/exodus-build.txt" 2>&1 &
  EXO_PID=$!
else
  echo "sinabs-exodus: not built (GPU_CHECK_EXODUS=1 and its carried archive build it); its rows are skipped"
fi

stage "build sinabs_fast for sm_90 (in place)"
rm -f sinabs_fast/_C*.so
# SINABS_FAST_CUDA=auto: CUDA kernels when torch has CUDA and nvcc is found (CPU-only elsewhere).
run_for 300 env SINABS_FAST_CUDA=auto TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=16 \
  "$PY" setup.py build_ext --inplace > "$OUT/build.txt" 2>&1
BUILD_RC=$?
grep -v "^copying\|^creating" "$OUT/build.txt" | tail -n 25
echo "build exit status: $BUILD_RC ($(elapsed) s)"
"$PY" - << 'PY' || echo "sinabs_fast import FAILED"
import torch, sinabs_fast
print("sinabs_fast", sinabs_fast.__file__)
for op in ("lif_forward", "lif_backward"):
    print(op, "CUDA kernel registered:",
          torch._C._dispatch_has_kernel_for_dispatch_key(f"sinabs_fast::{op}", "CUDA"))
PY

export OUT
stage "diagnostics: wrong arguments must raise; the build's flags; registers per kernel"
run_for 150 bash benchmarks/gpu_diagnostics.sh errors registers 2>&1 | tee "$OUT/diagnostics.txt"

stage "tests/test_cuda.py"
run_for 150 "$PY" -m pytest -q -rs -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/pytest-cuda.txt" | tail -n 40
CUDA_TEST_RC=${PIPESTATUS[0]}
echo "test_cuda exit status: $CUDA_TEST_RC ($(elapsed) s)"

if [[ -n "$EXO_PID" ]]; then
  stage "sinabs-exodus build"
  wait "$EXO_PID"; echo "exodus build exit status: $? ($(elapsed) s)"
  tail -n 15 "$OUT/exodus-build.txt"
  EXO_WHL="$(ls /tmp/exodus_wheel/*.whl 2> /dev/null | head -n 1 || true)"
  if [[ -n "$EXO_WHL" ]]; then
    # Its package sits inside sinabs/ (sinabs/exodus): install into a side folder, then merge.
    rm -rf /tmp/exodus_site
    "$PY" -m pip install --quiet --no-index --no-deps --no-compile --target /tmp/exodus_site "$EXO_WHL" \
      && cp -r /tmp/exodus_site/sinabs/exodus "$SITE/sinabs/" \
      && find /tmp/exodus_site -maxdepth 1 -mindepth 1 ! -name sinabs -exec cp -r {} "$SITE/" \; \
      && "$PY" -c "import sinabs.exodus.layers, exodus_cuda; print('sinabs-exodus OK', exodus_cuda.__file__)" \
      || echo "sinabs-exodus install/import FAILED: its rows will be skipped"
  fi
fi

stage "sinabs-fast bench --device cuda --quick: G1 G2 G6, float32"
BUDGET=$(( $(left) - 150 ))  # leaves time for Nsight Compute
(( BUDGET > 180 )) && BUDGET=180
(( BUDGET < 60 )) && BUDGET=60
echo "benchmark budget: $BUDGET s"
SLUG="$("$PY" -c "import re, torch; print(re.sub('[^a-z0-9]+', '-', torch.cuda.get_device_name().lower()).strip('-'))" 2> /dev/null || echo no-cuda)"
run_for $(( BUDGET + 90 )) "$PY" -m sinabs_fast.cli bench --device cuda --quick --no-progress \
  --shapes G1,G2,G6 --layers iaf,lif,seed-network --dtype float32 --time-budget "$BUDGET" \
  --json "$OUT/gpu-$SLUG.json" --markdown "$OUT/gpu-$SLUG.md" --plot "$OUT/gpu-$SLUG.png"
BENCH_RC=$?
echo "bench exit status: $BENCH_RC ($(elapsed) s)"

# The rest of issue 16's rows, appended to the same result while time allows: LIF with tau_syn,
# ALIF and LIFRecurrent (N=256 at G5, N=1024 at G7), the tiny host-cost calls (H1, H2, beside a
# tiny nn.Linear), then bfloat16 and float16 at G2.
for EXTRA in "--layers iaf,lif-syn,alif,lif-recurrent --shapes H1,H2,G5,G7 --dtype float32" \
             "--layers iaf,lif --shapes G2 --modes forward,fwd+bwd --dtype bfloat16" \
             "--layers iaf --shapes G2 --modes forward,fwd+bwd --dtype float16"; do
  EXTRA_BUDGET=$(( $(left) - 200 ))
  (( EXTRA_BUDGET > 60 )) && EXTRA_BUDGET=60
  if (( EXTRA_BUDGET < 15 )); then echo "no time left for: bench $EXTRA"; continue; fi
  stage "sinabs-fast bench --device cuda --quick $EXTRA (appended)"
  # shellcheck disable=SC2086  # EXTRA is a list of options
  run_for $(( EXTRA_BUDGET + 45 )) "$PY" -m sinabs_fast.cli bench --device cuda --quick \
    --no-progress $EXTRA --time-budget "$EXTRA_BUDGET" --json "$OUT/gpu-$SLUG.json" --append \
    --markdown "$OUT/gpu-$SLUG.md" --plot "$OUT/gpu-$SLUG.png"
  echo "bench ($EXTRA) exit status: $? ($(elapsed) s)"
done
ls -l "$OUT"

if grep -q "CRASHED" "$OUT/diagnostics.txt" 2> /dev/null; then
  stage "a wrong-argument call crashed: which build setting does it"
  run_for 200 bash benchmarks/gpu_diagnostics.sh probe 2>&1 | tee -a "$OUT/diagnostics.txt"
fi

if (( $(left) > 75 )); then
  stage "Nsight Compute: the IAF G1 kernels"
  run_for 120 bash benchmarks/gpu_diagnostics.sh ncu 2>&1 | tee -a "$OUT/diagnostics.txt"
else
  echo "no time left for Nsight Compute"
fi

# GPU_CHECK_EXTRA: a script of one run's own diagnostics (e.g. carried in gpu_wheels/).
if [[ -n "${GPU_CHECK_EXTRA:-}" ]]; then
  stage "extra: $GPU_CHECK_EXTRA"
  run_for 120 bash "$GPU_CHECK_EXTRA" 2>&1 | tee "$OUT/extra.txt" | tail -n 120
fi

REST=$(( $(left) - 15 ))
if (( REST > 30 )); then
  stage "the rest of the tests ($REST s left)"
  # In 8 pytest-xdist workers where it is installed: fast, and a crashing test is reported as
  # one failure instead of ending the run.
  XDIST=(); "$PY" -c "import xdist" 2> /dev/null && XDIST=(-n 8)
  run_for "$REST" "$PY" -m pytest -q "${XDIST[@]}" -p no:cacheprovider tests \
    --ignore=tests/test_cuda.py 2>&1 | tee "$OUT/pytest-all.txt" | tail -n 25
  echo "tests exit status: ${PIPESTATUS[0]} ($(elapsed) s)"
else
  echo "no time left for the rest of the tests"
fi

stage "summary after $(elapsed) s"
echo "build exit status:      $BUILD_RC"
echo "wrong-argument calls:   $(grep -E "^(cpu|cuda): " "$OUT/diagnostics.txt" 2> /dev/null | paste -sd ";" -)"
echo "tests/test_cuda.py:     exit status $CUDA_TEST_RC: $(tail -n 1 "$OUT/pytest-cuda.txt" 2> /dev/null)"
echo "benchmark:              exit status $BENCH_RC"
echo "G1 kernels (registers): $(grep -E "lif_(forward|backward)_kernel<float, \(SpikeKind\)2, \(ResetKind\)0, false, false, false>" "$OUT/diagnostics.txt" 2> /dev/null | awk '{print $2 " regs, " $5 " waves"}' | tr '\n' ';')"
for md in "$OUT"/gpu-*.md; do [[ -f "$md" ]] && head -n 60 "$md"; done
sleep 1  # let tee flush the log
if (( CUDA_TEST_RC != 0 )); then exit "$CUDA_TEST_RC"; fi
exit "$BENCH_RC"
