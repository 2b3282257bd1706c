"""The promotion gate: pure decision, and the store-backed check with both numbers on refusal."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelstore.presets import build_model, build_tokenizer
from modelstore.store import ModelStore, utc_now
from schemas.card import ModelCard
from trainer.exceptions import PromotionRefused
from trainer.promote import check_gate, gate

LABELS = ["negative", "positive"]


def test_gate_pure() -> None:
    assert gate(0.9, 0.8).allowed
    assert gate(0.8, 0.8).allowed  # "at least" the active accuracy
    refused = gate(0.7, 0.8)
    assert not refused.allowed and "0.7000 < 0.8000" in refused.reason
    assert gate(0.7, 0.8, force=True).allowed
    assert gate(0.5, None).allowed  # nothing active to compare with
    assert not gate(None, 0.8).allowed


def add(store: ModelStore, dev: dict) -> str:
    def write(tmp: Path) -> ModelCard:
        build_model("tiny-random", LABELS).save_pretrained(tmp, safe_serialization=True)
        build_tokenizer().save_pretrained(tmp)
        return ModelCard(
            name="m", version="pending", created_at=utc_now(), labels=LABELS, dev_metrics=dev
        )

    return store.add_version("m", write)


def test_check_gate_uses_same_dev_set(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    active = add(store, {"accuracy": 0.80, "sha256": "d1", "data": "dev.tsv"})
    store.set_active("m", active)
    better = add(store, {"accuracy": 0.85, "sha256": "d1", "data": "dev.tsv"})
    worse = add(store, {"accuracy": 0.75, "sha256": "d1", "data": "dev.tsv"})
    assert check_gate(store, "m", better).allowed
    with pytest.raises(PromotionRefused) as info:
        check_gate(store, "m", worse)
    assert "0.7500" in str(info.value) and "0.8000" in str(info.value)
    assert check_gate(store, "m", worse, force=True).allowed


def test_check_gate_refuses_when_no_common_dev_set(tmp_path: Path) -> None:
    store = ModelStore(tmp_path)
    store.set_active("m", add(store, {"accuracy": 0.80, "sha256": "other"}))
    candidate = add(store, {"accuracy": 0.99, "sha256": "d2", "data": str(tmp_path / "gone.tsv")})
    with pytest.raises(PromotionRefused, match="cannot be measured"):
        check_gate(store, "m", candidate)


def test_check_gate_evaluates_active_on_candidates_dev_file(tmp_path: Path) -> None:
    from modelstore.store import file_sha256
    from tests.fixtures.trainer_data import write_tsv

    store = ModelStore(tmp_path / "store")
    store.set_active("m", add(store, {}))  # a random model with no dev metrics
    dev = write_tsv(tmp_path / "dev.tsv", 20)
    sha = file_sha256(dev)
    ok = add(store, {"accuracy": 1.0, "sha256": sha, "data": str(dev)})
    decision = check_gate(store, "m", ok)
    assert decision.allowed and decision.active is not None and decision.active <= 1.0
    bad = add(store, {"accuracy": 0.0, "sha256": sha, "data": str(dev)})
    with pytest.raises(PromotionRefused, match=r"0\.0000"):
        check_gate(store, "m", bad)


def test_cli_promote_refuses_with_both_numbers(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from admin.cli import app

    store = ModelStore(tmp_path)
    store.set_active("m", add(store, {"accuracy": 0.9, "sha256": "d"}))
    worse = add(store, {"accuracy": 0.6, "sha256": "d"})
    # No broker is needed: the gate refuses before anything is published.
    result = CliRunner().invoke(app, ["models", "promote", "m", worse, "--store", str(tmp_path)])
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "0.6000" in text and "0.9000" in text and "--force" in text
    assert store.active("m") == "v1"
