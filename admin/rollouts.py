"""Shadow and canary from the operator's side: publish, wait for workers, gather the evidence."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from admin.compare import CompareReport, build_report
from admin.swapping import SwapRefused, check_version, default_requester, live_workers, serves
from bus.control import CONTROL_TOPIC, STATUS_TOPIC, publish_control
from bus.rejected import skip
from bus.rollout import RolloutBook, read_rollouts, read_to_end
from bus.settings import KafkaSettings
from bus.topics import list_topics
from modelstore.store import ModelStore
from schemas.control import CanaryModel, RolloutCommand, RolloutKind, ShadowModel
from schemas.records import Rejection, decode_feedback, decode_shadow
from schemas.rollout import ShadowResult
from schemas.status import WorkerStatus

log = logging.getLogger(__name__)
FEEDBACK_TOPIC = "streamclf.train.feedback"
KIND: dict[RolloutKind, type[ShadowModel] | type[CanaryModel]] = {
    "shadow": ShadowModel,
    "canary": CanaryModel,
}


async def request_rollout(
    kafka: KafkaSettings,
    store: ModelStore,
    kind: RolloutKind,
    model: str,
    version: str,
    fraction: float,
    key: str | None = None,
    topic: str = CONTROL_TOPIC,
    requested_by: str | None = None,
) -> RolloutCommand:
    """Check `model@version` like a swap (exists, weights load, not the active one), publish."""
    sha256 = check_version(store, model, version)
    if version == store.default_version(model):
        raise SwapRefused(f"{model}@{version} is the active version; {kind} another one")
    if not 0 < fraction <= 1:
        raise SwapRefused(f"--fraction must be in (0, 1], got {fraction}")
    command = KIND[kind](
        model=model,
        version=version,
        sha256=sha256,
        fraction=fraction,
        requested_at_ms=int(time.time() * 1000),
        requested_by=requested_by or default_requester(),
        sequence=store.next_sequence(model),
    )
    await publish_control(kafka, command, key=key, topic=topic)
    return command


async def stop_rollout(
    kafka: KafkaSettings,
    store: ModelStore,
    kind: RolloutKind,
    model: str,
    key: str | None = None,
    topic: str = CONTROL_TOPIC,
    requested_by: str | None = None,
) -> RolloutCommand:
    """End the `kind` rollout of `model` in force (`SwapRefused` when there is none); its
    sequence comes from the store, like a swap's, so it ranks above the command it ends."""
    book = await read_rollouts(kafka, topic, key)
    current = book.get(model, kind)
    if current is None:
        raise SwapRefused(f"no {kind} of {model} is in force")
    command = KIND[kind](
        model=model,
        version=current.version,
        stop=True,
        requested_at_ms=int(time.time() * 1000),
        requested_by=requested_by or default_requester(),
        sequence=store.next_sequence(model),
    )
    await publish_control(kafka, command, key=key, topic=topic)
    return command


async def rollouts_in_force(
    kafka: KafkaSettings, topic: str = CONTROL_TOPIC, key: str | None = None
) -> RolloutBook:
    return await read_rollouts(kafka, topic, key)


# -- waiting for the workers ---------------------------------------------------------------
@dataclass
class RolloutWait:
    state: str  # ok | failed | timeout | no-workers
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _done(status: WorkerStatus, command: RolloutCommand) -> tuple[bool, str | None]:
    """(applied, error) for one worker's heartbeat."""
    mine = [r for r in status.rollouts if r.model == command.model and r.kind == command.type]
    if command.stop:
        return not mine and status.at_ms > command.requested_at_ms, None
    for r in mine:
        if r.requested_at_ms == command.requested_at_ms:
            return r.loaded, r.error
    return False, None


async def wait_rollout(
    kafka: KafkaSettings,
    command: RolloutCommand,
    timeout_s: float,
    stale_s: float,
    status_topic: str = STATUS_TOPIC,
) -> RolloutWait:
    """Poll heartbeats until every live worker of the model applied `command` (or failed)."""
    deadline = time.monotonic() + timeout_s
    outcome = RolloutWait("timeout")
    while time.monotonic() < deadline:
        live, _ = await live_workers(kafka, stale_s, 2 * stale_s, status_topic)
        mine = [s for s in live if serves(s, command.model)]
        results = {s.worker_id: _done(s, command) for s in mine}
        outcome = RolloutWait(
            "timeout",
            [w for w, (ok, err) in results.items() if not ok and not err],
            [f"{w}: {err}" for w, (_, err) in results.items() if err],
        )
        if mine and not outcome.waiting:
            outcome.state = "failed" if outcome.errors else "ok"
            return outcome
        if not mine and time.monotonic() > deadline - timeout_s + stale_s:
            outcome.state = "no-workers"
            return outcome
        await asyncio.sleep(0.5)
    return outcome


# -- evidence --------------------------------------------------------------------------------
async def gather_report(
    kafka: KafkaSettings,
    model: str,
    version: str,
    shadow_topics: list[str] | None = None,
    feedback_topic: str = FEEDBACK_TOPIC,
) -> CompareReport:
    """Read the shadow topics (all `*.shadow` by default) and the feedback topic; the report."""
    topics = shadow_topics or [t for t in await list_topics(kafka) if t.endswith(".shadow")]
    results: list[ShadowResult] = []
    for record in await read_to_end(kafka, topics) if topics else []:
        result = decode_shadow(record.value)
        if isinstance(result, Rejection):
            skip(log, "shadow", record.where, result)
        else:
            results.append(result)
    feedback: dict[str, str | int] = {}
    for record in await read_to_end(kafka, [feedback_topic], quiet_s=1.0):
        event = decode_feedback(record.value)
        if isinstance(event, Rejection):
            skip(log, "feedback", record.where, event)
        elif event.model in (None, model):
            feedback[event.id] = event.label
    return build_report(model, version, results, feedback)


def check_evidence(
    report: CompareReport, min_agreement: float | None, min_feedback_accuracy: float | None
) -> str | None:
    """Why promotion is refused on this evidence, with the figures; None when it passes."""
    name = f"{report.model}@{report.candidate}"
    if report.events == 0 and (min_agreement is not None or min_feedback_accuracy is not None):
        return f"no shadow results for {name}: run `streamclf models shadow` first"
    if min_agreement is not None and (report.agreement or 0.0) < min_agreement:
        return (
            f"shadow agreement of {name} is {report.agreement:.4f} over {report.events} events, "
            f"below the required {min_agreement:.4f}"
        )
    if min_feedback_accuracy is not None:
        acc = report.candidate_figures.feedback_accuracy if report.candidate_figures else None
        if acc is None:
            return f"no feedback labels for the {report.events} shadowed events of {name}"
        if acc < min_feedback_accuracy:
            active = ", ".join(
                f"{a.version} {a.feedback_accuracy:.4f}"
                for a in report.active
                if a.feedback_accuracy is not None
            )
            return (
                f"feedback accuracy of {name} is {acc:.4f} on {report.feedback_events} labelled "
                f"events (active: {active}), below the required {min_feedback_accuracy:.4f}"
            )
    return None
