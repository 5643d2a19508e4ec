#!/usr/bin/env python
"""Tells which build setting makes a C++ error from an op's CPU kernel crash instead of reaching
Python, when the extension's own error calls do (benchmarks/gpu_diagnostics.sh runs it then).

It builds a tiny op library once per variant, each in its own process, with the extension's
flags one at a time: torch's default standard (C++17 before torch 2.12, C++20 after), the other
standard, -O3 -fopenmp, and a target_clones function on the throwing path; each op raises from
TORCH_CHECK, the first directly, the second from inside at::parallel_for. It prints one line per
variant: both errors reached Python, or the exit status (a negative one is the signal).

Usage: python benchmarks/exception_probe.py   (about a minute: four small builds in parallel)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

SOURCE = r"""
#include <ATen/Parallel.h>
#include <torch/library.h>

#if defined(PROBE_CLONES) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
int64_t probe_width(int64_t n) { return n * 2; }

at::Tensor probe_direct(const at::Tensor& x) {
  TORCH_CHECK(probe_width(x.dim()) == 6, "probe: x must be 3-d, got ", x.sizes());
  return x;
}

at::Tensor probe_parallel(const at::Tensor& x) {
  at::parallel_for(0, 64, 1, [&](int64_t, int64_t) {
    TORCH_CHECK(probe_width(x.dim()) == 6, "probe: x must be 3-d, got ", x.sizes());
  });
  return x;
}

TORCH_LIBRARY(PROBE_NS, m) {
  m.def("direct(Tensor x) -> Tensor");
  m.def("parallel(Tensor x) -> Tensor");
}
TORCH_LIBRARY_IMPL(PROBE_NS, CPU, m) {
  m.impl("direct", &probe_direct);
  m.impl("parallel", &probe_parallel);
}
"""

def variants() -> dict[str, list[str]]:
    import torch

    major, minor = (int(v) for v in torch.__version__.split(".")[:2])
    default_std = "c++20" if (major, minor) >= (2, 12) else "c++17"
    other_std = "c++17" if default_std == "c++20" else "c++20"
    ours = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-fopenmp"]
    return {
        f"plain (-std={default_std})": [],
        f"-std={other_std}": [f"-std={other_std}"],
        "-O3 -fopenmp and the extension's math flags": ours,
        "those and a target_clones function": ours + ["-DPROBE_CLONES"],
    }


def build_and_call(index: int, work: str) -> None:
    """In a process of its own: build variant `index`, then call its ops (a crash ends only it)."""
    import torch
    from torch.utils.cpp_extension import load_inline

    flags = list(variants().values())[index]
    ns = f"sf_probe{index}"
    build = os.path.join(work, ns)
    os.makedirs(build, exist_ok=True)
    load_inline(ns, cpp_sources=[f"#define PROBE_NS {ns}\n" + SOURCE], extra_cflags=flags,
                extra_ldflags=["-fopenmp"] if "-fopenmp" in flags else [], build_directory=build,
                is_python_module=False, verbose=False)
    ops = getattr(torch.ops, ns)
    for name in ("direct", "parallel"):
        print(f"{name}: ", end="", flush=True)
        try:
            getattr(ops, name)(torch.zeros(2))
            print("returned (the check is missing)", end="; ", flush=True)
        except RuntimeError:
            print("RuntimeError", end="; ", flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--variant", type=int, help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.variant is not None:
        build_and_call(args.variant, args.work)
        return 0
    with tempfile.TemporaryDirectory() as work:
        procs = [(name, subprocess.Popen([sys.executable, __file__, "--variant", str(i), "--work",
                                          work], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True))
                 for i, name in enumerate(variants())]
        for name, proc in procs:
            out, err = proc.communicate(timeout=300)
            last = err.strip().splitlines()[-1][:200] if err.strip() else ""
            status = "" if proc.returncode == 0 else f"exit status {proc.returncode}: {last}"
            print(f"{name:48s} {out.strip()} {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
