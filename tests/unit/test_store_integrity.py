"""A version is what its card says: every file hashed into the card, checked at each load."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from admin.cli import app
from modelstore import integrity, onnx_export
from modelstore.exceptions import IntegrityError
from modelstore.integrity import RUNTIME_FILES, hash_files, verify_version
from modelstore.presets import init_model
from modelstore.store import CARD_FILE, WEIGHTS_FILE, ModelStore, file_sha256
from worker import engine_select

LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`m@v1` and `m@v2` (other weights), written once for the module."""
    root = tmp_path_factory.mktemp("integrity")
    store = ModelStore(root)
    init_model(store, "m", LABELS, "tiny", seed=1)
    init_model(store, "m", LABELS, "tiny", seed=2)
    return root


@pytest.fixture
def store(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built, tmp_path / "s")
    return tmp_path / "s"


def v1(store: Path) -> Path:
    return store / "m" / "v1"


def edit_config(path: Path, **changes: object) -> None:
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, **changes}))


def make_legacy(path: Path) -> None:
    """A card as written before per-file hashes: only `weights_sha256`."""
    card = json.loads((path / CARD_FILE).read_text())
    card.pop("files")
    (path / CARD_FILE).write_text(json.dumps(card))


def refusal(path: Path, expected: str | None = None) -> str:
    with pytest.raises(IntegrityError) as info:
        verify_version(path, expected)
    message = str(info.value)
    assert "\n" not in message and message.startswith("m@v1: ")
    return message


def test_the_card_records_every_file_of_the_version(store: Path) -> None:
    card = ModelStore(store).card("m", "v1")
    names = set(card.files)
    assert {WEIGHTS_FILE, "config.json", "tokenizer.json"} <= names
    assert CARD_FILE not in names
    if onnx_export.onnx_available():
        assert {"onnx/model.onnx", "onnx/model.int8.onnx", "onnx/manifest.json"} <= names
    assert card.files == hash_files(v1(store))
    assert card.weights_sha256 == card.files[WEIGHTS_FILE]
    checked = verify_version(v1(store))
    assert checked.hashes == card.files and checked.unverified == ()


def test_other_weights_copied_over_are_refused_naming_the_file(store: Path) -> None:
    shutil.copyfile(store / "m" / "v2" / WEIGHTS_FILE, v1(store) / WEIGHTS_FILE)
    assert "model.safetensors sha256" in refusal(v1(store))


def test_an_edited_id2label_is_refused_naming_config_json(store: Path) -> None:
    edit_config(v1(store), id2label={"0": "a", "1": "c", "2": "b"})
    assert "config.json sha256" in refusal(v1(store))


@pytest.mark.parametrize("name", ["vocab.txt", "added_tokens.json", "pytorch_model.bin"])
def test_a_file_added_after_the_card_is_refused(store: Path, name: str) -> None:
    (v1(store) / name).write_text("{}")
    assert f"{name} is not in the card" in refusal(v1(store))


def test_a_missing_file_is_refused_and_runtime_caches_are_not_part_of_the_version(
    store: Path,
) -> None:
    assert {engine_select.CHOICE_FILE, engine_select.REFERENCE_FILE} == RUNTIME_FILES
    for name in RUNTIME_FILES:
        (v1(store) / name).write_text("{}")
    (v1(store) / ".tmp-something").write_text("x")
    verify_version(v1(store))
    (v1(store) / "tokenizer.json").unlink()
    assert "tokenizer.json is missing" in refusal(v1(store))


def test_the_swap_commands_weights_hash_must_match_too(store: Path) -> None:
    verify_version(v1(store), file_sha256(v1(store) / WEIGHTS_FILE))
    assert "the swap command's" in refusal(v1(store), "0" * 64)


def test_a_card_naming_paths_outside_the_version_is_refused(store: Path) -> None:
    card = json.loads((v1(store) / CARD_FILE).read_text())
    card["files"]["../../etc/passwd"] = "0" * 64
    (v1(store) / CARD_FILE).write_text(json.dumps(card))
    assert "outside the version" in refusal(v1(store))


def test_legacy_cards_check_weights_and_labels_and_list_the_rest_unverified(store: Path) -> None:
    make_legacy(v1(store))
    before = verify_version(v1(store))
    assert WEIGHTS_FILE not in before.unverified and "config.json" in before.unverified
    edit_config(v1(store), classifier_dropout=0.3)  # unverifiable, but changes the identity
    after = verify_version(v1(store))
    assert after.digest != before.digest
    edit_config(v1(store), id2label={"0": "x", "1": "b", "2": "c"})
    assert "config.json labels (x, b, c) differ from the card's (a, b, c)" in refusal(v1(store))
    edit_config(v1(store), id2label={"0": "a", "1": "b", "2": "c"})
    shutil.copyfile(store / "m" / "v2" / WEIGHTS_FILE, v1(store) / WEIGHTS_FILE)
    assert "model.safetensors sha256" in refusal(v1(store))


def test_the_digest_covers_every_file(store: Path) -> None:
    a = verify_version(v1(store)).digest
    b = verify_version(store / "m" / "v2").digest
    assert a != b and len(a) == 64
    assert a == verify_version(v1(store)).digest


def test_one_engine_load_hashes_each_file_once(store: Path, monkeypatch) -> None:
    from worker.inference import InferenceEngine

    seen: Counter[str] = Counter()
    real = file_sha256

    def counting(path: Path, chunk: int = 1 << 20) -> str:
        seen[Path(path).name] += 1
        return real(path, chunk)

    for module in (integrity, onnx_export):
        monkeypatch.setattr(module, "file_sha256", counting)
    engine = "onnx" if onnx_export.onnx_available() else "torch"
    InferenceEngine(v1(store), engine=engine, dtype="fp32", cache_choice=False)
    assert seen[WEIGHTS_FILE] == 1 and max(seen.values()) == 1, seen


def test_models_verify_reports_each_version_and_fails_on_a_mismatch(store: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["models", "verify", "--store", str(store)])
    assert ok.exit_code == 0, ok.output
    assert [line.split()[0] for line in ok.output.splitlines()] == ["ok", "ok"]
    make_legacy(store / "m" / "v2")
    edit_config(v1(store), id2label={"0": "b", "1": "a", "2": "c"})
    bad = runner.invoke(app, ["models", "verify", "--store", str(store)])
    assert bad.exit_code == 1, bad.output
    lines = bad.output.splitlines()
    assert lines[0].startswith("refused  m@v1: config.json sha256"), lines
    assert lines[1].startswith("legacy   m@v2: ") and "unverified" in lines[1], lines
    one = runner.invoke(app, ["models", "verify", "m@v2", "--json", "--store", str(store)])
    assert one.exit_code == 0 and json.loads(one.output)[0]["state"] == "legacy", one.output
    missing = runner.invoke(app, ["models", "verify", "m@v9", "--store", str(store)])
    assert missing.exit_code == 2 and "no version 'v9'" in missing.output


def test_the_cache_identity_follows_config_and_the_engines_backend(store: Path) -> None:
    from worker.cache import engine_identity
    from worker.inference import InferenceEngine

    make_legacy(v1(store))  # config.json unverified, but still part of the identity

    def identity(**options: str) -> str:
        engine = InferenceEngine(v1(store), dtype="fp32", cache_choice=False, **options)
        return engine_identity(engine, "v1")

    before = identity(engine="torch")
    edit_config(v1(store), classifier_dropout=0.3)
    after = identity(engine="torch")
    assert before != after and after == identity(engine="torch")
    if onnx_export.onnx_available():
        assert identity(engine="onnx") != after  # backend and precision are part of it


def test_the_trainer_base_and_a_rollout_candidate_refuse_a_tampered_version(
    store: Path,
) -> None:
    import asyncio

    from trainer.base import load_start
    from trainer.config import TrainConfig
    from trainer.exceptions import ConfigError
    from worker import metrics
    from worker.inference import InferenceEngine
    from worker.registry import ModelRegistry

    edit_config(v1(store), id2label={"0": "c", "1": "b", "2": "a"})
    config = TrainConfig(model="m", train="t.tsv", dev="d.tsv", base_version="v1")
    with pytest.raises(ConfigError, match=r"base version m@v1 refused: m@v1: config\.json sha256"):
        load_start(config, ModelStore(store))

    ms = ModelStore(store)
    registry = ModelRegistry(
        ms, lambda m, v, sha: InferenceEngine(ms.require(m, v), expected_sha256=sha)
    )
    failures = metrics.STORE_INTEGRITY_FAILURES.labels("m", "v1")
    before = failures._value.get()
    with pytest.raises(IntegrityError, match=r"config\.json"):
        asyncio.run(registry.load("m", "v1", None))  # as a shadow or canary is loaded
    registry.shutdown()
    assert failures._value.get() == before + 1
