#!/usr/bin/env python
"""A fused layer on more than 2^31 elements on the CPU: the kernels index with 64 bits, so an
input of (1, T, N) with T * N > 2^31 must give, on a sample of neurons spread over all N (the
last one included, whose last step lies past 2^31, where a 32-bit offset would have wrapped),
exactly the outputs and final states of sinabs_fast.reference on those neurons alone.

One IAF inference (no gradient). One batch row of many steps keeps the states ((B, N) tensors:
the membrane, its copy, the spike counts) small, so the memory is the input and the spikes,
float32 tensors of 4 * (2^31 + N) bytes each, about 17.2 GB together; the script refuses to
start when the machine's available memory (MemAvailable) is below that plus a 1.5 GB margin.
Not in CI.

Usage: python tools/large_tensor_check.py [--neurons 1048576] [--sample 64]
       python tools/large_tensor_check.py --min-elements 100000 --neurons 1000  (a dry run)
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
from sinabs_fast.neuron_params import LIFParams  # noqa: E402

MARGIN_BYTES = 3 << 29


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo (large_tensor_check needs Linux)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1 << 20, help="N")
    parser.add_argument("--sample", type=int, default=64, help="neurons checked")
    parser.add_argument("--min-elements", type=int, default=1 << 31,
                        help="the tensor has more elements than this (smaller: a dry run)")
    args = parser.parse_args()
    n = args.neurons
    steps = args.min_elements // n + 1  # the fewest steps past min_elements
    elements = steps * n
    needed = 2 * 4 * elements + MARGIN_BYTES
    if available_bytes() < needed:
        sys.exit(f"large_tensor_check: needs {needed / 1e9:.1f} GB available, the machine has "
                 f"{available_bytes() / 1e9:.1f} GB; not started")
    print(f"IAF on (B, T, N) = (1, {steps}, {n}): {elements:,} elements "
          f"(2^31 = {1 << 31:,}), float32, {torch.get_num_threads()} threads")

    # x[0, t, k] = ((t * 3 + k * 5) % 17) / 8: a spike pattern that differs by neuron and step.
    started = time.perf_counter()
    x = torch.empty(1, steps, n)
    k = torch.arange(n)
    for t in range(steps):
        x[0, t] = ((t * 3 + k * 5) % 17).float() / 8
    layer = fl.IAF(spike_fn=fa.MultiSpike, min_v_mem=-1.0)
    with torch.no_grad():
        out = layer(x)
    print(f"forward done in {time.perf_counter() - started:.0f} s (with building the input)")

    # The sample: neurons spread over all N, the very last included, each over all its steps.
    cols = torch.linspace(0, n - 1, args.sample).long()
    x_sample = x[0, :, cols].t().unsqueeze(-1)  # (sample, T, 1)
    got_out = out[0, :, cols].t().unsqueeze(-1)
    got_v = layer.v_mem[0, cols].unsqueeze(-1)
    del x, out
    state = {"v_mem": torch.zeros(len(cols), 1)}
    params = LIFParams(alpha_mem=torch.tensor(1.0), alpha_syn=None,
                       spike_threshold=torch.tensor(1.0), spike_fn=fa.MultiSpike,
                       reset_fn=fa.MembraneSubtract(), surrogate_grad_fn=fa.SingleExponential(),
                       min_v_mem=torch.tensor(-1.0), norm_input=False)
    ref_out, ref_state, _ = reference.lif_forward(x_sample, state, params)
    assert got_out.sum() > 0, "no spikes in the sample: not a meaningful check"
    assert torch.equal(got_out, ref_out), "outputs differ from the reference"
    assert torch.equal(got_v, ref_state["v_mem"]), "final membranes differ from the reference"
    print(f"{len(cols)} sampled neurons over {steps} steps (up to element offset "
          f"{elements - 1:,}): outputs and final membranes equal the reference's")


if __name__ == "__main__":
    main()
