"""Reading UER TSV and JSON lines: errors name file, line and reason; --skip-bad counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.batches import batch_order, collate, encode, sequential_batches
from trainer.data import Example, load_dataset, parse_label, write_jsonl
from trainer.exceptions import DataError

LABELS = ["negative", "positive", "neutral"]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_tsv_single_and_pair(tmp_path: Path) -> None:
    single = write(tmp_path / "a.tsv", "label\ttext_a\n1\t很好\n0\t很差\n")
    ds = load_dataset(single, LABELS)
    assert ds.examples == [Example("很好", 1), Example("很差", 0)]
    assert ds.rows == 2 and len(ds.sha256) == 64 and ds.skipped == 0
    pair = write(tmp_path / "b.tsv", "label\ttext_a\ttext_b\n2\t问题\t回答\n")
    assert load_dataset(pair, LABELS).examples == [Example("问题", 2, "回答")]


def test_tsv_columns_found_by_header(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "text_a\tlabel\n很好\t1\n")
    assert load_dataset(path, LABELS).examples == [Example("很好", 1)]


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("label\ttext_a\n1\t好\n7\t坏\n", 3, "column label: ids go from 0 to 2"),
        ("label\ttext_a\n1\t好\nx\t坏\n", 3, "column label: not an integer id"),
        ("label\ttext_a\n1\t好\n0\n", 3, "missing column text_a"),
        ("label\ttext_a\n1\t  \n", 2, "empty text in text_a"),
        ("label\ttext_a\ttext_b\n1\t好\t\n", 2, "empty text in text_b"),
        ("text\tlabel\n1\t好\n", 1, "header must name the columns 'label' and 'text_a'"),
    ],
)
def test_tsv_errors_name_file_line_reason(
    tmp_path: Path, body: str, line: int, reason: str
) -> None:
    path = write(tmp_path / "bad.tsv", body)
    with pytest.raises(DataError) as info:
        load_dataset(path, LABELS)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")
    assert reason in str(info.value)
    assert "坏" not in str(info.value) and "'x'" not in str(info.value), "quotes the file"


def test_jsonl_ids_and_names(tmp_path: Path) -> None:
    rows = [
        {"text": "好", "label": "positive"},
        {"text": "坏", "label": 0},
        {"text": "问", "text_pair": "答", "label": "2"},
    ]
    path = write(tmp_path / "a.jsonl", "\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    assert load_dataset(path, LABELS).examples == [
        Example("好", 1),
        Example("坏", 0),
        Example("问", 2, "答"),
    ]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ('{"text": "好", "label": "great"}', "column label: not an id or"),
        ('{"text": "好", "label": 3}', "column label: ids go from"),
        ('{"text": "好"}', "missing column label"),
        ('{"label": 1}', "missing column text"),
        ('{"text": "", "label": 1}', "empty text in text"),
        ('{"text": "好", "label": 1', "not valid JSON"),
        ('["好", 1]', "not a JSON object"),
    ],
)
def test_jsonl_errors(tmp_path: Path, row: str, reason: str) -> None:
    path = write(tmp_path / "bad.jsonl", '{"text": "好", "label": 1}\n' + row + "\n")
    with pytest.raises(DataError, match=rf"bad\.jsonl:2: .*{reason[:12]}"):
        load_dataset(path, LABELS)


def test_skip_bad_counts_by_reason(tmp_path: Path) -> None:
    body = "label\ttext_a\n1\t好\n9\t坏\n0\t\n0\t差\nz\t中\n"
    ds = load_dataset(write(tmp_path / "m.tsv", body), LABELS, skip_bad=True)
    assert [e.text for e in ds.examples] == ["好", "差"]
    assert ds.skipped == 3
    assert sum(ds.skipped_reasons.values()) == 3


def test_all_bad_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no valid rows"):
        load_dataset(write(tmp_path / "e.tsv", "label\ttext_a\n5\tx\n"), LABELS, skip_bad=True)
    with pytest.raises(DataError, match="no such file"):
        load_dataset(tmp_path / "missing.tsv", LABELS)


def test_parse_label() -> None:
    assert parse_label("neutral", LABELS) == 2
    assert parse_label(1, LABELS) == 1
    with pytest.raises(ValueError):
        parse_label(True, LABELS)


def test_write_jsonl_round_trip(tmp_path: Path) -> None:
    examples = [Example("好", 1), Example("问", 2, "答")]
    write_jsonl(tmp_path / "r.jsonl", examples, LABELS)
    assert load_dataset(tmp_path / "r.jsonl", LABELS).examples == examples


def test_length_grouped_batches_cover_everything_deterministically() -> None:
    lengths = [(i * 37) % 50 + 1 for i in range(300)]
    batches = batch_order(lengths, 8, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(300))
    assert batches == batch_order(lengths, 8, seed=3)
    assert batches != batch_order(lengths, 8, seed=4)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 5  # similar lengths inside a batch: little padding
    assert sorted(i for b in sequential_batches(lengths, 7) for i in b) == list(range(300))


def test_encode_and_dynamic_padding() -> None:
    from modelstore.presets import build_tokenizer

    tokenizer = build_tokenizer()
    data = encode([Example("很好", 1), Example("问题很长很长", 0, "答")], tokenizer, 6)
    assert data.input_ids[0] == [101, *tokenizer.convert_tokens_to_ids(["很", "好"]), 102]
    assert len(data.input_ids[1]) == 6 and data.token_type_ids[1][-1] == 1  # truncated pair
    batch = collate(data, [0, 1])
    assert batch["input_ids"].shape == (2, 6)
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 1, 0, 0]
    assert batch["labels"].tolist() == [1, 0]
