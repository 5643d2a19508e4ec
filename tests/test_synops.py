"""Synaptic-operation counters: SynOpCounter, the legacy SNNSynOpCounter, SNNAnalyzer and hooks,
against sinabs 3.1.3 (same weights, same input) and against references computed here from the
spike tensors; counts read from the kernels; gradients; training; all_reduce over gloo."""

import math
import os
import sys
import warnings

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs
import sinabs.hooks
import sinabs.layers
import torch
import torch.nn as nn

import sinabs_fast
import sinabs_fast.layers as sl
from sinabs_fast import _spike_counts, hooks
from sinabs_fast.demo import seed_network
from sinabs_fast.train import models

from conftest import assert_grads_close

B, T = 5, 10


def _seed_setup(batch=B, steps=T, seed=0):
    """The documentation's seed network (sinabs_fast layers) and its random input spikes."""
    torch.manual_seed(seed)
    net = seed_network(sl, batch)
    x = (torch.rand(batch, steps, 1, 28, 28) < 0.3).float()
    return net, x


def _sinabs_twin(net, builder=seed_network, *args):
    """The same network on sinabs' layers, with our weights."""
    twin = builder(sinabs.layers, *args)
    twin.load_state_dict({k: v for k, v in net.state_dict().items() if k.endswith(("weight", "bias"))},
                         strict=False)
    return twin


def _input_sums(model):
    """Reference: forward hooks that record each Conv2d/Linear input (the spike tensor)."""
    seen = {}
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(lambda m, i, o: seen.__setitem__(m, i[0]))
    return seen


def _legacy_fanout(module):
    if isinstance(module, nn.Conv2d):
        return module.out_channels * math.prod(module.kernel_size) / math.prod(module.stride)
    return module.out_features


# ------------------------------------------------------------------------ SynOpCounter (ANN)


def _ann(layers=sl):
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, bias=False), layers.NeuromorphicReLU(), nn.AvgPool2d(2),
        nn.Conv2d(16, 32, 5, bias=False), layers.NeuromorphicReLU(), nn.AvgPool2d(2),
        nn.Conv2d(32, 120, 4, bias=False), layers.NeuromorphicReLU(), nn.Flatten(),
        nn.Linear(120, 10, bias=False),
    )


def test_synopcounter_docs_ann_example():
    torch.manual_seed(0)
    model = _ann()
    x = torch.rand(5, 1, 28, 28)
    counter = sinabs_fast.SynOpCounter(model.modules())
    per_layer = sinabs_fast.SynOpCounter(model.modules(), sum_activations=False)
    model(x)
    assert counter().item() == pytest.approx(31.8)
    assert [v.item() for v in per_layer()] == pytest.approx([31.8, 0.0, 0.0])
    twin = _ann(sinabs.layers)
    twin.load_state_dict(model.state_dict())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = sinabs.SynOpCounter(twin.modules())
    twin(x * 255)
    model(x * 255)
    assert torch.equal(counter(), theirs())


class _TinyModel(nn.Module):
    def __init__(self, quantize):
        super().__init__()
        self.linear = nn.Linear(5, 2, bias=False)
        self.relu = sl.NeuromorphicReLU(fanout=2, quantize=quantize)
        self.linear.weight.data = torch.tensor([[1.2, 1.0, 1.0, 3.0, -2.0],
                                                [1.2, 1.0, 1.0, 2.0, -10.0]])

    def forward(self, x):
        return self.relu(self.linear(x))


@pytest.mark.parametrize("quantize,expected", [(False, 4.2), (True, 4.0)])
def test_synopcounter_tiny_model(quantize, expected):
    model = _TinyModel(quantize)
    counter = sinabs_fast.SynOpCounter(model.modules())
    model(torch.full((1, 5), 0.5))
    loss = counter()
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert model.linear.weight.grad is not None


def test_synopcounter_parsing_and_errors():
    model = nn.Sequential(nn.Linear(3, 3), sl.NeuromorphicReLU(), nn.Linear(3, 3),
                          sl.NeuromorphicReLU(fanout=0))
    assert len(sinabs_fast.SynOpCounter(model.modules()).modules) == 1
    with pytest.raises(ValueError, match="modules"):
        sinabs_fast.SynOpCounter(nn.Sequential(nn.Linear(3, 3)).modules())
    with pytest.raises(RuntimeError, match="forward"):
        sinabs_fast.SynOpCounter(model.modules())()


# ------------------------------------------------------------------------ legacy SNNSynOpCounter

# sinabs 1.0's documentation example re-run (docs/synops.md): seed 0, B=5, T=10.
DOCS_TABLE = {
    2: (11737.0, 400.0, 4694800.0),
    5: (27701.0, 800.0, 22160800.0),
    8: (1514.0, 1920.0, 2906880.0),
    11: (0.0, 10.0, 0.0),
}


def test_legacy_docs_example_runs_unchanged():
    # The documentation's code, after `import sinabs_fast as sinabs`.
    sinabs_ = sinabs_fast
    snn, x = _seed_setup()
    counter = sinabs_.SNNSynOpCounter(snn)
    assert counter.get_total_synops() == 0
    snn(x)
    assert counter.get_total_synops().item() == 10_961_720
    assert counter.get_total_synops(per_second=True).item() == 219_234_400
    table = counter.get_synops()
    assert list(table.columns) == ["In", "Fanout_Prev", "SynOps", "N. timesteps",
                                   "Time window (ms)", "SynOps/s"]
    assert table.index.name == "Layer" and list(table.index) == list(DOCS_TABLE)
    for layer, (tot_in, fanout, synops) in DOCS_TABLE.items():
        row = table.loc[layer]
        assert (row["In"], row["Fanout_Prev"], row["SynOps"]) == (tot_in, fanout, synops)
        assert row["N. timesteps"] == B * T and row["Time window (ms)"] == B * T
        assert row["SynOps/s"] == synops / (B * T) * 1000
    synops = counter.get_total_synops()
    target_synops = counter.get_total_synops() / 2
    loss = (target_synops - synops).square() / target_synops.square()
    loss.backward()
    assert all(m.weight.grad is not None for m in snn if isinstance(m, nn.Conv2d))
    power = counter.get_total_power_use()
    assert power.item() == pytest.approx(219_234_400 * 1e-11 * 1000)


@pytest.mark.parametrize("dt", [1.0, 0.5])
def test_legacy_against_spike_tensor_reference(dt):
    snn, x = _seed_setup()
    seen = _input_sums(snn)
    counter = sinabs_fast.SNNSynOpCounter(snn, dt=dt)
    for batch in range(2):  # the table is the last batch's
        sinabs_fast.reset_states(snn)
        snn(x if batch == 0 else (torch.rand_like(x) < 0.2).float())
        table = counter.get_synops()
        index = {m: i for i, m in enumerate(snn.modules())}
        expected_total = 0.0
        scale = 1
        for module in snn.modules():
            if isinstance(module, nn.AvgPool2d):
                scale *= module.kernel_size ** 2
            if module in seen:
                tot_in = seen[module].sum().item()
                row = table.loc[index[module]]
                assert row["In"] == pytest.approx(tot_in * scale, rel=1e-6)
                assert row["SynOps"] == pytest.approx(tot_in * _legacy_fanout(module) * scale,
                                                      rel=1e-6)
                assert row["N. timesteps"] == seen[module].shape[0]
                assert row["Time window (ms)"] == seen[module].shape[0] * dt
                expected_total += tot_in * _legacy_fanout(module)
                scale = 1
        assert counter.get_total_synops().item() == pytest.approx(expected_total, rel=1e-6)


def test_legacy_get_synops_needs_pandas(monkeypatch):
    snn, x = _seed_setup()
    counter = sinabs_fast.SNNSynOpCounter(snn)
    snn(x)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="pip install pandas"):
        counter.get_synops()
    assert counter.get_total_synops().item() == 10_961_720


def test_counters_reject_bad_arguments():
    for counter in (sinabs_fast.SNNSynOpCounter, sinabs_fast.SNNAnalyzer):
        with pytest.raises(ValueError, match="dt"):
            counter(nn.Linear(2, 2), dt=0)
        with pytest.raises(ValueError, match="dt"):
            counter(nn.Linear(2, 2), dt=-1.0)
        with pytest.raises(TypeError, match="model"):
            counter([nn.Linear(2, 2)])
    with pytest.raises(ValueError, match="model: no Conv2d or Linear"):
        sinabs_fast.SNNSynOpCounter(nn.Sequential(sl.IAF()))
    with pytest.raises(ValueError, match="model: no spiking, Conv2d or Linear"):
        sinabs_fast.SNNAnalyzer(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="dt"):
        hooks.ModelSynopsHook(dt=0.0)
    with pytest.raises(TypeError, match="module"):
        hooks.register_synops_hooks(nn.Linear(2, 2))


def test_dropped_counter_removes_its_hooks():
    snn, x = _seed_setup()
    hooked = sum(len(m._forward_hooks) for m in snn.modules())
    counter = sinabs_fast.SNNSynOpCounter(snn)
    assert sum(len(m._forward_hooks) for m in snn.modules()) > hooked
    del counter
    assert sum(len(m._forward_hooks) for m in snn.modules()) == hooked


# ------------------------------------------------------------------------ counts from the kernels


def test_conv_and_linear_inputs_are_read_from_spike_counts():
    snn, x = _seed_setup()
    seen = _input_sums(snn)
    sinabs_fast.SNNSynOpCounter(snn)  # registers the tagging hooks (kept alive below)
    handles = _spike_counts.track_spike_counts(snn)
    snn(x)
    convs = [m for m in snn if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert _spike_counts._tag_of(seen[convs[0]]) is None  # the network's input spikes
    for module in convs[1:]:  # after IAFSqueeze (+ AvgPool2d / Flatten)
        tag = _spike_counts._tag_of(seen[module])
        assert tag is not None and tag.steps == T and tag.batch == B
        features = 3 if isinstance(module, nn.Conv2d) else 1
        from_counts = _spike_counts.summed_input(seen[module], features)
        assert from_counts.shape == seen[module].shape[-features:]
        torch.testing.assert_close(from_counts, seen[module].sum(0), rtol=1e-6, atol=1e-6)
    for handle in handles:
        handle.remove()


def test_tags_follow_layout_changes_and_drop_on_mismatch():
    torch.manual_seed(3)
    iaf = sl.IAF()  # (B, T, C, H, W): not squeezed
    net = nn.Sequential(iaf, sl.FlattenTime(), nn.ZeroPad2d(1), nn.AvgPool2d(2),
                        nn.Flatten(), sl.UnflattenTime(batch_size=2), nn.Identity(),
                        nn.Linear(2 * 5 * 5, 3))
    seen = _input_sums(net)
    handles = _spike_counts.track_spike_counts(net)
    net(torch.rand(2, 6, 2, 8, 8) * 2)
    x = seen[net[-1]]
    assert x.shape == (2, 6, 50) and _spike_counts._tag_of(x).time_dim == 1
    torch.testing.assert_close(_spike_counts.summed_input(x, 1), x.sum((0, 1)))
    x.mul_(2)  # an in-place change voids the tag
    assert _spike_counts._tag_of(x) is None
    # Time flattened into the features: no tag, the tensor is summed instead.
    mixing = nn.Sequential(sl.IAF(), nn.Flatten(start_dim=1), nn.Linear(4 * 3, 2))
    seen = _input_sums(mixing)
    handles += _spike_counts.track_spike_counts(mixing)
    mixing(torch.rand(2, 4, 3) * 3)
    assert _spike_counts._tag_of(seen[mixing[-1]]) is None
    for handle in handles:
        handle.remove()


def _injected_counts_model():
    """IAFSqueeze -> AvgPool2d -> Conv2d -> IAFSqueeze -> Flatten -> Linear on squeezed input,
    with a hook that replaces the first layer's spike counts by a given tensor."""
    torch.manual_seed(4)
    net = nn.Sequential(
        sl.IAFSqueeze(batch_size=2), nn.AvgPool2d(2), nn.Conv2d(2, 3, 3, padding=1),
        sl.IAFSqueeze(batch_size=2), nn.Flatten(), nn.Linear(3 * 4 * 4, 4),
    )
    x = torch.rand(2 * 3, 2, 8, 8) * 3
    injected = {}

    def inject(module, inputs, output):
        if "c" in injected:
            module.spike_counts = injected["c"]

    net[0].register_forward_hook(inject)
    return net, x, injected


def _hooks_total(net):
    return net.hook_data["total_synops_per_timestep"]


@pytest.mark.parametrize("counter", ["legacy", "analyzer", "hooks"])
def test_gradient_through_counts_matches_finite_differences(counter):
    """Each counter as a function of the first layer's spike counts: autograd vs finite
    differences (torch.autograd.gradcheck, float64)."""
    net, x, injected = _injected_counts_model()
    if counter == "legacy":
        c = sinabs_fast.SNNSynOpCounter(net)
        total = c.get_total_synops
    elif counter == "analyzer":
        c = sinabs_fast.SNNAnalyzer(net)
        total = lambda: c.get_model_statistics()["synops"]  # noqa: E731
    else:
        hooks.register_synops_hooks(net)
        total = lambda: _hooks_total(net)  # noqa: E731
    with torch.no_grad():
        net(x)
    counts = net[0].spike_counts.detach().double() + torch.rand(2, 2, 8, 8, dtype=torch.float64)

    def synops(c_in):
        injected["c"] = c_in
        sinabs_fast.reset_states(net)
        net(x)
        return total()

    assert torch.autograd.gradcheck(synops, (counts.requires_grad_(),), eps=1e-3, atol=1e-4)


def _spike_reference_synops(net, seen):
    """Analyzer-style synops from the spike tensors (exact fan-out, per sample, AvgPool scale
    not applied), computed here."""
    total = 0.0
    for module, x in seen.items():
        x = x.reshape(B, T, *x.shape[1:]).sum(1)
        if isinstance(module, nn.Conv2d):
            out = nn.functional.conv2d(x[:1], module.weight, stride=module.stride)
            cmap = hooks.conv_connection_map(module, x.shape[1:], out.shape[1:])
            total = total + (x * cmap).mean(0).sum()
        else:
            total = total + x.mean(0).sum() * module.out_features
    return total


def test_weight_gradients_equal_spike_tensor_computation():
    snn, x = _seed_setup()
    analyzer = sinabs_fast.SNNAnalyzer(snn)
    legacy = sinabs_fast.SNNSynOpCounter(snn)
    seen = _input_sums(snn)
    snn(x)
    ours = analyzer.get_model_statistics()["synops"] + 1e-3 * legacy.get_total_synops()
    reference = _spike_reference_synops(snn, seen) \
        + 1e-3 * sum(v.sum() * _legacy_fanout(m) for m, v in seen.items())
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=0)
    params = [m.weight for m in snn if isinstance(m, nn.Conv2d)]
    grads = torch.autograd.grad(ours, params, retain_graph=True)
    expected = torch.autograd.grad(reference, params)
    for g, e in zip(grads, expected):
        assert g.abs().sum() > 0
        assert_grads_close(g, e)


def test_training_moves_synops_toward_target():
    snn, x = _seed_setup()
    counter = sinabs_fast.SNNSynOpCounter(snn)
    snn(x)
    start = counter.get_total_synops().item()
    target = torch.tensor(start / 2)
    optimiser = torch.optim.Adam(snn.parameters(), lr=2e-2)
    for _ in range(12):
        sinabs_fast.reset_states(snn)
        optimiser.zero_grad()
        snn(x)
        loss = (target - counter.get_total_synops()).square() / target.square()
        loss.backward()
        optimiser.step()
    sinabs_fast.reset_states(snn)
    with torch.no_grad():
        snn(x)
    end = counter.get_total_synops().item()
    assert abs(end - target.item()) < 0.5 * abs(start - target.item())


# ------------------------------------------------------------------------ SNNAnalyzer vs sinabs


def _reset(net):
    sinabs_fast.reset_states(net)
    sinabs.reset_states(net)  # each resets its own layers


def _sinabs_analyzer(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return sinabs.SNNAnalyzer(model)


def _assert_same_stats(ours, theirs):
    if isinstance(theirs, dict):
        assert ours.keys() == theirs.keys()
        for key in theirs:
            _assert_same_stats(ours[key], theirs[key])
    elif isinstance(theirs, torch.Tensor):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours.float(), theirs.float(), rtol=1e-6, atol=1e-6)
    else:
        assert ours == theirs


def _run_and_compare(ours, theirs, nets, batch):
    """Resets both networks, runs the batch through them and compares the two analyzers'
    layer and model statistics, last-batch and averaged."""
    for net in nets:
        _reset(net)
        net(batch)
    for average in (False, True):
        _assert_same_stats(ours.get_layer_statistics(average), theirs.get_layer_statistics(average))
        _assert_same_stats(ours.get_model_statistics(average), theirs.get_model_statistics(average))


def test_analyzer_matches_sinabs_on_the_seed_network():
    ours_net, x = _seed_setup()
    theirs_net = _sinabs_twin(ours_net, seed_network, B)
    ours, theirs = sinabs_fast.SNNAnalyzer(ours_net), _sinabs_analyzer(theirs_net)
    inputs = [x, (torch.rand_like(x) < 0.5).float(), (torch.rand_like(x) < 0.1).float()]
    for batch in inputs:
        _run_and_compare(ours, theirs, (ours_net, theirs_net), batch)
    # Firing rates from the counts are bit-identical.
    spiking = ours.get_layer_statistics(True)["spiking"]
    for name, stats in theirs.get_layer_statistics(True)["spiking"].items():
        assert torch.equal(spiking[name]["firing_rate_per_neuron"], stats["firing_rate_per_neuron"])
        assert torch.equal(spiking[name]["firing_rate"], stats["firing_rate"])
    # Gradients of the model synops (the last batch's, and the average, in which only the last
    # batch is differentiable) reach the same weights.
    params = lambda net: [m.weight for m in net if isinstance(m, nn.Conv2d)]  # noqa: E731
    for average in (False, True):
        g_ours = torch.autograd.grad(ours.get_model_statistics(average)["synops"],
                                     params(ours_net), retain_graph=True)
        g_theirs = torch.autograd.grad(theirs.get_model_statistics(average)["synops"],
                                       params(theirs_net), retain_graph=True)
        assert g_ours[0].abs().sum() > 0
        for g, e in zip(g_ours, g_theirs):
            assert_grads_close(g, e)


def _unsqueezed_net(layers):
    """Linear layers between spiking layers on (batch, time, ...) input (no squeeze layer),
    ending in an ExpLeak (which the analyzer does not count as spiking)."""
    return nn.Sequential(
        nn.Linear(6, 8), layers.IAF(), nn.Linear(8, 4), layers.LIF(tau_mem=5.0),
        nn.Linear(4, 3), layers.ExpLeak(tau_mem=4.0),
    )


def test_analyzer_matches_sinabs_without_squeeze_layers():
    torch.manual_seed(5)
    ours_net = _unsqueezed_net(sl)
    theirs_net = _unsqueezed_net(sinabs.layers)
    theirs_net.load_state_dict(ours_net.state_dict(), strict=False)
    ours, theirs = sinabs_fast.SNNAnalyzer(ours_net, dt=0.5), _sinabs_analyzer(theirs_net)
    theirs.dt = 0.5
    for _ in range(2):
        _run_and_compare(ours, theirs, (ours_net, theirs_net), torch.rand(3, 7, 6) * 2)
    assert list(ours.get_layer_statistics()["spiking"]) == ["1", "3"]  # ExpLeak excluded


def test_analyzer_sinabs_test_cases():
    # sinabs' own tests (tests/test_synops_counter.py), on our analyzer.
    model = nn.Linear(3, 5)
    analyzer = sinabs_fast.SNNAnalyzer(model)
    model(torch.tensor([[3.0, 0.0, 0.0]]))
    first = analyzer.get_model_statistics()
    assert first["synops"] == 15 and analyzer.get_layer_statistics()["parameter"][""]["synops"] == 15
    assert math.isinf(analyzer.get_layer_statistics()["parameter"][""]["SynOps/s"])
    model(torch.tensor([[6.0, 0.0, 0.0]]))
    assert analyzer.get_model_statistics()["synops"] == 2 * first["synops"]
    assert analyzer.get_model_statistics(average=True)["synops"] == 22.5

    conv = nn.Conv2d(1, 5, kernel_size=2)
    analyzer = sinabs_fast.SNNAnalyzer(conv)
    eye = torch.eye(3).expand(2, 1, 3, 3)
    conv(eye)
    assert analyzer.get_model_statistics(average=True)["synops"] == 30
    conv(eye * 2)
    assert analyzer.get_layer_statistics(average=True)["parameter"][""]["synops"] == 45

    layer = sl.IAF()
    analyzer = sinabs_fast.SNNAnalyzer(layer)
    layer(torch.eye(4)[None, None])
    assert analyzer.get_model_statistics(average=True)["firing_rate"] == 0.25
    sinabs_fast.reset_states(layer)
    layer(2 * torch.eye(4)[None, None])
    stats = analyzer.get_layer_statistics(average=True)["spiking"][""]
    assert stats["firing_rate"] == 0.375 and stats["firing_rate_per_neuron"].shape == (4, 4)
    assert torch.equal(stats["output"], 1.5 * torch.eye(4)[None, None])
    analyzer.reset()
    sinabs_fast.reset_states(layer)
    layer(2 * torch.eye(4)[None, None])
    assert analyzer.get_model_statistics(average=True)["firing_rate"] == 0.5


# ------------------------------------------------------------------------ hooks vs sinabs.hooks


def _sumpool_network(layers, batch):
    return models.seed_network(batch, layers=layers, pool=layers.SumPool2d)


def _register_rate_hooks(net, hook_module):
    for module in net.modules():
        if isinstance(module, (sl.IAFSqueeze, sinabs.layers.IAFSqueeze)):
            module.register_forward_hook(hook_module.firing_rate_hook)
            module.register_forward_hook(hook_module.firing_rate_per_neuron_hook)


@pytest.mark.parametrize("dt", [None, 1e-3])
def test_hooks_docs_example_and_sinabs(dt):
    """sinabs 3.x documentation: SumPool2d network, ones input, seed 1: 1,220,571 synops per
    time step (230,400 + 901,120 + 88,320 + 731)."""
    torch.manual_seed(1)
    ours_net = _sumpool_network(sl, B)
    theirs_net = _sinabs_twin(ours_net, _sumpool_network, B)
    hooks.register_synops_hooks(ours_net, dt=dt)
    sinabs.hooks.register_synops_hooks(theirs_net, dt=dt)
    _register_rate_hooks(ours_net, hooks)
    _register_rate_hooks(theirs_net, sinabs.hooks)
    x = torch.ones(B, T, 1, 28, 28)
    ours_net(x)
    theirs_net(x)
    data = ours_net.hook_data
    assert data["total_synops_per_timestep"].item() == 1_220_571
    assert {k: round(v.item(), 3) for k, v in data["synops_per_timestep"].items()} == \
        {1: 230_400, 4: 901_120, 7: 88_320, 10: 731.0}
    for key in theirs_net.hook_data:
        _assert_same_stats(data[key], theirs_net.hook_data[key])
    for ours, theirs in zip(ours_net, theirs_net):
        if hasattr(theirs, "hook_data"):
            assert ours.hook_data.keys() == theirs.hook_data.keys()
            for key, value in theirs.hook_data.items():
                if key.startswith("firing_rate"):
                    assert torch.equal(ours.hook_data[key], value)
                else:
                    _assert_same_stats(ours.hook_data[key], value)


def test_hooks_random_input_and_gradients_match_sinabs():
    ours_net, x = _seed_setup()
    theirs_net = _sinabs_twin(ours_net, seed_network, B)
    for net, module in ((ours_net, hooks), (theirs_net, sinabs.hooks)):
        module.register_synops_hooks(net)
        net(x)
    ours, theirs = (n.hook_data["total_synops_per_timestep"] for n in (ours_net, theirs_net))
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)
    params = lambda net: [m.weight for m in net if isinstance(m, nn.Conv2d)]  # noqa: E731
    for g, e in zip(torch.autograd.grad(ours, params(ours_net)),
                    torch.autograd.grad(theirs, params(theirs_net))):
        assert_grads_close(g, e)


@pytest.mark.parametrize("counter", ["hooks", "analyzer"])
def test_synops_gradient_through_sumpool_matches_sinabs(counter):
    """SumPool2d's gradient is zero at the steps where a window sums to zero, which counts
    summed over time cannot reproduce: its output is summed as a tensor, as sinabs does."""
    torch.manual_seed(0)
    ours_net = _sumpool_network(sl, B)
    theirs_net = _sinabs_twin(ours_net, _sumpool_network, B)
    x = (torch.rand(B, T, 1, 28, 28) < 0.3).float()
    totals = []
    for net, library in ((ours_net, sinabs_fast), (theirs_net, sinabs)):
        if counter == "hooks":
            library.hooks.register_synops_hooks(net)
            net(x)
            totals.append(net.hook_data["total_synops_per_timestep"])
        else:
            analyzer = library.SNNAnalyzer(net)
            net(x)
            totals.append(analyzer.get_model_statistics()["synops"])
    torch.testing.assert_close(totals[0], totals[1], rtol=1e-6, atol=0)
    params = lambda net: [m.weight for m in net if isinstance(m, nn.Conv2d)]  # noqa: E731
    for g, e in zip(torch.autograd.grad(totals[0], params(ours_net)),
                    torch.autograd.grad(totals[1], params(theirs_net))):
        assert e.abs().sum() > 0
        assert_grads_close(g, e)


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, dilation=2, groups=2),
    dict(kernel_size=3, padding="same"), dict(kernel_size=(3, 1), stride=(1, 2), padding=2),
])
def test_connection_map_and_input_diff_match_sinabs(kwargs):
    conv = nn.Conv2d(4, 6, **kwargs)
    x = torch.rand(3, 4, 9, 8)
    out_shape = conv(x).shape[1:]
    torch.manual_seed(7)
    ours = hooks.conv_connection_map(conv, x.shape[1:], out_shape)
    drawn_after_ours = torch.rand(4)
    if kwargs.get("padding") != "same":  # sinabs' ConvTranspose2d takes no string padding
        torch.manual_seed(7)
        assert torch.equal(ours, sinabs.hooks.conv_connection_map(conv, x.shape[1:], out_shape))
        # The same random numbers consumed (sinabs initialises a ConvTranspose2d).
        assert torch.equal(drawn_after_ours, torch.rand(4))
    # The map counts each input element's outgoing connections: the input gradient of
    # conv(x).sum() with all-ones weights.
    ones = nn.Conv2d(4, 6, bias=False, **kwargs)
    ones.weight.data.fill_(1)
    probe = torch.zeros(1, 4, 9, 8, requires_grad=True)
    ones(probe).sum().backward()
    assert torch.equal(ours, probe.grad)
    if "dilation" not in kwargs:  # sinabs' input_diff_hook ignores dilation
        for module in (hooks, sinabs.hooks):
            conv.register_forward_hook(module.input_diff_hook)
        conv(x)
        reference = nn.functional.conv2d(x, conv.weight.abs(), stride=conv.stride,
                                         padding=conv.padding) - conv(x).abs()
        torch.testing.assert_close(conv.hook_data["diff_output"], reference)


# ------------------------------------------------------------------------ all_reduce (gloo)


def _all_reduce_worker(rank, world, store, results):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    snn, x = _seed_setup(batch=4, steps=6)
    half = seed_network(sl, 2)
    half.load_state_dict(snn.state_dict(), strict=False)
    legacy, analyzer = sinabs_fast.SNNSynOpCounter(half), sinabs_fast.SNNAnalyzer(half)
    hooks.register_synops_hooks(half)
    half(x[2 * rank: 2 * rank + 2])
    legacy.all_reduce()
    analyzer.all_reduce()
    hooks.all_reduce_synops(half)
    total = legacy.get_total_synops()
    model = analyzer.get_model_statistics()
    loss = model["synops"] + 1e-3 * total
    loss.backward()
    grads = [m.weight.grad for m in half if isinstance(m, nn.Conv2d)]
    for grad in grads:  # what DistributedDataParallel does with the gradients
        dist.all_reduce(grad)
        grad /= world
    torch.save({
        "total": total.detach(), "table": legacy.get_synops().to_dict(),
        "synops": model["synops"].detach(), "firing_rate": model["firing_rate"].detach(),
        "layers": {k: v["synops"].detach()
                   for k, v in analyzer.get_layer_statistics()["parameter"].items()},
        "grads": grads,
        "hooks_total": torch.as_tensor(half.hook_data["total_synops_per_timestep"]).detach(),
    }, os.path.join(results, f"{rank}.pt"))
    dist.barrier()  # no rank tears the group down while another still uses it
    dist.destroy_process_group()


def test_all_reduce_gives_the_global_batch_counts(tmp_path):
    torch.multiprocessing.spawn(_all_reduce_worker, args=(2, str(tmp_path / "store"), str(tmp_path)),
                                nprocs=2, join=True)
    snn, x = _seed_setup(batch=4, steps=6)
    legacy, analyzer = sinabs_fast.SNNSynOpCounter(snn), sinabs_fast.SNNAnalyzer(snn)
    hooks.register_synops_hooks(snn)
    snn(x)
    total = legacy.get_total_synops()
    model = analyzer.get_model_statistics()
    (model["synops"] + 1e-3 * total).backward()
    for rank in range(2):
        got = torch.load(tmp_path / f"{rank}.pt")
        torch.testing.assert_close(
            got["hooks_total"], torch.as_tensor(snn.hook_data["total_synops_per_timestep"]).detach(),
            rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(got["total"], total.detach(), rtol=1e-6, atol=0)
        assert got["table"] == legacy.get_synops().to_dict()
        torch.testing.assert_close(got["synops"], model["synops"].detach(), rtol=1e-6, atol=0)
        torch.testing.assert_close(got["firing_rate"], model["firing_rate"].detach())
        for name, stats in analyzer.get_layer_statistics()["parameter"].items():
            torch.testing.assert_close(got["layers"][name], stats["synops"].detach(), rtol=1e-6,
                                       atol=1e-6)
        convs = [m.weight.grad for m in snn if isinstance(m, nn.Conv2d)]
        for g, e in zip(got["grads"], convs):
            assert_grads_close(g, e)


def test_all_reduce_needs_a_process_group():
    snn, x = _seed_setup()
    counter = sinabs_fast.SNNSynOpCounter(snn)
    snn(x)
    with pytest.raises(RuntimeError, match="process group"):
        counter.all_reduce()


def test_hooks_all_reduce_needs_collected_synops():
    snn, _ = _seed_setup()
    with pytest.raises(RuntimeError, match="register_synops_hooks"):
        hooks.all_reduce_synops(snn)
