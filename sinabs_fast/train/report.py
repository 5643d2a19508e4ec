"""What ``sinabs-fast train`` prints and writes: the per-epoch rows, the comparison of the two
runs, ``report.json`` and ``curves.png``."""

import json
import os
from typing import Dict, List

from .loop import EpochResult

RUNS = ("baseline", "penalised")


def epoch_row(run: str, epoch: int, train: EpochResult, test: EpochResult) -> Dict:
    """One epoch's numbers, as kept in the history and report.json (synops on the test set)."""
    return {
        "run": run, "epoch": epoch, "loss": train.loss,
        "train_accuracy": train.accuracy, "test_accuracy": test.accuracy,
        "synops_per_sample": test.synops, "own_synops_per_sample": test.own_synops,
        "layer_synops": test.layer_synops, "firing_rates": test.firing_rates,
    }


def epoch_header(spiking_names: List[str]) -> str:
    rates = " ".join(f"{'fr ' + name:>7s}" for name in spiking_names)
    return (f"{'run':9s} {'epoch':>5s} {'loss':>7s} {'train':>6s} {'test':>6s} "
            f"{'synops/sample':>14s} {'own synops':>12s} {rates}")


def epoch_line(row: Dict) -> str:
    rates = " ".join(f"{r:7.4f}" for r in row["firing_rates"])
    return (f"{row['run']:9s} {row['epoch']:5d} {row['loss']:7.4f} "
            f"{100 * row['train_accuracy']:5.1f}% {100 * row['test_accuracy']:5.1f}% "
            f"{row['synops_per_sample']:14,.0f} {row['own_synops_per_sample']:12,.0f} {rates}")


def run_summary(history: List[Dict], layers: List[Dict], spiking: List[Dict]) -> Dict:
    """A run's result: its last epoch's test numbers, per layer."""
    last = history[-1]
    return {
        "test_accuracy": last["test_accuracy"], "train_accuracy": last["train_accuracy"],
        "synops_per_sample": last["synops_per_sample"],
        "own_synops_per_sample": last["own_synops_per_sample"],
        "layers": [dict(layer, synops_per_sample=value)
                   for layer, value in zip(layers, last["layer_synops"])],
        "firing_rates": [dict(layer, firing_rate=value)
                         for layer, value in zip(spiking, last["firing_rates"])],
        "history": history,
    }


def comparison_table(report: Dict) -> str:
    """The two runs side by side: accuracy, synops (total, own, per layer), firing rates."""
    base, pen = report["baseline"], report["penalised"]

    def line(label: str, a: float, b: float, fmt: str, change: str) -> str:
        return f"{label:28s} {format(a, fmt):>14s} {format(b, fmt):>14s} {change:>10s}"

    def ratio(a: float, b: float) -> str:
        return f"{b / a:.2f}x" if a else "-"

    lines = [f"{'':28s} {'baseline':>14s} {'penalised':>14s} {'change':>10s}",
             line("test accuracy (%)", 100 * base["test_accuracy"], 100 * pen["test_accuracy"],
                  ".1f", f"{100 * (pen['test_accuracy'] - base['test_accuracy']):+.1f} pt"),
             line("synops per sample", base["synops_per_sample"], pen["synops_per_sample"], ",.0f",
                  ratio(base["synops_per_sample"], pen["synops_per_sample"])),
             line("own synops per sample", base["own_synops_per_sample"],
                  pen["own_synops_per_sample"], ",.0f",
                  ratio(base["own_synops_per_sample"], pen["own_synops_per_sample"]))]
    for a, b in zip(base["layers"], pen["layers"]):
        label = f"  layer {a['name']} {a['type']} ({a['input']})"
        lines.append(line(label, a["synops_per_sample"], b["synops_per_sample"], ",.0f",
                          ratio(a["synops_per_sample"], b["synops_per_sample"])))
    for a, b in zip(base["firing_rates"], pen["firing_rates"]):
        lines.append(line(f"  firing rate {a['name']} {a['type']}", a["firing_rate"],
                          b["firing_rate"], ".4f", ratio(a["firing_rate"], b["firing_rate"])))
    return "\n".join(lines)


def write_report(report: Dict, out_dir: str) -> str:
    """Writes report.json into ``out_dir``; returns its path."""
    path = os.path.join(out_dir, "report.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    return path


def plot_curves(report: Dict, out_dir: str) -> str:
    """Writes curves.png (test accuracy and own synops per sample per epoch, both runs, and the
    penalty's target) into ``out_dir``; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (acc_ax, syn_ax) = plt.subplots(1, 2, figsize=(9, 3.4))
    for run, style in zip(RUNS, ("-o", "-s")):
        history = report[run]["history"]
        epochs = [row["epoch"] + 1 for row in history]
        acc_ax.plot(epochs, [100 * row["test_accuracy"] for row in history], style, ms=3, label=run)
        syn_ax.plot(epochs, [row["own_synops_per_sample"] for row in history], style, ms=3,
                    label=run)
    syn_ax.axhline(report["penalised"]["target_synops"], color="gray", ls="--", lw=1,
                   label="target")
    acc_ax.set(xlabel="epoch", ylabel="test accuracy (%)", title="accuracy")
    syn_ax.set(xlabel="epoch", ylabel="own synops per sample", title="synaptic operations")
    syn_ax.set_ylim(bottom=0)
    for ax in (acc_ax, syn_ax):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, "curves.png")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
