#!/usr/bin/env python
"""GPU benchmark of the neuron layers: sinabs_fast vs sinabs vs SpikingJelly (Triton) vs snnTorch vs
sinabs-exodus, on one card in one process (the shapes G1-G6: SHAPES below; the timing rules:
benchmarks/README.md, "GPU results").

Run (from the repository root, on a machine with a CUDA device; benchmarks/gpu_check.sh does this)::

    python benchmarks/bench_gpu.py --quick --out $OUT      # ~3 minutes on an H100
    python benchmarks/bench_gpu.py                          # fuller run (more reps, all rows)
    python benchmarks/bench_gpu.py --shapes G2 G6 --impls sinabs_fast spikingjelly

Without a CUDA device it prints a message and exits 0 (``--device cpu`` runs the same code on
tiny shapes, for checking the script itself; its timings mean nothing).

What is compared. The common model (§7.1) is a soft-reset IF neuron (``IAF``; alpha = 1) and a
soft-reset LIF neuron (``LIF``; alpha = 0.9), threshold 1, v_0 = 0, at most one spike per step,
surrogate gradient ``exp(-2 |v - 1|)``, reset not detached. That surrogate is fused natively in
both sinabs_fast (``SingleExponential(grad_width=0.5, grad_scale=0.5)``) and SpikingJelly's
Triton kernels (``PiecewiseExp(alpha=2)``); ATan, the §7.1 default, is not built into
sinabs_fast (it would run as a precomputed surrogate), so the exponential is used for everyone.

* ``sinabs_fast``: ``sinabs_fast.layers.IAF/LIF(spike_fn=SingleSpike, surrogate_grad_fn=...)``,
  input (B, T, N). bfloat16 rows: the layer promotes to float32 like sinabs (float32 state and
  output), so its bf16 rows read bf16 and write float32.
* ``sinabs``: ``sinabs.layers.IAF/LIF`` with the same arguments, on CUDA (a Python loop of small
  torch ops per time step). float32 only.
* ``spikingjelly``: ``neuron.IFNode(v_reset=None, PiecewiseExp(2), detach_reset=False,
  step_mode="m")`` and ``LIFNode(tau=10, decay_input=False, ...)``, time-major (T, B, N); the
  Triton implementation is forced (``SJ_IF/LIF_CUDA_IMPLEMENTATION=triton``, ``--sj-impl``).
  float32 and bfloat16 (computed in bf16).
* ``snntorch``: ``snn.Leaky(beta=1, threshold=1, reset_mechanism="subtract")`` with a
  ``custom_surrogate`` of the same exponential, stepped over T in a Python loop, time-major.
  IAF only (its LIF reset differs from the others by a factor alpha, §4.3). snnTorch detaches
  the reset in the gradient, so its gate compares against the detached-reset reference.
* ``sinabs_exodus``: ``sinabs.exodus.layers.IAF/LIF`` (same arguments as sinabs), if importable.
  float32 only.
* ``transpose``: ``x.transpose(0, 1).contiguous()`` of the (B, T, N) input: the price of handing
  a batch-major tensor to a time-major peer (reported separately, not added to any row).

Semantics gate (§7.1), run before timing each (peer, layer, dtype): a small input (T=16, B=4,
N=256) of dyadic values (k/256 + 1/8192, exact in float32, so no membrane ever sits within
1/8192 of the threshold) goes through the peer and through an fp64 CPU reference. Spikes must
match exactly, except that a neuron may diverge from its first mismatching step on if the
reference membrane there is within 1e-6 of the threshold (0.05 for bfloat16: bf16 state rounding
accumulated over 16 steps; at most 10 % of the neurons) and is then left
out. Input gradients for a fixed random output gradient must agree to a norm-wise relative error
<= 1e-4 (float32) or 1e-2 (bfloat16). Failures are recorded in the JSON and their rows skipped.

Modes (each row is one layer call on a fresh state): ``inference`` (``torch.no_grad()``),
``forward`` (grad enabled, saves what backward needs, output dropped), ``forward+backward``
(``out.backward(g)`` with a fixed random ``g`` of the output's shape, not ``.sum()``).

Timing: CUDA events around each call, a 256 MiB L2-flushing write before each (outside the
events), after a first call (reported as ``first_ms``: Triton autotuning and compilation land
there) and warm-up calls; median and inter-quartile range over the timed calls. Slow rows are
capped by ``--row-cap-s`` (fewer reps), and once ``--time-budget-s`` is spent the remaining rows
are skipped (recorded in ``skipped``).

Bandwidth: in the same process ``y.copy_(x)`` on 1 GiB float32 gives the copy bandwidth (bytes
read + written). Each row's effective bandwidth counts the fewest bytes per neuron-step (float32:
8 inference, 12 training forward, 24 forward+backward; halved for bfloat16 input), and
``bandwidth_fraction`` is its ratio to the copy bandwidth.

Memory (forward+backward rows): ``peak_mem_bytes`` = torch.cuda.max_memory_allocated() during
one forward+backward minus the allocation before it (input and output gradient preallocated),
and ``saved_bytes_per_step``: the bytes of the unique storages saved for backward
(``torch.autograd.graph.saved_tensors_hooks``) per neuron-step (the input itself included when
saved; ``saves_input`` says so).

Seed network: a training step (forward, cross-entropy, backward, SGD step) of
``sinabs_fast.demo.seed_network`` at B=32, T=50 on random input spikes, sinabs vs sinabs_fast,
same weights.

Output (``--out``, default ``$OUT`` if set, else benchmarks/out): ``gpu-<device>.json`` with
``{"device", "torch", ..., "rows": [{"impl", "layer", "shape", "mode", "dtype", "ms",
"bandwidth_fraction", ...}], "gates": [...], "seed_network": [...], "skipped": [...]}`` (rewritten
after every row, so a run cut short keeps what it measured) and ``gpu-<device>.md`` (tables).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import platform
import re
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

IAF, LIF = "IAF", "LIF"
INFERENCE, FORWARD, FWD_BWD = "inference", "forward", "forward+backward"
MODES = (INFERENCE, FORWARD, FWD_BWD)
# Fewest bytes per neuron-step in float32 (shared/gpu/README.md; §5.1); scaled by the input's
# element size / 4 for other dtypes.
MIN_BYTES_FP32 = {INFERENCE: 8, FORWARD: 12, FWD_BWD: 24}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
LIF_ALPHA = 0.9
LIF_TAU = -1.0 / math.log(LIF_ALPHA)  # sinabs: alpha = exp(-1 / tau_mem)

OURS, SINABS, SJ, SNNTORCH, EXODUS, TRANSPOSE = (
    "sinabs_fast", "sinabs", "spikingjelly", "snntorch", "sinabs_exodus", "transpose")
IMPLS = (OURS, SINABS, SJ, SNNTORCH, EXODUS, TRANSPOSE)
DEFAULT_OUT = Path(__file__).resolve().parent / "out"


@dataclass(frozen=True)
class Shape:
    label: str
    T: int
    B: int
    N: int

    @property
    def steps(self) -> int:  # neuron-steps
        return self.T * self.B * self.N

    def describe(self) -> str:
        return f"{self.label} T{self.T} B{self.B} N{self.N}"


# §7.2 (time-major [T, B, N]); ON-E2E is left out (GEMM-dominated; not a neuron benchmark).
SHAPES = (
    Shape("G1", 500, 16, 16384),
    Shape("G2", 32, 64, 65536),
    Shape("G3", 4, 64, 131072),
    Shape("G4", 256, 32, 32768),
    Shape("G5", 1000, 32, 256),
    Shape("G6", 16, 16, 512),
)
GATE_SHAPE = Shape("gate", 16, 4, 256)
# bfloat16 peers keep the membrane in bf16 (ulp 2**-8 .. 2**-7 around the threshold), so over the
# gate's 16 steps a neuron may legitimately diverge where the reference is this close to it.
BF16_FLIP_TOL = 0.05


def tiny(shape: Shape) -> Shape:
    """The CPU self-check's stand-in for a shape."""
    return Shape(shape.label, min(shape.T, 20), min(shape.B, 2), min(shape.N, 64))


# --------------------------------------------------------------------------------------------
# Surrogate exp(-2 |v - theta|) for each framework, and the fp64 reference
# --------------------------------------------------------------------------------------------

class _RefSpike(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * torch.exp(-2.0 * u.abs())


def reference(x_tbn: torch.Tensor, alpha: float, detach_reset: bool):
    """fp64 soft-reset LIF (IF for alpha = 1), theta 1, v0 0, single spike: spikes and the
    pre-spike membranes, both (T, B, N); differentiable in x."""
    v = torch.zeros_like(x_tbn[0])
    spikes, v_hat = [], []
    for t in range(x_tbn.shape[0]):
        h = alpha * v + x_tbn[t]
        s = _RefSpike.apply(h - 1.0)
        spikes.append(s)
        v_hat.append(h.detach())
        v = h - (s.detach() if detach_reset else s)
    return torch.stack(spikes), torch.stack(v_hat)


def snntorch_surrogate():
    from snntorch import surrogate

    def exp_surrogate(input_, grad_input, out):
        return grad_input * torch.exp(-2.0 * input_.abs())

    return surrogate.custom_surrogate(exp_surrogate)


# --------------------------------------------------------------------------------------------
# Peers
# --------------------------------------------------------------------------------------------

@dataclass
class Runner:
    """One instantiated peer: `call(x)` runs a whole sequence from a fresh state and returns the
    spikes in the peer's layout; `params` are cleared between calls."""

    call: Callable[[torch.Tensor], torch.Tensor]
    params: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Peer:
    name: str
    layout: str  # "BTN" or "TBN"
    layers: tuple
    dtypes: tuple
    detach_reset: bool  # the gradient variant the peer computes (snnTorch detaches the reset)
    slow: bool  # a Python loop over time: capped first when time runs out
    build: Callable[[str, torch.device], Runner]
    note: str = ""


def _stateful(layer: torch.nn.Module) -> Runner:
    def call(x):
        layer.reset_states()
        return layer(x)

    return Runner(call, [p for p in layer.parameters() if p.requires_grad])


def _sinabs_like(package: str):
    def build(layer: str, device: torch.device) -> Runner:
        layers = importlib.import_module(package)
        act = importlib.import_module(
            "sinabs_fast.activation" if package.startswith("sinabs_fast") else "sinabs.activation")
        kw = dict(spike_fn=act.SingleSpike,
                  surrogate_grad_fn=act.SingleExponential(grad_width=0.5, grad_scale=0.5))
        if layer == IAF:
            module = layers.IAF(**kw)
        else:
            module = layers.LIF(tau_mem=LIF_TAU, norm_input=False, **kw)
        return _stateful(module.to(device))

    return build


def build_spikingjelly(layer: str, device: torch.device) -> Runner:
    from spikingjelly.activation_based import neuron, surrogate

    kw = dict(v_threshold=1.0, v_reset=None, surrogate_function=surrogate.PiecewiseExp(alpha=2.0),
              detach_reset=False, step_mode="m")
    if layer == IAF:
        node = neuron.IFNode(**kw)
    else:
        node = neuron.LIFNode(tau=1.0 / (1.0 - LIF_ALPHA), decay_input=False, **kw)
    if hasattr(node, "backend"):  # SpikingJelly < 2.0
        node.backend = "triton" if device.type == "cuda" else "torch"
    node = node.to(device)

    def call(x):
        node.reset()
        return node(x)

    return Runner(call, [], {"sj_implementation": _sj_selected(layer)})


def _sj_selected(layer: str) -> str:
    """Which implementation SpikingJelly 2.x selected on CUDA (after a first call), or what was
    requested."""
    package = "spikingjelly._ops.if_" if layer == IAF else "spikingjelly._ops.lif"
    try:
        sel = importlib.import_module(package)._selection
        chosen = [getattr(v, "name", None) or getattr(v, "provider", None) or str(v)
                  for v in sel._selections.values()]
        if chosen:
            return ",".join(str(c) for c in chosen)
        return f"requested {sel._requested}"
    except Exception as error:  # noqa: BLE001
        return f"unknown ({type(error).__name__})"


def build_snntorch(layer: str, device: torch.device) -> Runner:
    import snntorch as snn

    lif = snn.Leaky(beta=1.0, threshold=1.0, spike_grad=snntorch_surrogate(),
                    reset_mechanism="subtract").to(device)

    def call(x):
        mem = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            spk, mem = lif(x[t], mem)
            out.append(spk)
        return torch.stack(out)

    return Runner(call, [])


PEERS = {
    OURS: Peer(OURS, "BTN", (IAF, LIF), ("float32", "bfloat16"), False, False,
               _sinabs_like("sinabs_fast.layers"),
               "bf16 input is promoted to float32 (sinabs semantics): float32 state and output"),
    SINABS: Peer(SINABS, "BTN", (IAF, LIF), ("float32",), False, True,
                 _sinabs_like("sinabs.layers")),
    SJ: Peer(SJ, "TBN", (IAF, LIF), ("float32", "bfloat16"), False, False, build_spikingjelly),
    SNNTORCH: Peer(SNNTORCH, "TBN", (IAF,), ("float32",), True, True, build_snntorch,
                   "reset detached in the gradient (snnTorch's mem_reset)"),
    EXODUS: Peer(EXODUS, "BTN", (IAF, LIF), ("float32",), False, False,
                 _sinabs_like("sinabs.exodus.layers")),
}
IMPORTS = {OURS: "sinabs_fast.layers", SINABS: "sinabs.layers",
           SJ: "spikingjelly.activation_based.neuron", SNNTORCH: "snntorch",
           EXODUS: "sinabs.exodus.layers"}


def importable(module: str) -> Optional[str]:
    """None when `module` imports, else the error."""
    try:
        importlib.import_module(module)
    except Exception as error:  # noqa: BLE001 (any import failure means: skip the peer)
        return f"{type(error).__name__}: {error}"
    return None


def to_layout(x_tbn: torch.Tensor, layout: str) -> torch.Tensor:
    return x_tbn if layout == "TBN" else x_tbn.transpose(0, 1).contiguous()


def from_layout(y: torch.Tensor, layout: str) -> torch.Tensor:
    return y if layout == "TBN" else y.transpose(0, 1)


# --------------------------------------------------------------------------------------------
# Semantics gate
# --------------------------------------------------------------------------------------------

def gate(peer: Peer, layer: str, dtype: torch.dtype, device: torch.device) -> dict:
    shape = GATE_SHAPE
    gen = torch.Generator().manual_seed(1234)
    k = torch.randint(0, 128, (shape.T, shape.B, shape.N), generator=gen, dtype=torch.float64)
    x64 = k / 256 + (1 / 8192 if dtype == torch.float32 else 0.0)
    x64 = x64.to(dtype).double()  # what the peer sees, exactly
    g64 = torch.randn(x64.shape, generator=gen, dtype=torch.float64)
    alpha = 1.0 if layer == IAF else LIF_ALPHA
    xr = x64.clone().requires_grad_()
    s_ref, v_ref = reference(xr, alpha, peer.detach_reset)
    (s_ref * g64).sum().backward()
    grad_ref = xr.grad

    runner = peer.build(layer, device)
    x = to_layout(x64.to(dtype), peer.layout).to(device).requires_grad_()
    y = runner.call(x)
    y_tbn = from_layout(y, peer.layout)
    y.backward(to_layout(g64, peer.layout).to(device=device, dtype=y.dtype))
    s = y_tbn.detach().double().cpu()
    grad = from_layout(x.grad, peer.layout).double().cpu()

    tol_v = 1e-6 if dtype == torch.float32 else BF16_FLIP_TOL
    tol_g = 1e-4 if dtype == torch.float32 else 1e-2
    mismatch = s != s_ref
    diverged = mismatch.any(0)  # (B, N) neurons with any mismatch
    first = mismatch.float().argmax(0)  # first mismatching step per neuron
    v_at_first = torch.gather(v_ref, 0, first.unsqueeze(0))[0]
    legit = diverged & ((v_at_first - 1.0).abs() < tol_v)
    bad = diverged & ~legit
    keep = ~diverged
    gr, gp = grad_ref[:, keep], grad[:, keep]
    rel = ((gp - gr).norm() / gr.norm().clamp_min(1e-300)).item()
    result = {
        "impl": peer.name, "layer": layer, "dtype": str(dtype).replace("torch.", ""),
        "shape": [shape.T, shape.B, shape.N], "spike_rate": round(s_ref.mean().item(), 4),
        "neurons_diverged_at_threshold": int(legit.sum()), "neurons_mismatched": int(bad.sum()),
        "grad_rel_err": rel, "grad_tol": tol_g, "reference_detach_reset": peer.detach_reset,
        "pass": bool(int(bad.sum()) == 0 and rel <= tol_g and int(legit.sum()) < keep.numel() // 10),
    }
    result.update({k2: v2 for k2, v2 in runner.info.items()})
    if peer.name == SJ:
        result["sj_implementation"] = _sj_selected(layer)
    return result


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------

class Timer:
    """CUDA-event timing with an L2 flush before each timed call (host timers on CPU)."""

    def __init__(self, device: torch.device, warmup_ms: float, rep_ms: float, min_reps: int,
                 max_reps: int, row_cap_ms: float):
        self.device = device
        self.cuda = device.type == "cuda"
        self.warmup_ms, self.rep_ms = warmup_ms, rep_ms
        self.min_reps, self.max_reps, self.row_cap_ms = min_reps, max_reps, row_cap_ms
        self.flush = torch.empty(64 * 1024 * 1024, dtype=torch.float32, device=device) \
            if self.cuda else None  # 256 MiB > L2 (50-60 MB)

    def once(self, fn) -> float:
        if not self.cuda:
            start = time.perf_counter()
            fn()
            return (time.perf_counter() - start) * 1e3
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def measure(self, fn) -> dict:
        first = self.once(fn)
        warm, spent = [], 0.0
        while not warm or (spent < self.warmup_ms and len(warm) < 10):
            warm.append(self.once(fn))
            spent += warm[-1]
        est = statistics.median(warm)
        reps = int(min(self.max_reps, max(self.min_reps, self.rep_ms / max(est, 1e-3))))
        reps = max(1, min(reps, int(self.row_cap_ms / max(est, 1e-3))))
        times = []
        if self.cuda:
            events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                      for _ in range(reps)]
            for start, end in events:
                self.flush.zero_()
                start.record()
                fn()
                end.record()
            torch.cuda.synchronize()
            times = [s.elapsed_time(e) for s, e in events]
        else:
            times = [self.once(fn) for _ in range(reps)]
        times.sort()
        q = statistics.quantiles(times, n=4) if len(times) >= 2 else [times[0]] * 3
        return {"ms": statistics.median(times), "iqr_ms": q[2] - q[0], "min_ms": times[0],
                "reps": len(times), "first_ms": first}

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()


def copy_bandwidth(device: torch.device, timer: Timer, gib: float = 1.0) -> dict:
    n = int(gib * (1 << 30)) // 4
    x = torch.rand(n, device=device)
    y = torch.empty_like(x)
    r = timer.measure(lambda: y.copy_(x))
    bytes_moved = 2 * n * 4
    del x, y
    return {"bytes": bytes_moved, "ms": r["ms"], "gbs": bytes_moved / (r["ms"] * 1e-3) / 1e9}


def mode_fn(runner: Runner, x: torch.Tensor, mode: str) -> Callable[[], None]:
    if mode == INFERENCE:
        def fn():
            with torch.no_grad():
                runner.call(x)
        return fn
    if mode == FORWARD:
        def fn():
            runner.call(x)
        return fn
    grads = {}

    def fn():
        x.grad = None
        for p in runner.params:
            p.grad = None
        y = runner.call(x)
        g = grads.get("g")
        if g is None or g.shape != y.shape or g.dtype != y.dtype:
            g = grads["g"] = torch.randn_like(y)
        y.backward(g)
    return fn


def memory_stats(runner: Runner, x: torch.Tensor, fn, device: torch.device, steps: int) -> dict:
    storages = {}

    def pack(t):
        try:
            st = t.untyped_storage()
            storages[(st.data_ptr(), st.device)] = st.nbytes()
        except Exception:  # noqa: BLE001
            pass
        return t

    x_ptr = x.untyped_storage().data_ptr()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = runner.call(x)
    del y
    out = {"saved_bytes_per_step": round(sum(storages.values()) / steps, 3),
           "saves_input": any(ptr == x_ptr for ptr, _ in storages)}
    if device.type == "cuda":
        fn()  # allocates the output gradient
        torch.cuda.synchronize()
        gc.collect()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(device) - base
        out.update(peak_mem_bytes=int(peak), peak_mem_bytes_per_step=round(peak / steps, 3))
    return out


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, device: torch.device):
        self.args, self.device = args, device
        self.t0 = time.monotonic()
        quick = args.quick
        self.timer = Timer(device, warmup_ms=10 if quick else 25, rep_ms=60 if quick else 200,
                           min_reps=3 if quick else 5, max_reps=50 if quick else 200,
                           row_cap_ms=1000 * args.row_cap_s)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        self.slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        self.out_dir = Path(args.out)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.json_path = self.out_dir / f"gpu-{self.slug}.json"
        self.md_path = self.out_dir / f"gpu-{self.slug}.md"
        self.result = {
            "device": name,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "python": platform.python_version(),
            "versions": versions(),
            "command": " ".join(sys.argv),
            "quick": quick,
            "tf32": {"matmul": torch.backends.cuda.matmul.allow_tf32,
                     "cudnn": torch.backends.cudnn.allow_tf32},
            "timing": {"method": "cuda events, 256 MiB L2 flush before each call" if
                       self.timer.cuda else "perf_counter (CPU self-check)",
                       "statistic": "median", "warmup_ms": self.timer.warmup_ms,
                       "rep_ms": self.timer.rep_ms, "row_cap_s": args.row_cap_s},
            "min_bytes_per_step_fp32": MIN_BYTES_FP32,
            "copy_bandwidth": None, "gates": [], "rows": [], "seed_network": [], "skipped": [],
            "unavailable": {},
        }
        if device.type == "cuda":
            props = torch.cuda.get_device_properties(device)
            self.result["device_properties"] = {
                "sm_count": props.multi_processor_count, "memory_bytes": props.total_memory,
                "capability": f"{props.major}.{props.minor}"}

    # -- bookkeeping --
    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def over_budget(self) -> bool:
        return self.elapsed() > self.args.time_budget_s

    def save(self) -> None:
        self.result["elapsed_s"] = round(self.elapsed(), 1)
        self.json_path.write_text(json.dumps(self.result, indent=1) + "\n")

    def skip(self, what: dict, why: str) -> None:
        self.result["skipped"].append({**what, "why": why})
        print(f"[bench_gpu] skip {what}: {why}", flush=True)

    def log(self, msg: str) -> None:
        print(f"[bench_gpu {self.elapsed():6.1f}s] {msg}", flush=True)

    # -- pieces --
    def shapes(self) -> list[Shape]:
        shapes = [s for s in SHAPES if self.args.shapes is None or s.label in self.args.shapes]
        return [tiny(s) for s in shapes] if self.device.type == "cpu" else shapes

    def run_copy_bandwidth(self) -> None:
        gib = 1.0 if self.device.type == "cuda" else 0.01
        bw = copy_bandwidth(self.device, self.timer, gib)
        self.result["copy_bandwidth"] = bw
        self.log(f"copy bandwidth y.copy_(x) on {gib} GiB: {bw['gbs']:.0f} GB/s "
                 f"(read + write, {bw['ms']:.3f} ms)")
        self.save()

    def run_gate(self, peer: Peer, layer: str, dtype_name: str) -> bool:
        try:
            res = gate(peer, layer, DTYPES[dtype_name], self.device)
        except Exception as error:  # noqa: BLE001
            res = {"impl": peer.name, "layer": layer, "dtype": dtype_name, "pass": False,
                   "error": f"{type(error).__name__}: {error}"}
            traceback.print_exc()
        self.result["gates"].append(res)
        self.save()
        self.log(f"gate {peer.name} {layer} {dtype_name}: {'PASS' if res['pass'] else 'FAIL'} "
                 + json.dumps({k: v for k, v in res.items()
                               if k not in ("impl", "layer", "dtype", "pass")}))
        return res["pass"]

    def run_row(self, peer: Optional[Peer], impl: str, layer: str, shape: Shape, mode: str,
                dtype_name: str) -> None:
        what = {"impl": impl, "layer": layer, "shape": shape.label, "mode": mode,
                "dtype": dtype_name}
        if self.over_budget():
            self.skip(what, f"time budget of {self.args.time_budget_s} s spent")
            return
        dtype = DTYPES[dtype_name]
        row = dict(what, T=shape.T, B=shape.B, N=shape.N)
        try:
            gen = torch.Generator(device=self.device).manual_seed(0)
            layout = peer.layout if peer else "BTN"
            dims = (shape.T, shape.B, shape.N) if layout == "TBN" else (shape.B, shape.T, shape.N)
            x = (torch.rand(dims, generator=gen, device=self.device) * 0.6).to(dtype)
            if impl == TRANSPOSE:
                def fn():
                    x.transpose(0, 1).contiguous()
                runner = None
            else:
                runner = peer.build(layer, self.device)
                if mode != INFERENCE:
                    x.requires_grad_()
                fn = mode_fn(runner, x, mode)
            row.update(self.timer.measure(fn))
            if runner is not None and mode == FWD_BWD:
                row.update(memory_stats(runner, x, fn, self.device, shape.steps))
            if peer is not None and peer.name == SJ:
                row["sj_implementation"] = _sj_selected(layer)
            if peer is not None and peer.note and (dtype_name != "float32" or peer.name != OURS):
                row["note"] = peer.note
        except torch.cuda.OutOfMemoryError as error:
            self.skip(what, f"out of memory: {str(error).splitlines()[0]}")
            return
        except Exception as error:  # noqa: BLE001
            traceback.print_exc()
            self.skip(what, f"{type(error).__name__}: {error}")
            return
        finally:
            x = fn = runner = None  # noqa: F841
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
        elem = DTYPES[dtype_name].itemsize if hasattr(DTYPES[dtype_name], "itemsize") else 4
        bytes_per_step = (MIN_BYTES_FP32[INFERENCE] if impl == TRANSPOSE else
                          MIN_BYTES_FP32[mode]) * elem / 4
        bw = bytes_per_step * shape.steps / (row["ms"] * 1e-3)
        row.update(min_bytes_per_step=bytes_per_step, bandwidth_gbs=round(bw / 1e9, 2),
                   bandwidth_fraction=round(bw / (self.result["copy_bandwidth"]["gbs"] * 1e9), 4),
                   neuron_steps_per_s=round(shape.steps / (row["ms"] * 1e-3)))
        for key in ("ms", "iqr_ms", "min_ms", "first_ms"):
            row[key] = round(row[key], 5)
        self.result["rows"].append(row)
        self.save()
        self.log(f"{impl:14s} {layer} {shape.label} {mode:16s} {dtype_name:8s} "
                 f"{row['ms']:10.4f} ms  BW {100 * row['bandwidth_fraction']:5.1f}%  "
                 f"(first {row['first_ms']:.1f} ms, {row['reps']} reps)")

    def run_seed_network(self) -> None:
        from sinabs_fast.demo import seed_network

        B, T = (32, 50) if self.device.type == "cuda" else (2, 5)
        impls = [(OURS, "sinabs_fast.layers")]
        if SINABS in self.available:
            impls.append((SINABS, "sinabs.layers"))
        gen = torch.Generator(device=self.device).manual_seed(0)
        x = (torch.rand(B, T, 1, 28, 28, generator=gen, device=self.device) < 0.3).float()
        labels = torch.randint(0, 10, (B,), generator=gen, device=self.device)
        weights, outputs = None, {}
        for impl, package in impls:
            what = {"impl": impl, "layer": "seed_network", "shape": f"B{B} T{T}",
                    "mode": "train_step", "dtype": "float32"}
            if self.elapsed() > self.args.time_budget_s + 30:  # cheap: 30 s of grace
                self.skip(what, "time budget spent")
                continue
            try:
                torch.manual_seed(0)
                net = seed_network(importlib.import_module(package), B).to(self.device)
                if weights is None:
                    weights = {k: v.clone() for k, v in net.state_dict().items()
                               if k.endswith("weight")}
                else:
                    net.load_state_dict(weights, strict=False)
                opt = torch.optim.SGD(net.parameters(), lr=1e-3)
                with torch.no_grad():
                    reset_all(net)
                    outputs[impl] = net(x).detach().clone()

                def step():
                    reset_all(net)
                    opt.zero_grad(set_to_none=True)
                    out = net(x)
                    loss = torch.nn.functional.cross_entropy(out.sum(1), labels)
                    loss.backward()
                    opt.step()

                def infer():
                    reset_all(net)
                    with torch.no_grad():
                        net(x)

                r = self.timer.measure(step)
                ri = self.timer.measure(infer)
                row = dict(what, ms=round(r["ms"], 4), iqr_ms=round(r["iqr_ms"], 4),
                           reps=r["reps"], first_ms=round(r["first_ms"], 2),
                           inference_ms=round(ri["ms"], 4))
                if self.device.type == "cuda":
                    step()
                    torch.cuda.synchronize()
                    base = torch.cuda.memory_allocated(self.device)
                    torch.cuda.reset_peak_memory_stats(self.device)
                    step()
                    torch.cuda.synchronize()
                    row["peak_mem_bytes"] = int(torch.cuda.max_memory_allocated(self.device) - base)
                self.result["seed_network"].append(row)
                self.log(f"seed network train step {impl}: {row['ms']:.3f} ms, inference "
                         f"{row['inference_ms']:.3f} ms")
            except Exception as error:  # noqa: BLE001
                traceback.print_exc()
                self.skip(what, f"{type(error).__name__}: {error}")
            finally:
                net = opt = None
                gc.collect()
        if len(outputs) == 2:
            a, b = outputs[OURS], outputs[SINABS]
            self.result["seed_network_identical_output"] = bool(torch.equal(a, b))
            self.result["seed_network_max_abs_diff"] = float((a - b).abs().max())
        self.save()

    # -- the plan --
    def main(self) -> None:
        args = self.args
        self.available = {}
        for impl in args.impls:
            if impl == TRANSPOSE:
                continue
            if self.device.type == "cpu" and impl == EXODUS:
                self.result["unavailable"][impl] = "CUDA only"
                continue
            err = importable(IMPORTS[impl])
            if err is None:
                self.available[impl] = PEERS[impl]
            elif impl == OURS:
                # Without sinabs_fast the table would hold only the peers and look like a result.
                raise SystemExit(f"bench_gpu: sinabs_fast is not importable ({err}); build it in "
                                 "place and put the repository root on PYTHONPATH")
            else:
                self.result["unavailable"][impl] = err
                self.log(f"{impl} unavailable: {err}")
        self.result["versions"] = versions()
        self.run_copy_bandwidth()

        # Gates first (cheap), for every (peer, layer, dtype) that will be timed.
        layers = [LIF_NAME for LIF_NAME in (IAF, LIF) if LIF_NAME in args.layers]
        dtypes = [d for d in ("float32", "bfloat16") if d in args.dtypes]
        passed = {}
        for peer in self.available.values():
            for layer in layers:
                for dt in dtypes:
                    if layer in peer.layers and dt in peer.dtypes:
                        passed[(peer.name, layer, dt)] = self.run_gate(peer, layer, dt)

        # Rows in priority order: IAF float32 (all peers), the seed network, bf16, then LIF.
        shapes = self.shapes()
        plan = []
        for layer in layers:
            for dt in dtypes:
                stage_shapes = shapes
                if args.quick and (layer == LIF or dt == "bfloat16"):
                    keep = {"G2", "G5", "G6"} if layer == LIF else {"G2", "G3", "G6"}
                    stage_shapes = [s for s in shapes if s.label in keep]
                for shape in stage_shapes:
                    for mode in args.modes:
                        for impl in args.impls:
                            plan.append((layer, dt, shape, mode, impl))
        order = lambda p: (p[0] != IAF or p[1] != "float32", p[1] != "float32", p[0])  # noqa: E731
        plan.sort(key=order)
        seed_done = False
        for layer, dt, shape, mode, impl in plan:
            if not seed_done and (layer, dt) != (IAF, "float32"):
                if args.seed_network:
                    self.run_seed_network()
                seed_done = True
            what = {"impl": impl, "layer": layer, "shape": shape.label, "mode": mode, "dtype": dt}
            if impl == TRANSPOSE:
                if layer == IAF and mode == INFERENCE and dt == "float32":
                    self.run_row(None, TRANSPOSE, "-", shape, INFERENCE, dt)
                continue
            peer = self.available.get(impl)
            if peer is None or layer not in peer.layers or dt not in peer.dtypes:
                continue
            if not passed.get((impl, layer, dt)):
                self.skip(what, "failed the semantics gate")
                continue
            if peer.slow and self.elapsed() > args.slow_budget_s:
                self.skip(what, f"slow peer after {args.slow_budget_s} s")
                continue
            self.run_row(peer, impl, layer, shape, mode, dt)
        if not seed_done and args.seed_network:
            self.run_seed_network()
        self.save()
        md = markdown(self.result)
        self.md_path.write_text(md + "\n")
        print()
        print(md)
        self.log(f"wrote {self.json_path} and {self.md_path}")


def reset_all(net: torch.nn.Module) -> None:
    for m in net.modules():
        if hasattr(m, "reset_states"):
            m.reset_states()
            m.zero_grad()


def versions() -> dict:
    from importlib import metadata

    out = {}
    for dist in ("sinabs_fast", "sinabs", "spikingjelly", "snntorch", "sinabs-exodus", "triton",
                 "nir", "nirtorch", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

def _fmt(ms: Optional[float]) -> str:
    if ms is None:
        return "—"
    return f"{ms:.4f}" if ms < 1 else f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def markdown(result: dict) -> str:
    rows = result["rows"]
    bw = result.get("copy_bandwidth") or {}
    lines = [f"## {result['device']}: torch {result['torch']} (CUDA {result['cuda']}), "
             f"triton {result['versions'].get('triton')}",
             "",
             f"Copy bandwidth (`y.copy_(x)`, 1 GiB, read + write): **{bw.get('gbs', 0):.0f} GB/s**. "
             "ms = median per layer call (CUDA events, L2 flushed); BW% = effective bandwidth at "
             "the fewest bytes per neuron-step (fp32: 8 inference, 12 forward, 24 fwd+bwd; halved "
             "for bf16 input) over the copy bandwidth; xN = peer ms / sinabs_fast ms.", ""]
    gates = result["gates"]
    if gates:
        lines += ["Semantics gate (T=16, B=4, N=256 vs an fp64 reference):", "",
                  "| impl | layer | dtype | pass | grad rel err | note |", "|---|---|---|---|---:|---|"]
        for g in gates:
            note = g.get("error") or (f"{g.get('neurons_mismatched')} mismatched neurons"
                                      if g.get("neurons_mismatched") else "")
            if g.get("reference_detach_reset"):
                note = (note + "; " if note else "") + "vs the detached-reset reference"
            if g.get("sj_implementation"):
                note = (note + "; " if note else "") + f"SJ impl: {g['sj_implementation']}"
            err = g.get("grad_rel_err")
            lines.append(f"| {g['impl']} | {g['layer']} | {g['dtype']} | "
                         f"{'yes' if g['pass'] else '**no**'} | "
                         f"{'—' if err is None else f'{err:.1e}'} | {note} |")
        lines.append("")
    impls = [i for i in IMPLS if any(r["impl"] == i for r in rows) and i != TRANSPOSE]
    keys = []
    for r in rows:
        k = (r["layer"], r["dtype"], r["mode"])
        if r["impl"] != TRANSPOSE and k not in keys:
            keys.append(k)
    for layer, dtype, mode in keys:
        lines += [f"### {layer}, {dtype}, {mode}", "",
                  "| shape | " + " | ".join(f"{i} ms" for i in impls)
                  + f" | {OURS} BW% | best peer / ours | ours peak MiB |",
                  "|---|" + "---:|" * (len(impls) + 3)]
        shapes = []
        for r in rows:
            if (r["layer"], r["dtype"], r["mode"]) == (layer, dtype, mode) and r["shape"] not in shapes:
                shapes.append(r["shape"])
        for label in shapes:
            cell = {r["impl"]: r for r in rows if (r["layer"], r["dtype"], r["mode"], r["shape"])
                    == (layer, dtype, mode, label)}
            ours = cell.get(OURS)
            cells = []
            for i in impls:
                r = cell.get(i)
                if r is None:
                    cells.append("—")
                elif ours is not None and i != OURS:
                    cells.append(f"{_fmt(r['ms'])} ({r['ms'] / ours['ms']:.1f}x)")
                else:
                    cells.append(_fmt(r["ms"]))
            peers = [r["ms"] for i, r in cell.items() if i != OURS]
            best = f"{min(peers) / ours['ms']:.2f}x" if ours and peers else "—"
            bwp = f"{100 * ours['bandwidth_fraction']:.1f}" if ours else "—"
            mem = (f"{ours['peak_mem_bytes'] / 2**20:.0f}" if ours and "peak_mem_bytes" in ours
                   else "—")
            shape = next(s for s in SHAPES if s.label == label)
            lines.append(f"| {shape.describe()} | " + " | ".join(cells)
                         + f" | {bwp} | {best} | {mem} |")
        lines.append("")
    mem_rows = [r for r in rows if r["mode"] == FWD_BWD and "saved_bytes_per_step" in r]
    if mem_rows:
        lines += ["### Memory, forward+backward", "",
                  "| impl | layer | shape | dtype | saved B/step | saves input | peak B/step |",
                  "|---|---|---|---|---:|---|---:|"]
        for r in mem_rows:
            lines.append(f"| {r['impl']} | {r['layer']} | {r['shape']} | {r['dtype']} | "
                         f"{r['saved_bytes_per_step']} | {r['saves_input']} | "
                         f"{r.get('peak_mem_bytes_per_step', '—')} |")
        lines.append("")
    tr = [r for r in rows if r["impl"] == TRANSPOSE]
    if tr:
        lines += ["Transpose (B, T, N) -> (T, B, N) contiguous, float32: "
                  + ", ".join(f"{r['shape']} {_fmt(r['ms'])} ms" for r in tr), ""]
    if result["seed_network"]:
        lines += ["### Seed network (sinabs_fast.demo.seed_network), float32", "",
                  "| impl | shape | train step ms | inference ms | peak MiB |",
                  "|---|---|---:|---:|---:|"]
        for r in result["seed_network"]:
            mem = f"{r['peak_mem_bytes'] / 2**20:.0f}" if "peak_mem_bytes" in r else "—"
            lines.append(f"| {r['impl']} | {r['shape']} | {_fmt(r['ms'])} | "
                         f"{_fmt(r['inference_ms'])} | {mem} |")
        if "seed_network_identical_output" in result:
            lines.append(f"\nIdentical output to sinabs: {result['seed_network_identical_output']}")
        lines.append("")
    if result["skipped"]:
        lines += [f"Skipped: {len(result['skipped'])} rows (see the JSON)."]
    if result["unavailable"]:
        lines += ["Unavailable: " + "; ".join(f"{k}: {v}" for k, v in result["unavailable"].items())]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer reps, LIF and bf16 on a subset of shapes (~3 min on an H100)")
    p.add_argument("--out", default=os.environ.get("OUT") or str(DEFAULT_OUT),
                   help="output folder (default: $OUT if set, else benchmarks/out)")
    p.add_argument("--shapes", nargs="+", choices=[s.label for s in SHAPES])
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    p.add_argument("--layers", nargs="+", choices=(IAF, LIF), default=[IAF, LIF])
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=list(DTYPES))
    p.add_argument("--no-seed-network", dest="seed_network", action="store_false")
    p.add_argument("--time-budget-s", type=float, default=None,
                   help="skip the remaining rows after this many seconds (default 150 with "
                        "--quick, 900 otherwise)")
    p.add_argument("--slow-budget-s", type=float, default=None,
                   help="skip the Python-loop peers (sinabs, snntorch) after this many seconds "
                        "(default: 2/3 of the time budget)")
    p.add_argument("--row-cap-s", type=float, default=None,
                   help="at most this many seconds of timed calls per row (default 1.5 with "
                        "--quick, 5 otherwise)")
    p.add_argument("--sj-impl", default="triton", choices=("auto", "cuda", "triton", "torch"),
                   help="SpikingJelly's CUDA implementation (SJ_*_CUDA_IMPLEMENTATION)")
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                   help="cpu: a self-check of this script on tiny shapes (timings meaningless)")
    args = p.parse_args(argv)
    if args.time_budget_s is None:
        args.time_budget_s = 150.0 if args.quick else 900.0
    if args.slow_budget_s is None:
        args.slow_budget_s = args.time_budget_s * 2 / 3
    if args.row_cap_s is None:
        args.row_cap_s = 1.5 if args.quick else 5.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"bench_gpu: no CUDA device (torch {torch.__version__}, built with CUDA "
              f"{torch.version.cuda}); nothing to measure. Run it on a GPU machine "
              "(benchmarks/gpu_check.sh), or with --device cpu to check the script itself.")
        return 0
    for var in ("SJ_IF_CUDA_IMPLEMENTATION", "SJ_LIF_CUDA_IMPLEMENTATION"):
        os.environ.setdefault(var, args.sj_impl)
    device = torch.device(args.device)
    bench = Bench(args, device)
    bench.log(f"device {bench.result['device']}, torch {torch.__version__}, "
              f"versions {bench.result['versions']}, output {bench.json_path}")
    bench.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
