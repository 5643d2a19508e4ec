"""The CPU output pool's bound (csrc/cpu/output_pool.cpp, docs/hardening.md): the variable
SINABS_FAST_CPU_POOL_MB sets it when the pool is created, 0 keeps no free block and gives the
same results, and a value that is not a number of MiB is a clear error. Each case runs in a
subprocess: the pool is created once per process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Large enough for pooled outputs (256 KiB and more), several calls so blocks come back.
SCRIPT = """
import torch, sinabs_fast.layers as sl
torch.manual_seed(0)
layer = sl.LIF(tau_mem=10.0, tau_syn=5.0)
total = 0.0
for _ in range(4):
    x = (torch.rand(4, 64, 512) * 2).requires_grad_()
    out = layer(x)
    out.sum().backward()
    total += float(out.sum()) + float(x.grad.double().sum())
    layer.zero_grad()
print(repr(total))
"""


def _run(pool_mb):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("SINABS_FAST_CPU_POOL_MB", None)
    if pool_mb is not None:
        env["SINABS_FAST_CPU_POOL_MB"] = pool_mb
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)


def test_no_pool_gives_the_same_results():
    default, none = _run(None), _run("0")
    assert default.returncode == 0 and none.returncode == 0, default.stderr + none.stderr
    assert float(default.stdout) != 0 and default.stdout == none.stdout


@pytest.mark.parametrize("value", ["lots", "-5", "12MB"])
def test_a_bound_that_is_not_a_number_of_mib_is_a_clear_error(value):
    proc = _run(value)
    assert proc.returncode != 0
    assert f"SINABS_FAST_CPU_POOL_MB must be a number of MiB (0 or more), got '{value}'" \
        in proc.stderr
