"""Strict decoders for every topic kind but the input: control commands, training jobs,
feedback, heartbeats, shadow results and review requests.

Each is one bounded, validating pass (`schemas.strictjson`: size before parsing, orjson,
nesting at most `MAX_DEPTH`), then the kind's pydantic model. None raises: a decoder returns
the model or a `Rejection` with a reason (the `reason` label of
`streamclf_rejected_records_total`) and a one-line message. With a control key, a control
record's header signature is checked on the raw bytes before anything is parsed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.control import CONTROL_TYPES, AnyControl, control_adapter
from schemas.review import ReviewAnswer, ReviewRequest
from schemas.rollout import ShadowResult
from schemas.signing import verify_value
from schemas.status import WorkerStatus
from schemas.strictjson import MAX_DEPTH, Refused, errors_line, parse_bounded, printable, too_deep
from schemas.training import Feedback, TrainJob

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
KiB = 1024
CONTROL_MAX_BYTES = 64 * KiB
JOB_MAX_BYTES = 64 * KiB
FEEDBACK_MAX_BYTES = 1024 * KiB
STATUS_MAX_BYTES = 1024 * KiB
SHADOW_MAX_BYTES = 64 * KiB
REVIEW_MAX_BYTES = 2048 * KiB  # carries the event's text


class Reason(StrEnum):
    TOMBSTONE = "tombstone"  # null value
    TOO_LARGE = "too_large"  # over the kind's size limit
    DECODE = "decode"  # not UTF-8 JSON, or what UTF-8 cannot carry, NaN, overflowing numbers
    SCHEMA = "schema"  # JSON, but not the kind's model (or nested deeper than MAX_DEPTH)
    UNKNOWN_TYPE = "unknown_type"  # a control command of a type this version does not know
    UNSIGNED = "unsigned"  # a control key is set and the record carries no signature
    BAD_SIGNATURE = "bad_signature"  # the signature is not the key's
    HEADER = "header"  # the client cannot parse the record (a header name that is not UTF-8)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record is not a message of its kind. `payload` is the parsed JSON object when
    parsing got that far (a reply may take an id from it), else None."""

    reason: Reason
    message: str
    payload: dict[str, Any] | None = None


def decode_control(
    value: bytes | None,
    key: str | None = None,
    signature: bytes | None = None,
    max_bytes: int = CONTROL_MAX_BYTES,
) -> AnyControl | Rejection:
    """A control command. With `key`: a header `signature` must be the HMAC of `value`
    (checked before parsing); without one, the command's `signature` field must verify."""
    if value is None:
        return Rejection(Reason.TOMBSTONE, "null value (tombstone)")
    if len(value) > max_bytes:
        return Rejection(Reason.TOO_LARGE, f"value is {len(value)} bytes; limit is {max_bytes}")
    if key and signature is not None and not verify_value(key, value, signature):
        return Rejection(
            Reason.BAD_SIGNATURE, "badly signed: the header signature is not our key's"
        )
    payload = _object(value, max_bytes)
    if isinstance(payload, Rejection):
        return payload
    kind = payload.get("type")
    if isinstance(kind, str) and kind not in CONTROL_TYPES:
        return Rejection(
            Reason.UNKNOWN_TYPE, f"unknown command type {printable(kind, 40)!r}", payload
        )
    command = _validate(control_adapter.validate_python, payload)
    if isinstance(command, Rejection) or not key or signature is not None:
        return command
    if not command.verify(key):
        reason = Reason.BAD_SIGNATURE if command.signature else Reason.UNSIGNED
        why = "badly signed" if command.signature else "unsigned"
        what = f"{command.type} for {printable(command.model, 60)}"
        return Rejection(reason, f"{why} {what}", payload)
    return command


def decode_job(value: bytes | None, max_bytes: int = JOB_MAX_BYTES) -> TrainJob | Rejection:
    """A training job (its signature matters only to promotion: `trainer.jobs`)."""
    return _decode(value, TrainJob, max_bytes)


def decode_feedback(
    value: bytes | None, max_bytes: int = FEEDBACK_MAX_BYTES
) -> Feedback | Rejection:
    return _decode(value, Feedback, max_bytes)


def decode_status(
    value: bytes | None, max_bytes: int = STATUS_MAX_BYTES
) -> WorkerStatus | Rejection:
    """A worker heartbeat from the status topic."""
    return _decode(value, WorkerStatus, max_bytes)


def decode_shadow(
    value: bytes | None, max_bytes: int = SHADOW_MAX_BYTES
) -> ShadowResult | Rejection:
    return _decode(value, ShadowResult, max_bytes)


def decode_review(
    value: bytes | None, max_bytes: int = REVIEW_MAX_BYTES
) -> ReviewRequest | Rejection:
    """A review request from a review topic."""
    return _decode(value, ReviewRequest, max_bytes)


def decode_answer(
    value: bytes | None, max_bytes: int = REVIEW_MAX_BYTES
) -> ReviewAnswer | Rejection:
    """A reviewer's answer (a line of a `streamclf review send` file)."""
    return _decode(value, ReviewAnswer, max_bytes)


def _decode(value: bytes | None, model: type[M], max_bytes: int) -> M | Rejection:
    if value is None:
        return Rejection(Reason.TOMBSTONE, "null value (tombstone)")
    payload = _object(value, max_bytes)
    if isinstance(payload, Rejection):
        return payload
    return _validate(model.model_validate, payload)


def _object(value: bytes, max_bytes: int) -> dict[str, Any] | Rejection:
    parsed = parse_bounded(value, max_bytes)
    if isinstance(parsed, Refused):
        return Rejection(Reason(parsed.kind), parsed.message)
    if not isinstance(parsed, dict):
        return Rejection(Reason.SCHEMA, f"expected a JSON object, got {type(parsed).__name__}")
    if too_deep(parsed):
        return Rejection(Reason.SCHEMA, f"nested deeper than {MAX_DEPTH} levels")
    return parsed


def _validate(validate: Callable[[dict[str, Any]], T], payload: dict[str, Any]) -> T | Rejection:
    try:
        return validate(payload)
    except ValidationError as exc:
        return Rejection(Reason.SCHEMA, errors_line(exc), payload)
    except (ValueError, TypeError, RecursionError) as exc:  # a validator's own refusal
        return Rejection(Reason.SCHEMA, printable(f"{type(exc).__name__}: {exc}"), payload)
