#!/usr/bin/env bash
# Builds sinabs_fast with its CUDA kernels (no GPU needed) and smoke-tests the result.
#
# The CUDA build lives in its own virtualenv (.venv-cuda, git-ignored) with the CUDA build of
# torch, and is built as a wheel in a temporary directory, so that it never touches the CPU
# virtualenv (.venv) nor the CPU build's editable extension sinabs_fast/_C*.so. The wheel is
# installed into .venv-cuda and imported from outside the repository, so the import smoke test
# exercises the installed (CUDA-built) package, not the source tree.
#
# Without /usr/local/cuda/bin/nvcc this prints a message and exits 0.
# Environment: CUDA_HOME (default /usr/local/cuda), TORCH_CUDA_ARCH_LIST (default 8.0;8.6;9.0),
# MAX_JOBS (default 2), VENV_CUDA (default <repo>/.venv-cuda), PYTHON (default python3.11),
# KEEP_WHEEL_DIR (copy the built wheel there).
set -euo pipefail

START=$(date +%s)
report_time() { echo "build_cuda.sh: exit $1 after $(( $(date +%s) - START )) s"; }
trap 'report_time $?' EXIT

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
NVCC="$CUDA_HOME/bin/nvcc"
if [[ ! -x "$NVCC" ]]; then
  echo "build_cuda.sh: $NVCC not found; skipping the CUDA build."
  exit 0
fi
"$NVCC" --version | tail -n 2

TORCH_VERSION="2.14.1"
VENV="${VENV_CUDA:-$ROOT/.venv-cuda}"
PYTHON="${PYTHON:-python3.11}"
if ! command -v "$PYTHON" > /dev/null; then PYTHON=python3; fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "build_cuda.sh: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION' or torch.version.cuda is None)" 2> /dev/null; then
  echo "build_cuda.sh: installing torch==$TORCH_VERSION (CUDA build) into $VENV"
  "$PY" -m pip install --quiet "torch==$TORCH_VERSION" numpy ninja setuptools wheel
fi
"$PY" -m pip install --quiet numpy ninja setuptools wheel
"$PY" -c "import torch; print('build_cuda.sh: torch', torch.__version__, 'CUDA', torch.version.cuda)"

WORK="$(mktemp -d)"
trap 'rc=$?; rm -rf "$WORK"; report_time $rc' EXIT

# Build the wheel from a copy of the tracked and untracked-but-not-ignored files: pip's in-tree
# build would otherwise write build/ and *.egg-info/ into the repository next to the CPU build.
SRC="$WORK/src"
mkdir -p "$SRC"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
  tar --null -T - --ignore-failed-read -cf - 2> /dev/null) | tar -xf - -C "$SRC"
rm -f "$SRC"/sinabs_fast/_C*.so

echo "build_cuda.sh: building the wheel (TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;8.6;9.0}, MAX_JOBS=${MAX_JOBS:-2})"
(
  cd "$SRC"
  export PATH="$VENV/bin:$CUDA_HOME/bin:$PATH"
  CUDA_HOME="$CUDA_HOME" SINABS_FAST_CUDA=1 \
    TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;8.6;9.0}" MAX_JOBS="${MAX_JOBS:-2}" \
    "$PY" -m pip wheel --no-build-isolation --no-deps -w "$WORK/wheels" .
)
WHEEL="$(ls "$WORK"/wheels/sinabs_fast-*.whl)"
echo "build_cuda.sh: built $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1))"
if [[ -n "${KEEP_WHEEL_DIR:-}" ]]; then
  mkdir -p "$KEEP_WHEEL_DIR"
  cp "$WHEEL" "$KEEP_WHEEL_DIR"/
fi
"$PY" -m pip install --quiet --no-deps --force-reinstall "$WHEEL"

# Smoke test from outside the repository, so that the installed package is imported. The CUDA
# kernels must be registered, and the CPU path must work without a GPU.
cd "$WORK"
ROOT_DIR="$ROOT" "$PY" - << 'PY'
import os

import torch

import sinabs_fast

assert not sinabs_fast.__file__.startswith(os.environ["ROOT_DIR"] + "/sinabs_fast"), sinabs_fast.__file__
print("build_cuda.sh: imported", sinabs_fast.__file__)
print("build_cuda.sh: op", torch.ops.sinabs_fast.lif_forward)
for op in ("lif", "alif", "lif_recurrent", "alif_recurrent"):
    for key in ("CPU", "CUDA"):
        for name in (f"{op}_forward", f"{op}_backward"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"sinabs_fast::{name}", key), (
                name, key)
print("build_cuda.sh: CPU and CUDA kernels registered for the LIF and ALIF ops and their recurrent ones")

B, T, N = 2, 5, 7
torch.manual_seed(0)
x = torch.rand(B, T, N) * 2
v0 = torch.zeros(B, N)
alpha = torch.full((N,), 0.9)
thr = torch.tensor(1.0)
# MultiSpike and MembraneSubtract, the wrapper's defaults.
spikes, v_hat, _, v_mem, _, counts, _ = sinabs_fast.ops.lif_forward(x, v0, None, alpha, None, thr, thr)
# The same recurrence, step by step in torch (MultiSpike, MembraneSubtract).
v = v0.clone()
for t in range(T):
    v = alpha * v + x[:, t]
    assert torch.equal(v_hat[:, t], v), t
    s = (v > 0).float() * torch.trunc(v / thr)
    assert torch.equal(spikes[:, t], s), t
    v = v - s * thr
assert torch.equal(v_mem, v) and torch.equal(counts, spikes.sum(1))
print("build_cuda.sh: CPU forward through the CUDA-built package OK; cuda available:",
      torch.cuda.is_available())
PY
