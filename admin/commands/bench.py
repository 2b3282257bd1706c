"""`streamclf bench`: the benchmark harness (a thin wrapper over `python -m benchmarks.run`)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer


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
    # benchmarks/ ships with the repository, not the wheel: find it beside this checkout.
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / "benchmarks" / "run.py").is_file() and str(root) not in sys.path:
            sys.path.insert(0, str(root))
            break
    try:
        from benchmarks.run import main
    except ImportError as exc:
        raise typer.BadParameter(f"run from a checkout of the repository: {exc}") from exc

    argv = ["--device", device]
    if quick:
        argv.append("--quick")
    if profile:
        argv.append("--profile")
    for flag, value in (("--scenarios", scenarios), ("--preset", preset), ("--out", out)):
        if value is not None:
            argv += [flag, str(value)]
    raise typer.Exit(main(argv))
