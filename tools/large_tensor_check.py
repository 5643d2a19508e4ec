#!/usr/bin/env python
"""A fused layer on more than 2^31 elements on the CPU: the kernels index with 64 bits, so an
input of (B, T, N) with B * T * N > 2^31 must give, on a sample of neurons spread over the
whole tensor (the last ones included, where a 32-bit offset would have wrapped), exactly the
outputs and final states of sinabs_fast.reference on those neurons alone.

One IAF inference (no gradient) with T = 2: the input and the spikes are float32 tensors of
4 * (2^31 + N) bytes each, about 17.2 GB together; the script refuses to start when the
machine's available memory (MemAvailable) is below that plus a 2 GB margin. Not in CI.

Usage: python tools/large_tensor_check.py [--neurons-per-row 1048576] [--sample 64]
       python tools/large_tensor_check.py --min-elements 100000 --neurons-per-row 1000  (dry run)
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sinabs_fast.activation as fa  # noqa: E402
import sinabs_fast.layers as fl  # noqa: E402
from sinabs_fast import reference  # noqa: E402

STEPS = 2
MARGIN_BYTES = 2 << 30


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo (large_tensor_check needs Linux)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons-per-row", type=int, default=1 << 20,
                        help="N, the neurons of one batch row")
    parser.add_argument("--sample", type=int, default=64, help="neurons checked")
    parser.add_argument("--min-elements", type=int, default=1 << 31,
                        help="the tensor has more elements than this (smaller: a dry run)")
    args = parser.parse_args()
    n = args.neurons_per_row
    batch = args.min_elements // (STEPS * n) + 1  # the smallest batch past min_elements
    elements = batch * STEPS * n
    needed = 2 * 4 * elements + MARGIN_BYTES
    if available_bytes() < needed:
        sys.exit(f"large_tensor_check: needs {needed / 1e9:.1f} GB available, the machine has "
                 f"{available_bytes() / 1e9:.1f} GB; not started")
    print(f"IAF on (B, T, N) = ({batch}, {STEPS}, {n}): {elements:,} elements "
          f"(2^31 = {1 << 31:,}), float32, {torch.get_num_threads()} threads")

    # Values from the neuron's position, so that any neuron's input can be rebuilt alone:
    # x[b, t, k] = ((b * 7 + t * 3 + k * 5) % 17) / 8, a spike pattern that differs by neuron.
    started = time.perf_counter()
    x = torch.empty(batch, STEPS, n)
    k = torch.arange(n)
    for b in range(batch):
        for t in range(STEPS):
            x[b, t] = ((b * 7 + t * 3 + k * 5) % 17).float() / 8
    layer = fl.IAF(spike_fn=fa.MultiSpike, min_v_mem=-1.0)
    with torch.no_grad():
        out = layer(x)
    print(f"forward done in {time.perf_counter() - started:.0f} s (with building the input)")

    # The sample: spread over all (b, k), the very last neuron included.
    flat = torch.linspace(0, batch * n - 1, args.sample).long()
    rows, cols = flat // n, flat % n
    x_sample = x[rows, :, cols].unsqueeze(-1)  # (sample, T, 1)
    got_out = out[rows, :, cols].unsqueeze(-1)
    got_v = layer.v_mem[rows, cols].reshape(len(flat), 1)
    del x, out
    state = {"v_mem": torch.zeros(len(flat), 1)}
    ref_out, ref_state, _ = reference.lif_forward(
        x_sample, torch.tensor(1.0), None, state, torch.tensor(1.0), fa.MultiSpike,
        fa.MembraneSubtract(), fa.SingleExponential(), torch.tensor(-1.0), False)
    assert got_out.sum() > 0, "no spikes in the sample: not a meaningful check"
    assert torch.equal(got_out, ref_out), "outputs differ from the reference"
    assert torch.equal(got_v, ref_state["v_mem"]), "final membranes differ from the reference"
    last = (int(rows[-1]) * STEPS + STEPS - 1) * n + int(cols[-1])
    print(f"{len(flat)} sampled neurons (up to element offset {last:,}): outputs and final "
          f"membranes equal the reference's")


if __name__ == "__main__":
    main()
