"""Layers used from several Python threads at once, one layer instance per thread, give the
results each gives alone: the fused ops release the GIL, so their calls (and the CPU output
pool they share, csrc/cpu/output_pool.cpp) really overlap. Sharing one instance between threads
is not supported (its states are attributes that every call replaces: docs/hardening.md)."""

import threading

import torch
import torch.nn as nn

import sinabs_fast.layers as sl

THREADS, ROUNDS = 4, 6
B, T, N = 4, 50, 128  # above the parallel grain: the ops' own thread pool runs too


def _layers():
    """Every kind of fused layer, one instance each."""
    torch.manual_seed(0)
    return [
        sl.IAF(),
        sl.LIF(tau_mem=10.0, tau_syn=5.0, train_alphas=True),
        sl.ExpLeak(tau_mem=8.0),
        sl.ALIF(tau_mem=10.0, tau_adapt=20.0),
        sl.LIFRecurrent(tau_mem=10.0, rec_connect=nn.Linear(N, N)),
    ]


def _work(layers, seed: int):
    """ROUNDS calls of every layer, states carried, then one backward: outputs, states and
    input gradients."""
    generator = torch.Generator().manual_seed(seed)
    results = []
    for layer in layers:
        xs = [(torch.rand(B, T, N, generator=generator) * 3).requires_grad_()
              for _ in range(ROUNDS)]
        outs = [layer(x) for x in xs]
        torch.stack(outs).mul(torch.linspace(-1, 1, N)).sum().backward()
        results.append(([o.detach() for o in outs], layer.v_mem.detach().clone(),
                         [x.grad for x in xs]))
    return results


def test_distinct_instances_in_threads_give_their_results_alone():
    expected = [_work(_layers(), seed) for seed in range(THREADS)]
    # Built here: the random initialisation draws from torch's global generator, which threads
    # building at once would interleave.
    layers = [_layers() for _ in range(THREADS)]
    got = [None] * THREADS
    errors = []
    start = threading.Barrier(THREADS)

    def run(index):
        try:
            start.wait()
            got[index] = _work(layers[index], index)
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for thread, (mine, alone) in enumerate(zip(got, expected)):
        for layer, ((outs, v_mem, grads), (ref_outs, ref_v_mem, ref_grads)) in enumerate(
                zip(mine, alone)):
            assert sum(o.sum() for o in ref_outs) != 0
            names = [f"output {r}" for r in range(ROUNDS)] + ["v_mem"] + [
                f"grad {r}" for r in range(ROUNDS)]
            for name, a, b in zip(names, outs + [v_mem] + grads,
                                  ref_outs + [ref_v_mem] + ref_grads):
                assert torch.equal(a, b), f"thread {thread}, layer {layer}: {name} differs"
