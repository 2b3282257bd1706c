"""`streamclf models import-uer` and `streamclf models promote` (the trainer's side of `models`)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from admin.context import BootstrapOpt, JsonOpt, StoreOpt, console, fail, model_store
from admin.safe_text import esc


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
    console.print(f"imported UER-py checkpoint {esc(checkpoint)} as {esc(name)}@{esc(version)}")


def promote(
    name: str,
    version: str,
    force: bool = typer.Option(False, "--force", help="Promote even if dev accuracy is lower"),
    require_agreement: float | None = typer.Option(
        None, "--require-agreement", help="Refuse below this shadow agreement (0-1)"
    ),
    require_feedback_accuracy: float | None = typer.Option(
        None,
        "--require-feedback-accuracy",
        help="Refuse below this accuracy on shadowed events that have feedback labels (0-1)",
    ),
    feedback_topic: str = typer.Option(
        "streamclf.train.feedback", "--feedback-topic", envvar="STREAMCLF_TRAINER_FEEDBACK_TOPIC"
    ),
    bootstrap: str | None = BootstrapOpt,
    store: Path | None = StoreOpt,
) -> None:
    """Make VERSION active in all workers if its dev accuracy is at least the active one's.

    With --require-agreement / --require-feedback-accuracy, the evidence of its shadow run
    (`models compare`) must reach the thresholds too; the refusal gives the figures.
    """
    from admin.commands.train import _promote

    if require_agreement is not None or require_feedback_accuracy is not None:
        _check_evidence(
            name, version, require_agreement, require_feedback_accuracy, feedback_topic, bootstrap
        )
    _promote(name, version, force, bootstrap, store)


def _check_evidence(
    name: str,
    version: str,
    min_agreement: float | None,
    min_feedback_accuracy: float | None,
    feedback_topic: str,
    bootstrap: str | None,
) -> None:
    from admin.context import EXIT_UNAVAILABLE, kafka_settings, run
    from admin.rollouts import check_evidence, gather_report
    from bus.exceptions import BusError

    try:
        report = run(gather_report(kafka_settings(bootstrap), name, version, None, feedback_topic))
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    refusal = check_evidence(report, min_agreement, min_feedback_accuracy)
    if refusal:
        fail(f"promotion refused, nothing published: {refusal}")
    console.print(
        f"shadow evidence of {esc(name)}@{esc(version)}: agreement {report.agreement} over "
        f"{report.events} events; feedback accuracy "
        f"{report.candidate_figures.feedback_accuracy if report.candidate_figures else None}"
    )


def verify(
    ref: str | None = typer.Argument(None, help="NAME or NAME@VERSION (default: every version)"),
    store: Path | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Check every file of stored versions against their cards; exit 1 on any mismatch.

    A line per version: `ok`, `refused` (the file that differs) or `legacy` (a card written
    before per-file hashes: its weights are checked, its other files are listed unverified).
    """
    from admin.context import EXIT_USAGE, print_json
    from modelstore.exceptions import ModelStoreError
    from modelstore.integrity import check_version

    ms = model_store(store)
    name, _, version = (ref or "").partition("@")
    try:
        if name and version:
            ms.require(name, version)
        targets = [
            (m, v)
            for m in ([name] if name else ms.models())
            for v in ([version] if version else ms.versions(m))
        ]
        if name and not targets:
            ms.require(name)  # raises: the model has no versions
    except ModelStoreError as exc:
        fail(str(exc), EXIT_USAGE)
    checks = [check_version(ms.version_dir(m, v), m, v) for m, v in targets]
    if as_json:
        print_json([asdict(c) for c in checks])
    for c in [] if as_json else checks:
        line = c.error or f"{c.model}@{c.version}: {c.files} files"
        if c.state == "legacy":
            line += f"; unverified (card without per-file hashes): {', '.join(c.unverified)}"
        console.print(f"{c.state:8} {line}", markup=False, highlight=False, soft_wrap=True)
    if not checks and not as_json:
        console.print(f"no versions in store {ms.root}", markup=False, soft_wrap=True)
    if any(c.state == "refused" for c in checks):
        raise typer.Exit(1)


def register(models_app: typer.Typer) -> None:
    models_app.command("import-uer")(import_uer)
    models_app.command("promote")(promote)
    models_app.command("verify")(verify)
