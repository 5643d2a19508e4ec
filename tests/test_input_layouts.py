"""Non-contiguous inputs (a transposed (T, B, N) view, a slice, a broadcast view, channels-last
after a convolution) give exactly the results of their contiguous copies and of sinabs' layers;
inputs whose rows are contiguous are read in place, without a copy; NaN and Inf inputs give
exactly sinabs' outputs and states; so does a very long sequence of a few neurons."""

from typing import Callable, Dict

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

sl = pytest.importorskip("sinabs.layers", reason="sinabs 3.1.3 is the test oracle")

import sinabs_fast.layers as fl  # noqa: E402  (after the importorskip)

from conftest import assert_grads_close  # noqa: E402

B, T, N = 3, 12, 40
C, H, W = 4, 5, 6

# name -> (layer name, constructor arguments); built the same way from either library.
LAYERS = {
    "iaf": ("IAF", {}),
    "lif_syn": ("LIF", {"tau_mem": 8.0, "tau_syn": 4.0}),
    "lif_min_v": ("LIF", {"tau_mem": 8.0, "min_v_mem": -0.5, "norm_input": False}),
    "exp_leak": ("ExpLeak", {"tau_mem": 8.0}),
    "alif": ("ALIF", {"tau_mem": 8.0, "tau_adapt": 16.0}),
}
SQUEEZE = {
    "iaf_squeeze": ("IAFSqueeze", {"batch_size": B}),
    "lif_squeeze": ("LIFSqueeze", {"tau_mem": 8.0, "batch_size": B}),
    "exp_leak_squeeze": ("ExpLeakSqueeze", {"tau_mem": 8.0, "num_timesteps": T}),
}

# name -> a non-contiguous (B, T, N) input.
SEQUENCE_LAYOUTS: Dict[str, Callable[[], torch.Tensor]] = {
    "transposed_tbn": lambda: torch.rand(T, B, N).mul(2).transpose(0, 1),
    "sliced_neurons": lambda: torch.rand(B, T, 2 * N + 3).mul(2)[:, :, 3::2],
    "sliced_time": lambda: torch.rand(B, 2 * T, N).mul(2)[:, ::2],
    "broadcast_batch": lambda: torch.rand(1, T, N).mul(2).expand(B, T, N),
}
# name -> a non-contiguous (B * T, C, H, W) input, as a convolution hands a Squeeze layer.
SQUEEZED_LAYOUTS: Dict[str, Callable[[], torch.Tensor]] = {
    "channels_last": lambda: torch.rand(B * T, C, H, W).mul(2).to(
        memory_format=torch.channels_last),
    "conv_channels_last": lambda: torch.nn.Conv2d(2, C, 3, padding=1).to(
        memory_format=torch.channels_last)(torch.rand(B * T, 2, H, W).to(
            memory_format=torch.channels_last)).mul(4).detach(),
    "sliced_width": lambda: torch.rand(B * T, C, H, 2 * W).mul(2)[..., ::2],
}


def _run(module, layer: tuple, x: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Output, final v_mem and the input's gradient for a fixed random loss."""
    name, kwargs = layer
    x = x.detach().requires_grad_(True)
    out = getattr(module, name)(**kwargs)(x)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    return {"output": out.detach(), "grad": x.grad}


def _check(layer: tuple, x: torch.Tensor) -> None:
    assert not x.is_contiguous()
    ours = _run(fl, layer, x)
    contiguous = _run(fl, layer, x.contiguous())
    theirs = _run(sl, layer, x)
    assert ours["output"].sum() > 0  # the neurons spike
    assert torch.equal(ours["output"], contiguous["output"])
    assert torch.equal(ours["grad"], contiguous["grad"])
    assert torch.equal(ours["output"], theirs["output"])
    assert_grads_close(ours["grad"], theirs["grad"])


@pytest.mark.parametrize("layout", SEQUENCE_LAYOUTS)
@pytest.mark.parametrize("layer", LAYERS)
def test_non_contiguous_sequence_as_contiguous_and_sinabs(layer, layout):
    _check(LAYERS[layer], SEQUENCE_LAYOUTS[layout]())


@pytest.mark.parametrize("layout", SQUEEZED_LAYOUTS)
@pytest.mark.parametrize("layer", SQUEEZE)
def test_non_contiguous_squeezed_as_contiguous_and_sinabs(layer, layout):
    _check(SQUEEZE[layer], SQUEEZED_LAYOUTS[layout]())


# name -> (layer name, constructor arguments): every layer kind and option whose results a layout
# must leave bit-identical, with trained time constants (their gradients are compared too).
EXACT_LAYERS = {
    "iaf": ("IAF", {}),
    "lif": ("LIF", {"tau_mem": 8.0}),
    "lif_syn_norm": ("LIF", {"tau_mem": 8.0, "tau_syn": 4.0, "norm_input": True}),
    "lif_syn_no_norm": ("LIF", {"tau_mem": 8.0, "tau_syn": 4.0, "norm_input": False}),
    "lif_train_alphas": ("LIF", {"tau_mem": 8.0, "train_alphas": True}),
    "exp_leak": ("ExpLeak", {"tau_mem": 8.0}),
    "alif": ("ALIF", {"tau_mem": 8.0, "tau_adapt": 16.0}),
    "alif_syn": ("ALIF", {"tau_mem": 8.0, "tau_adapt": 16.0, "tau_syn": 4.0, "norm_input": False}),
}

# name -> a (B, T, N) view whose rows (the last dimension) are contiguous: read in place.
ROW_CONTIGUOUS: Dict[str, Callable[[], torch.Tensor]] = {
    "time_major": lambda: torch.rand(T, B, N).mul(2).transpose(0, 1),
    "neuron_slice": lambda: torch.rand(B, T, N + 9).mul(2)[:, :, 5:5 + N],
    "time_major_neuron_slice": lambda: torch.rand(T, B, N + 9).mul(2)[..., 2:2 + N].transpose(0, 1),
    "every_other_step": lambda: torch.rand(B, 2 * T, N).mul(2)[:, ::2],
    "broadcast_batch": lambda: torch.rand(1, T, N).mul(2).expand(B, T, N),
}
# name -> a (B, T, C, H, W) view, which the layers flatten to (B, T, N) in place.
ROW_CONTIGUOUS_5D: Dict[str, Callable[[], torch.Tensor]] = {
    "time_major": lambda: torch.rand(T, B, C, H, W).mul(2).transpose(0, 1),
}
# name -> a (B * T, C, H, W) view of rows b * T + t, which the Squeeze layers read in place.
ROW_CONTIGUOUS_SQUEEZED: Dict[str, Callable[[], torch.Tensor]] = {
    "every_other_sample": lambda: torch.rand(2 * B * T, C, H, W).mul(2)[::2],
}
# name -> a (B, T, N) view whose rows are not contiguous: still right, through a copy.
STRIDED_ROWS: Dict[str, Callable[[], torch.Tensor]] = {
    "every_other_neuron": lambda: torch.rand(B, T, 2 * N).mul(2)[..., ::2],
    "neurons_first": lambda: torch.rand(B, N, T).mul(2).transpose(1, 2),
}


def _results(layer: tuple, x: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Every result of a call on ``x`` with a fixed random loss: the output, the final states,
    and the gradients of the input and of the layer's parameters."""
    name, kwargs = layer
    x = x.detach().requires_grad_(True)
    torch.manual_seed(1)
    neurons = getattr(fl, name)(**kwargs)
    for p in neurons.parameters():
        p.requires_grad_(True)
    out = neurons(x)
    (out * torch.rand(out.shape)).sum().backward()
    results = {"output": out.detach(), "input grad": x.grad}
    results.update({f"state {k}": v for k, v in neurons.named_buffers()})
    results.update({f"grad {k}": p.grad for k, p in neurons.named_parameters()})
    return results


def _assert_identical(layer: tuple, x: torch.Tensor) -> None:
    ours = _results(layer, x)
    contiguous = _results(layer, x.contiguous())
    assert ours["output"].abs().sum() > 0
    assert ours.keys() == contiguous.keys()
    assert ours["input grad"] is not None
    for key, value in ours.items():  # a parameter without a gradient has None in both
        same = value is contiguous[key] or torch.equal(value, contiguous[key])
        assert same, key


@pytest.mark.parametrize("layout", {**ROW_CONTIGUOUS, **STRIDED_ROWS})
@pytest.mark.parametrize("layer", EXACT_LAYERS)
def test_layout_gives_bit_identical_results(layer, layout):
    """Forward, final states and all gradients equal those of the contiguous copy, bit for bit,
    whether the view is read in place or copied."""
    _assert_identical(EXACT_LAYERS[layer], {**ROW_CONTIGUOUS, **STRIDED_ROWS}[layout]())


@pytest.mark.parametrize("layout", ROW_CONTIGUOUS_5D)
@pytest.mark.parametrize("layer", ["iaf", "lif_syn_norm", "alif"])
def test_five_dimensional_layout_gives_bit_identical_results(layer, layout):
    _assert_identical(EXACT_LAYERS[layer], ROW_CONTIGUOUS_5D[layout]())


@pytest.mark.parametrize("layout", {**ROW_CONTIGUOUS_SQUEEZED, **SQUEEZED_LAYOUTS})
@pytest.mark.parametrize("layer", SQUEEZE)
def test_squeezed_layout_gives_bit_identical_results(layer, layout):
    _assert_identical(SQUEEZE[layer], {**ROW_CONTIGUOUS_SQUEEZED, **SQUEEZED_LAYOUTS}[layout]())


def _large_allocations(step: Callable[[], None], nbytes: int) -> int:
    """How many tensors of at least ``nbytes`` ``step`` allocates through torch's allocator (the
    tests' tensors are too small for the extension's own output pool, so every output counts)."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    return sum(1 for e in prof.events()
               if e.name in ("aten::empty", "aten::empty_strided")
               and e.cpu_memory_usage >= nbytes)


def _allocations(layer: tuple, x: torch.Tensor, grad: bool) -> int:
    """Allocations of the input's size or more in a forward (with ``grad``, and a backward into
    the input) of ``layer`` on ``x``, after a warm-up call."""
    name, kwargs = layer
    neurons = getattr(fl, name)(**kwargs)
    leaf = x.detach().requires_grad_(grad)
    g_out = torch.rand(x.shape)

    def step() -> None:
        neurons.reset_states()
        leaf.grad = None
        if grad:
            neurons(leaf).backward(g_out)
        else:
            with torch.no_grad():
                neurons(leaf)

    step()
    return _large_allocations(step, x.numel() * x.element_size())


# The layers whose backward reads the input (and so lays out its gradient like the input).
NO_COPY_LAYERS = ["iaf", "lif", "lif_syn_norm", "alif"]


@pytest.mark.parametrize("grad", [False, True], ids=["inference", "fwd_bwd"])
@pytest.mark.parametrize("layout", ROW_CONTIGUOUS)
@pytest.mark.parametrize("layer", NO_COPY_LAYERS)
def test_row_contiguous_input_is_not_copied(layer, layout, grad):
    """A view with contiguous rows allocates nothing of the input's size that a contiguous input
    does not: the kernels read it (and the backward's recomputation re-reads it) in place, and a
    time-major leaf's gradient comes in its own layout, so autograd keeps it as it is."""
    x = ROW_CONTIGUOUS[layout]()
    expected = _allocations(EXACT_LAYERS[layer], x.contiguous(), grad)
    assert _allocations(EXACT_LAYERS[layer], x, grad) == expected


@pytest.mark.parametrize("layer", NO_COPY_LAYERS)
def test_strided_rows_are_copied_once(layer):
    """The counting above sees a copy: rows that are not contiguous are copied once per pass."""
    x = STRIDED_ROWS["every_other_neuron"]()
    layer = EXACT_LAYERS[layer]
    assert _allocations(layer, x, False) == _allocations(layer, x.contiguous(), False) + 1


@pytest.mark.parametrize("layer", ["iaf", "lif_syn_norm", "exp_leak", "alif"])
def test_time_major_gradient_keeps_the_input_layout(layer):
    """The gradient reaching a time-major (T, B, N) leaf through its (B, T, N) view is (T, B, N)
    contiguous as it comes (autograd.grad, so no accumulation lays it out afresh)."""
    x_tbn = torch.rand(T, B, N).mul(2).requires_grad_(True)
    name, kwargs = EXACT_LAYERS[layer]
    out = getattr(fl, name)(**kwargs)(x_tbn.transpose(0, 1))
    (grad,) = torch.autograd.grad(out.sum(), x_tbn)
    assert grad.is_contiguous()


# name -> the value planted in an otherwise ordinary input.
NON_FINITE = {"nan": float("nan"), "inf": float("inf"), "neg_inf": float("-inf")}


@pytest.mark.parametrize("value", NON_FINITE)
@pytest.mark.parametrize("layer", LAYERS)
def test_non_finite_input_as_sinabs(layer, value):
    """One neuron gets the value at one step, another at every step; the outputs and the final
    states (NaN where sinabs has NaN) are sinabs' exactly."""
    x = torch.rand(B, T, N) * 2
    x[0, 3, 5] = NON_FINITE[value]
    x[1, :, 7] = NON_FINITE[value]
    results = []
    for module in (fl, sl):
        name, kwargs = LAYERS[layer]
        neurons = getattr(module, name)(**kwargs)
        with torch.no_grad():
            out = neurons(x)
        results.append((out, neurons.v_mem))
    (out, v_mem), (ref_out, ref_v_mem) = results
    assert not torch.isfinite(v_mem).all()  # the value reached the state
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(v_mem, ref_v_mem, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("layer", ["iaf", "lif_syn", "alif"])
def test_long_sequence_of_few_neurons_as_sinabs(layer):
    """Huge T with tiny N (2000 steps of 2 x 3 neurons): one work item per row, a long serial
    time loop; outputs and final states exactly sinabs', input gradients to rounding."""
    x = torch.rand(2, 2000, 3) * 1.5
    ours = _run(fl, LAYERS[layer], x)
    theirs = _run(sl, LAYERS[layer], x)
    assert ours["output"].sum() > 0
    assert torch.equal(ours["output"], theirs["output"])
    assert_grads_close(ours["grad"], theirs["grad"])
