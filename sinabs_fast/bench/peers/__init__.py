"""One adapter per runtime the benchmark compares (``base`` says what an adapter is), the
configuration every adapter builds (``configs``), and the semantics gate (``gate``).

``PEERS`` maps each peer's name (its ``impl`` in result rows, its ``--peers`` name) to its
adapter: sinabs_fast first, then sinabs, then the others. Adapters import their runtime lazily,
so this package imports without any of them installed.
"""

from typing import Dict

from .base import Peer, Runner
from .exodus_peer import ExodusPeer
from .norse_peer import NorsePeer
from .sinabs_fast_peer import SinabsFastPeer
from .sinabs_peer import SinabsPeer
from .snntorch_peer import SnnTorchPeer
from .spikingjelly_peer import SpikingJellyPeer

PEERS: Dict[str, Peer] = {
    peer.name: peer
    for peer in (
        SinabsFastPeer(),
        SinabsPeer(),
        # the CPU has only SpikingJelly's torch implementation; CUDA has Triton too
        SpikingJellyPeer("spikingjelly-torch", "torch", cpu=True, cuda=True),
        SpikingJellyPeer("spikingjelly-triton", "triton", cpu=False, cuda=True),
        SnnTorchPeer(),
        NorsePeer(),
        ExodusPeer(),
    )
}

__all__ = ["PEERS", "Peer", "Runner"]
