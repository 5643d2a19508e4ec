"""CUDA kernels against the CPU path and against sinabs running on CUDA. Skipped without a GPU
(the development and CI machines have none; benchmarks/gpu_check.sh runs these on one)."""

import copy
import itertools

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.layers as sl
import torch

import sinabs_fast.layers as fl
from sinabs_fast import ops as fops
from conftest import assert_grads_close
from sinabs_pairs import RESETS, SPIKES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CONFIGS = list(itertools.product(
    ["multi", "single", "max2"], ["subtract", "reset"], [None, 3.0], [None, -0.5],
    [torch.float32, torch.float64]))


def _run(layer, xs):
    outs = []
    for x in xs:
        outs.append(layer(x))
    loss = sum((o.double() * (k + 1)).sum() for k, o in enumerate(outs))
    loss.backward()
    return outs


# The layers compute their alphas (exp(-1 / tau)) with torch ops on their device, and torch's
# CUDA exp may round differently from its CPU exp by an ulp. So the layers on CUDA are compared
# with sinabs on CUDA (which computes the same alphas), and the kernels with the CPU kernels
# through the ops, with bitwise-identical parameter tensors.


@pytest.mark.parametrize("spike,reset,syn,min_v,dtype", CONFIGS)
def test_cuda_matches_sinabs_on_cuda(spike, reset, syn, min_v, dtype):
    """Two consecutive calls: outputs and states torch.equal, input gradients close."""
    ours = fl.IAF(spike_fn=SPIKES[spike][0], reset_fn=RESETS[reset][0], tau_syn=syn,
                  min_v_mem=min_v).cuda()
    theirs = sl.IAF(spike_fn=SPIKES[spike][1], reset_fn=RESETS[reset][1], tau_syn=syn,
                    min_v_mem=min_v).cuda()
    xs = [(torch.rand(3, 20, 7, device="cuda") * 2).to(dtype) for _ in range(2)]
    ours_in = [x.clone().requires_grad_() for x in xs]
    theirs_in = [x.clone().requires_grad_() for x in xs]
    for a, b in zip(_run(ours, ours_in), _run(theirs, theirs_in)):
        assert torch.equal(a, b)
    assert torch.equal(ours.v_mem, theirs.v_mem)
    if syn is not None:
        assert torch.equal(ours.i_syn, theirs.i_syn)
    for a, b in zip(ours_in, theirs_in):
        assert_grads_close(a.grad, b.grad)


@pytest.mark.parametrize("spike,reset,syn,min_v,dtype", CONFIGS)
def test_cuda_kernels_match_cpu_kernels(spike, reset, syn, min_v, dtype):
    """The ops with the same parameter tensors on both devices: every output torch.equal (the
    shared header math, -fmad=false on CUDA, -ffp-contract=off on the CPU), gradients close."""
    kinds = {"multi": (1, float("inf")), "single": (2, float("inf")), "max2": (1, 2.0)}
    spike_kind, max_spikes = kinds[spike]
    B, T, N = 3, 20, 7
    tensor = lambda v: torch.tensor(v, dtype=dtype)  # noqa: E731
    x = (torch.rand(B, T, N) * 2).to(dtype)
    v0 = torch.rand(B, N, dtype=dtype)
    i0 = torch.rand(B, N, dtype=dtype) if syn else None
    alpha_syn = torch.exp(-1 / tensor(syn)) if syn else None
    args = [x, v0, i0, torch.rand(N, dtype=dtype) * 0.2 + 0.8, alpha_syn, True, tensor(1.0),
            tensor(1.0), tensor(min_v) if min_v is not None else None, spike_kind, max_spikes,
            0 if reset == "subtract" else 1, 0.0, 0, [0.5, 1.0], True, syn is not None]
    grads = {0: x, 1: v0} | ({2: i0} if syn else {})
    results = []
    for device in ("cpu", "cuda"):
        dev_args = [a.to(device) if isinstance(a, torch.Tensor) else a for a in args]
        leaves = {i: dev_args[i].clone().requires_grad_() for i in grads}
        for i, t in leaves.items():
            dev_args[i] = t
        outs = torch.ops.sinabs_fast.lif_forward.default(*dev_args)
        loss = sum((o.double() * (k + 1)).sum() for k, o in enumerate(outs)
                   if o.numel() and o.requires_grad)
        loss.backward()
        results.append(([o.detach().cpu() for o in outs],
                        [leaves[i].grad.cpu() for i in sorted(leaves)]))
    (cpu_outs, cpu_grads), (cuda_outs, cuda_grads) = results
    for a, b in zip(cpu_outs, cuda_outs):
        assert torch.equal(a, b)
    for a, b in zip(cpu_grads, cuda_grads):
        assert_grads_close(b, a)


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
def test_alif_cuda_matches_sinabs_on_cuda(spike, reset, syn, min_v):
    """The ALIF CUDA kernels against sinabs on CUDA over two calls: spikes and states equal,
    gradients (input and the trained time constants) close."""
    kw = dict(tau_mem=8.0, tau_adapt=15.0, tau_syn=syn, min_v_mem=min_v)
    ours = fl.ALIF(spike_fn=SPIKES[spike][0], reset_fn=RESETS[reset][0], **kw).cuda()
    theirs = sl.ALIF(spike_fn=SPIKES[spike][1], reset_fn=RESETS[reset][1], **kw).cuda()
    xs = [torch.rand(3, 20, 7, device="cuda") * 3 for _ in range(2)]
    ours_in = [x.clone().requires_grad_() for x in xs]
    theirs_in = [x.clone().requires_grad_() for x in xs]
    for a, b in zip(_run(ours, ours_in), _run(theirs, theirs_in)):
        assert torch.equal(a, b)
    assert torch.equal(ours.b, theirs.b) and torch.equal(ours.v_mem, theirs.v_mem)
    for a, b in zip(ours_in, theirs_in):
        assert_grads_close(a.grad, b.grad)
    theirs_grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        expected = theirs_grads[name].grad
        if expected is None:  # sinabs' graph does not reach it (reset to a value): ours is 0
            assert p.grad is None or not p.grad.any()
        else:
            assert_grads_close(p.grad, expected, rtol=1e-4)


@pytest.mark.parametrize("kind", ["LIFRecurrent", "ALIFRecurrent"])
def test_recurrent_layer_on_cuda_matches_sinabs_on_cuda(kind):
    """On CUDA the recurrent layers with a linear rec_connect run the recurrent op, whose
    products are nn.Linear's addmm on cuBLAS, as sinabs' rec_connect on the same device: spikes
    and states equal, gradients (input, weight, bias) close."""
    rec = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 6)).cuda()
    theirs_rec = copy.deepcopy(rec)
    taus = (10.0, 15.0) if kind == "ALIFRecurrent" else (10.0,)
    ours = getattr(fl, kind)(*taus, rec, tau_syn=2.0).cuda()
    theirs = getattr(sl, kind)(*taus, theirs_rec, tau_syn=2.0).cuda()
    x = torch.rand(2, 15, 6, device="cuda") * 2
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_ours, out_theirs = ours(x_ours), theirs(x_theirs)
    assert torch.equal(out_ours, out_theirs)
    assert torch.equal(ours.v_mem, theirs.v_mem)
    (out_ours.sum() + ours.v_mem.sum()).backward()
    (out_theirs.sum() + theirs.v_mem.sum()).backward()
    assert_grads_close(x_ours.grad, x_theirs.grad)
    for a, b in zip(rec.parameters(), theirs_rec.parameters()):
        assert_grads_close(a.grad, b.grad, rtol=1e-4)


def _recurrent_op_args(kind, syn, dtype, batch=3, steps=12, n=16):
    """The arguments of a recurrent op and the indices of those that get a gradient. The linear
    map's weights and bias are multiples of 1/16 below 1/2: every product with the (integer)
    spikes and every sum of them is exact in float32, so that any BLAS gives the same bits."""
    g = torch.Generator().manual_seed(3)
    rand = lambda *shape: torch.rand(*shape, generator=g, dtype=dtype)  # noqa: E731
    dyadic = lambda *shape: torch.randint(-8, 9, shape, generator=g).float() / 16  # noqa: E731
    x, v0, i0 = rand(batch, steps, n) * 2, rand(batch, n), rand(batch, n) if syn else None
    alpha, alpha_syn = rand(n) * 0.2 + 0.75, (rand(()) * 0.2 + 0.6) if syn else None
    tensor = lambda v: torch.tensor(v, dtype=dtype)  # noqa: E731
    weight, bias = dyadic(n, n), dyadic(n)
    options = [1, float("inf"), 0, 0.0, 0, [0.5, 1.0], True]  # multi, subtract, single exp.
    if kind == "lif":
        args = [x, v0, i0, alpha, alpha_syn, True, tensor(1.0), tensor(1.0), tensor(-0.5),
                weight, bias, *options]
        grads = [0, 1, 3, 9, 10] + ([2, 4] if syn else [])
    else:
        options[0] = 2  # single spikes
        args = [x, v0, i0, rand(batch, n), alpha, alpha_syn, tensor(0.95), True, tensor(1.0),
                tensor(1.8), None, tensor(-0.5), weight, bias, *options]
        grads = [0, 1, 3, 4, 6, 12, 13] + ([2, 5] if syn else [])
    return args, grads


@pytest.mark.parametrize("kind,syn,dtype", list(itertools.product(
    ["lif", "alif"], [False, True], [torch.float32, torch.float64])))
def test_recurrent_ops_on_cuda_match_the_cpu_ops(kind, syn, dtype):
    """The recurrent ops on both devices with the same parameter tensors (see
    _recurrent_op_args): every output torch.equal; gradients of the input, initial states,
    alphas, weight and bias close (the backward's products round differently on cuBLAS)."""
    args, grads = _recurrent_op_args(kind, syn, dtype)
    op = getattr(torch.ops.sinabs_fast, f"{kind}_recurrent_forward").default
    results = []
    for device in ("cpu", "cuda"):
        dev_args = [a.to(device) if isinstance(a, torch.Tensor) else a for a in args]
        for i in grads:
            dev_args[i] = dev_args[i].clone().requires_grad_()
        outs = op(*dev_args)
        loss = sum((o.double() * (k + 1)).sum() for k, o in enumerate(outs)
                   if o.numel() and o.requires_grad)
        loss.backward()
        results.append(([o.detach().cpu() for o in outs],
                        [dev_args[i].grad.cpu() for i in grads]))
    (cpu_outs, cpu_grads), (cuda_outs, cuda_grads) = results
    for a, b in zip(cpu_outs, cuda_outs):
        assert torch.equal(a, b)
    assert cpu_outs[0].sum() > 0  # the recurrence carries spikes
    for a, b in zip(cpu_grads, cuda_grads):
        assert_grads_close(b, a, rtol=1e-4)


@pytest.mark.parametrize("syn", [False, True])
def test_alpha_gradients_round_alike_on_both_devices(syn):
    """The alpha gradients' sums over time follow one scheme on both devices
    (csrc/include/sinabs_fast/alpha_sums.h): bit-identical where the adjoint is (no surrogate:
    the op without spikes; one batch entry, so no reduction over the batch either)."""
    steps, n = 100, 64
    x = torch.rand(1, steps, n) * 2 - 0.5
    v0, i0 = torch.rand(1, n), torch.rand(1, n)
    alpha = torch.rand(n) * 0.5 + 0.45
    alpha_syn = torch.rand(n) * 0.5 + 0.45
    weight = torch.randn(1, steps, n)
    grads = []
    for device in ("cpu", "cuda"):
        a = alpha.to(device).requires_grad_()
        a_syn = alpha_syn.to(device).requires_grad_() if syn else None
        out = fops.lif_forward(x.to(device), v0.to(device), i0.to(device) if syn else None, a,
                               a_syn, torch.ones((), device=device),
                               torch.ones((), device=device), norm_input=True,
                               spike_kind=fops.SpikeKind.NONE)
        wrt = [a] + ([a_syn] if syn else [])
        grads.append([g.cpu() for g in torch.autograd.grad(
            (out.v_hat * weight.to(device)).sum(), wrt)])
    for cpu_grad, cuda_grad in zip(*grads):
        assert torch.equal(cpu_grad, cuda_grad)


# name -> (layer name, constructor arguments) for the layout tests on CUDA.
LAYOUT_LAYERS = {
    "iaf": ("IAF", {}),
    "lif_syn_norm": ("LIF", {"tau_mem": 8.0, "tau_syn": 4.0, "norm_input": True}),
    "alif": ("ALIF", {"tau_mem": 8.0, "tau_adapt": 16.0}),
}


def _layer_results(layer: tuple, x: torch.Tensor) -> dict:
    """Output, final states and the gradients of the input and the parameters on CUDA."""
    name, kwargs = layer
    x = x.detach().requires_grad_(True)
    neurons = getattr(fl, name)(**kwargs).cuda()
    for p in neurons.parameters():
        p.requires_grad_(True)
    out = neurons(x)
    (out * torch.linspace(-1, 1, out.numel(), device="cuda").reshape(out.shape)).sum().backward()
    results = {"output": out.detach(), "input grad": x.grad}
    results.update({f"state {k}": v for k, v in neurons.named_buffers()})
    results.update({f"grad {k}": p.grad for k, p in neurons.named_parameters()})
    return results


@pytest.mark.parametrize("layer", LAYOUT_LAYERS)
def test_time_major_view_on_cuda_as_contiguous(layer):
    """A time-major view and a slice along N, read in place by the CUDA kernels: every result
    equals the contiguous copy's on CUDA, bit for bit."""
    views = {
        "time_major": torch.rand(20, 3, 37, device="cuda").mul(2).transpose(0, 1),
        "neuron_slice": torch.rand(3, 20, 45, device="cuda").mul(2)[..., 4:41],
    }
    for view in views.values():
        ours = _layer_results(LAYOUT_LAYERS[layer], view)
        contiguous = _layer_results(LAYOUT_LAYERS[layer], view.contiguous())
        assert ours["output"].sum() > 0
        for key, value in ours.items():
            assert torch.equal(value, contiguous[key]), key


@pytest.mark.parametrize("syn", [False, True])
def test_cuda_op_on_time_major_view_matches_cpu_op(syn):
    """The LIF and ALIF ops on CUDA with a time-major input view against the CPU ops on the
    contiguous input, with the same parameter tensors: outputs and states torch.equal,
    gradients close; the input gradient keeps the view's layout."""
    B, T, N = 3, 20, 37
    x_tbn = torch.rand(T, B, N) * 2
    v0, i0, b0 = torch.rand(B, N), torch.rand(B, N) if syn else None, torch.zeros(B, N)
    alpha = torch.rand(N) * 0.2 + 0.8
    alpha_syn = torch.exp(-1 / torch.tensor(4.0)) if syn else None
    weight = torch.rand(B, T, N)
    for op in ("lif", "alif"):
        results = []
        for device in ("cpu", "cuda"):
            leaf = x_tbn.to(device).requires_grad_()
            x = leaf.transpose(0, 1) if device == "cuda" else leaf.transpose(0, 1).contiguous()
            a = alpha.to(device).requires_grad_()
            dev = lambda t: t.to(device) if t is not None else None  # noqa: E731
            one = torch.ones((), device=device)
            if op == "lif":
                out = fops.lif_forward(x, dev(v0), dev(i0), a, dev(alpha_syn), one, one,
                                       norm_input=True, keep_v_hat=True, keep_i_syn=syn)
                states = (out.v_mem, out.i_syn)
            else:
                out = fops.alif_forward(x, dev(v0), dev(i0), dev(b0), a, dev(alpha_syn),
                                        torch.tensor(0.95, device=device), one,
                                        torch.tensor(1.8, device=device))
                states = (out.v_mem, out.i_syn, out.b)
            g_x, g_a = torch.autograd.grad((out.spikes * weight.to(device)).sum(), (leaf, a))
            results.append(([out.spikes, *states], [g_x, g_a]))
            if device == "cuda":
                assert g_x.is_contiguous()  # the op's gradient came in the view's layout
        (cpu_out, cpu_grads), (cuda_out, cuda_grads) = results
        for a, b in zip(cpu_out, cuda_out):
            assert torch.equal(a, b.cpu())
        for a, b in zip(cpu_grads, cuda_grads):
            assert_grads_close(b.cpu(), a)


@pytest.mark.parametrize("syn,norm,min_v,spike,reset,dtype,steps", [
    (False, False, None, 1, 0, torch.float32, 37),
    (True, True, -0.5, 2, 0, torch.float32, 16),
    (True, False, None, 1, 1, torch.float32, 50),
    (False, True, -0.5, 2, 1, torch.float64, 21),
    (True, True, None, 1, 0, torch.float64, 9),
    (False, False, None, 0, 0, torch.float32, 33),
])
def test_cuda_recomputing_backward_equals_the_saved_one_and_the_cpu(syn, norm, min_v, spike,
                                                                     reset, dtype, steps):
    """Without a kept v_hat the CUDA forward writes the states every C steps (checkpoints) and the
    CUDA backward recomputes each segment from them: the checkpoints are the states of a CPU
    forward over the steps before them, the gradients (input, states, alphas) equal those of
    the CUDA backward that reads the saved v_hat, and are close to the CPU op's."""
    B, N = 3, 40
    x = (torch.rand(B, steps, N, dtype=dtype) * 1.5 - 0.2)
    v0 = torch.rand(B, N, dtype=dtype)
    i0 = torch.rand(B, N, dtype=dtype) if syn else None
    alpha = torch.rand(N, dtype=dtype) * 0.2 + 0.8
    alpha_syn = torch.rand(N, dtype=dtype) * 0.3 + 0.5 if syn else None
    weight = torch.randn(B, steps, N, dtype=dtype)

    def run(device, keep):
        leaves = [t.to(device).requires_grad_() for t in (x, v0, i0, alpha, alpha_syn)
                  if t is not None]
        lx, lv, *rest = leaves
        li = rest.pop(0) if syn else None
        la, las = rest[0], (rest[1] if syn else None)
        out = fops.lif_forward(
            lx, lv, li, la, las, torch.ones((), dtype=dtype, device=device),
            torch.ones((), dtype=dtype, device=device),
            torch.tensor(min_v, dtype=dtype, device=device) if min_v is not None else None,
            norm_input=norm, spike_kind=spike, reset_kind=reset, keep_v_hat=keep,
            keep_i_syn=keep and syn)
        loss = out.v_mem.sum() * 0.5
        if spike:
            loss = loss + (out.spikes * weight.to(device)).sum() + out.spike_counts.sum() * 0.3
        return out, [g.cpu() for g in torch.autograd.grad(loss, leaves)]

    saved_out, saved = run("cuda", True)
    out, recomputed = run("cuda", False)
    _, cpu = run("cpu", False)
    every = 8 if dtype == torch.float64 else 16
    assert out.v_hat.numel() == 0
    assert out.checkpoints.shape == (B, -(-steps // every), 2 if syn else 1, N)
    for k in range(out.checkpoints.shape[1]):
        start = fops.lif_forward(
            x[:, :k * every], v0, i0, alpha, alpha_syn, torch.ones((), dtype=dtype),
            torch.ones((), dtype=dtype),
            torch.tensor(min_v, dtype=dtype) if min_v is not None else None, norm_input=norm,
            spike_kind=spike, reset_kind=reset)
        assert torch.equal(out.checkpoints[:, k, 0].cpu(), start.v_mem)
        if syn:
            assert torch.equal(out.checkpoints[:, k, 1].cpu(), start.i_syn)
    assert torch.equal(out.spikes, saved_out.spikes)
    for a, b, c in zip(recomputed, saved, cpu):
        assert torch.equal(a, b)
        assert_grads_close(a, c)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("make", [
    lambda m: m.IAF(), lambda m: m.IAF(tau_syn=3.0, min_v_mem=-0.5),
    lambda m: m.LIF(tau_mem=8.0), lambda m: m.LIF(tau_mem=8.0, tau_syn=4.0, norm_input=False),
])
def test_half_input_on_cuda_reads_and_writes_16_bit(dtype, make):
    """A 16-bit input on CUDA is read as it is and computed in float32: the spikes equal sinabs'
    (float32, on CUDA) in the input's dtype, the float32 states equal sinabs' bit for bit, and the
    input gradient is close to sinabs'. Without norm_input (whose (1 - alpha) * x rounds in the
    input's dtype, in sinabs too) the layer equals the float32 layer on the upcast input: the
    same spikes, and its input gradient rounded once to the input's dtype."""
    torch.manual_seed(8)
    x = (torch.rand(3, 40, 24, device="cuda") * 2).to(dtype)
    weight = torch.randn(3, 40, 24, device="cuda").to(dtype).float()  # exact in 16 bits
    ours, theirs, plain = make(fl).cuda(), make(sl).cuda(), make(fl).cuda()
    x_ours, x_theirs = x.clone().requires_grad_(), x.clone().requires_grad_()
    x32 = x.float().requires_grad_()
    out, out_theirs, out32 = ours(x_ours), theirs(x_theirs), plain(x32)
    assert out.dtype == dtype and out32.dtype == torch.float32
    upcast_exact = not ours.norm_input
    assert torch.equal(out, out_theirs.to(dtype))
    assert torch.equal(out.float(), out32) or not upcast_exact
    assert ours.v_mem.dtype == torch.float32
    assert torch.equal(ours.v_mem, theirs.v_mem)
    for o, w in ((out, weight), (out_theirs, weight), (out32, weight)):
        (o.float() * w).sum().backward()
    assert x_ours.grad.dtype == dtype
    assert torch.equal(x_ours.grad, x32.grad.to(dtype)) or not upcast_exact
    assert_grads_close(x_ours.grad.float(), x_theirs.grad.float(), rtol=1e-2)


def test_autocast_on_cuda_trains_in_bfloat16():
    """Linear -> IAF -> Linear under CUDA bfloat16 autocast: the IAF gets and gives bfloat16,
    and the outputs equal sinabs' under the same autocast."""
    results = []
    for module in (fl, sl):
        torch.manual_seed(3)
        model = torch.nn.Sequential(torch.nn.Linear(12, 16), module.IAF(),
                                    torch.nn.Linear(16, 4)).cuda()
        torch.manual_seed(4)
        x = torch.randn(3, 10, 12, device="cuda") * 2
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
        out.float().pow(2).sum().backward()
        results.append((out, model[0].weight.grad))
    (out, grad), (out_theirs, grad_theirs) = results
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, out_theirs)
    assert_grads_close(grad, grad_theirs, rtol=2e-2)
