"""An op call's positional arguments with some replaced by name (the op's schema names), so that
a test says which argument it changes instead of counting positions; and the check that an op
rejects a bad argument with an error that names it."""

from typing import Sequence

import pytest


def with_args(op, args: Sequence, **values) -> list:
    """``args``, positional in the schema order of ``op`` (a ``torch.ops`` overload), with the
    arguments named in ``values`` replaced."""
    names = [a.name for a in op._schema.arguments]
    unknown = values.keys() - set(names)
    assert not unknown, f"{op}: no arguments {sorted(unknown)}"
    args = list(args)
    for name, value in values.items():
        args[names.index(name)] = value
    return args


def assert_rejected(op, args: Sequence, cases: Sequence[tuple]) -> None:
    """For each case ``(name, value, message)``: ``op`` called on ``args`` with the argument
    ``name`` replaced by ``value`` raises a RuntimeError that matches ``message``."""
    for name, value, message in cases:
        with pytest.raises(RuntimeError, match=message):
            op(*with_args(op, args, **{name: value}))
