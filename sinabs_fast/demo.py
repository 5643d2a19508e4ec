"""A short demo: the seed network of sinabs' synops documentation, run as a spiking network on
random input spikes, on sinabs_fast's fused IAF layers (and on sinabs' own, when installed).

    python -m sinabs_fast.demo [--batch 5] [--steps 10] [--threads N]

Prints the output spikes, the spike counts of every spiking layer (which the kernels return
without re-reading the spike tensors), the synaptic operations counted from them, and the time
of a forward and of a forward+backward pass.
"""

import argparse
import statistics
import time
from typing import Callable, List

import torch
import torch.nn as nn

import sinabs_fast
import sinabs_fast.layers as sl
from sinabs_fast.train import models


def seed_network(layers, batch_size: int) -> nn.Sequential:
    """The seed network (:func:`sinabs_fast.train.models.seed_network`) built from ``layers``
    (``sinabs_fast.layers`` or ``sinabs.layers``); input (batch, time, 1, 28, 28), output
    (batch, time, 10)."""
    return models.seed_network(batch_size, layers=layers)


def median_ms(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up (state initialisation)
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def time_network(net: nn.Sequential, x: torch.Tensor, reset: Callable, repeats: int):
    def forward():
        reset(net)
        with torch.no_grad():
            net(x)

    def forward_backward():
        reset(net)
        net.zero_grad()
        net(x).sum().backward()

    return median_ms(forward, repeats), median_ms(forward_backward, repeats)


def reset_all(net: nn.Module) -> None:
    for m in net.modules():
        if hasattr(m, "reset_states"):
            m.reset_states()
            m.zero_grad()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=5)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    net = seed_network(sl, args.batch)
    x = (torch.rand(args.batch, args.steps, 1, 28, 28) < 0.3).float()
    counter = sinabs_fast.SNNSynOpCounter(net)
    out = net(x)
    print(f"sinabs_fast seed network, input {tuple(x.shape)}: {int(x.sum())} input spikes")
    print(f"output spikes per sample and class (summed over {args.steps} steps):")
    print(out.sum(1))
    print("spike counts per spiking layer (from the kernels):")
    for name, m in net.named_modules():
        if isinstance(m, sl.IAFSqueeze):
            print(f"  layer {name:>2} ({m.__class__.__name__}, {m.spike_counts[0].numel():5d} "
                  f"neurons): {int(m.spike_counts.sum()):7d} spikes, firing rate "
                  f"{m.firing_rate.item():.4f}")
    print("synaptic operations (the documentation's SNNSynOpCounter, from those counts):")
    try:
        print(counter.get_synops().to_string())
    except ImportError as error:  # pandas is optional
        print(f"  ({error})")
    print(f"total synops {counter.get_total_synops().item():,.0f}")
    counter.remove()  # the timings below run uncounted

    fwd, fwd_bwd = time_network(net, x, reset_all, args.repeats)
    rows = [("sinabs_fast", fwd, fwd_bwd)]
    try:
        import sinabs.layers as sinabs_layers
    except ImportError:
        sinabs_layers = None
    if sinabs_layers is not None:
        theirs = seed_network(sinabs_layers, args.batch)
        # Weights only: sinabs cannot load state buffers into a fresh layer.
        weights = {k: v for k, v in net.state_dict().items() if k.endswith("weight")}
        theirs.load_state_dict(weights, strict=False)
        same = torch.equal(theirs(x), seed_network_output(net, x))
        rows.append(("sinabs 3.1.3", *time_network(theirs, x, reset_all, args.repeats)))
        print(f"identical output to sinabs: {same}")
    print(f"\n{'':14s} {'forward ms':>12s} {'fwd+bwd ms':>12s}   (median of {args.repeats}, "
          f"{torch.get_num_threads()} threads)")
    for name, f, fb in rows:
        print(f"{name:14s} {f:12.2f} {fb:12.2f}")


def seed_network_output(net: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    reset_all(net)
    with torch.no_grad():
        return net(x)


if __name__ == "__main__":
    main()
