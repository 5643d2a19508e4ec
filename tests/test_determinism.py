"""Forward and backward are bitwise identical across runs and across CPU thread counts (1, 2, 4).

The shapes are large enough that the kernels really split their work over threads: a CPU call
runs inline below 32768 neuron-steps per chunk (csrc/cpu/row_parallel.h, kGrainNeuronSteps).
The single-step layers split (B, N) into segments that depend on the thread count
(make_segments): B=4, T=64, N=2048 gives 4 to 8 segments of 1024 to 2048 neurons, 65536 or more
neuron-steps each. The recurrent backward splits its batch rows into one chunk per thread
(csrc/cpu/lif_recurrent_cpu.cpp): B=8, T=24, N=192 gives chunks of 1.8M products or more.

The recurrent layers' forward is the one exception across thread counts, and it is torch's: its
recurrent products must round as nn.Linear's (the forward is bit-identical to sinabs), and
torch's CPU matrix product (MKL here) rounds an (8, 192) x (192, 192) product differently with 1
thread than with 2 or more. sinabs' own LIFRecurrent differs across thread counts the same way;
the tests below pin that down: the fused backward, given one forward, is bitwise the same at every
thread count, and the forward equals sinabs' at each thread count.
"""

from contextlib import contextmanager
from functools import partial
from typing import Callable, Dict, Optional

import pytest
import torch

import sinabs_fast.layers as fl

THREADS = (1, 2, 4)
SEQ = (4, 64, 2048)  # (B, T, N)
REC = (8, 24, 192)


def _recurrent(tau_syn: Optional[float] = None, module=fl):
    torch.manual_seed(3)
    return module.LIFRecurrent(tau_mem=20.0, tau_syn=tau_syn, rec_connect=torch.nn.Linear(192, 192),
                           train_alphas=True)


# name -> (a fresh layer, (B, T, N)); layers are built under a fixed seed, so identical.
FEEDFORWARD: Dict[str, tuple] = {
    "iaf": (lambda: fl.IAF(min_v_mem=-1.0), SEQ),
    "lif_norm_input_alpha": (lambda: fl.LIF(tau_mem=30.0, train_alphas=True), SEQ),
    "lif_tau_syn_alphas": (lambda: fl.LIF(tau_mem=30.0, tau_syn=8.0, train_alphas=True), SEQ),
    "exp_leak": (lambda: fl.ExpLeak(tau_mem=30.0, train_alphas=True), SEQ),
    "alif_alphas": (lambda: fl.ALIF(tau_mem=30.0, tau_adapt=60.0, tau_syn=8.0,
                                    train_alphas=True), SEQ),
}
# name -> tau_syn of an LIFRecurrent with a Linear rec_connect, shape REC.
RECURRENT: Dict[str, Optional[float]] = {"lif_recurrent_linear": None,
                                         "lif_recurrent_linear_syn": 6.0}


@contextmanager
def _threads(count: int):
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _run(make: Callable, shape: tuple, threads: int, backward_threads: Optional[int] = None
         ) -> Dict[str, torch.Tensor]:
    """Outputs, final states and every gradient of one forward (on ``threads`` threads) and
    backward (on ``backward_threads``, by default the same) of the layer ``make()`` builds."""
    with _threads(threads):
        torch.manual_seed(0)
        layer = make()
        x = (torch.rand(shape) * 4.0).requires_grad_(True)
        weights = torch.randn(shape)
        out = layer(x)
        loss = (out * weights).sum() + layer.v_mem.square().sum()
    with _threads(backward_threads or threads):
        loss.backward()
    result = {"output": out.detach(), "v_mem": layer.v_mem.detach(), "input.grad": x.grad}
    result.update({f"{n}.grad": p.grad for n, p in layer.named_parameters()
                   if p.grad is not None})
    return result


def _assert_identical(case: str, runs: Dict[object, Dict[str, torch.Tensor]]) -> None:
    first = next(iter(runs.values()))
    # Non-trivial runs: spikes, and parameter gradients besides the input's.
    assert first["output"].sum() > 0
    assert len(first) > 3 or case == "iaf"
    for label, run in runs.items():
        assert run.keys() == first.keys()
        for name, value in run.items():
            assert torch.equal(value, first[name]), (
                f"{case}: {name} in run {label} differs from the first by up to "
                f"{(value - first[name]).abs().max().item():.3g}")


@pytest.mark.parametrize("case", FEEDFORWARD)
def test_bitwise_identical_across_runs_and_thread_counts(case):
    make, shape = FEEDFORWARD[case]
    runs = {threads: _run(make, shape, threads) for threads in THREADS}
    runs["again"] = _run(make, shape, THREADS[-1])
    _assert_identical(case, runs)


@pytest.mark.parametrize("case", RECURRENT)
def test_recurrent_backward_identical_across_thread_counts(case):
    """The backward's batch split over threads: the same forward (one thread), then the
    backward on 1, 2 and 4 threads, and again on 4."""
    make = partial(_recurrent, RECURRENT[case])
    runs = {threads: _run(make, REC, 1, backward_threads=threads) for threads in THREADS}
    runs["again"] = _run(make, REC, 1, backward_threads=THREADS[-1])
    _assert_identical(case, runs)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("case", RECURRENT)
def test_recurrent_identical_across_runs_and_as_sinabs_per_thread_count(case, threads):
    """At a fixed thread count, forward and backward repeat bitwise; the forward equals sinabs'
    at that thread count (so its dependence on the thread count is nn.Linear's, see above)."""
    make = partial(_recurrent, RECURRENT[case])
    ours = _run(make, REC, threads)
    _assert_identical(case, {"first": ours, "again": _run(make, REC, threads)})
    sl = pytest.importorskip("sinabs.layers", reason="sinabs 3.1.3 is the oracle")
    theirs = _run(partial(_recurrent, RECURRENT[case], module=sl), REC, threads)
    for name in ("output", "v_mem"):
        assert torch.equal(ours[name], theirs[name]), name
