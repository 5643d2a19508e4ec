#!/usr/bin/env python
"""Cost of counting synaptic operations during training, as a fraction of an uncounted
forward+backward: sinabs_fast's counters on sinabs_fast's layers vs sinabs' SNNAnalyzer on
sinabs' layers.

Run (from the repository root, with the project's virtualenv active)::

    python benchmarks/bench_synops.py                   # B=32, T=50 (a few minutes)
    python benchmarks/bench_synops.py --quick           # fewer repetitions
    python benchmarks/bench_synops.py --skip-sinabs     # sinabs_fast only
    python benchmarks/bench_synops.py --batch 8 --steps 20 --json /tmp/synops.json

Network: the seed network of sinabs' synops documentation (``sinabs_fast.demo.seed_network``:
FlattenTime, Conv2d/IAFSqueeze/AvgPool2d x2, Conv2d/IAFSqueeze, Flatten, Linear, IAFSqueeze,
UnflattenTime), input spikes ``rand(B, T, 1, 28, 28) < 0.3``, CPU float32.

One training step is: reset the states, zero the gradients, forward, then ``backward`` of
``out.sum()`` (uncounted), or of ``out.sum() + 1e-6 * synops`` where ``synops`` is the counter's
differentiable total (counted: the counter's hooks run in the forward, its total is read, and
the backward goes through it). Counters:

* ``SNNSynOpCounter``: ``get_total_synops()``;
* ``SNNAnalyzer``: ``get_model_statistics()["synops"]``;
* ``hooks``: ``register_synops_hooks``, then the Sequential's
  ``hook_data["total_synops_per_timestep"]``.

Each (implementation, counter) has its own copy of the network (same weights), since hooks stay
registered. Protocol: one warm-up step per row, then repetitions interleaved across the rows of
an implementation (so a slow phase of a shared machine hits all rows alike), timed with
``time.perf_counter``; at least ``--min-reps``, then until ``--budget`` seconds per row are
spent. Overhead: ``median(counted) / median(uncounted) - 1``, and (``paired``) the median over
the rounds of ``counted / uncounted - 1`` within a round, which cancels slow phases of a shared
machine better.

Output: a markdown table on stdout and a JSON file (``--json``, default
``benchmarks/results/synops.json``) with the machine description and one row per
(implementation, counter): ``median_ms``, ``min_ms``, ``reps``, ``overhead``,
``overhead_paired``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable, Dict, List

import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sinabs_fast  # noqa: E402
import sinabs_fast.layers  # noqa: E402
from sinabs_fast.demo import seed_network  # noqa: E402

UNCOUNTED = "none"


def _weights(net: nn.Module) -> dict:
    return {k: v for k, v in net.state_dict().items() if k.endswith("weight")}


def _counted_step(net: nn.Module, x: torch.Tensor, reset: Callable, read: Callable) -> Callable:
    """One training step of ``net``; ``read()`` returns the synops total, or None."""

    def step() -> None:
        reset(net)
        net.zero_grad()
        out = net(x)
        synops = read()
        loss = out.sum() if synops is None else out.sum() + 1e-6 * synops
        loss.backward()

    return step


def ours_rows(batch: int, weights: dict, x: torch.Tensor) -> Dict[str, Callable]:
    from sinabs_fast import hooks

    def net() -> nn.Module:
        model = seed_network(sinabs_fast.layers, batch)
        model.load_state_dict(weights, strict=False)
        return model

    reset = sinabs_fast.reset_states
    plain, legacy_net, analyzer_net, hooks_net = net(), net(), net(), net()
    legacy = sinabs_fast.SNNSynOpCounter(legacy_net)
    analyzer = sinabs_fast.SNNAnalyzer(analyzer_net)
    hooks.register_synops_hooks(hooks_net)
    return {
        UNCOUNTED: _counted_step(plain, x, reset, lambda: None),
        "SNNSynOpCounter": _counted_step(legacy_net, x, reset, legacy.get_total_synops),
        "SNNAnalyzer": _counted_step(
            analyzer_net, x, reset, lambda: analyzer.get_model_statistics()["synops"]),
        "hooks": _counted_step(
            hooks_net, x, reset, lambda: hooks_net.hook_data["total_synops_per_timestep"]),
    }


def sinabs_rows(batch: int, weights: dict, x: torch.Tensor) -> Dict[str, Callable]:
    import sinabs
    import sinabs.hooks
    import sinabs.layers

    def net() -> nn.Module:
        model = seed_network(sinabs.layers, batch)
        model.load_state_dict(weights, strict=False)
        return model

    reset = sinabs.reset_states
    plain, analyzer_net, hooks_net = net(), net(), net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        analyzer = sinabs.SNNAnalyzer(analyzer_net)
    sinabs.hooks.register_synops_hooks(hooks_net)
    return {
        UNCOUNTED: _counted_step(plain, x, reset, lambda: None),
        "SNNAnalyzer": _counted_step(
            analyzer_net, x, reset, lambda: analyzer.get_model_statistics()["synops"]),
        "hooks": _counted_step(
            hooks_net, x, reset, lambda: hooks_net.hook_data["total_synops_per_timestep"]),
    }


def time_interleaved(rows: Dict[str, Callable], min_reps: int, budget: float) -> Dict[str, List[float]]:
    """Milliseconds per repetition of each row, the rows taking turns."""
    for step in rows.values():
        step()  # warm-up: allocates the states
    times: Dict[str, List[float]] = {name: [] for name in rows}
    spent = 0.0
    while len(times[UNCOUNTED]) < min_reps or spent < budget * len(rows):
        for name, step in rows.items():
            start = time.perf_counter()
            step()
            elapsed = time.perf_counter() - start
            times[name].append(elapsed * 1e3)
            spent += elapsed
    return times


def machine_info(threads: int) -> dict:
    from importlib import metadata

    versions = {}
    for package in ("sinabs-fast", "sinabs", "pandas"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "versions": versions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--min-reps", type=int, default=None)
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds per row (default 15; 2 with --quick)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--skip-sinabs", action="store_true")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/synops.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    min_reps = args.min_reps or (5 if args.quick else 11)
    budget = args.budget if args.budget is not None else (2.0 if args.quick else 15.0)

    torch.manual_seed(0)
    weights = _weights(seed_network(sinabs_fast.layers, args.batch))
    x = (torch.rand(args.batch, args.steps, 1, 28, 28) < 0.3).float()
    implementations = {"sinabs_fast": ours_rows}
    if not args.skip_sinabs:
        implementations["sinabs 3.1.3"] = sinabs_rows

    results = []
    print(f"seed network, B={args.batch}, T={args.steps}, {torch.get_num_threads()} threads; "
          "ms per training step (median)\n")
    print("| implementation | counter | ms | min ms | reps | overhead | paired |\n"
          "|---|---|---|---|---|---|---|")
    for impl, build in implementations.items():
        times = time_interleaved(build(args.batch, weights, x), min_reps, budget)
        base = statistics.median(times[UNCOUNTED])
        for counter, samples in times.items():
            median = statistics.median(samples)
            overhead = median / base - 1
            paired = statistics.median(c / u - 1 for c, u in zip(samples, times[UNCOUNTED]))
            results.append({"impl": impl, "counter": counter, "median_ms": median,
                            "min_ms": min(samples), "reps": len(samples), "overhead": overhead,
                            "overhead_paired": paired})
            shown = "| |" if counter == UNCOUNTED else f"| {overhead:+.1%} | {paired:+.1%} |"
            print(f"| {impl} | {counter} | {median:.1f} | {min(samples):.1f} | {len(samples)} "
                  f"{shown}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "machine": machine_info(torch.get_num_threads()),
        "config": {"batch": args.batch, "steps": args.steps, "min_reps": min_reps,
                   "budget_s_per_row": budget, "input": "rand < 0.3"},
        "rows": results,
    }, indent=2))
    print(f"\nJSON: {args.json}")


if __name__ == "__main__":
    main()
