"""`streamclf models import-uer` and `streamclf models promote` (the trainer's side of `models`)."""

from __future__ import annotations

from pathlib import Path

import typer

from admin.context import BootstrapOpt, StoreOpt, console, fail, model_store


def import_uer(
    name: str,
    checkpoint: Path = typer.Argument(..., help="UER-py classifier state dict (.bin)"),
    labels: str = typer.Option(..., help="chinanews|ifeng|jd-full|jd-binary|dianping or 'a,b,c'"),
    heads: int | None = typer.Option(None, help="Attention heads (default hidden size / 64)"),
    vocab: Path | None = typer.Option(None, help="UER vocab.txt (default the bundled Google zh)"),
    store: Path | None = StoreOpt,
) -> None:
    """Convert a UER-py BERT text classifier into HF format and store it as a new version."""
    from modelstore.exceptions import ModelStoreError
    from modelstore.labels import parse_labels
    from trainer.exceptions import TrainerError
    from trainer.uer import import_uer as convert

    if not checkpoint.is_file():
        fail(f"{checkpoint}: no such file")
    try:
        version = convert(model_store(store), name, checkpoint, parse_labels(labels), heads, vocab)
    except (ValueError, TrainerError, ModelStoreError) as exc:
        fail(str(exc))
    console.print(f"imported UER-py checkpoint {checkpoint} as {name}@{version}")


def promote(
    name: str,
    version: str,
    force: bool = typer.Option(False, "--force", help="Promote even if dev accuracy is lower"),
    bootstrap: str | None = BootstrapOpt,
    store: Path | None = StoreOpt,
) -> None:
    """Make VERSION active in all workers if its dev accuracy is at least the active one's."""
    from admin.commands.train import _promote

    _promote(name, version, force, bootstrap, store)


def register(models_app: typer.Typer) -> None:
    models_app.command("import-uer")(import_uer)
    models_app.command("promote")(promote)
