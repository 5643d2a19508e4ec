"""sinabs_fast.utils and sinabs_fast.conversion against sinabs 3.1.3 (sinabs.utils,
sinabs.conversion), on models built from sinabs_fast layers and the matching sinabs layers."""

import copy

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs
import sinabs.conversion
import sinabs.layers as sl
import torch
import torch.nn as nn

import sinabs_fast
from conftest import assert_grads_close
import sinabs_fast.layers as fl
from sinabs_fast import conversion, utils


def test_package_level_exports():
    for name in ["reset_states", "zero_grad", "set_batch_size", "get_batch_size",
                 "get_num_timesteps"]:
        assert getattr(sinabs_fast, name) is getattr(utils, name)
    for name in ["reset_states", "zero_grad", "set_batch_size"]:  # sinabs' own package level
        assert hasattr(sinabs, name) and hasattr(sinabs_fast, name)
    for name in ["get_smallest_compatible_time_dimension", "get_batch_size",
                 "get_num_timesteps", "set_batch_size", "reset_states", "zero_grad"]:
        assert hasattr(sinabs.utils, name) and hasattr(sinabs_fast.utils, name)
    for name in ["replace_module", "replace_module_"]:
        assert hasattr(sinabs.conversion, name) and hasattr(sinabs_fast.conversion, name)


class SNN(nn.Module):
    """sinabs' tests/test_utils.py model, for either layer library."""

    def __init__(self, lib, hidden_dim=10):
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Sequential(
            nn.Linear(2, hidden_dim), lib.IAF(),
            nn.Linear(hidden_dim, hidden_dim), lib.IAF(),
            nn.Linear(hidden_dim, hidden_dim), lib.IAF(),
            nn.Linear(hidden_dim, 5),
        )
        self.spike_output = lib.IAF()

    def forward(self, x):
        return self.spike_output(self.net(x))


def _states(model):
    return [b.detach().clone() for b in model.buffers()]


@pytest.mark.parametrize("which", ["reset_states", "zero_grad"])
def test_reset_states_and_zero_grad_match_sinabs_on_nested_model(which):
    ours, theirs = SNN(fl), SNN(sl)
    assert ours.net[1].v_mem.sum() == 0
    x = torch.rand((5, 10, 2)) * 3
    out, out_ref = ours(x), theirs(x)
    assert torch.equal(out, out_ref)
    assert ours.net[1].v_mem.grad_fn is not None and ours.net[1].v_mem.sum() != 0
    out.sum().backward(), out_ref.sum().backward()
    getattr(sinabs_fast, which)(ours)
    getattr(sinabs, which)(theirs)
    for a, b in zip(ours.buffers(), theirs.buffers()):
        assert torch.equal(a, b) and a.grad_fn is None and b.grad_fn is None
    if which == "reset_states":
        assert ours.net[1].v_mem.sum() == 0
    else:
        assert ours.net[1].v_mem.sum() != 0
    # Gradients of non-stateful modules are left alone by both.
    assert_grads_close(ours.net[0].weight.grad, theirs.net[0].weight.grad)
    assert ours.net[0].weight.grad.abs().sum() > 0
    # Both models continue identically.
    assert torch.equal(ours(x), theirs(x))


def test_zero_grad_zeroes_stateful_parameters_grads_like_sinabs():
    ours, theirs = fl.IAF(tau_syn=3.0), sl.IAF(tau_syn=3.0)
    wrap_ours, wrap_theirs = nn.Sequential(ours), nn.Sequential(theirs)
    x = torch.rand(2, 6, 4) * 2
    wrap_ours(x).sum().backward(), wrap_theirs(x).sum().backward()
    sinabs_fast.zero_grad(wrap_ours), sinabs.zero_grad(wrap_theirs)
    checked = 0
    for (n1, p1), (n2, p2) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert n1 == n2 and (p1.grad is None) == (p2.grad is None)
        if p1.grad is not None:  # zeroed, not set to None (set_to_none=False)
            assert torch.equal(p1.grad, p2.grad)
            assert torch.equal(p1.grad, torch.zeros_like(p1.grad))
            checked += 1
    assert checked >= 1  # tau_syn / alpha_syn got a gradient


@pytest.mark.parametrize("which", ["reset_states", "zero_grad"])
def test_bare_layer_is_handled_deliberate_difference(which):
    ours, theirs = fl.IAF(), sl.IAF()
    x = (torch.rand(2, 5, 3) * 3).requires_grad_()
    ours(x), theirs(x)
    getattr(sinabs_fast, which)(ours)
    getattr(sinabs, which)(theirs)
    # sinabs only walks children: the bare layer keeps its graph (and values).
    assert theirs.v_mem.grad_fn is not None and theirs.v_mem.sum() != 0
    # sinabs_fast acts on the layer itself.
    assert ours.v_mem.grad_fn is None
    assert (ours.v_mem.sum() == 0) == (which == "reset_states")


class StatefulWithChild(fl.IAF):
    """A stateful layer with a submodule (like sinabs' recurrent layers)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rec = nn.Linear(3, 3)

    @property
    def _param_dict(self):
        return super()._param_dict


def test_stateful_layer_with_children_is_reset_deliberate_difference():
    model = nn.Sequential(nn.Linear(3, 3), StatefulWithChild())
    model(torch.rand(2, 4, 3) * 5)
    assert model[1].v_mem.abs().sum() > 0
    sinabs_fast.zero_grad(model)
    assert model[1].v_mem.grad_fn is None and model[1].v_mem.abs().sum() > 0
    sinabs_fast.reset_states(model)
    assert model[1].v_mem.abs().sum() == 0


class Nested(nn.Module):
    def __init__(self, lib, batch_sizes=(2, 2, -1), num_timesteps=(-1, 4, 4)):
        super().__init__()
        torch.manual_seed(6)
        self.conv = nn.Conv2d(1, 2, 3)
        self.spk1 = lib.IAFSqueeze(batch_size=batch_sizes[0], num_timesteps=num_timesteps[0])
        self.block = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * 4 * 4, 5),
            nn.Sequential(lib.IAFSqueeze(batch_size=batch_sizes[1],
                                         num_timesteps=num_timesteps[1])),
        )
        self.out = lib.IAFSqueeze(batch_size=batch_sizes[2], num_timesteps=num_timesteps[2])

    def forward(self, x):
        return self.out(self.block(self.spk1(self.conv(x))))


def _squeeze_layers(model, lib):
    return [m for m in model.modules() if isinstance(m, lib.SqueezeMixin)]


GETTERS = ["get_batch_size", "get_num_timesteps", "get_smallest_compatible_time_dimension"]


@pytest.mark.parametrize("batch_sizes,num_timesteps", [
    ((2, 2, -1), (-1, 4, 4)), ((-1, -1, -1), (3, 3, 3)), ((5, -1, 5), (-1, -1, -1)),
    ((2, 2, 2), (-1, -1, -1)),
])
def test_getters_match_sinabs(batch_sizes, num_timesteps):
    ours, theirs = Nested(fl, batch_sizes, num_timesteps), Nested(sl, batch_sizes, num_timesteps)
    for name in GETTERS:
        assert getattr(utils, name)(ours) == getattr(sinabs.utils, name)(theirs)
    assert utils.get_batch_size(nn.Linear(2, 2)) == sinabs.utils.get_batch_size(nn.Linear(2, 2))
    assert utils.get_smallest_compatible_time_dimension(nn.Linear(2, 2)) == 1


@pytest.mark.parametrize("batch_sizes,num_timesteps,bad", [
    ((2, 3, -1), (-1, 4, 4), ["get_batch_size", "get_smallest_compatible_time_dimension"]),
    ((2, 2, 2), (4, 5, -1), ["get_num_timesteps", "get_smallest_compatible_time_dimension"]),
])
def test_getters_raise_on_inconsistent_values_like_sinabs(batch_sizes, num_timesteps, bad):
    ours, theirs = Nested(fl, batch_sizes, num_timesteps), Nested(sl, batch_sizes, num_timesteps)
    for name in bad:
        with pytest.raises(ValueError):
            getattr(sinabs.utils, name)(theirs)
        with pytest.raises(ValueError, match="different"):
            getattr(utils, name)(ours)


def test_set_batch_size_propagates_like_sinabs():
    ours, theirs = Nested(fl), Nested(sl)
    x = torch.rand(8, 1, 6, 6) * 10  # 2 x 4
    y = ours(x)
    assert torch.equal(y, theirs(x)) and y.sum() > 0
    x3 = torch.rand(12, 1, 6, 6) * 10  # 3 x 4
    for model in (ours, theirs):  # spk1 (batch_size=2) runs; the next layer raises
        with pytest.raises(RuntimeError):
            model(x3)
    sinabs_fast.set_batch_size(ours, 3)
    sinabs.set_batch_size(theirs, 3)
    assert [m.batch_size for m in _squeeze_layers(ours, fl)] == \
        [m.batch_size for m in _squeeze_layers(theirs, sl)] == [3, 3, 3]
    assert sinabs_fast.get_batch_size(ours) == sinabs.utils.get_batch_size(theirs) == 3
    assert utils.get_smallest_compatible_time_dimension(ours) == 12
    # The states are resampled to the new batch size with the same RNG draws as sinabs.
    torch.manual_seed(4)
    y = ours(x3)
    torch.manual_seed(4)
    assert torch.equal(y, theirs(x3))
    # A bare squeeze layer is itself updated (modules() includes the root, in sinabs too).
    bare, bare_ref = fl.IAFSqueeze(batch_size=2), sl.IAFSqueeze(batch_size=2)
    sinabs_fast.set_batch_size(bare, 7), sinabs.set_batch_size(bare_ref, 7)
    assert bare.batch_size == bare_ref.batch_size == 7


def test_sinabs_batch_size_update_case():
    # sinabs tests/test_batch_size_update.py, on sinabs_fast.
    model = nn.Sequential(nn.Linear(3, 3), fl.IAFSqueeze(batch_size=2))
    model(torch.rand(2 * 5, 3))
    with pytest.raises(RuntimeError):
        model(torch.rand(3 * 5, 3))
    sinabs_fast.set_batch_size(model, 4)
    assert model(torch.rand(4 * 5, 3)).shape == (20, 3)


# ------------------------------------------------------------------------ conversion


def _iaf_model(lib):
    torch.manual_seed(2)
    return nn.Sequential(
        nn.Conv2d(2, 8, 3), lib.IAF(spike_threshold=2.0),
        nn.Conv2d(8, 16, 3), nn.Sequential(lib.IAF(spike_threshold=1.0, tau_syn=2.0)),
        nn.Flatten(), nn.Linear(16 * 4 * 4, 10),
    )


def test_replace_module_iaf_to_iafsqueeze_via_arg_dict():
    model = _iaf_model(fl)
    new = conversion.replace_module(
        model, fl.IAF, lambda m: fl.IAFSqueeze(**m.arg_dict, batch_size=3))
    ref_model = _iaf_model(sl)
    ref = sinabs.conversion.replace_module(
        ref_model, sl.IAF, lambda m: sl.IAFSqueeze(**m.arg_dict, batch_size=3))
    assert new is not model and len(new) == len(model)
    assert type(new[1]) is fl.IAFSqueeze and type(new[3][0]) is fl.IAFSqueeze
    assert type(model[1]) is fl.IAF  # the original is untouched
    assert new[1].batch_size == 3 and new[1].spike_threshold == 2
    assert new[3][0].spike_threshold == 1 and new[3][0].tau_syn is not None
    assert new[0] is not model[0] and torch.equal(new[0].weight, model[0].weight)
    assert [type(m).__name__ for m in new.modules()] == \
        [type(m).__name__ for m in ref.modules()]
    x = torch.rand(3, 4, 2, 8, 8) * 3
    assert torch.equal(new(x.flatten(0, 1)), ref(x.flatten(0, 1)))


def test_replace_module_exact_type_only_and_root():
    class MyIAF(fl.IAF):
        pass

    model = nn.Sequential(fl.IAF(), MyIAF())
    new = conversion.replace_module(model, fl.IAF, lambda m: nn.Identity())
    assert type(new[0]) is nn.Identity and type(new[1]) is MyIAF
    root = fl.IAF(spike_threshold=3.0)
    mapped = conversion.replace_module(root, fl.IAF, lambda m: fl.IAFSqueeze(**m.arg_dict,
                                                                              batch_size=2))
    assert type(mapped) is fl.IAFSqueeze and mapped.spike_threshold == 3.0
    ref = sinabs.conversion.replace_module(sl.IAF(), sl.IAF, lambda m: nn.Identity())
    assert type(conversion.replace_module(fl.IAF(), fl.IAF, lambda m: nn.Identity())) is \
        type(ref)
    # The root is passed to mapper_fn itself, not a copy (as in sinabs).
    seen = []
    conversion.replace_module(root, fl.IAF, lambda m: seen.append(m))
    assert seen[0] is root


def test_replace_module_in_place_and_root_warning():
    model = _iaf_model(fl)
    first_conv = model[0]
    assert conversion.replace_module_(model, fl.IAF, lambda m: nn.ReLU()) is None
    assert type(model[1]) is nn.ReLU and type(model[3][0]) is nn.ReLU and model[0] is first_conv

    class Block(nn.Module):
        def __init__(self, lib):
            super().__init__()
            self.inner = lib.IAF()

    for lib, conv in ((fl, conversion), (sl, sinabs.conversion)):
        root = nn.Sequential(nn.Linear(2, 2))
        with pytest.warns(UserWarning):
            conv.replace_module_(root, nn.Sequential, lambda m: nn.Identity())
        assert type(root) is nn.Sequential and type(root[0]) is nn.Linear
        # A matching module with children: its children are converted first, then it is mapped.
        outer = nn.Sequential(Block(lib))
        received = []
        conv.replace_module_(outer, lib.IAF, lambda m: nn.Tanh())
        # The recursion into the matching Block hits the "root" check: it warns (sinabs too).
        with pytest.warns(UserWarning):
            conv.replace_module_(outer, Block, lambda m: received.append(type(m.inner)) or m)
        assert received == [nn.Tanh]


def test_replace_module_matches_sinabs_on_nested_custom_model():
    class MyModel(nn.Module):
        def __init__(self, lib):
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(2, 8, 3)
            self.spike1 = lib.IAF(spike_threshold=2.0)
            self.seq = nn.Sequential(nn.Conv2d(8, 4, 3), lib.IAF(min_v_mem=-1.0))

    ours = conversion.replace_module(MyModel(fl), fl.IAF,
                                     lambda m: fl.IAFSqueeze(**m.arg_dict, num_timesteps=5))
    theirs = sinabs.conversion.replace_module(
        MyModel(sl), sl.IAF, lambda m: sl.IAFSqueeze(**m.arg_dict, num_timesteps=5))
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.rand(10, 2, 9, 9) * 2
    y = ours.seq(ours.spike1(ours.conv(x)))
    assert torch.equal(y, theirs.seq(theirs.spike1(theirs.conv(x))))
    assert copy.deepcopy(ours) is not ours
