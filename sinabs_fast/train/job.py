"""The job behind ``sinabs-fast train``: a baseline run, then the same network (same seed, same
initial weights, same data order) trained with the synops penalty aimed at a fraction of the
baseline's own synops; per-epoch rows, a comparison table, and ``report.json``, ``curves.png``,
``model.pt`` and ``model.nir`` in the output folder. A checkpoint is written after every epoch.
"""

import os
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Callable, Dict, Optional

import torch
from torch.utils.data import DataLoader, DistributedSampler

from .. import layers as sl
from .._version import __version__
from ..utils import reset_states
from . import checkpoint, distributed
from .data import Splits, digits
from .loop import run_epoch
from .models import MODELS, build_model, set_model_batch_size
from .report import (RUNS, comparison_table, epoch_header, epoch_line, epoch_row, plot_curves,
                     run_summary, write_report)
from .synops import SynopsMeter, penalty_for

EVAL_BATCH_SIZE = 256


@dataclass
class TrainOptions:
    """The job's options (the ``sinabs-fast train`` flags). Those up to ``amp`` decide the
    result and are saved in the checkpoint; on ``resume`` the saved ones are used."""

    model: str = "seed"
    dataset: str = "digits"
    data_dir: Optional[str] = None
    download: bool = False
    epochs: int = 4
    batch_size: int = 32
    timesteps: int = 10
    lr: float = 2e-3
    seed: int = 0
    synops_fraction: float = 0.5
    target_synops: Optional[float] = None
    synops_weight: float = 10.0
    compile: bool = False
    layers: str = "sinabs_fast"
    # One CPU thread by default: the numbers then do not depend on the machine's core count,
    # and these small networks gain little from more (on a 2-core machine shared with other
    # jobs, the default job took 46 s with 1 thread and 427 s with 2, whose parallel regions
    # stall whenever another process takes a core).
    threads: int = 1
    amp: Optional[str] = None
    # Not saved: where and how this invocation runs.
    device: str = "auto"
    out: Optional[str] = None
    resume: Optional[str] = None
    stop_after: Optional[int] = None
    progress: bool = True

    def saved(self) -> Dict[str, Any]:
        names = [f.name for f in fields(self)]
        return {k: v for k, v in asdict(self).items() if names.index(k) <= names.index("amp")}

    def check(self) -> None:
        for name in ("epochs", "batch_size", "timesteps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr}")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {sorted(MODELS)}, got {self.model!r}")
        if self.layers not in ("sinabs_fast", "sinabs"):
            raise ValueError(f"layers must be sinabs_fast or sinabs, got {self.layers!r}")
        if self.amp not in (None, "bf16"):
            raise ValueError(f"amp must be bf16, got {self.amp!r}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.stop_after is not None and self.stop_after < 1:
            raise ValueError(f"stop_after must be at least 1, got {self.stop_after}")


def load_dataset(options: TrainOptions) -> Splits:
    if options.dataset == "digits":
        return digits(options.timesteps, options.seed)
    from .tonic_data import load_tonic

    return load_tonic(options.dataset, options.data_dir, options.timesteps, options.download)


def train(options: TrainOptions) -> Optional[Dict]:
    """Runs (or, with ``options.resume``, continues) the job; returns the report, or None when
    ``stop_after`` ended it early (the checkpoint then holds where it stopped)."""
    context = distributed.start(options.device)
    threads = torch.get_num_threads()
    try:
        return _Job(options, context).run()
    finally:
        torch.set_num_threads(threads)  # the job's count is for the job only
        distributed.finish(context)


class _Job:
    def __init__(self, options: TrainOptions, context: distributed.Context):
        saved = None
        if options.resume:
            saved = checkpoint.load(options.resume)
            options = replace(options, **saved["options"], out=options.resume)
        elif options.out is None:
            options = replace(options, out=os.path.join("runs", time.strftime("%Y%m%d-%H%M%S")))
        options.check()
        if saved is not None and options.layers == "sinabs":
            raise ValueError("resume: sinabs' layers cannot load saved neuron states; "
                             "resume works with --layers sinabs_fast")
        if options.amp and context.device.type != "cuda":
            raise ValueError("amp: bf16 autocast is for CUDA devices; use --device cuda")
        self.options, self.context, self.saved = options, context, saved
        torch.set_num_threads(options.threads)
        self.log: Callable[[str], None] = _tqdm_write if context.is_main else (lambda _: None)
        self.state = {"history": {run: [] for run in RUNS}, "results": {}, "seconds": 0.0,
                      "baseline_model": None}
        if saved is not None:
            self.state = {k: saved[k] for k in self.state}
        if context.is_main:
            os.makedirs(options.out, exist_ok=True)

    def run(self) -> Optional[Dict]:
        o, started = self.options, time.perf_counter()
        self.splits = load_dataset(o)
        self.log(f"sinabs-fast train: model {o.model}, dataset {o.dataset} "
                 f"({len(self.splits.train)} train / {len(self.splits.test)} test samples, "
                 f"{o.timesteps} steps), {o.epochs} epochs per run, device {self.context.device}"
                 f"{f' x {self.context.world_size} processes' if self.context.distributed else ''}"
                 f", output in {o.out}")
        epochs_left = o.stop_after
        for run in RUNS:
            if run in self.state["results"]:
                continue
            if epochs_left != 0:
                epochs_left = self._run(run, started, epochs_left)
            if run not in self.state["results"]:  # --stop-after ended it
                self.log(f"stopped after --stop-after {o.stop_after} epochs; continue with "
                         f"--resume {o.out}")
                return None
        return self._finish(started)

    def _run(self, run: str, started: float, epochs_left: Optional[int]) -> Optional[int]:
        o, ctx = self.options, self.context
        torch.manual_seed(o.seed)  # both runs start from the same weights
        network = build_model(o.model, o.batch_size, self.splits.sample_shape,
                              self.splits.classes, _neurons(o.layers)).to(ctx.device)
        meter = SynopsMeter(network)
        optimizer = torch.optim.Adam(network.parameters(), lr=o.lr)
        # Cosine decay over the run's epochs: the last epochs settle, so the run's final
        # numbers (and the penalty's target, taken from the baseline's) do not hinge on one step.
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=o.epochs)
        penalty = None
        if run == "penalised":
            penalty = penalty_for(self.state["results"]["baseline"]["own_synops_per_sample"],
                                  o.synops_fraction, o.target_synops, o.synops_weight)
            self.log(f"penalised run: synops loss weight {penalty.weight} x (target - own synops)"
                     f"^2 / target^2, target {penalty.target:,.0f} own synops per sample")
        first = 0
        if self.saved is not None and self.saved["run"] == run:
            network.load_state_dict(self.saved["model"])
            optimizer.load_state_dict(self.saved["optimizer"])
            schedule.load_state_dict(self.saved["schedule"])
            checkpoint.restore_rng_states(self.saved["rng"])
            first = self.saved["epoch"]
        model = distributed.wrap(network, ctx)
        if o.compile:
            model = torch.compile(model)
        amp = torch.bfloat16 if o.amp == "bf16" else None
        test_loader = DataLoader(self.splits.test, batch_size=EVAL_BATCH_SIZE)
        if first == 0:
            self.log(epoch_header([name for name, _ in meter.spiking]))
        history = self.state["history"][run]
        for epoch in range(first, o.epochs):
            epoch_start = time.perf_counter()
            self.splits.train.set_epoch(epoch)
            sampler = DistributedSampler(self.splits.train, num_replicas=ctx.world_size,
                                         rank=ctx.rank, shuffle=True, seed=o.seed)
            sampler.set_epoch(epoch)
            loader = DataLoader(self.splits.train, batch_size=o.batch_size, sampler=sampler)
            bar = _progress(loader, f"{run} {epoch + 1}/{o.epochs}", o.progress and ctx.is_main)
            train = run_epoch(model, network, meter, bar, ctx.device, optimizer, penalty, amp,
                              ctx.distributed)
            schedule.step()
            test = run_epoch(network, network, meter, test_loader, ctx.device, amp=amp)
            row = epoch_row(run, epoch, train, test)
            row["seconds"] = time.perf_counter() - epoch_start
            history.append(row)
            self.log(epoch_line(row))
            if epoch + 1 == o.epochs:
                spiking = [{"name": n, "type": type(m).__name__} for n, m in meter.spiking]
                summary = run_summary(history, meter.layer_descriptions(), spiking)
                summary["seconds"] = sum(r["seconds"] for r in history)
                if penalty is not None:
                    summary.update(target_synops=penalty.target, synops_weight=penalty.weight)
                else:
                    self.state["baseline_model"] = network.state_dict()
                self.state["results"][run] = summary
                self.network = network
            self._save(run, epoch + 1, network, optimizer, schedule, started)
            if epochs_left is not None:
                epochs_left -= 1
                if epochs_left == 0:
                    break
        return epochs_left

    def _save(self, run: str, epoch: int, network, optimizer, schedule, started: float) -> None:
        if not self.context.is_main:
            return
        state = dict(self.state, seconds=self.state["seconds"] + time.perf_counter() - started)
        checkpoint.save(self.options.out, dict(
            state, options=self.options.saved(), run=run, epoch=epoch, version=__version__,
            model=network.state_dict(), optimizer=optimizer.state_dict(),
            schedule=schedule.state_dict()))

    def _finish(self, started: float) -> Dict:
        o, ctx = self.options, self.context
        results = self.state["results"]
        report = {
            "baseline": results["baseline"], "penalised": results["penalised"],
            "device": str(ctx.device), "world_size": ctx.world_size, "epochs": o.epochs,
            "seconds": self.state["seconds"] + time.perf_counter() - started,
            "options": o.saved(), "version": __version__,
        }
        if not ctx.is_main:
            return report
        self.log("\n" + comparison_table(report))
        write_report(report, o.out)
        plot_curves(report, o.out)
        written = ["report.json", "curves.png", "model.pt"]
        if hasattr(self, "network") and _export_nir(self.network, self.splits, o.out, self.log):
            written.append("model.nir")
        self.log(f"wrote {', '.join(written)} to {o.out} ({report['seconds']:.0f} s)")
        return report


def _export_nir(network, splits: Splits, out_dir: str, log: Callable[[str], None]) -> bool:
    """Writes the trained network as a NIR graph, ``model.nir`` (needs nir and nirtorch);
    whether it did."""
    try:
        import nir

        from ..nir import to_nir
    except ImportError as error:
        log(f"NIR export skipped: {error}")
        return False
    sample = splits.test[0][0].unsqueeze(0).to(next(network.parameters()).device)
    set_model_batch_size(network, 1)
    reset_states(network)
    try:
        nir.write(os.path.join(out_dir, "model.nir"), to_nir(network, sample))
    except Exception as error:  # the run's results are saved; the export is an extra
        log(f"NIR export failed: {error.__class__.__name__}: {error}")
        return False
    return True


def _neurons(layers: str):
    """The module the spiking layers come from."""
    if layers == "sinabs_fast":
        return sl
    try:
        import sinabs.layers
    except ImportError as error:
        raise ImportError("--layers sinabs needs sinabs: pip install 'sinabs-fast[sinabs]'") \
            from error
    return sinabs.layers


def _progress(iterable, description: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=description, leave=False, unit="batch", dynamic_ncols=True)


def _tqdm_write(line: str) -> None:
    try:
        from tqdm import tqdm
    except ImportError:
        print(line, flush=True)
        return
    tqdm.write(line)
