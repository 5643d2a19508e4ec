#!/usr/bin/env python
"""CPU benchmark of the neuron layers (IAF; LIF, ExpLeak, ALIF with --neuron): sinabs_fast vs sinabs vs
SpikingJelly (IAF only) vs a memory-bound floor.

Run (from the repository root, with the project's virtualenv active)::

    python benchmarks/bench_cpu.py                  # full run (several minutes)
    python benchmarks/bench_cpu.py --quick          # fewer repetitions
    python benchmarks/bench_cpu.py --skip-sinabs    # leave out the slow reference
    python benchmarks/bench_cpu.py --threads 1 --shapes C1 C2 --json /tmp/cpu.json
    python benchmarks/bench_cpu.py --neuron lif     # LIF(tau_mem=20, tau_syn=5); also expleak, alif

What is measured, in one process, on CPU float32, for each shape (B, T, N) and each mode:

* ``forward``: one layer call under ``torch.no_grad()`` on ``torch.rand(B, T, N) * 1.5``.
* ``forward+backward``: one layer call on the same input with ``requires_grad=True``, then
  ``out.sum().backward()``.

Implementations (rows are skipped when the package cannot be imported):

* ``sinabs_fast``: ``sinabs_fast.layers.IAF()`` (fused C++ kernels), input (B, T, N).
* ``sinabs``: ``sinabs.layers.IAF()`` (the reference; a Python loop over time).
* ``spikingjelly``: ``neuron.IFNode(v_threshold=1.0, v_reset=None, surrogate.Sigmoid(),
  step_mode="m", detach_reset=False)`` (soft reset, like sinabs' ``MembraneSubtract``). It takes
  time-major input (T, B, N); the transposed contiguous copy is made outside the timed region.
  SpikingJelly 2.x picks its implementation by device: on CPU the only one is its Torch
  implementation (registered op with a hand-written backward); older versions with a
  ``backend`` attribute are set to ``"torch"``.
* ``floor``: ``torch.mul(x, 2, out=y)`` into a preallocated ``y``: one elementwise pass over the
  input, the memory-bound lower limit of a forward call.

Note that the layers do not compute exactly the same thing: sinabs(_fast) IAF defaults to
``MultiSpike`` (several spikes per step possible) with a ``SingleExponential`` surrogate, while
``IFNode`` emits at most one spike per step with a Sigmoid surrogate. The work per step is alike.

Timing protocol: per (implementation, shape, mode), the layer is built once, called once as a
warm-up (this allocates the states), then repeated. Before every repetition, outside the timed
region, states are reset (``reset_states()`` / ``reset()``), parameter and input gradients are
cleared, so no graph or state carries over. Each repetition is timed with
``time.perf_counter``; repetitions stop once ``--budget`` seconds have been spent (but never
fewer than ``--min-reps``), and the median is reported (the JSON also keeps the minimum).
Multi-threaded timings are fragile on a shared machine: when another process occupies a core,
each OpenMP parallel region waits for a scheduler time slice (several ms). Compare with
``--threads 1`` when the numbers look odd.

The floor is measured once per shape; in the ``forward+backward`` lines ``ours/floor`` is the
same floor, i.e. the cost in multiples of one elementwise pass over the input.

Output: a markdown table (ms per implementation, and the ratios sinabs/ours = speed-up,
spikingjelly/ours, ours/floor = multiples of one elementwise pass), and a JSON file
(``--json``, default ``benchmarks/out/cpu.json``) with the machine description and one row per
measurement.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import torch

FORWARD = "forward"
FORWARD_BACKWARD = "forward+backward"
MODES = (FORWARD, FORWARD_BACKWARD)

OURS = "sinabs_fast"
SINABS = "sinabs"
SPIKINGJELLY = "spikingjelly"
FLOOR = "floor"

DEFAULT_JSON = Path(__file__).resolve().parent / "out" / "cpu.json"


@dataclass(frozen=True)
class Shape:
    """A benchmark shape: batch B, time steps T, neurons N (input is (B, T, N))."""

    label: str
    B: int
    T: int
    N: int

    def describe(self) -> str:
        prefix = f"{self.label} " if not self.label.startswith("B") else ""
        return f"{prefix}B{self.B} T{self.T} N{self.N}"


SHAPES: tuple[Shape, ...] = (
    Shape("B8T500N1024", B=8, T=500, N=1024),
    Shape("B16T100N4096", B=16, T=100, N=4096),
    Shape("B32T16N4096", B=32, T=16, N=4096),
    Shape("C1", B=16, T=500, N=512),
    Shape("C2", B=8, T=100, N=1024),
    Shape("C3", B=32, T=16, N=4096),
)


@dataclass
class Result:
    """One measurement: median milliseconds of one call of `impl` on `shape` in `mode`."""

    impl: str
    shape: Shape
    mode: str
    ms: float
    min_ms: float
    reps: int

    def to_json(self) -> dict:
        shape = asdict(self.shape)
        label = shape.pop("label")
        return {"impl": self.impl, "shape": shape, "shape_label": label, "mode": self.mode,
                "ms": round(self.ms, 4), "min_ms": round(self.min_ms, 4), "reps": self.reps}


@dataclass(frozen=True)
class TimingConfig:
    """Adaptive repetition policy: at least `min_reps`, stop after `budget_s` or `max_reps`."""

    min_reps: int
    max_reps: int
    budget_s: float
    warmup: int = 1


# A benchmark case: `prepare` runs untimed before each repetition, `run` is what is timed.
@dataclass
class Case:
    prepare: Callable[[], None]
    run: Callable[[], None]


CaseBuilder = Callable[[torch.Tensor, str], Case]


# --------------------------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------------------------

def make_input(shape: Shape, seed: int = 0) -> torch.Tensor:
    """Uniform [0, 1.5) input of shape (B, T, N), float32."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape.B, shape.T, shape.N, generator=generator) * 1.5


def _layer_case(layer: torch.nn.Module, x: torch.Tensor, mode: str) -> Case:
    """A case for a sinabs-style stateful layer taking (B, T, N)."""

    def prepare() -> None:
        layer.reset_states()
        layer.zero_grad(set_to_none=True)
        x.grad = None

    if mode == FORWARD:
        def run() -> None:
            with torch.no_grad():
                layer(x)
    else:
        def run() -> None:
            layer(x).sum().backward()

    return Case(prepare, run)


# The neuron layers benchmarked (--neuron): class name and constructor arguments, the same for
# sinabs_fast and sinabs.
NEURONS = {
    "iaf": ("IAF", {}),
    "lif": ("LIF", {"tau_mem": 20.0, "tau_syn": 5.0}),
    "expleak": ("ExpLeak", {"tau_mem": 20.0}),
    "alif": ("ALIF", {"tau_mem": 20.0, "tau_adapt": 100.0, "tau_syn": 5.0}),
}


def layer_builder(package: str, neuron: str) -> CaseBuilder:
    """Builds cases for `package`.layers.<the neuron's class>(**its arguments)."""
    class_name, kwargs = NEURONS[neuron]

    def build(x: torch.Tensor, mode: str) -> Case:
        layers = importlib.import_module(f"{package}.layers")
        return _layer_case(getattr(layers, class_name)(**kwargs), x, mode)

    return build


def build_spikingjelly(x: torch.Tensor, mode: str) -> Case:
    from spikingjelly.activation_based import neuron, surrogate

    node = neuron.IFNode(v_threshold=1.0, v_reset=None, surrogate_function=surrogate.Sigmoid(),
                         step_mode="m", detach_reset=False)
    if hasattr(node, "backend"):  # SpikingJelly < 2.0: pick the CPU backend explicitly
        node.backend = "torch"
    # Time-major copy, made once, outside the timed region.
    x_tbn = x.detach().transpose(0, 1).contiguous().requires_grad_(x.requires_grad)

    def prepare() -> None:
        node.reset()
        x_tbn.grad = None

    if mode == FORWARD:
        def run() -> None:
            with torch.no_grad():
                node(x_tbn)
    else:
        def run() -> None:
            node(x_tbn).sum().backward()

    return Case(prepare, run)


def build_floor(x: torch.Tensor, mode: str) -> Case:
    """One elementwise pass over the input (the same in both modes)."""
    source = x.detach()
    out = torch.empty_like(source)

    def run() -> None:
        torch.mul(source, 2, out=out)

    return Case(lambda: None, run)


def available_builders(skip_sinabs: bool, neuron: str = "iaf") -> dict[str, CaseBuilder]:
    """The implementations whose packages import, in table order (SpikingJelly for IAF only)."""
    builders: dict[str, CaseBuilder] = {OURS: layer_builder("sinabs_fast", neuron)}
    if not skip_sinabs and _importable("sinabs.layers"):
        builders[SINABS] = layer_builder("sinabs", neuron)
    if neuron == "iaf" and _importable("spikingjelly.activation_based.neuron"):
        builders[SPIKINGJELLY] = build_spikingjelly
    builders[FLOOR] = build_floor
    return builders


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except Exception as error:  # noqa: BLE001 (any import failure means: skip the rows)
        print(f"[bench_cpu] skipping {module}: {type(error).__name__}: {error}", file=sys.stderr)
        return False
    return True


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

def time_case(case: Case, config: TimingConfig) -> tuple[float, float, int]:
    """Median and minimum milliseconds of `case.run`, and the number of timed repetitions."""
    for _ in range(config.warmup):
        case.prepare()
        case.run()
    samples: list[float] = []
    spent = 0.0
    while len(samples) < config.max_reps and (len(samples) < config.min_reps
                                              or spent < config.budget_s):
        case.prepare()
        start = time.perf_counter()
        case.run()
        elapsed = time.perf_counter() - start
        samples.append(elapsed)
        spent += elapsed
    return statistics.median(samples) * 1e3, min(samples) * 1e3, len(samples)


def measure(impl: str, builder: CaseBuilder, shape: Shape, mode: str,
            config: TimingConfig) -> Result:
    x = make_input(shape)
    if mode == FORWARD_BACKWARD:
        x.requires_grad_(True)
    case = builder(x, mode)
    ms, min_ms, reps = time_case(case, config)
    del case, x
    gc.collect()
    return Result(impl=impl, shape=shape, mode=mode, ms=ms, min_ms=min_ms, reps=reps)


def benchmark_tasks(shapes: Iterable[Shape], modes: Iterable[str],
                    builders: dict[str, CaseBuilder]) -> list[tuple[str, Shape, str]]:
    """(impl, shape, mode) triples; the floor is measured once per shape (forward)."""
    tasks = []
    for shape in shapes:
        for mode in modes:
            for impl in builders:
                if impl == FLOOR and mode != FORWARD:
                    continue
                tasks.append((impl, shape, mode))
        if FLOOR in builders and FORWARD not in modes:
            tasks.append((FLOOR, shape, FORWARD))
    return tasks


def progress(tasks: list, enabled: bool) -> Iterator:
    """Iterate over `tasks` with a tqdm bar when tqdm is installed and `enabled`."""
    if enabled:
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            bar = tqdm(tasks, unit="row", file=sys.stderr, dynamic_ncols=True)
            for task in bar:
                impl, shape, mode = task
                bar.set_postfix_str(f"{impl} {shape.label} {mode}")
                yield task
            return
    yield from tasks


def run_benchmarks(tasks: list[tuple[str, Shape, str]], builders: dict[str, CaseBuilder],
                   config: TimingConfig, show_progress: bool) -> list[Result]:
    results = []
    for impl, shape, mode in progress(tasks, show_progress):
        results.append(measure(impl, builders[impl], shape, mode, config))
    return results


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

def _lookup(results: list[Result], impl: str, shape: Shape, mode: str) -> Optional[float]:
    for result in results:
        if result.impl == impl and result.shape == shape and result.mode == mode:
            return result.ms
    return None


def _fmt_ms(value: Optional[float]) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if value < 10 else f"{value:.1f}" if value < 1000 else f"{value:.0f}"


def _fmt_ratio(numerator: Optional[float], denominator: Optional[float]) -> str:
    if numerator is None or denominator is None or denominator <= 0:
        return "—"
    return f"{numerator / denominator:.2f}x"


def markdown_table(results: list[Result], shapes: Iterable[Shape], modes: Iterable[str],
                   impls: Iterable[str]) -> str:
    """One line per (shape, mode): ms per implementation, then the ratios."""
    impls = list(impls)
    header = (["shape", "mode"] + [f"{impl} ms" for impl in impls]
              + ["sinabs/ours", "spikingjelly/ours", "ours/floor"])
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for shape in shapes:
        floor = _lookup(results, FLOOR, shape, FORWARD)
        for mode in modes:
            ms = {impl: (floor if impl == FLOOR else _lookup(results, impl, shape, mode))
                  for impl in impls}
            ours = ms.get(OURS)
            cells = [shape.describe(), mode] + [_fmt_ms(ms[impl]) for impl in impls] + [
                _fmt_ratio(ms.get(SINABS), ours),
                _fmt_ratio(ms.get(SPIKINGJELLY), ours),
                _fmt_ratio(ours, floor),
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_info(threads: int) -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "hostname": platform.node(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "versions": _package_versions(),
    }


def _package_versions() -> dict[str, Optional[str]]:
    from importlib import metadata

    versions: dict[str, Optional[str]] = {}
    for package in ("sinabs_fast", "sinabs", "spikingjelly"):
        try:
            versions[package] = metadata.version(package.replace("_", "-"))
        except metadata.PackageNotFoundError:
            try:
                versions[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                versions[package] = None
    return versions


def write_json(path: Path, results: list[Result], machine: dict, config: TimingConfig) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine,
        "timing": asdict(config) | {"statistic": "median"},
        "rows": [result.to_json() for result in results],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark IAF forward and forward+backward on CPU: sinabs_fast vs sinabs "
                    "vs SpikingJelly vs one elementwise pass.")
    parser.add_argument("--neuron", choices=sorted(NEURONS), default="iaf",
                        help="the layer: iaf (IAF()), lif (LIF(tau_mem=20, tau_syn=5)) or "
                             "expleak (ExpLeak(tau_mem=20)); default: %(default)s")
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions (3 minimum, 0.5 s per row)")
    parser.add_argument("--skip-sinabs", action="store_true",
                        help="leave out sinabs.layers.IAF (slow Python loop over time)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch intra-op threads (default: %(default)s)")
    parser.add_argument("--shapes", nargs="+", metavar="LABEL",
                        choices=[shape.label for shape in SHAPES],
                        help="subset of shapes (default: all): "
                             + ", ".join(shape.label for shape in SHAPES))
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="subset of modes (default: both)")
    parser.add_argument("--min-reps", type=int, default=None,
                        help="minimum timed repetitions per row (default 5, --quick 3)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds of timed repetitions per row (default 2, --quick 0.5)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON,
                        help="where to write the results (default: benchmarks/out/cpu.json)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return parser.parse_args(argv)


def timing_config(args: argparse.Namespace) -> TimingConfig:
    min_reps = args.min_reps if args.min_reps is not None else (3 if args.quick else 5)
    budget = args.budget if args.budget is not None else (0.5 if args.quick else 2.0)
    min_reps = max(1, min_reps)
    max_reps = max(min_reps, 100 if args.quick else 1000)
    return TimingConfig(min_reps=min_reps, max_reps=max_reps, budget_s=budget)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = timing_config(args)
    shapes = [s for s in SHAPES if args.shapes is None or s.label in args.shapes]
    modes = [m for m in MODES if m in args.modes]
    builders = available_builders(args.skip_sinabs, args.neuron)
    machine = machine_info(torch.get_num_threads())

    print(f"# {NEURONS[args.neuron][0]} on CPU (float32): torch {machine['torch']}, {machine['torch_threads']} "
          f"thread(s), {machine['cpu_count']} logical CPUs, {machine['processor']}")
    print(f"# timing: median of >= {config.min_reps} reps, {config.budget_s} s per row, "
          f"{config.warmup} warm-up call")

    tasks = benchmark_tasks(shapes, modes, builders)
    results = run_benchmarks(tasks, builders, config, show_progress=not args.no_progress)

    print()
    print(markdown_table(results, shapes, modes, builders))
    write_json(args.json, results, machine, config)
    print(f"\n# results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
