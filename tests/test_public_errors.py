"""Bad input at the public surface (layers, counters, conversion): each case raises the expected
exception with a message that names the argument. The raw ops' wrong arguments are
tests/test_op_errors.py's; empty batches and neuron counts, which are not errors,
tests/test_empty_inputs.py's.

Where sinabs runs on and produces garbage (a zero, negative or NaN threshold or time constant,
integer or boolean input), the error is a deliberate difference: docs/semantics.md, section 5."""

import math
import re

import pytest
import torch
import torch.nn as nn

import sinabs_fast
import sinabs_fast.layers as fl

X = (2, 3, 4)  # (batch, time, neurons)


def _call(layer_factory, x_shape=X, dtype=torch.float32):
    def run():
        x = torch.ones(x_shape, dtype=dtype) if dtype != torch.float32 else torch.rand(x_shape)
        return layer_factory()(x)
    return run


def _lif(**kwargs):
    return lambda: fl.LIF(**{"tau_mem": 10.0, **kwargs})


def _alif(**kwargs):
    return lambda: fl.ALIF(**{"tau_mem": 10.0, "tau_adapt": 20.0, **kwargs})


def _recurrent(n=4, **kwargs):
    return lambda: fl.LIFRecurrent(tau_mem=10.0, rec_connect=nn.Linear(n, n), **kwargs)


def _layers_with_input_errors():
    """(id, layer factory) for every neuron layer kind: the input checks are shared."""
    return [("IAF", fl.IAF), ("LIF", _lif()), ("ExpLeak", lambda: fl.ExpLeak(tau_mem=10.0)),
            ("ALIF", _alif()), ("LIFRecurrent", _recurrent())]


# (id, call, exception type, message pattern: it names the argument)
CASES = []
for name, factory in _layers_with_input_errors():
    CASES += [
        (f"{name}-rank1", _call(factory, (4,)), ValueError,
         rf"{name}: input_data must have shape \(batch, time, \.\.\.\), got \(4,\)"),
        (f"{name}-rank0", _call(factory, ()), ValueError, rf"{name}: input_data must have shape"),
        (f"{name}-no-time-steps", _call(factory, (2, 0, 4)), ValueError,
         rf"{name}: input_data has no time steps"),
    ]
    for dtype in (torch.int64, torch.int32, torch.bool, torch.complex64):
        CASES.append((f"{name}-{dtype}", _call(factory, X, dtype), TypeError,
                      rf"{name}: input_data must be float16, bfloat16, float32 or float64, got "
                      rf"{re.escape(str(dtype))}"))
CASES += [
    ("IAF-list-input", lambda: fl.IAF()([[1.0, 2.0]]), TypeError,
     r"IAF: input_data must be a torch.Tensor, got <class 'list'>"),
    # Squeeze layers: the rows must split into batch_size x num_timesteps.
    ("IAFSqueeze-batch-does-not-divide", _call(lambda: fl.IAFSqueeze(batch_size=3), (10, 4)),
     RuntimeError, r"input_data has 10 rows, which do not split into batch_size=3"),
    ("LIFSqueeze-time-does-not-divide",
     _call(lambda: fl.LIFSqueeze(tau_mem=10.0, num_timesteps=3), (10, 4)), RuntimeError,
     r"input_data has 10 rows, which do not split into batch_size=-1 x num_timesteps=3"),
    ("ALIFSqueeze-batch-does-not-divide",
     _call(lambda: fl.ALIFSqueeze(tau_mem=10.0, tau_adapt=20.0, batch_size=4), (10, 4)),
     RuntimeError, r"do not split into batch_size=4"),
    ("IAFSqueeze-neither-size", lambda: fl.IAFSqueeze(), TypeError,
     r"specify either batch_size or num_timesteps"),
    ("IAFSqueeze-negative-batch", lambda: fl.IAFSqueeze(batch_size=-2), ValueError,
     r"batch_size must be a positive integer"),
    ("LIFSqueeze-negative-time", lambda: fl.LIFSqueeze(tau_mem=10.0, num_timesteps=-3),
     ValueError, r"num_timesteps must be a positive integer"),
    # Per-neuron tensors that do not broadcast against the state (batch, *trailing).
    ("LIF-tau_mem-does-not-broadcast", _call(_lif(tau_mem=torch.full((5,), 10.0))), ValueError,
     r"alpha_mem = exp\(-1 / tau_mem\) of shape \(5,\) does not broadcast against the layer's "
     r"state shape \(batch, \*trailing\) = \(2, 4\)"),
    ("LIF-tau_syn-does-not-broadcast", _call(_lif(tau_syn=torch.full((5,), 5.0))), ValueError,
     r"alpha_syn = exp\(-1 / tau_syn\) of shape \(5,\) does not broadcast"),
    ("IAF-threshold-does-not-broadcast", _call(lambda: fl.IAF(spike_threshold=torch.ones(5))),
     ValueError, r"spike_threshold of shape \(5,\) does not broadcast"),
    ("IAF-min_v_mem-does-not-broadcast", _call(lambda: fl.IAF(min_v_mem=-torch.ones(5))),
     ValueError, r"min_v_mem of shape \(5,\) does not broadcast"),
    ("ALIF-tau_adapt-does-not-broadcast", _call(_alif(tau_adapt=torch.full((5,), 20.0))),
     ValueError, r"alpha_adapt = exp\(-1 / tau_adapt\) of shape \(5,\) does not broadcast"),
    ("LIFRecurrent-rec_connect-of-another-size", _call(_recurrent(5)), RuntimeError,
     r"mat1 and mat2 shapes cannot be multiplied"),
]
# Thresholds and time constants: zero, negative, NaN (sinabs runs on with them).
for bad in (0.0, -1.0, math.nan):
    CASES += [
        (f"IAF-threshold-{bad}", lambda bad=bad: fl.IAF(spike_threshold=bad), ValueError,
         rf"spike_threshold must be positive, got {bad}"),
        (f"ALIF-threshold-{bad}", lambda bad=bad: _alif(spike_threshold=bad)(), ValueError,
         rf"spike_threshold must be positive, got {bad}"),
        (f"LIF-tau_mem-{bad}", lambda bad=bad: _lif(tau_mem=bad)(), ValueError,
         rf"tau_mem must be positive, got {bad}"),
        (f"LIF-alphas-tau_mem-{bad}", lambda bad=bad: _lif(tau_mem=bad, train_alphas=True)(),
         ValueError, rf"tau_mem must be positive, got {bad}"),
        (f"ExpLeak-tau_mem-{bad}", lambda bad=bad: fl.ExpLeak(tau_mem=bad), ValueError,
         rf"tau_mem must be positive, got {bad}"),
        (f"ALIF-tau_adapt-{bad}", lambda bad=bad: _alif(tau_adapt=bad)(), ValueError,
         rf"tau_adapt must be positive, got {bad}"),
        (f"LIFRecurrent-tau_mem-{bad}", lambda bad=bad: fl.LIFRecurrent(
            tau_mem=bad, rec_connect=nn.Linear(4, 4)), ValueError,
         rf"tau_mem must be positive, got {bad}"),
    ]
CASES += [
    ("LIF-tau_syn-0", _lif(tau_syn=0.0), ValueError, r"tau_syn must be positive, got 0.0"),
    ("IAF-tau_syn-negative", lambda: fl.IAF(tau_syn=-2.0), ValueError,
     r"tau_syn must be positive, got -2.0"),
    ("ALIF-tau_syn-negative", _alif(tau_syn=-2.0), ValueError,
     r"tau_syn must be positive, got -2.0"),
    ("LIF-per-neuron-tau_mem-with-a-negative", _lif(tau_mem=torch.tensor([10.0, -1.0, 3.0])),
     ValueError, r"tau_mem must be positive, got a tensor with 3 elements, smallest -1.0"),
    ("IAF-complex-threshold", lambda: fl.IAF(spike_threshold=torch.tensor(1j)), ValueError,
     r"spike_threshold must be a positive real number, got torch.complex64"),
    # Counters.
    ("SNNAnalyzer-not-a-module", lambda: sinabs_fast.SNNAnalyzer("model"), TypeError,
     r"model must be a torch.nn.Module, got str"),
    ("SNNAnalyzer-nothing-to-count", lambda: sinabs_fast.SNNAnalyzer(nn.Sequential(nn.ReLU())),
     ValueError, r"model: no spiking, Conv2d or Linear layer to analyse"),
    ("SNNSynOpCounter-nothing-to-count",
     lambda: sinabs_fast.SNNSynOpCounter(nn.Sequential(nn.ReLU())), ValueError,
     r"model: no Conv2d or Linear layer to count synaptic operations of"),
    ("SynOpCounter-no-NeuromorphicReLU",
     lambda: sinabs_fast.SynOpCounter(nn.Sequential(nn.ReLU()).modules()), ValueError,
     r"modules: no NeuromorphicReLU with fanout > 0 found"),
    # Conversion and model utilities.
    ("from_sinabs-not-a-module", lambda: sinabs_fast.from_sinabs("model"), TypeError,
     r"model must be a torch.nn.Module, got str"),
    ("from_model-not-a-module", lambda: sinabs_fast.from_model("ann", batch_size=1), TypeError,
     r"model must be a torch.nn.Module, got str"),
    ("from_model-squeeze-without-sizes",
     lambda: sinabs_fast.from_model(nn.Sequential(nn.Linear(3, 2), nn.ReLU())), TypeError,
     r"from_model: a squeeze layer class needs batch_size or num_timesteps"),
    ("from_model-unknown-backend", lambda: sinabs_fast.from_model(
        nn.Sequential(nn.ReLU()), batch_size=1, backend="exodus"), ValueError,
     r"backend must be 'sinabs' or 'sinabs_fast', got 'exodus'"),
    ("reset_states-not-a-module", lambda: sinabs_fast.reset_states("model"), TypeError,
     r"model must be a torch.nn.Module, got str"),
    ("set_batch_size-negative",
     lambda: sinabs_fast.set_batch_size(nn.Sequential(fl.IAFSqueeze(batch_size=2)), -3),
     ValueError, r"batch_size must be a positive integer"),
]


@pytest.mark.filterwarnings("ignore:The 'backend' argument is deprecated")
@pytest.mark.parametrize("call, error, message", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_the_case_ids_are_unique():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
