"""Functional forms of the neuron layers (as ``sinabs.layers.functional``), on the fused ops."""

from .lif import lif_forward
from .lif_recurrent import lif_recurrent

__all__ = ["lif_forward", "lif_recurrent"]
