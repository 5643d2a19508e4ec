"""The one result format of every benchmark run: building, validating, saving and loading it.

A result file is one JSON object::

    {"device": "cpu" | "cuda",
     "machine": {"name": ..., ...},          # the CPU or GPU model, cores, threads, platform
     "torch": "2.13.0+cpu",
     "versions": {"sinabs_fast": ..., "sinabs": ..., ...},   # each runtime timed (null: unknown)
     "command": "sinabs-fast bench --device cpu --quick ...",
     "copy_bandwidth": {"bytes": ..., "ms": ..., "gbs": ...} | null,
     "rows": [{"impl", "layer", "shape", "mode", "dtype", "ms", "iqr_ms",
               "bandwidth_fraction", "saved_bytes_per_step", "peak_bytes_per_step"}, ...]}

and, optionally, ``"date"`` (ISO date of the run), ``"shapes"`` (``{label: {"B", "T", "N"}}``),
``"skipped"`` (``[{"impl", "layer", "shape", "mode", "dtype", "reason"}]``: what was not timed
and why) and ``"notes"`` (free text, e.g. how a converted file differs). In a row, ``ms`` and
``iqr_ms`` are the median and interquartile range of the timed calls, ``copy_bandwidth``'s
``gbs`` counts the bytes read plus the bytes written per second, and any figure that was not
measured is null.
"""

import json
import numbers
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

ROW_FIELDS = (
    "impl", "layer", "shape", "mode", "dtype", "ms", "iqr_ms",
    "bandwidth_fraction", "saved_bytes_per_step", "peak_bytes_per_step",
)
# Row fields that are text; the others are numbers or null.
_ROW_TEXT = ("impl", "layer", "shape", "mode", "dtype")
TOP_FIELDS = ("device", "machine", "torch", "versions", "command", "copy_bandwidth", "rows")
OPTIONAL_TOP_FIELDS = ("date", "shapes", "skipped", "notes")
DEVICES = ("cpu", "cuda")
_ONE_PER_LINE = ("rows", "skipped")


class ResultFormatError(ValueError):
    """A result file that does not follow the format (the message says where)."""


def make_row(impl: str, layer: str, shape: str, mode: str, dtype: str, ms: Optional[float],
             iqr_ms: Optional[float] = None, bandwidth_fraction: Optional[float] = None,
             saved_bytes_per_step: Optional[float] = None,
             peak_bytes_per_step: Optional[float] = None) -> Dict[str, Any]:
    """One row, with exactly the format's fields in their order."""
    return dict(impl=impl, layer=layer, shape=shape, mode=mode, dtype=dtype, ms=ms,
                iqr_ms=iqr_ms, bandwidth_fraction=bandwidth_fraction,
                saved_bytes_per_step=saved_bytes_per_step,
                peak_bytes_per_step=peak_bytes_per_step)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def validate(result: Any) -> None:
    """Raises :class:`ResultFormatError` naming the first field that breaks the format."""
    if not isinstance(result, dict):
        raise ResultFormatError(f"a result must be a JSON object, not {type(result).__name__}")
    missing = [k for k in TOP_FIELDS if k not in result]
    if missing:
        raise ResultFormatError(f"missing top-level field(s): {', '.join(missing)}")
    unknown = sorted(set(result) - set(TOP_FIELDS) - set(OPTIONAL_TOP_FIELDS))
    if unknown:
        raise ResultFormatError(f"unknown top-level field(s): {', '.join(unknown)}")
    if result["device"] not in DEVICES:
        raise ResultFormatError(f"device must be one of {DEVICES}, not {result['device']!r}")
    for key in ("machine", "versions"):
        if not isinstance(result[key], dict):
            raise ResultFormatError(f"{key} must be an object")
    for key in ("torch", "command"):
        if not isinstance(result[key], str):
            raise ResultFormatError(f"{key} must be a string")
    copy = result["copy_bandwidth"]
    if copy is not None and not (isinstance(copy, dict) and _is_number(copy.get("gbs"))):
        raise ResultFormatError("copy_bandwidth must be null or an object with a number 'gbs'")
    if not isinstance(result["rows"], list):
        raise ResultFormatError("rows must be a list")
    for i, row in enumerate(result["rows"]):
        _validate_row(row, f"rows[{i}]")


def _validate_row(row: Any, where: str) -> None:
    if not isinstance(row, dict):
        raise ResultFormatError(f"{where} must be an object")
    if tuple(sorted(row)) != tuple(sorted(ROW_FIELDS)):
        extra = sorted(set(row) - set(ROW_FIELDS))
        missing = sorted(set(ROW_FIELDS) - set(row))
        raise ResultFormatError(f"{where}: missing {missing}, unknown {extra}")
    for key in _ROW_TEXT:
        if not isinstance(row[key], str) or not row[key]:
            raise ResultFormatError(f"{where}.{key} must be a non-empty string")
    for key in ROW_FIELDS[len(_ROW_TEXT):]:
        value = row[key]
        if value is not None and not (_is_number(value) and value >= 0):
            raise ResultFormatError(f"{where}.{key} must be null or a number >= 0, not {value!r}")


def save(result: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Validates ``result`` and writes it to ``path`` as JSON, a line per top-level field and
    per row or skipped entry (so that a diff of two runs reads row by row)."""
    validate(result)
    lines = []
    for key, value in result.items():
        if key in _ONE_PER_LINE and value:
            inner = ",\n  ".join(json.dumps(item) for item in value)
            lines.append(f" {json.dumps(key)}: [\n  {inner}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    return path


def load(path: Union[str, Path]) -> Dict[str, Any]:
    """Reads and validates one result file."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ResultFormatError(f"{path}: not JSON: {error}") from error
    try:
        validate(result)
    except ResultFormatError as error:
        raise ResultFormatError(f"{path}: {error}") from error
    return result


def merge(first: Dict[str, Any], *more: Dict[str, Any]) -> Dict[str, Any]:
    """One result from runs on the same device (e.g. a float32 run and a bfloat16 run, or
    more layers): the rows, skipped entries and commands of all, in order; versions and shapes
    united; the machine, torch and copy bandwidth of the first. A later row replaces an earlier
    one of the same impl, layer, shape, mode and dtype."""
    merged = json.loads(json.dumps(first))  # a deep copy
    key = lambda row: tuple(row[k] for k in _ROW_TEXT)  # noqa: E731
    rows = {key(row): row for row in merged["rows"]}
    for result in more:
        validate(result)
        if result["device"] != merged["device"]:
            raise ResultFormatError(f"cannot merge a {result['device']} result into a "
                                    f"{merged['device']} one")
        rows.update((key(row), row) for row in result["rows"])
        merged["command"] += f"; {result['command']}"
        merged["versions"].update(result["versions"])
        for field in ("shapes", "skipped"):
            if field in result:
                extra = result[field]
                if isinstance(extra, dict):
                    merged.setdefault(field, {}).update(extra)
                else:
                    merged.setdefault(field, []).extend(extra)
    merged["rows"] = list(rows.values())
    validate(merged)
    return merged


def rows_where(result: Dict[str, Any], **match: Any) -> List[Dict[str, Any]]:
    """The rows whose fields equal every ``match`` value, e.g. ``rows_where(r, mode="fwd+bwd")``."""
    return [row for row in result["rows"] if all(row.get(k) == v for k, v in match.items())]
