"""QuantizeLayer: floor with a straight-through gradient."""

import torch.nn as nn

from ..activation import Quantize


class QuantizeLayer(nn.Module):
    """Returns ``floor(x)`` with an identity gradient (``sinabs.layers.QuantizeLayer`` 3.1.3).

    Args:
        quantize: when False the input is returned unchanged (the same tensor).
    """

    def __init__(self, quantize=True):
        super().__init__()
        self.quantize = quantize

    def forward(self, data):
        return Quantize.apply(data) if self.quantize else data
