"""The loop, measured: a version trained on one domain meets a stream that shifts to another;
the drift gauges move, review requests flow, simulated reviewers answer them from the data's
gold labels (`streamclf review send`), the trainer's feedback round makes a candidate, which
shadows the active version and is promoted through the gate. Accuracy on the new domain
before and after is measured on the stream itself (the worker's answers to held-out texts)
and offline (the stored versions on the same texts).

`python -m benchmarks.loop` (`make loop`): hotel reviews (ChnSentiCorp without its book
reviews) then book reviews (book_review) from ../shared/data; writes benchmarks/results/loop.json.
`--short` (and tests/integration/test_loop.py): the demo's shipped ChnSentiCorp sample, its
book reviews (texts with 书) being the new domain.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bus.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SHIPPED = ROOT / "admin" / "demo" / "data"
RESULT = ROOT / "benchmarks" / "results" / "loop.json"
MODEL = "reviews"
LABELS = ["negative", "positive"]
KEY = "loop-control-key"
Row = tuple[int, str]


@dataclass
class Domains:
    old: str
    new: str
    old_train: list[Row]
    old_dev: list[Row]
    new_stream: list[Row]  # streamed after the shift: what reviewers see
    new_test: list[Row]  # held out: accuracy before and after


@dataclass
class LoopConfig:
    domains: Domains
    first: dict[str, Any] = field(
        default_factory=lambda: dict(
            epochs=3, max_seq_len=64, batch_size=32, learning_rate=1e-3, seed=7, warmup=0.1
        )
    )
    window: int = 150  # drift window (answers); each phase streams at least this many
    review_margin: float = 0.2
    review_sample_rate: float = 0.0  # random audit share of the confident answers
    worker_max_length: int = 64  # tokens the worker keeps (truncated beyond)
    review_rate_per_s: float = 100.0
    review_burst: int = 200
    review_weight: int = 3
    feedback_epochs: int = 2
    replay_sample: int = 200
    timeout_s: float = 180.0


def read_tsv(path: Path) -> list[Row]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        label, _, text = line.partition("\t")
        if label.strip() in ("0", "1") and text.strip():
            rows.append((int(label), text.strip()))
    return rows


def write_tsv(path: Path, rows: list[Row]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["label\ttext_a", *(f"{label}\t{text}" for label, text in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def is_book(text: str) -> bool:
    return "书" in text


def shipped_domains() -> Domains:
    """The short form: the shipped sample; its book reviews are the new domain."""
    train = read_tsv(SHIPPED / "chnsenticorp-train.tsv")
    dev = read_tsv(SHIPPED / "chnsenticorp-dev.tsv")
    books = [r for r in train + dev if is_book(r[1])]
    random.Random(3).shuffle(books)
    return Domains(
        "chnsenticorp sample without book reviews",
        "its book reviews",
        [r for r in train if not is_book(r[1])][:600],
        [r for r in dev if not is_book(r[1])][:200],
        books[:150],
        books[150:],
    )


def shared_domains(root: Path = SHARED) -> Domains:
    """The full form: hotel (and laptop) reviews, then book reviews."""
    old = root / "chnsenticorp"
    new = root / "book_review"
    pick = random.Random(5)
    old_train = [r for r in read_tsv(old / "train.tsv") if not is_book(r[1])]
    old_dev = [r for r in read_tsv(old / "dev.tsv") if not is_book(r[1])]
    new_rows = read_tsv(new / "dev.tsv")
    new_test = read_tsv(new / "test.tsv")
    for rows in (old_train, new_rows, new_test):
        pick.shuffle(rows)
    return Domains(
        "chnsenticorp (hotel and laptop reviews)",
        "book_review",
        old_train[:3000],
        old_dev[:400],
        new_rows[:1500],
        new_test[:1000],
    )


def full_config() -> LoopConfig:
    first = dict(epochs=3, max_seq_len=128, batch_size=32, learning_rate=1e-3, seed=7, warmup=0.1)
    return LoopConfig(shared_domains(), first, window=400, review_margin=0.6,
                      review_sample_rate=0.3, worker_max_length=256, replay_sample=1000,
                      timeout_s=900.0)  # fmt: skip


def short_config() -> LoopConfig:
    return LoopConfig(shipped_domains(), window=120, feedback_epochs=1, replay_sample=100)


# -- parts -----------------------------------------------------------------------------------
def _env(kafka: KafkaSettings, topics: dict[str, str], store: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "COLUMNS": "200",
        "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "STREAMCLF_CONTROL_TOPIC": topics["control"],
        "STREAMCLF_STATUS_TOPIC": topics["status"],
        "STREAMCLF_TRAINER_FEEDBACK_TOPIC": topics["feedback"],
        "STREAMCLF_REVIEW_TOPIC": topics["review"],
        "STREAMCLF_MODEL_STORE": str(store),
        "STREAMCLF_CONTROL_KEY": KEY,
        "STREAMCLF_STATUS_INTERVAL_S": "1",
    }


async def _cli(env: dict[str, str], *args: str, timeout_s: float = 300) -> dict[str, Any]:
    proc = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "admin.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        cwd=ROOT,
    )
    return {"code": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}


def _train_first(store: Path, data: Path, config: LoopConfig) -> str:
    import torch

    from modelstore.presets import build_model, build_tokenizer
    from modelstore.store import ModelStore
    from trainer.config import TrainConfig
    from trainer.train import train

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="loop-base-") as base:
        build_model("tiny", LABELS, seed=7).save_pretrained(base, safe_serialization=True)
        build_tokenizer().save_pretrained(base)
        cfg = TrainConfig(model=MODEL, train=str(data / "old-train.tsv"),
                          dev=str(data / "old-dev.tsv"), base_dir=base, labels=LABELS,
                          device="cpu", **config.first)  # fmt: skip
        return train(cfg, ModelStore(store)).version


def _accuracy(store: Path, version: str, data_file: Path, max_length: int) -> float:
    from trainer.evaluate import evaluate_dir

    return round(evaluate_dir(store / MODEL / version, str(data_file), max_length).accuracy, 4)


async def _produce(kafka: KafkaSettings, topic: str, prefix: str, rows: list[Row]) -> list[str]:
    from bus.producing import produce_many

    ids = [f"{prefix}{i}" for i in range(len(rows))]
    values = [
        json.dumps({"id": i, "text": t}, ensure_ascii=False).encode()
        for i, (_, t) in zip(ids, rows, strict=True)
    ]
    await produce_many(kafka, topic, zip([i.encode() for i in ids], values, strict=True))
    return ids


async def _answers(kafka: KafkaSettings, topic: str, ids: set[str], timeout_s: float) -> dict:
    """The labelled events of `ids` (id -> event), waiting until all arrived."""
    from bus.reading import read_until_quiet

    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        records = await read_until_quiet(kafka, [topic], quiet_s=1.0, timeout_s=30,
                                         wait_for_topics_s=30)  # fmt: skip
        found = {}
        for r in records:
            event = json.loads(r.value)
            if event["id"] in ids:
                found[event["id"]] = event
        if len(found) >= len(ids):
            return found
        await asyncio.sleep(1)
    raise TimeoutError(f"{len(found)} of {len(ids)} answers on {topic}")


async def _drift(kafka: KafkaSettings, status: str, events: int, timeout_s: float) -> dict:
    """The model's drift figures from the latest heartbeat once its window holds `events`."""
    from admin.swapping import live_workers

    deadline = time.monotonic() + timeout_s
    snap = None
    while time.monotonic() < deadline:
        live, _ = await live_workers(kafka, 5.0, 60.0, status)
        snaps = [s.drift[MODEL] for s in live if MODEL in s.drift]
        if snaps and snaps[0].window_events >= events:
            snap = snaps[0]
            return {
                **snap.model_dump(include={"version", "window_events", "label_psi",
                                           "length_psi", "label_shares", "mean_top1",
                                           "low_margin_share", "truncated_share",
                                           "dead_letter_share"}),
                "top1_drop": snap.top1_drop,
                "low_margin_rise": snap.low_margin_rise,
                "over": snap.over(min_events=events),
            }  # fmt: skip
        await asyncio.sleep(1)
    raise TimeoutError(f"no heartbeat with {events} answers in the drift window")


async def _serving(kafka: KafkaSettings, status: str, version: str, timeout_s: float) -> None:
    from admin.swapping import live_workers

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        live, _ = await live_workers(kafka, 5.0, 60.0, status)
        if live and all(s.versions.get(MODEL) == version and s.ready for s in live):
            return
        await asyncio.sleep(1)
    raise TimeoutError(f"workers do not serve {MODEL}@{version}")


def _stream_accuracy(answers: dict[str, dict], gold: dict[str, int]) -> float:
    right = sum(1 for i, e in answers.items() if e["label"] == LABELS[gold[i]])
    return round(right / len(answers), 4) if answers else 0.0


async def _feedback_round(
    kafka: KafkaSettings, topics: dict[str, str], store: Path, config: LoopConfig, answers: int
) -> dict[str, Any]:
    """The trainer service reads the reviewed labels and runs one feedback round."""
    from bus.reading import read_until_quiet
    from trainer.service import TrainerService
    from trainer.settings import TrainerSettings

    settings = TrainerSettings(
        jobs_topic=topics["jobs"], results_topic=topics["results"],
        feedback_topic=topics["feedback"], control_topic=topics["control"],
        group_id=topics["group"] + "-trainer", model_store=store, control_key=KEY,
        feedback_threshold=answers, feedback_epochs=config.feedback_epochs,
        replay_sample=config.replay_sample, feedback_promote=False,
        review_weight=config.review_weight, progress_interval_s=60.0,
    )  # fmt: skip
    stop = asyncio.Event()
    service = asyncio.create_task(TrainerService(settings, kafka).run(stop))
    deadline = time.monotonic() + config.timeout_s
    try:
        while time.monotonic() < deadline and not service.done():
            records = await read_until_quiet(kafka, [topics["results"]], quiet_s=0.5,
                                             timeout_s=10, missing_ok=True)  # fmt: skip
            for r in records:
                result = json.loads(r.value)
                if result["job_id"] == f"feedback-{MODEL}-1" and result["status"] not in (
                    "started",
                    "progress",
                ):
                    return result
            await asyncio.sleep(2)
        if service.done():
            service.result()
        raise TimeoutError("no feedback round result")
    finally:
        stop.set()
        await asyncio.wait_for(service, 60)


# -- the loop -------------------------------------------------------------------------------
async def run_loop(
    config: LoopConfig, kafka: KafkaSettings, work: Path, say: Callable[[str], None] = print
) -> dict[str, Any]:
    from bus.reading import read_until_quiet
    from bus.topics import create_topics
    from schemas.records import Rejection, decode_review

    d = config.domains
    uid = os.urandom(4).hex()
    topics = {name: f"loop-{uid}-{name}" for name in
              ("in", "review", "feedback", "control", "status", "jobs", "results", "group")}  # fmt: skip
    store, data = work / "store", work / "data"
    write_tsv(data / "old-train.tsv", d.old_train)
    write_tsv(data / "old-dev.tsv", d.old_dev)
    new_test = write_tsv(data / "new-test.tsv", d.new_test)
    result: dict[str, Any] = {"old_domain": d.old, "new_domain": d.new, "rows": {
        "old_train": len(d.old_train), "old_dev": len(d.old_dev),
        "new_stream": len(d.new_stream), "new_test": len(d.new_test)}, "seconds": {}}  # fmt: skip
    started = time.monotonic()

    def lap(name: str) -> None:
        result["seconds"][name] = round(time.monotonic() - started, 1)

    say(f"1. train {MODEL} on {d.old} ({len(d.old_train)} rows)")
    v1 = await asyncio.to_thread(_train_first, store, data, config)
    before = await asyncio.to_thread(_accuracy, store, v1, new_test, config.worker_max_length)
    result["first"] = {"version": v1, "new_domain_accuracy": before}
    lap("trained")

    await create_topics(kafka, [topics["in"], topics["feedback"], topics["results"],
                                topics["jobs"]], 1)  # fmt: skip
    env = _env(kafka, topics, store)
    worker_env = {
        **env,
        "STREAMCLF_DRIFT_WINDOW_EVENTS": str(config.window),
        "STREAMCLF_REVIEW_MARGIN": str(config.review_margin),
        "STREAMCLF_REVIEW_SAMPLE_RATE": str(config.review_sample_rate),
        "STREAMCLF_REVIEW_RATE_PER_S": str(config.review_rate_per_s),
        "STREAMCLF_REVIEW_BURST": str(config.review_burst),
        "STREAMCLF_TORCH_THREADS": "1",
        "STREAMCLF_ENGINE": "torch",
        "STREAMCLF_MAX_LENGTH": str(config.worker_max_length),
    }
    log_path = work / "worker.log"
    with log_path.open("ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "admin.cli", "worker", "--route", f"{topics['in']}={MODEL}",
             "--group", topics["group"], "--worker-id", f"loop-{uid}"],
            env=worker_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        labelled = f"{topics['in']}.labelled"
        say(f"2. the worker classifies {len(d.old_dev)} texts of {d.old}, then the shift")
        old_ids = await _produce(kafka, topics["in"], "old-", d.old_dev[: config.window])
        await _answers(kafka, labelled, set(old_ids), config.timeout_s)
        result["drift_before_shift"] = await _drift(
            kafka, topics["status"], min(config.window, len(old_ids)), config.timeout_s
        )
        new_ids = await _produce(kafka, topics["in"], "new-", d.new_stream)
        await _answers(kafka, labelled, set(new_ids), config.timeout_s)
        result["drift_after_shift"] = after = await _drift(
            kafka, topics["status"], config.window, config.timeout_s
        )
        say(f"   drift over its threshold: {after['over']}")
        lap("shifted")

        say("3. simulated reviewers answer the review requests from the gold labels")
        gold = {f"old-{i}": label for i, (label, _) in enumerate(d.old_dev)}
        gold |= {f"new-{i}": label for i, (label, _) in enumerate(d.new_stream)}
        requests = []
        for r in await read_until_quiet(kafka, [topics["review"]], quiet_s=2.0, timeout_s=60,
                                        wait_for_topics_s=30):  # fmt: skip
            request = decode_review(r.value)
            if not isinstance(request, Rejection):
                requests.append(request)
        answered = [q for q in requests if q.id in gold]
        answers = work / "answers.jsonl"
        answers.write_text("".join(json.dumps({"id": q.id, "label": LABELS[gold[q.id]]}) + "\n"
                                   for q in answered), encoding="utf-8")  # fmt: skip
        sent = await _cli(env, "review", "send", str(answers), "--review-topic",
                          topics["review"], "--feedback-topic", topics["feedback"])  # fmt: skip
        result["review"] = {
            "requests": len(requests),
            "from_new_domain": sum(1 for q in requests if q.id.startswith("new-")),
            "answered": len(answered),
            "send_exit": sent["code"],
        }
        if sent["code"] != 0 or not answered:
            raise RuntimeError(f"review send failed: {sent['stderr'][-500:]}")
        lap("reviewed")

        say(f"4. the trainer's feedback round on {len(answered)} reviewed labels")
        round_ = await _feedback_round(kafka, topics, store, config, len(answered))
        result["feedback_round"] = {k: round_.get(k) for k in ("status", "version", "error")}
        result["feedback_round"]["metrics"] = {
            k: v for k, v in (round_.get("metrics") or {}).items() if not isinstance(v, dict)
        }
        v2 = round_.get("version")
        if round_["status"] != "succeeded" or not v2:
            raise RuntimeError(f"feedback round: {round_}")
        result["candidate"] = {
            "version": v2,
            "new_domain_accuracy": await asyncio.to_thread(
                _accuracy, store, v2, new_test, config.worker_max_length
            ),
        }
        lap("candidate")

        say(f"5. {MODEL}@{v2} shadows {v1} on held-out {d.new} texts; then the gate")
        shadow = await _cli(env, "models", "shadow", MODEL, v2, "--wait", "--timeout", "120")
        gold_test = {f"test-{i}": label for i, (label, _) in enumerate(d.new_test)}
        test_ids = await _produce(kafka, topics["in"], "test-", d.new_test)
        answers_v1 = await _answers(kafka, labelled, set(test_ids), config.timeout_s)
        await asyncio.sleep(3)  # shadow results trail the labelled output
        compare = await _cli(env, "models", "compare", MODEL, v2, "--json")
        promote = await _cli(env, "models", "promote", MODEL, v2)
        result["shadow"] = {"exit": shadow["code"], "compare": _json(compare["stdout"])}
        result["promote"] = {"exit": promote["code"], "output": (promote["stdout"] +
                             promote["stderr"]).strip()[-400:]}  # fmt: skip
        stream_before = _stream_accuracy(answers_v1, gold_test)
        stream_after = None
        if promote["code"] == 0:
            await _serving(kafka, topics["status"], v2, config.timeout_s)
            again = await _produce(kafka, topics["in"], "again-", d.new_test)
            answers_v2 = await _answers(kafka, labelled, set(again), config.timeout_s)
            gold_again = {f"again-{i}": g for i, (g, _) in enumerate(d.new_test)}
            stream_after = _stream_accuracy(answers_v2, gold_again)
        result["new_domain_stream_accuracy"] = {"before": stream_before, "after": stream_after}
        result["new_domain_accuracy"] = {
            "before": before,
            "after": result["candidate"]["new_domain_accuracy"],
        }
        lap("done")
    finally:
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
    result["worker_exit"] = worker.returncode
    return result


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text.strip()[-400:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="the shipped sample only")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    from benchmarks.harness import local_broker

    config = short_config() if args.short else full_config()
    with local_broker() as kafka, tempfile.TemporaryDirectory(prefix="loop-") as tmp:
        result = asyncio.run(run_loop(config, kafka, Path(tmp)))
    result = {"form": "short" if args.short else "full", **result,
              "config": {k: v for k, v in asdict(config).items() if k != "domains"}}  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    acc = result["new_domain_accuracy"]
    print(f"{result['new_domain']}: accuracy {acc['before']} before, {acc['after']} after; "
          f"drift over threshold after the shift: {result['drift_after_shift']['over']}; "
          f"wrote {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
