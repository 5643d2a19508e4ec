"""``sinabs-fast bench``: the command line of the benchmark suite (also
``python -m sinabs_fast.bench``).

    sinabs-fast bench --device cpu --quick --json benchmarks/results/cpu-2core.json
    sinabs-fast bench --layers iaf,lif --shapes C1 --modes fwd+bwd --peers sinabs_fast,sinabs
    sinabs-fast bench --device cuda --dtype bfloat16 --markdown out.md --plot out.png
"""

import argparse
import shlex
import sys
from pathlib import Path
from typing import List, Optional

from .cases import DTYPES, LAYERS, MODES, SHAPES
from .peers import PEERS


def _names(text: str) -> List[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The bench options, on ``p``."""
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true",
                   help="fewer repetitions, the CPU shapes C1-C3 and H1-H2 (under 10 minutes on 2 "
                   "cores with every peer)")
    p.add_argument("--layers", type=_names, default=list(LAYERS), metavar="L1,L2",
                   help=f"comma-separated, from: {','.join(LAYERS)} (default: all)")
    p.add_argument("--shapes", type=_names, default=None, metavar="S1,S2",
                   help=f"comma-separated, from: {','.join(SHAPES)} (default: C1-C3 and "
                   "B8T500N1024 on the CPU, C1-C3 with --quick; G1-G7 on CUDA; and on both the "
                   "host-cost shapes H1, H2)")
    p.add_argument("--modes", type=_names, default=list(MODES), metavar="M1,M2",
                   help=f"comma-separated, from: {','.join(MODES)} (default: all)")
    p.add_argument("--dtype", default="float32", choices=list(DTYPES))
    p.add_argument("--peers", type=_names, default=None, metavar="P1,P2",
                   help=f"comma-separated, from: {','.join(PEERS)} (default: every one; "
                   "those not installed are skipped with a message)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads (default: torch's default, all cores)")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="skip (and report) the cases left once this many seconds are spent")
    p.add_argument("--notes", default=None, metavar="TEXT",
                   help="free text kept in the result file (e.g. the machine's state)")
    p.add_argument("--json", metavar="FILE", help="write the result file (JSON) here")
    p.add_argument("--append", action="store_true",
                   help="with --json: merge this run into the file's result when it exists (more "
                   "layers, shapes or dtypes; the same rows are replaced); the tables and the "
                   "plot then show the merged result")
    p.add_argument("--markdown", metavar="FILE", help="write the tables (markdown) here")
    p.add_argument("--plot", metavar="FILE",
                   help="write a PNG of speed-up over sinabs and bandwidth fraction per shape")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no progress bar")


def run_command(args: argparse.Namespace, argv: Optional[List[str]] = None) -> int:
    """Runs the benchmark the parsed ``args`` describe; writes the files asked for."""
    from . import report, results
    from .run import Bench, BenchOptions

    shown = sys.argv[1:] if argv is None else argv
    options = BenchOptions(
        device=args.device, quick=args.quick, layers=args.layers, shapes=args.shapes,
        modes=args.modes, dtype=args.dtype, peers=args.peers, threads=args.threads,
        time_budget_s=args.time_budget, command=shlex.join(["sinabs-fast", *shown]),
        progress=args.progress)
    if args.append and not args.json:
        raise ValueError("--append needs --json FILE (the result to append to)")
    result = Bench(options).run()
    if args.notes:
        result["notes"] = args.notes
    if args.append and Path(args.json).exists():
        result = results.merge(results.load(args.json), result)
    tables = report.markdown(result)
    print(tables)
    if args.json:
        print(f"results: {results.save(result, args.json)}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(tables)
        print(f"tables: {args.markdown}")
    if args.plot:
        print(f"plot: {report.plot(result, args.plot)}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sinabs_fast.bench", description=__doc__)
    add_arguments(p)
    args = p.parse_args(argv)
    try:
        return run_command(args, ["bench", *(sys.argv[1:] if argv is None else argv)])
    except (ValueError, ImportError) as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 2
