"""LIF: the leaky integrate-and-fire layer, on the fused LIF-family kernel. IAF and ExpLeak are
special cases of it (alpha_mem = 1; no spikes)."""

from typing import Callable, Optional, Union

import torch
import torch.nn as nn

from ..activation import MembraneSubtract, MultiSpike, SingleExponential
from ..neuron_params import LIFParams
from ..neuron_spec import kernel_spec
from .firing_rate import FiringRate, LazyRate
from .functional.lif import plan_lif_call, reference_lif, run_lif_call
from .functional.lif_recurrent import run_lif_recurrent
from .neuron_layer import (RecurrentConnection, StateShape, check_input, firing_params,
                           rezero_states_for)
from .recurrent_arguments import arguments_of
from .reshape import SqueezedLayer
from .stateful_layer import StatefulLayer
from .time_constants import TimeConstants
from .validation import require_positive


def _positive_threshold(spike_threshold) -> nn.Parameter:
    # A fresh copy: sinabs shares the default threshold's storage between layers (changed on purpose: docs/semantics.md, section 5).
    require_positive(spike_threshold, "spike_threshold")
    return nn.Parameter(torch.as_tensor(spike_threshold).detach().clone(), requires_grad=False)


def _description(t: Optional[torch.Tensor]) -> Optional[tuple]:
    """What a plan reads of a tensor that changes from call to call (an input, a state, a decay
    factor computed from its time constant)."""
    return None if t is None else (t.dtype, t.ndim, t.device, t.requires_grad)


def _identity(value) -> tuple:
    """What a plan reads of a parameter: its identity (the plan holds it, so the id stays its
    own) and description, or a Python number's value."""
    if isinstance(value, torch.Tensor):
        return (id(value), *_description(value))
    return (value,)


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

    def set_kernel_inputs(self, spike_fn, reset_fn, surrogate_grad_fn) -> None:
        """Assigns the three at once, with one kernel-spec lookup (constructors, unpickling)."""
        for name, value in zip(_KERNEL_INPUTS, (spike_fn, reset_fn, surrogate_grad_fn)):
            self.__dict__[f"_{name}"] = value
        self.__dict__["_kernel_spec"] = kernel_spec(spike_fn, reset_fn, surrogate_grad_fn)

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        inputs = {}
        for name in _KERNEL_INPUTS:
            private = state.pop(f"_{name}", None)  # sinabs_fast's layout
            inputs[name] = state.pop(name, private)  # sinabs' layout
        state.pop("_kernel_spec", None)  # recomputed below, from the objects now loaded
        state.setdefault("spike_counts", None)
        super().__setstate__(state)
        self.set_kernel_inputs(**inputs)


class LIF(KernelInputs, FiringRate, StateShape, TimeConstants, StatefulLayer):
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
        self.set_kernel_inputs(spike_fn, reset_fn, surrogate_grad_fn)
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
        if shape != (0,) and self.state_has_shape(shape):  # the usual call: nothing to do
            return
        if not self.is_state_initialised():
            self.init_state_with_shape(shape)
        if not self.state_has_shape(shape):
            if not self.has_trailing_dimension(trailing):
                self.init_state_with_shape(shape)
            else:
                self.handle_state_batch_size_mismatch(batch_size)

    def _neuron_params(self, alpha_mem: torch.Tensor,
                       alpha_syn: Optional[torch.Tensor]) -> LIFParams:
        """The neuron's parameters for this call (the decay factors computed by the caller)."""
        return LIFParams(alpha_mem, alpha_syn, self.spike_threshold,
                         self.spike_fn, self.reset_fn, self.surrogate_grad_fn, self.min_v_mem,
                         self.norm_input)

    def _keep(self, state: dict, recordings: dict, alpha_syn: Optional[torch.Tensor],
              **more) -> None:
        """Stores the final states (with their graph), the recordings and ``more``."""
        self._store(v_mem=state["v_mem"], i_syn=state["i_syn"] if alpha_syn is not None else None,
                    recordings=recordings, **more)

    def forward(self, input_data: torch.Tensor) -> torch.Tensor:
        """Args: input_data of shape (batch, time, ...). Returns the spikes, same shape."""
        check_input(input_data, self)
        alpha_mem, alpha_syn = self.alpha_mem_calculated, self.alpha_syn_calculated
        planned = self.__dict__.get("_planned_call")  # (key, LIFCall) of an earlier call
        if planned is not None and self._call_key(input_data, alpha_mem, alpha_syn) == planned[0]:
            call = planned[1]
        else:
            call = self._plan(input_data, alpha_mem, alpha_syn)
        if call is None:  # one op call can't reproduce sinabs here
            output, state, recordings, counts = reference_lif(
                input_data, self._states(), self._neuron_params(alpha_mem, alpha_syn),
                self.record_states)
        else:
            buffers = self._buffers
            output, state, recordings, counts = run_lif_call(
                call, input_data, buffers["v_mem"], buffers.get("i_syn"), alpha_mem, alpha_syn,
                self.surrogate_grad_fn)
        # The mean of the spikes, from the kernel's counts rather than another pass over them
        # (equal to output.mean() while the spike total is exact in float32, below 2^24),
        # computed when firing_rate is first read (two torch ops a call otherwise).
        rate = (output.mean() if counts is None
                else LazyRate(counts, output.numel(), torch.is_grad_enabled()))
        self._keep(state, recordings, alpha_syn, spike_counts=counts, _firing_rate=rate)
        return output

    def _plan(self, input_data: torch.Tensor, alpha_mem: torch.Tensor,
              alpha_syn: Optional[torch.Tensor]):
        """Prepares the states for the input and plans the op call (None: the reference runs),
        kept for the next calls when it is reusable."""
        batch_size, _, *trailing = input_data.shape
        self._prepare_states(batch_size, trailing)
        call = plan_lif_call(input_data, self._states(), self._neuron_params(alpha_mem, alpha_syn),
                             self.record_states, self._kernel_spec)
        reusable = call is not None and call.reusable and not torch.compiler.is_compiling()
        self.__dict__["_planned_call"] = (
            (self._call_key(input_data, alpha_mem, alpha_syn), call) if reusable else None)
        return call

    def _call_key(self, input_data: torch.Tensor, alpha_mem: torch.Tensor,
                  alpha_syn: Optional[torch.Tensor]) -> tuple:
        """What a planned call was planned from, as a tuple to compare: the input's and the
        states' shapes, dtypes and devices, what needs a gradient, the parameters' identities and
        descriptions, the kernel spec and the flags. Equal keys plan the same call, so a layer
        called again on the same kind of input skips planning. Under torch.compile (which
        traces the planning instead) and for tensor subclasses the key never matches."""
        if type(input_data) is not torch.Tensor or torch.compiler.is_compiling():
            return (None,)
        # Read from the module's dicts directly: nn.Module.__getattr__ is a Python function.
        buffers, parameters, attributes = self._buffers, self._parameters, self.__dict__
        v_mem, i_syn = buffers["v_mem"], buffers.get("i_syn")
        threshold = parameters.get("spike_threshold", attributes.get("spike_threshold"))
        min_v_mem = parameters.get("min_v_mem", attributes.get("min_v_mem"))
        amount = getattr(attributes["_reset_fn"], "subtract_value", None)
        return (
            attributes["_kernel_spec"], self.record_states, self.norm_input,
            torch.is_grad_enabled(), input_data.shape, input_data.dtype, input_data.device,
            input_data.requires_grad, v_mem.shape, v_mem.dtype, v_mem.device,
            v_mem.requires_grad, _description(i_syn), None if i_syn is None else i_syn.shape,
            _description(alpha_mem), _description(alpha_syn), _identity(threshold),
            _identity(min_v_mem), _identity(amount),
        )

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_planned_call", None)  # replanned at the next call
        return state

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


class LIFRecurrent(RecurrentConnection, LIF):
    """LIF neurons with recurrent connections: each step's input is ``x_t + rec_out``, where
    ``rec_out = rec_connect(spikes_{t-1}).reshape(batch, *trailing)`` (zeros at the first step of
    every call). ``rec_connect`` is any module; a linear map (``nn.Linear(N, N)``, alone or
    after ``nn.Flatten()``) runs with the whole time loop in one op call (CPU and CUDA), any
    other module in a Python loop around it, each step's neuron update one fused op call. Same arguments, defaults, parameters and state behaviour
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

    @arguments_of(LIF.__init__, rec_connect_after="tau_mem")
    def __init__(self, rec_connect: nn.Module, **arguments):
        super().__init__(**arguments)
        self.rec_connect = rec_connect

    def forward(self, input_data: torch.Tensor) -> torch.Tensor:
        """Args: input_data of shape (batch, time, ...). Returns the spikes, same shape."""
        rezero_states_for(self, input_data)
        alpha_syn = self.alpha_syn_calculated
        spikes, state, recordings = run_lif_recurrent(
            input_data, self._states(), self._neuron_params(self.alpha_mem_calculated, alpha_syn),
            self.rec_connect, self.record_states, self._kernel_spec)
        self._keep(state, recordings, alpha_syn, firing_rate=spikes.sum() / spikes.numel())
        return spikes


class LIFSqueeze(SqueezedLayer, LIF):
    """LIF on squeezed input (batch*time, ...), for use between Conv2d / pooling layers."""
