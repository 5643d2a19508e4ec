"""The layers under torch.autocast (CPU, bfloat16), against sinabs under the same autocast: a
Linear -> spiking layer -> Linear model. The Linears compute in bfloat16, so the spiking layer
gets a bfloat16 input; sinabs' states stay float32 (torch's promotion), and so do ours: the
layer reads the input upcast (exactly) and computes in float32 (docs/semantics.md, section 3)."""

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.layers as sl
import torch
from torch import nn

import sinabs_fast.layers as fl
from conftest import assert_grads_close

LAYERS = {
    "IAF": (lambda: fl.IAF(), lambda: sl.IAF()),
    "LIF tau_syn": (lambda: fl.LIF(tau_mem=8.0, tau_syn=4.0, norm_input=False),
                    lambda: sl.LIF(tau_mem=8.0, tau_syn=4.0, norm_input=False)),
    "LIF norm_input": (lambda: fl.LIF(tau_mem=8.0), lambda: sl.LIF(tau_mem=8.0)),
}


def _model(neurons: nn.Module) -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(12, 16), neurons, nn.Linear(16, 4))


def _step(model: nn.Sequential, x: torch.Tensor, target: torch.Tensor):
    """One forward and backward under bfloat16 autocast; the spiking layer's input is kept with
    its gradient."""
    seen = {}
    hook = model[1].register_forward_pre_hook(
        lambda m, args: seen.update(h=args[0]) or args[0].retain_grad())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        loss = nn.functional.mse_loss(out.float().sum(1), target)
    loss.backward()
    hook.remove()
    return out, loss, seen["h"]


@pytest.mark.parametrize("kind", LAYERS)
def test_layer_under_cpu_autocast_matches_sinabs(kind):
    """Outputs, spikes and states equal to sinabs' under the same autocast, bit for bit; the
    gradient at the spiking layer's bfloat16 input equal to sinabs' to rounding, and the
    Linears' weight gradients too."""
    ours_layer, theirs_layer = LAYERS[kind]
    ours, theirs = _model(ours_layer()), _model(theirs_layer())
    torch.manual_seed(4)
    x = torch.randn(3, 10, 12) * 2
    target = torch.randn(3, 4)
    out_o, loss_o, h_o = _step(ours, x, target)
    out_t, loss_t, h_t = _step(theirs, x, target)
    assert h_o.dtype == torch.bfloat16 and out_o.dtype == torch.bfloat16
    assert torch.equal(h_o, h_t)
    assert torch.equal(out_o, out_t)
    assert torch.equal(loss_o, loss_t)
    assert ours[1].v_mem.dtype == torch.float32
    assert torch.equal(ours[1].v_mem, theirs[1].v_mem)
    assert h_o.grad.dtype == torch.bfloat16
    assert_grads_close(h_o.grad.float(), h_t.grad.float(), rtol=1e-2)
    for k in (0, 2):
        for p_o, p_t in zip(ours[k].parameters(), theirs[k].parameters()):
            assert_grads_close(p_o.grad, p_t.grad, rtol=2e-2)


def test_layer_upcasts_exactly_under_autocast():
    """Under autocast the layer computes what it computes without autocast on the bfloat16
    input's float32 copy: the same spikes and states, and the input gradient is the float32
    gradient rounded to bfloat16."""
    torch.manual_seed(5)
    h = (torch.randn(4, 20, 16) * 2).to(torch.bfloat16).requires_grad_()
    h32 = h.detach().float().requires_grad_()
    weight = torch.randn(4, 20, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer = fl.IAF(tau_syn=3.0)
        out = layer(h)
    (out * weight).sum().backward()
    plain = fl.IAF(tau_syn=3.0)
    out32 = plain(h32)
    (out32 * weight).sum().backward()
    assert torch.equal(out, out32)
    assert torch.equal(layer.v_mem, plain.v_mem)
    assert torch.equal(h.grad, h32.grad.to(torch.bfloat16))


def test_model_trains_under_cpu_autocast():
    """A few Adam steps under bfloat16 autocast lower the loss, with every gradient finite."""
    model = _model(fl.IAF())
    torch.manual_seed(6)
    x = torch.randn(8, 10, 12) * 2
    target = torch.randn(8, 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        model[1].reset_states()
        _, loss, _ = _step(model, x, target)
        assert all(torch.isfinite(p.grad).all() for k in (0, 2) for p in model[k].parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
