"""`streamclf schemas export [--check]`: the wire models' JSON Schemas for downstream users."""

from __future__ import annotations

from pathlib import Path

import typer

from admin.context import EXIT_FAILED, console, fail
from schemas.jsonschema import rendered

app = typer.Typer(help="JSON Schemas of TextEvent, LabelledEvent, DeadLetter and ShadowResult.")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "json"


def stale_files(out: Path) -> list[str]:
    """Files under `out` that differ from what the models generate now (or are missing)."""
    return [
        name
        for name, text in rendered().items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
    ]


@app.command()
def export(
    out: Path = typer.Option(SCHEMA_DIR, "--out", help="Folder to write (default schemas/json)"),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 when out of date"),
) -> None:
    """Write one `NAME.schema.json` per published model (draft 2020-12)."""
    if check:
        stale = stale_files(out)
        if stale:
            fail(
                f"out of date in {out}: {', '.join(stale)}; run `streamclf schemas export`",
                EXIT_FAILED,
            )
        console.print(f"{out}: current")
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, text in rendered().items():
        (out / name).write_text(text, encoding="utf-8")
    console.print(f"wrote {', '.join(rendered())} to {out}")
