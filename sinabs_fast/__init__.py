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
from .synopcounter import SNNAnalyzer, SNNSynOpCounter, SynOpCounter
from .utils import get_batch_size, get_num_timesteps, reset_states, set_batch_size, zero_grad

__version__ = "0.1.0"
__all__ = [
    "activation", "layers", "ops", "reference", "conversion", "utils", "reset_states",
    "zero_grad", "set_batch_size", "get_batch_size", "get_num_timesteps",
]
__all__ += ["hooks", "SynOpCounter", "SNNSynOpCounter", "SNNAnalyzer"]
