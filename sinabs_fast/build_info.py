"""What ``sinabs-fast info`` prints: the version, how the extension was built and what it runs
on."""

import platform
from typing import Dict

import torch

from ._version import __version__


def _has_kernel(op: str, key: str) -> bool:
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"sinabs_fast::{op}", key)


def build_info() -> Dict[str, str]:
    """Version, torch, the CPU kernels' instruction set, CUDA kernels and devices."""
    import sinabs_fast  # noqa: F401  (loads the extension: the ops' registrations)

    # The CPU kernels are compiled as AVX-512 / AVX2 / baseline x86-64 clones, and the loader picks
    # the best the CPU has (csrc/cpu/row_parallel.h); torch's own detection names the same level.
    capability = torch.backends.cpu.get_cpu_capability()
    machine = platform.machine()
    if machine in ("x86_64", "AMD64"):
        picked = {"AVX512": "AVX2 neuron rows, AVX-512 surrogate and dense products",
                  "AVX2": "AVX2"}.get(capability, "baseline x86-64")
    else:
        picked = f"the compiler's default for {machine}"
    cuda_kernels = _has_kernel("lif_forward", "CUDA")
    devices = ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                         for i in range(torch.cuda.device_count())]
    return {
        "sinabs-fast": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "CPU": f"{machine}, {torch.get_num_threads()} threads, torch detects {capability}",
        "CPU kernels": picked,
        "CUDA kernels": "compiled" if cuda_kernels else "not compiled (CPU-only build)",
        "torch CUDA": torch.version.cuda or "none (CPU build of torch)",
        "devices": ", ".join(devices),
    }
