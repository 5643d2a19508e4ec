"""One benchmark run: which peers can run, the semantics gate, then every case timed, into one
result (:mod:`sinabs_fast.bench.results`).

For each neuron layer, each peer is first asked whether it is installed and usable on the
device, then whether it can express the layer's configuration in the dtype; then it must pass
the semantics gate (:mod:`sinabs_fast.bench.peers.gate`). A peer that fails any of the three is
reported (a line on the console and an entry in the result's ``skipped``) and not timed. Then,
for each case (layer and shape), every remaining peer builds its layer, and for each mode all
of them are timed together (:mod:`sinabs_fast.bench.timing`). The seed network's end-to-end
rows come from :mod:`sinabs_fast.bench.end_to_end`.
"""

import datetime
import os
import platform
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch
from torch import Tensor

from .._version import __version__
from . import bandwidth, end_to_end, host_cost, memory, results
from .cases import (DEFAULT_SHAPES, DTYPES, FORWARD, FWD_BWD, INFERENCE, LAYERS, MODES,
                    NEURON_LAYERS, QUICK_SHAPES, SEED_NETWORK, SHAPES, Shape)
from .peers.base import Peer, Runner
from .peers.configs import make_input
from .timing import Budget, Call, make_timer, median_iqr

ALL = "*"  # a skipped entry's field that covers every value (e.g. every shape)
INPUT_SEED = 0


@dataclass
class BenchOptions:
    """What to run; the defaults are a full run on the CPU (``sinabs-fast bench --help``)."""

    device: str = "cpu"
    quick: bool = False
    layers: Sequence[str] = LAYERS
    shapes: Optional[Sequence[str]] = None  # None: DEFAULT_SHAPES (QUICK_SHAPES) of the device
    modes: Sequence[str] = MODES
    dtype: str = "float32"
    peers: Optional[Sequence[str]] = None  # None: every peer in the registry
    threads: Optional[int] = None  # CPU threads (None: torch's default)
    command: str = "sinabs-fast bench"
    progress: bool = True
    budget: Budget = field(default=None)  # None: Budget.quick() or Budget()
    time_budget_s: Optional[float] = None  # past it, the cases left are skipped (reported)

    def resolved(self, registry: Mapping[str, Peer]) -> "BenchOptions":
        """A copy with defaults filled in; raises ValueError naming a wrong option."""
        _check_choice("device", [self.device], ("cpu", "cuda"))
        _check_choice("dtype", [self.dtype], DTYPES)
        _check_choice("layers", self.layers, LAYERS)
        _check_choice("modes", self.modes, MODES)
        shapes = self.shapes or (QUICK_SHAPES if self.quick else DEFAULT_SHAPES)[self.device]
        _check_choice("shapes", shapes, SHAPES)
        peers = self.peers or list(registry)
        _check_choice("peers", peers, registry)
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, not {self.threads}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda': no CUDA device is available to this torch "
                             f"({torch.__version__})")
        budget = self.budget or (Budget.quick() if self.quick else Budget())
        return BenchOptions(self.device, self.quick, list(self.layers), list(shapes),
                            list(self.modes), self.dtype, list(peers), self.threads,
                            self.command, self.progress, budget, self.time_budget_s)


def _check_choice(option: str, given: Sequence[str], known) -> None:
    wrong = [name for name in given if name not in known]
    if wrong:
        raise ValueError(f"{option}: unknown {', '.join(map(repr, wrong))}; "
                         f"choose from {', '.join(known)}")


class Report:
    """The console messages and the result's ``skipped`` entries of one run."""

    def __init__(self, print_fn: Callable[[str], None]):
        self.print = print_fn
        self.skipped: List[Dict[str, str]] = []

    def skip(self, impl: str, reason: str, layer: str = ALL, shape: str = ALL, mode: str = ALL,
             dtype: str = ALL) -> None:
        self.skipped.append(dict(impl=impl, layer=layer, shape=shape, mode=mode, dtype=dtype,
                                 reason=reason))
        where = " ".join(v for v in (layer, shape, mode, dtype) if v != ALL)
        self.print(f"skipped {impl}{' ' + where if where else ''}: {reason}")


def machine_description(device: str) -> Dict[str, Any]:
    """The machine's name (CPU or GPU model), cores, torch threads, platform and Python."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            name = next(line.split(":", 1)[1].strip() for line in cpuinfo
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    described = {"name": name, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
                 "platform": platform.platform(), "python": platform.python_version()}
    if device == "cuda":
        described.update(cpu=name, name=torch.cuda.get_device_name(),
                         cuda=torch.version.cuda)
    return described


def native_inputs(runner: Runner, x: Tensor):
    """The runner's native input made from ``x`` without grad, and the same as a leaf that
    requires grad (detached from ``x``, so a layout change in ``prepare`` is never timed)."""
    with torch.no_grad():
        plain = runner.prepare(x)
    if isinstance(plain, Tensor):
        return plain, plain.detach().requires_grad_(True)
    return plain, runner.prepare(x.detach().requires_grad_(True))


def mode_call(runner: Runner, mode: str, x: Tensor) -> Call:
    """The timed call of ``mode`` on a built ``runner`` whose native input is made from ``x``.

    The native input is made once, untimed, and made a leaf of the graph (its gradient is the
    layer's input gradient; a layout change in ``prepare`` is not timed). ``backward`` runs the
    forward once here and then times ``torch.autograd.grad`` of a fixed random output gradient
    through the retained graph, for the input and the layer's parameters (the same gradients
    ``fwd+bwd`` computes).
    """
    plain, leaf = native_inputs(runner, x)
    params = [p for p in runner.parameters() if p.requires_grad]

    def clear() -> None:
        runner.reset()
        if isinstance(leaf, Tensor):
            leaf.grad = None
        for p in params:
            p.grad = None

    if mode == INFERENCE:
        def infer() -> Tensor:
            with torch.no_grad():
                return runner.forward(plain)
        return Call(infer, runner.reset)
    if mode == FORWARD:
        return Call(lambda: runner.forward(leaf), clear)
    if mode == FWD_BWD:
        made = {}  # the output gradient, made in the first (warm-up) call

        def forward_backward() -> None:
            out = runner.forward(leaf)
            if "grad" not in made:
                made["grad"] = output_gradient(out)
            out.backward(made["grad"])
        return Call(forward_backward, clear)
    clear()
    out = runner.forward(leaf)
    inputs = ([leaf] if isinstance(leaf, Tensor) else []) + params
    grad = output_gradient(out)
    return Call(lambda: torch.autograd.grad(out, inputs, grad, retain_graph=True))


def output_gradient(out: Tensor) -> Tensor:
    """A fixed random output gradient of ``out``'s shape (seeded: the same for every peer)."""
    gen = torch.Generator().manual_seed(1)
    return torch.randn(out.shape, generator=gen).to(device=out.device, dtype=out.dtype)


def saved_bytes_per_step(runner: Runner, x: Tensor, shape: Shape) -> float:
    """Bytes the runner's forward saves for backward, per neuron-step (the native input a leaf)."""
    _, leaf = native_inputs(runner, x)
    runner.reset()
    return memory.saved_bytes(lambda: runner.forward(leaf)) / shape.neuron_steps


class Bench:
    """One run (see the module's docstring); :meth:`run` returns the result."""

    def __init__(self, options: BenchOptions, registry: Optional[Mapping[str, Peer]] = None,
                 gate: Optional[Callable] = None,
                 print_fn: Optional[Callable[[str], None]] = None):
        if registry is None:
            from .peers import PEERS as registry  # noqa: N811 (the registry, by its name)
        if gate is None:
            from .peers.gate import check as gate
        self.registry = registry
        self.options = options.resolved(registry)
        self.gate = gate
        if print_fn is None:
            from tqdm import tqdm

            print_fn = tqdm.write  # keeps the progress bar in one piece
        self.report = Report(print_fn)
        self.dtype = DTYPES[self.options.dtype]
        self.rows: List[Dict[str, Any]] = []

    def available_peers(self) -> Dict[str, Peer]:
        """The chosen peers that import and run on the device (the others are reported)."""
        usable = {}
        for name in self.options.peers:
            peer = self.registry[name]
            reason = peer.unavailable_reason(self.options.device)
            if reason:
                self.report.skip(name, reason)
            else:
                usable[name] = peer
        return usable

    def gated_peers(self, layer: str, peers: Mapping[str, Peer]) -> Dict[str, Peer]:
        """The peers that express ``layer``'s configuration and pass the semantics gate."""
        device, dtype, name_of_dtype = self.options.device, self.dtype, self.options.dtype
        passed = {}
        for name, peer in peers.items():
            reason = peer.unsupported_reason(layer, dtype, device)
            if reason:
                self.report.skip(name, f"unsupported: {reason}", layer=layer, dtype=name_of_dtype)
                continue
            verdict = self.gate(peer, layer, device, dtype)
            if not verdict.passed:
                self.report.skip(name, f"failed the semantics gate: {verdict.detail}",
                                 layer=layer, dtype=name_of_dtype)
                continue
            passed[name] = peer
        return passed

    def time_case(self, layer: str, shape: Shape, peers: Mapping[str, Peer], timer,
                  copy_gbs: Optional[float]) -> None:
        """Every mode of one (layer, shape), all peers interleaved; appends the rows."""
        o = self.options
        x = make_input(shape, INPUT_SEED, self.dtype, o.device)
        runners, saved = {}, {}
        for name, peer in peers.items():
            try:
                runners[name] = peer.build(layer, shape, o.device, self.dtype)
            except Exception as error:  # noqa: BLE001 (a failing peer is reported, not fatal)
                self.report.skip(name, f"{type(error).__name__}: {error}", layer, shape.label,
                                 dtype=o.dtype)
                continue
            try:
                saved[name] = saved_bytes_per_step(runners[name], x, shape)
            except Exception:  # noqa: BLE001 (its modes with grad fail too, and say why)
                saved[name] = None
        # At a host-cost shape a tiny nn.Linear runs beside the peers, for scale (one per shape:
        # the first layer's case times it).
        host = host_cost.is_host_shape(shape.label)
        linear = host and not any(r["layer"] == host_cost.LINEAR_LAYER and r["shape"] == shape.label
                                  for r in self.rows)
        if linear:
            runners[host_cost.LINEAR_IMPL] = host_cost.LinearRunner(shape, o.device, self.dtype)
            saved[host_cost.LINEAR_IMPL] = None
        for mode in o.modes:
            def failed(name: str, error: Exception, mode: str = mode) -> None:
                self.report.skip(name, f"{type(error).__name__}: {error}", layer, shape.label,
                                 mode, o.dtype)

            calls = {}
            for name, runner in runners.items():
                try:
                    calls[name] = mode_call(runner, mode, x)
                except Exception as error:  # noqa: BLE001 (reported, like a failing call)
                    failed(name, error)
            times = timer.measure(calls, on_error=failed)
            for name, samples in times.items():
                call = calls[name]
                ms, iqr = median_iqr(samples)
                peak = memory.peak_bytes(o.device, call.prepare, call.run)
                row_layer = host_cost.LINEAR_LAYER if name == host_cost.LINEAR_IMPL else layer
                self.rows.append(results.make_row(
                    name, row_layer, shape.label, mode, o.dtype, ms, iqr,
                    None if host else bandwidth.bandwidth_fraction(
                        ms, mode, self.dtype, shape.neuron_steps, copy_gbs),
                    None if mode == INFERENCE else saved[name],
                    None if peak is None else peak / shape.neuron_steps))
            del calls, times

    def run(self) -> Dict[str, Any]:
        """Runs every case; returns the result (see :mod:`sinabs_fast.bench.results`)."""
        from tqdm import tqdm

        o = self.options
        if o.threads:
            torch.set_num_threads(o.threads)
        timer = make_timer(o.device, o.budget)
        copy = bandwidth.copy_bandwidth(o.device, timer.measure)
        self.report.print(f"copy bandwidth on {o.device}: {copy['gbs']:.1f} GB/s "
                          f"({torch.get_num_threads()} threads)")
        peers = self.available_peers()
        layers = [layer for layer in o.layers if layer in NEURON_LAYERS]
        shapes = [SHAPES[label] for label in o.shapes]
        gated = {layer: self.gated_peers(layer, peers) for layer in layers}
        cases = [(layer, shape) for layer in layers for shape in shapes if gated[layer]]
        start = time.monotonic()

        def out_of_time(layer: str, shape: str) -> bool:
            if o.time_budget_s is None or time.monotonic() - start < o.time_budget_s:
                return False
            self.report.skip(ALL, f"the time budget ({o.time_budget_s:g} s) was spent",
                             layer, shape, dtype=o.dtype)
            return True

        bar = tqdm(cases, desc="bench", unit="case", disable=not o.progress)
        for layer, shape in bar:
            bar.set_postfix_str(f"{layer} {shape.label}")
            if not out_of_time(layer, shape.label):
                self.time_case(layer, shape, gated[layer], timer, copy["gbs"])
        versions = {"sinabs_fast": __version__}
        versions.update({name: self.registry[name].version() for name in peers})
        described_shapes = {s.label: {"B": s.B, "T": s.T, "N": s.N} for s in shapes}
        if SEED_NETWORK in o.layers and not out_of_time(SEED_NETWORK, ALL):
            impls = [impl for impl in end_to_end.IMPLS if impl in o.peers]
            e2e = end_to_end.run(o.device, o.budget, self.report, impls, quick=o.quick)
            self.rows.extend(e2e.rows)
            versions.update(e2e.versions)
            described_shapes.update(e2e.shapes)
        result = {
            "device": o.device, "machine": machine_description(o.device),
            "torch": torch.__version__, "versions": versions, "command": o.command,
            "copy_bandwidth": copy, "rows": self.rows,
            "date": datetime.date.today().isoformat(), "shapes": described_shapes,
            "skipped": self.report.skipped,
        }
        results.validate(result)
        return result
