"""The documentation's bench tables: generated from bench/results/, each naming its run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from bench import tables
from bench.results_file import PROVENANCE_KEY, merge_results

REPO = Path(__file__).parents[1]
RUN = {"commit": "abcdef0123456789" * 2 + "abcdef01", "date": "2026-12-01",
       "machine": {"cpu": "Some CPU @ 2.0GHz", "cores": 16, "gpus": ["Some GPU"]}}


def _pages() -> dict[str, str]:
    return {page.name: page.read_text() for page in (REPO / "docs").glob("*.md")}


def test_every_table_a_page_marks_is_generated_from_runs_the_results_name() -> None:
    marked = {name for text in _pages().values() for name in tables.MARKER.findall(text)}
    assert marked == set(tables.TABLES), "a table no page shows, or a marker naming none"
    for text in _pages().values():
        filled = tables.fill(text)  # raises for a figure whose run is not recorded
        assert "bench-table:" not in filled
    for name in tables.TABLES:
        rendered = tables.render(name)
        assert re.search(r"commit `[0-9a-f]{12}`( with uncommitted changes)?, \d{4}-\d\d-\d\d, ",
                         rendered), rendered


def test_a_table_shows_the_files_figures_and_the_run_that_made_them(tmp_path: Path) -> None:
    shutil.copy(tables.RESULTS_DIR / "chaos.json", tmp_path / "chaos.json")
    chaos = json.loads((tmp_path / "chaos.json").read_text())
    figures = {key: value for key, value in chaos.items() if key != PROVENANCE_KEY}
    figures["kills_total"] = 99
    (tmp_path / "chaos.json").unlink()
    merge_results(tmp_path / "chaos.json", figures, run=RUN)

    rendered = tables.render("chaos", tmp_path)
    assert "| 99 (" in rendered
    assert ("Run: `bench/results/chaos.json`: commit `abcdef012345`, 2026-12-01, "
            "Some CPU @ 2.0GHz, 16 cores, Some GPU.") in rendered


def test_a_figure_whose_run_is_not_recorded_is_refused(tmp_path: Path) -> None:
    chaos = json.loads((tables.RESULTS_DIR / "chaos.json").read_text())
    chaos[PROVENANCE_KEY].pop("kills_total")
    (tmp_path / "chaos.json").write_text(json.dumps(chaos))
    with pytest.raises(tables.MissingProvenance, match=r"chaos\.json: no run recorded for "
                                                       "kills_total; rerun the bench"):
        tables.render("chaos", tmp_path)


def test_an_unknown_table_is_named_with_the_ones_there_are() -> None:
    with pytest.raises(KeyError, match="no bench table 'speeed'; the tables: speed, "):
        tables.fill("text\n<!-- bench-table: speeed -->\n")


def test_numbers_keep_three_significant_digits() -> None:
    assert [tables.number(x) for x in (4334.09, 67.789, 0.04224, 1.0, 0.3003)] == \
        ["4,334", "67.8", "0.0422", "1.00", "0.300"]
    assert tables.number(None) == "-"


def test_the_readmes_figures_are_the_results_files() -> None:
    readme = (REPO / "README.md").read_text()
    latest = json.loads((tables.RESULTS_DIR / "latest.json").read_text())
    minutes = re.search(r"about ([\d.]+) minutes on 2 CPUs, or ([\d.]+)\s+with", readme)
    assert minutes, "README no longer says how long the default sweep takes"
    for said, runner in zip(minutes.groups(), ("train", "inline"), strict=True):
        # Said to the nearest half minute.
        assert float(said) == round(latest["default_sweep"][runner]["wall_s"] / 30) / 2
    accuracy = re.search(r"trial reaches ([\d.]+) on MNIST-1D's test split", readme)
    assert accuracy and accuracy.group(1) == tables.number(latest["mnist1d_best_test_acc"])
