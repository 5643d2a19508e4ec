"""The registered ops themselves: opcheck, gradcheck where the surrogate is the exact derivative,
the bytes saved for backward, and torch.compile without graph breaks."""

import pytest
import torch

import sinabs_fast  # noqa: F401
import sinabs_fast.layers as fl
from sinabs_fast import ops

B, T, N = 2, 5, 3


def forward_args(syn=False, min_v=False, norm=False, spike=ops.SpikeKind.MULTI,
                 reset=ops.ResetKind.SUBTRACT, dtype=torch.float32, grad=True, threshold=1.0,
                 surrogate=ops.SurrogateKind.SINGLE_EXPONENTIAL, params=(0.5, 1.0)):
    x = (torch.rand(B, T, N, dtype=dtype) * 2).requires_grad_(grad)
    v = (torch.rand(B, N, dtype=dtype) * 0.5).requires_grad_(grad)
    i = (torch.rand(B, N, dtype=dtype) * 0.5).requires_grad_(grad) if syn else None
    alpha = torch.tensor(0.9 if norm else 1.0, dtype=dtype)
    alpha_syn = torch.full((N,), 0.8, dtype=dtype).requires_grad_(grad) if syn else None
    thr = torch.full((B, N), threshold, dtype=dtype)
    amount = torch.tensor(threshold, dtype=torch.float32)
    m = torch.tensor(-0.5, dtype=dtype) if min_v else None
    return (x, v, i, alpha, alpha_syn, norm, thr, amount, m, int(spike), float("inf"),
            int(reset), 0.0, int(surrogate), list(params), True, syn)


OPCHECK_CONFIGS = [
    dict(),
    dict(syn=True),
    dict(min_v=True, norm=True),
    dict(spike=ops.SpikeKind.SINGLE, reset=ops.ResetKind.TO_VALUE),
    dict(spike=ops.SpikeKind.NONE, min_v=True),
    dict(syn=True, dtype=torch.float64, surrogate=ops.SurrogateKind.GAUSSIAN,
         params=(0.0, 0.5, 1.0)),
    dict(grad=False),
]


@pytest.mark.parametrize("config", OPCHECK_CONFIGS)
def test_opcheck_forward(config):
    torch.library.opcheck(torch.ops.sinabs_fast.lif_forward.default, forward_args(**config))


def time_major(x: torch.Tensor) -> torch.Tensor:
    """x's values as a time-major view: (T, B, N) contiguous, transposed to (B, T, N)."""
    return x.detach().transpose(0, 1).contiguous().transpose(0, 1).requires_grad_(x.requires_grad)


@pytest.mark.parametrize("config", [dict(), dict(syn=True, norm=True), dict(grad=False)])
def test_opcheck_forward_on_time_major_view(config):
    """The kernels read the view in place; the fake kernel's outputs stay (B, T, N) contiguous
    as the real ones."""
    args = list(forward_args(**config))
    args[0] = time_major(args[0])
    torch.library.opcheck(torch.ops.sinabs_fast.lif_forward.default, args)


@pytest.mark.parametrize("layout", ["contiguous", "time_major"])
@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("syn", [False, True])
def test_opcheck_backward(syn, recompute, layout):
    """With a time-major input the input gradient is time-major, in the fake kernel too."""
    fwd = list(forward_args(syn=syn, grad=False))
    if layout == "time_major":
        fwd[0] = time_major(fwd[0])
    out = torch.ops.sinabs_fast.lif_forward.default(*fwd)
    x, v, i, alpha, alpha_syn, norm, thr, amount, m = fwd[:9]
    v_hat = torch.empty(0) if recompute else out[1]
    args = (torch.randn(B, T, N), None, None, torch.randn(B, N), None, torch.randn(B, N),
            v_hat, out[2], v, i, x, alpha, alpha_syn, norm, thr, amount, m, *fwd[9:13],
            *fwd[13:15], None, False, syn, None)
    torch.library.opcheck(torch.ops.sinabs_fast.lif_backward.default, args)


@pytest.mark.parametrize("config", [
    dict(), dict(syn=True), dict(syn=True, norm=True, min_v=True),
    dict(spike=ops.SpikeKind.SINGLE, reset=ops.ResetKind.TO_VALUE, norm=True),
    dict(syn=True, dtype=torch.float64, norm=True),
])
def test_recomputing_backward_equals_the_saved_one(config):
    """Without a kept v_hat the CPU backward runs the forward again from the input and initial
    states: the same bits, so gradients identical to the backward that reads the saved v_hat."""
    grads = []
    for keep in (True, False):
        torch.manual_seed(5)
        x, v, i, alpha, alpha_syn, norm, thr, amount, m, *rest = forward_args(**config)
        alpha = alpha.clone().requires_grad_()
        args = [x, v, i, alpha, alpha_syn, norm, thr, amount, m, *rest]
        args[-2], args[-1] = keep, keep and config.get("syn", False)  # keep_v_hat, keep_i_syn
        out = torch.ops.sinabs_fast.lif_forward.default(*args)
        assert (out[1].numel() > 0) == keep
        assert out[6].numel() == 0  # checkpoints: the CPU recomputes from the initial states
        weight = torch.linspace(-1, 2, out[0].numel(), dtype=out[0].dtype).reshape(out[0].shape)
        loss = (out[0] * weight).sum() + out[3].sum() + out[5].sum() * 0.3
        wrt = [t for t in (x, v, i, alpha, alpha_syn) if t is not None]
        grads.append(torch.autograd.grad(loss, wrt))
    for saved, recomputed in zip(*grads):
        assert torch.equal(saved, recomputed)


@pytest.mark.parametrize("config", [
    dict(), dict(syn=True, norm=True), dict(min_v=True, spike=ops.SpikeKind.SINGLE),
    dict(syn=True, dtype=torch.float64, reset=ops.ResetKind.TO_VALUE),
])
def test_eager_function_equals_the_registered_autograd(config):
    """The op's own autograd (C++, csrc/op_autograd.cpp: layers, direct op calls and
    torch.compile) and the Python autograd Function that a Python surrogate needs
    (ops.lif.FusedLIF) must give the same outputs and the same gradients, bit for bit."""
    results = []
    for route in ("function", "op"):
        torch.manual_seed(7)
        x, v, i, alpha, alpha_syn, norm, thr, amount, m, *rest = forward_args(**config)
        alpha = alpha.clone().requires_grad_()
        args = [x, v, i, alpha, alpha_syn, norm, thr, amount, m, *rest]
        args[-2], args[-1] = False, False  # keep_v_hat, keep_i_syn
        if route == "function":
            out = ops.LIFOutputs(*ops.lif.FusedLIF.apply(None, *args))
            assert "FusedLIF" in out.spikes.grad_fn.name()
        else:
            out = ops.LIFOutputs(*torch.ops.sinabs_fast.lif_forward.default(*args))
            assert "LifFunction" in out.spikes.grad_fn.name()
        main = out.spikes if out.spikes.numel() else out.v_hat
        weight = torch.linspace(-1, 2, main.numel(), dtype=main.dtype).reshape(main.shape)
        loss = (main * weight).sum() + out.v_mem.sum()
        wrt = [t for t in (x, v, i, alpha, alpha_syn) if t is not None]
        results.append((out, torch.autograd.grad(loss, wrt)))
    (out_f, grads_f), (out_o, grads_o) = results
    for a, b in zip(out_f, out_o):
        assert torch.equal(a, b)
    for a, b in zip(grads_f, grads_o):
        assert torch.equal(a, b)


@pytest.mark.parametrize("config", [
    dict(), dict(syn=True), dict(norm=True), dict(min_v=True), dict(syn=True, norm=True),
    dict(spike=ops.SpikeKind.NONE, norm=True),
])
def test_gradcheck_subthreshold(config):
    """Far below threshold there are no spikes and the Heaviside surrogate is exactly 0, so the
    surrogate gradient is the true derivative and gradcheck applies (inputs, states, alphas)."""
    fwd = list(forward_args(dtype=torch.float64, threshold=1e3,
                            surrogate=ops.SurrogateKind.HEAVISIDE, params=(1.0,), **config))
    if config.get("norm"):
        fwd[3] = fwd[3].clone().requires_grad_()  # alpha_mem
    tensors = [i for i, a in enumerate(fwd) if isinstance(a, torch.Tensor) and a.requires_grad]

    def fn(*ts):
        args = list(fwd)
        for k, t in zip(tensors, ts):
            args[k] = t
        out = torch.ops.sinabs_fast.lif_forward.default(*args)
        return tuple(o for o in out if o.numel() and o.dtype == torch.float64)

    assert torch.autograd.gradcheck(fn, [fwd[k] for k in tensors])


def _saved_bytes(layer, x):
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x)
    out.sum().backward()
    return total[0]


@pytest.mark.parametrize("tau_syn,limit", [(None, 4), (5.0, 8)])
def test_saves_little_for_backward(tau_syn, limit):
    b, t, n = 4, 64, 128
    x = (torch.rand(b, t, n) * 2).requires_grad_()
    saved = _saved_bytes(fl.IAF(tau_syn=tau_syn), x)
    per_neuron_step = saved / (b * t * n)
    # per-neuron tensors (states, parameters) add a small fraction of one byte
    assert per_neuron_step <= limit + 0.5, f"{per_neuron_step:.2f} bytes per neuron-step"


def test_compile_fullgraph_training_step():
    torch._dynamo.reset()
    model = torch.nn.Sequential(
        torch.nn.Flatten(0, 1), torch.nn.Linear(6, 8), torch.nn.Unflatten(0, (3, 10)),
        fl.IAF(tau_syn=4.0),
    )
    x = torch.rand(3, 10, 6) * 3
    params = [p for p in model.parameters() if p.requires_grad]
    assert any(p is model[3].tau_syn for p in params)
    reference = [p.detach().clone() for p in params]
    eager_out = model(x)
    eager_out.sum().backward()
    eager_grads = [p.grad.clone() for p in params]
    eager_state = model[3].v_mem.detach().clone()

    for p, r in zip(params, reference):
        p.grad = None
        p.data.copy_(r)
    model[3].reset_states()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out = compiled(x)
    out.sum().backward()
    assert torch.equal(out, eager_out)
    assert torch.equal(model[3].v_mem, eager_state)
    for p, g in zip(params, eager_grads):
        torch.testing.assert_close(p.grad, g)


def test_a_stale_extension_says_how_to_rebuild():
    """An op the compiled extension lacks (it predates the Python code) raises ImportError with
    the rebuild command; a call missing an argument of the schema names it."""
    from sinabs_fast.ops.schema import OpSchema, require_autograd_kernel

    with pytest.raises(ImportError, match="build_ext --inplace"):
        OpSchema("no_such_op")
    # An extension without the C++ autograd kernels (csrc/op_autograd.cpp) would run the forward
    # ops without gradients: refused at import. lif_backward has no autograd kernel.
    with pytest.raises(ImportError, match="no autograd kernel for 'lif_backward'"):
        require_autograd_kernel(OpSchema("lif_backward"))
    with pytest.raises(TypeError, match=r"missing arguments \['keep_i_syn'\]"):
        ops.lif.LIF_FORWARD.args(**dict(zip(ops.lif.LIF_FORWARD.names[:-1], forward_args())))


def test_public_functions_are_made_from_the_schemas():
    """ops.lif_forward and the others (ops/public_function.py): the schema's tensors positional,
    in its order, its options keyword-only, with the defaults of sinabs' layers (ALIF's differ);
    a wrong argument name is Python's own TypeError."""
    import inspect

    families = [(ops.lif_forward, ops.lif.LIF_FORWARD), (ops.alif_forward, ops.alif.ALIF_FORWARD),
                (ops.lif_recurrent_forward, ops.lif_recurrent.RECURRENT_FORWARD),
                (ops.alif_recurrent_forward, ops.alif_recurrent.ALIF_RECURRENT_FORWARD)]
    for function, schema in families:
        parameters = inspect.signature(function).parameters.values()
        assert [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD] == [
            n for n in schema.names if n not in schema.options]
        assert set(schema.options) <= {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    lif = inspect.signature(ops.lif_forward).parameters
    alif = inspect.signature(ops.alif_forward).parameters
    assert lif["min_v_mem"].default is None and lif["surrogate_fn"].default is None
    assert lif["norm_input"].default is False and lif["spike_kind"].default == ops.SpikeKind.MULTI
    assert alif["norm_input"].default is True and alif["spike_kind"].default == 2
    assert "keep_v_hat" in lif and "keep_sequences" in alif
    x, v, i, alpha, alpha_syn, _, thr, amount = forward_args(grad=False)[:8]
    with pytest.raises(TypeError, match="lif_forward.. got an unexpected keyword argument 'norm'"):
        ops.lif_forward(x, v, i, alpha, alpha_syn, thr, amount, norm=True)
    with pytest.raises(ValueError, match="surrogate_kind must be a built-in surrogate"):
        ops.lif_recurrent_forward(x, v, i, alpha, alpha_syn, thr, amount, None,
                                  torch.zeros(N, N), None,
                                  surrogate_kind=ops.SurrogateKind.PRECOMPUTED)


def test_gradients_follow_the_schema():
    """The autograd result has one entry per schema argument, None where there is no gradient."""
    schema = ops.lif.LIF_FORWARD
    grads = schema.gradients(input="g_x", alpha_syn="g_as")
    assert len(grads) == len(schema.op._schema.arguments)
    assert grads[schema.names.index("input")] == "g_x"
    assert grads[schema.names.index("alpha_syn")] == "g_as"
    assert sum(g is not None for g in grads) == 2


def test_alpha_gradient_is_summed_in_float32_blocks():
    """The alpha_mem gradient's sum over time is rounded as csrc/include/sinabs_fast/alpha_sums.h
    says (float32 blocks of 16 reverse steps, closed into a float64 total): equal, bit for bit,
    to that sum written out here in torch, for ExpLeak with norm_input (no surrogate involved)."""
    steps, n = 40, 5
    x = torch.rand(1, steps, n) * 2 - 0.5
    v0 = torch.rand(1, n)
    alpha = torch.rand(n).mul(0.5).add(0.45).requires_grad_()
    weight = torch.randn(1, steps, n)
    out = ops.lif_forward(x, v0, None, alpha, None, torch.ones(()), torch.ones(()),
                          norm_input=True, spike_kind=ops.SpikeKind.NONE)
    (grad,) = torch.autograd.grad((out.v_hat * weight).sum(), alpha)  # ExpLeak's output: v_hat

    a = alpha.detach()
    in_scale = 1 - a
    v, v_seq = v0[0], []
    for t in range(steps):  # forward: v_t = a v_{t-1} + (1 - a) x_t (no reset, no clamp)
        v = a * v + in_scale * x[0, t]
        v_seq.append(v)
    lambda_v, g_next = torch.zeros(n), torch.zeros(n)
    block, total, in_block = torch.zeros(n), torch.zeros(n, dtype=torch.float64), 0
    for t in reversed(range(steps)):
        g = (lambda_v + 0.0) + weight[0, t]
        lambda_v = g * a
        block = block + (v_seq[t] * g_next - x[0, t] * g)
        g_next = g
        in_block += 1
        if in_block == 16 or t == 0:
            total, block, in_block = total + block.double(), torch.zeros(n), 0
    block = block + v0[0] * g_next
    total = total + block.double()
    assert torch.equal(grad, total.float())
