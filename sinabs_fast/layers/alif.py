"""ALIF: adaptive leaky integrate-and-fire neurons (Bellec et al. 2018), on the fused ALIF op."""

from typing import Callable, Optional, Union

import torch
import torch.nn as nn

from ..activation import MembraneSubtract, SingleExponential, SingleSpike
from ..neuron_params import ALIFParams
from .firing_rate import FiringRate, LazyRate
from .functional.alif import run_alif
from .lif import KernelInputs
from .neuron_layer import RecurrentConnection, StateShape, firing_params, rezero_states_for
from .recurrent_arguments import arguments_of
from .reshape import SqueezedLayer
from .stateful_layer import StatefulLayer
from .time_constants import TimeConstants
from .validation import require_positive

Tau = Union[float, torch.Tensor]


def _tau_parameter(tau: Tau) -> nn.Parameter:
    # sinabs keeps tau's dtype and so rejects an int tau ("Only Tensors of floating point ...
    # can require gradients"); an int becomes the default float dtype here.
    tau = torch.as_tensor(tau)
    return nn.Parameter(tau if tau.is_floating_point() else tau.to(torch.get_default_dtype()))


class ALIF(KernelInputs, FiringRate, StateShape, TimeConstants, StatefulLayer):
    """Adaptive leaky integrate-and-fire neurons, stepped through time by one fused kernel.

    Per step (sinabs 3.1.3's ``alif_forward``, docs/semantics.md, section 2): ``i = alpha_syn * (i + x)``
    (or ``i = x``); with ``norm_input`` ``i = (1 - alpha_mem) * i``; ``v = alpha_mem * v + i``;
    the threshold ``b0 + adapt_scale * b`` (``b0`` = ``spike_threshold``); spikes; the reset
    (``MembraneSubtract`` subtracts the adaptive threshold); ``b = alpha_adapt * b + (1 -
    alpha_adapt) * s``; then ``v = relu(v - min_v_mem) + min_v_mem``. ``alpha = exp(-1 / tau)``.
    Same arguments, defaults, parameters and states as ``sinabs.layers.ALIF``, with
    bit-identical outputs on the CPU.

    sinabs' quirks that decide its numbers are kept: ``i_syn`` is not carried from one forward
    call to the next (its buffer stays zero); with ``norm_input`` the stored synaptic current is
    the rescaled one, so the rescaling compounds; any state-shape change re-zeros the states;
    the recordings show the synaptic current and pre-reset membrane one step late. Fixed: the
    constructor arguments (``repr``, ``deepcopy``) keep ``norm_input``, do not detach trainable
    alphas, and work with ``train_alphas`` and no ``tau_syn``; an int tau is accepted.

    Args:
        tau_mem: membrane time constant (scalar or per-neuron tensor).
        tau_adapt: time constant of the threshold adaptation.
        tau_syn: synaptic time constant; None (default) for no synaptic current.
        adapt_scale: how much each spike raises the threshold (through ``b``).
        spike_threshold: the threshold without adaptation, ``b0``.
        spike_fn: ``SingleSpike`` (default) / ``MultiSpike`` (the class) or ``MaxSpike(n)``.
        reset_fn: ``MembraneSubtract()`` or ``MembraneReset()``.
        surrogate_grad_fn: surrogate gradient of the spike function.
        min_v_mem: lower bound of the membrane, applied every step.
        shape: initialise the states with this shape now.
        train_alphas: train ``alpha = exp(-1/tau)`` instead of tau.
        norm_input: scale the input current by ``1 - alpha_mem``.
        record_states: keep the states of every step in ``self.recordings``.

    Shape:
        Input and output: ``(batch, time, *trailing)``; states ``(batch, *trailing)``.

    Attributes:
        v_mem, b, spike_threshold (the adapted threshold), i_syn: states after the last call;
        firing_rate; spike_counts: spikes summed over time, ``(batch, *trailing)``, read from
        the kernel.
    """

    def __init__(
        self,
        tau_mem: Tau,
        tau_adapt: Tau,
        tau_syn: Optional[Tau] = None,
        adapt_scale: Union[float, torch.Tensor] = 1.8,
        spike_threshold: torch.Tensor = torch.tensor(1.0),
        spike_fn: Callable = SingleSpike,
        reset_fn: Callable = MembraneSubtract(),
        surrogate_grad_fn: Callable = SingleExponential(),
        min_v_mem: Optional[float] = None,
        shape: Optional[torch.Size] = None,
        train_alphas: bool = False,
        norm_input: bool = True,
        record_states: bool = False,
    ):
        names = ["v_mem", "i_syn", "b", "spike_threshold"] if tau_syn is not None else [
            "v_mem", "b", "spike_threshold"]
        super().__init__(state_names=names)
        # sinabs: only a truthy tau_syn is a parameter (tau_syn=0 keeps the i_syn state but has
        # no synaptic dynamics); a per-neuron tensor, for which sinabs raises, is.
        syn_dynamics = isinstance(tau_syn, torch.Tensor) and tau_syn.numel() > 1 or bool(tau_syn)
        for value, name in ((tau_mem, "tau_mem"), (tau_adapt, "tau_adapt"),
                            (tau_syn if syn_dynamics else None, "tau_syn"),
                            (spike_threshold, "spike_threshold")):
            require_positive(value, name)
        if train_alphas:
            alpha = lambda tau: nn.Parameter(torch.exp(-1 / torch.as_tensor(tau)))  # noqa: E731
            self.alpha_mem = alpha(tau_mem)
            self.alpha_adapt = alpha(tau_adapt)
            self.alpha_syn = alpha(tau_syn) if tau_syn is not None else None
        else:
            self.tau_mem = _tau_parameter(tau_mem)
            self.tau_adapt = _tau_parameter(tau_adapt)
            self.tau_syn = _tau_parameter(tau_syn) if syn_dynamics else None
        self.adapt_scale = adapt_scale
        self.b0 = spike_threshold
        self.set_kernel_inputs(spike_fn, reset_fn, surrogate_grad_fn)
        self.min_v_mem = min_v_mem
        self.train_alphas = train_alphas
        self.norm_input = norm_input
        self.record_states = record_states
        self.spike_counts = None
        if shape:
            self.init_state_with_shape(shape)

    @property
    def alpha_adapt_calculated(self) -> torch.Tensor:
        """alpha_adapt = exp(-1 / tau_adapt)."""
        return self._alpha("adapt")

    def _neuron_params(self) -> ALIFParams:
        """The neuron's parameters for this call."""
        return ALIFParams(self.alpha_mem_calculated, self.alpha_adapt_calculated,
                          self.alpha_syn_calculated, self.adapt_scale, self.b0, self.spike_fn,
                          self.reset_fn, self.surrogate_grad_fn, self.min_v_mem, self.norm_input)

    def _keep(self, spikes, state, recordings, counts) -> torch.Tensor:
        # As sinabs, i_syn is not written back: it restarts from its buffer every call.
        self._store(b=state["b"], v_mem=state["v_mem"], spike_threshold=state["spike_threshold"],
                    recordings=recordings, spike_counts=counts,
                    _firing_rate=LazyRate(counts, spikes.numel(), torch.is_grad_enabled()))
        return spikes

    def forward(self, input_data: torch.Tensor) -> torch.Tensor:
        """Args: input_data of shape (batch, time, ...). Returns the spikes, same shape."""
        rezero_states_for(self, input_data)
        return self._keep(*run_alif(input_data, self._states(), self._neuron_params(),
                                    self.record_states, self._kernel_spec, self._rec_connect()))

    def _rec_connect(self) -> Optional[nn.Module]:
        """The recurrent map of each step's spikes onto the next step's input; none here."""
        return None

    @property
    def _param_dict(self) -> dict:
        param_dict = super()._param_dict

        def tau(name: str) -> Optional[torch.Tensor]:
            value = self._tau(name)
            return None if value is None else value.detach()

        param_dict.update(
            tau_mem=tau("mem"),
            tau_adapt=tau("adapt"),
            tau_syn=tau("syn"),
            adapt_scale=self.adapt_scale,
            **firing_params(self, self.b0),
        )
        return param_dict


class ALIFRecurrent(RecurrentConnection, ALIF):
    """ALIF neurons with recurrent connections: each step's input is ``x_t + rec_out``, with
    ``rec_out = rec_connect(spikes_{t-1}).reshape(batch, *trailing)`` (zeros at the first step
    of every call). A linear map (``nn.Linear(N, N)``, alone or after ``nn.Flatten()``) runs
    with the whole time loop in one op call (CPU and CUDA); around any other module time is a
    Python loop, each step's neuron update one fused op call. Same arguments as
    ``sinabs.layers.ALIFRecurrent`` (``rec_connect`` after ``tau_adapt``), bit-identical on the
    CPU; ``spike_counts`` is the spikes' sum over time."""

    @arguments_of(ALIF.__init__, rec_connect_after="tau_adapt")
    def __init__(self, rec_connect: nn.Module, **arguments):
        super().__init__(**arguments)
        self.rec_connect = rec_connect

    def _rec_connect(self) -> nn.Module:
        return self.rec_connect


class ALIFSqueeze(SqueezedLayer, ALIF):
    """ALIF on squeezed input (batch*time, ...), for use between Conv2d / pooling layers."""
