"""The autograd of the recurrent ops (``lif_recurrent_forward``, ``alif_recurrent_forward``),
written once for both: the backward op's arguments are found by their names in its schema
(csrc/sinabs_fast.cpp), so neither argument list is written out here.

What each argument of the backward is, by its name:
- ``grad_<output>``: the incoming gradient of the forward's output of that name, or of the final
  state ``<output>_out`` (as (B, N)); ``grad_counts`` that of ``spike_counts``;
- ``<input>_grad``: whether the forward's argument needs a gradient; ``alpha_grads`` whether any
  ``alpha_*`` does; ``weight_grad`` whether the weight or the bias does;
- any other: the forward's output or argument of that name (tensors are saved for it).
The backward's outputs ``grad_<input>`` are the gradients of the forward's arguments (the states'
in their own shape), returned for the arguments that need one."""

from typing import Callable, Dict

import torch
from torch import Tensor

from .schema import OpSchema


def register_recurrent_autograd(forward: OpSchema,
                                backward: OpSchema) -> Callable[[tuple], tuple]:
    """Registers the autograd of the recurrent op ``forward``, whose backward op is
    ``backward``. Returns how to call the op on its positional arguments: in eager mode through
    the same autograd as a plain ``torch.autograd.Function`` (or the kernel alone when no
    gradient is needed); the registered one binds every argument to the schema, with its
    defaults, on each call, which costs more than a tiny call's kernels (docs/design.md, "Host
    cost of a call"). torch.compile, tensor subclasses and torch-function modes get the
    registered op."""
    outputs = forward.returns
    options = forward.options_for(backward)
    # The tensors the backward takes: forward outputs and tensor arguments, by name.
    saved = [n for n in backward.names
             if n in outputs or (n in forward.names and n not in forward.options)]
    states = {n[:-len("_out")] for n in outputs if n.endswith("_out")}
    # Worked out once: for each incoming gradient the backward takes, the forward output's
    # position and whether it is a final state (passed as (B, N)); the flags; the results.
    incoming = []
    for name in backward.names:
        if name.startswith("grad_"):
            output = "spike_counts" if name == "grad_counts" else name[len("grad_"):]
            state = output not in outputs
            incoming.append((name, outputs.index(f"{output}_out" if state else output), state))
    flags = [n for n in backward.names if n.endswith("_grad") or n == "alpha_grads"]
    alphas = [n for n in forward.names if n.startswith("alpha_")]
    results = [(name[len("grad_"):], name[len("grad_"):] in states) for name in backward.returns]

    def setup_context(ctx, inputs, output):
        a = forward.bind(inputs)
        ctx.set_materialize_grads(False)
        ctx.needs = forward.bind(ctx.needs_input_grad)
        batch, _, neurons = a["input"].shape
        ctx.flat, ctx.state_shape = (batch, neurons), a["v_mem"].shape
        ctx.options = {k: a[k] for k in options}
        produced = dict(zip(outputs, output))
        ctx.save_for_backward(*(produced[n] if n in produced else a[n] for n in saved))

    def flag(name: str, needs: Dict[str, bool]) -> bool:
        if name == "alpha_grads":
            return any(needs[n] for n in alphas)
        if name == "weight_grad":
            return bool(needs["weight"] or needs["bias"])
        return bool(needs[name[:-len("_grad")]])

    def backward_fn(ctx, *grads):
        values = dict(zip(saved, ctx.saved_tensors))
        if values["v_hat_tm"].numel() == 0:
            raise RuntimeError(
                f"sinabs_fast.ops.{forward.name}: the backward needs keep_sequences=True")
        for name, at, state in incoming:
            # Absent outputs are empty tensors; their gradients (None, or empty) count as none.
            grad = grads[at]
            if grad is not None and grad.numel():
                values[name] = grad.reshape(ctx.flat) if state else grad
            else:
                values[name] = None
        needs = ctx.needs
        for name in flags:
            values[name] = flag(name, needs)
        gradients = {}
        for (argument, state), grad in zip(results, backward(**values, **ctx.options)):
            if not needs[argument]:
                continue
            if state:  # (B, N); empty for i_syn without synaptic current
                grad = (grad.reshape(ctx.state_shape) if grad.numel() == ctx.state_shape.numel()
                        else None)
            gradients[argument] = grad
        return forward.gradients(**gradients)

    torch.library.register_autograd(f"sinabs_fast::{forward.name}", backward_fn,
                                    setup_context=setup_context)

    class EagerFunction(torch.autograd.Function):
        # forward(ctx, ...) rather than a separate setup_context: Function.apply then skips
        # binding the arguments with inspect.signature on every call.
        @staticmethod
        def forward(ctx, *args):
            output = forward.kernel(*args)
            setup_context(ctx, args, output)
            return output

        @staticmethod
        def backward(ctx, *grads):
            return backward_fn(ctx, *grads)

    def call(args: tuple) -> tuple:
        if (torch.compiler.is_compiling() or type(args[0]) is not Tensor
                or torch._C._is_torch_function_mode_enabled()):
            return forward.op(*args)
        if torch.is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad
                                           for a in args):
            return EagerFunction.apply(*args)
        return forward.kernel(*args)

    return call
