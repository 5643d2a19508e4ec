"""Surrogate gradients with sinabs 3.1.3's interface: ``fn(v_mem, spike_threshold)``.

The fused kernels evaluate the same formulas (csrc/include/sinabs_fast/surrogate.h);
``sinabs_fast.neuron_spec`` maps these classes onto them.
"""

import math
from dataclasses import dataclass

import torch


def _gaussian(x: torch.Tensor, mu: float, sigma: float) -> torch.Tensor:
    return torch.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (
        sigma * torch.sqrt(2 * torch.tensor(math.pi))
    )


@dataclass
class Heaviside:
    """``(v >= threshold - window) / threshold``. ``window`` is absolute (as in sinabs' code)."""

    window: float = 1.0

    def __call__(self, v_mem, spike_threshold):
        return (v_mem >= (spike_threshold - self.window)).float() / spike_threshold


@dataclass
class Gaussian:
    """Normal density of ``v - threshold`` with mean ``mu``, std ``sigma``, times ``grad_scale``."""

    mu: float = 0.0
    sigma: float = 0.5
    grad_scale: float = 1.0

    def __call__(self, v_mem, spike_threshold):
        return _gaussian(v_mem - spike_threshold, self.mu, self.sigma) * self.grad_scale


@dataclass
class MultiGaussian:
    """Yin et al. 2021: ``(1+h) N(mu, sigma) - h N(sigma, s sigma) - h N(-sigma, s sigma)``."""

    mu: float = 0.0
    sigma: float = 0.5
    h: float = 0.15
    s: float = 6
    grad_scale: float = 1.0

    def __call__(self, v_mem, spike_threshold):
        d = v_mem - spike_threshold
        wide = self.s * self.sigma
        return (
            (1 + self.h) * _gaussian(d, self.mu, self.sigma)
            - self.h * _gaussian(d, self.sigma, wide)
            - self.h * _gaussian(d, -self.sigma, wide)
        ) * self.grad_scale


@dataclass
class SingleExponential:
    """Shrestha & Orchard 2018: ``grad_scale / w * exp(-|v - threshold| / w)``,
    ``w = threshold * grad_width``."""

    grad_width: float = 0.5
    grad_scale: float = 1.0

    def __call__(self, v_mem, spike_threshold):
        width = spike_threshold * self.grad_width
        return self.grad_scale / width * torch.exp(-torch.abs(v_mem - spike_threshold) / width)


@dataclass
class PeriodicExponential:
    """Weidel & Sheik 2021: an exponential peak at every multiple of the threshold above it,
    and a single decaying flank below it."""

    grad_width: float = 0.5
    grad_scale: float = 1.0

    def __call__(self, v_mem, spike_threshold):
        shifted = v_mem / spike_threshold - 0.5
        periodic = spike_threshold * (2 * (shifted - torch.floor(shifted)) - 1)
        below = (v_mem - spike_threshold) * (v_mem < spike_threshold)
        above = periodic * (v_mem >= spike_threshold)
        return self.grad_scale * torch.exp(-torch.abs(above + below) / self.grad_width)
