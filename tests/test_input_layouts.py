"""Non-contiguous inputs (a transposed (T, B, N) view, a slice, a broadcast view, channels-last
after a convolution) give exactly the results of their contiguous copies and of sinabs' layers;
NaN and Inf inputs give exactly sinabs' outputs and states; so does a very long sequence of a few
neurons."""

from typing import Callable, Dict

import pytest
import torch

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
