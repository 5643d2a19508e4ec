"""Property-based fuzzing of the fused neuron layers (hypothesis): random layer kinds (IAF, LIF,
ExpLeak, ALIF, their Squeeze forms), options (time constants, scalar or per-neuron; synaptic
current; norm_input; trainable alphas; min_v_mem; spike, reset and surrogate functions;
thresholds; recordings), shapes (1 or 2 trailing dimensions, up to 300 steps), input layouts
(strides) and dtypes, over one or two calls with the states carried. The fused layer must give
the oracle's outputs, states and recordings bit for bit and its input and parameter gradients
to rounding. The oracle is sinabs 3.1.3 where it is installed, else the same layer forced onto
``sinabs_fast.reference`` (the fused plan disabled).

The normal test run tries a bounded number of examples (a few seconds); ``make fuzz`` runs a
long campaign: ``SINABS_FAST_FUZZ_EXAMPLES`` sets the number.
"""

import contextlib
import os
from unittest import mock

import pytest
import torch

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import sinabs_fast.activation as fa  # noqa: E402
import sinabs_fast.layers as fl  # noqa: E402
from conftest import assert_grads_close  # noqa: E402
from sinabs_fast.layers.functional import alif as functional_alif  # noqa: E402
from sinabs_fast.layers.functional import lif as functional_lif  # noqa: E402

try:
    import sinabs.activation as oracle_activation
    import sinabs.layers as oracle_layers
except ImportError:  # the oracle is then the reference (see reference_twin)
    oracle_activation, oracle_layers = fa, fl

EXAMPLES = int(os.environ.get("SINABS_FAST_FUZZ_EXAMPLES", "40"))

# name -> constructor of (ours, oracle's) activation objects, from a library's activation module
SPIKES = {
    "multi": lambda a: a.MultiSpike,
    "single": lambda a: a.SingleSpike,
    "max2": lambda a: a.MaxSpike(2),
}
RESETS = {
    "subtract": lambda a: a.MembraneSubtract(),
    "subtract0.5": lambda a: a.MembraneSubtract(subtract_value=0.5),
    "reset": lambda a: a.MembraneReset(),
    "reset0.1": lambda a: a.MembraneReset(0.1),
}
SURROGATES = {
    "single_exp": lambda a: a.SingleExponential(),
    "single_exp_wide": lambda a: a.SingleExponential(1.5, 0.3),
    "periodic": lambda a: a.PeriodicExponential(0.4, 2.0),
    "heaviside": lambda a: a.Heaviside(0.5),
    "gaussian": lambda a: a.Gaussian(0.1, 0.4, 1.5),
    "multi_gaussian": lambda a: a.MultiGaussian(),
}
LAYOUTS = ("contiguous", "transposed", "sliced_neurons", "sliced_time", "broadcast_batch")
TAUS = st.floats(1.5, 40.0, allow_nan=False, width=32)
THRESHOLDS = st.sampled_from([0.25, 0.5, 0.7, 1.0, 1.3, 2.0])


@st.composite
def cases(draw):
    """One fuzz case: (layer name, constructor options, activation names, shapes, layout,
    dtype, input scale, calls)."""
    kind = draw(st.sampled_from(["IAF", "LIF", "ExpLeak", "ALIF"]))
    trailing = tuple(draw(st.lists(st.integers(1, 7), min_size=1, max_size=2)))
    batch = draw(st.integers(1, 4))
    steps = draw(st.sampled_from([1, 2, 3, 5, 8, 13, 40, 300]))
    per_neuron = draw(st.booleans())

    def tau():
        if per_neuron and kind != "ALIF":
            return ("per_neuron", draw(TAUS))  # filled with a ramp around this value
        return draw(TAUS)

    options = {}
    activations = {}
    if kind in ("LIF", "ExpLeak", "ALIF"):
        options["tau_mem"] = tau()
        options["norm_input"] = draw(st.booleans())
        options["train_alphas"] = draw(st.booleans())
    if kind == "ALIF":
        options["tau_adapt"] = draw(TAUS)
        options["adapt_scale"] = draw(st.sampled_from([0.5, 1.0, 1.8]))
    if kind != "ExpLeak":
        if draw(st.booleans()):
            options["tau_syn"] = draw(TAUS) if kind == "ALIF" else tau()
        options["spike_threshold"] = draw(THRESHOLDS)
        activations = {
            "spike_fn": draw(st.sampled_from(sorted(SPIKES))),
            "reset_fn": draw(st.sampled_from(sorted(RESETS))),
            "surrogate_grad_fn": draw(st.sampled_from(sorted(SURROGATES))),
        }
        options["record_states"] = draw(st.booleans())
    if draw(st.booleans()):
        options["min_v_mem"] = draw(st.sampled_from([-2.0, -1.0, -0.5, -0.1]))
    squeeze = draw(st.booleans())
    return dict(
        kind=kind, squeeze=squeeze, options=options, activations=activations, batch=batch,
        steps=steps, trailing=trailing,
        layout="contiguous" if squeeze else draw(st.sampled_from(LAYOUTS)),
        dtype=draw(st.sampled_from([torch.float32, torch.float64])),
        scale=draw(st.sampled_from([0.5, 1.0, 3.0])),
        negative=draw(st.sampled_from([0.0, 0.3])),
        calls=draw(st.integers(1, 2)),
        seed=draw(st.integers(0, 2**16)),
    )


def _build(library, activation, case, squeeze: bool):
    options = dict(case["options"])
    shape = case["trailing"]
    for name, value in options.items():
        if isinstance(value, tuple):  # a per-neuron time constant: a ramp around the value
            options[name] = torch.linspace(0.7, 1.3, int(torch.tensor(shape).prod())).reshape(
                shape) * value[1]
    if "spike_threshold" in options:
        options["spike_threshold"] = torch.tensor(options["spike_threshold"])
    for name, key in case["activations"].items():
        table = {"spike_fn": SPIKES, "reset_fn": RESETS, "surrogate_grad_fn": SURROGATES}[name]
        options[name] = table[key](activation)
    name = case["kind"]
    if squeeze:
        name += "Squeeze"
        options["batch_size"] = case["batch"]
    return getattr(library, name)(**options)


def _input(case, call: int, squeeze: bool):
    generator = torch.Generator().manual_seed(case["seed"] + call)
    batch, steps, trailing = case["batch"], case["steps"], case["trailing"]
    full = (batch, steps, *trailing)
    x = (torch.rand(full, generator=generator, dtype=torch.float64) - case["negative"])
    x = (x * case["scale"]).to(case["dtype"])
    layout = case["layout"]
    if layout == "transposed":
        x = x.transpose(0, 1).contiguous().transpose(0, 1)
    elif layout == "sliced_neurons":
        wide = torch.zeros(*full[:-1], 2 * full[-1], dtype=x.dtype)
        wide[..., ::2] = x
        x = wide[..., ::2]
    elif layout == "sliced_time":
        long = torch.zeros(batch, 2 * steps, *trailing, dtype=x.dtype)
        long[:, ::2] = x
        x = long[:, ::2]
    elif layout == "broadcast_batch":
        x = x[:1].expand(full)
    if squeeze:
        x = x.reshape(batch * steps, *trailing)
    return x


@contextlib.contextmanager
def reference_twin():
    """Without sinabs: the oracle is the same layer on sinabs_fast.reference (no fused plan)."""
    if oracle_layers is not fl:
        yield
        return
    with mock.patch.object(functional_lif, "fused_plan", return_value=None), \
            mock.patch.object(functional_alif, "alif_plan", return_value=None):
        yield


def _run(layer, case, oracle: bool, squeeze: bool):
    """Outputs (each (B, T, ...)), states and recordings of every call; the inputs' and the
    parameters' gradients of a weighted loss on all outputs."""
    outputs, inputs = [], []
    loss = 0
    with reference_twin() if oracle else contextlib.nullcontext():
        for call in range(case["calls"]):
            x = _input(case, call, squeeze).requires_grad_()
            out = layer(x).reshape(case["batch"], case["steps"], *case["trailing"])
            outputs.append((out.detach(), {n: b.detach().clone() for n, b in
                                           layer.named_buffers()},
                            {n: r.detach().clone() for n, r in
                             getattr(layer, "recordings", {}).items()}))
            weight = torch.linspace(0.5, 1.5, out.numel(), dtype=torch.float64).reshape(out.shape)
            loss = loss + (out.double() * weight).sum()
            inputs.append(x)
        if loss.requires_grad:
            loss.backward()
    grads = [None if x.grad is None else x.grad.reshape(out.shape) for x in inputs]
    # A parameter the loss does not reach (tau_adapt over a single step) has no gradient in
    # sinabs' graph and a zero one from the fused backward: both count as zero.
    params = {n: torch.zeros_like(p) if p.grad is None else p.grad
              for n, p in layer.named_parameters() if p.requires_grad}
    return outputs, grads, params


def check(case) -> None:
    """The fused layer against the oracle on one case (a Squeeze layer against the oracle's
    plain layer on the (B, T, ...) view: sinabs has no ALIFSqueeze)."""
    ours = _build(fl, fa, case, case["squeeze"])
    theirs = _build(oracle_layers, oracle_activation, case, squeeze=False)
    got, got_grads, got_params = _run(ours, case, oracle=False, squeeze=case["squeeze"])
    want, want_grads, want_params = _run(theirs, case, oracle=True, squeeze=False)
    for call, ((out, states, recs), (ref_out, ref_states, ref_recs)) in enumerate(zip(got, want)):
        assert out.dtype == ref_out.dtype and out.shape == ref_out.shape
        torch.testing.assert_close(out, ref_out, rtol=0, atol=0, equal_nan=True,
                                   msg=lambda m: f"output of call {call}: {m}")
        for name, ref in ref_states.items():
            torch.testing.assert_close(states[name], ref, rtol=0, atol=0, equal_nan=True,
                                       msg=lambda m: f"state {name} after call {call}: {m}")
        assert recs.keys() == ref_recs.keys()
        for name, ref in ref_recs.items():
            torch.testing.assert_close(recs[name], ref, rtol=0, atol=0, equal_nan=True,
                                       msg=lambda m: f"recording {name} of call {call}: {m}")
    for grad, ref in zip(got_grads, want_grads):
        assert (grad is None) == (ref is None)
        if ref is not None:
            assert_grads_close(grad, ref.to(grad.dtype), rtol=1e-4)
    assert got_params.keys() == want_params.keys()
    for name, ref in want_params.items():
        assert_grads_close(got_params[name], ref, rtol=1e-4)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100,
          database=None if EXAMPLES <= 100 else hypothesis.settings.default.database,
          suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_fused_layers_equal_the_oracle(case):
    torch.manual_seed(case["seed"])
    check(case)
