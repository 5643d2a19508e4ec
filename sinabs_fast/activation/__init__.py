"""Spike generation, reset, surrogate gradient and quantisation functions (sinabs.activation)."""

from .quantize import Quantize, StochasticRounding
from .reset_mechanism import MembraneReset, MembraneSubtract
from .spike_generation import MaxSpike, MaxSpikeInner, MultiSpike, SingleSpike
from .surrogate_gradient_fn import (
    Gaussian,
    Heaviside,
    MultiGaussian,
    PeriodicExponential,
    SingleExponential,
)

__all__ = [
    "MultiSpike", "SingleSpike", "MaxSpike", "MaxSpikeInner", "MembraneReset",
    "MembraneSubtract", "Heaviside", "SingleExponential", "PeriodicExponential", "Gaussian",
    "MultiGaussian", "Quantize", "StochasticRounding",
]
