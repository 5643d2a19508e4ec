#!/usr/bin/env python
"""A time-major input view against a contiguous input, on the CPU: IAF and LIF at C1 (T=500,
B=16, N=512), inference and forward+backward, medians of interleaved calls in one process.

Usage (repository root)::

    python benchmarks/bench_layouts.py [--threads 2] [--reps 15] [--shape 500 16 512]

The time-major input is ``x_tbn.transpose(0, 1)`` of a contiguous (T, B, N) leaf; the contiguous
one is a (B, T, N) leaf. Forward+backward: the layer, then ``backward`` of a fixed random output
gradient into the leaf (its ``.grad`` takes the leaf's layout). Each call starts from fresh states.
The ratio column is time-major over contiguous.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's sinabs_fast

import sinabs_fast.layers as sl  # noqa: E402

LAYERS: Dict[str, Callable[[], torch.nn.Module]] = {
    "IAF": lambda: sl.IAF(),
    "LIF": lambda: sl.LIF(tau_mem=20.0),
}


def make_calls(layer: torch.nn.Module, T: int, B: int, N: int) -> Dict[str, Callable[[], None]]:
    """(layout, mode) -> one timed call."""
    gen = torch.Generator().manual_seed(0)
    x_btn = (torch.rand(B, T, N, generator=gen) * 0.3).requires_grad_(True)
    x_tbn = x_btn.detach().transpose(0, 1).contiguous().requires_grad_(True)
    g_out = torch.rand(B, T, N, generator=gen)
    inputs = {"contiguous": (x_btn, lambda: x_btn), "time-major": (x_tbn, lambda: x_tbn.transpose(0, 1))}
    calls = {}
    for layout, (leaf, view) in inputs.items():
        def infer(view=view):
            layer.reset_states()
            with torch.no_grad():
                layer(view())

        def fwd_bwd(leaf=leaf, view=view):
            layer.reset_states()
            leaf.grad = None
            layer(view()).backward(g_out)

        calls[(layout, "inference")] = infer
        calls[(layout, "fwd+bwd")] = fwd_bwd
    return calls


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--reps", type=int, default=15, help="timed rounds (each times every call)")
    p.add_argument("--shape", type=int, nargs=3, default=(500, 16, 512), metavar=("T", "B", "N"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    T, B, N = args.shape
    print(f"T={T} B={B} N={N}, {torch.get_num_threads()} threads, {args.reps} rounds, medians (ms)")
    print(f"{'layer':6} {'mode':10} {'contiguous':>11} {'time-major':>11} {'ratio':>6}")
    for name, make in LAYERS.items():
        calls = make_calls(make(), T, B, N)
        times: Dict[tuple, List[float]] = {key: [] for key in calls}
        for call in calls.values():  # warm-up
            call()
        for _ in range(args.reps):
            for key, call in calls.items():  # interleaved: drift hits every call alike
                start = time.perf_counter()
                call()
                times[key].append((time.perf_counter() - start) * 1e3)
        for mode in ("inference", "fwd+bwd"):
            c = statistics.median(times[("contiguous", mode)])
            t = statistics.median(times[("time-major", mode)])
            print(f"{name:6} {mode:10} {c:11.2f} {t:11.2f} {t / c:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
