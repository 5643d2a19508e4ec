"""Pooling layers: SumPool2d (LPPool2d with p = 1) and SpikingMaxPooling2dLayer."""

from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn

ArrayLike = Union[np.ndarray, List, Tuple]


def _pooled_length(length: int, kernel: int, stride: int) -> int:
    """Output length of an unpadded pooling window along one dimension (as
    ``sinabs.cnnutils.conv_output_size``)."""
    if length < kernel:
        raise ValueError(f"Image dimension {length} smaller than kernel dimension {kernel}")
    return int((length - kernel) / stride + 1)


class SpikingMaxPooling2dLayer(nn.Module):
    """Max pooling of spike trains (``sinabs.layers.SpikingMaxPooling2dLayer`` 3.1.3).

    Input is ``(T, C, H, W)`` with time first. In each window, a spike at step t passes when it
    comes from a neuron whose cumulative spike count up to t is the window's maximum
    cumulative count.

    Args:
        pool_size: the window ``(kh, kw)``.
        strides: the stride; None means ``pool_size``.
        padding: ``(left, right, top, bottom)`` zero padding (``nn.ZeroPad2d`` order).

    After each forward, ``spikes_number`` (sum of absolute output values) and ``tw`` (number
    of time steps) are set.
    """

    def __init__(
        self,
        pool_size: ArrayLike,
        strides: Optional[ArrayLike] = None,
        padding: ArrayLike = (0, 0, 0, 0),
    ):
        super().__init__()
        self.padding = padding
        self.pool_size = pool_size
        self.strides = pool_size if strides is None else strides
        # As in sinabs: only the exact tuple (0, 0, 0, 0) means "no padding module".
        self.pad = None if padding == (0, 0, 0, 0) else nn.ZeroPad2d(padding)
        self.pool = nn.MaxPool2d(kernel_size=pool_size, stride=self.strides)
        self.spikes_number = None

    def _padded_pool(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x if self.pad is None else self.pad(x))

    def forward(self, binary_input: torch.Tensor) -> torch.Tensor:
        counts = torch.cumsum(binary_input, 0)
        window_max_count = self._padded_pool(counts)
        # Cumulative count at the steps where the neuron spikes (zero elsewhere).
        count_at_spikes = counts * (binary_input > 0).float()
        gate = (self._padded_pool(count_at_spikes) >= window_max_count).float()
        out = gate * self._padded_pool(binary_input)
        self.spikes_number = out.abs().sum()
        self.tw = len(out)
        return out.float()

    def get_output_shape(self, input_shape: Tuple) -> Tuple:
        """``(C, H, W)`` -> ``(C, H_out, W_out)``."""
        channels, height, width = input_shape
        height_out = _pooled_length(
            height + sum(self.padding[2:]), self.pool_size[0], self.strides[0]
        )
        width_out = _pooled_length(
            width + sum(self.padding[:2]), self.pool_size[1], self.strides[1]
        )
        return channels, height_out, width_out


class SumPool2d(nn.LPPool2d):
    """Sum pooling for analogue models: ``nn.LPPool2d`` with ``norm_type=1``, exactly as
    ``sinabs.layers.SumPool2d`` 3.1.3. It is computed as an average pool times the window size,
    so it can differ from an exact window sum by an ulp, and its gradient is zero wherever a
    window sums to exactly 0 (both as in sinabs).

    Args:
        kernel_size: the window size.
        stride: the stride; None means ``kernel_size``.
        ceil_mode: use ceil instead of floor for the output shape.
    """

    def __init__(self, kernel_size, stride=None, ceil_mode=False):
        super().__init__(1, kernel_size, stride, ceil_mode)
