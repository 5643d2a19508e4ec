#!/usr/bin/env python
"""Resident memory over many training iterations of the seed network (``sinabs-fast train``'s
default model) on the CPU: it must not grow once the first iterations have filled torch's
allocator and the CPU output pool (csrc/cpu/output_pool.cpp; its bound: docs/hardening.md).

Three phases of ``--iterations`` steps each, from one model:
  train     forward, backward, Adam step, states reset (the training job's step);
  dropped   forward with gradients, the graph dropped without a backward;
  inference forward under torch.no_grad.
For each phase it prints the resident set size (VmRSS) after the warm-up (the first tenth of
the phase's steps) and at the end, and the growth between the two. Not a test (timings and
memory depend on the machine), not in CI.

Usage: python tools/memory_growth.py [--iterations 500] [--batch 8] [--steps 10]
"""

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sinabs_fast  # noqa: E402
from sinabs_fast.train.models import build_model  # noqa: E402


def resident_mib() -> float:
    """This process's resident set size (Linux /proc), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (memory_growth needs Linux)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model("seed", args.batch, (1, 28, 28), 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)

    def batch():
        x = (torch.rand(args.batch, args.steps, 1, 28, 28, generator=generator) < 0.2).float()
        return x, torch.randint(0, 10, (args.batch,), generator=generator)

    def train():
        x, y = batch()
        sinabs_fast.reset_states(model)
        optimizer.zero_grad()
        F.cross_entropy(model(x).sum(1), y).backward()
        optimizer.step()

    def dropped():
        sinabs_fast.reset_states(model)
        model(batch()[0]).sum()  # the graph goes when the result does, without a backward

    def inference():
        sinabs_fast.reset_states(model)
        with torch.no_grad():
            model(batch()[0])

    warm_up = max(1, args.iterations // 10)
    print(f"seed network, batch {args.batch}, {args.steps} steps, {args.iterations} iterations "
          f"per phase, torch {torch.__version__}, 1 thread")
    print(f"{'phase':<10} {'RSS after warm-up (MiB)':>24} {'RSS at the end (MiB)':>21} "
          f"{'growth (MiB)':>13}")
    for name, step in (("train", train), ("dropped", dropped), ("inference", inference)):
        after_warm_up = None
        for i in tqdm(range(args.iterations), desc=name, leave=False):
            step()
            if i + 1 == warm_up:
                after_warm_up = resident_mib()
        end = resident_mib()
        print(f"{name:<10} {after_warm_up:>24.1f} {end:>21.1f} {end - after_warm_up:>13.1f}")


if __name__ == "__main__":
    main()
