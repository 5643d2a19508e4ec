"""NeuromorphicReLU: a (quantised) ReLU for training analogue networks meant for conversion."""

import torch

from ..activation import Quantize, StochasticRounding


class NeuromorphicReLU(torch.nn.Module):
    """ReLU whose output can be rounded to integers, mimicking spike counts (as
    ``sinabs.layers.NeuromorphicReLU`` 3.1.3). Meant for analogue (non-spiking) networks.

    Args:
        quantize: round the output down to integers (``floor``, straight-through gradient).
        fanout: factor applied to :attr:`activity` (e.g. for synaptic-operation estimates).
        stochastic_rounding: when quantising in training mode, round up with probability equal
            to the fractional part (consumes the RNG; straight-through gradient). In eval mode
            the output is ``round()``-ed instead, as in sinabs, whose gradient is zero.

    After each forward, ``activity`` is ``output.sum() / len(output) * fanout`` (``len`` is the
    size of the first dimension), with its autograd graph.
    """

    def __init__(self, quantize=True, fanout=1, stochastic_rounding=False):
        super().__init__()
        self.quantize = quantize
        self.stochastic_rounding = stochastic_rounding
        self.fanout = fanout

    def forward(self, inp):
        out = torch.nn.functional.relu(inp)
        if self.quantize:
            if not self.stochastic_rounding:
                out = Quantize.apply(out)
            elif self.training:
                out = StochasticRounding.apply(out)
            else:
                out = out.round()
        # Same op order as sinabs (sum, divide by the leading size, then scale): same bits.
        self.activity = out.sum() / len(out) * self.fanout
        return out
