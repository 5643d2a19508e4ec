"""sinabs_fast: sinabs' spiking neuron layers on fused C++/CUDA kernels, bit-identical to sinabs.

``import sinabs_fast.layers as sl`` in place of ``import sinabs.layers as sl``.
"""

import torch  # noqa: F401  (first: it loads the libraries that _C links against)

from .rebuild_hint import REBUILD

try:
    from . import _C  # noqa: F401  (loads the operator library: torch.ops.sinabs_fast)
except ImportError as error:
    raise ImportError(f"sinabs_fast: the compiled extension sinabs_fast/_C could not be loaded "
                      f"({error}). {REBUILD}") from error
from . import activation, layers, ops, reference
from . import conversion, utils
from . import hooks
from .conversion import from_sinabs, load_sinabs_model, to_sinabs
from .from_torch import from_model
from .network import Network
from .synopcounter import SNNAnalyzer, SNNSynOpCounter, SynOpCounter
from .utils import get_batch_size, get_num_timesteps, reset_states, set_batch_size, zero_grad

from ._version import __version__
__all__ = [
    "activation", "layers", "ops", "reference", "conversion", "utils", "reset_states",
    "zero_grad", "set_batch_size", "get_batch_size", "get_num_timesteps",
]
__all__ += ["hooks", "SynOpCounter", "SNNSynOpCounter", "SNNAnalyzer"]
__all__ += ["from_sinabs", "to_sinabs", "load_sinabs_model", "from_model", "Network",
            "to_nir", "from_nir"]


def __getattr__(name: str):
    # to_nir / from_nir import nir and nirtorch (the "nir" extra) only when first used.
    if name in ("to_nir", "from_nir"):
        from . import nir

        return getattr(nir, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
