"""The benchmark's peer adapters and semantics gate (sinabs_fast/bench/peers).

Every installed peer must pass the gate on every layer it claims, on the CPU, in every dtype it
claims; adapters built deliberately wrong (another threshold, a hard reset, a leak, another
surrogate, a detached reset, a reset that keeps state) must fail it, so the gate can fail.
Missing peers skip with the install command their adapter names.
"""

import math

import pytest
import torch

from sinabs_fast.activation import MembraneReset, MultiSpike, SingleExponential
from sinabs_fast.bench.cases import DTYPES, LAYERS, Shape
from sinabs_fast.bench.peers import PEERS
from sinabs_fast.bench.peers import configs
from sinabs_fast.bench.peers.gate import check, gate_input
from sinabs_fast.bench.peers.sinabs_fast_peer import SinabsFastPeer
from sinabs_fast.bench.peers.spikingjelly_peer import SpikingJellyPeer

# What each peer claims on the CPU (unsupported_reason is None); adapters answer this without
# importing their runtime.
CLAIMS = [(name, layer, dtype_name) for name, peer in PEERS.items() for layer in LAYERS
          for dtype_name, dtype in DTYPES.items()
          if peer.unsupported_reason(layer, dtype, "cpu") is None]


def _available(peer):
    reason = peer.unavailable_reason("cpu")
    if reason is not None:
        pytest.skip(f"{peer.name}: {reason}")


@pytest.mark.parametrize("name,layer,dtype_name", CLAIMS)
def test_every_claim_passes_the_gate(name, layer, dtype_name):
    peer, dtype = PEERS[name], DTYPES[dtype_name]
    _available(peer)
    result = check(peer, layer, "cpu", dtype)
    assert result.passed, f"{name} {layer} {dtype_name}: {result.detail}"
    # Gradients are compared wherever the peer's backward is the configuration's.
    assert result.gradient_checked == (peer.gradient_reason(layer) is None)


def test_peer_order_and_names():
    names = list(PEERS)
    assert names[:2] == ["sinabs_fast", "sinabs"]
    assert all(PEERS[n].name == n for n in names)


def test_sinabs_fast_claims_every_neuron_layer():
    ours = PEERS["sinabs_fast"]
    assert ours.unavailable_reason("cpu") is None
    for layer in configs.CONFIGS:
        assert ours.unsupported_reason(layer, torch.float32, "cpu") is None
    assert ours.unsupported_reason(configs.END_TO_END, torch.float32, "cpu") is not None


def test_configuration_time_constants():
    lif = configs.config_for("lif")
    assert math.isclose(math.exp(-1 / lif.tau_mem), configs.ALPHA_MEM, rel_tol=1e-15)
    assert configs.config_for("iaf").tau_mem == math.inf
    with pytest.raises(ValueError, match="layer"):
        configs.config_for("seed-network")


def test_benchmark_input_is_below_the_threshold():
    # snnTorch's subtract reset equals the configuration only below it (snntorch_peer.py)
    x = gate_input()
    assert x.dtype == torch.float64
    assert configs.INPUT_LOW <= x.min() < 0 and x.max() < configs.INPUT_HIGH
    assert configs.INPUT_HIGH <= configs.THRESHOLD
    small = configs.make_input(Shape("s", 2, 3, 4), seed=1, dtype=torch.bfloat16)
    assert small.shape == (2, 3, 4) and small.dtype == torch.bfloat16


def test_unavailable_peer_names_its_install_command():
    exodus = PEERS["sinabs-exodus"]
    reason = exodus.unavailable_reason("cpu")
    assert reason is not None
    assert "pip install" in reason or "CUDA" in reason


# Deliberately wrong adapters: each changes one thing of the configuration.

class _Altered(SinabsFastPeer):
    """sinabs_fast's adapter with ``alter(module)`` applied to every layer it builds."""

    def __init__(self, alter):
        self.alter = alter

    def layer_module(self, config, neurons):
        module = super().layer_module(config, neurons)
        self.alter(module)
        return module


def _set(name, value):
    return lambda module: setattr(module, name, value)


def _threshold(value):
    def alter(module):
        module.spike_threshold.data.fill_(value)
    return alter


WRONG = {
    "threshold 1.05": ("lif", _threshold(1.05), "spikes differ"),
    "hard reset": ("iaf", _set("reset_fn", MembraneReset()), "spikes differ"),
    "normalised input": ("lif", _set("norm_input", True), "spikes differ"),
    # sinabs' default surrogate: twice the configuration's
    "another surrogate": ("lif", _set("surrogate_grad_fn", SingleExponential()),
                          "input gradient differs"),
}


@pytest.mark.parametrize("what", list(WRONG))
def test_gate_fails_a_wrong_configuration(what):
    layer, alter, message = WRONG[what]
    result = check(_Altered(alter), layer)
    assert not result.passed
    assert message in result.detail


def test_gate_fails_a_reset_that_keeps_state():
    class KeepsState(SinabsFastPeer):
        """Its reset only detaches the states (the layer's zero_grad), keeping their values."""

        def build(self, layer, shape, device, dtype):
            runner = super().build(layer, shape, device, dtype)
            runner._reset = runner.module.zero_grad
            return runner

    result = check(KeepsState(), "iaf")
    assert not result.passed and "reset" in result.detail


def test_gate_reports_a_peer_that_raises():
    class Raises(SinabsFastPeer):
        def build(self, layer, shape, device, dtype):
            raise RuntimeError("no kernel for this")

    result = check(Raises(), "iaf")
    assert not result.passed and "RuntimeError: no kernel for this" in result.detail


def test_gate_fails_a_detached_reset():
    peer = SpikingJellyPeer("spikingjelly-torch", "torch", cpu=True, cuda=True)
    _available(peer)

    class Detached(SpikingJellyPeer):
        def build(self, layer, shape, device, dtype):
            runner = super().build(layer, shape, device, dtype)
            runner.module.detach_reset = True
            return runner

    result = check(Detached("detached", "torch", cpu=True, cuda=True), "iaf")
    assert not result.passed and "input gradient differs" in result.detail


def test_gate_fails_multiple_spikes_per_step():
    class MultiSpiking(_Altered):
        """MultiSpike, fed four times the input so that membranes reach twice the threshold."""

        def build(self, layer, shape, device, dtype):
            runner = super().build(layer, shape, device, dtype)
            runner.prepare = lambda x: x * 4
            return runner

    result = check(MultiSpiking(_set("spike_fn", MultiSpike)), "iaf")
    assert not result.passed and "0 or 1" in result.detail
