"""LIF and ExpLeak against sinabs 3.1.3: outputs and states bit-identical, input gradients rtol
1e-5, time-constant gradients (tau or alpha, membrane and synaptic) rtol 1e-4."""

import itertools

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.activation as sa
import sinabs.layers as sl
import torch

import sinabs_fast.activation as fa
import sinabs_fast.layers as fl
from conftest import assert_grads_close
from sinabs_fast.layers import ExpLeak, ExpLeakSqueeze

TAU_PARAMS = ("tau_mem", "tau_syn", "alpha_mem", "alpha_syn")


def run_pair(ours, theirs, inputs):
    xs_a = [x.clone().requires_grad_() for x in inputs]
    xs_b = [x.clone().requires_grad_() for x in inputs]
    loss_a, loss_b = 0, 0
    for step, (a, b) in enumerate(zip(xs_a, xs_b)):
        out_a, out_b = ours(a), theirs(b)
        assert out_a.dtype == out_b.dtype
        assert torch.equal(out_a, out_b), f"output differs in call {step}"
        for name, buf in theirs.named_buffers():
            assert torch.equal(getattr(ours, name), buf), f"state {name} differs in call {step}"
        for name, rec in theirs.recordings.items():
            assert torch.equal(ours.recordings[name], rec), f"recording {name} differs"
        weight = torch.linspace(0.5, 1.5, out_a.numel()).reshape(out_a.shape)
        loss_a = loss_a + (out_a.double() * weight).sum()
        loss_b = loss_b + (out_b.double() * weight).sum()
    loss_a.backward()
    loss_b.backward()
    for a, b in zip(xs_a, xs_b):
        assert_grads_close(a.grad, b.grad)
    for name in TAU_PARAMS:
        pa, pb = getattr(ours, name, None), getattr(theirs, name, None)
        if pb is not None and pb.grad is not None:
            assert_grads_close(pa.grad, pb.grad, rtol=1e-4)


def inputs_for(shape, calls=3, scale=3.0):
    return [torch.rand(shape) * scale - 0.2 * scale for _ in range(calls)]


@pytest.mark.parametrize("tau_syn,norm_input,train_alphas,min_v,spike", list(itertools.product(
    [None, 5.0], [True, False], [False, True], [None, -0.5], ["multi", "single"])))
def test_lif_options(tau_syn, norm_input, train_alphas, min_v, spike):
    spikes = {"multi": (fa.MultiSpike, sa.MultiSpike), "single": (fa.SingleSpike, sa.SingleSpike)}
    kw = dict(tau_mem=20.0, tau_syn=tau_syn, norm_input=norm_input, train_alphas=train_alphas,
              min_v_mem=min_v)
    run_pair(fl.LIF(**kw, spike_fn=spikes[spike][0]), sl.LIF(**kw, spike_fn=spikes[spike][1]),
             inputs_for((3, 15, 6)))


@pytest.mark.parametrize("neurons", [16384, 16387])
def test_lif_large_input_gradient(neurons):
    """An input gradient of 8 MiB and more is written with non-temporal stores (the CPU
    backward's stream_row), here with rows that start at every alignment (16387 neurons)."""
    kw = dict(tau_mem=20.0, tau_syn=5.0)
    shape = (2, 65, neurons)
    assert 4 * shape[0] * shape[1] * shape[2] >= 8 << 20
    run_pair(fl.LIF(**kw), sl.LIF(**kw), inputs_for(shape, calls=1))


@pytest.mark.parametrize("train_alphas", [False, True])
def test_lif_per_neuron_time_constants(train_alphas):
    tau_mem = torch.rand(2, 1, 7) * 20 + 2
    tau_syn = torch.rand(7) * 5 + 1
    kw = dict(tau_mem=tau_mem, tau_syn=tau_syn, train_alphas=train_alphas)
    run_pair(fl.LIF(**kw), sl.LIF(**kw), inputs_for((4, 10, 2, 3, 7)))


def test_lif_record_states_and_squeeze():
    kw = dict(tau_mem=10.0, tau_syn=3.0, record_states=True, min_v_mem=-1.0)
    run_pair(fl.LIF(**kw), sl.LIF(**kw), inputs_for((2, 8, 4)))
    run_pair(fl.LIFSqueeze(batch_size=2, **kw), sl.LIFSqueeze(batch_size=2, **kw),
             [torch.rand(16, 4) * 3 for _ in range(2)])


@pytest.mark.parametrize("norm_input,min_v,train_alphas", list(itertools.product(
    [False, True], [None, -0.5], [False, True])))
def test_exp_leak(norm_input, min_v, train_alphas):
    kw = dict(tau_mem=8.0, norm_input=norm_input, min_v_mem=min_v, train_alphas=train_alphas,
              record_states=True)
    run_pair(ExpLeak(**kw), sl.ExpLeak(**kw), inputs_for((3, 12, 5)))
    run_pair(ExpLeakSqueeze(num_timesteps=4, **kw), sl.ExpLeakSqueeze(num_timesteps=4, **kw),
             [torch.randn(8, 5) for _ in range(2)])


def test_exp_leak_outputs_pre_clamp_membrane():
    layer = ExpLeak(10, min_v_mem=-0.5)
    out = layer(-torch.ones(1, 3, 1))
    reference = sl.ExpLeak(10, min_v_mem=-0.5)(-torch.ones(1, 3, 1))
    assert torch.equal(out, reference) and layer.v_mem.item() == -0.5


def test_lif_single_input_spikes_exactly_once():
    # sinabs' own property: x0 = 1 / (1 - alpha) gives exactly one spike per neuron, at t = 0.
    tau = torch.tensor(30.0)
    alpha = torch.exp(-1 / tau)
    x = torch.zeros(4, 20, 3)
    x[:, 0] = 1 / (1 - alpha)
    out = fl.LIF(tau_mem=tau)(x)
    assert out.sum() == 4 * 3 and torch.equal(out[:, 0], torch.ones(4, 3))


def test_exp_leak_impulse_response_sums_to_one():
    layer = ExpLeak(tau_mem=10.0, norm_input=True)
    x = torch.zeros(1, 300, 1)
    x[:, 0] = 1.0
    assert layer(x).sum().item() == pytest.approx(1.0, abs=5e-5)
