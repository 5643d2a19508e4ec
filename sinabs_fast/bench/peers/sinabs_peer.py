"""sinabs 3.1.3: the layers sinabs_fast reproduces, stepped through time in a Python loop."""

from ._sinabs_api import SinabsApiPeer


class SinabsPeer(SinabsApiPeer):
    name = "sinabs"
    requirement = "sinabs==3.1.3"
    module = "sinabs.layers"
    activation_module = "sinabs.activation"
