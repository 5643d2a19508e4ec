"""Build script for sinabs_fast.

The CPU extension is always built. The CUDA kernels (csrc/cuda/*.cu) are added when torch was built
with CUDA and nvcc is found; ``SINABS_FAST_CUDA=0|1|auto`` overrides that (``1`` fails loudly when
CUDA is unavailable). Where the ``nvcc`` on PATH is a wrapper, point ``CUDA_HOME`` at the toolkit
(e.g. ``/usr/local/cuda``). ``TORCH_CUDA_ARCH_LIST`` defaults to ``8.0;8.6;9.0``; ``MAX_JOBS``
limits parallel compilation.

Both builds keep IEEE semantics: no fast-math, and no fused multiply-add contraction in the
neuron update (``-ffp-contract=off`` / ``-fmad=false``), which bit-exactness with sinabs needs.
"""

import glob
import os

import torch
from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))


def use_cuda() -> bool:
    mode = os.environ.get("SINABS_FAST_CUDA", "auto").lower()
    available = torch.version.cuda is not None and CUDA_HOME is not None
    if mode == "1":
        if not available:
            raise RuntimeError(
                "SINABS_FAST_CUDA=1 but CUDA is unavailable: torch.version.cuda="
                f"{torch.version.cuda}, CUDA_HOME={CUDA_HOME}"
            )
        return True
    if mode == "0":
        return False
    if mode != "auto":
        raise ValueError(f"SINABS_FAST_CUDA must be 0, 1 or auto, got {mode!r}")
    return available


def extensions():
    with_cuda = use_cuda()
    sources = sorted(glob.glob("csrc/*.cpp") + glob.glob("csrc/cpu/*.cpp"))
    # -fopenmp: at::parallel_for is header code, serial unless the extension is built with it.
    cxx = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno", "-fopenmp"]
    if os.environ.get("SINABS_FAST_VEC_REPORT"):
        cxx.append("-fopt-info-vec-optimized")
    args = dict(
        include_dirs=[os.path.join(ROOT, "csrc", "include")],
        extra_compile_args={"cxx": cxx},
        extra_link_args=["-fopenmp"],
    )
    if with_cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;8.6;9.0")
        sources += sorted(glob.glob("csrc/cuda/*.cu"))
        # No -std here: torch adds the standard it was built with (C++17 in torch 2.11, C++20 in
        # 2.13), for g++ and nvcc alike (nvcc rejects a second -std).
        args["extra_compile_args"]["nvcc"] = ["-O3", "-fmad=false", "-lineinfo"]
        args["define_macros"] = [("SINABS_FAST_WITH_CUDA", None)]
        ext = CUDAExtension("sinabs_fast._C", sources, **args)
    else:
        ext = CppExtension("sinabs_fast._C", sources, **args)
    print(
        f"sinabs_fast: building the {'CPU+CUDA' if with_cuda else 'CPU'} extension "
        f"(torch {torch.__version__}, CUDA_HOME={CUDA_HOME})"
    )
    return [ext]


setup(
    name="sinabs_fast",
    version="0.1.0",
    description="Fused C++/CUDA kernels for sinabs' spiking neuron layers, bit-identical to sinabs",
    packages=find_packages(include=["sinabs_fast", "sinabs_fast.*"]),
    python_requires=">=3.9",
    install_requires=["torch>=2.4", "numpy"],
    extras_require={"test": ["pytest", "sinabs==3.1.3"], "bench": ["spikingjelly", "loguru"]},
    ext_modules=extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
