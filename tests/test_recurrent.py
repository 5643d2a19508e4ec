"""LIFRecurrent / IAFRecurrent against sinabs 3.1.3: spikes, states and recordings (including
sinabs' step-shifted recording quirk) bit-identical over consecutive calls; input gradients
within rtol 1e-5, recurrent-weight and tau/alpha gradients within rtol 1e-4."""

import copy
import itertools

import numpy as np
import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.activation as sa
import sinabs.layers as sl
import torch
import torch.nn as nn

import sinabs_fast.activation as fa
from conftest import assert_grads_close
from sinabs_fast.layers.functional import lif_recurrent
from sinabs_fast.layers.iaf import IAFRecurrent
from sinabs_fast.layers.lif import LIFRecurrent
from sinabs_pairs import HalfSpike, run_calls

SPIKES = {"multi": (fa.MultiSpike, sa.MultiSpike), "single": (fa.SingleSpike, sa.SingleSpike)}


def rec_pair(n, scale=0.3):
    """Two Flatten + Linear(n, n) modules with the same weights."""
    ours = nn.Sequential(nn.Flatten(), nn.Linear(n, n))
    with torch.no_grad():
        ours[1].weight.mul_(scale * 3)
    theirs = nn.Sequential(nn.Flatten(), nn.Linear(n, n))
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def run_pair(make, inputs, loss_on_recordings=True):
    """make(rec_ours, rec_theirs) -> (ours, theirs). Runs the calls, compares everything."""
    n = int(np.prod(inputs[0].shape[2:]))
    rec_ours, rec_theirs = rec_pair(n)
    ours, theirs = make(rec_ours, rec_theirs)
    run_calls(ours, theirs, inputs, loss_on_recordings)
    assert (ours.i_syn is None) == (theirs.i_syn is None)
    assert_grads_close(rec_ours[1].weight.grad, rec_theirs[1].weight.grad, rtol=1e-4)
    assert_grads_close(rec_ours[1].bias.grad, rec_theirs[1].bias.grad, rtol=1e-4)
    for name, param in theirs.named_parameters():
        if param.grad is not None and not name.startswith("rec_connect"):
            assert_grads_close(dict(ours.named_parameters())[name].grad, param.grad, rtol=1e-4)
    return ours, theirs


def inputs_for(shape, calls=3, scale=1.5, dtype=torch.float32):
    return [(torch.rand(shape) * scale - 0.2 * scale).to(dtype) for _ in range(calls)]


@pytest.mark.parametrize("syn,min_v,spike,norm_input,train_alphas,record", list(itertools.product(
    [None, 5.0], [None, -0.5], SPIKES, [True, False], [False, True], [False, True])))
def test_lif_recurrent_matrix(syn, min_v, spike, norm_input, train_alphas, record):
    def make(rec_ours, rec_theirs):
        kw = dict(tau_mem=8.0, tau_syn=syn, min_v_mem=min_v, norm_input=norm_input,
                  train_alphas=train_alphas, record_states=record)
        return (LIFRecurrent(rec_connect=rec_ours, spike_fn=SPIKES[spike][0], **kw),
                sl.LIFRecurrent(rec_connect=rec_theirs, spike_fn=SPIKES[spike][1], **kw))
    run_pair(make, inputs_for((3, 10, 6), scale=3.0 if norm_input else 1.5))


@pytest.mark.parametrize("syn,min_v,spike,record", list(itertools.product(
    [None, 4.0], [None, -0.5], SPIKES, [False, True])))
def test_iaf_recurrent_matrix(syn, min_v, spike, record):
    def make(rec_ours, rec_theirs):
        kw = dict(tau_syn=syn, min_v_mem=min_v, record_states=record)
        return (IAFRecurrent(rec_ours, spike_fn=SPIKES[spike][0], **kw),
                sl.IAFRecurrent(rec_theirs, spike_fn=SPIKES[spike][1], **kw))
    run_pair(make, inputs_for((2, 9, 5)))


@pytest.mark.parametrize("reset", ["reset", "subtract0.5"])
@pytest.mark.parametrize("surrogate", ["gaussian", "callable"])
def test_resets_and_surrogates(reset, surrogate):
    def custom(v, thr):
        return 1.0 / (1.0 + (v - thr).abs() * 3) ** 2

    resets = {"reset": (fa.MembraneReset(0.1), sa.MembraneReset(0.1)),
              "subtract0.5": (fa.MembraneSubtract(0.5), sa.MembraneSubtract(0.5))}[reset]
    surrogates = {"gaussian": (fa.Gaussian(), sa.Gaussian()), "callable": (custom, custom)}
    surr = surrogates[surrogate]

    def make(rec_ours, rec_theirs):
        kw = dict(tau_mem=6.0, tau_syn=3.0, record_states=True)
        return (LIFRecurrent(rec_connect=rec_ours, reset_fn=resets[0], surrogate_grad_fn=surr[0],
                             **kw),
                sl.LIFRecurrent(rec_connect=rec_theirs, reset_fn=resets[1],
                                surrogate_grad_fn=surr[1], **kw))
    run_pair(make, inputs_for((2, 8, 4), scale=3.0))


@pytest.mark.parametrize("trailing", [(5,), (2, 3)])
def test_trailing_shapes(trailing):
    def make(rec_ours, rec_theirs):
        return (LIFRecurrent(10.0, rec_ours, tau_syn=3.0, record_states=True),
                sl.LIFRecurrent(10.0, rec_theirs, tau_syn=3.0, record_states=True))
    run_pair(make, inputs_for((2, 7, *trailing), scale=4.0))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_dtypes(dtype):
    # float64 input promotes the states in the first step (reference step, then fused).
    def make(rec_ours, rec_theirs):
        return (IAFRecurrent(rec_ours, tau_syn=3.0, record_states=True),
                sl.IAFRecurrent(rec_theirs, tau_syn=3.0, record_states=True))
    ours, theirs = run_pair(make, inputs_for((2, 6, 4), dtype=dtype))
    assert ours.v_mem.dtype == theirs.v_mem.dtype


def test_custom_spike_function_falls_back_to_reference():
    # HalfSpike is not a built-in: each step runs on the reference.
    def make(rec_ours, rec_theirs):
        return (LIFRecurrent(5.0, rec_ours, spike_fn=HalfSpike, record_states=True),
                sl.LIFRecurrent(5.0, rec_theirs, spike_fn=HalfSpike, record_states=True))
    run_pair(make, inputs_for((2, 6, 3), scale=3.0))


def test_recording_quirk_is_reproduced():
    """sinabs records step t + 1's pre-reset membrane (and current) in slot t; last slot true."""
    torch.manual_seed(1)
    rec = nn.Sequential(nn.Flatten(), nn.Linear(4, 4))
    layer = LIFRecurrent(5.0, rec, tau_syn=3.0, min_v_mem=-0.2, record_states=True)
    x = torch.rand(2, 12, 4) * 6
    out = layer(x)
    assert out.sum() > 0
    v_rec, i_rec = layer.recordings["v_mem"], layer.recordings["i_syn"]
    # Recompute step by step with the documented update.
    a, b = torch.exp(-1 / torch.tensor(5.0)), torch.exp(-1 / torch.tensor(3.0))
    v, i, r = torch.zeros(2, 4), torch.zeros(2, 4), torch.zeros(2, 4)
    v_hat, i_seq = [], []
    with torch.no_grad():
        for t in range(12):
            i = b * (i + (x[:, t] + r))
            v = a * v + (1 - a) * i
            v_hat.append(v)
            i_seq.append(i)
            s = (v > 0) * torch.div(v, 1.0, rounding_mode="trunc")
            v = v - s * 1.0
            v = torch.nn.functional.relu(v - (-0.2)) + (-0.2)
            r = rec(s.float())
    for t in range(11):
        assert torch.equal(v_rec[:, t], v_hat[t + 1])
        assert torch.equal(i_rec[:, t], i_seq[t + 1])
    assert torch.equal(v_rec[:, -1], layer.v_mem) and torch.equal(i_rec[:, -1], layer.i_syn)
    # The recorded (pre-reset) membrane exceeds the threshold where the next step spiked.
    assert (v_rec[:, :-1][out[:, 1:] > 0] >= 1).all()


def test_sinabs_exact_spike_count():
    """sinabs' test_lif_recurrent_basic: constant input + all-to-all weights give B*(T-2)*20."""
    batch_size, time_steps = 10, 100
    tau_mem = torch.tensor(30.0)
    alpha = torch.exp(-1 / tau_mem)
    n = 20
    x = torch.ones(batch_size, time_steps, 2, 10) * 0.5 / (1 - alpha)
    rec = nn.Sequential(nn.Flatten(), nn.Linear(n, n, bias=False))
    rec[1].weight = nn.Parameter(torch.ones(n, n) / n * 0.5 / (1 - alpha))
    layer = LIFRecurrent(tau_mem=tau_mem, rec_connect=rec)
    out = layer(x)
    assert out.shape == x.shape and not out.isnan().any()
    assert out.sum() == batch_size * (time_steps - 2) * n


def test_shape_change_rezeroes():
    """Any state-shape change (batch too) re-zeroes; no RNG is consumed (unlike LIF)."""
    for make in [lambda r: LIFRecurrent(10.0, r, tau_syn=2.0), lambda r: IAFRecurrent(r)]:
        rec_ours, rec_theirs = rec_pair(4)
        ours = make(rec_ours)
        theirs = (sl.LIFRecurrent(10.0, rec_theirs, tau_syn=2.0) if isinstance(ours, LIFRecurrent)
                  and not isinstance(ours, IAFRecurrent) else sl.IAFRecurrent(rec_theirs))
        for batch in [3, 5, 5, 2]:
            x = torch.rand(batch, 6, 4) * 3
            state = torch.get_rng_state()
            ours(x)
            assert torch.equal(torch.get_rng_state(), state)
            theirs(x)
            assert torch.equal(ours(x), theirs(x))
            assert torch.equal(ours.v_mem, theirs.v_mem)
            assert ours.v_mem.shape == (batch, 4)


def test_api_matches_sinabs():
    rec = nn.Linear(3, 3)
    for ours, theirs in [
        (LIFRecurrent(12.0, rec, tau_syn=4.0, min_v_mem=-1.0),
         sl.LIFRecurrent(12.0, rec, tau_syn=4.0, min_v_mem=-1.0)),
        (LIFRecurrent(12.0, rec, train_alphas=True), sl.LIFRecurrent(12.0, rec, train_alphas=True)),
        (IAFRecurrent(rec, tau_syn=2.0), sl.IAFRecurrent(rec, tau_syn=2.0)),
        (IAFRecurrent(rec, shape=(2, 3)), sl.IAFRecurrent(rec, shape=(2, 3))),
    ]:
        assert repr(ours) == repr(theirs)
        assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
        assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
        assert ours._param_dict.keys() == theirs._param_dict.keys()
        assert ours._param_dict["rec_connect"] is rec
        for name, buf in theirs.named_buffers():
            assert getattr(ours, name).shape == buf.shape
        rebuilt = type(ours)(**ours.arg_dict)
        assert rebuilt.rec_connect is rec


def test_reset_states_and_no_grad():
    rec_ours, rec_theirs = rec_pair(5)
    ours, theirs = LIFRecurrent(8.0, rec_ours), sl.LIFRecurrent(8.0, rec_theirs)
    x = torch.rand(2, 7, 5) * 3
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    ours.reset_states()
    theirs.reset_states()
    assert ours.v_mem.abs().sum() == 0
    assert torch.equal(ours(x), theirs(x))
    ours.reset_states()  # states from a graph: detached in place, not views
    assert ours.v_mem.grad_fn is None


def test_functional_matches_sinabs_functional():
    from sinabs.layers.functional import lif_recurrent as sinabs_lif_recurrent

    rec_ours, rec_theirs = rec_pair(4)
    x = torch.rand(2, 9, 4) * 3
    kw = dict(alpha_mem=torch.tensor(0.9), alpha_syn=torch.tensor(0.7),
              spike_threshold=torch.tensor(1.0), reset_fn=sa.MembraneSubtract(),
              surrogate_grad_fn=sa.SingleExponential(), min_v_mem=None, norm_input=True,
              record_states=True)
    state = {"v_mem": torch.zeros(2, 4), "i_syn": torch.zeros(2, 4)}
    out_a, st_a, rec_a = lif_recurrent(x, state=dict(state), spike_fn=sa.MultiSpike,
                                       rec_connect=rec_ours, **kw)
    out_b, st_b, rec_b = sinabs_lif_recurrent(x, state=dict(state), spike_fn=sa.MultiSpike,
                                              rec_connect=rec_theirs, **kw)
    assert torch.equal(out_a, out_b)
    assert torch.equal(st_a["v_mem"], st_b["v_mem"]) and torch.equal(st_a["i_syn"], st_b["i_syn"])
    for name in rec_b:
        assert torch.equal(rec_a[name], rec_b[name])


# --- The fused recurrent op (a linear rec_connect) and the per-step path (anything else) -------


def test_linear_rec_connect_is_fused_and_others_are_not():
    from sinabs_fast.layers.functional.lif_recurrent import _linear_map

    assert _linear_map(nn.Linear(4, 4), (4,)) is not None
    assert _linear_map(nn.Sequential(nn.Flatten(), nn.Linear(6, 6)), (2, 3)) is not None
    assert _linear_map(nn.Linear(3, 3), (2, 3)) is None  # mixes only the last dimension
    assert _linear_map(nn.Sequential(nn.Linear(4, 4), nn.Tanh()), (4,)) is None
    hooked = nn.Linear(4, 4)
    hooked.register_forward_hook(lambda *args: None)
    assert _linear_map(hooked, (4,)) is None  # the op would skip the hook


@pytest.mark.parametrize("rec", ["no_bias", "bare_linear", "tanh", "hooked"])
@pytest.mark.parametrize("syn", [None, 3.0])
def test_rec_connect_kinds(rec, syn):
    """The fused op (linear maps, with or without bias) and the per-step path (a non-linear or
    hooked rec_connect) both match sinabs, gradients of the recurrent weights included."""
    n = 5
    base = nn.Linear(n, n, bias=rec != "no_bias")
    with torch.no_grad():
        base.weight.mul_(2.0)
    modules = {"no_bias": lambda m: nn.Sequential(nn.Flatten(), m), "bare_linear": lambda m: m,
               "tanh": lambda m: nn.Sequential(m, nn.Tanh()), "hooked": lambda m: m}
    rec_ours = modules[rec](base)
    rec_theirs = modules[rec](copy.deepcopy(base))
    if rec == "hooked":
        rec_ours.register_forward_hook(lambda module, args, out: None)
    ours = LIFRecurrent(6.0, rec_ours, tau_syn=syn, record_states=True)
    theirs = sl.LIFRecurrent(6.0, rec_theirs, tau_syn=syn, record_states=True)
    x_ours = (torch.rand(3, 9, n) * 2).requires_grad_()
    x_theirs = x_ours.detach().clone().requires_grad_()
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert torch.equal(out_ours, out_theirs)
    for name in theirs.recordings:
        assert torch.equal(ours.recordings[name], theirs.recordings[name])
    (out_ours.sum() + ours.v_mem.sum()).backward()
    (out_theirs.sum() + theirs.v_mem.sum()).backward()
    assert_grads_close(x_ours.grad, x_theirs.grad)
    for p_ours, p_theirs in zip(rec_ours.parameters(), rec_theirs.parameters()):
        assert_grads_close(p_ours.grad, p_theirs.grad, rtol=1e-4)


def test_fused_recurrent_op_opcheck():
    B, T, N = 2, 5, 4
    g = torch.Generator().manual_seed(3)
    args = (torch.rand(B, T, N, generator=g) * 2, torch.zeros(B, N), torch.zeros(B, N),
            torch.tensor(0.9), torch.tensor(0.8), True, torch.tensor(1.0), torch.tensor(1.0),
            None, torch.randn(N, N, generator=g), torch.randn(N, generator=g), 1, float("inf"), 0,
            0.0, 0, [0.5, 1.0], True)
    torch.library.opcheck(torch.ops.sinabs_fast.lif_recurrent_forward.default, args)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("firing", ["sparse", "dense"])
@pytest.mark.parametrize("batch,neurons", [(9, 70), (2, 16), (5, 130)])
def test_fused_backward_products(firing, batch, neurons, threads):
    """The fused backward's own matrix products: per step, blocks of 4 batch rows by whole
    vectors of neurons (here with remainders of both), on one thread or split by batch over
    two; the weight gradient over the nonzero spikes only (sparse firing) or by one BLAS
    product (more than a quarter of the spikes nonzero). Gradients as sinabs' autograd."""
    scale = {"sparse": 2.0, "dense": 12.0}[firing]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        def make(rec_ours, rec_theirs):
            kw = dict(tau_mem=10.0, tau_syn=4.0, record_states=True)
            return (LIFRecurrent(rec_connect=rec_ours, spike_fn=fa.SingleSpike, **kw),
                    sl.LIFRecurrent(rec_connect=rec_theirs, spike_fn=sa.SingleSpike, **kw))
        torch.manual_seed(batch * neurons)
        ours, _ = run_pair(make, inputs_for((batch, 12, neurons), calls=2, scale=scale))
    finally:
        torch.set_num_threads(previous)
    # Single spikes: the firing rate is the fraction of nonzero spikes (of the last call).
    if firing == "sparse":
        assert 0.01 < ours.firing_rate < 0.2
    else:
        assert ours.firing_rate > 0.3
