"""Functional forms of the neuron layers (as ``sinabs.layers.functional``), on the fused ops."""

from .alif import alif_forward, alif_recurrent
from .lif import lif_forward
from .lif_recurrent import lif_recurrent

__all__ = ["lif_forward", "lif_recurrent", "alif_forward", "alif_recurrent"]
