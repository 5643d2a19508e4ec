"""Maps a layer's spike, reset and surrogate objects onto the fused kernel's arguments.

sinabs_fast's own activation classes and sinabs' (``sinabs.activation``) are both recognised, so
layers rebuilt from a sinabs layer's ``arg_dict`` run fused. Anything else (a custom spike or reset
function) returns None, and the layer runs the pure-PyTorch reference instead. A custom surrogate
callable stays fused: the kernel reads its values, computed with torch (``PRECOMPUTED``).

Layers look these up when their spike, reset or surrogate attribute is assigned, not in forward:
torch.compile then sees plain constants.
"""

from typing import NamedTuple, Optional, Sequence, Tuple

import torch

from .ops import ResetKind, SpikeKind, SurrogateKind

_MODULES = ("sinabs_fast.activation", "sinabs.activation")


def _known(obj, *names: str) -> Optional[str]:
    """The name of obj's class (or of obj, if it is a class) when it is one of ours or sinabs'."""
    cls = obj if isinstance(obj, type) else type(obj)
    if cls.__name__ in names and cls.__module__.startswith(_MODULES):
        return cls.__name__
    return None


def spike_spec(spike_fn) -> Optional[Tuple[SpikeKind, float]]:
    """(kind, max spikes per step) for a spike function, or None if the kernel can't run it."""
    if spike_fn is None:
        return SpikeKind.NONE, float("inf")
    name = _known(spike_fn, "MultiSpike", "SingleSpike", "MaxSpike")
    if name == "MultiSpike" and isinstance(spike_fn, type):
        return SpikeKind.MULTI, float("inf")
    if name == "SingleSpike" and isinstance(spike_fn, type):
        return SpikeKind.SINGLE, float("inf")
    if name == "MaxSpike" and not isinstance(spike_fn, type):
        n = spike_fn.max_num_spikes_per_bin
        return SpikeKind.MULTI, float("inf") if n is None else float(n)
    return None


class ResetSpec(NamedTuple):
    kind: ResetKind
    value: float  # MembraneReset's reset_value


def reset_spec(reset_fn) -> Optional[ResetSpec]:
    """The reset's kind and value; None if the kernel can't run it. MembraneSubtract's amount
    is ``subtract_value``, or the threshold when that is None."""
    name = _known(reset_fn, "MembraneSubtract", "MembraneReset")
    if name == "MembraneSubtract":
        return ResetSpec(ResetKind.SUBTRACT, 0.0)
    if name == "MembraneReset" and not isinstance(reset_fn.reset_value, torch.Tensor):
        return ResetSpec(ResetKind.TO_VALUE, float(reset_fn.reset_value))
    return None


_SURROGATES = {
    "SingleExponential": (SurrogateKind.SINGLE_EXPONENTIAL, ("grad_width", "grad_scale")),
    "PeriodicExponential": (SurrogateKind.PERIODIC_EXPONENTIAL, ("grad_width", "grad_scale")),
    "Heaviside": (SurrogateKind.HEAVISIDE, ("window",)),
    "Gaussian": (SurrogateKind.GAUSSIAN, ("mu", "sigma", "grad_scale")),
    "MultiGaussian": (SurrogateKind.MULTI_GAUSSIAN, ("mu", "sigma", "h", "s", "grad_scale")),
}


def surrogate_spec(surrogate_grad_fn) -> Tuple[SurrogateKind, Sequence[float]]:
    """(kind, parameters) of a built-in surrogate; PRECOMPUTED for any other callable."""
    name = _known(surrogate_grad_fn, *_SURROGATES)
    if name is None or isinstance(surrogate_grad_fn, type):
        return SurrogateKind.PRECOMPUTED, ()
    kind, fields = _SURROGATES[name]
    return kind, tuple(float(getattr(surrogate_grad_fn, f)) for f in fields)


class KernelSpec(NamedTuple):
    spike: Optional[Tuple[SpikeKind, float]]
    reset: Optional[ResetSpec]
    surrogate: Tuple[SurrogateKind, Sequence[float]]


def kernel_spec(spike_fn, reset_fn, surrogate_grad_fn) -> KernelSpec:
    return KernelSpec(spike_spec(spike_fn), reset_spec(reset_fn),
                      surrogate_spec(surrogate_grad_fn))
