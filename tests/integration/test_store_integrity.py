"""Issue 17 item 4: a version is what its card says, at every load (real broker, real CLI)."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from bus.settings import KafkaSettings
from modelstore.store import WEIGHTS_FILE
from tests.cli import one_line_error, streamclf
from tests.conftest import free_port
from tests.integration.harness import WorkerProcess, collect, make_topics, produce, text_events
from tests.integration.test_hot_swap import cli, make_store, stop_all, topics_env, wait_workers

pytestmark = pytest.mark.integration


def swap_labels(version_dir: Path) -> None:
    """Edit config.json's id2label in place: ids 0 and 1 exchange their names."""
    config = json.loads((version_dir / "config.json").read_text())
    names = config["id2label"]
    names["0"], names["1"] = names["1"], names["0"]
    (version_dir / "config.json").write_text(json.dumps(config))


def last_error(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    assert "Traceback" not in log, log
    return lines[-1]


def run_worker(broker: KafkaSettings, store: Path, uid: str, tmp: Path, name: str) -> WorkerProcess:
    w = WorkerProcess(
        broker, store, [f"news-{uid}=news"], f"g-{uid}", tmp, name, env=topics_env(uid)
    )
    w.start()
    assert w.proc is not None
    try:
        w.proc.wait(120)
    except subprocess.TimeoutExpired:
        w.kill()
        raise AssertionError(f"the worker started on a tampered store:\n{w.log()}") from None
    return w


async def test_a_worker_refuses_to_start_on_tampered_weights_or_config(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")  # news: v1 active, v2 other weights
    await make_topics(broker, [f"news-{uid}"], 1)
    v1 = store / "news" / "v1"
    shutil.copyfile(store / "news" / "v2" / WEIGHTS_FILE, v1 / WEIGHTS_FILE)
    w = run_worker(broker, store, uid, tmp_path, "weights")
    line = last_error(w.log())
    assert w.proc is not None and w.proc.returncode == 3, w.log()
    assert line.startswith("error: news@v1: model.safetensors sha256 "), line
    assert "serving news@v1" not in w.log()

    shutil.copyfile(tiny_store / "news" / "v1" / WEIGHTS_FILE, v1 / WEIGHTS_FILE)
    swap_labels(v1)
    w = run_worker(broker, store, uid, tmp_path, "config")
    line = last_error(w.log())
    assert w.proc is not None and w.proc.returncode == 3, w.log()
    assert line.startswith("error: news@v1: config.json sha256 "), line


async def test_a_running_worker_keeps_its_version_when_the_new_one_was_tampered(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    """The admin's v2 is intact; the worker's v2 had its label names edited on disk (only
    config.json differs, so the weights' sha256 in the swap command still matches)."""
    admin_store = make_store(tiny_store, tmp_path / "admin-store")
    worker_store = tmp_path / "worker-store"
    shutil.copytree(admin_store, worker_store)
    swap_labels(worker_store / "news" / "v2")
    topic, env = f"news-{uid}", topics_env(uid)
    await make_topics(broker, [topic], 1)
    port = free_port()
    metrics_env = {
        **env,
        "STREAMCLF_METRICS_PORT": str(port),
        "STREAMCLF_METRICS_HOST": "127.0.0.1",
    }
    w = WorkerProcess(
        broker, worker_store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w1", env=metrics_env
    )
    try:
        w.start()
        await wait_workers(broker, uid, [w])
        code, out, err = await cli(
            broker, env, "models", "swap", "news", "v2", "--store", str(admin_store),
            "--wait", "--timeout", "60",
        )  # fmt: skip
        await produce(broker, topic, text_events(30, "a"))
        outputs = await collect(broker, [f"{topic}.labelled"], 30, timeout_s=90)
        st_code, st_out, st_err = await cli(broker, env, "status", "--json")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
    finally:
        stop_all([w])
    assert code == 1 and "config.json sha256" in out + err, out + err
    assert len(outputs) == 30 and {o["version"] for o in outputs} == {"v1"}
    assert st_code == 0, st_err
    (row,) = json.loads(st_out)
    assert row["versions"] == {"news": "v1"} and row["last_swap"]["ok"] is False
    assert (
        "IntegrityError" in row["last_swap"]["error"] and "config.json" in row["last_swap"]["error"]
    )
    assert 'streamclf_store_integrity_failures_total{model="news",version="v2"} 1.0' in metrics


def test_predict_and_eval_refuse_a_tampered_version(tiny_store: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    swap_labels(store / "news" / "v1")
    predict = streamclf("predict", "news", "北京上个月召开了两会", "--store", str(store))
    assert predict.returncode == 3, predict.stderr
    assert "news@v1: config.json sha256" in one_line_error(predict)
    data = tmp_path / "dev.tsv"
    data.write_text("label\ttext_a\n0\t北京上个月召开了两会\n", encoding="utf-8")
    evaluated = streamclf("eval", "--model", "news@v1", "--data", str(data), "--store", str(store))
    assert evaluated.returncode == 1, evaluated.stderr
    assert "news@v1: config.json sha256" in one_line_error(evaluated)
    verify = streamclf("models", "verify", "--store", str(store))
    assert verify.returncode == 1 and "refused  news@v1: config.json" in verify.stdout
    assert "ok       sentiment@v1" in verify.stdout
