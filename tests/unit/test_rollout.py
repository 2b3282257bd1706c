"""Rollouts without services: sampling, what is in force, the compare report, the gate."""

from __future__ import annotations

import json

from admin.compare import build_report
from admin.rollouts import check_evidence
from bus.rollout import RolloutBook
from schemas.control import CanaryModel, ShadowModel, SwapModel
from schemas.records import Reason, Rejection, decode_control
from schemas.rollout import ShadowResult
from worker.rollout import in_canary, in_shadow


def swap(model: str, version: str, at: int) -> SwapModel:
    return SwapModel(model=model, version=version, sha256="x", requested_at_ms=at)


def shadow(version: str, at: int, fraction: float = 0.5, stop: bool = False) -> ShadowModel:
    return ShadowModel(
        model="news", version=version, fraction=fraction, requested_at_ms=at, stop=stop
    )


def canary(version: str, at: int, fraction: float = 0.2, stop: bool = False) -> CanaryModel:
    return CanaryModel(
        model="news", version=version, fraction=fraction, requested_at_ms=at, stop=stop
    )


def test_samples_are_stable_and_close_to_the_fraction() -> None:
    ids = [f"evt-{i}" for i in range(20_000)]
    picked = [i for i in ids if in_shadow(i, 0.1)]
    assert abs(len(picked) / len(ids) - 0.1) < 0.01
    assert picked == [i for i in ids if in_shadow(i, 0.1)]  # the same answer every time
    assert set(picked) <= {i for i in ids if in_shadow(i, 0.3)}  # a larger fraction keeps them
    assert not any(in_shadow(i, 0.0) for i in ids) and all(in_shadow(i, 1.0) for i in ids)


def test_canary_goes_by_key_and_by_id_without_one() -> None:
    keys = [f"user-{i}".encode() for i in range(5000)]
    share = sum(in_canary(k, "any-id", 0.25) for k in keys) / len(keys)
    assert abs(share - 0.25) < 0.02
    # one key: every event the same, whatever its id
    key = next(k for k in keys if in_canary(k, "x", 0.25))
    assert all(in_canary(key, f"id-{i}", 0.25) for i in range(200))
    # no key: decided by id
    assert in_canary(None, "abc", 0.25) == in_canary(b"abc", "zzz", 0.25)
    assert in_canary(b"", "abc", 0.25) == in_canary(None, "abc", 0.25)


def test_book_start_stop_and_swap_semantics() -> None:
    book = RolloutBook()
    assert book.feed(shadow("v2", 10)) and book.feed(canary("v3", 11))
    assert book.get("news", "shadow").version == "v2"
    assert book.feed(swap("news", "v4", 12))  # any swap completes the canary
    assert book.get("news", "canary") is None
    assert book.get("news", "shadow").version == "v2"  # shadow goes on beside the new active
    assert book.feed(swap("news", "v2", 13))  # swapping to the shadowed version ends it
    assert book.get("news", "shadow") is None
    assert book.feed(canary("v5", 14)) and book.feed(canary("v5", 15, stop=True))
    assert book.get("news", "canary") is None


def test_book_ignores_replayed_and_stale_commands() -> None:
    book = RolloutBook()
    old = canary("v3", 100)
    assert book.feed(old)
    assert book.feed(canary("v3", 101, stop=True))
    assert not book.feed(old)  # a replayed signed command does not restart it
    assert book.get("news", "canary") is None
    book.feed(swap("news", "v2", 200))
    assert not book.feed(shadow("v3", 150))  # older than the last swap
    assert book.get("news", "shadow") is None


def test_rollout_commands_are_keyed_apart_from_swaps_and_signed() -> None:
    cmd = shadow("v2", 1)
    assert cmd.record_key() == "news:shadow" and canary("v2", 1).record_key() == "news:canary"
    assert swap("news", "v2", 1).record_key() == "news"
    signed = cmd.signed("k")
    assert signed.verify("k") and not signed.verify("other")
    tampered = signed.model_copy(update={"fraction": 1.0})
    assert not tampered.verify("k")
    assert decode_control(signed.model_dump_json().encode()) == signed


def test_unknown_command_types_are_recognised_not_crashed_on() -> None:
    raw = json.dumps({"type": "teleport", "model": "news"}).encode()
    unknown = decode_control(raw)
    assert isinstance(unknown, Rejection) and unknown.reason is Reason.UNKNOWN_TYPE
    assert "'teleport'" in unknown.message
    not_json = decode_control(b"not json")
    assert isinstance(not_json, Rejection) and not_json.reason is Reason.DECODE
    assert isinstance(decode_control(shadow("v2", 1).model_dump_json().encode()), ShadowModel)


def result(i: int, active: str, cand: str, cached: bool = False) -> ShadowResult:
    return ShadowResult(
        id=f"e{i}",
        model="news",
        active_version="v1",
        candidate_version="v2",
        active_label=active,
        active_label_id=0 if active == "a" else 1,
        active_score=0.9,
        candidate_label=cand,
        candidate_label_id=0 if cand == "a" else 1,
        candidate_score=0.8,
        agree=active == cand,
        active_ms=10.0,
        active_batch=10,
        active_cached=cached,
        candidate_ms=40.0,
        candidate_batch=10,
        source_topic="news",
        source_partition=0,
        source_offset=i,
    )


def test_report_figures() -> None:
    rows = [result(0, "a", "a"), result(1, "a", "b"), result(2, "b", "b"), result(3, "b", "b")]
    rows.append(result(3, "b", "b"))  # a redelivered duplicate counts once
    report = build_report("news", "v2", rows, {"e0": "a", "e1": 1, "e2": "a"})
    assert report.events == 4 and report.duplicates == 1
    assert report.agreement == 0.75
    assert report.confusion == {"a": {"a": 1, "b": 1}, "b": {"b": 2}}
    active, cand = report.active[0], report.candidate_figures
    assert active.per_class == {"a": 2, "b": 2} and cand.per_class == {"a": 1, "b": 3}
    assert active.throughput_eps == 1000.0 and cand.throughput_eps == 250.0
    assert active.feedback_accuracy == round(1 / 3, 4)  # e0 right, e1 wrong (id 1), e2 wrong
    assert cand.feedback_accuracy == round(2 / 3, 4)
    assert report.feedback_events == 3


def test_evidence_refusals_name_the_figures() -> None:
    rows = [result(0, "a", "a"), result(1, "a", "b")]
    report = build_report("news", "v2", rows, {"e0": "b"})
    why = check_evidence(report, 0.9, None)
    assert why and "0.5000" in why and "0.9000" in why and "2 events" in why
    why = check_evidence(report, 0.4, 0.5)
    assert why and "feedback accuracy" in why and "0.0000" in why
    assert check_evidence(report, 0.5, None) is None
    empty = build_report("news", "v9", rows, {})
    assert "no shadow results" in (check_evidence(empty, 0.1, None) or "")


def test_compare_tables_render_every_figure() -> None:
    from rich.console import Console

    from admin.render import compare_tables

    rows = [result(0, "a", "a"), result(1, "a", "b"), result(2, "b", "b", cached=True)]
    console = Console(record=True, width=120)
    for table in compare_tables(build_report("news", "v2", rows, {"e0": "a"})):
        console.print(table)
    text = console.export_text()
    assert "agreement 66.67%" in text and "1 with feedback" in text
    assert "active v1" in text and "candidate v2" in text and "label confusion" in text


def test_a_replayed_old_swap_does_not_end_a_newer_canary() -> None:
    book = RolloutBook()
    old_swap = swap("news", "v2", 10)
    assert not book.feed(old_swap)
    assert book.feed(canary("v3", 20))
    assert not book.feed(old_swap)  # replayed at the end of the topic: older than the canary
    assert book.get("news", "canary") is not None
    assert book.feed(swap("news", "v3", 30))
    assert book.get("news", "canary") is None


class _Registry:
    """Loads succeed for v2 (a stand-in engine), fail for anything else; records retirements."""

    def __init__(self) -> None:
        self.retired: list[object] = []

    async def load(self, model: str, version: str, sha256: str | None) -> object:
        from worker.registry import Active

        if version != "v2":
            raise FileNotFoundError(f"{model}@{version}: no weights")
        return Active(version, engine=f"engine-{version}")  # type: ignore[arg-type]

    def retire(self, model: str, engine: object) -> None:
        self.retired.append(engine)


def _item(i: int, key: bytes | None) -> object:
    from types import SimpleNamespace

    return SimpleNamespace(key=key, event=SimpleNamespace(id=f"id-{i}"))


async def test_canary_split_status_and_a_version_that_fails_to_load() -> None:
    from admin.render import rollouts_text
    from worker.registry import Active
    from worker.rollout import Rollouts

    async def send(topic: str, value: bytes, key: bytes | None) -> None:
        raise AssertionError("no shadow here")

    async def topics(model: str) -> None:
        return None

    registry = _Registry()
    rollouts = Rollouts(registry, ["news"], send, "w1", topics)  # type: ignore[arg-type]
    await rollouts.apply(canary("v2", 10, fraction=0.5))
    active = Active("v1", engine="engine-v1")  # type: ignore[arg-type]
    batch = [_item(i, f"user-{i % 7}".encode() if i % 3 else None) for i in range(60)]
    parts = rollouts.split("news", batch, active)  # type: ignore[arg-type]
    assert [p[0].version for p in parts] == ["v2", "v1"]
    for answering, items in parts:
        for item in items:
            assert in_canary(item.key, item.event.id, 0.5) == (answering.version == "v2")
    [status] = rollouts.status()
    assert (status.kind, status.version, status.loaded, status.events) == (
        "canary", "v2", True, len(parts[0][1])
    )  # fmt: skip
    await rollouts.apply(shadow("v9", 11))  # cannot load: reported, nothing else changes
    by_kind = {s.kind: s for s in rollouts.status()}
    assert not by_kind["shadow"].loaded and "no weights" in (by_kind["shadow"].error or "")
    text = rollouts_text([s.model_dump() for s in rollouts.status()])
    assert "canary news@v2 50%" in text and "no weights" in text
    await rollouts.apply(swap("news", "v2", 12))  # completes the canary: its engine is retired
    assert registry.retired == ["engine-v2"]
    assert rollouts.split("news", batch, active) == [(active, batch)]  # type: ignore[arg-type]


def test_sampling_never_fails_on_odd_ids() -> None:
    for odd in ["\ud800", "", "\x00", "长" * 256]:
        assert isinstance(in_shadow(odd, 0.5), bool) and isinstance(in_canary(None, odd, 0.5), bool)
