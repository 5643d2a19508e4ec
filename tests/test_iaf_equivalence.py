"""sinabs_fast's IAF layers against sinabs 3.1.3: spikes and states bit-identical (torch.equal),
input gradients within rtol 1e-5, over a matrix of options, consecutive calls and batch changes."""

import itertools

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.activation as sa
import sinabs.layers as sl
import torch

import sinabs_fast.activation as fa
import sinabs_fast.layers as fl
from conftest import assert_grads_close
from sinabs_pairs import RESETS, SPIKES, SURROGATES, HalfSpike, run_calls

def run_pair(make_args, inputs, squeeze=None):
    """Runs the same input sequence through both layers (consecutive calls, states carried)
    and compares outputs, states, recordings, input gradients and parameter gradients."""
    ours_kwargs, theirs_kwargs = make_args()
    if squeeze:
        ours = fl.IAFSqueeze(**squeeze, **ours_kwargs)
        theirs = sl.IAFSqueeze(**squeeze, **theirs_kwargs)
    else:
        ours, theirs = fl.IAF(**ours_kwargs), sl.IAF(**theirs_kwargs)
    run_calls(ours, theirs, inputs)
    if theirs.tau_syn is not None and theirs.tau_syn.grad is not None:
        assert_grads_close(ours.tau_syn.grad, theirs.tau_syn.grad, rtol=1e-4)
    return ours, theirs


def inputs_for(shape, calls=3, dtype=torch.float32, scale=1.5):
    return [(torch.rand(shape) * scale - 0.25 * scale).to(dtype) for _ in range(calls)]


@pytest.mark.parametrize("spike,reset,syn,min_v", list(itertools.product(
    SPIKES, RESETS, [None, 5.0], [None, -0.5])))
def test_options_matrix(spike, reset, syn, min_v):
    def args():
        kw = dict(tau_syn=syn, min_v_mem=min_v)
        return (dict(kw, spike_fn=SPIKES[spike][0], reset_fn=RESETS[reset][0]),
                dict(kw, spike_fn=SPIKES[spike][1], reset_fn=RESETS[reset][1]))
    run_pair(args, inputs_for((3, 12, 5)))


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("reset", ["subtract", "reset"])
def test_surrogates(surrogate, reset):
    def args():
        return (dict(surrogate_grad_fn=SURROGATES[surrogate][0], reset_fn=RESETS[reset][0]),
                dict(surrogate_grad_fn=SURROGATES[surrogate][1], reset_fn=RESETS[reset][1]))
    run_pair(args, inputs_for((2, 15, 6), scale=3.0))


@pytest.mark.parametrize("threshold", ["scalar", "int", "per_neuron", "per_batch_neuron"])
@pytest.mark.parametrize("min_v", ["none", "scalar", "per_neuron"])
def test_thresholds_and_min(threshold, min_v):
    shape = (3, 10, 4, 2)
    thr = {"scalar": torch.tensor(0.7), "int": 2, "per_neuron": torch.rand(4, 2) + 0.4,
           "per_batch_neuron": torch.rand(3, 4, 2) + 0.4}[threshold]
    mv = {"none": None, "scalar": -0.3, "per_neuron": -torch.rand(4, 2)}[min_v]

    def args():
        kw = dict(spike_threshold=thr, min_v_mem=mv, tau_syn=3.0)
        return dict(kw), dict(kw)
    run_pair(args, inputs_for(shape, scale=2.0))


@pytest.mark.parametrize("trailing", [(), (7,), (3, 4), (2, 3, 4)])
def test_trailing_shapes(trailing):
    run_pair(lambda: ({}, {}), inputs_for((2, 9, *trailing)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("syn", [None, 4.0])
def test_dtypes(dtype, syn):
    # float64 input promotes the float32 states in the first call (sinabs' promotion); half
    # inputs compute in float32. Spikes are float32 throughout.
    ours, theirs = run_pair(lambda: (dict(tau_syn=syn), dict(tau_syn=syn)),
                            inputs_for((2, 8, 5), dtype=dtype))
    assert ours.v_mem.dtype == theirs.v_mem.dtype


def test_float64_subtract_rounds_in_float32():
    # The reset product s * threshold is float32 even with float64 states (docs/semantics.md, section 3).
    x = torch.full((1, 1, 1), 0.35, dtype=torch.float64)
    ours = fl.IAF(spike_threshold=0.1)
    ours(x)
    ours(torch.zeros_like(x))
    theirs = sl.IAF(spike_threshold=0.1)
    theirs(x)
    theirs(torch.zeros_like(x))
    assert torch.equal(ours.v_mem, theirs.v_mem)
    assert ours.v_mem.item() == pytest.approx(0.04999998807907102, abs=1e-17)


def test_batch_size_changes_resample_like_sinabs():
    shape = [(4, 6, 5), (2, 6, 5), (6, 6, 5), (6, 6, 5)]

    def run(layer_cls):
        torch.manual_seed(3)
        layer = layer_cls(tau_syn=2.0)
        outs = [layer(torch.rand(s) * 2) for s in shape]
        return outs, layer
    outs_a, a = run(fl.IAF)
    outs_b, b = run(sl.IAF)
    for x, y in zip(outs_a, outs_b):
        assert torch.equal(x, y)
    assert torch.equal(a.v_mem, b.v_mem) and torch.equal(a.i_syn, b.i_syn)


def test_trailing_shape_change_reinitialises():
    a, b = fl.IAF(), sl.IAF()
    for s in [(2, 5, 3), (2, 5, 4), (2, 5, 4)]:
        x = torch.rand(s) * 2
        assert torch.equal(a(x), b(x))
    assert a.v_mem.shape == (2, 4)


@pytest.mark.parametrize("squeeze", [dict(batch_size=3), dict(num_timesteps=4)])
def test_squeeze(squeeze):
    run_pair(lambda: (dict(tau_syn=2.0), dict(tau_syn=2.0)),
             [torch.rand(12, 2, 3) * 2 for _ in range(2)], squeeze=squeeze)


def test_record_states():
    def args():
        return (dict(tau_syn=3.0, min_v_mem=-0.2, record_states=True),
                dict(tau_syn=3.0, min_v_mem=-0.2, record_states=True))
    ours, _ = run_pair(args, inputs_for((2, 7, 3)))
    assert set(ours.recordings) == {"v_mem", "i_syn"}


def test_nan_and_inf_inputs():
    x = torch.rand(2, 6, 4)
    x[0, 1, 0] = float("nan")
    x[1, 2, 1] = float("inf")
    x[1, 3, 2] = -float("inf")
    for kw in [{}, dict(min_v_mem=-1.0), dict(spike_fn=sa.SingleSpike)]:
        ours_kw = dict(kw, spike_fn=fa.SingleSpike) if kw.get("spike_fn") else kw
        a, b = fl.IAF(**ours_kw), sl.IAF(**kw)
        out_a, out_b = a(x), b(x)
        assert torch.equal(out_a.isnan(), out_b.isnan())
        assert torch.equal(out_a.nan_to_num(), out_b.nan_to_num())
        assert torch.equal(a.v_mem.nan_to_num(), b.v_mem.nan_to_num())


def test_negative_zero_spikes_are_bitwise_equal():
    x = -torch.rand(2, 5, 8)
    out_a, out_b = fl.IAF()(x), sl.IAF()(x)
    assert torch.equal(out_a.view(torch.int32), out_b.view(torch.int32))


def test_non_contiguous_input():
    base = torch.rand(6, 4, 3) * 2
    x = base.transpose(0, 1)  # (4, 6, 3), non-contiguous
    assert not x.is_contiguous()
    assert torch.equal(fl.IAF()(x), sl.IAF()(x))


def test_sinabs_activation_objects_run_fused():
    # Layers rebuilt from a sinabs layer's arg_dict keep sinabs' activation objects.
    theirs = sl.IAF(spike_fn=sa.MaxSpike(3), reset_fn=sa.MembraneReset(),
                    surrogate_grad_fn=sa.Gaussian())
    ours = fl.IAF(**theirs.arg_dict)
    x = torch.rand(2, 10, 4) * 5
    assert torch.equal(ours(x), theirs(x))


def test_custom_surrogate_callable():
    def surrogate(v, thr):
        return 1.0 / (1.0 + (v - thr).abs() * 3) ** 2

    run_pair(lambda: (dict(surrogate_grad_fn=surrogate), dict(surrogate_grad_fn=surrogate)),
             inputs_for((2, 8, 3), scale=3.0))


def test_custom_spike_function_falls_back_to_reference():
    # HalfSpike is not a built-in: the layer runs on the pure-PyTorch reference.
    run_pair(lambda: (dict(spike_fn=HalfSpike), dict(spike_fn=HalfSpike)), inputs_for((2, 6, 3)))


@pytest.mark.parametrize("value", [torch.tensor([0.5, 1.5, 1.0]), torch.tensor(0.7),
                                   torch.tensor([0.5, 1.5, 1.0], dtype=torch.float64)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_per_neuron_subtract_value(value, dtype):
    # A float64 subtract_value with dimensions promotes the state (and the reset product).
    run_pair(lambda: (dict(reset_fn=fa.MembraneSubtract(value)),
                      dict(reset_fn=sa.MembraneSubtract(value))),
             inputs_for((2, 9, 3), dtype=dtype, scale=3.0))


@pytest.mark.parametrize("threshold", [
    0.25, 4.0, torch.tensor([0.5, 1.0, 2.0, 8.0]),  # powers of two: multiply by the reciprocal
    torch.tensor([0.5, 1.0, 3.0, 8.0]),  # one is not: divide
    2.0 ** -126, 2.0 ** -149,  # the smallest normal; a subnormal, whose reciprocal overflows
])
def test_power_of_two_thresholds(threshold):
    # The CPU kernel replaces v / thr by v * (1 / thr) when every threshold is a power of two;
    # the results must stay bit-identical, also for inputs near multiples of the threshold.
    thr = torch.as_tensor(threshold, dtype=torch.float32)
    base = torch.randint(-40, 40, (2, 10, 4)).float() * (thr if thr.dim() == 0 else thr) / 3
    x = base + torch.randn(2, 10, 4) * 1e-7
    for spike in [(fa.MultiSpike, sa.MultiSpike), (fa.MaxSpike(3), sa.MaxSpike(3))]:
        ours = fl.IAF(spike_threshold=thr, spike_fn=spike[0], min_v_mem=-5.0 * thr.max().item())
        theirs = sl.IAF(spike_threshold=thr, spike_fn=spike[1],
                        min_v_mem=-5.0 * thr.max().item())
        assert torch.equal(ours(x), theirs(x))
        assert torch.equal(ours.v_mem, theirs.v_mem)
