"""`streamclf bench`: runs the benchmark harness as a program (`python -m benchmarks.run`).

benchmarks/ ships with the repository, not the wheel, and imports the CLI's pieces; the CLI
never imports it back, it only starts it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from admin.context import EXIT_USAGE, fail


def _checkout() -> Path | None:
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "benchmarks" / "run.py").is_file():
            return root
    return None


def bench(
    quick: bool = typer.Option(False, "--quick", help="Small counts, tiny preset (< 2 minutes)"),
    scenarios: str | None = typer.Option(
        None, "--scenarios", help="Comma-separated: ceiling,seed,batching,e2e,e2e-tiny,cache"
    ),
    preset: str | None = typer.Option(None, "--preset", help="roberta-base | tiny"),
    device: str = typer.Option("auto", "--device"),
    profile: bool = typer.Option(False, "--profile", help="py-spy profile of the e2e workers"),
    out: Path | None = typer.Option(None, "--out", help="Results folder (benchmarks/results)"),
) -> None:
    """Run the benchmark scenarios; print tables; write JSON and a plot."""
    root = _checkout()
    if root is None:
        fail(
            "benchmarks/ not found: run `streamclf bench` from a checkout of the repository",
            EXIT_USAGE,
        )
    argv = ["--device", device]
    if quick:
        argv.append("--quick")
    if profile:
        argv.append("--profile")
    for flag, value in (("--scenarios", scenarios), ("--preset", preset), ("--out", out)):
        if value is not None:
            argv += [flag, str(value)]
    path = os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path}
    code = subprocess.call([sys.executable, "-m", "benchmarks.run", *argv], cwd=root, env=env)
    raise typer.Exit(code)
