"""JSON Schemas of the stream's wire models, for consumers that are not written in Python.

Generated from the pydantic models (the contract); `streamclf schemas export` writes them to
`schemas/json/` and a test keeps those files current.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from schemas.deadletter import DeadLetter
from schemas.events import LabelledEvent, TextEvent
from schemas.review import ReviewRequest
from schemas.rollout import ShadowResult

PUBLISHED: dict[str, type[BaseModel]] = {
    "TextEvent": TextEvent,
    "LabelledEvent": LabelledEvent,
    "DeadLetter": DeadLetter,
    "ShadowResult": ShadowResult,
    "ReviewRequest": ReviewRequest,
}


def json_schema(name: str) -> dict[str, Any]:
    """The draft 2020-12 schema of one published model, as it is validated (mode 'validation')."""
    schema = PUBLISHED[name].model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def rendered() -> dict[str, str]:
    """File name -> file text for every published model."""
    return {
        f"{name}.schema.json": json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"
        for name in PUBLISHED
    }
