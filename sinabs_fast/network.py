"""Network: a converted spiking model next to the analogue model it came from (as
``sinabs.network.Network`` 3.1.3), the result of :func:`sinabs_fast.from_model`."""

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .snn_analyzer import SNNAnalyzer
from .utils import get_activations, get_network_activations, stateful_classes


class Network(nn.Module):
    """A spiking model and the analogue model it was converted from.

    Args:
        analog_model: the ANN.
        spiking_model: the SNN; ``forward`` runs it.
        input_shape: per-sample input shape; when given (with ``spiking_model``), one forward
            pass on zeros of shape ``(batch_size * num_timesteps, *input_shape)`` records each
            submodule's output shape (without the first dimension) as ``module.out_shape``
            and initialises the neuron states.
        synops: attach an :class:`~sinabs_fast.SNNAnalyzer` as ``synops_counter``.
        batch_size, num_timesteps: the shape of that pass; None counts as 1.
    """

    def __init__(
        self,
        analog_model: Optional[nn.Module] = None,
        spiking_model: Optional[nn.Module] = None,
        input_shape: Optional[Sequence[int]] = None,
        synops: bool = False,
        batch_size: Optional[int] = 1,
        num_timesteps: Optional[int] = 1,
    ):
        super().__init__()
        self.spiking_model = spiking_model
        self.analog_model = analog_model
        self.input_shape = input_shape
        self.synops = synops
        if synops:
            self.synops_counter = SNNAnalyzer(self.spiking_model)
        if input_shape is not None and spiking_model is not None:
            self._compute_shapes(input_shape, batch_size=batch_size, num_timesteps=num_timesteps)

    @property
    def layers(self) -> List[Tuple[str, nn.Module]]:
        """``(name, module)`` for each child of the spiking model."""
        return list(self.spiking_model.named_children())

    def _compute_shapes(self, input_shape, batch_size: Optional[int] = 1,
                        num_timesteps: Optional[int] = 1) -> None:
        def keep_shape(module, inputs, output):
            module.out_shape = output.shape[1:]

        handles = [m.register_forward_hook(keep_shape) for m in self.spiking_model.modules()]
        try:
            device = next(self.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        rows = (batch_size or 1) * (num_timesteps or 1)
        try:
            self(torch.zeros((rows, *input_shape), device=device))
        finally:
            for handle in handles:
                handle.remove()

    def forward(self, tsrInput: torch.Tensor) -> torch.Tensor:
        """Runs the spiking model."""
        return self.spiking_model(tsrInput)

    def compare_activations(
        self,
        data: torch.Tensor,
        name_list: Optional[Sequence[str]] = None,
        compute_rate: bool = False,
        verbose: bool = False,
    ) -> Tuple[List[np.ndarray], List[np.ndarray], Sequence[str]]:
        """The analogue model's activations on the input summed (``compute_rate``: averaged)
        over its first dimension, and the spiking model's spike counts (rates) on ``data``, for
        the modules in ``name_list`` (default ``"Input"`` and every stateful layer; the analogue
        model must have modules of the same names). Returns ``(ann_activity, snn_activity,
        name_list)``."""
        if name_list is None:
            stateful = stateful_classes()
            name_list = ["Input"] + [name for name, m in self.spiking_model.named_modules()
                                     if isinstance(m, stateful)]
        if verbose:
            print(f"Comparing activations for {name_list}")
        analog_input = (data.mean(0) if compute_rate else data.sum(0)).unsqueeze(0)
        with torch.no_grad():
            analog = get_activations(self.analog_model, analog_input, name_list=name_list)
        spiking = get_network_activations(self.spiking_model, data, name_list=name_list,
                                          bRate=compute_rate)
        return analog, spiking, name_list

    def plot_comparison(self, data: torch.Tensor, name_list: Optional[Sequence[str]] = None,
                        compute_rate: bool = False):
        """A scatter plot (matplotlib) of :meth:`compare_activations`; returns
        ``(ann_activity, snn_activity)``."""
        import matplotlib.pyplot as plt  # optional: only this method needs it

        analog, spiking, name_list = self.compare_activations(
            data, name_list=name_list, compute_rate=compute_rate)
        for name, snn, ann in zip(name_list, spiking, analog):
            plt.scatter(snn, ann, label=name)
        plt.xlabel("Spike rates (Hz)" if compute_rate else "# Spike count")
        plt.ylabel("Analog activations")
        plt.legend()
        return analog, spiking

    def reset_states(
        self,
        randomize: bool = False,
        value_ranges: Optional[List[Dict[str, Tuple[float, float]]]] = None,
    ) -> None:
        """Resets every stateful layer (sinabs_fast's, and sinabs' in a mixed model): to zero,
        or with ``randomize`` uniformly within ``value_ranges[i]`` (one dict per stateful layer,
        in ``modules()`` order; a state without a range gets (0, 1))."""
        layers = [m for m in self.modules() if isinstance(m, stateful_classes())]
        if value_ranges and len(value_ranges) != len(layers):
            raise TypeError("value_ranges: the number of entries does not match the number of "
                            f"stateful layers ({len(value_ranges)} vs {len(layers)})")
        for index, layer in enumerate(layers):
            ranges = value_ranges[index] if value_ranges else None
            layer.reset_states(randomize=randomize, value_ranges=ranges)

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zeros the spiking model's gradients and detaches its layers' states (values kept).
        sinabs calls ``zero_grad`` on each child, so it fails on a model that is not
        iterable and leaves the states of nested layers attached; here every layer is reached."""
        nn.Module.zero_grad(self.spiking_model, set_to_none)
        for layer in self.spiking_model.modules():
            if isinstance(layer, stateful_classes()):
                layer.zero_grad(set_to_none)

    def get_synops(self, num_evs_in=None):
        """The synops statistics of :class:`~sinabs_fast.SNNAnalyzer` (``synops=True``);
        ``num_evs_in`` is ignored, as in sinabs."""
        if not self.synops:
            raise AttributeError("get_synops needs a Network built with synops=True")
        return self.synops_counter.get_layer_statistics()
