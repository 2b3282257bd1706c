"""Benchmark text generators and statistics helpers (no services, no model)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from benchmarks import texts
from benchmarks.stats import (
    fifo_batches,
    latency_summary_ms,
    padding_fraction,
    percentile,
    sorted_budget_batches,
    worker_batches,
)


def test_percentile_matches_linear_interpolation() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 100) == 5.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_latency_summary_in_ms() -> None:
    summary = latency_summary_ms([0.010] * 98 + [0.5, 1.0])
    assert summary["p50_ms"] == pytest.approx(10.0)
    assert summary["max_ms"] == pytest.approx(1000.0)
    assert summary["p99_ms"] > summary["p95_ms"] >= summary["p50_ms"]


def test_padding_fraction() -> None:
    assert padding_fraction([[4, 4, 4]]) == 0.0
    assert padding_fraction([[1, 3]]) == pytest.approx(1 - 4 / 6)
    assert padding_fraction([]) == 0.0


def test_sorted_budget_batches_cut_padding_and_keep_every_row() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(5, 500) for _ in range(256)]
    fifo = fifo_batches(lengths, 64)
    cut = sorted_budget_batches(lengths, 64, 4096)
    assert sorted(x for b in cut for x in b) == sorted(lengths)
    assert all(max(b) * len(b) <= 4096 or len(b) == 1 for b in cut)
    assert padding_fraction(cut) < padding_fraction(fifo) / 2


def test_worker_batches_close_on_rows_or_token_sum() -> None:
    batches = worker_batches([10] * 10, max_batch=4, max_batch_tokens=10_000)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sum(map(len, worker_batches([100] * 10, 100, 250))) == 10
    assert max(sum(b) for b in worker_batches([100] * 10, 100, 250)) <= 250


def test_generated_text_is_chinese_and_exact_length() -> None:
    text = texts.generated_text(random.Random(0), 37)
    assert len(text) == 37
    assert sum("\u4e00" <= c <= "\u9fff" for c in text) >= 30


def test_mixed_lengths_span_the_range_without_data(tmp_path: Path) -> None:
    out = texts.mixed_lengths(200, seed=3, data_dir=tmp_path)
    lengths = [len(t) for t in out]
    assert min(lengths) >= 10 and max(lengths) <= 500
    assert max(lengths) - min(lengths) > 300
    assert out == texts.mixed_lengths(200, seed=3, data_dir=tmp_path)


def test_sentences_read_uer_tsv_split_on_newline_only(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    # U+2028 inside a text must not split it (split on "\n" only), the header is skipped.
    (folder / "test.tsv").write_text(
        "label\ttext_a\n0\t第一句\u2028还是第一句\n1\t第二句\n", encoding="utf-8"
    )
    found, source = texts.sentences(3, data_dir=tmp_path)
    assert source == "shared/data: demo"
    assert sorted(set(found)) == sorted(["第一句\u2028还是第一句", "第二句"])
    assert len(found) == 3


def test_sentences_fall_back_to_generated(tmp_path: Path) -> None:
    found, source = texts.sentences(5, data_dir=tmp_path / "absent")
    assert source == "generated" and len(found) == 5 and all(found)


def test_unique_texts_are_distinct() -> None:
    out = texts.unique_texts(["同一句"] * 4, "t")
    assert len(set(out)) == 4
