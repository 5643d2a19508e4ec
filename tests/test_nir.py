"""sinabs_fast.nir: to_nir / from_nir round trips give identical outputs, and graphs exported by
sinabs 3.1.3 (sinabs.nir.to_nir) import and run as sinabs' own from_nir runs them."""

import warnings

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")
nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")

import numpy as np  # noqa: E402
import sinabs.layers as sl  # noqa: E402
import sinabs.nir  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

import sinabs_fast  # noqa: E402
import sinabs_fast.activation as fa  # noqa: E402
import sinabs_fast.layers as fl  # noqa: E402
from sinabs_fast.demo import seed_network  # noqa: E402
from sinabs_fast.nir import from_nir, to_nir  # noqa: E402

B, T = 2, 6


def louder(net: nn.Module, factor: float) -> nn.Module:
    """Scales the weights so that every spiking layer gets enough input current to spike."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.mul_(factor)
    return net


def spiking_seed_network() -> nn.Sequential:
    return louder(seed_network(fl, B), 6.0)


def mixed_network() -> nn.Sequential:
    """The other node kinds, and settings NIR cannot express (kept in the metadata)."""
    return louder(nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), fl.IAFSqueeze(batch_size=B, spike_fn=fa.MaxSpike(2),
                                                     reset_fn=fa.MembraneReset()),
        fl.SumPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 8),
        fl.LIFSqueeze(tau_mem=torch.linspace(5, 20, 8), tau_syn=4.0, batch_size=B,
                      min_v_mem=-0.5, spike_threshold=0.8),
        nn.Linear(8, 6, bias=False), fl.LIFSqueeze(tau_mem=8.0, batch_size=B,
                                                   spike_fn=fa.SingleSpike),
        nn.Linear(6, 3), fl.ExpLeakSqueeze(tau_mem=5.0, batch_size=B, norm_input=True),
    ), 4.0)


def run(model, x):
    out = model(x)
    return out[0] if isinstance(out, tuple) else out


def test_seed_network_round_trip_is_identical():
    net = spiking_seed_network()
    x = (torch.rand(B, T, 1, 28, 28) < 0.3).float()
    graph = to_nir(net, x)  # the (batch, time, ...) input of the seed network
    kinds = [type(graph.nodes[k]).__name__ for k in graph.nodes]
    assert kinds.count("IF") == 4 and kinds.count("AvgPool2d") == 2 and "Flatten" in kinds
    assert list(graph.nodes["input"].input_type["input"]) == [1, 28, 28]
    assert list(graph.nodes["output"].output_type["output"]) == [10]
    assert ("input", "1") in graph.edges and ("11", "output") in graph.edges
    imported = from_nir(graph, batch_size=B)
    sinabs_fast.reset_states(net)
    expected = net(x).flatten(0, 1)
    assert expected.sum() > 0
    for _ in range(2):  # and with the states carried on
        assert torch.equal(run(imported, x.flatten(0, 1)), expected)
        expected = net(x).flatten(0, 1)


def test_round_trip_through_a_file_keeps_settings_and_outputs(tmp_path):
    net = mixed_network()
    x = (torch.rand(B * T, 1, 8, 8) < 0.5).float() * 3
    graph = to_nir(net, x)
    kinds = {k: type(v).__name__ for k, v in graph.nodes.items()}
    assert [kinds[k] for k in "1 2 5 7 9".split()] == ["IF", "SumPool2d", "CubaLIF", "LIF", "LI"]
    path = tmp_path / "model.nir"
    nir.write(path, graph)
    imported = from_nir(str(path), num_timesteps=T, return_state=False)
    modules = dict(imported.named_modules())
    assert modules["1"].spike_fn == fa.MaxSpike(2)
    assert type(modules["1"].reset_fn) is fa.MembraneReset
    assert modules["1"].min_v_mem is None and float(modules["5"].min_v_mem) == -0.5
    assert modules["7"].spike_fn is fa.SingleSpike and modules["9"].norm_input
    assert modules["6"].bias is None and modules["4"].bias is not None
    sinabs_fast.reset_states(net)
    expected = net(x)
    assert all(m.spike_counts.sum() > 0 for m in (net[1], net[5], net[7]))
    assert torch.equal(imported(x), expected)


def sinabs_network() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), sl.IAFSqueeze(batch_size=B), sl.SumPool2d(2), nn.Flatten(),
        nn.Linear(4 * 3 * 3, 5), sl.LIFSqueeze(tau_mem=10.0, batch_size=B),
        nn.Linear(5, 3), sl.ExpLeakSqueeze(tau_mem=5.0, batch_size=B),
    )


def test_a_graph_exported_by_sinabs_imports_as_in_sinabs():
    net = sinabs_network()
    with torch.no_grad():
        net[0].weight.mul_(4.0)
    x = (torch.rand(B * T, 1, 8, 8) < 0.5).float() * 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = sinabs.nir.to_nir(net, x)
        theirs = sinabs.nir.from_nir(graph, batch_size=B)
    ours = from_nir(graph, batch_size=B)
    assert isinstance(dict(ours.named_modules())["1"], fl.IAFSqueeze)
    assert float(dict(ours.named_modules())["1"].min_v_mem.flatten()[0]) == -1.0
    expected = run(theirs, x)
    assert expected.abs().sum() > 0
    assert torch.equal(run(ours, x), expected)


def test_sinabs_reads_our_graph():
    net = mixed_network()[:6]  # the node kinds sinabs' from_nir knows (not CubaLIF)
    net[5] = fl.LIFSqueeze(tau_mem=10.0, batch_size=B)
    x = (torch.rand(B * T, 1, 8, 8) < 0.5).float() * 3
    graph = to_nir(net, x)
    for node in graph.nodes.values():
        if getattr(node, "metadata", None):
            node.metadata.clear()  # as another tool would see it: NIR's values only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = sinabs.nir.from_nir(graph, batch_size=B)
    expected = run(theirs, x)
    assert expected.sum() > 0
    assert torch.equal(run(from_nir(graph, batch_size=B), x), expected)


def test_unsupported_modules_and_nodes_raise():
    with pytest.raises(NotImplementedError, match="ALIF"):
        to_nir(nn.Sequential(nn.Linear(2, 2), fl.ALIF(tau_mem=5.0, tau_adapt=10.0)),
               torch.rand(1, 3, 2))
    with pytest.raises(TypeError, match="sample_input"):
        to_nir(nn.Sequential(nn.Linear(2, 2)), [1.0, 2.0])
    graph = nir.NIRGraph({"input": nir.Input(np.array([2])), "d": nir.Delay(np.ones(2)),
                          "output": nir.Output(np.array([2]))},
                         [("input", "d"), ("d", "output")])
    with pytest.raises(NotImplementedError, match="Delay"):
        from_nir(graph, batch_size=1)


def test_package_level_functions():
    assert sinabs_fast.to_nir is to_nir and sinabs_fast.from_nir is from_nir
