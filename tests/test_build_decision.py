"""setup.py's build decisions: CUDA (sinabs_fast/_cuda_toolkit.py) on fake toolkit folders, only
when torch is a CUDA build and the toolkit is really there (an nvcc that runs, cuda_runtime.h,
libcudart), else a CPU build with the reason; and the C++ standard and ABI
(sinabs_fast/_build_flags.py), torch's."""

import inspect
import os
import re
import stat

import pytest

from sinabs_fast._build_flags import language_flags, torch_config_cmake, torch_cxx_standard
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


# setup.py's C++ standard and ABI (sinabs_fast/_build_flags.py): torch's, never the compiler's
# default or a CFLAGS one that disagrees.

def test_the_standard_is_the_one_torch_declares():
    assert torch_cxx_standard("set_target_properties(torch PROPERTIES\n    CXX_STANDARD 20\n)") \
        == "c++20"
    assert torch_cxx_standard("  CXX_STANDARD 17 ") == "c++17"
    assert torch_cxx_standard("") is None


def test_the_installed_torch_declares_the_standard_its_extension_builder_passes():
    import torch
    import torch.utils.cpp_extension as cpp_extension

    standard = torch_cxx_standard(torch_config_cmake(os.path.dirname(torch.__file__)))
    assert standard is not None and f"-std={standard}" in inspect.getsource(cpp_extension)


@pytest.mark.parametrize("standard, abi, expected", [
    ("c++20", True, ["-std=c++20", "-D_GLIBCXX_USE_CXX11_ABI=1"]),
    ("c++17", False, ["-std=c++17", "-D_GLIBCXX_USE_CXX11_ABI=0"]),
    (None, True, ["-D_GLIBCXX_USE_CXX11_ABI=1"]),
])
def test_language_flags_spell_out_torchs_standard_and_abi(standard, abi, expected):
    agreeing = {"CFLAGS": f"-O2 -std={standard or 'c++20'}", "CXXFLAGS": "-g"}
    assert language_flags(standard, abi, {}) == expected
    assert language_flags(standard, abi, agreeing if standard else {}) == expected


@pytest.mark.parametrize("environ, named", [
    ({"CXXFLAGS": "-O2 -std=c++17"}, "CXXFLAGS has -std=c++17"),
    ({"CFLAGS": "-D_GLIBCXX_USE_CXX11_ABI=0"}, "CFLAGS has -D_GLIBCXX_USE_CXX11_ABI=0"),
])
def test_cflags_that_disagree_with_torch_are_an_error(environ, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        language_flags("c++20", True, environ)
