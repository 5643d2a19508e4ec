"""The C++ standard and libstdc++ ABI setup.py compiles the extension with (standard library only:
setup.py loads this file by path, before the package exists).

The extension shares C++ types with torch across the library boundary: ``c10::Error`` (every
``TORCH_CHECK`` failure), ``std::string``, ``std::optional``, the tensors. Built with another C++
standard or another ``_GLIBCXX_USE_CXX11_ABI`` than torch, those types may not agree in layout or
in their inline code, and the first place that shows is an error unwinding through both sides
(benchmarks/gpu-notes.md: on one GPU image every C++ argument error segfaulted). So both are
spelled out, from torch itself, instead of being left to the compiler's defaults or to ``CFLAGS``:

- the standard from the ``CXX_STANDARD`` torch declares for code built against it
  (``share/cmake/Torch/TorchConfig.cmake``; ``torch.utils.cpp_extension`` passes the same one);
- the ABI from ``torch.compiled_with_cxx11_abi()``.

A ``-std=`` or ``-D_GLIBCXX_USE_CXX11_ABI=`` in ``CFLAGS``/``CXXFLAGS`` that disagrees is an error.
"""

import os
import re
import shlex
from typing import Dict, List, Mapping, Optional

_STANDARD = re.compile(r"\bCXX_STANDARD\s+(\d+)")
_ABI_DEFINE = "-D_GLIBCXX_USE_CXX11_ABI="


def torch_cxx_standard(torch_config_cmake: str) -> Optional[str]:
    """The ``-std`` value (``"c++20"``) that torch's TorchConfig.cmake text declares, or None when
    it declares none (then torch.utils.cpp_extension's own default applies)."""
    found = _STANDARD.search(torch_config_cmake)
    return f"c++{found.group(1)}" if found else None


def torch_config_cmake(torch_dir: str) -> str:
    """The text of torch's TorchConfig.cmake under the installed package ``torch_dir`` ('' when
    the file is missing, as in a few minimal builds of torch)."""
    path = os.path.join(torch_dir, "share", "cmake", "Torch", "TorchConfig.cmake")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def _conflicts(flags: List[str], standard: Optional[str], abi_define: str) -> List[str]:
    wrong = []
    for flag in flags:
        if standard and flag.startswith("-std=") and flag not in (f"-std={standard}",
                                                                  f"-std=gnu++{standard[3:]}"):
            wrong.append(flag)
        if flag.startswith(_ABI_DEFINE) and flag != abi_define:
            wrong.append(flag)
    return wrong


def language_flags(standard: Optional[str], cxx11_abi: bool,
                   environ: Mapping[str, str]) -> List[str]:
    """The compiler flags that fix the C++ standard and the libstdc++ ABI to torch's:
    ``-std=<standard>`` (left out when ``standard`` is None) and ``-D_GLIBCXX_USE_CXX11_ABI=0|1``.
    Raises ValueError when ``CFLAGS`` or ``CXXFLAGS`` in ``environ`` ask for another one."""
    abi_define = f"{_ABI_DEFINE}{int(cxx11_abi)}"
    user: Dict[str, List[str]] = {name: shlex.split(environ.get(name, ""))
                                  for name in ("CFLAGS", "CXXFLAGS")}
    for name, flags in user.items():
        wrong = _conflicts(flags, standard, abi_define)
        if wrong:
            raise ValueError(
                f"sinabs_fast: {name} has {' '.join(wrong)}, but torch was built with "
                f"{'-std=' + standard + ' and ' if standard else ''}{abi_define}: an extension "
                f"built otherwise may crash when a C++ error crosses into torch. Remove it from "
                f"{name}.")
    return ([f"-std={standard}"] if standard else []) + [abi_define]
