#!/usr/bin/env python
"""Host cost of a tiny layer call on the CPU: a tiny IAF (B2 T4 N8) forward+backward against a tiny
``nn.Linear`` forward+backward in the same process, median and 90th percentile, optionally with
busy processes beside it (more runnable threads than cores, as with data-loader workers or a
second job: a call that enters a parallel region then waits for descheduled OpenMP threads).

Usage (repository root)::

    python benchmarks/bench_tiny_calls.py [--threads 2] [--calls 2000] [--busy 3]

Each call: a fresh state, a clone of the input that requires grad, the layer, ``.sum().backward()``.
The IAF is timed twice (before and after the Linear), so drift shows.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's sinabs_fast

import sinabs_fast  # noqa: E402
import sinabs_fast.layers as sl  # noqa: E402

B, T, N = 2, 4, 8


def timings(step, calls: int, warmup: int = 300) -> tuple[float, float]:
    """(median, 90th percentile) of `calls` calls, in microseconds."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        step()
        times.append((time.perf_counter_ns() - start) / 1e3)
    times.sort()
    return statistics.median(times), times[int(0.9 * len(times))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--busy", type=int, default=0, help="busy processes to run beside it")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    iaf, x = sl.IAF(), torch.rand(B, T, N) * 2
    linear, x_linear = nn.Linear(N, N), torch.rand(B * T, N)

    def iaf_step():
        iaf.reset_states()
        iaf(x.clone().requires_grad_()).sum().backward()

    def linear_step():
        linear(x_linear.clone().requires_grad_()).sum().backward()

    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        rows = [(name, timings(step, args.calls))
                for name, step in (("IAF", iaf_step), ("Linear", linear_step), ("IAF", iaf_step))]
    finally:
        for proc in busy:
            proc.kill()
    print(f"sinabs_fast {sinabs_fast.__file__}; {args.threads} threads, {args.busy} busy "
          f"processes, {args.calls} calls; B{B} T{T} N{N} forward+backward")
    for name, (median, p90) in rows:
        print(f"{name:7s} median {median:9.1f} us   p90 {p90:9.1f} us")
    (_, (lin_med, lin_p90)), (_, (iaf_med, iaf_p90)) = rows[1], rows[2]
    print(f"IAF / Linear: median {iaf_med / lin_med:.2f}x, p90 {iaf_p90 / lin_p90:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
