"""Probe texts for checking a backend against fp32: the version's own dev texts when the
trainer recorded them (`probe_texts.jsonl` in the version directory), else the sample of real
Chinese sentences shipped with the package (`assets/probe_texts_zh.jsonl`, see PROBE_TEXTS.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PROBE_FILE = "probe_texts.jsonl"  # in a version directory: {"text", "text_pair"?} per line
MIN_PROBES = 256
MAX_PROBE_CHARS = 256  # longer texts are cut: agreement is about the model, not the length


@dataclass(frozen=True)
class ProbeSet:
    texts: list[str]
    pairs: list[str | None]
    source: str  # "version" | "shipped" | "version+shipped"


def shipped_path() -> Path:
    return Path(str(resources.files("modelstore") / "assets" / "probe_texts_zh.jsonl"))


def read_jsonl(path: Path) -> list[tuple[str, str | None]]:
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        row = json.loads(line)
        text, pair = str(row["text"]), row.get("text_pair")
        if text.strip():
            rows.append((text[:MAX_PROBE_CHARS], str(pair)[:MAX_PROBE_CHARS] if pair else None))
    return rows


def write_probe_file(
    version_dir: Path, rows: list[tuple[str, str | None]], limit: int = 512
) -> None:
    """Record (up to `limit`) dev texts in a version directory for later probing."""
    lines = [
        json.dumps({"text": t, **({"text_pair": p} if p else {})}, ensure_ascii=False)
        for t, p in rows[:limit]
    ]
    (version_dir / PROBE_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")


def probe_set(version_dir: Path | None, count: int = MIN_PROBES) -> ProbeSet:
    """`count` probe texts: the version's first, topped up from the shipped set."""
    own: list[tuple[str, str | None]] = []
    if version_dir is not None and (version_dir / PROBE_FILE).is_file():
        own = read_jsonl(version_dir / PROBE_FILE)[:count]
    rows = own
    if len(own) < count:
        rows = own + read_jsonl(shipped_path())[: count - len(own)]
    source = "version" if len(own) >= count else ("version+shipped" if own else "shipped")
    return ProbeSet([t for t, _ in rows], [p for _, p in rows], source)
