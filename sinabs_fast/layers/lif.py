"""LIF: the leaky integrate-and-fire layer, on the fused LIF-family kernel. IAF and ExpLeak are
special cases of it (alpha_mem = 1; no spikes)."""

from typing import Callable, Optional, Union

import torch
import torch.nn as nn

from ..activation import MembraneSubtract, MultiSpike, SingleExponential
from ..neuron_spec import kernel_spec
from . import functional
from .ddp_guard import check_states_not_broadcast
from .reshape import SqueezedLayer
from .stateful_layer import StatefulLayer
from .time_constants import TimeConstants
from .validation import require_positive

_INPUT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _positive_threshold(spike_threshold) -> nn.Parameter:
    # A fresh copy: sinabs shares the default threshold's storage between layers (changed on purpose: docs/semantics.md, section 5).
    require_positive(spike_threshold, "spike_threshold")
    return nn.Parameter(torch.as_tensor(spike_threshold).detach().clone(), requires_grad=False)


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


def _kernel_input(name: str):
    """A property for spike_fn / reset_fn / surrogate_grad_fn that refreshes the layer's kernel
    spec on assignment, so forward (and torch.compile) only reads constants."""

    def get(self):
        return self.__dict__[f"_{name}"]

    def set(self, value):
        self.__dict__[f"_{name}"] = value
        if all(f"_{n}" in self.__dict__ for n in _KERNEL_INPUTS):
            self.__dict__["_kernel_spec"] = kernel_spec(
                *(self.__dict__[f"_{n}"] for n in _KERNEL_INPUTS))

    return property(get, set)


_KERNEL_INPUTS = ("spike_fn", "reset_fn", "surrogate_grad_fn")


class KernelInputs:
    """Mixin of the fused neuron layers: ``spike_fn``, ``reset_fn`` and ``surrogate_grad_fn``
    as properties that keep the kernel spec current, and unpickling that accepts sinabs' layout.

    sinabs keeps the three as plain attributes; a whole sinabs model pickled with
    ``torch.save(model)`` and loaded with its classes mapped to sinabs_fast's
    (:func:`sinabs_fast.conversion.load_sinabs_model`) therefore arrives with ``spike_fn``
    instead of ``_spike_fn`` and without ``_kernel_spec`` or ``spike_counts``.
    """

    spike_fn = _kernel_input("spike_fn")
    reset_fn = _kernel_input("reset_fn")
    surrogate_grad_fn = _kernel_input("surrogate_grad_fn")

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        inputs = {}
        for name in _KERNEL_INPUTS:
            private = state.pop(f"_{name}", None)  # sinabs_fast's layout
            inputs[name] = state.pop(name, private)  # sinabs' layout
        state.pop("_kernel_spec", None)  # recomputed below, from the objects now loaded
        state.setdefault("spike_counts", None)
        super().__setstate__(state)
        for name, value in inputs.items():
            setattr(self, name, value)


class LIF(KernelInputs, TimeConstants, StatefulLayer):
    """Leaky integrate-and-fire neurons, stepped through time by one fused kernel.

    Per step: ``i = alpha_syn * (i + x)`` (or ``i = x`` without ``tau_syn``);
    ``v = alpha_mem * v + (1 - alpha_mem) * i`` (``+ i`` without ``norm_input``); spikes from
    ``spike_fn``; reset by ``reset_fn``; then ``v = relu(v - min_v_mem) + min_v_mem``. Here
    ``alpha = exp(-1 / tau)``. Same arguments, defaults, parameters and state behaviour as
    ``sinabs.layers.LIF`` (3.1.3), with bit-identical outputs on the CPU.

    Args:
        tau_mem: membrane time constant (scalar or per-neuron tensor).
        tau_syn: synaptic time constant; None (default) for no synaptic current.
        spike_threshold: spikes are emitted when ``v_mem`` reaches it (positive; scalar or
            per-neuron tensor).
        spike_fn: ``MultiSpike`` / ``SingleSpike`` (the class) or a ``MaxSpike(n)`` instance.
        reset_fn: ``MembraneSubtract()`` or ``MembraneReset()``.
        surrogate_grad_fn: surrogate gradient of the spike function (any callable
            ``fn(v_mem, spike_threshold)``; the built-in ones are fused).
        min_v_mem: lower bound of the membrane, applied every step.
        train_alphas: train ``alpha = exp(-1/tau)`` instead of tau.
        shape: initialise the states with this shape now instead of at the first forward.
        norm_input: scale the input by ``1 - alpha_mem``.
        record_states: keep every step's states in ``self.recordings``.

    Shape:
        Input and output: ``(batch, time, *trailing)``; states ``(batch, *trailing)``.

    Attributes:
        v_mem, i_syn: the states after the last step (with their graph).
        firing_rate: mean of the last output; spike_counts: spikes summed over time,
            ``(batch, *trailing)``, read from the kernel.
    """

    def __init__(
        self,
        tau_mem: Union[float, torch.Tensor],
        tau_syn: Optional[Union[float, torch.Tensor]] = None,
        spike_threshold: torch.Tensor = torch.tensor(1.0),
        spike_fn: Callable = MultiSpike,
        reset_fn: Callable = MembraneSubtract(),
        surrogate_grad_fn: Callable = SingleExponential(),
        min_v_mem: Optional[float] = None,
        train_alphas: bool = False,
        shape: Optional[torch.Size] = None,
        norm_input: bool = True,
        record_states: bool = False,
    ):
        super().__init__(state_names=["v_mem", "i_syn"] if tau_syn is not None else ["v_mem"])
        require_positive(tau_mem, "tau_mem")
        require_positive(tau_syn, "tau_syn")
        as_f32 = lambda tau: torch.as_tensor(tau, dtype=torch.float32)  # noqa: E731
        if train_alphas:
            self.alpha_mem = nn.Parameter(torch.exp(-1.0 / as_f32(tau_mem)))
            self.alpha_syn = (
                nn.Parameter(torch.exp(-1.0 / as_f32(tau_syn))) if tau_syn is not None else None
            )
        else:
            self.tau_mem = nn.Parameter(as_f32(tau_mem))
            self.tau_syn = nn.Parameter(as_f32(tau_syn)) if tau_syn is not None else None
        self.spike_fn = spike_fn
        self.reset_fn = reset_fn
        self.surrogate_grad_fn = surrogate_grad_fn
        self.train_alphas = train_alphas
        self.norm_input = norm_input
        self.record_states = record_states
        self.min_v_mem = (
            nn.Parameter(torch.as_tensor(min_v_mem), requires_grad=False)
            if min_v_mem is not None else None
        )
        self.spike_threshold = (
            _positive_threshold(spike_threshold) if spike_threshold is not None else None
        )
        self.spike_counts = None
        if shape:
            self.init_state_with_shape(shape)

    def _prepare_states(self, batch_size: int, trailing) -> None:
        """sinabs' state handling: initialise, re-initialise on a trailing-shape change, or
        resample the batch rows on a batch-size change."""
        shape = (batch_size, *trailing)
        if not self.is_state_initialised():
            self.init_state_with_shape(shape)
        if not self.state_has_shape(shape):
            if not self.has_trailing_dimension(trailing):
                self.init_state_with_shape(shape)
            else:
                self.handle_state_batch_size_mismatch(batch_size)

    def _neuron_args(self, alpha_syn: Optional[torch.Tensor]) -> dict:
        """The functional forms' arguments for this call (alpha_syn computed once by the caller)."""
        return dict(
            alpha_mem=self.alpha_mem_calculated,
            alpha_syn=alpha_syn,
            state=dict(self.named_buffers()),
            spike_threshold=self.spike_threshold,
            spike_fn=self.spike_fn,
            reset_fn=self.reset_fn,
            surrogate_grad_fn=self.surrogate_grad_fn,
            min_v_mem=self.min_v_mem,
            norm_input=self.norm_input,
            record_states=self.record_states,
            spec=self._kernel_spec,
        )

    def _keep(self, state: dict, recordings: dict, alpha_syn: Optional[torch.Tensor]) -> None:
        """Stores the final states (with their graph) and the recordings."""
        self.v_mem = state["v_mem"]
        self.i_syn = state["i_syn"] if alpha_syn is not None else None
        self.recordings = recordings

    def forward(self, input_data: torch.Tensor) -> torch.Tensor:
        """Args: input_data of shape (batch, time, ...). Returns the spikes, same shape."""
        check_input(input_data, self)
        batch_size, _, *trailing = input_data.shape
        self._prepare_states(batch_size, trailing)
        alpha_syn = self.alpha_syn_calculated
        output, state, recordings, counts = functional.lif_forward(
            input_data=input_data, **self._neuron_args(alpha_syn)
        )
        self._keep(state, recordings, alpha_syn)
        self.spike_counts = counts
        # The mean of the spikes, from the kernel's counts rather than another pass over them
        # (equal to output.mean() while the spike total is exact in float32, below 2^24).
        self.firing_rate = output.mean() if counts is None else counts.sum() / output.numel()
        return output

    @property
    def shape(self):
        return self.v_mem.shape if self.is_state_initialised() else None

    @property
    def _param_dict(self) -> dict:
        param_dict = super()._param_dict
        tau_syn, tau_mem = self.tau_syn_calculated, self.tau_mem_calculated
        param_dict.update(
            tau_mem=tau_mem.detach() if tau_mem is not None else None,
            tau_syn=tau_syn.detach() if tau_syn is not None else None,
            **firing_params(self, self.spike_threshold),
        )
        return param_dict


class LIFRecurrent(LIF):
    """LIF neurons with recurrent connections: each step's input is ``x_t + rec_out``, where
    ``rec_out = rec_connect(spikes_{t-1}).reshape(batch, *trailing)`` (zeros at the first step of
    every call). ``rec_connect`` is any module (e.g. ``nn.Sequential(nn.Flatten(),
    nn.Linear(N, N))``); time is a Python loop around it, and each step's neuron update, forward
    and backward, is one fused op call. Same arguments, defaults, parameters and state behaviour
    as ``sinabs.layers.LIFRecurrent`` (3.1.3), with bit-identical outputs on the CPU.

    Differences from :class:`LIF` (as in sinabs): the states are re-zeroed on *any* state-shape
    mismatch (no batch resampling); ``firing_rate = spikes.sum() / spikes.numel()``; no
    ``spike_counts``.

    Recordings (``record_states=True``) reproduce sinabs' aliasing quirk bit for bit
    (docs/semantics.md, section 5): for ``t < T - 1``, ``recordings["v_mem"][:, t]`` holds the *pre-reset,
    pre-clamp* membrane of step ``t + 1`` and ``recordings["i_syn"][:, t]`` the synaptic
    current of step ``t + 1``; only ``[:, T - 1]`` is the state after the last step. (Plain
    :class:`LIF` records the post-reset state of every step.)

    Args:
        tau_mem: membrane time constant.
        rec_connect: the recurrent module; it receives the spikes ``(batch, *trailing)`` and
            its output must reshape to that shape.
        tau_syn, spike_threshold, spike_fn, reset_fn, surrogate_grad_fn, min_v_mem,
        train_alphas, shape, norm_input, record_states: as in :class:`LIF`.
    """

    def __init__(
        self,
        tau_mem: Union[float, torch.Tensor],
        rec_connect: torch.nn.Module,
        tau_syn: Optional[Union[float, torch.Tensor]] = None,
        spike_threshold: torch.Tensor = torch.tensor(1.0),
        spike_fn: Callable = MultiSpike,
        reset_fn: Callable = MembraneSubtract(),
        surrogate_grad_fn: Callable = SingleExponential(),
        min_v_mem: Optional[float] = None,
        train_alphas: bool = False,
        shape: Optional[torch.Size] = None,
        norm_input: bool = True,
        record_states: bool = False,
    ):
        super().__init__(
            tau_mem=tau_mem,
            tau_syn=tau_syn,
            spike_threshold=spike_threshold,
            spike_fn=spike_fn,
            reset_fn=reset_fn,
            surrogate_grad_fn=surrogate_grad_fn,
            min_v_mem=min_v_mem,
            shape=shape,
            train_alphas=train_alphas,
            norm_input=norm_input,
            record_states=record_states,
        )
        self.rec_connect = rec_connect

    def forward(self, input_data: torch.Tensor) -> torch.Tensor:
        """Args: input_data of shape (batch, time, ...). Returns the spikes, same shape."""
        check_input(input_data, self)
        batch_size, _, *trailing = input_data.shape
        shape = (batch_size, *trailing)
        if not self.is_state_initialised() or not self.state_has_shape(shape):
            self.init_state_with_shape(shape)
        alpha_syn = self.alpha_syn_calculated
        spikes, state, recordings = functional.lif_recurrent(
            input_data=input_data, rec_connect=self.rec_connect, **self._neuron_args(alpha_syn)
        )
        self._keep(state, recordings, alpha_syn)
        self.firing_rate = spikes.sum() / spikes.numel()
        return spikes

    @property
    def _param_dict(self) -> dict:
        param_dict = super()._param_dict
        param_dict.update(rec_connect=self.rec_connect)
        return param_dict


class LIFSqueeze(SqueezedLayer, LIF):
    """LIF on squeezed input (batch*time, ...), for use between Conv2d / pooling layers."""
