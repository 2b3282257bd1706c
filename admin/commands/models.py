"""`streamclf models ...`: the versioned model store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from admin.commands.control_cli import (
    ByOpt,
    ControlTopicOpt,
    StaleOpt,
    StatusTopicOpt,
    TimeoutOpt,
    WaitOpt,
    announce,
    stale_window,
)
from admin.context import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    MODEL_REF,
    MODEL_REF_HELP,
    BootstrapOpt,
    JsonOpt,
    StoreOpt,
    console,
    err_console,
    fail,
    kafka_settings,
    model_store,
    print_json,
    run,
)
from admin.safe_text import cell, esc
from modelstore.exceptions import ModelStoreError, NoActiveVersion
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
    preset: str = typer.Option(
        "tiny",
        help="tiny (= tiny-random) | tiny-random | tiny-encoder (experimental) | roberta-base",
    ),
    seed: int = typer.Option(0, help="Seed of the random initialisation (head, or all)"),
    store: Path | None = StoreOpt,
) -> None:
    """Write a new classifier version from a preset (`tiny-encoder`: our pretrained encoder, new
    head; the others random)."""
    from modelstore.presets import init_model

    try:
        version = init_model(model_store(store), name, parse_labels(labels), preset, seed)
    except (ValueError, ModelStoreError) as exc:
        fail(str(exc))
    console.print(f"created {esc(name)}@{esc(version)} (preset {esc(preset)})")


@app.command("import")
def import_(
    name: str,
    source: str = typer.Argument(
        ..., help="HF checkpoint directory, or a hub id like org/name (from the hub or its cache)"
    ),
    revision: str | None = typer.Option(
        None, "--revision", help="Hub branch, tag or commit (default main)"
    ),
    store: Path | None = StoreOpt,
) -> None:
    """Store a Hugging Face sequence-classification checkpoint as a new version (safetensors;
    a hub repo's `model.safetensors` is preferred, `pytorch_model.bin` is read weights-only)."""
    from modelstore.exceptions import HubError, NotACheckpoint
    from modelstore.importing import import_checkpoint

    try:
        version = import_checkpoint(model_store(store), name, source, revision)
    except HubError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    except NotACheckpoint as exc:
        fail(str(exc), EXIT_USAGE)
    except (ValueError, ModelStoreError) as exc:
        fail(str(exc))
    console.print(f"imported {esc(source)} as {esc(name)}@{esc(version)}")


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
            try:
                active: str | None = ms.default_version(model)
            except NoActiveVersion:
                active = None  # several versions, none promoted: nothing serves until a swap
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
            cell(r["model"]),
            cell(r["version"]),
            "*" if r["active"] else "",
            cell(r["created_at"]),
            cell(r["parent"] or "-"),
            cell(r["source"]),
            str(r["labels"]),
            "-" if acc is None else f"{acc:.4f}",
            str(r["size_mb"]),
        )
    console.print(table)


@app.command()
def show(
    ref: str = typer.Argument(..., metavar=MODEL_REF, help=MODEL_REF_HELP),
    store: Path | None = StoreOpt,
) -> None:
    """Print a version's card (the active one when no version is given)."""
    name, version = split_ref(ref)
    ms = model_store(store)
    try:
        version = version or ms.default_version(name)
        print_json(ms.card(name, version).model_dump(mode="json"))
    except ModelStoreError as exc:
        fail(str(exc))


# -- hot swap ------------------------------------------------------------------------------
def _swap(
    name: str,
    version: str,
    wait: bool,
    timeout: float,
    stale_after: float | None,
    by: str | None,
    store: Path | None,
    bootstrap: str | None,
    control_topic: str,
    status_topic: str,
    as_json: bool,
    action: str,
) -> None:
    """Check, publish and optionally wait; exit 0 ok, 1 failed, 2 unknown version, 3 timeout."""
    import os

    from admin.render import outcome_dict, outcome_table
    from admin.swapping import SwapRefused, request_swap, wait_for_swap
    from bus.exceptions import BusError

    key = os.environ.get("STREAMCLF_CONTROL_KEY") or None
    kafka = kafka_settings(bootstrap)
    try:
        command = run(
            request_swap(kafka, model_store(store), name, version, by, key, control_topic)
        )
    except SwapRefused as exc:
        fail(f"{action} refused, nothing published: {exc}", EXIT_USAGE if exc.unknown else 1)
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    signed = "signed" if key else "unsigned: STREAMCLF_CONTROL_KEY is not set"
    if not key:
        err_console.print(
            "[bold red]WARNING: this command is UNSIGNED (STREAMCLF_CONTROL_KEY is not set): "
            "workers with a key ignore it, workers without one let anyone swap their models.[/]"
        )
    published = {
        "action": action,
        "model": name,
        "version": version,
        "previous": command.previous,
        "sha256": command.sha256,
        "requested_at_ms": command.requested_at_ms,
        "requested_by": command.requested_by,
        "signed": bool(key),
    }
    if not as_json:
        console.print(
            f"{action}: published {esc(name)} {esc(command.previous)} -> {esc(version)} ({signed})"
        )
    if not wait:
        if as_json:
            print_json(published)
        return
    outcome = run(
        wait_for_swap(
            kafka,
            name,
            version,
            command.requested_at_ms,
            timeout,
            stale_window(stale_after),
            status_topic,
        )
    )
    code = {"ok": EXIT_OK, "failed": EXIT_FAILED}.get(outcome.state, EXIT_UNAVAILABLE)
    if as_json:
        print_json({**published, "wait": outcome_dict(outcome)})
    else:
        if outcome.workers:
            console.print(outcome_table(outcome))
        (console if code == EXIT_OK else err_console).print(
            f"{outcome.state}: {esc(outcome.reason(), limit=2000)}"
        )
    raise typer.Exit(code)


@app.command()
def swap(
    name: str,
    version: str,
    wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    stale_after: float | None = StaleOpt,
    by: str | None = ByOpt,
    store: Path | None = StoreOpt,
    bootstrap: str | None = BootstrapOpt,
    control_topic: str = ControlTopicOpt,
    status_topic: str = StatusTopicOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Make VERSION the active version of NAME in every worker (hot swap, no restart).

    Refuses unknown versions (exit 2) and missing or corrupt weights (exit 1) before
    publishing. With --wait: 0 once every live worker serves it, 1 naming the workers that
    failed to load it, 3 on timeout or when no live worker serves NAME.
    """
    _swap(
        name,
        version,
        wait,
        timeout,
        stale_after,
        by,
        store,
        bootstrap,
        control_topic,
        status_topic,
        as_json,
        "swap",
    )


@app.command()
def rollback(
    name: str,
    wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    stale_after: float | None = StaleOpt,
    by: str | None = ByOpt,
    store: Path | None = StoreOpt,
    bootstrap: str | None = BootstrapOpt,
    control_topic: str = ControlTopicOpt,
    status_topic: str = StatusTopicOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Swap NAME back to the version that was active before the current one.

    While a canary of NAME is in force, rollback ends the canary instead (NAME stays on its
    active version).
    """
    from admin.swapping import SwapRefused, rollback_target

    if _end_canary(name, wait, timeout, stale_after, by, store, bootstrap, control_topic,
                   status_topic, as_json):  # fmt: skip
        return
    try:
        target = rollback_target(model_store(store), name)
    except (SwapRefused, ModelStoreError, ValueError) as exc:
        fail(f"rollback refused, nothing published: {exc}", EXIT_FAILED)
    _swap(
        name,
        target,
        wait,
        timeout,
        stale_after,
        by,
        store,
        bootstrap,
        control_topic,
        status_topic,
        as_json,
        "rollback",
    )


def _end_canary(
    name: str,
    wait: bool,
    timeout: float,
    stale_after: float | None,
    by: str | None,
    store: Path | None,
    bootstrap: str | None,
    control_topic: str,
    status_topic: str,
    as_json: bool,
) -> bool:
    """End the canary of `name` when one is in force; False when there is none."""
    import os

    from admin.rollouts import rollouts_in_force, stop_rollout
    from bus.exceptions import BusError

    key = os.environ.get("STREAMCLF_CONTROL_KEY") or None
    kafka = kafka_settings(bootstrap)
    try:
        if run(rollouts_in_force(kafka, control_topic, key)).get(name, "canary") is None:
            return False
        command = run(
            stop_rollout(kafka, model_store(store), "canary", name, key, control_topic, by)
        )
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    announce(command, wait, timeout, stale_after, bootstrap, status_topic, as_json)
    return True


@app.command()
def delete(
    name: str,
    version: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
    skip_worker_check: bool = typer.Option(
        False, "--skip-worker-check", help="Do not ask the live workers (their heartbeats) first"
    ),
    stale_after: float | None = StaleOpt,
    store: Path | None = StoreOpt,
    bootstrap: str | None = BootstrapOpt,
    status_topic: str = StatusTopicOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Delete a stored version; refuses the active one and one a live worker serves (exit 1)
    and unknown ones (exit 2). The name is never used again (a tombstone stays)."""
    ms = model_store(store)
    try:
        ms.require(name, version)
        active = ms.active(name)
    except (ModelStoreError, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)
    if version == active:
        fail(f"{name}@{version} is the active version; swap to another version first")
    if not skip_worker_check:
        serving = _workers_serving(name, version, stale_after, bootstrap, status_topic)
        if serving:
            fail(
                f"{name}@{version} is served by live workers {', '.join(serving)} "
                f"(their heartbeats); swap them to another version first"
            )
    if not yes and not typer.confirm(f"delete {name}@{version}?"):
        fail("not deleted", EXIT_FAILED)
    ms.delete(name, version)
    if as_json:
        print_json({"model": name, "deleted": version, "active": active})
    else:
        console.print(f"deleted {esc(name)}@{esc(version)} (active: {esc(active)})")


def _workers_serving(
    name: str, version: str, stale_after: float | None, bootstrap: str | None, topic: str
) -> list[str]:
    """Ids of the live workers whose latest heartbeat says they serve `name@version`."""
    from admin.swapping import live_workers
    from bus.exceptions import BusError

    window = stale_window(stale_after)
    try:
        live, _ = run(live_workers(kafka_settings(bootstrap), window, window, topic))
    except BusError as exc:
        fail(
            f"cannot read the workers' heartbeats ({exc}); nothing deleted. "
            "--skip-worker-check deletes without asking them",
            EXIT_UNAVAILABLE,
        )
    return [s.worker_id for s in live if s.versions.get(name) == version]
