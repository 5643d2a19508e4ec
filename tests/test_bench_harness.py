"""The benchmark harness (sinabs_fast/bench): statistics, the bytes model, the result format,
the report, and a smoke run on a tiny shape. Nothing here is timed: every assertion is on
values computed independently."""

import importlib.util
import json
import time

import numpy as np
import pytest
import torch

from sinabs_fast import cli
from sinabs_fast.bench import bandwidth, end_to_end, host_cost, report, results, run
from sinabs_fast.bench.cases import MODES, SHAPES, Shape
from sinabs_fast.bench.peers import PEERS
from sinabs_fast.bench.peers.base import Peer, Runner
from sinabs_fast.bench.peers.gate import GateResult, check
from sinabs_fast.bench.timing import Budget, Call, CpuTimer, median_iqr, repetitions

HAS_SINABS = importlib.util.find_spec("sinabs") is not None
TINY = Shape("tiny", B=2, T=8, N=16)
TINY_BUDGET = Budget(budget_s=0.0, min_reps=2, max_reps=3, warmup=1, slice_s=0.001)


# --- statistics ---------------------------------------------------------------------------

@pytest.mark.parametrize("times", [[1.0, 2.0, 3.0, 4.0], [5.0, 1.0, 9.0], [3.0, 3.0, 7.5, 1.0, 2.0]])
def test_median_iqr_matches_numpy(times):
    median, iqr = median_iqr(times)
    q1, q2, q3 = np.percentile(times, [25, 50, 75])
    assert median == pytest.approx(q2)
    assert iqr == pytest.approx(q3 - q1)


def test_median_iqr_of_one_and_none():
    assert median_iqr([2.5]) == (2.5, 0.0)
    with pytest.raises(ValueError, match="nothing was timed"):
        median_iqr([])


def test_cpu_timer_interleaves_and_respects_the_repetitions():
    order = []
    calls = {name: Call(lambda name=name: order.append(name)) for name in ("a", "b")}
    times = CpuTimer(Budget(budget_s=60.0, min_reps=4, max_reps=4, warmup=1,
                            slice_s=0.0)).measure(calls)
    assert [len(t) for t in times.values()] == [4, 4]
    # one warm-up each, then rounds that take turns
    assert order == ["a", "b"] + ["a", "b"] * 4


def test_repetitions_fit_the_budget_but_at_least_two():
    budget = Budget(budget_s=1.0, min_reps=5)
    assert [repetitions(ms, budget) for ms in (1.0, 250.0, 400.0, 900.0, 5000.0)] == \
        [5, 4, 3, 2, 2]


def test_a_call_slower_than_the_budget_runs_twice_in_all():
    runs = []

    def slow():
        runs.append(1)
        time.sleep(0.02)

    times = CpuTimer(Budget(budget_s=0.01, min_reps=5, warmup=3)).measure({"slow": Call(slow)})
    # its one warm-up counts as the first repetition, then one more
    assert len(runs) == 2 and len(times["slow"]) == 2


def test_a_call_that_raises_is_reported_and_left_out():
    def broken():
        raise RuntimeError("boom")

    errors = []
    times = CpuTimer(TINY_BUDGET).measure({"ok": Call(lambda: None), "broken": Call(broken)},
                                          on_error=lambda name, e: errors.append((name, str(e))))
    assert list(times) == ["ok"] and len(times["ok"]) >= TINY_BUDGET.min_reps
    assert errors == [("broken", "boom")]
    with pytest.raises(RuntimeError, match="boom"):
        CpuTimer(TINY_BUDGET).measure({"broken": Call(broken)})


# --- the bytes model and the bandwidth fraction -------------------------------------------

def test_min_bytes_per_step():
    assert [bandwidth.min_bytes_per_step(m, torch.float32) for m in MODES] == [8, 8, 12, 20]
    assert bandwidth.min_bytes_per_step("fwd+bwd", torch.bfloat16) == 10
    assert bandwidth.min_bytes_per_step("backward", torch.float16) == 6
    with pytest.raises(ValueError, match="mode"):
        bandwidth.min_bytes_per_step("sideways", torch.float32)


def test_bandwidth_fraction():
    # 1e6 neuron-steps of inference (8 B each) in 1 ms = 8 GB/s; against 16 GB/s of copy: 0.5
    assert bandwidth.bandwidth_fraction(1.0, "inference", torch.float32, 10**6, 16.0) == \
        pytest.approx(0.5)
    assert bandwidth.bandwidth_fraction(2.0, "fwd+bwd", torch.bfloat16, 10**6, 10.0) == \
        pytest.approx(10e6 / 2e-3 / 10e9)
    assert bandwidth.bandwidth_fraction(1.0, "inference", torch.float32, 10, None) is None


def test_copy_bandwidth_counts_read_and_write():
    fixed = {"copy": [2.0, 2.0, 2.0]}
    copy = bandwidth.copy_bandwidth("cpu", lambda calls: fixed, nbytes=1 << 20)
    assert copy["bytes"] == 2 << 20
    assert copy["gbs"] == pytest.approx((2 << 20) / 2e-3 / 1e9)


# --- the result format --------------------------------------------------------------------

def fixture_result():
    """A small hand-made result: IAF at one shape, two runtimes, and two seed-network rows."""
    rows = [
        results.make_row("sinabs_fast", "iaf", "C1", "inference", "float32", 0.5, 0.01, 0.8),
        results.make_row("sinabs", "iaf", "C1", "inference", "float32", 20.0, 1.0, 0.02),
        results.make_row("sinabs_fast", "iaf", "C1", "fwd+bwd", "float32", 2.0, 0.1, 0.5,
                         4.0, None),
        results.make_row("sinabs", "iaf", "C1", "fwd+bwd", "float32", 400.0, 10.0, 0.0025,
                         12.0, None),
        results.make_row("sinabs_fast", "seed-network", "B32T50", "fwd+bwd", "float32",
                         100.0, 5.0),
        results.make_row("sinabs_fast+SNNSynOpCounter", "seed-network", "B32T50", "fwd+bwd",
                         "float32", 103.0, 5.0),
        results.make_row("sinabs", "seed-network", "B32T50", "fwd+bwd", "float32", 900.0, 50.0),
    ]
    return {"device": "cpu", "machine": {"name": "test CPU", "cpu_count": 2, "threads": 2},
            "torch": "2.13.0", "versions": {"sinabs_fast": "0.2.0", "sinabs": "3.1.3"},
            "command": "sinabs-fast bench --quick", "copy_bandwidth": {"gbs": 20.0},
            "rows": rows, "date": "2026-12-01",
            "shapes": {"C1": {"B": 16, "T": 500, "N": 512}},
            "skipped": [{"impl": "norse", "layer": "iaf", "shape": "*", "mode": "*",
                         "dtype": "float32", "reason": "unsupported: no IAF"}]}


def test_result_round_trip(tmp_path):
    result = fixture_result()
    path = results.save(result, tmp_path / "r.json")
    assert results.load(path) == result
    assert json.loads(path.read_text()) == result


@pytest.mark.parametrize("break_it, message", [
    (lambda r: r.pop("copy_bandwidth"), "missing top-level"),
    (lambda r: r.update(extra=1), "unknown top-level"),
    (lambda r: r.update(device="tpu"), "device"),
    (lambda r: r["rows"][0].pop("iqr_ms"), r"rows\[0\]: missing"),
    (lambda r: r["rows"][1].update(reps=3), r"rows\[1\]: .*unknown \['reps'\]"),
    (lambda r: r["rows"][2].update(ms=-1.0), r"rows\[2\]\.ms"),
    (lambda r: r["rows"][2].update(ms="fast"), r"rows\[2\]\.ms"),
    (lambda r: r["rows"][3].update(impl=""), r"rows\[3\]\.impl"),
    (lambda r: r.update(copy_bandwidth={"ms": 1.0}), "copy_bandwidth"),
])
def test_validation_names_what_is_wrong(break_it, message, tmp_path):
    result = fixture_result()
    break_it(result)
    with pytest.raises(results.ResultFormatError, match=message):
        results.validate(result)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(result))
    with pytest.raises(results.ResultFormatError, match="bad.json"):
        results.load(path)


# --- the report ---------------------------------------------------------------------------

def test_markdown_tables_from_the_fixture():
    text = report.markdown(fixture_result())
    lines = text.splitlines()
    # ratios are the peer's time over sinabs_fast's; BW % is sinabs_fast's fraction x 100
    assert "| C1 (B16 T500 N512) | inference | 0.500 | 20.0 (40.0x) | 80.0 |" in lines
    assert "| C1 (B16 T500 N512) | fwd+bwd | 2.00 | 400 (200x) | 50.0 |" in lines
    # seed network: sinabs' time over each row's, and the counter's cost over the plain step
    assert "| sinabs_fast | B32T50 | 100 | 5.00 | 9.00x | — |" in lines
    assert "| sinabs_fast+SNNSynOpCounter | B32T50 | 103 | 5.00 | 8.74x | +3.0% |" in lines
    assert "| iaf | C1 (B16 T500 N512) | float32 | 4.0 | 12.0 |" in lines
    assert "- norse iaf float32: unsupported: no IAF" in lines
    assert "- copy bandwidth (`y.copy_(x)`, read + write): 20.0 GB/s" in lines


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = report.plot(fixture_result(), tmp_path / "plot.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- a smoke run on a tiny shape ----------------------------------------------------------

class _ExpRunner(Runner):
    """``exp(x)``: autograd saves its output, one float32 per neuron-step: 4 bytes exactly."""

    def prepare(self, x):
        return x

    def reset(self):
        pass

    def forward(self, prepared):
        return torch.exp(prepared)

    def spikes_btn(self, out):
        return out


class _BrokenRunner(_ExpRunner):
    """Fails in every call with grad (as a peer without a backward would)."""

    def forward(self, prepared):
        if torch.is_grad_enabled():
            raise RuntimeError("no backward here")
        return prepared


class _FakePeer(Peer):
    requirement = "nothing"

    def __init__(self, name, unavailable=None, gate_passes=True, runner=_ExpRunner):
        self.name, self.unavailable, self.gate_passes = name, unavailable, gate_passes
        self.runner = runner

    def unavailable_reason(self, device):
        return self.unavailable

    def unsupported_reason(self, layer, dtype, device):
        return None

    def build(self, layer, shape, device, dtype):
        return self.runner()


def _gate(peer, layer, device, dtype):
    if isinstance(peer, _FakePeer):
        return GateResult(peer.gate_passes, "fake peer")
    return check(peer, layer, device, dtype)


def test_smoke_run_on_a_tiny_shape(monkeypatch):
    monkeypatch.setitem(SHAPES, TINY.label, TINY)
    monkeypatch.setitem(bandwidth.COPY_BYTES, "cpu", 1 << 20)
    registry = {"sinabs_fast": PEERS["sinabs_fast"]}
    if HAS_SINABS:
        registry["sinabs"] = PEERS["sinabs"]
    registry.update(exp=_FakePeer("exp"), absent=_FakePeer("absent", unavailable="not here"),
                    wrong=_FakePeer("wrong", gate_passes=False),
                    broken=_FakePeer("broken", runner=_BrokenRunner))
    messages = []
    options = run.BenchOptions(layers=["iaf"], shapes=[TINY.label], progress=False,
                               budget=TINY_BUDGET)
    result = run.Bench(options, registry, _gate, messages.append).run()

    timed = {"sinabs_fast", "exp"} | ({"sinabs"} if HAS_SINABS else set())
    assert {r["impl"] for r in result["rows"]} == timed | {"broken"}
    # a peer whose calls with grad raise: its inference row only, the rest reported
    assert [r["mode"] for r in result["rows"] if r["impl"] == "broken"] == ["inference"]
    assert {s["mode"] for s in result["skipped"] if s["impl"] == "broken"} == {
        "forward", "backward", "fwd+bwd"}
    result["rows"] = [r for r in result["rows"] if r["impl"] != "broken"]
    for row in result["rows"]:
        assert tuple(row) == results.ROW_FIELDS
        assert (row["layer"], row["shape"], row["dtype"]) == ("iaf", "tiny", "float32")
        assert row["ms"] > 0 and row["iqr_ms"] >= 0
        assert row["peak_bytes_per_step"] is None  # the CPU has no honest peak figure
        assert row["bandwidth_fraction"] == pytest.approx(bandwidth.bandwidth_fraction(
            row["ms"], row["mode"], torch.float32, TINY.neuron_steps,
            result["copy_bandwidth"]["gbs"]))
        if row["mode"] == "inference":
            assert row["saved_bytes_per_step"] is None
    for impl in timed:
        assert sorted(r["mode"] for r in result["rows"] if r["impl"] == impl) == sorted(MODES)
    exp_saved = {r["saved_bytes_per_step"] for r in result["rows"]
                 if r["impl"] == "exp" and r["mode"] != "inference"}
    assert exp_saved == {4.0}
    skipped = {s["impl"]: s["reason"] for s in result["skipped"]}
    assert skipped["absent"] == "not here"
    assert skipped["wrong"].startswith("failed the semantics gate")
    assert any(m.startswith("skipped wrong iaf float32: failed the semantics gate")
               for m in messages)
    assert result["shapes"] == {"tiny": {"B": 2, "T": 8, "N": 16}}
    results.validate(result)


@pytest.mark.skipif(not HAS_SINABS, reason="sinabs is not installed")
def test_end_to_end_rows_on_a_small_seed_network():
    messages = []
    out = end_to_end.run("cpu", TINY_BUDGET, run.Report(messages.append), batch=2, steps=3,
                         compile_impls=[], counter_impls=["sinabs_fast", "sinabs"])
    impls = [r["impl"] for r in out.rows]
    assert impls == ["sinabs_fast", "sinabs_fast+SNNSynOpCounter", "sinabs_fast+SNNAnalyzer",
                     "sinabs_fast+hooks", "sinabs", "sinabs+SNNAnalyzer", "sinabs+hooks"]
    assert all(r["layer"] == "seed-network" and r["shape"] == "B2T3" for r in out.rows)
    # spiking neurons per sample and step: 16x24x24 + 32x8x8 + 120 + 10
    assert out.shapes == {"B2T3": {"B": 2, "T": 3, "N": 16 * 24 * 24 + 32 * 8 * 8 + 120 + 10}}


def test_bench_command_rejects_an_unknown_layer(capsys):
    assert cli.main(["bench", "--layers", "iaf,nope", "--no-progress"]) == 2
    assert "layers: unknown 'nope'" in capsys.readouterr().err


# --- host cost, merging runs ------------------------------------------------------------------

def test_a_host_shape_run_times_a_linear_beside_the_layers():
    """At H1 the tiny nn.Linear is timed in the same run, as its own layer, once per shape,
    and no bandwidth is claimed for tiny calls."""
    registry = {"sinabs_fast": PEERS["sinabs_fast"]}
    options = run.BenchOptions(layers=["iaf", "lif"], shapes=["H1"], modes=["fwd+bwd"],
                               progress=False, budget=TINY_BUDGET)
    result = run.Bench(options, registry, _gate, lambda _: None).run()
    keys = sorted((r["impl"], r["layer"]) for r in result["rows"])
    assert keys == [("sinabs_fast", "iaf"), ("sinabs_fast", "lif"),
                    (host_cost.LINEAR_IMPL, host_cost.LINEAR_LAYER)]
    assert all(r["bandwidth_fraction"] is None and r["ms"] > 0 for r in result["rows"])
    assert result["shapes"]["H1"] == {"B": 2, "T": 4, "N": 8}


def _host_result():
    rows = [results.make_row("sinabs_fast", "iaf", "H1", "fwd+bwd", "float32", 0.150),
            results.make_row("sinabs", "iaf", "H1", "fwd+bwd", "float32", 0.450),
            results.make_row("torch", "nn.Linear", "H1", "fwd+bwd", "float32", 0.050),
            results.make_row("sinabs_fast", "iaf", "H1", "forward", "float32", 0.080)]
    return dict(fixture_result(), rows=rows)


def test_host_table_sets_each_call_against_the_linear():
    lines = host_cost.table(_host_result())
    assert lines == [["iaf", "H1", "forward", "80", "—", "—", "—"],
                     ["iaf", "H1", "fwd+bwd", "150", "450", "50", "3.0x"]]
    text = report.markdown(_host_result()).splitlines()
    assert "| iaf | H1 | fwd+bwd | 150 | 450 | 50 | 3.0x |" in text
    assert not any(line.startswith("### nn.Linear") for line in text)


def test_merge_unites_runs_and_replaces_repeated_rows():
    first, second = fixture_result(), _host_result()
    second["rows"].append(results.make_row("sinabs_fast", "iaf", "C1", "inference", "float32",
                                           0.4))
    second["command"], second["shapes"] = "second", {"H1": {"B": 2, "T": 4, "N": 8}}
    merged = results.merge(first, second)
    assert len(merged["rows"]) == len(first["rows"]) + len(second["rows"]) - 1
    replaced = results.rows_where(merged, impl="sinabs_fast", layer="iaf", shape="C1",
                                  mode="inference")
    assert [r["ms"] for r in replaced] == [0.4]
    assert merged["command"] == "sinabs-fast bench --quick; second"
    assert set(merged["shapes"]) == {"C1", "H1"}
    assert len(merged["skipped"]) == 2
    assert first["command"] == "sinabs-fast bench --quick"  # the inputs are left alone
    with pytest.raises(results.ResultFormatError, match="cannot merge a cuda result"):
        results.merge(first, dict(second, device="cuda"))


def test_bench_append_needs_a_json_file(capsys):
    assert cli.main(["bench", "--append", "--no-progress"]) == 2
    assert "--append needs --json" in capsys.readouterr().err
