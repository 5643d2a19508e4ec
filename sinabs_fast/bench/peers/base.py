"""What a peer adapter is: how the harness builds, feeds, resets and reads one runtime's layer.

The harness (timing, gate, report) only ever talks to these two classes, so a new runtime is one
new module in this package. Everything outside ``Runner.forward`` is untimed: layout changes
(a time-major peer gets its (T, B, N) copy in ``prepare``), state resets and reading spikes back.
"""

import abc
from typing import Any, Iterable, Optional

import torch
from torch import Tensor

from ..cases import Shape


class Runner(abc.ABC):
    """One built layer of one peer, for one layer kind, shape, device and dtype."""

    @abc.abstractmethod
    def prepare(self, x: Tensor) -> Any:
        """The peer's native input made from ``x`` ((B, T, N), contiguous, on the run's device
        and dtype; it may require grad, and what is returned must keep that graph link)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Puts the layer back to its initial state (zero membrane), before each repetition."""

    @abc.abstractmethod
    def forward(self, prepared: Any) -> Tensor:
        """The timed call: the layer on the prepared input; returns its output spikes in the
        peer's native layout."""

    @abc.abstractmethod
    def spikes_btn(self, out: Tensor) -> Tensor:
        """``forward``'s output as (B, T, N), for the semantics gate."""

    def parameters(self) -> Iterable[Tensor]:
        """Tensors whose ``.grad`` the harness clears between repetitions."""
        return ()


class Peer(abc.ABC):
    """A runtime compared in the benchmark (sinabs_fast itself is one too)."""

    #: The ``impl`` value of its result rows and the ``--peers`` name, e.g. ``"snntorch"``.
    name: str
    #: What to install to get it (shown when it is missing), e.g. ``"snntorch==1.0.0"``.
    requirement: str

    @abc.abstractmethod
    def unavailable_reason(self, device: str) -> Optional[str]:
        """None when the runtime imports and can run on ``device``; else one line saying why
        not (the row is skipped with that message)."""

    @abc.abstractmethod
    def unsupported_reason(self, layer: str, dtype: torch.dtype, device: str) -> Optional[str]:
        """None when the peer can express the benchmark's configuration of ``layer`` in
        ``dtype`` on ``device`` exactly; else one line saying why not (reported, not timed)."""

    @abc.abstractmethod
    def build(self, layer: str, shape: Shape, device: str, dtype: torch.dtype) -> Runner:
        """A fresh layer for one case; only called when both reasons above are None."""

    def gradient_reason(self, layer: str) -> Optional[str]:
        """None when the peer's backward for ``layer`` is the configuration's (its surrogate,
        the reset not detached), so the semantics gate compares input gradients too; else
        why not (the gate then checks the forward only)."""
        return None

    def version(self) -> Optional[str]:
        """The installed version, for the result file's ``versions``."""
        return None
