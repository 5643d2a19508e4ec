"""Model-level helpers for stateful and squeezed layers, and for ANN-to-SNN conversion (as
``sinabs.utils`` 3.1.3).

The classes of :mod:`sinabs_fast.layers` are recognised, and sinabs' own layers in a mixed model
too when sinabs is loaded (sinabs is never imported here).
"""

import sys
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from ._hooked_counter import check_model
from .layers import SqueezeMixin, StatefulLayer
from .layers.reshape import check_squeeze_size


def _with_sinabs_twin(cls: type) -> Tuple[type, ...]:
    """``(cls,)``, plus sinabs' class of the same name when sinabs is already imported: a model
    can only hold sinabs layers once sinabs is loaded, so it never needs importing here."""
    sinabs_layers = sys.modules.get("sinabs.layers")
    twin = getattr(sinabs_layers, cls.__name__, None)
    return (cls,) if twin is None else (cls, twin)


def stateful_classes() -> Tuple[type, ...]:
    """The StatefulLayer base classes a model may hold: sinabs_fast's, and sinabs' if loaded."""
    return _with_sinabs_twin(StatefulLayer)


def squeeze_classes() -> Tuple[type, ...]:
    """The SqueezeMixin classes a model may hold: sinabs_fast's, and sinabs' if loaded."""
    return _with_sinabs_twin(SqueezeMixin)


def _stateful_layers(model: nn.Module):
    check_model(model)
    classes = stateful_classes()
    return [module for module in model.modules() if isinstance(module, classes)]


def reset_states(model: nn.Module) -> None:
    """Zeros (and detaches) the states of every stateful layer in ``model``, sinabs' own
    layers in a mixed model included.

    Deliberate difference from ``sinabs.utils.reset_states``: every
    :class:`~sinabs_fast.layers.StatefulLayer` found by ``model.modules()`` is reset, including
    ``model`` itself when it is a bare layer and stateful layers that have child modules.
    sinabs only loops over children, recursing into any child that has children, so it does
    nothing for a bare layer and never resets a stateful layer with submodules.
    """
    for layer in _stateful_layers(model):
        layer.reset_states()


def zero_grad(model: nn.Module) -> None:
    """Calls ``zero_grad()`` on every stateful layer in ``model`` (sinabs' own layers in a mixed
    model too): their parameters' gradients are zeroed and their states detached from the graph
    (values kept). Parameters of other
    modules (e.g. a ``Conv2d``) are left alone, as in sinabs.

    Deliberate difference from ``sinabs.utils.zero_grad``: as for :func:`reset_states`, every
    :class:`~sinabs_fast.layers.StatefulLayer` in ``model.modules()`` is included, ``model``
    itself and stateful layers with child modules too (sinabs skips both).
    """
    for layer in _stateful_layers(model):
        layer.zero_grad()


def set_batch_size(model: nn.Module, batch_size: int) -> None:
    """Sets ``batch_size`` on every squeeze layer (:class:`~sinabs_fast.layers.SqueezeMixin`)
    in ``model``, ``model`` included, sinabs' too. States are not reset."""
    check_model(model)
    check_squeeze_size(batch_size, "batch_size")
    classes = squeeze_classes()
    for module in model.modules():
        if isinstance(module, classes):
            module.batch_size = batch_size


def _common_value(model: nn.Module, attribute: str, description: str) -> int:
    classes = squeeze_classes()
    values = {getattr(module, attribute)
              for module in model.modules() if isinstance(module, classes)}
    values -= {-1, None}
    if not values:
        return -1
    if len(values) > 1:
        raise ValueError(
            f"The model contains layers with different {description}: "
            + ", ".join(sorted(str(v) for v in values))
        )
    return values.pop()


def get_batch_size(model: nn.Module) -> int:
    """The ``batch_size`` shared by the squeeze layers of ``model``, ignoring ``-1`` and None;
    ``-1`` when none sets it. Raises ValueError when layers disagree."""
    return _common_value(model, "batch_size", "batch sizes")


def get_num_timesteps(model: nn.Module) -> int:
    """The ``num_timesteps`` shared by the squeeze layers of ``model``, ignoring ``-1`` and
    None; ``-1`` when none sets it. Raises ValueError when layers disagree."""
    return _common_value(model, "num_timesteps", "numbers of time steps")


def get_smallest_compatible_time_dimension(model: nn.Module) -> int:
    """The smallest size of the first (batch x time) input dimension that the squeeze layers of
    ``model`` accept: ``batch_size * num_timesteps``, an unknown (-1) factor counting as 1.
    Raises ValueError when layers disagree."""
    return abs(get_batch_size(model)) * abs(get_num_timesteps(model))


def get_activations(torchanalog_model: nn.Module, tsrData: torch.Tensor,
                    name_list: Optional[List[str]] = None) -> List[np.ndarray]:
    """The outputs of the named modules of an analogue model for input ``tsrData``, as numpy
    arrays, in the order the forward pass reaches them; the name ``"Input"`` stands for the
    input itself (listed first). ``name_list`` defaults to ``"Input"`` and every submodule. The
    model is put in eval mode (as in sinabs) and run without gradients."""
    modules = dict(torchanalog_model.named_modules())
    if name_list is None:
        name_list = ["Input"] + list(modules)[1:]
    activations = [tsrData.detach().cpu().numpy() for name in name_list if name == "Input"]

    def keep_output(module, inputs, output):
        activations.append(output.detach().cpu().numpy())

    with _hooks_on(modules, name_list, keep_output), torch.no_grad():
        torchanalog_model.eval()
        torchanalog_model(tsrData)
    return activations


def get_network_activations(model: nn.Module, inp: torch.Tensor,
                            name_list: Optional[List[str]] = None,
                            bRate: bool = False) -> List[np.ndarray]:
    """The activity of the named modules of a spiking model for input ``inp`` (time or
    batch*time first): each module's output summed over the first dimension, as numpy arrays in
    the order the forward pass reaches them. ``"Input"`` stands for the input, whose sum is
    multiplied by 1000 (as in sinabs). With ``bRate`` every entry is divided by the number of
    steps ``len(inp)`` and multiplied by 1000 (a rate in Hz for 1 ms steps).

    Differences from sinabs 3.1.3: ``name_list`` defaults to ``"Input"`` and the stateful layers
    (sinabs' default reads an attribute its layers lack, and fails); the hooks are removed after
    the call (sinabs leaves them registered, so each later call adds entries).
    """
    modules = dict(model.named_modules())
    if name_list is None:
        stateful = stateful_classes()
        name_list = ["Input"] + [name for name, m in modules.items() if isinstance(m, stateful)]
    counts = [inp.float().sum(0).cpu().numpy() * 1000 for name in name_list if name == "Input"]

    def keep_count(module, inputs, output):
        counts.append(output.float().sum(0).cpu().numpy())

    with _hooks_on(modules, name_list, keep_count), torch.no_grad():
        model(inp)
    if bRate:
        counts = [count / len(inp) * 1000 for count in counts]
    return counts


class _hooks_on:
    """Registers ``hook`` as a forward hook on the named modules (``"Input"`` skipped) for the
    duration of a ``with`` block."""

    def __init__(self, modules: dict, names: List[str], hook):
        unknown = [name for name in names if name != "Input" and name not in modules]
        if unknown:
            raise ValueError(f"name_list: no module named {unknown}")
        self._targets = [modules[name] for name in names if name != "Input"]
        self._hook = hook
        self._handles = []

    def __enter__(self):
        self._handles = [m.register_forward_hook(self._hook) for m in self._targets]
        return self

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        return False


def normalize_weights(ann: nn.Module, sample_data: torch.Tensor, output_layers: List[str],
                      param_layers: List[str], percentile: float = 99) -> None:
    """Rescales the parameters of ``ann`` in place so that each output layer's activity has its
    ``percentile`` at 1 (Rueckauer et al. 2017, "Conversion of continuous-valued deep networks
    to efficient event-driven networks for image classification"), as
    ``sinabs.utils.normalize_weights``.

    For each pair in turn, the network is run on ``sample_data`` and every parameter of the
    child ``param_layers[i]`` is divided by the ``percentile`` (0-100) of the outputs of the
    child ``output_layers[i]`` (typically the ReLU after it). Names are those of direct
    children (``ann.named_children()``).
    """
    if len(param_layers) < len(output_layers):
        raise ValueError("param_layers: needs one entry per output layer, got "
                         f"{len(param_layers)} for {len(output_layers)}")
    children = dict(ann.named_children())
    for output_name, param_name in zip(output_layers, param_layers):
        for name in (output_name, param_name):
            if name not in children:
                raise ValueError(f"output_layers/param_layers: ann has no child named {name!r}")
        outputs = []
        handle = children[output_name].register_forward_hook(
            lambda module, inputs, output: outputs.append(output.clone()))
        try:
            with torch.no_grad():
                ann(sample_data)
                scale = np.percentile(outputs[-1].cpu().numpy(), percentile)
                for parameter in children[param_name].parameters():
                    parameter.data *= 1 / scale
        finally:
            handle.remove()
