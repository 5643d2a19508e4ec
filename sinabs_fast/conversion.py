"""Replacing modules of a model by type (as ``sinabs.conversion`` 3.1.3), and converting models
between sinabs and sinabs_fast (:func:`from_sinabs`, :func:`to_sinabs`,
:func:`load_sinabs_model`)."""

import dataclasses
import importlib
import pickle
from copy import deepcopy
from typing import Callable, Dict, Optional
from warnings import warn

import torch
import torch.nn as nn

from ._hooked_counter import check_model


def replace_module(model: nn.Module, source_class: type, mapper_fn: Callable):
    """A deep copy of ``model`` in which every submodule whose type is exactly ``source_class``
    (subclasses do not match) is replaced by ``mapper_fn(submodule)``.

    When ``model`` itself has type ``source_class``, the result is ``mapper_fn(model)`` (no
    copy is made and its children are not visited).

    Example: ``replace_module(model, IAF, lambda m: IAFSqueeze(**m.arg_dict, batch_size=4))``.
    """
    if type(model) == source_class:  # noqa: E721  (exact match, as sinabs)
        return mapper_fn(model)
    copied = deepcopy(model)
    replace_module_(copied, source_class, mapper_fn)
    return copied


def replace_module_(model: nn.Module, source_class: type, mapper_fn: Callable) -> None:
    """In-place :func:`replace_module`: walks the children recursively, replacing each module
    whose type is exactly ``source_class`` by ``mapper_fn(module)``. A matching module's own
    children are converted before it is passed to ``mapper_fn``. Returns None.

    ``model`` itself cannot be replaced in place: if it matches, a warning is issued (its
    children are still converted).
    """
    if type(model) == source_class:  # noqa: E721
        warn(
            f"The model itself is of type {source_class} and cannot be replaced in place; "
            "call mapper_fn on it directly, or use replace_module to get a new object."
        )
    for name, child in list(model.named_children()):
        if next(child.children(), None) is not None:
            replace_module_(child, source_class, mapper_fn)
        if type(child) == source_class:  # noqa: E721
            setattr(model, name, mapper_fn(child))


# --- sinabs <-> sinabs_fast -------------------------------------------------------------------

_SINABS_PACKAGES = {"layers": "sinabs.layers", "activation": "sinabs.activation"}
_OUR_PACKAGES = {"layers": "sinabs_fast.layers", "activation": "sinabs_fast.activation"}
# sinabs keeps these three as plain attributes, sinabs_fast behind properties (underscored).
_KERNEL_INPUTS = ("spike_fn", "reset_fn", "surrogate_grad_fn")
_OURS_ONLY = ("_kernel_spec", "spike_counts")


def _twin_class(cls: type, source: str, target: str) -> Optional[type]:
    """The class of the same name in package ``target`` when ``cls`` is defined in ``source``
    (or one of its submodules); None otherwise."""
    if not (cls.__module__ == source or cls.__module__.startswith(source + ".")):
        return None
    return getattr(importlib.import_module(target), cls.__name__, None)


def _twin_activation(value, source: str, target: str):
    """A spike, reset or surrogate function of package ``source`` as its twin in ``target``: a
    class (``MultiSpike``) by its twin class, a dataclass instance (``MembraneSubtract()``,
    ``MaxSpike(2)``) by a twin built from the same fields. Anything else is kept."""
    cls = value if isinstance(value, type) else type(value)
    twin = _twin_class(cls, source, target)
    if twin is None:
        return value
    if isinstance(value, type):
        return twin
    if dataclasses.is_dataclass(value):
        return twin(**{f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init})
    return value


def _copied(value, memo: dict):
    """A deep copy in which tensors (parameters, states, recordings) are detached clones: a
    state that still holds its autograd graph cannot be deep-copied."""
    if isinstance(value, torch.Tensor):
        clone = value.detach().clone()
        if isinstance(value, nn.Parameter):
            return nn.Parameter(clone, value.requires_grad)
        return clone
    if isinstance(value, dict):
        return type(value)((key, _copied(item, memo)) for key, item in value.items())
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_copied(item, memo) for item in value)
    return deepcopy(value, memo)


def _without_hooks_bound_to(module: nn.Module, key: str, value):
    """A hooks dict of ``module`` without the hooks that are its own methods (a layer registers
    those itself; a copy would act on ``module`` instead of its twin); other values as they
    are."""
    if not (key.endswith("hooks") and isinstance(value, dict)):
        return value

    def bound_to_module(hook) -> bool:
        return getattr(getattr(hook, "hook", hook), "__self__", None) is module

    return type(value)((k, hook) for k, hook in value.items() if not bound_to_module(hook))


def _convert(model: nn.Module, source: Dict[str, str], target: Dict[str, str],
             translate_state: Callable[[dict], dict]) -> nn.Module:
    """A deep copy of ``model`` in which every module whose class comes from
    ``source["layers"]`` is replaced by the class of the same name in ``target["layers"]``,
    with the same attributes (parameters, states, settings, hooks, children), the spike, reset
    and surrogate functions mapped to their twins, and ``translate_state`` applied."""
    check_model(model)
    memo: dict = {}

    def twin_of(module: nn.Module) -> None:
        for child in module.children():  # children first: the twin's children come from memo
            twin_of(child)
        cls = _twin_class(type(module), source["layers"], target["layers"])
        if cls is None or id(module) in memo:
            return
        state = {key: _copied(_without_hooks_bound_to(module, key, value), memo)
                 for key, value in module.__dict__.items()}
        for name in _KERNEL_INPUTS + tuple(f"_{name}" for name in _KERNEL_INPUTS):
            if name in state:
                state[name] = _twin_activation(state[name], source["activation"],
                                               target["activation"])
        twin = cls.__new__(cls)
        twin.__setstate__(translate_state(state))
        memo[id(module)] = twin

    twin_of(model)
    return deepcopy(model, memo)


def from_sinabs(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every ``sinabs.layers`` module (``IAF``, ``LIFSqueeze``,
    ``ALIFRecurrent``, ``SumPool2d``, ``FlattenTime``, ...) replaced by its sinabs_fast twin:
    parameters, neuron states, settings (``batch_size``, ``record_states``, ...) and hooks
    kept, sinabs' spike, reset and surrogate functions replaced by sinabs_fast's, so the copy
    gives the same outputs and the same ``state_dict`` and needs no sinabs to run. Other
    modules are deep-copied; tensors are detached clones. ``model`` itself may be a layer."""
    # sinabs_fast's layers take sinabs' attribute layout in __setstate__ (as for unpickling).
    return _convert(model, _SINABS_PACKAGES, _OUR_PACKAGES, lambda state: state)


def _as_sinabs_state(state: dict) -> dict:
    for name in _KERNEL_INPUTS:
        if f"_{name}" in state:
            state[name] = state.pop(f"_{name}")
    for name in _OURS_ONLY:
        state.pop(name, None)
    if "_firing_rate" in state:  # LIF's firing_rate property keeps it there (layers/lif.py)
        state["firing_rate"] = state.pop("_firing_rate")
    return state


def to_sinabs(model: nn.Module) -> nn.Module:
    """The reverse of :func:`from_sinabs`: a copy of ``model`` with every sinabs_fast layer
    replaced by its ``sinabs.layers`` twin (e.g. for sinabs' hardware back ends), parameters,
    states and settings kept, outputs identical. Needs sinabs (``pip install sinabs``)."""
    _require_sinabs("to_sinabs")
    return _convert(model, _OUR_PACKAGES, _SINABS_PACKAGES, _as_sinabs_state)


def _require_sinabs(caller: str) -> None:
    try:
        importlib.import_module("sinabs.layers")
    except ImportError as error:
        raise ImportError(f"{caller} needs sinabs: pip install sinabs") from error


class _SinabsToOurs(pickle.Unpickler):
    """Unpickles sinabs' layer and activation classes as sinabs_fast's twins."""

    def find_class(self, module: str, name: str):
        for kind, package in _SINABS_PACKAGES.items():
            if module == package or module.startswith(package + "."):
                ours = getattr(importlib.import_module(_OUR_PACKAGES[kind]), name, None)
                if ours is not None:
                    return ours
        return super().find_class(module, name)


class _SinabsToOursPickle:
    """The ``pickle_module`` torch.load uses (it needs ``Unpickler`` and ``load``)."""

    Unpickler = _SinabsToOurs
    __name__ = "sinabs_fast.conversion._SinabsToOursPickle"

    @staticmethod
    def load(file, **kwargs):
        return _SinabsToOurs(file, **kwargs).load()


def load_sinabs_model(f, map_location=None) -> nn.Module:
    """Loads a whole model that sinabs' user saved with ``torch.save(model, f)`` as a
    sinabs_fast model: sinabs' layer and activation classes are mapped to sinabs_fast's while
    unpickling (sinabs need not be installed). Like any full pickle, this runs code from the
    file: load only files you trust (``weights_only=False``)."""
    return torch.load(f, map_location=map_location, pickle_module=_SinabsToOursPickle,
                      weights_only=False)
