"""from_sinabs / to_sinabs / load_sinabs_model against sinabs 3.1.3: a model converted either way
(or unpickled from a sinabs pickle) gives the same outputs and the same state_dict as sinabs."""

import io

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.activation as sa
import sinabs.layers as sl
import torch
import torch.nn as nn

import sinabs_fast
import sinabs_fast.activation as fa
import sinabs_fast.layers as fl
from sinabs_fast.conversion import from_sinabs, load_sinabs_model, to_sinabs

B = 2


def mixed_sinabs_model() -> nn.Sequential:
    """Every kind of spiking layer, nested containers, squeezed and (B, T) layouts, non-default
    spike, reset and surrogate functions, a recurrent layer with a child module."""
    return nn.Sequential(
        sl.FlattenTime(),
        nn.Linear(4, 6),
        sl.LIFSqueeze(tau_mem=10.0, tau_syn=4.0, batch_size=B, spike_fn=sa.MaxSpike(2),
                      reset_fn=sa.MembraneReset(), record_states=True),
        nn.Sequential(
            nn.Unflatten(1, (1, 2, 3)), sl.SumPool2d(1), nn.Flatten(), nn.Linear(6, 6),
            sl.IAFSqueeze(batch_size=B, min_v_mem=-1.0,
                          surrogate_grad_fn=sa.PeriodicExponential(0.4, 2.0)),
        ),
        sl.UnflattenTime(B),
        sl.ALIF(tau_mem=5.0, tau_adapt=20.0, tau_syn=3.0, norm_input=False),
        sl.LIFRecurrent(tau_mem=10.0, rec_connect=nn.Linear(6, 6)),
        sl.ExpLeak(tau_mem=3.0),
    )


def assert_same_state_dict(a: nn.Module, b: nn.Module) -> None:
    sa_, sb = a.state_dict(), b.state_dict()
    assert list(sa_) == list(sb)
    for key in sa_:
        assert torch.equal(sa_[key], sb[key]), key


def layer_modules(model: nn.Module):
    return [type(m).__module__.split(".")[0] for m in model.modules()
            if type(m).__module__.startswith(("sinabs.", "sinabs_fast."))]


def test_from_sinabs_then_to_sinabs_keep_outputs_states_and_settings():
    x = torch.rand(B, 5, 4) * 3
    theirs = mixed_sinabs_model()
    theirs(x)  # states now hold values (and their graph)
    ours = from_sinabs(theirs)
    assert set(layer_modules(ours)) == {"sinabs_fast"} and len(layer_modules(ours)) == 8
    assert_same_state_dict(theirs, ours)
    lif = ours[2]
    assert lif.spike_fn == fa.MaxSpike(2) and type(lif.spike_fn) is fa.MaxSpike
    assert type(lif.reset_fn) is fa.MembraneReset and lif.record_states and lif.batch_size == B
    assert ours[3][4].surrogate_grad_fn == fa.PeriodicExponential(0.4, 2.0)
    assert ours[5].norm_input is False
    for _ in range(2):  # the second call carries the converted states
        expected, actual = theirs(x), ours(x)
        assert torch.equal(actual, expected)
    assert torch.equal(ours[2].recordings["v_mem"], theirs[2].recordings["v_mem"])
    assert_same_state_dict(theirs, ours)

    back = to_sinabs(ours)
    assert set(layer_modules(back)) == {"sinabs"} and len(layer_modules(back)) == 8
    assert type(back[2].spike_fn) is sa.MaxSpike and back[2].spike_fn.max_num_spikes_per_bin == 2
    assert_same_state_dict(ours, back)
    assert torch.equal(back(x), ours(x))
    assert_same_state_dict(ours, back)


def test_conversion_copies_and_keeps_gradients_equal():
    x = torch.rand(B, 5, 4) * 3
    theirs = mixed_sinabs_model()
    ours = from_sinabs(theirs)
    for p_ours, p_theirs in zip(ours.parameters(), theirs.parameters()):
        assert p_ours is not p_theirs and p_ours.requires_grad == p_theirs.requires_grad
    theirs(x).sum().backward()
    ours(x).sum().backward()
    for (name, p_theirs), p_ours in zip(theirs.named_parameters(), ours.parameters()):
        if p_theirs.grad is None:
            assert p_ours.grad is None or not p_ours.grad.any(), name
        else:
            torch.testing.assert_close(p_ours.grad, p_theirs.grad, rtol=1e-5, atol=1e-6)


def test_a_bare_layer_converts():
    layer = sl.IAF(spike_threshold=torch.tensor(0.5))
    ours = from_sinabs(layer)
    assert type(ours) is fl.IAF and float(ours.spike_threshold) == 0.5
    x = torch.rand(3, 4, 5)
    assert torch.equal(ours(x), layer(x))
    assert type(to_sinabs(ours)) is sl.IAF


def test_load_sinabs_model_maps_a_pickled_sinabs_model():
    x = torch.rand(B, 5, 4) * 3
    theirs = mixed_sinabs_model()
    theirs(x)
    buffer = io.BytesIO()
    torch.save(theirs, buffer)
    buffer.seek(0)
    ours = load_sinabs_model(buffer)
    assert set(layer_modules(ours)) == {"sinabs_fast"}
    assert type(ours[2].spike_fn) is fa.MaxSpike and ours[2].spike_counts is None
    assert_same_state_dict(theirs, ours)
    assert torch.equal(ours(x), theirs(x))


def test_our_own_pickle_round_trips():
    ours = from_sinabs(mixed_sinabs_model())
    x = torch.rand(B, 5, 4) * 3
    ours(x)
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert_same_state_dict(ours, loaded)
    assert torch.equal(loaded(x), ours(x))


def test_package_exports():
    assert sinabs_fast.from_sinabs is from_sinabs and sinabs_fast.to_sinabs is to_sinabs


def test_converted_layers_load_checkpoints_into_fresh_states():
    trained = from_sinabs(mixed_sinabs_model())
    x = torch.rand(B, 5, 4) * 3
    trained(x)
    fresh = from_sinabs(mixed_sinabs_model())  # never run: states of shape (0,)
    fresh.load_state_dict(trained.state_dict())  # sinabs' own layers fail here
    assert_same_state_dict(trained, fresh)
    back = to_sinabs(trained)
    for module in back.modules():  # no hook of a sinabs_fast layer came along
        for hook in module._load_state_dict_pre_hooks.values():
            owner = getattr(getattr(hook, "hook", hook), "__self__", None)
            assert not isinstance(owner, fl.StatefulLayer)
