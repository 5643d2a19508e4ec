"""Where the job runs: one process on a CPU or GPU, or one of several started by ``torchrun``
(``torchrun --nproc-per-node N -m sinabs_fast.cli train ...``; NCCL on GPUs, gloo on CPUs).

DistributedDataParallel is built with ``broadcast_buffers=False``: the only buffers of these
networks are the neuron states, and each rank's states belong to its own samples. With
broadcasting, every forward would overwrite them with rank 0's, so states carried from one chunk
of a sequence to the next would be wrong on every other rank. (A network with BatchNorm would
need SyncBatchNorm instead of buffer broadcasting.)
"""

import os
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Context:
    """This process's place in the job."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(option: str) -> torch.device:
    """``cpu``, ``cuda`` (an error without a GPU) or ``auto`` (a GPU when there is one)."""
    if option not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be cpu, cuda or auto, got {option!r}")
    if option == "auto":
        option = "cuda" if torch.cuda.is_available() else "cpu"
    if option == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: cuda requested, but torch sees no CUDA device")
    return torch.device(option)


def start(device_option: str) -> Context:
    """Joins the process group when started by torchrun (``WORLD_SIZE`` > 1), else a single
    process on the requested device."""
    device = resolve_device(device_option)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context(device)
    import torch.distributed as dist

    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(device, dist.get_rank(), dist.get_world_size())


def wrap(network: nn.Module, context: Context) -> nn.Module:
    """``network`` in DistributedDataParallel (without buffer broadcasting: see the module
    docstring) when the job is distributed, else ``network`` itself."""
    if not context.distributed:
        return network
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(network, device_ids=device_ids, broadcast_buffers=False)


def finish(context: Context) -> None:
    if context.distributed:
        import torch.distributed as dist

        # Every rank reaches the end before any tears the group down: a rank that destroys it
        # while another still talks to it can abort that rank's process (gloo).
        dist.barrier()
        dist.destroy_process_group()
