"""NIR (the Neuromorphic Intermediate Representation, https://neuroir.org): export a model with
:func:`to_nir`, build one from a graph with :func:`from_nir`, through ``nir`` and ``nirtorch``
(``pip install nir nirtorch``).

The mapping is sinabs 3.1.3's, so graphs pass between the two libraries:

=====================================  ====================================================
sinabs_fast                            NIR
=====================================  ====================================================
``IAF``, ``IAFSqueeze``                ``IF`` (``r`` = 1, per-neuron ``v_threshold``)
``LIF``, ``LIFSqueeze``                ``LIF`` (``r`` = 1, ``v_leak`` = 0); with ``tau_syn``:
                                       ``CubaLIF``
``ExpLeak``, ``ExpLeakSqueeze``        ``LI`` (``r`` = 1, ``v_leak`` = 0)
``nn.Linear``                          ``Affine`` (zero bias when it has none); ``Linear``
                                       is read too
``nn.Conv1d``, ``nn.Conv2d``           ``Conv1d``, ``Conv2d`` (zero bias when none: read
                                       back with a bias, as NIR 1.0.4's convolutions have no
                                       metadata)
``SumPool2d``, ``nn.AvgPool2d``        ``SumPool2d``, ``AvgPool2d``
``nn.Flatten``                         ``Flatten`` (dimensions without the batch)
``FlattenTime``, ``UnflattenTime``,    left out: they only reshape the data's (batch, time)
``nn.Identity``                        layout, which NIR does not describe
=====================================  ====================================================

NIR has no place for some of the layers' settings (``min_v_mem``, ``norm_input``, the spike
and reset functions, a missing bias), and sinabs reads its ``IF`` nodes with ``min_v_mem =
-v_threshold`` and its ``LIF``/``LI`` nodes with ``norm_input=False``. So :func:`to_nir` also
writes these settings into each node's ``metadata`` (flat keys ``sinabs_fast_*``, which
``nir.write`` stores), and :func:`from_nir` uses them when present: a round trip gives the
same outputs, and a graph without them (from sinabs or another tool) gives what sinabs' own
``from_nir`` gives. The surrogate gradient function is not exported (the default is used).
"""

import dataclasses
import functools
import warnings
from typing import Any, Dict, List, Optional

import nir
import nirtorch
import numpy as np
import torch
import torch.nn as nn

from . import activation
from . import layers as sl
from .utils import squeeze_classes, stateful_classes

_PREFIX = "sinabs_fast_"
_LAYOUT_ONLY = (sl.FlattenTime, sl.UnflattenTime, nn.Identity)


def _tensor(value) -> torch.Tensor:
    """A float32 tensor from a node's parameter (a tensor in memory, an array from a file)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().float()
    return torch.as_tensor(np.asarray(value), dtype=torch.float32)


def _as_pair(value) -> tuple:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    values = tuple(int(v) for v in np.asarray(value).reshape(-1))
    return values * 2 if len(values) == 1 else values


def _array(value: torch.Tensor) -> np.ndarray:
    """A node parameter as NIR keeps it: a numpy array (on the host, so nir.write takes it)."""
    return value.detach().cpu().numpy()


def _broadcast(value: torch.Tensor, shape) -> np.ndarray:
    return _array(value.detach().float().expand(tuple(shape)))


# --- settings in the node metadata ------------------------------------------------------------


def _activation_metadata(name: str, function) -> Dict[str, Any]:
    """``{prefix+name: class name, prefix+name+'.'+field: value}`` for a sinabs_fast or sinabs
    activation (a class, or a dataclass instance); nothing for anything else."""
    cls = function if isinstance(function, type) else type(function)
    if function is None or not cls.__module__.startswith(("sinabs_fast.activation",
                                                          "sinabs.activation")):
        return {}
    entries = {_PREFIX + name: cls.__name__}
    if not isinstance(function, type):
        for field, value in vars(function).items():
            if isinstance(value, (bool, int, float)):
                entries[f"{_PREFIX}{name}.{field}"] = value
    return entries


def _layer_metadata(layer: nn.Module) -> Dict[str, Any]:
    entries: Dict[str, Any] = {_PREFIX + "class": type(layer).__name__}
    if getattr(layer, "min_v_mem", None) is not None:
        entries[_PREFIX + "min_v_mem"] = _array(layer.min_v_mem)
    if "norm_input" in layer.arg_dict:  # not an argument of IAF
        entries[_PREFIX + "norm_input"] = bool(layer.norm_input)
    for name in ("spike_fn", "reset_fn"):
        entries.update(_activation_metadata(name, getattr(layer, name, None)))
    return entries


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _activation_from_metadata(metadata: dict, name: str):
    class_name = metadata.get(_PREFIX + name)
    if class_name is None:
        return None
    cls = getattr(activation, _text(class_name))
    fields = {
        key[len(_PREFIX + name) + 1:]: value.item() if isinstance(value, np.generic) else value
        for key, value in metadata.items() if key.startswith(f"{_PREFIX}{name}.")
    }
    return cls(**fields) if fields or not issubclass(cls, torch.autograd.Function) else cls


def _neuron_settings(node: nir.NIRNode, default_min_v_mem) -> dict:
    """The constructor arguments the metadata of ``node`` records (sinabs' defaults without)."""
    metadata = getattr(node, "metadata", None) or {}
    if _PREFIX + "class" not in metadata:
        return dict(min_v_mem=default_min_v_mem)
    settings: Dict[str, Any] = dict(min_v_mem=None)
    if _PREFIX + "min_v_mem" in metadata:
        settings["min_v_mem"] = _tensor(metadata[_PREFIX + "min_v_mem"])
    if _PREFIX + "norm_input" in metadata:
        settings["norm_input"] = bool(metadata[_PREFIX + "norm_input"])
    for name in ("spike_fn", "reset_fn"):
        function = _activation_from_metadata(metadata, name)
        if function is not None:
            settings[name] = function
    return settings


def _has_bias(node: nir.NIRNode) -> bool:
    metadata = getattr(node, "metadata", None) or {}
    return bool(metadata.get(_PREFIX + "bias", True))


# --- export -----------------------------------------------------------------------------------


def _zero_bias_if_none(module: nn.Module) -> np.ndarray:
    if module.bias is None:
        return np.zeros(module.weight.shape[0], dtype=np.float32)
    return _array(module.bias)


def _with_bias_metadata(node: nir.NIRNode, module: nn.Module) -> nir.NIRNode:
    """Records a missing bias in the node's metadata, where its NIR class has metadata (in nir
    1.0.4 ``Affine`` has, the convolutions have not: those come back with a zero bias)."""
    if module.bias is None and "metadata" in {f.name for f in dataclasses.fields(node)}:
        node.metadata[_PREFIX + "bias"] = False
    return node


def _node_of(module: nn.Module, input_shapes: Dict[nn.Module, torch.Size]
             ) -> Optional[nir.NIRNode]:
    """The NIR node of one module, given the shape of its (squeezed) input; None for a
    layout-only module (left out of the graph)."""
    if isinstance(module, _LAYOUT_ONLY):
        return None
    if isinstance(module, (sl.IAF, sl.LIF)) and not isinstance(module, (sl.IAFRecurrent,
                                                                        sl.LIFRecurrent)):
        return _neuron_node_of(module)
    if isinstance(module, nn.Linear):
        return _with_bias_metadata(
            nir.Affine(_array(module.weight), _zero_bias_if_none(module)), module)
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        node_class = nir.Conv1d if isinstance(module, nn.Conv1d) else nir.Conv2d
        spatial = input_shapes[module][2:]
        return _with_bias_metadata(node_class(
            input_shape=spatial[0] if len(spatial) == 1 else tuple(spatial),
            weight=_array(module.weight), stride=module.stride,
            padding=module.padding, dilation=module.dilation, groups=module.groups,
            bias=_zero_bias_if_none(module),
        ), module)
    if isinstance(module, sl.SumPool2d):
        stride = module.kernel_size if module.stride is None else module.stride
        return nir.SumPool2d(kernel_size=_as_pair(module.kernel_size), stride=_as_pair(stride),
                             padding=(0, 0))
    if isinstance(module, nn.AvgPool2d):
        if module.ceil_mode or not module.count_include_pad or module.divisor_override:
            raise NotImplementedError(
                "to_nir: NIR's AvgPool2d has no ceil_mode, count_include_pad=False or "
                f"divisor_override ({module})")
        stride = module.kernel_size if module.stride is None else module.stride
        return nir.AvgPool2d(kernel_size=_as_pair(module.kernel_size), stride=_as_pair(stride),
                             padding=_as_pair(module.padding))
    if isinstance(module, nn.Flatten):
        # NIR's dimensions do not count the (squeezed) batch dimension.
        start = module.start_dim - 1 if module.start_dim > 0 else module.start_dim
        end = module.end_dim - 1 if module.end_dim > 0 else module.end_dim
        return nir.Flatten(input_type={"input": np.array(input_shapes[module][1:])},
                           start_dim=start, end_dim=end)
    raise NotImplementedError(f"to_nir: no NIR node for {type(module).__name__}")


def _neuron_node_of(layer: nn.Module) -> nir.NIRNode:
    if not layer.is_state_initialised():
        raise RuntimeError(f"to_nir: {type(layer).__name__} has not run (no neuron shape)")
    shape = layer.v_mem.shape[1:]
    metadata = _layer_metadata(layer)
    ones, zeros = np.ones(tuple(shape), np.float32), np.zeros(tuple(shape), np.float32)
    if isinstance(layer, sl.ExpLeak):
        return nir.LI(tau=_broadcast(layer.tau_mem_calculated, shape), r=ones, v_leak=zeros,
                      metadata=metadata)
    threshold = _broadcast(layer.spike_threshold, shape)
    if isinstance(layer, sl.IAF):
        return nir.IF(r=ones, v_threshold=threshold, metadata=metadata)
    tau_mem = _broadcast(layer.tau_mem_calculated, shape)
    if layer.tau_syn_calculated is None:
        return nir.LIF(tau=tau_mem, r=ones, v_leak=zeros, v_threshold=threshold,
                       metadata=metadata)
    return nir.CubaLIF(tau_syn=_broadcast(layer.tau_syn_calculated, shape), tau_mem=tau_mem,
                       r=ones, v_leak=zeros, v_threshold=threshold, metadata=metadata)


def _splice_out(nodes: dict, edges: List[tuple]) -> tuple:
    """Removes the nodes that are None, connecting each one's sources to its targets."""
    edges = list(dict.fromkeys(edges))  # the tracer may give an edge twice
    for name in [name for name, node in nodes.items() if node is None]:
        sources = [a for a, b in edges if b == name]
        targets = [b for a, b in edges if a == name]
        edges = [(a, b) for a, b in edges if name not in (a, b)]
        edges += [(a, b) for a in sources for b in targets if (a, b) not in edges]
        del nodes[name]
    return nodes, edges


def _has_time_dimension(model: nn.Module, layout_class: type) -> bool:
    """Whether data at the model's input (FlattenTime) or output (UnflattenTime) is
    (batch, time, ...): a layout module or a neuron layer that is not squeezed says so."""
    squeezed = squeeze_classes()
    return any(isinstance(m, layout_class) or (isinstance(m, stateful_classes())
                                               and not isinstance(m, squeezed))
               for m in model.modules())


def to_nir(model: nn.Module, sample_input: torch.Tensor,
           model_name: str = "model") -> nir.NIRGraph:
    """The NIR graph of ``model`` (see the module's table for the mapping).

    Args:
        model: a model of the modules in the table, in any arrangement of containers.
        sample_input: input the model accepts, e.g. ``(batch * time, ...)`` for squeezed
            layers or ``(batch, time, ...)`` when the model starts with ``FlattenTime``; the
            model runs once on it (without gradients; the neuron states advance, as in sinabs)
            to trace the connections and the neuron shapes.
        model_name: the graph's name when ``model`` is a single module.

    Returns:
        A ``nir.NIRGraph``: ``input`` and ``output`` nodes with per-sample, per-step shapes,
        and one node per module named by its path in ``model`` (``"1"``, ``"block.0"``).
        Write it with ``nir.write(path, graph)``.
    """
    if not isinstance(sample_input, torch.Tensor):
        raise TypeError(f"sample_input must be a torch.Tensor, got {type(sample_input)}")
    input_shapes: Dict[nn.Module, torch.Size] = {}
    output_shape = []

    def keep_shapes(module, inputs, output):
        input_shapes[module] = inputs[0].shape
        if module is model:
            output_shape.append(output.shape)

    handles = [module.register_forward_hook(keep_shapes) for module in model.modules()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch's hook tracer
            graph = nirtorch.extract_nir_graph(
                model, functools.partial(_node_of, input_shapes=input_shapes), sample_input,
                model_name=model_name, ignore_dims=[0])
    finally:
        for handle in handles:
            handle.remove()
    nodes, edges = _splice_out(dict(graph.nodes), list(graph.edges))
    steps_in = 2 if _has_time_dimension(model, sl.FlattenTime) else 1
    steps_out = 2 if _has_time_dimension(model, sl.UnflattenTime) else 1
    nodes["input"] = nir.Input(np.array(sample_input.shape[steps_in:]))
    nodes["output"] = nir.Output(np.array(output_shape[-1][steps_out:]))
    return nir.NIRGraph(nodes, edges)


# --- import -----------------------------------------------------------------------------------


def _require_zero(node: nir.NIRNode, name: str, expected: float) -> None:
    value = _tensor(getattr(node, name))
    if not bool((value == expected).all()):
        raise ValueError(f"from_nir: {type(node).__name__} needs {name} = {expected} everywhere")


def _module_of(node: nir.NIRNode, squeeze: dict) -> Optional[nn.Module]:
    """The sinabs_fast (or torch) module for one NIR node; None for input and output nodes."""
    if isinstance(node, (nir.Input, nir.Output, nir.NIRGraph)):
        return None  # nirtorch maps these (and recurses into subgraphs)
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = _tensor(node.weight)
        bias = isinstance(node, nir.Affine) and _has_bias(node)
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=bias)
        linear.weight.data = weight
        if bias:
            linear.bias.data = _tensor(node.bias)
        return linear
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        weight = _tensor(node.weight)
        conv_class = nn.Conv1d if isinstance(node, nir.Conv1d) else nn.Conv2d
        bias = _has_bias(node)
        padding = node.padding if isinstance(node.padding, str) else tuple(
            int(p) for p in np.atleast_1d(node.padding))
        conv = conv_class(
            weight.shape[1] * int(node.groups), weight.shape[0], tuple(weight.shape[2:]),
            stride=tuple(int(s) for s in np.atleast_1d(node.stride)), padding=padding,
            dilation=tuple(int(d) for d in np.atleast_1d(node.dilation)),
            groups=int(node.groups), bias=bias,
        )
        conv.weight.data = weight
        if bias:
            conv.bias.data = _tensor(node.bias)
        return conv
    if isinstance(node, nir.IF):
        _require_zero(node, "r", 1.0)
        threshold = _tensor(node.v_threshold)
        return sl.IAFSqueeze(spike_threshold=threshold, **squeeze,
                             **_neuron_settings(node, default_min_v_mem=-threshold))
    if isinstance(node, nir.LIF):
        _require_zero(node, "v_leak", 0.0)
        settings = {"norm_input": False, **_neuron_settings(node, default_min_v_mem=None)}
        return sl.LIFSqueeze(tau_mem=_tensor(node.tau), spike_threshold=_tensor(node.v_threshold),
                             **squeeze, **settings)
    if isinstance(node, nir.CubaLIF):
        _require_zero(node, "v_leak", 0.0)
        _require_zero(node, "w_in", 1.0)
        settings = {"norm_input": False, **_neuron_settings(node, default_min_v_mem=None)}
        return sl.LIFSqueeze(tau_mem=_tensor(node.tau_mem), tau_syn=_tensor(node.tau_syn),
                             spike_threshold=_tensor(node.v_threshold), **squeeze, **settings)
    if isinstance(node, nir.LI):
        _require_zero(node, "v_leak", 0.0)
        _require_zero(node, "r", 1.0)
        settings = {"norm_input": False, **_neuron_settings(node, default_min_v_mem=None)}
        return sl.ExpLeakSqueeze(tau_mem=_tensor(node.tau), **squeeze, **settings)
    if isinstance(node, nir.SumPool2d):
        if any(_as_pair(node.padding)):
            raise NotImplementedError("from_nir: SumPool2d with padding")
        return sl.SumPool2d(kernel_size=_as_pair(node.kernel_size), stride=_as_pair(node.stride))
    if isinstance(node, nir.AvgPool2d):
        return nn.AvgPool2d(kernel_size=_as_pair(node.kernel_size), stride=_as_pair(node.stride),
                            padding=_as_pair(node.padding))
    if isinstance(node, nir.Flatten):
        start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim
        end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim
        return nn.Flatten(start_dim=start, end_dim=end)
    raise NotImplementedError(f"from_nir: no sinabs_fast module for NIR {type(node).__name__}")


def from_nir(graph, batch_size: Optional[int] = None, num_timesteps: Optional[int] = None,
             return_state: bool = True) -> nn.Module:
    """A sinabs_fast model from a NIR graph (see the module's table), as sinabs' ``from_nir``.

    Args:
        graph: a ``nir.NIRGraph`` (or node), or the path of a file written by ``nir.write``.
        batch_size, num_timesteps: of the squeezed neuron layers (``IAFSqueeze``, ...), which
            take ``(batch * time, ...)`` input; one of them is needed when the graph has
            neurons.
        return_state: as in ``nirtorch.load`` (and sinabs): the model returns ``(output,
            state)``; False returns the output alone.

    Returns:
        nirtorch's graph executor module, one submodule per node.
    """
    if isinstance(graph, str) or hasattr(graph, "__fspath__"):
        graph = nir.read(graph)
    squeeze = dict(batch_size=batch_size, num_timesteps=num_timesteps)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch.load
        return nirtorch.load(graph, lambda node: _module_of(node, squeeze),
                             return_state=return_state)


__all__ = ["to_nir", "from_nir"]
