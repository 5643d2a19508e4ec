"""Calls every fused op (``torch.ops.sinabs_fast.*``) with wrong arguments and prints one JSON line
per call: which argument was spoiled, how, and the exception it raised (or ``null`` when the call
returned). tests/test_op_errors.py runs this file in a subprocess, so that a crash in the
extension (a segfault while a C++ error unwinds) ends that process and fails the test instead of
ending the test run; benchmarks/gpu_check.sh runs it on the GPU machine too.

Valid calls come from real layer calls (IAF, LIF with a synaptic current, ALIF, LIFRecurrent and
ALIFRecurrent with a linear ``rec_connect``; forward and backward), recorded under a dispatch mode. Each recorded
call is then repeated with one change: one argument too few or too many, one tensor argument of
the wrong shape (last dimension one longer, or a 0-dim tensor given a length-3 dimension), of
an integer dtype, or (on CUDA) on the CPU.

Usage: python tests/op_error_cases.py [cpu|cuda]
"""

from __future__ import annotations

import json
import sys
from typing import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class RecordOps(TorchDispatchMode):
    """Keeps the first call of every sinabs_fast op: (overload, args)."""

    def __init__(self):
        super().__init__()
        self.calls = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "sinabs_fast" and func.name() not in self.calls:
            self.calls[func.name()] = (func, tuple(args))
        return func(*args, **kwargs)


def record_calls(device: str) -> dict:
    """One forward and backward of each layer kind, on tiny shapes."""
    import torch.nn as nn

    import sinabs_fast.layers as sl

    B, T, N = 2, 3, 4
    torch.manual_seed(0)
    layers = [
        sl.IAF(),
        sl.LIF(tau_mem=10.0, tau_syn=5.0, train_alphas=True, norm_input=True),
        sl.ALIF(tau_mem=10.0, tau_adapt=20.0),
        sl.LIFRecurrent(tau_mem=10.0, rec_connect=nn.Linear(N, N)),
        sl.ALIFRecurrent(tau_mem=10.0, tau_adapt=20.0, rec_connect=nn.Linear(N, N)),
    ]
    recorder = RecordOps()
    for layer in layers:
        layer = layer.to(device)
        x = (torch.rand(B, T, N, device=device) * 3).requires_grad_()
        with recorder:
            out = layer(x)
            out.backward(torch.rand_like(out))
    return recorder.calls


def spoiled(t: torch.Tensor, how: str) -> torch.Tensor:
    """t with one thing wrong: its shape (last dimension one longer; a 0-dim tensor gets a
    length-3 dimension), its dtype (int32) or its device (the CPU)."""
    if how == "shape":
        return torch.zeros(3, device=t.device) if t.dim() == 0 else torch.zeros(
            *t.shape[:-1], t.shape[-1] + 1, dtype=t.dtype, device=t.device)
    if how == "dtype":
        return torch.ones(t.shape, dtype=torch.int32, device=t.device)
    if how == "device":
        return t.cpu()
    raise ValueError(how)


def cases(calls: dict, device: str) -> Iterator[tuple[str, str, str, tuple]]:
    """(op name, argument name, how, args) for every spoiled call."""
    for name, (func, args) in sorted(calls.items()):
        names = [a.name for a in func._schema.arguments]
        yield name, "-", "one argument too few", args[:-1]
        yield name, "-", "one argument too many", args + (args[-1],)
        for i, arg in enumerate(args):
            if not isinstance(arg, torch.Tensor) or arg.numel() == 0:
                continue
            hows = ["shape", "dtype"] + (["device"] if device == "cuda" else [])
            for how in hows:
                yield name, names[i], how, args[:i] + (spoiled(arg, how),) + args[i + 1:]


def main(device: str) -> None:
    import sinabs_fast  # noqa: F401  (registers the ops)

    calls = record_calls(device)
    print(json.dumps({"recorded": sorted(calls)}), flush=True)
    for name, arg, how, args in cases(calls, device):
        # The case is printed before the call, so a crash leaves its name as the last line.
        print(json.dumps({"op": name, "arg": arg, "how": how}), flush=True)
        func = calls[name][0]
        try:
            func(*args)
            error = None
        except Exception as e:  # noqa: BLE001  (any Python exception is the wanted outcome)
            error = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
        print(json.dumps({"op": name, "arg": arg, "how": how, "error": error}), flush=True)
    print(json.dumps({"done": True}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cpu")
