"""The demo's shipped sample, its cache key and its in = out accounting (the run itself is
`make demo`)."""

from __future__ import annotations

from collections import Counter

from admin.demo import model as demo_model
from admin.demo.stream import delivery


def _rows(path):
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "label\ttext_a"
    return [line.split("\t") for line in lines[1:] if line]


def test_the_sample_is_what_its_provenance_says() -> None:
    train, dev = _rows(demo_model.TRAIN), _rows(demo_model.DEV)
    assert (len(train), len(dev)) == (1600, 300)
    assert Counter(label for label, _ in train) == {"0": 800, "1": 800}
    assert Counter(label for label, _ in dev) == {"0": 150, "1": 150}
    assert all(8 <= len(text) <= 60 for _, text in train + dev)
    assert (demo_model.DATA / "PROVENANCE.md").is_file()
    total = sum(p.stat().st_size for p in (demo_model.TRAIN, demo_model.DEV))
    assert total < 300_000


def test_cache_key_follows_the_recipe(monkeypatch) -> None:
    key = demo_model.cache_key()
    assert key == demo_model.cache_key()
    monkeypatch.setitem(demo_model.FIRST, "epochs", 99)
    assert demo_model.cache_key() != key


def test_delivery_counts_lost_and_repeated_ids() -> None:
    out = [{"id": "a", "version": "v1"}, {"id": "b", "version": "v2"}, {"id": "b", "version": "v2"}]
    d = delivery(["a", "b", "c"], out)
    assert d == {"in": 3, "out": 2, "lost": 1, "duplicates": 1, "by_version": {"v1": 1, "v2": 2}}
