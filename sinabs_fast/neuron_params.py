"""A neuron layer's parameters for one call, as one value each: what the reference steps
(:mod:`sinabs_fast.reference`), the fused plans (``layers/functional``) and the layers pass
around, so that the argument list is written out once, here."""

from typing import Callable, NamedTuple, Optional, Union

from torch import Tensor

Param = Union[Tensor, float, None]


class LIFParams(NamedTuple):
    """A LIF-family neuron (LIF, IAF, ExpLeak) as ``sinabs.layers.functional.lif_forward`` takes
    it, besides the input, the states and the recording flag. ``spike_fn`` None: no spikes
    (ExpLeak), then ``spike_threshold``, ``reset_fn`` and ``surrogate_grad_fn`` are None too."""

    alpha_mem: Tensor
    alpha_syn: Optional[Tensor]  # None: no synaptic current
    spike_threshold: Optional[Tensor]
    spike_fn: Optional[Callable]
    reset_fn: Optional[Callable]
    surrogate_grad_fn: Optional[Callable]
    min_v_mem: Optional[Tensor]
    norm_input: bool


class ALIFParams(NamedTuple):
    """An adaptive LIF neuron as ``sinabs.layers.functional.alif_forward`` takes it, besides the
    input, the states and the recording flag. ``b0`` is the threshold without adaptation."""

    alpha_mem: Tensor
    alpha_adapt: Tensor
    alpha_syn: Optional[Tensor]
    adapt_scale: Param
    b0: Param
    spike_fn: Callable
    reset_fn: Callable
    surrogate_grad_fn: Callable
    min_v_mem: Param
    norm_input: bool
