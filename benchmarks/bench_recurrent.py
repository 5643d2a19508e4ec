#!/usr/bin/env python
"""CPU benchmark of LIFRecurrent: sinabs_fast vs sinabs 3.1.3, in one process.

Run (from the repository root, with the project's virtualenv active)::

    python benchmarks/bench_recurrent.py                    # B8 T100 N256, 2 threads
    python benchmarks/bench_recurrent.py --input-scales 4   # one firing regime only
    python benchmarks/bench_recurrent.py --shapes 8,100,256 16,100,512 --reps 21
    python benchmarks/bench_recurrent.py --profile          # torch.profiler table of ours
    python benchmarks/bench_recurrent.py --json benchmarks/results/cpu-lif-recurrent-2core.json

Layer: ``LIFRecurrent(tau_mem=20.0, rec_connect=nn.Sequential(nn.Flatten(), nn.Linear(N, N)))``,
both libraries with the same weights. Input ``torch.rand(B, T, N) * scale`` (float32), for each
of ``--input-scales``: 0.5 (the default's first) never reaches the threshold, so no neuron
spikes; 4.0 makes about 7% of the spikes nonzero. The spike rate of each row is reported, since
our backward's weight gradient visits only the nonzero spikes.

Modes: ``forward`` (under ``torch.no_grad()``) and ``forward+backward`` (input with
``requires_grad=True``, then ``out.sum().backward()``: gradients for the input, the recurrent
weights and ``tau_mem``). Before every repetition, untimed: ``reset_states()``, gradients
cleared. One warm-up call, then ``--reps`` timed repetitions per implementation, interleaved
(ours, sinabs, ours, ...) so that machine noise hits both alike; the median is reported.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn as nn


def make_layers(n: int, tau_mem: float = 20.0):
    """(ours, sinabs') LIFRecurrent with identical Flatten + Linear(n, n) recurrent weights."""
    import sinabs.layers as sl

    from sinabs_fast.layers.lif import LIFRecurrent

    rec_ours = nn.Sequential(nn.Flatten(), nn.Linear(n, n))
    rec_theirs = nn.Sequential(nn.Flatten(), nn.Linear(n, n))
    rec_theirs.load_state_dict(rec_ours.state_dict())
    return (LIFRecurrent(tau_mem=tau_mem, rec_connect=rec_ours),
            sl.LIFRecurrent(tau_mem=tau_mem, rec_connect=rec_theirs))


def _runner(layer: nn.Module, x: torch.Tensor, mode: str) -> Tuple[Callable, Callable]:
    """(prepare, run): prepare is untimed."""
    xg = x.clone().requires_grad_(mode != "forward")

    def prepare():
        layer.reset_states()
        layer.zero_grad(set_to_none=True)
        xg.grad = None

    def run():
        if mode == "forward":
            with torch.no_grad():
                layer(xg)
        else:
            layer(xg).sum().backward()

    return prepare, run


def bench_recurrent(shapes: List[Tuple[int, int, int]], reps: int = 11, threads: int = 2,
                    modes=("forward", "forward+backward"), tau_mem: float = 20.0,
                    input_scales=(0.5, 4.0), seed: int = 0) -> List[Dict]:
    """Median ms of ours and sinabs' LIFRecurrent per (shape, input scale, mode), timed
    interleaved."""
    torch.set_num_threads(threads)
    rows = []
    for (b, t, n), scale in itertools.product(shapes, input_scales):
        torch.manual_seed(seed)
        ours, theirs = make_layers(n, tau_mem)
        x = torch.rand(b, t, n) * scale
        with torch.no_grad():
            ours.reset_states()
            rate = ours(x).ne(0).float().mean().item()
        for mode in modes:
            runners = {"sinabs_fast": _runner(ours, x, mode), "sinabs": _runner(theirs, x, mode)}
            times = {name: [] for name in runners}
            for name, (prepare, run) in runners.items():  # warm-up
                prepare()
                run()
            for _ in range(reps):
                for name, (prepare, run) in runners.items():
                    prepare()
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
            ms = {name: 1e3 * statistics.median(ts) for name, ts in times.items()}
            rows.append(dict(B=b, T=t, N=n, input_scale=scale, spike_rate=rate, mode=mode,
                             ours_ms=ms["sinabs_fast"],
                             sinabs_ms=ms["sinabs"], speedup=ms["sinabs"] / ms["sinabs_fast"]))
    return rows


def profile_ours(shape: Tuple[int, int, int], threads: int = 2, scale: float = 4.0,
                 row_limit: int = 25) -> str:
    """torch.profiler table (self CPU time) of ours, forward+backward, a few repetitions."""
    torch.set_num_threads(threads)
    b, t, n = shape
    ours, _ = make_layers(n)
    prepare, run = _runner(ours, torch.rand(b, t, n) * scale, "forward+backward")
    prepare()
    run()
    with torch.profiler.profile() as prof:
        for _ in range(3):
            prepare()
            run()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit)


def _shape(text: str) -> Tuple[int, int, int]:
    b, t, n = (int(v) for v in text.split(","))
    return b, t, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", type=_shape, default=[(8, 100, 256)],
                        help="B,T,N triples (default 8,100,256)")
    parser.add_argument("--input-scales", nargs="+", type=float, default=[0.5, 4.0],
                        help="input = rand(B, T, N) * scale, one row per scale (default 0.5 4)")
    parser.add_argument("--reps", type=int, default=11, help="timed repetitions (median)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--modes", nargs="+", default=["forward", "forward+backward"],
                        choices=["forward", "forward+backward"])
    parser.add_argument("--profile", action="store_true",
                        help="also print a torch.profiler table of ours (first shape, last "
                             "input scale)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write the rows there (e.g. benchmarks/results/...json)")
    args = parser.parse_args()

    rows = bench_recurrent(args.shapes, reps=args.reps, threads=args.threads, modes=args.modes,
                           input_scales=args.input_scales)
    print(f"LIFRecurrent(tau_mem=20, rec_connect=Flatten+Linear(N, N)), CPU float32, "
          f"{args.threads} threads, median of {args.reps}\n")
    print("| B | T | N | input | spike rate | mode | sinabs_fast ms | sinabs ms | sinabs/ours |")
    print("|---|---|---|---|---:|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['B']} | {r['T']} | {r['N']} | rand x {r['input_scale']:g} | "
              f"{100 * r['spike_rate']:.1f}% | {r['mode']} | {r['ours_ms']:.2f} | "
              f"{r['sinabs_ms']:.2f} | {r['speedup']:.2f}x |")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        machine = {"torch": torch.__version__, "threads": args.threads,
                   "cpu": platform.processor() or platform.machine()}
        args.json.write_text(json.dumps({"machine": machine, "reps": args.reps, "rows": rows},
                                        indent=2) + "\n")
        print(f"\n# results written to {args.json}")
    if args.profile:
        print()
        print(profile_ours(args.shapes[0], threads=args.threads, scale=args.input_scales[-1]))


if __name__ == "__main__":
    main()
