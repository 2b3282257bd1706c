"""Promotion: the dev-accuracy gate (pure) and the swap request (store pointer + control topic)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from bus.control import CONTROL_TOPIC, publish_control
from bus.settings import KafkaSettings
from modelstore.files import file_sha256
from modelstore.onnx_export import try_ensure_onnx
from modelstore.store import ModelStore
from schemas.card import ModelCard
from schemas.control import SwapModel
from trainer.exceptions import PromotionRefused


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    candidate: float | None
    active: float | None
    reason: str


def gate(candidate: float | None, active: float | None, force: bool = False) -> GateDecision:
    """Promote when the candidate's dev accuracy is at least the active version's (or forced)."""
    if force:
        return GateDecision(True, candidate, active, "forced")
    if active is None:
        return GateDecision(True, candidate, active, "no active version to compare with")
    if candidate is None:
        return GateDecision(False, candidate, active, "candidate has no dev accuracy")
    if candidate >= active:
        return GateDecision(
            True, candidate, active, f"dev accuracy {candidate:.4f} >= {active:.4f}"
        )
    return GateDecision(False, candidate, active, f"dev accuracy {candidate:.4f} < {active:.4f}")


def _dev_accuracy_on(card: ModelCard, sha256: str | None) -> float | None:
    if sha256 and card.dev_metrics.get("sha256") == sha256:
        return card.dev_metrics.get("accuracy")
    return None


def active_accuracy_on_dev(
    store: ModelStore, model: str, candidate: ModelCard
) -> tuple[str | None, float | None]:
    """(active version, its dev accuracy on the candidate's dev set), evaluating it if needed."""
    active = store.active(model)
    if active is None or active == candidate.version:
        return active, None
    dev_sha = candidate.dev_metrics.get("sha256")
    known = _dev_accuracy_on(store.card(model, active), dev_sha)
    if known is not None:
        return active, float(known)
    dev_path = candidate.dev_metrics.get("data")
    if not dev_path:
        return active, None
    from trainer.evaluate import evaluate_dir

    if not Path(dev_path).is_file() or file_sha256(Path(dev_path)) != dev_sha:
        return active, None  # the dev file moved or changed: the comparison would not be fair
    max_len = int(candidate.hyperparameters.get("max_seq_len", 512))
    report = evaluate_dir(store.require(model, active), dev_path, max_seq_len=max_len)
    return active, report.accuracy


def check_gate(store: ModelStore, model: str, version: str, force: bool = False) -> GateDecision:
    """Apply the gate to a stored version; raise PromotionRefused with both numbers if it fails."""
    card = store.card(model, version)
    active_version, active_acc = active_accuracy_on_dev(store, model, card)
    if (
        active_version is not None
        and active_version != version
        and active_acc is None
        and not force
    ):
        raise PromotionRefused(
            model,
            version,
            card.dev_metrics.get("accuracy"),
            None,
            active_version,
            "the active version cannot be measured on the candidate's dev set",
        )
    decision = gate(card.dev_metrics.get("accuracy"), active_acc, force)
    if not decision.allowed:
        raise PromotionRefused(model, version, decision.candidate, decision.active, active_version)
    return decision


async def request_swap(
    kafka: KafkaSettings,
    store: ModelStore,
    model: str,
    version: str,
    requested_by: str,
    key: str | None = None,
    control_topic: str = CONTROL_TOPIC,
) -> SwapModel:
    """Make `version` active everywhere: validate it, publish a signed SwapModel, move the pointer.

    The command is published before the store's pointer moves, so a broker failure changes nothing.
    Its sequence comes from the store and is recorded with the pointer, so that workers ignore
    any older command (a replay) once this one is in force.
    """
    path = store.require(model, version)
    await asyncio.to_thread(try_ensure_onnx, path)  # ONNX graphs in place before workers load
    message = SwapModel(
        model=model,
        version=version,
        sha256=store.weights_sha256(model, version),
        requested_at_ms=int(time.time() * 1000),
        requested_by=requested_by,
        previous=store.active(model),
        sequence=store.next_sequence(model),
    )
    await publish_control(kafka, message, key=key, topic=control_topic)
    store.set_active(model, version, message.sequence)
    return message
