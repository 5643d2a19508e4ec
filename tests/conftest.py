"""Shared fixtures and assertions. sinabs 3.1.3 is the oracle of the equivalence tests (a test
dependency, never a runtime one): those modules skip without it (``pytest.importorskip`` at their
top, and in sinabs_pairs.py); the ops, opcheck, gradcheck and reference tests run without it."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def assert_grads_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5):
    """Gradients agree to rounding: rtol, with an absolute floor scaled to the gradient's size
    (surrogates are evaluated with a different exp implementation than torch's)."""
    assert actual is not None and expected is not None
    scale = expected.abs().max().item() if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * max(scale, 1e-12))
