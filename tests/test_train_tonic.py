"""The tonic loaders of ``sinabs-fast train --dataset nmnist|dvsgesture|shd``, on tiny files in
tonic's own formats and folder layouts, written here: frames hold every event in the right bin,
labels come through, nothing is downloaded, and a job runs on them.

tonic's ``ToFrame`` splits a recording's time span into half-open bins, so the last event (at
the very end of the last bin) is not counted; the expected frames below leave it out too."""

import json
import os

import numpy as np
import pytest
import torch

tonic = pytest.importorskip("tonic")
h5py = pytest.importorskip("h5py")

from sinabs_fast import cli  # noqa: E402
from sinabs_fast.train.tonic_data import load_tonic  # noqa: E402

# Two recordings: events (time in seconds, channel) and a label. The times put the first two
# events in the first of two equal time bins and the last two in the second.
RECORDINGS = [([0.0, 0.1, 0.7, 1.0], [3, 3, 699, 10], 4), ([0.0, 0.2, 0.6, 0.8], [5, 6, 6, 6], 17)]


def _write_shd(root):
    folder = root / "SHD"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        (folder / f"shd_{split}.h5.zip").write_bytes(b"")
        with h5py.File(folder / f"shd_{split}.h5", "w") as f:
            times = f.create_dataset("spikes/times", (2,), dtype=h5py.vlen_dtype(np.float32))
            units = f.create_dataset("spikes/units", (2,), dtype=h5py.vlen_dtype(np.uint16))
            for i, (t, u, _) in enumerate(RECORDINGS):
                times[i], units[i] = np.array(t, np.float32), np.array(u, np.uint16)
            f["labels"] = np.array([label for *_, label in RECORDINGS], np.uint8)
            f["extra/keys"] = np.array([b"a"] * 20)
            f["extra/speaker"] = np.array([0, 1])


def test_shd_frames_count_every_spike_in_its_bin(tmp_path):
    _write_shd(tmp_path)
    splits = load_tonic("shd", str(tmp_path), timesteps=2)
    assert len(splits.train) == len(splits.test) == 2 and splits.classes == 20
    assert splits.sample_shape == (1, 700)
    for index, (times, units, label) in enumerate(RECORDINGS):
        frames, target = splits.train[index]
        expected = torch.zeros(2, 1, 700)
        for t, u in zip(times[:-1], units[:-1]):
            expected[0 if t < 0.5 else 1, 0, u] += 1
        assert torch.equal(frames, expected) and int(target) == label


def test_shd_job_runs_on_the_dense_model(tmp_path):
    _write_shd(tmp_path / "data")
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "shd", "--data-dir", str(tmp_path / "data"), "--model",
                     "dense", "--epochs", "1", "--timesteps", "4", "--device", "cpu",
                     "--no-progress", "--target-synops", "10", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [layer["type"] for layer in report["baseline"]["layers"]] == ["Linear"] * 3
    assert report["options"]["dataset"] == "shd"


def test_missing_files_are_not_downloaded(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="--download"):
        load_tonic("shd", str(tmp_path), timesteps=2)
    assert cli.main(["train", "--dataset", "nmnist", "--data-dir", str(tmp_path), "--device",
                     "cpu", "--out", str(tmp_path / "run")]) == 2
    assert "--download" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--data-dir"):
        load_tonic("shd", None, timesteps=2)


def _nmnist_bytes(events):
    """N-MNIST's 40-bit events: x, y, polarity and the 23-bit time stamp (microseconds)."""
    out = bytearray()
    for x, y, p, t in events:
        out += bytes([x, y, (p << 7) | (t >> 16) & 0x7F, (t >> 8) & 0xFF, t & 0xFF])
    return bytes(out)


def test_nmnist_frames_hold_every_event_by_polarity_and_position(tmp_path):
    folder = tmp_path / "NMNIST"
    events = [(1, 2, 1, 0), (1, 2, 1, 100), (33, 0, 0, 900), (5, 30, 1, 1000)]
    for zip_name, split in (("train.zip", "Train"), ("test.zip", "Test")):
        (folder / split).mkdir(parents=True)
        (folder / zip_name).write_bytes(b"")
        first = folder / split / "first.bin"
        first.write_bytes(_nmnist_bytes(events))
        # tonic wants an extracted split of at least 10,000 files: links to one recording
        for digit in range(10):
            (folder / split / str(digit)).mkdir()
            for n in range(1000):
                os.link(first, folder / split / str(digit) / f"{n:05d}.bin")
        first.unlink()
    splits = load_tonic("nmnist", str(tmp_path), timesteps=2)
    assert len(splits.train) == 10000 and splits.sample_shape == (2, 34, 34)
    frames, label = splits.test[9999]
    expected = torch.zeros(2, 2, 34, 34)
    for x, y, p, t in events[:-1]:
        expected[0 if t < 500 else 1, p, y, x] += 1
    assert torch.equal(frames, expected) and int(label) == 9


def test_dvsgesture_frames_and_labels(tmp_path):
    folder = tmp_path / "DVSGesture"
    # x, y, polarity, time (ms)
    events = np.array([[0, 0, 1, 0], [127, 5, 0, 10], [64, 64, 1, 20]], dtype=np.int64)
    for archive, split in (("ibmGestureTrain.tar.gz", "ibmGestureTrain"),
                           ("ibmGestureTest.tar.gz", "ibmGestureTest")):
        (folder / archive).parent.mkdir(parents=True, exist_ok=True)
        (folder / archive).write_bytes(b"")
        for user in range(1, 11):  # tonic wants at least 100 recordings
            user_folder = folder / split / f"user{user:02d}_led"
            user_folder.mkdir(parents=True)
            for label in range(10):
                np.save(user_folder / f"{label}.npy", events)
    splits = load_tonic("dvsgesture", str(tmp_path), timesteps=2)
    assert splits.sample_shape == (2, 128, 128) and splits.classes == 11
    frames, _ = splits.train[3]
    expected = torch.zeros(2, 2, 128, 128)
    for x, y, p, t in events[:-1]:
        expected[0 if t < 10 else 1, p, y, x] += 1
    assert torch.equal(frames, expected)
    labels = sorted(int(splits.train[i][1]) for i in range(len(splits.train)))
    assert labels == sorted(list(range(10)) * 10)
