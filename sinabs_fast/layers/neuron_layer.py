"""What the fused neuron layers (LIF, IAF, ExpLeak, ALIF and their recurrent forms) share: the
input check, the states' re-zeroing on a shape change, the constructor arguments a layer passes
on to its base class, and ``rec_connect`` among the recurrent layers' arguments."""

import torch
import torch.nn as nn

from .ddp_guard import check_states_not_broadcast

_INPUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_input(input_data: torch.Tensor, module: nn.Module) -> None:
    """Raises a clear error for what the neuron layer ``module`` can't take, and for states that
    DistributedDataParallel has just overwritten (ddp_guard.py)."""
    layer = type(module).__name__
    if not isinstance(input_data, torch.Tensor):
        raise TypeError(f"{layer}: input_data must be a torch.Tensor, got {type(input_data)}")
    if input_data.dim() < 2:
        raise ValueError(
            f"{layer}: input_data must have shape (batch, time, ...), got {tuple(input_data.shape)}"
        )
    if input_data.dtype not in _INPUT_DTYPES:
        raise TypeError(
            f"{layer}: input_data must be float16, bfloat16, float32 or float64, got "
            f"{input_data.dtype}"
        )
    if input_data.shape[1] == 0:
        raise ValueError(f"{layer}: input_data has no time steps (shape {tuple(input_data.shape)})")
    check_states_not_broadcast(module)


def rezero_states_for(layer: nn.Module, input_data: torch.Tensor) -> None:
    """Checks the input and gives the layer zero states of its shape (batch, *trailing) unless
    they have it already: sinabs' recurrent and adaptive layers re-zero on any state-shape
    change (LIF resamples the batch rows instead)."""
    check_input(input_data, layer)
    batch_size, _, *trailing = input_data.shape
    shape = (batch_size, *trailing)
    if not layer.is_state_initialised() or not layer.state_has_shape(shape):
        layer.init_state_with_shape(shape)


def firing_params(layer: nn.Module, spike_threshold) -> dict:
    """The constructor arguments of a fused neuron layer (LIF or ALIF) from ``spike_threshold``
    on, in the order sinabs lists them (its ``repr`` and ``arg_dict`` follow it)."""
    return dict(
        spike_threshold=spike_threshold,
        spike_fn=layer.spike_fn,
        reset_fn=layer.reset_fn,
        surrogate_grad_fn=layer.surrogate_grad_fn,
        train_alphas=layer.train_alphas,
        shape=layer.shape,
        min_v_mem=layer.min_v_mem,
        norm_input=layer.norm_input,
        record_states=layer.record_states,
    )


def passed_on(arguments: dict, *own: str) -> dict:
    """What a layer's constructor passes on to its base's unchanged, by name: its ``locals()``
    taken first thing, less ``self``, ``__class__`` and the arguments named in ``own``. The
    layer's signature stays written out, so that ``inspect.signature``, IDE help and the errors
    for a wrong argument name the layer's own arguments."""
    return {name: value for name, value in arguments.items()
            if name not in own and name not in ("self", "__class__")}


class RecurrentConnection:
    """Mixin of the recurrent layers (``class LIFRecurrent(RecurrentConnection, LIF)``):
    ``rec_connect`` joins the base layer's constructor arguments, last."""

    rec_connect: nn.Module

    @property
    def _param_dict(self) -> dict:
        param_dict = super()._param_dict
        param_dict.update(rec_connect=self.rec_connect)
        return param_dict


class StateShape:
    """Mixin of LIF and ALIF: ``shape``, the states' shape (None before the first call), which
    is also the constructor argument that rebuilds the layer with its states."""

    @property
    def shape(self):
        return self.v_mem.shape if self.is_state_initialised() else None
