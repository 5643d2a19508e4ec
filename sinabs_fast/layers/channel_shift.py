"""ChannelShift: zero-pads the channel axis at its start."""

import torch
import torch.nn as nn


class ChannelShift(nn.Module):
    """Shifts channels to higher indices by inserting ``channel_shift`` zero channels before
    them (``sinabs.layers.ChannelShift`` 3.1.3).

    Args:
        channel_shift: the number of zero channels to insert.
        channel_axis: the channel dimension, counted from the end (a negative number).
    """

    def __init__(self, channel_shift: int = 0, channel_axis=-3) -> None:
        super().__init__()
        self.channel_shift = channel_shift
        self.channel_axis = channel_axis
        # One (before, after) pair per dimension from the last up to the channel axis.
        self.padding = [0, 0] * (-channel_axis)
        self.padding[-2] = channel_shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.pad(input=x, pad=self.padding, mode="constant", value=0)
