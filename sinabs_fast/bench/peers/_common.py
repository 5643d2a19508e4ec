"""What several adapters share: a peer described by what it imports, where it runs and which
layers and dtypes it has; and the runner for a module that takes the whole (B, T, N) or
(T, B, N) sequence in one call."""

import importlib
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import torch
from torch import Tensor, nn

from .base import Peer, Runner
from .configs import CONFIGS


def import_reason(module: str, requirement: str) -> Optional[str]:
    """None when ``module`` imports; else the pip command that installs it, and the error."""
    try:
        importlib.import_module(module)
    except Exception as e:  # a broken install raises more than ImportError
        return f"pip install {requirement}  ({type(e).__name__}: {e})"
    return None


def device_reason(device: str, cpu: bool = True, cuda: bool = True) -> Optional[str]:
    """None when the peer runs on ``device`` and this machine has it; else why not."""
    kind = torch.device(device).type
    if kind == "cpu":
        return None if cpu else "runs on CUDA only"
    if kind == "cuda":
        if not cuda:
            return "runs on the CPU only"
        return None if torch.cuda.is_available() else "no CUDA device on this machine"
    return f"device {device!r} is not benchmarked (cpu or cuda)"


def dtype_reason(dtype: torch.dtype, supported: Iterable[torch.dtype]) -> Optional[str]:
    """None when ``dtype`` is among ``supported``; else which ones are."""
    supported = tuple(supported)
    if dtype in supported:
        return None
    names = ", ".join(str(d).replace("torch.", "") for d in supported)
    return f"{str(dtype).replace('torch.', '')} is not supported (only {names})"


def installed_version(distribution: str) -> Optional[str]:
    """The installed version of a distribution (a pip package name), or None."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def freeze(module: nn.Module, keep: Iterable[nn.Parameter] = ()) -> nn.Module:
    """Makes the neuron's constants (time constants, thresholds) non-trainable, as they are in
    every peer's configuration; parameters in ``keep`` (a recurrent weight) stay trainable."""
    kept = {id(p) for p in keep}
    for p in module.parameters():
        if id(p) not in kept:
            p.requires_grad_(False)
    return module


class DeclaredPeer(Peer):
    """A peer whose availability and support follow from class attributes."""

    #: The module whose import says whether the runtime is installed, and the distribution
    #: (pip name) whose version the results record: None for the module's top-level package.
    module: str
    distribution: Optional[str] = None
    #: The configured layers (``configs.CONFIGS``) it expresses, and in which input dtypes.
    layers: Tuple[str, ...] = tuple(CONFIGS)
    dtypes: Tuple[torch.dtype, ...] = (torch.float32,)
    cpu = cuda = True
    #: Why a configured layer it lacks cannot be expressed (default: it has no such layer).
    inexpressible: Dict[str, str] = {}

    def unavailable_reason(self, device: str) -> Optional[str]:
        return (import_reason(self.module, self.requirement)
                or device_reason(device, cpu=self.cpu, cuda=self.cuda))

    def unsupported_reason(self, layer: str, dtype: torch.dtype, device: str) -> Optional[str]:
        if layer not in CONFIGS:
            return f"{layer} is not a neuron layer (the harness times it end to end)"
        if layer not in self.layers:
            return f"{layer}: " + self.inexpressible.get(layer, f"{self.name} has no such layer")
        return dtype_reason(dtype, self.dtypes)

    def version(self) -> Optional[str]:
        return installed_version(self.distribution or self.module.split(".")[0])


class SequenceRunner(Runner):
    """A layer called once on the whole sequence: ``call(native input) -> native output``.

    ``time_major`` peers get the input as a contiguous (T, B, N) copy, made in ``prepare``
    (untimed), and return (T, B, N). A peer whose update scales its input (an Euler step's
    ``dt / tau``) gets it multiplied by ``input_scale`` there too, to undo that scaling."""

    def __init__(self, module: nn.Module, reset: Callable[[], None], time_major: bool = False,
                 call: Optional[Callable[[Any], Tensor]] = None, input_scale: float = 1.0):
        self.module = module
        self._reset = reset
        self.time_major = time_major
        self._call = call if call is not None else module
        self.input_scale = input_scale

    def prepare(self, x: Tensor) -> Any:
        if self.input_scale != 1.0:
            x = x * self.input_scale
        return x.transpose(0, 1).contiguous() if self.time_major else x

    def reset(self) -> None:
        self._reset()

    def forward(self, prepared: Any) -> Tensor:
        return self._call(prepared)

    def spikes_btn(self, out: Tensor) -> Tensor:
        return out.transpose(0, 1) if self.time_major else out

    def parameters(self) -> Iterable[Tensor]:
        return self.module.parameters()
