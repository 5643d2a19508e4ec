"""The adapter for runtimes with sinabs' layer API: sinabs itself and sinabs_fast, which build
the same layers from different modules."""

import importlib

import torch
from torch import nn

from ..cases import Shape
from ._common import DeclaredPeer, SequenceRunner, freeze
from .base import Runner
from .configs import CONFIGS, SURROGATE_DECAY, NeuronConfig, recurrent_weight


class SinabsApiPeer(DeclaredPeer):
    """Builds ``<layers>.IAF/LIF/ExpLeak/ALIF/LIFRecurrent`` with ``<activation>``'s
    SingleSpike, MembraneSubtract and SingleExponential set to the configuration."""

    #: The package of the activation classes (``module`` is that of the layers).
    activation_module: str

    def build(self, layer: str, shape: Shape, device: str, dtype: torch.dtype) -> Runner:
        module = self.layer_module(CONFIGS[layer], shape.N).to(device)
        return SequenceRunner(module, reset=module.reset_states)

    def layer_module(self, config: NeuronConfig, neurons: int) -> nn.Module:
        """The layer of ``config`` with ``neurons`` neurons (float32, on the CPU)."""
        layers = importlib.import_module(self.module)
        act = importlib.import_module(self.activation_module)
        theta = config.threshold
        # SingleExponential's width is relative to the threshold: (scale / (theta * width)) *
        # exp(-|v - theta| / (theta * width)) = exp(-SURROGATE_DECAY |v - theta|).
        spiking = dict(
            spike_threshold=torch.tensor(theta), spike_fn=act.SingleSpike,
            reset_fn=act.MembraneSubtract(),
            surrogate_grad_fn=act.SingleExponential(grad_width=1 / (SURROGATE_DECAY * theta),
                                                    grad_scale=1 / SURROGATE_DECAY),
        )
        keep = ()
        if not config.spiking:
            module = layers.ExpLeak(tau_mem=config.tau_mem, norm_input=False)
        elif config.alpha_adapt is not None:
            module = layers.ALIF(tau_mem=config.tau_mem, tau_adapt=config.tau_adapt,
                                 tau_syn=config.tau_syn, adapt_scale=config.adapt_scale,
                                 norm_input=False, **spiking)
        elif config.recurrent:
            rec = nn.Linear(neurons, neurons, bias=False)
            with torch.no_grad():
                rec.weight.copy_(recurrent_weight(neurons))
            keep = (rec.weight,)
            module = layers.LIFRecurrent(tau_mem=config.tau_mem, rec_connect=rec,
                                         tau_syn=config.tau_syn, norm_input=False, **spiking)
        elif not config.leaky:
            module = layers.IAF(tau_syn=config.tau_syn, **spiking)
        else:
            module = layers.LIF(tau_mem=config.tau_mem, tau_syn=config.tau_syn,
                                norm_input=False, **spiking)
        return freeze(module, keep)
