"""sinabs-exodus 2.0 (CUDA only): sinabs' IAF/LIF/ExpLeak on EXODUS' CUDA kernels, with
sinabs' constructor arguments (``sinabs.exodus.layers``), so the adapter is sinabs' with another
module. It takes SingleSpike, MembraneSubtract and any surrogate callable; there is no ALIF
and no recurrent layer, and the kernels are float32 only.

Not tested on this project's CPU-only machines (the package needs a CUDA build of torch and
nvcc to install: ``pip install --no-build-isolation sinabs-exodus==2.0.0``); written from its
documented API, and checked by the semantics gate on a GPU before it is ever timed.
"""

from ._sinabs_api import SinabsApiPeer


class ExodusPeer(SinabsApiPeer):
    name = "sinabs-exodus"
    requirement = ("sinabs-exodus==2.0.0 (CUDA only; pip install --no-build-isolation, "
                   "against a CUDA build of torch)")
    module = "sinabs.exodus.layers"
    distribution = "sinabs-exodus"
    activation_module = "sinabs.activation"
    cpu = False
    layers = ("iaf", "lif", "lif-syn", "expleak")
