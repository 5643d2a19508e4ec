"""Rate encoders: images and analogue signals to random spike trains."""

from typing import Tuple

import torch
from torch import nn


class Img2SpikeLayer(nn.Module):
    """Bernoulli rate coding of an image over ``tw`` time steps (``sinabs.layers.Img2SpikeLayer``
    3.1.3, with the same draws from the CPU random generator, so equal seeds give equal spikes).

    Args:
        image_shape: the image shape (kept for compatibility; not used).
        tw: the number of time steps.
        max_rate: firing rate (Hz, 1 ms steps) of a pixel equal to ``norm``.
        norm: the pixel value that maps to ``max_rate``.
        squeeze: squeeze singleton dimensions of the input first.
        negative_spikes: negative pixels give negative spikes (rate from ``|x|``).

    Output: ``(tw, *image.shape)`` float32; ``spikes_number`` is set after each forward.
    """

    def __init__(
        self,
        image_shape,
        tw: int = 100,
        max_rate: float = 1000,
        norm: float = 255.0,
        squeeze: bool = False,
        negative_spikes: bool = False,
    ):
        super().__init__()
        self.tw = tw
        self.max_rate = max_rate
        self.norm = norm
        self.squeeze = squeeze
        self.negative_spikes = negative_spikes

    def forward(self, img_input: torch.Tensor) -> torch.Tensor:
        if self.squeeze:
            img_input = img_input.squeeze()
        # Drawn on the CPU generator and then moved, as sinabs does.
        uniform = torch.rand(self.tw, *tuple(img_input.shape)).to(img_input.device)
        rate_scale = self.max_rate / 1000
        if self.negative_spikes:
            spikes = (uniform < (img_input.abs() / self.norm) * rate_scale).float()
            spikes = spikes * img_input.sign().float()
        else:
            spikes = (uniform < (img_input / self.norm) * rate_scale).float()
        self.spikes_number = spikes.abs().sum()
        self.tw = len(spikes)
        return spikes

    def get_output_shape(self, input_shape: Tuple):
        """Returns ``input_shape`` unchanged (the time dimension is not included)."""
        return input_shape


class Sig2SpikeLayer(nn.Module):
    """Bernoulli coding of analogue signals (``sinabs.layers.Sig2SpikeLayer`` 3.1.3, same RNG
    draws).

    Input ``(channels, T)``: each sample is repeated ``tw`` times, the result is transposed to
    ``(T * tw, channels)``, and a spike is emitted where ``rand * norm_level < signal`` (or the
    upsampled signal itself is returned when ``spk_out`` is False).

    Args:
        channels_in: the number of channels (kept for compatibility; not used).
        tw: the number of time steps per sample.
        norm_level: the signal level that spikes at every step.
        spk_out: emit spikes (True) or pass the upsampled signal on.
    """

    def __init__(self, channels_in, tw: int = 1, norm_level: float = 1, spk_out: bool = True):
        super().__init__()
        self.tw = tw
        self.norm_level = norm_level
        self.spk_out = spk_out

    def get_output_shape(self, input_shape: Tuple):
        """``(channels, T)`` -> ``(tw * T, channels)``."""
        channels, time_steps = input_shape
        return (self.tw * time_steps, channels)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        channels, time_steps = signal.shape
        if self.tw != 1:
            signal = signal.view(-1, 1).repeat(1, self.tw).view(channels, -1)
        signal = signal.transpose(1, 0)
        if self.spk_out:
            uniform = torch.rand(self.tw * time_steps, channels).to(signal.device)
            out = (uniform * self.norm_level < signal).float()
        else:
            out = signal
        self.spikes_number = out.abs().sum()
        return out
