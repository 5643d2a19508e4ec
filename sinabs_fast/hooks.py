"""Forward hooks that collect synaptic operations and firing rates: the functions of
``sinabs.hooks`` (3.1.3), with the same names, arguments, ``hook_data`` keys and values.

Where a Conv2d's or Linear's input comes from a sinabs_fast spiking layer (directly or through
pooling, zero padding or flattening), the synops hooks read it from the layer's spike counts
instead of the spike tensor, once the count-tagging hooks are registered:
:func:`register_synops_hooks` does that; when registering the hooks by hand, call
:func:`track_spike_counts` on the model as well. The firing-rate hooks read the counts of the
layer they are registered on. Otherwise every hook falls back to the tensors, with the same
results.

Example::

    hooks.register_synops_hooks(snn)          # snn: an nn.Sequential
    snn(x)
    snn.hook_data["total_synops_per_timestep"]
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn

from ._spike_counts import (
    all_reduce_sum, avgpool_scale, check_dt, single_input, spike_counts_of, spike_totals,
    summed_input, track_spike_counts,
)
from .layers.reshape import SqueezeMixin

__all__ = [
    "conv_connection_map", "get_hook_data_dict", "input_diff_hook", "firing_rate_hook",
    "firing_rate_per_neuron_hook", "conv_layer_synops_hook", "linear_layer_synops_hook",
    "ModelSynopsHook", "register_synops_hooks", "track_spike_counts", "all_reduce_synops",
]


def _explicit_padding(layer: nn.Conv2d) -> tuple:
    """The conv's padding as numbers (``"valid"`` is 0; ``"same"`` is half the dilated kernel
    extent, when that is symmetric)."""
    if layer.padding == "valid":
        return (0, 0)
    if layer.padding == "same":
        extents = [d * (k - 1) for d, k in zip(layer.dilation, layer.kernel_size)]
        if any(e % 2 for e in extents):
            raise ValueError(
                f"layer: padding='same' is asymmetric for kernel_size {layer.kernel_size} and "
                f"dilation {layer.dilation}; the connection map needs symmetric padding"
            )
        return tuple(e // 2 for e in extents)
    return layer.padding


def conv_connection_map(
    layer: nn.Conv2d,
    input_shape: torch.Size,
    output_shape: torch.Size,
    device: Union[None, torch.device, str] = None,
) -> torch.Tensor:
    """How many output neurons each input element of ``layer`` connects to (its exact fan-out,
    borders, padding, stride, dilation and groups included), shape ``(1, *input_shape)``.

    It is the conv's input gradient for an all-ones weight and an all-ones output gradient,
    i.e. a transposed convolution of ones.

    Args:
        layer: the Conv2d.
        input_shape: one sample's input shape ``(C, H, W)``.
        output_shape: one sample's output shape for that input, ``(C_out, H_out, W_out)``.
        device: where the map goes; None for the device of ``layer.weight``.
    """
    if not isinstance(layer, nn.Conv2d):
        raise TypeError(f"layer must be a torch.nn.Conv2d, got {type(layer).__name__}")
    _draw_as_sinabs_does(layer)
    target = layer.weight.device if device is None else torch.device(device)
    ones_weight = torch.ones(layer.weight.shape, device=target)
    ones_output = torch.ones((1, *output_shape), device=target)
    return torch.nn.grad.conv2d_input(
        (1, *input_shape), ones_weight, ones_output, stride=layer.stride,
        padding=_explicit_padding(layer), dilation=layer.dilation, groups=layer.groups,
    )


def _draw_as_sinabs_does(layer: nn.Conv2d) -> None:
    """Consumes the default CPU generator as sinabs' ``conv_connection_map`` does: it builds an
    ``nn.ConvTranspose2d`` of the layer's transposed shape, whose initialisation fills a
    weight of that shape uniformly (``kaiming_uniform_``; no bias). Without the same draw, a
    seeded script that counts synops with hooks would see different random numbers afterwards
    (e.g. another data order) than with sinabs."""
    shape = (layer.out_channels, layer.in_channels // layer.groups, *layer.kernel_size)
    torch.empty(shape).uniform_()


def get_hook_data_dict(module: nn.Module) -> Dict:
    """``module.hook_data``, created as an empty dict when missing."""
    if not hasattr(module, "hook_data"):
        module.hook_data = dict()
    return module.hook_data


def input_diff_hook(module: Union[nn.Conv2d, nn.Linear], input_: List[torch.Tensor],
                    output: torch.Tensor) -> None:
    """Forward hook for a Conv2d or Linear: ``hook_data["diff_output"]`` is the layer's output
    with absolute weights (no bias) minus the absolute output, a regulariser that narrows the
    gap between simulation and asynchronous hardware. (Unlike sinabs, the conv also passes its
    dilation, so dilated convs work.)"""
    x = single_input(input_, "input_diff_hook")
    if isinstance(module, nn.Conv2d):
        with_abs = nn.functional.conv2d(
            x, module.weight.abs(), stride=module.stride, padding=module.padding,
            dilation=module.dilation, groups=module.groups,
        )
    else:
        with_abs = nn.functional.linear(x, module.weight.abs())
    get_hook_data_dict(module)["diff_output"] = with_abs - output.abs()


def firing_rate_hook(module: nn.Module, input_: Any, output: torch.Tensor) -> None:
    """Forward hook for a spiking layer: ``hook_data["firing_rate"]``, the mean of the output
    (spikes per neuron and time step)."""
    counts = spike_counts_of(module, output)
    rate = output.mean() if counts is None else counts.sum() / output.numel()
    get_hook_data_dict(module)["firing_rate"] = rate


def firing_rate_per_neuron_hook(module: nn.Module, input_: Any, output: torch.Tensor) -> None:
    """Forward hook for a spiking layer: ``hook_data["firing_rate_per_neuron"]``, the output's
    mean over batch and time, one value per neuron."""
    spikes, rows = spike_totals(module, output, squeezed=isinstance(module, SqueezeMixin))
    get_hook_data_dict(module)["firing_rate_per_neuron"] = spikes / rows


def conv_layer_synops_hook(module: nn.Conv2d, input_: List[torch.Tensor],
                           output: torch.Tensor) -> None:
    """Forward hook for a Conv2d: ``hook_data["layer_synops_per_timestep"]``, the synaptic
    operations summed over neurons and averaged over the input's first dimension (batch*time
    for squeezed input), each input element weighted by its exact fan-out
    (``hook_data["connection_map"]``, recomputed when the input shape or device changes).
    Average pooling before the layer is not accounted for here (see
    :class:`ModelSynopsHook`)."""
    data = get_hook_data_dict(module)
    x = single_input(input_, "conv_layer_synops_hook")
    cmap = data.get("connection_map")
    if cmap is None or cmap.shape[1:] != x.shape[1:] or cmap.device != x.device:
        cmap = conv_connection_map(module, x.shape[1:], output.shape[1:], x.device)
        data["connection_map"] = cmap
    synops = (summed_input(x, 3) * cmap[0]).sum() / x.shape[0]
    data["layer_synops_per_timestep"] = synops


def linear_layer_synops_hook(module: nn.Linear, input_: List[torch.Tensor],
                             output: torch.Tensor) -> None:
    """Forward hook for a Linear: ``hook_data["layer_synops_per_timestep"]``, the input's mean
    over its first dimension, summed, times ``out_features``."""
    x = single_input(input_, "linear_layer_synops_hook")
    synops = summed_input(x, 1).sum() / x.shape[0] * module.out_features
    get_hook_data_dict(module)["layer_synops_per_timestep"] = synops


@dataclass
class ModelSynopsHook:
    """Forward hook for an ``nn.Sequential`` whose Conv2d / Linear children carry the layer
    synops hooks: after each forward, it multiplies each layer's
    ``layer_synops_per_timestep`` by the window sizes of the ``AvgPool2d`` children since the
    previous child with a ``weight`` (average pooling scales the counts down) and stores

    * ``hook_data["synops_per_timestep"]`` in each such layer, and in the Sequential's
      ``hook_data["synops_per_timestep"][child_index]``;
    * ``hook_data["total_synops_per_timestep"]`` in the Sequential;
    * with ``dt`` (the time step in seconds), the same as ``"synops_per_second"`` /
      ``"total_synops_per_second"``.
    """

    dt: Optional[float] = None

    def __post_init__(self):
        check_dt(self.dt, allow_none=True)

    def __call__(self, module: nn.Sequential, input_: Any, output: Any) -> None:
        data = get_hook_data_dict(module)
        data["total_synops_per_timestep"] = 0.0
        data["synops_per_timestep"] = dict()
        if self.dt is not None:
            data["total_synops_per_second"] = 0.0
            data["synops_per_second"] = dict()
        scale = 1
        for index, child in enumerate(module):
            if isinstance(child, nn.AvgPool2d):
                scale *= avgpool_scale(child, f"child {index}")
            if not hasattr(child, "weight"):
                continue
            child_data = getattr(child, "hook_data", {})
            if "layer_synops_per_timestep" in child_data:
                synops = child_data["layer_synops_per_timestep"] * scale
                child_data["synops_per_timestep"] = synops
                data["synops_per_timestep"][index] = synops
                data["total_synops_per_timestep"] += synops
                if self.dt is not None:
                    child_data["synops_per_second"] = synops / self.dt
                    data["synops_per_second"][index] = synops / self.dt
                    data["total_synops_per_second"] += synops / self.dt
            scale = 1  # any module with a weight ends the pooling run, counted or not


def register_synops_hooks(module: nn.Sequential, dt: Optional[float] = None) -> None:
    """Registers :func:`conv_layer_synops_hook` / :func:`linear_layer_synops_hook` on the
    Conv2d / Linear children of ``module``, a :class:`ModelSynopsHook` on ``module`` itself, and
    the count-tagging hooks of :func:`track_spike_counts` on all its modules.

    Args:
        module: the ``nn.Sequential``.
        dt: the time step in seconds, for synops per second; None for none.
    """
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"module must be a torch.nn.Sequential, got {type(module).__name__}")
    model_hook = ModelSynopsHook(dt)
    for child in module:
        if isinstance(child, nn.Conv2d):
            child.register_forward_hook(conv_layer_synops_hook)
        elif isinstance(child, nn.Linear):
            child.register_forward_hook(linear_layer_synops_hook)
    track_spike_counts(module)
    module.register_forward_hook(model_hook)


def all_reduce_synops(module: nn.Sequential, group=None) -> None:
    """Makes the synops that :func:`register_synops_hooks` collected on ``module`` global over
    the ranks of ``group`` (default: the world), for DistributedDataParallel jobs: each layer's
    ``layer_synops_per_timestep`` becomes its mean over the ranks (the value of the global batch
    when every rank has the same batch size), and the scaled per-layer values and totals are
    recomputed from them. Differentiable; call it on every rank after the forward.
    """
    import torch.distributed as dist

    children = [c for c in module if "layer_synops_per_timestep" in getattr(c, "hook_data", {})]
    if not children:
        raise RuntimeError(
            "all_reduce_synops: no synops on module; register_synops_hooks(module) and run a "
            "forward first")
    summed = all_reduce_sum(
        [torch.as_tensor(c.hook_data["layer_synops_per_timestep"]) for c in children], group)
    world = dist.get_world_size(group)
    for child, total in zip(children, summed):
        child.hook_data["layer_synops_per_timestep"] = total / world
    for hook in module._forward_hooks.values():
        if isinstance(hook, ModelSynopsHook):
            hook(module, None, None)
