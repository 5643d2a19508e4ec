"""torch.compile(fullgraph=True) of the training job's seed network gives the eager results:
the fused ops trace (fake kernels, registered autograd) with no graph break. The aot_eager
backend keeps this test short on a 2-core CPU (inductor would compile C++ for minutes); it
traces the same graph."""

import torch
import torch.nn.functional as F

from sinabs_fast.train.models import build_model
from sinabs_fast.utils import reset_states


def test_compiled_seed_network_training_step_equals_eager():
    batch, steps = 3, 6
    torch.manual_seed(0)
    eager = build_model("seed", batch, (1, 28, 28), 10)
    torch.manual_seed(0)
    traced = build_model("seed", batch, (1, 28, 28), 10)
    for module in list(eager) + list(traced):  # enough input current that every layer spikes
        if hasattr(module, "weight"):
            module.weight.data *= 3
    x = (torch.rand(batch, steps, 1, 28, 28) < 0.4).float()
    y = torch.tensor([1, 4, 7])

    def step(network, inputs):
        out = network(inputs)
        return F.cross_entropy(out.sum(1), y), out

    compiled = torch.compile(lambda inputs: step(traced, inputs), fullgraph=True,
                             backend="aot_eager")
    reset_states(eager)
    reset_states(traced)
    loss_eager, out_eager = step(eager, x)
    loss_compiled, out_compiled = compiled(x)
    assert out_eager.sum() > 0
    assert torch.equal(out_compiled, out_eager)
    assert torch.equal(loss_compiled, loss_eager)
    loss_eager.backward()
    loss_compiled.backward()
    for a, b in zip(eager.parameters(), traced.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-7)
    for a, b in zip(eager.buffers(), traced.buffers()):
        assert torch.equal(a, b)
