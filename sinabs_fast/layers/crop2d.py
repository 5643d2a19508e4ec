"""Cropping2dLayer: crops the two spatial dimensions of (N, C, H, W) input."""

from typing import List, Tuple, Union

import numpy as np
import torch
from torch import nn

ArrayLike = Union[np.ndarray, List, Tuple]


class Cropping2dLayer(nn.Module):
    """``x[:, :, top:H-bottom, left:W-right]`` (``sinabs.layers.Cropping2dLayer`` 3.1.3).

    Args:
        cropping: ``((top, bottom), (left, right))``.

    After each forward, ``channels_in``, ``out_shape`` (C, H', W'), ``spikes_number`` (sum of
    absolute output values) and ``tw`` (size of the first dimension) are set.
    """

    def __init__(self, cropping: ArrayLike = ((0, 0), (0, 0))):
        super().__init__()
        (self.top_crop, self.bottom_crop), (self.left_crop, self.right_crop) = \
            cropping[0], cropping[1]

    def forward(self, binary_input: torch.Tensor) -> torch.Tensor:
        _, self.channels_in, height, width = list(binary_input.shape)
        out = binary_input[
            :, :, self.top_crop:height - self.bottom_crop, self.left_crop:width - self.right_crop
        ]
        self.out_shape = out.shape[1:]
        self.spikes_number = out.abs().sum()
        self.tw = len(out)
        return out

    def get_output_shape(self, input_shape: Tuple) -> Tuple:
        """``(C, H, W)`` -> ``(C, H - top - bottom, W - left - right)``."""
        channels, height, width = input_shape
        return (
            channels,
            height - self.top_crop - self.bottom_crop,
            width - self.left_crop - self.right_crop,
        )
