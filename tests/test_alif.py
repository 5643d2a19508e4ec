"""sinabs_fast's ALIF layers against sinabs 3.1.3: spikes, states and recordings bit-identical
(torch.equal), input gradients within rtol 1e-5, alpha/tau and rec_connect gradients within
rtol 1e-4, over a matrix of options, consecutive calls and shape changes; plus the op itself
(opcheck, gradcheck) and the quirks sinabs_fast fixes."""

import copy
import itertools

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.activation as sa
import sinabs.layers as sl
import sinabs.layers.alif as sinabs_alif
import torch

import sinabs_fast.activation as fa
import sinabs_fast.layers as fl
from sinabs_fast import reference
from sinabs_fast.neuron_params import ALIFParams
from conftest import assert_grads_close
from named_args import assert_rejected
from sinabs_pairs import RESETS, SPIKES, SURROGATES, assert_same_call, weighted_sum

KINDS = {
    "ALIF": (fl.ALIF, sl.ALIF),
    "ALIFRecurrent": (fl.ALIFRecurrent, sl.ALIFRecurrent),
    "ALIFSqueeze": (fl.ALIFSqueeze, sinabs_alif.ALIFSqueeze),  # not exported by sinabs.layers
}


def build(kind, ours_kwargs, theirs_kwargs, neurons=None):
    ours_cls, theirs_cls = KINDS[kind]
    if kind == "ALIFRecurrent":
        rec = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(neurons, neurons))
        ours_kwargs = dict(ours_kwargs, rec_connect=rec)
        theirs_kwargs = dict(theirs_kwargs, rec_connect=copy.deepcopy(rec))
    return ours_cls(**ours_kwargs), theirs_cls(**theirs_kwargs)


def run_pair(kind, ours_kwargs, theirs_kwargs, inputs, record=True):
    """The same input sequence through both layers (states carried between calls): outputs,
    every state, recordings and firing rates equal; gradients of a loss over all of them
    (through the carried states) close."""
    ours_kwargs = dict(ours_kwargs, tau_mem=ours_kwargs.get("tau_mem", 8.0),
                       tau_adapt=ours_kwargs.get("tau_adapt", 15.0), record_states=record)
    theirs_kwargs = dict(theirs_kwargs, tau_mem=theirs_kwargs.get("tau_mem", 8.0),
                         tau_adapt=theirs_kwargs.get("tau_adapt", 15.0), record_states=record)
    if kind == "ALIFSqueeze":
        ours_kwargs["batch_size"] = theirs_kwargs["batch_size"] = inputs[0].shape[0]
    neurons = inputs[0][0, 0].numel()
    ours, theirs = build(kind, ours_kwargs, theirs_kwargs, neurons)
    xs_ours = [x.clone().requires_grad_() for x in inputs]
    xs_theirs = [x.clone().requires_grad_() for x in inputs]
    loss_ours, loss_theirs = 0, 0
    for call, (a, b) in enumerate(zip(xs_ours, xs_theirs)):
        if kind == "ALIFSqueeze":
            out_a, out_b = ours(a.flatten(0, 1)), theirs(b.flatten(0, 1))
        else:
            out_a, out_b = ours(a), theirs(b)
        assert_same_call(ours, theirs, out_a, out_b, call)
        loss_ours = loss_ours + weighted_sum(out_a) + ours.v_mem.double().sum()
        loss_theirs = loss_theirs + weighted_sum(out_b) + theirs.v_mem.double().sum()
        loss_ours = loss_ours + 0.2 * ours.spike_threshold.double().sum()
        loss_theirs = loss_theirs + 0.2 * theirs.spike_threshold.double().sum()
        for name in ours.recordings:
            loss_ours = loss_ours + 0.3 * ours.recordings[name].double().sum()
            loss_theirs = loss_theirs + 0.3 * theirs.recordings[name].double().sum()
    loss_ours.backward()
    loss_theirs.backward()
    for a, b in zip(xs_ours, xs_theirs):
        assert_grads_close(a.grad, b.grad)
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        if theirs_params[name].grad is not None:
            assert_grads_close(param.grad, theirs_params[name].grad, rtol=1e-4)
    return ours, theirs


def inputs_for(shape, calls=2, dtype=torch.float32, scale=3.0):
    return [(torch.rand(shape) * scale - 0.2 * scale).to(dtype) for _ in range(calls)]


@pytest.mark.parametrize("spike,reset,syn,norm,min_v", list(itertools.product(
    SPIKES, RESETS, [None, 5.0], [True, False], [None, -0.5])))
def test_options_matrix(spike, reset, syn, norm, min_v):
    kw = dict(tau_syn=syn, norm_input=norm, min_v_mem=min_v)
    run_pair("ALIF", dict(kw, spike_fn=SPIKES[spike][0], reset_fn=RESETS[reset][0]),
             dict(kw, spike_fn=SPIKES[spike][1], reset_fn=RESETS[reset][1]),
             inputs_for((3, 16, 5)))


@pytest.mark.parametrize("kind", ["ALIFRecurrent", "ALIFSqueeze"])
@pytest.mark.parametrize("spike,reset,syn", list(itertools.product(
    ["single", "multi"], ["subtract", "reset0.1"], [None, 4.0])))
def test_recurrent_and_squeeze(kind, spike, reset, syn):
    kw = dict(tau_syn=syn, min_v_mem=-1.0)
    run_pair(kind, dict(kw, spike_fn=SPIKES[spike][0], reset_fn=RESETS[reset][0]),
             dict(kw, spike_fn=SPIKES[spike][1], reset_fn=RESETS[reset][1]),
             inputs_for((2, 12, 3, 2)))


@pytest.mark.parametrize("surrogate", SURROGATES)
def test_surrogates(surrogate):
    run_pair("ALIF", dict(surrogate_grad_fn=SURROGATES[surrogate][0], tau_syn=3.0),
             dict(surrogate_grad_fn=SURROGATES[surrogate][1], tau_syn=3.0),
             inputs_for((2, 20, 6)))


@pytest.mark.parametrize("syn", [None, 4.0])
def test_train_alphas(syn):
    # alpha_mem, alpha_adapt (and alpha_syn) are the parameters; their gradients come from the
    # fused backward's float64 sums.
    ours, theirs = run_pair("ALIF", dict(train_alphas=True, tau_syn=syn),
                            dict(train_alphas=True, tau_syn=syn), inputs_for((3, 25, 4)))
    assert ours.alpha_adapt.grad is not None and ours.alpha_adapt.grad.abs() > 0


@pytest.mark.parametrize("norm", [True, False])
def test_loss_on_the_current_alone_leaves_other_gradients_none(norm):
    # A loss that reads only the recorded synaptic current: the parameters it does not depend
    # on get a None gradient, as in sinabs (weight decay then leaves them alone), and the rest
    # match sinabs' gradients.
    kwargs = dict(tau_mem=8.0, tau_adapt=15.0, tau_syn=5.0, norm_input=norm, record_states=True)
    ours, theirs = fl.ALIF(**kwargs), sl.ALIF(**kwargs)
    x = inputs_for((3, 20, 4), calls=1)[0]
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours(x_ours)
    theirs(x_theirs)
    ours.recordings["i_syn"].sum().backward()
    theirs.recordings["i_syn"].sum().backward()
    assert_grads_close(x_ours.grad, x_theirs.grad)
    theirs_params = dict(theirs.named_parameters())
    for name, param in ours.named_parameters():
        expected = theirs_params[name].grad
        assert (param.grad is None) == (expected is None), name
        if expected is not None:
            assert_grads_close(param.grad, expected, rtol=1e-4)
    assert ours.tau_adapt.grad is None
    assert (ours.tau_mem.grad is None) == (not norm)


def test_per_neuron_parameters():
    trailing = (3, 2)
    kw = dict(tau_mem=torch.rand(trailing) * 20 + 2, tau_adapt=torch.rand(trailing) * 40 + 5,
              tau_syn=3.0, adapt_scale=torch.rand(trailing) * 2,
              spike_threshold=torch.rand(trailing) + 0.5)
    run_pair("ALIF", kw, copy.deepcopy(kw), inputs_for((2, 15, *trailing)))


def test_per_neuron_tau_syn_against_the_reference():
    # sinabs raises for a per-neuron tau_syn ("Boolean value of Tensor ... is ambiguous");
    # sinabs_fast takes it, and matches its pure-PyTorch reference.
    tau_syn = torch.rand(4) * 5 + 1
    layer = fl.ALIF(tau_mem=6.0, tau_adapt=11.0, tau_syn=tau_syn)
    x = torch.rand(2, 20, 4) * 3
    out = layer(x)
    state = {name: torch.zeros(2, 4) for name in ("v_mem", "i_syn", "b", "spike_threshold")}
    params = ALIFParams(
        alpha_mem=torch.exp(-1 / torch.tensor(6.0)), alpha_adapt=torch.exp(-1 / torch.tensor(11.0)),
        alpha_syn=torch.exp(-1 / tau_syn), adapt_scale=1.8, b0=torch.tensor(1.0),
        spike_fn=fa.SingleSpike, reset_fn=fa.MembraneSubtract(),
        surrogate_grad_fn=fa.SingleExponential(), min_v_mem=None, norm_input=True)
    expected, final, _ = reference.alif_forward(x, state, params)
    assert torch.equal(out, expected) and torch.equal(layer.b, final["b"])


@pytest.mark.parametrize("kind", ["ALIF", "ALIFRecurrent"])
def test_shape_change_rezeros_like_sinabs(kind):
    ours, theirs = build(kind, dict(tau_mem=5.0, tau_adapt=9.0), dict(tau_mem=5.0, tau_adapt=9.0),
                         neurons=4)
    for batch in (3, 2, 2, 5):
        x = torch.rand(batch, 10, 4) * 3
        assert torch.equal(ours(x), theirs(x))
        assert torch.equal(ours.b, theirs.b) and torch.equal(ours.v_mem, theirs.v_mem)


def test_float64_input_follows_sinabs_promotion():
    # The first call promotes the float32 states (reference path), later calls run fused in
    # float64; spikes stay float32.
    run_pair("ALIF", dict(tau_syn=3.0), dict(tau_syn=3.0),
             inputs_for((2, 10, 4), calls=3, dtype=torch.float64))


def test_custom_spike_function_runs_the_reference():
    class Shifted(sa.SingleSpike):  # not a known kernel spike function
        pass

    run_pair("ALIF", dict(spike_fn=Shifted), dict(spike_fn=Shifted), inputs_for((2, 10, 3)))


def test_counts_come_from_the_kernel_and_carry_gradients():
    layer = fl.ALIF(tau_mem=6.0, tau_adapt=12.0)
    x = (torch.rand(2, 30, 5) * 3).requires_grad_()
    out = layer(x)
    assert torch.equal(layer.spike_counts, out.sum(1))
    (g_counts,) = torch.autograd.grad(layer.spike_counts.sum(), x)
    layer.reset_states()
    out = layer(x)
    (g_out,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(g_counts, g_out)


def test_impulse_raises_the_threshold_then_it_decays():
    layer = fl.ALIF(tau_mem=10.0, tau_adapt=5.0, adapt_scale=2.0, norm_input=False)
    x = torch.zeros(1, 20, 1)
    x[0, 0, 0] = 1.5
    out = layer(x)
    assert out[0, 0, 0] == 1 and out.sum() == 1
    rho = torch.exp(torch.tensor(-1 / 5.0))
    b = (1 - rho) * rho ** 19
    torch.testing.assert_close(layer.b[0, 0], b)
    torch.testing.assert_close(layer.spike_threshold[0, 0], 1.0 + 2.0 * b)


# --- What sinabs_fast fixes (documented in the README) ------------------------------------------


def test_deepcopy_keeps_norm_input_and_trainable_alphas():
    layer = fl.ALIF(tau_mem=5.0, tau_adapt=7.0, tau_syn=2.0, norm_input=False, train_alphas=True)
    clone = copy.deepcopy(layer)
    assert clone.norm_input is False
    assert layer.alpha_mem.requires_grad and clone.alpha_mem.requires_grad
    assert torch.equal(clone.alpha_adapt, layer.alpha_adapt)
    repr(fl.ALIF(tau_mem=5.0, tau_adapt=7.0, train_alphas=True))  # sinabs raises here


def test_int_tau_is_accepted():
    with pytest.raises(RuntimeError):
        sl.ALIF(tau_mem=5, tau_adapt=7)
    layer = fl.ALIF(tau_mem=5, tau_adapt=7)
    assert layer.tau_mem.dtype == torch.float32
    reference = fl.ALIF(tau_mem=5.0, tau_adapt=7.0)
    x = torch.rand(2, 8, 3) * 3
    assert torch.equal(layer(x), reference(x))


def test_checkpoint_loads_into_a_fresh_layer():
    layer = fl.ALIF(tau_mem=5.0, tau_adapt=7.0, tau_syn=2.0)
    layer(torch.rand(2, 10, 3) * 3)
    fresh = fl.ALIF(tau_mem=5.0, tau_adapt=7.0, tau_syn=2.0)
    fresh.load_state_dict(layer.state_dict())
    x = torch.rand(2, 10, 3) * 3
    assert torch.equal(fresh(x), layer(x))


# --- The op ------------------------------------------------------------------------------------


def op_args(syn=True, dtype=torch.float64, B=2, T=6, N=3, seq=True):
    g = torch.Generator().manual_seed(1)
    rand = lambda *s: torch.rand(*s, generator=g, dtype=dtype)  # noqa: E731
    return (
        rand(B, T, N) * 2, rand(B, N), rand(B, N) if syn else None, rand(B, N) * 0.1,
        torch.tensor(0.9, dtype=dtype), torch.tensor(0.7, dtype=dtype) if syn else None,
        torch.tensor(0.95, dtype=dtype), True, torch.tensor(1.3, dtype=dtype),
        torch.tensor(1.8, dtype=dtype), None, None, 2, float("inf"), 0, 0.0, 0, [0.5, 1.0], seq,
    )


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("syn", [False, True])
def test_opcheck(syn, time_major):
    """Also on a time-major input view, read in place (its gradient laid out like it)."""
    args = list(op_args(syn))
    if time_major:
        args[0] = args[0].transpose(0, 1).contiguous().transpose(0, 1)
    torch.library.opcheck(torch.ops.sinabs_fast.alif_forward.default, args)


@pytest.mark.parametrize("syn", [False, True])
def test_gradcheck_below_threshold(syn):
    """Far below the threshold nothing spikes and the Heaviside surrogate is 0, so the op is
    smooth: gradcheck applies to the input, the initial states and the three alphas."""
    args = list(op_args(syn))
    args[0] = args[0] * 0.05
    args[8] = torch.tensor(50.0, dtype=torch.float64)  # b0: far above the membrane
    args[16], args[17] = 2, [0.5]  # Heaviside(window=0.5)
    tensors = [0, 1, 3, 4, 6] + ([2, 5] if syn else [])
    for i in tensors:
        args[i] = args[i].clone().requires_grad_()

    def fn(*ts):
        full = list(args)
        for i, t in zip(tensors, ts):
            full[i] = t
        out = torch.ops.sinabs_fast.alif_forward.default(*full)
        return out[1], out[4], out[6]  # v_hat, final v_mem, final b

    assert torch.autograd.gradcheck(fn, [args[i] for i in tensors])


def test_op_names_the_bad_argument():
    assert_rejected(torch.ops.sinabs_fast.alif_forward.default, op_args(), [
        ("b", torch.zeros(5), "b must have v_mem's shape"),
        ("alpha_adapt", torch.ones(7, dtype=torch.float64), "alpha_adapt must broadcast"),
    ])


def test_compile_fullgraph_training_step():
    """torch.compile traces the ALIF layer (the fused op's fake kernel and autograd) without graph
    breaks, with the eager results and gradients."""
    layer = fl.ALIF(tau_mem=8.0, tau_adapt=15.0, tau_syn=3.0)
    eager = fl.ALIF(tau_mem=8.0, tau_adapt=15.0, tau_syn=3.0)
    x = torch.rand(2, 10, 4) * 3

    def step(module, inputs):
        module.reset_states()
        return module(inputs).sum() + module.v_mem.sum()

    compiled = torch.compile(lambda inputs: step(layer, inputs), fullgraph=True,
                             backend="aot_eager")
    x_compiled, x_eager = x.clone().requires_grad_(), x.clone().requires_grad_()
    loss_compiled, loss_eager = compiled(x_compiled), step(eager, x_eager)
    loss_compiled.backward()
    loss_eager.backward()
    assert torch.equal(loss_compiled, loss_eager)
    assert torch.equal(x_compiled.grad, x_eager.grad)
    assert torch.equal(layer.tau_adapt.grad, eager.tau_adapt.grad)
