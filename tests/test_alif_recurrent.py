"""ALIFRecurrent with a linear rec_connect, which runs as one op call (alif_recurrent_forward),
against sinabs 3.1.3: spikes, states and recordings bit-identical over consecutive calls, input
gradients within rtol 1e-5, rec_connect and alpha/tau gradients within rtol 1e-4; plus the op
itself (opcheck, errors)."""

import itertools

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.layers as sl  # noqa: E402
import torch  # noqa: E402

import sinabs_fast.layers as fl  # noqa: E402
from conftest import assert_grads_close  # noqa: E402
from named_args import assert_rejected  # noqa: E402
from sinabs_fast.layers.functional import alif as functional_alif  # noqa: E402
from sinabs_pairs import RESETS, SPIKES, SURROGATES  # noqa: E402
from test_alif import inputs_for, run_pair  # noqa: E402


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the layer calls that the recurrent op ran whole."""
    calls = []
    original = functional_alif._fused_recurrent

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(functional_alif, "_fused_recurrent", counted)
    return calls


@pytest.mark.parametrize("spike,reset,syn,norm,min_v", list(itertools.product(
    ["single", "multi"], ["subtract", "subtract0.5", "reset0.1"], [None, 4.0], [True, False],
    [None, -0.5])))
def test_options_matrix(fused_calls, spike, reset, syn, norm, min_v):
    kw = dict(tau_syn=syn, norm_input=norm, min_v_mem=min_v)
    run_pair("ALIFRecurrent", dict(kw, spike_fn=SPIKES[spike][0], reset_fn=RESETS[reset][0]),
             dict(kw, spike_fn=SPIKES[spike][1], reset_fn=RESETS[reset][1]),
             inputs_for((3, 14, 5)))
    assert len(fused_calls) == 2


@pytest.mark.parametrize("syn", [None, 4.0])
@pytest.mark.parametrize("record", [False, True])
def test_train_alphas(fused_calls, syn, record):
    ours, _ = run_pair("ALIFRecurrent", dict(train_alphas=True, tau_syn=syn),
                       dict(train_alphas=True, tau_syn=syn), inputs_for((3, 20, 2, 3)),
                       record=record)
    assert ours.alpha_adapt.grad.abs() > 0 and ours.alpha_mem.grad.abs() > 0
    assert len(fused_calls) == 2


@pytest.mark.parametrize("surrogate", ["single_exp_wide", "periodic", "gaussian"])
def test_surrogates(fused_calls, surrogate):
    run_pair("ALIFRecurrent", dict(surrogate_grad_fn=SURROGATES[surrogate][0], tau_syn=3.0),
             dict(surrogate_grad_fn=SURROGATES[surrogate][1], tau_syn=3.0),
             inputs_for((2, 12, 6)))
    assert fused_calls


def test_functional_float64(fused_calls):
    """The functional drop-in with float64 input and states (the layer keeps sinabs' float32 b
    and i_syn, so only the functional call runs float64 fused) and the float32 linear map: the
    totals promote to float64, as in sinabs. Spikes, states, recordings equal; gradients close."""
    import sinabs.layers.functional as sf
    from sinabs_fast.layers.functional import alif_recurrent

    rec = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4))
    rec_theirs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 4))
    rec_theirs.load_state_dict(rec.state_dict())
    x = torch.rand(2, 10, 4, dtype=torch.float64)
    f64 = lambda v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    results = []
    for k, (fn, r) in enumerate(((alif_recurrent, rec), (sf.alif_recurrent, rec_theirs))):
        xg = x.clone().requires_grad_()
        state = {n: torch.zeros(2, 4, dtype=torch.float64) for n in ("v_mem", "i_syn", "b")}
        out = fn(xg, f64(0.9), f64(0.95), f64(0.7), 1.8, state, SPIKES["single"][k],
                 RESETS["subtract"][k], SURROGATES["single_exp"][k], None, r, 1.0, False, True)
        spikes, new_state, recordings = out[:3]
        (spikes.sum() + new_state["v_mem"].sum() + recordings["v_mem"].sum()).backward()
        results.append((spikes, new_state, recordings, xg.grad, r[1].weight.grad))
    (s_a, st_a, rec_a, gx_a, gw_a), (s_b, st_b, rec_b, gx_b, gw_b) = results
    assert torch.equal(s_a, s_b) and s_a.sum() > 0
    for name in ("v_mem", "i_syn", "b"):
        assert st_a[name].dtype == torch.float64 and torch.equal(st_a[name], st_b[name])
    for name in rec_b:
        assert torch.equal(rec_a[name], rec_b[name]), name
    assert_grads_close(gx_a, gx_b)
    assert_grads_close(gw_a, gw_b, rtol=1e-4)
    assert len(fused_calls) == 1


def test_bare_linear_without_bias_and_inference(fused_calls):
    """A bare nn.Linear without bias over one neuron dimension; then a call without gradient
    (the kernel below autograd) with the same numbers as sinabs under no_grad."""
    rec = torch.nn.Linear(6, 6, bias=False)
    theirs_rec = torch.nn.Linear(6, 6, bias=False)
    theirs_rec.load_state_dict(rec.state_dict())
    ours = fl.ALIFRecurrent(8.0, 15.0, rec, tau_syn=4.0, record_states=True)
    theirs = sl.ALIFRecurrent(8.0, 15.0, theirs_rec, tau_syn=4.0, record_states=True)
    x = torch.rand(3, 16, 6) * 3
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert torch.equal(out_ours, out_theirs)
    (out_ours.sum() + ours.recordings["v_mem"].sum()).backward()
    (out_theirs.sum() + theirs.recordings["v_mem"].sum()).backward()
    assert_grads_close(x_ours.grad, x_theirs.grad)
    assert_grads_close(rec.weight.grad, theirs_rec.weight.grad, rtol=1e-4)
    with torch.no_grad():
        assert torch.equal(ours(x), theirs(x))
    for name in ("v_mem", "b", "spike_threshold"):
        assert torch.equal(getattr(ours, name), getattr(theirs, name))
    assert len(fused_calls) == 2


def test_hooked_rec_connect_runs_step_by_step(fused_calls):
    """A hook on rec_connect must see every step's call: the op would skip it."""
    rec = torch.nn.Linear(4, 4)
    seen = []
    rec.register_forward_hook(lambda *_: seen.append(1))
    fl.ALIFRecurrent(8.0, 15.0, rec)(torch.rand(2, 7, 4))
    assert len(seen) == 7 and not fused_calls


def op_args(syn=False, keep=True, steps=6, batch=2, n=5):
    torch.manual_seed(0)
    state = lambda: torch.rand(batch, n) * 0.5  # noqa: E731
    return (
        torch.rand(batch, steps, n) * 2, state(), state() if syn else None, state(),
        torch.tensor(0.9), torch.tensor(0.7) if syn else None, torch.tensor(0.95), True,
        torch.tensor(1.3), torch.tensor(1.8), None, None, torch.randn(n, n) * 0.5,
        torch.randn(n) * 0.1, 2, float("inf"), 0, 0.0, 0, [0.5, 1.0], keep,
    )


@pytest.mark.parametrize("syn", [False, True])
def test_opcheck(syn):
    torch.library.opcheck(torch.ops.sinabs_fast.alif_recurrent_forward.default, op_args(syn))


def test_op_names_the_bad_argument():
    assert_rejected(torch.ops.sinabs_fast.alif_recurrent_forward.default, op_args(), [
        ("weight", torch.zeros(4, 4), "weight must have shape"),
        ("bias", torch.zeros(5, dtype=torch.float64), "bias must be float32"),
    ])


def test_backward_needs_the_kept_sequences():
    args = list(op_args(keep=False))
    args[0].requires_grad_()
    out = torch.ops.sinabs_fast.alif_recurrent_forward.default(*args)
    with pytest.raises(RuntimeError, match="keep_sequences=True"):
        out[0].sum().backward()
