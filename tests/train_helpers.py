"""Small jobs for the tests of ``sinabs-fast train``: the digits dataset cut to a few batches."""

import torch
import torch.nn as nn
import torch.nn.functional as F

from sinabs_fast.train import job
from sinabs_fast.train.data import RateCodedImages, Splits, digits

TRAIN_SAMPLES, TEST_SAMPLES = 48, 24


def _head(dataset: RateCodedImages, n: int) -> RateCodedImages:
    return RateCodedImages(dataset.images[:n], dataset.labels[:n], dataset.timesteps,
                           dataset.seed, dataset.epoch)


def small_digits(monkeypatch) -> None:
    """Makes the job load only the first samples of the digits splits."""

    def load(options):
        splits = digits(options.timesteps, options.seed)
        return Splits(_head(splits.train, TRAIN_SAMPLES), _head(splits.test, TEST_SAMPLES),
                      splits.sample_shape, splits.classes)

    monkeypatch.setattr(job, "load_dataset", load)


def recount_synops(network: nn.Sequential, x: torch.Tensor) -> list:
    """Synops per sample of each Conv2d / Linear of ``network`` on ``x`` (B, T, ...), counted
    independently of sinabs_fast's counters: a Conv2d's synops are its input convolved with an
    all-ones kernel, summed (each output adds up the inputs it is connected to); a Linear's are
    its input summed times ``out_features``. As in sinabs, a layer after average pooling counts
    its input times the pooling window (the events before the pooling)."""
    inputs = {}
    handles = [m.register_forward_hook(lambda m, i, o: inputs.__setitem__(m, i[0].detach()))
               for m in network if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        network(x)
    for h in handles:
        h.remove()
    counts, window = [], 1
    for module in network:
        if isinstance(module, nn.AvgPool2d):
            window *= module.kernel_size ** 2
        if isinstance(module, nn.Conv2d):
            ones = torch.ones_like(module.weight)
            total = F.conv2d(inputs[module].double(), ones.double(), stride=module.stride,
                             padding=module.padding).sum()
        elif isinstance(module, nn.Linear):
            total = inputs[module].double().sum() * module.out_features
        else:
            continue
        counts.append((total * window / x.shape[0]).item())
        window = 1
    return counts
