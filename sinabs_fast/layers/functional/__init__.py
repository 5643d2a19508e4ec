"""Functional forms of the neuron layers (as ``sinabs.layers.functional``), on the fused ops."""

from .lif import lif_forward

__all__ = ["lif_forward"]
