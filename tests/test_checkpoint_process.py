"""A model, its optimizer and its neuron states saved in the middle of a sequence and loaded in a
fresh process (a subprocess: nothing shared but the file) continue bit-identically: the second
chunk's outputs, gradients and updated parameters equal those of the process that never stopped.
A checkpoint of other shapes gives torch's clear error naming the entry.

Run as a script (``python tests/test_checkpoint_process.py CHECKPOINT RESULT``), this file is the
fresh process: it builds the model anew, loads the checkpoint and runs the second chunk."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

B, T, N_IN, N_HID, N_OUT = 3, 12, 6, 8, 4


def build(hidden: int = N_HID) -> nn.Sequential:
    """Every neuron kind with trainable time constants (so the optimizer updates them too)."""
    import sinabs_fast.layers as sl

    torch.manual_seed(1)
    return nn.Sequential(
        nn.Linear(N_IN, hidden),
        sl.LIF(tau_mem=torch.full((hidden,), 8.0), tau_syn=5.0, train_alphas=True,
               norm_input=False),
        nn.Linear(hidden, hidden),
        sl.ALIF(tau_mem=10.0, tau_adapt=20.0, tau_syn=4.0, norm_input=False),
        nn.Linear(hidden, N_OUT),
        sl.IAF(min_v_mem=-1.0),
    )


def optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=0.01)


def chunks():
    generator = torch.Generator().manual_seed(2)
    x = torch.rand(B, 2 * T, N_IN, generator=generator) * 3
    return x[:, :T], x[:, T:]


def train_chunk(model, opt, x) -> dict:
    """One truncated-BPTT step: states carried in, detached, from the previous chunk."""
    import sinabs_fast

    sinabs_fast.zero_grad(model)  # detaches the carried states
    opt.zero_grad()
    out = model(x)
    (out * torch.linspace(-1, 1, N_OUT)).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    opt.step()
    return {"out": out.detach(), "grads": grads, "state": model.state_dict()}


def resume(checkpoint: str, result: str) -> None:
    """The fresh process: a new model and optimizer, the checkpoint, the second chunk."""
    model = build()
    opt = optimizer(model)
    saved = torch.load(checkpoint)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["optimizer"])
    torch.save(train_chunk(model, opt, chunks()[1]), result)


def test_a_fresh_process_continues_bit_identically(tmp_path):
    model = build()
    opt = optimizer(model)
    first, second = chunks()
    train_chunk(model, opt, first)
    assert model[1].v_mem.abs().sum() > 0 and model[3].b.abs().sum() > 0  # states carried
    checkpoint = tmp_path / "mid-sequence.pt"
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, checkpoint)
    expected = train_chunk(model, opt, second)

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, __file__, str(checkpoint), str(tmp_path / "got.pt")],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(root)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = torch.load(tmp_path / "got.pt")
    assert got["out"].sum() > 0
    torch.testing.assert_close(got["out"], expected["out"], rtol=0, atol=0)
    assert got["grads"].keys() == expected["grads"].keys()
    assert got["state"].keys() == expected["state"].keys()
    for kind in ("grads", "state"):
        for name, value in expected[kind].items():
            torch.testing.assert_close(got[kind][name], value, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("change, message", [
    # a layer of another width: the weights' and the per-neuron tau's shapes differ
    (lambda: build(hidden=N_HID + 1), r"size mismatch for 0.weight"),
    # the same layers, but states from another batch size
    (lambda: _ran(build(), batch=B + 1), r"size mismatch for 1.v_mem: copying a param with shape "
                                         r"torch.Size\(\[3, 8\]\)"),
    # a layer without the synaptic current the checkpoint has
    (lambda: _without_synaptic_current(build()), r"Unexpected key\(s\) in state_dict: \"1.alpha_syn\", \"1.i_syn\""),
])
def test_a_checkpoint_of_other_shapes_is_a_clear_error(change, message):
    model = build()
    model(chunks()[0])
    with pytest.raises(RuntimeError, match=message):
        change().load_state_dict(model.state_dict())


def _ran(model, batch):
    model(torch.rand(batch, 2, N_IN))
    return model


def _without_synaptic_current(model):
    import sinabs_fast.layers as sl

    model[1] = sl.LIF(tau_mem=torch.full((N_HID,), 8.0), train_alphas=True, norm_input=False)
    return model


if __name__ == "__main__":
    resume(*sys.argv[1:3])
