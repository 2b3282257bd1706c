"""`streamclf models ...`: the versioned model store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from admin.context import JsonOpt, StoreOpt, console, fail, model_store, print_json
from modelstore.exceptions import ModelStoreError
from modelstore.labels import parse_labels

app = typer.Typer(help="Create, import, list and inspect model versions.")


def split_ref(ref: str) -> tuple[str, str | None]:
    """`NAME[@VERSION]` -> (name, version or None)."""
    name, _, version = ref.partition("@")
    return name, version or None


@app.command()
def init(
    name: str,
    labels: str = typer.Option(..., help="chinanews|ifeng|jd-full|jd-binary|dianping or 'a,b,c'"),
    preset: str = typer.Option("tiny", help="tiny | roberta-base"),
    seed: int = typer.Option(0, help="Seed of the random initialisation"),
    store: Path | None = StoreOpt,
) -> None:
    """Write a randomly initialised classifier as a new version."""
    from modelstore.presets import init_model

    try:
        version = init_model(model_store(store), name, parse_labels(labels), preset, seed)
    except (ValueError, ModelStoreError) as exc:
        fail(str(exc))
    console.print(f"created {name}@{version} (preset {preset})")


@app.command("import")
def import_(
    name: str,
    source: str = typer.Argument(..., help="HF checkpoint directory (or hub id where reachable)"),
    store: Path | None = StoreOpt,
) -> None:
    """Store a Hugging Face sequence-classification checkpoint as a new version (safetensors)."""
    from modelstore.importing import import_checkpoint

    try:
        version = import_checkpoint(model_store(store), name, source)
    except (ValueError, ModelStoreError) as exc:
        fail(str(exc))
    console.print(f"imported {source} as {name}@{version}")


@app.command("list")
def list_(
    name: str | None = typer.Argument(None),
    store: Path | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Versions with created time, parent, dev accuracy, size, and which is active."""
    ms = model_store(store)
    rows = []
    try:
        for model in [name] if name else ms.models():
            active = ms.active(model) or ms.latest(model)
            for version in ms.versions(model):
                info = ms.info(model, version)
                rows.append(
                    {
                        "model": model,
                        "version": version,
                        "active": version == active,
                        "created_at": info.card.created_at,
                        "parent": info.card.parent,
                        "source": info.card.source,
                        "labels": len(info.card.labels),
                        "dev_accuracy": info.card.dev_metrics.get("accuracy"),
                        "size_mb": round(info.size_bytes / 1e6, 1),
                    }
                )
    except ModelStoreError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    table = Table(
        "model", "version", "active", "created", "parent", "source", "labels", "dev acc", "MB"
    )
    for r in rows:
        acc = r["dev_accuracy"]
        table.add_row(
            r["model"],
            r["version"],
            "*" if r["active"] else "",
            r["created_at"],
            r["parent"] or "-",
            r["source"],
            str(r["labels"]),
            "-" if acc is None else f"{acc:.4f}",
            str(r["size_mb"]),
        )
    console.print(table)


@app.command()
def show(
    ref: str = typer.Argument(..., help="NAME[@VERSION]"), store: Path | None = StoreOpt
) -> None:
    """Print a version's card (the active one when no version is given)."""
    name, version = split_ref(ref)
    ms = model_store(store)
    try:
        version = version or ms.default_version(name)
        print_json(ms.card(name, version).model_dump(mode="json"))
    except ModelStoreError as exc:
        fail(str(exc))
