"""The semantics gate: before a peer is timed on a layer, its output on a small input must be
the configuration's (``configs``), computed by ``sinabs_fast.reference`` in float64.

How a spike pattern is judged: the float64 reference is driven by the *peer's* spikes (each
step's reset subtracts what the peer emitted), so one rounding-level disagreement at the
threshold does not send the two trajectories apart. At each step the reference's pre-spike
membrane ``v`` decides whether a spike was due (``v >= threshold``); the peer may differ only
where ``|v - threshold| <= SPIKE_TOLERANCE[dtype] * threshold``. Spikes must be 0 or 1.
For ExpLeak the output is the membrane: ``|out - v| <= SPIKE_TOLERANCE * max(1, |v|)``.

Input gradients (for a fixed random output gradient) are compared where the peer's backward is
the configuration's (``Peer.gradient_reason`` is None): the same surrogate, the reset not
detached. The reference back-propagates through the same forced spikes with the
configuration's surrogate; ``max |g - g_ref| <= GRAD_RTOL[dtype] * max |g_ref|``.

The input is the benchmark's (``configs.make_input``: uniform in [-0.5, 1), below the
threshold). The peer is fed it, and the output gradient, rounded to its dtype, and the reference
gets exactly those values, so only the peer's arithmetic counts. The layer runs twice with a ``reset()`` in between, and
both runs must agree (a reset that leaves state behind fails).
"""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from ... import reference
from ...activation import MembraneSubtract
from ..cases import Shape
from .base import Peer
from .configs import NeuronConfig, config_for, make_input, recurrent_weight, surrogate

GATE_SHAPE = Shape("gate", B=3, T=40, N=24)  # three different sizes: a layout mix-up shows
GATE_SEED = 20261201

# Tolerances, as fractions of the threshold (spikes) or of the largest reference gradient.
# float32: a few roundings per step over 40 steps of membranes of a few units; the half types
# keep their state in 8 or 11 significant bits.
SPIKE_TOLERANCE: Dict[torch.dtype, float] = {
    torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 1e-1}
GRAD_RTOL: Dict[torch.dtype, float] = {
    torch.float32: 1e-4, torch.float16: 5e-2, torch.bfloat16: 2e-1}


@dataclass
class GateResult:
    """``passed``: the peer computes the configuration; ``detail``: what was compared, or the
    first disagreement; ``gradient_checked``: whether input gradients were compared too."""

    passed: bool
    detail: str
    gradient_checked: bool = False


def gate_input(shape: Shape = GATE_SHAPE, seed: int = GATE_SEED) -> Tensor:
    """The benchmark's input distribution (``configs.make_input``) in float64: the membranes
    cross the threshold often, from both sides, for every layer's configuration."""
    return make_input(shape, seed, torch.float64)


def check(peer: Peer, layer: str, device: str = "cpu", dtype: torch.dtype = torch.float32,
          shape: Shape = GATE_SHAPE) -> GateResult:
    """Runs ``peer``'s ``layer`` on the gate input and compares it with the float64 reference."""
    reason = peer.unavailable_reason(device) or peer.unsupported_reason(layer, dtype, device)
    if reason is not None:
        return GateResult(False, f"not run: {reason}")
    config = config_for(layer)
    grad_reason = peer.gradient_reason(layer)
    x = gate_input(shape).to(dtype)
    # the output gradient too is rounded to the dtype, for the peer and the reference alike
    g_out = torch.randn(x.shape, generator=torch.Generator().manual_seed(GATE_SEED + 1),
                        dtype=torch.float64).to(dtype).to(torch.float64)

    try:
        (out, grad), (out2, grad2) = _run_twice(peer, layer, shape, device, dtype, x, g_out,
                                                grad_reason is None)
    except Exception as e:  # a peer that crashes fails the gate, with the error
        return GateResult(False, f"the layer raised {type(e).__name__}: {e}")
    if not (torch.equal(out, out2) and (grad is None or torch.equal(grad, grad2))):
        return GateResult(False, "two calls with a reset() in between differ: the reset "
                                 "leaves state behind")
    if out.shape != x.shape:
        return GateResult(False, f"output shape {tuple(out.shape)}, expected {tuple(x.shape)}")

    x_ref = x.to(torch.float64).requires_grad_(True)
    ref_out, v_hat, thresholds = _reference(config, x_ref, out)
    tol = SPIKE_TOLERANCE[dtype]
    failure = (_compare_spikes(out, v_hat, thresholds, tol) if config.spiking
               else _compare_membrane(out, ref_out, tol))
    if failure:
        return GateResult(False, failure)
    what = "spikes" if config.spiking else "membrane"
    detail = f"{what} match the float64 reference (tolerance {tol:g})"
    if grad_reason is not None:
        return GateResult(True, f"{detail}; gradients not compared: {grad_reason}")
    grad_ref, = torch.autograd.grad(ref_out, x_ref, g_out)
    error = (grad - grad_ref).abs().max().item()
    scale = grad_ref.abs().max().item()
    if not error <= GRAD_RTOL[dtype] * scale:
        at = _first(((grad - grad_ref).abs() == error))
        return GateResult(False, f"{detail}, but the input gradient differs by {error:.3g} "
                                 f"(largest reference gradient {scale:.3g}) at (b, t, n) = {at}",
                          gradient_checked=True)
    return GateResult(True, f"{detail}; input gradients within {GRAD_RTOL[dtype]:g} x the "
                            f"largest ({error / scale:.2g})", gradient_checked=True)


def _run_twice(peer: Peer, layer: str, shape: Shape, device: str, dtype: torch.dtype, x: Tensor,
               g_out: Tensor, with_grad: bool) -> List[Tuple[Tensor, Optional[Tensor]]]:
    """[(output (B, T, N), input gradient or None)] of two calls, each after a ``reset()``,
    as float64 on the CPU."""
    runner = peer.build(layer, shape, device, dtype)
    runs = []
    for _ in range(2):
        x_peer = x.to(device).requires_grad_(with_grad)
        runner.reset()
        out = runner.spikes_btn(runner.forward(runner.prepare(x_peer)))
        grad = None
        if with_grad:
            grad, = torch.autograd.grad(out, x_peer, g_out.to(device=device, dtype=out.dtype))
            grad = grad.detach().to("cpu", torch.float64)
        runs.append((out.detach().to("cpu", torch.float64), grad))
    return runs


class _ForcedSpikes:
    """A spike function for ``reference.lif_step``/``alif_step`` that emits the given spikes,
    step after step, recording the pre-spike membrane and threshold it was called with; its
    backward is the configuration's surrogate (nothing flows to the threshold, as in sinabs)."""

    required_states = ["v_mem"]

    def __init__(self, spikes: Tensor):
        self.spikes = spikes  # (B, T, N) float64
        self.v_hat: List[Tensor] = []
        self.thresholds: List[Tensor] = []

    def apply(self, v_mem: Tensor, threshold: Tensor, surrogate_grad_fn) -> Tensor:
        s = self.spikes[:, len(self.v_hat)]
        self.v_hat.append(v_mem.detach())
        self.thresholds.append(torch.as_tensor(threshold).detach().expand_as(v_mem))
        return _SurrogateSpike.apply(v_mem, threshold, s)


class _SurrogateSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v_mem, threshold, spikes):
        ctx.save_for_backward(v_mem, torch.as_tensor(threshold))
        return spikes.clone()

    @staticmethod
    def backward(ctx, grad):
        v_mem, threshold = ctx.saved_tensors
        return grad * surrogate(v_mem, threshold), None, None


def _reference(config: NeuronConfig, x: Tensor, peer_spikes: Tensor
               ) -> Tuple[Tensor, Tensor, Tensor]:
    """(output (B, T, N), pre-spike membrane, threshold per step) of the configuration on
    float64 ``x``, the spikes forced to ``peer_spikes``."""
    f64 = dict(dtype=torch.float64)
    batch, steps, neurons = x.shape
    alpha_mem = torch.tensor(config.alpha_mem, **f64)
    alpha_syn = None if config.alpha_syn is None else torch.tensor(config.alpha_syn, **f64)
    threshold = torch.tensor(config.threshold, **f64)
    zeros = torch.zeros(batch, neurons, **f64)
    state = {"v_mem": zeros}
    if alpha_syn is not None:
        state["i_syn"] = zeros
    if config.alpha_adapt is not None:
        alpha_adapt = torch.tensor(config.alpha_adapt, **f64)
        state.update(b=zeros, spike_threshold=threshold.expand_as(zeros))
    forced = _ForcedSpikes(peer_spikes) if config.spiking else None
    w = recurrent_weight(neurons, torch.float64) if config.recurrent else None
    outputs, previous = [], zeros
    for t in range(steps):
        x_t = x[:, t] if w is None else x[:, t] + previous @ w.T
        if config.alpha_adapt is not None:
            out, state, _ = reference.alif_step(
                x_t, state, alpha_mem, alpha_adapt, alpha_syn, config.adapt_scale, threshold,
                forced, MembraneSubtract(), surrogate, None, False)
        else:
            out, state = reference.lif_step(
                x_t, state, alpha_mem, alpha_syn, threshold if config.spiking else None,
                forced, MembraneSubtract() if config.spiking else None, surrogate, None, False)
        outputs.append(out)
        previous = out
    ref_out = torch.stack(outputs, 1)
    if forced is None:
        return ref_out, ref_out.detach(), threshold.expand_as(ref_out)
    return ref_out, torch.stack(forced.v_hat, 1), torch.stack(forced.thresholds, 1)


def _first(mask: Tensor) -> Tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0])


def _compare_spikes(spikes: Tensor, v_hat: Tensor, thresholds: Tensor, tol: float
                    ) -> Optional[str]:
    """None when every spike is the reference's or at the threshold within ``tol``."""
    not_binary = (spikes != 0) & (spikes != 1)
    if not_binary.any():
        at = _first(not_binary)
        return (f"spikes must be 0 or 1: {spikes[at].item():g} at (b, t, n) = {at} "
                f"(the configuration allows one spike per step)")
    due = (v_hat >= thresholds).to(spikes.dtype)
    wrong = (spikes != due) & ((v_hat - thresholds).abs() > tol * thresholds.abs())
    if wrong.any():
        at = _first(wrong)
        return (f"{int(wrong.sum())} of {spikes.numel()} spikes differ from the float64 "
                f"reference beyond the threshold tolerance {tol:g}; first at (b, t, n) = {at}: "
                f"peer {spikes[at].item():g}, reference membrane {v_hat[at].item():.6g} "
                f"against threshold {thresholds[at].item():.6g}")
    return None


def _compare_membrane(out: Tensor, ref: Tensor, tol: float) -> Optional[str]:
    ref = ref.detach()
    wrong = (out - ref).abs() > tol * ref.abs().clamp(min=1)
    if wrong.any():
        at = _first(wrong)
        return (f"{int(wrong.sum())} of {out.numel()} membrane values differ from the float64 "
                f"reference beyond {tol:g}; first at (b, t, n) = {at}: peer "
                f"{out[at].item():.6g}, reference {ref[at].item():.6g}")
    return None
