"""``sinabs-fast train`` and ``sinabs-fast info``: a one-epoch job on a few batches, its report
checked against an independent recount, and resuming bit-identically."""

import json
import math
import os

import pytest
import torch

from sinabs_fast import cli
from sinabs_fast.train import checkpoint
from sinabs_fast.train.models import build_model, set_model_batch_size
from sinabs_fast.utils import reset_states

from train_helpers import TEST_SAMPLES, recount_synops, small_digits

RUN_KEYS = {"test_accuracy", "synops_per_sample", "own_synops_per_sample", "layers",
            "firing_rates", "history"}


def _train(out, *extra):
    return cli.main(["train", "--epochs", "1", "--batch-size", "16", "--device", "cpu",
                     "--no-progress", "--out", str(out), *extra])


def test_one_epoch_job_writes_a_report_that_an_independent_recount_confirms(
        tmp_path, monkeypatch, capsys):
    small_digits(monkeypatch)
    assert _train(tmp_path) == 0
    printed = capsys.readouterr().out
    assert "own synops per sample" in printed and "penalised" in printed
    report = json.loads((tmp_path / "report.json").read_text())
    assert {"baseline", "penalised", "device", "epochs", "seconds"} <= set(report)
    assert report["device"] == "cpu" and report["epochs"] == 1 and report["seconds"] > 0
    for run in ("baseline", "penalised"):
        assert RUN_KEYS <= set(report[run])
        layers = [layer["synops_per_sample"] for layer in report[run]["layers"]]
        assert [layer["input"] for layer in report[run]["layers"]] == ["data"] + ["spikes"] * 3
        assert math.isclose(report[run]["own_synops_per_sample"], sum(layers[1:]), rel_tol=1e-9)
        assert math.isclose(report[run]["synops_per_sample"], sum(layers), rel_tol=1e-9)
    assert math.isclose(report["penalised"]["target_synops"],
                        0.5 * report["baseline"]["own_synops_per_sample"], rel_tol=1e-9)
    assert (tmp_path / "curves.png").stat().st_size > 1000
    try:
        import nir
    except ImportError:  # the NIR graph is an extra: the job says it skipped it
        assert "NIR export skipped" in printed
    else:
        graph = nir.read(str(tmp_path / "model.nir"))
        kinds = [type(graph.nodes[name]).__name__ for name in ("1", "2", "10", "11")]
        assert kinds == ["Conv2d", "IF", "Affine", "IF"]

    # The penalised network, rebuilt from model.pt, recounted on the same test samples.
    saved = checkpoint.load(str(tmp_path))
    assert saved["run"] == "penalised" and saved["epoch"] == 1
    network = build_model("seed", TEST_SAMPLES, (1, 28, 28), 10)
    network.load_state_dict(saved["model"])
    test_set = _test_set(saved)
    x = torch.stack([test_set[i][0] for i in range(len(test_set))])
    labels = torch.stack([test_set[i][1] for i in range(len(test_set))])
    set_model_batch_size(network, len(x))
    reset_states(network)
    recount = recount_synops(network, x)
    got = [layer["synops_per_sample"] for layer in report["penalised"]["layers"]]
    assert got == pytest.approx(recount, rel=1e-5)
    reset_states(network)
    with torch.no_grad():
        accuracy = (network(x).sum(1).argmax(1) == labels).double().mean().item()
    assert report["penalised"]["test_accuracy"] == pytest.approx(accuracy, abs=1e-9)


def _test_set(saved):
    from sinabs_fast.train.data import digits

    from train_helpers import _head

    options = saved["options"]
    return _head(digits(options["timesteps"], options["seed"]).test, TEST_SAMPLES)


def _without_seconds(value):
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


@pytest.fixture(scope="module")
def whole_job(tmp_path_factory):
    """A two-epoch job run without interruption."""
    whole = tmp_path_factory.mktemp("whole")
    with pytest.MonkeyPatch.context() as monkeypatch:
        small_digits(monkeypatch)
        assert _train(whole, "--epochs", "2") == 0
    return whole


@pytest.mark.parametrize("stop_after", [1, 2, 3])  # in the baseline, after it, in the penalised run
def test_resume_continues_bit_identically(tmp_path, monkeypatch, whole_job, stop_after):
    small_digits(monkeypatch)
    whole, parts = whole_job, tmp_path / "parts"
    assert _train(parts, "--epochs", "2", "--stop-after", str(stop_after)) == 0
    assert not (parts / "report.json").exists()
    assert cli.main(["train", "--resume", str(parts), "--device", "cpu", "--no-progress"]) == 0
    reports = [json.loads((d / "report.json").read_text()) for d in (whole, parts)]
    assert _without_seconds(reports[0]) == _without_seconds(reports[1])
    states = [checkpoint.load(str(d)) for d in (whole, parts)]
    for key in ("model", "baseline_model"):
        assert states[0][key].keys() == states[1][key].keys()
        for name, tensor in states[0][key].items():
            assert torch.equal(tensor, states[1][key][name]), (key, name)
    moments = [s["optimizer"]["state"].values() for s in states]
    for a, b in zip(*moments):
        for moment in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(a[moment], b[moment])


def test_bad_options_are_named(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "0", "--out", str(tmp_path)]) == 2
    assert "epochs must be at least 1" in capsys.readouterr().err
    assert cli.main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "no model.pt" in capsys.readouterr().err
    assert cli.main(["train", "--amp", "bf16", "--device", "cpu", "--out", str(tmp_path)]) == 2
    assert "amp" in capsys.readouterr().err


def test_info_names_version_build_and_devices(capsys):
    assert cli.main(["info"]) == 0
    printed = capsys.readouterr().out
    from sinabs_fast import __version__

    assert __version__ in printed
    for key in ("CPU kernels:", "CUDA kernels:", "devices:"):
        assert key in printed


def test_module_entry_point_runs():
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", "sinabs_fast.cli", "--version"],
                          capture_output=True, text=True, cwd=root)
    assert done.returncode == 0 and done.stdout.startswith("sinabs-fast ")


def test_the_job_on_sinabs_layers_gives_the_same_report(tmp_path, monkeypatch):
    """``--layers sinabs`` runs the same job on sinabs' own layers (a speed comparison): the
    same numbers, epoch by epoch."""
    pytest.importorskip("sinabs")
    small_digits(monkeypatch)
    reports = []
    for layers in ("sinabs_fast", "sinabs"):
        assert _train(tmp_path / layers, "--layers", layers) == 0
        report = json.loads((tmp_path / layers / "report.json").read_text())
        report["options"].pop("layers")
        reports.append(_without_seconds(report))
    assert reports[0] == reports[1]
