"""from_model: an ANN converted to a spiking network on sinabs_fast's layers (as
``sinabs.from_model`` 3.1.3, without needing sinabs)."""

from typing import Callable, Optional, Sequence, Type
from warnings import warn

import torch
import torch.nn as nn

from . import layers as sl
from ._hooked_counter import check_model
from .activation import MembraneSubtract, MultiSpike, SingleExponential
from .conversion import replace_module
from .network import Network
from .utils import _with_sinabs_twin, squeeze_classes


def from_model(
    model: nn.Module,
    input_shape: Optional[Sequence[int]] = None,
    spike_threshold: torch.Tensor = torch.tensor(1.0),
    spike_fn: Callable = MultiSpike,
    reset_fn: Callable = MembraneSubtract(),
    surrogate_grad_fn: Callable = SingleExponential(),
    min_v_mem: float = -1.0,
    bias_rescaling: float = 1.0,
    batch_size: Optional[int] = None,
    num_timesteps: Optional[int] = None,
    synops: bool = False,
    add_spiking_output: bool = False,
    spike_layer_class: Type[nn.Module] = sl.IAFSqueeze,
    backend: Optional[str] = None,
    kwargs_backend: Optional[dict] = None,
) -> Network:
    """Converts an ANN into a spiking :class:`~sinabs_fast.network.Network`: a copy of
    ``model`` in which every ``nn.ReLU`` and ``NeuromorphicReLU`` (sinabs_fast's, or sinabs'
    when sinabs is loaded) is replaced by a ``spike_layer_class`` neuron layer. Same signature
    and result as ``sinabs.from_model``.

    Args:
        model: the ANN (not modified).
        input_shape: per-sample input shape, e.g. ``(1, 28, 28)``; when given, one forward pass
            on zeros records each module's ``out_shape`` and initialises the states.
        spike_threshold, spike_fn, reset_fn, surrogate_grad_fn, min_v_mem: the arguments of
            every new neuron layer.
        bias_rescaling: the biases of ``nn.Linear`` and ``nn.Conv2d`` are divided by it.
        batch_size, num_timesteps: of a squeeze layer class (one of them is needed, the other
            is inferred); not passed to other classes.
        synops: attach an :class:`~sinabs_fast.SNNAnalyzer` (``network.synops_counter``).
        add_spiking_output: append a neuron layer (``spike_output``) when the model does not
            end with a ReLU (as sinabs: for a model that is not ``nn.Sequential`` the module is
            added but its ``forward`` does not call it).
        spike_layer_class: the neuron layer (default :class:`~sinabs_fast.layers.IAFSqueeze`;
            sinabs' classes work too).
        backend: deprecated, as in sinabs: ``"sinabs"`` or ``"sinabs_fast"`` select
            ``IAFSqueeze``.
        kwargs_backend: further keyword arguments of the neuron layer.
    """
    check_model(model)
    if backend is not None:
        warn("The 'backend' argument is deprecated; use spike_layer_class instead.")
        if backend not in ("sinabs", "sinabs_fast"):
            raise ValueError(f"backend must be 'sinabs' or 'sinabs_fast', got {backend!r}")
        spike_layer_class = sl.IAFSqueeze
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    layer_kwargs = dict(kwargs_backend or {})
    if issubclass(spike_layer_class, squeeze_classes()):
        if not batch_size and not num_timesteps:
            raise TypeError("from_model: a squeeze layer class needs batch_size or num_timesteps")
        layer_kwargs.update(batch_size=batch_size, num_timesteps=num_timesteps)

    def spiking_layer(module: Optional[nn.Module] = None) -> nn.Module:
        return spike_layer_class(
            spike_threshold=spike_threshold, spike_fn=spike_fn, reset_fn=reset_fn,
            surrogate_grad_fn=surrogate_grad_fn, min_v_mem=min_v_mem, **layer_kwargs,
        ).to(device)

    relu_classes = (nn.ReLU, *_with_sinabs_twin(sl.NeuromorphicReLU))
    snn = model
    for source in relu_classes:
        snn = replace_module(snn, source, spiking_layer)  # each call returns a copy
    if add_spiking_output:
        last = list(model.children())[-1:] or [model]
        if isinstance(last[0], relu_classes):
            warn("Spiking output can only be added to sequential models that do not end in a "
                 "ReLU. No layer has been added.")
        else:
            snn.add_module("spike_output", spiking_layer())
    if bias_rescaling != 1.0:
        with torch.no_grad():
            for module in snn.modules():
                if isinstance(module, (nn.Linear, nn.Conv2d)) and module.bias is not None:
                    module.bias.data /= bias_rescaling
    return Network(model, snn, input_shape=input_shape, synops=synops, batch_size=batch_size,
                   num_timesteps=num_timesteps)
