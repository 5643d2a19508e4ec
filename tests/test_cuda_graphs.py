"""A training step of a small model of the fused layers captured as a CUDA graph (by hand with
torch.cuda.graph, and by torch.compile(mode="reduce-overhead")), replayed on new data and compared
with the same step run eagerly. A capture fails on any host synchronisation, pageable host-to-device
copy or allocation outside the caching allocator in the layers' call path. Skipped without a GPU
(benchmarks/gpu_check.sh runs these on one)."""

import copy

import pytest
import torch
import torch.nn as nn

import sinabs_fast.layers as fl

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

B, T, N_IN, N_OUT = 4, 12, 16, 8


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(N_IN, 32), fl.IAF(),
        nn.Linear(32, 32), fl.LIF(tau_mem=10.0, tau_syn=5.0, train_alphas=True),
        nn.Linear(32, 32), fl.ExpLeak(tau_mem=8.0),
        nn.Linear(32, 32), fl.ALIF(tau_mem=10.0, tau_adapt=20.0, adapt_scale=1.8),
        nn.Linear(32, N_OUT),
    ).cuda()


def _reset(model: nn.Module) -> None:
    for layer in model:
        if hasattr(layer, "reset_states"):
            layer.reset_states()


def _step(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A training step from fresh states: forward, loss, backward (gradients in .grad)."""
    _reset(model)
    loss = (model(x) * torch.linspace(-1, 1, N_OUT, device=x.device)).sum()
    loss.backward()
    return loss


def _eager_grads(model: nn.Module, x: torch.Tensor):
    model.zero_grad(set_to_none=True)
    loss = _step(model, x)
    return loss.detach(), [p.grad.clone() for p in model.parameters()]


def _inputs(seed: int) -> torch.Tensor:
    g = torch.Generator(device="cuda").manual_seed(seed)
    return torch.rand(B, T, N_IN, device="cuda", generator=g) * 2


def test_training_step_captured_by_hand_equals_eager():
    model = _model()
    reference = copy.deepcopy(model)
    static_x = _inputs(1).clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capture stream, as torch.cuda.graph requires
        for _ in range(3):
            model.zero_grad(set_to_none=True)
            _step(model, static_x)
    torch.cuda.current_stream().wait_stream(side)
    # The states zeroed in the capture are the buffers held now: keep them alive for the replays
    # (the layers hold the capture's outputs afterwards).
    held = list(model.buffers())
    model.zero_grad(set_to_none=True)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_loss = _step(model, static_x)
    for seed in (2, 3):
        x = _inputs(seed)
        static_x.copy_(x)
        graph.replay()
        torch.cuda.synchronize()
        loss, grads = _eager_grads(reference, x)
        assert torch.equal(static_loss, loss)
        for p, g in zip(model.parameters(), grads):
            assert torch.equal(p.grad, g)
    del held


def test_training_step_under_reduce_overhead_equals_eager():
    """The model compiled with CUDA graphs, in a training loop as a user writes it: fresh states,
    the compiled forward, the loss's backward."""
    model = _model()
    reference = copy.deepcopy(model)
    compiled = torch.compile(model, mode="reduce-overhead")
    weight = torch.linspace(-1, 1, N_OUT, device="cuda")
    for seed in (1, 2, 3, 4):
        x = _inputs(seed)
        torch.compiler.cudagraph_mark_step_begin()
        _reset(model)
        model.zero_grad(set_to_none=True)
        loss = (compiled(x) * weight).sum()
        loss.backward()
        loss = loss.detach().clone()
        grads = [p.grad.clone() for p in model.parameters()]
        ref_loss, ref_grads = _eager_grads(reference, x)
        torch.testing.assert_close(loss, ref_loss)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r)
