"""Corrected labels kept durably (append-only JSON lines in the store) and feedback rounds."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

from modelstore.names import validate_name
from modelstore.store import ModelStore
from schemas.training import Feedback
from trainer.data import Example, load_dataset, write_jsonl
from trainer.exceptions import JobError

FEEDBACK_DIR = ".feedback"
LOG_FILE = "feedback.jsonl"
STATE_FILE = "state.json"
REVIEW_SOURCE = "review"  # Feedback.source of a person's answer to a review request


class FeedbackLog:
    """`<store>/.feedback/<model>/feedback.jsonl` plus how many lines earlier rounds used."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self.root = store.root / FEEDBACK_DIR
        self._lines: dict[str, int] = {}

    def _dir(self, model: str) -> Path:
        return self.root / validate_name(model, "model name")

    def append(self, model: str, event: Feedback, label: int) -> int:
        """Append one corrected example (fsynced); returns the number of lines in the log."""
        path = self._dir(model) / LOG_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        count = self.count(model)
        row = {"id": event.id, "text": event.text, "text_pair": event.text_pair, "label": label}
        if event.source:
            row["source"] = event.source
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._lines[model] = count + 1
        return count + 1

    def count(self, model: str) -> int:
        if model not in self._lines:
            path = self._dir(model) / LOG_FILE
            self._lines[model] = sum(1 for _ in path.open("rb")) if path.is_file() else 0
        return self._lines[model]

    def state(self, model: str) -> dict[str, int]:
        path = self._dir(model) / STATE_FILE
        if not path.is_file():
            return {"trained_upto": 0, "rounds": 0}
        state: dict[str, int] = json.loads(path.read_text(encoding="utf-8"))  # its own file
        return state

    def pending(self, model: str) -> int:
        return self.count(model) - self.state(model)["trained_upto"]

    def mark_trained(self, model: str, upto: int) -> None:
        state = {"trained_upto": upto, "rounds": self.state(model)["rounds"] + 1}
        tmp = self._dir(model) / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, self._dir(model) / STATE_FILE)

    def examples(self, model: str, start: int, end: int, review_weight: int = 1) -> list[Example]:
        """Lines [start, end) of the log; a later correction of the same id replaces an earlier
        one; a reviewed example (source "review") is repeated `review_weight` times."""
        latest: dict[str, tuple[Example, bool]] = {}
        with (self._dir(model) / LOG_FILE).open(encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if start <= i < end:
                    row = json.loads(line)
                    latest.pop(row["id"], None)
                    example = Example(row["text"], int(row["label"]), row.get("text_pair"))
                    latest[row["id"]] = (example, row.get("source") == REVIEW_SOURCE)
        return [
            e for e, reviewed in latest.values() for _ in range(review_weight if reviewed else 1)
        ]

    def round_file(self, model: str, number: int) -> Path:
        return self._dir(model) / f"round-{number:04d}.jsonl"


def original_train_file(store: ModelStore, model: str, version: str) -> str | None:
    """The nearest ancestor's training file that is not a feedback round snapshot."""
    seen: set[str] = set()
    current: str | None = version
    while current and current not in seen and store.exists(model, current):
        seen.add(current)
        card = store.card(model, current)
        train = (getattr(card, "splits", None) or {}).get("train")
        if isinstance(train, str) and train and FEEDBACK_DIR not in Path(train).parts:
            return train
        current = card.parent
    return None


def build_round(
    log: FeedbackLog,
    model: str,
    labels: list[str],
    replay_file: str | None,
    replay_rows: int,
    seed: int,
    review_weight: int = 1,
) -> tuple[Path, int, int, int]:
    """Write new feedback (reviewed examples `review_weight` times) plus a replay sample to a
    round file: (path, upto, feedback rows, replay rows)."""
    upto = log.count(model)
    fresh = log.examples(model, log.state(model)["trained_upto"], upto, review_weight)
    if not fresh:
        raise JobError(f"no new feedback for {model}")
    replay: list[Example] = []
    if replay_file and replay_rows and Path(replay_file).is_file():
        rows = load_dataset(replay_file, labels, skip_bad=True).examples
        replay = random.Random(seed).sample(rows, min(replay_rows, len(rows)))
    examples = fresh + replay
    random.Random(seed).shuffle(examples)
    path = log.round_file(model, log.state(model)["rounds"] + 1)
    write_jsonl(path, examples, labels)
    return path, upto, len(fresh), len(replay)
