#!/usr/bin/env bash
# Downloads, on the development machine (network to PyPI), what benchmarks/gpu_check.sh installs
# on the GPU machine, which has no network and lacks these packages (it has torch with CUDA,
# triton, numpy, h5py, matplotlib, setuptools, ...):
#
#   sinabs==3.1.3 + nir + nirtorch (the versions sinabs' requirements resolve to) + pbr
#     (sinabs/__init__.py imports pbr.version); the test oracle and a benchmark peer
#   spikingjelly==2.0.0 + loguru                  the SpikingJelly peer (Triton backend there)
#   snntorch                                      the snnTorch peer (pure Python, no deps)
#   norse==1.1.0 (a source archive on PyPI, built into a pure-Python wheel here)   the Norse peer
#   sinabs-exodus (source archive only)           built on the GPU machine by gpu_check.sh
#
# Everything goes into the git-ignored folder gpu_wheels/ (carried to the device with
# `carry: ["gpu_wheels"]`; 64 MiB limit for the whole working tree, so the total is printed).
# Pure-Python wheels only (py3-none-any), so the Python version there (3.12) does not matter.
# Afterwards it checks, by installing the wheels into a scratch folder and importing the peers
# from there, that every module they import at runtime is either among the wheels or among the
# GPU machine's preinstalled packages (/work/.library/device/KINDS.md).
#
# Usage (repo root):  bash benchmarks/prepare_gpu_wheels.sh    [PYTHON=.venv/bin/python]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
DEST="$ROOT/gpu_wheels"

git check-ignore -q gpu_wheels/ || { echo "gpu_wheels/ is not git-ignored; add it to .gitignore"; exit 1; }
rm -rf "$DEST"
mkdir -p "$DEST"

# name==version, pinned to what the CPU virtualenv resolved (sinabs 3.1.3's own requirements).
PINNED=(
  "sinabs==3.1.3"
  "nir==1.0.4"
  "nirtorch==2.0.2"
  "pbr==7.1.3"
  "spikingjelly==2.0.0"
  "loguru==0.7.3"
  "snntorch"
)
DL=("$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12
    --implementation py --abi none --platform any -d "$DEST")
for req in "${PINNED[@]}"; do
  echo "prepare_gpu_wheels: $req"
  "${DL[@]}" "$req"
done

echo "prepare_gpu_wheels: norse==1.1.0 (wheel built from its source archive)"
"$PY" -m pip wheel --quiet --no-deps -w "$DEST" "norse==1.1.0"
# sinabs-exodus ships only as a source archive. `pip download` runs its setup.py for the metadata,
# which imports torch and fails with a CPU build of torch ("CUDA_HOME environment variable is not
# set"), so it runs with the CUDA build of torch of .ci/build_cuda.sh (.venv-cuda) when there is
# one, and CUDA_HOME pointing at a toolkit.
echo "prepare_gpu_wheels: sinabs-exodus (source archive)"
EXO_PY="${EXODUS_PYTHON:-$ROOT/.venv-cuda/bin/python}"
[[ -x "$EXO_PY" ]] || EXO_PY="$PY"
CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}" "$EXO_PY" -m pip download --quiet --no-deps \
  --no-binary :all: --no-build-isolation -d "$DEST" "sinabs-exodus==2.0.0" \
  2> "$DEST/.exodus-download.err" || true
if ls "$DEST"/sinabs[-_]exodus-*.tar.gz > /dev/null 2>&1; then
  echo "prepare_gpu_wheels: got $(basename "$DEST"/sinabs[-_]exodus-*.tar.gz)"
  rm -f "$DEST/.exodus-download.err"
else
  echo "prepare_gpu_wheels: WARNING: no sinabs-exodus source archive:"
  tail -n 5 "$DEST/.exodus-download.err" || true
fi

echo
ls -l "$DEST"
TOTAL=$(du -sb "$DEST" | cut -f1)
echo "prepare_gpu_wheels: total $(( TOTAL / 1024 )) KiB in gpu_wheels/ (carry limit: 64 MiB for the whole tree)"
if (( TOTAL > 32 * 1024 * 1024 )); then
  echo "prepare_gpu_wheels: ERROR: more than 32 MiB"; exit 1
fi

# Check: install into a scratch folder exactly as gpu_check.sh does, import the peers from there,
# and list the distributions their imports touch that the GPU machine lacks.
SITE="$(mktemp -d)"
trap 'rm -rf "$SITE"' EXIT
"$PY" -m pip install --quiet --no-index --no-deps --no-compile --target "$SITE" "$DEST"/*.whl
PYTHONPATH="$SITE" "$PY" - "$SITE" << 'PY'
import importlib.metadata as md
import sys

site = sys.argv[1]
import sinabs, sinabs.layers, sinabs.activation  # noqa: E401,F401
import snntorch  # noqa: F401
from snntorch import surrogate  # noqa: F401
from spikingjelly.activation_based import neuron, surrogate as sj_surrogate  # noqa: F401
import norse.torch  # noqa: F401
for mod in ("sinabs", "snntorch", "spikingjelly", "norse", "nir", "nirtorch", "pbr", "loguru"):
    path = sys.modules[mod].__file__
    assert path.startswith(site), f"{mod} imported from {path}, not from the wheels"

# What the GPU machine already has (KINDS.md, 2026-11-17), normalised names.
PRESENT = set("""
absl-py accelerate certifi click cloudpickle contourpy cycler filelock fonttools fsspec h5py
jinja2 kiwisolver markupsafe matplotlib mpmath networkx numpy packaging pandas pillow pyparsing
python-dateutil pyyaml requests charset-normalizer idna urllib3 scipy setuptools six sympy
tensorboard torch torchaudio
torchvision tqdm triton typing-extensions wheel tzdata pytz
""".split())
WHEELS = {"sinabs", "nir", "nirtorch", "pbr", "spikingjelly", "loguru", "snntorch", "norse"}
norm = lambda s: s.lower().replace("_", "-")  # noqa: E731
dists = md.packages_distributions()
tops = {m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)
missing = set()
for top in sorted(tops):
    if top.startswith("_"):
        continue
    for dist in dists.get(top, []):
        if norm(dist) not in PRESENT | WHEELS:
            missing.add(dist)
print("prepare_gpu_wheels: imports OK from the wheels; versions:",
      {d: md.version(d) for d in ("sinabs", "spikingjelly", "snntorch", "norse", "nir", "nirtorch")})
if missing:
    print("prepare_gpu_wheels: ERROR: imported distributions missing on the GPU machine:",
          sorted(missing))
    sys.exit(1)
print("prepare_gpu_wheels: every imported distribution is among the wheels or on the GPU machine")
PY
