"""Shared plumbing for CLI commands: settings, the model store, output, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from bus.settings import KafkaSettings
from modelstore.store import ModelStore

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


def kafka_settings(bootstrap: str | None = None) -> KafkaSettings:
    """The Kafka settings (env, then `bootstrap`); the embedded broker gets no idempotence."""
    from admin.localstack import IDEMPOTENCE_ENV, uses_local_broker

    settings = KafkaSettings(bootstrap_servers=bootstrap) if bootstrap else KafkaSettings()
    if IDEMPOTENCE_ENV not in os.environ and uses_local_broker(
        settings.bootstrap_servers, state_dir()
    ):
        return settings.model_copy(update={"enable_idempotence": False})
    return settings


def model_store(path: Path | None = None) -> ModelStore:
    root = path or Path(os.environ.get("STREAMCLF_MODEL_STORE", ".streamclf/models"))
    return ModelStore(root)


def state_dir() -> Path:
    return Path(os.environ.get("STREAMCLF_STATE_DIR", ".streamclf"))


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def print_error(message: str) -> None:
    """The one-line `error: ...` every command ends with when it fails (what was read is shown
    literally)."""
    from admin.safe_text import esc

    err_console.print(f"[bold red]error:[/] {esc(message, 2000)}", soft_wrap=True, highlight=False)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    print_error(message)
    raise typer.Exit(code)


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


BootstrapOpt = typer.Option(
    None,
    "--bootstrap",
    "-b",
    help="Kafka bootstrap servers (default STREAMCLF_KAFKA_BOOTSTRAP_SERVERS)",
)
StoreOpt = typer.Option(
    None, "--store", help="Model store directory (default STREAMCLF_MODEL_STORE)"
)
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of a table")
# A model reference that may name a version; help texts are rich markup, hence the `\[`.
MODEL_REF = "NAME[@VERSION]"
MODEL_REF_HELP = "A model, NAME\\[@VERSION] (default: the active version, which workers serve)"
