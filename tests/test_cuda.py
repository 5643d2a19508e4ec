"""CUDA kernels against the CPU path and against sinabs running on CUDA. Skipped without a GPU
(the development and CI machines have none; benchmarks/gpu_check.sh runs these on one)."""

import copy
import itertools

import pytest
import sinabs.activation as sa
import sinabs.layers as sl
import torch

import sinabs_fast.activation as fa
import sinabs_fast.layers as fl
from conftest import assert_grads_close

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CONFIGS = list(itertools.product(
    ["multi", "single", "max2"], ["subtract", "reset"], [None, 3.0], [None, -0.5],
    [torch.float32, torch.float64]))
SPIKES = {"multi": (fa.MultiSpike, sa.MultiSpike), "single": (fa.SingleSpike, sa.SingleSpike),
          "max2": (fa.MaxSpike(2), sa.MaxSpike(2))}
RESETS = {"subtract": (fa.MembraneSubtract(), sa.MembraneSubtract()),
          "reset": (fa.MembraneReset(), sa.MembraneReset())}


def _run(layer, xs):
    outs = []
    for x in xs:
        outs.append(layer(x))
    loss = sum((o.double() * (k + 1)).sum() for k, o in enumerate(outs))
    loss.backward()
    return outs


@pytest.mark.parametrize("spike,reset,syn,min_v,dtype", CONFIGS)
def test_cuda_matches_cpu(spike, reset, syn, min_v, dtype):
    kw = dict(spike_fn=SPIKES[spike][0], reset_fn=RESETS[reset][0], tau_syn=syn, min_v_mem=min_v)
    xs = [(torch.rand(3, 20, 7) * 2).to(dtype) for _ in range(2)]
    cpu_in = [x.clone().requires_grad_() for x in xs]
    gpu_in = [x.cuda().requires_grad_() for x in xs]
    cpu, gpu = fl.IAF(**kw), fl.IAF(**kw).cuda()
    for a, b in zip(_run(cpu, cpu_in), _run(gpu, gpu_in)):
        assert torch.equal(a, b.cpu())
    assert torch.equal(cpu.v_mem, gpu.v_mem.cpu())
    for a, b in zip(cpu_in, gpu_in):
        assert_grads_close(b.grad.cpu(), a.grad)


@pytest.mark.parametrize("syn", [None, 4.0])
def test_cuda_matches_sinabs_on_cuda(syn):
    x = torch.rand(4, 30, 16, device="cuda") * 2
    a, b = fl.IAF(tau_syn=syn).cuda(), sl.IAF(tau_syn=syn).cuda()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    oa, ob = a(xa), b(xb)
    assert torch.equal(oa, ob) and torch.equal(a.v_mem, b.v_mem)
    oa.sum().backward()
    ob.sum().backward()
    assert_grads_close(xa.grad, xb.grad)


def test_moved_layer_keeps_state_semantics():
    layer = fl.IAF(tau_syn=2.0)
    layer(torch.rand(2, 5, 3))
    layer = layer.cuda()
    assert layer.v_mem.is_cuda
    out = layer(torch.rand(2, 5, 3, device="cuda"))
    assert out.is_cuda and layer.i_syn.is_cuda


def test_mixed_devices_get_a_clear_error():
    layer = fl.IAF(spike_threshold=torch.ones(3)).cuda()
    with pytest.raises(RuntimeError, match="on cpu|device"):
        torch.ops.sinabs_fast.lif_forward.default(
            torch.rand(2, 4, 3, device="cuda"), torch.zeros(2, 3), None, torch.tensor(1.0), None,
            False, torch.ones(3, device="cuda"), torch.tensor(1.0), None, 1, float("inf"), 0, 0.0,
            0, [0.5, 1.0], True, False)
    assert layer(torch.rand(2, 4, 3, device="cuda")).is_cuda


@pytest.mark.parametrize("spike,reset,syn,min_v", list(itertools.product(
    ["single", "multi"], ["subtract", "reset"], [None, 3.0], [None, -0.5])))
def test_alif_cuda_matches_cpu(spike, reset, syn, min_v):
    """The ALIF CUDA kernels against the CPU ones: spikes and states equal, gradients (input and
    the trained time constants) close."""
    kw = dict(tau_mem=8.0, tau_adapt=15.0, tau_syn=syn, min_v_mem=min_v,
              spike_fn=SPIKES[spike][0], reset_fn=RESETS[reset][0])
    cpu, gpu = fl.ALIF(**kw), fl.ALIF(**kw).cuda()
    xs = [torch.rand(3, 20, 7) * 3 for _ in range(2)]
    cpu_in = [x.clone().requires_grad_() for x in xs]
    gpu_in = [x.cuda().requires_grad_() for x in xs]
    for a, b in zip(_run(cpu, cpu_in), _run(gpu, gpu_in)):
        assert torch.equal(a, b.cpu())
    assert torch.equal(cpu.b, gpu.b.cpu()) and torch.equal(cpu.v_mem, gpu.v_mem.cpu())
    for a, b in zip(cpu_in, gpu_in):
        assert_grads_close(b.grad.cpu(), a.grad)
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters()):
        assert_grads_close(p_gpu.grad.cpu(), p_cpu.grad, rtol=1e-4)


def test_recurrent_layer_on_cuda_matches_sinabs_on_cuda():
    """On CUDA LIFRecurrent runs its per-step path (the fused linear-recurrent op is CPU-only);
    cuBLAS computes rec_connect for both, so the results match sinabs on the same device."""
    rec = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 6)).cuda()
    ours = fl.LIFRecurrent(10.0, rec, tau_syn=2.0).cuda()
    theirs = sl.LIFRecurrent(10.0, copy.deepcopy(rec), tau_syn=2.0).cuda()
    x = torch.rand(2, 15, 6, device="cuda") * 2
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert torch.equal(out_ours, out_theirs)
    out_ours.sum().backward()
    out_theirs.sum().backward()
    assert_grads_close(x_ours.grad, x_theirs.grad)
