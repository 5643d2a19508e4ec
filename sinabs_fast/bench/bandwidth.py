"""Memory bandwidth: the copy bandwidth measured in the run's own process, the fewest bytes a
neuron layer must move per neuron-step in each mode, and each row's fraction of the copy
bandwidth.

The fewest bytes per neuron-step (float32, 4-byte input and output elements):

* inference: read the input, write the spikes: 8;
* forward with grad: the same 8 (a kernel can recompute in the backward what it needs, from the
  input it is given anyway);
* backward: read the output gradient and the input (to recompute), write the input
  gradient: 12;
* forward and backward: 20.

Halved for 16-bit inputs and outputs. A row's ``bandwidth_fraction`` is those bytes over its
median time, divided by the copy bandwidth (bytes read plus bytes written per second by
``y.copy_(x)``), so 1.0 would be a layer as fast as a plain copy of its bytes.
"""

from typing import Callable, Dict, List, Optional

import torch

from .cases import BACKWARD, FORWARD, FWD_BWD, INFERENCE
from .timing import Call, median_iqr

MIN_BYTES_PER_STEP_FP32: Dict[str, int] = {INFERENCE: 8, FORWARD: 8, BACKWARD: 12, FWD_BWD: 20}
# Bytes copied to measure the bandwidth: well past the last-level cache of either device.
COPY_BYTES = {"cpu": 256 << 20, "cuda": 1 << 30}


def min_bytes_per_step(mode: str, dtype: torch.dtype) -> float:
    """The fewest bytes per neuron-step of ``mode`` for inputs and outputs of ``dtype``."""
    if mode not in MIN_BYTES_PER_STEP_FP32:
        raise ValueError(f"mode must be one of {tuple(MIN_BYTES_PER_STEP_FP32)}, not {mode!r}")
    itemsize = torch.empty((), dtype=dtype).element_size()
    return MIN_BYTES_PER_STEP_FP32[mode] * itemsize / 4


def bandwidth_fraction(ms: Optional[float], mode: str, dtype: torch.dtype, neuron_steps: int,
                       copy_gbs: Optional[float]) -> Optional[float]:
    """The row's effective bandwidth over the copy bandwidth (None when either is unknown)."""
    if ms is None or not copy_gbs or ms <= 0:
        return None
    bytes_per_s = min_bytes_per_step(mode, dtype) * neuron_steps / (ms * 1e-3)
    return bytes_per_s / (copy_gbs * 1e9)


def copy_bandwidth(device: str, measure: Callable[[Dict[str, Call]], Dict[str, List[float]]],
                   nbytes: Optional[int] = None) -> Dict[str, float]:
    """``y.copy_(x)`` on ``nbytes`` of float32 (default :data:`COPY_BYTES`) on ``device``,
    timed by ``measure`` (a :class:`~sinabs_fast.bench.timing.Timer`'s ``measure``): ``bytes``
    moved per copy (read plus written), the median ``ms`` and ``gbs`` (1e9 bytes per second)."""
    nbytes = COPY_BYTES[device] if nbytes is None else nbytes
    x = torch.rand(nbytes // 4, device=device)
    y = torch.empty_like(x)
    ms, _ = median_iqr(measure({"copy": Call(lambda: y.copy_(x))})["copy"])
    moved = 2 * x.numel() * x.element_size()
    return {"bytes": moved, "ms": ms, "gbs": moved / (ms * 1e-3) / 1e9}
