"""Synaptic-operation counters: ``SynOpCounter`` (analogue networks), the legacy
``SNNSynOpCounter`` (sinabs <= 1.1) and ``SNNAnalyzer`` (sinabs 3.1.3), with sinabs' semantics.

The SNN counters read the inputs of Conv2d / Linear layers from the kernels' spike counts where
they come from sinabs_fast spiking layers (:mod:`sinabs_fast._spike_counts`), so counting does
not re-read the spike tensors, and their results stay differentiable (the gradient goes through
the counts into the fused backward). ``all_reduce()`` turns a rank's counts into those of the
global batch of a ``torch.distributed`` job.
"""

import math
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Union

import torch
import torch.nn as nn
from torch import Tensor

from ._hooked_counter import HookedCounter, check_model, with_avgpool_scale
from ._spike_counts import CounterHooks, all_reduce_sum, check_dt, single_input, summed_input
from .layers.neuromorphic_relu import NeuromorphicReLU
from .snn_analyzer import SNNAnalyzer

__all__ = ["SynOpCounter", "SNNSynOpCounter", "SNNAnalyzer"]


class SynOpCounter:
    """Sums the ``activity`` of the ``NeuromorphicReLU`` layers (with ``fanout > 0``) of an
    analogue network: per layer, its output summed over all but the first dimension, averaged
    over that, times ``fanout``. Differentiable, so usable as a loss term.

    Args:
        modules: the modules to search, e.g. ``model.modules()``.
        sum_activations: return one total (default), else a list with one value per layer.

    Example::

        counter = SynOpCounter(model.modules())
        model(x)
        counter()
    """

    def __init__(self, modules: Iterable[nn.Module], sum_activations: bool = True):
        self.modules = [m for m in modules if isinstance(m, NeuromorphicReLU) and m.fanout > 0]
        if not self.modules:
            raise ValueError("modules: no NeuromorphicReLU with fanout > 0 found")
        self.sum_activations = sum_activations

    def __call__(self) -> Union[Tensor, List[Tensor]]:
        missing = [m for m in self.modules if not hasattr(m, "activity")]
        if missing:
            raise RuntimeError("SynOpCounter: run a forward pass through the model first")
        activities = [m.activity for m in self.modules]
        return torch.stack(activities).sum() if self.sum_activations else activities


@dataclass
class _LegacyRecord:
    fanout: float
    tot_in: Optional[Tensor] = None  # None until the layer has run
    tw: int = 0

    @property
    def synops(self) -> Tensor:
        return self.tot_in * self.fanout


class SNNSynOpCounter(HookedCounter):
    """The synaptic-operation counter of sinabs 1.0-1.1 (removed in sinabs 3), with its
    historical semantics. It counts, for each Conv2d and Linear, the input summed over
    everything (all batch entries and time steps) times an approximate fan-out:
    ``out_channels * prod(kernel_size) / prod(stride)`` for a Conv2d (borders, padding and
    groups ignored), ``out_features`` for a Linear.

    Args:
        model: the spiking model.
        dt: milliseconds per time step (for the per-second figures).

    Example::

        counter = SNNSynOpCounter(snn)
        snn(x)
        counter.get_synops()            # pandas DataFrame, one row per layer
        counter.get_total_synops()      # differentiable tensor
    """

    def __init__(self, model: nn.Module, dt: float = 1.0):
        check_model(model)
        check_dt(dt)
        self.model = model
        self.dt = dt
        self._records: Dict[nn.Module, _LegacyRecord] = {}
        self._hooks = CounterHooks(self)
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                fanout = module.out_channels * math.prod(module.kernel_size) \
                    / math.prod(module.stride)
            elif isinstance(module, nn.Linear):
                fanout = module.out_features
            else:
                continue
            self._records[module] = _LegacyRecord(fanout)
            self._hooks.add(module, self._count)
        if not self._records:
            raise ValueError("model: no Conv2d or Linear layer to count synaptic operations of")
        self._hooks.track(model)

    def _count(self, module: nn.Module, inputs, output) -> None:
        x = single_input(inputs, "SNNSynOpCounter")
        record = self._records[module]
        record.tot_in = summed_input(x, 3 if isinstance(module, nn.Conv2d) else 1).sum()
        record.tw = x.shape[0]

    def _ran(self) -> Dict[nn.Module, _LegacyRecord]:
        return {m: r for m, r in self._records.items() if r.tot_in is not None}

    def get_synops(self):
        """A pandas DataFrame indexed by ``Layer`` (the module's index in ``model.modules()``),
        one row per Conv2d / Linear that has run, with the columns ``In`` (input total),
        ``Fanout_Prev``, ``SynOps``, ``N. timesteps`` (the input's first dimension: batch*time
        for squeezed input), ``Time window (ms)`` and ``SynOps/s``. ``In`` and ``SynOps`` are
        multiplied by the window sizes of the AvgPool2d layers since the previous counted
        layer."""
        try:
            import pandas
        except ImportError as error:
            raise ImportError(
                "SNNSynOpCounter.get_synops returns a pandas DataFrame: pip install pandas "
                "(get_total_synops works without it)"
            ) from error
        rows = []
        for index, _, _, record, scale in with_avgpool_scale(self.model, self._ran()):
            synops = record.synops.item() * scale
            rows.append({
                "Layer": index,
                "In": record.tot_in.item() * scale,
                "Fanout_Prev": record.fanout,
                "SynOps": synops,
                "N. timesteps": record.tw,
                "Time window (ms)": record.tw * self.dt,
                "SynOps/s": synops / record.tw / self.dt * 1000,
            })
        columns = ["Layer", "In", "Fanout_Prev", "SynOps", "N. timesteps", "Time window (ms)",
                   "SynOps/s"]
        return pandas.DataFrame(rows, columns=columns).set_index("Layer")

    def get_total_synops(self, per_second: bool = False) -> Tensor:
        """The layers' synops summed (without the AvgPool2d factors, as in sinabs); per second
        (``/ N. timesteps / dt * 1000``) with ``per_second``. Differentiable; 0 before the first
        forward pass."""
        total = torch.tensor(0.0)
        for record in self._ran().values():
            synops = record.synops
            total = total + (synops / record.tw / self.dt * 1000 if per_second else synops)
        return total

    def get_total_power_use(self, j_per_synop: float = 1e-11) -> Tensor:
        """Power in milliwatts at ``j_per_synop`` joules per synaptic operation."""
        return self.get_total_synops(per_second=True) * j_per_synop * 1000

    def all_reduce(self, group=None) -> None:
        """Replaces the counts of the last forward pass by their sums over the ranks of
        ``group`` (default: all), as if one process had run the global batch (``In``,
        ``SynOps`` and ``N. timesteps`` add up). Differentiable. Every rank must call it, with
        the same model."""
        records = list(self._ran().values())
        if not records:
            return
        totals = all_reduce_sum(
            [torch.stack([r.tot_in for r in records]),
             torch.tensor([float(r.tw) for r in records])], group)
        for record, tot_in, tw in zip(records, totals[0], totals[1].tolist()):
            record.tot_in, record.tw = tot_in, int(tw)
