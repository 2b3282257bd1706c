"""Probe texts for checking a backend against fp32: the version's own dev texts when the
trainer recorded them (`probe_texts.jsonl` in the version directory), else the sample of real
Chinese sentences shipped with the package (`assets/probe_texts_zh.jsonl`, see PROBE_TEXTS.md).

The trainer writes each dev text with its label name, so a backend's accuracy change (not only
its agreement with fp32) can be measured on them; the shipped texts carry no labels."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

PROBE_FILE = "probe_texts.jsonl"  # in a version directory: {"text", "text_pair"?, "label"?}
MIN_PROBES = 256
MAX_PROBE_CHARS = 256  # longer texts are cut: agreement is about the model, not the length


@dataclass(frozen=True)
class ProbeSet:
    texts: list[str]
    pairs: list[str | None]
    source: str  # "version" | "shipped" | "version+shipped"
    labels: list[str | None] = field(default_factory=list)  # the gold label name, when known

    def label_ids(self, label2id: dict[str, int]) -> list[int | None]:
        """Gold label ids by the model's own label names (None: unlabelled or unknown)."""
        labels = self.labels or [None] * len(self.texts)
        return [None if name is None else label2id.get(name) for name in labels]


Row = tuple[str, str | None, str | None]  # text, text_pair, label name


def shipped_path() -> Path:
    return Path(str(resources.files("modelstore") / "assets" / "probe_texts_zh.jsonl"))


def _row(line: str) -> Row | None:
    row = json.loads(line)
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        return None
    text, pair, label = row["text"], row.get("text_pair"), row.get("label")
    if not text.strip():
        return None
    return (
        text[:MAX_PROBE_CHARS],
        pair[:MAX_PROBE_CHARS] if isinstance(pair, str) and pair else None,
        label if isinstance(label, str) else None,
    )


def read_jsonl(path: Path) -> list[Row]:
    """The probe rows of a file; unreadable lines are skipped (one warning names how many)."""
    rows: list[Row] = []
    bad = 0
    for line in path.read_text(encoding="utf-8", errors="replace").split("\n"):
        if not line.strip():
            continue
        try:
            row = _row(line)
        except ValueError:
            row = None
        if row is None:
            bad += 1
        else:
            rows.append(row)
    if bad:
        log.warning("%s: %d unreadable probe line(s) skipped", path, bad)
    return rows


def write_probe_file(
    version_dir: Path,
    rows: list[tuple[str, str | None]],
    limit: int = 512,
    labels: list[str] | None = None,
) -> None:
    """Record (up to `limit`) dev texts, with their label names when given, for probing."""
    named: list[str | None] = list(labels) if labels else [None] * len(rows)
    lines = [
        json.dumps(
            {"text": t, **({"text_pair": p} if p else {}), **({"label": y} if y else {})},
            ensure_ascii=False,
        )
        for (t, p), y in zip(rows[:limit], named[:limit], strict=False)
    ]
    (version_dir / PROBE_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def probe_set(version_dir: Path | None, count: int = MIN_PROBES) -> ProbeSet:
    """`count` probe texts: the version's first, topped up from the shipped set."""
    own: list[Row] = []
    if version_dir is not None and (version_dir / PROBE_FILE).is_file():
        try:
            own = read_jsonl(version_dir / PROBE_FILE)[:count]
        except OSError as exc:
            log.warning("%s: unreadable (%s); using the shipped probe texts", version_dir, exc)
    rows = own
    if len(own) < count:
        shipped: list[Row] = [(t, p, None) for t, p, _ in read_jsonl(shipped_path())]
        rows = own + shipped[: count - len(own)]
    source = "version" if len(own) >= count else ("version+shipped" if own else "shipped")
    return ProbeSet([r[0] for r in rows], [r[1] for r in rows], source, [r[2] for r in rows])


def calibration_set(version_dir: Path | None, count: int = 128) -> ProbeSet:
    """Texts to calibrate static int8 on: the version's dev texts after the probe texts (so the
    accuracy check does not run on what calibrated it), topped up from the shipped ones."""
    own: list[Row] = []
    if version_dir is not None and (version_dir / PROBE_FILE).is_file():
        try:
            own = read_jsonl(version_dir / PROBE_FILE)[MIN_PROBES : MIN_PROBES + count]
        except OSError as exc:
            log.warning("%s: unreadable (%s); calibrating on shipped texts", version_dir, exc)
    shipped = read_jsonl(shipped_path())
    rows = own + shipped[::-1][: count - len(own)]  # the shipped probes' far end first
    return ProbeSet([r[0] for r in rows], [r[1] for r in rows], "calibration")
