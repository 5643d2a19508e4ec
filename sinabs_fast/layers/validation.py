"""Checks of the neuron layers' constructor arguments that sinabs does not make: a threshold or a
time constant that is zero, negative or NaN runs there and yields garbage (infinite spike counts,
a membrane that never takes input or grows without bound). Here it is a ValueError that names
the argument (docs/semantics.md, section 5)."""

import torch


def require_positive(value, name: str) -> None:
    """Raises ValueError unless every element of ``value`` (a number or a tensor; infinity is
    allowed: an infinite time constant is no leak) is a real number greater than 0."""
    if value is None:
        return
    tensor = torch.as_tensor(value).detach()
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{name} must be a positive real number, got {tensor.dtype}")
    if tensor.numel() and not bool((tensor > 0).all()):
        shown = value if tensor.numel() == 1 else f"a tensor with {tensor.numel()} elements, " \
            f"smallest {tensor.min().item()}" + (" and NaN" if tensor.isnan().any() else "")
        raise ValueError(f"{name} must be positive, got {shown}")
