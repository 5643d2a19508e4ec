#!/usr/bin/env bash
# Diagnostics for a GPU run, as benchmarks/gpu_check.sh's extra stage:
#
#   run(command="GPU_CHECK_EXTRA=benchmarks/gpu_diagnostics.sh bash benchmarks/gpu_check.sh",
#       carry=["gpu_wheels"], timeout_s=600)
#
# It runs on the GPU machine after the benchmark, with sinabs_fast built in place and on
# PYTHONPATH, and prints three things (benchmarks/gpu-notes.md says why each matters):
#   1. whether C++ argument errors from the CPU ops reach Python as RuntimeError. On the GPU
#      image of 2026-11-27 they segfaulted. If they still do, the full cuda-gdb backtrace follows.
#   2. Nsight Compute's reading of the IAF G1 (T500 B16 N16384) forward and backward kernels:
#      time, DRAM throughput, registers, waves and occupancy.
#   3. the registers and spills of every float LIF kernel (cuobjdump), to compare with (2).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"

echo "--- 1. C++ argument errors from the CPU ops"
BAD_ARGS=$(cat << 'PY'
import torch, sinabs_fast
dt = torch.float64
args = [torch.rand(2, 6, 3, dtype=dt), torch.rand(5, dtype=dt), None, torch.tensor(0.9, dtype=dt),
        None, False, torch.tensor(1.0, dtype=dt), torch.tensor(1.0, dtype=dt), None, 1,
        float("inf"), 0, 0.0, 0, [0.5, 1.0], True, False]  # v_mem of the wrong shape
try:
    torch.ops.sinabs_fast.lif_forward.default(*args)
    print("no error raised: the check is missing")
except RuntimeError as e:
    print("RuntimeError, as it should:", str(e).splitlines()[0][:160])
PY
)
if timeout 60 "$PY" -c "$BAD_ARGS"; then
  echo "the error reached Python"
else
  echo "exit status $?: the full backtrace under cuda-gdb follows"
  GDB=$(command -v cuda-gdb || echo /usr/local/cuda/bin/cuda-gdb)
  timeout 90 "$GDB" -q -batch -ex run -ex bt -ex "info sharedlibrary" --args "$PY" -c "$BAD_ARGS" \
    2>&1 | grep -v "^\[New Thread\|^\[Thread" | cut -c1-300 | head -n 120
  ldd sinabs_fast/_C*.so | grep -i "stdc\|gcc_s\|gomp"
  g++ --version | head -n 1
fi

echo "--- 2. Nsight Compute: IAF G1 forward and backward kernels"
NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2> /dev/null | head -n 1)
G1=$(cat << 'PY'
import torch, sinabs_fast.layers as fl, sinabs_fast.activation as fa
x = torch.rand(16, 500, 16384, device="cuda")
layer = fl.IAF(spike_fn=fa.SingleSpike, surrogate_grad_fn=fa.SingleExponential(0.5, 0.5)).cuda()
for _ in range(2):
    layer.reset_states()
    xi = x.clone().requires_grad_()
    out = layer(xi)
    out.backward(torch.ones_like(out))
torch.cuda.synchronize()
PY
)
if [[ -n "$NCU" ]]; then
  timeout 120 "$NCU" --clock-control none -k regex:lif_ --launch-skip 2 --launch-count 2 \
    --section SpeedOfLight --section Occupancy --section LaunchStats "$PY" -c "$G1" 2>&1 |
    grep -E "lif_|Duration|DRAM Throughput|Memory Throughput|Registers Per|Achieved Occ|Theoretical Occ|Waves Per SM|Block Limit Reg" |
    cut -c1-160
else
  echo "ncu not found"
fi

echo "--- 3. registers and spills of the float LIF kernels"
OBJ=$(ls build/temp.*/csrc/cuda/lif_cuda.o 2> /dev/null | head -n 1)
if [[ -n "$OBJ" ]] && command -v cuobjdump > /dev/null; then
  cuobjdump --dump-resource-usage "$OBJ" | grep -A1 "Function .*lif_.*kernelIf" |
    grep -oE "lif_(forward|backward)_kernelIfLNS_9SpikeKindE[0-9]ELNS_9ResetKindE[0-9]ELb[01]ELb[01]ELb[01]|REG:[0-9]+|STACK:[0-9]+" |
    paste - - - | sort | uniq | head -n 80
else
  echo "no object file or no cuobjdump"
fi
