"""Event datasets through tonic (``pip install 'sinabs-fast[data]'``): N-MNIST, DVS Gesture and
the Spiking Heidelberg Digits, read from files the user already has in ``data_dir`` (tonic's
layout: ``NMNIST/``, ``DVSGesture/``, ``SHD/`` below it). Nothing is downloaded unless
``download`` is set.

Each recording is binned by tonic's ``ToFrame`` into ``timesteps`` frames of event counts:
``(timesteps, polarities, height, width)`` for the cameras, ``(timesteps, 1, 700)`` for SHD.
(``ToFrame``'s bins are half-open, so a recording's last event is not counted.) The camera
datasets' frames do not fit the seed network (1 x 28 x 28): use ``--model dense`` for them.
"""

from typing import Callable, Dict, NamedTuple, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from .data import Splits


class TonicDataset(NamedTuple):
    class_name: str
    classes: int


TONIC_DATASETS: Dict[str, TonicDataset] = {
    "nmnist": TonicDataset("NMNIST", 10),
    "dvsgesture": TonicDataset("DVSGesture", 11),
    "shd": TonicDataset("SHD", 20),
}


class EventFrames(Dataset):
    """A tonic dataset whose samples become ``(frames (T, ...) float32, label)`` pairs."""

    def __init__(self, events: Dataset):
        self.events = events

    def set_epoch(self, epoch: int) -> None:
        """The frames do not depend on the epoch (the job calls this on every training set)."""

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        frames, label = self.events[index]
        return torch.from_numpy(np.asarray(frames, dtype=np.float32)), torch.tensor(int(label))


def _offline(cls: type, name: str) -> type:
    """``cls`` with tonic's automatic download replaced by a clear error."""

    def download(self):
        raise FileNotFoundError(
            f"dataset {name}: tonic's {cls.__name__} files are not in {self.location_on_system!r}"
            f" (expected {getattr(self, 'folder_name', '') or getattr(self, 'filename', '')});"
            " put them there or pass --download")

    return type(cls.__name__, (cls,), {"download": download})


def load_tonic(name: str, data_dir: str, timesteps: int, download: bool = False) -> Splits:
    """The train and test splits of tonic's dataset ``name`` (see ``TONIC_DATASETS``) under
    ``data_dir``, binned into ``timesteps`` frames."""
    if name not in TONIC_DATASETS:
        raise ValueError(f"dataset must be one of {sorted(TONIC_DATASETS)} or digits, got {name!r}")
    if not data_dir:
        raise ValueError(f"dataset {name}: --data-dir is required (the folder with tonic's files)")
    try:
        import tonic
    except ImportError as error:
        raise ImportError(f"dataset {name} needs tonic: pip install 'sinabs-fast[data]'") from error
    entry = TONIC_DATASETS[name]
    cls = getattr(tonic.datasets, entry.class_name)
    if not download:
        cls = _offline(cls, name)
    frames: Callable = tonic.transforms.ToFrame(sensor_size=cls.sensor_size, n_time_bins=timesteps)
    train = EventFrames(cls(save_to=data_dir, train=True, transform=frames))
    test = EventFrames(cls(save_to=data_dir, train=False, transform=frames))
    sample_shape = tuple(train[0][0].shape[1:])
    return Splits(train, test, sample_shape, entry.classes)
