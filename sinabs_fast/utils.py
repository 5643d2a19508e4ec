"""Model-level helpers for stateful and squeezed layers (as ``sinabs.utils`` 3.1.3).

Only the classes of :mod:`sinabs_fast.layers` are recognised (sinabs is never imported here).
"""

import torch.nn as nn

from .layers import SqueezeMixin, StatefulLayer


def _stateful_layers(model: nn.Module):
    return [module for module in model.modules() if isinstance(module, StatefulLayer)]


def reset_states(model: nn.Module) -> None:
    """Zeros (and detaches) the states of every stateful layer in ``model``.

    Deliberate difference from ``sinabs.utils.reset_states``: every
    :class:`~sinabs_fast.layers.StatefulLayer` found by ``model.modules()`` is reset, including
    ``model`` itself when it is a bare layer and stateful layers that have child modules.
    sinabs only loops over children, recursing into any child that has children, so it does
    nothing for a bare layer and never resets a stateful layer with submodules.
    """
    for layer in _stateful_layers(model):
        layer.reset_states()


def zero_grad(model: nn.Module) -> None:
    """Calls ``zero_grad()`` on every stateful layer in ``model``: their parameters' gradients
    are zeroed and their states detached from the graph (values kept). Parameters of other
    modules (e.g. a ``Conv2d``) are left alone, as in sinabs.

    Deliberate difference from ``sinabs.utils.zero_grad``: as for :func:`reset_states`, every
    :class:`~sinabs_fast.layers.StatefulLayer` in ``model.modules()`` is included, ``model``
    itself and stateful layers with child modules too (sinabs skips both).
    """
    for layer in _stateful_layers(model):
        layer.zero_grad()


def set_batch_size(model: nn.Module, batch_size: int) -> None:
    """Sets ``batch_size`` on every squeeze layer (:class:`~sinabs_fast.layers.SqueezeMixin`)
    in ``model``, ``model`` included. States are not reset."""
    for module in model.modules():
        if isinstance(module, SqueezeMixin):
            module.batch_size = batch_size


def _common_value(model: nn.Module, attribute: str, description: str) -> int:
    values = {
        getattr(module, attribute)
        for module in model.modules()
        if isinstance(module, SqueezeMixin)
    }
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
