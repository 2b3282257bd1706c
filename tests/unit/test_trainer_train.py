"""Training on a tiny model: the stored version and card, best epoch, resume, CLI, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from admin.cli import app
from modelstore.onnx_export import onnx_available, read_manifest
from modelstore.presets import init_model
from modelstore.probes import probe_set
from modelstore.store import ModelStore
from tests.fixtures.trainer_data import LABELS, write_splits
from trainer.config import TrainConfig
from trainer.evaluate import compute_metrics
from trainer.exceptions import CheckpointError, ConfigError, TrainingInterrupted
from trainer.train import train

FAST = dict(epochs=2, max_seq_len=32, batch_size=8, learning_rate=1e-3, warmup=0.0)


@pytest.fixture
def setup(tmp_path: Path) -> tuple[ModelStore, dict[str, Path]]:
    store = ModelStore(tmp_path / "store")
    init_model(store, "sent", LABELS, "tiny-random", seed=0)
    return store, write_splits(tmp_path / "data", train=32, dev=16, test=16)


def config(splits: dict[str, Path], **over) -> TrainConfig:
    paths = {k: str(v) for k, v in splits.items()}
    return TrainConfig(model="sent", base_version="v1", **paths, **(FAST | over))


def test_train_stores_version_with_card(setup) -> None:
    store, splits = setup
    events = []
    outcome = train(config(splits), store, events.append)
    card = store.card("sent", outcome.version)
    assert outcome.version == "v2" and card.parent == "v1" and card.source == "train"
    assert [d.rows for d in card.data] == [32, 16, 16] and all(
        len(d.sha256) == 64 for d in card.data
    )
    assert [e["epoch"] for e in card.epochs] == [1, 2]
    best = max(card.epochs, key=lambda e: e["dev_accuracy"])
    assert card.dev_metrics["accuracy"] == best["dev_accuracy"]
    assert card.dev_metrics["epoch"] == outcome.best_epoch
    assert set(card.test_metrics) >= {"accuracy", "macro_f1", "per_class", "confusion"}
    assert card.hyperparameters["learning_rate"] == 1e-3 and card.duration_s > 0
    assert {"torch", "transformers", "python"} <= set(card.libraries)
    assert {e.phase for e in events} >= {"load", "train", "eval", "done"}
    assert all(e.examples_per_s > 0 for e in events if e.phase == "train")
    assert not (store.root / ".checkpoints" / "sent").exists()  # cleared on success
    # The dev texts become the version's probe texts (the worker's backend agreement check),
    # and the new version carries its ONNX graphs.
    vdir = store.require("sent", outcome.version)
    probes = probe_set(vdir, count=16)
    assert probes.source == "version" and len(probes.texts) == 16
    assert len(probes.labels) == 16 and set(probes.labels) <= set(LABELS)  # labelled probes
    if onnx_available():
        assert read_manifest(vdir) is not None


def test_resume_gives_the_same_weights(setup) -> None:
    store, splits = setup
    straight = train(config(splits), store).version

    def interrupt(p) -> None:
        if p.phase == "train" and p.epoch == 1 and p.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="--resume"):
        train(config(splits), store, interrupt)
    with pytest.raises(CheckpointError, match="other data"):
        train(config(splits, seed=99, resume=True), store)
    resumed = train(config(splits, resume=True), store).version
    a = load_file(str(store.require("sent", straight) / "model.safetensors"))
    b = load_file(str(store.require("sent", resumed) / "model.safetensors"))
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    dev = [(e["dev_accuracy"], e["dev_macro_f1"]) for e in store.card("sent", straight).epochs]
    assert [
        (e["dev_accuracy"], e["dev_macro_f1"]) for e in store.card("sent", resumed).epochs
    ] == dev


def test_resume_without_checkpoint(setup) -> None:
    store, splits = setup
    with pytest.raises(CheckpointError, match="no checkpoint"):
        train(config(splits, resume=True), store)


def test_base_dir_gets_a_new_head(setup, tmp_path: Path) -> None:
    store, splits = setup
    base = tmp_path / "base"
    from modelstore.presets import build_model

    build_model("tiny-random", ["x", "y", "z"]).save_pretrained(base)  # a 3-way head: replaced
    cfg = config(splits, epochs=1).model_copy(update={"base_version": None, "base_dir": str(base)})
    outcome = train(cfg, store)
    assert outcome.card.labels == LABELS and outcome.card.parent is None
    with pytest.raises(ConfigError, match="labels"):
        train(cfg.model_copy(update={"model": "new"}), store)


def test_compute_metrics_matches_sklearn() -> None:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y_true = [0, 1, 2, 2, 1, 0, 2, 1]
    y_pred = [0, 2, 2, 1, 1, 0, 2, 0]
    report = compute_metrics(y_true, y_pred, ["a", "b", "c"])
    assert report.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    assert report.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert report.confusion == confusion_matrix(y_true, y_pred).tolist()


def test_cli_train_eval_and_errors(setup, tmp_path: Path) -> None:
    store, splits = setup
    runner = CliRunner()
    common = ["--store", str(store.root)]
    args = ["train", "--model", "sent", "--train", str(splits["train"]), "--dev", str(splits["dev"]),
            "--epochs", "1", "--seq-len", "32", "--batch-size", "8", "--lr", "1e-3", *common]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "stored sent@v2" in result.output and "examples/s" in result.output
    result = runner.invoke(app, ["eval", "--model", "sent@v2", "--data", str(splits["test"]),
                                 "--json", "--plot", str(tmp_path / "cm.png"), *common])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["version"] == "v2" and len(report["confusion"]) == 2
    assert (tmp_path / "cm.png").stat().st_size > 1000
    result = runner.invoke(app, ["eval", "--model", "sent", "--data", str(splits["test"]), *common])
    assert result.exit_code == 0 and "confusion matrix" in result.output
    bad = tmp_path / "bad.tsv"
    bad.write_text("label\ttext_a\n1\t好\n5\t坏\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "--model", "sent", "--data", str(bad), *common])
    assert (
        result.exit_code == 1
        and f"{bad}:3: column label: ids go from 0 to 1" in result.output.replace("\n", "")
    )
