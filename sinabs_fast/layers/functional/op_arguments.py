"""How a layer's parameters become the fused ops' arguments, shared by the functional forms.

Dtypes: which dtype sinabs' step-by-step torch ops end up computing in, worked out without
data. The state starts as float32 and follows torch's type promotion, in which 0-dim tensors
and Python numbers don't lift dimensioned tensors of their category (docs/semantics.md, "Dtype
rules"). The fused kernel computes in one dtype, so the layer asks here whether one dtype
reproduces sinabs exactly.

Broadcasting: every parameter 0-dim, or broadcast against the state and flattened to
(batch, neurons).
"""

from functools import lru_cache, reduce, wraps
from typing import Callable, NamedTuple, Optional, Tuple, Union

import math

import torch
from torch import Tensor

from ...neuron_params import Param

class CallShape(NamedTuple):
    """A layer call's input as the plans read it: (batch, time, *trailing) of ``dtype`` on
    ``device``."""

    dtype: torch.dtype
    batch: int
    trailing: Tuple[int, ...]
    device: torch.device


# (dtype, has dimensions) of one operand; Python numbers are (their default dtype, False).
Operand = Tuple[torch.dtype, bool]


def operand(value: Union[torch.Tensor, float, None]) -> Optional[Operand]:
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.dtype, value.dim() > 0
    return torch.get_default_dtype(), False


def _category(dtype: torch.dtype) -> int:
    if dtype == torch.bool:
        return 0
    if dtype.is_complex:
        return 3
    return 2 if dtype.is_floating_point else 1


def promote(*ops: Operand) -> Operand:
    """torch.result_type of the operands, as an Operand (results of ops are dimensioned)."""
    dimmed = [d for d, has_dims in ops if has_dims]
    zero = [d for d, has_dims in ops if not has_dims]
    if not dimmed:
        return reduce(torch.promote_types, zero), False
    result = reduce(torch.promote_types, dimmed)
    higher = [d for d in zero if _category(d) > _category(result)]
    return (reduce(torch.promote_types, higher) if higher else result), True


class StepDtypes(NamedTuple):
    v_mem: Operand  # membrane after the step
    i_syn: Optional[Operand]  # synaptic current after the step
    current: Operand  # the (scaled) input current added to the membrane
    spike_div: Optional[Operand]  # where v / threshold (or v - threshold) is computed


_SPIKES: Operand = (torch.float32, True)


def step_dtypes(v, i, x, alpha_mem, alpha_syn, norm_input, threshold, amount, min_v_mem,
                spiking: bool, subtract: bool) -> StepDtypes:
    """The dtypes one step of sinabs' update produces (every argument an Operand or None)."""
    current = x if alpha_syn is None else promote(promote(i, x), alpha_syn)
    new_i = current if alpha_syn is not None else None
    if norm_input:
        current = promote(alpha_mem, current)  # (1 - alpha) keeps alpha's dtype
    v = promote(promote(alpha_mem, v), current)
    spike_div = None
    if spiking:
        spike_div = promote(v, threshold)
        v = promote(v, promote(_SPIKES, amount)) if subtract else promote(v, _SPIKES)
    if min_v_mem is not None:
        v = promote(promote(v, min_v_mem), min_v_mem)
    return StepDtypes(v, new_i, current, spike_div)


def eager_cache(fn: Callable) -> Callable:
    """``functools.lru_cache`` for eager calls of a pure function of hashable arguments;
    torch.compile traces ``fn`` itself (it would only ignore the cache, with a warning)."""
    cached = lru_cache(maxsize=1024)(fn)

    @wraps(fn)
    def call(*args, **kwargs):
        if torch.compiler.is_compiling():
            return fn(*args, **kwargs)
        return cached(*args, **kwargs)

    return call


@eager_cache
def steady_dtypes(v, i, **kwargs) -> Tuple[StepDtypes, bool]:
    """Iterates the step until the state dtypes stop changing. Returns the steady step and whether
    the given state already had the steady dtypes (else the first step changes them). A pure
    function of dtypes and flags: each combination is worked out once per process."""
    first = step_dtypes(v, i, **kwargs)
    unchanged = first.v_mem == v and (i is None or first.i_syn == i)
    if unchanged:  # the step maps the state's dtypes onto themselves: already steady
        return first, True
    step = first
    for _ in range(4):
        nxt = step_dtypes(step.v_mem, step.i_syn if i is not None else None, **kwargs)
        if nxt == step:
            break
        step = nxt
    return step, False


def requires_grad(*values) -> bool:
    """Whether any of ``values`` is a tensor that requires grad."""
    return any(isinstance(t, Tensor) and t.requires_grad for t in values)


def device_scalar(value: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A 0-dim tensor of ``value`` on ``device``, made by a fill (``torch.tensor(value,
    device=...)`` copies from host memory instead, and on a GPU that copy waits for the queued
    work to finish), once per value, dtype and device: the ops only read it, and a fill per call
    costs a tiny call's microseconds. The sign is part of the key, as 0.0 == -0.0."""
    return _filled(value, math.copysign(1.0, value), dtype, device)


@eager_cache
def _filled(value: float, sign: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.full((), value, dtype=dtype, device=device)


def per_neuron(value: Param, name: str, batch: int, trailing: Tuple[int, ...],
                device: torch.device) -> Optional[Tensor]:
    """A parameter as the op takes it: 0-dim as it is, otherwise broadcast against the state
    (batch, *trailing) and flattened to (batch, neurons)."""
    if value is None:
        return None
    if not isinstance(value, Tensor):
        return device_scalar(value, torch.get_default_dtype(), device)
    if value.dim() == 0:
        if value.device != device and not value.requires_grad:  # e.g. ALIF's b0 stays on the CPU
            return device_scalar(value.item(), value.dtype, device)
        return value if value.device == device else value.to(device)
    try:
        full = torch.broadcast_to(value, (batch, *trailing))
    except RuntimeError:
        # A layer's decay factor comes from its time constant: name both.
        shown = f"{name} = exp(-1 / tau_{name[6:]})" if name.startswith("alpha_") else name
        raise ValueError(
            f"{shown} of shape {tuple(value.shape)} does not broadcast against the layer's state "
            f"shape (batch, *trailing) = {(batch, *trailing)}"
        ) from None
    return full.reshape(batch, math.prod(trailing))


def along_time(value: Param, per_neuron: Optional[Tensor]):
    """A parameter lined up with (B, T, N) tensors for the torch ops of the recordings."""
    if isinstance(value, Tensor) and value.dim() > 0:
        return per_neuron.unsqueeze(1)
    return value
