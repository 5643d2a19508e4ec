"""setup.py's CUDA decision (sinabs_fast/_cuda_toolkit.py) on fake toolkit folders: CUDA only
when torch is a CUDA build and the toolkit is really there (an nvcc that runs, cuda_runtime.h,
libcudart), else a CPU build with the reason."""

import os
import stat

import pytest

from sinabs_fast._cuda_toolkit import decide_cuda, toolkit_problem


def _toolkit(root, nvcc_exit=0, header=True, runtime=True):
    os.makedirs(root / "bin")
    nvcc = root / "bin" / "nvcc"
    nvcc.write_text(f"#!/bin/sh\necho 'Cuda compilation tools'\nexit {nvcc_exit}\n")
    nvcc.chmod(nvcc.stat().st_mode | stat.S_IXUSR)
    if header:
        os.makedirs(root / "include")
        (root / "include" / "cuda_runtime.h").write_text("")
    if runtime:
        os.makedirs(root / "lib64")
        (root / "lib64" / "libcudart.so").write_text("")
    return str(root)


def test_a_complete_toolkit_builds_cuda(tmp_path):
    home = _toolkit(tmp_path / "cuda")
    assert toolkit_problem(home) is None
    use, reason = decide_cuda("auto", "13.0", home)
    assert use and home in reason


@pytest.mark.parametrize("broken, expected", [
    (dict(runtime=False), "libcudart"),   # the wrapper-derived CUDA_HOME of the issue
    (dict(header=False), "cuda_runtime.h"),
    (dict(nvcc_exit=1), "exited 1"),
])
def test_an_incomplete_toolkit_builds_for_the_cpu(tmp_path, broken, expected):
    home = _toolkit(tmp_path / "cuda", **broken)
    use, reason = decide_cuda("auto", "13.0", home)
    assert not use and expected in reason
    with pytest.raises(RuntimeError, match=expected):
        decide_cuda("1", "13.0", home)


def test_no_toolkit_or_a_cpu_torch_builds_for_the_cpu(tmp_path):
    assert decide_cuda("auto", "13.0", None) == (False, "no CUDA toolkit folder (CUDA_HOME=None)")
    assert decide_cuda("auto", None, _toolkit(tmp_path / "cuda")) == (False, "torch is a CPU build")
    assert decide_cuda("0", "13.0", str(tmp_path / "cuda")) == (False, "SINABS_FAST_CUDA=0")
    with pytest.raises(ValueError, match="SINABS_FAST_CUDA"):
        decide_cuda("yes", "13.0", None)
