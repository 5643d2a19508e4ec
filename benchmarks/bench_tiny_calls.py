#!/usr/bin/env python
"""Host cost of a tiny layer call on the CPU (issue 16's host-cost targets): a tiny IAF (B2 T4 N8)
forward with grad, backward, inference and forward+backward, the forward+backward of a tiny
``nn.Linear`` in the same process, and a layer called one time step at a time (B2 T1 N8, with
grad) against sinabs' IAF called the same way. Medians and 90th percentiles, optionally with busy
processes beside it (more runnable threads than cores, as with data-loader workers or a second
job: a call that enters a parallel region then waits for descheduled OpenMP threads).

Usage (repository root)::

    python benchmarks/bench_tiny_calls.py [--threads 1] [--calls 2000] [--busy 3]

:func:`host_cost_rows` returns the same measurements as rows of the benchmark result format
(``sinabs_fast/bench/results.py``). In the forward+backward rows, each call is a fresh state, a
clone of the input that requires grad, the layer, ``.sum().backward()``; the IAF is timed twice
(before and after the Linear), so drift shows.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's sinabs_fast

import sinabs_fast  # noqa: E402
import sinabs_fast.layers as sl  # noqa: E402
from sinabs_fast.bench.results import make_row  # noqa: E402

B, T, N = 2, 4, 8
STEPS = 16  # the one-step-at-a-time rows: time steps per sequence (each call timed)


def timings(step: Callable[[], Optional[float]], calls: int,
            warmup: int = 300) -> Tuple[float, float, float]:
    """(median, 90th percentile, interquartile range) of ``calls`` calls, in microseconds. A
    ``step`` that returns a number has timed its own part (in microseconds)."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        own = step()
        times.append(own if own is not None else (time.perf_counter_ns() - start) / 1e3)
    times.sort()
    q1, q3 = times[len(times) // 4], times[3 * len(times) // 4]
    return statistics.median(times), times[int(0.9 * len(times))], q3 - q1


def tiny_calls() -> Dict[str, Callable[[], Optional[float]]]:
    """Each measured call by name: ``iaf_forward_grad``, ``iaf_backward`` (times only the
    backward), ``iaf_inference``, ``iaf_forward_backward``, ``linear_forward_backward``,
    ``iaf_step`` (one B2 T1 N8 call with grad, per call of a sequence) and, when sinabs is
    installed, ``sinabs_iaf_step``."""
    torch.manual_seed(0)
    iaf, x = sl.IAF(), torch.rand(B, T, N) * 2
    x_grad = x.clone().requires_grad_()
    linear, x_linear = nn.Linear(N, N), torch.rand(B * T, N)
    steps = torch.rand(STEPS, B, 1, N).requires_grad_()

    def forward_grad():
        iaf.reset_states()
        iaf(x_grad)

    def backward():
        iaf.reset_states()
        loss = iaf(x_grad).sum()
        start = time.perf_counter_ns()
        loss.backward()
        return (time.perf_counter_ns() - start) / 1e3

    def inference():
        iaf.reset_states()
        with torch.no_grad():
            iaf(x)

    def forward_backward():
        iaf.reset_states()
        iaf(x.clone().requires_grad_()).sum().backward()

    def linear_forward_backward():
        linear(x_linear.clone().requires_grad_()).sum().backward()

    def per_step(layer: nn.Module) -> Callable[[], float]:
        # One timed call per sample (a sample of a whole sequence would, on a loaded machine,
        # often include a time slice lost to another process); the state is reset, untimed,
        # every STEPS calls.
        position = [0]

        def one_step():
            t = position[0]
            if t == 0:
                layer.reset_states()
            position[0] = (t + 1) % STEPS
            start = time.perf_counter_ns()
            layer(steps[t])
            return (time.perf_counter_ns() - start) / 1e3
        return one_step

    calls = dict(iaf_forward_grad=forward_grad, iaf_backward=backward, iaf_inference=inference,
                 iaf_forward_backward=forward_backward,
                 linear_forward_backward=linear_forward_backward, iaf_step=per_step(sl.IAF()))
    try:
        import sinabs.layers
    except ImportError:
        return calls
    calls["sinabs_iaf_step"] = per_step(sinabs.layers.IAF())
    return calls


_ROWS = {  # name: (impl, layer, shape, mode)
    "iaf_forward_grad": ("sinabs_fast", "IAF", "B2T4N8", "host forward with grad"),
    "iaf_backward": ("sinabs_fast", "IAF", "B2T4N8", "host backward"),
    "iaf_inference": ("sinabs_fast", "IAF", "B2T4N8", "host inference"),
    "iaf_forward_backward": ("sinabs_fast", "IAF", "B2T4N8", "host forward+backward"),
    "linear_forward_backward": ("torch", "Linear", "B2T4N8", "host forward+backward"),
    "iaf_step": ("sinabs_fast", "IAF", "B2T1N8", "host per step with grad"),
    "sinabs_iaf_step": ("sinabs", "IAF", "B2T1N8", "host per step with grad"),
}


def host_cost_rows(calls: int = 2000, threads: int = 1) -> List[dict]:
    """The host-cost rows (CPU, float32) in the benchmark result format: ``ms`` is the median of
    ``calls`` calls, ``iqr_ms`` their interquartile range."""
    torch.set_num_threads(threads)
    rows = []
    for name, step in tiny_calls().items():
        median, _, iqr = timings(step, calls)
        impl, layer, shape, mode = _ROWS[name]
        rows.append(make_row(impl, layer, shape, mode, "float32", median / 1e3, iqr / 1e3))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--busy", type=int, default=0, help="busy processes to run beside it")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    calls = tiny_calls()
    order = ["iaf_forward_backward", "linear_forward_backward", "iaf_forward_backward",
             "iaf_forward_grad", "iaf_backward", "iaf_inference", "iaf_step", "sinabs_iaf_step"]
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        rows = [(name, timings(calls[name], args.calls)) for name in order if name in calls]
    finally:
        for proc in busy:
            proc.kill()
    print(f"sinabs_fast {sinabs_fast.__file__}; {args.threads} threads, {args.busy} busy "
          f"processes, {args.calls} calls; B{B} T{T} N{N} (per step: B{B} T1 N{N})")
    for name, (median, p90, _) in rows:
        print(f"{name:24s} median {median:9.1f} us   p90 {p90:9.1f} us")
    (_, (lin_med, lin_p90, _)), (_, (iaf_med, iaf_p90, _)) = rows[1], rows[2]
    print(f"IAF / Linear forward+backward: median {iaf_med / lin_med:.2f}x, "
          f"p90 {iaf_p90 / lin_p90:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
