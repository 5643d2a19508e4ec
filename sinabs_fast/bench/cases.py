"""What a benchmark run is made of: shapes, layers, modes and dtypes.

The shapes follow the suite's protocol (docs: ``benchmarks/README.md``): C1-C3 (and the older
B8 T500 N1024) on the CPU, G1-G7 on CUDA, and on both the two tiny host-cost shapes H1 and H2,
where a call's time is what the host spends on it. Every layer takes its input as (B, T, N).
"""

from dataclasses import dataclass
from typing import Dict, Tuple

import torch


@dataclass(frozen=True)
class Shape:
    """A benchmark shape: batch ``B``, time steps ``T``, neurons ``N``; the input is (B, T, N)."""

    label: str
    B: int
    T: int
    N: int

    @property
    def neuron_steps(self) -> int:
        """Elements of one (B, T, N) tensor: the unit the bandwidth figures are per."""
        return self.B * self.T * self.N

    def describe(self) -> str:
        return f"{self.label} (B{self.B} T{self.T} N{self.N})"


def _by_label(*shapes: Shape) -> Dict[str, Shape]:
    return {s.label: s for s in shapes}


CPU_SHAPES: Dict[str, Shape] = _by_label(
    Shape("C1", B=16, T=500, N=512),
    Shape("C2", B=8, T=100, N=1024),
    Shape("C3", B=32, T=16, N=4096),
    Shape("B8T500N1024", B=8, T=500, N=1024),
)

CUDA_SHAPES: Dict[str, Shape] = _by_label(
    Shape("G1", B=16, T=500, N=16384),
    Shape("G2", B=64, T=32, N=65536),
    Shape("G3", B=64, T=4, N=131072),
    Shape("G4", B=32, T=256, N=32768),
    Shape("G5", B=32, T=1000, N=256),
    Shape("G6", B=16, T=16, N=512),
    Shape("G7", B=16, T=500, N=1024),  # with G5 (N=256), the recurrent layer's two widths
)

# Tiny calls, whose time is the host's work (argument checks, autograd, launches): a short
# sequence (H1) and one time step per call (H2), as sinabs' tutorials call a layer. Their rows
# come with a tiny ``nn.Linear`` on the same input for scale (see :mod:`.host_cost`).
HOST_SHAPES: Dict[str, Shape] = _by_label(
    Shape("H1", B=2, T=4, N=8),
    Shape("H2", B=2, T=1, N=8),
)

SHAPES: Dict[str, Shape] = {**CPU_SHAPES, **CUDA_SHAPES, **HOST_SHAPES}
# The shapes a run takes when --shapes is not given (--quick leaves out the CPU's B8 T500 N1024).
DEFAULT_SHAPES = {"cpu": ("C1", "C2", "C3", "B8T500N1024", *HOST_SHAPES),
                  "cuda": (*CUDA_SHAPES, *HOST_SHAPES)}
QUICK_SHAPES = {"cpu": ("C1", "C2", "C3", *HOST_SHAPES), "cuda": (*CUDA_SHAPES, *HOST_SHAPES)}

# Neuron layers, by the name used on the command line and in result rows; "seed-network" is the
# end-to-end training step of a small convolutional network, not a single layer.
SEED_NETWORK = "seed-network"
LAYERS: Tuple[str, ...] = (
    "iaf", "lif", "lif-syn", "expleak", "alif", "lif-recurrent", SEED_NETWORK,
)
NEURON_LAYERS: Tuple[str, ...] = tuple(layer for layer in LAYERS if layer != SEED_NETWORK)

INFERENCE = "inference"  # forward under torch.no_grad()
FORWARD = "forward"      # forward with grad enabled (builds the graph, saves for backward)
BACKWARD = "backward"    # the backward alone, from a fixed random output gradient
FWD_BWD = "fwd+bwd"      # forward with grad, then backward
MODES: Tuple[str, ...] = (INFERENCE, FORWARD, BACKWARD, FWD_BWD)

DTYPES: Dict[str, torch.dtype] = {
    "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
}
