"""End-to-end rows: one training step of the seed network (``layer`` "seed-network").

The network is :func:`sinabs_fast.train.models.seed_network` (Conv/IAFSqueeze/AvgPool x2,
Conv/IAFSqueeze, Linear/IAFSqueeze) at B=32, T=50 on input spikes ``rand < 0.3``, built from
sinabs_fast's layers and from sinabs' (same weights). A step is: reset the states, clear the
gradients, forward, cross-entropy of the output spikes summed over time, backward, an SGD step.
Rows (``impl``), all timed interleaved in one process:

* ``sinabs_fast``, ``sinabs``: the plain step, eager;
* ``sinabs_fast+compile``, ``sinabs+compile``: the network under ``torch.compile`` (its first
  calls, the compilation, are warm-up and not timed); on CUDA also ``<impl>+reduce-overhead``,
  under ``torch.compile(mode="reduce-overhead")``, which captures the step's kernels in CUDA
  graphs (a step that cannot be captured runs without graphs, and torch says why);
* ``<impl>+SNNSynOpCounter``, ``<impl>+SNNAnalyzer``, ``<impl>+hooks``: a synops-penalised step,
  the loss plus ``1e-6 *`` the counter's differentiable synops total, with sinabs_fast's
  ``SNNSynOpCounter`` (sinabs 1.x's, which sinabs 3 no longer has), ``SNNAnalyzer`` and
  ``hooks.register_synops_hooks`` (sinabs' own ``SNNAnalyzer`` and hooks for sinabs' rows): the
  cost of counting is the difference to the plain row.

``--quick`` times sinabs' plain step only, neither compiled nor counted (compiling its Python
time loop takes minutes, and one sinabs step takes seconds on a 2-core CPU).

The shape's ``N`` is the number of spiking neurons of the network (for one sample and step).
"""

import importlib
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
import torch.nn as nn

from . import results
from .cases import FWD_BWD, SEED_NETWORK
from .timing import Budget, Call, make_timer, median_iqr

B, T = 32, 50
IMPLS = ("sinabs_fast", "sinabs")  # the runtimes whose layers build the seed network
COUNTERS = ("SNNSynOpCounter", "SNNAnalyzer", "hooks")
SYNOPS_WEIGHT = 1e-6
# Calls of a compiled step before its timing: the compilation, and a recompilation once the
# states have their shape (after the first reset); CUDA graphs record on a later call.
COMPILE_WARMUP = 3
# The torch.compile modes per device, by the suffix of their rows' impl.
COMPILE_MODES = {"cpu": {"compile": "default"},
                 "cuda": {"compile": "default", "reduce-overhead": "reduce-overhead"}}


@dataclass
class EndToEnd:
    """The rows of the end-to-end part, the versions of what ran and the shape's description."""

    rows: List[Dict[str, Any]] = field(default_factory=list)
    versions: Dict[str, Optional[str]] = field(default_factory=dict)
    shapes: Dict[str, Dict[str, int]] = field(default_factory=dict)


def _package(impl: str):
    """``sinabs_fast`` or ``sinabs``: the top-level package, its layers and its hooks."""
    top = importlib.import_module(impl)
    return top, importlib.import_module(f"{impl}.layers"), importlib.import_module(f"{impl}.hooks")


def _synops_reader(impl: str, counter: str, net: nn.Sequential) -> Callable[[], torch.Tensor]:
    """Attaches ``counter`` to ``net``; returns what reads its differentiable synops total."""
    top, _, hooks = _package(impl)
    if counter == "SNNSynOpCounter":
        return top.SNNSynOpCounter(net).get_total_synops
    if counter == "SNNAnalyzer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            analyzer = top.SNNAnalyzer(net)
        return lambda: analyzer.get_model_statistics()["synops"]
    hooks.register_synops_hooks(net)
    return lambda: net.hook_data["total_synops_per_timestep"]


def training_step(net: nn.Module, reset: Callable[[nn.Module], None], x: torch.Tensor,
                  labels: torch.Tensor, synops: Optional[Callable[[], torch.Tensor]] = None
                  ) -> Callable[[], torch.Tensor]:
    """One training step of ``net`` (see the module's docstring); returns the loss."""
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3)

    def step() -> torch.Tensor:
        reset(net)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(net(x).sum(1), labels)
        if synops is not None:
            loss = loss + SYNOPS_WEIGHT * synops()
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def spiking_neurons(net: nn.Module, x: torch.Tensor) -> int:
    """Spiking neurons of ``net`` per sample and step (the elements of its membrane states)."""
    with torch.no_grad():
        net(x)
    return sum(m.v_mem[0].numel() for m in net.modules() if hasattr(m, "v_mem"))


def _steps(impls: List[str], device: str, batch: int, x: torch.Tensor, labels: torch.Tensor,
           compile_impls: Sequence[str], counter_impls: Sequence[str], report
           ) -> Dict[str, Call]:
    from ..train.models import seed_network

    torch.manual_seed(0)
    weights = seed_network(batch).state_dict()
    steps = {}
    for impl in impls:
        top, layers, _ = _package(impl)

        def net() -> nn.Sequential:
            model = seed_network(batch, layers=layers).to(device)
            model.load_state_dict(weights, strict=False)
            return model

        steps[impl] = training_step(net(), top.reset_states, x, labels)
        for suffix, mode in COMPILE_MODES[device].items() if impl in compile_impls else ():
            try:
                compiled = training_step(torch.compile(net(), mode=mode), top.reset_states, x,
                                         labels)
                for _ in range(COMPILE_WARMUP):
                    compiled()
                steps[f"{impl}+{suffix}"] = compiled
            except Exception as error:  # noqa: BLE001 (any compiler failure is reported)
                report.skip(f"{impl}+{suffix}", f"{type(error).__name__}: {error}",
                            SEED_NETWORK, f"B{batch}T{x.shape[1]}")
        for counter in COUNTERS if impl in counter_impls else ():
            if counter == "SNNSynOpCounter" and not hasattr(top, counter):
                continue  # sinabs 3 removed it
            counted = net()
            steps[f"{impl}+{counter}"] = training_step(
                counted, top.reset_states, x, labels, _synops_reader(impl, counter, counted))
    return {name: Call(step) for name, step in steps.items()}


def run(device: str, budget: Budget, report, impls: Sequence[str] = IMPLS,
        quick: bool = False, batch: int = B,
        steps: int = T, compile_impls: Optional[Sequence[str]] = None,
        counter_impls: Optional[Sequence[str]] = None) -> EndToEnd:
    """Times the seed network's training steps at ``batch`` x ``steps`` on ``device``, built
    from the layers of ``impls`` (``report.skip`` says what could not run). ``compile_impls`` and ``counter_impls``: the
    runtimes also timed under torch.compile and with each synops counter (default: both;
    sinabs_fast only with ``quick``)."""
    from ..train.models import seed_network

    shape = f"B{batch}T{steps}"
    impls, sinabs = list(impls), None
    if "sinabs" in impls:
        try:
            sinabs = importlib.import_module("sinabs")
        except ImportError:
            report.skip("sinabs", "not installed (pip install sinabs==3.1.3)", SEED_NETWORK,
                        shape)
            impls.remove("sinabs")
    if not impls:
        return EndToEnd()
    default = [impl for impl in impls if impl == "sinabs_fast" or not quick]
    compile_impls = default if compile_impls is None else compile_impls
    counter_impls = default if counter_impls is None else counter_impls
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, steps, 1, 28, 28, generator=gen) < 0.3).float().to(device)
    labels = torch.randint(0, 10, (batch,), generator=gen).to(device)
    report.print(f"seed network training steps ({shape}): {', '.join(impls)}; compiled: "
                 f"{', '.join(compile_impls) or 'none'}")
    calls = _steps(impls, device, batch, x, labels, compile_impls, counter_impls, report)
    # More of the budget than a layer case: a step is 0.1-10 s on a CPU.
    slow = Budget(budget.budget_s * 5, budget.min_reps, budget.max_reps, budget.warmup,
                  budget.slice_s)
    times = make_timer(device, slow).measure(calls)
    out = EndToEnd(versions={"sinabs": getattr(sinabs, "__version__", None)} if sinabs else {})
    neurons = spiking_neurons(seed_network(batch).to(device), x)
    out.shapes[shape] = {"B": batch, "T": steps, "N": neurons}
    for name, samples in times.items():
        ms, iqr = median_iqr(samples)
        out.rows.append(results.make_row(name, SEED_NETWORK, shape, FWD_BWD, "float32", ms, iqr))
    return out
