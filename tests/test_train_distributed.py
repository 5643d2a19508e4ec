"""The training network under DistributedDataParallel as ``sinabs-fast train`` builds it: 2 gloo
processes, each with half the batch, give the gradients and synops of one process on the whole
batch, with the neuron states carried from one chunk of the sequences to the next (DDP must not
overwrite them: ``broadcast_buffers=False``). With DDP's default ``broadcast_buffers=True`` the
carried states would be rank 0's on every rank: the layers refuse that with an error naming the
setting (sinabs_fast/layers/ddp_guard.py), and states reset before each forward stay right."""

import os

import torch
import torch.nn.functional as F

from sinabs_fast.train import distributed
from sinabs_fast.train.models import build_model
from sinabs_fast.train.synops import SynopsMeter, SynopsPenalty, own_synops

BATCH, STEPS, CHUNKS = 4, 8, 2


def _data():
    generator = torch.Generator().manual_seed(3)
    x = (torch.rand(BATCH, STEPS, 1, 28, 28, generator=generator) < 0.3).float()
    return x, torch.arange(BATCH) % 10


def _step(model, network, meter, x, y, synced: bool, chunks: int = CHUNKS):
    """``chunks`` chunks of the sequences, states carried between them; the training loss on
    all."""
    outputs, synops = [], []
    for chunk in x.chunk(chunks, dim=1):
        outputs.append(model(chunk))
        if synced:
            meter.all_reduce()
        synops.append(own_synops(meter.layer_synops(chunk.shape[1])))
    total = sum(synops)
    loss = F.cross_entropy(torch.cat(outputs, 1).sum(1), y) + SynopsPenalty(1e5)(total)
    loss.backward()
    return total.detach(), [p.grad for p in network.parameters()]


def _network(batch):
    torch.manual_seed(0)
    network = build_model("seed", batch, (1, 28, 28), 10)
    for module in network:  # a little more spiking than the default initialisation
        if hasattr(module, "weight"):
            module.weight.data *= 3
    return network


def _worker(rank, world, store, results, broadcast_buffers, chunks):
    """One rank's training step; broadcast_buffers None: the job's own wrapper (False)."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    context = distributed.Context(torch.device("cpu"), rank, world)
    network = _network(BATCH // world)
    meter = SynopsMeter(network)
    if broadcast_buffers is None:
        model = distributed.wrap(network, context)
        assert model is not network and not model.broadcast_buffers
    else:
        model = DistributedDataParallel(network, broadcast_buffers=broadcast_buffers)
    x, y = _data()
    part = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    try:
        synops, grads = _step(model, network, meter, x[part], y[part], synced=True,
                              chunks=chunks)
        result = {"synops": synops, "grads": grads, "v_mem": network[2].v_mem.clone()}
    except RuntimeError as error:
        result = {"error": str(error)}
    torch.save(result, os.path.join(results, f"{rank}.pt"))
    dist.barrier()  # no rank tears the group down while another still uses it
    dist.destroy_process_group()


def _two_ranks(tmp_path, broadcast_buffers=None, chunks=CHUNKS):
    torch.multiprocessing.spawn(
        _worker, args=(2, str(tmp_path / "store"), str(tmp_path), broadcast_buffers, chunks),
        nprocs=2, join=True)
    return [torch.load(tmp_path / f"{rank}.pt") for rank in range(2)]


def _assert_equal_to_one_process(ranks, chunks=CHUNKS):
    network = _network(BATCH)
    meter = SynopsMeter(network)
    x, y = _data()
    synops, grads = _step(network, network, meter, x, y, synced=False, chunks=chunks)
    assert synops > 0
    for got in ranks:
        torch.testing.assert_close(got["synops"], synops, rtol=1e-5, atol=0)
        for mine, whole in zip(got["grads"], grads):
            torch.testing.assert_close(mine, whole, rtol=1e-4, atol=1e-6)
    # Each rank kept the states of its own samples.
    torch.testing.assert_close(torch.cat([r["v_mem"] for r in ranks]), network[2].v_mem)


def test_two_gloo_processes_equal_one_process_on_the_whole_batch(tmp_path):
    _assert_equal_to_one_process(_two_ranks(tmp_path))


def test_broadcast_buffers_with_carried_states_is_refused_on_every_rank(tmp_path):
    for got in _two_ranks(tmp_path, broadcast_buffers=True):
        assert "broadcast_buffers=False" in got.get("error", ""), got.keys()
        assert "IAFSqueeze" in got["error"] and "['v_mem']" in got["error"]


def test_broadcast_buffers_with_states_reset_before_the_forward_is_right(tmp_path):
    # One chunk: the states entering the forward are zeros on every rank, so the broadcast
    # changes nothing.
    _assert_equal_to_one_process(_two_ranks(tmp_path, broadcast_buffers=True, chunks=1), 1)
