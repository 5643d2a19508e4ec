"""The arguments of a recurrent form (LIFRecurrent, IAFRecurrent, ALIFRecurrent, the functional
``lif_recurrent`` and ``alif_recurrent``): those of its non-recurrent form, with ``rec_connect``
where sinabs puts it, so that each argument list is written once."""

import inspect
from typing import Callable, Optional

import torch.nn as nn


def _with_rec_connect(base: inspect.Signature, after: Optional[str]) -> inspect.Signature:
    parameters = list(base.parameters.values())
    names = [p.name for p in parameters]
    at = names.index(after) + 1 if after else int(names[0] == "self")
    rec_connect = inspect.Parameter("rec_connect", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    annotation=nn.Module)
    return base.replace(parameters=parameters[:at] + [rec_connect] + parameters[at:])


def arguments_of(base: Callable, rec_connect_after: Optional[str]
                 ) -> Callable[[Callable], Callable]:
    """Decorator of ``function(**arguments)``: it takes ``base``'s arguments (a function, or a
    layer's ``__init__``) with a required ``rec_connect`` after ``rec_connect_after`` (first
    when None), its signature for ``inspect.signature`` and help. A call binds the arguments to
    their names, fills in ``base``'s defaults and passes them all to ``function`` by keyword; a
    missing or unknown argument raises Python's TypeError, naming ``function``."""

    def decorate(function: Callable) -> Callable:
        signature = _with_rec_connect(inspect.signature(base), rec_connect_after).replace(
            return_annotation=inspect.signature(function).return_annotation)

        def call(*args, **kwargs):
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{function.__qualname__}(): {error}") from None
            bound.apply_defaults()
            return function(**bound.arguments)

        call.__name__, call.__qualname__ = function.__name__, function.__qualname__
        call.__doc__, call.__module__ = function.__doc__, function.__module__
        call.__signature__ = signature
        return call

    return decorate
