"""Merge: adds two event rasters, zero-padding them to a common shape."""

import torch
import torch.nn as nn


class Merge(nn.Module):
    """``data1 + data2`` (``sinabs.layers.Merge`` 3.1.3). When the shapes differ (they must have
    the same number of dimensions), each input is zero-padded at the end of every dimension to
    the elementwise maximum of the two shapes before the sum."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, data1: torch.Tensor, data2: torch.Tensor) -> torch.Tensor:
        if data1.shape == data2.shape:
            return data1 + data2
        assert data1.dim() == data2.dim(), "Merge needs inputs with the same number of dims"
        # F.pad lists (before, after) pairs starting from the last dimension.
        pad1, pad2 = [], []
        for s1, s2 in zip(reversed(data1.shape), reversed(data2.shape)):
            largest = max(s1, s2)
            pad1 += [0, largest - s1]
            pad2 += [0, largest - s2]
        data1 = nn.functional.pad(data1, pad1, mode="constant", value=0)
        data2 = nn.functional.pad(data2, pad2, mode="constant", value=0)
        return data1 + data2
