"""Memory figures of a row, per neuron-step.

* ``saved_bytes_per_step``: the bytes autograd keeps for the backward after one forward with
  grad: the unique storages of every tensor saved for backward, seen through
  ``torch.autograd.graph.saved_tensors_hooks`` (each storage counted once, however many views of
  it are saved; the input counts too when a layer saves it, since it must then stay alive).
* ``peak_bytes_per_step``: on CUDA, ``torch.cuda.max_memory_allocated`` during one call of the
  row's mode minus what was allocated before it (the input, the output gradient and the layer
  already there). On the CPU there is no honest counterpart (no allocator statistics; the
  process's resident high-water mark never goes down and counts everything else too), so it is
  null.
"""

from typing import Callable, Dict, Optional, Tuple

import torch


def saved_bytes(forward: Callable[[], object]) -> int:
    """Bytes of the unique storages that ``forward()`` saves for its backward."""
    storages: Dict[Tuple[int, str], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[(storage.data_ptr(), str(tensor.device))] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = forward()
    del out
    return sum(storages.values())


def peak_bytes(device: str, setup: Callable[[], object], run: Callable[[], object]) -> Optional[int]:
    """Peak bytes allocated by ``run()`` on top of what ``setup()`` leaves (CUDA; None on the CPU)."""
    if device != "cuda":
        return None
    setup()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run()
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated() - base)
