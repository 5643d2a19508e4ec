"""What the hooked synaptic-operation counters (:mod:`sinabs_fast.synopcounter`,
:mod:`sinabs_fast.snn_analyzer`) share: the model check, the walk that carries average-pooling
scales to the next counted layer, and the removal of the hooks when a counter goes."""

from typing import Dict, Iterator, Tuple

import torch.nn as nn

from ._spike_counts import CounterHooks, avgpool_scale


def check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")


def with_avgpool_scale(model: nn.Module, records: Dict[nn.Module, object]
                        ) -> Iterator[Tuple[int, str, nn.Module, object, int]]:
    """Walks ``model.named_modules()`` and yields ``(index, name, module, record, scale)`` for
    the modules with a record, where ``scale`` is the product of the window sizes of the
    ``AvgPool2d`` layers met since the previous such module (average pooling scales spike
    counts down; the legacy counter and SNNAnalyzer multiply them back)."""
    scale = 1
    for index, (name, module) in enumerate(model.named_modules()):
        if isinstance(module, nn.AvgPool2d):
            scale *= avgpool_scale(module, f"layer {name!r}")
        if module in records:
            yield index, name, module, records[module], scale
            scale = 1


class HookedCounter:
    """Removes a counter's hooks from the model when the counter goes (they hold it weakly)."""

    _hooks: CounterHooks

    def remove(self) -> None:
        """Removes the counter's hooks from the model."""
        self._hooks.remove()

    def __del__(self):
        hooks = getattr(self, "_hooks", None)  # absent when __init__ raised early
        if hooks is not None:
            hooks.remove()


# ------------------------------------------------------------------------ legacy counter
