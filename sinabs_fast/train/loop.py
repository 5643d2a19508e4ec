"""One pass over a dataset: training (forward, loss, backward, step per batch) or evaluation.

Each batch is an independent set of sequences: the neuron states are reset before it. The
output spikes summed over time are the logits of a cross-entropy loss; with a penalty, the
synops loss on the batch's own synops per sample is added.
"""

import contextlib
from dataclasses import dataclass
from typing import Iterable, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..utils import reset_states
from .models import set_model_batch_size
from .synops import SynopsMeter, SynopsPenalty, own_synops


@dataclass
class EpochResult:
    """Means over the samples of one pass: ``loss`` (with the penalty, when training with one),
    ``accuracy`` (a fraction), ``layer_synops`` per counted layer and ``firing_rates`` per
    spiking layer."""

    loss: float
    accuracy: float
    layer_synops: List[float]
    firing_rates: List[float]
    samples: int

    @property
    def synops(self) -> float:
        return sum(self.layer_synops)

    @property
    def own_synops(self) -> float:
        return sum(self.layer_synops[1:])


def run_epoch(
    model: nn.Module,
    network: nn.Sequential,
    meter: SynopsMeter,
    batches: Iterable,
    device: torch.device,
    optimizer: Optional[torch.optim.Optimizer] = None,
    penalty: Optional[SynopsPenalty] = None,
    amp: Optional[torch.dtype] = None,
    distributed: bool = False,
) -> EpochResult:
    """Trains on ``batches`` (with ``optimizer``) or evaluates them (``optimizer`` None).

    Args:
        model: what is called: ``network`` itself, compiled, or wrapped in DDP.
        network: the ``nn.Sequential`` (batch size and states are set on it).
        meter: the synops meter registered on ``network``.
        batches: ``(spikes (B, T, ...), labels (B,))`` pairs.
        device: where the batches go.
        optimizer: trains when given.
        penalty: the synops loss added to the training loss.
        amp: an autocast dtype (CUDA), or None.
        distributed: training synops are all-reduced over the ranks before the penalty, and
            the epoch's sums at the end.
    """
    training = optimizer is not None
    network.train(training)
    sums, samples = None, 0
    autocast = contextlib.nullcontext() if amp is None else torch.autocast(device.type, dtype=amp)
    with torch.set_grad_enabled(training):
        for x, y in batches:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            batch, timesteps = x.shape[0], x.shape[1]
            set_model_batch_size(network, batch)
            reset_states(network)
            with autocast:
                out = model(x)
            loss = F.cross_entropy(out.sum(1).float(), y)
            if training and distributed:
                meter.all_reduce()
            layers = meter.layer_synops(timesteps)
            if penalty is not None:
                loss = loss + penalty(own_synops(layers))
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                correct = (out.sum(1).argmax(1) == y).sum()
                row = torch.stack([loss.detach().float() * batch, correct.float(),
                                   *[s.detach().float() * batch for s in layers],
                                   *[r.detach().float() * batch for r in meter.firing_rates()]])
            sums = row if sums is None else sums + row
            samples += batch
    if sums is None:
        raise ValueError("batches: the dataset gave no batch")
    totals = torch.cat([sums.double().cpu(), torch.tensor([float(samples)], dtype=torch.float64)])
    if training and distributed:
        import torch.distributed as dist

        totals = totals.to(device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    values, n = totals[:-1] / totals[-1], int(totals[-1])
    counted = len(meter.counted)
    return EpochResult(values[0].item(), values[1].item(), values[2:2 + counted].tolist(),
                       values[2 + counted:].tolist(), n)
