#!/usr/bin/env bash
# Diagnostics for a GPU run; benchmarks/gpu_check.sh calls its sections at the right stages:
#
#   bash benchmarks/gpu_diagnostics.sh [errors] [registers] [ncu] [probe]   (default: the first three)
#
# It runs from the repository root with sinabs_fast built in place and on PYTHONPATH, and prints
# (benchmarks/gpu-notes.md says why each matters):
#   errors     whether every fused op called with wrong arguments raises a Python exception, on
#              CPU and on CUDA tensors (tests/op_error_cases.py in a subprocess). On the GPU image
#              of 2026-11-27 a C++ argument error from the CPU ops segfaulted. The section prints
#              the C++ standard and ABI the extension was built with next to torch's, and if a
#              call still crashes, the last case and a gdb backtrace of it.
#   registers  registers, stack (spill) bytes, resident blocks and G1 waves of every float
#              kernel, read from the build's object files (benchmarks/kernel_resources.py).
#   probe      which build setting makes a C++ error crash (benchmarks/exception_probe.py: four
#              tiny op libraries, torch's C++ standard or the other one, -O3 -fopenmp, a
#              target_clones function; ~1 min). gpu_check.sh runs it when `errors` saw a crash.
#   ncu        Nsight Compute's reading of the IAF G1 (T500 B16 N16384) forward and backward
#              kernels: time, DRAM throughput, registers, waves and occupancy.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-python3}"
SECTIONS=("$@")
(( ${#SECTIONS[@]} )) || SECTIONS=(errors registers ncu)

errors() {
  echo "--- errors: wrong arguments to every op must raise a Python exception"
  "$PY" - << 'PY'
import re, torch
config = torch.__config__.show()
compiler = re.search(r"CXX_COMPILER=([^,]+)", config)
print("torch", torch.__version__, "| C++11 ABI:", torch.compiled_with_cxx11_abi(),
      "| torch's compiler:", " ".join(l.strip("- ") for l in config.splitlines() if l.strip().startswith("- GCC")),
      compiler.group(1) if compiler else "")
PY
  local ninja
  ninja=$(ls build/temp.*/build.ninja 2> /dev/null | head -n 1)
  if [[ -n "$ninja" ]]; then
    echo -n "flags the extension's C++ sources were built with: "
    grep -E "^(cflags|post_cflags) =" "$ninja" |
      grep -oE "(-std=[^ ]+|-D_GLIBCXX_USE_CXX11_ABI=[01]|-fopenmp|-fvisibility=[^ ]+|-fno-exceptions)" |
      sort -u | tr '\n' ' '; echo
  fi
  local device rc
  for device in cpu cuda; do
    if [[ $device == cuda ]] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
      echo "$device: no CUDA device, skipped"; continue
    fi
    timeout 120 "$PY" tests/op_error_cases.py "$device" > "/tmp/op_error_cases_$device.txt" 2>&1
    rc=$?
    "$PY" - "$device" "$rc" "/tmp/op_error_cases_$device.txt" << 'PY'
import json, sys
device, rc, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
raised, returned, last = 0, [], None
for line in open(path):
    try:
        d = json.loads(line)
    except ValueError:
        continue
    if "error" in d:
        if d["error"] is None:
            returned.append(f'{d["op"]}: {d["arg"]} ({d["how"]})')
        else:
            raised += 1
    elif "op" in d:
        last = d
# A signal gives 128 + its number: a crash. 1 (a Python error, shown below) and 124 (timeout) fail.
state = ("OK (no crash)" if rc == 0 else f"CRASHED (exit status {rc}) at {last}" if rc > 128
         else f"FAILED (exit status {rc}) at {last}")
dtypes = [r for r in returned if r.endswith("(dtype)")]
print(f"{device}: {state}; {raised} calls raised a Python exception, {len(returned)} returned "
      f"({len(dtypes)} of them an integer parameter or gradient, converted to the compute dtype)")
for r in returned:
    if r not in dtypes:
        print(f"  returned: {r}")
PY
    if (( rc != 0 )); then
      tail -n 5 "/tmp/op_error_cases_$device.txt"
    fi
    if (( rc > 128 )); then
      echo "backtrace of that call under gdb:"
      GDB=$(command -v gdb || command -v cuda-gdb || echo /usr/local/cuda/bin/cuda-gdb)
      timeout 120 "$GDB" -q -batch -ex run -ex bt --args "$PY" tests/op_error_cases.py "$device" \
        2>&1 | grep -v "^\[New Thread\|^\[Thread\|^{" | cut -c1-300 | tail -n 60
      ldd sinabs_fast/_C*.so | grep -i "stdc\|gcc_s\|gomp"
    fi
  done
}

probe() {
  echo "--- probe: which build setting turns a C++ error into a crash"
  timeout 300 "$PY" benchmarks/exception_probe.py
}

registers() {
  echo "--- registers: float kernels (sm_90)"
  "$PY" benchmarks/kernel_resources.py
}

ncu_g1() {
  echo "--- ncu: IAF G1 forward and backward kernels"
  local NCU
  NCU=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2> /dev/null | head -n 1)
  if [[ -z "$NCU" ]]; then echo "ncu not found"; return; fi
  timeout 150 "$NCU" --clock-control none -k regex:lif_ --launch-skip 2 --launch-count 2 \
    --section SpeedOfLight --section Occupancy --section LaunchStats "$PY" -c "
import torch, sinabs_fast.layers as fl, sinabs_fast.activation as fa
x = torch.rand(16, 500, 16384, device='cuda')
layer = fl.IAF(spike_fn=fa.SingleSpike, surrogate_grad_fn=fa.SingleExponential(0.5, 0.5)).cuda()
for _ in range(2):
    layer.reset_states()
    out = layer(x.clone().requires_grad_())
    out.backward(torch.ones_like(out))
torch.cuda.synchronize()
" 2>&1 |
    grep -E "lif_|Duration|DRAM Throughput|Memory Throughput|Registers Per|Achieved Occ|Theoretical Occ|Waves Per SM|Block Limit Reg" |
    cut -c1-160
}

for section in "${SECTIONS[@]}"; do
  case "$section" in
    errors) errors ;;
    registers) registers ;;
    ncu) ncu_g1 ;;
    probe) probe ;;
    *) echo "gpu_diagnostics: unknown section $section (errors, registers, ncu, probe)"; exit 2 ;;
  esac
done
