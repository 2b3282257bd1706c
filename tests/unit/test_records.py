"""The strict decoders of the control, jobs, feedback, status and shadow topics: every reason."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from bus.rejected import REJECTED_RECORDS, skip
from schemas.control import ShadowModel, SwapModel
from schemas.records import (
    Reason,
    Rejection,
    decode_control,
    decode_feedback,
    decode_job,
    decode_shadow,
    decode_status,
)
from schemas.rollout import ShadowResult
from schemas.signing import SIGNATURE_HEADER, header_signature, sign_value
from schemas.status import WorkerStatus
from schemas.strictjson import MAX_DEPTH, too_deep
from schemas.training import Feedback, TrainJob
from trainer.exceptions import JobError
from trainer.jobs import check_promotion

KEY = "k" * 32
BRACKETS = b"[" * 2000 + b"]" * 2000  # the record that stopped every worker (issue 17)
SWAP = SwapModel(model="news", version="v2", sha256="0" * 64, requested_at_ms=1, sequence=7)
STATUS = WorkerStatus(worker_id="w1", host="h", pid=1, at_ms=5, lag={"t[0]": 3})
SHADOW = ShadowResult(
    id="e1", model="news", active_version="v1", candidate_version="v2", active_label="a",
    active_label_id=0, active_score=0.9, candidate_label="b", candidate_label_id=1,
    candidate_score=0.8, agree=False, active_ms=1.0, active_batch=2, candidate_ms=1.5,
    candidate_batch=2, source_topic="news", source_partition=0, source_offset=3,
)  # fmt: skip
JOB = TrainJob(job_id="j1", model="news", train="t.tsv", dev="d.tsv")
FEEDBACK = Feedback(id="f1", model="news", text="好", label="positive")
DECODERS = [decode_control, decode_job, decode_feedback, decode_status, decode_shadow]
VALID = [
    (decode_control, SWAP),
    (decode_job, JOB),
    (decode_feedback, FEEDBACK),
    (decode_status, STATUS),
    (decode_shadow, SHADOW),
]


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def reason(result: object) -> Reason:
    assert isinstance(result, Rejection), result
    assert result.message and "\n" not in result.message
    return result.reason


@pytest.mark.parametrize(("decode", "model"), VALID)
def test_each_decoder_reads_its_own_model_back(decode, model) -> None:
    assert decode(model.model_dump_json().encode()) == model


@pytest.mark.parametrize("decode", DECODERS)
@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (None, Reason.TOMBSTONE),
        (BRACKETS, Reason.DECODE),  # orjson's own limit: no RecursionError
        (b" " * (2 << 20), Reason.TOO_LARGE),  # over every kind's limit
        (b"not json", Reason.DECODE),
        (b'{"a": "\xff"}', Reason.DECODE),
        (b'{"a": "\\ud800"}', Reason.DECODE),  # a lone surrogate
        (b'{"a": NaN}', Reason.DECODE),
        (b'{"a": 1e999}', Reason.DECODE),
        (b"\xef\xbb\xbf{}", Reason.DECODE),  # a byte order mark
        (b"[1, 2]", Reason.SCHEMA),
        (b'"text"', Reason.SCHEMA),
        (nested(MAX_DEPTH + 1), Reason.SCHEMA),
        (b"{}", Reason.SCHEMA),
    ],
)
def test_every_decoder_rejects_without_raising(decode, raw, why) -> None:
    assert reason(decode(raw)) is why


def test_nesting_is_bounded_by_max_depth_exactly() -> None:
    assert not too_deep(json.loads(nested(MAX_DEPTH))) and too_deep(json.loads(nested(33)))
    assert not too_deep("scalar") and not too_deep([])
    status = json.loads(STATUS.model_dump_json())
    ok = decode_status(json.dumps(status | {"extra": json.loads(nested(MAX_DEPTH - 1))}).encode())
    assert isinstance(ok, WorkerStatus)


def test_a_schema_rejection_keeps_the_parsed_object_and_a_one_line_message() -> None:
    bad = decode_job(b'{"job_id": "j9", "model": 5}')
    assert reason(bad) is Reason.SCHEMA and bad.payload == {"job_id": "j9", "model": 5}
    assert "train: Field required" in bad.message
    evil = decode_status(
        b'{"worker_id": "w", "host": "h", "pid": 1, "at_ms": 1, "lag": {"\\n\\u001b[31m": "x"}}'
    )
    assert reason(evil) is Reason.SCHEMA and "\\n\\x1b[31m" in evil.message


def test_a_control_command_of_an_unknown_type_is_told_apart() -> None:
    raw = b'{"type": "teleport", "model": "news"}'
    result = decode_control(raw)
    assert reason(result) is Reason.UNKNOWN_TYPE and "'teleport'" in result.message
    assert reason(decode_control(raw, KEY)) is Reason.UNKNOWN_TYPE


def test_with_a_key_the_header_signature_is_checked_before_parsing() -> None:
    value = SWAP.model_dump_json().encode()
    assert decode_control(value, KEY, sign_value(KEY, value)) == SWAP
    assert reason(decode_control(value, KEY, sign_value("other" * 4, value))) is (
        Reason.BAD_SIGNATURE
    )
    assert reason(decode_control(value, KEY, b"")) is Reason.BAD_SIGNATURE
    # A bad signature refuses the bracket bomb unparsed; a good one still gets it decoded.
    bomb = decode_control(BRACKETS, KEY, b"0" * 64)
    assert reason(bomb) is Reason.BAD_SIGNATURE and bomb.payload is None
    assert reason(decode_control(BRACKETS, KEY, sign_value(KEY, BRACKETS))) is Reason.DECODE
    # Without a key, signatures are not looked at.
    assert decode_control(value, None, b"whatever") == SWAP


def test_without_a_header_the_older_signature_field_is_checked() -> None:
    signed = SWAP.signed(KEY)
    assert decode_control(signed.model_dump_json().encode(), KEY) == signed
    unsigned = decode_control(SWAP.model_dump_json().encode(), KEY)
    assert reason(unsigned) is Reason.UNSIGNED and unsigned.message == "unsigned swap for news"
    forged = signed.model_copy(update={"sequence": 99}).model_dump_json().encode()
    assert reason(decode_control(forged, KEY)) is Reason.BAD_SIGNATURE
    shadow = ShadowModel(model="news", version="v2", fraction=0.5, requested_at_ms=1).signed(KEY)
    assert decode_control(shadow.model_dump_json().encode(), KEY) == shadow


def test_the_signature_header_is_found_among_others() -> None:
    assert header_signature(None) is None and header_signature([("x", b"1")]) is None
    headers = [("x", b"1"), (SIGNATURE_HEADER, b"ab"), (SIGNATURE_HEADER, None)]
    assert header_signature(headers) == b""  # the last one counts; None is no signature
    assert header_signature([(SIGNATURE_HEADER, b"ab")]) == b"ab"


def test_a_promoting_job_is_signed_by_its_header_or_its_field() -> None:
    job = JOB.model_copy(update={"promote": True})
    value = job.model_dump_json().encode()
    check_promotion(job, KEY, sign_value(KEY, value), value)
    check_promotion(job.signed(KEY), KEY)
    with pytest.raises(JobError, match="badly signed"):
        check_promotion(job.signed(KEY), KEY, b"0" * 64, value)  # a bad header wins
    with pytest.raises(JobError, match="unsigned"):
        check_promotion(job, KEY)


def test_a_skipped_record_is_counted_and_logged_once(caplog) -> None:
    where = f"control-{uuid.uuid4().hex}[0]@4"
    rejection = decode_control(BRACKETS)
    assert isinstance(rejection, Rejection)

    def count() -> float:
        return REJECTED_RECORDS.labels("control", "decode")._value.get()

    before = count()
    log = logging.getLogger("test.records")
    with caplog.at_level(logging.INFO, logger="test.records"):
        assert skip(log, "control", where, rejection)
        assert not skip(log, "control", where, rejection)  # read again: noted already
    assert count() == before + 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(f"{where}: control record skipped (decode)")
