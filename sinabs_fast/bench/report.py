"""Tables and a plot from one result (:mod:`sinabs_fast.bench.results`).

* :func:`markdown`: per neuron layer, one table of median milliseconds (shape x mode rows, one
  column per runtime, each peer's time also as a multiple of sinabs_fast's, and sinabs_fast's
  fraction of the copy bandwidth); the seed network's training steps; the bytes saved for
  backward (and, on CUDA, the peak bytes) per neuron-step; the host cost of tiny calls against
  a tiny ``nn.Linear`` (:mod:`sinabs_fast.bench.host_cost`); what was skipped and why.
* :func:`plot`: a PNG with the speed-up over sinabs per shape (forward+backward) and
  sinabs_fast's bandwidth fraction per shape and mode.
"""

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from . import host_cost
from .cases import FWD_BWD, LAYERS, MODES, SEED_NETWORK

OURS, SINABS = "sinabs_fast", "sinabs"


def fmt_ms(ms: Optional[float]) -> str:
    """Milliseconds with 3-4 significant digits ("—" for none)."""
    if ms is None:
        return "—"
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def fmt_ratio(ratio: Optional[float]) -> str:
    if ratio is None:
        return "—"
    return f"{ratio:.0f}x" if ratio >= 100 else f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def _percent(fraction: Optional[float]) -> str:
    if fraction is None:
        return "—"
    return f"{100 * fraction:.1f}" if fraction >= 0.01 else f"{100 * fraction:.2g}"


def _bytes(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.1f}"


def _ordered(values: Sequence[str], order: Sequence[str]) -> List[str]:
    """Unique ``values``, those in ``order`` first in its order, then the rest as they came."""
    unique = list(dict.fromkeys(values))
    return [v for v in order if v in unique] + [v for v in unique if v not in order]


def impls_of(rows: Sequence[Dict[str, Any]]) -> List[str]:
    """The runtimes of ``rows``, sinabs_fast first, then sinabs, then the others as they came."""
    return _ordered([r["impl"] for r in rows], (OURS, SINABS))


def _index(rows):
    return {(r["impl"], r["layer"], r["shape"], r["mode"], r["dtype"]): r for r in rows}


def markdown_table(header: Sequence[str], lines: Sequence[Sequence[str]], right_from: int) -> List[str]:
    align = ["---" if i < right_from else "---:" for i in range(len(header))]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return out


def layer_table(result: Dict[str, Any], layer: str, dtype: str) -> List[str]:
    """The milliseconds table of one neuron layer and dtype (empty when it has no rows)."""
    rows = [r for r in result["rows"] if r["layer"] == layer and r["dtype"] == dtype]
    if not rows:
        return []
    index = _index(rows)
    impls = impls_of(rows)
    shapes = list(dict.fromkeys(r["shape"] for r in rows))
    modes = _ordered([r["mode"] for r in rows], MODES)
    header = ["shape", "mode"] + [f"{i} ms" for i in impls] + [f"{OURS} BW %"]
    lines = []
    for shape in shapes:
        for mode in modes:
            ours = index.get((OURS, layer, shape, mode, dtype))
            if not any((i, layer, shape, mode, dtype) in index for i in impls):
                continue
            cells = []
            for impl in impls:
                row = index.get((impl, layer, shape, mode, dtype))
                ms = row and row["ms"]
                cell = fmt_ms(ms)
                if impl != OURS and ms and ours and ours["ms"]:
                    cell += f" ({fmt_ratio(ms / ours['ms'])})"
                cells.append(cell)
            lines.append([_shape_label(result, shape), mode] + cells
                         + [_percent(ours and ours["bandwidth_fraction"])])
    return markdown_table(header, lines, right_from=2)


def _shape_label(result: Dict[str, Any], shape: str) -> str:
    dims = result.get("shapes", {}).get(shape)
    if not dims or shape == f"B{dims['B']}T{dims['T']}N{dims['N']}":
        return shape
    return f"{shape} (B{dims['B']} T{dims['T']} N{dims['N']})"


def seed_network_table(result: Dict[str, Any]) -> List[str]:
    """The seed network's training steps: ms, IQR, and the ratios to the plain steps."""
    rows = [r for r in result["rows"] if r["layer"] == SEED_NETWORK]
    if not rows:
        return []
    ms = {r["impl"]: r["ms"] for r in rows}
    lines = []
    for r in rows:
        base = r["impl"].split("+")[0]
        over_plain = ms[r["impl"]] / ms[base] - 1 if base in ms and base != r["impl"] else None
        lines.append([r["impl"], r["shape"], fmt_ms(r["ms"]), fmt_ms(r["iqr_ms"]),
                      fmt_ratio(ms[SINABS] / r["ms"]) if SINABS in ms else "—",
                      "—" if over_plain is None else f"{100 * over_plain:+.1f}%"])
    return markdown_table(["impl", "shape", "ms", "IQR ms", "sinabs / this", "vs. the plain step"],
                  lines, right_from=2)


def _layer_rows(result: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The rows of the neuron layers (not the seed network's, not the Linear reference's)."""
    return [r for r in result["rows"]
            if r["layer"] not in (SEED_NETWORK, host_cost.LINEAR_LAYER)]


def memory_table(result: Dict[str, Any]) -> List[str]:
    """Bytes saved for backward (and peak bytes) per neuron-step, forward+backward rows."""
    rows = [r for r in _layer_rows(result) if r["mode"] == FWD_BWD
            and not host_cost.is_host_shape(r["shape"])
            and (r["saved_bytes_per_step"] is not None or r["peak_bytes_per_step"] is not None)]
    if not rows:
        return []
    index = _index(rows)
    impls = impls_of(rows)
    with_peak = any(r["peak_bytes_per_step"] is not None for r in rows)
    lines = []
    for layer, shape, dtype in dict.fromkeys((r["layer"], r["shape"], r["dtype"]) for r in rows):
        cells = []
        for impl in impls:
            row = index.get((impl, layer, shape, FWD_BWD, dtype))
            cell = _bytes(row and row["saved_bytes_per_step"])
            if with_peak:
                cell += " / " + _bytes(row and row["peak_bytes_per_step"])
            cells.append(cell)
        lines.append([layer, _shape_label(result, shape), dtype] + cells)
    return markdown_table(["layer", "shape", "dtype"] + impls, lines, right_from=3)


def host_table(result: Dict[str, Any]) -> List[str]:
    """The tiny calls' host cost against a tiny nn.Linear (:func:`host_cost.table`)."""
    lines = host_cost.table(result, OURS, SINABS)
    return markdown_table(host_cost.TABLE_HEADER, lines, right_from=3) if lines else []


def skipped_lines(result: Dict[str, Any]) -> List[str]:
    """One bullet per skipped entry."""
    out = []
    for s in result.get("skipped", []):
        where = " ".join(v for v in (s["layer"], s["shape"], s["mode"], s["dtype"]) if v != "*")
        out.append(f"- {s['impl']}{' ' + where if where else ''}: {s['reason']}")
    return out


def header_lines(result: Dict[str, Any]) -> List[str]:
    """The run's machine, software, command and copy bandwidth, as a short list."""
    m = result["machine"]
    copy = result["copy_bandwidth"]
    versions = ", ".join(f"{k} {v}" for k, v in result["versions"].items() if v)
    out = [f"- machine: {m.get('name', '?')}"
           + (f", {m['cpu_count']} cores" if m.get("cpu_count") else "")
           + (f", {m['threads']} threads" if m.get("threads") else ""),
           f"- torch {result['torch']}; {versions}",
           f"- command: `{result['command']}`"]
    if result.get("date"):
        out.insert(0, f"- date: {result['date']}")
    if copy:
        out.append(f"- copy bandwidth (`y.copy_(x)`, read + write): {copy['gbs']:.1f} GB/s")
    if result.get("notes"):
        out.append(f"- notes: {result['notes']}")
    return out


def markdown(result: Dict[str, Any], heading: str = "###") -> str:
    """All the tables of one result, under ``heading``-level titles."""
    out = header_lines(result) + [""]
    out.append("Median ms (in brackets: the peer's time over sinabs_fast's); BW %: sinabs_fast's "
               "effective bandwidth on its fewest bytes, as a percentage of the copy bandwidth.")
    layers = _ordered([r["layer"] for r in _layer_rows(result)], LAYERS)
    dtypes = list(dict.fromkeys(r["dtype"] for r in result["rows"]))
    for layer in layers:
        for dtype in dtypes:
            table = layer_table(result, layer, dtype)
            if table:
                out += ["", f"{heading} {layer}, {dtype}", ""] + table
    for title, table in (("seed network: one training step", seed_network_table(result)),
                         ("bytes per neuron-step, forward+backward: saved for backward"
                          + (" / peak" if result["device"] == "cuda" else ""),
                          memory_table(result)),
                         ("host cost of tiny calls (median us)", host_table(result))):
        if table:
            out += ["", f"{heading} {title}", ""] + table
    skipped = skipped_lines(result)
    if skipped:
        out += ["", f"{heading} not timed", ""] + skipped
    return "\n".join(out) + "\n"


def _positions(count: int, k: int, width: float) -> List[float]:
    """x of the k-th bar of each group (groups at 0, 1, ..., bars side by side around them)."""
    return [i - 0.4 + (k + 0.5) * width for i in range(count)]


def plot(result: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Writes the PNG (needs matplotlib): speed-up over sinabs per shape (forward+backward) and
    sinabs_fast's bandwidth fraction per shape and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in _layer_rows(result) if not host_cost.is_host_shape(r["shape"])]
    index = _index(rows)
    cases = list(dict.fromkeys((r["layer"], r["shape"], r["dtype"]) for r in rows))
    labels = [f"{layer}\n{shape}" + ("" if dtype == "float32" else f"\n{dtype}")
              for layer, shape, dtype in cases]
    fig, (left, right) = plt.subplots(2, 1, figsize=(min(20, max(8, 0.75 * len(cases) + 2)), 8))
    impls = [i for i in impls_of(rows) if i != SINABS]
    width = 0.8 / max(1, len(impls))
    for k, impl in enumerate(impls):
        speedups = []
        for layer, shape, dtype in cases:
            ours = index.get((impl, layer, shape, FWD_BWD, dtype))
            base = index.get((SINABS, layer, shape, FWD_BWD, dtype))
            speedups.append(base["ms"] / ours["ms"] if ours and base else 0.0)
        left.bar(_positions(len(cases), k, width), speedups, width, label=impl)
    left.set_yscale("log")
    left.axhline(1.0, color="black", linewidth=0.8)
    left.set_title("speed-up over sinabs, forward+backward")
    modes = _ordered([r["mode"] for r in rows], MODES)
    width = 0.8 / max(1, len(modes))
    for k, mode in enumerate(modes):
        fractions = []
        for layer, shape, dtype in cases:
            row = index.get((OURS, layer, shape, mode, dtype))
            fractions.append(100 * (row["bandwidth_fraction"] or 0.0) if row else 0.0)
        right.bar(_positions(len(cases), k, width), fractions, width, label=mode)
    right.set_title("sinabs_fast: % of copy bandwidth")
    for ax in (left, right):
        ax.set_xticks(list(range(len(cases))))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_xlim(-0.6, len(cases) - 0.4)
        ax.legend(fontsize=8)
    fig.suptitle(f"{result['machine'].get('name', result['device'])}, {result.get('date', '')}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
