"""``model.pt``: everything the job needs to continue bit-identically (``--resume DIR``).

It holds the job's options, which run (baseline or penalised) and how many of its epochs are
done, the network's ``state_dict`` (weights and neuron states), the optimizer's and the learning
rate schedule's states, torch's
random number generator states, the epoch history, the finished runs' results (the baseline's
weights too once it is done) and the seconds spent so far. The data draws and the shuffling are
seeded by (seed, epoch), so they need no saved state.
"""

import os
from typing import Any, Dict

import torch

FILE_NAME = "model.pt"
FORMAT = 1


def rng_states() -> Dict[str, Any]:
    states = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: Dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save(out_dir: str, payload: Dict[str, Any]) -> str:
    """Writes ``payload`` (with the format number and RNG states added) to ``out_dir/model.pt``,
    through a temporary file so that an interruption never leaves a broken checkpoint."""
    path = os.path.join(out_dir, FILE_NAME)
    torch.save(dict(payload, format=FORMAT, rng=rng_states()), path + ".tmp")
    os.replace(path + ".tmp", path)
    return path


def load(out_dir: str) -> Dict[str, Any]:
    """The checkpoint in ``out_dir`` (tensors land on the CPU)."""
    path = os.path.join(out_dir, FILE_NAME)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"resume: no {FILE_NAME} in {out_dir!r}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"resume: {path} is not a sinabs-fast train checkpoint (format "
                         f"{payload.get('format')}, expected {FORMAT})")
    return payload
