"""The integer codes the ops take for the spike, reset and surrogate functions."""

from enum import IntEnum


class SpikeKind(IntEnum):
    """Spike generation; mirrors ``sinabs_fast::SpikeKind`` in csrc/include/sinabs_fast/neuron.h."""

    NONE = 0  # ExpLeak: no spikes, the output is the pre-clamp membrane
    MULTI = 1  # MultiSpike, and MaxSpike(n) with max_spikes = n
    SINGLE = 2


class ResetKind(IntEnum):
    SUBTRACT = 0  # MembraneSubtract: v - s * reset_amount
    TO_VALUE = 1  # MembraneReset: v * (s == 0) + reset_value


class SurrogateKind(IntEnum):
    """Mirrors ``sinabs_fast::SurrogateKind`` in csrc/include/sinabs_fast/surrogate.h."""

    SINGLE_EXPONENTIAL = 0
    PERIODIC_EXPONENTIAL = 1
    HEAVISIDE = 2
    GAUSSIAN = 3
    MULTI_GAUSSIAN = 4
    PRECOMPUTED = 5  # any other callable, evaluated with torch on the saved membrane
