"""Refuses a forward whose carried neuron states DistributedDataParallel has just overwritten.

The neuron states are buffers (sinabs' ``state_dict`` keys), and DistributedDataParallel with its
default ``broadcast_buffers=True`` copies rank 0's buffers into every other rank before each
forward. A state carried from one chunk of a sequence to the next belongs to the rank's own
samples, so the other ranks would continue rank 0's sequences: wrong gradients, silently
(tests/test_train_distributed.py measured 16% on the seed network). States that are all zero
(fresh, or after ``reset_states``) are the same on every rank, so a broadcast of them is harmless
and passes. The check runs only inside such a DDP forward; elsewhere it is one attribute read.
"""

import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel


def _active_ddp():
    """The DistributedDataParallel module whose forward is running, or None (a class attribute
    DDP sets around its forward; read once per layer call, so looked up without imports)."""
    return getattr(DistributedDataParallel, "_active_ddp_module", None)


def check_states_not_broadcast(layer: nn.Module) -> None:
    """Raises RuntimeError when ``layer`` runs inside a DistributedDataParallel forward that
    broadcast its nonzero states from rank 0. The condition reads the states after the
    broadcast, which are the same on every rank, so every rank raises, none waits."""
    ddp = _active_ddp()
    if ddp is None or not ddp.will_sync_module_buffers():
        return
    broadcast = {id(buffer) for buffer in ddp.modules_buffers}
    carried = [name for name, buffer in layer.named_buffers(recurse=False)
               if id(buffer) in broadcast and buffer.numel() and bool(buffer.any())]
    if carried:
        raise RuntimeError(
            f"{type(layer).__name__}: DistributedDataParallel(broadcast_buffers=True) has just "
            f"overwritten the neuron states {carried} carried from the previous call with rank "
            f"0's, so the other ranks would continue rank 0's samples. Build it with "
            f"broadcast_buffers=False (the states belong to each rank's own samples; "
            f"sinabs_fast.train.distributed.wrap does), or reset the states before each forward.")
