"""An op's public Python function (``sinabs_fast.ops.lif_forward`` and the others), made from its
registered schema (csrc/sinabs_fast.cpp), so that its argument list is written once, there.

The function is generated as Python source, as ``collections.namedtuple`` and ``dataclasses``
make theirs: a real signature (``inspect.signature``, ``help`` and Python's own errors for a
missing or unknown argument) and no binding work per call."""

from typing import Callable, Dict, Optional, Sequence

import inspect

from torch import Tensor

from .schema import OpSchema

# How the schema's types read in the function's annotations, and how a Python value becomes one
# (an IntEnum an int, a tuple a list of floats); tensors, optionals and bools pass as they are.
_ANNOTATIONS = {"Tensor": Tensor, "Optional[Tensor]": Optional[Tensor], "bool": bool,
                "int": int, "float": float, "List[float]": Sequence[float]}
_CONVERTERS = {"int": "int", "float": "float", "List[float]": "_as_floats"}


def _as_floats(values: Sequence[float]) -> list:
    return [float(v) for v in values]


def public_function(schema: OpSchema, defaults: Dict[str, object]
                    ) -> Callable[[Callable], Callable]:
    """Decorator: the op's public function, whose body is the decorated ``body(args, **extra)``.

    Its arguments: the schema's tensors, positional, in schema order; then its other arguments
    (the options), keyword-only; then ``body``'s own arguments after ``args`` (such as a Python
    surrogate), keyword-only, with their defaults. ``defaults`` gives the schema's arguments
    theirs. A call passes ``body`` the op's positional arguments in schema order, each option
    converted to the schema's type. The function takes ``body``'s name, docstring and module."""

    def make(body: Callable) -> Callable:
        unknown = defaults.keys() - set(schema.names)
        if unknown:
            raise TypeError(f"{body.__name__}: defaults for no argument of "
                            f"sinabs_fast::{schema.name}: {sorted(unknown)}")
        signature = inspect.signature(body)
        extra = list(signature.parameters.values())[1:]
        tensors = [n for n in schema.names if n not in schema.options]
        namespace = {"_body": body, "_defaults": defaults, "_as_floats": _as_floats,
                     "_extra": {p.name: p.default for p in extra}}

        def parameter(name: str, default_from: str, has_default: bool) -> str:
            return f"{name}={default_from}[{name!r}]" if has_default else name

        parameters = [parameter(n, "_defaults", n in defaults) for n in tensors] + ["*"]
        parameters += [parameter(n, "_defaults", n in defaults) for n in schema.options]
        parameters += [parameter(p.name, "_extra", p.default is not p.empty) for p in extra]
        values = [f"{_CONVERTERS[schema.types[n]]}({n})" if schema.types[n] in _CONVERTERS
                  else n for n in schema.names]
        passed_on = "".join(f", {p.name}={p.name}" for p in extra)
        source = (f"def {body.__name__}({', '.join(parameters)}):\n"
                  f"    return _body(({', '.join(values)},){passed_on})\n")
        exec(source, namespace)
        function = namespace[body.__name__]
        function.__doc__, function.__module__ = body.__doc__, body.__module__
        function.__qualname__ = body.__qualname__
        function.__annotations__ = {n: _ANNOTATIONS[t] for n, t in schema.types.items()}
        function.__annotations__.update(
            {p.name: p.annotation for p in extra if p.annotation is not p.empty})
        if signature.return_annotation is not signature.empty:
            function.__annotations__["return"] = signature.return_annotation
        return function

    return make
