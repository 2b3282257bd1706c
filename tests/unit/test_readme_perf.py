"""The README's performance table is what `benchmarks.readme_perf` generates from
benchmarks/results/latest.json, never figures typed by hand."""

from __future__ import annotations

import json

import pytest

from benchmarks.common import RESULTS_DIR
from benchmarks.readme_perf import MARKERS, README, main, replace, section


def test_readme_performance_table_is_generated_from_latest_json() -> None:
    payload = json.loads((RESULTS_DIR / "latest.json").read_text())
    text = README.read_text()
    first, last = MARKERS
    assert text.count(first) == 1 and text.count(last) == 1
    current = text[text.index(first) : text.index(last) + len(last)]
    assert current == section(payload), (
        "README.md's performance table is stale: run `python -m benchmarks.readme_perf --write`"
    )
    assert f"Run `{payload['created_at']}`" in current
    for target in payload["targets"]:
        assert f"| {target['name']} |" in current
    assert main(["--check"]) == 0


def test_write_then_check_round_trip(tmp_path) -> None:
    first, last = MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\n{first}\n| ceiling | 999 texts/s |\n{last}\n\nafter\n")
    assert main(["--check", "--readme", str(readme)]) == 1
    assert main(["--write", "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "999 texts/s" not in text and text.endswith("\n\nafter\n")
    assert main(["--check", "--readme", str(readme)]) == 0
    with pytest.raises(ValueError, match="performance:start"):
        replace("no markers", "x")
