"""StatefulLayer: neuron states kept as buffers across forward calls (sinabs 3.1.3 semantics)."""

from functools import lru_cache
from typing import Dict, FrozenSet, Iterable, List, Optional, Tuple

import torch
from torch.nn.modules.module import _global_buffer_registration_hooks


@lru_cache(maxsize=None)
def _class_attributes(cls: type) -> FrozenSet[str]:
    """The attribute names a class defines or inherits (a missed ``hasattr`` on a deep class
    hierarchy raises and catches an AttributeError: microseconds per forward call)."""
    return frozenset(dir(cls))


class StatefulLayer(torch.nn.Module):
    """Base class of layers whose states (buffers) persist from one forward call to the next.

    A state buffer of shape ``(0,)`` means "not initialised yet"; the first forward gives it the
    input's shape. States keep their autograd graph until :meth:`zero_grad` or
    :meth:`reset_states` detaches them.

    Args:
        state_names: the names of the state buffers to register.
    """

    def __init__(self, state_names: List[str]):
        super().__init__()
        for name in state_names:
            self.register_buffer(name, torch.zeros((0,)))
        self._register_resize_hook()

    def _register_resize_hook(self) -> None:
        # Unlike sinabs, a checkpoint loads into a freshly built layer: uninitialised states take
        # the saved shape.
        self._register_load_state_dict_pre_hook(self._resize_uninitialised_states)

    def __setstate__(self, state: dict) -> None:
        """Restores a pickled layer (or one converted from sinabs, which has no resize hook)."""
        super().__setstate__(state)
        registered = (getattr(hook, "hook", None) for hook in
                      self._load_state_dict_pre_hooks.values())
        if not any(getattr(hook, "__func__", None) is StatefulLayer._resize_uninitialised_states
                   and hook.__self__ is self for hook in registered):
            self._register_resize_hook()

    def _resize_uninitialised_states(self, state_dict, prefix, *args, **kwargs):
        for name, buffer in list(self._buffers.items()):
            saved = state_dict.get(prefix + name)
            if buffer is not None and buffer.shape == (0,) and saved is not None:
                self.register_buffer(name, torch.zeros_like(saved, device=buffer.device))

    def forward(self, *args, **kwargs):
        raise NotImplementedError("No forward method has been implemented for this class")

    def zero_grad(self, set_to_none: bool = False) -> None:
        """Zeros the parameters' gradients (``set_to_none=False`` by default, as in sinabs) and
        detaches the states from their graph, keeping their values."""
        super().zero_grad(set_to_none)
        if self.is_state_initialised():
            for buffer in self.buffers():
                if buffer.grad_fn is not None:
                    buffer.detach_()
                else:
                    buffer.requires_grad_(False)

    def _all_buffers(self) -> Iterable[torch.Tensor]:
        """``self.buffers()``: the own buffers directly when there are no submodules (nn.Module's
        walk over the module tree costs microseconds, several times per forward call)."""
        if self._modules:
            return self.buffers()
        return [b for b in self._buffers.values() if b is not None]

    def _states(self) -> Dict[str, torch.Tensor]:
        """``dict(self.named_buffers())``, the states as the functional forms take them."""
        if self._modules:
            return dict(self.named_buffers())
        return {name: b for name, b in self._buffers.items() if b is not None}

    def is_state_initialised(self) -> bool:
        """True when no state buffer has the placeholder shape ``(0,)``."""
        return all(buffer.shape != (0,) for buffer in self._all_buffers())

    def state_has_shape(self, shape) -> bool:
        return all(buffer.shape == shape for buffer in self._all_buffers())

    def has_trailing_dimension(self, trailing_dim) -> bool:
        return all(buffer.shape[1:] == torch.Size(trailing_dim) for buffer in self._all_buffers())

    def _store(self, **values) -> None:
        """``setattr(self, name, value)`` for what a forward call stores each time: a plain
        tensor into an existing persistent state buffer, or a value that is no parameter, module
        or buffer into an instance attribute that no class attribute (a property) covers, each
        without nn.Module.__setattr__'s generic path (several microseconds per attribute).
        Anything else goes through ``setattr``."""
        if torch.compiler.is_compiling():  # what torch.compile traces: the generic path
            for name, value in values.items():
                setattr(self, name, value)
            return
        buffers, params, modules = self._buffers, self._parameters, self._modules
        plain_buffers = not _global_buffer_registration_hooks and (
            type(self).register_buffer is torch.nn.Module.register_buffer)
        non_persistent = self._non_persistent_buffers_set
        class_attributes = _class_attributes(type(self))  # properties, say
        attributes = self.__dict__
        for name, value in values.items():
            plain_tensor = type(value) is torch.Tensor
            if name in buffers:
                if plain_buffers and plain_tensor and name not in non_persistent:
                    buffers[name] = value
                    continue
            elif (name not in params and name not in modules and name not in class_attributes
                  # a plain tensor, or anything but a tensor (a Parameter, a Buffer) or module
                  and (plain_tensor or not isinstance(value, (torch.Tensor, torch.nn.Module)))):
                attributes[name] = value
                continue
            setattr(self, name, value)

    def handle_state_batch_size_mismatch(self, new_batch_size: int) -> None:
        """Resamples each state to ``new_batch_size`` rows, drawn with replacement from the old
        rows (one ``torch.randint`` per buffer, consuming the RNG exactly as sinabs does)."""
        for name, buffer in self.named_buffers():
            rows = torch.randint(low=0, high=buffer.shape[0], size=(new_batch_size,))
            self.register_buffer(name, torch.index_select(buffer, 0, rows.to(buffer.device)))

    def init_state_with_shape(self, shape, randomize: bool = False) -> None:
        """Replaces every state by zeros of ``shape`` (default dtype), then resets them."""
        for name, buffer in self.named_buffers():
            self.register_buffer(name, torch.zeros(shape, device=buffer.device))
        self.reset_states(randomize=randomize)

    def reset_states(
        self,
        randomize: bool = False,
        value_ranges: Optional[Dict[str, Tuple[float, float]]] = None,
    ) -> None:
        """Zeros the states, or with ``randomize`` draws them uniformly from
        ``value_ranges[name]`` (default ``(0, 1)``), and detaches them. No-op before the first
        forward."""
        if not self.is_state_initialised():
            return
        for name, buffer in self._states().items():
            if randomize:
                low, high = (value_ranges or {}).get(name, (0.0, 1.0))
                torch.nn.init.uniform_(buffer)
                buffer.data = buffer * (high - low) + low
            else:
                buffer.zero_()
            buffer.detach_()

    def __repr__(self) -> str:
        shown = ("tau_mem", "tau_syn", "tau_adapt", "adapt_scale", "spike_threshold",
                 "min_v_mem", "norm_input", "batch_size", "num_timesteps")
        args = ", ".join(
            f"{key}={value}" for key, value in self._param_dict.items()
            if key in shown and value is not None
        )
        return f"{self.__class__.__name__}({args})"

    def __deepcopy__(self, memo=None):
        # Rebuilt from the constructor arguments; spike/reset/surrogate objects are shared.
        copy = self.__class__(**self._param_dict)
        for name, param in self.named_parameters():
            getattr(copy, name).data = param.data.clone()
        for name, buffer in self.named_buffers():
            getattr(copy, name).data = buffer.data.clone()
        return copy

    @property
    def _param_dict(self) -> dict:
        """The constructor arguments that rebuild this layer."""
        return dict()

    @property
    def arg_dict(self) -> dict:
        """Public alias of the constructor arguments (used by conversion mappers)."""
        return self._param_dict

    @property
    def does_spike(self) -> bool:
        return getattr(self, "spike_fn", None) is not None
