"""Parity with sinabs 3.1.3 where a user would otherwise notice a difference: the synops
gradient through SumPool2d, and the random numbers hooks.conv_connection_map consumes."""

import pytest
import sinabs
import sinabs.hooks
import sinabs.layers
import torch
import torch.nn as nn

import sinabs_fast
from sinabs_fast import hooks
from sinabs_fast.conversion import from_sinabs

B, T = 3, 8


def sumpool_network(layers):
    """The synops documentation's seed network with sum pooling (sinabs' synops tutorial)."""
    iaf = lambda: layers.IAFSqueeze(batch_size=B)  # noqa: E731
    return nn.Sequential(
        layers.FlattenTime(),
        nn.Conv2d(1, 8, 5, bias=False), iaf(), layers.SumPool2d(2),
        nn.Conv2d(8, 16, 5, bias=False), iaf(), layers.SumPool2d(2),
        nn.Conv2d(16, 32, 4, bias=False), iaf(),
        nn.Flatten(), nn.Linear(32, 10, bias=False), iaf(),
        layers.UnflattenTime(batch_size=B),
    )


def weights(net):
    return [m.weight for m in net.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("counter", ["hooks", "analyzer"])
def test_synops_gradient_through_sumpool_is_sinabs(counter):
    torch.manual_seed(0)
    theirs = sumpool_network(sinabs.layers)
    ours = from_sinabs(theirs)
    x = (torch.rand(B, T, 1, 28, 28) < 0.3).float()
    totals = []
    for net, library in ((ours, sinabs_fast), (theirs, sinabs)):
        if counter == "hooks":
            getattr(library, "hooks").register_synops_hooks(net)
            net(x)
            totals.append(net.hook_data["total_synops_per_timestep"])
        else:
            analyzer = library.SNNAnalyzer(net)
            net(x)
            totals.append(analyzer.get_model_statistics()["synops"])
    torch.testing.assert_close(totals[0], totals[1], rtol=1e-6, atol=0)
    for g_ours, g_theirs in zip(torch.autograd.grad(totals[0], weights(ours)),
                                torch.autograd.grad(totals[1], weights(theirs))):
        assert g_theirs.abs().sum() > 0
        torch.testing.assert_close(g_ours, g_theirs, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3), dict(kernel_size=(3, 2), groups=2)])
def test_conv_connection_map_draws_the_random_numbers_sinabs_draws(kwargs):
    conv = nn.Conv2d(4, 6, **kwargs)
    shapes = ((4, 9, 8), conv(torch.rand(1, 4, 9, 8)).shape[1:])
    torch.manual_seed(7)
    ours = hooks.conv_connection_map(conv, *shapes)
    after_ours = torch.rand(5)
    torch.manual_seed(7)
    theirs = sinabs.hooks.conv_connection_map(conv, *shapes)
    after_theirs = torch.rand(5)
    assert torch.equal(ours, theirs)
    assert torch.equal(after_ours, after_theirs)
