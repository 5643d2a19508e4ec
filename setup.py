"""Build script for sinabs_fast.

Install with ``pip install --no-build-isolation -e .`` (or ``.``): the extension compiles against
the torch already installed (metadata, extras and the ``sinabs-fast`` command are in
pyproject.toml; the version in sinabs_fast/_version.py).

The CPU extension is always built. The CUDA kernels (csrc/cuda/*.cu) are added when torch was built
with CUDA and the toolkit is really there: an nvcc that runs, ``cuda_runtime.h`` and the runtime
library under ``CUDA_HOME`` (sinabs_fast/_cuda_toolkit.py); otherwise the build is for the CPU and
says why in one line. ``SINABS_FAST_CUDA=0|1|auto`` overrides that (``1`` fails loudly when CUDA is
unavailable). Where the ``nvcc`` on PATH is a wrapper, point ``CUDA_HOME`` at the toolkit
(e.g. ``/usr/local/cuda``). ``TORCH_CUDA_ARCH_LIST`` defaults to ``8.0;8.6;9.0``; ``MAX_JOBS``
limits parallel compilation. ``SINABS_FAST_SANITIZE=address,undefined`` adds those sanitizers
(tools/sanitize.sh builds so into build/sanitize, not in place).

Both builds keep IEEE semantics: no fast-math, and no fused multiply-add contraction in the
neuron update (``-ffp-contract=off`` / ``-fmad=false``), which bit-exactness with sinabs needs.
"""

import glob
import importlib.util
import os

import torch
from setuptools import setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def load_build_module(name):
    """A stdlib-only helper of sinabs_fast/, loaded by path: the package cannot be imported before
    its extension exists."""
    path = os.path.join(ROOT, "sinabs_fast", f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"sinabs_fast{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def extensions():
    mode = os.environ.get("SINABS_FAST_CUDA", "auto")
    toolkit = load_build_module("_cuda_toolkit")
    with_cuda, reason = toolkit.decide_cuda(mode, torch.version.cuda, CUDA_HOME)
    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    # -fopenmp: at::parallel_for is header code, serial unless the extension is built with it.
    # torch's C++ standard and libstdc++ ABI, spelled out (sinabs_fast/_build_flags.py says why).
    flags = load_build_module("_build_flags")
    language = flags.language_flags(
        flags.torch_cxx_standard(flags.torch_config_cmake(os.path.dirname(torch.__file__))),
        torch.compiled_with_cxx11_abi(), os.environ)
    cxx = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-fopenmp"]
    cxx += language
    link = ["-fopenmp"]
    if os.environ.get("SINABS_FAST_VEC_REPORT"):
        cxx.append("-fopt-info-vec-optimized")
    sanitize = os.environ.get("SINABS_FAST_SANITIZE")
    if sanitize:
        # tools/sanitize.sh's separate build (never the in-place one): reports instead of
        # aborting, so one run lists every finding; no vptr check (torch's classes have hidden
        # type info, a false positive); -O1 as the sanitizers' documentation recommends.
        cxx += [f"-fsanitize={sanitize}", f"-fsanitize-recover={sanitize}", "-fno-sanitize=vptr",
                "-fno-omit-frame-pointer", "-g", "-O1"]
        link += [f"-fsanitize={sanitize}"]
    args = dict(
        include_dirs=[os.path.join(ROOT, "csrc", "include")],
        extra_compile_args={"cxx": cxx},
        extra_link_args=link,
    )
    if with_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;8.6;9.0")
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        # No -std here (only the ABI define): torch adds the standard it was built with (C++17
        # in torch 2.11, C++20 in 2.13) to nvcc's flags, and nvcc rejects a second -std.
        args["extra_compile_args"]["nvcc"] = ["-O3", "-fmad=false", "-lineinfo", language[-1]]
        args["define_macros"] = [("SINABS_FAST_WITH_CUDA", None)]
        ext = CUDAExtension("sinabs_fast._C", sources, **args)
    else:
        ext = CppExtension("sinabs_fast._C", sources, **args)
    print(
        f"sinabs_fast: building the {'CPU+CUDA' if with_cuda else 'CPU'} extension "
        f"(torch {torch.__version__}, {' '.join(language)}; {reason})"
    )
    return [ext]


setup(
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
