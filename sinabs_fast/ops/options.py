"""The neuron ops' options as their public functions take them: the defaults, written once (those
of sinabs' layers: the LIF family's; ALIF's differ in the input scaling and the spike function),
and the check of the ops that have only the built-in surrogates."""

from .kinds import ResetKind, SpikeKind, SurrogateKind
from .schema import OpSchema

_SHARED = dict(
    max_spikes=float("inf"),
    reset_kind=ResetKind.SUBTRACT,
    reset_value=0.0,
    surrogate_kind=SurrogateKind.SINGLE_EXPONENTIAL,
    surrogate_params=(0.5, 1.0),
)
LIF_OPTIONS = dict(_SHARED, norm_input=False, spike_kind=SpikeKind.MULTI)
ALIF_OPTIONS = dict(_SHARED, norm_input=True, spike_kind=SpikeKind.SINGLE)


def require_builtin_surrogate(schema: OpSchema, args: tuple) -> tuple:
    """``args`` (the op's, in schema order), after raising ValueError when their
    ``surrogate_kind`` is PRECOMPUTED: only ``lif_forward`` evaluates a Python surrogate."""
    if args[schema.names.index("surrogate_kind")] == SurrogateKind.PRECOMPUTED:
        raise ValueError(f"{schema.name}: surrogate_kind must be a built-in surrogate (0-4)")
    return args
