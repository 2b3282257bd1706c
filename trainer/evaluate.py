"""Evaluation: predictions in length-sorted batches, accuracy, macro-F1, per class, confusion."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.batches import Encoded, collate, encode, sequential_batches
from trainer.data import load_dataset


@dataclass(frozen=True)
class ClassReport:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class EvalReport:
    accuracy: float
    macro_f1: float
    examples: int
    per_class: list[ClassReport]
    confusion: list[list[int]]  # rows: true label, columns: predicted label

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "macro_f1": self.macro_f1, "examples": self.examples}


def compute_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> EvalReport:
    """Accuracy, macro-F1 over all labels of the model, per-class P/R/F1 and the confusion matrix."""
    n = len(labels)
    confusion = [[0] * n for _ in range(n)]
    for t, p in zip(y_true, y_pred, strict=True):
        confusion[t][p] += 1
    per_class = []
    for k, name in enumerate(labels):
        tp = confusion[k][k]
        predicted = sum(confusion[r][k] for r in range(n))
        support = sum(confusion[k])
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append(ClassReport(name, precision, recall, f1, support))
    total = len(y_true)
    accuracy = sum(confusion[k][k] for k in range(n)) / total if total else 0.0
    macro_f1 = sum(c.f1 for c in per_class) / n if n else 0.0
    return EvalReport(accuracy, macro_f1, total, per_class, confusion)


def predict(
    model: Any, data: Encoded, batch_size: int = 64, device: Any = None, autocast_dtype: Any = None
) -> list[int]:
    """Predicted label ids, in the order of `data`."""
    import torch

    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    preds = [0] * len(data)
    with torch.inference_mode():
        for indices in sequential_batches(data.lengths(), batch_size):
            batch = collate(data, indices)
            batch.pop("labels")
            batch = {k: v.to(device) for k, v in batch.items()}
            with torch.autocast(
                device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
            ):
                logits = model(**batch).logits
            for i, p in zip(indices, logits.argmax(-1).tolist(), strict=True):
                preds[i] = p
    model.train(was_training)
    return preds


def evaluate(
    model: Any,
    data: Encoded,
    labels: Sequence[str],
    batch_size: int = 64,
    autocast_dtype: Any = None,
) -> EvalReport:
    return compute_metrics(
        data.labels, predict(model, data, batch_size, None, autocast_dtype), labels
    )


def evaluate_dir(
    path: Path, data_path: str, max_seq_len: int = 512, batch_size: int = 64, skip_bad: bool = False
) -> EvalReport:
    """Evaluate a stored version directory on a data file (labels checked against the model's)."""
    from modelstore.loading import load_classifier

    model, tokenizer = load_classifier(path)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    dataset = load_dataset(data_path, labels, skip_bad=skip_bad)
    return evaluate(model, encode(dataset.examples, tokenizer, max_seq_len), labels, batch_size)


def plot_confusion(report: EvalReport, path: Path, title: str = "") -> Path:
    """Write the confusion matrix as a PNG (needs matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c.label for c in report.per_class]
    size = max(4.0, 0.6 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(report.confusion, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    peak = max((max(r) for r in report.confusion), default=0)
    for r, row in enumerate(report.confusion):
        for c, value in enumerate(row):
            color = "white" if value > peak / 2 else "black"
            ax.text(c, r, str(value), ha="center", va="center", color=color, fontsize=8)
    ax.set_title(title or f"accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
