"""Drift window and statistics (worker/drift.py, schemas/drift.py): no Kafka, no model."""

from __future__ import annotations

import math

import pytest

from schemas.drift import LENGTH_BUCKETS, build_reference, length_bucket, margin
from schemas.status import WorkerStatus
from worker.drift import DriftWindow, psi

LABELS = ["neg", "pos"]


def _reference(pos_share: float = 0.5, chars: int = 20):
    n = 100
    pos = int(n * pos_share)
    return build_reference("dev", 2, [1] * pos + [0] * (n - pos), [0.9] * n, [0.8] * n, [chars] * n)


def _feed(window: DriftWindow, n: int, label: int, chars: int, top1: float = 0.9) -> None:
    for _ in range(n):
        window.observe(label, top1, 2 * top1 - 1, chars, False)
    window.end_batch()


def test_psi_is_zero_for_equal_distributions_and_grows_with_the_shift():
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    small, large = psi([0.6, 0.4], [0.5, 0.5]), psi([0.95, 0.05], [0.5, 0.5])
    assert 0 < small < 0.1 < 0.25 < large
    assert math.isfinite(psi([1.0, 0.0], [0.0, 1.0]))  # empty bins are floored, not infinite


def test_length_buckets_and_margin():
    assert [length_bucket(n) for n in (0, 7, 8, 255, 256, 10_000)] == [0, 0, 1, 5, 6, 6]
    assert LENGTH_BUCKETS == 7
    assert margin([("a", 0, 0.7), ("b", 1, 0.2)]) == pytest.approx(0.5)
    assert margin([("a", 0, 1.0)]) == 1.0


def test_an_unshifted_stream_stays_quiet():
    window = DriftWindow(LABELS, "v1", _reference(0.5, 20), window_events=200)
    for _ in range(10):
        _feed(window, 10, 0, 20)
        _feed(window, 10, 1, 20)
    snap = window.snapshot()
    assert snap.window_events == 200
    assert snap.label_psi == pytest.approx(0.0, abs=1e-9)
    assert snap.length_psi == pytest.approx(0.0, abs=1e-9)
    assert snap.mean_top1 == pytest.approx(0.9)
    assert snap.low_margin_share == 0.0
    assert snap.label_shares == {"neg": 0.5, "pos": 0.5}


def test_a_shifted_stream_moves_every_gauge_and_the_window_slides():
    window = DriftWindow(LABELS, "v1", _reference(0.5, 20), window_events=100)
    for _ in range(10):
        _feed(window, 10, 0, 20)
    for _ in range(5):  # a batch (chunk) at a time: the window holds the last 100 answers
        _feed(window, 10, 1, 20)
    assert window.snapshot().label_psi == pytest.approx(0.0, abs=1e-9)
    for _ in range(5):  # then long texts, all one label, answered with less certainty
        _feed(window, 20, 1, 400, top1=0.55)
    window.dead_letter(10)
    window.end_batch()
    snap = window.snapshot()
    assert snap.window_events <= 120  # old chunks left the window
    assert snap.label_psi is not None and snap.label_psi > 0.25
    assert snap.length_psi is not None and snap.length_psi > 0.25
    assert snap.mean_top1 is not None and snap.mean_top1 < 0.9
    assert snap.low_margin_share is not None and snap.low_margin_share > 0.5
    assert snap.dead_letter_share is not None and snap.dead_letter_share > 0


def test_a_new_version_starts_a_new_window_and_no_reference_means_no_psi():
    window = DriftWindow(LABELS, "v1", _reference(), window_events=50)
    _feed(window, 50, 1, 20)
    window.reset(LABELS, "v2", None)
    assert window.snapshot().window_events == 0
    _feed(window, 10, 1, 20)
    snap = window.snapshot()
    assert snap.version == "v2" and snap.label_psi is None
    assert snap.mean_top1 == pytest.approx(0.9)
    # a reference of other labels is not compared with
    other = DriftWindow(["a", "b", "c"], "v1", _reference())
    assert other.reference is None


def test_old_heartbeats_without_drift_still_read():
    old = {"worker_id": "w", "host": "h", "pid": 1, "at_ms": 0}
    assert WorkerStatus.model_validate(old).drift == {}


def test_every_drift_figure_has_an_alert_at_its_documented_threshold():
    from pathlib import Path

    import yaml

    from schemas.drift import MIN_WINDOW_EVENTS, THRESHOLDS

    root = Path(__file__).resolve().parents[2]
    rules = yaml.safe_load((root / "deploy/prometheus/alerts.yml").read_text(encoding="utf-8"))
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    ops = (root / "docs/operations.md").read_text(encoding="utf-8")
    for name, limit in THRESHOLDS.items():
        want = f"streamclf_drift_{name} > {limit:g} and on (model, version) "
        want += f"streamclf_drift_window_events >= {MIN_WINDOW_EVENTS}"
        assert want in exprs, name
        assert f"`streamclf_drift_{name}`" in ops and f"{limit:g}" in ops, name


def test_the_drift_table_shows_untrusted_names_as_text():
    from rich.console import Console

    from admin.commands.drift import drift_rows, drift_table

    window = DriftWindow(LABELS, "v1[/]", _reference(0.5, 20), window_events=200)
    for _ in range(20):
        _feed(window, 10, 1, 400)
    status = WorkerStatus(
        worker_id="[bold red]w1", host="h", pid=1, at_ms=0, drift={"m": window.snapshot()}
    )
    rows = drift_rows([status], "m")
    assert rows[0]["over"] == ["label_psi", "length_psi"]
    console = Console(record=True, width=250)
    console.print(drift_table(rows, "m"))
    text = console.export_text()
    assert "[bold red]w1" in text and "v1[/]" in text
