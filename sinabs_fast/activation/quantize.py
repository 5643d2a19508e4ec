"""Straight-through quantisers, as sinabs.activation.Quantize / StochasticRounding."""

import torch


class Quantize(torch.autograd.Function):
    """``floor(x)`` forward, identity gradient."""

    @staticmethod
    def forward(ctx, inp):
        return inp.floor()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clone()


class StochasticRounding(torch.autograd.Function):
    """Rounds up with probability ``x - floor(x)`` (consumes the RNG), identity gradient."""

    @staticmethod
    def forward(ctx, inp):
        low = inp.floor()
        return low + (torch.rand_like(inp) < inp - low).float()

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.clone()
