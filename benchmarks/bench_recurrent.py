"""Median times of a recurrent layer with a linear rec_connect (Flatten + Linear(N, N)), forward
(inference) and forward+backward, for sinabs_fast (whichever one is importable: run it with
PYTHONPATH set to a checkout to compare builds) and optionally sinabs, in one process.

    python benchmarks/bench_recurrent.py --layer ALIFRecurrent --shape 8 100 256 --sinabs

A/B of two builds: alternate the runs in the same minutes, e.g.
    for i in 1 2 3; do for tree in /tmp/main-tree .; do PYTHONPATH=$tree python ...; done; done
"""

import argparse
import statistics
import time

import torch
from tqdm import tqdm


def build(library: str, layer: str, neurons: int) -> torch.nn.Module:
    """The layer of ``library`` (sinabs_fast or sinabs) with a seeded linear rec_connect."""
    layers = __import__(f"{library}.layers", fromlist=["layers"])
    torch.manual_seed(0)
    rec = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(neurons, neurons))
    with torch.no_grad():
        rec[1].weight.mul_(0.5)
    taus = (20.0, 50.0) if layer == "ALIFRecurrent" else (20.0,)
    return getattr(layers, layer)(*taus, rec, tau_syn=5.0)


def median_ms(fn, reps: int, label: str) -> float:
    fn()  # warm-up: allocations, pools, first-call planning
    times = []
    for _ in tqdm(range(reps), desc=label, leave=False):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def measure(library: str, layer: str, shape, reps: int, scale: float) -> dict:
    module = build(library, layer, shape[2])
    x = torch.rand(*shape) * scale
    x_grad = x.clone().requires_grad_()

    def forward():
        module.reset_states()
        with torch.no_grad():
            module(x)

    def forward_backward():
        module.reset_states()
        module(x_grad).sum().backward()

    with torch.no_grad():
        module.reset_states()
        rate = module(x).mean().item()
    return {"library": library, "forward_ms": median_ms(forward, reps, f"{library} fwd"),
            "forward_backward_ms": median_ms(forward_backward, reps, f"{library} fwd+bwd"),
            "spikes_per_step": rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="ALIFRecurrent",
                        choices=["ALIFRecurrent", "LIFRecurrent"])
    parser.add_argument("--shape", type=int, nargs=3, default=[8, 100, 256],
                        metavar=("B", "T", "N"))
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--scale", type=float, default=4.0,
                        help="input uniform in [0, scale): the firing rate")
    parser.add_argument("--sinabs", action="store_true", help="also time sinabs' layer")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import sinabs_fast

    libraries = ["sinabs_fast"] + (["sinabs"] if args.sinabs else [])
    for library in libraries:
        row = measure(library, args.layer, args.shape, args.reps, args.scale)
        where = sinabs_fast.__file__ if library == "sinabs_fast" else ""
        print(f"{args.layer} B{args.shape[0]} T{args.shape[1]} N{args.shape[2]} {library:12s} "
              f"forward {row['forward_ms']:8.3f} ms  forward+backward "
              f"{row['forward_backward_ms']:8.3f} ms  (mean spikes {row['spikes_per_step']:.3f}) "
              f"{where}")


if __name__ == "__main__":
    main()
