"""Datasets for ``sinabs-fast train``: each gives ``(spikes, label)`` samples with spikes of shape
``(time, *sample_shape)``.

The default, ``digits``, needs no download: scikit-learn's bundled 8x8 digits (1,797 images),
upsampled to 28x28 and rate-coded into ``timesteps`` Bernoulli spike frames (a pixel spikes at a
step with probability equal to its intensity). The spikes of a sample are drawn from a generator
seeded by (seed, epoch, sample index), so they are the same whatever the batching, the process
count or an interruption, and change from epoch to epoch (the test set keeps one draw).
"""

from typing import NamedTuple, Tuple

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

DIGITS_TEST_FRACTION = 0.25
_TEST_EPOCH = -1  # the test set's fixed draw


class RateCodedImages(Dataset):
    """Images in [0, 1] rate-coded into spike frames on access.

    Args:
        images: ``(N, C, H, W)`` intensities in [0, 1].
        labels: ``(N,)`` class indices.
        timesteps: frames per sample.
        seed: seeds the spike draws with the epoch and the sample index.
        epoch: the epoch whose draw ``__getitem__`` returns (see :meth:`set_epoch`).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, timesteps: int, seed: int,
                 epoch: int = 0):
        if timesteps < 1:
            raise ValueError(f"timesteps must be at least 1, got {timesteps}")
        self.images, self.labels = images, labels
        self.timesteps, self.seed, self.epoch = timesteps, seed, epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> Tuple[torch.Tensor, torch.Tensor]:
        key = ((self.seed * 1_000_003 + self.epoch) * 1_000_003 + int(index)) % (1 << 63)
        generator = torch.Generator().manual_seed(key)
        image = self.images[index]
        draws = torch.rand((self.timesteps, *image.shape), generator=generator)
        return (draws < image).float(), self.labels[index]


class Splits(NamedTuple):
    train: Dataset
    test: Dataset
    sample_shape: Tuple[int, ...]
    classes: int


def digits(timesteps: int, seed: int, size: int = 28) -> Splits:
    """scikit-learn's 8x8 digits, upsampled (bilinear) to ``size`` x ``size``, rate-coded; a
    fixed stratified split (25% test, the same for every seed)."""
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as error:
        raise ImportError(
            "the digits dataset needs scikit-learn: pip install 'sinabs-fast[train]'") from error
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.clamp(0.0, 1.0)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    train_index, test_index = train_test_split(
        range(len(labels)), test_size=DIGITS_TEST_FRACTION, stratify=bunch.target, random_state=0)
    train_index, test_index = torch.tensor(train_index), torch.tensor(test_index)
    return Splits(
        RateCodedImages(images[train_index], labels[train_index], timesteps, seed),
        RateCodedImages(images[test_index], labels[test_index], timesteps, seed, _TEST_EPOCH),
        (1, size, size), 10,
    )
