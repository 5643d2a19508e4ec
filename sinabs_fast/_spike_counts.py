"""What the synaptic-operation counters share: reading a Conv2d's or Linear's input totals from
the fused kernels' spike counts, the counters' forward hooks, and their all-reduce.

A Conv2d or Linear needs, for its synops, its input summed over batch and time per input
element. When that input is the output of a sinabs_fast spiking layer, possibly passed through
modules that are linear and act on each time step alone (average pooling, zero padding,
flattening), the sum equals those modules applied to the layer's ``spike_counts`` (spikes summed
over time, which the kernel returns): summing over time commutes with them. That reads T times
less data than the spike tensor, and the gradient flows through the counts into the fused
backward, which adds it inside the kernel.

How: forward hooks tag the spiking layer's output tensor with its counts, and the pass-through
modules' hooks carry the tag to their output, recording themselves (nothing is computed until a
counter asks). :func:`summed_input` applies the recorded modules to the counts, or sums the
tensor itself when it carries no tag (e.g. the network's input). Tags live exactly as long as
their tensor (weak references) and are dropped if the tensor is modified in place.
"""

import math
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from .layers.reshape import UnflattenTime
from .layers.stateful_layer import StatefulLayer

# Linear modules that act on each time step alone, by the number of trailing dimensions they
# act on (time must stay in front of those). Sum pooling (``LPPool`` with p = 1, sinabs'
# ``SumPool2d``) is linear too, but not its gradient: at the steps where a window sums to
# zero it is zero (sign and relu of zero), which the counts summed over time cannot tell; so
# its output is summed as a tensor, and the synops gradient is sinabs'.
_TRAILING_DIMS = {
    nn.AvgPool1d: 1, nn.AdaptiveAvgPool1d: 1, nn.ConstantPad1d: 1,
    nn.AvgPool2d: 2, nn.AdaptiveAvgPool2d: 2, nn.ConstantPad2d: 2,
    nn.AvgPool3d: 3, nn.AdaptiveAvgPool3d: 3, nn.ConstantPad3d: 3,
}
_PASS_THROUGH = (nn.Flatten, UnflattenTime, *_TRAILING_DIMS)


@dataclass(frozen=True)
class _Tag:
    tensor: weakref.ref
    version: int  # the tensor's version counter when tagged: an in-place change voids the tag
    counts: Tensor  # the spiking layer's counts, laid out as its output with a single time step
    chain: Tuple[nn.Module, ...]  # the modules between the spiking layer and the tensor
    time_dim: int  # 0: rows are batch*time (squeezed); 1: (batch, time, ...)
    batch: int
    steps: int


_TAGS: Dict[int, _Tag] = {}


def _forget(key: int, ref: weakref.ref) -> None:
    tag = _TAGS.get(key)
    if tag is not None and tag.tensor is ref:
        del _TAGS[key]


def _set_tag(tensor: Tensor, **fields) -> None:
    key = id(tensor)
    ref = weakref.ref(tensor, lambda dead, key=key: _forget(key, dead))
    _TAGS[key] = _Tag(tensor=ref, version=tensor._version, **fields)


def _tag_of(tensor: Tensor) -> Optional[_Tag]:
    tag = _TAGS.get(id(tensor))
    if tag is None or tag.tensor() is not tensor or tag.version != tensor._version:
        return None
    return tag


def spike_counts_of(module: nn.Module, output) -> Optional[Tensor]:
    """The spike counts ``(batch, *trailing)`` that ``module`` (a sinabs_fast spiking layer) set
    in the forward call that returned ``output``, or None (another kind of layer, no spikes, or
    counts that do not match the output's shape)."""
    counts = getattr(module, "spike_counts", None)
    if not isinstance(counts, Tensor) or not isinstance(output, Tensor) or counts.dim() == 0:
        return None
    batch = counts.shape[0]
    if output.dim() == counts.dim():  # squeezed: (batch*time, *trailing)
        fits = batch > 0 and output.shape[0] % batch == 0 and output.shape[1:] == counts.shape[1:]
    else:  # (batch, time, *trailing)
        fits = output.dim() == counts.dim() + 1 and output.shape[0] == batch \
            and output.shape[2:] == counts.shape[1:]
    return counts if fits else None


def spike_totals(module: nn.Module, output: Tensor, squeezed: bool) -> Tuple[Tensor, int]:
    """(the spikes of each neuron summed over batch and time, the number of batch*time rows)
    of a spiking layer's ``output``, from its spike counts when it has them. ``squeezed``: the
    rows are ``output``'s first dimension, else its first two."""
    rows = output.shape[0] if squeezed else output.shape[0] * output.shape[1]
    counts = spike_counts_of(module, output)
    if counts is not None:
        return counts.sum(0), rows
    return (output.sum(0) if squeezed else output.sum((0, 1))), rows


def _tag_spiking_output(module: nn.Module, inputs, output) -> None:
    counts = spike_counts_of(module, output)
    if counts is None:
        return
    squeezed = output.dim() == counts.dim()
    _set_tag(
        output,
        counts=counts if squeezed else counts.unsqueeze(1),
        chain=(),
        time_dim=0 if squeezed else 1,
        batch=counts.shape[0],
        steps=output.shape[0] // counts.shape[0] if squeezed else output.shape[1],
    )


def _time_dim_after(module: nn.Module, tag: _Tag, x: Tensor, y: Tensor) -> Optional[int]:
    """Where time is in ``module``'s output, or None when the module does not keep the time
    steps apart (then the counts cannot stand for its output)."""
    if isinstance(module, UnflattenTime):
        squeezed_in = tag.time_dim == 0 and y.dim() == x.dim() + 1
        return 1 if squeezed_in and tuple(y.shape[:2]) == (tag.batch, tag.steps) else None
    if isinstance(module, nn.Flatten):
        start, end = module.start_dim % x.dim(), module.end_dim % x.dim()
        if start > tag.time_dim:
            return tag.time_dim
        return 0 if start == 0 and end == tag.time_dim else None  # merging batch and time
    if isinstance(module, (nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d)) \
            and module.value != 0:
        return None
    trailing = next(n for cls, n in _TRAILING_DIMS.items() if isinstance(module, cls))
    return tag.time_dim if x.dim() - trailing > tag.time_dim else None


def _tag_pass_through(module: nn.Module, inputs, output) -> None:
    if len(inputs) != 1 or not isinstance(output, Tensor) or output is inputs[0]:
        return
    tag = _tag_of(inputs[0])
    if tag is None:
        return
    time_dim = _time_dim_after(module, tag, inputs[0], output)
    if time_dim is not None:
        _set_tag(output, counts=tag.counts, chain=tag.chain + (module,), time_dim=time_dim,
                 batch=tag.batch, steps=tag.steps)


def track_spike_counts(model: nn.Module) -> List[torch.utils.hooks.RemovableHandle]:
    """Registers the hooks that let :func:`summed_input` read the inputs of ``model``'s Conv2d
    and Linear layers from spike counts: on sinabs_fast spiking layers, and on the linear
    per-time-step modules (average pooling, zero padding, ``Flatten`` / ``FlattenTime``,
    ``UnflattenTime``; an ``Identity`` passes its tensor on unchanged). Returns the
    handles."""
    handles = []
    for module in model.modules():
        if isinstance(module, StatefulLayer) and hasattr(module, "spike_counts"):
            handles.append(module.register_forward_hook(_tag_spiking_output))
        elif isinstance(module, _PASS_THROUGH):
            handles.append(module.register_forward_hook(_tag_pass_through))
    return handles


def summed_input(x: Tensor, feature_dims: int) -> Tensor:
    """``x`` summed over its leading dimensions, all but the last ``feature_dims`` (3 for a
    Conv2d's input, 1 for a Linear's): what each input element received over the batch and all
    time steps. Computed from the spike counts when ``x`` carries a tag (see the module
    docstring), else from ``x``."""
    lead = x.dim() - feature_dims
    if lead <= 0:
        return x
    tag = _tag_of(x)
    if tag is not None and tag.time_dim < lead:
        y = tag.counts
        for module in tag.chain:
            y = module.forward(y)  # the module's function, not a model call: no hooks
        y_lead = y.dim() - feature_dims
        if y_lead > 0 and y.shape[y_lead:] == x.shape[lead:] \
                and math.prod(y.shape[:y_lead]) * tag.steps == math.prod(x.shape[:lead]):
            return y.sum(dim=tuple(range(y_lead)))
    return x.sum(dim=tuple(range(lead)))


def single_input(inputs: Sequence, hook: str) -> Tensor:
    """The one input tensor of a forward hook's ``inputs``; ValueError otherwise."""
    if len(inputs) != 1:
        raise ValueError(f"{hook}: the module must take exactly one input, got {len(inputs)}")
    return inputs[0]


def check_dt(dt: Optional[float], allow_none: bool = False) -> None:
    """ValueError unless ``dt`` is a positive finite number (or None where allowed)."""
    if dt is None and allow_none:
        return
    if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not 0 < dt < math.inf:
        raise ValueError(f"dt must be a positive number, got {dt!r}")


def avgpool_scale(pool: nn.AvgPool2d, where) -> int:
    """The factor by which an AvgPool2d scales spike counts down (its window size), which the
    counters multiply back into the next layer's synops; warns when kernel and stride differ
    (then the factor is only an approximation)."""
    if pool.kernel_size != pool.stride:
        warnings.warn(
            f"AvgPool2d at {where}: kernel_size {pool.kernel_size} differs from stride "
            f"{pool.stride}, so the synops scale factor (the window size) is approximate"
        )
    kernel = pool.kernel_size
    return kernel * kernel if isinstance(kernel, int) else kernel[0] * kernel[1]


class CounterHooks:
    """The forward hooks of one counter: its per-layer methods, held through weak references so
    that a model does not keep a dropped counter alive (its hooks are removed with it), plus the
    count-tagging hooks of :func:`track_spike_counts`."""

    def __init__(self, owner: object):
        self._owner = weakref.ref(owner)
        self._handles: List[torch.utils.hooks.RemovableHandle] = []

    def add(self, module: nn.Module, method: Callable) -> None:
        weak = weakref.WeakMethod(method)

        def hook(mod, inputs, output):
            bound = weak()
            if bound is not None:
                bound(mod, inputs, output)

        self._handles.append(module.register_forward_hook(hook))

    def track(self, model: nn.Module) -> None:
        self._handles.extend(track_spike_counts(model))

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def all_reduce_sum(tensors: List[Tensor], group=None) -> List[Tensor]:
    """Sums each tensor over the ranks of ``group`` (default: the world) in one collective,
    differentiably: the backward sums the gradients over the ranks too, which is what
    DistributedDataParallel's gradient averaging expects of a loss on a global quantity."""
    import torch.distributed as dist
    from torch.distributed.nn.functional import all_reduce

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("all_reduce needs an initialised torch.distributed process group")
    if not tensors:
        return []
    flat = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors])
    summed = all_reduce(flat, group=group)
    pieces = summed.split([t.numel() for t in tensors])
    return [p.reshape(t.shape).to(t.dtype) for p, t in zip(pieces, tensors)]
