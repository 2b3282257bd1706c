"""`streamclf predict` and `streamclf models import` (directories and the hub's cache), offline."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modelstore.labels import PRESET_LABELS
from modelstore.presets import init_model
from modelstore.store import ModelStore, file_sha256
from schemas.events import LabelledEvent
from tests.cli import one_line_error, streamclf

TEXT = "这家酒店的服务非常好，房间干净，下次还会再来。"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("predict-store")
    init_model(ModelStore(root), "reviews", PRESET_LABELS["jd-binary"], "tiny-random", seed=3)
    return root


def test_predict_json_is_the_workers_labelled_event(store: Path) -> None:
    from worker.inference import InferenceEngine

    proc = streamclf(
        "predict",
        "reviews",
        TEXT,
        "--text-pair",
        "第二句",
        "--json",
        "--store",
        str(store),
        # the engine below is fp32 torch; `auto` may pick a backend whose scores differ by ~1e-3
        STREAMCLF_ENGINE="torch",
        STREAMCLF_DTYPE="fp32",
    )
    assert proc.returncode == 0, proc.stderr
    event = LabelledEvent.model_validate_json(proc.stdout)
    expected = InferenceEngine(ModelStore(store).require("reviews", "v1")).predict(
        [TEXT], ["第二句"]
    )[0]
    assert (event.model, event.version, event.label, event.label_id) == (
        "reviews",
        "v1",
        expected.label,
        expected.label_id,
    )
    assert event.score == pytest.approx(expected.score, abs=1e-5)
    assert [s.label for s in event.scores] == [s[0] for s in expected.scores]
    assert event.source_partition == -1 and event.source_offset == -1


def test_predict_names_the_missing_model_or_version(store: Path) -> None:
    proc = streamclf("predict", "nosuch", TEXT, "--store", str(store))
    assert proc.returncode == 2
    assert "streamclf models init nosuch" in one_line_error(proc)
    proc = streamclf("predict", "reviews", TEXT, "--version", "v9", "--store", str(store))
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "no version 'v9'" in line and "streamclf models list reviews" in line


def test_import_of_a_directory_without_config_json(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"")
    proc = streamclf(
        "models", "import", "x", str(tmp_path / "ckpt"), "--store", str(tmp_path / "s")
    )
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "no config.json" in line and "save_pretrained" in line


def test_import_of_a_config_json_that_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.safetensors").write_bytes(b"")
    (tmp_path / "ckpt" / "config.json").write_text("[1, 2]", encoding="utf-8")
    proc = streamclf(
        "models", "import", "x", str(tmp_path / "ckpt"), "--store", str(tmp_path / "s")
    )
    assert proc.returncode == 2
    assert "config.json is not a JSON object" in one_line_error(proc)
    assert not (tmp_path / "s" / "x").exists()


def _hub_cache(tmp: Path, store: Path) -> tuple[Path, dict[str, str]]:
    """A hub cache (HF_HOME/hub/models--org--tiny) with two commits: `main` has safetensors
    and a `.bin` of other weights, tag `v2` has only a `.bin`."""
    src = ModelStore(store).require("reviews", "v1")
    repo = tmp / "hf" / "hub" / "models--org--tiny"
    commits = {"main": "a" * 40, "v2": "b" * 40}
    for ref, commit in commits.items():
        snap = repo / "snapshots" / commit
        shutil.copytree(src, snap, ignore=shutil.ignore_patterns("card.json", "model.safetensors"))
        state = load_file(src / "model.safetensors")
        if ref == "main":
            shutil.copyfile(src / "model.safetensors", snap / "model.safetensors")
            state = {k: torch.zeros_like(v) for k, v in state.items()}  # must not be chosen
        torch.save(state, snap / "pytorch_model.bin")
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    return tmp / "hf", commits


def test_import_from_the_hub_cache_offline(tmp_path: Path, store: Path) -> None:
    hf_home, commits = _hub_cache(tmp_path, store)
    env = {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    target = tmp_path / "target"
    proc = streamclf("models", "import", "news", "org/tiny", "--store", str(target), **env)
    assert proc.returncode == 0, proc.stderr
    ms = ModelStore(target)
    card = ms.card("news", "v1")
    assert card.hyperparameters["commit"] == commits["main"]
    assert card.labels == PRESET_LABELS["jd-binary"]
    original = ModelStore(store).require("reviews", "v1") / "model.safetensors"
    assert file_sha256(ms.require("news", "v1") / "model.safetensors") == file_sha256(original)

    proc = streamclf(
        "models", "import", "news", "org/tiny", "--revision", "v2", "--store", str(target), **env
    )
    assert proc.returncode == 0, proc.stderr
    assert ms.card("news", "v2").hyperparameters["commit"] == commits["v2"]
    a, b = (load_file(ms.require("news", v) / "model.safetensors") for v in ("v1", "v2"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the .bin held the same weights

    proc = streamclf("models", "import", "news", "org/absent", "--store", str(target), **env)
    assert proc.returncode == 3
    line = one_line_error(proc)
    assert "not in the local cache" in line and "HF_HUB_OFFLINE" in line
    assert json.loads((target / "news" / "v1" / "card.json").read_text())["source"] == "import"


class _FakeHub(BaseHTTPRequestHandler):
    """Answers the hub's repo-info call the way huggingface.co does for each case."""

    def do_GET(self) -> None:
        if "/org/gated/" in self.path:
            status, code = 403, "GatedRepo"
        elif "/revision/nope" in self.path:
            status, code = 404, "RevisionNotFound"
        else:
            status, code = 404, "RepoNotFound"
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("repo", "revision", "expected"),
    [
        ("org/missing", None, "not found: check the id"),
        ("org/gated", None, "is gated: accept its conditions"),
        ("org/tiny", "nope", "has no revision 'nope'"),
    ],
)
def test_hub_errors_tell_not_found_gated_and_bad_revision_apart(
    tmp_path: Path, fake_hub: str, repo: str, revision: str | None, expected: str
) -> None:
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": fake_hub}
    args = ["models", "import", "x", repo, "--store", str(tmp_path / "s")]
    proc = streamclf(*args, *(["--revision", revision] if revision else []), **env)
    assert proc.returncode == 3
    assert expected in one_line_error(proc)
