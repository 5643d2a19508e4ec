"""(ours, sinabs') pairs of the activation objects the equivalence tests run over, and the
checks those tests make on each pair of layers."""

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.activation as sa  # noqa: E402  (after the importorskip)
import torch  # noqa: E402
from conftest import assert_grads_close  # noqa: E402

import sinabs_fast.activation as fa  # noqa: E402

SPIKES = {
    "multi": (fa.MultiSpike, sa.MultiSpike),
    "single": (fa.SingleSpike, sa.SingleSpike),
    "max2": (fa.MaxSpike(2), sa.MaxSpike(2)),
}
RESETS = {
    "subtract": (fa.MembraneSubtract(), sa.MembraneSubtract()),
    "subtract0.5": (fa.MembraneSubtract(subtract_value=0.5), sa.MembraneSubtract(0.5)),
    "reset": (fa.MembraneReset(), sa.MembraneReset()),
    "reset0.1": (fa.MembraneReset(0.1), sa.MembraneReset(0.1)),
}
SURROGATES = {
    "single_exp": (fa.SingleExponential(), sa.SingleExponential()),
    "single_exp_wide": (fa.SingleExponential(1.5, 0.3), sa.SingleExponential(1.5, 0.3)),
    "periodic": (fa.PeriodicExponential(0.4, 2.0), sa.PeriodicExponential(0.4, 2.0)),
    "heaviside": (fa.Heaviside(0.5), sa.Heaviside(0.5)),
    "gaussian": (fa.Gaussian(0.1, 0.4, 1.5), sa.Gaussian(0.1, 0.4, 1.5)),
    "multi_gaussian": (fa.MultiGaussian(), sa.MultiGaussian()),
}


class HalfSpike(sa.SingleSpike):
    """A spike function sinabs_fast has no kernel for (half a spike at the threshold), usable
    by both libraries."""

    @staticmethod
    def forward(ctx, v_mem, spike_threshold, surrogate_grad_fn):
        ctx.save_for_backward(v_mem.clone())
        ctx.spike_threshold = spike_threshold
        ctx.surrogate_grad_fn = surrogate_grad_fn
        return 0.5 * (v_mem - spike_threshold >= 0).float()


def assert_same_call(ours, theirs, out_a, out_b, call: int) -> None:
    """After one call of a sinabs_fast layer and of its sinabs twin: the same output (dtype,
    shape, values), states (dtype, values), recordings and firing rate."""
    assert out_a.dtype == out_b.dtype and out_a.shape == out_b.shape
    assert torch.equal(out_a, out_b), f"spikes differ in call {call}"
    for name, buf in theirs.named_buffers():
        mine = getattr(ours, name)
        assert mine.dtype == buf.dtype and torch.equal(mine, buf), \
            f"state {name} differs in call {call}"
    assert ours.recordings.keys() == theirs.recordings.keys()
    for name, rec in theirs.recordings.items():
        assert torch.equal(ours.recordings[name], rec), f"recording {name} differs in call {call}"
    assert torch.equal(ours.firing_rate, theirs.firing_rate)


def weighted_sum(output: torch.Tensor) -> torch.Tensor:
    """A loss that weighs every output element differently (0.5 to 1.5), in float64, so the
    gradients compared are not all alike."""
    weight = torch.linspace(0.5, 1.5, output.numel()).reshape(output.shape)
    return (output.double() * weight).sum()


def run_calls(ours, theirs, inputs, loss_on_recordings: bool = True) -> None:
    """Runs ``inputs`` through both layers call after call (states carried), checks every call
    with :func:`assert_same_call`, then backpropagates each layer's loss (the weighted sum of
    every output, plus 0.3 times every recording's sum) and compares the inputs' gradients."""
    xs_ours = [x.clone().requires_grad_() for x in inputs]
    xs_theirs = [x.clone().requires_grad_() for x in inputs]
    loss_ours, loss_theirs = 0, 0
    for call, (a, b) in enumerate(zip(xs_ours, xs_theirs)):
        out_a, out_b = ours(a), theirs(b)
        assert_same_call(ours, theirs, out_a, out_b, call)
        loss_ours = loss_ours + weighted_sum(out_a)
        loss_theirs = loss_theirs + weighted_sum(out_b)
        if loss_on_recordings:
            loss_ours = loss_ours + sum(0.3 * r.double().sum() for r in ours.recordings.values())
            loss_theirs = loss_theirs + sum(
                0.3 * r.double().sum() for r in theirs.recordings.values())
    loss_ours.backward()
    loss_theirs.backward()
    for a, b in zip(xs_ours, xs_theirs):
        assert_grads_close(a.grad, b.grad)
