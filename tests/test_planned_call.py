"""The LIF layers keep their planned op call (layers/lif.py, ``LIF._plan``) and reuse it while
nothing it was planned from changes. Each test changes one of those things between two calls of
the same layer and requires the second call to give what a fresh layer (which plans anew) gives
from the same states: outputs, states and gradients, bit for bit."""

import copy
import pickle

import pytest
import torch

import sinabs_fast.layers as sl
from sinabs_fast.activation import MembraneReset, MembraneSubtract, SingleSpike


def _twin(layer):
    """A fresh layer with the same parameters and states (no planned call)."""
    twin = copy.deepcopy(layer)
    twin.__dict__.pop("_planned_call", None)
    return twin


def _same_call(layer, x, grad: bool = False):
    """Calls ``layer`` and a fresh twin from the same states; compares outputs, states and the
    input's gradient."""
    twin = _twin(layer)
    results = []
    for module in (layer, twin):
        xi = x.clone().requires_grad_(grad)
        out = module(xi)
        if grad:
            (out * torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape)).sum().backward()
        results.append((out.detach(), {k: v.detach() for k, v in module._states().items()},
                        xi.grad))
    (out, states, g), (out_t, states_t, g_t) = results
    torch.testing.assert_close(out, out_t, rtol=0, atol=0)
    for name in states_t:
        torch.testing.assert_close(states[name], states_t[name], rtol=0, atol=0)
    if grad:
        torch.testing.assert_close(g, g_t, rtol=0, atol=0)
    return out


def _planned(layer):
    return layer.__dict__.get("_planned_call")


def _input(batch=3, steps=6, neurons=5, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, steps, neurons, generator=generator) * 2.5).to(dtype)


def test_a_second_call_reuses_the_plan_and_keeps_no_call_graph():
    layer = sl.LIF(tau_mem=torch.tensor(10.0, requires_grad=True), tau_syn=5.0)
    x = _input().requires_grad_()
    layer(x).sum().backward()
    first = _planned(layer)
    assert first is not None
    layer.zero_grad()  # detaches the states, as before the first call
    layer(x)
    assert _planned(layer) is first  # same key: not planned again
    key, call = first
    held = [t for t in (*call.tail, *call.plan) if isinstance(t, torch.Tensor)]
    assert held and all(t.grad_fn is None for t in held)  # no call's graph kept alive


@pytest.mark.parametrize("change", [
    "nothing", "threshold_in_place", "threshold_replaced", "threshold_float64",
    "threshold_per_neuron",
    "input_float64", "batch_size", "trailing_shape", "min_v_mem", "reset_fn", "subtract_value",
    "spike_fn", "record_states", "tau_in_place", "states_reset",
])
def test_a_changed_call_is_planned_again(change):
    torch.manual_seed(0)
    layer = sl.LIF(tau_mem=8.0, spike_threshold=torch.tensor(1.0), reset_fn=MembraneSubtract())
    x = _input()
    for _ in range(2):  # the second call, from detached states, plans as every later one
        layer.zero_grad()  # detaches the states (tau_mem needs a gradient: they have a graph)
        _same_call(layer, x)
    planned = _planned(layer)
    assert planned is not None
    layer.zero_grad()
    if change == "threshold_in_place":
        layer.spike_threshold.data.fill_(0.5)
    elif change == "threshold_replaced":
        layer.spike_threshold = torch.nn.Parameter(torch.tensor(0.75), requires_grad=False)
    elif change == "threshold_float64":
        layer.spike_threshold.data = torch.tensor(0.5, dtype=torch.float64)
    elif change == "threshold_per_neuron":
        layer.spike_threshold.data = torch.linspace(0.5, 1.5, 5)
    elif change == "input_float64":
        x = x.double()
    elif change == "batch_size":
        x = _input(batch=2, seed=1)
    elif change == "trailing_shape":
        x = _input(neurons=7, seed=1)
    elif change == "min_v_mem":
        layer.min_v_mem = torch.nn.Parameter(torch.tensor(-0.25), requires_grad=False)
    elif change == "reset_fn":
        layer.reset_fn = MembraneReset()
    elif change == "subtract_value":
        layer.reset_fn.subtract_value = 0.5
    elif change == "spike_fn":
        layer.spike_fn = SingleSpike
    elif change == "record_states":
        layer.record_states = True
    elif change == "tau_in_place":
        layer.tau_mem.data.fill_(2.0)
    elif change == "states_reset":
        layer.reset_states(randomize=True)
    torch.manual_seed(1)  # a batch-size change resamples the states' rows from the RNG
    twin = _twin(layer)
    out = layer(x)
    torch.manual_seed(1)
    expected = twin(x)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    torch.testing.assert_close(layer.v_mem, twin.v_mem, rtol=0, atol=0)
    # The plan is reused exactly when nothing it reads changed (an in-place change of a 0-dim
    # parameter's value or of a time constant is read by the op itself).
    assert (_planned(layer) is planned) == (change in ("nothing", "threshold_in_place",
                                                       "tau_in_place", "states_reset"))
    if change == "record_states":
        torch.testing.assert_close(layer.recordings["v_mem"], twin.recordings["v_mem"])


@pytest.mark.parametrize("make", [
    lambda: sl.IAF(), lambda: sl.IAF(tau_syn=4.0, min_v_mem=-1.0), lambda: sl.LIF(tau_mem=6.0),
    lambda: sl.LIF(tau_mem=6.0, tau_syn=3.0, train_alphas=True), lambda: sl.ExpLeak(tau_mem=5.0),
    lambda: sl.IAFSqueeze(batch_size=3),
])
def test_alternating_grad_and_no_grad_calls(make):
    layer = make()
    squeeze = isinstance(layer, sl.IAFSqueeze)
    for k in range(5):
        x = _input(seed=k)
        if squeeze:
            x = x.reshape(-1, 5)
        if k % 2:
            with torch.no_grad():
                _same_call(layer, x)
        else:
            _same_call(layer, x, grad=True)
        layer.v_mem.detach_()
        if "i_syn" in layer._buffers:
            layer.i_syn.detach_()


def test_the_plan_is_not_pickled_and_copies_run():
    layer = sl.LIF(tau_mem=torch.tensor(10.0, requires_grad=True))
    x = _input()
    layer(x.requires_grad_()).sum().backward()
    assert _planned(layer) is not None
    restored = pickle.loads(pickle.dumps(layer))
    assert _planned(restored) is None
    copied = copy.deepcopy(layer)
    torch.testing.assert_close(copied(x.detach()), restored(x.detach()), rtol=0, atol=0)


def _op_arguments(grad: bool, seed: int = 0):
    """lif_forward's arguments for a tiny LIF call with synaptic current, a per-neuron threshold
    and a clamp: the five leading tensors and the rest (the tail)."""
    from sinabs_fast.ops.lif import LIF_FORWARD

    generator = torch.Generator().manual_seed(seed)
    x = (torch.rand(2, 5, 4, generator=generator) * 2).requires_grad_(grad)
    args = LIF_FORWARD.args(
        input=x, v_mem=torch.rand(2, 4, generator=generator), i_syn=torch.zeros(2, 4),
        alpha_mem=torch.tensor(0.9), alpha_syn=torch.tensor(0.8), norm_input=True,
        threshold=torch.linspace(0.5, 1.0, 4), reset_amount=torch.linspace(0.5, 1.0, 4),
        min_v_mem=torch.tensor(-0.5), spike_kind=1, max_spikes=3.0, reset_kind=0,
        reset_value=0.0, surrogate_kind=0, surrogate_params=[0.5, 1.0], keep_v_hat=False,
        keep_i_syn=False)
    return args[:5], args[5:]


@pytest.mark.parametrize("grad", [False, True])
def test_the_direct_entry_equals_the_registered_op(grad):
    from sinabs_fast.ops.lif import LIF_FORWARD

    results = []
    for direct in (True, False):
        leading, tail = _op_arguments(grad)
        args = leading + tail
        out = LIF_FORWARD.direct(args) if direct else torch.ops.sinabs_fast.lif_forward(*args)
        assert (out[0].grad_fn is not None) == grad
        grads = None
        if grad:
            out[0].sum().backward()
            grads = leading[0].grad
        results.append((out, grads))
    (direct, g_direct), (registered, g_registered) = results
    for a, b in zip(direct, registered):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    if grad:
        torch.testing.assert_close(g_direct, g_registered, rtol=0, atol=0)


def _call(args):
    from sinabs_fast import _C

    return _C.call(_C.op_index("lif_forward"), args)


@pytest.mark.parametrize("case, error, message", [
    (lambda args: args[:-1], TypeError, "takes 17 arguments, got 16"),
    (lambda args: (1.0, *args[1:]), TypeError, "input must be a Tensor, got float"),
    (lambda args: (*args[:5], 1, *args[6:]), TypeError, "norm_input must be a bool"),
    (lambda args: (*args[:9], 1.5, *args[10:]), TypeError, "spike_kind must be an int"),
    (lambda args: (*args[:14], 0.5, *args[15:]), TypeError, "surrogate_params must be a list"),
    (lambda args: (*args[:14], ["a"], *args[15:]), TypeError, "surrogate_params must be a list"),
    (lambda args: (args[0], args[1][:1], *args[2:]), RuntimeError, "v_mem"),
])
def test_the_direct_entry_names_a_wrong_argument(case, error, message):
    leading, tail = _op_arguments(grad=False)
    with pytest.raises(error, match=message):
        _call(case(leading + tail))


def test_the_direct_entry_leaves_tensor_subclasses_to_torch_ops():
    class Marked(torch.Tensor):
        pass

    leading, tail = _op_arguments(grad=False)
    args = (leading[0].as_subclass(Marked), *leading[1:], *tail)
    assert _call(args) is NotImplemented
    from sinabs_fast.ops.lif import LIF_FORWARD

    expected = torch.ops.sinabs_fast.lif_forward(leading[0], *args[1:])
    for a, b in zip(LIF_FORWARD.direct(args), expected):
        torch.testing.assert_close(a.as_subclass(torch.Tensor), b, rtol=0, atol=0)


def test_a_torch_function_mode_sees_the_registered_op():
    from torch.overrides import TorchFunctionMode

    class Seen(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    layer, x = sl.IAF(), _input()
    expected = _twin(layer)(x)
    layer(x)
    layer.reset_states()
    with Seen() as mode:
        out = layer(x)
    assert any("lif_forward" in op for op in mode.ops)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_device_scalars_are_made_once_and_keep_the_sign_of_zero():
    from sinabs_fast.layers.functional.op_arguments import device_scalar

    one = device_scalar(1.5, torch.float32, torch.device("cpu"))
    assert device_scalar(1.5, torch.float32, torch.device("cpu")) is one
    assert one.item() == 1.5 and one.dtype == torch.float32 and one.dim() == 0
    assert device_scalar(1.5, torch.float64, torch.device("cpu")).dtype == torch.float64
    negative = device_scalar(-0.0, torch.float32, torch.device("cpu"))
    positive = device_scalar(0.0, torch.float32, torch.device("cpu"))
    assert torch.signbit(negative) and not torch.signbit(positive)


class _PassThrough(torch.overrides.TorchFunctionMode):
    """A torch-function mode that changes nothing: under it the ops run through torch.ops."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("make", [
    lambda: sl.LIFRecurrent(tau_mem=6.0, tau_syn=3.0, rec_connect=torch.nn.Linear(5, 5)),
    lambda: sl.ALIFRecurrent(tau_mem=6.0, tau_adapt=9.0, rec_connect=torch.nn.Linear(5, 5)),
])
def test_the_recurrent_ops_eager_function_equals_their_registered_autograd(make):
    """Eager recurrent calls run the op's autograd as a plain autograd Function
    (ops/recurrent_autograd.py); under a torch-function mode the registered one runs."""
    torch.manual_seed(0)
    layer = make()
    x = _input(steps=7)
    results = []
    for mode in (None, _PassThrough()):
        layer.reset_states()
        layer.zero_grad()
        xi = x.clone().requires_grad_()
        if mode is None:
            out = layer(xi)
        else:
            with mode:
                out = layer(xi)
        (out * torch.linspace(0.5, 1.5, out.numel()).reshape(out.shape)).sum().backward()
        results.append((out.detach(), xi.grad, [p.grad.clone() for p in layer.parameters()
                                                if p.grad is not None]))
    (out_a, g_a, p_a), (out_b, g_b, p_b) = results
    torch.testing.assert_close(out_a, out_b, rtol=0, atol=0)
    torch.testing.assert_close(g_a, g_b, rtol=0, atol=0)
    assert len(p_a) == len(p_b) >= 2
    for a, b in zip(p_a, p_b):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
