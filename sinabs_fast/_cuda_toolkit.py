"""setup.py's decision whether to compile the CUDA kernels (standard library only: setup.py loads
this file by path, before the package exists).

torch derives ``CUDA_HOME`` from any ``nvcc`` on PATH, even a wrapper script or a toolkit without
the runtime, so "torch is a CUDA build and CUDA_HOME is set" is not enough: the build also needs
an nvcc that runs, ``cuda_runtime.h`` and the runtime library under ``CUDA_HOME``.
"""

import glob
import os
import subprocess
import sys
from typing import Optional, Tuple

# Where toolkits keep headers and libraries: the classic layout and the cross-target layout.
_INCLUDE_DIRS = ("include", "targets/*/include")
_LIBRARY_DIRS = ("lib64", "lib", "targets/*/lib", "lib/x64")
_RUNTIME_LIBRARIES = ("libcudart.so*", "libcudart_static.a", "cudart.lib")


def _found(root: str, folders: Tuple[str, ...], names: Tuple[str, ...]) -> bool:
    return any(glob.glob(os.path.join(root, folder, name)) for folder in folders for name in names)


def toolkit_problem(cuda_home: Optional[str]) -> Optional[str]:
    """Why the CUDA toolkit at ``cuda_home`` cannot build the extension, or None when it can."""
    if not cuda_home or not os.path.isdir(cuda_home):
        return f"no CUDA toolkit folder (CUDA_HOME={cuda_home})"
    nvcc = os.path.join(cuda_home, "bin", "nvcc")
    try:
        ran = subprocess.run([nvcc, "--version"], capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        return f"{nvcc} does not run ({error.__class__.__name__})"
    if ran.returncode != 0:
        return f"{nvcc} --version exited {ran.returncode}"
    if not _found(cuda_home, _INCLUDE_DIRS, ("cuda_runtime.h",)):
        return f"no cuda_runtime.h under {cuda_home}"
    if not _found(cuda_home, _LIBRARY_DIRS, _RUNTIME_LIBRARIES):
        return f"no CUDA runtime library (libcudart) under {cuda_home}"
    return None


def decide_cuda(mode: str, torch_cuda: Optional[str], cuda_home: Optional[str]) -> Tuple[bool, str]:
    """Whether to build the CUDA kernels, and a one-line reason.

    Args:
        mode: ``SINABS_FAST_CUDA``: ``"auto"`` (CUDA when possible), ``"1"`` (CUDA or an error),
            ``"0"`` (CPU only).
        torch_cuda: ``torch.version.cuda`` (None for a CPU build of torch).
        cuda_home: the toolkit folder torch found (``torch.utils.cpp_extension.CUDA_HOME``).
    """
    mode = mode.lower()
    if mode not in ("auto", "0", "1"):
        raise ValueError(f"SINABS_FAST_CUDA must be 0, 1 or auto, got {mode!r}")
    if mode == "0":
        return False, "SINABS_FAST_CUDA=0"
    if torch_cuda is None:
        problem = "torch is a CPU build"
    else:
        problem = toolkit_problem(cuda_home)
    if problem is None:
        return True, f"CUDA toolkit at {cuda_home}, torch built with CUDA {torch_cuda}"
    if mode == "1":
        raise RuntimeError(f"SINABS_FAST_CUDA=1 but the CUDA kernels cannot be built: {problem}")
    return False, problem


def libtorch_for_cmake() -> Tuple[Optional[str], str]:
    """torch's CMake prefix, for the Makefile's CMake build of the operator library against
    libtorch, or None and why not: the CMake config of a CUDA build of torch insists on the CUDA
    toolkit, which a machine without one lacks (the Python build then compiles for the CPU)."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME

    if torch.version.cuda is not None:
        problem = toolkit_problem(CUDA_HOME)
        if problem is not None:
            return None, f"torch {torch.__version__} is a CUDA build and {problem}"
    return torch.utils.cmake_prefix_path, ""


if __name__ == "__main__":
    # `python sinabs_fast/_cuda_toolkit.py --cmake-prefix` (run by path: the package may not be
    # built yet) prints the prefix, or nothing and the reason on stderr.
    if sys.argv[1:] != ["--cmake-prefix"]:
        sys.exit("usage: python sinabs_fast/_cuda_toolkit.py --cmake-prefix")
    prefix, why = libtorch_for_cmake()
    if prefix is None:
        print(f"ctest: the operator library is not built against libtorch ({why}); "
              "the C++ unit tests still run", file=sys.stderr)
    print(prefix or "")
