"""The networks ``sinabs-fast train --model NAME`` builds: a small registry of spiking networks
that take ``(batch, time, *sample_shape)`` input and return ``(batch, time, classes)`` output
spikes.

Every network is an ``nn.Sequential`` (the synops hooks of :mod:`sinabs_fast.hooks` need one)
that squeezes batch and time into one dimension for the Conv2d/Linear layers; its batch size is
changed per batch with :func:`set_model_batch_size`.
"""

from typing import Callable, Dict, NamedTuple, Sequence

import torch.nn as nn

import sinabs_fast.layers as sl
from sinabs_fast.utils import set_batch_size

Neuron = Callable[[], nn.Module]


def seed_network(batch_size: int, layers=sl, neuron: Neuron = None, classes: int = 10,
                 pool: Callable[[int], nn.Module] = nn.AvgPool2d) -> nn.Sequential:
    """The seed network of sinabs' synops documentation: FlattenTime, Conv2d 1->16 k5, pool 2,
    Conv2d 16->32 k5, pool 2, Conv2d 32->120 k4, Flatten, Linear 120->``classes`` (no biases),
    each followed by a spiking layer, then UnflattenTime. Input ``(batch, time, 1, 28, 28)``.

    Args:
        batch_size: the batch size the squeeze layers split rows by.
        layers: the layer module to build from (``sinabs_fast.layers``, or ``sinabs.layers`` to
            build sinabs' twin).
        neuron: builds one spiking layer; default ``layers.IAFSqueeze(batch_size=batch_size)``.
        classes: output neurons.
        pool: builds the pooling layers from the window size (e.g. ``layers.SumPool2d``).
    """
    if neuron is None:
        neuron = lambda: layers.IAFSqueeze(batch_size=batch_size)  # noqa: E731
    return nn.Sequential(
        layers.FlattenTime(),
        nn.Conv2d(1, 16, 5, bias=False), neuron(), pool(2),
        nn.Conv2d(16, 32, 5, bias=False), neuron(), pool(2),
        nn.Conv2d(32, 120, 4, bias=False), neuron(),
        nn.Flatten(), nn.Linear(120, classes, bias=False), neuron(),
        layers.UnflattenTime(batch_size=batch_size),
    )


# The registry's builders take (batch_size, sample_shape, classes, neurons): ``neurons`` is the
# module the spiking layers come from (``sinabs_fast.layers``, or ``sinabs.layers`` to time the
# same job on sinabs' layers); the reshaping layers are always sinabs_fast's.


def lif_seed_network(batch_size: int, sample_shape: Sequence[int], classes: int,
                     neurons=sl) -> nn.Sequential:
    """The seed network with leaky neurons (``LIFSqueeze``, tau_mem 20 steps) instead of IAF."""
    _check_shape(sample_shape, (1, 28, 28), "seed-lif")
    lif = lambda: neurons.LIFSqueeze(tau_mem=20.0, batch_size=batch_size)  # noqa: E731
    return seed_network(batch_size, neuron=lif, classes=classes)


def iaf_seed_network(batch_size: int, sample_shape: Sequence[int], classes: int,
                     neurons=sl) -> nn.Sequential:
    _check_shape(sample_shape, (1, 28, 28), "seed")
    iaf = lambda: neurons.IAFSqueeze(batch_size=batch_size)  # noqa: E731
    return seed_network(batch_size, neuron=iaf, classes=classes)


def dense_network(batch_size: int, sample_shape: Sequence[int], classes: int, neurons=sl,
                  hidden: int = 256) -> nn.Sequential:
    """A fully connected net for audio-like input (channels per time step, as SHD's 700 cochlea
    channels; any sample shape is flattened): Linear -> LIF -> Linear -> LIF -> Linear -> IAF."""
    features = 1
    for size in sample_shape:
        features *= int(size)
    lif = lambda: neurons.LIFSqueeze(tau_mem=20.0, batch_size=batch_size)  # noqa: E731
    return nn.Sequential(
        sl.FlattenTime(), nn.Flatten(),
        nn.Linear(features, hidden, bias=False), lif(),
        nn.Linear(hidden, hidden, bias=False), lif(),
        nn.Linear(hidden, classes, bias=False), neurons.IAFSqueeze(batch_size=batch_size),
        sl.UnflattenTime(batch_size=batch_size),
    )


def _check_shape(sample_shape: Sequence[int], expected: Sequence[int], name: str) -> None:
    if tuple(sample_shape) != tuple(expected):
        raise ValueError(
            f"--model {name} takes samples of shape {tuple(expected)}, the dataset gives "
            f"{tuple(sample_shape)}; use --model dense for other data")


class ModelEntry(NamedTuple):
    build: Callable[..., nn.Sequential]
    description: str


MODELS: Dict[str, ModelEntry] = {
    "seed": ModelEntry(iaf_seed_network, "the synops documentation's seed network, IAF neurons"),
    "seed-lif": ModelEntry(lif_seed_network, "the seed network with LIF neurons (tau_mem 20)"),
    "dense": ModelEntry(dense_network,
                        "fully connected, 2 hidden LIF layers of 256 (audio-like input)"),
}


def build_model(name: str, batch_size: int, sample_shape: Sequence[int],
                classes: int, neurons=sl) -> nn.Sequential:
    """The registry's network ``name`` for samples of ``sample_shape`` and ``classes`` classes,
    its spiking layers from ``neurons``."""
    if name not in MODELS:
        raise ValueError(f"model must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name].build(batch_size, sample_shape, classes, neurons)


def set_model_batch_size(model: nn.Module, batch_size: int) -> None:
    """Sets the batch size of every squeeze layer (sinabs' too) and UnflattenTime in ``model``."""
    set_batch_size(model, batch_size)
    for module in model.modules():
        if isinstance(module, sl.UnflattenTime):
            module.batch_size = batch_size
