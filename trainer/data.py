"""Reading training data: UER TSV and JSON lines, with errors that name file, line and reason.

An error about a file names the line and the column and says what is wrong, but never quotes
the file: a job may name a file it should not read, and errors travel on the results topic.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelstore.files import file_sha256
from trainer.exceptions import DataError

JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass(frozen=True)
class Example:
    text: str
    label: int
    text_pair: str | None = None


@dataclass
class Dataset:
    """The valid examples of one file and what was skipped."""

    path: str
    examples: list[Example]
    sha256: str
    skipped: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rows(self) -> int:
        return len(self.examples)

    def label_counts(self) -> dict[int, int]:
        return dict(sorted(Counter(e.label for e in self.examples).items()))


def _label_from_id(raw: str | int, labels: Sequence[str], quote: bool = False) -> int:
    what = f"bad label {raw!r}" if quote else "column label"
    try:
        label = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: not an integer id") from None
    if isinstance(raw, bool) or not 0 <= label < len(labels):
        raise ValueError(f"{what}: ids go from 0 to {len(labels) - 1}")
    return label


def parse_label(raw: object, labels: Sequence[str], quote: bool = True) -> int:
    """An id (int or digit string) or a label name -> the label id.

    `quote` puts the value in the error (a feedback event's own label); rows of files never.
    """
    if isinstance(raw, str) and raw in labels:
        return labels.index(raw)
    if isinstance(raw, int) and not isinstance(raw, bool):
        return _label_from_id(raw, labels, quote)
    if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        return _label_from_id(raw.strip(), labels, quote)
    shown = ", ".join(labels[:8]) + (", ..." if len(labels) > 8 else "")
    what = f"bad label {raw!r}" if quote else "column label"
    raise ValueError(f"{what}: not an id or one of the model's labels ({shown})")


def _text(value: object, column: str) -> str:
    if value is None:
        raise ValueError(f"missing column {column}")
    if not isinstance(value, str):
        raise ValueError(f"{column} is not a string")
    if not value.strip():
        raise ValueError(f"empty text in {column}")
    return value


def _tsv_rows(path: Path, labels: Sequence[str]) -> Iterator[tuple[int, Example | str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
        columns = {name.strip(): i for i, name in enumerate(header)}
        if "label" not in columns or "text_a" not in columns:
            raise DataError(
                str(path),
                1,
                f"the header must name the columns 'label' and 'text_a' (it has {len(header)} "
                "tab-separated cells)",
            )
        for lineno, line in enumerate(fh, start=2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            cells = line.split("\t")
            try:
                label = _label_from_id(_cell(cells, columns, "label"), labels)
                text = _text(_cell(cells, columns, "text_a"), "text_a")
                pair = None
                if "text_b" in columns:
                    pair = _text(_cell(cells, columns, "text_b"), "text_b")
                yield lineno, Example(text, label, pair)
            except ValueError as exc:
                yield lineno, str(exc)


def _cell(cells: list[str], columns: dict[str, int], name: str) -> str:
    index = columns[name]
    if index >= len(cells):
        raise ValueError(f"missing column {name} (row has {len(cells)} of {len(columns)} columns)")
    return cells[index]


def _jsonl_rows(path: Path, labels: Sequence[str]) -> Iterator[tuple[int, Example | str]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, f"not valid JSON ({exc.msg})"
                continue
            try:
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                if "label" not in row:
                    raise ValueError("missing column label")
                label = parse_label(row["label"], labels, quote=False)
                text = _text(row.get("text"), "text")
                pair = row.get("text_pair")
                pair = _text(pair, "text_pair") if pair is not None else None
                yield lineno, Example(text, label, pair)
            except ValueError as exc:
                yield lineno, str(exc)


def load_dataset(path: str | Path, labels: Sequence[str], skip_bad: bool = False) -> Dataset:
    """Read a UER TSV (header line) or JSON-lines file; labels are checked against `labels`.

    A bad row raises DataError naming file, line and reason, unless `skip_bad` is set, in which
    case it is counted in `Dataset.skipped`.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), None, "no such file")
    reader = _jsonl_rows if path.suffix.lower() in JSON_SUFFIXES else _tsv_rows
    examples: list[Example] = []
    reasons: Counter[str] = Counter()
    try:
        for lineno, row in reader(path, labels):
            if isinstance(row, Example):
                examples.append(row)
            elif skip_bad:
                reasons[row.split(":")[0].split(" (")[0]] += 1
            else:
                raise DataError(str(path), lineno, row)
    except UnicodeDecodeError as exc:
        raise DataError(str(path), None, f"not UTF-8 ({exc.reason})") from exc
    if not examples:
        raise DataError(str(path), None, "no valid rows")
    return Dataset(str(path), examples, file_sha256(path), sum(reasons.values()), reasons)


def write_jsonl(path: Path, examples: Sequence[Example], labels: Sequence[str]) -> None:
    """Write examples as JSON lines with label names (readable back by `load_dataset`)."""
    with path.open("w", encoding="utf-8") as fh:
        for e in examples:
            row = {"text": e.text, "text_pair": e.text_pair, "label": labels[e.label]}
            if e.text_pair is None:
                del row["text_pair"]
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
