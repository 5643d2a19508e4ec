"""Drop-in replacements for sinabs.layers: ``import sinabs_fast.layers as sl``."""

from . import functional
from .iaf import IAF, IAFSqueeze
from .lif import LIF, LIFSqueeze
from .reshape import FlattenTime, Repeat, SqueezeMixin, UnflattenTime
from .stateful_layer import StatefulLayer

__all__ = [
    "StatefulLayer", "SqueezeMixin", "IAF", "IAFSqueeze", "LIF", "LIFSqueeze", "FlattenTime",
    "UnflattenTime", "Repeat", "functional",
]
