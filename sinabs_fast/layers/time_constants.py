"""The time constants of the leaky neuron layers: each decay factor alpha = exp(-1 / tau) is
trained either as tau (``tau_<name>``) or, with ``train_alphas``, as alpha (``alpha_<name>``)."""

from typing import Optional

import torch


class TimeConstants:
    """Mixin of LIF and ALIF: the ``*_calculated`` views of their time constants. alpha is
    computed with torch ops, as sinabs computes it, so that the kernels see the same bits."""

    train_alphas: bool

    def _alpha(self, name: str) -> Optional[torch.Tensor]:
        if self.train_alphas:
            return getattr(self, f"alpha_{name}", None)
        tau = getattr(self, f"tau_{name}", None)
        return None if tau is None else torch.exp(-1.0 / tau)

    def _tau(self, name: str) -> Optional[torch.Tensor]:
        if not self.train_alphas:
            return getattr(self, f"tau_{name}", None)
        alpha = getattr(self, f"alpha_{name}", None)
        return None if alpha is None else -1.0 / torch.log(alpha)

    @property
    def alpha_mem_calculated(self) -> torch.Tensor:
        """alpha_mem = exp(-1 / tau_mem)."""
        return self._alpha("mem")

    @property
    def alpha_syn_calculated(self) -> Optional[torch.Tensor]:
        """alpha_syn = exp(-1 / tau_syn); None without synaptic current."""
        return self._alpha("syn")

    @property
    def tau_mem_calculated(self) -> Optional[torch.Tensor]:
        return self._tau("mem")

    @property
    def tau_syn_calculated(self) -> Optional[torch.Tensor]:
        return self._tau("syn")
