"""sinabs_fast itself: the fused kernels behind sinabs' layer API."""

from typing import Optional

import torch

from ._sinabs_api import SinabsApiPeer


class SinabsFastPeer(SinabsApiPeer):
    name = "sinabs_fast"
    requirement = "sinabs-fast"
    module = "sinabs_fast.layers"
    activation_module = "sinabs_fast.activation"
    # bfloat16 input runs fused (the states are float32); float16 input runs the pure-PyTorch
    # reference (README), which is not what the benchmark measures.
    dtypes = (torch.float32, torch.bfloat16)

    def version(self) -> Optional[str]:
        from ... import __version__
        return __version__
