"""The JSON Schemas in schemas/json are current and accept what the pydantic models accept."""

from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator

from admin.commands.schemas_cmd import SCHEMA_DIR, stale_files
from schemas.deadletter import DeadLetter, ErrorKind
from schemas.events import LabelledEvent, LabelScore, TextEvent
from schemas.jsonschema import PUBLISHED


def test_committed_schemas_are_current() -> None:
    assert stale_files(SCHEMA_DIR) == [], "run `streamclf schemas export`"


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_model_output_validates_and_broken_events_do_not() -> None:
    labelled = LabelledEvent(
        id="e1", label="体育", label_id=2, score=0.9,
        scores=[LabelScore(label="体育", label_id=2, score=0.9)],
        model="news", version="v3", source_topic="news", source_partition=1, source_offset=7,
    )  # fmt: skip
    letter = DeadLetter(
        kind=ErrorKind.DECODE, message="not JSON", source_topic="news", source_partition=0,
        source_offset=3,
    )  # fmt: skip
    for name, obj in (
        ("LabelledEvent", labelled),
        ("DeadLetter", letter),
        ("TextEvent", TextEvent(id="a", text="北京", metadata={"k": 1})),
    ):
        assert list(_validator(name).iter_errors(json.loads(obj.model_dump_json()))) == []
    assert list(_validator("LabelledEvent").iter_errors({"id": "e1"}))
    assert list(
        _validator("DeadLetter").iter_errors({**letter.model_dump(mode="json"), "kind": "x"})
    )
    assert list(_validator("TextEvent").iter_errors({"id": "a", "text": 5}))


def test_check_fails_on_a_stale_folder(tmp_path: Path) -> None:
    (tmp_path / "TextEvent.schema.json").write_text("{}")
    assert "TextEvent.schema.json" in stale_files(tmp_path)
    assert len(stale_files(tmp_path)) == len(PUBLISHED)
