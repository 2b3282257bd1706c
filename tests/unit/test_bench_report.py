"""The benchmark README's results section is what `benchmarks.report` generates from
results/latest.json, never figures typed by hand."""

from __future__ import annotations

import json

import pytest

from benchmarks.common import RESULTS_DIR
from benchmarks.report import END, README, START, main, readme_section, replace_section


def test_readme_results_section_is_generated_from_latest_json() -> None:
    payload = json.loads((RESULTS_DIR / "latest.json").read_text())
    text = README.read_text()
    assert text.count(START) == 1 and text.count(END) == 1
    section = text[text.index(START) : text.index(END) + len(END)]
    assert section == readme_section(payload), (
        "benchmarks/README.md is stale: run `python -m benchmarks.report --write-readme`"
    )
    assert f"Run `{payload['created_at']}`" in section
    assert main(["--check-readme"]) == 0


def test_write_then_check_round_trip(tmp_path) -> None:
    payload = json.loads((RESULTS_DIR / "latest.json").read_text())
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n\n{START}\nold figures 1.0\n{END}\n\nafter\n")
    assert main(["--check-readme", "--readme", str(readme)]) == 1
    assert main(["--write-readme", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "old figures" not in text and text.startswith("# title\n\nbefore\n\n")
    assert text.endswith("\n\nafter\n") and payload["created_at"] in text
    assert main(["--check-readme", "--readme", str(readme)]) == 0


def test_a_readme_without_markers_is_an_error() -> None:
    with pytest.raises(ValueError, match="results:start"):
        replace_section("no markers here", "x")


def test_main_readme_chaos_paragraph_is_generated_from_chaos_json() -> None:
    from benchmarks.chaos import readme

    payload = json.loads(readme.CHAOS_JSON.read_text()) if readme.CHAOS_JSON.exists() else None
    text = readme.README.read_text()
    first, last = readme.MARKERS
    assert text.count(first) == 1 and text.count(last) == 1
    current = text[text.index(first) : text.index(last) + len(last)]
    assert current == readme.section(payload), (
        "README.md is stale: run `python -m benchmarks.chaos.readme --write`"
    )
    assert readme.main(["--check"]) == 0
