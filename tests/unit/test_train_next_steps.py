"""After `train`: the stored version is called a candidate with the commands that take it on;
`eval` says which version it evaluated; model references show NAME[@VERSION] in help."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from admin.cli import app
from modelstore.presets import init_model
from modelstore.store import ModelStore
from tests.fixtures.trainer_data import LABELS, write_splits


@pytest.fixture
def trained(tmp_path: Path) -> tuple[Path, dict[str, Path], str]:
    store = ModelStore(tmp_path / "store")
    init_model(store, "sent", LABELS, "tiny", seed=0)
    splits = write_splits(tmp_path / "data", train=16, dev=8, test=8)
    args = ["train", "--model", "sent", "--train", str(splits["train"]), "--dev", str(splits["dev"]),
            "--epochs", "1", "--seq-len", "32", "--batch-size", "8", "--lr", "1e-3",
            "--store", str(store.root)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return store.root, splits, result.output


def test_train_says_the_version_is_a_candidate_and_how_to_take_it_on(trained) -> None:
    root, splits, output = trained
    assert "sent@v2 is a candidate: stored, not serving" in output
    assert "the active version, sent@v1" in output
    at = f"--store {root}"
    assert f"streamclf eval --model sent@v2 --data {splits['dev']} {at}" in output
    assert f"streamclf models shadow sent v2 {at}" in output
    assert f"streamclf models promote sent v2 {at}" in output
    assert ModelStore(root).active("sent") == "v1", "train stores; it does not promote"


def test_eval_says_which_version_it_evaluated(trained) -> None:
    root, splits, _ = trained
    runner = CliRunner()
    common = ["--data", str(splits["test"]), "--store", str(root)]
    default = runner.invoke(app, ["eval", "--model", "sent", *common])
    assert default.exit_code == 0, default.output
    assert "sent@v1 (the active version)" in default.output
    candidate = runner.invoke(app, ["eval", "--model", "sent@v2", *common])
    assert candidate.exit_code == 0, candidate.output
    assert "sent@v2 (not active; v1 is)" in candidate.output
    as_json = runner.invoke(app, ["eval", "--model", "sent@v2", "--json", *common])
    report = json.loads(as_json.output)
    assert report["version"] == "v2" and report["active"] is False


@pytest.mark.parametrize("command", [["eval"], ["models", "show"]])
def test_model_references_show_name_at_version_in_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "NAME[@VERSION]" in result.output, result.output
