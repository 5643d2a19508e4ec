"""The meta tensors the neuron ops' fake kernels return (what ``torch.compile`` traces with),
built from one reference tensor of shape ``(B, T, N)``: every output is new (fake outputs must
not alias each other), and an output the op leaves out is empty, ``(0,)``."""

from typing import Callable, Optional

import torch
from torch import Tensor

from .schema import OpSchema


class FakeOutputs:
    """Makes a fake kernel's outputs like the op's ``(B, T, N)`` tensor ``like`` (its dtype
    and device unless said otherwise)."""

    def __init__(self, like: Tensor):
        self.like = like
        self.batch, self.steps, self.neurons = like.shape

    def empty(self, dtype: Optional[torch.dtype] = None) -> Tensor:
        """An output the op leaves out."""
        return self.like.new_empty((0,), dtype=dtype)

    def spikes(self, present: bool = True, dtype: torch.dtype = torch.float32) -> Tensor:
        """The spikes, ``(B, T, N)``, float32 unless said otherwise."""
        shape = (self.batch, self.steps, self.neurons) if present else (0,)
        return self.like.new_empty(shape, dtype=dtype)

    def counts(self, present: bool = True) -> Tensor:
        """The float32 spike counts, ``(B, N)``."""
        shape = (self.batch, self.neurons) if present else (0,)
        return self.like.new_empty(shape, dtype=torch.float32)

    def dense(self, dtype: Optional[torch.dtype] = None) -> Tensor:
        """A contiguous ``(B, T, N)`` tensor."""
        return self.like.new_empty((self.batch, self.steps, self.neurons), dtype=dtype)

    def sequence(self, kept: bool) -> Tensor:
        """A per-step sequence, ``(B, T, N)`` contiguous (whatever the input's layout)."""
        return self.dense() if kept else self.empty()

    def input_gradient(self, input: Optional[Tensor],
                       dtype: Optional[torch.dtype] = None) -> Tensor:
        """The input gradient ``(B, T, N)`` (in ``like``'s dtype unless said otherwise): laid out
        like the backward's ``input`` argument where that has the shape and contiguous rows
        (empty_like keeps a dense layout, such as a time-major view's), else contiguous
        (``empty_input_gradient`` in csrc/lif_calls.h)."""
        dtype = dtype or self.like.dtype
        if (input is not None and input.numel() and input.shape == self.like.shape
                and (self.neurons <= 1 or input.stride(-1) == 1)):
            return torch.empty_like(input, dtype=dtype)
        return self.dense(dtype)

    def time_major(self, kept: bool) -> Tensor:
        """A per-step sequence ``(T, B, N)``."""
        return self.like.new_empty((self.steps, self.batch, self.neurons)) if kept else self.empty()

    def per_neuron(self, present: bool = True) -> Tensor:
        """A state or state gradient, ``(B, N)``."""
        return self.like.new_empty((self.batch, self.neurons)) if present else self.empty()

    def state(self, value: Optional[Tensor], present: bool = True) -> Tensor:
        """A final state shaped like the state argument ``value``."""
        return value.new_empty(value.shape) if present else self.empty()

    def gradient(self, of: Optional[Tensor], needed: bool) -> Tensor:
        """The gradient of a parameter ``of``, where it is needed."""
        return torch.empty_like(of) if needed else self.empty()


def forward_fake(schema: OpSchema) -> Callable[..., tuple]:
    """The fake kernel of a neuron forward op (ALIF's and the recurrent ops'), its outputs made
    by their names in the schema: ``spikes`` (B, T, N) and ``spike_counts`` (B, N), float32; a
    final state ``<state>_out`` shaped like the argument ``<state>`` (empty for ``i_syn`` without
    synaptic current); any other output a per-step sequence, kept with ``keep_sequences``
    (``i_seq`` only with synaptic current), time-major ``(T, B, N)`` when its name ends in
    ``_tm``. Registered from the op's module: torch checks that it is the one
    csrc/sinabs_fast.cpp names (set_python_module)."""

    def fake(*args) -> tuple:
        a = schema.bind(args)
        input = a["input"]
        torch._check(input.dim() == 3, lambda: "input must have shape (batch, time, neurons)")
        out = FakeOutputs(input)
        syn = a["alpha_syn"] is not None

        def output(name: str) -> Tensor:
            if name == "spikes":
                return out.spikes()
            if name == "spike_counts":
                return out.counts()
            if name.endswith("_out"):
                state = name[:-len("_out")]
                return out.state(a[state], state != "i_syn" or syn)
            kept = a["keep_sequences"] and (syn or not name.startswith("i_seq"))
            return out.time_major(kept) if name.endswith("_tm") else out.sequence(kept)

        return tuple(output(name) for name in schema.returns)

    return fake
