"""The layers' Python API against sinabs 3.1.3: constructor arguments, parameter and buffer
names, state handling, copies, checkpoints, reshaping helpers, and clear errors."""

import copy
import subprocess
import sys

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.activation as sa
import sinabs.layers as sl
import torch

import sinabs_fast.activation as fa
import sinabs_fast.layers as fl

LAYERS = [
    (fl.IAF, sl.IAF, {}),
    (fl.IAF, sl.IAF, dict(tau_syn=4.0, min_v_mem=-1.0, spike_threshold=2.0)),
    (fl.IAFSqueeze, sl.IAFSqueeze, dict(batch_size=2)),
    (fl.IAFSqueeze, sl.IAFSqueeze, dict(num_timesteps=5, tau_syn=2.0)),
]


@pytest.mark.parametrize("ours,theirs,kwargs", LAYERS)
def test_names_repr_and_arg_dict_match(ours, theirs, kwargs):
    a, b = ours(**kwargs), theirs(**kwargs)
    assert repr(a) == repr(b)
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]
    assert list(a.state_dict()) == list(b.state_dict())
    assert set(a.arg_dict) == set(b.arg_dict)
    x = torch.rand(10, 3) * 2 if "batch_size" in kwargs or "num_timesteps" in kwargs \
        else torch.rand(2, 5, 3) * 2
    a(x), b(x)
    assert list(a.state_dict()) == list(b.state_dict())
    assert a.shape == b.shape and a.does_spike and b.does_spike


def test_rebuild_from_arg_dict_both_ways():
    ours = fl.IAF(tau_syn=3.0, spike_fn=fa.SingleSpike, min_v_mem=-0.5)
    theirs = sl.IAFSqueeze(**ours.arg_dict, batch_size=2)  # sinabs' conversion mappers do this
    back = fl.IAFSqueeze(**theirs.arg_dict)
    x = torch.rand(2, 6, 4) * 2
    assert torch.equal(ours(x), back(x.flatten(0, 1)).unflatten(0, (2, 6)))


def test_reset_states_randomize_matches_sinabs():
    a, b = fl.IAF(tau_syn=2.0), sl.IAF(tau_syn=2.0)
    x = torch.rand(3, 4, 5)
    a(x), b(x)
    ranges = {"v_mem": (-1.0, 2.0)}
    torch.manual_seed(7)
    a.reset_states(randomize=True, value_ranges=ranges)
    torch.manual_seed(7)
    b.reset_states(randomize=True, value_ranges=ranges)
    assert torch.equal(a.v_mem, b.v_mem) and torch.equal(a.i_syn, b.i_syn)
    assert a.v_mem.min() >= -1.0 and a.v_mem.max() <= 2.0
    a.reset_states()
    assert not a.v_mem.any() and not a.i_syn.any()


def test_uninitialised_reset_is_noop_and_states_start_empty():
    layer = fl.IAF()
    assert layer.v_mem.shape == (0,) and not layer.is_state_initialised()
    layer.reset_states()
    assert layer.shape is None


def test_zero_grad_detaches_states_and_keeps_values():
    layer = fl.IAF(tau_syn=2.0)
    x = (torch.rand(2, 5, 3) * 2).requires_grad_()
    layer(x)
    assert layer.v_mem.grad_fn is not None
    before = layer.v_mem.clone()
    layer.zero_grad()
    assert layer.v_mem.grad_fn is None and layer.i_syn.grad_fn is None
    assert torch.equal(layer.v_mem, before)
    layer(x).sum().backward()  # no "backward through the graph a second time"


def test_states_carry_their_graph_across_calls():
    layer = fl.IAF()
    x1 = (torch.rand(1, 4, 2) * 0.5).requires_grad_()
    layer(x1)
    out = layer(torch.zeros(1, 1, 2) + 0.7)
    out.sum().backward()
    assert x1.grad is not None and x1.grad.abs().sum() > 0


@pytest.mark.parametrize("ours,theirs,kwargs", LAYERS)
def test_deepcopy(ours, theirs, kwargs):
    layer = ours(**kwargs)
    x = torch.rand(10, 3) * 2 if "batch_size" in kwargs or "num_timesteps" in kwargs \
        else torch.rand(2, 5, 3) * 2
    for initialised in (False, True):
        if initialised:
            layer(x)
        clone = copy.deepcopy(layer)
        for (n1, p1), (n2, p2) in zip(layer.named_parameters(), clone.named_parameters()):
            assert n1 == n2 and torch.equal(p1, p2) and p1 is not p2
        for (n1, b1), (n2, b2) in zip(layer.named_buffers(), clone.named_buffers()):
            assert n1 == n2 and torch.equal(b1, b2) and b1 is not b2
        assert clone.arg_dict.keys() == layer.arg_dict.keys()


def test_checkpoint_loads_into_a_fresh_layer_and_continues_bit_identically(tmp_path):
    # sinabs fails here (its states have shape (0,) until the first forward); we resize.
    torch.manual_seed(1)
    layer = fl.IAF(tau_syn=3.0, min_v_mem=-1.0)
    reference = sl.IAF(tau_syn=3.0, min_v_mem=-1.0)
    x1, x2 = torch.rand(2, 6, 4) * 2, torch.rand(2, 6, 4) * 2
    layer(x1), reference(x1)
    torch.save(layer.state_dict(), tmp_path / "iaf.pt")
    fresh = fl.IAF(tau_syn=3.0, min_v_mem=-1.0)
    fresh.load_state_dict(torch.load(tmp_path / "iaf.pt"))
    assert torch.equal(fresh(x2), reference(x2))
    assert torch.equal(fresh.v_mem, reference.v_mem)


def test_default_threshold_is_not_shared_between_layers():
    a, b = fl.IAF(), fl.IAF()
    a.spike_threshold.data.fill_(3.0)
    assert b.spike_threshold.item() == 1.0 and fl.IAF().spike_threshold.item() == 1.0


def test_spike_counts_and_firing_rate():
    layer = fl.IAF()
    x = torch.rand(3, 20, 4, 2) * 2
    out = layer(x)
    assert torch.equal(layer.spike_counts, out.sum(1))
    assert torch.equal(layer.firing_rate, sl.IAF()(x).mean())


def test_reshaping_helpers_match_sinabs():
    x = torch.rand(2, 3, 4, 5)
    assert torch.equal(fl.FlattenTime()(x), sl.FlattenTime()(x))
    flat = x.flatten(0, 1)
    assert torch.equal(fl.UnflattenTime(2)(flat), sl.UnflattenTime(2)(flat))
    conv = torch.nn.Conv1d(4, 2, 3)
    assert torch.equal(fl.Repeat(conv)(x), sl.Repeat(conv)(x))
    assert repr(fl.Repeat(conv)) == repr(sl.Repeat(conv))


def test_activation_functions_match_sinabs():
    v = torch.tensor([2.5, 0.3, -1.2, 6.5], requires_grad=True)
    thr = torch.tensor(1.0)
    for ours, theirs in [(fa.MultiSpike, sa.MultiSpike), (fa.SingleSpike, sa.SingleSpike),
                         (fa.MaxSpike(4), sa.MaxSpike(4))]:
        a = ours.apply(v, thr, fa.SingleExponential())
        b = theirs.apply(v, thr, sa.SingleExponential())
        assert torch.equal(a, b)
        ga, = torch.autograd.grad(a.sum(), v)
        gb, = torch.autograd.grad(b.sum(), v)
        assert torch.equal(ga, gb)
    state = {"v_mem": v.detach()}
    spikes = torch.tensor([2.0, 0.0, 0.0, 6.0])
    for ours, theirs in [(fa.MembraneSubtract(), sa.MembraneSubtract()),
                         (fa.MembraneReset(0.5), sa.MembraneReset(0.5))]:
        assert torch.equal(ours(spikes, state, thr)["v_mem"], theirs(spikes, state, thr)["v_mem"])
    grid = torch.arange(-1, 3.01, 0.25)
    for name in ["SingleExponential", "PeriodicExponential", "Heaviside", "Gaussian",
                 "MultiGaussian"]:
        assert torch.equal(getattr(fa, name)()(grid, thr), getattr(sa, name)()(grid, thr))
    x = torch.tensor([1.7, -0.2])
    assert torch.equal(fa.Quantize.apply(x), sa.Quantize.apply(x))


@pytest.mark.parametrize("threshold", [0.0, -1.0, torch.tensor([1.0, 0.0])])
def test_non_positive_threshold_is_rejected(threshold):
    with pytest.raises(ValueError, match="spike_threshold"):
        fl.IAF(spike_threshold=threshold)


def test_per_neuron_parameter_of_wrong_shape_names_it():
    layer = fl.IAF(spike_threshold=torch.ones(5))
    with pytest.raises(ValueError, match="spike_threshold"):
        layer(torch.rand(2, 3, 4))
    layer = fl.IAF(min_v_mem=-torch.ones(3, 2))
    with pytest.raises(ValueError, match="min_v_mem"):
        layer(torch.rand(2, 3, 4))


def test_bad_inputs_get_clear_errors():
    layer = fl.IAF()
    with pytest.raises(TypeError, match="input_data"):
        layer(torch.ones(2, 3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="input_data"):
        layer(torch.ones(5))
    with pytest.raises(ValueError, match="time steps"):
        layer(torch.ones(2, 0, 3))
    with pytest.raises(TypeError, match="input_data"):
        layer([[1.0]])


def test_squeeze_batch_that_does_not_divide():
    layer = fl.IAFSqueeze(batch_size=3)
    with pytest.raises(RuntimeError, match="batch_size"):
        layer(torch.rand(10, 4))
    with pytest.raises(TypeError, match="batch_size or num_timesteps"):
        fl.IAFSqueeze()


def test_op_rejects_bad_arguments():
    x, v = torch.rand(2, 3, 4), torch.zeros(2, 4)
    one = torch.tensor(1.0)
    op = torch.ops.sinabs_fast.lif_forward.default
    base = [x, v, None, one, None, False, one, one, None, 1, float("inf"), 0, 0.0, 0, [0.5, 1.0],
            True, False]
    bad = {
        0: (torch.rand(2, 3), "input"),
        1: (torch.zeros(3, 4), "v_mem"),
        6: (torch.ones(3), "threshold"),
        9: (7, "spike_kind"),
    }
    for index, (value, name) in bad.items():
        args = list(base)
        args[index] = value
        with pytest.raises(RuntimeError, match=name):
            op(*args)
    args = list(base)
    args[0] = x.double()
    with pytest.raises(RuntimeError, match="v_mem must have the input's dtype"):
        op(*args)


def test_package_does_not_import_sinabs():
    code = ("import sys, torch, sinabs_fast, sinabs_fast.layers as sl; "
            "sl.IAF()(torch.rand(1, 2, 3)); assert 'sinabs' not in sys.modules, 'sinabs imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("theirs,ours", [
    ("sinabs.layers", "sinabs_fast.layers"),
    ("sinabs.activation", "sinabs_fast.activation"),
    ("sinabs.layers.functional", "sinabs_fast.layers.functional"),
])
def test_every_public_name_of_sinabs_exists(theirs, ours):
    """``import sinabs_fast.layers as sl`` serves every model ``import sinabs.layers as sl``
    serves: each public class and function of sinabs' namespaces exists here, of the same kind."""
    import importlib
    import inspect

    theirs_mod, ours_mod = importlib.import_module(theirs), importlib.import_module(ours)
    public = {
        name: obj for name, obj in vars(theirs_mod).items()
        if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
    }
    assert len(public) >= 4
    for name, obj in public.items():
        assert hasattr(ours_mod, name), f"{ours}.{name} is missing"
        assert inspect.isclass(getattr(ours_mod, name)) == inspect.isclass(obj), name


def _parameters(function, leave_out=()):
    """A signature's parameters as (name, kind, default), the default as its repr (sinabs' and
    our activation classes are distinct objects with the same repr)."""
    import inspect

    return [(p.name, p.kind, repr(p.default).replace("sinabs_fast.", "sinabs."))
            for p in inspect.signature(function).parameters.values() if p.name not in leave_out]


@pytest.mark.parametrize("name", ["LIF", "LIFRecurrent", "IAF", "IAFRecurrent", "ExpLeak",
                                  "ALIF", "ALIFRecurrent"])
def test_neuron_layer_signatures_match(name):
    """The neuron layers' constructors take sinabs' arguments, in its order, with its defaults
    (the recurrent ones' are made from the non-recurrent ones', layers/recurrent_arguments.py)."""
    assert _parameters(getattr(fl, name)) == _parameters(getattr(sl, name))


@pytest.mark.parametrize("name", ["lif_forward", "lif_recurrent", "alif_forward",
                                  "alif_recurrent"])
def test_functional_signatures_match(name):
    """As sinabs' functional forms, with one more argument at the end: the kernel spec."""
    import sinabs.layers.functional as sf

    import sinabs_fast.layers.functional as ff

    assert _parameters(getattr(ff, name), leave_out=("spec",)) == _parameters(getattr(sf, name))


def test_a_recurrent_layer_names_a_wrong_argument():
    with pytest.raises(TypeError, match="LIFRecurrent.__init__.*unexpected keyword argument "
                                        "'tau_men'"):
        fl.LIFRecurrent(10.0, rec_connect=torch.nn.Identity(), tau_men=10.0)
    with pytest.raises(TypeError, match="missing a required argument: 'rec_connect'"):
        fl.IAFRecurrent()


class _HostToDeviceCopies(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the ops that turn host (CPU) tensors into non-CPU tensors."""

    def __init__(self):
        super().__init__()
        self.copies = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default,
                    torch.ops.aten.lift_fresh.default):
            sources = [a for a in (*args, *(kwargs or {}).values()) if isinstance(a, torch.Tensor)]
            results = out if isinstance(out, (tuple, list)) else [out]
            if any(a.device.type == "cpu" for a in sources) and any(
                    isinstance(r, torch.Tensor) and r.device.type != "cpu" for r in results):
                self.copies.append(func)
        return out


@pytest.mark.parametrize("make", [
    lambda: fl.IAF(tau_syn=3.0), lambda: fl.LIF(tau_mem=20.0, tau_syn=5.0),
    lambda: fl.ExpLeak(tau_mem=10.0), lambda: fl.ALIF(tau_mem=20.0, tau_adapt=100.0),
])
def test_a_call_copies_no_host_tensor_to_the_device(make):
    """On a GPU, copying a host tensor to the device waits for the device's queued work (a
    host-device synchronisation per layer call). The meta device stands in for the GPU here:
    a forward and backward on it must create their constants there, not copy them over."""
    layer = make().to("meta")
    x = torch.empty(2, 5, 4, device="meta", requires_grad=True)
    with _HostToDeviceCopies() as log:
        layer(x).sum().backward()
    assert log.copies == []
