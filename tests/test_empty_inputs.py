"""A batch of 0 or 0 neurons gives empty outputs and gradients, as sinabs' layers do (the
kernels read an empty tensor as an absent argument, so the ops answer an empty call's backward
without them: sinabs_fast/ops/schema.py, ``OpSchema.empty_problem``). T = 0 keeps its error.

The Squeeze layers are compared with sinabs' unsqueezed twin on the (B, T, N) view of the same
input: sinabs has no ALIFSqueeze, and its Squeeze layers fail on 0 neurons (their reshape infers
a dimension from an empty row), where ours give the empty result."""

import pytest
import torch

sl = pytest.importorskip("sinabs.layers", reason="sinabs 3.1.3 is the test oracle")

import sinabs_fast.layers as fl  # noqa: E402  (after the importorskip)

T = 4
# (layer name, constructor arguments); every layer runs with B = 0 and with N = 0.
LAYERS = [
    ("IAF", {}),
    ("IAF", {"min_v_mem": -1.0}),
    ("LIF", {"tau_mem": 10.0}),
    ("LIF", {"tau_mem": 10.0, "norm_input": True, "train_alphas": True}),
    ("LIF", {"tau_mem": 10.0, "tau_syn": 5.0, "train_alphas": True}),
    ("ExpLeak", {"tau_mem": 10.0}),
    ("ALIF", {"tau_mem": 10.0, "tau_adapt": 20.0}),
    ("ALIF", {"tau_mem": 10.0, "tau_adapt": 20.0, "tau_syn": 5.0, "train_alphas": True}),
    ("IAFSqueeze", {"num_timesteps": T}),
    ("LIFSqueeze", {"tau_mem": 10.0, "num_timesteps": T, "train_alphas": True}),
    ("ExpLeakSqueeze", {"tau_mem": 10.0, "num_timesteps": T}),
    ("ALIFSqueeze", {"tau_mem": 10.0, "tau_adapt": 20.0, "num_timesteps": T}),
]
SHAPES = {"batch0": (0, 3), "neurons0": (2, 0)}


def _run(module, name: str, kwargs: dict, batch: int, neurons: int):
    squeezed = name.endswith("Squeeze")
    if module is sl and squeezed:  # the oracle: the unsqueezed layer on the (B, T, N) view
        name, kwargs = name[:-len("Squeeze")], {k: v for k, v in kwargs.items()
                                                 if k != "num_timesteps"}
    layer = getattr(module, name)(**kwargs)
    x = torch.rand((batch * T, neurons) if squeezed else (batch, T, neurons), requires_grad=True)
    out = layer(x.reshape(batch, T, neurons) if module is sl and squeezed else x)
    out = out.reshape(x.shape)
    out.sum().backward()
    grads = {n: p.grad for n, p in layer.named_parameters()}
    return out.detach(), x.grad, grads


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("name, kwargs", LAYERS, ids=[f"{n}-{sorted(k)}" for n, k in LAYERS])
def test_empty_batch_or_neurons_as_sinabs(name, kwargs, shape):
    out, g_x, grads = _run(fl, name, kwargs, *shape)
    ref_out, ref_g_x, ref_grads = _run(sl, name, kwargs, *shape)
    assert out.shape == ref_out.shape and out.numel() == 0
    assert g_x is not None and g_x.shape == ref_g_x.shape
    assert grads.keys() == ref_grads.keys()
    for n, g in grads.items():
        ref = ref_grads[n]
        assert (g is None) == (ref is None), n
        if ref is not None:
            torch.testing.assert_close(g, ref, rtol=0, atol=0, msg=n)


@pytest.mark.parametrize("name, kwargs",
                         [("IAF", {}), ("ALIF", {"tau_mem": 10.0, "tau_adapt": 20.0})])
def test_zero_time_steps_is_a_clear_error(name, kwargs):
    with pytest.raises(ValueError, match=f"{name}: input_data has no time steps"):
        getattr(fl, name)(**kwargs)(torch.rand(2, 0, 3, requires_grad=True))


def _emptied(arg, size: int):
    """A recorded op argument with every dimension of length ``size`` (the batch or the neuron
    count of tests/op_error_cases.py's calls) cut to 0; other arguments as they are."""
    if not isinstance(arg, torch.Tensor):
        return arg
    for dim, length in enumerate(arg.shape):
        if length == size:
            arg = arg.narrow(dim, 0, 0)
    return arg


@pytest.mark.parametrize("what", ["batch", "neurons"])
def test_raw_ops_answer_an_empty_problem_with_empty_outputs_and_zero_gradients(what):
    """Every fused op, called directly (not through a layer, which answers an empty backward
    itself) on an empty problem: no error, and every output empty or zero (a parameter's
    gradient is a zero of its shape)."""
    from op_error_cases import record_calls

    calls = record_calls("cpu")  # B = 2, T = 3, N = 4
    size = {"batch": 2, "neurons": 4}[what]
    for name, (func, args) in sorted(calls.items()):
        outputs = func(*(_emptied(a, size) for a in args))
        for index, out in enumerate(outputs):
            assert out.numel() == 0 or not out.any(), (name, index, out)
