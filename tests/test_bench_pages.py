"""The generated benchmark pages (benchmarks/README.md's tables, the README's speed summary)
must be what ``python -m sinabs_fast.bench.pages`` makes from the committed result files."""

from pathlib import Path

import pytest

from sinabs_fast.bench import pages, results

ROOT = Path(__file__).resolve().parents[1]


def test_committed_results_follow_the_format():
    current, history = pages.result_files(ROOT)
    assert current, "no result files in benchmarks/results"
    for path in current + history:
        results.load(path)


def test_generated_pages_are_current():
    stale = pages.stale(ROOT)
    assert not stale, (f"out of date: {', '.join(str(p.relative_to(ROOT)) for p in stale)}; "
                       "run python -m sinabs_fast.bench.pages and commit the pages")


def test_markers_are_required(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("no markers here\n")
    with pytest.raises(ValueError, match="markers"):
        pages.replace_between(page.read_text(), "results", "x\n", page)


def test_replace_between_keeps_the_hand_written_parts():
    begin, end = pages.markers("results")
    text = f"intro\n{begin}\nold\n{end}\noutro\n"
    assert pages.replace_between(text, "results", "new\n", Path("p")) == \
        f"intro\n{begin}\nnew\n{end}\noutro\n"
