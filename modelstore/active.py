"""The store's active pointer per model (`<model>/active.json`) and its command sequence.

The pointer names the version that serves when the control topic names none. It moves only
when a model gets its first version, or through a promotion or swap; never because a newer
version was written. It also keeps the sequence of control commands for the model: every
command gets a number above every earlier one (`next_sequence`), and the pointer records the
number of the command that set it, so a worker can tell an old (replayed) command from the
one in force.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from modelstore.exceptions import ModelStoreError

ACTIVE_FILE = "active.json"
HISTORY_KEPT = 20


class ActiveRecord(BaseModel):
    """What `active.json` holds."""

    version: str | None = None
    history: list[str] = Field(default_factory=list)  # earlier active versions, oldest first
    sequence: int = 0  # the command sequence that set `version` (0: no command)
    last_sequence: int = 0  # the highest sequence handed out for this model
    updated_at: str = ""


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ActivePointer:
    """Reads and writes one model's `active.json` (atomically: readers never see half)."""

    def __init__(self, model_dir: Path) -> None:
        self.path = model_dir / ACTIVE_FILE

    def read(self) -> ActiveRecord:
        if not self.path.is_file():
            return ActiveRecord()
        try:
            return ActiveRecord.model_validate_json(self.path.read_text(encoding="utf-8"))
        except (ValidationError, OSError) as exc:
            raise ModelStoreError(f"{self.path}: unreadable active pointer ({exc})") from exc

    def set(self, version: str, sequence: int | None = None) -> ActiveRecord:
        """Make `version` active; `sequence` is the command that did it (None: allocate one)."""
        record = self.read()
        seq = sequence if sequence is not None else self._allocate(record)
        history = list(record.history)
        if record.version and record.version != version:
            history.append(record.version)
        new = ActiveRecord(
            version=version,
            history=history[-HISTORY_KEPT:],
            sequence=seq,
            last_sequence=max(record.last_sequence, seq),
            updated_at=_utc_now(),
        )
        self._write(new)
        return new

    def next_sequence(self) -> int:
        """A command sequence above every one handed out so far (recorded before it is used)."""
        record = self.read()
        seq = self._allocate(record)
        self._write(record.model_copy(update={"last_sequence": seq}))
        return seq

    @staticmethod
    def _allocate(record: ActiveRecord) -> int:
        # Milliseconds since the epoch, so that sequences are also comparable with the
        # `requested_at_ms` of commands published before sequences existed.
        return max(int(time.time() * 1000), record.last_sequence + 1, record.sequence + 1)

    def _write(self, record: ActiveRecord) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(record.model_dump(), indent=2))
        os.replace(tmp, self.path)
