"""Host cost: the tiny shapes (``cases.HOST_SHAPES``), where a layer call's time is what the host
spends on it (argument checks, autograd, dispatch, launches), measured against a tiny
``nn.Linear`` in the same process.

The neuron layers are timed at these shapes like at any other (every peer, every mode). Beside
them runs :class:`LinearRunner`, ``nn.Linear(N, N)`` on the same input viewed as (B*T, N): one
small torch op with its autograd, the scale the host-cost targets are set in (a tiny IAF
forward+backward at most 2x the Linear's). Its rows have ``impl`` :data:`LINEAR_IMPL` and
``layer`` :data:`LINEAR_LAYER`, so they never enter a neuron layer's table; :func:`table` sets
each sinabs_fast row against the Linear of the same shape and mode.
"""

from typing import Any, Dict, Iterable, List

import torch
import torch.nn as nn
from torch import Tensor

from .cases import HOST_SHAPES, MODES, Shape

LINEAR_IMPL = "torch"
LINEAR_LAYER = "nn.Linear"


class LinearRunner:
    """The reference call: ``nn.Linear(N, N)`` on (B*T, N), with the peers' runner interface
    (:class:`sinabs_fast.bench.peers.base.Runner`: prepare, reset, forward, parameters)."""

    def __init__(self, shape: Shape, device: str, dtype: torch.dtype):
        torch.manual_seed(0)
        self.linear = nn.Linear(shape.N, shape.N).to(device=device, dtype=dtype)

    def prepare(self, x: Tensor) -> Tensor:
        return x.reshape(-1, x.shape[-1])

    def reset(self) -> None:
        """A Linear has no state."""

    def forward(self, prepared: Tensor) -> Tensor:
        return self.linear(prepared)

    def parameters(self) -> Iterable[Tensor]:
        return self.linear.parameters()


def is_host_shape(shape: str) -> bool:
    """Whether ``shape`` (a label) is one of the tiny host-cost shapes."""
    return shape in HOST_SHAPES


def table(result: Dict[str, Any], ours: str = "sinabs_fast", sinabs: str = "sinabs"
          ) -> List[List[str]]:
    """Lines of the host-cost table: per neuron layer, host shape and mode, sinabs_fast's and
    sinabs' median microseconds, the Linear's, and sinabs_fast over the Linear."""
    rows = [r for r in result["rows"] if is_host_shape(r["shape"])]
    linear = {(r["shape"], r["mode"], r["dtype"]): r["ms"] for r in rows
              if r["layer"] == LINEAR_LAYER}
    by_key = {(r["impl"], r["layer"], r["shape"], r["mode"], r["dtype"]): r["ms"] for r in rows}
    lines = []
    for r in rows:
        if r["impl"] != ours or r["layer"] == LINEAR_LAYER or not r["ms"]:
            continue
        base = linear.get((r["shape"], r["mode"], r["dtype"]))
        peer = by_key.get((sinabs, r["layer"], r["shape"], r["mode"], r["dtype"]))
        lines.append([r["layer"], r["shape"], r["mode"], _us(r["ms"]), _us(peer), _us(base),
                      f"{r['ms'] / base:.1f}x" if base else "—"])
    order = {mode: i for i, mode in enumerate(MODES)}
    lines.sort(key=lambda line: (line[1], line[0], order.get(line[2], len(order))))
    return lines


TABLE_HEADER = ["layer", "shape", "mode", "sinabs_fast us", "sinabs us", "nn.Linear us",
                "sinabs_fast / nn.Linear"]


def _us(ms) -> str:
    return "—" if not ms else f"{1e3 * ms:.0f}"
