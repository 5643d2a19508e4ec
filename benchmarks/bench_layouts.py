#!/usr/bin/env python
"""Input layouts against a contiguous input, on the CPU: a time-major view into IAF and LIF (read
in place) and a channels-last input into IAFSqueeze (still copied), at C1 (T=500, B=16, N=512),
inference and forward+backward, medians of interleaved calls in one process.

Usage (repository root)::

    python benchmarks/bench_layouts.py [--threads 2] [--reps 15] [--shape 500 16 512]

The time-major input is ``x_tbn.transpose(0, 1)`` of a contiguous (T, B, N) leaf; the
channels-last one a (B*T, 8, H, W) leaf in ``torch.channels_last`` (N = 8 * H * W, H = W); the
contiguous inputs are leaves of the layer's own shape. Forward+backward: the layer, then
``backward`` of a fixed random output gradient into the leaf. Each call starts from fresh states.
The ratio column is the layout's time over the contiguous input's.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's sinabs_fast

import sinabs_fast.layers as sl  # noqa: E402

# A layout: (the leaf, the layer's input made from it).
Layout = Tuple[torch.Tensor, Callable[[], torch.Tensor]]


def time_major(T: int, B: int, N: int) -> Tuple[Layout, Layout]:
    """(contiguous, time-major) inputs (B, T, N) with the same values."""
    x_btn = (torch.rand(B, T, N) * 0.3).requires_grad_(True)
    x_tbn = x_btn.detach().transpose(0, 1).contiguous().requires_grad_(True)
    return (x_btn, lambda: x_btn), (x_tbn, lambda: x_tbn.transpose(0, 1))


def channels_last(T: int, B: int, N: int) -> Tuple[Layout, Layout]:
    """(contiguous, channels-last) squeezed inputs (B*T, 8, H, W) with the same values."""
    side = math.isqrt(N // 8)
    x = (torch.rand(B * T, 8, side, side) * 0.3).requires_grad_(True)
    x_cl = x.detach().to(memory_format=torch.channels_last).requires_grad_(True)
    return (x, lambda: x), (x_cl, lambda: x_cl)


# name -> (the layer, the inputs, the other layout's name)
CASES: Dict[str, Tuple[Callable[[int], torch.nn.Module], Callable, str]] = {
    "IAF": (lambda B: sl.IAF(), time_major, "time-major"),
    "LIF": (lambda B: sl.LIF(tau_mem=20.0), time_major, "time-major"),
    "IAFSqueeze": (lambda B: sl.IAFSqueeze(batch_size=B), channels_last, "channels-last"),
}


def make_calls(layer: torch.nn.Module, layouts: Tuple[Layout, Layout]) -> Dict[tuple, Callable]:
    """(layout index, mode) -> one timed call."""
    calls = {}
    g_out = None
    for index, (leaf, make_input) in enumerate(layouts):
        if g_out is None:
            with torch.no_grad():
                g_out = torch.rand(layer(make_input()).shape)

        def infer(make_input=make_input):
            layer.reset_states()
            with torch.no_grad():
                layer(make_input())

        def fwd_bwd(leaf=leaf, make_input=make_input):
            layer.reset_states()
            leaf.grad = None
            layer(make_input()).backward(g_out)

        calls[(index, "inference")] = infer
        calls[(index, "fwd+bwd")] = fwd_bwd
    return calls


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--reps", type=int, default=15, help="timed rounds (each times every call)")
    p.add_argument("--shape", type=int, nargs=3, default=(500, 16, 512), metavar=("T", "B", "N"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    T, B, N = args.shape
    torch.manual_seed(0)
    print(f"T={T} B={B} N={N}, {torch.get_num_threads()} threads, {args.reps} rounds, medians (ms)")
    print(f"{'layer':11} {'layout':14} {'mode':10} {'contiguous':>11} {'layout':>8} {'ratio':>6}")
    for name, (make_layer, make_layouts, layout_name) in CASES.items():
        layer = make_layer(B)
        calls = make_calls(layer, make_layouts(T, B, N))
        times: Dict[tuple, List[float]] = {key: [] for key in calls}
        for call in calls.values():  # warm-up
            call()
        for _ in range(args.reps):
            for key, call in calls.items():  # interleaved: drift hits every call alike
                start = time.perf_counter()
                call()
                times[key].append((time.perf_counter() - start) * 1e3)
        for mode in ("inference", "fwd+bwd"):
            c = statistics.median(times[(0, mode)])
            t = statistics.median(times[(1, mode)])
            print(f"{name:11} {layout_name:14} {mode:10} {c:11.2f} {t:8.2f} {t / c:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
