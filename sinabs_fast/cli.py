"""The ``sinabs-fast`` command (also ``python -m sinabs_fast.cli``).

    sinabs-fast train [options]     train a spiking network with and without a synops penalty
    sinabs-fast bench [options]     benchmark against sinabs and the other runtimes
    sinabs-fast info                version, build and devices

Distributed: ``torchrun --nproc-per-node N -m sinabs_fast.cli train ...``.
"""

import argparse
import sys
from typing import List, Optional

from ._version import __version__


def _train_parser(sub) -> None:
    from .train.job import TrainOptions
    from .train.models import MODELS

    d = TrainOptions()
    p = sub.add_parser(
        "train", help="train a spiking network, then again with a synops penalty",
        description="Trains a spiking network twice (a baseline, then with the synops loss "
        "(target - synops)^2 / target^2 aimed at a fraction of the baseline's own synops) and "
        "compares accuracy and synaptic operations. Writes report.json, curves.png, model.pt "
        "and model.nir to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default=d.model, choices=sorted(MODELS),
                   help="; ".join(f"{k}: {v.description}" for k, v in MODELS.items()))
    p.add_argument("--dataset", default=d.dataset,
                   choices=["digits", "nmnist", "dvsgesture", "shd"],
                   help="digits: scikit-learn's 8x8 digits upsampled to 28x28 and rate-coded "
                   "(no download); the others through tonic from --data-dir")
    p.add_argument("--data-dir", default=d.data_dir, help="folder with the tonic dataset's files")
    p.add_argument("--download", action="store_true", help="let tonic download the dataset")
    p.add_argument("--epochs", type=int, default=d.epochs, help="epochs of each run")
    p.add_argument("--batch-size", type=int, default=d.batch_size,
                   help="samples per batch (per process)")
    p.add_argument("--timesteps", type=int, default=d.timesteps, help="time steps per sample")
    p.add_argument("--lr", type=float, default=d.lr,
                   help="Adam's initial learning rate (cosine decay over each run)")
    p.add_argument("--seed", type=int, default=d.seed, help="seeds weights, data draws and order")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--synops-fraction", type=float, default=d.synops_fraction,
                        help="the penalty's target: this fraction of the baseline's own synops")
    target.add_argument("--target-synops", type=float, default=d.target_synops,
                        help="the penalty's target in own synops per sample (not a fraction)")
    p.add_argument("--synops-weight", type=float, default=d.synops_weight,
                   help="weight of the synops loss")
    p.add_argument("--device", default=d.device, choices=["cpu", "cuda", "auto"])
    p.add_argument("--threads", type=int, default=d.threads,
                   help="CPU threads per process (the numbers depend on it; one is fast for these "
                   "small networks and, on a machine busy with other work, much faster than more)")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--layers", choices=["sinabs_fast", "sinabs"], default=d.layers,
                   help="where the spiking layers come from: sinabs' own layers run the same job "
                   "for a comparison of speed (no --resume)")
    p.add_argument("--amp", choices=["bf16"], default=d.amp, help="bf16 autocast (CUDA only)")
    p.add_argument("--out", default=d.out, help="output folder (default runs/<timestamp>)")
    p.add_argument("--resume", metavar="DIR", default=d.resume,
                   help="continue the job whose checkpoint is in DIR (its saved options are used)")
    p.add_argument("--stop-after", type=int, default=d.stop_after, metavar="N",
                   help="stop after N epochs (both runs counted), leaving a checkpoint to --resume")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(command=_train)


def _train(args: argparse.Namespace) -> int:
    from .train.job import TrainOptions, train

    given = {k: v for k, v in vars(args).items() if k not in ("command", "subcommand")}
    options = TrainOptions(**given)
    train(options)
    return 0


def _bench_parser(sub) -> None:
    from .bench.command import add_arguments

    p = sub.add_parser(
        "bench", help="benchmark the layers against sinabs and the other runtimes",
        description="Times sinabs_fast's layers and the same configuration in every installed "
        "peer (sinabs, snnTorch, SpikingJelly, Norse, sinabs-exodus) after a semantics gate, "
        "and the seed network's training step; prints markdown tables and writes the result "
        "file (benchmarks/README.md describes the protocol).")
    add_arguments(p)
    p.set_defaults(command=_bench)


def _bench(args: argparse.Namespace) -> int:
    from .bench.command import run_command

    return run_command(args)


def _info(args: argparse.Namespace) -> int:
    from .build_info import build_info

    for key, value in build_info().items():
        print(f"{key + ':':22s} {value}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sinabs-fast", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"sinabs-fast {__version__}")
    sub = p.add_subparsers(dest="subcommand", required=True)
    _train_parser(sub)
    _bench_parser(sub)
    sub.add_parser("info", help="version, build (CPU instruction set, CUDA) and devices"
                   ).set_defaults(command=_info)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.command(args)
    except (ValueError, FileNotFoundError, ImportError) as error:
        print(f"sinabs-fast {args.subcommand}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
