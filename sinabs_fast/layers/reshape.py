"""Reshaping helpers between (B, T, ...) and squeezed (B*T, ...) layouts, as in sinabs."""

from typing import Callable, Optional

import torch
import torch.nn as nn


class Repeat(nn.Module):
    """Applies ``module`` to every time step: flattens (B, T) into one batch dimension for the
    call and unflattens the result."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        leading = x.shape[:2]
        return self.module(x.flatten(0, 1)).unflatten(0, leading)

    def __repr__(self) -> str:
        return "Repeated " + repr(self.module)


class FlattenTime(nn.Flatten):
    """(B, T, ...) -> (B*T, ...)."""

    def __init__(self):
        super().__init__(start_dim=0, end_dim=1)


class UnflattenTime(nn.Module):
    """(B*T, ...) -> (B, T, ...) for a fixed ``batch_size``."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(0, (self.batch_size, x.shape[0] // self.batch_size))


def check_squeeze_size(value: Optional[int], name: str) -> None:
    """Raises ValueError for a ``batch_size`` or ``num_timesteps`` of a squeeze layer below -1
    (sinabs fails later, in a reshape); None, 0 and -1 (as ``arg_dict`` keeps it) mean
    "inferred"."""
    if value is not None and int(value) < -1:
        raise ValueError(f"{name} must be a positive integer (or None to infer it), got {value}")


class SqueezeMixin:
    """Lets a (B, T, ...) layer take squeezed (B*T, ...) input: rows are ``b * T + t``. Either
    ``batch_size`` or ``num_timesteps`` is fixed and the other is inferred (-1)."""

    def squeeze_init(self, batch_size: Optional[int], num_timesteps: Optional[int]) -> None:
        if not batch_size and not num_timesteps:
            raise TypeError("You need to specify either batch_size or num_timesteps.")
        check_squeeze_size(batch_size, "batch_size")
        check_squeeze_size(num_timesteps, "num_timesteps")
        self.batch_size = int(batch_size) if batch_size else -1
        self.num_timesteps = int(num_timesteps) if num_timesteps else -1

    def squeeze_forward(self, input_data: torch.Tensor, forward_method: Callable) -> torch.Tensor:
        rows = input_data.shape[0] if input_data.dim() > 0 else 0
        known = [n for n in (self.batch_size, self.num_timesteps) if n > 0]
        fits = (rows % known[0] == 0) if len(known) == 1 else rows == known[0] * known[1]
        if not fits:
            # RuntimeError, as sinabs' reshape raises, with a message that names the cause.
            raise RuntimeError(
                f"input_data has {rows} rows, which do not split into batch_size="
                f"{self.batch_size} x num_timesteps={self.num_timesteps}; set batch_size "
                "(sinabs_fast.set_batch_size) or num_timesteps to match"
            )
        # The inferred size spelled out: -1 is ambiguous when a row has no elements (0 neurons).
        batch, steps = self.batch_size, self.num_timesteps
        if batch < 0:
            batch = rows // steps
        elif steps < 0:
            steps = rows // batch
        inflated = input_data.reshape(batch, steps, *input_data.shape[1:])
        return forward_method(inflated).flatten(start_dim=0, end_dim=1)

    def squeeze_param_dict(self, param_dict: dict) -> dict:
        param_dict.update(batch_size=self.batch_size, num_timesteps=self.num_timesteps)
        return param_dict


class SqueezedLayer(SqueezeMixin):
    """Makes a neuron layer take squeezed (batch*time, ...) input: ``class LIFSqueeze(
    SqueezedLayer, LIF)``. ``batch_size`` / ``num_timesteps`` join the constructor arguments and
    the arguments dict; the layer's own forward runs on the unflattened (batch, time, ...)
    input."""

    def __init__(self, batch_size: Optional[int] = None, num_timesteps: Optional[int] = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.squeeze_init(batch_size, num_timesteps)

    def forward(self, input_data: torch.Tensor) -> torch.Tensor:
        return self.squeeze_forward(input_data, super().forward)

    @property
    def _param_dict(self) -> dict:
        return self.squeeze_param_dict(super()._param_dict)
