"""from_model, Network and the conversion helpers of sinabs_fast.utils against sinabs 3.1.3
(sinabs.from_model, sinabs.network.Network, sinabs.utils), and reset_states / zero_grad on models
that mix sinabs' layers with sinabs_fast's."""

import copy
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs
import sinabs.layers as sl
import sinabs.utils
import torch
import torch.nn as nn

import sinabs_fast
import sinabs_fast.layers as fl
from sinabs_fast import utils

B, T = 2, 6


def small_ann() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5), nn.ReLU(), nn.Linear(5, 3),
    )


def spikes(rows: int = B * T) -> torch.Tensor:
    return (torch.rand(rows, 1, 8, 8) < 0.4).float() * 2


def assert_arrays_equal(ours, theirs):
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kwargs", [
    dict(batch_size=B),
    dict(num_timesteps=T, add_spiking_output=True, bias_rescaling=2.0, min_v_mem=-0.5,
         input_shape=(1, 8, 8), spike_threshold=torch.tensor(0.75)),
    dict(batch_size=B, spike_fn=sinabs_fast.activation.SingleSpike, synops=True),
])
def test_from_model_gives_sinabs_spiking_outputs(kwargs):
    ann, x = small_ann(), spikes()
    theirs_kwargs = dict(kwargs)
    if "spike_fn" in kwargs:
        theirs_kwargs["spike_fn"] = sinabs.activation.SingleSpike
    theirs = sinabs.from_model(ann, **theirs_kwargs)
    ours = sinabs_fast.from_model(ann, **kwargs)
    assert isinstance(ours, sinabs_fast.Network) and ours.analog_model is ann
    assert [name for name, _ in ours.layers] == [name for name, _ in theirs.layers]
    for module in ours.spiking_model.modules():
        assert not isinstance(module, nn.ReLU)
    if "input_shape" in kwargs:
        for (name, a), (_, b) in zip(ours.spiking_model.named_modules(),
                                     theirs.spiking_model.named_modules()):
            assert getattr(a, "out_shape", None) == getattr(b, "out_shape", None), name
    for _ in range(2):  # states carried into the second call
        assert torch.equal(ours(x), theirs(x))
    ours.reset_states()
    theirs.reset_states()
    assert torch.equal(ours(x), theirs(x))
    if kwargs.get("synops"):
        assert ours.get_synops()["parameter"]["0"]["synops"] > 0


def test_compare_activations_and_get_network_activations_as_sinabs():
    ann, x = small_ann(), spikes()
    theirs = sinabs.from_model(ann, batch_size=B)
    ours = sinabs_fast.from_model(ann, batch_size=B)
    for rate in (False, True):
        a_ours, s_ours, names_ours = ours.compare_activations(x, compute_rate=rate)
        a_theirs, s_theirs, names_theirs = theirs.compare_activations(x, compute_rate=rate)
        assert names_ours == names_theirs == ["Input", "1", "5"]
        assert_arrays_equal(a_ours, a_theirs)
        assert_arrays_equal(s_ours, s_theirs)
        ours.reset_states()
        theirs.reset_states()
    # The hooks are gone after the call (sinabs leaves them registered).
    assert all(not m._forward_hooks for m in ours.spiking_model.modules())


def test_normalize_weights_as_sinabs():
    x = torch.rand(16, 1, 8, 8)
    ours, theirs = small_ann(), None
    theirs = copy.deepcopy(ours)
    args = dict(output_layers=["1", "5"], param_layers=["0", "4"], percentile=99.5)
    utils.normalize_weights(ours, x, **args)
    sinabs.utils.normalize_weights(theirs, x, **args)
    for p_ours, p_theirs in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(p_ours, p_theirs)
    assert not any(m._forward_hooks for m in ours.modules())
    with pytest.raises(ValueError, match="output_layers"):
        utils.normalize_weights(ours, x, output_layers=["nope"], param_layers=["0"])


def test_get_activations_as_sinabs():
    ann, x = small_ann(), torch.rand(3, 1, 8, 8)
    names = ["Input", "0", "3", "6"]
    assert_arrays_equal(utils.get_activations(ann, x, names),
                        sinabs.utils.get_activations(ann, x, names))
    assert_arrays_equal(utils.get_activations(ann, x), sinabs.utils.get_activations(ann, x))


def mixed_model() -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(3, 4), sl.IAFSqueeze(batch_size=B), nn.Linear(4, 4),
        fl.LIFSqueeze(tau_mem=5.0, batch_size=B),
        nn.Sequential(nn.Linear(4, 2), sl.LIFSqueeze(tau_mem=3.0, batch_size=B)),
    )


def test_reset_states_and_zero_grad_reach_sinabs_layers():
    model = mixed_model()
    x = torch.rand(B * T, 3) * 3
    model(x)
    stateful = [m for m in model.modules() if hasattr(m, "v_mem")]
    assert len(stateful) == 3 and all(m.v_mem.grad_fn is not None for m in stateful)
    utils.zero_grad(model)
    assert all(m.v_mem.grad_fn is None and m.v_mem.abs().sum() > 0 for m in stateful)
    # BPTT over two chunks: detached states, no "backward through the graph a second time".
    for _ in range(2):
        model(x).sum().backward()
        sinabs_fast.zero_grad(model)
    sinabs_fast.reset_states(model)
    assert all(not m.v_mem.any() for m in stateful)
    sinabs_fast.set_batch_size(model, 3)
    assert sinabs_fast.get_batch_size(model) == 3 and model[1].batch_size == 3


def test_network_reset_states_with_value_ranges_and_zero_grad():
    net = sinabs_fast.from_model(small_ann(), batch_size=B, input_shape=(1, 8, 8))
    with pytest.raises(TypeError, match="value_ranges"):
        net.reset_states(randomize=True, value_ranges=[{}])
    net.reset_states(randomize=True, value_ranges=[{"v_mem": (2.0, 3.0)}, {"v_mem": (-1, 0)}])
    v1, v5 = net.spiking_model[1].v_mem, net.spiking_model[5].v_mem
    assert v1.min() >= 2 and v1.max() <= 3 and v5.min() >= -1 and v5.max() <= 0
    net(spikes()).sum().backward()
    net.zero_grad()
    assert net.spiking_model[0].weight.grad.abs().sum() == 0
    assert net.spiking_model[1].v_mem.grad_fn is None


def test_from_model_needs_no_sinabs():
    code = (
        "import sys; sys.modules['sinabs'] = None\n"
        "import torch, torch.nn as nn, sinabs_fast\n"
        "net = sinabs_fast.from_model(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), batch_size=2,"
        " input_shape=(2,))\n"
        "print(type(net.spiking_model[1]).__module__, sys.modules['sinabs'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["sinabs_fast.layers.iaf", "None"]


def test_from_model_errors_name_the_argument():
    with pytest.raises(TypeError, match="batch_size or num_timesteps"):
        sinabs_fast.from_model(small_ann())
    with pytest.raises(ValueError, match="backend"):
        with pytest.warns(UserWarning):
            sinabs_fast.from_model(small_ann(), batch_size=B, backend="exodus")
