"""Every fused op called with wrong argument counts, shapes, dtypes and (on CUDA) devices raises a
Python exception and never crashes the process.

The calls run in a subprocess (tests/op_error_cases.py): on one toolchain a C++ argument error
from the CPU ops once segfaulted while it unwound (benchmarks/gpu-notes.md), and a crash must fail
this test, not end the test run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CASES = Path(__file__).with_name("op_error_cases.py")
OPS = {"lif_forward", "lif_backward", "alif_forward", "alif_backward", "lif_recurrent_forward",
       "lif_recurrent_backward", "alif_recurrent_forward", "alif_recurrent_backward"}
# Spoiled arguments that a call may accept: parameters and gradients are converted to the compute
# dtype (integer ones too; only the input's dtype decides it), and the recurrent backward reads
# v_post_tm only for the alpha_mem gradient, which the recorded call does not ask for.
MAY_RETURN = {("dtype", None), ("shape", "v_post_tm")}
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def run_cases(device: str) -> list[dict]:
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.run([sys.executable, str(CASES), device], capture_output=True, text=True,
                          timeout=600, env=env, cwd=root)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    last = next((d for d in reversed(lines) if "op" in d), None)
    assert proc.returncode == 0 and lines and lines[-1].get("done"), (
        f"the subprocess ended with exit status {proc.returncode} (a negative one is a signal) "
        f"at {last}\n{proc.stderr[-3000:]}")
    return lines


def ops_on(device: str) -> set:
    """The ops with a kernel for the device (all of them, in a build with CUDA kernels)."""
    key = "CUDA" if device == "cuda" else "CPU"
    return {op for op in OPS
            if torch._C._dispatch_has_kernel_for_dispatch_key(f"sinabs_fast::{op}", key)}


@pytest.mark.parametrize("device", DEVICES)
def test_wrong_arguments_raise_python_exceptions(device):
    import sinabs_fast  # noqa: F401  (registers the ops)

    expected = ops_on(device)
    lines = run_cases(device)
    recorded = {name.split("::")[1] for name in lines[0]["recorded"]}
    assert recorded == expected
    results = [d for d in lines if "error" in d]
    assert {d["op"].split("::")[1] for d in results} == expected
    returned = [d for d in results if d["error"] is None
                and (d["how"], None) not in MAY_RETURN and (d["how"], d["arg"]) not in MAY_RETURN]
    # Integer input is the one dtype error every forward op must name.
    returned += [d for d in results if d["how"] == "dtype" and d["arg"] == "input"
                 and d["op"].endswith("_forward") and d["error"] is None]
    assert not returned, returned
    counts = [d for d in results if d["how"].startswith("one argument")]
    assert len(counts) == 2 * len(expected) and all(d["error"] for d in counts)
    assert sum(d["how"] == "shape" for d in results) >= 6 * len(expected)
