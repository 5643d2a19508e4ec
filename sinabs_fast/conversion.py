"""Replacing modules of a model by type (as ``sinabs.conversion`` 3.1.3)."""

from copy import deepcopy
from typing import Callable
from warnings import warn

import torch.nn as nn


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
