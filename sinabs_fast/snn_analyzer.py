"""``SNNAnalyzer`` (sinabs 3.1.3): firing rates of the spiking layers and synaptic operations
of the parameter layers, read from the kernels' spike counts where they can be
(:mod:`sinabs_fast._spike_counts`), so the results stay differentiable. ``all_reduce()`` turns a
rank's statistics into those of the global batch of a ``torch.distributed`` job.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from ._hooked_counter import HookedCounter, check_model, with_avgpool_scale
from ._spike_counts import (
    CounterHooks, all_reduce_sum, check_dt, single_input, spike_totals, summed_input,
)
from .hooks import conv_connection_map
from .layers.reshape import SqueezeMixin
from .layers.stateful_layer import StatefulLayer

__all__ = ["SNNAnalyzer"]


@dataclass
class _SpikingRecord:
    n_batches: int = 0
    n_neurons: int = 0
    input_: Optional[Tensor] = None  # the last batch, (batch, time, ...)
    output_: Optional[Tensor] = None
    spikes: Optional[Tensor] = None  # the last batch's spikes per neuron, summed over (batch, time)
    rows: int = 0  # batch * time of the last batch
    spikes_before: Union[Tensor, float] = 0.0  # the same summed over the earlier batches
    output_before: Union[Tensor, float] = 0.0  # the earlier batches' outputs summed

    def rate(self, average: bool) -> Tensor:
        """Firing rate per neuron."""
        if average:
            return (self.spikes_before + self.spikes) / self.rows / self.n_batches
        return self.spikes / self.rows


@dataclass
class _SynopsRecord:
    n_batches: int = 0
    synops: Optional[Tensor] = None  # the last batch's
    rows: int = 0  # the samples it is averaged over
    num_timesteps: int = 0
    synops_before: Union[Tensor, float] = 0.0  # summed over the earlier batches
    maps: Dict[tuple, Tensor] = field(default_factory=dict)  # connection maps by input shape

    def value(self, average: bool) -> Tensor:
        return (self.synops_before + self.synops) / self.n_batches if average else self.synops


class SNNAnalyzer(HookedCounter):
    """Statistics of spiking layers (firing rates) and parameter layers (synaptic operations)
    over forward passes, as ``sinabs.SNNAnalyzer`` (3.1.3).

    Spiking layers are the sinabs_fast stateful layers that spike (not ExpLeak). For each
    Conv2d, synops = input summed over time, times the exact fan-out of each input element
    (:func:`sinabs_fast.hooks.conv_connection_map`), averaged over the batch; for a Linear,
    times ``out_features``. Squeezed ``(batch*time, ...)`` input is unflattened with the
    ``batch_size`` / ``num_timesteps`` of the last squeeze layer of the model; without one, a
    Conv2d's input rows all count as samples (``num_timesteps`` 0) and a Linear's input with 3+
    dimensions is ``(batch, time, ...)``. Results are differentiable; the previous batches'
    contributions to the averages are detached.

    Args:
        model: the model.
        dt: milliseconds per time step.

    Example::

        analyzer = SNNAnalyzer(snn)
        snn(x)
        analyzer.get_layer_statistics()["parameter"]["1"]["synops"]
        analyzer.get_model_statistics()["synops"]
    """

    def __init__(self, model: nn.Module, dt: float = 1.0):
        check_model(model)
        check_dt(dt)
        self.model = model
        self.dt = dt
        self._hooks = CounterHooks(self)
        self._setup()

    def _setup(self) -> None:
        self._unflattened: Optional[Tuple[int, int]] = None
        for module in self.model.modules():
            if isinstance(module, SqueezeMixin):
                self._unflattened = (module.batch_size, module.num_timesteps)
        self._spiking: Dict[nn.Module, _SpikingRecord] = {}
        self._synops: Dict[nn.Module, _SynopsRecord] = {}
        for module in self.model.modules():
            if isinstance(module, StatefulLayer) and module.does_spike:
                self._spiking[module] = _SpikingRecord()
                self._hooks.add(module, self._spiking_hook)
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                self._synops[module] = _SynopsRecord()
                self._hooks.add(module, self._synops_hook)
        if not self._spiking and not self._synops:
            raise ValueError("model: no spiking, Conv2d or Linear layer to analyse")
        self._hooks.track(self.model)

    def _spiking_hook(self, module: nn.Module, inputs, output: Tensor) -> None:
        x = inputs[0]
        if isinstance(module, SqueezeMixin):
            x = x.reshape(module.batch_size, module.num_timesteps, *x.shape[1:])
            output = output.reshape(module.batch_size, module.num_timesteps, *output.shape[1:])
        record = self._spiking[module]
        if record.n_batches:
            # The running sums only ever hold detached earlier batches; adding the previous
            # batch now (not at the last batch) keeps a lone batch free of any extra pass.
            record.spikes_before = record.spikes_before + record.spikes.detach()
            previous = record.output_.detach()
            record.output_before = previous.clone() if record.n_batches == 1 \
                else record.output_before.add_(previous)
        record.n_neurons = output[0, 0].numel()
        record.input_, record.output_ = x, output
        record.spikes, record.rows = spike_totals(module, output, squeezed=False)
        record.n_batches += 1

    def _synops_hook(self, module: nn.Module, inputs, output: Tensor) -> None:
        x = single_input(inputs, "SNNAnalyzer")
        record = self._synops[module]
        if self._unflattened is not None:
            samples, record.num_timesteps = self._split_rows(x.shape[0])
        elif isinstance(module, nn.Linear) and x.dim() >= 3:
            samples, record.num_timesteps = x.shape[0], x.shape[1]
        else:
            samples, record.num_timesteps = x.shape[0], 0
        if isinstance(module, nn.Conv2d):
            shape = (tuple(x.shape[-3:]), tuple(output.shape[-3:]), x.device)
            if shape not in record.maps:
                record.maps[shape] = conv_connection_map(module, *shape)[0]
            synops = (summed_input(x, 3) * record.maps[shape]).sum() / samples
        else:
            synops = summed_input(x, 1).sum() / samples * module.out_features
        if record.n_batches:
            record.synops_before = record.synops_before + record.synops.detach()
        record.synops, record.rows = synops, samples
        record.n_batches += 1

    def _split_rows(self, rows: int) -> Tuple[int, int]:
        """(batch, time) of ``rows`` squeezed rows, by the last squeeze layer's sizes."""
        batch, steps = self._unflattened
        if batch <= 0 and steps > 0:
            batch = rows // steps
        elif steps <= 0 and batch > 0:
            steps = rows // batch
        if batch * steps != rows:
            raise RuntimeError(
                f"SNNAnalyzer: {rows} input rows do not split into batch_size={batch} x "
                f"num_timesteps={steps} (taken from the model's last squeeze layer)"
            )
        return batch, steps

    def get_layer_statistics(self, average: bool = False) -> dict:
        """``{"spiking": {name: {...}}, "parameter": {name: {...}}}`` for the layers that have
        run. Spiking: ``n_neurons``, ``input``, ``output``, ``firing_rate``,
        ``firing_rate_per_neuron``. Parameter: ``synops`` (times the window sizes of the
        AvgPool2d layers since the previous parameter layer), ``num_timesteps``,
        ``time_window`` (ms), ``SynOps/s`` and ``synops/s``.

        Args:
            average: average over the batches since the start (or :meth:`reset`), instead of
                the last batch.
        """
        stats = {"spiking": {}, "parameter": {}}
        for name, module in self.model.named_modules():
            record = self._spiking.get(module)
            if record is not None and record.n_batches:
                rate = record.rate(average)
                output = (record.output_before + record.output_) / record.n_batches \
                    if average else record.output_
                stats["spiking"][name] = {
                    "n_neurons": record.n_neurons,
                    "input": record.input_,
                    "output": output,
                    "firing_rate": _mean_rate(record, average),
                    "firing_rate_per_neuron": rate,
                }
        for _, name, _, record, scale in with_avgpool_scale(self.model, self._synops):
            if not record.n_batches:
                continue
            synops = record.value(average) * scale
            per_second = synops / record.num_timesteps / self.dt * 1000
            stats["parameter"][name] = {
                "synops": synops,
                "num_timesteps": record.num_timesteps,
                "time_window": record.num_timesteps * self.dt,
                "SynOps/s": per_second,
                "synops/s": per_second,
            }
        return stats

    def get_model_statistics(self, average: bool = False) -> dict:
        """``firing_rate`` (the mean of all spiking neurons' rates; present when the model has
        spiking layers), ``synops`` (the parameter layers' synops summed, without the AvgPool2d
        factors, as in sinabs) and ``n_spiking_neurons``.

        Args:
            average: average over the batches instead of the last batch.
        """
        rates = [r.rate(average).ravel() if r.n_batches else torch.tensor([0.0])
                 for r in self._spiking.values()]
        synops = torch.tensor(0.0)
        for record in self._synops.values():
            if record.n_batches:
                synops = synops + record.value(average)
        n_neurons = sum(r.n_neurons for r in self._spiking.values() if r.n_batches)
        stats = {}
        if rates:
            stats["firing_rate"] = torch.cat([r.to(synops.device) for r in rates]).mean()
        stats["synops"] = synops
        stats["n_spiking_neurons"] = torch.tensor(float(n_neurons), device=synops.device)
        return stats

    def all_reduce(self, group=None) -> None:
        """Replaces the last batch's synops and spike counts by those of the global batch over
        the ranks of ``group`` (default: all): synops become the per-sample mean over all
        ranks' samples, firing rates the global rates. ``input`` / ``output`` stay this rank's.
        Differentiable. Every rank must call it, with the same model and batch shapes."""
        synops = [r for r in self._synops.values() if r.n_batches]
        spiking = [r for r in self._spiking.values() if r.n_batches]
        reduced = all_reduce_sum(
            [r.synops * r.rows for r in synops] + [r.spikes for r in spiking]
            + [torch.tensor([float(r.rows) for r in synops + spiking])], group)
        rows = [int(n) for n in reduced[-1].tolist()]
        for record, total, n in zip(synops + spiking, reduced[:-1], rows):
            if isinstance(record, _SynopsRecord):
                record.synops, record.rows = total / n, n
            else:
                record.spikes, record.rows = total, n

    def reset(self) -> None:
        """Clears all statistics and re-registers the hooks."""
        self._hooks.remove()
        self._setup()


def _mean_rate(record: _SpikingRecord, average: bool) -> Tensor:
    """A spiking layer's mean firing rate: all its spikes over all its neuron-steps."""
    total = record.spikes_before + record.spikes if average else record.spikes
    rate = total.sum() / (record.rows * record.n_neurons)
    return rate / record.n_batches if average else rate
