#!/usr/bin/env python
"""Registers and stack (spill) bytes of the CUDA kernels in compiled object files, one line per
kernel, from ``cuobjdump --dump-resource-usage``; with the resident blocks of 256 threads per SM
that the registers allow, and the waves a G1 grid (B * N = 262144 threads) then takes on an H200
(132 SMs).

Usage (after an in-place CUDA build; benchmarks/gpu_diagnostics.sh runs it)::

    python benchmarks/kernel_resources.py build/temp.*/csrc/cuda/*.o [--dtype float] [--all]

``cuobjdump`` is taken from PATH, else from $CUDA_HOME/bin, else from Triton's copy. Without
``--all`` only the sm_90 code is listed.
"""

from __future__ import annotations

import argparse
import glob
import math
import os
import re
import shutil
import subprocess
import sys

THREADS, SM_REGS, SM_THREADS, H200_SMS, G1_THREADS = 256, 65536, 2048, 132, 16 * 16384


def find_cuobjdump() -> str | None:
    found = shutil.which("cuobjdump")
    if found:
        return found
    cuda = os.path.join(os.environ.get("CUDA_HOME", "/usr/local/cuda"), "bin", "cuobjdump")
    if os.access(cuda, os.X_OK):
        return cuda
    try:
        import triton

        bundled = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin",
                               "cuobjdump")
        return bundled if os.access(bundled, os.X_OK) else None
    except ImportError:
        return None


def demangle(names: list[str]) -> list[str]:
    """Short readable kernel names: kernel<type, spike, reset, flags...>."""
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True,
                             check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return names
    short = []
    for name in out:
        name = re.sub(r"sinabs_fast::|\(anonymous namespace\)::|SpikeKind::|ResetKind::", "", name)
        name = re.sub(r"^void ", "", name)
        short.append(re.sub(r"\((\w+)?Args<.*$", "", name).strip())
    return short


def resources(cuobjdump: str, path: str, all_archs: bool) -> list[tuple[str, str, int, int]]:
    """(arch, mangled name, registers, stack bytes) per kernel."""
    text = subprocess.run([cuobjdump, "--dump-resource-usage", path], capture_output=True,
                          text=True, check=True).stdout
    rows, arch, name = [], None, None
    for line in text.splitlines():
        if m := re.match(r"\s*arch = (\S+)", line):
            arch = m.group(1)
        elif m := re.match(r"\s*Function (\S+):", line):
            name = m.group(1)
        elif (m := re.search(r"REG:(\d+) STACK:(\d+)", line)) and name:
            if all_archs or arch == "sm_90":
                rows.append((arch, name, int(m.group(1)), int(m.group(2))))
            name = None
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("objects", nargs="*", help="object files (default: build/temp.*/csrc/cuda/*.o)")
    p.add_argument("--dtype", default="float", help="kernel type argument to list ('' for all)")
    p.add_argument("--all", action="store_true", help="every architecture, not only sm_90")
    args = p.parse_args(argv)
    objects = args.objects or sorted(glob.glob("build/temp.*/csrc/cuda/*.o"))
    cuobjdump = find_cuobjdump()
    if not objects or cuobjdump is None:
        print(f"kernel_resources: nothing to read (objects: {objects}, cuobjdump: {cuobjdump})")
        return 0
    print(f"{'arch':6s} {'regs':>4s} {'stack':>5s} {'blocks/SM':>9s} {'G1 waves':>8s}  kernel")
    for path in objects:
        rows = resources(cuobjdump, path, args.all)
        for (arch, _, regs, stack), short in zip(rows, demangle([r[1] for r in rows])):
            if args.dtype and f"<{args.dtype}," not in short:
                continue
            # Registers are allocated per warp in units of 256 (8 per thread).
            per_thread = max(8, math.ceil(regs / 8) * 8)
            blocks = min(SM_REGS // (per_thread * THREADS), SM_THREADS // THREADS)
            waves = G1_THREADS / (blocks * THREADS * H200_SMS)
            print(f"{arch:6s} {regs:4d} {stack:5d} {blocks:9d} {waves:8.2f}  {short}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
